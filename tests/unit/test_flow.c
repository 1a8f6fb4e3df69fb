/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/flow: the per-worker flow table with time as a parameter. Real mbufs (the
 * fixture's frame builder, TCP headers and options written on top), metadata filled as
 * the earlier stages would. Failure cases first: refused configs, malformed options,
 * exchanges that must not give a sample; then the matcher (TSval wrap-around, duplicates,
 * reordering, stale echoes, spacing), the handshake, ICMP echo, retransmissions, records,
 * timeouts, a full table, full rings, the flush and the commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <rte_mbuf.h>
#include <rte_ring_elem.h>

#include "fixture.h"
#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/flow.h"
#include "skygate/runtime.h"

#include "../../lib/flow/flow_priv.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

static struct rte_mempool *mp;
static struct sky_flow *cur;
static uint64_t hz;

/* --- what the consumers saw ------------------------------------------------------------- */

#define MAX_SMP 40000
#define MAX_REC 20000
static struct sky_rtt_sample smp[MAX_SMP];
static unsigned int n_smp;
static struct sky_flow_rec rec[MAX_REC];
static unsigned int n_rec;

static void
on_rtt(void *arg, const struct sky_rtt_sample *s, uint64_t now)
{
	(void)arg;
	(void)now;
	if (n_smp < MAX_SMP)
		smp[n_smp++] = *s;
}

static void
on_rec(void *arg, const struct sky_flow_rec *r)
{
	(void)arg;
	if (n_rec < MAX_REC)
		rec[n_rec++] = *r;
}

/* RTT samples only (counts-only samples are left out) */
static unsigned int
rtt_samples(struct sky_rtt_sample *out, unsigned int max)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < n_smp && k < max; i++)
		if (smp[i].rtt_us != 0)
			out[k++] = smp[i];
	return k;
}

/* --- time --------------------------------------------------------------------------------- */

#define T0 (1ULL << 40)

static uint64_t
T(double ms)
{
	return T0 + (uint64_t)(ms * (double)hz / 1000.0);
}

/* --- the table under test ----------------------------------------------------------------- */

struct fl_opts {
	uint32_t entries;
	int rtt, records;
	uint32_t sps;
	uint32_t idle_s, active_s;
};

static struct sky_flow *
mk(const struct fl_opts *o)
{
	struct flow_params p;
	char err[256];

	sky_flow_params_default(&p);
	p.present = true;
	p.entries = o->entries ? o->entries : 1024;
	p.rtt = o->rtt >= 0;
	p.records = o->records > 0;
	if (o->sps)
		p.rtt_samples_per_sec = o->sps;
	if (o->idle_s)
		p.idle_timeout_us = o->idle_s * 1000000ULL;
	if (o->active_s)
		p.active_timeout_us = o->active_s * 1000000ULL;
	cur = sky_flow_create_params(&p, 1, hz, err, sizeof(err));
	assert_non_null(cur);
	assert_int_equal(sky_flow_on_rtt(cur, on_rtt, NULL), 0);
	assert_int_equal(sky_flow_on_record(cur, on_rec, NULL), 0);
	n_smp = n_rec = 0;
	return cur;
}

static void
drain(void)
{
	sky_flow_poll(cur, 0);
}

/* --- packets ------------------------------------------------------------------------------ */

struct tp {
	uint8_t l3;	 /* 4 (0 means 4) or 6 */
	uint8_t dir;	 /* SKY_DIR_UP: subscriber -> remote */
	uint8_t proto;	 /* 0 means TCP */
	uint32_t sub;	 /* subscriber number: address and index */
	uint32_t rem;	 /* remote number */
	uint16_t sp, rp; /* subscriber port, remote port */
	uint8_t flags;	 /* TCP flags (0 means ACK) */
	uint32_t seq, ack, plen;
	int ts; /* 1: NOP NOP TS(tsval, tsecr) */
	uint32_t tsval, tsecr;
	const uint8_t *opt; /* raw options instead (optlen bytes, padded to 4 with zeros) */
	uint8_t optlen;
	int doff;	 /* > 0: this TCP data offset instead of the computed one */
	int drop;	 /* verdict DROP (policy) */
	uint8_t icmp;	 /* ICMP echo: 1 request, 2 reply */
	uint16_t id, sq; /* echo identifier, sequence */
	uint32_t cut;	 /* > 0: the frame is cut to this length after the headers are written */
};

