/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper internals shared by the data path (shaper_dp.c), the control plane (shaper.c)
 * and the commands (shaper_ctl.c). Not installed.
 *
 * Fixed point: token buckets hold bytes << 32 in an int64_t; rates are bytes per TSC
 * cycle << 32 (rate_fp). inv_fp = 2^64 / rate_fp turns a token deficit into a wait in
 * cycles with one multiply.
 */
#ifndef SKY_SHAPER_PRIV_H
#define SKY_SHAPER_PRIV_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "skygate/runtime.h"
#include "skygate/shaper.h"

#define FP 32
#define WHEEL_SIZE 2048	     /* sleep wheel buckets per (worker, out) */
#define WHEEL_MAX_SLEEP 1024 /* longest sleep in ticks (tick chosen from period) */
#define TS_SHIFT 8	     /* queue timestamps: tsc >> 8 in 32 bits */
#define SHP_MTU_COST 1600    /* a full frame, for quanta and minimum bursts */
#define CODEL_TAB 256
#define SHP_NFQ 16	    /* flow queue buckets per active subscriber (all classes) */
#define SHP_FQ_QUANTUM 1600 /* DRR bytes per turn among the flows of a class */

/* per-packet data kept in the mbuf while it is queued (dynamic field) */
struct shp_mdyn {
	struct rte_mbuf *next;
	uint32_t ts;  /* enqueue time, tsc >> TS_SHIFT */
	uint16_t len; /* cost in bytes (frame + overhead, at most 65535) */
	uint8_t cls;  /* class */
	uint8_t pad;
};

/* plan as the data path reads it; every field is written with an atomic store */
struct shp_plan {
	uint64_t down_rate_fp;
	int64_t down_burst_fp;
	uint64_t down_inv_fp;
	uint64_t up_rate_fp;
	int64_t up_burst_fp;
	uint32_t quantum;		       /* DRR bytes per turn among subscribers */
	uint32_t weight;		       /* plan weight (beam share) */
	uint32_t cls_quantum[SKY_MAX_CLASSES]; /* DRR bytes per turn among classes 1.. */
	uint64_t down_bps;		       /* control path: stats */
	uint64_t up_bps;
} __rte_cache_aligned;

/* per class, fixed at create */
struct shp_class {
	uint32_t qlimit; /* packets per flow queue */
	uint8_t aqm;
	uint32_t target_ts; /* CoDel, in ts units */
	uint32_t interval_ts;
	uint32_t red_min_fp; /* RED: average queue (packets << 8) */
	uint32_t red_max_fp;
	uint32_t red_maxp;	       /* probability at max, of 2^32 */
	uint32_t red_slope;	       /* maxp / (max - min) per (1 << 8) of avg, of 2^32 */
	uint32_t codel_law[CODEL_TAB]; /* interval / sqrt(k) in ts units, k = 1.. */
};

/*
 * One flow queue (fq_codel style): the packets of the flows of one subscriber and class
 * that hash to it, linked through the mbufs; its DRR deficit among the class's flows and
 * its CoDel state. A subscriber's first flow uses the flow queue inside its slot; more
 * come from the worker's shared pool while they are on one of their class's lists.
 */
struct shp_fq {
	struct rte_mbuf *head;
	struct rte_mbuf *tail;
	uint32_t next;	      /* new/old list link, free list link */
	int32_t deficit;      /* DRR among the flows of the class */
	uint32_t qn;	      /* packets queued */
	uint8_t cls;	      /* class of the flows hashed here */
	uint8_t h;	      /* bucket in the slot's fq map */
	uint8_t list;	      /* FQL_NONE / FQL_NEW / FQL_OLD */
	uint8_t dropping;     /* CoDel */
	uint32_t first_above; /* CoDel, 0 = not above target */
	uint32_t drop_next;
	uint32_t count; /* CoDel drop count; RED keeps its average here */
	uint32_t lastcount;
};

/* a shared flow queue, one cache line */
struct shp_fq_pool {
	struct shp_fq f;
	uint8_t pad[RTE_CACHE_LINE_SIZE - sizeof(struct shp_fq)];
} __rte_cache_aligned;

enum { FQL_NONE = 0, FQL_NEW, FQL_OLD };

/* the flow lists of one class of a slot: new (sparse) flows are served before old ones */
struct shp_cq {
	uint32_t new_head, new_tail;
	uint32_t old_head, old_tail;
};

enum { SLOT_FREE = 0, SLOT_IDLE, SLOT_ACTIVE, SLOT_SLEEP };

/*
 * Shaping state of one active subscriber on one worker and output. A packet of a
 * subscriber with one flow (class 0 or a single class) reads and writes lines 0 and 1
 * only: the scheduler header and counters, class 0's lists and the slot's own flow queue.
 */
