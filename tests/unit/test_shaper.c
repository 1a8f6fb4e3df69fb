/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper unit tests. Time is a parameter: the shaper runs with tsc_hz = 1e9, so now_tsc
 * is nanoseconds of simulated time and nothing sleeps. Packets are real mbufs from a
 * --no-huge pool; each carries a tag (subscriber, class, enqueue time) in its data so the
 * test measures what the shaper really released.
 *
 * Failure cases first (config keys and values, refused rates), then accuracy.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/meta.h"
#include "skygate/runtime.h"
#include "skygate/shaper.h"
#include "skygate/subscriber.h"

#include "fixture.h"

#define HZ 1000000000ULL /* 1 tsc = 1 ns */
#define MS 1000000ULL
#define SEC 1000000000ULL
#define MAXSUB 256
#define POOL 32767
#define OVH 24

static struct rte_mempool *mp;
static struct sky_shaper *cur_sh; /* destroyed by the teardown if a test fails */

struct tag {
	uint32_t sub;
	uint32_t len;
	uint64_t t_enq;
	uint8_t cls;
	uint8_t flow; /* offer_flow: flow number, 0..NFLOW-1 */
};

#define NFLOW 16

struct sim {
	struct sky_shaper *sh;
	uint64_t now;		     /* ns of simulated time */
	double tsc_per_ns;	     /* 0: the shaper runs with tsc_hz = 1e9 */
	uint64_t sent_bytes[MAXSUB]; /* cost bytes (len + overhead) released */
	uint64_t sent_pkts[MAXSUB];
	uint64_t outstanding[MAXSUB][SKY_MAX_CLASSES];
	uint64_t offered[MAXSUB];
	uint64_t enq_drops[SKY_DROP_MAX];
	uint64_t deq_drops[SKY_DROP_MAX]; /* dropped at dequeue (max_delay, CoDel) */
	uint64_t beam_sent;		  /* all released cost bytes */
	uint64_t max_delay[SKY_MAX_CLASSES];
	uint64_t delay_sum[SKY_MAX_CLASSES];
	uint64_t delay_n[SKY_MAX_CLASSES];
	uint64_t max_excess;	  /* max over time of beam_sent - rate * t (bytes) */
	uint64_t excess_rate_bps; /* rate for max_excess, 0 = off */
	/* per flow of offer_flow (flow 0 also counts offer()'s packets) */
	uint64_t flow_bytes[NFLOW];
	uint64_t flow_out[NFLOW]; /* queued now (sent and dropped ones leave) */
	uint64_t flow_max_delay[NFLOW];
	uint64_t flow_delay_n[NFLOW];
	uint64_t flow_delays[NFLOW][512]; /* first 512 delays, for percentiles */
};

struct flow {
	unsigned int w;
	uint32_t sub;
	uint16_t plan, beam;
	uint8_t cls;
	uint32_t len;	   /* frame length */
	uint64_t rate_bps; /* 0: keep `backlog` packets queued */
	uint32_t backlog;
	double credit;
};

/* --- helpers ------------------------------------------------------------------------------ */

static struct sky_plan
plan(const char *name, uint64_t down, uint64_t up, uint64_t burst, uint32_t weight)
{
	struct sky_plan p;

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "%s", name);
	p.down_bps = down;
	p.up_bps = up;
	p.down_burst_bytes = burst;
	p.up_burst_bytes = burst;
	p.weight = weight ? weight : (uint32_t)(down / 1000);
	for (unsigned int c = 0; c < SKY_MAX_CLASSES; c++)
		p.class_weight[c] = 1;
	return p;
}

static struct sky_beam
beam(const char *name, uint64_t down, uint64_t up)
{
	struct sky_beam b;

	memset(&b, 0, sizeof(b));
	snprintf(b.name, sizeof(b.name), "%s", name);
	b.down_bps = down;
	b.up_bps = up;
	return b;
}

static void
params(struct sky_shaper_params *p, unsigned int workers, unsigned int classes)
{
	sky_shaper_params_default(p);
	p->tsc_hz = HZ;
	p->n_workers = workers;
	p->n_out_ports = 1;
	p->n_classes = classes;
	p->sub_capacity = MAXSUB;
	p->max_active_per_worker = 1024;
	p->max_queued_per_worker = 30000;
	/* these tests measure rates and fairness with deep backlogs: no time bound (its
	 * largest value) unless a test sets one */
	p->max_delay_us = 10000000;
	for (unsigned int c = 0; c < SKY_MAX_CLASSES; c++)
		p->cls[c].aqm = SKY_AQM_NONE;
}

static struct sky_shaper *
mk(const struct sky_shaper_params *p, const struct sky_plan *pl, unsigned int np,
   const struct sky_beam *bm, unsigned int nb)
{
	char err[256] = "";
	struct sky_shaper *sh = sky_shaper_create_params(p, pl, np, bm, nb, err, sizeof(err));

	if (sh == NULL)
		fail_msg("create: %s", err);
	cur_sh = sh;
	return sh;
}

static uint64_t
tsc(const struct sim *s)
{
	return s->tsc_per_ns ? (uint64_t)((double)s->now * s->tsc_per_ns) : s->now;
}

static uint16_t offer_flow(struct sim *s, unsigned int w, uint32_t sub, uint16_t pl, uint16_t bm,
			   uint8_t cls, uint8_t flow, uint32_t len, uint16_t n);

static uint16_t
offer(struct sim *s, unsigned int w, uint32_t sub, uint16_t pl, uint16_t bm, uint8_t cls,
      uint32_t len, uint16_t n)
{
	return offer_flow(s, w, sub, pl, bm, cls, 0, len, n);
}

/* packets of one flow (remote port 1000 + flow) of a subscriber */
static uint16_t
offer_flow(struct sim *s, unsigned int w, uint32_t sub, uint16_t pl, uint16_t bm, uint8_t cls,
	   uint8_t flow, uint32_t len, uint16_t n)
{
	struct rte_mbuf *pkts[SKY_BURST];
	struct sky_meta meta[SKY_BURST];
	uint16_t done = 0, q;

	while (n > 0) {
		uint16_t k = n > SKY_BURST ? SKY_BURST : n;

		assert_int_equal(rte_pktmbuf_alloc_bulk(mp, pkts, k), 0);
		memset(meta, 0, sizeof(meta));
		for (uint16_t i = 0; i < k; i++) {
			struct tag *t = rte_pktmbuf_mtod(pkts[i], struct tag *);

			t->sub = sub;
			t->len = len;
			t->t_enq = s->now;
			t->cls = cls;
			t->flow = flow;
			rte_pktmbuf_append(pkts[i], sizeof(*t));
			meta[i].proto = 17;
			meta[i].sport = (uint16_t)(1000 + flow);
			meta[i].dport = 4000;
			meta[i].src[0] = 198;
			meta[i].src[3] = 1;
			meta[i].dst[0] = 100;
			meta[i].dst[3] = (uint8_t)sub;
			meta[i].dir = SKY_DIR_DOWN;
			meta[i].l3 = 4;
			meta[i].sub_idx = sub;
			meta[i].plan = pl;
			meta[i].beam = bm;
			meta[i].cls = cls;
			meta[i].pkt_len = len;
		}
		q = sky_shaper_enqueue(s->sh, w, 0, pkts, meta, k, tsc(s), s->enq_drops);
		s->outstanding[sub < MAXSUB ? sub : MAXSUB - 1][cls] += q;
		s->offered[sub < MAXSUB ? sub : MAXSUB - 1] += k;
		s->flow_out[flow % NFLOW] += q;
		done += q;
		n -= k;
	}
	return done;
}

static void
drain(struct sim *s, unsigned int w)
{
	struct rte_mbuf *pkts[SKY_BURST];
	uint16_t n;

	do {
		n = sky_shaper_dequeue(s->sh, w, 0, pkts, SKY_BURST, tsc(s), s->deq_drops);
		for (uint16_t i = 0; i < n; i++) {
			const struct tag *t = rte_pktmbuf_mtod(pkts[i], const struct tag *);
			uint64_t d = s->now - t->t_enq;
			uint32_t sub = t->sub < MAXSUB ? t->sub : MAXSUB - 1;

			s->sent_bytes[sub] += t->len + OVH;
			s->sent_pkts[sub]++;
			s->outstanding[sub][t->cls]--;
			s->beam_sent += t->len + OVH;
			if (d > s->max_delay[t->cls])
				s->max_delay[t->cls] = d;
			s->delay_sum[t->cls] += d;
			s->delay_n[t->cls]++;
			s->flow_bytes[t->flow % NFLOW] += t->len + OVH;
			s->flow_out[t->flow % NFLOW]--;
			if (d > s->flow_max_delay[t->flow % NFLOW])
				s->flow_max_delay[t->flow % NFLOW] = d;
			if (s->flow_delay_n[t->flow % NFLOW] < 512)
				s->flow_delays[t->flow % NFLOW][s->flow_delay_n[t->flow % NFLOW]] =
					d;
			s->flow_delay_n[t->flow % NFLOW]++;
		}
		if (n)
			rte_pktmbuf_free_bulk(pkts, n);
	} while (n == SKY_BURST);
	if (s->excess_rate_bps) {
		uint64_t allowed =
			(uint64_t)((double)s->excess_rate_bps / 8 * (double)s->now / SEC);

		if (s->beam_sent > allowed && s->beam_sent - allowed > s->max_excess)
			s->max_excess = s->beam_sent - allowed;
	}
}

/* run flows for dur ns in steps; rebalance every period when rebal */
static void
run(struct sim *s, struct flow *f, unsigned int nf, unsigned int n_workers, uint64_t dur,
    uint64_t step, bool rebal)
{
	uint64_t end = s->now + dur;
	uint64_t next_rebal = s->now;

	while (s->now < end) {
		for (unsigned int i = 0; i < nf; i++) {
			struct flow *x = &f[i];
			uint64_t n;

			if (x->rate_bps == 0) {
				uint32_t k = x->sub < MAXSUB ? x->sub : MAXSUB - 1;

				n = s->outstanding[k][x->cls] < x->backlog
					    ? x->backlog - s->outstanding[k][x->cls]
					    : 0;
			} else {
				x->credit += (double)x->rate_bps / 8 * (double)step / SEC /
					     (x->len + OVH);
				n = (uint64_t)x->credit;
				x->credit -= (double)n;
			}
			if (n)
				offer(s, x->w, x->sub, x->plan, x->beam, x->cls, x->len,
				      (uint16_t)n);
		}
		if (rebal && s->now >= next_rebal) {
			sky_shaper_rebalance(s->sh, tsc(s));
			next_rebal = s->now + 10 * MS;
		}
		for (unsigned int w = 0; w < n_workers; w++)
			drain(s, w);
		s->now += step;
	}
}

