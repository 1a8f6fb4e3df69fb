/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the parser: any byte string is a frame. ASan catches reads past
 * the frame (the input buffer is exactly size bytes); the invariants below catch
 * metadata that later stages would trust wrongly. The fast path must agree byte for
 * byte with the complete parser (sky_parse_frame_slow). The same frame is also parsed
 * through the linear-window path of chained mbufs (cap < frame length), which must
 * agree with the whole-frame parse or report a truncation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/meta.h"
#include "skygate/parse.h"
#include "skygate/parse_inline.h"

/* the libraries are built with -fsanitize=fuzzer-no-link (tools/run), so the parser's
 * out-of-line part (lib/parse/parse_dp.c) is covered where it is linked from */

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

static int
is_trunc(uint8_t r)
{
	return r == SKY_DROP_ETH_TRUNC || r == SKY_DROP_VLAN_TRUNC || r == SKY_DROP_IP4_TRUNC ||
	       r == SKY_DROP_IP6_TRUNC || r == SKY_DROP_IP6_EXT_TRUNC || r == SKY_DROP_L4_TRUNC;
}

static void
check_invariants(const uint8_t *d, size_t size, const struct sky_meta *m, uint8_t dir)
{
	CHECK(m->dir == dir);
	CHECK(m->pkt_len == size);
	CHECK(m->l3_off <= size);
	CHECK(m->l4_off <= size);
	CHECK(m->l3 == 0 || m->l3 == 4 || m->l3 == 6);
	CHECK(m->n_vlan <= 2);
	CHECK(m->sub_idx == SKY_SUB_NONE && m->sub_id == 0 && m->plan == 0 && m->beam == 0);
	CHECK(m->sub_country == 0 && m->realm == 0 && m->remote_country == 0);
	CHECK(m->remote_flags == 0 && m->cls == 0);
	if (m->verdict == SKY_V_DROP) {
		CHECK(m->reason > SKY_DROP_NONE && m->reason <= SKY_DROP_L4_TRUNC);
		return;
	}
	CHECK(m->verdict == SKY_V_PASS && m->reason == SKY_DROP_NONE);
	CHECK(m->n_vlan != 0 || (m->outer_vid == 0 && m->inner_vid == 0));
	CHECK(m->l3_off == 14 + 4 * m->n_vlan);
	if (m->l3 == 0) {
		CHECK(m->flags == 0 && m->l4_off == 0 && m->ip_len == 0);
		return;
	}
	CHECK(m->ip_len <= size - m->l3_off);
	CHECK(m->dscp < 64);
	CHECK(!((m->flags & SKY_MF_PORTS) && (m->flags & SKY_MF_ICMP)));
	CHECK(!(m->flags & SKY_MF_FRAG_FIRST) || (m->flags & SKY_MF_FRAG));
	if ((m->flags & SKY_MF_FRAG) && !(m->flags & SKY_MF_FRAG_FIRST))
		CHECK(m->l4_off == 0 && !(m->flags & (SKY_MF_PORTS | SKY_MF_ICMP)));
	else
		CHECK(m->l4_off >= m->l3_off + (m->l3 == 4 ? 20 : 40));
	if (m->flags & SKY_MF_PORTS) {
		CHECK(m->proto == 6 || m->proto == 17 || m->proto == 132);
		CHECK(m->l4_off + 8u <= m->l3_off + (uint32_t)m->ip_len);
		CHECK(m->sport == (d[m->l4_off] << 8 | d[m->l4_off + 1]));
		CHECK(m->dport == (d[m->l4_off + 2] << 8 | d[m->l4_off + 3]));
	} else {
		CHECK(m->sport == 0 && m->dport == 0);
	}
	if (m->flags & SKY_MF_ICMP) {
		CHECK((m->l3 == 4 && m->proto == 1) || (m->l3 == 6 && m->proto == 58));
		CHECK(m->icmp_type == d[m->l4_off] && m->icmp_code == d[m->l4_off + 1]);
	}
	if (m->l3 == 4) {
		static const uint8_t zero[12];

		CHECK(memcmp(m->src, d + m->l3_off + 12, 4) == 0);
		CHECK(memcmp(m->src + 4, zero, 12) == 0 && memcmp(m->dst + 4, zero, 12) == 0);
	} else {
		CHECK(memcmp(m->src, d + m->l3_off + 8, 16) == 0);
	}
}

