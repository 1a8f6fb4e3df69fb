/* UNSAFE for librte_bpf: built with -mcpu=v3, clang emits 32-bit jumps (JMP32). */
#include "skygate/policy.h"
SKY_POLICY(jmp32)
{
	uint32_t len = ctx->len;

	if (len > 1000)
		return SKY_POLICY_DROP;
	if (len + ctx->sport < 60)
		return SKY_POLICY_PASS_CLASS(1);
	return SKY_POLICY_PASS;
}
