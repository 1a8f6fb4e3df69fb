/* UNSAFE: reads beyond the end of the context. */
#include "skygate/policy.h"
SKY_POLICY(ctx_oob)
{
	return ((const volatile uint8_t *)ctx)[80] ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
