/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * skygate-pktgen packet layout on real DPDK mbufs: every kind of flow (IPv4/IPv6,
 * UDP/TCP, tagged or not) at several frame sizes is built, checked field by field and
 * with DPDK's own checksum verification, and its stamp read back; frames that are not
 * ours are refused. --rtt-emulate's segments (timestamps, echoes, the handshake) too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "skygate/runtime.h"
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "pg_pkt.h"

static struct rte_mempool *pool;
static const uint8_t macs[2][6] = {{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}};
#define MAGIC 0x5a17

static struct pg_flow
mkflow(int v6, uint8_t proto, uint16_t vlan, uint8_t dir, uint8_t cls, uint8_t dscp)
{
	struct pg_flow f = {.sport = 40001,
			    .dport = 5060,
			    .vlan = vlan,
			    .cls = cls,
			    .dir = dir,
			    .v6 = (uint8_t)v6,
			    .proto = proto,
			    .dscp = dscp,
			    .seq = 77};
	for (int i = 0; i < 16; i++) {
		f.src[i] = (uint8_t)(0x20 + i);
		f.dst[i] = (uint8_t)(0x90 + i);
	}
	/* L4: TCP 20 + flow word 4, or UDP 8 + stamp 16 */
	unsigned int need = (vlan ? 18 : 14) + (v6 ? 40 : 20) + 24;
	f.min_len = (uint16_t)(need < PG_MIN_FRAME ? PG_MIN_FRAME : need);
	return f;
}

static struct rte_mbuf *
fresh(void)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	assert_non_null(m);
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	memset(p, 0, PG_MAX_FRAME);
	memset(p, 0xa5, PG_ZERO_HEAD); /* build must clear what an earlier packet left */
	return m;
}

static void
test_build_parse(void **state)
{
	static const struct {
		int v6;
		uint8_t proto;
		uint16_t vlan;
		uint16_t min_len; /* expected smallest frame without FCS */
	} kinds[] = {
		{0, IPPROTO_UDP, 0, 60},   /* 14 + 20 + 8 + 16 = 58 -> padded to 60 */
		{0, IPPROTO_TCP, 0, 60},   /* 14 + 20 + 20 + 4 = 58 */
		{0, IPPROTO_UDP, 300, 62}, /* + VLAN tag */
		{1, IPPROTO_UDP, 0, 78},   {1, IPPROTO_TCP, 0, 78}, {1, IPPROTO_TCP, 4000, 82},
	};
	static const uint16_t frames[] = {56, 60, 566, 1514};
	const uint64_t tsc = 0x0000abcd12345678ull;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct pg_flow f = mkflow(kinds[k].v6, kinds[k].proto, kinds[k].vlan,
					  (uint8_t)(k & 1), (uint8_t)(k % 4), k & 1 ? 46 : 8);
		assert_int_equal(f.min_len, kinds[k].min_len);
		for (size_t s = 0; s < sizeof(frames) / sizeof(frames[0]); s++) {
			struct rte_mbuf *m = fresh();
			uint32_t idx = 0x123456 + (uint32_t)k;
			uint16_t len = pg_pkt_build(m, idx, &f, frames[s], tsc, MAGIC, macs);
			uint16_t want = frames[s] > f.min_len ? frames[s] : f.min_len;
			assert_int_equal(len, want);
			assert_int_equal(rte_pktmbuf_pkt_len(m), want);
			assert_int_equal(rte_pktmbuf_data_len(m), want);
			uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
			/* L2: to the other side's MAC, from this side's */
			assert_memory_equal(p, macs[f.dir ^ 1], 6);
			assert_memory_equal(p + 6, macs[f.dir], 6);
			unsigned int off = 12;
			if (f.vlan) {
				assert_int_equal(p[12] << 8 | p[13], RTE_ETHER_TYPE_VLAN);
				assert_int_equal((p[14] << 8 | p[15]) & 0xfff, f.vlan);
				off += 4;
			}
			uint16_t et = (uint16_t)(p[off] << 8 | p[off + 1]);
			off += 2;
			void *l4;
			if (f.v6) {
				assert_int_equal(et, RTE_ETHER_TYPE_IPV6);
				struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(p + off);
				uint32_t vtc = rte_be_to_cpu_32(ip->vtc_flow);
				assert_int_equal(vtc >> 28, 6);
				assert_int_equal((vtc >> 22) & 0x3f, f.dscp);
				assert_int_equal(rte_be_to_cpu_16(ip->payload_len),
						 want - off - 40);
				assert_memory_equal(ip->src_addr, f.src, 16);
				assert_memory_equal(ip->dst_addr, f.dst, 16);
				l4 = ip + 1;
				assert_int_equal(rte_ipv6_udptcp_cksum_verify(ip, l4), 0);
			} else {
				assert_int_equal(et, RTE_ETHER_TYPE_IPV4);
				struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + off);
				assert_int_equal(ip->version_ihl, 0x45);
				assert_int_equal(ip->type_of_service >> 2, f.dscp);
				assert_int_equal(rte_be_to_cpu_16(ip->total_length), want - off);
				assert_memory_equal(&ip->src_addr, f.src, 4);
				assert_memory_equal(&ip->dst_addr, f.dst, 4);
				/* header checksum: the ones' complement sum over the header is
				 * 0xffff */
				assert_int_equal(rte_raw_cksum(ip, 20), 0xffff);
				l4 = ip + 1;
				assert_int_equal(rte_ipv4_udptcp_cksum_verify(ip, l4), 0);
			}
			const uint8_t *l4b = l4;
			assert_int_equal(l4b[0] << 8 | l4b[1], f.sport);
			assert_int_equal(l4b[2] << 8 | l4b[3], f.dport);
			/* everything past the stamp is zero */
			size_t stamp_end = (size_t)(l4b - p) + 24;
			for (size_t b = stamp_end; b < want; b++)
				if (p[b])
					fail_msg("kind %zu frame %u: byte %zu = %#x", k, frames[s],
						 b, p[b]);

			struct pg_rx_hit h;
			assert_int_equal(pg_pkt_parse(m, MAGIC, &h), 0);
			assert_int_equal(h.fw, pg_flow_word(idx, &f));
			assert_int_equal(h.fw & PG_FW_FLOW_MASK, idx);
			assert_int_equal((h.fw >> PG_FW_CLASS_SHIFT) & 7, f.cls);
			assert_int_equal((h.fw >> PG_FW_DIR_SHIFT) & 1, f.dir);
			assert_int_equal(h.seq, f.seq);
			assert_int_equal(h.tsc, tsc & ((1ull << 48) - 1));
			/* another run's magic is not ours */
			assert_int_equal(pg_pkt_parse(m, MAGIC ^ 1, &h), -1);
			rte_pktmbuf_free(m);
		}
	}
}

