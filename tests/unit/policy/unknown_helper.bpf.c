/* UNSAFE: calls a helper the gateway does not provide. */
#include "skygate/policy.h"
extern uint64_t sky_bogus_helper(const void *p) __ksym;
SKY_POLICY(unknown_helper)
{
	return sky_bogus_helper(ctx) ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
