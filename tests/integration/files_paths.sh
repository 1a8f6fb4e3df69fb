#!/usr/bin/env bash
# Paths that are not files, given to the running daemon and to its start: a FIFO (nothing
# writes to it: opening or reading it would block forever), a directory, /dev/zero (endless),
# a missing file, an oversized (sparse) file, a garbage file.
#  - `geo reload PATH` and `subscriber load PATH`: refused at once with a message naming the
#    path and the reason; `status` answers at once afterwards; `geo show` and
#    `subscriber list` are as before (only the refusal counter moved); nothing journaled.
#  - `skygate --check -c CONFIG` where CONFIG, its subscribers.file or its geo.database is a
#    FIFO: refused, exits, no hang; `skygate -c FIFO` (a real start): refused at once.
. "$(dirname "$0")/lib.sh"

DB=/usr/share/libloc-location/location.db
"$PKTGEN" --gen-subs 50 --countries DE,FR --beams beam1 --plans basic --write-csv "$T/subs.csv" >/dev/null
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"geo: { database: $DB }
state: { dir: $T/state }"
start_skygate "$T/sky.yaml" files

mkfifo "$T/fifo"
mkdir "$T/dir"
truncate -s $((1024 * 1024 * 1024 + 1)) "$T/huge.db"  # geo: 1 GiB limit
truncate -s $((512 * 1024 * 1024 + 1)) "$T/huge.csv" # subscriber CSV: 512 MiB limit
head -c 100000 /dev/urandom >"$T/garbage"

ms() { date +%s%3N; }
# snapshot of the state a refused command must leave alone
state_of() {
	{
		ctlj geo show | python3 -c "
import json,sys
d=json.load(sys.stdin); d.pop('reload_failures')
print(json.dumps(d, sort_keys=True))"
		ctlj subscriber list size=1000
	} || fail "state snapshot"
}
journal_size() { stat -c %s "$T/state/journal" 2>/dev/null || echo 0; }

# refuse CMD... PATH WANT: the command names PATH and WANT, within 2 s; status at once after
refuse() {
	local want=$1 t0 t1 rc=0
	shift
	t0=$(ms)
	ctl --timeout 20 "$@" >"$T/out" 2>&1 || rc=$?
	t1=$(ms)
	[ $rc -ne 0 ] || fail "$*: accepted"
	grep -qF -- "${*: -1}" "$T/out" || { cat "$T/out"; fail "$*: message does not name the path"; }
	grep -qF -- "$want" "$T/out" || { cat "$T/out"; fail "$*: message lacks '$want'"; }
	[ $((t1 - t0)) -lt 2000 ] || fail "$*: refused after $((t1 - t0)) ms"
	ctl --timeout 1 status >/dev/null || fail "status does not answer after '$*'"
	ok "$* refused in $((t1 - t0)) ms: $(head -1 "$T/out")"
}

before=$(state_of)
fails0=$(ctlj geo show | jget "['reload_failures']")
j0=$(journal_size)
n=0
for what in geo subscriber; do
	if [ $what = geo ]; then cmd=(geo reload) huge=$T/huge.db limit=1073741824 bad="not a readable location database"
	else cmd=(subscriber load) huge=$T/huge.csv limit=536870912 bad="$T/garbage:1:"; fi
	refuse "a FIFO, not a regular file" "${cmd[@]}" "$T/fifo"
	refuse "a directory, not a regular file" "${cmd[@]}" "$T/dir"
	refuse "a character device, not a regular file" "${cmd[@]}" /dev/zero
	refuse "No such file or directory" "${cmd[@]}" "$T/missing"
	refuse "more than the limit of $limit" "${cmd[@]}" "$huge"
	refuse "$bad" "${cmd[@]}" "$T/garbage"
	[ $what = geo ] && n=$((n + 6))
done
[ "$(state_of)" = "$before" ] || fail "a refused command changed the state"
[ "$(ctlj geo show | jget "['reload_failures']")" -eq $((fails0 + n)) ] || fail "reload_failures did not count the $n refusals"
[ "$(journal_size)" -eq "$j0" ] || fail "a refused command was journaled"
ls "$T/state" | grep -q '^subscribers-' && fail "a refused subscriber load left its copy behind"
ok "state unchanged after $((n * 2)) refusals (geo show, subscriber list, journal)"
# the FIFO is still there, still unopened by a writer: nobody holds it
stop_skygate
ok "daemon stopped cleanly after the refusals"

# --check and the start with a FIFO for the config or a file it names
check_refused() { # LABEL WANT ARGS...: exits non-zero (not blocked), message names WANT
	local label=$1 want=$2 rc=0
	shift 2
	(cd "$SRC" && timeout 20 "$SKYGATE" "$@" >"$T/out" 2>&1) || rc=$?
	[ $rc -ne 124 ] || fail "$label: still running after 20 s (blocked)"
	[ $rc -ne 0 ] || { cat "$T/out"; fail "$label: accepted"; }
	grep -qF -- "$want" "$T/out" || { cat "$T/out"; fail "$label: message lacks '$want'"; }
	ok "$label: refused (exit $rc): $(grep -F -- "$want" "$T/out" | head -1)"
}
check_refused "--check, the config a FIFO" "$T/fifo: cannot read: a FIFO, not a regular file" \
	--check -c "$T/fifo"
sed "s#file: $T/subs.csv#file: $T/fifo#" "$T/sky.yaml" >"$T/subsfifo.yaml"
check_refused "--check, subscribers.file a FIFO" "$T/fifo: a FIFO, not a regular file" \
	--check -c "$T/subsfifo.yaml"
sed "s#database: $DB#database: $T/fifo#" "$T/sky.yaml" >"$T/geofifo.yaml"
check_refused "--check, geo.database a FIFO" "$T/fifo: a FIFO, not a regular file" \
	--check -c "$T/geofifo.yaml"
sed "s#database: $DB#database: /dev/zero#" "$T/sky.yaml" >"$T/geozero.yaml"
check_refused "--check, geo.database /dev/zero" "/dev/zero: a character device, not a regular file" \
	--check -c "$T/geozero.yaml"
# shellcheck disable=SC2046
check_refused "start with the config a FIFO" "$T/fifo: cannot read: a FIFO, not a regular file" \
	-c "$T/fifo" -- $(eal_args filesfifo)
ok "files: every path that is no file refused at once, the daemon answering throughout"
