/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fair use over the control socket: commands (quota show|add|reset|set|import|top|plans|
 * save), the `subscriber show` extension, the periodic fold and save, the state part that
 * keeps `journal compact` from dropping quota changes the usage file does not hold yet,
 * telemetry /skygate/quota and Prometheus metrics.
 *
 * Journaled quota changes carry a sequence number (the last word, seq=N, added when
 * journaled); the usage file records the last one it holds, and a replayed record the file
 * already holds is skipped, so a top-up is applied once whether the crash came before or
 * after the file was written.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_telemetry.h>

#include "skygate/control.h"
#include "skygate/file.h"
#include "skygate/runtime.h"

#include "quota_priv.h"

static struct sky_quota *tel_q;
static const char *const plan_keys[] = {"allowance", NULL};

static void
utc_str(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, n, "?");
	else
		strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
period_str(const struct sky_quota_plan *qp, char *buf, size_t n)
{
	if (qp->period == SKY_QUOTA_DAILY)
		snprintf(buf, n, "daily");
	else if (qp->period == SKY_QUOTA_EVERY)
		snprintf(buf, n, "every %ud", qp->days);
	else
		snprintf(buf, n, "monthly@%u", qp->day);
}

static json_t *
usage_json(const struct sky_quota *q, const struct sky_sub_info *in,
	   const struct sky_quota_usage *u)
{
	const struct sky_quota_plan *qp = &q->qp[in->plan];
	uint64_t total = u->allowance_bytes + u->credit_bytes;
	char ps[40], pe[40], per[24], anc[16], share[24];

	utc_str(u->period_start, ps, sizeof(ps));
	utc_str(u->period_end, pe, sizeof(pe));
	period_str(qp, per, sizeof(per));
	quota_date_str(u->anchor_day, anc, sizeof(anc));
	snprintf(share, sizeof(share), "%u.%u%%", u->d.used_ppm / 10000,
		 u->d.used_ppm % 10000 / 1000);
	return json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:s, s:s, s:s, s:s, "
			 "s:I, s:I, s:s, s:i, s:I, s:b}",
			 "id", (json_int_t)in->id, "plan", sky_subs_plan(q->subs, in->plan).name,
			 "effective_plan", sky_subs_plan(q->subs, (unsigned int)u->eff_plan).name,
			 "state", sky_quota_state_name(u->d.state), "used_bytes",
			 (json_int_t)u->used_bytes, "credit_bytes", (json_int_t)u->credit_bytes,
			 "allowance_bytes", (json_int_t)u->allowance_bytes, "remaining_bytes",
			 (json_int_t)(u->used_bytes < total ? total - u->used_bytes : 0),
			 "used_share", share, "used_ppm", (json_int_t)u->d.used_ppm, "period", per,
			 "timezone", qp->tz, "period_start", ps, "period_end", pe,
			 "period_start_unix", (json_int_t)u->period_start, "period_end_unix",
			 (json_int_t)u->period_end, "anchor", anc, "grade", (int)u->d.grade,
			 "rate_factor_ppm", (json_int_t)u->d.factor_ppm, "peak", u->d.peak);
}

/* the subscriber a quota change is for: known, on a plan with an allowance; 0, or -1 with
 * the call failed naming which */
static int
allowance_sub(const struct sky_quota *q, struct sky_ctl_call *call, uint32_t id,
	      struct sky_sub_info *in)
{
	if (sky_subs_get(q->subs, id, in) < 0)
		return sky_ctl_fail(call, "no subscriber with id %u", id);
	if (!q->qp[in->plan].on)
		return sky_ctl_fail(call, "subscriber %u: plan '%s' has no allowance", id,
				    sky_subs_plan(q->subs, in->plan).name);
	return 0;
}

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	struct sky_sub_info in;
	struct sky_quota_usage u;
	uint32_t id;
	int rc;

	if (argc != 1)
		return sky_ctl_fail(call, "usage: quota show SUBSCRIBER_ID");
	if (sky_subs_parse_id(argv[0], &id) < 0)
		return sky_ctl_fail(call, "'%s': expected a subscriber id 1..4294967295", argv[0]);
	if (sky_subs_get(q->subs, id, &in) < 0)
		return sky_ctl_fail(call, "no subscriber with id %u", id);
	sky_quota_fold(q, quota_now());
	rc = sky_quota_usage(q, id, &u);
	if (rc == -ENODATA)
		return sky_ctl_fail(call, "subscriber %u: plan '%s' has no allowance", id,
				    sky_subs_plan(q->subs, in.plan).name);
	if (rc < 0)
		return sky_ctl_fail(call, "no subscriber with id %u", id);
	*result = usage_json(q, &in, &u);
	return 0;
}

/*
 * The journal's sequence word: strip a trailing seq=N (only the journal writes it); on
 * replay, *skip when the usage file already holds the change; else journal the request
 * with seq=N appended. 0, or -1 with the call failed.
 */
