/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/subscriber internals, private to this folder (the module's own white-box tests, the
 * bench and the CSV fuzzer include it by path). Who does what:
 *   subscriber.c        create / destroy (the owner), capacity, count, unknown plan
 *   subscriber_cfg.c    the model: `plans`, `beams`, `subscribers` sections; plan, beam
 *                       and class getters; plan and beam changes; listeners, validators
 *   subscriber_csv.c    the CSV reader (public API) and the rows a load builds: names,
 *                       uniqueness, tbl8 sizing
 *   subscriber_table.c  lookup tables, id map, records, subscriber changes (add, del, set,
 *                       load), get / foreach, per-subscriber counters (zero, sum)
 *   subscriber_dp.c     data path: lookup and accounting bursts
 *   subscriber_ctl.c    control commands, telemetry, Prometheus metrics
 * Calls point one way (nm on the objects shows it): subscriber.c and subscriber_ctl.c ->
 * subscriber_table.c -> subscriber_cfg.c -> subscriber_csv.c; subscriber_dp.c calls none
 * of them; nothing calls subscriber_ctl.c: sky_subs_register() leaves the owner a callback
 * (on_destroy) that sky_subs_destroy() runs.
 *
 * Lookup table (data path, rte_malloc; measured choice, see README.md and
 * tests/bench/bench_subscriber.c): one exact-match hash over every (family, realm, prefix
 * length, masked address) key, probed per packet at the prefix lengths in use, longest
 * first (a bitmap per family, and per family for realm keys):
 *   bkt  buckets of 64 bytes: 12 slots (an 8-bit signature, matched with one SSE compare,
 *        and subscriber idx + 1) and `ovf`, the number of keys that live past this bucket
 *        though they hash to it or before it (linear probing by bucket; a lookup goes on
 *        while ovf != 0)
 *   rec  a 32-byte record per subscriber: the word the data path copies (id, country,
 *        plan, beam) and the subscriber's own keys, which a signature match is checked
 *        against; a hit therefore costs the bucket line and half a record line
 * The table is sized for 2 * capacity + SUBS_KEY_SPARE keys at most 7/8 full, and a key
 * may sit in any bucket after its own, so any address layout fits `capacity` subscribers
 * (the hash spreads keys; nothing depends on how addresses share prefixes).
 * Reader safety: one writer (the control thread). An add writes the slot's idx, then its
 * signature; a delete clears the signature, then the idx; no key ever moves, so a reader
 * sees a key or not, and every candidate is checked against its record. A
 * record's IPv4 key and flags are one 64-bit word; its IPv6 key (two words) is written
 * between two stores of that word that change its 2-bit generation, and a reader takes
 * the IPv6 key only when the word read before and after it is the same. A delete is
 * followed by sky_rcu_sync() before its idx (record, counters) is reused. A whole-table
 * replacement (subscriber load) builds a new table aside, publishes one pointer, syncs,
 * frees.
 */
#ifndef SKY_SUBSCRIBER_PRIV_H
#define SKY_SUBSCRIBER_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_vect.h>

#include "skygate/config.h"
#include "skygate/runtime.h"
#include "skygate/classify.h" /* struct sky_class_set: the model's classes */
#include "skygate/subscriber.h"

struct rte_lpm6;

/* --- data path record: 32 bytes, two per cache line --- */
/* w = id | zone << 32 | plan << 40 | beam << 48 | country << 54; w == 0: slot unused. The
 * country is two letters A-Z (sky_cc, or 0 = none) kept as their low 5 bits each (10 bits),
 * so that the zone fits beside them: the whole word is what the data path copies */
/* k = v4 (host order, masked) | v4_len << 32 (6 bits) | quota << 38 (2 bits, enum
 *     sky_quota_state) | v6_len << 40 | realm << 48 | has_v4 << 60 | has_v6 << 61 |
 *     generation << 62 */
