/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * country_matrix: a verdict per (terminal country, remote country) pair.
 *
 * `matrix` maps "SUB:REMOTE" country pairs to a verdict code: 1 pass, 2 drop, or
 * 3 + (class << 8) / 4 + (dscp << 8) (pass with a class / a DSCP). A pair with no entry
 * falls back to "SUB:--"-style defaults in `sub_default` (per terminal country), then to
 * pass. Regulators' geofences ("terminals in AA may not reach BB") are one entry each.
 *
 *   skygatectl map update matrix UA:RU drop
 *   skygatectl map update sub_default IR drop
 */
#include "skygate/policy.h"

SKY_MAP_HASH_DEF(matrix, struct sky_cc_pair, uint32_t, 4096);
SKY_MAP_HASH_DEF(sub_default, sky_cc_t, uint32_t, 256);

SKY_POLICY(country_matrix)
{
	struct sky_cc_pair k = {.sub = ctx->sub_country, .remote = ctx->remote_country};
	sky_cc_t cc = ctx->sub_country;
	uint32_t *v = sky_hash_lookup(&matrix, &k);

	if (v != NULL)
		return *v;
	v = sky_hash_lookup(&sub_default, &cc);
	if (v != NULL)
		return *v;
	return SKY_POLICY_PASS;
}
