#!/usr/bin/env bash
# Configuration reload: SIGHUP and `skygatectl reload` re-read the file and apply what can
# change live through the journaled commands, all or nothing.
#  - a plan rate changed in the file: SIGHUP, `plan show` has it, the journal has the
#    `plan set`, a restart keeps it; the log lists the change
#  - beams, subscriber file, policy map entries changed: `skygatectl reload` lists each
#  - an invalid file, and a file changing ports (needs a restart), are refused with the
#    reason, and nothing changes (state dump, journal)
#  - a reload with an unchanged file reports no changes, journals nothing and drops nothing
#    while traffic runs
. "$(dirname "$0")/lib.sh"
POL=$BLD/conf/policies/country_block.bpf.o

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,10.1.0.1,,basic,beam1,DE
CSV
ports="  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }"
write_config "$ports" "state: { dir: $T/state }
policy: { object: $POL, maps: { blocked_terminal_countries: { RU: 1 }, blocked_remote_countries: { KP: 1 } } }"
cp "$T/sky.yaml" "$T/orig.yaml"
plan_down() { ctlj plan show basic | jget "['down_bps']"; }
dump() { ctlj state dump | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))"; }
jcount() { ctlj journal show 0 | python3 -c "import json,sys; d=json.load(sys.stdin); print(len(d if isinstance(d, list) else d.get('records', d.get('changes', []))))"; }

start_skygate "$T/sky.yaml" rl0
[ "$(plan_down)" -eq 10000000000 ] || fail "plan basic down = $(plan_down) at start"

# 1. plan rate changed, SIGHUP
sed -i 's/basic: { down: 10Gbit/basic: { down: 2Gbit/' "$T/sky.yaml"
kill -HUP "$SKY_PID"
for _ in $(seq 1 50); do [ "$(plan_down)" -eq 2000000000 ] && break; sleep 0.1; done
[ "$(plan_down)" -eq 2000000000 ] || fail "plan show after SIGHUP: down = $(plan_down)"
grep -q "reload: plan set basic down=2000000000" "$T/skygate.log" || fail "the log does not list the change"
ctlj journal show 0 | grep -q '"plan", "set", "basic", "down=2000000000"\|plan set basic down=2000000000' ||
	{ ctlj journal show 0 >&2; fail "the journal does not have the plan set"; }
ok "SIGHUP: plan rate applied, logged and journaled"

# 2. unchanged: no changes, nothing journaled, nothing dropped
before=$(dump)
jb=$(ctlj journal show 0 | md5sum)
out=$(ctlj reload)
[ "$(jget "['changes']" <<<"$out")" = "[]" ] || fail "unchanged reload reported changes: $out"
[ "$(dump)" = "$before" ] || fail "unchanged reload changed the state"
[ "$(ctlj journal show 0 | md5sum)" = "$jb" ] || fail "unchanged reload wrote to the journal"
ok "unchanged file: reload reports no changes, journals nothing"

# 3. beams, map entries, subscriber file: each listed
sed -i 's/beam1: { down: 40Gbit, up: 40Gbit }/beam1: { down: 30Gbit, up: 40Gbit }/; s/blocked_remote_countries: { KP: 1 }/blocked_remote_countries: { KP: 1, IR: 1 }/' "$T/sky.yaml"
sed -i 's/name: realtime, dscp: \[46\]/name: realtime, dscp: [46, 34]/' "$T/sky.yaml"
grep -q "dscp: \[46, 34\]" "$T/sky.yaml" || fail "test bug: class rule not changed"
echo "2,10.1.0.2,,basic,beam1,FR" >>"$T/subs.csv"
out=$(ctlj reload)
for want in "class reload" "beam set beam1 down=30000000000 up=40000000000" "map update blocked_remote_countries IR 1" "subscriber load $T/subs.csv"; do
	grep -qF "$want" <<<"$out" || fail "reload did not list '$want': $out"