static int
journal_seq(struct sky_quota *q, int *argc, char **argv, struct sky_ctl_call *call, uint64_t *seq,
	    bool *skip)
{
	const char *w[SKY_CTL_MAX_ARGS];
	char word[40];
	int n = 0;

	*skip = false;
	*seq = 0;
	if (*argc > 0 && strncmp(argv[*argc - 1], "seq=", 4) == 0) {
		if (!call->replay)
			return sky_ctl_fail(call, "'%s': seq= is written by the journal only",
					    argv[*argc - 1]);
		if (sky_parse_u64(argv[*argc - 1] + 4, 1, UINT64_MAX, seq) < 0)
			return sky_ctl_fail(call, "'%s': bad sequence number", argv[*argc - 1]);
		(*argc)--;
		*skip = *seq <= q->seq;
		return 0;
	}
	if (call->replay)
		return 0; /* a record written by hand: applied */
	*seq = q->seq + 1;
	if (call->argc >= SKY_CTL_MAX_ARGS)
		return sky_ctl_fail(call, "too many words");
	for (int i = 0; i < call->argc; i++)
		w[n++] = call->argv[i];
	snprintf(word, sizeof(word), "seq=%" PRIu64, *seq);
	w[n++] = word;
	if (sky_ctl_journal_as(call, n, w) < 0)
		return sky_ctl_fail(call, "out of memory");
	return 0;
}

static void
seq_done(struct sky_quota *q, uint64_t seq)
{
	if (seq > q->seq)
		q->seq = seq;
}

static int
cmd_add(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	struct sky_quota_usage u;
	struct sky_sub_info in;
	char err[256];
	uint64_t bytes, seq;
	uint32_t id;
	bool skip;

	if (journal_seq(q, &argc, argv, call, &seq, &skip) < 0)
		return -1;
	if (argc != 2)
		return sky_ctl_fail(call, "usage: quota add SUBSCRIBER_ID SIZE (e.g. 10GB)");
	if (sky_subs_parse_id(argv[0], &id) < 0)
		return sky_ctl_fail(call, "'%s': expected a subscriber id 1..4294967295", argv[0]);
	if (sky_parse_size(argv[1], &bytes) < 0 || bytes == 0 || bytes > (1ULL << 60))
		return sky_ctl_fail(call, "'%s': expected a size > 0 (e.g. 10GB, 500MB)", argv[1]);
	if (allowance_sub(q, call, id, &in) < 0)
		return -1;
	if (!skip) {
		if (sky_ctl_commit(call) != 0)
			return -1;
		if (quota_topup(q, id, bytes, quota_now(), err, sizeof(err)) < 0)
			return sky_ctl_fail(call, "%s", err);
		seq_done(q, seq);
		sky_audit(call->uid, "quota: subscriber %u topped up by %" PRIu64 " bytes", id,
			  bytes);
	}
	sky_quota_usage(q, id, &u);
	*result = usage_json(q, &in, &u);
	return 0;
}

static int
cmd_reset(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	struct sky_quota_usage u;
	struct sky_sub_info in;
	char err[256];
	uint64_t seq;
	uint32_t id;
	bool skip;

	if (journal_seq(q, &argc, argv, call, &seq, &skip) < 0)
		return -1;
	if (argc != 1)
		return sky_ctl_fail(call, "usage: quota reset SUBSCRIBER_ID");
	if (sky_subs_parse_id(argv[0], &id) < 0)
		return sky_ctl_fail(call, "'%s': expected a subscriber id 1..4294967295", argv[0]);
	if (allowance_sub(q, call, id, &in) < 0)
		return -1;
	if (!skip) {
		if (sky_ctl_commit(call) != 0)
			return -1;
		if (quota_reset(q, id, quota_now(), err, sizeof(err)) < 0)
			return sky_ctl_fail(call, "%s", err);
		seq_done(q, seq);
		sky_audit(call->uid, "quota: usage of subscriber %u reset", id);
	}
	sky_quota_usage(q, id, &u);
	*result = usage_json(q, &in, &u);
	return 0;
}

struct set_args {
	bool has_used, has_credit, has_anchor;
	uint64_t used, credit;
	int32_t anchor;
};