static void
addr_of(uint8_t l3, int remote, uint32_t n, uint8_t a[16])
{
	memset(a, 0, 16);
	if (l3 == 4) {
		a[0] = remote ? 198 : 100;
		a[1] = remote ? 51 : 64;
		a[2] = (uint8_t)(n >> 8);
		a[3] = (uint8_t)n;
	} else {
		a[0] = 0x20;
		a[1] = 0x01;
		a[2] = 0x0d;
		a[3] = 0xb8;
		a[4] = remote ? 0xff : 0x10;
		a[12] = (uint8_t)(n >> 24);
		a[13] = (uint8_t)(n >> 16);
		a[14] = (uint8_t)(n >> 8);
		a[15] = (uint8_t)n;
	}
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* the mbuf and metadata of packet t */
static struct rte_mbuf *
build(const struct tp *t, struct sky_meta *m)
{
	uint8_t buf[2048], sa[16], ra[16], opts[40] = {0};
	struct sky_fx_pkt p = {0};
	struct sky_fx_layout lay;
	const uint8_t l3 = t->l3 ? t->l3 : 4;
	const uint8_t proto = t->icmp ? (l3 == 4 ? 1 : 58) : t->proto ? t->proto : 6;
	uint32_t optlen = 0, len;
	struct rte_mbuf *mb;

	if (proto == 6 && t->ts) {
		opts[0] = 1;
		opts[1] = 1;
		opts[2] = 8;
		opts[3] = 10;
		put32(opts + 4, t->tsval);
		put32(opts + 8, t->tsecr);
		optlen = 12;
	} else if (proto == 6 && t->opt != NULL) {
		memcpy(opts, t->opt, t->optlen);
		optlen = (t->optlen + 3u) & ~3u;
	}
	addr_of(l3, 0, t->sub, sa);
	addr_of(l3, 1, t->rem, ra);
	p.l3 = l3;
	p.proto = proto;
	memcpy(p.src, t->dir == SKY_DIR_UP ? sa : ra, 16);
	memcpy(p.dst, t->dir == SKY_DIR_UP ? ra : sa, 16);
	p.sport = t->dir == SKY_DIR_UP ? t->sp : t->rp;
	p.dport = t->dir == SKY_DIR_UP ? t->rp : t->sp;
	p.len = 14 + (l3 == 4 ? 20 : 40) + (proto == 6 ? 20 + optlen : 8) + t->plen;
	len = sky_fx_frame(buf, sizeof(buf), &p, &lay);
	assert_true(len > 0);
	if (proto == 6) {
		uint8_t *h = buf + lay.l4_off;

		put32(h + 4, t->seq);
		put32(h + 8, t->ack);
		h[12] = (uint8_t)((t->doff ? (unsigned int)t->doff : 5 + optlen / 4) << 4);
		h[13] = t->flags ? t->flags : TH_ACK;
		memcpy(h + 20, opts, optlen);
	} else if (t->icmp) {
		uint8_t *h = buf + lay.l4_off;

		h[0] = l3 == 4 ? (t->icmp == 1 ? 8 : 0) : (t->icmp == 1 ? 128 : 129);
		h[1] = 0;
		h[4] = (uint8_t)(t->id >> 8);
		h[5] = (uint8_t)t->id;
		h[6] = (uint8_t)(t->sq >> 8);
		h[7] = (uint8_t)t->sq;
	}
	mb = sky_fx_mbuf_bytes(mp, buf, t->cut ? t->cut : len);
	assert_non_null(mb);
	memset(m, 0, sizeof(*m));
	m->dir = t->dir;
	m->verdict = t->drop ? SKY_V_DROP : SKY_V_PASS;
	m->reason = t->drop ? SKY_DROP_POLICY : SKY_DROP_NONE;
	m->l3 = l3;
	m->proto = proto;
	m->l3_off = (uint16_t)lay.l3_off;
	m->l4_off = (uint16_t)lay.l4_off;
	if (t->icmp) {
		m->flags = SKY_MF_ICMP;
		m->icmp_type = buf[lay.l4_off];
	} else {
		m->flags = SKY_MF_PORTS;
		m->sport = p.sport;
		m->dport = p.dport;
	}
	m->ip_len = (uint16_t)(len - lay.l3_off);
	m->pkt_len = len;
	m->sub_idx = t->sub;
	m->sub_id = 1000 + t->sub;
	m->beam = (uint16_t)(t->sub % 3);
	m->sub_country = sky_cc("DE");
	m->remote_country = sky_cc("US");
	m->cls = 2;
	memcpy(m->src, p.src, 16);
	memcpy(m->dst, p.dst, 16);
	return mb;
}

static void
send_at(const struct tp *t, double ms)
{
	struct sky_meta m;
	struct rte_mbuf *mb = build(t, &m);

	sky_flow_burst(cur, 0, &mb, &m, 1, T(ms));
	rte_pktmbuf_free(mb);
}

/* the whole expiry pass at time ms (one slice per step) */
static void
expire_all(double ms)
{
	for (uint32_t k = 0; k <= (cur->bmask + 1) / FLOW_EXPIRE_SLICE; k++) {
		cur->w[0].exp_next_tsc = 0; /* the step is due now */
		sky_flow_expire(cur, 0, T(ms));
	}
}

static void
assert_near_us(uint32_t got, double want_ms, const char *what)
{
	double want = want_ms * 1000.0;

	if ((double)got < want - 3.0 || (double)got > want + 3.0) {
		print_error("%s: rtt %u us, want %.0f us\n", what, got, want);
		fail();
	}
}

static int
test_teardown(void **state)
{
	(void)state;
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_periodic_clear();
	sky_flow_destroy(cur);
	cur = NULL;
	return 0;
}

/* --- configuration ------------------------------------------------------------------------ */

static void
test_config_refused(void **state)
{
	static const struct {
		const char *yaml;
		const char *want;
	} cases[] = {
		{"flows: { entries: 3000 }\n",
		 "t.yaml:1: flows.entries: entries must be a power of two"},
		{"flows: { entries: 512 }\n", "t.yaml:1: flows.entries"},
		{"flows: { entries: 33554432 }\n", "t.yaml:1: flows.entries"},
		{"flows: { rtt_samples_per_sec: 0 }\n", "t.yaml:1: flows.rtt_samples_per_sec"},
		{"flows: { idle_timeout: 300s }\n",
		 "t.yaml:1: flows.idle_timeout: idle_timeout must be 1s..120s"},
		{"flows: { idle_timeout: 500ms }\n", "t.yaml:1: flows.idle_timeout"},
		{"flows: { active_timeout: 10s, idle_timeout: 15s }\n",
		 "t.yaml:1: flows.active_timeout: active_timeout must not be below idle_timeout"},
		{"flows: { active_timeout: 2h }\n", "t.yaml:1: flows.active_timeout"},
		{"flows: { rtt: maybe }\n", "t.yaml:1: flows.rtt"},
		{"flows: { entires: 1024 }\n", "t.yaml:1: flows.entires: unknown key"},
		{"flows: [1, 2]\n", "t.yaml:1: flows: expected a map"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg = sky_fx_cfg("t.yaml", &err, "%s", cases[i].yaml);
		struct sky_flow *f;

		assert_non_null(cfg);
		f = sky_flow_create(cfg, 1, &err);
		if (f != NULL || strstr(err.msg, cases[i].want) != err.msg) {
			print_error("case %zu (%s): got '%s', want '%s...'\n", i, cases[i].yaml,
				    err.msg, cases[i].want);
			sky_flow_destroy(f);
			sky_cfg_free(cfg);
			fail();
		}
		sky_cfg_free(cfg);
	}
}

static void
test_config_accepted(void **state)
{
	struct sky_cfg_err err = {0};
	struct flow_params def, got;
	struct sky_cfg *cfg;
	struct sky_flow *f;
	struct rte_mbuf *mb;
	struct sky_meta m;

	(void)state;
	/* no section: a valid object, off; the stage does nothing */
	cfg = sky_fx_cfg("t.yaml", &err, "workers: 1\n");
	f = sky_flow_create(cfg, 2, &err);
	assert_non_null(f);
	assert_int_equal(sky_flow_enabled(f), 0);
	cur = f;
	mb = build(&(struct tp){.sub = 1, .rem = 1, .sp = 1, .rp = 80}, &m);
	sky_flow_burst(f, 0, &mb, &m, 1, T(0));
	sky_flow_expire(f, 0, T(0));
	rte_pktmbuf_free(mb);
	assert_int_equal(sky_flow_poll(f, 0), 0);
	/* an IPFIX collector turns records on, the table with them */
	sky_flow_want_records(f);
	assert_int_equal(sky_flow_enabled(f), 1);
	assert_int_equal(f->records, 1);
	assert_int_equal(f->rtt, 0);
	sky_flow_destroy(f);
	cur = NULL;
	sky_cfg_free(cfg);

	/* the defaults text and the built-in defaults agree */
	sky_flow_params_default(&def);
	cfg = sky_fx_cfg("t.yaml", &err, "%s", sky_flow_cfg_defaults);
	assert_non_null(cfg);
	sky_flow_params_default(&got);
	got.entries = 1;
	got.rtt = false;
	got.records = true;
	got.rtt_samples_per_sec = 99;
	got.active_timeout_us = got.idle_timeout_us = 1;
	assert_int_equal(sky_flow_parse_config(cfg, &got, &err), 0);
	assert_int_equal(got.entries, def.entries);
	assert_int_equal(got.rtt, def.rtt);
	assert_int_equal(got.records, def.records);
	assert_int_equal(got.rtt_samples_per_sec, def.rtt_samples_per_sec);
	assert_int_equal(got.active_timeout_us, def.active_timeout_us);
	assert_int_equal(got.idle_timeout_us, def.idle_timeout_us);
	sky_cfg_free(cfg);

	/* a section: on, with its values */
	cfg = sky_fx_cfg("t.yaml", &err,
			 "flows: { entries: 2048, rtt: false, records: true, idle_timeout: 5s, "
			 "active_timeout: 30s }\n");
	f = sky_flow_create(cfg, 1, &err);
	assert_non_null(f);
	assert_int_equal(sky_flow_enabled(f), 1);
	assert_int_equal(f->rtt, 0);
	assert_int_equal(f->records, 1);
	assert_int_equal(f->bmask + 1, 2048 / FLOW_WAYS);
	assert_true(f->mem_bytes >= 2048 * sizeof(struct flow_ent));
	sky_flow_destroy(f);
	/* both off: a valid object, off */
	sky_cfg_free(cfg);
	cfg = sky_fx_cfg("t.yaml", &err, "flows: { rtt: false, records: false }\n");
	f = sky_flow_create(cfg, 1, &err);
	assert_non_null(f);
	assert_int_equal(sky_flow_enabled(f), 0);
	sky_flow_destroy(f);
	sky_cfg_free(cfg);
}

/* --- malformed TCP options ---------------------------------------------------------------- */

static void
test_malformed_options(void **state)
{
	/* TSval 0x11223344 where a timestamp option is present */
	static const uint8_t kind_at_end[] = {1, 1, 1, 8};
	static const uint8_t len0[] = {2, 0, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0};
	static const uint8_t len1[] = {3, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0};
	static const uint8_t past_end[] = {1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44};
	static const uint8_t ts_len9[] = {8, 9, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0, 0};
	static const uint8_t ts_len11[] = {8, 11, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0, 0};
	static const uint8_t eol_first[] = {0, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0, 0};
	static const uint8_t mss_ts[] = {2, 4, 5, 0xb4, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0};
	static const uint8_t sack_ts_ws[] = {4, 2, 8, 10, 0x11, 0x22, 0x33, 0x44,
					     0, 0, 0, 0,  1,	3,    3,    7};
	static const uint8_t nop_ts_garbage[] = {1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44,
						 0, 0, 0, 0,  5,    1,	  0,	0};
	static const uint8_t ts_then_garbage[] = {8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0,
						  0, 0,	 5,    0,    1,	   1,	 1, 1};
	static const struct {
		const char *name;
		const uint8_t *opt;
		uint8_t optlen;
		int doff;
		uint32_t cut; /* bytes of TCP header the frame keeps */
		int sample;
		int bad;
	} cases[] = {
		{"a kind without its length at the end", kind_at_end, 4, 0, 0, 0, 1},
		{"option length 0", len0, 12, 0, 0, 0, 1},
		{"option length 1", len1, 12, 0, 0, 0, 1},
		{"timestamp past the header's end", past_end, 8, 0, 0, 0, 1},
		{"timestamp of length 9", ts_len9, 12, 0, 0, 0, 1},
		{"timestamp of length 11", ts_len11, 12, 0, 0, 0, 1},
		{"a timestamp, then a length-0 option", ts_then_garbage, 16, 0, 0, 0, 1},
		{"NOP NOP timestamp, then a length-1 option", nop_ts_garbage, 16, 0, 0, 0, 1},
		{"data offset 15, the frame ends after 24 bytes", mss_ts, 14, 15, 24, 0, 1},
		{"data offset 3", mss_ts, 14, 3, 0, 0, 0},
		{"end of options before the timestamp", eol_first, 14, 0, 0, 0, 0},
		{"MSS, then the timestamp", mss_ts, 14, 0, 0, 1, 0},
		{"SACK-permitted, timestamp, NOP, window scale", sack_ts_ws, 16, 0, 0, 1, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_rtt_sample got[4];
		struct tp up = {.dir = SKY_DIR_UP,
				.sub = 1,
				.rem = 2,
				.sp = 4000,
				.rp = 443,
				.opt = cases[i].opt,
				.optlen = cases[i].optlen,
				.doff = cases[i].doff};
		struct tp down = {.dir = SKY_DIR_DOWN,
				  .sub = 1,
				  .rem = 2,
				  .sp = 4000,
				  .rp = 443,
				  .ts = 1,
				  .tsval = 7,
				  .tsecr = 0x11223344};
		unsigned int n;

		mk(&(struct fl_opts){.sps = 100});
		if (cases[i].cut)
			up.cut = 14 + 20 + cases[i].cut;
		send_at(&up, 0);
		send_at(&down, 30);
		drain();
		n = rtt_samples(got, 4);
		if ((int)n != cases[i].sample ||
		    (int)sky_flow_ctr_sum(cur, FLOW_CTR_tcp_bad_options) != cases[i].bad) {
			print_error(
				"%s: %u samples (want %d), bad_options %llu (want %d)\n",
				cases[i].name, n, cases[i].sample,
				(unsigned long long)sky_flow_ctr_sum(cur, FLOW_CTR_tcp_bad_options),
				cases[i].bad);
			fail();
		}
		if (n == 1) {
			assert_int_equal(got[0].half, SKY_RTT_INET);
			assert_near_us(got[0].rtt_us, 30, cases[i].name);
		}
		sky_flow_destroy(cur);
		cur = NULL;
	}
}

/* --- the TSval/TSecr matcher -------------------------------------------------------------- */

struct step {
	uint8_t dir;
	uint32_t tsval, tsecr;
	double ms;
	int drop;
};

struct want {
	uint8_t half;
	double ms;
};

static void
test_ts_matcher(void **state)
{
	static const struct {
		const char *name;
		uint8_t l3;
		uint32_t sps;
		struct step s[8];
		unsigned int n;
		struct want w[4];
		unsigned int nw;
		unsigned int limited;
	} cases[] = {
		/* failures first: no sample */
		{"a dropped packet's TSval is not armed",
		 4,
		 100,
		 {{SKY_DIR_UP, 700, 0, 0, 1}, {SKY_DIR_DOWN, 9, 700, 10, 0}},
		 2,
		 {{0}},
		 0,
		 0},
		{"an echo that passed unseen disarms (stale)",
		 4,
		 100,
		 {{SKY_DIR_UP, 300, 0, 0, 0},
		  {SKY_DIR_DOWN, 9, 301, 10, 0},
		  {SKY_DIR_DOWN, 9, 300, 12, 0}},
		 3,
		 {{0}},
		 0,
		 0},
		{"a reordered older TSval is not armed",
		 4,
		 100,
		 {{SKY_DIR_UP, 200, 0, 0, 0},
		  {SKY_DIR_DOWN, 9, 200, 10, 0},
		  {SKY_DIR_UP, 199, 0, 20, 0},
		  {SKY_DIR_DOWN, 9, 199, 30, 0}},
		 4,
		 {{SKY_RTT_INET, 10}},
		 1,
		 0},
		{"a repeated echo gives one sample",
		 6,
		 100,
		 {{SKY_DIR_UP, 500, 0, 0, 0},
		  {SKY_DIR_DOWN, 9, 500, 10, 0},
		  {SKY_DIR_DOWN, 9, 500, 20, 0}},
		 3,
		 {{SKY_RTT_INET, 10}},
		 1,
		 0},
		{"a duplicate TSval keeps its first sighting",
		 4,
		 100,
		 {{SKY_DIR_UP, 100, 0, 0, 0},
		  {SKY_DIR_UP, 100, 0, 20, 0},
		  {SKY_DIR_DOWN, 9, 100, 50, 0},
		  {SKY_DIR_UP, 100, 0, 60, 0},
		  {SKY_DIR_DOWN, 9, 100, 70, 0}},
		 5,
		 {{SKY_RTT_INET, 50}},
		 1,
		 0},
		{"while armed, newer TSvals wait; an older echo keeps waiting",
		 4,
		 100,
		 {{SKY_DIR_UP, 400, 0, 0, 0},
		  {SKY_DIR_UP, 401, 0, 5, 0},
		  {SKY_DIR_DOWN, 9, 399, 8, 0},
		  {SKY_DIR_DOWN, 9, 400, 12, 0}},
		 4,
		 {{SKY_RTT_INET, 12}},
		 1,
		 0},
		{"both halves: terminal's TSval = internet, server's = satellite",
		 4,
		 4,
		 {{SKY_DIR_UP, 100, 0, 0, 0},
		  {SKY_DIR_DOWN, 5000, 100, 40, 0},
		  {SKY_DIR_UP, 101, 5000, 540, 0}},
		 3,
		 {{SKY_RTT_INET, 40}, {SKY_RTT_SAT, 500}},
		 2,
		 0},
		{"IPv6, both halves",
		 6,
		 4,
		 {{SKY_DIR_DOWN, 77, 0, 0, 0},
		  {SKY_DIR_UP, 1, 77, 600, 0},
		  {SKY_DIR_DOWN, 78, 1, 615, 0}},
		 3,
		 {{SKY_RTT_SAT, 600}, {SKY_RTT_INET, 15}},
		 2,
		 0},
		{"TSval wrap-around",
		 4,
		 100,
		 {{SKY_DIR_UP, 0xfffffff0u, 0, 0, 0},
		  {SKY_DIR_DOWN, 9, 0xfffffff0u, 30, 0},
		  {SKY_DIR_UP, 5, 0, 100, 0},
		  {SKY_DIR_DOWN, 9, 5, 125, 0},
		  {SKY_DIR_UP, 0xfffffff8u, 0, 130, 0},
		  {SKY_DIR_DOWN, 9, 0xfffffff8u, 140, 0}},
		 6,
		 {{SKY_RTT_INET, 30}, {SKY_RTT_INET, 25}},
		 2,
		 0},
		{"samples per second per flow and half",
		 4,
		 4,
		 {{SKY_DIR_UP, 600, 0, 0, 0},
		  {SKY_DIR_DOWN, 9, 600, 10, 0},
		  {SKY_DIR_UP, 601, 0, 20, 0},
		  {SKY_DIR_DOWN, 9, 601, 30, 0},
		  {SKY_DIR_UP, 602, 0, 300, 0},
		  {SKY_DIR_DOWN, 9, 602, 310, 0}},
		 6,
		 {{SKY_RTT_INET, 10}, {SKY_RTT_INET, 10}},
		 2,
		 1},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_rtt_sample got[8];
		unsigned int n;

		mk(&(struct fl_opts){.sps = cases[i].sps});
		for (unsigned int k = 0; k < cases[i].n; k++) {
			const struct step *s = &cases[i].s[k];

			send_at(&(struct tp){.l3 = cases[i].l3,
					     .dir = s->dir,
					     .sub = 3,
					     .rem = 4,
					     .sp = 5555,
					     .rp = 80,
					     .ts = 1,
					     .tsval = s->tsval,
					     .tsecr = s->tsecr,
					     .drop = s->drop},
				s->ms);
		}
		drain();
		n = rtt_samples(got, 8);
		if (n != cases[i].nw ||
		    sky_flow_ctr_sum(cur, FLOW_CTR_samples_limited) != cases[i].limited) {
			print_error(
				"%s: %u samples (want %u), %llu limited (want %u)\n", cases[i].name,
				n, cases[i].nw,
				(unsigned long long)sky_flow_ctr_sum(cur, FLOW_CTR_samples_limited),
				cases[i].limited);
			fail();
		}
		for (unsigned int k = 0; k < n; k++) {
			if (got[k].half != cases[i].w[k].half || got[k].kind != SKY_RTT_TCP_TS) {
				print_error("%s: sample %u half %u kind %u\n", cases[i].name, k,
					    got[k].half, got[k].kind);
				fail();
			}
			assert_near_us(got[k].rtt_us, cases[i].w[k].ms, cases[i].name);
			assert_int_equal(got[k].sub_id, 1003);
			assert_int_equal(got[k].sub_idx, 3);
			assert_int_equal(got[k].beam, 0);
		}
		/* one flow, both directions in one entry */
		assert_int_equal(sky_flow_used(cur, 0), 1);
		sky_flow_destroy(cur);
		cur = NULL;
	}
}

/* --- the handshake, ICMP echo -------------------------------------------------------------- */

struct hs_step {
	uint8_t dir, flags;
	uint32_t seq, ack;
	double ms;
};

static void
test_handshake(void **state)
{
	static const struct {
		const char *name;
		struct hs_step s[4];
		unsigned int n;
		struct want w[2];
		unsigned int nw;
	} cases[] = {
		{"a SYN-ACK that acks something else",
		 {{SKY_DIR_UP, TH_SYN, 1000, 0, 0},
		  {SKY_DIR_DOWN, TH_SYN | TH_ACK, 9000, 1234, 20}},
		 2,
		 {{0}},
		 0},
		{"a SYN without an answer",
		 {{SKY_DIR_UP, TH_SYN, 1000, 0, 0}, {SKY_DIR_UP, TH_ACK, 1001, 0, 20}},
		 2,
		 {{0}},
		 0},
		{"terminal opens: internet half, then satellite half",
		 {{SKY_DIR_UP, TH_SYN, 1000, 0, 0},
		  {SKY_DIR_DOWN, TH_SYN | TH_ACK, 9000, 1001, 20},
		  {SKY_DIR_UP, TH_ACK, 1001, 9001, 520}},
		 3,
		 {{SKY_RTT_INET, 20}, {SKY_RTT_SAT, 500}},
		 2},
		{"server opens: satellite half, then internet half",
		 {{SKY_DIR_DOWN, TH_SYN, 50, 0, 0},
		  {SKY_DIR_UP, TH_SYN | TH_ACK, 70, 51, 300},
		  {SKY_DIR_DOWN, TH_ACK, 51, 71, 310}},
		 3,
		 {{SKY_RTT_SAT, 300}, {SKY_RTT_INET, 10}},
		 2},
		{"a retransmitted SYN keeps the first sighting",
		 {{SKY_DIR_UP, TH_SYN, 0xffffffffu, 0, 0},
		  {SKY_DIR_UP, TH_SYN, 0xffffffffu, 0, 1000},
		  {SKY_DIR_DOWN, TH_SYN | TH_ACK, 9000, 0, 1030}},
		 3,
		 {{SKY_RTT_INET, 1030}},
		 1},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_rtt_sample got[4];
		unsigned int n;

		mk(&(struct fl_opts){.sps = 4});
		for (unsigned int k = 0; k < cases[i].n; k++) {
			const struct hs_step *s = &cases[i].s[k];

			send_at(&(struct tp){.dir = s->dir,
					     .sub = 9,
					     .rem = 9,
					     .sp = 40000,
					     .rp = 443,
					     .flags = s->flags,
					     .seq = s->seq,
					     .ack = s->ack},
				s->ms);
		}
		drain();
		n = rtt_samples(got, 4);
		if (n != cases[i].nw) {
			print_error("%s: %u samples, want %u\n", cases[i].name, n, cases[i].nw);
			fail();
		}
		for (unsigned int k = 0; k < n; k++) {
			assert_int_equal(got[k].half, cases[i].w[k].half);
			assert_int_equal(got[k].kind, SKY_RTT_HANDSHAKE);
			assert_near_us(got[k].rtt_us, cases[i].w[k].ms, cases[i].name);
		}
		sky_flow_destroy(cur);
		cur = NULL;
	}
}

static void
test_icmp_echo(void **state)
{
	static const struct {
		const char *name;
		uint8_t l3, req_dir;
		uint16_t rep_sq;
		double rep_ms;
		int nw;
		uint8_t half;
	} cases[] = {
		{"a reply to another sequence", 4, SKY_DIR_UP, 2, 600, 0, 0},
		{"IPv4, the terminal pings", 4, SKY_DIR_UP, 1, 600, 1, SKY_RTT_INET},
		{"IPv4, the terminal is pinged", 4, SKY_DIR_DOWN, 1, 550, 1, SKY_RTT_SAT},
		{"IPv6, the terminal pings", 6, SKY_DIR_UP, 1, 35, 1, SKY_RTT_INET},
		{"IPv6, the terminal is pinged", 6, SKY_DIR_DOWN, 1, 520, 1, SKY_RTT_SAT},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_rtt_sample got[4];
		int n;

		mk(&(struct fl_opts){.sps = 4});
		send_at(&(struct tp){.l3 = cases[i].l3,
				     .dir = cases[i].req_dir,
				     .sub = 5,
				     .rem = 6,
				     .icmp = 1,
				     .id = 77,
				     .sq = 1},
			0);
		send_at(&(struct tp){.l3 = cases[i].l3,
				     .dir = cases[i].req_dir ^ 1,
				     .sub = 5,
				     .rem = 6,
				     .icmp = 2,
				     .id = 77,
				     .sq = cases[i].rep_sq},
			cases[i].rep_ms);
		drain();
		n = (int)rtt_samples(got, 4);
		if (n != cases[i].nw) {
			print_error("%s: %d samples, want %d\n", cases[i].name, n, cases[i].nw);
			fail();
		}
		if (n == 1) {
			assert_int_equal(got[0].half, cases[i].half);
			assert_int_equal(got[0].kind, SKY_RTT_ICMP_ECHO);
			assert_near_us(got[0].rtt_us, cases[i].rep_ms, cases[i].name);
		}
		assert_int_equal(sky_flow_used(cur, 0), 1);
		sky_flow_destroy(cur);
		cur = NULL;
	}
}

/* --- retransmissions ---------------------------------------------------------------------- */

static void
test_retransmissions(void **state)
{
	static const struct {
		uint8_t dir;
		uint32_t seq, plen;
		double ms;
	} segs[] = {
		{SKY_DIR_DOWN, 1000, 100, 0},	     {SKY_DIR_DOWN, 1100, 100, 1},
		{SKY_DIR_DOWN, 1000, 100, 2}, /* retransmission */
		{SKY_DIR_DOWN, 1200, 50, 3},	     {SKY_DIR_DOWN, 1100, 100, 4}, /* again */
		{SKY_DIR_UP, 0xffffff00u, 0x200, 5}, /* the end wraps */
		{SKY_DIR_UP, 0x100, 10, 6},	     {SKY_DIR_UP, 0xffffff00u, 0x100, 7}, /* old */
		{SKY_DIR_UP, 0x10a, 0, 8}, /* a pure ACK is no data segment */
	};
	uint32_t s_up = 0, s_down = 0, r_up = 0, r_down = 0;
	struct tp t = {.sub = 11, .rem = 12, .sp = 1234, .rp = 80};

	(void)state;
	mk(&(struct fl_opts){.records = 1});
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		t.dir = segs[i].dir;
		t.seq = segs[i].seq;
		t.plen = segs[i].plen;
		send_at(&t, segs[i].ms);
	}
	/* a dropped retransmission does not count (counts travel with the RTT samples) */
	t.dir = SKY_DIR_DOWN;
	t.seq = 1000;
	t.plen = 100;
	t.drop = 1;
	send_at(&t, 9);
	drain();
	assert_int_equal(n_smp, 0); /* nothing yet: the window has not turned */
	/* more than a second later: the counts leave on their own */
	t.drop = 0;
	t.dir = SKY_DIR_UP;
	t.seq = 0x10a;
	t.plen = 0;
	send_at(&t, 1500);
	drain();
	assert_int_equal(n_smp, 1);
	assert_int_equal(smp[0].rtt_us, 0);
	assert_int_equal(smp[0].sub_id, 1011);
	assert_int_equal(smp[0].segs[SKY_DIR_DOWN], 5);
	assert_int_equal(smp[0].retrans[SKY_DIR_DOWN], 2);
	assert_int_equal(smp[0].segs[SKY_DIR_UP], 3);
	assert_int_equal(smp[0].retrans[SKY_DIR_UP], 1);
	/* and when the flow ends (FIN) */
	t.dir = SKY_DIR_DOWN;
	t.seq = 1250;
	t.plen = 10;
	send_at(&t, 1500); /* in the same window as the ACK */
	t.seq = 1250;
	send_at(&t, 1500);
	t.seq = 1260;
	t.plen = 0;
	t.flags = TH_FIN | TH_ACK;
	send_at(&t, 1500);
	drain();
	assert_int_equal(n_smp, 2);
	assert_int_equal(smp[1].rtt_us, 0);
	assert_int_equal(smp[1].segs[SKY_DIR_DOWN], 2);
	assert_int_equal(smp[1].retrans[SKY_DIR_DOWN], 1);
	assert_int_equal(smp[1].segs[SKY_DIR_UP], 0);
	assert_int_equal(n_rec, 1);
	assert_int_equal(rec[0].end, SKY_FLOW_END_FIN);
	assert_int_equal(sky_flow_used(cur, 0), 0);
	for (uint32_t k = 0; k < n_smp; k++)
		s_up += smp[k].segs[0], s_down += smp[k].segs[1], r_up += smp[k].retrans[0],
			r_down += smp[k].retrans[1];
	assert_int_equal(s_up + s_down, 10);
	assert_int_equal(r_up + r_down, 4);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_count_samples), 2);
}

