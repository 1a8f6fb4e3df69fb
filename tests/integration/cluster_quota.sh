#!/bin/bash
# Fair use in cluster mode (issue #20 with #18): one real etcd on loopback and two skygate
# nodes (--no-huge, their own prefixes, sockets and state dirs). beam1 is pinned to gw1,
# beam2 to gw2; subscriber 1 (beam1) and 2 (beam2) have a 100 GB allowance counted
# upstream; each node's uplink replays both subscribers' upstream packets without end
# (net_pcap, infinite_rx), and a node drops the packets of the beam it does not own.
#   - gw1 counts subscriber 1's usage; gw2 (not his beam's owner) counts none
#   - `quota add` written on gw2 is stored in etcd and applied on both nodes; `quota import`
#     on gw1 is stored row by row (quota set) and applied on both
#   - gw1 is SIGKILLed: gw2 takes beam1 over within lease TTL + 1 s, and `quota show 1` on
#     gw2 gives his usage from gw1's last snapshot: not zero, at most the stated bound
#     (quota.save_interval + cluster.timeout = 2.5 s) of his traffic below what gw1 showed
#     just before the kill, and the top-up once
#   - gw1 restarted: the pin gives beam1 back; gw2 stores its last snapshot before it lets
#     the beam go, and gw1 shows at least what gw2 showed before the move
#   - gw1 SIGKILLed again and a malformed snapshot put at usage/beam1: gw2 refuses it with
#     an error naming the key and keeps its own usage of subscriber 1
#   - `reload` is refused in cluster mode, with what to do instead
. "$(dirname "$0")/lib.sh"

command -v etcd >/dev/null || { echo "SKIP: etcd not installed (etcd-server)"; exit 77; }
command -v etcdctl >/dev/null || { echo "SKIP: etcdctl not installed (etcd-client)"; exit 77; }

TTL=3
BOUND_MS=2500 # quota.save_interval 2s + cluster.timeout 500ms (README "Cluster mode")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
CPORT=$(free_port)
PPORT=$(free_port)
EP=127.0.0.1:$CPORT
PFX=/skygate/itq-$$
ectl() { ETCDCTL_API=3 etcdctl --endpoints="$EP" --dial-timeout=2s "$@"; }

etcd --name sky --data-dir "$T/etcd" --listen-client-urls "http://$EP" \
	--advertise-client-urls "http://$EP" --listen-peer-urls "http://127.0.0.1:$PPORT" \
	--initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
	--initial-cluster "sky=http://127.0.0.1:$PPORT" --log-level error >>"$T/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 1 100); do
	ectl endpoint health >/dev/null 2>&1 && break
	kill -0 "$ETCD_PID" 2>/dev/null || { cat "$T/etcd.log"; fail "etcd exited"; }
	sleep 0.1
done
ectl endpoint health >/dev/null 2>&1 || fail "etcd did not answer"

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.0.1,,capped,beam1,DE
2,100.64.0.2,,capped,beam2,FR
CSV
"$PCAPTOOL" flows "$T" 100.64.0.1,100.64.0.2 198.51.100.1
write_node() { # N
	mkdir -p "$T/n$1"
	cat >"$T/n$1/sky.yaml" <<YAML
workers: 1
control: { socket: $T/n$1/sky.sock }
mempool: { mbufs: 4095, cache: 64 }
ports:
  - { name: sat0, role: uplink, peer: net0, device: "net_pcap0,rx_pcap=$T/flows_in.pcap,infinite_rx=1" }
  - { name: net0, role: backhaul, peer: sat0, device: "net_null0,no-rx=1" }
subscribers: { file: $T/subs.csv, unknown: drop }
plans:
  capped:
    down: 10Gbit
    up: 10Gbit
    burst: 4MB
    allowance: 100GB
    period: every 366d
    count: [up]
beams:
  beam1: { down: 1Gbit, up: 1Gbit }
  beam2: { down: 1Gbit, up: 1Gbit }
classes: [ { name: bulk, default: true } ]
quota: { save_interval: 2s }
state: { dir: $T/n$1/state }
cluster:
  etcd: [ "http://$EP" ]
  prefix: $PFX
  node: gw$1
  lease_ttl: ${TTL}s
  timeout: 500ms
  other_beams: drop
  pins: { beam1: gw1, beam2: gw2 }
YAML
}
write_node 1
write_node 2

