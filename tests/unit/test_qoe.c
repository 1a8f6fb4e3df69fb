/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qoe unit tests. Time is a parameter (microseconds): nothing sleeps. Failure cases first
 * (config keys and values, bad parameters, refused samples, a full table), then the
 * figures: window roll, percentiles against a sorted reference, the min window,
 * retransmission shares, grade boundaries, the worst-first ranking, and the views the
 * commands give (subscriber show / top by=rtt|retrans, beam show) over a real subscriber
 * model.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <rte_cycles.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/flow.h"
#include "skygate/qoe.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"

#include "fixture.h"

#define S 1000000ull /* one second in microseconds */
#define MS 1000u

static struct sky_qoe *
mk(uint32_t max_subs, uint32_t n_idx, unsigned int n_beams)
{
	struct sky_qoe_params p;
	char err[256] = "";
	struct sky_qoe *q;

	sky_qoe_params_default(&p);
	p.max_subs = max_subs;
	q = sky_qoe_create_params(&p, NULL, n_idx, n_beams, err, sizeof(err));
	if (q == NULL)
		fail_msg("create: %s", err);
	return q;
}

static struct sky_rtt_sample
smp(uint32_t idx, uint16_t beam, unsigned int half, uint32_t rtt_us)
{
	struct sky_rtt_sample s = {.sub_idx = idx,
				   .sub_id = idx + 1000,
				   .beam = beam,
				   .half = (uint8_t)half,
				   .kind = SKY_RTT_TCP_TS,
				   .rtt_us = rtt_us};
	return s;
}

/* --- config: failures first ------------------------------------------------------------------ */

static const struct {
	const char *yaml;
	const char *want; /* substring of the error */
} bad_cfgs[] = {
	{"qoe: { windw: 60s }\n", "q.yaml:1: qoe.windw: unknown key"},
	{"qoe: { window: 5s }\n", "qoe.window: must be 6s..1h"},
	{"qoe: { window: 61m }\n", "qoe.window: must be 6s..1h"},
	{"qoe: { window: 60s, min_window: 30s }\n", "qoe.min_window: min_window must be"},
	{"qoe: { window: 10m }\n", "qoe.window: min_window must be"},
	{"qoe: { subscribers: 0 }\n", "qoe.subscribers"},
	{"qoe: { subscribers: 99999999 }\n", "qoe.subscribers"},
	{"qoe: { enabled: maybe }\n", "qoe.enabled"},
	{"qoe: { per_subscriber_metrics: 2 }\n", "qoe.per_subscriber_metrics"},
	{"qoe: { grade: { latency: 1s } }\n", "qoe.grade.latency: unknown key"},
	{"qoe: { grade: { latency_good: 2s, latency_bad: 1s } }\n",
	 "qoe.grade.latency_bad: latency_bad must be above latency_good"},
	{"qoe: { grade: { latency_good: 0ms } }\n", "qoe.grade.latency_good: must be 1us..60s"},
	{"qoe: { grade: { loss_good: 1 } }\n", "qoe.grade.loss_good: bad share '1'"},
	{"qoe: { grade: { loss_good: 0.125% } }\n", "qoe.grade.loss_good: bad share"},
	{"qoe: { grade: { loss_bad: 101% } }\n", "qoe.grade.loss_bad: bad share"},
	{"qoe: { grade: { loss_bad: -1% } }\n", "qoe.grade.loss_bad: bad share"},
	{"qoe: { grade: { loss_good: 5%, loss_bad: 5% } }\n", "loss_bad must be above loss_good"},
	{"qoe: { grade: { min_samples: 0 } }\n", "qoe.grade.min_samples"},
	{"flows: { rtt: sometimes }\nqoe: {}\n", "flows.rtt"},
};

static void
test_cfg_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cfgs) / sizeof(bad_cfgs[0]); i++) {
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg = sky_cfg_load_string("q.yaml", bad_cfgs[i].yaml, &err);
		struct sky_qoe_params p;

		assert_non_null(cfg);
		if (sky_qoe_parse(cfg, &p, &err) == 0)
			fail_msg("accepted: %s", bad_cfgs[i].yaml);
		if (strstr(err.msg, bad_cfgs[i].want) == NULL)
			fail_msg("%s: got '%s', want '%s'", bad_cfgs[i].yaml, err.msg,
				 bad_cfgs[i].want);
		sky_cfg_free(cfg);
	}
}

