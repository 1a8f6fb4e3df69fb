/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper data path: upstream policing, downstream enqueue (queues, tail drop, RED) and
 * dequeue (sleep wheel, beam buckets, DRR among subscribers, strict + DRR among classes,
 * CoDel). Runs on worker `worker` only; touches that worker's state only.
 */
#include <stdbool.h>
#include <stddef.h>

#include <rte_branch_prediction.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_random.h>

#include "shaper_priv.h"

_Static_assert(offsetof(struct shp_slot, cq0) == RTE_CACHE_LINE_SIZE &&
		       offsetof(struct shp_slot, fqmap) == 2 * RTE_CACHE_LINE_SIZE,
	       "slot: scheduler header is line 0, class 0 lists and own flow queue line 1");

/* --- per-subscriber counter blocks ---------------------------------------------------- */

/* first count of a subscriber on this worker: the next ready block, or the aggregate
 * when the control thread has not touched enough ahead (counted in ctr_miss) */
static struct shp_subctr *
sub_ctr_slow(struct shp_worker *w, uint32_t sub)
{
	uint32_t b = w->ctr_next;

	if (unlikely(b >= __atomic_load_n(&w->ctr_ready, __ATOMIC_ACQUIRE))) {
		w->ctr_miss++;
		return &w->ctr_agg;
	}
	__atomic_store_n(&w->ctr_next, b + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&w->ctridx[sub], b, __ATOMIC_RELEASE);
	return &w->ctrblk[b];
}

/* the downstream counters of subscriber sub on this worker (drops, folds: not per packet
 * sent) */
static inline struct shp_subctr *
sub_ctr(struct shp_worker *w, uint32_t sub)
{
	uint32_t b = w->ctridx[sub];

	return likely(b != 0) ? &w->ctrblk[b] : sub_ctr_slow(w, sub);
}

/* --- upstream policing ------------------------------------------------------------- */

