/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * parse, data path out of line: the complete parser (every case the fast path in
 * skygate/parse_inline.h hands over: options, fragments, IPv6 extension headers,
 * ICMP/SCTP/other protocols, malformed frames), chained mbufs and stripped VLAN tags.
 * It includes parse.h only, never parse_inline.h: the fast path calls this file, not
 * the other way round.
 */
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_branch_prediction.h>
#include <rte_mbuf.h>

#include "skygate/meta.h"
#include "skygate/parse.h"

/* IPv6 extension headers the walk skips: hop-by-hop 0, routing 43, fragment 44, AH 51,
 * destination options 60 (all below 64, so one 64-bit mask tests them) */
#define IP6_EXT_MASK ((1ULL << 0) | (1ULL << 43) | (1ULL << 44) | (1ULL << 51) | (1ULL << 60))

static inline int
is_ip6_ext(uint8_t nh)
{
	return nh < 64 && ((IP6_EXT_MASK >> nh) & 1);
}

/*
 * Walk IPv6 extension headers starting with *nh at *off, not past end.
 * Returns 0: *off and *nh now name the upper-layer header; 1: a later fragment (proto
 * set, no L4); -1: dropped (reason set in m).
 */
static int
ip6_ext(const uint8_t *p, uint32_t *offp, uint32_t end, uint8_t *nhp, struct sky_meta *m)
{
	uint32_t off = *offp, hlen;
	uint8_t nh = *nhp;
	unsigned int n = 0;
	const uint8_t *h;
	uint16_t fo;

	while (is_ip6_ext(nh)) {
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

static inline void
meta_init(struct sky_meta *m, uint8_t dir, uint32_t frame_len)
{
	sky_parse_v16 *v = (sky_parse_v16 *)m;
	const sky_parse_v16 z = {0, 0};

	/* six 16-byte stores (a struct literal made gcc emit "rep stos": ~30 cycles),
	 * then the few non-zero fields; PASS, NONE and every later-stage field are 0 */
	RTE_BUILD_BUG_ON(sizeof(*m) != 6 * sizeof(*v));
	RTE_BUILD_BUG_ON(SKY_V_PASS != 0 || SKY_DROP_NONE != 0);
	v[0] = z;
	v[1] = z;
	v[2] = z;
	v[3] = z;
	v[4] = z;
	v[5] = z;
	m->dir = dir;
	m->pkt_len = frame_len;
	m->sub_idx = SKY_SUB_NONE;
}

/*
 * L4 header at off; the IP packet (or what of it is readable) ends at end.
 * l3 picks ICMP (4) or ICMPv6 (6).
 */
static inline void
parse_l4(const uint8_t *p, uint32_t off, uint32_t end, uint8_t proto, uint8_t l3,
	 struct sky_meta *m)
{
	const uint8_t *h = p + off;
	uint32_t need;

	m->l4_off = (uint16_t)off;
	switch (proto) {
	case IPPROTO_TCP:
		if (unlikely(off + 20 > end))
			goto trunc;
		need = (uint32_t)(h[12] >> 4) << 2;
		if (unlikely(need < 20 || off + need > end))
			goto trunc;
		break;
	case IPPROTO_UDP:
		need = 8;
		break;
	case IPPROTO_SCTP:
		need = 12;
		break;
	case IPPROTO_ICMP:
		if (l3 != 4)
			return;
		goto icmp;
	case IPPROTO_ICMPV6:
		if (l3 != 6)
			return;
		goto icmp;
	default:
		return;
	}
	if (unlikely(off + need > end))
		goto trunc;
	m->sport = sky_parse_be16(h);
	m->dport = sky_parse_be16(h + 2);
	m->flags |= SKY_MF_PORTS;
	return;
icmp:
	if (unlikely(off + 8 > end))
		goto trunc;
	m->icmp_type = h[0];
	m->icmp_code = h[1];
	m->flags |= SKY_MF_ICMP;
	return;
trunc:
	sky_meta_drop(m, SKY_DROP_L4_TRUNC);
}

/* the complete parser: every case, every check */
void
sky_parse_frame_slow(const uint8_t *p, uint32_t cap, uint32_t frame_len, uint8_t dir,
		     struct sky_meta *m)
{
	const uint8_t *ip;
	uint32_t off = 14, hl, len, end;
	uint16_t et, frag;
	uint8_t b0, nh;

	meta_init(m, dir, frame_len);
	if (unlikely(cap < 14)) {
		sky_meta_drop(m, SKY_DROP_ETH_TRUNC);
		return;
	}
	et = sky_parse_raw16(p + 12);
	if (sky_parse_is_tag(et)) {
		if (unlikely(cap < 18))
			goto vlan_trunc;
		m->outer_vid = sky_parse_be16(p + 14) & 0xfff;
		m->n_vlan = 1;
		et = sky_parse_raw16(p + 16);
		off = 18;
		if (unlikely(sky_parse_is_tag(et))) {
			if (unlikely(cap < 22))
				goto vlan_trunc;
			m->inner_vid = sky_parse_be16(p + 18) & 0xfff;
			m->n_vlan = 2;
			et = sky_parse_raw16(p + 20);
			off = 22;
			if (unlikely(sky_parse_is_tag(et))) {
				sky_meta_drop(m, SKY_DROP_VLAN_DEPTH);
				return;
			}
		}
	}
	m->l3_off = (uint16_t)off;
	ip = p + off;
	if (likely(et == SKY_ET_IPV4)) {
		m->l3 = 4;
		if (unlikely(cap < off + 20)) {
			sky_meta_drop(m, SKY_DROP_IP4_TRUNC);
			return;
		}
		b0 = ip[0];
		hl = 20;
		if (unlikely(b0 != 0x45)) {
			if (b0 >> 4 != 4) {
				sky_meta_drop(m, SKY_DROP_IP4_VERSION);
				return;
			}
			hl = (uint32_t)(b0 & 0xf) << 2;
			if (hl < 20) {
				sky_meta_drop(m, SKY_DROP_IP4_IHL);
				return;
			}
			if (cap < off + hl) {
				sky_meta_drop(m, SKY_DROP_IP4_TRUNC);
				return;
			}
		}
		len = sky_parse_be16(ip + 2);
		if (unlikely(len < hl || len > frame_len - off)) {
			sky_meta_drop(m, SKY_DROP_IP4_TOTLEN);
			return;
		}
		m->ip_len = (uint16_t)len;
		m->dscp = ip[1] >> 2;
		nh = ip[9];
		m->proto = nh;
		memcpy(m->src, ip + 12, 4);
		memcpy(m->dst, ip + 16, 4);
		end = off + len;
		end = end < cap ? end : cap;
		frag = sky_parse_raw16(ip + 6) & RTE_BE16(0x3fff);
		if (unlikely(frag != 0)) {
			if (frag & RTE_BE16(0x1fff)) {
				m->flags = SKY_MF_FRAG; /* later fragment: no L4 header */
				return;
			}
			m->flags = SKY_MF_FRAG | SKY_MF_FRAG_FIRST;
		}
		parse_l4(p, off + hl, end, nh, 4, m);
		return;
	}
	if (likely(et == SKY_ET_IPV6)) {
		m->l3 = 6;
		if (unlikely(cap < off + 40)) {
			sky_meta_drop(m, SKY_DROP_IP6_TRUNC);
			return;
		}
		b0 = ip[0];
		if (unlikely(b0 >> 4 != 6)) {
			sky_meta_drop(m, SKY_DROP_IP6_VERSION);
			return;
		}
		len = 40 + (uint32_t)sky_parse_be16(ip + 4);
		if (unlikely(len > frame_len - off)) {
			sky_meta_drop(m, SKY_DROP_IP6_PAYLEN);
			return;
		}
		m->ip_len = (uint16_t)(len > UINT16_MAX ? UINT16_MAX : len);
		m->dscp = (uint8_t)(((b0 & 0xf) << 2) | (ip[1] >> 6));
		memcpy(m->src, ip + 8, 16);
		memcpy(m->dst, ip + 24, 16);
		end = off + len;
		end = end < cap ? end : cap;
		nh = ip[6];
		off += 40;
		if (unlikely(is_ip6_ext(nh))) {
			if (ip6_ext(p, &off, end, &nh, m) != 0)
				return;
		}
		m->proto = nh;
		parse_l4(p, off, end, nh, 6, m);
		return;
	}
	return; /* not IP: l3 = 0, passed untouched */
vlan_trunc:
	sky_meta_drop(m, SKY_DROP_VLAN_TRUNC);
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
		sky_parse_frame_slow(p, cap, len, dir, m);
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
		meta_init(m, dir, len);
		sky_meta_drop(m, SKY_DROP_ETH_TRUNC);
		return;
	}
	sky_parse_frame_slow(p, cap, len, dir, m);
	if (cap < len && m->verdict == SKY_V_DROP && reason_is_trunc(m->reason))
		parse_mbuf_long(mb, m, dir, len);
	add_stripped_tags(mb, m);
}
