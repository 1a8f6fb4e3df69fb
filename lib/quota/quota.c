/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fair-use module's owner: derived plans, per-subscriber usage (by subscriber idx,
 * plus usage "parked" for ids the table does not hold now: read from the usage file
 * before the journal re-adds them, or deleted), the fold, decisions and overrides, top-ups
 * and resets, events, and the usage file's load and save. Control path only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "quota_priv.h"

const char *const quota_event_names[QUOTA_EV_MAX] = {
#define QUOTA_EV_NAME(n, s) s,
	SKY_QUOTA_FOREACH_EVENT(QUOTA_EV_NAME)
#undef QUOTA_EV_NAME
};

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* the quota state the data path carries into the policy context (subscriber model): one
 * byte store when it changes (the setter takes no lock: a listener may call it) */
static void
state_out(struct sky_quota *q, uint32_t idx, enum sky_quota_state st)
{
	struct quota_sub *s = &q->sub[idx];

	if (s->id != 0 && s->published != (uint8_t)st &&
	    sky_subs_set_quota_state(q->subs, s->id, (uint8_t)st) == 0)
		s->published = (uint8_t)st;
}

int64_t
quota_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* --- derived plans --- */

static void
scale_plan(const struct sky_plan *b, uint32_t factor_ppm, struct sky_plan *p)
{
	*p = *b;
	p->down_bps = b->down_bps * factor_ppm / SKY_QUOTA_PPM;
	p->up_bps = b->up_bps * factor_ppm / SKY_QUOTA_PPM;
	p->down_bps = p->down_bps ? p->down_bps : 1;
	p->up_bps = p->up_bps ? p->up_bps : 1;
	p->weight = (uint32_t)((uint64_t)b->weight * factor_ppm / SKY_QUOTA_PPM);
	p->weight = p->weight ? p->weight : 1;
}

/* the value of derived plan d (a graded row or the peak plan of its base) */
static void
derived_value(const struct sky_quota *q, unsigned int d, struct sky_plan *p)
{
	int b = q->base_of[d];
	const struct sky_quota_plan *qp = &q->qp[b];
	struct sky_plan base = sky_subs_plan(q->subs, (unsigned int)b);
	char name[SKY_NAME_MAX];

	snprintf(name, sizeof(name), "%s", sky_subs_plan(q->subs, d).name);
	if (q->peak_plan[b] == (int)d) {
		uint64_t w = (uint64_t)base.weight * qp->peak_weight;

		*p = base;
		p->weight = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
	} else {
		for (unsigned int g = 0; g < qp->n_grades; g++)
			if (q->grade_plan[b][g] == (int)d)
				scale_plan(&base, qp->grades[g].factor_ppm, p);
	}
	memcpy(p->name, name, sizeof(p->name));
}

static int
derive(struct sky_quota *q, const struct sky_cfg *cfg, unsigned int b, const char *suffix,
       struct sky_plan *p, struct sky_cfg_err *err)
{
	const struct sky_cfg_node *n = sky_cfg_get(sky_cfg_get(cfg->root, "plans"), p->name);
	char e[256];
	int i;

	if (strlen(p->name) + 1 + strlen(suffix) >= SKY_NAME_MAX)
		return sky_cfg_fail(err, cfg, n,
				    "plan name too long for its fair-use plan '%s~%s' (at most %d "
				    "characters in all)",
				    p->name, suffix, SKY_NAME_MAX - 1);
	snprintf(p->name + strlen(p->name), SKY_NAME_MAX - strlen(p->name), "~%s", suffix);
	i = sky_subs_plan_add(q->subs, p, e, sizeof(e));
	if (i < 0)
		return sky_cfg_fail(err, cfg, n, "%s", e);
	q->base_of[i] = (int)b;
	return i;
}

