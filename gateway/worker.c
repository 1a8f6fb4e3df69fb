/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data path: one loop per worker lcore, run to completion.
 *
 *   rx_burst -> parse -> subscriber -> geo -> classify -> policy -> police (up)
 *            -> account -> flow -> output -> drop / tx to peer (up, non-IP) / shape (down) -> tx
 *
 * Each stage is a burst function of its lib module that reads and fills the packets'
 * metadata only; the output step alone writes their decisions (a new DSCP) into the
 * packets. This file only moves packets between them and counts. No allocation, no
 * locks, no syscalls, no logging.
 */
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "gateway.h"
#include "skygate/classify.h"
#include "skygate/flow.h"
#include "skygate/geo.h"
#include "skygate/parse_inline.h"
#include "skygate/policy.h"
#include "skygate/shaper.h"
#include "skygate/subscriber.h"

/* transmit n packets to (port, queue); what the PMD refuses is counted and freed */
static inline void
tx_burst(struct gw_worker *w, uint16_t out_idx, uint16_t q, struct rte_mbuf **pkts, uint16_t n,
	 uint16_t in_idx)
{
	const struct gw_port *out = &gw.ports[out_idx];
	struct gw_port_stats *ost = &w->stats[out_idx];
	uint16_t sent = 0;
	uint64_t bytes = 0;

	if (n == 0)
		return;
	/* count bytes before the hand-off: a sent mbuf belongs to the PMD (memif frees it
	 * at once); the refused ones are still ours */
	for (uint16_t i = 0; i < n; i++)
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	sent = rte_eth_tx_burst(out->port_id, q, pkts, n);
	if (unlikely(sent < n)) {
		for (uint16_t i = sent; i < n; i++)
			bytes -= rte_pktmbuf_pkt_len(pkts[i]);
		w->stats[in_idx].drops[SKY_DROP_TX_FULL] += n - sent;
		rte_pktmbuf_free_bulk(&pkts[sent], n - sent);
	}
	ost->tx_packets += sent;
	ost->tx_bytes += bytes;
}

