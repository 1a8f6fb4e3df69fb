/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * parse: the out-of-line parts (IPv6 extension header walk, chained mbufs, stripped VLAN
 * tags, DSCP rewrite) and the plain-buffer entry point. The hot path is parse_inline.h.
 */
#include <errno.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "skygate/parse.h"
#include "skygate/parse_inline.h"

void
sky_parse_buf(const uint8_t *frame, uint32_t len, uint8_t dir, struct sky_meta *m)
{
	sky_parse_frame(frame, len, len, dir, m);
}

int
sky_parse_ip6_ext(const uint8_t *p, uint32_t *offp, uint32_t end, uint8_t *nhp,
		  struct sky_meta *m)
{
	uint32_t off = *offp, hlen;
	uint8_t nh = *nhp;
	unsigned int n = 0;
	const uint8_t *h;
	uint16_t fo;

	while (sky_parse_is_ip6_ext(nh)) {
		if (n == SKY_PARSE_MAX_EXT) {
			sky_meta_drop(m, SKY_DROP_IP6_EXT_CHAIN);
			return -1;
		}
		n++;
		/* every extension header is at least 8 bytes */
		if (off + 8 > end)
			goto trunc;
		h = p + off;
		switch (nh) {
		case 44: /* fragment: offset (13 bits) << 3 | res (2) | M (1) */
			fo = sky_parse_be16(h + 2);
			if (fo & 0xfff9) {
				m->flags |= SKY_MF_FRAG;
				if (fo & 0xfff8) {
					/* later fragment: the upper-layer header is elsewhere
					 * (wins over an earlier fragment header's "first") */
					m->flags &= (uint8_t)~SKY_MF_FRAG_FIRST;
					m->proto = h[0];
					*nhp = h[0];
					return 1;
				}
				m->flags |= SKY_MF_FRAG_FIRST;
			}
			hlen = 8;
			break;
		case 51: /* AH: length in 4-byte units, minus 2 */
			hlen = ((uint32_t)h[1] + 2) << 2;
			break;
		default: /* hop-by-hop, routing, destination options: 8-byte units, minus 1 */
			hlen = ((uint32_t)h[1] + 1) << 3;
			break;
		}
		if (off + hlen > end)
			goto trunc;
		nh = h[0];
		off += hlen;
	}
	*offp = off;
	*nhp = nh;
	return 0;
trunc:
	m->l4_off = 0;
	sky_meta_drop(m, SKY_DROP_IP6_EXT_TRUNC);
	return -1;
}

static int
reason_is_trunc(uint8_t reason)
{
	switch (reason) {
	case SKY_DROP_ETH_TRUNC:
	case SKY_DROP_VLAN_TRUNC:
	case SKY_DROP_IP4_TRUNC:
	case SKY_DROP_IP6_TRUNC:
	case SKY_DROP_IP6_EXT_TRUNC:
	case SKY_DROP_L4_TRUNC:
		return 1;
	default:
		return 0;
	}
}

/* headers reaching beyond the first SKY_PARSE_LINEAR bytes of a chained mbuf: only long
 * IPv6 extension header chains get here */
static __rte_noinline void
parse_mbuf_long(struct rte_mbuf *mb, struct sky_meta *m, uint8_t dir, uint32_t len)
{
	uint8_t buf[SKY_PARSE_HDR_MAX];
	uint32_t cap = len < sizeof(buf) ? len : (uint32_t)sizeof(buf);
	const uint8_t *p = rte_pktmbuf_read(mb, 0, cap, buf);

	if (p != NULL)
		sky_parse_frame(p, cap, len, dir, m);
}

/* tags the NIC removed are outer to the tags left in the frame */
static void
add_stripped_tags(const struct rte_mbuf *mb, struct sky_meta *m)
{
	uint64_t f = mb->ol_flags;
	uint16_t tag[2];
	unsigned int n = 0;

	if (f & RTE_MBUF_F_RX_QINQ_STRIPPED) {
		tag[n++] = mb->vlan_tci_outer & 0xfff;
		if (f & RTE_MBUF_F_RX_VLAN_STRIPPED)
			tag[n++] = mb->vlan_tci & 0xfff;
	} else if (f & RTE_MBUF_F_RX_VLAN_STRIPPED) {
		tag[n++] = mb->vlan_tci & 0xfff;
	}
	if (n == 0)
		return;
	if (m->n_vlan + n > 2) {
		if (m->verdict == SKY_V_PASS)
			sky_meta_drop(m, SKY_DROP_VLAN_DEPTH);
		return;
	}
	m->inner_vid = n == 2 ? tag[1] : (m->n_vlan ? m->outer_vid : 0);
	m->outer_vid = tag[0];
	m->n_vlan = (uint8_t)(m->n_vlan + n);
}

void
sky_parse_mbuf_slow(struct rte_mbuf *mb, struct sky_meta *m, uint8_t dir)
{
	uint8_t buf[SKY_PARSE_LINEAR];
	uint32_t len = rte_pktmbuf_pkt_len(mb);
	uint32_t cap = len < sizeof(buf) ? len : (uint32_t)sizeof(buf);
	const uint8_t *p = rte_pktmbuf_read(mb, 0, cap, buf);

	if (unlikely(p == NULL)) { /* segment lengths disagree with pkt_len */
		sky_parse_meta_init(m, dir, len);
		sky_meta_drop(m, SKY_DROP_ETH_TRUNC);
		return;
	}
	sky_parse_frame(p, cap, len, dir, m);
	if (cap < len && m->verdict == SKY_V_DROP && reason_is_trunc(m->reason))
		parse_mbuf_long(mb, m, dir, len);
	add_stripped_tags(mb, m);
}

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