void
sky_shaper_police_prefetch(const struct sky_shaper *sh, unsigned int worker,
			   const struct sky_meta *meta, uint16_t n)
{
	const struct shp_worker *w;

	if (sh == NULL || !sh->p.enabled)
		return;
	w = &sh->w[worker];
	for (uint16_t i = 0; i < n; i++)
		if (meta[i].sub_idx < sh->cap && sky_meta_live(&meta[i]))
			rte_prefetch0(&w->pol[meta[i].sub_idx]);
}

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
			w->pol_drops[sub]++;
			u->drops_sub++;
			sky_meta_drop(m, SKY_DROP_POLICE);
			continue;
		}
		shp_refill(&u->tokens, &u->last, now_tsc,
			   __atomic_load_n(&u->rate_fp, __ATOMIC_RELAXED),
			   __atomic_load_n(&u->burst_fp, __ATOMIC_RELAXED));
		if (unlikely(u->tokens < cost)) {
			w->pol_drops[sub]++;
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

/* more slots in use or packets queued than the caches hold: prefetching along the lists
 * pays (below, the slots of 2048 subscribers and the link lines of 16k queued packets fit
 * a core's L2, and the passes are pure overhead) */
#define SHP_SHALLOW_SLOTS 2048
#define SHP_SHALLOW_QUEUED 16384

static inline bool
shp_deep(const struct shp_worker *w)
{
	return w->n_slots - 1 - w->n_free > SHP_SHALLOW_SLOTS || w->queued > SHP_SHALLOW_QUEUED;
}

/* --- flow queues ---------------------------------------------------------------------- */

static inline uint32_t
fq_alloc(struct shp_worker *w)
{
	uint32_t fi = w->fq_free;

	if (unlikely(fi == 0))
		return 0;
	w->fq_free = fqp(w, fi)->next;
	w->fq_n_free--;
	return fi;
}

/* give an empty flow queue that is on no list back to the pool */
static inline void
fq_release(struct shp_worker *w, struct shp_slot *s, uint32_t fi)
{
	struct shp_fq *f = fqp(w, fi);

	s->n_fq--;
	f->list = FQL_NONE;
	if (fi < w->n_slots) {
		s->own_fq = 0; /* not in the map */
		return;
	}
	s->fqmap[f->h] = 0;
	f->next = w->fq_free;
	w->fq_free = fi;
	w->fq_n_free++;
}

/* every flow queue of a slot whose queues are all empty goes back to the pool and its
 * classes' lists are cleared */
static void
slot_free_fqs(struct shp_worker *w, struct shp_slot *s)
{
	uint32_t ne = s->nonempty;

	/* the flow queues are those on the lists of the non-empty classes */
	while (ne) {
		struct shp_cq *q = slot_cq(s, (unsigned int)__builtin_ctz(ne));
		uint32_t fi, nx;

		ne &= ne - 1;
		for (fi = q->new_head; fi != 0; fi = nx) {
			nx = fqp(w, fi)->next;
			fq_release(w, s, fi);
		}
		for (fi = q->old_head; fi != 0; fi = nx) {
			nx = fqp(w, fi)->next;
			fq_release(w, s, fi);
		}
		q->new_head = q->new_tail = q->old_head = q->old_tail = 0;
	}
	s->nonempty = 0;
	/* and any left off the lists (none unless a path above forgot one) */
	if (s->own_fq)
		fq_release(w, s, (uint32_t)(s - w->slots));
	for (unsigned int b = 0; s->n_fq != 0 && b < SHP_NFQ; b++)
		if (s->fqmap[b] != 0)
			fq_release(w, s, s->fqmap[b]);
}

static inline void
fql_push(struct shp_worker *w, uint32_t *head, uint32_t *tail, uint32_t fi)
{
	fqp(w, fi)->next = 0;
	if (*tail)
		fqp(w, *tail)->next = fi;
	else
		*head = fi;
	*tail = fi;
}

static inline void
fql_pop(struct shp_worker *w, uint32_t *head, uint32_t *tail)
{
	*head = fqp(w, *head)->next;
	if (*head == 0)
		*tail = 0;
}

/*
 * Flow hash from the parsed packet: remote and local address, ports, protocol. Downstream
 * the local address is the subscriber's, so its flows differ by remote address and ports.
 * Two multiplies; the slot's map then finds the flow queue in 1..16 probes.
 */
static inline uint32_t
flow_hash(const struct sky_meta *m)
{
	uint64_t a, b, c, d, x;

	memcpy(&a, m->src, 8);
	memcpy(&b, m->src + 8, 8);
	memcpy(&c, m->dst, 8);
	memcpy(&d, m->dst + 8, 8);
	x = (a ^ c) * 0x9E3779B97F4A7C15ULL;
	x ^= (b ^ d ^ ((uint64_t)m->sport << 24 | (uint64_t)m->dport << 8 | m->proto)) + (x >> 29);
	x *= 0xBF58476D1CE4E5B9ULL;
	return (uint32_t)(x >> 32);
}

/* --- slots --------------------------------------------------------------------------- */

/* give an IDLE slot back to the pool; its counters go to the subscriber's totals */
static void
slot_release(struct shp_worker *w, uint32_t sid)
{
	struct shp_slot *s = &w->slots[sid];
	struct shp_subctr *c;

	if (s->n_fq != 0)
		slot_free_fqs(w, s);
	c = sub_ctr(w, s->sub);
	c->ctr[SUBC(SC_SENT_PKTS)] += s->sent_pkts;
	c->ctr[SUBC(SC_SENT_BYTES)] += s->sent_bytes;
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
	w->drr[sid].seq = ++w->seq;
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
	w->rt[sid].seq = ++w->seq;
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

/* --- AQM ------------------------------------------------------------------------------ */

/* RED on the average queue length (EWMA weight 1/16, packets << 8) */
static inline int
red_drop(const struct shp_class *c, struct shp_fq *a, uint32_t qlen)
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
static __rte_always_inline int
codel_ok_to_drop(const struct shp_class *c, struct shp_fq *a, uint32_t sojourn, uint32_t now,
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

/* CoDel's verdict on a head packet with this sojourn (1 = drop) */
static __rte_always_inline int
codel_drop(const struct shp_class *cl, struct shp_fq *a, uint32_t sojourn, uint32_t now_ts,
	   uint32_t q_bytes)
{
	int ok = codel_ok_to_drop(cl, a, sojourn, now_ts, q_bytes);

	if (a->dropping) {
		if (!ok) {
			a->dropping = 0;
		} else if ((int32_t)(now_ts - a->drop_next) >= 0) {
			a->count++;
			a->drop_next = codel_next(cl, a->drop_next, a->count);
			return 1;
		}
		return 0;
	}
	if (ok) {
		uint32_t delta = a->count - a->lastcount;

		a->dropping = 1;
		a->count = (delta > 1 &&
			    (int32_t)(now_ts - a->drop_next) < (int32_t)(16 * cl->interval_ts))
				   ? delta
				   : 1;
		a->drop_next = codel_next(cl, now_ts, a->count);
		a->lastcount = a->count;
		return 1;
	}
	return 0;
}

/* --- enqueue ----------------------------------------------------------------------------- */

static inline void
count_drop(struct shp_worker *w, struct shp_shard *sd, uint32_t sub, unsigned int c, int reason,
	   uint32_t len)
{
	struct shp_subctr *sc = sub_ctr(w, sub);

	sc->drop_bytes += len;
	if (reason == SKY_DROP_QUEUE_TAIL) {
		sc->ctr[SUBC(SC_TAIL)]++;
		sc->cls_tail[c]++;
		sd->ctr[SC_TAIL]++;
	} else {
		sc->ctr[SUBC(SC_AQM)]++;
		sc->cls_aqm[c]++;
		sd->ctr[SC_AQM]++;
	}
}

static inline void
fq_init(struct shp_fq *f, unsigned int c, unsigned int h)
{
	f->head = f->tail = NULL;
	f->qn = 0;
	f->cls = (uint8_t)c;
	f->h = (uint8_t)h;
	f->list = FQL_NONE;
	f->dropping = 0;
	f->first_above = 0;
	f->count = 0;
	f->lastcount = 0;
}

/* the flow queue of (slot, class, hash); allocated when the flow has none. 0 when the
 * subscriber already holds SHP_NFQ flow queues of other classes or the pool is dry. */
static inline uint32_t
fq_find(struct shp_worker *w, struct shp_slot *s, uint32_t sid, unsigned int c, uint32_t hash)
{
	unsigned int h = hash & (SHP_NFQ - 1);

	/*
	 * A subscriber's first flow takes the slot's own queue, which the map does not hold
	 * (own.h is its bucket): a subscriber with one flow never reads or writes line 2.
	 */
	if (likely(s->own_fq)) {
		if (likely(s->own.h == h && s->own.cls == c))
			return sid;
	} else if (likely(s->n_fq == 0)) {
		fq_init(&s->own, c, h);
		s->own_fq = 1;
		s->n_fq = 1;
		return sid;
	}
	for (unsigned int k = 0; k < SHP_NFQ; k++, h = (h + 1) & (SHP_NFQ - 1)) {
		uint32_t fi;

		if (s->own_fq && s->own.h == h) {
			if (s->own.cls == c)
				return sid;
			continue;
		}
		fi = s->fqmap[h];
		if (fi != 0) {
			if (fqp(w, fi)->cls == c)
				return fi;
			continue;
		}
		if (!s->own_fq) {
			fq_init(&s->own, c, h);
			s->own_fq = 1;
			s->n_fq++;
			return sid;
		}
		fi = fq_alloc(w);
		if (unlikely(fi == 0))
			return 0;
		fq_init(fqp(w, fi), c, h);
		s->fqmap[h] = fi;
		s->n_fq++;
		return fi;
	}
	return 0;
}

/* multi: more than one class (a constant in each of the two copies sky_shaper_enqueue
 * calls: with one class, everything is class 0 and plain DRR, and its branches go) */
static __rte_always_inline uint16_t
enqueue_burst(struct sky_shaper *sh, unsigned int worker, unsigned int out, struct rte_mbuf **pkts,
	      const struct sky_meta *meta, uint16_t n, uint64_t now_tsc,
	      uint64_t drops[SKY_DROP_MAX], const bool multi)
{
	struct shp_worker *w = &sh->w[worker];
	struct shp_out *o = &w->out[out];
	struct rte_mbuf *dropped[SKY_BURST];
	uint16_t n_drop = 0, queued = 0;
	const uint32_t cap = sh->cap;
	const uint32_t ts = (uint32_t)(now_tsc >> TS_SHIFT);
	uint32_t subs[SKY_BURST], sids[SKY_BURST], hash[SKY_BURST];
	/* read once: the stores below could alias them for the compiler */
	const unsigned int n_cls = sh->n_classes, n_plans = sh->n_plans, n_beams = sh->n_beams;
	const uint32_t overhead = sh->overhead, max_q = sh->p.max_queued_per_worker;
	const int off = sh->mbuf_off;
	struct shp_slot *const slots = w->slots;
	uint32_t wq = w->queued;
	bool deep;

	RTE_ASSERT(worker < sh->n_workers && out < sh->n_out);
	if (unlikely(n > SKY_BURST))
		return (uint16_t)(sky_shaper_enqueue(sh, worker, out, pkts, meta, SKY_BURST,
						     now_tsc, drops) +
				  sky_shaper_enqueue(sh, worker, out, pkts + SKY_BURST,
						     meta + SKY_BURST, n - SKY_BURST, now_tsc,
						     drops));

	/* prefetch passes (index, slot, flow queue, its tail mbuf) hide the misses of 100k+
	 * subscribers: each pass reads only what the previous one fetched */
	for (uint16_t i = 0; i < n; i++) {
		subs[i] = meta[i].sub_idx < cap ? meta[i].sub_idx : cap;
		hash[i] = flow_hash(&meta[i]);
		rte_prefetch0(&o->idx[subs[i]]);
		rte_prefetch0(mdyn(sh, pkts[i]));
	}
	/* slots in cache (a few thousand in use): the passes would cost more than they save */
	deep = shp_deep(w);
	for (uint16_t i = 0; deep && i < n; i++) {
		uint32_t sid = o->idx[subs[i]];

		sids[i] = sid;
		if (sid) {
			rte_prefetch0(&w->slots[sid]);
			rte_prefetch0(&w->slots[sid].cq0); /* class 0 lists, own flow queue */
		}
	}
	for (uint16_t i = 0; deep && i < n; i++) {
		uint32_t sid = sids[i], fi;
		const struct shp_slot *s;
		struct rte_mbuf *t;

		if (sid == 0)
			continue;
		s = &w->slots[sid];
		if (s->own_fq && s->own.h == (hash[i] & (SHP_NFQ - 1))) {
			/* its first flow: the tail packet, whose link the append writes */
			t = s->own.tail;
			if (t != NULL)
				rte_prefetch0(mdyn(sh, t));
			continue;
		}
		if (s->n_fq <= s->own_fq)
			continue;
		rte_prefetch0(&s->fqmap[0]);
		fi = s->fqmap[hash[i] & (SHP_NFQ - 1)];
		if (fi != 0 && fi != sid)
			rte_prefetch0(fqp(w, fi));
	}
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		struct rte_mbuf *mb = pkts[i];
		uint32_t sub = subs[i];
		unsigned int c = multi ? (m->cls < n_cls ? m->cls : n_cls - 1) : 0;
		uint16_t plan = m->plan < n_plans ? m->plan : 0;
		uint16_t beam = m->beam < n_beams ? m->beam : 0;
		const struct shp_class *cl = &sh->cls[c];
		struct shp_slot *s;
		struct shp_shard *sd;
		struct shp_mdyn *d;
		struct shp_fq *f;
		uint32_t sid, fi, len;
		int reason = 0;

		sid = o->idx[sub];
		if (unlikely(sid == 0)) {
			sid = slot_alloc(sh, w, o, out, sub, plan, beam, now_tsc);
			if (unlikely(sid == 0)) {
				struct shp_subctr *sc = sub_ctr(w, sub);

				w->pool_full++;
				sc->ctr[SUBC(SC_TAIL)]++;
				sc->drop_bytes += m->pkt_len + overhead;
				sc->cls_tail[c]++;
				/* offered to the beam too: offered = sent + dropped + queued */
				o->shard[beam].ctr[SC_OFF_PKTS]++;
				o->shard[beam].ctr[SC_OFF_BYTES] += m->pkt_len + overhead;
				o->shard[beam].ctr[SC_TAIL]++;
				drops[SKY_DROP_QUEUE_TAIL]++;
				dropped[n_drop++] = mb;
				continue;
			}
		}
		s = &slots[sid];
		/* `subscriber set plan=|beam=`: the next packet carries it; queued ones follow */
		s->plan = plan;
		if (unlikely(s->beam != beam))
			slot_move_beam(sh, w, o, sid, beam);
		sd = &o->shard[beam];
		len = m->pkt_len + overhead;
		if (unlikely(len > UINT16_MAX))
			len = UINT16_MAX;
		sd->ctr[SC_OFF_PKTS]++;
		sd->ctr[SC_OFF_BYTES] += len;
		if (unlikely(wq >= max_q)) {
			w->buf_full++;
			count_drop(w, sd, sub, c, SKY_DROP_QUEUE_TAIL, len);
			drops[SKY_DROP_QUEUE_TAIL]++;
			dropped[n_drop++] = mb;
			continue;
		}
		/* the subscriber's first flow (the common case) in its own queue, else the map */
		if (likely(s->own_fq && s->own.h == (hash[i] & (SHP_NFQ - 1)) && s->own.cls == c)) {
			fi = sid;
			f = &s->own;
		} else {
			fi = fq_find(w, s, sid, c, hash[i]);
			if (unlikely(fi == 0)) {
				w->fq_full++;
				count_drop(w, sd, sub, c, SKY_DROP_QUEUE_TAIL, len);
				drops[SKY_DROP_QUEUE_TAIL]++;
				dropped[n_drop++] = mb;
				if (s->state == SLOT_IDLE && s->n_fq != 0 && s->backlog_pkts == 0)
					slot_free_fqs(w, s);
				continue;
			}
			f = fqp(w, fi);
		}
		if (unlikely(f->qn >= cl->qlimit))
			reason = SKY_DROP_QUEUE_TAIL;
		else if (cl->aqm == SKY_AQM_RED && red_drop(cl, f, f->qn))
			reason = SKY_DROP_QUEUE_AQM;
		if (unlikely(reason)) {
			count_drop(w, sd, sub, c, reason, len);
			drops[reason]++;
			dropped[n_drop++] = mb;
			if (f->list == FQL_NONE)
				fq_release(w, s, fi);
			continue;
		}
		d = mdyn_at(off, mb);
		d->next = NULL;
		d->ts = ts;
		d->len = (uint16_t)len;
		d->cls = (uint8_t)c;
		if (f->tail)
			mdyn_at(off, f->tail)->next = mb;
		else
			f->head = mb;
		f->tail = mb;
		f->qn++;
		if (f->list == FQL_NONE) {
			/* a new (or returning sparse) flow: served before the old ones */
			struct shp_cq *q = slot_cq(s, c);

			if (fi == sid && s->n_fq == 1) {
				/* the only flow queue: its class's lists are empty */
				f->next = 0;
				q->new_head = q->new_tail = fi;
			} else {
				fql_push(w, &q->new_head, &q->new_tail, fi);
			}
			f->list = FQL_NEW;
			f->deficit = SHP_FQ_QUANTUM;
			s->nonempty |= (uint8_t)(1u << c);
		}
		s->backlog_pkts++;
		s->backlog_bytes += len;
		sd->queued_pkts++;
		sd->queued_bytes += len;
		wq++;
		queued++;
		/* with one class everything is class 0: plain weighted DRR then */
		if (multi && c == 0 && s->state == SLOT_ACTIVE && !s->in_rt)
			rt_append(w, sd, sid);
		if (s->state == SLOT_IDLE) {
			const struct shp_plan *pl = &sh->plans[plan];

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
	w->queued = wq;
	if (n_drop)
		rte_pktmbuf_free_bulk(dropped, n_drop);
	return queued;
}

uint16_t
sky_shaper_enqueue(struct sky_shaper *sh, unsigned int worker, unsigned int out,
		   struct rte_mbuf **pkts, const struct sky_meta *meta, uint16_t n,
		   uint64_t now_tsc, uint64_t drops[SKY_DROP_MAX])
{
	if (sh->n_classes > 1)
		return enqueue_burst(sh, worker, out, pkts, meta, n, now_tsc, drops, true);
	return enqueue_burst(sh, worker, out, pkts, meta, n, now_tsc, drops, false);
}

/* --- dequeue ----------------------------------------------------------------------------- */

/* the subscriber has nothing queued: leave the beam's lists and give the flow queues
 * back; the slot stays IDLE with its subscriber (and its bucket) until the pool needs it */
static __rte_always_inline void
slot_deactivate(struct shp_worker *w, struct shp_shard *sd, uint32_t sid)
{
	struct shp_slot *s = &w->slots[sid];

	drr_remove(w, sd, sid);
	rt_remove(w, sd, sid);
	sd->n_active--;
	sd->active_weight -= s->weight;
	s->state = SLOT_IDLE;
	s->deficit = 0;
	s->in_turn = 0;
	if (likely(s->n_fq == 1 && s->own_fq)) {
		/* one flow (the common case): its own queue is the only one on its class's
		 * lists; clear them (and any class left marked) without walking */
		uint32_t ne = s->nonempty | 1u << s->own.cls;

		while (ne) {
			struct shp_cq *q = slot_cq(s, (unsigned int)__builtin_ctz(ne));

			ne &= ne - 1;
			q->new_head = q->new_tail = q->old_head = q->old_tail = 0;
		}
		s->nonempty = 0;
		s->own.list = FQL_NONE;
		s->own_fq = 0;
		s->n_fq = 0;
	} else if (s->n_fq != 0 || s->nonempty != 0) {
		slot_free_fqs(w, s);
	}
}

struct deq_ctx {
	struct rte_mbuf **drop; /* [SKY_BURST] */
	uint16_t n_drop;
	int off; /* mbuf dynfield offset */
	uint32_t now_ts;
	/* sent from the current beam in this call, not yet in its shard */
	uint32_t k_pkts;
	uint32_t h_max;
	uint64_t k_bytes;
	uint64_t h_sum;
	uint64_t *drops; /* the caller's counters by reason, or NULL */
};

static inline void
ctx_drop(struct deq_ctx *x, struct rte_mbuf *m)
{
	x->drop[x->n_drop++] = m;
	if (x->n_drop == SKY_BURST) {
		rte_pktmbuf_free_bulk(x->drop, x->n_drop);
		x->n_drop = 0;
	}
}

/* head packet of a flow queue after the delay bound and AQM; NULL when they emptied it */
static __rte_always_inline struct rte_mbuf *
fq_pop(struct sky_shaper *sh, struct shp_worker *w, struct shp_slot *s, struct shp_shard *sd,
       struct shp_fq *f, unsigned int c, struct deq_ctx *x)
{
	const struct shp_class *cl = &sh->cls[c];

	while (f->qn) {
		struct rte_mbuf *m = f->head;
		struct shp_mdyn *d = mdyn_at(x->off, m);
		uint32_t sojourn = x->now_ts - d->ts;
		struct shp_subctr *sc;
		int reason = 0;

		f->head = d->next;
		if (f->head == NULL)
			f->tail = NULL;
		else
			rte_prefetch0(mdyn_at(x->off, f->head));
		f->qn--;
		if (unlikely(sojourn > sh->max_delay_ts))
			reason = SKY_DROP_QUEUE_DELAY;
		else if (cl->aqm == SKY_AQM_CODEL &&
			 codel_drop(cl, f, sojourn, x->now_ts, s->backlog_bytes))
			reason = SKY_DROP_QUEUE_AQM;
		if (likely(reason == 0)) {
			if (f->qn == 0)
				f->first_above = 0;
			return m;
		}
		s->backlog_pkts--;
		s->backlog_bytes -= d->len;
		sd->queued_pkts--;
		sd->queued_bytes -= d->len;
		w->queued--;
		sc = sub_ctr(w, s->sub);
		sc->drop_bytes += d->len;
		if (reason == SKY_DROP_QUEUE_DELAY) {
			sd->ctr[SC_DELAY]++;
			sc->ctr[SUBC(SC_DELAY)]++;
			w->delay_drops++;
		} else {
			sd->ctr[SC_AQM]++;
			sc->ctr[SUBC(SC_AQM)]++;
			sc->cls_aqm[c]++;
			w->aqm_drops++;
		}
		if (x->drops != NULL)
			x->drops[reason]++;
		ctx_drop(x, m);
	}
	return NULL;
}

/* next packet of class c of a subscriber: DRR among its flow queues, new (sparse) flows
 * first (fq_codel). NULL when the class has nothing left. */
static __rte_always_inline struct rte_mbuf *
cls_next(struct sky_shaper *sh, struct shp_worker *w, struct shp_slot *s, struct shp_shard *sd,
	 unsigned int c, struct deq_ctx *x)
{
	struct shp_cq *q = slot_cq(s, c);

	for (;;) {
		uint32_t fi;
		int is_new;
		struct shp_fq *f;
		struct rte_mbuf *m;

		if (q->new_head) {
			fi = q->new_head;
			is_new = 1;
		} else if (q->old_head) {
			fi = q->old_head;
			is_new = 0;
		} else {
			s->nonempty &= (uint8_t) ~(1u << c);
			return NULL;
		}
		f = fqp(w, fi);
		if (f->deficit <= 0) {
			f->deficit += SHP_FQ_QUANTUM;
			if (is_new)
				fql_pop(w, &q->new_head, &q->new_tail);
			else
				fql_pop(w, &q->old_head, &q->old_tail);
			fql_push(w, &q->old_head, &q->old_tail, fi);
			f->list = FQL_OLD;
			continue;
		}
		m = fq_pop(sh, w, s, sd, f, c, x);
		if (unlikely(m == NULL)) {
			if (is_new) {
				fql_pop(w, &q->new_head, &q->new_tail);
				if (q->old_head) {
					/* keeps a flow that empties at once from being new
					 * again and again (fq_codel) */
					fql_push(w, &q->old_head, &q->old_tail, fi);
					f->list = FQL_OLD;
					continue;
				}
			} else {
				fql_pop(w, &q->old_head, &q->old_tail);
			}
			fq_release(w, s, fi);
			continue;
		}
		f->deficit -= (int32_t)mdyn_at(x->off, m)->len;
		return m;
	}
}

/* Next packet of subscriber s: class 0 first, then classes 1.. by DRR of class quanta.
 * NULL when the subscriber's queues are empty. */
static struct rte_mbuf *
slot_next_pkt(struct sky_shaper *sh, struct shp_worker *w, struct shp_slot *s, struct shp_shard *sd,
	      struct deq_ctx *x)
{
	const struct shp_plan *pl = &sh->plans[s->plan];

	while (s->nonempty) {
		unsigned int c;
		struct rte_mbuf *m;

		if (s->nonempty & 1) {
			c = 0;
		} else {
			c = s->cur_cls;
			if (c == 0 || !(s->nonempty & (1u << c)) || s->cls_deficit[c] <= 0) {
				/* next non-empty class after c gets a turn */
				for (;;) {
					c = c + 1 < sh->n_classes ? c + 1 : 1;
					if (s->nonempty & (1u << c))
						break;
				}
				s->cur_cls = (uint8_t)c;
				if (s->cls_deficit[c] < 0)
					s->cls_deficit[c] += (int32_t)pl->cls_quantum[c];
				else
					s->cls_deficit[c] = (int32_t)pl->cls_quantum[c];
				if (s->cls_deficit[c] <= 0)
					continue;
			}
		}
		m = cls_next(sh, w, s, sd, c, x);
		if (m == NULL)
			continue;
		if (c != 0)
			s->cls_deficit[c] -= (int32_t)mdyn_at(x->off, m)->len;
		return m;
	}
	return NULL;
}

/*
 * Next packet of a subscriber whose only flow queue is its own, of class 0 (one class, one
 * flow: the common case): what cls_next does for it, without the list walk. The flow
 * queue keeps the same list and deficit as through cls_next (a second flow arriving later
 * finds it where it would be).
 */
static __rte_always_inline struct rte_mbuf *
own_next(struct sky_shaper *sh, struct shp_worker *w, struct shp_slot *s, uint32_t sid,
	 struct shp_shard *sd, struct deq_ctx *x)
{
	struct shp_fq *f = &s->own;
	struct shp_cq *q = &s->cq0;
	struct rte_mbuf *m;

	if (f->deficit <= 0) {
		/* quantum spent: to the old list's tail, which it is alone on */
		f->deficit += SHP_FQ_QUANTUM;
		q->new_head = q->new_tail = 0;
		q->old_head = q->old_tail = sid;
		f->next = 0;
		f->list = FQL_OLD;
	}
	m = fq_pop(sh, w, s, sd, f, 0, x);
	if (unlikely(m == NULL)) {
		/* the delay bound or CoDel emptied it */
		q->new_head = q->new_tail = q->old_head = q->old_tail = 0;
		fq_release(w, s, sid);
		s->nonempty = 0;
		return NULL;
	}
	f->deficit -= (int32_t)mdyn_at(x->off, m)->len;
	return m;
}

/*
 * Prefetch along the DRR order. At 100k+ subscribers every turn starts on a cold slot, a
 * cold flow queue and a cold head packet, and a linked list cannot be chased ahead of a
 * cache miss. The links live in a compact array (8 bytes per slot, cache resident), so
 * three hands can run ahead of the current turn cheaply: hand A, PF_A turns ahead,
 * prefetches slot lines; hand B, PF_B turns ahead, reads its slot (prefetched PF_A - PF_B
 * turns ago) and prefetches the flow queue it will serve; hand C, PF_C turns ahead, reads
 * that flow queue and prefetches its head packet. A hand whose slot left the list starts
 * again from the current one. Only prefetches depend on the hands. The realtime list
 * (one packet per turn) has its own hands.
 */
#define PF_A 8
#define PF_B 4
#define PF_C 2

/*
 * A hand is still ahead of the current turn when its slot is on the list (linked, or the
 * head), was not taken off and appended again since (same seq: a slot served and woken
 * again goes to the tail, and a hand left on it would crawl along the tail for good), and
 * came after the current slot (appends are in seq order).
 */
static inline int
hand_ok(const struct shp_link *lk, uint32_t head, uint32_t h, uint32_t seq, uint32_t cur)
{
	return h != 0 && (lk[h].prev != 0 || head == h) && lk[h].seq == seq &&
	       (int32_t)(seq - lk[cur].seq) > 0;
}

/* the flow queue a slot will serve next (0 = none) */
static inline uint32_t
slot_next_fq(const struct shp_slot *s)
{
	const struct shp_cq *q;

	if (s->nonempty == 0)
		return 0;
	q = slot_cq((struct shp_slot *)(uintptr_t)s, (unsigned int)__builtin_ctz(s->nonempty));
	return q->new_head ? q->new_head : q->old_head;
}

/* move hand *ph (distance *pd) to `want` turns ahead of cur; returns its slot */
static inline uint32_t
hand_move(const struct shp_link *lk, uint32_t head, uint32_t *ph, uint32_t *ps, uint16_t *pd,
	  uint32_t cur, unsigned int want, const struct shp_worker *w, int fetch)
{
	uint32_t h = *ph;

	if (!hand_ok(lk, head, h, *ps, cur)) {
		h = cur;
		*pd = 0;
	} else if (*pd > 0) {
		(*pd)--;
	}
	while (*pd < want && lk[h].next != 0) {
		h = lk[h].next;
		(*pd)++;
		if (fetch) {
			rte_prefetch0(&lk[h]);		 /* the hand reads it next turn */
			rte_prefetch0(&w->slots[h]);	 /* scheduler line */
			rte_prefetch0(&w->slots[h].cq0); /* class 0, own flow queue */
		}
	}
	*ph = h;
	*ps = lk[h].seq;
	return h;
}

static inline void
prefetch_list(const struct sky_shaper *sh, const struct shp_worker *w, const struct shp_link *lk,
	      uint32_t head, uint32_t *hands, uint32_t *hseq, uint16_t *dist, uint32_t cur)
{
	uint32_t h, fi;

	hand_move(lk, head, &hands[0], &hseq[0], &dist[0], cur, PF_A, w, 1);
	/* hand B: the slot's own flow queue (prefetched by A) gives the head packet; a class
	 * above 0 or a shared flow queue takes one more step, for hand C */
	h = hand_move(lk, head, &hands[1], &hseq[1], &dist[1], cur, PF_B, w, 0);
	if (h != cur) {
		const struct shp_slot *bs = &w->slots[h];

		if (bs->nonempty & 1) {
			fi = bs->cq0.new_head ? bs->cq0.new_head : bs->cq0.old_head;
			if (fi == h && fqp(w, fi)->head != NULL)
				rte_prefetch0(mdyn(sh, fqp(w, fi)->head));
			else if (fi)
				rte_prefetch0(fqp(w, fi));
		} else if (bs->nonempty) {
			rte_prefetch0(slot_cq((struct shp_slot *)(uintptr_t)bs,
					      (unsigned int)__builtin_ctz(bs->nonempty)));
		}
	}
	h = hand_move(lk, head, &hands[2], &hseq[2], &dist[2], cur, PF_C, w, 0);
	if (h != cur) {
		const struct shp_slot *cs = &w->slots[h];

		fi = slot_next_fq(cs);
		if (fi == h && (cs->nonempty & 1)) {
			/* own queue: B fetched the head; a turn takes several small packets, so
			 * the second one too (its link is in the head, fetched two turns ago) */
			if (cs->own.qn >= 2)
				rte_prefetch0(mdyn(sh, mdyn(sh, cs->own.head)->next));
		} else if (fi != 0 && fqp(w, fi)->head != NULL) {
			rte_prefetch0(mdyn(sh, fqp(w, fi)->head));
		}
	}
}

/* a turn may send more than one packet: the head is in cache by now, so the packet after
 * it can be fetched while the head is sent */
static inline void
prefetch_second(const struct sky_shaper *sh, const struct shp_worker *w, const struct shp_slot *s)
{
	uint32_t fi = slot_next_fq(s);
	const struct rte_mbuf *h;

	if (fi == 0)
		return;
	/* only with a second packet queued: reading the head's link is a load, not a hint */
	if (fqp(w, fi)->qn < 2)
		return;
	h = fqp(w, fi)->head;
	h = mdyn(sh, (struct rte_mbuf *)(uintptr_t)h)->next;
	if (fi == (uint32_t)(s - w->slots) && fqp(w, fi)->qn >= 3)
		h = mdyn(sh, (struct rte_mbuf *)(uintptr_t)h)->next; /* C fetched the second */
	rte_prefetch0(mdyn(sh, (struct rte_mbuf *)(uintptr_t)h));
}

/* account a released packet; settle the slot: deactivate, park or keep */
static __rte_always_inline void
sent_one(struct sky_shaper *sh, struct shp_worker *w, struct shp_out *o, struct shp_shard *sd,
	 uint32_t sid, struct rte_mbuf *mb, uint64_t now, struct deq_ctx *x, const bool multi)
{
	struct shp_slot *s = &w->slots[sid];
	const struct shp_mdyn *d = mdyn_at(x->off, mb);
	uint32_t len = d->len;
	uint32_t sojourn = x->now_ts - d->ts;

	/* the beam's histogram sum and max, sent and queued counts: per beam and call
	 * (beam_flush) */
	sd->hist.b[shp_hist_bucket(sojourn)]++;
	x->h_sum += sojourn;
	if (sojourn > x->h_max)
		x->h_max = sojourn;
	x->k_pkts++;
	x->k_bytes += len;
	if (multi)
		shp_hist_add(&o->chist[d->cls], sojourn);
	s->tokens -= (int64_t)len << FP;
	sd->tokens -= (int64_t)len << FP;
	s->deficit -= (int32_t)len;
	s->backlog_pkts--;
	s->backlog_bytes -= len;
	if (unlikely(++s->sent_pkts == 1u << 31)) {
		struct shp_subctr *sc = sub_ctr(w, s->sub);

		sc->ctr[SUBC(SC_SENT_PKTS)] += s->sent_pkts;
		sc->ctr[SUBC(SC_SENT_BYTES)] += s->sent_bytes;
		s->sent_pkts = 0;
		s->sent_bytes = 0;
	}
	s->sent_bytes += len;
	if (s->backlog_pkts == 0) {
		slot_deactivate(w, sd, sid);
	} else if (s->tokens <= 0) {
		const struct shp_plan *pl = &sh->plans[s->plan];

		shp_refill(&s->tokens, &s->last, now,
			   __atomic_load_n(&pl->down_rate_fp, __ATOMIC_RELAXED),
			   __atomic_load_n(&pl->down_burst_fp, __ATOMIC_RELAXED));
		if (s->tokens <= 0)
			slot_park(sh, w, o, sd, sid, now);
	}
}

/* what sent_one kept for the beam in this call goes to its shard */
static __rte_always_inline void
beam_flush(struct shp_worker *w, struct shp_shard *sd, struct deq_ctx *x)
{
	sd->queued_pkts -= x->k_pkts;
	sd->queued_bytes -= (int64_t)x->k_bytes;
	w->queued -= x->k_pkts;
	sd->ctr[SC_SENT_PKTS] += x->k_pkts;
	sd->ctr[SC_SENT_BYTES] += x->k_bytes;
	sd->hist.sum_ts += x->h_sum;
	if (x->h_max > sd->hist.max_ts)
		sd->hist.max_ts = x->h_max;
	x->k_pkts = 0;
	x->k_bytes = 0;
	x->h_sum = 0;
	x->h_max = 0;
}

/* multi: more than one class (realtime list, class histograms), a constant per copy */
static __rte_always_inline uint16_t
dequeue_burst(struct sky_shaper *sh, unsigned int worker, unsigned int out, struct rte_mbuf **pkts,
	      uint16_t max, uint64_t now_tsc, uint64_t drops[SKY_DROP_MAX], const bool multi)
{
	struct shp_worker *w = &sh->w[worker];
	struct shp_out *o = &w->out[out];
	struct rte_mbuf *drop_buf[SKY_BURST];
	struct deq_ctx x = {.drop = drop_buf,
			    .n_drop = 0,
			    .off = sh->mbuf_off,
			    .now_ts = (uint32_t)(now_tsc >> TS_SHIFT),
			    .drops = drops};
	uint16_t n = 0;
	unsigned int start;
	bool deep;

	RTE_ASSERT(worker < sh->n_workers && out < sh->n_out);
	wheel_advance(sh, w, o, now_tsc, sh->tick_shift);
	if (o->active_mask == 0)
		return 0;
	/* once per call: the slots in use and packets queued change little within it */
	deep = shp_deep(w);
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
				sid = multi && sd->rt_head ? sd->rt_head : sd->head;
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
				if (multi && sd->rt_head) {
					if (deep)
						prefetch_list(sh, w, w->rt, sd->rt_head, sd->rt_pf,
							      sd->rt_pf_seq, sd->rt_pf_dist, sid);
					mb = cls_next(sh, w, s, sd, 0, &x);
					rt_remove(w, sd, sid);
					if (s->nonempty & 1)
						rt_append(w, sd, sid);
					if (mb == NULL) {
						if (s->backlog_pkts == 0)
							slot_deactivate(w, sd, sid);
						continue;
					}
					pkts[n++] = mb;
					sent_one(sh, w, o, sd, sid, mb, now_tsc, &x, multi);
					continue;
				}
				if (!s->in_turn) {
					if (deep) {
						prefetch_list(sh, w, w->drr, sd->head, sd->pf,
							      sd->pf_seq, sd->pf_dist, sid);
						prefetch_second(sh, w, s);
					}
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
				if (likely(s->nonempty == 1 && s->n_fq == 1 && s->own_fq))
					mb = own_next(sh, w, s, sid, sd, &x);
				else
					mb = slot_next_pkt(sh, w, s, sd, &x);
				if (mb == NULL) {
					slot_deactivate(w, sd, sid);
					continue;
				}
				pkts[n++] = mb;
				sent_one(sh, w, o, sd, sid, mb, now_tsc, &x, multi);
			}
			beam_flush(w, sd, &x);
			if (sd->head == 0)
				o->active_mask &= ~(1ULL << b);
			else if (n >= max)
				o->rr = b;
		}
	}
	if (x.n_drop)
		rte_pktmbuf_free_bulk(x.drop, x.n_drop);
	return n;
}

uint16_t
sky_shaper_dequeue(struct sky_shaper *sh, unsigned int worker, unsigned int out,
		   struct rte_mbuf **pkts, uint16_t max, uint64_t now_tsc,
		   uint64_t drops[SKY_DROP_MAX])
{
	if (sh->n_classes > 1)
		return dequeue_burst(sh, worker, out, pkts, max, now_tsc, drops, true);
	return dequeue_burst(sh, worker, out, pkts, max, now_tsc, drops, false);
}
