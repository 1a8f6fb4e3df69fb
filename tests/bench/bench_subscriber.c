/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subscriber table at scale: generate an N-row CSV (default 1M dual-stack subscribers, an
 * IPv4 /32 and an IPv6 /56 each; a few realm subscribers), time the load, report memory
 * per subscriber (rte_malloc heap before/after, plus the control-path heap), cycles per
 * packet of the burst lookup with random subscribers (IPv4, IPv6, VLAN realm), of the
 * accounting, of both together on one burst (as a worker runs them: the lookup prefetches
 * the counter line), and the cost of runtime changes and of a whole-table `subscriber
 * load`. The previous structure (rte_lpm6 per family, 16-byte records, counters strided
 * per subscriber on rte_malloc pages) is rebuilt from the same rows and timed in the same
 * process for a before/after on one machine state. Prints figures; never fails on one.
 *
 * The tables sit on 2 MB pages (transparent huge pages under EAL --no-huge, see
 * lib/subscriber/subscriber_table.c); `nothp` turns them off for the process
 * (PR_SET_THP_DISABLE), to see the same structure on 4 KB pages.
 *
 *   bench_subscriber [N] [nothp]
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

#include <jansson.h>
#include <rte_cycles.h>
#include <rte_lpm6.h>
#include <rte_prefetch.h>
#include <rte_malloc.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"
#include "../../lib/subscriber/subscriber_priv.h"

#include "fixture.h"

#define N_META 65536

/* plans, beams (the CSV uses beam1..beam4) and the four classes */
#define BENCH_MODEL                                                                                \
	"plans: { basic: { down: 50Mbit, up: 5Mbit }, premium: { down: 200Mbit, up: "              \
	"20Mbit } }\n"                                                                             \
	"beams: { beam1: { down: 1Gbit, up: 200Mbit }, beam2: { down: 1Gbit, up: 200Mbit "         \
	"}, "                                                                                      \
	"beam3: { down: 1Gbit, up: 200Mbit }, beam4: { down: 1Gbit, up: 200Mbit } }\n"             \
	"classes: [ { name: realtime, dscp: [46] }, { name: interactive, protocol: [tcp] "         \
	"}, "                                                                                      \
	"{ name: bulk, default: true }, { name: scavenger, dscp: [8] } ]\n"

static const char *countries[] = {"DE", "FR", "NG", "KE", "BR", "ID", "PE", "US", "ZA", "IN"};

static uint64_t rng = 88172645463325252ULL;

static inline uint64_t
rnd(void)
{
	return sky_fx_rand64(&rng);
}

/* 0: dense pools (the default); 1: spread, the layout that exhausted rte_lpm6's groups:
 * one /32 per /24 and /56s scattered over 2000::/3 */
static int spread;

static void
v4_of(uint32_t i, uint8_t a[4])
{
	/* 10.0.0.1 ... sequential /32s, or 10.0.0.1, 10.0.1.1, ... one per /24 */
	uint32_t x = spread ? (10u << 24) + (i << 8) + 1 : (10u << 24) + 1 + i;

	a[0] = (uint8_t)(x >> 24);
	a[1] = (uint8_t)(x >> 16);
	a[2] = (uint8_t)(x >> 8);
	a[3] = (uint8_t)x;
}

