/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow table internals shared by the data path (flow_dp.c), the owner (flow.c), the
 * configuration (flow_cfg.c) and the commands (flow_ctl.c). Not installed. The design,
 * the eviction rule and the memory per worker are in lib/flow/README.md.
 *
 * Per worker: an array of buckets, each one cache line of 16 16-bit signatures and 16
 * 16-bit ages, an array of entries (two cache lines each, 128-byte aligned; entry i
 * belongs to bucket i / 16, slot i % 16) and an array of their cold parts (32 bytes
 * each). A packet hashes its key once (CRC32), reads one bucket line (prefetched for the
 * whole burst), compares 16 signatures at once and then reads the entry's two lines; the
 * cold part is touched at insert, when a sample or a record leaves, and at an RTT match.
 *
 * Time, all derived from the TSC with shifts chosen at create (units are powers of two
 * cycles, so the data path never divides):
 *   fine   tsc >> shift_f, <= 1 us:   pending TSval / SYN / echo first sightings (u32,
 *                                      wraps after > 30 min)
 *   coarse tsc >> shift_c, <= 1 ms:   first/last seen, timeouts, sample spacing (u32,
 *                                      wraps after > 24 days)
 *   age    tsc >> shift_a, <= 4 ms:   the bucket's 16-bit ages, for the eviction choice
 *                                      and the expiry scan (wraps after > 130 s, so idle
 *                                      timeouts are capped at 120 s)
 *   window tsc >> shift_s, <= 1 s:    the segment counts leave at least once a window
 */
#ifndef SKY_FLOW_PRIV_H
#define SKY_FLOW_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>

#include "skygate/flow.h"
#include "skygate/runtime.h"

#define FLOW_WAYS 16		  /* slots per bucket */
#define FLOW_RTT_RING 16384	  /* RTT samples per worker ring */
#define FLOW_REC_RING 8192	  /* ended flow records per worker ring */
#define FLOW_MAX_CONSUMERS 4	  /* per kind */
#define FLOW_EXPIRE_SLICE 16	  /* buckets checked per expiry step */
#define FLOW_FLUSH_SLICE 64	  /* buckets ended per step of a `flows flush` */
#define FLOW_RTT_MAX_F (1u << 30) /* a pending sighting older than this (fine units) is stale */

/* the configuration (`flows:`), validated by flow_cfg.c */
struct flow_params {
	uint32_t entries; /* per worker, a power of two */
	bool rtt;
	bool records;
	uint32_t rtt_samples_per_sec;
	uint64_t active_timeout_us;
	uint64_t idle_timeout_us;
	bool present; /* the section is in the file */
};

/* the key: both directions of a flow give the same one (subscriber side first) */
struct flow_key {
	uint8_t sub[16];
	uint8_t rem[16];
	uint16_t sub_port;
	uint16_t rem_port;
	uint16_t realm;
	uint8_t l3; /* then proto: the order of struct sky_meta (one 16-bit load) */
	uint8_t proto;
};
_Static_assert(sizeof(struct flow_key) == 40, "flow_key layout");

/* one bucket: one cache line */
struct flow_bucket {
	uint16_t sig[FLOW_WAYS]; /* 0 = free slot */
	uint16_t age[FLOW_WAYS]; /* last packet, in age units (low 16 bits) */
} __rte_cache_aligned;
_Static_assert(sizeof(struct flow_bucket) == RTE_CACHE_LINE_SIZE, "flow_bucket is one line");

/* entry state bits (st), per direction d: bit << d */
#define FST_ARM 0x01  /* pend[d] waits for its echo in the reverse direction */
#define FST_SEEN 0x04 /* pend[d] holds a value (the last one armed) */
#define FST_HS 0x10   /* pend[d] is a handshake's expected ack (no timestamps) */
#define FST_HI 0x40   /* hiend[d] is valid */
/* st2 bits */
#define FST2_SMP 0x01  /* << half: that half has produced a sample (spacing applies) */
#define FST2_ICMP 0x04 /* pend values are ICMP echo id << 16 | sequence */