static double
rate_bps(uint64_t bytes, uint64_t ns)
{
	return (double)bytes * 8 * SEC / (double)ns;
}

static void
snapshot(const struct sim *s, uint64_t *b)
{
	memcpy(b, s->sent_bytes, sizeof(s->sent_bytes));
}

static void
assert_within(double got, double want, double pct, const char *what)
{
	double dev = fabs(got - want) / want * 100;

	print_message("  %-40s got %12.0f want %12.0f (%+.2f%%)\n", what, got, want,
		      (got - want) / want * 100);
	if (dev > pct)
		fail_msg("%s: %.0f is %.2f%% from %.0f (limit %.1f%%)", what, got, dev, want, pct);
}

static void
sim_end(struct sim *s)
{
	sky_shaper_destroy(s->sh);
	s->sh = NULL;
	cur_sh = NULL;
	/* every mbuf came back: nothing leaked, queued ones were freed by destroy */
	assert_int_equal(rte_mempool_avail_count(mp), POOL);
}

/* --- failure cases ----------------------------------------------------------------------- */

static void
test_config_refused(void **state)
{
	static const struct {
		const char *yaml;
		const char *want;
	} cases[] = {
		{"shaping: { bogus: 1 }\n", "bogus"},
		{"shaping: { period: 0ms }\n", "period"},
		{"shaping: { period: 5s }\n", "period"},
		{"shaping: { rtt: 20s }\n", "rtt"},
		{"shaping: { port_rate: 10kbit }\n", "port_rate"},
		{"shaping: { port_rate: 12parsecs }\n", "port_rate"},
		{"shaping: { max_active_per_worker: 1 }\n", "max_active_per_worker"},
		{"shaping: { max_queued_per_worker: 10 }\n", "max_queued_per_worker"},
		{"shaping: { frame_overhead: 1000 }\n", "frame_overhead"},
		{"shaping: { enabled: maybe }\n", "enabled"},
		{"shaping: { beam_burst: 5s }\n", "beam_burst"},
		{"shaping: { max_delay: 0ms }\n", "max_delay"},
		{"shaping: { max_delay: 20s }\n", "max_delay"},
		{"shaping: { max_delay: soon }\n", "max_delay"},
		{"shaping: { max_flows_per_worker: 4 }\n", "max_flows_per_worker"},
		{"shaping: [1, 2]\n", "shaping"},
		{"classes:\n  - { name: a, queue: 0 }\n", "queue"},
		{"classes:\n  - { name: a, queue: 100000 }\n", "queue"},
		{"classes:\n  - { name: a, aqm: { kind: pie } }\n", "pie"},
		{"classes:\n  - { name: a, aqm: { kind: blue } }\n", "kind"},
		{"classes:\n  - { name: a, aqm: { target: 5ms } }\n", "kind"},
		{"classes:\n  - { name: a, aqm: { kind: codel, foo: 1 } }\n", "foo"},
		{"classes:\n  - { name: a, aqm: { kind: codel, target: 200ms, interval: 100ms } "
		 "}\n",
		 "target"},
		{"classes:\n  - { name: a, aqm: { kind: codel, target: 5 parsecs } }\n", "target"},
		{"classes:\n  - { name: a, aqm: { kind: red, min: 100, max: 50 } }\n", "red"},
		{"classes:\n  - { name: a, queue: 64, aqm: { kind: red, min: 10, max: 100 } }\n",
		 "red"},
		{"classes:\n  - { name: a, aqm: { kind: red, max_p: 0 } }\n", "max_p"},
		{"classes:\n  - { name: a, aqm: { kind: none, target: 5ms } }\n", "codel only"},
		{"classes:\n  - { name: a, aqm: { kind: codel, min: 5 } }\n", "red only"},
		{"classes:\n  - { name: a, aqm: codel }\n", "aqm"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_cfg_err err = {0};
		struct sky_shaper_params p;
		struct sky_cfg *cfg = sky_cfg_load_string("t.yaml", cases[i].yaml, &err);

		assert_non_null(cfg);
		sky_shaper_params_default(&p);
		if (sky_shaper_parse_config(cfg, &p, &err) == 0)
			fail_msg("case %zu accepted: %s", i, cases[i].yaml);
		print_message("  refused: %s", err.msg);
		print_message("\n");
		if (strstr(err.msg, cases[i].want) == NULL || strstr(err.msg, "t.yaml:") == NULL)
			fail_msg("case %zu: message '%s' lacks '%s' or file:line", i, err.msg,
				 cases[i].want);
		sky_cfg_free(cfg);
	}
}

static void
test_config_accepted(void **state)
{
	static const char yaml[] =
		"shaping: { enabled: true, period: 20ms, rtt: 40ms, beam_burst: 1ms,\n"
		"           max_active_per_worker: 4096, max_queued_per_worker: 8192,\n"
		"           frame_overhead: 20, port_rate: 10Gbit }\n"
		"classes:\n"
		"  - { name: rt, queue: 64, aqm: { kind: none } }\n"
		"  - { name: web, queue: 512, aqm: { kind: codel, target: 3ms, interval: 50ms } }\n"
		"  - { name: bulk, default: true, queue: 2000, aqm: { kind: red, min: 500, max: "
		"1500, max_p: 20 } }\n";
	struct sky_cfg_err err = {0};
	struct sky_shaper_params p;
	struct sky_cfg *cfg = sky_cfg_load_string("ok.yaml", yaml, &err);

	(void)state;
	assert_non_null(cfg);
	sky_shaper_params_default(&p);
	assert_int_equal(sky_shaper_parse_config(cfg, &p, &err), 0);
	assert_true(p.enabled);
	assert_int_equal(p.period_us, 20000);
	assert_int_equal(p.rtt_us, 40000);
	assert_int_equal(p.beam_burst_us, 1000);
	assert_int_equal(p.max_active_per_worker, 4096);
	assert_int_equal(p.max_queued_per_worker, 8192);
	assert_int_equal(p.frame_overhead, 20);
	assert_int_equal(p.port_rate_bps, 10000000000ULL);
	assert_int_equal(p.n_classes, 3);
	assert_int_equal(p.cls[0].queue_pkts, 64);
	assert_int_equal(p.cls[0].aqm, SKY_AQM_NONE);
	assert_int_equal(p.cls[1].aqm, SKY_AQM_CODEL);
	assert_int_equal(p.cls[1].target_us, 3000);
	assert_int_equal(p.cls[1].interval_us, 50000);
	assert_int_equal(p.cls[2].aqm, SKY_AQM_RED);
	assert_int_equal(p.cls[2].red_min_pkts, 500);
	assert_int_equal(p.cls[2].red_max_pkts, 1500);
	assert_int_equal(p.cls[2].red_max_p_pct, 20);
	sky_cfg_free(cfg);

	/* defaults: GEO round trip, CoDel everywhere */
	sky_shaper_params_default(&p);
	assert_int_equal(p.rtt_us, 600000);
	assert_int_equal(p.cls[0].aqm, SKY_AQM_CODEL);
	assert_int_equal(p.port_rate_bps, 100000000000ULL);
}

static void
test_rates_refused(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl[2] = {plan("basic", 50000000, 5000000, 256000, 0),
				 plan("huge", 2000000000, 5000000, 256000, 0)};
	struct sky_beam bm[1] = {beam("b", 1000000000, 200000000)};
	char err[256] = "";
	struct sky_plan np;
	struct sky_beam nb;
	struct sim s = {0};
	uint64_t b0[MAXSUB];
	struct flow f = {.sub = 1, .len = 1500, .backlog = 64};

	(void)state;
	params(&p, 1, 1);
	p.port_rate_bps = 1000000000; /* 1Gbit port */
	/* a plan above the port rate refuses creation, naming it */
	assert_null(sky_shaper_create_params(&p, pl, 2, bm, 1, err, sizeof(err)));
	print_message("  refused: %s\n", err);
	assert_non_null(strstr(err, "huge"));
	assert_non_null(strstr(err, "port rate"));
	/* and a beam above it */
	bm[0].down_bps = 5000000000ULL;
	assert_null(sky_shaper_create_params(&p, pl, 1, bm, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "beam b"));
	bm[0].down_bps = 1000000000;

	s.sh = mk(&p, pl, 1, bm, 1);
	np = pl[0];
	np.down_bps = 1500000000ULL;
	assert_int_equal(sky_shaper_check_plan(s.sh, &np, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "above the port rate"));
	assert_int_equal(sky_shaper_set_plan(s.sh, 0, &np), -EINVAL);
	assert_int_equal(sky_shaper_set_plan(s.sh, SKY_MAX_PLANS, &pl[0]), -EINVAL);
	nb = bm[0];
	nb.up_bps = 2000000000ULL;
	assert_int_equal(sky_shaper_set_beam(s.sh, 0, &nb), -EINVAL);
	assert_int_equal(sky_shaper_set_beam(s.sh, 1, &bm[0]), -EINVAL);
	/* the refused changes left the old plan running: 50Mbit */
	run(&s, &f, 1, 1, 200 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, &f, 1, 1, 2 * SEC, 100000, false);
	assert_within(rate_bps(s.sent_bytes[1] - b0[1], 2 * SEC), 50e6, 2, "rate after refusals");
	sim_end(&s);
}

/* --- accuracy ------------------------------------------------------------------------------ */

/* one backlogged subscriber: ±2% of its plan over 10 simulated seconds, several rates */
static void
test_single_sub_rate(void **state)
{
	static const uint64_t rates[] = {1000000, 50000000, 500000000};

	(void)state;
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct sky_shaper_params p;
		struct sky_plan pl = plan("p", rates[i], 1000000, 256000, 0);
		struct sky_beam bm = beam("b", 1000000000, 100000000);
		struct sim s = {0};
		struct flow f = {.sub = 7, .len = 1500, .backlog = 64};
		char what[64];

		params(&p, 1, 1);
		s.sh = mk(&p, &pl, 1, &bm, 1);
		run(&s, &f, 1, 1, 10 * SEC, 100000, false);
		snprintf(what, sizeof(what), "plan %llu bit/s over 10 s",
			 (unsigned long long)rates[i]);
		/* expected: rate * 10 s plus the initial burst */
		assert_within(rate_bps(s.sent_bytes[7], 10 * SEC),
			      (double)rates[i] + 256000.0 * 8 / 10, 2, what);
		sim_end(&s);
	}
}

