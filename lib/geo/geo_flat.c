/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo address ranges: nested networks -> disjoint ranges -> CIDR blocks (geo_flat.h).
 *
 * The FIB only needs address -> (country, flags). The database's networks nest (a /16 of
 * one country holding /24s of others) and many neighbours differ only in their AS number,
 * so the networks are flattened first: one sweep in address order (parents first) with a
 * stack of the open networks gives disjoint ranges valued by the deepest network covering
 * them (libloc's answer); neighbouring ranges of equal value merge; each range becomes a
 * few CIDR blocks. The FIBs then hold disjoint routes, about half as many as networks,
 * and answer exactly what libloc answers. Addresses are 128-bit here, IPv4 as
 * ::ffff:a.b.c.d like libloc's tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_byteorder.h>
#include <rte_common.h>

#include "geo_flat.h"

int
geo_grow(void **p, size_t *cap, size_t need, size_t esz)
{
	size_t c = *cap ? *cap : 65536;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * esz);
	if (q == NULL)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static geo_u128
u128_from(const uint8_t *b)
{
	uint64_t hi, lo;

	memcpy(&hi, b, 8);
	memcpy(&lo, b + 8, 8);
	return ((geo_u128)rte_be_to_cpu_64(hi) << 64) | rte_be_to_cpu_64(lo);
}

static unsigned int
u128_ctz(geo_u128 x)
{
	uint64_t lo = (uint64_t)x, hi = (uint64_t)(x >> 64);

	if (lo != 0)
		return (unsigned int)__builtin_ctzll(lo);
	return hi != 0 ? 64u + (unsigned int)__builtin_ctzll(hi) : 128u;
}

void
geo_u128_to(geo_u128 x, uint8_t *b)
{
	for (int i = 15; i >= 0; i--) {
		b[i] = (uint8_t)x;
		x >>= 8;
	}
}

int
geo_fnets_add(struct geo_fnets *s, const uint8_t *addr, unsigned int depth, uint16_t val)
{
	struct geo_fnet *x;

	if (depth > 128)
		return -EINVAL;
	if (geo_grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0)
		return -ENOMEM;
	x = &s->v[s->n++];
	x->first = u128_from(addr);
	if (depth < 128)
		x->first &= ~((((geo_u128)1) << (128 - depth)) - 1);
	x->last = depth == 0 ? GEO_U128_MAX
			     : x->first | (depth == 128 ? 0 : (((geo_u128)1) << (128 - depth)) - 1);
	x->val = val;
	x->depth = (uint8_t)depth;
	return 0;
}

static int
fnet_cmp(const void *a, const void *b)
{
	const struct geo_fnet *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (int)x->depth - (int)y->depth;
}

void
geo_fnets_sort(struct geo_fnets *s)
{
	size_t i;

	for (i = 1; i < s->n; i++)
		if (fnet_cmp(&s->v[i - 1], &s->v[i]) > 0)
			break;
	if (i < s->n)
		qsort(s->v, s->n, sizeof(*s->v), fnet_cmp);
}

struct pending {
	geo_u128 lo, hi;
	uint16_t val;
	int have;
	geo_range_fn fn;
	void *arg;
};

static int
pend_emit(struct pending *p, geo_u128 lo, geo_u128 hi, uint16_t val)
{
	int rc = 0;

	if (lo > hi)
		return 0;
	if (p->have && p->val == val && p->hi != GEO_U128_MAX && p->hi + 1 == lo) {
		p->hi = hi;
		return 0;
	}
	if (p->have)
		rc = p->fn(p->arg, p->lo, p->hi, p->val);
	p->lo = lo;
	p->hi = hi;
	p->val = val;
	p->have = 1;
	return rc;
}

int
geo_flatten(const struct geo_fnet *v, size_t n, geo_range_fn fn, void *arg)
{
	size_t stack[130], sp = 0;
	geo_u128 cursor[130]; /* first address of stack[k] not yet emitted or given to a subnet */
	struct pending p = {.fn = fn, .arg = arg};
	int rc;

	for (size_t i = 0; i <= n; i++) {
		const struct geo_fnet *x = i < n ? &v[i] : NULL;

		while (sp > 0 && (x == NULL || x->first > v[stack[sp - 1]].last)) {
			const struct geo_fnet *top = &v[stack[sp - 1]];

			if (cursor[sp - 1] <= top->last) {
				rc = pend_emit(&p, cursor[sp - 1], top->last, top->val);
				if (rc != 0)
					return rc;
			}
			sp--;
			if (sp > 0) /* the parent resumes after this network */
				cursor[sp - 1] =
					top->last == GEO_U128_MAX ? GEO_U128_MAX : top->last + 1;
		}
		if (x == NULL)
			break;
		if (sp > 0) {
			const struct geo_fnet *top = &v[stack[sp - 1]];

			if (x->last > top->last)
				return -EINVAL; /* overlaps without nesting */
			if (x->first > cursor[sp - 1]) {
				rc = pend_emit(&p, cursor[sp - 1], x->first - 1, top->val);
				if (rc != 0)
					return rc;
			}
			if (sp >= RTE_DIM(stack))
				return -EINVAL;
		}
		stack[sp] = i;
		cursor[sp] = x->first;
		sp++;
	}
	return p.have ? p.fn(p.arg, p.lo, p.hi, p.val) : 0;
}

/* Range [lo, hi] of one family as CIDR blocks. */
static int
range_cidrs(geo_u128 lo, geo_u128 hi, int v4, uint16_t val, geo_cidr_fn fn, void *arg)
{
	uint8_t b[16];
	int rc;

	while (lo <= hi) {
		unsigned int tz = u128_ctz(lo);
		geo_u128 span;

		for (;;) {
			span = tz == 128 ? GEO_U128_MAX : (((geo_u128)1) << tz) - 1;
			if (lo + span >= lo && lo + span <= hi)
				break;
			tz--;
		}
		geo_u128_to(lo, b);
		rc = v4 ? fn(arg, AF_INET, b + 12, 32 - tz, val)
			: fn(arg, AF_INET6, b, 128 - tz, val);
		if (rc != 0)
			return rc;
		if (lo + span == GEO_U128_MAX)
			break;
		lo += span + 1;
	}
	return 0;
}

int
geo_range_cidrs(geo_u128 lo, geo_u128 hi, uint16_t val, geo_cidr_fn fn, void *arg)
{
	int rc = 0;

	if (hi < GEO_V4_LO || lo > GEO_V4_HI)
		return range_cidrs(lo, hi, 0, val, fn, arg);
	if (lo < GEO_V4_LO)
		rc = range_cidrs(lo, GEO_V4_LO - 1, 0, val, fn, arg);
	if (rc == 0)
		rc = range_cidrs(lo > GEO_V4_LO ? lo : GEO_V4_LO, hi < GEO_V4_HI ? hi : GEO_V4_HI,
				 1, val, fn, arg);
	if (rc == 0 && hi > GEO_V4_HI)
		rc = range_cidrs(GEO_V4_HI + 1, hi, 0, val, fn, arg);
	return rc;
}
