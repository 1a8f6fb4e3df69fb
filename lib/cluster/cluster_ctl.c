/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster's control side: the store hook (a validated change from skygatectl goes to
 * etcd, and every node applies it from its watch), `cluster status`, `cluster import`,
 * Prometheus metrics, and the periodic call of sky_cluster_poll(). Main lcore only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skygate/cluster.h"
#include "skygate/control.h"
#include "skygate/file.h"
#include "skygate/journal.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"

#include "cluster_priv.h"

#define POLL_PERIOD_US 1000	/* and sky_ctl_wake() when the threads have news */
#define STORE_TRIES 4		/* a concurrent write to the same key: read, merge, try again */
#define IMPORT_MAX (256u << 20) /* bytes of a journal `cluster import` reads */

/* changes that concern this node only: journaled and applied here, never stored */
static int
local_change(int argc, char *const *argv)
{
	return argc >= 1 && (strcmp(argv[0], "journal") == 0 || strcmp(argv[0], "geo") == 0 ||
			     strcmp(argv[0], "class") == 0);
}

/* the value at key now (NULL: none or unreadable) and its mod revision */
static int
read_key(struct sky_etcd *e, const char *key, json_t **value, int64_t *mod_rev)
{
	json_t *resp, *kv;
	int rc = sky_etcd_range(e, key, false, 0, &resp);

	*value = NULL;
	*mod_rev = 0;
	if (rc != 0)
		return rc;
	kv = json_array_get(json_object_get(resp, "kvs"), 0);
	if (kv != NULL) {
		const char *v64 = json_string_value(json_object_get(kv, "value")) ?: "";
		size_t vl = strlen(v64);
		char *v = malloc(vl / 4 * 3 + 1);
		long n = v ? sky_b64_decode(v64, vl, v, vl / 4 * 3) : -ENOMEM;

		*mod_rev = sky_etcd_i64(json_object_get(kv, "mod_revision"));
		if (n >= 0) {
			v[n] = '\0';
			*value = json_loads(v, 0, NULL); /* malformed: as if absent */
		}
		free(v);
	}
	json_decref(resp);
	return 0;
}

/* Store one command's change (merged with what the key holds): 0 with *rev, or -errno
 * with err. */
static int
store_argv(struct sky_cluster *c, int argc, char *const *argv, char *key_out, int64_t *rev,
	   char *err, size_t errlen)
{
	for (int t = 0; t < STORE_TRIES; t++) {
		struct sky_cluster_op op;
		json_t *prev;
		int64_t mod = 0;
		char *text;
		int rc, done = 0;

		rc = sky_cluster_op_from_argv(c->cfg.prefix, argc, argv, NULL, &op, err, errlen);
		if (rc != 0)
			return rc;
		json_decref(op.value);
		if (read_key(&c->mcl, op.key, &prev, &mod) != 0)
			goto unreachable;
		rc = sky_cluster_op_from_argv(c->cfg.prefix, argc, argv, prev, &op, err, errlen);
		json_decref(prev);
		if (rc != 0)
			return rc;
		if (argc == 3 && strcmp(argv[0], "policy") == 0 && strcmp(argv[1], "load") == 0) {
			/* every node loads this path: only if it is the same file */
			char hex[65];

			if (sky_cluster_file_sha256(argv[2], hex, err, errlen) != 0) {
				json_decref(op.value);
				return -EIO;
			}
			json_object_set_new(op.value, "sha256", json_string(hex));
		}
		text = json_dumps(op.value, JSON_COMPACT);
		json_decref(op.value);
		if (text == NULL) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		c->sent_at_ms = sky_cluster_wall_ms();
		rc = sky_etcd_put_if(&c->mcl, op.key, text, 0, mod, &done, rev);
		free(text);
		if (rc != 0)
			goto unreachable;
		if (done) {
			snprintf(key_out, SKY_CLUSTER_KEY_MAX, "%s", op.key);
			return 0;
		}
		/* another writer changed the key since we read it: merge again */
	}
	snprintf(err, errlen,
		 "the key changed %d times while this change was merged into it: "
		 "try again",
		 STORE_TRIES);
	return -EAGAIN;
unreachable:
	c->ctr[SKY_CLUSTER_C_etcd_errors]++;
	c->ctr[SKY_CLUSTER_C_writes_refused]++;
	snprintf(err, errlen,
		 "etcd unreachable (%.700s): the cluster is read-only until it answers; nothing "
		 "changed",
		 c->mcl.err);
	return -EHOSTUNREACH;
}