/*
 * One flow: the two lines every packet of the flow reads and writes, 128-byte aligned so
 * that they are one aligned pair (the adjacent-line prefetcher's unit). What is written
 * once (at insert) or rarely (a sample, a record) is in the entry's struct flow_cold, in
 * an array of its own (same index).
 */
struct flow_ent {
	/* line 0: the key, times, bytes */
	struct flow_key key;
	uint32_t last_c;   /* coarse time of the last packet */
	uint32_t first_c;  /* coarse time of the first packet of the record */
	uint64_t bytes[2]; /* by sky_dir, since the record started */
	/* line 1: packets, the last packet's verdict, RTT and retransmission state */
	uint32_t pkts[2];
	uint32_t sub_idx;
	uint32_t pend[2];    /* by direction: the TSval / expected ack / echo id.seq armed */
	uint32_t pend_f[2];  /* its first sighting, fine units */
	uint32_t hiend[2];   /* highest end sequence of a data segment, by direction */
	uint32_t segs[2];    /* data segments since the last sample */
	uint32_t retrans[2]; /* of which retransmissions */
	uint8_t cls;
	uint8_t tcp_flags; /* OR, both directions */
	uint8_t verdict;   /* of the last packet */
	uint8_t reason;
	uint8_t st;  /* FST_* */
	uint8_t st2; /* FST2_* */
	uint8_t win; /* window (low 8 bits) of the last packet, for the counts flush */
	uint8_t pad1;
	uint32_t pad2;
} __rte_aligned(2 * RTE_CACHE_LINE_SIZE);
_Static_assert(sizeof(struct flow_ent) == 2 * RTE_CACHE_LINE_SIZE, "flow_ent is two lines");
_Static_assert(offsetof(struct flow_ent, pkts) == RTE_CACHE_LINE_SIZE, "flow_ent line 1");

/* the cold part of entry i (written at insert, on a sample, an active restart; read by
 * samples and records): two entries' worth per cache line */
struct flow_cold {
	uint32_t sub_id;
	uint16_t beam;
	uint16_t sub_country;
	uint16_t remote_country;
	uint16_t pad3;
	uint32_t rtt_us[2];	/* by half: the last sample of the flow */
	uint32_t last_smp_c[2]; /* by half: coarse time of the last sample (spacing) */
	uint32_t pad4;
};
_Static_assert(sizeof(struct flow_cold) == 32, "flow_cold is half a line");

/*
 * Per-worker counters, defined once: the enum, `flows show`, telemetry and Prometheus
 * (skygate_flow_<name>_total).
 */
#define FLOW_FOREACH_CTR(_)                                                                        \
	_(packets, "packets looked up (IP, with a subscriber)")                                    \
	_(inserts, "new entries (lookups that found no entry)")                                    \
	_(evictions, "entries evicted from a full bucket (oldest idle first)")                     \
	_(untracked, "packets not tracked: later fragments (no ports)")                            \
	_(ended_fin, "records ended by TCP FIN or RST")                                            \
	_(ended_idle, "records ended by the idle timeout")                                         \
	_(ended_active, "records ended by the active timeout (the flow goes on)")                  \
	_(ended_forced, "records ended by flows flush or shutdown")                                \
	_(samples, "RTT samples taken")                                                            \
	_(samples_limited, "RTT matches not sampled (rtt_samples_per_sec)")                        \
	_(count_samples, "segment-count samples (no RTT)")                                         \
	_(tcp_bad_options, "TCP headers with malformed options (no timestamp used)")               \
	_(rtt_ring_drops, "RTT samples dropped: the ring was full")                                \
	_(rec_ring_drops, "flow records dropped: the ring was full")

enum flow_ctr {
#define FLOW_CTR_ENUM(n, h) FLOW_CTR_##n,
	FLOW_FOREACH_CTR(FLOW_CTR_ENUM)
#undef FLOW_CTR_ENUM
		FLOW_CTR_MAX
};

extern const char *const sky_flow_ctr_names[FLOW_CTR_MAX];
extern const char *const sky_flow_ctr_help[FLOW_CTR_MAX];

struct rte_ring;

