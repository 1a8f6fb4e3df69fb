/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * parse: table-driven tests. Frames are built from templates by a builder that records
 * where it put every header; the expected metadata (and the expected drop reason for
 * every truncation of every header) is derived from that layout, not from the parser.
 * Failure cases first: header mutations, then every truncation point, then the same
 * with consistent IP lengths (so L4 / extension header truncation is reached), then full
 * frames, padding, real mbufs (single, chained, stripped VLAN tags) and the DSCP rewrite.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "skygate/meta.h"
#include "skygate/parse.h"
#include "skygate/parse_inline.h"

#include "fixture.h"

enum { FR_NONE, FR_DF, FR_FIRST, FR_LATER, FR_ATOMIC };

#define MAX_EXT 12

struct tmpl {
	const char *name;
	uint8_t n_vlan;		  /* tags in the frame, 0..3 (3 must drop) */
	uint16_t tpid[3];	  /* 0 = 0x8100 */
	uint16_t et;		  /* ethertype after the tags */
	uint8_t ip4_opt;	  /* IPv4 option bytes, multiple of 4, <= 40 */
	uint8_t frag;		  /* FR_*: IPv4 flags, or the mode of the IPv6 fragment header */
	uint8_t n_ext;		  /* IPv6 extension headers */
	uint8_t ext[MAX_EXT];	  /* their types, in order */
	uint8_t ext_len[MAX_EXT]; /* their length fields (fragment: unused) */
	uint8_t proto;		  /* upper-layer protocol */
	uint8_t tcp_opt;	  /* TCP option bytes, multiple of 4 */
	uint16_t payload;	  /* bytes after the L4 header */
	uint8_t dscp;
};

struct built {
	uint8_t b[20000];
	uint32_t len;
	uint8_t l3;
	uint32_t l3_off, hl; /* IP header length: IHL * 4 or 40 */
	uint32_t ip_len;     /* IPv4 total length / 40 + IPv6 payload length */
	uint32_t ext_off[MAX_EXT], ext_end[MAX_EXT];
	int later_at; /* index of the later-fragment header (IPv6), -1 */
	int later4;   /* IPv4 later fragment */
	uint32_t l4_off, l4_need;
	struct sky_meta exp; /* the whole frame's metadata */
};