static int
make_derived(struct sky_quota *q, const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	for (unsigned int b = 0; b < q->n_plans; b++) {
		const struct sky_quota_plan *qp = &q->qp[b];
		struct sky_plan base = sky_subs_plan(q->subs, b), p;
		char sfx[24];
		int i;

		for (unsigned int g = 0; g < qp->n_grades; g++) {
			uint32_t f = qp->grades[g].factor_ppm;

			scale_plan(&base, f, &p);
			if (f % 10000 == 0)
				snprintf(sfx, sizeof(sfx), "%u%%", f / 10000);
			else
				snprintf(sfx, sizeof(sfx), "%u.%04u%%", f / 10000, f % 10000);
			i = derive(q, cfg, b, sfx, &p, err);
			if (i < 0)
				return -1;
			q->grade_plan[b][g] = i;
		}
		if (qp->peak) {
			uint64_t w = (uint64_t)base.weight * qp->peak_weight;

			p = base;
			p.weight = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
			i = derive(q, cfg, b, "peak", &p, err);
			if (i < 0)
				return -1;
			q->peak_plan[b] = i;
		}
	}
	return 0;
}

struct sky_quota *
sky_quota_create(const struct sky_cfg *cfg, struct sky_subs *subs, struct sky_cfg_err *err)
{
	struct sky_quota *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		sky_cfg_fail(err, cfg, NULL, "quota: out of memory");
		return NULL;
	}
	q->subs = subs;
	q->n_plans = sky_subs_n_plans(subs);
	for (unsigned int i = 0; i < SKY_MAX_PLANS; i++) {
		q->base_of[i] = -1;
		q->peak_plan[i] = -1;
		q->qp[i].throttle_plan = -1;
		for (unsigned int g = 0; g < SKY_QUOTA_MAX_GRADES; g++)
			q->grade_plan[i][g] = -1;
	}
	if (quota_cfg_parse(cfg, subs, &q->cfg, q->qp, err) < 0)
		goto fail;
	for (unsigned int i = 0; i < q->n_plans; i++) {
		q->any |= q->qp[i].on;
		q->cfg_allowance[i] = q->qp[i].on ? q->qp[i].allowance_bytes : 0;
		if (!q->qp[i].on) { /* the terms `plan set NAME allowance=` turns on */
			q->qp[i].period = SKY_QUOTA_MONTHLY;
			q->qp[i].day = 1;
			q->qp[i].count_up = q->qp[i].count_down = true;
			snprintf(q->qp[i].tz, sizeof(q->qp[i].tz), "%s", q->cfg.tz);
		}
	}
	if (make_derived(q, cfg, err) < 0)
		goto fail;
	q->cap = sky_subs_capacity(subs);
	q->sub = calloc(q->cap ? q->cap : 1, sizeof(*q->sub));
	q->raw_tmp = calloc(2 * SKY_MAX_CLASSES, sizeof(uint64_t));
	if (q->sub == NULL || q->raw_tmp == NULL) {
		sky_cfg_fail(err, cfg, NULL, "quota: out of memory for %u subscribers", q->cap);
		goto fail;
	}
	for (uint32_t i = 0; i < q->cap; i++)
		q->sub[i].eff_plan = -1;
	pthread_mutex_init(&q->tel_lock, NULL);
	q->lock_ready = true;
	return q;
fail:
	sky_quota_destroy(q);
	return NULL;
}

void
sky_quota_destroy(struct sky_quota *q)
{
	if (q == NULL)
		return;
	if (q->on_destroy != NULL)
		q->on_destroy(q);
	if (q->lock_ready)
		pthread_mutex_destroy(&q->tel_lock);
	free(q->sub);
	free(q->parked);
	free(q->raw_tmp);
	free(q);
}

/* --- usage --- */

/* counted bytes of subscriber idx under plan terms qp, as the counters hold them now */
static uint64_t
raw_counted(struct sky_quota *q, uint32_t idx, const struct sky_quota_plan *qp)
{
	unsigned int nc = sky_subs_n_classes(q->subs);
	uint64_t sum = 0;

	sky_subs_bytes(q->subs, idx, q->raw_tmp);
	for (unsigned int dir = 0; dir < 2; dir++) {
		if (!(dir == SKY_DIR_UP ? qp->count_up : qp->count_down))
			continue;
		for (unsigned int c = 0; c < nc; c++)
			if (!(qp->uncounted_classes & (1u << c)))
				sum += q->raw_tmp[dir * nc + c];
	}
	return sum;
}

