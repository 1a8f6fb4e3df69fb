/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The policy hook: the ABI shared by eBPF policy programs and the gateway, and the
 * gateway's policy API.
 *
 * One header for both worlds. A policy is restricted C built with
 *   clang -O2 -g -target bpf -mcpu=v2 -I lib/include -c my.bpf.c -o my.bpf.o
 * (eBPF ISA v2: no JMP32, no loops that clang does not unroll, no BPF-to-BPF calls, no
 * global data; helpers are `extern ... __ksym`, maps libbpf-style in SEC(".maps")).
 * When __bpf__ is defined this header includes nothing and declares the context, the
 * verdicts, the map macros and the helpers; otherwise it also declares the gateway API.
 *
 * A program is one function in SEC("policy"):
 *
 *   SKY_POLICY(my_policy)        // uint64_t my_policy(const struct sky_policy_ctx *ctx)
 *   {
 *           uint16_t cc = ctx->remote_country;
 *           uint8_t *v = sky_hash_lookup(&blocked, &cc);
 *           if (v != NULL && *v != 0)
 *                   return SKY_POLICY_DROP;
 *           return SKY_POLICY_PASS;
 *   }
 *
 * The context is read-only. The program returns a verdict (below); 0 and unknown codes
 * are faults (librte_bpf returns 0 on a division by zero), counted and handled by the
 * configured `on_fault` action. A lookup returns a pointer to the map's value or NULL;
 * the loader refuses a program that dereferences it without a NULL check, reads or
 * writes outside the value, or passes anything but a map symbol of the helper's map
 * type and a key on the stack.
 *
 * Addresses are in network byte order; an IPv4 address occupies the first 4 bytes of its
 * 16-byte field. Ports are host order. Country codes are ISO 3166 alpha-2 as u16:
 * ('D' << 8) | 'E' (SKY_CC('D', 'E')), 0 = unknown.
 */
#ifndef SKYGATE_POLICY_H
#define SKYGATE_POLICY_H

#ifdef __bpf__
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
#ifndef NULL
#define NULL ((void *)0)
#endif
#else
#include <stddef.h>
#include <stdint.h>
#endif

/**
 * Bumped on any change of struct sky_policy_ctx or of the verdicts. A program records the
 * version it was built against (SKY_POLICY); the loader runs programs of versions
 * SKY_POLICY_ABI_MIN..SKY_POLICY_ABI_VERSION and refuses others (built for a newer gateway,
 * or too old). Versions only add fields at the end of the context, so an older program's
 * fields are where it expects them; the loader holds it to the context of its version (a
 * read past it is refused, [ctx-bounds]).
 *   1  the context up to dst (72 bytes)
 *   2  + zone, quota_state (76 bytes)
 */
#define SKY_POLICY_ABI_VERSION 2
#define SKY_POLICY_ABI_MIN 1

/* --- context --- */

#define SKY_POLICY_DIR_UP 0   /* terminal -> internet */
#define SKY_POLICY_DIR_DOWN 1 /* internet -> terminal */

/* ctx->flags (the gateway copies them from its metadata flags: the same bits, asserted
 * below) */
#define SKY_POLICY_F_FRAG 0x01	     /* a fragment */
#define SKY_POLICY_F_FRAG_FIRST 0x02 /* the first fragment (carries the L4 header) */
#define SKY_POLICY_F_PORTS 0x04	     /* sport/dport valid */
#define SKY_POLICY_F_ICMP 0x08	     /* icmp_type/icmp_code valid */
#define SKY_POLICY_F_ALL                                                                           \
	(SKY_POLICY_F_FRAG | SKY_POLICY_F_FRAG_FIRST | SKY_POLICY_F_PORTS | SKY_POLICY_F_ICMP)

/* ctx->quota_state (the subscriber's fair-use state, set by the control plane; the same
 * numbers as enum sky_quota_state, asserted below) */
#define SKY_POLICY_QUOTA_NONE 0	     /* no allowance (or not evaluated yet) */
#define SKY_POLICY_QUOTA_UNDER 1     /* within the allowance */
#define SKY_POLICY_QUOTA_OVER 2	     /* over the allowance */
#define SKY_POLICY_QUOTA_THROTTLED 3 /* over and throttled */

/* ctx->remote_flags (geolocation flags of the remote address) */
#define SKY_POLICY_GEO_ANONYMOUS_PROXY 0x01
#define SKY_POLICY_GEO_SATELLITE 0x02
#define SKY_POLICY_GEO_ANYCAST 0x04
#define SKY_POLICY_GEO_DROP 0x08

