/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/flow behind the real parser (sky_parse_burst): frames built with the fixture, TCP
 * options and ICMP echo fields written on top, parsed, given a subscriber as the
 * subscriber stage would, then fed to sky_flow_burst with time as a parameter (frames of
 * 200 bytes: the segments carry data, in sequence). Table:
 * each case is an exchange (a TSval up echoed down and back, a handshake, a ping) in
 * one encapsulation (IPv4, IPv6, IPv6 with a hop-by-hop header, 802.1Q, QinQ), and the
 * samples it must give; failure cases first (a frame the parser drops, a later fragment).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <rte_mbuf.h>

#include "fixture.h"
#include "skygate/flow.h"
#include "skygate/parse_inline.h"
#include "skygate/runtime.h"

#include "../../../lib/flow/flow_priv.h"

#define TH_SYN 0x02
#define TH_ACK 0x10

static struct rte_mempool *mp;
static uint64_t hz;
static struct sky_rtt_sample smp[16];
static unsigned int n_smp;
static struct sky_flow_rec rec[16];
static unsigned int n_rec;

static void
on_rtt(void *arg, const struct sky_rtt_sample *s, uint64_t now)
{
	(void)arg;
	(void)now;
	if (n_smp < 16 && s->rtt_us != 0)
		smp[n_smp++] = *s;
}

static void
on_rec(void *arg, const struct sky_flow_rec *r)
{
	(void)arg;
	if (n_rec < 16)
		rec[n_rec++] = *r;
}

/* an encapsulation */
struct encap {
	uint8_t l3, n_vlan, hbh;
	uint16_t frag_off; /* IPv4 flags + offset: a later fragment */
};

/* one packet of an exchange */
struct pk {
	uint8_t dir;
	uint8_t flags; /* TCP flags; 0 = ICMP echo (request up or down by icmp) */
	uint8_t icmp;  /* 1 request, 2 reply */
	uint32_t seq, ack;
	int ts;
	uint32_t tsval, tsecr;
	double ms;
};

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static struct rte_mbuf *
frame(const struct encap *en, const struct pk *k)
{
	uint8_t buf[512], sub[16], rem[16];
	struct sky_fx_pkt p = {
		.l3 = en->l3, .n_vlan = en->n_vlan, .hbh = en->hbh, .frag_off = en->frag_off};
	struct sky_fx_layout lay;
	uint32_t len;

	sky_fx_addr(en->l3 == 4 ? "100.64.0.1" : "2001:db8:1000:100::5", sub);
	sky_fx_addr(en->l3 == 4 ? "198.51.100.7" : "2001:db8:ffff::7", rem);
	p.tci[0] = 100;
	p.tci[1] = 200;
	p.proto = k->icmp ? (en->l3 == 4 ? 1 : 58) : 6;
	memcpy(p.src, k->dir == SKY_DIR_UP ? sub : rem, 16);
	memcpy(p.dst, k->dir == SKY_DIR_UP ? rem : sub, 16);
	p.sport = k->icmp ? 0 : k->dir == SKY_DIR_UP ? 40000 : 443;
	p.dport = k->icmp ? 0 : k->dir == SKY_DIR_UP ? 443 : 40000;
	p.len = 200;
	len = sky_fx_frame(buf, sizeof(buf), &p, &lay);
	assert_true(len > 0);
	if (!k->icmp) {
		uint8_t *h = buf + lay.l4_off;

		put32(h + 4, k->seq);
		put32(h + 8, k->ack);
		h[13] = k->flags;
		if (k->ts) {
			h[12] = 8 << 4;
			h[20] = 1;
			h[21] = 1;
			h[22] = 8;
			h[23] = 10;
			put32(h + 24, k->tsval);
			put32(h + 28, k->tsecr);
		}
	} else {
		uint8_t *h = buf + lay.l4_off;

		h[0] = en->l3 == 4 ? (k->icmp == 1 ? 8 : 0) : (k->icmp == 1 ? 128 : 129);
		h[4] = 0x12;
		h[5] = 0x34;
		h[6] = 0;
		h[7] = 9;
	}
	return sky_fx_mbuf_bytes(mp, buf, len);
}

