/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * parse: the hot path (see parse.h for what is accepted). One pass over the headers for
 * the common case (0-2 tags, IPv4 or IPv6, TCP or UDP), the record composed in registers
 * and stored in six 16-byte stores; everything else (options, fragments, extension
 * headers, other protocols, malformed frames, chained mbufs, stripped VLAN tags) goes to
 * the complete parser out of line (lib/parse/parse_dp.c, declared in parse.h). That file
 * does not include this one: the byte readers both use live in parse.h.
 */
#ifndef SKYGATE_PARSE_INLINE_H
#define SKYGATE_PARSE_INLINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_branch_prediction.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "skygate/meta.h"
#include "skygate/parse.h"

#ifndef SKY_PARSE_PREFETCH
#define SKY_PARSE_PREFETCH 4 /* packets ahead whose first data line is prefetched */
#endif

/*
 * The fast path composes the record in registers and writes it with a few 16-byte
 * stores (one store per field made the parse store-bound). SKY_PARSE_W places a field's
 * value in the 64-bit word that holds it; the asserts pin the layout this relies on.
 */
#if RTE_BYTE_ORDER != RTE_LITTLE_ENDIAN
#error "parse_inline.h composes struct sky_meta words for a little-endian CPU"
#endif
#define SKY_PARSE_W(field, val) ((uint64_t)(val) << (8 * (offsetof(struct sky_meta, field) & 7)))
#define SKY_PARSE_IN_WORD(field, w)                                                                \
	_Static_assert(offsetof(struct sky_meta, field) / 8 == (w), "sky_meta: " #field)
SKY_PARSE_IN_WORD(dir, 0);
SKY_PARSE_IN_WORD(verdict, 0);
SKY_PARSE_IN_WORD(reason, 0);
SKY_PARSE_IN_WORD(l3, 0);
SKY_PARSE_IN_WORD(proto, 0);
SKY_PARSE_IN_WORD(dscp, 0);
SKY_PARSE_IN_WORD(flags, 0);
SKY_PARSE_IN_WORD(n_vlan, 0);
SKY_PARSE_IN_WORD(outer_vid, 1);
SKY_PARSE_IN_WORD(inner_vid, 1);
SKY_PARSE_IN_WORD(l3_off, 1);
SKY_PARSE_IN_WORD(l4_off, 1);
SKY_PARSE_IN_WORD(sport, 2);
SKY_PARSE_IN_WORD(dport, 2);
SKY_PARSE_IN_WORD(icmp_type, 2);
SKY_PARSE_IN_WORD(icmp_code, 2);
SKY_PARSE_IN_WORD(ip_len, 2);
SKY_PARSE_IN_WORD(pkt_len, 3);
SKY_PARSE_IN_WORD(sub_idx, 3);
_Static_assert(offsetof(struct sky_meta, sub_id) == 32 && offsetof(struct sky_meta, src) == 52 &&
		       offsetof(struct sky_meta, dst) == 68 && sizeof(struct sky_meta) == 96,
	       "sky_meta: the fast path's store pattern");
_Static_assert(offsetof(struct sky_meta, sport) + 2 == offsetof(struct sky_meta, dport),
	       "sky_meta: ports");

/*
 * Parse one contiguous frame of len bytes at p; m is written whole.
 *
 * Fast path: 0-2 tags, IPv4 without options and not fragmented, or IPv6 without
 * extension headers, carrying TCP or UDP with at least 20 bytes of IP payload. Anything
 * else, and every malformed frame, is parsed again from the start by the complete
 * parser, sky_parse_frame_slow(), which is also the reference the fuzzer holds the fast
 * path to.
 */
static __rte_always_inline void
sky_parse_frame(const uint8_t *p, uint32_t frame_len, uint8_t dir, struct sky_meta *m)
{
	sky_parse_v16 *v = (sky_parse_v16 *)m;
	const sky_parse_v16 z = {0, 0};
	const uint8_t *ip, *h;
	uint32_t off = 14, len, l4, need, ports;
	uint64_t w0 = dir, w1 = 0, w2;
	uint16_t et;
	uint8_t proto;

	/* the shortest frame the fast path takes: Ethernet, IPv4, 20 bytes of TCP/UDP; every
	 * read up to the end of a tagged IPv4 header is then in bounds */
	if (unlikely(frame_len < 14 + 20 + 20))
		goto slow;
	et = sky_parse_raw16(p + 12);
	if (et != SKY_ET_IPV4 && et != SKY_ET_IPV6) { /* untagged IP first: the common case */
		if (!sky_parse_is_tag(et))
			goto slow;
		w0 |= SKY_PARSE_W(n_vlan, 1);
		w1 = SKY_PARSE_W(outer_vid, sky_parse_be16(p + 14) & 0xfff);
		et = sky_parse_raw16(p + 16);
		off = 18;
		if (unlikely(sky_parse_is_tag(et))) {
			w0 += SKY_PARSE_W(n_vlan, 1);
			w1 |= SKY_PARSE_W(inner_vid, sky_parse_be16(p + 18) & 0xfff);
			et = sky_parse_raw16(p + 20);
			off = 22;
			if (unlikely(sky_parse_is_tag(et)))
				goto slow;
		}
	}
	w1 |= SKY_PARSE_W(l3_off, off);
	ip = p + off;
	if (likely(et == SKY_ET_IPV4)) {
		if (unlikely(ip[0] != 0x45))
			goto slow;
		len = sky_parse_be16(ip + 2);
		/* fragments (MF or an offset) take the slow path; a total length below 40
		 * fails the L4 test below */
		if (unlikely(len > frame_len - off || (sky_parse_raw16(ip + 6) & RTE_BE16(0x3fff))))
			goto slow;
		proto = ip[9];
		l4 = off + 20;
		w0 |= SKY_PARSE_W(l3, 4) | SKY_PARSE_W(proto, proto) |
		      SKY_PARSE_W(dscp, ip[1] >> 2);
		v[3] = (sky_parse_v16){(uint64_t)sky_parse_raw32(ip + 12) << 32, 0};
		v[4] = (sky_parse_v16){(uint64_t)sky_parse_raw32(ip + 16) << 32, 0};
		v[5] = z;
	} else if (likely(et == SKY_ET_IPV6)) {
		if (unlikely(frame_len < off + 40 || (ip[0] >> 4) != 6))
			goto slow;
		len = 40 + (uint32_t)sky_parse_be16(ip + 4);
		if (unlikely(len > frame_len - off || len > UINT16_MAX))
			goto slow;
		proto = ip[6]; /* an extension header fails the TCP/UDP test below */
		l4 = off + 40;
		w0 |= SKY_PARSE_W(l3, 6) | SKY_PARSE_W(proto, proto) |
		      SKY_PARSE_W(dscp, ((ip[0] & 0xf) << 2) | (ip[1] >> 6));
		v[3] = z;
		v[5] = z;
		memcpy(m->src, ip + 8, 16);
		memcpy(m->dst, ip + 24, 16);
	} else {
		goto slow;
	}
	/* TCP and UDP share the rest: both have the ports first; TCP's data offset must be
	 * sane, UDP needs 8 bytes (20 asked of both here, shorter UDP goes slow). The IP
	 * packet ends at off + len, within the frame (checked above). */
	if (unlikely((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || l4 + 20 > off + len))
		goto slow;
	h = p + l4;
	/* TCP: data offset * 4; UDP: 20 (h[12] is in bounds for both). Written as a
	 * select; other forms (a mask, TCP laid out to fall through) measured 2-4
	 * cycles/packet slower on the bench's mix. */
	need = ((uint32_t)h[12] >> 2) & 0x3c;
	need = proto == IPPROTO_TCP ? need : 20;
	if (unlikely(need < 20 || l4 + need > off + len))
		goto slow;
	ports = __builtin_bswap32(sky_parse_raw32(h)); /* sport << 16 | dport */
	w0 |= SKY_PARSE_W(flags, SKY_MF_PORTS);
	w1 |= SKY_PARSE_W(l4_off, l4);
	w2 = SKY_PARSE_W(sport, ports >> 16) | SKY_PARSE_W(dport, ports & 0xffff) |
	     SKY_PARSE_W(ip_len, len);
	v[0] = (sky_parse_v16){w0, w1};
	v[1] = (sky_parse_v16){w2, SKY_PARSE_W(pkt_len, frame_len) |
					   SKY_PARSE_W(sub_idx, SKY_SUB_NONE)};
	v[2] = z;
	return;
slow:
	sky_parse_frame_slow(p, frame_len, frame_len, dir, m);
}

/** Parse one mbuf into m (data path). */
static __rte_always_inline void
sky_parse_mbuf(struct rte_mbuf *mb, struct sky_meta *m, uint8_t dir)
{
	uint32_t len = rte_pktmbuf_pkt_len(mb);

	/* one branch for both: a single segment, no tag stripped by the NIC */
	if (likely(((rte_pktmbuf_data_len(mb) ^ len) |
		    (mb->ol_flags & (RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ_STRIPPED))) ==
		   0))
		sky_parse_frame(rte_pktmbuf_mtod(mb, const uint8_t *), len, dir, m);
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
	for (i = 0; i + SKY_PARSE_PREFETCH < n; i++) {
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i + SKY_PARSE_PREFETCH], void *));
		sky_parse_mbuf(pkts[i], &meta[i], dir);
	}
	for (; i < n; i++)
		sky_parse_mbuf(pkts[i], &meta[i], dir);
}

#endif /* SKYGATE_PARSE_INLINE_H */
