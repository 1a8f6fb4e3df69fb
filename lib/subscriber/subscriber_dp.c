/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subscriber data path: the lookup burst (address -> subscriber record, realm first) and
 * the accounting burst (per-subscriber and per-worker counters). Reads the table published
 * by subscriber_table.c once per burst; no locks, no allocation.
 */
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_lpm6.h>
#include <rte_prefetch.h>

#include "subscriber_priv.h"

static uint8_t drop_group[SKY_DROP_MAX] = {
	[SKY_DROP_POLICY] = SKY_SUBS_DG_POLICY,	   [SKY_DROP_POLICY_FAULT] = SKY_SUBS_DG_POLICY,
	[SKY_DROP_POLICE] = SKY_SUBS_DG_POLICE,	   [SKY_DROP_QUEUE_TAIL] = SKY_SUBS_DG_POLICE,
	[SKY_DROP_QUEUE_AQM] = SKY_SUBS_DG_POLICE, [SKY_DROP_SUB_UNKNOWN] = SKY_SUBS_DG_UNKNOWN,
};

static void __attribute__((constructor)) drop_group_init(void)
{
	for (unsigned int i = 0; i < SKY_DROP_MAX; i++)
		if (drop_group[i] == 0 && i != SKY_DROP_POLICY && i != SKY_DROP_POLICY_FAULT)
			drop_group[i] = SKY_SUBS_DG_OTHER;
}

/* the keys of a burst that go to one table, and the packets they came from */
struct keys {
	uint8_t k[SKY_BURST][16];
	uint8_t pos[SKY_BURST];
	unsigned int n;
};

static inline void
keys_add(struct keys *b, const uint8_t *addr, uint8_t pos)
{
	memcpy(b->k[b->n], addr, 16);
	b->pos[b->n++] = pos;
}

/* look the keys up in bulk; a hit sets idx[] of its packet and prefetches the record */
static inline void
keys_lookup(const struct rte_lpm6 *l, struct keys *b, const struct subs_tables *t, int32_t *h,
	    uint32_t *idx)
{
	if (b->n == 0)
		return;
	rte_lpm6_lookup_bulk_func(l, b->k, h, b->n);
	for (unsigned int j = 0; j < b->n; j++)
		if (h[j] >= 0) {
			idx[b->pos[j]] = (uint32_t)h[j];
			rte_prefetch0(&t->rec[h[j]]);
		}
}

