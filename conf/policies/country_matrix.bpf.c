/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * country_matrix: a verdict per (terminal country, remote country) pair.
 *
 * `matrix` maps "SUB:REMOTE" country pairs to a verdict: pass, drop, class:NAME (pass in
 * that traffic class) or dscp:N (pass, DSCP rewritten). A pair with no entry falls back to
 * the terminal country's default in `sub_default`, then to pass. A regulator's geofence
 * ("terminals in AA may not reach BB") is one entry.
 *
 *   skygatectl map update matrix UA:RU drop
 *   skygatectl map update matrix RU:UA class:bulk
 *   skygatectl map update sub_default IR drop
 */
#include "skygate/policy.h"

SKY_MAP_HASH_DEF(matrix, struct sky_cc_pair, sky_verdict_t, 4096);
SKY_MAP_HASH_DEF(sub_default, sky_cc_t, sky_verdict_t, 256);

SKY_POLICY(country_matrix)
{
	struct sky_cc_pair k = {.sub = ctx->sub_country, .remote = ctx->remote_country};
	sky_cc_t cc = ctx->sub_country;
	sky_verdict_t *v = sky_hash_lookup(&matrix, &k);

	if (v != NULL)
		return *v;
	v = sky_hash_lookup(&sub_default, &cc);
	if (v != NULL)
		return *v;
	return SKY_POLICY_PASS;
}
