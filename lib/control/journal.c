/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The journal: a log of records of words, appended and fsync'd, walked in order at start.
 * Record format and durability are described in skygate/journal.h. Nothing here knows what
 * the words mean: the caller replays them (a function it hands to sky_journal_replay()) and
 * decides which records a rewrite keeps.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "skygate/control.h"
#include "skygate/journal.h"
#include "skygate/runtime.h"

#include "control_priv.h"

#define JOURNAL_NAME "journal"
#define RECORD_MAX (16u << 20) /* a record larger than this is corrupt */
#define HEADER_MAX 32

struct sky_journal {
	char *dir;
	char *path;
	int fd;		   /* -1 once broken */
	long size;	   /* bytes of intact records */
	int broken;	   /* a failed fsync, or a rewrite that could not reopen: appends fail
			    * until the journal is reopened */
	int batch;	   /* inside a group commit */
	int batch_records; /* appended and not yet fsync'd */
};

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static struct sky_journal *
open_fail(int rc)
{
	errno = -rc;
	return NULL;
}

struct sky_journal *
sky_journal_open(const char *dir, char *err, size_t errlen)
{
	struct sky_journal *j;
	struct stat st;
	int fd, rc, created = 0;

	if (dir == NULL || dir[0] == '\0') {
		snprintf(err, errlen, "journal: no state directory given");
		return open_fail(-EINVAL);
	}
	rc = sky_ctl_mkdirs(dir, 0750);
	if (rc != 0) {
		snprintf(err, errlen, "journal: cannot create state directory %s: %s", dir,
			 strerror(-rc));
		return open_fail(rc);
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->dir = strdup(dir)) == NULL ||
	    asprintf(&j->path, "%s/%s", dir, JOURNAL_NAME) < 0) {
		if (j != NULL)
			free(j->dir);
		free(j);
		snprintf(err, errlen, "journal: out of memory");
		return open_fail(-ENOMEM);
	}
	fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		created = fd >= 0;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "journal: cannot open %s: %s", j->path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "journal: %s is not a regular file", j->path);
		goto fail;
	}
	/* the file's name must survive a crash as well as its records */
	if (created && (rc = fsync_dir(dir)) != 0) {
		snprintf(err, errlen, "journal: cannot fsync directory %s: %s", dir, strerror(-rc));
		goto fail;
	}
	j->fd = fd;
	j->size = (long)st.st_size;
	return j;
fail:
	if (fd >= 0)
		close(fd);
	free(j->path);
	free(j->dir);
	free(j);
	return open_fail(rc);
}

void
sky_journal_close(struct sky_journal *j)
{
	if (j == NULL)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j->dir);
	free(j);
}

const char *
sky_journal_dir(const struct sky_journal *j)
{
	return j->dir;
}

const char *
sky_journal_path(const struct sky_journal *j)
{
	return j->path;
}

long
sky_journal_size(const struct sky_journal *j)
{
	return j->size;
}

int
sky_journal_is_broken(const struct sky_journal *j)
{
	return j->broken;
}

/* Stop appending: the file on disk can no longer be trusted to hold what we wrote. */
static void
set_broken(struct sky_journal *j)
{
	close(j->fd);
	j->fd = -1;
	j->broken = 1;
}

void
sky_journal_batch_begin(struct sky_journal *j)
{
	j->batch = 1;
	j->batch_records = 0;
}

int
sky_journal_batch_end(struct sky_journal *j)
{
	int rc = 0;

	j->batch = 0;
	if (j->batch_records == 0 || j->fd < 0)
		return 0;
	if (fsync(j->fd) != 0) {
		rc = -errno;
		/* the replies are queued already; refuse every later change so the operator
		 * learns at once that the journal is not durable */
		SKY_LOG(CRIT,
			"journal %s: fsync failed: %s: the last %d changes may be lost at "
			"restart; further changes are refused until skygate restarts",
			j->path, strerror(-rc), j->batch_records);
		set_broken(j);
		sky_ctl_counters[SKY_CTL_C_journal_errors]++;
	}
	j->batch_records = 0;
	return rc;
}

