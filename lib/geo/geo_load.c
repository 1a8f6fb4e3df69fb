/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo loader: the location database (libloc) loaded into DPDK FIBs. Control path only.
 *
 * Build: enumerate every network of the database once (libloc gives them in address
 * order, parents before their subnets), encode (country, flags) as a small attribute
 * index, turn the networks into fewer routes that answer the same (IPv4: flattened and
 * merged by geo_flat.c; IPv6: redundant subnets dropped, see prune6), size the FIBs' tbl8
 * pools from the routes, insert, and keep the libloc handle for the control commands
 * (network CIDR, database metadata). Only this file talks to libloc.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libloc/libloc.h>
#include <libloc/database.h>
#include <libloc/network.h>

#include <rte_byteorder.h>
#include <rte_cpuflags.h>
#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_vect.h>

#include "skygate/file.h"

#include "geo_flat.h"
#include "geo_priv.h"

const char *const geo_lookup_names[] = {"auto", "scalar", "avx512", NULL};

/* ------------------------------------------------------------------ libloc access */

/* libloc logs through a callback without user data: keep its last message per thread. */
static __thread char loc_last_msg[256];

static void
loc_log(struct loc_ctx *ctx, int priority, const char *file, int line, const char *fn,
	const char *format, va_list args)
{
	size_t n;

	(void)ctx;
	(void)priority;
	(void)file;
	(void)line;
	(void)fn;
	vsnprintf(loc_last_msg, sizeof(loc_last_msg), format, args);
	n = strlen(loc_last_msg);
	while (n > 0 && (loc_last_msg[n - 1] == '\n' || loc_last_msg[n - 1] == '\r'))
		loc_last_msg[--n] = '\0';
}

struct geo_db {
	struct loc_ctx *ctx;
	struct loc_database *db;
	FILE *f;
};

static void
db_close(struct geo_db *d)
{
	if (d->db != NULL)
		loc_database_unref(d->db);
	if (d->ctx != NULL)
		loc_unref(d->ctx);
	if (d->f != NULL)
		fclose(d->f);
	memset(d, 0, sizeof(*d));
}

/*
 * Open a database file; on failure msg is "PATH: reason". Returns 0 or -errno.
 *
 * libloc maps the FILE it is given: given the configured file itself, a truncation in
 * place would make the next lookup die with SIGBUS, and a rewrite in place
 * would change the running table's answers. So the file is opened the safe way (no FIFO,
 * device or directory, at most GEO_DB_MAX_BYTES, read within GEO_DB_TIMEOUT_MS, refused
 * if it changed while being read) and copied into a sealed memfd that libloc gets instead:
 * nothing done to the file afterwards reaches the running daemon.
 */
