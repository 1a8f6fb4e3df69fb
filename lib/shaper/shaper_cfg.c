/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper configuration: the `shaping:` section and the shaper's keys of each class
 * (classes[i].queue, classes[i].aqm). Control path.
 *
 *   shaping:
 *     enabled: true                # false: no policing, no shaping (packets pass)
 *     period: 10ms                 # capacity split among workers; longest sleep
 *     rtt: 600ms                   # typical round trip: GEO ~600ms, LEO ~40ms
 *     beam_burst: 2ms              # beam bucket depth, in time at the beam's rate
 *     max_active_per_worker: 65536 # subscribers with queued packets per worker
 *     max_queued_per_worker: 16384 # packets queued per worker (mbufs held), all queues
 *     max_flows_per_worker: 0      # shared flow queues beyond each active subscriber's
 *                                  # first (0: 2 per active slot)
 *     max_delay: 100ms             # a packet queued longer than this is dropped at dequeue
 *     frame_overhead: 24           # bytes added to each frame for rates (preamble+IFG+FCS)
 *     port_rate: 100Gbit           # no plan or beam may be faster
 *   classes:
 *     - { name: realtime, queue: 256, aqm: { kind: codel, target: 5ms, interval: 100ms } }
 *     - { name: bulk, default: true, queue: 1024, aqm: { kind: red, min: 256, max: 768, max_p: 10 }
 * }
 */
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>

#include "shaper_priv.h"

static int
parse_aqm(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *cls,
	  struct sky_shaper_class_params *cp)
{
	static const char *const keys[] = {"kind", "target", "interval", "min",
					   "max",  "max_p",  NULL};
	static const char *const kinds[] = {"none", "codel", "red", "pie", NULL};
	const struct sky_cfg_node *a = sky_cfg_get(cls, "aqm");
	unsigned int kind = 1;
	uint64_t v;

	if (a == NULL)
		return 0;
	if (sky_cfg_check_keys(err, cfg, a, keys) < 0)
		return -1;
	if (sky_cfg_get_enum(err, cfg, a, "kind", true, kinds, &kind) < 0)
		return -1;
	if (kind == 3)
		return sky_cfg_fail(err, cfg, sky_cfg_get(a, "kind"),
				    "pie is not implemented by this shaper; use codel (time-based "
				    "like pie, no per-queue timer), red or none");
	cp->aqm = kind == 0 ? SKY_AQM_NONE : kind == 1 ? SKY_AQM_CODEL : SKY_AQM_RED;
	if (kind != 1 && (sky_cfg_get(a, "target") || sky_cfg_get(a, "interval")))
		return sky_cfg_fail(err, cfg,
				    sky_cfg_get(a, "target") ? sky_cfg_get(a, "target")
							     : sky_cfg_get(a, "interval"),
				    "target/interval apply to kind: codel only");
	if (kind != 2 &&
	    (sky_cfg_get(a, "min") || sky_cfg_get(a, "max") || sky_cfg_get(a, "max_p")))
		return sky_cfg_fail(err, cfg, a, "min/max/max_p apply to kind: red only");
	if (sky_cfg_get_time(err, cfg, a, "target", false, &cp->target_us) < 0 ||
	    sky_cfg_get_time(err, cfg, a, "interval", false, &cp->interval_us) < 0)
		return -1;
	if (sky_cfg_get(a, "target") && (cp->target_us < 100 || cp->target_us > 1000000))
		return sky_cfg_fail(err, cfg, sky_cfg_get(a, "target"), "target must be 100us..1s");
	if (sky_cfg_get(a, "interval") && (cp->interval_us < 1000 || cp->interval_us > 10000000))
		return sky_cfg_fail(err, cfg, sky_cfg_get(a, "interval"),
				    "interval must be 1ms..10s");
	if (cp->target_us && cp->interval_us && cp->target_us >= cp->interval_us)
		return sky_cfg_fail(err, cfg, sky_cfg_get(a, "target"),
				    "target must be below interval");
	v = cp->red_min_pkts;
	if (sky_cfg_get_u64(err, cfg, a, "min", false, 1, 65535, &v) < 0)
		return -1;
	cp->red_min_pkts = (uint32_t)v;
	v = cp->red_max_pkts;
	if (sky_cfg_get_u64(err, cfg, a, "max", false, 2, 65535, &v) < 0)
		return -1;
	cp->red_max_pkts = (uint32_t)v;
	v = cp->red_max_p_pct;
	if (sky_cfg_get_u64(err, cfg, a, "max_p", false, 1, 100, &v) < 0)
		return -1;
	cp->red_max_p_pct = (uint32_t)v;
	if (kind == 2) {
		uint32_t mn = cp->red_min_pkts ? cp->red_min_pkts : cp->queue_pkts / 4;
		uint32_t mx = cp->red_max_pkts ? cp->red_max_pkts : cp->queue_pkts * 3 / 4;

		if (mn == 0 || mx <= mn || mx > cp->queue_pkts)
			return sky_cfg_fail(err, cfg, a,
					    "red needs 0 < min (%u) < max (%u) <= queue (%u)", mn,
					    mx, cp->queue_pkts);
	}
	return 0;
}

