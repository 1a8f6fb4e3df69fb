/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The policy safety checker (control path), run on a read and relocated object
 * (policy_elf.c) before anything binds it. Needed because librte_bpf's validator tracks
 * no NULL, takes any pointer as a helper's map argument and lets a program write its
 * context:
 *
 *   pre-pass   no JMP32, no backward jump (loops clang did not unroll), no BPF-to-BPF or
 *              tail call, no unknown helper, no packet loads, jumps inside the program;
 *   abstract   one forward pass in instruction order (every jump is forward, so each
 *   interp.    join point has seen all its inputs), tracking per register and 8-byte
 *              stack slot: scalar range, ctx / stack / map value pointer with offset
 *              range, map symbol. A lookup returns "maybe-NULL value of map M"; an
 *              `if rX ==/!= 0` clears it (for every copy) on the non-NULL branch; loads
 *              and stores through it are refused until then; value and ctx accesses
 *              are bounds-checked; ctx stores are refused; a helper's r1 must be the
 *              exact map symbol of its type and r2 a key of key_size initialised bytes
 *              on the stack.
 *   no leaks   an address never leaves the program (the kernel's "leaks addr" rule for
 *              unprivileged programs): a pointer (ctx, stack, map value, map symbol, or a
 *              register that is one on some path) may be moved, spilled whole to an
 *              8-byte stack slot, offset by a number, and compared with 0 (the NULL
 *              check); any other arithmetic, comparison, partial spill or read of a
 *              spilled pointer's bytes, store into a map value, use inside a lookup key,
 *              or return as the verdict is refused [leak] / [return].
 *   budget     the work is bounded. This pass visits each instruction once (states are
 *              merged at join points, so its cost is linear), but librte_bpf's validator,
 *              run on the bound code later (policy.c), walks every path from the entry
 *              without merging: 30 independent if-branches are 2^30 paths. Its work, the
 *              number of (path, instruction) visits, is counted exactly on the forward-
 *              only control flow graph first (pobj_path_visits) and a program above
 *              SKY_POLICY_MAX_VISITS is refused [budget] before librte_bpf sees it.
 *
 * Errors read "refused at instruction N [rule]: detail".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_bpf.h>

#include "policy_obj.h"

#define STACK_SZ 512
#define N_SLOTS (STACK_SZ / 8)
#define CLASS_JMP32 0x06
#define HELPER_TAIL_CALL 12

const char *const phelper_names[PH_MAX] = {
	[PH_HASH] = "sky_hash_lookup", [PH_ARRAY] = "sky_array_lookup",
	[PH_LPM4] = "sky_lpm4_lookup", [PH_LPM6] = "sky_lpm6_lookup",
	[PH_ANY] = "sky_map_lookup",
};

int
pobj_refuse(char *err, size_t errlen, uint32_t pc, const char *rule, const char *fmt, ...)
{
	char detail[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "refused at instruction %u [%s]: %s", pc, rule, detail);
	return -EPERM;
}

/* ================================================================== abstract state */

enum rtype { T_UNINIT, T_SCALAR, T_CTX, T_STACK, T_VAL, T_MAPH, T_MIXED };
static const char *const rtype_names[] = {"uninitialised",
					  "a scalar",
					  "the ctx pointer",
					  "a stack pointer",
					  "a map value pointer",
					  "a map symbol",
					  "of different types on different paths"};

#define OFF_LIMIT (1LL << 32)	  /* |offset| beyond this counts as unbounded ... */
#define OFF_UNBOUNDED (1LL << 40) /* ... and is kept at +-this for good */

struct areg {
	uint8_t t;
	uint8_t maybe_null;  /* T_VAL */
	int16_t map;	     /* T_MAPH: map index; T_VAL: map index or -1 (several) */
	uint32_t id;	     /* T_VAL: same id = same lookup result (copies) */
	uint32_t size;	     /* T_VAL: accessible bytes */
	uint64_t umin, umax; /* T_SCALAR */
	int64_t omin, omax;  /* pointers: offset range */
};

struct astate {
	int live;
	struct areg r[11];
	struct areg slot[N_SLOTS]; /* register spilled to an 8-byte slot (T_UNINIT: none) */
	uint8_t init[N_SLOTS];	   /* per slot, a bit per initialised byte */
	uint8_t addr[N_SLOTS];	   /* per slot, a bit per byte that may hold part of an address */
};

struct checker {
	struct pobj *o;
	struct astate **pending; /* per insn: state of the jumps into it */
	uint32_t next_id;
	char *err;
	size_t errlen;
};

static void
set_scalar(struct areg *r, uint64_t lo, uint64_t hi)
{
	memset(r, 0, sizeof(*r));
	r->t = T_SCALAR;
	r->umin = lo;
	r->umax = hi;
}

static void
set_unknown(struct areg *r, unsigned int bytes)
{
	set_scalar(r, 0, bytes >= 8 ? UINT64_MAX : (1ULL << (8 * bytes)) - 1);
}

static bool
is_ptr(const struct areg *r)
{
	return r->t == T_CTX || r->t == T_STACK || r->t == T_VAL;
}

/* holds, or may hold on some path, an address: nothing of it may leave the program */
static bool
is_addr(const struct areg *r)
{
	return is_ptr(r) || r->t == T_MAPH || r->t == T_MIXED;
}

/* id pairs met at one join: the same pair gets the same new id */
struct idmap {
	uint32_t a[64], b[64], n[64];
	unsigned int cnt;
};

static uint32_t
join_id(struct checker *c, struct idmap *im, uint32_t a, uint32_t b)
{
	if (a == b)
		return a;
	for (unsigned int i = 0; i < im->cnt; i++)
		if (im->a[i] == a && im->b[i] == b)
			return im->n[i];
	if (im->cnt < 64) {
		im->a[im->cnt] = a;
		im->b[im->cnt] = b;
		im->n[im->cnt] = ++c->next_id;
		return im->n[im->cnt++];
	}
	return ++c->next_id;
}

