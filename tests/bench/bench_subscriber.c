/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subscriber table at scale: generate an N-row CSV (default 1M dual-stack subscribers, an
 * IPv4 /32 and an IPv6 /56 each; a few realm subscribers), time the load, report memory
 * per subscriber (rte_malloc heap before/after, plus the control-path heap), cycles per
 * packet of the burst lookup with random subscribers (IPv4, IPv6, VLAN realm), of the
 * accounting, and the cost of runtime changes and of a whole-table `subscriber load`.
 * Prints figures; never fails on a number.
 *
 *   bench_subscriber [N]
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"
#include "../../lib/subscriber/subscriber_priv.h"

#include "fixture.h"

#define N_META 65536

static const char *countries[] = {"DE", "FR", "NG", "KE", "BR", "ID", "PE", "US", "ZA", "IN"};

static uint64_t rng = 88172645463325252ULL;

static inline uint64_t
rnd(void)
{
	return sky_fx_rand64(&rng);
}

static void
v4_of(uint32_t i, uint8_t a[4])
{
	uint32_t x = (10u << 24) + 1 + i; /* 10.0.0.1 ... sequential /32s */

	a[0] = (uint8_t)(x >> 24);
	a[1] = (uint8_t)(x >> 16);
	a[2] = (uint8_t)(x >> 8);
	a[3] = (uint8_t)x;
}

static void
v6_of(uint32_t i, uint8_t a[16])
{
	memset(a, 0, 16);
	a[0] = 0x20; /* 2001:db8:XXXX:XX00::/56, delegated from a pool in order */
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	a[4] = (uint8_t)(i >> 16);
	a[5] = (uint8_t)(i >> 8);
	a[6] = (uint8_t)i;
}

static int
write_csv(const char *path, uint32_t n, uint32_t first_id)
{
	FILE *f = fopen(path, "w");
	char v4[32], v6[64];
	uint8_t a[16];

	if (f == NULL)
		return -1;
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	fputs("id,ipv4,ipv6,plan,beam,country,realm\n", f);
	for (uint32_t i = 0; i < n; i++) {
		v4_of(i, a);
		inet_ntop(AF_INET, a, v4, sizeof(v4));
		v6_of(i, a);
		inet_ntop(AF_INET6, a, v6, sizeof(v6));
		/* every 1000th subscriber belongs to a virtual operator on VLAN 100 + i%8 */
		fprintf(f, "%u,%s,%s/56,%s,beam%u,%s,%u\n", first_id + i, v4, v6,
			i & 1 ? "premium" : "basic", i % 4 + 1, countries[i % 10],
			i % 1000 == 999 ? 100 + i % 8 : 0);
	}
	return fclose(f);
}

static double
loadavg(void)
{
	double l[1] = {0};

	getloadavg(l, 1);
	return l[0];
}

static size_t
heap_used(void)
{
	struct rte_malloc_socket_stats st;
	size_t sum = 0;

	for (int sock = 0; sock < RTE_MAX_NUMA_NODES; sock++)
		if (rte_malloc_get_socket_stats(sock, &st) == 0)
			sum += st.heap_allocsz_bytes;
	return sum;
}

static size_t
ctl_heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void
fill_meta(struct sky_meta *m, uint32_t n_subs, int v6, uint16_t vid)
{
	for (int i = 0; i < N_META; i++) {
		uint32_t k = (uint32_t)(rnd() % n_subs);
		uint8_t *sub;

		memset(&m[i], 0, sizeof(m[i]));
		m[i].dir = (uint8_t)(rnd() & 1);
		m[i].l3 = v6 ? 6 : 4;
		m[i].verdict = SKY_V_PASS;
		m[i].pkt_len = 600;
		m[i].cls = (uint8_t)(i & 3);
		sub = m[i].dir == SKY_DIR_UP ? m[i].src : m[i].dst;
		if (vid) {
			/* a realm subscriber (k % 1000 == 999) on its VLAN */
			k = k - k % 1000 + 999;
			if (k >= n_subs)
				k = 999;
			m[i].outer_vid = (uint16_t)(100 + k % 8);
		}
		if (v6) {
			v6_of(k, sub);
			sub[7] = (uint8_t)rnd(); /* any address in the /56 */
			sub[15] = (uint8_t)rnd();
		} else {
			v4_of(k, sub);
		}
	}
}