struct shp_slot {
	/* line 0 */
	int64_t tokens;
	uint64_t last;
	int32_t deficit;
	uint32_t next; /* wheel bucket or free list link (DRR links: shp_worker.drr) */
	uint32_t sub;
	uint16_t plan, beam;
	uint8_t state, out, nonempty, cur_cls;
	uint8_t in_turn, in_rt, n_fq, own_fq; /* own_fq: `own` is in use */
	uint32_t backlog_pkts;
	uint32_t backlog_bytes;
	uint32_t weight;     /* counted into its shard's active_weight while ACTIVE/SLEEP */
	uint32_t sent_pkts;  /* since the slot was taken or last folded into shp_subctr */
	uint64_t sent_bytes; /* (offered = sent + dropped + queued, from the counters) */
	/* line 1 */
	struct shp_cq cq0;
	struct shp_fq own; /* flow queue index = slot id */
	/* line 2: flow hash bucket -> flow queue (0 = none) */
	uint32_t fqmap[SHP_NFQ] __rte_cache_aligned;
	/* lines 3..5: classes 1.. */
	struct shp_cq cq[SKY_MAX_CLASSES - 1];
	int32_t cls_deficit[SKY_MAX_CLASSES]; /* DRR among classes 1.. */
} __rte_cache_aligned;

static inline struct shp_cq *
slot_cq(struct shp_slot *s, unsigned int c)
{
	return c == 0 ? &s->cq0 : &s->cq[c - 1];
}

/* sojourn histogram: 4 buckets per octave of ts units (tsc >> TS_SHIFT) */
#define SHP_HIST 112
struct shp_hist {
	uint64_t b[SHP_HIST];
	uint64_t sum_ts; /* sum of sojourns, ts units */
	uint32_t max_ts; /* largest sojourn since the control plane last reset it */
	uint32_t pad;
};

static inline unsigned int
shp_hist_bucket(uint32_t v)
{
	unsigned int lg, b;

	if (v < 8)
		return v;
	lg = 31u - (unsigned int)__builtin_clz(v);
	b = (lg - 1) * 4 + ((v >> (lg - 2)) & 3);
	return b < SHP_HIST ? b : SHP_HIST - 1;
}

/* smallest value of bucket b + 1 (the bucket's exclusive upper bound), ts units */
static inline uint64_t
shp_hist_upper(unsigned int b)
{
	unsigned int lg, sub;

	if (b < 8)
		return b + 1;
	lg = b / 4 + 1;
	sub = b % 4;
	return (uint64_t)(5 + sub) << (lg - 2);
}

static inline void
shp_hist_add(struct shp_hist *h, uint32_t v)
{
	h->b[shp_hist_bucket(v)]++;
	h->sum_ts += v;
	if (v > h->max_ts)
		h->max_ts = v;
}

/* downstream beam bucket of one (worker, out, beam) */
struct shp_shard {
	/* data path (worker) */
	int64_t tokens;
	uint64_t last;
	uint32_t head, tail;	   /* DRR list: every ACTIVE slot */
	uint32_t rt_head, rt_tail; /* ACTIVE slots with realtime (class 0) packets */
	uint32_t n_active;	   /* subscribers ACTIVE or SLEEPing */
	uint32_t pf[3];		   /* prefetch hands on the DRR list (prefetch_list) */
	uint32_t pf_seq[3];	   /* seq of their slots when they got there */
	uint16_t pf_dist[3];
	uint32_t rt_pf[3]; /* and on the realtime list */
	uint32_t rt_pf_seq[3];
	uint16_t rt_pf_dist[3];
	uint64_t active_weight;
	uint64_t limited; /* times the beam bucket ran dry with subscribers waiting */
	uint64_t ctr[7];  /* offered pkts/bytes, sent pkts/bytes, tail, aqm, delay drops */
	int64_t queued_pkts;
	int64_t queued_bytes;
	struct shp_hist hist; /* sojourn of the packets sent */
	/* written by the control plane */
	uint64_t rate_fp __rte_cache_aligned;
	int64_t burst_fp;
	uint64_t share_bps;
} __rte_cache_aligned;

enum { SC_OFF_PKTS, SC_OFF_BYTES, SC_SENT_PKTS, SC_SENT_BYTES, SC_TAIL, SC_AQM, SC_DELAY };
#define SUBC(k) ((k)-SC_SENT_PKTS) /* shp_subctr.ctr index of shard counter k */

/* upstream (return link) bucket of one (worker, beam) */
struct shp_upshard {
	int64_t tokens;
	uint64_t last;
	uint64_t pass_pkts, pass_bytes;
	uint64_t drops_sub;  /* police drops by the subscriber's bucket */
	uint64_t drops_beam; /* police drops by the beam's bucket */
	uint64_t rate_fp __rte_cache_aligned;
	int64_t burst_fp;
	uint64_t share_bps;
} __rte_cache_aligned;