static void
join_reg(struct checker *c, struct idmap *im, struct areg *d, const struct areg *s)
{
	bool d0 = d->t == T_SCALAR && d->umin == 0 && d->umax == 0;
	bool s0 = s->t == T_SCALAR && s->umin == 0 && s->umax == 0;

	if (d->t == T_UNINIT || s->t == T_UNINIT) {
		memset(d, 0, sizeof(*d));
		return;
	}
	/* NULL on one path, a map value on the other: a maybe-NULL map value */
	if (d->t == T_VAL && s0) {
		d->maybe_null = 1;
		d->id = join_id(c, im, d->id, 0);
		return;
	}
	if (d0 && s->t == T_VAL) {
		*d = *s;
		d->maybe_null = 1;
		d->id = join_id(c, im, 0, s->id);
		return;
	}
	if (d->t != s->t) {
		memset(d, 0, sizeof(*d));
		d->t = T_MIXED;
		return;
	}
	switch (d->t) {
	case T_SCALAR:
		d->umin = RTE_MIN(d->umin, s->umin);
		d->umax = RTE_MAX(d->umax, s->umax);
		break;
	case T_MAPH:
		if (d->map != s->map) {
			memset(d, 0, sizeof(*d));
			d->t = T_MIXED;
		}
		break;
	case T_VAL:
		d->maybe_null |= s->maybe_null;
		d->size = RTE_MIN(d->size, s->size);
		if (d->map != s->map)
			d->map = -1;
		d->id = join_id(c, im, d->id, s->id);
		/* fall through */
	case T_CTX:
	case T_STACK:
		d->omin = RTE_MIN(d->omin, s->omin);
		d->omax = RTE_MAX(d->omax, s->omax);
		break;
	default:
		break;
	}
}

static void
join_state(struct checker *c, struct astate *d, const struct astate *s)
{
	struct idmap im;

	if (!s->live)
		return;
	if (!d->live) {
		*d = *s;
		return;
	}
	im.cnt = 0;
	for (int i = 0; i < 11; i++)
		join_reg(c, &im, &d->r[i], &s->r[i]);
	for (int i = 0; i < N_SLOTS; i++) {
		d->init[i] &= s->init[i];
		d->addr[i] |= s->addr[i];
		if (d->slot[i].t != T_UNINIT && s->slot[i].t != T_UNINIT)
			join_reg(c, &im, &d->slot[i], &s->slot[i]);
		else
			memset(&d->slot[i], 0, sizeof(d->slot[i]));
		if (d->init[i] != 0xff)
			memset(&d->slot[i], 0, sizeof(d->slot[i]));
	}
}

static int
merge_into(struct checker *c, uint32_t target, const struct astate *s)
{
	if (c->pending[target] == NULL) {
		c->pending[target] = malloc(sizeof(struct astate));
		if (c->pending[target] == NULL) {
			snprintf(c->err, c->errlen, "out of memory");
			return -ENOMEM;
		}
		*c->pending[target] = *s;
		return 0;
	}
	join_state(c, c->pending[target], s);
	return 0;
}

/* ================================================================== scalar arithmetic */

static void
scalar_alu(struct areg *d, const struct areg *s, uint8_t op, bool is64)
{
	uint64_t lo = d->umin, hi = d->umax, slo = s->umin, shi = s->umax;
	bool dconst = lo == hi, sconst = slo == shi;
	uint64_t mask = is64 ? UINT64_MAX : UINT32_MAX;

	if (!is64) {
		if (hi > UINT32_MAX || shi > UINT32_MAX) {
			/* operands are truncated to 32 bits first */
			if (hi > UINT32_MAX) {
				lo = 0;
				hi = UINT32_MAX;
			}
			if (shi > UINT32_MAX) {
				slo = 0;
				shi = UINT32_MAX;
			}
			dconst = lo == hi;
			sconst = slo == shi;
		}
	}
	switch (op) {
	case EBPF_MOV:
		set_scalar(d, slo & mask, shi & mask);
		if (!is64 && shi > UINT32_MAX)
			set_scalar(d, 0, UINT32_MAX);
		return;
	case BPF_ADD:
		if (hi + shi >= hi && hi + shi <= mask) {
			set_scalar(d, lo + slo, hi + shi);
			return;
		}
		break;
	case BPF_SUB:
		if (lo >= shi) {
			set_scalar(d, lo - shi, hi - slo);
			return;
		}
		break;
	case BPF_MUL:
		if ((shi == 0 || hi <= mask / shi)) {
			set_scalar(d, lo * slo, hi * shi);
			return;
		}
		break;
	case BPF_DIV:
		/* division by zero yields 0 at run time */
		if (slo > 0) {
			set_scalar(d, lo / shi, hi / slo);
			return;
		}
		set_scalar(d, 0, hi);
		return;
	case BPF_MOD:
		set_scalar(d, 0, shi > 0 ? RTE_MIN(hi, shi - 1) : hi);
		if (shi == 0 || slo == 0)
			set_scalar(d, 0, hi);
		return;
	case BPF_AND:
		if (dconst && sconst) {
			set_scalar(d, lo & slo, lo & slo);
			return;
		}
		set_scalar(d, 0, RTE_MIN(hi, shi));
		return;
	case BPF_OR:
	case BPF_XOR:
		if (dconst && sconst) {
			uint64_t v = op == BPF_OR ? lo | slo : lo ^ slo;

			set_scalar(d, v & mask, v & mask);
			return;
		}
		break;
	case BPF_LSH:
		if (sconst && slo < (is64 ? 64u : 32u) && (hi == 0 || (hi << slo) >> slo == hi) &&
		    (hi << slo) <= mask) {
			set_scalar(d, lo << slo, hi << slo);
			return;
		}
		break;
	case BPF_RSH:
		if (sconst && slo < (is64 ? 64u : 32u)) {
			set_scalar(d, lo >> slo, hi >> slo);
			return;
		}
		set_scalar(d, 0, hi);
		return;
	default:
		break;
	}
	set_unknown(d, is64 ? 8 : 4);
}

/* ================================================================== memory access */

