/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The subscriber table: lookup tables (rte_lpm6, see subscriber_priv.h), the id map, the
 * records and free list, the per-subscriber counters, and the changes that keep them in
 * step (subscriber add, del, set, load), each validated whole before it is applied
 * reader-safely. Control path only; the data path that reads the tables is
 * subscriber_dp.c.
 *
 * Memory per subscriber (rte_malloc): a 16-byte record, per worker 8 * (4 * classes + 4)
 * bytes of counters (160 B with 4 classes), the rte_lpm6 rule hash (~90 B per address)
 * and tbl8 share, plus two fixed 64 MB rte_lpm6 tbl24s (a third once a realm is used).
 * bench_subscriber prints the measured figure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_lpm6.h>
#include <rte_malloc.h>

#include "subscriber_priv.h"

const char *const sky_subs_dg_names[SKY_SUBS_DG_MAX] = {"policy", "police", "unknown", "other"};

static inline uint32_t
idmap_slot(const struct idmap *m, uint32_t id)
{
	uint32_t h = id * 0x9E3779B1u;

	return (h ^ (h >> 15)) & m->mask;
}

static int
idmap_init(struct idmap *m, uint32_t cap)
{
	uint32_t size = 1024;

	while (size < cap * 2u)
		size <<= 1;
	m->keys = calloc(size, sizeof(uint32_t));
	m->vals = malloc(size * sizeof(uint32_t));
	m->mask = size - 1;
	if (m->keys == NULL || m->vals == NULL) {
		free(m->keys);
		free(m->vals);
		m->keys = m->vals = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void
idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = m->vals = NULL;
}

static uint32_t
idmap_get(const struct idmap *m, uint32_t id)
{
	for (uint32_t i = idmap_slot(m, id);; i = (i + 1) & m->mask) {
		if (m->keys[i] == id)
			return m->vals[i];
		if (m->keys[i] == 0)
			return SKY_SUB_NONE;
	}
}

static void
idmap_put(struct idmap *m, uint32_t id, uint32_t val)
{
	uint32_t i = idmap_slot(m, id);

	while (m->keys[i] != 0 && m->keys[i] != id)
		i = (i + 1) & m->mask;
	m->keys[i] = id;
	m->vals[i] = val;
}

static void
idmap_del(struct idmap *m, uint32_t id)
{
	uint32_t i = idmap_slot(m, id), j;

	while (m->keys[i] != id) {
		if (m->keys[i] == 0)
			return;
		i = (i + 1) & m->mask;
	}
	/* backward-shift deletion keeps probe chains intact */
	for (j = i;;) {
		uint32_t k;

		j = (j + 1) & m->mask;
		if (m->keys[j] == 0)
			break;
		k = idmap_slot(m, m->keys[j]);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
}

static struct rte_lpm6 *
lpm_create(struct sky_subs *s, const char *kind, uint32_t max_rules, uint32_t tbl8)
{
	struct rte_lpm6_config c = {.max_rules = max_rules, .number_tbl8s = tbl8};
	static unsigned int seq; /* rte object names are process-wide */
	char name[32];

	(void)s;
	snprintf(name, sizeof(name), "sky_s%s_%u", kind, seq++);
	return rte_lpm6_create(name, SOCKET_ID_ANY, &c);
}

/* groups a table needs now, plus room for runtime adds: a new /32 or /56 outside the
 * groups in use takes one to three; most land in groups already there */
static uint32_t
tbl8_budget(uint32_t need, uint32_t spare_subs)
{
	return need + need / 8 + 1024 + spare_subs / 16;
}

static int
lpmr_create(struct sky_subs *s, struct subs_tables *t, uint32_t n_realm_entries, uint32_t need,
	    uint32_t spare)
{
	t->max_rules[2] = 2 * n_realm_entries + 4096;
	t->tbl8[2] = tbl8_budget(need, spare / 8);
	struct rte_lpm6 *l = lpm_create(s, "r", t->max_rules[2], t->tbl8[2]);

	if (l == NULL)
		return -ENOMEM;
	__atomic_store_n(&t->lpmr, l, __ATOMIC_RELEASE);
	return 0;
}

void
subs_tables_free(struct subs_tables *t)
{
	if (t == NULL)
		return;
	rte_lpm6_free(t->lpm4);
	rte_lpm6_free(t->lpm6);
	rte_lpm6_free(t->lpmr);
	rte_free(t->rec);
	rte_free(t);
}

static struct rte_lpm6 *
table_of(const struct subs_tables *t, unsigned int table)
{
	return table == 0 ? t->lpm4 : table == 1 ? t->lpm6 : t->lpmr;
}

/* add one address of a subscriber; 0 or -errno */
static int
addr_add(struct subs_tables *t, uint8_t fam, uint16_t realm, const uint8_t *a, uint8_t len,
	 uint32_t idx)
{
	uint8_t key[16], depth, table;

	sky_subs_lpm_key(fam, realm, a, len, key, &depth, &table);
	if (realm != 0)
		__atomic_fetch_or(&t->realm_bm[realm >> 6], 1ULL << (realm & 63), __ATOMIC_RELEASE);
	return rte_lpm6_add(table_of(t, table), key, depth, idx);
}

static void
addr_del(struct subs_tables *t, uint8_t fam, uint16_t realm, const uint8_t *a, uint8_t len)
{
	uint8_t key[16], depth, table;

	sky_subs_lpm_key(fam, realm, a, len, key, &depth, &table);
	rte_lpm6_delete(table_of(t, table), key, depth);
}

/* owner idx of exactly this (realm, prefix), or SKY_SUB_NONE */
static uint32_t
addr_owner(const struct subs_tables *t, uint8_t fam, uint16_t realm, const uint8_t *a, uint8_t len)
{
	uint8_t key[16], depth, table;
	uint32_t nh;
	struct rte_lpm6 *l;

	sky_subs_lpm_key(fam, realm, a, len, key, &depth, &table);
	l = table_of(t, table);
	if (l == NULL || rte_lpm6_is_rule_present(l, key, depth, &nh) != 1)
		return SKY_SUB_NONE;
	return nh;
}

static const char *
lpm_err(int rc)
{
	return rc == -ENOSPC ? "lookup table full (raise subscribers.capacity, or subscriber load "
			       "to resize)"
			     : strerror(-rc);
}

struct subs_tables *
subs_tables_create(struct sky_subs *s, const struct sky_subs_rows *rows, const uint32_t *row_idx,
		   const uint32_t need[3], char *err, size_t errlen)
{
	struct subs_tables *t;
	uint32_t spare = s->capacity - (uint32_t)rows->n, n_realm = 0;

	t = rte_zmalloc("sky_subs_tab", sizeof(*t), RTE_CACHE_LINE_SIZE);
	if (t == NULL)
		goto nomem;
	t->rec = rte_zmalloc("sky_subs_rec", (size_t)s->capacity * sizeof(*t->rec),
			     RTE_CACHE_LINE_SIZE);
	t->max_rules[0] = t->max_rules[1] = s->capacity + 64;
	t->tbl8[0] = tbl8_budget(need[0], spare);
	t->tbl8[1] = tbl8_budget(need[1], spare);
	t->lpm4 = lpm_create(s, "4", t->max_rules[0], t->tbl8[0]);
	t->lpm6 = lpm_create(s, "6", t->max_rules[1], t->tbl8[1]);
	if (t->rec == NULL || t->lpm4 == NULL || t->lpm6 == NULL)
		goto nomem;
	for (size_t i = 0; i < rows->n; i++)
		if (rows->r[i].sub.realm != 0)
			n_realm += rows->r[i].sub.has_v4 + rows->r[i].sub.has_v6;
	if (n_realm > 0 && lpmr_create(s, t, n_realm, need[2], spare) < 0)
		goto nomem;
	for (size_t i = 0; i < rows->n; i++) {
		const struct sky_sub_info *r = &rows->r[i].sub;
		uint32_t idx = row_idx != NULL ? row_idx[i] : (uint32_t)i;
		int rc = 0;

		if (sky_should_stop()) { /* SIGTERM: give up, nothing was applied */
			subs_fail(err, errlen, "stopped by shutdown");
			subs_tables_free(t);
			return NULL;
		}
		t->rec[idx].realm = r->realm;
		t->rec[idx].w = sky_sub_rec_word(r->id, r->country, r->plan, r->beam);
		if (r->has_v4)
			rc = addr_add(t, 4, r->realm, r->v4, r->v4_len, idx);
		if (rc == 0 && r->has_v6)
			rc = addr_add(t, 6, r->realm, r->v6, r->v6_len, idx);
		if (rc < 0) {
			subs_fail(err, errlen, "line %u: id %u: %s", rows->r[i].line, r->id,
				  lpm_err(rc));
			subs_tables_free(t);
			return NULL;
		}
	}
	return t;
nomem:
	subs_fail(err, errlen, "out of DPDK memory for %u subscribers (capacity)", s->capacity);
	subs_tables_free(t);
	return NULL;
}

int
subs_state_build(const struct sky_subs *s, const struct sky_subs_rows *rows,
		 const uint32_t *row_idx, struct subs_state *cs)
{
	uint32_t cap = s->capacity;

	memset(cs, 0, sizeof(*cs));
	cs->info = calloc(cap, sizeof(*cs->info));
	cs->free_idx = malloc(cap * sizeof(uint32_t));
	if (cs->info == NULL || cs->free_idx == NULL || idmap_init(&cs->map, cap) < 0)
		goto fail;
	for (size_t i = 0; i < rows->n; i++) {
		uint32_t idx = row_idx != NULL ? row_idx[i] : (uint32_t)i;

		cs->info[idx] = rows->r[i].sub;
		cs->info[idx].idx = idx;
		idmap_put(&cs->map, rows->r[i].sub.id, idx);
	}
	for (uint32_t i = cap; i-- > 0;)
		if (cs->info[i].id == 0)
			cs->free_idx[cs->n_free++] = i;
	return 0;
fail:
	free(cs->info);
	free(cs->free_idx);
	idmap_free(&cs->map);
	return -ENOMEM;
}

static void
realm_refs_recount(struct sky_subs *s)
{
	memset(s->realm_refs, 0, sizeof(s->realm_refs));
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && s->info[i].realm != 0)
			s->realm_refs[s->info[i].realm] += s->info[i].has_v4 + s->info[i].has_v6;
}

void
subs_state_free(struct sky_subs *s)
{
	free(s->info);
	free(s->free_idx);
	idmap_free(&s->map);
	s->info = NULL;
	s->free_idx = NULL;
}

void
subs_state_install(struct sky_subs *s, struct subs_state *st, uint32_t n_subs)
{
	subs_state_free(s);
	s->info = st->info;
	s->map = st->map;
	s->free_idx = st->free_idx;
	s->n_free = st->n_free;
	s->n_subs = n_subs;
	realm_refs_recount(s);
}

int
sky_subs_get(const struct sky_subs *s, uint32_t id, struct sky_sub_info *out)
{
	uint32_t idx = id != 0 ? idmap_get(&s->map, id) : SKY_SUB_NONE;

	if (idx == SKY_SUB_NONE)
		return -ENOENT;
	*out = s->info[idx];
	return 0;
}

void
sky_subs_foreach(const struct sky_subs *s, int (*fn)(void *arg, const struct sky_sub_info *),
		 void *arg)
{
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && fn(arg, &s->info[i]) != 0)
			return;
}

