/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The journal: a log of records of words, appended and fsync'd, walked in order at start.
 * Record format, the tip, durability and the damage rules are described in skygate/journal.h.
 * Nothing here knows what the words mean: the caller replays them (a function it hands to
 * sky_journal_replay()) and writes its own snapshots (sky_journal_rewrite_*()).
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
#define GEN_MAX 32
#define TIP_LEN (7 + GEN_MAX + 1 + 20 + 1) /* "SKYTIP " gen ' ' %020ld '\n' */

struct sky_journal {
	char *dir;
	char *path;
	char *tip_path;
	int fd;	    /* O_APPEND; -1 once broken */
	int tip_fd; /* the tip, rewritten in place */
	long size;  /* bytes of intact records (with the header) */
	int broken; /* appends fail until the journal is reopened */
	char gen[GEN_MAX + 1];
	int rw_fd; /* the snapshot being written, or -1 */
	long rw_size;
	char rw_gen[GEN_MAX + 1];
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

static void
utc_now(char *ts, size_t len, const char *fmt)
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(ts, len, fmt, &tm);
}

static void
new_generation(char gen[GEN_MAX + 1])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(gen, GEN_MAX + 1, "%llx-%lx-%x", (unsigned long long)ts.tv_sec, ts.tv_nsec,
		 (unsigned int)getpid());
}

/* One record's bytes: "SKYJ <len> <crc>\n<json>\n" (malloc'd), or NULL. */
static char *
frame(const json_t *o, size_t *len)
{
	char *json = json_dumps(o, JSON_COMPACT), *rec = NULL;
	size_t jlen;
	int n;

	if (json == NULL)
		return NULL;
	jlen = strlen(json);
	n = asprintf(&rec, "SKYJ %zu %08" PRIx32 "\n%s\n", jlen, sky_ctl_crc32(0, json, jlen),
		     json);
	free(json);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return rec;
}