static int
db_open(struct geo_db *d, const char *path, char *msg, size_t msg_len)
{
	int fd;

	memset(d, 0, sizeof(*d));
	if (path == NULL || path[0] == '\0') {
		snprintf(msg, msg_len, "no database path");
		return -EINVAL;
	}
	fd = sky_file_memfd(path, GEO_DB_MAX_BYTES, GEO_DB_TIMEOUT_MS, NULL, msg, msg_len);
	if (fd < 0)
		return fd;
	d->f = fdopen(fd, "r");
	if (d->f == NULL) {
		int rc = -errno;

		snprintf(msg, msg_len, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if (loc_new(&d->ctx) != 0) {
		snprintf(msg, msg_len, "%s: libloc context: out of memory", path);
		db_close(d);
		return -ENOMEM;
	}
	loc_set_log_fn(d->ctx, loc_log);
	loc_set_log_priority(d->ctx, 3 /* LOG_ERR */);
	loc_last_msg[0] = '\0';
	if (loc_database_new(d->ctx, &d->db, d->f) != 0) {
		d->db = NULL;
		snprintf(msg, msg_len, "%s: not a readable location database%s%s%s", path,
			 loc_last_msg[0] ? " (libloc: " : "", loc_last_msg,
			 loc_last_msg[0] ? ")" : "");
		db_close(d);
		return -EINVAL;
	}
	return 0;
}

/* Visit every network (both families); fn returns 0 to go on. Returns 0 or -errno. */
typedef int (*net_visit_fn)(void *arg, struct loc_network *n);

static int
db_each_network(struct geo_db *d, const char *path, net_visit_fn fn, void *arg, char *msg,
		size_t msg_len)
{
	struct loc_database_enumerator *e = NULL;
	struct loc_network *n;
	int r, rc = 0;

	if (loc_database_enumerator_new(&e, d->db, LOC_DB_ENUMERATE_NETWORKS, 0) != 0) {
		snprintf(msg, msg_len, "%s: cannot enumerate networks", path);
		return -ENOMEM;
	}
	loc_last_msg[0] = '\0';
	for (;;) {
		if (sky_should_stop()) {
			snprintf(msg, msg_len, "%s: stopped by shutdown", path);
			rc = -EINTR;
			break;
		}
		n = NULL;
		r = loc_database_enumerator_next_network(e, &n);
		if (r != 0) {
			snprintf(msg, msg_len, "%s: corrupt database%s%s%s", path,
				 loc_last_msg[0] ? " (libloc: " : "", loc_last_msg,
				 loc_last_msg[0] ? ")" : "");
			rc = -EINVAL;
			break;
		}
		if (n == NULL)
			break;
		rc = fn(arg, n);
		loc_network_unref(n);
		if (rc != 0)
			break;
	}
	loc_database_enumerator_unref(e);
	return rc;
}

static uint8_t
net_flags(struct loc_network *n)
{
	uint8_t f = 0;

	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_ANONYMOUS_PROXY))
		f |= SKY_GEO_F_ANONYMOUS_PROXY;
	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_SATELLITE_PROVIDER))
		f |= SKY_GEO_F_SATELLITE;
	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_ANYCAST))
		f |= SKY_GEO_F_ANYCAST;
	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_DROP))
		f |= SKY_GEO_F_DROP;
	return f;
}

static uint16_t
net_cc(struct loc_network *n)
{
	const char *s = loc_network_get_country_code(n);

	if (s == NULL || s[0] == '\0' || s[1] == '\0' || s[2] != '\0')
		return SKY_COUNTRY_NONE;
	return sky_cc(s);
}

/* Append network n valued val to s (IPv4 at ::ffff:0:0/96). 0, -EINVAL, -ENOMEM. */
static int
nets_add(struct geo_fnets *s, struct loc_network *n, uint16_t val)
{
	const struct in6_addr *a = loc_network_get_first_address(n);
	int v4 = loc_network_address_family(n) == AF_INET;

	if (a == NULL)
		return -EINVAL;
	return geo_fnets_add(s, a->s6_addr, loc_network_prefix(n) + (v4 ? 96 : 0), val);
}

/* ------------------------------------------------------------------ routes */

struct route4 {
	uint32_t ip; /* host order */
	uint8_t depth;
	uint16_t nh;
};

struct route6 {
	uint8_t ip[16];
	uint8_t depth;
	uint8_t around; /* depth of the route this one is nested in, 0 = none */
	uint16_t nh;
};

struct collect {
	struct geo_fnets nets;
	struct route4 *r4;
	size_t n4, cap4;
	struct route6 *r6;
	size_t n6, cap6;
	uint32_t nets4, nets6; /* networks of the database */
	uint16_t *amap;	       /* (cc << 4 | flags) -> attr index, 0 = not yet */
	uint32_t *attr;	       /* the table's attr[] */
	uint32_t n_attr;
	bool flags;
	bool ipv6;
	bool v6_nested; /* IPv6 routes come from prune6(), not from the flattening */
	const char *path;
	char *msg;
	size_t msg_len;
};