declare -A NPID
start_node() { # N
	(cd "$SRC" && exec "$SKYGATE" -c "$T/n$1/sky.yaml" -- --no-huge -m 512 --no-pci \
		--lcores=0@0,1@1 --file-prefix=skyit-cq$1-$$ --log-level=lib.*:warning \
		--log-level=pmd.*:warning) >>"$T/n$1/log" 2>&1 &
	NPID[$1]=$!
	EXTRA_PIDS+=("${NPID[$1]}")
	for _ in $(seq 1 300); do
		nctl "$1" status >/dev/null 2>&1 && return 0
		kill -0 "${NPID[$1]}" 2>/dev/null || { tail -30 "$T/n$1/log"; fail "node $1 exited at start"; }
		sleep 0.1
	done
	fail "node $1 did not open its control socket"
}
kill_node() { # N: SIGKILL
	kill -KILL "${NPID[$1]}"
	wait "${NPID[$1]}" 2>/dev/null || true
	rm -rf /var/run/dpdk/skyit-cq$1-$$
}
nctl() { local n=$1; shift; "$CTL" --socket "$T/n$n/sky.sock" "$@"; }
nctlj() { local n=$1; shift; "$CTL" --socket "$T/n$n/sky.sock" --json "$@"; }
# num NAME: the first number field NAME of the JSON on stdin
num() { awk -v k="\"$1\"" 'index($0, k) && !d { sub(/.*: */, ""); gsub(/[^0-9]/, ""); print; d = 1 }'; }
used() { nctlj "$1" quota show 1 | num used_bytes; }
credit() { nctlj "$1" quota show 1 | num credit_bytes; }
# shapes N BEAM: node N shapes BEAM
shapes() { nctl "$1" cluster status | grep -Eq "^ +$2 +[^ ]+ +[^ ]+ +true"; }
# wait_for SECONDS CMD...: until CMD succeeds; prints the milliseconds it took
wait_for() {
	local t0 deadline
	t0=$(now_ms)
	deadline=$((t0 + $1 * 1000))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
	echo $(($(now_ms) - t0))
}
counter() { nctlj "$1" cluster status | num "$2"; }
more_than() { [ "$(used "$1")" -gt "$2" ]; }

start_node 1
start_node 2
wait_for 15 shapes 1 beam1 >/dev/null || { nctl 1 cluster status; fail "gw1 does not shape beam1"; }
wait_for 15 shapes 2 beam2 >/dev/null || { nctl 2 cluster status; fail "gw2 does not shape beam2"; }
ok "etcd on $EP; gw1 shapes beam1, gw2 shapes beam2"

# --- usage counted by the owner only ---
wait_for 15 more_than 1 1000000 >/dev/null || { nctl 1 quota show 1; fail "gw1 did not count 1 MB of subscriber 1"; }
[ "$(used 2)" -eq 0 ] || fail "gw2 counts subscriber 1 ($(used 2) bytes) though it drops his beam"
ok "subscriber 1: $(used 1) bytes counted on gw1, none on gw2"

# --- a quota change written on one node applies on both ---
nctlj 2 quota add 1 5GB >"$T/reply" || { cat "$T/reply"; fail "quota add on gw2 refused"; }
grep -q "$PFX/state/quota/1" "$T/reply" || { cat "$T/reply"; fail "quota add was not stored in etcd"; }
C=5000000000
has_credit() { [ "$(credit "$1")" -eq $C ]; }
wait_for 5 has_credit 1 >/dev/null || { nctl 1 quota show 1; fail "the top-up did not reach gw1"; }
wait_for 5 has_credit 2 >/dev/null || { nctl 2 quota show 1; fail "the top-up did not apply on gw2"; }
ectl get "$PFX/state/quota/1" --print-value-only | grep -q '"quota","add","1","5GB"' ||
	fail "etcd does not hold the top-up at $PFX/state/quota/1"
out=$(nctl 1 quota add 1 0 2>&1) && fail "a bad quota add was accepted"
case "$out" in *"expected a size > 0"*) ;; *) fail "bad quota add: '$out'" ;; esac
ok "quota add on gw2: stored at $PFX/state/quota/1, credit $C on gw1 and gw2"

# --- quota import on gw1: each row stored as a quota set, applied on both ---
u2_before=$(nctlj 2 quota show 2 | num used_bytes)
cat >"$T/usage.csv" <<CSV
# usage from the old system
id,used,credit
2,3000000,
CSV
nctlj 1 quota import "$T/usage.csv" >"$T/reply" || { cat "$T/reply"; fail "quota import on gw1 refused"; }
grep -q '"stored": 1' "$T/reply" || { cat "$T/reply"; fail "quota import did not store its row"; }
sub2_set() { [ "$(nctlj 1 quota show 2 | num used_bytes)" -eq 3000000 ]; }
wait_for 5 sub2_set >/dev/null || { nctl 1 quota show 2; fail "the import did not apply on gw1"; }
u2_after=$(nctlj 2 quota show 2 | num used_bytes)
[ "$u2_after" -ge 3000000 ] && [ "$u2_after" -lt "$u2_before" ] ||
	fail "the import did not apply on gw2 (subscriber 2: $u2_before -> $u2_after bytes)"