struct sky_sub_rec {
	uint64_t w;
	uint64_t k;
	uint64_t v6[2]; /* host order (v6[0]: bytes 0..7), masked to v6_len */
};
#define SUBS_K_HAS4 (1ULL << 60)
#define SUBS_K_HAS6 (1ULL << 61)
#define SUBS_K_GEN1 (1ULL << 62)
#define SUBS_K_QUOTA_SHIFT 38
#define SUBS_K_QUOTA (3ULL << SUBS_K_QUOTA_SHIFT)
_Static_assert(SKY_QUOTA_MAX <= 4, "the quota state is 2 bits of the record's key word");
_Static_assert(SKY_MAX_BEAMS <= 64 && SKY_MAX_PLANS <= 256 && SKY_MAX_ZONES <= 255,
	       "beam, plan and zone fit the record's word");

/* a country (sky_cc) the record word can hold: none, or two letters A-Z */
static inline int
subs_cc_ok(uint16_t cc)
{
	return cc == 0 ||
	       ((cc >> 8) >= 'A' && (cc >> 8) <= 'Z' && (cc & 0xff) >= 'A' && (cc & 0xff) <= 'Z');
}

static inline uint64_t
sky_sub_rec_word(uint32_t id, uint16_t country, uint16_t plan, uint16_t beam, uint8_t zone)
{
	uint64_t cc = (uint64_t)((country >> 8) & 0x1f) | (uint64_t)(country & 0x1f) << 5;

	return (uint64_t)id | (uint64_t)zone << 32 | (uint64_t)(plan & 0xff) << 40 |
	       (uint64_t)(beam & 0x3f) << 48 | cc << 54;
}

static inline uint16_t
subs_w_country(uint64_t w)
{
	uint32_t c = (uint32_t)(w >> 54);

	return (uint16_t)(c == 0 ? 0 : (c & 0x1f) << 8 | (c >> 5) | 0x4040);
}

static inline uint16_t
subs_w_plan(uint64_t w)
{
	return (uint16_t)((w >> 40) & 0xff);
}

/* the word with another plan */
static inline uint64_t
subs_w_with_plan(uint64_t w, unsigned int plan)
{
	return (w & ~(0xffULL << 40)) | (uint64_t)(plan & 0xff) << 40;
}

static inline uint16_t
subs_w_beam(uint64_t w)
{
	return (uint16_t)((w >> 48) & 0x3f);
}

static inline uint8_t
subs_w_zone(uint64_t w)
{
	return (uint8_t)(w >> 32);
}

static inline uint8_t
subs_k_quota(uint64_t k)
{
	return (uint8_t)((k & SUBS_K_QUOTA) >> SUBS_K_QUOTA_SHIFT);
}

static inline uint16_t
subs_k_realm(uint64_t k)
{
	return (uint16_t)((k >> 48) & 0xfff);
}

#define SKY_SUBS_MAX_CAPACITY ((1u << 21) - 2) /* a hash slot holds idx + 1 in 21 bits */
#define SKY_REALM_MAX 4094
#define SKY_REALM_V6_MAX_LEN 112

/** snprintf the reason into err; returns -1 (so `return subs_fail(...)` refuses). */
int subs_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* --- the rows of a CSV load (subscriber_csv.c) --- */
struct sky_subs_row {
	struct sky_sub_info sub; /* idx unused */
	uint32_t line;
};

struct sky_subs_rows {
	struct sky_subs_row *r;
	size_t n, cap;
};

/**
 * Parse a CSV held in buf with sky_subs_csv_parse(), plan and beam names resolved against
 * names; rows are appended to out (grown in big steps). Not uniqueness
 * (sky_subs_rows_check). Returns 0, or -1 with err filled.
 */
int sky_subs_rows_parse(const struct sky_subs_csv_names *names, const char *fname, const char *buf,
			size_t len, struct sky_subs_rows *out, char *err, size_t errlen);
/** Read a CSV file into rows and check it whole: parse, then sky_subs_rows_check_need.
 *  Rows freed on failure. 0 or -1 with err filled. */
