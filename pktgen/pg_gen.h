/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * skygate-pktgen internals shared by the run (pg_main.c) and the report (pg_report.c):
 * options, the flow table and the counters the polling lcore writes.
 */
#ifndef SKYGATE_PKTGEN_GEN_H
#define SKYGATE_PKTGEN_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "pg.h"

#define PG_BURST 32
#define PG_SIZE_TAB 4096 /* power of two */

enum { PG_UP = 0, PG_DOWN = 1 };

struct pg_opts {
	const char *subs_path;
	uint32_t subs_limit;
	struct pg_gen gen;
	bool gen_mode;
	const char *countries_arg;
	const char *write_csv;
	const char *db_path;
	struct pg_mix remote;
	struct pg_mix classes; /* names from pg_classes */
	int direction;	       /* 0 up, 1 down, 2 both */
	unsigned int flows_per_sub;
	double flow_v6;
	struct pg_size size;
	struct pg_rate rate;
	struct pg_rate sub_rate;
	double duration_s;
	double wait_link_s;
	unsigned int drain_ms;
	const char *report;
	const char *pcap_out;
	unsigned int top_n;
	bool quiet;
	uint64_t seed;
	uint16_t port[2];
	unsigned int burst;
	double linger;	 /* s to stay connected after the report (0 = none) */
	double max_loss; /* < 0: no check */
	unsigned int pool_per_country;
	/* --probe ID:PPS:SIZE: one extra downstream flow of subscriber probe_sub (realtime
	 * class, UDP), paced on its own at probe_pps, latency reported apart */
	uint32_t probe_sub; /* 0 = no probe */
	double probe_pps;
	uint16_t probe_size; /* frame with FCS */
	struct pg_rtt rtt;   /* --rtt-emulate, --rtt-retrans */
	bool rtt_handshake;  /* --rtt-handshake */
};

/* pg_flow.ts: how a TCP flow of --rtt-emulate speaks (both: sequence numbers << 11) */
#define PG_TS_OPTION 1	  /* timestamps on every data segment, echoed after a delay */
#define PG_TS_HANDSHAKE 2 /* --rtt-handshake: no timestamps; SYN, SYN-ACK, ACK first */
/* pg_flow.hs */
enum { PG_HS_NONE = 0, PG_HS_SYN_SENT, PG_HS_DONE };
#define PG_HS_RECONNECT_MS 500 /* a connection lasts 1..1.5 x this, then the flow opens anew */
/* segments of the handshake (pg_rx_hit.ctl, counters) */
enum { PG_CTL_NONE = 0, PG_CTL_SYN, PG_CTL_SYNACK, PG_CTL_ACK };

/* one flow: 64 bytes, what TX needs to build a packet (data path) */
struct pg_flow {
	uint8_t src[16]; /* network order; IPv4 uses the first 4 bytes */
	uint8_t dst[16];
	uint16_t sport, dport; /* host order */
	uint16_t vlan;	       /* 0 = untagged */
	uint8_t cls, dir, v6, proto, dscp;
	uint8_t ts;	  /* --rtt-emulate TCP: PG_TS_OPTION or PG_TS_HANDSHAKE, 0 = neither */
	uint32_t seq;	  /* next sequence number to send */
	uint16_t min_len; /* smallest frame (no FCS) holding headers and stamp, >= 60 */
	uint8_t rtt_cls;  /* --rtt-emulate: index of the flow's delays in opts.rtt */
	uint8_t hs;	  /* --rtt-handshake: PG_HS_* */
	uint64_t tx_pkts, tx_bytes; /* bytes are frame bytes with FCS */
} __attribute__((aligned(64)));

/* receive state of one flow (data path) */
struct pg_rxf {
	struct pg_seq sq;
	uint32_t echoed; /* --rtt-emulate: the last TSval of this flow an echo was queued for */
	uint32_t syn_ms; /* --rtt-handshake: when the SYN left (ms clock), for its retry */
	uint64_t rx_bytes;
	uint64_t lat_sum; /* cycles */
	uint64_t lat_max;
};

