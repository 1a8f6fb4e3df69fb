/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper benchmark: cycles per packet of enqueue + dequeue with 100k subscribers on one
 * worker (uncongested pass-through, and every subscriber backlogged on congested beams),
 * policing cycles per packet, bytes of shaping state per subscriber. Prints figures;
 * never fails on a number.
 *
 * Packets are recycled: what dequeue releases is enqueued again (to a random subscriber
 * or the same one), so no allocation is measured. Simulated time advances per call so
 * the shaper releases about a burst per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_random.h>
#include <rte_sched.h>

#include "skygate/meta.h"
#include "skygate/runtime.h"
#include "skygate/shaper.h"
#include "skygate/subscriber.h"

#include "fixture.h"

#define NSUB 100000
#define NBEAM 16
#define ITERS 100000
#define PKT_LEN 64 /* bytes per frame: the small-packet worst case */

/* median of per-call cycles per packet: the machine is shared, a preempted call must not
 * count; samples are cycles * 16 / packets of one call */
static uint32_t samp_enq[ITERS], samp_deq[ITERS];

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
median(uint32_t *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u32);
	return v[n / 2] / 16.0;
}

struct tag {
	uint32_t sub;
	uint16_t beam;
	uint16_t flow;
};

static struct rte_mempool *mp;

/* calls per case: ITERS, or fewer from BENCH_ITERS (callgrind runs) */
static int iters = ITERS;

/* one benchmark case */
struct bcase {
	const char *name;
	uint32_t nsub;	   /* subscribers that get packets */
	uint32_t capacity; /* configured subscribers (indices 0..capacity-1) */
	uint32_t stride;   /* subscriber i is index i * stride */
	unsigned int flows;
	uint64_t plan_bps, beam_bps;
	unsigned int depth; /* packets per subscriber at start */
	bool random;	    /* re-enqueue to a random subscriber (else the same one) */
	unsigned int n_classes;
};

static struct sky_shaper *
make(const struct bcase *bc)
{
	struct sky_shaper_params p;
	struct sky_plan pl;
	struct sky_beam bm[NBEAM];
	char err[256];
	struct sky_shaper *sh;

	sky_shaper_params_default(&p);
	p.n_workers = 1;
	p.n_out_ports = 1;
	p.n_classes = bc->n_classes;
	p.sub_capacity = bc->capacity;
	p.max_active_per_worker = bc->nsub + 1024;
	p.max_queued_per_worker = 1u << 20;
	p.max_delay_us = 10000000; /* the bench measures work, not the delay bound */
	memset(&pl, 0, sizeof(pl));
	snprintf(pl.name, sizeof(pl.name), "p");
	pl.down_bps = bc->plan_bps;
	pl.up_bps = bc->plan_bps;
	pl.down_burst_bytes = pl.up_burst_bytes = 3200;
	pl.weight = 1000;
	for (int c = 0; c < SKY_MAX_CLASSES; c++)
		pl.class_weight[c] = 1;
	for (int b = 0; b < NBEAM; b++) {
		memset(&bm[b], 0, sizeof(bm[b]));
		snprintf(bm[b].name, sizeof(bm[b].name), "b%d", b);
		bm[b].down_bps = bc->beam_bps;
		bm[b].up_bps = bc->beam_bps;
	}
	sh = sky_shaper_create_params(&p, &pl, 1, bm, NBEAM, err, sizeof(err));
	if (sh == NULL) {
		fprintf(stderr, "create: %s\n", err);
		exit(1);
	}
	return sh;
}

static void
fill_meta(const struct bcase *bc, struct sky_meta *m, struct rte_mbuf *mb, uint32_t i,
	  uint16_t flow)
{
	struct tag *t = rte_pktmbuf_mtod(mb, struct tag *);
	uint32_t sub = i * bc->stride;

	t->sub = i;
	t->beam = (uint16_t)(i % NBEAM);
	t->flow = flow;
	memset(m, 0, sizeof(*m));
	m->dir = SKY_DIR_DOWN;
	m->l3 = 4;
	m->proto = 17;
	m->sport = (uint16_t)(1000 + flow);
	m->dport = 4000;
	m->src[0] = 198;
	m->src[3] = 1;
	m->dst[0] = 100;
	m->dst[1] = (uint8_t)(sub >> 16);
	m->dst[2] = (uint8_t)(sub >> 8);
	m->dst[3] = (uint8_t)sub;
	m->sub_idx = sub;
	m->beam = t->beam;
	m->cls = (uint8_t)(i & 1 ? bc->n_classes - 1 : 0);
	m->pkt_len = PKT_LEN;
}

