/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy stage cost: cycles per packet of sky_policy_run_burst (context build + program
 * + verdict handling + counters; timed from outside per chunk of bursts, less the same
 * loop without the stage) for each sample policy, JIT and interpreter, and the time to read,
 * check, load and JIT-compile each object. Prints figures; never fails on a number.
 *
 *   SKY_BUILD_ROOT=build ./build/tests/bench/bench_policy
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>

#include "sky_build_config.h"
#include "skygate/config.h"
#include "skygate/meta.h"
#include "skygate/policy.h"
#include "skygate/runtime.h"

#include "../../lib/policy/policy_impl.h"

#include "fixture.h"

#define N_TEMPLATES 1024
#define CHUNKS 200
#define CHUNK_BURSTS 100 /* the machine is shared: report the best and median chunk */

static const char *const ccs[] = {"DE", "FR", "US", "GB", "IT", "ES", "NL", "PL", "SE", "NO",
				  "BR", "AR", "MX", "CA", "JP", "KR", "IN", "ZA", "NG", "EG",
				  "RU", "KP", "IR", "CN", "UA", "TR", "AU", "NZ", "CL", "PE"};

struct bench {
	const char *name;
	const char *maps; /* YAML under policy: */
};

static const struct bench benches[] = {
	{"pass_all", ""}, /* tests/unit/policy: the baseline (context, call, verdict) */
	{"country_block", "  maps:\n    blocked_terminal_countries: {RU: 1, IR: 1}\n"
			  "    blocked_remote_countries: {KP: 1, CN: 1, IR: 1}\n"},
	{"remote_country_block", "  maps:\n    blocked_remote_countries: {KP: 1, CN: 1}\n"},
	{"walled_garden", "  maps:\n    suspended: {1: 1, 3: 1, 5: 1, 7: 1}\n"
			  "    garden_v4: {192.0.2.0/24: 1, 198.51.100.53/32: 1}\n"
			  "    garden_v6: {\"2001:db8:53::/48\": 1}\n"},
	{"country_matrix",
	 "  maps:\n    matrix: {\"UA:RU\": drop, \"RU:UA\": drop, \"DE:KP\": 515}\n"
	 "    sub_default: {IR: drop}\n"},
};

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t
rnd(void)
{
	return (uint32_t)sky_fx_rand64(&rng);
}

static void
templates(struct sky_meta *t)
{
	for (int i = 0; i < N_TEMPLATES; i++) {
		struct sky_meta *m = &t[i];
		uint32_t r = rnd();

		memset(m, 0, sizeof(*m));
		m->dir = r & 1;
		m->l3 = (r & 0x1e) ? 4 : 6;
		m->proto = 6;
		m->flags = SKY_MF_PORTS;
		m->sport = 40000 + (r & 0xff);
		m->dport = 443;
		m->pkt_len = 1000;
		m->sub_id = 1 + (rnd() & 15);
		m->sub_country = sky_cc(ccs[rnd() % 30]);
		m->remote_country = sky_cc(ccs[rnd() % 30]);
		if (m->l3 == 4) {
			uint32_t sub = htonl(0x0a000000 | (rnd() & 0xffff));
			uint32_t rem = (rnd() & 3) == 0 ? htonl(0xc0000200 | (rnd() & 0xff))
							: htonl(0x08080000 | (rnd() & 0xffff));

			memcpy(m->dir == SKY_DIR_UP ? m->src : m->dst, &sub, 4);
			memcpy(m->dir == SKY_DIR_UP ? m->dst : m->src, &rem, 4);
		} else {
			inet_pton(AF_INET6, "2001:db8:1::5",
				  m->dir == SKY_DIR_UP ? m->src : m->dst);
			inet_pton(AF_INET6, (rnd() & 1) ? "2001:db8:53::1" : "2a00:1450::1",
				  m->dir == SKY_DIR_UP ? m->dst : m->src);
		}
	}
}

