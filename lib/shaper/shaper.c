/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper control plane: parameters, creation, plan/beam changes, the periodic split of
 * beam capacity among (worker, output) shards, statistics.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "shaper_priv.h"

const char *const sky_shaper_ctr_names[SKY_SHAPER_CTR_MAX] = {
#define SKY_SHAPER_CTR_NAME(n, s) s,
	SKY_SHAPER_FOREACH_CTR(SKY_SHAPER_CTR_NAME)
#undef SKY_SHAPER_CTR_NAME
};

#define DEFAULT_PORT_RATE 100000000000ULL

static uint64_t
codel_target_us(uint64_t rtt_us)
{
	uint64_t t = rtt_us / 20;

	if (t < 5000)
		t = 5000;
	if (t > 30000)
		t = 30000;
	return t;
}

void
sky_shaper_params_default(struct sky_shaper_params *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = true;
	p->period_us = 10000;
	p->rtt_us = 600000;
	p->beam_burst_us = 2000;
	p->max_active_per_worker = 65536;
	p->max_queued_per_worker = 16384;
	p->max_flows_per_worker = 0;
	p->max_delay_us = 100000;
	p->frame_overhead = 24;
	p->port_rate_bps = DEFAULT_PORT_RATE;
	p->n_workers = 1;
	p->n_out_ports = 1;
	p->n_classes = 1;
	p->sub_capacity = 1;
	p->unknown_plan = -1;
	for (unsigned int c = 0; c < SKY_MAX_CLASSES; c++) {
		p->cls[c].queue_pkts = c == 0 ? 256 : 1024;
		p->cls[c].aqm = SKY_AQM_CODEL;
		p->cls[c].target_us = 0; /* 0: derive from rtt */
		p->cls[c].interval_us = 0;
		p->cls[c].red_min_pkts = 0;
		p->cls[c].red_max_pkts = 0;
		p->cls[c].red_max_p_pct = 10;
	}
}

/* --- limits --------------------------------------------------------------------------- */

static int
check_rate(const struct sky_shaper *sh, const char *what, const char *name, const char *key,
	   uint64_t bps, char *err, size_t errlen)
{
	if (bps > sh->p.port_rate_bps) {
		snprintf(err, errlen,
			 "%s %s: %s %llu bit/s is above the port rate %llu bit/s "
			 "(shaping.port_rate)",
			 what, name, key, (unsigned long long)bps,
			 (unsigned long long)sh->p.port_rate_bps);
		return -1;
	}
	return 0;
}

int
sky_shaper_check_plan(const struct sky_shaper *sh, const struct sky_plan *p, char *err,
		      size_t errlen)
{
	if (check_rate(sh, "plan", p->name, "down", p->down_bps, err, errlen) < 0 ||
	    check_rate(sh, "plan", p->name, "up", p->up_bps, err, errlen) < 0)
		return -1;
	if (p->down_burst_bytes > (512u << 20) || p->up_burst_bytes > (512u << 20)) {
		snprintf(err, errlen, "plan %s: burst above 512MB is not supported by the shaper",
			 p->name);
		return -1;
	}
	return 0;
}

int
sky_shaper_check_beam(const struct sky_shaper *sh, const struct sky_beam *b, char *err,
		      size_t errlen)
{
	if (check_rate(sh, "beam", b->name, "down", b->down_bps, err, errlen) < 0 ||
	    check_rate(sh, "beam", b->name, "up", b->up_bps, err, errlen) < 0)
		return -1;
	return 0;
}

/* --- plans ------------------------------------------------------------------------------ */

static int64_t
burst_fp(uint64_t bytes)
{
	if (bytes < 2 * SHP_MTU_COST)
		bytes = 2 * SHP_MTU_COST;
	return (int64_t)(bytes << FP);
}

