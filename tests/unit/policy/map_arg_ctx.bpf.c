/* UNSAFE: passes the context as the map argument. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(blocked, sky_cc_t, uint8_t, 16);
SKY_POLICY(map_arg_ctx)
{
	sky_cc_t cc = ctx->remote_country;
	uint8_t *v = sky_hash_lookup((void *)ctx, &cc);

	if (v == NULL)
		return sky_hash_lookup(&blocked, &cc) ? SKY_POLICY_DROP : SKY_POLICY_PASS;
	return *v ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
