/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/control: registry and dispatch, journal (append, replay, torn and corrupt records),
 * the Unix socket server over real sockets, Prometheus metrics over real HTTP, and the
 * built skygatectl binary against a server in a child process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <jansson.h>
#include <rte_eal.h>
#include <rte_log.h>

#include "sky_build_config.h"
#include "skygate/control.h"
#include "skygate/journal.h"
#include "skygate/runtime.h"

#include "../../lib/control/control_priv.h"
#include "fixture.h"

static char tmpdir[64];

static void spill(const char *path, const char *buf, size_t len);

/* --- commands the tests register --- */

#define KV_MAX 16
static struct {
	char key[32];
	char value[64];
} kv[KV_MAX];
static int n_kv;
static char kv_log[64][100]; /* "a=1" per applied set, in order */
static int n_kv_log;
static int kv_replays; /* sets applied with call->replay == 1 */
static char loaded_path[256];
static int load_replay;

static json_t *
words_array(int argc, char **argv)
{
	json_t *a = json_array();

	for (int i = 0; i < argc; i++)
		json_array_append_new(a, json_string(argv[i]));
	return a;
}

static int
cmd_echo(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result = json_pack("{s:s, s:o, s:i}", "cmd", (const char *)arg, "args",
			    words_array(argc, argv), "replay", call->replay);
	return 0;
}

static int
cmd_fail(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result = json_object(); /* must be freed by the dispatcher */
	return sky_ctl_fail(call, "bad thing %s", argc > 0 ? argv[0] : "(none)");
}

static int
cmd_fail_prefixed(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return sky_ctl_fail(call, "prefixed: wrote its own prefix");
}

static int
cmd_silent(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return -1;
}

static int
cmd_errno(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return -EINVAL;
}

/* journaled commands: validate, commit, apply */
static int
cmd_echo_journaled(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	if (sky_ctl_commit(call) != 0)
		return -1;
	return cmd_echo(arg, argc, argv, call, result);
}

static int
cmd_kv_set(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	int i;

	if (argc != 2)
		return sky_ctl_fail(call, "expected KEY VALUE, got %d words", argc);
	if (strcmp(argv[1], "refuse") == 0)
		return sky_ctl_fail(call, "value 'refuse' refused");
	for (i = 0; i < n_kv; i++)
		if (strcmp(kv[i].key, argv[0]) == 0)
			break;
	if (i == n_kv && n_kv == KV_MAX)
		return sky_ctl_fail(call, "full");
	if (sky_ctl_commit(call) != 0)
		return -1;
	if (i == n_kv)
		n_kv++;
	snprintf(kv[i].key, sizeof(kv[i].key), "%s", argv[0]);
	snprintf(kv[i].value, sizeof(kv[i].value), "%s", argv[1]);
	if (n_kv_log < 64)
		snprintf(kv_log[n_kv_log++], sizeof(kv_log[0]), "%s=%s", argv[0], argv[1]);
	kv_replays += call->replay;
	return 0;
}

static int
cmd_kv_reset(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	if (sky_ctl_commit(call) != 0)
		return -1;
	n_kv = 0;
	if (n_kv_log < 64)
		snprintf(kv_log[n_kv_log++], sizeof(kv_log[0]), "reset");
	return 0;
}

/* Bugs the dispatcher catches: a failure after the commit, two commits, no commit. */
static int
cmd_kv_late(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	if (sky_ctl_commit(call) != 0)
		return -1;
	return sky_ctl_fail(call, "failed after commit");
}

static int
cmd_kv_twice(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	if (sky_ctl_commit(call) != 0 || sky_ctl_commit(call) != 0)
		return -1;
	return 0;
}

static int
cmd_kv_forgot(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return 0;
}

static int kv_snap_fail;
static char file_content[64];

/* the kv part of the state: its dump and its snapshot */
static int
kv_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	*part = json_object();
	for (int i = 0; i < n_kv; i++)
		json_object_set_new(*part, kv[i].key, json_string(kv[i].value));
	return 0;
}

static int
kv_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	const char *reset[] = {"kv", "reset"};

	if (kv_snap_fail) {
		snprintf(err, errlen, "snapshot refused");
		return -1;
	}
	if (sky_ctl_snapshot_add(snap, 2, reset) != 0)
		return -1;
	for (int i = 0; i < n_kv; i++) {
		const char *w[] = {"kv", "set", kv[i].key, kv[i].value};

		if (sky_ctl_snapshot_add(snap, 4, w) != 0)
			return -1;
	}
	return 0;
}

/* "file load PATH": copies PATH into the state dir and journals the copy */
static int
cmd_file_load(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	char copy[256], *text;
	const char *words[3] = {"file", "load", copy};
	size_t n;

	if (argc != 1)
		return sky_ctl_fail(call, "expected PATH");
	text = sky_fx_read_file(argv[0], &n);
	if (text == NULL)
		return sky_ctl_fail(call, "%s: cannot read", argv[0]);
	if (!call->replay && sky_ctl_state_dir() != NULL) {
		snprintf(copy, sizeof(copy), "%s/copied.obj", sky_ctl_state_dir());
		spill(copy, text, n);
		assert_int_equal(sky_ctl_journal_as(call, 3, words), 0);
	}
	if (sky_ctl_commit(call) != 0) {
		free(text);
		return -1;
	}
	snprintf(loaded_path, sizeof(loaded_path), "%s", argv[0]);
	snprintf(file_content, sizeof(file_content), "%s", text);
	free(text);
	load_replay = call->replay;
	*result = json_pack("{s:s}", "loaded", argv[0]);
	return 0;
}

static int
file_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	*part = json_string(file_content);
	return 0;
}

static int
file_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	char copy[256];
	const char *w[] = {"file", "load", copy};

	if (file_content[0] == '\0')
		return 0;
	snprintf(copy, sizeof(copy), "%s/copied.obj", sky_ctl_state_dir());
	return sky_ctl_snapshot_add(snap, 3, w);
}

static int
cmd_whoami(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result =
		json_pack("{s:I, s:I}", "uid", (json_int_t)call->uid, "pid", (json_int_t)call->pid);
	return 0;
}

static int
cmd_array(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result = json_pack("[{s:s, s:i}, {s:s, s:i, s:b}]", "name", "beam1", "rate", 1000000000,
			    "name", "b2", "rate", 5, "up", 1);
	return 0;
}

static int
cmd_obj(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result = json_pack("{s:s, s:i, s:{s:i, s:s}, s:[s, s]}", "name", "sat0", "count", 42,
			    "nested", "a", 1, "long_key", "v", "list", "x", "y");
	return 0;
}

static int
cmd_nested(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result = json_pack("[{s:s, s:i, s:{s:{s:i, s:i}, s:{s:i, s:i}}},"
			    " {s:s, s:i, s:{s:{s:i, s:i}, s:{s:i, s:i}}, s:[]}]",
			    "name", "sat0", "rx", 1, "classes", "rt", "p", 1, "b", 2, "bulk", "p",
			    3, "b", 4, "name", "net0", "rx", 22, "classes", "rt", "p", 5, "b", 6,
			    "bulk", "p", 7, "b", 8, "drops");
	return 0;
}

static int
cmd_idlast(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result = json_pack("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]", "rx", 1, "mode", "fast", "id",
			    "a", "rx", 22, "mode", "slow", "id", "bb");
	return 0;
}

static int
cmd_big(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	size_t n = 3u << 20;
	char *s = malloc(n + 1);

	memset(s, 'x', n);
	s[n] = '\0';
	*result = json_pack("{s:s%}", "blob", s, n);
	free(s);
	return 0;
}

static int
cmd_sleep(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	usleep(1500 * 1000);
	return 0;
}

static int ext_calls;

static void
ext_add(void *arg, int argc, char **argv, json_t *result)
{
	ext_calls++;
	json_object_set_new(result, (const char *)arg, json_integer(argc));
}

static void
metrics_test_writer(void *arg, FILE *out)
{
	fprintf(out,
		"# HELP skygate_test_things Things.\n# TYPE skygate_test_things gauge\n"
		"skygate_test_things %d\n",
		*(int *)arg);
}

static int metric_value = 7;

static const struct {
	const char *cmd, *usage;
	unsigned int flags;
	sky_ctl_fn fn;
	void *arg;
} test_cmds[] = {
	{"echo", "[WORDS...]", 0, cmd_echo, "echo"},
	{"map", "", 0, cmd_echo, "map"},
	{"map update", "NAME KEY VALUE", SKY_CTL_F_JOURNAL, cmd_echo_journaled, "map update"},
	{"map update all", "", 0, cmd_echo, "map update all"},
	{"fail", "X", 0, cmd_fail, NULL},
	{"prefixed", "", 0, cmd_fail_prefixed, NULL},
	{"silent", "", 0, cmd_silent, NULL},
	{"errno", "", 0, cmd_errno, NULL},
	{"kv set", "KEY VALUE", SKY_CTL_F_JOURNAL, cmd_kv_set, NULL},
	{"kv reset", "", SKY_CTL_F_JOURNAL, cmd_kv_reset, NULL},
	{"kv late", "X", SKY_CTL_F_JOURNAL, cmd_kv_late, NULL},
	{"kv twice", "", SKY_CTL_F_JOURNAL, cmd_kv_twice, NULL},
	{"kv forgot", "X", SKY_CTL_F_JOURNAL, cmd_kv_forgot, NULL},
	{"file load", "PATH", SKY_CTL_F_JOURNAL, cmd_file_load, NULL},
	{"whoami", "", 0, cmd_whoami, NULL},
	{"array", "", 0, cmd_array, NULL},
	{"obj", "", 0, cmd_obj, NULL},
	{"big", "", 0, cmd_big, NULL},
	{"nested", "", 0, cmd_nested, NULL},
	{"idlast", "", 0, cmd_idlast, NULL},
	{"sleep", "", 0, cmd_sleep, NULL},
};

static void
kv_reset(void)
{
	n_kv = 0;
	n_kv_log = 0;
	kv_replays = 0;
	loaded_path[0] = '\0';
	file_content[0] = '\0';
	load_replay = -1;
}

static int
setup(void **state)
{
	kv_reset();
	for (size_t i = 0; i < sizeof(test_cmds) / sizeof(test_cmds[0]); i++)
		assert_int_equal(sky_ctl_register(test_cmds[i].cmd, test_cmds[i].usage,
						  "test command", test_cmds[i].flags,
						  test_cmds[i].fn, test_cmds[i].arg),
				 0);
	assert_int_equal(sky_metrics_register("test", metrics_test_writer, &metric_value), 0);
	assert_int_equal(sky_ctl_state_register("kv", 20, kv_dump, kv_snap, NULL), 0);
	assert_int_equal(sky_ctl_state_register("file", 10, file_dump, file_snap, NULL), 0);
	return 0;
}

static int
teardown(void **state)
{
	sky_ctl_journal_close();
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_metrics_http_close();
	return 0;
}

/* --- helpers --- */

static json_t *
dispatch_str(const char *req)
{
	json_t *r = json_loads(req, 0, NULL), *reply;

	reply = sky_ctl_dispatch(r, 0, 0);
	json_decref(r);
	assert_non_null(reply);
	return reply;
}

