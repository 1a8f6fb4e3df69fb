/* SAFE: 15 independent if-branches, 2^15 paths: librte_bpf's validator work is
 * more than half the budget (SKY_POLICY_MAX_VISITS) and under it; accepted. */
#include "skygate/policy.h"
#include "paths.h"
SKY_POLICY(paths_near)
{
	uint64_t v = 0;

	SKY_TEST_PATHS_14(ctx, v);
	if (ctx->len == 15)
		v += 64;
	return v > 100 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