static int
stack_access(struct checker *c, struct astate *st, uint32_t pc, const struct areg *p, int16_t off,
	     unsigned int sz, bool store, const struct areg *val, struct areg *out)
{
	int64_t o;

	if (p->omin != p->omax)
		return pobj_refuse(c->err, c->errlen, pc, "stack",
				   "stack access with a variable offset");
	o = p->omin + off;
	if (o < -STACK_SZ || o + (int64_t)sz > 0)
		return pobj_refuse(c->err, c->errlen, pc, "stack",
				   "stack access at fp%+lld size %u outside the %d-byte stack",
				   (long long)o, sz, STACK_SZ);
	unsigned int b = (unsigned int)(o + STACK_SZ);
	bool whole = sz == 8 && b % 8 == 0; /* exactly one slot */

	if (store) {
		if (val != NULL && is_addr(val) && !whole)
			return pobj_refuse(c->err, c->errlen, pc, "leak",
					   "store of %u bytes of %s at fp%+lld: an address is "
					   "spilled only whole, to an 8-byte slot",
					   sz, rtype_names[val->t], (long long)o);
		for (unsigned int i = 0; i < sz; i++) {
			st->init[(b + i) / 8] |= (uint8_t)(1u << ((b + i) % 8));
			st->addr[(b + i) / 8] &= (uint8_t) ~(1u << ((b + i) % 8));
			memset(&st->slot[(b + i) / 8], 0, sizeof(struct areg));
		}
		if (val != NULL && whole) {
			st->slot[b / 8] = *val;
			if (is_addr(val))
				st->addr[b / 8] = 0xff;
		}
		return 0;
	}
	for (unsigned int i = 0; i < sz; i++)
		if (!(st->init[(b + i) / 8] & (1u << ((b + i) % 8))))
			return pobj_refuse(c->err, c->errlen, pc, "stack",
					   "read of uninitialised stack at fp%+lld", (long long)o);
	if (whole && st->slot[b / 8].t != T_UNINIT) {
		*out = st->slot[b / 8];
		return 0;
	}
	/* a number made of an address's bytes would carry the address out */
	for (unsigned int i = 0; i < sz; i++)
		if (st->addr[(b + i) / 8] & (1u << ((b + i) % 8)))
			return pobj_refuse(c->err, c->errlen, pc, "leak",
					   "read of %u bytes at fp%+lld, which hold part of a "
					   "spilled address",
					   sz, (long long)o);
	set_unknown(out, sz);
	return 0;
}

/* the bytes of the context the program's ABI has (older ABIs: a prefix of ours) */
static uint32_t
ctx_size(const struct pobj *o)
{
	return o->ctx_size != 0 && o->ctx_size < sizeof(struct sky_policy_ctx)
		       ? o->ctx_size
		       : (uint32_t)sizeof(struct sky_policy_ctx);
}

static int
mem_access(struct checker *c, struct astate *st, uint32_t pc, const struct ebpf_insn *ins,
	   unsigned int preg, unsigned int sz, int store, const struct areg *val, struct areg *out)
{
	const struct areg *p = &st->r[preg];
	int64_t lo, hi;

	switch (p->t) {
	case T_CTX:
		if (store)
			return pobj_refuse(c->err, c->errlen, pc, "ctx-write",
					   "store into the context (r%u%+d): ctx is read-only",
					   preg, ins->off);
		lo = p->omin + ins->off;
		hi = p->omax + ins->off;
		if (lo < 0 || hi + (int64_t)sz > (int64_t)ctx_size(c->o))
			return pobj_refuse(c->err, c->errlen, pc, "ctx-bounds",
					   "ctx read at offset %lld..%lld size %u beyond the "
					   "%u-byte context of policy ABI %u",
					   (long long)lo, (long long)hi, sz, ctx_size(c->o),
					   c->o->abi ? c->o->abi : SKY_POLICY_ABI_VERSION);
		for (int64_t b = lo; b < hi + (int64_t)sz; b++)
			c->o->ctx_read[b] = 1;
		if (out != NULL)
			set_unknown(out, sz);
		return 0;
	case T_STACK:
		return stack_access(c, st, pc, p, ins->off, sz, store, val, out);
	case T_VAL:
		if (p->maybe_null)
			return pobj_refuse(
				c->err, c->errlen, pc, "null-check",
				"r%u (a lookup result of map %s) is dereferenced without a "
				"NULL check",
				preg, p->map >= 0 ? c->o->maps[p->map].name : "(several)");
		lo = p->omin + ins->off;
		hi = p->omax + ins->off;
		if (lo < 0 || hi + (int64_t)sz > (int64_t)p->size)
			return pobj_refuse(
				c->err, c->errlen, pc, "value-bounds",
				"map value access at offset %lld..%lld size %u beyond the "
				"%u-byte value of map %s",
				(long long)lo, (long long)hi, sz, p->size,
				p->map >= 0 ? c->o->maps[p->map].name : "(several)");
		if (store && val != NULL && is_addr(val))
			return pobj_refuse(c->err, c->errlen, pc, "leak",
					   "store of %s into a value of map %s: an address must "
					   "not leave the program (map show would print it)",
					   rtype_names[val->t],
					   p->map >= 0 ? c->o->maps[p->map].name : "(several)");
		if (out != NULL)
			set_unknown(out, sz);
		return 0;
	case T_MAPH:
		return pobj_refuse(
			c->err, c->errlen, pc, "map-argument",
			"r%u holds map symbol %s: a map is reached only through a lookup "
			"helper",
			preg, c->o->maps[p->map].name);
	default:
		return pobj_refuse(c->err, c->errlen, pc, "pointer", "%s through r%u, which is %s",
				   store ? "store" : "load", preg, rtype_names[p->t]);
	}
}

/* ================================================================== instructions */

static unsigned int
size_bytes(uint8_t code)
{
	switch (BPF_SIZE(code)) {
	case BPF_B:
		return 1;
	case BPF_H:
		return 2;
	case BPF_W:
		return 4;
	default:
		return 8;
	}
}

/* a scalar as a signed offset range within +-OFF_LIMIT (a constant may be negative:
 * `r2 += -8` is the constant 2^64 - 8); false when it is not that small */