/* A command record: time, uid, argv and extra's fields. */
static char *
command_record(int argc, char *const *argv, uid_t uid, const json_t *extra, size_t *len, int *rc)
{
	char ts[32], *rec;
	json_t *o, *a = json_array();
	const char *k;
	json_t *v;

	*rc = -EINVAL;
	if (argc < 1 || argc > SKY_JOURNAL_MAX_WORDS || argv == NULL) {
		json_decref(a);
		return NULL;
	}
	utc_now(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ");
	o = json_pack("{s:s, s:I, s:o}", "time", ts, "uid", (json_int_t)uid, "argv", a);
	if (o == NULL) {
		*rc = -ENOMEM;
		return NULL;
	}
	for (int i = 0; i < argc; i++)
		if (argv[i] == NULL || json_array_append_new(a, json_string(argv[i])) != 0) {
			json_decref(o);
			return NULL; /* not UTF-8: cannot happen for words that came as JSON */
		}
	if (json_is_object(extra))
		json_object_foreach((json_t *)extra, k, v)
		{
			if (strcmp(k, "time") != 0 && strcmp(k, "uid") != 0 &&
			    strcmp(k, "argv") != 0)
				json_object_set(o, k, v);
		}
	rec = frame(o, len);
	json_decref(o);
	*rc = rec != NULL ? 0 : -ENOMEM;
	return rec;
}

static char *
header_record(const char *gen, size_t *len)
{
	char ts[32], *rec;
	json_t *o;

	utc_now(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ");
	o = json_pack("{s:i, s:s, s:s}", "skygate_journal", SKY_JOURNAL_VERSION, "generation", gen,
		      "created", ts);
	if (o == NULL)
		return NULL;
	rec = frame(o, len);
	json_decref(o);
	return rec;
}

static int
tip_write(int fd, const char *gen, long size)
{
	char buf[TIP_LEN + 1];

	snprintf(buf, sizeof(buf), "SKYTIP %-*s %020ld\n", GEN_MAX, gen, size);
	if (pwrite(fd, buf, TIP_LEN, 0) != TIP_LEN)
		return errno ? -errno : -EIO;
	return fdatasync(fd) != 0 ? -errno : 0;
}

/* Write a new file with a header (and a tip beside it): DIR/NAME.new then renamed. */
static int
create_journal(struct sky_journal *j, char *err, size_t errlen)
{
	char *tmp = NULL, *ttmp = NULL, *hdr;
	size_t hlen;
	int fd = -1, tfd = -1, rc;

	new_generation(j->gen);
	hdr = header_record(j->gen, &hlen);
	if (hdr == NULL || asprintf(&tmp, "%s.new", j->path) < 0 ||
	    asprintf(&ttmp, "%s.new", j->tip_path) < 0) {
		snprintf(err, errlen, "journal: out of memory");
		free(hdr);
		free(tmp);
		return -ENOMEM;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	tfd = fd < 0 ? -1 : open(ttmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	rc = fd < 0 || tfd < 0 ? -errno : 0;
	if (rc == 0)
		rc = write_all(fd, hdr, hlen);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (rc == 0)
		rc = tip_write(tfd, j->gen, (long)hlen);
	if (rc == 0 && (rename(ttmp, j->tip_path) != 0 || rename(tmp, j->path) != 0))
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(j->dir);
	if (rc != 0) {
		snprintf(err, errlen, "journal: cannot create %s: %s", j->path, strerror(-rc));
		unlink(tmp);
		unlink(ttmp);
	}
	if (fd >= 0)
		close(fd);
	if (tfd >= 0)
		close(tfd);
	free(hdr);
	free(tmp);
	free(ttmp);
	return rc;
}

static int parse_record(const char *buf, size_t len, size_t off, size_t *end, json_t **doc,
			const char **why);

/* The generation named in the header of an existing journal ("v1" without one), so that
 * appends before the replay write a tip of the right generation. */
static void
read_generation(struct sky_journal *j)
{
	char buf[512];
	const char *why;
	json_t *doc = NULL;
	size_t end;
	ssize_t n;
	int fd = open(j->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	snprintf(j->gen, sizeof(j->gen), "v1");
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n > 0 && parse_record(buf, (size_t)n, 0, &end, &doc, &why) == 1 &&
	    json_is_string(json_object_get(doc, "generation")))
		snprintf(j->gen, sizeof(j->gen), "%.32s",
			 json_string_value(json_object_get(doc, "generation")));
	json_decref(doc);
}

static struct sky_journal *
open_fail(struct sky_journal *j, int fd, int rc)
{
	if (fd >= 0)
		close(fd);
	if (j != NULL) {
		free(j->tip_path);
		free(j->path);
		free(j->dir);
		free(j);
	}
	errno = -rc;
	return NULL;
}

struct sky_journal *
sky_journal_open(const char *dir, char *err, size_t errlen)
{
	struct sky_journal *j;
	struct stat st;
	int fd = -1, rc;

	if (dir == NULL || dir[0] == '\0') {
		snprintf(err, errlen, "journal: no state directory given");
		return open_fail(NULL, -1, -EINVAL);
	}
	rc = sky_ctl_mkdirs(dir, 0750);
	if (rc != 0) {
		snprintf(err, errlen, "journal: cannot create state directory %s: %s", dir,
			 strerror(-rc));
		return open_fail(NULL, -1, rc);
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->dir = strdup(dir)) == NULL ||
	    asprintf(&j->path, "%s/%s", dir, JOURNAL_NAME) < 0 ||
	    asprintf(&j->tip_path, "%s/%s.tip", dir, JOURNAL_NAME) < 0) {
		snprintf(err, errlen, "journal: out of memory");
		return open_fail(j, -1, -ENOMEM);
	}
	j->rw_fd = -1;
	j->tip_fd = -1;
	if (lstat(j->path, &st) != 0 && errno == ENOENT) {
		rc = create_journal(j, err, errlen);
		if (rc != 0)
			return open_fail(j, -1, rc);
	}
	fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "journal: cannot open %s: %s", j->path, strerror(errno));
		return open_fail(j, fd, rc);
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "journal: %s is not a regular file", j->path);
		return open_fail(j, fd, -EINVAL);
	}
	/* the tip is checked by the replay; appends rewrite it (created when missing) */
	j->tip_fd = open(j->tip_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (j->tip_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "journal: cannot open %s: %s", j->tip_path, strerror(errno));
		return open_fail(j, fd, rc);
	}
	j->fd = fd;
	j->size = (long)st.st_size;
	read_generation(j);
	return j;
}