static json_t *
dispatch_words(const char *line, int replay)
{
	char buf[1024], *argv[SKY_CTL_MAX_ARGS + 8], *save = NULL, *w;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (w = strtok_r(buf, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	return sky_ctl_dispatch_argv(argc, argv, 0, 0, replay);
}

static void
assert_ok(json_t *reply)
{
	if (!json_is_true(json_object_get(reply, "ok")))
		fail_msg("expected ok, got %s", json_string_value(json_object_get(reply, "error")));
}

/* dispatch line (not a replay); it must succeed; the reply is dropped */
static void
dispatch_ok(const char *line)
{
	json_t *reply = dispatch_words(line, 0);

	assert_ok(reply);
	json_decref(reply);
}

static void
assert_error(json_t *reply, const char *want)
{
	const char *e = json_string_value(json_object_get(reply, "error"));

	assert_true(json_is_false(json_object_get(reply, "ok")));
	assert_non_null(e);
	if (strstr(e, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", e, want);
	assert_null(json_object_get(reply, "result"));
}

static void
spill(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static void
rm_rf(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

/* Count state-dir files whose name starts with prefix (and delete them if asked). */
static int
count_files(const char *dir, const char *prefix, int del)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		n++;
		if (del) {
			char p[512];

			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	}
	closedir(d);
	return n;
}

/* Capture skygate's log (rte_log) into a memory buffer. */
static char *log_buf;
static size_t log_len;
static FILE *log_f;

static void
log_start(void)
{
	log_f = open_memstream(&log_buf, &log_len);
	assert_non_null(log_f);
	rte_openlog_stream(log_f);
}

static char *
log_stop(void)
{
	rte_openlog_stream(NULL);
	fclose(log_f);
	log_f = NULL;
	return log_buf; /* caller frees */
}

static unsigned long long
metric(const char *name)
{
	char *text = sky_metrics_render(NULL), *p, want[128];
	unsigned long long v = ~0ULL;

	assert_non_null(text);
	snprintf(want, sizeof(want), "\n%s ", name);
	p = strstr(text, want);
	if (p != NULL)
		v = strtoull(p + strlen(want), NULL, 10);
	free(text);
	if (v == ~0ULL)
		fail_msg("metric %s not rendered", name);
	return v;
}

/* --- registry and dispatch --- */

static void
test_bad_requests(void **state)
{
	static char many[4096];
	static const struct {
		const char *req;
		const char *error;
	} cases[] = {
		{"[1, 2]", "request is not a JSON object"},
		{"\"help\"", "request is not a JSON object"},
		{"42", "request is not a JSON object"},
		{"{}", "request has no \"argv\""},
		{"{\"args\": [\"help\"]}", "request has no \"argv\""},
		{"{\"argv\": \"help\"}", "\"argv\" is not an array"},
		{"{\"argv\": {\"0\": \"help\"}}", "\"argv\" is not an array"},
		{"{\"argv\": null}", "\"argv\" is not an array"},
		{"{\"argv\": []}", "empty argv"},
		{"{\"argv\": [1]}", "argv[0] is not a string"},
		{"{\"argv\": [\"help\", null]}", "argv[1] is not a string"},
		{"{\"argv\": [\"echo\", [\"x\"]]}", "argv[1] is not a string"},
		{"{\"argv\": [\"echo\", {}]}", "argv[1] is not a string"},
		{"{\"argv\": [\"foo\", \"bar\"]}", "unknown command 'foo bar' (try 'help')"},
		{"{\"argv\": [\"mapx\"]}", "unknown command 'mapx'"},
		{"{\"argv\": [\"\"]}", "unknown command ''''"},
		{"{\"argv\": [\"fail\", \"x\"]}", "fail: bad thing x"},
		{"{\"argv\": [\"prefixed\"]}", "prefixed: wrote its own prefix"},
		{"{\"argv\": [\"silent\"]}", "silent: failed"},
		{"{\"argv\": [\"errno\"]}", "errno: failed: Invalid argument"},
		{"{\"argv\": [\"kv\", \"set\", \"a\"]}", "kv set: expected KEY VALUE, got 1 words"},
		{"{\"argv\": [\"help\", \"nosuch\"]}", "no command starts with 'nosuch'"},
		{"{\"argv\": [\"metrics\", \"x\"]}", "unexpected argument 'x'"},
		{many, "too many arguments: 65 (at most 64)"},
	};
	size_t off;
	json_t *reply;

	off = (size_t)snprintf(many, sizeof(many), "{\"argv\": [\"echo\"");
	for (int i = 1; i < SKY_CTL_MAX_ARGS + 1; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, ", \"w%d\"", i);
	snprintf(many + off, sizeof(many) - off, "]}");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reply = dispatch_str(cases[i].req);
		assert_error(reply, cases[i].error);
		json_decref(reply);
	}
	/* a prefix must not be doubled */
	reply = dispatch_str("{\"argv\": [\"prefixed\"]}");
	assert_null(
		strstr(json_string_value(json_object_get(reply, "error")), "prefixed: prefixed"));
	json_decref(reply);
	/* NULL request, NULL argv */
	reply = sky_ctl_dispatch(NULL, 0, 0);
	assert_error(reply, "not a JSON object");
	json_decref(reply);
	reply = sky_ctl_dispatch_argv(0, NULL, 0, 0, 0);
	assert_error(reply, "empty argv");
	json_decref(reply);
	/* exactly SKY_CTL_MAX_ARGS words are fine */
	strcpy(strrchr(many, ','), "]}");
	reply = dispatch_str(many);
	assert_ok(reply);
	assert_int_equal(json_array_size(json_object_get(json_object_get(reply, "result"), "args")),
			 SKY_CTL_MAX_ARGS - 1);
	json_decref(reply);
}

static void
test_register(void **state)
{
	static const struct {
		const char *name;
		int rc;
	} cases[] = {
		{"", -EINVAL},		 {" lead", -EINVAL},
		{"trail ", -EINVAL},	 {"two  spaces", -EINVAL},
		{"ctl\nchar", -EINVAL},	 {"echo", -EEXIST},
		{"map update", -EEXIST}, {"help", -EEXIST},
		{"metrics", -EEXIST},	 {"new one", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(sky_ctl_register(cases[i].name, "", "", 0, cmd_echo, "x"),
				 cases[i].rc);
	assert_int_equal(sky_ctl_register(NULL, "", "", 0, cmd_echo, NULL), -EINVAL);
	assert_int_equal(sky_ctl_register("nofn", "", "", 0, NULL, NULL), -EINVAL);
	assert_int_equal(sky_ctl_extend("nosuch", ext_add, "k"), -ENOENT);
	assert_int_equal(sky_ctl_extend("map update al", ext_add, "k"), -ENOENT);
	assert_int_equal(sky_ctl_extend("echo", NULL, NULL), -EINVAL);
	assert_int_equal(sky_metrics_register("test", metrics_test_writer, NULL), -EEXIST);
	assert_int_equal(sky_metrics_register("", metrics_test_writer, NULL), -EINVAL);
	assert_int_equal(sky_metrics_register("x", NULL, NULL), -EINVAL);
}

static void
test_longest_prefix(void **state)
{
	static const struct {
		const char *line;
		const char *cmd;
		int n_args;
		const char *first_arg;
	} cases[] = {
		{"map", "map", 0, NULL},
		{"map show x", "map", 2, "show"},
		{"map upd", "map", 1, "upd"},
		{"map update", "map update", 0, NULL},
		{"map update a b c", "map update", 3, "a"},
		{"map update all", "map update all", 0, NULL},
		{"map update all x", "map update all", 1, "x"},
		{"map update alls", "map update", 1, "alls"},
		{"echo map update", "echo", 2, "map"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *reply = dispatch_words(cases[i].line, 0), *res, *args;

		assert_ok(reply);
		res = json_object_get(reply, "result");
		args = json_object_get(res, "args");
		assert_string_equal(json_string_value(json_object_get(res, "cmd")), cases[i].cmd);
		assert_int_equal(json_array_size(args), cases[i].n_args);
		if (cases[i].first_arg)
			assert_string_equal(json_string_value(json_array_get(args, 0)),
					    cases[i].first_arg);
		json_decref(reply);
	}
}

static void
test_extenders(void **state)
{
	json_t *reply, *res;

	ext_calls = 0;
	assert_int_equal(sky_ctl_extend("map", ext_add, "ext1"), 0);
	assert_int_equal(sky_ctl_extend("map", ext_add, "ext2"), 0);
	assert_int_equal(sky_ctl_extend("fail", ext_add, "never"), 0);
	assert_int_equal(sky_ctl_extend("array", ext_add, "never"), 0);

	/* failures and array results are not extended */
	reply = dispatch_words("fail x", 0);
	assert_error(reply, "bad thing x");
	json_decref(reply);
	reply = dispatch_words("array", 0);
	assert_ok(reply);
	assert_true(json_is_array(json_object_get(reply, "result")));
	json_decref(reply);
	assert_int_equal(ext_calls, 0);
	/* "map update" is another command: not extended by "map"'s extenders */
	reply = dispatch_words("map update a b c", 0);
	assert_null(json_object_get(json_object_get(reply, "result"), "ext1"));
	json_decref(reply);
	assert_int_equal(ext_calls, 0);

	reply = dispatch_words("map show x", 0);
	assert_ok(reply);
	res = json_object_get(reply, "result");
	assert_string_equal(json_string_value(json_object_get(res, "cmd")), "map");
	assert_int_equal(json_integer_value(json_object_get(res, "ext1")), 2);
	assert_int_equal(json_integer_value(json_object_get(res, "ext2")), 2);
	assert_int_equal(ext_calls, 2);
	json_decref(reply);
}

static void
test_help_and_metrics(void **state)
{
	json_t *reply, *list, *e;
	const char *prev = "";
	size_t i;
	int seen_help = 0, seen_kv = 0;
	const char *text;

	reply = dispatch_words("help", 0);
	assert_ok(reply);
	list = json_object_get(reply, "result");
	/* ours + help, metrics, journal show, compact, ack, recovered, state dump, events follow */
	assert_int_equal(json_array_size(list), sizeof(test_cmds) / sizeof(test_cmds[0]) + 8);
	json_array_foreach(list, i, e)
	{
		const char *c = json_string_value(json_object_get(e, "command"));

		assert_true(strcmp(prev, c) < 0); /* sorted */
		prev = c;
		seen_help += strcmp(c, "help") == 0;
		if (strcmp(c, "kv set") == 0) {
			seen_kv = 1;
			assert_string_equal(json_string_value(json_object_get(e, "usage")),
					    "KEY VALUE");
			assert_string_equal(json_string_value(json_object_get(e, "help")),
					    "test command");
		}
	}
	assert_true(seen_help && seen_kv);
	json_decref(reply);

	/* "help map" lists map and its sub-commands; "help map update" only those */
	{
		static const struct {
			const char *words;
			size_t n;
			int must_be_ok;
		} helps[] = {{"help kv", 5, 0}, {"help map", 3, 1}, {"help map update", 2, 0}};

		for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
			reply = dispatch_words(helps[i].words, 0);
			if (helps[i].must_be_ok)
				assert_ok(reply);
			assert_int_equal(json_array_size(json_object_get(reply, "result")),
					 helps[i].n);
			json_decref(reply);
		}
	}

	reply = dispatch_words("metrics", 0);
	assert_ok(reply);
	text = json_string_value(json_object_get(json_object_get(reply, "result"), "text"));
	assert_non_null(text);
	assert_non_null(strstr(text, "# TYPE skygate_test_things gauge\nskygate_test_things 7\n"));
	assert_non_null(strstr(text, "# TYPE skygate_control_requests_total counter\n"));
	assert_non_null(strstr(text, "skygate_control_clients 0\n"));
	json_decref(reply);
	metric_value = 9;
	assert_int_equal(metric("skygate_test_things"), 9);
	{
		unsigned long long req = metric("skygate_control_requests_total");
		unsigned long long err = metric("skygate_control_errors_total");

		json_decref(dispatch_words("nosuch", 0));
		json_decref(dispatch_words("echo", 0));
		assert_int_equal(metric("skygate_control_requests_total"), req + 2);
		assert_int_equal(metric("skygate_control_errors_total"), err + 1);
	}
}

static void
test_crc32(void **state)
{
	/* the standard check value, and chaining */
	assert_int_equal(sky_ctl_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(sky_ctl_crc32(sky_ctl_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
	assert_int_equal(sky_ctl_crc32(0, "", 0), 0);
}

/* --- journal --- */

static char state_dir[128];

static void
journal_fresh(void)
{
	char err[256];

	snprintf(state_dir, sizeof(state_dir), "%s/state/sub", tmpdir);
	rm_rf(state_dir);
	assert_int_equal(sky_ctl_journal_open(state_dir, err, sizeof(err)), 0);
	assert_string_equal(sky_ctl_state_dir(), state_dir);
	/* a new journal holds its header only */
	assert_true(sky_ctl_journal_size() > 0 && sky_ctl_journal_size() < 200);
}

/* Close, reopen and replay: the records replayed, or -1 with err (when asked for) filled. */
static int
journal_restart(int recover, char *err, size_t errlen)
{
	char e[4096];

	sky_ctl_journal_close();
	assert_null(sky_ctl_state_dir());
	assert_int_equal(sky_ctl_journal_open(state_dir, e, sizeof(e)), 0);
	kv_reset();
	return recover ? sky_ctl_journal_recover(err ? err : e, err ? errlen : sizeof(e))
		       : sky_ctl_journal_replay(err ? err : e, err ? errlen : sizeof(e));
}

static int
journal_reopen_replay(void)
{
	char err[4096];
	int n = journal_restart(0, err, sizeof(err));

	if (n < 0)
		fail_msg("replay refused: %s", err);
	return n;
}

static void
test_journal_errors(void **state)
{
	char err[256], path[256];

	assert_int_equal(sky_ctl_journal_replay(err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not open"));
	assert_true(sky_ctl_journal_open("", err, sizeof(err)) < 0);
	/* a file where the state directory should be */
	snprintf(path, sizeof(path), "%s/notadir", tmpdir);
	spill(path, "x", 1);
	assert_true(sky_ctl_journal_open(path, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
	/* a directory where the journal file should be */
	snprintf(path, sizeof(path), "%s/jdir", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/jdir/journal", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/jdir", tmpdir);
	assert_true(sky_ctl_journal_open(path, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "journal"));
	assert_null(sky_ctl_state_dir());
	/* without a journal, journaled commands still work (tests, --check) */
	json_t *reply = dispatch_words("kv set a 1", 0);

	assert_ok(reply);
	json_decref(reply);
	reply = dispatch_words("journal show", 0);
	assert_error(reply, "journal show: no journal");
	json_decref(reply);
	reply = dispatch_words("journal compact", 0);
	assert_error(reply, "journal compact: no journal");
	json_decref(reply);
}

/* --- the journal as a bare log: no command is registered, nothing is dispatched --- */

struct seen {
	char words[8][64]; /* "n:uid:[w1] [w2]" per record handed to the callback */
	int n;
	int stop_at; /* return -ECANCELED at this record (0: never) */
};

static int
log_cb(void *ctx, const struct sky_journal_record *rec)
{
	struct seen *s = ctx;
	char *w;
	size_t off;

	if (s->stop_at == rec->n)
		return -ECANCELED;
	assert_non_null(json_string_value(json_object_get(rec->doc, "time")));
	if (s->n == 8)
		return 0;
	w = s->words[s->n++];
	off = (size_t)snprintf(w, sizeof(s->words[0]), "%d:%d:", rec->n,
			       (int)json_integer_value(json_object_get(rec->doc, "uid")));
	for (int i = 0; i < rec->argc && off < sizeof(s->words[0]); i++)
		off += (size_t)snprintf(w + off, sizeof(s->words[0]) - off, "%s[%s]",
					i > 0 ? " " : "", rec->argv[i]);
	return 0;
}

/* Close j, reopen the journal in dir (it must open) and replay it into s (zeroed first) and
 * res; the replay's return. */
static int
reopen_replay(struct sky_journal **j, const char *dir, struct seen *s, struct sky_journal_scan *res)
{
	char err[1024], aside[512];

	sky_journal_close(*j);
	*j = sky_journal_open(dir, err, sizeof(err));
	assert_non_null(*j);
	memset(s, 0, sizeof(*s));
	return sky_journal_replay(*j, 0, log_cb, s, res, aside, sizeof(aside), err, sizeof(err));
}

static void
test_journal_log(void **state)
{
	static const char *const recs[][3] = {
		{"a", "1", NULL}, {"b", "two words", NULL}, {"c", NULL, NULL}, {"d", "4", "x"}};
	char err[1024], dir[160], aside[512], path[256];
	struct sky_journal_scan res;
	struct sky_journal *j;
	struct seen s;
	long size, hdr;
	json_t *extra;
	int i;

	/* failures first: no directory; a file where the directory should be */
	errno = 0;
	assert_null(sky_journal_open("", err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	snprintf(dir, sizeof(dir), "%s/log-notadir", tmpdir);
	spill(dir, "x", 1);
	assert_null(sky_journal_open(dir, err, sizeof(err)));
	assert_non_null(strstr(err, dir));

	snprintf(dir, sizeof(dir), "%s/log", tmpdir);
	rm_rf(dir);
	j = sky_journal_open(dir, err, sizeof(err));
	assert_non_null(j);
	assert_string_equal(sky_journal_dir(j), dir);
	hdr = sky_journal_size(j);
	assert_true(hdr > 0); /* the header */
	assert_false(sky_journal_is_broken(j));
	/* bad appends change nothing */
	assert_int_equal(sky_journal_append(j, 0, (char *const[]){"x"}, 0, NULL), -EINVAL);
	assert_int_equal(sky_journal_append(j, 65, (char *const[]){"x"}, 0, NULL), -EINVAL);
	assert_int_equal(sky_journal_append(j, 1, (char *const[]){"\xff"}, 0, NULL), -EINVAL);
	assert_int_equal(sky_journal_cut(j, hdr + 1), -EINVAL);
	assert_int_equal(sky_journal_size(j), hdr);
	extra = json_pack("{s:s, s:s}", "note", "kept", "argv", "not replaced");
	for (i = 0; i < 4; i++) {
		int n = recs[i][1] == NULL ? 1 : recs[i][2] == NULL ? 2 : 3;

		assert_int_equal(
			sky_journal_append(j, n, (char *const *)recs[i], 1000 + i + 1, extra), 0);
	}
	json_decref(extra);
	size = sky_journal_size(j);
	assert_true(size > hdr);

	/* a callback that stops the walk: the replay refuses, nothing is cut */
	memset(&s, 0, sizeof(s));
	s.stop_at = 3;
	assert_int_equal(
		sky_journal_replay(j, 0, log_cb, &s, &res, aside, sizeof(aside), err, sizeof(err)),
		-1);
	assert_int_equal(res.end, SKY_JOURNAL_STOPPED);
	assert_int_equal(res.bad_record, 3);
	assert_non_null(strstr(err, "record #3 at byte"));
	assert_non_null(strstr(err, "--recover"));
	assert_int_equal(s.n, 2);
	assert_int_equal(sky_journal_size(j), size);

	/* replay and foreach walk every record oldest first, words intact */
	memset(&s, 0, sizeof(s));
	assert_int_equal(
		sky_journal_replay(j, 0, log_cb, &s, &res, aside, sizeof(aside), err, sizeof(err)),
		4);
	assert_int_equal(res.end, SKY_JOURNAL_CLEAN);
	assert_int_equal(res.version, SKY_JOURNAL_VERSION);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.words[0], "1:1001:[a] [1]");
	assert_string_equal(s.words[1], "2:1002:[b] [two words]");
	assert_string_equal(s.words[2], "3:1003:[c]");
	assert_string_equal(s.words[3], "4:1004:[d] [4] [x]");
	memset(&s, 0, sizeof(s));
	assert_int_equal(sky_journal_foreach(j, log_cb, &s, err, sizeof(err)), 4);
	assert_int_equal(s.n, 4);

	/* cut takes the last record back */
	{
		long before = sky_journal_size(j);

		assert_int_equal(sky_journal_append(j, 1, (char *const[]){"undo"}, 0, NULL), 0);
		assert_true(sky_journal_size(j) > before);
		assert_int_equal(sky_journal_cut(j, before), 0);
		assert_int_equal(sky_journal_size(j), before);
	}

	/* a snapshot replaces the journal whole; an aborted one changes nothing */
	assert_int_equal(sky_journal_rewrite_begin(j, err, sizeof(err)), 0);
	assert_int_equal(sky_journal_rewrite_add(j, 1, (char *const[]){"never"}, 0, NULL), 0);
	sky_journal_rewrite_abort(j);
	assert_int_equal(sky_journal_size(j), size);
	snprintf(path, sizeof(path), "%s/journal.compact", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(sky_journal_rewrite_add(j, 1, (char *const[]){"x"}, 0, NULL), -EBADF);
	assert_int_equal(sky_journal_rewrite_begin(j, err, sizeof(err)), 0);
	assert_int_equal(sky_journal_rewrite_add(j, 2, (char *const *)recs[1], 7, NULL), 0);
	assert_int_equal(sky_journal_rewrite_add(j, 3, (char *const *)recs[3], 7, NULL), 0);
	assert_int_equal(sky_journal_rewrite_commit(j, err, sizeof(err)), 0);
	assert_true(sky_journal_size(j) < size);
	/* appends follow the new file; a reopened journal replays it */
	assert_int_equal(sky_journal_append(j, 1, (char *const[]){"e"}, 1005, NULL), 0);
	assert_int_equal(reopen_replay(&j, dir, &s, &res), 3);
	assert_string_equal(s.words[0], "1:7:[b] [two words]");
	assert_string_equal(s.words[1], "2:7:[d] [4] [x]");
	assert_string_equal(s.words[2], "3:1005:[e]");
	sky_journal_close(j);
	/* an append before any replay writes a tip of the journal's own generation */
	j = sky_journal_open(dir, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(sky_journal_append(j, 1, (char *const[]){"f"}, 1006, NULL), 0);
	assert_int_equal(reopen_replay(&j, dir, &s, &res), 4);
	assert_int_equal(res.end, SKY_JOURNAL_CLEAN);
	/* written but never marked (a crash before the change applied, or while it failed):
	 * not committed, dropped by the replay */
	assert_int_equal(sky_journal_write(j, 1, (char *const[]){"pending"}, 0, NULL), 0);
	assert_int_equal(reopen_replay(&j, dir, &s, &res), 4);
	assert_int_equal(res.end, SKY_JOURNAL_TORN);
	assert_non_null(strstr(res.why, "after the committed end"));
	/* marked, it counts */
	assert_int_equal(sky_journal_write(j, 1, (char *const[]){"marked"}, 0, NULL), 0);
	assert_int_equal(sky_journal_mark(j), 0);
	assert_int_equal(reopen_replay(&j, dir, &s, &res), 5);
	assert_string_equal(s.words[4], "5:0:[marked]");
	sky_journal_close(j);
}

/* A journal in memory: a header and three records (for the scan cases). */
static char *
scan_sample(size_t *len, size_t rec_off[4])
{
	char dir[160], err[256], path[200], *buf;
	struct sky_journal *j;

	snprintf(dir, sizeof(dir), "%s/scan", tmpdir);
	rm_rf(dir);
	j = sky_journal_open(dir, err, sizeof(err));
	assert_non_null(j);
	rec_off[0] = (size_t)sky_journal_size(j);
	assert_int_equal(sky_journal_append(j, 3, (char *const[]){"kv", "set", "a"}, 0, NULL), 0);
	rec_off[1] = (size_t)sky_journal_size(j);
	assert_int_equal(sky_journal_append(j, 3, (char *const[]){"kv", "set", "b"}, 0, NULL), 0);
	rec_off[2] = (size_t)sky_journal_size(j);
	assert_int_equal(sky_journal_append(j, 3, (char *const[]){"kv", "set", "c"}, 0, NULL), 0);
	rec_off[3] = (size_t)sky_journal_size(j);
	sky_journal_close(j);
	snprintf(path, sizeof(path), "%s/journal", dir);
	buf = sky_fx_read_file(path, len);
	assert_int_equal(*len, rec_off[3]);
	return buf;
}

/* What a scan finds in damaged bytes: failure cases first, then the good ones. */
static void
test_journal_scan(void **state)
{
	enum op { FLIP, ZERO, CUT, PUT, NONE };
	static const struct {
		const char *what;
		enum op op;
		int rec;  /* record (0 = the header) the change starts in, 4 = the end */
		int at;	  /* byte in it (negative: from its end) */
		int n;	  /* bytes (ZERO), or where the file ends (CUT, from rec/at) */
		long tip; /* -1 none, -2 the full length, -3 the full length + 10, -4 before the
			   * last record, -5 inside it */
		const char *put;
		enum sky_journal_end end;
		int bad_record, records;
		const char *why;
	} cases[] = {
		{"empty file", CUT, 0, 0, 0, -1, NULL, SKY_JOURNAL_DAMAGED, 0, 0, "empty file"},
		{"garbage", PUT, 0, 0, 0, -1, "hello\nworld\n", SKY_JOURNAL_DAMAGED, 0, 0,
		 "no journal header"},
		{"flipped header byte", FLIP, 0, 40, 0, -1, NULL, SKY_JOURNAL_DAMAGED, 0, 0,
		 "CRC mismatch"},
		{"flipped JSON byte mid-file", FLIP, 2, 30, 0, -2, NULL, SKY_JOURNAL_DAMAGED, 2, 1,
		 "CRC mismatch"},
		{"bad magic mid-file", FLIP, 2, 1, 0, -2, NULL, SKY_JOURNAL_DAMAGED, 2, 1,
		 "bad header"},
		{"bad length mid-file", PUT, 2, 5, 0, -2, "x", SKY_JOURNAL_DAMAGED, 2, 1,
		 "bad length"},
		{"missing newline mid-file", PUT, 2, -1, 0, -2, " ", SKY_JOURNAL_DAMAGED, 2, 1,
		 "not terminated"},
		{"zeroed block mid-file", ZERO, 1, 10, 80, -2, NULL, SKY_JOURNAL_DAMAGED, 1, 0, ""},
		{"flipped byte in the last record, tip past it", FLIP, 3, 40, 0, -2, NULL,
		 SKY_JOURNAL_DAMAGED, 3, 2, "CRC mismatch"},
		{"cut mid-record below the tip", CUT, 3, 20, 0, -2, NULL, SKY_JOURNAL_DAMAGED, 3, 2,
		 "runs past the end"},
		{"cut at a record boundary below the tip", CUT, 3, 0, 0, -2, NULL,
		 SKY_JOURNAL_DAMAGED, 3, 2, "committed records are missing"},
		{"tip past the end", NONE, 0, 0, 0, -3, NULL, SKY_JOURNAL_DAMAGED, 4, 3,
		 "committed records are missing"},
		{"a second header", PUT, 4, 0, 0, -1, "SKYJ 19 3d0d9a4b\n{\"skygate_journal\":2}\n",
		 SKY_JOURNAL_DAMAGED, 4, 3, ""},
		/* torn: a crash in the middle of an append, after the tip */
		{"torn last record (no tip)", CUT, 3, 20, 0, -1, NULL, SKY_JOURNAL_TORN, 3, 2,
		 "runs past the end"},
		{"torn header line (no tip)", CUT, 3, 7, 0, -1, NULL, SKY_JOURNAL_TORN, 3, 2,
		 "header not terminated"},
		{"zero-filled last record (no tip)", ZERO, 3, 30, 1000, -1, NULL, SKY_JOURNAL_TORN,
		 3, 2, ""},
		{"garbage appended after the tip", PUT, 4, 0, 0, -2, "xx", SKY_JOURNAL_TORN, 4, 3,
		 ""},
		{"an intact record after the tip (never applied)", NONE, 0, 0, 0, -4, NULL,
		 SKY_JOURNAL_TORN, 3, 2, "after the committed end"},
		{"the tip inside a record", NONE, 0, 0, 0, -5, NULL, SKY_JOURNAL_DAMAGED, 3, 2,
		 "points inside"},
		{"clean", NONE, 0, 0, 0, -2, NULL, SKY_JOURNAL_CLEAN, 0, 3, ""},
		{"clean without a tip", NONE, 0, 0, 0, -1, NULL, SKY_JOURNAL_CLEAN, 0, 3, ""},
	};
	size_t len, off[4], rec_end[5];
	char *full = scan_sample(&len, off);

	rec_end[0] = off[0];
	for (int r = 1; r <= 3; r++)
		rec_end[r] = off[r];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t start[5] = {0, off[0], off[1], off[2], len};
		size_t rlen = cases[i].rec < 4 ? rec_end[cases[i].rec] - start[cases[i].rec] : 0;
		size_t at = start[cases[i].rec] +
			    (cases[i].at >= 0 ? (size_t)cases[i].at : rlen + (size_t)cases[i].at);
		char *b = malloc(len + 256);
		size_t blen = len;
		static const int tip_rec[] = {0, 0, 0, 0, 3, 3}; /* -4, -5: at record 3 */
		long tip = cases[i].tip == -2	? (long)len
			   : cases[i].tip == -3 ? (long)len + 10
						: -1;

		if (cases[i].tip <= -4)
			tip = (long)off[tip_rec[-cases[i].tip] - 1] + (cases[i].tip == -5 ? 5 : 0);
		struct sky_journal_scan res;

		memcpy(b, full, len);
		switch (cases[i].op) {
		case FLIP:
			b[at] ^= 0x20;
			break;
		case ZERO:
			memset(b + at, 0,
			       at + (size_t)cases[i].n > len ? len - at : (size_t)cases[i].n);
			break;
		case CUT:
			blen = at;
			break;
		case PUT:
			if (cases[i].rec == 0 && cases[i].at == 0) {
				blen = strlen(cases[i].put);
				memcpy(b, cases[i].put, blen);
			} else if (at == len) {
				memcpy(b + len, cases[i].put, strlen(cases[i].put));
				blen = len + strlen(cases[i].put);
			} else {
				memcpy(b + at, cases[i].put, strlen(cases[i].put));
			}
			break;
		case NONE:
			break;
		}
		assert_int_equal(sky_journal_scan(b, blen, tip, NULL, NULL, &res), 0);
		if (res.end != cases[i].end || res.bad_record != cases[i].bad_record ||
		    res.records != cases[i].records || strstr(res.why, cases[i].why) == NULL)
			fail_msg("%s: end %d record #%d (%d intact) '%s'; want %d #%d (%d) '%s'",
				 cases[i].what, res.end, res.bad_record, res.records, res.why,
				 cases[i].end, cases[i].bad_record, cases[i].records, cases[i].why);
		if (res.end == SKY_JOURNAL_DAMAGED && cases[i].bad_record > 0 &&
		    cases[i].bad_record < 4)
			assert_true(res.bad_offset >= start[cases[i].bad_record]);
		free(b);
	}
	/* a version-1 journal (records, no header) is read as one */
	{
		struct sky_journal_scan res;
		size_t v1 = len - off[0];

		assert_int_equal(sky_journal_scan(full + off[0], v1, -1, NULL, NULL, &res), 0);
		assert_int_equal(res.end, SKY_JOURNAL_CLEAN);
		assert_int_equal(res.version, 1);
		assert_int_equal(res.records, 3);
	}
	/* every cut inside the last record, without a tip, is a torn last record */
	for (size_t cut = off[2] + 1; cut < len; cut++) {
		struct sky_journal_scan res;

		sky_journal_scan(full, cut, -1, NULL, NULL, &res);
		if (res.end != SKY_JOURNAL_TORN || res.records != 2)
			fail_msg("cut at %zu: end %d, %d records", cut, res.end, res.records);
	}
	free(full);
}

static void
test_journal_replay(void **state)
{
	static const char *const ops[] = {
		"kv set a 1",	    "echo not journaled",
		"kv set b 2",	    "kv set c refuse", /* fails */
		"map update m k v", "kv set a 3",
	};
	char *log, err[4096];
	long size;
	json_t *reply;
	struct stat st;

	journal_fresh();
	log_start();
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		json_decref(dispatch_words(ops[i], 0));
	log = log_stop();
	/* every applied change has an audit line with who and what */
	assert_non_null(strstr(log, "AUDIT "));
	assert_non_null(strstr(log, "uid=0 kv set a 1\n"));
	assert_non_null(strstr(log, "uid=0 map update m k v\n"));
	assert_null(strstr(log, "refuse"));
	assert_null(strstr(log, "echo"));
	free(log);
	assert_int_equal(n_kv_log, 3);
	size = sky_ctl_journal_size();
	assert_true(size > 0);
	assert_int_equal(stat(state_dir, &st), 0);

	/* journal show: what a restart would replay, last N */
	{
		static const struct {
			const char *line;
			const char *error;
			int n;
			const char *first;
		} cases[] = {
			{"journal show x", "expected a number", 0, NULL},
			{"journal show -1", "expected a number", 0, NULL},
			{"journal show 1 2", "usage: journal show [N]", 0, NULL},
			{"journal show", NULL, 4, "kv set a 1"},
			{"journal show 0", NULL, 4, "kv set a 1"},
			{"journal show 2", NULL, 2, "map update m k v"},
			{"journal show 9", NULL, 4, "kv set a 1"},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			json_t *res, *first;

			reply = dispatch_words(cases[i].line, 0);
			if (cases[i].error != NULL) {
				assert_error(reply, cases[i].error);
				json_decref(reply);
				continue;
			}
			assert_ok(reply);
			res = json_object_get(reply, "result");
			assert_int_equal(json_array_size(res), cases[i].n);
			first = json_array_get(res, 0);
			assert_string_equal(json_string_value(json_object_get(first, "command")),
					    cases[i].first);
			assert_int_equal(json_integer_value(json_object_get(first, "uid")), 0);
			assert_int_equal(json_integer_value(json_object_get(first, "n")),
					 5 - cases[i].n);
			assert_non_null(json_string_value(json_object_get(first, "time")));
			json_decref(reply);
		}
	}

	/* replay: same order, replay flag set, nothing re-journaled */
	assert_int_equal(journal_reopen_replay(), 4);
	assert_int_equal(n_kv_log, 3);
	assert_string_equal(kv_log[0], "a=1");
	assert_string_equal(kv_log[1], "b=2");
	assert_string_equal(kv_log[2], "a=3");
	assert_int_equal(kv_replays, 3);
	assert_int_equal(sky_ctl_journal_size(), size);
	assert_int_equal(count_files(state_dir, "journal.torn", 0), 0);

	/* a record whose command fails on replay stops the start, naming it */
	sky_ctl_unregister_all();
	assert_int_equal(sky_ctl_register("kv set", "", "", SKY_CTL_F_JOURNAL, cmd_kv_set, NULL),
			 0);
	assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "record #3 at byte"));
	assert_non_null(strstr(err, "unknown command 'map update m k v'"));
	assert_non_null(strstr(err, "--recover"));
	assert_non_null(strstr(err, state_dir));
	assert_int_equal(sky_ctl_journal_size(), size); /* nothing changed */

	/* --recover: starts from record #2, moves #3.. aside, notes it until acknowledged */
	assert_int_equal(journal_restart(1, err, sizeof(err)), 2);
	assert_int_equal(count_files(state_dir, "journal.damaged-", 0), 1);
	assert_int_equal(sky_ctl_journal_unacked(), 1);
	assert_int_equal(metric("skygate_control_journal_unacknowledged"), 1);
	reply = dispatch_words("state dump", 0);
	assert_ok(reply);
	assert_int_equal(
		json_array_size(json_object_get(json_object_get(reply, "result"), "journal")), 1);
	json_decref(reply);
	/* the note survives a restart, until `journal ack` */
	assert_int_equal(journal_reopen_replay(), 3);
	assert_int_equal(sky_ctl_journal_unacked(), 1);
	reply = dispatch_words("journal recovered x 1 2 why", 0);
	assert_error(reply, "written by skygate --recover only");
	json_decref(reply);
	dispatch_ok("journal ack");
	assert_int_equal(sky_ctl_journal_unacked(), 0);
	assert_int_equal(metric("skygate_control_journal_unacknowledged"), 0);
	reply = dispatch_words("journal ack", 0);
	assert_error(reply, "no recovery to acknowledge");
	json_decref(reply);
	assert_int_equal(journal_reopen_replay(), 4);
	assert_int_equal(sky_ctl_journal_unacked(), 0);

	/* appends continue after replay */
	dispatch_ok("kv set d 4");
	assert_int_equal(journal_reopen_replay(), 5);
	assert_string_equal(kv_log[2], "d=4");
}

/* Write-ahead: a change that cannot be made durable is refused and changes nothing. */
static void
test_journal_write_ahead(void **state)
{
	unsigned long long unc0 = metric("skygate_control_journal_uncommitted_total");
	unsigned long long undo0 = metric("skygate_control_journal_undone_total");
	struct rlimit old, lim;
	json_t *reply;
	long size;

	journal_fresh();
	dispatch_ok("kv set a 1");
	size = sky_ctl_journal_size();

	/* a full disk: the file may not grow (RLIMIT_FSIZE: EFBIG, like ENOSPC) */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	reply = dispatch_words("kv set a 2", 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_error(reply, "kv set: not journaled (");
	assert_error(reply, "the change is refused, nothing changed");
	json_decref(reply);
	assert_int_equal(n_kv, 1);
	assert_string_equal(kv[0].value, "1");
	assert_int_equal(sky_ctl_journal_size(), size);
	/* the disk has room again: changes go through */
	dispatch_ok("kv set a 3");

	/* a handler that fails after its commit: the record is taken back */
	size = sky_ctl_journal_size();
	reply = dispatch_words("kv late x", 0);
	assert_error(reply, "failed after commit");
	json_decref(reply);
	assert_int_equal(sky_ctl_journal_size(), size);
	assert_int_equal(metric("skygate_control_journal_undone_total"), undo0 + 1);
	/* a handler that commits twice: refused, its one record taken back */
	reply = dispatch_words("kv twice", 0);
	assert_error(reply, "committed twice");
	json_decref(reply);
	assert_int_equal(sky_ctl_journal_size(), size);
	/* a handler that forgot to commit: counted as a bug, journaled late */
	dispatch_ok("kv forgot y");
	assert_int_equal(metric("skygate_control_journal_uncommitted_total"), unc0 + 1);
	assert_true(sky_ctl_journal_size() > size);
	/* a commit outside a journaled command is refused */
	{
		struct sky_ctl_call call;

		memset(&call, 0, sizeof(call));
		assert_int_equal(sky_ctl_commit(&call), -1);
		assert_non_null(strstr(call.err, "not journaled"));
	}
	/* replayed: the commits are no-ops, nothing is appended */
	size = sky_ctl_journal_size();
	assert_int_equal(journal_reopen_replay(), 3);
	assert_int_equal(sky_ctl_journal_size(), size);
	assert_string_equal(kv[0].value, "3");
}

static void
test_journal_as(void **state)
{
	char want[512], src[256], copy[256], *text, err[4096];
	json_t *reply;
	FILE *f;

	journal_fresh();
	snprintf(src, sizeof(src), "%s/policy.bpf.o", tmpdir);
	spill(src, "object bytes", 12);
	snprintf(want, sizeof(want), "file load %s", src);
	dispatch_ok(want);
	assert_string_equal(loaded_path, src);
	assert_int_equal(load_replay, 0);
	/* journal_as on a failing call is dropped with it */
	reply = dispatch_words("file load", 0);
	assert_error(reply, "expected PATH");
	json_decref(reply);

	snprintf(want, sizeof(want), "%s/journal", state_dir);
	text = sky_fx_read_file(want, NULL);
	assert_non_null(text);
	snprintf(copy, sizeof(copy), "%s/copied.obj", state_dir);
	snprintf(want, sizeof(want), "\"argv\":[\"file\",\"load\",\"%s\"]", copy);
	assert_non_null(strstr(text, want));
	assert_null(strstr(text, src));
	/* the copy is named with its SHA-256 */
	assert_non_null(strstr(text, "\"sha256\":\""));
	free(text);

	assert_int_equal(journal_reopen_replay(), 1);
	assert_string_equal(loaded_path, copy);
	assert_int_equal(load_replay, 1);

	/* the copy changed or gone: the start is refused, naming it */
	f = fopen(copy, "r+");
	fputc('O', f);
	fclose(f);
	assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, copy));
	assert_non_null(strstr(err, "changed since it was journaled"));
	assert_non_null(strstr(err, "record #1"));
	unlink(copy);
	assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot be read"));

	/* bad journal_as arguments */
	{
		struct sky_ctl_call call;
		const char *w[1] = {NULL};

		memset(&call, 0, sizeof(call));
		assert_int_equal(sky_ctl_journal_as(&call, 0, w), -EINVAL);
		assert_int_equal(sky_ctl_journal_as(&call, 1, w), -EINVAL);
		assert_int_equal(sky_ctl_journal_as(&call, SKY_CTL_MAX_ARGS + 1, w), -EINVAL);
		assert_int_equal(call.journal_argc, 0);
	}
}

static const char *
show_command(json_t *reply, size_t i)
{
	return json_string_value(
		json_object_get(json_array_get(json_object_get(reply, "result"), i), "command"));
}

static char *
dump_text(void)
{
	json_t *reply = dispatch_words("state dump", 0);
	char *s;

	assert_ok(reply);
	s = json_dumps(json_object_get(reply, "result"), JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(reply);
	return s;
}

/* Compaction writes a snapshot of the live state, parts in order; it replays to the same. */
static void
test_journal_compact(void **state)
{
	char *before, *after, src[256], cmd[512], copy[256];
	unsigned long long comp0 = metric("skygate_control_journal_compactions_total");
	json_t *reply;
	long size;

	/* failures first */
	assert_int_equal(sky_ctl_state_register("", 1, kv_dump, kv_snap, NULL), -EINVAL);
	assert_int_equal(sky_ctl_state_register("kv", 1, NULL, kv_snap, NULL), -EINVAL);
	assert_int_equal(sky_ctl_state_register("kv", 1, kv_dump, NULL, NULL), -EINVAL);
	assert_int_equal(sky_ctl_state_register("kv", 1, kv_dump, kv_snap, NULL), -EEXIST);

	journal_fresh();
	snprintf(src, sizeof(src), "%s/obj.o", tmpdir);
	spill(src, "abc", 3);
	snprintf(cmd, sizeof(cmd), "file load %s", src);
	json_decref(dispatch_words(cmd, 0));
	json_decref(dispatch_words(cmd, 0));
	json_decref(dispatch_words("kv set a 1", 0));
	json_decref(dispatch_words("kv set b 2", 0));
	json_decref(dispatch_words("kv set a 3", 0));
	json_decref(dispatch_words("kv reset", 0));
	json_decref(dispatch_words("kv set d 5", 0));
	json_decref(dispatch_words("kv set e 6", 0));
	before = dump_text();
	size = sky_ctl_journal_size();

	/* a part that cannot write its snapshot: the journal is unchanged */
	kv_snap_fail = 1;
	reply = dispatch_words("journal compact", 0);
	kv_snap_fail = 0;
	assert_error(reply, "journal compact: kv: snapshot refused");
	json_decref(reply);
	assert_int_equal(sky_ctl_journal_size(), size);
	reply = dispatch_words("journal compact x", 0);
	assert_error(reply, "unexpected argument 'x'");
	json_decref(reply);

	reply = dispatch_words("journal compact", 0);
	assert_ok(reply);
	assert_int_equal(json_integer_value(
				 json_object_get(json_object_get(reply, "result"), "bytes_before")),
			 size);
	json_decref(reply);
	assert_true(sky_ctl_journal_size() < size);
	assert_int_equal(metric("skygate_control_journal_compactions_total"), comp0 + 1);
	assert_int_equal(count_files(state_dir, "journal.compact", 0), 0);
	/* the snapshot: parts in their order (file before kv), each value once */
	reply = dispatch_words("journal show 0", 0);
	assert_int_equal(json_array_size(json_object_get(reply, "result")), 4);
	snprintf(copy, sizeof(copy), "file load %s/copied.obj", state_dir);
	assert_string_equal(show_command(reply, 0), copy);
	assert_string_equal(show_command(reply, 1), "kv reset");
	assert_string_equal(show_command(reply, 2), "kv set d 5");
	assert_string_equal(show_command(reply, 3), "kv set e 6");
	json_decref(reply);
	/* a restart gives exactly the state before it */
	assert_int_equal(journal_reopen_replay(), 4);
	after = dump_text();
	assert_string_equal(before, after);
	free(after);
	/* appends go to the new file */
	json_decref(dispatch_words("kv set f 7", 0));
	assert_int_equal(journal_reopen_replay(), 5);
	assert_int_equal(n_kv, 3);
	free(before);
}

/* A journal that grows compacts itself as it passes 1 MiB. */
static void
test_journal_compact_on_growth(void **state)
{
	char err[256], dir[128], line[64];
	unsigned long long comp0 = metric("skygate_control_journal_compactions_total");
	long max_size = 0;
	FILE *devnull;
	int i;

	/* tmpfs when there is one: every append is fsync'd */
	snprintf(dir, sizeof(dir), "/dev/shm/skyctl-test-%d", (int)getpid());
	if (access("/dev/shm", W_OK) != 0)
		snprintf(dir, sizeof(dir), "%s/growth", tmpdir);
	rm_rf(dir);
	assert_int_equal(sky_ctl_journal_open(dir, err, sizeof(err)), 0);
	devnull = fopen("/dev/null", "w");
	rte_openlog_stream(devnull); /* 20000 audit lines */
	for (i = 0; i < 20000; i++) {
		snprintf(line, sizeof(line), "kv set key%d %d", i % 4, i);
		dispatch_ok(line);
		if (sky_ctl_journal_size() > max_size)
			max_size = sky_ctl_journal_size();
	}
	rte_openlog_stream(NULL);
	fclose(devnull);
	assert_true(metric("skygate_control_journal_compactions_total") > comp0);
	assert_true(max_size <= (1L << 20) + 200);
	/* the last value of each key survives */
	sky_ctl_journal_close();
	assert_int_equal(sky_ctl_journal_open(dir, err, sizeof(err)), 0);
	kv_reset();
	assert_true(sky_ctl_journal_replay(err, sizeof(err)) > 0);
	assert_int_equal(n_kv, 4);
	for (i = 0; i < 4; i++) {
		char want[16];

		snprintf(want, sizeof(want), "%d", 20000 - 4 + (kv[i].key[3] - '0'));
		assert_string_equal(kv[i].value, want);
	}
	sky_ctl_journal_close();
	rm_rf(dir);
}

/* Truncate the journal at every byte of its last record: repaired when past the tip. */
static void
test_journal_torn(void **state)
{
	char path[256], tip[256], *full, *tipbuf, *tipfull, *log, err[4096];
	size_t full_len, tip_len;
	long two;
	unsigned long long torn0 = metric("skygate_control_journal_torn_total");

	journal_fresh();
	json_decref(dispatch_words("kv set a 1", 0));
	json_decref(dispatch_words("kv set b 2", 0));
	two = sky_ctl_journal_size();
	snprintf(tip, sizeof(tip), "%s/journal.tip", state_dir);
	tipbuf = sky_fx_read_file(tip, &tip_len); /* the tip before the last append */
	json_decref(dispatch_words("kv set c 3", 0));
	snprintf(path, sizeof(path), "%s/journal", state_dir);
	full = sky_fx_read_file(path, &full_len);
	tipfull = sky_fx_read_file(tip, NULL);
	assert_int_equal((long)full_len, sky_ctl_journal_size());

	for (size_t cut = (size_t)two; cut < full_len; cut++) {
		sky_ctl_journal_close();
		spill(path, full, cut);
		spill(tip, tipbuf, tip_len); /* the crash came before the tip moved */
		log_start();
		assert_int_equal(journal_reopen_replay(), 2);
		log = log_stop();
		assert_string_equal(kv_log[1], "b=2");
		if (cut == (size_t)two) {
			/* a clean cut between records is no damage */
			assert_null(strstr(log, "torn"));
			assert_int_equal(count_files(state_dir, "journal.torn", 1), 0);
		} else {
			if (strstr(log, "torn last record #3") == NULL)
				fail_msg("cut at %zu: no warning in '%s'", cut, log);
			/* the torn bytes are saved aside and cut from the journal */
			assert_int_equal(count_files(state_dir, "journal.torn", 1), 1);
		}
		free(log);
		assert_int_equal(sky_ctl_journal_size(), two);
	}
	assert_int_equal(metric("skygate_control_journal_torn_total"),
			 torn0 + full_len - (size_t)two - 1);
	/* the same cut below the tip lost a committed record: refused */
	sky_ctl_journal_close();
	spill(path, full, full_len - 5);
	spill(tip, tipfull, tip_len);
	assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "record #3 at byte"));
	assert_non_null(strstr(err, "--recover"));
	/* a new append after a torn record is replayed later */
	spill(path, full, full_len - 5);
	spill(tip, tipbuf, tip_len);
	assert_int_equal(journal_reopen_replay(), 2);
	dispatch_ok("kv set d 4");
	assert_int_equal(journal_reopen_replay(), 3);
	assert_string_equal(kv_log[2], "d=4");
	free(full);
	free(tipbuf);
	free(tipfull);
}

/* The committed size journal.tip states. */
static long
tip_bytes(void)
{
	char path[256], *t;
	long n;

	snprintf(path, sizeof(path), "%s/journal.tip", state_dir);
	t = sky_fx_read_file(path, NULL);
	assert_non_null(t);
	assert_non_null(strrchr(t, ' '));
	n = strtol(strrchr(t, ' ') + 1, NULL, 10);
	free(t);
	return n;
}

/* Damage: the start is refused with the file, byte and record; --recover then works. */
static void
test_journal_corrupt(void **state)
{
	static const struct {
		const char *what;
		int at;	  /* byte offset from the second record's start, -1: the header */
		int zero; /* bytes zeroed instead of one flipped */
		const char *why;
		int recovered; /* records replayed by --recover */
	} cases[] = {
		{"flipped JSON byte", 30, 0, "CRC mismatch", 1},
		{"bad magic", 2, 0, "bad header", 1},
		{"zeroed block", 10, 64, "", 1},
		{"flipped header byte", -1, 0, "the header (byte 0)", 0},
	};
	char path[256], tip[256], *full, *tipbuf, err[4096];
	size_t full_len, tip_len, second;

	journal_fresh();
	second = (size_t)sky_ctl_journal_size();
	json_decref(dispatch_words("kv set a 1", 0));
	second = (size_t)sky_ctl_journal_size();
	json_decref(dispatch_words("kv set b 2", 0));
	json_decref(dispatch_words("kv set c 3", 0));
	snprintf(path, sizeof(path), "%s/journal", state_dir);
	snprintf(tip, sizeof(tip), "%s/journal.tip", state_dir);
	full = sky_fx_read_file(path, &full_len);
	tipbuf = sky_fx_read_file(tip, &tip_len);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *copy = malloc(full_len), want[300];
		size_t at = cases[i].at < 0 ? 40 : second + (size_t)cases[i].at;

		memcpy(copy, full, full_len);
		if (cases[i].zero)
			memset(copy + at, 0, (size_t)cases[i].zero);
		else
			copy[at] ^= 0x20;
		sky_ctl_journal_close();
		spill(path, copy, full_len);
		spill(tip, tipbuf, tip_len);
		count_files(state_dir, "journal.damaged-", 1);
		assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "journal %s/journal: ", state_dir);
		if (strstr(err, want) == NULL || strstr(err, cases[i].why) == NULL ||
		    strstr(err, "--recover") == NULL)
			fail_msg("%s: '%s'", cases[i].what, err);
		if (cases[i].at >= 0) {
			snprintf(want, sizeof(want), "record #2 at byte %zu", second);
			if (strstr(err, want) == NULL)
				fail_msg("%s: no '%s' in '%s'", cases[i].what, want, err);
		}
		/* nothing changed on disk */
		free(sky_fx_read_file(path, &at));
		assert_int_equal(at, full_len);
		assert_int_equal(journal_restart(1, err, sizeof(err)), cases[i].recovered);
		assert_int_equal(count_files(state_dir, "journal.damaged-", 0), 1);
		assert_int_equal(sky_ctl_journal_unacked(), 1);
		/* the tip follows the recovered journal (and the note appended to it) */
		assert_int_equal(tip_bytes(), sky_ctl_journal_size());
		/* the recovered journal starts clean, with the note */
		assert_int_equal(journal_reopen_replay(), cases[i].recovered + 1);
		assert_int_equal(sky_ctl_journal_unacked(), 1);
		free(copy);
	}
	/* garbage, and an empty file where a journal should be */
	sky_ctl_journal_close();
	spill(path, "hello\nworld\n", 12);
	assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no journal header"));
	sky_ctl_journal_close();
	spill(path, "", 0);
	assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty file"));
	assert_int_equal(journal_restart(1, err, sizeof(err)), 0);
	assert_int_equal(journal_reopen_replay(), 1); /* the note */
	/* a missing tip */
	sky_ctl_journal_close();
	unlink(tip);
	assert_int_equal(journal_restart(0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "journal.tip: missing"));
	free(full);
	free(tipbuf);
}

/* --- the socket server --- */

static int
client_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_true(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) <
		    (int)sizeof(sa.sun_path));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * Read reply lines while running the server: returns after want lines (or EOF), with the
 * lines in *out (malloc'd) and *eof set when the server closed the connection.
 */
static int
pump_lines(struct sky_ctl_server *s, int fd, int want, char **out, size_t *out_len, int *eof)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int lines = 0;

	*eof = 0;
	for (int round = 0; round < 2000 && lines < want && !*eof; round++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		assert_true(sky_ctl_server_poll(s, 5) >= 0);
		while (poll(&p, 1, 0) == 1) {
			ssize_t n;

			if (cap - len < 65536) {
				cap *= 2;
				buf = realloc(buf, cap);
			}
			n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
			if (n <= 0) {
				*eof = n == 0 || errno == ECONNRESET;
				break;
			}
			for (ssize_t k = 0; k < n; k++)
				lines += buf[len + k] == '\n';
			len += (size_t)n;
		}
	}
	buf[len] = '\0';
	*out = buf;
	if (out_len)
		*out_len = len;
	return lines;
}

static json_t *
line_json(const char *buf, int idx)
{
	const char *p = buf;

	for (int i = 0; i < idx; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	return json_loadb(p, (size_t)(strchr(p, '\n') - p), 0, NULL);
}

/* poll s (up to 10 rounds) until it has noticed every client close: then none is left */
static void
assert_no_clients(struct sky_ctl_server *s)
{
	for (int i = 0; i < 10 && sky_ctl_server_clients(s) > 0; i++)
		sky_ctl_server_poll(s, 5);
	assert_int_equal(sky_ctl_server_clients(s), 0);
}

/* pump s until fd has one reply line: that reply, parsed */
static json_t *
pump_reply(struct sky_ctl_server *s, int fd)
{
	char *out;
	json_t *r;
	int eof;

	assert_int_equal(pump_lines(s, fd, 1, &out, NULL, &eof), 1);
	r = line_json(out, 0);
	free(out);
	return r;
}

static void
test_server_open_errors(void **state)
{
	char err[256], path[256], big[200];
	struct sky_ctl_server *s, *s2;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_null(sky_ctl_server_open(big, 0660, err, sizeof(err)));
	assert_non_null(strstr(err, "longer than"));
	assert_null(sky_ctl_server_open("", 0660, err, sizeof(err)));

	/* a regular file in the way is not removed */
	snprintf(path, sizeof(path), "%s/notasock", tmpdir);
	spill(path, "x", 1);
	assert_null(sky_ctl_server_open(path, 0660, err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	/* a stale socket (nobody listening) is replaced */
	snprintf(path, sizeof(path), "%s/stale.sock", tmpdir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	assert_non_null(s);
	/* a live one is not */
	s2 = sky_ctl_server_open(path, 0600, err, sizeof(err));
	assert_null(s2);
	assert_non_null(strstr(err, "another process is listening"));
	sky_ctl_server_close(s);
	assert_int_equal(access(path, F_OK), -1);
	/* a parent that cannot be created */
	snprintf(path, sizeof(path), "%s/notasock/x.sock", tmpdir);
	assert_null(sky_ctl_server_open(path, 0660, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot create directory"));
}

static void
test_server_roundtrip(void **state)
{
	char err[256], path[256], *out;
	struct sky_ctl_server *s;
	struct stat st;
	json_t *r;
	int fd, eof;
	static const char two[] =
		"{\"argv\":[\"echo\",\"one\"]}\n\r\n  \n{\"argv\":[\"whoami\"]}\n";
	static const char split[] = "{\"argv\":[\"echo\",\"split\",\"\\u00e9\"]}\n";

	snprintf(path, sizeof(path), "%s/run/sub/ctl.sock", tmpdir);
	s = sky_ctl_server_open(path, 0660, err, sizeof(err));
	if (s == NULL)
		fail_msg("%s", err);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	/* nothing to do: poll times out */
	assert_int_equal(sky_ctl_server_poll(s, 1), 0);

	fd = client_connect(path);
	/* two requests (and blank lines) in one write */
	send_all(fd, two, sizeof(two) - 1);
	assert_int_equal(pump_lines(s, fd, 2, &out, NULL, &eof), 2);
	assert_int_equal(sky_ctl_server_clients(s), 1);
	r = line_json(out, 0);
	assert_ok(r);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(r, "result"), "args"), 0)),
			    "one");
	json_decref(r);
	r = line_json(out, 1);
	assert_ok(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "uid")),
			 getuid());
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "pid")),
			 getpid());
	json_decref(r);
	free(out);

	/* one request split across writes, byte by byte at its start */
	for (size_t i = 0; i < 5; i++) {
		send_all(fd, split + i, 1);
		assert_true(sky_ctl_server_poll(s, 1) >= 0);
	}
	send_all(fd, split + 5, 10);
	assert_true(sky_ctl_server_poll(s, 1) >= 0);
	send_all(fd, split + 15, sizeof(split) - 1 - 15);
	r = pump_reply(s, fd);
	assert_ok(r);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(r, "result"), "args"), 1)),
			    "\xc3\xa9");
	json_decref(r);

	/* bad JSON and bad shapes get error replies; the connection stays */
	{
		static const char bad[] = "{\"argv\":\n[1]\nnot json\n{\"argv\":[\"nosuch\"]}\n";

		send_all(fd, bad, sizeof(bad) - 1);
	}
	assert_int_equal(pump_lines(s, fd, 4, &out, NULL, &eof), 4);
	for (int i = 0; i < 3; i++) {
		r = line_json(out, i);
		assert_error(r, i == 1 ? "not a JSON object" : "bad JSON");
		json_decref(r);
	}
	r = line_json(out, 3);
	assert_error(r, "unknown command 'nosuch'");
	json_decref(r);
	free(out);

	/* a reply larger than the socket buffer goes out in pieces */
	{
		static const char req[] = "{\"argv\":[\"big\"]}\n{\"argv\":[\"echo\",\"after\"]}\n";

		send_all(fd, req, sizeof(req) - 1);
	}
	{
		size_t len;

		assert_int_equal(pump_lines(s, fd, 2, &out, &len, &eof), 2);
		assert_true(len > (3u << 20));
		r = line_json(out, 0);
		assert_ok(r);
		assert_int_equal(
			json_string_length(json_object_get(json_object_get(r, "result"), "blob")),
			3u << 20);
		json_decref(r);
		r = line_json(out, 1);
		assert_ok(r);
		json_decref(r);
		free(out);
	}
	close(fd);
	/* the server notices the close */
	assert_no_clients(s);

	/* a client that leaves mid-request */
	fd = client_connect(path);
	send_all(fd, "{\"argv\":[\"kv\",\"set\"", 19);
	assert_true(sky_ctl_server_poll(s, 5) >= 0);
	close(fd);
	assert_no_clients(s);
	assert_int_equal(n_kv_log, 0);

	/* several clients at once, answered independently */
	{
		int fds[5];

		for (int i = 0; i < 5; i++)
			fds[i] = client_connect(path);
		for (int i = 4; i >= 0; i--)
			send_all(fds[i], "{\"argv\":[\"help\"]}\n", 18);
		for (int i = 0; i < 5; i++) {
			r = pump_reply(s, fds[i]);
			assert_ok(r);
			json_decref(r);
			close(fds[i]);
		}
	}
	sky_ctl_server_close(s);
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_server_oversize(void **state)
{
	char err[256], path[256], *out, *chunk;
	struct sky_ctl_server *s;
	size_t sent = 0, total = (1u << 20) + 4096;
	json_t *r;
	int fd, eof = 0, lines;

	snprintf(path, sizeof(path), "%s/big.sock", tmpdir);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	assert_non_null(s);
	fd = client_connect(path);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	chunk = malloc(65536);
	memset(chunk, ' ', 65536);
	memcpy(chunk, "{\"argv\":[\"echo\",\"", 17);
	/* keep sending while the server reads, until it gives up on the request */
	while (sent < total) {
		ssize_t n =
			send(fd, chunk + (sent ? 17 : 0), 65536 - (sent ? 17 : 0), MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			sky_ctl_server_poll(s, 5);
			continue;
		}
		if (n < 0)
			break; /* the server closed: EPIPE/ECONNRESET */
		sent += (size_t)n;
		sky_ctl_server_poll(s, 0);
	}
	free(chunk);
	lines = pump_lines(s, fd, 1, &out, NULL, &eof);
	assert_int_equal(lines, 1);
	r = line_json(out, 0);
	assert_error(r, "request too large");
	json_decref(r);
	free(out);
	/* then the server closes the connection */
	if (!eof) {
		pump_lines(s, fd, 1, &out, NULL, &eof);
		free(out);
	}
	assert_true(eof);
	close(fd);
	assert_no_clients(s);
	sky_ctl_server_close(s);
}

/* Pipelined changes: all answered, journaled in order (each fsync'd before it applies). */
static void
test_server_group_commit(void **state)
{
	char err[256], path[256], *out, *req;
	struct sky_ctl_server *s;
	size_t off = 0;
	json_t *reply;
	int fd, eof, i;

	journal_fresh();
	snprintf(path, sizeof(path), "%s/commit.sock", tmpdir);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	assert_non_null(s);
	fd = client_connect(path);
	req = malloc(300 * 64);
	for (i = 0; i < 300; i++)
		off += (size_t)sprintf(req + off, "{\"argv\":[\"kv\",\"set\",\"k%d\",\"%s\"]}\n",
				       i % 10, i == 150 ? "refuse" : "v");
	send_all(fd, req, off);
	free(req);
	assert_int_equal(pump_lines(s, fd, 300, &out, NULL, &eof), 300);
	for (i = 0; i < 300; i++) {
		json_t *r = line_json(out, i);

		if (i == 150)
			assert_error(r, "refused");
		else
			assert_ok(r);
		json_decref(r);
	}
	free(out);
	close(fd);
	sky_ctl_server_close(s);
	reply = dispatch_words("journal show 0", 0);
	assert_int_equal(json_array_size(json_object_get(reply, "result")), 299);
	assert_string_equal(show_command(reply, 0), "kv set k0 v");
	assert_string_equal(show_command(reply, 298), "kv set k9 v");
	json_decref(reply);
	assert_int_equal(journal_reopen_replay(), 299);
	assert_int_equal(n_kv, 10);
}

/*
 * 64 clients at most (control.max_clients = 64 here); when they are all taken, root (this
 * test) is not refused: the longest-idle connection is closed, with a line saying why.
 * A client that does not read its replies stalls only itself.
 */
static void
test_server_limits(void **state)
{
	char err[256], path[256], *out;
	struct sky_ctl_server *s;
	struct sky_ctl_limits lim;
	unsigned long long refused0 = metric("skygate_control_clients_refused_total");
	unsigned long long evicted0 = metric("skygate_control_clients_evicted_total");
	int fds[65], slow, eof, i;
	json_t *r;

	snprintf(path, sizeof(path), "%s/limits.sock", tmpdir);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	assert_non_null(s);
	sky_ctl_limits_default(&lim);
	lim.max_clients = 64;
	assert_int_equal(sky_ctl_server_set_limits(s, &lim, err, sizeof(err)), 0);
	for (i = 0; i < 64; i++) {
		fds[i] = client_connect(path);
		assert_true(sky_ctl_server_poll(s, 5) >= 0);
	}
	assert_int_equal(sky_ctl_server_clients(s), 64);
	assert_int_equal(metric("skygate_control_clients"), 64);
	fds[64] = client_connect(path);
	send_all(fds[64], "{\"argv\":[\"echo\",\"in\"]}\n", 24);
	r = pump_reply(s, fds[64]);
	assert_ok(r);
	json_decref(r);
	/* the oldest idle connection made room, and was told */
	r = pump_reply(s, fds[0]);
	assert_error(r, "to make room for root");
	assert_string_equal(json_string_value(json_object_get(r, "limit")), "max_clients");
	json_decref(r);
	assert_int_equal(metric("skygate_control_clients_refused_total"), refused0);
	assert_int_equal(metric("skygate_control_clients_evicted_total"), evicted0 + 1);
	assert_int_equal(sky_ctl_server_clients(s), 64);
	for (i = 0; i < 65; i++)
		close(fds[i]);
	assert_no_clients(s);

	/* a slow reader: four 3 MiB replies queued, then another client is served at once */
	slow = client_connect(path);
	for (i = 0; i < 4; i++)
		send_all(slow, "{\"argv\":[\"big\"]}\n", 17);
	for (i = 0; i < 20; i++)
		assert_true(sky_ctl_server_poll(s, 1) >= 0);
	fds[0] = client_connect(path);
	send_all(fds[0], "{\"argv\":[\"echo\",\"quick\"]}\n", 27);
	r = pump_reply(s, fds[0]);
	assert_ok(r);
	json_decref(r);
	close(fds[0]);
	/* and the slow reader still gets every reply, whole and in order */
	{
		size_t len;

		assert_int_equal(pump_lines(s, slow, 4, &out, &len, &eof), 4);
		assert_int_equal(len, 4 * (strchr(out, '\n') - out + 1));
		for (i = 0; i < 4; i++) {
			r = line_json(out, i);
			assert_ok(r);
			json_decref(r);
		}
		free(out);
	}
	close(slow);
	sky_ctl_server_close(s);
}

/* --- metrics over HTTP --- */

static char *
http_get(const char *request)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char *buf = malloc(1 << 20);
	size_t len = 0;

	sa.sin_port = htons((uint16_t)sky_metrics_http_port());
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	send_all(fd, request, strlen(request));
	for (int round = 0; round < 1000; round++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		assert_true(sky_ctl_server_poll(NULL, 5) >= 0);
		if (poll(&p, 1, 0) != 1)
			continue;
		n = recv(fd, buf + len, (1 << 20) - 1 - len, MSG_DONTWAIT);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	sky_ctl_server_poll(NULL, 0);
	return buf;
}

static void
test_metrics_http(void **state)
{
	static const struct {
		const char *listen;
		const char *error;
	} bad[] = {
		{"nonsense", "expected ADDR:PORT"},  {"127.0.0.1:", "expected ADDR:PORT"},
		{"999.1.1.1:80", "999.1.1.1:80"},    {"127.0.0.1:http", "127.0.0.1:http"},
		{"[::1:80", "expected [IPV6]:PORT"},
	};
	static const struct {
		const char *request;
		const char *status;
		const char *body;
	} cases[] = {
		{"GET /nope HTTP/1.0\r\n\r\n", "HTTP/1.0 404 Not Found\r\n", "not found"},
		{"POST /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 405 ", "method not allowed"},
		{"garbage\r\n\r\n", "HTTP/1.0 400 ", "bad request"},
		{"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", "HTTP/1.0 200 OK\r\n",
		 "\nskygate_test_things 7\n"},
		{"GET /metrics?x=1 HTTP/1.0\n\n", "HTTP/1.0 200 OK\r\n", "skygate_test_things 7"},
		{"HEAD /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n", NULL},
	};
	char err[256];

	metric_value = 7;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(sky_metrics_http_open(bad[i].listen, err, sizeof(err)) < 0);
		if (strstr(err, bad[i].error) == NULL)
			fail_msg("%s: '%s' lacks '%s'", bad[i].listen, err, bad[i].error);
		assert_int_equal(sky_metrics_http_port(), -1);
	}
	assert_int_equal(sky_metrics_http_open("127.0.0.1:0", err, sizeof(err)), 0);
	assert_true(sky_metrics_http_port() > 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *resp = http_get(cases[i].request), *body;

		if (strncmp(resp, cases[i].status, strlen(cases[i].status)) != 0)
			fail_msg("%s: got '%.60s'", cases[i].request, resp);
		body = strstr(resp, "\r\n\r\n");
		assert_non_null(body);
		if (cases[i].body != NULL)
			assert_non_null(strstr(body, cases[i].body));
		else
			assert_string_equal(body, "\r\n\r\n");
		if (strstr(cases[i].status, "200") != NULL) {
			char cl[64];

			assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
			/* Content-Length matches the body rendered on the same request */
			snprintf(cl, sizeof(cl), "Content-Length: ");
			assert_non_null(strstr(resp, cl));
			if (cases[i].body != NULL)
				assert_int_equal(strtoul(strstr(resp, cl) + strlen(cl), NULL, 10),
						 strlen(body + 4));
		}
		free(resp);
	}
	assert_true(metric("skygate_control_http_requests_total") >= 6);
	sky_metrics_http_close();
	assert_int_equal(sky_metrics_http_port(), -1);
}

/* --- the skygatectl binary against a server in a child process --- */

static char ctl_bin[512];

static pid_t
server_child(const char *path)
{
	char err[256];
	pid_t pid;
	int p[2];

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sky_ctl_server *s = sky_ctl_server_open(path, 0660, err, sizeof(err));
		char c = s ? 'y' : 'n';

		close(p[0]);
		if (write(p[1], &c, 1) != 1 || s == NULL)
			_exit(3);
		close(p[1]);
		signal(SIGTERM, SIG_DFL);
		for (int i = 0; i < 60 * 20; i++) /* never more than a minute */
			sky_ctl_server_poll(s, 50);
		_exit(0);
	}
	close(p[1]);
	{
		char c = 0;

		assert_int_equal(read(p[0], &c, 1), 1);
		assert_int_equal(c, 'y');
	}
	close(p[0]);
	return pid;
}