static void
test_behind_parser(void **state)
{
	static const struct encap v4 = {4, 0, 0, 0}, v6 = {6, 0, 0, 0}, v6_hbh = {6, 0, 1, 0},
				  v4_q = {4, 1, 0, 0}, v6_qinq = {6, 2, 0, 0},
				  v4_frag = {4, 0, 0, 0x0010};
	static const struct pk ts_both[] = {
		{SKY_DIR_UP, TH_ACK, 0, 1, 1, 1, 1000, 0, 0},
		{SKY_DIR_DOWN, TH_ACK, 0, 1, 1, 1, 77, 1000, 25},
		{SKY_DIR_UP, TH_ACK, 0, 1000, 1, 1, 1001, 77, 625},
	};
	static const struct pk handshake[] = {
		{SKY_DIR_UP, TH_SYN, 0, 10, 0, 0, 0, 0, 0},
		{SKY_DIR_DOWN, TH_SYN | TH_ACK, 0, 900, 11, 0, 0, 0, 30},
		{SKY_DIR_UP, TH_ACK, 0, 11, 901, 0, 0, 0, 630},
	};
	static const struct pk ping[] = {
		{SKY_DIR_UP, 0, 1, 0, 0, 0, 0, 0, 0},
		{SKY_DIR_DOWN, 0, 2, 0, 0, 0, 0, 0, 40},
	};
	static const struct {
		const char *name;
		const struct encap *en;
		const struct pk *p;
		unsigned int n;
		unsigned int nw;
		uint8_t half[2];
		double ms[2];
		uint8_t kind;
		uint64_t tracked;
	} cases[] = {
		{"IPv4 later fragments are not tracked", &v4_frag, ts_both, 3, 0, {0}, {0}, 0, 0},
		{"IPv4 timestamps",
		 &v4,
		 ts_both,
		 3,
		 2,
		 {SKY_RTT_INET, SKY_RTT_SAT},
		 {25, 600},
		 SKY_RTT_TCP_TS,
		 3},
		{"IPv6 timestamps",
		 &v6,
		 ts_both,
		 3,
		 2,
		 {SKY_RTT_INET, SKY_RTT_SAT},
		 {25, 600},
		 SKY_RTT_TCP_TS,
		 3},
		{"IPv6 hop-by-hop, timestamps",
		 &v6_hbh,
		 ts_both,
		 3,
		 2,
		 {SKY_RTT_INET, SKY_RTT_SAT},
		 {25, 600},
		 SKY_RTT_TCP_TS,
		 3},
		{"802.1Q IPv4 timestamps",
		 &v4_q,
		 ts_both,
		 3,
		 2,
		 {SKY_RTT_INET, SKY_RTT_SAT},
		 {25, 600},
		 SKY_RTT_TCP_TS,
		 3},
		{"QinQ IPv6 handshake",
		 &v6_qinq,
		 handshake,
		 3,
		 2,
		 {SKY_RTT_INET, SKY_RTT_SAT},
		 {30, 600},
		 SKY_RTT_HANDSHAKE,
		 3},
		{"IPv4 handshake",
		 &v4,
		 handshake,
		 3,
		 2,
		 {SKY_RTT_INET, SKY_RTT_SAT},
		 {30, 600},
		 SKY_RTT_HANDSHAKE,
		 3},
		{"IPv4 ping", &v4, ping, 2, 1, {SKY_RTT_INET}, {40}, SKY_RTT_ICMP_ECHO, 2},
		{"IPv6 hop-by-hop ping",
		 &v6_hbh,
		 ping,
		 2,
		 1,
		 {SKY_RTT_INET},
		 {40},
		 SKY_RTT_ICMP_ECHO,
		 2},
	};
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct flow_params fp;
		struct sky_flow *f;
		char err[128];
		uint64_t bytes = 0;

		sky_flow_params_default(&fp);
		fp.present = true;
		fp.entries = 1024;
		fp.records = true;
		f = sky_flow_create_params(&fp, 1, hz, err, sizeof(err));
		assert_non_null(f);
		assert_int_equal(sky_flow_on_rtt(f, on_rtt, NULL), 0);
		assert_int_equal(sky_flow_on_record(f, on_rec, NULL), 0);
		n_smp = n_rec = 0;
		for (unsigned int i = 0; i < cases[c].n; i++) {
			const struct pk *k = &cases[c].p[i];
			struct rte_mbuf *mb = frame(cases[c].en, k);
			struct sky_meta m;

			assert_non_null(mb);
			sky_parse_burst(&mb, &m, 1, k->dir);
			assert_int_equal(m.verdict, SKY_V_PASS);
			/* the subscriber stage */
			m.sub_idx = 7;
			m.sub_id = 70;
			m.realm = cases[c].en->n_vlan ? 100 : 0;
			bytes += m.pkt_len;
			sky_flow_burst(f, 0, &mb, &m, 1,
				       (1ULL << 40) + (uint64_t)(k->ms * (double)hz / 1000.0));
			rte_pktmbuf_free(mb);
		}
		sky_flow_flush(f);
		if (n_smp != cases[c].nw ||
		    sky_flow_ctr_sum(f, FLOW_CTR_packets) != cases[c].tracked) {
			print_error("%s: %u samples (want %u), %llu tracked (want %llu)\n",
				    cases[c].name, n_smp, cases[c].nw,
				    (unsigned long long)sky_flow_ctr_sum(f, FLOW_CTR_packets),
				    (unsigned long long)cases[c].tracked);
			fail();
		}
		for (unsigned int i = 0; i < n_smp; i++) {
			double want = cases[c].ms[i] * 1000.0;

			assert_int_equal(smp[i].half, cases[c].half[i]);
			assert_int_equal(smp[i].kind, cases[c].kind);
			assert_int_equal(smp[i].sub_id, 70);
			if ((double)smp[i].rtt_us < want - 3 || (double)smp[i].rtt_us > want + 3) {
				print_error("%s: sample %u: %u us, want %.0f\n", cases[c].name, i,
					    smp[i].rtt_us, want);
				fail();
			}
		}
		if (cases[c].tracked != 0) {
			/* one flow, both directions, ports from the parser */
			assert_int_equal(n_rec, 1);
			assert_int_equal(rec[0].bytes[0] + rec[0].bytes[1], bytes);
			assert_int_equal(rec[0].packets[0] + rec[0].packets[1], cases[c].n);
			assert_int_equal(rec[0].l3, cases[c].en->l3);
			assert_int_equal(rec[0].realm, cases[c].en->n_vlan ? 100 : 0);
			if (cases[c].kind != SKY_RTT_ICMP_ECHO) {
				assert_int_equal(rec[0].sub_port, 40000);
				assert_int_equal(rec[0].remote_port, 443);
			} else {
				assert_int_equal(rec[0].sub_port, 0x1234); /* the echo id */
			}
		} else {
			assert_int_equal(sky_flow_ctr_sum(f, FLOW_CTR_untracked), cases[c].n);
		}
		sky_flow_destroy(f);
	}
}

static int
setup(void **state)
{
	(void)state;
	if (sky_fx_eal_start("test_flow_parse",
			     &(struct sky_fx_eal){.pool_mbufs = 511, .pool_data_room = 2176}) < 0)
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
		cmocka_unit_test(test_behind_parser),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