static void
test_cfg_good(void **state)
{
	static const struct {
		const char *yaml;
		bool enabled;
		uint64_t window_us;
		uint32_t loss_good_bp, loss_bad_bp, lat_bad_us, max_subs;
	} t[] = {
		/* no flow table, or its RTT off: qoe is off whatever it says */
		{"qoe: { window: 30s }\n", false, 30 * S, 10, 500, 2000000, 4096},
		{"flows: { rtt: false }\nqoe: {}\n", false, 60 * S, 10, 500, 2000000, 4096},
		{"flows: { entries: 1024 }\n", true, 60 * S, 10, 500, 2000000, 4096},
		{"flows: { rtt: true }\nqoe: { enabled: false }\n", false, 60 * S, 10, 500, 2000000,
		 4096},
		{"flows: {}\nqoe: { window: 2m, min_window: 10m, subscribers: 100, grade: { "
		 "loss_good: 0.05%, loss_bad: 2.5%, latency_bad: 1500ms } }\n",
		 true, 120 * S, 5, 250, 1500000, 100},
		{"flows:\nqoe: { grade: { loss_good: 0%, loss_bad: 100% } }\n", true, 60 * S, 0,
		 10000, 2000000, 4096},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg = sky_cfg_load_string("q.yaml", t[i].yaml, &err);
		struct sky_qoe_params p;

		assert_non_null(cfg);
		if (sky_qoe_parse(cfg, &p, &err) < 0)
			fail_msg("%s: %s", t[i].yaml, err.msg);
		assert_int_equal(p.enabled, t[i].enabled);
		assert_int_equal(p.window_us, t[i].window_us);
		assert_int_equal(p.loss_good_bp, t[i].loss_good_bp);
		assert_int_equal(p.loss_bad_bp, t[i].loss_bad_bp);
		assert_int_equal(p.lat_bad_us, t[i].lat_bad_us);
		assert_int_equal(p.max_subs, t[i].max_subs);
		sky_cfg_free(cfg);
	}
}

/* the defaults every skygate config gets (sky_cfg_defaults) are valid and the documented */
static void
test_cfg_defaults(void **state)
{
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg = sky_cfg_load_string("d.yaml", "flows: {}\n", &err);
	struct sky_qoe_params p, d;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(sky_cfg_merge_defaults(cfg, sky_cfg_defaults, &err), 0);
	assert_int_equal(sky_qoe_parse(cfg, &p, &err), 0);
	sky_qoe_params_default(&d);
	assert_memory_equal(&p, &d, sizeof(p));
	sky_cfg_free(cfg);
}

enum { F_WINDOW, F_MIN_WINDOW, F_SUBS, F_LAT, F_LOSS, F_BEAMS };

static void
test_create_bad(void **state)
{
	static const struct {
		int field;
		const char *want;
	} t[] = {
		{F_WINDOW, "qoe.window"},    {F_MIN_WINDOW, "qoe.min_window"},
		{F_SUBS, "qoe.subscribers"}, {F_LAT, "latency_good"},
		{F_LOSS, "loss_bad"},	     {F_BEAMS, "beams"},
	};
	struct sky_qoe_params p;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned int beams = 1;

		sky_qoe_params_default(&p);
		switch (t[i].field) {
		case F_WINDOW:
			p.window_us = 5 * S;
			break;
		case F_MIN_WINDOW:
			p.min_window_us = 10 * S;
			break;
		case F_SUBS:
			p.max_subs = 0;
			break;
		case F_LAT:
			p.lat_good_us = p.lat_bad_us;
			break;
		case F_LOSS:
			p.loss_bad_bp = 10001;
			break;
		default:
			beams = SKY_MAX_BEAMS + 1;
		}
		err[0] = '\0';
		assert_null(sky_qoe_create_params(&p, NULL, 10, beams, err, sizeof(err)));
		if (strstr(err, t[i].want) == NULL)
			fail_msg("case %zu: got '%s', want '%s'", i, err, t[i].want);
	}
	/* disabled: a valid object that takes nothing in */
	sky_qoe_params_default(&p);
	p.enabled = false;
	{
		struct sky_qoe *q = sky_qoe_create_params(&p, NULL, 10, 1, err, sizeof(err));
		struct sky_rtt_sample s = smp(1, 0, SKY_RTT_SAT, 5000);
		struct sky_qoe_stats st;
		struct sky_qoe_view v;

		assert_non_null(q);
		assert_false(sky_qoe_enabled(q));
		sky_qoe_add(q, &s, 1 * S);
		sky_qoe_stats(q, &st);
		assert_int_equal(st.samples, 0);
		assert_int_equal(sky_qoe_sub(q, 1, 1 * S, &v), -ENOENT);
		assert_int_equal(sky_qoe_memory(q), 0);
		sky_qoe_destroy(q);
	}
}

