/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zone_block: geofencing finer than a country.
 *
 * Drops every packet, both directions, of a terminal whose zone (config `zones`, set per
 * subscriber by the CSV's zone column or `subscriber set ID zone=NAME`) is listed in
 * blocked_zones with a value other than 0. Zone ids are the positions in `zones:` (the
 * first zone is 1); key 0 is "no zone". The operator changes the list live:
 *
 *   skygatectl map update blocked_zones 2 1     # block zone 2
 *   skygatectl map update blocked_zones 2 0     # let it through again (entry kept)
 *   skygatectl map delete blocked_zones 2
 *
 * A terminal moved to another zone (`subscriber set ID zone=NAME`) is judged by its new
 * zone from the next packet on.
 */
#include "skygate/policy.h"

SKY_MAP_HASH_DEF(blocked_zones, uint8_t, uint8_t, 256);

SKY_POLICY(zone_block)
{
	uint8_t zone = ctx->zone;
	uint8_t *v = sky_hash_lookup(&blocked_zones, &zone);

	if (v != NULL && *v != 0)
		return SKY_POLICY_DROP;
	return SKY_POLICY_PASS;
}