/* ---------- frame builder ---------- */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t
cksum16(const uint8_t *p, uint32_t n)
{
	uint32_t s = 0;

	for (uint32_t i = 0; i + 1 < n; i += 2)
		s += get16(p + i);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t
ext_bytes(uint8_t type, uint8_t lenf)
{
	if (type == 44)
		return 8;
	if (type == 51)
		return ((uint32_t)lenf + 2) * 4;
	return ((uint32_t)lenf + 1) * 8;
}

static void
build(const struct tmpl *t, unsigned int idx, uint8_t dir, struct built *o)
{
	uint8_t *b = o->b;
	struct sky_meta *e = &o->exp;
	uint32_t off = 12, l4hdr = 0;
	uint16_t vid[3] = {0x123, 0xfed, 0x042};

	memset(o, 0, sizeof(*o));
	o->later_at = -1;
	memset(e, 0, sizeof(*e));
	e->dir = dir;
	e->sub_idx = SKY_SUB_NONE;
	for (int i = 0; i < 12; i++)
		b[i] = (uint8_t)(0x02 + i);
	for (unsigned int k = 0; k < t->n_vlan; k++) {
		put16(b + off, t->tpid[k] ? t->tpid[k] : 0x8100);
		/* PCP 5 and DEI set: the parser must keep only the VID */
		put16(b + off + 2, (uint16_t)(0xb000 | vid[k]));
		off += 4;
	}
	put16(b + off, t->et);
	off += 2;
	e->n_vlan = t->n_vlan > 2 ? 2 : t->n_vlan;
	e->outer_vid = t->n_vlan > 0 ? vid[0] : 0;
	e->inner_vid = t->n_vlan > 1 ? vid[1] : 0;
	e->l3_off = (uint16_t)off;
	o->l3_off = off;

	switch (t->proto) {
	case IPPROTO_TCP:
		l4hdr = 20 + t->tcp_opt;
		break;
	case IPPROTO_UDP:
		l4hdr = 8;
		break;
	case IPPROTO_SCTP:
		l4hdr = 12;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		l4hdr = 8;
		break;
	default:
		l4hdr = 0;
	}

	if (t->et == 0x0800) {
		uint8_t *ip = b + off;
		uint32_t hl = 20 + t->ip4_opt;
		uint16_t fr = 0;

		o->l3 = 4;
		o->hl = hl;
		ip[0] = (uint8_t)(0x40 | (hl / 4));
		ip[1] = (uint8_t)(t->dscp << 2 | 0x2); /* ECN bits must not leak into dscp */
		put16(ip + 4, (uint16_t)(0x1000 + idx));
		switch (t->frag) {
		case FR_DF:
			fr = 0x4000;
			break;
		case FR_FIRST:
			fr = 0x2000;
			break;
		case FR_LATER:
			fr = 0x2000 | 185;
			break;
		default:
			fr = 0;
		}
		put16(ip + 6, fr);
		ip[8] = 64;
		ip[9] = t->proto;
		ip[12] = 10;
		ip[13] = (uint8_t)idx;
		ip[14] = 2;
		ip[15] = 3;
		ip[16] = 192;
		ip[17] = 0;
		ip[18] = 2;
		ip[19] = (uint8_t)(77 + idx);
		memset(ip + 20, 1, t->ip4_opt); /* NOP options */
		off += hl;
		o->later4 = t->frag == FR_LATER;
		e->l3 = 4;
		e->dscp = t->dscp;
		e->proto = t->proto;
		memcpy(e->src, ip + 12, 4);
		memcpy(e->dst, ip + 16, 4);
		if (t->frag == FR_FIRST)
			e->flags = SKY_MF_FRAG | SKY_MF_FRAG_FIRST;
		else if (t->frag == FR_LATER)
			e->flags = SKY_MF_FRAG;
	} else if (t->et == 0x86dd) {
		uint8_t *ip = b + off;
		uint8_t tc = (uint8_t)(t->dscp << 2 | 0x1);
		uint8_t nh = t->n_ext ? t->ext[0] : t->proto;

		o->l3 = 6;
		o->hl = 40;
		ip[0] = (uint8_t)(0x60 | tc >> 4);
		ip[1] = (uint8_t)((tc & 0xf) << 4 | 0x1);
		ip[2] = 0x23;
		ip[3] = 0x45;
		ip[6] = nh;
		ip[7] = 64;
		for (int i = 0; i < 16; i++) {
			ip[8 + i] = (uint8_t)(0x20 + i + idx);
			ip[24 + i] = (uint8_t)(0xa0 + i);
		}
		ip[8] = 0x20;
		ip[9] = 0x01;
		off += 40;
		e->l3 = 6;
		e->dscp = t->dscp;
		e->proto = t->proto;
		memcpy(e->src, ip + 8, 16);
		memcpy(e->dst, ip + 24, 16);
		for (unsigned int i = 0; i < t->n_ext; i++) {
			uint8_t type = t->ext[i];
			uint32_t n = ext_bytes(type, t->ext_len[i]);
			uint8_t *h = b + off;

			memset(h, 0, n);
			h[0] = i + 1 < t->n_ext ? t->ext[i + 1] : t->proto;
			if (type == 44) {
				uint16_t fo = 0;

				if (t->frag == FR_FIRST)
					fo = 0x0001;
				else if (t->frag == FR_LATER)
					fo = (uint16_t)(185 << 3 | 1);
				put16(h + 2, fo);
				h[4] = 0xde;
				h[5] = 0xad;
				h[6] = 0xbe;
				h[7] = (uint8_t)idx;
				if (t->frag == FR_FIRST)
					e->flags |= SKY_MF_FRAG | SKY_MF_FRAG_FIRST;
				if (t->frag == FR_LATER && o->later_at < 0) {
					o->later_at = (int)i;
					e->flags |= SKY_MF_FRAG;
					e->proto = h[0];
				}
			} else {
				h[1] = t->ext_len[i];
				if (type == 51)
					memset(h + 4, 0xaa, n - 4); /* SPI, sequence, ICV */
				else if (n > 2)
					memset(h + 2, 0, n - 2); /* Pad1 options */
			}
			o->ext_off[i] = off;
			o->ext_end[i] = off + n;
			off += n;
		}
	} else {
		/* non-IP: an ARP-sized body */
		memset(b + off, 0x5a, 28);
		o->len = off + 28;
		e->pkt_len = o->len;
		return;
	}

	/* L4 */
	{
		uint8_t *h = b + off;

		o->l4_off = off;
		switch (t->proto) {
		case IPPROTO_TCP:
			put16(h, (uint16_t)(40000 + idx));
			put16(h + 2, 443);
			h[12] = (uint8_t)(((20 + t->tcp_opt) / 4) << 4);
			h[13] = 0x18;
			put16(h + 14, 65535);
			memset(h + 20, 1, t->tcp_opt);
			break;
		case IPPROTO_UDP:
			put16(h, 53);
			put16(h + 2, (uint16_t)(30000 + idx));
			put16(h + 4, (uint16_t)(8 + t->payload));
			break;
		case IPPROTO_SCTP:
			put16(h, 2905);
			put16(h + 2, (uint16_t)(36412 + idx));
			h[4] = 0x11;
			h[5] = 0x22;
			h[6] = 0x33;
			h[7] = 0x44;
			break;
		case IPPROTO_ICMP:
		case IPPROTO_ICMPV6:
			h[0] = 3;
			h[1] = 13;
			break;
		default:
			break;
		}
		off += l4hdr;
		for (unsigned int i = 0; i < t->payload; i++)
			b[off + i] = (uint8_t)(i * 7 + 1);
		off += t->payload;
	}
	o->len = off;
	o->ip_len = off - o->l3_off;
	if (o->l3 == 4) {
		uint8_t *ip = b + o->l3_off;

		put16(ip + 2, (uint16_t)o->ip_len);
		put16(ip + 10, 0);
		put16(ip + 10, cksum16(ip, o->hl));
	} else {
		put16(b + o->l3_off + 4, (uint16_t)(o->ip_len - 40));
	}
	e->pkt_len = o->len;
	e->ip_len = (uint16_t)o->ip_len;

	/* what the parser may read of L4 */
	if (o->later4 || o->later_at >= 0) {
		o->l4_need = 0;
		e->l4_off = 0;
		return;
	}
	e->l4_off = (uint16_t)o->l4_off;
	o->l4_need = 0;
	if (t->proto == IPPROTO_TCP || t->proto == IPPROTO_UDP || t->proto == IPPROTO_SCTP) {
		o->l4_need = l4hdr;
		e->flags |= SKY_MF_PORTS;
		e->sport = get16(b + o->l4_off);
		e->dport = get16(b + o->l4_off + 2);
	} else if ((t->proto == IPPROTO_ICMP && o->l3 == 4) ||
		   (t->proto == IPPROTO_ICMPV6 && o->l3 == 6)) {
		o->l4_need = 8;
		e->flags |= SKY_MF_ICMP;
		e->icmp_type = 3;
		e->icmp_code = 13;
	}
}

/*
 * Expected metadata for the first L bytes of the built frame whose IP length field says
 * iplen (IPv4 total length, or 40 + IPv6 payload length).
 */
static void
expect(const struct built *o, uint32_t L, uint32_t iplen, struct sky_meta *x)
{
	uint32_t end;
	unsigned int n_tag = 0;

	memset(x, 0, sizeof(*x));
	x->dir = o->exp.dir;
	x->sub_idx = SKY_SUB_NONE;
	x->pkt_len = L;
	if (L < 14)
		goto drop_eth;
	/* tags present in the built frame: derive from the layout */
	n_tag = (o->l3_off - 14) / 4;
	for (unsigned int k = 0; k < n_tag && k < 2; k++)
		if (L < 18 + 4 * k) {
			sky_meta_drop(x, SKY_DROP_VLAN_TRUNC);
			return;
		}
	if (n_tag > 2) {
		sky_meta_drop(x, SKY_DROP_VLAN_DEPTH);
		return;
	}
	if (o->l3 == 0) {
		*x = o->exp;
		x->pkt_len = L;
		return;
	}
	x->l3 = o->l3;
	if (o->l3 == 4) {
		if (L < o->l3_off + 20 || L < o->l3_off + o->hl) {
			sky_meta_drop(x, SKY_DROP_IP4_TRUNC);
			return;
		}
		if (iplen < o->hl || iplen > L - o->l3_off) {
			sky_meta_drop(x, SKY_DROP_IP4_TOTLEN);
			return;
		}
		end = o->l3_off + iplen;
	} else {
		if (L < o->l3_off + 40) {
			sky_meta_drop(x, SKY_DROP_IP6_TRUNC);
			return;
		}
		if (iplen > L - o->l3_off) {
			sky_meta_drop(x, SKY_DROP_IP6_PAYLEN);
			return;
		}
		end = o->l3_off + iplen;
		for (unsigned int i = 0; i < MAX_EXT && o->ext_end[i] != 0; i++) {
			if (i == SKY_PARSE_MAX_EXT) {
				sky_meta_drop(x, SKY_DROP_IP6_EXT_CHAIN);
				return;
			}
			if (o->ext_off[i] + 8 > end) {
				sky_meta_drop(x, SKY_DROP_IP6_EXT_TRUNC);
				return;
			}
			if ((int)i == o->later_at)
				break;
			if (o->ext_end[i] > end) {
				sky_meta_drop(x, SKY_DROP_IP6_EXT_TRUNC);
				return;
			}
		}
	}
	if (o->l4_need && o->l4_off + o->l4_need > end) {
		sky_meta_drop(x, SKY_DROP_L4_TRUNC);
		return;
	}
	*x = o->exp;
	x->pkt_len = L;
	x->ip_len = (uint16_t)iplen;
	return;
drop_eth:
	sky_meta_drop(x, SKY_DROP_ETH_TRUNC);
}

/* compare: a passed frame field by field and whole; a dropped one by what the contract
 * fixes for drops (verdict, reason, l3, dir, pkt_len, later-stage fields) */
static int
meta_differs(const struct sky_meta *g, const struct sky_meta *x, char *why, size_t n)
{
#define CMP(f)                                                                                     \
	do {                                                                                       \
		if (g->f != x->f) {                                                                \
			snprintf(why, n, #f ": got %lu want %lu", (unsigned long)g->f,             \
				 (unsigned long)x->f);                                             \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)
	CMP(verdict);
	CMP(reason);
	CMP(dir);
	CMP(l3);
	CMP(pkt_len);
	CMP(sub_idx);
	CMP(sub_id);
	CMP(plan);
	CMP(beam);
	CMP(sub_country);
	CMP(realm);
	CMP(remote_country);
	CMP(remote_flags);
	CMP(cls);
	if (x->verdict == SKY_V_DROP)
		return 0;
	CMP(proto);
	CMP(dscp);
	CMP(flags);
	CMP(n_vlan);
	CMP(outer_vid);
	CMP(inner_vid);
	CMP(l3_off);
	CMP(l4_off);
	CMP(sport);
	CMP(dport);
	CMP(icmp_type);
	CMP(icmp_code);
	CMP(ip_len);
#undef CMP
	if (memcmp(g->src, x->src, 16) || memcmp(g->dst, x->dst, 16)) {
		snprintf(why, n, "addresses differ");
		return 1;
	}
	if (memcmp(g, x, sizeof(*g))) {
		snprintf(why, n, "padding/other bytes differ");
		return 1;
	}
	return 0;
}

/* parse exactly L bytes from a heap copy of that size, so ASan sees any over-read */
static void
parse_exact(const uint8_t *f, uint32_t L, uint8_t dir, struct sky_meta *m)
{
	uint8_t *c = malloc(L ? L : 1);

	assert_non_null(c);
	memcpy(c, f, L);
	memset(m, 0xa5, sizeof(*m)); /* every field must be written */
	sky_parse_buf(L ? c : NULL, L, dir, m);
	free(c);
}

static void
check_one(const char *what, const char *name, uint32_t L, const uint8_t *f, uint8_t dir,
	  const struct sky_meta *x)
{
	struct sky_meta g, ref;
	char why[160];
	uint8_t *c;

	parse_exact(f, L, dir, &g);
	if (meta_differs(&g, x, why, sizeof(why)))
		fail_msg("%s %s len %u: %s (reason got %s want %s)", what, name, L, why,
			 sky_drop_name(g.reason), sky_drop_name(x->reason));
	/* the fast path and the complete parser agree to the byte */
	c = malloc(L ? L : 1);
	assert_non_null(c);
	memcpy(c, f, L);
	memset(&ref, 0x3c, sizeof(ref));
	sky_parse_frame_slow(L ? c : NULL, L, L, dir, &ref);
	free(c);
	if (memcmp(&g, &ref, sizeof(g)) != 0)
		fail_msg("%s %s len %u: fast path and complete parser differ", what, name, L);
}

/* ---------- the templates ---------- */

#define V4 0x0800
#define V6 0x86dd
#define ARP 0x0806
#define LLDP 0x88cc

/* special cases: options, fragments, extension headers and chains, odd TPIDs */
static const struct tmpl specials[] = {
	{"v4 opt4 tcp", 0, {0}, V4, .ip4_opt = 4, .proto = 6, .payload = 10, .dscp = 10},
	{"v4 opt40 udp", 1, {0}, V4, .ip4_opt = 40, .proto = 17, .payload = 3},
	{"v4 opt20 icmp qinq", 2, {0x88a8, 0x8100}, V4, .ip4_opt = 20, .proto = 1, .payload = 4},
	{"v4 tcp opts", 0, {0}, V4, .proto = 6, .tcp_opt = 12, .payload = 5, .dscp = 46},
	{"v4 tcp opts40", 1, {0}, V4, .proto = 6, .tcp_opt = 40, .payload = 0},
	{"v4 df tcp", 0, {0}, V4, .frag = FR_DF, .proto = 6, .payload = 20},
	{"v4 frag first tcp", 0, {0}, V4, .frag = FR_FIRST, .proto = 6, .payload = 8},
	{"v4 frag first udp vlan", 1, {0}, V4, .frag = FR_FIRST, .proto = 17, .payload = 8},
	{"v4 frag later tcp", 0, {0}, V4, .frag = FR_LATER, .proto = 6, .payload = 8},
	{"v4 frag later udp qinq", 2, {0x9100}, V4, .frag = FR_LATER, .proto = 17, .payload = 3},
	{"v4 frag first opt", 0, {0}, V4, .ip4_opt = 8, .frag = FR_FIRST, .proto = 17},
	{"v6 hbh tcp",
	 0,
	 {0},
	 V6,
	 .n_ext = 1,
	 .ext = {0},
	 .ext_len = {0},
	 .proto = 6,
	 .payload = 9},
	{"v6 hbh long udp", 1, {0}, V6, .n_ext = 1, .ext = {0}, .ext_len = {3}, .proto = 17},
	{"v6 rh udp",
	 0,
	 {0},
	 V6,
	 .n_ext = 1,
	 .ext = {43},
	 .ext_len = {2},
	 .proto = 17,
	 .payload = 4},
	{"v6 dst tcp", 2, {0x88a8}, V6, .n_ext = 1, .ext = {60}, .ext_len = {1}, .proto = 6},
	{"v6 ah tcp",
	 0,
	 {0},
	 V6,
	 .n_ext = 1,
	 .ext = {51},
	 .ext_len = {4},
	 .proto = 6,
	 .payload = 2},
	{"v6 ah odd udp", 0, {0}, V6, .n_ext = 1, .ext = {51}, .ext_len = {1}, .proto = 17},
	{"v6 frag first tcp",
	 0,
	 {0},
	 V6,
	 .frag = FR_FIRST,
	 .n_ext = 1,
	 .ext = {44},
	 .proto = 6,
	 .payload = 8},
	{"v6 frag first icmp6", 1, {0}, V6, .frag = FR_FIRST, .n_ext = 1, .ext = {44}, .proto = 58},
	{"v6 frag later udp",
	 0,
	 {0},
	 V6,
	 .frag = FR_LATER,
	 .n_ext = 1,
	 .ext = {44},
	 .proto = 17,
	 .payload = 16},
	{"v6 frag first twice udp",
	 0,
	 {0},
	 V6,
	 .frag = FR_FIRST,
	 .n_ext = 2,
	 .ext = {44, 44},
	 .proto = 17},
	{"v6 frag atomic udp", 0, {0}, V6, .frag = FR_ATOMIC, .n_ext = 1, .ext = {44}, .proto = 17},
	{"v6 chain hbh-dst-rh-frag-dst tcp",
	 1,
	 {0},
	 V6,
	 .frag = FR_FIRST,
	 .n_ext = 5,
	 .ext = {0, 60, 43, 44, 60},
	 .ext_len = {0, 1, 2, 0, 0},
	 .proto = 6,
	 .payload = 3},
	{"v6 chain hbh-frag later-dst",
	 0,
	 {0},
	 V6,
	 .frag = FR_LATER,
	 .n_ext = 3,
	 .ext = {0, 44, 60},
	 .ext_len = {0, 0, 0},
	 .proto = 6,
	 .payload = 3},
	{"v6 chain ah-dst sctp",
	 0,
	 {0},
	 V6,
	 .n_ext = 2,
	 .ext = {51, 60},
	 .ext_len = {4, 0},
	 .proto = 132},
	{"v6 chain 8 ext udp",
	 0,
	 {0},
	 V6,
	 .n_ext = 8,
	 .ext = {0, 60, 43, 60, 51, 60, 43, 60},
	 .ext_len = {0, 0, 1, 0, 2, 0, 1, 0},
	 .proto = 17,
	 .payload = 2},
	{"v6 chain 9 ext (drop)",
	 0,
	 {0},
	 V6,
	 .n_ext = 9,
	 .ext = {0, 60, 43, 60, 43, 60, 43, 60, 60},
	 .proto = 17},
	{"v6 chain 12 ext (drop)",
	 2,
	 {0},
	 V6,
	 .n_ext = 12,
	 .ext = {60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60},
	 .proto = 6},
	{"v6 ext nonext", 0, {0}, V6, .n_ext = 1, .ext = {60}, .proto = 59, .payload = 5},
	{"v6 long chain >256 tcp",
	 1,
	 {0},
	 V6,
	 .n_ext = 3,
	 .ext = {0, 60, 60},
	 .ext_len = {15, 15, 1},
	 .proto = 6,
	 .payload = 30},
	{"v6 icmp(v4 number)", 0, {0}, V6, .proto = 1, .payload = 8},
	{"v4 icmpv6(number)", 0, {0}, V4, .proto = 58, .payload = 8},
	{"v4 esp", 0, {0}, V4, .proto = 50, .payload = 24},
	{"v4 tcp no payload", 0, {0}, V4, .proto = 6},
	{"3 tags 8100", 3, {0x8100, 0x8100, 0x8100}, V4, .proto = 6},
	{"3 tags 88a8-8100-9100", 3, {0x88a8, 0x8100, 0x9100}, V6, .proto = 17},
	{"3 tags before arp", 3, {0x9100, 0x88a8, 0x8100}, ARP},
	{"arp", 0, {0}, ARP},
	{"arp vlan", 1, {0}, ARP},
	{"lldp qinq", 2, {0x88a8}, LLDP},
	{"vlan 9100 v4 udp", 1, {0x9100}, V4, .proto = 17, .payload = 1},
	{"vlan 88a8 single v6 tcp", 1, {0x88a8}, V6, .proto = 6, .payload = 1},
};

#define N_SPECIAL (sizeof(specials) / sizeof(specials[0]))
/* the matrix: 0/1/2 tags x IPv4/IPv6 x TCP/UDP/SCTP/ICMP(v6)/GRE */
#define N_MATRIX (3 * 2 * 5)
#define N_TMPL (N_MATRIX + N_SPECIAL)

static void
get_tmpl(unsigned int i, struct tmpl *t, char *name, size_t n)
{
	static const uint8_t p4[5] = {6, 17, 132, 1, 47}, p6[5] = {6, 17, 132, 58, 47};

	if (i >= N_MATRIX) {
		*t = specials[i - N_MATRIX];
		snprintf(name, n, "%s", t->name);
		return;
	}
	memset(t, 0, sizeof(*t));
	t->n_vlan = (uint8_t)(i / 10);
	t->tpid[0] = t->n_vlan == 2 ? 0x88a8 : 0x8100;
	t->tpid[1] = 0x8100;
	t->et = (i / 5) % 2 ? V6 : V4;
	t->proto = t->et == V4 ? p4[i % 5] : p6[i % 5];
	t->payload = (uint16_t)(i * 3 % 17);
	t->dscp = (uint8_t)(i * 5 % 64);
	snprintf(name, n, "%u tags, %s, proto %u", t->n_vlan, t->et == V4 ? "IPv4" : "IPv6",
		 t->proto);
	t->name = name;
}

static struct built *
build_idx(unsigned int i, char *name, size_t n)
{
	struct tmpl t;
	struct built *o = malloc(sizeof(*o));

	assert_non_null(o);
	get_tmpl(i, &t, name, n);
	build(&t, i, (uint8_t)(i & 1), o);
	return o;
}

/* ---------- failure cases first: mutated headers ---------- */

enum { AT_L3, AT_L4, AT_EXT0 };

struct mutation {
	const char *tmpl; /* name in specials[] */
	uint8_t at;	  /* AT_* base */
	uint8_t off;
	uint8_t width; /* 1 or 2 bytes, big-endian */
	int32_t value; /* < 0: the frame's own IP length + (value + 1000) (2 bytes) */
	uint8_t reason;
	const char *what;
};

#define RELLEN(d) (-1000 + (d))

static const struct mutation mutations[] = {
	{"v4 tcp no payload", AT_L3, 0, 1, 0x55, SKY_DROP_IP4_VERSION, "version 5"},
	{"v4 tcp no payload", AT_L3, 0, 1, 0x65, SKY_DROP_IP4_VERSION, "version 6 in IPv4"},
	{"v4 tcp no payload", AT_L3, 0, 1, 0x05, SKY_DROP_IP4_VERSION, "version 0"},
	{"v4 tcp no payload", AT_L3, 0, 1, 0x40, SKY_DROP_IP4_IHL, "ihl 0"},
	{"v4 tcp no payload", AT_L3, 0, 1, 0x41, SKY_DROP_IP4_IHL, "ihl 1"},
	{"v4 tcp no payload", AT_L3, 0, 1, 0x44, SKY_DROP_IP4_IHL, "ihl 4"},
	{"v4 tcp no payload", AT_L3, 0, 1, 0x4f, SKY_DROP_IP4_TRUNC, "ihl 15 beyond frame"},
	{"v4 tcp no payload", AT_L3, 2, 2, 0, SKY_DROP_IP4_TOTLEN, "total length 0"},
	{"v4 tcp no payload", AT_L3, 2, 2, 19, SKY_DROP_IP4_TOTLEN, "total length 19"},
	{"v4 tcp no payload", AT_L3, 2, 2, RELLEN(1), SKY_DROP_IP4_TOTLEN, "total length +1"},
	{"v4 tcp no payload", AT_L3, 2, 2, 0xffff, SKY_DROP_IP4_TOTLEN, "total length 65535"},
	{"v4 opt40 udp", AT_L3, 2, 2, 59, SKY_DROP_IP4_TOTLEN, "total length < ihl*4"},
	{"v4 opt40 udp", AT_L3, 2, 2, 60, SKY_DROP_L4_TRUNC, "total length = ihl*4, udp"},
	{"v4 esp", AT_L3, 2, 2, 20, SKY_DROP_NONE, "total length = ihl*4, esp"},
	{"v4 tcp no payload", AT_L4, 12, 1, 0x00, SKY_DROP_L4_TRUNC, "tcp doff 0"},
	{"v4 tcp no payload", AT_L4, 12, 1, 0x40, SKY_DROP_L4_TRUNC, "tcp doff 4"},
	{"v4 tcp no payload", AT_L4, 12, 1, 0x60, SKY_DROP_L4_TRUNC, "tcp doff 6 beyond"},
	{"v4 tcp no payload", AT_L4, 12, 1, 0xf0, SKY_DROP_L4_TRUNC, "tcp doff 15 beyond"},
	{"v4 frag later tcp", AT_L4, 12, 1, 0x00, SKY_DROP_NONE, "later fragment: no tcp check"},
	{"vlan 88a8 single v6 tcp", AT_L3, 0, 1, 0x40, SKY_DROP_IP6_VERSION, "version 4 in IPv6"},
	{"vlan 88a8 single v6 tcp", AT_L3, 0, 1, 0x70, SKY_DROP_IP6_VERSION, "version 7"},
	{"vlan 88a8 single v6 tcp", AT_L3, 4, 2, RELLEN(-39), SKY_DROP_IP6_PAYLEN, "payload +1"},
	{"vlan 88a8 single v6 tcp", AT_L3, 4, 2, 0xffff, SKY_DROP_IP6_PAYLEN, "payload 65535"},
	{"vlan 88a8 single v6 tcp", AT_L3, 4, 2, 0, SKY_DROP_L4_TRUNC, "payload 0, tcp"},
	{"vlan 88a8 single v6 tcp", AT_L4, 12, 1, 0x30, SKY_DROP_L4_TRUNC, "v6 tcp doff 3"},
	{"v6 hbh tcp", AT_EXT0, 1, 1, 0xff, SKY_DROP_IP6_EXT_TRUNC, "hbh length 255"},
	{"v6 ah tcp", AT_EXT0, 1, 1, 0xff, SKY_DROP_IP6_EXT_TRUNC, "ah length 255"},
	{"v6 hbh tcp", AT_EXT0, 0, 1, 59, SKY_DROP_NONE, "hbh then no-next"},
	{"v6 hbh tcp", AT_EXT0, 0, 1, 0, SKY_DROP_IP6_EXT_TRUNC, "hbh then hbh (garbage)"},
	{"v6 frag first tcp", AT_EXT0, 2, 2, 0x0008, SKY_DROP_NONE, "frag offset 1: later"},
	{"v4 tcp no payload", AT_L3, 6, 2, 0x0001, SKY_DROP_NONE, "frag offset 1: later"},
	{"v4 tcp no payload", AT_L3, 6, 2, 0x8000, SKY_DROP_NONE, "reserved flag: not a frag"},
	{"arp", AT_L3, 0, 1, 0x45, SKY_DROP_NONE, "arp body looks like ip"},
};

static const struct tmpl *
special_by_name(const char *name, unsigned int *idx)
{
	for (unsigned int i = 0; i < N_SPECIAL; i++)
		if (strcmp(specials[i].name, name) == 0) {
			*idx = N_MATRIX + i;
			return &specials[i];
		}
	fail_msg("no template %s", name);
	return NULL;
}

static void
test_malformed_headers(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++) {
		const struct mutation *mu = &mutations[i];
		unsigned int idx = 0;
		const struct tmpl *t = special_by_name(mu->tmpl, &idx);
		struct built *o = malloc(sizeof(*o));
		struct sky_meta g;
		uint32_t base, v;

		assert_non_null(o);
		build(t, idx, SKY_DIR_DOWN, o);
		base = mu->at == AT_L3 ? o->l3_off : mu->at == AT_L4 ? o->l4_off : o->ext_off[0];
		v = mu->value < 0 ? (uint32_t)((int32_t)o->ip_len + mu->value + 1000)
				  : (uint32_t)mu->value;
		if (mu->width == 2)
			put16(o->b + base + mu->off, (uint16_t)v);
		else
			o->b[base + mu->off] = (uint8_t)v;
		parse_exact(o->b, o->len, SKY_DIR_DOWN, &g);
		if (mu->reason == SKY_DROP_NONE) {
			if (g.verdict != SKY_V_PASS)
				fail_msg("%s / %s: dropped %s", mu->tmpl, mu->what,
					 sky_drop_name(g.reason));
		} else if (g.verdict != SKY_V_DROP || g.reason != mu->reason) {
			fail_msg("%s / %s: verdict %u reason %s, want %s", mu->tmpl, mu->what,
				 g.verdict, sky_drop_name(g.reason), sky_drop_name(mu->reason));
		}
		assert_int_equal(g.pkt_len, o->len);
		assert_int_equal(g.sub_idx, SKY_SUB_NONE);
		free(o);
	}
}

/* specific field facts of the mutations that pass */
static void
test_fragment_and_nonext_fields(void **state)
{
	unsigned int idx = 0;
	struct built *o = malloc(sizeof(*o));
	struct sky_meta g;

	(void)state;
	assert_non_null(o);
	/* IPv4 offset 1 without MF: a later fragment */
	build(special_by_name("v4 tcp no payload", &idx), idx, SKY_DIR_UP, o);
	put16(o->b + o->l3_off + 6, 0x0001);
	parse_exact(o->b, o->len, SKY_DIR_UP, &g);
	assert_int_equal(g.flags, SKY_MF_FRAG);
	assert_int_equal(g.l4_off, 0);
	assert_int_equal(g.sport, 0);
	assert_int_equal(g.proto, 6);
	/* every flag/offset bit: later fragments, first fragment, whole packets */
	{
		static const struct {
			uint16_t v4;
			uint8_t flags;
		} fv4[] = {
			{0x0001, SKY_MF_FRAG},
			{0x1000, SKY_MF_FRAG},
			{0x0100, SKY_MF_FRAG},
			{0x2001, SKY_MF_FRAG},
			{0x3fff, SKY_MF_FRAG},
			{0x5fff, SKY_MF_FRAG},
			{0x2000, SKY_MF_FRAG | SKY_MF_FRAG_FIRST | SKY_MF_PORTS},
			{0xa000, SKY_MF_FRAG | SKY_MF_FRAG_FIRST | SKY_MF_PORTS},
			{0x0000, SKY_MF_PORTS},
			{0x4000, SKY_MF_PORTS},
			{0x8000, SKY_MF_PORTS},
			{0xc000, SKY_MF_PORTS},
		};
		for (unsigned int k = 0; k < sizeof(fv4) / sizeof(fv4[0]); k++) {
			put16(o->b + o->l3_off + 6, fv4[k].v4);
			parse_exact(o->b, o->len, SKY_DIR_UP, &g);
			assert_int_equal(g.verdict, SKY_V_PASS);
			assert_int_equal(g.flags, fv4[k].flags);
			assert_int_equal(g.l4_off, fv4[k].flags & SKY_MF_PORTS ? o->l4_off : 0);
		}
	}
	/* IPv6 hop-by-hop then no-next-header: proto 59, l4_off after the ext header */
	build(special_by_name("v6 hbh tcp", &idx), idx, SKY_DIR_UP, o);
	o->b[o->ext_off[0]] = 59;
	parse_exact(o->b, o->len, SKY_DIR_UP, &g);
	assert_int_equal(g.verdict, SKY_V_PASS);
	assert_int_equal(g.proto, 59);
	assert_int_equal(g.l4_off, o->ext_end[0]);
	assert_int_equal(g.flags, 0);
	/* IPv6 fragment header: every offset bit makes a later fragment, M alone a first
	 * one, the reserved bits nothing (atomic fragment = whole packet) */
	build(special_by_name("v6 frag first tcp", &idx), idx, SKY_DIR_UP, o);
	for (unsigned int bit = 0; bit < 16; bit++) {
		uint16_t fo = (uint16_t)(1u << bit);
		uint8_t want = bit >= 3	  ? SKY_MF_FRAG
			       : bit == 0 ? SKY_MF_FRAG | SKY_MF_FRAG_FIRST | SKY_MF_PORTS
					  : SKY_MF_PORTS;

		put16(o->b + o->ext_off[0] + 2, fo);
		parse_exact(o->b, o->len, SKY_DIR_UP, &g);
		assert_int_equal(g.verdict, SKY_V_PASS);
		assert_int_equal(g.flags, want);
		assert_int_equal(g.proto, 6);
		assert_int_equal(g.l4_off, want & SKY_MF_PORTS ? o->l4_off : 0);
	}
	/* two fragment headers, the second a later fragment: a later fragment, not first */
	build(special_by_name("v6 frag first twice udp", &idx), idx, SKY_DIR_UP, o);
	put16(o->b + o->ext_off[1] + 2, 0x0008);
	parse_exact(o->b, o->len, SKY_DIR_UP, &g);
	assert_int_equal(g.verdict, SKY_V_PASS);
	assert_int_equal(g.flags, SKY_MF_FRAG);
	assert_int_equal(g.proto, 17);
	assert_int_equal(g.l4_off, 0);
	free(o);
}

/* every truncation point of every header of every template */
static void
test_truncation_every_point(void **state)
{
	char name[96];
	struct sky_meta x;

	(void)state;
	for (unsigned int i = 0; i < N_TMPL; i++) {
		struct built *o = build_idx(i, name, sizeof(name));

		for (uint32_t L = 0; L <= o->len; L++) {
			expect(o, L, o->ip_len, &x);
			check_one("truncated", name, L, o->b, o->exp.dir, &x);
		}
		free(o);
	}
}

/* the same with the IP length field following the cut, so ext/L4 truncation shows */
static void
test_truncation_consistent_length(void **state)
{
	char name[96];
	struct sky_meta x;
	int reached_l4 = 0, reached_ext = 0;

	(void)state;
	for (unsigned int i = 0; i < N_TMPL; i++) {
		struct built *o = build_idx(i, name, sizeof(name));

		if (o->l3 == 0 || (o->l3_off - 14) / 4 > 2) {
			free(o);
			continue;
		}
		for (uint32_t L = o->l3_off + (o->l3 == 4 ? 20 : 40); L < o->len; L++) {
			uint8_t save[2];
			uint32_t iplen = L - o->l3_off;
			uint32_t fo = o->l3_off + (o->l3 == 4 ? 2 : 4);

			memcpy(save, o->b + fo, 2);
			put16(o->b + fo, (uint16_t)(o->l3 == 4 ? iplen : iplen - 40));
			expect(o, L, iplen, &x);
			reached_l4 += x.reason == SKY_DROP_L4_TRUNC;
			reached_ext += x.reason == SKY_DROP_IP6_EXT_TRUNC;
			check_one("shrunk", name, L, o->b, o->exp.dir, &x);
			memcpy(o->b + fo, save, 2);
		}
		free(o);
	}
	/* the table must really exercise these reasons */
	assert_true(reached_l4 > 100);
	assert_true(reached_ext > 100);
}

/* whole frames: exact fields; Ethernet padding after the IP length is ignored */
static void
test_full_frames_and_padding(void **state)
{
	static const uint32_t pads[] = {1, 2, 6, 46};
	char name[96];
	struct sky_meta x;
	unsigned int n_pass = 0, n_ports = 0, n_icmp = 0, n_frag = 0;

	(void)state;
	for (unsigned int i = 0; i < N_TMPL; i++) {
		struct built *o = build_idx(i, name, sizeof(name));

		expect(o, o->len, o->ip_len, &x);
		check_one("full", name, o->len, o->b, o->exp.dir, &x);
		if (x.verdict == SKY_V_PASS) {
			n_pass++;
			n_ports += !!(x.flags & SKY_MF_PORTS);
			n_icmp += !!(x.flags & SKY_MF_ICMP);
			n_frag += !!(x.flags & SKY_MF_FRAG);
		}
		for (unsigned int k = 0; k < sizeof(pads) / sizeof(pads[0]); k++) {
			memset(o->b + o->len, 0, pads[k]);
			expect(o, o->len + pads[k], o->ip_len, &x);
			check_one("padded", name, o->len + pads[k], o->b, o->exp.dir, &x);
		}
		free(o);
	}
	assert_true(n_pass > 50);
	assert_true(n_ports > 30);
	assert_true(n_icmp >= 8);
	assert_true(n_frag >= 8);
}

/* a few facts stated directly, independent of the builder's expectation */
static void
test_known_values(void **state)
{
	/* 802.1ad 0x0abc / 802.1Q 0x0123, IPv4 DSCP 46 ECN 1, UDP 5060 -> 53 */
	static const uint8_t f[] = {
		0,    1,    2,	  3,	4,    5,    6,	  7,	8,    9,    10,	  11,	0x88,
		0xa8, 0xea, 0xbc, 0x81, 0x00, 0x01, 0x23, 0x08, 0x00, 0x45, 0xb9, 0x00, 0x1c,
		0,    0,    0x40, 0,	64,   17,   0,	  0,	198,  51,   100,  7,	203,
		0,    113,  9,	  0x13, 0xc4, 0x00, 0x35, 0x00, 0x08, 0,    0,
	};
	struct sky_meta g;
	static const uint8_t src[16] = {198, 51, 100, 7}, dst[16] = {203, 0, 113, 9};

	(void)state;
	parse_exact(f, sizeof(f), SKY_DIR_UP, &g);
	assert_int_equal(g.verdict, SKY_V_PASS);
	assert_int_equal(g.l3, 4);
	assert_int_equal(g.n_vlan, 2);
	assert_int_equal(g.outer_vid, 0xabc);
	assert_int_equal(g.inner_vid, 0x123);
	assert_int_equal(g.l3_off, 22);
	assert_int_equal(g.l4_off, 42);
	assert_int_equal(g.dscp, 46);
	assert_int_equal(g.proto, 17);
	assert_int_equal(g.sport, 5060);
	assert_int_equal(g.dport, 53);
	assert_int_equal(g.flags, SKY_MF_PORTS);
	assert_int_equal(g.ip_len, 28);
	assert_int_equal(g.pkt_len, sizeof(f));
	assert_memory_equal(g.src, src, 16);
	assert_memory_equal(g.dst, dst, 16);
	assert_int_equal(g.sub_idx, SKY_SUB_NONE);
	assert_int_equal(g.dir, SKY_DIR_UP);
}

/* random header corruption of every template (fixed seed): the fast path agrees with
 * the complete parser, offsets stay inside the frame (under ASan: no over-read) */
static void
test_random_corruption(void **state)
{
	char name[96];
	uint32_t seed = 0x9e3779b9;
	unsigned int n_drop = 0, n_pass = 0;

	(void)state;
	for (unsigned int i = 0; i < N_TMPL; i++) {
		struct built *o = build_idx(i, name, sizeof(name));

		for (unsigned int r = 0; r < 3000; r++) {
			uint8_t f[600];
			uint32_t L = o->len, flips;
			struct sky_meta g, ref;
			uint8_t *c;

			memcpy(f, o->b, o->len);
			seed = seed * 1664525u + 1013904223u;
			flips = 1 + (seed >> 28) % 3;
			for (uint32_t k = 0; k < flips; k++) {
				seed = seed * 1664525u + 1013904223u;
				f[o->l3_off - 2 + (seed >> 8) % (L - o->l3_off + 2)] =
					(uint8_t)seed;
			}
			if ((seed >> 20) & 1)
				L -= (seed >> 21) % L;
			c = malloc(L ? L : 1);
			assert_non_null(c);
			memcpy(c, f, L);
			sky_parse_buf(L ? c : NULL, L, SKY_DIR_UP, &g);
			sky_parse_frame_slow(L ? c : NULL, L, L, SKY_DIR_UP, &ref);
			free(c);
			if (memcmp(&g, &ref, sizeof(g)))
				fail_msg("%s corruption %u: fast path and complete parser differ",
					 name, r);
			assert_true(g.l3_off <= L && g.l4_off <= L && g.pkt_len == L);
			if (g.verdict == SKY_V_DROP)
				n_drop++;
			else
				n_pass++;
		}
		free(o);
	}
	assert_true(n_drop > 1000 && n_pass > 1000);
}

/* an IPv6 packet whose 40 + payload length does not fit ip_len (u16) saturates it */
static void
test_ip6_len_saturates(void **state)
{
	unsigned int idx = 0;
	struct built *o = malloc(sizeof(*o));
	uint32_t L;
	uint8_t *f;
	struct sky_meta g;

	(void)state;
	assert_non_null(o);
	build(special_by_name("vlan 88a8 single v6 tcp", &idx), idx, SKY_DIR_UP, o);
	L = o->l3_off + 40 + 65535;
	f = calloc(1, L);
	assert_non_null(f);
	memcpy(f, o->b, o->len);
	put16(f + o->l3_off + 4, 65535);
	parse_exact(f, L, SKY_DIR_UP, &g);
	assert_int_equal(g.verdict, SKY_V_PASS);
	assert_int_equal(g.ip_len, 65535);
	assert_int_equal(g.pkt_len, L);
	assert_int_equal(g.sport, o->exp.sport);
	free(f);
	free(o);
}

/* ---------- real mbufs ---------- */

static struct rte_mbuf *
mk_mbuf(const uint8_t *f, uint32_t len)
{
	struct rte_mbuf *m = sky_fx_mbuf_bytes(sky_fx_pool, f, len);

	assert_non_null(m);
	return m;
}

/* cuts at the given points (ascending, each in 1..len-1) into a chain */
static struct rte_mbuf *
mk_chain(const uint8_t *f, uint32_t len, const uint32_t *cuts, unsigned int n_cuts)
{
	struct rte_mbuf *head = NULL;
	uint32_t from = 0;

	for (unsigned int i = 0; i <= n_cuts; i++) {
		uint32_t to = i < n_cuts ? cuts[i] : len;
		struct rte_mbuf *s = mk_mbuf(f + from, to - from);

		if (head == NULL)
			head = s;
		else
			assert_int_equal(rte_pktmbuf_chain(head, s), 0);
		from = to;
	}
	return head;
}

static void
test_burst_single_segment(void **state)
{
	struct rte_mbuf *pkts[SKY_BURST];
	struct sky_meta meta[SKY_BURST], ref;
	struct built *o[SKY_BURST];
	char name[SKY_BURST][96];
	char why[160];

	(void)state;
	for (unsigned int base = 0; base < N_TMPL; base += SKY_BURST) {
		uint16_t n = (uint16_t)(N_TMPL - base < SKY_BURST ? N_TMPL - base : SKY_BURST);

		for (uint16_t i = 0; i < n; i++) {
			o[i] = build_idx(base + i, name[i], sizeof(name[i]));
			pkts[i] = mk_mbuf(o[i]->b, o[i]->len);
		}
		memset(meta, 0xa5, sizeof(meta));
		sky_parse_burst(pkts, meta, n, SKY_DIR_DOWN);
		for (uint16_t i = 0; i < n; i++) {
			struct sky_meta x;

			sky_parse_buf(o[i]->b, o[i]->len, SKY_DIR_DOWN, &ref);
			assert_memory_equal(&meta[i], &ref, sizeof(ref));
			expect(o[i], o[i]->len, o[i]->ip_len, &x);
			x.dir = SKY_DIR_DOWN;
			if (meta_differs(&meta[i], &x, why, sizeof(why)))
				fail_msg("burst %s: %s", name[i], why);
			rte_pktmbuf_free(pkts[i]);
			free(o[i]);
		}
	}
	/* every burst size (the prefetch loop has a head, a body and a tail) */
	for (uint16_t n = 1; n <= SKY_BURST; n++) {
		for (uint16_t i = 0; i < n; i++) {
			o[i] = build_idx((n * 7u + i * 13u) % N_TMPL, name[i], sizeof(name[i]));
			pkts[i] = mk_mbuf(o[i]->b, o[i]->len);
		}
		memset(meta, 0xa5, sizeof(meta));
		sky_parse_burst(pkts, meta, n, SKY_DIR_UP);
		for (uint16_t i = 0; i < n; i++) {
			sky_parse_buf(o[i]->b, o[i]->len, SKY_DIR_UP, &ref);
			if (memcmp(&meta[i], &ref, sizeof(ref)))
				fail_msg("burst of %u, packet %u (%s) differs", n, i, name[i]);
			rte_pktmbuf_free(pkts[i]);
			free(o[i]);
		}
		if (n < SKY_BURST)
			assert_int_equal(meta[n].verdict, 0xa5); /* nothing past n written */
	}
	/* an empty burst touches nothing */
	memset(meta, 0xa5, sizeof(meta));
	sky_parse_burst(pkts, meta, 0, SKY_DIR_UP);
	assert_int_equal(meta[0].verdict, 0xa5);
}

/* chained mbufs: every 2-segment split of every template, and some 3-segment ones,
 * give the same metadata as the contiguous frame */
static void
test_burst_chained(void **state)
{
	char name[96];
	struct sky_meta got[SKY_BURST], ref;
	struct rte_mbuf *pkts[SKY_BURST];
	unsigned int n_chains = 0;

	(void)state;
	for (unsigned int i = 0; i < N_TMPL; i++) {
		struct built *o = build_idx(i, name, sizeof(name));

		sky_parse_buf(o->b, o->len, SKY_DIR_UP, &ref);
		for (uint32_t cut = 1; cut < o->len; cut += SKY_BURST) {
			uint16_t n = 0;

			for (uint32_t c = cut; c < o->len && n < SKY_BURST; c++, n++)
				pkts[n] = mk_chain(o->b, o->len, &c, 1);
			sky_parse_burst(pkts, got, n, SKY_DIR_UP);
			for (uint16_t k = 0; k < n; k++) {
				if (memcmp(&got[k], &ref, sizeof(ref)))
					fail_msg("%s split at %u: differs from contiguous (%s vs "
						 "%s)",
						 name, cut + k, sky_drop_name(got[k].reason),
						 sky_drop_name(ref.reason));
				assert_int_equal(pkts[k]->nb_segs, 2);
				rte_pktmbuf_free(pkts[k]);
				n_chains++;
			}
		}
		if (o->len > 30) {
			uint32_t cuts[2] = {13, o->len - 7};

			pkts[0] = mk_chain(o->b, o->len, cuts, 2);
			sky_parse_burst(pkts, got, 1, SKY_DIR_UP);
			assert_memory_equal(&got[0], &ref, sizeof(ref));
			rte_pktmbuf_free(pkts[0]);
		}
		free(o);
	}
	assert_true(n_chains > 3000);
}

/* the long IPv6 chain needs more than SKY_PARSE_LINEAR bytes; chained, it must pass */
static void
test_chained_long_headers(void **state)
{
	unsigned int idx = 0;
	struct built *o = malloc(sizeof(*o));
	struct rte_mbuf *m;
	struct sky_meta g;
	uint32_t cut = 100;

	(void)state;
	assert_non_null(o);
	build(special_by_name("v6 long chain >256 tcp", &idx), idx, SKY_DIR_UP, o);
	assert_true(o->l4_off + 20 > SKY_PARSE_LINEAR);
	m = mk_chain(o->b, o->len, &cut, 1);
	sky_parse_burst(&m, &g, 1, SKY_DIR_UP);
	assert_int_equal(g.verdict, SKY_V_PASS);
	assert_int_equal(g.l4_off, o->l4_off);
	assert_int_equal(g.flags, SKY_MF_PORTS);
	assert_int_equal(g.sport, o->exp.sport);
	rte_pktmbuf_free(m);
	/* a real truncation past the window is still a drop: cut the ext length field */
	o->b[o->ext_off[2] + 1] = 200;
	m = mk_chain(o->b, o->len, &cut, 1);
	sky_parse_burst(&m, &g, 1, SKY_DIR_UP);
	assert_int_equal(g.verdict, SKY_V_DROP);
	assert_int_equal(g.reason, SKY_DROP_IP6_EXT_TRUNC);
	rte_pktmbuf_free(m);
	free(o);
}

struct strip_case {
	const char *tmpl;
	uint64_t flags;
	uint16_t tci, tci_outer;
	uint8_t n_vlan;
	uint16_t outer, inner;
	uint8_t reason;
};

static void
test_stripped_vlan(void **state)
{
	static const struct strip_case cases[] = {
		/* failure first: too many tags in total */
		{"v4 frag first udp vlan",
		 RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ |
			 RTE_MBUF_F_RX_QINQ_STRIPPED,
		 0x0007, 0x2009, 0, 0, 0, SKY_DROP_VLAN_DEPTH},
		{"v4 opt20 icmp qinq", RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED, 0x0055, 0,
		 0, 0, 0, SKY_DROP_VLAN_DEPTH},
		{"v4 esp", RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED, 0xe00a, 0, 1, 0x00a, 0,
		 SKY_DROP_NONE},
		{"v4 esp",
		 RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ |
			 RTE_MBUF_F_RX_QINQ_STRIPPED,
		 0x0007, 0x2009, 2, 0x009, 0x007, SKY_DROP_NONE},
		/* only the outer one stripped: the inner is still in the frame */
		{"v4 frag first udp vlan",
		 RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_QINQ | RTE_MBUF_F_RX_QINQ_STRIPPED, 0x0123,
		 0x0444, 2, 0x444, 0x123, SKY_DROP_NONE},
		{"arp vlan", RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED, 0x0777, 0, 2, 0x777,
		 0x123, SKY_DROP_NONE},
		/* RX_VLAN without STRIPPED: the tag is still in the data, nothing added */
		{"arp vlan", RTE_MBUF_F_RX_VLAN, 0x0123, 0, 1, 0x123, 0, SKY_DROP_NONE},
	};
	(void)state;
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct strip_case *c = &cases[i];
		unsigned int idx = 0;
		struct built *o = malloc(sizeof(*o));
		struct rte_mbuf *m;
		struct sky_meta g;

		assert_non_null(o);
		build(special_by_name(c->tmpl, &idx), idx, SKY_DIR_DOWN, o);
		m = mk_mbuf(o->b, o->len);
		m->ol_flags = c->flags;
		m->vlan_tci = c->tci;
		m->vlan_tci_outer = c->tci_outer;
		sky_parse_burst(&m, &g, 1, SKY_DIR_DOWN);
		if (c->reason != SKY_DROP_NONE) {
			assert_int_equal(g.verdict, SKY_V_DROP);
			assert_int_equal(g.reason, c->reason);
		} else {
			struct sky_meta x = o->exp;

			x.n_vlan = c->n_vlan;
			x.outer_vid = c->outer;
			x.inner_vid = c->inner;
			assert_memory_equal(&g, &x, sizeof(x));
		}
		rte_pktmbuf_free(m);
		free(o);
	}
}

