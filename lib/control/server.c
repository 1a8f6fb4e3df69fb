/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket server and the metrics HTTP listener, both served from one poll()
 * in sky_ctl_server_poll() on the main lcore. Non-blocking throughout: a client that sends
 * half a request, stops reading its replies or disconnects mid-request costs memory up to
 * fixed limits, never a blocked main loop.
 *
 * The socket stays the operator's (struct sky_ctl_limits): every pending connection is
 * accepted at once (so the kernel's queue never fills and a connect never waits), then
 * admitted or refused by its peer's uid (SO_PEERCRED); root and the socket's owner have
 * room kept for them and, when even that is taken, close the least useful connection.
 * Every connection phase has a timer (HAProxy's model: request, idle, send), checked each
 * round; whoever hits a bound gets a last line that names it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "control_priv.h"

#define OUT_HIGH (4u << 20) /* stop reading a client while this much is unsent */
#define HTTP_MAX_CLIENTS 64 /* metrics scrapers at once */
#define HTTP_REQ_MAX 8192   /* request line + headers */
#define HTTP_IDLE_MS 10000  /* an HTTP request must arrive within this; a reply be taken */
#define LINGER_MS 2000	    /* after the reply: read and discard until EOF, this long */
#define READ_CHUNK 65536
#define BACKLOG 4096	  /* the kernel caps it at net.core.somaxconn */
#define LOG_EVERY_MS 1000 /* refusals and evictions are logged once a second at most */
#define EVENTS_ROOM 65536 /* event lines moved to a subscriber's socket buffer at a time */

enum kind { K_CTL, K_HTTP };

struct client {
	int fd;
	enum kind kind;
	uid_t uid;
	pid_t pid;
	char *in;
	size_t in_off, in_len, in_cap; /* unprocessed bytes are in[in_off..in_len) */
	char *out;
	size_t out_off, out_len, out_cap;
	int closing;		 /* no more requests: close when out is sent */
	int eof;		 /* peer shut its write side */
	int dead;		 /* error: close now */
	int shut;		 /* our write side is shut (lingering) */
	int priv;		 /* root or the socket's owner */
	struct sky_ctl_sub *sub; /* `events follow`: the connection is a subscription */
	uint64_t last_ms;
	uint64_t req_start_ms; /* first byte of the request arriving now (0 = none) */
	uint64_t out_since_ms; /* last progress sending out (0 = nothing pending) */
	uint64_t linger_until_ms;
};

struct clist {
	struct client **v;
	unsigned int n;
};

struct sky_ctl_server {
	int lfd;
	int spare_fd; /* given up to accept (and refuse) a peer when we are out of fds */
	char *path;
	ino_t ino;
	dev_t dev;
	uid_t owner;
	struct sky_ctl_limits lim;
	struct clist clients;
	/* refusals and evictions since the last log line */
	uint64_t log_ms;
	unsigned int n_refused, n_evicted;
	char last_why[160];
};

static struct {
	int fd;
	int port;
	struct clist clients;
} http = {.fd = -1, .port = -1};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- client buffers --- */

static int
buf_reserve(char **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 4096;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (p == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int
out_append(struct client *c, const char *data, size_t len)
{
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		c->out_since_ms = now_ms();
	}
	if (buf_reserve(&c->out, &c->out_cap, c->out_len + len) != 0)
		return -ENOMEM;
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

static size_t
out_pending(const struct client *c)
{
	return c->out_len - c->out_off;
}

static void
client_free(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->kind == K_CTL && sky_ctl_clients_now > 0)
		sky_ctl_clients_now--;
	sky_ctl_sub_free(c->sub);
	free(c->in);
	free(c->out);
	free(c);
}

static void
clist_remove_done(struct clist *l, uint64_t now)
{
	unsigned int i, j = 0;

	for (i = 0; i < l->n; i++) {
		struct client *c = l->v[i];
		int done = c->dead;

		if (!done && c->shut && (c->eof || now >= c->linger_until_ms))
			done = 1;
		if (!done && c->kind == K_HTTP && !c->shut && !c->closing &&
		    now - c->req_start_ms > HTTP_IDLE_MS)
			done = 1; /* the request did not arrive in time (slow or idle) */
		if (!done && c->kind == K_HTTP && out_pending(c) > 0 &&
		    now - c->out_since_ms > HTTP_IDLE_MS)
			done = 1; /* the reply is not read */
		if (!done && c->eof && !c->closing && out_pending(c) == 0)
			done = 1; /* peer gone, everything answered (a partial request is dropped)
				   */
		if (done)
			client_free(c);
		else
			l->v[j++] = c;
	}
	l->n = j;
}

static void
clist_free(struct clist *l)
{
	for (unsigned int i = 0; i < l->n; i++)
		client_free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* --- control requests --- */

static void
reply_line(struct client *c, json_t *reply)
{
	char *s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;

	if (s == NULL) {
		static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}\n";

		if (out_append(c, oom, sizeof(oom) - 1) != 0)
			c->dead = 1;
		return;
	}
	if (out_append(c, s, strlen(s)) != 0 || out_append(c, "\n", 1) != 0)
		c->dead = 1;
	free(s);
}

static void
reply_error(struct client *c, const char *msg)
{
	json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error", msg);

	sky_ctl_counters[SKY_CTL_C_requests]++;
	sky_ctl_counters[SKY_CTL_C_errors]++;
	sky_ctl_counters[SKY_CTL_C_bad_requests]++;
	reply_line(c, r);
	json_decref(r);
}

/* The last line of a connection that hit a bound; it is closed once the line is sent. */
static void
reply_limit(struct client *c, const char *limit, const char *msg)
{
	json_t *r = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "limit", limit);

	reply_line(c, r);
	json_decref(r);
	c->closing = 1;
	c->in_off = c->in_len = 0;
	c->req_start_ms = 0;
}

/* The words of the request in hand, for the shutdown watchdog's message. */
static void
note_busy(const json_t *req)
{
	const json_t *argv = json_object_get(req, "argv"), *w;
	char what[96] = "";
	size_t i, off = 0;

	json_array_foreach(argv, i, w)
	{
		int n;

		if (i == 3 || !json_is_string(w))
			break;
		n = snprintf(what + off, sizeof(what) - off, "%s%s", i ? " " : "",
			     json_string_value(w));
		if (n < 0 || (size_t)n >= sizeof(what) - off)
			break;
		off += (size_t)n;
	}
	sky_rt_set_busy(what[0] ? what : "a control request");
}

static int
handle_line(struct client *c, char *line, size_t len)
{
	json_error_t jerr;
	json_t *req, *reply;
	char msg[300];

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0; /* blank lines are allowed between requests */
	req = json_loadb(line, len, 0, &jerr);
	if (req == NULL) {
		snprintf(msg, sizeof(msg), "bad JSON at column %d: %s", jerr.column, jerr.text);
		reply_error(c, msg);
		return 1;
	}
	note_busy(req);
	reply = sky_ctl_dispatch(req, c->uid, c->pid);
	sky_rt_set_busy(NULL);
	json_decref(req);
	/* `events follow` answered: from now on this connection carries the events */
	c->sub = sky_ctl_events_claim();
	reply_line(c, reply);
	json_decref(reply);
	return 1;
}

/* Run complete request lines while the client is reading its replies. */
static int
ctl_process(struct client *c, size_t req_max)
{
	int handled = 0;

	/* a stop request: no new work (what is queued is never answered); a subscription
	 * takes no more requests */
	while (!c->closing && !c->dead && c->sub == NULL && out_pending(c) < OUT_HIGH &&
	       !sky_should_stop()) {
		char *start = c->in + c->in_off;
		size_t avail = c->in_len - c->in_off;
		char *nl = memchr(start, '\n', avail);

		if (nl == NULL || (size_t)(nl - start) > req_max) {
			if (avail > req_max) {
				char msg[160];

				snprintf(
					msg, sizeof(msg),
					"request too large (more than %zu bytes without a newline; "
					"limit control.request_max)",
					req_max);
				sky_ctl_counters[SKY_CTL_C_requests]++;
				sky_ctl_counters[SKY_CTL_C_errors]++;
				sky_ctl_counters[SKY_CTL_C_bad_requests]++;
				reply_limit(c, "request_max", msg);
			}
			break;
		}
		c->in_off += (size_t)(nl - start) + 1;
		handled += handle_line(c, start, (size_t)(nl - start));
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	return handled;
}

/* --- HTTP (GET /metrics) --- */

static void
http_respond(struct client *c, int code, const char *reason, const char *ctype, const char *body,
	     size_t len, int head)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 code, reason, ctype, len);

	if (out_append(c, hdr, (size_t)n) != 0 || (!head && out_append(c, body, len) != 0))
		c->dead = 1;
	c->closing = 1;
}

static int
http_process(struct client *c)
{
	static const char notfound[] = "not found: try /metrics\n";
	static const char badreq[] = "bad request\n";
	char *req = c->in, *sp1, *sp2, *eol;
	size_t len = c->in_len;
	int head;

	if (c->closing)
		return 0;
	if (memmem(req, len, "\r\n\r\n", 4) == NULL && memmem(req, len, "\n\n", 2) == NULL) {
		if (len > HTTP_REQ_MAX)
			http_respond(c, 431, "Request Header Fields Too Large", "text/plain",
				     badreq, sizeof(badreq) - 1, 0);
		return 0;
	}
	sky_ctl_counters[SKY_CTL_C_http_requests]++;
	eol = memchr(req, '\n', len);
	*eol = '\0';
	sp1 = strchr(req, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		http_respond(c, 400, "Bad Request", "text/plain", badreq, sizeof(badreq) - 1, 0);
		return 1;
	}
	*sp1 = *sp2 = '\0';
	head = strcmp(req, "HEAD") == 0;
	if (!head && strcmp(req, "GET") != 0) {
		static const char body[] = "method not allowed\n";

		http_respond(c, 405, "Method Not Allowed", "text/plain", body, sizeof(body) - 1, 0);
		return 1;
	}
	if (strcmp(sp1 + 1, "/metrics") == 0 || strncmp(sp1 + 1, "/metrics?", 9) == 0) {
		size_t n;
		char *text = sky_metrics_render(&n);

		if (text == NULL) {
			static const char body[] = "out of memory\n";

			http_respond(c, 500, "Internal Server Error", "text/plain", body,
				     sizeof(body) - 1, head);
			return 1;
		}
		http_respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, n,
			     head);
		free(text);
		return 1;
	}
	http_respond(c, 404, "Not Found", "text/plain", notfound, sizeof(notfound) - 1, head);
	return 1;
}