/* cycles per packet: the median burst (robust against preemption on a shared machine) */
static uint64_t burst_cyc[8 * N_META / SKY_BURST];

static double
median_per_pkt(size_t n)
{
	qsort(burst_cyc, n, sizeof(burst_cyc[0]), sky_fx_cmp_u64);
	return (double)burst_cyc[n / 2] / SKY_BURST;
}

/* a stage's burst call on worker 0, as timed here */
typedef void (*stage_fn)(struct sky_subs *s, struct sky_meta *b);

static void
lookup_stage(struct sky_subs *s, struct sky_meta *b)
{
	sky_subs_lookup_burst(s, 0, b, SKY_BURST);
}

static void
account_stage(struct sky_subs *s, struct sky_meta *b)
{
	sky_subs_account_burst(s, 0, b, SKY_BURST);
}

/* cycles per packet of stage over every burst of m: a warm-up pass (first touch of pages),
 * then 8 rounds (verdicts reset to pass first when asked); results are written back */
static double
time_stage(struct sky_subs *s, struct sky_meta *m, stage_fn stage, bool reset_verdicts)
{
	size_t k = 0;

	for (int i = 0; i < N_META; i += SKY_BURST)
		stage(s, &m[i]);
	for (int r = 0; r < 8; r++) {
		for (int i = 0; reset_verdicts && i < N_META; i++)
			m[i].verdict = SKY_V_PASS;
		for (int i = 0; i < N_META; i += SKY_BURST) {
			/* metas are hot in a worker (just parsed): time the stage alone */
			struct sky_meta b[SKY_BURST];
			uint64_t t0;

			memcpy(b, &m[i], sizeof(b));
			t0 = rte_rdtsc_precise();
			stage(s, b);
			burst_cyc[k++] = rte_rdtsc_precise() - t0;
			memcpy(&m[i], b, sizeof(b));
		}
	}
	return median_per_pkt(k);
}

static double
bench_lookup(struct sky_subs *s, struct sky_meta *m, uint32_t *misses)
{
	double cyc = time_stage(s, m, lookup_stage, true);

	*misses = 0;
	for (int i = 0; i < N_META; i++)
		*misses += m[i].sub_idx == SKY_SUB_NONE;
	return cyc;
}

static uint32_t n_rows;

static double
run_cmds(const char *fmt, uint32_t base, int n, uint32_t stride)
{
	int n_fail = 0;

	uint64_t t0 = rte_rdtsc_precise();

	for (int i = 0; i < n; i++) {
		char line[256], *argv[16], *save = NULL;
		int argc = 0;
		json_t *r;

		uint32_t id =
			stride > 1 ? base + (uint32_t)i * stride % n_rows : base + (uint32_t)i;

		snprintf(line, sizeof(line), fmt, id, ((unsigned int)i >> 8) & 0xff,
			 (unsigned int)i & 0xff);
		for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save))
			argv[argc++] = w;
		r = sky_ctl_dispatch_argv(argc, argv, 0, 0, 0);
		if (!json_is_true(json_object_get(r, "ok")) && n_fail++ < 3)
			printf("  command failed: %s\n",
			       json_string_value(json_object_get(r, "error")));
		json_decref(r);
	}
	return (double)(rte_rdtsc_precise() - t0) / rte_get_tsc_hz() * 1e6 / n;
}

