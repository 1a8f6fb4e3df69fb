/* SAFE: 15 independent if-branches, 2^15 paths: librte_bpf's validator work is
 * more than half the budget (SKY_POLICY_MAX_VISITS) and under it; accepted. */
#include "skygate/policy.h"
SKY_POLICY(paths_near)
{
	uint64_t v = 0;

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
	if (ctx->len == 15)
		v += 64;
	return v > 100 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
