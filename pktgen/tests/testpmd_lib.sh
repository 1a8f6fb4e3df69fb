# SPDX-License-Identifier: BSD-3-Clause
#
# dpdk-testpmd as the memif peer of skygate-pktgen, for pktgen_testpmd.sh and
# pktgen_testpmd_bench.sh (sourced, not run). Needs TESTPMD and DIR; sets TP_PID.
# testpmd serves both memif sockets ($DIR/a.sock, $DIR/b.sock); one busy poller per CPU,
# main lcores idle (the generator takes --lcores=0@1,1@0).
EAL_COMMON="--no-huge -m 512 --no-pci --log-level=lib.*:error --no-telemetry"
TP_PID=

start_testpmd() { # forward-mode file-prefix stats-period log
	rm -f "$DIR"/a.sock "$DIR"/b.sock
	"$TESTPMD" --lcores=0@0,1@1 $EAL_COMMON --file-prefix="$2" \
		--vdev=net_memif0,role=server,socket="$DIR"/a.sock,id=0 \
		--vdev=net_memif1,role=server,socket="$DIR"/b.sock,id=0 -- \
		--forward-mode="$1" --auto-start --no-mlockall --total-num-mbufs=16384 \
		--stats-period="$3" </dev/null >"$4" 2>&1 &
	TP_PID=$!
	for _ in $(seq 50); do
		# memif sockets are abstract by default (socket-abstract=yes): watch the log
		grep -q "forwarding - ports=2" "$4" && return 0
		kill -0 "$TP_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "FAIL: testpmd did not start"; cat "$4"; exit 1
}

stop_testpmd() {
	if [ -n "$TP_PID" ]; then
		kill -INT "$TP_PID" 2>/dev/null
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$TP_PID" 2>/dev/null || break; sleep 0.3; done
		kill -KILL "$TP_PID" 2>/dev/null
		wait "$TP_PID" 2>/dev/null
		TP_PID=
	fi
}
