#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Build Pktgen-DPDK 23.06.x against Debian 12's DPDK 22.11 for the skygate scripts.
#   usage: build-pktgen-dpdk.sh /path/to/Pktgen-DPDK-23.06.1 [builddir]
# Needs: libdpdk-dev, liblua5.3-dev, libpcap-dev, libnuma-dev, libbsd-dev, meson, ninja.
# Two fixes against 22.11 / Debian:
#   1. pktgen panics when rte_eth_dev_set_mtu() fails; memif (and net_pcap, net_ring) in
#      22.11 have no MTU setter (-ENOTSUP), so the panic becomes a warning.
#   2. lib/lua includes rte_version.h without DPDK's include path: add it to c_args.
set -eu
src=${1:?usage: $0 PKTGEN_SRC_DIR [BUILD_DIR]}
build=${2:-$src/build}
[ -f "$src/app/pktgen-port-cfg.c" ] || { echo "$src: not a Pktgen-DPDK source tree" >&2; exit 1; }
grep -q '^23\.06' "$src/VERSION" || echo "warning: scripts are written for 23.06.x, this is $(cat "$src/VERSION")" >&2
# 1. the MTU panic (idempotent)
sed -i 's/pktgen_log_panic("Cannot set MTU/pktgen_log_warning("Cannot set MTU/' \
	"$src/app/pktgen-port-cfg.c"
# 2. DPDK headers for the Lua library
inc="-I/usr/include/dpdk -I/usr/include/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/dpdk"
if [ -d "$build" ]; then
	meson configure "$build" -Denable_lua=true -Dc_args="$inc"
else
	meson setup "$build" "$src" -Denable_lua=true -Dc_args="$inc"
fi
ninja -C "$build"
echo "built $build/app/pktgen"
