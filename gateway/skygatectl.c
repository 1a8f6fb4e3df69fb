/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * skygatectl: the operator's CLI for the skygate control socket.
 *
 *   skygatectl [--socket PATH] [--json] [--timeout SEC] CMD [ARGS...]
 *   skygatectl [OPTIONS] watch [-n SEC] CMD [ARGS...]
 *   skygatectl [OPTIONS] events --follow [type=GLOB...]
 *
 * Sends {"argv": [CMD, ARGS...]} as one line, reads one reply line and prints the result:
 * tables and aligned key/value lines for people, the result JSON with --json.
 * Exit status: 0 ok, 1 the daemon refused the request, 2 usage or connection error.
 * Needs only jansson: no DPDK, no libskygate.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sky_build_config.h"

#define DEFAULT_SOCKET "/run/skygate/skygate.sock"
#define DEFAULT_TIMEOUT_S 30.0
#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define SKY_FOLLOW_MAX 8 /* type=GLOB filters of events --follow (the daemon's bound) */

struct opts {
	const char *socket;
	int json;
	double timeout_s; /* 0 = wait forever */
};

static const char *prog = "skygatectl";

static void
usage(FILE *o)
{
	fprintf(o,
		"usage: %s [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS...]\n"
		"       %s [OPTIONS] watch [-n SEC] COMMAND [ARGS...]\n"
		"       %s [OPTIONS] events --follow [type=GLOB...]\n"
		"\n"
		"Talks to a running skygate over its control socket.\n"
		"\n"
		"options:\n"
		"  -s, --socket PATH   control socket (default $SKYGATE_SOCKET, else %s)\n"
		"  -j, --json          print the result as JSON (for scripts)\n"
		"  -t, --timeout SEC   wait at most SEC seconds for the reply (default %.0f, 0 = "
		"forever)\n"
		"  -h, --help          this text\n"
		"  -V, --version       print the version\n"
		"\n"
		"common commands ('%s help' lists every command the daemon has):\n"
		"  status | stats | ports                 the daemon, counters per port, links\n"
		"  subscriber add|del|set|show|list|load  subscribers\n"
		"  plan list|show|set                     plans\n"
		"  beam list|show|set                     beams (rain fade / ACM changes)\n"
		"  class reload                           reload class rules\n"
		"  geo lookup|reload|show                 geolocation\n"
		"  policy load|show|unload                the eBPF policy\n"
		"  map list|show|update|delete            policy maps\n"
		"  shaper show                            shaping state\n"
		"  metrics                                Prometheus text\n"
		"  help [COMMAND]                         commands, usage and help\n"
		"  watch [-n SEC] COMMAND...              redraw COMMAND every SEC seconds "
		"(default "
		"2)\n"
		"  events --follow [type=GLOB...]         print events as JSON lines until "
		"interrupted\n"
		"\n"
		"exit status: 0 ok, 1 the daemon refused the request (reason on stderr),\n"
		"             2 usage or connection error\n",
		prog, prog, prog, DEFAULT_SOCKET, DEFAULT_TIMEOUT_S, prog);
}

static void __attribute__((format(printf, 1, 2))) die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try '%s --help')\n", prog);
	exit(EXIT_USAGE);
}

static int
parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 86400 * 365)
		return -1;
	*out = v;
	return 0;
}

/* --- the request --- */

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
wait_fd(int fd, short ev, double deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = ev};
		int ms = -1, rc;

		if (deadline > 0) {
			double left = deadline - mono_s();

			if (left <= 0)
				return -ETIMEDOUT;
			ms = (int)(left * 1000) + 1;
		}
		rc = poll(&p, 1, ms);
		if (rc < 0 && errno == EINTR)
			return -EINTR;
		if (rc < 0)
			return -errno;
		if (rc > 0)
			return 0;
	}
}

/*
 * Read one reply line; exact: byte by byte, so nothing after the line is taken from the
 * socket (what follows is the events stream). 0 with *reply set; -ETIMEDOUT, -EINTR, -ENOMEM,
 * -EPROTO (not a JSON object), -ENODATA (closed without a line), -1 (recv failed: errno).
 */
