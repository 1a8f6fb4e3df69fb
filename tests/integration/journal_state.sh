#!/usr/bin/env bash
# The journal keeps exactly the acknowledged state: random changes of every kind with
# `journal compact` at random points and restarts between them, `state dump` equal before
# and after every restart (seeded, bounded in time); then damage to the journal and to the
# files it names is refused at start with the file, byte and record, and --recover works.
. "$(dirname "$0")/lib.sh"
POL=$BLD/conf/policies/country_block.bpf.o
SEED=${SEED:-$RANDOM}
echo "seed $SEED (SEED=$SEED to repeat)"

write_state_config "$POL" "{ blocked_terminal_countries: { RU: 1 }, blocked_remote_countries: { KP: 1 } }"

dump() { ctlj state dump | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))"; }
changes() { # N: random changes, seeded
	python3 "$SRC/tests/integration/journal_changes.py" "$T/sky.sock" "$SEED$1" "$2" "$SRC" "$BLD" "$T" >>"$T/changes.log"
}

start_skygate "$T/sky.yaml" js0
for round in 1 2 3 4 5; do
	changes "$round" 30
	[ $((RANDOM % 2)) -eq 0 ] && ctl journal compact >/dev/null
	changes "$round"b 15
	before=$(dump)
	unc=$(ctlj metrics | python3 -c "import json,sys,re; print(re.search(r'^skygate_control_journal_uncommitted_total (\d+)', json.load(sys.stdin)['text'], re.M).group(1))")
	[ "$unc" = 0 ] || fail "$unc journaled commands did not commit before applying"
	stop_skygate
	start_skygate "$T/sky.yaml" js$round
	after=$(dump)
	if [ "$before" != "$after" ]; then
		diff <(tr ',' '\n' <<<"$before") <(tr ',' '\n' <<<"$after") | head -20 >&2
		fail "round $round: state after restart differs from before (SEED=$SEED)"
	fi
done
grep -q "NOT JOURNALED" "$T/changes.log" && fail "a change was not journaled"
acked=$(grep -c '^ok ' "$T/changes.log")
[ "$acked" -gt 100 ] || fail "only $acked changes acknowledged"
ctl journal compact >/dev/null
before=$(dump)
stop_skygate
start_skygate "$T/sky.yaml" js6
[ "$before" = "$(dump)" ] || fail "state after a final compaction and restart differs"
ok "$acked acknowledged changes, 6 restarts, compactions: state dump equal each time"
stop_skygate

# damage: refused with file, byte, record and the way out; the daemon does not start
expect_refusal() { # what, text
	local rc=0
	# shellcheck disable=SC2046
	(cd "$SRC" && exec "$SKYGATE" -c "$T/sky.yaml" -- $(eal_args jsr)) >"$T/refused.log" 2>&1 || rc=$?
	[ $rc -eq 3 ] || { cat "$T/refused.log" >&2; fail "$1: exit $rc, want 3"; }
	grep -qF -- "$2" "$T/refused.log" || { cat "$T/refused.log" >&2; fail "$1: no '$2'"; }
	grep -qF -- "--recover" "$T/refused.log" || fail "$1: the way out is not named"
}
J=$T/state/journal
cp "$J" "$T/journal.good"
cp "$J.tip" "$T/tip.good"
size=$(stat -c %s "$J")
mid=$((size / 2))
# a flipped byte in the middle
python3 -c "
import sys; b=bytearray(open('$J','rb').read()); b[$mid]^=0x20; open('$J','wb').write(b)"
expect_refusal "flipped byte" "journal $J: record #"
grep -q "at byte" "$T/refused.log" || fail "no byte offset named"
ok "a flipped byte mid-journal: start refused ($(grep -o 'record #[0-9]* at byte [0-9]*' "$T/refused.log" | head -1))"
# a zeroed block
cp "$T/journal.good" "$J"
dd if=/dev/zero of="$J" bs=1 seek=$mid count=512 conv=notrunc status=none
expect_refusal "zeroed block" "journal $J: record #"
ok "a zeroed block: start refused"
# truncated: committed records missing
cp "$T/journal.good" "$J"
truncate -s $mid "$J"
expect_refusal "truncation" "journal $J:"
ok "a truncated journal: start refused"
# an empty journal
: >"$J"
expect_refusal "empty" "empty file"
ok "an empty journal: start refused"
# each file it names (policy object, subscriber CSV...): a flipped byte, a zeroed block,
# a truncation, removal: refused, naming the file
cp "$T/journal.good" "$J"
cp "$T/tip.good" "$J.tip"
named=$(grep -o '"path":"[^"]*"' "$J" | cut -d'"' -f4 | sort -u)
[ -n "$named" ] || fail "the journal names no file (a policy object and a subscriber CSV were expected)"
for f in $named; do
	cp "$f" "$T/named.good"
	n=$(stat -c %s "$f")
	python3 -c "
b=bytearray(open('$f','rb').read()); b[$n//2]^=0x01; open('$f','wb').write(b)"
	expect_refusal "flipped byte in $f" "$f"
	grep -q "changed since it was journaled" "$T/refused.log" || fail "$f: no 'changed' reason"
	cp "$T/named.good" "$f"
	dd if=/dev/zero of="$f" bs=1 seek=$((n / 3)) count=$((n / 3 < 512 ? n / 3 : 512)) conv=notrunc status=none
	expect_refusal "zeroed block in $f" "$f"
	cp "$T/named.good" "$f"
	truncate -s $((n / 2)) "$f"
	expect_refusal "truncated $f" "$f"
	rm -f "$f"
	expect_refusal "missing $f" "$f"
	cp "$T/named.good" "$f"
	ok "$(basename "$f"): a flipped byte, a zeroed block, truncation, removal: start refused, naming it"
done

# --recover: starts from the last good record, keeps the rest aside, says so until ack
python3 -c "
import sys; b=bytearray(open('$J','rb').read()); b[$mid]^=0x20; open('$J','wb').write(b)"
# shellcheck disable=SC2046
(cd "$SRC" && exec "$SKYGATE" --recover -c "$T/sky.yaml" -- $(eal_args jsrec)) >"$T/skygate.log" 2>&1 &
SKY_PID=$!
for _ in $(seq 1 300); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ls "$T/state"/journal.damaged-* >/dev/null 2>&1 || fail "--recover kept nothing aside"
[ "$(ctlj status | jget "['journal']['unacknowledged_recoveries'].__len__()")" = 1 ] || fail "status does not show the recovery"
ctlj metrics | grep -q "skygate_control_journal_unacknowledged 1" || fail "metrics do not show the recovery"
stop_skygate
start_skygate "$T/sky.yaml" jsrec2
[ "$(ctlj status | jget "['journal']['unacknowledged_recoveries'].__len__()")" = 1 ] || fail "the recovery note did not survive a restart"
ctl journal ack >/dev/null
[ "$(ctlj status | jget "['journal']['unacknowledged_recoveries'].__len__()")" = 0 ] || fail "journal ack did not clear it"
ok "--recover: started from the last good record, damage kept aside, shown until journal ack"
stop_skygate
