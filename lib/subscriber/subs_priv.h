/* SPDX-License-Identifier: BSD-3-Clause */
/* struct sky_subs and the change operations, shared by subscriber.c and ctl.c. */
#ifndef SKY_SUBS_PRIV_H
#define SKY_SUBS_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>

#include "subs_internal.h"

struct rte_lpm6;

/* drop reason groups counted per subscriber */
enum {
	SKY_SUBS_DG_POLICY, /* policy_drop, policy_fault */
	SKY_SUBS_DG_POLICE, /* police_exceeded, queue drops (shaper) */
	SKY_SUBS_DG_UNKNOWN,
	SKY_SUBS_DG_OTHER,
	SKY_SUBS_DG_MAX
};
extern const char *const sky_subs_dg_names[SKY_SUBS_DG_MAX];

/* Lookup tables: data path reads, control path writes (single writer, see subs_internal.h) */
struct subs_tables {
	struct rte_lpm6 *lpm4;
	struct rte_lpm6 *lpm6;
	struct rte_lpm6 *lpmr;	 /* realm table, NULL until a realm subscriber exists */
	struct sky_sub_rec *rec; /* [capacity] */
	uint64_t realm_bm[64];	 /* realm r has entries in lpmr: bit r */
	uint32_t tbl8[3];	 /* tbl8 groups each table was created with */
	uint32_t max_rules[3];
} __rte_cache_aligned;

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
	/* held by changes and by the DPDK telemetry thread's reads (control path only) */
	pthread_mutex_t lock;
};

/* names for the CSV parser */
void subs_names(const struct sky_subs *s, struct sky_subs_names *nm);

/* change operations (control path). Each validates whole, then applies; 0 or -1 + err. */
int subs_op_add(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen);
int subs_op_del(struct sky_subs *s, uint32_t id, char *err, size_t errlen);
int subs_op_set(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen);
int subs_op_load(struct sky_subs *s, const char *path, char *err, size_t errlen);
int subs_op_plan_set(struct sky_subs *s, unsigned int idx, const struct sky_plan *np,
		     const struct plan_x *nx, char *err, size_t errlen);
int subs_op_beam_set(struct sky_subs *s, unsigned int idx, const struct sky_beam *nb, char *err,
		     size_t errlen);
void subs_notify(struct sky_subs *s, enum sky_subs_event ev, uint32_t index,
		 const struct sky_sub_info *info);
/** Subscriber idx owning addr for a packet with outer VLAN vid (as the data path would
 *  find it), or SKY_SUB_NONE. Control path. */
uint32_t subs_find(const struct sky_subs *s, uint8_t fam, const uint8_t *addr, uint16_t vid);
/** Sum of the per-worker counters of subscriber idx into out[stride]. */
void subs_sum_counters(const struct sky_subs *s, uint32_t idx, uint64_t *out);
void subs_plan_defaults(struct sky_plan *p, const struct plan_x *x);

#endif /* SKY_SUBS_PRIV_H */