struct run {
	int status;
	char *out;
	char *err;
};

static char *
read_fd_all(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2048)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	return buf;
}

/* > 0: run_ctl gives skygatectl a terminal of this many columns as stdout */
static int pty_cols;

/* Run skygatectl with args (NULL-terminated); kill_after_ms > 0 sends SIGINT then. */
static struct run
run_ctl(const char *env_socket, int kill_after_ms, const char *const *args)
{
	char outp[256], errp[256];
	struct run r;
	int fo, fe, st, master = -1;
	pid_t pid;

	snprintf(outp, sizeof(outp), "%s/ctl.out", tmpdir);
	snprintf(errp, sizeof(errp), "%s/ctl.err", tmpdir);
	fo = open(outp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fe = open(errp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (pty_cols > 0) {
		struct winsize ws = {.ws_row = 50, .ws_col = (unsigned short)pty_cols};
		struct termios t;
		int slave;

		master = posix_openpt(O_RDWR | O_NOCTTY);
		assert_true(master >= 0);
		assert_int_equal(grantpt(master), 0);
		assert_int_equal(unlockpt(master), 0);
		slave = open(ptsname(master), O_RDWR | O_NOCTTY);
		assert_true(slave >= 0);
		assert_int_equal(ioctl(slave, TIOCSWINSZ, &ws), 0);
		tcgetattr(slave, &t);
		t.c_oflag &= ~(tcflag_t)ONLCR; /* keep \n as is */
		tcsetattr(slave, TCSANOW, &t);
		dup2(slave, fo); /* the child's stdout below */
		close(slave);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *argv[32];
		int n = 0;

		argv[n++] = ctl_bin;
		for (; *args != NULL && n < 31; args++)
			argv[n++] = *args;
		argv[n] = NULL;
		dup2(fo, 1);
		dup2(fe, 2);
		if (chdir(tmpdir) != 0)
			_exit(126);
		if (env_socket)
			setenv("SKYGATE_SOCKET", env_socket, 1);
		else
			unsetenv("SKYGATE_SOCKET");
		execv(ctl_bin, (char *const *)argv);
		_exit(127);
	}
	if (kill_after_ms > 0) {
		usleep((useconds_t)kill_after_ms * 1000);
		kill(pid, SIGINT);
	}
	if (master >= 0) {
		/* drain the terminal while the child writes, so it never blocks */
		size_t len = 0;
		pid_t w = 0;

		close(fo);
		r.out = malloc(65536);
		for (;;) {
			struct pollfd p = {.fd = master, .events = POLLIN};
			ssize_t n;

			if (poll(&p, 1, 20) == 1) {
				n = read(master, r.out + len, 65535 - len);
				if (n > 0) {
					len += (size_t)n;
					continue;
				}
			}
			if (w == pid)
				break;
			w = waitpid(pid, &st, WNOHANG);
		}
		r.out[len] = '\0';
		close(master);
	} else {
		assert_int_equal(waitpid(pid, &st, 0), pid);
	}
	assert_true(WIFEXITED(st));
	r.status = WEXITSTATUS(st);
	if (master < 0) {
		r.out = read_fd_all(fo);
		close(fo);
	}
	r.err = read_fd_all(fe);
	close(fe);
	return r;
}

/* One skygatectl run and what it must give: exit status, stdout/stderr exactly (when not
 * NULL), what they must contain, and how stdout starts. */
struct ctl_case {
	const char *sock; /* $SKYGATE_SOCKET, or NULL */
	const char *args[8];
	int status;
	const char *out, *err;
	const char *out_has[2], *err_has[2];
	const char *out_starts;
};

static void
check_ctl_cases(const struct ctl_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct ctl_case *c = &cases[i];
		struct run r = run_ctl(c->sock, 0, c->args);

		assert_int_equal(r.status, c->status);
		if (c->out != NULL)
			assert_string_equal(r.out, c->out);
		if (c->err != NULL)
			assert_string_equal(r.err, c->err);
		if (c->out_starts != NULL)
			assert_memory_equal(r.out, c->out_starts, strlen(c->out_starts));
		for (size_t k = 0; k < 2; k++) {
			if (c->out_has[k] != NULL && strstr(r.out, c->out_has[k]) == NULL)
				fail_msg("case %zu: stdout '%s' lacks '%s'", i, r.out,
					 c->out_has[k]);
			if (c->err_has[k] != NULL && strstr(r.err, c->err_has[k]) == NULL)
				fail_msg("case %zu: stderr '%s' lacks '%s'", i, r.err,
					 c->err_has[k]);
		}
		free(r.out);
		free(r.err);
	}
}

static void
test_skygatectl(void **state)
{
	char path[256], missing[256];
	const char *root = getenv("SKY_BUILD_ROOT");
	pid_t srv;
	struct run r;
	int st;

	snprintf(ctl_bin, sizeof(ctl_bin), "%s/gateway/skygatectl", root ? root : SKY_BUILD_ROOT);
	if (access(ctl_bin, X_OK) != 0)
		fail_msg("%s not built (ninja gateway/skygatectl)", ctl_bin);
	snprintf(path, sizeof(path), "%s/ctl/skygate.sock", tmpdir);
	snprintf(missing, sizeof(missing), "%s/nothere/skygate.sock", tmpdir);
	srv = server_child(path);

	/* failure cases first: usage and connection errors exit 2; the daemon refuses: exit 1,
	 * its reason on stderr; a reply slower than --timeout */
	{
		const struct ctl_case cases[] = {
			{path, {"--bogus", "help"}, 2, .err_has = {"unknown option '--bogus'"}},
			{path, {"--socket"}, 2, .err_has = {"--socket needs a path"}},
			{path, {"--timeout", "soon", "help"}, 2, .err_has = {"bad timeout 'soon'"}},
			{path, {NULL}, 2, .err_has = {"no command given"}},
			{path, {"watch", "-n", "0", "help"}, 2, .err_has = {"bad interval '0'"}},
			{path, {"watch"}, 2, .err_has = {"watch: which command?"}},
			{NULL,
			 {"--socket", missing, "help"},
			 2,
			 .err_has = {missing, "No such file or directory"}},
			{path,
			 {"fail", "x"},
			 1,
			 .out = "",
			 .err = "skygatectl: fail: bad thing x\n"},
			{path,
			 {"--json", "no", "such"},
			 1,
			 .err_has = {"unknown command 'no such'"}},
			{path,
			 {"--timeout", "0.3", "sleep"},
			 2,
			 .err_has = {"no reply within 0.3 s"}},
		};

		check_ctl_cases(cases, sizeof(cases) / sizeof(cases[0]));
	}

	/* --json prints the result exactly; $SKYGATE_SOCKET is the default socket */
	r = run_ctl(path, 0, (const char *[]){"--json", "echo", "a", "-b", "c d", NULL});
	assert_int_equal(r.status, 0);
	{
		json_t *j = json_loads(r.out, 0, NULL),
		       *want = json_pack("{s:s, s:[s, s, s], s:i}", "cmd", "echo", "args", "a",
					 "-b", "c d", "replay", 0);

		assert_non_null(j);
		assert_true(json_equal(j, want));
		assert_non_null(strchr(r.out, '\n')); /* indented: several lines */
		json_decref(j);
		json_decref(want);
	}
	free(r.out);
	free(r.err);
	check_ctl_cases(&(const struct ctl_case){"/nonexistent.sock",
						 {"-s", path, "-j", "--timeout=5", "whoami"},
						 0,
						 .out_has = {"\"uid\": "}},
			1);

	/* relative paths of existing files are sent absolute; other words as they are */
	{
		char file[300], want[400];

		snprintf(file, sizeof(file), "%s/rel", tmpdir);
		mkdir(file, 0700);
		snprintf(file, sizeof(file), "%s/rel/subs.csv", tmpdir);
		spill(file, "x", 1);
		snprintf(file, sizeof(file), "%s/pol.o", tmpdir);
		spill(file, "x", 1);
		r = run_ctl(path, 0,
			    (const char *[]){"--json", "echo", "rel/subs.csv", "pol.o", "rel",
					     "rel/none.csv", "10.0.0.0/8", "f=pol.o", NULL});
		assert_int_equal(r.status, 0);
		snprintf(want, sizeof(want),
			 "\"args\": [\n    \"%s/rel/subs.csv\",\n    \"%s/pol.o\",\n    \"rel\",\n"
			 "    \"rel/none.csv\",\n    \"10.0.0.0/8\",\n    \"f=pol.o\"\n  ]",
			 tmpdir, tmpdir);
		if (strstr(r.out, want) == NULL)
			fail_msg("'%s' lacks '%s'", r.out, want);
		free(r.out);
		free(r.err);
	}

	/* people's output: aligned key/value lines, sections, tables, raw text */
	{
		static const struct {
			const char *cmd;
			const char *out;
		} cases[] = {
			{"obj", "name   sat0\n"
				"count  42\n"
				"\n"
				"nested:\n"
				"  a         1\n"
				"  long_key  v\n"
				"\n"
				"list   x, y\n"},
			{"nested", "NAME  RX  DROPS\n"
				   "sat0   1  -\n"
				   "net0  22  -\n"
				   "\n"
				   "sat0 classes:\n"
				   "  NAME  P  B\n"
				   "  rt    1  2\n"
				   "  bulk  3  4\n"
				   "\n"
				   "net0 classes:\n"
				   "  NAME  P  B\n"
				   "  rt    5  6\n"
				   "  bulk  7  8\n"},
			{"idlast", "ID  RX  MODE\n"
				   "a    1  fast\n"
				   "bb  22  slow\n"},
			{"array", "NAME         RATE  UP\n"
				  "beam1  1000000000  -\n"
				  "b2              5  true\n"},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			r = run_ctl(path, 0, (const char *[]){cases[i].cmd, NULL});
			assert_int_equal(r.status, 0);
			assert_string_equal(r.out, cases[i].out);
			free(r.out);
			free(r.err);
		}
	}
	/* a table wider than the terminal becomes one block per row */
	pty_cols = 11;
	r = run_ctl(path, 0, (const char *[]){"idlast", NULL});
	pty_cols = 0;
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "a:\n"
				   "  rx    1\n"
				   "  mode  fast\n"
				   "  id    a\n"
				   "\n"
				   "bb:\n"
				   "  rx    22\n"
				   "  mode  slow\n"
				   "  id    bb\n");
	free(r.out);
	free(r.err);
	pty_cols = 80;
	r = run_ctl(path, 0, (const char *[]){"idlast", NULL});
	pty_cols = 0;
	assert_string_equal(r.out, "ID  RX  MODE\na    1  fast\nbb  22  slow\n");
	free(r.out);
	free(r.err);

	/* metrics and help; --help and --version need no daemon */
	{
		const struct ctl_case cases[] = {
			{path,
			 {"metrics"},
			 0,
			 .out_starts = "# HELP ",
			 .out_has = {"\nskygate_test_things "}},
			{path,
			 {"help"},
			 0,
			 .out_has = {"  kv set KEY VALUE  ", "  help [COMMAND...]  "}},
			{missing, {"--help"}, 0, .out_has = {"usage: skygatectl", "watch"}},
			{missing, {"--version"}, 0, .out = "skygatectl " SKY_VERSION "\n"},
		};

		check_ctl_cases(cases, sizeof(cases) / sizeof(cases[0]));
	}

	/* watch redraws until Ctrl-C */
	r = run_ctl(path, 700, (const char *[]){"watch", "-n", "0.2", "echo", "hi", NULL});
	assert_int_equal(r.status, 0);
	{
		int frames = 0;

		for (char *p = r.out; (p = strstr(p, "\033[H\033[2J")) != NULL; p++)
			frames++;
		assert_true(frames >= 2);
		assert_non_null(strstr(r.out, "Every 0.2s: echo hi"));
		assert_non_null(strstr(r.out, "cmd     echo\n"));
	}
	free(r.out);
	free(r.err);

	kill(srv, SIGTERM);
	assert_int_equal(waitpid(srv, &st, 0), srv);
}

