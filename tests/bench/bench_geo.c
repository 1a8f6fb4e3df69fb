/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_geo: full location database -> load time, DPDK memory, and cycles/packet of
 * sky_geo_lookup_burst() (bursts of 32) for IPv4 and IPv6 remote addresses, drawn
 * (a) from the database's own networks and (b) uniformly at random.
 *
 *   bench_geo [DATABASE]     (default /usr/share/libloc-location/location.db)
 *
 * Both FIB lookup codes are measured: scalar (DPDK's default) and AVX512 (geo.lookup:
 * avx512, which raises the SIMD limit to 512 bits). The figure is the geo stage with its
 * meta side array hot, as in the worker loop (see run()); best of 50 passes of 64k
 * addresses (~1 ms each), as the machine is shared.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libloc/libloc.h>
#include <libloc/database.h>
#include <libloc/network.h>

#include <rte_cycles.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/geo.h"
#include "skygate/runtime.h"

#include "fixture.h"

#define N_ADDR (1u << 16)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
	return sky_fx_rand64(&rng);
}

struct netv {
	uint8_t ip[16];
	uint8_t depth;
};

/* networks of one family from libloc, to draw addresses the database knows */
static struct netv *
load_nets(const char *path, int family, size_t *n)
{
	struct loc_ctx *ctx;
	struct loc_database *db;
	struct loc_database_enumerator *e;
	struct loc_network *net;
	struct netv *v = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	*n = 0;
	if (f == NULL || loc_new(&ctx) != 0)
		return NULL;
	if (loc_database_new(ctx, &db, f) != 0)
		return NULL;
	loc_database_enumerator_new(&e, db, LOC_DB_ENUMERATE_NETWORKS, 0);
	loc_database_enumerator_set_family(e, family);
	while (loc_database_enumerator_next_network(e, &net) == 0 && net != NULL) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				return NULL;
		}
		if (family == AF_INET) {
			memcpy(v[*n].ip, &loc_network_get_first_address(net)->s6_addr[12], 4);
			v[*n].depth = (uint8_t)loc_network_prefix(net);
		} else {
			memcpy(v[*n].ip, loc_network_get_first_address(net)->s6_addr, 16);
			v[*n].depth = (uint8_t)loc_network_prefix(net);
		}
		(*n)++;
		loc_network_unref(net);
	}
	loc_database_enumerator_unref(e);
	loc_database_unref(db);
	loc_unref(ctx);
	fclose(f);
	return v;
}

static void
fill_meta(struct sky_meta *m, int family, const struct netv *nets, size_t n_nets)
{
	unsigned int len = family == AF_INET ? 4 : 16;

	for (unsigned int i = 0; i < N_ADDR; i++) {
		uint8_t a[16];

		memset(&m[i], 0, sizeof(m[i]));
		m[i].l3 = family == AF_INET ? 4 : 6;
		m[i].dir = (i & 1) ? SKY_DIR_DOWN : SKY_DIR_UP;
		for (unsigned int b = 0; b < 16; b += 8) {
			uint64_t r = rnd();
			memcpy(a + b, &r, 8);
		}
		if (nets != NULL) {
			const struct netv *x = &nets[rnd() % n_nets];

			for (unsigned int bit = 0; bit < x->depth; bit++) {
				uint8_t mask = (uint8_t)(0x80 >> (bit & 7));

				a[bit >> 3] =
					(uint8_t)((a[bit >> 3] & ~mask) | (x->ip[bit >> 3] & mask));
			}
		} else if (family == AF_INET6) {
			a[0] = (uint8_t)(0x20 | (a[0] & 0x1f)); /* 2000::/3: global unicast */
		}
		memcpy((m[i].dir == SKY_DIR_UP) ? m[i].dst : m[i].src, a, len);
	}
}

/*
 * The geo stage as the worker runs it: one side array of SKY_BURST metas, just written by
 * parse (hot in L1). Each burst first fills the side array from the address list (what
 * parse would write: l3, dir, the addresses), then runs sky_geo_lookup_burst(); the same
 * loop without the lookup is timed too and subtracted. Best of 50 passes of 64k addresses
 * (~1 ms each): the machine is shared, the minimum is the least disturbed pass.
 */
static inline void
fill_side(struct sky_meta *side, const struct sky_meta *src)
{
	for (unsigned int j = 0; j < SKY_BURST; j++) {
		side[j].l3 = src[j].l3;
		side[j].dir = src[j].dir;
		side[j].verdict = SKY_V_PASS;
		memcpy(side[j].src, src[j].src, 16);
		memcpy(side[j].dst, src[j].dst, 16);
	}
}

