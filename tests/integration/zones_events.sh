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
#     moved to.
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

# A subscriber's counters in skygate, over one socket connection (a process per poll is
# slow on a loaded machine): `subc ID` prints "passed policy_drops"; `subc ID passed|drops N`
# waits until N more (60 s without them is a stall: exit 1).
cat >"$T/subc.py" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def counts(sub):
    f.write(json.dumps({"argv": ["subscriber", "show", sub]}).encode() + b"\n")
    f.flush()
    c = json.loads(f.readline())["result"]["counters"]
    return sum(v["packets"] for d in ("up", "down") for v in c[d].values()), c["drops"]["policy"]
sub = sys.argv[2]
if len(sys.argv) == 3:
    print(*counts(sub))
    sys.exit(0)
k, n = (0 if sys.argv[3] == "passed" else 1), int(sys.argv[4])
start, end = counts(sub)[k], time.time() + 60
while time.time() < end:
    now = counts(sub)[k]
    if now - start >= n:
        sys.exit(0)
    time.sleep(0.05)
sys.exit(f"subscriber {sub}: {now - start} of {n} more {sys.argv[3]} packets in 60 s")
PY
subc() { python3 "$T/subc.py" "$T/sky.sock" "$@"; }
advance() { subc "$1" passed "$2" || fail "traffic of subscriber $1 stalled"; }
advance_drops() { subc "$1" drops "$2" || fail "no policy drops for subscriber $1"; }

pg_start report --subs "$T/subs.csv" --direction both --rate 8000pps --duration 3600 --drain 300
advance 3 500
advance 4 500
read -r p3 d3 < <(subc 3)
[ "$d3" -eq 0 ] || fail "subscriber 3 dropped by policy before any zone was blocked ($d3)"
ok "no zone blocked: south terminals pass"

ctl map update blocked_zones 2 1 >/dev/null || fail "map update blocked_zones"
sleep 0.5 # packets already past the policy stage
advance_drops 3 500
advance 1 500
read -r p3a d3a < <(subc 3)
read -r p4a d4a < <(subc 4)
advance_drops 4 500
advance 2 500
read -r p3b d3b < <(subc 3)
read -r p4b d4b < <(subc 4)
[ "$p3b" -eq "$p3a" ] && [ "$p4b" -eq "$p4a" ] ||
	fail "zone 2 blocked, yet its terminals passed packets ($p3a -> $p3b, $p4a -> $p4b)"
[ "$d3b" -gt "$d3a" ] || fail "subscriber 3: no policy drops while zone 2 is blocked"
ok "zone 2 blocked live: terminals 3 and 4 dropped as policy_drop, 1 and 2 pass"

# an unknown zone is refused, naming it; nothing changes
out=$(ctl subscriber set 3 zone=east 2>&1) && fail "zone=east accepted"
grep -q "zone 'east' unknown (zones: north, south)" <<<"$out" || fail "refusal does not name the zone: $out"
[ "$(ctlj subscriber show 3 | jget "['zone']")" = south ] || fail "a refused set changed the zone"

# move 3 north and 1 south: from one second later on, their traffic follows
ctl subscriber set 3 zone=north >/dev/null || fail "subscriber set 3 zone=north"
ctl subscriber set 1 zone=south >/dev/null || fail "subscriber set 1 zone=south"
sleep 1
read -r p3c d3c < <(subc 3)
read -r p1c d1c < <(subc 1)
advance 3 500
advance_drops 1 500
read -r p3d d3d < <(subc 3)
read -r p1d d1d < <(subc 1)
[ "$d3d" -eq "$d3c" ] || fail "subscriber 3 moved north, still dropped 1 s later ($d3c -> $d3d)"
[ "$p1d" -eq "$p1c" ] || fail "subscriber 1 moved south, still passed 1 s later ($p1c -> $p1d)"
ok "moved terminals follow within 1 s: 3 passes ($((p3d - p3c)) packets), 1 is dropped ($((d1d - d1c)) packets)"

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
stop_skygate
