/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * classify owner: create, reload, destroy, and the compiler that turns a parsed class set
 * (classify_cfg.c) into the tables the data path reads (layout in classify_priv.h). A
 * reload compiles aside, publishes one pointer and frees the old tables after
 * sky_rcu_sync(). Control path only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

#include "skygate/runtime.h"
#include "classify_priv.h"

static void
tables_free(struct cls_tables *t)
{
	if (t == NULL)
		return;
	rte_free(t->lo4);
	rte_free(t->bm4);
	rte_free(t->lo6);
	rte_free(t->bm6);
	rte_free(t);
}

/* rules of cs (an absent `classes:` section has none) */
static unsigned int
n_rules(const struct sky_class_set *cs)
{
	return cs->rules != NULL ? cs->rules->n : 0;
}

struct ev {
	cls_u128 pos;
	int delta;
	unsigned int rule;
};

static int
ev_cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static cls_u128
addr_cls_u128(const uint8_t *a, unsigned int bytes)
{
	cls_u128 v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v = v << 8 | a[i];
	return v;
}

/* Cut the prefixes of family fam into disjoint intervals with rule bitmaps. */
static int
build_intervals(const struct sky_class_set *cs, uint8_t fam, uint32_t *n_out, void **lo_out,
		uint64_t **bm_out)
{
	unsigned int bits = fam == 4 ? 32 : 128;
	size_t n_ev = 0, cap = 0, n_iv = 0;
	struct ev *ev = NULL;
	cls_u128 *lo = NULL;
	uint64_t *bm = NULL, cur = 0;
	unsigned int cnt[CLS_MAX_RULES] = {0};
	int rc = -ENOMEM;

	for (unsigned int r = 0; r < n_rules(cs); r++)
		for (unsigned int i = 0; i < cs->rules->r[r].n_pfx; i++)
			if (cs->rules->r[r].pfx[i].family == fam)
				cap += 2;
	*n_out = 0;
	*lo_out = NULL;
	*bm_out = NULL;
	if (cap == 0)
		return 0;
	ev = malloc(cap * sizeof(*ev));
	lo = malloc((cap + 1) * sizeof(*lo));
	bm = malloc((cap + 1) * sizeof(*bm));
	if (ev == NULL || lo == NULL || bm == NULL)
		goto out;
	for (unsigned int r = 0; r < n_rules(cs); r++) {
		for (unsigned int i = 0; i < cs->rules->r[r].n_pfx; i++) {
			const struct cls_rule_pfx *p = &cs->rules->r[r].pfx[i];
			cls_u128 start = addr_cls_u128(p->a, bits / 8), size, end;

			if (p->family != fam)
				continue;
			ev[n_ev++] = (struct ev){start, +1, r};
			if (p->len == 0)
				continue; /* to the top of the space */
			size = (cls_u128)1 << (bits - p->len);
			end = start + size;
			/* an end at the top of the space (2^32, or a wrap past 2^128) needs none */
			if (fam == 4 ? end < ((cls_u128)1 << 32) : end > start)
				ev[n_ev++] = (struct ev){end, -1, r};
		}
	}
	qsort(ev, n_ev, sizeof(*ev), ev_cmp);
	lo[n_iv] = 0;
	bm[n_iv++] = 0;
	for (size_t i = 0; i < n_ev;) {
		cls_u128 pos = ev[i].pos;

		for (; i < n_ev && ev[i].pos == pos; i++) {
			unsigned int r = ev[i].rule;

			cnt[r] = (unsigned int)((int)cnt[r] + ev[i].delta);
			if (cnt[r] > 0)
				cur |= 1ULL << r;
			else
				cur &= ~(1ULL << r);
		}
		if (lo[n_iv - 1] == pos) {
			bm[n_iv - 1] = cur;
		} else {
			lo[n_iv] = pos;
			bm[n_iv++] = cur;
		}
	}
	/* merge neighbours with the same rules */
	{
		size_t w = 1;

		for (size_t i = 1; i < n_iv; i++) {
			if (bm[i] == bm[w - 1])
				continue;
			lo[w] = lo[i];
			bm[w++] = bm[i];
		}
		n_iv = w;
	}
	rc = -ENOMEM;
	if (fam == 4) {
		uint32_t *l4 = rte_malloc("sky_cls_iv", n_iv * sizeof(uint32_t), 0);

		if (l4 == NULL)
			goto out;
		for (size_t i = 0; i < n_iv; i++)
			l4[i] = (uint32_t)lo[i];
		*lo_out = l4;
	} else {
		cls_u128 *l6 = rte_malloc("sky_cls_iv", n_iv * sizeof(cls_u128), 16);

		if (l6 == NULL)
			goto out;
		memcpy(l6, lo, n_iv * sizeof(cls_u128));
		*lo_out = l6;
	}
	*bm_out = rte_malloc("sky_cls_iv", n_iv * sizeof(uint64_t), 0);
	if (*bm_out == NULL) {
		rte_free(*lo_out);
		*lo_out = NULL;
		goto out;
	}
	memcpy(*bm_out, bm, n_iv * sizeof(uint64_t));
	*n_out = (uint32_t)n_iv;
	rc = 0;
out:
	free(ev);
	free(lo);
	free(bm);
	return rc;
}

