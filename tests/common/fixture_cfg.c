/* SPDX-License-Identifier: BSD-3-Clause */
/* The shared test set-up, the part that needs lib/config (see fixture.h); a file of its
 * own so that tests of modules below config (parse) link without it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/config.h"

#include "fixture.h"

/* --- the standard model ------------------------------------------------------------------- */

struct sky_cfg *
sky_fx_vcfg(const char *name, struct sky_cfg_err *err, const char *fmt, va_list ap)
{
	struct sky_cfg *cfg;
	char *text;

	if (vasprintf(&text, fmt, ap) < 0) {
		fprintf(stderr, "sky_fx_cfg: out of memory\n");
		return NULL;
	}
	memset(err, 0, sizeof(*err));
	cfg = sky_cfg_load_string(name, text, err);
	free(text);
	return cfg;
}

struct sky_cfg *
sky_fx_cfg(const char *name, struct sky_cfg_err *err, const char *fmt, ...)
{
	struct sky_cfg *cfg;
	va_list ap;

	va_start(ap, fmt);
	cfg = sky_fx_vcfg(name, err, fmt, ap);
	va_end(ap);
	return cfg;
}