/* quanta depend on the smallest weight of all plans: recompute them all */
static void
plans_publish(struct sky_shaper *sh)
{
	uint64_t wmin = UINT64_MAX;

	for (unsigned int i = 0; i < sh->n_plans; i++) {
		uint64_t w = sh->cp_plans[i].weight ? sh->cp_plans[i].weight : 1;

		if (w < wmin)
			wmin = w;
	}
	for (unsigned int i = 0; i < sh->n_plans; i++) {
		const struct sky_plan *cp = &sh->cp_plans[i];
		struct shp_plan *pl = &sh->plans[i];
		uint64_t w = cp->weight ? cp->weight : 1;
		uint64_t q = SHP_MTU_COST * w / wmin;
		uint64_t rfd = shp_rate_fp(cp->down_bps, sh->hz);
		uint64_t cmin = UINT64_MAX;

		if (q > (1u << 24))
			q = 1u << 24;
		for (unsigned int c = 1; c < sh->n_classes; c++) {
			uint64_t cw = cp->class_weight[c] ? cp->class_weight[c] : 1;

			if (cw < cmin)
				cmin = cw;
		}
		for (unsigned int c = 1; c < sh->n_classes; c++) {
			uint64_t cw = cp->class_weight[c] ? cp->class_weight[c] : 1;
			uint64_t cq = SHP_MTU_COST * cw / cmin;

			if (cq > (1u << 20))
				cq = 1u << 20;
			__atomic_store_n(&pl->cls_quantum[c], (uint32_t)cq, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&pl->down_rate_fp, rfd, __ATOMIC_RELAXED);
		__atomic_store_n(&pl->down_burst_fp, burst_fp(cp->down_burst_bytes),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&pl->down_inv_fp, shp_inv_fp(rfd), __ATOMIC_RELAXED);
		__atomic_store_n(&pl->up_rate_fp, shp_rate_fp(cp->up_bps, sh->hz),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&pl->up_burst_fp, burst_fp(cp->up_burst_bytes), __ATOMIC_RELAXED);
		__atomic_store_n(&pl->quantum, (uint32_t)q, __ATOMIC_RELAXED);
		__atomic_store_n(&pl->weight, (uint32_t)(w > UINT32_MAX ? UINT32_MAX : w),
				 __ATOMIC_RELAXED);
		pl->down_bps = cp->down_bps;
		pl->up_bps = cp->up_bps;
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

int
sky_shaper_set_plan(struct sky_shaper *sh, unsigned int idx, const struct sky_plan *p)
{
	char err[256];

	if (idx >= SKY_MAX_PLANS || sky_shaper_check_plan(sh, p, err, sizeof(err)) < 0)
		return -EINVAL;
	sh->cp_plans[idx] = *p;
	if (idx >= sh->n_plans)
		sh->n_plans = idx + 1;
	plans_publish(sh);
	return 0;
}

/* --- capacity split ----------------------------------------------------------------------- */

/*
 * Split cap (bytes/s) among n shards: each gets a small floor (cap / 64n); the rest is
 * water-filled by weight, a shard never getting more than its demand while others want
 * more (UINT64_MAX = as much as it can get); what nobody wants is spread evenly so any
 * shard can grow until the next split. The shares add up to cap.
 */
static void
split(uint64_t cap, unsigned int n, const uint64_t *demand, const uint64_t *weight, uint64_t *share)
{
	uint64_t floor = cap / (64 * (uint64_t)n);
	uint64_t rem = cap - floor * n;
	uint8_t done[SKY_MAX_WORKERS * 8];
	uint64_t alloc[SKY_MAX_WORKERS * 8];

	for (unsigned int i = 0; i < n; i++) {
		done[i] = demand[i] == 0;
		alloc[i] = 0;
	}
	for (;;) {
		unsigned __int128 wsum = 0;
		uint64_t given = 0;
		int changed = 0;

		for (unsigned int i = 0; i < n; i++)
			if (!done[i])
				wsum += weight[i] ? weight[i] : 1;
		if (wsum == 0)
			break;
		for (unsigned int i = 0; i < n; i++) {
			uint64_t w = weight[i] ? weight[i] : 1;
			uint64_t s;

			if (done[i])
				continue;
			s = (uint64_t)((unsigned __int128)rem * w / wsum);
			if (demand[i] <= s) {
				alloc[i] = demand[i];
				given += demand[i];
				done[i] = 1;
				changed = 1;
			}
		}
		rem -= given;
		if (!changed) {
			for (unsigned int i = 0; i < n; i++) {
				uint64_t w = weight[i] ? weight[i] : 1;

				if (done[i])
					continue;
				alloc[i] = (uint64_t)((unsigned __int128)rem * w / wsum);
				given += alloc[i];
			}
			rem -= given;
			break;
		}
	}
	for (unsigned int i = 0; i < n; i++)
		share[i] = floor + alloc[i] + rem / n + (i == 0 ? rem % n : 0);
}

/*
 * burst_us: downstream the beam bucket only paces a queue, so a short one (beam_burst)
 * keeps the output smooth. Upstream nothing queues: the return-link police sees packets
 * when the worker gets to them, in clumps of up to a ring's worth after any stall, so it
 * needs a depth in the tens of ms (SKY_SHAPER_UP_BURST_US) or it drops conforming
 * traffic.
 */
#define SKY_SHAPER_UP_BURST_US 50000

static void
shard_set(struct sky_shaper *sh, uint64_t *rate_fp, int64_t *bfp, uint64_t *share_bps,
	  uint64_t share_Bps, uint64_t burst_us)
{
	uint64_t burst = share_Bps * burst_us / 1000000;

	__atomic_store_n(rate_fp, shp_rate_fp(share_Bps * 8, sh->hz), __ATOMIC_RELAXED);
	__atomic_store_n(bfp, burst_fp(burst), __ATOMIC_RELAXED);
	__atomic_store_n(share_bps, share_Bps * 8, __ATOMIC_RELAXED);
}

#define N_SHARDS(sh) ((sh)->n_workers * (sh)->n_out)

static inline struct shp_shard *
down_shard(const struct sky_shaper *sh, unsigned int i, unsigned int beam)
{
	return &sh->w[i / sh->n_out].out[i % sh->n_out].shard[beam];
}

/* measure: 1, or reuse the demand of the last split (capacity changes) */
static void
rebalance_beam(struct sky_shaper *sh, unsigned int b, uint64_t dt, int measure)
{
	unsigned int ns = N_SHARDS(sh);
	uint64_t demand[SKY_MAX_WORKERS * 8] = {0}, weight[SKY_MAX_WORKERS * 8] = {0};
	uint64_t share[SKY_MAX_WORKERS * 8];

	/* downstream */
	for (unsigned int i = 0; i < ns; i++) {
		struct shp_shard *sd = down_shard(sh, i, b);
		struct shp_cpshard *cp = &sh->cp_down[b * ns + i];
		uint64_t sent = __atomic_load_n(&sd->ctr[SC_SENT_BYTES], __ATOMIC_RELAXED);
		uint64_t lim = __atomic_load_n(&sd->limited, __ATOMIC_RELAXED);
		uint64_t aw = __atomic_load_n(&sd->active_weight, __ATOMIC_RELAXED);
		uint32_t na = __atomic_load_n(&sd->n_active, __ATOMIC_RELAXED);

		if (measure && dt) {
			cp->rate_Bps = (uint64_t)((unsigned __int128)(sent - cp->prev_bytes) *
						  sh->hz / dt);
			cp->limited = lim != cp->prev_limited;
			cp->prev_limited = lim;
			cp->prev_bytes = sent;
		}
		if (na > 0 && cp->limited)
			demand[i] = UINT64_MAX;
		else if (na > 0 || cp->rate_Bps)
			demand[i] = cp->rate_Bps + cp->rate_Bps / 4 + SHP_MTU_COST * 100;
		else
			demand[i] = 0;
		weight[i] = aw ? aw : 1;
	}
	split(sh->cp_beams[b].down_bps / 8, ns, demand, weight, share);
	for (unsigned int i = 0; i < ns; i++) {
		struct shp_shard *sd = down_shard(sh, i, b);

		shard_set(sh, &sd->rate_fp, &sd->burst_fp, &sd->share_bps, share[i],
			  sh->p.beam_burst_us);
	}
	/* upstream: shards are workers, weighted by what they pass */
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		struct shp_upshard *u = &sh->w[i].up[b];
		struct shp_cpshard *cp = &sh->cp_up[b * sh->n_workers + i];
		uint64_t sent = __atomic_load_n(&u->pass_bytes, __ATOMIC_RELAXED);
		uint64_t lim = __atomic_load_n(&u->drops_beam, __ATOMIC_RELAXED);

		if (measure && dt) {
			cp->rate_Bps = (uint64_t)((unsigned __int128)(sent - cp->prev_bytes) *
						  sh->hz / dt);
			cp->limited = lim != cp->prev_limited;
			cp->prev_limited = lim;
			cp->prev_bytes = sent;
		}
		if (cp->limited)
			demand[i] = UINT64_MAX;
		else if (cp->rate_Bps)
			demand[i] = cp->rate_Bps + cp->rate_Bps / 4 + SHP_MTU_COST * 100;
		else
			demand[i] = 0;
		weight[i] = 1; /* RSS spreads subscribers evenly: equal split among limited */
	}
	split(sh->cp_beams[b].up_bps / 8, sh->n_workers, demand, weight, share);
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		struct shp_upshard *u = &sh->w[i].up[b];

		shard_set(sh, &u->rate_fp, &u->burst_fp, &u->share_bps, share[i],
			  sh->p.beam_burst_us > SKY_SHAPER_UP_BURST_US ? sh->p.beam_burst_us
								       : SKY_SHAPER_UP_BURST_US);
	}
}

void
sky_shaper_rebalance(struct sky_shaper *sh, uint64_t now_tsc)
{
	uint64_t dt = sh->last_rebalance && now_tsc > sh->last_rebalance
			      ? now_tsc - sh->last_rebalance
			      : 0;

	sh->last_rebalance = now_tsc;
	for (unsigned int b = 0; b < sh->n_beams; b++)
		rebalance_beam(sh, b, dt, 1);
	shp_hist_roll(sh, now_tsc);
	shp_ctr_ready(sh);
}

int
sky_shaper_set_beam(struct sky_shaper *sh, unsigned int idx, const struct sky_beam *b)
{
	char err[256];

	if (idx >= sh->n_beams || sky_shaper_check_beam(sh, b, err, sizeof(err)) < 0)
		return -EINVAL;
	sh->cp_beams[idx] = *b;
	rebalance_beam(sh, idx, 0, 0);
	return 0;
}

uint64_t
sky_shaper_share_bps(const struct sky_shaper *sh, unsigned int worker, unsigned int out,
		     unsigned int beam)
{
	if (worker >= sh->n_workers || beam >= sh->n_beams)
		return 0;
	if (out == UINT32_MAX)
		return __atomic_load_n(&sh->w[worker].up[beam].share_bps, __ATOMIC_RELAXED);
	if (out >= sh->n_out)
		return 0;
	return __atomic_load_n(&sh->w[worker].out[out].shard[beam].share_bps, __ATOMIC_RELAXED);
}

/* --- create / destroy ------------------------------------------------------------------------ */

static int
classes_init(struct sky_shaper *sh, char *err, size_t errlen)
{
	for (unsigned int c = 0; c < sh->n_classes; c++) {
		const struct sky_shaper_class_params *cp = &sh->p.cls[c];
		struct shp_class *cl = &sh->cls[c];
		uint64_t target = cp->target_us ? cp->target_us : codel_target_us(sh->p.rtt_us);
		uint64_t interval = cp->interval_us ? cp->interval_us : sh->p.rtt_us;
		uint64_t ts_per_us = sh->hz / 1000000;

		if (cp->queue_pkts == 0 || cp->queue_pkts > 65535) {
			snprintf(err, errlen, "class %u: queue %u packets out of range 1..65535", c,
				 cp->queue_pkts);
			return -1;
		}
		cl->qlimit = cp->queue_pkts;
		cl->aqm = cp->aqm;
		cl->target_ts = (uint32_t)((target * ts_per_us) >> TS_SHIFT);
		cl->interval_ts = (uint32_t)((interval * ts_per_us) >> TS_SHIFT);
		if (cl->target_ts == 0)
			cl->target_ts = 1;
		for (unsigned int k = 0; k < CODEL_TAB; k++)
			cl->codel_law[k] = (uint32_t)((double)cl->interval_ts / sqrt(k ? k : 1));
		if (cp->aqm == SKY_AQM_RED) {
			uint32_t mn = cp->red_min_pkts ? cp->red_min_pkts : cp->queue_pkts / 4;
			uint32_t mx = cp->red_max_pkts ? cp->red_max_pkts : cp->queue_pkts * 3 / 4;

			if (mn == 0)
				mn = 1;
			if (mx <= mn || mx > cp->queue_pkts || cp->red_max_p_pct == 0 ||
			    cp->red_max_p_pct > 100) {
				snprintf(err, errlen,
					 "class %u: RED needs min < max <= queue and "
					 "max_p 1..100",
					 c);
				return -1;
			}
			cl->red_min_fp = mn << 8;
			cl->red_max_fp = mx << 8;
			cl->red_maxp =
				(uint32_t)((UINT64_C(1) << 32) * cp->red_max_p_pct / 100 - 1);
			cl->red_slope = (uint32_t)(cl->red_maxp / (mx - mn));
		}
	}
	return 0;
}

/*
 * The big per-worker arrays the data path reads at random (slots, list links, flow
 * queues, slot index, policer buckets, counters) sit on 2 MB pages (sky_big_zalloc,
 * lib/core/mem.c): at 100k active subscribers every random line on 4 KB pages costs a page walk,
 * and in the whole pipeline the walks of the other stages' tables compete for the same TLB.
 */

/*
 * Counter blocks: one per subscriber index that ever counted on the worker, handed out in
 * order. The whole range (one per index) is reserved, not committed; the control thread
 * touches blocks ahead of the worker's cursor (max_active_per_worker of them, at create
 * and every rebalance), so taking one on the data path is a store, never a page fault.
 * Memory grows with the subscribers that were active, not with those configured.
 */
static int
ctr_reserve(struct shp_worker *w, size_t nsub)
{
	size_t len = sizeof(struct shp_subctr) * (nsub + 1);
	void *p;

	len = RTE_ALIGN_CEIL(len, (size_t)4096);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		 0);
	if (p == MAP_FAILED)
		return -1;
	(void)madvise(p, len, MADV_HUGEPAGE);
	w->ctrblk = p;
	w->ctr_map_len = len;
	w->ctr_max = (uint32_t)(nsub + 1);
	w->ctr_next = 1;
	w->ctr_ready = 1;
	return 0;
}

