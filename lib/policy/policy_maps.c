/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy maps in hugepage memory, their lookup helpers (called from JIT-compiled
 * programs), and their control-path updates in readable forms.
 *
 * A program never holds a map's address: its map symbols are relocated to a RAW handle
 * (generation | registry slot) that the helper checks against a registry before use, so
 * a bogus handle yields NULL, never a dereference.
 *
 * Reader safety (updates while workers run, single writer = control plane):
 *   direct/array  value written in place (one atomic store for values of 1/2/4/8 bytes;
 *                 larger values may be read half-updated), presence byte set after it;
 *   small hash    (3..8-byte keys) open addressing: a slot's key and value are written
 *                 before its state turns FULL; a deleted slot turns TOMB and is reused
 *                 only after sky_rcu_sync(); too many tombstones: rebuilt and swapped;
 *   hash          (longer keys) rte_hash in lock-free reader mode; a deleted key's slot
 *                 is freed after sky_rcu_sync();
 *   lpm           one hash table of (prefix, length) probed per length present, longest
 *                 first; an add fills an entry before marking it used and setting its
 *                 length bit; a delete (or a full table) rebuilds it aside, publishes it
 *                 by one pointer and frees the old one after sky_rcu_sync(); values live
 *                 in stable slots.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "skygate/config.h"
#include "skygate/meta.h"
#include "skygate/runtime.h"

#include "policy_maps.h"

#define HANDLE_MAGIC 0x5359000000000000ULL /* "SY" */

static struct sky_pmap *pmap_reg[PMAP_REG_MAX];
static uint32_t pmap_gen;

/* ------------------------------------------------------------------ LPM tables */

struct lpm_ent {
	uint8_t addr[16];
	uint32_t slot;
	uint8_t len;
	uint8_t used;
};

struct lpm_snap {
	uint32_t mask;	      /* table size - 1 (power of two) */
	uint32_t n_used;      /* control path: entries in the table */
	uint64_t len_bits[3]; /* bit l: some prefix of length l (0..128) is in the table */
	struct lpm_ent tab[];
};

static inline void
lpm_mask(const uint8_t *in, unsigned int len, uint8_t *out)
{
	unsigned int full = len >> 3, i;

	for (i = 0; i < 16; i++)
		out[i] = i < full ? in[i] : 0;
	if (full < 16 && (len & 7) != 0)
		out[full] = in[full] & (uint8_t)(0xff << (8 - (len & 7)));
}

static inline uint32_t
lpm_hash(const uint8_t *a, unsigned int len)
{
	uint64_t w0, w1;

	memcpy(&w0, a, 8);
	memcpy(&w1, a + 8, 8);
	return (uint32_t)(((w0 * 0x9E3779B97F4A7C15ULL) ^ (w1 * 0xC2B2AE3D27D4EB4FULL) ^
			   ((uint64_t)len * 0x165667B19E3779F9ULL)) >>
			  32);
}

/* the entry of exactly this prefix (masked address, length), or NULL */
static inline const struct lpm_ent *
lpm_find(const struct lpm_snap *s, const uint8_t *masked, unsigned int len)
{
	uint32_t i = lpm_hash(masked, len) & s->mask;

	for (uint32_t n = 0; n <= s->mask; n++, i = (i + 1) & s->mask) {
		const struct lpm_ent *e = &s->tab[i];

		/* an entry is filled before it is marked used (control path, release) */
		if (!__atomic_load_n(&e->used, __ATOMIC_ACQUIRE))
			return NULL;
		if (e->len == len && memcmp(e->addr, masked, 16) == 0)
			return e;
	}
	return NULL;
}

/* longest prefix first: the lengths present, from 128 down */
static const struct lpm_ent *
lpm_lookup(const struct lpm_snap *s, const uint8_t *addr, unsigned int maxlen)
{
	uint8_t m[16];

	for (int w = 2; w >= 0; w--) {
		uint64_t bits = __atomic_load_n(&s->len_bits[w], __ATOMIC_ACQUIRE);

		while (bits != 0) {
			unsigned int b = 63 - (unsigned int)__builtin_clzll(bits);
			unsigned int len = (unsigned int)w * 64 + b;
			const struct lpm_ent *e;

			bits &= ~(1ULL << b);
			if (len > maxlen)
				continue;
			lpm_mask(addr, len, m);
			e = lpm_find(s, m, len);
			if (e != NULL)
				return e;
		}
	}
	return NULL;
}

/* add a rule in place (control path): entry first, then used, then its length bit */
static void
lpm_insert(struct lpm_snap *s, const uint8_t *addr, unsigned int len, uint32_t slot)
{
	uint32_t h = lpm_hash(addr, len) & s->mask;

	while (s->tab[h].used)
		h = (h + 1) & s->mask;
	memcpy(s->tab[h].addr, addr, 16);
	s->tab[h].len = (uint8_t)len;
	s->tab[h].slot = slot;
	__atomic_store_n(&s->tab[h].used, 1, __ATOMIC_RELEASE);
	__atomic_fetch_or(&s->len_bits[len >> 6], 1ULL << (len & 63), __ATOMIC_RELEASE);
	s->n_used++;
}