void
sky_journal_close(struct sky_journal *j)
{
	if (j == NULL)
		return;
	sky_journal_rewrite_abort(j);
	if (j->fd >= 0)
		close(j->fd);
	if (j->tip_fd >= 0)
		close(j->tip_fd);
	free(j->tip_path);
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
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	j->broken = 1;
	SKY_LOG(CRIT, "journal %s: broken: every change is refused until skygate restarts",
		j->path);
}

int
sky_journal_cut(struct sky_journal *j, long size)
{
	int rc = 0;

	if (j->fd < 0)
		return j->broken ? -EIO : -ENOTCONN;
	if (size < 0 || size > j->size)
		return -EINVAL;
	/* the tip first: a crash before the cut leaves the record after the committed end,
	 * where the replay drops it */
	rc = tip_write(j->tip_fd, j->gen, size);
	if (rc == 0 && (ftruncate(j->fd, size) != 0 || fsync(j->fd) != 0))
		rc = -errno;
	if (rc != 0) {
		SKY_LOG(CRIT, "journal %s: cannot cut back to %ld bytes: %s", j->path, size,
			strerror(-rc));
		set_broken(j);
		return rc;
	}
	j->size = size;
	return 0;
}

/* Write and fsync one record; mark: move the tip past it too. */
static int
append(struct sky_journal *j, int argc, char *const *argv, uid_t uid, const json_t *extra, int mark)
{
	size_t n;
	char *rec;
	int rc;

	if (j->fd < 0)
		return j->broken ? -EIO : -ENOTCONN;
	rec = command_record(argc, argv, uid, extra, &n, &rc);
	if (rec == NULL)
		goto out;
	rc = write_all(j->fd, rec, n);
	if (rc == 0 && fsync(j->fd) != 0)
		rc = -errno;
	if (rc == 0 && mark)
		rc = tip_write(j->tip_fd, j->gen, j->size + (long)n);
	if (rc != 0) {
		/* leave no part of the record for later appends to follow, nor a tip past it */
		if (tip_write(j->tip_fd, j->gen, j->size) != 0 || ftruncate(j->fd, j->size) != 0 ||
		    fsync(j->fd) != 0)
			set_broken(j);
	} else {
		j->size += (long)n;
	}
	free(rec);
out:
	sky_ctl_counters[rc == 0 ? SKY_CTL_C_journal_records : SKY_CTL_C_journal_errors]++;
	return rc;
}

int
sky_journal_append(struct sky_journal *j, int argc, char *const *argv, uid_t uid,
		   const json_t *extra)
{
	return append(j, argc, argv, uid, extra, 1);
}

int
sky_journal_write(struct sky_journal *j, int argc, char *const *argv, uid_t uid,
		  const json_t *extra)
{
	return append(j, argc, argv, uid, extra, 0);
}

int
sky_journal_mark(struct sky_journal *j)
{
	int rc;

	if (j->fd < 0)
		return j->broken ? -EIO : -ENOTCONN;
	rc = tip_write(j->tip_fd, j->gen, j->size);
	if (rc != 0) {
		SKY_LOG(CRIT, "journal %s: cannot write %s: %s", j->path, j->tip_path,
			strerror(-rc));
		set_broken(j);
	}
	return rc;
}

/* --- reading --- */

/* A whole file into memory (NUL after the end); 0, or -errno. */
static int
slurp(const char *path, char **bufp, size_t *lenp)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;

			free(buf);
			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* The open journal's file into memory (slurp); 0, or -1 with the reason in err. */
static int
journal_slurp(const struct sky_journal *j, char **bufp, size_t *lenp, char *err, size_t errlen)
{
	int rc;

	if (j->fd < 0) {
		snprintf(err, errlen, "journal: not open");
		return -1;
	}
	rc = slurp(j->path, bufp, lenp);
	if (rc != 0) {
		snprintf(err, errlen, "journal: cannot read %s: %s", j->path, strerror(-rc));
		return -1;
	}
	return 0;
}

