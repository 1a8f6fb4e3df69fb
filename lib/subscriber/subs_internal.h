/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Class rules as lib/subscriber/classes.c parses them, shared with lib/classify (which
 * compiles them). Not an installed API. The rest of lib/subscriber's internals are in
 * subscriber_priv.h; these declarations move to lib/classify with the class rule parser.
 */
#ifndef SKY_SUBS_INTERNAL_H
#define SKY_SUBS_INTERNAL_H

#include <stdint.h>

#include "skygate/config.h"
#include "skygate/subscriber.h"

/* --- classes and their rules (shared by subscriber and classify) --- */
#define SKY_MAX_RULES 63 /* bit 63 of a rule bitmap is the classifier's "no rule" sentinel */

struct sky_port_range {
	uint16_t lo, hi;
};

struct sky_rule_pfx {
	uint8_t family; /* 4 or 6 */
	uint8_t len;
	uint8_t a[16];
};

struct sky_rule {
	uint8_t cls;
	uint8_t has_dscp, has_proto, has_ports, has_pfx;
	uint64_t dscp_mask;   /* bit d: DSCP d */
	uint64_t proto_bm[4]; /* bit p: protocol p */
	unsigned int n_ports;
	struct sky_port_range *ports; /* malloc */
	unsigned int n_pfx;
	struct sky_rule_pfx *pfx; /* malloc */
	unsigned int line;
};

struct sky_class_set {
	unsigned int n_classes;
	struct sky_class cls[SKY_MAX_CLASSES];
	int default_cls;
	unsigned int n_rules;
	struct sky_rule rules[SKY_MAX_RULES]; /* class order, so rule order = priority */
};

/**
 * Parse and validate the `classes` section of cfg into out (absent section: one default
 * class "default"). Returns 0 or -1 with err filled ("FILE:LINE: PATH: reason").
 */
int sky_class_set_parse(const struct sky_cfg *cfg, struct sky_cfg_err *err,
			struct sky_class_set *out);
void sky_class_set_free(struct sky_class_set *cs);

#endif /* SKY_SUBS_INTERNAL_H */
