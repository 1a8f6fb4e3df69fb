/* SAFE: the cheapest program (passes everything): the baseline of the policy stage. */
#include "skygate/policy.h"
SKY_POLICY(pass_all)
{
	return SKY_POLICY_PASS;
}
