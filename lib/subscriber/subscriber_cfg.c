/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The subscriber model: plans and beams (config sections `plans`, `beams`, `subscribers`),
 * their getters and runtime changes, the class getters, and the listeners and validators
 * every change of the model or the table goes through. Control path only.
 *
 *   subscribers: { file: PATH, unknown: drop | { plan: NAME }, capacity: N }
 *     file      CSV (see skygate/subscriber.h), relative to the working directory; absent:
 *               start empty
 *     unknown   what packets of no subscriber get: dropped (default) or a plan
 *               (sub_idx = SKY_SUB_NONE, beam 0)
 *     capacity  most subscribers the process holds (sizes counters, tables and the
 *               shaper's per-subscriber state); default max(rows * 5/4, 4096), at most
 *               2^21 - 2
 *   plans: NAME: { down: RATE, up: RATE, burst: SIZE, down_burst: SIZE, up_burst: SIZE,
 *                  weight: N, class_weights: { CLASS: N } }
 *     down, up     required, > 0
 *     burst        sets down_burst and up_burst; the specific keys win
 *     down_burst   default max(down / 8 * 10 ms, 64 KiB); up_burst likewise from up
 *     weight       share of a congested beam, default down in kbit/s (at least 1)
 *     class_weights  1..65535 per class, default 1
 *   beams: NAME: { down: RATE, up: RATE }   both required, > 0
 *   zones: [NAME, ...]   terminal zones (geofencing: where the OSS places a terminal), ids
 *                        1..n in this order (0 = no zone), at most 255, names unique;
 *                        absent or empty: no zones
 *   classes: see classes.c
 * Every key is checked; unknown keys are errors.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "subscriber_priv.h"

static int
check_name(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *at,
	   const char *what, const char *name)
{
	if (name[0] == '\0' || strlen(name) >= SKY_NAME_MAX)
		return sky_cfg_fail(err, cfg, at, "%s name '%s' must be 1..%d characters", what,
				    name, SKY_NAME_MAX - 1);
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return sky_cfg_fail(err, cfg, at,
					    "%s name '%s': use letters, digits, '_', '-' or '.'",
					    what, name);
	return 0;
}

void
subs_plan_defaults(struct sky_plan *p, const struct plan_x *x)
{
	if (!x->down_burst_set) {
		uint64_t b = p->down_bps / 800; /* bytes in 10 ms */

		p->down_burst_bytes = b > 65536 ? b : 65536;
	}
	if (!x->up_burst_set) {
		uint64_t b = p->up_bps / 800;

		p->up_burst_bytes = b > 65536 ? b : 65536;
	}
	if (!x->weight_set) {
		uint64_t w = p->down_bps / 1000;

		p->weight = w == 0 ? 1 : w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
	}
}

static int
rate_pos(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
	 const char *key, bool req, uint64_t *out)
{
	if (sky_cfg_get_rate(err, cfg, n, key, req, out) < 0)
		return -1;
	if (sky_cfg_get(n, key) != NULL && *out == 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(n, key), "rate must be > 0");
	return 0;
}

static int
size_pos(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
	 const char *key, uint64_t *out, bool *set)
{
	if (sky_cfg_get(n, key) == NULL)
		return 0;
	if (sky_cfg_get_size(err, cfg, n, key, false, out) < 0)
		return -1;
	if (*out == 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(n, key), "burst must be > 0");
	*set = true;
	return 0;
}

/* a required top-level map of NAME: {...} entries, 1..max of them; returns the count or -1 */
static int
named_section(const struct sky_cfg *cfg, struct sky_cfg_err *err, const char *key, size_t max,
	      const struct sky_cfg_node **out)
{
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, key);
	size_t n;

	if (sec == NULL)
		return sky_cfg_fail_missing(err, cfg, cfg->root, key);
	if (sky_cfg_type(sec) != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, sec, "expected a map of %s (NAME: {down, up})", key);
	n = sky_cfg_len(sec);
	if (n == 0)
		return sky_cfg_fail(err, cfg, sec, "no %s", key);
	if (n > max)
		return sky_cfg_fail(err, cfg, sec, "%zu %s, at most %zu", n, key, max);
	*out = sec;
	return (int)n;
}