int sky_subs_rows_load(const struct sky_subs_csv_names *names, const char *path,
		       struct sky_subs_rows *rows, uint32_t need[3], char *err, size_t errlen);
/** Duplicate ids and identical (realm, prefix) pairs, naming both lines. 0 or -1. */
int sky_subs_rows_check(const char *fname, const struct sky_subs_rows *rows, char *err,
			size_t errlen);
void sky_subs_rows_free(struct sky_subs_rows *rows);
/** Same, and need[t] = rte_lpm6 tbl8 groups table t (0 lpm4, 1 lpm6, 2 realm) needs (the
 *  hash table does not use need[]: it is sized by capacity alone). */
int sky_subs_rows_check_need(const char *fname, const struct sky_subs_rows *rows, uint32_t need[3],
			     char *err, size_t errlen);
/** rte_lpm6 key, depth and table (0 lpm4, 1 lpm6, 2 realm) of an address of a subscriber. */
void sky_subs_lpm_key(uint8_t fam, uint16_t realm, const uint8_t *addr, uint8_t len,
		      uint8_t key[16], uint8_t *depth, uint8_t *table);

/* --- the owner's state --- */

/* drop reason groups counted per subscriber */
enum {
	SKY_SUBS_DG_POLICY, /* policy_drop, policy_fault */
	SKY_SUBS_DG_POLICE, /* police_exceeded, queue drops (shaper) */
	SKY_SUBS_DG_UNKNOWN,
	SKY_SUBS_DG_OTHER,
	SKY_SUBS_DG_MAX
};
extern const char *const sky_subs_dg_names[SKY_SUBS_DG_MAX];

/* --- the lookup table (see the top of this file) --- */
#define SUBS_BKT_SLOTS 12
#define SUBS_KEY_SPARE 64  /* keys beyond 2 * capacity: a set adds before it removes */
#define SUBS_N_LEN_WORDS 3 /* prefix lengths 0..128 */

struct subs_bkt {
	uint8_t sig[SUBS_BKT_SLOTS];  /* 1..255, 0 = empty */
	uint32_t ovf;		      /* keys living past this bucket that hash here or before */
	uint32_t idx[SUBS_BKT_SLOTS]; /* subscriber idx + 1, 0 = empty */
} __rte_aligned(64);
_Static_assert(sizeof(struct subs_bkt) == 64, "one line per bucket");

/* key classes: a bitmap of the prefix lengths in use for each */
enum { SUBS_KC_V4, SUBS_KC_V6, SUBS_KC_R4, SUBS_KC_R6, SUBS_KC_MAX };

/* Lookup tables: data path reads, control path writes (single writer, see above) */
struct subs_tables {
	struct subs_bkt *bkt;				/* [nb] */
	struct sky_sub_rec *rec;			/* [capacity] */
	uint32_t nb;					/* buckets */
	uint32_t max_keys;				/* 2 * capacity + SUBS_KEY_SPARE */
	uint64_t len_bm[SUBS_KC_MAX][SUBS_N_LEN_WORDS]; /* prefix length l in use: bit l */
	uint64_t realm_bm[64];				/* realm r has keys: bit r */
	/* control path only */
	uint32_t n_keys;
	uint32_t len_refs[SUBS_KC_MAX][129];
} __rte_cache_aligned;

/* realm vid has entries in the realm table (data path and `subscriber find`) */
static inline int
subs_realm_on(const struct subs_tables *t, uint16_t vid)
{
	return (__atomic_load_n(&t->realm_bm[(vid >> 6) & 63], __ATOMIC_RELAXED) >> (vid & 63)) & 1;
}

