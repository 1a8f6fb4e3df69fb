/* SPDX-License-Identifier: BSD-3-Clause */
#include "skygate/meta.h"

static const char *const drop_names[SKY_DROP_MAX] = {
#define SKY_DROP_NAME(n, s) [SKY_DROP_##n] = s,
	SKY_FOREACH_DROP(SKY_DROP_NAME)
#undef SKY_DROP_NAME
};

const char *
sky_drop_name(unsigned int reason)
{
	return reason < SKY_DROP_MAX ? drop_names[reason] : "?";
}