/* a retransmitted segment gives no sample, whatever timestamps it carries */
static void
test_retransmission_no_sample(void **state)
{
	struct tp t = {.sub = 13, .rem = 14, .sp = 2222, .rp = 443, .ts = 1, .plen = 100};
	struct sky_rtt_sample got[4];
	unsigned int n;

	(void)state;
	mk(&(struct fl_opts){.sps = 100});
	/* the server's data, echoed by the terminal: the satellite half */
	t.dir = SKY_DIR_DOWN;
	t.seq = 1000;
	t.tsval = 50;
	send_at(&t, 0);
	t.dir = SKY_DIR_UP;
	t.seq = 1;
	t.plen = 0;
	t.tsval = 7;
	t.tsecr = 50;
	send_at(&t, 500);
	/* the server retransmits with a new TSval: not armed */
	t.dir = SKY_DIR_DOWN;
	t.seq = 1000;
	t.plen = 100;
	t.tsval = 60;
	t.tsecr = 0;
	send_at(&t, 1000);
	t.dir = SKY_DIR_UP;
	t.plen = 0;
	t.tsval = 8;
	t.tsecr = 60;
	send_at(&t, 1500);
	/* new data: armed again */
	t.dir = SKY_DIR_DOWN;
	t.seq = 1100;
	t.plen = 100;
	t.tsval = 70;
	t.tsecr = 0;
	send_at(&t, 2000);
	t.dir = SKY_DIR_UP;
	t.plen = 0;
	t.tsval = 9;
	t.tsecr = 70;
	send_at(&t, 2400);
	drain();
	n = rtt_samples(got, 4);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].half, SKY_RTT_SAT);
	assert_near_us(got[0].rtt_us, 500, "first");
	assert_int_equal(got[1].half, SKY_RTT_SAT);
	assert_near_us(got[1].rtt_us, 400, "after the retransmission");
}