static bool
scalar_offset(const struct areg *s, int64_t *lo, int64_t *hi)
{
	if (s->umin == s->umax) {
		int64_t v = (int64_t)s->umin;

		if (v < -OFF_LIMIT || v > OFF_LIMIT)
			return false;
		*lo = *hi = v;
		return true;
	}
	if (s->umax > (uint64_t)OFF_LIMIT)
		return false;
	*lo = (int64_t)s->umin;
	*hi = (int64_t)s->umax;
	return true;
}

/* an offset range that left +-OFF_LIMIT is unbounded for good: no later arithmetic can
 * bring it back (each step moves it by at most OFF_LIMIT, so no overflow either) */
static void
offset_bound(struct areg *p)
{
	if (p->omin < -OFF_LIMIT || p->omax > OFF_LIMIT) {
		p->omin = -OFF_UNBOUNDED;
		p->omax = OFF_UNBOUNDED;
	}
}

static const char *
alu_name(uint8_t op)
{
	static const char *const names[] = {"add", "sub", "mul", "div", "or",  "and",  "lsh",
					    "rsh", "neg", "mod", "xor", "mov", "arsh", "byte swap"};

	return (op >> 4) < RTE_DIM(names) ? names[op >> 4] : "alu";
}

static int
check_alu(struct checker *c, struct astate *st, uint32_t pc, const struct ebpf_insn *ins)
{
	bool is64 = BPF_CLASS(ins->code) == EBPF_ALU64;
	uint8_t op = BPF_OP(ins->code);
	struct areg *d, s;

	/* the register fields are 4 bits: check before indexing st->r[] (r0..r10) */
	if (ins->dst_reg >= 10)
		return pobj_refuse(c->err, c->errlen, pc, "opcode", "r%u is read-only",
				   ins->dst_reg);
	d = &st->r[ins->dst_reg];
	if (BPF_SRC(ins->code) == BPF_X) {
		if (ins->src_reg > 10)
			return pobj_refuse(c->err, c->errlen, pc, "opcode", "bad register");
		s = st->r[ins->src_reg];
		if (s.t == T_UNINIT && op != BPF_NEG && op != EBPF_END)
			return pobj_refuse(c->err, c->errlen, pc, "uninit",
					   "r%u is used uninitialised", ins->src_reg);
	} else {
		int64_t imm = ins->imm;
		uint64_t v = is64 ? (uint64_t)imm : (uint32_t)ins->imm;

		set_scalar(&s, v, v);
	}
	if (op == EBPF_MOV) {
		if (is64 || s.t == T_SCALAR) {
			if (is64)
				*d = s;
			else
				scalar_alu(d, &s, op, false);
		} else {
			return pobj_refuse(c->err, c->errlen, pc, "leak",
					   "32-bit move of r%u, which is %s: the number would "
					   "carry an address",
					   ins->src_reg, rtype_names[s.t]);
		}
		return 0;
	}
	if (d->t == T_UNINIT)
		return pobj_refuse(c->err, c->errlen, pc, "uninit", "r%u is used uninitialised",
				   ins->dst_reg);
	if (op == BPF_NEG || op == EBPF_END) {
		if (is_addr(d))
			return pobj_refuse(c->err, c->errlen, pc, "leak",
					   "%s of r%u, which is %s: the number would carry an "
					   "address",
					   alu_name(op), ins->dst_reg, rtype_names[d->t]);
		set_unknown(d, op == EBPF_END ? (unsigned int)ins->imm / 8 : is64 ? 8 : 4);
		return 0;
	}
	/* pointer arithmetic: only add/sub of a scalar to/from a pointer, 64-bit */
	if (is64 && (op == BPF_ADD || op == BPF_SUB) && is_ptr(d) && s.t == T_SCALAR) {
		if (d->t == T_VAL && d->maybe_null)
			return pobj_refuse(
				c->err, c->errlen, pc, "null-check",
				"arithmetic on r%u (a lookup result) before its NULL check",
				ins->dst_reg);
		int64_t lo, hi;

		if (!scalar_offset(&s, &lo, &hi)) {
			d->omin = -OFF_UNBOUNDED;
			d->omax = OFF_UNBOUNDED;
		} else if (op == BPF_ADD) {
			d->omin += lo;
			d->omax += hi;
		} else {
			d->omin -= hi;
			d->omax -= lo;
		}
		offset_bound(d);
		return 0;
	}
	if (is64 && op == BPF_ADD && d->t == T_SCALAR && is_ptr(&s)) {
		struct areg p = s;

		if (p.t == T_VAL && p.maybe_null)
			return pobj_refuse(
				c->err, c->errlen, pc, "null-check",
				"arithmetic on r%u (a lookup result) before its NULL check",
				ins->src_reg);
		int64_t lo, hi;

		if (!scalar_offset(d, &lo, &hi)) {
			p.omin = -OFF_UNBOUNDED;
			p.omax = OFF_UNBOUNDED;
		} else {
			p.omin += lo;
			p.omax += hi;
		}
		offset_bound(&p);
		*d = p;
		return 0;
	}
	if (d->t == T_MAPH || s.t == T_MAPH)
		return pobj_refuse(c->err, c->errlen, pc, "map-argument",
				   "arithmetic on a map symbol");
	if (d->t != T_SCALAR || s.t != T_SCALAR) {
		char src[96];

		if (BPF_SRC(ins->code) == BPF_X)
			snprintf(src, sizeof(src), "r%u (%s)", ins->src_reg, rtype_names[s.t]);
		else
			snprintf(src, sizeof(src), "%d", ins->imm);
		return pobj_refuse(c->err, c->errlen, pc, "leak",
				   "%s%s of r%u (%s) and %s: an address may only be offset by "
				   "a number (64-bit add/sub), any other arithmetic would leak it",
				   is64 ? "" : "32-bit ", alu_name(op), ins->dst_reg,
				   rtype_names[d->t], src);
	}
	scalar_alu(d, &s, op, is64);
	return 0;
}

