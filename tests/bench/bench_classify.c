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

#include <rte_acl.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include "skygate/classify.h"
#include "skygate/config.h"
#include "skygate/runtime.h"

#include "fixture.h"

#define N_META 65536

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static inline uint64_t
rnd(void)
{
	return sky_fx_rand64(&rng);
}

static uint64_t cyc[8 * N_META / SKY_BURST];

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
	qsort(cyc, k, sizeof(cyc[0]), sky_fx_cmp_u64);
	return (double)cyc[k / 2] / SKY_BURST;
}

/* --- the same rules in rte_acl, for the choice (IPv4 only) --- */

/* rte_acl: only the first field may be one byte, then groups of 4 bytes (one per
 * input_index); a 1-byte dscp field in a later group silently matched nothing here */
struct acl_in {
	uint8_t proto;
	uint8_t pad[3];
	uint32_t dscp;	 /* network order */
	uint32_t remote; /* network order */
	uint16_t sport;	 /* network order */
	uint16_t dport;
};

static struct rte_acl_field_def acl_fields[5] = {
	{.type = RTE_ACL_FIELD_TYPE_BITMASK,
	 .size = 1,
	 .field_index = 0,
	 .input_index = 0,
	 .offset = 0},
	{.type = RTE_ACL_FIELD_TYPE_BITMASK,
	 .size = 4,
	 .field_index = 1,
	 .input_index = 1,
	 .offset = 4},
	{.type = RTE_ACL_FIELD_TYPE_MASK,
	 .size = 4,
	 .field_index = 2,
	 .input_index = 2,
	 .offset = 8},
	{.type = RTE_ACL_FIELD_TYPE_RANGE,
	 .size = 2,
	 .field_index = 3,
	 .input_index = 3,
	 .offset = 12},
	{.type = RTE_ACL_FIELD_TYPE_RANGE,
	 .size = 2,
	 .field_index = 4,
	 .input_index = 3,
	 .offset = 14},
};

RTE_ACL_RULE_DEF(acl_rule, 5);

static int n_acl;
static struct acl_rule acl_rules[64];

/* one ACL rule: any field left at "any"; cls + 1 is the userdata; earlier = stronger */
static struct acl_rule *
acl_add(int cls)
{
	struct acl_rule *r = &acl_rules[n_acl];

	memset(r, 0, sizeof(*r));
	r->data.category_mask = 1;
	r->data.priority = 1000 - n_acl;
	r->data.userdata = (uint32_t)cls + 1;
	r->field[3].mask_range.u16 = 65535;
	r->field[4].mask_range.u16 = 65535;
	n_acl++;
	return r;
}

static void
acl_dscp(int cls, uint8_t d)
{
	struct acl_rule *r = acl_add(cls);

	r->field[1].value.u32 = d;
	r->field[1].mask_range.u32 = 0xffffffff;
}

static void
acl_ports(int cls, int proto, uint16_t lo, uint16_t hi)
{
	for (int side = 3; side <= 4; side++) { /* sport, then dport */
		struct acl_rule *r = acl_add(cls);

		if (proto >= 0) {
			r->field[0].value.u8 = (uint8_t)proto;
			r->field[0].mask_range.u8 = 0xff;
		}
		r->field[side].value.u16 = lo;
		r->field[side].mask_range.u16 = hi;
	}
}

static struct rte_acl_ctx *
acl_build(void)
{
	struct rte_acl_param prm = {.name = "bench_acl",
				    .socket_id = SOCKET_ID_ANY,
				    .rule_size = RTE_ACL_RULE_SZ(5),
				    .max_rule_num = 64};
	struct rte_acl_config cfg = {.num_categories = 1, .num_fields = 5};
	struct rte_acl_ctx *ctx = rte_acl_create(&prm);
	struct acl_rule *r;

	/* realtime: dscp 46, 34; ports 53, 5060, 16384-32767 */
	acl_dscp(0, 46);
	acl_dscp(0, 34);
	acl_ports(0, -1, 53, 53);
	acl_ports(0, -1, 5060, 5060);
	acl_ports(0, -1, 16384, 32767);
	/* interactive: tcp; ports 22, 80, 443; remote 198.51.100.0/24 */
	r = acl_add(1);
	r->field[0].value.u8 = 6;
	r->field[0].mask_range.u8 = 0xff;
	acl_ports(1, -1, 22, 22);
	acl_ports(1, -1, 80, 80);
	acl_ports(1, -1, 443, 443);
	r = acl_add(1);
	r->field[2].value.u32 = 198u << 24 | 51u << 16 | 100u << 8;
	r->field[2].mask_range.u32 = 24;
	/* scavenger: dscp 8; udp and 6881-6889 */
	acl_dscp(3, 8);
	acl_ports(3, 17, 6881, 6889);
	memcpy(cfg.defs, acl_fields, sizeof(acl_fields));
	if (ctx == NULL || rte_acl_add_rules(ctx, (struct rte_acl_rule *)acl_rules, n_acl) != 0 ||
	    rte_acl_build(ctx, &cfg) != 0) {
		printf("rte_acl build failed\n");
		return NULL;
	}
	return ctx;
}

