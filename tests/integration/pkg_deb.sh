#!/usr/bin/env bash
# The Debian package: built by `tools/run package` (reused when newer than every source
# file it is built from, otherwise built here once, a few minutes), unpacked into a scratch
# root with dpkg -x. It carries the programs, the policy header, the compiled sample
# policies, the packaged config and subscriber table, man pages, completion, dashboard (and
# the systemd unit when the tree has one); lintian reports no errors; and the installed
# skygate accepts the installed config, at the installed paths: a private mount namespace
# lays the scratch root's /usr and /etc over the real ones (overlayfs, nothing outside the
# namespace sees it), so /usr/lib/skygate/policies/... in the config is the packaged file.
. "$(dirname "$0")/lib.sh"

command -v dpkg-buildpackage >/dev/null || fail "dpkg-buildpackage missing (tools/run setup)"
ver=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
deb=$SRC/build-deb/skygate_${ver}_amd64.deb
stale=
if [ -f "$deb" ]; then
	srcs=(debian doc conf completion gateway lib pktgen meson.build meson_options.txt)
	stale=$(cd "$SRC" && find "${srcs[@]}" -type f -newer "$deb" -print -quit)
fi
if [ ! -f "$deb" ] || [ -n "$stale" ]; then
	echo "building the package (${stale:-none built yet}${stale:+ changed since the last one})"
	t0=$(date +%s)
	"$SRC/tools/run" package >"$T/package.log" 2>&1 || { tail -30 "$T/package.log"; fail "tools/run package"; }
	echo "package built in $(($(date +%s) - t0)) s"
fi
[ -f "$deb" ] || fail "no $deb"
ok "package $(basename "$deb")"

# control fields
[ "$(dpkg-deb -f "$deb" Package)" = skygate ] || fail "Package field"
[ "$(dpkg-deb -f "$deb" Architecture)" = amd64 ] || fail "Architecture field"
[ "$(dpkg-deb -f "$deb" Version)" = "$ver" ] || fail "Version field"
dpkg-deb -f "$deb" Depends | grep -q "librte-ethdev" || fail "Depends lacks the DPDK libraries: $(dpkg-deb -f "$deb" Depends)"
# the packaged config's memif ports need the memif PMD, a plugin no library links
dpkg-deb -f "$deb" Recommends | grep -q "librte-net-memif" || fail "Recommends lacks the memif PMD"
ok "control: $(dpkg-deb -f "$deb" Depends | cut -c1-100)..."

R=$T/root
dpkg -x "$deb" "$R"
want=(
	usr/bin/skygate
	usr/bin/skygatectl
	usr/bin/skygate-pktgen
	usr/include/skygate/policy.h
	usr/lib/skygate/policies/country_block.bpf.o
	usr/lib/skygate/policies/remote_country_block.bpf.o
	usr/lib/skygate/policies/walled_garden.bpf.o
	usr/lib/skygate/policies/country_matrix.bpf.o
	usr/lib/skygate/policies/zone_block.bpf.o
	usr/lib/skygate/policies/quota_block_class.bpf.o
	etc/skygate/skygate.yaml
	etc/skygate/subscribers.csv
	usr/share/man/man8/skygate.8.gz
	usr/share/man/man8/skygatectl.8.gz
	usr/share/man/man5/skygate.yaml.5.gz
	usr/share/man/man1/skygate-pktgen.1.gz
	usr/share/bash-completion/completions/skygatectl
	usr/share/skygate/grafana/skygate.json
	usr/share/skygate/pmacct/skygate.lst
	usr/share/doc/skygate/copyright
)
for f in "${want[@]}"; do
	[ -f "$R/$f" ] || fail "package lacks /$f"
done
[ -d "$R/var/lib/skygate" ] || fail "package lacks /var/lib/skygate"
# elf_machine FILE: ELF e_machine (x86-64 3e00, eBPF f700), little-endian bytes 18-19
elf_machine() { [ "$(od -An -c -N4 "$1" | tr -d ' ')" = '177ELF' ] && od -An -tx1 -j18 -N2 "$1" | tr -d ' \n'; }
for b in skygate skygatectl skygate-pktgen; do
	[ -x "$R/usr/bin/$b" ] || fail "/usr/bin/$b not executable"
	[ "$(elf_machine "$R/usr/bin/$b")" = 3e00 ] || fail "/usr/bin/$b is not an x86-64 ELF"