int
main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
	char csv[300], csv2[300];
	struct sky_cfg_err err;
	struct sky_cfg *cfg;
	struct sky_subs *s;
	struct sky_meta *m;
	size_t h0, h1, c0, c1;
	uint64_t t0;
	double sec, hz;
	uint32_t miss;
	double cpu0, cpu1;

	if (sky_fx_eal_start("bench_subscriber",
			     &(struct sky_fx_eal){.mem_mb = 4096, .skygate_log = "warning"}) < 0)
		return 1;
	hz = (double)rte_get_tsc_hz();
	n_rows = n;
	snprintf(csv, sizeof(csv), "%s/subs.csv", sky_fx_tmpdir());
	snprintf(csv2, sizeof(csv2), "%s/subs2.csv", sky_fx_tmpdir());
	t0 = rte_rdtsc();
	if (write_csv(csv, n, 1) != 0)
		return 1;
	printf("generated %u rows (IPv4 /32 + IPv6 /56 each, 0.1%% in 8 VLAN realms) in %.2f s\n",
	       n, (rte_rdtsc() - t0) / hz);
	cfg = sky_fx_cfg(
		"bench.yaml", &err,
		"subscribers: { file: %s, unknown: drop }\n"
		"plans: { basic: { down: 50Mbit, up: 5Mbit }, premium: { down: 200Mbit, up: "
		"20Mbit } }\n"
		"beams: { beam1: { down: 1Gbit, up: 200Mbit }, beam2: { down: 1Gbit, up: 200Mbit "
		"}, "
		"beam3: { down: 1Gbit, up: 200Mbit }, beam4: { down: 1Gbit, up: 200Mbit } }\n"
		"classes: [ { name: realtime, dscp: [46] }, { name: interactive, protocol: [tcp] "
		"}, "
		"{ name: bulk, default: true }, { name: scavenger, dscp: [8] } ]\n",
		csv);
	if (cfg == NULL) {
		printf("%s\n", err.msg);
		return 1;
	}
	{
		/* the parser alone: CSV -> rows, then the uniqueness check (sorts) */
		struct sky_subs_csv_names nm = {.n_plans = 2,
						.n_beams = 4,
						.plans = {"basic", "premium"},
						.beams = {"beam1", "beam2", "beam3", "beam4"}};
		struct sky_subs_rows rows = {0};
		char e[512];
		uint32_t need[3];
		FILE *f = fopen(csv, "r");
		size_t len;
		char *buf;

		fseek(f, 0, SEEK_END);
		len = (size_t)ftell(f);
		rewind(f);
		buf = malloc(len);
		if (fread(buf, 1, len, f) != len)
			return 1;
		fclose(f);
		double c_parse, c_check;

		cpu0 = sky_fx_cpu_s();
		if (sky_subs_rows_parse(&nm, csv, buf, len, &rows, e, sizeof(e)) < 0)
			printf("parse: %s\n", e);
		c_parse = sky_fx_cpu_s() - cpu0;
		cpu0 = sky_fx_cpu_s();
		if (sky_subs_rows_check_need(csv, &rows, need, e, sizeof(e)) < 0)
			printf("check: %s\n", e);
		c_check = sky_fx_cpu_s() - cpu0;
		printf("CPU: CSV parse %.2f s, uniqueness check + tbl8 count %.2f s (tbl8 groups: "
		       "v4 %u, v6 %u, realm %u)\n",
		       c_parse, c_check, need[0], need[1], need[2]);
		sky_subs_rows_free(&rows);
		free(buf);
	}
	h0 = heap_used();
	c0 = ctl_heap_used();
	t0 = rte_rdtsc();
	cpu0 = sky_fx_cpu_s();
	s = sky_subs_create(cfg, 1, &err);
	sec = (rte_rdtsc() - t0) / hz;
	cpu1 = sky_fx_cpu_s();
	if (s == NULL) {
		printf("create failed: %s\n", err.msg);
		return 1;
	}
	h1 = heap_used();
	c1 = ctl_heap_used();
	printf("load %u subscribers (parse, check, build rte_lpm6 tables): %.2f s wall, %.2f s "
	       "CPU (load average %.1f)\n",
	       n, sec, cpu1 - cpu0, loadavg());
	{
		double cap = sky_subs_capacity(s);
		double ctr = cap * (4 * sky_subs_n_classes(s) + 4) * 8, rec = cap * 16;
		double rest = (double)(h1 - h0) - ctr - rec;

		printf("memory: rte_malloc %.1f MB = %.0f B/subscriber (capacity %.0f): counters "
		       "%.0f B (1 worker; per worker), records %.0f B, rte_lpm6 tables %.0f B "
		       "(3 x 64 MB tbl24 fixed = %.0f B of it); control-path heap %.1f MB = %.0f "
		       "B/subscriber\n",
		       (h1 - h0) / 1e6, (double)(h1 - h0) / n, cap, ctr / n, rec / n, rest / n,
		       3 * 64.0 * 1048576 / n, (c1 - c0) / 1e6, (double)(c1 - c0) / n);
	}

	m = rte_malloc("bench_meta", N_META * sizeof(*m), 64);
	if (m == NULL)
		return 1;
	{
		static const char *what[3] = {"IPv4 /32", "IPv6 in a /56", "IPv4 in a VLAN realm"};

		for (int k = 0; k < 3; k++) {
			double cyc;

			fill_meta(m, n, k == 1, k == 2);
			cyc = bench_lookup(s, m, &miss);
			printf("lookup %s, random subscriber: %.1f cycles/packet (%u of %u "
			       "unknown: "
			       "realm-only subscribers seen untagged)\n",
			       what[k], cyc, miss, N_META);
		}
	}
	fill_meta(m, n, 0, 0);
	bench_lookup(s, m, &miss);
	printf("account (per-subscriber counters): %.1f cycles/packet\n",
	       time_stage(s, m, account_stage, false));

	/* runtime changes on the full table, through the control registry */
	sky_ctl_unregister_all();
	if (sky_subs_register(s) < 0)
		return 1;
	printf("subscriber set (plan, country): %.1f us/command\n",
	       run_cmds("subscriber set %u plan=premium country=FR", 1, 1000, 997));
	printf("subscriber set ipv4 (LPM add + delete + RCU): %.1f us/command\n",
	       run_cmds("subscriber set %u ipv4=172.16.%u.%u", 2, 200, 1));
	printf("subscriber add: %.1f us/command\n",
	       run_cmds("subscriber add %u ipv4=172.17.%u.%u plan=basic beam=beam1 country=DE",
			n + 10, 250, 1));
	printf("subscriber del: %.1f us/command\n", run_cmds("subscriber del %u", n + 10, 250, 1));
	{
		uint64_t lt = rte_rdtsc();
		char line[400], *av[3] = {"subscriber", "load", line};
		json_t *r;

		if (write_csv(csv2, n, 500000) != 0) /* half the ids stay, half are new */
			return 1;
		snprintf(line, sizeof(line), "%s", csv2);
		lt = rte_rdtsc();
		cpu0 = sky_fx_cpu_s();
		r = sky_ctl_dispatch_argv(3, av, 0, 0, 0);
		printf("subscriber load (replace %u, build aside, swap): %.2f s wall, %.2f s CPU "
		       "%s\n",
		       n, (rte_rdtsc() - lt) / hz, sky_fx_cpu_s() - cpu0,
		       json_is_true(json_object_get(r, "ok"))
			       ? ""
			       : json_string_value(json_object_get(r, "error")));
		json_decref(r);
	}
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	rte_free(m);
	sky_subs_destroy(s);
	sky_cfg_free(cfg);
	sky_fx_eal_stop(); /* the CSV files go with the fixture's temporary directory */
	return 0;
}