void
sky_subs_lookup_burst(struct sky_subs *s, unsigned int worker, struct sky_meta *meta, uint16_t n)
{
	const struct subs_tables *t = __atomic_load_n(&s->tab, __ATOMIC_ACQUIRE);
	const struct rte_lpm6 *lr = __atomic_load_n(&t->lpmr, __ATOMIC_ACQUIRE);
	struct subs_wstats *ws = &s->ws[worker];
	/* keys gathered per table, looked up in bulk (measured: ~20% fewer cycles than one
	 * rte_lpm6_lookup per packet), then the records prefetched for the whole burst */
	struct keys k4, k6, kr;
	int32_t h[SKY_BURST];
	uint32_t idx[SKY_BURST];

	if (unlikely(n > SKY_BURST)) { /* side arrays are SKY_BURST long; be safe anyway */
		for (uint16_t o = 0; o < n; o += SKY_BURST)
			sky_subs_lookup_burst(s, worker, meta + o,
					      (uint16_t)RTE_MIN(SKY_BURST, n - o));
		return;
	}

	k4.n = k6.n = kr.n = 0;
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		const uint8_t *a = sky_meta_sub_addr(m);

		idx[i] = SKY_SUB_NONE;
		if (!sky_meta_live(m))
			continue;
		if (unlikely(m->outer_vid != 0 && lr != NULL && subs_realm_on(t, m->outer_vid))) {
			uint16_t realm = m->outer_vid & 0xfff;
			uint8_t *k = kr.k[kr.n];

			k[0] = (uint8_t)((m->l3 == 4 ? 0x40 : 0x60) | (realm >> 8));
			k[1] = (uint8_t)realm;
			memcpy(&k[2], a, 14);
			kr.pos[kr.n++] = (uint8_t)i;
		} else {
			keys_add(m->l3 == 4 ? &k4 : &k6, a, (uint8_t)i);
		}
	}
	if (unlikely(kr.n != 0)) {
		rte_lpm6_lookup_bulk_func(lr, kr.k, h, kr.n);
		for (unsigned int j = 0; j < kr.n; j++) {
			const struct sky_meta *m = &meta[kr.pos[j]];

			if (h[j] >= 0) {
				idx[kr.pos[j]] = (uint32_t)h[j];
				rte_prefetch0(&t->rec[h[j]]);
			} else { /* no realm match: realm 0 */
				keys_add(m->l3 == 4 ? &k4 : &k6, sky_meta_sub_addr(m), kr.pos[j]);
			}
		}
	}
	keys_lookup(t->lpm4, &k4, t, h, idx);
	keys_lookup(t->lpm6, &k6, t, h, idx);
	for (uint16_t i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];

		if (!sky_meta_live(m)) {
			m->sub_idx = SKY_SUB_NONE;
			continue;
		}
		if (idx[i] != SKY_SUB_NONE) {
			const struct sky_sub_rec *r = &t->rec[idx[i]];
			uint64_t w = __atomic_load_n(&r->w, __ATOMIC_RELAXED);

			if (w != 0) {
				m->sub_idx = idx[i];
				m->sub_id = (uint32_t)w;
				m->sub_country = (uint16_t)(w >> 32);
				m->plan = (uint16_t)((w >> 48) & 0xff);
				m->beam = (uint16_t)(w >> 56);
				m->realm = __atomic_load_n(&r->realm, __ATOMIC_RELAXED);
				continue;
			}
		}
		ws->unknown[m->dir & 1]++;
		m->sub_idx = SKY_SUB_NONE;
		m->sub_id = 0;
		m->sub_country = SKY_COUNTRY_NONE;
		m->realm = 0;
		m->beam = 0;
		if (s->unknown_plan < 0) {
			m->plan = 0;
			sky_meta_drop(m, SKY_DROP_SUB_UNKNOWN);
		} else {
			m->plan = (uint16_t)s->unknown_plan;
		}
	}
}

void
sky_subs_account_burst(struct sky_subs *s, unsigned int worker, const struct sky_meta *meta,
		       uint16_t n)
{
	struct subs_wstats *ws = &s->ws[worker];
	uint64_t *base = s->ctr[worker];
	const unsigned int nc = s->n_classes, stride = s->stride;
	const uint32_t cap = s->capacity;

	/* the counter lines of the whole burst first: they are random in a large array */
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];

		if (m->sub_idx < cap && m->l3 != 0) {
			uint64_t *c = base + (size_t)m->sub_idx * stride;
			unsigned int k = (m->dir & 1) * nc + (m->cls < nc ? m->cls : 0);

			rte_prefetch0(&c[k]);
			rte_prefetch0(&c[2 * nc + k]);
		}
	}
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		uint64_t *c = m->sub_idx < cap ? base + (size_t)m->sub_idx * stride : NULL;
		unsigned int dir = m->dir & 1;

		if (m->l3 == 0)
			continue;
		if (m->verdict == SKY_V_PASS) {
			unsigned int cls = m->cls < nc ? m->cls : s->default_cls;

			ws->pkts[dir][cls]++;
			ws->bytes[dir][cls] += m->pkt_len;
			if (c != NULL) {
				c[dir * nc + cls]++;
				c[2 * nc + dir * nc + cls] += m->pkt_len;
			}
		} else {
			unsigned int g = drop_group[m->reason < SKY_DROP_MAX ? m->reason : 0];

			ws->drops[g]++;
			if (c != NULL)
				c[4 * nc + g]++;
		}
	}
}