/* samples out of range are counted and change nothing */
static void
test_bad_samples(void **state)
{
	struct sky_qoe *q = mk(8, 10, 2);
	struct sky_rtt_sample s[3] = {smp(10, 0, SKY_RTT_SAT, 5000), smp(1, 2, SKY_RTT_SAT, 5000),
				      smp(1, 0, 2, 5000)};
	struct sky_qoe_stats st;
	struct sky_qoe_view v;

	(void)state;
	for (int i = 0; i < 3; i++)
		sky_qoe_add(q, &s[i], 1 * S);
	sky_qoe_stats(q, &st);
	assert_int_equal(st.bad, 3);
	assert_int_equal(st.samples, 0);
	assert_int_equal(st.active, 0);
	assert_int_equal(sky_qoe_sub(q, 1, 1 * S, &v), -ENOENT);
	assert_int_equal(sky_qoe_beam(q, 2, 1 * S, &v), -EINVAL);
	assert_int_equal(sky_qoe_beam(q, 0, 1 * S, &v), 0);
	assert_int_equal(v.half[0].samples, 0);
	sky_qoe_destroy(q);
}

/* a full table: new subscribers are dropped and counted until an entry has been idle for
 * a whole window; a removed subscriber frees its entry at once */
static void
test_table_full(void **state)
{
	struct sky_qoe *q = mk(4, 100, 1);
	struct sky_qoe_stats st;
	struct sky_qoe_view v;
	struct sky_rtt_sample s;

	(void)state;
	for (uint32_t i = 0; i < 4; i++) {
		s = smp(i, 0, SKY_RTT_SAT, 5000 + i);
		sky_qoe_add(q, &s, 1 * S + i);
	}
	s = smp(50, 0, SKY_RTT_SAT, 7000);
	sky_qoe_add(q, &s, 2 * S);
	sky_qoe_stats(q, &st);
	assert_int_equal(st.active, 4);
	assert_int_equal(st.table_full, 1);
	assert_int_equal(sky_qoe_sub(q, 50, 2 * S, &v), -ENOENT);
	/* the beam still counts what the table could not keep */
	assert_int_equal(sky_qoe_beam(q, 0, 2 * S, &v), 0);
	assert_int_equal(v.half[0].samples, 5);
	/* subscriber 3 stays busy; 0..2 go idle; a window later 50 takes one of them */
	s = smp(3, 0, SKY_RTT_SAT, 5003);
	sky_qoe_add(q, &s, 50 * S);
	s = smp(50, 0, SKY_RTT_SAT, 7000);
	sky_qoe_add(q, &s, 60 * S); /* 0..2 idle 59 s: not yet */
	sky_qoe_stats(q, &st);
	assert_int_equal(st.table_full, 2);
	sky_qoe_add(q, &s, 61 * S + 1);
	sky_qoe_stats(q, &st);
	assert_int_equal(st.table_full, 2);
	assert_int_equal(st.taken_over, 1);
	assert_int_equal(st.active, 4);
	assert_int_equal(sky_qoe_sub(q, 50, 61 * S + 1, &v), 0);
	assert_int_equal(v.half[0].samples, 1);
	assert_int_equal(v.half[0].min_us, 7000);
	assert_int_equal(sky_qoe_sub(q, 3, 61 * S + 1, &v), 0);
	/* exactly one of 0..2 lost its entry */
	{
		int gone = 0;

		for (uint32_t i = 0; i < 3; i++)
			gone += sky_qoe_sub(q, i, 61 * S + 1, &v) == -ENOENT;
		assert_int_equal(gone, 1);
	}
	sky_qoe_destroy(q);
}

/* the subscriber index given to another subscriber (another id): its figures start over */
static void
test_index_reused(void **state)
{
	struct sky_qoe *q = mk(4, 10, 1);
	struct sky_rtt_sample s = smp(2, 0, SKY_RTT_INET, 30000);
	struct sky_qoe_view v;

	(void)state;
	sky_qoe_add(q, &s, 1 * S);
	s.sub_id = 77;
	s.rtt_us = 40000;
	sky_qoe_add(q, &s, 2 * S);
	assert_int_equal(sky_qoe_sub(q, 2, 2 * S, &v), 0);
	assert_int_equal(v.sub_id, 77);
	assert_int_equal(v.half[1].samples, 1);
	assert_int_equal(v.half[1].min_us, 40000);
	sky_qoe_destroy(q);
}

/* --- figures --------------------------------------------------------------------------------- */

