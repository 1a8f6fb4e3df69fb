#!/usr/bin/env bash
# The configured location database changed under the running daemon, as a careless update
# would: truncated in place, rewritten in place with garbage, rewritten while being
# reloaded. The daemon loaded a copy (a sealed memfd), so `geo lookup` (whose network
# strings come from libloc reading the database) keeps answering exactly as before, no
# SIGBUS; the file watch (check_interval) and `geo reload` refuse the broken file and keep
# the running table; a good file put back by rename is loaded by the watch.
. "$(dirname "$0")/lib.sh"

DB=/usr/share/libloc-location/location.db
cp "$DB" "$T/loc.db"
"$PKTGEN" --gen-subs 20 --countries DE --beams beam1 --plans basic --write-csv "$T/subs.csv" >/dev/null
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"geo: { database: $T/loc.db, check_interval: 1s }"
start_skygate "$T/sky.yaml" geochg

# 600 addresses: fixed ones, then random IPv4 and IPv6 (seeded), each one `geo lookup`
python3 - >"$T/queries" <<'PY'
import random, ipaddress
r = random.Random(7)
fixed = ["8.8.8.8", "1.1.1.1", "193.0.6.139", "203.0.113.9", "2a00:1450:4001:80b::200e", "2001:db8::1"]
for a in fixed:
    print("geo lookup", a)
for _ in range(400):
    print("geo lookup", ipaddress.IPv4Address(r.getrandbits(32)))
for _ in range(194):
    print("geo lookup", ipaddress.IPv6Address((0x2 << 124) | r.getrandbits(124)))
PY
lookups() { python3 "$SRC/tests/integration/ctlbatch.py" "$T/sky.sock" <"$T/queries"; }
lookups >"$T/before.txt" || fail "lookups"
found=$(python3 -c "
import json,sys
n=0
for l in open(sys.argv[1]):
    d=json.loads(l)
    if not d.get('ok'): sys.exit('geo lookup: ' + d.get('error', '?'))
    n += d['result']['network'] is not None
print(n)" "$T/before.txt") || fail "lookups refused"
[ "$found" -gt 300 ] || fail "only $found of 600 lookups found a network"
# running, not a zombie (the daemon is our child: kill -0 succeeds until it is reaped)
alive() { grep -q '^State:[[:space:]]*[RSD]' "/proc/$SKY_PID/status" 2>/dev/null; }
same_answers() { # LABEL
	alive || fail "$1: skygate died"
	lookups >"$T/now.txt" 2>"$T/lookups.err" || { alive || fail "$1: skygate died"; cat "$T/lookups.err"; fail "$1: lookups failed"; }
	cmp -s "$T/before.txt" "$T/now.txt" || { diff "$T/before.txt" "$T/now.txt" | head; fail "$1: answers changed"; }
	ok "$1: the same 600 answers ($found with a network)"
}
failures() { ctlj geo show | jget "['reload_failures']"; }
# wait until the watch refused a new version: reload_failures > $1, within 30 s
watch_refused() {
	for _ in $(seq 1 300); do
		[ "$(failures)" -gt "$1" ] && return 0
		sleep 0.1
	done
	fail "the file watch did not refuse the changed file"
}
networks() { ctlj geo show | jget "['networks_ipv4'], d['networks_ipv6'], d['database']"; }
nets0=$(networks)

# 1. truncated in place (the same inode, size 0)
f0=$(failures)
: >"$T/loc.db"
same_answers "truncated in place"
watch_refused "$f0"
same_answers "truncated, refused by the watch"
grep -q "changed but was refused" "$T/skygate.log" || fail "the refusal was not logged"

# 2. rewritten in place with garbage
f0=$(failures)
head -c 3000000 /dev/urandom >"$T/loc.db"
same_answers "rewritten in place with garbage"
watch_refused "$f0"
rc=0
ctl geo reload >"$T/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "geo reload of the garbage file accepted"
grep -qF "$T/loc.db: not a readable location database" "$T/out" || { cat "$T/out"; fail "geo reload: no reason"; }
rc=0
ctl geo reload "$T/loc.db" >"$T/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "geo reload PATH of the garbage file accepted"
[ "$(networks)" = "$nets0" ] || fail "the running table changed: $(networks), was $nets0"
same_answers "garbage refused by geo reload, running table kept"

# 3. rewritten in place, slowly, while being reloaded: read once consistently or refused
python3 - "$DB" "$T/loc.db" <<'PY' &
import sys, time
src = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb") as f:   # in place: the same inode, truncated then grown
    for i in range(0, len(src), 1 << 20):
        f.write(src[i:i + (1 << 20)])
        f.flush()
        time.sleep(0.05)
PY
WR=$!
sleep 0.5
rc=0
ctl --timeout 60 geo reload >"$T/out" 2>&1 || rc=$?
wait "$WR"
if [ $rc -eq 0 ]; then
	[ "$(networks)" = "$nets0" ] || fail "a reload during the rewrite loaded a partial file: $(networks)"
	ok "reload during the rewrite: read consistently"
else
	[ "$(networks)" = "$nets0" ] || fail "running table changed by a refused reload"
	ok "reload during the rewrite refused: $(head -1 "$T/out")"
fi
same_answers "after a reload during a rewrite"

# 4. a good database put back by rename (as `location update` does): the watch loads it
a0=$(ctlj geo show | jget "['auto_reloads']")
cp "$DB" "$T/new.db"
mv "$T/new.db" "$T/loc.db"
for _ in $(seq 1 600); do
	[ "$(ctlj geo show | jget "['auto_reloads']")" -gt "$a0" ] && break
	sleep 0.1
done
[ "$(ctlj geo show | jget "['auto_reloads']")" -gt "$a0" ] || fail "the watch did not load the good file"
[ "$(networks)" = "$nets0" ] || fail "good file loaded with other counts: $(networks)"
same_answers "good file back by rename, loaded by the watch"

# 5. removed: still answering from the copy
rm -f "$T/loc.db"
same_answers "file removed"
ctl --timeout 1 status >/dev/null || fail "status"
stop_skygate
ok "files_geo_changed: the database changed under the daemon never changed or crashed it"
