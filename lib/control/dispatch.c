/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Registration (with the built-in commands) and dispatch: a request's argv runs the handler
 * of the command that matches it (registry.c); a state change validates, commits its record
 * to the journal (sky_ctl_commit, journal_ctl.c), then applies, and the dispatcher checks it
 * did so exactly once. At start the journal is replayed through the same dispatch, strictly:
 * a record that fails stops the start. Control path only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/control.h"
#include "skygate/journal.h"
#include "skygate/runtime.h"

#include "control_priv.h"

static int builtins_done;
static int recovering; /* `journal recovered` is being written by --recover */

/* Built-in `metrics`: the Prometheus text in a JSON reply. */
static int
metrics_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
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

static int
ensure_builtins(void)
{
	int rc;

	if (builtins_done)
		return 0;
	builtins_done = 1;
	rc = sky_ctl_table_add("help", "[COMMAND...]",
			       "list commands (those starting with COMMAND)", 0, sky_ctl_help_cmd,
			       NULL);
	if (rc == 0)
		rc = sky_ctl_table_add("metrics", "", "Prometheus text exposition of every counter",
				       0, metrics_cmd, NULL);
	if (rc == 0)
		rc = sky_ctl_table_add("journal compact", "",
				       "rewrite the journal as a snapshot of the live state", 0,
				       sky_ctl_journal_compact_cmd, NULL);
	if (rc == 0)
		rc = sky_ctl_table_add(
			"journal show", "[N]",
			"the last N (default 20, 0 = all) changes replayed at restart", 0,
			sky_ctl_journal_show_cmd, NULL);
	if (rc == 0)
		rc = sky_ctl_table_add("journal ack", "",
				       "acknowledge the recoveries `skygate --recover` made",
				       SKY_CTL_F_JOURNAL, sky_ctl_journal_ack_cmd, NULL);
	if (rc == 0)
		rc = sky_ctl_table_add("journal recovered", "ASIDE OFFSET RECORD WHY",
				       "(written by skygate --recover: a damaged part moved aside)",
				       SKY_CTL_F_JOURNAL, sky_ctl_journal_recovered_cmd,
				       &recovering);
	if (rc == 0)
		rc = sky_ctl_table_add(
			"state dump", "",
			"the whole live state, canonical (subscribers, plans, beams, "
			"classes, policy, maps, geo...)",
			0, sky_ctl_state_dump_cmd, NULL);
	if (rc == 0)
		rc = sky_ctl_table_add("events follow", "[type=GLOB...]",
				       "stay connected and receive events as JSON lines (e.g. "
				       "type=subscriber.* type=quota.*)",
				       0, sky_ctl_events_follow_cmd, NULL);
	if (rc == 0)
		rc = sky_ctl_journal_register_part();
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
	return sky_ctl_table_add(cmd, usage, help, flags, fn, arg);
}

int
sky_ctl_extend(const char *cmd, sky_ctl_extend_fn fn, void *arg)
{
	int rc = ensure_builtins();

	if (rc != 0)
		return rc;
	return sky_ctl_table_extend(cmd, fn, arg);
}