/*
 * Check the record at buf[off..len): 1 intact (*end, *doc set), 0 incomplete (runs past
 * the end), -1 corrupt (why set).
 */
static int
parse_record(const char *buf, size_t len, size_t off, size_t *end, json_t **doc, const char **why)
{
	const char *p = buf + off, *nl;
	size_t avail = len - off, hlen, rlen;
	unsigned long long v;
	uint32_t crc;
	char *q;
	size_t i;

	*end = 0;
	*doc = NULL;
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
	if (!isdigit((unsigned char)p[5])) {
		*why = "bad length";
		return -1;
	}
	errno = 0;
	v = strtoull(p + 5, &q, 10);
	if (errno != 0 || *q != ' ' || v == 0 || v > RECORD_MAX) {
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
	v = strtoull(q + 1, &q, 16);
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
	*doc = json_loadb(p + hlen, rlen, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		*why = "not a JSON object";
		return -1;
	}
	return 1;
}

/* A command record's argv: 1 .. SKY_JOURNAL_MAX_WORDS strings; else NULL. */
static const json_t *
record_argv(const json_t *doc)
{
	const json_t *a = json_object_get(doc, "argv"), *w;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > SKY_JOURNAL_MAX_WORDS)
		return NULL;
	json_array_foreach(a, i, w) if (!json_is_string(w)) return NULL;
	return a;
}

/* Hand an intact record's words to fn. */
static int
call_with(sky_journal_record_fn fn, void *ctx, const json_t *doc, int n, size_t off)
{
	const json_t *a = record_argv(doc), *w;
	char *words[SKY_JOURNAL_MAX_WORDS];
	struct sky_journal_record rec = {.n = n, .offset = (long)off, .argv = words, .doc = doc};
	size_t i;

	json_array_foreach(a, i, w) words[i] = (char *)json_string_value(w);
	rec.argc = (int)json_array_size(a);
	return fn(ctx, &rec);
}

/* Are the bytes buf[off..len) all zero (a tail the file system extended but never wrote)? */
static int
all_zero(const char *buf, size_t off, size_t len)
{
	for (; off < len; off++)
		if (buf[off] != '\0')
			return 0;
	return 1;
}

/* Count the records after off that look intact (a damaged middle, not a torn end). */
static int
intact_after(const char *buf, size_t len, size_t off)
{
	const char *p = buf + off;
	int n = 0;

	while ((p = memmem(p + 1, len - (size_t)(p + 1 - buf), "\nSKYJ ", 6)) != NULL) {
		size_t end;
		const char *why;
		json_t *doc;

		if (parse_record(buf, len, (size_t)(p + 1 - buf), &end, &doc, &why) == 1)
			n++;
		json_decref(doc);
		if ((size_t)(p + 1 - buf) + 1 >= len)
			break;
	}
	return n;
}

static void
set_damage(struct sky_journal_scan *r, enum sky_journal_end end, int rec, size_t off,
	   const char *why)
{
	r->end = end;
	r->bad_record = rec;
	r->bad_offset = off;
	snprintf(r->why, sizeof(r->why), "%s", why);
}

/* The header at 0: 1 a header (version, generation), 0 a version-1 journal (a command
 * first), -1 damage (res set). */