/* --- records -------------------------------------------------------------------------------- */

static const struct sky_flow_rec *
find_rec(uint32_t sub_id, uint8_t proto)
{
	for (unsigned int i = 0; i < n_rec; i++)
		if (rec[i].sub_id == sub_id && rec[i].proto == proto)
			return &rec[i];
	return NULL;
}

static void
test_records(void **state)
{
	struct tp t = {.sub = 21, .rem = 22, .sp = 33000, .rp = 443};
	struct sky_meta m;
	struct rte_mbuf *mb;
	const struct sky_flow_rec *r;
	uint64_t bytes_up = 0, bytes_down = 0;
	uint8_t a[16];

	(void)state;
	mk(&(struct fl_opts){.records = 1, .sps = 100});
	/* a TCP flow from the terminal: handshake, data down, FIN up */
	t.dir = SKY_DIR_UP;
	t.flags = TH_SYN;
	t.seq = 10;
	send_at(&t, 0);
	bytes_up += 14 + 20 + 20;
	t.dir = SKY_DIR_DOWN;
	t.flags = TH_SYN | TH_ACK;
	t.seq = 500;
	t.ack = 11;
	send_at(&t, 10);
	bytes_down += 54;
	t.dir = SKY_DIR_UP;
	t.flags = TH_ACK;
	t.seq = 11;
	t.ack = 501;
	send_at(&t, 20);
	bytes_up += 54;
	t.dir = SKY_DIR_DOWN;
	for (int k = 0; k < 3; k++) {
		t.seq = 501 + 1000u * (uint32_t)k;
		t.plen = 1000;
		send_at(&t, 30 + k);
		bytes_down += 54 + 1000;
	}
	t.dir = SKY_DIR_UP;
	t.plen = 0;
	t.flags = TH_FIN | TH_ACK;
	t.seq = 11;
	send_at(&t, 100);
	bytes_up += 54;
	/* a blocked UDP flow of another subscriber (IPv6): on record with its verdict */
	for (int k = 0; k < 2; k++)
		send_at(&(struct tp){.l3 = 6,
				     .dir = SKY_DIR_UP,
				     .proto = 17,
				     .sub = 23,
				     .rem = 24,
				     .sp = 5353,
				     .rp = 53,
				     .plen = 30,
				     .drop = 1},
			200 + k);
	/* an RST ends a flow at once */
	send_at(&(struct tp){.dir = SKY_DIR_DOWN,
			     .sub = 25,
			     .rem = 26,
			     .sp = 1,
			     .rp = 2,
			     .flags = TH_RST},
		300);
	/* packets without a subscriber, and non-IP frames, are not tracked */
	mb = build(&(struct tp){.dir = SKY_DIR_UP, .sub = 27, .rem = 28, .sp = 1, .rp = 2}, &m);
	m.sub_idx = SKY_SUB_NONE;
	sky_flow_burst(cur, 0, &mb, &m, 1, T(301));
	m.sub_idx = 27;
	m.l3 = 0;
	sky_flow_burst(cur, 0, &mb, &m, 1, T(301));
	rte_pktmbuf_free(mb);
	drain();
	assert_int_equal(n_rec, 2); /* the FIN and the RST */
	assert_int_equal(sky_flow_used(cur, 0), 1);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_packets), 10);

	r = find_rec(1021, 6);
	assert_non_null(r);
	assert_int_equal(r->end, SKY_FLOW_END_FIN);
	assert_int_equal(r->l3, 4);
	addr_of(4, 0, 21, a);
	assert_memory_equal(r->sub_addr, a, 16);
	addr_of(4, 1, 22, a);
	assert_memory_equal(r->remote_addr, a, 16);
	assert_int_equal(r->sub_port, 33000);
	assert_int_equal(r->remote_port, 443);
	assert_int_equal(r->packets[SKY_DIR_UP], 3);
	assert_int_equal(r->packets[SKY_DIR_DOWN], 4);
	assert_int_equal(r->bytes[SKY_DIR_UP], bytes_up);
	assert_int_equal(r->bytes[SKY_DIR_DOWN], bytes_down);
	assert_int_equal(r->tcp_flags, TH_SYN | TH_ACK | TH_FIN);
	assert_int_equal(r->verdict, SKY_V_PASS);
	assert_int_equal(r->sub_idx, 21);
	assert_int_equal(r->beam, 0);
	assert_int_equal(r->sub_country, sky_cc("DE"));
	assert_int_equal(r->remote_country, sky_cc("US"));
	assert_int_equal(r->cls, 2);
	assert_int_equal(r->worker, 0);
	assert_near_us(r->rtt_inet_us, 10, "record internet half");
	assert_near_us(r->rtt_sat_us, 10, "record satellite half");
	/* first..last = 100 ms, to the coarse unit (<= 1 ms) */
	assert_true(r->last_ns - r->first_ns >= 99000000ULL &&
		    r->last_ns - r->first_ns <= 101000000ULL);

	r = find_rec(1025, 6);
	assert_non_null(r);
	assert_int_equal(r->end, SKY_FLOW_END_FIN);
	assert_int_equal(r->packets[SKY_DIR_DOWN], 1);
	assert_int_equal(r->tcp_flags, TH_RST);

	/* the blocked flow ends at the flush */
	assert_int_equal(sky_flow_flush(cur) >= 1, 1);
	r = find_rec(1023, 17);
	assert_non_null(r);
	assert_int_equal(r->end, SKY_FLOW_END_FORCED);
	assert_int_equal(r->l3, 6);
	addr_of(6, 1, 24, a);
	assert_memory_equal(r->remote_addr, a, 16);
	assert_int_equal(r->verdict, SKY_V_DROP);
	assert_int_equal(r->reason, SKY_DROP_POLICY);
	assert_int_equal(r->packets[SKY_DIR_UP], 2);
	assert_int_equal(r->bytes[SKY_DIR_UP], 2 * (14 + 40 + 8 + 30));
	assert_int_equal(r->rtt_sat_us, 0);
	assert_int_equal(sky_flow_used(cur, 0), 0);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_ended_fin), 2);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_ended_forced), 1);
}

