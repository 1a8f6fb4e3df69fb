/* UNSAFE: a loop clang cannot unroll (its trip count depends on the packet). */
#include "skygate/policy.h"
SKY_POLICY(unbounded_loop)
{
	uint32_t x = ctx->len, n = 0;

	while (x > 1) {
		x = (x & 1) ? 3 * x + 1 : x >> 1;
		n++;
	}
	return n & 1 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
