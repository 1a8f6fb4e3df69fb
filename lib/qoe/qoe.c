/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The qoe tables: RTT samples in, sliding windows rolled forward, views (percentiles, the
 * min over the longer window, retransmission shares), the grade and the worst-first
 * ranking. Control path only; time is a parameter (microseconds).
 *
 * A window is SKY_QOE_SLOTS slots; the slot a sample goes to is (now / slot_us) modulo
 * SKY_QOE_SLOTS. An entry remembers the slot number of its newest slot (epoch); before
 * anything reads or writes it, the slots that time has left behind are cleared (roll), so
 * a view is always over the last SKY_QOE_SLOTS slots, the current one partly filled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qoe_priv.h"

#define QOE_TAKEOVER_SCAN 64 /* entries looked at for an idle one, per new subscriber */

/* --- bins ------------------------------------------------------------------------------------ */

unsigned int
sky_qoe_bin(uint32_t us, unsigned int sub_bits)
{
	const unsigned int s = 1u << sub_bits;
	unsigned int e;

	if (us < 256)
		return us >> (8 - sub_bits);
	e = 31u - (unsigned int)__builtin_clz(us);
	if (e > 22)
		return QOE_BINS(sub_bits) - 1;
	return s + (e - 8) * s + ((us >> (e - sub_bits)) & (s - 1));
}

uint32_t
sky_qoe_bin_lo(unsigned int bin, unsigned int sub_bits)
{
	const unsigned int s = 1u << sub_bits;

	if (bin < s)
		return bin << (8 - sub_bits);
	return (s + (bin - s) % s) << (8 + (bin - s) / s - sub_bits);
}

uint32_t
sky_qoe_bin_hi(unsigned int bin, unsigned int sub_bits)
{
	if (bin >= QOE_BINS(sub_bits) - 1)
		return UINT32_MAX;
	return sky_qoe_bin_lo(bin + 1, sub_bits) - 1;
}

/* --- windows --------------------------------------------------------------------------------- */

/* move *epoch to now_epoch; returns the slots to clear (bit i = slot i) */
static unsigned int
roll_mask(uint64_t *epoch, uint64_t now_epoch)
{
	unsigned int mask = 0;

	if (now_epoch <= *epoch)
		return 0; /* same slot (or a clock that went back: keep the newest) */
	if (now_epoch - *epoch >= SKY_QOE_SLOTS)
		mask = (1u << SKY_QOE_SLOTS) - 1;
	else
		for (uint64_t e = *epoch + 1; e <= now_epoch; e++)
			mask |= 1u << (e % SKY_QOE_SLOTS);
	*epoch = now_epoch;
	return mask;
}

static void
clear_mins(uint32_t lmin[2][SKY_QOE_SLOTS], unsigned int mask)
{
	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++)
		if (mask & (1u << i))
			lmin[0][i] = lmin[1][i] = QOE_NONE;
}

static void
sub_roll(const struct sky_qoe *q, struct qoe_sub *e, uint64_t now_us)
{
	unsigned int mask = roll_mask(&e->epoch, now_us / q->slot_us);

	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++) {
		if (!(mask & (1u << i)))
			continue;
		memset(&e->s[i], 0, sizeof(e->s[i]));
		e->s[i].min[0] = e->s[i].min[1] = QOE_NONE;
	}
	clear_mins(e->lmin, roll_mask(&e->min_epoch, now_us / q->min_slot_us));
}

static void
beam_roll(const struct sky_qoe *q, struct qoe_beam *b, uint64_t now_us)
{
	unsigned int mask = roll_mask(&b->epoch, now_us / q->slot_us);

	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++) {
		if (!(mask & (1u << i)))
			continue;
		memset(&b->s[i], 0, sizeof(b->s[i]));
		b->s[i].min[0] = b->s[i].min[1] = QOE_NONE;
	}
	clear_mins(b->lmin, roll_mask(&b->min_epoch, now_us / q->min_slot_us));
}

static void
sub_init(const struct sky_qoe *q, struct qoe_sub *e, const struct sky_rtt_sample *s,
	 uint64_t now_us)
{
	memset(e, 0, sizeof(*e));
	e->idx = s->sub_idx;
	e->id = s->sub_id;
	e->beam = s->beam;
	e->epoch = now_us / q->slot_us;
	e->min_epoch = now_us / q->min_slot_us;
	e->last_us = now_us;
	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++)
		e->s[i].min[0] = e->s[i].min[1] = QOE_NONE;
	clear_mins(e->lmin, (1u << SKY_QOE_SLOTS) - 1);
}

