#!/usr/bin/env bash
# Country blocking through the daemon with pcap files: terminals in DE and RU send to real
# addresses of several countries; the country_block policy blocks terminals located in RU
# and remote addresses in CN. The frames that come out are exactly those of DE terminals to
# non-CN addresses — where "CN" is what `skygatectl geo lookup` (the location database)
# says of each address — byte for byte and in order; the rest are counted as policy drops.
. "$(dirname "$0")/lib.sh"
POL=$BLD/conf/policies/country_block.bpf.o
REMOTES=8.8.8.8,114.114.114.114,223.5.5.5,77.88.8.8,1.1.1.1,80.80.80.80,202.96.128.86,2001:4860:4860::8888,240e:4c:4008::1,2a02:6b8::feed:0ff
"$PCAPTOOL" flows "$T" 10.1.0.5,10.1.1.5,2001:db8:100::5 "$REMOTES"
cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,10.1.0.0/24,2001:db8:100::/48,basic,beam1,DE
2,10.1.1.0/24,,basic,beam1,RU
CSV
"$PCAPTOOL" pick "$T/flows_in.pcap" "$T/empty.pcap" 65535 >/dev/null   # downstream: nothing
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_pcap0,rx_pcap=$T/flows_in.pcap,tx_pcap=$T/sat0_out.pcap\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_pcap1,rx_pcap=$T/empty.pcap,tx_pcap=$T/net0_out.pcap\" }" \
	"shaping: { enabled: false }
geo: { database: /usr/share/libloc-location/location.db }
policy:
  object: $POL
  maps: { blocked_terminal_countries: { RU: 1 }, blocked_remote_countries: { CN: 1 } }"
sed -i 's/unknown: { plan: basic }/unknown: drop/' "$T/sky.yaml"
start_skygate "$T/sky.yaml" polc
n_in=$(wc -l <"$T/flows.txt")
for _ in $(seq 1 100); do
	[ "$(ctlj stats | jget "['ports'][0]['rx_packets']")" -ge "$n_in" ] && break
	sleep 0.1
done

# expected: the database's answer for each remote address, the CSV's for each terminal
keep=
while read -r i term remote; do
	cc=$(ctlj geo lookup "$remote" | jget "['country']")
	case "$term" in 10.1.1.*) tcc=RU ;; *) tcc=DE ;; esac
	if [ "$cc" != CN ] && [ "$tcc" != RU ]; then keep="$keep,$i"; fi
	echo "$i $term($tcc) -> $remote($cc)"
done <"$T/flows.txt" >"$T/verdicts.txt"
ctlj stats >"$T/stats.json"
stop_skygate
grep -q "(CN)" "$T/verdicts.txt" || fail "no CN address among the remotes (database changed?)"
n_keep=$("$PCAPTOOL" pick "$T/flows_in.pcap" "$T/expect.pcap" "${keep#,}")
"$PCAPTOOL" cmp "$T/net0_out.pcap" "$T/expect.pcap" || { cat "$T/verdicts.txt"; fail "forwarded frames differ from the expected set"; }
drops=$(jget "['ports'][0]['drops'].get('policy_drop', 0)" <"$T/stats.json")
[ "$drops" -eq $((n_in - n_keep)) ] || fail "policy drops $drops, expected $((n_in - n_keep))"
ok "country_block: $n_keep of $n_in frames forwarded (DE terminals to non-CN hosts), $drops dropped as policy, matching the location database"
