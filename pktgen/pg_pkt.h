/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * skygate-pktgen packet layout: build a stamped frame of a flow, read the stamp back.
 * Data path, static inline; shared by the generator loop and its unit test.
 */
#ifndef SKYGATE_PKTGEN_PKT_H
#define SKYGATE_PKTGEN_PKT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "pg_gen.h"

#define PG_ZERO_HEAD 128 /* bytes of each TX mbuf cleared before the headers are written */

static inline uint32_t
pg_flow_word(uint32_t idx, const struct pg_flow *f)
{
	return idx | (uint32_t)f->cls << PG_FW_CLASS_SHIFT | (uint32_t)f->dir << PG_FW_DIR_SHIFT;
}

static inline uint16_t
pg_cksum_fold(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/**
 * Build one packet of flow idx into m (a single segment of >= PG_MAX_FRAME bytes whose data
 * room past PG_ZERO_HEAD is zero). frame = wanted length without FCS; the packet grows to
 * f->min_len. mac[0]/mac[1] = MAC of the terminal-side / internet-side port. Returns the
 * frame length (without FCS).
 */
static inline uint16_t
pg_pkt_build_ts(struct rte_mbuf *m, uint32_t idx, const struct pg_flow *f, uint16_t frame,
		uint64_t tsc, uint16_t magic, const uint8_t mac[2][6], uint32_t tsval)
{
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	uint16_t l2 = f->vlan ? 18 : 14, l3 = f->v6 ? 40 : 20;
	const bool ts = f->proto == IPPROTO_TCP && f->ts == PG_TS_OPTION;
	const bool scaled = f->proto == IPPROTO_TCP && f->ts != 0;
	uint16_t l4h = f->proto == IPPROTO_TCP ? (ts ? 20 + PG_TS_OPT_LEN : 20) : 8;
	uint16_t stamp = f->proto == IPPROTO_TCP ? 4 : 16;
	uint16_t len = frame > f->min_len ? frame : f->min_len;
	uint16_t out_port = f->dir == PG_UP ? 0 : 1;

	memset(p, 0, PG_ZERO_HEAD);
	memcpy(p, mac[out_port ^ 1], 6);
	memcpy(p + 6, mac[out_port], 6);
	uint8_t *q = p + 12;
	if (f->vlan) {
		*(uint16_t *)q = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
		*(uint16_t *)(q + 2) = rte_cpu_to_be_16(f->vlan);
		q += 4;
	}
	*(uint16_t *)q = rte_cpu_to_be_16(f->v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
	q += 2;
	uint16_t l4len = len - l2 - l3;
	uint32_t psum;
	if (f->v6) {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)q;
		ip->vtc_flow =
			rte_cpu_to_be_32(6u << 28 | (uint32_t)f->dscp << 22 | (idx & 0xfffff));
		ip->payload_len = rte_cpu_to_be_16(l4len);
		ip->proto = f->proto;
		ip->hop_limits = 64;
		memcpy(ip->src_addr, f->src, 16);
		memcpy(ip->dst_addr, f->dst, 16);
		psum = rte_ipv6_phdr_cksum(ip, 0);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)q;
		ip->version_ihl = 0x45;
		ip->type_of_service = (uint8_t)(f->dscp << 2);
		ip->total_length = rte_cpu_to_be_16(len - l2);
		ip->packet_id = rte_cpu_to_be_16((uint16_t)f->seq);
		ip->time_to_live = 64;
		ip->next_proto_id = f->proto;
		memcpy(&ip->src_addr, f->src, 4);
		memcpy(&ip->dst_addr, f->dst, 4);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		psum = rte_ipv4_phdr_cksum(ip, 0);
	}
	q += l3;
	uint32_t fw = pg_flow_word(idx, f);
	unsigned int ck_off; /* of the L4 checksum */
	if (f->proto == IPPROTO_TCP) {
		struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)q;
		th->src_port = rte_cpu_to_be_16(f->sport);
		th->dst_port = rte_cpu_to_be_16(f->dport);
		th->sent_seq = rte_cpu_to_be_32(scaled ? f->seq << PG_TS_SEQ_SHIFT : f->seq);
		th->recv_ack = rte_cpu_to_be_32((uint32_t)tsc);
		th->data_off = (uint8_t)((l4h / 4) << 4);
		th->tcp_flags = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG;
		th->rx_win = rte_cpu_to_be_16(magic);
		th->tcp_urp = rte_cpu_to_be_16((uint16_t)(tsc >> 32));
		if (ts) {
			uint32_t v = rte_cpu_to_be_32(tsval);
			q[20] = 1; /* NOP, NOP, timestamps (kind 8, length 10), TSecr 0 */
			q[21] = 1;
			q[22] = 8;
			q[23] = 10;
			memcpy(q + 24, &v, 4);
		}
		memcpy(q + l4h, &fw, 4);
		ck_off = offsetof(struct rte_tcp_hdr, cksum);
	} else {
		struct rte_udp_hdr *uh = (struct rte_udp_hdr *)q;
		uh->src_port = rte_cpu_to_be_16(f->sport);
		uh->dst_port = rte_cpu_to_be_16(f->dport);
		uh->dgram_len = rte_cpu_to_be_16(l4len);
		struct pg_udp_stamp s = {magic, (uint16_t)(tsc >> 32), fw, f->seq, (uint32_t)tsc};
		memcpy(q + 8, &s, sizeof(s));
		ck_off = offsetof(struct rte_udp_hdr, dgram_cksum);
	}
	/* the payload past the stamp is zero, so the checksum covers header + stamp only */
	uint16_t c = (uint16_t)~pg_cksum_fold(psum + rte_raw_cksum(q, l4h + stamp));
	if (c == 0 && f->proto == IPPROTO_UDP)
		c = 0xffff;
	memcpy(q + ck_off, &c, 2);
	m->data_len = len;
	m->pkt_len = len;
	return len;
}

