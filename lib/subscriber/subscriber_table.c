/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The subscriber table: the lookup hash and records (see subscriber_priv.h), the id map,
 * the free list, the per-subscriber counters, and the changes that keep them in step
 * (subscriber add, del, set, load), each validated whole before it is applied
 * reader-safely. Control path only; the data path that reads the tables is
 * subscriber_dp.c.
 *
 * Memory per subscriber slot (capacity): a 32-byte record (keys, the word the data path
 * copies, zone and quota state), about 12 bytes of hash buckets (2 keys per slot, buckets
 * at most 7/8 full),
 * per worker 32 * classes + 32 bytes of counters (160 B with 4 classes). bench_subscriber
 * prints the measured figure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
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

/* ------------------------------------------------------------------ memory */

/* the big arrays the data path reads at random (buckets, records, counters) sit on 2 MB
 * pages: sky_big_zalloc (lib/core/mem.c) */

/* ------------------------------------------------------------------ the hash */

/* a key: family, realm, prefix length, masked address (host order), its hash */
struct hkey {
	unsigned int fam, realm, len;
	uint64_t a[2];
	uint32_t h;
};

static void
hkey_make(struct hkey *k, uint8_t fam, uint16_t realm, const uint8_t *addr, uint8_t len)
{
	k->fam = fam;
	k->realm = realm;
	k->len = len;
	subs_addr_load(fam, addr, k->a);
	subs_mask(k->a, len);
	k->h = subs_hash(fam, realm, len, k->a);
}

static void
len_ref(struct subs_tables *t, const struct hkey *k, int delta)
{
	unsigned int kc = subs_kc(k->fam, k->realm);
	uint32_t *r = &t->len_refs[kc][k->len];
	uint64_t bit = 1ULL << (k->len & 63);

	if (delta > 0 && (*r)++ == 0)
		__atomic_fetch_or(&t->len_bm[kc][k->len >> 6], bit, __ATOMIC_RELEASE);
	if (delta < 0 && --(*r) == 0)
		__atomic_fetch_and(&t->len_bm[kc][k->len >> 6], ~bit, __ATOMIC_RELEASE);
}

/* insert key k of subscriber idx (its record already holds k); 0 or -ENOSPC. Readers:
 * the chain's ovf counts go up first, then the slot appears, then the length's bit. */
static int
hash_add(struct subs_tables *t, const struct hkey *k, uint32_t idx)
{
	uint32_t home = subs_bucket_of(t, k->h), b = home;

	if (t->n_keys >= t->max_keys)
		return -ENOSPC;
	for (uint32_t n = 0; n < t->nb; n++) {
		struct subs_bkt *bk = &t->bkt[b];

		for (unsigned int i = 0; i < SUBS_BKT_SLOTS; i++) {
			if (bk->sig[i] != 0 || bk->idx[i] != 0)
				continue;
			for (uint32_t c = home; c != b; c = c + 1 == t->nb ? 0 : c + 1)
				__atomic_store_n(&t->bkt[c].ovf, t->bkt[c].ovf + 1,
						 __ATOMIC_RELEASE);
			/* the idx before the signature that makes a reader look at it */
			__atomic_store_n(&bk->idx[i], idx + 1, __ATOMIC_RELEASE);
			__atomic_store_n(&bk->sig[i], subs_sig_of(k->h), __ATOMIC_RELEASE);
			t->n_keys++;
			len_ref(t, k, 1);
			return 0;
		}
		b = b + 1 == t->nb ? 0 : b + 1;
	}
	return -ENOSPC;
}

/* remove key k of subscriber idx, which its record must still hold (the slot is found by
 * checking the record, as a reader would) */
static void
hash_del(struct subs_tables *t, const struct hkey *k, uint32_t idx)
{
	uint32_t home = subs_bucket_of(t, k->h), b = home;
	uint8_t sig = subs_sig_of(k->h);

	for (uint32_t n = 0; n < t->nb; n++) {
		struct subs_bkt *bk = &t->bkt[b];

		for (unsigned int i = 0; i < SUBS_BKT_SLOTS; i++) {
			if (bk->sig[i] != sig || bk->idx[i] != idx + 1 ||
			    !subs_rec_has(&t->rec[idx], k->fam, k->realm, k->len, k->a))
				continue;
			__atomic_store_n(&bk->sig[i], 0, __ATOMIC_RELEASE);
			__atomic_store_n(&bk->idx[i], 0, __ATOMIC_RELEASE);
			for (uint32_t c = home; c != b; c = c + 1 == t->nb ? 0 : c + 1)
				__atomic_store_n(&t->bkt[c].ovf, t->bkt[c].ovf - 1,
						 __ATOMIC_RELEASE);
			t->n_keys--;
			len_ref(t, k, -1);
			return;
		}
		if (bk->ovf == 0)
			break;
		b = b + 1 == t->nb ? 0 : b + 1;
	}
}

