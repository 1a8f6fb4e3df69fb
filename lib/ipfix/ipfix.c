/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exporter (control path, main lcore): one connected non-blocking UDP socket and one
 * message buffer per collector. A record is encoded once per direction and appended to
 * every collector's message; a message that cannot take the next record is sent first.
 * sky_ipfix_tick() sends what is pending and the templates when they are due.
 *
 * Bounds: one message (at most mtu bytes) per collector is all that is ever held. A send
 * that fails loses the message: its data records are counted as drops, the sequence
 * number still moves past them (the collector sees the gap), and the templates go again
 * with the next message, since the collector may have lost them too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skygate/meta.h"
#include "skygate/runtime.h"

#include "ipfix_priv.h"

#define ST_ADD(c, field, v) __atomic_fetch_add(&(c)->st.field, (v), __ATOMIC_RELAXED)

static uint64_t
realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
coll_open(struct ipfix_coll *c, char *why, size_t whylen)
{
	c->fd = socket(c->conf.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	/* room for a drain's burst of messages (best effort: net.core.wmem_max bounds it) */
	setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &(int){IPFIX_SNDBUF}, sizeof(int));
	/* connected: the kernel reports an ICMP port unreachable as ECONNREFUSED */
	if (connect(c->fd, (const struct sockaddr *)&c->conf.sa, c->conf.sa_len) != 0) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void
coll_close_set(struct ipfix_coll *c)
{
	if (c->set_off == 0)
		return;
	ipfix_enc_set_header(c->buf + c->set_off, c->set_id, (uint16_t)(c->len - c->set_off));
	c->set_off = 0;
	c->set_id = 0;
}

/* Start a message: header room, then the template set if due. */
static void
coll_begin(struct ipfix_coll *c)
{
	c->len = IPFIX_MSG_HDR;
	c->n_data = 0;
	c->has_templates = 0;
	if (c->templates_due) {
		c->len += ipfix_enc_templates(c->buf + c->len, c->conf_pen);
		c->has_templates = 1;
	}
}

/* Send the open message (if any). */
static void
coll_send(struct ipfix_coll *c, uint64_t now_ms)
{
	ssize_t n;

	if (c->len == 0)
		return;
	coll_close_set(c);
	ipfix_enc_header(c->buf, (uint16_t)c->len, (uint32_t)(now_ms / 1000), c->st.sequence,
			 c->conf.domain);
	do {
		n = send(c->fd, c->buf, c->len, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)c->len) {
		ST_ADD(c, messages, 1);
		ST_ADD(c, bytes, c->len);
		ST_ADD(c, records, c->n_data);
		if (c->has_templates) {
			ST_ADD(c, template_sends, 1);
			c->templates_due = 0;
			c->last_tmpl_ms = now_ms;
			c->msgs_since_tmpl = 0;
		} else {
			c->msgs_since_tmpl++;
		}
	} else {
		ST_ADD(c, send_errors, 1);
		ST_ADD(c, drops, c->n_data);
		__atomic_store_n(&c->st.last_errno, n < 0 ? errno : EMSGSIZE, __ATOMIC_RELAXED);
		c->templates_due = 1;
	}
	/* the sequence counts every data record exported, lost ones too (RFC 7011 3.1) */
	__atomic_store_n(&c->st.sequence, c->st.sequence + c->n_data, __ATOMIC_RELAXED);
	c->len = 0;
	c->n_data = 0;
	c->has_templates = 0;
	if (c->conf_refresh_packets != 0 && c->msgs_since_tmpl >= c->conf_refresh_packets)
		c->templates_due = 1;
}

static void
coll_append(struct ipfix_coll *c, uint16_t tid, const uint8_t *rec, size_t len, uint64_t now_ms)
{
	size_t need = len + (c->set_id == tid ? 0 : IPFIX_SET_HDR);

	if (c->len != 0 && c->len + need > c->max_msg)
		coll_send(c, now_ms);
	if (c->len == 0)
		coll_begin(c);
	if (c->set_id != tid) {
		coll_close_set(c);
		c->set_off = c->len;
		c->set_id = tid;
		c->len += IPFIX_SET_HDR;
	}
	memcpy(c->buf + c->len, rec, len);
	c->len += len;
	c->n_data++;
}

struct sky_ipfix *
sky_ipfix_create(const struct sky_cfg *cfg, struct sky_flow *flow, struct sky_cfg_err *err)
{
	struct sky_ipfix *ip = calloc(1, sizeof(*ip));
	char why[256];

	if (ip == NULL) {
		sky_cfg_fail(err, cfg, NULL, "ipfix: out of memory");
		return NULL;
	}
	for (unsigned int i = 0; i < SKY_IPFIX_MAX_COLLECTORS; i++)
		ip->coll[i].fd = -1;
	if (ipfix_conf_parse(cfg, &ip->conf, err) < 0)
		goto fail;
	for (unsigned int i = 0; i < ip->conf.n_coll; i++) {
		struct ipfix_coll *c = &ip->coll[i];

		c->conf = ip->conf.coll[i];
		c->conf_pen = ip->conf.pen;
		c->conf_refresh_packets = ip->conf.refresh_packets;
		c->max_msg = ip->conf.mtu - (c->conf.family == AF_INET6 ? 48 : 28);
		c->buf = malloc(IPFIX_MAX_MSG);
		c->templates_due = 1;
		if (c->buf == NULL) {
			sky_cfg_fail(err, cfg, NULL, "ipfix: out of memory");
			goto fail;
		}
		if (coll_open(c, why, sizeof(why)) < 0) {
			sky_cfg_fail(err, cfg, NULL, "ipfix.collectors[%u]: %s port %u: %s", i,
				     c->conf.address, c->conf.port, why);
			goto fail;
		}
		ip->n_coll++;
	}
	if (ip->n_coll > 0 && flow != NULL) {
		sky_flow_want_records(flow);
		if (!sky_flow_enabled(flow)) {
			sky_cfg_fail(err, cfg,
				     sky_cfg_get(sky_cfg_get(cfg->root, "ipfix"), "collectors"),
				     "the flow table that makes the records could not be allocated "
				     "(see the log; flows.entries sizes it)");
			goto fail;
		}
		if (sky_flow_on_record(flow, sky_ipfix_on_record, ip) < 0) {
			sky_cfg_fail(err, cfg, NULL,
				     "ipfix: the flow table takes no more consumers");
			goto fail;
		}
	}
	return ip;
fail:
	sky_ipfix_destroy(ip);
	return NULL;
}

void
sky_ipfix_destroy(struct sky_ipfix *ip)
{
	if (ip == NULL)
		return;
	if (ip->unregister != NULL)
		ip->unregister(ip);
	for (unsigned int i = 0; i < SKY_IPFIX_MAX_COLLECTORS; i++) {
		struct ipfix_coll *c = &ip->coll[i];

		if (c->fd >= 0 && c->len > 0)
			coll_send(c, realtime_ms());
		if (c->fd >= 0)
			close(c->fd);
		free(c->buf);
	}
	free(ip);
}

int
sky_ipfix_enabled(const struct sky_ipfix *ip)
{
	return ip != NULL && ip->n_coll > 0;
}

unsigned int
sky_ipfix_add(struct sky_ipfix *ip, const struct sky_flow_rec *rec, uint64_t now_ms)
{
	uint8_t buf[128];
	unsigned int n = 0;

	if (ip == NULL || ip->n_coll == 0 || (rec->l3 != 4 && rec->l3 != 6))
		return 0;
	__atomic_fetch_add(&ip->records_in, 1, __ATOMIC_RELAXED);
	for (unsigned int dir = SKY_DIR_UP; dir <= SKY_DIR_DOWN; dir++) {
		uint16_t tid = rec->l3 == 6 ? SKY_IPFIX_TEMPLATE_V6 : SKY_IPFIX_TEMPLATE_V4;
		size_t len;

		if (rec->packets[dir] == 0)
			continue;
		len = ipfix_enc_record(buf, rec, dir);
		for (unsigned int i = 0; i < ip->n_coll; i++)
			coll_append(&ip->coll[i], tid, buf, len, now_ms);
		n++;
	}
	return n;
}

void
sky_ipfix_on_record(void *arg, const struct sky_flow_rec *rec)
{
	sky_ipfix_add(arg, rec, realtime_ms());
}

void
sky_ipfix_flush(struct sky_ipfix *ip)
{
	sky_ipfix_tick(ip, realtime_ms());
}

void
sky_ipfix_tick(struct sky_ipfix *ip, uint64_t now_ms)
{
	if (ip == NULL)
		return;
	for (unsigned int i = 0; i < ip->n_coll; i++) {
		struct ipfix_coll *c = &ip->coll[i];

		/* due, or the clock went back (then the last send time means nothing) */
		if (now_ms >= c->last_tmpl_ms + ip->conf.refresh_ms || now_ms < c->last_tmpl_ms)
			c->templates_due = 1;
		/* templates on their own when nothing else goes now */
		if (c->len == 0 && c->templates_due)
			coll_begin(c);
		coll_send(c, now_ms);
	}
}

unsigned int
sky_ipfix_n_collectors(const struct sky_ipfix *ip)
{
	return ip == NULL ? 0 : ip->n_coll;
}

int
sky_ipfix_collector_stats(const struct sky_ipfix *ip, unsigned int i, struct sky_ipfix_stats *st)
{
	const struct ipfix_coll *c;

	if (ip == NULL || i >= ip->n_coll)
		return -ENOENT;
	c = &ip->coll[i];
	st->records = __atomic_load_n(&c->st.records, __ATOMIC_RELAXED);
	st->messages = __atomic_load_n(&c->st.messages, __ATOMIC_RELAXED);
	st->bytes = __atomic_load_n(&c->st.bytes, __ATOMIC_RELAXED);
	st->drops = __atomic_load_n(&c->st.drops, __ATOMIC_RELAXED);
	st->template_sends = __atomic_load_n(&c->st.template_sends, __ATOMIC_RELAXED);
	st->send_errors = __atomic_load_n(&c->st.send_errors, __ATOMIC_RELAXED);
	st->sequence = __atomic_load_n(&c->st.sequence, __ATOMIC_RELAXED);
	st->last_errno = __atomic_load_n(&c->st.last_errno, __ATOMIC_RELAXED);
	return 0;
}

uint64_t
sky_ipfix_records_in(const struct sky_ipfix *ip)
{
	return ip == NULL ? 0 : __atomic_load_n(&ip->records_in, __ATOMIC_RELAXED);
}

void
sky_ipfix_print(const struct sky_ipfix *ip, FILE *f)
{
	for (unsigned int i = 0; i < sky_ipfix_n_collectors(ip); i++) {
		const struct ipfix_coll *c = &ip->coll[i];
		struct sky_ipfix_stats st;

		if (sky_ipfix_collector_stats(ip, i, &st) < 0)
			continue;
		fprintf(f,
			"  ipfix %s:%u: %" PRIu64 " records sent, %" PRIu64 " lost, %" PRIu64
			" messages, %" PRIu64 " send errors%s%s\n",
			c->conf.address, c->conf.port, st.records, st.drops, st.messages,
			st.send_errors, st.last_errno ? ", last: " : "",
			st.last_errno ? strerror(st.last_errno) : "");
	}
}