/* --- timeouts ------------------------------------------------------------------------------- */

static void
test_timeouts(void **state)
{
	struct tp t = {.dir = SKY_DIR_UP, .proto = 17, .sub = 31, .rem = 32, .sp = 7, .rp = 8};
	uint64_t pk = 0;

	(void)state;
	/* idle: not before idle_timeout, then within one pass of the scan */
	mk(&(struct fl_opts){.records = 1, .idle_s = 2, .active_s = 3});
	send_at(&t, 0);
	expire_all(1900);
	drain();
	assert_int_equal(n_rec, 0);
	assert_int_equal(sky_flow_used(cur, 0), 1);
	expire_all(2100);
	drain();
	assert_int_equal(n_rec, 1);
	assert_int_equal(rec[0].end, SKY_FLOW_END_IDLE);
	assert_int_equal(sky_flow_used(cur, 0), 0);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_ended_idle), 1);

	/* active: a packet every 1.1 s; the record leaves after 3 s, the flow goes on */
	n_rec = 0;
	for (int s = 0; s < 8; s++) {
		send_at(&t, 10000 + 1100.0 * s);
		expire_all(10000 + 1100.0 * s + 500);
	}
	drain();
	assert_int_equal(n_rec, 2);
	assert_int_equal(rec[0].end, SKY_FLOW_END_ACTIVE);
	assert_int_equal(rec[0].packets[SKY_DIR_UP], 3);
	assert_int_equal(rec[1].end, SKY_FLOW_END_ACTIVE);
	assert_int_equal(rec[1].packets[SKY_DIR_UP], 3);
	assert_true(rec[1].first_ns - rec[0].first_ns >= 3299000000ULL &&
		    rec[1].first_ns - rec[0].first_ns <= 3301000000ULL);
	sky_flow_flush(cur);
	assert_int_equal(n_rec, 3);
	assert_int_equal(rec[2].end, SKY_FLOW_END_FORCED);
	for (unsigned int i = 0; i < n_rec; i++)
		pk += rec[i].packets[SKY_DIR_UP];
	assert_int_equal(pk, 8);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_ended_active), 2);
}

