/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/ipfix: the exporter end to end over loopback UDP, read back by a small IPFIX decoder
 * written here from RFC 7011 (not the encoder's code): message header, template set,
 * enterprise bit and number, data sets, sequence numbers, message sizes against the MTU,
 * template refresh, config refusals, and send failures (a connected socket to a closed
 * port gets ECONNREFUSED) counted as lost records.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/flow.h"
#include "skygate/ipfix.h"
#include "skygate/meta.h"
#include "skygate/runtime.h"

#include "fixture.h"

#define PEN 4242
#define T0 1700000000000ull /* unix ms */

/* ------------------------------------------------------------------ the decoder */

struct d_field {
	uint16_t id;
	int ent;
	uint32_t pen;
	uint16_t len;
};

struct d_template {
	uint16_t id;
	unsigned int n;
	struct d_field f[64];
};

/* one decoded data record: the field values, by position in its template */
struct d_record {
	uint16_t tid;
	unsigned int n;
	struct d_field f[64];
	const uint8_t *v[64];
};

struct d_msg {
	uint16_t version, length;
	uint32_t export_s, seq, domain;
	unsigned int n_tmpl_sets;
	unsigned int n_rec;
	struct d_record rec[128];
};

static struct d_template d_tmpl[4];
static unsigned int d_n_tmpl;
static uint8_t d_buf[16][65536];

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static uint64_t
rdn(const uint8_t *p, unsigned int len)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < len; i++)
		v = v << 8 | p[i];
	return v;
}

static struct d_template *
d_find(uint16_t id)
{
	for (unsigned int i = 0; i < d_n_tmpl; i++)
		if (d_tmpl[i].id == id)
			return &d_tmpl[i];
	return NULL;
}

/* Decode one message; fails the test on any structural error. */
static void
d_decode(const uint8_t *p, size_t len, struct d_msg *m)
{
	size_t off = 16;

	memset(m, 0, sizeof(*m));
	assert_true(len >= 16);
	m->version = rd16(p);
	m->length = rd16(p + 2);
	m->export_s = rd32(p + 4);
	m->seq = rd32(p + 8);
	m->domain = rd32(p + 12);
	assert_int_equal(m->version, 10);
	assert_int_equal(m->length, len);
	while (off < len) {
		uint16_t sid, slen;
		size_t end;

		assert_true(off + 4 <= len);
		sid = rd16(p + off);
		slen = rd16(p + off + 2);
		assert_true(slen >= 4 && off + slen <= len);
		end = off + slen;
		off += 4;
		if (sid == 2) {
			m->n_tmpl_sets++;
			while (off + 4 <= end) {
				struct d_template t = {.id = rd16(p + off), .n = rd16(p + off + 2)};
				struct d_template *old;

				off += 4;
				assert_true(t.id >= 256 && t.n <= 64);
				for (unsigned int i = 0; i < t.n; i++) {
					uint16_t id = rd16(p + off);

					t.f[i].ent = (id & 0x8000) != 0;
					t.f[i].id = id & 0x7fff;
					t.f[i].len = rd16(p + off + 2);
					off += 4;
					if (t.f[i].ent) {
						t.f[i].pen = rd32(p + off);
						off += 4;
					}
					assert_true(off <= end);
				}
				old = d_find(t.id);
				if (old == NULL) {
					assert_true(d_n_tmpl < 4);
					old = &d_tmpl[d_n_tmpl++];
				}
				*old = t;
			}
			assert_int_equal(off, end);
		} else {
			const struct d_template *t = d_find(sid);
			size_t rlen = 0;

			assert_true(sid >= 256);
			assert_non_null(t); /* data before its template */
			for (unsigned int i = 0; i < t->n; i++)
				rlen += t->f[i].len;
			while (off + rlen <= end) {
				struct d_record *r = &m->rec[m->n_rec++];

				assert_true(m->n_rec <= 128);
				r->tid = sid;
				r->n = t->n;
				for (unsigned int i = 0; i < t->n; i++) {
					r->f[i] = t->f[i];
					r->v[i] = p + off;
					off += t->f[i].len;
				}
			}
			assert_int_equal(off, end); /* no padding written */
		}
	}
}

/* value of element (ent, id) in r: its bytes (and length), NULL when absent */
static const uint8_t *
d_get(const struct d_record *r, int ent, uint16_t id, uint16_t *len)
{
	for (unsigned int i = 0; i < r->n; i++)
		if (r->f[i].ent == ent && r->f[i].id == id) {
			if (ent)
				assert_int_equal(r->f[i].pen, PEN);
			*len = r->f[i].len;
			return r->v[i];
		}
	return NULL;
}

static uint64_t
d_num(const struct d_record *r, int ent, uint16_t id)
{
	uint16_t len = 0;
	const uint8_t *v = d_get(r, ent, id, &len);

	assert_non_null(v);
	assert_true(len >= 1 && len <= 8);
	return rdn(v, len);
}

/* ------------------------------------------------------------------ collectors */

