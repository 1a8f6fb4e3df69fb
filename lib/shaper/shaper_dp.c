/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper data path: upstream policing, downstream enqueue (queues, tail drop, RED) and
 * dequeue (sleep wheel, beam buckets, DRR among subscribers, strict + DRR among classes,
 * CoDel). Runs on worker `worker` only; touches that worker's state only.
 */
#include <stddef.h>

#include <rte_branch_prediction.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_random.h>

#include "shaper_priv.h"

_Static_assert(offsetof(struct shp_slot, ctr) == RTE_CACHE_LINE_SIZE,
	       "slot: scheduler header is one cache line, counters start line 1");

/* --- upstream policing ------------------------------------------------------------- */

void
sky_shaper_police_burst(struct sky_shaper *sh, unsigned int worker, struct sky_meta *meta,
			uint16_t n, uint64_t now_tsc)
{
	struct shp_worker *w;
	const uint32_t cap = sh->cap;

	if (sh == NULL || !sh->p.enabled)
		return;
	w = &sh->w[worker];
	for (uint16_t i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];
		uint32_t sub = m->sub_idx < cap ? m->sub_idx : cap;
		const struct shp_plan *pl;
		struct shp_upshard *u;
		struct shp_pol *p;
		int64_t cost;

		if (i + 1 < n && meta[i + 1].sub_idx < cap)
			rte_prefetch0(&w->pol[meta[i + 1].sub_idx]);
		if (!sky_meta_live(m) || m->dir != SKY_DIR_UP)
			continue;
		pl = &sh->plans[m->plan < sh->n_plans ? m->plan : 0];
		u = &w->up[m->beam < sh->n_beams ? m->beam : 0];
		p = &w->pol[sub];
		cost = (int64_t)(m->pkt_len + sh->overhead) << FP;
		shp_refill(&p->tokens, &p->last, now_tsc,
			   __atomic_load_n(&pl->up_rate_fp, __ATOMIC_RELAXED),
			   __atomic_load_n(&pl->up_burst_fp, __ATOMIC_RELAXED));
		if (unlikely(p->tokens < cost)) {
			p->drops++;
			u->drops_sub++;
			sky_meta_drop(m, SKY_DROP_POLICE);
			continue;
		}
		shp_refill(&u->tokens, &u->last, now_tsc,
			   __atomic_load_n(&u->rate_fp, __ATOMIC_RELAXED),
			   __atomic_load_n(&u->burst_fp, __ATOMIC_RELAXED));
		if (unlikely(u->tokens < cost)) {
			p->drops++;
			u->drops_beam++;
			sky_meta_drop(m, SKY_DROP_POLICE);
			continue;
		}
		p->tokens -= cost;
		u->tokens -= cost;
		p->pass_pkts++;
		p->pass_bytes += m->pkt_len;
		u->pass_pkts++;
		u->pass_bytes += m->pkt_len;
	}
}

/* --- slots --------------------------------------------------------------------------- */

/* give an IDLE slot back to the pool; its counters go to the subscriber's totals */
static void
slot_release(struct shp_worker *w, uint32_t sid)
{
	struct shp_slot *s = &w->slots[sid];
	struct shp_subctr *c = &w->subctr[s->sub];

	c->ctr[SC_OFF_PKTS] += s->ctr[0];
	c->ctr[SC_OFF_BYTES] += s->ctr[1];
	c->ctr[SC_SENT_PKTS] += s->ctr[2];
	c->ctr[SC_SENT_BYTES] += s->ctr[3];
	__atomic_store_n(&w->out[s->out].idx[s->sub], 0, __ATOMIC_RELEASE);
	s->state = SLOT_FREE;
	s->next = w->free_head;
	w->free_head = sid;
	w->n_free++;
}