int
sky_shaper_parse_config(const struct sky_cfg *cfg, struct sky_shaper_params *p,
			struct sky_cfg_err *err)
{
	static const char *const keys[] = {"enabled",
					   "period",
					   "rtt",
					   "beam_burst",
					   "max_active_per_worker",
					   "max_queued_per_worker",
					   "max_flows_per_worker",
					   "max_delay",
					   "frame_overhead",
					   "port_rate",
					   NULL};
	const struct sky_cfg_node *sh = sky_cfg_get(cfg->root, "shaping");
	const struct sky_cfg_node *classes = sky_cfg_get(cfg->root, "classes");
	uint64_t v;

	if (sh != NULL) {
		if (sky_cfg_check_keys(err, cfg, sh, keys) < 0 ||
		    sky_cfg_get_bool(err, cfg, sh, "enabled", false, &p->enabled) < 0 ||
		    sky_cfg_get_time(err, cfg, sh, "period", false, &p->period_us) < 0 ||
		    sky_cfg_get_time(err, cfg, sh, "rtt", false, &p->rtt_us) < 0 ||
		    sky_cfg_get_time(err, cfg, sh, "beam_burst", false, &p->beam_burst_us) < 0 ||
		    sky_cfg_get_time(err, cfg, sh, "max_delay", false, &p->max_delay_us) < 0 ||
		    sky_cfg_get_rate(err, cfg, sh, "port_rate", false, &p->port_rate_bps) < 0)
			return -1;
		if (p->period_us < 1000 || p->period_us > 1000000)
			return sky_cfg_fail(err, cfg, sky_cfg_get(sh, "period"),
					    "period must be 1ms..1s");
		if (p->rtt_us < 1000 || p->rtt_us > 10000000)
			return sky_cfg_fail(err, cfg, sky_cfg_get(sh, "rtt"),
					    "rtt must be 1ms..10s");
		if (p->beam_burst_us < 10 || p->beam_burst_us > 1000000)
			return sky_cfg_fail(err, cfg, sky_cfg_get(sh, "beam_burst"),
					    "beam_burst must be 10us..1s");
		if (p->max_delay_us < 1000 || p->max_delay_us > 10000000)
			return sky_cfg_fail(err, cfg, sky_cfg_get(sh, "max_delay"),
					    "max_delay must be 1ms..10s");
		if (p->port_rate_bps < 1000000 || p->port_rate_bps > 1000000000000ULL)
			return sky_cfg_fail(err, cfg, sky_cfg_get(sh, "port_rate"),
					    "port_rate must be 1Mbit..1Tbit");
		v = p->max_active_per_worker;
		if (sky_cfg_get_u64(err, cfg, sh, "max_active_per_worker", false, 16, 1u << 24,
				    &v) < 0)
			return -1;
		p->max_active_per_worker = (uint32_t)v;
		v = p->max_queued_per_worker;
		if (sky_cfg_get_u64(err, cfg, sh, "max_queued_per_worker", false, 64, 1u << 26,
				    &v) < 0)
			return -1;
		p->max_queued_per_worker = (uint32_t)v;
		v = p->max_flows_per_worker;
		if (sky_cfg_get(sh, "max_flows_per_worker") != NULL &&
		    sky_cfg_get_u64(err, cfg, sh, "max_flows_per_worker", false, 16, 1u << 26, &v) <
			    0)
			return -1;
		p->max_flows_per_worker = (uint32_t)v;
		v = p->frame_overhead;
		if (sky_cfg_get_u64(err, cfg, sh, "frame_overhead", false, 0, 256, &v) < 0)
			return -1;
		p->frame_overhead = (uint32_t)v;
	}
	if (classes != NULL && sky_cfg_type(classes) == SKY_CFG_SEQ) {
		size_t n = sky_cfg_len(classes);

		for (size_t i = 0; i < n && i < SKY_MAX_CLASSES; i++) {
			const struct sky_cfg_node *c = sky_cfg_at(classes, i);
			struct sky_shaper_class_params *cp = &p->cls[i];

			if (sky_cfg_type(c) != SKY_CFG_MAP)
				continue; /* the subscriber model reports it */
			v = cp->queue_pkts;
			if (sky_cfg_get_u64(err, cfg, c, "queue", false, 1, 65535, &v) < 0)
				return -1;
			cp->queue_pkts = (uint32_t)v;
			if (parse_aqm(err, cfg, c, cp) < 0)
				return -1;
		}
		p->n_classes = n == 0 ? 1 : n > SKY_MAX_CLASSES ? SKY_MAX_CLASSES : (unsigned int)n;
	}
	return 0;
}
