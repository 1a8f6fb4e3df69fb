/* SAFE: second of a swap pair: `shared` kept, `changes` now has u32 values. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(shared, sky_cc_t, uint8_t, 256);
SKY_MAP_HASH_DEF(changes, sky_cc_t, uint32_t, 256);
SKY_POLICY(swap_b)
{
	sky_cc_t cc = ctx->remote_country;
	uint8_t *v = sky_hash_lookup(&shared, &cc);
	uint32_t *w;

	if (v != NULL && *v)
		return SKY_POLICY_DROP;
	w = sky_hash_lookup(&changes, &cc);
	if (w != NULL && *w)
		return SKY_POLICY_PASS_CLASS(1);
	return SKY_POLICY_PASS;
}
