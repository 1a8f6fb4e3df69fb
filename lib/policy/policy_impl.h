/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of lib/policy: maps (policy_maps.c), the object loader and safety checker
 * (policy_load.c), the hook itself (policy.c).
 */
#ifndef SKY_POLICY_IMPL_H
#define SKY_POLICY_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>

#include "skygate/policy.h"

struct rte_hash;
struct rte_bpf;
struct ebpf_insn;

/* ---------------------------------------------------------------- maps */

/* how a map is built (chosen from its spec) */
enum pmap_kind {
	PMAP_DIRECT, /* hash with a 1- or 2-byte key: a direct-indexed table */
	PMAP_SMALL,  /* hash with a 3..8-byte key: own open-addressing table */
	PMAP_HASH,   /* hash with a longer key: rte_hash (lock-free readers) */
	PMAP_ARRAY,  /* array: u32 index */
	PMAP_LPM4,   /* LPM, struct sky_lpm4_key */
	PMAP_LPM6,   /* LPM, struct sky_lpm6_key */
};

/* readable form of a key or value (from the BTF type name, else the size) */
enum pmap_fmt {
	FMT_NUM,     /* unsigned number, 1/2/4/8 bytes */
	FMT_CC,	     /* sky_cc_t: "DE" */
	FMT_CC_PAIR, /* struct sky_cc_pair: "RU:KP" */
	FMT_PREFIX,  /* LPM key: "10.0.0.0/8", "2001:db8::/32" */
	FMT_VERDICT, /* sky_verdict_t: pass, drop, class:NAME, dscp:N */
	FMT_HEX,     /* anything else: hex bytes */
};

/* what a map looks like in an object */
struct pmap_spec {
	char name[64];
	uint32_t type; /* SKY_MAP_* */
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	enum pmap_fmt key_fmt, value_fmt;
};

struct lpm_snap;  /* immutable LPM lookup table, published by pointer */
struct small_tab; /* open-addressing table of a PMAP_SMALL map */
struct lpm_rule {
	uint8_t addr[16];
	uint8_t len;
	uint32_t slot;
};

/* a map: data-path part first (read by the helpers), then control path only */
struct sky_pmap {
	uint64_t handle; /* the value a program's map symbol is relocated to */
	uint32_t kind;	 /* enum pmap_kind */
	uint32_t stride; /* bytes between values */
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint8_t *values;      /* rte_zmalloc */
	uint8_t *present;     /* PMAP_DIRECT: 1 byte per key */
	struct rte_hash *h;   /* PMAP_HASH */
	struct small_tab *sm; /* PMAP_SMALL: __atomic published */
	struct lpm_snap *lpm; /* PMAP_LPM*: __atomic published */
	/* --- control path only --- */
	struct pmap_spec spec;
	uint32_t n_entries;
	struct lpm_rule *rules; /* PMAP_LPM*: every prefix with its value slot */
	uint32_t *free_slots;	/* PMAP_LPM*: stack of free value slots */
	uint32_t n_free;
	uint32_t n_tombs;    /* PMAP_SMALL: deleted slots not yet reclaimed */
	uint32_t n_rebuilds; /* PMAP_SMALL: tables rebuilt to drop tombstones */
	unsigned int reg_idx;
};

#define PMAP_REG_MAX 256

struct sky_pmap *pmap_create(const struct pmap_spec *spec, char *err, size_t errlen);
/* free now: no program may embed the handle and readers must be quiescent */
void pmap_free(struct sky_pmap *m);
bool pmap_spec_equal(const struct pmap_spec *a, const struct pmap_spec *b);
/* readable key/value forms; 0 or -errno with err */
int pmap_update_str(struct sky_pmap *m, const char *key, const char *value, char *err,
		    size_t errlen);
int pmap_delete_str(struct sky_pmap *m, const char *key, char *err, size_t errlen);
/* raw forms (key_size/value_size bytes) */
int pmap_update(struct sky_pmap *m, const void *key, const void *value, char *err, size_t errlen);
int pmap_delete(struct sky_pmap *m, const void *key, char *err, size_t errlen);
/* iterate entries (control path): fn gets raw key and value pointers; non-zero stops */
void pmap_foreach(struct sky_pmap *m, int (*fn)(void *arg, const void *key, const void *value),
		  void *arg);
int pmap_format(const struct sky_pmap *m, bool is_key, const void *bytes, char *out, size_t len);
const char *pmap_type_name(uint32_t type);

/* helper functions bound by the loader, one per map kind; args (handle, key) */
typedef uint64_t (*pmap_helper_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
pmap_helper_fn pmap_helper_for(const struct sky_pmap *m);

/* ---------------------------------------------------------------- loader / checker */

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
	uint64_t read_ns, check_ns; /* time spent reading (libbpf + libelf) and checking */
};

/* Read the ELF object (libbpf for map specs, libelf for code and relocations), relocate
 * and run the safety checker. 0, or -errno with err ("rule ... at instruction N: ..."). */
int pobj_load(const char *path, struct pobj *o, char *err, size_t errlen);
/* The checker alone (used by pobj_load; exported for tests of hand-written code). */
int pobj_check(struct pobj *o, char *err, size_t errlen);
void pobj_free(struct pobj *o);

/* policy_inline.c: rewrite bound code for librte_bpf: lookups of direct-table and array
 * maps inlined (inline_maps), JSET with small immediates moved to a dead register (a JIT
 * bug). Returns the number of changes (0: *out NULL, use the code as is) or -errno with
 * err; VARs of inlined maps are appended to xsym. */