/* the local minute of plan p's time zone at now (cached for the second) */
static int
minute_of(struct sky_quota *q, unsigned int p, int64_t now)
{
	int m = 0;

	int32_t d = (int32_t)(now / 86400);

	if (q->min_at[p] == now && now != 0)
		return q->min_val[p];
	if (sky_quota_local(q->qp[p].tz, now, &m, &d) < 0)
		m = 0;
	q->min_at[p] = now;
	q->min_val[p] = m;
	q->day_val[p] = d;
	return m;
}

/* the local date of plan p's time zone at now (cached with the minute) */
static int32_t
day_of(struct sky_quota *q, unsigned int p, int64_t now)
{
	minute_of(q, p, now);
	return q->day_val[p];
}

/* s's period (his plan s->plan) holding now; the plan's last answer is reused while now is
 * inside it (and, for "every N days", the anchor is the same) */
static void
new_period(struct sky_quota *q, struct quota_sub *s, int64_t now)
{
	const unsigned int p = s->plan;
	const struct sky_quota_plan *qp = &q->qp[p];
	const int32_t anchor = qp->period == SKY_QUOTA_EVERY ? s->anchor_day : 0;

	if (q->p_start[p] <= now && now < q->p_end[p] && q->p_anchor[p] == anchor) {
		s->period_start = q->p_start[p];
		s->period_end = q->p_end[p];
		return;
	}
	if (sky_quota_period_bounds(qp, anchor, now, &s->period_start, &s->period_end) < 0) {
		/* cannot happen with a checked time zone; never leave a period that never ends */
		s->period_start = now;
		s->period_end = now + 86400;
		return;
	}
	q->p_start[p] = s->period_start;
	q->p_end[p] = s->period_end;
	q->p_anchor[p] = anchor;
}

static void
emit(struct sky_quota *q, enum quota_event ev, const struct quota_sub *s, int64_t now)
{
	json_t *o;

	__atomic_fetch_add(&q->events[ev], 1, __ATOMIC_RELAXED);
	o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:I}", "id", (json_int_t)s->id,
		      "plan", sky_subs_plan(q->subs, s->plan).name, "used_bytes",
		      (json_int_t)s->used, "allowance_bytes",
		      (json_int_t)q->qp[s->plan].allowance_bytes, "credit_bytes",
		      (json_int_t)s->credit, "used_ppm", (json_int_t)s->d.used_ppm, "state",
		      sky_quota_state_name(s->d.state), "period_end", (json_int_t)s->period_end,
		      "at_unix", (json_int_t)now);
	/* the stream takes the reference; a full follower queue loses it there (counted) */
	if (o != NULL)
		sky_ctl_event(quota_event_names[ev], o);
}

static int
rec_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct quota_rec *)a)->id, y = ((const struct quota_rec *)b)->id;

	return x < y ? -1 : x > y;
}

/* the parked usage of id not yet adopted, or NULL: a binary search of the sorted part, a
 * scan of what was appended since (deleted subscribers) */
static struct quota_rec *
parked_find(struct sky_quota *q, uint32_t id)
{
	size_t lo = 0, hi = q->n_sorted;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (q->parked[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < q->n_sorted && q->parked[lo].id == id; lo++)
		if (!q->parked[lo].taken)
			return &q->parked[lo];
	for (size_t i = q->n_sorted; i < q->n_parked; i++)
		if (q->parked[i].id == id && !q->parked[i].taken)
			return &q->parked[i];
	return NULL;
}

/* drop what was adopted (and, with expire, records a month past their period: a subscriber
 * coming back after that starts a new period anyway), sort the rest */
static void
parked_tidy(struct sky_quota *q, bool expire, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < q->n_parked; i++) {
		const struct quota_rec *r = &q->parked[i];

		if (r->taken || (expire && r->period_end + 31 * 86400 < now))
			continue;
		q->parked[k++] = *r;
	}
	q->n_parked = k;
	if (k > 1) /* parked is NULL while nothing was ever parked */
		qsort(q->parked, k, sizeof(*q->parked), rec_cmp);
	q->n_sorted = k;
}

