#!/usr/bin/env bash
# Fair use in the running daemon, measured on the receive side of a real memif run:
#  1. a subscriber with a 5 MB allowance, offered 10 Mbit/s downstream on a 20 Mbit/s plan,
#     is on his throttle plan (2 Mbit/s) within a second of crossing it: the generator's
#     per-second received rate is the plan's before the crossing and the throttle plan's in
#     the first whole second that starts one second after it;
#  2. `quota add` (a top-up) lifts it at once: the state is `under` in the command's reply
#     and the received rate is back at 10 Mbit/s before the run ends; the events stream
#     carried used_80, used_100, throttle_on, topup, throttle_off;
#  3. kill -9 under traffic, then a restart: his usage is at most save_interval (2 s) + the
#     fold (1 s) of traffic below what `quota show` said just before the kill, never zero,
#     and the journaled top-up counts once;
#  4. bad allowance values are refused by --check naming file, line and key; bad quota
#     commands name what is wrong; a damaged usage file refuses the start naming the file
#     (exit 3), and --reset-usage moves it aside.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.1.1,,capped,beam1,DE
2,100.64.1.2,,basic,beam1,DE
CSV
head -2 "$T/subs.csv" >"$T/subs1.csv"
cat >"$T/sky.yaml" <<YAML
workers: 1
control: { socket: $T/sky.sock }
mempool: { mbufs: 16383 }
state: { dir: $T/state }
ports:
  - { name: sat0, role: uplink, peer: net0, device: "net_memif0,role=server,socket=$T/sat0.sock,id=0" }
  - { name: net0, role: backhaul, peer: sat0, device: "net_memif1,role=server,socket=$T/net0.sock,id=0" }
subscribers: { file: $T/subs.csv, unknown: drop }
plans:
  capped:
    down: 20Mbit
    up: 20Mbit
    burst: 64KB
    allowance: 5MB
    period: every 366d
    count: [down]
    over: { throttle_plan: slow }
  slow: { down: 2Mbit, up: 2Mbit, burst: 16KB }
  basic: { down: 20Mbit, up: 20Mbit }
beams:
  beam1: { down: 1Gbit, up: 1Gbit }
classes: [ { name: bulk, default: true } ]
shaping: { frame_overhead: 0 }
quota: { save_interval: 2s }
YAML

# --- 4a. bad allowance values, refused by --check with file, line and key -------------------
check_bad() { # SED_EXPR EXPECTED
	sed "$1" "$T/sky.yaml" >"$T/bad.yaml"
	local rc=0
	(cd "$SRC" && "$SKYGATE" --check -c "$T/bad.yaml") >"$T/out" 2>&1 || rc=$?
	[ $rc -ne 0 ] || fail "--check accepted: $1"
	grep -qF -- "$2" "$T/out" || { cat "$T/out"; fail "expected '$2'"; }
}
check_bad 's/allowance: 5MB/allowance: 5Mbit/' "bad.yaml:14: plans.capped.allowance:"
check_bad 's/period: every 366d/period: weekly/' "bad.yaml:15: plans.capped.period: 'weekly'"
check_bad 's/throttle_plan: slow/throttle_plan: nope/' \
	"plans.capped.over.throttle_plan: unknown plan 'nope'"
ok "bad allowance values refused with file, line and key"

start_skygate "$T/sky.yaml" quota1
ctl events --follow 'type=quota.*' >"$T/events.txt" 2>&1 &
EXTRA_PIDS+=("$!")

# --- 4b. bad quota commands --------------------------------------------------------------
bad_cmd() { # EXPECTED ARGS...
	local want=$1 out rc=0
	shift
	out=$(ctl "$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "accepted: $*"
	case "$out" in *"$want"*) ;; *) fail "'$*': expected '$want', got '$out'" ;; esac
}
bad_cmd "'lots': expected a size > 0" quota add 1 lots
bad_cmd "no subscriber with id 99" quota show 99
bad_cmd "subscriber 2: plan 'basic' has no allowance" quota add 2 1GB
bad_cmd "'spent=1GB': unknown key (used, credit, anchor)" quota set 1 spent=1GB
bad_cmd "seq= is written by the journal only" quota add 1 1GB seq=9
bad_cmd "$T/none.csv" quota import "$T/none.csv"
ok "bad quota commands refused with what is wrong"