/* upstream policer of one subscriber on one worker: half a line, never across two (its
 * drops, rare, are counted apart in shp_worker.pol_drops) */
struct shp_pol {
	int64_t tokens;
	uint64_t last;
	uint64_t pass_pkts;
	uint64_t pass_bytes;
} __rte_aligned(32);

_Static_assert(sizeof(struct shp_pol) == 32, "policer: 32 bytes");

/*
 * Downstream counters of one subscriber on one worker (folded from slots): a counter
 * block, kept only for subscribers that have counted something on the worker. Blocks are
 * handed out in order from a reserved mapping (shp_worker.ctrblk) and found through a
 * 4-byte index per configured subscriber (shp_worker.ctridx, 0 = none); the control
 * thread keeps blocks touched ahead of the cursor (shp_ctr_ready) so the data path never
 * faults. A block stays with its subscriber index; `subscriber del` zeroes it.
 */
struct shp_subctr {
	uint64_t ctr[5];     /* shard ctr[] from SC_SENT_PKTS on, at SUBC(SC_...): offered is
			      * not kept per subscriber (offered = sent + dropped + queued) */
	uint64_t drop_bytes; /* bytes of the packets dropped (tail, aqm, delay) */
	uint32_t cls_tail[SKY_MAX_CLASSES];
	uint32_t cls_aqm[SKY_MAX_CLASSES];
};

struct shp_out {
	uint32_t *idx;		 /* [cap + 1]: sub -> slot (0 = none) */
	struct shp_shard *shard; /* [n_beams] */
	uint32_t *wheel;	 /* [WHEEL_SIZE] */
	struct shp_hist *chist;	 /* [SKY_MAX_CLASSES]: sojourn per class */
	uint64_t active_mask;	 /* beams with a non-empty active list */
	uint64_t wheel_tick;	 /* last tick processed */
	uint32_t rr;		 /* beam to start with */
} __rte_cache_aligned;

/* DRR and realtime list links, apart from the slots so the order can be walked (and a
 * slot linked or unlinked) without touching other slots */
struct shp_link {
	uint32_t next, prev;
	uint32_t seq; /* when it was appended (per worker): list order is seq order */
	uint32_t pad;
};

struct shp_worker {
	struct shp_slot *slots; /* [n_slots], slot 0 unused */
	struct shp_link *drr;	/* [n_slots] */
	struct shp_link *rt;	/* [n_slots]: realtime list (ACTIVE with class 0 queued) */
	uint32_t n_slots;
	uint32_t free_head;
	uint32_t n_free;
	uint32_t clock;	    /* eviction hand over IDLE slots when the pool is dry */
	uint32_t seq;	    /* list appends (shp_link.seq) */
	uint64_t pool_full; /* packets dropped because no slot was free */
	uint64_t buf_full;  /* packets dropped because max_queued_per_worker was hit */
	uint32_t queued;    /* packets held in all queues of this worker */
	uint64_t aqm_drops;
	uint64_t delay_drops;	/* packets older than shaping.max_delay at dequeue */
	uint64_t fq_full;	/* packets dropped because no flow queue was free */
	struct shp_fq_pool *fq; /* shared pool: flow queue n_slots + i is fq[i]; 1..n_slots-1
				 * are the slots' own (fqp) */
	uint32_t n_fq;		/* n_slots + pool size */
	uint32_t fq_free;	/* free list head */
	uint32_t fq_n_free;
	struct shp_out *out;	   /* [n_out] */
	uint32_t *ctridx;	   /* [cap + 1]: sub -> counter block (0 = none) */
	struct shp_subctr *ctrblk; /* [ctr_max]: reserved, touched below ctr_ready */
	uint32_t ctr_next;	   /* next block to hand out (written by the worker) */
	uint32_t ctr_ready;	   /* blocks below are touched (written by the control) */
	uint32_t ctr_max;	   /* cap + 2: block 0 unused, one per subscriber index */
	uint64_t ctr_miss;	   /* counts that found no ready block: went to ctr_agg */
	struct shp_subctr ctr_agg; /* the counts of subscribers that found no block */
	size_t ctr_map_len;	   /* control path only: the reservation's length */
	struct shp_pol *pol;	   /* [cap + 1] */
	uint64_t *pol_drops;	   /* [cap + 1]: packets the policer dropped */
	struct shp_upshard *up;	   /* [n_beams] */
} __rte_cache_aligned;

