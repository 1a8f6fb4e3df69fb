/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * parse: the DSCP rewrite of a parsed, live IP packet (RFC 1624 checksum update for
 * IPv4, the traffic class for IPv6), on contiguous and chained mbufs.
 */
#include <errno.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "skygate/meta.h"
#include "skygate/parse.h"

/* the byte at offset off of a (possibly chained) packet, NULL past its end */
static uint8_t *
pkt_byte(struct rte_mbuf *seg, uint32_t off)
{
	if (off >= rte_pktmbuf_pkt_len(seg))
		return NULL;
	while (seg != NULL && off >= seg->data_len) {
		off -= seg->data_len;
		seg = seg->next;
	}
	return seg != NULL ? rte_pktmbuf_mtod_offset(seg, uint8_t *, off) : NULL;
}

int
sky_parse_set_dscp(struct rte_mbuf *mb, struct sky_meta *meta, uint8_t dscp)
{
	uint32_t o = meta->l3_off;
	uint8_t *b0, *b1, *c0, *c1;
	uint32_t sum;
	uint16_t old_w, new_w, ck;
	uint8_t tc;

	if (dscp > 63 || !sky_meta_live(meta))
		return -EINVAL;
	b0 = pkt_byte(mb, o);
	b1 = pkt_byte(mb, o + 1);
	if (b0 == NULL || b1 == NULL)
		return -EINVAL;
	if (meta->l3 == 4) {
		c0 = pkt_byte(mb, o + 10);
		c1 = pkt_byte(mb, o + 11);
		if (c0 == NULL || c1 == NULL || *b0 >> 4 != 4)
			return -EINVAL;
		old_w = (uint16_t)(*b0 << 8 | *b1);
		*b1 = (uint8_t)(dscp << 2 | (*b1 & 0x3));
		new_w = (uint16_t)(*b0 << 8 | *b1);
		/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') */
		ck = (uint16_t)(*c0 << 8 | *c1);
		sum = (uint16_t)~ck + (uint32_t)(uint16_t)~old_w + new_w;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		ck = (uint16_t)~sum;
		*c0 = (uint8_t)(ck >> 8);
		*c1 = (uint8_t)ck;
	} else {
		if (*b0 >> 4 != 6)
			return -EINVAL;
		/* version(4) | traffic class(8) | flow label(20): tc straddles b0 and b1 */
		tc = (uint8_t)(((*b0 & 0xf) << 4) | (*b1 >> 4));
		tc = (uint8_t)(dscp << 2 | (tc & 0x3));
		*b0 = (uint8_t)((*b0 & 0xf0) | (tc >> 4));
		*b1 = (uint8_t)((*b1 & 0x0f) | ((tc & 0xf) << 4));
	}
	meta->dscp = dscp;
	return 0;
}