/* refine a scalar on a branch; returns false when the branch cannot be taken */
static bool
refine(struct areg *r, uint8_t op, uint64_t k, bool taken)
{
	uint64_t lo = r->umin, hi = r->umax;

	if (r->t != T_SCALAR)
		return true;
	switch (op) {
	case BPF_JEQ:
		if (taken) {
			lo = RTE_MAX(lo, k);
			hi = RTE_MIN(hi, k);
		} else if (lo == hi && lo == k) {
			return false;
		}
		break;
	case EBPF_JNE:
		if (!taken) {
			lo = RTE_MAX(lo, k);
			hi = RTE_MIN(hi, k);
		} else if (lo == hi && lo == k) {
			return false;
		}
		break;
	case BPF_JGT: /* r > k */
		if (taken) {
			if (k == UINT64_MAX)
				return false;
			lo = RTE_MAX(lo, k + 1);
		} else {
			hi = RTE_MIN(hi, k);
		}
		break;
	case BPF_JGE:
		if (taken) {
			lo = RTE_MAX(lo, k);
		} else {
			if (k == 0)
				return false;
			hi = RTE_MIN(hi, k - 1);
		}
		break;
	case EBPF_JLT:
		if (taken) {
			if (k == 0)
				return false;
			hi = RTE_MIN(hi, k - 1);
		} else {
			lo = RTE_MAX(lo, k);
		}
		break;
	case EBPF_JLE:
		if (taken) {
			hi = RTE_MIN(hi, k);
		} else {
			if (k == UINT64_MAX)
				return false;
			lo = RTE_MAX(lo, k + 1);
		}
		break;
	default:
		return true;
	}
	if (lo > hi)
		return false;
	r->umin = lo;
	r->umax = hi;
	return true;
}

/* the NULL check: every copy of lookup result `id` becomes 0 or non-NULL */
static void
null_branch(struct astate *st, uint32_t id, bool is_null)
{
	for (int i = 0; i < 11 + N_SLOTS; i++) {
		struct areg *r = i < 11 ? &st->r[i] : &st->slot[i - 11];

		if (r->t != T_VAL || r->id != id)
			continue;
		if (is_null)
			set_scalar(r, 0, 0);
		else
			r->maybe_null = 0;
	}
}

static int
check_jmp(struct checker *c, struct astate *st, uint32_t pc, const struct ebpf_insn *ins)
{
	uint8_t op = BPF_OP(ins->code);
	uint32_t target = pc + 1 + ins->off;
	struct astate *tk;
	struct areg *d, s;
	bool can_take = true, can_fall = true;
	int rc;

	if (op == BPF_JA) {
		rc = merge_into(c, target, st);
		st->live = 0;
		return rc;
	}
	if (ins->dst_reg > 10 || (BPF_SRC(ins->code) == BPF_X && ins->src_reg > 10))
		return pobj_refuse(c->err, c->errlen, pc, "opcode", "bad register");
	d = &st->r[ins->dst_reg];
	if (d->t == T_UNINIT)
		return pobj_refuse(c->err, c->errlen, pc, "uninit", "r%u is compared uninitialised",
				   ins->dst_reg);
	if (BPF_SRC(ins->code) == BPF_X) {
		s = st->r[ins->src_reg];
		if (s.t == T_UNINIT)
			return pobj_refuse(c->err, c->errlen, pc, "uninit",
					   "r%u is compared uninitialised", ins->src_reg);
	} else {
		set_scalar(&s, (uint64_t)(int64_t)ins->imm, (uint64_t)(int64_t)ins->imm);
	}
	/* a branch on an address derives the verdict from it: only the NULL check of a
	 * lookup result (== or != 0) compares a pointer */
	if (is_addr(d) || is_addr(&s)) {
		bool null_check = d->t == T_VAL && s.t == T_SCALAR && s.umin == 0 && s.umax == 0 &&
				  (op == BPF_JEQ || op == EBPF_JNE);

		if (!null_check)
			return pobj_refuse(c->err, c->errlen, pc, "leak",
					   "comparison of r%u (%s) with %s (%s): a branch on an "
					   "address would let the verdict reveal it; only a lookup "
					   "result is compared, with 0",
					   ins->dst_reg, rtype_names[d->t],
					   BPF_SRC(ins->code) == BPF_X ? "a register"
								       : "a constant",
					   rtype_names[s.t]);
	}
	tk = malloc(sizeof(*tk));
	if (tk == NULL) {
		snprintf(c->err, c->errlen, "out of memory");
		return -ENOMEM;
	}
	*tk = *st;
	if (s.t == T_SCALAR && s.umin == s.umax) {
		uint64_t k = s.umin;

		if (d->t == T_VAL && d->maybe_null && k == 0 && (op == BPF_JEQ || op == EBPF_JNE)) {
			null_branch(tk, d->id, op == BPF_JEQ);
			null_branch(st, d->id, op != BPF_JEQ);
		} else if (d->t == T_SCALAR) {
			can_take = refine(&tk->r[ins->dst_reg], op, k, true);
			can_fall = refine(&st->r[ins->dst_reg], op, k, false);
		}
	}
	rc = 0;
	if (can_take)
		rc = merge_into(c, target, tk);
	free(tk);
	if (!can_fall)
		st->live = 0;
	return rc;
}

