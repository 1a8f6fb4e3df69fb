#!/usr/bin/env bash
# Runtime changes through skygatectl: applied, refused whole when wrong (the daemon keeps
# running unchanged), journaled and replayed after a restart; a torn journal record is
# ignored with a warning; bad control requests get a JSON error, never a crash.
. "$(dirname "$0")/lib.sh"
POL=$BLD/conf/policies/country_block.bpf.o

write_state_config "$POL" "{ blocked_terminal_countries: { RU: 1 } }"
start_skygate "$T/sky.yaml" rt

# refused changes: each names what is wrong, nothing changes
expect_refused() { # text, command...
	local want=$1; shift
	local out rc=0
	out=$(ctl "$@" 2>&1) || rc=$?
	[ $rc -eq 1 ] || fail "'$*' exit $rc (want 1): $out"
	grep -qF -- "$want" <<<"$out" || fail "'$*': error lacks '$want': $out"
}
expect_refused "plan" subscriber add 3 ipv4=100.64.0.3 plan=platinum beam=beam1 country=DE
expect_refused "beam" subscriber add 3 ipv4=100.64.0.3 plan=basic beam=beam9 country=DE
expect_refused "country" subscriber add 3 ipv4=100.64.0.3 plan=basic beam=beam1 country=XYZ
expect_refused "1" subscriber add 1 ipv4=100.64.0.9 plan=basic beam=beam1 country=DE
expect_refused "100.64.0.2" subscriber add 3 ipv4=100.64.0.2 plan=basic beam=beam1 country=DE
expect_refused "no subscriber" subscriber del 77
expect_refused "rate" beam set beam1 down=0
expect_refused "rate" plan set basic down=12parsecs
expect_refused "no_such_map" map update no_such_map DE 1
expect_refused "unknown command" frobnicate now
ok "bad changes refused with reasons"
[ "$(ctlj subscriber show 1 | jget "['country']")" = DE ] || fail "subscriber 1 changed by a refused request"

# malformed requests straight on the socket: JSON errors, daemon alive
printf 'not json\n{"argv": 5}\n{"argv": []}\n{"argv": ["status", 1]}\n' |
	python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect('$T/sky.sock'); s.sendall(sys.stdin.buffer.read())
f=s.makefile('rb'); [print(f.readline().decode().strip()) for _ in range(4)]" >"$T/bad.out"
[ "$(grep -c '"ok": *false' "$T/bad.out")" -eq 4 ] || { cat "$T/bad.out"; fail "malformed requests"; }
ctl status >/dev/null || fail "daemon died on malformed requests"
ok "malformed requests answered with JSON errors"

# accepted changes
ctl subscriber add 3 ipv4=100.64.0.3 ipv6=2001:db8:3::/56 plan=gold beam=beam1 country=NO >/dev/null
ctl subscriber set 2 country=RU plan=gold >/dev/null
ctl subscriber del 1 >/dev/null
ctl beam set beam1 down=20Gbit up=2Gbit >/dev/null
ctl plan set basic down=5Gbit >/dev/null
ctl map update blocked_remote_countries CN 1 >/dev/null
ctl map update blocked_terminal_countries BY 1 >/dev/null
ok "changes applied"
stop_skygate
grep -q "AUDIT .* uid=0 .*subscriber add 3" "$T/skygate.log" || fail "no audit line for subscriber add"

# restart: the journal replays on top of the config
start_skygate "$T/sky.yaml" rt2
[ "$(ctlj subscriber show 3 | jget "['plan']")" = gold ] || fail "subscriber 3 lost in restart"
[ "$(ctlj subscriber show 2 | jget "['country']")" = RU ] || fail "subscriber 2 change lost"
ctl subscriber show 1 >/dev/null 2>&1 && fail "deleted subscriber 1 came back"
[ "$(ctlj beam show beam1 | jget "['down_bps']")" = 20000000000 ] || fail "beam change lost"
ctlj map show blocked_remote_countries | grep -q CN || fail "map entry CN lost"
ctlj map show blocked_terminal_countries | grep -q BY || fail "map entry BY lost"
ok "journal replayed after restart"
stop_skygate

# a torn last record (crash while writing) is ignored with a warning
j=$T/state/journal
[ -f "$j" ] || fail "no journal file in state dir"
# what a crash in the middle of an append leaves: part of a record after the last committed
# one (journal.tip still says where the committed ones end)
printf 'SKYJ 80 0123abcd\n{"time":"2026-' >>"$j"
start_skygate "$T/sky.yaml" rt3
grep -qi "torn\|corrupt\|ignor" "$T/skygate.log" || fail "no warning about the torn record"
[ "$(ctlj subscriber show 3 | jget "['plan']")" = gold ] || fail "earlier records lost"
ok "torn last journal record ignored with a warning"
stop_skygate