static int
parse_plans(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	static const char *const keys[] = {
		"down",	    "up",     "burst",	       "down_burst",
		"up_burst", "weight", "class_weights", SKY_PLAN_EXTRA_KEYS,
		NULL};
	const struct sky_cfg_node *sec = NULL;
	int r = named_section(cfg, err, "plans", SKY_MAX_PLANS, &sec);
	size_t n;

	if (r < 0)
		return -1;
	n = (size_t)r;
	for (size_t i = 0; i < n; i++) {
		const struct sky_cfg_node *p = sky_cfg_at(sec, i), *cw;
		const char *name = sky_cfg_key_at(sec, i);
		struct sky_plan *pl = &s->plans[i];
		struct plan_x *x = &s->plan_x[i];
		uint64_t burst = 0, v;
		bool burst_set = false;

		memset(pl, 0, sizeof(*pl));
		memset(x, 0, sizeof(*x));
		if (check_name(err, cfg, p, "plan", name) < 0 ||
		    sky_cfg_check_keys(err, cfg, p, keys) < 0)
			return -1;
		snprintf(pl->name, sizeof(pl->name), "%s", name);
		if (rate_pos(err, cfg, p, "down", true, &pl->down_bps) < 0 ||
		    rate_pos(err, cfg, p, "up", true, &pl->up_bps) < 0 ||
		    size_pos(err, cfg, p, "burst", &burst, &burst_set) < 0 ||
		    size_pos(err, cfg, p, "down_burst", &pl->down_burst_bytes, &x->down_burst_set) <
			    0 ||
		    size_pos(err, cfg, p, "up_burst", &pl->up_burst_bytes, &x->up_burst_set) < 0)
			return -1;
		if (burst_set) {
			if (!x->down_burst_set)
				pl->down_burst_bytes = burst;
			if (!x->up_burst_set)
				pl->up_burst_bytes = burst;
			x->down_burst_set = x->up_burst_set = true;
		}
		if (sky_cfg_get(p, "weight") != NULL) {
			if (sky_cfg_get_u64(err, cfg, p, "weight", false, 1, UINT32_MAX, &v) < 0)
				return -1;
			pl->weight = (uint32_t)v;
			x->weight_set = true;
		}
		subs_plan_defaults(pl, x);
		for (unsigned int c = 0; c < SKY_MAX_CLASSES; c++)
			pl->class_weight[c] = 1;
		cw = sky_cfg_get(p, "class_weights");
		if (cw != NULL) {
			if (sky_cfg_type(cw) != SKY_CFG_MAP)
				return sky_cfg_fail(err, cfg, cw, "expected a map CLASS: WEIGHT");
			for (size_t k = 0; k < sky_cfg_len(cw); k++) {
				const char *cn = sky_cfg_key_at(cw, k);
				int ci = sky_subs_class_index(s, cn);

				if (ci < 0)
					return sky_cfg_fail(err, cfg, sky_cfg_at(cw, k),
							    "unknown class '%s'", cn);
				if (sky_cfg_get_u64(err, cfg, cw, cn, true, 1, 65535, &v) < 0)
					return -1;
				pl->class_weight[ci] = (uint32_t)v;
			}
		}
		s->n_plans = (unsigned int)i + 1;
	}
	return 0;
}

