#!/usr/bin/env bash
# Faults against the journal with the real daemon: kill -9 at random points under traffic
# and changes (a restart gives back exactly what was acknowledged: the test keeps its own
# list), and a full disk (a small tmpfs as the state directory: changes are refused with a
# clear reply, nothing changes, the daemon keeps running and recovers when there is room).
. "$(dirname "$0")/lib.sh"
POL=$BLD/conf/policies/country_block.bpf.o
SEED=${SEED:-$RANDOM}
echo "seed $SEED (SEED=$SEED to repeat)"
RANDOM=$SEED

"$PCAPTOOL" gen "$T" >/dev/null
cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,10.1.0.1,2001:db8:100::/56,basic,beam1,DE
2,10.1.0.2,,basic,beam1,FR
CSV
# traffic all along: the pcap ports replay their files forever
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_pcap0,rx_pcap=$T/up_in.pcap,tx_pcap=/dev/null,infinite_rx=1\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_pcap1,rx_pcap=$T/down_in.pcap,tx_pcap=/dev/null,infinite_rx=1\" }" \
	"state: { dir: $T/state }
policy: { object: $POL, maps: { blocked_terminal_countries: { RU: 1 } } }"
dumpto() { ctlj state dump >"$1"; }

# --- kill -9 at random points ---
base=
for round in 1 2 3 4; do
	start_skygate "$T/sky.yaml" jk$round
	rx=$(ctlj stats | jget "['ports'][0]['rx_packets']")
	log=$T/kill$round.log
	python3 "$SRC/tests/integration/journal_kill.py" run "$T/sky.sock" "$SEED$round" $((round * 1000)) "$log" &
	drv=$!
	# the driver is connected and changing things; then a random point
	for _ in $(seq 1 100); do grep -q '^ok ' "$log" 2>/dev/null && break; sleep 0.05; done
	sleep "0.$((RANDOM % 9 + 1))"
	[ $((RANDOM % 3)) -eq 0 ] && ctl journal compact >/dev/null 2>&1
	sleep "0.$((RANDOM % 9 + 1))"
	kill -KILL "$SKY_PID"
	wait "$SKY_PID" 2>/dev/null || true
	SKY_PID=
	wait "$drv" || true
	rm -rf /var/run/dpdk/skyit-jk$round-$$ 2>/dev/null || true
	[ "$(grep -c '^ok ' "$log" 2>/dev/null)" -gt 0 ] || fail "round $round: no change acknowledged before the kill"
	start_skygate "$T/sky.yaml" jk${round}b
	[ "$(ctlj stats | jget "['ports'][0]['rx_packets']")" -gt 0 ] || fail "no traffic"
	dumpto "$T/dump$round.json"
	python3 "$SRC/tests/integration/journal_kill.py" check "$T/dump$round.json" "$log" $base ||
		fail "round $round: the restart did not give back the acknowledged state (SEED=$SEED)"
	base=$T/dump$round.json
	stop_skygate
done
[ "$rx" -ge 0 ]
ok "kill -9 under traffic and changes, 4 times: every acknowledged change came back"

# --- a full disk ---
umount_state() { umount "$T/full" 2>/dev/null || true; }
# the daemon first (it holds files there), then the mount, then the rest
trap '[ -n "$SKY_PID" ] && stop_pid "$SKY_PID" TERM; SKY_PID=; umount_state; cleanup' EXIT
mkdir -p "$T/full"
if ! mount -t tmpfs -o size=1m tmpfs "$T/full" 2>/dev/null; then
	echo "skip: cannot mount a tmpfs (not root?): the full-disk case did not run"
	exit 0
fi
sed -i "s|state: { dir: $T/state }|state: { dir: $T/full/state }|" "$T/sky.yaml"
start_skygate "$T/sky.yaml" jfull
ctl subscriber add 500 ipv4=10.9.0.1 plan=basic beam=beam1 country=DE >/dev/null
ctl policy load "$POL" >/dev/null
# fill the file system
dd if=/dev/zero of="$T/full/fill" bs=4k status=none 2>/dev/null || true
# each kind of change until it is refused (a short record may still fit in the slack of
# the journal's last page: then it is simply accepted, and must survive the restart below);
# a refusal says why and that nothing changed, and nothing did
until_refused() { # WORDS with K for a counter
	local k out
	for k in $(seq 1 40); do
		dumpto "$T/before.json"
		# shellcheck disable=SC2046
		out=$(ctl $(sed "s/K/$k/g" <<<"$*") 2>&1) && continue
		grep -qE "not journaled \(No space left on device|No space left on device" <<<"$out" ||
			fail "'$*' refused without saying why: $out"
		grep -q "copy\|nothing changed" <<<"$out" || fail "'$*': refusal does not say nothing changed: $out"
		dumpto "$T/after.json"
		cmp -s "$T/before.json" "$T/after.json" || fail "a refused '$*' changed the state"
		echo "refused: $* ($(head -c 120 <<<"$out"))"
		return 0
	done
	fail "'$*' never refused on a full disk"
}
until_refused subscriber add 6K ipv4=10.9.1.K plan=basic beam=beam1 country=FR
until_refused beam set beam1 down=KGbit
until_refused plan set basic down=KGbit
until_refused map update blocked_terminal_countries CN K
until_refused subscriber set 500 realm=K
until_refused policy load "$BLD/conf/policies/remote_country_block.bpf.o"
ctl status >/dev/null || fail "the daemon stopped answering on a full disk"
ok "full disk: changes refused ('not journaled ... nothing changed'), state unchanged, daemon running"
# room again: changes go through, and everything accepted survives a restart
rm -f "$T/full/fill"
ctl beam set beam1 down=77Gbit >/dev/null || fail "no change accepted after space was freed"
dumpto "$T/before.json"
stop_skygate
start_skygate "$T/sky.yaml" jfull2
dumpto "$T/after.json"
cmp -s "$T/before.json" "$T/after.json" || fail "state after restart differs"
ok "space freed: changes accepted again, and a restart gives them back"
stop_skygate
