/* SAFE: writes numbers (never addresses) into a map value and spills the lookup result to
 * the stack and back: counts bytes per remote country, drops above a threshold. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(bytes, sky_cc_t, uint64_t, 16);
SKY_POLICY(store_scalars)
{
	sky_cc_t cc = ctx->remote_country;
	uint64_t *volatile spilled;
	uint64_t *v = sky_hash_lookup(&bytes, &cc);

	spilled = v;
	v = spilled;
	if (v == NULL)
		return SKY_POLICY_PASS;
	*v = *v + ctx->len;
	return *v > 1000 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