ectl get "$PFX/state/quota/2" --print-value-only | grep -q '"quota","set","2","used=3000000"' ||
	fail "etcd does not hold the imported row at $PFX/state/quota/2"
ok "quota import on gw1: stored as a quota set, subscriber 2 at 3000000 bytes on gw1, $u2_after on gw2 (his owner)"

# --- reload is refused in cluster mode ---
out=$(nctl 2 reload 2>&1) && fail "reload accepted in cluster mode"
case "$out" in *"refused in cluster mode (node gw2 of $PFX)"*"skygatectl"*"restart"*) ;;
*) fail "reload: '$out'" ;; esac
ok "reload refused: ${out:0:90}..."

# --- gw1 killed: gw2 takes beam1 over with gw1's usage ---
snap1() { ectl get "$PFX/usage/beam1" --print-value-only | grep -q '"beam":"beam1","node":"gw1"'; }
wait_for 5 snap1 >/dev/null || { ectl get --prefix "$PFX/usage"; fail "no usage snapshot of beam1 from gw1 in etcd"; }
t0=$(now_ms)
u0=$(used 1)
sleep 3
t1=$(now_ms)
u1=$(used 1)
kill_node 1
tk=$(now_ms)
ms=$(wait_for $((TTL + 3)) shapes 2 beam1) || { nctl 2 cluster status; fail "gw2 did not take beam1 over"; }
[ $(($(now_ms) - tk)) -le $(((TTL + 1) * 1000 + 500)) ] || fail "the failover took $(($(now_ms) - tk)) ms"
u2=$(used 2)
rate=$(((u1 - u0) * 1000 / (t1 - t0))) # bytes/s counted on gw1
floor=$((u1 - rate * (BOUND_MS + tk - t1) / 1000))
echo "gw1 counted $u1 bytes ($rate B/s), killed; gw2 took beam1 after $ms ms and shows $u2 bytes (at least $floor: the bound ${BOUND_MS} ms)"
[ "$u2" -gt 0 ] || fail "gw2 shows subscriber 1's usage as zero"
[ "$u2" -ge "$floor" ] || fail "gw2 lost more than the bound: $u2 < $floor"
[ "$(credit 2)" -eq $C ] || fail "the top-up changed on takeover: $(credit 2)"
[ "$(counter 2 usage_taken)" -ge 1 ] || fail "gw2 did not count the snapshot taken"
ok "usage of subscriber 1 survived gw1's death (within ${BOUND_MS} ms of traffic)"

# --- a planned move: gw1 back, the pin gives it beam1, gw2 hands its last usage over ---
start_node 1
wait_for 15 shapes 1 beam1 >/dev/null || { nctl 1 cluster status; fail "gw1 did not get beam1 back"; }
u3=$(used 1)
[ "$u3" -ge "$u2" ] || fail "gw1 took beam1 back with $u3 bytes, gw2 had shown $u2"
ok "beam1 back on gw1 with $u3 bytes (gw2 showed $u2 before it let the beam go)"

# --- a malformed snapshot is refused, naming the key; the previous usage stays ---
wait_for 10 shapes 1 beam1 >/dev/null
sleep 0.5
kill_node 1
ectl put "$PFX/usage/beam1" '{"v":1,"beam":"beam1","rev":1,"subs":[[1,"lots",0,1,2,0,0]]}' >/dev/null
ub=$(used 2)
wait_for $((TTL + 3)) shapes 2 beam1 >/dev/null || { nctl 2 cluster status; fail "gw2 did not take beam1 over again"; }
nctlj 2 cluster status >"$T/st"
grep -q "last_refused.*$PFX/usage/beam1: subs\[0\].used is not an integer" "$T/st" ||
	{ cat "$T/st"; fail "the malformed snapshot was not refused naming the key"; }
[ "$(num usage_refused <"$T/st")" -eq 1 ] || fail "usage_refused is not 1"
u4=$(used 2)
[ "$u4" -ge "$ub" ] || fail "gw2's usage of subscriber 1 went from $ub to $u4"
[ "$(credit 2)" -eq $C ] || fail "the top-up changed: $(credit 2)"
ok "malformed usage/beam1 refused by gw2 naming the key; its usage kept ($ub -> $u4)"

kill -TERM "${NPID[2]}"
wait "${NPID[2]}" || fail "gw2 exited with $? after SIGTERM"
ok "cluster quota: done"