/* A UDP socket on 127.0.0.1, any free port. */
static int
collector_open(uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int rcvbuf = 4 << 20;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Receive every datagram waiting (up to 16); returns how many, lengths in lens. */
static unsigned int
collector_recv(int fd, size_t *lens)
{
	unsigned int n = 0;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	while (n < 16 && poll(&pfd, 1, n == 0 ? 1000 : 50) == 1) {
		ssize_t r = recv(fd, d_buf[n], sizeof(d_buf[n]), 0);

		assert_true(r > 0);
		lens[n++] = (size_t)r;
	}
	return n;
}

static struct sky_ipfix *make(struct sky_cfg **cfgp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct sky_ipfix *
make(struct sky_cfg **cfgp, const char *fmt, ...)
{
	struct sky_cfg_err err = {0};
	struct sky_ipfix *ip;
	va_list ap;

	va_start(ap, fmt);
	*cfgp = sky_fx_vcfg("ipfix.yaml", &err, fmt, ap);
	va_end(ap);
	assert_non_null(*cfgp);
	ip = sky_ipfix_create(*cfgp, NULL, &err);
	if (ip == NULL)
		fprintf(stderr, "%s\n", err.msg);
	assert_non_null(ip);
	return ip;
}

static void
rec_v4(struct sky_flow_rec *r, uint16_t sport)
{
	memset(r, 0, sizeof(*r));
	r->l3 = 4;
	r->proto = 6;
	memcpy(r->sub_addr, (uint8_t[]){100, 64, 0, 1}, 4);
	memcpy(r->remote_addr, (uint8_t[]){198, 51, 100, 7}, 4);
	r->sub_port = sport;
	r->remote_port = 443;
	r->verdict = SKY_V_PASS;
	r->realm = 100;
	r->beam = 3;
	r->sub_id = 4000000001u;
	r->sub_country = sky_cc("DE");
	r->remote_country = sky_cc("US");
	r->cls = 2;
	r->tcp_flags = 0x1b;
	r->end = SKY_FLOW_END_FIN;
	r->packets[SKY_DIR_UP] = 10;
	r->packets[SKY_DIR_DOWN] = 12;
	r->bytes[SKY_DIR_UP] = 1000;
	r->bytes[SKY_DIR_DOWN] = 15000;
	r->first_ns = (T0 - 5000) * 1000000ull + 123456;
	r->last_ns = (T0 - 10) * 1000000ull + 999999;
	r->rtt_sat_us = 600123;
	r->rtt_inet_us = 20456;
}

/* ------------------------------------------------------------------ config errors */

static const struct {
	const char *yaml;
	const char *msg; /* the whole expected message after "ipfix.yaml:" */
} bad_cfgs[] = {
	{"ipfix:\n  collectors: 5\n",
	 "2: ipfix.collectors: must be a list of collectors: [ { address: 192.0.2.1, port: 4739 "
	 "} ]"},
	{"ipfix:\n  collectors:\n    - { address: 127.0.0.1 }\n",
	 "3: ipfix.collectors[0].port: required"},
	{"ipfix:\n  collectors:\n    - { address: 127.0.0.1, port: 4739 }\n"
	 "    - { address: 127.0.0.1, port: 0 }\n",
	 "4: ipfix.collectors[1].port: 0 out of range (min 1, max 65535)"},
	{"ipfix:\n  collectors:\n    - { address: 127.0.0.1, port: 70000 }\n",
	 "3: ipfix.collectors[0].port: 70000 out of range (min 1, max 65535)"},
	{"ipfix:\n  collectors:\n    - { address: collector.example, port: 4739 }\n",
	 "3: ipfix.collectors[0].address: 'collector.example' is not an IPv4 or IPv6 address (no "
	 "host names: the exporter resolves nothing)"},
	{"ipfix:\n  collectors:\n    - { address: 127.0.0.1, prot: 4739 }\n",
	 "3: ipfix.collectors[0].prot: unknown key (allowed: address, port, observation_domain)"},
	{"ipfix:\n  collectors:\n    - { address: 127.0.0.1, port: 1, observation_domain: "
	 "4294967296 }\n",
	 "3: ipfix.collectors[0].observation_domain: 4294967296 out of range (min 0, max "
	 "4294967295)"},
	{"ipfix:\n  collectors:\n    - 127.0.0.1\n",
	 "3: ipfix.collectors[0]: a collector is a map: { address: 192.0.2.1, port: 4739, "
	 "observation_domain: 1 }"},
	{"ipfix:\n  collectors:\n    - { address: 127.0.0.1, port: 9 }\n"
	 "    - { address: 127.0.0.01, port: 9 }\n",
	 NULL /* 127.0.0.01 is not an address for inet_pton: refused as such */},
	{"ipfix:\n  collectors:\n    - { address: '::1', port: 9 }\n"
	 "    - { address: '0::1', port: 9 }\n",
	 "4: ipfix.collectors[1]: collector ::1 port 9 is listed twice (collectors[0])"},
	{"ipfix:\n  template_refresh: 500ms\n",
	 "2: ipfix.template_refresh: must be 1s..1d (collectors forget UDP templates they are not "
	 "sent again)"},
	{"ipfix:\n  template_refresh_packets: -1\n", NULL},
	{"ipfix:\n  enterprise_number: 0\n",
	 "2: ipfix.enterprise_number: 0 out of range (min 1, max 4294967295)"},
	{"ipfix:\n  mtu: 100\n", "2: ipfix.mtu: 100 out of range (min 512, max 9000)"},
	{"ipfix:\n  collector: []\n",
	 "2: ipfix.collector: unknown key (allowed: collectors, template_refresh, "
	 "template_refresh_packets, enterprise_number, mtu)"},
};

static void
test_config_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cfgs) / sizeof(bad_cfgs[0]); i++) {
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg = sky_fx_cfg("ipfix.yaml", &err, "%s", bad_cfgs[i].yaml);
		struct sky_ipfix *ip;
		char want[512];

		assert_non_null(cfg);
		ip = sky_ipfix_create(cfg, NULL, &err);
		if (ip != NULL)
			fail_msg("case %zu accepted: %s", i, bad_cfgs[i].yaml);
		assert_true(err.failed);
		assert_non_null(strstr(err.msg, "ipfix"));
		if (bad_cfgs[i].msg != NULL) {
			snprintf(want, sizeof(want), "ipfix.yaml:%s", bad_cfgs[i].msg);
			assert_string_equal(err.msg, want);
		}
		sky_cfg_free(cfg);
	}
}