struct quota_sub *
quota_slot(struct sky_quota *q, const struct sky_sub_info *info, int64_t now)
{
	struct quota_sub *s;
	const struct sky_quota_plan *qp;

	if (info->idx >= q->cap)
		return NULL;
	s = &q->sub[info->idx];
	qp = &q->qp[info->plan < q->n_plans ? info->plan : 0];
	if (s->id != info->id) {
		memset(s, 0, sizeof(*s));
		s->id = info->id;
		s->eff_plan = -2;    /* whatever plan his record holds: write it */
		s->published = 0xff; /* whatever the model holds: set it */
		s->anchor_day = day_of(q, (unsigned int)(qp - q->qp), now);
		{
			struct quota_rec *r = parked_find(q, info->id);

			if (r != NULL) {
				s->used = r->used;
				s->credit = r->credit;
				s->anchor_day = r->anchor_day;
				s->period_start = r->period_start;
				s->period_end = r->period_end;
				s->alerts = r->alerts;
				r->taken = 1;
			}
		}
		s->plan = info->plan;
		s->tracked = qp->on;
		if (qp->on)
			s->last_raw = raw_counted(q, info->idx, qp);
	}
	if (!qp->on)
		return NULL;
	if (s->period_end == 0)
		new_period(q, s, now);
	return s;
}

void
quota_apply(struct sky_quota *q, uint32_t idx, int64_t now)
{
	struct quota_sub *s = &q->sub[idx];
	const struct sky_quota_plan *qp = &q->qp[s->plan];
	struct sky_quota_decision prev = s->d;
	int eff = -1;

	if (s->id == 0)
		return;
	if (!s->tracked) {
		memset(&s->d, 0, sizeof(s->d));
		s->d.grade = -1;
	} else {
		s->d = sky_quota_decide(qp, s->used, s->credit, minute_of(q, s->plan, now));
		if (s->d.throttle)
			eff = qp->throttle_plan;
		else if (s->d.grade >= 0)
			eff = q->grade_plan[s->plan][s->d.grade];
		else if (s->d.peak)
			eff = q->peak_plan[s->plan];
	}
	if (eff != s->eff_plan && sky_subs_set_plan_override(q->subs, idx, eff) == 0)
		s->eff_plan = eff;
	state_out(q, idx, (enum sky_quota_state)s->d.state);
	if (!s->tracked)
		return;
	if (s->d.used_ppm < 800000)
		s->alerts &= (uint8_t)~1u;
	if (s->d.used_ppm < SKY_QUOTA_PPM)
		s->alerts &= (uint8_t)~2u;
	if (s->d.used_ppm >= 800000 && !(s->alerts & 1)) {
		s->alerts |= 1;
		emit(q, QUOTA_EV_WARN80, s, now);
	}
	if (s->d.used_ppm >= SKY_QUOTA_PPM && !(s->alerts & 2)) {
		s->alerts |= 2;
		emit(q, QUOTA_EV_WARN100, s, now);
	}
	if (s->d.state == SKY_QUOTA_THROTTLED && prev.state != SKY_QUOTA_THROTTLED)
		emit(q, QUOTA_EV_THROTTLE_ON, s, now);
	else if (s->d.state != SKY_QUOTA_THROTTLED && prev.state == SKY_QUOTA_THROTTLED)
		emit(q, QUOTA_EV_THROTTLE_OFF, s, now);
}

/* one subscriber's fold: deltas since the last fold, rollover; minute = local minute in
 * his plan's time zone */
static void
fold_one(struct sky_quota *q, uint32_t idx, int64_t now, int minute)
{
	struct quota_sub *s = &q->sub[idx];
	const struct sky_quota_plan *qp = &q->qp[s->plan];
	uint64_t raw = raw_counted(q, idx, qp);
	/* counters only grow; smaller means they were zeroed (index reused): all is new */
	uint64_t delta = raw >= s->last_raw ? raw - s->last_raw : raw;

	s->last_raw = raw;
	if (now >= s->period_end) {
		new_period(q, s, now);
		s->used = 0;
		s->credit = 0;
		s->alerts = 0;
		emit(q, QUOTA_EV_ROLLOVER, s, now);
	}
	if (!sky_quota_uncounted_now(qp, minute))
		s->used += delta;
}