static struct sky_policy *
make(const char *path, const char *maps, int jit)
{
	struct sky_cfg_err err;
	struct sky_cfg *cfg;
	struct sky_policy *p;

	cfg = sky_fx_cfg("bench.yaml", &err, "policy:\n  object: %s\n  jit: %s\n%s", path,
			 jit ? "true" : "false", maps);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	p = sky_policy_create(cfg, NULL, &err);
	sky_cfg_free(cfg);
	if (p == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	return p;
}

static double
now_us(void)
{
	return sky_fx_now_s() * 1e6;
}

int
main(int argc, char **argv)
{
	const char *br = getenv("SKY_BUILD_ROOT");
	static struct sky_meta tmpl[N_TEMPLATES];
	struct sky_meta meta[SKY_BURST];

	if (sky_fx_eal_start("bench_policy", &(struct sky_fx_eal){.mem_mb = 256}) < 0)
		return 1;
	templates(tmpl);
	printf("policy stage: %d chunks of %d bursts of %d packets, TSC %.2f GHz; cycles/packet "
	       "of the best and the median chunk\n",
	       CHUNKS, CHUNK_BURSTS, SKY_BURST, (double)sky_rt.tsc_hz / 1e9);
	for (size_t b = 0; b < RTE_DIM(benches); b++) {
		char path[2048], err[1024];

		snprintf(path, sizeof(path), "%s/%s/%s.bpf.o", br ? br : SKY_BUILD_ROOT,
			 b == 0 ? "tests/unit/policy" : "conf/policies", benches[b].name);
		for (int jit = 1; jit >= 0; jit--) {
			struct sky_policy *p = make(path, benches[b].maps, jit);
			struct sky_policy_stats st;
			static double per[CHUNKS], base[CHUNKS];
			int k = 0;

			for (int c = 0; c < CHUNKS; c++) {
				uint64_t t0, t1, t2;
				int k0 = k;

				/* the same copies of the metadata without the stage, then with */
				t0 = rte_rdtsc();
				for (int i = 0; i < CHUNK_BURSTS; i++, k++) {
					memcpy(meta, &tmpl[(k * SKY_BURST) % N_TEMPLATES],
					       sizeof(meta));
					__asm__ volatile("" : : "r"(meta) : "memory");
				}
				t1 = rte_rdtsc();
				for (int i = 0; i < CHUNK_BURSTS; i++, k0++) {
					memcpy(meta, &tmpl[(k0 * SKY_BURST) % N_TEMPLATES],
					       sizeof(meta));
					sky_policy_run_burst(p, 0, meta, SKY_BURST);
				}
				t2 = rte_rdtsc();
				base[c] = (double)(t1 - t0);
				per[c] = (double)(t2 - t1);
			}
			/* less the quietest run of the copies alone */
			qsort(base, CHUNKS, sizeof(base[0]), sky_fx_cmp_double);
			for (int c = 0; c < CHUNKS; c++)
				per[c] = (per[c] - base[0]) / (CHUNK_BURSTS * SKY_BURST);
			sky_policy_stats(p, &st);
			qsort(per, CHUNKS, sizeof(per[0]), sky_fx_cmp_double);
			printf("%-22s %-11s best %6.1f  median %6.1f cycles/packet  (%.1f ns; "
			       "%.1f%% dropped)\n",
			       benches[b].name, jit ? "JIT" : "interpreter", per[0],
			       per[CHUNKS / 2], per[0] * 1e9 / (double)sky_rt.tsc_hz,
			       100.0 * (double)st.drop / (double)st.runs);
			if (jit) {
				/* read + check + rte_bpf_load + JIT, swapped in (maps kept) */
				static double lt[50];
				int n = 50;
				uint64_t rd = UINT64_MAX, ck = UINT64_MAX, jt = UINT64_MAX;

				for (int i = 0; i < n; i++) {
					double t0 = now_us();

					if (sky_policy_load_file(p, path, err, sizeof(err)) != 0) {
						fprintf(stderr, "%s\n", err);
						return 1;
					}
					lt[i] = now_us() - t0;
					rd = RTE_MIN(rd, p->prog->read_ns);
					ck = RTE_MIN(ck, p->prog->check_ns);
					jt = RTE_MIN(jt, p->prog->jit_ns);
				}
				qsort(lt, n, sizeof(lt[0]), sky_fx_cmp_double);
				printf("%-22s load+check+JIT+swap best %.1f us, median %.1f us; "
				       "best parts: libbpf+libelf %.1f, checker %.1f, "
				       "rte_bpf_load+JIT %.1f us\n",
				       benches[b].name, lt[0], lt[n / 2], rd / 1e3, ck / 1e3,
				       jt / 1e3);
			}
			sky_policy_destroy(p);
		}
	}
	sky_fx_eal_stop();
	return 0;
}
