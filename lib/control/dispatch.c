/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Command registry and dispatcher. A command is a run of words ("map update"); a request's
 * argv goes to the command that matches the most leading words. Control path only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "ctl_priv.h"

struct extender {
	sky_ctl_extend_fn fn;
	void *arg;
};

struct command {
	char *name; /* "map update" */
	char *usage;
	char *help;
	int n_words;
	char **words; /* name split at spaces */
	unsigned int flags;
	sky_ctl_fn fn;
	void *arg;
	struct extender *ext;
	unsigned int n_ext;
	char *group; /* journal compaction rule (sky_ctl_journal_rule), or NULL */
	int nkey;
};

static struct command **cmds;
static unsigned int n_cmds;
static int builtins_done;

uint64_t sky_ctl_counters[SKY_CTL_C_MAX];

static int builtin_help(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			json_t **result);
static int builtin_compact(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			   json_t **result);
static int builtin_metrics(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			   json_t **result);

static void
command_free(struct command *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->usage);
	free(c->help);
	free(c->words);
	free(c->ext);
	free(c->group);
	free(c);
}

static struct command *
find_exact(const char *name)
{
	for (unsigned int i = 0; i < n_cmds; i++)
		if (strcmp(cmds[i]->name, name) == 0)
			return cmds[i];
	return NULL;
}

/* A name is words of printable non-space characters separated by single spaces. */
static int
name_valid(const char *name)
{
	const char *p;

	if (name == NULL || name[0] == '\0' || name[0] == ' ')
		return 0;
	for (p = name; *p != '\0'; p++) {
		if (*p == ' ' && (p[1] == ' ' || p[1] == '\0'))
			return 0;
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	}
	return 1;
}

static int
do_register(const char *cmd, const char *usage, const char *help, unsigned int flags, sky_ctl_fn fn,
	    void *arg)
{
	struct command *c, **n;
	char *p;
	int w;

	if (!name_valid(cmd) || fn == NULL)
		return -EINVAL;
	if (find_exact(cmd) != NULL)
		return -EEXIST;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->name = strdup(cmd);
	c->usage = strdup(usage != NULL ? usage : "");
	c->help = strdup(help != NULL ? help : "");
	if (c->name == NULL || c->usage == NULL || c->help == NULL)
		goto nomem;
	c->n_words = 1;
	for (p = c->name; *p != '\0'; p++)
		c->n_words += *p == ' ';
	/* words point into a second copy so name stays intact */
	c->words = malloc(sizeof(char *) * c->n_words + strlen(cmd) + 1);
	if (c->words == NULL)
		goto nomem;
	p = (char *)(c->words + c->n_words);
	strcpy(p, cmd);
	for (w = 0; w < c->n_words; w++) {
		c->words[w] = p;
		p = strchr(p, ' ');
		if (p != NULL)
			*p++ = '\0';
	}
	c->flags = flags;
	c->fn = fn;
	c->arg = arg;
	n = realloc(cmds, sizeof(*cmds) * (n_cmds + 1));
	if (n == NULL)
		goto nomem;
	cmds = n;
	cmds[n_cmds++] = c;
	return 0;
nomem:
	command_free(c);
	return -ENOMEM;
}

static int
ensure_builtins(void)
{
	int rc;

	if (builtins_done)
		return 0;
	builtins_done = 1;
	rc = do_register("help", "[COMMAND...]", "list commands (those starting with COMMAND)", 0,
			 builtin_help, NULL);
	if (rc == 0)
		rc = do_register("metrics", "", "Prometheus text exposition of every counter", 0,
				 builtin_metrics, NULL);
	if (rc == 0)
		rc = do_register("journal compact", "",
				 "rewrite the journal without changes that later ones superseded",
				 0, builtin_compact, NULL);
	if (rc == 0)
		rc = do_register("journal show", "[N]",
				 "the last N (default 20, 0 = all) changes replayed at restart", 0,
				 sky_ctl_journal_show, NULL);
	if (rc != 0)
		builtins_done = 0;
	sky_ctl_telemetry_register();
	return rc;
}

int
sky_ctl_register(const char *cmd, const char *usage, const char *help, unsigned int flags,
		 sky_ctl_fn fn, void *arg)
{
	int rc = ensure_builtins();

	if (rc != 0)
		return rc;
	return do_register(cmd, usage, help, flags, fn, arg);
}

