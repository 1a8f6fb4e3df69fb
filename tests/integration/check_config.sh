#!/usr/bin/env bash
# skygate --check: the sample config is valid; each broken config is refused with a
# message naming the file, the line and the key, and a non-zero exit.
. "$(dirname "$0")/lib.sh"

sed "s#build/conf/policies#$BLD/conf/policies#" "$SRC/conf/skygate.yaml" >"$T/good.yaml"
(cd "$SRC" && "$SKYGATE" --check -c "$T/good.yaml") >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "--check refused the sample config"; }
grep -q "configuration OK" "$T/out" || fail "--check printed no verdict"
ok "sample config valid"

# name | sed expression applied to the good config | expected text in the error
cases=(
	"unknown top-level key|1i bogus: 1|good.yaml:1: bogus: unknown"
	"unknown port key|s/role: uplink,/role: uplink, speed: 10,/|ports[0].speed: unknown key"
	"bad role|s/role: uplink,/role: upstream,/|ports[0].role"
	"peer missing|s/peer: net0,/peer: nowhere,/|no port named 'nowhere'"
	"workers out of range|s/^workers: 1/workers: 99/|workers"
	"bad rate unit|s/down: 50Mbit/down: 50MB/|plans.basic.down"
	"missing subscriber file|s#conf/subscribers.csv#/nonexistent/subs.csv#|/nonexistent/subs.csv"
	"bad geo database|s#/usr/share/libloc-location/location.db#/etc/hostname#|geo.database"
	"missing policy object|s#country_block.bpf.o#no_such.bpf.o#|no_such.bpf.o"
	"bad on_fault|s/on_fault: pass/on_fault: maybe/|policy.on_fault"
	"yaml syntax|s/^workers: 1/workers: [1/|good.yaml:"
)
for c in "${cases[@]}"; do
	IFS='|' read -r name expr want <<<"$c"
	sed "$expr" "$T/good.yaml" >"$T/bad.yaml"
	sed -i "s#good.yaml#bad.yaml#" "$T/bad.yaml" 2>/dev/null || true
	rc=0
	(cd "$SRC" && "$SKYGATE" --check -c "$T/bad.yaml") >"$T/out" 2>&1 || rc=$?
	[ $rc -ne 0 ] || fail "$name: accepted"
	want=${want//good.yaml/bad.yaml}
	grep -qF -- "$want" "$T/out" || { cat "$T/out"; fail "$name: message lacks '$want'"; }
	grep -qE "bad.yaml:[0-9]+" "$T/out" || grep -qF "/nonexistent" "$T/out" ||
		{ cat "$T/out"; fail "$name: no file:line"; }
	ok "$name refused: $(head -1 "$T/out")"
done