void
subs_sum_counters(const struct sky_subs *s, uint32_t idx, uint64_t *out)
{
	memset(out, 0, s->stride * sizeof(uint64_t));
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		const uint64_t *c = s->ctr[w] + (size_t)idx * s->stride;

		for (unsigned int k = 0; k < s->stride; k++)
			out[k] += __atomic_load_n(&c[k], __ATOMIC_RELAXED);
	}
}

static void
counters_zero(struct sky_subs *s, uint32_t idx)
{
	for (unsigned int w = 0; w < s->n_ctr_workers; w++)
		memset(s->ctr[w] + (size_t)idx * s->stride, 0, s->stride * sizeof(uint64_t));
}

uint32_t
subs_find(const struct sky_subs *s, uint8_t fam, const uint8_t *addr, uint16_t vid)
{
	const struct subs_tables *t = s->tab;
	uint8_t key[16] = {0};
	uint32_t nh;

	memcpy(key, addr, fam == 4 ? 4 : 16);
	if (vid != 0 && vid <= SKY_REALM_MAX && t->lpmr != NULL && subs_realm_on(t, vid)) {
		uint8_t rk[16];

		rk[0] = (uint8_t)((fam == 4 ? 0x40 : 0x60) | (vid >> 8));
		rk[1] = (uint8_t)vid;
		memcpy(rk + 2, key, 14);
		if (rte_lpm6_lookup(t->lpmr, rk, &nh) == 0 && t->rec[nh].w != 0)
			return nh;
	}
	if (rte_lpm6_lookup(fam == 4 ? t->lpm4 : t->lpm6, key, &nh) == 0 && t->rec[nh].w != 0)
		return nh;
	return SKY_SUB_NONE;
}