/* key=value words of `quota set` (and of an import row) */
static int
parse_set(const char *a, struct set_args *sa, char *err, size_t errlen)
{
	const char *eq = strchr(a, '=');

	if (eq == NULL) {
		snprintf(err, errlen, "'%s': expected key=value (used, credit, anchor)", a);
		return -1;
	}
	if ((size_t)(eq - a) == 4 && strncmp(a, "used", 4) == 0) {
		if (sky_parse_size(eq + 1, &sa->used) < 0 || sa->used > (1ULL << 60)) {
			snprintf(err, errlen, "'%s': expected a size (e.g. 12GB, 0)", a);
			return -1;
		}
		sa->has_used = true;
	} else if ((size_t)(eq - a) == 6 && strncmp(a, "credit", 6) == 0) {
		if (sky_parse_size(eq + 1, &sa->credit) < 0 || sa->credit > (1ULL << 60)) {
			snprintf(err, errlen, "'%s': expected a size (e.g. 10GB, 0)", a);
			return -1;
		}
		sa->has_credit = true;
	} else if ((size_t)(eq - a) == 6 && strncmp(a, "anchor", 6) == 0) {
		if (sky_quota_parse_date(eq + 1, &sa->anchor) < 0) {
			snprintf(err, errlen, "'%s': expected a date YYYY-MM-DD", a);
			return -1;
		}
		sa->has_anchor = true;
	} else {
		snprintf(err, errlen, "'%s': unknown key (used, credit, anchor)", a);
		return -1;
	}
	return 0;
}

static int
cmd_set(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	struct sky_quota_usage u;
	struct sky_sub_info in;
	struct set_args sa = {0};
	char err[256];
	uint64_t seq;
	uint32_t id;
	bool skip;

	if (journal_seq(q, &argc, argv, call, &seq, &skip) < 0)
		return -1;
	if (argc < 2)
		return sky_ctl_fail(call, "usage: quota set SUBSCRIBER_ID used=SIZE credit=SIZE "
					  "anchor=YYYY-MM-DD (one or more)");
	if (sky_subs_parse_id(argv[0], &id) < 0)
		return sky_ctl_fail(call, "'%s': expected a subscriber id 1..4294967295", argv[0]);
	for (int i = 1; i < argc; i++)
		if (parse_set(argv[i], &sa, err, sizeof(err)) < 0)
			return sky_ctl_fail(call, "%s", err);
	if (allowance_sub(q, call, id, &in) < 0)
		return -1;
	if (sa.has_anchor && sa.anchor > (int32_t)(quota_now() / 86400 + 1))
		return sky_ctl_fail(call, "subscriber %u: anchor date in the future", id);
	if (!skip) {
		if (sky_ctl_commit(call) != 0)
			return -1;
		if (quota_set(q, id, sa.has_used ? &sa.used : NULL,
			      sa.has_credit ? &sa.credit : NULL, sa.has_anchor ? &sa.anchor : NULL,
			      quota_now(), err, sizeof(err)) < 0)
			return sky_ctl_fail(call, "%s", err);
		seq_done(q, seq);
		sky_audit(call->uid, "quota: usage of subscriber %u set", id);
	}
	sky_quota_usage(q, id, &u);
	*result = usage_json(q, &in, &u);
	return 0;
}

/* --- import: a CSV `id,used[,credit][,anchor]` --- */

struct import_row {
	uint32_t id;
	struct set_args sa;
};

#define IMPORT_MAX_BYTES (256u * 1024 * 1024)

/* the next comma-separated field of line [p, end): copied into out (spaces trimmed) */
static const char *
field(const char *p, const char *end, char *out, size_t n)
{
	const char *c = memchr(p, ',', (size_t)(end - p));
	const char *e = c != NULL ? c : end;
	size_t l;

	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	l = (size_t)(e - p) < n - 1 ? (size_t)(e - p) : n - 1;
	memcpy(out, p, l);
	out[l] = '\0';
	return c != NULL ? c + 1 : NULL;
}

static int
import_parse(struct sky_quota *q, const char *fname, const char *buf, size_t len,
	     struct import_row **rows, size_t *n_rows, char *err, size_t errlen)
{
	static const char *const cols[] = {"id", "used", "credit", "anchor"};
	const char *p = buf, *end = buf + len;
	unsigned int line = 0, ncol = 0;
	size_t n = 0, cap = 0;
	struct import_row *r = NULL;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *f = p;
		char v[4][64], msg[200];
		unsigned int k = 0;