/* flow queue by index: below n_slots a slot's own, else from the shared pool */
static inline struct shp_fq *
fqp(const struct shp_worker *w, uint32_t fi)
{
	return fi < w->n_slots ? &w->slots[fi].own : &w->fq[fi - w->n_slots].f;
}

/* control plane rebalance memory per shard */
struct shp_cpshard {
	uint64_t prev_bytes;
	uint64_t prev_limited;
	uint64_t rate_Bps; /* measured, bytes/s */
	int limited;	   /* the shard's bucket ran dry during the last period */
};

struct sky_shaper {
	/* read by the data path */
	struct sky_shaper_params p;
	unsigned int n_plans, n_beams, n_classes, n_workers, n_out;
	uint32_t cap; /* index of the unknown aggregate = sub_capacity */
	int mbuf_off; /* dynamic field offset */
	uint32_t overhead;
	uint32_t max_delay_ts; /* shaping.max_delay in ts units */
	unsigned int tick_shift;
	uint64_t max_sleep_tsc;
	struct shp_plan *plans; /* [SKY_MAX_PLANS] */
	struct shp_class cls[SKY_MAX_CLASSES];
	struct shp_worker *w; /* [n_workers] */

	/* control path only */
	uint64_t hz;
	struct sky_plan *cp_plans;   /* [SKY_MAX_PLANS] */
	struct sky_beam *cp_beams;   /* [n_beams] */
	struct shp_cpshard *cp_down; /* [n_beams][n_workers * n_out] */
	struct shp_cpshard *cp_up;   /* [n_beams][n_workers] */
	uint64_t last_rebalance;
	struct sky_subs *subs;
	uint64_t *cp_subrate; /* [2 * (cap + 1)]: sent bytes, tsc at last show */
	uint64_t beam_rate_prev[SKY_MAX_BEAMS][3]; /* sent bytes, tsc, measured bps */
	/* delay histograms: [beams..., classes...] sums at the start of the current interval
	 * and the last complete interval's counts and max */
	struct shp_hist *hist_mark; /* [n_beams + SKY_MAX_CLASSES] */
	struct shp_hist *hist_last; /* [n_beams + SKY_MAX_CLASSES] */
	uint64_t hist_roll_tsc;
	int registered;
	void (*on_destroy)(struct sky_shaper *sh); /* set by sky_shaper_register */
};

static inline struct shp_mdyn *
mdyn(const struct sky_shaper *sh, struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, sh->mbuf_off, struct shp_mdyn *);
}

/* the same with the field's offset read once by the caller */
static inline struct shp_mdyn *
mdyn_at(int off, struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, off, struct shp_mdyn *);
}

/* bytes/s -> fixed-point bytes per cycle */
static inline uint64_t
shp_rate_fp(uint64_t bps, uint64_t hz)
{
	unsigned __int128 r = ((unsigned __int128)bps << FP) / ((unsigned __int128)hz * 8);

	if (r == 0 && bps != 0)
		r = 1;
	return (uint64_t)r;
}

static inline uint64_t
shp_inv_fp(uint64_t rate_fp)
{
	return rate_fp ? UINT64_MAX / rate_fp : UINT64_MAX;
}

/* refill a bucket at now; buckets never exceed burst (a bucket created with tokens =
 * INT64_MAX starts full at its first refill) */
static inline void
shp_refill(int64_t *tokens, uint64_t *last, uint64_t now, uint64_t rate_fp, int64_t burst_fp)
{
	uint64_t dt = now - *last;
	unsigned __int128 add;
	int64_t room = burst_fp - *tokens;

	if (room <= 0) {
		*tokens = burst_fp;
		*last = now;
		return;
	}
	if ((int64_t)dt <= 0)
		return;
	*last = now;
	add = (unsigned __int128)dt * rate_fp;
	if (add >= (unsigned __int128)room)
		*tokens = burst_fp;
	else
		*tokens += (int64_t)add;
}

/* shaper.c helpers used by the control commands */
void shp_collect_sub(const struct sky_shaper *sh, uint32_t sub, struct sky_shaper_stats *st);
void shp_free_queues(struct sky_shaper *sh);
void shp_forget_sub(struct sky_shaper *sh, uint32_t sub);
void shp_hist_roll(struct sky_shaper *sh, uint64_t now_tsc);
void shp_ctr_ready(struct sky_shaper *sh);

/* the counter block of a subscriber, or NULL (control path: a subscriber without one
 * counted nothing on this worker) */
static inline const struct shp_subctr *
shp_ctr_peek(const struct shp_worker *w, uint32_t sub)
{
	uint32_t b = __atomic_load_n(&w->ctridx[sub], __ATOMIC_ACQUIRE);

	return b != 0 ? &w->ctrblk[b] : NULL;
}

#endif /* SKY_SHAPER_PRIV_H */
