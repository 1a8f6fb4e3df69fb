#!/usr/bin/env bash
# End to end over memif: skygate-pktgen emulates terminals in several countries talking to
# internet hosts in several countries (real prefixes from the location database), both
# directions, every class. skygate runs the country_block policy: terminals located in RU
# and remote hosts in CN are blocked. While traffic runs we reload the policy and the
# location database, update and
# delete map entries, delete and re-add a subscriber, and move a terminal to RU.
# Checks: every packet the generator sent is accounted for (forwarded, or dropped for a
# counted reason) in total and per subscriber; RU terminals and CN hosts got nothing
# through; both processes exit 0.
# Timing: the generator sends until told to finish (SIGUSR1: it stops sending, drains and
# writes its report as at the end of --duration), after the last change; each step waits
# for packet counts, not for wall-clock time. So a slow full-database reload on a loaded
# machine (9-17 s seen) still happens under traffic, followed by more traffic.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"
POL=$BLD/conf/policies/country_block.bpf.o

"$PKTGEN" --gen-subs 240 --countries DE,FR,RU,BR,JP,NO --beams beam1 --plans basic \
	--v6-share 0.4 --write-csv "$T/subs.csv" >/dev/null
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"geo: { database: /usr/share/libloc-location/location.db }
state: { dir: $T/state }
policy:
  object: $POL
  on_fault: drop
  maps:
    blocked_terminal_countries: { RU: 1 }
    blocked_remote_countries: { CN: 1 }"
sed -i 's/unknown: { plan: basic }/unknown: drop/' "$T/sky.yaml"
start_skygate "$T/sky.yaml" e2e

# a DE subscriber to delete and re-add, a NO subscriber to move to RU, FR to block a while
DEL_ID=$(awk -F, '$6=="DE" {print $1; exit}' "$T/subs.csv")
DEL_ROW=$(awk -F, -v id="$DEL_ID" '$1==id' "$T/subs.csv")
MOVE_ID=$(awk -F, '$6=="NO" {print $1; exit}' "$T/subs.csv")
IFS=, read -r _ d4 d6 dplan dbeam dcc _ <<<"$DEL_ROW"

pg_start report --subs "$T/subs.csv" --remote-countries US:40,DE:20,CN:20,JP:20 \
	--direction both --size imix --rate 30000pps --duration 3600 --drain 500
