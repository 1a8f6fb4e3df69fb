/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The events stream: modules emit typed JSON events (sky_ctl_event) and control socket
 * clients that sent `events follow` receive them, one line each.
 *
 * Each subscription has its own bounded queue of encoded lines. An event that does not fit
 * is lost for that subscriber only (counted); from then on its events are dropped until the
 * queue has drained, and then the subscriber gets one {"type":"events_lost","count":N} line
 * before the stream resumes: the gap is marked exactly where it is. Emitting never blocks,
 * never waits for a client, and never grows a queue past its bound. The server moves queued
 * lines to a client's socket buffer as it takes them (sky_ctl_sub_pump).
 *
 * Control path only (main lcore).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "skygate/control.h"

#include "control_priv.h"

#define FILTER_MAX 8	  /* type=GLOB words in one `events follow` */
#define GLOB_MAX 128	  /* bytes of one glob */
#define EVENT_TYPE_MAX 64 /* bytes of an event type */

struct sky_ctl_sub {
	struct sky_ctl_sub *next;
	char *buf; /* queued lines: buf[off..len) */
	size_t off, len, cap;
	uint64_t lost; /* events dropped since the queue was last drained */
	unsigned int n_globs;
	char globs[FILTER_MAX][GLOB_MAX];
};

static struct sky_ctl_sub *subs;	/* live subscriptions */
static struct sky_ctl_sub *pending_sub; /* made by `events follow`, not yet claimed */
static uint64_t seq;

