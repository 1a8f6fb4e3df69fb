/* SAFE, near the budget: an array lookup, then 14 independent if-branches. The checker's
 * count is under SKY_POLICY_MAX_VISITS; inlining the lookup (policy_rewrite.c) adds a
 * branch before them all and doubles librte_bpf's work past the budget, so the program is
 * loaded without inlining. */
#include "skygate/policy.h"
SKY_MAP_ARRAY_DEF(bonus, uint32_t, 4);
SKY_POLICY(paths_inline)
{
	uint32_t i = ctx->dscp & 3;
	uint32_t *b = sky_array_lookup(&bonus, &i);
	uint64_t v = b != NULL ? *b : 0;

	if (ctx->dir == 1)
		v += 1;
	if (ctx->family == 2)
		v += 2;
	if (ctx->proto == 3)
		v += 4;
	if (ctx->dscp == 4)
		v += 8;
	if (ctx->sub_id == 5)
		v += 16;
	if (ctx->sub_country == 6)
		v += 32;
	if (ctx->remote_country == 7)
		v += 64;
	if (ctx->beam == 8)
		v += 128;
	if (ctx->plan == 9)
		v += 1;
	if (ctx->realm == 10)
		v += 2;
	if (ctx->cls == 11)
		v += 4;
	if (ctx->remote_flags == 12)
		v += 8;
	if (ctx->sport == 13)
		v += 16;
	if (ctx->dport == 14)
		v += 32;
	return v > 100 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