/* /skygate/control over DPDK's telemetry socket, as dpdk-telemetry.py reads it (last test:
 * it starts the EAL). */
static void
test_telemetry(void **state)
{
	char buf[16384];
	json_t *j, *d;
	ssize_t n;

	assert_int_equal(sky_fx_eal_start("test_control",
					  &(struct sky_fx_eal){.mem_mb = 64, .telemetry = 1}),
			 0);
	json_decref(dispatch_words("echo", 0));
	assert_int_equal(sky_ctl_event("t.x", NULL), 0);
	n = sky_fx_telemetry_query("/skygate/control", buf, sizeof(buf));
	assert_true(n > 0);
	j = json_loads(buf, 0, NULL);
	d = json_object_get(j, "/skygate/control");
	if (!json_is_object(d))
		fail_msg("telemetry reply: %s", buf);
	assert_int_equal(json_integer_value(json_object_get(d, "requests")),
			 metric("skygate_control_requests_total"));
	assert_non_null(json_object_get(d, "journal_records"));
	assert_non_null(json_object_get(d, "clients"));
	assert_true(json_integer_value(json_object_get(d, "events_emitted")) > 0);
	assert_int_equal(json_integer_value(json_object_get(d, "events_emitted")),
			 metric("skygate_events_emitted_total"));
	assert_non_null(json_object_get(d, "events_subscribers"));
	json_decref(j);
	sky_fx_eal_stop();
}