static int
parse_beams(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	static const char *const keys[] = {"down", "up", NULL};
	const struct sky_cfg_node *sec = NULL;
	int r = named_section(cfg, err, "beams", SKY_MAX_BEAMS, &sec);
	size_t n;

	if (r < 0)
		return -1;
	n = (size_t)r;
	for (size_t i = 0; i < n; i++) {
		const struct sky_cfg_node *b = sky_cfg_at(sec, i);
		const char *name = sky_cfg_key_at(sec, i);
		struct sky_beam *bm = &s->beams[i];

		memset(bm, 0, sizeof(*bm));
		if (check_name(err, cfg, b, "beam", name) < 0 ||
		    sky_cfg_check_keys(err, cfg, b, keys) < 0)
			return -1;
		snprintf(bm->name, sizeof(bm->name), "%s", name);
		if (rate_pos(err, cfg, b, "down", true, &bm->down_bps) < 0 ||
		    rate_pos(err, cfg, b, "up", true, &bm->up_bps) < 0)
			return -1;
		s->n_beams = (unsigned int)i + 1;
	}
	return 0;
}

static int
parse_zones(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, "zones");
	size_t n;

	s->n_zones = 0;
	if (sec == NULL)
		return 0;
	if (sky_cfg_type(sec) == SKY_CFG_SCALAR) {
		const char *v = sky_cfg_str(sec);

		if (v == NULL || v[0] == '\0')
			return 0; /* `zones:` with no value */
		return sky_cfg_fail(err, cfg, sec, "expected a list of zone names ([NAME, ...])");
	}
	if (sky_cfg_type(sec) != SKY_CFG_SEQ)
		return sky_cfg_fail(err, cfg, sec, "expected a list of zone names ([NAME, ...])");
	n = sky_cfg_len(sec);
	if (n > SKY_MAX_ZONES)
		return sky_cfg_fail(err, cfg, sec, "%zu zones, at most %d", n, SKY_MAX_ZONES);
	for (size_t i = 0; i < n; i++) {
		const struct sky_cfg_node *z = sky_cfg_at(sec, i);
		const char *name = sky_cfg_str(z);

		if (sky_cfg_type(z) != SKY_CFG_SCALAR || name == NULL)
			return sky_cfg_fail(err, cfg, z, "expected a zone name");
		if (check_name(err, cfg, z, "zone", name) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->zones[j], name) == 0)
				return sky_cfg_fail(err, cfg, z, "zone '%s' listed twice", name);
		snprintf(s->zones[i], sizeof(s->zones[i]), "%s", name);
		s->n_zones = (unsigned int)i + 1;
	}
	return 0;
}

static int
parse_subscribers_section(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err,
			  const char **file, uint64_t *capacity)
{
	static const char *const keys[] = {"file", "unknown", "capacity", NULL};
	static const char *const ukeys[] = {"plan", NULL};
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, "subscribers"), *u;

	*file = NULL;
	*capacity = 0;
	s->unknown_plan = -1;
	if (sec == NULL)
		return 0;
	if (sky_cfg_check_keys(err, cfg, sec, keys) < 0 ||
	    sky_cfg_get_str(err, cfg, sec, "file", false, file) < 0 ||
	    sky_cfg_get_u64(err, cfg, sec, "capacity", false, 1, SKY_SUBS_MAX_CAPACITY, capacity) <
		    0)
		return -1;
	u = sky_cfg_get(sec, "unknown");
	if (u == NULL)
		return 0;
	if (sky_cfg_type(u) == SKY_CFG_SCALAR) {
		if (strcmp(sky_cfg_str(u), "drop") != 0)
			return sky_cfg_fail(err, cfg, u,
					    "'%s': expected 'drop' or a map { plan: NAME }",
					    sky_cfg_str(u));
		return 0;
	}
	if (sky_cfg_check_keys(err, cfg, u, ukeys) < 0)
		return -1;
	{
		const char *pn;

		if (sky_cfg_get_str(err, cfg, u, "plan", true, &pn) < 0)
			return -1;
		s->unknown_plan = sky_subs_plan_index(s, pn);
		if (s->unknown_plan < 0)
			return sky_cfg_fail(err, cfg, sky_cfg_get(u, "plan"), "unknown plan '%s'",
					    pn);
	}
	return 0;
}

