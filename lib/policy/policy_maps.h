/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/policy: policy maps (policy_maps.c). Hugepage tables the programs read
 * through helpers (data path) and the control path changes; each kind publishes its
 * lookup structure by one pointer. Calls nothing else of lib/policy.
 */
#ifndef SKY_POLICY_MAPS_H
#define SKY_POLICY_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/policy.h"

struct rte_hash;

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

#endif /* SKY_POLICY_MAPS_H */
