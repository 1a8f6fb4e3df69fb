/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo: the location database (libloc) loaded into DPDK FIBs, and the data-path lookup.
 *
 * Build (control path): enumerate every network of the database once, in address order
 * (parents before their subnets), encode (country, flags) as a small attribute index, size
 * the FIBs' tbl8 pools from the networks themselves, insert, and keep the libloc handle
 * for the control commands. Nested networks are inserted as they are; the FIB's
 * longest-prefix match gives the same answer as libloc's tree walk.
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
#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "geo_priv.h"

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

/* ------------------------------------------------------------------ collection */

struct net4 {
	uint32_t ip; /* host order */
	uint8_t depth;
	uint16_t nh;
};

struct net6 {
	uint8_t ip[16];
	uint8_t depth;
	uint16_t nh;
};

struct collect {
	struct net4 *v4;
	size_t n4, cap4;
	struct net6 *v6;
	size_t n6, cap6;
	uint16_t *amap;   /* (cc << 4 | flags) -> attr index, 0 = not yet */
	uint32_t *attr;   /* the table's attr[] */
	uint32_t n_attr;
	bool flags;
	bool ipv6;
	const char *path;
	char *msg;
	size_t msg_len;
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

static int
collect_net(void *arg, struct loc_network *n)
{
	struct collect *c = arg;
	uint16_t cc = net_cc(n);
	uint8_t fl = c->flags ? net_flags(n) : 0;
	uint32_t key = ((uint32_t)cc << 4) | fl;
	const struct in6_addr *a = loc_network_get_first_address(n);
	unsigned int prefix = loc_network_prefix(n);
	uint16_t nh = c->amap[key];

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
	if (loc_network_address_family(n) == AF_INET) {
		uint32_t ip;

		if (prefix > 32)
			goto bad;
		if (grow((void **)&c->v4, &c->cap4, c->n4 + 1, sizeof(*c->v4)) != 0)
			goto nomem;
		memcpy(&ip, &a->s6_addr[12], 4);
		c->v4[c->n4].ip = rte_be_to_cpu_32(ip);
		c->v4[c->n4].depth = (uint8_t)prefix;
		c->v4[c->n4].nh = nh;
		c->n4++;
	} else {
		if (prefix > 128)
			goto bad;
		if (!c->ipv6)
			return 0;
		if (grow((void **)&c->v6, &c->cap6, c->n6 + 1, sizeof(*c->v6)) != 0)
			goto nomem;
		memcpy(c->v6[c->n6].ip, a->s6_addr, 16);
		c->v6[c->n6].depth = (uint8_t)prefix;
		c->v6[c->n6].nh = nh;
		c->n6++;
	}
	return 0;
bad:
	snprintf(c->msg, c->msg_len, "%s: corrupt database (network %s has prefix %u)", c->path,
		 loc_network_str(n), prefix);
	return -EINVAL;
nomem:
	snprintf(c->msg, c->msg_len, "%s: out of memory collecting networks", c->path);
	return -ENOMEM;
}

static int
cmp4(const void *a, const void *b)
{
	const struct net4 *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return (int)x->depth - (int)y->depth;
}

static int
cmp6(const void *a, const void *b)
{
	const struct net6 *x = a, *y = b;
	int r = memcmp(x->ip, y->ip, 16);

	return r != 0 ? r : (int)x->depth - (int)y->depth;
}

/* Address order, parents first (libloc enumerates so already; sort only if it did not). */
static void
sort_nets(struct collect *c)
{
	size_t i;

	for (i = 1; i < c->n4; i++)
		if (cmp4(&c->v4[i - 1], &c->v4[i]) > 0)
			break;
	if (i < c->n4)
		qsort(c->v4, c->n4, sizeof(*c->v4), cmp4);
	for (i = 1; i < c->n6; i++)
		if (cmp6(&c->v6[i - 1], &c->v6[i]) > 0)
			break;
	if (i < c->n6)
		qsort(c->v6, c->n6, sizeof(*c->v6), cmp6);
}

/*
 * DIR24_8 takes one tbl8 group per /24 that holds longer prefixes. Sorted input keeps
 * the prefixes of one /24 together.
 */
static uint32_t
tbl8_need4(const struct collect *c)
{
	uint32_t n = 0, last = 0;
	bool any = false;

	for (size_t i = 0; i < c->n4; i++) {
		uint32_t blk = c->v4[i].ip >> 8;

		if (c->v4[i].depth <= 24)
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
 * The TRIE reserves, for a prefix deeper than /24 that is the first one in its
 * byte-aligned block, one tbl8 group per byte between its covering prefix (at least /24)
 * and itself. Count the same way (a parent stack over the sorted networks), without the
 * "first in its block" discount: an upper bound of what the FIB will ask for.
 */
static uint64_t
tbl8_need6(const struct collect *c)
{
	uint32_t stack[129];
	unsigned int sp = 0;
	uint64_t n = 0;

	for (size_t i = 0; i < c->n6; i++) {
		const struct net6 *x = &c->v6[i];
		unsigned int pd = 24;

		while (sp > 0 && !prefix_covers(c->v6[stack[sp - 1]].ip,
						c->v6[stack[sp - 1]].depth, x->ip))
			sp--;
		if (sp > 0 && c->v6[stack[sp - 1]].depth > pd)
			pd = c->v6[stack[sp - 1]].depth;
		if (x->depth > 24)
			n += (RTE_ALIGN_CEIL(x->depth, 8u) - RTE_ALIGN_CEIL(pd, 8u)) >> 3;
		if (sp < RTE_DIM(stack))
			stack[sp++] = (uint32_t)i;
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
	conf.dir24_8.num_tbl8 = need + need / 64 + 64;
	/* a 2-byte next hop also stores tbl8 indexes: up to 32767 groups */
	conf.dir24_8.nh_sz = conf.dir24_8.num_tbl8 < 32767 ? RTE_FIB_DIR24_8_2B
							     : RTE_FIB_DIR24_8_4B;
	t->tbl8_4 = conf.dir24_8.num_tbl8;
	t->nh_bytes4 = conf.dir24_8.nh_sz == RTE_FIB_DIR24_8_2B ? 2 : 4;
	snprintf(name, sizeof(name), "geo4_%u", table_seq);
	t->fib4 = rte_fib_create(name, SOCKET_ID_ANY, &conf);
	if (t->fib4 == NULL) {
		snprintf(msg, msg_len, "%s: cannot create the IPv4 FIB (%u networks, %u tbl8): %s",
			 t->path, (unsigned int)c->n4, conf.dir24_8.num_tbl8,
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n4; i++) {
		rc = rte_fib_add(t->fib4, c->v4[i].ip, c->v4[i].depth, c->v4[i].nh);
		if (rc != 0) {
			uint32_t be = rte_cpu_to_be_32(c->v4[i].ip);
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &be, a, sizeof(a));
			snprintf(msg, msg_len, "%s: IPv4 FIB: adding %s/%u: %s", t->path, a,
				 c->v4[i].depth, strerror(-rc));
			return rc;
		}
	}
	t->n4 = (uint32_t)c->n4;
	return 0;
}

static int
build_fib6(struct geo_table *t, const struct collect *c, char *msg, size_t msg_len)
{
	struct rte_fib6_conf conf;
	char name[32];
	uint64_t need = tbl8_need6(c);
	int rc;

	if (c->n6 == 0 && !c->ipv6)
		return 0;
	memset(&conf, 0, sizeof(conf));
	conf.type = RTE_FIB6_TRIE;
	conf.default_nh = 0;
	conf.max_routes = (int)c->n6 + 64;
	conf.rib_ext_sz = 0;
	need = need + need / 64 + 64;
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
		snprintf(msg, msg_len, "%s: cannot create the IPv6 FIB (%u networks, %u tbl8): %s",
			 t->path, (unsigned int)c->n6, conf.trie.num_tbl8,
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n6; i++) {
		rc = rte_fib6_add(t->fib6, c->v6[i].ip, c->v6[i].depth, c->v6[i].nh);
		if (rc != 0) {
			char a[INET6_ADDRSTRLEN];

			inet_ntop(AF_INET6, c->v6[i].ip, a, sizeof(a));
			snprintf(msg, msg_len, "%s: IPv6 FIB: adding %s/%u: %s", t->path, a,
				 c->v6[i].depth, strerror(-rc));
			return rc;
		}
	}
	t->n6 = (uint32_t)c->n6;
	return 0;
}

struct geo_table *
geo_table_build(const char *path, bool flags, bool ipv6, char *msg, size_t msg_len)
{
	struct collect c;
	struct geo_table *t;
	struct geo_db d;
	uint64_t t0 = mono_us(), heap0;
	int rc;

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
	if (c.n4 + c.n6 == 0) {
		snprintf(msg, msg_len, "%s: corrupt or truncated database (no networks)", path);
		goto fail;
	}
	t->n_attr = c.n_attr;
	sort_nets(&c);

	heap0 = heap_alloc_bytes();
	table_seq++;
	if (build_fib4(t, &c, msg, msg_len) != 0)
		goto fail;
	if (ipv6 && build_fib6(t, &c, msg, msg_len) != 0)
		goto fail;
	t->mem_bytes = heap_alloc_bytes() - heap0 + sizeof(*t);
	t->load_us = mono_us() - t0;
	free(c.v4);
	free(c.v6);
	free(c.amap);
	return t;
fail:
	free(c.v4);
	free(c.v6);
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
lookup_chunk(const struct geo_table *t, struct geo_worker *w, struct sky_meta *meta,
	     unsigned int n)
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
sky_geo_lookup(struct sky_geo *g, int family, const uint8_t *addr, uint16_t *cc,
	       uint8_t *flags, char *net_buf, size_t net_len)
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
	t = geo_table_build(p, g->flags, g->ipv6, msg, msg_len);
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
sky_geo_enabled(const struct sky_geo *g)
{
	return g != NULL && g->table != NULL;
}

struct sky_geo *
sky_geo_create(const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	static const char *const keys[] = { "database", "flags", "ipv6", NULL };
	const struct sky_cfg_node *sec = cfg != NULL ? sky_cfg_get(cfg->root, "geo") : NULL;
	const char *path = NULL;
	struct sky_geo *g;
	bool flags = true, ipv6 = true;
	char msg[512];

	if (sec != NULL) {
		if (sky_cfg_check_keys(err, cfg, sec, keys) != 0 ||
		    sky_cfg_get_str(err, cfg, sec, "database", true, &path) != 0 ||
		    sky_cfg_get_bool(err, cfg, sec, "flags", false, &flags) != 0 ||
		    sky_cfg_get_bool(err, cfg, sec, "ipv6", false, &ipv6) != 0)
			return NULL;
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
	g->flags = flags;
	g->ipv6 = ipv6;
	if (sec == NULL)
		return g;
	g->path = strdup(path);
	if (g->path == NULL) {
		sky_cfg_fail(err, cfg, sec, "out of memory");
		goto fail;
	}
	g->table = geo_table_build(path, flags, ipv6, msg, sizeof(msg));
	if (g->table == NULL) {
		sky_cfg_fail(err, cfg, sky_cfg_get(sec, "database"), "%s", msg);
		goto fail;
	}
	geo_info_update(g);
	SKY_LOG(INFO, "geo: %s: %u IPv4 + %u IPv6 networks in %.0f ms, %.1f MB", path,
		g->table->n4, g->table->n6, (double)g->table->load_us / 1e3,
		(double)g->table->mem_bytes / 1e6);
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

/*
 * Flatten the database in one sweep: networks in address order (parents first) and a stack
 * of the open ones; the part of a network not covered by its subnets belongs to its
 * country. Addresses are 128-bit (IPv4 as ::ffff:a.b.c.d, like libloc).
 */
typedef unsigned __int128 u128;

struct cn_net {
	u128 first, last;
	uint16_t cc;
	uint8_t v4;
	uint8_t depth; /* within the 128-bit space */
};

struct cn_collect {
	struct cn_net *v;
	size_t n, cap;
	int family;
	const char *path;
	char *msg;
	size_t msg_len;
};

static u128
u128_from(const uint8_t *b)
{
	u128 x = 0;

	for (int i = 0; i < 16; i++)
		x = (x << 8) | b[i];
	return x;
}

static void
u128_to(u128 x, uint8_t *b)
{
	for (int i = 15; i >= 0; i--) {
		b[i] = (uint8_t)x;
		x >>= 8;
	}
}

static int
cn_collect_net(void *arg, struct loc_network *n)
{
	struct cn_collect *c = arg;
	const struct in6_addr *a = loc_network_get_first_address(n);
	int v4 = loc_network_address_family(n) == AF_INET;
	unsigned int depth = loc_network_prefix(n) + (v4 ? 96 : 0);
	struct cn_net *x;

	if (depth > 128)
		return -EINVAL;
	if (grow((void **)&c->v, &c->cap, c->n + 1, sizeof(*c->v)) != 0)
		return -ENOMEM;
	x = &c->v[c->n++];
	x->first = u128_from(a->s6_addr);
	x->last = depth == 0 ? ~(u128)0 : x->first | ((((u128)1) << (128 - depth)) - 1);
	if (depth == 128)
		x->last = x->first;
	x->cc = net_cc(n);
	x->v4 = (uint8_t)v4;
	x->depth = (uint8_t)depth;
	return 0;
}

static int
cn_cmp(const void *a, const void *b)
{
	const struct cn_net *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (int)x->depth - (int)y->depth;
}

struct cn_emit {
	uint16_t cc;
	int family;
	sky_geo_net_fn fn;
	void *arg;
	long count;
};

/* Emit [lo, hi] of country owner as CIDR blocks. */
static void
cn_range(struct cn_emit *e, const struct cn_net *owner, u128 lo, u128 hi)
{
	uint8_t b[16];

	if (owner->cc != e->cc || lo > hi)
		return;
	if (e->family == AF_INET && !owner->v4)
		return;
	if (e->family == AF_INET6 && owner->v4)
		return;
	while (lo <= hi) {
		unsigned int tz = 0;
		u128 size;

		/* largest aligned block at lo that fits in [lo, hi] */
		while (tz < 128 && ((lo >> tz) & 1) == 0)
			tz++;
		if (tz > 128u - owner->depth)
			tz = 128u - owner->depth;
		while (tz > 0) {
			size = tz == 128 ? ~(u128)0 : (((u128)1) << tz) - 1;
			if (lo + size <= hi && lo + size >= lo)
				break;
			tz--;
		}
		size = tz == 128 ? ~(u128)0 : (((u128)1) << tz) - 1;
		u128_to(lo, b);
		if (owner->v4)
			e->fn(e->arg, AF_INET, b + 12, 32 - tz);
		else
			e->fn(e->arg, AF_INET6, b, 128 - tz);
		e->count++;
		if (lo + size == ~(u128)0)
			break;
		lo = lo + size + 1;
	}
}

int
sky_geo_country_networks(const char *db_path, uint16_t cc, int family, sky_geo_net_fn fn,
			 void *arg)
{
	struct cn_collect c;
	struct cn_emit e;
	struct geo_db d;
	char msg[512];
	size_t *stack = NULL, sp = 0;
	u128 *cursor = NULL;
	int rc;

	if (fn == NULL || cc == SKY_COUNTRY_NONE ||
	    (family != AF_INET && family != AF_INET6 && family != AF_UNSPEC))
		return -EINVAL;
	rc = db_open(&d, db_path, msg, sizeof(msg));
	if (rc != 0)
		return rc;
	memset(&c, 0, sizeof(c));
	c.family = family;
	c.path = db_path;
	c.msg = msg;
	c.msg_len = sizeof(msg);
	rc = db_each_network(&d, db_path, cn_collect_net, &c, msg, sizeof(msg));
	db_close(&d);
	if (rc != 0)
		goto out;
	if (c.n == 0) {
		rc = -EINVAL;
		goto out;
	}
	qsort(c.v, c.n, sizeof(*c.v), cn_cmp);
	stack = malloc(sizeof(*stack) * 130);
	cursor = malloc(sizeof(*cursor) * 130);
	if (stack == NULL || cursor == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	e.cc = cc;
	e.family = family;
	e.fn = fn;
	e.arg = arg;
	e.count = 0;
	/* cursor[k]: first address of stack[k]'s network not yet emitted or given away */
	for (size_t i = 0; i <= c.n; i++) {
		const struct cn_net *x = i < c.n ? &c.v[i] : NULL;

		while (sp > 0 && (x == NULL || x->first > c.v[stack[sp - 1]].last)) {
			const struct cn_net *top = &c.v[stack[sp - 1]];

			if (cursor[sp - 1] <= top->last)
				cn_range(&e, top, cursor[sp - 1], top->last);
			sp--;
			/* the parent resumes after this network */
			if (sp > 0)
				cursor[sp - 1] = top->last == ~(u128)0 ? top->last : top->last + 1;
		}
		if (x == NULL)
			break;
		if (sp > 0) {
			const struct cn_net *top = &c.v[stack[sp - 1]];

			if (x->first > cursor[sp - 1])
				cn_range(&e, top, cursor[sp - 1], x->first - 1);
			if (sp >= 129) /* deeper than any valid nesting: corrupt */
				continue;
		}
		stack[sp] = i;
		cursor[sp] = x->first;
		sp++;
	}
	rc = e.count > INT32_MAX ? INT32_MAX : (int)e.count;
out:
	free(stack);
	free(cursor);
	free(c.v);
	return rc;
}
