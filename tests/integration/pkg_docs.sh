#!/usr/bin/env bash
# The man pages document everything: every config key the parser accepts is an entry of
# skygate.yaml(5) under its section, with its default and whether a reload applies it; every
# command the running daemon lists (`skygatectl --json help`) is an entry of skygatectl(8)
# (tests/pkg/man_coverage.py).
. "$(dirname "$0")/lib.sh"

for p in skygate.8 skygatectl.8 skygate.yaml.5 skygate-pktgen.1; do
	[ -s "$BLD/doc/$p" ] || fail "man page $p not built (go-md2man missing? tools/run setup)"
done
write_config "  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }" \
	"policy: { object: $BLD/conf/policies/country_block.bpf.o }"
printf 'id,ipv4,ipv6,plan,beam,country\n1,100.64.0.1,,basic,beam1,DE\n' >"$T/subs.csv"
start_skygate "$T/sky.yaml" docs
ctlj help >"$T/help.json"
stop_skygate
python3 "$SRC/tests/pkg/man_coverage.py" "$SRC" "$BLD/doc/skygate.yaml.5" "$BLD/doc/skygatectl.8" \
	"$T/help.json" || fail "the man pages miss keys or commands (above)"
ok "man pages cover every config key and command"
