/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subscriber data path: the lookup burst (address -> subscriber record, realm first) and
 * the accounting burst (per-subscriber and per-worker counters). Reads the table published
 * by subscriber_table.c once per burst; no locks, no allocation.
 */
#include <string.h>

#include <rte_branch_prediction.h>
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

/* a packet's search: its address, the key class, realm and prefix length it is at */
struct probe {
	uint64_t k[2]; /* host order, masked to len */
	const struct subs_bkt *b;
	uint32_t h;
	uint32_t cand; /* first slot whose signature matched, or SKY_SUB_NONE */
	uint8_t fam;
	uint16_t realm;
	int16_t len;
};

/* the prefix lengths in use, read once per burst */
struct lens {
	uint64_t bm[SUBS_KC_MAX][SUBS_N_LEN_WORDS];
	int16_t top[SUBS_KC_MAX];
};

/* the key of p at its length from address a (host order): hash it, prefetch its bucket */
static inline void
probe_key(const struct subs_tables *t, struct probe *p, const uint64_t a[2])
{
	p->k[0] = a[0];
	p->k[1] = a[1];
	subs_mask(p->k, (unsigned int)p->len);
	p->h = subs_hash(p->fam, p->realm, (unsigned int)p->len, p->k);
	p->b = &t->bkt[subs_bucket_of(t, p->h)];
	rte_prefetch0(p->b);
}

/* the next length to try after a miss at p->len (the realm's lengths, then realm 0's);
 * 0 when there is one, -1 when the search is over */
static inline int
probe_next(const struct lens *l, struct probe *p)
{
	p->len = (int16_t)subs_len_below(l->bm[subs_kc(p->fam, p->realm)], p->len);
	if (p->len < 0 && p->realm != 0) {
		p->realm = 0;
		p->len = l->top[subs_kc(p->fam, 0)];
	}
	return p->len < 0 ? -1 : 0;
}

static inline void
fill_unknown(const struct sky_subs *s, struct subs_wstats *ws, struct sky_meta *m)
{
	ws->unknown[m->dir & 1]++;
	m->sub_idx = SKY_SUB_NONE;
	m->sub_id = 0;
	m->sub_country = SKY_COUNTRY_NONE;
	m->realm = 0;
	m->beam = 0;
	m->zone = 0;
	m->quota_state = SKY_QUOTA_NONE;
	if (s->unknown_plan < 0) {
		m->plan = 0;
		sky_meta_drop(m, SKY_DROP_SUB_UNKNOWN);
	} else {
		m->plan = (uint16_t)s->unknown_plan;
	}
}

/* a packet of a beam another node shapes (cluster mode): dropped or passed, counted */
static void
fill_foreign(const struct sky_subs *s, struct subs_wstats *ws, struct sky_meta *m)
{
	uint8_t mode =
		__atomic_load_n(&s->beam_mode[m->beam & (SKY_MAX_BEAMS - 1)], __ATOMIC_RELAXED);

	if (mode == SKY_SUBS_BEAM_DROP) {
		ws->foreign[0]++;
		sky_meta_drop(m, SKY_DROP_BEAM_NOT_OWNED);
	} else if (mode == SKY_SUBS_BEAM_PASS) {
		ws->foreign[1]++;
	}
}

/* the packet's subscriber fields from record idx, found under realm; foreign: the beams
 * not owned here (read once per burst). One line: the record holds the zone and the quota
 * state beside the keys. */
static inline void
fill(const struct sky_subs *s, struct subs_wstats *ws, const struct subs_tables *t,
     struct sky_meta *m, uint32_t idx, uint16_t realm, uint64_t foreign)
{
	const struct sky_sub_rec *r = &t->rec[idx];
	uint64_t w = __atomic_load_n(&r->w, __ATOMIC_RELAXED);

	if (unlikely(w == 0)) {
		fill_unknown(s, ws, m);
		return;
	}
	m->sub_idx = idx;
	m->sub_id = (uint32_t)w;
	m->sub_country = subs_w_country(w);
	m->plan = subs_w_plan(w);
	m->beam = subs_w_beam(w);
	m->realm = realm; /* the record's: its key matched in this realm */
	m->zone = subs_w_zone(w);
	m->quota_state = subs_k_quota(__atomic_load_n(&r->k, __ATOMIC_RELAXED));
	if (unlikely(foreign != 0) && ((foreign >> m->beam) & 1))
		fill_foreign(s, ws, m);
}

/*
 * The lookup in three passes over the burst, so that the memory accesses of all its
 * packets are in flight together: (1) hash at the longest length in use, prefetch the
 * bucket; (2) match the signature, prefetch the record (keys, word, zone, quota state);
 * (3) check the record, fill the packet's fields, prefetch the counter line the accounting
 * will write. A packet that misses goes round again at its next length (a nested prefix, a
 * realm's fallback to realm 0, an unknown address).
 */