static void
test_parse_refuses(void **state)
{
	struct pg_flow f = mkflow(0, IPPROTO_UDP, 0, 0, 0, 0);
	struct pg_rx_hit h;
	struct rte_mbuf *m = fresh();
	pg_pkt_build(m, 5, &f, 60, 1, MAGIC, macs);
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);

	/* runt frame */
	m->data_len = m->pkt_len = 40;
	assert_int_equal(pg_pkt_parse(m, MAGIC, &h), -1);
	m->data_len = m->pkt_len = 60;
	assert_int_equal(pg_pkt_parse(m, MAGIC, &h), 0);
	/* ARP ethertype */
	p[12] = 0x08;
	p[13] = 0x06;
	assert_int_equal(pg_pkt_parse(m, MAGIC, &h), -1);
	p[13] = 0x00;
	/* ICMP */
	p[14 + 9] = IPPROTO_ICMP;
	assert_int_equal(pg_pkt_parse(m, MAGIC, &h), -1);
	rte_pktmbuf_free(m);

	/* a TCP frame cut before its flow word */
	struct pg_flow t = mkflow(1, IPPROTO_TCP, 0, 1, 1, 0);
	m = fresh();
	pg_pkt_build(m, 9, &t, 60, 1, MAGIC, macs);
	assert_int_equal(pg_pkt_parse(m, MAGIC, &h), 0);
	m->data_len = m->pkt_len = 14 + 40 + 20 + 2;
	assert_int_equal(pg_pkt_parse(m, MAGIC, &h), -1);
	rte_pktmbuf_free(m);
}