/* many subscribers on a congested beam: ±2% of capacity, never above by more than a burst */
static void
test_beam_cap(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 20000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 1000000000, 100000000);
	struct sim s = {0};
	struct flow f[200];
	uint64_t burst = 1000000000ULL / 8 * 2 / 1000; /* beam_burst 2ms */

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (unsigned int i = 0; i < 200; i++)
		f[i] = (struct flow){.sub = i, .len = 1500, .backlog = 16};
	s.excess_rate_bps = 1000000000;
	run(&s, f, 200, 1, 2 * SEC, 100000, false);
	assert_within(rate_bps(s.beam_sent, 2 * SEC), 1e9, 2, "beam of 200 x 20Mbit, 1Gbit");
	print_message("  max excess over capacity*t: %llu bytes (burst %llu)\n",
		      (unsigned long long)s.max_excess, (unsigned long long)burst);
	assert_true(s.max_excess <= burst + 2 * (1500 + OVH));
	sim_end(&s);
}

/* beams on one output are independent: each runs at its own capacity */
static void
test_two_beams(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 100000000, 1000000, 64000, 0);
	struct sky_beam bm[2] = {beam("b30", 30000000, 10000000), beam("b60", 60000000, 10000000)};
	struct sim s = {0};
	struct flow f[6];
	uint64_t b0[MAXSUB], t0 = 0, t1 = 0, u0 = 0, u1 = 0;

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, &pl, 1, bm, 2);
	for (unsigned int i = 0; i < 6; i++)
		f[i] = (struct flow){
			.sub = i, .beam = (uint16_t)(i % 2), .len = 1500, .backlog = 32};
	run(&s, f, 6, 1, 500 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, f, 6, 1, 4 * SEC, 100000, false);
	for (unsigned int i = 0; i < 6; i += 2) {
		t0 += b0[i];
		t1 += s.sent_bytes[i];
		u0 += b0[i + 1];
		u1 += s.sent_bytes[i + 1];
	}
	assert_within(rate_bps(t1 - t0, 4 * SEC), 30e6, 2, "beam b30");
	assert_within(rate_bps(u1 - u0, 4 * SEC), 60e6, 2, "beam b60");
	sim_end(&s);
}

/* backlogged subscribers share a congested beam in proportion to plan weights, ±5% */
static void
test_weighted_fair(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl[3] = {plan("w1", 100000000, 1000000, 64000, 1),
				 plan("w2", 100000000, 1000000, 64000, 2),
				 plan("w3", 100000000, 1000000, 64000, 3)};
	struct sky_beam bm = beam("b", 60000000, 10000000);
	struct sim s = {0};
	struct flow f[6];
	uint64_t b0[MAXSUB];

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, pl, 3, &bm, 1);
	for (unsigned int i = 0; i < 6; i++)
		f[i] = (struct flow){
			.sub = i, .plan = (uint16_t)(i / 2), .len = 1500, .backlog = 32};
	run(&s, f, 6, 1, 500 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, f, 6, 1, 5 * SEC, 100000, false);
	for (unsigned int i = 0; i < 6; i++) {
		char what[64];

		snprintf(what, sizeof(what), "sub %u weight %u of 12 on 60Mbit", i, i / 2 + 1);
		assert_within(rate_bps(s.sent_bytes[i] - b0[i], 5 * SEC), 60e6 * (i / 2 + 1) / 12,
			      5, what);
	}
	sim_end(&s);
}

/* max-min: a light subscriber gets all it asks, the heavy ones share the rest */
static void
test_max_min(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 100000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 100000000, 10000000);
	struct sim s = {0};
	struct flow f[4];
	uint64_t b0[MAXSUB];

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (unsigned int i = 0; i < 3; i++)
		f[i] = (struct flow){.sub = i, .len = 1500, .backlog = 32};
	f[3] = (struct flow){.sub = 3, .len = 1000, .rate_bps = 5000000};
	run(&s, f, 4, 1, 500 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, f, 4, 1, 5 * SEC, 100000, false);
	assert_within(rate_bps(s.sent_bytes[3] - b0[3], 5 * SEC), 5e6, 2, "light subscriber");
	for (unsigned int i = 0; i < 3; i++)
		assert_within(rate_bps(s.sent_bytes[i] - b0[i], 5 * SEC), 95e6 / 3, 5,
			      "heavy subscriber");
	sim_end(&s);
}

/*
 * Realtime latency under saturating bulk. Class 0 of every subscriber is served before
 * any DRR turn, so a realtime packet waits for at most one frame of its subscriber's
 * bucket debt (MTU / plan rate), one frame of beam debt (MTU / beam rate), the realtime
 * packets of other subscribers, one wheel tick and the caller's dequeue interval.
 * Here: 1524*8/20e6 = 0.61ms + 0.12ms + 16us + 0.1ms (step) = 0.85ms, whatever the
 * number of backlogged bulk subscribers.
 */
static void
test_priority_latency(void **state)
{
	static const struct {
		unsigned int n_bulk, backlog;
	} cases[] = {{1, 1024}, {10, 1024}, {200, 100}}; /* plan-limited, beam-limited */

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct sky_shaper_params p;
		struct sky_plan pl = plan("p", 20000000, 1000000, 64000, 0);
		struct sky_beam bm = beam("b", 100000000, 10000000);
		struct sim s = {0};
		struct flow f[201];
		unsigned int nb = cases[k].n_bulk;

		params(&p, 1, 2);
		p.cls[1].queue_pkts = 2048;
		s.sh = mk(&p, &pl, 1, &bm, 1);
		for (unsigned int i = 0; i < nb; i++)
			f[i] = (struct flow){
				.sub = i, .cls = 1, .len = 1500, .backlog = cases[k].backlog};
		/* 1Mbit of 200-byte realtime packets on a subscriber whose bulk saturates */
		f[nb] = (struct flow){.sub = 0, .cls = 0, .len = 200, .rate_bps = 1000000};
		run(&s, f, nb + 1, 1, 5 * SEC, 100000, false);
		print_message(
			"  %u bulk subscribers: realtime max %.2f ms mean %.3f ms (%llu pkts); "
			"bulk max %.1f ms mean %.1f ms\n",
			nb, s.max_delay[0] / 1e6, s.delay_sum[0] / 1e6 / (double)s.delay_n[0],
			(unsigned long long)s.delay_n[0], s.max_delay[1] / 1e6,
			s.delay_sum[1] / 1e6 / (double)s.delay_n[1]);
		assert_true(s.delay_n[0] > 1000);
		assert_true(s.max_delay[0] <= 1 * MS);
		/* bulk really was saturating */
		assert_true(s.delay_sum[1] / s.delay_n[1] > 100 * MS);
		sim_end(&s);
	}
}

/* CoDel keeps a saturating bulk queue near its target without tail drops */
static void
test_codel(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 100000000, 10000000);
	struct sim s = {0};
	struct flow f = {.sub = 3, .len = 1500, .rate_bps = 11000000};
	struct sky_shaper_stats st;

	(void)state;
	params(&p, 1, 1);
	p.cls[0].queue_pkts = 4096;
	p.cls[0].aqm = SKY_AQM_CODEL;
	p.cls[0].target_us = 5000;
	p.cls[0].interval_us = 100000;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	run(&s, &f, 1, 1, 10 * SEC, 100000, false);
	memset(s.max_delay, 0, sizeof(s.max_delay));
	run(&s, &f, 1, 1, 5 * SEC, 100000, false);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 3, &st), 0);
	print_message("  codel: aqm drops %llu tail drops %llu, max sojourn in the last 5 s "
		      "%.1f ms; sent %.2f Mbit/s\n",
		      (unsigned long long)st.ctr[SKY_SHAPER_DROP_AQM],
		      (unsigned long long)st.ctr[SKY_SHAPER_DROP_TAIL], s.max_delay[0] / 1e6,
		      rate_bps(s.sent_bytes[3], 15 * SEC) / 1e6);
	assert_true(st.ctr[SKY_SHAPER_DROP_AQM] > 100);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 0);
	assert_int_equal(st.cls_aqm[0], st.ctr[SKY_SHAPER_DROP_AQM]);
	/* without AQM the queue would hold 4096 packets = 5 s at 10Mbit */
	assert_true(s.max_delay[0] < 150 * MS);
	sim_end(&s);
}

/* RED keeps the average queue between its thresholds: early drops, few tail drops */
static void
test_red(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 100000000, 10000000);
	struct sim s = {0};
	struct flow f = {.sub = 4, .len = 1500, .rate_bps = 12000000};
	struct sky_shaper_stats st;

	(void)state;
	params(&p, 1, 1);
	p.cls[0].queue_pkts = 200;
	p.cls[0].aqm = SKY_AQM_RED;
	p.cls[0].red_min_pkts = 20;
	p.cls[0].red_max_pkts = 60;
	p.cls[0].red_max_p_pct = 10;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	run(&s, &f, 1, 1, 5 * SEC, 100000, false);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 4, &st), 0);
	print_message("  red: aqm drops %llu, tail drops %llu, max delay %.1f ms (queue of 200 = "
		      "%.0f ms)\n",
		      (unsigned long long)st.ctr[SKY_SHAPER_DROP_AQM],
		      (unsigned long long)st.ctr[SKY_SHAPER_DROP_TAIL], s.max_delay[0] / 1e6,
		      200 * 1524 * 8 / 10e6 * 1e3);
	assert_true(st.ctr[SKY_SHAPER_DROP_AQM] > 100);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 0);
	assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_AQM], st.ctr[SKY_SHAPER_DROP_AQM]);
	/* the queue stays near the thresholds, far from full */
	assert_true(s.max_delay[0] < 80 * 1524 * 8 / 10 * 1000ULL);
	sim_end(&s);
}

/* tail drops are counted per subscriber and class, and reported to the caller */
static void
test_tail_drop_counted(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 100000000, 10000000);
	struct sim s = {0};
	struct sky_shaper_stats st, bst;

	(void)state;
	params(&p, 1, 2);
	p.cls[1].queue_pkts = 100;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	assert_int_equal(offer(&s, 0, 5, 0, 0, 1, 1500, 150), 100);
	assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_TAIL], 50);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 5, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 50);
	assert_int_equal(st.cls_tail[1], 50);
	assert_int_equal(st.cls_tail[0], 0);
	assert_int_equal(st.queued_pkts, 100);
	assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_PKTS], 150);
	assert_int_equal(sky_shaper_beam_stats(s.sh, 0, &bst), 0);
	assert_int_equal(bst.ctr[SKY_SHAPER_DROP_TAIL], 50);
	assert_int_equal(bst.queued_pkts, 100);
	assert_int_equal(bst.active, 1);
	assert_int_equal(sky_shaper_sub_stats(s.sh, MAXSUB + 5, &st), -ENOENT);
	assert_int_equal(sky_shaper_beam_stats(s.sh, 1, &bst), -ENOENT);
	sim_end(&s); /* destroy frees the 100 queued mbufs */
}

