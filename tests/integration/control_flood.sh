#!/usr/bin/env bash
# The control socket stays the operator's: while 2,000 connections are held open (by root,
# by one other user, by many users), root churns connections as fast as it can, or 64
# clients trickle a byte a second, root's
# `skygatectl status` answers within a second; other users are bounded per uid and leave
# room for root; trickling and idle clients are dropped after their bound, told which;
# a refused skygatectl says why.
. "$(dirname "$0")/lib.sh"
FLOOD=$SRC/tests/integration/ctlflood.py
IDLE_S=4
REQ_S=2

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.0.1,,basic,beam1,DE
CSV
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_ring0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_ring1\" }"
sed -i "s|^control: .*|control: { socket: $T/sky.sock, mode: \"0666\", idle_timeout: ${IDLE_S}s, request_timeout: ${REQ_S}s }|" "$T/sky.yaml"
# the limits are checked at start, the message names the key
for c in "reserved_clients: 300|reserved_clients 300: must be below max_clients" \
	"idle_timeout: 10ms|idle_timeout must be 100ms..24h" \
	"clients_per_uid: 0|control.clients_per_uid" \
	"max_clients: 1|control.max_clients" \
	"request_max: 100|request_max 100 bytes: must be 1KB..64MB"; do
	IFS='|' read -r kv want <<<"$c"
	sed "s|^control: .*|control: { socket: $T/sky.sock, $kv }|" "$T/sky.yaml" >"$T/bad.yaml"
	rc=0
	(cd "$SRC" && "$SKYGATE" --check -c "$T/bad.yaml") >"$T/check.out" 2>&1 || rc=$?
	[ $rc -ne 0 ] || fail "control { $kv } accepted"
	grep -qF -- "$want" "$T/check.out" || { cat "$T/check.out"; fail "control { $kv }: message lacks '$want'"; }
done
ok "bad control limits refused at start, naming the key"

# other users reach the socket and write their reports
chmod 755 "$T"
mkdir -m 1777 "$T/rep"
install -m 755 "$CTL" "$T/rep/skygatectl"
start_skygate "$T/sky.yaml" flood

# status_fast WHAT: root's status answers within 1 s, three times
status_fast() {
	local t0 ms
	for _ in 1 2 3; do
		t0=$(date +%s%3N)
		ctl --timeout 5 status >/dev/null || fail "$1: status failed"
		ms=$(($(date +%s%3N) - t0))
		[ "$ms" -lt 1000 ] || fail "$1: status took $ms ms"
		MAXMS=$((ms > MAXMS ? ms : MAXMS))
		sleep 0.3
	done
}
# flood MODE UID N SECONDS NAME: in the background, until its connections are made
flood() {
	rm -f "$T/rep/$5" "$T/rep/$5.ready"
	python3 "$FLOOD" "$1" "$T/sky.sock" "$2" "$3" "$4" "$T/rep/$5" >"$T/$5.log" 2>&1 &
	FPID=$!
	for _ in $(seq 1 300); do
		[ -f "$T/rep/$5.ready" ] && return 0
		kill -0 $FPID 2>/dev/null || { cat "$T/$5.log"; fail "$5: flood client died"; }
		sleep 0.05
	done
	fail "$5: connections not made in 15 s"
}
flood_end() { # NAME: wait for the report
	wait $FPID || { cat "$T/$1.log"; fail "$1: flood client failed"; }
	[ -f "$T/rep/$1" ] || fail "$1: no report"
}
rget() { jget "$2" <"$T/rep/$1"; }
metric() { ctl metrics | awk -v m="$1" '$1 == m {print $2}'; }

# 1. 2,000 connections from root itself: the newest take the place of the oldest idle ones
MAXMS=0
flood hold 0 2000 3 root
status_fast "2000 connections from root"
flood_end root
[ "$(rget root "['connected']")" = 2000 ] || fail "root flood: $(cat "$T/rep/root")"
ev=$(rget root "['limits'].get('max_clients', 0)")
[ "$ev" -ge 1744 ] || fail "root flood: $ev connections told they made room (want >= 2000-256): $(cat "$T/rep/root")"
ok "2000 connections from root: status answered in <= $MAXMS ms; $ev oldest closed to make room, each told why"

# 1b. root connecting as fast as it can, holding the newest 1,000
MAXMS=0
flood churn 0 1000 4 churn
status_fast "root churning connections"
flood_end churn
# (connects the kernel turned away while the queue was full are the flood's problem)
[ "$(rget churn "['connects']")" -ge 1000 ] || fail "churn: too few connections: $(cat "$T/rep/churn")"
ok "root churning $(rget churn "['connects']") connections in 4 s ($(rget churn "['connect_errors']") turned away by a full queue): status answered in <= $MAXMS ms"