/* touch the blocks from ctr_ready up to max_active_per_worker ahead of the cursor, then
 * publish them. Only bytes of blocks not handed out yet are written (with the zero they
 * hold), so a page shared with blocks in use is never written under the worker. */
static void
ctr_touch(const struct sky_shaper *sh, struct shp_worker *w)
{
	uint64_t want = (uint64_t)__atomic_load_n(&w->ctr_next, __ATOMIC_RELAXED) +
			sh->p.max_active_per_worker;
	uint8_t *base = (uint8_t *)w->ctrblk;
	size_t from, to;

	if (want > w->ctr_max)
		want = w->ctr_max;
	if (want <= w->ctr_ready)
		return;
	from = (size_t)w->ctr_ready * sizeof(struct shp_subctr);
	to = (size_t)want * sizeof(struct shp_subctr);
	for (size_t o = from; o < to; o = RTE_ALIGN_FLOOR(o, (size_t)4096) + 4096)
		__atomic_store_n(&base[o], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&w->ctr_ready, (uint32_t)want, __ATOMIC_RELEASE);
}

void
shp_ctr_ready(struct sky_shaper *sh)
{
	for (unsigned int i = 0; i < sh->n_workers; i++)
		ctr_touch(sh, &sh->w[i]);
}

static int
workers_alloc(struct sky_shaper *sh, char *err, size_t errlen)
{
	size_t nsub = (size_t)sh->cap + 1;
	uint32_t n_fq = sh->p.max_flows_per_worker;

	sh->w = rte_zmalloc("sky_shaper_w", sizeof(*sh->w) * sh->n_workers, RTE_CACHE_LINE_SIZE);
	if (sh->w == NULL)
		goto nomem;
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		struct shp_worker *w = &sh->w[i];

		w->n_slots = sh->p.max_active_per_worker + 1;
		w->slots = sky_big_zalloc("sky_shaper_slots", sizeof(*w->slots) * w->n_slots);
		w->drr = sky_big_zalloc("sky_shaper_drr", sizeof(*w->drr) * w->n_slots);
		w->rt = sky_big_zalloc("sky_shaper_rt", sizeof(*w->rt) * w->n_slots);
		w->out = rte_zmalloc("sky_shaper_out", sizeof(*w->out) * sh->n_out,
				     RTE_CACHE_LINE_SIZE);
		w->ctridx = sky_big_zalloc("sky_shaper_ctridx", sizeof(*w->ctridx) * nsub);
		if (ctr_reserve(w, nsub) < 0)
			goto nomem;
		w->pol = sky_big_zalloc("sky_shaper_pol", sizeof(*w->pol) * nsub);
		w->pol_drops = sky_big_zalloc("sky_shaper_pol_drops", sizeof(*w->pol_drops) * nsub);
		w->up = rte_zmalloc("sky_shaper_up", sizeof(*w->up) * sh->n_beams,
				    RTE_CACHE_LINE_SIZE);
		w->n_fq = w->n_slots + n_fq;
		w->fq = sky_big_zalloc("sky_shaper_fq", sizeof(*w->fq) * (n_fq ? n_fq : 1));
		if (!w->slots || !w->drr || !w->rt || !w->out || !w->ctridx || !w->pol ||
		    !w->pol_drops || !w->up || !w->fq)
			goto nomem;
		for (uint32_t f = w->n_fq - 1; f >= w->n_slots; f--) {
			fqp(w, f)->next = w->fq_free;
			w->fq_free = f;
		}
		w->fq_n_free = n_fq;
		/* buckets start full (see shp_refill) */
		for (size_t k = 0; k < nsub; k++)
			w->pol[k].tokens = INT64_MAX;
		for (unsigned int b = 0; b < sh->n_beams; b++)
			w->up[b].tokens = INT64_MAX;
		for (uint32_t s = w->n_slots - 1; s >= 1; s--) {
			w->slots[s].next = w->free_head;
			w->free_head = s;
		}
		w->n_free = w->n_slots - 1;
		ctr_touch(sh, w);
		for (unsigned int o = 0; o < sh->n_out; o++) {
			struct shp_out *out = &w->out[o];

			out->idx = sky_big_zalloc("sky_shaper_idx", sizeof(uint32_t) * nsub);
			out->shard =
				rte_zmalloc("sky_shaper_shard", sizeof(*out->shard) * sh->n_beams,
					    RTE_CACHE_LINE_SIZE);
			out->wheel = rte_zmalloc("sky_shaper_wheel", sizeof(uint32_t) * WHEEL_SIZE,
						 RTE_CACHE_LINE_SIZE);
			out->chist = rte_zmalloc("sky_shaper_chist",
						 sizeof(*out->chist) * SKY_MAX_CLASSES,
						 RTE_CACHE_LINE_SIZE);
			if (!out->idx || !out->shard || !out->wheel || !out->chist)
				goto nomem;
			for (unsigned int b = 0; b < sh->n_beams; b++)
				out->shard[b].tokens = INT64_MAX;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen,
		 "shaper: out of DPDK memory for %u workers x %u slots, %u flow queues, %zu "
		 "subscribers",
		 sh->n_workers, sh->p.max_active_per_worker, n_fq, nsub);
	return -1;
}