		line++;
		p = nl != NULL ? nl + 1 : end;
		if (le == f || *f == '#' || (le - f == 1 && *f == '\r'))
			continue;
		while (f != NULL && k < 4)
			f = field(f, le, v[k++], sizeof(v[0]));
		if (f != NULL) {
			snprintf(err, errlen, "%s:%u: more than 4 fields", fname, line);
			goto fail;
		}
		if (ncol == 0) { /* the header */
			for (unsigned int i = 0; i < k; i++)
				if (strcmp(v[i], cols[i]) != 0) {
					snprintf(err, errlen,
						 "%s:%u: header: expected "
						 "id,used[,credit][,anchor], "
						 "column %u is '%s'",
						 fname, line, i + 1, v[i]);
					goto fail;
				}
			if (k < 2) {
				snprintf(err, errlen,
					 "%s:%u: header: expected id,used[,credit][,anchor]", fname,
					 line);
				goto fail;
			}
			ncol = k;
			continue;
		}
		if (k != ncol) {
			snprintf(err, errlen, "%s:%u: %u fields, the header has %u", fname, line, k,
				 ncol);
			goto fail;
		}
		if (n == cap) {
			struct import_row *x = realloc(r, (cap ? cap * 2 : 256) * sizeof(*r));

			if (x == NULL) {
				snprintf(err, errlen, "%s: out of memory", fname);
				goto fail;
			}
			r = x;
			cap = cap ? cap * 2 : 256;
		}
		memset(&r[n], 0, sizeof(r[n]));
		if (sky_subs_parse_id(v[0], &r[n].id) < 0) {
			snprintf(err, errlen, "%s:%u: id '%s': expected 1..4294967295", fname, line,
				 v[0]);
			goto fail;
		}
		for (unsigned int i = 1; i < k; i++) {
			char kv[80];

			if (v[i][0] == '\0' && i >= 2)
				continue; /* optional columns may be empty */
			snprintf(kv, sizeof(kv), "%s=%s", cols[i], v[i]);
			if (parse_set(kv, &r[n].sa, msg, sizeof(msg)) < 0) {
				snprintf(err, errlen, "%s:%u: %s", fname, line, msg);
				goto fail;
			}
		}
		{
			struct sky_sub_info in;

			if (sky_subs_get(q->subs, r[n].id, &in) < 0) {
				snprintf(err, errlen, "%s:%u: no subscriber with id %u", fname,
					 line, r[n].id);
				goto fail;
			}
			if (!q->qp[in.plan].on) {
				snprintf(err, errlen,
					 "%s:%u: subscriber %u: plan '%s' has no allowance", fname,
					 line, r[n].id, sky_subs_plan(q->subs, in.plan).name);
				goto fail;
			}
		}
		n++;
	}
	if (ncol == 0) {
		snprintf(err, errlen, "%s: no header line (id,used[,credit][,anchor])", fname);
		goto fail;
	}
	*rows = r;
	*n_rows = n;
	return 0;
fail:
	free(r);
	return -1;
}

static int
write_copy(const char *path, const void *buf, size_t len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "wxe");
	int rc = 0;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fwrite(buf, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
	}
	return rc;
}

static int
cmd_import(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	const char *dir = sky_ctl_state_dir();
	struct import_row *rows = NULL;
	size_t n_rows = 0, len = 0;
	void *buf = NULL;
	char err[512], copy[4200] = "", word[40];
	uint64_t seq;
	bool skip;
	int64_t now = quota_now();

	if (journal_seq(q, &argc, argv, call, &seq, &skip) < 0)
		return -1;
	if (argc != 1 || argv[0][0] == '\0')
		return sky_ctl_fail(call,
				    "usage: quota import FILE.csv (id,used[,credit][,anchor])");
	if (sky_file_read(argv[0], IMPORT_MAX_BYTES, 0, &buf, &len, err, sizeof(err)) < 0)
		return sky_ctl_fail(call, "%s", err);
	if (import_parse(q, argv[0], buf, len, &rows, &n_rows, err, sizeof(err)) < 0) {
		free(buf);
		return sky_ctl_fail(call, "%s", err);
	}
	if (!skip && dir != NULL && !call->replay) {
		/* the journal replays the copy kept in the state directory */
		const char *w[] = {"quota", "import", copy, word};

		snprintf(copy, sizeof(copy), "%s/usage-import-%lld-%" PRIu64 ".csv", dir,
			 (long long)now, seq);
		snprintf(word, sizeof(word), "seq=%" PRIu64, seq);
		if (write_copy(copy, buf, len, err, sizeof(err)) < 0) {
			free(buf);
			free(rows);
			return sky_ctl_fail(call, "%s", err);
		}
		sky_ctl_journal_as(call, 4, w);
	}
	free(buf);
	if (!skip) {
		if (sky_ctl_commit(call) != 0) {
			if (copy[0] != '\0')
				unlink(copy);
			free(rows);
			return -1;
		}
		for (size_t i = 0; i < n_rows; i++) {
			const struct set_args *sa = &rows[i].sa;

			/* checked above: the subscriber exists and has an allowance */
			quota_set(q, rows[i].id, sa->has_used ? &sa->used : NULL,
				  sa->has_credit ? &sa->credit : NULL,
				  sa->has_anchor ? &sa->anchor : NULL, now, err, sizeof(err));
		}
		seq_done(q, seq);
		sky_audit(call->uid, "quota: usage of %zu subscribers imported from %s", n_rows,
			  argv[0]);
	}
	free(rows);
	*result = json_pack("{s:I, s:b}", "imported", (json_int_t)n_rows, "skipped", skip);
	return 0;
}

