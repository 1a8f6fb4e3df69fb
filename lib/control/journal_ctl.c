/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's journal: the one log (skygate/journal.h) that state-changing commands are
 * written to before they are applied (sky_ctl_commit), what the dispatcher checks around a
 * journaled command, the files a record names (SHA-256, checked on replay), recovery notes,
 * snapshots of the live state from the registered parts, and the commands `journal show`,
 * `journal compact`, `journal ack` and `state dump`. The journal itself knows nothing of
 * commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "skygate/control.h"
#include "skygate/journal.h"
#include "skygate/runtime.h"

#include "control_priv.h"

#define COMPACT_MIN (1L << 20) /* appends compact once the journal passes this ... */
#define COMPACT_GROWTH 2       /* ... and has grown this many times since the last one */

static struct sky_journal *journal;
static long compacted_size; /* journal size after the last compaction (or open) */
static json_t *unacked;	    /* recoveries not yet acknowledged: [{aside, offset, ...}] */
static int compacting;
static sky_ctl_store_fn store_fn; /* cluster mode: where validated changes go */
static void *store_arg;

struct sky_journal *
sky_ctl_journal(void)
{
	return journal;
}

int
sky_ctl_journal_open(const char *dir, char *err, size_t errlen)
{
	sky_ctl_journal_close();
	journal = sky_journal_open(dir, err, errlen);
	if (journal == NULL)
		return -errno;
	compacted_size = sky_journal_size(journal);
	return 0;
}

void
sky_ctl_journal_close(void)
{
	sky_journal_close(journal);
	journal = NULL;
	json_decref(unacked);
	unacked = NULL;
	sky_ctl_unacked_now = 0;
}

const char *
sky_ctl_state_dir(void)
{
	return journal != NULL ? sky_journal_dir(journal) : NULL;
}

long
sky_ctl_journal_size(void)
{
	return journal != NULL ? sky_journal_size(journal) : -1;
}

unsigned int
sky_ctl_journal_unacked(void)
{
	return (unsigned int)json_array_size(unacked);
}

void
sky_ctl_journal_batch_begin(void)
{
}

int
sky_ctl_journal_batch_end(void)
{
	return 0;
}

/* --- files a record names --- */

