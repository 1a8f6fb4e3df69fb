/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo internals, private to lib/geo. Who calls whom (one way):
 *
 *   geo_ctl.c  commands, telemetry, Prometheus, the file watch timer
 *      |
 *   geo.c      the owner: sky_geo_create (the `geo:` section), reload, watch, destroy,
 *      |       single lookups; publishes tables (RCU)
 *   geo_load.c the loader: libloc database -> attributes -> routes -> FIBs (a geo_table)
 *      |
 *   geo_flat.c nested networks -> disjoint ranges -> CIDR blocks (geo_flat.h)
 *
 *   geo_dp.c   the data path (sky_geo_lookup_burst): reads the published table only.
 *
 * The owner never calls its control file: sky_geo_register() leaves a callback
 * (sky_geo.unregister) that sky_geo_destroy() runs first.
 */
#ifndef SKYGATE_GEO_PRIV_H
#define SKYGATE_GEO_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_common.h>

#include "skygate/geo.h"
#include "skygate/runtime.h"

/*
 * Distinct (country, flags) pairs of a database: about 250 countries, a few flag mixes.
 * The FIB next hop indexes attr[]; 0 means "no network".
 */
#define GEO_MAX_ATTR 4096
#define GEO_ATTR_FOUND 0x01000000u /* attr bit: a network matched (even without country) */

/*
 * The location database file: read once into a sealed memfd (see db_open in geo_load.c).
 * The real database is 55-70 MB; a larger file than this is not one. The time bound is
 * for reading the file only (page cache: well under a second; a slow disk: seconds).
 */
#define GEO_DB_MAX_BYTES (1024u * 1024 * 1024) /* 1 GiB */
#define GEO_DB_TIMEOUT_MS 20000u

/* Per-worker counters, defined once (enum, names, telemetry, Prometheus). */
#define GEO_FOREACH_COUNTER(_)                                                                     \
	_(LOOKUP_V4, "lookups_ipv4", "remote IPv4 addresses looked up")                            \
	_(LOOKUP_V6, "lookups_ipv6", "remote IPv6 addresses looked up")                            \
	_(UNKNOWN, "unknown_country", "remote addresses without a country")

enum geo_counter {
#define GEO_C_ENUM(n, s, h) GEO_C_##n,
	GEO_FOREACH_COUNTER(GEO_C_ENUM)
#undef GEO_C_ENUM
		GEO_C_MAX
};

struct geo_worker {
	uint64_t c[GEO_C_MAX];
} __rte_cache_aligned;

/* Which version of a file: changes when the file is replaced or rewritten. */
struct geo_file_id {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
};

struct in6_addr;
struct loc_ctx;
struct loc_database;
struct rte_fib;
struct rte_fib6;

/* One loaded database. Immutable once published. */
struct geo_table {
	/* --- data path --- */
	struct rte_fib *fib4;
	struct rte_fib6 *fib6;	     /* NULL when ipv6: false */
	uint32_t attr[GEO_MAX_ATTR]; /* nh -> cc | flags << 16 | GEO_ATTR_FOUND; attr[0] = 0 */
	/* --- control path only --- */
	struct loc_ctx *ctx; /* kept for `geo lookup` (network CIDR) */
	struct loc_database *db;
	FILE *f;
	char *path;
	uint32_t n_attr;
	uint32_t n4, n6;	   /* networks of the database */
	uint32_t routes4, routes6; /* FIB routes after flattening and merging */
	uint32_t tbl8_4, tbl8_6;   /* tbl8 groups configured */
	unsigned int nh_bytes4, nh_bytes6;
	uint64_t load_us;
	uint64_t mem_bytes;	 /* DPDK heap taken by the FIBs */
	struct geo_file_id file; /* the file it was loaded from */
};

/* How tables are built (config geo.*). */
enum geo_lookup {
	GEO_LOOKUP_AUTO, /* DPDK's choice: AVX512 when EAL allows 512-bit SIMD */
	GEO_LOOKUP_SCALAR,
	GEO_LOOKUP_AVX512,
};

struct geo_opts {
	bool flags; /* fill remote_flags */
	bool ipv6;  /* load IPv6 networks */
	enum geo_lookup lookup;
};

extern const char *const geo_lookup_names[]; /* config geo.lookup, NULL-terminated */

/* Snapshot for the telemetry thread (read under info_lock). */
struct geo_info {
	int enabled;
	char path[256];
	uint32_t n4, n6;
	uint64_t load_us;
	uint64_t mem_bytes;
	char vendor[64];
	char description[128];
	int64_t created_at;
};

struct sky_geo {
	/* --- data path --- */
	struct geo_table *table; /* published pointer, RCU */
	struct geo_worker w[SKY_MAX_WORKERS];
	/* --- control path only --- */
	struct geo_opts opts; /* config geo.flags, geo.ipv6, geo.lookup */
	char *path;	      /* current database path */
	uint64_t reloads;
	uint64_t reload_failures;
	uint64_t check_interval_us; /* config geo.check_interval: 0 = no watching */
	uint64_t auto_reloads;	    /* reloads after the file changed */
	struct geo_file_id refused; /* the changed file last refused: not retried */
	pthread_mutex_t info_lock;
	struct geo_info info;
	/* set by sky_geo_register() (geo_ctl.c); sky_geo_destroy() calls it first, so the
	 * telemetry and metrics callbacks stop reading this object */
	void (*unregister)(struct sky_geo *g);
};

/* ::ffff:a.b.c.d (16 bytes, network order): libloc answers those as IPv4. */
static inline int
geo_v4_mapped(const uint8_t *a)
{
	uint64_t hi;
	uint32_t mid;

	memcpy(&hi, a, 8);
	memcpy(&mid, a + 8, 4);
	return hi == 0 && mid == rte_cpu_to_be_32(0x0000ffffu);
}

/* --- geo_load.c (the loader) --- */

/* Load the database at path into a new table (FIBs built, not published). NULL with msg
 * ("PATH: reason", or "lookup: reason" for a geo.lookup the CPU or EAL refuses). */
struct geo_table *geo_table_build(const char *path, const struct geo_opts *o, char *msg,
				  size_t msg_len);
void geo_table_free(struct geo_table *t);

/* Database metadata (strings valid while t lives; "" when the database has none). */
struct geo_db_meta {
	const char *vendor;
	const char *description;
	const char *license;
	int64_t created_at; /* unix seconds */
};
void geo_table_meta(const struct geo_table *t, struct geo_db_meta *m);

/* The database network covering a (IPv4 as ::ffff:a.b.c.d) as `location lookup` prints
 * it ("8.8.8.0/24") into buf, or "" when none does. */
void geo_table_network(const struct geo_table *t, const struct in6_addr *a, char *buf, size_t len);

/* Identity of the file at path now (stat). 0 or -errno. */
int geo_file_id_get(const char *path, struct geo_file_id *id);

/* --- geo.c (the owner) --- */

/* Reload when the database file changed since it was loaded (control path, periodic). */
void geo_watch(struct sky_geo *g);

#endif /* SKYGATE_GEO_PRIV_H */