# 2. 2,000 connections from one other user: 16 kept, the rest refused, naming the limit
MAXMS=0
flood hold 65534 2000 3 nobody
status_fast "2000 connections from uid 65534"
# that user's own skygatectl is refused, and says why
out=$(python3 "$FLOOD" run 65534 "$T/rep/skygatectl" --socket "$T/sky.sock" status 2>&1) &&
	fail "uid 65534's 17th connection was accepted: $out"
grep -q "connection refused: uid 65534 already has 16 connections.*clients_per_uid" <<<"$out" ||
	fail "refusal does not say why: $out"
flood_end nobody
ref=$(rget nobody "['limits'].get('clients_per_uid', 0)")
[ "$ref" -ge 1984 ] || fail "uid flood: $ref refused by clients_per_uid (want >= 1984): $(cat "$T/rep/nobody")"
[ "$(rget nobody "['open_at_end']")" = 16 ] || fail "uid flood: want 16 held: $(cat "$T/rep/nobody")"
ok "2000 connections from uid 65534: 16 held, $ref refused by clients_per_uid; status <= $MAXMS ms; refused skygatectl: $out"

# 3. many users fill what is theirs (256 - 16 kept for root): root still gets in
MAXMS=0
pids=()
for u in $(seq 60001 60020); do
	python3 "$FLOOD" hold "$T/sky.sock" "$u" 16 3 "$T/rep/u$u" >"$T/u$u.log" 2>&1 &
	pids+=($!)
done
for u in $(seq 60001 60020); do
	for _ in $(seq 1 200); do [ -f "$T/rep/u$u.ready" ] && break; sleep 0.05; done
done
status_fast "20 users x 16 connections"
for p in "${pids[@]}"; do wait "$p" || fail "a user's flood client failed"; done
held=0 full=0
for u in $(seq 60001 60020); do
	held=$((held + $(rget "u$u" "['open_at_end']")))
	full=$((full + $(rget "u$u" "['limits'].get('max_clients', 0)")))
done
[ "$held" -eq 240 ] || fail "20 users: $held connections held (want 256 - 16 reserved = 240)"
[ "$full" -eq 80 ] || fail "20 users: $full refused as full (want 320 - 240 = 80)"
ok "20 users x 16 connections: 240 held, 80 refused (socket full for them); root's status <= $MAXMS ms"

# 4. 64 clients trickling a byte a second, reconnecting when dropped
MAXMS=0
flood trickle 0 64 7 trickle
status_fast "64 trickling clients"
status_fast "64 trickling clients"
flood_end trickle
r=$T/rep/trickle
dropped=$(rget trickle "['limits'].get('request_timeout', 0)")
longest=$(rget trickle "['longest_s']")
[ "$dropped" -ge 64 ] || fail "trickle: $dropped dropped by request_timeout (want >= 64): $(cat "$r")"
python3 -c "import sys; sys.exit(0 if $longest <= $REQ_S + 1.5 else 1)" ||
	fail "trickle: a client lasted $longest s (bound ${REQ_S}s + 1.5 s)"
python3 -c "import json,sys; d=json.load(open('$r')); sys.exit(0 if d.get('longest_open_s', 0) <= $REQ_S + 1.5 else 1)" ||
	fail "trickle: a connection still open has lasted too long: $(cat "$r")"
ok "64 trickling clients: status <= $MAXMS ms; $dropped dropped at the request timeout, longest $longest s"

# 5. an idle connection is closed after the idle timeout, told so
rm -f "$T/rep/idle"
python3 "$FLOOD" idle "$T/sky.sock" 0 "$T/rep/idle" >"$T/idle.log" 2>&1 || fail "idle client failed"
after=$(rget idle "['closed_after_s']")
[ "$(rget idle "['limit']")" = idle_timeout ] || fail "idle: $(cat "$T/rep/idle")"
python3 -c "import sys; sys.exit(0 if $IDLE_S - 0.2 <= $after <= $IDLE_S + 1.5 else 1)" ||
	fail "idle: closed after $after s (bound ${IDLE_S}s)"
ok "idle connection closed after $after s, naming idle_timeout"

# the counters say what happened
for m in clients_evicted clients_refused requests_timed_out clients_idle_closed; do
	v=$(metric "skygate_control_${m}_total")
	[ -n "$v" ] && [ "$v" -gt 0 ] || fail "metric skygate_control_${m}_total is '$v'"
done
ok "metrics count evictions, refusals, request and idle timeouts"
kill -0 "$SKY_PID" || fail "daemon died"
stop_skygate