#define QUOTA_IMPORT_MAX (256u << 20) /* as `quota import` reads it */

/*
 * `quota import FILE` in cluster mode: the file is on this node only, so each of its rows
 * is stored as the `quota set ID used=... [credit=...] [anchor=...]` it means (at
 * state/quota/ID, one put per row), and every node applies them from its watch. The quota
 * command checked the whole file before (header, values, subscribers, allowances).
 */
static int
store_import(struct sky_cluster *c, struct sky_ctl_call *call, const char *file, json_t **result)
{
	static const char *const cols[] = {"id=", "used=", "credit=", "anchor="};
	char err[1024], key[SKY_CLUSTER_KEY_MAX] = "";
	unsigned int line = 0, ncol = 0, stored = 0;
	int64_t rev = 0;
	size_t len;
	void *buf;
	const char *p, *end;

	if (sky_file_read(file, QUOTA_IMPORT_MAX, 0, &buf, &len, err, sizeof(err)) != 0)
		return sky_ctl_fail(call, "cluster: %s", err);
	p = buf;
	end = p + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		char words[4][80], *w[7] = {"quota", "set"};
		unsigned int k = 0;
		int argc = 3, rc;

		line++;
		for (const char *f = p; f != NULL && k < 4; k++) {
			const char *comma = memchr(f, ',', (size_t)(le - f));
			const char *fe = comma != NULL ? comma : le;
			size_t l;

			while (f < fe && (*f == ' ' || *f == '\t'))
				f++;
			while (fe > f && (fe[-1] == ' ' || fe[-1] == '\t' || fe[-1] == '\r'))
				fe--;
			l = (size_t)(fe - f) < 60 ? (size_t)(fe - f) : 60;
			snprintf(words[k], sizeof(words[k]), "%s%.*s", cols[k], (int)l, f);
			f = comma != NULL ? comma + 1 : NULL;
		}
		p = nl != NULL ? nl + 1 : end;
		if (strcmp(words[0], "id=") == 0 || words[0][3] == '#')
			continue; /* an empty line or a comment */
		if (ncol == 0) {
			ncol = k; /* the header, checked by the quota command */
			continue;
		}
		w[2] = words[0] + 3;
		for (unsigned int i = 1; i < k; i++)
			if (words[i][strlen(cols[i])] != '\0')
				w[argc++] = words[i];
		rc = store_argv(c, argc, w, key, &rev, err, sizeof(err));
		if (rc != 0) {
			free(buf);
			return sky_ctl_fail(
				call,
				"cluster: %s:%u: %s (%u rows stored before it, on every "
				"node)",
				file, line, err, stored);
		}
		stored++;
	}
	free(buf);
	c->ctr[SKY_CLUSTER_C_changes_stored] += stored;
	*result = json_pack(
		"{s:{s:s, s:i, s:I, s:I, s:s}}", "cluster", "file", file, "stored", (int)stored,
		"revision", (json_int_t)rev, "sent_at_ms", (json_int_t)c->sent_at_ms, "applies",
		"on every node, from the store: one `quota set` a row at state/quota/ID");
	return 0;
}

/* sky_ctl_store_hook: a change validated by its command goes to the store */
static int
store(void *arg, struct sky_ctl_call *call, int argc, char *const *argv, json_t **result)
{
	struct sky_cluster *c = arg;
	char key[SKY_CLUSTER_KEY_MAX], err[1024];
	int64_t rev = 0;
	int rc;

	if (local_change(argc, argv))
		return 1;
	if (argc == 3 && strcmp(argv[0], "quota") == 0 && strcmp(argv[1], "import") == 0)
		return store_import(c, call, argv[2], result);
	rc = store_argv(c, argc, argv, key, &rev, err, sizeof(err));
	if (rc != 0)
		return sky_ctl_fail(call, "cluster: %s", err);
	c->ctr[SKY_CLUSTER_C_changes_stored]++;
	*result = json_pack("{s:{s:s, s:I, s:I, s:s}}", "cluster", "key", key, "revision",
			    (json_int_t)rev, "sent_at_ms", (json_int_t)c->sent_at_ms, "applies",
			    "on every node, from the store");
	return 0;
}

/* --- cluster status --- */