static void
test_bins(void **state)
{
	(void)state;
	for (unsigned int sb = 3; sb <= 4; sb++) {
		unsigned int prev = 0;

		assert_int_equal(sky_qoe_bin_lo(0, sb), 0);
		for (uint64_t v = 0; v < (1ull << 24); v += 1 + v / 97) {
			unsigned int b = sky_qoe_bin((uint32_t)v, sb);

			assert_true(b >= prev);
			assert_true(b < (16u << sb));
			assert_true(sky_qoe_bin_lo(b, sb) <= v);
			assert_true(sky_qoe_bin_hi(b, sb) >= v);
			/* a bin is at most 1/2^sb of its lower bound wide (above the linear part)
			 */
			if (v >= 256 && b < (16u << sb) - 1)
				assert_true(sky_qoe_bin_hi(b, sb) - sky_qoe_bin_lo(b, sb) + 1 <=
					    (sky_qoe_bin_lo(b, sb) >> sb));
			prev = b;
		}
		assert_int_equal(sky_qoe_bin(UINT32_MAX, sb), (16u << sb) - 1);
		assert_int_equal(sky_qoe_bin_hi((16u << sb) - 1, sb), UINT32_MAX);
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* nearest rank of pct in sorted a[n] */
static uint32_t
ref_pct(const uint32_t *a, unsigned int n, unsigned int pct)
{
	unsigned int r = (pct * n + 99) / 100;

	return a[r == 0 ? 0 : r - 1];
}

static void
check_pct(uint32_t got, uint32_t ref, unsigned int sb, const char *what, unsigned int pct)
{
	unsigned int b = sky_qoe_bin(ref, sb);

	if (got < sky_qoe_bin_lo(b, sb) || got > sky_qoe_bin_hi(b, sb))
		fail_msg("%s p%u: %u, the reference %u is in [%u, %u]", what, pct, got, ref,
			 sky_qoe_bin_lo(b, sb), sky_qoe_bin_hi(b, sb));
}

/* percentiles of the subscriber's and the beam's window against a sorted reference */
static void
test_percentiles(void **state)
{
	static const struct {
		const char *name;
		unsigned int n;
		uint32_t base, spread; /* uniform in [base, base + spread) */
		uint32_t tail;	       /* every 20th sample this much higher */
	} t[] = {
		{"one sample", 1, 520000, 1, 0},
		{"GEO steady", 400, 540000, 20000, 0},
		{"GEO with queueing tail", 1000, 540000, 5000, 300000},
		{"LEO", 333, 25000, 15000, 0},
		{"internet short", 250, 100, 4000, 0},
		{"beyond the last bin", 50, 9000000, 3000000, 0},
	};
	uint32_t a[1000];

	(void)state;
	srand(16);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sky_qoe *q = mk(4, 10, 1);
		struct sky_qoe_view v, bv;
		uint32_t mn = UINT32_MAX, mx = 0;

		for (unsigned int k = 0; k < t[i].n; k++) {
			struct sky_rtt_sample s;

			a[k] = t[i].base + (uint32_t)rand() % t[i].spread +
			       (k % 20 == 19 ? t[i].tail : 0);
			s = smp(3, 0, SKY_RTT_SAT, a[k]);
			/* spread over the whole window: every slot holds some */
			sky_qoe_add(q, &s, 100 * S + (uint64_t)k * 59 * S / t[i].n);
			mn = a[k] < mn ? a[k] : mn;
			mx = a[k] > mx ? a[k] : mx;
		}
		qsort(a, t[i].n, sizeof(a[0]), cmp_u32);
		assert_int_equal(sky_qoe_sub(q, 3, 159 * S, &v), 0);
		assert_int_equal(sky_qoe_beam(q, 0, 159 * S, &bv), 0);
		assert_int_equal(v.half[SKY_RTT_SAT].samples, t[i].n);
		assert_int_equal(v.half[SKY_RTT_INET].samples, 0);
		assert_int_equal(v.half[SKY_RTT_SAT].min_us, mn);
		assert_int_equal(v.half[SKY_RTT_SAT].max_us, mx);
		assert_int_equal(bv.half[SKY_RTT_SAT].min_us, mn);
		if (t[i].base >= 8388608) {
			/* the last bin: the window's max */
			assert_int_equal(v.half[0].p50_us, mx);
			sky_qoe_destroy(q);
			continue;
		}
		check_pct(v.half[0].p50_us, ref_pct(a, t[i].n, 50), 3, t[i].name, 50);
		check_pct(v.half[0].p95_us, ref_pct(a, t[i].n, 95), 3, t[i].name, 95);
		check_pct(v.half[0].p99_us, ref_pct(a, t[i].n, 99), 3, t[i].name, 99);
		check_pct(bv.half[0].p50_us, ref_pct(a, t[i].n, 50), 4, t[i].name, 50);
		check_pct(bv.half[0].p95_us, ref_pct(a, t[i].n, 95), 4, t[i].name, 95);
		check_pct(bv.half[0].p99_us, ref_pct(a, t[i].n, 99), 4, t[i].name, 99);
		assert_true(v.half[0].p50_us <= v.half[0].p95_us);
		assert_true(v.half[0].p95_us <= v.half[0].p99_us);
		assert_true(v.half[0].p99_us <= v.half[0].max_us);
		assert_true(v.half[0].p50_us >= mn);
		sky_qoe_destroy(q);
	}
}

/* samples leave the window slot by slot; the min stays for the min window */
static void
test_window_roll(void **state)
{
	static const struct {
		uint64_t at;	  /* view time */
		unsigned int n;	  /* samples in the window */
		uint32_t max;	  /* their max */
		uint32_t min;	  /* min over the min window */
		uint64_t segs_up; /* segments in the window */
	} t[] = {
		/* slots are 10 s: [0,10) [10,20) ... samples at 5 s (300 ms), 15 s (600 ms),
		 * 55 s (400 ms) */
		{56 * S, 3, 600000, 300000, 30},
		{59 * S + 999999, 3, 600000, 300000, 30},
		{60 * S, 2, 600000, 300000, 20}, /* slot [0,10) left */
		{69 * S, 2, 600000, 300000, 20},
		{70 * S, 1, 400000, 300000, 10}, /* [10,20) left */
		{109 * S + 999999, 1, 400000, 300000, 10},
		{110 * S, 0, 0, 300000, 0}, /* [50,60) left: empty; the min stays */
		{299 * S, 0, 0, 300000, 0},
		{300 * S, 0, 0, 400000, 0}, /* min slot [0,50) left: 5 s and 15 s went */
		{350 * S, 0, 0, 0, 0},	    /* everything left */
		{10000 * S, 0, 0, 0, 0},
	};
	static const uint64_t when[3] = {5 * S, 15 * S, 55 * S};
	static const uint32_t rtt[3] = {300000, 600000, 400000};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sky_qoe *q = mk(4, 10, 1);
		struct sky_qoe_view v;

		for (int k = 0; k < 3; k++) {
			struct sky_rtt_sample s = smp(1, 0, SKY_RTT_SAT, rtt[k]);

			s.segs[SKY_DIR_UP] = 10;
			sky_qoe_add(q, &s, when[k]);
		}
		assert_int_equal(sky_qoe_sub(q, 1, t[i].at, &v), 0);
		if (v.half[0].samples != t[i].n || v.half[0].max_us != t[i].max ||
		    v.half[0].min_us != t[i].min || v.segs[0] != t[i].segs_up)
			fail_msg("at %llu us: samples %u max %u min %u segs %llu, want %u %u %u "
				 "%llu",
				 (unsigned long long)t[i].at, v.half[0].samples, v.half[0].max_us,
				 v.half[0].min_us, (unsigned long long)v.segs[0], t[i].n, t[i].max,
				 t[i].min, (unsigned long long)t[i].segs_up);
		/* the beam keeps the same window */
		assert_int_equal(sky_qoe_beam(q, 0, t[i].at, &v), 0);
		assert_int_equal(v.half[0].samples, t[i].n);
		assert_int_equal(v.half[0].min_us, t[i].min);
		sky_qoe_destroy(q);
	}
}