/* ------------------------------------------------------------------ records */

/* the record's key word for a subscriber's addresses */
static uint64_t
rec_key_word(const struct sky_sub_info *in, uint64_t gen)
{
	uint64_t k = (uint64_t)(in->realm & 0xfff) << 48 | gen;

	if (in->has_v4) {
		uint64_t a[2];

		subs_addr_load(4, in->v4, a);
		subs_mask(a, in->v4_len);
		k |= a[0] >> 32 | (uint64_t)in->v4_len << 32 | SUBS_K_HAS4;
	}
	if (in->has_v6)
		k |= (uint64_t)in->v6_len << 40 | SUBS_K_HAS6;
	return k;
}

/* write a record's keys (and realm); readers see the old keys or the new ones: the IPv6
 * words change only while the key word says "no IPv6" under a new generation */
static void
rec_set_keys(struct sky_sub_rec *r, const struct sky_sub_info *in)
{
	uint64_t old = r->k, gen = old & (3ULL << 62), q = old & SUBS_K_QUOTA, v6[2] = {0, 0};

	if (in->has_v6) {
		subs_addr_load(6, in->v6, v6);
		subs_mask(v6, in->v6_len);
	}
	if (r->v6[0] != v6[0] || r->v6[1] != v6[1]) {
		gen += SUBS_K_GEN1;
		__atomic_store_n(&r->k, (old & ~SUBS_K_HAS6 & ~(3ULL << 62)) | (gen & (3ULL << 62)),
				 __ATOMIC_RELEASE);
		__atomic_store_n(&r->v6[0], v6[0], __ATOMIC_RELAXED);
		__atomic_store_n(&r->v6[1], v6[1], __ATOMIC_RELAXED);
		gen += SUBS_K_GEN1;
	}
	__atomic_store_n(&r->k, rec_key_word(in, gen & (3ULL << 62)) | q, __ATOMIC_RELEASE);
}

/* a record's quota state: 2 bits of its key word, one store (the control thread is the one
 * writer of the records); a reader sees the old state or the new one */
static void
rec_set_quota(struct sky_sub_rec *r, uint8_t state)
{
	uint64_t k = __atomic_load_n(&r->k, __ATOMIC_RELAXED);

	__atomic_store_n(&r->k, (k & ~SUBS_K_QUOTA) | (uint64_t)state << SUBS_K_QUOTA_SHIFT,
			 __ATOMIC_RELEASE);
}

/* add / remove a subscriber's keys of family fam (4, 6, or 0 for both) */
static int
keys_add(struct subs_tables *t, const struct sky_sub_info *in, uint32_t idx, int fam)
{
	struct hkey k;
	int rc = 0;

	if (in->has_v4 && fam != 6) {
		hkey_make(&k, 4, in->realm, in->v4, in->v4_len);
		rc = hash_add(t, &k, idx);
	}
	if (rc == 0 && in->has_v6 && fam != 4) {
		hkey_make(&k, 6, in->realm, in->v6, in->v6_len);
		rc = hash_add(t, &k, idx);
		if (rc < 0 && in->has_v4 && fam != 6) {
			hkey_make(&k, 4, in->realm, in->v4, in->v4_len);
			hash_del(t, &k, idx);
		}
	}
	if (rc == 0 && in->realm != 0)
		__atomic_fetch_or(&t->realm_bm[in->realm >> 6], 1ULL << (in->realm & 63),
				  __ATOMIC_RELEASE);
	return rc;
}

static void
keys_del(struct subs_tables *t, const struct sky_sub_info *in, uint32_t idx, int fam)
{
	struct hkey k;

	if (in->has_v4 && fam != 6) {
		hkey_make(&k, 4, in->realm, in->v4, in->v4_len);
		hash_del(t, &k, idx);
	}
	if (in->has_v6 && fam != 4) {
		hkey_make(&k, 6, in->realm, in->v6, in->v6_len);
		hash_del(t, &k, idx);
	}
}