/* SHA-256 of a file as 64 hex digits; 0 or -errno. */
static int
file_sha256(const char *path, char hex[65])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		rc = -ENOMEM;
	while (rc == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			rc = -EIO;
	}
	if (rc == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		rc = -EIO;
	EVP_MD_CTX_free(ctx);
	close(fd);
	for (unsigned int i = 0; rc == 0 && i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return rc;
}

/* Words naming a file in the state directory: {"files": [{"path", "sha256"}]}, or NULL
 * when there are none. -errno in *rc when one cannot be read. */
static json_t *
record_files(int argc, char *const *argv, int *rc)
{
	const char *dir = sky_ctl_state_dir();
	size_t dl = dir != NULL ? strlen(dir) : 0;
	json_t *files = NULL, *extra;
	char hex[65];

	*rc = 0;
	for (int i = 0; dir != NULL && i < argc; i++) {
		struct stat st;

		if (strncmp(argv[i], dir, dl) != 0 || argv[i][dl] != '/' ||
		    stat(argv[i], &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		*rc = file_sha256(argv[i], hex);
		if (*rc != 0) {
			json_decref(files);
			return NULL;
		}
		if (files == NULL)
			files = json_array();
		json_array_append_new(files,
				      json_pack("{s:s, s:s}", "path", argv[i], "sha256", hex));
	}
	if (files == NULL)
		return NULL;
	extra = json_pack("{s:o}", "files", files);
	if (extra == NULL)
		*rc = -ENOMEM;
	return extra;
}

int
sky_ctl_journal_check_files(const json_t *doc, char *why, size_t whylen)
{
	const json_t *f;
	size_t i;

	json_array_foreach(json_object_get(doc, "files"), i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *want = json_string_value(json_object_get(f, "sha256"));
		char hex[65];
		int rc;

		if (path == NULL || want == NULL) {
			snprintf(why, whylen, "a \"files\" entry without path or sha256");
			return -1;
		}
		rc = file_sha256(path, hex);
		if (rc != 0) {
			snprintf(why, whylen, "%s, which it names, cannot be read: %s", path,
				 strerror(-rc));
			return -1;
		}
		if (strcmp(hex, want) != 0) {
			snprintf(why, whylen,
				 "%s, which it names, changed since it was journaled (sha256 "
				 "%.16s..., "
				 "journaled %.16s...)",
				 path, hex, want);
			return -1;
		}
	}
	return 0;
}

/* --- the write-ahead commit --- */

int
sky_ctl_commit(struct sky_ctl_call *call)
{
	char *const *argv;
	json_t *extra;
	int argc, rc;

	if (call == NULL)
		return -1;
	if (!call->journaled)
		return sky_ctl_fail(call, "internal error: commit from a command that is not "
					  "journaled");
	if (call->committed > 0)
		return sky_ctl_fail(call, "internal error: committed twice");
	if (store_fn != NULL && !call->replay && !call->from_store) {
		/* cluster mode: validated here, stored there, applied when the store says so */
		rc = store_fn(store_arg, call, call->argc, call->argv, &call->store_result);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			call->stored = 1;
			return sky_ctl_fail(call, "stored in the cluster: applies from the store");
		}
	}
	if (call->replay || journal == NULL) {
		call->committed++;
		return 0;
	}
	argc = call->journal_argc > 0 ? call->journal_argc : call->argc;
	argv = call->journal_argc > 0 ? call->journal_argv : call->argv;
	call->commit_mark = sky_journal_size(journal);
	extra = record_files(argc, argv, &rc);
	if (rc == 0)
		rc = sky_journal_write(journal, argc, argv, call->uid, extra);
	json_decref(extra);
	if (rc != 0) {
		SKY_LOG(ERR, "journal %s: append failed: %s: change refused",
			sky_journal_path(journal), strerror(-rc));
		return sky_ctl_fail(call,
				    "not journaled (%s, state dir %s): the change is refused, "
				    "nothing changed",
				    strerror(-rc), sky_journal_dir(journal));
	}
	call->committed++;
	return 0;
}

void
sky_ctl_store_hook(sky_ctl_store_fn fn, void *arg)
{
	store_fn = fn;
	store_arg = arg;
}

int
sky_ctl_journal_precheck(struct sky_ctl_call *call)
{
	if (call->replay || journal == NULL || !sky_journal_is_broken(journal))
		return 0;
	return sky_ctl_fail(call,
			    "the journal %s is broken (a write that could not be taken "
			    "back): changes are refused until skygate restarts",
			    sky_journal_path(journal));
}

int
sky_ctl_journal_after(struct sky_ctl_call *call, int rc)
{
	char words[512];

	if (call->replay || journal == NULL)
		return 0;
	sky_ctl_join(words, sizeof(words), call->argc, call->argv);
	if (rc != 0 && call->committed > 0) {
		/* the change failed after its record was written: take the record back (a crash
		 * before that leaves it after the tip, where the replay drops it) */
		SKY_LOG(ERR, "journal: '%s' failed after its record was written: taken back",
			words);
		sky_ctl_counters[SKY_CTL_C_journal_undone]++;
		sky_journal_cut(journal, call->commit_mark);
		return 0;
	}
	if (rc != 0)
		return 0;
	if (call->committed == 0) {
		/* a handler that forgot to commit: a bug; journal it late rather than lose it */
		SKY_LOG(CRIT,
			"journal: '%s' succeeded without a write-ahead commit (a bug): "
			"journaled after the change",
			words);
		sky_ctl_counters[SKY_CTL_C_journal_uncommitted]++;
		if (sky_ctl_commit(call) != 0)
			return -1;
	}
	/* applied: the tip moves past its record, which commits it; only then the reply */
	rc = sky_journal_mark(journal);
	if (rc != 0)
		return sky_ctl_fail(call,
				    "applied, but its commit mark could not be written (%s): the "
				    "journal is broken and a restart would not bring this change "
				    "back; changes are refused until skygate restarts",
				    strerror(-rc));
	if (!compacting && sky_journal_size(journal) > COMPACT_MIN &&
	    sky_journal_size(journal) > COMPACT_GROWTH * compacted_size) {
		char err[512];
		unsigned int n;

		sky_ctl_parts(&n);
		if (n > 1 && sky_ctl_journal_compact(err, sizeof(err)) < 0)
			SKY_LOG(WARNING, "%s", err);
		/* not again before the journal has grown as much once more */
		compacted_size = sky_journal_size(journal);
	}
	return 0;
}

/* --- recovery notes --- */

int
sky_ctl_journal_note(const char *aside, long offset, int record, const char *why)
{
	json_t *n = json_pack("{s:s, s:I, s:i, s:s}", "aside", aside, "offset", (json_int_t)offset,
			      "record", record, "why", why);

	if (n == NULL)
		return -ENOMEM;
	if (unacked == NULL)
		unacked = json_array();
	json_array_append_new(unacked, n);
	sky_ctl_unacked_now = (unsigned int)json_array_size(unacked);
	return 0;
}

/* `journal recovered ASIDE OFFSET RECORD WHY`: what --recover writes (replay only). */
int
sky_ctl_journal_recovered_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			      json_t **result)
{
	int *internal = arg;
	char *end;
	long off;

	if (!call->replay && (internal == NULL || !*internal))
		return sky_ctl_fail(call, "written by skygate --recover only");
	if (argc != 4)
		return sky_ctl_fail(call, "usage: journal recovered ASIDE OFFSET RECORD WHY");
	off = strtol(argv[1], &end, 10);
	if (*end != '\0' || off < 0)
		return sky_ctl_fail(call, "OFFSET '%s': not a byte offset", argv[1]);
	if (sky_ctl_commit(call) != 0)
		return -1;
	sky_ctl_journal_note(argv[0], off, atoi(argv[2]), argv[3]);
	return 0;
}

/* `journal ack`: the operator has seen the recoveries. */
int
sky_ctl_journal_ack_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			json_t **result)
{
	unsigned int n = sky_ctl_journal_unacked();

	if (argc > 0)
		return sky_ctl_fail(call, "unexpected argument '%s' (usage: journal ack)", argv[0]);
	if (n == 0)
		return sky_ctl_fail(call, "no recovery to acknowledge");
	if (sky_ctl_commit(call) != 0)
		return -1;
	json_decref(unacked);
	unacked = NULL;
	sky_ctl_unacked_now = 0;
	sky_audit(call->uid, "journal ack: %u recoveries acknowledged", n);
	*result = json_pack("{s:i}", "acknowledged", n);
	return 0;
}