static void
v6_of(uint32_t i, uint8_t a[16])
{
	memset(a, 0, 16);
	if (spread) { /* i scrambled (a bijection) into bytes 1..4, 2000::/3 by i's low bits */
		uint32_t x = i * 0x9E3779B1u;

		a[0] = (uint8_t)(0x20 | (i & 0x1f));
		a[1] = (uint8_t)(x >> 24);
		a[2] = (uint8_t)(x >> 16);
		a[3] = (uint8_t)(x >> 8);
		a[4] = (uint8_t)x;
		return;
	}
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

static void
both_stage(struct sky_subs *s, struct sky_meta *b)
{
	sky_subs_lookup_burst(s, 0, b, SKY_BURST);
	sky_subs_account_burst(s, 0, b, SKY_BURST);
}

/* --- the previous structure, for a same-process comparison (IPv4 and IPv6 without
 * realms; its code as it was in lib/subscriber before the hash) --- */
struct old_rec {
	uint64_t w;
	uint16_t realm;
	uint16_t pad[3];
};

static struct {
	struct rte_lpm6 *lpm4, *lpm6;
	struct old_rec *rec;
	uint64_t *ctr; /* [capacity][stride] */
	unsigned int nc, stride;
	uint32_t cap;
} old;

struct old_keys {
	uint8_t k[SKY_BURST][16];
	uint8_t pos[SKY_BURST];
	unsigned int n;
};

static void
old_lookup(struct sky_meta *meta, uint16_t n)
{
	struct old_keys k4, k6;
	int32_t h[SKY_BURST];
	uint32_t idx[SKY_BURST];

	k4.n = k6.n = 0;
	for (uint16_t i = 0; i < n; i++) {
		struct old_keys *b = meta[i].l3 == 4 ? &k4 : &k6;

		idx[i] = SKY_SUB_NONE;
		if (!sky_meta_live(&meta[i]))
			continue;
		memcpy(b->k[b->n], sky_meta_sub_addr(&meta[i]), 16);
		b->pos[b->n++] = (uint8_t)i;
	}
	for (int f = 0; f < 2; f++) {
		struct old_keys *b = f == 0 ? &k4 : &k6;

		if (b->n == 0)
			continue;
		rte_lpm6_lookup_bulk_func(f == 0 ? old.lpm4 : old.lpm6, b->k, h, b->n);
		for (unsigned int j = 0; j < b->n; j++)
			if (h[j] >= 0) {
				idx[b->pos[j]] = (uint32_t)h[j];
				rte_prefetch0(&old.rec[h[j]]);
			}
	}
	for (uint16_t i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];
		uint64_t w;

		if (!sky_meta_live(m) || idx[i] == SKY_SUB_NONE) {
			m->sub_idx = SKY_SUB_NONE;
			continue;
		}
		w = old.rec[idx[i]].w;
		m->sub_idx = idx[i];
		m->sub_id = (uint32_t)w;
		m->sub_country = (uint16_t)(w >> 32);
		m->plan = (uint16_t)((w >> 48) & 0xff);
		m->beam = (uint16_t)(w >> 56);
		m->realm = old.rec[idx[i]].realm;
	}
}

static void
old_account(const struct sky_meta *meta, uint16_t n)
{
	const unsigned int nc = old.nc;

	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];

		if (m->sub_idx < old.cap && m->l3 != 0) {
			uint64_t *c = old.ctr + (size_t)m->sub_idx * old.stride;
			unsigned int k = (m->dir & 1) * nc + (m->cls < nc ? m->cls : 0);

			rte_prefetch0(&c[k]);
			rte_prefetch0(&c[2 * nc + k]);
		}
	}
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		unsigned int dir = m->dir & 1, cls = m->cls < nc ? m->cls : 0;

		if (m->l3 == 0 || m->sub_idx >= old.cap)
			continue;
		old.ctr[(size_t)m->sub_idx * old.stride + dir * nc + cls]++;
		old.ctr[(size_t)m->sub_idx * old.stride + 2 * nc + dir * nc + cls] += m->pkt_len;
	}
}

static void
old_lookup_stage(struct sky_subs *s, struct sky_meta *b)
{
	(void)s;
	old_lookup(b, SKY_BURST);
}

static void
old_account_stage(struct sky_subs *s, struct sky_meta *b)
{
	(void)s;
	old_account(b, SKY_BURST);
}

static void
old_both_stage(struct sky_subs *s, struct sky_meta *b)
{
	(void)s;
	old_lookup(b, SKY_BURST);
	old_account(b, SKY_BURST);
}