/* --- a full table ------------------------------------------------------------------------- */

static void
test_table_full(void **state)
{
	const unsigned int n = 3000;
	struct tp x = {.dir = SKY_DIR_UP, .proto = 17, .sub = 1, .rem = 1, .sp = 1, .rp = 1};
	uint64_t ev;
	unsigned int pressure = 0, x_recs = 0;

	(void)state;
	mk(&(struct fl_opts){.entries = 1024, .records = 1, .idle_s = 120, .active_s = 3600});
	/* flow x sends before every new flow: never the oldest idle of its bucket */
	for (unsigned int i = 0; i < n; i++) {
		send_at(&x, 10.0 * i);
		send_at(&(struct tp){.dir = SKY_DIR_UP,
				     .proto = 17,
				     .sub = 100 + i,
				     .rem = 2,
				     .sp = 9,
				     .rp = 9},
			10.0 * i + 5);
		if (i % 256 == 0)
			drain();
	}
	drain();
	ev = sky_flow_ctr_sum(cur, FLOW_CTR_evictions);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_inserts), n + 1);
	assert_true(sky_flow_used(cur, 0) <= 1024);
	assert_true(ev > 0);
	assert_int_equal(ev, n + 1 - sky_flow_used(cur, 0));
	for (unsigned int i = 0; i < n_rec; i++) {
		pressure += rec[i].end == SKY_FLOW_END_PRESSURE;
		x_recs += rec[i].sub_id == 1001;
	}
	assert_int_equal(pressure, ev);
	assert_int_equal(x_recs, 0);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_rec_ring_drops), 0);
	n_rec = 0;
	sky_flow_flush(cur);
	x_recs = 0;
	for (unsigned int i = 0; i < n_rec; i++)
		if (rec[i].sub_id == 1001) {
			x_recs++;
			assert_int_equal(rec[i].packets[SKY_DIR_UP], n);
		}
	assert_int_equal(x_recs, 1);
}

