#!/usr/bin/env bash
# leaks.sh before|after: nothing of ours outlives a test. Run first ("before", highest
# priority) and last ("after", lowest) in the test run: the second fails on any hugepage
# file, DPDK runtime directory, test directory, socket or process of ours that the
# tests in between left behind.
set -euo pipefail
BLD=${SKY_BUILD_ROOT:?}
SNAP=$BLD/leaks.before

snapshot() {
	{
		for d in /dev/hugepages /var/run/dpdk; do
			[ -d "$d" ] && find "$d" -mindepth 1 -maxdepth 1 -printf "$d/%f\n"
		done
		find /tmp -maxdepth 1 \( -name 'skyit.*' -o -name 'skyut.*' -o -name '*.sock' \) -printf '/tmp/%f\n'
		for p in skygate skygatectl skygate-pktgen dpdk-testpmd dpdk-dumpcap pcaptool; do
			pgrep -x "$p" | sed "s/^/process $p pid /" || true
		done
	} 2>/dev/null | sort
}

case "${1:-}" in
before)
	snapshot >"$SNAP"
	echo "ok: snapshot of hugepage files, DPDK runtime dirs, temp dirs and processes ($(wc -l <"$SNAP") entries)"
	;;
after)
	[ -f "$SNAP" ] || { echo "SKIP: no snapshot (run the whole suite: leaks_before runs first)"; exit 77; }
	# processes are given a moment to finish exiting
	for _ in $(seq 1 20); do
		left=$(comm -13 "$SNAP" <(snapshot))
		[ -z "$left" ] && break
		sleep 0.25
	done
	rm -f "$SNAP"
	if [ -n "$left" ]; then
		echo "FAIL: left behind by the tests:" >&2
		echo "$left" >&2
		exit 1
	fi
	echo "ok: no hugepage file, DPDK runtime dir, temp dir, socket or process left behind"
	;;
*)
	echo "usage: leaks.sh before|after" >&2
	exit 2
	;;
esac
