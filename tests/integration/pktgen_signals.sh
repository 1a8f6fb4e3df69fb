#!/usr/bin/env bash
# skygate-pktgen stops cleanly on SIGTERM/SIGINT at any moment: during set-up, while sending
# as fast as it can, while draining and while lingering. Exit 0 (it writes what it measured),
# never a crash. Over net_null ports (nothing polls back) and over memif with skygate as
# the peer, which keeps running.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

# one run: $1 = label, $2 = seconds before the signal, $3 = signal, rest = generator options
sig_run() {
	local label=$1 after=$2 sig=$3 rc=0
	shift 3
	"$PKTGEN" --no-huge -m 512 --no-pci --lcores=0@1,1@0 --file-prefix=skyit-pgterm-$$ \
		--log-level=lib.*:warning "$@" >"$T/pgsig.log" 2>&1 &
	local pid=$!
	EXTRA_PIDS+=("$pid")
	if [ "${after#+}" != "$after" ]; then # +S: S seconds after sending started
		for _ in $(seq 1 200); do grep -q "sending" "$T/pgsig.log" && break; sleep 0.05; done
		grep -q "sending" "$T/pgsig.log" || { cat "$T/pgsig.log"; fail "$label: never started sending"; }
	fi
	sleep "${after#+}"
	kill -"$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && { cat "$T/pgsig.log"; fail "$label: still running 5 s after SIG$sig"; }
	wait "$pid" || rc=$?
	[ $rc -eq 0 ] || { cat "$T/pgsig.log"; fail "$label: exit $rc after SIG$sig at ${after}s"; }
}

"$PKTGEN" --gen-subs 200 --countries DE,FR --beams beam1 --plans basic --write-csv "$T/subs.csv" >/dev/null
NULLS=(--vdev=net_null0 --vdev=net_null1 -- --subs "$T/subs.csv" --quiet)
i=0
for after in 0.05 0.3 0.8 1.5 2.5; do
	for sig in TERM INT; do
		sig_run "net_null full rate #$i" "$after" "$sig" "${NULLS[@]}" --rate 0 --duration 30
		i=$((i + 1))
	done
done
ok "net_null: $i signals at set-up and at full rate, every stop clean (exit 0)"
sig_run "net_null lingering" 2 TERM "${NULLS[@]}" --rate 0 --duration 0.5 --linger 60
ok "net_null: a signal while lingering stops at once"

# a real memif peer that polls at full rate too: dpdk-testpmd, io forwarding between its two
# memif servers (skygate itself as the peer would hit DPDK 22.11's memif disconnect race, a
# README caveat: here the generator's own stop is under test)
command -v dpdk-testpmd >/dev/null || fail "dpdk-testpmd missing (package dpdk, installed by tools/run)"
n=0
for after in +0.1 +0.6 +1.3; do
	dpdk-testpmd --no-huge -m 512 --no-pci --lcores=0@0,1@1 --file-prefix=skyit-pgtp-$$ \
		--log-level=lib.*:warning \
		--vdev=net_memif0,role=server,socket=$T/tp0.sock,id=0 \
		--vdev=net_memif1,role=server,socket=$T/tp1.sock,id=0 -- \
		--forward-mode=io --auto-start --stats-period 1000 --total-num-mbufs=16384 >"$T/testpmd.log" 2>&1 </dev/null &
	TP=$!
	EXTRA_PIDS+=("$TP")
	# memif sockets are abstract (no file): wait for testpmd to have configured its ports
	for _ in $(seq 1 100); do grep -q "Checking link" "$T/testpmd.log" && break; sleep 0.1; done
	grep -q "Checking link" "$T/testpmd.log" || { cat "$T/testpmd.log"; fail "dpdk-testpmd did not start"; }
	sig_run "memif full rate #$n" "$after" TERM \
		--vdev=net_memif0,role=client,socket=$T/tp0.sock,id=0,rsize=14 \
		--vdev=net_memif1,role=client,socket=$T/tp1.sock,id=0,rsize=14 -- \
		--subs "$T/subs.csv" --wait-link 10 --rate 0 --duration 30 --drain 2000
	kill -TERM "$TP" 2>/dev/null || true
	wait "$TP" 2>/dev/null || true
	n=$((n + 1))
done
ok "memif: $n signals while sending at full rate against dpdk-testpmd, every stop clean (exit 0)"
