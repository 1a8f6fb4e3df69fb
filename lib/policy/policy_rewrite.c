/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inline lookups of direct-table and array maps into the program (control path), so the
 * hottest lookups cost a few instructions instead of a helper call (the kernel inlines
 * array lookups the same way).
 *
 * Runs after the checker accepted the program, on the bound code. A call whose map is a
 * direct table (hash with a 1- or 2-byte key) or an array becomes:
 *
 *   direct                                    array
 *   r1 = *(u8|u16 *)(r2 + 0)    key           r1 = *(u32 *)(r2 + 0)     index
 *   r0 = BLOCK ll               presence      r0 = VALUES ll
 *   r3 = r0                                   if r1 >= max_entries goto +3
 *   r0 += r1                                  r1 <<= log2(stride)
 *   r4 = *(u8 *)(r0 + 0)                      r0 += r1
 *   r1 <<= log2(stride)                       goto +1
 *   r3 += r1                                  r0 &= 0                   miss: NULL
 *   r3 += n_keys                value
 *   r0 = r3
 *   if r4 != 0 goto +1
 *   r0 &= 0                     miss: NULL
 *
 * Every access is in bounds by construction (a 1/2-byte key indexes a 256/65536-entry
 * table; an index is compared with max_entries); the key is on the stack, as the checker
 * proved. BLOCK/VALUES are external variables of the map's size, so librte_bpf's
 * validator bounds the program's own accesses to the value too. A miss is made NULL with
 * `&= 0`, which keeps the register a pointer for that validator (it explores the NULL
 * path into the non-NULL branch, where a plain 0 would not be a pointer); the checker
 * already proved the program tests for NULL before any access. r1-r4 are scratch after a
 * call, r0 the result: the rewrite keeps the call's contract.
 *
 * The same pass works around a bug of DPDK 22.11's x86 JIT: `if rX & K goto` with K in
 * -128..127 is emitted as TEST with a one-byte immediate, which x86 does not have, so the
 * CPU reads the next instructions as the immediate (wrong branches, then garbage code).
 * Such a JSET becomes `rS = K; if rX & rS goto` with a register rS that is dead there
 * (backward liveness over the forward-only code); without one the program is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_bpf.h>

#include "policy_obj.h"

#define SEQ_DIRECT 12
#define SEQ_ARRAY 8
#define SEQ_JSET 2

static struct ebpf_insn
insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct ebpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};

	return i;
}

static unsigned int
log2_of(uint32_t v)
{
	unsigned int s = 0;

	while ((1u << s) < v)
		s++;
	return s;
}

static bool
inlinable(const struct sky_pmap *m)
{
	return (m->kind == PMAP_DIRECT || m->kind == PMAP_ARRAY) &&
	       (m->stride & (m->stride - 1)) == 0 && m->max_entries <= INT32_MAX;
}

static void
emit_lddw(struct ebpf_insn *o, uint8_t dst, const void *p)
{
	uint64_t v = (uintptr_t)p;

	o[0] = insn(CODE_LDDW, dst, 0, 0, (int32_t)(uint32_t)v);
	o[1] = insn(0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32));
}

static void
emit_direct(struct ebpf_insn *o, const struct sky_pmap *m)
{
	uint32_t n_keys = 1u << (8 * m->key_size);

	o[0] = insn(BPF_LDX | BPF_MEM | (m->key_size == 1 ? BPF_B : BPF_H), 1, 2, 0, 0);
	emit_lddw(&o[1], 0, m->present);
	o[3] = insn(EBPF_ALU64 | EBPF_MOV | BPF_X, 3, 0, 0, 0);
	o[4] = insn(EBPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0);
	o[5] = insn(BPF_LDX | BPF_MEM | BPF_B, 4, 0, 0, 0);
	o[6] = insn(EBPF_ALU64 | BPF_LSH | BPF_K, 1, 0, 0, (int32_t)log2_of(m->stride));
	o[7] = insn(EBPF_ALU64 | BPF_ADD | BPF_X, 3, 1, 0, 0);
	o[8] = insn(EBPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, (int32_t)n_keys);
	o[9] = insn(EBPF_ALU64 | EBPF_MOV | BPF_X, 0, 3, 0, 0);
	o[10] = insn(BPF_JMP | EBPF_JNE | BPF_K, 4, 0, 1, 0);
	o[11] = insn(EBPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, 0);
}