int
subs_cfg_parse(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err,
	       const char **file, uint64_t *capacity)
{
	if (parse_plans(s, cfg, err) < 0 || parse_beams(s, cfg, err) < 0 ||
	    parse_zones(s, cfg, err) < 0)
		return -1;
	return parse_subscribers_section(s, cfg, err, file, capacity);
}

void
subs_names(const struct sky_subs *s, struct sky_subs_csv_names *nm)
{
	nm->n_plans = s->n_plans;
	nm->n_beams = s->n_beams;
	for (unsigned int i = 0; i < s->n_plans; i++)
		nm->plans[i] = s->plans[i].name;
	for (unsigned int i = 0; i < s->n_beams; i++)
		nm->beams[i] = s->beams[i].name;
	nm->n_zones = s->n_zones;
	for (unsigned int i = 0; i < s->n_zones; i++)
		nm->zones[i] = s->zones[i];
}

unsigned int
sky_subs_n_zones(const struct sky_subs *s)
{
	return s->n_zones;
}

int
sky_subs_zone_index(const struct sky_subs *s, const char *name)
{
	for (unsigned int i = 0; i < s->n_zones; i++)
		if (strcmp(s->zones[i], name) == 0)
			return (int)i + 1;
	return -1;
}

const char *
sky_subs_zone_name(const struct sky_subs *s, unsigned int id)
{
	return id >= 1 && id <= s->n_zones ? s->zones[id - 1] : NULL;
}

unsigned int
sky_subs_n_plans(const struct sky_subs *s)
{
	return s->n_plans;
}

unsigned int
sky_subs_n_beams(const struct sky_subs *s)
{
	return s->n_beams;
}

unsigned int
sky_subs_n_classes(const struct sky_subs *s)
{
	return s->cs.n_classes;
}

struct sky_plan
sky_subs_plan(const struct sky_subs *s, unsigned int idx)
{
	return s->plans[idx];
}

struct sky_beam
sky_subs_beam(const struct sky_subs *s, unsigned int idx)
{
	return s->beams[idx];
}

struct sky_class
sky_subs_class(const struct sky_subs *s, unsigned int idx)
{
	return s->cs.cls[idx];
}

/* index of name in an array of n records of size bytes, each starting with its name */
static int
index_of(const void *recs, size_t size, unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (strcmp((const char *)recs + i * size, name) == 0)
			return (int)i;
	return -1;
}
_Static_assert(offsetof(struct sky_plan, name) == 0, "index_of: name first");
_Static_assert(offsetof(struct sky_beam, name) == 0, "index_of: name first");
_Static_assert(offsetof(struct sky_class, name) == 0, "index_of: name first");

int
sky_subs_plan_index(const struct sky_subs *s, const char *name)
{
	return index_of(s->plans, sizeof(s->plans[0]), s->n_plans, name);
}

int
sky_subs_beam_index(const struct sky_subs *s, const char *name)
{
	return index_of(s->beams, sizeof(s->beams[0]), s->n_beams, name);
}

int
sky_subs_class_index(const struct sky_subs *s, const char *name)
{
	return index_of(s->cs.cls, sizeof(s->cs.cls[0]), s->cs.n_classes, name);
}

int
sky_subs_listen(struct sky_subs *s, sky_subs_listener_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	if (s->n_listeners == SUBS_MAX_HOOKS)
		return -ENOSPC;
	s->listeners[s->n_listeners].fn = fn;
	s->listeners[s->n_listeners++].arg = arg;
	return 0;
}

int
sky_subs_plan_key_hook(struct sky_subs *s, const char *const *keys, sky_subs_plan_key_fn fn,
		       void *arg)
{
	if (keys == NULL || fn == NULL)
		return -EINVAL;
	if (s->pk_fn != NULL)
		return -EEXIST;
	s->pk_keys = keys;
	s->pk_fn = fn;
	s->pk_arg = arg;
	return 0;
}

