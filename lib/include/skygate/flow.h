/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * flow: the per-worker flow table. One table serves two consumers on the control plane:
 * passive RTT (TCP TSval/TSecr, the handshake, ICMP echo; the satellite half and the
 * internet half measured separately) and flow records (IPFIX export, `flows top`).
 *
 * Data path (gateway/worker.c, after accounting, before the output step):
 * sky_flow_burst() looks every IP packet that has a subscriber (sub_idx != SKY_SUB_NONE,
 * dropped ones included: a blocked flow is on record with its verdict) up in the worker's
 * own table: a bounded open-addressing hash keyed by (realm, protocol, subscriber address,
 * remote address, subscriber port, remote port), so both directions of a flow meet in one
 * entry. Subscribers stay on one worker, so no entry is shared. No allocation, no lock,
 * no log. A full table evicts (the rule is in lib/flow/README.md) and counts.
 *
 * What leaves the data path goes through two single-producer single-consumer rings per
 * worker, of fixed size, filled by the worker and drained by the control plane
 * (sky_flow_poll(), from a sky_periodic task). A full ring drops and counts, it never
 * blocks or grows:
 *   - RTT samples (struct sky_rtt_sample): one per matched TSval/TSecr pair, handshake or
 *     ICMP echo, at most `flows.rtt_samples_per_sec` per flow and half;
 *   - ended flow records (struct sky_flow_rec): on FIN/RST, on the active timeout (the
 *     record is exported and the entry's counters restart), the idle timeout, and eviction.
 *
 * Config (section absent: table off, the stage costs one test per burst):
 *   flows:
 *     entries: 262144         # per worker, a power of two
 *     rtt: true               # passive RTT
 *     rtt_samples_per_sec: 4  # per flow and half
 *     records: false          # flow records (forced on by an `ipfix:` collector)
 *     active_timeout: 60s
 *     idle_timeout: 15s
 */
#ifndef SKYGATE_FLOW_H
#define SKYGATE_FLOW_H

#include <stdint.h>

#include "skygate/config.h"
#include "skygate/meta.h"

struct rte_mbuf;
struct sky_flow;

/* the half of the path an RTT sample measures */
enum sky_rtt_half {
	SKY_RTT_SAT = 0,  /* gateway -> satellite -> terminal -> gateway */
	SKY_RTT_INET = 1, /* gateway -> server -> gateway */
};

/* how a sample was taken */
enum sky_rtt_kind {
	SKY_RTT_TCP_TS = 0, /* TSval seen, echoed in the reverse direction's TSecr */
	SKY_RTT_HANDSHAKE,  /* SYN -> SYN-ACK (internet or satellite half), SYN-ACK -> ACK */
	SKY_RTT_ICMP_ECHO,  /* echo request -> reply, matched by id and sequence */
};

/* one RTT measurement, or a flow's TCP segment counts since its last sample (rtt_us 0) */
struct sky_rtt_sample {
	uint32_t sub_idx;    /* subscriber table index */
	uint32_t sub_id;     /* operator's id */
	uint16_t beam;	     /* beam index */
	uint8_t half;	     /* enum sky_rtt_half */
	uint8_t kind;	     /* enum sky_rtt_kind */
	uint32_t rtt_us;     /* microseconds; 0 = no RTT in this sample, counts only */
	uint32_t segs[2];    /* TCP data segments seen since the flow's last sample, by sky_dir */
	uint32_t retrans[2]; /* of which retransmissions (sequence went backwards), by sky_dir */
};

/* why a flow record ended (IPFIX flowEndReason, RFC 5102 values) */
enum sky_flow_end {
	SKY_FLOW_END_IDLE = 1,	   /* idle timeout */
	SKY_FLOW_END_ACTIVE = 2,   /* active timeout: the flow goes on, its counters restart */
	SKY_FLOW_END_FIN = 3,	   /* TCP FIN or RST seen */
	SKY_FLOW_END_FORCED = 4,   /* shut down, or `flows flush` */
	SKY_FLOW_END_PRESSURE = 5, /* evicted from a full table */
};

/* a flow record as the data path hands it to the control plane (one cache-line pair) */
struct sky_flow_rec {
	uint8_t sub_addr[16];	 /* network order; IPv4 in the first 4 bytes */
	uint8_t remote_addr[16]; /* network order */
	uint16_t sub_port;	 /* host order; 0 without ports */
	uint16_t remote_port;
	uint8_t l3;		 /* 4 or 6 */
	uint8_t proto;		 /* IP protocol */
	uint8_t verdict;	 /* enum sky_verdict of the flow's last packet */
	uint8_t reason;		 /* enum sky_drop when dropped (policy_drop, police_exceeded..) */
	uint16_t realm;		 /* outer VLAN of the subscriber's realm, 0 = none */
	uint16_t beam;		 /* beam index */
	uint32_t sub_id;	 /* operator's subscriber id */
	uint32_t sub_idx;	 /* subscriber table index */
	uint16_t sub_country;	 /* sky_cc */
	uint16_t remote_country; /* sky_cc */
	uint8_t cls;		 /* class index */
	uint8_t tcp_flags;	 /* OR of the TCP flags seen, both directions */
	uint8_t end;		 /* enum sky_flow_end */
	uint8_t worker;
	uint64_t packets[2]; /* by sky_dir: [SKY_DIR_UP] terminal -> internet */
	uint64_t bytes[2];   /* frame bytes, by sky_dir */
	uint64_t first_ns;   /* CLOCK_REALTIME of the first packet since the record started */
	uint64_t last_ns;    /* CLOCK_REALTIME of the last packet */
	uint32_t rtt_sat_us; /* last satellite-half RTT of the flow, 0 = none measured */
	uint32_t rtt_inet_us;
};

/* control-plane consumers of what sky_flow_poll() drains */
typedef void (*sky_flow_rec_fn)(void *arg, const struct sky_flow_rec *rec);
typedef void (*sky_rtt_fn)(void *arg, const struct sky_rtt_sample *s, uint64_t now_tsc);

/**
 * Build the module from the `flows:` section (control path, EAL up). Returns NULL with err
 * filled ("FILE:LINE: flows.entries: ...") on a bad section or no memory; a valid but
 * disabled object when the section is absent.
 */
struct sky_flow *sky_flow_create(const struct sky_cfg *cfg, unsigned int n_workers,
				 struct sky_cfg_err *err);
/** Commands, telemetry, Prometheus, the periodic drain. Control path, once. 0 or -errno. */
int sky_flow_register(struct sky_flow *f);
/** Free everything (control path, workers stopped). NULL is fine. */
void sky_flow_destroy(struct sky_flow *f);
/** 1 when the table is on (RTT or records). */
int sky_flow_enabled(const struct sky_flow *f);
/** Turn records on (an IPFIX collector was configured). Control path, before the workers. */
void sky_flow_want_records(struct sky_flow *f);

/** Data path: see the file comment. now_tsc from rte_rdtsc(). */
void sky_flow_burst(struct sky_flow *f, unsigned int worker, struct rte_mbuf *const *pkts,
		    const struct sky_meta *meta, uint16_t n, uint64_t now_tsc);
/** Data path, once per loop: a bounded slice of the table is checked for timeouts. */
void sky_flow_expire(struct sky_flow *f, unsigned int worker, uint64_t now_tsc);

/** Control path: add a consumer (up to 4 each); sky_flow_poll() calls it per item. */
int sky_flow_on_record(struct sky_flow *f, sky_flow_rec_fn fn, void *arg);
int sky_flow_on_rtt(struct sky_flow *f, sky_rtt_fn fn, void *arg);
/** Control path: drain every worker's rings into the consumers. Returns items drained. */
unsigned int sky_flow_poll(struct sky_flow *f, uint64_t now_tsc);
/**
 * Control path, workers stopped: end every flow now (records: SKY_FLOW_END_FORCED, RTT
 * segment counts flushed) and deliver everything to the consumers. sky_flow_destroy()
 * does it too, so a consumer that goes away first should call it before it does.
 * Returns items delivered. (While workers run, `flows flush` asks them instead.)
 */
unsigned int sky_flow_flush(struct sky_flow *f);

/** The `flows:` section's defaults as YAML, for sky_cfg_merge_defaults (`--check --print`):
 *  merged only when the file has the section, since its absence means "off". */
extern const char sky_flow_cfg_defaults[];

#endif /* SKYGATE_FLOW_H */
