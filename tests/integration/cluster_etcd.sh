#!/bin/bash
# Cluster mode (issue #20): one real etcd on loopback (free ports, data dir in $T) and three
# skygate nodes (--no-huge, their own file prefixes and sockets), lease_ttl 3s. Each node's
# uplink replays upstream packets of six subscribers, one per beam, without end (net_pcap,
# infinite_rx); the backhaul is a sink (net_null). gw1 and gw2 drop other nodes' beams,
# gw3 passes them.
#   - every node joins, the six beams are split two by two, each beam has one owner, and each
#     beam's traffic flows on its owner (and is dropped, counted, on a dropping non-owner)
#   - a change written once (plan, subscriber, policy map entry) reaches every node: the
#     propagation time is measured and printed (target <= 100 ms)
#   - a refused change (one a node would refuse; a malformed value put behind skygate's back)
#     leaves every node unchanged, and the error names the key
#   - killing a node (SIGKILL) moves its beams to the others within lease TTL + 1 s, and
#     their traffic flows again there; the change is an event (cluster.beam) on gw1
#   - stopping etcd and every node, then starting them again, loses no change
#   - partition: node 3 reaches etcd through a TCP relay that is cut: it keeps its state and
#     its control socket, keeps forwarding, refuses writes (read-only), gives its beams up before its lease
#     can expire, the others take them after; a change made meanwhile, etcd compacted past
#     it: the relay back, gw3 rejoins, reloads the whole state and gets its share
# The workers of the three nodes share CPU 1; main lcores, the nodes' etcd threads and etcd
# run on CPU 0.
. "$(dirname "$0")/lib.sh"

command -v etcd >/dev/null || { echo "SKIP: etcd not installed (etcd-server)"; exit 77; }
command -v etcdctl >/dev/null || { echo "SKIP: etcdctl not installed (etcd-client)"; exit 77; }

TTL=3
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
CPORT=$(free_port)
PPORT=$(free_port)
RPORT=$(free_port) # the relay of node 3 to etcd
EP=127.0.0.1:$CPORT
ectl() { ETCDCTL_API=3 etcdctl --endpoints="$EP" --dial-timeout=2s "$@"; }

start_etcd() {
	etcd --name sky --data-dir "$T/etcd" --listen-client-urls "http://$EP" \
		--advertise-client-urls "http://$EP" --listen-peer-urls "http://127.0.0.1:$PPORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
		--initial-cluster "sky=http://127.0.0.1:$PPORT" --log-level error \
		>>"$T/etcd.log" 2>&1 &
	ETCD_PID=$!
	for _ in $(seq 1 100); do
		ectl endpoint health >/dev/null 2>&1 && return 0
		kill -0 "$ETCD_PID" 2>/dev/null || { cat "$T/etcd.log"; fail "etcd exited"; }
		sleep 0.1
	done
	fail "etcd did not answer"
}

# A TCP relay to etcd for node 3 (its partition is the relay going away)
RELAY_PID=
start_relay() {
	python3 - "$RPORT" "$CPORT" >"$T/relay.log" 2>&1 <<'PY' &
import socket, sys, threading
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(64)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
while True:
    c, _ = ls.accept()
    u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    for x, y in ((c, u), (u, c)):
        threading.Thread(target=pipe, args=(x, y), daemon=True).start()
PY
	RELAY_PID=$!
	EXTRA_PIDS+=("$RELAY_PID")
	for _ in $(seq 1 50); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $RPORT), 0.2)" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "the relay did not listen"
}
stop_relay() { kill -KILL "$RELAY_PID" 2>/dev/null || true; wait "$RELAY_PID" 2>/dev/null || true; }

