/* SAFE: first of a swap pair; `shared` has the same spec in swap_b, `changes` not. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(shared, sky_cc_t, uint8_t, 256);
SKY_MAP_HASH_DEF(changes, sky_cc_t, uint8_t, 256);
SKY_POLICY(swap_a)
{
	sky_cc_t cc = ctx->remote_country;
	uint8_t *v = sky_hash_lookup(&shared, &cc);

	if (v != NULL && *v)
		return SKY_POLICY_DROP;
	v = sky_hash_lookup(&changes, &cc);
	if (v != NULL && *v)
		return SKY_POLICY_DROP;
	return SKY_POLICY_PASS;
}