/* The journal's own part of the state: the unacknowledged recoveries. */
static int
notes_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	*part = unacked != NULL ? json_deep_copy(unacked) : json_array();
	return *part != NULL ? 0 : -1;
}

static int
notes_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	const json_t *n;
	size_t i;

	json_array_foreach(unacked, i, n)
	{
		char off[24], rec[16];
		const char *w[] = {
			"journal", "recovered", json_string_value(json_object_get(n, "aside")),
			off,	   rec,		json_string_value(json_object_get(n, "why"))};

		snprintf(off, sizeof(off), "%lld",
			 (long long)json_integer_value(json_object_get(n, "offset")));
		snprintf(rec, sizeof(rec), "%lld",
			 (long long)json_integer_value(json_object_get(n, "record")));
		if (sky_ctl_snapshot_add(snap, 6, w) != 0) {
			snprintf(err, errlen, "journal: cannot write a recovery note");
			return -1;
		}
	}
	return 0;
}

int
sky_ctl_journal_register_part(void)
{
	return sky_ctl_state_register("journal", SKY_CTL_ORDER_JOURNAL, notes_dump, notes_snap,
				      NULL);
}

/* --- snapshots --- */

struct sky_ctl_snapshot {
	struct sky_journal *j;
	int n;
	json_t *files; /* paths the snapshot names (object: path -> true) */
};