/* a table for n rules with room to grow to at least `room` before the next rebuild */
static struct lpm_snap *
lpm_build(const struct lpm_rule *rules, uint32_t n, uint32_t room)
{
	uint32_t size = 8;
	struct lpm_snap *s;

	while (size < 2 * RTE_MAX(n, room))
		size <<= 1;
	s = rte_zmalloc("sky_pmap_lpm", sizeof(*s) + size * sizeof(struct lpm_ent),
			RTE_CACHE_LINE_SIZE);
	if (s == NULL)
		return NULL;
	s->mask = size - 1;
	for (uint32_t i = 0; i < n; i++)
		lpm_insert(s, rules[i].addr, rules[i].len, rules[i].slot);
	return s;
}

/* ------------------------------------------------------------------ helpers (data path) */

/*
 * librte_bpf's x86 JIT calls helpers with the stack 8 bytes off the 16-byte alignment the
 * ABI promises, so a helper that keeps SSE data on its stack or calls into a library
 * (rte_hash) realigns it on entry. The direct and array helpers use no stack.
 */
#define HELPER_REALIGN __attribute__((force_align_arg_pointer))

static inline const struct sky_pmap *
handle_map(uint64_t handle)
{
	const struct sky_pmap *m =
		__atomic_load_n(&pmap_reg[handle & (PMAP_REG_MAX - 1)], __ATOMIC_RELAXED);

	if (unlikely(m == NULL || m->handle != handle))
		return NULL;
	return m;
}

static uint64_t
h_direct1(uint64_t handle, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	const struct sky_pmap *m = handle_map(handle);
	uint8_t k;

	if (m == NULL)
		return 0;
	k = *(const uint8_t *)(uintptr_t)key;
	if (m->present[k] == 0)
		return 0;
	return (uintptr_t)(m->values + (size_t)k * m->stride);
}

static uint64_t
h_direct2(uint64_t handle, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	const struct sky_pmap *m = handle_map(handle);
	const uint8_t *present = (const uint8_t *)(m + 1);
	uint16_t k;

	if (m == NULL)
		return 0;
	memcpy(&k, (const void *)(uintptr_t)key, 2);
	if (present[k] == 0)
		return 0;
	return (uintptr_t)(present + 65536 + (size_t)k * m->stride);
}

static HELPER_REALIGN uint64_t
h_hash(uint64_t handle, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	const struct sky_pmap *m = handle_map(handle);
	int32_t pos;

	if (m == NULL)
		return 0;
	pos = rte_hash_lookup(m->h, (const void *)(uintptr_t)key);
	if (pos < 0)
		return 0;
	return (uintptr_t)(m->values + (size_t)pos * m->stride);
}

static uint64_t
h_array(uint64_t handle, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	const struct sky_pmap *m = handle_map(handle);
	uint32_t k;

	if (m == NULL)
		return 0;
	memcpy(&k, (const void *)(uintptr_t)key, 4);
	if (k >= m->max_entries)
		return 0;
	return (uintptr_t)(m->values + (size_t)k * m->stride);
}

static HELPER_REALIGN uint64_t
h_lpm(uint64_t handle, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	const struct sky_pmap *m = handle_map(handle);
	const struct lpm_snap *s;
	const struct lpm_ent *e;
	uint8_t addr[16] = {0};
	uint32_t plen;
	unsigned int alen;

	if (m == NULL)
		return 0;
	s = __atomic_load_n(&m->lpm, __ATOMIC_ACQUIRE);
	if (s == NULL)
		return 0;
	alen = m->kind == PMAP_LPM4 ? 4 : 16;
	memcpy(&plen, (const void *)(uintptr_t)key, 4);
	memcpy(addr, (const uint8_t *)(uintptr_t)key + 4, alen);
	if (plen > alen * 8)
		plen = alen * 8;
	e = lpm_lookup(s, addr, plen);
	if (e == NULL)
		return 0;
	return (uintptr_t)(m->values + (size_t)e->slot * m->stride);
}

/* ------------------------------------------------------------------ small-key hash */

enum { SLOT_EMPTY = 0, SLOT_FULL = 1, SLOT_TOMB = 2 };

struct small_slot {
	uint64_t key; /* the key's bytes, zero-padded */
	uint32_t state;
	uint32_t pad;
};

struct small_tab {
	uint64_t mask; /* slots - 1 */
	uint32_t stride;
	uint32_t pad;
	uint8_t *values; /* slot i's value at values + i * stride */
	struct small_slot slots[];
};

