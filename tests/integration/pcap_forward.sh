#!/usr/bin/env bash
# skygate between two net_pcap ports: what comes out equals what went in minus the
# malformed frames, byte for byte and in order, in both directions; drops are counted by
# reason; non-IP frames pass untouched.
. "$(dirname "$0")/lib.sh"

"$PCAPTOOL" gen "$T"
. "$T/counts"
cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,10.1.0.0/16,,basic,beam1,DE
2,,2001:db8:100::/40,basic,beam1,FR
CSV
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_pcap0,rx_pcap=$T/up_in.pcap,tx_pcap=$T/sat0_out.pcap\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_pcap1,rx_pcap=$T/down_in.pcap,tx_pcap=$T/net0_out.pcap\" }" \
	"shaping: { enabled: false }   # shaping reorders across subscribers by design"
start_skygate "$T/sky.yaml" pcap

# the pcap PMD reads its file once: wait until every frame was received
wait_rx $((UP_IN + DOWN_IN))
sleep 0.5 # downstream frames may still sit in the shaper for a moment
ctlj stats >"$T/stats.json"
stop_skygate   # closes the pcap dumpers

"$PCAPTOOL" cmp "$T/net0_out.pcap" "$T/up_expect.pcap" || fail "upstream output differs"
"$PCAPTOOL" cmp "$T/sat0_out.pcap" "$T/down_expect.pcap" || fail "downstream output differs"
for i in 0 1; do
	dropped=$(jget "['ports'][$i]['dropped']" <"$T/stats.json")
	[ "$dropped" -eq "$UP_MALFORMED" ] || fail "port $i dropped $dropped, expected $UP_MALFORMED"
	for reason in ipv4_bad_ihl ipv4_bad_total_length ipv4_truncated ipv6_ext_chain_too_long l4_truncated; do
		n=$(jget "['ports'][$i]['drops'].get('$reason', 0)" <"$T/stats.json")
		[ "$n" -eq 8 ] || fail "port $i: $reason = $n, expected 8"
	done
	nonip=$(jget "['ports'][$i]['non_ip']" <"$T/stats.json")
	[ "$nonip" -eq 16 ] || fail "port $i: non_ip = $nonip, expected 16"
done
ok "pcap: $UP_EXPECT + $DOWN_EXPECT frames forwarded byte for byte, $UP_MALFORMED + $DOWN_MALFORMED malformed dropped by reason"

# two workers, two port pairs (pcap has no RSS: each pair belongs to one worker)
cp "$T/up_in.pcap" "$T/up_in2.pcap"
cp "$T/down_in.pcap" "$T/down_in2.pcap"
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_pcap0,rx_pcap=$T/up_in.pcap,tx_pcap=$T/sat0_out.pcap\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_pcap1,rx_pcap=$T/down_in.pcap,tx_pcap=$T/net0_out.pcap\" }
  - { name: sat1, role: uplink, peer: net1, device: \"net_pcap2,rx_pcap=$T/up_in2.pcap,tx_pcap=$T/sat1_out.pcap\" }
  - { name: net1, role: backhaul, peer: sat1, device: \"net_pcap3,rx_pcap=$T/down_in2.pcap,tx_pcap=$T/net1_out.pcap\" }" \
	"shaping: { enabled: false }"
sed -i 's/^workers: 1/workers: 2/' "$T/sky.yaml"
SKY_LCORES=0@0,1@0,2@1 start_skygate "$T/sky.yaml" pcap2
for _ in $(seq 1 100); do
	rx=$(ctlj stats | python3 -c "import json,sys; print(sum(p['rx_packets'] for p in json.load(sys.stdin)['ports']))")
	[ "$rx" -ge $((2 * (UP_IN + DOWN_IN))) ] && break
	sleep 0.1
done
ctlj status | jget "['workers']" | grep -q "sat1/0" || fail "second pair not polled"
stop_skygate
for pair in "net0_out up_expect" "sat0_out down_expect" "net1_out up_expect" "sat1_out down_expect"; do
	set -- $pair
	"$PCAPTOOL" cmp "$T/$1.pcap" "$T/$2.pcap" >/dev/null || fail "2 workers: $1 differs from $2"
done
ok "pcap, 2 workers x 2 port pairs: every pair forwarded byte for byte"