/* the longest prefix length in use below `below` in bitmap bm, or -1 */
static inline int
subs_len_below(const uint64_t *bm, int below)
{
	for (int w = (below - 1) >> 6; below > 0 && w >= 0; w--) {
		uint64_t x = __atomic_load_n(&bm[w], __ATOMIC_RELAXED);

		if (w == (below - 1) >> 6 && ((below - 1) & 63) != 63)
			x &= (2ULL << ((below - 1) & 63)) - 1;
		if (x != 0)
			return w * 64 + 63 - __builtin_clzll(x);
	}
	return -1;
}

/* an address in host order, masked to len bits: a[0] bytes 0..7, a[1] bytes 8..15; an
 * IPv4 address is a[0] >> 32 */
static inline void
subs_mask(uint64_t a[2], unsigned int len)
{
	if (len < 64) {
		a[0] &= len == 0 ? 0 : ~0ULL << (64 - len);
		a[1] = 0;
	} else if (len < 128) {
		a[1] &= len == 64 ? 0 : ~0ULL << (128 - len);
	}
}

/* hash of a key: family (4|6), realm, prefix length, masked address (host order) */
static inline uint32_t
subs_hash(unsigned int fam, unsigned int realm, unsigned int len, const uint64_t a[2])
{
	uint32_t h = (uint32_t)(fam << 28 | realm << 8 | len);

	h = (uint32_t)__builtin_ia32_crc32di(h, a[0]);
	if (fam == 6)
		h = (uint32_t)__builtin_ia32_crc32di(h, a[1]);
	/* no mixing: CRC is linear, which spreads structured keys (a pool's addresses differ
	 * in a few bits) without collisions in the bucket (high bits, by multiply-shift) or
	 * the signature (low bits) */
	return h;
}

static inline uint32_t
subs_bucket_of(const struct subs_tables *t, uint32_t h)
{
	return (uint32_t)(((uint64_t)h * t->nb) >> 32);
}

/* the signature of a hash (8 bits, never 0: 0 marks an empty slot) */
static inline uint8_t
subs_sig_of(uint32_t h)
{
	return (uint8_t)((h & 0xff) | ((h & 0xff) == 0));
}

/* slots of bucket b whose signature is sig: bit i = slot i. Plain loads: a reader that
 * sees a slot half written takes idx 0 (no candidate) or checks the record. */
static inline uint32_t
subs_bkt_match(const struct subs_bkt *b, uint8_t sig)
{
#if defined(__SSE2__)
	__m128i v = _mm_load_si128((const __m128i *)b);

	return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)sig))) &
	       ((1u << SUBS_BKT_SLOTS) - 1);
#else
	uint32_t m = 0;

	for (unsigned int i = 0; i < SUBS_BKT_SLOTS; i++)
		m |= (uint32_t)(b->sig[i] == sig) << i;
	return m;
#endif
}

/* record r holds exactly this key (family, realm, len, masked address)? Reader-safe
 * against a concurrent change of the record's IPv6 key (see the top of this file). */
