/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * remote_country_block: drops every packet to or from a remote address geolocated in a
 * country listed in blocked_remote_countries (value != 0), in both directions. The
 * terminal's own country plays no part. Remote addresses of unknown country pass.
 *
 *   skygatectl map update blocked_remote_countries KP 1
 */
#include "skygate/policy.h"

SKY_MAP_HASH_DEF(blocked_remote_countries, sky_cc_t, uint8_t, 256);

SKY_POLICY(remote_country_block)
{
	sky_cc_t cc = ctx->remote_country;
	uint8_t *v = sky_hash_lookup(&blocked_remote_countries, &cc);

	if (v != NULL && *v != 0)
		return SKY_POLICY_DROP;
	return SKY_POLICY_PASS;
}