static void
test_disabled(void **state)
{
	static const char *const texts[] = {"workers: 1\n", "ipfix: {}\n",
					    "ipfix:\n  collectors: []\n",
					    "ipfix:\n  collectors:\n"};
	struct sky_flow_rec r;

	(void)state;
	rec_v4(&r, 1000);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct sky_cfg *cfg;
		struct sky_ipfix *ip = make(&cfg, "%s", texts[i]);

		assert_int_equal(sky_ipfix_enabled(ip), 0);
		assert_int_equal(sky_ipfix_n_collectors(ip), 0);
		assert_int_equal(sky_ipfix_add(ip, &r, T0), 0);
		sky_ipfix_tick(ip, T0);
		assert_int_equal(sky_ipfix_records_in(ip), 0);
		sky_ipfix_destroy(ip);
		sky_cfg_free(cfg);
	}
	sky_ipfix_destroy(NULL);
}

/* ------------------------------------------------------------------ encoding */

static const struct d_template *
check_templates(void)
{
	/* the standard and enterprise elements every template must carry, with lengths */
	static const struct {
		int ent;
		uint16_t id, len;
	} want[] = {{0, 7, 2},	 {0, 11, 2},  {0, 4, 1},   {0, 6, 1},  {0, 1, 8},  {0, 2, 8},
		    {0, 152, 8}, {0, 153, 8}, {0, 136, 1}, {0, 89, 1}, {0, 10, 2}, {0, 14, 2},
		    {0, 58, 2},	 {1, 1, 4},   {1, 2, 2},   {1, 3, 2},  {1, 4, 2},  {1, 5, 1},
		    {1, 6, 1},	 {1, 7, 1},   {1, 8, 1},   {1, 9, 4},  {1, 10, 4}};
	const struct d_template *t4 = d_find(256), *t6 = d_find(257);

	assert_non_null(t4);
	assert_non_null(t6);
	assert_int_equal(t4->n, 2 + sizeof(want) / sizeof(want[0]));
	assert_int_equal(t6->n, t4->n);
	assert_int_equal(t4->f[0].id, 8);
	assert_int_equal(t4->f[0].len, 4);
	assert_int_equal(t4->f[1].id, 12);
	assert_int_equal(t6->f[0].id, 27);
	assert_int_equal(t6->f[0].len, 16);
	assert_int_equal(t6->f[1].id, 28);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct d_template *t[2] = {t4, t6};

		for (int k = 0; k < 2; k++) {
			assert_int_equal(t[k]->f[2 + i].ent, want[i].ent);
			assert_int_equal(t[k]->f[2 + i].id, want[i].id);
			assert_int_equal(t[k]->f[2 + i].len, want[i].len);
			assert_int_equal(t[k]->f[2 + i].pen, want[i].ent ? PEN : 0);
		}
	}
	return t4;
}

static void
check_v4_record(const struct d_record *d, const struct sky_flow_rec *r, unsigned int dir)
{
	uint16_t len = 0;
	const uint8_t *src = d_get(d, 0, 8, &len), *dst = d_get(d, 0, 12, &len);
	const uint8_t *cc;

	assert_int_equal(d->tid, 256);
	assert_memory_equal(src, dir == SKY_DIR_UP ? r->sub_addr : r->remote_addr, 4);
	assert_memory_equal(dst, dir == SKY_DIR_UP ? r->remote_addr : r->sub_addr, 4);
	assert_int_equal(d_num(d, 0, 7), dir == SKY_DIR_UP ? r->sub_port : r->remote_port);
	assert_int_equal(d_num(d, 0, 11), dir == SKY_DIR_UP ? r->remote_port : r->sub_port);
	assert_int_equal(d_num(d, 0, 4), r->proto);
	assert_int_equal(d_num(d, 0, 6), r->tcp_flags);
	assert_int_equal(d_num(d, 0, 1), r->bytes[dir]);
	assert_int_equal(d_num(d, 0, 2), r->packets[dir]);
	assert_int_equal(d_num(d, 0, 152), r->first_ns / 1000000);
	assert_int_equal(d_num(d, 0, 153), r->last_ns / 1000000);
	assert_int_equal(d_num(d, 0, 136), r->end);
	assert_int_equal(d_num(d, 0, 58), r->realm);
	assert_int_equal(d_num(d, 0, 10), dir == SKY_DIR_UP ? 1 : 2);
	assert_int_equal(d_num(d, 0, 14), dir == SKY_DIR_UP ? 2 : 1);
	assert_int_equal(d_num(d, 1, 1), r->sub_id);
	assert_int_equal(d_num(d, 1, 2), r->beam);
	cc = d_get(d, 1, 3, &len);
	assert_memory_equal(cc, "DE", 2);
	cc = d_get(d, 1, 4, &len);
	assert_memory_equal(cc, "US", 2);
	assert_int_equal(d_num(d, 1, 7), r->cls);
	assert_int_equal(d_num(d, 1, 8), dir);
	assert_int_equal(d_num(d, 1, 9), r->rtt_sat_us);
	assert_int_equal(d_num(d, 1, 10), r->rtt_inet_us);
}