/* --- I/O --- */

/* After a failed recv or send: 1 to try again (EINTR); 0 to stop (the socket would block,
 * or the client is dead: marked so). */
static int
io_again(struct client *c)
{
	if (errno == EINTR)
		return 1;
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		c->dead = 1;
	return 0;
}

static int
client_read(struct client *c, size_t req_max)
{
	char chunk[READ_CHUNK];
	int handled = 0;

	for (;;) {
		ssize_t n;
		int had, got;

		if (c->dead || c->eof)
			break;
		if (!c->shut && out_pending(c) >= OUT_HIGH)
			break;
		n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n < 0 && io_again(c))
			continue;
		if (n < 0)
			break;
		c->last_ms = now_ms();
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if (c->closing || c->sub != NULL)
			continue; /* answered (or refused), following: discard what still comes */
		if (buf_reserve(&c->in, &c->in_cap, c->in_len + (size_t)n + 1) != 0) {
			c->dead = 1;
			break;
		}
		had = c->in_len > c->in_off;
		memcpy(c->in + c->in_len, chunk, (size_t)n);
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		got = c->kind == K_CTL ? ctl_process(c, req_max) : http_process(c);
		handled += got;
		if (c->kind == K_HTTP)
			continue; /* timed from accept */
		/* the request timer runs from the first byte of the request now arriving: what
		 * follows the last newline handled arrived in this chunk */
		if (c->closing || c->in_len == c->in_off)
			c->req_start_ms = 0;
		else if (!had || got > 0 || c->req_start_ms == 0)
			c->req_start_ms = c->last_ms;
	}
	return handled;
}