/** What a policy sees of one packet. Read-only; built by the gateway per packet. */
struct sky_policy_ctx {
	uint32_t abi;		 /* SKY_POLICY_ABI_VERSION */
	uint8_t dir;		 /* SKY_POLICY_DIR_* */
	uint8_t family;		 /* 4 or 6 */
	uint8_t proto;		 /* L4 protocol number (after IPv6 extension headers) */
	uint8_t dscp;		 /* 6-bit DSCP */
	uint32_t sub_id;	 /* operator's subscriber id, 0 = unknown subscriber */
	uint16_t sub_country;	 /* terminal's country (from the OSS), 0 = unknown */
	uint16_t remote_country; /* geolocation of the remote address, 0 = unknown */
	uint16_t beam;		 /* beam index */
	uint16_t plan;		 /* plan index */
	uint16_t realm;		 /* realm (outer VLAN) of the subscriber, 0 = none */
	uint8_t cls;		 /* class chosen by the classifier (0 = highest priority) */
	uint8_t remote_flags;	 /* SKY_POLICY_GEO_* */
	uint16_t sport;		 /* host order, valid with SKY_POLICY_F_PORTS */
	uint16_t dport;
	uint32_t len;  /* frame length in bytes */
	uint8_t flags; /* SKY_POLICY_F_* */
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint8_t pad0;
	uint16_t ip_len; /* IP total length (IPv6: 40 + payload length) */
	uint16_t pad1;
	union {
		uint8_t src[16]; /* source address, network order */
		uint32_t src4;	 /* IPv4 source (family 4) */
		uint32_t src6[4];
	};
	union {
		uint8_t dst[16];
		uint32_t dst4;
		uint32_t dst6[4];
	};
	/* --- ABI 2 --- */
	uint8_t zone;	     /* terminal's zone id (config `zones`, 1..255), 0 = none */
	uint8_t quota_state; /* SKY_POLICY_QUOTA_*: the subscriber's fair-use state */
	uint16_t pad2;
};

/* the context an ABI 1 program sees: everything before zone */
#define SKY_POLICY_CTX_V1_SIZE 72

_Static_assert(sizeof(struct sky_policy_ctx) == 76, "sky_policy_ctx ABI changed");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, sub_id) == 8, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, sub_country) == 12, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, remote_country) == 14, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, beam) == 16, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, cls) == 22, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, sport) == 24, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, len) == 28, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, flags) == 32, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, ip_len) == 36, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, src) == 40, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, dst) == 56, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, zone) == SKY_POLICY_CTX_V1_SIZE,
	       "ABI 2 fields follow the ABI 1 context");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, quota_state) == 73, "ctx ABI");
_Static_assert(__builtin_offsetof(struct sky_policy_ctx, pad2) == 74, "ctx ABI");

/* --- verdicts: bits 0-7 code, bits 8-15 argument, the rest zero. 0 is a fault. --- */
#define SKY_POLICY_V_PASS 1
#define SKY_POLICY_V_DROP 2
#define SKY_POLICY_V_PASS_CLASS 3 /* argument: class index */
#define SKY_POLICY_V_PASS_DSCP 4  /* argument: DSCP 0..63 */

#define SKY_POLICY_PASS ((uint64_t)SKY_POLICY_V_PASS)
#define SKY_POLICY_DROP ((uint64_t)SKY_POLICY_V_DROP)
#define SKY_POLICY_PASS_CLASS(c) ((uint64_t)SKY_POLICY_V_PASS_CLASS | ((uint64_t)((c)&0xff) << 8))
#define SKY_POLICY_PASS_DSCP(d) ((uint64_t)SKY_POLICY_V_PASS_DSCP | ((uint64_t)((d)&0x3f) << 8))
#define SKY_POLICY_VERDICT_CODE(v) ((unsigned int)((v)&0xff))
#define SKY_POLICY_VERDICT_ARG(v) ((unsigned int)(((v) >> 8) & 0xff))

/* --- country codes --- */
#define SKY_CC(a, b) ((uint16_t)(((unsigned int)(a) << 8) | (unsigned int)(b)))
/** A u16 map key or value holding a country code (shown as "DE" by `map show`). */
typedef uint16_t sky_cc_t;
/** A map value holding a verdict (shown and written as pass, drop, class:NAME, dscp:N). */
typedef uint32_t sky_verdict_t;
/** A (subscriber country, remote country) key (shown and written as "RU:KP"). */
struct sky_cc_pair {
	uint16_t sub;
	uint16_t remote;
};