static inline uint64_t
small_key(const void *p, uint32_t size)
{
	uint64_t k = 0;

	switch (size) {
	case 4: {
		uint32_t v;

		memcpy(&v, p, 4);
		return v;
	}
	case 8:
		memcpy(&k, p, 8);
		return k;
	default:
		for (uint32_t i = 0; i < size; i++)
			k |= (uint64_t)((const uint8_t *)p)[i] << (8 * i);
		return k;
	}
}

static inline uint64_t
small_hash(uint64_t k)
{
	k *= 0x9E3779B97F4A7C15ULL;
	return k ^ (k >> 29);
}

/* slot of key k, or -1 (data path and control path) */
static inline int64_t
small_find(const struct small_tab *t, uint64_t k)
{
	uint64_t i = small_hash(k) & t->mask;

	for (uint64_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
		uint32_t st = __atomic_load_n(&t->slots[i].state, __ATOMIC_ACQUIRE);

		if (st == SLOT_EMPTY)
			return -1;
		if (st == SLOT_FULL && t->slots[i].key == k)
			return (int64_t)i;
	}
	return -1;
}

static struct small_tab *
small_alloc(uint32_t max_entries, uint32_t stride)
{
	uint64_t n = 16;
	struct small_tab *t;

	while (n < 2ULL * max_entries)
		n <<= 1;
	t = rte_zmalloc("sky_pmap_small", sizeof(*t) + n * sizeof(struct small_slot) + n * stride,
			RTE_CACHE_LINE_SIZE);
	if (t == NULL)
		return NULL;
	t->mask = n - 1;
	t->stride = stride;
	t->values = (uint8_t *)&t->slots[n];
	return t;
}

static uint64_t
h_small(uint64_t handle, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	const struct sky_pmap *m = handle_map(handle);
	const struct small_tab *t;
	int64_t i;

	if (m == NULL)
		return 0;
	t = __atomic_load_n(&m->sm, __ATOMIC_ACQUIRE);
	i = small_find(t, small_key((const void *)(uintptr_t)key, m->key_size));
	if (i < 0)
		return 0;
	return (uintptr_t)(t->values + (uint64_t)i * t->stride);
}

pmap_helper_fn
pmap_helper_for(const struct sky_pmap *m)
{
	switch (m->kind) {
	case PMAP_DIRECT:
		return m->key_size == 1 ? h_direct1 : h_direct2;
	case PMAP_SMALL:
		return h_small;
	case PMAP_HASH:
		return h_hash;
	case PMAP_ARRAY:
		return h_array;
	default:
		return h_lpm;
	}
}

/* ------------------------------------------------------------------ create / free */

const char *
pmap_type_name(uint32_t type)
{
	switch (type) {
	case SKY_MAP_HASH:
		return "hash";
	case SKY_MAP_ARRAY:
		return "array";
	case SKY_MAP_LPM:
		return "lpm";
	default:
		return "?";
	}
}

bool
pmap_spec_equal(const struct pmap_spec *a, const struct pmap_spec *b)
{
	return strcmp(a->name, b->name) == 0 && a->type == b->type && a->key_size == b->key_size &&
	       a->value_size == b->value_size && a->max_entries == b->max_entries;
}

/* a power of two: lookups index with a shift (and may be inlined, policy_rewrite.c) */
static uint32_t
stride_for(uint32_t value_size)
{
	uint32_t s = 1;

	while (s < value_size)
		s <<= 1;
	return s;
}