static void
test_encode_v4_v6(void **state)
{
	uint16_t port;
	int fd = collector_open(&port);
	struct sky_cfg *cfg;
	struct sky_ipfix *ip;
	struct sky_flow_rec r4, r6;
	struct sky_ipfix_stats st;
	struct d_msg *m = calloc(1, sizeof(*m));
	size_t lens[16];
	uint16_t len;

	(void)state;
	d_n_tmpl = 0;
	ip = make(&cfg,
		  "ipfix:\n  enterprise_number: %d\n  collectors:\n"
		  "    - { address: 127.0.0.1, port: %u, observation_domain: 77 }\n",
		  PEN, port);
	assert_int_equal(sky_ipfix_enabled(ip), 1);
	/* the first tick sends the templates on their own */
	sky_ipfix_tick(ip, T0);
	assert_int_equal(collector_recv(fd, lens), 1);
	d_decode(d_buf[0], lens[0], m);
	assert_int_equal(m->n_tmpl_sets, 1);
	assert_int_equal(m->n_rec, 0);
	assert_int_equal(m->seq, 0);
	assert_int_equal(m->domain, 77);
	assert_int_equal(m->export_s, T0 / 1000);
	check_templates();

	/* an IPv4 flow: one record per direction */
	rec_v4(&r4, 40000);
	assert_int_equal(sky_ipfix_add(ip, &r4, T0 + 100), 2);
	sky_ipfix_tick(ip, T0 + 200);
	assert_int_equal(collector_recv(fd, lens), 1);
	d_decode(d_buf[0], lens[0], m);
	assert_int_equal(m->n_tmpl_sets, 0); /* not due again yet */
	assert_int_equal(m->n_rec, 2);
	assert_int_equal(m->seq, 0);
	assert_int_equal(m->export_s, (T0 + 200) / 1000);
	check_v4_record(&m->rec[0], &r4, SKY_DIR_UP);
	check_v4_record(&m->rec[1], &r4, SKY_DIR_DOWN);
	assert_int_equal(d_num(&m->rec[0], 0, 89), 64); /* forwarded */
	assert_int_equal(d_num(&m->rec[0], 1, 5), SKY_V_PASS);
	assert_int_equal(d_num(&m->rec[0], 1, 6), 0);

	/* an IPv6 flow blocked by the policy, no answer: one upstream record */
	memset(&r6, 0, sizeof(r6));
	r6.l3 = 6;
	r6.proto = 17;
	inet_pton(AF_INET6, "2001:db8:1000:100::5", r6.sub_addr);
	inet_pton(AF_INET6, "2001:db8:ffff::53", r6.remote_addr);
	r6.sub_port = 5353;
	r6.remote_port = 53;
	r6.verdict = SKY_V_DROP;
	r6.reason = SKY_DROP_POLICY;
	r6.sub_id = 7;
	r6.sub_country = sky_cc("RU");
	r6.remote_country = SKY_COUNTRY_NONE;
	r6.packets[SKY_DIR_UP] = 3;
	r6.bytes[SKY_DIR_UP] = 3 * 90;
	r6.first_ns = T0 * 1000000ull;
	r6.last_ns = T0 * 1000000ull + 2000000;
	r6.end = SKY_FLOW_END_IDLE;
	assert_int_equal(sky_ipfix_add(ip, &r6, T0 + 300), 1);
	sky_ipfix_tick(ip, T0 + 400);
	assert_int_equal(collector_recv(fd, lens), 1);
	d_decode(d_buf[0], lens[0], m);
	assert_int_equal(m->seq, 2); /* the two IPv4 records went before */
	assert_int_equal(m->n_rec, 1);
	assert_int_equal(m->rec[0].tid, 257);
	assert_memory_equal(d_get(&m->rec[0], 0, 27, &len), r6.sub_addr, 16);
	assert_int_equal(len, 16);
	assert_memory_equal(d_get(&m->rec[0], 0, 28, &len), r6.remote_addr, 16);
	assert_int_equal(d_num(&m->rec[0], 0, 7), 5353);
	assert_int_equal(d_num(&m->rec[0], 0, 11), 53);
	assert_int_equal(d_num(&m->rec[0], 0, 1), 270);
	assert_int_equal(d_num(&m->rec[0], 0, 2), 3);
	assert_int_equal(d_num(&m->rec[0], 0, 89), 129); /* dropped: ACL deny */
	assert_int_equal(d_num(&m->rec[0], 0, 10), 1);	 /* in on the uplink side */
	assert_int_equal(d_num(&m->rec[0], 0, 14), 0);	 /* out nowhere: dropped */
	assert_int_equal(d_num(&m->rec[0], 1, 5), SKY_V_DROP);
	assert_int_equal(d_num(&m->rec[0], 1, 6), SKY_DROP_POLICY);
	assert_memory_equal(d_get(&m->rec[0], 1, 3, &len), "RU", 2);
	assert_memory_equal(d_get(&m->rec[0], 1, 4, &len), "\0\0", 2);
	assert_int_equal(d_num(&m->rec[0], 0, 136), SKY_FLOW_END_IDLE);

	/* nothing pending: a tick sends nothing */
	sky_ipfix_tick(ip, T0 + 500);
	assert_int_equal(sky_ipfix_collector_stats(ip, 0, &st), 0);
	assert_int_equal(st.records, 3);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.template_sends, 1);
	assert_int_equal(st.drops, 0);
	assert_int_equal(st.sequence, 3);
	assert_int_equal(sky_ipfix_records_in(ip), 2);
	assert_int_equal(sky_ipfix_collector_stats(ip, 1, &st), -ENOENT);
	/* a record that is neither IPv4 nor IPv6 is not exported */
	r4.l3 = 0;
	assert_int_equal(sky_ipfix_add(ip, &r4, T0 + 600), 0);
	sky_ipfix_destroy(ip);
	sky_cfg_free(cfg);
	close(fd);
	free(m);
}