/* parse one frame (exact-size heap copy, so any over-read is caught) and check it */
static void
run_frame(const uint8_t *data, size_t size)
{
	uint8_t dir = (uint8_t)(size & 1);
	struct sky_meta m, w;
	uint8_t *f = malloc(size ? size : 1);

	if (f == NULL)
		return;
	memcpy(f, data, size);
	memset(&m, 0x5a, sizeof(m));
	sky_parse_buf(size ? f : NULL, (uint32_t)size, dir, &m);
	check_invariants(f, size, &m, dir);
	/* the fast path (sky_parse_buf) and the complete parser agree to the byte */
	memset(&w, 0x3c, sizeof(w));
	sky_parse_frame_slow(size ? f : NULL, (uint32_t)size, (uint32_t)size, dir, &w);
	CHECK(memcmp(&w, &m, sizeof(m)) == 0);

	/* the chained-mbuf window: the first SKY_PARSE_LINEAR bytes of a longer frame */
	if (size > SKY_PARSE_LINEAR) {
		memset(&w, 0x5a, sizeof(w));
		sky_parse_frame_slow(f, SKY_PARSE_LINEAR, (uint32_t)size, dir, &w);
		CHECK(memcmp(&w, &m, sizeof(m)) == 0 ||
		      (w.verdict == SKY_V_DROP && is_trunc(w.reason)));
	}
	free(f);
}

/*
 * Valid skeleton frames, so a short run already mutates deep headers: Ethernet with 0-2
 * tags, IPv4 (options) or IPv6 (extension chains), TCP/UDP/ICMP.
 */
#define N_SKEL 6

static size_t
skeleton(unsigned int sel, uint8_t *b)
{
	static const uint8_t eth_v4[] = {8, 0}, eth_v6[] = {0x86, 0xdd};
	size_t o = 12, ip, l4;
	unsigned int tags = sel % 3, v6 = sel & 1;
	uint8_t proto = sel < 2 ? 6 : sel < 4 ? 17 : (v6 ? 58 : 1);

	memset(b, 0, 512);
	for (unsigned int t = 0; t < tags; t++) {
		b[o] = t ? 0x81 : 0x88;
		b[o + 1] = t ? 0x00 : 0xa8;
		b[o + 3] = (uint8_t)(10 + t);
		o += 4;
	}
	memcpy(b + o, v6 ? eth_v6 : eth_v4, 2);
	ip = o + 2;
	if (!v6) {
		b[ip] = 0x46; /* one option word */
		b[ip + 8] = 64;
		b[ip + 9] = proto;
		l4 = ip + 24;
	} else {
		b[ip] = 0x60;
		b[ip + 6] = 0; /* hop-by-hop -> fragment -> destination options -> proto */
		l4 = ip + 40;
		b[l4] = 44;
		b[l4 + 8] = 60;
		b[l4 + 11] = 1; /* first fragment */
		b[l4 + 16] = proto;
		l4 += 24;
	}
	b[l4] = 0x30;
	b[l4 + 2] = 0x01;
	b[l4 + 3] = 0xbb;
	b[l4 + 12] = 0x50;
	l4 += 20 + 8;
	if (!v6) {
		b[ip + 2] = (uint8_t)((l4 - ip) >> 8);
		b[ip + 3] = (uint8_t)(l4 - ip);
	} else {
		b[ip + 4] = (uint8_t)((l4 - ip - 40) >> 8);
		b[ip + 5] = (uint8_t)(l4 - ip - 40);
	}
	return l4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t b[512 + 256];
	size_t len, at, n;

	if (size > 65535 + 100)
		return 0;
	/* the input as a raw frame */
	run_frame(data, size);
	/* the input as edits of a skeleton: [sel][offset][cut][bytes to overwrite...] */
	if (size < 3)
		return 0;
	len = skeleton(data[0] % N_SKEL, b);
	at = data[1] % len;
	n = size - 3 < sizeof(b) - at ? size - 3 : sizeof(b) - at;
	memcpy(b + at, data + 3, n);
	if (at + n > len)
		len = at + n;
	if (data[2] < len)
		len = data[2] & 0x80 ? len : data[2];
	run_frame(b, len);
	return 0;
}
