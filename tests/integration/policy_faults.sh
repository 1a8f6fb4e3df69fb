#!/usr/bin/env bash
# Policy objects an operator or attacker might give the daemon, under traffic: a FIFO, a
# directory, a device, a missing file, a file over the size bound, a truncated object,
# garbage, an object whose paths explode (2^32), objects that leak addresses. `policy check` and `policy load` refuse each
# within a second or two with a message naming the file or the rule; `status` answers at
# once afterwards; the running policy (file, sha256, load time) and the traffic verdicts
# (terminals in RU dropped, DE passed) are unchanged; no copy is left in the state
# directory. Then a loaded object truncated on disk (the operator's file and the daemon's
# copy) changes nothing either.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"
POL=$BLD/conf/policies/country_block.bpf.o
COR=$BLD/tests/unit/policy

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.0.1/32,,basic,beam1,DE
2,100.64.0.2/32,,basic,beam1,RU
CSV
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"state: { dir: $T/state }
policy:
  object: $POL
  on_fault: drop
  maps: { blocked_terminal_countries: { RU: 1 } }"
sed -i 's/unknown: { plan: basic }/unknown: drop/' "$T/sky.yaml"
start_skygate "$T/sky.yaml" polf

pg_start traffic --subs "$T/subs.csv" --remote-countries US:100 --direction up \
	--rate 2000pps --duration 120 --drain 200
# a python expression of the JSON reply d
pj() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
counters() { ctlj policy show | pj "d['runs'], d['pass'], d['drop']" | tr -d '(),'; }
# the verdicts over the next N policy runs: both terminals send alike, RU is dropped
verdicts_ok() { # label
	local r0 p0 d0 r1 p1 d1
	read -r r0 p0 d0 <<<"$(counters)"
	for _ in $(seq 1 100); do
		read -r r1 p1 d1 <<<"$(counters)"
		[ $((r1 - r0)) -ge 400 ] && break
		sleep 0.1
	done
	[ $((r1 - r0)) -ge 400 ] || fail "$1: traffic stalled ($((r1 - r0)) policy runs)"
	local dp=$((p1 - p0)) dd=$((d1 - d0))
	# about half dropped (RU), half passed (DE); nothing else
	[ $((dp + dd)) -eq $((r1 - r0)) ] || fail "$1: $((r1 - r0)) runs, $dp pass + $dd drop"
	[ $((dd * 4)) -ge $((dp + dd)) ] && [ $((dd * 4)) -le $((3 * (dp + dd))) ] ||
		fail "$1: $dd of $((dp + dd)) dropped, want about half"
}
show_id() { ctlj policy show | pj "d['file'], d['sha256'], d['loaded_at']"; }
verdicts_ok "before"
ID0=$(show_id)
STATE0=$(ls "$T/state")

mkfifo "$T/fifo"
mkdir "$T/dir"
head -c $(($(stat -c %s "$POL") / 2)) "$POL" >"$T/truncated.bpf.o"
head -c 4096 /dev/urandom >"$T/garbage.bpf.o"
: >"$T/empty.bpf.o"
truncate -s 17M "$T/huge.bpf.o" # sparse: over the 16 MiB bound
# name | path | text the refusal must contain
cases=(
	"FIFO|$T/fifo|$T/fifo: a FIFO, not a regular file"
	"directory|$T/dir|$T/dir: a directory, not a regular file"
	"device|/dev/zero|/dev/zero: a character device, not a regular file"
	"missing file|$T/missing.bpf.o|$T/missing.bpf.o: No such file"
	"file over 16 MiB|$T/huge.bpf.o|$T/huge.bpf.o: 17825792 bytes, more than the limit"
	"truncated object|$T/truncated.bpf.o|$T/truncated.bpf.o"
	"empty file|$T/empty.bpf.o|not an ELF object"
	"garbage|$T/garbage.bpf.o|not an ELF object"
	"path explosion|$COR/paths_explode.bpf.o|[budget]"
	"ctx pointer into a map value|$COR/leak_ctx_value.bpf.o|[leak]"
	"stack pointer in a lookup key|$COR/leak_stack_key.bpf.o|[leak]"
	"ctx pointer returned|$COR/leak_return_ctx.bpf.o|[return]"
	"pointer bits returned|$COR/leak_return_arith.bpf.o|[leak]"
)
now_ms() { date +%s%3N; }
for c in "${cases[@]}"; do
	IFS='|' read -r name path want <<<"$c"
	for cmd in check load; do
		t0=$(now_ms)
		rc=0
		out=$(timeout 20 "$CTL" --socket "$T/sky.sock" policy "$cmd" "$path" 2>&1) || rc=$?
		dt=$(($(now_ms) - t0))
		[ $rc -ne 0 ] || fail "policy $cmd of a $name: accepted: $out"
		[ $rc -ne 124 ] || fail "policy $cmd of a $name: no answer in 20 s"
		grep -qF -- "$want" <<<"$out" || fail "policy $cmd of a $name: error lacks '$want': $out"
		# about a second; 3 s on a loaded 2-CPU VM
		[ "$dt" -le 3000 ] || fail "policy $cmd of a $name: refused after $dt ms"
		t0=$(now_ms)
		timeout 5 "$CTL" --socket "$T/sky.sock" status >/dev/null ||
			fail "status after policy $cmd of a $name"
		dt2=$(($(now_ms) - t0))
		[ "$dt2" -le 1500 ] || fail "status took $dt2 ms after policy $cmd of a $name"
		[ "$(show_id)" = "$ID0" ] || fail "policy $cmd of a $name changed the running policy"
	done
	ok "$name refused in $dt ms: $(head -c 200 <<<"$out")"
done
[ "$(ls "$T/state")" = "$STATE0" ] || fail "refused loads left files in the state dir: $(ls "$T/state")"
verdicts_ok "after the refused objects"
ok "running policy and verdicts unchanged, state dir unchanged"

# a loaded object truncated on disk afterwards: nothing changes
cp "$POL" "$T/mine.bpf.o"
ctl policy load "$T/mine.bpf.o" >/dev/null || fail "policy load of a good object"
ID1=$(show_id)
sha_file=$(sha256sum "$POL" | cut -d' ' -f1)
[ "$(ctlj policy show | jget "['sha256']")" = "$sha_file" ] || fail "sha256 is not of the file's bytes"
copy=$(ctlj policy show | jget "['file']")
[ -f "$copy" ] || fail "no copy of the object in the state dir ($copy)"
cmp -s "$copy" "$POL" || fail "the state dir copy differs from the loaded bytes"
truncate -s 100 "$T/mine.bpf.o"
truncate -s 100 "$copy"
verdicts_ok "after truncating the loaded object"
[ "$(show_id)" = "$ID1" ] || fail "truncating the object changed the running policy"
timeout 5 "$CTL" --socket "$T/sky.sock" status >/dev/null || fail "status after truncation"
ok "loaded object truncated on disk: running policy and verdicts unchanged"

stop_skygate
pg_stop || true
