/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * classify internals, private to lib/classify. Who calls whom (one way):
 *
 *   classify_ctl.c  commands (class reload, class list)
 *      |
 *   classify.c      the owner: create, reload (compile aside, RCU swap), destroy; rules
 *      |            compiled into tables
 *   classify_cfg.c  the `classes:` section -> struct sky_class_set (names + rules)
 *
 *   classify_dp.c   the data path (sky_classify_burst): reads the published tables only.
 *
 * Tables: rules are numbered in class order (at most 63), so a packet's class is the
 * class of the lowest rule whose every field accepts it:
 *   candidates = dscp[d] & proto[p] & (port_any | port_eq[id[sport]] | port_eq[id[dport]])
 *                & (pfx_any | intervals(remote address))
 * dscp/proto: direct tables (rules without that field have their bit set everywhere);
 * ports: 65536-byte port -> equivalence-class table plus <= 256 bitmaps; prefixes: the
 * prefixes of all rules cut into disjoint address intervals, binary-searched (v4 on u32,
 * v6 on unsigned __int128). No candidate: the default class (bit 63, the sentinel).
 * Why not rte_acl: its build is far heavier for <= 63 rules and its run-time needs a
 * 5-tuple layout per packet; this costs a few table loads per packet.
 */
#ifndef SKY_CLASSIFY_PRIV_H
#define SKY_CLASSIFY_PRIV_H

#include <limits.h>
#include <stdint.h>

#include <rte_common.h>

#include "skygate/classify.h"

#define CLS_MAX_RULES 63 /* bit 63 of a rule bitmap is the "no rule" sentinel */

typedef unsigned __int128 cls_u128;

struct cls_port_range {
	uint16_t lo, hi;
};

struct cls_rule_pfx {
	uint8_t family; /* 4 or 6 */
	uint8_t len;
	uint8_t a[16];
};

struct cls_rule {
	uint8_t cls;
	uint8_t has_dscp, has_proto, has_ports, has_pfx;
	uint64_t dscp_mask;   /* bit d: DSCP d */
	uint64_t proto_bm[4]; /* bit p: protocol p */
	unsigned int n_ports;
	struct cls_port_range *ports; /* malloc */
	unsigned int n_pfx;
	struct cls_rule_pfx *pfx; /* malloc */
	unsigned int line;
};

/* struct sky_class_set.rules */
struct sky_class_rules {
	unsigned int n;
	struct cls_rule r[CLS_MAX_RULES]; /* class order, so rule order = priority */
};

/* Compiled rules. Immutable once published. */
struct cls_tables {
	uint64_t dscp[64];
	uint64_t proto[256];
	uint64_t port_any;    /* rules without a ports field */
	uint64_t pfx_any;     /* rules without a prefixes field */
	uint8_t rule_cls[64]; /* [63]: the default class (sentinel bit) */
	uint8_t default_cls;
	uint32_t n4, n6; /* intervals */
	uint32_t *lo4;	 /* [n4] interval starts, host order, lo4[0] = 0 */
	uint64_t *bm4;
	cls_u128 *lo6;
	uint64_t *bm6;
	uint64_t port_eq[256];
	uint8_t port_id[65536];
} __rte_cache_aligned;

struct sky_classifier {
	/* --- data path --- */
	struct cls_tables *t; /* published pointer, RCU */
	/* --- control path only --- */
	unsigned int n_classes;
	struct sky_class cls[SKY_MAX_CLASSES];
	unsigned int n_rules;
	char cfg_path[PATH_MAX];
};

#endif /* SKY_CLASSIFY_PRIV_H */