static int
read_reply(int fd, double deadline, json_t **reply, int exact)
{
	char *buf = NULL;
	size_t cap = 0, off = 0;
	int rc, e = 0;

	for (;;) {
		ssize_t n;
		char *nl;
		int w = wait_fd(fd, POLLIN, deadline);

		if (w == -ETIMEDOUT || w == -EINTR) {
			rc = w;
			break;
		}
		if (cap - off < 65536) {
			char *p = realloc(buf, cap + 65536 + 1);

			if (p == NULL) {
				rc = -ENOMEM;
				break;
			}
			buf = p;
			cap += 65536;
		}
		n = recv(fd, buf + off, exact ? 1 : cap - off, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0 && errno == ECONNRESET && off == 0) {
			rc = -ENODATA;
			break;
		}
		if (n < 0) {
			rc = -1;
			e = errno;
			break;
		}
		if (n == 0) {
			rc = -ENODATA;
			break;
		}
		nl = memchr(buf + off, '\n', (size_t)n);
		off += (size_t)n;
		if (nl != NULL) {
			*reply = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			if (*reply == NULL || !json_is_object(*reply)) {
				json_decref(*reply);
				*reply = NULL;
				rc = -EPROTO;
				break;
			}
			rc = 0;
			break;
		}
	}
	free(buf);
	errno = e;
	return rc;
}

/*
 * Connect. A full accept queue (the daemon is not accepting: flooded, or stuck) makes the
 * kernel queue us in line: a blocking connect waits its turn, where polling with retries
 * would lose every freed place to a flood. At the deadline we say so, never a silent hang.
 */
