/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * parse: the plain-buffer entry point (fuzzer, generator, tests): the same fast path the
 * worker inlines, over a buffer instead of an mbuf.
 */
#include <stdint.h>

#include "skygate/meta.h"
#include "skygate/parse.h"
#include "skygate/parse_inline.h"

void
sky_parse_buf(const uint8_t *frame, uint32_t len, uint8_t dir, struct sky_meta *m)
{
	sky_parse_frame(frame, len, dir, m);
}