void
sky_quota_fold(struct sky_quota *q, int64_t now)
{
	int minute[SKY_MAX_PLANS];
	static struct quota_agg agg[SKY_MAX_PLANS];
	uint64_t t0 = mono_us();

	if (!q->any)
		return;
	memset(agg, 0, sizeof(agg));
	for (unsigned int i = 0; i < q->n_plans; i++)
		minute[i] = q->qp[i].on ? minute_of(q, i, now) : 0;
	for (uint32_t idx = 0; idx < q->cap; idx++) {
		struct quota_sub *s = &q->sub[idx];
		struct quota_agg *a = &agg[s->plan];

		if (s->id == 0)
			continue;
		if (!s->tracked)
			continue;
		fold_one(q, idx, now, minute[s->plan]);
		quota_apply(q, idx, now);
		a->subs++;
		a->under += s->d.state == SKY_QUOTA_UNDER;
		a->over += s->d.state == SKY_QUOTA_OVER;
		a->throttled += s->d.state == SKY_QUOTA_THROTTLED;
		a->used += s->used;
		a->credit += s->credit;
	}
	pthread_mutex_lock(&q->tel_lock);
	memcpy(q->agg, agg, sizeof(agg));
	q->folds++;
	q->last_fold = now;
	q->fold_us_last = mono_us() - t0;
	pthread_mutex_unlock(&q->tel_lock);
}

/* --- commands' operations --- */

static struct quota_sub *
find(struct sky_quota *q, uint32_t id, uint32_t *idx, char *err, size_t errlen)
{
	struct sky_sub_info in;
	struct quota_sub *s;

	if (sky_subs_get(q->subs, id, &in) < 0) {
		snprintf(err, errlen, "no subscriber with id %u", id);
		return NULL;
	}
	s = quota_slot(q, &in, quota_now());
	if (s == NULL) {
		snprintf(err, errlen, "subscriber %u: plan '%s' has no allowance", id,
			 sky_subs_plan(q->subs, in.plan).name);
		return NULL;
	}
	*idx = in.idx;
	return s;
}

int
quota_topup(struct sky_quota *q, uint32_t id, uint64_t bytes, int64_t now, char *err, size_t errlen)
{
	uint32_t idx;
	struct quota_sub *s = find(q, id, &idx, err, errlen);

	if (s == NULL)
		return -ENOENT;
	if (s->credit > UINT64_MAX / 2 - bytes) {
		snprintf(err, errlen, "subscriber %u: top-ups would exceed 2^63 bytes", id);
		return -ERANGE;
	}
	fold_one(q, idx, now, minute_of(q, s->plan, now));
	s->credit += bytes;
	quota_apply(q, idx, now);
	emit(q, QUOTA_EV_TOPUP, s, now);
	return 0;
}

int
quota_reset(struct sky_quota *q, uint32_t id, int64_t now, char *err, size_t errlen)
{
	uint32_t idx;
	struct quota_sub *s = find(q, id, &idx, err, errlen);

	if (s == NULL)
		return -ENOENT;
	fold_one(q, idx, now, minute_of(q, s->plan, now));
	s->used = 0;
	s->credit = 0;
	s->alerts = 0;
	quota_apply(q, idx, now);
	emit(q, QUOTA_EV_RESET, s, now);
	return 0;
}

int
quota_set(struct sky_quota *q, uint32_t id, const uint64_t *used, const uint64_t *credit,
	  const int32_t *anchor, int64_t now, char *err, size_t errlen)
{
	uint32_t idx;
	struct quota_sub *s = find(q, id, &idx, err, errlen);

	if (s == NULL)
		return -ENOENT;
	fold_one(q, idx, now, minute_of(q, s->plan, now));
	if (used != NULL)
		s->used = *used;
	if (credit != NULL)
		s->credit = *credit;
	if (anchor != NULL) {
		if (*anchor > (int32_t)(now / 86400 + 1)) {
			snprintf(err, errlen, "subscriber %u: anchor date in the future", id);
			return -EINVAL;
		}
		s->anchor_day = *anchor;
		new_period(q, s, now);
	}
	quota_apply(q, idx, now);
	emit(q, QUOTA_EV_SET, s, now);
	return 0;
}

