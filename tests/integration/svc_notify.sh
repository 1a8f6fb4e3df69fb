#!/usr/bin/env bash
# systemd's notification protocol, for real: a NOTIFY_SOCKET datagram socket bound here,
# skygate started with NOTIFY_SOCKET and WATCHDOG_USEC; READY=1 (after the ports and workers
# run: the control socket answers by then), STATUS= lines, WATCHDOG=1 pings while the worker
# loops, RELOADING=1 then READY=1 around a reload, STOPPING=1 at SIGTERM. And the unit file
# passes `systemd-analyze verify`.
. "$(dirname "$0")/lib.sh"

if ! grep -q "SKY_HAVE_LIBSYSTEMD 1" "$BLD/sky_build_config.h"; then
	echo "SKIP: built without libsystemd (notifications are no-ops)"
	exit 77
fi

# the unit: the build-tree copy names the built binary
if command -v systemd-analyze >/dev/null; then
	mkdir "$T/unit"
	cp "$BLD/systemd/skygate.service.buildtree" "$T/unit/skygate.service"
	# --man=no: Documentation= names man pages that exist once the package is installed
	systemd-analyze verify --man=no "$T/unit/skygate.service" >"$T/verify.log" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$T/verify.log")"
	grep -q "^Type=notify" "$T/unit/skygate.service" || fail "unit is not Type=notify"
	grep -q '^ExecReload=/bin/kill -HUP \$MAINPID' "$T/unit/skygate.service" || fail "no ExecReload"
	# verify can fail: the same unit with a missing binary is refused
	sed 's|^ExecStart=[^ ]*|ExecStart=/nonexistent/skygate|' "$T/unit/skygate.service" >"$T/unit/bad.service"
	if systemd-analyze verify --man=no "$T/unit/bad.service" >/dev/null 2>&1; then
		fail "systemd-analyze verify accepted a unit whose binary does not exist"
	fi
	ok "systemd-analyze verify passes on skygate.service"
else
	fail "systemd-analyze missing (tools/run installs systemd)"
fi

# the listener: every datagram, one line per message field, with a time stamp
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
t0 = time.monotonic()
with open(sys.argv[2], "w", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode()
        for field in msg.split("\n"):
            f.write("%.3f %s\n" % (time.monotonic() - t0, field))
        if "STOPPING=1" in msg:
            break
PY
LISTENER=$!
EXTRA_PIDS+=("$LISTENER")
for _ in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,10.1.0.0/16,,basic,beam1,DE
CSV
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }"
# 1 s watchdog: pings every 0.5 s
export NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1000000
start_skygate "$T/sky.yaml" notify
unset NOTIFY_SOCKET WATCHDOG_USEC
for _ in $(seq 1 50); do grep -q "READY=1" "$T/notify.log" && break; sleep 0.1; done
grep -q "READY=1" "$T/notify.log" || fail "no READY=1"
grep -q "STATUS=running: 2 ports, 1 workers" "$T/notify.log" || fail "no running STATUS line"
# READY came after the start-up STATUS lines (ports and workers first)
[ "$(grep -n 'STATUS=registering' "$T/notify.log" | cut -d: -f1)" -lt "$(grep -n 'READY=1' "$T/notify.log" | head -1 | cut -d: -f1)" ] ||
	fail "READY=1 before the start-up finished"
sleep 2.2
n=$(grep -c "WATCHDOG=1" "$T/notify.log" || true)
[ "$n" -ge 3 ] || fail "$n WATCHDOG=1 pings in 2.2 s with WATCHDOG_USEC=1s (expected >= 3)"
ok "READY=1 and STATUS after start, $n WATCHDOG=1 pings in 2.2 s"

# a reload says RELOADING=1, then READY=1 again
kill -HUP "$SKY_PID"
for _ in $(seq 1 50); do grep -q "RELOADING=1" "$T/notify.log" && break; sleep 0.1; done
grep -q "RELOADING=1" "$T/notify.log" || fail "no RELOADING=1 after SIGHUP"
for _ in $(seq 1 100); do [ "$(grep -c 'READY=1' "$T/notify.log")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c 'READY=1' "$T/notify.log")" -ge 2 ] || fail "no READY=1 after the reload"
# in that order: RELOADING=1 after the first READY=1, a READY=1 after it
python3 - "$T/notify.log" <<'PY' || fail "RELOADING/READY out of order"
import sys
f = [l.split(" ", 1)[1].strip() for l in open(sys.argv[1])]
r = f.index("RELOADING=1")
assert "READY=1" in f[:r] and "READY=1" in f[r + 1:], f
PY

stop_skygate
for _ in $(seq 1 30); do kill -0 "$LISTENER" 2>/dev/null || break; sleep 0.1; done
grep -q "STOPPING=1" "$T/notify.log" || fail "no STOPPING=1"
ok "RELOADING=1/READY=1 around SIGHUP, STOPPING=1 at SIGTERM"