done
[ "$(ctlj beam show beam1 | jget "['down_bps']")" -eq 30000000000 ] || fail "beam not changed"
ctlj subscriber show 2 >/dev/null || fail "subscriber 2 not loaded"
ctl map show blocked_remote_countries | grep -q IR || fail "map entry IR not added"
# telemetry: the metrics listener moves to the new address
MPORT=$((20000 + $$ % 20000))
printf 'telemetry: { prometheus: "127.0.0.1:%s" }\n' "$MPORT" >>"$T/sky.yaml"
out=$(ctlj reload)
grep -qF "telemetry prometheus 127.0.0.1:$MPORT" <<<"$out" || fail "telemetry change not listed: $out"
python3 -c "import sys, urllib.request; t = urllib.request.urlopen('http://127.0.0.1:%s/metrics' % sys.argv[1], timeout=5).read().decode(); sys.exit(0 if 'skygate_' in t else 1)" "$MPORT" ||
	fail "no metrics on the reloaded telemetry address"
# policy object: a program without a map the file fills is refused (nothing changed); the
# same with that map dropped from the file loads, and the file's entries fill the new maps
cp "$T/sky.yaml" "$T/keep.yaml"
sha_before=$(ctlj policy show | jget "['sha256']")
sed -i "s|object: $POL|object: $BLD/conf/policies/remote_country_block.bpf.o|" "$T/sky.yaml"
rc=0
err=$("$CTL" --socket "$T/sky.sock" reload 2>&1) || rc=$?
[ "$rc" -eq 1 ] && grep -q "no map named 'blocked_terminal_countries'" <<<"$err" ||
	fail "policy without the file's map: exit $rc, $err"
[ "$(ctlj policy show | jget "['sha256']")" = "$sha_before" ] || fail "refused policy reload changed the program"
[ "$sha_before" = "$(sha256sum "$POL" | cut -d' ' -f1)" ] || fail "test bug: running policy is not $POL"
sed -i 's/blocked_terminal_countries: { RU: 1 }, //' "$T/sky.yaml"
out=$(ctlj reload) || fail "policy change refused"
grep -qF "policy load $BLD/conf/policies/remote_country_block.bpf.o" <<<"$out" || fail "policy load not listed: $out"
grep -qF "map update blocked_remote_countries KP 1" <<<"$out" || fail "new program's map not filled: $out"
[ "$(ctlj policy show | jget "['sha256']")" = "$(sha256sum "$BLD/conf/policies/remote_country_block.bpf.o" | cut -d' ' -f1)" ] ||
	fail "policy show: not the new program"
ctl map show blocked_remote_countries | grep -q IR || fail "map entry IR missing after policy load"
cp "$T/keep.yaml" "$T/sky.yaml"
out=$(ctlj reload) || fail "policy change back refused"
grep -qF "policy load $POL" <<<"$out" || fail "policy load back not listed: $out"
# a class renamed needs a restart
sed 's/name: bulk, default: true/name: besteffort, default: true/' "$T/sky.yaml" >"$T/renamed.yaml"
cp "$T/sky.yaml" "$T/keep.yaml"
cp "$T/renamed.yaml" "$T/sky.yaml"
rc=0
err=$("$CTL" --socket "$T/sky.sock" reload 2>&1) || rc=$?
[ "$rc" -eq 1 ] && grep -q "classes (names" <<<"$err" || fail "class rename: exit $rc, $err"
cp "$T/keep.yaml" "$T/sky.yaml"
# human form lists the changes too
ctl reload >"$T/human.txt" || fail "skygatectl reload failed"
ok "reload: class rules, beam, map entry, subscriber file and telemetry applied and listed"