static uint32_t
slot_alloc(struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, unsigned int out,
	   uint32_t sub, uint16_t plan, uint16_t beam, uint64_t now)
{
	struct shp_slot *s;
	uint32_t sid = w->free_head;

	if (unlikely(sid == 0)) {
		/*
		 * Pool dry: take an IDLE slot from its subscriber, found by a clock hand (at
		 * most 64 looks). Idle slots stay with their subscribers until then, so a
		 * subscriber that comes back keeps its bucket (no credit for going idle) and
		 * costs no allocation, and going idle costs no list work.
		 */
		for (int k = 0; k < 64; k++) {
			uint32_t h = w->clock + 1 < w->n_slots ? w->clock + 1 : 1;

			w->clock = h;
			if (w->slots[h].state == SLOT_IDLE) {
				slot_release(w, h);
				break;
			}
		}
		sid = w->free_head;
		if (sid == 0)
			return 0;
	}
	s = &w->slots[sid];
	w->free_head = s->next;
	w->n_free--;
	memset(s, 0, sizeof(*s));
	s->tokens = __atomic_load_n(&sh->plans[plan].down_burst_fp, __ATOMIC_RELAXED);
	s->last = now;
	s->sub = sub;
	s->plan = plan;
	s->beam = beam;
	s->out = (uint8_t)out;
	s->state = SLOT_IDLE;
	__atomic_store_n(&o->idx[sub], sid, __ATOMIC_RELEASE);
	return sid;
}

/* --- active lists and the sleep wheel ------------------------------------------------ */
/*
 * A shard keeps two lists of ACTIVE slots: the DRR list (every ACTIVE slot, doubly
 * linked) and the realtime list (ACTIVE slots with class-0 packets queued), served first
 * so realtime latency does not grow with the number of backlogged subscribers on the beam.
 */

static inline void
drr_append(struct shp_worker *w, struct shp_shard *sd, uint32_t sid)
{
	w->drr[sid].next = 0;
	w->drr[sid].prev = sd->tail;
	if (sd->tail)
		w->drr[sd->tail].next = sid;
	else
		sd->head = sid;
	sd->tail = sid;
}

static inline void
drr_remove(struct shp_worker *w, struct shp_shard *sd, uint32_t sid)
{
	struct shp_link *l = &w->drr[sid];

	if (l->prev)
		w->drr[l->prev].next = l->next;
	else
		sd->head = l->next;
	if (l->next)
		w->drr[l->next].prev = l->prev;
	else
		sd->tail = l->prev;
	l->next = l->prev = 0;
}

static inline void
rt_append(struct shp_worker *w, struct shp_shard *sd, uint32_t sid)
{
	w->slots[sid].in_rt = 1;
	w->rt[sid].next = 0;
	w->rt[sid].prev = sd->rt_tail;
	if (sd->rt_tail)
		w->rt[sd->rt_tail].next = sid;
	else
		sd->rt_head = sid;
	sd->rt_tail = sid;
}

static inline void
rt_remove(struct shp_worker *w, struct shp_shard *sd, uint32_t sid)
{
	struct shp_slot *s = &w->slots[sid];
	struct shp_link *l = &w->rt[sid];

	if (!s->in_rt)
		return;
	if (l->prev)
		w->rt[l->prev].next = l->next;
	else
		sd->rt_head = l->next;
	if (l->next)
		w->rt[l->next].prev = l->prev;
	else
		sd->rt_tail = l->prev;
	l->next = l->prev = 0;
	s->in_rt = 0;
}

static inline void
make_active(const struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, uint32_t sid)
{
	struct shp_slot *s = &w->slots[sid];
	struct shp_shard *sd = &o->shard[s->beam];

	s->state = SLOT_ACTIVE;
	drr_append(w, sd, sid);
	if ((s->nonempty & 1) && sh->n_classes > 1)
		rt_append(w, sd, sid);
	o->active_mask |= 1ULL << s->beam;
}

/* the subscriber's bucket is empty: park it until it has refilled enough for one byte.
 * The slot is on no list of its shard. */
static inline void
slot_sleep(struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, uint32_t sid,
	   uint64_t now)
{
	struct shp_slot *s = &w->slots[sid];
	uint64_t inv = __atomic_load_n(&sh->plans[s->plan].down_inv_fp, __ATOMIC_RELAXED);
	uint64_t wait = (uint64_t)(((unsigned __int128)(uint64_t)(-s->tokens + 1) * inv) >> 64) + 1;
	uint64_t tick;

	if (wait > sh->max_sleep_tsc)
		wait = sh->max_sleep_tsc;
	tick = (now + wait) >> sh->tick_shift;
	if (tick <= o->wheel_tick)
		tick = o->wheel_tick + 1;
	s->state = SLOT_SLEEP;
	s->next = o->wheel[tick & (WHEEL_SIZE - 1)];
	o->wheel[tick & (WHEEL_SIZE - 1)] = sid;
}