static int
collect_net(void *arg, struct loc_network *n)
{
	struct collect *c = arg;
	uint16_t cc = net_cc(n);
	uint8_t fl = c->flags ? net_flags(n) : 0;
	uint32_t key = ((uint32_t)cc << 4) | fl;
	uint16_t nh = c->amap[key];
	int rc;

	if (nh == 0) {
		if (c->n_attr >= GEO_MAX_ATTR) {
			snprintf(c->msg, c->msg_len, "%s: more than %d (country, flags) pairs",
				 c->path, GEO_MAX_ATTR - 1);
			return -E2BIG;
		}
		nh = (uint16_t)c->n_attr++;
		c->amap[key] = nh;
		c->attr[nh] = cc | ((uint32_t)fl << 16) | GEO_ATTR_FOUND;
	}
	if (loc_network_address_family(n) == AF_INET)
		c->nets4++;
	else
		c->nets6++;
	rc = nets_add(&c->nets, n, nh);
	if (rc == -EINVAL)
		snprintf(c->msg, c->msg_len, "%s: corrupt database (network %s)", c->path,
			 loc_network_str(n));
	else if (rc != 0)
		snprintf(c->msg, c->msg_len, "%s: out of memory collecting networks", c->path);
	return rc;
}

static int
add_route(void *arg, int family, const uint8_t *addr, unsigned int prefixlen, uint16_t nh)
{
	struct collect *c = arg;

	if (family == AF_INET) {
		uint32_t ip;

		if (geo_grow((void **)&c->r4, &c->cap4, c->n4 + 1, sizeof(*c->r4)) != 0)
			return -ENOMEM;
		memcpy(&ip, addr, 4);
		c->r4[c->n4].ip = rte_be_to_cpu_32(ip);
		c->r4[c->n4].depth = (uint8_t)prefixlen;
		c->r4[c->n4].nh = nh;
		c->n4++;
	} else if (c->ipv6 && !c->v6_nested) {
		if (geo_grow((void **)&c->r6, &c->cap6, c->n6 + 1, sizeof(*c->r6)) != 0)
			return -ENOMEM;
		memcpy(c->r6[c->n6].ip, addr, 16);
		c->r6[c->n6].depth = (uint8_t)prefixlen;
		c->r6[c->n6].nh = nh;
		c->n6++;
	}
	return 0;
}

static int
add_range(void *arg, geo_u128 lo, geo_u128 hi, uint16_t nh)
{
	return geo_range_cidrs(lo, hi, nh, add_route, arg);
}

/*
 * DIR24_8 takes one tbl8 group per /24 that holds longer prefixes; the routes are sorted,
 * so those of one /24 are neighbours.
 */
static uint32_t
tbl8_need4(const struct collect *c)
{
	uint32_t n = 0, last = 0;
	bool any = false;

	for (size_t i = 0; i < c->n4; i++) {
		uint32_t blk = c->r4[i].ip >> 8;

		if (c->r4[i].depth <= 24)
			continue;
		if (!any || blk != last)
			n++;
		any = true;
		last = blk;
	}
	return n;
}

static bool
prefix_covers(const uint8_t *net, unsigned int depth, const uint8_t *ip)
{
	unsigned int full = depth >> 3, rem = depth & 7;

	if (memcmp(net, ip, full) != 0)
		return false;
	if (rem == 0)
		return true;
	return ((net[full] ^ ip[full]) & (uint8_t)(0xff << (8 - rem))) == 0;
}

/*
 * IPv6 networks nest deeper and sparser than IPv4 ones: cutting a /32 around a /48 of
 * another country would make dozens of blocks, so IPv6 keeps the nesting and only drops
 * the networks that answer the same as the network around them. Each route remembers the
 * depth of the route around it (for the tbl8 estimate below).
 */
