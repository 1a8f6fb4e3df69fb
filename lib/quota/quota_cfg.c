/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fair-use keys of `plans:` (the subscriber model accepts them, SKY_PLAN_EXTRA_KEYS,
 * and leaves their checks here) and the `quota:` section. Control path only.
 *
 *   plans: NAME:
 *     allowance: SIZE            bytes per period (50GB), > 0; the other keys need it
 *     period: monthly@D | monthly | daily | every Nw | every Nd     (default monthly@1)
 *                                monthly@31 is the month's last day in shorter months;
 *                                every N from the subscriber's anchor date (`quota set
 *                                SUB anchor=YYYY-MM-DD`, default the day he was first seen)
 *     timezone: Europe/Paris     tz database name (default quota.timezone, UTC)
 *     count: [up, down]          directions counted (default both)
 *     uncounted: ["02:00-07:00"] local windows whose traffic is not counted (at most 8)
 *     uncounted_classes: [bulk]  classes not counted
 *     over: { throttle_plan: NAME }                 over the allowance: that plan, or
 *     over: { graded: [[5%, 0.95], [200%, 0.05]] }  rates x factor from an overage share on
 *                                (at most 8 rows, shares ascending, factors 0 < f < 1)
 *     peak: { window: "17:00-22:00", under_share: 50%, weight: 4 }
 *                                in the window, subscribers under that share of their
 *                                allowance get weight x N on a congested beam
 *   quota: { save_interval: 2s, timezone: UTC, per_subscriber_metrics: false }
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "quota_priv.h"

static int
windows(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
	struct sky_quota_plan *qp)
{
	if (n == NULL)
		return 0;
	if (sky_cfg_type(n) != SKY_CFG_SEQ)
		return sky_cfg_fail(err, cfg, n, "expected a list of \"HH:MM-HH:MM\" windows");
	if (sky_cfg_len(n) > SKY_QUOTA_MAX_WINDOWS)
		return sky_cfg_fail(err, cfg, n, "%zu windows, at most %d", sky_cfg_len(n),
				    SKY_QUOTA_MAX_WINDOWS);
	for (size_t i = 0; i < sky_cfg_len(n); i++) {
		const struct sky_cfg_node *v = sky_cfg_at(n, i);
		const char *s;

		if (sky_cfg_as_str(err, cfg, v, &s) < 0)
			return -1;
		if (sky_quota_parse_window(s, &qp->uncounted[i]) < 0)
			return sky_cfg_fail(err, cfg, v,
					    "'%s': expected a local time window \"HH:MM-HH:MM\" "
					    "(00:00..24:00, start != end)",
					    s);
	}
	qp->n_windows = (unsigned int)sky_cfg_len(n);
	return 0;
}

static int
over(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *o,
     const struct sky_subs *subs, unsigned int self, struct sky_quota_plan *qp)
{
	static const char *const over_keys[] = {"throttle_plan", "graded", NULL};
	const struct sky_cfg_node *g;
	const char *tp = NULL;

	if (o == NULL)
		return 0;
	if (sky_cfg_check_keys(err, cfg, o, over_keys) < 0 ||
	    sky_cfg_get_str(err, cfg, o, "throttle_plan", false, &tp) < 0)
		return -1;
	g = sky_cfg_get(o, "graded");
	if (tp != NULL && g != NULL)
		return sky_cfg_fail(err, cfg, o, "throttle_plan or graded, not both");
	if (tp != NULL) {
		int i = sky_subs_plan_index(subs, tp);

		if (i < 0)
			return sky_cfg_fail(err, cfg, sky_cfg_get(o, "throttle_plan"),
					    "unknown plan '%s'", tp);
		if ((unsigned int)i == self)
			return sky_cfg_fail(err, cfg, sky_cfg_get(o, "throttle_plan"),
					    "a plan cannot throttle to itself");
		qp->throttle_plan = i;
		return 0;
	}
	if (g == NULL)
		return sky_cfg_fail(err, cfg, o,
				    "expected throttle_plan: NAME or graded: "
				    "[[SHARE, FACTOR], ...]");
	if (sky_cfg_type(g) != SKY_CFG_SEQ || sky_cfg_len(g) == 0)
		return sky_cfg_fail(err, cfg, g,
				    "expected a list of [OVERAGE_SHARE, RATE_FACTOR] rows, e.g. "
				    "[[5%%, 0.95], [200%%, 0.05]]");
	if (sky_cfg_len(g) > SKY_QUOTA_MAX_GRADES)
		return sky_cfg_fail(err, cfg, g, "%zu rows, at most %d", sky_cfg_len(g),
				    SKY_QUOTA_MAX_GRADES);
	for (size_t i = 0; i < sky_cfg_len(g); i++) {
		const struct sky_cfg_node *row = sky_cfg_at(g, i);
		struct sky_quota_grade *gr = &qp->grades[i];
		const char *a, *b;

		if (sky_cfg_type(row) != SKY_CFG_SEQ || sky_cfg_len(row) != 2)
			return sky_cfg_fail(
				err, cfg, row,
				"expected [OVERAGE_SHARE, RATE_FACTOR], e.g. [5%%, 0.95]");
		if (sky_cfg_as_str(err, cfg, sky_cfg_at(row, 0), &a) < 0 ||
		    sky_cfg_as_str(err, cfg, sky_cfg_at(row, 1), &b) < 0)
			return -1;
		if (sky_quota_parse_share(a, &gr->over_ppm) < 0)
			return sky_cfg_fail(
				err, cfg, row,
				"overage share '%s': expected a percentage (5%%, 12.5%%)", a);
		if (quota_parse_factor(b, &gr->factor_ppm) < 0)
			return sky_cfg_fail(
				err, cfg, row,
				"rate factor '%s': expected 0 < factor < 1 (0.95 or 95%%)", b);
		if (i > 0 && gr->over_ppm <= qp->grades[i - 1].over_ppm)
			return sky_cfg_fail(err, cfg, row,
					    "overage shares must ascend (row %zu after row %zu)",
					    i + 1, i);
	}
	qp->n_grades = (unsigned int)sky_cfg_len(g);
	return 0;
}

static int
peak(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *p,
     struct sky_quota_plan *qp)
{
	static const char *const peak_keys[] = {"window", "under_share", "weight", NULL};
	const char *w, *u;
	uint64_t wt;

	if (p == NULL)
		return 0;
	if (sky_cfg_check_keys(err, cfg, p, peak_keys) < 0 ||
	    sky_cfg_get_str(err, cfg, p, "window", true, &w) < 0 ||
	    sky_cfg_get_str(err, cfg, p, "under_share", true, &u) < 0 ||
	    sky_cfg_get_u64(err, cfg, p, "weight", true, 2, 1000, &wt) < 0)
		return -1;
	if (sky_quota_parse_window(w, &qp->peak_window) < 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(p, "window"),
				    "'%s': expected a local time window \"HH:MM-HH:MM\"", w);
	if (sky_quota_parse_share(u, &qp->peak_under_ppm) < 0 || qp->peak_under_ppm == 0 ||
	    qp->peak_under_ppm > SKY_QUOTA_PPM)
		return sky_cfg_fail(err, cfg, sky_cfg_get(p, "under_share"),
				    "'%s': expected a share of the allowance, 0%% < share <= 100%%",
				    u);
	qp->peak = true;
	qp->peak_weight = (uint32_t)wt;
	return 0;
}

static int
plan_terms(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *p,
	   const struct sky_subs *subs, unsigned int self, const char *def_tz,
	   struct sky_quota_plan *qp)
{
	static const char *const dirs[] = {"up", "down", NULL};
	static const char *const extra[] = {SKY_PLAN_EXTRA_KEYS, NULL};
	const struct sky_cfg_node *n;
	const char *s;

	memset(qp, 0, sizeof(*qp));
	qp->throttle_plan = -1;
	if (sky_cfg_get(p, "allowance") == NULL) {
		for (unsigned int i = 0; extra[i] != NULL; i++)
			if (sky_cfg_get(p, extra[i]) != NULL)
				return sky_cfg_fail(err, cfg, sky_cfg_get(p, extra[i]),
						    "needs an allowance (plans.%s.allowance)",
						    sky_subs_plan(subs, self).name);
		return 0;
	}
	if (sky_cfg_get_size(err, cfg, p, "allowance", true, &qp->allowance_bytes) < 0)
		return -1;
	if (qp->allowance_bytes == 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(p, "allowance"),
				    "must be > 0 (e.g. 50GB)");
	qp->on = true;
	qp->period = SKY_QUOTA_MONTHLY;
	qp->day = 1;
	s = NULL;
	if (sky_cfg_get_str(err, cfg, p, "period", false, &s) < 0)
		return -1;
	if (s != NULL && sky_quota_parse_period(s, qp) < 0)
		return sky_cfg_fail(
			err, cfg, sky_cfg_get(p, "period"),
			"'%s': expected monthly@DAY (1..31), monthly, daily, every Nw or "
			"every Nd (N days <= 366)",
			s);
	s = def_tz;
	if (sky_cfg_get_str(err, cfg, p, "timezone", false, &s) < 0)
		return -1;
	if (sky_quota_check_tz(s) < 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(p, "timezone"),
				    "'%s': not a time zone of the tz database "
				    "(/usr/share/zoneinfo, e.g. Europe/Paris, UTC)",
				    s);
	snprintf(qp->tz, sizeof(qp->tz), "%s", s);
	n = sky_cfg_get(p, "count");
	if (n == NULL) {
		qp->count_up = qp->count_down = true;
	} else {
		if (sky_cfg_type(n) != SKY_CFG_SEQ || sky_cfg_len(n) == 0)
			return sky_cfg_fail(err, cfg, n,
					    "expected a list of directions [up, down]");
		for (size_t i = 0; i < sky_cfg_len(n); i++) {
			unsigned int d;

			if (sky_cfg_as_enum(err, cfg, sky_cfg_at(n, i), dirs, &d) < 0)
				return -1;
			*(d == 0 ? &qp->count_up : &qp->count_down) = true;
		}
	}
	if (windows(err, cfg, sky_cfg_get(p, "uncounted"), qp) < 0)
		return -1;
	n = sky_cfg_get(p, "uncounted_classes");
	if (n != NULL) {
		if (sky_cfg_type(n) != SKY_CFG_SEQ)
			return sky_cfg_fail(err, cfg, n, "expected a list of class names");
		for (size_t i = 0; i < sky_cfg_len(n); i++) {
			int c;

			if (sky_cfg_as_str(err, cfg, sky_cfg_at(n, i), &s) < 0)
				return -1;
			c = sky_subs_class_index(subs, s);
			if (c < 0)
				return sky_cfg_fail(err, cfg, sky_cfg_at(n, i),
						    "unknown class '%s'", s);
			qp->uncounted_classes |= 1u << c;
		}
	}
	if (over(err, cfg, sky_cfg_get(p, "over"), subs, self, qp) < 0 ||
	    peak(err, cfg, sky_cfg_get(p, "peak"), qp) < 0)
		return -1;
	return 0;
}

int
quota_cfg_parse(const struct sky_cfg *cfg, const struct sky_subs *subs, struct quota_cfg *qc,
		struct sky_quota_plan *qp, struct sky_cfg_err *err)
{
	static const char *const quota_keys[] = {"save_interval", "timezone",
						 "per_subscriber_metrics", NULL};
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, "quota");
	const struct sky_cfg_node *plans = sky_cfg_get(cfg->root, "plans");
	const char *tz = "UTC";

	qc->save_interval_us = 2000000;
	qc->per_sub_metrics = false;
	if (sky_cfg_check_keys(err, cfg, sec, quota_keys) < 0 ||
	    sky_cfg_get_time(err, cfg, sec, "save_interval", false, &qc->save_interval_us) < 0 ||
	    sky_cfg_get_bool(err, cfg, sec, "per_subscriber_metrics", false, &qc->per_sub_metrics) <
		    0 ||
	    sky_cfg_get_str(err, cfg, sec, "timezone", false, &tz) < 0)
		return -1;
	if (qc->save_interval_us < 100000 || qc->save_interval_us > 3600000000ULL)
		return sky_cfg_fail(err, cfg, sky_cfg_get(sec, "save_interval"),
				    "must be 100ms..1h (it bounds the usage a crash can lose)");
	if (sky_quota_check_tz(tz) < 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(sec, "timezone"),
				    "'%s': not a time zone of the tz database "
				    "(/usr/share/zoneinfo, e.g. Europe/Paris, UTC)",
				    tz);
	snprintf(qc->tz, sizeof(qc->tz), "%s", tz);
	for (unsigned int i = 0; i < sky_subs_n_plans(subs); i++) {
		const struct sky_cfg_node *p = sky_cfg_get(plans, sky_subs_plan(subs, i).name);

		if (plan_terms(err, cfg, p, subs, i, qc->tz, &qp[i]) < 0)
			return -1;
	}
	return 0;
}