static void
beam_init(const struct sky_qoe *q, struct qoe_beam *b, uint64_t now_us)
{
	memset(b, 0, sizeof(*b));
	b->epoch = now_us / q->slot_us;
	b->min_epoch = now_us / q->min_slot_us;
	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++)
		b->s[i].min[0] = b->s[i].min[1] = QOE_NONE;
	clear_mins(b->lmin, (1u << SKY_QOE_SLOTS) - 1);
}

static uint32_t
add_sat32(uint32_t a, uint32_t b)
{
	return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

/* --- the subscriber table -------------------------------------------------------------------- */

/* an idle entry: no sample for a whole window */
static uint32_t
take_idle(struct sky_qoe *q, uint64_t now_us)
{
	for (unsigned int k = 0; k < QOE_TAKEOVER_SCAN && k < q->n_used; k++) {
		uint32_t e = q->hand;
		struct qoe_sub *ent = &q->ents[e];

		q->hand = (q->hand + 1) % q->n_used;
		if (ent->idx != QOE_NONE && ent->last_us + q->p.window_us <= now_us) {
			q->map[ent->idx] = QOE_NONE;
			ent->idx = QOE_NONE;
			q->st.taken_over++;
			return e;
		}
	}
	return QOE_NONE;
}

static struct qoe_sub *
sub_entry(struct sky_qoe *q, const struct sky_rtt_sample *s, uint64_t now_us)
{
	uint32_t e = q->map[s->sub_idx];

	if (e != QOE_NONE) {
		struct qoe_sub *ent = &q->ents[e];

		/* the index was given to another subscriber since: start over */
		if (ent->id != s->sub_id)
			sub_init(q, ent, s, now_us);
		return ent;
	}
	if (q->n_free > 0) {
		e = q->free_list[--q->n_free];
		q->st.active++;
	} else if (q->n_used < q->p.max_subs) {
		e = q->n_used++;
		q->st.active++;
	} else {
		e = take_idle(q, now_us); /* one subscriber out, one in */
	}
	if (e == QOE_NONE) {
		q->st.table_full++;
		return NULL;
	}
	sub_init(q, &q->ents[e], s, now_us);
	q->map[s->sub_idx] = e;
	return &q->ents[e];
}

void
qoe_forget(struct sky_qoe *q, uint32_t idx)
{
	uint32_t e;

	if (q == NULL || idx >= q->n_idx || q->map[idx] == QOE_NONE)
		return;
	e = q->map[idx];
	q->map[idx] = QOE_NONE;
	q->ents[e].idx = QOE_NONE;
	q->free_list[q->n_free++] = e;
	q->st.active--;
}

void
sky_qoe_add(struct sky_qoe *q, const struct sky_rtt_sample *s, uint64_t now_us)
{
	struct qoe_beam *b;
	struct qoe_sub *e;
	unsigned int h = s->half;

	if (q == NULL || !q->p.enabled)
		return;
	if (s->sub_idx >= q->n_idx || s->beam >= q->n_beams || h > SKY_RTT_INET) {
		q->st.bad++;
		return;
	}
	if (s->rtt_us != 0)
		q->st.samples++;
	else
		q->st.counts_only++;

	b = &q->beams[s->beam];
	beam_roll(q, b, now_us);
	b->last_us = now_us;
	{
		struct qoe_beam_slot *sl = &b->s[b->epoch % SKY_QOE_SLOTS];
		static const uint64_t le[QOE_N_LE] = {QOE_PROM_LE};

		for (unsigned int d = 0; d < 2; d++) {
			sl->segs[d] += s->segs[d];
			sl->retrans[d] += s->retrans[d];
			b->segs_total[d] += s->segs[d];
			b->retrans_total[d] += s->retrans[d];
		}
		if (s->rtt_us != 0) {
			unsigned int m = (b->min_epoch % SKY_QOE_SLOTS);

			sl->h[h][sky_qoe_bin(s->rtt_us, QOE_BEAM_BITS)]++;
			sl->n[h]++;
			if (s->rtt_us < sl->min[h])
				sl->min[h] = s->rtt_us;
			if (s->rtt_us > sl->max[h])
				sl->max[h] = s->rtt_us;
			if (s->rtt_us < b->lmin[h][m])
				b->lmin[h][m] = s->rtt_us;
			for (unsigned int j = 0; j < QOE_N_LE; j++)
				b->cum[h][j] += s->rtt_us <= le[j];
			b->count[h]++;
			b->sum_us[h] += s->rtt_us;
		}
	}

	e = sub_entry(q, s, now_us);
	if (e == NULL)
		return;
	sub_roll(q, e, now_us);
	e->last_us = now_us;
	e->beam = s->beam;
	{
		struct qoe_sub_slot *sl = &e->s[e->epoch % SKY_QOE_SLOTS];

		for (unsigned int d = 0; d < 2; d++) {
			sl->segs[d] = add_sat32(sl->segs[d], s->segs[d]);
			sl->retrans[d] = add_sat32(sl->retrans[d], s->retrans[d]);
		}
		if (s->rtt_us != 0) {
			unsigned int bin = sky_qoe_bin(s->rtt_us, QOE_SUB_BITS);
			unsigned int m = (e->min_epoch % SKY_QOE_SLOTS);

			if (sl->h[h][bin] < UINT16_MAX)
				sl->h[h][bin]++;
			sl->n[h]++;
			if (s->rtt_us < sl->min[h])
				sl->min[h] = s->rtt_us;
			if (s->rtt_us > sl->max[h])
				sl->max[h] = s->rtt_us;
			if (s->rtt_us < e->lmin[h][m])
				e->lmin[h][m] = s->rtt_us;
		}
	}
}

/* --- views ----------------------------------------------------------------------------------- */

/* nearest-rank percentile pct of the n values counted in cnt: the bin's midpoint, within
 * [mn, mx] */
static uint32_t
percentile(const uint32_t *cnt, unsigned int sb, uint64_t n, unsigned int pct, uint32_t mn,
	   uint32_t mx)
{
	uint64_t rank = (pct * n + 99) / 100, cum = 0;
	unsigned int b;
	uint32_t lo, hi, v;

	if (rank == 0)
		rank = 1;
	for (b = 0; b < QOE_BINS(sb) - 1; b++) {
		cum += cnt[b];
		if (cum >= rank)
			break;
	}
	lo = sky_qoe_bin_lo(b, sb);
	hi = sky_qoe_bin_hi(b, sb);
	v = hi == UINT32_MAX ? mx : lo + (hi - lo) / 2;
	if (v < mn)
		v = mn;
	if (v > mx)
		v = mx;
	return v;
}

static void
half_fill(struct sky_qoe_half *o, const uint32_t *cnt, unsigned int sb, uint64_t n, uint32_t mn,
	  uint32_t mx, const uint32_t *lmin)
{
	uint32_t m = QOE_NONE;

	memset(o, 0, sizeof(*o));
	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++)
		if (lmin[i] < m)
			m = lmin[i];
	o->min_us = m == QOE_NONE ? 0 : m;
	if (n == 0)
		return;
	o->samples = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	o->p50_us = percentile(cnt, sb, n, 50, mn, mx);
	o->p95_us = percentile(cnt, sb, n, 95, mn, mx);
	o->p99_us = percentile(cnt, sb, n, 99, mn, mx);
	o->max_us = mx;
}

