/* UNSAFE (leak): stores the ctx pointer into a map value, where `map show` would print a
 * gateway address. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(seen, sky_cc_t, uint64_t, 16);
SKY_POLICY(leak_ctx_value)
{
	sky_cc_t cc = ctx->remote_country;
	uint64_t *v = sky_hash_lookup(&seen, &cc);

	if (v != NULL)
		*v = (uint64_t)ctx;
	return SKY_POLICY_PASS;
}