/* --- maps ---
 * Map types are numbered as the kernel's, so libbpf reads them unchanged. What a lookup
 * costs (JIT, this kind of VM): a hash with a 1- or 2-byte key (a direct table: country
 * codes) or an array is inlined into the program by the loader, a few cycles; a hash with
 * a 3..8-byte key is an open-addressing table behind a helper, ~10-20 cycles; longer keys
 * use rte_hash; an LPM probes one hash table per distinct prefix length in the map.
 * Entries change at runtime (`map update/delete`) while the program runs; a map keeps its
 * entries across `policy load` of a program with a map of the same name and spec. */
#define SKY_MAP_HASH 1	/* any key size; 1- and 2-byte keys are direct-indexed tables */
#define SKY_MAP_ARRAY 2 /* key uint32_t index < max_entries */
#define SKY_MAP_LPM 11	/* key struct sky_lpm4_key (IPv4) or sky_lpm6_key (IPv6) */

/** LPM keys: prefix length in bits, then the address (network order). */
struct sky_lpm4_key {
	uint32_t prefixlen; /* 0..32 */
	uint8_t addr[4];
};
struct sky_lpm6_key {
	uint32_t prefixlen; /* 0..128 */
	uint8_t addr[16];
};
_Static_assert(sizeof(struct sky_lpm4_key) == 8, "lpm4 key ABI");
_Static_assert(sizeof(struct sky_lpm6_key) == 20, "lpm6 key ABI");

#define SKY_MAP_MAX_KEY 64
#define SKY_MAP_MAX_VALUE 256
#define SKY_MAP_MAX_ENTRIES (1u << 22)
#define SKY_POLICY_MAX_MAPS 32 /* maps per program */
/* Work bound of the loader's checking. librte_bpf's validator walks every path of a
 * program from its entry without merging states, so its work is the number of (path,
 * instruction) visits: 20 independent if-branches already make 2^20 paths. The loader
 * counts them exactly first and refuses a program above this bound ("[budget]"), which
 * keeps any check or load under about a second (the validator does ~1 visit/us here);
 * like the kernel verifier's limit of 1M instructions. Typical policies need < 1000. */
#define SKY_POLICY_MAX_VISITS 500000u
/* Largest policy object file read (bytes): files are read whole into memory first. */
#define SKY_POLICY_MAX_FILE (16u << 20)

#ifdef __bpf__

#ifndef SEC
#define SEC(name) __attribute__((section(name), used))
#endif
#ifndef __uint
#define __uint(name, val) int(*name)[val]
#endif
#ifndef __type
#define __type(name, val) __typeof__(val) *name
#endif
#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/*
 * Map definitions, e.g.
 *   SKY_MAP_HASH_DEF(blocked, sky_cc_t, uint8_t, 256);
 * expands to the libbpf form
 *   struct { __uint(type, SKY_MAP_HASH); __type(key, sky_cc_t); __type(value, uint8_t);
 *            __uint(max_entries, 256); } blocked SEC(".maps");
 */
#define SKY_MAP_DEF(map_type, name, key_t, value_t, n)                                             \
	struct {                                                                                   \
		__uint(type, map_type);                                                            \
		__type(key, key_t);                                                                \
		__type(value, value_t);                                                            \
		__uint(max_entries, n);                                                            \
	} name SEC(".maps")
#define SKY_MAP_HASH_DEF(name, key_t, value_t, n) SKY_MAP_DEF(SKY_MAP_HASH, name, key_t, value_t, n)
#define SKY_MAP_ARRAY_DEF(name, value_t, n) SKY_MAP_DEF(SKY_MAP_ARRAY, name, uint32_t, value_t, n)
#define SKY_MAP_LPM4_DEF(name, value_t, n)                                                         \
	SKY_MAP_DEF(SKY_MAP_LPM, name, struct sky_lpm4_key, value_t, n)
#define SKY_MAP_LPM6_DEF(name, value_t, n)                                                         \
	SKY_MAP_DEF(SKY_MAP_LPM, name, struct sky_lpm6_key, value_t, n)

/*
 * Helpers (resolved by the gateway's loader, never by a kernel). `map` must be the
 * address of a map symbol of the helper's type; `key` a pointer to key-sized bytes on
 * the stack. Each returns a pointer to the value or NULL: check it before use.
 */