static int
cmd_top(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	uint64_t size = 10;
	uint32_t best[100];
	unsigned int n = 0;
	json_t *a;

	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], "size=", 5) != 0 ||
		    sky_parse_u64(argv[i] + 5, 1, 100, &size) < 0)
			return sky_ctl_fail(call, "'%s': expected size=N (1..100)", argv[i]);
	sky_quota_fold(q, quota_now());
	for (uint32_t i = 0; i < q->cap; i++) {
		const struct quota_sub *s = &q->sub[i];
		unsigned int pos;

		if (s->id == 0 || !s->tracked || s->used == 0)
			continue;
		if (n == size && s->used <= q->sub[best[n - 1]].used)
			continue;
		pos = n < size ? n++ : n - 1;
		while (pos > 0 && q->sub[best[pos - 1]].used < s->used) {
			best[pos] = best[pos - 1];
			pos--;
		}
		best[pos] = i;
	}
	a = json_array();
	for (unsigned int k = 0; k < n; k++) {
		struct sky_sub_info in;
		struct sky_quota_usage u;

		if (sky_subs_get(q->subs, q->sub[best[k]].id, &in) == 0 &&
		    sky_quota_usage(q, in.id, &u) == 0)
			json_array_append_new(a, usage_json(q, &in, &u));
	}
	*result = json_pack("{s:o}", "subscribers", a);
	return 0;
}

static json_t *
plan_terms_json(const struct sky_quota *q, unsigned int i)
{
	const struct sky_quota_plan *qp = &q->qp[i];
	json_t *o, *w = json_array(), *cls = json_array(), *over = json_object(),
		   *cnt = json_array();
	char per[24], txt[32];

	period_str(qp, per, sizeof(per));
	for (unsigned int k = 0; k < qp->n_windows; k++) {
		snprintf(txt, sizeof(txt), "%02u:%02u-%02u:%02u", qp->uncounted[k].start_min / 60,
			 qp->uncounted[k].start_min % 60, qp->uncounted[k].end_min / 60,
			 qp->uncounted[k].end_min % 60);
		json_array_append_new(w, json_string(txt));
	}
	for (unsigned int c = 0; c < sky_subs_n_classes(q->subs); c++)
		if (qp->uncounted_classes & (1u << c))
			json_array_append_new(cls, json_string(sky_subs_class(q->subs, c).name));
	if (qp->count_up)
		json_array_append_new(cnt, json_string("up"));
	if (qp->count_down)
		json_array_append_new(cnt, json_string("down"));
	if (qp->throttle_plan >= 0) {
		json_object_set_new(
			over, "throttle_plan",
			json_string(sky_subs_plan(q->subs, (unsigned int)qp->throttle_plan).name));
	} else if (qp->n_grades > 0) {
		json_t *g = json_array();

		for (unsigned int k = 0; k < qp->n_grades; k++)
			json_array_append_new(
				g,
				json_pack("{s:I, s:I, s:s}", "over_ppm",
					  (json_int_t)qp->grades[k].over_ppm, "factor_ppm",
					  (json_int_t)qp->grades[k].factor_ppm, "plan",
					  sky_subs_plan(q->subs, (unsigned int)q->grade_plan[i][k])
						  .name));
		json_object_set_new(over, "graded", g);
	}
	o = json_pack("{s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:o}", "plan",
		      sky_subs_plan(q->subs, i).name, "allowance_bytes",
		      (json_int_t)qp->allowance_bytes, "period", per, "timezone", qp->tz, "count",
		      cnt, "uncounted", w, "uncounted_classes", cls, "over", over);
	if (qp->peak) {
		snprintf(txt, sizeof(txt), "%02u:%02u-%02u:%02u", qp->peak_window.start_min / 60,
			 qp->peak_window.start_min % 60, qp->peak_window.end_min / 60,
			 qp->peak_window.end_min % 60);
		json_object_set_new(
			o, "peak",
			json_pack("{s:s, s:I, s:I, s:s}", "window", txt, "under_ppm",
				  (json_int_t)qp->peak_under_ppm, "weight",
				  (json_int_t)qp->peak_weight, "plan",
				  sky_subs_plan(q->subs, (unsigned int)q->peak_plan[i]).name));
	}
	return o;
}

