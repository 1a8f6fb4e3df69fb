/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy object loader and safety checker (control path).
 *
 * libbpf opens the object (no kernel, no root) for the map specs and their BTF types;
 * libelf gives the SEC("policy") code and its relocations (libbpf 1.1 exposes none).
 * Then the checker, because librte_bpf's validator tracks no NULL, takes any pointer as
 * a helper's map argument and lets a program write its context:
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
 *
 * Errors read "refused at instruction N [rule]: detail".
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <rte_bpf.h>

#include "policy_impl.h"

#ifndef EM_BPF
#define EM_BPF 247
#endif
#define R_BPF_64_64 1
#define R_BPF_64_32 10
#define MAX_INSNS 4096
#define STACK_SZ 512
#define N_SLOTS (STACK_SZ / 8)
#define CODE_LDDW (BPF_LD | BPF_IMM | EBPF_DW)
#define CODE_CALL (BPF_JMP | EBPF_CALL)
#define CLASS_JMP32 0x06
#define HELPER_TAIL_CALL 12

const char *const phelper_names[PH_MAX] = {
	[PH_HASH] = "sky_hash_lookup", [PH_ARRAY] = "sky_array_lookup",
	[PH_LPM4] = "sky_lpm4_lookup", [PH_LPM6] = "sky_lpm6_lookup",
	[PH_ANY] = "sky_map_lookup",
};

