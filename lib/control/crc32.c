/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC-32 (IEEE 802.3 polynomial, reflected), table-driven; the journal's record check. */
#include <stddef.h>
#include <stdint.h>

#include "skygate/control.h"

static uint32_t table[256];
static int table_ready;

static void
make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
	table_ready = 1;
}

uint32_t
sky_ctl_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!table_ready)
		make_table();
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