extern void *sky_hash_lookup(void *map, const void *key) __ksym;
extern void *sky_array_lookup(void *map, const uint32_t *index) __ksym;
extern void *sky_lpm4_lookup(void *map, const struct sky_lpm4_key *key) __ksym;
extern void *sky_lpm6_lookup(void *map, const struct sky_lpm6_key *key) __ksym;
/** Any map type (the loader binds the right lookup for the map given). */
extern void *sky_map_lookup(void *map, const void *key) __ksym;

/**
 * Declare the program: SKY_POLICY(name) { ... return SKY_POLICY_PASS; }
 * It also records the ABI version the program was built against (section .skygate.abi);
 * the loader refuses a program built against a version it does not run
 * (SKY_POLICY_ABI_MIN..SKY_POLICY_ABI_VERSION).
 */
#define SKY_POLICY(name)                                                                           \
	const uint32_t sky_policy_abi SEC(".skygate.abi") = SKY_POLICY_ABI_VERSION;                \
	SEC("policy") uint64_t name(const struct sky_policy_ctx *ctx)

#define SKY_POLICY_INLINE static __always_inline

#else /* gateway side */
#define SKY_POLICY_INLINE static inline
#endif

/* --- conveniences for authors (also usable by the gateway) --- */

/** Is the packet upstream (terminal -> internet)? */
SKY_POLICY_INLINE int
sky_policy_is_up(const struct sky_policy_ctx *ctx)
{
	return ctx->dir == SKY_POLICY_DIR_UP;
}

/** Address of the subscriber (terminal) side. */
SKY_POLICY_INLINE const uint8_t *
sky_policy_sub_addr(const struct sky_policy_ctx *ctx)
{
	return ctx->dir == SKY_POLICY_DIR_UP ? ctx->src : ctx->dst;
}

/** Address of the remote (internet) side. */
SKY_POLICY_INLINE const uint8_t *
sky_policy_remote_addr(const struct sky_policy_ctx *ctx)
{
	return ctx->dir == SKY_POLICY_DIR_UP ? ctx->dst : ctx->src;
}

/** Fill a /32 LPM key with the remote IPv4 address. */
SKY_POLICY_INLINE void
sky_policy_remote_lpm4(const struct sky_policy_ctx *ctx, struct sky_lpm4_key *k)
{
	uint32_t a = ctx->dir == SKY_POLICY_DIR_UP ? ctx->dst4 : ctx->src4;

	k->prefixlen = 32;
	__builtin_memcpy(k->addr, &a, 4);
}

/** Fill a /128 LPM key with the remote IPv6 address. */
SKY_POLICY_INLINE void
sky_policy_remote_lpm6(const struct sky_policy_ctx *ctx, struct sky_lpm6_key *k)
{
	const uint32_t *a = ctx->dir == SKY_POLICY_DIR_UP ? ctx->dst6 : ctx->src6;

	k->prefixlen = 128;
	__builtin_memcpy(k->addr, a, 16);
}

#ifndef __bpf__
/* ======================= gateway API (control path unless noted) ======================= */
#include <stdbool.h>

#include "skygate/config.h"
#include "skygate/meta.h"
#include "skygate/subscriber.h" /* enum sky_quota_state */

/* The context is filled from struct sky_meta by copying: direction, flags and geo flags
 * are the same numbers on both sides, and a metadata flag the ABI does not know (such as
 * SKY_MF_DSCP_SET) is never shown to a program. */
_Static_assert(SKY_POLICY_DIR_UP == SKY_DIR_UP && SKY_POLICY_DIR_DOWN == SKY_DIR_DOWN,
	       "policy direction != metadata direction");
_Static_assert(SKY_POLICY_F_FRAG == SKY_MF_FRAG, "SKY_POLICY_F_FRAG != SKY_MF_FRAG");
_Static_assert(SKY_POLICY_F_FRAG_FIRST == SKY_MF_FRAG_FIRST,
	       "SKY_POLICY_F_FRAG_FIRST != SKY_MF_FRAG_FIRST");
_Static_assert(SKY_POLICY_F_PORTS == SKY_MF_PORTS, "SKY_POLICY_F_PORTS != SKY_MF_PORTS");
_Static_assert(SKY_POLICY_F_ICMP == SKY_MF_ICMP, "SKY_POLICY_F_ICMP != SKY_MF_ICMP");
_Static_assert((SKY_POLICY_F_ALL & SKY_MF_DSCP_SET) == 0,
	       "SKY_MF_DSCP_SET must stay out of the policy ABI's flags");