void
sky_ctl_unregister_all(void)
{
	for (unsigned int i = 0; i < n_cmds; i++)
		command_free(cmds[i]);
	free(cmds);
	cmds = NULL;
	n_cmds = 0;
	builtins_done = 0;
}

int
sky_ctl_extend(const char *cmd, sky_ctl_extend_fn fn, void *arg)
{
	struct command *c;
	struct extender *e;
	int rc = ensure_builtins();

	if (rc != 0)
		return rc;
	if (fn == NULL || cmd == NULL)
		return -EINVAL;
	c = find_exact(cmd);
	if (c == NULL)
		return -ENOENT;
	e = realloc(c->ext, sizeof(*e) * (c->n_ext + 1));
	if (e == NULL)
		return -ENOMEM;
	c->ext = e;
	c->ext[c->n_ext].fn = fn;
	c->ext[c->n_ext].arg = arg;
	c->n_ext++;
	return 0;
}

int
sky_ctl_fail(struct sky_ctl_call *call, const char *fmt, ...)
{
	va_list ap;

	if (call == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(call->err, sizeof(call->err), fmt, ap);
	va_end(ap);
	return -1;
}

static void
journal_as_clear(struct sky_ctl_call *call)
{
	for (int i = 0; i < call->journal_argc; i++)
		free(call->journal_argv[i]);
	call->journal_argc = 0;
}

int
sky_ctl_journal_as(struct sky_ctl_call *call, int argc, const char *const *argv)
{
	if (call == NULL || argc <= 0 || argc > SKY_CTL_MAX_ARGS || argv == NULL)
		return -EINVAL;
	journal_as_clear(call);
	for (int i = 0; i < argc; i++) {
		if (argv[i] == NULL) {
			journal_as_clear(call);
			return -EINVAL;
		}
		call->journal_argv[i] = strdup(argv[i]);
		if (call->journal_argv[i] == NULL) {
			call->journal_argc = i;
			journal_as_clear(call);
			return -ENOMEM;
		}
		call->journal_argc = i + 1;
	}
	return 0;
}

/* Quote a word for messages when it is empty or has spaces or quotes. */
void
sky_ctl_join(char *buf, size_t len, int argc, char *const *argv)
{
	size_t off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (int i = 0; i < argc && off + 1 < len; i++) {
		const char *w = argv[i];
		int quote = w[0] == '\0' || strpbrk(w, " \t\n'\"") != NULL;
		int n = snprintf(buf + off, len - off, "%s%s%s%s", i > 0 ? " " : "",
				 quote ? "'" : "", w, quote ? "'" : "");

		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

static json_t *
reply_error(const char *msg)
{
	json_t *m = json_string(msg), *r;

	sky_ctl_counters[SKY_CTL_C_errors]++;
	if (m == NULL) {
		/* not UTF-8 (a handler echoed raw bytes, or truncation split a character) */
		char clean[1024];
		size_t i;

		for (i = 0; msg[i] != '\0' && i + 1 < sizeof(clean); i++)
			clean[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
		clean[i] = '\0';
		m = json_string(clean);
	}
	r = json_object();
	if (m == NULL || r == NULL || json_object_set_new(r, "ok", json_false()) != 0) {
		json_decref(m);
		json_decref(r);
		return NULL;
	}
	if (json_object_set_new(r, "error", m) != 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static json_t *reply_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *
reply_errorf(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply_error(msg);
}

/* Most leading words wins; ties cannot happen since names are unique. */
static struct command *
match(int argc, char **argv)
{
	struct command *best = NULL;

	for (unsigned int i = 0; i < n_cmds; i++) {
		struct command *c = cmds[i];
		int w;

		if (c->n_words > argc || (best != NULL && c->n_words <= best->n_words))
			continue;
		for (w = 0; w < c->n_words; w++)
			if (strcmp(c->words[w], argv[w]) != 0)
				break;
		if (w == c->n_words)
			best = c;
	}
	return best;
}

json_t *
sky_ctl_dispatch_argv(int argc, char **argv, uid_t uid, pid_t pid, int replay)
{
	struct sky_ctl_call call;
	struct command *c;
	json_t *result = NULL, *reply;
	char words[512];
	int rc;

	sky_ctl_counters[SKY_CTL_C_requests]++;
	if (ensure_builtins() != 0)
		return reply_error("out of memory");
	if (argc <= 0 || argv == NULL)
		return reply_error("empty argv: no command given (try 'help')");
	if (argc > SKY_CTL_MAX_ARGS)
		return reply_errorf("too many arguments: %d (at most %d)", argc, SKY_CTL_MAX_ARGS);
	for (int i = 0; i < argc; i++)
		if (argv[i] == NULL)
			return reply_errorf("argv[%d] is missing", i);
	c = match(argc, argv);
	if (c == NULL) {
		sky_ctl_join(words, sizeof(words), argc, argv);
		return reply_errorf("unknown command '%s' (try 'help')", words);
	}

	memset(&call, 0, sizeof(call));
	call.uid = uid;
	call.pid = pid;
	call.replay = replay;
	rc = c->fn(c->arg, argc - c->n_words, argv + c->n_words, &call, &result);
	if (rc != 0) {
		size_t n = strlen(c->name);

		json_decref(result);
		journal_as_clear(&call);
		if (call.err[0] == '\0')
			return reply_errorf("%s: failed%s%s", c->name, rc < -1 ? ": " : "",
					    rc < -1 ? strerror(-rc) : "");
		/* keep one "cmd: " prefix whether or not the handler wrote it */
		if (strncmp(call.err, c->name, n) == 0 && call.err[n] == ':')
			return reply_error(call.err);
		return reply_errorf("%s: %s", c->name, call.err);
	}
	if (result == NULL)
		result = json_object();
	if (result == NULL) {
		journal_as_clear(&call);
		return NULL;
	}
	if (json_is_object(result))
		for (unsigned int i = 0; i < c->n_ext; i++)
			c->ext[i].fn(c->ext[i].arg, argc - c->n_words, argv + c->n_words, result);

	if (c->flags & SKY_CTL_F_JOURNAL) {
		sky_ctl_join(words, sizeof(words), argc, argv);
		sky_audit(uid, "%s%s", replay ? "(replay) " : "", words);
		if (!replay && sky_ctl_journal_is_open()) {
			if (call.journal_argc > 0)
				rc = sky_ctl_journal_append(call.journal_argc, call.journal_argv,
							    uid);
			else
				rc = sky_ctl_journal_append(argc, argv, uid);
			if (rc < 0) {
				journal_as_clear(&call);
				json_decref(result);
				SKY_LOG(ERR, "journal append for '%s' failed: %s", words,
					strerror(-rc));
				return reply_errorf("%s: applied, but not journaled (%s): the "
						    "change is lost at restart",
						    c->name, strerror(-rc));
			}
		}
	}
	journal_as_clear(&call);
	reply = json_object();
	if (reply == NULL || json_object_set_new(reply, "ok", json_true()) != 0 ||
	    json_object_set_new(reply, "result", result) != 0) {
		json_decref(reply);
		return NULL;
	}
	return reply;
}

json_t *
sky_ctl_dispatch(const json_t *request, uid_t uid, pid_t pid)
{
	char *argv[SKY_CTL_MAX_ARGS];
	const json_t *a, *v;
	size_t n, i;

	if (!json_is_object(request)) {
		sky_ctl_counters[SKY_CTL_C_requests]++;
		sky_ctl_counters[SKY_CTL_C_bad_requests]++;
		return reply_error("request is not a JSON object (expected {\"argv\": [...]})");
	}
	a = json_object_get(request, "argv");
	if (a == NULL || !json_is_array(a)) {
		sky_ctl_counters[SKY_CTL_C_requests]++;
		sky_ctl_counters[SKY_CTL_C_bad_requests]++;
		return reply_error(a == NULL
					   ? "request has no \"argv\" (expected {\"argv\": [...]})"
					   : "\"argv\" is not an array of strings");
	}
	n = json_array_size(a);
	if (n == 0 || n > SKY_CTL_MAX_ARGS) {
		sky_ctl_counters[SKY_CTL_C_requests]++;
		sky_ctl_counters[SKY_CTL_C_bad_requests]++;
		if (n == 0)
			return reply_error("empty argv: no command given (try 'help')");
		return reply_errorf("too many arguments: %zu (at most %d)", n, SKY_CTL_MAX_ARGS);
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v)) {
			sky_ctl_counters[SKY_CTL_C_requests]++;
			sky_ctl_counters[SKY_CTL_C_bad_requests]++;
			return reply_errorf("argv[%zu] is not a string", i);
		}
		/* jansson strings may hold NUL only with JSON_ALLOW_NUL; refuse them anyway */
		if (strlen(json_string_value(v)) != json_string_length(v)) {
			sky_ctl_counters[SKY_CTL_C_requests]++;
			sky_ctl_counters[SKY_CTL_C_bad_requests]++;
			return reply_errorf("argv[%zu] contains a NUL character", i);
		}
		argv[i] = (char *)json_string_value(v);
	}
	return sky_ctl_dispatch_argv((int)n, argv, uid, pid, 0);
}

/* --- built-in commands --- */

static int
cmp_name(const void *a, const void *b)
{
	const struct command *x = *(const struct command *const *)a;
	const struct command *y = *(const struct command *const *)b;

	return strcmp(x->name, y->name);
}

static int
builtin_help(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct command **sorted;
	json_t *list;
	char prefix[512];

	sky_ctl_join(prefix, sizeof(prefix), argc, argv);
	sorted = malloc(sizeof(*sorted) * (n_cmds ? n_cmds : 1));
	list = json_array();
	if (sorted == NULL || list == NULL) {
		free(sorted);
		json_decref(list);
		return sky_ctl_fail(call, "out of memory");
	}
	memcpy(sorted, cmds, sizeof(*sorted) * n_cmds);
	qsort(sorted, n_cmds, sizeof(*sorted), cmp_name);
	for (unsigned int i = 0; i < n_cmds; i++) {
		const struct command *c = sorted[i];
		size_t pl = strlen(prefix);

		/* "help map" lists "map" and "map update", not "mapping" */
		if (argc > 0 && (strncmp(c->name, prefix, pl) != 0 ||
				 (c->name[pl] != '\0' && c->name[pl] != ' ')))
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "command", c->name,
						      "usage", c->usage, "help", c->help));
	}
	free(sorted);
	if (argc > 0 && json_array_size(list) == 0) {
		json_decref(list);
		return sky_ctl_fail(call, "no command starts with '%s'", prefix);
	}
	*result = list;
	return 0;
}

static int
builtin_metrics(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	size_t len;
	char *text;

	if (argc > 0)
		return sky_ctl_fail(call, "unexpected argument '%s' (usage: metrics)", argv[0]);
	text = sky_metrics_render(&len);
	if (text == NULL)
		return sky_ctl_fail(call, "cannot render metrics: out of memory");
	*result = json_object();
	if (*result == NULL || json_object_set_new(*result, "text", json_stringn(text, len)) != 0) {
		free(text);
		json_decref(*result);
		*result = NULL;
		return sky_ctl_fail(call, "cannot encode the metrics text (not UTF-8?)");
	}
	free(text);
	return 0;
}

int
sky_ctl_journal_rule(const char *cmd, const char *group, int nkey)
{
	struct command *c;
	char *g;

	if (cmd == NULL || group == NULL || group[0] == '\0' || nkey > SKY_CTL_MAX_ARGS)
		return -EINVAL;
	c = find_exact(cmd);
	if (c == NULL)
		return -ENOENT;
	g = strdup(group);
	if (g == NULL)
		return -ENOMEM;
	free(c->group);
	c->group = g;
	c->nkey = nkey < 0 ? -1 : nkey;
	return 0;
}

int
sky_ctl_have_rules(void)
{
	for (unsigned int i = 0; i < n_cmds; i++)
		if (cmds[i]->group != NULL)
			return 1;
	return 0;
}

int
sky_ctl_rule_of(int argc, char **argv, const char **group, int *nkey, int *n_words)
{
	struct command *c = argc > 0 ? match(argc, argv) : NULL;

	if (c == NULL || c->group == NULL)
		return -ENOENT;
	*group = c->group;
	*nkey = c->nkey;
	*n_words = c->n_words;
	return 0;
}

static int
builtin_compact(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	char err[512];
	long before = sky_ctl_journal_size();
	int n;

	if (argc > 0)
		return sky_ctl_fail(call, "unexpected argument '%s' (usage: journal compact)",
				    argv[0]);
	if (!sky_ctl_journal_is_open())
		return sky_ctl_fail(call, "no journal (the configuration sets no state.dir)");
	n = sky_ctl_journal_compact(err, sizeof(err));
	if (n < 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "journal compact: %d records dropped, %ld -> %ld bytes", n, before,
		  sky_ctl_journal_size());
	*result = json_pack("{s:i, s:I, s:I}", "dropped_records", n, "bytes_before",
			    (json_int_t)before, "bytes_after", (json_int_t)sky_ctl_journal_size());
	return 0;
}