static int
cmd_status(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_cluster *c = arg;
	uint64_t now = sky_cluster_now_ms(), dropped, passed;
	json_t *r, *members, *beams, *ctr;
	char lease[24];

	if (argc > 0)
		return sky_ctl_fail(call, "unexpected argument '%s' (usage: cluster status)",
				    argv[0]);
	members = json_array();
	beams = json_array();
	ctr = json_object();
	sky_subs_beam_foreign(c->subs, &dropped, &passed);
	pthread_mutex_lock(&c->lock);
	snprintf(lease, sizeof(lease), "%" PRIx64, (uint64_t)c->lease);
	for (unsigned int i = 0; i < c->n_members; i++) {
		char l[24];

		snprintf(l, sizeof(l), "%" PRIx64, (uint64_t)c->members[i].lease);
		json_array_append_new(members,
				      json_pack("{s:s, s:s, s:I}", "node", c->members[i].name,
						"lease", l, "applied_revision",
						(json_int_t)c->members[i].applied));
	}
	for (unsigned int b = 0; b < c->n_beams; b++)
		json_array_append_new(beams, json_pack("{s:s, s:s, s:s, s:b}", "beam",
						       c->beams[b].name, "table", c->beams[b].table,
						       "owner", c->beams[b].holder, "shaped_here",
						       c->beams[b].shaping));
#define X(n, h) json_object_set_new(ctr, #n, json_integer((json_int_t)c->ctr[SKY_CLUSTER_C_##n]));
	SKY_CLUSTER_COUNTERS(X)
#undef X
	json_object_set_new(ctr, "foreign_dropped", json_integer((json_int_t)dropped));
	json_object_set_new(ctr, "foreign_passed", json_integer((json_int_t)passed));
	r = json_pack("{s:s, s:s, s:b, s:b, s:s, s:i, s:I, s:I, s:I, s:I, s:s, s:o, s:o, s:o}",
		      "node", c->cfg.node, "prefix", c->cfg.prefix, "connected", c->connected,
		      "watching", c->watching, "lease", c->lease ? lease : "", "lease_ttl_s",
		      (int)c->cfg.ttl_s, "fence_in_ms",
		      (json_int_t)(c->fence_ms > now ? c->fence_ms - now : 0), "applied_revision",
		      (json_int_t)c->applied_rev, "applied_at_ms", (json_int_t)c->applied_at_ms,
		      "seen_revision", (json_int_t)c->seen_rev, "other_beams",
		      c->cfg.other == SKY_CLUSTER_OTHER_PASS ? "pass" : "drop", "members", members,
		      "beams", beams, "counters", ctr);
	if (r != NULL && c->last_err[0] != '\0')
		json_object_set_new(r, "last_error", json_string(c->last_err));
	if (r != NULL && c->last_refused[0] != '\0')
		json_object_set_new(r, "last_refused", json_string(c->last_refused));
	pthread_mutex_unlock(&c->lock);
	if (r == NULL)
		return sky_ctl_fail(call, "out of memory");
	*result = r;
	return 0;
}

/* --- cluster import --- */

struct import {
	struct sky_cluster *c;
	json_t *skipped;
	int stored;
	int64_t rev;
	char err[1024];
	int failed;
};

static int
import_record(void *ctx, const struct sky_journal_record *rec)
{
	struct import *im = ctx;
	char key[SKY_CLUSTER_KEY_MAX], why[1024];
	int rc;

	if (local_change(rec->argc, rec->argv)) {
		json_array_append_new(im->skipped, json_pack("{s:i, s:s}", "record", rec->n, "why",
							     "concerns the node that wrote it"));
		return 0;
	}
	rc = store_argv(im->c, rec->argc, rec->argv, key, &im->rev, why, sizeof(why));
	if (rc == -ENOTSUP || rc == -EINVAL) {
		json_array_append_new(im->skipped,
				      json_pack("{s:i, s:s}", "record", rec->n, "why", why));
		return 0;
	}
	if (rc != 0) {
		snprintf(im->err, sizeof(im->err), "record #%d: %.900s", rec->n, why);
		im->failed = 1;
		return -EIO;
	}
	im->stored++;
	return 0;
}