static int
cmd_plans(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	json_t *a = json_array();

	(void)argv;
	if (argc != 0) {
		json_decref(a);
		return sky_ctl_fail(call, "usage: quota plans");
	}
	sky_quota_fold(q, quota_now()); /* the aggregates of now */
	for (unsigned int i = 0; i < q->n_plans; i++) {
		const struct quota_agg *g = &q->agg[i];
		json_t *o;

		if (!q->qp[i].on)
			continue;
		o = plan_terms_json(q, i);
		json_object_set_new(o, "now",
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "subscribers",
					      (json_int_t)g->subs, "under", (json_int_t)g->under,
					      "over", (json_int_t)g->over, "throttled",
					      (json_int_t)g->throttled, "used_bytes",
					      (json_int_t)g->used, "credit_bytes",
					      (json_int_t)g->credit));
		json_array_append_new(a, o);
	}
	{
		json_t *ev = json_object();

		for (unsigned int e = 0; e < QUOTA_EV_MAX; e++)
			json_object_set_new(ev, quota_event_names[e],
					    json_integer((json_int_t)__atomic_load_n(
						    &q->events[e], __ATOMIC_RELAXED)));
		json_object_set_new(*result = json_object(), "events", ev);
	}
	json_object_update_new(
		*result,
		json_pack("{s:o, s:I, s:I, s:s, s:I, s:I}", "plans", a, "save_interval_ms",
			  (json_int_t)(q->cfg.save_interval_us / 1000), "loss_bound_ms",
			  (json_int_t)((q->cfg.save_interval_us + QUOTA_FOLD_US) / 1000), "file",
			  q->path, "seq", (json_int_t)q->seq, "parked", (json_int_t)q->n_parked));
	return 0;
}

static int
cmd_save(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_quota *q = arg;
	char err[512];

	(void)argv;
	if (argc != 0)
		return sky_ctl_fail(call, "usage: quota save");
	if (q->path[0] == '\0')
		return sky_ctl_fail(call, "no usage file (no state.dir, or no plan has an "
					  "allowance)");
	if (quota_save(q, err, sizeof(err)) < 0)
		return sky_ctl_fail(call, "%s", err);
	*result = json_pack("{s:s, s:I}", "file", q->path, "seq", (json_int_t)q->seq);
	return 0;
}

/* --- extensions, periodic tasks, state part --- */

static void
ext_sub_show(void *arg, int argc, char **argv, json_t *result)
{
	struct sky_quota *q = arg;
	struct sky_sub_info in;
	struct sky_quota_usage u;
	uint32_t id;

	if (argc < 1 || sky_subs_parse_id(argv[0], &id) < 0 || sky_subs_get(q->subs, id, &in) < 0 ||
	    sky_quota_usage(q, id, &u) < 0)
		return;
	json_object_set_new(result, "quota", usage_json(q, &in, &u));
}

/* `subscriber top by=usage`: bytes counted this period (0: no allowance, not listed) */
static uint64_t
top_usage(void *arg, uint32_t idx)
{
	const struct sky_quota *q = arg;

	return idx < q->cap && q->sub[idx].tracked ? q->sub[idx].used : 0;
}

static void
periodic_fold(void *arg, uint64_t now_tsc)
{
	(void)now_tsc;
	sky_quota_fold(arg, quota_now());
}

static void
periodic_save(void *arg, uint64_t now_tsc)
{
	struct sky_quota *q = arg;
	char err[512], prev[sizeof(q->last_save_err)];

	(void)now_tsc;
	snprintf(prev, sizeof(prev), "%s", q->last_save_err);
	if (quota_save(q, err, sizeof(err)) < 0 && strcmp(prev, err) != 0)
		SKY_LOG(ERR, "quota: usage not saved: %s", err);
}

/* the state: allowances (`plan set NAME allowance=` changes them) and the last journaled
 * quota change the usage file holds; usage itself lives in the usage file */
static int
state_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	struct sky_quota *q = arg;
	json_t *a = json_object();

	(void)err;
	(void)errlen;
	for (unsigned int i = 0; i < q->n_plans; i++)
		if (q->qp[i].on)
			json_object_set_new(a, sky_subs_plan(q->subs, i).name,
					    json_integer((json_int_t)q->qp[i].allowance_bytes));
	*part = json_pack("{s:I, s:o}", "seq", (json_int_t)q->seq, "allowance_bytes", a);
	return *part != NULL ? 0 : -1;
}

/* a compaction drops the journal's records: allowances changed at runtime are written as
 * commands, and the usage file must hold the quota changes first */
static int
state_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	struct sky_quota *q = arg;

	for (unsigned int i = 0; i < q->n_plans; i++) {
		uint64_t now = q->qp[i].on ? q->qp[i].allowance_bytes : 0;
		char v[48];
		const char *w[] = {"plan", "set", sky_subs_plan(q->subs, i).name, v};

		if (now == q->cfg_allowance[i])
			continue;
		if (now == 0)
			snprintf(v, sizeof(v), "allowance=none");
		else
			snprintf(v, sizeof(v), "allowance=%" PRIu64 "B", now);
		if (sky_ctl_snapshot_add(snap, 4, w) < 0) {
			snprintf(err, errlen, "quota: out of memory");
			return -1;
		}
	}
	return quota_save(q, err, errlen);
}

static int
plan_key(void *arg, unsigned int plan, const char *key, const char *value, int apply, char *err,
	 size_t errlen)
{
	(void)key; /* the one key given to the hook */
	return quota_plan_allowance(arg, plan, value, apply, err, errlen);
}

/* --- telemetry and metrics --- */

