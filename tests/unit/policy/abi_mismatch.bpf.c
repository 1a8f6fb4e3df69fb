/* REFUSED: claims to be built against another policy ABI (as an old object would). */
#include "skygate/policy.h"
const uint32_t sky_policy_abi SEC(".skygate.abi") = SKY_POLICY_ABI_VERSION + 98;
SEC("policy") uint64_t abi_mismatch(const struct sky_policy_ctx *ctx)
{
	return SKY_POLICY_PASS;
}
