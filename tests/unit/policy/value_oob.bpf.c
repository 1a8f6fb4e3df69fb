/* UNSAFE: reads 4 bytes at offset 4 of a 1-byte map value. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(blocked, sky_cc_t, uint8_t, 16);
SKY_POLICY(value_oob)
{
	sky_cc_t cc = ctx->remote_country;
	uint8_t *v = sky_hash_lookup(&blocked, &cc);

	if (v == NULL)
		return SKY_POLICY_PASS;
	return ((volatile uint32_t *)v)[1] ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