/* ---------- DSCP rewrite ---------- */

static void
test_set_dscp_refused(void **state)
{
	unsigned int idx = 0;
	struct built *o = malloc(sizeof(*o));
	struct rte_mbuf *m;
	struct sky_meta g, saved;

	(void)state;
	assert_non_null(o);
	build(special_by_name("v4 tcp no payload", &idx), idx, SKY_DIR_UP, o);
	m = mk_mbuf(o->b, o->len);
	sky_parse_burst(&m, &g, 1, SKY_DIR_UP);
	assert_int_equal(sky_parse_set_dscp(m, &g, 64), -EINVAL);
	assert_int_equal(sky_parse_set_dscp(m, &g, 255), -EINVAL);
	saved = g;
	sky_meta_drop(&g, SKY_DROP_POLICY);
	assert_int_equal(sky_parse_set_dscp(m, &g, 10), -EINVAL);
	g = saved;
	g.l3_off = (uint16_t)(o->len - 1); /* header would run past the frame */
	assert_int_equal(sky_parse_set_dscp(m, &g, 10), -EINVAL);
	assert_memory_equal(rte_pktmbuf_mtod(m, uint8_t *), o->b, o->len);
	rte_pktmbuf_free(m);

	build(special_by_name("arp", &idx), idx, SKY_DIR_UP, o);
	m = mk_mbuf(o->b, o->len);
	sky_parse_burst(&m, &g, 1, SKY_DIR_UP);
	assert_int_equal(g.l3, 0);
	assert_int_equal(sky_parse_set_dscp(m, &g, 10), -EINVAL);
	assert_memory_equal(rte_pktmbuf_mtod(m, uint8_t *), o->b, o->len);
	rte_pktmbuf_free(m);
	free(o);
}