/* retransmission shares per direction, from counts-only samples and RTT samples alike */
static void
test_retrans_share(void **state)
{
	static const struct {
		uint32_t segs[2], retrans[2]; /* per sample, 10 samples */
		uint32_t bp[2];
	} t[] = {
		{{0, 0}, {0, 0}, {0, 0}},	  {{100, 0}, {0, 0}, {0, 0}},
		{{100, 200}, {1, 0}, {100, 0}},	  {{100, 200}, {2, 10}, {200, 500}},
		{{7, 3}, {7, 3}, {10000, 10000}}, {{3, 0}, {1, 0}, {3333, 0}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sky_qoe *q = mk(4, 10, 1);
		struct sky_qoe_view v;
		struct sky_qoe_stats st;

		for (int k = 0; k < 10; k++) {
			struct sky_rtt_sample s = smp(4, 0, SKY_RTT_INET, k % 2 ? 20000 : 0);

			memcpy(s.segs, t[i].segs, sizeof(s.segs));
			memcpy(s.retrans, t[i].retrans, sizeof(s.retrans));
			sky_qoe_add(q, &s, 10 * S + (uint64_t)k * S);
		}
		sky_qoe_stats(q, &st);
		assert_int_equal(st.samples, 5);
		assert_int_equal(st.counts_only, 5);
		assert_int_equal(sky_qoe_sub(q, 4, 20 * S, &v), 0);
		for (int d = 0; d < 2; d++) {
			assert_int_equal(v.segs[d], 10ull * t[i].segs[d]);
			assert_int_equal(v.retrans[d], 10ull * t[i].retrans[d]);
			if (v.retrans_bp[d] != t[i].bp[d])
				fail_msg("case %zu dir %d: %u bp, want %u", i, d, v.retrans_bp[d],
					 t[i].bp[d]);
		}
		assert_int_equal(v.half[SKY_RTT_INET].samples, 5);
		assert_int_equal(sky_qoe_beam(q, 0, 20 * S, &v), 0);
		assert_int_equal(v.retrans_bp[0], t[i].bp[0]);
		assert_int_equal(v.retrans_bp[1], t[i].bp[1]);
		sky_qoe_destroy(q);
	}
}

/* the grade at and around its boundaries (defaults: latency 100 ms..2 s, loss 0.1 %..5 %) */
static void
test_grade(void **state)
{
	static const struct {
		uint32_t n_sat, n_inet;
		uint32_t p95_sat, p95_inet;
		uint32_t loss_up, loss_down; /* bp */
		int score;
		char grade;
	} t[] = {
		{0, 0, 0, 0, 0, 0, -1, '-'},	      /* nothing measured */
		{2, 2, 10000, 10000, 0, 0, -1, '-'},  /* below min_samples (5) */
		{5, 0, 10000, 0, 0, 0, 100, 'A'},     /* one half is enough */
		{3, 2, 50000, 50000, 0, 0, 100, 'A'}, /* 100 ms: latency_good */
		{3, 2, 50000, 50001, 0, 0, 99, 'A'},  /* just above */
		{3, 2, 200000, 90000, 0, 0, 90, 'A'}, /* 290 ms: 90 */
		{3, 2, 200000, 90001, 0, 0, 89, 'B'},
		{3, 2, 500000, 75000, 0, 0, 75, 'B'}, /* 575 ms */
		{3, 2, 500000, 75001, 0, 0, 74, 'C'},
		{3, 2, 1000000, 50000, 0, 0, 50, 'C'}, /* 1050 ms */
		{3, 2, 1000000, 50001, 0, 0, 49, 'D'},
		{3, 2, 1500000, 25000, 0, 0, 25, 'D'}, /* 1525 ms */
		{3, 2, 1500000, 25001, 0, 0, 24, 'F'},
		{3, 2, 1990000, 10000, 0, 0, 0, 'F'}, /* 2 s: latency_bad */
		{3, 2, 5000000, 10000, 0, 0, 0, 'F'},
		{3, 2, 10000, 10000, 10, 0, 100, 'A'}, /* loss 0.1 %: loss_good */
		{3, 2, 10000, 10000, 0, 500, 0, 'F'},  /* loss 5 %: loss_bad */
		{3, 2, 10000, 10000, 0, 255, 50, 'C'}, /* (500-255)/490 */
		{3, 2, 10000, 10000, 59, 11, 90, 'A'}, /* the larger direction counts */
		{3, 2, 500000, 75000, 59, 0, 75, 'B'}, /* the worse figure decides */
		{3, 2, 200000, 90000, 255, 0, 50, 'C'},
	};
	struct sky_qoe_params p;

	(void)state;
	sky_qoe_params_default(&p);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sky_qoe_view v;
		int score;
		char g;

		memset(&v, 0, sizeof(v));
		v.half[0].samples = t[i].n_sat;
		v.half[1].samples = t[i].n_inet;
		v.half[0].p95_us = t[i].p95_sat;
		v.half[1].p95_us = t[i].p95_inet;
		v.retrans_bp[0] = t[i].loss_up;
		v.retrans_bp[1] = t[i].loss_down;
		sky_qoe_grade(&p, &v, &score, &g);
		if (score != t[i].score || g != t[i].grade)
			fail_msg("case %zu: %d %c, want %d %c", i, score, g, t[i].score,
				 t[i].grade);
	}
}