struct sky_pmap *
pmap_create(const struct pmap_spec *spec, char *err, size_t errlen)
{
	struct sky_pmap *m;
	size_t n_values;
	unsigned int idx;

	if (spec->key_size == 0 || spec->key_size > SKY_MAP_MAX_KEY || spec->value_size == 0 ||
	    spec->value_size > SKY_MAP_MAX_VALUE || spec->max_entries == 0 ||
	    spec->max_entries > SKY_MAP_MAX_ENTRIES) {
		snprintf(err, errlen,
			 "map %s: key size %u (1..%u), value size %u (1..%u), max_entries %u "
			 "(1..%u)",
			 spec->name, spec->key_size, SKY_MAP_MAX_KEY, spec->value_size,
			 SKY_MAP_MAX_VALUE, spec->max_entries, SKY_MAP_MAX_ENTRIES);
		return NULL;
	}
	for (idx = 0; idx < PMAP_REG_MAX; idx++)
		if (pmap_reg[idx] == NULL)
			break;
	if (idx == PMAP_REG_MAX) {
		snprintf(err, errlen, "map %s: too many maps (%u)", spec->name, PMAP_REG_MAX);
		return NULL;
	}
	if (spec->type == SKY_MAP_HASH && spec->key_size <= 2) {
		/* direct table: presence bytes and values follow the struct (one load less
		 * on the lookup: both are found from the map pointer) */
		size_t n_keys = (size_t)1 << (8 * spec->key_size);

		m = rte_zmalloc("sky_pmap",
				sizeof(*m) + n_keys + n_keys * stride_for(spec->value_size),
				RTE_CACHE_LINE_SIZE);
		if (m == NULL)
			goto nomem;
		m->present = (uint8_t *)(m + 1);
		m->values = m->present + n_keys;
	} else {
		m = rte_zmalloc("sky_pmap", sizeof(*m), RTE_CACHE_LINE_SIZE);
		if (m == NULL)
			goto nomem;
	}
	m->spec = *spec;
	m->key_size = spec->key_size;
	m->value_size = spec->value_size;
	m->max_entries = spec->max_entries;
	m->stride = stride_for(spec->value_size);
	m->reg_idx = idx;

	switch (spec->type) {
	case SKY_MAP_HASH:
		if (spec->key_size <= 2) {
			m->kind = PMAP_DIRECT;
			n_values = 0; /* allocated with the struct */
		} else if (spec->key_size <= 8) {
			m->kind = PMAP_SMALL;
			n_values = 0; /* in the table */
			m->sm = small_alloc(spec->max_entries, m->stride);
			if (m->sm == NULL)
				goto nomem;
		} else {
			struct rte_hash_parameters hp = {0};
			char hname[RTE_HASH_NAMESIZE];

			m->kind = PMAP_HASH;
			snprintf(hname, sizeof(hname), "skyp_%u_%u", idx, pmap_gen + 1);
			hp.name = hname;
			hp.entries = RTE_MAX(spec->max_entries, 16u);
			hp.key_len = spec->key_size;
			hp.hash_func = rte_hash_crc;
			hp.socket_id = SOCKET_ID_ANY;
			hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
			m->h = rte_hash_create(&hp);
			if (m->h == NULL) {
				snprintf(err, errlen, "map %s: rte_hash_create failed (%s)",
					 spec->name, rte_strerror(rte_errno));
				goto fail;
			}
			n_values = (size_t)rte_hash_max_key_id(m->h) + 1;
		}
		break;
	case SKY_MAP_ARRAY:
		if (spec->key_size != 4) {
			snprintf(err, errlen, "map %s: an array's key is uint32_t (got %u bytes)",
				 spec->name, spec->key_size);
			goto fail;
		}
		m->kind = PMAP_ARRAY;
		n_values = spec->max_entries;
		break;
	case SKY_MAP_LPM:
		if (spec->key_size == sizeof(struct sky_lpm4_key))
			m->kind = PMAP_LPM4;
		else if (spec->key_size == sizeof(struct sky_lpm6_key))
			m->kind = PMAP_LPM6;
		else {
			snprintf(err, errlen,
				 "map %s: an LPM key is struct sky_lpm4_key (8 bytes) or "
				 "sky_lpm6_key (20 bytes), got %u bytes",
				 spec->name, spec->key_size);
			goto fail;
		}
		n_values = spec->max_entries;
		m->free_slots = malloc(sizeof(uint32_t) * spec->max_entries);
		m->rules = malloc(sizeof(struct lpm_rule) * spec->max_entries);
		if (m->free_slots == NULL || m->rules == NULL)
			goto nomem;
		for (uint32_t i = 0; i < spec->max_entries; i++)
			m->free_slots[i] = spec->max_entries - 1 - i;
		m->n_free = spec->max_entries;
		m->lpm = lpm_build(NULL, 0, 8);
		if (m->lpm == NULL)
			goto nomem;
		break;
	default:
		snprintf(err, errlen, "map %s: type %u not supported (hash %u, array %u, lpm %u)",
			 spec->name, spec->type, SKY_MAP_HASH, SKY_MAP_ARRAY, SKY_MAP_LPM);
		goto fail;
	}
	if (m->kind != PMAP_DIRECT && m->kind != PMAP_SMALL) {
		m->values =
			rte_zmalloc("sky_pmap_values", n_values * m->stride, RTE_CACHE_LINE_SIZE);
		if (m->values == NULL)
			goto nomem;
	}
	pmap_gen++;
	m->handle = HANDLE_MAGIC | ((uint64_t)pmap_gen << 8) | idx;
	__atomic_store_n(&pmap_reg[idx], m, __ATOMIC_RELEASE);
	return m;
nomem:
	snprintf(err, errlen, "map %s: out of memory", spec->name);
fail:
	if (m != NULL) {
		m->handle = 0;
		pmap_free(m);
	}
	return NULL;
}

void
pmap_free(struct sky_pmap *m)
{
	if (m == NULL)
		return;
	if (m->handle != 0 && pmap_reg[m->reg_idx] == m)
		__atomic_store_n(&pmap_reg[m->reg_idx], NULL, __ATOMIC_RELEASE);
	rte_hash_free(m->h);
	rte_free(m->sm);
	rte_free(m->lpm);
	if (m->present == NULL) /* a direct table's values live in its block */
		rte_free(m->values);
	free(m->rules);
	free(m->free_slots);
	rte_free(m);
}