void
sky_ctl_unregister_all(void)
{
	sky_ctl_table_clear();
	sky_ctl_parts_clear();
	builtins_done = 0;
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
static json_t *bad_request(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *
reply_verrorf(const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return reply_error(msg);
}

static json_t *
reply_errorf(const char *fmt, ...)
{
	json_t *r;
	va_list ap;

	va_start(ap, fmt);
	r = reply_verrorf(fmt, ap);
	va_end(ap);
	return r;
}

/* A request that is not {"argv": [strings]}: counted as such, never dispatched. */
static json_t *
bad_request(const char *fmt, ...)
{
	json_t *r;
	va_list ap;

	sky_ctl_counters[SKY_CTL_C_requests]++;
	sky_ctl_counters[SKY_CTL_C_bad_requests]++;
	va_start(ap, fmt);
	r = reply_verrorf(fmt, ap);
	va_end(ap);
	return r;
}

/* The reply to a handler that failed: one "cmd: " prefix whether or not it wrote it. */
static json_t *
reply_failed(const struct sky_ctl_cmd *c, const struct sky_ctl_call *call, int rc)
{
	size_t n = strlen(c->name);

	if (call->err[0] == '\0')
		return reply_errorf("%s: failed%s%s", c->name, rc < -1 ? ": " : "",
				    rc < -1 ? strerror(-rc) : "");
	if (strncmp(call->err, c->name, n) == 0 && call->err[n] == ':')
		return reply_error(call->err);
	return reply_errorf("%s: %s", c->name, call->err);
}

/* The audit line of an applied state change. */
static void
audit_change(const struct sky_ctl_call *call, int argc, char **argv)
{
	char words[512];

	sky_ctl_join(words, sizeof(words), argc, argv);
	sky_audit(call->uid, "%s%s",
		  call->replay	     ? "(replay) "
		  : call->stored     ? "(stored in the cluster) "
		  : call->from_store ? "(from the cluster) "
				     : "",
		  words);
}

static json_t *
dispatch(int argc, char **argv, uid_t uid, pid_t pid, int replay, int from_store)
{
	struct sky_ctl_call call;
	const struct sky_ctl_cmd *c;
	json_t *result = NULL, *reply;
	char words[512];
	int rc;

	sky_ctl_counters[SKY_CTL_C_requests]++;
	sky_ctl_events_drop_pending(); /* a subscription made by the last request and unclaimed */
	if (ensure_builtins() != 0)
		return reply_error("out of memory");
	if (argc <= 0 || argv == NULL)
		return reply_error("empty argv: no command given (try 'help')");
	if (argc > SKY_CTL_MAX_ARGS)
		return reply_errorf("too many arguments: %d (at most %d)", argc, SKY_CTL_MAX_ARGS);
	for (int i = 0; i < argc; i++)
		if (argv[i] == NULL)
			return reply_errorf("argv[%d] is missing", i);
	c = sky_ctl_table_match(argc, argv);
	if (c == NULL) {
		sky_ctl_join(words, sizeof(words), argc, argv);
		return reply_errorf("unknown command '%s' (try 'help')", words);
	}

	memset(&call, 0, sizeof(call));
	call.uid = uid;
	call.pid = pid;
	call.replay = replay;
	call.from_store = from_store;
	call.argc = argc;
	call.argv = argv;
	call.journaled = (c->flags & SKY_CTL_F_JOURNAL) != 0;
	/* validate, commit (sky_ctl_commit in the handler), apply ... */
	rc = call.journaled ? sky_ctl_journal_precheck(&call) : 0;
	if (rc == 0)
		rc = c->fn(c->arg, argc - c->n_words, argv + c->n_words, &call, &result);
	/* ... and check the commit happened exactly when it had to, then mark it committed */
	if (call.journaled && sky_ctl_journal_after(&call, rc) != 0)
		rc = -1;
	sky_ctl_journal_as_clear(&call);
	if (call.stored) {
		/* validated, then stored in the cluster: it applies from there, here too */
		json_decref(result);
		result = call.store_result;
		audit_change(&call, argc, argv);
	} else if (rc != 0) {
		json_decref(result);
		return reply_failed(c, &call, rc);
	} else if (call.journaled) {
		audit_change(&call, argc, argv);
	}
	if (result == NULL)
		result = json_object();
	if (result == NULL)
		return NULL;
	if (json_is_object(result))
		for (unsigned int i = 0; i < c->n_ext; i++)
			c->ext[i].fn(c->ext[i].arg, argc - c->n_words, argv + c->n_words, result);
	reply = json_object();
	if (reply == NULL || json_object_set_new(reply, "ok", json_true()) != 0 ||
	    json_object_set_new(reply, "result", result) != 0) {
		json_decref(reply);
		return NULL;
	}
	return reply;
}

json_t *
sky_ctl_dispatch_argv(int argc, char **argv, uid_t uid, pid_t pid, int replay)
{
	return dispatch(argc, argv, uid, pid, replay, 0);
}

json_t *
sky_ctl_dispatch_store(int argc, char **argv)
{
	return dispatch(argc, argv, 0, 0, 0, 1);
}

json_t *
sky_ctl_dispatch(const json_t *request, uid_t uid, pid_t pid)
{
	char *argv[SKY_CTL_MAX_ARGS];
	const json_t *a, *v;
	size_t n, i;

	if (!json_is_object(request))
		return bad_request("request is not a JSON object (expected {\"argv\": [...]})");
	a = json_object_get(request, "argv");
	if (a == NULL)
		return bad_request("request has no \"argv\" (expected {\"argv\": [...]})");
	if (!json_is_array(a))
		return bad_request("\"argv\" is not an array of strings");
	n = json_array_size(a);
	if (n == 0)
		return bad_request("empty argv: no command given (try 'help')");
	if (n > SKY_CTL_MAX_ARGS)
		return bad_request("too many arguments: %zu (at most %d)", n, SKY_CTL_MAX_ARGS);
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v))
			return bad_request("argv[%zu] is not a string", i);
		/* jansson strings may hold NUL only with JSON_ALLOW_NUL; refuse them anyway */
		if (strlen(json_string_value(v)) != json_string_length(v))
			return bad_request("argv[%zu] contains a NUL character", i);
		argv[i] = (char *)json_string_value(v);
	}
	return sky_ctl_dispatch_argv((int)n, argv, uid, pid, 0);
}