int
sky_subs_top_key(struct sky_subs *s, const char *name, sky_subs_top_fn fn, void *arg)
{
	if (fn == NULL || name == NULL || name[0] == '\0' || strlen(name) >= SKY_NAME_MAX ||
	    strcmp(name, "bytes") == 0)
		return strcmp(name ? name : "", "bytes") == 0 ? -EEXIST : -EINVAL;
	for (unsigned int i = 0; i < s->n_top_keys; i++)
		if (strcmp(s->top_keys[i].name, name) == 0)
			return -EEXIST;
	if (s->n_top_keys == sizeof(s->top_keys) / sizeof(s->top_keys[0]))
		return -ENOSPC;
	snprintf(s->top_keys[s->n_top_keys].name, SKY_NAME_MAX, "%s", name);
	s->top_keys[s->n_top_keys].fn = fn;
	s->top_keys[s->n_top_keys++].arg = arg;
	return 0;
}

int
sky_subs_validate_hook(struct sky_subs *s, sky_subs_validator_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	if (s->n_validators == SUBS_MAX_HOOKS)
		return -ENOSPC;
	s->validators[s->n_validators].fn = fn;
	s->validators[s->n_validators++].arg = arg;
	return 0;
}

int
sky_subs_top_order(struct sky_subs *s, const char *name, sky_subs_rank_fn rank, void *arg)
{
	if (rank == NULL || name == NULL || name[0] == '\0' ||
	    strlen(name) >= sizeof(s->orders[0].name) || strcmp(name, "bytes") == 0)
		return -EINVAL;
	for (unsigned int i = 0; i < s->n_orders; i++)
		if (strcmp(s->orders[i].name, name) == 0)
			return -EEXIST;
	if (s->n_orders == SUBS_MAX_HOOKS)
		return -ENOSPC;
	snprintf(s->orders[s->n_orders].name, sizeof(s->orders[0].name), "%s", name);
	s->orders[s->n_orders].rank = rank;
	s->orders[s->n_orders++].arg = arg;
	return 0;
}

void
subs_notify(struct sky_subs *s, enum sky_subs_event ev, uint32_t index,
	    const struct sky_sub_info *info)
{
	for (unsigned int i = 0; i < s->n_listeners; i++)
		s->listeners[i].fn(s->listeners[i].arg, ev, index, info);
}

int
subs_validate(struct sky_subs *s, enum sky_subs_event ev, uint32_t index, const void *nv, char *err,
	      size_t errlen)
{
	for (unsigned int i = 0; i < s->n_validators; i++) {
		char msg[256] = "";

		if (s->validators[i].fn(s->validators[i].arg, ev, index, nv, msg, sizeof(msg)) != 0)
			return subs_fail(err, errlen, "refused: %s",
					 msg[0] ? msg : "by a validator");
	}
	return 0;
}

int
subs_op_plan_set(struct sky_subs *s, unsigned int idx, const struct sky_plan *np,
		 const struct plan_x *nx, char *err, size_t errlen)
{
	if (idx >= s->n_plans)
		return subs_fail(err, errlen, "plan index %u out of range", idx);
	if (np->down_bps == 0 || np->up_bps == 0)
		return subs_fail(err, errlen, "%s must be > 0", np->down_bps == 0 ? "down" : "up");
	if (np->down_burst_bytes == 0 || np->up_burst_bytes == 0)
		return subs_fail(err, errlen, "%s must be > 0",
				 np->down_burst_bytes == 0 ? "down_burst" : "up_burst");
	if (np->weight == 0)
		return subs_fail(err, errlen, "weight must be > 0");
	for (unsigned int c = 0; c < s->cs.n_classes; c++)
		if (np->class_weight[c] == 0 || np->class_weight[c] > 65535)
			return subs_fail(err, errlen, "cw.%s must be 1..65535", s->cs.cls[c].name);
	if (subs_validate(s, SKY_SUBS_EV_PLAN, idx, np, err, errlen) < 0)
		return -1;
	s->plans[idx] = *np;
	s->plan_x[idx] = *nx;
	subs_notify(s, SKY_SUBS_EV_PLAN, idx, NULL);
	return 0;
}