/* worst first: by latency (p95 sat + p95 inet), by retransmission share */
static void
test_worst(void **state)
{
	struct sky_qoe *q = mk(16, 16, 1);
	uint32_t idx[8];
	unsigned int n;

	(void)state;
	for (uint32_t i = 0; i < 6; i++) {
		struct sky_rtt_sample s = smp(i, 0, SKY_RTT_SAT, 20000 + 100000 * ((i * 7) % 6));

		s.segs[SKY_DIR_DOWN] = 1000;
		s.retrans[SKY_DIR_DOWN] = i * 10;
		sky_qoe_add(q, &s, 5 * S);
	}
	{
		/* counts only: no latency figure, but a share */
		struct sky_rtt_sample s = smp(9, 0, SKY_RTT_SAT, 0);

		s.segs[SKY_DIR_UP] = 100;
		s.retrans[SKY_DIR_UP] = 90;
		sky_qoe_add(q, &s, 5 * S);
	}
	n = sky_qoe_worst(q, 0, 6 * S, idx, 3);
	assert_int_equal(n, 3);
	/* (i*7)%6 = i%6: 5 > 4 > 3 */
	assert_int_equal(idx[0], 5);
	assert_int_equal(idx[1], 4);
	assert_int_equal(idx[2], 3);
	n = sky_qoe_worst(q, 0, 6 * S, idx, 8);
	assert_int_equal(n, 6); /* 9 has no RTT */
	n = sky_qoe_worst(q, 1, 6 * S, idx, 8);
	assert_int_equal(n, 7);
	assert_int_equal(idx[0], 9);
	assert_int_equal(idx[1], 5);
	/* a window later nobody has figures */
	assert_int_equal(sky_qoe_worst(q, 0, 200 * S, idx, 8), 0);
	sky_qoe_destroy(q);
}