/* --- replay --- */

struct replay {
	char why[1200]; /* why a record was refused */
	int n;		/* records replayed */
};

/* sky_journal_replay() callback: check the files a record names, run it again. */
static int
replay_record(void *ctx, const struct sky_journal_record *rec)
{
	struct replay *r = ctx;
	json_t *reply;

	if (sky_ctl_journal_check_files(rec->doc, r->why, sizeof(r->why)) != 0)
		return -EBADMSG;
	reply = sky_ctl_dispatch_argv(rec->argc, rec->argv, 0, 0, 1);
	if (!json_is_true(json_object_get(reply, "ok"))) {
		snprintf(r->why, sizeof(r->why), "%s",
			 reply ? json_string_value(json_object_get(reply, "error"))
			       : "out of memory");
		json_decref(reply);
		sky_ctl_counters[SKY_CTL_C_replay_failed]++;
		return -EINVAL;
	}
	json_decref(reply);
	r->n++;
	sky_ctl_counters[SKY_CTL_C_replayed]++;
	return 0;
}

/* --recover: record what was moved aside, through the journal like any change. */
static int
record_recovery(const char *aside, const struct sky_journal_scan *s, const char *why, char *err,
		size_t errlen)
{
	char off[24], rec[16];
	char *w[] = {"journal", "recovered", (char *)aside, off, rec, (char *)why};
	json_t *reply;
	int ok;

	snprintf(off, sizeof(off), "%zu", s->bad_offset);
	snprintf(rec, sizeof(rec), "%d", s->bad_record);
	recovering = 1;
	reply = sky_ctl_dispatch_argv(6, w, 0, 0, 0);
	recovering = 0;
	ok = json_is_true(json_object_get(reply, "ok"));
	if (!ok)
		snprintf(err, errlen, "journal: cannot record the recovery: %s",
			 reply ? json_string_value(json_object_get(reply, "error"))
			       : "out of memory");
	json_decref(reply);
	sky_ctl_counters[SKY_CTL_C_journal_recoveries]++;
	return ok ? 0 : -1;
}

static int
replay(int recover, char *err, size_t errlen)
{
	struct sky_journal *j = sky_ctl_journal();
	struct sky_journal_scan s;
	struct replay r = {0};
	char aside[4200], what[2600];
	int n;

	if (j == NULL) {
		snprintf(err, errlen, "journal: not open");
		return -1;
	}
	n = sky_journal_replay(j, recover ? SKY_JOURNAL_RECOVER : 0, replay_record, &r, &s, aside,
			       sizeof(aside), err, errlen);
	if (s.end == SKY_JOURNAL_STOPPED) {
		/* name the refused record and why, then the way out */
		snprintf(what, sizeof(what),
			 "journal %s: record #%d at byte %zu fails on replay: %s. skygate does not "
			 "start with a different rule set than it acknowledged: fix the cause, or "
			 "`skygate --recover` starts from the record before it (#%d) and moves "
			 "bytes %zu..%zu aside",
			 sky_journal_path(j), s.bad_record, s.bad_offset, r.why, s.records,
			 s.bad_offset, s.len);
		if (n < 0)
			snprintf(err, errlen, "%s", what);
	}
	if (n < 0)
		return -1;
	if (recover && (s.end == SKY_JOURNAL_DAMAGED || s.end == SKY_JOURNAL_STOPPED)) {
		const char *why = s.end == SKY_JOURNAL_STOPPED ? r.why : s.why;

		SKY_LOG(WARNING, "journal %s: --recover: started from record #%d; %s moved to %s",
			sky_journal_path(j), s.records,
			s.end == SKY_JOURNAL_STOPPED ? "the refused record and the rest"
						     : "the damaged part",
			aside[0] ? aside : "(nothing: the journal was short)");
		if (record_recovery(aside[0] ? aside : "-", &s, why, err, errlen) != 0)
			return -1;
	}
	return r.n;
}

int
sky_ctl_journal_replay(char *err, size_t errlen)
{
	return replay(0, err, errlen);
}

int
sky_ctl_journal_recover(char *err, size_t errlen)
{
	return replay(1, err, errlen);
}
