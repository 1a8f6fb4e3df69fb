/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * country_block: per-country blocking, both ways.
 *
 * Drops every packet of a terminal located in a country listed in
 * blocked_terminal_countries (the terminal's country from the OSS, not IP geolocation),
 * and every packet to or from a remote address geolocated in a country listed in
 * blocked_remote_countries, in both directions. A listed country with value 0 is not
 * blocked (so an entry can be switched off without deleting it).
 *
 *   skygatectl map update blocked_terminal_countries RU 1
 *   skygatectl map update blocked_remote_countries KP 1
 */
#include "skygate/policy.h"

SKY_MAP_HASH_DEF(blocked_terminal_countries, sky_cc_t, uint8_t, 256);
SKY_MAP_HASH_DEF(blocked_remote_countries, sky_cc_t, uint8_t, 256);

SKY_POLICY(country_block)
{
	sky_cc_t cc = ctx->sub_country;
	uint8_t *v = sky_hash_lookup(&blocked_terminal_countries, &cc);

	if (v != NULL && *v != 0)
		return SKY_POLICY_DROP;
	cc = ctx->remote_country;
	v = sky_hash_lookup(&blocked_remote_countries, &cc);
	if (v != NULL && *v != 0)
		return SKY_POLICY_DROP;
	return SKY_POLICY_PASS;
}