POL=$BLD/conf/policies/country_block.bpf.o
cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.0.1,,basic,beam1,DE
2,100.64.0.2,,basic,beam2,FR
3,100.64.0.3,,basic,beam3,DE
4,100.64.0.4,,basic,beam4,FR
5,100.64.0.5,,basic,beam5,DE
6,100.64.0.6,,basic,beam6,FR
CSV
# traffic: upstream packets of the six subscribers (one per beam), replayed without end on
# each node's uplink port; the backhaul port is a sink
"$PCAPTOOL" flows "$T" 100.64.0.1,100.64.0.2,100.64.0.3,100.64.0.4,100.64.0.5,100.64.0.6 198.51.100.1
write_node() { # N ENDPOINT OTHER_BEAMS
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
  basic: { down: 10Gbit, up: 10Gbit, burst: 4MB }
  gold: { down: 100Mbit, up: 10Mbit }
beams:
$(for b in 1 2 3 4 5 6; do echo "  beam$b: { down: 1Gbit, up: 200Mbit }"; done)
classes: [ { name: bulk, default: true } ]
policy: { object: $POL, maps: { blocked_terminal_countries: { RU: 1 } } }
state: { dir: $T/n$1/state }
cluster:
  etcd: [ "http://$2" ]
  prefix: /skygate/it-$$
  node: gw$1
  lease_ttl: ${TTL}s
  timeout: 500ms
  other_beams: $3
YAML
}
write_node 1 "$EP" drop
write_node 2 "$EP" drop
write_node 3 "127.0.0.1:$RPORT" pass # gw3 passes what it does not own: it keeps forwarding