# --- 1, 2. throttled within a second of crossing; a top-up lifts it ------------------------
qget() { ctlj quota show 1 | jget "$1"; }
# the same for polling loops, without a python start each turn
qfield() { ctl quota show 1 | awk -v k="$1" '$1 == k { print $2 }'; }
pg_start a --subs "$T/subs1.csv" --remote-countries US:100 --direction down --size 1000 \
	--sub-rate 10Mbit --duration 12 --drain 300
for _ in $(seq 1 150); do
	[ "$(qfield state)" = throttled ] && break
	sleep 0.1
done
[ "$(qget "['state']")" = throttled ] || fail "not throttled: $(ctl quota show 1)"
[ "$(qget "['effective_plan']")" = slow ] || fail "not on the throttle plan"
# the check below reads the first whole second that starts a second after the crossing:
# the top-up comes after it, even when this loop saw the state late
sleep 3
ctlj quota add 1 20MB >"$T/add.json" || fail "quota add"
[ "$(jget "['state']" <"$T/add.json")" = under ] || fail "top-up did not lift it"
[ "$(jget "['effective_plan']" <"$T/add.json")" = capped ] || fail "not back on capped"
pg_wait a
python3 - "$T/a.json" <<'PY' || fail "throttle not applied within a second (receive rates)"
import json, sys
rep = json.load(open(sys.argv[1]))
s, prev, cum, tc = [], 0.0, 0.0, None
for x in rep["rate_samples"]:
    t0, t1 = prev, x["t"]
    cum += x["down"]["tx_mbps"] * (t1 - t0) * 1e6 / 8
    # skygate counts 996 of every 1000-byte frame (no FCS): 5 MB counted
    if tc is None and cum * 0.996 >= 5e6:
        over = cum * 0.996 - 5e6
        tc = t1 - over / (x["down"]["tx_mbps"] * 1e6 / 8 * 0.996) if x["down"]["tx_mbps"] else t1
    s.append((t0, t1, x["down"]["rx_mbps"]))
    prev = t1
print("  received Mbit/s per second:", " ".join(f"{r:.1f}" for _, _, r in s))
print(f"  5 MB crossed at t = {tc:.2f} s")
before = [r for t0, t1, r in s if t1 <= tc and t0 >= 1.0]
after = [r for t0, t1, r in s if t0 >= tc + 1.0][:1]
# after the top-up: from the first second back at the plan's rate to the end of sending
# (12 s), every second at it
send = [r for t0, t1, r in s if t0 < 11.5]
k = max(i for i, r in enumerate(send) if r <= 2.6) + 1 if any(r <= 2.6 for r in send) else 0
lifted = [r for r in send[k:] if r > 2.6]
print(f"  before: {before}, first whole second after crossing + 1 s: {after}, "
      f"after the top-up: {lifted}")
ok = (before and all(8.5 <= r <= 11.5 for r in before) and len(after) == 1 and
      after[0] <= 2.6 and len(lifted) >= 2 and
      all(8.5 <= r <= 11.5 for r in lifted[1:]))
sys.exit(0 if ok else 1)
PY
ok "on the throttle plan within a second of crossing 5 MB; quota add lifted it"
for ev in quota.used_80 quota.used_100 quota.throttle_on quota.topup quota.throttle_off; do
	grep -q "\"type\": *\"$ev\"" "$T/events.txt" || { cat "$T/events.txt"; fail "no $ev event"; }
done
ok "events: used_80, used_100, throttle_on, topup, throttle_off"

