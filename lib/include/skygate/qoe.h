/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * qoe: quality of experience from passive RTT. The control plane keeps, per subscriber and
 * per beam, the RTT samples the flow table measured (skygate/flow.h: struct sky_rtt_sample)
 * for each half of the path separately:
 *   satellite half  gateway -> satellite -> terminal -> gateway  (a server's TSval echoed
 *                   by the terminal; SYN-ACK -> ACK)
 *   internet half   gateway -> server -> gateway                 (a terminal's TSval echoed
 *                   by the server; SYN -> SYN-ACK)
 * and the TCP retransmission share per direction (segments whose sequence went backwards,
 * from the samples' segs/retrans counts).
 *
 * What is kept (control path only; nothing here runs on a worker):
 *   - a sliding window (qoe.window, default 60 s) made of SKY_QOE_SLOTS slots (10 s each by
 *     default): per slot and half a log-linear histogram of RTTs, the slot's min and max,
 *     sample counts, TCP segments and retransmissions by direction. p50/p95/p99 come from
 *     the histogram (nearest rank, the bin's midpoint clamped to the window's min and max):
 *     a subscriber's bins are 1/8 of an octave wide (a percentile within +-6.25 %), a
 *     beam's 1/16 (+-3.2 %); below 256 us the bins are linear (32 us, 16 us);
 *   - the minimum over a longer window (qoe.min_window, default 5 min), exact: the min
 *     tracks the path (propagation), the percentiles its queues;
 *   - per beam, cumulative histograms since start for Prometheus.
 * Subscribers are kept in a bounded table keyed by the subscriber index (qoe.subscribers
 * entries, memory printed at start). A subscriber without samples for a whole window may be
 * taken over by another; when none is idle a sample for a new subscriber is dropped and
 * counted (table_full).
 *
 * The grade (score 0..100 and a letter), in the manner of the IETF IPPM "Quality of
 * Outcome" draft (a requirement is a latency and a loss figure at which the outcome is
 * perfect and one at which it is useless; the score interpolates linearly between them and
 * the worst figure decides):
 *   latency = p95 of the satellite half + p95 of the internet half (the halves measured)
 *   loss    = the larger of the two directions' retransmission shares
 *   score   = min(lin(latency, latency_good, latency_bad), lin(loss, loss_good, loss_bad))
 *             lin(x, g, b) = 100 when x <= g, 0 when x >= b, else 100 * (b - x) / (b - g)
 *   letter  = A >= 90, B >= 75, C >= 50, D >= 25, else F; '-' (score -1) with fewer than
 *             qoe.grade.min_samples RTT samples in the window.
 *
 * Time is a parameter (microseconds, any monotonic origin) in every call below, so tests
 * drive it; the daemon passes the TSC converted to microseconds.
 *
 * Config (off when the flow table's RTT is off: no `flows:` section, or flows.rtt false):
 *   qoe:
 *     window: 60s                    # percentiles, counts, retransmission shares
 *     min_window: 5m                 # the minimum RTT
 *     subscribers: 4096              # table entries (subscribers measured at once)
 *     per_subscriber_metrics: false  # Prometheus gauges per subscriber (cardinality!)
 *     grade: { latency_good: 100ms, latency_bad: 2s, loss_good: 0.1%, loss_bad: 5%,
 *              min_samples: 5 }
 */
#ifndef SKYGATE_QOE_H
#define SKYGATE_QOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/config.h"
#include "skygate/flow.h"

#define SKY_QOE_SLOTS 6 /* slots of a window, and of the min window */

struct sky_subs;
struct sky_qoe;

struct sky_qoe_params {
	bool enabled;
	bool per_sub_metrics;	/* Prometheus gauges per subscriber */
	uint64_t window_us;	/* SKY_QOE_SLOTS slots of window_us / SKY_QOE_SLOTS */
	uint64_t min_window_us; /* >= window_us */
	uint32_t max_subs;	/* table entries */
	uint32_t lat_good_us;	/* grade: latency at which the score is 100 */
	uint32_t lat_bad_us;	/* ... and 0 (> lat_good_us) */
	uint32_t loss_good_bp;	/* grade: loss in basis points (1/100 %) for 100 */
	uint32_t loss_bad_bp;	/* ... and for 0 (> loss_good_bp, <= 10000) */
	uint32_t grade_min_samples;
};

/** The defaults (the values in the file comment), enabled. */
void sky_qoe_params_default(struct sky_qoe_params *p);

/** One half of the path over the window. All 0 without samples. */
struct sky_qoe_half {
	uint32_t samples;			 /* RTT samples in the window */
	uint32_t min_us;			 /* over min_window (0 = no sample in it) */
	uint32_t p50_us, p95_us, p99_us, max_us; /* over the window */
};

/** What the window says about a subscriber or a beam. */
struct sky_qoe_view {
	uint32_t sub_id;	      /* subscribers: the operator's id */
	uint16_t beam;		      /* subscribers: beam of the last sample */
	struct sky_qoe_half half[2];  /* by enum sky_rtt_half */
	uint64_t segs[2], retrans[2]; /* TCP data segments by sky_dir, over the window */
	uint32_t retrans_bp[2];	      /* retrans / segs in basis points (0 without segs) */
	int score;		      /* 0..100, -1 = not graded */
	char grade;		      /* 'A'..'F', '-' = not graded */
	uint64_t last_us;	      /* time of the last sample */
};

/** Counters of the module (control path). */
struct sky_qoe_stats {
	uint64_t samples;     /* RTT samples taken in */
	uint64_t counts_only; /* samples with segment counts only (rtt_us 0) */
	uint64_t table_full;  /* samples dropped: no free entry for their subscriber */
	uint64_t taken_over;  /* idle entries given to another subscriber */
	uint64_t bad;	      /* samples refused: index, beam or half out of range */
	uint32_t active;      /* entries in use */
};

/**
 * Read and check the `qoe:` section into p (defaults for what it omits); p->enabled is
 * false when the flow table measures no RTT. 0, or -1 with err ("FILE:LINE: qoe.window: ...").
 */
int sky_qoe_parse(const struct sky_cfg *cfg, struct sky_qoe_params *p, struct sky_cfg_err *err);

/**
 * Build from checked parameters: n_idx subscriber indexes (sample sub_idx < n_idx), n_beams
 * beams (<= SKY_MAX_BEAMS). subs may be NULL (tests): then no commands are extended and
 * views by id are unavailable. NULL with err filled on bad parameters or no memory.
 */
struct sky_qoe *sky_qoe_create_params(const struct sky_qoe_params *p, struct sky_subs *subs,
				      uint32_t n_idx, unsigned int n_beams, char *err,
				      size_t errlen);
/** Build from the config and the subscriber model. NULL with err filled. */
struct sky_qoe *sky_qoe_create(const struct sky_cfg *cfg, struct sky_subs *subs,
			       struct sky_cfg_err *err);
/** Commands (qoe show, the rtt fields of subscriber show / top and beam show), telemetry
 *  /skygate/qoe, Prometheus. Control path, once. 0 or -errno. Nothing when disabled. */
int sky_qoe_register(struct sky_qoe *q);
/** Take the flow table's RTT samples (sky_flow_on_rtt). Control path, once, after both
 *  registered. 0 (also when either is off) or -errno. */
int sky_qoe_attach(struct sky_qoe *q, struct sky_flow *f);
void sky_qoe_destroy(struct sky_qoe *q);
int sky_qoe_enabled(const struct sky_qoe *q);
const struct sky_qoe_params *sky_qoe_params(const struct sky_qoe *q);
/** Bytes the module holds (tables, histograms). */
size_t sky_qoe_memory(const struct sky_qoe *q);

/** Take one sample in at now_us (control path). */
void sky_qoe_add(struct sky_qoe *q, const struct sky_rtt_sample *s, uint64_t now_us);
/** The flow table's consumer (sky_flow_on_rtt(flow, sky_qoe_on_rtt, q)): sky_qoe_add at the
 *  TSC's time. */
void sky_qoe_on_rtt(void *arg, const struct sky_rtt_sample *s, uint64_t now_tsc);

/** The subscriber at index idx: 0, or -ENOENT (no samples kept for it). */
int sky_qoe_sub(struct sky_qoe *q, uint32_t idx, uint64_t now_us, struct sky_qoe_view *v);
/** Beam b: 0 (all zero without samples), -EINVAL out of range. */
int sky_qoe_beam(struct sky_qoe *q, unsigned int b, uint64_t now_us, struct sky_qoe_view *v);
/** Score and letter of v under p (see the file comment). */
void sky_qoe_grade(const struct sky_qoe_params *p, const struct sky_qoe_view *v, int *score,
		   char *grade);
/**
 * The n subscribers ranked by what (0: latency as the grade takes it, p95 satellite +
 * p95 internet; 1: the larger retransmission share), worst first: indexes into idx, returns how
 * many
 * (<= n). Only subscribers with a figure (samples, segments) are ranked.
 */
unsigned int sky_qoe_worst(struct sky_qoe *q, int what, uint64_t now_us, uint32_t *idx,
			   unsigned int n);
void sky_qoe_stats(const struct sky_qoe *q, struct sky_qoe_stats *st);

/** The histogram bin of a value and its bounds [lo, hi] (sub_bits 3: subscribers, 4:
 *  beams). Exposed for tests. */
unsigned int sky_qoe_bin(uint32_t us, unsigned int sub_bits);
uint32_t sky_qoe_bin_lo(unsigned int bin, unsigned int sub_bits);
uint32_t sky_qoe_bin_hi(unsigned int bin, unsigned int sub_bits);

#endif /* SKYGATE_QOE_H */