/* PROFILE only: charge the cycles since *t to step st (compiled out when !prof) */
#define GW_STEP_END(prof, w, st, t)                                                                \
	do {                                                                                       \
		if (prof) {                                                                        \
			uint64_t t_ = rte_rdtsc();                                                 \
			(w)->prof[GW_STEP_##st] += t_ - *(t);                                      \
			*(t) = t_;                                                                 \
		}                                                                                  \
	} while (0)

/* prof is a constant at both call sites: the RUN copy has no TSC reads */
static __rte_always_inline void
process_burst(struct gw_worker *w, const struct gw_rxq *rq, struct rte_mbuf **pkts, uint16_t n,
	      uint64_t now, const bool prof)
{
	const struct gw_port *p = &gw.ports[rq->port];
	struct gw_port_stats *st = &w->stats[rq->port];
	struct sky_meta meta[SKY_BURST];
	struct rte_mbuf *fwd[SKY_BURST], *shp[SKY_BURST], *drop[SKY_BURST];
	uint16_t n_fwd = 0, n_shp = 0, n_drop = 0;
	uint64_t bytes = 0, t = now;
	const bool shape = p->dir == SKY_DIR_DOWN && sky_shaper_enabled(gw.shaper);

	sky_parse_burst(pkts, meta, n, p->dir);
	GW_STEP_END(prof, w, parse, &t);
	sky_subs_lookup_burst(gw.subs, w->id, meta, n);
	GW_STEP_END(prof, w, subscriber, &t);
	sky_geo_lookup_burst(gw.geo, w->id, meta, n);
	/* the policer's lines come while classify and policy compute */
	if (p->dir == SKY_DIR_UP)
		sky_shaper_police_prefetch(gw.shaper, w->id, meta, n);
	GW_STEP_END(prof, w, geo, &t);
	sky_classify_burst(gw.cls, w->id, meta, n);
	GW_STEP_END(prof, w, classify, &t);
	sky_policy_run_burst(gw.policy, w->id, meta, n);
	GW_STEP_END(prof, w, policy, &t);
	if (p->dir == SKY_DIR_UP) {
		sky_shaper_police_burst(gw.shaper, w->id, meta, n, now);
		GW_STEP_END(prof, w, police, &t);
	}
	sky_subs_account_burst(gw.subs, w->id, meta, n);
	GW_STEP_END(prof, w, account, &t);
	sky_flow_burst(gw.flow, w->id, pkts, meta, n, now);
	GW_STEP_END(prof, w, flow, &t);
	sky_parse_output_burst(pkts, meta, n);
	GW_STEP_END(prof, w, output, &t);

	for (uint16_t i = 0; i < n; i++) {
		bytes += meta[i].pkt_len;
		if (meta[i].verdict != SKY_V_PASS) {
			st->drops[meta[i].reason]++;
			drop[n_drop++] = pkts[i];
		} else if (meta[i].l3 == 0) {
			st->non_ip++;
			fwd[n_fwd++] = pkts[i];
		} else {
			st->cls_packets[meta[i].cls & 7]++;
			st->cls_bytes[meta[i].cls & 7] += meta[i].pkt_len;
			if (shape) {
				/* compact in place: n_shp <= i, meta[n_shp] was already seen */
				meta[n_shp] = meta[i];
				shp[n_shp++] = pkts[i];
			} else {
				fwd[n_fwd++] = pkts[i];
			}
		}
	}
	st->rx_packets += n;
	st->rx_bytes += bytes;
	if (n_drop != 0)
		rte_pktmbuf_free_bulk(drop, n_drop);
	tx_burst(w, p->peer, rq->queue, fwd, n_fwd, rq->port);
	GW_STEP_END(prof, w, dispatch, &t);
	if (n_shp != 0) {
		sky_shaper_enqueue(gw.shaper, w->id, (unsigned int)gw.ports[p->peer].out_slot, shp,
				   meta, n_shp, now, st->drops);
		GW_STEP_END(prof, w, shape, &t);
	}
}

/* BYPASS: every stage off, the packets go straight to the peer (the benchmark's baseline) */
static void
bypass_burst(struct gw_worker *w, const struct gw_rxq *rq, struct rte_mbuf **pkts, uint16_t n)
{
	w->stats[rq->port].rx_packets += n;
	tx_burst(w, gw.ports[rq->port].peer, rq->queue, pkts, n, rq->port);
}

/* PROFILE and BYPASS, out of the RUN path; t_rx: the TSC before rte_eth_rx_burst */
static __rte_noinline void
special_burst(struct gw_worker *w, const struct gw_rxq *rq, struct rte_mbuf **pkts, uint16_t n,
	      uint64_t t_rx)
{
	uint64_t now = rte_rdtsc();

	if (w->mode == GW_MODE_BYPASS) {
		bypass_burst(w, rq, pkts, n);
		return;
	}
	w->prof[GW_STEP_rx] += now - t_rx;
	process_burst(w, rq, pkts, n, now, true);
}

/* send what the shaper releases now on every uplink this worker owns; returns the count */
static inline unsigned int
send_shaped(struct gw_worker *w, struct rte_mbuf **pkts, uint64_t now)
{
	unsigned int sent = 0;

	for (unsigned int i = 0; i < w->n_out; i++) {
		const struct gw_rxq *o = &w->out[i];
		const struct gw_port *up = &gw.ports[o->port];
		/* what it drops at dequeue counts against the backhaul port it arrived on */
		uint16_t n = sky_shaper_dequeue(gw.shaper, w->id, (unsigned int)up->out_slot, pkts,
						SKY_BURST, now, w->stats[up->peer].drops);

		/* shaped downstream traffic: TX failures count against the backhaul port
		 * it arrived on */
		tx_burst(w, o->port, o->queue, pkts, n, up->peer);
		sent += n;
	}
	return sent;
}

void
gw_worker_start(struct gw_worker *w)
{
	rte_rcu_qsbr_thread_register(sky_rt.qs, w->id);
	rte_rcu_qsbr_thread_online(sky_rt.qs, w->id);
}

/*
 * One turn of the loop: poll every RX queue the worker owns and run each non-empty burst
 * through the pipeline, send what the shaper releases, report a quiescent state.
 */
unsigned int
gw_worker_poll(struct gw_worker *w)
{
	struct rte_mbuf *pkts[SKY_BURST];
	const bool run = w->mode == GW_MODE_RUN;
	uint64_t t0 = rte_rdtsc();
	unsigned int got = 0;
	bool busy = false;

	for (unsigned int i = 0; i < w->n_rxq; i++) {
		const struct gw_rxq *rq = &w->rxq[i];
		uint64_t t_rx = run ? 0 : rte_rdtsc();
		uint16_t n =
			rte_eth_rx_burst(gw.ports[rq->port].port_id, rq->queue, pkts, SKY_BURST);

		if (n == 0)
			continue;
		busy = true;
		got += n;
		if (likely(run))
			process_burst(w, rq, pkts, n, rte_rdtsc(), false);
		else
			special_burst(w, rq, pkts, n, t_rx);
	}
	if (w->mode != GW_MODE_BYPASS && sky_shaper_enabled(gw.shaper)) {
		uint64_t t = rte_rdtsc();

		if (send_shaped(w, pkts, t) != 0)
			busy = true;
		if (unlikely(!run))
			w->prof[GW_STEP_shaped_tx] += rte_rdtsc() - t;
	}
	if (w->mode != GW_MODE_BYPASS)
		sky_flow_expire(gw.flow, w->id, t0); /* a bounded slice: timeouts, flush */
	w->loops++;
	if (busy) {
		w->busy_tsc += rte_rdtsc() - t0;
		w->busy_pkts += got;
	}
	rte_rcu_qsbr_quiescent(sky_rt.qs, w->id);
	return got;
}

/* drain: RX has stopped; send what the shaper still holds, for at most 100 ms (what is
 * left after that is freed and counted by sky_shaper_destroy); then leave RCU */
void
gw_worker_finish(struct gw_worker *w)
{
	struct rte_mbuf *pkts[SKY_BURST];
	struct rte_rcu_qsbr *qs = sky_rt.qs;

	if (sky_shaper_enabled(gw.shaper)) {
		uint64_t t = rte_rdtsc(), end = t + sky_rt.tsc_hz / 10, last = t;
		unsigned int got;

		do {
			got = send_shaped(w, pkts, rte_rdtsc());
			rte_rcu_qsbr_quiescent(qs, w->id);
			t = rte_rdtsc();
			if (got != 0)
				last = t;
			/* the shaper releases queued packets at the beam/plan rate: give up
			 * once nothing came out for 10 ms */
		} while (t < end && t - last < sky_rt.tsc_hz / 100);
	}
	rte_rcu_qsbr_thread_offline(qs, w->id);
	rte_rcu_qsbr_thread_unregister(qs, w->id);
}

int
gw_worker_main(void *arg)
{
	struct gw_worker *w = arg;

	gw_worker_start(w);
	while (!__atomic_load_n(&sky_rt.stop, __ATOMIC_RELAXED))
		gw_worker_poll(w);
	gw_worker_finish(w);
	return 0;
}