int
quota_plan_allowance(struct sky_quota *q, unsigned int plan, const char *value, int apply,
		     char *err, size_t errlen)
{
	struct sky_quota_plan *qp = &q->qp[plan];
	uint64_t v = 0;
	int64_t now = quota_now();

	if (plan >= q->n_plans) {
		snprintf(err, errlen, "plan '%s' is made by fair use itself",
			 sky_subs_plan(q->subs, plan).name);
		return -1;
	}
	if (strcmp(value, "none") != 0 && (sky_parse_size(value, &v) < 0 || v == 0)) {
		snprintf(err, errlen, "expected a size > 0 (e.g. 50GB) or none");
		return -1;
	}
	if (!apply)
		return 0;
	qp->on = v != 0;
	qp->allowance_bytes = v;
	q->any |= qp->on;
	/* his slot follows: tracked from now on (counted from now), or no longer */
	for (uint32_t i = 0; i < q->cap; i++) {
		struct quota_sub *s = &q->sub[i];

		if (s->id == 0 || s->plan != plan)
			continue;
		if (qp->on && !s->tracked) {
			s->last_raw = raw_counted(q, i, qp);
			if (s->period_end == 0)
				new_period(q, s, now);
		}
		s->tracked = qp->on;
		quota_apply(q, i, now);
	}
	return 0;
}

int
sky_quota_usage(const struct sky_quota *q, uint32_t id, struct sky_quota_usage *out)
{
	struct sky_sub_info in;
	const struct quota_sub *s;

	if (sky_subs_get(q->subs, id, &in) < 0 || in.idx >= q->cap)
		return -ENOENT;
	s = &q->sub[in.idx];
	if (!q->qp[in.plan].on || s->id != id || !s->tracked)
		return -ENODATA;
	memset(out, 0, sizeof(*out));
	out->used_bytes = s->used;
	out->credit_bytes = s->credit;
	out->allowance_bytes = q->qp[in.plan].allowance_bytes;
	out->period_start = s->period_start;
	out->period_end = s->period_end;
	out->anchor_day = s->anchor_day;
	out->d = s->d;
	out->eff_plan = s->eff_plan >= 0 ? s->eff_plan : in.plan;
	return 0;
}