/* all queues of a worker together hold at most max_queued_per_worker mbufs */
static void
test_worker_buffer_limit(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 100000000, 10000000);
	struct sim s = {0};
	struct sky_shaper_stats st;
	uint16_t q = 0;

	(void)state;
	params(&p, 1, 1);
	p.max_queued_per_worker = 100;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (uint32_t i = 0; i < 10; i++)
		q += offer(&s, 0, i, 0, 0, 0, 1500, 15);
	assert_int_equal(q, 100);
	assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_TAIL], 50);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 9, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 15);
	/* sending frees room */
	s.now += 20 * MS;
	drain(&s, 0);
	assert_true(offer(&s, 0, 9, 0, 0, 0, 1500, 5) == 5);
	sim_end(&s);
}

/* the per-worker pool of active slots runs dry: packets of further subscribers are
 * tail-dropped and counted; when queues drain the slots return to the pool */
static void
test_slot_pool(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	struct sky_shaper_stats st;

	(void)state;
	params(&p, 1, 1);
	p.max_active_per_worker = 16;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (uint32_t i = 0; i < 20; i++)
		offer(&s, 0, i, 0, 0, 0, 1500, 4);
	assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_TAIL], 16);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 19, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 4);
	/* the beam was offered all 80, the 16 refused among them: offered = sent + dropped +
	 * queued holds for it as for the subscribers */
	assert_int_equal(sky_shaper_beam_stats(s.sh, 0, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_PKTS], 80);
	assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_PKTS],
			 st.ctr[SKY_SHAPER_SENT_PKTS] + st.ctr[SKY_SHAPER_DROP_TAIL] +
				 st.ctr[SKY_SHAPER_DROP_AQM] + st.ctr[SKY_SHAPER_DROP_DELAY] +
				 st.queued_pkts);
	/* 1 s later everything is sent and the buckets are full: the slots are free again */
	for (int i = 0; i < 100; i++) {
		s.now += 10 * MS;
		drain(&s, 0);
	}
	assert_int_equal(offer(&s, 0, 19, 0, 0, 0, 1500, 4), 4);
	sim_end(&s);
}

/*
 * Downstream counter blocks, failure cases first. Subscribers 0..A-1 take the A slots
 * (A = max_active_per_worker, also how many blocks the control prepares ahead) and queue;
 * every packet of subscribers A..n-1 is a slot_pool_full drop, counted into the
 * subscriber's block, or, when no block is ready, into the worker's aggregate. Nothing is
 * lost: the subscribers' and the aggregate's counts add up to the beam's. A rebalance
 * prepares A more; a second round counts into them.
 */
static const struct ctr_case {
	const char *name;
	uint32_t active; /* max_active_per_worker: slots, and blocks prepared ahead */
	uint32_t n_subs;
	uint16_t pkts; /* per subscriber and round */
} ctr_cases[] = {
	{"blocks run out: half the dropping subscribers go to the aggregate", 16, 64, 3},
	{"one block short", 16, 33, 2},
	{"exactly enough blocks", 16, 32, 4},
	{"fewer dropping subscribers than blocks", 16, 20, 1},
};

static void
ctr_check_sum(const struct sky_shaper *sh, uint32_t n_subs, uint64_t offered, uint64_t want_misses)
{
	struct sky_shaper_stats st, bst, sum;
	struct sky_shaper_ctr_pool cp;

	memset(&sum, 0, sizeof(sum));
	for (uint32_t i = 0; i < n_subs; i++) {
		assert_int_equal(sky_shaper_sub_stats(sh, i, &st), 0);
		sum.ctr[SKY_SHAPER_DROP_TAIL] += st.ctr[SKY_SHAPER_DROP_TAIL];
		sum.ctr[SKY_SHAPER_OFFERED_PKTS] += st.ctr[SKY_SHAPER_OFFERED_PKTS];
		sum.ctr[SKY_SHAPER_OFFERED_BYTES] += st.ctr[SKY_SHAPER_OFFERED_BYTES];
		sum.cls_tail[0] += st.cls_tail[0];
	}
	assert_int_equal(sky_shaper_ctr_pool(sh, 0, &cp), 0);
	assert_int_equal(cp.misses, want_misses);
	assert_int_equal(cp.uncounted.ctr[SKY_SHAPER_DROP_TAIL], want_misses);
	assert_int_equal(cp.uncounted.cls_tail[0], want_misses);
	assert_int_equal(cp.uncounted.ctr[SKY_SHAPER_OFFERED_PKTS], want_misses);
	assert_int_equal(sky_shaper_beam_stats(sh, 0, &bst), 0);
	assert_int_equal(sum.ctr[SKY_SHAPER_DROP_TAIL] + cp.uncounted.ctr[SKY_SHAPER_DROP_TAIL],
			 bst.ctr[SKY_SHAPER_DROP_TAIL]);
	assert_int_equal(sum.cls_tail[0] + cp.uncounted.cls_tail[0], bst.ctr[SKY_SHAPER_DROP_TAIL]);
	/* what the test offered, as the subscribers and the aggregate count it and as the
	 * beam does (slot_pool_full drops included) */
	assert_int_equal(sum.ctr[SKY_SHAPER_OFFERED_PKTS] +
				 cp.uncounted.ctr[SKY_SHAPER_OFFERED_PKTS],
			 offered);
	assert_int_equal(sum.ctr[SKY_SHAPER_OFFERED_BYTES] +
				 cp.uncounted.ctr[SKY_SHAPER_OFFERED_BYTES],
			 offered * (1000 + OVH));
	assert_int_equal(bst.ctr[SKY_SHAPER_OFFERED_PKTS], offered);
	assert_int_equal(bst.ctr[SKY_SHAPER_OFFERED_BYTES], offered * (1000 + OVH));
}

static void
test_ctr_blocks(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(ctr_cases) / sizeof(ctr_cases[0]); k++) {
		const struct ctr_case *c = &ctr_cases[k];
		const uint32_t a = c->active, drop_subs = c->n_subs - c->active;
		struct sky_shaper_params p;
		struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
		struct sky_beam bm = beam("b", 1000000000, 10000000);
		struct sim s = {0};
		struct sky_shaper_ctr_pool cp;
		struct sky_shaper_stats st;
		uint32_t blocks1, blocks2;
		uint64_t misses1, misses2;

		print_message("  %s\n", c->name);
		params(&p, 1, 1);
		p.max_active_per_worker = a;
		s.sh = mk(&p, &pl, 1, &bm, 1);
		assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp), 0);
		assert_int_equal(cp.blocks_in_use, 0);
		assert_int_equal(cp.blocks_ready, a);
		assert_int_equal(cp.blocks_max, MAXSUB + 1);
		assert_int_equal(sky_shaper_ctr_pool(s.sh, 1, &cp), -ENOENT);
		/* round 1: the first a dropping subscribers get blocks, the others miss */
		for (uint32_t i = 0; i < c->n_subs; i++)
			offer(&s, 0, i, 0, 0, 0, 1000, c->pkts);
		blocks1 = drop_subs < a ? drop_subs : a;
		misses1 = (uint64_t)(drop_subs - blocks1) * c->pkts;
		assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_TAIL], (uint64_t)drop_subs * c->pkts);
		assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp), 0);
		assert_int_equal(cp.blocks_in_use, blocks1);
		assert_int_equal(cp.blocks_ready, a);
		ctr_check_sum(s.sh, c->n_subs, (uint64_t)c->n_subs * c->pkts, misses1);
		/* a subscriber with a block has its own counts, one without shows none */
		assert_int_equal(sky_shaper_sub_stats(s.sh, a, &st), 0);
		assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], c->pkts);
		if (drop_subs > a) {
			assert_int_equal(sky_shaper_sub_stats(s.sh, c->n_subs - 1, &st), 0);
			assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 0);
		}
		/* the subscribers queued in slots counted nothing: no block */
		assert_int_equal(sky_shaper_sub_stats(s.sh, 0, &st), 0);
		assert_int_equal(st.queued_pkts, c->pkts);
		assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_PKTS], c->pkts);

		/* the periodic rebalance prepares a more; round 2 counts into them */
		sky_shaper_rebalance(s.sh, tsc(&s));
		assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp), 0);
		assert_int_equal(cp.blocks_ready,
				 blocks1 + a < MAXSUB + 1 ? blocks1 + a : MAXSUB + 1);
		for (uint32_t i = 0; i < c->n_subs; i++)
			offer(&s, 0, i, 0, 0, 0, 1000, c->pkts);
		blocks2 = drop_subs < blocks1 + a ? drop_subs : blocks1 + a;
		misses2 = misses1 + (uint64_t)(drop_subs - blocks2) * c->pkts;
		assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp), 0);
		assert_int_equal(cp.blocks_in_use, blocks2);
		ctr_check_sum(s.sh, c->n_subs, 2ULL * c->n_subs * c->pkts, misses2);
		/* round 1's subscribers with blocks counted both rounds there */
		assert_int_equal(sky_shaper_sub_stats(s.sh, a, &st), 0);
		assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 2 * c->pkts);
		sim_end(&s);
	}
}

/* a subscriber's counters on two workers add up; sent packets folded into his block when
 * his idle slot is taken for another subscriber count as those still in a slot */
static void
test_ctr_workers(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	struct sky_shaper_stats st, bst;
	struct sky_shaper_ctr_pool cp[2];

	(void)state;
	params(&p, 2, 1);
	p.max_active_per_worker = 2;
	p.cls[0].queue_pkts = 10;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	/* 15 packets on each worker: 10 queued, 5 tail drops, each worker's own block */
	assert_int_equal(offer(&s, 0, 7, 0, 0, 0, 1000, 15), 10);
	assert_int_equal(offer(&s, 1, 7, 0, 0, 0, 1000, 15), 10);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 7, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 10);
	assert_int_equal(st.cls_tail[0], 10);
	assert_int_equal(st.queued_pkts, 20);
	assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_PKTS], 30);
	assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_BYTES], 30 * (1000 + OVH));
	assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp[0]), 0);
	assert_int_equal(sky_shaper_ctr_pool(s.sh, 1, &cp[1]), 0);
	assert_int_equal(cp[0].blocks_in_use, 1);
	assert_int_equal(cp[1].blocks_in_use, 1);
	/* everything sent; worker 0's slot of subscriber 7 goes idle, then is taken by
	 * subscriber 9 (subscriber 8 holds the other): its sent counts fold into the block */
	s.now += 100 * MS;
	drain(&s, 0);
	drain(&s, 1);
	assert_int_equal(s.sent_pkts[7], 20);
	assert_int_equal(offer(&s, 0, 8, 0, 0, 0, 1000, 1), 1);
	assert_int_equal(offer(&s, 0, 9, 0, 0, 0, 1000, 1), 1);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 7, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_SENT_PKTS], 20);
	assert_int_equal(st.ctr[SKY_SHAPER_SENT_BYTES], 20 * (1000 + OVH));
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 10);
	assert_int_equal(st.queued_pkts, 0);
	assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_PKTS], 30);
	assert_int_equal(st.active, 0);
	assert_int_equal(sky_shaper_beam_stats(s.sh, 0, &bst), 0);
	assert_int_equal(bst.ctr[SKY_SHAPER_SENT_PKTS], 20);
	assert_int_equal(bst.ctr[SKY_SHAPER_DROP_TAIL], 10);
	assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp[0]), 0);
	assert_int_equal(cp[0].misses, 0);
	sim_end(&s);
}

