/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What lib/ipfix's files share. Calls run one way: ipfix_ctl.c (commands, telemetry,
 * Prometheus, the periodic task) -> ipfix.c (owner: collectors, sockets, messages) ->
 * ipfix_cfg.c (the `ipfix:` section) and ipfix_enc.c (RFC 7011 encoding, no I/O).
 * Everything runs on the main lcore except the telemetry callback (DPDK's telemetry
 * thread), which only reads counters (relaxed atomics) under ipfix_ctl.c's lock.
 */
#ifndef SKY_IPFIX_PRIV_H
#define SKY_IPFIX_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "skygate/ipfix.h"

#define IPFIX_VERSION 10
#define IPFIX_MSG_HDR 16
#define IPFIX_SET_HDR 4
#define IPFIX_SET_TEMPLATE 2
#define IPFIX_MAX_MSG 9000 /* mtu at most 9000: one buffer of this size per collector */
#define IPFIX_PERIOD_US 100000
#define IPFIX_SNDBUF (1 << 20) /* socket send buffer asked for, per collector */

/* ---- configuration (ipfix_cfg.c) ---- */

struct ipfix_coll_conf {
	struct sockaddr_storage sa;
	socklen_t sa_len;
	int family;
	char address[64]; /* as written, normalised */
	uint16_t port;
	uint32_t domain;
};

struct ipfix_conf {
	unsigned int n_coll;
	struct ipfix_coll_conf coll[SKY_IPFIX_MAX_COLLECTORS];
	uint64_t refresh_ms;	  /* template_refresh */
	uint64_t refresh_packets; /* template_refresh_packets, 0 = off */
	uint32_t pen;		  /* enterprise_number */
	unsigned int mtu;
};

/** Read and check the `ipfix:` section into c (defaults first). 0, or -1 with err filled. */
int ipfix_conf_parse(const struct sky_cfg *cfg, struct ipfix_conf *c, struct sky_cfg_err *err);

/* ---- encoding (ipfix_enc.c) ---- */

/** Bytes of the template set announcing both templates. */
size_t ipfix_enc_templates_len(void);
/** Write the template set (templates 256 and 257) at p; returns its length. */
size_t ipfix_enc_templates(uint8_t *p, uint32_t pen);
/** Bytes of one data record of the IPv4 (v6 = 0) or IPv6 template. */
size_t ipfix_enc_record_len(int v6);
/** Write the data record of rec's direction dir (enum sky_dir) at p; returns its length. */
size_t ipfix_enc_record(uint8_t *p, const struct sky_flow_rec *rec, unsigned int dir);
/** Write a message header at p (length = the whole message). */
void ipfix_enc_header(uint8_t *p, uint16_t length, uint32_t export_s, uint32_t seq,
		      uint32_t domain);
/** Write a set header at p. */
void ipfix_enc_set_header(uint8_t *p, uint16_t set_id, uint16_t length);

/* ---- the exporter (ipfix.c) ---- */

struct ipfix_coll {
	struct ipfix_coll_conf conf;
	int fd;
	size_t max_msg; /* mtu - IP header - UDP header */
	/* the message being filled */
	uint8_t *buf;
	size_t len;	       /* 0 = no message open */
	size_t set_off;	       /* offset of the open data set's header, 0 = none */
	uint16_t set_id;       /* its template id */
	uint32_t n_data;       /* data records in the message */
	int has_templates;     /* the message carries the template set */
	int templates_due;     /* the next message starts with the template set */
	uint64_t last_tmpl_ms; /* when the template set was last sent */
	uint64_t msgs_since_tmpl;
	uint32_t conf_pen;	       /* the enterprise number of the templates */
	uint64_t conf_refresh_packets; /* template_refresh_packets */
	/* counters: written on the main lcore, read by telemetry (relaxed atomics) */
	struct sky_ipfix_stats st;
};

struct sky_ipfix {
	struct ipfix_conf conf;
	unsigned int n_coll;
	struct ipfix_coll coll[SKY_IPFIX_MAX_COLLECTORS];
	uint64_t records_in;
	/* set by ipfix_ctl.c's registration: run by destroy before freeing */
	void (*unregister)(struct sky_ipfix *ip);
};

#endif /* SKY_IPFIX_PRIV_H */
