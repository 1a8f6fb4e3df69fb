/* UNSAFE: dereferences a lookup result without a NULL check (crashes on a miss). */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(blocked, sky_cc_t, uint8_t, 16);
SKY_POLICY(no_null_check)
{
	sky_cc_t cc = ctx->remote_country;
	uint8_t *v = sky_hash_lookup(&blocked, &cc);

	return *v ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
