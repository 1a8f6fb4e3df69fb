/* SAFE: byte swap instructions (as ntohs/ntohl emit): drops telnet and SMB, class 1 for
 * 10.0.0.0/8 destinations. The swaps are written in asm so clang cannot fold them away. */
#include "skygate/policy.h"
SKY_POLICY(byteswap)
{
	uint64_t p = ctx->dport, a = ctx->dst4;

	__asm__ volatile("%0 = be16 %0" : "+r"(p)); /* to network order ... */
	__asm__ volatile("%0 = be16 %0" : "+r"(p)); /* ... and back */
	__asm__ volatile("%0 = be32 %0" : "+r"(a)); /* host order address */
	if (p == 23 || p == 445)
		return SKY_POLICY_DROP;
	if (a >> 24 == 10)
		return SKY_POLICY_PASS_CLASS(1);
	return SKY_POLICY_PASS;
}