_Static_assert(SKY_POLICY_QUOTA_NONE == SKY_QUOTA_NONE &&
		       SKY_POLICY_QUOTA_UNDER == SKY_QUOTA_UNDER &&
		       SKY_POLICY_QUOTA_OVER == SKY_QUOTA_OVER &&
		       SKY_POLICY_QUOTA_THROTTLED == SKY_QUOTA_THROTTLED,
	       "SKY_POLICY_QUOTA_* != enum sky_quota_state");
_Static_assert(SKY_POLICY_GEO_ANONYMOUS_PROXY == SKY_GEO_F_ANONYMOUS_PROXY &&
		       SKY_POLICY_GEO_SATELLITE == SKY_GEO_F_SATELLITE &&
		       SKY_POLICY_GEO_ANYCAST == SKY_GEO_F_ANYCAST &&
		       SKY_POLICY_GEO_DROP == SKY_GEO_F_DROP,
	       "SKY_POLICY_GEO_* != SKY_GEO_F_*");

struct sky_subs;
struct sky_policy;

/**
 * Create the policy hook from the `policy` section of the config:
 *   policy: { object: PATH, on_fault: pass|drop, jit: true|false,
 *             maps: { NAME: { KEY: VALUE, ... } } }
 * The section is optional (no program: every packet passes). Loads and checks the
 * object; map entries are applied after the load. subs (may be NULL) gives the number of
 * classes a PASS_CLASS verdict may name. Returns NULL with err ("FILE:LINE: KEY: reason",
 * the loader's rule and instruction index for a refused program).
 */
struct sky_policy *sky_policy_create(const struct sky_cfg *cfg, const struct sky_subs *subs,
				     struct sky_cfg_err *err);
/** Register commands (policy load|show|unload, map list|show|update|delete), telemetry
 *  (/skygate/policy, /skygate/policy/maps) and Prometheus metrics. Returns 0 or -errno. */
int sky_policy_register(struct sky_policy *p);
/** Destroy (after workers stopped, or after sky_rcu_sync()). */
void sky_policy_destroy(struct sky_policy *p);

/**
 * Data path: run the loaded program over every live packet (sky_meta_live) of the burst.
 * DROP -> sky_meta_drop(SKY_DROP_POLICY); PASS_CLASS -> meta->cls; PASS_DSCP -> meta->dscp
 * and SKY_MF_DSCP_SET (the packet itself is rewritten by the worker's output step,
 * sky_parse_output_burst); 0/unknown -> fault, on_fault applied
 * (drop: SKY_DROP_POLICY_FAULT). No program: nothing happens. worker < SKY_MAX_WORKERS.
 * Reads the program pointer once per burst; the caller reports RCU quiescence between
 * bursts.
 */
void sky_policy_run_burst(struct sky_policy *p, unsigned int worker, struct sky_meta *meta,
			  uint16_t n);

/**
 * Load a program (control path), as `policy load` does. The file is read once, whole, into
 * memory (a regular file of at most SKY_POLICY_MAX_FILE bytes, within SKY_FILE_TIMEOUT_MS)
 * and checked, hashed and loaded from there; what happens to the file afterwards changes
 * nothing. 0, or -errno with a reason naming the file, or "refused at instruction N
 * [rule]: ..." (rules include [leak], [return] and [budget]: SKY_POLICY_MAX_VISITS).
 */
int sky_policy_load_file(struct sky_policy *p, const char *path, char *err, size_t errlen);
/** Unload the program: every packet passes. */
void sky_policy_unload(struct sky_policy *p);
/** Map entries in readable form (as `map update`/`map delete`). 0 or -errno + reason. */
int sky_policy_map_update(struct sky_policy *p, const char *map, const char *key, const char *value,
			  char *err, size_t errlen);
int sky_policy_map_delete(struct sky_policy *p, const char *map, const char *key, char *err,
			  size_t errlen);

/** Counters summed over workers since the program was loaded (control path). */
struct sky_policy_stats {
	uint64_t runs;
	uint64_t pass, drop, pass_class, pass_dscp;
	uint64_t faults;
	uint64_t cycles;     /* TSC cycles of the timed bursts (one in SKY_POLICY_TIMED_EVERY) */
	uint64_t timed_runs; /* runs in those bursts: cycles / timed_runs = cycles per packet */
};
#define SKY_POLICY_TIMED_EVERY 64 /* rdtsc costs ~100+ cycles on VMs: time 1 burst in 64 */
void sky_policy_stats(const struct sky_policy *p, struct sky_policy_stats *st);
#endif /* !__bpf__ */

#endif /* SKYGATE_POLICY_H */
