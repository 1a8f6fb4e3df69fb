/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow table benchmark: cycles per packet of sky_flow_burst (+ the per-loop
 * sky_flow_expire) on one worker, bursts of 32 packets of random flows among N live ones
 * (a burst one direction, as from one RX queue; both directions of every flow; TCP with
 * and without timestamps, UDP), the metadata already in the
 * burst array (as the pipeline leaves it). N from cache-resident to 100k subscribers with
 * a few flows each; RTT and records on, and each alone. Median of per-burst samples (the
 * machine is shared). Prints figures; never fails on a number.
 *
 *   bench_flow [BURSTS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "skygate/flow.h"
#include "skygate/meta.h"
#include "skygate/runtime.h"

#include "../../lib/flow/flow_priv.h"
#include "fixture.h"

#define NMB 4096    /* distinct packets (TCP header bytes) */
#define NMAX 400000 /* flows at most */

static struct rte_mbuf *mb[NMB];
static struct sky_meta *fm; /* per flow */
static volatile uint64_t sink;

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
build(uint64_t *seed)
{
	for (unsigned int i = 0; i < NMB; i++) {
		uint8_t buf[128];
		struct sky_fx_pkt p = {.l3 = 4, .proto = 6, .sport = 1, .dport = 2, .len = 66};
		struct sky_fx_layout lay;
		uint32_t len = sky_fx_frame(buf, sizeof(buf), &p, &lay);
		uint8_t *h = buf + lay.l4_off;
		uint32_t x = (uint32_t)sky_fx_rand64(seed);

		memcpy(h + 4, &x, 4);
		h[13] = 0x10;
		if (i % 2 == 0) { /* NOP NOP TS */
			h[12] = 8 << 4;
			h[20] = 1;
			h[21] = 1;
			h[22] = 8;
			h[23] = 10;
			memcpy(h + 24, &x, 4);
		}
		mb[i] = sky_fx_mbuf_bytes(sky_fx_pool, buf, len);
		if (mb[i] == NULL) {
			fprintf(stderr, "bench_flow: no mbufs\n");
			exit(1);
		}
	}
	for (unsigned int k = 0; k < NMAX; k++) {
		struct sky_meta *m = &fm[k];
		uint32_t sub = (uint32_t)(sky_fx_rand64(seed) % 100000);
		uint64_t r = sky_fx_rand64(seed);

		memset(m, 0, sizeof(*m));
		m->dir = SKY_DIR_UP; /* the other direction is made per burst (flip) */
		m->l3 = 4;
		m->proto = (r >> 1) % 4 == 0 ? 17 : 6;
		m->flags = SKY_MF_PORTS;
		m->l3_off = 14;
		m->l4_off = 34;
		m->sport = (uint16_t)(r >> 8);
		m->dport = m->proto == 6 ? 443 : 53;
		m->ip_len = 52;
		m->pkt_len = 66;
		m->sub_idx = sub;
		m->sub_id = sub + 1;
		m->beam = (uint16_t)(sub % 16);
		m->src[0] = 100;
		m->src[1] = 64;
		m->src[2] = (uint8_t)(sub >> 8);
		m->src[3] = (uint8_t)sub;
		memcpy(m->dst, &r, 4);
	}
}

/* the flow's packet in direction dir (the flows are stored upstream) */
static void
flow_meta(uint32_t k, unsigned int dir, struct sky_meta *m)
{
	*m = fm[k];
	if (dir == SKY_DIR_DOWN) {
		uint8_t t[16];
		uint16_t p = m->sport;

		m->dir = SKY_DIR_DOWN;
		memcpy(t, m->src, 16);
		memcpy(m->src, m->dst, 16);
		memcpy(m->dst, t, 16);
		m->sport = m->dport;
		m->dport = p;
	}
}

static double
run(unsigned int n_flows, int rtt, int records, unsigned int bursts, uint64_t *seed)
{
	struct flow_params p;
	struct sky_flow *f;
	char err[256];
	uint32_t *samp = malloc(sizeof(*samp) * bursts);
	struct sky_meta meta[SKY_BURST];
	struct rte_mbuf *pk[SKY_BURST];
	double med;

	sky_flow_params_default(&p);
	p.present = true;
	p.rtt = rtt;
	p.records = records;
	f = sky_flow_create_params(&p, 1, sky_rt.tsc_hz, err, sizeof(err));
	if (f == NULL || samp == NULL) {
		fprintf(stderr, "bench_flow: %s\n", f == NULL ? err : "no memory");
		exit(1);
	}
	/* warm: every flow once */
	for (unsigned int k = 0; k < n_flows; k += SKY_BURST) {
		unsigned int n = n_flows - k < SKY_BURST ? n_flows - k : SKY_BURST;

		for (unsigned int i = 0; i < n; i++) {
			flow_meta(k + i, SKY_DIR_UP, &meta[i]);
			pk[i] = mb[(k + i) % NMB];
		}
		sky_flow_burst(f, 0, pk, meta, (uint16_t)n, rte_rdtsc());
	}
	for (unsigned int b = 0; b < bursts; b++) {
		uint64_t t0, t1;

		for (unsigned int i = 0; i < SKY_BURST; i++) {
			uint32_t k = (uint32_t)(sky_fx_rand64(seed) % n_flows);

			/* a burst comes from one port: one direction */
			flow_meta(k, b & 1, &meta[i]);
			pk[i] = mb[k % NMB];
		}
		/* the parser has just read each packet: its header and data are in L1 */
		for (unsigned int i = 0; i < SKY_BURST; i++)
			sink += *rte_pktmbuf_mtod_offset(pk[i], volatile uint8_t *, 47) +
				rte_pktmbuf_data_len(pk[i]);
		t0 = rte_rdtsc();
		sky_flow_burst(f, 0, pk, meta, SKY_BURST, t0);
		sky_flow_expire(f, 0, t0);
		t1 = rte_rdtsc();
		samp[b] = (uint32_t)((t1 - t0) * 16 / SKY_BURST);
		if (b % 1024 == 0)
			sky_flow_poll(f, t1);
	}
	qsort(samp, bursts, sizeof(*samp), cmp_u32);
	med = samp[bursts / 2] / 16.0;
	printf("  %7u flows, rtt %-3s records %-3s: %6.1f cycles/packet  [p10 %.1f, p90 %.1f]; "
	       "%u entries used, %llu evictions\n",
	       n_flows, rtt ? "on" : "off", records ? "on" : "off", med, samp[bursts / 10] / 16.0,
	       samp[bursts * 9 / 10] / 16.0, sky_flow_used(f, 0),
	       (unsigned long long)sky_flow_ctr_sum(f, FLOW_CTR_evictions));
	sky_flow_destroy(f);
	free(samp);
	return med;
}

int
main(int argc, char **argv)
{
	unsigned int bursts = argc > 1 ? (unsigned int)atoi(argv[1]) : 20000;
	uint64_t seed = 88172645463325252ULL;

	if (bursts == 0)
		bursts = 1;
	/* on 2 MB hugepages when the machine has them free (as the daemon runs): the table
	 * is ~50 MB, on 4 KB pages nearly every entry access is a TLB miss */
	if (sky_fx_eal_start("bench_flow", &(struct sky_fx_eal){.mem_mb = 256,
								.huge = 1,
								.pool_mbufs = NMB + 511,
								.pool_data_room = 256}) < 0)
		return 1;
	fm = calloc(NMAX, sizeof(*fm));
	if (fm == NULL)
		return 1;
	build(&seed);
	printf("flow table, one worker, 262144 entries (%zu B each), bursts of %u, TSC %.2f GHz, "
	       "%s\n",
	       sizeof(struct flow_ent), SKY_BURST, (double)sky_rt.tsc_hz / 1e9,
	       sky_fx_huge ? "2 MB hugepages" : "4 KB pages (--no-huge: no free hugepages)");
	run(1024, 1, 1, bursts, &seed);
	if (argc > 2) { /* BURSTS N: that many flows only (profiling) */
		run((unsigned int)atoi(argv[2]), 1, 1, bursts, &seed);
		goto out;
	}
	run(65536, 1, 1, bursts, &seed);
	run(65536, 1, 0, bursts, &seed);
	run(65536, 0, 1, bursts, &seed);
	run(200000, 1, 1, bursts, &seed);
	run(400000, 1, 1, bursts, &seed);
out:
	for (unsigned int i = 0; i < NMB; i++)
		rte_pktmbuf_free(mb[i]);
	free(fm);
	sky_fx_eal_stop();
	return 0;
}