static int
connect_wait(int fd, const struct sockaddr_un *sa, double deadline, const struct opts *o, char *err,
	     size_t errlen)
{
	struct timeval tv = {0, 0}; /* 0: no deadline */
	double t0 = mono_s();
	int e;

	if (deadline > 0) {
		double left = deadline - t0;

		if (left < 0.001)
			left = 0.001;
		tv.tv_sec = (time_t)left;
		tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	e = errno;
	if (e == EAGAIN || e == EINPROGRESS)
		snprintf(err, errlen,
			 "cannot connect to %s: its queue of pending connections is full and "
			 "skygate did not accept this one in %.1f s (it is busy or flooded with "
			 "connections)",
			 o->socket, mono_s() - t0);
	else if (e == EINTR)
		snprintf(err, errlen, "interrupted");
	else
		snprintf(err, errlen, "cannot connect to %s: %s%s", o->socket, strerror(e),
			 e == ENOENT || e == ECONNREFUSED ? " (is skygate running?)"
			 : e == EACCES			  ? " (are you in the socket's group?)"
							  : "");
	return -1;
}

/*
 * One request/reply. Returns 0 with *reply set, or -1 with err set (connection, timeout,
 * protocol: exit status 2). A connection the daemon refuses (a limit) comes back as a
 * reply: {"ok": false, "error": "connection refused: ...", "limit": "..."}. keep: NULL, or
 * where the connection is left open after the reply (else -1).
 */
static int
call(const struct opts *o, int argc, char **argv, json_t **reply, int *keep, char *err,
     size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	double deadline = o->timeout_s > 0 ? mono_s() + o->timeout_s : 0;
	json_t *req, *a;
	char *line = NULL, *buf = NULL;
	size_t len = 0, off = 0;
	int fd = -1, rc = -1;

	*reply = NULL;
	if (keep != NULL)
		*keep = -1;
	if (strlen(o->socket) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s: too long", o->socket);
		return -1;
	}
	strcpy(sa.sun_path, o->socket);
	a = json_array();
	for (int i = 0; i < argc; i++)
		if (json_array_append_new(a, json_string(argv[i])) != 0) {
			snprintf(err, errlen, "argument %d ('%s') is not valid UTF-8", i + 1,
				 argv[i]);
			json_decref(a);
			return -1;
		}
	req = json_pack("{s:o}", "argv", a);
	line = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (line == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	len = strlen(line);
	buf = realloc(line, len + 2);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	line = buf;
	buf = NULL;
	line[len++] = '\n';

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	rc = connect_wait(fd, &sa, deadline, o, err, errlen);
	if (rc != 0)
		goto out;
	rc = -1;
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			/* the daemon closed the connection: it may have said why (refused) */
			int e = errno;

			if (read_reply(fd, mono_s() + 1.0, reply, 0) == 0) {
				rc = 0;
				goto out;
			}
			snprintf(err, errlen,
				 "%s: the daemon closed the connection before taking the request "
				 "(%s) and gave no reason",
				 o->socket, strerror(e));
			goto out;
		}

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int w = wait_fd(fd, POLLOUT, deadline);

			if (w == -ETIMEDOUT) {
				snprintf(err, errlen,
					 "%s: timed out sending the request after %g s", o->socket,
					 o->timeout_s);
				goto out;
			}
			if (w == -EINTR) {
				snprintf(err, errlen, "interrupted");
				goto out;
			}
			continue;
		}
		if (n < 0) {
			snprintf(err, errlen, "%s: cannot send the request: %s", o->socket,
				 strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	switch (read_reply(fd, deadline, reply, keep != NULL)) {
	case 0:
		rc = 0;
		if (keep != NULL) {
			*keep = fd;
			fd = -1;
		}
		break;
	case -ETIMEDOUT:
		snprintf(err, errlen, "%s: no reply within %g s (see --timeout)", o->socket,
			 o->timeout_s);
		break;
	case -EINTR:
		snprintf(err, errlen, "interrupted");
		break;
	case -ENOMEM:
		snprintf(err, errlen, "out of memory reading the reply");
		break;
	case -EPROTO:
		snprintf(err, errlen, "%s: bad reply from the daemon (not a JSON object)",
			 o->socket);
		break;
	case -ENODATA:
		snprintf(err, errlen, "%s: the daemon closed the connection without a reply",
			 o->socket);
		break;
	default:
		snprintf(err, errlen, "%s: cannot read the reply: %s", o->socket, strerror(errno));
		break;
	}
out:
	if (fd >= 0)
		close(fd);
	free(line);
	free(buf);
	return rc;
}

/* --- rendering for people --- */

/* One line of text: control characters become spaces so tables stay tables. */
static void
put_clean(FILE *o, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, o);
}

static int
is_inline(const json_t *v)
{
	size_t i;
	const json_t *e;

	if (json_is_object(v))
		return json_object_size(v) == 0;
	if (!json_is_array(v))
		return 1;
	json_array_foreach(v, i, e) if (json_is_object(e) || json_is_array(e)) return 0;
	return 1;
}

/* A scalar (or small value) as text; returns a malloc'd string. */
static char *
fmt_value(const json_t *v)
{
	char *s = NULL;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = strdup(json_string_value(v));
		break;
	case JSON_INTEGER:
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			s = NULL;
		break;
	case JSON_REAL:
		if (asprintf(&s, "%.10g", json_real_value(v)) < 0)
			s = NULL;
		break;
	case JSON_TRUE:
		s = strdup("true");
		break;
	case JSON_FALSE:
		s = strdup("false");
		break;
	case JSON_NULL:
		s = strdup("-");
		break;
	case JSON_ARRAY: {
		size_t i, n = 0;
		const json_t *e;
		FILE *f;

		if (json_array_size(v) == 0)
			return strdup("-");
		if (!is_inline(v))
			return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		f = open_memstream(&s, &n);
		if (f == NULL)
			return NULL;
		json_array_foreach(v, i, e)
		{
			char *t = fmt_value(e);

			fprintf(f, "%s%s", i ? ", " : "", t ? t : "?");
			free(t);
		}
		fclose(f);
		break;
	}
	case JSON_OBJECT:
		if (json_object_size(v) == 0)
			return strdup("-");
		return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	}
	return s;
}

static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80; /* count UTF-8 characters */
	return w;
}

static void
pad(FILE *o, size_t n)
{
	while (n-- > 0)
		fputc(' ', o);
}

static void render(FILE *o, const json_t *v, int indent);
static void render_object(FILE *o, const json_t *obj, int indent);

