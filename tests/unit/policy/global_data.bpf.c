/* UNSAFE for librte_bpf: global data (.rodata/.bss) has no home in librte_bpf. */
#include "skygate/policy.h"
static volatile uint64_t hits;
SKY_POLICY(global_data)
{
	hits++;
	return SKY_POLICY_PASS;
}
