/* UNSAFE (cost): 32 independent if-branches on ctx fields, 2^32 paths. Our
 * checker merges states and is linear, but librte_bpf's validator walks every path: it
 * would run for hours. Refused [budget] at once. */
#include "skygate/policy.h"
#include "paths.h"
SKY_POLICY(paths_explode)
{
	uint64_t v = 0;

	SKY_TEST_PATHS_14(ctx, v);
	if (ctx->len == 15)
		v += 64;
	if (ctx->flags == 16)
		v += 128;
	if (ctx->icmp_type == 17)
		v += 1;
	if (ctx->icmp_code == 18)
		v += 2;
	if (ctx->ip_len == 19)
		v += 4;
	if (ctx->dir == 20)
		v += 8;
	if (ctx->family == 21)
		v += 16;
	if (ctx->proto == 22)
		v += 32;
	if (ctx->dscp == 23)
		v += 64;
	if (ctx->sub_id == 24)
		v += 128;
	if (ctx->sub_country == 25)
		v += 1;
	if (ctx->remote_country == 26)
		v += 2;
	if (ctx->beam == 27)
		v += 4;
	if (ctx->plan == 28)
		v += 8;
	if (ctx->realm == 29)
		v += 16;
	if (ctx->cls == 30)
		v += 32;
	if (ctx->remote_flags == 31)
		v += 64;
	if (ctx->sport == 32)
		v += 128;
	return v > 100 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