static int refuse(char *err, size_t errlen, uint32_t pc, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int
refuse(char *err, size_t errlen, uint32_t pc, const char *rule, const char *fmt, ...)
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
		return refuse(c->err, c->errlen, pc, "stack",
			      "stack access with a variable offset");
	o = p->omin + off;
	if (o < -STACK_SZ || o + (int64_t)sz > 0)
		return refuse(c->err, c->errlen, pc, "stack",
			      "stack access at fp%+lld size %u outside the %d-byte stack",
			      (long long)o, sz, STACK_SZ);
	unsigned int b = (unsigned int)(o + STACK_SZ);

	if (store) {
		for (unsigned int i = 0; i < sz; i++) {
			st->init[(b + i) / 8] |= (uint8_t)(1u << ((b + i) % 8));
			memset(&st->slot[(b + i) / 8], 0, sizeof(struct areg));
		}
		if (val != NULL && sz == 8 && b % 8 == 0)
			st->slot[b / 8] = *val;
		return 0;
	}
	for (unsigned int i = 0; i < sz; i++)
		if (!(st->init[(b + i) / 8] & (1u << ((b + i) % 8))))
			return refuse(c->err, c->errlen, pc, "stack",
				      "read of uninitialised stack at fp%+lld", (long long)o);
	if (sz == 8 && b % 8 == 0 && st->slot[b / 8].t != T_UNINIT)
		*out = st->slot[b / 8];
	else
		set_unknown(out, sz);
	return 0;
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
			return refuse(c->err, c->errlen, pc, "ctx-write",
				      "store into the context (r%u%+d): ctx is read-only", preg,
				      ins->off);
		lo = p->omin + ins->off;
		hi = p->omax + ins->off;
		if (lo < 0 || hi + (int64_t)sz > (int64_t)sizeof(struct sky_policy_ctx))
			return refuse(c->err, c->errlen, pc, "ctx-bounds",
				      "ctx read at offset %lld..%lld size %u beyond the %zu-byte "
				      "context",
				      (long long)lo, (long long)hi, sz,
				      sizeof(struct sky_policy_ctx));
		for (int64_t b = lo; b < hi + (int64_t)sz; b++)
			c->o->ctx_read[b] = 1;
		if (out != NULL)
			set_unknown(out, sz);
		return 0;
	case T_STACK:
		return stack_access(c, st, pc, p, ins->off, sz, store, val, out);
	case T_VAL:
		if (p->maybe_null)
			return refuse(c->err, c->errlen, pc, "null-check",
				      "r%u (a lookup result of map %s) is dereferenced without a "
				      "NULL check",
				      preg, p->map >= 0 ? c->o->maps[p->map].name : "(several)");
		lo = p->omin + ins->off;
		hi = p->omax + ins->off;
		if (lo < 0 || hi + (int64_t)sz > (int64_t)p->size)
			return refuse(c->err, c->errlen, pc, "value-bounds",
				      "map value access at offset %lld..%lld size %u beyond the "
				      "%u-byte value of map %s",
				      (long long)lo, (long long)hi, sz, p->size,
				      p->map >= 0 ? c->o->maps[p->map].name : "(several)");
		if (out != NULL)
			set_unknown(out, sz);
		return 0;
	case T_MAPH:
		return refuse(c->err, c->errlen, pc, "map-argument",
			      "r%u holds map symbol %s: a map is reached only through a lookup "
			      "helper",
			      preg, c->o->maps[p->map].name);
	default:
		return refuse(c->err, c->errlen, pc, "pointer", "%s through r%u, which is %s",
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

static int
check_alu(struct checker *c, struct astate *st, uint32_t pc, const struct ebpf_insn *ins)
{
	bool is64 = BPF_CLASS(ins->code) == EBPF_ALU64;
	uint8_t op = BPF_OP(ins->code);
	struct areg *d, s;

	/* the register fields are 4 bits: check before indexing st->r[] (r0..r10) */
	if (ins->dst_reg >= 10)
		return refuse(c->err, c->errlen, pc, "opcode", "r%u is read-only", ins->dst_reg);
	d = &st->r[ins->dst_reg];
	if (BPF_SRC(ins->code) == BPF_X) {
		if (ins->src_reg > 10)
			return refuse(c->err, c->errlen, pc, "opcode", "bad register");
		s = st->r[ins->src_reg];
		if (s.t == T_UNINIT && op != BPF_NEG && op != EBPF_END)
			return refuse(c->err, c->errlen, pc, "uninit", "r%u is used uninitialised",
				      ins->src_reg);
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
			set_unknown(d, 4);
		}
		return 0;
	}
	if (d->t == T_UNINIT)
		return refuse(c->err, c->errlen, pc, "uninit", "r%u is used uninitialised",
			      ins->dst_reg);
	if (op == BPF_NEG || op == EBPF_END) {
		set_unknown(d, op == EBPF_END ? (unsigned int)ins->imm / 8 : is64 ? 8 : 4);
		return 0;
	}
	/* pointer arithmetic: only add/sub of a scalar to/from a pointer, 64-bit */
	if (is64 && (op == BPF_ADD || op == BPF_SUB) && is_ptr(d) && s.t == T_SCALAR) {
		if (d->t == T_VAL && d->maybe_null)
			return refuse(c->err, c->errlen, pc, "null-check",
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
			return refuse(c->err, c->errlen, pc, "null-check",
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
		return refuse(c->err, c->errlen, pc, "map-argument", "arithmetic on a map symbol");
	if (d->t != T_SCALAR || s.t != T_SCALAR) {
		/* any other use of a pointer makes a plain number of it */
		set_unknown(d, is64 ? 8 : 4);
		return 0;
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
		return refuse(c->err, c->errlen, pc, "opcode", "bad register");
	d = &st->r[ins->dst_reg];
	if (d->t == T_UNINIT)
		return refuse(c->err, c->errlen, pc, "uninit", "r%u is compared uninitialised",
			      ins->dst_reg);
	if (BPF_SRC(ins->code) == BPF_X) {
		s = st->r[ins->src_reg];
		if (s.t == T_UNINIT)
			return refuse(c->err, c->errlen, pc, "uninit",
				      "r%u is compared uninitialised", ins->src_reg);
	} else {
		set_scalar(&s, (uint64_t)(int64_t)ins->imm, (uint64_t)(int64_t)ins->imm);
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
		return refuse(c->err, c->errlen, pc, "map-argument",
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
		return refuse(c->err, c->errlen, pc, "map-argument",
			      "%s called with map %s of type %s (key %u bytes)", phelper_names[h],
			      ms->name, pmap_type_name(ms->type), ms->key_size);
	if (r2->t != T_STACK)
		return refuse(c->err, c->errlen, pc, "key-pointer",
			      "r2 (the key) of %s must point to the stack, it is %s",
			      phelper_names[h], rtype_names[r2->t]);
	if (r2->omin != r2->omax || r2->omin < -STACK_SZ || r2->omin + (int64_t)ms->key_size > 0)
		return refuse(c->err, c->errlen, pc, "key-pointer",
			      "key of map %s (%u bytes) at fp%+lld is not inside the stack",
			      ms->name, ms->key_size, (long long)r2->omin);
	for (uint32_t i = 0; i < ms->key_size; i++) {
		unsigned int b = (unsigned int)(r2->omin + STACK_SZ) + i;

		if (!(st->init[b / 8] & (1u << (b % 8))))
			return refuse(c->err, c->errlen, pc, "key-pointer",
				      "key of map %s (%u bytes) at fp%+lld is not initialised",
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
			return refuse(c->err, c->errlen, pc, "opcode", "r%u is read-only",
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
			return refuse(c->err, c->errlen, pc, "opcode", "bad load 0x%02x",
				      ins->code);
		if (mem_access(c, st, pc, ins, ins->src_reg, sz, 0, NULL, &v) != 0)
			return -EPERM;
		st->r[ins->dst_reg] = v;
		return 0;
	case BPF_ST:
	case BPF_STX:
		if (ins->dst_reg > 10 || (cls == BPF_STX && ins->src_reg > 10))
			return refuse(c->err, c->errlen, pc, "opcode", "bad register");
		if (cls == BPF_STX) {
			v = st->r[ins->src_reg];
			if (v.t == T_UNINIT)
				return refuse(c->err, c->errlen, pc, "uninit",
					      "r%u is stored uninitialised", ins->src_reg);
		} else {
			set_scalar(&v, (uint64_t)(int64_t)ins->imm, (uint64_t)(int64_t)ins->imm);
		}
		if (BPF_MODE(ins->code) == EBPF_XADD && cls == BPF_STX) {
			if (sz != 4 && sz != 8)
				return refuse(c->err, c->errlen, pc, "opcode", "bad atomic size");
			set_unknown(&v, sz);
		} else if (BPF_MODE(ins->code) != BPF_MEM) {
			return refuse(c->err, c->errlen, pc, "opcode", "bad store 0x%02x",
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
				return refuse(c->err, c->errlen, pc, "return",
					      "r0 (the verdict) is %s at exit",
					      rtype_names[st->r[0].t]);
			st->live = 0;
			return 0;
		}
		return check_jmp(c, st, pc, ins);
	default:
		return refuse(c->err, c->errlen, pc, "opcode", "opcode 0x%02x", ins->code);
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
			rc = refuse(err, errlen, pc, "opcode", "non-zero %s (code 0x%02x)", bad,
				    ins->code);
		} else if ((cls == BPF_ALU || cls == EBPF_ALU64) && BPF_SRC(ins->code) == BPF_X &&
			   (op == BPF_DIV || op == BPF_MOD || op == BPF_LSH || op == BPF_RSH ||
			    op == EBPF_ARSH) &&
			   ins->dst_reg == ins->src_reg) {
			/* DPDK 22.11's x86 JIT miscompiles a register divided or shifted by
			 * itself (wrong results; r3 / r3 divides by a stale scratch register and
			 * can raise SIGFPE) */
			rc = refuse(
				err, errlen, pc, "jit-bug",
				"r%u op r%u (op 0x%02x): a register divided or shifted by itself "
				"is miscompiled by librte_bpf's JIT",
				ins->dst_reg, ins->src_reg, op);
		} else if ((cls == BPF_ALU || cls == EBPF_ALU64) && BPF_SRC(ins->code) == BPF_K &&
			   (op == BPF_LSH || op == BPF_RSH || op == EBPF_ARSH) &&
			   (uint32_t)ins->imm >= (cls == EBPF_ALU64 ? 64u : 32u)) {
			/* the kernel refuses these too; librte_bpf's x86 JIT emits code for them
			 * that faulted writing to address 1 (found by fuzz_policy) */
			rc = refuse(err, errlen, pc, "shift",
				    "shift by %d: the count of a %s shift is 0..%u", ins->imm,
				    cls == EBPF_ALU64 ? "64-bit" : "32-bit",
				    cls == EBPF_ALU64 ? 63u : 31u);
		} else if (cls == CLASS_JMP32) {
			rc = refuse(err, errlen, pc, "jmp32",
				    "32-bit jumps (JMP32, -mcpu=v3) are not supported: build with "
				    "-mcpu=v2");
		} else if (cls == BPF_LD) {
			if (ins->code != CODE_LDDW)
				rc = refuse(err, errlen, pc, "opcode",
					    "packet loads (LD_ABS/LD_IND) are not supported");
			else if (pc + 1 >= o->n_ins || o->ins[pc + 1].code != 0)
				rc = refuse(err, errlen, pc, "opcode", "truncated ld_imm64");
			else if (ins->src_reg != 0 && o->ld_map[pc] < 0)
				rc = refuse(err, errlen, pc, "opcode",
					    "ld_imm64 with pseudo source %u", ins->src_reg);
			else if (ins->off != 0 || o->ins[pc + 1].dst_reg != 0 ||
				 o->ins[pc + 1].src_reg != 0 || o->ins[pc + 1].off != 0)
				rc = refuse(err, errlen, pc, "opcode", "malformed ld_imm64");
			if (rc == 0) /* a truncated one has no second half (found by fuzz_policy) */
				second[pc + 1] = 1;
		} else if (cls == BPF_JMP && op == EBPF_CALL) {
			if (o->call_helper[pc] >= 0)
				continue;
			if (ins->src_reg == EBPF_PSEUDO_CALL)
				rc = refuse(err, errlen, pc, "bpf-call",
					    "BPF-to-BPF call (to instruction %d): mark the "
					    "function __always_inline",
					    (int)pc + 1 + ins->imm);
			else if (ins->imm == HELPER_TAIL_CALL)
				rc = refuse(err, errlen, pc, "tail-call",
					    "tail calls (helper 12) "
					    "are not supported");
			else
				rc = refuse(err, errlen, pc, "unknown-helper",
					    "call of unknown helper #%d", ins->imm);
		} else if (cls == BPF_JMP && op != EBPF_EXIT) {
			int64_t t = (int64_t)pc + 1 + ins->off;

			if (ins->off < 0)
				rc = refuse(err, errlen, pc, "loop",
					    "backward jump to instruction %lld: a loop clang did "
					    "not unroll (unbounded loops are not allowed)",
					    (long long)t);
			else if (t >= o->n_ins || second[t] ||
				 (t > 0 && o->ins[t - 1].code == CODE_LDDW && !second[t - 1]))
				rc = refuse(err, errlen, pc, "jump",
					    "jump to instruction %lld outside the program",
					    (long long)t);
		}
	}
	/* the last instruction must end the program */
	if (rc == 0) {
		const struct ebpf_insn *last = &o->ins[o->n_ins - 1];

		if (last->code != (BPF_JMP | EBPF_EXIT) && last->code != (BPF_JMP | BPF_JA))
			rc = refuse(err, errlen, o->n_ins - 1, "jump",
				    "the program falls off its end");
	}
	free(second);
	return rc;
}

int
pobj_check(struct pobj *o, char *err, size_t errlen)
{
	struct checker c = {.o = o, .err = err, .errlen = errlen};
	struct astate *st;
	int rc;

	if (o->n_ins == 0 || o->n_ins > MAX_INSNS) {
		snprintf(err, errlen, "program has %u instructions (1..%u)", o->n_ins, MAX_INSNS);
		return -EINVAL;
	}
	rc = prepass(o, err, errlen);
	if (rc != 0)
		return rc;
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

/* ================================================================== object reading */

static __thread char *lbpf_buf;
static __thread size_t lbpf_len;

static int
lbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	size_t used;

	if (level == LIBBPF_DEBUG || lbpf_buf == NULL)
		return 0;
	used = strlen(lbpf_buf);
	if (used + 1 < lbpf_len)
		vsnprintf(lbpf_buf + used, lbpf_len - used, fmt, ap);
	return 0;
}

static enum pmap_fmt
fmt_of(const struct btf *btf, uint32_t id, uint32_t size)
{
	const struct btf_type *t = btf != NULL && id != 0 ? btf__type_by_id(btf, id) : NULL;
	const char *name;

	while (t != NULL && (btf_is_const(t) || btf_is_volatile(t)))
		t = btf__type_by_id(btf, t->type);
	name = t != NULL ? btf__name_by_offset(btf, t->name_off) : NULL;
	if (name != NULL && strcmp(name, "sky_cc_t") == 0 && size == 2)
		return FMT_CC;
	if (name != NULL && strcmp(name, "sky_cc_pair") == 0 && size == 4)
		return FMT_CC_PAIR;
	if (name != NULL && strcmp(name, "sky_verdict_t") == 0 && size == 4)
		return FMT_VERDICT;
	if (size == 1 || size == 2 || size == 4 || size == 8) {
		/* a struct of a number's size is still shown in hex */
		while (t != NULL && btf_is_typedef(t))
			t = btf__type_by_id(btf, t->type);
		if (t != NULL && (btf_is_struct(t) || btf_is_union(t) || btf_is_array(t)))
			return FMT_HEX;
		return FMT_NUM;
	}
	return FMT_HEX;
}

static bool
btf_name_ok(const struct btf *btf, uint32_t off)
{
	return off == 0 || btf__str_by_offset(btf, off) != NULL;
}

/* Is every type a BTF type refers to in the BTF? libbpf 1.1 follows references without
 * checking them (libbpf 1.3 validates them) and dereferences NULL on a bad one. */
static int
btf_refs_ok(const struct btf *btf, char *why, size_t len)
{
	uint32_t n = btf__type_cnt(btf);

	for (uint32_t id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		uint32_t ref[2] = {0, 0}, vlen = btf_vlen(t);
		int kind = btf_kind(t);

		/* libbpf 1.1 passes names to strcmp() unchecked */
		if (!btf_name_ok(btf, t->name_off)) {
			snprintf(why, len, "type %u has a bad name offset", id);
			return -EINVAL;
		}
		for (uint32_t i = 0; i < vlen; i++) {
			uint32_t no = btf_is_composite(t)    ? btf_members(t)[i].name_off
				      : btf_is_func_proto(t) ? btf_params(t)[i].name_off
				      : btf_is_enum(t)	     ? btf_enum(t)[i].name_off
				      : btf_is_enum64(t)     ? btf_enum64(t)[i].name_off
							     : 0;

			if (!btf_name_ok(btf, no)) {
				snprintf(why, len, "entry %u of type %u has a bad name offset", i,
					 id);
				return -EINVAL;
			}
		}
		switch (kind) {
		case BTF_KIND_INT:
		case BTF_KIND_ENUM:
		case BTF_KIND_ENUM64:
		case BTF_KIND_FWD:
		case BTF_KIND_FLOAT:
			break;
		case BTF_KIND_PTR:
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_CONST:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_VAR:
		case BTF_KIND_TYPE_TAG:
		case BTF_KIND_DECL_TAG:
			ref[0] = t->type;
			break;
		case BTF_KIND_FUNC:
			if (t->type >= n || !btf_is_func_proto(btf__type_by_id(btf, t->type))) {
				snprintf(why, len, "function type %u is not a prototype", id);
				return -EINVAL;
			}
			break;
		case BTF_KIND_ARRAY:
			ref[0] = btf_array(t)->type;
			ref[1] = btf_array(t)->index_type;
			break;
		case BTF_KIND_STRUCT:
		case BTF_KIND_UNION:
			for (uint32_t i = 0; i < vlen; i++)
				if (btf_members(t)[i].type >= n) {
					snprintf(why, len, "member %u of type %u refers to type %u",
						 i, id, btf_members(t)[i].type);
					return -EINVAL;
				}
			break;
		case BTF_KIND_FUNC_PROTO:
			ref[0] = t->type;
			for (uint32_t i = 0; i < vlen; i++)
				if (btf_params(t)[i].type >= n) {
					snprintf(why, len,
						 "parameter %u of type %u refers to type %u", i, id,
						 btf_params(t)[i].type);
					return -EINVAL;
				}
			break;
		case BTF_KIND_DATASEC:
			for (uint32_t i = 0; i < vlen; i++) {
				uint32_t v = btf_var_secinfos(t)[i].type;
				const struct btf_type *vt = v < n ? btf__type_by_id(btf, v) : NULL;

				if (vt == NULL || (!btf_is_var(vt) && !btf_is_func(vt))) {
					snprintf(why, len,
						 "entry %u of section type %u is not a variable", i,
						 id);
					return -EINVAL;
				}
			}
			break;
		default:
			snprintf(why, len, "type %u has unknown kind %d", id, kind);
			return -EINVAL;
		}
		if (ref[0] >= n || ref[1] >= n) {
			snprintf(why, len, "type %u refers to type %u, there are %u", id,
				 ref[0] >= n ? ref[0] : ref[1], n);
			return -EINVAL;
		}
	}
	return 0;
}

/* Checks libbpf 1.1 does not do before it trusts the object (it crashes instead). */
static int
precheck(const char *path, char *err, size_t errlen)
{
	int fd, rc = 0;
	Elf *elf;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	size_t shstrndx;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf == NULL || elf_getshdrstrndx(elf, &shstrndx) != 0) {
		snprintf(err, errlen, "%s: not an ELF object (%s)", path, elf_errmsg(-1));
		rc = -EINVAL;
		goto out;
	}
	while (rc == 0 && (scn = elf_nextscn(elf, scn)) != NULL) {
		const char *name;
		Elf_Data *d;
		struct btf *btf;
		char why[160];

		if (gelf_getshdr(scn, &sh) == NULL ||
		    (name = elf_strptr(elf, shstrndx, sh.sh_name)) == NULL ||
		    strcmp(name, ".BTF") != 0)
			continue;
		d = elf_getdata(scn, NULL);
		if (d == NULL || d->d_buf == NULL || d->d_size == 0) {
			snprintf(err, errlen, "%s: malformed .BTF section", path);
			rc = -EINVAL;
			break;
		}
		btf = btf__new(d->d_buf, (uint32_t)d->d_size);
		if (libbpf_get_error(btf) != 0) {
			snprintf(err, errlen, "%s: malformed .BTF section", path);
			rc = -EINVAL;
			break;
		}
		if (btf_refs_ok(btf, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: malformed .BTF section: %s", path, why);
			rc = -EINVAL;
		}
		btf__free(btf);
	}
out:
	if (elf != NULL)
		elf_end(elf);
	close(fd);
	return rc;
}

static int
read_maps(const char *path, struct pobj *o, char *err, size_t errlen)
{
	char msg[512] = "";
	struct bpf_object *obj;
	struct bpf_map *map;
	const struct btf *btf;
	libbpf_print_fn_t old;
	long lerr;
	int rc = 0;

	lbpf_buf = msg;
	lbpf_len = sizeof(msg);
	old = libbpf_set_print(lbpf_print);
	obj = bpf_object__open_file(path, NULL);
	libbpf_set_print(old);
	lbpf_buf = NULL;
	lerr = libbpf_get_error(obj);
	if (obj == NULL || lerr != 0) {
		size_t l = strlen(msg);

		while (l > 0 && msg[l - 1] == '\n')
			msg[--l] = '\0';
		snprintf(err, errlen, "%s: libbpf cannot open the object: %s%s%s", path,
			 strerror(lerr ? (int)-lerr : errno), msg[0] ? ": " : "", msg);
		return -EINVAL;
	}
	btf = bpf_object__btf(obj);
	bpf_object__for_each_map(map, obj)
	{
		struct pmap_spec *s;

		if (bpf_map__is_internal(map)) {
			snprintf(err, errlen,
				 "%s: global data (%s) is not supported by librte_bpf: use "
				 "constants or maps",
				 path, bpf_map__name(map));
			rc = -EINVAL;
			break;
		}
		if (o->n_maps == SKY_POLICY_MAX_MAPS) {
			snprintf(err, errlen, "%s: more than %u maps", path, SKY_POLICY_MAX_MAPS);
			rc = -EINVAL;
			break;
		}
		s = &o->maps[o->n_maps++];
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", bpf_map__name(map));
		s->type = bpf_map__type(map);
		s->key_size = bpf_map__key_size(map);
		s->value_size = bpf_map__value_size(map);
		s->max_entries = bpf_map__max_entries(map);
		s->key_fmt = s->type == SKY_MAP_LPM
				     ? FMT_PREFIX
				     : fmt_of(btf, bpf_map__btf_key_type_id(map), s->key_size);
		s->value_fmt = fmt_of(btf, bpf_map__btf_value_type_id(map), s->value_size);
	}
	bpf_object__close(obj);
	return rc;
}

static int
map_index(const struct pobj *o, const char *name)
{
	for (uint32_t i = 0; i < o->n_maps; i++)
		if (strcmp(o->maps[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
read_code(const char *path, struct pobj *o, char *err, size_t errlen)
{
	int fd, rc = -EINVAL;
	Elf *elf = NULL;
	Elf_Scn *scn = NULL, *sym_scn = NULL, *prog_scn = NULL;
	GElf_Ehdr eh;
	GElf_Shdr sh, sym_sh = {0};
	size_t shstrndx, prog_idx = 0, maps_idx = 0;
	Elf_Data *syms = NULL, *code;
	int n_funcs = 0;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf == NULL || gelf_getehdr(elf, &eh) == NULL || elf_getshdrstrndx(elf, &shstrndx)) {
		snprintf(err, errlen, "%s: not an ELF object (%s)", path, elf_errmsg(-1));
		goto out;
	}
	if (eh.e_machine != EM_BPF || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errlen, "%s: not a little-endian 64-bit BPF object", path);
		goto out;
	}
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		const char *name;

		if (gelf_getshdr(scn, &sh) == NULL)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name == NULL)
			continue;
		if (sh.sh_type == SHT_SYMTAB) {
			sym_scn = scn;
			sym_sh = sh;
		} else if (strcmp(name, "policy") == 0 && sh.sh_type == SHT_PROGBITS) {
			prog_scn = scn;
			prog_idx = elf_ndxscn(scn);
		} else if (strcmp(name, ".maps") == 0) {
			maps_idx = elf_ndxscn(scn);
		} else if (strcmp(name, ".skygate.abi") == 0) {
			Elf_Data *d = elf_getdata(scn, NULL);
			uint32_t abi;

			if (d == NULL || d->d_size != sizeof(abi)) {
				snprintf(err, errlen, "%s: malformed .skygate.abi section", path);
				goto out;
			}
			memcpy(&abi, d->d_buf, sizeof(abi));
			if (abi != SKY_POLICY_ABI_VERSION) {
				snprintf(err, errlen,
					 "%s: built against policy ABI %u, the gateway has ABI %u: "
					 "rebuild it with this gateway's skygate/policy.h",
					 path, abi, SKY_POLICY_ABI_VERSION);
				goto out;
			}
		}
	}
	if (prog_scn == NULL || sym_scn == NULL) {
		snprintf(err, errlen,
			 "%s: no SEC(\"policy\") program (declare it with "
			 "SKY_POLICY(name))",
			 path);
		goto out;
	}
	syms = elf_getdata(sym_scn, NULL);
	code = elf_getdata(prog_scn, NULL);
	if (syms == NULL || code == NULL || code->d_size % sizeof(struct ebpf_insn) != 0 ||
	    code->d_size == 0) {
		snprintf(err, errlen, "%s: empty or malformed SEC(\"policy\")", path);
		goto out;
	}
	for (size_t i = 0; i < sym_sh.sh_size / sym_sh.sh_entsize; i++) {
		GElf_Sym s;

		if (gelf_getsym(syms, (int)i, &s) == NULL)
			continue;
		if (GELF_ST_TYPE(s.st_info) == STT_FUNC && s.st_shndx == prog_idx) {
			n_funcs++;
			snprintf(o->prog_name, sizeof(o->prog_name), "%s",
				 elf_strptr(elf, sym_sh.sh_link, s.st_name));
		}
	}
	if (n_funcs != 1) {
		snprintf(err, errlen, "%s: SEC(\"policy\") holds %d programs, expected one", path,
			 n_funcs);
		goto out;
	}
	o->n_ins = (uint32_t)(code->d_size / sizeof(struct ebpf_insn));
	if (o->n_ins > MAX_INSNS) {
		snprintf(err, errlen, "%s: %u instructions, at most %u", path, o->n_ins, MAX_INSNS);
		goto out;
	}
	o->ins = malloc(code->d_size);
	o->ld_map = malloc(sizeof(*o->ld_map) * o->n_ins);
	o->call_helper = malloc(sizeof(*o->call_helper) * o->n_ins);
	o->call_map = malloc(sizeof(*o->call_map) * o->n_ins);
	if (o->ins == NULL || o->ld_map == NULL || o->call_helper == NULL || o->call_map == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	memcpy(o->ins, code->d_buf, code->d_size);
	for (uint32_t i = 0; i < o->n_ins; i++) {
		o->ld_map[i] = -1;
		o->call_helper[i] = -1;
		o->call_map[i] = -1;
	}
	/* relocations of the program section */
	scn = NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		Elf_Data *rd;

		if (gelf_getshdr(scn, &sh) == NULL || sh.sh_type != SHT_REL ||
		    sh.sh_info != prog_idx)
			continue;
		rd = elf_getdata(scn, NULL);
		if (rd == NULL)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rel rel;
			GElf_Sym s;
			const char *sname;
			uint32_t pc;
			struct ebpf_insn *ins;

			if (gelf_getrel(rd, (int)i, &rel) == NULL ||
			    gelf_getsym(syms, (int)GELF_R_SYM(rel.r_info), &s) == NULL) {
				snprintf(err, errlen, "%s: bad relocation", path);
				goto out;
			}
			sname = elf_strptr(elf, sym_sh.sh_link, s.st_name);
			if (sname == NULL)
				sname = "?";
			pc = (uint32_t)(rel.r_offset / sizeof(struct ebpf_insn));
			if (rel.r_offset % sizeof(struct ebpf_insn) != 0 || pc >= o->n_ins) {
				snprintf(err, errlen, "%s: relocation outside the program", path);
				goto out;
			}
			ins = &o->ins[pc];
			if (ins->code == CODE_LDDW) {
				int mi = s.st_shndx == maps_idx && maps_idx != 0
						 ? map_index(o, sname)
						 : -1;

				if (mi < 0 && s.st_shndx == SHN_UNDEF) {
					rc = refuse(err, errlen, pc, "unknown-helper",
						    "reference to unknown extern variable %s",
						    sname);
					goto out;
				}
				if (mi < 0) {
					rc = refuse(
						err, errlen, pc, "global-data",
						"reference to %s (not a map in SEC(\".maps\")): "
						"global data is not supported",
						sname);
					goto out;
				}
				o->ld_map[pc] = (int16_t)mi;
			} else if (ins->code == CODE_CALL) {
				int h = -1;

				if (s.st_shndx != SHN_UNDEF) {
					rc = refuse(err, errlen, pc, "bpf-call",
						    "BPF-to-BPF call of %s: mark the function "
						    "__always_inline",
						    GELF_ST_TYPE(s.st_info) == STT_SECTION
							    ? "a static function"
							    : sname);
					goto out;
				}
				for (int k = 0; k < PH_MAX; k++)
					if (strcmp(sname, phelper_names[k]) == 0)
						h = k;
				if (h < 0) {
					rc = refuse(err, errlen, pc, "unknown-helper",
						    "call of unknown helper or extern %s", sname);
					goto out;
				}
				o->call_helper[pc] = (int8_t)h;
			} else {
				rc = refuse(err, errlen, pc, "opcode",
					    "relocation of %s on an unexpected instruction", sname);
				goto out;
			}
		}
	}
	rc = 0;
out:
	if (elf != NULL)
		elf_end(elf);
	close(fd);
	return rc;
}

int
pobj_load(const char *path, struct pobj *o, char *err, size_t errlen)
{
	int rc;

	uint64_t t0 = policy_now_ns(), t1;

	memset(o, 0, sizeof(*o));
	rc = precheck(path, err, errlen);
	if (rc == 0)
		rc = read_maps(path, o, err, errlen);
	if (rc == 0)
		rc = read_code(path, o, err, errlen);
	t1 = policy_now_ns();
	o->read_ns = t1 - t0;
	if (rc == 0)
		rc = pobj_check(o, err, errlen);
	o->check_ns = policy_now_ns() - t1;
	if (rc != 0)
		pobj_free(o);
	return rc;
}

void
pobj_free(struct pobj *o)
{
	free(o->ins);
	free(o->ld_map);
	free(o->call_helper);
	free(o->call_map);
	o->ins = NULL;
	o->ld_map = NULL;
	o->call_helper = NULL;
	o->call_map = NULL;
}