/* identity of a flow, control path only */
struct pg_flow_info {
	uint32_t sub;
	uint8_t remote; /* index into opts.remote */
};

/* live counters per direction, written by the polling lcore only */
struct pg_dir_ctr {
	uint64_t tx_pkts, tx_bytes, rx_pkts, rx_bytes, gap;
};

struct pg_sample {
	double t;
	uint64_t tx_pkts[2], tx_bytes[2], rx_pkts[2], rx_bytes[2], gap[2];
};

struct pg_run {
	struct pg_opts *o;
	struct pg_subs subs;
	struct pg_geo_pool *pools;
	uint32_t n_flows;    /* all flows (the probe is the last) */
	uint32_t n_tx_flows; /* flows the rate-paced cursor sends: all but the probe */
	uint32_t probe_idx;  /* flow index of the probe, UINT32_MAX = none */
	uint64_t probe_next; /* TSC of its next packet */
	uint64_t probe_hist[PG_HIST_BUCKETS];
	uint64_t probe_max;
	struct pg_flow *flows;		      /* rte_malloc */
	struct pg_rxf *rxf;		      /* rte_malloc */
	struct pg_flow_info *finfo;	      /* malloc */
	uint16_t *size_tab;		      /* rte_malloc, PG_SIZE_TAB */
	uint64_t (*hist)[2][PG_HIST_BUCKETS]; /* [class][dir], rte_malloc */
	uint64_t lat_max[PG_MAX_CLASSES][2];
	uint16_t magic;
	uint64_t tsc_hz;
	/* live, written by the polling lcore */
	struct pg_dir_ctr ctr[2] __attribute__((aligned(64)));
	uint64_t rx_invalid;	/* not ours: wrong magic, unknown flow, too short */
	uint64_t rx_wrong_port; /* ours, but arrived on the port it was sent from */
	uint64_t tx_pending_dropped;
	/* --rtt-emulate: echoes (pure ACKs) queued on receipt and sent when due, per side
	 * (0: the terminals answer downstream segments, 1: the servers upstream ones) */
	struct pg_echo_q *echo_q[2][PG_RTT_MAX];
	uint64_t echo_delay_tsc[2][PG_RTT_MAX];
	uint64_t echo_sent[2], echo_dropped, rx_echo;
	uint64_t tx_retrans[2]; /* data segments sent a second time, by direction */
	uint64_t hs_sent[4];	/* handshake segments sent, by PG_CTL_* */
	uint64_t hs_rx[4];	/* ... and received */
	double retrans_acc[2];
	uint64_t start_tsc, end_tx_tsc, end_tsc;
	volatile int done;
	/* samples, written by whoever ticks */
	struct pg_sample *samples;
	unsigned int n_samples, max_samples;
	struct pg_sample last;
	double elapsed_s;
	struct rte_mempool *tx_pool, *rx_pool, *pcap_pool;
	void *pcapng;
	uint8_t mac[2][6];
};

/* a queued echo: flow (| PG_ECHO_SYNACK or PG_ECHO_ACK for the handshake's), the TSval
 * to echo, when it is due */
#define PG_ECHO_SYNACK 0x40000000u
#define PG_ECHO_ACK 0x80000000u
struct pg_echo {
	uint32_t flow;
	uint32_t tsecr;
	uint64_t due;
};

#define PG_ECHO_Q 16384 /* echoes waiting per side and delay class (power of two) */
struct pg_echo_q {
	uint32_t head, tail; /* tail - head entries */
	struct pg_echo e[PG_ECHO_Q];
};

int pg_report_write(struct pg_run *r, const char *path);
void pg_report_summary(struct pg_run *r);
double pg_run_loss(const struct pg_run *r, uint64_t *tx, uint64_t *lost);

#endif
