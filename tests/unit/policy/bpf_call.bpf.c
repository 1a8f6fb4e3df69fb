/* UNSAFE for librte_bpf: a BPF-to-BPF call (a function clang did not inline). */
#include "skygate/policy.h"
__attribute__((noinline)) uint64_t
judge(uint32_t port)
{
	return port == 23 ? SKY_POLICY_DROP : SKY_POLICY_PASS;
}
SKY_POLICY(bpf_call)
{
	return judge(ctx->dport);
}
