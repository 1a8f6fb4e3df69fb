/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * walled_garden: suspended subscribers reach only allow-listed prefixes.
 *
 * A subscriber whose id is in `suspended` (value != 0) may exchange packets only with
 * remote addresses inside a prefix of garden_v4 / garden_v6 (the account portal, DNS
 * resolvers, the payment provider); everything else of theirs is dropped, both
 * directions. Other subscribers are not affected. Unknown subscribers (id 0) pass: the
 * `subscribers: unknown:` setting decides about them.
 *
 *   skygatectl map update suspended 1042 1
 *   skygatectl map update garden_v4 192.0.2.0/24 1
 *   skygatectl map update garden_v6 2001:db8:53::/48 1
 */
#include "skygate/policy.h"

SKY_MAP_HASH_DEF(suspended, uint32_t, uint8_t, 65536);
SKY_MAP_LPM4_DEF(garden_v4, uint8_t, 1024);
SKY_MAP_LPM6_DEF(garden_v6, uint8_t, 1024);

SKY_POLICY(walled_garden)
{
	uint32_t id = ctx->sub_id;
	uint8_t *s, *g;

	if (id == 0)
		return SKY_POLICY_PASS;
	s = sky_hash_lookup(&suspended, &id);
	if (s == NULL || *s == 0)
		return SKY_POLICY_PASS;
	if (ctx->family == 4) {
		struct sky_lpm4_key k;

		sky_policy_remote_lpm4(ctx, &k);
		g = sky_lpm4_lookup(&garden_v4, &k);
	} else {
		struct sky_lpm6_key k;

		sky_policy_remote_lpm6(ctx, &k);
		g = sky_lpm6_lookup(&garden_v6, &k);
	}
	if (g != NULL)
		return SKY_POLICY_PASS;
	return SKY_POLICY_DROP;
}