static inline uint16_t
pg_pkt_build(struct rte_mbuf *m, uint32_t idx, const struct pg_flow *f, uint16_t frame,
	     uint64_t tsc, uint16_t magic, const uint8_t mac[2][6])
{
	return pg_pkt_build_ts(m, idx, f, frame, tsc, magic, mac, 0);
}

/**
 * A segment without payload of flow idx's connection (handshake, echoes): from the terminal
 * (leaves port 0; the terminal's address and port as source) or from the server (port 1),
 * whatever the flow's direction; flags, seq, ack as given; the timestamp option when ts.
 * Returns the frame length (without FCS).
 */
static inline uint16_t
pg_pkt_build_ctl(struct rte_mbuf *m, uint32_t idx, const struct pg_flow *f, bool from_terminal,
		 uint8_t flags, uint32_t seq, uint32_t ack, uint16_t magic, const uint8_t mac[2][6],
		 bool ts, uint32_t tsval, uint32_t tsecr)
{
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	uint16_t l2 = f->vlan ? 18 : 14, l3 = f->v6 ? 40 : 20, l4 = ts ? 20 + PG_TS_OPT_LEN : 20;
	uint16_t len = l2 + l3 + l4;
	uint16_t out_port = from_terminal ? 0 : 1;
	/* the flow's own direction, or its reverse */
	const bool fwd = from_terminal == (f->dir == PG_UP);
	const uint8_t *src = fwd ? f->src : f->dst, *dst = fwd ? f->dst : f->src;
	uint32_t psum, v;

	if (len < PG_MIN_FRAME)
		len = PG_MIN_FRAME; /* padding past the IP length */
	memset(p, 0, PG_ZERO_HEAD);
	memcpy(p, mac[out_port ^ 1], 6);
	memcpy(p + 6, mac[out_port], 6);
	uint8_t *q = p + 12;
	if (f->vlan) {
		*(uint16_t *)q = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
		*(uint16_t *)(q + 2) = rte_cpu_to_be_16(f->vlan);
		q += 4;
	}
	*(uint16_t *)q = rte_cpu_to_be_16(f->v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
	q += 2;
	if (f->v6) {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)q;
		ip->vtc_flow =
			rte_cpu_to_be_32(6u << 28 | (uint32_t)f->dscp << 22 | (idx & 0xfffff));
		ip->payload_len = rte_cpu_to_be_16(l4);
		ip->proto = IPPROTO_TCP;
		ip->hop_limits = 64;
		memcpy(ip->src_addr, src, 16);
		memcpy(ip->dst_addr, dst, 16);
		psum = rte_ipv6_phdr_cksum(ip, 0);
	} else {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)q;
		ip->version_ihl = 0x45;
		ip->type_of_service = (uint8_t)(f->dscp << 2);
		ip->total_length = rte_cpu_to_be_16(l3 + l4);
		ip->time_to_live = 64;
		ip->next_proto_id = IPPROTO_TCP;
		memcpy(&ip->src_addr, src, 4);
		memcpy(&ip->dst_addr, dst, 4);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		psum = rte_ipv4_phdr_cksum(ip, 0);
	}
	q += l3;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)q;
	th->src_port = rte_cpu_to_be_16(fwd ? f->sport : f->dport);
	th->dst_port = rte_cpu_to_be_16(fwd ? f->dport : f->sport);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (uint8_t)((l4 / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(magic);
	if (ts) {
		q[20] = 1;
		q[21] = 1;
		q[22] = 8;
		q[23] = 10;
		v = rte_cpu_to_be_32(tsval);
		memcpy(q + 24, &v, 4);
		v = rte_cpu_to_be_32(tsecr);
		memcpy(q + 28, &v, 4);
	}
	uint16_t c = (uint16_t)~pg_cksum_fold(psum + rte_raw_cksum(q, l4));
	memcpy(q + offsetof(struct rte_tcp_hdr, cksum), &c, 2);
	m->data_len = len;
	m->pkt_len = len;
	return len;
}

/**
 * The echo of flow idx's segment whose TSval was tsecr: a pure ACK with timestamps from the
 * host that received the segment (it leaves from the port the segment arrived on), the flow
 * word | PG_FW_ECHO as its acknowledgement number. Returns the frame length (without FCS).
 */
static inline uint16_t
pg_pkt_build_echo(struct rte_mbuf *m, uint32_t idx, const struct pg_flow *f, uint16_t magic,
		  const uint8_t mac[2][6], uint32_t tsval, uint32_t tsecr)
{
	return pg_pkt_build_ctl(m, idx, f, f->dir == PG_DOWN, RTE_TCP_ACK_FLAG, 0,
				pg_flow_word(idx, f) | PG_FW_ECHO, magic, mac, true, tsval, tsecr);
}

/*
 * The handshake of --rtt-handshake, the terminal opening every connection: SYN seq = the
 * flow word; SYN-ACK seq = ~flow word, ack = flow word + 1; ACK seq = flow word + 1,
 * ack = ~flow word + 1. No timestamps, no payload: the flow word is in the numbers.
 */
/* (PG_CTL_*: pg_gen.h) */

struct pg_rx_hit {
	uint32_t fw; /* flow word: flow index, class, direction (| PG_FW_ECHO for an echo) */
	uint32_t seq;
	uint64_t tsc;	/* 48 bits */
	uint32_t tsval; /* TCP with timestamps: the segment's TSval, else 0 */
	uint8_t echo;	/* an echo (pure ACK) of --rtt-emulate: fw, tsval only */
	uint8_t ctl;	/* a handshake segment (PG_CTL_*): fw only */
};

/**
 * Read the stamp of a received frame. 0 and h filled when it carries this run's magic;
 * -1 for anything else (not IP, not UDP/TCP, too short, another magic). The caller checks
 * the flow word against its flow table.
 */
static inline int
pg_pkt_parse(const struct rte_mbuf *m, uint16_t want_magic, struct pg_rx_hit *h)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m), off = 12;
	h->tsval = 0;
	h->echo = 0;
	h->ctl = 0;
	if (len < 60)
		return -1;
	uint16_t et = rte_be_to_cpu_16(*(const uint16_t *)(p + off));
	for (int k = 0; k < 2 && (et == RTE_ETHER_TYPE_VLAN || et == RTE_ETHER_TYPE_QINQ); k++) {
		off += 4;
		et = rte_be_to_cpu_16(*(const uint16_t *)(p + off));
	}
	off += 2;
	uint8_t proto;
	if (et == RTE_ETHER_TYPE_IPV4) {
		proto = p[off + 9];
		off += (p[off] & 0xf) * 4u;
	} else if (et == RTE_ETHER_TYPE_IPV6) {
		proto = p[off + 6];
		off += 40;
	} else {
		return -1;
	}
	uint32_t fw;
	uint16_t magic;
	if (proto == IPPROTO_UDP) {
		if (off + 8 + sizeof(struct pg_udp_stamp) > len)
			return -1;
		struct pg_udp_stamp s;
		memcpy(&s, p + off + 8, sizeof(s));
		magic = s.magic;
		fw = s.flow_word;
		h->seq = s.seq;
		h->tsc = (uint64_t)s.tsc_hi << 32 | s.tsc_lo;
	} else if (proto == IPPROTO_TCP) {
		if (off + 20 > len) /* a header; data also needs the flow word (below) */
			return -1;
		const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(p + off);
		uint32_t doff = (th->data_off >> 4) * 4u;
		const uint8_t *o = p + off + 20;
		const bool ts = doff == 20 + PG_TS_OPT_LEN && off + doff <= len && o[0] == 1 &&
				o[1] == 1 && o[2] == 8 && o[3] == 10;
		magic = rte_be_to_cpu_16(th->rx_win);
		if (ts) {
			uint32_t v;
			memcpy(&v, o + 4, 4); /* not 4-byte aligned in the frame */
			h->tsval = rte_be_to_cpu_32(v);
		}
		if (th->tcp_flags & RTE_TCP_SYN_FLAG) {
			uint32_t sq = rte_be_to_cpu_32(th->sent_seq),
				 ak = rte_be_to_cpu_32(th->recv_ack);
			if (magic != want_magic)
				return -1;
			h->ctl = (th->tcp_flags & RTE_TCP_ACK_FLAG) ? PG_CTL_SYNACK : PG_CTL_SYN;
			h->fw = h->ctl == PG_CTL_SYN ? sq : ak - 1;
			h->seq = 0;
			h->tsc = 0;
			return 0;
		}
		if (!ts && doff == 20 && th->tcp_flags == RTE_TCP_ACK_FLAG) {
			if (magic != want_magic)
				return -1;
			h->ctl = PG_CTL_ACK;
			h->fw = rte_be_to_cpu_32(th->sent_seq) - 1;
			h->seq = 0;
			h->tsc = 0;
			return 0;
		}
		if (ts && th->tcp_flags == RTE_TCP_ACK_FLAG) {
			if (magic != want_magic)
				return -1;
			h->fw = rte_be_to_cpu_32(th->recv_ack);
			h->echo = 1;
			h->seq = 0;
			h->tsc = 0;
			return 0;
		}
		if (off + doff + 4 > len)
			return -1;
		memcpy(&fw, p + off + doff, 4);
		h->seq = rte_be_to_cpu_32(th->sent_seq); /* scaled for --rtt-emulate flows */
		h->tsc = (uint64_t)rte_be_to_cpu_16(th->tcp_urp) << 32 |
			 rte_be_to_cpu_32(th->recv_ack);
	} else {
		return -1;
	}
	if (magic != want_magic)
		return -1;
	h->fw = fw;
	return 0;
}

#endif