static int
check_call(struct checker *c, struct astate *st, uint32_t pc)
{
	struct pobj *o = c->o;
	int h = o->call_helper[pc];
	const struct areg *r1 = &st->r[1], *r2 = &st->r[2];
	const struct pmap_spec *ms;
	bool ok;

	if (r1->t != T_MAPH)
		return pobj_refuse(c->err, c->errlen, pc, "map-argument",
				   "r1 of %s must be the address of a map symbol, it is %s",
				   phelper_names[h], rtype_names[r1->t]);
	ms = &o->maps[r1->map];
	switch (h) {
	case PH_HASH:
		ok = ms->type == SKY_MAP_HASH;
		break;
	case PH_ARRAY:
		ok = ms->type == SKY_MAP_ARRAY;
		break;
	case PH_LPM4:
		ok = ms->type == SKY_MAP_LPM && ms->key_size == sizeof(struct sky_lpm4_key);
		break;
	case PH_LPM6:
		ok = ms->type == SKY_MAP_LPM && ms->key_size == sizeof(struct sky_lpm6_key);
		break;
	default:
		ok = true;
	}
	if (!ok)
		return pobj_refuse(c->err, c->errlen, pc, "map-argument",
				   "%s called with map %s of type %s (key %u bytes)",
				   phelper_names[h], ms->name, pmap_type_name(ms->type),
				   ms->key_size);
	if (r2->t != T_STACK)
		return pobj_refuse(c->err, c->errlen, pc, "key-pointer",
				   "r2 (the key) of %s must point to the stack, it is %s",
				   phelper_names[h], rtype_names[r2->t]);
	if (r2->omin != r2->omax || r2->omin < -STACK_SZ || r2->omin + (int64_t)ms->key_size > 0)
		return pobj_refuse(c->err, c->errlen, pc, "key-pointer",
				   "key of map %s (%u bytes) at fp%+lld is not inside the stack",
				   ms->name, ms->key_size, (long long)r2->omin);
	for (uint32_t i = 0; i < ms->key_size; i++) {
		unsigned int b = (unsigned int)(r2->omin + STACK_SZ) + i;

		if (!(st->init[b / 8] & (1u << (b % 8))))
			return pobj_refuse(c->err, c->errlen, pc, "key-pointer",
					   "key of map %s (%u bytes) at fp%+lld is not initialised",
					   ms->name, ms->key_size, (long long)r2->omin);
		if (st->addr[b / 8] & (1u << (b % 8)))
			return pobj_refuse(c->err, c->errlen, pc, "leak",
					   "key of map %s (%u bytes) at fp%+lld holds a spilled "
					   "address: the lookup would reveal it",
					   ms->name, ms->key_size, (long long)r2->omin);
	}
	o->call_map[pc] = r1->map;
	for (int i = 1; i <= 5; i++)
		memset(&st->r[i], 0, sizeof(struct areg));
	memset(&st->r[0], 0, sizeof(struct areg));
	st->r[0].t = T_VAL;
	st->r[0].maybe_null = 1;
	st->r[0].map = r1->map;
	st->r[0].size = ms->value_size;
	st->r[0].id = ++c->next_id;
	return 0;
}

static int
check_insn(struct checker *c, struct astate *st, uint32_t pc)
{
	const struct ebpf_insn *ins = &c->o->ins[pc];
	uint8_t cls = BPF_CLASS(ins->code);
	struct areg v;
	unsigned int sz = size_bytes(ins->code);

	switch (cls) {
	case BPF_LD: /* only ld_imm64 survives the pre-pass */
		if (ins->dst_reg >= 10)
			return pobj_refuse(c->err, c->errlen, pc, "opcode", "r%u is read-only",
					   ins->dst_reg);
		if (c->o->ld_map[pc] >= 0) {
			memset(&st->r[ins->dst_reg], 0, sizeof(struct areg));
			st->r[ins->dst_reg].t = T_MAPH;
			st->r[ins->dst_reg].map = c->o->ld_map[pc];
		} else {
			uint64_t val = (uint32_t)ins[0].imm | (uint64_t)(uint32_t)ins[1].imm << 32;

			set_scalar(&st->r[ins->dst_reg], val, val);
		}
		return 0;
	case BPF_LDX:
		if (BPF_MODE(ins->code) != BPF_MEM || ins->src_reg > 10 || ins->dst_reg >= 10)
			return pobj_refuse(c->err, c->errlen, pc, "opcode", "bad load 0x%02x",
					   ins->code);
		if (mem_access(c, st, pc, ins, ins->src_reg, sz, 0, NULL, &v) != 0)
			return -EPERM;
		st->r[ins->dst_reg] = v;
		return 0;
	case BPF_ST:
	case BPF_STX:
		if (ins->dst_reg > 10 || (cls == BPF_STX && ins->src_reg > 10))
			return pobj_refuse(c->err, c->errlen, pc, "opcode", "bad register");
		if (cls == BPF_STX) {
			v = st->r[ins->src_reg];
			if (v.t == T_UNINIT)
				return pobj_refuse(c->err, c->errlen, pc, "uninit",
						   "r%u is stored uninitialised", ins->src_reg);
		} else {
			set_scalar(&v, (uint64_t)(int64_t)ins->imm, (uint64_t)(int64_t)ins->imm);
		}
		if (BPF_MODE(ins->code) == EBPF_XADD && cls == BPF_STX) {
			struct areg old;

			if (sz != 4 && sz != 8)
				return pobj_refuse(c->err, c->errlen, pc, "opcode",
						   "bad atomic size");
			if (is_addr(&v))
				return pobj_refuse(c->err, c->errlen, pc, "leak",
						   "atomic add of r%u, which is %s: an address "
						   "must not leave the program",
						   ins->src_reg, rtype_names[v.t]);
			/* a read too: the memory must be readable, and not an address */
			if (mem_access(c, st, pc, ins, ins->dst_reg, sz, 0, NULL, &old) != 0)
				return -EPERM;
			if (old.t != T_SCALAR)
				return pobj_refuse(c->err, c->errlen, pc, "leak",
						   "atomic add to a spilled %s: the number would "
						   "carry an address",
						   rtype_names[old.t]);
			set_unknown(&v, sz);
		} else if (BPF_MODE(ins->code) != BPF_MEM) {
			return pobj_refuse(c->err, c->errlen, pc, "opcode", "bad store 0x%02x",
					   ins->code);
		}
		return mem_access(c, st, pc, ins, ins->dst_reg, sz, 1, &v, NULL);
	case BPF_ALU:
	case EBPF_ALU64:
		return check_alu(c, st, pc, ins);
	case BPF_JMP:
		if (BPF_OP(ins->code) == EBPF_CALL)
			return check_call(c, st, pc);
		if (BPF_OP(ins->code) == EBPF_EXIT) {
			if (st->r[0].t != T_SCALAR)
				return pobj_refuse(
					c->err, c->errlen, pc, "return",
					"r0 (the verdict) is %s at exit%s", rtype_names[st->r[0].t],
					is_addr(&st->r[0]) ? ": an address must not leave the "
							     "program"
							   : "");
			st->live = 0;
			return 0;
		}
		return check_jmp(c, st, pc, ins);
	default:
		return pobj_refuse(c->err, c->errlen, pc, "opcode", "opcode 0x%02x", ins->code);
	}
}