static int
tel_quota(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sky_quota *q = tel_q;
	struct rte_tel_data *plans;

	(void)cmd;
	(void)params;
	if (q == NULL)
		return -1;
	rte_tel_data_start_dict(d);
	plans = rte_tel_data_alloc();
	if (plans == NULL)
		return -1;
	rte_tel_data_start_dict(plans);
	pthread_mutex_lock(&q->tel_lock);
	rte_tel_data_add_dict_u64(d, "folds", q->folds);
	rte_tel_data_add_dict_u64(d, "fold_us_last", q->fold_us_last);
	rte_tel_data_add_dict_u64(d, "saves", q->saves);
	rte_tel_data_add_dict_u64(d, "save_errors", q->save_errors);
	rte_tel_data_add_dict_u64(d, "save_us_last", q->save_us_last);
	rte_tel_data_add_dict_u64(d, "last_save_unix", (uint64_t)q->last_save);
	for (unsigned int e = 0; e < QUOTA_EV_MAX; e++)
		rte_tel_data_add_dict_u64(d, quota_event_names[e],
					  __atomic_load_n(&q->events[e], __ATOMIC_RELAXED));
	for (unsigned int i = 0; i < q->n_plans; i++) {
		char k[SKY_NAME_MAX + 16];

		if (!q->qp[i].on)
			continue;
		snprintf(k, sizeof(k), "%s.subscribers", sky_subs_plan(q->subs, i).name);
		rte_tel_data_add_dict_u64(plans, k, q->agg[i].subs);
		snprintf(k, sizeof(k), "%s.throttled", sky_subs_plan(q->subs, i).name);
		rte_tel_data_add_dict_u64(plans, k, q->agg[i].throttled);
		snprintf(k, sizeof(k), "%s.over", sky_subs_plan(q->subs, i).name);
		rte_tel_data_add_dict_u64(plans, k, q->agg[i].over);
		snprintf(k, sizeof(k), "%s.used_bytes", sky_subs_plan(q->subs, i).name);
		rte_tel_data_add_dict_u64(plans, k, q->agg[i].used);
	}
	pthread_mutex_unlock(&q->tel_lock);
	rte_tel_data_add_dict_container(d, "plans", plans, 0);
	return 0;
}

/* one gauge per plan with an allowance: name{plan="..."} v[plan] */
static void
plan_gauge(FILE *out, const struct sky_quota *q, const char *name, const char *help,
	   const uint64_t *v)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	for (unsigned int i = 0; i < q->n_plans; i++)
		if (q->qp[i].on)
			fprintf(out, "%s{plan=\"%s\"} %" PRIu64 "\n", name,
				sky_subs_plan(q->subs, i).name, v[i]);
}

static void
metrics(void *arg, FILE *out)
{
	struct sky_quota *q = arg;
	static const char *const st[] = {"under", "over", "throttled"};
	uint64_t used[SKY_MAX_PLANS], credit[SKY_MAX_PLANS], allowance[SKY_MAX_PLANS];

	if (!q->any)
		return;
	fprintf(out, "# HELP skygate_quota_subscribers Subscribers with an allowance, by plan and "
		     "state.\n# TYPE skygate_quota_subscribers gauge\n");
	for (unsigned int i = 0; i < q->n_plans; i++) {
		const struct quota_agg *a = &q->agg[i];
		const uint64_t v[3] = {a->under, a->over, a->throttled};

		if (!q->qp[i].on)
			continue;
		for (int k = 0; k < 3; k++)
			fprintf(out,
				"skygate_quota_subscribers{plan=\"%s\",state=\"%s\"} %" PRIu64 "\n",
				sky_subs_plan(q->subs, i).name, st[k], v[k]);
	}
	for (unsigned int i = 0; i < q->n_plans; i++) {
		used[i] = q->agg[i].used;
		credit[i] = q->agg[i].credit;
		allowance[i] = q->qp[i].allowance_bytes;
	}
	plan_gauge(out, q, "skygate_quota_used_bytes",
		   "Usage counted this period, summed per plan.", used);
	plan_gauge(out, q, "skygate_quota_credit_bytes", "Top-ups this period, summed per plan.",
		   credit);
	plan_gauge(out, q, "skygate_quota_allowance_bytes", "The plan's allowance per period.",
		   allowance);
	fprintf(out, "# HELP skygate_quota_events_total Fair-use events emitted, by type.\n"
		     "# TYPE skygate_quota_events_total counter\n");
	for (unsigned int e = 0; e < QUOTA_EV_MAX; e++)
		fprintf(out, "skygate_quota_events_total{type=\"%s\"} %" PRIu64 "\n",
			quota_event_names[e], __atomic_load_n(&q->events[e], __ATOMIC_RELAXED));
	fprintf(out,
		"# HELP skygate_quota_saves_total Usage file writes.\n"
		"# TYPE skygate_quota_saves_total counter\nskygate_quota_saves_total %" PRIu64 "\n"
		"# HELP skygate_quota_save_errors_total Usage file writes that failed.\n"
		"# TYPE skygate_quota_save_errors_total counter\n"
		"skygate_quota_save_errors_total %" PRIu64 "\n"
		"# HELP skygate_quota_last_save_timestamp_seconds Unix time of the last good "
		"usage file write.\n"
		"# TYPE skygate_quota_last_save_timestamp_seconds gauge\n"
		"skygate_quota_last_save_timestamp_seconds %lld\n"
		"# HELP skygate_quota_fold_seconds Duration of the last fold of the counters.\n"
		"# TYPE skygate_quota_fold_seconds gauge\nskygate_quota_fold_seconds %.6f\n",
		q->saves, q->save_errors, (long long)q->last_save, (double)q->fold_us_last / 1e6);
	if (!q->cfg.per_sub_metrics)
		return;
	fprintf(out, "# HELP skygate_quota_subscriber_used_bytes Usage counted this period "
		     "(quota.per_subscriber_metrics).\n"
		     "# TYPE skygate_quota_subscriber_used_bytes gauge\n");
	for (uint32_t i = 0; i < q->cap; i++)
		if (q->sub[i].id != 0 && q->sub[i].tracked)
			fprintf(out,
				"skygate_quota_subscriber_used_bytes{id=\"%u\",state=\"%s\"} "
				"%" PRIu64 "\n",
				q->sub[i].id, sky_quota_state_name(q->sub[i].d.state),
				q->sub[i].used);
}