static void
shaper_free(struct sky_shaper *sh)
{
	if (sh->w != NULL) {
		for (unsigned int i = 0; i < sh->n_workers; i++) {
			struct shp_worker *w = &sh->w[i];

			if (w->out != NULL)
				for (unsigned int o = 0; o < sh->n_out; o++) {
					sky_big_free(w->out[o].idx);
					rte_free(w->out[o].shard);
					rte_free(w->out[o].wheel);
					rte_free(w->out[o].chist);
				}
			rte_free(w->out);
			sky_big_free(w->slots);
			sky_big_free(w->drr);
			sky_big_free(w->rt);
			sky_big_free(w->ctridx);
			if (w->ctrblk != NULL)
				munmap(w->ctrblk, w->ctr_map_len);
			sky_big_free(w->pol);
			sky_big_free(w->pol_drops);
			rte_free(w->up);
			sky_big_free(w->fq);
		}
		rte_free(sh->w);
	}
	rte_free(sh->plans);
	free(sh->cp_plans);
	free(sh->cp_beams);
	free(sh->cp_down);
	free(sh->cp_up);
	free(sh->cp_subrate);
	free(sh->hist_mark);
	free(sh->hist_last);
	free(sh);
}

struct sky_shaper *
sky_shaper_create_params(const struct sky_shaper_params *p, const struct sky_plan *plans,
			 unsigned int n_plans, const struct sky_beam *beams, unsigned int n_beams,
			 char *err, size_t errlen)
{
	static const struct rte_mbuf_dynfield dyn = {
		.name = "skygate_shaper_queue",
		.size = sizeof(struct shp_mdyn),
		.align = __alignof__(struct shp_mdyn),
	};
	struct sky_shaper *sh;
	uint64_t period_tsc;

	if (p->n_workers == 0 || p->n_workers > SKY_MAX_WORKERS || p->n_out_ports == 0 ||
	    p->n_out_ports > 8 || p->n_classes == 0 || p->n_classes > SKY_MAX_CLASSES ||
	    n_plans == 0 || n_plans > SKY_MAX_PLANS || n_beams == 0 || n_beams > SKY_MAX_BEAMS ||
	    p->sub_capacity >= UINT32_MAX - 1 || p->max_active_per_worker == 0 ||
	    p->max_active_per_worker >= UINT32_MAX - 1 || p->period_us == 0 ||
	    p->max_delay_us == 0 || p->max_delay_us > 10000000 ||
	    (uint64_t)p->max_flows_per_worker >= UINT32_MAX - 1) {
		snprintf(err, errlen,
			 "shaper: bad parameters (workers %u of 1..%u, outputs %u of "
			 "1..8, classes %u, plans %u, beams %u, max_active %u)",
			 p->n_workers, SKY_MAX_WORKERS, p->n_out_ports, p->n_classes, n_plans,
			 n_beams, p->max_active_per_worker);
		return NULL;
	}
	sh = calloc(1, sizeof(*sh));
	if (sh == NULL) {
		snprintf(err, errlen, "shaper: out of memory");
		return NULL;
	}
	sh->p = *p;
	sh->n_plans = n_plans;
	sh->n_beams = n_beams;
	sh->n_classes = p->n_classes;
	sh->n_workers = p->n_workers;
	sh->n_out = p->n_out_ports;
	sh->cap = p->sub_capacity;
	sh->overhead = p->frame_overhead;
	sh->hz = p->tsc_hz ? p->tsc_hz : rte_get_tsc_hz();
	period_tsc = sh->hz / 1000000 * p->period_us;
	sh->tick_shift = 0;
	while ((period_tsc >> sh->tick_shift) > WHEEL_MAX_SLEEP)
		sh->tick_shift++;
	sh->max_sleep_tsc = period_tsc;
	sh->max_delay_ts = (uint32_t)((sh->hz / 1000000 * p->max_delay_us) >> TS_SHIFT);
	if (sh->p.max_flows_per_worker == 0) {
		uint64_t nf = 2ULL * p->max_active_per_worker;

		sh->p.max_flows_per_worker = nf > (1u << 26) ? (1u << 26) : (uint32_t)nf;
	}

	sh->mbuf_off = rte_mbuf_dynfield_register(&dyn);
	if (sh->mbuf_off < 0) {
		snprintf(err, errlen, "shaper: cannot register the mbuf dynamic field: %s",
			 strerror(rte_errno));
		goto fail;
	}
	sh->cp_plans = calloc(SKY_MAX_PLANS, sizeof(*sh->cp_plans));
	sh->cp_beams = calloc(n_beams, sizeof(*sh->cp_beams));
	sh->cp_down = calloc((size_t)n_beams * N_SHARDS(sh), sizeof(*sh->cp_down));
	sh->cp_up = calloc((size_t)n_beams * sh->n_workers, sizeof(*sh->cp_up));
	sh->cp_subrate = calloc(2 * ((size_t)sh->cap + 1), sizeof(uint64_t));
	sh->hist_mark = calloc(n_beams + SKY_MAX_CLASSES, sizeof(*sh->hist_mark));
	sh->hist_last = calloc(n_beams + SKY_MAX_CLASSES, sizeof(*sh->hist_last));
	sh->plans = rte_zmalloc("sky_shaper_plans", sizeof(*sh->plans) * SKY_MAX_PLANS,
				RTE_CACHE_LINE_SIZE);
	if (!sh->cp_plans || !sh->cp_beams || !sh->cp_down || !sh->cp_up || !sh->cp_subrate ||
	    !sh->plans || !sh->hist_mark || !sh->hist_last) {
		snprintf(err, errlen, "shaper: out of memory");
		goto fail;
	}
	if (classes_init(sh, err, errlen) < 0)
		goto fail;
	for (unsigned int i = 0; i < n_plans; i++) {
		if (sky_shaper_check_plan(sh, &plans[i], err, errlen) < 0)
			goto fail;
		sh->cp_plans[i] = plans[i];
	}
	for (unsigned int i = 0; i < n_beams; i++) {
		if (sky_shaper_check_beam(sh, &beams[i], err, errlen) < 0)
			goto fail;
		sh->cp_beams[i] = beams[i];
	}
	if (workers_alloc(sh, err, errlen) < 0)
		goto fail;
	plans_publish(sh);
	/* until demand is known, every shard gets an equal part of its beam */
	for (unsigned int b = 0; b < n_beams; b++)
		rebalance_beam(sh, b, 0, 0);
	return sh;
fail:
	shaper_free(sh);
	return NULL;
}