int
sky_ctl_snapshot_add(struct sky_ctl_snapshot *snap, int argc, const char *const *argv)
{
	json_t *extra, *f;
	size_t i;
	int rc;

	extra = record_files(argc, (char *const *)argv, &rc);
	if (rc != 0)
		return rc;
	json_array_foreach(json_object_get(extra, "files"), i, f) json_object_set_new(
		snap->files, json_string_value(json_object_get(f, "path")), json_true());
	rc = sky_journal_rewrite_add(snap->j, argc, (char *const *)argv, 0, extra);
	json_decref(extra);
	if (rc == 0)
		snap->n++;
	return rc;
}

/* sky_journal_foreach() callback: the files the old journal names. */
static int
old_files(void *ctx, const struct sky_journal_record *rec)
{
	json_t *set = ctx, *f;
	size_t i;

	json_array_foreach(json_object_get(rec->doc, "files"), i, f)
	{
		const char *p = json_string_value(json_object_get(f, "path"));

		if (p != NULL)
			json_object_set_new(set, p, json_true());
	}
	return 0;
}

int
sky_ctl_journal_compact(char *err, size_t errlen)
{
	struct sky_ctl_snapshot snap = {0};
	const struct sky_ctl_part *parts;
	json_t *old = json_object(), *v;
	unsigned int n;
	const char *path;
	int rc = -1;

	if (journal == NULL) {
		snprintf(err, errlen, "journal: not open");
		json_decref(old);
		return -1;
	}
	parts = sky_ctl_parts(&n);
	if (n < 2) {
		/* the journal's own part only: a snapshot would forget every command */
		snprintf(err, errlen, "journal compact: no module has registered its state");
		json_decref(old);
		return -1;
	}
	snap.j = journal;
	snap.files = json_object();
	if (old == NULL || snap.files == NULL ||
	    sky_journal_foreach(journal, old_files, old, err, errlen) < 0 ||
	    sky_journal_rewrite_begin(journal, err, errlen) != 0)
		goto out;
	compacting = 1;
	for (unsigned int i = 0; i < n; i++) {
		char why[400] = "";

		if (parts[i].snap(parts[i].arg, &snap, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "journal compact: %s: %s", parts[i].name,
				 why[0] ? why : "cannot write its snapshot");
			sky_journal_rewrite_abort(journal);
			goto out;
		}
	}
	if (sky_journal_rewrite_commit(journal, err, errlen) != 0)
		goto out;
	/* the copies only the old journal named are no longer needed */
	json_object_foreach(old, path, v) if (json_object_get(snap.files, path) == NULL)
		unlink(path);
	compacted_size = sky_journal_size(journal);
	sky_ctl_counters[SKY_CTL_C_journal_compactions]++;
	rc = snap.n;
out:
	compacting = 0;
	json_decref(old);
	json_decref(snap.files);
	return rc;
}

json_t *
sky_ctl_state_dump(char *err, size_t errlen)
{
	const struct sky_ctl_part *parts;
	json_t *out = json_object();
	unsigned int n;

	parts = sky_ctl_parts(&n);
	for (unsigned int i = 0; out != NULL && i < n; i++) {
		json_t *part = NULL;
		char why[400] = "";

		if (parts[i].dump(parts[i].arg, &part, why, sizeof(why)) != 0 || part == NULL) {
			snprintf(err, errlen, "%s: %s", parts[i].name,
				 why[0] ? why : "cannot dump its state");
			json_decref(part);
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, parts[i].name, part);
	}
	if (out == NULL)
		snprintf(err, errlen, "out of memory");
	return out;
}

/* --- built-in commands --- */