static void
client_write(struct client *c)
{
	while (!c->dead && out_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_off, out_pending(c),
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && io_again(c))
			continue;
		if (n < 0)
			return;
		c->out_off += (size_t)n;
		c->out_since_ms = now_ms();
	}
	if (out_pending(c) == 0 && c->out_len > 0) {
		c->out_off = c->out_len = 0;
		c->last_ms = now_ms(); /* the idle timer runs from the last reply */
	}
	if (!c->dead && c->closing && !c->shut && out_pending(c) == 0) {
		/* shut our side, then read to EOF so no unread input turns into a reset that
		 * could destroy the reply in flight */
		shutdown(c->fd, SHUT_WR);
		c->shut = 1;
		c->linger_until_ms = now_ms() + LINGER_MS;
	}
}

/* Complete requests wait in the buffer (held back while the client was not reading). */
static int
has_work(const struct client *c)
{
	return c->kind == K_CTL && !c->dead && !c->closing && c->sub == NULL &&
	       out_pending(c) < OUT_HIGH && c->in_len > c->in_off &&
	       memchr(c->in + c->in_off, '\n', c->in_len - c->in_off);
}

/* --- limits: pure decisions --- */

void
sky_ctl_limits_default(struct sky_ctl_limits *l)
{
	*l = (struct sky_ctl_limits){
		.max_clients = SKY_CTL_DEF_MAX_CLIENTS,
		.clients_per_uid = SKY_CTL_DEF_CLIENTS_PER_UID,
		.reserved = SKY_CTL_DEF_RESERVED,
		.idle_timeout_ms = SKY_CTL_DEF_IDLE_TIMEOUT_MS,
		.request_timeout_ms = SKY_CTL_DEF_REQUEST_TIMEOUT_MS,
		.send_timeout_ms = SKY_CTL_DEF_SEND_TIMEOUT_MS,
		.request_max = SKY_CTL_DEF_REQUEST_MAX,
	};
}