static int
type_ok(const char *type)
{
	size_t n = strlen(type);

	if (n == 0 || n > EVENT_TYPE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = type[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static int
sub_wants(const struct sky_ctl_sub *s, const char *type)
{
	if (s->n_globs == 0)
		return 1;
	for (unsigned int i = 0; i < s->n_globs; i++)
		if (fnmatch(s->globs[i], type, 0) == 0)
			return 1;
	return 0;
}

/* Queue one line (with its newline) for s, or count it lost. */
static void
sub_queue(struct sky_ctl_sub *s, const char *line, size_t len)
{
	if (s->lost > 0 || s->len - s->off + len > s->cap) {
		s->lost++;
		sky_ctl_events_counters[SKY_CTL_EV_lost]++;
		return;
	}
	if (s->len + len > s->cap) {
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
	memcpy(s->buf + s->len, line, len);
	s->len += len;
}

static void
rfc3339_now(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		base[0] = '\0';
	snprintf(out, outlen, "%s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

int
sky_ctl_event(const char *type, json_t *fields)
{
	const char *key;
	json_t *ev, *v;
	char when[48], *line;
	size_t len;

	if (type == NULL || !type_ok(type) || (fields != NULL && !json_is_object(fields))) {
		json_decref(fields);
		return -EINVAL;
	}
	if (subs == NULL) { /* nobody follows: numbered and counted, not encoded */
		seq++;
		sky_ctl_events_counters[SKY_CTL_EV_emitted]++;
		json_decref(fields);
		return 0;
	}
	rfc3339_now(when, sizeof(when));
	ev = json_object();
	if (ev == NULL || json_object_set_new(ev, "type", json_string(type)) != 0 ||
	    json_object_set_new(ev, "time", json_string(when)) != 0 ||
	    json_object_set_new(ev, "seq", json_integer((json_int_t)(seq + 1))) != 0) {
		json_decref(ev);
		json_decref(fields);
		return -ENOMEM;
	}
	if (fields != NULL) {
		json_object_foreach(fields, key, v)
		{
			/* the envelope is ours: a field cannot replace it */
			if (strcmp(key, "type") == 0 || strcmp(key, "time") == 0 ||
			    strcmp(key, "seq") == 0)
				continue;
			if (json_object_set(ev, key, v) != 0) {
				json_decref(ev);
				json_decref(fields);
				return -ENOMEM;
			}
		}
		json_decref(fields);
	}
	line = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (line == NULL)
		return -ENOMEM;
	seq++;
	sky_ctl_events_counters[SKY_CTL_EV_emitted]++;
	len = strlen(line);
	line[len] = '\n'; /* json_dumps left room for its NUL: the line's end */
	for (struct sky_ctl_sub *s = subs; s != NULL; s = s->next)
		if (sub_wants(s, type))
			sub_queue(s, line, len + 1);
	free(line);
	return 0;
}

uint64_t
sky_ctl_events_seq(void)
{
	return seq;
}

/* --- subscriptions --- */

struct sky_ctl_sub *
sky_ctl_sub_new(int argc, char **argv, size_t cap, char *err, size_t errlen)
{
	struct sky_ctl_sub *s;

	if (argc > FILTER_MAX) {
		snprintf(err, errlen, "at most %d filters (type=GLOB ...)", FILTER_MAX);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < argc; i++) {
		const char *g = argv[i];
		size_t gl;

		if (strncmp(g, "type=", 5) != 0) {
			snprintf(err, errlen,
				 "unknown filter '%.100s' (expected type=GLOB, e.g. type=quota.*)",
				 g);
			free(s);
			return NULL;
		}
		g += 5;
		gl = strlen(g);
		if (gl == 0 || gl >= GLOB_MAX) {
			snprintf(err, errlen, "filter type=%.100s: the glob must be 1..%d bytes", g,
				 GLOB_MAX - 1);
			free(s);
			return NULL;
		}
		memcpy(s->globs[s->n_globs++], g, gl + 1);
	}
	s->cap = cap;
	s->buf = malloc(cap);
	if (s->buf == NULL) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return NULL;
	}
	s->next = subs;
	subs = s;
	sky_ctl_events_subscribers++;
	return s;
}

void
sky_ctl_sub_free(struct sky_ctl_sub *s)
{
	struct sky_ctl_sub **p;

	if (s == NULL)
		return;
	for (p = &subs; *p != NULL; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			sky_ctl_events_subscribers--;
			break;
		}
	if (pending_sub == s)
		pending_sub = NULL;
	free(s->buf);
	free(s);
}

size_t
sky_ctl_sub_queued(const struct sky_ctl_sub *s)
{
	return s->len - s->off;
}

uint64_t
sky_ctl_sub_lost(const struct sky_ctl_sub *s)
{
	return s->lost;
}

size_t
sky_ctl_sub_pump(struct sky_ctl_sub *s, sky_ctl_sub_out_fn out, void *arg, size_t room)
{
	size_t moved = 0;

	while (s->off < s->len && room > 0) {
		const char *start = s->buf + s->off;
		const char *nl = memchr(start, '\n', s->len - s->off);
		size_t n = (size_t)(nl - start) + 1;

		/* whole lines only; one line larger than the room still goes when nothing else
		 * has (the room is a pacing hint, not a cut) */
		if (n > room && moved > 0)
			break;
		if (out(arg, start, n) != 0)
			return moved;
		s->off += n;
		moved += n;
		room = n >= room ? 0 : room - n;
		sky_ctl_events_counters[SKY_CTL_EV_delivered]++;
	}
	if (s->off == s->len) {
		s->off = s->len = 0;
		if (s->lost > 0 && room > 0) {
			char line[80];
			int n = snprintf(line, sizeof(line),
					 "{\"type\":\"events_lost\",\"count\":%llu}\n",
					 (unsigned long long)s->lost);

			if (out(arg, line, (size_t)n) == 0) {
				s->lost = 0;
				moved += (size_t)n;
			}
		}
	}
	return moved;
}

int
sky_ctl_sub_has_output(const struct sky_ctl_sub *s)
{
	return s->off < s->len || s->lost > 0;
}

/* `events follow [type=GLOB ...]`: validated here; the server makes the connection a
 * subscription when it claims the result (sky_ctl_events_claim). */
int
sky_ctl_events_follow_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			  json_t **result)
{
	struct sky_ctl_sub *s;
	json_t *f;
	char err[256];

	(void)arg;
	sky_ctl_events_drop_pending();
	s = sky_ctl_sub_new(argc, argv, SKY_CTL_EVENTS_QUEUE_MAX, err, sizeof(err));
	if (s == NULL)
		return sky_ctl_fail(call, "%s", err);
	f = json_array();
	for (unsigned int i = 0; f != NULL && i < s->n_globs; i++)
		json_array_append_new(f, json_string(s->globs[i]));
	*result = json_pack("{s:b, s:o, s:I, s:I}", "following", 1, "types", f ? f : json_array(),
			    "seq", (json_int_t)seq, "queue_bytes", (json_int_t)s->cap);
	pending_sub = s;
	return 0;
}

struct sky_ctl_sub *
sky_ctl_events_claim(void)
{
	struct sky_ctl_sub *s = pending_sub;

	pending_sub = NULL;
	return s;
}

void
sky_ctl_events_drop_pending(void)
{
	if (pending_sub != NULL)
		sky_ctl_sub_free(pending_sub);
	pending_sub = NULL;
}

/* `status` gains "events": the stream's counters. */
static void
events_status(void *arg, int argc, char **argv, json_t *result)
{
	(void)arg;
	(void)argc;
	(void)argv;
	json_object_set_new(
		result, "events",
		json_pack("{s:I, s:I, s:I, s:i, s:I}", "emitted",
			  (json_int_t)sky_ctl_events_counters[SKY_CTL_EV_emitted], "delivered",
			  (json_int_t)sky_ctl_events_counters[SKY_CTL_EV_delivered], "lost",
			  (json_int_t)sky_ctl_events_counters[SKY_CTL_EV_lost], "subscribers",
			  (int)sky_ctl_events_subscribers, "seq", (json_int_t)seq));
}

int
sky_ctl_events_extend_status(void)
{
	return sky_ctl_table_extend("status", events_status, NULL);
}
