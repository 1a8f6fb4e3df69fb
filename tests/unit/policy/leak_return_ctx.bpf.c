/* UNSAFE (leak): returns the ctx pointer (r1) as its verdict. */
#include "skygate/policy.h"
SKY_POLICY(leak_return_ctx)
{
	return (uint64_t)ctx;
}