/* unknown subscribers on the default plan share one aggregate pipe */
static void
test_unknown_aggregate(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl[2] = {plan("p", 50000000, 1000000, 64000, 0),
				 plan("default", 10000000, 1000000, 64000, 0)};
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	struct flow f[2] = {{.sub = SKY_SUB_NONE, .plan = 1, .len = 1500, .rate_bps = 20000000},
			    {.sub = SKY_SUB_NONE, .plan = 1, .len = 1500, .rate_bps = 20000000}};
	struct sky_shaper_stats st;
	uint64_t sent;

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, pl, 2, &bm, 1);
	run(&s, f, 2, 1, 5 * SEC, 100000, false);
	assert_int_equal(sky_shaper_sub_stats(s.sh, SKY_SUB_NONE, &st), 0);
	sent = st.ctr[SKY_SHAPER_SENT_BYTES];
	assert_within(rate_bps(sent, 5 * SEC), 10e6 + 64000.0 * 8 / 5, 2,
		      "two unknown flows share the default plan");
	sim_end(&s);
}

/* upstream policing: rate over 10 s and burst size exactly */
static void
test_police(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 50000000, 10000000, 100000, 0);
	struct sky_beam bm[2] = {beam("b", 1000000000, 1000000000),
				 beam("c", 1000000000, 20000000)};
	struct sky_shaper *sh;
	struct sky_meta meta[SKY_BURST];
	uint64_t now = 0, passed = 0, dropped = 0;
	struct sky_shaper_stats st;
	double credit = 0;

	(void)state;
	params(&p, 1, 1);
	sh = mk(&p, &pl, 1, bm, 2);
	/* burst: 200 back-to-back frames at one instant, 100000 bytes of tokens */
	memset(meta, 0, sizeof(meta));
	for (int k = 0; k < 7; k++) {
		for (int i = 0; i < SKY_BURST; i++) {
			meta[i] = (struct sky_meta){
				.dir = SKY_DIR_UP, .l3 = 4, .sub_idx = 1, .pkt_len = 1500};
		}
		sky_shaper_police_burst(sh, 0, meta, SKY_BURST, 1000);
		for (int i = 0; i < SKY_BURST; i++)
			if (meta[i].verdict == SKY_V_PASS)
				passed++;
			else {
				assert_int_equal(meta[i].reason, SKY_DROP_POLICE);
				dropped++;
			}
	}
	assert_int_equal(passed, 100000 / (1500 + OVH));
	/* rate: offer 20Mbit for 10 s to subscriber 2 */
	passed = 0;
	for (now = 1000; now < 10 * SEC; now += 100000) {
		uint16_t n;

		credit += 20e6 / 8 * 100000 / SEC / (1500 + OVH);
		n = (uint16_t)credit;
		credit -= n;
		for (uint16_t i = 0; i < n; i++)
			meta[i] = (struct sky_meta){
				.dir = SKY_DIR_UP, .l3 = 4, .sub_idx = 2, .pkt_len = 1500};
		/* dropped and downstream packets are not policed */
		meta[n] = (struct sky_meta){
			.dir = SKY_DIR_DOWN, .l3 = 4, .sub_idx = 2, .pkt_len = 1500};
		meta[n + 1] = (struct sky_meta){.dir = SKY_DIR_UP,
						.l3 = 4,
						.sub_idx = 2,
						.pkt_len = 1500,
						.verdict = SKY_V_DROP,
						.reason = SKY_DROP_POLICY};
		sky_shaper_police_burst(sh, 0, meta, n + 2, now);
		for (uint16_t i = 0; i < n; i++)
			passed += meta[i].verdict == SKY_V_PASS ? 1500 + OVH : 0;
		assert_int_equal(meta[n].verdict, SKY_V_PASS);
		assert_int_equal(meta[n + 1].reason, SKY_DROP_POLICY);
	}
	assert_within(rate_bps(passed, 10 * SEC), 10e6 + 100000.0 * 8 / 10, 2,
		      "policed to 10Mbit over 10 s");
	assert_int_equal(sky_shaper_sub_stats(sh, 2, &st), 0);
	assert_true(st.ctr[SKY_SHAPER_DROP_POLICE] > 0);
	assert_int_equal(st.ctr[SKY_SHAPER_UP_PASS_BYTES] / 1500 * (1500 + OVH), passed);

	/* beam return link 20Mbit, four subscribers of 10Mbit each offering 10Mbit */
	passed = 0;
	credit = 0;
	for (now = 20 * SEC; now < 25 * SEC; now += 100000) {
		uint16_t n;

		credit += 40e6 / 8 * 100000 / SEC / (1500 + OVH);
		n = (uint16_t)credit;
		credit -= n;
		for (uint16_t i = 0; i < n; i++)
			meta[i] = (struct sky_meta){.dir = SKY_DIR_UP,
						    .l3 = 4,
						    .sub_idx =
							    10 + (i + (uint32_t)(now / 100000)) % 4,
						    .beam = 1,
						    .pkt_len = 1500};
		sky_shaper_police_burst(sh, 0, meta, n, now);
		for (uint16_t i = 0; i < n; i++)
			passed += meta[i].verdict == SKY_V_PASS ? 1500 + OVH : 0;
	}
	assert_within(rate_bps(passed, 5 * SEC), 20e6, 2, "beam return link 20Mbit");
	sky_shaper_destroy(sh);
	cur_sh = NULL;
}

/* runtime: beam and plan changes apply within one period; queued packets are kept */
static void
test_runtime_change(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 50000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 100000000, 10000000);
	struct sim s = {0};
	struct flow f[5];
	uint64_t b0[MAXSUB], tot0 = 0, tot1 = 0, outst = 0, sent0;
	struct sky_shaper_stats st;

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (unsigned int i = 0; i < 5; i++)
		f[i] = (struct flow){.sub = i, .len = 1500, .backlog = 200};
	run(&s, f, 5, 1, 1 * SEC, 100000, false);
	for (unsigned int i = 0; i < 5; i++)
		outst += s.outstanding[i][0];
	assert_true(outst >= 900);
	/* rain fade: 100Mbit -> 40Mbit */
	bm.down_bps = 40000000;
	assert_int_equal(sky_shaper_set_beam(s.sh, 0, &bm), 0);
	run(&s, f, 5, 1, 10 * MS, 100000, false); /* one period */
	sent0 = s.beam_sent;
	run(&s, f, 5, 1, 2 * SEC, 100000, false);
	assert_within(rate_bps(s.beam_sent - sent0, 2 * SEC), 40e6, 2, "beam after fade");
	/* plan 50Mbit -> 5Mbit: each subscriber now plan-limited (5 x 5 < 40) */
	pl.down_bps = 5000000;
	assert_int_equal(sky_shaper_set_plan(s.sh, 0, &pl), 0);
	run(&s, f, 5, 1, 10 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, f, 5, 1, 2 * SEC, 100000, false);
	for (unsigned int i = 0; i < 5; i++) {
		tot0 += b0[i];
		tot1 += s.sent_bytes[i];
	}
	/* from one period after the change: 5 x 5Mbit, plus at most the 64KB each may have
	 * saved while the beam held them back */
	print_message("  5 subscribers after plan cut: %.0f bit/s (limits %.0f..%.0f)\n",
		      rate_bps(tot1 - tot0, 2 * SEC), 25e6 * 0.98,
		      (25e6 + 5 * 64000.0 * 8 / 2) * 1.02);
	assert_true(rate_bps(tot1 - tot0, 2 * SEC) >= 25e6 * 0.98);
	assert_true(rate_bps(tot1 - tot0, 2 * SEC) <= (25e6 + 5 * 64000.0 * 8 / 2) * 1.02);
	/* and then exactly the new plans */
	tot0 = tot1;
	run(&s, f, 5, 1, 2 * SEC, 100000, false);
	tot1 = 0;
	for (unsigned int i = 0; i < 5; i++)
		tot1 += s.sent_bytes[i];
	assert_within(rate_bps(tot1 - tot0, 2 * SEC), 25e6, 2, "5 subscribers at 5Mbit");
	/* nothing was dropped by the changes: offered = sent + queued */
	assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_TAIL], 0);
	for (unsigned int i = 0; i < 5; i++) {
		assert_int_equal(sky_shaper_sub_stats(s.sh, i, &st), 0);
		assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL] + st.ctr[SKY_SHAPER_DROP_AQM], 0);
		assert_int_equal(s.offered[i], s.sent_pkts[i] + st.queued_pkts);
		assert_int_equal(st.ctr[SKY_SHAPER_SENT_PKTS], s.sent_pkts[i]);
	}
	sim_end(&s);
}

/* `subscriber set plan=` / `beam=` while backlogged: the next packet carries the change,
 * the queued packets follow the subscriber, nothing is dropped */
static void
test_sub_moves_while_backlogged(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl[2] = {plan("a", 50000000, 1000000, 64000, 0),
				 plan("b", 10000000, 1000000, 64000, 0)};
	struct sky_beam bm[2] = {beam("big", 1000000000, 10000000),
				 beam("small", 5000000, 10000000)};
	struct sim s = {0};
	struct flow f[2] = {{.sub = 1, .cls = 1, .len = 1500, .backlog = 100},
			    {.sub = 1, .cls = 0, .len = 200, .rate_bps = 200000}};
	struct sky_shaper_stats st0, st1, st;
	uint64_t b0[MAXSUB];

	(void)state;
	params(&p, 1, 2);
	s.sh = mk(&p, pl, 2, bm, 2);
	run(&s, f, 2, 1, 1 * SEC, 100000, false);
	f[0].plan = f[1].plan = 1;
	run(&s, f, 2, 1, 10 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, f, 2, 1, 2 * SEC, 100000, false);
	assert_within(rate_bps(s.sent_bytes[1] - b0[1], 2 * SEC), 10e6, 2, "plan a -> b");
	f[0].beam = f[1].beam = 1;
	run(&s, f, 2, 1, 10 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, f, 2, 1, 2 * SEC, 100000, false);
	assert_within(rate_bps(s.sent_bytes[1] - b0[1], 2 * SEC), 5e6, 2, "beam big -> small");
	assert_int_equal(sky_shaper_beam_stats(s.sh, 0, &st0), 0);
	assert_int_equal(sky_shaper_beam_stats(s.sh, 1, &st1), 0);
	assert_int_equal(st0.queued_pkts, 0);
	assert_int_equal(st0.active, 0);
	assert_int_equal(st1.active, 1);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 1, &st), 0);
	assert_int_equal(st1.queued_pkts, st.queued_pkts);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL] + st.ctr[SKY_SHAPER_DROP_AQM], 0);
	assert_int_equal(s.offered[1], s.sent_pkts[1] + st.queued_pkts);
	/* realtime still first on the new beam */
	assert_true(s.max_delay[0] < 5 * MS);
	sim_end(&s);
}