/* Full messages go at once and never exceed mtu - 28 (IPv4 + UDP headers). */
static void
test_mtu_split(void **state)
{
	uint16_t port;
	int fd = collector_open(&port);
	struct sky_cfg *cfg;
	struct sky_ipfix *ip;
	struct sky_flow_rec r;
	struct sky_ipfix_stats st;
	struct d_msg *m = calloc(1, sizeof(*m));
	size_t lens[16], bytes = 0, rlen = 0;
	unsigned int n, total = 0, sent_before = 0, seen_ports = 0;

	(void)state;
	d_n_tmpl = 0;
	ip = make(&cfg,
		  "ipfix:\n  enterprise_number: %d\n  mtu: 600\n  collectors:\n"
		  "    - { address: 127.0.0.1, port: %u }\n",
		  PEN, port);
	for (unsigned int i = 0; i < 20; i++) {
		rec_v4(&r, (uint16_t)(1000 + i));
		assert_int_equal(sky_ipfix_add(ip, &r, T0), 2);
	}
	sky_ipfix_tick(ip, T0 + 1);
	n = collector_recv(fd, lens);
	assert_true(n > 3);
	for (unsigned int i = 0; i < n; i++) {
		assert_true(lens[i] <= 600 - 28);
		d_decode(d_buf[i], lens[i], m);
		if (i == 0) {
			const struct d_template *t = d_find(256);

			assert_non_null(t);
			for (unsigned int k = 0; k < t->n; k++)
				rlen += t->f[k].len;
		}
		/* templates first, in the first message only */
		assert_int_equal(m->n_tmpl_sets, i == 0 ? 1 : 0);
		assert_int_equal(m->seq, sent_before);
		assert_int_equal(m->domain, 1);
		/* every message but the last is full: the next record would not fit */
		if (i + 1 < n)
			assert_true(lens[i] + rlen > 600 - 28);
		for (unsigned int k = 0; k < m->n_rec; k++) {
			unsigned int sp = (unsigned int)d_num(&m->rec[k], 0, 7);
			unsigned int dp = (unsigned int)d_num(&m->rec[k], 0, 11);
			unsigned int p = sp == 443 ? dp : sp;

			assert_true(p >= 1000 && p < 1020);
			seen_ports |= 1u << (p - 1000);
		}
		sent_before += m->n_rec;
		total += m->n_rec;
		bytes += lens[i];
	}
	assert_int_equal(total, 40);
	assert_int_equal(seen_ports, (1u << 20) - 1);
	assert_int_equal(sky_ipfix_collector_stats(ip, 0, &st), 0);
	assert_int_equal(st.records, 40);
	assert_int_equal(st.messages, n);
	assert_int_equal(st.bytes, bytes);
	assert_int_equal(st.sequence, 40);
	sky_ipfix_destroy(ip);
	sky_cfg_free(cfg);
	close(fd);
	free(m);
}