int
sky_journal_append(struct sky_journal *j, int argc, char *const *argv, uid_t uid)
{
	char ts[32], *json = NULL, *rec = NULL;
	json_t *o = NULL, *a;
	struct tm tm;
	time_t now = time(NULL);
	size_t jlen;
	int n, rc;

	if (j->fd < 0)
		return j->broken ? -EIO : -ENOTCONN;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	a = json_array();
	o = json_pack("{s:s, s:I, s:o}", "time", ts, "uid", (json_int_t)uid, "argv", a);
	if (o == NULL)
		return -ENOMEM;
	for (int i = 0; i < argc; i++)
		if (json_array_append_new(a, json_string(argv[i])) != 0) {
			rc = -EINVAL; /* not UTF-8: cannot happen for words that came as JSON */
			goto out;
		}
	json = json_dumps(o, JSON_COMPACT);
	if (json == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	jlen = strlen(json);
	n = asprintf(&rec, "SKYJ %zu %08" PRIx32 "\n%s\n", jlen, sky_ctl_crc32(0, json, jlen),
		     json);
	if (n < 0) {
		rec = NULL;
		rc = -ENOMEM;
		goto out;
	}
	rc = write_all(j->fd, rec, (size_t)n);
	if (rc == 0 && !j->batch && fsync(j->fd) != 0)
		rc = -errno;
	if (rc == 0 && j->batch)
		j->batch_records++;
	if (rc != 0) {
		/* do not leave a torn record for later appends to follow */
		if (ftruncate(j->fd, j->size) != 0)
			SKY_LOG(ERR, "journal %s: cannot cut a failed append: %s", j->path,
				strerror(errno));
	} else {
		j->size += n;
	}
out:
	if (rc == 0)
		sky_ctl_counters[SKY_CTL_C_journal_records]++;
	else
		sky_ctl_counters[SKY_CTL_C_journal_errors]++;
	free(rec);
	free(json);
	json_decref(o);
	return rc;
}

/* The whole file into memory; with intact_only, no more than the known intact bytes. */
static int
read_journal(const struct sky_journal *j, int intact_only, char **bufp, size_t *lenp, char *err,
	     size_t errlen)
{
	int fd;
	struct stat st;
	char *buf;
	size_t len = 0;

	if (j->fd < 0) {
		snprintf(err, errlen, "journal: not open");
		return -1;
	}
	fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "journal: cannot read %s: %s", j->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "journal: %s: out of memory (%lld bytes)", j->path,
			 (long long)st.st_size);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "journal: cannot read %s: %s", j->path,
				 strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (intact_only && j->size >= 0 && (size_t)j->size < len)
		len = (size_t)j->size;
	*bufp = buf;
	*lenp = len;
	return 0;
}

/*
 * Check the record at buf[off..len): 1 intact (*end, *doc set), 0 incomplete (runs past
 * the end: torn), -1 corrupt (why set).
 */
static int
parse_record(const char *buf, size_t len, size_t off, size_t *end, json_t **doc, const char **why)
{
	const char *p = buf + off, *nl;
	size_t avail = len - off, hlen, rlen;
	unsigned long long v;
	uint32_t crc;
	char *q;
	json_t *o, *a, *w;
	size_t i;

	*end = 0;
	nl = memchr(p, '\n', avail < HEADER_MAX ? avail : HEADER_MAX);
	if (nl == NULL) {
		*why = "header not terminated";
		return avail < HEADER_MAX ? 0 : -1;
	}
	hlen = (size_t)(nl - p) + 1;
	if (hlen < 5 || memcmp(p, "SKYJ ", 5) != 0) {
		*why = "bad header";
		return -1;
	}
	errno = 0;
	v = strtoull(p + 5, &q, 10);
	if (errno != 0 || q == p + 5 || *q != ' ' || v == 0 || v > RECORD_MAX) {
		*why = "bad length";
		return -1;
	}
	rlen = (size_t)v;
	for (i = 1; i <= 8; i++)
		if (!isxdigit((unsigned char)q[i]))
			break;
	if (i != 9 || q + 9 != nl) {
		*why = "bad CRC field";
		return -1;
	}
	errno = 0;
	v = strtoull(q + 1, &q, 16);
	if (errno != 0 || q != nl || v > UINT32_MAX) {
		*why = "bad CRC field";
		return -1;
	}
	crc = (uint32_t)v;
	if (hlen + rlen + 1 > avail) {
		*why = "record runs past the end of the file";
		return 0;
	}
	*end = off + hlen + rlen + 1;
	if (p[hlen + rlen] != '\n') {
		*why = "record not terminated";
		return -1;
	}
	if (sky_ctl_crc32(0, p + hlen, rlen) != crc) {
		*why = "CRC mismatch";
		return -1;
	}
	o = json_loadb(p + hlen, rlen, JSON_REJECT_DUPLICATES, NULL);
	a = json_object_get(o, "argv");
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > SKY_JOURNAL_MAX_WORDS) {
		json_decref(o);
		*why = "no argv";
		return -1;
	}
	json_array_foreach(a, i, w) if (!json_is_string(w))
	{
		json_decref(o);
		*why = "argv not strings";
		return -1;
	}
	*doc = o;
	return 1;
}

