/* SAFE, near the budget: an array lookup, then 14 independent if-branches. The checker's
 * count is under SKY_POLICY_MAX_VISITS; inlining the lookup (policy_rewrite.c) adds a
 * branch before them all and doubles librte_bpf's work past the budget, so the program is
 * loaded without inlining. */
#include "skygate/policy.h"
#include "paths.h"
SKY_MAP_ARRAY_DEF(bonus, uint32_t, 4);
SKY_POLICY(paths_inline)
{
	uint32_t i = ctx->dscp & 3;
	uint32_t *b = sky_array_lookup(&bonus, &i);
	uint64_t v = b != NULL ? *b : 0;

	SKY_TEST_PATHS_14(ctx, v);
	return v > 100 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