/* An IPv6 collector: messages fit mtu - 48 (IPv6 + UDP headers). */
static void
test_ipv6_collector(void **state)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sky_cfg *cfg;
	struct sky_ipfix *ip;
	struct sky_flow_rec r;
	struct sky_ipfix_stats st;
	struct d_msg *m = calloc(1, sizeof(*m));
	size_t lens[16];
	unsigned int n, total = 0;

	(void)state;
	assert_true(fd >= 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		free(m);
		skip(); /* no IPv6 loopback on this machine */
	}
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	d_n_tmpl = 0;
	ip = make(&cfg,
		  "ipfix:\n  enterprise_number: %d\n  mtu: 600\n  collectors:\n"
		  "    - { address: '::1', port: %u, observation_domain: 9 }\n",
		  PEN, ntohs(sa.sin6_port));
	for (unsigned int i = 0; i < 10; i++) {
		rec_v4(&r, (uint16_t)(2000 + i));
		r.l3 = 6;
		inet_pton(AF_INET6, "2001:db8:1000:100::5", r.sub_addr);
		inet_pton(AF_INET6, "2001:db8:ffff::1", r.remote_addr);
		assert_int_equal(sky_ipfix_add(ip, &r, T0), 2);
	}
	sky_ipfix_tick(ip, T0);
	n = collector_recv(fd, lens);
	assert_true(n > 2);
	for (unsigned int i = 0; i < n; i++) {
		assert_true(lens[i] <= 600 - 48);
		d_decode(d_buf[i], lens[i], m);
		assert_int_equal(m->domain, 9);
		for (unsigned int k = 0; k < m->n_rec; k++)
			assert_int_equal(m->rec[k].tid, 257);
		total += m->n_rec;
	}
	assert_int_equal(total, 20);
	assert_int_equal(sky_ipfix_collector_stats(ip, 0, &st), 0);
	assert_int_equal(st.records, 20);
	assert_int_equal(st.messages, n);
	sky_ipfix_destroy(ip);
	sky_cfg_free(cfg);
	close(fd);
	free(m);
}

static void
test_template_refresh(void **state)
{
	uint16_t port;
	int fd = collector_open(&port);
	struct sky_cfg *cfg;
	struct sky_ipfix *ip;
	struct sky_flow_rec r;
	struct d_msg *m = calloc(1, sizeof(*m));
	size_t lens[16];
	struct sky_ipfix_stats st;

	(void)state;
	d_n_tmpl = 0;
	ip = make(&cfg,
		  "ipfix:\n  enterprise_number: %d\n  template_refresh: 2s\n"
		  "  template_refresh_packets: 2\n  collectors:\n"
		  "    - { address: 127.0.0.1, port: %u }\n",
		  PEN, port);
	sky_ipfix_tick(ip, T0); /* templates */
	assert_int_equal(collector_recv(fd, lens), 1);
	sky_ipfix_tick(ip, T0 + 1000); /* not due: nothing */
	sky_ipfix_tick(ip, T0 + 2000); /* due by time: templates alone */
	assert_int_equal(collector_recv(fd, lens), 1);
	d_decode(d_buf[0], lens[0], m);
	assert_int_equal(m->n_tmpl_sets, 1);
	assert_int_equal(m->n_rec, 0);
	/* by packets: two data messages, then the templates lead the third */
	rec_v4(&r, 7);
	for (unsigned int i = 0; i < 3; i++) {
		sky_ipfix_add(ip, &r, T0 + 2100 + i);
		sky_ipfix_tick(ip, T0 + 2100 + i);
		assert_int_equal(collector_recv(fd, lens), 1);
		d_decode(d_buf[0], lens[0], m);
		assert_int_equal(m->n_tmpl_sets, i == 2 ? 1 : 0);
		assert_int_equal(m->n_rec, 2);
		assert_int_equal(m->seq, 2 * i);
	}
	assert_int_equal(sky_ipfix_collector_stats(ip, 0, &st), 0);
	assert_int_equal(st.template_sends, 3);
	assert_int_equal(st.messages, 5);
	/* the clock stepped back: the templates go again rather than in an hour */
	sky_ipfix_tick(ip, T0 - 3600000);
	assert_int_equal(collector_recv(fd, lens), 1);
	d_decode(d_buf[0], lens[0], m);
	assert_int_equal(m->n_tmpl_sets, 1);
	assert_int_equal(m->export_s, (T0 - 3600000) / 1000);
	sky_ipfix_tick(ip, T0 - 3600000 + 1000); /* and then not before template_refresh */
	assert_int_equal(sky_ipfix_collector_stats(ip, 0, &st), 0);
	assert_int_equal(st.template_sends, 4);
	assert_int_equal(st.messages, 6);
	sky_ipfix_destroy(ip);
	sky_cfg_free(cfg);
	close(fd);
	free(m);
}

/* A collector that is down: the sends fail, the records are counted as lost, the sequence
 * moves on, the other collector gets everything. */