/* Hand an intact record's words to fn. */
static int
call_with(sky_journal_record_fn fn, void *ctx, json_t *doc, int n)
{
	const json_t *a = json_object_get(doc, "argv"), *w;
	char *words[SKY_JOURNAL_MAX_WORDS];
	struct sky_journal_record rec = {.n = n, .argv = words, .doc = doc};
	size_t i;

	json_array_foreach(a, i, w) words[i] = (char *)json_string_value(w);
	rec.argc = (int)json_array_size(a);
	return fn(ctx, &rec);
}

struct span {
	size_t off, end;
};

/* Where a walk over buf stopped, and what it saw. */
struct walk {
	size_t off;	    /* len, or the first record that is not intact */
	size_t end;	    /* parse_record's end for that record */
	int parsed;	    /* parse_record's result there (1: the walk reached len) */
	const char *why;    /* why that record is not intact */
	struct span *spans; /* the intact records, when asked for */
	int n_spans;
};

/*
 * Walk the intact records of buf[0..len) in order, calling fn (when not NULL) and noting
 * each record's bytes (when want_spans). Returns the number of records, fn's negative value,
 * or -ENOMEM.
 */
static int
walk(const char *buf, size_t len, sky_journal_record_fn fn, void *ctx, int want_spans,
     struct walk *w)
{
	int n = 0, cap = 0, rc;

	memset(w, 0, sizeof(*w));
	w->parsed = 1;
	while (w->off < len) {
		json_t *doc = NULL;

		w->parsed = parse_record(buf, len, w->off, &w->end, &doc, &w->why);
		if (w->parsed != 1)
			break;
		n++;
		rc = fn != NULL ? call_with(fn, ctx, doc, n) : 0;
		json_decref(doc);
		if (rc < 0)
			return rc;
		if (want_spans && w->n_spans == cap) {
			struct span *s = realloc(w->spans, sizeof(*s) * (cap ? cap * 2 : 1024));

			if (s == NULL)
				return -ENOMEM;
			w->spans = s;
			cap = cap ? cap * 2 : 1024;
		}
		if (want_spans)
			w->spans[w->n_spans++] = (struct span){w->off, w->end};
		w->off = w->end;
	}
	return n;
}

/* Save bytes the replay drops, so an operator can look at them. */
static void
save_dropped(const struct sky_journal *j, const char *buf, size_t len, char *saved, size_t savedlen)
{
	char ts[32], path[4096];
	struct tm tm;
	time_t now = time(NULL);
	int fd = -1;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 0; i < 10000 && fd < 0; i++) {
		if (i == 0)
			snprintf(path, sizeof(path), "%s/%s.dropped-%s", j->dir, JOURNAL_NAME, ts);
		else
			snprintf(path, sizeof(path), "%s/%s.dropped-%s.%d", j->dir, JOURNAL_NAME,
				 ts, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0 || write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
		snprintf(saved, savedlen, "not saved: %s", strerror(errno));
	} else {
		snprintf(saved, savedlen, "saved to %s", path);
		fsync_dir(j->dir);
	}
	if (fd >= 0)
		close(fd);
}

