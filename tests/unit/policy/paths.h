/* The 14 independent if-branches (2^14 paths) the paths_* programs of the policy corpus
 * share: each adds to `v` when one context field has one value. A macro, so that every
 * program still compiles to the same straight run of compare-and-jump instructions. */
#ifndef SKY_TEST_PATHS_H
#define SKY_TEST_PATHS_H

#define SKY_TEST_PATHS_14(ctx, v)                                                                  \
	if ((ctx)->dir == 1)                                                                       \
		(v) += 1;                                                                          \
	if ((ctx)->family == 2)                                                                    \
		(v) += 2;                                                                          \
	if ((ctx)->proto == 3)                                                                     \
		(v) += 4;                                                                          \
	if ((ctx)->dscp == 4)                                                                      \
		(v) += 8;                                                                          \
	if ((ctx)->sub_id == 5)                                                                    \
		(v) += 16;                                                                         \
	if ((ctx)->sub_country == 6)                                                               \
		(v) += 32;                                                                         \
	if ((ctx)->remote_country == 7)                                                            \
		(v) += 64;                                                                         \
	if ((ctx)->beam == 8)                                                                      \
		(v) += 128;                                                                        \
	if ((ctx)->plan == 9)                                                                      \
		(v) += 1;                                                                          \
	if ((ctx)->realm == 10)                                                                    \
		(v) += 2;                                                                          \
	if ((ctx)->cls == 11)                                                                      \
		(v) += 4;                                                                          \
	if ((ctx)->remote_flags == 12)                                                             \
		(v) += 8;                                                                          \
	if ((ctx)->sport == 13)                                                                    \
		(v) += 16;                                                                         \
	if ((ctx)->dport == 14)                                                                    \
	(v) += 32

#endif
