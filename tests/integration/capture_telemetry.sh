#!/usr/bin/env bash
# Operators' tools against a running skygate: dpdk-dumpcap captures on its ports (rte_pdump,
# secondary process: needs hugepages and no --huge-unlink) and dpdk-telemetry.py reads the
# /skygate/* endpoints. Skipped (77) when no hugepages are free.
. "$(dirname "$0")/lib.sh"
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
[ "$free" -ge 400 ] || { echo "SKIP: needs 400 free 2 MB hugepages (tools/run reserves them)"; exit 77; }
# both come with Debian's dpdk package, which tools/run installs: missing is a failure
command -v dpdk-dumpcap >/dev/null && command -v dpdk-telemetry.py >/dev/null ||
	fail "dpdk-dumpcap / dpdk-telemetry.py missing (package dpdk)"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

"$PKTGEN" --gen-subs 50 --countries DE,FR --beams beam1 --plans basic --write-csv "$T/subs.csv" >/dev/null
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }"
PFX=skyit-cap-$$
(cd "$SRC" && exec "$SKYGATE" -c "$T/sky.yaml" -- --lcores=0@0,1@1 --file-prefix=$PFX -m 512 \
	--no-pci --log-level=lib.*:warning) >"$T/skygate.log" 2>&1 &
SKY_PID=$!
for _ in $(seq 1 300); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
pg_start report --subs "$T/subs.csv" --rate 2000pps --duration 6
sleep 2
timeout 20 dpdk-dumpcap --file-prefix=$PFX -i net_memif0 -c 50 -w "$T/cap.pcapng" >"$T/dumpcap.log" 2>&1 ||
	{ cat "$T/dumpcap.log"; fail "dpdk-dumpcap failed"; }
# count what the file holds (libpcap reads pcapng), not dumpcap's redrawn progress line
n=$("$PCAPTOOL" count "$T/cap.pcapng") || { cat "$T/dumpcap.log"; fail "cannot read $T/cap.pcapng"; }
# -c 50 stops after the batch that reached 50
[ "$n" -ge 50 ] || { cat "$T/dumpcap.log"; fail "captured $n packets, wanted at least 50"; }
ok "dpdk-dumpcap captured $n packets on sat0"

printf '/skygate/ports\n/skygate/stats,sat0\n' | timeout 10 dpdk-telemetry.py -f $PFX >"$T/tel.out" 2>&1 ||
	{ cat "$T/tel.out"; fail "dpdk-telemetry.py failed"; }
grep -q '"/skygate/ports": \["sat0", "net0"\]' "$T/tel.out" || { cat "$T/tel.out"; fail "/skygate/ports"; }
rx=$(grep '"/skygate/stats"' "$T/tel.out" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['/skygate/stats']['rx_packets'])")
[ "$rx" -gt 0 ] || fail "/skygate/stats,sat0 shows no packets"
ok "dpdk-telemetry.py reads /skygate/ports and /skygate/stats,sat0 (rx $rx)"
pg_wait report
stop_skygate
pg_stop || fail "skygate-pktgen exited non-zero"