static int
check_addrs(const struct sky_subs *s, const struct sky_sub_info *ni, uint32_t self, char *err,
	    size_t errlen)
{
	char txt[64];

	if (!ni->has_v4 && !ni->has_v6)
		return subs_fail(err, errlen, "a subscriber needs ipv4 or ipv6");
	if (ni->realm > SKY_REALM_MAX)
		return subs_fail(err, errlen, "realm %u is not a VLAN id 0..%d", ni->realm,
				 SKY_REALM_MAX);
	if (ni->realm != 0 && ni->has_v6 && ni->v6_len > SKY_REALM_V6_MAX_LEN)
		return subs_fail(err, errlen,
				 "ipv6: a subscriber with a realm may have at most a /%d",
				 SKY_REALM_V6_MAX_LEN);
	for (int f = 0; f < 2; f++) {
		uint8_t fam = f == 0 ? 4 : 6;
		const uint8_t *a = f == 0 ? ni->v4 : ni->v6;
		uint8_t len = f == 0 ? ni->v4_len : ni->v6_len;
		uint32_t o;

		if (!(f == 0 ? ni->has_v4 : ni->has_v6))
			continue;
		o = addr_owner(s->tab, fam, ni->realm, a, len);
		if (o != SKY_SUB_NONE && o != self) {
			inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, txt, sizeof(txt));
			return subs_fail(err, errlen,
					 "ipv%c %s/%u (realm %u) already belongs to id %u",
					 fam == 4 ? '4' : '6', txt, len, ni->realm, s->info[o].id);
		}
	}
	return 0;
}

