#!/usr/bin/env bash
# Terminal zones and the events stream, over memif with live traffic (skygate-pktgen, both
# directions): two zones (north = 1, south = 2), two terminals in each (the CSV's zone
# column); the zone_block policy blocks zone 2 through its map, set live.
#  1. before the block everyone passes; after `map update blocked_zones 2 1` the south
#     terminals' packets are dropped as policy_drop and the north ones pass;
#  2. `subscriber set 3 zone=north` and `subscriber set 1 zone=south` move two terminals:
#     from one second after the change on, 3 only passes and 1 only drops;
#  3. an unknown zone is refused, naming it, and changes nothing;
#  4. `skygatectl events --follow type=subscriber.*`, running in the background from the
#     start, received the subscriber.changed events of the moves (with the new zone), in
#     order, and nothing else; it exits 0 on SIGINT;
#  5. the moves are journaled: after a restart the terminals are still where they were
#     moved to; a reload that changes the zones list is refused (ids are positions).
# Timing: traffic is measured in packets counted by skygate per subscriber, the move's
# deadline (1 s) is the only wall-clock bound.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"
POL=$BLD/conf/policies/zone_block.bpf.o

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country,zone
1,100.64.0.1,,basic,beam1,DE,north
2,100.64.0.2,,basic,beam1,DE,north
3,100.64.0.3,,basic,beam1,FR,south
4,100.64.0.4,,basic,beam1,FR,south
CSV
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"zones: [north, south]
state: { dir: $T/state }
shaping: { enabled: false }
policy: { object: $POL }"
sed -i 's/unknown: { plan: basic }/unknown: drop/' "$T/sky.yaml"
start_skygate "$T/sky.yaml" zones

[ "$(ctlj subscriber show 3 | jget "['zone']")" = south ] || fail "subscriber 3 not in zone south from the CSV"

# the follower, from the start
"$CTL" --socket "$T/sky.sock" events --follow 'type=subscriber.*' >"$T/events.out" 2>"$T/events.err" &
EV_PID=$!
EXTRA_PIDS+=("$EV_PID")
for _ in $(seq 1 50); do
	[ "$(ctlj status | jget "['events']['subscribers']")" -ge 1 ] && break
	sleep 0.1
done
[ "$(ctlj status | jget "['events']['subscribers']")" -eq 1 ] || fail "the follower did not subscribe"

# The subscribers' counters in skygate, over one socket connection (a process per poll is
# slow on a loaded machine): `counts [ID:passed|drops:N ...]` waits until each subscriber
# named has N more packets passed or dropped by the policy (60 s without them is a stall),
# then sets P[id] and D[id] (passed, policy drops) for subscribers 1..4.
cat >"$T/counts.py" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def counts(sub):
    f.write(json.dumps({"argv": ["subscriber", "show", str(sub)]}).encode() + b"\n")
    f.flush()
    c = json.loads(f.readline())["result"]["counters"]
    return sum(v["packets"] for d in ("up", "down") for v in c[d].values()), c["drops"]["policy"]
want = [(int(a), 0 if k == "passed" else 1, int(n)) for a, k, n in (w.split(":") for w in sys.argv[2:])]
start = {sub: counts(sub) for sub, _, _ in want}
end = time.time() + 60
while True:
    late = [(sub, k, n) for sub, k, n in want if counts(sub)[k] - start[sub][k] < n]
    if not late:
        break
    if time.time() > end:
        sys.exit(f"60 s without the packets: {late}")
    time.sleep(0.05)
for sub in range(1, 5):
    p, d = counts(sub)
    print(f"P[{sub}]={p} D[{sub}]={d}")
PY
declare -A P D
counts() {
	local out
	out=$(python3 "$T/counts.py" "$T/sky.sock" "$@") || fail "traffic stalled: $out"
	eval "$out"
}

pg_start report --subs "$T/subs.csv" --direction both --rate 8000pps --duration 3600 --drain 300
counts 1:passed:500 2:passed:500 3:passed:500 4:passed:500
for i in 1 2 3 4; do [ "${D[$i]}" -eq 0 ] || fail "subscriber $i dropped by policy before any zone was blocked (${D[$i]})"; done
ok "no zone blocked: all terminals pass"