static void
emit_array(struct ebpf_insn *o, const struct sky_pmap *m)
{
	o[0] = insn(BPF_LDX | BPF_MEM | BPF_W, 1, 2, 0, 0);
	emit_lddw(&o[1], 0, m->values);
	o[3] = insn(BPF_JMP | BPF_JGE | BPF_K, 1, 0, 3, (int32_t)m->max_entries);
	o[4] = insn(EBPF_ALU64 | BPF_LSH | BPF_K, 1, 0, 0, (int32_t)log2_of(m->stride));
	o[5] = insn(EBPF_ALU64 | BPF_ADD | BPF_X, 0, 1, 0, 0);
	o[6] = insn(BPF_JMP | BPF_JA, 0, 0, 1, 0);
	o[7] = insn(EBPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, 0);
}

static bool
jset_bad(const struct ebpf_insn *in)
{
	return in->code == (BPF_JMP | BPF_JSET | BPF_K) && in->imm >= -128 && in->imm <= 127;
}

/* registers (bits 0..9) an instruction reads and writes */
static void
use_def(const struct ebpf_insn *in, const struct pobj *o, uint32_t pc, uint16_t *use, uint16_t *def)
{
	uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
	uint16_t d = (uint16_t)(1u << in->dst_reg), s = (uint16_t)(1u << in->src_reg);
	bool x = BPF_SRC(in->code) == BPF_X;

	*use = 0;
	*def = 0;
	switch (cls) {
	case BPF_ALU:
	case EBPF_ALU64:
		if (op != EBPF_MOV)
			*use |= d;
		if (x && op != EBPF_END && op != BPF_NEG)
			*use |= s;
		*def = d;
		break;
	case BPF_LD: /* ld_imm64 */
		*def = d;
		break;
	case BPF_LDX:
		*use = s;
		*def = d;
		break;
	case BPF_ST:
		*use = d;
		break;
	case BPF_STX:
		*use = d | s;
		break;
	case BPF_JMP:
		if (op == EBPF_EXIT)
			*use = 1u << 0;
		else if (op == EBPF_CALL) {
			*use = 0x3e; /* r1..r5 */
			*def = 0x3f; /* r0..r5 */
		} else if (op != BPF_JA)
			*use = d | (x ? s : 0);
		break;
	default:
		break;
	}
	*use &= 0x3ff;
	*def &= 0x3ff;
	(void)o;
	(void)pc;
}

