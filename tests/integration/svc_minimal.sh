#!/usr/bin/env bash
# A config with only `ports:` (and `eal:`): skygate is a transparent inline forwarder.
# `--check --print` prints the effective configuration, defaults filled, as YAML skygate
# accepts and prints identically again; over net_pcap every frame skygate can parse comes
# out byte for byte and in order, in both directions (malformed ones are dropped by reason,
# as always), with no subscriber table, no plans, no shaping.
. "$(dirname "$0")/lib.sh"

"$PCAPTOOL" gen "$T"
. "$T/counts"
ports="  - { name: sat0, role: uplink, peer: net0, device: \"net_pcap0,rx_pcap=$T/up_in.pcap,tx_pcap=$T/sat0_out.pcap\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_pcap1,rx_pcap=$T/down_in.pcap,tx_pcap=$T/net0_out.pcap\" }"
printf 'ports:\n%s\n' "$ports" >"$T/ports_only.yaml"

# the effective configuration: valid, stable, with the documented defaults
"$SKYGATE" --check --print -c "$T/ports_only.yaml" >"$T/p1.yaml" 2>"$T/p1.err" ||
	fail "--check --print refused a ports-only config: $(cat "$T/p1.err")"
grep -q "configuration OK" "$T/p1.err" || fail "no OK line on stderr"
"$SKYGATE" --check --print -c "$T/p1.yaml" >"$T/p2.yaml" 2>"$T/p2.err" ||
	fail "the printed config is refused: $(cat "$T/p2.err")"
cmp "$T/p1.yaml" "$T/p2.yaml" || fail "the printed config does not print identically again"
python3 - "$T/p1.yaml" <<'PY' || fail "printed defaults differ from the documented ones"
import sys
t = open(sys.argv[1]).read()
for want in ["workers: 1", "  socket: /run/skygate/skygate.sock", '  mode: "0660"',
             "  unknown:\n    plan: pass", "  pass:\n    down: 100Gbit\n    up: 100Gbit",
             "  enabled: false", "  level: info", "  - name: default\n    default: true",
             "  on_fault: pass", "  mbufs: 16383", "  period: 10ms"]:
    if want not in t:
        sys.exit("missing: %r" % want)
PY
# a printed config with plans keeps shaping on and unknown addresses dropped
cat >"$T/with_plans.yaml" <<YAML
ports:
$ports
plans: { basic: { down: 10Mbit, up: 1Mbit } }
beams: { b1: { down: 1Gbit, up: 100Mbit } }
subscribers: {}
YAML
"$SKYGATE" --check --print -c "$T/with_plans.yaml" >"$T/p3.yaml" 2>/dev/null || fail "plans config refused"
grep -q "^  enabled: true" "$T/p3.yaml" || fail "shaping not on by default with plans"
grep -q "^  unknown: drop" "$T/p3.yaml" || fail "unknown not drop by default with a subscribers section"
# the sample config (every section written) round-trips too
(cd "$SRC" && "$SKYGATE" --check --print -c conf/skygate.yaml) >"$T/s1.yaml" 2>"$T/s1.err" ||
	fail "sample config: $(cat "$T/s1.err")"
(cd "$SRC" && "$SKYGATE" --check --print -c "$T/s1.yaml") >"$T/s2.yaml" 2>"$T/s2.err" ||
	fail "printed sample config refused: $(cat "$T/s2.err")"
cmp "$T/s1.yaml" "$T/s2.yaml" || fail "the printed sample config does not print identically again"
# --print alone is a usage error
rc=0
"$SKYGATE" --print -c "$T/ports_only.yaml" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--print without --check: exit $rc, expected 2"
ok "--check --print: effective config accepted and printed identically again"

# run it: the only key added is the control socket, for skygatectl to find the daemon
printf 'control: { socket: %s }\nports:\n%s\n' "$T/sky.sock" "$ports" >"$T/sky.yaml"
start_skygate "$T/sky.yaml" svcmin
wait_rx $((UP_IN + DOWN_IN))
sleep 0.3
ctlj stats >"$T/stats.json"
ctl subscriber list >/dev/null || fail "subscriber list fails on an empty table"
[ "$(ctlj plan list | jget "[0]['name']")" = pass ] || fail "no plan 'pass'"
ctlj map list >/dev/null || fail "policy hooks (map list) not available"
stop_skygate
"$PCAPTOOL" cmp "$T/net0_out.pcap" "$T/up_expect.pcap" || fail "upstream output differs"
"$PCAPTOOL" cmp "$T/sat0_out.pcap" "$T/down_expect.pcap" || fail "downstream output differs"
for i in 0 1; do
	dropped=$(jget "['ports'][$i]['dropped']" <"$T/stats.json")
	[ "$dropped" -eq "$UP_MALFORMED" ] || fail "port $i dropped $dropped, expected only the $UP_MALFORMED malformed"
done
ok "ports-only config: $UP_EXPECT + $DOWN_EXPECT frames forwarded byte for byte, nothing shaped or dropped but malformed frames"