/* medians of the last run, for the ratios */
static double last_total;

/*
 * random: re-enqueue released packets to random subscribers (arrivals spread over all of
 * them); else to the same subscriber (each stays backlogged with `depth` packets).
 */
static void
run(const struct bcase *bc)
{
	struct sky_shaper *sh;
	struct rte_mbuf *pkts[SKY_BURST];
	struct sky_meta meta[SKY_BURST];
	uint64_t drops[SKY_DROP_MAX] = {0};
	uint64_t hz = rte_get_tsc_hz();
	uint64_t now = rte_rdtsc();
	const char *only = getenv("BENCH_SHAPER_ONLY");
	const uint32_t nsub = bc->nsub;

	last_total = 0;
	if (only != NULL &&
	    (only[0] == '=' ? strcmp(bc->name, only + 1) != 0 : strstr(bc->name, only) == NULL))
		return;
	sh = make(bc);
	/* time per call so the beams together release about one burst per call */
	double total = (double)bc->plan_bps * nsub < (double)bc->beam_bps * NBEAM
			       ? (double)bc->plan_bps * nsub
			       : (double)bc->beam_bps * NBEAM;
	uint64_t step = (uint64_t)((double)SKY_BURST * (PKT_LEN + 24) * 8 / total * hz);
	uint64_t cyc_enq = 0, cyc_deq = 0, n_deq = 0;
	size_t ns = 0;

	/* prefill: depth packets per subscriber */
	for (uint32_t s = 0; s < nsub; s++) {
		for (unsigned int k = 0; k < bc->depth; k += SKY_BURST) {
			uint16_t n =
				(uint16_t)(bc->depth - k < SKY_BURST ? bc->depth - k : SKY_BURST);

			if (rte_pktmbuf_alloc_bulk(mp, pkts, n) != 0) {
				fprintf(stderr, "pool too small\n");
				exit(1);
			}
			for (uint16_t i = 0; i < n; i++)
				fill_meta(bc, &meta[i], pkts[i], s,
					  (uint16_t)((k + i) % bc->flows));
			sky_shaper_enqueue(sh, 0, 0, pkts, meta, n, now, drops);
		}
	}
	for (int it = 0; it < iters; it++) {
		uint64_t t0, t1, t2, t3;
		uint16_t n;

		now += step;
		t0 = rte_rdtsc();
		n = sky_shaper_dequeue(sh, 0, 0, pkts, SKY_BURST, now, NULL);
		t1 = rte_rdtsc();
		for (uint16_t i = 0; i < n; i++) {
			const struct tag *t = rte_pktmbuf_mtod(pkts[i], const struct tag *);
			uint32_t sub = bc->random ? (uint32_t)(rte_rand() % nsub) : t->sub;
			uint16_t flow = bc->random ? (uint16_t)(rte_rand() % bc->flows) : t->flow;

			fill_meta(bc, &meta[i], pkts[i], sub, flow);
		}
		t2 = rte_rdtsc();
		sky_shaper_enqueue(sh, 0, 0, pkts, meta, n, now, drops);
		t3 = rte_rdtsc();
		cyc_enq += t3 - t2;
		cyc_deq += t1 - t0;
		n_deq += n;
		if (n) {
			samp_enq[ns] = (uint32_t)((t3 - t2) * 16 / n);
			samp_deq[ns++] = (uint32_t)((t1 - t0) * 16 / n);
		}
	}
	{
		double me = median(samp_enq, ns), md = median(samp_deq, ns);

		last_total = me + md;
		printf("shaper %-52s enqueue %6.1f + dequeue %6.1f = %6.1f cycles/packet (median "
		       "of %zu calls; mean %.1f; %.1f packets per call, tail drops %llu)\n",
		       bc->name, me, md, me + md, ns, (double)(cyc_enq + cyc_deq) / (double)n_deq,
		       (double)n_deq / iters, (unsigned long long)drops[SKY_DROP_QUEUE_TAIL]);
	}
	sky_shaper_destroy(sh);
}

