/* UNSAFE (leak): stores a stack pointer into the stack buffer then passes that buffer to a
 * lookup (the only stack memory a helper reads): which entry it finds depends on the
 * address. */
#include "skygate/policy.h"
SKY_MAP_HASH_DEF(seen, uint64_t, uint8_t, 16);
SKY_POLICY(leak_stack_key)
{
	volatile uint64_t k;
	uint8_t *v;

	k = (uint64_t)&k;
	v = sky_hash_lookup(&seen, (const void *)&k);
	if (v != NULL && *v != 0)
		return SKY_POLICY_DROP;
	return SKY_POLICY_PASS;
}