int
sky_ctl_state_dump_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	char err[512];

	if (argc > 0)
		return sky_ctl_fail(call, "unexpected argument '%s' (usage: state dump)", argv[0]);
	*result = sky_ctl_state_dump(err, sizeof(err));
	return *result != NULL ? 0 : sky_ctl_fail(call, "%s", err);
}

int
sky_ctl_journal_compact_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			    json_t **result)
{
	char err[512];
	long before = sky_ctl_journal_size();
	int n;

	if (argc > 0)
		return sky_ctl_fail(call, "unexpected argument '%s' (usage: journal compact)",
				    argv[0]);
	if (journal == NULL)
		return sky_ctl_fail(call, "no journal (the configuration sets no state.dir)");
	n = sky_ctl_journal_compact(err, sizeof(err));
	if (n < 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "journal compact: a snapshot of %d records, %ld -> %ld bytes", n,
		  before, sky_ctl_journal_size());
	*result = json_pack("{s:i, s:I, s:I}", "records", n, "bytes_before", (json_int_t)before,
			    "bytes_after", (json_int_t)sky_ctl_journal_size());
	return 0;
}

/* `journal show`: the records after the first skip, as a list. */
struct show {
	int skip;
	json_t *list;
};

static int
show_record(void *ctx, const struct sky_journal_record *rec)
{
	struct show *s = ctx;
	char line[1024];

	if (rec->n <= s->skip)
		return 0;
	sky_ctl_join(line, sizeof(line), rec->argc, rec->argv);
	json_array_append_new(s->list,
			      json_pack("{s:i, s:O?, s:O?, s:s}", "n", rec->n, "time",
					json_object_get(rec->doc, "time"), "uid",
					json_object_get(rec->doc, "uid"), "command", line));
	return 0;
}

/* `journal show [N]`: the last N (default 20, 0 = all) intact records, oldest first. */
int
sky_ctl_journal_show_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			 json_t **result)
{
	char err[512], *end;
	unsigned long last = 20;
	struct show s = {0};
	int total;

	if (argc > 1)
		return sky_ctl_fail(call, "usage: journal show [N]");
	if (argc == 1) {
		errno = 0;
		last = strtoul(argv[0], &end, 10);
		if (errno != 0 || end == argv[0] || *end != '\0' || argv[0][0] == '-')
			return sky_ctl_fail(call, "N '%s': expected a number of records (0 = all)",
					    argv[0]);
	}
	if (journal == NULL || sky_journal_is_broken(journal))
		return sky_ctl_fail(call, "no journal (the configuration sets no state.dir)");
	/* count first, so a long journal costs one pass of parsing and no reshuffling */
	total = sky_journal_foreach(journal, NULL, NULL, err, sizeof(err));
	if (total < 0)
		return sky_ctl_fail(call, "%s", err);
	s.skip = last > 0 && (unsigned long)total > last ? total - (int)last : 0;
	s.list = json_array();
	if (s.list == NULL)
		return sky_ctl_fail(call, "out of memory");
	if (sky_journal_foreach(journal, show_record, &s, err, sizeof(err)) < 0) {
		json_decref(s.list);
		return sky_ctl_fail(call, "%s", err);
	}
	*result = s.list;
	return 0;
}

/* `status` gets the journal: where, how big, and recoveries not yet acknowledged. */
static void
status_extend(void *arg, int argc, char **argv, json_t *result)
{
	json_t *o;

	if (journal == NULL) {
		json_object_set_new(result, "journal", json_null());
		return;
	}
	o = json_pack("{s:s, s:I, s:b, s:o}", "path", sky_journal_path(journal), "bytes",
		      (json_int_t)sky_journal_size(journal), "broken",
		      sky_journal_is_broken(journal), "unacknowledged_recoveries",
		      unacked != NULL ? json_deep_copy(unacked) : json_array());
	json_object_set_new(result, "journal", o);
}

int
sky_ctl_journal_extend_status(void)
{
	return sky_ctl_table_extend("status", status_extend, NULL);
}