/* --- full rings ----------------------------------------------------------------------------- */

static void
test_rings_full(void **state)
{
	/* an rte_ring of count N holds N - 1 */
	const unsigned int rec_cap = FLOW_REC_RING - 1, rtt_cap = FLOW_RTT_RING - 1;
	const unsigned int n_recs = rec_cap + 808, n_echo = rtt_cap + 616;

	(void)state;
	/* records: one RST per flow, nobody drains */
	mk(&(struct fl_opts){.entries = 1024, .records = 1, .rtt = -1});
	assert_int_equal(rte_ring_get_capacity(cur->w[0].rec_ring), rec_cap);
	assert_int_equal(rte_ring_get_capacity(cur->w[0].rtt_ring), rtt_cap);
	for (unsigned int i = 0; i < n_recs; i++)
		send_at(&(struct tp){.dir = SKY_DIR_UP,
				     .sub = i,
				     .rem = 1,
				     .sp = 1,
				     .rp = 1,
				     .flags = TH_RST},
			(double)i);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_rec_ring_drops), 808);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_ended_fin), n_recs);
	drain();
	assert_int_equal(n_rec, rec_cap);
	sky_flow_destroy(cur);
	cur = NULL;

	/* RTT samples: one echo per flow, nobody drains */
	mk(&(struct fl_opts){.entries = 1024});
	for (unsigned int i = 0; i < n_echo; i++) {
		send_at(
			&(struct tp){
				.dir = SKY_DIR_UP, .sub = i, .rem = 1, .icmp = 1, .id = 1, .sq = 1},
			(double)i);
		send_at(&(struct tp){.dir = SKY_DIR_DOWN,
				     .sub = i,
				     .rem = 1,
				     .icmp = 2,
				     .id = 1,
				     .sq = 1},
			(double)i + 0.5);
	}
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_rtt_ring_drops), 616);
	assert_int_equal(sky_flow_ctr_sum(cur, FLOW_CTR_samples), rtt_cap);
	drain();
	assert_int_equal(n_smp, rtt_cap);
}