static int
prune6(struct collect *c)
{
	const struct geo_fnet *v = c->nets.v;
	size_t stack[130], sp = 0;
	uint8_t kept_depth[130]; /* depth of the nearest kept route at or above stack[k] */

	for (size_t i = 0; i < c->nets.n; i++) {
		const struct geo_fnet *x = &v[i];
		uint8_t around;
		int keep;

		if (x->first >= GEO_V4_LO && x->last <= GEO_V4_HI)
			continue; /* IPv4: from the flattening */
		while (sp > 0 && x->first > v[stack[sp - 1]].last)
			sp--;
		if (sp >= RTE_DIM(stack))
			return -EINVAL;
		keep = sp == 0 || v[stack[sp - 1]].val != x->val;
		around = sp > 0 ? kept_depth[sp - 1] : 0;
		if (keep) {
			uint8_t b[16];

			if (geo_grow((void **)&c->r6, &c->cap6, c->n6 + 1, sizeof(*c->r6)) != 0)
				return -ENOMEM;
			geo_u128_to(x->first, b);
			memcpy(c->r6[c->n6].ip, b, 16);
			c->r6[c->n6].depth = x->depth;
			c->r6[c->n6].nh = x->val;
			c->r6[c->n6].around = around;
			c->n6++;
		}
		stack[sp] = i;
		kept_depth[sp] = keep ? x->depth : around;
		sp++;
	}
	return 0;
}

/*
 * The TRIE reserves tbl8 groups when it adds a prefix deeper than /24 that is the first
 * one in its byte-aligned block: one per byte between the route around it (at least /24)
 * and the prefix. Sorted routes: the first in its block is the one whose predecessor is
 * not a deeper route inside the block. (upper = 1: without that discount, a bound.)
 */
static uint64_t
tbl8_need6(const struct collect *c, int upper)
{
	uint64_t n = 0;

	for (size_t i = 0; i < c->n6; i++) {
		const struct route6 *x = &c->r6[i];
		unsigned int d = x->depth, blk = RTE_ALIGN_FLOOR(d, 8u);
		unsigned int pd = x->around > 24 ? x->around : 24;

		if (d <= 24)
			continue;
		if (!upper && i > 0 && c->r6[i - 1].depth > blk &&
		    prefix_covers(x->ip, blk, c->r6[i - 1].ip))
			continue;
		if (RTE_ALIGN_CEIL(d, 8u) > RTE_ALIGN_CEIL(pd, 8u))
			n += (RTE_ALIGN_CEIL(d, 8u) - RTE_ALIGN_CEIL(pd, 8u)) >> 3;
	}
	return n;
}

/* ------------------------------------------------------------------ table */

static uint64_t
heap_alloc_bytes(void)
{
	struct rte_malloc_socket_stats st;
	uint64_t sum = 0;

	for (unsigned int i = 0; i < rte_socket_count(); i++) {
		int s = rte_socket_id_by_idx(i);

		if (s >= 0 && rte_malloc_get_socket_stats(s, &st) == 0)
			sum += st.heap_allocsz_bytes;
	}
	return sum;
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
file_id_of(const struct stat *st, struct geo_file_id *id)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

int
geo_file_id_get(const char *path, struct geo_file_id *id)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -errno;
	file_id_of(&st, id);
	return 0;
}

void
geo_table_free(struct geo_table *t)
{
	if (t == NULL)
		return;
	rte_fib_free(t->fib4);
	rte_fib6_free(t->fib6);
	if (t->db != NULL)
		loc_database_unref(t->db);
	if (t->ctx != NULL)
		loc_unref(t->ctx);
	if (t->f != NULL)
		fclose(t->f);
	free(t->path);
	rte_free(t);
}

static unsigned int table_seq; /* FIB names must be unique: control path only */

/* "PATH: IPv4 FIB: adding 1.2.3.0/24: reason"; returns rc (-errno of the FIB add). */
static int
add_failed(const struct geo_table *t, int family, const void *addr, unsigned int depth, int rc,
	   char *msg, size_t msg_len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(msg, msg_len, "%s: IPv%d FIB: adding %s/%u: %s", t->path,
		 family == AF_INET ? 4 : 6, a, depth, strerror(-rc));
	return rc;
}

/* SIGTERM/SIGINT while building: give up (the caller frees the table) */
static int
stopped(const struct geo_table *t, char *msg, size_t msg_len)
{
	snprintf(msg, msg_len, "%s: stopped by shutdown", t->path);
	return -EINTR;
}

