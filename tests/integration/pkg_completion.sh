#!/usr/bin/env bash
# bash completion for skygatectl (completion/skygatectl.bash) against a running daemon:
# commands and subcommands are exactly the daemon's command table, names are the daemon's
# plans, beams, maps and subscribers (a subscriber added at runtime completes at once),
# key=value arguments come from the command's usage.
. "$(dirname "$0")/lib.sh"

write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"policy: { object: $BLD/conf/policies/country_block.bpf.o }"
sed -i 's/^  basic: .*/&\n  gold: { down: 1Gbit, up: 100Mbit }/; s/^  beam1: .*/&\n  beam7: { down: 1Gbit, up: 1Gbit }/' "$T/sky.yaml"
printf 'id,ipv4,ipv6,plan,beam,country\n17,100.64.0.1,,basic,beam1,DE\n42,100.64.0.2,,gold,beam7,FR\n' >"$T/subs.csv"
start_skygate "$T/sky.yaml" compl

# shellcheck source=/dev/null
. "$SRC/completion/skygatectl.bash"
command -v _skygatectl >/dev/null || fail "the script defines no _skygatectl"
complete -p skygatectl | grep -q _skygatectl || fail "the script registers no completion"
# comp WORDS...: COMPREPLY (sorted, one line) for the command line WORDS, the last one
# being completed ("" = a new word)
comp() {
	COMP_WORDS=("$CTL" --socket "$T/sky.sock" "$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_skygatectl
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() { # WANT WORDS...
	local want=$1 got
	shift
	got=$(comp "$@")
	[ "$got" = "$want" ] || fail "completing '$*': got '$got', want '$want'"
	ok "'$*' -> $want"
}

# the first word: every top-level word of the daemon's table, plus skygatectl's own watch
ctlj help >"$T/help.json"
want=$( (python3 -c 'import json,sys; [print(c["command"].split()[0]) for c in json.load(sys.stdin)]' <"$T/help.json"; echo watch) | sort -u | tr '\n' ' ' | sed 's/ $//')
[ "$(wc -w <<<"$want")" -ge 15 ] || fail "help lists too few commands: $want"
expect "$want" ""
expect "plan policy ports" "p"
# subcommands: every second word the table has for that first word
for w in plan beam map subscriber policy journal geo; do
	want=$(python3 -c 'import json,sys; [print(c["command"].split()[1]) for c in json.load(sys.stdin) if c["command"].split()[0] == sys.argv[1] and " " in c["command"]]' "$w" <"$T/help.json" | sort -u | tr '\n' ' ' | sed 's/ $//')
	[ -n "$want" ] || fail "no subcommands of $w in help"
	expect "$want" "$w" ""
done
expect "show" "plan" "sh"
# names from the daemon
expect "basic gold" plan show ""
expect "gold" plan set "g"
expect "beam1 beam7" beam set ""
expect "blocked_remote_countries blocked_terminal_countries" map update ""
expect "blocked_terminal_countries" map show "blocked_t"
expect "17 42" subscriber show ""
ctl subscriber add 99 ipv4=100.64.0.99 plan=basic beam=beam1 country=NO >/dev/null
expect "17 42 99" subscriber del ""
# options: --json anywhere before the command, --socket's value skipped
expect "--json --socket" "--"
COMP_WORDS=("$CTL" --json --socket "$T/sky.sock" beam show "")
COMP_CWORD=6
COMPREPLY=()
_skygatectl
[ "${COMPREPLY[*]}" = "beam1 beam7" ] || [ "${COMPREPLY[*]}" = "beam7 beam1" ] ||
	fail "--json before --socket: got '${COMPREPLY[*]}'"
ok "--json --socket S beam show -> beam1 beam7"
# watch [-n N] CMD completes CMD
expect "basic gold" watch -n 2 plan show ""
# key=value arguments from the usage line
expect "beam= country= ipv4= ipv6= plan= realm= zone=" subscriber add 5 ""
expect "down= up=" beam set beam1 ""
# help COMMAND completes the table's words
expect "list set show" help plan ""
stop_skygate
# no daemon: only skygatectl's own word and options complete
expect "watch" ""
expect "--json --socket" "--"
