/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Shaper: downstream hierarchical shaping (beam -> subscriber -> class) and upstream
 * policing (subscriber plan, then beam return-link capacity).
 *
 * Downstream, per worker and output (uplink) port slot:
 *   beam      token bucket at this worker's share of the beam's forward capacity
 *             (the control plane splits capacity among workers/ports by demand, see below)
 *   subscriber token bucket at the plan's down rate/burst; backlogged subscribers of a
 *             beam share it by deficit round robin weighted by plan weight (max-min fair:
 *             a subscriber asking less than its share gets all it asks)
 *   class     class 0 is strict priority (realtime); classes 1.. share what is left by
 *             deficit round robin weighted by the plan's class_weight (0 counts as 1)
 * Inside a subscriber and class, flows (hashed from addresses, ports, protocol) share
 * flow queues fq_codel style: up to 16 per subscriber, new (sparse) flows served before
 * old ones, DRR among them, CoDel (default), RED or no AQM per flow queue, each bounded by
 * classes[i].queue packets. Queues are singly linked lists of mbufs threaded through an
 * mbuf dynamic field (next, enqueue time, length, class). A packet that waited longer than
 * shaping.max_delay is dropped at dequeue (SKY_DROP_QUEUE_DELAY, counted in the shaper);
 * the sojourn of every packet sent feeds per-beam and per-class histograms
 * (sky_shaper_delay). Shaping state is allocated per ACTIVE subscriber
 * from a per-worker pool of shaping.max_active_per_worker slots; a configured subscriber
 * without traffic costs a slot index per output port, an upstream policer and a counter
 * block index (see bench_shaper); downstream counter blocks exist only for subscribers
 * that counted something on the worker (sky_shaper_ctr_pool).
 * A slot is kept after its queues drain until its token bucket has refilled, so going idle
 * never earns credit; then it returns to the pool.
 *
 * Unknown-subscriber packets admitted on the default plan (sub_idx == SKY_SUB_NONE) share
 * one aggregate pipe (one subscriber slot per worker and port, the default plan's rates) on
 * the beam their metadata names (beam 0 as the subscriber model assigns it).
 *
 * Upstream: per subscriber (per worker) a single-rate token bucket at the plan's up
 * rate/burst, then a per-worker share of the beam's return capacity; a packet conforming
 * to both takes tokens from both; else sky_meta_drop(SKY_DROP_POLICE).
 *
 * Rates are bit/s in the API and configuration; a packet costs pkt_len +
 * shaping.frame_overhead bytes (default 24: preamble, IFG, FCS). Token buckets keep
 * bytes in 32.32 fixed point, refill = elapsed TSC * rate (one 64x64->128 multiply), no
 * division on the data path. Time is always a parameter (now_tsc): tests drive it.
 *
 * Realtime: with two or more classes, class 0 of every subscriber on a beam is served
 * before any DRR turn (round robin among subscribers with class-0 packets, still within
 * each subscriber's plan and the beam). A realtime packet therefore waits at most for its
 * subscriber's bucket debt (one frame: MTU / plan rate), one frame of beam debt
 * (MTU / beam share), the class-0 packets of other subscribers, one sleep-wheel tick
 * (period / 1024 rounded to a power of two in TSC cycles) and the caller's dequeue interval,
 * however many bulk subscribers are backlogged. test_priority_latency, 100Mbit beam,
 * 20Mbit plans, 0.1 ms dequeue interval: realtime max 0.60 ms when the subscriber's own
 * bulk holds it at its plan (1524 B / 20Mbit = 0.61 ms), 0.10 ms with 10 or 200 saturated
 * bulk subscribers (their bulk queues wait 1.1 to 1.8 s).
 *
 * Why our own scheduler and not rte_sched: rte_sched reads the TSC itself (tests cannot
 * drive time), pre-allocates 16 queues per pipe for every pipe of every subport
 * (bench_shaper: ~10 KB per configured pipe with 64-packet queues, 1.36 GB for 131072
 * pipes), serves pipes of a subport without weights (no weighted share of a congested beam
 * by plan), changes pipe rates only among pre-declared profiles and frees dropped mbufs
 * itself. Here memory is per active subscriber, weights are plan weights, rates are any
 * value at any time.
 *
 * AQM: CoDel by default (RFC 8289 control law at dequeue, per subscriber and class queue).
 * It works on sojourn time, so one target suits a 1Mbit and a 1Gbit plan alike, where RED
 * thresholds in packets mean very different delays; it needs no per-queue timer (PIE does)
 * and no tuning beyond the round trip: interval = shaping.rtt (600ms GEO, use 40ms for LEO),
 * target = rtt / 20 clamped to 5..30ms. RED (on the average queue in packets) and none are
 * available per class; `pie` is refused with a reason.
 *
 * Threads: create/register/destroy and everything not marked data path run on the
 * control plane (EAL main lcore). police/enqueue/dequeue run on worker `worker` only,
 * one thread per worker index. Control plane writes rates with atomic stores; workers
 * never lock.
 */
#ifndef SKYGATE_SHAPER_H
#define SKYGATE_SHAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/config.h"
#include "skygate/meta.h"
#include "skygate/subscriber.h"

struct rte_mbuf;
struct sky_shaper;

/* --- the daemon's API ------------------------------------------------------------ */

/**
 * Create from the config (`shaping:` section, classes[i].queue / classes[i].aqm) and the
 * subscriber model (plans, beams, classes, capacity). n_out_ports: number of output
 * (uplink) port slots. NULL with err on any error. Control path.
 */
struct sky_shaper *sky_shaper_create(const struct sky_cfg *cfg, struct sky_subs *subs,
				     unsigned int n_workers, unsigned int n_out_ports,
				     struct sky_cfg_err *err);
/** Commands (shaper show), extenders of `beam show` / `subscriber show`, subscriber-model
 *  listener and validator, periodic rebalance, telemetry /skygate/shaper, metrics. */
int sky_shaper_register(struct sky_shaper *sh);
/** Free everything, queued mbufs included. Workers must be stopped. */
void sky_shaper_destroy(struct sky_shaper *sh);
bool sky_shaper_enabled(const struct sky_shaper *sh);

/** Data path, upstream (uplink RX): police live packets; drops marked SKY_DROP_POLICE. */
void sky_shaper_police_burst(struct sky_shaper *sh, unsigned int worker, struct sky_meta *meta,
			     uint16_t n, uint64_t now_tsc);
/** Data path, upstream, optional: start fetching the policer lines the police burst will
 *  read, so that their misses overlap the stages in between (the worker calls it right after
 *  the subscriber lookup). Reads nothing but meta; a hint that changes no result. */
void sky_shaper_police_prefetch(const struct sky_shaper *sh, unsigned int worker,
				const struct sky_meta *meta, uint16_t n);
/**
 * Data path, downstream: pkts/meta are live packets bound to output slot `out`. Takes
 * ownership of all n mbufs: queued ones are kept, refused ones freed and counted in
 * drops[reason] (SKY_DROP_QUEUE_TAIL / SKY_DROP_QUEUE_AQM). Returns the number queued.
 */
uint16_t sky_shaper_enqueue(struct sky_shaper *sh, unsigned int worker, unsigned int out,
			    struct rte_mbuf **pkts, const struct sky_meta *meta, uint16_t n,
			    uint64_t now_tsc, uint64_t drops[SKY_DROP_MAX]);
/** Data path: up to max packets due now on output slot `out`; the caller transmits them.
 *  Packets dropped at dequeue (older than shaping.max_delay: SKY_DROP_QUEUE_DELAY; CoDel:
 *  SKY_DROP_QUEUE_AQM) are freed, counted inside the shaper and, when drops is not NULL,
 *  in drops[reason] (the worker passes the counters of the port they arrived on). */
uint16_t sky_shaper_dequeue(struct sky_shaper *sh, unsigned int worker, unsigned int out,
			    struct rte_mbuf **pkts, uint16_t max, uint64_t now_tsc,
			    uint64_t drops[SKY_DROP_MAX]);

/* --- parameters (also the test/bench API: a shaper without a subscriber model) ---- */

enum sky_aqm_kind {
	SKY_AQM_NONE = 0,
	SKY_AQM_CODEL = 1,
	SKY_AQM_RED = 2,
};

struct sky_shaper_class_params {
	uint32_t queue_pkts;   /* classes[i].queue: packets, 1..65535 */
	uint8_t aqm;	       /* enum sky_aqm_kind */
	uint64_t target_us;    /* CoDel target sojourn */
	uint64_t interval_us;  /* CoDel interval */
	uint32_t red_min_pkts; /* RED thresholds on the average queue */
	uint32_t red_max_pkts;
	uint32_t red_max_p_pct; /* drop probability at red_max_pkts, percent 1..100 */
};

struct sky_shaper_params {
	bool enabled;			/* shaping.enabled (default true) */
	uint64_t period_us;		/* shaping.period: rebalance period, max sleep (10ms) */
	uint64_t rtt_us;		/* shaping.rtt: CoDel defaults derive from it (600ms) */
	uint64_t beam_burst_us;		/* shaping.beam_burst: beam bucket depth in time (2ms) */
	uint32_t max_active_per_worker; /* shaping.max_active_per_worker (65536) */
	uint32_t max_queued_per_worker; /* shaping.max_queued_per_worker: mbufs held (16384) */
	uint32_t max_flows_per_worker;	/* shaping.max_flows_per_worker: flow queues shared by
					 * the active subscribers beyond each one's first
					 * (0 = 2 per active subscriber slot) */
	uint64_t max_delay_us;		/* shaping.max_delay: longest queueing delay (100ms) */
	uint32_t frame_overhead;	/* shaping.frame_overhead bytes (24) */
	uint64_t port_rate_bps;		/* shaping.port_rate (100Gbit): highest plan/beam rate */
	uint64_t tsc_hz;		/* 0 = rte_get_tsc_hz() */
	unsigned int n_workers;
	unsigned int n_out_ports;
	unsigned int n_classes;
	uint32_t sub_capacity; /* sub_idx < sub_capacity */
	int unknown_plan;      /* plan of unknown subscribers, -1 = none */
	struct sky_shaper_class_params cls[SKY_MAX_CLASSES];
};

/** Defaults for everything (GEO round trip), n_classes = 1. */
void sky_shaper_params_default(struct sky_shaper_params *p);
/**
 * Read `shaping:` and classes[i].queue / classes[i].aqm into p (which holds defaults).
 * Validates those keys; unknown keys under shaping/aqm are errors. Returns 0 or -1 + err.
 */
int sky_shaper_parse_config(const struct sky_cfg *cfg, struct sky_shaper_params *p,
			    struct sky_cfg_err *err);
/** Create from explicit parameters, plans[n_plans] and beams[n_beams] (no listeners). */
struct sky_shaper *sky_shaper_create_params(const struct sky_shaper_params *p,
					    const struct sky_plan *plans, unsigned int n_plans,
					    const struct sky_beam *beams, unsigned int n_beams,
					    char *err, size_t errlen);

/* --- runtime changes (control path; also what the subscriber-model listener calls) - */

/** Check a plan/beam against the shaper's limits (port rate). 0 or -1 + reason. */
int sky_shaper_check_plan(const struct sky_shaper *sh, const struct sky_plan *p, char *err,
			  size_t errlen);
int sky_shaper_check_beam(const struct sky_shaper *sh, const struct sky_beam *b, char *err,
			  size_t errlen);
/** Apply a new plan / beam value: takes effect at the workers' next refill (atomic stores).
 *  Queued packets are kept. -EINVAL if idx is out of range or the value fails the check. */
int sky_shaper_set_plan(struct sky_shaper *sh, unsigned int idx, const struct sky_plan *p);
int sky_shaper_set_beam(struct sky_shaper *sh, unsigned int idx, const struct sky_beam *b);
/** Split each beam's capacity among (worker, output) shards by recent demand. Called
 *  periodically (shaping.period) once registered; tests call it directly. */
void sky_shaper_rebalance(struct sky_shaper *sh, uint64_t now_tsc);

/* --- statistics (control path; sums over workers) --------------------------------- */

#define SKY_SHAPER_FOREACH_CTR(_)                                                                  \
	_(OFFERED_PKTS, "offered_packets")                                                         \
	_(OFFERED_BYTES, "offered_bytes")                                                          \
	_(SENT_PKTS, "sent_packets")                                                               \
	_(SENT_BYTES, "sent_bytes")                                                                \
	_(DROP_TAIL, "queue_tail_drops")                                                           \
	_(DROP_AQM, "queue_aqm_drops")                                                             \
	_(DROP_DELAY, "queue_delay_drops")                                                         \
	_(UP_PASS_PKTS, "up_passed_packets")                                                       \
	_(UP_PASS_BYTES, "up_passed_bytes")                                                        \
	_(DROP_POLICE, "police_drops")

enum sky_shaper_ctr {
#define SKY_SHAPER_CTR_ENUM(n, s) SKY_SHAPER_##n,
	SKY_SHAPER_FOREACH_CTR(SKY_SHAPER_CTR_ENUM)
#undef SKY_SHAPER_CTR_ENUM
		SKY_SHAPER_CTR_MAX
};
extern const char *const sky_shaper_ctr_names[SKY_SHAPER_CTR_MAX];

struct sky_shaper_stats {
	uint64_t ctr[SKY_SHAPER_CTR_MAX];
	uint64_t cls_tail[SKY_MAX_CLASSES]; /* per class tail drops */
	uint64_t cls_aqm[SKY_MAX_CLASSES];  /* per class AQM drops */
	uint64_t queued_pkts;		    /* queue depth now */
	uint64_t queued_bytes;
	uint64_t rate_bps; /* beam: sum of shares; subscriber: plan down rate */
	uint64_t up_rate_bps;
	uint32_t active; /* beam: backlogged subscribers now */
};

/** Per subscriber index (SKY_SUB_NONE: the unknown aggregate). -ENOENT if out of range. */
int sky_shaper_sub_stats(const struct sky_shaper *sh, uint32_t sub_idx,
			 struct sky_shaper_stats *out);
/**
 * Downstream counter blocks of one worker: one per subscriber that counted something
 * there, handed out in order from blocks the control plane prepares ahead
 * (max_active_per_worker ahead, at create and every rebalance). A subscriber that finds
 * none ready counts into `uncounted` (misses says how often): its later counts go to its
 * own block once one is ready. -ENOENT if worker is out of range.
 */
struct sky_shaper_ctr_pool {
	uint32_t blocks_in_use;
	uint32_t blocks_ready; /* prepared (memory touched), in use included */
	uint32_t blocks_max;   /* one per subscriber index */
	uint32_t block_bytes;
	uint64_t misses;		   /* counts that found no block ready */
	struct sky_shaper_stats uncounted; /* their downstream counts */
};
int sky_shaper_ctr_pool(const struct sky_shaper *sh, unsigned int worker,
			struct sky_shaper_ctr_pool *out);
/** Per beam. -ENOENT if out of range. */
int sky_shaper_beam_stats(const struct sky_shaper *sh, unsigned int beam,
			  struct sky_shaper_stats *out);
/** Current downstream share of one (worker, out, beam) shard in bit/s; upstream share of
 *  (worker, beam) when out == UINT32_MAX. */
uint64_t sky_shaper_share_bps(const struct sky_shaper *sh, unsigned int worker, unsigned int out,
			      unsigned int beam);

/**
 * Queueing delay (sojourn from enqueue to dequeue) of the packets sent, from histograms
 * kept per (beam) and per (class) on the data path (4 buckets per octave: percentiles are
 * the upper bound of their bucket, at most 25% above the true value). `last` covers the
 * last complete interval (sky_shaper_rebalance rolls it every SKY_SHAPER_DELAY_INTERVAL_US
 * of its now_tsc), `total` everything since start.
 */
#define SKY_SHAPER_DELAY_INTERVAL_US 1000000
struct sky_shaper_delay {
	uint64_t count; /* packets sent */
	uint64_t p50_us;
	uint64_t p99_us;
	uint64_t max_us;
	uint64_t sum_us;
};
enum sky_shaper_delay_of { SKY_SHAPER_DELAY_BEAM, SKY_SHAPER_DELAY_CLASS };
/** -ENOENT if idx is out of range. */
int sky_shaper_delay(const struct sky_shaper *sh, enum sky_shaper_delay_of of, unsigned int idx,
		     struct sky_shaper_delay *last, struct sky_shaper_delay *total);
/**
 * Cumulative histogram for Prometheus: counts of packets with sojourn <= le_us[i], for
 * n_le bounds (ascending), and the count and sum (us) of all. -ENOENT if out of range.
 */
int sky_shaper_delay_buckets(const struct sky_shaper *sh, enum sky_shaper_delay_of of,
			     unsigned int idx, const uint64_t *le_us, unsigned int n_le,
			     uint64_t *cum, uint64_t *count, uint64_t *sum_us);

/** Bytes of shaping state: per configured subscriber (all workers and ports), and per
 *  active subscriber slot. */
void sky_shaper_state_size(const struct sky_shaper *sh, size_t *per_sub, size_t *per_active);

#endif /* SKYGATE_SHAPER_H */
