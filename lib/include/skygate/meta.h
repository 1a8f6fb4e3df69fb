/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Per-packet metadata: the record every pipeline stage reads and fills.
 *
 * The worker keeps one array of these per RX burst (struct sky_meta meta[SKY_BURST]) next
 * to the mbuf array; meta[i] describes pkts[i]. Nothing is allocated per packet.
 *
 *   parse      fills dir..l4 fields, or sets verdict DROP with a parse reason
 *   subscriber fills sub_idx, sub_id, plan, beam, sub_country, realm, zone, quota_state
 *   geo        fills remote_country, remote_flags
 *   classify   fills cls
 *   policy     may set verdict DROP, or change cls / dscp
 *   shaper     may set verdict DROP (police, queue)
 *
 * A stage skips packets whose verdict is already SKY_V_DROP and packets with l3 == 0
 * (non-IP frames pass through untouched). Addresses are kept in network byte order;
 * an IPv4 address occupies the first 4 bytes of the 16-byte field, the rest is zero.
 * Ports are in host byte order.
 */
#ifndef SKYGATE_META_H
#define SKYGATE_META_H

#include <stddef.h>
#include <stdint.h>

#define SKY_BURST 32 /* packets per RX burst; side arrays are this long */

/* direction of a packet */
enum sky_dir {
	SKY_DIR_UP = 0,	  /* terminal -> internet: arrived on an uplink port */
	SKY_DIR_DOWN = 1, /* internet -> terminal: arrived on a backhaul port */
};

/* verdict of the pipeline so far */
enum sky_verdict {
	SKY_V_PASS = 0,
	SKY_V_DROP = 1,
};

/*
 * Drop reasons, defined once: yields enum sky_drop and the names used by stats,
 * telemetry and Prometheus output (VPP foreach_*_error style).
 */
#define SKY_FOREACH_DROP(_)                                                                        \
	_(NONE, "none")                                                                            \
	_(ETH_TRUNC, "eth_truncated")                                                              \
	_(VLAN_TRUNC, "vlan_truncated")                                                            \
	_(VLAN_DEPTH, "vlan_too_many_tags")                                                        \
	_(IP4_TRUNC, "ipv4_truncated")                                                             \
	_(IP4_VERSION, "ipv4_bad_version")                                                         \
	_(IP4_IHL, "ipv4_bad_ihl")                                                                 \
	_(IP4_TOTLEN, "ipv4_bad_total_length")                                                     \
	_(IP6_TRUNC, "ipv6_truncated")                                                             \
	_(IP6_VERSION, "ipv6_bad_version")                                                         \
	_(IP6_PAYLEN, "ipv6_bad_payload_length")                                                   \
	_(IP6_EXT_TRUNC, "ipv6_ext_header_truncated")                                              \
	_(IP6_EXT_CHAIN, "ipv6_ext_chain_too_long")                                                \
	_(L4_TRUNC, "l4_truncated")                                                                \
	_(SUB_UNKNOWN, "unknown_subscriber")                                                       \
	_(POLICY, "policy_drop")                                                                   \
	_(POLICY_FAULT, "policy_fault")                                                            \
	_(POLICE, "police_exceeded")                                                               \
	_(QUEUE_TAIL, "queue_tail_drop")                                                           \
	_(QUEUE_AQM, "queue_aqm_drop")                                                             \
	_(TX_FULL, "tx_full")                                                                      \
	_(NO_PEER, "no_peer")                                                                      \
	_(QUEUE_DELAY, "queue_delay_drop")                                                         \
	_(BEAM_NOT_OWNED, "beam_not_owned")

enum sky_drop {
#define SKY_DROP_ENUM(n, s) SKY_DROP_##n,
	SKY_FOREACH_DROP(SKY_DROP_ENUM)
#undef SKY_DROP_ENUM
		SKY_DROP_MAX
};

/** Name of a drop reason ("ipv4_bad_ihl"); "?" when out of range. */
const char *sky_drop_name(unsigned int reason);

/* flags */
#define SKY_MF_FRAG 0x01       /* IPv4/IPv6 fragment (any) */
#define SKY_MF_FRAG_FIRST 0x02 /* first fragment (offset 0, carries L4 header) */
#define SKY_MF_PORTS 0x04      /* sport/dport valid (TCP/UDP/SCTP, not a later fragment) */
#define SKY_MF_ICMP 0x08       /* icmp_type/icmp_code valid */
/* set by a stage that changed dscp (the policy): the worker's output step writes it into
 * the packet before TX (sky_parse_output_burst) */