struct rte_bpf_xsym;
int policy_rewrite(const struct pobj *o, struct sky_pmap *const *maps, bool inline_maps,
		   struct rte_bpf_xsym *xsym, uint32_t *n_xsym, struct ebpf_insn **out,
		   uint32_t *n_out, uint32_t *n_inlined, char *err, size_t errlen);

/* ---------------------------------------------------------------- misc */
void sky_sha256(const void *data, size_t len, uint8_t out[32]);
uint64_t policy_now_ns(void);

/* ---------------------------------------------------------------- the hook */

struct rte_bpf_xsym;

/* a loaded program; immutable once published */
/* groups of context fields; the data path fills only those the program reads */
#define CTXG_HDR 0x001	 /* dir, family, proto, dscp */
#define CTXG_SUB 0x002	 /* sub_id */
#define CTXG_CC 0x004	 /* sub_country, remote_country */
#define CTXG_BEAM 0x008	 /* beam, plan */
#define CTXG_REALM 0x010 /* realm, cls, remote_flags */
#define CTXG_PORTS 0x020 /* sport, dport */
#define CTXG_LEN 0x040	 /* len */
#define CTXG_MISC 0x080	 /* flags, icmp, ip_len */
#define CTXG_SRC 0x100
#define CTXG_DST 0x200

struct sky_prog {
	uint64_t (*jit)(void *); /* data path: JIT code, NULL = interpreter */
	struct rte_bpf *bpf;
	uint32_t ctx_groups; /* data path: CTXG_* the program reads */
	/* --- control path only --- */
	char path[4096];
	char name[64];
	char sha256[65];
	uint64_t loaded_at;		    /* unix seconds */
	uint64_t load_ns;		    /* read + check + rte_bpf_load + JIT */
	uint64_t read_ns, check_ns, jit_ns; /* its parts: libbpf+libelf, our checker,
					     * rte_bpf_load (validator + JIT) */
	uint32_t n_ins;
	uint32_t n_inlined; /* lookups inlined (policy_inline.c) */
	struct sky_pmap *maps[SKY_POLICY_MAX_MAPS];
	uint32_t n_maps;
	struct rte_bpf_xsym *xsym;
	uint32_t n_xsym;
};

/* verdict counter slots: 0 = fault, then the verdict codes */
#define PV_FAULT 0
#define PV_MAX (SKY_POLICY_V_PASS_DSCP + 1)

/* blocked packets per (subscriber country, remote country, direction): a bounded
 * open-addressing table per worker, no allocation on the data path */
#define BLK_SIZE 256
#define BLK_PROBES 8
struct blk_ent {
	uint64_t key; /* 1 << 63 | sub_cc << 17 | remote_cc << 1 | dir; 0 = empty */
	uint64_t pkts;
	uint64_t bytes;
};

struct policy_wstats {
	uint64_t runs;
	uint64_t v[PV_MAX];
	uint64_t bursts;
	uint64_t cycles;			  /* of the timed bursts */
	uint64_t timed_runs;			  /* runs in the timed bursts */
	uint64_t blk_other_pkts, blk_other_bytes; /* table full */
	struct blk_ent blk[BLK_SIZE];
} __rte_cache_aligned;

struct sky_policy {
	/* --- data path --- */
	struct sky_prog *prog;	  /* __atomic published, NULL = pass everything */
	struct policy_wstats *ws; /* [SKY_MAX_WORKERS] */
	uint8_t on_fault_drop;
	uint8_t n_classes;
	/* --- control path only --- */
	bool jit;
	const struct sky_subs *subs; /* class names for verdict values (may be NULL) */
	struct sky_pmap *maps[SKY_POLICY_MAX_MAPS]; /* the current map set */
	uint32_t n_maps;
	struct sky_policy_stats base; /* counters when the program was loaded */
	char cfg_dir[4096];
	bool registered;
};

/* held by the control thread while it replaces or frees a program, and by DPDK's
 * telemetry thread while it reads one */
#include <pthread.h>
extern pthread_mutex_t policy_tel_lock;

/* policy.c */
struct sky_prog_info {
	char name[64];
	char sha256[65];
	uint32_t n_ins, n_maps;
	bool jit;
	uint64_t load_ns;
};
/* load an object the checker accepted, built in memory (tests); consumes o */
int policy_load_obj(struct sky_policy *p, struct pobj *o, char *err, size_t errlen);
/* everything `policy load` does but the swap (maps it would create are freed again) */
int policy_check_file(struct sky_policy *p, const char *path, struct sky_prog_info *info, char *err,
		      size_t errlen);
void policy_stats_total(const struct sky_policy *p, struct sky_policy_stats *st);
int policy_file_sha256(const char *path, char hex[65], char *err, size_t errlen);

/* readable verdict values: "class:NAME|N" / "dscp:N" to a number in out (else s as is);
 * the value of a sky_verdict_t map shown as pass, drop, class:NAME, dscp:N */
const char *policy_value_in(const struct sky_policy *p, const char *s, char *out, size_t len);
void policy_value_out(const struct sky_policy *p, const struct sky_pmap *m, const void *value,
		      char *out, size_t len);

/* policy_ctl.c */
struct sky_pmap *policy_map_find(struct sky_policy *p, const char *name);
void policy_blk_sum(const struct sky_policy *p, struct blk_ent *out, unsigned int *n,
		    unsigned int max);
int policy_register_ctl(struct sky_policy *p);
void policy_unregister_ctl(struct sky_policy *p);

#endif /* SKY_POLICY_IMPL_H */
