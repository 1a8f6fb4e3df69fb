/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * geo: remote address -> country code and network flags, from the IPFire location
 * database (libloc, /usr/share/libloc-location/location.db).
 *
 * Control path: sky_geo_create() reads the `geo:` config section, enumerates every network
 * of the database (IPv4 and IPv6) through libloc and builds two DPDK FIBs off the data path:
 * rte_fib DIR24_8 for IPv4 and rte_fib6 TRIE for IPv6 (2- or 4-byte next hops, whichever
 * the tbl8 count allows). A next hop is an index into a small attribute table (country code
 * + SKY_GEO_F_* flags); 0 = no network of the database covers the address. A lookup answers
 * exactly what `location lookup ADDR` answers: the deepest network covering the address
 * (a network without a country code gives country 0 but still counts as found).
 * A table is immutable once published; `geo reload` builds a new one aside, publishes it
 * with one pointer store and frees the old one after sky_rcu_sync().
 *
 * Data path: sky_geo_lookup_burst() reads the published table once per burst and does one
 * bulk FIB lookup per family. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are looked up as
 * IPv4, like libloc does.
 *
 * Routes: the FIB only needs address -> (country, flags), so IPv4 networks are flattened
 * into disjoint ranges (neighbours with the same answer merged) and IPv6 subnets that answer
 * like the network around them are dropped: the Debian 12 database (1.07M IPv4 + 220k IPv6
 * networks) becomes 223k + 75k routes.
 *
 * Memory: about 320 MB of DPDK memory for that database (IPv4 tbl24 32 MB, IPv6 tbl24
 * 64 MB + ~97k tbl8 groups, and the FIBs' RIBs); a reload needs room for two tables at
 * once. `geo show` reports the figure.
 *
 * Config (section absent = geo disabled, remote_country stays 0):
 *   geo:
 *     database: /usr/share/libloc-location/location.db   # required
 *     flags: true       # fill remote_flags (anycast, satellite, anonymous proxy, drop)
 *     ipv6: true        # load the IPv6 networks (false: IPv6 remotes stay unknown)
 *     lookup: auto      # auto | scalar | avx512: FIB lookup code. auto = DPDK's choice
 *                       # (AVX512 only under EAL --force-max-simd-bitwidth=512); avx512
 *                       # raises the process's SIMD limit to 512 bits itself (refused on
 *                       # a CPU without AVX512F or when EAL forced a lower limit)
 *     check_interval: 0 # e.g. 60m: look that often whether the file was replaced (as
 *                       # `location update` or a package upgrade do) and reload it; a
 *                       # version that fails to load is logged and not retried
 */
#ifndef SKYGATE_GEO_H
#define SKYGATE_GEO_H

#include <stddef.h>
#include <stdint.h>

#include "skygate/config.h"
#include "skygate/meta.h"

struct sky_geo;

/**
 * Build the geo module from the `geo:` section of cfg (control path, EAL initialised).
 * Returns NULL with err filled ("FILE:LINE: geo.database: PATH: reason") on a bad section,
 * a missing, unreadable or corrupt database, or a lack of DPDK memory. Returns a valid but
 * disabled object when the section is absent.
 */
struct sky_geo *sky_geo_create(const struct sky_cfg *cfg, struct sky_cfg_err *err);

/** Register the control commands (geo lookup|reload|show), telemetry /skygate/geo and the
 *  Prometheus writer. Control path, once, after sky_geo_create(). Returns 0 or -errno. */
int sky_geo_register(struct sky_geo *g);

/** Free everything (control path, after the workers stopped and the commands were
 *  unregistered: sky_ctl_unregister_all()). NULL is fine. */
void sky_geo_destroy(struct sky_geo *g);

/** 1 when a database is loaded. */
int sky_geo_enabled(const struct sky_geo *g);

/**
 * Data path: fill remote_country and remote_flags of every live packet (sky_meta_live())
 * from sky_meta_remote_addr(). worker indexes the per-worker counters (< SKY_MAX_WORKERS).
 * Does nothing while geo is disabled.
 */
void sky_geo_lookup_burst(struct sky_geo *g, unsigned int worker, struct sky_meta *meta,
			  uint16_t n);

/**
 * Control path single lookup. family AF_INET (addr = 4 bytes) or AF_INET6 (16 bytes),
 * network byte order. Sets *cc (sky_cc, 0 = none) and *flags (SKY_GEO_F_*); when net_buf is
 * not NULL, writes the matching database network as `location lookup` prints it
 * ("8.8.8.0/24"), or "" when none. Returns 0 when a network matched, -ENOENT when none did,
 * -ENODEV when geo is disabled, -EINVAL on a bad family.
 */
int sky_geo_lookup(struct sky_geo *g, int family, const uint8_t *addr, uint16_t *cc, uint8_t *flags,
		   char *net_buf, size_t net_len);

/** Reload from path (NULL = the current path). Control path. 0, or -errno with msg. */
int sky_geo_reload(struct sky_geo *g, const char *path, char *msg, size_t msg_len);

/** Callback of sky_geo_country_networks(): addr is 4 (AF_INET) or 16 bytes, network order. */
typedef void (*sky_geo_net_fn)(void *arg, int family, const uint8_t *addr, unsigned int prefixlen);

/**
 * Standalone (no EAL, no sky_geo): call fn for each network of country cc (sky_cc) in the
 * database at db_path, family AF_INET, AF_INET6 or AF_UNSPEC (both). The networks are
 * flattened: subnets that belong to another country are cut out, so every address of
 * every network reported looks up to cc. Returns the number of networks, or -errno
 * (-ENOENT missing file, -EINVAL corrupt file or bad argument).
 */
int sky_geo_country_networks(const char *db_path, uint16_t cc, int family, sky_geo_net_fn fn,
			     void *arg);

#endif /* SKYGATE_GEO_H */