static void
shares(struct sky_qoe_view *v)
{
	for (unsigned int d = 0; d < 2; d++)
		v->retrans_bp[d] =
			v->segs[d] == 0 ? 0
					: (uint32_t)(v->retrans[d] > v->segs[d]
							     ? 10000
							     : v->retrans[d] * 10000 / v->segs[d]);
}

int
sky_qoe_sub(struct sky_qoe *q, uint32_t idx, uint64_t now_us, struct sky_qoe_view *v)
{
	uint32_t cnt[QOE_SUB_BINS];
	struct qoe_sub *e;

	memset(v, 0, sizeof(*v));
	if (q == NULL || idx >= q->n_idx || q->map[idx] == QOE_NONE)
		return -ENOENT;
	e = &q->ents[q->map[idx]];
	sub_roll(q, e, now_us);
	v->sub_id = e->id;
	v->beam = e->beam;
	v->last_us = e->last_us;
	for (unsigned int h = 0; h < 2; h++) {
		uint64_t n = 0;
		uint32_t mn = QOE_NONE, mx = 0;

		memset(cnt, 0, sizeof(cnt));
		for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++) {
			const struct qoe_sub_slot *sl = &e->s[i];

			if (sl->n[h] == 0)
				continue;
			for (unsigned int b = 0; b < QOE_SUB_BINS; b++)
				cnt[b] += sl->h[h][b];
			n += sl->n[h];
			mn = sl->min[h] < mn ? sl->min[h] : mn;
			mx = sl->max[h] > mx ? sl->max[h] : mx;
		}
		/* saturated bins (over 65535 samples in a slot): rank over what was counted */
		{
			uint64_t counted = 0;

			for (unsigned int b = 0; b < QOE_SUB_BINS; b++)
				counted += cnt[b];
			half_fill(&v->half[h], cnt, QOE_SUB_BITS, counted, mn, mx, e->lmin[h]);
			v->half[h].samples = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
		}
	}
	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++)
		for (unsigned int d = 0; d < 2; d++) {
			v->segs[d] += e->s[i].segs[d];
			v->retrans[d] += e->s[i].retrans[d];
		}
	shares(v);
	sky_qoe_grade(&q->p, v, &v->score, &v->grade);
	return 0;
}

