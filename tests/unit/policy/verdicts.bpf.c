/* SAFE: every kind of verdict, and two invalid ones, chosen by destination port. */
#include "skygate/policy.h"
SKY_POLICY(verdicts)
{
	switch (ctx->dport) {
	case 53:
		return SKY_POLICY_PASS_CLASS(0);
	case 80:
		return SKY_POLICY_PASS_DSCP(46);
	case 443:
		return SKY_POLICY_DROP;
	case 7:
		return 0x77; /* no such verdict: a fault */
	case 8:
		return SKY_POLICY_PASS_CLASS(200); /* no such class: a fault */
	default:
		return SKY_POLICY_PASS;
	}
}