# 4. refused: invalid file, a ports change; nothing changes
before=$(dump)
jb=$(ctlj journal show 0 | md5sum)
cp "$T/sky.yaml" "$T/good.yaml"
sed -i 's/basic: { down: 2Gbit/basic: { down: 1Gbit/; s/beam1: { down: 30Gbit/beam1: { down: 20Gbit/; s/down: 1Gbit, up: 10Gbit/down: 1Gbit, up: 10Gbt/' "$T/sky.yaml"
rc=0
err=$("$CTL" --socket "$T/sky.sock" reload 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "invalid file: skygatectl reload exit $rc"
grep -q "plans.basic.up" <<<"$err" || fail "invalid file: reason does not name the key: $err"
grep -q "nothing changed" <<<"$err" || fail "invalid file: does not say nothing changed: $err"
[ "$(dump)" = "$before" ] || fail "invalid file: state changed"
cp "$T/good.yaml" "$T/sky.yaml"
sed -i 's/basic: { down: 2Gbit/basic: { down: 1Gbit/; s/rx_desc/rx_desc/' "$T/sky.yaml"
sed -i 's/id=0\\" }$/id=0\\", rx_desc: 512 }/' "$T/sky.yaml"
sed -i 's/device: "net_memif0,role=server,socket=\(.*\),id=0" }/device: "net_memif0,role=server,socket=\1,id=0", rx_desc: 512 }/' "$T/sky.yaml"
grep -q "rx_desc: 512" "$T/sky.yaml" || fail "test bug: ports not changed"
rc=0
err=$("$CTL" --socket "$T/sky.sock" reload 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "ports change: skygatectl reload exit $rc"
grep -q "need a restart" <<<"$err" && grep -q "ports" <<<"$err" || fail "ports change: reason: $err"
kill -HUP "$SKY_PID"
for _ in $(seq 1 50); do grep -q "reload refused: .*ports" "$T/skygate.log" && break; sleep 0.1; done
grep -q "reload refused: .*need a restart.*ports" "$T/skygate.log" || fail "SIGHUP with a ports change: not refused in the log"
[ "$(dump)" = "$before" ] || fail "ports change: state changed (plan applied anyway?)"
[ "$(ctlj journal show 0 | md5sum)" = "$jb" ] || fail "refused reloads wrote to the journal"
ok "invalid file and ports change refused with the reason; nothing changed"

# 5. restart keeps the reloaded plan (the journal replays it over the file)
cp "$T/orig.yaml" "$T/sky.yaml"
stop_skygate
start_skygate "$T/sky.yaml" rl1
[ "$(plan_down)" -eq 2000000000 ] || fail "after restart: plan down = $(plan_down)"
ok "restart keeps the reloaded plan rate"
stop_skygate

# 6. no drop: an unchanged reload and a plan change while traffic runs
cp "$T/good.yaml" "$T/sky.yaml"
sed -i "s|state: { dir: $T/state }|state: { dir: $T/state2 }|" "$T/sky.yaml"
start_skygate "$T/sky.yaml" rl2
pg_start traffic --subs "$T/subs.csv" --duration 3 --rate 20000pps
sleep 1
ctl reload >/dev/null || fail "reload during traffic"
sed -i 's/basic: { down: 2Gbit/basic: { down: 3Gbit/' "$T/sky.yaml"
kill -HUP "$SKY_PID"
pg_wait traffic
stop_skygate
pg_stop || true
python3 - "$T/traffic.json" <<'PY' || fail "packets lost during reloads"
import json, sys
rep = json.load(open(sys.argv[1]))
up, down = rep["directions"]["up"], rep["directions"]["down"]
if up["tx_pkts"] == 0 or down["tx_pkts"] == 0:
    sys.exit("no traffic sent")
if up["rx_pkts"] != up["tx_pkts"] or down["rx_pkts"] != down["tx_pkts"]:
    sys.exit("up %d/%d, down %d/%d received" % (up["rx_pkts"], up["tx_pkts"], down["rx_pkts"], down["tx_pkts"]))
PY
grep -q "reload: plan set basic down=3000000000" "$T/skygate.log" || fail "reload during traffic not applied"
ok "reloads during traffic: nothing lost"
