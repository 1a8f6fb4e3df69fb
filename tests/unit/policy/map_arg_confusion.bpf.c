/* UNSAFE: passes an array map to the hash lookup helper. */
#include "skygate/policy.h"
SKY_MAP_ARRAY_DEF(table, uint64_t, 4);
SKY_POLICY(map_arg_confusion)
{
	uint32_t k = ctx->sport;
	uint64_t *v = sky_hash_lookup(&table, &k);

	if (v == NULL)
		return SKY_POLICY_PASS;
	return *v;
}