done
ok "${#want[@]} files present"
# the unit and the hugepage sysctl: if the tree has them (systemd/), the package carries them
if [ -f "$SRC/systemd/skygate.service" ] || [ -f "$SRC/systemd/skygate.service.in" ]; then
	unit=
	for u in lib/systemd/system/skygate.service usr/lib/systemd/system/skygate.service; do
		[ -f "$R/$u" ] && unit=$R/$u
	done
	[ -n "$unit" ] || fail "systemd/ has skygate.service but the package lacks it"
	grep -q "^ExecStart=/usr/bin/skygate " "$unit" || fail "the unit does not run /usr/bin/skygate: $(grep ExecStart "$unit")"
	ok "systemd unit packaged (${unit#"$R"})"
fi
for c in "$SRC"/systemd/*.conf; do
	[ -f "$c" ] || continue
	[ -f "$R/usr/lib/sysctl.d/$(basename "$c")" ] || fail "the package lacks /usr/lib/sysctl.d/$(basename "$c")"
	ok "sysctl $(basename "$c") packaged"
done
# the compiled policies are eBPF, the man pages roff that man renders without warnings
for o in "$R"/usr/lib/skygate/policies/*.bpf.o; do
	[ "$(elf_machine "$o")" = f700 ] || fail "$o is not an eBPF object"
done
ok "policies are eBPF objects"
if command -v man >/dev/null; then
	for m in "$R"/usr/share/man/man*/*.gz; do
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null) ||
			fail "man $m failed"
		[ -z "$out" ] || fail "man $m warns: $out"
	done
	ok "man pages render without warnings"
fi
# the packaged header compiles a policy (what a policy author does with it)
clang -O2 -g -target bpf -mcpu=v2 -I"$R/usr/include" -Wall -Werror \
	-c "$SRC/conf/policies/country_block.bpf.c" -o "$T/cb.bpf.o" || fail "policy against the packaged header"
ok "a sample policy compiles against /usr/include/skygate/policy.h"

# lintian: errors fail the test, warnings are listed
lintian --fail-on error "$deb" >"$T/lintian" 2>&1 || { cat "$T/lintian"; fail "lintian reports errors"; }
ok "lintian: no errors ($(grep -c '^W:' "$T/lintian" || true) warnings)"
sed 's/^/    /' "$T/lintian"

# the installed skygate accepts the installed config, at the installed paths
grep -q "^  object: /usr/lib/skygate/policies/" "$R/etc/skygate/skygate.yaml" ||
	fail "the packaged config does not name the installed policy"
cat >"$T/installed-check.sh" <<'SH'
set -e
mount -t overlay overlay -o lowerdir="$1/usr":/usr /usr
mount -t overlay overlay -o lowerdir="$1/etc":/etc /etc
cd /
/usr/bin/skygate --check -c /etc/skygate/skygate.yaml
/usr/bin/skygate --version
SH
# a private mount namespace needs / to be a mount point: not so inside a plain chroot (the
# fresh-machine check), where this one step says so instead of mounting over the host
if unshare --mount --propagation private true 2>/dev/null; then
	unshare --mount --propagation private bash "$T/installed-check.sh" "$R" >"$T/check.out" 2>&1 ||
		{ cat "$T/check.out"; fail "installed skygate --check refused /etc/skygate/skygate.yaml"; }
	grep -q "configuration OK" "$T/check.out" || { cat "$T/check.out"; fail "--check printed no verdict"; }
	grep -q "$ver" "$T/check.out" || { cat "$T/check.out"; fail "installed skygate --version is not $ver"; }
	ok "installed skygate --check accepts /etc/skygate/skygate.yaml"
else
	echo "note: no private mount namespace here (a chroot?): the installed skygate --check is not run"
fi