static int
cmd_import(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct import im = {.c = arg};
	struct sky_journal_scan scan;
	struct stat st;
	char *buf;
	ssize_t got;
	int fd;

	if (argc != 1)
		return sky_ctl_fail(call, "usage: cluster import JOURNAL (a single node's "
					  "STATE_DIR/journal)");
	fd = open(argv[0], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return sky_ctl_fail(call, "%s: %s", argv[0], strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > IMPORT_MAX) {
		close(fd);
		return sky_ctl_fail(call, "%s: not a regular file of at most %u MiB", argv[0],
				    IMPORT_MAX >> 20);
	}
	buf = malloc((size_t)st.st_size + 1);
	got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (got != st.st_size) {
		free(buf);
		return sky_ctl_fail(call, "%s: cannot read it", argv[0]);
	}
	im.skipped = json_array();
	sky_journal_scan(buf, (size_t)got, -1, import_record, &im, &scan);
	free(buf);
	if (im.failed) {
		json_decref(im.skipped);
		return sky_ctl_fail(call, "%s: %s (%d changes stored before it)", argv[0], im.err,
				    im.stored);
	}
	*result = json_pack("{s:s, s:i, s:I, s:o, s:s}", "journal", argv[0], "stored", im.stored,
			    "revision", (json_int_t)im.rev, "skipped", im.skipped, "end",
			    scan.end == SKY_JOURNAL_CLEAN ? "clean" : scan.why);
	return 0;
}

/* --- metrics --- */

static void
metrics(void *arg, FILE *out)
{
	struct sky_cluster *c = arg;
	uint64_t dropped, passed;

	sky_subs_beam_foreign(c->subs, &dropped, &passed);
	pthread_mutex_lock(&c->lock);
	fprintf(out, "# HELP skygate_beam_owner The node that holds each beam's claim in etcd "
		     "(as this node sees it).\n# TYPE skygate_beam_owner gauge\n");
	for (unsigned int b = 0; b < c->n_beams; b++)
		if (c->beams[b].holder[0] != '\0')
			fprintf(out, "skygate_beam_owner{beam=\"%s\",node=\"%s\"} 1\n",
				c->beams[b].name, c->beams[b].holder);
	fprintf(out, "# HELP skygate_cluster_beam_shaped 1 when this node shapes the beam.\n"
		     "# TYPE skygate_cluster_beam_shaped gauge\n");
	for (unsigned int b = 0; b < c->n_beams; b++)
		fprintf(out, "skygate_cluster_beam_shaped{beam=\"%s\"} %d\n", c->beams[b].name,
			c->beams[b].shaping ? 1 : 0);
	fprintf(out,
		"# HELP skygate_cluster_connected 1 while etcd answers (0: read-only, alarm).\n"
		"# TYPE skygate_cluster_connected gauge\nskygate_cluster_connected %d\n"
		"# HELP skygate_cluster_members Live members of the cluster.\n"
		"# TYPE skygate_cluster_members gauge\nskygate_cluster_members %u\n"
		"# HELP skygate_cluster_applied_revision The etcd revision of the last state "
		"change applied.\n# TYPE skygate_cluster_applied_revision gauge\n"
		"skygate_cluster_applied_revision %" PRId64 "\n",
		c->connected ? 1 : 0, c->n_members, c->applied_rev);
#define X(n, h)                                                                                    \
	fprintf(out,                                                                               \
		"# HELP skygate_cluster_" #n "_total " h ".\n# TYPE skygate_cluster_" #n           \
		"_total counter\nskygate_cluster_" #n "_total %" PRIu64 "\n",                      \
		c->ctr[SKY_CLUSTER_C_##n]);
	SKY_CLUSTER_COUNTERS(X)
#undef X
	pthread_mutex_unlock(&c->lock);
	fprintf(out,
		"# HELP skygate_cluster_foreign_packets_total Packets of beams another node owns.\n"
		"# TYPE skygate_cluster_foreign_packets_total counter\n"
		"skygate_cluster_foreign_packets_total{action=\"dropped\"} %" PRIu64 "\n"
		"skygate_cluster_foreign_packets_total{action=\"passed\"} %" PRIu64 "\n",
		dropped, passed);
}

static void
poll_cb(void *arg, uint64_t now_tsc)
{
	sky_cluster_poll(arg);
}

int
sky_cluster_register(struct sky_cluster *c)
{
	int rc;

	rc = sky_ctl_register("cluster status", "",
			      "members, leases, the beam table and owners, revisions applied", 0,
			      cmd_status, c);
	if (rc == 0)
		rc = sky_ctl_register("cluster import", "JOURNAL",
				      "store a single node's journal (its changes) in etcd", 0,
				      cmd_import, c);
	if (rc == 0)
		rc = sky_metrics_register("cluster", metrics, c);
	if (rc == 0)
		rc = sky_periodic_register("cluster", POLL_PERIOD_US, poll_cb, c);
	if (rc != 0)
		return rc;
	sky_ctl_store_hook(store, c);
	return 0;
}