#define SKY_MF_DSCP_SET 0x10

#define SKY_SUB_NONE UINT32_MAX /* sub_idx of a packet no subscriber owns */
#define SKY_COUNTRY_NONE 0	/* country code unknown */

/** ISO 3166 alpha-2 as u16: 'D','E' -> ('D' << 8) | 'E'. 0 = none. */
static inline uint16_t
sky_cc(const char *s)
{
	return (uint16_t)(((uint16_t)(uint8_t)s[0] << 8) | (uint8_t)s[1]);
}

struct sky_meta {
	/* --- parse --- */
	uint8_t dir;	    /* enum sky_dir (set by the worker from the RX port's role) */
	uint8_t verdict;    /* enum sky_verdict */
	uint8_t reason;	    /* enum sky_drop when verdict == DROP */
	uint8_t l3;	    /* 4, 6, or 0 for non-IP (passed untouched) */
	uint8_t proto;	    /* final L4 protocol number (after IPv6 ext headers) */
	uint8_t dscp;	    /* 6-bit DSCP */
	uint8_t flags;	    /* SKY_MF_* */
	uint8_t n_vlan;	    /* 0..2 */
	uint16_t outer_vid; /* VID of the outer tag (the realm), 0 if untagged */
	uint16_t inner_vid; /* VID of the inner tag, 0 if none */
	uint16_t l3_off;    /* offset of the IP header in the frame */
	uint16_t l4_off;    /* offset of the L4 header (0 if not reached) */
	uint16_t sport;	    /* host order, valid with SKY_MF_PORTS */
	uint16_t dport;
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint16_t ip_len;  /* IPv4 total length / IPv6 40 + payload length */
	uint32_t pkt_len; /* frame length (rte_pktmbuf_pkt_len) */
	/* --- subscriber --- */
	uint32_t sub_idx;     /* index in the subscriber table, SKY_SUB_NONE if unknown */
	uint32_t sub_id;      /* operator's subscriber id (CSV id), 0 if unknown */
	uint16_t plan;	      /* plan index */
	uint16_t beam;	      /* beam index */
	uint16_t sub_country; /* terminal's country (sky_cc), from the OSS */
	uint16_t realm;	      /* realm of the matched subscriber (outer VLAN), 0 = none */
	/* --- geo --- */
	uint16_t remote_country; /* country of the remote address, SKY_COUNTRY_NONE if unknown */
	uint8_t remote_flags;	 /* SKY_GEO_F_* (anycast, satellite, anonymous proxy) */
	/* --- classify / policy --- */
	uint8_t cls;	    /* class index (0 = highest priority) */
	uint8_t worker_tag; /* free for the worker (e.g. output slot) */
	/* --- subscriber (continued) --- */
	uint8_t zone;	     /* terminal's zone id (config `zones`, 1..255), 0 = none */
	uint8_t quota_state; /* enum sky_quota_state (skygate/subscriber.h) */
	uint8_t pad[1];
	/* --- addresses, network order --- */
	uint8_t src[16];
	uint8_t dst[16];
} __attribute__((aligned(32)));

_Static_assert(sizeof(struct sky_meta) == 96, "sky_meta layout changed");

/* geo flags (libloc network flags) */
#define SKY_GEO_F_ANONYMOUS_PROXY 0x01
#define SKY_GEO_F_SATELLITE 0x02
#define SKY_GEO_F_ANYCAST 0x04
#define SKY_GEO_F_DROP 0x08

/** Address of the subscriber side of the packet (src upstream, dst downstream). */
static inline const uint8_t *
sky_meta_sub_addr(const struct sky_meta *m)
{
	return m->dir == SKY_DIR_UP ? m->src : m->dst;
}

/** Address of the remote (internet) side of the packet. */
static inline const uint8_t *
sky_meta_remote_addr(const struct sky_meta *m)
{
	return m->dir == SKY_DIR_UP ? m->dst : m->src;
}

/** A stage should look at this packet: IP and not yet dropped. */
static inline int
sky_meta_live(const struct sky_meta *m)
{
	return m->l3 != 0 && m->verdict == SKY_V_PASS;
}

static inline void
sky_meta_drop(struct sky_meta *m, enum sky_drop reason)
{
	m->verdict = SKY_V_DROP;
	m->reason = (uint8_t)reason;
}

#endif /* SKYGATE_META_H */