int
subs_op_beam_set(struct sky_subs *s, unsigned int idx, const struct sky_beam *nb, char *err,
		 size_t errlen)
{
	if (idx >= s->n_beams)
		return subs_fail(err, errlen, "beam index %u out of range", idx);
	if (nb->down_bps == 0 || nb->up_bps == 0)
		return subs_fail(err, errlen, "%s must be > 0", nb->down_bps == 0 ? "down" : "up");
	if (subs_validate(s, SKY_SUBS_EV_BEAM, idx, nb, err, errlen) < 0)
		return -1;
	s->beams[idx] = *nb;
	subs_notify(s, SKY_SUBS_EV_BEAM, idx, NULL);
	return 0;
}

int
sky_subs_plan_add(struct sky_subs *s, const struct sky_plan *p, char *err, size_t errlen)
{
	struct plan_x x = {.weight_set = true, .down_burst_set = true, .up_burst_set = true};
	unsigned int i = s->n_plans;

	if (i >= SKY_MAX_PLANS)
		return subs_fail(err, errlen, "plan '%s': more than %d plans", p->name,
				 SKY_MAX_PLANS);
	if (sky_subs_plan_index(s, p->name) >= 0)
		return subs_fail(err, errlen, "plan '%s' exists", p->name);
	if (p->down_bps == 0 || p->up_bps == 0 || p->down_burst_bytes == 0 ||
	    p->up_burst_bytes == 0 || p->weight == 0)
		return subs_fail(err, errlen, "plan '%s': rates, bursts and weight must be > 0",
				 p->name);
	s->plans[i] = *p;
	s->plan_x[i] = x;
	s->n_plans = i + 1;
	return (int)i;
}

int
sky_subs_plan_update(struct sky_subs *s, unsigned int idx, const struct sky_plan *p, char *err,
		     size_t errlen)
{
	struct plan_x x = {.weight_set = true, .down_burst_set = true, .up_burst_set = true};

	return subs_op_plan_set(s, idx, p, &x, err, errlen);
}

int
sky_subs_beam_mode_set(struct sky_subs *s, unsigned int idx, enum sky_subs_beam_mode mode)
{
	if (idx >= s->n_beams || mode > SKY_SUBS_BEAM_PASS)
		return -EINVAL;
	__atomic_store_n(&s->beam_mode[idx], (uint8_t)mode, __ATOMIC_RELEASE);
	/* the data path reads the bitmap once per burst and beam_mode only for its beams */
	if (mode == SKY_SUBS_BEAM_OWNED)
		__atomic_fetch_and(&s->beams_foreign, ~(1ULL << idx), __ATOMIC_RELEASE);
	else
		__atomic_fetch_or(&s->beams_foreign, 1ULL << idx, __ATOMIC_RELEASE);
	return 0;
}

enum sky_subs_beam_mode
sky_subs_beam_mode(const struct sky_subs *s, unsigned int idx)
{
	return idx < SKY_MAX_BEAMS ? (enum sky_subs_beam_mode)__atomic_load_n(&s->beam_mode[idx],
									      __ATOMIC_RELAXED)
				   : SKY_SUBS_BEAM_OWNED;
}

void
sky_subs_beam_foreign(const struct sky_subs *s, uint64_t *dropped, uint64_t *passed)
{
	*dropped = 0;
	*passed = 0;
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		*dropped += __atomic_load_n(&s->ws[w].foreign[0], __ATOMIC_RELAXED);
		*passed += __atomic_load_n(&s->ws[w].foreign[1], __ATOMIC_RELAXED);
	}
}
