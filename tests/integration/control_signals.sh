#!/usr/bin/env bash
# Signals against a real daemon: SIGHUP reloads (logged) and is survived (the socket stays, requests
# are answered). SIGTERM or SIGINT in the middle of long control work stops the daemon within
# 2 s, exit 0, no socket file and no DPDK runtime directory left: four `subscriber load`s of
# a 1M-row CSV queued on one connection (seconds each), four `geo reload`s of the full
# location database; after a restart the journal gives back what was acknowledged. A SIGTERM
# during start-up (a 1M-row subscriber file in the config) stops it as quickly.
. "$(dirname "$0")/lib.sh"

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.0.1,,basic,beam1,DE
CSV
python3 - "$T/big.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,ipv4,ipv6,plan,beam,country\n")
    f.writelines(f"{i},10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},,basic,beam1,DE\n"
                 for i in range(1, 1000001))
PY
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_ring0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_ring1\" }" "state: { dir: $T/state }"
sed -i 's/unknown: { plan: basic } }/unknown: { plan: basic }, capacity: 1100000 }/' "$T/sky.yaml"

now_ms() { date +%s%3N; }
runtime_dir() { echo "/var/run/dpdk/skyit-$1-$$"; }

# stop_within SIGNAL MS: send it, the daemon must be gone within MS, exit 0, nothing left
stop_within() {
	local sig=$1 limit=$2 t0 rc=0 pid=$SKY_PID
	t0=$(now_ms)
	kill -"$sig" "$pid"
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
	local took=$(($(now_ms) - t0))
	kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "SIG$sig: still running after $took ms"; }
	wait "$pid" || rc=$?
	SKY_PID=
	[ "$took" -le "$limit" ] || fail "SIG$sig: stopped after $took ms (limit $limit ms)"
	[ $rc -eq 0 ] || fail "SIG$sig: exit status $rc (want 0)"
	[ ! -e "$T/sky.sock" ] || fail "SIG$sig: control socket left behind"
	TOOK=$took
}

# busy_now: the main thread is inside a request (a second one gets no reply in 300 ms)
wait_busy() {
	for _ in $(seq 1 100); do
		"$CTL" --socket "$T/sky.sock" --timeout 0.3 status >/dev/null 2>&1 || return 0
		sleep 0.05
	done
	fail "the daemon never looked busy with the load"
}

start_skygate "$T/sky.yaml" sig1

# SIGHUP: logged, not fatal, requests still answered
kill -HUP "$SKY_PID"
kill -HUP "$SKY_PID"
sleep 0.5
kill -0 "$SKY_PID" 2>/dev/null || fail "SIGHUP killed the daemon"
[ -S "$T/sky.sock" ] || fail "socket gone after SIGHUP"
ctl status >/dev/null || fail "no answer after SIGHUP"
grep -q "SIGHUP received: reloading $T/sky.yaml" "$T/skygate.log" ||
	fail "SIGHUP not logged"
# the file is unchanged: the reload (svc_reload.sh tests it) reports no changes
# both signals may be taken as one reload; wait until the last has ended (idle daemon below)
for _ in $(seq 1 100); do
	[ "$(grep -c "SIGHUP received: reloading" "$T/skygate.log")" -eq "$(grep -c "reload of $T/sky.yaml: no changes" "$T/skygate.log")" ] && break
	sleep 0.05
done
grep -q "reload of $T/sky.yaml: no changes" "$T/skygate.log" || fail "SIGHUP: no reload outcome logged"
ok "SIGHUP is logged and survived"

# pipeline N WORDS...: N copies of one request on one connection, sent at once (the daemon
# runs them back to back: many seconds of work without a pause); prints the replies
pipeline() {
	python3 - "$T/sky.sock" "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
n = int(sys.argv[2])
s.sendall((json.dumps({"argv": sys.argv[3:]}) + "\n").encode() * n)
f = s.makefile("rb")
for line in f:
    print(line.decode().strip())
PY
}
# stop_during SIGNAL OUT WORDS...: four copies of WORDS queued (replies to OUT); once the
# daemon is busy with them, SIGNAL, and it must be gone within 2 s (stop_within)
stop_during() {
	local sig=$1 out=$2 loader

	shift 2
	pipeline 4 "$@" >"$out" 2>&1 &
	loader=$!
	wait_busy
	stop_within "$sig" 2000
	wait $loader || true
}
acked() { grep -c '"ok": *true' "$1" || true; }
# how_stopped REPLIES LOG: the work in progress gave up by itself ("stopped by shutdown", then
# quickly), or the watchdog ended it and said so in the log
how_stopped() {
	if grep -q "stopped by shutdown" "$1"; then
		[ "$TOOK" -lt 1000 ] || fail "the work gave up, but the stop took $TOOK ms"
		grep -q "shutdown watchdog" "$2" && fail "the work gave up, yet the watchdog fired"
		HOW="the work gave up by itself"
	else
		grep -q "shutdown watchdog: .* after signal" "$2" ||
			fail "no 'stopped by shutdown' reply and no watchdog line: $(cat "$1")"
		HOW="the watchdog ended it"
	fi
}