/* the previous tables from rows (realm rows left out); MB of rte_malloc, or -1 */
static double
old_build(const struct sky_subs_rows *rows, const uint32_t need[2], uint32_t cap, unsigned int nc)
{
	size_t h0 = heap_used();
	uint32_t spare = cap - (uint32_t)rows->n;
	struct rte_lpm6_config c4 = {.max_rules = cap + 64,
				     .number_tbl8s = need[0] + need[0] / 8 + 1024 + spare / 16};
	struct rte_lpm6_config c6 = {.max_rules = cap + 64,
				     .number_tbl8s = need[1] + need[1] / 8 + 1024 + spare / 16};

	old.nc = nc;
	old.stride = 4 * nc + 4;
	old.cap = cap;
	old.lpm4 = rte_lpm6_create("bench_old4", SOCKET_ID_ANY, &c4);
	old.lpm6 = rte_lpm6_create("bench_old6", SOCKET_ID_ANY, &c6);
	old.rec = rte_zmalloc("bench_old_rec", (size_t)cap * sizeof(*old.rec), 64);
	old.ctr = rte_zmalloc("bench_old_ctr", (size_t)cap * old.stride * 8, 64);
	if (old.lpm4 == NULL || old.lpm6 == NULL || old.rec == NULL || old.ctr == NULL)
		return -1;
	for (size_t i = 0; i < rows->n; i++) {
		const struct sky_sub_info *r = &rows->r[i].sub;
		uint8_t k[16] = {0};

		if (r->realm != 0)
			continue;
		old.rec[i].w = (uint64_t)r->id | (uint64_t)r->country << 32 |
			       (uint64_t)(r->plan & 0xff) << 48 | (uint64_t)(r->beam & 0xff) << 56;
		if (r->has_v4) {
			memcpy(k, r->v4, 4);
			if (rte_lpm6_add(old.lpm4, k, r->v4_len, (uint32_t)i) < 0)
				return -1;
		}
		if (r->has_v6 && rte_lpm6_add(old.lpm6, r->v6, r->v6_len, (uint32_t)i) < 0)
			return -1;
	}
	return (double)(heap_used() - h0) / 1e6;
}

static void
old_free(void)
{
	rte_lpm6_free(old.lpm4);
	rte_lpm6_free(old.lpm6);
	rte_free(old.rec);
	rte_free(old.ctr);
}