declare -A NPID
start_node() { # N
	# shellcheck disable=SC2046
	(cd "$SRC" && exec "$SKYGATE" -c "$T/n$1/sky.yaml" -- --no-huge -m 512 --no-pci \
		--lcores=0@0,1@1 --file-prefix=skyit-cl$1-$$ --log-level=lib.*:warning \
		--log-level=pmd.*:warning) >>"$T/n$1/log" 2>&1 &
	NPID[$1]=$!
	EXTRA_PIDS+=("${NPID[$1]}")
}
wait_node() { # N
	for _ in $(seq 1 300); do
		nctl "$1" status >/dev/null 2>&1 && return 0
		kill -0 "${NPID[$1]}" 2>/dev/null || { tail -30 "$T/n$1/log"; fail "node $1 exited at start"; }
		sleep 0.1
	done
	fail "node $1 did not open its control socket"
}
stop_node() { # N
	kill -TERM "${NPID[$1]}"
	local rc=0
	wait "${NPID[$1]}" || rc=$?
	[ $rc -eq 0 ] || { tail -20 "$T/n$1/log"; fail "node $1 exited with $rc after SIGTERM"; }
}
nctl() { local n=$1; shift; "$CTL" --socket "$T/n$n/sky.sock" "$@"; }
nctlj() { local n=$1; shift; "$CTL" --socket "$T/n$n/sky.sock" --json "$@"; }
# the checks run in tight loops: skygatectl and grep only (a python start costs 50 ms here)
shaped() { nctlj "$1" cluster status | grep -c 'shaped_here.: true' || true; }
# the beams and who holds them, as node N sees it: "beam1=gw1 beam2=gw3 ..."
owners() { nctl "$1" cluster status | grep -E '^ +beam[0-9]' | while read -r b _ o _; do printf '%s=%s ' "$b" "$o"; done; }
held() { nctlj "$1" cluster status | grep -c 'owner.: .gw' || true; }
# wait_for SECONDS CMD...: until CMD succeeds; prints the milliseconds it took
wait_for() {
	local t0 deadline
	t0=$(now_ms)
	deadline=$((t0 + $1 * 1000))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.02
	done
	echo $(($(now_ms) - t0))
}
# balanced N...: each listed node shapes 6 / count beams, and node N1 sees every beam held
balanced() {
	local want=$((6 / $#)) n
	for n in "$@"; do [ "$(shaped "$n")" -eq "$want" ] || return 1; done
	[ "$(held "$1")" -eq 6 ]
}
all_plan() { for n in "$@"; do nctlj "$n" plan show gold | grep -Ec "down_bps.: $WANT,?$" >/dev/null || return 1; done; }
has_sub() { nctlj "$1" subscriber show 77 | grep -c "plan.: .$2." >/dev/null; }
all_sub() { local p=$1; shift; for n in "$@"; do has_sub "$n" "$p" || return 1; done; }
has_map() { nctlj "$1" map show blocked_terminal_countries | grep -c '.KP.' >/dev/null; }
all_map() { for n in "$@"; do has_map "$n" || return 1; done; }
# traffic: subscriber ID (on beamID) is passed by node N (its packet counter grows)
# (the first packets line of `subscriber show` is upstream, class bulk)
up_pkts() { nctl "$1" subscriber show "$2" | grep -m1 -E '^ +packets ' | tr -s ' ' | cut -d' ' -f3; }
flows() {
	local a
	a=$(up_pkts "$1" "$2")
	sleep 0.2
	[ "$(up_pkts "$1" "$2")" -gt "$a" ]
}
# the beams node N shapes, one a line
shaped_beams() { nctl "$1" cluster status | grep -E '^ +beam[0-9]+ ' | while read -r b _ _ sh; do [ "$sh" = true ] && echo "$b"; done; }
# taken "BEAMS" N...: each of BEAMS is shaped by one of the nodes N...
taken() {
	local beams=$1 all b
	shift
	all=$(for n in "$@"; do shaped_beams "$n"; done)
	for b in $beams; do echo "$all" | grep -qx "$b" || return 1; done
}
# every beam flows on the node that owns it (as node $1 sees the owners)
owners_flow() {
	local pair b o
	for pair in $(owners "$1"); do
		b=${pair%%=*}
		o=${pair#*=}
		flows "${o#gw}" "${b#beam}" || return 1
	done
}

start_etcd
start_relay
for n in 1 2 3; do start_node $n; done
for n in 1 2 3; do wait_node $n; done
ok "etcd on $EP, three nodes up"

ms=$(wait_for 15 balanced 1 2 3) || { for n in 1 2 3; do nctl $n cluster status; done; fail "the beams were not split 2/2/2"; }
ok "the six beams split two by two (${ms} ms after the last node answered): $(owners 1)"
owners_flow 1 || fail "a beam does not flow on its owner"
for pair in $(owners 1); do
	b=${pair%%=*}
	[ "${pair#*=}" = gw1 ] && continue
	if flows 1 "${b#beam}"; then fail "gw1 (other_beams: drop) passes $b of ${pair#*=}"; fi
	break
done
nctlj 1 cluster status | grep -c 'foreign_dropped.: [1-9]' >/dev/null || fail "gw1 does not count what it drops"
ok "each beam flows on its owner only"

# --- a change written once reaches every node ---
# propagation: the writer says when it sent the change to etcd (sent_at_ms, wall clock) and
# at which revision it was stored; each node says when it applied that revision
# (applied_at_ms): the nodes share this machine's clock
# num NAME: the first number field NAME of the JSON on stdin (the top level comes first);
# awk reads to the end (a reader that stops early fails the pipe under pipefail)
num() { awk -v k="$1" 'index($0, k) && !d { gsub(/[^0-9]/, ""); print; d = 1 }'; }
applied() { [ "$(nctlj "$1" cluster status | num applied_revision)" -ge "$2" ]; }
line() { awk -v k="$1" 'index($0, k) && !d { print; d = 1 }'; } # the first line with NAME
prop() { # LABEL REPLY_FILE CHECK [ARGS]: CHECK ARGS N passes on node N once applied
	local label=$1 reply=$2 rev sent n at out=""
	shift 2
	rev=$(num revision <"$reply")
	sent=$(num sent_at_ms <"$reply")
	for n in 1 2 3; do
		wait_for 5 applied "$n" "$rev" >/dev/null || fail "$label did not reach gw$n"
		at=$(nctlj "$n" cluster status | num applied_at_ms)
		"$@" "$n" || fail "$label: gw$n applied revision $rev but does not show the change"
		out="$out gw$n $((at - sent)) ms,"
		[ $((at - sent)) -le 1000 ] || fail "$label took $((at - sent)) ms to reach gw$n"
	done
	echo "propagation: $label, sent to etcd -> applied:${out%,} (target <= 100 ms)"
}
WANT=123000000
nctlj 1 plan set gold down=123Mbit >"$T/reply"
prop "plan set on gw1" "$T/reply" all_plan
nctlj 2 subscriber add 77 ipv4=100.64.0.77 plan=gold beam=beam3 country=DE >"$T/reply"
prop "subscriber add on gw2" "$T/reply" all_sub gold
nctlj 3 map update blocked_terminal_countries KP 1 >"$T/reply"
prop "map update on gw3" "$T/reply" all_map
nctl 1 subscriber set 77 plan=basic >/dev/null
wait_for 5 all_sub basic 1 2 3 >/dev/null || fail "subscriber set did not reach every node"
# a policy object: stored by path and SHA-256; a node whose file at that path differs refuses
cp "$POL" "$T/pol.bpf.o"
nctlj 2 policy load "$T/pol.bpf.o" >"$T/reply"
rev=$(num revision <"$T/reply")
for n in 1 2 3; do wait_for 5 applied $n "$rev" >/dev/null || fail "policy load did not reach gw$n"; done
sha=$(nctlj 1 policy show | line sha256)
[ -n "$sha" ] || fail "gw1 shows no program"
for n in 2 3; do [ "$(nctlj $n policy show | line sha256)" = "$sha" ] || fail "gw$n runs another program"; done
cp "$BLD/conf/policies/country_matrix.bpf.o" "$T/pol.bpf.o"
ectl get /skygate/it-$$/state/policy --print-value-only | ectl put /skygate/it-$$/state/policy >/dev/null
for n in 1 2 3; do
	wait_for 5 grep -q "state/policy.*here has SHA-256" "$T/n$n/log" >/dev/null || fail "gw$n loaded a different file"
	[ "$(nctlj $n policy show | line sha256)" = "$sha" ] || fail "gw$n changed its program"
done
ok "changes written on one node reach all three"

# --- refused changes leave every node unchanged ---
if nctl 2 plan set gold down=banana 2>"$T/refused.txt"; then fail "a bad rate was accepted"; fi
grep -q "rate" "$T/refused.txt" || fail "the refusal does not say why: $(cat "$T/refused.txt")"
cat >"$T/values" <<'JSON'
{"argv":["plan","set","gold","down=123Mbit"]}
{"argv":["plan","set","gold","down=-1"]}
JSON
[ "$(ectl get /skygate/it-$$/state/plans/gold --print-value-only)" = "$(sed -n 1p "$T/values")" ] ||
	fail "the store holds something else: $(ectl get /skygate/it-$$/state/plans/gold)"
# behind skygate: a value its command refuses, and one that is not JSON
sed -n 2p "$T/values" | ectl put /skygate/it-$$/state/plans/gold >/dev/null
echo "not json" | ectl put /skygate/it-$$/state/plans/basic >/dev/null
for n in 1 2 3; do
	wait_for 5 grep -q "state/plans/basic.*not JSON" "$T/n$n/log" >/dev/null ||
		fail "node $n did not name the malformed key"
	wait_for 5 grep -q "state/plans/gold.*refused" "$T/n$n/log" >/dev/null ||
		fail "node $n did not refuse the bad value"
done
all_plan 1 2 3 || fail "a refused change changed a node"
# put the good value back, as an operator would
nctl 3 plan set gold down=123Mbit >/dev/null
ok "refused changes (validated before storing; malformed in the store) left every node as it was"

# --- a killed node's beams move to the others within TTL + 1 s ---
gw2_beams=$(owners 1 | tr ' ' '\n' | grep '=gw2$' | cut -d= -f1 | tr '\n' ' ')
# the ownership changes as events on the control socket of gw1
"$CTL" --socket "$T/n1/sky.sock" events --follow 'type=cluster.*' >"$T/events.out" 2>&1 &
EV_PID=$!
EXTRA_PIDS+=("$EV_PID")
follower() { [ "$(nctlj 1 status | jget "['events']['subscribers']")" -ge 1 ]; }
wait_for 5 follower >/dev/null || fail "the events follower did not subscribe"
kill -KILL "${NPID[2]}"
wait "${NPID[2]}" 2>/dev/null || true
t0=$(now_ms)
ms=$(wait_for $((TTL + 3)) taken "$gw2_beams" 1 3) || { nctl 1 cluster status; nctl 3 cluster status; fail "the beams of gw2 did not move"; }
took=$(($(now_ms) - t0))
wait_for 5 balanced 1 3 >/dev/null || fail "gw1 and gw3 did not settle 3/3"
echo "failover: gw2 killed -> its beams shaped by gw1 and gw3 after $took ms (lease ttl ${TTL} s)"
[ "$took" -le $(((TTL + 1) * 1000)) ] || fail "failover took $took ms, more than TTL + 1 s"
owners_flow 1 || fail "a beam of gw2 does not flow on its new owner"
kill -TERM "$EV_PID" 2>/dev/null || true
wait "$EV_PID" 2>/dev/null || true
grep -Eq 'cluster.beam.*shaped_here.: *true' "$T/events.out" || { cat "$T/events.out"; fail "no cluster.beam event on gw1"; }
ok "traffic of $gw2_beams flows again, on $(owners 1)"
rm -rf /var/run/dpdk/skyit-cl2-$$
start_node 2
wait_node 2
wait_for 15 balanced 1 2 3 >/dev/null || fail "gw2 did not get its share back"
all_plan 2 && all_sub basic 2 && all_map 2 || fail "gw2 restarted without the state of the cluster"
ok "the beams of a killed node moved in $took ms; restarted, it loaded the state and got its share"

# --- etcd and every node restarted: no change lost ---
for n in 1 2 3; do stop_node $n; done
kill -TERM "$ETCD_PID"
wait "$ETCD_PID" 2>/dev/null || true
start_etcd
for n in 1 2 3; do start_node $n; done
for n in 1 2 3; do wait_node $n; done
all_plan 1 2 3 && all_sub basic 1 2 3 && all_map 1 2 3 || fail "a change was lost across the restart"
# a node's journal (its cache) pushed into etcd again: every change is stored, none refused
nctlj 1 cluster import "$T/n2/state/journal" >"$T/import.json" || fail "cluster import failed"
[ "$(jget "['stored']" <"$T/import.json")" -ge 4 ] || fail "cluster import stored too little: $(cat "$T/import.json")"
rev=$(jget "['revision']" <"$T/import.json")
for n in 1 2 3; do wait_for 5 applied $n "$rev" >/dev/null || fail "gw$n did not apply the import"; done
all_plan 1 2 3 && all_sub basic 1 2 3 && all_map 1 2 3 || fail "cluster import changed a node"
wait_for 15 balanced 1 2 3 >/dev/null || fail "the beams were not split again after the restart"
ok "etcd and the nodes restarted: every change is still there"

# --- partition: node 3's way to etcd is cut ---
before=$(shaped 3)
stop_relay
t0=$(now_ms)
none_shaped() { [ "$(shaped "$1")" -eq 0 ]; }
ms=$(wait_for $TTL none_shaped 3) || fail "gw3 still shapes beams $TTL s after it lost etcd"
gave=$(($(now_ms) - t0))
echo "partition: gw3 gave its $before beams up $gave ms after the cut (its lease: ${TTL} s)"
[ "$gave" -lt $((TTL * 1000)) ] || fail "gw3 gave its beams up after its lease could expire"
nctlj 3 cluster status | jget "['connected']" | grep -cx False >/dev/null || fail "gw3 does not say it lost etcd"
all_plan 3 && all_sub basic 3 || fail "gw3 lost its state"
if nctl 3 plan set gold down=1Mbit 2>"$T/ro.txt"; then fail "gw3 accepted a write without etcd"; fi
grep -q "read-only" "$T/ro.txt" || fail "the refusal of gw3 does not say read-only: $(cat "$T/ro.txt")"
# (grep -c, or a file first, never grep -q on a pipe: it may end the pipe early, and
# pipefail take the SIGPIPE of the writer as a failure)
metric() { nctl "$1" metrics >"$T/metrics.$1" && grep -q "$2" "$T/metrics.$1"; }
metric 3 "^skygate_cluster_connected 0" || fail "no alarm in the metrics of gw3"
for b in 1 2 3 4 5 6; do flows 3 $b || fail "gw3 stopped forwarding beam$b"; done
ms=$(wait_for $((TTL + 3)) balanced 1 2) || fail "gw1 and gw2 did not take the beams of gw3"
ok "gw3 cut off: kept its state, refused writes, gave its beams up in $gave ms; gw1 and gw2 took them"
# meanwhile a change, and etcd forgets the revisions gw3 has not seen: it must reload all
WANT=77000000
nctl 1 plan set gold down=77Mbit >/dev/null
wait_for 5 all_plan 1 2 >/dev/null || fail "plan set did not reach gw1 and gw2"
rev=$(ectl get /skygate/it-$$/state/plans/gold -w fields | grep '^"Revision"' | cut -d: -f2 | tr -d ' ')
ectl compact "$rev" --physical >/dev/null
all_plan 3 && fail "gw3 applied a change while cut off"
start_relay
ms=$(wait_for 15 balanced 1 2 3) || { nctl 3 cluster status; fail "gw3 did not rejoin"; }
wait_for 5 all_plan 3 >/dev/null || fail "gw3 did not get the change made while it was cut off"
grep -q "was compacted" "$T/n3/log" || fail "gw3 did not notice the compaction"
metric 3 "^skygate_cluster_connected 1" || fail "gw3 still alarmed"
metric 1 '^skygate_beam_owner{beam=.beam1.,node=.gw[123].} 1' || fail "no skygate_beam_owner"
ok "gw3 rejoined in $ms ms and got its share back"

for n in 1 2 3; do stop_node $n; done
echo "PASS cluster_etcd"