/* Columns of the terminal when stdout is one; 0 (no limit) for pipes and files. */
static size_t
term_cols(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
		return ws.ws_col;
	return 0;
}

/* The column that names a row: a usual identity key, else the first text column. */
static int
label_column(const json_t *rows, const char **cols, const int *nested, size_t n_cols, int *id)
{
	static const char *const ids[] = {"name", "id", "port", "beam", "worker", "key"};
	size_t r, c;
	const json_t *row;

	*id = 1;
	for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++)
		for (c = 0; c < n_cols; c++)
			if (!nested[c] && strcmp(cols[c], ids[k]) == 0)
				return (int)c;
	*id = 0;
	for (c = 0; c < n_cols; c++) {
		int text = !nested[c];

		json_array_foreach(rows, r, row)
		{
			const json_t *v = json_object_get(row, cols[c]);

			if (v != NULL && !json_is_string(v))
				text = 0;
		}
		if (text)
			return (int)c;
	}
	for (c = 0; c < n_cols; c++)
		if (!nested[c])
			return (int)c;
	return -1;
}

/*
 * An array of objects: one row each, columns = union of keys in first-seen order (the
 * row's name first), numbers right-aligned. Values that do not fit a cell (objects, arrays
 * of objects) are printed under the table, one section per row, headed by the row's name.
 * A table wider than the terminal is printed as one block per row instead.
 */
static void
render_table(FILE *o, const json_t *rows, int indent)
{
	const char **cols = NULL;
	size_t *width = NULL, *order = NULL;
	int *numeric = NULL, *nested = NULL, lab, id;
	size_t n_cols = 0, n_show = 0, r, c, k, n_rows = json_array_size(rows), total, limit;
	const json_t *row, *v;
	const char *key;
	char ***cells = NULL;

	json_array_foreach(rows, r, row)
	{
		json_object_foreach((json_t *)row, key, v)
		{
			for (c = 0; c < n_cols; c++)
				if (strcmp(cols[c], key) == 0)
					break;
			if (c == n_cols) {
				cols = realloc(cols, sizeof(*cols) * (n_cols + 1));
				width = realloc(width, sizeof(*width) * (n_cols + 1));
				numeric = realloc(numeric, sizeof(*numeric) * (n_cols + 1));
				nested = realloc(nested, sizeof(*nested) * (n_cols + 1));
				if (cols == NULL || width == NULL || numeric == NULL ||
				    nested == NULL)
					abort();
				cols[n_cols] = key;
				width[n_cols] = text_width(key);
				numeric[n_cols] = 1;
				nested[n_cols] = 0;
				n_cols++;
			}
			if (!is_inline(v))
				nested[c] = 1;
		}
	}
	lab = label_column(rows, cols, nested, n_cols, &id);
	order = calloc(n_cols ? n_cols : 1, sizeof(*order));
	if (order == NULL)
		abort();
	if (id) /* an identity column ("name", "id", ...) goes first */
		order[n_show++] = (size_t)lab;
	for (c = 0; c < n_cols; c++)
		if (!nested[c] && !(id && (int)c == lab))
			order[n_show++] = c;

	cells = calloc(n_rows ? n_rows : 1, sizeof(*cells));
	if (cells == NULL)
		abort();
	json_array_foreach(rows, r, row)
	{
		cells[r] = calloc(n_cols ? n_cols : 1, sizeof(char *));
		if (cells[r] == NULL)
			abort();
		for (c = 0; c < n_cols; c++) {
			if (nested[c])
				continue;
			v = json_object_get(row, cols[c]);
			cells[r][c] = v ? fmt_value(v) : strdup("-");
			if (cells[r][c] == NULL)
				abort();
			if (v != NULL && !json_is_number(v) && !json_is_null(v))
				numeric[c] = 0;
			if (text_width(cells[r][c]) > width[c])
				width[c] = text_width(cells[r][c]);
		}
	}
	total = (size_t)indent;
	for (k = 0; k < n_show; k++)
		total += width[order[k]] + (k ? 2 : 0);
	limit = term_cols();

	if (limit > 0 && total > limit) {
		/* too wide for this terminal: one block per row */
		json_array_foreach(rows, r, row)
		{
			if (r > 0)
				fputc('\n', o);
			pad(o, (size_t)indent);
			if (lab >= 0)
				put_clean(o, cells[r][lab]);
			else
				fprintf(o, "#%zu", r);
			fputs(":\n", o);
			render_object(o, row, indent + 2);
		}
		goto out;
	}
	if (n_show > 0) {
		pad(o, (size_t)indent);
		for (k = 0; k < n_show; k++) {
			size_t w = text_width(cols[order[k]]);

			c = order[k];
			if (k > 0)
				fputs("  ", o);
			if (numeric[c])
				pad(o, width[c] - w);
			for (const char *p = cols[c]; *p; p++)
				fputc(toupper((unsigned char)*p), o);
			if (!numeric[c] && k + 1 < n_show)
				pad(o, width[c] - w);
		}
		fputc('\n', o);
		for (r = 0; r < n_rows; r++) {
			pad(o, (size_t)indent);
			for (k = 0; k < n_show; k++) {
				size_t w;

				c = order[k];
				w = text_width(cells[r][c]);
				if (k > 0)
					fputs("  ", o);
				if (numeric[c])
					pad(o, width[c] - w);
				put_clean(o, cells[r][c]);
				if (!numeric[c] && k + 1 < n_show)
					pad(o, width[c] - w);
			}
			fputc('\n', o);
		}
	}
	/* the values that did not fit, under the table */
	json_array_foreach(rows, r, row)
	{
		for (c = 0; c < n_cols; c++) {
			if (!nested[c])
				continue;
			v = json_object_get(row, cols[c]);
			if (v == NULL || is_inline(v))
				continue;
			fputc('\n', o);
			pad(o, (size_t)indent);
			if (lab >= 0) {
				put_clean(o, cells[r][lab]);
				fputc(' ', o);
			} else {
				fprintf(o, "#%zu ", r);
			}
			put_clean(o, cols[c]);
			fputs(":\n", o);
			render(o, v, indent + 2);
		}
	}
out:
	for (r = 0; r < n_rows; r++) {
		for (c = 0; c < n_cols; c++)
			free(cells[r][c]);
		free(cells[r]);
	}
	free(cells);
	free(cols);
	free(width);
	free(numeric);
	free(nested);
	free(order);
}

