/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/quota internals, private to this folder. Who does what:
 *   quota_calc.c  time zones, civil dates, period bounds, windows, the decision, parsers
 *                 (pure: time is a parameter)
 *   quota_cfg.c   the fair-use keys of `plans:` and the `quota:` section
 *   quota_file.c  the usage file: encode, decode, CRC, write (temp + fsync + rename)
 *   quota.c       the owner: create/destroy, derived plans, per-subscriber usage, the fold,
 *                 top-ups and resets, events, the subscriber-model listener, load/save
 *   quota_ctl.c   commands, `subscriber show` extension, telemetry, metrics, periodic tasks
 * Calls point one way: quota_ctl.c -> quota.c -> quota_file.c, quota_cfg.c -> quota_calc.c.
 * Everything here runs on the control plane (the EAL main lcore); the data path has no
 * quota code at all (see skygate/quota.h).
 */
#ifndef SKY_QUOTA_PRIV_H
#define SKY_QUOTA_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/config.h"
#include "skygate/quota.h"
#include "skygate/subscriber.h"

/* --- quota_calc.c --- */
int quota_month_days(int64_t y, int m);
int64_t quota_days_from_civil(int64_t y, int m, int d);
void quota_civil_from_days(int64_t z, int64_t *y, int *m, int *d);
/** A rate factor "0.95" or "95%", strictly between 0 and 1, in ppm. 0 or -EINVAL. */
int quota_parse_factor(const char *s, uint32_t *ppm);
/** days since 1970-01-01 -> "YYYY-MM-DD" */
void quota_date_str(int32_t day, char *buf, size_t n);

/* --- quota_cfg.c --- */
struct quota_cfg {
	uint64_t save_interval_us; /* quota.save_interval (2 s) */
	bool per_sub_metrics;	   /* quota.per_subscriber_metrics (false) */
	char tz[SKY_QUOTA_TZ_MAX]; /* quota.timezone: the plans' default (UTC) */
};
/** Parse `quota:` and the fair-use keys of every plan into qp[n_plans]. 0 or -1 + err. */
int quota_cfg_parse(const struct sky_cfg *cfg, const struct sky_subs *subs, struct quota_cfg *qc,
		    struct sky_quota_plan *qp, struct sky_cfg_err *err);

/* --- quota.c: the owner's state --- */
#define QUOTA_FOLD_US 1000000 /* the fold's period: at least once a second */

/* events (JSON lines on the control socket's event stream, counted) */
#define SKY_QUOTA_FOREACH_EVENT(_)                                                                 \
	_(WARN80, "quota.used_80")                                                                 \
	_(WARN100, "quota.used_100")                                                               \
	_(THROTTLE_ON, "quota.throttle_on")                                                        \
	_(THROTTLE_OFF, "quota.throttle_off")                                                      \
	_(TOPUP, "quota.topup")                                                                    \
	_(ROLLOVER, "quota.rollover")                                                              \
	_(RESET, "quota.reset")                                                                    \
	_(SET, "quota.set")

enum quota_event {
#define QUOTA_EV_ENUM(n, s) QUOTA_EV_##n,
	SKY_QUOTA_FOREACH_EVENT(QUOTA_EV_ENUM)
#undef QUOTA_EV_ENUM
		QUOTA_EV_MAX
};
extern const char *const quota_event_names[QUOTA_EV_MAX];

/* one subscriber's usage (control path only), by subscriber idx */
struct quota_sub {
	uint32_t id;	   /* operator id; 0 = slot unused */
	uint16_t plan;	   /* the subscriber's own plan when last seen */
	uint8_t alerts;	   /* sent this period: bit 0 = 80 %, bit 1 = 100 % */
	uint8_t tracked;   /* his plan has an allowance */
	uint8_t published; /* quota state last given to the model */
	int eff_plan;	   /* override applied to the model, -1 = his own plan, -2 = not known */
	uint64_t used, credit;
	int64_t period_start, period_end;
	int32_t anchor_day;
	uint64_t last_raw; /* counted bytes in the counters at the last fold */
	struct sky_quota_decision d;
};

/* an entry of the usage file (also usage kept for ids the table does not hold now) */
struct quota_rec {
	uint32_t id;
	int32_t anchor_day;
	uint64_t used, credit;
	int64_t period_start, period_end;
	uint8_t alerts;
	uint8_t taken; /* parked only: adopted by a subscriber since (not in the file) */
};

/* per plan aggregates, made by the fold (telemetry reads them under tel_lock) */
struct quota_agg {
	uint64_t subs, under, over, throttled, used, credit;
};

