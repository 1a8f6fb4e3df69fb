# bash completion for skygatectl(8).
# Commands and subcommands come from the running daemon's own command table
# (`skygatectl --json help`); plan, beam, map and subscriber names from the daemon too
# (`plan list`, `beam list`, `map list`, `subscriber list`). Nothing is hard-coded here, so
# a daemon with more commands completes them; with no daemon reachable only options and
# file names complete.

# _skygatectl_ask ARGS...: the daemon's JSON reply, on the socket the command line names
_skygatectl_ask() {
	local -a sock=()
	[ -n "${_skygatectl_socket:-}" ] && sock=(--socket "$_skygatectl_socket")
	"${_skygatectl_bin:-skygatectl}" "${sock[@]}" --json "$@" 2>/dev/null
}

# _skygatectl_field KEY: the values of "KEY": in the JSON on stdin (skygatectl prints one
# key per line)
_skygatectl_field() {
	sed -n 's/^[[:space:]]*"'"$1"'":[[:space:]]*"\{0,1\}\([^",]*\)"\{0,1\},\{0,1\}[[:space:]]*$/\1/p'
}

_skygatectl() {
	local cur prev i w
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	_skygatectl_bin=${COMP_WORDS[0]}
	_skygatectl_socket=
	COMPREPLY=()

	if [ "$prev" = "--socket" ]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
	fi

	# the words of the command so far, options (and watch -n N) left out
	local -a words=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case "$w" in
		--socket) _skygatectl_socket=${COMP_WORDS[i + 1]}; ((i++)) ;;
		--json) ;;
		watch) [ ${#words[@]} -eq 0 ] || words+=("$w") ;;
		-n) [ ${#words[@]} -eq 0 ] && ((i++)) || words+=("$w") ;;
		*) words+=("$w") ;;
		esac
	done

	if [[ "$cur" == -* ]] && [ ${#words[@]} -eq 0 ]; then
		COMPREPLY=($(compgen -W "--socket --json" -- "$cur"))
		return 0
	fi

	local cmds
	cmds=$(_skygatectl_ask help | _skygatectl_field command)
	case ${#words[@]} in
	0)
		COMPREPLY=($(compgen -W "$(printf '%s\n' $(awk '{print $1}' <<<"$cmds") watch | sort -u)" -- "$cur"))
		return 0
		;;
	1)
		local subs
		subs=$(awk -v w="${words[0]}" '$1 == w && NF > 1 {print $2}' <<<"$cmds")
		if [ "${words[0]}" = help ]; then
			subs=$(awk '{print $1}' <<<"$cmds" | sort -u)
		fi
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		return 0
		;;
	2)
		case "${words[0]} ${words[1]}" in
		"plan show" | "plan set")
			COMPREPLY=($(compgen -W "$(_skygatectl_ask plan list | _skygatectl_field name)" -- "$cur")) ;;
		"beam show" | "beam set")
			COMPREPLY=($(compgen -W "$(_skygatectl_ask beam list | _skygatectl_field name)" -- "$cur")) ;;
		"map show" | "map update" | "map delete" | "map clear")
			COMPREPLY=($(compgen -W "$(_skygatectl_ask map list | _skygatectl_field name)" -- "$cur")) ;;
		"subscriber show" | "subscriber del" | "subscriber set")
			# the first 1000 ids: a table of a million is not listed on every TAB
			COMPREPLY=($(compgen -W "$(_skygatectl_ask subscriber list size=1000 | _skygatectl_field id)" -- "$cur")) ;;
		"policy load" | "policy check")
			COMPREPLY=($(compgen -f -X '!*.bpf.o' -- "$cur") $(compgen -d -- "$cur")) ;;
		"subscriber load" | "geo reload")
			COMPREPLY=($(compgen -f -- "$cur")) ;;
		"help "*)
			COMPREPLY=($(compgen -W "$(awk -v w="${words[1]}" '$1 == w && NF > 1 {print $2}' <<<"$cmds")" -- "$cur")) ;;
		esac
		return 0
		;;
	esac
	# key=value arguments: the keys `help` shows in the command's usage
	local usage
	usage=$(_skygatectl_ask help "${words[0]}" "${words[1]}" | _skygatectl_field usage)
	local keys
	keys=$(grep -o '[a-z_0-9]*=' <<<"$usage" | sort -u)
	[ -n "$keys" ] && { COMPREPLY=($(compgen -W "$keys" -- "$cur")); compopt -o nospace 2>/dev/null; }
	return 0
}
complete -F _skygatectl skygatectl
