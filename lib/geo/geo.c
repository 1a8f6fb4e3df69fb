/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo: the location database (libloc) loaded into DPDK FIBs, and the data-path lookup.
 *
 * Build (control path): enumerate every network of the database once (libloc gives them in
 * address order, parents before their subnets), encode (country, flags) as a small
 * attribute index, turn the networks into fewer routes that answer the same (IPv4:
 * flattened and merged; IPv6: redundant subnets dropped, see below), size the FIBs' tbl8
 * pools from the routes, insert, and keep the libloc handle for the control commands
 * (network CIDR, database metadata).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

#include "geo_priv.h"

const char *const geo_lookup_names[] = {"auto", "scalar", "avx512", NULL};

const char *const geo_counter_names[GEO_C_MAX] = {
#define GEO_C_NAME(n, s, h) s,
	GEO_FOREACH_COUNTER(GEO_C_NAME)
#undef GEO_C_NAME
};
const char *const geo_counter_help[GEO_C_MAX] = {
#define GEO_C_HELP(n, s, h) h,
	GEO_FOREACH_COUNTER(GEO_C_HELP)
#undef GEO_C_HELP
};

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

/* Open a database file; on failure msg is "PATH: reason". Returns 0 or -errno. */
static int
db_open(struct geo_db *d, const char *path, char *msg, size_t msg_len)
{
	struct stat st;
	int rc;

	memset(d, 0, sizeof(*d));
	if (path == NULL || path[0] == '\0') {
		snprintf(msg, msg_len, "no database path");
		return -EINVAL;
	}
	d->f = fopen(path, "r");
	if (d->f == NULL) {
		rc = -errno;
		snprintf(msg, msg_len, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fileno(d->f), &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(msg, msg_len, "%s: not a regular file", path);
		db_close(d);
		return -EINVAL;
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

/* ------------------------------------------------------------------ flattening */

/*
 * The FIB only needs address -> (country, flags). The database's networks nest (a /16 of
 * one country holding /24s of others) and many neighbours differ only in their AS number,
 * so the networks are flattened first: one sweep in address order (parents first) with a
 * stack of the open networks gives disjoint ranges valued by the deepest network covering
 * them (libloc's answer); neighbouring ranges of equal value merge; each range becomes a
 * few CIDR blocks. The FIBs then hold disjoint routes, about half as many as networks,
 * and answer exactly what libloc answers. Addresses are 128-bit here, IPv4 as
 * ::ffff:a.b.c.d like libloc's tree.
 */
typedef unsigned __int128 u128;

#define U128_MAX (~(u128)0)
#define V4_LO ((u128)0xffff << 32)  /* ::ffff:0.0.0.0 */
#define V4_HI (V4_LO | 0xffffffffu) /* ::ffff:255.255.255.255 */

struct fnet {
	u128 first, last;
	uint16_t val;  /* attr index (FIB) or country (sky_geo_country_networks) */
	uint8_t depth; /* in the 128-bit space */
};

struct fnets {
	struct fnet *v;
	size_t n, cap;
};

static int
grow(void **p, size_t *cap, size_t need, size_t esz)
{
	size_t c = *cap ? *cap : 65536;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * esz);
	if (q == NULL)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static u128
u128_from(const uint8_t *b)
{
	uint64_t hi, lo;

	memcpy(&hi, b, 8);
	memcpy(&lo, b + 8, 8);
	return ((u128)rte_be_to_cpu_64(hi) << 64) | rte_be_to_cpu_64(lo);
}

static unsigned int
u128_ctz(u128 x)
{
	uint64_t lo = (uint64_t)x, hi = (uint64_t)(x >> 64);

	if (lo != 0)
		return (unsigned int)__builtin_ctzll(lo);
	return hi != 0 ? 64u + (unsigned int)__builtin_ctzll(hi) : 128u;
}

static void
u128_to(u128 x, uint8_t *b)
{
	for (int i = 15; i >= 0; i--) {
		b[i] = (uint8_t)x;
		x >>= 8;
	}
}

/* Returns 0, -EINVAL (bad prefix), -ENOMEM. */
static int
fnets_add(struct fnets *s, struct loc_network *n, uint16_t val)
{
	const struct in6_addr *a = loc_network_get_first_address(n);
	int v4 = loc_network_address_family(n) == AF_INET;
	unsigned int depth = loc_network_prefix(n) + (v4 ? 96 : 0);
	struct fnet *x;

	if (depth > 128 || a == NULL)
		return -EINVAL;
	if (grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0)
		return -ENOMEM;
	x = &s->v[s->n++];
	x->first = u128_from(a->s6_addr);
	if (depth < 128)
		x->first &= ~((((u128)1) << (128 - depth)) - 1);
	x->last = depth == 0 ? U128_MAX
			     : x->first | (depth == 128 ? 0 : (((u128)1) << (128 - depth)) - 1);
	x->val = val;
	x->depth = (uint8_t)depth;
	return 0;
}

static int
fnet_cmp(const void *a, const void *b)
{
	const struct fnet *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (int)x->depth - (int)y->depth;
}

/* Address order, parents first (libloc enumerates so already; sort only if it did not). */
static void
fnets_sort(struct fnets *s)
{
	size_t i;

	for (i = 1; i < s->n; i++)
		if (fnet_cmp(&s->v[i - 1], &s->v[i]) > 0)
			break;
	if (i < s->n)
		qsort(s->v, s->n, sizeof(*s->v), fnet_cmp);
}

typedef int (*range_fn)(void *arg, u128 lo, u128 hi, uint16_t val);

struct pending {
	u128 lo, hi;
	uint16_t val;
	int have;
	range_fn fn;
	void *arg;
};

static int
pend_emit(struct pending *p, u128 lo, u128 hi, uint16_t val)
{
	int rc = 0;

	if (lo > hi)
		return 0;
	if (p->have && p->val == val && p->hi != U128_MAX && p->hi + 1 == lo) {
		p->hi = hi;
		return 0;
	}
	if (p->have)
		rc = p->fn(p->arg, p->lo, p->hi, p->val);
	p->lo = lo;
	p->hi = hi;
	p->val = val;
	p->have = 1;
	return rc;
}

/*
 * Call fn for the disjoint ranges of sorted networks v, each with the value of the deepest
 * network covering it, neighbours of equal value merged. Returns 0, fn's error, or -EINVAL
 * when the nesting is impossible (corrupt input).
 */
static int
flatten(const struct fnet *v, size_t n, range_fn fn, void *arg)
{
	size_t stack[130], sp = 0;
	u128 cursor[130]; /* first address of stack[k] not yet emitted or given to a subnet */
	struct pending p = {.fn = fn, .arg = arg};
	int rc;

	for (size_t i = 0; i <= n; i++) {
		const struct fnet *x = i < n ? &v[i] : NULL;

		while (sp > 0 && (x == NULL || x->first > v[stack[sp - 1]].last)) {
			const struct fnet *top = &v[stack[sp - 1]];

			if (cursor[sp - 1] <= top->last) {
				rc = pend_emit(&p, cursor[sp - 1], top->last, top->val);
				if (rc != 0)
					return rc;
			}
			sp--;
			if (sp > 0) /* the parent resumes after this network */
				cursor[sp - 1] = top->last == U128_MAX ? U128_MAX : top->last + 1;
		}
		if (x == NULL)
			break;
		if (sp > 0) {
			const struct fnet *top = &v[stack[sp - 1]];

			if (x->last > top->last)
				return -EINVAL; /* overlaps without nesting */
			if (x->first > cursor[sp - 1]) {
				rc = pend_emit(&p, cursor[sp - 1], x->first - 1, top->val);
				if (rc != 0)
					return rc;
			}
			if (sp >= RTE_DIM(stack))
				return -EINVAL;
		}
		stack[sp] = i;
		cursor[sp] = x->first;
		sp++;
	}
	return p.have ? p.fn(p.arg, p.lo, p.hi, p.val) : 0;
}

/* Range [lo, hi] (one family) as CIDR blocks: fn(arg, family, addr, prefixlen, val). */
typedef int (*cidr_fn)(void *arg, int family, const uint8_t *addr, unsigned int prefixlen,
		       uint16_t val);

static int
range_cidrs(u128 lo, u128 hi, int v4, uint16_t val, cidr_fn fn, void *arg)
{
	uint8_t b[16];
	int rc;

	while (lo <= hi) {
		unsigned int tz = u128_ctz(lo);
		u128 span;

		for (;;) {
			span = tz == 128 ? U128_MAX : (((u128)1) << tz) - 1;
			if (lo + span >= lo && lo + span <= hi)
				break;
			tz--;
		}
		u128_to(lo, b);
		rc = v4 ? fn(arg, AF_INET, b + 12, 32 - tz, val)
			: fn(arg, AF_INET6, b, 128 - tz, val);
		if (rc != 0)
			return rc;
		if (lo + span == U128_MAX)
			break;
		lo += span + 1;
	}
	return 0;
}

/* Split [lo, hi] at the IPv4-mapped /96: the inside goes out as IPv4 blocks. */
static int
range_split(u128 lo, u128 hi, uint16_t val, cidr_fn fn, void *arg)
{
	int rc = 0;

	if (hi < V4_LO || lo > V4_HI)
		return range_cidrs(lo, hi, 0, val, fn, arg);
	if (lo < V4_LO)
		rc = range_cidrs(lo, V4_LO - 1, 0, val, fn, arg);
	if (rc == 0)
		rc = range_cidrs(lo > V4_LO ? lo : V4_LO, hi < V4_HI ? hi : V4_HI, 1, val, fn, arg);
	if (rc == 0 && hi > V4_HI)
		rc = range_cidrs(V4_HI + 1, hi, 0, val, fn, arg);
	return rc;
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
	struct fnets nets;
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
	rc = fnets_add(&c->nets, n, nh);
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

		if (grow((void **)&c->r4, &c->cap4, c->n4 + 1, sizeof(*c->r4)) != 0)
			return -ENOMEM;
		memcpy(&ip, addr, 4);
		c->r4[c->n4].ip = rte_be_to_cpu_32(ip);
		c->r4[c->n4].depth = (uint8_t)prefixlen;
		c->r4[c->n4].nh = nh;
		c->n4++;
	} else if (c->ipv6 && !c->v6_nested) {
		if (grow((void **)&c->r6, &c->cap6, c->n6 + 1, sizeof(*c->r6)) != 0)
			return -ENOMEM;
		memcpy(c->r6[c->n6].ip, addr, 16);
		c->r6[c->n6].depth = (uint8_t)prefixlen;
		c->r6[c->n6].nh = nh;
		c->n6++;
	}
	return 0;
}

static int
add_range(void *arg, u128 lo, u128 hi, uint16_t nh)
{
	return range_split(lo, hi, nh, add_route, arg);
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
	const struct fnet *v = c->nets.v;
	size_t stack[130], sp = 0;
	uint8_t kept_depth[130]; /* depth of the nearest kept route at or above stack[k] */

	for (size_t i = 0; i < c->nets.n; i++) {
		const struct fnet *x = &v[i];
		uint8_t around;
		int keep;

		if (x->first >= V4_LO && x->last <= V4_HI)
			continue; /* IPv4: from the flattening */
		while (sp > 0 && x->first > v[stack[sp - 1]].last)
			sp--;
		if (sp >= RTE_DIM(stack))
			return -EINVAL;
		keep = sp == 0 || v[stack[sp - 1]].val != x->val;
		around = sp > 0 ? kept_depth[sp - 1] : 0;
		if (keep) {
			uint8_t b[16];

			if (grow((void **)&c->r6, &c->cap6, c->n6 + 1, sizeof(*c->r6)) != 0)
				return -ENOMEM;
			u128_to(x->first, b);
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
		rc = rte_fib_add(t->fib4, c->r4[i].ip, c->r4[i].depth, c->r4[i].nh);
		if (rc != 0) {
			uint32_t be = rte_cpu_to_be_32(c->r4[i].ip);
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &be, a, sizeof(a));
			snprintf(msg, msg_len, "%s: IPv4 FIB: adding %s/%u: %s", t->path, a,
				 c->r4[i].depth, strerror(-rc));
			return rc;
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
		rc = rte_fib6_add(t->fib6, c->r6[i].ip, c->r6[i].depth, c->r6[i].nh);
		if (rc != 0) {
			char a[INET6_ADDRSTRLEN];

			inet_ntop(AF_INET6, c->r6[i].ip, a, sizeof(a));
			snprintf(msg, msg_len, "%s: IPv6 FIB: adding %s/%u: %s", t->path, a,
				 c->r6[i].depth, strerror(-rc));
			return rc;
		}
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
	rc = db_open(&d, path, msg, msg_len);
	if (rc != 0) {
		rte_free(t);
		return NULL;
	}
	t->ctx = d.ctx;
	t->db = d.db;
	t->f = d.f;
	{
		struct stat st;

		if (fstat(fileno(d.f), &st) == 0) {
			t->file.dev = st.st_dev;
			t->file.ino = st.st_ino;
			t->file.size = (uint64_t)st.st_size;
			t->file.mtime_ns =
				(int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		}
	}
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
	fnets_sort(&c.nets);
	c.v6_nested = true;
	rc = flatten(c.nets.v, c.nets.n, add_range, &c);
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

/* ------------------------------------------------------------------ data path */

static inline int
v4_mapped(const uint8_t *a)
{
	uint64_t hi;
	uint32_t mid;

	memcpy(&hi, a, 8);
	memcpy(&mid, a + 8, 4);
	return hi == 0 && mid == rte_cpu_to_be_32(0x0000ffffu);
}

static inline void
apply(const struct geo_table *t, struct sky_meta *m, uint64_t nh, uint64_t *unknown)
{
	uint32_t a = t->attr[nh & (GEO_MAX_ATTR - 1)];

	m->remote_country = (uint16_t)a;
	m->remote_flags = (uint8_t)(a >> 16);
	*unknown += (uint16_t)a == 0;
}

static void
lookup_chunk(const struct geo_table *t, struct geo_worker *w, struct sky_meta *meta, unsigned int n)
{
	uint32_t ip4[SKY_BURST];
	uint8_t ip6[SKY_BURST][16];
	uint64_t nh[SKY_BURST];
	uint8_t i4[SKY_BURST], i6[SKY_BURST];
	unsigned int n4 = 0, n6 = 0, i;
	uint64_t unknown = 0;

	for (i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];
		const uint8_t *a;
		uint32_t v;

		if (!sky_meta_live(m))
			continue;
		a = sky_meta_remote_addr(m);
		if (m->l3 == 4) {
			memcpy(&v, a, 4);
		} else if (v4_mapped(a)) {
			memcpy(&v, a + 12, 4);
		} else if (t->fib6 != NULL) {
			memcpy(ip6[n6], a, 16);
			i6[n6++] = (uint8_t)i;
			continue;
		} else {
			apply(t, m, 0, &unknown);
			continue;
		}
		ip4[n4] = rte_be_to_cpu_32(v);
		i4[n4++] = (uint8_t)i;
	}
	if (n4 != 0) {
		rte_fib_lookup_bulk(t->fib4, ip4, nh, (int)n4);
		for (i = 0; i < n4; i++)
			apply(t, &meta[i4[i]], nh[i], &unknown);
	}
	if (n6 != 0) {
		rte_fib6_lookup_bulk(t->fib6, ip6, nh, (int)n6);
		for (i = 0; i < n6; i++)
			apply(t, &meta[i6[i]], nh[i], &unknown);
	}
	w->c[GEO_C_LOOKUP_V4] += n4;
	w->c[GEO_C_LOOKUP_V6] += n6;
	w->c[GEO_C_UNKNOWN] += unknown;
}

void
sky_geo_lookup_burst(struct sky_geo *g, unsigned int worker, struct sky_meta *meta, uint16_t n)
{
	const struct geo_table *t = __atomic_load_n(&g->table, __ATOMIC_ACQUIRE);
	struct geo_worker *w = &g->w[worker & (SKY_MAX_WORKERS - 1)];
	unsigned int off, k;

	RTE_ASSERT(worker < SKY_MAX_WORKERS);
	if (t == NULL)
		return;
	for (off = 0; off < n; off += k) {
		k = RTE_MIN((unsigned int)n - off, (unsigned int)SKY_BURST);
		lookup_chunk(t, w, meta + off, k);
	}
}

/* ------------------------------------------------------------------ control path */

int
sky_geo_lookup(struct sky_geo *g, int family, const uint8_t *addr, uint16_t *cc, uint8_t *flags,
	       char *net_buf, size_t net_len)
{
	const struct geo_table *t;
	struct loc_network *net = NULL;
	struct in6_addr a6;
	uint8_t ip6[1][16];
	uint32_t ip4, v;
	uint64_t nh = 0;
	uint32_t at;

	if (cc != NULL)
		*cc = SKY_COUNTRY_NONE;
	if (flags != NULL)
		*flags = 0;
	if (net_buf != NULL && net_len > 0)
		net_buf[0] = '\0';
	if (g == NULL || addr == NULL || (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	t = g->table;
	if (t == NULL)
		return -ENODEV;
	memset(&a6, 0, sizeof(a6));
	if (family == AF_INET || v4_mapped(addr)) {
		memcpy(&v, family == AF_INET ? addr : addr + 12, 4);
		ip4 = rte_be_to_cpu_32(v);
		rte_fib_lookup_bulk(t->fib4, &ip4, &nh, 1);
		a6.s6_addr[10] = 0xff;
		a6.s6_addr[11] = 0xff;
		memcpy(&a6.s6_addr[12], &v, 4);
	} else {
		memcpy(ip6[0], addr, 16);
		memcpy(a6.s6_addr, addr, 16);
		if (t->fib6 != NULL)
			rte_fib6_lookup_bulk(t->fib6, ip6, &nh, 1);
	}
	at = t->attr[nh & (GEO_MAX_ATTR - 1)];
	if (cc != NULL)
		*cc = (uint16_t)at;
	if (flags != NULL)
		*flags = (uint8_t)(at >> 16);
	if (net_buf != NULL && net_len > 0 && (at & GEO_ATTR_FOUND) &&
	    loc_database_lookup(t->db, &a6, &net) == 0 && net != NULL) {
		snprintf(net_buf, net_len, "%s", loc_network_str(net));
		loc_network_unref(net);
	}
	return (at & GEO_ATTR_FOUND) ? 0 : -ENOENT;
}

void
geo_info_update(struct sky_geo *g)
{
	const struct geo_table *t = g->table;
	struct geo_info in;
	const char *s;

	memset(&in, 0, sizeof(in));
	if (t != NULL) {
		in.enabled = 1;
		snprintf(in.path, sizeof(in.path), "%s", t->path);
		in.n4 = t->n4;
		in.n6 = t->n6;
		in.load_us = t->load_us;
		in.mem_bytes = t->mem_bytes;
		s = loc_database_get_vendor(t->db);
		snprintf(in.vendor, sizeof(in.vendor), "%s", s ? s : "");
		s = loc_database_get_description(t->db);
		snprintf(in.description, sizeof(in.description), "%s", s ? s : "");
		in.created_at = (int64_t)loc_database_created_at(t->db);
	}
	pthread_mutex_lock(&g->info_lock);
	g->info = in;
	pthread_mutex_unlock(&g->info_lock);
}

int
sky_geo_reload(struct sky_geo *g, const char *path, char *msg, size_t msg_len)
{
	struct geo_table *t, *old;
	const char *p = path != NULL ? path : g->path;
	char *np;

	if (p == NULL) {
		snprintf(msg, msg_len, "no database configured (give a PATH)");
		return -ENODEV;
	}
	np = strdup(p);
	if (np == NULL) {
		snprintf(msg, msg_len, "out of memory");
		return -ENOMEM;
	}
	t = geo_table_build(p, &g->opts, msg, msg_len);
	if (t == NULL) {
		free(np);
		g->reload_failures++;
		return -EINVAL;
	}
	old = g->table;
	__atomic_store_n(&g->table, t, __ATOMIC_RELEASE);
	geo_info_update(g);
	sky_rcu_sync();
	geo_table_free(old);
	free(g->path);
	g->path = np;
	g->reloads++;
	return 0;
}

int
geo_file_id_get(const char *path, struct geo_file_id *id)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -errno;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = (uint64_t)st.st_size;
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

static bool
file_id_eq(const struct geo_file_id *a, const struct geo_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

/*
 * `location update` and package upgrades replace the database by rename: a new inode (or
 * size/mtime) means a new version. A version that fails to load is remembered and not
 * retried until the file changes again; the running table stays meanwhile.
 */
void
geo_watch(struct sky_geo *g)
{
	struct geo_file_id id;
	char msg[512];

	if (g->table == NULL || g->path == NULL || geo_file_id_get(g->path, &id) != 0)
		return;
	if (file_id_eq(&id, &g->table->file) || file_id_eq(&id, &g->refused))
		return;
	if (sky_geo_reload(g, NULL, msg, sizeof(msg)) != 0) {
		g->refused = id;
		SKY_LOG(WARNING, "geo: %s changed but was refused, the running database stays: %s",
			g->path, msg);
		return;
	}
	g->auto_reloads++;
	sky_audit(0, "geo reload %s (the file changed): %u IPv4 + %u IPv6 networks loaded", g->path,
		  g->table->n4, g->table->n6);
}

int
sky_geo_enabled(const struct sky_geo *g)
{
	return g != NULL && g->table != NULL;
}

struct sky_geo *
sky_geo_create(const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	static const char *const keys[] = {"database", "flags",		 "ipv6",
					   "lookup",   "check_interval", NULL};
	uint64_t check_us = 0;
	unsigned int lookup = GEO_LOOKUP_AUTO;
	const struct sky_cfg_node *sec = cfg != NULL ? sky_cfg_get(cfg->root, "geo") : NULL;
	const char *path = NULL;
	struct sky_geo *g;
	bool flags = true, ipv6 = true;
	char msg[512];

	if (sec != NULL) {
		if (sky_cfg_check_keys(err, cfg, sec, keys) != 0 ||
		    sky_cfg_get_str(err, cfg, sec, "database", true, &path) != 0 ||
		    sky_cfg_get_bool(err, cfg, sec, "flags", false, &flags) != 0 ||
		    sky_cfg_get_bool(err, cfg, sec, "ipv6", false, &ipv6) != 0 ||
		    sky_cfg_get_enum(err, cfg, sec, "lookup", false, geo_lookup_names, &lookup) !=
			    0 ||
		    sky_cfg_get_time(err, cfg, sec, "check_interval", false, &check_us) != 0)
			return NULL;
		if (check_us != 0 && check_us < 1000000) {
			sky_cfg_fail(err, cfg, sky_cfg_get(sec, "check_interval"),
				     "at least 1s (or 0 to never check)");
			return NULL;
		}
		if (path[0] == '\0') {
			sky_cfg_fail(err, cfg, sky_cfg_get(sec, "database"), "empty path");
			return NULL;
		}
	}
	g = rte_zmalloc("sky_geo", sizeof(*g), RTE_CACHE_LINE_SIZE);
	if (g == NULL) {
		sky_cfg_fail(err, cfg, sec, "out of DPDK memory");
		return NULL;
	}
	pthread_mutex_init(&g->info_lock, NULL);
	g->opts.flags = flags;
	g->opts.ipv6 = ipv6;
	g->opts.lookup = (enum geo_lookup)lookup;
	g->check_interval_us = check_us;
	if (sec == NULL)
		return g;
	g->path = strdup(path);
	if (g->path == NULL) {
		sky_cfg_fail(err, cfg, sec, "out of memory");
		goto fail;
	}
	g->table = geo_table_build(path, &g->opts, msg, sizeof(msg));
	if (g->table == NULL) {
		int lk = strncmp(msg, "lookup: ", 8) == 0;

		sky_cfg_fail(err, cfg, sky_cfg_get(sec, lk ? "lookup" : "database"), "%s",
			     lk ? msg + 8 : msg);
		goto fail;
	}
	geo_info_update(g);
	SKY_LOG(INFO, "geo: %s: %u IPv4 + %u IPv6 networks in %.0f ms, %.1f MB", path, g->table->n4,
		g->table->n6, (double)g->table->load_us / 1e3, (double)g->table->mem_bytes / 1e6);
	return g;
fail:
	free(g->path);
	pthread_mutex_destroy(&g->info_lock);
	rte_free(g);
	return NULL;
}

void
sky_geo_destroy(struct sky_geo *g)
{
	if (g == NULL)
		return;
	geo_ctl_forget(g);
	geo_table_free(g->table);
	free(g->path);
	pthread_mutex_destroy(&g->info_lock);
	rte_free(g);
}

/* ------------------------------------------------------------------ country networks */

struct cn_state {
	struct fnets nets;
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

	return fnets_add(&s->nets, n, net_cc(n));
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
cn_range(void *arg, u128 lo, u128 hi, uint16_t cc)
{
	struct cn_state *s = arg;

	if (cc != s->cc)
		return 0;
	return range_split(lo, hi, cc, cn_cidr, arg);
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
		fnets_sort(&s.nets);
		rc = flatten(s.nets.v, s.nets.n, cn_range, &s);
	}
	free(s.nets.v);
	if (rc != 0)
		return rc;
	return s.count > INT32_MAX ? INT32_MAX : (int)s.count;
}
