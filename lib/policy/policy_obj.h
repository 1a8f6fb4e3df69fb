/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/policy: a policy object between the file and the hook.
 *
 *   policy_elf.c      read the ELF object (libbpf: map specs; libelf: code, relocations),
 *                     then run the checker                        (pobj_load_mem, pobj_free)
 *   policy_check.c    the safety checker                          (pobj_check)
 *   policy_rewrite.c  rewrite bound code for librte_bpf            (policy_rewrite)
 *
 * Calls point one way: elf -> check; rewrite and check read maps' specs; none of them
 * calls the hook (policy.c).
 */
#ifndef SKY_POLICY_OBJ_H
#define SKY_POLICY_OBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "skygate/policy.h"

#include "policy_maps.h"

struct ebpf_insn;

#define POBJ_MAX_INSNS 4096 /* instructions per program */
#define CODE_LDDW (BPF_LD | BPF_IMM | EBPF_DW)
#define CODE_CALL (BPF_JMP | EBPF_CALL)

/* helpers a program may call (extern ... __ksym) */
enum phelper {
	PH_HASH,  /* sky_hash_lookup */
	PH_ARRAY, /* sky_array_lookup */
	PH_LPM4,  /* sky_lpm4_lookup */
	PH_LPM6,  /* sky_lpm6_lookup */
	PH_ANY,	  /* sky_map_lookup */
	PH_MAX
};
extern const char *const phelper_names[PH_MAX];

/* an object read, relocated and checked, before maps are bound */
struct pobj {
	struct ebpf_insn *ins; /* malloc'd copy; ld_imm64 of maps and calls still unbound */
	uint32_t n_ins;
	char prog_name[64];
	struct pmap_spec maps[SKY_POLICY_MAX_MAPS];
	uint32_t n_maps;
	int16_t *ld_map;     /* per insn: map index of an ld_imm64, -1 otherwise */
	int8_t *call_helper; /* per insn: enum phelper of a call, -1 otherwise */
	int16_t *call_map;   /* per insn: the map a call's r1 holds (set by the checker) */
	uint8_t ctx_read[sizeof(struct sky_policy_ctx)]; /* bytes the program may read */
	uint32_t abi;		    /* the ABI it was built against (.skygate.abi; absent: ours) */
	uint32_t ctx_size;	    /* the context of that ABI, bytes (0: the whole context) */
	uint64_t read_ns, check_ns; /* time spent reading (libbpf + libelf) and checking */
	uint64_t visits;	    /* librte_bpf's validator work (pobj_path_visits) */
};

/* Read the ELF object from its bytes in memory (read by the caller with sky_file_read;
 * used only during the call, never written; path names them in errors): libbpf for map
 * specs, libelf for code and relocations; relocate and run the safety checker. 0, or
 * -errno with err ("refused at instruction N [rule]: ..."). */
int pobj_load_mem(void *buf, size_t len, const char *path, struct pobj *o, char *err,
		  size_t errlen);
/* The checker alone (used by pobj_load_mem; exported for tests of hand-written code). */
int pobj_check(struct pobj *o, char *err, size_t errlen);
void pobj_free(struct pobj *o);
/* The work of librte_bpf's validator on code whose jumps all go forward (the pre-pass
 * proved it): the sum over instructions of the number of paths from the entry reaching
 * them. Stops counting above limit (returns limit + 1, *at = the instruction where the
 * count passed it). */
uint64_t pobj_path_visits(const struct ebpf_insn *ins, uint32_t n, uint64_t limit, uint32_t *at);
/* "refused at instruction N [budget]: ..." for a count above SKY_POLICY_MAX_VISITS */
int pobj_refuse_budget(char *err, size_t errlen, uint32_t at, const char *what);

/* policy_rewrite.c: rewrite bound code for librte_bpf: lookups of direct-table and array
 * maps inlined (inline_maps), JSET with small immediates moved to a dead register (a JIT
 * bug). Returns the number of changes (0: *out NULL, use the code as is) or -errno with
 * err; VARs of inlined maps are appended to xsym. */
struct rte_bpf_xsym;
int policy_rewrite(const struct pobj *o, struct sky_pmap *const *maps, bool inline_maps,
		   struct rte_bpf_xsym *xsym, uint32_t *n_xsym, struct ebpf_insn **out,
		   uint32_t *n_out, uint32_t *n_inlined, char *err, size_t errlen);

/* "refused at instruction N [rule]: detail" in err; returns -EPERM */
int pobj_refuse(char *err, size_t errlen, uint32_t pc, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static inline uint64_t
policy_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif /* SKY_POLICY_OBJ_H */