/* --- control socket limits: the pure decisions (server.c) --- */

static void
test_limits_check(void **state)
{
	static const struct {
		const char *field; /* what the error names; NULL = valid */
		struct sky_ctl_limits l;
	} cases[] = {
		{"max_clients", {1, 1, 0, 1000, 1000, 1000, 4096}},
		{"max_clients", {65537, 16, 16, 1000, 1000, 1000, 4096}},
		{"reserved_clients", {16, 4, 16, 1000, 1000, 1000, 4096}},
		{"clients_per_uid", {16, 0, 4, 1000, 1000, 1000, 4096}},
		{"clients_per_uid", {16, 17, 4, 1000, 1000, 1000, 4096}},
		{"idle_timeout", {16, 4, 4, 99, 1000, 1000, 4096}},
		{"request_timeout", {16, 4, 4, 1000, 86400001, 1000, 4096}},
		{"send_timeout", {16, 4, 4, 1000, 1000, 0, 4096}},
		{"request_max", {16, 4, 4, 1000, 1000, 1000, 1023}},
		{"request_max", {16, 4, 4, 1000, 1000, 1000, (64u << 20) + 1}},
		{NULL, {2, 1, 1, 100, 100, 100, 1024}},
		{NULL, {65536, 65536, 65535, 86400000, 86400000, 86400000, 64u << 20}},
	};
	struct sky_ctl_limits def;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = sky_ctl_limits_check(&cases[i].l, err, sizeof(err));

		if (cases[i].field == NULL) {
			if (rc != 0)
				fail_msg("case %zu: refused: %s", i, err);
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		if (strstr(err, cases[i].field) == NULL)
			fail_msg("case %zu: '%s' does not name %s", i, err, cases[i].field);
	}
	sky_ctl_limits_default(&def);
	assert_int_equal(sky_ctl_limits_check(&def, err, sizeof(err)), 0);
	assert_true(def.reserved > 0 && def.clients_per_uid < def.max_clients - def.reserved);
}