/* ------------------------------------------------------------------ updates */

static void
value_store(uint8_t *dst, const void *src, uint32_t size)
{
	switch (size) {
	case 1:
		__atomic_store_n(dst, *(const uint8_t *)src, __ATOMIC_RELAXED);
		break;
	case 2: {
		uint16_t v;

		memcpy(&v, src, 2);
		__atomic_store_n((uint16_t *)dst, v, __ATOMIC_RELAXED);
		break;
	}
	case 4: {
		uint32_t v;

		memcpy(&v, src, 4);
		__atomic_store_n((uint32_t *)dst, v, __ATOMIC_RELAXED);
		break;
	}
	case 8: {
		uint64_t v;

		memcpy(&v, src, 8);
		__atomic_store_n((uint64_t *)dst, v, __ATOMIC_RELAXED);
		break;
	}
	default:
		memcpy(dst, src, size);
	}
}

static int
lpm_key_decode(const struct sky_pmap *m, const void *key, uint8_t addr[16], unsigned int *len,
	       char *err, size_t errlen)
{
	unsigned int alen = m->kind == PMAP_LPM4 ? 4 : 16;
	uint32_t plen;
	uint8_t masked[16];

	memcpy(&plen, key, 4);
	if (plen > alen * 8) {
		snprintf(err, errlen, "prefix length %u > %u", plen, alen * 8);
		return -EINVAL;
	}
	memset(addr, 0, 16);
	memcpy(addr, (const uint8_t *)key + 4, alen);
	lpm_mask(addr, plen, masked);
	if (memcmp(masked, addr, 16) != 0) {
		snprintf(err, errlen, "prefix has bits set beyond its length /%u", plen);
		return -EINVAL;
	}
	*len = plen;
	return 0;
}

static int
lpm_publish(struct sky_pmap *m, char *err, size_t errlen)
{
	/* room to double before the next rebuild: adds are amortised O(1) */
	struct lpm_snap *s = lpm_build(m->rules, m->n_entries, 2 * m->n_entries), *old;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	old = m->lpm;
	__atomic_store_n(&m->lpm, s, __ATOMIC_RELEASE);
	sky_rcu_sync();
	rte_free(old);
	return 0;
}

/* a fresh table without tombstones, swapped in after the readers of the old one left */
static int
small_rebuild(struct sky_pmap *m, char *err, size_t errlen)
{
	struct small_tab *old = m->sm, *t = small_alloc(m->max_entries, m->stride);

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint64_t i = 0; i <= old->mask; i++) {
		uint64_t j;

		if (old->slots[i].state != SLOT_FULL)
			continue;
		j = small_hash(old->slots[i].key) & t->mask;
		while (t->slots[j].state != SLOT_EMPTY)
			j = (j + 1) & t->mask;
		t->slots[j].key = old->slots[i].key;
		t->slots[j].state = SLOT_FULL;
		memcpy(t->values + j * t->stride, old->values + i * old->stride, old->stride);
	}
	__atomic_store_n(&m->sm, t, __ATOMIC_RELEASE);
	sky_rcu_sync();
	rte_free(old);
	m->n_tombs = 0;
	m->n_rebuilds++;
	return 0;
}

static int
map_full(const struct sky_pmap *m, char *err, size_t errlen)
{
	snprintf(err, errlen, "map is full (%u entries)", m->max_entries);
	return -ENOSPC;
}