static int
check_model(const struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	if (ni->id == 0)
		return subs_fail(err, errlen, "id must be 1..4294967295");
	if (ni->plan >= s->n_plans)
		return subs_fail(err, errlen, "plan index %u out of range", ni->plan);
	if (ni->beam >= s->n_beams)
		return subs_fail(err, errlen, "beam index %u out of range", ni->beam);
	return 0;
}

static int
ensure_lpmr(struct sky_subs *s, uint16_t realm, char *err, size_t errlen)
{
	if (realm == 0 || s->tab->lpmr != NULL)
		return 0;
	if (lpmr_create(s, s->tab, 0, 0, s->capacity) < 0)
		return subs_fail(err, errlen, "out of DPDK memory for the realm table");
	return 0;
}

static void
realm_unref(struct sky_subs *s, uint16_t realm)
{
	if (realm == 0 || --s->realm_refs[realm] != 0)
		return;
	__atomic_fetch_and(&s->tab->realm_bm[realm >> 6], ~(1ULL << (realm & 63)),
			   __ATOMIC_RELEASE);
}

int
subs_op_add(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	struct sky_sub_info in = *ni;
	uint32_t idx;
	int rc = 0;

	if (check_model(s, ni, err, errlen) < 0)
		return -1;
	if (idmap_get(&s->map, ni->id) != SKY_SUB_NONE)
		return subs_fail(err, errlen, "id %u exists (use subscriber set)", ni->id);
	if (check_addrs(s, ni, SKY_SUB_NONE, err, errlen) < 0)
		return -1;
	if (s->n_free == 0)
		return subs_fail(err, errlen,
				 "subscriber table full (capacity %u; raise subscribers.capacity)",
				 s->capacity);
	if (ensure_lpmr(s, ni->realm, err, errlen) < 0)
		return -1;
	idx = s->free_idx[s->n_free - 1];
	__atomic_store_n(&t->rec[idx].realm, ni->realm, __ATOMIC_RELAXED);
	__atomic_store_n(&t->rec[idx].w, sky_sub_rec_word(ni->id, ni->country, ni->plan, ni->beam),
			 __ATOMIC_RELEASE);
	if (ni->has_v4)
		rc = addr_add(t, 4, ni->realm, ni->v4, ni->v4_len, idx);
	if (rc == 0 && ni->has_v6) {
		rc = addr_add(t, 6, ni->realm, ni->v6, ni->v6_len, idx);
		if (rc < 0 && ni->has_v4) {
			addr_del(t, 4, ni->realm, ni->v4, ni->v4_len);
			sky_rcu_sync();
		}
	}
	if (rc < 0) {
		__atomic_store_n(&t->rec[idx].w, 0, __ATOMIC_RELEASE);
		return subs_fail(err, errlen, "%s", lpm_err(rc));
	}
	s->n_free--;
	in.idx = idx;
	s->info[idx] = in;
	idmap_put(&s->map, in.id, idx);
	s->n_subs++;
	if (in.realm != 0)
		s->realm_refs[in.realm] += in.has_v4 + in.has_v6;
	subs_notify(s, SKY_SUBS_EV_SUB_ADD, idx, &s->info[idx]);
	return 0;
}