/*
 * {"realtime": {"packets": 1, "bytes": 2}, "bulk": {...}}: records by name. Rendered as a
 * table whose first column is the name.
 */
static json_t *
records_by_name(const json_t *obj)
{
	const char *key, *k2;
	const json_t *v, *f;
	json_t *rows;
	const char *col = "name";

	if (!json_is_object(obj) || json_object_size(obj) < 2)
		return NULL;
	json_object_foreach((json_t *)obj, key, v)
	{
		if (!json_is_object(v) || json_object_size(v) == 0)
			return NULL;
		json_object_foreach((json_t *)v, k2, f)
		{
			if (!is_inline(f))
				return NULL;
			if (strcmp(k2, "name") == 0)
				col = "key";
		}
	}
	rows = json_array();
	json_object_foreach((json_t *)obj, key, v)
	{
		json_t *row = json_object();

		json_object_set_new(row, col, json_string(key));
		json_object_update(row, (json_t *)v);
		json_array_append_new(rows, row);
	}
	return rows;
}

static int
all_objects(const json_t *a)
{
	size_t i;
	const json_t *e;

	if (json_array_size(a) == 0)
		return 0;
	json_array_foreach(a, i, e) if (!json_is_object(e)) return 0;
	return 1;
}

/* An object: aligned "key  value" lines; nested objects and tables under a heading. */
static void
render_object(FILE *o, const json_t *obj, int indent)
{
	const char *key;
	const json_t *v;
	size_t kw = 0;
	int printed = 0, after_section = 0;

	json_object_foreach((json_t *)obj, key, v) if (is_inline(v) && text_width(key) > kw) kw =
		text_width(key);
	json_object_foreach((json_t *)obj, key, v)
	{
		if (is_inline(v)) {
			char *t = fmt_value(v);

			if (after_section)
				fputc('\n', o);
			after_section = 0;
			pad(o, (size_t)indent);
			put_clean(o, key);
			pad(o, kw - text_width(key) + 2);
			put_clean(o, t ? t : "?");
			fputc('\n', o);
			free(t);
			printed = 1;
			continue;
		}
		if (printed)
			fputc('\n', o);
		pad(o, (size_t)indent);
		put_clean(o, key);
		fputs(":\n", o);
		render(o, v, indent + 2);
		printed = 1;
		after_section = 1;
	}
}