/* the kB of transparent huge pages this process has */
static long
thp_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kb = -1;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
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

	if (argc > 2 && strcmp(argv[2], "nothp") == 0 && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		perror("PR_SET_THP_DISABLE");
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
	cfg = sky_fx_cfg("bench.yaml", &err,
			 "subscribers: { file: %s, unknown: drop }\n" BENCH_MODEL, csv);
	if (cfg == NULL) {
		printf("%s\n", err.msg);
		return 1;
	}
	struct sky_subs_rows rows = {0}; /* kept for the previous structure */
	uint32_t need[3] = {0, 0, 0};
	{
		/* the parser alone: CSV -> rows, then the uniqueness check (sorts) */
		struct sky_subs_csv_names nm = {.n_plans = 2,
						.n_beams = 4,
						.plans = {"basic", "premium"},
						.beams = {"beam1", "beam2", "beam3", "beam4"}};
		char e[512];
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
	printf("load %u subscribers (parse, check, build the hash): %.2f s wall, %.2f s "
	       "CPU (load average %.1f)\n",
	       n, sec, cpu1 - cpu0, loadavg());
	{
		double cap = sky_subs_capacity(s),
		       tot = (double)(h1 - h0) + (double)sky_big_mapped();
		double ctr = cap * (4 * sky_subs_n_classes(s) + 4) * 8, rec = cap * 32;
		double bkt = (double)s->tab->nb * 64;

		printf("memory: %.1f MB = %.0f B/subscriber (rte_malloc %.1f MB + mapped %.1f MB; "
		       "capacity %.0f): counters %.0f B (1 worker; per worker), records %.0f B, "
		       "hash buckets %.0f B (%u, %u keys), other %.0f B; control-path heap %.1f "
		       "MB = %.0f B/subscriber; transparent huge pages %ld kB\n",
		       tot / 1e6, tot / n, (h1 - h0) / 1e6, sky_big_mapped() / 1e6, cap, ctr / n,
		       rec / n, bkt / n, s->tab->nb, s->tab->n_keys, (tot - ctr - rec - bkt) / n,
		       (c1 - c0) / 1e6, (double)(c1 - c0) / n, thp_kb());
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
	for (int v6 = 0; v6 < 2; v6++) {
		const char *fam = v6 ? "IPv6" : "IPv4";

		fill_meta(m, n, v6, 0);
		bench_lookup(s, m, &miss);
		printf("account (per-subscriber counters, %s): %.1f cycles/packet\n", fam,
		       time_stage(s, m, account_stage, false));
		printf("lookup + account on one burst (as a worker runs them), %s: %.1f "
		       "cycles/packet\n",
		       fam, time_stage(s, m, both_stage, true));
	}
	{
		/* the previous structure on the same rows, same process */
		double mb = old_build(&rows, need, sky_subs_capacity(s), sky_subs_n_classes(s));

		if (mb < 0) {
			printf("previous structure: build failed\n");
		} else {
			printf("previous structure (rte_lpm6 + 16 B records + strided counters): "
			       "rte_malloc %.1f MB = %.0f B/subscriber (no realm table)\n",
			       mb, mb * 1e6 / n);
			for (int v6 = 0; v6 < 2; v6++) {
				const char *fam = v6 ? "IPv6 in a /56" : "IPv4 /32";

				fill_meta(m, n, v6, 0);
				printf("previous: lookup %s %.1f, account %.1f, lookup + account "
				       "%.1f cycles/packet\n",
				       fam, time_stage(s, m, old_lookup_stage, true),
				       time_stage(s, m, old_account_stage, false),
				       time_stage(s, m, old_both_stage, true));
			}
		}
		old_free();
		sky_subs_rows_free(&rows);
	}

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
	sky_subs_destroy(s);
	sky_cfg_free(cfg);
	{
		/* capacity holds whatever the layout: n subscribers, one /32 per /24 and /56s
		 * over 2000::/3, in a table of capacity exactly n */
		char csv3[300];

		spread = 1;
		snprintf(csv3, sizeof(csv3), "%s/subs_spread.csv", sky_fx_tmpdir());
		if (write_csv(csv3, n, 1) != 0)
			return 1;
		cfg = sky_fx_cfg(
			"spread.yaml", &err,
			"subscribers: { file: %s, capacity: %u, unknown: drop }\n" BENCH_MODEL,
			csv3, n);
		if (cfg == NULL) {
			printf("%s\n", err.msg);
			return 1;
		}
		cpu0 = sky_fx_cpu_s();
		t0 = rte_rdtsc();
		s = sky_subs_create(cfg, 1, &err);
		if (s == NULL) {
			printf("spread layout: %u subscribers in capacity %u refused: %s\n", n, n,
			       err.msg);
			return 1;
		}
		printf("spread layout (one /32 per /24, /56s over 2000::/3): %u subscribers in "
		       "capacity %u, loaded in %.2f s wall, %.2f s CPU\n",
		       sky_subs_count(s), sky_subs_capacity(s), (rte_rdtsc() - t0) / hz,
		       sky_fx_cpu_s() - cpu0);
		for (int v6 = 0; v6 < 2; v6++) {
			fill_meta(m, n, v6, 0);
			printf("spread layout: lookup %s %.1f, lookup + account %.1f cycles/packet "
			       "(%u of %u unknown)\n",
			       v6 ? "IPv6" : "IPv4", bench_lookup(s, m, &miss),
			       time_stage(s, m, both_stage, true), miss, N_META);
		}
		sky_subs_destroy(s);
		sky_cfg_free(cfg);
	}
	rte_free(m);
	sky_fx_eal_stop(); /* the CSV files go with the fixture's temporary directory */
	return 0;
}