/*
 * DPDK rte_sched on the same workload: one subport (a beam), one pipe per subscriber
 * (best-effort class, queue 0), pipes far from their rate, 64-byte packets recycled to
 * random pipes. rte_sched reads the TSC itself: time passes for real. Returns the median
 * enqueue + dequeue cycles per packet (0 when it cannot be built).
 */
static double
run_rte_sched(const char *name, uint32_t nsub)
{
	struct rte_sched_pipe_params pipe = {.tb_rate = 1250000000,
					     .tb_size = 1000000,
					     .tc_period = 10,
					     .tc_ov_weight = 1,
					     .wrr_weights = {1, 1, 1, 1}};
	struct rte_sched_subport_profile_params sp = {
		.tb_rate = 12500000000ULL, .tb_size = 1000000, .tc_period = 10};
	uint32_t n_pipes = 1;
	const char *only = getenv("BENCH_SHAPER_ONLY");
	struct rte_sched_subport_params sub;
	struct rte_sched_port_params port;
	struct rte_sched_port *sp_port;
	struct rte_mbuf *pkts[SKY_BURST];
	size_t ns = 0;
	uint32_t in = 0;

	if (only != NULL &&
	    (only[0] == '=' ? strcmp(name, only + 1) != 0 : strstr(name, only) == NULL))
		return 0;
	while (n_pipes < nsub)
		n_pipes <<= 1;
	memset(&sub, 0, sizeof(sub));
	sub.n_pipes_per_subport_enabled = n_pipes;
	sub.pipe_profiles = &pipe;
	sub.n_pipe_profiles = 1;
	sub.n_max_pipe_profiles = 1;
	memset(&port, 0, sizeof(port));
	port.name = "bench_sched";
	port.socket = 0;
	port.rate = 12500000000ULL;
	port.mtu = 1522;
	port.frame_overhead = 24;
	port.n_subports_per_port = 1;
	port.n_pipes_per_subport = n_pipes;
	port.subport_profiles = &sp;
	port.n_subport_profiles = 1;
	port.n_max_subport_profiles = 1;
	for (int i = 0; i < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; i++) {
		pipe.tc_rate[i] = 1250000000;
		sp.tc_rate[i] = 12500000000ULL;
		sub.qsize[i] = 16;
	}
	sp_port = rte_sched_port_config(&port);
	if (sp_port == NULL || rte_sched_subport_config(sp_port, 0, &sub, 0) != 0) {
		printf("rte_sched %-49s could not be configured (%s)\n", name,
		       rte_strerror(rte_errno));
		if (sp_port != NULL)
			rte_sched_port_free(sp_port);
		return 0;
	}
	for (uint32_t p = 0; p < n_pipes; p++)
		if (rte_sched_pipe_config(sp_port, 0, p, 0) != 0) {
			printf("rte_sched %-49s pipe config failed\n", name);
			rte_sched_port_free(sp_port);
			return 0;
		}
	/* prefill: one packet per subscriber */
	for (uint32_t s = 0; s < nsub; s += SKY_BURST) {
		uint32_t n = nsub - s < SKY_BURST ? nsub - s : SKY_BURST;

		if (rte_pktmbuf_alloc_bulk(mp, pkts, n) != 0) {
			fprintf(stderr, "pool too small\n");
			exit(1);
		}
		for (uint32_t i = 0; i < n; i++) {
			rte_pktmbuf_append(pkts[i], PKT_LEN);
			rte_sched_port_pkt_write(sp_port, pkts[i], 0, s + i,
						 RTE_SCHED_TRAFFIC_CLASS_BE, 0, RTE_COLOR_GREEN);
		}
		in += (uint32_t)rte_sched_port_enqueue(sp_port, pkts, n);
	}
	for (int it = 0; it < iters; it++) {
		uint64_t t0, t1, t2, t3;
		int n;

		t0 = rte_rdtsc();
		n = rte_sched_port_dequeue(sp_port, pkts, SKY_BURST);
		t1 = rte_rdtsc();
		for (int i = 0; i < n; i++)
			rte_sched_port_pkt_write(sp_port, pkts[i], 0, (uint32_t)(rte_rand() % nsub),
						 RTE_SCHED_TRAFFIC_CLASS_BE, 0, RTE_COLOR_GREEN);
		t2 = rte_rdtsc();
		rte_sched_port_enqueue(sp_port, pkts, (uint32_t)n);
		t3 = rte_rdtsc();
		if (n > 0) {
			samp_enq[ns] = (uint32_t)((t3 - t2) * 16 / (uint64_t)n);
			samp_deq[ns++] = (uint32_t)((t1 - t0) * 16 / (uint64_t)n);
		}
	}
	/* what it still holds */
	for (int n; (n = rte_sched_port_dequeue(sp_port, pkts, SKY_BURST)) > 0;)
		rte_pktmbuf_free_bulk(pkts, (unsigned int)n);
	rte_sched_port_free(sp_port);
	{
		double me = median(samp_enq, ns), md = median(samp_deq, ns);

		printf("rte_sched %-49s enqueue %6.1f + dequeue %6.1f = %6.1f cycles/packet "
		       "(median "
		       "of %zu calls; %u pipes)\n",
		       name, me, md, me + md, ns, n_pipes);
		(void)in;
		return me + md;
	}
}