static void
render(FILE *o, const json_t *v, int indent)
{
	size_t i;
	const json_t *e;

	if (json_is_object(v)) {
		json_t *rows = records_by_name(v);

		if (rows != NULL)
			render_table(o, rows, indent);
		else
			render_object(o, v, indent);
		json_decref(rows);
	} else if (json_is_array(v)) {
		if (all_objects(v)) {
			render_table(o, v, indent);
			return;
		}
		json_array_foreach(v, i, e)
		{
			if (is_inline(e)) {
				char *t = fmt_value(e);

				pad(o, (size_t)indent);
				put_clean(o, t ? t : "?");
				fputc('\n', o);
				free(t);
			} else {
				render(o, e, indent + 2);
			}
		}
	} else {
		char *t = fmt_value(v);

		pad(o, (size_t)indent);
		put_clean(o, t ? t : "?");
		fputc('\n', o);
		free(t);
	}
}

/* `help`: "command usage" in one column, the help text beside it. */
static void
render_help(FILE *o, const json_t *list)
{
	size_t i, w = 0;
	const json_t *e;

	json_array_foreach(list, i, e)
	{
		size_t l = text_width(json_string_value(json_object_get(e, "command")) ?: "") + 1 +
			   text_width(json_string_value(json_object_get(e, "usage")) ?: "");

		if (l > w)
			w = l;
	}
	if (w > 40)
		w = 40;
	json_array_foreach(list, i, e)
	{
		const char *cmd = json_string_value(json_object_get(e, "command")) ?: "";
		const char *use = json_string_value(json_object_get(e, "usage")) ?: "";
		const char *help = json_string_value(json_object_get(e, "help")) ?: "";
		size_t l = text_width(cmd) + (use[0] ? 1 + text_width(use) : 0);

		fputs("  ", o);
		put_clean(o, cmd);
		if (use[0] != '\0') {
			fputc(' ', o);
			put_clean(o, use);
		}
		if (help[0] != '\0') {
			if (l > w) {
				fputc('\n', o);
				pad(o, w + 2);
			} else {
				pad(o, w - l);
			}
			fputs("  ", o);
			put_clean(o, help);
		}
		fputc('\n', o);
	}
}

static void
print_result(FILE *o, const struct opts *op, int argc, char **argv, const json_t *result)
{
	const json_t *text = json_object_get(result, "text");

	if (op->json) {
		json_dumpf(result, o, JSON_INDENT(2) | JSON_ENCODE_ANY);
		fputc('\n', o);
	} else if (json_is_object(result) && json_object_size(result) == 1 &&
		   json_is_string(text)) {
		/* raw text (metrics, config dumps): as is */
		size_t n = json_string_length(text);

		fwrite(json_string_value(text), 1, n, o);
		if (n > 0 && json_string_value(text)[n - 1] != '\n')
			fputc('\n', o);
	} else if (strcmp(argv[0], "help") == 0 && json_is_array(result) && all_objects(result)) {
		render_help(o, result);
	} else {
		render(o, result, 0);
	}
}

/* Run one command; print to o (result) and e (errors). Returns the exit status. */
static int
run(FILE *o, FILE *e, const struct opts *op, int argc, char **argv)
{
	char err[1024];
	json_t *reply, *ok;
	int rc;

	if (call(op, argc, argv, &reply, NULL, err, sizeof(err)) != 0) {
		fprintf(e, "%s: %s\n", prog, err);
		return EXIT_USAGE;
	}
	ok = json_object_get(reply, "ok");
	if (json_is_true(ok)) {
		json_t *result = json_object_get(reply, "result");

		print_result(o, op, argc, argv, result ? result : json_null());
		rc = 0;
	} else {
		const char *msg = json_string_value(json_object_get(reply, "error"));

		fprintf(e, "%s: %s\n", prog, msg ? msg : "the daemon refused the request");
		rc = EXIT_REFUSED;
	}
	json_decref(reply);
	return rc;
}

