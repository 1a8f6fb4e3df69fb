/* UNSAFE: the key points into the context, not to the stack. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(blocked, sky_cc_t, uint8_t, 16);
SKY_POLICY(key_not_stack)
{
	uint8_t *v = sky_hash_lookup(&blocked, &ctx->remote_country);

	if (v == NULL)
		return SKY_POLICY_PASS;
	return *v ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