ctl map update blocked_zones 2 1 >/dev/null || fail "map update blocked_zones"
counts 3:drops:300 4:drops:300 # packets already past the policy stage are through by now
declare -A PA DA
for i in 1 2 3 4; do PA[$i]=${P[$i]} DA[$i]=${D[$i]}; done
counts 3:drops:500 4:drops:500 1:passed:500 2:passed:500
[ "${P[3]}" -eq "${PA[3]}" ] && [ "${P[4]}" -eq "${PA[4]}" ] ||
	fail "zone 2 blocked, yet its terminals passed packets (${PA[3]} -> ${P[3]}, ${PA[4]} -> ${P[4]})"
[ "${D[1]}" -eq 0 ] && [ "${D[2]}" -eq 0 ] || fail "zone 1 terminals dropped by policy (${D[1]}, ${D[2]})"
ok "zone 2 blocked live: terminals 3 and 4 dropped as policy_drop, 1 and 2 pass"

# an unknown zone is refused, naming it; nothing changes
out=$(ctl subscriber set 3 zone=east 2>&1) && fail "zone=east accepted"
grep -q "zone 'east' unknown (zones: north, south)" <<<"$out" || fail "refusal does not name the zone: $out"
[ "$(ctlj subscriber show 3 | jget "['zone']")" = south ] || fail "a refused set changed the zone"

# move 3 north and 1 south: from one second later on, their traffic follows
ctl subscriber set 3 zone=north >/dev/null || fail "subscriber set 3 zone=north"
ctl subscriber set 1 zone=south >/dev/null || fail "subscriber set 1 zone=south"
sleep 1
counts
for i in 1 2 3 4; do PA[$i]=${P[$i]} DA[$i]=${D[$i]}; done
counts 3:passed:500 1:drops:500
[ "${D[3]}" -eq "${DA[3]}" ] || fail "subscriber 3 moved north, still dropped 1 s later (${DA[3]} -> ${D[3]})"
[ "${P[1]}" -eq "${PA[1]}" ] || fail "subscriber 1 moved south, still passed 1 s later (${PA[1]} -> ${P[1]})"
ok "moved terminals follow within 1 s: 3 passes ($((P[3] - PA[3])) packets), 1 is dropped ($((D[1] - DA[1])) packets)"

kill -USR1 "$PG_PID" # finish: stop sending, drain, report
pg_wait report
ctlj stats >"$T/stats.json"
pd=$(jget "['ports'][0]['drops'].get('policy_drop', 0) + d['ports'][1]['drops'].get('policy_drop', 0)" <"$T/stats.json")
[ "$pd" -gt 0 ] || fail "no policy_drop in the port counters"
em=$(ctlj status | jget "['events']['emitted']")
lost=$(ctlj status | jget "['events']['lost']")
ctl metrics | grep -q "^skygate_events_emitted_total $em" || fail "metrics: skygate_events_emitted_total is not $em"
[ "$lost" -eq 0 ] || fail "$lost events lost for a follower that reads"

# the follower: exactly the two moves, in order, then SIGINT ends it cleanly
kill -INT "$EV_PID"
rc=0
wait "$EV_PID" || rc=$?
[ $rc -eq 0 ] || { cat "$T/events.err"; fail "events --follow exited $rc on SIGINT"; }
python3 - "$T/events.out" <<'PY' || { cat "$T/events.out"; fail "events"; }
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert [e["type"] for e in ev] == ["subscriber.changed"] * 2, ev
assert [(e["change"], e["id"], e["subscriber"]["zone"]) for e in ev] == \
    [("set", 3, "north"), ("set", 1, "south")], ev
assert ev[1]["seq"] > ev[0]["seq"], ev
assert all(e["time"].endswith("Z") and len(e["time"]) == 24 for e in ev), ev
PY
ok "events --follow received the two subscriber.changed events (zones north, south) and exited 0 on SIGINT"

stop_skygate
pg_stop || fail "skygate-pktgen exited non-zero"
start_skygate "$T/sky.yaml" zones2
[ "$(ctlj subscriber show 3 | jget "['zone']")" = north ] || fail "move of 3 lost in restart"
[ "$(ctlj subscriber show 1 | jget "['zone']")" = south ] || fail "move of 1 lost in restart"
ok "zone moves journaled: kept after a restart"
# zone ids are positions in the list: a reload that changes it is refused, naming it
sed -i 's/^zones: \[north, south\]/zones: [south, north]/' "$T/sky.yaml"
out=$(ctl reload 2>&1) && fail "reload with the zones re-ordered accepted: $out"
grep -q "restart.*zones" <<<"$out" || fail "reload refusal does not name zones: $out"
[ "$(ctlj subscriber show 3 | jget "['zone']")" = north ] || fail "a refused reload changed zones"
ok "reload refuses a changed zones list (restart needed)"
stop_skygate
