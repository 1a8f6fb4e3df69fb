/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * parse: the hot path (see parse.h for what is accepted). One pass over the headers,
 * branches laid out for untagged / single-tagged IPv4 or IPv6 carrying TCP or UDP; the
 * IPv6 extension header walk, chained mbufs and stripped VLAN tags go out of line.
 */
#ifndef SKYGATE_PARSE_INLINE_H
#define SKYGATE_PARSE_INLINE_H

#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "skygate/meta.h"
#include "skygate/parse.h"

#define SKY_PARSE_PREFETCH 4 /* packets ahead whose first data line is prefetched */

#define SKY_ET_IPV4 RTE_BE16(0x0800)
#define SKY_ET_IPV6 RTE_BE16(0x86dd)
#define SKY_ET_VLAN RTE_BE16(0x8100)
#define SKY_ET_QINQ RTE_BE16(0x88a8)
#define SKY_ET_QINQ_OLD RTE_BE16(0x9100)

/* IPv6 extension headers the walk skips: hop-by-hop 0, routing 43, fragment 44, AH 51,
 * destination options 60 (all below 64, so one 64-bit mask tests them) */
#define SKY_IP6_EXT_MASK                                                                   \
	((1ULL << 0) | (1ULL << 43) | (1ULL << 44) | (1ULL << 51) | (1ULL << 60))

static __rte_always_inline int
sky_parse_is_ip6_ext(uint8_t nh)
{
	return nh < 64 && ((SKY_IP6_EXT_MASK >> nh) & 1);
}

static __rte_always_inline int
sky_parse_is_tag(uint16_t et_be)
{
	return et_be == SKY_ET_VLAN || et_be == SKY_ET_QINQ || et_be == SKY_ET_QINQ_OLD;
}

static __rte_always_inline uint16_t
sky_parse_raw16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static __rte_always_inline uint16_t
sky_parse_be16(const uint8_t *p)
{
	return rte_be_to_cpu_16(sky_parse_raw16(p));
}

static __rte_always_inline void
sky_parse_meta_init(struct sky_meta *m, uint8_t dir, uint32_t frame_len)
{
	/* one whole-struct store: the compiler emits a few wide stores */
	*m = (struct sky_meta){
		.dir = dir,
		.verdict = SKY_V_PASS,
		.reason = SKY_DROP_NONE,
		.pkt_len = frame_len,
		.sub_idx = SKY_SUB_NONE,
	};
}

/*
 * L4 header at off; the IP packet (or what of it is readable) ends at end.
 * l3 picks ICMP (4) or ICMPv6 (6).
 */
static __rte_always_inline void
sky_parse_l4(const uint8_t *p, uint32_t off, uint32_t end, uint8_t proto, uint8_t l3,
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

/*
 * Parse one frame. p holds cap readable bytes of a frame of frame_len bytes
 * (cap <= frame_len; smaller only for the linear window of a chained mbuf).
 */
static __rte_always_inline void
sky_parse_frame(const uint8_t *p, uint32_t cap, uint32_t frame_len, uint8_t dir,
		struct sky_meta *m)
{
	const uint8_t *ip;
	uint32_t off = 14, hl, len, end;
	uint16_t et, frag;
	uint8_t b0, nh;

	sky_parse_meta_init(m, dir, frame_len);
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
		sky_parse_l4(p, off + hl, end, nh, 4, m);
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
		if (unlikely(sky_parse_is_ip6_ext(nh))) {
			if (sky_parse_ip6_ext(p, &off, end, &nh, m) != 0)
				return;
		}
		m->proto = nh;
		sky_parse_l4(p, off, end, nh, 6, m);
		return;
	}
	return; /* not IP: l3 = 0, passed untouched */
vlan_trunc:
	sky_meta_drop(m, SKY_DROP_VLAN_TRUNC);
}

/** Parse one mbuf into m (data path). */
static __rte_always_inline void
sky_parse_mbuf(struct rte_mbuf *mb, struct sky_meta *m, uint8_t dir)
{
	uint32_t len = rte_pktmbuf_pkt_len(mb);

	if (likely(rte_pktmbuf_data_len(mb) == len &&
		   !(mb->ol_flags & (RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ_STRIPPED))))
		sky_parse_frame(rte_pktmbuf_mtod(mb, const uint8_t *), len, len, dir, m);
	else
		sky_parse_mbuf_slow(mb, m, dir);
}

/**
 * Parse a received burst: meta[i] describes pkts[i] afterwards (every field written).
 * @param dir  enum sky_dir of the RX port (uplink: SKY_DIR_UP, backhaul: SKY_DIR_DOWN)
 * Worker lcore, once per RX burst. Malformed frames get verdict DROP and a reason; the
 * caller drops and counts them. Non-IP frames have l3 == 0 and verdict PASS.
 */
static inline void
sky_parse_burst(struct rte_mbuf **pkts, struct sky_meta *meta, uint16_t n, uint8_t dir)
{
	uint16_t i;

	for (i = 0; i < n && i < SKY_PARSE_PREFETCH; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (i = 0; i < n; i++) {
		if (i + SKY_PARSE_PREFETCH < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + SKY_PARSE_PREFETCH], void *));
		sky_parse_mbuf(pkts[i], &meta[i], dir);
	}
}

#endif /* SKYGATE_PARSE_INLINE_H */