static void
test_send_failures(void **state)
{
	uint16_t dead_port, port;
	int dead = collector_open(&dead_port), fd;
	struct sky_cfg *cfg;
	struct sky_ipfix *ip;
	struct sky_flow_rec r;
	struct sky_ipfix_stats st, good;
	size_t lens[16];
	unsigned int rounds;

	(void)state;
	close(dead); /* nothing listens there now: ICMP port unreachable */
	fd = collector_open(&port);
	ip = make(&cfg,
		  "ipfix:\n  enterprise_number: %d\n  collectors:\n"
		  "    - { address: 127.0.0.1, port: %u }\n"
		  "    - { address: 127.0.0.1, port: %u, observation_domain: 2 }\n",
		  PEN, dead_port, port);
	rec_v4(&r, 9);
	for (rounds = 1; rounds <= 50; rounds++) {
		assert_int_equal(sky_ipfix_add(ip, &r, T0 + rounds), 2);
		sky_ipfix_tick(ip, T0 + rounds);
		assert_int_equal(collector_recv(fd, lens), 1);
		assert_int_equal(sky_ipfix_collector_stats(ip, 0, &st), 0);
		if (st.send_errors >= 3)
			break;
		usleep(2000);
	}
	assert_true(rounds <= 50);
	assert_int_equal(st.last_errno, ECONNREFUSED);
	/* every record is either sent or counted lost, and the sequence counts both */
	assert_int_equal(st.records + st.drops, 2 * rounds);
	assert_true(st.drops >= 2 * 3);
	assert_int_equal(st.sequence, 2 * rounds);
	/* after each failure the templates go again: every message that went carried them */
	assert_true(st.messages >= 1);
	assert_int_equal(st.template_sends, st.messages);
	assert_int_equal(sky_ipfix_collector_stats(ip, 1, &good), 0);
	assert_int_equal(good.records, 2 * rounds);
	assert_int_equal(good.drops, 0);
	assert_int_equal(good.send_errors, 0);
	assert_int_equal(good.sequence, 2 * rounds);
	sky_ipfix_destroy(ip);
	sky_cfg_free(cfg);
	close(fd);
}

/* `ipfix show`, `status` and the Prometheus text. */
static int
fake_status(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	(void)arg;
	(void)argc;
	(void)argv;
	(void)call;
	*result = json_object();
	return 0;
}

static json_t *
run(const char *a0, const char *a1)
{
	char *argv[2] = {(char *)a0, (char *)a1};
	json_t *rep = sky_ctl_dispatch_argv(a1 ? 2 : 1, argv, 0, 0, 0);

	assert_non_null(rep);
	if (!json_is_true(json_object_get(rep, "ok")))
		fail_msg("%s", json_string_value(json_object_get(rep, "error")));
	return rep;
}

static void
test_views(void **state)
{
	uint16_t port;
	int fd = collector_open(&port);
	struct sky_cfg *cfg;
	struct sky_ipfix *ip;
	struct sky_flow_rec r;
	size_t lens[16], len;
	json_t *rep, *c;
	char *text, want[160];

	(void)state;
	ip = make(&cfg,
		  "ipfix:\n  enterprise_number: %d\n  collectors:\n"
		  "    - { address: 127.0.0.1, port: %u, observation_domain: 5 }\n",
		  PEN, port);
	assert_int_equal(sky_ctl_register("status", "", "fake", 0, fake_status, NULL), 0);
	assert_int_equal(sky_ipfix_register(ip), 0);
	rec_v4(&r, 1);
	sky_ipfix_add(ip, &r, T0);
	sky_ipfix_tick(ip, T0);
	assert_int_equal(collector_recv(fd, lens), 1);

	rep = run("ipfix", "show");
	c = json_array_get(json_object_get(json_object_get(rep, "result"), "collectors"), 0);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "address")), "127.0.0.1");
	assert_int_equal(json_integer_value(json_object_get(c, "port")), port);
	assert_int_equal(json_integer_value(json_object_get(c, "observation_domain")), 5);
	assert_int_equal(json_integer_value(json_object_get(c, "records")), 2);
	assert_int_equal(json_integer_value(json_object_get(c, "messages")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "template_sends")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "bytes")), lens[0]);
	assert_true(json_is_null(json_object_get(c, "last_error")));
	json_decref(rep);

	rep = run("status", NULL);
	c = json_object_get(json_object_get(rep, "result"), "ipfix");
	assert_non_null(c);
	assert_int_equal(json_integer_value(json_object_get(c, "records")), 2);
	assert_int_equal(json_integer_value(json_object_get(c, "drops")), 0);
	assert_int_equal(json_integer_value(json_object_get(c, "flow_records")), 1);
	json_decref(rep);

	text = sky_metrics_render(&len);
	assert_non_null(text);
	snprintf(want, sizeof(want), "skygate_ipfix_records_total{collector=\"127.0.0.1:%u\"} 2\n",
		 port);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "skygate_ipfix_flow_records_total 1\n"));
	assert_non_null(strstr(text, "# TYPE skygate_ipfix_drops_total counter\n"));
	free(text);

	sky_ipfix_destroy(ip); /* unregisters the metrics' object */
	text = sky_metrics_render(&len);
	assert_non_null(text);
	assert_null(strstr(text, "skygate_ipfix_records_total"));
	free(text);
	sky_periodic_clear();
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_cfg_free(cfg);
	close(fd);
}

/* ------------------------------------------------------------------ the flow table */