static struct cls_tables *
compile(const struct sky_class_set *cs, char *err, size_t errlen)
{
	struct cls_tables *t = rte_zmalloc("sky_cls", sizeof(*t), RTE_CACHE_LINE_SIZE);
	uint64_t *pbm = NULL, prev = ~0ULL;
	unsigned int n_eq = 1, cur_id = 0;

	if (t == NULL)
		goto nomem;
	t->default_cls = (uint8_t)cs->default_cls;
	t->rule_cls[63] = t->default_cls;
	for (unsigned int r = 0; r < n_rules(cs); r++) {
		const struct cls_rule *ru = &cs->rules->r[r];
		uint64_t bit = 1ULL << r;

		t->rule_cls[r] = ru->cls;
		for (unsigned int d = 0; d < 64; d++)
			if (!ru->has_dscp || (ru->dscp_mask >> d & 1))
				t->dscp[d] |= bit;
		for (unsigned int p = 0; p < 256; p++)
			if (!ru->has_proto || (ru->proto_bm[p >> 6] >> (p & 63) & 1))
				t->proto[p] |= bit;
		if (!ru->has_ports)
			t->port_any |= bit;
		if (!ru->has_pfx)
			t->pfx_any |= bit;
	}
	/* ports: bitmap per port, then equivalence classes (id 0 = no port rule) */
	pbm = calloc(65536, sizeof(*pbm));
	if (pbm == NULL)
		goto nomem;
	for (unsigned int r = 0; r < n_rules(cs); r++)
		for (unsigned int i = 0; i < cs->rules->r[r].n_ports; i++)
			for (unsigned int p = cs->rules->r[r].ports[i].lo;
			     p <= cs->rules->r[r].ports[i].hi; p++)
				pbm[p] |= 1ULL << r;
	t->port_eq[0] = 0;
	for (unsigned int p = 0; p < 65536; p++) {
		if (pbm[p] != prev) {
			unsigned int k;

			for (k = 0; k < n_eq; k++)
				if (t->port_eq[k] == pbm[p])
					break;
			if (k == n_eq) {
				if (n_eq == 256) {
					snprintf(err, errlen,
						 "classes: more than 256 distinct port sets");
					free(pbm);
					tables_free(t);
					return NULL;
				}
				t->port_eq[n_eq++] = pbm[p];
			}
			cur_id = k;
			prev = pbm[p];
		}
		t->port_id[p] = (uint8_t)cur_id;
	}
	free(pbm);
	if (build_intervals(cs, 4, &t->n4, (void **)&t->lo4, &t->bm4) < 0 ||
	    build_intervals(cs, 6, &t->n6, (void **)&t->lo6, &t->bm6) < 0)
		goto nomem;
	return t;
nomem:
	snprintf(err, errlen, "classes: out of memory");
	tables_free(t);
	return NULL;
}

struct sky_classifier *
sky_classify_create(const struct sky_cfg *cfg, unsigned int n_classes, struct sky_cfg_err *err)
{
	struct sky_classifier *c = calloc(1, sizeof(*c));
	struct sky_class_set cs;
	char msg[256];

	if (c == NULL) {
		sky_cfg_fail(err, cfg, NULL, "out of memory");
		return NULL;
	}
	if (sky_class_set_parse(cfg, err, &cs) < 0) {
		free(c);
		return NULL;
	}
	if (n_classes != 0 && n_classes != cs.n_classes) {
		sky_cfg_fail(err, cfg, NULL, "classes differ from the subscriber model");
		goto fail;
	}
	c->t = compile(&cs, msg, sizeof(msg));
	if (c->t == NULL) {
		sky_cfg_fail(err, cfg, sky_cfg_get(cfg->root, "classes"), "%s", msg);
		goto fail;
	}
	c->n_classes = cs.n_classes;
	memcpy(c->cls, cs.cls, sizeof(c->cls));
	c->n_rules = n_rules(&cs);
	snprintf(c->cfg_path, sizeof(c->cfg_path), "%s", cfg->file ? cfg->file : "");
	sky_class_set_free(&cs);
	return c;
fail:
	sky_class_set_free(&cs);
	free(c);
	return NULL;
}

void
sky_classify_destroy(struct sky_classifier *c)
{
	if (c == NULL)
		return;
	tables_free(c->t);
	free(c);
}

int
sky_classify_reload(struct sky_classifier *c, const char *path, char *err, size_t errlen)
{
	struct sky_cfg_err e = {0};
	struct sky_cfg *cfg = sky_cfg_load(path, &e);
	struct sky_class_set cs;
	struct cls_tables *nt, *old;

	if (cfg == NULL) {
		snprintf(err, errlen, "%s", e.msg);
		return -1;
	}
	if (sky_class_set_parse(cfg, &e, &cs) < 0) {
		snprintf(err, errlen, "%s", e.msg);
		sky_cfg_free(cfg);
		return -1;
	}
	sky_cfg_free(cfg);
	if (cs.n_classes != c->n_classes || cs.default_cls < 0 ||
	    !c->cls[cs.default_cls].is_default) {
		snprintf(err, errlen,
			 "%s: %u classes (default %s), running %u: class names, order and the "
			 "default are fixed until restart",
			 path, cs.n_classes, cs.cls[cs.default_cls].name, c->n_classes);
		goto fail;
	}
	for (unsigned int i = 0; i < cs.n_classes; i++)
		if (strcmp(cs.cls[i].name, c->cls[i].name) != 0) {
			snprintf(err, errlen,
				 "%s: class %u is '%s', running '%s': class names and order are "
				 "fixed until restart",
				 path, i, cs.cls[i].name, c->cls[i].name);
			goto fail;
		}
	nt = compile(&cs, err, errlen);
	if (nt == NULL)
		goto fail;
	c->n_rules = n_rules(&cs);
	sky_class_set_free(&cs);
	old = c->t;
	__atomic_store_n(&c->t, nt, __ATOMIC_RELEASE);
	sky_rcu_sync();
	tables_free(old);
	return 0;
fail:
	sky_class_set_free(&cs);
	return -1;
}