int
sky_qoe_beam(struct sky_qoe *q, unsigned int bi, uint64_t now_us, struct sky_qoe_view *v)
{
	static uint32_t cnt[QOE_BEAM_BINS]; /* control path, one thread */
	struct qoe_beam *b;

	memset(v, 0, sizeof(*v));
	if (q == NULL || bi >= q->n_beams)
		return -EINVAL;
	b = &q->beams[bi];
	beam_roll(q, b, now_us);
	v->beam = (uint16_t)bi;
	v->last_us = b->last_us;
	for (unsigned int h = 0; h < 2; h++) {
		uint64_t n = 0;
		uint32_t mn = QOE_NONE, mx = 0;

		memset(cnt, 0, sizeof(cnt));
		for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++) {
			const struct qoe_beam_slot *sl = &b->s[i];

			if (sl->n[h] == 0)
				continue;
			for (unsigned int k = 0; k < QOE_BEAM_BINS; k++)
				cnt[k] += sl->h[h][k];
			n += sl->n[h];
			mn = sl->min[h] < mn ? sl->min[h] : mn;
			mx = sl->max[h] > mx ? sl->max[h] : mx;
		}
		half_fill(&v->half[h], cnt, QOE_BEAM_BITS, n, mn, mx, b->lmin[h]);
	}
	for (unsigned int i = 0; i < SKY_QOE_SLOTS; i++)
		for (unsigned int d = 0; d < 2; d++) {
			v->segs[d] += b->s[i].segs[d];
			v->retrans[d] += b->s[i].retrans[d];
		}
	shares(v);
	sky_qoe_grade(&q->p, v, &v->score, &v->grade);
	return 0;
}

/* 100 at or below good, 0 at or above bad, linear between */
static int
lin(uint64_t x, uint64_t good, uint64_t bad)
{
	if (x <= good)
		return 100;
	if (x >= bad)
		return 0;
	return (int)(100 * (bad - x) / (bad - good));
}

void
sky_qoe_grade(const struct sky_qoe_params *p, const struct sky_qoe_view *v, int *score, char *grade)
{
	uint64_t lat = 0, n = (uint64_t)v->half[0].samples + v->half[1].samples;
	uint32_t loss = v->retrans_bp[0] > v->retrans_bp[1] ? v->retrans_bp[0] : v->retrans_bp[1];
	int sl, sp, s;

	if (n == 0 || n < p->grade_min_samples) {
		*score = -1;
		*grade = '-';
		return;
	}
	for (unsigned int h = 0; h < 2; h++)
		lat += v->half[h].p95_us;
	sl = lin(lat, p->lat_good_us, p->lat_bad_us);
	sp = lin(loss, p->loss_good_bp, p->loss_bad_bp);
	s = sl < sp ? sl : sp;
	*score = s;
	*grade = s >= 90 ? 'A' : s >= 75 ? 'B' : s >= 50 ? 'C' : s >= 25 ? 'D' : 'F';
}

unsigned int
sky_qoe_worst(struct sky_qoe *q, int what, uint64_t now_us, uint32_t *idx, unsigned int n)
{
	uint64_t key[128];
	unsigned int got = 0;

	if (q == NULL || n == 0)
		return 0;
	if (n > 128)
		n = 128;
	for (uint32_t e = 0; e < q->n_used; e++) {
		struct sky_qoe_view v;
		uint64_t k;
		unsigned int pos;

		if (q->ents[e].idx == QOE_NONE || sky_qoe_sub(q, q->ents[e].idx, now_us, &v) < 0)
			continue;
		if (what == 0) {
			if (v.half[0].samples + v.half[1].samples == 0)
				continue;
			k = (uint64_t)v.half[0].p95_us + v.half[1].p95_us;
		} else {
			if (v.segs[0] + v.segs[1] == 0)
				continue;
			k = v.retrans_bp[0] > v.retrans_bp[1] ? v.retrans_bp[0] : v.retrans_bp[1];
		}
		if (got == n && k <= key[got - 1])
			continue;
		pos = got < n ? got++ : got - 1;
		while (pos > 0 && key[pos - 1] < k) {
			key[pos] = key[pos - 1];
			idx[pos] = idx[pos - 1];
			pos--;
		}
		key[pos] = k;
		idx[pos] = q->ents[e].idx;
	}
	return got;
}