static void
test_set_dscp(void **state)
{
	static const char *const names[] = {"v4 tcp no payload", "v4 opt40 udp",
					    "v4 opt20 icmp qinq", "v6 hbh tcp",
					    "vlan 88a8 single v6 tcp"};
	static const uint32_t cuts[] = {0, 15, 16, 23, 24, 25, 26};

	(void)state;
	for (unsigned int ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++) {
		unsigned int idx = 0;
		struct built *o = malloc(sizeof(*o));

		assert_non_null(o);
		build(special_by_name(names[ni], &idx), idx, SKY_DIR_UP, o);
		for (unsigned int ci = 0; ci < sizeof(cuts) / sizeof(cuts[0]); ci++) {
			for (unsigned int d = 0; d < 64; d++) {
				uint32_t cut = o->l3_off + cuts[ci] - 14;
				struct rte_mbuf *m = cuts[ci] ? mk_chain(o->b, o->len, &cut, 1)
							      : mk_mbuf(o->b, o->len);
				uint8_t hdr[64], flat[600];
				const uint8_t *p;
				struct sky_meta g, again;

				/* vary the other header bytes so the checksum arithmetic is
				 * exercised */
				sky_parse_burst(&m, &g, 1, SKY_DIR_UP);
				assert_int_equal(g.verdict, SKY_V_PASS);
				assert_int_equal(sky_parse_set_dscp(m, &g, (uint8_t)d), 0);
				assert_int_equal(g.dscp, d);
				p = rte_pktmbuf_read(m, 0, o->len, flat);
				assert_non_null(p);
				/* only the DSCP bits (and the IPv4 checksum) changed */
				if (o->l3 == 4) {
					uint16_t ck;

					assert_int_equal(p[o->l3_off + 1] >> 2, d);
					assert_int_equal(p[o->l3_off + 1] & 3,
							 o->b[o->l3_off + 1] & 3);
					memcpy(hdr, p + o->l3_off, o->hl);
					ck = (uint16_t)(hdr[10] << 8 | hdr[11]);
					hdr[10] = hdr[11] = 0;
					assert_int_equal(rte_be_to_cpu_16(rte_ipv4_cksum(
								 (const struct rte_ipv4_hdr *)hdr)),
							 ck);
					for (uint32_t k = 0; k < o->len; k++)
						if (k != o->l3_off + 1 && k != o->l3_off + 10 &&
						    k != o->l3_off + 11)
							assert_int_equal(p[k], o->b[k]);
				} else {
					uint8_t tc = (uint8_t)((p[o->l3_off] & 0xf) << 4 |
							       p[o->l3_off + 1] >> 4);

					assert_int_equal(tc >> 2, d);
					assert_int_equal(tc & 3, 1); /* ECN kept */
					assert_int_equal(p[o->l3_off] >> 4, 6);
					assert_int_equal(p[o->l3_off + 1] & 0xf,
							 o->b[o->l3_off + 1] & 0xf);
					for (uint32_t k = 0; k < o->len; k++)
						if (k != o->l3_off && k != o->l3_off + 1)
							assert_int_equal(p[k], o->b[k]);
				}
				/* and the rewritten packet parses to the new DSCP */
				sky_parse_buf(p, o->len, SKY_DIR_UP, &again);
				assert_int_equal(again.dscp, d);
				rte_pktmbuf_free(m);
			}
		}
		free(o);
	}
}

