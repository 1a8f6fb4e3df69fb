/* REFUSED: claims policy ABI 0 (there is none: versions start at 1). */
#include "skygate/policy.h"
const uint32_t sky_policy_abi SEC(".skygate.abi") = 0;
SEC("policy") uint64_t abi_zero(const struct sky_policy_ctx *ctx)
{
	return SKY_POLICY_PASS;
}
