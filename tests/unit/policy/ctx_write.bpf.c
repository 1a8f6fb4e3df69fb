/* UNSAFE: writes into the (read-only) context. */
#include "skygate/policy.h"
SKY_POLICY(ctx_write)
{
	((volatile struct sky_policy_ctx *)ctx)->cls = 3;
	return SKY_POLICY_PASS;
}