/* checksum update against a full recompute over many different headers */
static void
test_set_dscp_checksum_sweep(void **state)
{
	unsigned int idx = 0;
	struct built *o = malloc(sizeof(*o));
	uint32_t seed = 12345;

	(void)state;
	assert_non_null(o);
	build(special_by_name("v4 tcp no payload", &idx), idx, SKY_DIR_UP, o);
	for (unsigned int r = 0; r < 20000; r++) {
		uint8_t *ip = o->b + o->l3_off;
		struct rte_mbuf *m;
		struct sky_meta g;
		uint8_t *q;
		uint16_t ck;

		/* random id, ttl, addresses and tos, valid checksum */
		for (unsigned int k = 4; k < 20; k++) {
			seed = seed * 1103515245u + 12345u;
			if (k != 6 && k != 7 && k != 9 && k != 10 && k != 11)
				ip[k] = (uint8_t)(seed >> 16);
		}
		ip[1] = (uint8_t)(seed >> 8);
		put16(ip + 10, 0);
		put16(ip + 10, cksum16(ip, 20));
		m = mk_mbuf(o->b, o->len);
		sky_parse_burst(&m, &g, 1, SKY_DIR_UP);
		assert_int_equal(sky_parse_set_dscp(m, &g, (uint8_t)(seed >> 24) & 63), 0);
		q = rte_pktmbuf_mtod_offset(m, uint8_t *, o->l3_off);
		ck = (uint16_t)(q[10] << 8 | q[11]);
		/* a correct header sums to 0xffff (rte_raw_cksum over it, checksum included) */
		assert_int_equal(rte_raw_cksum(q, 20), 0xffff);
		q[10] = q[11] = 0;
		assert_int_equal(rte_be_to_cpu_16(rte_ipv4_cksum((const struct rte_ipv4_hdr *)q)),
				 ck);
		rte_pktmbuf_free(m);
	}
	free(o);
}

int
main(void)
{
	const struct CMUnitTest plain[] = {
		cmocka_unit_test(test_malformed_headers),
		cmocka_unit_test(test_fragment_and_nonext_fields),
		cmocka_unit_test(test_truncation_every_point),
		cmocka_unit_test(test_truncation_consistent_length),
		cmocka_unit_test(test_full_frames_and_padding),
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_ip6_len_saturates),
		cmocka_unit_test(test_random_corruption),
	};
	const struct CMUnitTest mbufs[] = {
		cmocka_unit_test(test_set_dscp_refused),
		cmocka_unit_test(test_stripped_vlan),
		cmocka_unit_test(test_chained_long_headers),
		cmocka_unit_test(test_burst_single_segment),
		cmocka_unit_test(test_burst_chained),
		cmocka_unit_test(test_set_dscp),
		cmocka_unit_test(test_set_dscp_checksum_sweep),
	};
	int rc = cmocka_run_group_tests_name("parse_buf", plain, NULL, NULL);

	sky_fx_group = (struct sky_fx_group){"test_parse", {.pool_mbufs = 2047}};
	return rc | cmocka_run_group_tests_name("parse_mbuf", mbufs, sky_fx_group_setup,
						sky_fx_group_teardown);
}
