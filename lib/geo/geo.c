/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo owner: the module's life (sky_geo_create from the `geo:` section, reload, the file
 * watch, destroy), the published table (one pointer, RCU) and control-path lookups.
 * Tables are built by the loader (geo_load.c); commands and telemetry (geo_ctl.c) call
 * in here, never the other way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_malloc.h>

#include "geo_priv.h"

int
sky_geo_lookup(struct sky_geo *g, int family, const uint8_t *addr, uint16_t *cc, uint8_t *flags,
	       char *net_buf, size_t net_len)
{
	const struct geo_table *t;
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
	if (family == AF_INET || geo_v4_mapped(addr)) {
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
	if (net_buf != NULL && (at & GEO_ATTR_FOUND))
		geo_table_network(t, &a6, net_buf, net_len);
	return (at & GEO_ATTR_FOUND) ? 0 : -ENOENT;
}

/* The snapshot the telemetry thread reads (it never reads the table). */
static void
info_update(struct sky_geo *g)
{
	const struct geo_table *t = g->table;
	struct geo_db_meta meta;
	struct geo_info in;

	memset(&in, 0, sizeof(in));
	if (t != NULL) {
		geo_table_meta(t, &meta);
		in.enabled = 1;
		snprintf(in.path, sizeof(in.path), "%s", t->path);
		in.n4 = t->n4;
		in.n6 = t->n6;
		in.load_us = t->load_us;
		in.mem_bytes = t->mem_bytes;
		snprintf(in.vendor, sizeof(in.vendor), "%s", meta.vendor);
		snprintf(in.description, sizeof(in.description), "%s", meta.description);
		in.created_at = meta.created_at;
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
	info_update(g);
	sky_rcu_sync();
	geo_table_free(old);
	free(g->path);
	g->path = np;
	g->reloads++;
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
	info_update(g);
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
	if (g->unregister != NULL)
		g->unregister(g);
	geo_table_free(g->table);
	free(g->path);
	pthread_mutex_destroy(&g->info_lock);
	rte_free(g);
}