struct sky_quota {
	struct sky_subs *subs;
	struct quota_cfg cfg;
	unsigned int n_plans; /* configured plans (derived ones come after) */
	struct sky_quota_plan qp[SKY_MAX_PLANS];
	uint64_t cfg_allowance[SKY_MAX_PLANS]; /* as configured (0 = none): `plan set` changes */
	/* per plan: the local minute at Unix second min_at, and the period [p_start, p_end) of
	 * anchor p_anchor: one time-zone computation per plan and second, not per subscriber */
	int64_t min_at[SKY_MAX_PLANS];
	int min_val[SKY_MAX_PLANS];
	int32_t day_val[SKY_MAX_PLANS]; /* and the local date then */
	int64_t p_start[SKY_MAX_PLANS], p_end[SKY_MAX_PLANS];
	int32_t p_anchor[SKY_MAX_PLANS];
	/* derived plans of plan i: graded row g -> grade_plan[i][g], peak -> peak_plan[i] */
	int grade_plan[SKY_MAX_PLANS][SKY_QUOTA_MAX_GRADES];
	int peak_plan[SKY_MAX_PLANS];
	int base_of[SKY_MAX_PLANS]; /* a derived plan's base, -1 for the configured ones */
	bool any;		    /* some plan has an allowance */
	uint32_t cap;
	struct quota_sub *sub;	  /* [cap] */
	struct quota_rec *parked; /* usage of ids not in the table now (file, deleted) */
	size_t n_parked, cap_parked;
	size_t n_sorted;   /* parked[0, n_sorted) is sorted by id; later ones were appended */
	uint64_t seq;	   /* last journaled quota change applied (the file holds it) */
	uint64_t *raw_tmp; /* [sky_subs_stride] counters of one subscriber */
	char path[4096];   /* STATE_DIR/usage, "" = not durable */
	int64_t last_fold;
	uint64_t events[QUOTA_EV_MAX];
	uint64_t folds, fold_us_last, saves, save_errors, save_us_last;
	int64_t last_save; /* Unix seconds of the last good save */
	char last_save_err[256];
	struct quota_agg agg[SKY_MAX_PLANS];
	void (*on_destroy)(struct sky_quota *q); /* set by sky_quota_register (quota_ctl.c) */
	bool lock_ready;
	pthread_mutex_t tel_lock; /* agg, events and the fold/save figures for telemetry */
};

/** Re-evaluate subscriber idx now (after a fold, a top-up, a set): decision, override,
 *  events. */
void quota_apply(struct sky_quota *q, uint32_t idx, int64_t now);
/** Ensure the slot of subscriber idx matches info (new id: adopt parked usage or start);
 *  returns the slot, NULL when his plan has no allowance. */
struct quota_sub *quota_slot(struct sky_quota *q, const struct sky_sub_info *info, int64_t now);
/** `plan set NAME allowance=SIZE|none`: check (apply 0) or apply. 0 or -1 with err. */
int quota_plan_allowance(struct sky_quota *q, unsigned int plan, const char *value, int apply,
			 char *err, size_t errlen);
/** Give every subscriber of the table his slot (usage parked under his id, or new). */
void quota_adopt_all(struct sky_quota *q);
/** Add, reset or set the usage of subscriber id. 0 or -errno with err. */
int quota_topup(struct sky_quota *q, uint32_t id, uint64_t bytes, int64_t now, char *err,
		size_t errlen);
int quota_reset(struct sky_quota *q, uint32_t id, int64_t now, char *err, size_t errlen);
/** used/credit/anchor: NULL = unchanged. */
int quota_set(struct sky_quota *q, uint32_t id, const uint64_t *used, const uint64_t *credit,
	      const int32_t *anchor, int64_t now, char *err, size_t errlen);
/** Write the usage file now (fold first). 0 or -1 with err. */
int quota_save(struct sky_quota *q, char *err, size_t errlen);
/** Unix seconds now (CLOCK_REALTIME). */
int64_t quota_now(void);
/** Subscriber-model listener (registered by quota_ctl.c). */
void quota_listener(void *arg, enum sky_subs_event ev, uint32_t index,
		    const struct sky_sub_info *info);

/* --- quota_file.c: the usage file --- */
/*
 * Layout (little endian): "SKYUSAGE" (8), version u32 = 1, count u32, seq u64, saved_at
 * i64, then count records of 48 bytes {id u32, anchor_day i32, used u64, credit u64,
 * period_start i64, period_end i64, alerts u8, 7 zero bytes}, then CRC-32 (u32) of all
 * the bytes before it. Bound: 64 + 48 * count bytes, count <= QUOTA_FILE_MAX_RECS.
 */
#define QUOTA_FILE_MAX_RECS (4u * 1024 * 1024)
/** Write recs to path atomically (path.tmp, fsync, rename, fsync the directory). 0 or -1. */
int quota_file_write(const char *path, const struct quota_rec *recs, size_t n, uint64_t seq,
		     int64_t saved_at, char *err, size_t errlen);
/** Read path: 0 with *recs (malloc'd), *n, *seq; -ENOENT when missing; another -errno
 *  with err naming the file, the offset and what is wrong. */
int quota_file_read(const char *path, struct quota_rec **recs, size_t *n, uint64_t *seq, char *err,
		    size_t errlen);

#endif /* SKY_QUOTA_PRIV_H */
