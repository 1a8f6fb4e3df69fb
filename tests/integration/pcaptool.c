/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pcaptool: builds the frames the integration tests feed skygate and compares what
 * comes out.
 *   pcaptool gen DIR      DIR/{up_in,down_in,up_expect,down_expect}.pcap + DIR/counts
 *   pcaptool cmp A B      packet bytes of A and B equal, in order (timestamps ignored)
 *   pcaptool count A      number of packets
 *   pcaptool flows DIR T1,T2 R1,R2,...   DIR/flows_in.pcap: every terminal x remote address,
 *                         upstream (terminal -> remote), UDP and TCP; DIR/flows.txt: "i term
 * remote" pcaptool pick IN OUT I1,I2,...       OUT = the packets of IN at those indexes (0-based)
 * Upstream frames come from terminals 10.1.0.0/16 and 2001:db8:100::/40 toward remote
 * hosts; downstream the reverse. The mix covers untagged/802.1Q/QinQ, IPv4 with options
 * and fragments, IPv6 with extension headers, TCP/UDP/SCTP/ICMP/ICMPv6, non-IP frames
 * (ARP, LLDP), and malformed IP frames that skygate must drop and count.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

struct frame {
	uint8_t b[1600];
	unsigned int len;
};

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
csum(const uint8_t *p, unsigned int len)
{
	uint32_t s = 0;

	for (unsigned int i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)(p[len - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Ethernet + tags; returns offset of the ethertype field's end */
static unsigned int
eth(struct frame *f, int n_vlan, uint16_t vid_outer, uint16_t vid_inner, uint16_t ethertype)
{
	static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x02}, src[6] = {0x02, 0, 0, 0, 0, 0x01};
	unsigned int o = 12;

	memcpy(f->b, dst, 6);
	memcpy(f->b + 6, src, 6);
	if (n_vlan == 2) {
		put16(f->b + o, 0x88a8);
		put16(f->b + o + 2, vid_outer);
		put16(f->b + o + 4, 0x8100);
		put16(f->b + o + 6, vid_inner);
		o += 8;
	} else if (n_vlan == 1) {
		put16(f->b + o, 0x8100);
		put16(f->b + o + 2, vid_outer);
		o += 4;
	}
	put16(f->b + o, ethertype);
	return o + 2;
}

static unsigned int
l4(uint8_t *p, uint8_t proto, uint16_t sport, uint16_t dport, unsigned int payload)
{
	unsigned int h;

	switch (proto) {
	case 6:
		h = 20;
		memset(p, 0, h);
		put16(p, sport);
		put16(p + 2, dport);
		p[12] = 5 << 4;
		p[13] = 0x18;
		break;
	case 17:
		h = 8;
		put16(p, sport);
		put16(p + 2, dport);
		put16(p + 4, (uint16_t)(h + payload));
		put16(p + 6, 0);
		break;
	case 132:
		h = 12;
		memset(p, 0, h);
		put16(p, sport);
		put16(p + 2, dport);
		break;
	default: /* ICMP echo / ICMPv6 echo */
		h = 8;
		memset(p, 0, h);
		p[0] = proto == 1 ? 8 : 128;
		break;
	}
	for (unsigned int i = 0; i < payload; i++)
		p[h + i] = (uint8_t)(i * 7);
	return h + payload;
}

static void
ipv4(struct frame *f, int n_vlan, const char *src, const char *dst, uint8_t proto, uint8_t dscp,
     int opts, uint16_t frag, unsigned int payload)
{
	unsigned int o = eth(f, n_vlan, 100, 200, 0x0800), ihl = opts ? 6 : 5, len;
	uint8_t *ip = f->b + o;

	memset(ip, 0, ihl * 4);
	ip[0] = (uint8_t)(0x40 | ihl);
	ip[1] = (uint8_t)(dscp << 2);
	put16(ip + 4, 0x1234);
	put16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = proto;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	if (opts)
		ip[20] = 1, ip[21] = 1, ip[22] = 1, ip[23] = 0; /* NOPs + EOL */
	if ((frag & 0x1fff) != 0) {
		len = payload;
		for (unsigned int i = 0; i < len; i++)
			ip[ihl * 4 + i] = (uint8_t)i;
	} else {
		len = l4(ip + ihl * 4, proto, 40000, proto == 17 ? 53 : 443, payload);
	}
	put16(ip + 2, (uint16_t)(ihl * 4 + len));
	put16(ip + 10, csum(ip, ihl * 4));
	f->len = o + ihl * 4 + len;
	if (f->len < 60) { /* Ethernet padding: beyond IP total length, must be accepted */
		memset(f->b + f->len, 0, 60 - f->len);
		f->len = 60;
	}
}

static void
ipv6(struct frame *f, int n_vlan, const char *src, const char *dst, uint8_t proto, int n_ext,
     unsigned int payload)
{
	unsigned int o = eth(f, n_vlan, 300, 400, 0x86dd), e = 0, len;
	uint8_t *ip = f->b + o, *p;
	uint8_t next = n_ext ? 0 : proto;

	memset(ip, 0, 40);
	ip[0] = 0x60;
	ip[1] = 0xb8; /* traffic class 0x8b: DSCP 34 in the upper bits */
	ip[7] = 64;
	inet_pton(AF_INET6, src, ip + 8);
	inet_pton(AF_INET6, dst, ip + 24);
	p = ip + 40;
	for (int i = 0; i < n_ext; i++) {
		/* hop-by-hop first, then destination options (60) */
		uint8_t nh = i + 1 < n_ext ? 60 : proto;

		memset(p + e, 0, 8);
		p[e] = nh;
		p[e + 1] = 0;
		p[e + 2] = 1; /* PadN */
		p[e + 3] = 4;
		e += 8;
	}
	len = e + l4(p + e, proto, 50000, 443, payload);
	ip[6] = next;
	put16(ip + 4, (uint16_t)len);
	f->len = o + 40 + len;
	if (f->len < 60) {
		memset(f->b + f->len, 0, 60 - f->len);
		f->len = 60;
	}
}

static void
arp(struct frame *f)
{
	unsigned int o = eth(f, 0, 0, 0, 0x0806);

	memset(f->b + o, 0, 28);
	put16(f->b + o, 1);
	put16(f->b + o + 2, 0x0800);
	f->b[o + 4] = 6;
	f->b[o + 5] = 4;
	put16(f->b + o + 6, 1);
	f->len = 60;
	memset(f->b + o + 28, 0, 60 - o - 28);
}

static void
lldp(struct frame *f)
{
	unsigned int o = eth(f, 0, 0, 0, 0x88cc);

	memset(f->b + o, 0, 46);
	f->b[o] = 0x02;
	f->b[o + 1] = 0x07;
	f->len = o + 46;
}

struct out {
	pcap_dumper_t *in, *expect;
	unsigned int n_in, n_expect, n_malformed;
};

static void
emit(struct out *o, const struct frame *f, int malformed)
{
	struct pcap_pkthdr h = {.caplen = f->len, .len = f->len};

	h.ts.tv_sec = 1700000000;
	h.ts.tv_usec = o->n_in;
	pcap_dump((u_char *)o->in, &h, f->b);
	o->n_in++;
	if (malformed) {
		o->n_malformed++;
		return;
	}
	pcap_dump((u_char *)o->expect, &h, f->b);
	o->n_expect++;
}

static pcap_dumper_t *
open_dump(pcap_t *p, const char *dir, const char *name)
{
	char path[512];
	pcap_dumper_t *d;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	d = pcap_dump_open(p, path);
	if (d == NULL) {
		fprintf(stderr, "pcaptool: %s: %s\n", path, pcap_geterr(p));
		exit(2);
	}
	return d;
}

/* one direction's traffic; up = terminal addresses are sources */
static void
gen_dir(struct out *o, int up)
{
	static const char *const remote4[] = {"8.8.8.8", "1.1.1.1", "77.88.8.8", "185.12.64.1"};
	static const char *const remote6[] = {"2001:4860:4860::8888", "2a00:1450:4001::1"};
	static const uint8_t protos4[] = {6, 17, 132, 1, 47};
	static const uint8_t protos6[] = {6, 17, 58};
	struct frame f;
	char term[64];

	for (int rep = 0; rep < 8; rep++) {
		for (int v = 0; v < 3; v++) {
			for (unsigned int pi = 0; pi < sizeof(protos4); pi++) {
				const char *r = remote4[(rep + pi) % 4];

				snprintf(term, sizeof(term), "10.1.%d.%d", rep,
					 10 + v * 10 + (int)pi);
				memset(&f, 0, sizeof(f));
				ipv4(&f, v, up ? term : r, up ? r : term, protos4[pi],
				     (uint8_t)(pi == 1 ? 46 : 0), rep & 1, 0, 16 + rep * 50);
				emit(o, &f, 0);
			}
			for (unsigned int pi = 0; pi < sizeof(protos6); pi++) {
				const char *r = remote6[(rep + pi) % 2];

				snprintf(term, sizeof(term), "2001:db8:100:%x::%x", rep,
					 1 + v + pi);
				memset(&f, 0, sizeof(f));
				ipv6(&f, v, up ? term : r, up ? r : term, protos6[pi], rep % 3,
				     10 + rep * 30);
				emit(o, &f, 0);
			}
		}
		/* fragments: first (MF, offset 0) and a later one (offset 185*8) */
		snprintf(term, sizeof(term), "10.1.%d.99", rep);
		memset(&f, 0, sizeof(f));
		ipv4(&f, 0, up ? term : "8.8.4.4", up ? "8.8.4.4" : term, 17, 0, 0, 0x2000, 200);
		emit(o, &f, 0);
		memset(&f, 0, sizeof(f));
		ipv4(&f, 0, up ? term : "8.8.4.4", up ? "8.8.4.4" : term, 17, 0, 0, 185, 300);
		emit(o, &f, 0);
		/* non-IP passes untouched */
		memset(&f, 0, sizeof(f));
		arp(&f);
		emit(o, &f, 0);
		memset(&f, 0, sizeof(f));
		lldp(&f);
		emit(o, &f, 0);
		/* malformed: each is dropped and counted */
		snprintf(term, sizeof(term), "10.1.%d.77", rep);
		memset(&f, 0, sizeof(f));
		ipv4(&f, 0, up ? term : "9.9.9.9", up ? "9.9.9.9" : term, 6, 0, 0, 0, 100);
		f.b[14] = 0x43; /* IHL 3 */
		emit(o, &f, 1);
		memset(&f, 0, sizeof(f));
		ipv4(&f, 0, up ? term : "9.9.9.9", up ? "9.9.9.9" : term, 6, 0, 0, 0, 100);
		put16(f.b + 16, 1400); /* total length beyond the frame */
		emit(o, &f, 1);
		memset(&f, 0, sizeof(f));
		ipv4(&f, 1, up ? term : "9.9.9.9", up ? "9.9.9.9" : term, 6, 0, 0, 0, 100);
		f.len = 18 + 12; /* IPv4 header cut */
		emit(o, &f, 1);
		memset(&f, 0, sizeof(f));
		snprintf(term, sizeof(term), "2001:db8:100:%x::77", rep);
		ipv6(&f, 0, up ? term : "2001:4860::1", up ? "2001:4860::1" : term, 6, 12, 20);
		emit(o, &f, 1); /* extension chain too long */
		memset(&f, 0, sizeof(f));
		ipv6(&f, 0, up ? term : "2001:4860::1", up ? "2001:4860::1" : term, 6, 0, 0);
		f.len = 14 + 40 + 10; /* TCP header cut */
		put16(f.b + 14 + 4, 10);
		emit(o, &f, 1);
	}
}

static int
gen(const char *dir)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	struct out up = {0}, down = {0};
	char path[512];
	FILE *c;

	up.in = open_dump(p, dir, "up_in.pcap");
	up.expect = open_dump(p, dir, "up_expect.pcap");
	down.in = open_dump(p, dir, "down_in.pcap");
	down.expect = open_dump(p, dir, "down_expect.pcap");
	gen_dir(&up, 1);
	gen_dir(&down, 0);
	pcap_dump_close(up.in);
	pcap_dump_close(up.expect);
	pcap_dump_close(down.in);
	pcap_dump_close(down.expect);
	pcap_close(p);
	snprintf(path, sizeof(path), "%s/counts", dir);
	c = fopen(path, "w");
	if (c == NULL)
		return 2;
	fprintf(c, "UP_IN=%u\nUP_EXPECT=%u\nUP_MALFORMED=%u\n", up.n_in, up.n_expect,
		up.n_malformed);
	fprintf(c, "DOWN_IN=%u\nDOWN_EXPECT=%u\nDOWN_MALFORMED=%u\n", down.n_in, down.n_expect,
		down.n_malformed);
	fclose(c);
	return 0;
}

static pcap_t *
open_file(const char *path)
{
	char e[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, e);

	if (p == NULL) {
		fprintf(stderr, "pcaptool: %s: %s\n", path, e);
		exit(2);
	}
	return p;
}

static int
cmp(const char *a, const char *b)
{
	pcap_t *pa = open_file(a), *pb = open_file(b);
	struct pcap_pkthdr *ha, *hb;
	const u_char *da, *db;
	unsigned int i = 0;
	int ra, rb;

	for (;; i++) {
		ra = pcap_next_ex(pa, &ha, &da);
		rb = pcap_next_ex(pb, &hb, &db);
		if (ra != 1 || rb != 1)
			break;
		if (ha->caplen != hb->caplen || memcmp(da, db, ha->caplen) != 0) {
			fprintf(stderr, "pcaptool: packet %u differs (%u vs %u bytes)\n", i,
				ha->caplen, hb->caplen);
			return 1;
		}
	}
	if (ra == 1 || rb == 1) {
		fprintf(stderr, "pcaptool: %s has more packets than %s (after %u)\n",
			ra == 1 ? a : b, ra == 1 ? b : a, i);
		return 1;
	}
	printf("identical: %u packets\n", i);
	return 0;
}

static int
count(const char *a)
{
	pcap_t *p = open_file(a);
	struct pcap_pkthdr *h;
	const u_char *d;
	unsigned int n = 0;

	while (pcap_next_ex(p, &h, &d) == 1)
		n++;
	printf("%u\n", n);
	return 0;
}

static int
flows(const char *dir, char *terms, char *remotes)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d = open_dump(p, dir, "flows_in.pcap");
	char path[512], *sv1, *sv2;
	unsigned int i = 0;
	FILE *f;
	struct frame fr;

	snprintf(path, sizeof(path), "%s/flows.txt", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return 2;
	for (char *t = strtok_r(terms, ",", &sv1); t != NULL; t = strtok_r(NULL, ",", &sv1)) {
		char rcopy[4096];

		snprintf(rcopy, sizeof(rcopy), "%s", remotes);
		for (char *r = strtok_r(rcopy, ",", &sv2); r != NULL;
		     r = strtok_r(NULL, ",", &sv2)) {
			if ((strchr(r, ':') != NULL) != (strchr(t, ':') != NULL))
				continue; /* one family per frame */
			for (int k = 0; k < 2; k++) {
				struct pcap_pkthdr h = {0};

				memset(&fr, 0, sizeof(fr));
				if (strchr(r, ':') != NULL)
					ipv6(&fr, 0, t, r, k ? 6 : 17, 0, 40);
				else
					ipv4(&fr, 0, t, r, k ? 6 : 17, 0, 0, 0, 40);
				h.caplen = h.len = fr.len;
				h.ts.tv_sec = 1700000000;
				h.ts.tv_usec = i;
				pcap_dump((u_char *)d, &h, fr.b);
				fprintf(f, "%u %s %s\n", i++, t, r);
			}
		}
	}
	fclose(f);
	pcap_dump_close(d);
	pcap_close(p);
	return 0;
}

static int
pick(const char *in, const char *out, char *list)
{
	pcap_t *pi = open_file(in), *po = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d = pcap_dump_open(po, out);
	static unsigned char want[1 << 16];
	struct pcap_pkthdr *h;
	const u_char *data;
	unsigned int i = 0, n = 0;
	char *sv;

	if (d == NULL)
		return 2;
	for (char *t = strtok_r(list, ",", &sv); t != NULL; t = strtok_r(NULL, ",", &sv))
		want[strtoul(t, NULL, 10) & 0xffff] = 1;
	while (pcap_next_ex(pi, &h, &data) == 1) {
		if (want[i++ & 0xffff]) {
			pcap_dump((u_char *)d, h, data);
			n++;
		}
	}
	pcap_dump_close(d);
	pcap_close(po);
	pcap_close(pi);
	printf("%u\n", n);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "flows") == 0)
		return flows(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "pick") == 0)
		return pick(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "gen") == 0)
		return gen(argv[2]);
	if (argc == 4 && strcmp(argv[1], "cmp") == 0)
		return cmp(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "count") == 0)
		return count(argv[2]);
	fprintf(stderr, "usage: pcaptool gen DIR | cmp A B | count A | flows DIR T,.. R,.. | pick "
			"IN OUT I,..\n");
	return 2;
}
