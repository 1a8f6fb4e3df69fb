#!/usr/bin/env bash
# The flow table in the daemon (lib/flow): skygate with a `flows:` section forwards
# skygate-pktgen's upstream traffic over memif (3 subscribers x 2 flows, TCP and UDP);
# `skygatectl flows show` counts one entry per generator flow, `flows top` lists exactly the
# generator's flows with the packets skygate received, `flows top subscriber=ID` only that
# subscriber's; `flows flush` empties the table; without the section the table is off.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
11,100.64.1.1,,basic,beam1,DE
12,100.64.1.2,,basic,beam1,FR
13,100.64.1.3,,basic,beam1,NL
CSV
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"flows: { entries: 4096, records: true }"
sed -i "s#unknown: { plan: basic }#unknown: drop#" "$T/sky.yaml"

start_skygate "$T/sky.yaml" flows
ctlj flows show >"$T/show0.json" || fail "flows show"
[ "$(jget "['entries']" <"$T/show0.json")" = 0 ] || fail "entries before traffic"
[ "$(jget "['enabled']" <"$T/show0.json")" = True ] || fail "flows show: not enabled"
pg_start up --subs "$T/subs.csv" --remote-countries US:100 --direction up --flows-per-sub 2 \
	--classes interactive:50,bulk:50 --rate 3000pps --duration 2 --drain 300
pg_wait up
ctlj flows show >"$T/show.json" || fail "flows show"
ctlj flows top n=100 >"$T/top.json" || fail "flows top"
ctlj flows top by=packets subscriber=12 >"$T/top12.json" || fail "flows top subscriber=12"
ctlj stats >"$T/stats.json" || fail "stats"
python3 - "$T/show.json" "$T/top.json" "$T/top12.json" "$T/stats.json" "$T/up.json" <<'PY' || fail "flows show / top disagree with the generator"
import json, sys
show, top, top12, stats, rep = (json.load(open(p)) for p in sys.argv[1:])
w = show["workers"][0]
print(f'  flows show: entries {show["entries"]}, capacity {w["capacity"]}, inserts '
      f'{w["inserts"]}, evictions {w["evictions"]}, ring drops {w["rtt_ring_drops"]}/'
      f'{w["rec_ring_drops"]}, memory {w["memory_bytes"]} bytes')
rx_up = stats["ports"][0]["rx_packets"]  # sat0, the uplink
flows = top["flows"]
subs = sorted({f["subscriber"] for f in flows})
pk = sum(f["packets_up"] for f in flows)
print(f'  flows top: {len(flows)} flows of subscribers {subs}, {pk} packets up '
      f'(skygate received {rx_up} on sat0)')
ok = (show["entries"] == 6 and w["inserts"] == 6 and w["evictions"] == 0 and w["capacity"] == 4096
      and w["memory_bytes"] > 4096 * 192 and len(flows) == 6 and subs == [11, 12, 13]
      and all(f["packets_down"] == 0 and f["remote_addr"] and f["verdict"] == "pass" for f in flows)
      and pk == rx_up and rx_up > 0
      and {f["proto"] for f in flows} <= {6, 17}
      and len(top12["flows"]) == 2 and all(f["subscriber"] == 12 for f in top12["flows"])
      and top12["by"] == "packets")
sys.exit(0 if ok else 1)
PY
ok "flows show counts the generator's 6 flows; flows top lists them with skygate's packet count"
ctl flows flush >/dev/null || fail "flows flush"
for _ in $(seq 1 50); do
	[ "$(ctlj flows show | jget "['entries']")" = 0 ] && break
	sleep 0.1
done
ctlj flows show >"$T/show2.json"
[ "$(jget "['entries']" <"$T/show2.json")" = 0 ] || fail "flows flush left entries"
[ "$(jget "['totals']['ended_forced']" <"$T/show2.json")" = 6 ] || fail "flush: not 6 forced ends"
ok "flows flush ended the 6 flows"
stop_skygate
pg_stop || fail "skygate-pktgen"

# without the section: off, and it says so
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_ring0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_ring1\" }"
start_skygate "$T/sky.yaml" flows-off
[ "$(ctlj flows show | jget "['enabled']")" = False ] || fail "flows show: on without flows:"
ctl flows flush >/dev/null 2>&1 && fail "flows flush accepted with the table off"
stop_skygate
ok "no flows: section, no table"
