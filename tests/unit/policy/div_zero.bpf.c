/* SAFE to load, faults at run time when sport is 0 (librte_bpf returns 0). */
#include "skygate/policy.h"
SKY_POLICY(div_zero)
{
	/* volatile: clang would otherwise turn `1000 / sport != 0` into `sport <= 1000` */
	volatile uint32_t x = 1000 / (uint32_t)ctx->sport;

	return x ? SKY_POLICY_PASS : SKY_POLICY_DROP;
}