int
sky_ctl_limits_check(const struct sky_ctl_limits *l, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t off;
	} timers[] = {
		{"idle_timeout", offsetof(struct sky_ctl_limits, idle_timeout_ms)},
		{"request_timeout", offsetof(struct sky_ctl_limits, request_timeout_ms)},
		{"send_timeout", offsetof(struct sky_ctl_limits, send_timeout_ms)},
	};

	if (l->max_clients < 2 || l->max_clients > 65536) {
		snprintf(err, errlen, "max_clients %u: must be 2..65536", l->max_clients);
		return -EINVAL;
	}
	if (l->reserved >= l->max_clients) {
		snprintf(err, errlen,
			 "reserved_clients %u: must be below max_clients (%u), so others can "
			 "connect",
			 l->reserved, l->max_clients);
		return -EINVAL;
	}
	if (l->clients_per_uid < 1 || l->clients_per_uid > l->max_clients) {
		snprintf(err, errlen, "clients_per_uid %u: must be 1..max_clients (%u)",
			 l->clients_per_uid, l->max_clients);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
		unsigned int ms = *(const unsigned int *)((const char *)l + timers[i].off);

		if (ms < 100 || ms > 86400000u) {
			snprintf(err, errlen, "%s %u ms: must be 100ms..1 day", timers[i].name, ms);
			return -EINVAL;
		}
	}
	if (l->request_max < 1024 || l->request_max > (64u << 20)) {
		snprintf(err, errlen, "request_max %zu bytes: must be 1KB..64MB", l->request_max);
		return -EINVAL;
	}
	return 0;
}

enum sky_ctl_admit
sky_ctl_admit(const struct sky_ctl_limits *l, const struct sky_ctl_census *n, int privileged,
	      int have_victim)
{
	if (privileged) {
		if (n->total < l->max_clients)
			return SKY_CTL_ADMIT;
		return have_victim ? SKY_CTL_ADMIT_EVICT : SKY_CTL_REFUSE_FULL;
	}
	if (n->same_uid >= l->clients_per_uid)
		return SKY_CTL_REFUSE_UID;
	if (n->unpriv >= l->max_clients - l->reserved || n->total >= l->max_clients)
		return SKY_CTL_REFUSE_FULL;
	return SKY_CTL_ADMIT;
}

int
sky_ctl_pick_victim(const struct sky_ctl_conn_view *v, unsigned int n)
{
	int best = -1;
	unsigned int best_rank = 0;

	for (unsigned int i = 0; i < n; i++) {
		unsigned int rank;

		if (v[i].privileged && v[i].state == SKY_CTL_CONN_BUSY)
			continue; /* never cut root off in the middle of its work */
		rank = (v[i].privileged ? 3u : 0u) + (unsigned int)v[i].state;
		if (best < 0 || rank < best_rank ||
		    (rank == best_rank && v[i].last_ms < v[best].last_ms)) {
			best = (int)i;
			best_rank = rank;
		}
	}
	return best;
}

enum sky_ctl_expiry
sky_ctl_expired(const struct sky_ctl_limits *l, const struct sky_ctl_conn_times *t, uint64_t now_ms)
{
	if (t->out_since_ms != 0)
		return now_ms - t->out_since_ms > l->send_timeout_ms ? SKY_CTL_EXP_SEND
								     : SKY_CTL_EXP_NONE;
	if (t->work)
		return SKY_CTL_EXP_NONE; /* runs this round */
	if (t->req_start_ms != 0)
		return now_ms - t->req_start_ms > l->request_timeout_ms ? SKY_CTL_EXP_REQUEST
									: SKY_CTL_EXP_NONE;
	return now_ms - t->last_ms > l->idle_timeout_ms ? SKY_CTL_EXP_IDLE : SKY_CTL_EXP_NONE;
}

/* --- limits: applying them --- */

static void
log_refusal(struct sky_ctl_server *s, int evicted, const char *why)
{
	uint64_t now = now_ms();

	if (evicted)
		s->n_evicted++;
	else
		s->n_refused++;
	/* a reason for a log line: a longer one is cut and ends in "..." */
	if (snprintf(s->last_why, sizeof(s->last_why), "%s", why) >= (int)sizeof(s->last_why))
		memcpy(s->last_why + sizeof(s->last_why) - 4, "...", 4);
	if (now - s->log_ms < LOG_EVERY_MS)
		return;
	SKY_LOG(WARNING,
		"control socket: %u connection%s refused, %u closed to make room (last: %s)",
		s->n_refused, s->n_refused == 1 ? "" : "s", s->n_evicted, s->last_why);
	s->log_ms = now;
	s->n_refused = s->n_evicted = 0;
}

/* Best effort: the reason in one line, then close (the peer reads it before the EOF). */
static void
refuse(struct sky_ctl_server *s, int fd, const char *limit, const char *msg)
{
	json_t *r = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "limit", limit);
	char *line = r ? json_dumps(r, JSON_COMPACT) : NULL;

	if (line != NULL) {
		size_t len = strlen(line);
		ssize_t n;

		line[len] = '\n'; /* json_dumps leaves room for its NUL: reuse it */
		n = send(fd, line, len + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n;
	}
	free(line);
	json_decref(r);
	close(fd);
	sky_ctl_counters[SKY_CTL_C_clients_refused]++;
	log_refusal(s, 0, msg);
}

