/* UNSAFE (leak): returns a verdict computed from the ctx pointer's bits (the verdict counters
 * would reveal them). */
#include "skygate/policy.h"
SKY_POLICY(leak_return_arith)
{
	return ((uint64_t)ctx >> 12 & 1) ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