void
sky_subs_lookup_burst(struct sky_subs *s, unsigned int worker, struct sky_meta *meta, uint16_t n)
{
	const struct subs_tables *t = __atomic_load_n(&s->tab, __ATOMIC_ACQUIRE);
	struct subs_wstats *ws = &s->ws[worker];
	uint64_t *const ctr = worker < s->n_ctr_workers ? s->ctr[worker] : NULL;
	const unsigned int nc = s->n_classes;
	struct probe pr[SKY_BURST];
	const uint64_t foreign = __atomic_load_n(&s->beams_foreign, __ATOMIC_RELAXED);
	uint8_t pend[SKY_BURST];
	unsigned int np = 0;
	struct lens l;

	if (unlikely(n > SKY_BURST)) { /* side arrays are SKY_BURST long; be safe anyway */
		for (uint16_t o = 0; o < n; o += SKY_BURST)
			sky_subs_lookup_burst(s, worker, meta + o,
					      (uint16_t)RTE_MIN(SKY_BURST, n - o));
		return;
	}
	for (unsigned int c = 0; c < SUBS_KC_MAX; c++) {
		for (unsigned int w = 0; w < SUBS_N_LEN_WORDS; w++)
			l.bm[c][w] = __atomic_load_n(&t->len_bm[c][w], __ATOMIC_ACQUIRE);
		l.top[c] = (int16_t)subs_len_below(l.bm[c], 129);
	}

	for (uint16_t i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];
		struct probe *p = &pr[i];
		uint64_t a[2];

		if (!sky_meta_live(m)) {
			m->sub_idx = SKY_SUB_NONE;
			continue;
		}
		p->fam = m->l3 == 4 ? 4 : 6;
		p->realm = 0;
		if (unlikely(m->outer_vid != 0 && subs_realm_on(t, m->outer_vid)))
			p->realm = m->outer_vid & 0xfff;
		subs_addr_load(p->fam, sky_meta_sub_addr(m), a);
		p->len = l.top[subs_kc(p->fam, p->realm)];
		if (unlikely(p->len < 0) && probe_next(&l, p) < 0) {
			fill_unknown(s, ws, m);
			continue;
		}
		probe_key(t, p, a);
		pend[np++] = (uint8_t)i;
	}
	while (np != 0) {
		unsigned int nn = 0;

		for (unsigned int j = 0; j < np; j++) {
			struct probe *p = &pr[pend[j]];
			uint32_t mt = subs_bkt_match(p->b, subs_sig_of(p->h));

			p->cand = SKY_SUB_NONE;
			if (unlikely(mt == 0) && p->b->ovf != 0) /* the key may be in the next */
				rte_prefetch0(p->b + 1 < t->bkt + t->nb ? p->b + 1 : t->bkt);
			if (likely(mt != 0)) {
				uint32_t c = p->b->idx[__builtin_ctz(mt)] - 1;

				p->cand = c;
				if (unlikely(c == SKY_SUB_NONE)) /* a slot being emptied */
					continue;
				rte_prefetch0(&t->rec[c]);
			}
		}
		for (unsigned int j = 0; j < np; j++) {
			struct sky_meta *m = &meta[pend[j]];
			struct probe *p = &pr[pend[j]];
			uint32_t c = p->cand;

			if (likely(c != SKY_SUB_NONE) && subs_rec_has(&t->rec[c], p->fam, p->realm,
								      (unsigned int)p->len, p->k)) {
				fill(s, ws, t, m, c, p->realm, foreign);
				/* into L2 only: the accounting comes after other stages, whose
				 * tables keep L1 (bench_pipeline: subscriber and geo both cheaper)
				 */
				if (ctr != NULL)
					rte_prefetch2(subs_ctr_at(ctr, nc, c, m->dir & 1));
				continue;
			}
			/* another signature match, or keys past the bucket: the full probe */
			if (unlikely(c != SKY_SUB_NONE || p->b->ovf != 0)) {
				c = subs_probe(t, p->fam, p->realm, (unsigned int)p->len, p->k,
					       p->h);
				if (c != SKY_SUB_NONE) {
					fill(s, ws, t, m, c, p->realm, foreign);
					continue;
				}
			}
			if (probe_next(&l, p) < 0) {
				fill_unknown(s, ws, m);
				continue;
			}
			{
				uint64_t a[2];

				subs_addr_load(p->fam, sky_meta_sub_addr(m), a);
				probe_key(t, p, a);
			}
			pend[nn++] = pend[j];
		}
		np = nn;
	}
}

void
sky_subs_account_burst(struct sky_subs *s, unsigned int worker, const struct sky_meta *meta,
		       uint16_t n)
{
	struct subs_wstats *ws = &s->ws[worker];
	uint64_t *const ctr = s->ctr[worker];
	const unsigned int nc = s->n_classes;
	const uint32_t cap = s->capacity;

	/* the lookup prefetched each known packet's counter line */
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		unsigned int dir = m->dir & 1;

		if (unlikely(m->l3 == 0))
			continue;
		if (likely(m->verdict == SKY_V_PASS)) {
			unsigned int cls = m->cls < nc ? m->cls : s->default_cls;

			ws->pkts[dir][cls]++;
			ws->bytes[dir][cls] += m->pkt_len;
			if (likely(m->sub_idx < cap)) {
				uint64_t *c = subs_ctr_at(ctr, nc, m->sub_idx, dir) + 2 * cls;

				c[0]++;
				c[1] += m->pkt_len;
			}
		} else {
			unsigned int g = drop_group[m->reason < SKY_DROP_MAX ? m->reason : 0];

			ws->drops[g]++;
			if (m->sub_idx < cap)
				subs_ctr_drops(s, worker, m->sub_idx)[g]++;
		}
	}
}