/* two workers share a beam: shares sum to capacity, weighted fairness across workers */
static void
test_multi_worker(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 100000000, 100000000, 64000, 0);
	struct sky_beam bm = beam("b", 100000000, 40000000);
	struct sim s = {0};
	struct flow f[4];
	uint64_t b0[MAXSUB], sent0, share;

	(void)state;
	params(&p, 2, 1);
	s.sh = mk(&p, &pl, 1, &bm, 1);
	/* initial split: equal */
	assert_int_equal(sky_shaper_share_bps(s.sh, 0, 0, 0), 50000000);
	for (unsigned int i = 0; i < 4; i++)
		f[i] = (struct flow){.w = i < 3 ? 0 : 1, .sub = i, .len = 1500, .backlog = 32};
	run(&s, f, 4, 2, 1 * SEC, 100000, true);
	snapshot(&s, b0);
	sent0 = s.beam_sent;
	run(&s, f, 4, 2, 4 * SEC, 100000, true);
	share = sky_shaper_share_bps(s.sh, 0, 0, 0) + sky_shaper_share_bps(s.sh, 1, 0, 0);
	print_message("  shares: worker0 %llu worker1 %llu bit/s\n",
		      (unsigned long long)sky_shaper_share_bps(s.sh, 0, 0, 0),
		      (unsigned long long)sky_shaper_share_bps(s.sh, 1, 0, 0));
	assert_within((double)share, 100e6, 2, "sum of worker shares");
	assert_within(rate_bps(s.beam_sent - sent0, 4 * SEC), 100e6, 2, "beam over 2 workers");
	for (unsigned int i = 0; i < 4; i++)
		assert_within(rate_bps(s.sent_bytes[i] - b0[i], 4 * SEC), 25e6, 5,
			      i < 3 ? "worker 0 subscriber" : "worker 1 subscriber");
	/* worker 1 goes quiet: worker 0 takes the beam, worker 1 keeps a floor */
	f[3].backlog = 0;
	run(&s, f, 4, 2, 1 * SEC, 100000, true);
	snapshot(&s, b0);
	run(&s, f, 3, 2, 2 * SEC, 100000, true);
	print_message("  worker 1 idle: shares %llu / %llu\n",
		      (unsigned long long)sky_shaper_share_bps(s.sh, 0, 0, 0),
		      (unsigned long long)sky_shaper_share_bps(s.sh, 1, 0, 0));
	assert_within(rate_bps(s.sent_bytes[0] + s.sent_bytes[1] + s.sent_bytes[2] - b0[0] - b0[1] -
				       b0[2],
			       2 * SEC),
		      100e6, 2, "worker 0 alone");
	assert_true(sky_shaper_share_bps(s.sh, 1, 0, 0) > 0);
	sim_end(&s);
}

/* strict priority inside a subscriber: class 0 first; classes 1.. by class weight */
static void
test_class_weights(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 30000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	struct flow f[3];
	uint64_t byc[3] = {0};

	(void)state;
	pl.class_weight[1] = 3;
	pl.class_weight[2] = 1;
	params(&p, 1, 3);
	s.sh = mk(&p, &pl, 1, &bm, 1);
	f[0] = (struct flow){.sub = 1, .cls = 0, .len = 1000, .rate_bps = 6000000};
	f[1] = (struct flow){.sub = 1, .cls = 1, .len = 1500, .backlog = 256};
	f[2] = (struct flow){.sub = 1, .cls = 2, .len = 1500, .backlog = 512};
	run(&s, f, 3, 1, 500 * MS, 100000, false);
	/* count per class by delay bookkeeping: delay_n per class */
	for (unsigned int c = 0; c < 3; c++)
		byc[c] = s.delay_n[c];
	memset(s.delay_n, 0, sizeof(s.delay_n));
	run(&s, f, 3, 1, 4 * SEC, 100000, false);
	/* 30Mbit: realtime takes its 6Mbit, the rest 24Mbit splits 3:1 -> 18 / 6 */
	assert_within(rate_bps(s.delay_n[0] * 1024, 4 * SEC), 6e6, 2, "class 0 (strict)");
	assert_within(rate_bps(s.delay_n[1] * 1524, 4 * SEC), 18e6, 5, "class 1 (weight 3)");
	assert_within(rate_bps(s.delay_n[2] * 1524, 4 * SEC), 6e6, 5, "class 2 (weight 1)");
	(void)byc;
	sim_end(&s);
}

/* --- flow queues, delay bound ------------------------------------------------------------- */

/* sync flow_out with what the shaper dropped at dequeue: the test re-offers up to a
 * backlog, so it needs each flow's queue; dequeue drops are not visible to it, so the
 * backlogged flows here run with a time bound far above their queueing delay */
static void
keep_backlog(struct sim *s, uint32_t sub, uint8_t flow, uint32_t len, uint32_t backlog)
{
	if (s->flow_out[flow] < backlog)
		offer_flow(s, 0, sub, 0, 0, 0, flow, len, (uint16_t)(backlog - s->flow_out[flow]));
}

/* max-min fairness among the flows of one subscriber: a light flow gets all it asks, the
 * backlogged ones share the rest of the plan equally (one subscriber, one class) */
static void
test_flow_fairness(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 3200, 0);
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	uint64_t b0[NFLOW], step = 100000;
	double credit = 0;

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (int phase = 0; phase < 2; phase++) {
		uint64_t end = s.now + (phase == 0 ? 500 * MS : 5 * SEC);

		if (phase == 1)
			memcpy(b0, s.flow_bytes, sizeof(b0));
		while (s.now < end) {
			keep_backlog(&s, 1, 0, 1000, 16);
			keep_backlog(&s, 1, 1, 1500, 16);
			keep_backlog(&s, 1, 3, 200, 64);
			/* flow 2: 1 Mbit/s of 1000-byte frames */
			credit += 1e6 / 8 * (double)step / SEC / (1000 + OVH);
			if (credit >= 1) {
				offer_flow(&s, 0, 1, 0, 0, 0, 2, 1000, (uint16_t)credit);
				credit -= (uint16_t)credit;
			}
			drain(&s, 0);
			s.now += step;
		}
	}
	assert_within(rate_bps(s.flow_bytes[2] - b0[2], 5 * SEC), 1e6, 2,
		      "light flow gets what it asks");
	for (unsigned int f = 0; f < 4; f++) {
		char what[64];

		if (f == 2)
			continue;
		snprintf(what, sizeof(what), "backlogged flow %u: (10 - 1) / 3 Mbit", f);
		assert_within(rate_bps(s.flow_bytes[f] - b0[f], 5 * SEC), 3e6, 2, what);
	}
	sim_end(&s);
}

static uint64_t
pctl(uint64_t *v, uint64_t n, unsigned int pct)
{
	uint64_t k;

	if (n > 512)
		n = 512;
	for (uint64_t i = 1; i < n; i++)
		for (uint64_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	k = n * pct / 100;
	return v[k < n ? k : n - 1];
}

/*
 * A sparse flow (50 pps of 100-byte packets, DNS/VoIP-like) of a subscriber whose own 4
 * unresponsive bulk flows offer 3x his 50 Mbit/s plan: the sparse flow's packets are
 * served first (new flow list) and wait at most about one frame at the plan rate; the
 * bulk flows wait up to max_delay and lose what is older.
 */
static void
test_sparse_flow(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 50000000, 1000000, 3200, 0);
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	struct sky_shaper_stats st;
	uint64_t step = 100000, next_probe = 0;
	double credit[4] = {0};

	(void)state;
	params(&p, 1, 1);
	p.max_delay_us = 100000;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	while (s.now < 3 * SEC) {
		for (uint8_t f = 0; f < 4; f++) {
			credit[f] += 150e6 / 4 / 8 * (double)step / SEC / (1500 + OVH);
			if (credit[f] >= 1) {
				offer_flow(&s, 0, 1, 0, 0, 0, f, 1500, (uint16_t)credit[f]);
				credit[f] -= (uint16_t)credit[f];
			}
		}
		if (s.now >= next_probe) {
			offer_flow(&s, 0, 1, 0, 0, 0, 9, 100, 1);
			next_probe += 20 * MS;
		}
		drain(&s, 0);
		s.now += step;
	}
	print_message("  probe: %llu packets, max delay %.3f ms; bulk flow 0 max %.1f ms\n",
		      (unsigned long long)s.flow_delay_n[9], (double)s.flow_max_delay[9] / MS,
		      (double)s.flow_max_delay[0] / MS);
	assert_int_equal(s.flow_delay_n[9], 150); /* none lost */
	/* one 1524-byte frame at 50 Mbit/s is 0.24 ms, plus the 0.1 ms step */
	assert_true(s.flow_max_delay[9] <= 400000);
	/* the load is real: bulk waits tens of ms, bounded by max_delay */
	assert_true(pctl(s.flow_delays[0], s.flow_delay_n[0], 50) > 20 * MS);
	assert_true(s.flow_max_delay[0] <= 100 * MS);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 1, &st), 0);
	assert_true(st.ctr[SKY_SHAPER_DROP_DELAY] > 0);
	assert_within(rate_bps(s.sent_bytes[1], 3 * SEC), 50e6, 1, "subscriber at his plan");
	sim_end(&s);
}

/*
 * A beam at 10 Mbit/s offered 3x by unresponsive subscribers: no packet leaves later than
 * max_delay after it came; what is older is dropped and counted (queue_delay_drops); the
 * beam still runs at its capacity; the delay histograms show it.
 */
