#!/usr/bin/env bash
# skygate between two memif ports, fed by skygate-pktgen (a second DPDK process) in both
# directions: nothing lost, and skygate's counters (skygatectl --json stats) agree with
# what the generator sent and received.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

"$PKTGEN" --gen-subs 200 --countries DE,FR,NO,BR,JP --beams beam1 --plans basic \
	--v6-share 0.3 --write-csv "$T/subs.csv" >/dev/null
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }"
start_skygate "$T/sky.yaml" memif

# generator: main lcore on CPU 1 (idle), its poller on CPU 0 (skygate polls on CPU 1)
pg_start report --subs "$T/subs.csv" --direction both --size imix --rate 40000pps --duration 3 \
	--drain 500 --max-loss 0
pg_wait report
ctlj stats >"$T/stats.json"
tx_up=$(jget "['directions']['up']['tx_pkts']" <"$T/report.json")
tx_down=$(jget "['directions']['down']['tx_pkts']" <"$T/report.json")
rx_up=$(jget "['directions']['up']['rx_pkts']" <"$T/report.json")
rx_down=$(jget "['directions']['down']['rx_pkts']" <"$T/report.json")
[ "$tx_up" -gt 10000 ] || fail "generator sent only $tx_up upstream"
sat_rx=$(jget "['ports'][0]['rx_packets']" <"$T/stats.json")
net_tx=$(jget "['ports'][1]['tx_packets']" <"$T/stats.json")
net_rx=$(jget "['ports'][1]['rx_packets']" <"$T/stats.json")
sat_tx=$(jget "['ports'][0]['tx_packets']" <"$T/stats.json")
[ "$sat_rx" -eq "$tx_up" ] || fail "sat0 rx $sat_rx != generator upstream tx $tx_up"
[ "$net_tx" -eq "$rx_up" ] || fail "net0 tx $net_tx != generator upstream rx $rx_up"
[ "$net_rx" -eq "$tx_down" ] || fail "net0 rx $net_rx != generator downstream tx $tx_down"
[ "$sat_tx" -eq "$rx_down" ] || fail "sat0 tx $sat_tx != generator downstream rx $rx_down"
[ "$rx_up" -eq "$tx_up" ] && [ "$rx_down" -eq "$tx_down" ] || fail "loss: up $rx_up/$tx_up down $rx_down/$tx_down"
stop_skygate
pg_stop || { cat "$T/report.log"; fail "skygate-pktgen exited non-zero (loss?)"; }
ok "memif: $tx_up up + $tx_down down packets forwarded, none lost; skygate counters match the generator"
