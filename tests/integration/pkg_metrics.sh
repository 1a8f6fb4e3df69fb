#!/usr/bin/env bash
# Prometheus output and the Grafana dashboard: `promtool check metrics` accepts
# `skygatectl metrics` of a daemon that has forwarded, shaped and blocked traffic, and every
# series (with its labels) that conf/grafana/skygate.json queries is in that output
# (tests/pkg/dashboard_series.py). Traffic: the integration pcaps, from one subscriber
# located in RU (blocked by country_block's blocked_terminal_countries) and one in DE.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool missing (Debian package prometheus: tools/run setup)"
"$PCAPTOOL" gen "$T"
. "$T/counts"
cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,10.1.0.0/17,,basic,beam1,RU
2,10.1.128.0/17,,basic,beam1,DE
3,,2001:db8:100::/40,basic,beam1,FR
CSV
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_pcap0,rx_pcap=$T/up_in.pcap,tx_pcap=$T/sat0_out.pcap\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_pcap1,rx_pcap=$T/down_in.pcap,tx_pcap=$T/net0_out.pcap\" }" \
	"policy: { object: $BLD/conf/policies/country_block.bpf.o, maps: { blocked_terminal_countries: { RU: 1 } } }
flows: {}   # the flow table and qoe: the round-trip panels of the dashboard"
start_skygate "$T/sky.yaml" metrics
wait_rx $((UP_IN + DOWN_IN))
sleep 0.5
ctl metrics >"$T/metrics.txt"
stop_skygate
grep -q '^skygate_policy_blocked_packets_total{sub_country="RU"' "$T/metrics.txt" ||
	fail "nothing blocked for RU: the test's traffic did not reach the policy"
ok "traffic forwarded and blocked ($(grep -c '^skygate_' "$T/metrics.txt") series)"

promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 ||
	{ cat "$T/promtool.out"; fail "promtool check metrics"; }
ok "promtool check metrics: clean"

python3 "$SRC/tests/pkg/dashboard_series.py" "$SRC/conf/grafana/skygate.json" "$T/metrics.txt" ||
	fail "the dashboard queries series skygate does not export (above)"
ok "every series the dashboard queries exists"