static void
test_max_delay(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 20000000, 1000000, 3200, 0);
	struct sky_beam bm = beam("b", 10000000, 10000000);
	struct sim s = {0};
	struct flow f[3];
	struct sky_shaper_stats st;
	struct sky_shaper_delay last, total;
	uint64_t b0;

	(void)state;
	params(&p, 1, 2);
	p.max_delay_us = 50000;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (unsigned int i = 0; i < 3; i++)
		f[i] = (struct flow){.sub = i, .cls = 1, .len = 1000, .rate_bps = 10000000};
	run(&s, f, 3, 1, 1 * SEC, 100000, true);
	b0 = s.beam_sent;
	run(&s, f, 3, 1, 3 * SEC, 100000, true);
	print_message("  max delay %.3f ms (bound 50 ms)\n", (double)s.max_delay[1] / MS);
	assert_true(s.max_delay[1] <= 50 * MS);
	assert_true(s.max_delay[1] > 40 * MS);
	assert_within(rate_bps(s.beam_sent - b0, 3 * SEC), 10e6, 1, "beam at capacity");
	assert_int_equal(sky_shaper_beam_stats(s.sh, 0, &st), 0);
	assert_true(st.ctr[SKY_SHAPER_DROP_DELAY] > 0);
	/* the dequeue reported each of them to its caller (the worker counts them per port) */
	assert_int_equal(s.deq_drops[SKY_DROP_QUEUE_DELAY], st.ctr[SKY_SHAPER_DROP_DELAY]);
	assert_int_equal(s.deq_drops[SKY_DROP_QUEUE_AQM], 0);
	/* every packet offered is sent, dropped by reason, or still queued */
	assert_int_equal(st.ctr[SKY_SHAPER_OFFERED_PKTS],
			 st.ctr[SKY_SHAPER_SENT_PKTS] + st.ctr[SKY_SHAPER_DROP_TAIL] +
				 st.ctr[SKY_SHAPER_DROP_AQM] + st.ctr[SKY_SHAPER_DROP_DELAY] +
				 st.queued_pkts);
	/* histograms: last interval and since start, per beam and per class */
	assert_int_equal(sky_shaper_delay(s.sh, SKY_SHAPER_DELAY_BEAM, 0, &last, &total), 0);
	print_message("  beam delay last interval: %llu packets p50 %llu us p99 %llu us max %llu "
		      "us\n",
		      (unsigned long long)last.count, (unsigned long long)last.p50_us,
		      (unsigned long long)last.p99_us, (unsigned long long)last.max_us);
	assert_true(last.count > 1000);
	assert_true(last.p99_us <= 50000 * 5 / 4 && last.p99_us >= 40000);
	assert_true(last.max_us <= 50000 && last.max_us >= 40000);
	/* a percentile is a bucket's upper bound, capped by the exact max: never above it */
	assert_true(last.p50_us <= last.p99_us && last.p99_us <= last.max_us);
	assert_int_equal(total.count, st.ctr[SKY_SHAPER_SENT_PKTS]);
	/* since start: the max of every interval rolled, exact, and what it bounds */
	assert_true(total.max_us <= 50000 && total.max_us >= last.max_us);
	assert_true(total.p50_us <= total.p99_us && total.p99_us <= total.max_us);
	assert_int_equal(sky_shaper_delay(s.sh, SKY_SHAPER_DELAY_CLASS, 1, &last, NULL), 0);
	assert_true(last.p99_us <= 50000 * 5 / 4 && last.p99_us >= 40000);
	assert_int_equal(sky_shaper_delay(s.sh, SKY_SHAPER_DELAY_CLASS, 0, &last, NULL), 0);
	assert_int_equal(last.count, 0);
	assert_int_equal(sky_shaper_delay(s.sh, SKY_SHAPER_DELAY_CLASS, 2, &last, NULL), -ENOENT);
	assert_int_equal(sky_shaper_delay(s.sh, SKY_SHAPER_DELAY_BEAM, 1, &last, NULL), -ENOENT);
	sim_end(&s);
}

/* the per-worker pool of flow queues runs dry: packets of further flows are tail-dropped
 * and counted; nothing leaks, and the flow queues come back when the queues drain */
static void
test_flow_pool(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 10000000, 1000000, 64000, 0);
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	struct sky_shaper_stats st;

	(void)state;
	params(&p, 1, 1);
	p.max_flows_per_worker = 16;
	s.sh = mk(&p, &pl, 1, &bm, 1);
	/* 10 subscribers x 3 flows: each one's first flow has the slot's own queue, the 20
	 * others share 16 */
	for (uint32_t i = 0; i < 10; i++)
		for (uint8_t f = 0; f < 3; f++)
			offer_flow(&s, 0, i, 0, 0, 0, f, 1500, 2);
	assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_TAIL], 8);
	assert_int_equal(sky_shaper_sub_stats(s.sh, 9, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 4);
	/* a subscriber with many flows: 16 buckets at most, however many flows */
	for (int i = 0; i < 100; i++) {
		s.now += 10 * MS;
		drain(&s, 0);
	}
	for (uint8_t f = 0; f < NFLOW; f++)
		offer_flow(&s, 0, 3, 0, 0, 0, f, 1500, 1);
	assert_int_equal(s.enq_drops[SKY_DROP_QUEUE_TAIL], 8);
	for (int i = 0; i < 100; i++) {
		s.now += 10 * MS;
		drain(&s, 0);
	}
	assert_int_equal(offer_flow(&s, 0, 9, 0, 0, 0, 1, 1500, 2), 2);
	sim_end(&s);
}

/* a plan changes while a subscriber's flows are backlogged: nothing queued is dropped,
 * the new rate holds from the change on, and the flows keep sharing it equally */
static void
test_flow_rate_change(void **state)
{
	struct sky_shaper_params p;
	struct sky_plan pl = plan("p", 20000000, 1000000, 3200, 0);
	struct sky_beam bm = beam("b", 1000000000, 10000000);
	struct sim s = {0};
	struct sky_shaper_stats st;
	uint64_t b0[NFLOW], step = 100000;

	(void)state;
	params(&p, 1, 1);
	s.sh = mk(&p, &pl, 1, &bm, 1);
	for (int phase = 0; phase < 3; phase++) {
		uint64_t end = s.now + (phase == 0 ? 500 * MS : 2 * SEC);

		if (phase == 1) {
			memcpy(b0, s.flow_bytes, sizeof(b0));
		} else if (phase == 2) {
			for (unsigned int f = 0; f < 2; f++)
				assert_within(rate_bps(s.flow_bytes[f] - b0[f], 2 * SEC), 10e6, 1,
					      "flow at half of 20 Mbit");
			pl.down_bps = 6000000;
			assert_int_equal(sky_shaper_set_plan(s.sh, 0, &pl), 0);
			s.now += step;
			drain(&s, 0);
			memcpy(b0, s.flow_bytes, sizeof(b0));
		}
		while (s.now < end) {
			keep_backlog(&s, 1, 0, 1500, 32);
			keep_backlog(&s, 1, 1, 1500, 32);
			drain(&s, 0);
			s.now += step;
		}
	}
	for (unsigned int f = 0; f < 2; f++)
		assert_within(rate_bps(s.flow_bytes[f] - b0[f], 2 * SEC - step), 3e6, 1,
			      "flow at half of 6 Mbit");
	assert_int_equal(sky_shaper_sub_stats(s.sh, 1, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL] + st.ctr[SKY_SHAPER_DROP_AQM] +
				 st.ctr[SKY_SHAPER_DROP_DELAY],
			 0);
	sim_end(&s);
}

/* --- the subscriber model --- */

/* --- with the subscriber model: commands, validator, listener, extenders, metrics ---------- */

static json_t *
ctl(const char *line)
{
	char buf[512], *argv[16];
	int argc = 0;
	json_t *r;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *tok = strtok(buf, " "); tok && argc < 16; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	r = sky_ctl_dispatch_argv(argc, argv, 0, 0, 0);
	assert_non_null(r);
	return r;
}

static bool
ctl_ok(const char *line, json_t **result)
{
	json_t *r = ctl(line);
	bool ok = json_is_true(json_object_get(r, "ok"));

	if (!ok)
		print_message("  %s -> %s\n", line, json_string_value(json_object_get(r, "error")));
	if (result != NULL)
		*result = json_incref(json_object_get(r, "result"));
	json_decref(r);
	return ok;
}

static const char model_yaml[] =
	"subscribers: { file: %s, unknown: { plan: basic }, capacity: 64 }\n"
	"plans:\n"
	"  basic: { down: 50Mbit, up: 5Mbit, burst: 64KB }\n"
	"  gold:  { down: %s, up: 10Mbit }\n"
	"beams:\n"
	"  b1: { down: 1Gbit, up: 200Mbit }\n"
	"classes:\n"
	"  - { name: realtime, dscp: [46], queue: 128, aqm: { kind: none } }\n"
	"  - { name: bulk, default: true, queue: 512, aqm: { kind: codel } }\n"
	"shaping: { port_rate: 2Gbit, max_active_per_worker: 256, period: 10ms }\n"
	"mempool: { mbufs: 4096 }\n";

static struct sky_cfg *
model_cfg(const char *csv, const char *gold_down)
{
	struct sky_cfg_err err;
	struct sky_cfg *cfg = sky_fx_cfg("model.yaml", &err, model_yaml, csv, gold_down);

	if (cfg == NULL)
		fail_msg("config: %s", err.msg);
	return cfg;
}

