/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qoe configuration: the `qoe:` section (keys, defaults and the grade in skygate/qoe.h).
 * Control path. The module is off when the flow table measures no RTT: no `flows:`
 * section, or `flows.rtt: false`.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "qoe_priv.h"

void
sky_qoe_params_default(struct sky_qoe_params *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = true;
	p->window_us = 60000000;
	p->min_window_us = 300000000;
	p->max_subs = 4096;
	p->lat_good_us = 100000;
	p->lat_bad_us = 2000000;
	p->loss_good_bp = 10;
	p->loss_bad_bp = 500;
	p->grade_min_samples = 5;
}

/* "0.1%", "5%", "100%": basis points (two decimals at most) */
static int
parse_percent(const char *s, uint32_t *bp)
{
	uint64_t whole = 0, frac = 0;
	unsigned int nd = 0;
	const char *c = s;

	if (*c < '0' || *c > '9')
		return -EINVAL;
	while (*c >= '0' && *c <= '9') {
		whole = whole * 10 + (uint64_t)(*c++ - '0');
		if (whole > 100)
			return -ERANGE;
	}
	if (*c == '.') {
		c++;
		if (*c < '0' || *c > '9')
			return -EINVAL;
		while (*c >= '0' && *c <= '9') {
			if (++nd > 2)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*c++ - '0');
		}
		if (nd == 1)
			frac *= 10;
	}
	if (strcmp(c, "%") != 0)
		return -EINVAL;
	if (whole * 100 + frac > 10000)
		return -ERANGE;
	*bp = (uint32_t)(whole * 100 + frac);
	return 0;
}

static int
get_percent(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *map,
	    const char *key, uint32_t *bp)
{
	const struct sky_cfg_node *v = sky_cfg_get(map, key);
	const char *s;

	if (v == NULL)
		return 0;
	if (sky_cfg_as_str(err, cfg, v, &s) < 0)
		return -1;
	if (parse_percent(s, bp) < 0)
		return sky_cfg_fail(err, cfg, v,
				    "bad share '%s' (a percentage 0%%..100%%, two decimals at "
				    "most: 0.5%%)",
				    s);
	return 0;
}

static int
get_time32(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *map,
	   const char *key, uint32_t *out)
{
	uint64_t us = *out;

	if (sky_cfg_get_time(err, cfg, map, key, false, &us) < 0)
		return -1;
	if (us == 0 || us > 60000000)
		return sky_cfg_fail(err, cfg, sky_cfg_get(map, key), "must be 1us..60s");
	*out = (uint32_t)us;
	return 0;
}

int
sky_qoe_parse(const struct sky_cfg *cfg, struct sky_qoe_params *p, struct sky_cfg_err *err)
{
	static const char *const keys[] = {
		"enabled", "window", "min_window", "subscribers", "per_subscriber_metrics",
		"grade",   NULL};
	static const char *const gkeys[] = {"latency_good", "latency_bad", "loss_good",
					    "loss_bad",	    "min_samples", NULL};
	const struct sky_cfg_node *qn = sky_cfg_get(cfg->root, "qoe");
	const struct sky_cfg_node *fl = sky_cfg_get(cfg->root, "flows");
	const struct sky_cfg_node *g;
	bool rtt = true;
	uint64_t v;

	sky_qoe_params_default(p);
	if (sky_cfg_check_keys(err, cfg, qn, keys) < 0)
		return -1;
	if (sky_cfg_get_bool(err, cfg, qn, "enabled", false, &p->enabled) < 0 ||
	    sky_cfg_get_bool(err, cfg, qn, "per_subscriber_metrics", false, &p->per_sub_metrics) <
		    0)
		return -1;
	if (sky_cfg_get_time(err, cfg, qn, "window", false, &p->window_us) < 0)
		return -1;
	if (p->window_us < 6000000 || p->window_us > 3600000000ull ||
	    p->window_us % SKY_QOE_SLOTS != 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(qn, "window"),
				    "must be 6s..1h, a multiple of 6 us (%u slots)", SKY_QOE_SLOTS);
	if (sky_cfg_get_time(err, cfg, qn, "min_window", false, &p->min_window_us) < 0)
		return -1;
	if (p->min_window_us < p->window_us || p->min_window_us > 86400000000ull ||
	    p->min_window_us % SKY_QOE_SLOTS != 0)
		return sky_cfg_fail(err, cfg,
				    sky_cfg_get(qn, "min_window") ? sky_cfg_get(qn, "min_window")
								  : sky_cfg_get(qn, "window"),
				    "min_window must be qoe.window..1d, a multiple of 6 us");
	v = p->max_subs;
	if (sky_cfg_get_u64(err, cfg, qn, "subscribers", false, 1, 1u << 24, &v) < 0)
		return -1;
	p->max_subs = (uint32_t)v;
	g = sky_cfg_get(qn, "grade");
	if (sky_cfg_check_keys(err, cfg, g, gkeys) < 0)
		return -1;
	if (get_time32(err, cfg, g, "latency_good", &p->lat_good_us) < 0 ||
	    get_time32(err, cfg, g, "latency_bad", &p->lat_bad_us) < 0)
		return -1;
	if (p->lat_good_us >= p->lat_bad_us)
		return sky_cfg_fail(
			err, cfg, sky_cfg_get(g, "latency_bad") ? sky_cfg_get(g, "latency_bad") : g,
			"latency_bad must be above latency_good");
	if (get_percent(err, cfg, g, "loss_good", &p->loss_good_bp) < 0 ||
	    get_percent(err, cfg, g, "loss_bad", &p->loss_bad_bp) < 0)
		return -1;
	if (p->loss_good_bp >= p->loss_bad_bp)
		return sky_cfg_fail(err, cfg,
				    sky_cfg_get(g, "loss_bad") ? sky_cfg_get(g, "loss_bad") : g,
				    "loss_bad must be above loss_good");
	v = p->grade_min_samples;
	if (sky_cfg_get_u64(err, cfg, g, "min_samples", false, 1, 1000000, &v) < 0)
		return -1;
	p->grade_min_samples = (uint32_t)v;

	/* the samples come from the flow table's RTT */
	if (fl == NULL || sky_cfg_get_bool(err, cfg, fl, "rtt", false, &rtt) < 0) {
		if (err->failed)
			return -1;
		rtt = false;
	}
	if (!rtt)
		p->enabled = false;
	return 0;
}

struct sky_qoe *
sky_qoe_create(const struct sky_cfg *cfg, struct sky_subs *subs, struct sky_cfg_err *err)
{
	struct sky_qoe_params p;
	struct sky_qoe *q;
	char msg[256];

	if (sky_qoe_parse(cfg, &p, err) < 0)
		return NULL;
	q = sky_qoe_create_params(&p, subs, subs != NULL ? sky_subs_capacity(subs) : 0,
				  subs != NULL ? sky_subs_n_beams(subs) : 0, msg, sizeof(msg));
	if (q == NULL)
		sky_cfg_fail(err, cfg, sky_cfg_get(cfg->root, "qoe"), "%s", msg);
	return q;
}