int
pmap_update(struct sky_pmap *m, const void *key, const void *value, char *err, size_t errlen)
{
	switch (m->kind) {
	case PMAP_DIRECT: {
		uint32_t k = 0;

		memcpy(&k, key, m->key_size);
		if (!m->present[k] && m->n_entries >= m->max_entries)
			return map_full(m, err, errlen);
		value_store(m->values + (size_t)k * m->stride, value, m->value_size);
		if (!m->present[k]) {
			__atomic_store_n(&m->present[k], 1, __ATOMIC_RELEASE);
			m->n_entries++;
		}
		return 0;
	}
	case PMAP_SMALL: {
		uint64_t k = small_key(key, m->key_size);
		struct small_tab *t = m->sm;
		int64_t i = small_find(t, k);

		if (i >= 0) {
			value_store(t->values + (uint64_t)i * t->stride, value, m->value_size);
			return 0;
		}
		if (m->n_entries >= m->max_entries)
			return map_full(m, err, errlen);
		if ((uint64_t)(m->n_entries + m->n_tombs + 1) * 4 > (t->mask + 1) * 3) {
			int rc = small_rebuild(m, err, errlen);

			if (rc != 0)
				return rc;
			t = m->sm;
		}
		/* the first free slot of the probe sequence (tombstones were synced) */
		i = (int64_t)(small_hash(k) & t->mask);
		while (t->slots[i].state == SLOT_FULL)
			i = (int64_t)(((uint64_t)i + 1) & t->mask);
		if (t->slots[i].state == SLOT_TOMB)
			m->n_tombs--;
		t->slots[i].key = k;
		value_store(t->values + (uint64_t)i * t->stride, value, m->value_size);
		__atomic_store_n(&t->slots[i].state, SLOT_FULL, __ATOMIC_RELEASE);
		m->n_entries++;
		return 0;
	}
	case PMAP_HASH: {
		int32_t pos = rte_hash_lookup(m->h, key);

		if (pos < 0) {
			if (m->n_entries >= m->max_entries)
				return map_full(m, err, errlen);
			/* a new key's slot was zeroed when freed: a reader may see the key
			 * with a zero value for an instant, never another key's value */
			pos = rte_hash_add_key(m->h, key);
			if (pos < 0) {
				snprintf(err, errlen, "rte_hash_add_key: %s", strerror(-pos));
				return pos;
			}
			m->n_entries++;
		}
		value_store(m->values + (size_t)pos * m->stride, value, m->value_size);
		return 0;
	}
	case PMAP_ARRAY: {
		uint32_t k;

		memcpy(&k, key, 4);
		if (k >= m->max_entries) {
			snprintf(err, errlen, "index %u out of range (max_entries %u)", k,
				 m->max_entries);
			return -ERANGE;
		}
		value_store(m->values + (size_t)k * m->stride, value, m->value_size);
		return 0;
	}
	default: {
		uint8_t addr[16];
		unsigned int len;
		struct lpm_rule *r;
		const struct lpm_ent *e;
		int rc = lpm_key_decode(m, key, addr, &len, err, errlen);

		if (rc != 0)
			return rc;
		e = lpm_find(m->lpm, addr, len);
		if (e != NULL) {
			value_store(m->values + (size_t)e->slot * m->stride, value, m->value_size);
			return 0;
		}
		if (m->n_free == 0)
			return map_full(m, err, errlen);
		r = &m->rules[m->n_entries];
		memcpy(r->addr, addr, 16);
		r->len = (uint8_t)len;
		r->slot = m->free_slots[--m->n_free];
		value_store(m->values + (size_t)r->slot * m->stride, value, m->value_size);
		m->n_entries++;
		if (2 * (m->lpm->n_used + 1) <= m->lpm->mask + 1) {
			lpm_insert(m->lpm, r->addr, r->len, r->slot); /* readers see it whole */
			return 0;
		}
		rc = lpm_publish(m, err, errlen);
		if (rc != 0) {
			m->n_entries--;
			m->free_slots[m->n_free++] = r->slot;
		}
		return rc;
	}
	}
}

int
pmap_delete(struct sky_pmap *m, const void *key, char *err, size_t errlen)
{
	switch (m->kind) {
	case PMAP_DIRECT: {
		uint32_t k = 0;

		memcpy(&k, key, m->key_size);
		if (!m->present[k])
			goto noent;
		__atomic_store_n(&m->present[k], 0, __ATOMIC_RELEASE);
		m->n_entries--;
		return 0;
	}
	case PMAP_SMALL: {
		struct small_tab *t = m->sm;
		int64_t i = small_find(t, small_key(key, m->key_size));

		if (i < 0)
			goto noent;
		/* readers skip a tombstone; its slot is reused only after they are gone */
		__atomic_store_n(&t->slots[i].state, SLOT_TOMB, __ATOMIC_RELEASE);
		sky_rcu_sync();
		memset(t->values + (uint64_t)i * t->stride, 0, t->stride);
		m->n_entries--;
		m->n_tombs++;
		return 0;
	}
	case PMAP_HASH: {
		int32_t pos = rte_hash_del_key(m->h, key);

		if (pos < 0)
			goto noent;
		sky_rcu_sync();
		memset(m->values + (size_t)pos * m->stride, 0, m->stride);
		rte_hash_free_key_with_position(m->h, pos);
		m->n_entries--;
		return 0;
	}
	case PMAP_ARRAY: {
		/* an array has every index: deleting one zeroes its value */
		static const uint8_t zero[SKY_MAP_MAX_VALUE];

		return pmap_update(m, key, zero, err, errlen);
	}
	default: {
		uint8_t addr[16];
		unsigned int len;
		int rc = lpm_key_decode(m, key, addr, &len, err, errlen);

		if (rc != 0)
			return rc;
		for (uint32_t i = 0; i < m->n_entries; i++) {
			struct lpm_rule r = m->rules[i];

			if (r.len != len || memcmp(r.addr, addr, 16) != 0)
				continue;
			m->rules[i] = m->rules[m->n_entries - 1];
			m->n_entries--;
			rc = lpm_publish(m, err, errlen);
			if (rc != 0) {
				m->rules[m->n_entries++] = r;
				return rc;
			}
			memset(m->values + (size_t)r.slot * m->stride, 0, m->stride);
			m->free_slots[m->n_free++] = r.slot;
			return 0;
		}
		goto noent;
	}
	}
noent:
	snprintf(err, errlen, "no such key");
	return -ENOENT;
}