/* one UDP packet of the flow 100.64.0.1:5000 <-> 198.51.100.7:53 in direction dir */
static void
flow_packet(struct sky_flow *f, unsigned int dir, uint32_t len)
{
	struct sky_fx_pkt p = {.l3 = 4, .proto = 17, .len = len};
	uint8_t sub[16], rem[16];
	struct sky_meta m;
	struct rte_mbuf *mb;

	sky_fx_addr("100.64.0.1", sub);
	sky_fx_addr("198.51.100.7", rem);
	memcpy(p.src, dir == SKY_DIR_UP ? sub : rem, 16);
	memcpy(p.dst, dir == SKY_DIR_UP ? rem : sub, 16);
	p.sport = dir == SKY_DIR_UP ? 5000 : 53;
	p.dport = dir == SKY_DIR_UP ? 53 : 5000;
	mb = sky_fx_mbuf(sky_fx_pool, &p);
	assert_non_null(mb);
	memset(&m, 0, sizeof(m));
	m.dir = (uint8_t)dir;
	m.l3 = 4;
	m.proto = 17;
	m.flags = SKY_MF_PORTS;
	m.sport = p.sport;
	m.dport = p.dport;
	m.l3_off = 14;
	m.l4_off = 34;
	m.ip_len = (uint16_t)(len - 14);
	m.pkt_len = len;
	m.sub_idx = 0;
	m.sub_id = 4242;
	m.beam = 1;
	m.sub_country = sky_cc("DE");
	m.remote_country = sky_cc("US");
	memcpy(m.src, p.src, 16);
	memcpy(m.dst, p.dst, 16);
	sky_flow_burst(f, 0, &mb, &m, 1, rte_rdtsc());
	rte_pktmbuf_free(mb);
}

/* Without a collector the flow table stays off; with one (and no flows: section) the
 * exporter turns its records on and gets what it ends. */
static void
test_flow_consumer(void **state)
{
	uint16_t port;
	int fd = collector_open(&port);
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	struct sky_flow *f;
	struct sky_ipfix *ip;
	struct d_msg *m = calloc(1, sizeof(*m));
	size_t lens[16];
	unsigned int up = 0;

	(void)state;
	/* no collector: nothing turned on */
	cfg = sky_fx_cfg("ipfix.yaml", &err, "ipfix: { mtu: 1400 }\n");
	assert_non_null(cfg);
	f = sky_flow_create(cfg, 1, &err);
	assert_non_null(f);
	ip = sky_ipfix_create(cfg, f, &err);
	assert_non_null(ip);
	assert_int_equal(sky_flow_enabled(f), 0);
	sky_ipfix_destroy(ip);
	sky_flow_destroy(f);
	sky_cfg_free(cfg);

	d_n_tmpl = 0;
	cfg = sky_fx_cfg("ipfix.yaml", &err,
			 "ipfix:\n  enterprise_number: %d\n  collectors:\n"
			 "    - { address: 127.0.0.1, port: %u }\n",
			 PEN, port);
	assert_non_null(cfg);
	f = sky_flow_create(cfg, 1, &err);
	assert_non_null(f);
	assert_int_equal(sky_flow_enabled(f), 0); /* no flows: section */
	ip = sky_ipfix_create(cfg, f, &err);
	assert_non_null(ip);
	assert_int_equal(sky_flow_enabled(f), 1);
	for (int i = 0; i < 3; i++)
		flow_packet(f, SKY_DIR_UP, 100);
	for (int i = 0; i < 2; i++)
		flow_packet(f, SKY_DIR_DOWN, 300);
	assert_true(sky_flow_flush(f) >= 1);
	assert_int_equal(sky_ipfix_records_in(ip), 1);
	sky_ipfix_flush(ip);
	assert_int_equal(collector_recv(fd, lens), 1);
	d_decode(d_buf[0], lens[0], m);
	assert_int_equal(m->n_tmpl_sets, 1);
	assert_int_equal(m->n_rec, 2);
	for (unsigned int k = 0; k < 2; k++) {
		const struct d_record *r = &m->rec[k];
		unsigned int dir = (unsigned int)d_num(r, 1, 8);

		up += dir == SKY_DIR_UP;
		assert_int_equal(d_num(r, 0, 2), dir == SKY_DIR_UP ? 3 : 2);
		assert_int_equal(d_num(r, 0, 1), dir == SKY_DIR_UP ? 300 : 600);
		assert_int_equal(d_num(r, 0, 7), dir == SKY_DIR_UP ? 5000 : 53);
		assert_int_equal(d_num(r, 1, 1), 4242);
		assert_int_equal(d_num(r, 0, 136), SKY_FLOW_END_FORCED);
	}
	assert_int_equal(up, 1);
	sky_flow_destroy(f); /* nothing left to hand over */
	assert_int_equal(sky_ipfix_records_in(ip), 1);
	sky_ipfix_destroy(ip);
	sky_cfg_free(cfg);
	close(fd);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),	 cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_send_failures),	 cmocka_unit_test(test_encode_v4_v6),
		cmocka_unit_test(test_mtu_split),	 cmocka_unit_test(test_ipv6_collector),
		cmocka_unit_test(test_template_refresh), cmocka_unit_test(test_views),
	};

	const struct CMUnitTest eal_tests[] = {
		cmocka_unit_test(test_flow_consumer),
	};
	int rc;

	sky_runtime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	sky_fx_group = (struct sky_fx_group){.name = "test_ipfix",
					     .eal = {.pool_mbufs = 1023, .mem_mb = 256}};
	return rc | cmocka_run_group_tests(eal_tests, sky_fx_group_setup, sky_fx_group_teardown);
}
