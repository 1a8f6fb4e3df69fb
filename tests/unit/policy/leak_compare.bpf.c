/* UNSAFE (leak): branches on the value of a stack address. */
#include "skygate/policy.h"
SKY_POLICY(leak_compare)
{
	volatile uint8_t b = ctx->dscp;

	if ((uint64_t)&b > 0x7f0000000000ULL)
		return SKY_POLICY_DROP;
	return b ? SKY_POLICY_PASS : SKY_POLICY_DROP;
}