# --- 3. a clean restart keeps the usage exactly; kill -9 under traffic within the bound ----
# (skygate stops before the generator leaves: see pg_start in lib.sh)
u0=$(qget "['used_bytes']")
stop_skygate
pg_stop || fail "skygate-pktgen (a)"
start_skygate "$T/sky.yaml" quota2
[ "$(qget "['used_bytes']")" -eq "$u0" ] || fail "a clean restart changed the usage: $u0 -> $(qget "['used_bytes']")"
[ "$(qget "['state']")" = under ] || fail "not under after the restart"
pg_start b --subs "$T/subs1.csv" --remote-countries US:100 --direction down --size 1000 \
	--sub-rate 10Mbit --duration 6 --drain 100
for _ in $(seq 1 100); do
	[ "$(qfield used_bytes)" -gt $((u0 + 2500000)) ] && break
	sleep 0.1
done
t1=$(date +%s%N)
ctlj quota show 1 >"$T/u1.json"
kill -KILL "$SKY_PID"
tk=$(date +%s%N)
u1=$(jget "['used_bytes']" <"$T/u1.json")
wait "$SKY_PID" 2>/dev/null || true
SKY_PID=
pg_stop || true
[ "$u1" -gt $((u0 + 2500000)) ] || fail "usage did not grow under traffic ($u0 -> $u1)"
start_skygate "$T/sky.yaml" quota3
u2=$(qget "['used_bytes']")
credit=$(qget "['credit_bytes']")
# the bound: save_interval (2 s) + fold (1 s) at 10 Mbit/s of 1000-byte frames (996 counted)
bound=$((3 * 10000000 / 8 * 996 / 1000))
echo "  before the kill: $u1 bytes; after the restart: $u2 (bound: $bound bytes lost at most)"
[ "$u2" -ge $((u1 - bound)) ] || fail "lost more than the bound: $u1 -> $u2"
# nothing counted after the kill: at most what 10 Mbit/s brought between `quota show` and it
[ "$u2" -le $((u1 + (tk - t1) / 1000 * 1250 / 1000 + 125000)) ] ||
	fail "usage grew across the restart: $u1 -> $u2 ($(((tk - t1) / 1000000)) ms show-to-kill)"
[ "$u2" -ge "$u0" ] || fail "usage went back below what was saved before: $u0 -> $u2"
[ "$credit" -eq 20000000 ] || fail "the journaled top-up counted $credit bytes, not once"
ok "kill -9 + restart: usage $u1 -> $u2 (at most 3 s of traffic lost), top-up once"

# --- 4c. a damaged usage file refuses the start; --reset-usage moves it aside --------------
stop_skygate
python3 - "$T/state/usage" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x5a
open(sys.argv[1], "wb").write(b)
PY
rc=0
# shellcheck disable=SC2046
(cd "$SRC" && "$SKYGATE" -c "$T/sky.yaml" -- $(eal_args quota4)) >"$T/refused.log" 2>&1 || rc=$?
[ $rc -eq 3 ] || { cat "$T/refused.log"; fail "damaged usage file: exit $rc, not 3"; }
grep -qF "refusing to start: usage file: $T/state/usage: offset" "$T/refused.log" ||
	{ cat "$T/refused.log"; fail "the refusal does not name the file"; }
grep -qF -- "--reset-usage" "$T/refused.log" || fail "the refusal does not name the way out"
# shellcheck disable=SC2046
(cd "$SRC" && exec "$SKYGATE" --reset-usage -c "$T/sky.yaml" -- $(eal_args quota5)) \
	>"$T/skygate.log" 2>&1 &
SKY_PID=$!
for _ in $(seq 1 300); do
	[ -S "$T/sky.sock" ] && ctl status >/dev/null 2>&1 && break
	kill -0 "$SKY_PID" 2>/dev/null || fail "skygate --reset-usage exited at start"
	sleep 0.1
done
ls "$T/state" | grep -q '^usage.damaged-' || fail "the damaged file was not moved aside"
[ "$(qget "['used_bytes']")" -lt 1000000 ] || fail "usage not reset"
stop_skygate
ok "damaged usage file refused (exit 3, file named); --reset-usage moved it aside"
