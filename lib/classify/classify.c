/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Traffic classification: the `classes:` rules (lib/subscriber/classes.c parses them)
 * compiled into per-field tables of rule bitmaps. Rules are numbered in class order (at
 * most 64), so a packet's class is the class of the lowest rule whose every field accepts
 * it:
 *   candidates = dscp[d] & proto[p] & (port_any | port_eq[id[sport]] | port_eq[id[dport]])
 *                & (pfx_any | intervals(remote address))
 * dscp/proto: direct tables (rules without that field have their bit set everywhere);
 * ports: 65536-byte port -> equivalence-class table plus <= 256 bitmaps; prefixes: the
 * prefixes of all rules cut into disjoint address intervals, binary-searched (v4 on u32,
 * v6 on unsigned __int128). No candidate: the default class.
 * Why not rte_acl: its build is far heavier for <= 64 rules and its run-time needs a
 * 5-tuple layout per packet; this costs a few table loads per packet
 * (bench_subscriber prints the cycles).
 *
 * `class reload` re-reads the config file's `classes` section, compiles aside, publishes
 * one pointer and frees the old tables after sky_rcu_sync(). Class names, count and order
 * must not change (they are indexes for the shaper and counters): such a reload is refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_malloc.h>

#include "skygate/control.h"
#include "skygate/runtime.h"
#include "subs_internal.h"

typedef unsigned __int128 u128;

struct cls_tables {
	uint64_t dscp[64];
	uint64_t proto[256];
	uint64_t port_any;    /* rules without a ports field */
	uint64_t pfx_any;     /* rules without a prefixes field */
	uint8_t rule_cls[64]; /* [63]: the default class (sentinel bit) */
	uint8_t default_cls;
	uint32_t n4, n6; /* intervals */
	uint32_t *lo4;	 /* [n4] interval starts, host order, lo4[0] = 0 */
	uint64_t *bm4;
	u128 *lo6;
	uint64_t *bm6;
	uint64_t port_eq[256];
	uint8_t port_id[65536];
} __rte_cache_aligned;

struct sky_classifier {
	struct cls_tables *t; /* published */
	unsigned int n_classes;
	struct sky_class cls[SKY_MAX_CLASSES];
	unsigned int n_rules;
	char cfg_path[PATH_MAX];
};

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

struct ev {
	u128 pos;
	int delta;
	unsigned int rule;
};

static int
ev_cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static u128
addr_u128(const uint8_t *a, unsigned int bytes)
{
	u128 v = 0;

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
	u128 *lo = NULL;
	uint64_t *bm = NULL, cur = 0;
	unsigned int cnt[SKY_MAX_RULES] = {0};
	int rc = -ENOMEM;

	for (unsigned int r = 0; r < cs->n_rules; r++)
		for (unsigned int i = 0; i < cs->rules[r].n_pfx; i++)
			if (cs->rules[r].pfx[i].family == fam)
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
	for (unsigned int r = 0; r < cs->n_rules; r++) {
		for (unsigned int i = 0; i < cs->rules[r].n_pfx; i++) {
			const struct sky_rule_pfx *p = &cs->rules[r].pfx[i];
			u128 start = addr_u128(p->a, bits / 8), size, end;

			if (p->family != fam)
				continue;
			ev[n_ev++] = (struct ev){start, +1, r};
			if (p->len == 0)
				continue; /* to the top of the space */
			size = (u128)1 << (bits - p->len);
			end = start + size;
			/* an end at the top of the space (2^32, or a wrap past 2^128) needs none */
			if (fam == 4 ? end < ((u128)1 << 32) : end > start)
				ev[n_ev++] = (struct ev){end, -1, r};
		}
	}
	qsort(ev, n_ev, sizeof(*ev), ev_cmp);
	lo[n_iv] = 0;
	bm[n_iv++] = 0;
	for (size_t i = 0; i < n_ev;) {
		u128 pos = ev[i].pos;

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
		u128 *l6 = rte_malloc("sky_cls_iv", n_iv * sizeof(u128), 16);

		if (l6 == NULL)
			goto out;
		memcpy(l6, lo, n_iv * sizeof(u128));
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
	for (unsigned int r = 0; r < cs->n_rules; r++) {
		const struct sky_rule *ru = &cs->rules[r];
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
	for (unsigned int r = 0; r < cs->n_rules; r++)
		for (unsigned int i = 0; i < cs->rules[r].n_ports; i++)
			for (unsigned int p = cs->rules[r].ports[i].lo;
			     p <= cs->rules[r].ports[i].hi; p++)
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
		u128 x;

		n = t->n6;
		if (n == 0)
			return 0;
		memcpy(&hi64, a, 8);
		memcpy(&lo64, a + 8, 8);
		x = (u128)rte_be_to_cpu_64(hi64) << 64 | rte_be_to_cpu_64(lo64);
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

struct sky_classifier *
sky_classifier_create(const struct sky_cfg *cfg, const struct sky_subs *s, struct sky_cfg_err *err)
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
	if (s != NULL && sky_subs_n_classes(s) != cs.n_classes) {
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
	c->n_rules = cs.n_rules;
	snprintf(c->cfg_path, sizeof(c->cfg_path), "%s", cfg->file ? cfg->file : "");
	sky_class_set_free(&cs);
	return c;
fail:
	sky_class_set_free(&cs);
	free(c);
	return NULL;
}

void
sky_classifier_destroy(struct sky_classifier *c)
{
	if (c == NULL)
		return;
	tables_free(c->t);
	free(c);
}

int
sky_classifier_reload(struct sky_classifier *c, const char *path, char *err, size_t errlen)
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
	c->n_rules = cs.n_rules;
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

static int
cmd_reload(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_classifier *c = arg;
	char err[600];

	if (argc != 0)
		return sky_ctl_fail(call, "usage: class reload");
	if (c->cfg_path[0] == '\0')
		return sky_ctl_fail(call, "no config file to read");
	if (sky_classifier_reload(c, c->cfg_path, err, sizeof(err)) < 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "class rules reloaded from %s (%u rules)", c->cfg_path, c->n_rules);
	*result = json_pack("{s:s, s:I}", "file", c->cfg_path, "rules", (json_int_t)c->n_rules);
	return 0;
}

static int
cmd_list(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_classifier *c = arg;
	json_t *a = json_array();

	if (argc != 0)
		return sky_ctl_fail(call, "usage: class list");
	for (unsigned int i = 0; i < c->n_classes; i++)
		json_array_append_new(a,
				      json_pack("{s:i, s:s, s:b}", "index", i, "name",
						c->cls[i].name, "default", c->cls[i].is_default));
	*result = a;
	return 0;
}

int
sky_classifier_register(struct sky_classifier *c, const char *config_path)
{
	int rc;

	if (config_path != NULL)
		snprintf(c->cfg_path, sizeof(c->cfg_path), "%s", config_path);
	rc = sky_ctl_register("class reload", "",
			      "re-read the classes rules from the config file (names fixed)", 0,
			      cmd_reload, c);
	if (rc < 0)
		return rc;
	return sky_ctl_register("class list", "", "traffic classes in priority order", 0, cmd_list,
				c);
}
