# Shared helpers for integration tests: run the real daemon, talk to it with skygatectl.
# Env from meson: SKY_SOURCE_ROOT, SKY_BUILD_ROOT.
set -euo pipefail
SRC=${SKY_SOURCE_ROOT:?}
BLD=${SKY_BUILD_ROOT:?}
SKYGATE=$BLD/gateway/skygate
CTL=$BLD/gateway/skygatectl
PCAPTOOL=$BLD/tests/integration/pcaptool
PKTGEN=$BLD/pktgen/skygate-pktgen
T=$(mktemp -d /tmp/skyit.XXXXXX)
SKY_PID=
EXTRA_PIDS=()
ETCD_PID= # an etcd a test started (cluster tests): killed by cleanup, its data dir is in $T

fail() { echo "FAIL: $*" >&2; [ -f "$T/skygate.log" ] && tail -30 "$T/skygate.log" >&2; exit 1; }
ok() { echo "ok: $*"; }

# stop_pid PID SIGNAL: signal, up to 5 s to exit, then SIGKILL
stop_pid() {
	kill -"$2" "$1" 2>/dev/null || return 0
	for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# Generators first (a memif peer that leaves under a polling skygate can crash it), then
# skygate; then whatever a killed DPDK process could not remove: every prefix of a test
# ends in -$$.
cleanup() {
	for p in "${EXTRA_PIDS[@]}"; do stop_pid "$p" TERM; done
	[ -n "$SKY_PID" ] && stop_pid "$SKY_PID" TERM
	[ -n "${ETCD_PID:-}" ] && stop_pid "$ETCD_PID" KILL
	wait 2>/dev/null || true
	rm -rf /var/run/dpdk/*-$$ /dev/hugepages/*-$$map_* 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
# a command that fails outside a test of ours: say where, and show the daemon's log
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2; [ -f "$T/skygate.log" ] && tail -40 "$T/skygate.log" >&2' ERR

# EAL for tests: no hugepages, main lcore and worker on different CPUs, private prefix
eal_args() { # $1 = file prefix suffix
	echo "--no-huge -m 1536 --no-pci --lcores=${SKY_LCORES:-0@0,1@1} --file-prefix=skyit-$1-$$ --log-level=lib.*:warning --log-level=pmd.*:warning"
}

ctl() { "$CTL" --socket "$T/sky.sock" "$@"; }
ctlj() { "$CTL" --socket "$T/sky.sock" --json "$@"; }

# start_skygate CONFIG PREFIX: runs the daemon in the background, waits for its socket
start_skygate() {
	local cfg=$1 pfx=$2
	# shellcheck disable=SC2046
	(cd "$SRC" && exec "$SKYGATE" -c "$cfg" -- $(eal_args "$pfx")) >"$T/skygate.log" 2>&1 &
	SKY_PID=$!
	for _ in $(seq 1 300); do
		if [ -S "$T/sky.sock" ] && ctl status >/dev/null 2>&1; then return 0; fi
		kill -0 "$SKY_PID" 2>/dev/null || fail "skygate exited at start"
		sleep 0.1
	done
	fail "skygate did not open its control socket"
}

# stop_skygate: SIGTERM, must exit 0 and print final counters
stop_skygate() {
	kill -TERM "$SKY_PID"
	local rc=0
	wait "$SKY_PID" || rc=$?
	SKY_PID=
	[ $rc -eq 0 ] || fail "skygate exited with $rc after SIGTERM"
	grep -q "final counters" "$T/skygate.log" || fail "no final counters printed"
}

# json VALUE extraction without jq: python3 is a dependency of tools/run
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

# a minimal config; $1 = ports yaml block, $2 = extra yaml
write_config() {
	cat >"$T/sky.yaml" <<YAML
workers: 1
control: { socket: $T/sky.sock }
mempool: { mbufs: 8191, cache: 128 }
ports:
$1
subscribers: { file: $T/subs.csv, unknown: { plan: basic } }
plans:
  basic: { down: 10Gbit, up: 10Gbit, burst: 4MB }
beams:
  beam1: { down: 40Gbit, up: 40Gbit }
classes:
  - { name: realtime, dscp: [46], ports: [53] }
  - { name: bulk, default: true }
${2:-}
YAML
}

# frames received by both ports together
rx_total() { ctlj stats | jget "['ports'][0]['rx_packets'] + d['ports'][1]['rx_packets']"; }
# wait_rx N: until both ports together received N frames (a pcap port reads its file once;
# 10 s at most); fails unless exactly N arrived
wait_rx() {
	local rx
	for _ in $(seq 1 100); do
		rx=$(rx_total)
		[ "$rx" -ge "$1" ] && break
		sleep 0.1
	done
	[ "$rx" -eq "$1" ] || fail "received $rx of $1 frames"
}

# The set-up of the runtime-change tests: two subscribers (DE with an IPv6 prefix, FR), the
# two ring ports, a state dir, the policy object $1 with the maps $2 (YAML), a gold plan.
write_state_config() { # POLICY_OBJECT MAPS
	cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.0.1,2001:db8:1::/56,basic,beam1,DE
2,100.64.0.2,,basic,beam1,FR
CSV
	write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_ring0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_ring1\" }" \
		"state: { dir: $T/state }
policy: { object: $1, maps: $2 }"
	sed -i 's/^plans:/plans:\n  gold: { down: 100Mbit, up: 10Mbit }/' "$T/sky.yaml"
}

# The generator, in the background, connected as memif client to $T/sat0.sock and
# $T/net0.sock. It lingers (idle, connected) after writing its report, so skygate stops
# first: DPDK 22.11's memif server frees its rings when a client leaves, under a worker that
# may still be polling them (seen as a rare crash on this VM).
PG_PID=
pg_start() { # NAME OPTIONS...
	local name=$1
	shift
	"$PKTGEN" --no-huge -m 512 --no-pci --lcores=0@1,1@0 --file-prefix=skyit-pg-$name-$$ \
		--log-level=lib.*:warning \
		--vdev=net_memif0,role=client,socket=$T/sat0.sock,id=0,rsize=14 \
		--vdev=net_memif1,role=client,socket=$T/net0.sock,id=0,rsize=14 -- \
		--wait-link 10 --quiet --linger 600 --report "$T/$name.json" "$@" >"$T/$name.log" 2>&1 &
	PG_PID=$!
	EXTRA_PIDS+=("$PG_PID")
}
pg_wait() { # NAME: until the report is written
	for _ in $(seq 1 1200); do
		if grep -q "^skygate-pktgen: [0-9.]* s, .* subscribers, .* flows" "$T/$1.log" 2>/dev/null; then
			sleep 0.2
			return 0
		fi
		kill -0 "$PG_PID" 2>/dev/null || { cat "$T/$1.log"; fail "skygate-pktgen ($1) exited early"; }
		sleep 0.1
	done
	fail "skygate-pktgen ($1) did not finish"
}
pg_stop() { # after stop_skygate: ends the linger; returns the generator's exit code
	local rc=0
	kill -TERM "$PG_PID" 2>/dev/null || true
	wait "$PG_PID" || rc=$?
	PG_PID=
	return $rc
}