void
sky_qoe_stats(const struct sky_qoe *q, struct sky_qoe_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (q != NULL)
		*st = q->st;
}

/* --- life ------------------------------------------------------------------------------------ */

static int
params_check(const struct sky_qoe_params *p, unsigned int n_beams, char *err, size_t errlen)
{
	if (p->window_us < SKY_QOE_SLOTS * 1000000ull || p->window_us > 3600000000ull)
		snprintf(err, errlen, "qoe.window: %llu us: must be 6s..1h",
			 (unsigned long long)p->window_us);
	else if (p->min_window_us < p->window_us || p->min_window_us > 86400000000ull)
		snprintf(err, errlen, "qoe.min_window: must be at least qoe.window and at most 1d");
	else if (p->max_subs == 0 || p->max_subs > (1u << 24))
		snprintf(err, errlen, "qoe.subscribers: %u: must be 1..16777216", p->max_subs);
	else if (p->lat_good_us >= p->lat_bad_us)
		snprintf(err, errlen, "qoe.grade: latency_good must be below latency_bad");
	else if (p->loss_good_bp >= p->loss_bad_bp || p->loss_bad_bp > 10000)
		snprintf(err, errlen,
			 "qoe.grade: loss_good must be below loss_bad, loss_bad at most 100%%");
	else if (n_beams > SKY_MAX_BEAMS)
		snprintf(err, errlen, "qoe: %u beams, at most %u", n_beams, SKY_MAX_BEAMS);
	else
		return 0;
	return -1;
}

struct sky_qoe *
sky_qoe_create_params(const struct sky_qoe_params *p, struct sky_subs *subs, uint32_t n_idx,
		      unsigned int n_beams, char *err, size_t errlen)
{
	struct sky_qoe *q;

	if (p->enabled && params_check(p, n_beams, err, errlen) < 0)
		return NULL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		goto nomem;
	q->p = *p;
	q->subs = subs;
	if (!p->enabled)
		return q;
	q->slot_us = p->window_us / SKY_QOE_SLOTS;
	q->min_slot_us = p->min_window_us / SKY_QOE_SLOTS;
	q->n_idx = n_idx;
	q->n_beams = n_beams;
	q->map = malloc((size_t)(n_idx ? n_idx : 1) * sizeof(*q->map));
	q->ents = calloc(p->max_subs, sizeof(*q->ents));
	q->free_list = malloc((size_t)p->max_subs * sizeof(*q->free_list));
	q->beams = calloc(n_beams ? n_beams : 1, sizeof(*q->beams));
	if (q->map == NULL || q->ents == NULL || q->free_list == NULL || q->beams == NULL)
		goto nomem;
	memset(q->map, 0xff, (size_t)n_idx * sizeof(*q->map));
	for (uint32_t i = 0; i < p->max_subs; i++)
		q->ents[i].idx = QOE_NONE;
	for (unsigned int b = 0; b < n_beams; b++)
		beam_init(q, &q->beams[b], 0);
	return q;
nomem:
	snprintf(err, errlen, "qoe: out of memory for %u subscribers (qoe.subscribers)",
		 p->max_subs);
	sky_qoe_destroy(q);
	return NULL;
}

int
sky_qoe_enabled(const struct sky_qoe *q)
{
	return q != NULL && q->p.enabled;
}

const struct sky_qoe_params *
sky_qoe_params(const struct sky_qoe *q)
{
	return &q->p;
}

size_t
sky_qoe_memory(const struct sky_qoe *q)
{
	if (q == NULL || !q->p.enabled)
		return 0;
	return sizeof(*q) + (size_t)q->n_idx * sizeof(*q->map) +
	       (size_t)q->p.max_subs * (sizeof(*q->ents) + sizeof(*q->free_list)) +
	       (size_t)q->n_beams * sizeof(*q->beams);
}

void
sky_qoe_destroy(struct sky_qoe *q)
{
	if (q == NULL)
		return;
	if (q->on_destroy != NULL)
		q->on_destroy(q);
	free(q->map);
	free(q->ents);
	free(q->free_list);
	free(q->beams);
	free(q);
}