/* take an ACTIVE slot off its shard's lists and park it */
static inline void
slot_park(struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, struct shp_shard *sd,
	  uint32_t sid, uint64_t now)
{
	drr_remove(w, sd, sid);
	rt_remove(w, sd, sid);
	slot_sleep(sh, w, o, sid, now);
}

static inline void
wheel_advance(const struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, uint64_t now,
	      unsigned int shift)
{
	uint64_t now_tick = now >> shift;
	uint64_t t, n;

	if (now_tick <= o->wheel_tick)
		return;
	n = now_tick - o->wheel_tick;
	if (n > WHEEL_SIZE)
		n = WHEEL_SIZE;
	for (t = now_tick - n + 1; t <= now_tick; t++) {
		uint32_t *b = &o->wheel[t & (WHEEL_SIZE - 1)];
		uint32_t sid = *b;

		*b = 0;
		while (sid) {
			uint32_t nx = w->slots[sid].next;

			make_active(sh, w, o, sid);
			sid = nx;
		}
	}
	o->wheel_tick = now_tick;
}

/* the subscriber moved to another beam: its slot, queued packets and weight go along */
static void
slot_move_beam(const struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, uint32_t sid,
	       uint16_t beam)
{
	struct shp_slot *s = &w->slots[sid];
	struct shp_shard *from = &o->shard[s->beam], *to = &o->shard[beam];

	if (s->state == SLOT_ACTIVE) {
		drr_remove(w, from, sid);
		rt_remove(w, from, sid);
		if (from->head == 0)
			o->active_mask &= ~(1ULL << s->beam);
	}
	if (s->state == SLOT_ACTIVE || s->state == SLOT_SLEEP) {
		from->n_active--;
		from->active_weight -= s->weight;
		to->n_active++;
		to->active_weight += s->weight;
	}
	from->queued_pkts -= s->backlog_pkts;
	from->queued_bytes -= s->backlog_bytes;
	to->queued_pkts += s->backlog_pkts;
	to->queued_bytes += s->backlog_bytes;
	s->beam = beam;
	if (s->state == SLOT_ACTIVE) {
		drr_append(w, to, sid);
		if ((s->nonempty & 1) && sh->n_classes > 1)
			rt_append(w, to, sid);
		o->active_mask |= 1ULL << beam;
	}
}

/* --- queues and AQM ------------------------------------------------------------------- */

static inline struct rte_mbuf *
q_pop(const struct sky_shaper *sh, struct shp_cq *q)
{
	struct rte_mbuf *m = q->head;

	q->head = mdyn(sh, m)->next;
	if (q->head == NULL)
		q->tail = NULL;
	return m;
}

/* RED on the average queue length (EWMA weight 1/16, packets << 8) */
static inline int
red_drop(const struct shp_class *c, struct shp_cq *a, uint32_t qlen)
{
	uint32_t avg = a->count;
	uint32_t q = qlen << 8;

	avg = avg + (uint32_t)(((int32_t)q - (int32_t)avg) >> 4);
	a->count = avg;
	if (avg < c->red_min_fp)
		return 0;
	if (avg >= c->red_max_fp)
		return 1;
	return (uint32_t)rte_rand() < (uint64_t)(avg - c->red_min_fp) * c->red_slope >> 8;
}