static double
run(struct sky_geo *g, const struct sky_meta *m)
{
	static struct sky_meta side[SKY_BURST];
	double best_all = 1e30, best_fill = 1e30;
	volatile uint16_t sink = 0;

	for (unsigned int i = 0; i < N_ADDR; i += SKY_BURST) { /* warm */
		fill_side(side, m + i);
		sky_geo_lookup_burst(g, 0, side, SKY_BURST);
	}
	for (int k = 0; k < 50; k++) {
		uint64_t t0 = rte_rdtsc_precise(), t1, t2;

		for (unsigned int i = 0; i < N_ADDR; i += SKY_BURST) {
			fill_side(side, m + i);
			sky_geo_lookup_burst(g, 0, side, SKY_BURST);
		}
		t1 = rte_rdtsc_precise();
		for (unsigned int i = 0; i < N_ADDR; i += SKY_BURST) {
			fill_side(side, m + i);
			__asm__ volatile("" : : "r"(side) : "memory");
		}
		t2 = rte_rdtsc_precise();
		sink = (uint16_t)(sink + side[0].remote_country);
		if ((double)(t1 - t0) / N_ADDR < best_all)
			best_all = (double)(t1 - t0) / N_ADDR;
		if ((double)(t2 - t1) / N_ADDR < best_fill)
			best_fill = (double)(t2 - t1) / N_ADDR;
	}
	return best_all - best_fill;
}

static struct sky_geo *
make(const char *path, const char *lookup, struct sky_cfg **cfgp)
{
	struct sky_cfg_err err;
	struct sky_geo *g;

	*cfgp = sky_fx_cfg("bench_geo", &err, "geo: { database: \"%s\", lookup: %s }\n", path,
			   lookup);
	if (*cfgp == NULL) {
		fprintf(stderr, "bench_geo: %s\n", err.msg);
		return NULL;
	}
	g = sky_geo_create(*cfgp, &err);
	if (g == NULL)
		printf("geo: lookup %s: %s\n", lookup, err.msg);
	return g;
}

int
main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/usr/share/libloc-location/location.db";
	const char *kinds[4] = {"ipv4 from database networks", "ipv4 uniform random",
				"ipv6 from database networks", "ipv6 random in 2000::/3"};
	struct sky_cfg *cfg, *cfg2 = NULL;
	struct sky_geo *g, *gv;
	struct sky_meta *m[4];
	struct netv *n4, *n6;
	size_t c4, c6;
	char msg[256];
	double cyc[2][4] = {{0}};
	uint64_t t0;

	if (sky_fx_eal_start("bench_geo", &(struct sky_fx_eal){.mem_mb = 2048}) < 0)
		return 1;
	t0 = rte_rdtsc();
	g = make(path, "scalar", &cfg);
	if (g == NULL)
		return 1;
	printf("geo: load %.2f s (sky_geo_create: libloc enumeration, flattening, FIB build)\n",
	       (double)(rte_rdtsc() - t0) / (double)rte_get_tsc_hz());
	/* the figures geo show reports */
	if (sky_geo_register(g) == 0) {
		char *av[] = {"geo", "show"};
		json_t *r = sky_ctl_dispatch_argv(2, av, 0, 0, 0);
		json_t *o = json_object_get(r, "result");
		char *js;

		json_object_del(o, "description");
		json_object_del(o, "license");
		js = json_dumps(o, JSON_COMPACT);
		printf("geo: geo show: %s\n", js);
		printf("geo: memory %.1f MB (DPDK heap taken by the FIBs)\n",
		       (double)json_integer_value(json_object_get(o, "memory_bytes")) / 1e6);
		free(js);
		json_decref(r);
	}
	t0 = rte_rdtsc();
	if (sky_geo_reload(g, NULL, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "bench_geo: reload: %s\n", msg);
		return 1;
	}
	printf("geo: reload %.2f s (build aside + swap + free)\n",
	       (double)(rte_rdtsc() - t0) / (double)rte_get_tsc_hz());
	gv = make(path, "avx512", &cfg2);

	n4 = load_nets(path, AF_INET, &c4);
	n6 = load_nets(path, AF_INET6, &c6);
	for (int k = 0; k < 4; k++) {
		m[k] = aligned_alloc(64, sizeof(struct sky_meta) * N_ADDR);
		if (m[k] == NULL)
			return 1;
	}
	if (n4 == NULL || n6 == NULL) {
		fprintf(stderr, "bench_geo: cannot read networks\n");
		return 1;
	}
	fill_meta(m[0], AF_INET, n4, c4);
	fill_meta(m[1], AF_INET, NULL, 0);
	fill_meta(m[2], AF_INET6, n6, c6);
	fill_meta(m[3], AF_INET6, NULL, 0);
	for (int k = 0; k < 4; k++) {
		cyc[0][k] = run(g, m[k]);
		if (gv != NULL)
			cyc[1][k] = run(gv, m[k]);
	}
	for (int k = 0; k < 4; k++)
		printf("geo: %-28s scalar %5.1f  avx512 %5.1f cycles/packet\n", kinds[k], cyc[0][k],
		       cyc[1][k]);
	printf("geo: ipv4 %.1f cycles/packet, ipv6 %.1f cycles/packet (full database, random, "
	       "scalar lookup, bursts of %d)\n",
	       cyc[0][0], cyc[0][2], SKY_BURST);
	if (gv != NULL)
		printf("geo: ipv4 %.1f cycles/packet, ipv6 %.1f cycles/packet (full database, "
		       "random, avx512 lookup, bursts of %d)\n",
		       cyc[1][0], cyc[1][2], SKY_BURST);
	for (int k = 0; k < 4; k++)
		free(m[k]);
	free(n4);
	free(n6);
	sky_ctl_unregister_all();
	sky_geo_destroy(gv);
	sky_geo_destroy(g);
	sky_cfg_free(cfg);
	sky_cfg_free(cfg2);
	sky_fx_eal_stop();
	return 0;
}
