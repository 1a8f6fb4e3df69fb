/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * classify data path: each live packet's class from the published tables (classify_priv.h):
 * a few table loads per packet, branch-free on packet data, a binary search over the
 * prefix intervals when rules have prefixes. No allocation, no lock.
 */
#include <string.h>

#include <rte_byteorder.h>

#include "classify_priv.h"

static inline uint64_t
pfx_lookup(const struct cls_tables *t, const struct sky_meta *m)
{
	const uint8_t *a = sky_meta_remote_addr(m);
	uint32_t lo = 0, n;

	if (m->l3 == 4) {
		uint32_t x;

		n = t->n4;
		if (n == 0)
			return 0;
		memcpy(&x, a, 4);
		x = rte_be_to_cpu_32(x);
		while (n > 1) {
			uint32_t half = n >> 1;

			lo = t->lo4[lo + half] <= x ? lo + half : lo;
			n -= half;
		}
		return t->bm4[lo];
	} else {
		uint64_t hi64, lo64;
		cls_u128 x;

		n = t->n6;
		if (n == 0)
			return 0;
		memcpy(&hi64, a, 8);
		memcpy(&lo64, a + 8, 8);
		x = (cls_u128)rte_be_to_cpu_64(hi64) << 64 | rte_be_to_cpu_64(lo64);
		while (n > 1) {
			uint32_t half = n >> 1;

			lo = t->lo6[lo + half] <= x ? lo + half : lo;
			n -= half;
		}
		return t->bm6[lo];
	}
}

void
sky_classify_burst(struct sky_classifier *c, unsigned int worker, struct sky_meta *meta, uint16_t n)
{
	const struct cls_tables *t = __atomic_load_n(&c->t, __ATOMIC_ACQUIRE);

	(void)worker;
	for (uint16_t i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];
		uint64_t cand, has_ports;

		if (!sky_meta_live(m))
			continue;
		/* branch-free on packet data: random traffic mispredicts every branch */
		has_ports = -(uint64_t)((m->flags / SKY_MF_PORTS) & 1);
		cand = t->dscp[m->dscp & 63] & t->proto[m->proto];
		cand &= t->port_any | (has_ports & (t->port_eq[t->port_id[m->sport]] |
						    t->port_eq[t->port_id[m->dport]]));
		if ((m->l3 == 4 ? t->n4 : t->n6) != 0)
			cand &= t->pfx_any | pfx_lookup(t, m);
		else
			cand &= t->pfx_any;
		m->cls = t->rule_cls[__builtin_ctzll(cand | 1ULL << 63)];
	}
}