/* what DPDK rte_sched would pre-allocate: one subport (beam), n pipes (subscribers) */
static uint64_t
rte_sched_bytes(uint32_t n_pipes, uint16_t qsize)
{
	struct rte_sched_pipe_params pipe = {.tb_rate = 6250000,
					     .tb_size = 65536,
					     .tc_period = 40,
					     .tc_ov_weight = 1,
					     .wrr_weights = {1, 1, 1, 1}};
	struct rte_sched_subport_profile_params sp = {
		.tb_rate = 125000000, .tb_size = 1000000, .tc_period = 10};
	struct rte_sched_subport_params sub = {.n_pipes_per_subport_enabled = n_pipes,
					       .pipe_profiles = &pipe,
					       .n_pipe_profiles = 1,
					       .n_max_pipe_profiles = 1};
	struct rte_sched_subport_params *subs[1] = {&sub};
	struct rte_sched_port_params port = {.name = "fp",
					     .socket = 0,
					     .rate = 12500000000ULL,
					     .mtu = 1522,
					     .frame_overhead = 24,
					     .n_subports_per_port = 1,
					     .subport_profiles = &sp,
					     .n_subport_profiles = 1,
					     .n_max_subport_profiles = 1,
					     .n_pipes_per_subport = n_pipes};

	for (int i = 0; i < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; i++) {
		pipe.tc_rate[i] = 6250000;
		sp.tc_rate[i] = 125000000;
		sub.qsize[i] = qsize;
	}
	return rte_sched_port_get_memory_footprint(&port, subs);
}

static void
police(uint32_t nsub)
{
	const struct bcase bc = {"police", nsub, NSUB, 1, 1, 50000000, 100000000000ULL, 0, true, 1};
	struct sky_shaper *sh = make(&bc);
	struct sky_meta meta[SKY_BURST];
	uint64_t cyc = 0, n = 0, passed = 0;

	for (int it = 0; it < iters; it++) {
		uint64_t t0;

		for (int i = 0; i < SKY_BURST; i++) {
			uint32_t sub = (uint32_t)(rte_rand() % nsub);

			memset(&meta[i], 0, 64);
			meta[i].dir = SKY_DIR_UP;
			meta[i].l3 = 4;
			meta[i].sub_idx = sub;
			meta[i].beam = (uint16_t)(sub % NBEAM);
			meta[i].pkt_len = 1500;
		}
		t0 = rte_rdtsc();
		sky_shaper_police_burst(sh, 0, meta, SKY_BURST, t0);
		t0 = rte_rdtsc() - t0;
		cyc += t0;
		samp_enq[it] = (uint32_t)(t0 * 16 / SKY_BURST);
		n += SKY_BURST;
		for (int i = 0; i < SKY_BURST; i++)
			passed += meta[i].verdict == SKY_V_PASS;
	}
	printf("police %6u subscribers, random order: %6.1f cycles/packet (median of %d bursts; "
	       "mean %.1f; %.1f%% passed)\n",
	       nsub, median(samp_enq, (size_t)iters), iters, (double)cyc / (double)n,
	       100.0 * (double)passed / (double)n);
	sky_shaper_destroy(sh);
}