static void
test_limits_admit(void **state)
{
	/* 10 connections, 3 of them kept for root and the owner, 2 per other uid */
	static const struct sky_ctl_limits l = {10, 2, 3, 1000, 1000, 1000, 4096};
	static const struct {
		struct sky_ctl_census n;
		int priv, victim;
		enum sky_ctl_admit want;
	} cases[] = {
		/* refused: the uid's own bound, then the others' share, then all full */
		{{0, 0, 2}, 0, 0, SKY_CTL_REFUSE_UID},
		{{5, 5, 2}, 0, 1, SKY_CTL_REFUSE_UID},
		{{7, 7, 0}, 0, 0, SKY_CTL_REFUSE_FULL},
		{{10, 6, 1}, 0, 1, SKY_CTL_REFUSE_FULL}, /* root took more than its share */
		{{10, 0, 0}, 0, 1, SKY_CTL_REFUSE_FULL},
		{{10, 7, 10}, 1, 0, SKY_CTL_REFUSE_FULL}, /* root, full, nobody can go */
		/* admitted */
		{{0, 0, 0}, 0, 0, SKY_CTL_ADMIT},
		{{6, 6, 1}, 0, 0, SKY_CTL_ADMIT},
		{{7, 7, 0}, 1, 0, SKY_CTL_ADMIT}, /* the others' share is full: room kept */
		{{9, 7, 2}, 1, 0, SKY_CTL_ADMIT},
		{{9, 0, 9}, 1, 0, SKY_CTL_ADMIT}, /* root has no per-uid bound */
		{{10, 7, 3}, 1, 1, SKY_CTL_ADMIT_EVICT},
		{{12, 7, 3}, 1, 1, SKY_CTL_ADMIT_EVICT}, /* limits lowered under it */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sky_ctl_admit got =
			sky_ctl_admit(&l, &cases[i].n, cases[i].priv, cases[i].victim);

		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
	}
}