static int
scan_header(const char *buf, size_t len, struct sky_journal_scan *r, size_t *off)
{
	const char *why = NULL;
	json_t *doc = NULL, *v;
	size_t end;
	int rc = parse_record(buf, len, 0, &end, &doc, &why);

	if (len == 0) {
		set_damage(r, SKY_JOURNAL_DAMAGED, 0, 0, "empty file: no journal header");
		return -1;
	}
	if (rc != 1) {
		char msg[128];

		snprintf(msg, sizeof(msg), "no journal header (%s)", why);
		set_damage(r, SKY_JOURNAL_DAMAGED, 0, 0, msg);
		return -1;
	}
	v = json_object_get(doc, "skygate_journal");
	if (v == NULL && record_argv(doc) != NULL) {
		json_decref(doc);
		r->version = 1;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 2 ||
	    json_integer_value(v) > SKY_JOURNAL_VERSION) {
		char msg[128];

		snprintf(msg, sizeof(msg),
			 "journal header of an unknown version (this skygate "
			 "reads versions 1 to %d)",
			 SKY_JOURNAL_VERSION);
		set_damage(r, SKY_JOURNAL_DAMAGED, 0, 0, msg);
		json_decref(doc);
		return -1;
	}
	r->version = (int)json_integer_value(v);
	v = json_object_get(doc, "generation");
	snprintf(r->generation, sizeof(r->generation), "%s",
		 json_is_string(v) ? json_string_value(v) : "");
	json_decref(doc);
	*off = end;
	r->good_bytes = end;
	return 1;
}

int
sky_journal_scan(const char *buf, size_t len, long tip_bytes, sky_journal_record_fn fn, void *ctx,
		 struct sky_journal_scan *r)
{
	size_t off = 0;
	int n = 0;

	memset(r, 0, sizeof(*r));
	r->len = len;
	if (scan_header(buf, len, r, &off) < 0)
		return 0;
	while (off < len) {
		const char *why = "";
		json_t *doc = NULL;
		size_t end;
		int rc;

		if (tip_bytes >= 0 && (long)off >= tip_bytes) {
			/* written but never committed: the tip moves before a change applies, so
			 * nothing after it was applied or acknowledged (a crash between a record's
			 * fsync and the tip's, or in the middle of taking a record back) */
			set_damage(r, SKY_JOURNAL_TORN, n + 1, off,
				   "after the committed end (journal.tip): never applied");
			r->records = n;
			return 0;
		}
		rc = parse_record(buf, len, off, &end, &doc, &why);
		if (rc == 1 && tip_bytes >= 0 && (long)end > tip_bytes) {
			rc = -1;
			why = "journal.tip points inside this record";
			json_decref(doc);
		}

		if (rc == 1 && record_argv(doc) == NULL) {
			rc = -1;
			why = json_object_get(doc, "skygate_journal") != NULL
				      ? "a second journal header"
				      : "no argv of 1 to 64 strings";
			json_decref(doc);
		}
		if (rc != 1) {
			int after = intact_after(buf, len, off);
			/* what a crash in the middle of an append leaves: a last record cut short
			 * or ending in zeros, after everything committed */
			int torn = after == 0 &&
				   (tip_bytes >= 0 ? (long)off >= tip_bytes
						   : rc == 0 || all_zero(buf, off, len) ||
							     (end == len && buf[len - 1] == '\0'));

			set_damage(r, torn ? SKY_JOURNAL_TORN : SKY_JOURNAL_DAMAGED, n + 1, off,
				   why);
			r->intact_after = after;
			r->records = n;
			return 0;
		}
		n++;
		if (fn != NULL) {
			int stop = call_with(fn, ctx, doc, n, off);

			if (stop < 0) {
				json_decref(doc);
				set_damage(r, SKY_JOURNAL_STOPPED, n, off, "refused by the replay");
				r->records = n - 1;
				return stop;
			}
		}
		json_decref(doc);
		off = end;
		r->good_bytes = off;
	}
	r->records = n;
	if (tip_bytes >= 0 && (long)len < tip_bytes) {
		char msg[160];

		snprintf(msg, sizeof(msg),
			 "the journal ends at byte %zu but %ld bytes were committed (journal.tip): "
			 "committed records are missing",
			 len, tip_bytes);
		set_damage(r, SKY_JOURNAL_DAMAGED, n + 1, len, msg);
	}
	return 0;
}

