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
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_bpf.h>

#include "policy_impl.h"

#define CODE_LDDW (BPF_LD | BPF_IMM | EBPF_DW)
#define SEQ_DIRECT 12
#define SEQ_ARRAY 8

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

int
policy_inline(const struct pobj *o, struct sky_pmap *const *maps, struct rte_bpf_xsym *xsym,
	      uint32_t *n_xsym, struct ebpf_insn **out, uint32_t *n_out)
{
	uint32_t *npc, n = 0, var_done = 0;
	struct ebpf_insn *ni;
	int inlined = 0;

	*out = NULL;
	*n_out = 0;
	npc = malloc(sizeof(*npc) * (o->n_ins + 1));
	if (npc == NULL)
		return -ENOMEM;
	for (uint32_t pc = 0; pc < o->n_ins; pc++) {
		npc[pc] = n;
		if (o->call_helper[pc] >= 0 && inlinable(maps[o->call_map[pc]])) {
			n += maps[o->call_map[pc]]->kind == PMAP_DIRECT ? SEQ_DIRECT : SEQ_ARRAY;
			inlined++;
		} else {
			n++;
		}
	}
	npc[o->n_ins] = n;
	if (inlined == 0 || n > INT16_MAX) {
		free(npc);
		return 0;
	}
	ni = calloc(n, sizeof(*ni));
	if (ni == NULL) {
		free(npc);
		return -ENOMEM;
	}
	for (uint32_t pc = 0; pc < o->n_ins; pc++) {
		const struct ebpf_insn *in = &o->ins[pc];
		struct ebpf_insn *w = &ni[npc[pc]];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);

		if (o->call_helper[pc] >= 0 && inlinable(maps[o->call_map[pc]])) {
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
		*w = *in;
		if (cls == BPF_JMP && op != EBPF_CALL && op != EBPF_EXIT) {
			uint32_t t = pc + 1 + in->off; /* forward only: the checker said so */

			w->off = (int16_t)(npc[t] - npc[pc] - 1);
		}
	}
	free(npc);
	*out = ni;
	*n_out = n;
	return inlined;
}
