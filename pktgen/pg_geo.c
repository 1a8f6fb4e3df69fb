/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Remote (internet-side) addresses per country from the libloc database: one pass over the
 * networks of the requested countries, then random hosts inside random networks, each
 * kept only if a lookup places it in that country (a network's more specific subnets may
 * belong elsewhere). Control path only; the data path reads the finished pools.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libloc/country-list.h>
#include <libloc/country.h>
#include <libloc/database.h>
#include <libloc/libloc.h>
#include <libloc/network.h>

#include "pg.h"

struct netvec {
	struct {
		uint8_t a[16];
		uint8_t len;
	} * v;
	size_t n, cap;
};

static int
netvec_push(struct netvec *nv, const struct in6_addr *a, unsigned int len)
{
	if (nv->n == nv->cap) {
		size_t cap = nv->cap ? nv->cap * 2 : 256;
		void *v = realloc(nv->v, cap * sizeof(*nv->v));
		if (v == NULL)
			return -1;
		nv->v = v;
		nv->cap = cap;
	}
	memcpy(nv->v[nv->n].a, a->s6_addr, 16);
	nv->v[nv->n].len = (uint8_t)len;
	nv->n++;
	return 0;
}

static int
open_db(const char *path, struct loc_ctx **ctx, struct loc_database **db, char *err, size_t errlen)
{
	if (loc_new(ctx)) {
		snprintf(err, errlen, "libloc: cannot create a context");
		return -1;
	}
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		loc_unref(*ctx);
		return -1;
	}
	int rc = loc_database_new(*ctx, db, f);
	fclose(f);
	if (rc) {
		snprintf(err, errlen, "%s: not a libloc database", path);
		loc_unref(*ctx);
		return -1;
	}
	return 0;
}

/* random host inside the network (libloc gives IPv4 as v4-mapped IPv6, prefix + 96) */
static void
random_in(const uint8_t *net, unsigned int len, uint64_t *st, uint8_t *out)
{
	memcpy(out, net, 16);
	for (unsigned int bit = len; bit < 128; bit += 64) {
		uint64_t r = pg_rand(st);
		for (unsigned int b = bit; b < 128 && b < bit + 64; b++)
			if (r >> (b - bit) & 1)
				out[b / 8] |= (uint8_t)(0x80u >> (b % 8));
	}
}

static bool
is_v4mapped(const uint8_t *a)
{
	static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a, pfx, 12) == 0;
}

/* usable as a remote host: not .0 / .255 for IPv4, not the subnet-router anycast for v6 */
static bool
host_ok(const uint8_t *a, bool v4)
{
	if (v4)
		return a[15] != 0 && a[15] != 255;
	for (unsigned int i = 8; i < 16; i++)
		if (a[i])
			return true;
	return false;
}

