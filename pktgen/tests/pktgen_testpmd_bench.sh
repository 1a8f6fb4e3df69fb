#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Baseline: skygate-pktgen as fast as possible through dpdk-testpmd io forwarding over two
# memif pairs, 64 B and IMIX, both directions. Prints Mpps sent/received and loss; never
# fails on a number (exit 77 when testpmd is missing, 1 when a run breaks).
# usage: pktgen_testpmd_bench.sh [skygate-pktgen] [seconds]
set -u
PG=${1:-${SKY_BUILD_ROOT:-build}/pktgen/skygate-pktgen}
SECS=${2:-5}
TESTPMD=$(command -v dpdk-testpmd || true)
[ -n "$TESTPMD" ] || { echo "SKIP: needs dpdk-testpmd (Debian package dpdk-dev)"; exit 77; }
DIR=$(mktemp -d /tmp/pktgen_bench.XXXXXX)
. "$(dirname "$0")/testpmd_lib.sh"
trap 'stop_testpmd; rm -rf "$DIR" /var/run/dpdk/pgbt$$' EXIT
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (2 vCPUs shared; figures vary run to run)"
for size in 64 imix; do
	# fresh each run: 22.11 memif servers can crash when a client leaves
	start_testpmd io pgbt$$ 5 "$DIR/testpmd.log"
	"$PG" --lcores=0@1,1@0 $EAL_COMMON --file-prefix=pgb$$ \
		--vdev=net_memif0,role=client,socket="$DIR"/a.sock,id=0 \
		--vdev=net_memif1,role=client,socket="$DIR"/b.sock,id=0 -- \
		--gen-subs 1000 --countries 4 --rate 0 --size "$size" --duration "$SECS" --quiet \
		--report "$DIR/$size.json" >/dev/null 2>"$DIR/$size.err" || { cat "$DIR/$size.err"; exit 1; }
	python3 - "$DIR/$size.json" "$size" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); t = r["totals"]
print("pktgen_testpmd size=%-4s tx %.3f Mpps (%.0f Mbit/s)  rx %.3f Mpps (%.0f Mbit/s)  loss %.2f%%  latency p50 %.0f us" % (
    sys.argv[2], t["tx_pps"] / 1e6, t["tx_mbps"], t["rx_pps"] / 1e6, t["rx_mbps"],
    100 * t["loss_ratio"], t["latency_us"].get("p50", 0)))
EOF
	stop_testpmd
done