void
pmap_foreach(struct sky_pmap *m, int (*fn)(void *arg, const void *key, const void *value),
	     void *arg)
{
	switch (m->kind) {
	case PMAP_DIRECT: {
		uint32_t n = 1u << (8 * m->key_size);

		for (uint32_t k = 0; k < n; k++) {
			if (m->present[k] && fn(arg, &k, m->values + (size_t)k * m->stride))
				return;
		}
		break;
	}
	case PMAP_SMALL: {
		const struct small_tab *t = m->sm;

		for (uint64_t i = 0; i <= t->mask; i++) {
			uint8_t key[8];

			if (t->slots[i].state != SLOT_FULL)
				continue;
			for (uint32_t b = 0; b < 8; b++)
				key[b] = (uint8_t)(t->slots[i].key >> (8 * b));
			if (fn(arg, key, t->values + i * t->stride))
				return;
		}
		break;
	}
	case PMAP_HASH: {
		const void *key;
		void *data;
		uint32_t next = 0;
		int32_t pos;

		while ((pos = rte_hash_iterate(m->h, &key, &data, &next)) >= 0)
			if (fn(arg, key, m->values + (size_t)pos * m->stride))
				return;
		break;
	}
	case PMAP_ARRAY:
		for (uint32_t k = 0; k < m->max_entries; k++)
			if (fn(arg, &k, m->values + (size_t)k * m->stride))
				return;
		break;
	default:
		for (uint32_t i = 0; i < m->n_entries; i++) {
			uint8_t key[sizeof(struct sky_lpm6_key)];
			uint32_t plen = m->rules[i].len;

			memcpy(key, &plen, 4);
			memcpy(key + 4, m->rules[i].addr, m->key_size - 4);
			if (fn(arg, key, m->values + (size_t)m->rules[i].slot * m->stride))
				return;
		}
	}
}

/* ------------------------------------------------------------------ readable forms */

static int
parse_hex(const char *s, uint8_t *out, uint32_t size)
{
	size_t n;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	n = strlen(s);
	if (n != 2 * (size_t)size)
		return -EINVAL;
	for (uint32_t i = 0; i < size; i++) {
		char b[3] = {s[2 * i], s[2 * i + 1], 0};
		char *end;

		if (!isxdigit((unsigned char)b[0]) || !isxdigit((unsigned char)b[1]))
			return -EINVAL;
		out[i] = (uint8_t)strtoul(b, &end, 16);
	}
	return 0;
}

static int
parse_num(const char *s, uint8_t *out, uint32_t size)
{
	uint64_t v, max = size >= 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
	char *end;

	if (*s == '\0' || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	memcpy(out, &v, size); /* little-endian host: the low bytes */
	return 0;
}

static int
parse_prefix(const char *s, bool v6, uint8_t *out)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	uint8_t addr[16] = {0};
	uint64_t len;
	uint32_t plen;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%.*s", slash ? (int)(slash - s) : (int)strlen(s), s);
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, addr) != 1)
		return -EINVAL;
	if (slash != NULL) {
		if (sky_parse_u64(slash + 1, 0, v6 ? 128 : 32, &len) != 0)
			return -EINVAL;
	} else {
		len = v6 ? 128 : 32;
	}
	plen = (uint32_t)len;
	memcpy(out, &plen, 4);
	memcpy(out + 4, addr, v6 ? 16 : 4);
	return 0;
}

static int
parse_bytes(const struct sky_pmap *m, bool is_key, const char *s, uint8_t *out)
{
	uint32_t size = is_key ? m->key_size : m->value_size;
	enum pmap_fmt fmt = is_key ? m->spec.key_fmt : m->spec.value_fmt;
	uint16_t a, b;

	if (is_key && (m->kind == PMAP_LPM4 || m->kind == PMAP_LPM6))
		return parse_prefix(s, m->kind == PMAP_LPM6, out);
	/* country codes: "DE" for 2-byte fields, "RU:KP" for a 4-byte pair */
	if (size == 2 && strlen(s) == 2 && isalpha((unsigned char)s[0]) &&
	    sky_parse_country(s, &a) == 0) {
		memcpy(out, &a, 2);
		return 0;
	}
	if (size == 4 && strlen(s) == 5 && s[2] == ':') {
		char c1[3] = {s[0], s[1], 0}, c2[3] = {s[3], s[4], 0};

		if (sky_parse_country(c1, &a) != 0 || sky_parse_country(c2, &b) != 0)
			return -EINVAL;
		memcpy(out, &a, 2);
		memcpy(out + 2, &b, 2);
		return 0;
	}
	if (!is_key && (size == 1 || size == 2 || size == 4 || size == 8)) {
		/* verdict names for verdict-valued maps */
		uint64_t v = strcmp(s, "pass") == 0   ? SKY_POLICY_PASS
			     : strcmp(s, "drop") == 0 ? SKY_POLICY_DROP
						      : 0;

		if (v != 0) {
			memset(out, 0, size);
			memcpy(out, &v, size);
			return 0;
		}
	}
	if (fmt != FMT_HEX && (size == 1 || size == 2 || size == 4 || size == 8))
		return parse_num(s, out, size);
	return parse_hex(s, out, size);
}