static enum sky_ctl_conn_state
conn_state(const struct client *c)
{
	if (c->shut || c->closing)
		return SKY_CTL_CONN_DONE;
	if (out_pending(c) > 0 || has_work(c))
		return SKY_CTL_CONN_BUSY;
	return SKY_CTL_CONN_IDLE;
}

/* Close the connection the newcomer replaces: a last line saying why, then at once. */
static void
evict(struct sky_ctl_server *s, struct client *c)
{
	char msg[200];

	snprintf(msg, sizeof(msg),
		 "connection closed to make room for root or the socket owner: the control "
		 "socket is full (%u connections, control.max_clients)",
		 s->lim.max_clients);
	if (conn_state(c) != SKY_CTL_CONN_DONE) {
		c->closing = 0;
		reply_limit(c, "max_clients", msg);
		client_write(c);
	}
	close(c->fd);
	c->fd = -1;
	c->dead = 1;
	sky_ctl_counters[SKY_CTL_C_clients_evicted]++;
	log_refusal(s, 1, msg);
}

/* Admit fd from uid, or refuse it; returns the new client, or NULL (fd closed). */
static struct client *
admit(struct sky_ctl_server *s, int fd, uid_t uid)
{
	struct clist *l = &s->clients;
	struct sky_ctl_census n = {0};
	int priv = uid == 0 || uid == s->owner, victim = -1;
	struct sky_ctl_conn_view *v = NULL;
	unsigned int *idx = NULL, nv = 0;
	char msg[300];

	for (unsigned int i = 0; i < l->n; i++) {
		const struct client *c = l->v[i];

		if (c->dead)
			continue;
		n.total++;
		n.unpriv += !c->priv;
		n.same_uid += c->uid == uid;
	}
	if (priv && n.total >= s->lim.max_clients) {
		v = calloc(n.total, sizeof(*v));
		idx = calloc(n.total, sizeof(*idx));
		for (unsigned int i = 0; v != NULL && idx != NULL && i < l->n; i++) {
			const struct client *c = l->v[i];

			if (c->dead)
				continue;
			v[nv] = (struct sky_ctl_conn_view){.privileged = c->priv,
							   .state = conn_state(c),
							   .last_ms = c->last_ms};
			idx[nv++] = i;
		}
		victim = v != NULL && idx != NULL ? sky_ctl_pick_victim(v, nv) : -1;
		if (victim >= 0)
			victim = (int)idx[victim];
		free(v);
		free(idx);
	}
	switch (sky_ctl_admit(&s->lim, &n, priv, victim >= 0)) {
	case SKY_CTL_REFUSE_UID:
		snprintf(msg, sizeof(msg),
			 "connection refused: uid %u already has %u connections to the control "
			 "socket (control.clients_per_uid); close some and retry",
			 (unsigned int)uid, n.same_uid);
		refuse(s, fd, "clients_per_uid", msg);
		return NULL;
	case SKY_CTL_REFUSE_FULL:
		if (priv)
			snprintf(msg, sizeof(msg),
				 "connection refused: the control socket is full (%u connections, "
				 "control.max_clients) and every one is busy; retry later",
				 n.total);
		else
			snprintf(msg, sizeof(msg),
				 "connection refused: the control socket is full for users other "
				 "than root and its owner (%u of control.max_clients %u; the last "
				 "%u are kept for them); retry later",
				 n.unpriv, s->lim.max_clients, s->lim.reserved);
		refuse(s, fd, "max_clients", msg);
		return NULL;
	case SKY_CTL_ADMIT_EVICT:
		evict(s, l->v[victim]);
		break;
	case SKY_CTL_ADMIT:
		break;
	}
	{
		struct client *c = calloc(1, sizeof(*c));
		struct client **nv2 = realloc(l->v, sizeof(*nv2) * (l->n + 1));

		if (nv2 != NULL)
			l->v = nv2;
		if (c == NULL || nv2 == NULL) {
			free(c);
			close(fd);
			return NULL;
		}
		c->fd = fd;
		c->kind = K_CTL;
		c->uid = uid;
		c->priv = priv;
		l->v[l->n++] = c;
		return c;
	}
}

/* Out of file descriptors: give up the spare one to take the peer off the queue and tell
 * it why, so the queue cannot fill with connections we cannot take. */
