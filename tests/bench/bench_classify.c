/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Classification cost: cycles per packet of sky_classify_burst for the classes of the
 * config reference (DSCP, protocol, port ranges, remote prefixes, a match rule) on random
 * packets, and with 2000 remote prefixes (e.g. a CDN list) in one class, plus the compile
 * time of that rule set (the `class reload` work). Prints figures; never fails on one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_malloc.h>

#include "skygate/config.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"

#define N_META 65536

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static inline uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t cyc[8 * N_META / SKY_BURST];

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
fill(struct sky_meta *m)
{
	static const uint16_t ports[] = {53, 443, 80, 5060, 20000, 6885, 22, 8080};

	for (int i = 0; i < N_META; i++) {
		uint64_t r = rnd();
		int v6 = (r & 3) == 0;

		memset(&m[i], 0, sizeof(m[i]));
		m[i].dir = (uint8_t)(r >> 2 & 1);
		m[i].l3 = v6 ? 6 : 4;
		m[i].verdict = SKY_V_PASS;
		m[i].proto = (r >> 3 & 3) == 0 ? 6 : (r >> 3 & 3) == 1 ? 1 : 17;
		m[i].dscp = (r >> 5 & 7) == 0 ? 46 : (r >> 5 & 7) == 1 ? 8 : 0;
		m[i].flags = m[i].proto != 1 ? SKY_MF_PORTS : 0;
		m[i].sport = (uint16_t)(r >> 8);
		m[i].dport = (r >> 24 & 1) ? ports[r >> 25 & 7] : (uint16_t)(r >> 28);
		for (int b = 0; b < 16; b++) {
			m[i].src[b] = (uint8_t)rnd();
			m[i].dst[b] = (uint8_t)rnd();
		}
		if (!v6) {
			memset(m[i].src + 4, 0, 12);
			memset(m[i].dst + 4, 0, 12);
			if (r >> 40 & 1) { /* half the remotes in 198.51.100.0/24 or the list */
				uint8_t *ra = m[i].dir == SKY_DIR_UP ? m[i].dst : m[i].src;

				ra[0] = 198;
				ra[1] = 51;
			}
		}
	}
}

static double
run(struct sky_classifier *c, struct sky_meta *m, unsigned int *hist)
{
	size_t k = 0;

	for (int i = 0; i < N_META; i += SKY_BURST)
		sky_classify_burst(c, 0, &m[i], SKY_BURST);
	for (int r = 0; r < 8; r++)
		for (int i = 0; i < N_META; i += SKY_BURST) {
			/* metas are hot in a worker (just parsed): time the stage alone */
			struct sky_meta b[SKY_BURST];
			uint64_t t0;

			memcpy(b, &m[i], sizeof(b));
			t0 = rte_rdtsc_precise();
			sky_classify_burst(c, 0, b, SKY_BURST);
			cyc[k++] = rte_rdtsc_precise() - t0;
		}
	for (int i = 0; i < N_META; i++)
		hist[m[i].cls & 7]++;
	qsort(cyc, k, sizeof(cyc[0]), cmp_u64);
	return (double)cyc[k / 2] / SKY_BURST;
}

static struct sky_classifier *
make(const char *classes, struct sky_subs **s, double *compile_ms)
{
	static char yaml[200000];
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	struct sky_classifier *c;
	uint64_t t0;

	snprintf(yaml, sizeof(yaml),
		 "plans: { basic: { down: 50Mbit, up: 5Mbit } }\n"
		 "beams: { beam1: { down: 1Gbit, up: 200Mbit } }\n%s",
		 classes);
	cfg = sky_cfg_load_string("bench.yaml", yaml, &err);
	if (cfg == NULL || (*s = sky_subs_create(cfg, 1, &err)) == NULL) {
		printf("%s\n", err.msg);
		exit(1);
	}
	t0 = rte_rdtsc();
	c = sky_classifier_create(cfg, *s, &err);
	*compile_ms = (double)(rte_rdtsc() - t0) / rte_get_tsc_hz() * 1e3;
	if (c == NULL) {
		printf("%s\n", err.msg);
		exit(1);
	}
	sky_cfg_free(cfg);
	return c;
}

int
main(void)
{
	char *eal[] = {"bench_classify", "--no-huge", "-m", "1024", "--no-pci",
		       "--file-prefix=bench_classify", "--log-level=lib.*:error",
		       "--log-level=skygate:warning", "--no-telemetry"};
	static char big[150000];
	struct sky_meta *m;
	struct sky_subs *s;
	struct sky_classifier *c;
	unsigned int hist[8] = {0};
	double ms, cpp;
	size_t o;

	if (rte_eal_init(sizeof(eal) / sizeof(eal[0]), eal) < 0)
		return 1;
	sky_runtime_init();
	m = rte_malloc("bench_meta", N_META * sizeof(*m), 64);
	fill(m);

	c = make("classes:\n"
		 "  - { name: realtime, dscp: [46, 34], ports: [53, 5060, \"16384-32767\"] }\n"
		 "  - { name: interactive, protocol: [tcp], ports: [22, 80, 443], prefixes: "
		 "[\"198.51.100.0/24\", \"2001:db8::/32\"] }\n"
		 "  - { name: bulk, default: true }\n"
		 "  - { name: scavenger, dscp: [8], match: [ { protocol: [udp], ports: "
		 "[\"6881-6889\"] } ] }\n",
		 &s, &ms);
	cpp = run(c, m, hist);
	printf("classify, 4 classes / 8 rules (config reference): %.1f cycles/packet, compile "
	       "%.2f ms (classes hit: %u %u %u %u)\n",
	       cpp, ms, hist[0], hist[1], hist[2], hist[3]);
	sky_classifier_destroy(c);
	sky_subs_destroy(s);

	o = (size_t)snprintf(big, sizeof(big),
			     "classes:\n  - { name: realtime, dscp: [46], ports: [53] }\n"
			     "  - { name: cdn, prefixes: [");
	for (int i = 0; i < 2000; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"198.51.%d.%d/28\"",
				      i ? ", " : "", i / 16, (i % 16) * 16);
	snprintf(big + o, sizeof(big) - o,
		 "] }\n  - { name: bulk, default: true }\n");
	c = make(big, &s, &ms);
	memset(hist, 0, sizeof(hist));
	cpp = run(c, m, hist);
	printf("classify, 2000 remote prefixes in one class: %.1f cycles/packet, compile %.2f ms "
	       "(classes hit: %u %u %u)\n",
	       cpp, ms, hist[0], hist[1], hist[2]);
	sky_classifier_destroy(c);
	sky_subs_destroy(s);
	rte_free(m);
	rte_eal_cleanup();
	return 0;
}
