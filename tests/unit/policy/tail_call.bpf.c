/* UNSAFE: a kernel tail call (helper #12). */
#include "skygate/policy.h"
static long (*const bpf_tail_call)(const void *ctx, void *map, uint32_t index) = (void *)12;
SKY_MAP_ARRAY_DEF(progs, uint32_t, 4);
SKY_POLICY(tail_call)
{
	bpf_tail_call(ctx, &progs, 0);
	return SKY_POLICY_PASS;
}