# SIGTERM while `subscriber load` of 1M rows runs (four of them queued)
stop_during TERM "$T/load1.out" subscriber load "$T/big.csv"
cp "$T/skygate.log" "$T/sig1.log"
[ ! -e "$(runtime_dir sig1)" ] || fail "DPDK runtime directory left behind"
a=$(acked "$T/load1.out")
how_stopped "$T/load1.out" "$T/sig1.log"
ok "SIGTERM during 1M-row subscriber loads: stopped in $TOOK ms ($HOW), exit 0, socket removed ($a load(s) acknowledged before)"

# the journal was not damaged: the daemon starts with what was acknowledged
start_skygate "$T/sky.yaml" sig2
n=$(ctlj subscriber list size=1 | jget "['total']")
if [ "$a" -gt 0 ]; then
	[ "$n" = 1000000 ] || fail "after restart: $n subscribers, but a load of 1000000 was acknowledged"
else
	[ "$n" = 1 ] || [ "$n" = 1000000 ] || fail "after restart: $n subscribers (want 1, or 1000000 if the unacknowledged load reached the journal)"
fi
ok "restart after the interrupted loads: $n subscriber(s)"

# SIGINT likewise
stop_during INT "$T/load2.out" subscriber load "$T/big.csv"
how_stopped "$T/load2.out" "$T/skygate.log"
ok "SIGINT during 1M-row subscriber loads: stopped in $TOOK ms ($HOW), exit 0, socket removed"

# SIGTERM during `geo reload` of the full location database (seconds each; four queued)
GEODB=/usr/share/libloc-location/location.db
if [ -f "$GEODB" ]; then
	cp "$T/sky.yaml" "$T/geo.yaml"
	echo "geo: { database: $GEODB }" >>"$T/geo.yaml"
	start_skygate "$T/geo.yaml" sig4
	stop_during TERM "$T/geo.out" geo reload
	how_stopped "$T/geo.out" "$T/skygate.log"
	ok "SIGTERM during geo reloads: stopped in $TOOK ms ($HOW), exit 0, socket removed"
else
	echo "skip: no $GEODB (geo reload case)"
fi

# the main thread stuck where no check can see the stop (here: frozen with ptrace while idle):
# the watchdog ends the process within 2 s, removes the socket and DPDK's files, exit 0
start_skygate "$T/sky.yaml" sig5
python3 - "$SKY_PID" "$T/frozen" <<'PY' >"$T/freeze.log" 2>&1 &
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid = int(sys.argv[1])
if libc.ptrace(0x4206, pid, None, None) != 0:  # PTRACE_SEIZE the main thread only
    sys.exit("ptrace: " + os.strerror(ctypes.get_errno()))
libc.ptrace(0x4207, pid, None, None)  # PTRACE_INTERRUPT: it stops
os.waitpid(pid, 0x40000000)  # __WALL
open(sys.argv[2], "w").close()
while True:  # keep it stopped until the process is gone
    try:
        _, st = os.waitpid(pid, 0x40000000)
    except ChildProcessError:
        break
    if os.WIFEXITED(st) or os.WIFSIGNALED(st):
        break
PY
FREEZER=$!
for _ in $(seq 1 100); do [ -f "$T/frozen" ] && break; sleep 0.05; done
[ -f "$T/frozen" ] || { cat "$T/freeze.log"; fail "could not freeze the main thread"; }
"$CTL" --socket "$T/sky.sock" --timeout 0.3 status >/dev/null 2>&1 && fail "the main thread still answers"
stop_within TERM 2000
wait $FREEZER || true
grep -q "shutdown watchdog: the main thread has not finished .* after signal" "$T/skygate.log" ||
	fail "the watchdog did not say why it ended the process"
grep -q "final counters" "$T/skygate.log" || fail "no final counters from the watchdog"
[ ! -e "$(runtime_dir sig5)" ] || fail "DPDK runtime directory left behind by the watchdog"
ok "main thread stuck: the watchdog ended skygate in $TOOK ms, exit 0, socket and runtime dir removed"

# SIGTERM during start-up: the config names the 1M-row file
sed -i "s|file: $T/subs.csv|file: $T/big.csv|" "$T/sky.yaml"
rm -rf "$T/state"
(cd "$SRC" && exec "$SKYGATE" -c "$T/sky.yaml" -- $(eal_args sig3)) >"$T/skygate.log" 2>&1 &
SKY_PID=$!
sleep 0.7
kill -0 "$SKY_PID" 2>/dev/null || fail "skygate exited during start-up"
[ -S "$T/sky.sock" ] && echo "note: start-up was already done (socket open): a plain stop"
stop_within TERM 2000
[ ! -e "$(runtime_dir sig3)" ] || fail "DPDK runtime directory left behind (start-up stop)"
ok "SIGTERM during start-up: stopped in $TOOK ms, exit 0"