/* unused fields must be zero (librte_bpf and the kernel say so too) */
static const char *
bad_fields(const struct ebpf_insn *ins)
{
	uint8_t cls = BPF_CLASS(ins->code), op = BPF_OP(ins->code);
	bool x = BPF_SRC(ins->code) == BPF_X;

	switch (cls) {
	case BPF_ALU:
	case EBPF_ALU64:
		if (op > EBPF_END || (op == EBPF_END && cls == EBPF_ALU64))
			return "opcode bits (no such ALU operation in eBPF v2)";
		if (op == EBPF_ARSH && cls == BPF_ALU)
			return "opcode bits (32-bit arithmetic shift: librte_bpf has none)";
		if (ins->off != 0)
			return "offset of an ALU instruction";
		if (op == EBPF_END) /* the source bit says little or big endian */
			return ins->src_reg != 0 ||
					       (ins->imm != 16 && ins->imm != 32 && ins->imm != 64)
				       ? "operand of a byte swap"
				       : NULL;
		if (!x && ins->src_reg != 0)
			return "source register of an immediate ALU instruction";
		if (x && ins->imm != 0)
			return "immediate of a register ALU instruction";
		if (op == BPF_NEG && (x || ins->src_reg != 0 || ins->imm != 0))
			return "operand of a negation";
		return NULL;
	case BPF_LDX:
		return ins->imm != 0 ? "immediate of a load" : NULL;
	case BPF_ST:
		return ins->src_reg != 0 ? "source register of an immediate store" : NULL;
	case BPF_STX:
		return ins->imm != 0 ? "immediate of a register store" : NULL;
	case BPF_JMP:
		if (op > EBPF_JSLE)
			return "opcode bits (no such jump)";
		if (op == EBPF_EXIT)
			return ins->dst_reg || ins->src_reg || ins->off || ins->imm
				       ? "fields of exit"
				       : NULL;
		if (op == EBPF_CALL)
			return ins->dst_reg || ins->off ? "fields of a call" : NULL;
		if (op == BPF_JA)
			return ins->dst_reg || ins->src_reg || ins->imm ? "fields of a jump" : NULL;
		if (!x && ins->src_reg != 0)
			return "source register of an immediate jump";
		if (x && ins->imm != 0)
			return "immediate of a register jump";
		return NULL;
	default:
		return NULL;
	}
}

static int
prepass(struct pobj *o, char *err, size_t errlen)
{
	uint8_t *second = calloc(o->n_ins, 1); /* second half of an ld_imm64 */
	int rc = 0;

	if (second == NULL)
		return -ENOMEM;
	for (uint32_t pc = 0; pc < o->n_ins && rc == 0; pc++) {
		const struct ebpf_insn *ins = &o->ins[pc];
		uint8_t cls = BPF_CLASS(ins->code), op = BPF_OP(ins->code);

		const char *bad;

		if (second[pc])
			continue;
		if (cls != CLASS_JMP32 && (bad = bad_fields(ins)) != NULL) {
			rc = pobj_refuse(err, errlen, pc, "opcode", "non-zero %s (code 0x%02x)",
					 bad, ins->code);
		} else if ((cls == BPF_ALU || cls == EBPF_ALU64) && BPF_SRC(ins->code) == BPF_X &&
			   (op == BPF_DIV || op == BPF_MOD || op == BPF_LSH || op == BPF_RSH ||
			    op == EBPF_ARSH) &&
			   ins->dst_reg == ins->src_reg) {
			/* DPDK 22.11's x86 JIT miscompiles a register divided or shifted by
			 * itself (wrong results; r3 / r3 divides by a stale scratch register and
			 * can raise SIGFPE) */
			rc = pobj_refuse(
				err, errlen, pc, "jit-bug",
				"r%u op r%u (op 0x%02x): a register divided or shifted by itself "
				"is miscompiled by librte_bpf's JIT",
				ins->dst_reg, ins->src_reg, op);
		} else if ((cls == BPF_ALU || cls == EBPF_ALU64) && BPF_SRC(ins->code) == BPF_K &&
			   (op == BPF_LSH || op == BPF_RSH || op == EBPF_ARSH) &&
			   (uint32_t)ins->imm >= (cls == EBPF_ALU64 ? 64u : 32u)) {
			/* the kernel refuses these too; librte_bpf's x86 JIT emits code for them
			 * that faulted writing to address 1 (found by fuzz_policy) */
			rc = pobj_refuse(err, errlen, pc, "shift",
					 "shift by %d: the count of a %s shift is 0..%u", ins->imm,
					 cls == EBPF_ALU64 ? "64-bit" : "32-bit",
					 cls == EBPF_ALU64 ? 63u : 31u);
		} else if (cls == CLASS_JMP32) {
			rc = pobj_refuse(
				err, errlen, pc, "jmp32",
				"32-bit jumps (JMP32, -mcpu=v3) are not supported: build with "
				"-mcpu=v2");
		} else if (cls == BPF_LD) {
			if (ins->code != CODE_LDDW)
				rc = pobj_refuse(err, errlen, pc, "opcode",
						 "packet loads (LD_ABS/LD_IND) are not supported");
			else if (pc + 1 >= o->n_ins || o->ins[pc + 1].code != 0)
				rc = pobj_refuse(err, errlen, pc, "opcode", "truncated ld_imm64");
			else if (ins->src_reg != 0 && o->ld_map[pc] < 0)
				rc = pobj_refuse(err, errlen, pc, "opcode",
						 "ld_imm64 with pseudo source %u", ins->src_reg);
			else if (ins->off != 0 || o->ins[pc + 1].dst_reg != 0 ||
				 o->ins[pc + 1].src_reg != 0 || o->ins[pc + 1].off != 0)
				rc = pobj_refuse(err, errlen, pc, "opcode", "malformed ld_imm64");
			if (rc == 0) /* a truncated one has no second half (found by fuzz_policy) */
				second[pc + 1] = 1;
		} else if (cls == BPF_JMP && op == EBPF_CALL) {
			if (o->call_helper[pc] >= 0)
				continue;
			if (ins->src_reg == EBPF_PSEUDO_CALL)
				rc = pobj_refuse(err, errlen, pc, "bpf-call",
						 "BPF-to-BPF call (to instruction %d): mark the "
						 "function __always_inline",
						 (int)pc + 1 + ins->imm);
			else if (ins->imm == HELPER_TAIL_CALL)
				rc = pobj_refuse(err, errlen, pc, "tail-call",
						 "tail calls (helper 12) "
						 "are not supported");
			else
				rc = pobj_refuse(err, errlen, pc, "unknown-helper",
						 "call of unknown helper #%d", ins->imm);
		} else if (cls == BPF_JMP && op != EBPF_EXIT) {
			int64_t t = (int64_t)pc + 1 + ins->off;

			if (ins->off < 0)
				rc = pobj_refuse(
					err, errlen, pc, "loop",
					"backward jump to instruction %lld: a loop clang did "
					"not unroll (unbounded loops are not allowed)",
					(long long)t);
			else if (t >= o->n_ins || second[t] ||
				 (t > 0 && o->ins[t - 1].code == CODE_LDDW && !second[t - 1]))
				rc = pobj_refuse(err, errlen, pc, "jump",
						 "jump to instruction %lld outside the program",
						 (long long)t);
		}
	}
	/* the last instruction must end the program */
	if (rc == 0) {
		const struct ebpf_insn *last = &o->ins[o->n_ins - 1];

		if (last->code != (BPF_JMP | EBPF_EXIT) && last->code != (BPF_JMP | BPF_JA))
			rc = pobj_refuse(err, errlen, o->n_ins - 1, "jump",
					 "the program falls off its end");
	}
	free(second);
	return rc;
}

