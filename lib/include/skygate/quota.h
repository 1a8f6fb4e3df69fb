/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Fair use: volume allowances per plan, per-subscriber usage, and what happens over them
 * (a throttle plan or a graded rate cut), peak-hour priority for light users, top-ups,
 * period rollover in the operator's time zone, and durable usage.
 *
 * Who computes what:
 *   data path   nothing of its own: usage is the per-worker per-subscriber byte counters
 *               that sky_subs_account_burst() already keeps (by direction and class)
 *   control     sky_quota_fold() (every second, sky_periodic) sums the counters of the
 *               subscribers whose plan has an allowance, adds the deltas that count
 *               (directions counted, classes not zero-rated, outside uncounted windows),
 *               rolls periods over, decides each subscriber's effective plan and applies
 *               it through the subscriber model (sky_subs_set_plan_override: the record's
 *               plan word, the same path as `subscriber set ... plan=`, queued packets
 *               kept). Graded factors and the peak boost are plans derived from the base
 *               plan ("gold~0.95", "gold~peak"), made at create time and kept in step with
 *               the base plan when `plan set` changes it.
 *   durable     the usage file STATE_DIR/usage (CRC-checked, temp + fsync + rename) is
 *               written every quota.save_interval (2 s) and at stop, and loaded at start.
 *               A kill -9 loses at most save_interval + the fold interval (1 s) of counted
 *               usage; a corrupt file refuses the start (`skygate --reset-usage` moves it
 *               aside and starts from zero, on the operator's word).
 *
 * Time is a parameter: every function taking `now` takes Unix seconds (UTC); local
 * times are computed in the plan's time zone (tz database: /usr/share/zoneinfo), so DST,
 * month lengths and leap days follow the calendar.
 *
 * Units: bytes, seconds, shares in parts per million (ppm, 1000000 = 100 %).
 */
#ifndef SKYGATE_QUOTA_H
#define SKYGATE_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/config.h"
#include "skygate/subscriber.h"

#define SKY_QUOTA_MAX_WINDOWS 8 /* uncounted windows of a plan */
#define SKY_QUOTA_MAX_GRADES 8	/* rows of a graded table */
#define SKY_QUOTA_TZ_MAX 64	/* time zone name, NUL included */
#define SKY_QUOTA_PPM 1000000u

enum sky_quota_period {
	SKY_QUOTA_MONTHLY, /* on day `day` of each month, 00:00 local (clamped to month end) */
	SKY_QUOTA_EVERY,   /* every `days` days from the subscriber's anchor date, 00:00 local */
	SKY_QUOTA_DAILY,   /* 00:00 local each day */
};

/* A subscriber's quota state (none, under, over, throttled) is enum sky_quota_state of
 * skygate/subscriber.h: the model carries it into sky_meta and the policy context. */

/** A local time-of-day window [start, end) in minutes since 00:00; end < start wraps
 *  midnight ("22:00-06:00"); start == end is refused at parse time. */
struct sky_quota_window {
	uint16_t start_min, end_min;
};

struct sky_quota_grade {
	uint32_t over_ppm;   /* from this overage share of the allowance on (5 % = 50000) */
	uint32_t factor_ppm; /* the plan's rates times this (0.95 = 950000), 1..999999 */
};

/** A plan's fair-use terms (config keys under plans.NAME, see the README). */
struct sky_quota_plan {
	bool on;		  /* allowance set */
	uint64_t allowance_bytes; /* per period, > 0 */
	uint8_t period;		  /* enum sky_quota_period */
	uint8_t day;		  /* MONTHLY: 1..31 */
	uint16_t days;		  /* EVERY: 1..366 */
	char tz[SKY_QUOTA_TZ_MAX];
	bool count_up, count_down;
	uint32_t uncounted_classes; /* bit c: class c is not counted */
	unsigned int n_windows;
	struct sky_quota_window uncounted[SKY_QUOTA_MAX_WINDOWS];
	int throttle_plan; /* over: plan index, -1 = none */
	unsigned int n_grades;
	struct sky_quota_grade grades[SKY_QUOTA_MAX_GRADES]; /* over_ppm ascending */
	bool peak;
	struct sky_quota_window peak_window;
	uint32_t peak_under_ppm; /* usage share under which the peak weight applies */
	uint32_t peak_weight;	 /* weight multiplier, 2..1000 */
};

/* --- pure logic (no EAL, no state: the unit tests drive time) --- */

/**
 * The period holding `now` for plan qp: [*start, *end) in Unix seconds. anchor_day: the
 * subscriber's anchor date for SKY_QUOTA_EVERY as days since 1970-01-01 (a local date),
 * ignored otherwise. 0, or -EINVAL (unknown time zone, now before the anchor's epoch).
 */
int sky_quota_period_bounds(const struct sky_quota_plan *qp, int32_t anchor_day, int64_t now,
			    int64_t *start, int64_t *end);
/** Local minute of the day (0..1439) and local date (days since 1970-01-01) of now in tz.
 *  0 or -EINVAL. */
int sky_quota_local(const char *tz, int64_t now, int *minute, int32_t *day);
/** minute (0..1439) lies in window w. */
bool sky_quota_in_window(const struct sky_quota_window *w, int minute);
/** Deltas at local minute `minute` are not counted (an uncounted window holds it). */
bool sky_quota_uncounted_now(const struct sky_quota_plan *qp, int minute);
/** Class mask of what counts: directions (bit 0 up, bit 1 down) are the plan's. */

/** What the control plane applies to a subscriber. */
struct sky_quota_decision {
	uint8_t state;	     /* enum sky_quota_state */
	int8_t grade;	     /* graded row in force, -1 = none */
	bool throttle;	     /* on the throttle plan */
	bool peak;	     /* peak weight in force */
	uint32_t used_ppm;   /* used / (allowance + credit), capped at 10x */
	uint32_t factor_ppm; /* rate factor in force (1000000 = none) */
};
/**
 * Decide for usage `used` against allowance + credit at local minute `minute`: over it,
 * the throttle plan or the graded row reached (the highest over_ppm <= overage share);
 * under it, the peak weight inside the peak window when the usage share is below
 * peak_under_ppm.
 */
struct sky_quota_decision sky_quota_decide(const struct sky_quota_plan *qp, uint64_t used,
					   uint64_t credit, int minute);

/** "02:00-07:00" -> window; 0 or -EINVAL. */
int sky_quota_parse_window(const char *s, struct sky_quota_window *w);
/** "monthly@1", "monthly" (= @1), "every 4w", "every 30d", "daily"; 0 or -EINVAL. */
int sky_quota_parse_period(const char *s, struct sky_quota_plan *qp);
/** "5%", "12.5%", "0.05%" -> ppm (exact to 1 ppm, at most 10000 %); 0 or -EINVAL. */
int sky_quota_parse_share(const char *s, uint32_t *ppm);
/** "YYYY-MM-DD" -> days since 1970-01-01; 0 or -EINVAL. */
int sky_quota_parse_date(const char *s, int32_t *day);
/** A time zone name the tz database holds ("UTC", "Europe/Paris"); 0 or -EINVAL. */
int sky_quota_check_tz(const char *tz);

/* --- the daemon's module --- */
struct sky_quota;

/**
 * Parse the fair-use keys of `plans:` and `quota:` (save_interval, per_subscriber_metrics)
 * and make the derived plans in the subscriber model (call after sky_subs_create, before
 * the shaper is created). NULL with err on a bad value ("FILE:LINE: plans.gold.allowance:
 * ..."). A config without any allowance gives a module that does nothing.
 */
struct sky_quota *sky_quota_create(const struct sky_cfg *cfg, struct sky_subs *subs,
				   struct sky_cfg_err *err);
/** Commands (quota ...), `subscriber show` extension, listener, periodic fold and save,
 *  telemetry /skygate/quota, metrics. */
int sky_quota_register(struct sky_quota *q);
/**
 * Load STATE_DIR/usage (call after the journal is opened, before its replay). A missing
 * file is a first start. A damaged one fails with err naming the file and the way out,
 * unless reset: then it is moved aside (usage.damaged-<time>) and usage starts at zero.
 * 0 or -1.
 */
int sky_quota_load(struct sky_quota *q, const char *state_dir, bool reset, char *err,
		   size_t errlen);
/** Fold the counters and write the usage file now (the daemon's stop, after the workers
 *  stopped). 0 or -1 with err. */
int sky_quota_stop(struct sky_quota *q, char *err, size_t errlen);
void sky_quota_destroy(struct sky_quota *q);

/** Fold once at Unix time now (what the periodic task does; tests call it). */
void sky_quota_fold(struct sky_quota *q, int64_t now);

/** A subscriber's usage as the control plane sees it. */
struct sky_quota_usage {
	uint64_t used_bytes;
	uint64_t credit_bytes;	  /* top-ups this period */
	uint64_t allowance_bytes; /* the plan's */
	int64_t period_start, period_end;
	int32_t anchor_day;
	struct sky_quota_decision d;
	int eff_plan; /* plan index in force */
};
/** -ENOENT (no such subscriber), -ENODATA (his plan has no allowance). */
int sky_quota_usage(const struct sky_quota *q, uint32_t id, struct sky_quota_usage *out);
/** The state a policy reads (SKY_QUOTA_NONE when no allowance). */
enum sky_quota_state sky_quota_state_of(const struct sky_quota *q, uint32_t idx);

/* --- cluster mode: usage snapshots per beam (lib/cluster keeps them in etcd) --- */

/** One subscriber's usage in a snapshot: what the usage file holds of him. */
struct sky_quota_snap {
	uint32_t id;
	int32_t anchor_day;
	uint64_t used, credit;
	int64_t period_start, period_end;
	uint8_t alerts; /* bit 0: 80 % sent this period, bit 1: 100 % */
	uint16_t beam;	/* his beam (index) now: not part of the snapshot */
};
/**
 * Fold at now, then the usage of every subscriber with an allowance and some usage or
 * credit this period: *out (malloc'd; by beam, heaviest first within a beam), *n. One
 * pass over the table. 0, -ENODATA (no plan has an allowance: nothing to keep), -ENOMEM.
 */
int sky_quota_usage_all(struct sky_quota *q, int64_t now, struct sky_quota_snap **out, size_t *n);
/**
 * Take a snapshot's record for subscriber r->id (cluster takeover of his beam): his
 * counters are folded first (what this node counted before is dropped: the record is
 * the owner's count), then, when the record's period has not ended at now, its usage
 * with its period, anchor and alerts (take_used), and its top-ups (take_credit). 0, -ENOENT (no
 * such subscriber here), -ENODATA (no allowance), -ESTALE (the record's period is over).
 */
int sky_quota_adopt(struct sky_quota *q, const struct sky_quota_snap *r, bool take_used,
		    bool take_credit, int64_t now);
/** quota.save_interval in microseconds (also the cluster's snapshot interval). */
uint64_t sky_quota_save_interval_us(const struct sky_quota *q);

#endif /* SKYGATE_QUOTA_H */