static void
test_model(void **state)
{
	char csv[] = "/tmp/test_shaper_XXXXXX.csv";
	int fd = mkstemps(csv, 4);
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	struct sky_subs *subs;
	struct sim s = {0};
	json_t *res;
	char *metrics;
	size_t mlen;
	struct flow f = {.sub = 0, .plan = 0, .cls = 1, .len = 1500, .backlog = 16};
	uint64_t b0[MAXSUB];
	struct sky_sub_info info;

	(void)state;
	assert_true(fd >= 0);
	static const char rows[] = "id,ipv4,ipv6,plan,beam,country\n"
				   "1,100.64.0.1,,basic,b1,DE\n2,100.64.0.2,,gold,b1,FR\n";

	assert_true(write(fd, rows, sizeof(rows) - 1) == (ssize_t)sizeof(rows) - 1);
	close(fd);

	/* a plan above shaping.port_rate is refused at start, naming file, line and plan */
	cfg = model_cfg(csv, "3Gbit");
	subs = sky_subs_create(cfg, 1, &err);
	if (subs == NULL)
		fail_msg("subs: %s", err.msg);
	assert_null(sky_shaper_create(cfg, subs, 1, 1, &err));
	print_message("  refused: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "model.yaml:"));
	assert_non_null(strstr(err.msg, "gold"));
	sky_subs_destroy(subs);
	sky_cfg_free(cfg);

	cfg = model_cfg(csv, "100Mbit");
	memset(&err, 0, sizeof(err));
	subs = sky_subs_create(cfg, 1, &err);
	if (subs == NULL)
		fail_msg("subs: %s", err.msg);
	s.sh = sky_shaper_create(cfg, subs, 1, 1, &err);
	if (s.sh == NULL)
		fail_msg("shaper: %s", err.msg);
	cur_sh = s.sh;
	s.tsc_per_ns = (double)sky_rt.tsc_hz / 1e9; /* the model's shaper runs on the real TSC */
	s.now = 1000 * SEC;
	assert_true(sky_shaper_enabled(s.sh));
	assert_int_equal(sky_subs_register(subs), 0);
	assert_int_equal(sky_shaper_register(s.sh), 0);

	/* validator: rates above the port speed are refused whole, the model keeps the old */
	assert_false(ctl_ok("plan set basic down=5Gbit", NULL));
	assert_int_equal(sky_subs_plan(subs, 0).down_bps, 50000000);
	assert_false(ctl_ok("beam set b1 down=3Gbit up=200Mbit", NULL));
	assert_int_equal(sky_subs_beam(subs, 0).down_bps, 1000000000);
	{
		json_t *r = ctl("plan set basic down=5Gbit");

		assert_non_null(
			strstr(json_string_value(json_object_get(r, "error")), "port rate"));
		json_decref(r);
	}

	/* listener: a beam change reaches the shares at once, a plan change the buckets */
	assert_true(ctl_ok("beam set b1 down=500Mbit up=100Mbit", NULL));
	assert_int_equal(sky_shaper_share_bps(s.sh, 0, 0, 0), 500000000);
	assert_int_equal(sky_shaper_share_bps(s.sh, 0, UINT32_MAX, 0), 100000000);
	assert_int_equal(sky_subs_get(subs, 1, &info), 0);
	f.sub = info.idx;
	run(&s, &f, 1, 1, 1 * SEC, 100000, false);
	assert_true(ctl_ok("plan set basic down=20Mbit", NULL));
	run(&s, &f, 1, 1, 10 * MS, 100000, false);
	snapshot(&s, b0);
	run(&s, &f, 1, 1, 2 * SEC, 100000, false);
	assert_within(rate_bps(s.sent_bytes[f.sub] - b0[f.sub], 2 * SEC), 20e6, 2,
		      "plan set down=20Mbit applied");

	/* observability */
	assert_true(ctl_ok("beam show b1", &res));
	assert_true(json_is_object(json_object_get(res, "shaper")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "shaper"),
							    "down_share_sum_bps")),
			 500000000);
	{
		/* every packet sent is in the beam's delay histogram */
		json_t *sh = json_object_get(res, "shaper");
		json_t *d = json_object_get(sh, "delay");

		assert_true(json_is_object(d));
		assert_true(json_integer_value(json_object_get(sh, "sent_packets")) > 1000);
		assert_int_equal(json_integer_value(json_object_get(d, "total_packets")),
				 json_integer_value(json_object_get(sh, "sent_packets")));
		assert_true(json_is_integer(json_object_get(d, "p99_us")));
		assert_true(json_is_integer(json_object_get(sh, "queue_delay_drops")));
	}
	json_decref(res);
	assert_true(ctl_ok("subscriber show 1", &res));
	assert_true(json_is_object(json_object_get(res, "shaper")));
	assert_true(json_integer_value(json_object_get(json_object_get(res, "shaper"),
						       "sent_packets")) > 1000);
	json_decref(res);
	assert_true(ctl_ok("shaper show", &res));
	assert_int_equal(json_array_size(json_object_get(res, "beams")), 1);
	assert_int_equal(json_array_size(json_object_get(res, "classes")), 2);
	/* not configured: half of mempool.mbufs over the workers */
	assert_int_equal(json_integer_value(json_object_get(res, "max_queued_per_worker")), 2048);
	assert_int_equal(json_integer_value(json_object_get(res, "max_delay_us")), 100000);
	assert_true(json_is_object(
		json_object_get(json_array_get(json_object_get(res, "classes"), 1), "delay")));
	assert_int_equal(json_integer_value(
				 json_object_get(json_array_get(json_object_get(res, "workers"), 0),
						 "flow_pool_full_drops")),
			 0);
	json_decref(res);
	assert_false(ctl_ok("shaper show extra", NULL));
	metrics = sky_metrics_render(&mlen);
	assert_non_null(metrics);
	assert_non_null(strstr(metrics, "skygate_shaper_beam_sent_bytes_total{beam=\"b1\"}"));
	assert_non_null(strstr(metrics, "# TYPE skygate_shaper_beam_delay_seconds histogram\n"));
	assert_non_null(strstr(
		metrics, "skygate_shaper_beam_delay_seconds_bucket{beam=\"b1\",le=\"+Inf\"}"));
	assert_non_null(strstr(metrics, "skygate_shaper_beam_delay_seconds_count{beam=\"b1\"}"));
	assert_non_null(strstr(metrics, "# TYPE skygate_shaper_class_delay_seconds histogram\n"));
	assert_non_null(
		strstr(metrics, "skygate_shaper_class_delay_seconds_bucket{class=\"1\",le="));
	assert_non_null(
		strstr(metrics, "skygate_shaper_beam_queue_delay_drops_total{beam=\"b1\"}"));
	free(metrics);

	sim_end(&s);
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_periodic_clear();
	sky_subs_destroy(subs);
	sky_cfg_free(cfg);
	unlink(csv);
}

/*
 * `subscriber del` then `subscriber add`: the new subscriber gets the old index and its
 * counter block, zeroed; no new block is taken (churn cannot exhaust the blocks).
 */
static void
test_ctr_reused(void **state)
{
	char csv[] = "/tmp/test_shaper_XXXXXX.csv";
	int fd = mkstemps(csv, 4);
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	struct sky_subs *subs;
	struct sim s = {0};
	struct sky_sub_info info;
	struct sky_shaper_stats st;
	struct sky_shaper_ctr_pool cp;
	uint32_t idx;
	static const char rows[] = "id,ipv4,ipv6,plan,beam,country\n"
				   "1,100.64.0.1,,basic,b1,DE\n2,100.64.0.2,,gold,b1,FR\n";

	(void)state;
	assert_true(fd >= 0);
	assert_true(write(fd, rows, sizeof(rows) - 1) == (ssize_t)sizeof(rows) - 1);
	close(fd);
	cfg = model_cfg(csv, "100Mbit");
	subs = sky_subs_create(cfg, 1, &err);
	if (subs == NULL)
		fail_msg("subs: %s", err.msg);
	s.sh = sky_shaper_create(cfg, subs, 1, 1, &err);
	if (s.sh == NULL)
		fail_msg("shaper: %s", err.msg);
	cur_sh = s.sh;
	s.tsc_per_ns = (double)sky_rt.tsc_hz / 1e9;
	s.now = 1000 * SEC;
	assert_int_equal(sky_subs_register(subs), 0);
	assert_int_equal(sky_shaper_register(s.sh), 0);
	assert_int_equal(sky_subs_get(subs, 2, &info), 0);
	idx = info.idx;

	/* class 1 queues 512 per flow queue: 88 of 600 are tail drops */
	assert_int_equal(offer(&s, 0, idx, 1, 0, 1, 1000, 600), 512);
	assert_int_equal(sky_shaper_sub_stats(s.sh, idx, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 88);
	assert_int_equal(st.cls_tail[1], 88);
	assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp), 0);
	assert_int_equal(cp.blocks_in_use, 1);

	assert_true(ctl_ok("subscriber del 2", NULL));
	assert_int_equal(sky_shaper_sub_stats(s.sh, idx, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 0);
	assert_int_equal(st.cls_tail[1], 0);
	/* his queued packets still leave (in 10 ms steps: max_delay is 100 ms) */
	for (int i = 0; i < 100; i++) {
		s.now += 10 * MS;
		drain(&s, 0);
	}
	assert_int_equal(s.sent_pkts[idx], 512);

	assert_true(ctl_ok("subscriber add 3 ipv4=100.64.0.3 plan=gold beam=b1 country=DE", NULL));
	assert_int_equal(sky_subs_get(subs, 3, &info), 0);
	assert_int_equal(info.idx, idx);
	assert_int_equal(offer(&s, 0, idx, 1, 0, 1, 1000, 600), 512);
	assert_int_equal(sky_shaper_sub_stats(s.sh, idx, &st), 0);
	assert_int_equal(st.ctr[SKY_SHAPER_DROP_TAIL], 88);
	assert_int_equal(st.cls_tail[1], 88);
	assert_int_equal(sky_shaper_ctr_pool(s.sh, 0, &cp), 0);
	assert_int_equal(cp.blocks_in_use, 1);
	assert_int_equal(cp.misses, 0);

	sim_end(&s);
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_periodic_clear();
	sky_subs_destroy(subs);
	sky_cfg_free(cfg);
	unlink(csv);
}

static int
test_teardown(void **state)
{
	(void)state;
	if (cur_sh != NULL)
		sky_shaper_destroy(cur_sh);
	cur_sh = NULL;
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	if (sky_fx_eal_start("test_shaper", &(struct sky_fx_eal){.pool_mbufs = POOL,
								 .pool_cache = 256,
								 .pool_data_room = 256}) < 0)
		return -1;
	mp = sky_fx_pool;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sky_fx_eal_stop();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_config_refused, test_teardown),
		cmocka_unit_test_teardown(test_rates_refused, test_teardown),
		cmocka_unit_test_teardown(test_config_accepted, test_teardown),
		cmocka_unit_test_teardown(test_tail_drop_counted, test_teardown),
		cmocka_unit_test_teardown(test_slot_pool, test_teardown),
		cmocka_unit_test_teardown(test_ctr_blocks, test_teardown),
		cmocka_unit_test_teardown(test_ctr_workers, test_teardown),
		cmocka_unit_test_teardown(test_ctr_reused, test_teardown),
		cmocka_unit_test_teardown(test_worker_buffer_limit, test_teardown),
		cmocka_unit_test_teardown(test_single_sub_rate, test_teardown),
		cmocka_unit_test_teardown(test_beam_cap, test_teardown),
		cmocka_unit_test_teardown(test_two_beams, test_teardown),
		cmocka_unit_test_teardown(test_weighted_fair, test_teardown),
		cmocka_unit_test_teardown(test_max_min, test_teardown),
		cmocka_unit_test_teardown(test_priority_latency, test_teardown),
		cmocka_unit_test_teardown(test_class_weights, test_teardown),
		cmocka_unit_test_teardown(test_codel, test_teardown),
		cmocka_unit_test_teardown(test_red, test_teardown),
		cmocka_unit_test_teardown(test_unknown_aggregate, test_teardown),
		cmocka_unit_test_teardown(test_police, test_teardown),
		cmocka_unit_test_teardown(test_runtime_change, test_teardown),
		cmocka_unit_test_teardown(test_multi_worker, test_teardown),
		cmocka_unit_test_teardown(test_sub_moves_while_backlogged, test_teardown),
		cmocka_unit_test_teardown(test_model, test_teardown),
		cmocka_unit_test_teardown(test_flow_pool, test_teardown),
		cmocka_unit_test_teardown(test_flow_fairness, test_teardown),
		cmocka_unit_test_teardown(test_sparse_flow, test_teardown),
		cmocka_unit_test_teardown(test_max_delay, test_teardown),
		cmocka_unit_test_teardown(test_flow_rate_change, test_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