int
subs_op_del(struct sky_subs *s, uint32_t id, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	uint32_t idx = id != 0 ? idmap_get(&s->map, id) : SKY_SUB_NONE;
	struct sky_sub_info old;

	if (idx == SKY_SUB_NONE)
		return subs_fail(err, errlen, "no subscriber with id %u", id);
	old = s->info[idx];
	if (old.has_v4)
		addr_del(t, 4, old.realm, old.v4, old.v4_len);
	if (old.has_v6)
		addr_del(t, 6, old.realm, old.v6, old.v6_len);
	if (old.realm != 0) {
		if (old.has_v4)
			realm_unref(s, old.realm);
		if (old.has_v6)
			realm_unref(s, old.realm);
	}
	/* no worker holds idx after this: reuse of tbl8 groups, record and counters is safe */
	sky_rcu_sync();
	__atomic_store_n(&t->rec[idx].w, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->rec[idx].realm, 0, __ATOMIC_RELAXED);
	counters_zero(s, idx);
	memset(&s->info[idx], 0, sizeof(s->info[idx]));
	idmap_del(&s->map, id);
	s->free_idx[s->n_free++] = idx;
	s->n_subs--;
	subs_notify(s, SKY_SUBS_EV_SUB_DEL, idx, &old);
	return 0;
}

static int
same_addr(const struct sky_sub_info *a, const struct sky_sub_info *b, int fam)
{
	if (fam == 4)
		return a->has_v4 == b->has_v4 &&
		       (!a->has_v4 || (a->realm == b->realm && a->v4_len == b->v4_len &&
				       memcmp(a->v4, b->v4, 4) == 0));
	return a->has_v6 == b->has_v6 &&
	       (!a->has_v6 ||
		(a->realm == b->realm && a->v6_len == b->v6_len && memcmp(a->v6, b->v6, 16) == 0));
}

int
subs_op_set(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	uint32_t idx = ni->id != 0 ? idmap_get(&s->map, ni->id) : SKY_SUB_NONE;
	struct sky_sub_info old, in = *ni;
	int ch4, ch6, rc = 0;

	if (idx == SKY_SUB_NONE)
		return subs_fail(err, errlen, "no subscriber with id %u", ni->id);
	if (check_model(s, ni, err, errlen) < 0 || check_addrs(s, ni, idx, err, errlen) < 0)
		return -1;
	if (ensure_lpmr(s, ni->realm, err, errlen) < 0)
		return -1;
	old = s->info[idx];
	in.idx = idx;
	ch4 = !same_addr(&old, &in, 4);
	ch6 = !same_addr(&old, &in, 6);
	/* 1. new addresses first (undone if the second cannot be added) */
	if (ch4 && in.has_v4)
		rc = addr_add(t, 4, in.realm, in.v4, in.v4_len, idx);
	if (rc == 0 && ch6 && in.has_v6) {
		rc = addr_add(t, 6, in.realm, in.v6, in.v6_len, idx);
		if (rc < 0 && ch4 && in.has_v4) {
			addr_del(t, 4, in.realm, in.v4, in.v4_len);
			sky_rcu_sync();
		}
	}
	if (rc < 0)
		return subs_fail(err, errlen, "%s", lpm_err(rc));
	/* 2. the record: one atomic store */
	__atomic_store_n(&t->rec[idx].realm, in.realm, __ATOMIC_RELAXED);
	__atomic_store_n(&t->rec[idx].w, sky_sub_rec_word(in.id, in.country, in.plan, in.beam),
			 __ATOMIC_RELEASE);
	/* 3. old addresses out */
	if (in.realm != 0)
		s->realm_refs[in.realm] += (ch4 && in.has_v4) + (ch6 && in.has_v6);
	if (ch4 && old.has_v4) {
		addr_del(t, 4, old.realm, old.v4, old.v4_len);
		realm_unref(s, old.realm);
	}
	if (ch6 && old.has_v6) {
		addr_del(t, 6, old.realm, old.v6, old.v6_len);
		realm_unref(s, old.realm);
	}
	if ((ch4 && old.has_v4) || (ch6 && old.has_v6))
		sky_rcu_sync();
	s->info[idx] = in;
	subs_notify(s, SKY_SUBS_EV_SUB_SET, idx, &s->info[idx]);
	return 0;
}

