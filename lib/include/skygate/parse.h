/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * parse: the first pipeline stage. Reads Ethernet, up to two VLAN tags, IPv4 or IPv6 and
 * the L4 header of each received frame and fills the parse part of struct sky_meta
 * (meta.h); initialises every later-stage field (sub_idx = SKY_SUB_NONE, the rest 0,
 * verdict PASS).
 *
 * What is accepted (data path, no allocation, no state):
 *  - Ethernet II; tags with TPID 0x8100, 0x88a8 or 0x9100 in either position (operators
 *    mix them); a third tag drops the frame (SKY_DROP_VLAN_DEPTH). Tags the NIC stripped
 *    (RTE_MBUF_F_RX_VLAN_STRIPPED / _QINQ_STRIPPED) count as outer tags, before the tags
 *    still in the frame.
 *  - IPv4 with options; fragments flagged SKY_MF_FRAG, the first one (offset 0, MF set)
 *    also SKY_MF_FRAG_FIRST and parsed to L4. Later fragments: proto set, no ports,
 *    l4_off 0. Ethernet padding after the total length is ignored.
 *  - IPv6 with at most SKY_PARSE_MAX_EXT extension headers (hop-by-hop, routing,
 *    fragment, destination options, AH). A fragment header with offset 0 and M clear
 *    (an RFC 6946 "atomic fragment") is a whole packet, not a fragment.
 *  - L4: TCP (data offset checked), UDP, SCTP -> ports; ICMP (in IPv4) and ICMPv6 (in
 *    IPv6) -> type/code (8-byte header required). Other protocols: proto only, l4_off set.
 *  - Non-IP frames (ARP, LLDP, ...): l3 = 0, verdict PASS, to be forwarded untouched.
 *
 * l3 is set from the ethertype (4 or 6) before the IP header is checked, so a dropped IP
 * frame still says which family it claimed. The L4 header must lie inside the IP packet
 * (total/payload length), not only inside the frame. ip_len of an IPv6 packet is
 * 40 + payload length, saturated at 65535. Every read is bounds-checked against the
 * bytes available: malformed input never reads past the frame.
 *
 * l3_off is the offset after the tags for every frame that got that far, non-IP too.
 *
 * Cost: sky_parse_burst (parse_inline.h) handles the common case inline, composing the
 * record in registers (0-2 tags, IPv4 without options or fragmentation, IPv6 without
 * extension headers, TCP/UDP); everything else is handed whole to the complete parser
 * (sky_parse_frame_slow), which the unit tests and the fuzzer hold the fast path to,
 * byte for byte. tests/bench/bench_parse prints cycles/packet.
 *
 * Where it lives (dependencies point down only):
 *   skygate/parse_inline.h  the hot path (sky_parse_burst), inlined into the worker loop;
 *                           calls the complete parser out of line
 *   lib/parse/parse_dp.c    the complete parser, chained mbufs, stripped VLAN tags
 *   lib/parse/parse_buf.c   sky_parse_buf: the fast path on a plain buffer
 *   lib/parse/parse_dscp.c  sky_parse_set_dscp: the DSCP rewrite of a parsed packet
 *   this header             the API, and the byte readers both parsers share (below)
 *
 * Multi-segment mbufs: the headers are parsed from a copy of the first
 * SKY_PARSE_LINEAR bytes (rte_pktmbuf_read); when IPv6 extension headers reach beyond
 * that, the parse is redone over up to SKY_PARSE_HDR_MAX bytes, so chained and
 * contiguous frames give the same result.
 */
#ifndef SKYGATE_PARSE_H
#define SKYGATE_PARSE_H

#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>

#include "skygate/meta.h"

struct rte_mbuf;

#define SKY_PARSE_MAX_EXT 8  /* IPv6 extension headers walked; one more is a drop */
#define SKY_PARSE_LINEAR 256 /* bytes linearised first from a chained mbuf */
/* the longest header stack the parser can meet: eth + 2 tags + IPv6 + 8 * 2048-byte
 * extension headers + 60-byte TCP header, rounded up */
#define SKY_PARSE_HDR_MAX (14 + 8 + 40 + SKY_PARSE_MAX_EXT * 2048 + 64)

/**
 * Parse one frame held in a plain buffer (fuzzer, generator, tests, slow paths).
 * @param frame  the frame's bytes (may be NULL when len is 0)
 * @param len    frame length in bytes; nothing beyond frame[len - 1] is read
 * @param dir    enum sky_dir, copied into m->dir
 * @param m      filled completely (every field written)
 */
void sky_parse_buf(const uint8_t *frame, uint32_t len, uint8_t dir, struct sky_meta *m);

/**
 * Rewrite the DSCP of a parsed, live IP packet in place, keeping the ECN bits: IPv4 with
 * an incremental header checksum update (RFC 1624), IPv6 in the traffic class. Works on
 * chained mbufs. Updates meta->dscp.
 * @return 0, or -EINVAL when dscp > 63, the packet is not live IP (sky_meta_live), or its
 *         IP header is not where meta says (l3_off beyond the frame).
 * Data path; no allocation.
 */
int sky_parse_set_dscp(struct rte_mbuf *m, struct sky_meta *meta, uint8_t dscp);

/**
 * The output step, the worker's last before TX: write back into each live packet what
 * the stages decided in its metadata. Today that is a DSCP set by the policy
 * (SKY_MF_DSCP_SET: sky_parse_set_dscp with meta->dscp); the stages themselves never
 * touch packet bytes. pkts[i] belongs to meta[i]. Data path; no allocation.
 */
static inline void
sky_parse_output_burst(struct rte_mbuf **pkts, struct sky_meta *meta, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		if (meta[i].flags & SKY_MF_DSCP_SET)
			sky_parse_set_dscp(pkts[i], &meta[i], meta[i].dscp);
}

/* --- out-of-line parts of parse_inline.h; call sky_parse_burst instead --- */

/** Parse a chained mbuf or one with stripped VLAN tags (rare path). */
void sky_parse_mbuf_slow(struct rte_mbuf *mb, struct sky_meta *m, uint8_t dir);

/**
 * The complete parser, every case and check (the fast path's fallback and reference).
 * p holds cap readable bytes of a frame of frame_len bytes (cap <= frame_len).
 */
void sky_parse_frame_slow(const uint8_t *p, uint32_t cap, uint32_t frame_len, uint8_t dir,
			  struct sky_meta *m);

/* --- byte readers shared by the fast path and the complete parser (data path) --- */

#define SKY_ET_IPV4 RTE_BE16(0x0800)
#define SKY_ET_IPV6 RTE_BE16(0x86dd)
#define SKY_ET_VLAN RTE_BE16(0x8100)
#define SKY_ET_QINQ RTE_BE16(0x88a8)
#define SKY_ET_QINQ_OLD RTE_BE16(0x9100)

/* a VLAN tag's TPID (big-endian), any of the three operators use */
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

static __rte_always_inline uint32_t
sky_parse_raw32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static __rte_always_inline uint16_t
sky_parse_be16(const uint8_t *p)
{
	/* the builtin, not rte_be_to_cpu_16: DPDK's x86 version is an "xchg %ah,%al" asm
	 * (3 uops); the builtin becomes a movbe load or a 1-uop rotate */
	return __builtin_bswap16(sky_parse_raw16(p));
}

/* 16-byte vector that may alias the metadata record: both parsers write the record with
 * six 16-byte stores (one store per field made the parse store-bound) */
typedef uint64_t sky_parse_v16 __attribute__((vector_size(16), aligned(16), may_alias));

#endif /* SKYGATE_PARSE_H */
