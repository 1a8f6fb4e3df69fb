/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * ipfix: export of the flow table's ended records (skygate/flow.h, struct sky_flow_rec) to
 * IPFIX collectors (RFC 7011) over UDP. Control path only: records reach the exporter
 * through the flow module's consumer hook (sky_flow_on_record(), called from
 * sky_flow_poll() on the main lcore), and a periodic task (every 100 ms) sends what is
 * pending and the templates when they are due. No worker ever touches this module.
 *
 * Mapping: every bidirectional record becomes up to two unidirectional IPFIX data records,
 * one per direction that saw packets: upstream (source = the terminal) and downstream
 * (source = the remote host). Templates 256 (IPv4) and 257 (IPv6) carry standard
 * information elements where they exist and enterprise-specific ones (enterprise bit set,
 * the configured private enterprise number) for what has no standard element: subscriber
 * id, beam, countries, verdict, drop reason, class, direction, RTT halves. The list is in
 * lib/ipfix/ipfix_enc.c and in README "Flow records (IPFIX)".
 *
 * Per collector: one connected, non-blocking UDP socket, one message being filled (at most
 * mtu - IP header - UDP header bytes), the sequence number of its observation domain (data
 * records exported before the message, lost ones included, so the collector sees a loss as
 * a gap). A send that fails (ECONNREFUSED after an ICMP port unreachable, EAGAIN, ENOBUFS,
 * ...) loses that message's records, counted as drops; nothing else queues. Templates go
 * first in the first message, then again every template_refresh (time) and every
 * template_refresh_packets messages (0: off), and after a send failure.
 *
 * Config (section absent or no collectors: the exporter is off and costs nothing):
 *   ipfix:
 *     collectors:
 *       - { address: 127.0.0.1, port: 4739, observation_domain: 1 }
 *     template_refresh: 60s          # 1s..1d
 *     template_refresh_packets: 0    # messages between template sends, 0 = time only
 *     enterprise_number: 32473       # PEN of the enterprise elements (RFC 5612's example)
 *     mtu: 1400                      # path MTU to the collectors, 512..9000
 */
#ifndef SKYGATE_IPFIX_H
#define SKYGATE_IPFIX_H

#include <stdint.h>
#include <stdio.h>

#include "skygate/config.h"
#include "skygate/flow.h"

#define SKY_IPFIX_MAX_COLLECTORS 8
#define SKY_IPFIX_TEMPLATE_V4 256
#define SKY_IPFIX_TEMPLATE_V6 257
/* ingressInterface / egressInterface: the side a packet came in / went out; 0 = dropped */
#define SKY_IPFIX_IF_UPLINK 1
#define SKY_IPFIX_IF_BACKHAUL 2
#define SKY_IPFIX_DEFAULT_PEN 32473 /* RFC 5612: the enterprise number for documentation */

struct sky_ipfix;

/** Counters of one collector (monotonic; read on the control path or in telemetry). */
struct sky_ipfix_stats {
	uint64_t records;	 /* data records sent */
	uint64_t messages;	 /* IPFIX messages sent (templates-only ones included) */
	uint64_t bytes;		 /* bytes of those messages (UDP payload) */
	uint64_t drops;		 /* data records lost: their message could not be sent */
	uint64_t template_sends; /* template sets sent */
	uint64_t send_errors;	 /* messages that could not be sent */
	uint32_t sequence;	 /* the next message's sequence number */
	int last_errno;		 /* errno of the last failed send, 0 = none */
};

/**
 * Build the exporter from the `ipfix:` section (control path, before the workers start).
 * With a collector, it turns the flow table's records on (sky_flow_want_records(): with the
 * `flows:` defaults when that section is absent) and consumes them (sky_flow_on_record());
 * flow may be NULL (tests: records come through sky_ipfix_add()). Returns NULL with err
 * filled ("FILE:LINE: ipfix.collectors[1].port: ...") on a bad section, when a socket cannot
 * be made or the flow table cannot make records; a valid, disabled object when there is no
 * collector.
 */
struct sky_ipfix *sky_ipfix_create(const struct sky_cfg *cfg, struct sky_flow *flow,
				   struct sky_cfg_err *err);
/** Send what is pending, close the sockets, free. NULL is fine. */
void sky_ipfix_destroy(struct sky_ipfix *ip);
/** 1 when at least one collector is configured (then the flow table must make records). */
int sky_ipfix_enabled(const struct sky_ipfix *ip);
/** Commands (`ipfix show`), `status`, telemetry /skygate/ipfix, Prometheus skygate_ipfix_*,
 *  the periodic send. Control path, once. 0 or -errno. */
int sky_ipfix_register(struct sky_ipfix *ip);

/** A sky_flow_rec_fn for sky_flow_on_record(): arg is the struct sky_ipfix. */
void sky_ipfix_on_record(void *arg, const struct sky_flow_rec *rec);
/** Encode one record for every collector (time as a parameter: now_ms, unix ms). Messages
 *  that fill up are sent at once. Returns the data records encoded per collector (0..2). */
unsigned int sky_ipfix_add(struct sky_ipfix *ip, const struct sky_flow_rec *rec, uint64_t now_ms);
/** Send the pending messages, and the templates when due (now_ms, unix ms). */
void sky_ipfix_tick(struct sky_ipfix *ip, uint64_t now_ms);
/** sky_ipfix_tick() now: what is pending goes (the daemon's stop, after sky_flow_flush()). */
void sky_ipfix_flush(struct sky_ipfix *ip);

/** Collectors configured. */
unsigned int sky_ipfix_n_collectors(const struct sky_ipfix *ip);
/** Counters of collector i: 0, or -ENOENT. */
int sky_ipfix_collector_stats(const struct sky_ipfix *ip, unsigned int i,
			      struct sky_ipfix_stats *st);
/** One line per collector ("ipfix 192.0.2.10:4739: 1200 records sent, 0 lost, ...") to f:
 *  the daemon's final counters. Nothing when disabled. */
void sky_ipfix_print(const struct sky_ipfix *ip, FILE *f);
/** Records received from the flow table (each becomes 1 or 2 data records). */
uint64_t sky_ipfix_records_in(const struct sky_ipfix *ip);

#endif /* SKYGATE_IPFIX_H */