int
policy_rewrite(const struct pobj *o, struct sky_pmap *const *maps, bool inline_maps,
	       struct rte_bpf_xsym *xsym, uint32_t *n_xsym, struct ebpf_insn **out, uint32_t *n_out,
	       uint32_t *n_inlined, char *err, size_t errlen)
{
	uint32_t *npc, n = 0, var_done = 0;
	uint16_t *live_in, *scratch;
	struct ebpf_insn *ni;
	int changes = 0, rc = 0;

	*out = NULL;
	*n_out = 0;
	*n_inlined = 0;
	npc = malloc(sizeof(*npc) * (o->n_ins + 1));
	live_in = calloc(o->n_ins + 1, sizeof(*live_in));
	scratch = calloc(o->n_ins, sizeof(*scratch));
	if (npc == NULL || live_in == NULL || scratch == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* liveness, backward: every jump is forward, so successors are done first */
	for (uint32_t pc = o->n_ins; pc-- > 0;) {
		const struct ebpf_insn *in = &o->ins[pc];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		uint16_t use, def, lo = 0;

		if (pc > 0 && o->ins[pc - 1].code == CODE_LDDW && in->code == 0) {
			live_in[pc] = live_in[pc + 1]; /* second half of an ld_imm64 */
			continue;
		}
		use_def(in, o, pc, &use, &def);
		if (cls == BPF_JMP && op == EBPF_EXIT) {
			lo = 0;
		} else if (cls == BPF_JMP && op != EBPF_CALL) {
			lo = live_in[pc + 1 + in->off];
			if (op != BPF_JA)
				lo |= live_in[pc + 1];
		} else {
			lo = live_in[pc + (in->code == CODE_LDDW ? 2 : 1)];
		}
		live_in[pc] = (uint16_t)(use | (lo & ~def));
		if (jset_bad(in)) {
			/* a register dead after the jump, not its operand; scratch ones first */
			static const uint8_t pref[] = {5, 4, 3, 2, 1, 0, 9, 8, 7, 6};

			for (size_t i = 0; i < sizeof(pref); i++) {
				uint8_t r = pref[i];

				if (r != in->dst_reg && !(lo & (1u << r))) {
					scratch[pc] = (uint16_t)(1u << r) | 0x8000;
					break;
				}
			}
			if (scratch[pc] == 0) {
				snprintf(err, errlen,
					 "refused at instruction %u [jit-bug]: `if r%u & %d` needs "
					 "a "
					 "free register to avoid librte_bpf's JIT bug with small "
					 "JSET immediates, and none is free here",
					 pc, in->dst_reg, in->imm);
				rc = -EPERM;
				goto out;
			}
		}
	}
	for (uint32_t pc = 0; pc < o->n_ins; pc++) {
		const struct ebpf_insn *in = &o->ins[pc];

		npc[pc] = n;
		if (inline_maps && o->call_helper[pc] >= 0 && o->call_map[pc] >= 0 &&
		    inlinable(maps[o->call_map[pc]])) {
			n += maps[o->call_map[pc]]->kind == PMAP_DIRECT ? SEQ_DIRECT : SEQ_ARRAY;
			(*n_inlined)++;
			changes++;
		} else if (scratch[pc] != 0 && jset_bad(in)) {
			n += SEQ_JSET;
			changes++;
		} else {
			n++;
		}
	}
	npc[o->n_ins] = n;
	if (changes == 0)
		goto out;
	if (n > INT16_MAX) {
		snprintf(err, errlen, "program too long after rewriting (%u instructions)", n);
		rc = -E2BIG;
		goto out;
	}
	ni = calloc(n, sizeof(*ni));
	if (ni == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t pc = 0; pc < o->n_ins; pc++) {
		const struct ebpf_insn *in = &o->ins[pc];
		struct ebpf_insn *w = &ni[npc[pc]];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);

		if (inline_maps && o->call_helper[pc] >= 0 && o->call_map[pc] >= 0 &&
		    inlinable(maps[o->call_map[pc]])) {
			const struct sky_pmap *m = maps[o->call_map[pc]];
			int mi = o->call_map[pc];

			if (m->kind == PMAP_DIRECT)
				emit_direct(w, m);
			else
				emit_array(w, m);
			/* the block as a variable of its size, for librte_bpf's validator */
			if (!(var_done & (1u << mi))) {
				struct rte_bpf_xsym *x = &xsym[(*n_xsym)++];

				x->name = m->spec.name;
				x->type = RTE_BPF_XTYPE_VAR;
				x->var.desc.type = RTE_BPF_ARG_PTR;
				if (m->kind == PMAP_DIRECT) {
					uint32_t n_keys = 1u << (8 * m->key_size);

					x->var.val = m->present;
					x->var.desc.size = n_keys + (size_t)n_keys * m->stride;
				} else {
					x->var.val = m->values;
					x->var.desc.size = (size_t)m->max_entries * m->stride;
				}
				var_done |= 1u << mi;
			}
			continue;
		}
		if (scratch[pc] != 0 && jset_bad(in)) {
			uint8_t r = 0;
			uint32_t t = pc + 1 + in->off;

			while (!(scratch[pc] & (1u << r)))
				r++;
			w[0] = insn(EBPF_ALU64 | EBPF_MOV | BPF_K, r, 0, 0, in->imm);
			w[1] = insn(BPF_JMP | BPF_JSET | BPF_X, in->dst_reg, r,
				    (int16_t)(npc[t] - npc[pc] - 2), 0);
			continue;
		}
		*w = *in;
		if (cls == BPF_JMP && op != EBPF_CALL && op != EBPF_EXIT) {
			uint32_t t = pc + 1 + in->off; /* forward only: the checker said so */

			w->off = (int16_t)(npc[t] - npc[pc] - 1);
		}
	}
	*out = ni;
	*n_out = n;
	rc = changes;
out:
	free(npc);
	free(live_in);
	free(scratch);
	return rc;
}
