/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * quota_block_class: subscribers over their allowance lose some classes.
 *
 * Drops the packets of a class listed in over_quota_blocked_classes (value != 0), both
 * directions, for subscribers whose fair-use state is over the allowance or throttled
 * (ctx->quota_state, set by the quota engine). Subscribers under their allowance, or with
 * none, are not affected. Keys are class indexes in the order of `classes:` (0 = the
 * first, highest priority; `skygatectl class list`):
 *
 *   skygatectl map update over_quota_blocked_classes 2 1   # e.g. bulk, when it is third
 */
#include "skygate/policy.h"

SKY_MAP_HASH_DEF(over_quota_blocked_classes, uint8_t, uint8_t, 256);

SKY_POLICY(quota_block_class)
{
	uint8_t q = ctx->quota_state, cls;
	uint8_t *v;

	if (q != SKY_POLICY_QUOTA_OVER && q != SKY_POLICY_QUOTA_THROTTLED)
		return SKY_POLICY_PASS;
	cls = ctx->cls;
	v = sky_hash_lookup(&over_quota_blocked_classes, &cls);
	if (v != NULL && *v != 0)
		return SKY_POLICY_DROP;
	return SKY_POLICY_PASS;
}