static uint32_t
isqrt32(uint32_t x)
{
	uint32_t r = 0, bit = 1u << 30;

	while (bit > x)
		bit >>= 2;
	while (bit) {
		if (x >= r + bit) {
			x -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

/* control law: next drop interval / sqrt(count) later; table below CODEL_TAB, beyond it
 * (an unresponsive flow) one integer square root and a division per drop */
static inline uint32_t
codel_next(const struct shp_class *c, uint32_t t, uint32_t count)
{
	if (likely(count < CODEL_TAB))
		return t + c->codel_law[count];
	return t + c->interval_ts / isqrt32(count);
}

/* RFC 8289: may this head packet be dropped? */
static inline int
codel_ok_to_drop(const struct shp_class *c, struct shp_cq *a, uint32_t sojourn, uint32_t now,
		 uint32_t q_bytes)
{
	if (sojourn < c->target_ts || q_bytes <= SHP_MTU_COST) {
		a->first_above = 0;
		return 0;
	}
	if (a->first_above == 0) {
		a->first_above = (now + c->interval_ts) | 1;
		return 0;
	}
	return (int32_t)(now - a->first_above) >= 0;
}

/* --- enqueue ----------------------------------------------------------------------------- */

uint16_t
sky_shaper_enqueue(struct sky_shaper *sh, unsigned int worker, unsigned int out,
		   struct rte_mbuf **pkts, const struct sky_meta *meta, uint16_t n,
		   uint64_t now_tsc, uint64_t drops[SKY_DROP_MAX])
{
	struct shp_worker *w = &sh->w[worker];
	struct shp_out *o = &w->out[out];
	struct rte_mbuf *dropped[SKY_BURST];
	uint16_t n_drop = 0, queued = 0;
	const uint32_t cap = sh->cap;
	const uint32_t ts = (uint32_t)(now_tsc >> TS_SHIFT);
	uint32_t subs[SKY_BURST], sids[SKY_BURST];

	RTE_ASSERT(worker < sh->n_workers && out < sh->n_out);
	if (unlikely(n > SKY_BURST))
		return (uint16_t)(sky_shaper_enqueue(sh, worker, out, pkts, meta, SKY_BURST,
						     now_tsc, drops) +
				  sky_shaper_enqueue(sh, worker, out, pkts + SKY_BURST,
						     meta + SKY_BURST, n - SKY_BURST, now_tsc,
						     drops));

	/* two prefetch passes (index, then slot) hide the misses of 100k+ subscribers */
	for (uint16_t i = 0; i < n; i++) {
		subs[i] = meta[i].sub_idx < cap ? meta[i].sub_idx : cap;
		rte_prefetch0(&o->idx[subs[i]]);
		rte_prefetch0(mdyn(sh, pkts[i]));
	}
	for (uint16_t i = 0; i < n; i++) {
		uint32_t sid = o->idx[subs[i]];

		sids[i] = sid;
		if (sid) {
			unsigned int c = meta[i].cls & (SKY_MAX_CLASSES - 1);

			rte_prefetch0(&w->slots[sid]);
			rte_prefetch0(&w->slots[sid].ctr[0]); /* counters and cq[0] */
			if (c != 0)
				rte_prefetch0(&w->slots[sid].cq[c]);
		}
	}
	/* third pass: the queue's tail mbuf, whose link the append writes */
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *t;

		if (sids[i] == 0)
			continue;
		t = w->slots[sids[i]].cq[meta[i].cls & (SKY_MAX_CLASSES - 1)].tail;
		if (t != NULL)
			rte_prefetch0(mdyn(sh, t));
	}
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		struct rte_mbuf *mb = pkts[i];
		uint32_t sub = subs[i];
		unsigned int c = m->cls < sh->n_classes ? m->cls : sh->n_classes - 1;
		uint16_t plan = m->plan < sh->n_plans ? m->plan : 0;
		uint16_t beam = m->beam < sh->n_beams ? m->beam : 0;
		const struct shp_class *cl = &sh->cls[c];
		struct shp_slot *s;
		struct shp_shard *sd;
		struct shp_mdyn *d;
		uint32_t sid, len;
		int reason = 0;

		sid = o->idx[sub];
		if (unlikely(sid == 0)) {
			sid = slot_alloc(sh, w, o, out, sub, plan, beam, now_tsc);
			if (unlikely(sid == 0)) {
				w->pool_full++;
				w->subctr[sub].ctr[SC_TAIL]++;
				w->subctr[sub].cls_tail[c]++;
				o->shard[beam].ctr[SC_TAIL]++;
				drops[SKY_DROP_QUEUE_TAIL]++;
				dropped[n_drop++] = mb;
				continue;
			}
		}
		s = &w->slots[sid];
		/* `subscriber set plan=|beam=`: the next packet carries it; queued ones follow */
		s->plan = plan;
		if (unlikely(s->beam != beam))
			slot_move_beam(sh, w, o, sid, beam);
		sd = &o->shard[s->beam];
		len = m->pkt_len + sh->overhead;
		s->ctr[0]++;
		s->ctr[1] += len;
		sd->ctr[SC_OFF_PKTS]++;
		sd->ctr[SC_OFF_BYTES] += len;
		if (unlikely(s->cq[c].qn >= cl->qlimit))
			reason = SKY_DROP_QUEUE_TAIL;
		else if (unlikely(w->queued >= sh->p.max_queued_per_worker)) {
			reason = SKY_DROP_QUEUE_TAIL;
			w->buf_full++;
		} else if (cl->aqm == SKY_AQM_RED && red_drop(cl, &s->cq[c], s->cq[c].qn))
			reason = SKY_DROP_QUEUE_AQM;
		if (unlikely(reason)) {
			struct shp_subctr *sc = &w->subctr[sub];

			if (reason == SKY_DROP_QUEUE_TAIL) {
				sc->ctr[SC_TAIL]++;
				sc->cls_tail[c]++;
				sd->ctr[SC_TAIL]++;
			} else {
				sc->ctr[SC_AQM]++;
				sc->cls_aqm[c]++;
				sd->ctr[SC_AQM]++;
			}
			drops[reason]++;
			dropped[n_drop++] = mb;
			continue;
		}
		d = mdyn(sh, mb);
		d->next = NULL;
		d->ts = ts;
		d->len = len;
		if (s->cq[c].tail)
			mdyn(sh, s->cq[c].tail)->next = mb;
		else
			s->cq[c].head = mb;
		s->cq[c].tail = mb;
		s->cq[c].qn++;
		s->nonempty |= (uint8_t)(1u << c);
		s->backlog_pkts++;
		s->backlog_bytes += len;
		sd->queued_pkts++;
		sd->queued_bytes += len;
		w->queued++;
		queued++;
		/* with one class everything is class 0: plain weighted DRR then */
		if (c == 0 && s->state == SLOT_ACTIVE && !s->in_rt && sh->n_classes > 1)
			rt_append(w, sd, sid);
		if (s->state == SLOT_IDLE) {
			const struct shp_plan *pl = &sh->plans[s->plan];

			shp_refill(&s->tokens, &s->last, now_tsc,
				   __atomic_load_n(&pl->down_rate_fp, __ATOMIC_RELAXED),
				   __atomic_load_n(&pl->down_burst_fp, __ATOMIC_RELAXED));
			s->weight = __atomic_load_n(&pl->weight, __ATOMIC_RELAXED);
			sd->n_active++;
			sd->active_weight += s->weight;
			if (s->tokens > 0)
				make_active(sh, w, o, sid);
			else
				slot_sleep(sh, w, o, sid, now_tsc);
		}
	}
	if (n_drop)
		rte_pktmbuf_free_bulk(dropped, n_drop);
	return queued;
}

/* --- dequeue ----------------------------------------------------------------------------- */

/* the subscriber has nothing queued: leave the beam's lists; the slot stays IDLE with its
 * subscriber (and its bucket) until the pool needs it */
static inline void
slot_deactivate(struct sky_shaper *sh, struct shp_worker *w, struct shp_shard *sd, uint32_t sid,
		uint64_t now)
{
	struct shp_slot *s = &w->slots[sid];

	(void)sh;
	(void)now;
	drr_remove(w, sd, sid);
	rt_remove(w, sd, sid);
	sd->n_active--;
	sd->active_weight -= s->weight;
	s->state = SLOT_IDLE;
	s->deficit = 0;
	s->in_turn = 0;
}

/* head packet of class c after AQM; NULL when CoDel dropped the class empty */
static __rte_always_inline struct rte_mbuf *
pop_class(struct sky_shaper *sh, struct shp_worker *w, struct shp_slot *s, struct shp_shard *sd,
	  unsigned int c, uint32_t now_ts, struct rte_mbuf **aqm_free, uint16_t *n_aqm)
{
	const struct shp_class *cl = &sh->cls[c];
	struct shp_cq *a = &s->cq[c];

	while (s->cq[c].qn) {
		struct rte_mbuf *m = q_pop(sh, &s->cq[c]);
		struct shp_mdyn *d = mdyn(sh, m);
		int drop = 0;

		if (s->cq[c].head != NULL)
			rte_prefetch0(mdyn(sh, s->cq[c].head));
		s->cq[c].qn--;
		if (s->cq[c].qn == 0)
			s->nonempty &= (uint8_t) ~(1u << c);
		if (cl->aqm == SKY_AQM_CODEL) {
			int ok = codel_ok_to_drop(cl, a, now_ts - d->ts, now_ts, s->backlog_bytes);

			if (a->dropping) {
				if (!ok) {
					a->dropping = 0;
				} else if ((int32_t)(now_ts - a->drop_next) >= 0) {
					drop = 1;
					a->count++;
					a->drop_next = codel_next(cl, a->drop_next, a->count);
				}
			} else if (ok) {
				uint32_t delta = a->count - a->lastcount;

				drop = 1;
				a->dropping = 1;
				a->count = (delta > 1 && (int32_t)(now_ts - a->drop_next) <
								 (int32_t)(16 * cl->interval_ts))
						   ? delta
						   : 1;
				a->drop_next = codel_next(cl, now_ts, a->count);
				a->lastcount = (uint16_t)a->count;
			}
		}
		if (likely(!drop)) {
			if (s->cq[c].qn == 0)
				a->first_above = 0;
			return m;
		}
		s->backlog_pkts--;
		s->backlog_bytes -= d->len;
		sd->queued_pkts--;
		sd->queued_bytes -= d->len;
		sd->ctr[SC_AQM]++;
		w->queued--;
		w->subctr[s->sub].ctr[SC_AQM]++;
		w->subctr[s->sub].cls_aqm[c]++;
		w->aqm_drops++;
		aqm_free[(*n_aqm)++] = m;
		if (*n_aqm == SKY_BURST) {
			rte_pktmbuf_free_bulk(aqm_free, *n_aqm);
			*n_aqm = 0;
		}
	}
	return NULL;
}

/* Next packet of subscriber s among classes 1.. by DRR of class quanta (class 0 goes
 * through the realtime list). NULL when the subscriber's queues are empty. */
static struct rte_mbuf *
slot_next_pkt(struct sky_shaper *sh, struct shp_worker *w, struct shp_slot *s, struct shp_shard *sd,
	      uint32_t now_ts, struct rte_mbuf **aqm_free, uint16_t *n_aqm)
{
	const struct shp_plan *pl = &sh->plans[s->plan];

	while (s->nonempty) {
		unsigned int c;
		struct rte_mbuf *m;

		if (s->nonempty & 1) {
			c = 0;
		} else {
			c = s->cur_cls;
			if (c == 0 || !(s->nonempty & (1u << c)) || s->cq[c].deficit <= 0) {
				/* next non-empty class after c gets a turn */
				for (;;) {
					c = c + 1 < sh->n_classes ? c + 1 : 1;
					if (s->nonempty & (1u << c))
						break;
				}
				s->cur_cls = (uint8_t)c;
				if (s->cq[c].deficit < 0)
					s->cq[c].deficit += (int32_t)pl->cls_quantum[c];
				else
					s->cq[c].deficit = (int32_t)pl->cls_quantum[c];
				if (s->cq[c].deficit <= 0)
					continue;
			}
		}
		m = pop_class(sh, w, s, sd, c, now_ts, aqm_free, n_aqm);
		if (m == NULL)
			continue;
		if (c != 0)
			s->cq[c].deficit -= (int32_t)mdyn(sh, m)->len;
		return m;
	}
	return NULL;
}

/*
 * Prefetch along the DRR order. At 100k+ subscribers every turn starts on a cold slot and
 * a cold head packet, and a linked list cannot be chased ahead of a cache miss. The links
 * live in a compact array (8 bytes per slot, cache resident), so two hands can run ahead
 * of the current turn cheaply: hand A, PF_A turns ahead, prefetches slot lines; hand B,
 * PF_B turns ahead, reads its slot (prefetched PF_A - PF_B turns ago) and prefetches the
 * head packet. A hand whose slot left the list starts again from the current one. Only
 * prefetches depend on the hands. The realtime list (one packet per turn) has its own
 * pair of hands.
 */
#define PF_A 8
#define PF_B 4

static inline int
hand_ok(const struct shp_link *lk, uint32_t head, uint32_t h)
{
	return h != 0 && (lk[h].prev != 0 || head == h);
}

/* one list (links lk, first slot head): hands *pa / *pb at distances *da / *db */
static inline void
prefetch_list(const struct sky_shaper *sh, const struct shp_worker *w, const struct shp_link *lk,
	      uint32_t head, uint32_t *pa, uint16_t *da, uint32_t *pb, uint16_t *db, uint32_t cur)
{
	const struct shp_slot *bs;
	unsigned int c;
	uint32_t h;

	/* hand A */
	h = *pa;
	if (!hand_ok(lk, head, h)) {
		h = cur;
		*da = 0;
	} else if (*da > 0) {
		(*da)--;
	}
	while (*da < PF_A && lk[h].next != 0) {
		h = lk[h].next;
		(*da)++;
		rte_prefetch0(&lk[h]);		    /* the hand reads it next turn */
		rte_prefetch0(&w->slots[h]);	    /* scheduler line */
		rte_prefetch0(&w->slots[h].ctr[0]); /* counters and cq[0] */
	}
	*pa = h;
	/* hand B */
	h = *pb;
	if (!hand_ok(lk, head, h)) {
		h = cur;
		*db = 0;
	} else if (*db > 0) {
		(*db)--;
	}
	while (*db < PF_B && lk[h].next != 0) {
		h = lk[h].next;
		(*db)++;
	}
	*pb = h;
	if (h == cur)
		return;
	bs = &w->slots[h];
	if (bs->nonempty) {
		c = (unsigned int)__builtin_ctz(bs->nonempty);
		if (c != 0)
			rte_prefetch0(&bs->cq[c]);
		if (bs->cq[c].head != NULL)
			rte_prefetch0(mdyn(sh, bs->cq[c].head));
	}
}

static inline void
prefetch_ahead(const struct sky_shaper *sh, const struct shp_worker *w, struct shp_shard *sd,
	       uint32_t cur)
{
	prefetch_list(sh, w, w->drr, sd->head, &sd->pf_a, &sd->pf_a_dist, &sd->pf_b, &sd->pf_b_dist,
		      cur);
}

/* the realtime list is served one packet per turn: the same hands along it */
static inline void
prefetch_ahead_rt(const struct sky_shaper *sh, const struct shp_worker *w, struct shp_shard *sd,
		  uint32_t cur)
{
	prefetch_list(sh, w, w->rt, sd->rt_head, &sd->rt_pf_a, &sd->rt_pf_a_dist, &sd->rt_pf_b,
		      &sd->rt_pf_b_dist, cur);
}

/* a turn may send more than one packet: the head (prefetched by hand B) is in cache by
 * now, so the packet after it can be fetched while the head is sent */
static inline void
prefetch_second(const struct sky_shaper *sh, const struct shp_slot *s)
{
	const struct rte_mbuf *h;

	if (s->nonempty == 0)
		return;
	h = s->cq[__builtin_ctz(s->nonempty)].head;
	if (h != NULL && mdyn(sh, (struct rte_mbuf *)(uintptr_t)h)->next != NULL)
		rte_prefetch0(mdyn(sh, mdyn(sh, (struct rte_mbuf *)(uintptr_t)h)->next));
}

/* account a released packet; settle the slot: deactivate, park or keep */
static inline void
sent_one(struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, struct shp_shard *sd,
	 uint32_t sid, uint32_t len, uint64_t now)
{
	struct shp_slot *s = &w->slots[sid];

	s->tokens -= (int64_t)len << FP;
	sd->tokens -= (int64_t)len << FP;
	s->deficit -= (int32_t)len;
	s->backlog_pkts--;
	s->backlog_bytes -= len;
	s->ctr[2]++;
	s->ctr[3] += len;
	sd->queued_pkts--;
	sd->queued_bytes -= len;
	w->queued--;
	sd->ctr[SC_SENT_PKTS]++;
	sd->ctr[SC_SENT_BYTES] += len;
	if (s->backlog_pkts == 0) {
		slot_deactivate(sh, w, sd, sid, now);
	} else if (s->tokens <= 0) {
		const struct shp_plan *pl = &sh->plans[s->plan];

		shp_refill(&s->tokens, &s->last, now,
			   __atomic_load_n(&pl->down_rate_fp, __ATOMIC_RELAXED),
			   __atomic_load_n(&pl->down_burst_fp, __ATOMIC_RELAXED));
		if (s->tokens <= 0)
			slot_park(sh, w, o, sd, sid, now);
	}
}

uint16_t
sky_shaper_dequeue(struct sky_shaper *sh, unsigned int worker, unsigned int out,
		   struct rte_mbuf **pkts, uint16_t max, uint64_t now_tsc)
{
	struct shp_worker *w = &sh->w[worker];
	struct shp_out *o = &w->out[out];
	struct rte_mbuf *aqm_free[SKY_BURST];
	const uint32_t now_ts = (uint32_t)(now_tsc >> TS_SHIFT);
	uint16_t n = 0, n_aqm = 0;
	unsigned int start;

	RTE_ASSERT(worker < sh->n_workers && out < sh->n_out);
	wheel_advance(sh, w, o, now_tsc, sh->tick_shift);
	if (o->active_mask == 0)
		return 0;
	/* beams from rr on, then the ones below it */
	start = o->rr;
	for (int pass = 0; pass < 2 && n < max; pass++) {
		uint64_t m = pass == 0 ? (o->active_mask & (~0ULL << start))
				       : (o->active_mask & ~(~0ULL << start));

		while (m && n < max) {
			unsigned int b = (unsigned int)__builtin_ctzll(m);
			struct shp_shard *sd = &o->shard[b];

			m &= m - 1;
			shp_refill(&sd->tokens, &sd->last, now_tsc,
				   __atomic_load_n(&sd->rate_fp, __ATOMIC_RELAXED),
				   __atomic_load_n(&sd->burst_fp, __ATOMIC_RELAXED));
			while (n < max && sd->head) {
				uint32_t sid;
				struct shp_slot *s;
				const struct shp_plan *pl;
				struct rte_mbuf *mb;

				if (sd->tokens <= 0) {
					sd->limited++;
					break;
				}
				/* realtime first: class 0 of every subscriber, round robin */
				sid = sd->rt_head ? sd->rt_head : sd->head;
				s = &w->slots[sid];
				pl = &sh->plans[s->plan];
				/* refill only when the tokens run out: the credit is the same
				 * (sent <= burst + rate * t holds), one multiply less per packet */
				if (s->tokens <= 0) {
					shp_refill(&s->tokens, &s->last, now_tsc,
						   __atomic_load_n(&pl->down_rate_fp,
								   __ATOMIC_RELAXED),
						   __atomic_load_n(&pl->down_burst_fp,
								   __ATOMIC_RELAXED));
					if (s->tokens <= 0) {
						slot_park(sh, w, o, sd, sid, now_tsc);
						continue;
					}
				}
				if (sd->rt_head) {
					prefetch_ahead_rt(sh, w, sd, sid);
					mb = pop_class(sh, w, s, sd, 0, now_ts, aqm_free, &n_aqm);
					rt_remove(w, sd, sid);
					if (s->nonempty & 1)
						rt_append(w, sd, sid);
					if (mb == NULL) {
						if (s->backlog_pkts == 0)
							slot_deactivate(sh, w, sd, sid, now_tsc);
						continue;
					}
					pkts[n++] = mb;
					sent_one(sh, w, o, sd, sid, mdyn(sh, mb)->len, now_tsc);
					continue;
				}
				if (!s->in_turn) {
					prefetch_ahead(sh, w, sd, sid);
					prefetch_second(sh, s);
					s->in_turn = 1;
					s->deficit += (int32_t)__atomic_load_n(&pl->quantum,
									       __ATOMIC_RELAXED);
				}
				if (s->deficit <= 0) {
					/* turn over: to the back of the line */
					s->in_turn = 0;
					if (sd->head != sd->tail) {
						drr_remove(w, sd, sid);
						drr_append(w, sd, sid);
					}
					continue;
				}
				mb = slot_next_pkt(sh, w, s, sd, now_ts, aqm_free, &n_aqm);
				if (mb == NULL) {
					slot_deactivate(sh, w, sd, sid, now_tsc);
					continue;
				}
				pkts[n++] = mb;
				sent_one(sh, w, o, sd, sid, mdyn(sh, mb)->len, now_tsc);
			}
			if (sd->head == 0)
				o->active_mask &= ~(1ULL << b);
			else if (n >= max)
				o->rr = b;
		}
	}
	if (n_aqm)
		rte_pktmbuf_free_bulk(aqm_free, n_aqm);
	return n;
}