void
shp_free_queues(struct sky_shaper *sh)
{
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		struct shp_worker *w = &sh->w[i];

		for (uint32_t sid = 1; sid < w->n_slots; sid++) {
			struct shp_slot *s = &w->slots[sid];

			if (s->state == SLOT_FREE)
				continue;
			for (unsigned int b = 0; b <= SHP_NFQ; b++) {
				struct shp_fq *f;

				/* the map's flow queues, then the slot's own (not in the map) */
				if (b == SHP_NFQ)
					f = s->own_fq ? &s->own : NULL;
				else
					f = s->fqmap[b] ? fqp(w, s->fqmap[b]) : NULL;
				if (f == NULL)
					continue;
				while (f->head) {
					struct rte_mbuf *m = f->head;

					f->head = mdyn(sh, m)->next;
					rte_pktmbuf_free(m);
				}
				f->tail = NULL;
				f->qn = 0;
			}
			s->backlog_pkts = 0;
			s->backlog_bytes = 0;
		}
		w->queued = 0;
	}
}

void
shp_forget_sub(struct sky_shaper *sh, uint32_t sub)
{
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		struct shp_worker *w = &sh->w[i];

		uint32_t blk = __atomic_load_n(&w->ctridx[sub], __ATOMIC_ACQUIRE);

		/* the block stays with the index: its next holder starts from zero */
		if (blk != 0)
			memset(&w->ctrblk[blk], 0, sizeof(w->ctrblk[blk]));
		memset(&w->pol[sub], 0, sizeof(w->pol[sub]));
		w->pol_drops[sub] = 0;
		__atomic_store_n(&w->pol[sub].tokens, INT64_MAX, __ATOMIC_RELAXED);
	}
	sh->cp_subrate[2 * sub] = sh->cp_subrate[2 * sub + 1] = 0;
}