static double
run_acl(struct rte_acl_ctx *ctx, struct sky_meta *m, unsigned int *mismatch)
{
	size_t k = 0;

	for (int r = 0; r < 8; r++)
		for (int i = 0; i < N_META; i += SKY_BURST) {
			struct sky_meta b[SKY_BURST];
			struct acl_in in[SKY_BURST];
			const uint8_t *dp[SKY_BURST];
			uint32_t res[SKY_BURST];
			uint64_t t0;

			memcpy(b, &m[i], sizeof(b));
			t0 = rte_rdtsc_precise();
			for (int j = 0; j < SKY_BURST; j++) {
				const struct sky_meta *x = &b[j];
				int ports = x->flags & SKY_MF_PORTS;

				in[j].proto = x->proto;
				in[j].dscp = rte_cpu_to_be_32(x->dscp);
				memcpy(&in[j].remote, sky_meta_remote_addr(x), 4);
				in[j].sport = ports ? rte_cpu_to_be_16(x->sport) : 0;
				in[j].dport = ports ? rte_cpu_to_be_16(x->dport) : 0;
				dp[j] = (const uint8_t *)&in[j];
			}
			rte_acl_classify(ctx, dp, res, SKY_BURST, 1);
			for (int j = 0; j < SKY_BURST; j++)
				b[j].worker_tag = res[j] ? (uint8_t)(res[j] - 1) : 2;
			cyc[k++] = rte_rdtsc_precise() - t0;
			if (r == 0)
				for (int j = 0; j < SKY_BURST; j++) {
					*mismatch += b[j].worker_tag != m[i + j].cls;
				}
		}
	qsort(cyc, k, sizeof(cyc[0]), sky_fx_cmp_u64);
	return (double)cyc[k / 2] / SKY_BURST;
}

static struct sky_classifier *
make(const char *classes, double *compile_ms)
{
	struct sky_cfg_err err;
	struct sky_cfg *cfg;
	struct sky_classifier *c;
	uint64_t t0;

	cfg = sky_fx_cfg("bench.yaml", &err, SKY_FX_MODEL_MIN "%s", classes);
	if (cfg == NULL) {
		printf("%s\n", err.msg);
		exit(1);
	}
	t0 = rte_rdtsc();
	c = sky_classify_create(cfg, 0, &err);
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
	static char big[150000];
	struct sky_meta *m;
	struct sky_classifier *c;
	unsigned int hist[8] = {0};
	double ms, cpp;
	size_t o;

	if (sky_fx_eal_start("bench_classify",
			     &(struct sky_fx_eal){.mem_mb = 1024, .skygate_log = "warning"}) < 0)
		return 1;
	m = rte_malloc("bench_meta", N_META * sizeof(*m), 64);
	fill(m);

	c = make(SKY_FX_CLASSES, &ms); /* the standard classes */
	cpp = run(c, m, hist);
	printf("classify, 4 classes / 8 rules (config reference): %.1f cycles/packet, compile "
	       "%.2f ms (classes hit: %u %u %u %u)\n",
	       cpp, ms, hist[0], hist[1], hist[2], hist[3]);
	{
		/* rte_acl on the IPv4 packets of the same mix (ICMP has no ports: 0 in ACL) */
		struct sky_meta *v4 = rte_malloc("bench_v4", N_META * sizeof(*v4), 64);
		struct rte_acl_ctx *ctx = acl_build();
		unsigned int mismatch = 0;
		double acl;
		int k = 0;

		for (int i = 0; k < N_META; i = (i + 1) % N_META)
			if (m[i].l3 == 4)
				v4[k++] = m[i];
		memset(hist, 0, sizeof(hist));
		cpp = run(c, v4, hist);
		acl = ctx ? run_acl(ctx, v4, &mismatch) : 0;
		printf("  same rules, IPv4 only: sky_classify %.1f cycles/packet, rte_acl (%d ACL "
		       "rules, + gathering its input) %.1f cycles/packet, %u results differ\n",
		       cpp, n_acl, acl, mismatch);
		rte_acl_free(ctx);
		rte_free(v4);
	}
	sky_classify_destroy(c);

	o = (size_t)snprintf(big, sizeof(big),
			     "classes:\n  - { name: realtime, dscp: [46], ports: [53] }\n"
			     "  - { name: cdn, prefixes: [");
	for (int i = 0; i < 2000; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"198.51.%d.%d/28\"",
				      i ? ", " : "", i / 16, (i % 16) * 16);
	snprintf(big + o, sizeof(big) - o, "] }\n  - { name: bulk, default: true }\n");
	c = make(big, &ms);
	memset(hist, 0, sizeof(hist));
	cpp = run(c, m, hist);
	printf("classify, 2000 remote prefixes in one class: %.1f cycles/packet, compile %.2f ms "
	       "(classes hit: %u %u %u)\n",
	       cpp, ms, hist[0], hist[1], hist[2]);
	sky_classify_destroy(c);
	rte_free(m);
	sky_fx_eal_stop();
	return 0;
}