static int
snap_heavier(const void *a, const void *b)
{
	const struct sky_quota_snap *x = a, *y = b;

	if (x->beam != y->beam)
		return x->beam < y->beam ? -1 : 1;
	if (x->used != y->used)
		return x->used > y->used ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int
sky_quota_usage_all(struct sky_quota *q, int64_t now, struct sky_quota_snap **out, size_t *n)
{
	struct sky_quota_snap *r = NULL;
	size_t k = 0, cap = 0;

	*out = NULL;
	*n = 0;
	if (!q->any)
		return -ENODATA;
	sky_quota_fold(q, now);
	for (uint32_t idx = 0; idx < q->cap; idx++) {
		const struct quota_sub *s = &q->sub[idx];
		struct sky_sub_info in;

		if (s->id == 0 || !s->tracked || (s->used == 0 && s->credit == 0) ||
		    sky_subs_get(q->subs, s->id, &in) < 0)
			continue;
		if (k == cap) {
			struct sky_quota_snap *x = realloc(r, (cap ? cap * 2 : 64) * sizeof(*r));

			if (x == NULL) {
				free(r);
				return -ENOMEM;
			}
			r = x;
			cap = cap ? cap * 2 : 64;
		}
		r[k++] = (struct sky_quota_snap){.id = s->id,
						 .anchor_day = s->anchor_day,
						 .used = s->used,
						 .credit = s->credit,
						 .period_start = s->period_start,
						 .period_end = s->period_end,
						 .alerts = s->alerts,
						 .beam = in.beam};
	}
	if (k > 1)
		qsort(r, k, sizeof(*r), snap_heavier);
	*out = r;
	*n = k;
	return 0;
}

int
sky_quota_adopt(struct sky_quota *q, const struct sky_quota_snap *r, bool take_used,
		bool take_credit, int64_t now)
{
	struct sky_sub_info in;
	struct quota_sub *s;

	if (sky_subs_get(q->subs, r->id, &in) < 0)
		return -ENOENT;
	s = quota_slot(q, &in, now);
	if (s == NULL)
		return -ENODATA;
	/* his counters up to now: counted by the record's node, not by this one */
	fold_one(q, in.idx, now, minute_of(q, s->plan, now));
	if (r->period_end <= now)
		return -ESTALE; /* rolled over since: this period starts at zero */
	if (take_used) {
		/* his period as the record's node counted it (a `quota set anchor=` there) */
		s->period_start = r->period_start;
		s->period_end = r->period_end;
		s->anchor_day = r->anchor_day;
		s->alerts = r->alerts;
		s->used = r->used;
	}
	if (take_credit)
		s->credit = r->credit;
	quota_apply(q, in.idx, now);
	return 0;
}

uint64_t
sky_quota_save_interval_us(const struct sky_quota *q)
{
	return q->cfg.save_interval_us;
}

enum sky_quota_state
sky_quota_state_of(const struct sky_quota *q, uint32_t idx)
{
	return idx < q->cap && q->sub[idx].tracked ? (enum sky_quota_state)q->sub[idx].d.state
						   : SKY_QUOTA_NONE;
}

/* --- the subscriber model's changes --- */

static void
park(struct sky_quota *q, const struct quota_sub *s)
{
	struct quota_rec *r;

	if (s->id == 0 || s->period_end == 0)
		return;
	if (q->n_parked == q->cap_parked) {
		size_t nc = q->cap_parked ? q->cap_parked * 2 : 64;
		struct quota_rec *p = realloc(q->parked, nc * sizeof(*p));

		if (p == NULL) {
			SKY_LOG(ERR, "quota: out of memory: usage of subscriber %u dropped", s->id);
			return;
		}
		q->parked = p;
		q->cap_parked = nc;
	}
	r = &q->parked[q->n_parked++];
	r->taken = 0;
	r->id = s->id;
	r->anchor_day = s->anchor_day;
	r->used = s->used;
	r->credit = s->credit;
	r->period_start = s->period_start;
	r->period_end = s->period_end;
	r->alerts = s->alerts;
}

static int
adopt_cb(void *arg, const struct sky_sub_info *in)
{
	struct sky_quota *q = arg;
	int64_t now = quota_now();

	if (quota_slot(q, in, now) != NULL || (in->idx < q->cap && q->sub[in->idx].id != 0))
		quota_apply(q, in->idx, now);
	return 0;
}

void
quota_adopt_all(struct sky_quota *q)
{
	sky_subs_foreach(q->subs, adopt_cb, q);
}

void
quota_listener(void *arg, enum sky_subs_event ev, uint32_t index, const struct sky_sub_info *info)
{
	struct sky_quota *q = arg;
	int64_t now = quota_now();
	char err[256];

	switch (ev) {
	case SKY_SUBS_EV_PLAN:
		if (index >= q->n_plans)
			return; /* a derived plan: ours */
		for (unsigned int d = q->n_plans; d < sky_subs_n_plans(q->subs); d++) {
			struct sky_plan p;

			if (q->base_of[d] != (int)index)
				continue;
			derived_value(q, d, &p);
			if (sky_subs_plan_update(q->subs, d, &p, err, sizeof(err)) < 0)
				SKY_LOG(ERR, "quota: plan %s not updated: %s", p.name, err);
		}
		return;
	case SKY_SUBS_EV_SUB_ADD:
		adopt_cb(q, info);
		return;
	case SKY_SUBS_EV_SUB_DEL:
		if (index < q->cap) {
			park(q, &q->sub[index]);
			memset(&q->sub[index], 0, sizeof(q->sub[index]));
			q->sub[index].eff_plan = -1;
			state_out(q, index, SKY_QUOTA_NONE);
		}
		return;
	case SKY_SUBS_EV_SUB_SET:
		if (index < q->cap && q->sub[index].id == info->id) {
			struct quota_sub *s = &q->sub[index];

			if (s->tracked)
				fold_one(q, index, now, minute_of(q, s->plan, now));
			s->plan = info->plan;
			s->tracked = q->qp[info->plan].on;
			if (s->tracked)
				s->last_raw = raw_counted(q, index, &q->qp[info->plan]);
			if (s->tracked && s->period_end == 0)
				new_period(q, s, now);
			/* the model wrote his own plan back into the record */
			s->eff_plan = -1;
			quota_apply(q, index, now);
		} else {
			adopt_cb(q, info);
		}
		return;
	case SKY_SUBS_EV_RELOAD:
		for (uint32_t i = 0; i < q->cap; i++) {
			park(q, &q->sub[i]);
			memset(&q->sub[i], 0, sizeof(q->sub[i]));
			q->sub[i].eff_plan = -1;
		}
		parked_tidy(q, false, now); /* sorted: the adoption below searches it */
		quota_adopt_all(q);
		parked_tidy(q, false, now);
		return;
	default:
		return;
	}
}

/* --- the usage file --- */

static int
collect(struct sky_quota *q, struct quota_rec **out, size_t *n)
{
	size_t k = 0, cap = q->n_parked + 64;
	struct quota_rec *r = malloc(cap * sizeof(*r));

	if (r == NULL)
		return -ENOMEM;
	parked_tidy(q, true, quota_now());
	if (q->n_parked > 0)
		memcpy(r, q->parked, q->n_parked * sizeof(*r));
	k = q->n_parked;
	for (uint32_t i = 0; i < q->cap; i++) {
		const struct quota_sub *s = &q->sub[i];

		if (s->id == 0 || s->period_end == 0)
			continue;
		if (k == cap) {
			struct quota_rec *p = realloc(r, cap * 2 * sizeof(*r));

			if (p == NULL) {
				free(r);
				return -ENOMEM;
			}
			r = p;
			cap *= 2;
		}
		r[k].id = s->id;
		r[k].anchor_day = s->anchor_day;
		r[k].used = s->used;
		r[k].credit = s->credit;
		r[k].period_start = s->period_start;
		r[k].period_end = s->period_end;
		r[k].alerts = s->alerts;
		k++;
	}
	*out = r;
	*n = k;
	return 0;
}

int
quota_save(struct sky_quota *q, char *err, size_t errlen)
{
	struct quota_rec *r = NULL;
	size_t n = 0;
	int64_t now = quota_now();
	uint64_t t0 = mono_us();
	int rc;

	if (q->path[0] == '\0' || !q->any)
		return 0;
	sky_quota_fold(q, now);
	if (collect(q, &r, &n) < 0) {
		snprintf(err, errlen, "%s: out of memory", q->path);
		rc = -1;
	} else {
		rc = quota_file_write(q->path, r, n, q->seq, now, err, errlen);
	}
	free(r);
	q->save_us_last = mono_us() - t0;
	if (rc < 0) {
		q->save_errors++;
		snprintf(q->last_save_err, sizeof(q->last_save_err), "%s", err);
		return -1;
	}
	q->saves++;
	q->last_save = now;
	q->last_save_err[0] = '\0';
	return 0;
}

int
sky_quota_stop(struct sky_quota *q, char *err, size_t errlen)
{
	return q == NULL ? 0 : quota_save(q, err, errlen);
}

int
sky_quota_load(struct sky_quota *q, const char *state_dir, bool reset, char *err, size_t errlen)
{
	struct quota_rec *r = NULL;
	size_t n = 0;
	uint64_t seq = 0;
	int64_t now = quota_now();
	int rc;

	if (state_dir == NULL || state_dir[0] == '\0')
		return 0;
	snprintf(q->path, sizeof(q->path), "%s/usage", state_dir);
	rc = quota_file_read(q->path, &r, &n, &seq, err, errlen);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		char aside[4200];

		if (!reset)
			return -1;
		snprintf(aside, sizeof(aside), "%s.damaged-%lld", q->path, (long long)now);
		if (rename(q->path, aside) != 0) {
			snprintf(err, errlen, "%s: could not move it aside to %s: %s", q->path,
				 aside, strerror(errno));
			return -1;
		}
		SKY_LOG(WARNING,
			"quota: usage file damaged, moved to %s; usage starts at zero "
			"(--reset-usage)",
			aside);
		return 0;
	}
	free(q->parked);
	q->parked = r;
	q->n_parked = q->cap_parked = n;
	q->seq = seq;
	parked_tidy(q, false, now);
	/* the slots filled before the file was read take their usage from it (a slot made
	 * anew writes the plan in force again) */
	for (uint32_t i = 0; i < q->cap; i++)
		memset(&q->sub[i], 0, sizeof(q->sub[i]));
	quota_adopt_all(q);
	parked_tidy(q, false, now);
	SKY_LOG(INFO, "quota: usage of %zu subscribers loaded from %s", n, q->path);
	return 0;
}