void
sky_shaper_destroy(struct sky_shaper *sh)
{
	if (sh == NULL)
		return;
	if (sh->w != NULL)
		shp_free_queues(sh);
	if (sh->on_destroy != NULL)
		sh->on_destroy(sh);
	shaper_free(sh);
}

bool
sky_shaper_enabled(const struct sky_shaper *sh)
{
	return sh != NULL && sh->p.enabled;
}

/* --- statistics -------------------------------------------------------------------------- */

/* a counter block's downstream counts (offered bytes: what was dropped; the caller adds
 * what was sent and queued) */
static void
add_subctr(struct sky_shaper_stats *st, const struct shp_subctr *c)
{
	st->ctr[SKY_SHAPER_OFFERED_BYTES] += c->drop_bytes;
	st->ctr[SKY_SHAPER_SENT_PKTS] += c->ctr[SUBC(SC_SENT_PKTS)];
	st->ctr[SKY_SHAPER_SENT_BYTES] += c->ctr[SUBC(SC_SENT_BYTES)];
	st->ctr[SKY_SHAPER_DROP_TAIL] += c->ctr[SUBC(SC_TAIL)];
	st->ctr[SKY_SHAPER_DROP_AQM] += c->ctr[SUBC(SC_AQM)];
	st->ctr[SKY_SHAPER_DROP_DELAY] += c->ctr[SUBC(SC_DELAY)];
	for (unsigned int k = 0; k < SKY_MAX_CLASSES; k++) {
		st->cls_tail[k] += c->cls_tail[k];
		st->cls_aqm[k] += c->cls_aqm[k];
	}
}

/* offered = sent + dropped + queued, from what was added since `before` */
static void
add_offered(struct sky_shaper_stats *st, const struct sky_shaper_stats *before)
{
	st->ctr[SKY_SHAPER_OFFERED_PKTS] +=
		st->ctr[SKY_SHAPER_SENT_PKTS] - before->ctr[SKY_SHAPER_SENT_PKTS] +
		st->ctr[SKY_SHAPER_DROP_TAIL] - before->ctr[SKY_SHAPER_DROP_TAIL] +
		st->ctr[SKY_SHAPER_DROP_AQM] - before->ctr[SKY_SHAPER_DROP_AQM] +
		st->ctr[SKY_SHAPER_DROP_DELAY] - before->ctr[SKY_SHAPER_DROP_DELAY] +
		st->queued_pkts - before->queued_pkts;
	st->ctr[SKY_SHAPER_OFFERED_BYTES] += st->ctr[SKY_SHAPER_SENT_BYTES] -
					     before->ctr[SKY_SHAPER_SENT_BYTES] + st->queued_bytes -
					     before->queued_bytes;
}

int
sky_shaper_ctr_pool(const struct sky_shaper *sh, unsigned int worker,
		    struct sky_shaper_ctr_pool *out)
{
	const struct shp_worker *w;
	struct sky_shaper_stats zero;

	if (worker >= sh->n_workers)
		return -ENOENT;
	w = &sh->w[worker];
	memset(out, 0, sizeof(*out));
	out->blocks_in_use = __atomic_load_n(&w->ctr_next, __ATOMIC_RELAXED) - 1;
	out->blocks_ready = __atomic_load_n(&w->ctr_ready, __ATOMIC_RELAXED) - 1;
	out->blocks_max = w->ctr_max - 1;
	out->misses = __atomic_load_n(&w->ctr_miss, __ATOMIC_RELAXED);
	out->block_bytes = sizeof(struct shp_subctr);
	add_subctr(&out->uncounted, &w->ctr_agg);
	memset(&zero, 0, sizeof(zero));
	add_offered(&out->uncounted, &zero);
	return 0;
}

