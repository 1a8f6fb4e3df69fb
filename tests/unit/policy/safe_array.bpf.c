/* SAFE: an array of classes indexed by DSCP (bounded by a mask); copies of the lookup
 * result and a NULL check on one of them. */
#include "skygate/policy.h"
SKY_MAP_ARRAY_DEF(dscp_class, uint8_t, 64);
SKY_POLICY(safe_array)
{
	uint32_t i = ctx->dscp & 63;
	uint8_t *c = sky_array_lookup(&dscp_class, &i);

	if (c == NULL || *c == 0)
		return SKY_POLICY_PASS;
	return SKY_POLICY_PASS_CLASS(*c - 1);
}