/* one worker's table: written by that worker only (data path), read by the control plane */
struct flow_worker {
	/* data path */
	struct flow_bucket *b;
	struct flow_ent *e;
	struct flow_cold *c;	   /* by entry index */
	struct rte_ring *rtt_ring; /* SP: this worker, SC: the control plane */
	struct rte_ring *rec_ring;
	uint32_t used;	       /* entries in use */
	uint32_t exp_cursor;   /* next bucket of the expiry scan */
	uint64_t exp_next_tsc; /* next expiry step */
	uint32_t flush_done;   /* last flush request served */
	uint32_t flush_left;   /* buckets left in the flush being served */
	uint64_t ctr[FLOW_CTR_MAX];
	/* control path writes, data path reads */
	volatile uint32_t flush_req;
} __rte_cache_aligned;

struct flow_consumer_rec {
	sky_flow_rec_fn fn;
	void *arg;
};
struct flow_consumer_rtt {
	sky_rtt_fn fn;
	void *arg;
};

struct sky_flow {
	/* read by the data path, fixed while workers run */
	int on;		/* the table exists and is used */
	int rtt;	/* passive RTT */
	int records;	/* flow records */
	uint32_t bmask; /* buckets - 1 */
	uint32_t seed;
	uint8_t shift_f, shift_c, shift_a, shift_s;
	uint32_t idle_c;       /* idle timeout, coarse units */
	uint32_t active_c;     /* active timeout, coarse units */
	uint16_t idle_a;       /* idle timeout, age units (candidates for the scan) */
	uint32_t smp_gap_c;    /* spacing of samples per flow and half, coarse units */
	uint64_t us_mul;       /* microseconds per fine unit << 24 */
	uint64_t exp_step_tsc; /* between two expiry steps: a whole pass takes about 1 s */
	uint64_t base_tsc;     /* CLOCK_REALTIME base_ns was read at this TSC */
	uint64_t base_ns;
	double ns_per_tsc;
	unsigned int n_workers;
	struct flow_worker *w; /* n_workers, rte_zmalloc'd */
	/* control path only */
	struct flow_params p;
	uint64_t tsc_hz;
	uint64_t mem_bytes; /* per worker: buckets, entries, rings */
	uint32_t flush_gen;
	unsigned int n_rec, n_rtt;
	struct flow_consumer_rec rec_fn[FLOW_MAX_CONSUMERS];
	struct flow_consumer_rtt rtt_fn[FLOW_MAX_CONSUMERS];
	unsigned int instance; /* ring names */
	int registered;
	void (*on_destroy)(struct sky_flow *f); /* set by flow_ctl.c's registration */
};

/* flow_cfg.c */
void sky_flow_params_default(struct flow_params *p);
int sky_flow_parse_config(const struct sky_cfg *cfg, struct flow_params *p,
			  struct sky_cfg_err *err);

/* flow.c: the owner */
struct sky_flow *sky_flow_create_params(const struct flow_params *p, unsigned int n_workers,
					uint64_t tsc_hz, char *err, size_t errlen);
/* sum of one counter over the workers (control path; a worker's count may be torn) */
uint64_t sky_flow_ctr_sum(const struct sky_flow *f, enum flow_ctr c);
uint32_t sky_flow_used(const struct sky_flow *f, unsigned int worker);
/* ask every worker to end all its entries (FORCED); served by sky_flow_expire */
void sky_flow_request_flush(struct sky_flow *f);

/* flow_dp.c: the data path, and what the owner calls with the workers stopped */
/* end every entry of worker w as FORCED, returning when its record ring has room for
 * fewer than FLOW_WAYS records (call again after draining); returns entries left */
uint32_t sky_flow_worker_flush(struct sky_flow *f, unsigned int worker);
/* fill a record from an entry and its cold part (control path reads of the table use it
 * too, on copies) */
void sky_flow_fill_rec(const struct sky_flow *f, const struct flow_ent *e,
		       const struct flow_cold *c, unsigned int worker, uint64_t now_tsc,
		       struct sky_flow_rec *r);

static inline uint64_t
flow_ns_of_tsc(const struct sky_flow *f, uint64_t tsc)
{
	int64_t d = (int64_t)((double)(int64_t)(tsc - f->base_tsc) * f->ns_per_tsc);

	return (uint64_t)((int64_t)f->base_ns + d);
}

#endif /* SKY_FLOW_PRIV_H */
