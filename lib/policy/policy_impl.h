/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/policy: the hook (struct sky_policy) and how its files call each other.
 *
 *   policy_ctl.c   commands, telemetry, metrics   -> policy.c
 *   policy_cfg.c   the `policy` config section    -> policy.c
 *   policy.c       the owner: program load/swap, map entries, counters
 *                                                 -> policy_elf.c (-> policy_check.c),
 *                                                    policy_rewrite.c, policy_maps.c,
 *                                                    policy_dp.c
 *   policy_dp.c    the per-burst run (data path)  calls nothing of lib/policy
 *
 * Never the other way: the owner knows nothing of its control file; what the control
 * side must hear of (the instance going away) it registers as p->on_destroy.
 */
#ifndef SKY_POLICY_IMPL_H
#define SKY_POLICY_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>

#include "skygate/policy.h"

#include "policy_maps.h"
#include "policy_obj.h"

struct rte_bpf_xsym;

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
#define CTXG_ZONE 0x400 /* zone, quota_state (ABI 2) */

/* a loaded program; immutable once published */
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
	uint32_t abi;	    /* the policy ABI it was built against */
	uint32_t n_inlined; /* lookups inlined (policy_rewrite.c) */
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
	/* set by the control side (policy_ctl.c) when it registers the instance: called
	 * first thing in sky_policy_destroy, so it lets go of p */
	void (*on_destroy)(struct sky_policy *p);
};

/* held by the control thread while it replaces or frees a program (policy.c), and by
 * DPDK's telemetry thread while it reads one (policy_ctl.c) */
extern pthread_mutex_t policy_prog_lock;

/* ---- policy.c: the owner */
struct sky_prog_info {
	char name[64];
	char sha256[65];
	uint32_t n_ins, n_maps;
	uint32_t abi; /* the policy ABI it was built against */
	bool jit;
	uint64_t load_ns;
	uint64_t visits; /* librte_bpf's validator work (<= SKY_POLICY_MAX_VISITS) */
};
/* a hook with no program, counters allocated, defaults set: 0, -ENOMEM (memory) or
 * -ENOSPC (hugepage memory for the counters) */
int policy_new(const struct sky_subs *subs, struct sky_policy **out);
/* load an object the checker accepted, built in memory (tests); consumes o */
int policy_load_obj(struct sky_policy *p, struct pobj *o, char *err, size_t errlen);
/* load (or, dry_run, check) an object from its bytes, read by the caller with sky_file_read
 * (buf is used only during the call); path names it in policy show, origin (NULL: path) in
 * errors about its content; the SHA-256 is of these bytes */
int policy_load_bytes(struct sky_policy *p, void *buf, size_t len, const char *path,
		      const char *origin, bool dry_run, struct sky_prog_info *info, char *err,
		      size_t errlen);
/* everything `policy load` does but the swap (maps it would create are freed again) */
int policy_check_file(struct sky_policy *p, const char *path, struct sky_prog_info *info, char *err,
		      size_t errlen);
struct sky_pmap *policy_map_find(struct sky_policy *p, const char *name);
/* counters summed over workers since the start; blocked entries summed over workers
 * (at most max of them in out) */
void policy_stats_total(const struct sky_policy *p, struct sky_policy_stats *st);
void policy_blk_sum(const struct sky_policy *p, struct blk_ent *out, unsigned int *n,
		    unsigned int max);

/* readable verdict values: "class:NAME|N" / "dscp:N" to a number in out (else s as is);
 * the value of a sky_verdict_t map shown as pass, drop, class:NAME, dscp:N */
const char *policy_value_in(const struct sky_policy *p, const char *s, char *out, size_t len);
void policy_value_out(const struct sky_policy *p, const struct sky_pmap *m, const void *value,
		      char *out, size_t len);

/* ---- policy_dp.c: the context groups a program reads (ctx_read: its bytes) */
uint32_t policy_ctx_groups(const uint8_t ctx_read[sizeof(struct sky_policy_ctx)]);

#endif /* SKY_POLICY_IMPL_H */