uint64_t
pobj_path_visits(const struct ebpf_insn *ins, uint32_t n, uint64_t limit, uint32_t *at)
{
	uint64_t *paths = calloc((size_t)n + 2, sizeof(*paths)), total = 0;

	*at = 0;
	if (paths == NULL)
		return limit + 1; /* cannot tell: too much */
	paths[0] = 1;
	/* every jump is forward: the paths into pc are all counted when pc is reached. Counts
	 * are capped at limit + 1 (no overflow: any count above limit ends the walk) */
	for (uint32_t pc = 0; pc < n; pc++) {
		const struct ebpf_insn *in = &ins[pc];
		uint64_t k = paths[pc];
		uint8_t op = BPF_OP(in->code);
		int64_t t = (int64_t)pc + 1 + in->off;

		if (k == 0)
			continue;
		total += k;
		if (total > limit) {
			*at = pc;
			total = limit + 1;
			break;
		}
		if (in->code == CODE_LDDW) {
			if (pc + 2 <= n)
				paths[pc + 2] = RTE_MIN(paths[pc + 2] + k, limit + 1);
			pc++;
			continue;
		}
		if (BPF_CLASS(in->code) == BPF_JMP && op == EBPF_EXIT)
			continue;
		if (BPF_CLASS(in->code) == BPF_JMP && op != EBPF_CALL && t > (int64_t)pc &&
		    t <= (int64_t)n)
			paths[t] = RTE_MIN(paths[t] + k, limit + 1);
		if (!(BPF_CLASS(in->code) == BPF_JMP && op == BPF_JA))
			paths[pc + 1] = RTE_MIN(paths[pc + 1] + k, limit + 1);
	}
	free(paths);
	return total;
}

int
pobj_refuse_budget(char *err, size_t errlen, uint32_t at, const char *what)
{
	return pobj_refuse(err, errlen, at, "budget",
			   "%s has too many paths: librte_bpf's validator walks each of them and "
			   "would make more than %u instruction visits (the limit) by this one; "
			   "independent if-branches multiply paths (n of them make 2^n): test "
			   "fewer conditions, or look the answer up in a map",
			   what, SKY_POLICY_MAX_VISITS);
}

int
pobj_check(struct pobj *o, char *err, size_t errlen)
{
	struct checker c = {.o = o, .err = err, .errlen = errlen};
	struct astate *st;
	int rc;

	if (o->n_ins == 0 || o->n_ins > POBJ_MAX_INSNS) {
		snprintf(err, errlen, "program has %u instructions (1..%u)", o->n_ins,
			 POBJ_MAX_INSNS);
		return -EINVAL;
	}
	rc = prepass(o, err, errlen);
	if (rc != 0)
		return rc;
	/* the budget: this pass is linear (states merged at joins), librte_bpf's is not */
	uint32_t at;

	o->visits = pobj_path_visits(o->ins, o->n_ins, SKY_POLICY_MAX_VISITS, &at);
	if (o->visits > SKY_POLICY_MAX_VISITS)
		return pobj_refuse_budget(err, errlen, at, "the program");
	c.pending = calloc(o->n_ins, sizeof(*c.pending));
	st = calloc(1, sizeof(*st));
	if (c.pending == NULL || st == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	st->live = 1;
	st->r[1].t = T_CTX;
	st->r[10].t = T_STACK;
	for (uint32_t pc = 0; pc < o->n_ins; pc++) {
		if (c.pending[pc] != NULL) {
			join_state(&c, c.pending[pc], st);
			*st = *c.pending[pc];
			free(c.pending[pc]);
			c.pending[pc] = NULL;
		}
		if (!st->live)
			continue;
		rc = check_insn(&c, st, pc);
		if (rc != 0)
			goto out;
		if (o->ins[pc].code == CODE_LDDW)
			pc++;
	}
out:
	if (c.pending != NULL)
		for (uint32_t pc = 0; pc < o->n_ins; pc++)
			free(c.pending[pc]);
	free(c.pending);
	free(st);
	return rc;
}
