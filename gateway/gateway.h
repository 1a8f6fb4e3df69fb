/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The skygate daemon: wiring of ports, workers and the lib modules. No pipeline logic
 * lives here: the worker loop (worker.c) calls each stage's burst function in order.
 *
 * Ports come in pairs (uplink <-> backhaul). A pair is multi-queue when both ports offer
 * RSS with one queue per worker: worker w then polls queue w of both ports and transmits
 * on queue w of the peer. Otherwise the pair has one queue and belongs to one worker
 * (pair index modulo workers): PMDs without RSS (memif, pcap, ring) work that way.
 */
#ifndef SKYGATE_GATEWAY_H
#define SKYGATE_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mempool.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/meta.h"
#include "skygate/runtime.h"

#define GW_MAX_PORTS 16
#define GW_NAME_MAX 32

/* per-port, per-worker counters (data path writes, control path sums) */
#define GW_FOREACH_PORT_CTR(_)                                                                     \
	_(rx_packets, "packets received")                                                          \
	_(rx_bytes, "bytes received")                                                              \
	_(tx_packets, "packets transmitted (to this port)")                                        \
	_(tx_bytes, "bytes transmitted (to this port)")                                            \
	_(non_ip, "non-IP frames passed untouched")

struct gw_port_stats {
#define GW_CTR_FIELD(n, h) uint64_t n;
	GW_FOREACH_PORT_CTR(GW_CTR_FIELD)
#undef GW_CTR_FIELD
	uint64_t drops[SKY_DROP_MAX]; /* by reason, for packets received on this port */
	uint64_t cls_packets[8];      /* passed IP packets received here, by class */
	uint64_t cls_bytes[8];
} __rte_cache_aligned;

struct gw_port {
	char name[GW_NAME_MAX];
	char peer_name[GW_NAME_MAX];
	char device[512];
	uint8_t dir;	   /* direction of packets received here: UP on uplink ports */
	uint16_t port_id;  /* DPDK port id */
	uint16_t peer;	   /* index of the peer in gw.ports */
	uint16_t n_queues; /* RX = TX queues configured */
	int out_slot;	   /* shaper output slot for uplink ports, -1 for backhaul */
	unsigned int rx_desc, tx_desc;
	bool started;
	bool rss;
	unsigned int line; /* config line, for messages */
};

struct gw_rxq {
	uint16_t port; /* index in gw.ports */
	uint16_t queue;
};

/*
 * The worker loop's steps, for the per-step profile (the whole-pipeline benchmark,
 * tests/bench/bench_pipeline.c): cycles spent in each, summed over bursts.
 */
#define GW_FOREACH_STEP(_)                                                                         \
	_(rx, "rte_eth_rx_burst (bursts that carried packets)")                                    \
	_(parse, "sky_parse_burst")                                                                \
	_(subscriber, "sky_subs_lookup_burst")                                                     \
	_(geo, "sky_geo_lookup_burst")                                                             \
	_(classify, "sky_classify_burst")                                                          \
	_(policy, "sky_policy_run_burst")                                                          \
	_(police, "sky_shaper_police_burst (upstream)")                                            \
	_(account, "sky_subs_account_burst")                                                       \
	_(flow, "sky_flow_burst (flow table: RTT, records)")                                       \
	_(output, "sky_parse_output_burst")                                                        \
	_(dispatch, "counters, drops freed, tx to the peer")                                       \
	_(shape, "sky_shaper_enqueue (downstream)")                                                \
	_(shaped_tx, "sky_shaper_dequeue + tx (every loop)")

enum gw_step {
#define GW_STEP_ENUM(n, h) GW_STEP_##n,
	GW_FOREACH_STEP(GW_STEP_ENUM)
#undef GW_STEP_ENUM
		GW_STEP_MAX
};

/*
 * How the loop treats a burst. RUN is production. PROFILE is the same pipeline with a
 * TSC read around each step (prof[] accumulates). BYPASS turns every stage off (rx -> tx
 * to the peer, no shaper): the baseline the benchmark divides by. The loop tests the
 * mode once per burst, never per packet.
 */
enum gw_mode { GW_MODE_RUN = 0, GW_MODE_PROFILE, GW_MODE_BYPASS };