/* the owner calls this on destroy: telemetry must not read a freed module */
static void
forget(struct sky_quota *q)
{
	if (tel_q == q)
		tel_q = NULL;
}

static const struct {
	const char *cmd, *usage, *help;
	unsigned int flags;
	sky_ctl_fn fn;
} cmds[] = {
	{"quota show", "SUBSCRIBER_ID", "a subscriber's usage, allowance, period and state", 0,
	 cmd_show},
	{"quota add", "SUBSCRIBER_ID SIZE", "top-up: SIZE more this period (effective at once)",
	 SKY_CTL_F_JOURNAL, cmd_add},
	{"quota reset", "SUBSCRIBER_ID", "usage and top-ups of this period back to zero",
	 SKY_CTL_F_JOURNAL, cmd_reset},
	{"quota set", "SUBSCRIBER_ID used=SIZE credit=SIZE anchor=YYYY-MM-DD",
	 "set usage, top-ups or the 4-weekly anchor date (migration)", SKY_CTL_F_JOURNAL, cmd_set},
	{"quota import", "FILE.csv",
	 "set the usage of many subscribers (id,used[,credit][,anchor])", SKY_CTL_F_JOURNAL,
	 cmd_import},
	{"quota top", "[size=N]", "the N subscribers with the most usage this period", 0, cmd_top},
	{"quota plans", "", "plans with an allowance, their terms and the usage file", 0,
	 cmd_plans},
	{"quota save", "", "write the usage file now", 0, cmd_save},
};

int
sky_quota_register(struct sky_quota *q)
{
	static bool tel_done;
	int rc;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		rc = sky_ctl_register(cmds[i].cmd, cmds[i].usage, cmds[i].help, cmds[i].flags,
				      cmds[i].fn, q);
		if (rc < 0) {
			SKY_LOG(ERR, "register '%s': %s", cmds[i].cmd, strerror(-rc));
			return rc;
		}
	}
	rc = sky_subs_listen(q->subs, quota_listener, q);
	if (rc == 0)
		rc = sky_ctl_extend("subscriber show", ext_sub_show, q);
	if (rc == 0)
		rc = sky_subs_top_key(q->subs, "usage", top_usage, q);
	if (rc == 0)
		rc = sky_subs_plan_key_hook(q->subs, plan_keys, plan_key, q);
	/* both return at once while no plan has an allowance */
	if (rc == 0)
		rc = sky_periodic_register("quota fold", QUOTA_FOLD_US, periodic_fold, q);
	if (rc == 0)
		rc = sky_periodic_register("quota save", q->cfg.save_interval_us, periodic_save, q);
	if (rc == 0)
		rc = sky_ctl_state_register("quota", SKY_CTL_ORDER_SUBSCRIBERS + 5, state_dump,
					    state_snap, q);
	if (rc == 0)
		rc = sky_metrics_register("quota", metrics, q);
	if (rc < 0 && rc != -EEXIST)
		return rc;
	quota_adopt_all(q);
	tel_q = q;
	q->on_destroy = forget;
	if (!tel_done) {
		rte_telemetry_register_cmd("/skygate/quota", tel_quota,
					   "Fair use: fold and save figures, events, per-plan "
					   "subscribers, throttled, usage");
		tel_done = true;
	}
	return 0;
}
