/* SAFE: an ABI 1 program (built before zone and quota_state existed): it reads only the
 * ABI 1 context, whose fields are where they were. Drops terminals of country DE with a
 * remote port 443 when the ports are valid, so the test can tell it ran. */
#include "skygate/policy.h"
const uint32_t sky_policy_abi SEC(".skygate.abi") = 1;
SEC("policy") uint64_t abi_v1(const struct sky_policy_ctx *ctx)
{
	if (ctx->sub_country == SKY_CC('D', 'E') && (ctx->flags & SKY_POLICY_F_PORTS) &&
	    (ctx->dport == 443 || ctx->sport == 443))
		return SKY_POLICY_DROP;
	return SKY_POLICY_PASS;
}
