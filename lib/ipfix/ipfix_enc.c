/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RFC 7011 encoding: message and set headers, the template set, data records. No I/O.
 *
 * One table per template lists the fields in record order; the template set and the data
 * records are both written from it, so they cannot disagree. All numbers in network
 * order. A bidirectional flow record gives one data record per direction: upstream the
 * terminal is the source, downstream the remote host is.
 *
 * Standard information elements (IANA registry), then enterprise-specific ones (bit 15 of
 * the element id set, followed by the private enterprise number from the config):
 *   8/27 sourceIPv4/IPv6Address   12/28 destinationIPv4/IPv6Address
 *   7 sourceTransportPort         11 destinationTransportPort     4 protocolIdentifier
 *   6 tcpControlBits (1 byte: reduced size, RFC 7011 6.2; flags of both directions)
 *   1 octetDeltaCount (frame bytes) 2 packetDeltaCount
 *   152/153 flowStart/EndMilliseconds  136 flowEndReason
 *   89 forwardingStatus (1 byte, RFC 7270: 64 forwarded, 128 dropped, 129 dropped by the
 *      policy (ACL deny), 138 dropped by the policer)
 *   10/14 ingressInterface/egressInterface (2 bytes): the side the packets came in and went
 *      out, 1 = uplink (satellite), 2 = backhaul; egress 0 = dropped (the NetFlow custom,
 *      which nfdump shows: `out if 0`, while it ignores forwardingStatus and enterprise
 *      elements)
 *   58 vlanId (the subscriber's realm, 0 = none)
 *   enterprise 1 subscriberId (4)   2 beam (2)   3 terminalCountry (string, 2)
 *              4 remoteCountry (string, 2)   5 policyVerdict (1: 0 pass, 1 drop)
 *              6 dropReason (1: enum sky_drop)   7 class (1: class index)
 *              8 direction (1: 0 upstream, 1 downstream)
 *              9 rttSatelliteMicroseconds (4)   10 rttInternetMicroseconds (4), 0 = none
 */
#include <string.h>

#include <rte_byteorder.h>

#include "skygate/meta.h"

#include "ipfix_priv.h"

enum field {
	F_SRC_ADDR,
	F_DST_ADDR,
	F_SRC_PORT,
	F_DST_PORT,
	F_PROTO,
	F_TCP_FLAGS,
	F_OCTETS,
	F_PACKETS,
	F_START,
	F_END,
	F_END_REASON,
	F_FWD_STATUS,
	F_IN_IF,
	F_OUT_IF,
	F_VLAN,
	F_SUB_ID,
	F_BEAM,
	F_SUB_COUNTRY,
	F_REMOTE_COUNTRY,
	F_VERDICT,
	F_DROP_REASON,
	F_CLASS,
	F_DIRECTION,
	F_RTT_SAT,
	F_RTT_INET,
};

struct ie {
	uint16_t id;  /* without the enterprise bit */
	uint16_t len; /* bytes in a data record */
	uint8_t ent;  /* 1: enterprise-specific (the config's PEN) */
	uint8_t what; /* enum field */
};

#define IE_COMMON                                                                                  \
	{7, 2, 0, F_SRC_PORT}, {11, 2, 0, F_DST_PORT}, {4, 1, 0, F_PROTO}, {6, 1, 0, F_TCP_FLAGS}, \
		{1, 8, 0, F_OCTETS}, {2, 8, 0, F_PACKETS}, {152, 8, 0, F_START},                   \
		{153, 8, 0, F_END}, {136, 1, 0, F_END_REASON}, {89, 1, 0, F_FWD_STATUS},           \
		{10, 2, 0, F_IN_IF}, {14, 2, 0, F_OUT_IF}, {58, 2, 0, F_VLAN},                     \
		{1, 4, 1, F_SUB_ID}, {2, 2, 1, F_BEAM}, {3, 2, 1, F_SUB_COUNTRY},                  \
		{4, 2, 1, F_REMOTE_COUNTRY}, {5, 1, 1, F_VERDICT}, {6, 1, 1, F_DROP_REASON},       \
		{7, 1, 1, F_CLASS}, {8, 1, 1, F_DIRECTION}, {9, 4, 1, F_RTT_SAT},                  \
	{                                                                                          \
		10, 4, 1, F_RTT_INET                                                               \
	}

static const struct ie ie_v4[] = {{8, 4, 0, F_SRC_ADDR}, {12, 4, 0, F_DST_ADDR}, IE_COMMON};
static const struct ie ie_v6[] = {{27, 16, 0, F_SRC_ADDR}, {28, 16, 0, F_DST_ADDR}, IE_COMMON};

#define N_V4 (sizeof(ie_v4) / sizeof(ie_v4[0]))
#define N_V6 (sizeof(ie_v6) / sizeof(ie_v6[0]))

static inline uint8_t *
put16(uint8_t *p, uint16_t v)
{
	v = rte_cpu_to_be_16(v);
	memcpy(p, &v, 2);
	return p + 2;
}

static inline uint8_t *
put32(uint8_t *p, uint32_t v)
{
	v = rte_cpu_to_be_32(v);
	memcpy(p, &v, 4);
	return p + 4;
}

static inline uint8_t *
put64(uint8_t *p, uint64_t v)
{
	v = rte_cpu_to_be_64(v);
	memcpy(p, &v, 8);
	return p + 8;
}

static size_t
template_len(const struct ie *f, size_t n)
{
	size_t len = 4; /* template id, field count */

	for (size_t i = 0; i < n; i++)
		len += f[i].ent ? 8 : 4;
	return len;
}

static uint8_t *
put_template(uint8_t *p, uint16_t tid, const struct ie *f, size_t n, uint32_t pen)
{
	p = put16(p, tid);
	p = put16(p, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		p = put16(p, (uint16_t)(f[i].id | (f[i].ent ? 0x8000 : 0)));
		p = put16(p, f[i].len);
		if (f[i].ent)
			p = put32(p, pen);
	}
	return p;
}

size_t
ipfix_enc_templates_len(void)
{
	return IPFIX_SET_HDR + template_len(ie_v4, N_V4) + template_len(ie_v6, N_V6);
}

size_t
ipfix_enc_templates(uint8_t *p, uint32_t pen)
{
	size_t len = ipfix_enc_templates_len();
	uint8_t *q;

	ipfix_enc_set_header(p, IPFIX_SET_TEMPLATE, (uint16_t)len);
	q = put_template(p + IPFIX_SET_HDR, SKY_IPFIX_TEMPLATE_V4, ie_v4, N_V4, pen);
	q = put_template(q, SKY_IPFIX_TEMPLATE_V6, ie_v6, N_V6, pen);
	return (size_t)(q - p);
}

size_t
ipfix_enc_record_len(int v6)
{
	const struct ie *f = v6 ? ie_v6 : ie_v4;
	size_t n = v6 ? N_V6 : N_V4, len = 0;

	for (size_t i = 0; i < n; i++)
		len += f[i].len;
	return len;
}

/* RFC 7270 forwardingStatus, reduced to one byte: status in the top two bits. */
static uint8_t
fwd_status(const struct sky_flow_rec *r)
{
	if (r->verdict == SKY_V_PASS)
		return 64; /* forwarded, reason unknown */
	switch (r->reason) {
	case SKY_DROP_POLICY:
		return 129; /* dropped: ACL deny */
	case SKY_DROP_POLICE:
		return 138; /* dropped: policer */
	default:
		return 128; /* dropped, reason unknown */
	}
}

static uint8_t *
put_country(uint8_t *p, uint16_t cc)
{
	p[0] = (uint8_t)(cc >> 8);
	p[1] = (uint8_t)cc;
	return p + 2;
}

size_t
ipfix_enc_record(uint8_t *p, const struct sky_flow_rec *r, unsigned int dir)
{
	const int v6 = r->l3 == 6;
	const struct ie *f = v6 ? ie_v6 : ie_v4;
	const size_t n = v6 ? N_V6 : N_V4;
	const size_t alen = v6 ? 16 : 4;
	const int up = dir == SKY_DIR_UP;
	uint8_t *q = p;

	for (size_t i = 0; i < n; i++) {
		switch ((enum field)f[i].what) {
		case F_SRC_ADDR:
			memcpy(q, up ? r->sub_addr : r->remote_addr, alen);
			q += alen;
			break;
		case F_DST_ADDR:
			memcpy(q, up ? r->remote_addr : r->sub_addr, alen);
			q += alen;
			break;
		case F_SRC_PORT:
			q = put16(q, up ? r->sub_port : r->remote_port);
			break;
		case F_DST_PORT:
			q = put16(q, up ? r->remote_port : r->sub_port);
			break;
		case F_PROTO:
			*q++ = r->proto;
			break;
		case F_TCP_FLAGS:
			*q++ = r->tcp_flags;
			break;
		case F_OCTETS:
			q = put64(q, r->bytes[dir]);
			break;
		case F_PACKETS:
			q = put64(q, r->packets[dir]);
			break;
		case F_START:
			q = put64(q, r->first_ns / 1000000);
			break;
		case F_END:
			q = put64(q, r->last_ns / 1000000);
			break;
		case F_END_REASON:
			*q++ = r->end;
			break;
		case F_FWD_STATUS:
			*q++ = fwd_status(r);
			break;
		case F_IN_IF:
			q = put16(q, up ? SKY_IPFIX_IF_UPLINK : SKY_IPFIX_IF_BACKHAUL);
			break;
		case F_OUT_IF:
			q = put16(q, r->verdict != SKY_V_PASS ? 0
				     : up		      ? SKY_IPFIX_IF_BACKHAUL
							      : SKY_IPFIX_IF_UPLINK);
			break;
		case F_VLAN:
			q = put16(q, r->realm);
			break;
		case F_SUB_ID:
			q = put32(q, r->sub_id);
			break;
		case F_BEAM:
			q = put16(q, r->beam);
			break;
		case F_SUB_COUNTRY:
			q = put_country(q, r->sub_country);
			break;
		case F_REMOTE_COUNTRY:
			q = put_country(q, r->remote_country);
			break;
		case F_VERDICT:
			*q++ = r->verdict;
			break;
		case F_DROP_REASON:
			*q++ = r->verdict == SKY_V_PASS ? 0 : r->reason;
			break;
		case F_CLASS:
			*q++ = r->cls;
			break;
		case F_DIRECTION:
			*q++ = (uint8_t)dir;
			break;
		case F_RTT_SAT:
			q = put32(q, r->rtt_sat_us);
			break;
		case F_RTT_INET:
			q = put32(q, r->rtt_inet_us);
			break;
		}
	}
	return (size_t)(q - p);
}

void
ipfix_enc_header(uint8_t *p, uint16_t length, uint32_t export_s, uint32_t seq, uint32_t domain)
{
	p = put16(p, IPFIX_VERSION);
	p = put16(p, length);
	p = put32(p, export_s);
	p = put32(p, seq);
	put32(p, domain);
}

void
ipfix_enc_set_header(uint8_t *p, uint16_t set_id, uint16_t length)
{
	p = put16(p, set_id);
	put16(p, length);
}