void
subs_tables_free(struct subs_tables *t)
{
	if (t == NULL)
		return;
	sky_big_free(t->bkt);
	sky_big_free(t->rec);
	rte_free(t);
}

/* owner idx of exactly this (realm, prefix), or SKY_SUB_NONE */
static uint32_t
addr_owner(const struct subs_tables *t, uint8_t fam, uint16_t realm, const uint8_t *a, uint8_t len)
{
	struct hkey k;

	hkey_make(&k, fam, realm, a, len);
	return subs_probe(t, k.fam, k.realm, k.len, k.a, k.h);
}

static const char *
hash_err(int rc)
{
	return rc == -ENOSPC ? "lookup table full" : strerror(-rc);
}

/* buckets for max_keys keys at most 7/8 full (at 1M dual-stack subscribers in the default
 * capacity, 1.25M, 0.7 full: a hit is in its home bucket but for a few percent) */
static uint32_t
buckets_for(uint32_t max_keys)
{
	uint64_t nb = ((uint64_t)max_keys * 8 / 7 + SUBS_BKT_SLOTS - 1) / SUBS_BKT_SLOTS;

	return (uint32_t)(nb < 64 ? 64 : nb);
}

struct subs_tables *
subs_tables_create(struct sky_subs *s, const struct sky_subs_rows *rows, const uint32_t *row_idx,
		   const uint32_t need[3], char *err, size_t errlen)
{
	struct subs_tables *t;

	(void)need; /* rte_lpm6's tbl8 counts: the hash is sized by capacity alone */
	t = rte_zmalloc("sky_subs_tab", sizeof(*t), RTE_CACHE_LINE_SIZE);
	if (t == NULL)
		goto nomem;
	t->max_keys = 2 * s->capacity + SUBS_KEY_SPARE;
	t->nb = buckets_for(t->max_keys);
	t->bkt = sky_big_zalloc("sky_subs_bkt", (size_t)t->nb * sizeof(*t->bkt));
	t->rec = sky_big_zalloc("sky_subs_rec", (size_t)s->capacity * sizeof(*t->rec));
	if (t->bkt == NULL || t->rec == NULL)
		goto nomem;
	for (size_t i = 0; i < rows->n; i++) {
		const struct sky_sub_info *r = &rows->r[i].sub;
		uint32_t idx = row_idx != NULL ? row_idx[i] : (uint32_t)i;
		int rc;

		if (sky_should_stop()) { /* SIGTERM: give up, nothing was applied */
			subs_fail(err, errlen, "stopped by shutdown");
			subs_tables_free(t);
			return NULL;
		}
		rec_set_keys(&t->rec[idx], r);
		t->rec[idx].w = sky_sub_rec_word(r->id, r->country, r->plan, r->beam, r->zone);
		rc = keys_add(t, r, idx, 0);
		if (rc < 0) {
			subs_fail(err, errlen, "line %u: id %u: %s", rows->r[i].line, r->id,
				  hash_err(rc));
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

/* The quota state: the control thread (the one writer of the id map and the tables) looks
 * the id up and stores one byte; no lock, so a subscriber listener, which runs inside a
 * change's lock, may call it too. */
int
sky_subs_set_quota_state(struct sky_subs *s, uint32_t sub_id, uint8_t state)
{
	uint32_t idx;

	if (state >= SKY_QUOTA_MAX)
		return -EINVAL;
	idx = sub_id != 0 ? idmap_get(&s->map, sub_id) : SKY_SUB_NONE;
	if (idx == SKY_SUB_NONE)
		return -ENOENT;
	rec_set_quota(&s->tab->rec[idx], state);
	return 0;
}

int
sky_subs_quota_state(const struct sky_subs *s, uint32_t sub_id)
{
	uint32_t idx = sub_id != 0 ? idmap_get(&s->map, sub_id) : SKY_SUB_NONE;

	if (idx == SKY_SUB_NONE)
		return -ENOENT;
	return subs_k_quota(__atomic_load_n(&s->tab->rec[idx].k, __ATOMIC_RELAXED));
}

const char *
sky_quota_state_name(unsigned int state)
{
	static const char *const names[SKY_QUOTA_MAX] = {"none", "under", "over", "throttled"};

	return state < SKY_QUOTA_MAX ? names[state] : "?";
}

void
sky_subs_foreach(const struct sky_subs *s, int (*fn)(void *arg, const struct sky_sub_info *),
		 void *arg)
{
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && fn(arg, &s->info[i]) != 0)
			return;
}

int
subs_counters_alloc(struct sky_subs *s)
{
	size_t bytes =
		(size_t)s->capacity * (4 * s->n_classes + SKY_SUBS_DG_MAX) * sizeof(uint64_t);

	s->ws = rte_zmalloc("sky_subs_ws", s->n_ctr_workers * sizeof(*s->ws), RTE_CACHE_LINE_SIZE);
	if (s->ws == NULL)
		return -ENOMEM;
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		s->ctr[w] = sky_big_zalloc("sky_subs_ctr", bytes);
		if (s->ctr[w] == NULL)
			return -ENOMEM;
	}
	return 0;
}

void
subs_counters_free(struct sky_subs *s)
{
	for (unsigned int w = 0; w < SKY_MAX_WORKERS; w++) {
		sky_big_free(s->ctr[w]);
		s->ctr[w] = NULL;
	}
	rte_free(s->ws);
	s->ws = NULL;
}

void
subs_sum_counters(const struct sky_subs *s, uint32_t idx, uint64_t *out)
{
	const unsigned int nc = s->n_classes;

	memset(out, 0, s->stride * sizeof(uint64_t));
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		const uint64_t *d = subs_ctr_drops(s, w, idx);

		for (unsigned int dir = 0; dir < 2; dir++) {
			const uint64_t *c = subs_ctr_pairs(s, w, idx, dir);

			for (unsigned int k = 0; k < nc; k++) {
				out[dir * nc + k] += __atomic_load_n(&c[2 * k], __ATOMIC_RELAXED);
				out[2 * nc + dir * nc + k] +=
					__atomic_load_n(&c[2 * k + 1], __ATOMIC_RELAXED);
			}
		}
		for (unsigned int g = 0; g < SKY_SUBS_DG_MAX; g++)
			out[4 * nc + g] += __atomic_load_n(&d[g], __ATOMIC_RELAXED);
	}
}