/* The tip: its generation and size; 0, -ENOENT (no tip), -EINVAL (garbage). */
static int
tip_read(const struct sky_journal *j, char gen[GEN_MAX + 1], long *bytes)
{
	char buf[TIP_LEN + 1], *end;
	ssize_t n = pread(j->tip_fd, buf, TIP_LEN, 0);
	size_t g;

	if (n == 0)
		return -ENOENT;
	if (n != TIP_LEN || memcmp(buf, "SKYTIP ", 7) != 0 || buf[TIP_LEN - 1] != '\n')
		return -EINVAL;
	buf[TIP_LEN - 1] = '\0';
	g = strcspn(buf + 7, " ");
	if (g == 0 || g > GEN_MAX)
		return -EINVAL;
	memcpy(gen, buf + 7, g);
	gen[g] = '\0';
	errno = 0;
	*bytes = strtol(buf + 7 + GEN_MAX + 1, &end, 10);
	if (errno != 0 || *end != '\0' || *bytes < 0)
		return -EINVAL;
	return 0;
}

/* Save bytes aside (DIR/journal.<kind>-<time>), so an operator can look at them. */
static int
save_aside(const struct sky_journal *j, const char *kind, const char *buf, size_t len, char *path,
	   size_t pathlen)
{
	char ts[32];
	int fd = -1, rc = 0;

	utc_now(ts, sizeof(ts), "%Y%m%dT%H%M%SZ");
	for (int i = 0; i < 10000 && fd < 0; i++) {
		if (i == 0)
			snprintf(path, pathlen, "%s/%s.%s-%s", j->dir, JOURNAL_NAME, kind, ts);
		else
			snprintf(path, pathlen, "%s/%s.%s-%s.%d", j->dir, JOURNAL_NAME, kind, ts,
				 i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		return -errno;
	rc = write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0)
		rc = fsync_dir(j->dir);
	return rc;
}

/* Cut the file at off (and write the tip); 0 or -1 with err filled. */
static int
cut_at(struct sky_journal *j, size_t off, char *err, size_t errlen)
{
	int rc = 0;

	if (ftruncate(j->fd, (off_t)off) != 0 || fsync(j->fd) != 0)
		rc = -errno;
	if (rc == 0)
		rc = tip_write(j->tip_fd, j->gen, (long)off);
	if (rc != 0) {
		snprintf(err, errlen, "journal: cannot cut %s at byte %zu: %s", j->path, off,
			 strerror(-rc));
		return -1;
	}
	j->size = (long)off;
	return 0;
}

/* Damage (or a refused record) and the way out, for the operator. */
static void
describe(const struct sky_journal *j, const struct sky_journal_scan *r, char *err, size_t errlen)
{
	char where[96];

	if (r->bad_record == 0)
		snprintf(where, sizeof(where), "the header (byte 0)");
	else
		snprintf(where, sizeof(where), "record #%d at byte %zu", r->bad_record,
			 r->bad_offset);
	snprintf(err, errlen,
		 "journal %s: %s: %s%s%.0d%s; %d records before it are intact. skygate does not "
		 "guess around a damaged journal: `skygate --recover` starts from the last good "
		 "record (#%d) and moves bytes %zu..%zu aside",
		 j->path, where, r->why, r->intact_after > 0 ? " (" : "", r->intact_after,
		 r->intact_after > 0 ? " intact-looking records follow)" : "", r->records,
		 r->records, r->bad_offset, r->len);
}

int
sky_journal_replay(struct sky_journal *j, unsigned int flags, sky_journal_record_fn fn, void *ctx,
		   struct sky_journal_scan *r, char *aside, size_t asidelen, char *err,
		   size_t errlen)
{
	char tgen[GEN_MAX + 1] = "", path[4096];
	long tip = -1;
	size_t len;
	char *buf;
	int rc, trc;

	if (aside != NULL && asidelen > 0)
		aside[0] = '\0';
	if (journal_slurp(j, &buf, &len, err, errlen) != 0)
		return -1;
	trc = tip_read(j, tgen, &tip);
	rc = sky_journal_scan(buf, len, -1, NULL, NULL, r);
	/* the tip counts when it belongs to this journal (a crash during a snapshot's
	 * rename can leave the new tip beside the old journal: then it says nothing) */
	if (r->end != SKY_JOURNAL_DAMAGED || r->bad_record != 0) {
		if (r->version >= 2 && trc == 0 && strcmp(tgen, r->generation) != 0) {
			SKY_LOG(WARNING,
				"journal %s: journal.tip belongs to another generation: "
				"ignored",
				j->path);
			tip = -1;
		} else if (r->version >= 2 && trc != 0) {
			r->end = SKY_JOURNAL_DAMAGED;
			r->bad_record = r->records + 1;
			r->bad_offset = len;
			snprintf(r->why, sizeof(r->why), "%s: %s", j->tip_path,
				 trc == -ENOENT ? "missing (it says how much was committed)"
						: "damaged");
			tip = -2;
		} else if (r->version < 2) {
			tip = -1;
		}
		if (tip != -2)
			rc = sky_journal_scan(buf, len, tip, fn, ctx, r);
	}
	snprintf(j->gen, sizeof(j->gen), "%.32s", r->generation[0] ? r->generation : "v1");
	if (r->end == SKY_JOURNAL_CLEAN) {
		j->size = (long)len;
		free(buf);
		return r->records;
	}
	if (r->end == SKY_JOURNAL_TORN) {
		rc = save_aside(j, "torn", buf + r->bad_offset, len - r->bad_offset, path,
				sizeof(path));
		SKY_LOG(WARNING,
			"journal %s: torn last record #%d at byte %zu (%s): a crash in the middle "
			"of an append; %zu bytes cut, %s%s",
			j->path, r->bad_record, r->bad_offset, r->why, len - r->bad_offset,
			rc == 0 ? "saved to " : "not saved: ", rc == 0 ? path : strerror(-rc));
		sky_ctl_counters[SKY_CTL_C_journal_torn]++;
		rc = cut_at(j, r->bad_offset, err, errlen);
		free(buf);
		return rc == 0 ? r->records : -1;
	}
	describe(j, r, err, errlen);
	if (!(flags & SKY_JOURNAL_RECOVER)) {
		free(buf);
		return -1;
	}
	/* --recover: keep what is good, move the rest aside, cut */
	if (r->bad_offset < len) {
		rc = save_aside(j, "damaged", buf + r->bad_offset, len - r->bad_offset, path,
				sizeof(path));
		if (rc != 0) {
			snprintf(err, errlen,
				 "journal: cannot save the damaged part of %s aside: %s", j->path,
				 strerror(-rc));
			free(buf);
			return -1;
		}
		if (aside != NULL)
			snprintf(aside, asidelen, "%s", path);
	}
	free(buf);
	if (r->bad_record == 0) {
		/* nothing of it is good: a new journal with a header */
		if (unlink(j->path) != 0 || create_journal(j, err, errlen) != 0)
			return -1;
		/* the new files replaced the old ones by rename: reopen both */
		close(j->fd);
		close(j->tip_fd);
		j->fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
		j->tip_fd = open(j->tip_path, O_RDWR | O_CLOEXEC);
		if (j->fd < 0 || j->tip_fd < 0) {
			snprintf(err, errlen, "journal: cannot reopen %s: %s", j->path,
				 strerror(errno));
			j->broken = 1;
			return -1;
		}
		j->size = lseek(j->fd, 0, SEEK_END);
		return 0;
	}
	if (cut_at(j, r->bad_offset < len ? r->bad_offset : len, err, errlen) != 0)
		return -1;
	SKY_LOG(WARNING, "journal %s: recovered: %d records replayed, %s", j->path, r->records,
		aside != NULL && aside[0] ? aside : "nothing to move aside");
	return r->records;
}

int
sky_journal_foreach(struct sky_journal *j, sky_journal_record_fn fn, void *ctx, char *err,
		    size_t errlen)
{
	struct sky_journal_scan r;
	size_t len;
	char *buf;
	int rc;

	if (journal_slurp(j, &buf, &len, err, errlen) != 0)
		return -1;
	if (j->size >= 0 && (size_t)j->size < len)
		len = (size_t)j->size;
	rc = sky_journal_scan(buf, len, -1, fn, ctx, &r);
	free(buf);
	if (rc < 0)
		return rc;
	if (r.end == SKY_JOURNAL_DAMAGED && r.bad_record == 0) {
		snprintf(err, errlen, "journal %s: %s", j->path, r.why);
		return -1;
	}
	return r.records;
}

/* --- snapshots --- */

static char *
compact_path(const struct sky_journal *j, const char *suffix)
{
	char *p = NULL;

	if (asprintf(&p, "%s%s", j->path, suffix) < 0)
		return NULL;
	return p;
}

void
sky_journal_rewrite_abort(struct sky_journal *j)
{
	char *p;

	if (j->rw_fd < 0)
		return;
	close(j->rw_fd);
	j->rw_fd = -1;
	p = compact_path(j, ".compact");
	if (p != NULL)
		unlink(p);
	free(p);
}

int
sky_journal_rewrite_begin(struct sky_journal *j, char *err, size_t errlen)
{
	char *p = compact_path(j, ".compact"), *hdr;
	size_t hlen;
	int rc;

	sky_journal_rewrite_abort(j);
	if (j->fd < 0) {
		snprintf(err, errlen, "journal: %s", j->broken ? "broken" : "not open");
		free(p);
		return -1;
	}
	new_generation(j->rw_gen);
	hdr = header_record(j->rw_gen, &hlen);
	if (p == NULL || hdr == NULL) {
		snprintf(err, errlen, "journal compact: out of memory");
		free(p);
		free(hdr);
		return -1;
	}
	j->rw_fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	rc = j->rw_fd < 0 ? -errno : write_all(j->rw_fd, hdr, hlen);
	if (rc != 0) {
		snprintf(err, errlen, "journal compact: cannot write %s: %s", p, strerror(-rc));
		sky_journal_rewrite_abort(j);
	}
	j->rw_size = (long)hlen;
	free(p);
	free(hdr);
	return rc != 0 ? -1 : 0;
}

int
sky_journal_rewrite_add(struct sky_journal *j, int argc, char *const *argv, uid_t uid,
			const json_t *extra)
{
	size_t n;
	int rc;
	char *rec;

	if (j->rw_fd < 0)
		return -EBADF;
	rec = command_record(argc, argv, uid, extra, &n, &rc);
	if (rec == NULL)
		return rc;
	rc = write_all(j->rw_fd, rec, n);
	if (rc == 0)
		j->rw_size += (long)n;
	free(rec);
	return rc;
}

int
sky_journal_rewrite_commit(struct sky_journal *j, char *err, size_t errlen)
{
	char *p = compact_path(j, ".compact"), *tp = compact_path(j, ".tip.compact");
	int rc = 0, tfd = -1, nfd;

	if (j->rw_fd < 0 || p == NULL || tp == NULL) {
		snprintf(err, errlen, "journal compact: nothing to commit");
		free(p);
		free(tp);
		return -1;
	}
	if (fsync(j->rw_fd) != 0)
		rc = -errno;
	if (rc == 0 && (tfd = open(tp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
		rc = -errno;
	if (rc == 0)
		rc = tip_write(tfd, j->rw_gen, j->rw_size);
	/* the tip first: a crash between the renames leaves a tip of another generation,
	 * which the replay ignores */
	if (rc == 0 && (rename(tp, j->tip_path) != 0 || rename(p, j->path) != 0))
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(j->dir);
	if (tfd >= 0)
		close(tfd);
	if (rc != 0) {
		snprintf(err, errlen, "journal compact: cannot put %s in place: %s", p,
			 strerror(-rc));
		unlink(tp);
		sky_journal_rewrite_abort(j);
		free(p);
		free(tp);
		return -1;
	}
	close(j->rw_fd);
	j->rw_fd = -1;
	free(p);
	free(tp);
	nfd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	tfd = open(j->tip_path, O_RDWR | O_CLOEXEC);
	if (nfd < 0 || tfd < 0) {
		snprintf(err, errlen, "journal compact: cannot reopen %s: %s", j->path,
			 strerror(errno));
		if (nfd >= 0)
			close(nfd);
		if (tfd >= 0)
			close(tfd);
		set_broken(j);
		return -1;
	}
	close(j->fd);
	close(j->tip_fd);
	j->fd = nfd;
	j->tip_fd = tfd;
	j->size = j->rw_size;
	snprintf(j->gen, sizeof(j->gen), "%s", j->rw_gen);
	return 0;
}