int
subs_op_load(struct sky_subs *s, const char *path, char *err, size_t errlen)
{
	struct sky_subs_rows rows = {0};
	uint32_t need[3], *row_idx = NULL, next_free = 0, n_reuse = 0;
	uint8_t *used = NULL;
	uint32_t *reuse = NULL;
	struct subs_tables *nt, *old;
	struct subs_state cs;
	uint32_t *zero = NULL, n_zero = 0;
	struct sky_subs_csv_names nm;

	subs_names(s, &nm);
	if (sky_subs_rows_load(&nm, path, &rows, need, err, errlen) < 0)
		return -1;
	if (rows.n > s->capacity) {
		subs_fail(err, errlen, "%s: %zu subscribers exceed capacity %u", path, rows.n,
			  s->capacity);
		goto fail;
	}
	row_idx = malloc((rows.n + 1) * sizeof(uint32_t));
	used = calloc(s->capacity, 1);
	reuse = malloc((size_t)s->capacity * sizeof(uint32_t));
	zero = malloc((size_t)s->capacity * sizeof(uint32_t));
	if (row_idx == NULL || used == NULL || reuse == NULL || zero == NULL) {
		subs_fail(err, errlen, "out of memory");
		goto fail;
	}
	/* ids that stay keep their index (counters, shaper state); new ids take indexes free
	 * in the old table first, then those of removed ids */
	for (size_t i = 0; i < rows.n; i++) {
		uint32_t idx = idmap_get(&s->map, rows.r[i].sub.id);

		row_idx[i] = idx;
		if (idx != SKY_SUB_NONE)
			used[idx] = 1;
	}
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && !used[i])
			reuse[n_reuse++] = i;
	for (size_t i = 0, r = 0; i < rows.n; i++) {
		if (row_idx[i] != SKY_SUB_NONE)
			continue;
		while (next_free < s->capacity && (used[next_free] || s->info[next_free].id != 0))
			next_free++;
		if (next_free < s->capacity) {
			row_idx[i] = next_free;
			used[next_free] = 1;
		} else {
			row_idx[i] = reuse[r++];
		}
	}
	nt = subs_tables_create(s, &rows, row_idx, need, err, errlen);
	if (nt == NULL)
		goto fail;
	if (subs_state_build(s, &rows, row_idx, &cs) < 0) {
		subs_tables_free(nt);
		subs_fail(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && cs.info[i].id != s->info[i].id)
			zero[n_zero++] = i;
	old = s->tab;
	__atomic_store_n(&s->tab, nt, __ATOMIC_RELEASE);
	sky_rcu_sync();
	subs_tables_free(old);
	for (uint32_t i = 0; i < n_zero; i++)
		counters_zero(s, zero[i]);
	subs_state_install(s, &cs, (uint32_t)rows.n);
	snprintf(s->csv_path, sizeof(s->csv_path), "%s", path);
	free(row_idx);
	free(used);
	free(reuse);
	free(zero);
	sky_subs_rows_free(&rows);
	subs_notify(s, SKY_SUBS_EV_RELOAD, 0, NULL);
	return 0;
fail:
	free(row_idx);
	free(used);
	free(reuse);
	free(zero);
	sky_subs_rows_free(&rows);
	return -1;
}