void
shp_collect_sub(const struct sky_shaper *sh, uint32_t sub, struct sky_shaper_stats *st)
{
	struct sky_shaper_stats before = *st;

	for (unsigned int i = 0; i < sh->n_workers; i++) {
		const struct shp_worker *w = &sh->w[i];
		const struct shp_subctr *c = shp_ctr_peek(w, sub);
		const struct shp_pol *p = &w->pol[sub];

		st->ctr[SKY_SHAPER_UP_PASS_PKTS] += p->pass_pkts;
		st->ctr[SKY_SHAPER_UP_PASS_BYTES] += p->pass_bytes;
		st->ctr[SKY_SHAPER_DROP_POLICE] += w->pol_drops[sub];
		if (c != NULL)
			add_subctr(st, c);
		for (unsigned int o = 0; o < sh->n_out; o++) {
			uint32_t sid = __atomic_load_n(&w->out[o].idx[sub], __ATOMIC_ACQUIRE);
			const struct shp_slot *s;

			if (sid == 0 || sid >= w->n_slots)
				continue;
			s = &w->slots[sid];
			if (s->sub != sub)
				continue;
			st->ctr[SKY_SHAPER_SENT_PKTS] += s->sent_pkts;
			st->ctr[SKY_SHAPER_SENT_BYTES] += s->sent_bytes;
			st->queued_pkts += s->backlog_pkts;
			st->queued_bytes += s->backlog_bytes;
			if (s->state == SLOT_ACTIVE || s->state == SLOT_SLEEP)
				st->active++;
		}
	}
	/* the data path counts what leaves; what came is what left, was dropped or waits */
	add_offered(st, &before);
}

int
sky_shaper_sub_stats(const struct sky_shaper *sh, uint32_t sub_idx, struct sky_shaper_stats *out)
{
	uint32_t sub = sub_idx == SKY_SUB_NONE ? sh->cap : sub_idx;

	if (sub > sh->cap)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	shp_collect_sub(sh, sub, out);
	return 0;
}

int
sky_shaper_beam_stats(const struct sky_shaper *sh, unsigned int beam, struct sky_shaper_stats *out)
{
	if (beam >= sh->n_beams)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		const struct shp_worker *w = &sh->w[i];
		const struct shp_upshard *u = &w->up[beam];

		for (unsigned int o = 0; o < sh->n_out; o++) {
			const struct shp_shard *sd = &w->out[o].shard[beam];

			out->ctr[SKY_SHAPER_OFFERED_PKTS] += sd->ctr[SC_OFF_PKTS];
			out->ctr[SKY_SHAPER_OFFERED_BYTES] += sd->ctr[SC_OFF_BYTES];
			out->ctr[SKY_SHAPER_SENT_PKTS] += sd->ctr[SC_SENT_PKTS];
			out->ctr[SKY_SHAPER_SENT_BYTES] += sd->ctr[SC_SENT_BYTES];
			out->ctr[SKY_SHAPER_DROP_TAIL] += sd->ctr[SC_TAIL];
			out->ctr[SKY_SHAPER_DROP_AQM] += sd->ctr[SC_AQM];
			out->ctr[SKY_SHAPER_DROP_DELAY] += sd->ctr[SC_DELAY];
			out->queued_pkts += (uint64_t)sd->queued_pkts;
			out->queued_bytes += (uint64_t)sd->queued_bytes;
			out->active += sd->n_active;
			out->rate_bps += sd->share_bps;
		}
		out->ctr[SKY_SHAPER_UP_PASS_PKTS] += u->pass_pkts;
		out->ctr[SKY_SHAPER_UP_PASS_BYTES] += u->pass_bytes;
		out->ctr[SKY_SHAPER_DROP_POLICE] += u->drops_sub + u->drops_beam;
		out->up_rate_bps += u->share_bps;
	}
	return 0;
}

void
sky_shaper_state_size(const struct sky_shaper *sh, size_t *per_sub, size_t *per_active)
{
	*per_sub = sh->n_workers * (sizeof(struct shp_pol) + sizeof(uint64_t) + sizeof(uint32_t) +
				    sh->n_out * sizeof(uint32_t));
	*per_active = sizeof(struct shp_slot) + 2 * sizeof(struct shp_link) +
		      sizeof(struct shp_subctr) +
		      sizeof(struct shp_fq_pool) * sh->p.max_flows_per_worker /
			      sh->p.max_active_per_worker;
}

/* --- queueing delay ------------------------------------------------------------------------ */

/* sum over workers and outputs of histogram k (beams first, then classes); the max is
 * the largest of theirs */
static void
hist_sum(const struct sky_shaper *sh, unsigned int k, struct shp_hist *h)
{
	memset(h, 0, sizeof(*h));
	for (unsigned int i = 0; i < sh->n_workers; i++)
		for (unsigned int o = 0; o < sh->n_out; o++) {
			const struct shp_out *out = &sh->w[i].out[o];

			/* with one class the data path keeps the beams' only: class 0 is all */
			for (unsigned int j = 0; j < sh->n_beams; j++) {
				const struct shp_hist *x;
				uint32_t mx;

				if (k < sh->n_beams)
					x = &out->shard[k].hist;
				else if (sh->n_classes > 1)
					x = &out->chist[k - sh->n_beams];
				else if (k == sh->n_beams)
					x = &out->shard[j].hist;
				else
					break;
				mx = __atomic_load_n(&x->max_ts, __ATOMIC_RELAXED);
				for (unsigned int b = 0; b < SHP_HIST; b++)
					h->b[b] += __atomic_load_n(&x->b[b], __ATOMIC_RELAXED);
				h->sum_ts += __atomic_load_n(&x->sum_ts, __ATOMIC_RELAXED);
				if (mx > h->max_ts)
					h->max_ts = mx;
				if (k < sh->n_beams || sh->n_classes > 1)
					break;
			}
		}
}