static void
test_limits_victim(void **state)
{
	enum { P = 1, O = 0 };
	static const struct sky_ctl_conn_view root_busy[] = {
		{P, SKY_CTL_CONN_BUSY, 1},
		{P, SKY_CTL_CONN_BUSY, 2},
	};
	static const struct {
		struct sky_ctl_conn_view v[4];
		unsigned int n;
		int want;
	} cases[] = {
		{{{0}}, 0, -1},
		/* other peers go before root's, whatever their state or age */
		{{{P, SKY_CTL_CONN_DONE, 1}, {O, SKY_CTL_CONN_BUSY, 9}}, 2, 1},
		/* answered, then idle, then busy */
		{{{O, SKY_CTL_CONN_BUSY, 1}, {O, SKY_CTL_CONN_IDLE, 5}, {O, SKY_CTL_CONN_DONE, 9}},
		 3,
		 2},
		{{{O, SKY_CTL_CONN_BUSY, 1}, {O, SKY_CTL_CONN_IDLE, 5}}, 2, 1},
		/* oldest first among equals */
		{{{O, SKY_CTL_CONN_IDLE, 7}, {O, SKY_CTL_CONN_IDLE, 3}, {O, SKY_CTL_CONN_IDLE, 5}},
		 3,
		 1},
		/* root's idle connections can go, root's busy ones never */
		{{{P, SKY_CTL_CONN_BUSY, 1}, {P, SKY_CTL_CONN_IDLE, 8}}, 2, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = sky_ctl_pick_victim(cases[i].v, cases[i].n);

		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
	}
	assert_int_equal(sky_ctl_pick_victim(root_busy, 2), -1);
}

static void
test_limits_expired(void **state)
{
	static const struct sky_ctl_limits l = {10, 2, 3, 5000, 2000, 3000, 4096};
	static const struct {
		struct sky_ctl_conn_times t;
		uint64_t now;
		enum sky_ctl_expiry want;
	} cases[] = {
		/* each bound, just past it */
		{{.last_ms = 1000}, 6001, SKY_CTL_EXP_IDLE},
		{{.last_ms = 1000, .req_start_ms = 1000}, 3001, SKY_CTL_EXP_REQUEST},
		/* a trickle keeps last_ms fresh, not the request's start */
		{{.last_ms = 3000, .req_start_ms = 1000}, 3001, SKY_CTL_EXP_REQUEST},
		{{.last_ms = 1000, .out_since_ms = 1000}, 4001, SKY_CTL_EXP_SEND},
		/* a pending reply is bound by the send timeout only */
		{{.last_ms = 1000, .req_start_ms = 1000, .out_since_ms = 3500},
		 6400,
		 SKY_CTL_EXP_NONE},
		/* at the bound, not past it */
		{{.last_ms = 1000}, 6000, SKY_CTL_EXP_NONE},
		{{.last_ms = 1000, .req_start_ms = 1000}, 3000, SKY_CTL_EXP_NONE},
		{{.last_ms = 1000, .out_since_ms = 1000}, 4000, SKY_CTL_EXP_NONE},
		/* a complete request waiting to run is not idle, nor late */
		{{.last_ms = 1000, .req_start_ms = 1000, .work = 1}, 9000, SKY_CTL_EXP_NONE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sky_ctl_expiry got = sky_ctl_expired(&l, &cases[i].t, cases[i].now);

		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
	}
}

/* A request arriving a byte at a time is cut at the request timeout, the reason sent. */
static void
test_server_request_timeout(void **state)
{
	char err[256], path[256];
	struct sky_ctl_server *s;
	struct sky_ctl_limits lim;
	unsigned long long t0 = metric("skygate_control_requests_timed_out_total");
	int fd, lines = 0;
	json_t *r;

	snprintf(path, sizeof(path), "%s/slow.sock", tmpdir);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	assert_non_null(s);
	sky_ctl_limits_default(&lim);
	lim.request_timeout_ms = 300;
	lim.idle_timeout_ms = 60000;
	assert_int_equal(sky_ctl_server_set_limits(s, &lim, err, sizeof(err)), 0);
	fd = client_connect(path);
	/* 8 bytes, 50 ms apart: 400 ms, past the bound */
	for (int i = 0; i < 8 && lines == 0; i++) {
		static const char slow[] = "{\"argv\":";
		struct pollfd p = {.fd = fd, .events = POLLIN};

		send_all(fd, &slow[i], 1);
		for (int k = 0; k < 10; k++)
			assert_true(sky_ctl_server_poll(s, 5) >= 0);
		lines = poll(&p, 1, 0);
	}
	r = pump_reply(s, fd);
	assert_error(r, "request timeout");
	assert_string_equal(json_string_value(json_object_get(r, "limit")), "request_timeout");
	json_decref(r);
	assert_int_equal(metric("skygate_control_requests_timed_out_total"), t0 + 1);
	close(fd);
	sky_ctl_server_close(s);
}

/* --- stopping: the cooperative check and the shutdown watchdog (lib/core/runtime.c) --- */

static int wd_pipe = -1;

static void
wd_expired(void *arg)
{
	ssize_t n = write(wd_pipe, arg, strlen(arg));

	(void)n;
}

/* Run body in a child; returns its exit status (-1: killed) and the ms it took. */
static int
in_child(void (*body)(void), int *took_ms)
{
	struct timespec t0, t1;
	int st;
	pid_t pid;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		body();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*took_ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
nap_ms(int ms)
{
	struct timespec d = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}

/* stuck in work without a check: the watchdog ends it with the daemon's status */
static void
child_stuck(void)
{
	sky_rt_exit_code = 7;
	if (sky_rt_watchdog_start(100, wd_expired, "expired") != 0)
		_exit(20);
	sky_rt_set_serving(1);
	sky_rt_request_stop(SIGTERM);
	nap_ms(3000);
	_exit(21); /* the watchdog did not fire */
}

/* shut down in time: the watchdog stands down, expire is never called */
static void
child_in_time(void)
{
	sky_rt_exit_code = 7;
	if (sky_rt_watchdog_start(300, wd_expired, "expired") != 0)
		_exit(20);
	sky_rt_request_stop(SIGINT);
	nap_ms(50);
	sky_rt_watchdog_stop();
	nap_ms(500);
	_exit(0);
}

/* a stop before the watchdog exists still starts its clock */
static void
child_stop_first(void)
{
	sky_rt_request_stop(SIGTERM);
	if (sky_rt_watchdog_start(100, wd_expired, "early") != 0)
		_exit(20);
	nap_ms(3000);
	_exit(21);
}

/* no stop at all: nothing happens, and the watchdog is joined at the end */
static void
child_no_stop(void)
{
	if (sky_rt_watchdog_start(100, wd_expired, "expired") != 0)
		_exit(20);
	nap_ms(300);
	sky_rt_watchdog_stop();
	_exit(0);
}

static void
test_stop_and_watchdog(void **state)
{
	static const struct {
		void (*body)(void);
		int status;	     /* exit status */
		const char *expired; /* what expire wrote, "" = not called */
		int min_ms, max_ms;
	} cases[] = {
		{child_stuck, 7, "expired", 100, 2000},
		{child_stop_first, 0, "early", 100, 2000},
		{child_in_time, 0, "", 550, 3000},
		{child_no_stop, 0, "", 300, 3000},
	};
	struct sky_runtime saved = sky_rt;
	int fds[2];

	/* the cooperative check: a stop cancels work only while the daemon serves */
	assert_int_equal(sky_should_stop(), 0);
	sky_rt_request_stop(SIGTERM);
	assert_int_equal(sky_rt.stop, 1);
	assert_int_equal(sky_rt.stop_signal, SIGTERM);
	assert_int_equal(sky_should_stop(), 0); /* start-up: replay is never cut short */
	sky_rt_set_serving(1);
	assert_int_equal(sky_should_stop(), 1); /* a stop that came first cancels from here */
	sky_rt_set_serving(0);
	assert_int_equal(sky_should_stop(), 0);
	sky_rt_set_serving(1);
	sky_rt_request_stop(SIGINT); /* a second request changes nothing */
	assert_int_equal(sky_rt.stop_signal, SIGTERM);
	assert_int_equal(sky_should_stop(), 1);
	/* SIGHUP: taken once */
	assert_int_equal(sky_rt_take_reload(), 0);
	sky_rt_request_reload();
	sky_rt_request_reload();
	assert_int_equal(sky_rt_take_reload(), 1);
	assert_int_equal(sky_rt_take_reload(), 0);
	sky_rt = saved;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[32] = "";
		int took, status;
		ssize_t n;

		assert_int_equal(pipe(fds), 0);
		wd_pipe = fds[1];
		status = in_child(cases[i].body, &took);
		close(fds[1]);
		n = read(fds[0], got, sizeof(got) - 1);
		got[n > 0 ? n : 0] = '\0';
		close(fds[0]);
		if (status != cases[i].status || strcmp(got, cases[i].expired) != 0 ||
		    took < cases[i].min_ms || took > cases[i].max_ms)
			fail_msg("case %zu: exit %d in %d ms, expire wrote '%s' (want %d in %d..%d "
				 "ms, '%s')",
				 i, status, took, got, cases[i].status, cases[i].min_ms,
				 cases[i].max_ms, cases[i].expired);
	}
}

/* A socket that listens (backlog 0, never accepting) or refuses every connection. */
static int
raw_listener(const char *path, int backlog)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

/* A server in a child process that emits two events (tick.n, other) every 50 ms, for a
 * minute at most. */
static pid_t
events_server_child(const char *path)
{
	char err[256];
	pid_t pid;
	int p[2];

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sky_ctl_server *s = sky_ctl_server_open(path, 0660, err, sizeof(err));
		char c = s ? 'y' : 'n';

		close(p[0]);
		if (write(p[1], &c, 1) != 1 || s == NULL)
			_exit(3);
		close(p[1]);
		signal(SIGTERM, SIG_DFL);
		for (int i = 0; i < 60 * 20; i++) {
			struct timespec t0, t;

			sky_ctl_event("tick.n", json_pack("{s:i}", "i", i));
			sky_ctl_event("other", NULL);
			clock_gettime(CLOCK_MONOTONIC, &t0);
			do { /* poll returns at once while a reply or events go out */
				sky_ctl_server_poll(s, 10);
				clock_gettime(CLOCK_MONOTONIC, &t);
			} while ((t.tv_sec - t0.tv_sec) * 1000 +
					 (t.tv_nsec - t0.tv_nsec) / 1000000 <
				 50);
		}
		_exit(0);
	}
	close(p[1]);
	{
		char c = 0;

		assert_int_equal(read(p[0], &c, 1), 1);
		assert_int_equal(c, 'y');
	}
	close(p[0]);
	return pid;
}

/* skygatectl events --follow: refusals first; the lines as they come, filtered, until SIGINT
 * (status 0); a reader that goes away (SIGPIPE) ends it with status 0 too */
static void
test_skygatectl_events(void **state)
{
	char path[256];
	const char *root = getenv("SKY_BUILD_ROOT");
	pid_t srv;
	struct run r;
	int st;

	snprintf(ctl_bin, sizeof(ctl_bin), "%s/gateway/skygatectl", root ? root : SKY_BUILD_ROOT);
	snprintf(path, sizeof(path), "%s/ev/skygate.sock", tmpdir);
	srv = events_server_child(path);

	r = run_ctl(path, 0, (const char *[]){"events", "--follow", "kind=x", NULL});
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "unknown filter 'kind=x' (expected type=GLOB"));
	free(r.out);
	free(r.err);
	r = run_ctl(path, 0, (const char *[]){"events", "--follow", "-q", NULL});
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "events: unknown option '-q'"));
	free(r.out);
	free(r.err);

	r = run_ctl(path, 700, (const char *[]){"events", "--follow", "type=tick.*", NULL});
	if (r.status != 0)
		fail_msg("status %d: %s", r.status, r.err);
	{
		long long prev_i = -1, prev_seq = -1;
		int lines = 0;

		for (char *l = r.out, *nl; (nl = strchr(l, '\n')) != NULL; l = nl + 1) {
			json_t *e = json_loadb(l, (size_t)(nl - l), 0, NULL);

			assert_non_null(e);
			assert_string_equal(json_string_value(json_object_get(e, "type")),
					    "tick.n");
			/* every tick, in order; other events filtered out (seq jumps by 2) */
			if (prev_i >= 0) {
				assert_int_equal(json_integer_value(json_object_get(e, "i")),
						 prev_i + 1);
				assert_int_equal(json_integer_value(json_object_get(e, "seq")),
						 prev_seq + 2);
			}
			prev_i = json_integer_value(json_object_get(e, "i"));
			prev_seq = json_integer_value(json_object_get(e, "seq"));
			json_decref(e);
			lines++;
		}
		if (lines < 3)
			fail_msg("%d event lines in 700 ms: '%s' (stderr '%s')", lines, r.out,
				 r.err);
	}
	free(r.out);
	free(r.err);

	/* stdout closed by its reader after one line: skygatectl ends, status 0 */
	{
		int p[2], fe = open("/dev/null", O_WRONLY);
		char buf[4096];
		pid_t pid;
		ssize_t n;

		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			dup2(p[1], 1);
			dup2(fe, 2);
			close(p[0]);
			execl(ctl_bin, ctl_bin, "--socket", path, "events", "--follow", NULL);
			_exit(127);
		}
		close(p[1]);
		close(fe);
		n = read(p[0], buf, sizeof(buf));
		assert_true(n > 0);
		close(p[0]);
		for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++)
			usleep(20000);
		if (waitpid(pid, &st, WNOHANG) == 0 && !WIFEXITED(st)) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("skygatectl events --follow did not end when its reader left");
		}
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	kill(srv, SIGTERM);
	assert_int_equal(waitpid(srv, &st, 0), srv);
}