/* --- flush while running, the commands ------------------------------------------------------ */

static json_t *
run(const char *line)
{
	char buf[256], *argv[16];
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *s = strtok(buf, " "); s != NULL && argc < 16; s = strtok(NULL, " "))
		argv[argc++] = s;
	return sky_ctl_dispatch_argv(argc, argv, 0, 0, 0);
}

static void
test_commands_and_flush(void **state)
{
	json_t *r, *fl;

	(void)state;
	mk(&(struct fl_opts){.records = 1});
	assert_int_equal(sky_flow_register(cur), 0);
	for (int k = 0; k < 5; k++)
		send_at(&(struct tp){.dir = SKY_DIR_DOWN,
				     .proto = 17,
				     .sub = 41,
				     .rem = 1,
				     .sp = 1,
				     .rp = 2,
				     .plen = 1000},
			k);
	for (int k = 0; k < 9; k++)
		send_at(&(struct tp){.dir = SKY_DIR_UP,
				     .proto = 17,
				     .sub = 42,
				     .rem = 1,
				     .sp = 1,
				     .rp = 2,
				     .plen = 10},
			k);
	r = run("flows show");
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(r, "result"), "entries")), 2);
	json_decref(r);
	r = run("flows top by=packets n=1");
	fl = json_object_get(json_object_get(r, "result"), "flows");
	assert_int_equal(json_array_size(fl), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(fl, 0), "subscriber")),
			 1042);
	json_decref(r);
	r = run("flows top");
	fl = json_object_get(json_object_get(r, "result"), "flows");
	assert_int_equal(json_array_size(fl), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(fl, 0), "subscriber")),
			 1041);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(fl, 0), "bytes_down")),
			 5 * (14 + 20 + 8 + 1000));
	json_decref(r);
	r = run("flows top subscriber=1042");
	fl = json_object_get(json_object_get(r, "result"), "flows");
	assert_int_equal(json_array_size(fl), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(fl, 0), "sub_addr")),
			    "100.64.0.42");
	json_decref(r);
	r = run("flows top by=size");
	assert_true(json_is_false(json_object_get(r, "ok")));
	json_decref(r);
	r = run("flows top n=0");
	assert_true(json_is_false(json_object_get(r, "ok")));
	json_decref(r);

	/* Prometheus: the counters summed over the workers */
	{
		size_t len;
		char *txt = sky_metrics_render(&len);

		assert_non_null(txt);
		assert_non_null(strstr(txt, "\nskygate_flow_inserts_total 2\n"));
		assert_non_null(strstr(txt, "\nskygate_flow_packets_total 14\n"));
		assert_non_null(strstr(txt, "\nskygate_flow_entries 2\n"));
		assert_non_null(strstr(txt, "# TYPE skygate_flow_evictions_total counter\n"));
		free(txt);
	}
	/* flush: the worker ends every entry from its expiry step */
	r = run("flows flush");
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	assert_int_equal(sky_flow_used(cur, 0), 2);
	expire_all(10);
	assert_int_equal(sky_flow_used(cur, 0), 0);
	drain();
	assert_int_equal(n_rec, 2);
	assert_int_equal(rec[0].end, SKY_FLOW_END_FORCED);
	assert_int_equal(rec[1].end, SKY_FLOW_END_FORCED);
	/* served once: new flows stay */
	send_at(&(struct tp){.dir = SKY_DIR_UP, .proto = 17, .sub = 43, .rem = 1, .sp = 1, .rp = 2},
		20);
	expire_all(21);
	assert_int_equal(sky_flow_used(cur, 0), 1);
}

static int
setup(void **state)
{
	(void)state;
	if (sky_fx_eal_start("test_flow",
			     &(struct sky_fx_eal){.pool_mbufs = 1023, .pool_data_room = 2176}) < 0)
		return -1;
	mp = sky_fx_pool;
	hz = sky_rt.tsc_hz;
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
		cmocka_unit_test_teardown(test_config_accepted, test_teardown),
		cmocka_unit_test_teardown(test_malformed_options, test_teardown),
		cmocka_unit_test_teardown(test_ts_matcher, test_teardown),
		cmocka_unit_test_teardown(test_handshake, test_teardown),
		cmocka_unit_test_teardown(test_icmp_echo, test_teardown),
		cmocka_unit_test_teardown(test_retransmissions, test_teardown),
		cmocka_unit_test_teardown(test_retransmission_no_sample, test_teardown),
		cmocka_unit_test_teardown(test_records, test_teardown),
		cmocka_unit_test_teardown(test_timeouts, test_teardown),
		cmocka_unit_test_teardown(test_table_full, test_teardown),
		cmocka_unit_test_teardown(test_rings_full, test_teardown),
		cmocka_unit_test_teardown(test_commands_and_flush, test_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