/* the workers' max since the last roll starts again (a sample racing with this store may
 * be lost: the max of that interval is then the second largest) */
static void
hist_reset_max(struct sky_shaper *sh, unsigned int k)
{
	for (unsigned int i = 0; i < sh->n_workers; i++)
		for (unsigned int o = 0; o < sh->n_out; o++) {
			struct shp_out *out = &sh->w[i].out[o];
			struct shp_hist *x = k < sh->n_beams ? &out->shard[k].hist
							     : &out->chist[k - sh->n_beams];

			__atomic_store_n(&x->max_ts, 0, __ATOMIC_RELAXED);
		}
}

void
shp_hist_roll(struct sky_shaper *sh, uint64_t now_tsc)
{
	uint64_t iv = sh->hz / 1000000 * SKY_SHAPER_DELAY_INTERVAL_US;
	struct shp_hist cur;

	if (sh->hist_roll_tsc != 0 && now_tsc - sh->hist_roll_tsc < iv)
		return;
	sh->hist_roll_tsc = now_tsc;
	for (unsigned int k = 0; k < sh->n_beams + SKY_MAX_CLASSES; k++) {
		hist_sum(sh, k, &cur);
		for (unsigned int b = 0; b < SHP_HIST; b++)
			sh->hist_last[k].b[b] = cur.b[b] - sh->hist_mark[k].b[b];
		sh->hist_last[k].sum_ts = cur.sum_ts - sh->hist_mark[k].sum_ts;
		sh->hist_last[k].max_ts = cur.max_ts;
		/* the mark keeps the largest sojourn of every interval rolled so far */
		if (sh->hist_mark[k].max_ts > cur.max_ts)
			cur.max_ts = sh->hist_mark[k].max_ts;
		sh->hist_mark[k] = cur;
		hist_reset_max(sh, k);
	}
}

static uint64_t
ts_to_us(const struct sky_shaper *sh, uint64_t ts)
{
	return (uint64_t)(((unsigned __int128)ts << TS_SHIFT) * 1000000 / sh->hz);
}

static void
delay_of(const struct sky_shaper *sh, const struct shp_hist *h, struct sky_shaper_delay *d)
{
	uint64_t n = 0, acc = 0;
	int top = -1;

	memset(d, 0, sizeof(*d));
	for (unsigned int b = 0; b < SHP_HIST; b++) {
		n += h->b[b];
		if (h->b[b])
			top = (int)b;
	}
	d->count = n;
	d->sum_us = ts_to_us(sh, h->sum_ts);
	if (n == 0)
		return;
	for (unsigned int b = 0; b < SHP_HIST; b++) {
		acc += h->b[b];
		if (d->p50_us == 0 && acc * 2 >= n)
			d->p50_us = ts_to_us(sh, shp_hist_upper(b));
		if (acc * 100 >= n * 99) {
			d->p99_us = ts_to_us(sh, shp_hist_upper(b));
			break;
		}
	}
	d->max_us = ts_to_us(sh, h->max_ts);
	/* the max was reset after the histogram's last sample: bound it by the top bucket */
	if (d->max_us == 0 && top >= 0)
		d->max_us = ts_to_us(sh, shp_hist_upper((unsigned int)top));
	/* a percentile is its bucket's upper bound, and no sample exceeds the max: the
	 * smaller of the two bounds it (a p99 above the max read as a delay no packet had) */
	if (d->p50_us > d->max_us)
		d->p50_us = d->max_us;
	if (d->p99_us > d->max_us)
		d->p99_us = d->max_us;
}

static int
delay_index(const struct sky_shaper *sh, enum sky_shaper_delay_of of, unsigned int idx,
	    unsigned int *k)
{
	if (of == SKY_SHAPER_DELAY_BEAM && idx < sh->n_beams)
		*k = idx;
	else if (of == SKY_SHAPER_DELAY_CLASS && idx < sh->n_classes)
		*k = sh->n_beams + idx;
	else
		return -ENOENT;
	return 0;
}

int
sky_shaper_delay(const struct sky_shaper *sh, enum sky_shaper_delay_of of, unsigned int idx,
		 struct sky_shaper_delay *last, struct sky_shaper_delay *total)
{
	struct shp_hist cur;
	unsigned int k;

	if (delay_index(sh, of, idx, &k) < 0)
		return -ENOENT;
	if (last != NULL)
		delay_of(sh, &sh->hist_last[k], last);
	if (total != NULL) {
		hist_sum(sh, k, &cur);
		/* since start: the rolled intervals' max (kept in the mark) and this one's */
		if (sh->hist_mark[k].max_ts > cur.max_ts)
			cur.max_ts = sh->hist_mark[k].max_ts;
		delay_of(sh, &cur, total);
	}
	return 0;
}

int
sky_shaper_delay_buckets(const struct sky_shaper *sh, enum sky_shaper_delay_of of, unsigned int idx,
			 const uint64_t *le_us, unsigned int n_le, uint64_t *cum, uint64_t *count,
			 uint64_t *sum_us)
{
	struct shp_hist cur;
	unsigned int k, j = 0;
	uint64_t acc = 0;

	if (delay_index(sh, of, idx, &k) < 0)
		return -ENOENT;
	hist_sum(sh, k, &cur);
	memset(cum, 0, sizeof(*cum) * n_le);
	/* a bucket counts under the first bound its upper edge does not exceed */
	for (unsigned int b = 0; b < SHP_HIST; b++) {
		uint64_t up = ts_to_us(sh, shp_hist_upper(b));

		while (j < n_le && up > le_us[j])
			cum[j++] = acc;
		acc += cur.b[b];
	}
	while (j < n_le)
		cum[j++] = acc;
	*count = acc;
	*sum_us = ts_to_us(sh, cur.sum_ts);
	return 0;
}