/* Replay met a record that is not intact at w->off: save the rest aside, say so, cut it. */
static int
drop_tail(struct sky_journal *j, const char *buf, size_t len, const struct walk *w, int n_intact,
	  char *err, size_t errlen)
{
	char saved[4200];
	size_t off = w->off;

	save_dropped(j, buf + off, len - off, saved, sizeof(saved));
	/* the last record, unless another record starts after this one's header (a damaged
	 * length makes a middle record look like it runs to the end) */
	if ((w->parsed == 0 || w->end == len) &&
	    memmem(buf + off + 1, len - off - 1, "\nSKYJ ", 6) == NULL)
		SKY_LOG(WARNING,
			"journal %s: torn last record at byte %zu (%s): ignored %zu bytes, %s",
			j->path, off, w->why, len - off, saved);
	else
		SKY_LOG(WARNING,
			"journal %s: corrupt record #%d at byte %zu (%s): ignored it and "
			"everything after it (%zu bytes), %s",
			j->path, n_intact + 1, off, w->why, len - off, saved);
	sky_ctl_counters[SKY_CTL_C_journal_dropped]++;
	if (ftruncate(j->fd, (off_t)off) != 0 || fsync(j->fd) != 0) {
		snprintf(err, errlen, "journal: cannot cut %s at byte %zu: %s", j->path, off,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* Read the journal and walk it; replaying, also drop a damaged tail and note the size. */
static int
walk_journal(struct sky_journal *j, int replaying, sky_journal_record_fn fn, void *ctx, char *err,
	     size_t errlen)
{
	struct walk w;
	size_t len;
	char *buf;
	int n;

	if (read_journal(j, !replaying, &buf, &len, err, errlen) != 0)
		return -1;
	n = walk(buf, len, fn, ctx, 0, &w);
	if (replaying && n >= 0 && w.off < len) {
		if (drop_tail(j, buf, len, &w, n, err, errlen) != 0)
			n = -1;
		len = w.off;
	}
	if (replaying && n >= 0)
		j->size = (long)len;
	free(buf);
	return n;
}

int
sky_journal_replay(struct sky_journal *j, sky_journal_record_fn fn, void *ctx, char *err,
		   size_t errlen)
{
	return walk_journal(j, 1, fn, ctx, err, errlen);
}

int
sky_journal_foreach(struct sky_journal *j, sky_journal_record_fn fn, void *ctx, char *err,
		    size_t errlen)
{
	return walk_journal(j, 0, fn, ctx, err, errlen);
}

/* Ask keep about each record, newest first; 0, or keep's negative value. */
static int
choose(const char *buf, struct walk *w, sky_journal_record_fn keep, void *ctx, char *kept,
       int *dropped)
{
	*dropped = 0;
	for (int r = w->n_spans - 1; r >= 0; r--) {
		const char *why;
		json_t *doc = NULL;
		size_t end;
		int rc;

		kept[r] = 1;
		if (parse_record(buf, w->spans[r].end, w->spans[r].off, &end, &doc, &why) != 1)
			continue; /* cannot happen: the walk found it intact */
		rc = call_with(keep, ctx, doc, r + 1);
		json_decref(doc);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			kept[r] = 0;
			(*dropped)++;
		}
	}
	return 0;
}

/* Write the kept records to path; their bytes, or -1 with err filled. */
static long
write_kept(const char *path, const char *buf, const struct walk *w, const char *kept, char *err,
	   size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	long out_len = 0;
	int bad;

	if (fd < 0) {
		snprintf(err, errlen, "journal compact: cannot create %s: %s", path,
			 strerror(errno));
		return -1;
	}
	for (int r = 0; r < w->n_spans; r++) {
		size_t n = w->spans[r].end - w->spans[r].off;

		if (!kept[r])
			continue;
		if (write_all(fd, buf + w->spans[r].off, n) != 0) {
			snprintf(err, errlen, "journal compact: cannot write %s: %s", path,
				 strerror(errno));
			close(fd);
			return -1;
		}
		out_len += (long)n;
	}
	bad = fsync(fd) != 0;
	if (close(fd) != 0) /* always closed, even when fsync failed */
		bad = 1;
	if (bad) {
		snprintf(err, errlen, "journal compact: cannot write %s: %s", path,
			 strerror(errno));
		return -1;
	}
	return out_len;
}

int
sky_journal_rewrite(struct sky_journal *j, sky_journal_record_fn keep, void *ctx, char *err,
		    size_t errlen)
{
	struct walk w = {0};
	char *buf = NULL, *tmp = NULL, *kept = NULL;
	size_t len;
	long out_len;
	int dropped = 0, nfd, rc = -1;

	if (read_journal(j, 1, &buf, &len, err, errlen) != 0)
		return -1;
	if (walk(buf, len, NULL, NULL, 1, &w) < 0)
		goto nomem;
	kept = malloc(w.n_spans > 0 ? (size_t)w.n_spans : 1);
	if (kept == NULL || choose(buf, &w, keep, ctx, kept, &dropped) != 0)
		goto nomem;
	if (dropped == 0) {
		rc = 0;
		goto out;
	}
	if (asprintf(&tmp, "%s.compact", j->path) < 0) {
		tmp = NULL;
		goto nomem;
	}
	out_len = write_kept(tmp, buf, &w, kept, err, errlen);
	if (out_len < 0)
		goto out;
	/* records appended after our read would be lost by the rename: there are none,
	 * everything here runs on the one control thread */
	if (rename(tmp, j->path) != 0) {
		snprintf(err, errlen, "journal compact: cannot rename %s: %s", tmp,
			 strerror(errno));
		goto out;
	}
	fsync_dir(j->dir);
	nfd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (nfd < 0) {
		/* the new journal is in place but cannot be appended to: stop journaling
		 * loudly rather than append to the unlinked old file */
		snprintf(err, errlen, "journal compact: cannot reopen %s: %s", j->path,
			 strerror(errno));
		set_broken(j);
		goto out;
	}
	close(j->fd);
	j->fd = nfd;
	j->size = out_len;
	rc = dropped;
	goto out;
nomem:
	snprintf(err, errlen, "journal compact: out of memory");
out:
	if (tmp != NULL && rc < 0)
		unlink(tmp);
	free(tmp);
	free(kept);
	free(w.spans);
	free(buf);
	return rc;
}
