/* REFUSED: an ABI 1 program that reads ctx->zone, which its ABI does not have (it would
 * have read past the end of the ABI 1 context). */
#include "skygate/policy.h"
const uint32_t sky_policy_abi SEC(".skygate.abi") = 1;
SEC("policy") uint64_t abi_v1_zone(const struct sky_policy_ctx *ctx)
{
	return ((const volatile struct sky_policy_ctx *)ctx)->zone == 2 ? SKY_POLICY_DROP
									: SKY_POLICY_PASS;
}