struct gw_worker {
	unsigned int id;
	unsigned int lcore;
	uint32_t mode;		    /* enum gw_mode; set while the worker is stopped */
	uint64_t prof[GW_STEP_MAX]; /* PROFILE: cycles per step */
	unsigned int n_rxq;
	struct gw_rxq rxq[GW_MAX_PORTS];
	unsigned int n_out;		 /* uplink ports this worker transmits shaped traffic to */
	struct gw_rxq out[GW_MAX_PORTS]; /* (port index, tx queue) */
	uint64_t loops;
	uint64_t busy_tsc;  /* cycles spent in loops that received or sent packets */
	uint64_t busy_pkts; /* packets received in those loops (busy_tsc / busy_pkts: the
			     * worker's cost per packet) */
	struct gw_port_stats stats[GW_MAX_PORTS];
} __rte_cache_aligned;

struct sky_subs;
struct sky_classifier;
struct sky_geo;
struct sky_policy;
struct sky_shaper;
struct sky_cluster;
struct sky_flow;
struct sky_ipfix;
struct sky_qoe;
struct sky_quota;

struct gw {
	/* config */
	const char *config_path;
	struct sky_cfg *cfg;
	unsigned int n_workers;
	char socket_path[256];
	unsigned int socket_mode;
	struct sky_ctl_limits ctl_limits; /* control.* bounds */
	char state_dir[256];
	char prometheus[128];
	int log_level; /* RTE_LOG_*, 0 = default */
	unsigned int mbufs, mbuf_cache, data_room;
	unsigned int n_ports;
	struct gw_port ports[GW_MAX_PORTS];
	/* runtime */
	struct rte_mempool *pool;
	struct gw_worker *workers; /* rte_zmalloc'd, n_workers */
	uint64_t start_tsc;
	struct sky_subs *subs;
	struct sky_classifier *cls;
	struct sky_geo *geo;
	struct sky_policy *policy;
	struct sky_shaper *shaper;
	struct sky_flow *flow;	     /* flow table (RTT, records); off without `flows:` */
	struct sky_ipfix *ipfix;     /* flow records to IPFIX collectors (off: no collector) */
	struct sky_qoe *qoe;	     /* passive RTT views (off without the flow table's RTT) */
	struct sky_quota *quota;     /* fair use: allowances, usage, throttling */
	struct sky_cluster *cluster; /* cluster mode (`cluster:`), else NULL */
};

extern struct gw gw;

/* config.c */
int gw_config_parse(struct gw *g, const struct sky_cfg *cfg, struct sky_cfg_err *err,
		    char ***eal_argv, int *eal_argc);
/* fill omitted sections and keys with their defaults (transparent forwarder without plans) */
int gw_config_defaults(struct sky_cfg *cfg, struct sky_cfg_err *err);

/* reload.c: re-read the config file, apply what changed through the commands, all or
 * nothing; returns 0 (each change appended to changes, a summary in out) or -1 (the reason
 * in out) */
int gw_reload(struct gw *g, json_t *changes, char *out, size_t outlen);
/* SIGHUP: gw_reload, outcome logged */
void gw_reload_signal(struct gw *g);
/* once the modules are registered: the `reload` command; the config in force is g->cfg */
int gw_reload_register(struct gw *g);
/* end: frees the start-up tree if a reload replaced it (g->cfg is freed by the caller) */
void gw_reload_fini(void);

/* notify.c: the systemd notification protocol (no-ops without libsystemd or NOTIFY_SOCKET) */
void gw_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* watchdog interval in microseconds (0 = none asked for) */
uint64_t gw_notify_watchdog_usec(void);

/* ports.c */
int gw_ports_probe(struct gw *g, char *err, size_t errlen);
int gw_ports_start(struct gw *g, char *err, size_t errlen);
void gw_ports_stop(struct gw *g);
void gw_workers_assign(struct gw *g);

/* worker.c: gw_worker_main is start, poll until sky_rt.stop, finish; a benchmark drives
 * the same loop one iteration at a time */
int gw_worker_main(void *arg);
void gw_worker_start(struct gw_worker *w);	  /* RCU reader online */
unsigned int gw_worker_poll(struct gw_worker *w); /* one loop; returns packets received */
void gw_worker_finish(struct gw_worker *w);	  /* drain the shaper, RCU reader offline */

/* status.c */
int gw_status_register(struct gw *g);
/* state.c: the parts of the live state (state dump, journal snapshots) and `map clear`. */
int gw_state_register(struct gw *g);
void gw_port_stats_sum(const struct gw *g, unsigned int port, struct gw_port_stats *out);
void gw_print_final(const struct gw *g);

#endif /* SKYGATE_GATEWAY_H */