static void
counters_zero(struct sky_subs *s, uint32_t idx)
{
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		memset(subs_ctr_pairs(s, w, idx, 0), 0, 4 * s->n_classes * sizeof(uint64_t));
		memset(subs_ctr_drops(s, w, idx), 0, SKY_SUBS_DG_MAX * sizeof(uint64_t));
	}
}

uint32_t
subs_find(const struct sky_subs *s, uint8_t fam, const uint8_t *addr, uint16_t vid)
{
	const struct subs_tables *t = s->tab;
	uint32_t idx = subs_lookup1(t, fam, addr, vid);

	return idx != SKY_SUB_NONE && t->rec[idx].w != 0 ? idx : SKY_SUB_NONE;
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
	if (!subs_cc_ok(ni->country))
		return subs_fail(err, errlen, "country 0x%04x is not two letters A-Z", ni->country);
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

/* the keys a subscriber's realm accounts for */
static void
realm_ref(struct sky_subs *s, const struct sky_sub_info *in, int fam)
{
	if (in->realm != 0)
		s->realm_refs[in->realm] += (in->has_v4 && fam != 6) + (in->has_v6 && fam != 4);
}

static const struct sky_sub_info no_sub;

int
subs_op_add(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	struct sky_sub_info in = *ni;
	uint32_t idx;
	int rc;

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
	idx = s->free_idx[s->n_free - 1];
	in.idx = idx;
	/* the record first (keys, quota state, then the word), then the keys that lead to it */
	rec_set_keys(&t->rec[idx], &in);
	rec_set_quota(&t->rec[idx], SKY_QUOTA_NONE);
	__atomic_store_n(&t->rec[idx].w,
			 sky_sub_rec_word(in.id, in.country, in.plan, in.beam, in.zone),
			 __ATOMIC_RELEASE);
	rc = keys_add(t, &in, idx, 0);
	if (rc < 0) {
		__atomic_store_n(&t->rec[idx].w, 0, __ATOMIC_RELEASE);
		rec_set_keys(&t->rec[idx], &no_sub);
		return subs_fail(err, errlen, "%s", hash_err(rc));
	}
	s->n_free--;
	s->info[idx] = in;
	idmap_put(&s->map, in.id, idx);
	s->n_subs++;
	realm_ref(s, &in, 0);
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
	keys_del(t, &old, idx, 0);
	if (old.realm != 0) {
		if (old.has_v4)
			realm_unref(s, old.realm);
		if (old.has_v6)
			realm_unref(s, old.realm);
	}
	/* no worker holds idx after this: reuse of slots, record and counters is safe */
	sky_rcu_sync();
	__atomic_store_n(&t->rec[idx].w, 0, __ATOMIC_RELEASE);
	rec_set_keys(&t->rec[idx], &no_sub);
	rec_set_quota(&t->rec[idx], SKY_QUOTA_NONE);
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

/* the keys of the families that change, from the record's present keys to in's */
static int
set_keys(struct subs_tables *t, uint32_t idx, const struct sky_sub_info *old,
	 const struct sky_sub_info *in, int ch4, int ch6)
{
	int rc = 0;

	/* old keys out while the record still holds them (a reader finds the old key or
	 * nothing, then the new key: a changed address is unknown for the few microseconds
	 * in between) */
	if (ch4)
		keys_del(t, old, idx, 4);
	if (ch6)
		keys_del(t, old, idx, 6);
	rec_set_keys(&t->rec[idx], in);
	if (ch4)
		rc = keys_add(t, in, idx, 4);
	if (rc == 0 && ch6) {
		rc = keys_add(t, in, idx, 6);
		if (rc < 0 && ch4)
			keys_del(t, in, idx, 4);
	}
	return rc;
}

int
subs_op_set(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	uint32_t idx = ni->id != 0 ? idmap_get(&s->map, ni->id) : SKY_SUB_NONE;
	struct sky_sub_info old, in = *ni;
	int ch4, ch6, rc;

	if (idx == SKY_SUB_NONE)
		return subs_fail(err, errlen, "no subscriber with id %u", ni->id);
	if (check_model(s, ni, err, errlen) < 0 || check_addrs(s, ni, idx, err, errlen) < 0)
		return -1;
	old = s->info[idx];
	in.idx = idx;
	ch4 = !same_addr(&old, &in, 4);
	ch6 = !same_addr(&old, &in, 6);
	if (ch4 || ch6) {
		rc = set_keys(t, idx, &old, &in, ch4, ch6);
		if (rc < 0) { /* the old keys back (they fitted before) */
			set_keys(t, idx, &in, &old, 0, 0);
			if (ch4)
				keys_add(t, &old, idx, 4);
			if (ch6)
				keys_add(t, &old, idx, 6);
			return subs_fail(err, errlen, "%s", hash_err(rc));
		}
	}
	/* the record's word (id, country, plan, beam, zone): one atomic store */
	__atomic_store_n(&t->rec[idx].w,
			 sky_sub_rec_word(in.id, in.country, in.plan, in.beam, in.zone),
			 __ATOMIC_RELEASE);
	if (ch4 || ch6)
		realm_ref(s, &in, ch4 && ch6 ? 0 : ch4 ? 4 : 6);
	if (ch4 && old.has_v4)
		realm_unref(s, old.realm);
	if (ch6 && old.has_v6)
		realm_unref(s, old.realm);
	/* a reader may still hold a slot of an old key: the next change of this record's
	 * IPv6 key (its generation) and the reuse of freed slots wait for it */
	if (ch4 || ch6)
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
	for (uint32_t i = 0; i < s->capacity; i++) {
		if (s->info[i].id != 0 && cs.info[i].id != s->info[i].id)
			zero[n_zero++] = i;
		else if (s->info[i].id != 0) /* the id stays at its index: so does its quota */
			rec_set_quota(&nt->rec[i], subs_k_quota(__atomic_load_n(&s->tab->rec[i].k,
										__ATOMIC_RELAXED)));
	}
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

int
sky_subs_set_plan_override(struct sky_subs *s, uint32_t idx, int plan)
{
	struct subs_tables *t = s->tab;
	uint64_t w;

	if (idx >= s->capacity || s->info[idx].id == 0)
		return -ENOENT;
	if (plan >= (int)s->n_plans)
		return -EINVAL;
	if (plan < 0)
		plan = s->info[idx].plan;
	w = __atomic_load_n(&t->rec[idx].w, __ATOMIC_RELAXED);
	if (w == 0)
		return -ENOENT;
	w = subs_w_with_plan(w, (unsigned int)plan);
	__atomic_store_n(&t->rec[idx].w, w, __ATOMIC_RELEASE);
	return 0;
}

void
sky_subs_bytes(const struct sky_subs *s, uint32_t idx, uint64_t *out)
{
	uint64_t tmp[4 * SKY_MAX_CLASSES + SKY_SUBS_DG_MAX];

	subs_sum_counters(s, idx, tmp);
	memcpy(out, tmp + 2 * s->n_classes, 2 * s->n_classes * sizeof(uint64_t));
}