struct pg_geo_pool *
pg_geo_pools(const char *db_path, const struct pg_mix *mix, unsigned int per_country, uint64_t seed,
	     char *err, size_t errlen)
{
	struct loc_ctx *ctx;
	struct loc_database *db;
	if (open_db(db_path, &ctx, &db, err, errlen))
		return NULL;
	struct pg_geo_pool *pools = calloc(mix->n, sizeof(*pools));
	struct netvec *nv = calloc(mix->n * 2, sizeof(*nv));
	struct loc_country_list *cl = NULL;
	struct loc_database_enumerator *en = NULL;
	bool ok = false;
	if (pools == NULL || nv == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (loc_country_list_new(ctx, &cl))
		goto oom;
	for (unsigned int i = 0; i < mix->n; i++) {
		struct loc_country *c;
		const char *code = mix->name[i];
		if (strlen(code) != 2 || loc_country_new(ctx, &c, code)) {
			snprintf(err, errlen, "--remote-countries: '%s' is not a country code",
				 code);
			goto out;
		}
		loc_country_list_append(cl, c);
		loc_country_unref(c);
		pools[i].cc = pg_cc(code);
	}
	if (loc_database_enumerator_new(&en, db, LOC_DB_ENUMERATE_NETWORKS, 0))
		goto oom;
	loc_database_enumerator_set_countries(en, cl);
	struct loc_network *net;
	while (loc_database_enumerator_next_network(en, &net) == 0 && net) {
		const char *cc = loc_network_get_country_code(net);
		for (unsigned int i = 0; i < mix->n; i++) {
			if (strcmp(cc, mix->name[i]) != 0)
				continue;
			bool v4 = loc_network_address_family(net) == AF_INET;
			unsigned int len = loc_network_prefix(net);
			if (v4 && len < 96)
				len += 96; /* be robust to either convention */
			if (v4 ? len > 126 : len > 124)
				break; /* too small to hold random hosts */
			if (netvec_push(&nv[2 * i + (v4 ? 0 : 1)],
					loc_network_get_first_address(net), len)) {
				loc_network_unref(net);
				goto oom;
			}
			break;
		}
		loc_network_unref(net);
	}
	uint64_t st = seed ^ 0x6e0;
	for (unsigned int i = 0; i < mix->n; i++) {
		struct pg_geo_pool *p = &pools[i];
		p->v4 = calloc(per_country, 4);
		p->v6 = calloc(per_country, 16);
		if (p->v4 == NULL || p->v6 == NULL)
			goto oom;
		for (int fam = 0; fam < 2; fam++) {
			struct netvec *v = &nv[2 * i + fam];
			unsigned int got = 0;
			for (unsigned int tries = 0;
			     v->n && got < per_country && tries < per_country * 64; tries++) {
				size_t k = pg_rand(&st) % v->n;
				uint8_t a[16];
				random_in(v->v[k].a, v->v[k].len, &st, a);
				if (fam == 0 && !is_v4mapped(a))
					continue;
				if (!host_ok(a, fam == 0))
					continue;
				struct loc_network *hit = NULL;
				if (loc_database_lookup(db, (const struct in6_addr *)a, &hit) ||
				    !hit)
					continue;
				bool same = strcmp(loc_network_get_country_code(hit),
						   mix->name[i]) == 0;
				loc_network_unref(hit);
				if (!same)
					continue;
				if (fam == 0)
					memcpy(p->v4[got++], a + 12, 4);
				else
					memcpy(p->v6[got++], a, 16);
			}
			if (fam == 0)
				p->n4 = got;
			else
				p->n6 = got;
		}
		if (p->n4 == 0 && p->n6 == 0) {
			snprintf(err, errlen, "--remote-countries: no addresses of '%s' in %s",
				 mix->name[i], db_path);
			goto out;
		}
	}
	ok = true;
	goto out;
oom:
	snprintf(err, errlen, "out of memory reading %s", db_path);
out:
	if (en)
		loc_database_enumerator_unref(en);
	if (cl)
		loc_country_list_unref(cl);
	if (nv)
		for (unsigned int i = 0; i < mix->n * 2; i++)
			free(nv[i].v);
	free(nv);
	loc_database_unref(db);
	loc_unref(ctx);
	if (!ok && pools) {
		pg_geo_pools_free(pools, mix->n);
		pools = NULL;
	}
	return pools;
}

void
pg_geo_pools_free(struct pg_geo_pool *p, unsigned int n)
{
	if (p == NULL)
		return;
	for (unsigned int i = 0; i < n; i++) {
		free(p[i].v4);
		free(p[i].v6);
	}
	free(p);
}

int
pg_geo_top_countries(const char *db_path, unsigned int n, struct pg_mix *mix, char *err,
		     size_t errlen)
{
	struct loc_ctx *ctx;
	struct loc_database *db;
	memset(mix, 0, sizeof(*mix));
	if (n == 0 || n > PG_MAX_MIX) {
		snprintf(err, errlen, "--countries: count must be 1..%d", PG_MAX_MIX);
		return -1;
	}
	if (open_db(db_path, &ctx, &db, err, errlen))
		return -1;
	static uint32_t count[26 * 26];
	memset(count, 0, sizeof(count));
	struct loc_database_enumerator *en = NULL;
	int rc = -1;
	if (loc_database_enumerator_new(&en, db, LOC_DB_ENUMERATE_NETWORKS, 0)) {
		snprintf(err, errlen, "libloc: cannot enumerate %s", db_path);
		goto out;
	}
	loc_database_enumerator_set_family(en, AF_INET);
	struct loc_network *net;
	while (loc_database_enumerator_next_network(en, &net) == 0 && net) {
		const char *cc = loc_network_get_country_code(net);
		if (cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' && !cc[2] &&
		    loc_country_special_code_to_flag(cc) == 0)
			count[(cc[0] - 'A') * 26 + (cc[1] - 'A')]++;
		loc_network_unref(net);
	}
	for (unsigned int k = 0; k < n; k++) {
		unsigned int best = 0;
		for (unsigned int i = 1; i < 26 * 26; i++)
			if (count[i] > count[best])
				best = i;
		if (count[best] == 0)
			break;
		mix->name[k][0] = (char)('A' + best / 26);
		mix->name[k][1] = (char)('A' + best % 26);
		mix->weight[k] = 1;
		mix->n++;
		count[best] = 0;
	}
	rc = mix->n ? 0 : -1;
	if (rc)
		snprintf(err, errlen, "%s: no countries", db_path);
out:
	if (en)
		loc_database_enumerator_unref(en);
	loc_database_unref(db);
	loc_unref(ctx);
	return rc;
}
