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
 * Lookup tables (data path, rte_malloc, measured choice, see tests/bench/bench_subscriber.c):
 *   lpm4  rte_lpm6 keyed by the IPv4 address in bytes 0..3, depth = prefix length
 *   lpm6  rte_lpm6 keyed by the IPv6 address
 *   lpmr  rte_lpm6 for subscribers with a realm (outer VLAN): key = 16-bit header
 *         (family nibble 4|6 << 12 | realm) followed by the address, depth 16 + len;
 *         so a realm subscriber's IPv6 prefix is at most /112. Created on first use.
 * Why rte_lpm6 for IPv4 too: rte_lpm adds are O(rules of that depth) (1M /32 = hours),
 * rte_fib's RIB costs ~390 bytes per route, rte_fib6's trie reserves one tbl8 per level
 * per route (4 per /56: 4 GB for 1M). rte_lpm6 keeps rules in a hash (~90 B/rule) and
 * adds 1M /32 or /56 in ~0.3 s.
 * Reader safety: one writer (the control thread). rte_lpm6 writes each 32-bit entry
 * atomically; the only hazard is a tbl8 group freed by a delete and reused by a later add
 * while a worker still reads it, so every delete is followed by sky_rcu_sync() before any
 * further add. A whole-table replacement (subscriber load) builds new tables aside,
 * publishes one pointer, syncs, frees.
 */
#ifndef SKY_SUBSCRIBER_PRIV_H
#define SKY_SUBSCRIBER_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>

#include "skygate/config.h"
#include "skygate/runtime.h"
#include "skygate/classify.h" /* struct sky_class_set: the model's classes */
#include "skygate/subscriber.h"

struct rte_lpm6;

/* --- data path record: one 64-bit word written atomically --- */
/* w = id | country << 32 | plan << 48 | beam << 56; w == 0: slot unused */
struct sky_sub_rec {
	uint64_t w;
	uint16_t realm;
	uint16_t pad[3];
};

static inline uint64_t
sky_sub_rec_word(uint32_t id, uint16_t country, uint16_t plan, uint16_t beam)
{
	return (uint64_t)id | (uint64_t)country << 32 | (uint64_t)(plan & 0xff) << 48 |
	       (uint64_t)(beam & 0xff) << 56;
}

#define SKY_SUBS_MAX_CAPACITY ((1u << 21) - 2) /* rte_lpm6 next hops are 21 bits */
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
/** Same, and need[t] = rte_lpm6 tbl8 groups table t (0 lpm4, 1 lpm6, 2 realm) needs. */
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

/* Lookup tables: data path reads, control path writes (single writer, see above) */
struct subs_tables {
	struct rte_lpm6 *lpm4;
	struct rte_lpm6 *lpm6;
	struct rte_lpm6 *lpmr;	 /* realm table, NULL until a realm subscriber exists */
	struct sky_sub_rec *rec; /* [capacity] */
	uint64_t realm_bm[64];	 /* realm r has entries in lpmr: bit r */
	uint32_t tbl8[3];	 /* tbl8 groups each table was created with */
	uint32_t max_rules[3];
} __rte_cache_aligned;

/* realm vid has entries in the realm table (data path and `subscriber find`) */
static inline int
subs_realm_on(const struct subs_tables *t, uint16_t vid)
{
	return (__atomic_load_n(&t->realm_bm[(vid >> 6) & 63], __ATOMIC_RELAXED) >> (vid & 63)) & 1;
}

/* per worker aggregate counters (data path writes, control path sums) */
struct subs_wstats {
	uint64_t unknown[2];
	uint64_t pkts[2][SKY_MAX_CLASSES];
	uint64_t bytes[2][SKY_MAX_CLASSES];
	uint64_t drops[SKY_SUBS_DG_MAX];
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

struct sky_subs {
	/* --- data path --- */
	struct subs_tables *tab;	/* published pointer */
	uint64_t *ctr[SKY_MAX_WORKERS]; /* per worker [capacity][stride] */
	struct subs_wstats *ws;		/* [n_ctr_workers] */
	unsigned int stride;		/* u64 per subscriber: 4 * n_classes + DG_MAX */
	unsigned int n_classes;
	unsigned int default_cls;
	int unknown_plan; /* -1: drop */
	uint32_t capacity;
	unsigned int n_workers, n_ctr_workers;

	/* --- control path --- */
	struct sky_class_set cs;
	unsigned int n_plans, n_beams;
	struct sky_plan plans[SKY_MAX_PLANS];
	struct plan_x plan_x[SKY_MAX_PLANS];
	struct sky_beam beams[SKY_MAX_BEAMS];
	struct sky_sub_info *info; /* [capacity], id 0 = free slot */
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
	void (*on_destroy)(struct sky_subs *s); /* set by sky_subs_register (subscriber_ctl.c) */
	/* held by changes and by the DPDK telemetry thread's reads (control path only) */
	pthread_mutex_t lock;
};

/* --- subscriber_cfg.c: the model --- */
/** Sections `plans`, `beams` (classes parsed before), then `subscribers`: file (NULL when
 *  absent), capacity (0 when absent), unknown plan. 0 or -1 with err. */
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
/** Per-subscriber counters: allocate (per worker); sum of subscriber idx into out[stride]. */
int subs_counters_alloc(struct sky_subs *s);
void subs_sum_counters(const struct sky_subs *s, uint32_t idx, uint64_t *out);

#endif /* SKY_SUBSCRIBER_PRIV_H */