/*
 * The daemon runs in its own directory: a relative path to a file the operator names
 * (policy load x.bpf.o, subscriber load subs.csv) would resolve there. Such arguments —
 * a relative path with a '/' or a file extension, naming a regular file here — are sent
 * as absolute paths. Other words (DE, 10.0.0.0/8, key=value) are left alone.
 */
static void
absolute_paths(int argc, char **argv)
{
	static const char *const ext[] = {".o", ".csv", ".db", ".yaml", ".yml", ".json"};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *dot = strrchr(a, '.');
		int pathlike = strchr(a, '/') != NULL;
		struct stat st;
		char *abs;

		if (a[0] == '/' || a[0] == '\0' || strchr(a, '=') != NULL)
			continue;
		for (size_t k = 0; !pathlike && dot && k < sizeof(ext) / sizeof(ext[0]); k++)
			pathlike = strcmp(dot, ext[k]) == 0;
		if (!pathlike || stat(a, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		abs = realpath(a, NULL);
		if (abs != NULL)
			argv[i] = abs; /* lives until exit */
	}
}

/* --- watch --- */

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
watch(const struct opts *op, int argc, char **argv)
{
	double interval = 2.0;
	struct sigaction sa = {.sa_handler = on_signal};
	char title[512];
	size_t tl = 0;
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		const char *v = NULL;

		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--interval") == 0) {
			if (i + 1 >= argc)
				die_usage("watch: %s needs a number of seconds", argv[i]);
			v = argv[++i];
		} else if (strncmp(argv[i], "-n", 2) == 0) {
			v = argv[i] + 2;
		} else if (strncmp(argv[i], "--interval=", 11) == 0) {
			v = argv[i] + 11;
		} else {
			die_usage("watch: unknown option '%s'", argv[i]);
		}
		if (parse_seconds(v, &interval) != 0 || interval < 0.1)
			die_usage("watch: bad interval '%s' (seconds, at least 0.1)", v);
		i++;
	}
	argc -= i;
	argv += i;
	if (argc == 0)
		die_usage("watch: which command? (e.g. '%s watch -n 1 stats')", prog);
	for (int k = 0; k < argc && tl + 1 < sizeof(title); k++) {
		int n = snprintf(title + tl, sizeof(title) - tl, "%s%s", k ? " " : "", argv[k]);

		if (n < 0)
			break;
		tl += (size_t)n;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop) {
		double t0 = mono_s(), left;
		char *out = NULL, ts[32];
		size_t n = 0;
		FILE *f = open_memstream(&out, &n);
		time_t now = time(NULL);
		struct tm tm;

		if (f == NULL)
			return EXIT_USAGE;
		localtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(f, "Every %gs: %s%s", interval, title, tl >= sizeof(title) ? "..." : "");
		fprintf(f, "    %s\n\n", ts);
		run(f, f, op, argc, argv);
		fclose(f);
		if (stop) {
			free(out);
			break;
		}
		/* home + clear, then the whole frame in one write to avoid flicker */
		fputs("\033[H\033[2J", stdout);
		fwrite(out, 1, n, stdout);
		fflush(stdout);
		free(out);
		left = interval - (mono_s() - t0);
		if (left > 0) {
			struct timespec d = {.tv_sec = (time_t)left,
					     .tv_nsec =
						     (long)((left - (double)(time_t)left) * 1e9)};

			nanosleep(&d, NULL); /* a signal cuts it short */
		}
	}
	fputc('\n', stdout);
	return 0;
}

/*
 * events --follow [type=GLOB...]: subscribe, then copy the event lines to stdout as they come,
 * one write each (so a pipe or a file sees whole lines). Ends with status 0 on SIGINT or
 * SIGTERM, or when stdout is closed (SIGPIPE, e.g. `| head -1`); 2 when the daemon goes away.
 */