static void
refuse_no_fd(struct sky_ctl_server *s, int lfd, int err)
{
	int fd;

	if (s == NULL || s->spare_fd < 0)
		return;
	close(s->spare_fd);
	s->spare_fd = -1;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		char msg[160];

		snprintf(msg, sizeof(msg),
			 "connection refused: skygate is out of file descriptors (%s)",
			 strerror(err));
		refuse(s, fd, "file_descriptors", msg);
	}
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Take pending connections, at most a quarter of max_clients per round: between rounds the
 * connections already taken are read, so a newcomer that made room has been heard before
 * enough later ones arrive to push it out in turn (a client flooding the socket with
 * connects cannot starve one that has sent its request).
 */
static void
accept_all(struct sky_ctl_server *s, int lfd, enum kind kind, struct clist *l, int *handled)
{
	unsigned int budget = HTTP_MAX_CLIENTS;

	if (kind == K_CTL)
		budget = s->lim.max_clients / 4 > 16 ? s->lim.max_clients / 4 : 16;
	while (budget-- > 0) {
		struct client *c, **v;
		struct ucred cred;
		socklen_t sl = sizeof(cred);
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				int e = errno;

				refuse_no_fd(kind == K_CTL ? s : NULL, lfd, e);
				if (kind == K_CTL && s->spare_fd >= 0)
					continue;
				SKY_LOG(WARNING, "control: accept: %s", strerror(e));
				return;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				SKY_LOG(WARNING, "control: accept: %s", strerror(errno));
			return;
		}
		if (kind == K_CTL) {
			uid_t uid = (uid_t)-1;
			pid_t pid = 0;

			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) == 0) {
				uid = cred.uid;
				pid = cred.pid;
			}
			c = admit(s, fd, uid);
			if (c == NULL)
				continue;
			c->pid = pid;
			sky_ctl_clients_now++;
			sky_ctl_counters[SKY_CTL_C_clients_accepted]++;
		} else {
			if (l->n >= HTTP_MAX_CLIENTS) {
				sky_ctl_counters[SKY_CTL_C_clients_refused]++;
				close(fd);
				continue;
			}
			c = calloc(1, sizeof(*c));
			v = realloc(l->v, sizeof(*v) * (l->n + 1));
			if (v != NULL)
				l->v = v;
			if (c == NULL || v == NULL) {
				free(c);
				close(fd);
				continue;
			}
			c->fd = fd;
			c->kind = kind;
			c->uid = (uid_t)-1;
			l->v[l->n++] = c;
		}
		c->last_ms = now_ms();
		if (kind == K_HTTP)
			c->req_start_ms = c->last_ms;
		/* the request may be there already */
		*handled +=
			client_read(c, s != NULL ? s->lim.request_max : SKY_CTL_DEF_REQUEST_MAX);
	}
}

/* Apply the timers of the control connections (before replies are written: a last line
 * goes out this round). */
static void
expire(struct sky_ctl_server *s, uint64_t now)
{
	for (unsigned int i = 0; i < s->clients.n; i++) {
		struct client *c = s->clients.v[i];
		struct sky_ctl_conn_times t = {.last_ms = c->last_ms,
					       .req_start_ms = c->req_start_ms,
					       .out_since_ms = out_pending(c) ? c->out_since_ms : 0,
					       .work = has_work(c)};
		char msg[200];

		if (c->dead || c->shut)
			continue; /* lingering ends on its own bound */
		if (c->closing && out_pending(c) == 0)
			continue;
		if (c->sub != NULL && out_pending(c) == 0)
			continue; /* following: quiet is not idle (sending has its timer) */
		switch (sky_ctl_expired(&s->lim, &t, now)) {
		case SKY_CTL_EXP_NONE:
			break;
		case SKY_CTL_EXP_SEND:
			c->dead = 1; /* it does not read: no last line */
			sky_ctl_counters[SKY_CTL_C_replies_timed_out]++;
			break;
		case SKY_CTL_EXP_REQUEST:
			snprintf(msg, sizeof(msg),
				 "request timeout: the request was not complete (no newline) "
				 "%u ms after its first byte (control.request_timeout)",
				 s->lim.request_timeout_ms);
			reply_limit(c, "request_timeout", msg);
			sky_ctl_counters[SKY_CTL_C_requests_timed_out]++;
			break;
		case SKY_CTL_EXP_IDLE:
			snprintf(msg, sizeof(msg),
				 "idle timeout: no request for %u ms (control.idle_timeout)",
				 s->lim.idle_timeout_ms);
			reply_limit(c, "idle_timeout", msg);
			sky_ctl_counters[SKY_CTL_C_clients_idle_closed]++;
			break;
		}
	}
}

static int
sub_out(void *arg, const char *data, size_t len)
{
	return out_append(arg, data, len);
}

/* Move queued event lines to the subscribers' output, a socket buffer's worth at a time:
 * the rest waits in the subscription's bounded queue (beyond it: lost, counted). */