/* --rtt-emulate: a TCP segment with timestamps, its echo (pure ACK), both read back */
static void
test_timestamps(void **state)
{
	(void)state;
	for (int v6 = 0; v6 < 2; v6++)
		for (uint16_t vlan = 0; vlan <= 100; vlan += 100)
			for (uint8_t dir = 0; dir < 2; dir++) {
				struct pg_flow f = mkflow(v6, IPPROTO_TCP, vlan, dir, 2, 0);
				struct pg_rx_hit h;
				struct rte_mbuf *m = fresh();
				const uint8_t *p, *tcp;
				uint16_t len, l3off = vlan ? 18 : 14;

				f.ts = PG_TS_OPTION;
				f.min_len = (uint16_t)(f.min_len + PG_TS_OPT_LEN);
				len = pg_pkt_build_ts(m, 1234, &f, 60, 0x123456789aull, MAGIC, macs,
						      0xdeadbeef);
				assert_int_equal(len, f.min_len);
				p = rte_pktmbuf_mtod(m, const uint8_t *);
				tcp = p + l3off + (v6 ? 40 : 20);
				assert_int_equal(tcp[12] >> 4, 8); /* 32-byte header */
				assert_memory_equal(tcp + 20,
						    "\x01\x01\x08\x0a\xde\xad\xbe\xef\0\0\0\0", 12);
				/* the sequence number steps by 2048 per packet */
				uint32_t seq;
				memcpy(&seq, tcp + 4, 4);
				assert_int_equal(rte_be_to_cpu_32(seq), 77u << PG_TS_SEQ_SHIFT);
				if (v6)
					assert_int_equal(rte_ipv6_udptcp_cksum_verify(
								 (const void *)(p + l3off), tcp),
							 0);
				else
					assert_int_equal(rte_ipv4_udptcp_cksum_verify(
								 (const void *)(p + l3off), tcp),
							 0);
				assert_int_equal(pg_pkt_parse(m, MAGIC, &h), 0);
				assert_int_equal(h.echo, 0);
				assert_int_equal(h.seq,
						 77u << PG_TS_SEQ_SHIFT); /* the caller scales */
				assert_int_equal(h.tsval, 0xdeadbeef);
				assert_int_equal(h.fw, pg_flow_word(1234, &f));
				rte_pktmbuf_free(m);

				/* the echo leaves from the port the segment arrived on, reversed */
				m = fresh();
				len = pg_pkt_build_echo(m, 1234, &f, MAGIC, macs, 77, 0xdeadbeef);
				assert_int_equal(len, l3off + (v6 ? 40 : 20) + 32);
				p = rte_pktmbuf_mtod(m, const uint8_t *);
				assert_memory_equal(p + 6, macs[dir == PG_UP ? 1 : 0], 6);
				tcp = p + l3off + (v6 ? 40 : 20);
				uint16_t port[2];
				memcpy(port, tcp, 4);
				assert_int_equal(rte_be_to_cpu_16(port[0]), f.dport);
				assert_int_equal(rte_be_to_cpu_16(port[1]), f.sport);
				assert_int_equal(tcp[13], RTE_TCP_ACK_FLAG);
				assert_memory_equal(
					tcp + 20, "\x01\x01\x08\x0a\0\0\0\x4d\xde\xad\xbe\xef", 12);
				if (v6) {
					assert_memory_equal(p + l3off + 8, f.dst, 16);
					assert_int_equal(rte_ipv6_udptcp_cksum_verify(
								 (const void *)(p + l3off), tcp),
							 0);
				} else {
					assert_memory_equal(p + l3off + 12, f.dst, 4);
					assert_int_equal(rte_ipv4_udptcp_cksum_verify(
								 (const void *)(p + l3off), tcp),
							 0);
				}
				assert_int_equal(pg_pkt_parse(m, MAGIC, &h), 0);
				assert_int_equal(h.echo, 1);
				assert_int_equal(h.fw, pg_flow_word(1234, &f) | PG_FW_ECHO);
				assert_int_equal(h.tsval, 77);
				assert_int_equal(pg_pkt_parse(m, MAGIC ^ 1, &h), -1);
				rte_pktmbuf_free(m);

				/* the handshake: SYN from the terminal, SYN-ACK from the server,
				 * ACK; each read back as that segment of this flow */
				const uint32_t fw = pg_flow_word(1234, &f);
				const struct {
					bool from_terminal;
					uint8_t flags;
					uint32_t seq, ack;
					uint8_t ctl;
				} hs[3] = {
					{true, RTE_TCP_SYN_FLAG, fw, 0, PG_CTL_SYN},
					{false, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, ~fw, fw + 1,
					 PG_CTL_SYNACK},
					{true, RTE_TCP_ACK_FLAG, fw + 1, ~fw + 1, PG_CTL_ACK},
				};
				for (int k = 0; k < 3; k++) {
					const uint8_t *term = dir == PG_UP ? f.src : f.dst;
					m = fresh();
					len = pg_pkt_build_ctl(m, 1234, &f, hs[k].from_terminal,
							       hs[k].flags, hs[k].seq, hs[k].ack,
							       MAGIC, macs, false, 0, 0);
					assert_int_equal(len,
							 l3off + (v6 ? 40 : 20) + 20 < 60
								 ? 60
								 : l3off + (v6 ? 40 : 20) + 20);
					p = rte_pktmbuf_mtod(m, const uint8_t *);
					/* the terminal's address is the source of its segments */
					if (v6)
						assert_memory_equal(
							p + l3off + (hs[k].from_terminal ? 8 : 24),
							term, 16);
					else
						assert_memory_equal(
							p + l3off + (hs[k].from_terminal ? 12 : 16),
							term, 4);
					tcp = p + l3off + (v6 ? 40 : 20);
					if (v6)
						assert_int_equal(
							rte_ipv6_udptcp_cksum_verify(
								(const void *)(p + l3off), tcp),
							0);
					else
						assert_int_equal(
							rte_ipv4_udptcp_cksum_verify(
								(const void *)(p + l3off), tcp),
							0);
					assert_int_equal(pg_pkt_parse(m, MAGIC, &h), 0);
					assert_int_equal(h.ctl, hs[k].ctl);
					assert_int_equal(h.fw, fw);
					assert_int_equal(h.echo, 0);
					assert_int_equal(pg_pkt_parse(m, MAGIC ^ 1, &h), -1);
					rte_pktmbuf_free(m);
				}
			}
}

int
main(void)
{
	char *eal[] = {"test_pktgen_pkt",
		       "--no-huge",
		       "-m",
		       "128",
		       "--no-pci",
		       "--file-prefix=test_pktgen_pkt",
		       "--log-level=lib.*:error",
		       "--no-telemetry"};
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	pool = rte_pktmbuf_pool_create("t_pkt", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (pool == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_build_parse),
		cmocka_unit_test(test_timestamps),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rte_mempool_free(pool);
	sky_eal_cleanup();
	return rc;
}
