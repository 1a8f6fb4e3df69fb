/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo data path: remote address -> (country, flags) for a burst of metadata records. Reads
 * the published table once per burst; one bulk FIB lookup per family and chunk; counts
 * per worker. No allocation, no lock, no libloc.
 */
#include <string.h>

#include <rte_debug.h>
#include <rte_fib.h>
#include <rte_fib6.h>

#include "geo_priv.h"

static inline void
apply(const struct geo_table *t, struct sky_meta *m, uint64_t nh, uint64_t *unknown)
{
	uint32_t a = t->attr[nh & (GEO_MAX_ATTR - 1)];

	m->remote_country = (uint16_t)a;
	m->remote_flags = (uint8_t)(a >> 16);
	*unknown += (uint16_t)a == 0;
}

static void
lookup_chunk(const struct geo_table *t, struct geo_worker *w, struct sky_meta *meta, unsigned int n)
{
	uint32_t ip4[SKY_BURST];
	uint8_t ip6[SKY_BURST][16];
	uint64_t nh[SKY_BURST];
	uint8_t i4[SKY_BURST], i6[SKY_BURST];
	unsigned int n4 = 0, n6 = 0, i;
	uint64_t unknown = 0;

	for (i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];
		const uint8_t *a;
		uint32_t v;

		if (!sky_meta_live(m))
			continue;
		a = sky_meta_remote_addr(m);
		if (m->l3 == 4) {
			memcpy(&v, a, 4);
		} else if (geo_v4_mapped(a)) {
			memcpy(&v, a + 12, 4);
		} else if (t->fib6 != NULL) {
			memcpy(ip6[n6], a, 16);
			i6[n6++] = (uint8_t)i;
			continue;
		} else {
			apply(t, m, 0, &unknown);
			continue;
		}
		ip4[n4] = rte_be_to_cpu_32(v);
		i4[n4++] = (uint8_t)i;
	}
	if (n4 != 0) {
		rte_fib_lookup_bulk(t->fib4, ip4, nh, (int)n4);
		for (i = 0; i < n4; i++)
			apply(t, &meta[i4[i]], nh[i], &unknown);
	}
	if (n6 != 0) {
		rte_fib6_lookup_bulk(t->fib6, ip6, nh, (int)n6);
		for (i = 0; i < n6; i++)
			apply(t, &meta[i6[i]], nh[i], &unknown);
	}
	w->c[GEO_C_LOOKUP_V4] += n4;
	w->c[GEO_C_LOOKUP_V6] += n6;
	w->c[GEO_C_UNKNOWN] += unknown;
}

void
sky_geo_lookup_burst(struct sky_geo *g, unsigned int worker, struct sky_meta *meta, uint16_t n)
{
	const struct geo_table *t = __atomic_load_n(&g->table, __ATOMIC_ACQUIRE);
	struct geo_worker *w = &g->w[worker & (SKY_MAX_WORKERS - 1)];
	unsigned int off, k;

	RTE_ASSERT(worker < SKY_MAX_WORKERS);
	if (t == NULL)
		return;
	for (off = 0; off < n; off += k) {
		k = RTE_MIN((unsigned int)n - off, (unsigned int)SKY_BURST);
		lookup_chunk(t, w, meta + off, k);
	}
}