static int
build_fib4(struct geo_table *t, const struct collect *c, char *msg, size_t msg_len)
{
	struct rte_fib_conf conf;
	char name[32];
	uint32_t need = tbl8_need4(c);
	int rc;

	memset(&conf, 0, sizeof(conf));
	conf.type = RTE_FIB_DIR24_8;
	conf.default_nh = 0;
	conf.max_routes = (int)c->n4 + 64;
	conf.rib_ext_sz = 0;
	conf.dir24_8.num_tbl8 = need + need / 32 + 64;
	/* a 2-byte next hop also stores tbl8 indexes: up to 32767 groups */
	conf.dir24_8.nh_sz =
		conf.dir24_8.num_tbl8 < 32767 ? RTE_FIB_DIR24_8_2B : RTE_FIB_DIR24_8_4B;
	t->tbl8_4 = conf.dir24_8.num_tbl8;
	t->nh_bytes4 = conf.dir24_8.nh_sz == RTE_FIB_DIR24_8_2B ? 2 : 4;
	snprintf(name, sizeof(name), "geo4_%u", table_seq);
	t->fib4 = rte_fib_create(name, SOCKET_ID_ANY, &conf);
	if (t->fib4 == NULL) {
		snprintf(msg, msg_len, "%s: cannot create the IPv4 FIB (%zu routes, %u tbl8): %s",
			 t->path, c->n4, conf.dir24_8.num_tbl8, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n4; i++) {
		if (sky_should_stop())
			return stopped(t, msg, msg_len);
		rc = rte_fib_add(t->fib4, c->r4[i].ip, c->r4[i].depth, c->r4[i].nh);
		if (rc != 0) {
			uint32_t be = rte_cpu_to_be_32(c->r4[i].ip);

			return add_failed(t, AF_INET, &be, c->r4[i].depth, rc, msg, msg_len);
		}
	}
	t->routes4 = (uint32_t)c->n4;
	return 0;
}

static int
build_fib6(struct geo_table *t, const struct collect *c, uint64_t need, char *msg, size_t msg_len)
{
	struct rte_fib6_conf conf;
	char name[32];
	int rc;

	memset(&conf, 0, sizeof(conf));
	conf.type = RTE_FIB6_TRIE;
	conf.default_nh = 0;
	conf.max_routes = (int)c->n6 + 64;
	conf.rib_ext_sz = 0;
	if (need > INT32_MAX) {
		snprintf(msg, msg_len, "%s: IPv6 FIB: too many tbl8 groups needed", t->path);
		return -E2BIG;
	}
	conf.trie.num_tbl8 = (uint32_t)need;
	conf.trie.nh_sz = conf.trie.num_tbl8 < 32767 ? RTE_FIB6_TRIE_2B : RTE_FIB6_TRIE_4B;
	t->tbl8_6 = conf.trie.num_tbl8;
	t->nh_bytes6 = conf.trie.nh_sz == RTE_FIB6_TRIE_2B ? 2 : 4;
	snprintf(name, sizeof(name), "geo6_%u", table_seq);
	t->fib6 = rte_fib6_create(name, SOCKET_ID_ANY, &conf);
	if (t->fib6 == NULL) {
		snprintf(msg, msg_len, "%s: cannot create the IPv6 FIB (%zu routes, %u tbl8): %s",
			 t->path, c->n6, conf.trie.num_tbl8, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n6; i++) {
		if (sky_should_stop())
			return stopped(t, msg, msg_len);
		rc = rte_fib6_add(t->fib6, c->r6[i].ip, c->r6[i].depth, c->r6[i].nh);
		if (rc != 0)
			return add_failed(t, AF_INET6, c->r6[i].ip, c->r6[i].depth, rc, msg,
					  msg_len);
	}
	t->routes6 = (uint32_t)c->n6;
	return 0;
}

struct geo_table *
geo_table_build(const char *path, const struct geo_opts *o, char *msg, size_t msg_len)
{
	bool flags = o->flags, ipv6 = o->ipv6;
	struct collect c;
	struct geo_table *t;
	struct geo_db d;
	struct stat st;
	uint64_t t0 = mono_us(), heap0, need6;
	int rc;

	/*
	 * AVX512 lookups: DPDK uses them only under a 512-bit SIMD limit, which EAL keeps at
	 * 256 unless told otherwise; asking for them raises the process's limit (unless EAL
	 * --force-max-simd-bitwidth fixed it). Refused early, before the whole load.
	 */
	if (o->lookup == GEO_LOOKUP_AVX512) {
		if (rte_cpu_get_flag_enabled(RTE_CPUFLAG_AVX512F) <= 0) {
			snprintf(msg, msg_len, "lookup: avx512: this CPU has no AVX512F");
			return NULL;
		}
		if (rte_vect_get_max_simd_bitwidth() < RTE_VECT_SIMD_512 &&
		    rte_vect_set_max_simd_bitwidth(RTE_VECT_SIMD_512) != 0) {
			snprintf(msg, msg_len,
				 "lookup: avx512: EAL --force-max-simd-bitwidth=%u forbids 512-bit "
				 "SIMD",
				 (unsigned int)rte_vect_get_max_simd_bitwidth());
			return NULL;
		}
	}
	t = rte_zmalloc("sky_geo_table", sizeof(*t), RTE_CACHE_LINE_SIZE);
	if (t == NULL) {
		snprintf(msg, msg_len, "%s: out of DPDK memory", path ? path : "geo");
		return NULL;
	}
	memset(&c, 0, sizeof(c));
	/* the version of the file (for the watch) is taken before the copy: if the file is
	 * replaced in between, the watch sees a newer version and loads it once more */
	if (path != NULL && stat(path, &st) == 0)
		file_id_of(&st, &t->file);
	rc = db_open(&d, path, msg, msg_len);
	if (rc != 0) {
		rte_free(t);
		return NULL;
	}
	t->ctx = d.ctx;
	t->db = d.db;
	t->f = d.f;
	t->path = strdup(path);
	c.amap = calloc(1u << 20, sizeof(*c.amap));
	if (t->path == NULL || c.amap == NULL) {
		snprintf(msg, msg_len, "%s: out of memory", path);
		goto fail;
	}
	c.attr = t->attr;
	c.n_attr = 1; /* attr[0] = no network */
	c.flags = flags;
	c.ipv6 = ipv6;
	c.path = path;
	c.msg = msg;
	c.msg_len = msg_len;
	if (db_each_network(&d, path, collect_net, &c, msg, msg_len) != 0)
		goto fail;
	if (c.nets.n == 0) {
		snprintf(msg, msg_len, "%s: corrupt or truncated database (no networks)", path);
		goto fail;
	}
	t->n_attr = c.n_attr;
	t->n4 = c.nets4;
	t->n6 = c.nets6;
	geo_fnets_sort(&c.nets);
	c.v6_nested = true;
	rc = geo_flatten(c.nets.v, c.nets.n, add_range, &c);
	if (rc == 0 && ipv6)
		rc = prune6(&c);
	free(c.nets.v);
	c.nets.v = NULL;
	if (rc != 0) {
		snprintf(msg, msg_len, "%s: %s", path,
			 rc == -ENOMEM ? "out of memory"
				       : "corrupt database (networks overlap "
					 "without nesting)");
		goto fail;
	}

	heap0 = heap_alloc_bytes();
	table_seq++;
	if (build_fib4(t, &c, msg, msg_len) != 0)
		goto fail;
	if (ipv6) {
		need6 = tbl8_need6(&c, 0);
		rc = build_fib6(t, &c, need6 + need6 / 32 + 64, msg, msg_len);
		if (rc == -ENOSPC) { /* the estimate was short: the upper bound cannot be */
			rte_fib6_free(t->fib6);
			t->fib6 = NULL;
			need6 = tbl8_need6(&c, 1);
			rc = build_fib6(t, &c, need6 + 64, msg, msg_len);
		}
		if (rc != 0)
			goto fail;
	}
	if (o->lookup != GEO_LOOKUP_AUTO) {
		int avx = o->lookup == GEO_LOOKUP_AVX512;

		if (rte_fib_select_lookup(t->fib4, avx ? RTE_FIB_LOOKUP_DIR24_8_VECTOR_AVX512
						       : RTE_FIB_LOOKUP_DIR24_8_SCALAR_MACRO) !=
			    0 ||
		    (t->fib6 != NULL &&
		     rte_fib6_select_lookup(t->fib6, avx ? RTE_FIB6_LOOKUP_TRIE_VECTOR_AVX512
							 : RTE_FIB6_LOOKUP_TRIE_SCALAR) != 0)) {
			snprintf(msg, msg_len,
				 "lookup: %s: refused by the FIB library (CPU flags?)",
				 geo_lookup_names[o->lookup]);
			goto fail;
		}
	}
	t->mem_bytes = heap_alloc_bytes() - heap0 + sizeof(*t);
	t->load_us = mono_us() - t0;
	free(c.r4);
	free(c.r6);
	free(c.amap);
	return t;
fail:
	free(c.nets.v);
	free(c.r4);
	free(c.r6);
	free(c.amap);
	geo_table_free(t);
	return NULL;
}

void
geo_table_meta(const struct geo_table *t, struct geo_db_meta *m)
{
	const char *s;

	s = loc_database_get_vendor(t->db);
	m->vendor = s != NULL ? s : "";
	s = loc_database_get_description(t->db);
	m->description = s != NULL ? s : "";
	s = loc_database_get_license(t->db);
	m->license = s != NULL ? s : "";
	m->created_at = (int64_t)loc_database_created_at(t->db);
}

void
geo_table_network(const struct geo_table *t, const struct in6_addr *a, char *buf, size_t len)
{
	struct loc_network *net = NULL;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (loc_database_lookup(t->db, a, &net) == 0 && net != NULL) {
		snprintf(buf, len, "%s", loc_network_str(net));
		loc_network_unref(net);
	}
}

/* ------------------------------------------------------------------ country networks */

struct cn_state {
	struct geo_fnets nets;
	uint16_t cc;
	int family;
	sky_geo_net_fn fn;
	void *arg;
	long count;
};

static int
cn_collect_net(void *arg, struct loc_network *n)
{
	struct cn_state *s = arg;

	return nets_add(&s->nets, n, net_cc(n));
}

static int
cn_cidr(void *arg, int family, const uint8_t *addr, unsigned int prefixlen, uint16_t val)
{
	struct cn_state *s = arg;

	(void)val;
	if (s->family != AF_UNSPEC && family != s->family)
		return 0;
	s->fn(s->arg, family, addr, prefixlen);
	s->count++;
	return 0;
}

static int
cn_range(void *arg, geo_u128 lo, geo_u128 hi, uint16_t cc)
{
	struct cn_state *s = arg;

	if (cc != s->cc)
		return 0;
	return geo_range_cidrs(lo, hi, cc, cn_cidr, arg);
}

int
sky_geo_country_networks(const char *db_path, uint16_t cc, int family, sky_geo_net_fn fn, void *arg)
{
	struct cn_state s;
	struct geo_db d;
	char msg[512];
	int rc;

	if (fn == NULL || cc == SKY_COUNTRY_NONE ||
	    (family != AF_INET && family != AF_INET6 && family != AF_UNSPEC))
		return -EINVAL;
	rc = db_open(&d, db_path, msg, sizeof(msg));
	if (rc != 0)
		return rc;
	memset(&s, 0, sizeof(s));
	s.cc = cc;
	s.family = family;
	s.fn = fn;
	s.arg = arg;
	rc = db_each_network(&d, db_path, cn_collect_net, &s, msg, sizeof(msg));
	db_close(&d);
	if (rc == 0 && s.nets.n == 0)
		rc = -EINVAL;
	if (rc == 0) {
		geo_fnets_sort(&s.nets);
		rc = geo_flatten(s.nets.v, s.nets.n, cn_range, &s);
	}
	free(s.nets.v);
	if (rc != 0)
		return rc;
	return s.count > INT32_MAX ? INT32_MAX : (int)s.count;
}
