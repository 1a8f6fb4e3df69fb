/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket server and the metrics HTTP listener, both served from one poll()
 * in sky_ctl_server_poll() on the main lcore. Non-blocking throughout: a client that sends
 * half a request, stops reading its replies or disconnects mid-request costs memory up to
 * fixed limits, never a blocked main loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "control_priv.h"

#define REQ_MAX (1u << 20)  /* a request line longer than this is refused */
#define OUT_HIGH (4u << 20) /* stop reading a client while this much is unsent */
#define MAX_CLIENTS 64	    /* per listener */
#define HTTP_REQ_MAX 8192   /* request line + headers */
#define HTTP_IDLE_MS 10000  /* an HTTP client idle this long is closed */
#define LINGER_MS 2000	    /* after the reply: read and discard until EOF, this long */
#define READ_CHUNK 65536

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
	int closing; /* no more requests: close when out is sent */
	int eof;     /* peer shut its write side */
	int dead;    /* error: close now */
	int shut;    /* our write side is shut (lingering) */
	uint64_t last_ms;
	uint64_t linger_until_ms;
};

struct clist {
	struct client **v;
	unsigned int n;
};

struct sky_ctl_server {
	int lfd;
	char *path;
	ino_t ino;
	dev_t dev;
	struct clist clients;
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
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
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
		if (!done && c->kind == K_HTTP && !c->shut && now - c->last_ms > HTTP_IDLE_MS)
			done = 1;
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
	reply = sky_ctl_dispatch(req, c->uid, c->pid);
	json_decref(req);
	reply_line(c, reply);
	json_decref(reply);
	return 1;
}

/* Run complete request lines while the client is reading its replies. */
static int
ctl_process(struct client *c)
{
	int handled = 0;

	while (!c->closing && !c->dead && out_pending(c) < OUT_HIGH) {
		char *start = c->in + c->in_off;
		size_t avail = c->in_len - c->in_off;
		char *nl = memchr(start, '\n', avail);

		if (nl == NULL || (size_t)(nl - start) > REQ_MAX) {
			if (avail > REQ_MAX) {
				char msg[128];

				snprintf(msg, sizeof(msg),
					 "request too large (more than %u bytes without a newline)",
					 REQ_MAX);
				reply_error(c, msg);
				c->closing = 1;
				c->in_off = c->in_len = 0;
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
client_read(struct client *c)
{
	char chunk[READ_CHUNK];
	int handled = 0;

	for (;;) {
		ssize_t n;

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
		if (c->closing)
			continue; /* answered (or refused): discard what still comes */
		if (buf_reserve(&c->in, &c->in_cap, c->in_len + (size_t)n + 1) != 0) {
			c->dead = 1;
			break;
		}
		memcpy(c->in + c->in_len, chunk, (size_t)n);
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		handled += c->kind == K_CTL ? ctl_process(c) : http_process(c);
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
	}
	if (out_pending(c) == 0)
		c->out_off = c->out_len = 0;
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
	return c->kind == K_CTL && !c->dead && !c->closing && out_pending(c) < OUT_HIGH &&
	       c->in_len > c->in_off && memchr(c->in + c->in_off, '\n', c->in_len - c->in_off);
}

static void
accept_all(int lfd, enum kind kind, struct clist *l, int *handled)
{
	for (;;) {
		struct client *c, **v;
		struct ucred cred;
		socklen_t sl = sizeof(cred);
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				SKY_LOG(WARNING, "control: accept: %s", strerror(errno));
			return;
		}
		if (l->n >= MAX_CLIENTS) {
			static const char full[] =
				"{\"ok\":false,\"error\":\"too many clients, try again later\"}\n";

			if (kind == K_CTL) {
				/* the refusal is best effort */
				ssize_t r = send(fd, full, sizeof(full) - 1,
						 MSG_DONTWAIT | MSG_NOSIGNAL);
				(void)r;
			}
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
		c->pid = 0;
		if (kind == K_CTL) {
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) == 0) {
				c->uid = cred.uid;
				c->pid = cred.pid;
			}
			sky_ctl_clients_now++;
			sky_ctl_counters[SKY_CTL_C_clients_accepted]++;
		}
		c->last_ms = now_ms();
		l->v[l->n++] = c;
		/* the request may be there already */
		*handled += client_read(c);
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

int
sky_ctl_server_poll(struct sky_ctl_server *s, int timeout_ms)
{
	unsigned int n_ctl = s ? s->clients.n : 0, n_http = http.clients.n;
	unsigned int cap = 2 + n_ctl + n_http, n = 0, i;
	struct pollfd *pfd;
	struct client **who;
	int rc, handled = 0, ctl_l = -1, http_l = -1;
	uint64_t now;

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
	for (i = 0; i < n_ctl + n_http; i++) {
		struct client *c = i < n_ctl ? s->clients.v[i] : http.clients.v[i - n_ctl];

		who[n] = c;
		pfd[n++] = (struct pollfd){.fd = c->fd, .events = client_events(c)};
	}
	if (n_http > 0 && (timeout_ms < 0 || timeout_ms > 1000))
		timeout_ms = 1000; /* come back to expire idle HTTP clients */
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
		if ((int)i == ctl_l)
			accept_all(s->lfd, K_CTL, &s->clients, &handled);
		else if ((int)i == http_l)
			accept_all(http.fd, K_HTTP, &http.clients, &handled);
		else if (c != NULL && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			handled += client_read(c);
	}
	for (i = 0; s != NULL && i < s->clients.n; i++)
		if (has_work(s->clients.v[i]))
			handled += ctl_process(s->clients.v[i]);
	sky_ctl_journal_batch_end();
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
	if (listen(fd, 64) != 0) {
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
	/* remove the socket only if it is still ours (not a successor's) */
	if (lstat(s->path, &st) == 0 && st.st_ino == s->ino && st.st_dev == s->dev)
		unlink(s->path);
	free(s->path);
	free(s);
}

unsigned int
sky_ctl_server_clients(const struct sky_ctl_server *s)
{
	return s ? s->clients.n : 0;
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