static const char *
form_hint(const struct sky_pmap *m, bool is_key)
{
	uint32_t size = is_key ? m->key_size : m->value_size;

	if (is_key && m->kind == PMAP_LPM4)
		return "an IPv4 prefix such as 10.0.0.0/8";
	if (is_key && m->kind == PMAP_LPM6)
		return "an IPv6 prefix such as 2001:db8::/32";
	if (size == 2)
		return "a country code (DE) or a number 0..65535";
	if (size == 4)
		return "a country pair (RU:KP) or a number 0..4294967295";
	if (size == 1)
		return "a number 0..255";
	if (size == 8)
		return "a number";
	return "hex bytes";
}

/* key (text) into k, as the map's key type reads it; 0, or -EINVAL with the reason in err */
static int
parse_key(const struct sky_pmap *m, const char *key, uint8_t *k, char *err, size_t errlen)
{
	if (parse_bytes(m, true, key, k) != 0) {
		snprintf(err, errlen, "map %s: bad key '%s': expected %s (%u bytes)", m->spec.name,
			 key, form_hint(m, true), m->key_size);
		return -EINVAL;
	}
	return 0;
}

int
pmap_update_str(struct sky_pmap *m, const char *key, const char *value, char *err, size_t errlen)
{
	uint8_t k[SKY_MAP_MAX_KEY] = {0}, v[SKY_MAP_MAX_VALUE] = {0};
	char why[128];
	int rc;

	if (parse_key(m, key, k, err, errlen) != 0)
		return -EINVAL;
	if (parse_bytes(m, false, value, v) != 0) {
		snprintf(err, errlen, "map %s: bad value '%s': expected %s (%u bytes)",
			 m->spec.name, value, form_hint(m, false), m->value_size);
		return -EINVAL;
	}
	rc = pmap_update(m, k, v, why, sizeof(why));
	if (rc != 0)
		snprintf(err, errlen, "map %s: key '%s': %s", m->spec.name, key, why);
	return rc;
}

int
pmap_delete_str(struct sky_pmap *m, const char *key, char *err, size_t errlen)
{
	uint8_t k[SKY_MAP_MAX_KEY] = {0};
	char why[128];
	int rc;

	if (parse_key(m, key, k, err, errlen) != 0)
		return -EINVAL;
	rc = pmap_delete(m, k, why, sizeof(why));
	if (rc != 0)
		snprintf(err, errlen, "map %s: key '%s': %s", m->spec.name, key, why);
	return rc;
}

static bool
is_cc(uint16_t v)
{
	return isupper(v >> 8) && isupper(v & 0xff);
}

int
pmap_format(const struct sky_pmap *m, bool is_key, const void *bytes, char *out, size_t len)
{
	uint32_t size = is_key ? m->key_size : m->value_size;
	enum pmap_fmt fmt = is_key ? m->spec.key_fmt : m->spec.value_fmt;
	const uint8_t *b = bytes;

	if (is_key && (m->kind == PMAP_LPM4 || m->kind == PMAP_LPM6)) {
		char a[INET6_ADDRSTRLEN];
		uint32_t plen;

		memcpy(&plen, b, 4);
		inet_ntop(m->kind == PMAP_LPM4 ? AF_INET : AF_INET6, b + 4, a, sizeof(a));
		return snprintf(out, len, "%s/%u", a, plen);
	}
	if (fmt == FMT_CC && size == 2) {
		uint16_t v;

		memcpy(&v, b, 2);
		if (is_cc(v))
			return snprintf(out, len, "%c%c", v >> 8, v & 0xff);
	}
	if (fmt == FMT_CC_PAIR && size == 4) {
		uint16_t s, r;

		memcpy(&s, b, 2);
		memcpy(&r, b + 2, 2);
		if (is_cc(s) && is_cc(r))
			return snprintf(out, len, "%c%c:%c%c", s >> 8, s & 0xff, r >> 8, r & 0xff);
	}
	if (fmt != FMT_HEX && (size == 1 || size == 2 || size == 4 || size == 8)) {
		uint64_t v = 0;

		memcpy(&v, b, size);
		return snprintf(out, len, "%" PRIu64, v);
	}
	if (len < 2 * (size_t)size + 3)
		return -ENOSPC;
	out[0] = '0';
	out[1] = 'x';
	for (uint32_t i = 0; i < size; i++)
		snprintf(out + 2 + 2 * i, 3, "%02x", b[i]);
	return (int)(2 + 2 * size);
}