static void
pump_events(struct sky_ctl_server *s)
{
	for (unsigned int i = 0; s != NULL && i < s->clients.n; i++) {
		struct client *c = s->clients.v[i];

		if (c->sub == NULL || c->dead || c->closing || c->shut ||
		    out_pending(c) >= EVENTS_ROOM || !sky_ctl_sub_has_output(c->sub))
			continue;
		sky_ctl_sub_pump(c->sub, sub_out, c, EVENTS_ROOM - out_pending(c));
	}
}

static short
client_events(const struct client *c)
{
	short ev = 0;

	if (!c->eof && (c->shut || out_pending(c) < OUT_HIGH))
		ev |= POLLIN;
	if (out_pending(c) > 0)
		ev |= POLLOUT;
	return ev;
}

/* sky_ctl_wake(): an eventfd in the poll set, so that another thread can end the wait */
static int wake_fd = -1;

void
sky_ctl_wake(void)
{
	uint64_t one = 1;
	int fd = __atomic_load_n(&wake_fd, __ATOMIC_ACQUIRE);

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return; /* nothing to do: the poll ends at its timeout anyway */
}

int
sky_ctl_server_poll(struct sky_ctl_server *s, int timeout_ms)
{
	unsigned int n_ctl = s ? s->clients.n : 0, n_http = http.clients.n;
	unsigned int cap = 3 + n_ctl + n_http, n = 0, i;
	struct pollfd *pfd;
	struct client **who;
	int rc, handled = 0, ctl_l = -1, http_l = -1, wake_l = -1;
	uint64_t now;

	pump_events(s); /* events emitted since the last round */
	pfd = calloc(cap, sizeof(*pfd));
	who = calloc(cap, sizeof(*who));
	if (pfd == NULL || who == NULL) {
		free(pfd);
		free(who);
		return -ENOMEM;
	}
	if (s != NULL && s->lfd >= 0) {
		ctl_l = (int)n;
		pfd[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
	}
	if (http.fd >= 0) {
		http_l = (int)n;
		pfd[n++] = (struct pollfd){.fd = http.fd, .events = POLLIN};
	}
	if (wake_fd >= 0) {
		wake_l = (int)n;
		pfd[n++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
	}
	for (i = 0; i < n_ctl + n_http; i++) {
		struct client *c = i < n_ctl ? s->clients.v[i] : http.clients.v[i - n_ctl];

		who[n] = c;
		pfd[n++] = (struct pollfd){.fd = c->fd, .events = client_events(c)};
	}
	if (n_ctl + n_http > 0 && (timeout_ms < 0 || timeout_ms > 100))
		timeout_ms = 100; /* come back to apply the timers */
	for (i = 0; i < n_ctl; i++)
		if (has_work(s->clients.v[i]))
			timeout_ms = 0;
	rc = poll(pfd, n, timeout_ms);
	if (rc < 0) {
		rc = errno == EINTR ? 0 : -errno;
		goto out;
	}
	/*
	 * Group commit: every request ready now is answered, the journal is fsync'd once, and
	 * only then are the replies sent. A reply is never sent before its change is on disk.
	 */
	sky_ctl_journal_batch_begin();
	for (i = 0; i < n; i++) {
		struct client *c = who[i];

		if (pfd[i].revents == 0)
			continue;
		if ((int)i == wake_l) {
			uint64_t v;

			if (read(wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				continue;
		} else if ((int)i == ctl_l)
			accept_all(s, s->lfd, K_CTL, &s->clients, &handled);
		else if ((int)i == http_l)
			accept_all(s, http.fd, K_HTTP, &http.clients, &handled);
		else if (c != NULL && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			handled += client_read(c, s != NULL ? s->lim.request_max
							    : SKY_CTL_DEF_REQUEST_MAX);
	}
	for (i = 0; s != NULL && i < s->clients.n; i++)
		if (has_work(s->clients.v[i]))
			handled += ctl_process(s->clients.v[i], s->lim.request_max);
	sky_ctl_journal_batch_end();
	if (s != NULL)
		expire(s, now_ms());
	pump_events(s); /* events the requests of this round emitted */
	for (i = 0; s != NULL && i < s->clients.n; i++)
		client_write(s->clients.v[i]);
	for (i = 0; i < http.clients.n; i++)
		client_write(http.clients.v[i]);
	rc = handled;
out:
	now = now_ms();
	if (s != NULL)
		clist_remove_done(&s->clients, now);
	clist_remove_done(&http.clients, now);
	free(pfd);
	free(who);
	return rc;
}

/* --- the control socket --- */

static char *
parent_dir(const char *path)
{
	char *d = strdup(path), *slash;

	if (d == NULL)
		return NULL;
	slash = strrchr(d, '/');
	if (slash == NULL)
		strcpy(d, ".");
	else if (slash == d)
		d[1] = '\0';
	else
		*slash = '\0';
	return d;
}

struct sky_ctl_server *
sky_ctl_server_open(const char *path, unsigned int mode, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct sky_ctl_server *s = NULL;
	struct stat st;
	char *dir;
	int fd = -1, rc;

	if (path == NULL || path[0] == '\0' || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path '%s': empty or longer than %zu bytes",
			 path ? path : "", sizeof(sa.sun_path) - 1);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	dir = parent_dir(path);
	if (dir == NULL) {
		snprintf(err, errlen, "control socket %s: out of memory", path);
		return NULL;
	}
	rc = sky_ctl_mkdirs(dir, 0755);
	if (rc != 0) {
		snprintf(err, errlen, "control socket %s: cannot create directory %s: %s", path,
			 dir, strerror(-rc));
		free(dir);
		return NULL;
	}
	free(dir);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s: exists and is not a socket",
				 path);
			return NULL;
		}
		/* a live daemon answers; a stale file from a crash does not */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			snprintf(err, errlen,
				 "control socket %s: another process is listening on it "
				 "(is skygate already running?)",
				 path);
			return NULL;
		}
		if (fd >= 0)
			close(fd);
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(err, errlen, "control socket %s: cannot remove stale socket: %s",
				 path, strerror(errno));
			return NULL;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket %s: socket: %s", path, strerror(errno));
		return NULL;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "control socket %s: bind: %s", path, strerror(errno));
		goto fail;
	}
	/* before listen(): nobody can connect while the mode is still the umask's */
	if (chmod(path, mode) != 0 || lstat(path, &st) != 0) {
		snprintf(err, errlen, "control socket %s: chmod %o: %s", path, mode,
			 strerror(errno));
		unlink(path);
		goto fail;
	}
	if (listen(fd, BACKLOG) != 0) {
		snprintf(err, errlen, "control socket %s: listen: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		snprintf(err, errlen, "control socket %s: out of memory", path);
		unlink(path);
		goto fail;
	}
	s->lfd = fd;
	s->ino = st.st_ino;
	s->dev = st.st_dev;
	s->owner = geteuid();
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	sky_ctl_limits_default(&s->lim);
	if (wake_fd < 0)
		__atomic_store_n(&wake_fd, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
				 __ATOMIC_RELEASE);
	return s;
fail:
	close(fd);
	return NULL;
}

void
sky_ctl_server_close(struct sky_ctl_server *s)
{
	struct stat st;

	if (s == NULL)
		return;
	clist_free(&s->clients);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	if (wake_fd >= 0) {
		close(wake_fd);
		__atomic_store_n(&wake_fd, -1, __ATOMIC_RELEASE);
	}
	/* remove the socket only if it is still ours (not a successor's) */
	if (lstat(s->path, &st) == 0 && st.st_ino == s->ino && st.st_dev == s->dev)
		unlink(s->path);
	free(s->path);
	free(s);
}

unsigned int
sky_ctl_server_clients(const struct sky_ctl_server *s)
{
	unsigned int n = 0;

	for (unsigned int i = 0; s != NULL && i < s->clients.n; i++)
		n += !s->clients.v[i]->dead;
	return n;
}

int
sky_ctl_server_set_limits(struct sky_ctl_server *s, const struct sky_ctl_limits *l, char *err,
			  size_t errlen)
{
	int rc = sky_ctl_limits_check(l, err, errlen);

	if (rc == 0)
		s->lim = *l;
	return rc;
}

/* --- the metrics HTTP listener --- */

int
sky_metrics_http_open(const char *listen_addr, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], *port;
	const char *h;
	int fd = -1, one = 1, rc;

	sky_metrics_http_close();
	if (listen_addr == NULL || strlen(listen_addr) >= sizeof(host)) {
		snprintf(err, errlen, "metrics listen address: missing or too long");
		return -EINVAL;
	}
	strcpy(host, listen_addr);
	port = strrchr(host, ':');
	if (port == NULL || port[1] == '\0') {
		snprintf(err, errlen, "metrics listen '%s': expected ADDR:PORT", listen_addr);
		return -EINVAL;
	}
	*port++ = '\0';
	h = host;
	if (host[0] == '[') {
		size_t l = strlen(host);

		if (l < 2 || host[l - 1] != ']') {
			snprintf(err, errlen, "metrics listen '%s': expected [IPV6]:PORT",
				 listen_addr);
			return -EINVAL;
		}
		host[l - 1] = '\0';
		h = host + 1;
	}
	rc = getaddrinfo(h[0] ? h : NULL, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "metrics listen '%s': %s", listen_addr, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		rc = -errno;
		snprintf(err, errlen, "metrics listen '%s': %s", listen_addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	http.fd = fd;
	http.port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

void
sky_metrics_http_close(void)
{
	clist_free(&http.clients);
	if (http.fd >= 0)
		close(http.fd);
	http.fd = -1;
	http.port = -1;
}

int
sky_metrics_http_port(void)
{
	return http.port;
}