static inline int
subs_rec_has(const struct sky_sub_rec *r, unsigned int fam, unsigned int realm, unsigned int len,
	     const uint64_t a[2])
{
	uint64_t k = __atomic_load_n(&r->k, __ATOMIC_ACQUIRE), k2, x0, x1;
	const uint64_t realm_bits = (uint64_t)(realm & 0xfff) << 48;

	/* one compare of the key word's fields (address, length, realm, flag) */
	if (fam == 4)
		return (k & (0xffffffffULL | 0x3fULL << 32 | 0xfffULL << 48 | SUBS_K_HAS4)) ==
		       ((a[0] >> 32) | (uint64_t)len << 32 | realm_bits | SUBS_K_HAS4);
	if ((k & (0xffULL << 40 | 0xfffULL << 48 | SUBS_K_HAS6)) !=
	    ((uint64_t)len << 40 | realm_bits | SUBS_K_HAS6))
		return 0;
	x0 = __atomic_load_n(&r->v6[0], __ATOMIC_RELAXED);
	x1 = __atomic_load_n(&r->v6[1], __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	k2 = __atomic_load_n(&r->k, __ATOMIC_RELAXED);
	/* the quota bits may change in between: only the keys and generation count */
	return ((k2 ^ k) & ~SUBS_K_QUOTA) == 0 && x0 == a[0] && x1 == a[1];
}

/* subscriber idx holding this key, or SKY_SUB_NONE: the whole probe (home bucket, then on
 * while ovf says keys live further) */
static inline uint32_t
subs_probe(const struct subs_tables *t, unsigned int fam, unsigned int realm, unsigned int len,
	   const uint64_t a[2], uint32_t h)
{
	uint32_t b = subs_bucket_of(t, h);
	uint8_t sig = subs_sig_of(h);

	for (uint32_t n = 0; n < t->nb; n++) {
		const struct subs_bkt *k = &t->bkt[b];
		uint32_t m = subs_bkt_match(k, sig);

		while (m != 0) {
			uint32_t x = __atomic_load_n(&k->idx[__builtin_ctz(m)], __ATOMIC_RELAXED);

			m &= m - 1;
			if (x != 0 && subs_rec_has(&t->rec[x - 1], fam, realm, len, a))
				return x - 1;
		}
		if (__atomic_load_n(&k->ovf, __ATOMIC_ACQUIRE) == 0)
			break;
		b = b + 1 == t->nb ? 0 : b + 1;
	}
	return SKY_SUB_NONE;
}

/* an address (network order; IPv4: 4 bytes) in host order, unmasked */
static inline void
subs_addr_load(unsigned int fam, const uint8_t *addr, uint64_t a[2])
{
	if (fam == 4) {
		uint32_t x;

		memcpy(&x, addr, 4);
		a[0] = (uint64_t)__builtin_bswap32(x) << 32;
		a[1] = 0;
	} else {
		memcpy(a, addr, 16);
		a[0] = __builtin_bswap64(a[0]);
		a[1] = __builtin_bswap64(a[1]);
	}
}

/* key class of a family, realm or not */
static inline unsigned int
subs_kc(unsigned int fam, unsigned int realm)
{
	return (fam == 4 ? SUBS_KC_V4 : SUBS_KC_V6) + (realm != 0 ? 2 : 0);
}

/* the subscriber owning addr (family fam, network order) for a packet with outer VLAN vid
 * (as the data path finds it: the realm's keys first, longest prefix first, then realm
 * 0's), or SKY_SUB_NONE. One probe after another: the data path's slow path and the
 * control path. */
static inline uint32_t
subs_lookup1(const struct subs_tables *t, unsigned int fam, const uint8_t *addr, uint16_t vid)
{
	uint64_t a[2];
	unsigned int realm = vid != 0 && vid <= SKY_REALM_MAX && subs_realm_on(t, vid) ? vid : 0;

	subs_addr_load(fam, addr, a);
	for (;;) {
		const uint64_t *bm = t->len_bm[subs_kc(fam, realm)];

		for (int len = subs_len_below(bm, 129); len >= 0; len = subs_len_below(bm, len)) {
			uint64_t m[2] = {a[0], a[1]};
			uint32_t idx;

			subs_mask(m, (unsigned int)len);
			idx = subs_probe(t, fam, realm, (unsigned int)len, m,
					 subs_hash(fam, realm, (unsigned int)len, m));
			if (idx != SKY_SUB_NONE)
				return idx;
		}
		if (realm == 0)
			return SKY_SUB_NONE;
		realm = 0;
	}
}

/* per worker aggregate counters (data path writes, control path sums) */
struct subs_wstats {
	uint64_t unknown[2];
	uint64_t pkts[2][SKY_MAX_CLASSES];
	uint64_t bytes[2][SKY_MAX_CLASSES];
	uint64_t drops[SKY_SUBS_DG_MAX];
	uint64_t foreign[2]; /* packets of beams not owned here: [0] dropped, [1] passed */
} __rte_cache_aligned;

struct idmap {
	uint32_t *keys; /* 0 = empty */
	uint32_t *vals;
	uint32_t mask;
};

struct plan_x {
	bool weight_set, down_burst_set, up_burst_set;
};

#define SUBS_MAX_HOOKS 16
_Static_assert(SKY_MAX_BEAMS <= 64, "beams_foreign is one 64-bit word");

struct sky_subs {
	/* --- data path --- */
	struct subs_tables *tab; /* published pointer */
	/* per worker: [capacity][2 directions][n_classes] {packets, bytes} (one line per
	 * direction with 4 classes), then [capacity][SKY_SUBS_DG_MAX] drops */
	uint64_t *ctr[SKY_MAX_WORKERS];
	struct subs_wstats *ws; /* [n_ctr_workers] */
	unsigned int stride;	/* u64 per subscriber as summed: 4 * n_classes + DG_MAX */
	unsigned int n_classes;
	unsigned int default_cls;
	int unknown_plan; /* -1: drop */
	uint32_t capacity;
	unsigned int n_workers, n_ctr_workers;
	/* enum sky_subs_beam_mode per beam index: written by the control plane (one atomic
	 * byte store), read per known-subscriber packet */
	uint8_t beam_mode[SKY_MAX_BEAMS];
	uint64_t beams_foreign; /* bit b: beam_mode[b] != OWNED (read once per burst) */

	/* --- control path --- */
	struct sky_class_set cs;
	unsigned int n_plans, n_beams;
	struct sky_plan plans[SKY_MAX_PLANS];
	struct plan_x plan_x[SKY_MAX_PLANS];
	struct sky_beam beams[SKY_MAX_BEAMS];
	unsigned int n_zones;
	char zones[SKY_MAX_ZONES][SKY_NAME_MAX]; /* zone id i + 1 */
	struct sky_sub_info *info;		 /* [capacity], id 0 = free slot */
	struct idmap map;
	uint32_t *free_idx; /* stack, top = lowest free index */
	uint32_t n_free;
	uint32_t n_subs;
	uint32_t realm_refs[SKY_REALM_MAX + 1];
	char csv_path[PATH_MAX];
	char cfg_file[PATH_MAX];
	struct {
		sky_subs_listener_fn fn;
		void *arg;
	} listeners[SUBS_MAX_HOOKS];
	unsigned int n_listeners;
	struct {
		sky_subs_validator_fn fn;
		void *arg;
	} validators[SUBS_MAX_HOOKS];
	unsigned int n_validators;
	struct {
		char name[16];
		sky_subs_rank_fn rank;
		void *arg;
	} orders[SUBS_MAX_HOOKS]; /* `subscriber top by=NAME`: a module's own ranking */
	unsigned int n_orders;
	struct {
		char name[SKY_NAME_MAX];
		sky_subs_top_fn fn;
		void *arg;
	} top_keys[4]; /* `subscriber top by=NAME`: a per-subscriber figure the model ranks */
	unsigned int n_top_keys;
	const char *const *pk_keys; /* `plan set` keys of another module (sky_subs_plan_key_hook) */
	sky_subs_plan_key_fn pk_fn;
	void *pk_arg;
	void (*on_destroy)(struct sky_subs *s); /* set by sky_subs_register (subscriber_ctl.c) */
	/* held by changes and by the DPDK telemetry thread's reads (control path only) */
	pthread_mutex_t lock;
};

/* worker w's {packets, bytes} pairs of subscriber idx in direction dir: [n_classes][2] */
/* the same within one worker's counters ctr (the data path hoists ctr and nc per burst) */
static inline uint64_t *
subs_ctr_at(uint64_t *ctr, unsigned int nc, uint32_t idx, unsigned int dir)
{
	return ctr + ((size_t)idx * 2 + dir) * 2 * nc;
}

static inline uint64_t *
subs_ctr_pairs(const struct sky_subs *s, unsigned int w, uint32_t idx, unsigned int dir)
{
	return subs_ctr_at(s->ctr[w], s->n_classes, idx, dir);
}

/* worker w's drop counters of subscriber idx: [SKY_SUBS_DG_MAX] */
static inline uint64_t *
subs_ctr_drops(const struct sky_subs *s, unsigned int w, uint32_t idx)
{
	return s->ctr[w] + (size_t)s->capacity * 4 * s->n_classes + (size_t)idx * SKY_SUBS_DG_MAX;
}

/* --- subscriber_cfg.c: the model --- */
/** Sections `plans`, `beams` (classes parsed before), `zones`, then `subscribers`: file
 *  (NULL when absent), capacity (0 when absent), unknown plan. 0 or -1 with err. */
int subs_cfg_parse(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err,
		   const char **file, uint64_t *capacity);
/** Names the CSV's plan and beam columns may use (pointers into the model). */
void subs_names(const struct sky_subs *s, struct sky_subs_csv_names *nm);
void subs_plan_defaults(struct sky_plan *p, const struct plan_x *x);
/** Listeners, told after a change is applied; validators, asked before. */
void subs_notify(struct sky_subs *s, enum sky_subs_event ev, uint32_t index,
		 const struct sky_sub_info *info);
int subs_validate(struct sky_subs *s, enum sky_subs_event ev, uint32_t index, const void *nv,
		  char *err, size_t errlen);

/** Plan and beam changes: validated whole, validators asked, applied, listeners told.
 *  0 or -1 with err. */
int subs_op_plan_set(struct sky_subs *s, unsigned int idx, const struct sky_plan *np,
		     const struct plan_x *nx, char *err, size_t errlen);
int subs_op_beam_set(struct sky_subs *s, unsigned int idx, const struct sky_beam *nb, char *err,
		     size_t errlen);

/* --- subscriber_table.c: tables and subscriber changes (control path) --- */
/* control-side state of one generation of the table */
struct subs_state {
	struct sky_sub_info *info;
	struct idmap map;
	uint32_t *free_idx;
	uint32_t n_free;
};

/** Lookup tables holding rows (row i at index row_idx[i], or i when row_idx is NULL).
 *  NULL with err. */
struct subs_tables *subs_tables_create(struct sky_subs *s, const struct sky_subs_rows *rows,
				       const uint32_t *row_idx, const uint32_t need[3], char *err,
				       size_t errlen);
void subs_tables_free(struct subs_tables *t);
/** Records, id map and free list of rows (indexes as for subs_tables_create). 0 or
 *  -ENOMEM. */
int subs_state_build(const struct sky_subs *s, const struct sky_subs_rows *rows,
		     const uint32_t *row_idx, struct subs_state *st);
/** Make st (n_subs subscribers) the current state; the previous one is freed. */
void subs_state_install(struct sky_subs *s, struct subs_state *st, uint32_t n_subs);
void subs_state_free(struct sky_subs *s);
/* subscriber changes. Each validates whole, then applies; 0 or -1 + err. */
int subs_op_add(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen);
int subs_op_del(struct sky_subs *s, uint32_t id, char *err, size_t errlen);
int subs_op_set(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen);
int subs_op_load(struct sky_subs *s, const char *path, char *err, size_t errlen);
/** Subscriber idx owning addr for a packet with outer VLAN vid (as the data path would
 *  find it), or SKY_SUB_NONE. Control path. */
uint32_t subs_find(const struct sky_subs *s, uint8_t fam, const uint8_t *addr, uint16_t vid);
/** Per-subscriber counters: allocate (per worker; the aggregates too; 0 or -ENOMEM); sum
 *  of subscriber idx into out[stride] (packets [2][n_classes], bytes [2][n_classes],
 *  drops [SKY_SUBS_DG_MAX]). */
int subs_counters_alloc(struct sky_subs *s);
void subs_counters_free(struct sky_subs *s);
void subs_sum_counters(const struct sky_subs *s, uint32_t idx, uint64_t *out);

#endif /* SKY_SUBSCRIBER_PRIV_H */