/* skygatectl says why it cannot get through: a full queue, a refusal with its limit */
static void
test_skygatectl_refused(void **state)
{
	static const char refusal[] =
		"{\"ok\":false,\"error\":\"connection refused: uid 0 already has 16 "
		"connections to the control socket (control.clients_per_uid); close some and "
		"retry\",\"limit\":\"clients_per_uid\"}\n";
	const char *root = getenv("SKY_BUILD_ROOT");
	char path[256];
	struct timespec t0, t1;
	struct run r;
	int lfd, first, st;
	pid_t pid;

	snprintf(ctl_bin, sizeof(ctl_bin), "%s/gateway/skygatectl", root ? root : SKY_BUILD_ROOT);
	snprintf(path, sizeof(path), "%s/full.sock", tmpdir);

	/* nobody accepts and the queue is full: a bounded wait, then the reason */
	lfd = raw_listener(path, 0);
	first = client_connect(path); /* fills the queue of length 0 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = run_ctl(path, 0, (const char *const[]){"--timeout", "0.5", "status", NULL});
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(r.status, 2);
	if (strstr(r.err, "queue of pending connections is full") == NULL)
		fail_msg("no reason given: %s", r.err);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	free(r.out);
	free(r.err);
	close(first);
	close(lfd);

	/* refused at once: the daemon's reason is shown, not "Broken pipe" */
	lfd = raw_listener(path, 16);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 2; i++) {
			int fd = accept(lfd, NULL, NULL);
			ssize_t n = send(fd, refusal, sizeof(refusal) - 1, MSG_NOSIGNAL);

			(void)n;
			close(fd);
		}
		_exit(0);
	}
	for (int i = 0; i < 2; i++) {
		r = run_ctl(path, 0, (const char *const[]){"status", NULL});
		assert_int_equal(r.status, 1);
		if (strstr(r.err, "connection refused: uid 0 already has 16 connections") == NULL)
			fail_msg("refusal not shown: %s", r.err);
		free(r.out);
		free(r.err);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(lfd);
	unlink(path);
}

/* --- the events stream --- */

static size_t sink_len;
static char sink[1 << 16];

static int
sink_out(void *arg, const char *data, size_t len)
{
	if (arg != NULL && sink_len + len > *(size_t *)arg)
		return -1; /* a full output: nothing taken */
	assert_true(sink_len + len < sizeof(sink));
	memcpy(sink + sink_len, data, len);
	sink_len += len;
	sink[sink_len] = '\0';
	return 0;
}

static int
sink_lines(void)
{
	int n = 0;

	for (size_t i = 0; i < sink_len; i++)
		n += sink[i] == '\n';
	return n;
}

static void
test_events_errors(void **state)
{
	static const char *const bad_types[] = {
		"",	      "Quota.over",
		"quota over", "quota/over",
		"q\n",	      "a234567890123456789012345678901234567890123456789012345678901234567",
	};
	static const struct {
		const char *line, *err;
	} bad_follow[] = {
		{"events follow quota.*", "unknown filter 'quota.*' (expected type=GLOB"},
		{"events follow type=", "the glob must be 1..127 bytes"},
		{"events follow kind=x", "unknown filter 'kind=x'"},
		{"events follow type=a type=b type=c type=d type=e type=f type=g type=h type=i",
		 "at most 8 filters"},
	};
	unsigned long long emitted0 = metric("skygate_events_emitted_total");
	char glob[160] = "events follow type=";

	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++)
		assert_int_equal(sky_ctl_event(bad_types[i], json_object()), -EINVAL);
	assert_int_equal(sky_ctl_event(NULL, NULL), -EINVAL);
	/* fields must be an object; the reference is taken even so (ASan checks the leak) */
	assert_int_equal(sky_ctl_event("x.y", json_array()), -EINVAL);
	assert_int_equal(sky_ctl_event("x.y", json_string("s")), -EINVAL);
	assert_int_equal(metric("skygate_events_emitted_total"), emitted0);
	/* nobody follows: the event is numbered and counted all the same */
	{
		uint64_t seq0 = sky_ctl_events_seq();

		assert_int_equal(metric("skygate_events_subscribers"), 0);
		assert_int_equal(sky_ctl_event("x.y", json_pack("{s:i}", "a", 1)), 0);
		assert_int_equal(sky_ctl_events_seq(), seq0 + 1);
		assert_int_equal(metric("skygate_events_emitted_total"), emitted0 + 1);
		emitted0++;
	}

	for (size_t i = 0; i < sizeof(bad_follow) / sizeof(bad_follow[0]); i++) {
		json_t *r = dispatch_words(bad_follow[i].line, 0);

		assert_error(r, bad_follow[i].err);
		json_decref(r);
	}
	memset(glob + strlen(glob), 'g', 128);
	{
		json_t *r = dispatch_words(glob, 0);

		assert_error(r, "the glob must be 1..127 bytes");
		json_decref(r);
	}
	/* a subscription dispatched outside the server is never left behind */
	dispatch_ok("events follow type=a.*");
	dispatch_ok("echo x");
	assert_int_equal(metric("skygate_events_subscribers"), 0);
	assert_null(sky_ctl_events_claim());
}

static void
test_events_queue(void **state)
{
	char err[256], *all[] = {"type=quota.*", "type=subscriber.changed"};
	struct sky_ctl_sub *s, *every;
	unsigned long long lost0 = metric("skygate_events_lost_total");
	unsigned long long deliv0 = metric("skygate_events_delivered_total");
	uint64_t seq0 = sky_ctl_events_seq();
	size_t room;
	json_t *e;
	int n_fit = 0;

	/* a queue of 300 bytes: a few events fit, then they are lost */
	s = sky_ctl_sub_new(2, all, 300, err, sizeof(err));
	assert_non_null(s);
	every = sky_ctl_sub_new(0, NULL, 1 << 16, err, sizeof(err));
	assert_non_null(every);
	assert_int_equal(metric("skygate_events_subscribers"), 2);

	/* filtered out: queued for `every` only */
	assert_int_equal(sky_ctl_event("geo.reloaded", NULL), 0);
	assert_int_equal(sky_ctl_sub_queued(s), 0);
	assert_true(sky_ctl_sub_queued(every) > 0);
	for (int i = 0; i < 10; i++) {
		size_t before = sky_ctl_sub_queued(s);

		assert_int_equal(
			sky_ctl_event("quota.over", json_pack("{s:i, s:s, s:s}", "sub", i, "type",
							      "forged", "why", "over")),
			0);
		n_fit += sky_ctl_sub_queued(s) > before;
	}
	assert_true(n_fit >= 2 && n_fit < 10);
	assert_int_equal(sky_ctl_sub_lost(s), (uint64_t)(10 - n_fit));
	assert_int_equal(metric("skygate_events_lost_total"), lost0 + (unsigned)(10 - n_fit));
	/* lost until the queue drains, even if a small event would fit now */
	sink_len = 0;
	room = sky_ctl_sub_pump(s, sink_out, NULL, 1);
	assert_int_equal(room, sink_len);
	assert_int_equal(sink_lines(), 1); /* one whole line, even past the room */
	assert_int_equal(sky_ctl_event("subscriber.changed", NULL), 0);
	assert_int_equal(sky_ctl_sub_lost(s), (uint64_t)(11 - n_fit));
	/* a full output takes nothing */
	room = sink_len;
	assert_int_equal(sky_ctl_sub_pump(s, sink_out, &room, 1 << 16), 0);
	/* the rest, then the gap, where it is */
	assert_true(sky_ctl_sub_pump(s, sink_out, NULL, 1 << 16) > 0);
	assert_int_equal(sink_lines(), n_fit + 1);
	assert_int_equal(sky_ctl_sub_queued(s), 0);
	assert_int_equal(sky_ctl_sub_lost(s), 0);
	assert_false(sky_ctl_sub_has_output(s));
	for (int i = 0; i < n_fit; i++) {
		char want[32];

		e = line_json(sink, i);
		assert_non_null(e);
		assert_string_equal(json_string_value(json_object_get(e, "type")), "quota.over");
		assert_int_equal(json_integer_value(json_object_get(e, "seq")),
				 (json_int_t)(seq0 + 2 + (uint64_t)i));
		assert_int_equal(json_integer_value(json_object_get(e, "sub")), i);
		assert_string_equal(json_string_value(json_object_get(e, "why")), "over");
		/* RFC 3339, UTC, milliseconds: 2026-12-08T00:05:45.123Z */
		snprintf(want, sizeof(want), "%s", json_string_value(json_object_get(e, "time")));
		assert_int_equal(strlen(want), 24);
		assert_true(want[4] == '-' && want[10] == 'T' && want[19] == '.' &&
			    want[23] == 'Z');
		json_decref(e);
	}
	e = line_json(sink, n_fit);
	assert_string_equal(json_string_value(json_object_get(e, "type")), "events_lost");
	assert_int_equal(json_integer_value(json_object_get(e, "count")), 11 - n_fit);
	json_decref(e);
	assert_int_equal(metric("skygate_events_delivered_total"), deliv0 + (unsigned)n_fit);

	/* caught up: the stream resumes */
	assert_int_equal(sky_ctl_event("subscriber.changed", json_pack("{s:i}", "id", 7)), 0);
	sink_len = 0;
	sky_ctl_sub_pump(s, sink_out, NULL, 1 << 16);
	assert_int_equal(sink_lines(), 1);
	e = line_json(sink, 0);
	assert_string_equal(json_string_value(json_object_get(e, "type")), "subscriber.changed");
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), (json_int_t)(seq0 + 13));
	json_decref(e);

	/* `every` saw all 13, none lost */
	sink_len = 0;
	sky_ctl_sub_pump(every, sink_out, NULL, 1 << 16);
	assert_int_equal(sink_lines(), 13);
	e = line_json(sink, 0);
	assert_string_equal(json_string_value(json_object_get(e, "type")), "geo.reloaded");
	json_decref(e);
	assert_int_equal(sky_ctl_events_seq(), seq0 + 13);
	sky_ctl_sub_free(s);
	sky_ctl_sub_free(every);
	assert_int_equal(metric("skygate_events_subscribers"), 0);
}

/* A follower over the real socket: reply, then events; it takes no more requests and is not
 * idle-closed; a slow one loses events, never blocks the others. */
static void
test_events_server(void **state)
{
	char err[256], path[256], *out;
	struct sky_ctl_server *s;
	struct sky_ctl_limits lim;
	int fd, other, eof, n;
	json_t *r;

	snprintf(path, sizeof(path), "%s/events.sock", tmpdir);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	assert_non_null(s);
	sky_ctl_limits_default(&lim);
	lim.idle_timeout_ms = 100;
	assert_int_equal(sky_ctl_server_set_limits(s, &lim, err, sizeof(err)), 0);

	fd = client_connect(path);
	send_all(fd, "{\"argv\":[\"events\",\"follow\",\"type=kv.*\"]}\n", 42);
	r = pump_reply(s, fd);
	assert_ok(r);
	assert_true(json_is_true(json_object_get(json_object_get(r, "result"), "following")));
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(r, "result"), "types"), 0)),
			    "kv.*");
	json_decref(r);
	assert_int_equal(metric("skygate_events_subscribers"), 1);

	/* another client's request emits; the follower gets the matching events only */
	other = client_connect(path);
	assert_int_equal(sky_ctl_event("kv.changed", json_pack("{s:s}", "key", "a")), 0);
	assert_int_equal(sky_ctl_event("geo.reloaded", NULL), 0);
	assert_int_equal(sky_ctl_event("kv.gone", NULL), 0);
	n = pump_lines(s, fd, 2, &out, NULL, &eof);
	assert_int_equal(n, 2);
	r = line_json(out, 0);
	assert_string_equal(json_string_value(json_object_get(r, "key")), "a");
	json_decref(r);
	r = line_json(out, 1);
	assert_string_equal(json_string_value(json_object_get(r, "type")), "kv.gone");
	json_decref(r);
	free(out);

	/* requests on a following connection are not run */
	send_all(fd, "{\"argv\":[\"kv\",\"set\",\"x\",\"1\"]}\n", 30);
	/* quiet for longer than the idle timeout: the follower stays, the other is closed */
	for (int i = 0; i < 40; i++)
		assert_true(sky_ctl_server_poll(s, 10) >= 0);
	assert_int_equal(n_kv_log, 0);
	{
		char line[512];
		ssize_t got = recv(other, line, sizeof(line) - 1, MSG_DONTWAIT);

		assert_true(got > 0);
		line[got] = '\0';
		assert_non_null(strstr(line, "\"limit\":\"idle_timeout\""));
	}
	close(other);
	for (int i = 0; i < 10 && sky_ctl_server_clients(s) > 1; i++)
		sky_ctl_server_poll(s, 5);
	assert_int_equal(sky_ctl_server_clients(s), 1);
	assert_int_equal(sky_ctl_event("kv.changed", NULL), 0);
	n = pump_lines(s, fd, 1, &out, NULL, &eof);
	assert_int_equal(n, 1);
	assert_false(eof);
	free(out);

	/* a follower that does not read: its queue fills, events are lost, nothing blocks */
	{
		unsigned long long lost0 = metric("skygate_events_lost_total");
		char big[2048];
		int slow_rounds = 0;
		unsigned long long lost;

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		for (int i = 0; i < 1000; i++) {
			assert_int_equal(sky_ctl_event("kv.big", json_pack("{s:s}", "pad", big)),
					 0);
			if (i % 50 == 0) {
				assert_true(sky_ctl_server_poll(s, 0) >= 0);
				slow_rounds++;
			}
		}
		lost = metric("skygate_events_lost_total") - lost0;
		assert_true(lost > 0);
		/* now it reads everything: the lines, then the gap's count */
		n = pump_lines(s, fd, 1000 - (int)lost + 1, &out, NULL, &eof);
		assert_false(eof);
		assert_non_null(strstr(out, "{\"type\":\"events_lost\",\"count\":"));
		{
			const char *gap = strstr(out, "\"events_lost\"");
			unsigned long long count =
				strtoull(strstr(gap, "\"count\":") + 8, NULL, 10);

			/* nothing after the gap line, and the count is what was lost */
			assert_int_equal(count, lost);
			assert_int_equal(strchr(gap, '\n')[1], '\0');
			assert_int_equal(n, 1000 - (int)count + 1);
		}
		free(out);
		(void)slow_rounds;
	}
	close(fd);
	assert_no_clients(s);
	assert_int_equal(metric("skygate_events_subscribers"), 0);
	sky_ctl_server_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_longest_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extenders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_metrics, setup, teardown),
		cmocka_unit_test(test_crc32),
		cmocka_unit_test_setup_teardown(test_journal_errors, setup, teardown),
		cmocka_unit_test(test_journal_log),
		cmocka_unit_test(test_journal_scan),
		cmocka_unit_test_setup_teardown(test_journal_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_write_ahead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_as, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_compact_on_growth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_http, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skygatectl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_telemetry, setup, teardown),
		cmocka_unit_test(test_limits_check),
		cmocka_unit_test(test_limits_admit),
		cmocka_unit_test(test_limits_victim),
		cmocka_unit_test(test_limits_expired),
		cmocka_unit_test_setup_teardown(test_server_request_timeout, setup, teardown),
		cmocka_unit_test(test_stop_and_watchdog),
		cmocka_unit_test(test_skygatectl_refused),
		cmocka_unit_test_setup_teardown(test_events_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skygatectl_events, setup, teardown),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	sky_runtime_init();
	snprintf(tmpdir, sizeof(tmpdir), "%s", sky_fx_tmpdir());
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return rc;
}