static int
events_follow(const struct opts *op, int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	char *w[SKY_FOLLOW_MAX + 2] = {"events", "follow"};
	char err[1024], *buf = NULL;
	size_t cap = 0, len = 0;
	json_t *reply;
	int fd, n = 2, i = 1, rc = 0;

	for (; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0 ||
		    strcmp(argv[i], "follow") == 0)
			continue;
		if (argv[i][0] == '-')
			die_usage("events: unknown option '%s'", argv[i]);
		if (n >= SKY_FOLLOW_MAX + 2)
			die_usage("events: too many filters (at most %d)", SKY_FOLLOW_MAX);
		w[n++] = argv[i];
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed stdout is an EPIPE on write: the end */
	if (call(op, n, w, &reply, &fd, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return stop ? 0 : EXIT_USAGE;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *msg = json_string_value(json_object_get(reply, "error"));

		fprintf(stderr, "%s: %s\n", prog, msg ? msg : "the daemon refused the request");
		json_decref(reply);
		if (fd >= 0)
			close(fd);
		return EXIT_REFUSED;
	}
	json_decref(reply);
	while (!stop) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char *nl;
		ssize_t got;

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: poll: %s\n", prog, strerror(errno));
			rc = EXIT_USAGE;
			break;
		}
		if (cap - len < 65536) {
			char *b = realloc(buf, cap + 65536);

			if (b == NULL) {
				fprintf(stderr, "%s: out of memory\n", prog);
				rc = EXIT_USAGE;
				break;
			}
			buf = b;
			cap += 65536;
		}
		got = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0) {
			fprintf(stderr, "%s: %s: the daemon closed the events stream%s%s\n", prog,
				op->socket, got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
			rc = EXIT_USAGE;
			break;
		}
		len += (size_t)got;
		nl = memrchr(buf, '\n', len);
		if (nl != NULL) {
			size_t whole = (size_t)(nl - buf) + 1;

			if (fwrite(buf, 1, whole, stdout) != whole || fflush(stdout) != 0)
				break; /* stdout closed: the reader is done */
			memmove(buf, buf + whole, len - whole);
			len -= whole;
		}
	}
	free(buf);
	close(fd);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts op = {.socket = getenv("SKYGATE_SOCKET"), .timeout_s = DEFAULT_TIMEOUT_S};
	int i = 1;

	if (op.socket == NULL || op.socket[0] == '\0')
		op.socket = DEFAULT_SOCKET;
	/* options end at the first word that is not one: command arguments may start with - */
	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("skygatectl %s\n", SKY_VERSION);
			return 0;
		} else if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0) {
			op.json = 1;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) {
			if (i + 1 >= argc)
				die_usage("%s needs a path", a);
			op.socket = argv[++i];
		} else if (strncmp(a, "--socket=", 9) == 0) {
			op.socket = a + 9;
		} else if (strcmp(a, "-t") == 0 || strcmp(a, "--timeout") == 0 ||
			   strncmp(a, "--timeout=", 10) == 0) {
			const char *eq = strchr(a, '=');
			const char *v = eq != NULL ? eq + 1 : NULL;

			if (v == NULL) {
				if (i + 1 >= argc)
					die_usage("%s needs a number of seconds", a);
				v = argv[++i];
			}
			if (parse_seconds(v, &op.timeout_s) != 0)
				die_usage("bad timeout '%s' (seconds, 0 = forever)", v);
		} else {
			die_usage("unknown option '%s'", a);
		}
		i++;
	}
	if (op.socket[0] == '\0')
		die_usage("empty socket path");
	if (i >= argc) {
		fprintf(stderr, "%s: no command given\n\n", prog);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "watch") == 0)
		return watch(&op, argc - i, argv + i);
	if (strcmp(argv[i], "events") == 0 && i + 1 < argc &&
	    (strcmp(argv[i + 1], "--follow") == 0 || strcmp(argv[i + 1], "-f") == 0 ||
	     strcmp(argv[i + 1], "follow") == 0))
		return events_follow(&op, argc - i, argv + i);
	absolute_paths(argc - i, argv + i);
	return run(stdout, stderr, &op, argc - i, argv + i);
}