/* --- the views over a real subscriber model -------------------------------------------------- */

static json_t *
run(const char *line)
{
	char buf[512], *argv[SKY_CTL_MAX_ARGS], *save = NULL;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	return sky_ctl_dispatch_argv(argc, argv, 0, 0, 0);
}

static json_t *
ok(const char *line)
{
	json_t *r = run(line);

	if (!json_is_true(json_object_get(r, "ok")))
		fail_msg("%s: %s", line, json_string_value(json_object_get(r, "error")));
	return r;
}

static json_int_t
geti(json_t *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *w = strtok_r(buf, ".", &save); w; w = strtok_r(NULL, ".", &save))
		o = json_object_get(o, w);
	if (!json_is_integer(o))
		fail_msg("%s: not an integer", path);
	return json_integer_value(o);
}

static void
test_views(void **state)
{
	const char *csv = sky_fx_file("q.csv", SKY_FX_SUBS_CSV);
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	struct sky_subs *subs;
	struct sky_qoe *q;
	struct sky_sub_info in1, in2;
	uint64_t t0 = rte_rdtsc(), hz = rte_get_tsc_hz();
	json_t *r, *arr;
	char *text;
	size_t len;

	(void)state;
	assert_non_null(csv);
	cfg = sky_fx_cfg("v.yaml", &err,
			 "subscribers: { file: %s }\n" SKY_FX_MODEL
			 "flows: {}\nqoe: { per_subscriber_metrics: true }\n",
			 csv);
	assert_non_null(cfg);
	subs = sky_subs_create(cfg, 1, &err);
	if (subs == NULL)
		fail_msg("%s", err.msg);
	q = sky_qoe_create(cfg, subs, &err);
	if (q == NULL)
		fail_msg("%s", err.msg);
	assert_int_equal(sky_subs_register(subs), 0);
	assert_int_equal(sky_qoe_register(q), 0);
	assert_int_equal(sky_subs_get(subs, 1, &in1), 0);
	assert_int_equal(sky_subs_get(subs, 2, &in2), 0);

	/* failures first: an ordering nobody registered; a subscriber without figures */
	r = run("subscriber top by=latency");
	assert_false(json_is_true(json_object_get(r, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")),
			       "'latency': unknown figure (by=bytes, rtt, retrans)"));
	json_decref(r);
	r = ok("subscriber show 3");
	assert_true(json_is_null(json_object_get(json_object_get(r, "result"), "rtt")));
	json_decref(r);

	/* subscriber 1 (beam1): GEO-like satellite half 560 ms, internet 30 ms, 2 % of its
	 * downstream segments retransmitted; subscriber 2 (beam2): LEO-like 40 ms, 0 % */
	for (int k = 0; k < 20; k++) {
		struct sky_rtt_sample s1 = {.sub_idx = in1.idx,
					    .sub_id = 1,
					    .beam = in1.beam,
					    .half = SKY_RTT_SAT,
					    .rtt_us = 560000 + (uint32_t)k * 100};
		struct sky_rtt_sample s2 = s1;
		uint64_t now = t0 + (uint64_t)k * hz / 1000;

		s2.sub_idx = in2.idx;
		s2.sub_id = 2;
		s2.beam = in2.beam;
		s2.rtt_us = 40000;
		s2.segs[SKY_DIR_DOWN] = 50;
		s1.segs[SKY_DIR_DOWN] = 50;
		s1.retrans[SKY_DIR_DOWN] = k % 2 ? 2 : 0;
		sky_qoe_on_rtt(q, &s1, now);
		sky_qoe_on_rtt(q, &s2, now);
		s1.half = SKY_RTT_INET;
		s1.rtt_us = 30000;
		s1.segs[SKY_DIR_DOWN] = s1.retrans[SKY_DIR_DOWN] = 0;
		sky_qoe_on_rtt(q, &s1, now);
	}
	r = ok("subscriber show 1");
	{
		json_t *rt = json_object_get(json_object_get(r, "result"), "rtt");

		assert_int_equal(geti(rt, "satellite.samples"), 20);
		assert_int_equal(geti(rt, "satellite.min_us"), 560000);
		assert_int_equal(geti(rt, "internet.min_us"), 30000);
		assert_int_equal(geti(rt, "internet.samples"), 20);
		assert_int_equal(geti(rt, "retrans.down.segments"), 1000);
		assert_int_equal(geti(rt, "retrans.down.retransmitted"), 20);
		assert_true(json_real_value(json_object_get(
				    json_object_get(json_object_get(rt, "retrans"), "down"),
				    "share")) == 0.02);
		/* latency 560 + 30 ms: 74; loss 2 %: (500 - 200) / 490: 61 */
		assert_int_equal(geti(rt, "score"), 61);
		assert_string_equal(json_string_value(json_object_get(rt, "grade")), "C");
	}
	json_decref(r);
	r = ok("subscriber top by=rtt size=5");
	arr = json_object_get(json_object_get(r, "result"), "subscribers");
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(geti(json_array_get(arr, 0), "id"), 1);
	assert_int_equal(geti(json_array_get(arr, 0), "rtt.sat_min_us"), 560000);
	assert_int_equal(geti(json_array_get(arr, 1), "id"), 2);
	assert_int_equal(geti(json_array_get(arr, 1), "rtt.sat_p95_us"), 40000);
	json_decref(r);
	r = ok("subscriber top --by retrans");
	arr = json_object_get(json_object_get(r, "result"), "subscribers");
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(geti(json_array_get(arr, 0), "id"), 1);
	json_decref(r);
	r = ok("beam show beam2");
	assert_int_equal(geti(json_object_get(r, "result"), "rtt.satellite.p50_us"), 40000);
	assert_int_equal(geti(json_object_get(r, "result"), "rtt.internet.samples"), 0);
	json_decref(r);
	r = ok("qoe show");
	assert_int_equal(geti(json_object_get(r, "result"), "samples"), 60);
	assert_int_equal(geti(json_object_get(r, "result"), "subscribers"), 2);
	json_decref(r);

	text = sky_metrics_render(&len);
	assert_non_null(text);
	assert_non_null(strstr(text, "skygate_beam_rtt_seconds_bucket{beam=\"beam2\",half="
				     "\"satellite\",le=\"0.05\"} 20\n"));
	assert_non_null(strstr(text, "skygate_beam_rtt_seconds_bucket{beam=\"beam2\",half="
				     "\"satellite\",le=\"0.03\"} 0\n"));
	assert_non_null(strstr(text, "skygate_beam_rtt_seconds_count{beam=\"beam1\",half="
				     "\"internet\"} 20\n"));
	assert_non_null(strstr(text, "skygate_subscriber_rtt_seconds{id=\"1\",half=\"satellite\","
				     "stat=\"min\"} 0.560000\n"));
	assert_non_null(strstr(text, "skygate_subscriber_tcp_retrans_ratio{id=\"1\",dir=\"down\"} "
				     "0.0200\n"));
	free(text);

	/* a removed subscriber's figures go with it */
	json_decref(ok("subscriber del 2"));
	r = ok("qoe show");
	assert_int_equal(geti(json_object_get(r, "result"), "subscribers"), 1);
	json_decref(r);

	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_qoe_destroy(q);
	sky_subs_destroy(subs);
	sky_cfg_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cfg_bad),	      cmocka_unit_test(test_cfg_good),
		cmocka_unit_test(test_cfg_defaults),  cmocka_unit_test(test_create_bad),
		cmocka_unit_test(test_bad_samples),   cmocka_unit_test(test_table_full),
		cmocka_unit_test(test_index_reused),  cmocka_unit_test(test_bins),
		cmocka_unit_test(test_percentiles),   cmocka_unit_test(test_window_roll),
		cmocka_unit_test(test_retrans_share), cmocka_unit_test(test_grade),
		cmocka_unit_test(test_worst),	      cmocka_unit_test(test_views),
	};
	int rc;

	if (sky_fx_eal_start("test_qoe", &(struct sky_fx_eal){.lcores = "0",
							      .mem_mb = 256,
							      .telemetry = 1,
							      .skygate_log = "warning"}) < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	sky_fx_eal_stop();
	return rc;
}