# let traffic run until skygate received N more packets (the VM may stall: count, not time;
# 60 s without N more packets is a stall, not a slow machine)
advance() {
	local start now
	start=$(rx_total)
	for _ in $(seq 1 600); do
		now=$(rx_total)
		[ $((now - start)) -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "traffic stalled (received $((now - start)) of $1 more packets)"
}
advance 20000
ctl policy load "$POL" >/dev/null || fail "policy reload under traffic"
advance 10000
rx0=$(rx_total)
t0=$(date +%s%3N)
ctlj --timeout 120 geo reload >"$T/georeload.json" || fail "geo reload under traffic"
t1=$(date +%s%3N)
rx1=$(rx_total)
[ "$rx1" -gt "$rx0" ] || fail "no traffic during the geo reload ($rx0 -> $rx1 packets)"
echo "geo reload under traffic: $((t1 - t0)) ms wall, load_ms $(jget "['load_ms']" <"$T/georeload.json"), $((rx1 - rx0)) packets received meanwhile"
advance 10000
ctl map update blocked_terminal_countries FR 1 >/dev/null || fail "map update"
advance 10000
ctl map delete blocked_terminal_countries FR >/dev/null || fail "map delete"
ctl subscriber del "$DEL_ID" >/dev/null || fail "subscriber del"
advance 10000
args=("plan=$dplan" "beam=$dbeam" "country=$dcc")
[ -n "$d4" ] && args+=("ipv4=$d4")
[ -n "$d6" ] && args+=("ipv6=$d6")
ctl subscriber add "$DEL_ID" "${args[@]}" >/dev/null || fail "subscriber add"
advance 5000
ctl subscriber set "$MOVE_ID" country=RU >/dev/null || fail "subscriber set country"
advance 10000
# a refused change leaves everything as it was
ctl map update no_such_map DE 1 >/dev/null 2>&1 && fail "update of an unknown map accepted"
ctl subscriber add 999999 ipv4=10.9.9.9 plan=nope beam=beam1 country=DE >/dev/null 2>&1 &&
	fail "subscriber with an unknown plan accepted"
advance 5000
kill -USR1 "$PG_PID" # finish: stop sending, drain, report
pg_wait report

ctlj stats >"$T/stats.json"
awk -F, 'NR>1 {print "subscriber show " $1}' "$T/subs.csv" |
	python3 "$SRC/tests/integration/ctlbatch.py" "$T/sky.sock" | python3 -c "
import json,sys
for l in sys.stdin:
    d=json.loads(l)
    if not d.get('ok'): sys.exit('subscriber show: ' + d.get('error', '?'))
    r=d['result']; c=r.get('counters',{})
    print(r['id'], sum(v for v in c.get('drops',{}).values() if isinstance(v,int)))
" >"$T/subdrops.txt" || fail "subscriber counters"
stop_skygate
pg_stop || fail "skygate-pktgen exited non-zero"

python3 - "$T" "$DEL_ID" "$MOVE_ID" <<'PY' || fail "accounting"
import json, sys
T, del_id, move_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rep = json.load(open(f"{T}/report.json"))
st = json.load(open(f"{T}/stats.json"))
ports = {p["port"]: p for p in st["ports"]}
up, down = rep["directions"]["up"], rep["directions"]["down"]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
# totals: what was sent arrived at skygate; what skygate sent arrived at the generator
check(ports["sat0"]["rx_packets"] == up["tx_pkts"], f"sat0 rx {ports['sat0']['rx_packets']} != up sent {up['tx_pkts']}")
check(ports["net0"]["rx_packets"] == down["tx_pkts"], f"net0 rx {ports['net0']['rx_packets']} != down sent {down['tx_pkts']}")
check(ports["net0"]["tx_packets"] == up["rx_pkts"], f"net0 tx {ports['net0']['tx_packets']} != up received {up['rx_pkts']}")
check(ports["sat0"]["tx_packets"] == down["rx_pkts"], f"sat0 tx {ports['sat0']['tx_packets']} != down received {down['rx_pkts']}")
# every lost packet is a counted drop
lost = up["tx_pkts"] - up["rx_pkts"] + down["tx_pkts"] - down["rx_pkts"]
dropped = ports["sat0"]["dropped"] + ports["net0"]["dropped"]
check(lost == dropped, f"generator lost {lost}, skygate counted {dropped} drops")
reasons = {}
for p in st["ports"]:
    for r, n in p["drops"].items():
        reasons[r] = reasons.get(r, 0) + n
allowed = {"policy_drop", "unknown_subscriber"}
check(set(reasons) <= allowed, f"unexpected drop reasons {reasons}")
check(reasons.get("unknown_subscriber", 0) > 0, "deleting a subscriber dropped nothing as unknown")
# per subscriber: lost = drops counted on that subscriber (the deleted one also lost
# packets as unknown while it did not exist)
subdrops = dict(map(int, l.split()) for l in open(f"{T}/subdrops.txt"))
cols = rep["subscribers"]["columns"]
rows = [dict(zip(cols, r)) for r in rep["subscribers"]["rows"]]
for r in rows:
    l = r["lost_up"] + r["lost_down"]
    if r["id"] == del_id:
        check(l >= subdrops[r["id"]], f"subscriber {r['id']}: lost {l} < counted {subdrops[r['id']]}")
    else:
        check(l == subdrops.get(r["id"], -1), f"subscriber {r['id']} ({r['country']}): lost {l}, counted {subdrops.get(r['id'])}")
# blocking
term, remote = rep["countries"]["terminal"], rep["countries"]["remote"]
check(term["RU"]["rx_pkts"] == 0, f"RU terminals got {term['RU']['rx_pkts']} packets through")
check(remote["CN"]["rx_pkts"] == 0, f"CN hosts got {remote['CN']['rx_pkts']} packets through")
check(term["RU"]["tx_pkts"] > 0 and remote["CN"]["tx_pkts"] > 0, "no traffic for the blocked countries")
mv = [r for r in rows if r["id"] == move_id][0]
check(mv["lost_up"] + mv["lost_down"] > 0, "moved terminal lost nothing after moving to RU")
if errors:
    print("\n".join(errors[:20]))
    sys.exit(1)
print(f"accounted: sent {up['tx_pkts']}+{down['tx_pkts']}, delivered {up['rx_pkts']}+{down['rx_pkts']}, "
      f"dropped {dropped} {reasons}")
PY
ok "e2e: every packet accounted for; RU terminals and CN hosts blocked; policy swap, geo reload, map and subscriber changes under traffic"