int
main(int argc, char **argv)
{
	struct sky_shaper *sh;
	size_t per_sub, per_active;
	uint64_t hz;

	(void)argc;
	if (sky_fx_eal_start("bench_shaper", &(struct sky_fx_eal){.mem_mb = 2048,
								  .pool_mbufs = 4 * NSUB + 4096,
								  .pool_cache = 512,
								  .pool_data_room = 128}) < 0)
		return 1;
	hz = rte_get_tsc_hz();
	mp = sky_fx_pool;
	if (getenv("BENCH_ITERS") != NULL) {
		iters = atoi(getenv("BENCH_ITERS"));
		if (iters < 1 || iters > ITERS)
			iters = ITERS;
	}
	printf("TSC %.2f GHz, up to %d active subscribers on one worker, %d beams, %d-byte "
	       "frames, bursts of %d\n",
	       (double)hz / 1e9, NSUB, NBEAM, PKT_LEN, SKY_BURST);

	{
		const struct bcase bc = {"mem",	   NSUB,       1000000, 1,    1,
					 50000000, 1000000000, 0,	true, 4};

		sh = make(&bc);
	}
	sky_shaper_state_size(sh, &per_sub, &per_active);
	printf("state: %zu bytes per configured subscriber (one worker, one output: slot index "
	       "4, upstream policer bucket and counters 32, police drops 8, counter block "
	       "index 4), %zu bytes per active subscriber (slot with its first flow queue, list "
	       "links, its share of the flow queue pool, its downstream counter block)\n",
	       per_sub, per_active);
	printf("state: 100k subscribers all active on one worker: %.1f MB; 1M configured, 100k "
	       "active: %.1f MB\n",
	       ((double)per_sub + (double)per_active) * NSUB / 1e6,
	       ((double)per_sub * 1e6 + (double)per_active * NSUB) / 1e6);
	sky_shaper_destroy(sh);
	{
		uint64_t a = rte_sched_bytes(1024, 64), z = rte_sched_bytes(131072, 64);

		printf("rte_sched for comparison (13 TCs, 16 queues x 64 mbufs per pipe): %.0f "
		       "bytes "
		       "per configured pipe; 131072 pipes (next power of 2 above 100k): %.1f MB "
		       "pre-allocated\n",
		       (double)(z - a) / (131072 - 1024), (double)z / 1e6);
	}

	{
		static const struct bcase cases[] = {
			/* nothing shaped: every packet passes through queue and scheduler */
			{"1k subs, random arrivals, uncongested", 1000, 1000, 1, 1, 1000000000,
			 100000000000ULL / NBEAM, 1, true, 1},
			{"100k subs, random arrivals, uncongested", NSUB, NSUB, 1, 1, 1000000000,
			 100000000000ULL / NBEAM, 1, true, 1},
			{"100k subs, random arrivals, uncongested, 4 cls", NSUB, NSUB, 1, 1,
			 1000000000, 100000000000ULL / NBEAM, 1, true, 4},
			{"100k subs x 4 flows, random arrivals", NSUB, NSUB, 1, 4, 1000000000,
			 100000000000ULL / NBEAM, 1, true, 1},
			{"1M configured, 100k active, random arrivals", NSUB, 1000000, 10, 1,
			 1000000000, 100000000000ULL / NBEAM, 1, true, 1},
			/* all backlogged, beams congested, DRR among them */
			{"1k subs backlogged (4 pkts), congested beams", 1000, 1000, 1, 1,
			 1000000000, 100000000, 4, false, 1},
			{"100k subs backlogged (4 pkts), congested beams", NSUB, NSUB, 1, 1,
			 1000000000, 1000000000, 4, false, 1},
			/* all backlogged, each limited by its plan: sleep and wake through the
			   wheel */
			{"100k subs backlogged, plan-limited (sleep wheel)", NSUB, NSUB, 1, 1,
			 100000, 100000000000ULL / NBEAM, 2, false, 1},
		};
		double ours[2] = {0, 0}, theirs[2] = {0, 0};

		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			run(&cases[k]);
			if (k < 2)
				ours[k] = last_total;
		}
		/* rte_sched, same process, same packets, same recycling to random subscribers */
		theirs[0] = run_rte_sched("1k subs, random arrivals, uncongested", 1000);
		theirs[1] = run_rte_sched("100k subs, random arrivals, uncongested", NSUB);
		for (int k = 0; k < 2; k++)
			if (ours[k] > 0 && theirs[k] > 0)
				printf("ratio skygate / rte_sched, %s subscribers random: %.2f "
				       "(%.1f / "
				       "%.1f cycles/packet)\n",
				       k == 0 ? "1k" : "100k", ours[k] / theirs[k], ours[k],
				       theirs[k]);
	}
	police(NSUB);
	police(1000);
	sky_fx_eal_stop();
	return 0;
}
