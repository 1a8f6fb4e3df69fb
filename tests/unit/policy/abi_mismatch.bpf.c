/* REFUSED: claims to be built against a policy ABI the gateway does not run (99). */
#include "skygate/policy.h"
const uint32_t sky_policy_abi SEC(".skygate.abi") = 99;
SEC("policy") uint64_t abi_mismatch(const struct sky_policy_ctx *ctx)
{
	return SKY_POLICY_PASS;
}
