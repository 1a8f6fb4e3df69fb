/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The change journal: every successful state-changing command, appended and fsync'd before
 * the reply, replayed through the dispatcher at start.
 *
 * Record: "SKYJ <len> <crc32 hex8>\n<json>\n", len and CRC over the JSON bytes only.
 * JSON: {"time": "2026-01-01T00:00:00Z", "uid": 0, "argv": ["map", "update", ...]}.
 * A record is intact when its header parses, all len + 1 bytes are there, the CRC matches,
 * the trailing byte is '\n' and the JSON has an argv of strings. Replay stops at the first
 * record that is not intact; the bytes from there on are saved aside
 * (journal.dropped-<time>) and cut from the journal, so later appends follow an intact
 * record and a later replay sees them.
 *
 * Group commit: requests answered in one sky_ctl_server_poll() round share one fsync, done
 * before any of their replies is sent (pipelined changes run at tens of thousands per
 * second instead of one per disk flush).
 *
 * Compaction: commands may declare which earlier records theirs supersede
 * (sky_ctl_journal_rule). The journal is rewritten without those after replay and whenever
 * it has doubled past 1 MiB, through a temporary file and rename(), so a crash leaves either
 * journal, both intact.
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
#include "skygate/runtime.h"

#include "ctl_priv.h"

#define JOURNAL_NAME "journal"
#define RECORD_MAX (16u << 20) /* a record larger than this is corrupt */
#define HEADER_MAX 32

static char *state_dir;
static char *journal_path;
static int journal_fd = -1;
static long journal_size = -1; /* bytes of intact records */
static long compacted_size;    /* journal_size after the last compaction (or open) */
static int journal_broken;     /* a failed fsync, or a compaction that could not reopen:
				* appends fail until the journal is reopened */
static int batch;	       /* inside a group commit (sky_ctl_server_poll) */
static int batch_records;      /* appended and not yet fsync'd */

#define COMPACT_MIN (1L << 20) /* appends compact once the journal passes this ... */
#define COMPACT_GROWTH 2       /* ... and has grown this many times since the last one */

int
sky_ctl_mkdirs(const char *path, mode_t mode)
{
	char *p, *s;
	struct stat st;
	int rc = 0;

	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	s = strdup(path);
	if (s == NULL)
		return -ENOMEM;
	for (p = s + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(s, mode) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
		rc = -ENOTDIR;
	free(s);
	return rc;
}

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

int
sky_ctl_journal_open(const char *dir, char *err, size_t errlen)
{
	char *path = NULL, *sdir = NULL;
	struct stat st;
	int fd, rc, created = 0;

	sky_ctl_journal_close();
	if (dir == NULL || dir[0] == '\0') {
		snprintf(err, errlen, "journal: no state directory given");
		return -EINVAL;
	}
	rc = sky_ctl_mkdirs(dir, 0750);
	if (rc != 0) {
		snprintf(err, errlen, "journal: cannot create state directory %s: %s", dir,
			 strerror(-rc));
		return rc;
	}
	sdir = strdup(dir);
	if (sdir == NULL || asprintf(&path, "%s/%s", dir, JOURNAL_NAME) < 0) {
		free(sdir);
		snprintf(err, errlen, "journal: out of memory");
		return -ENOMEM;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		created = fd >= 0;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "journal: cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "journal: %s is not a regular file", path);
		goto fail;
	}
	/* the file's name must survive a crash as well as its records */
	if (created && (rc = fsync_dir(dir)) != 0) {
		snprintf(err, errlen, "journal: cannot fsync directory %s: %s", dir, strerror(-rc));
		goto fail;
	}
	journal_fd = fd;
	journal_path = path;
	state_dir = sdir;
	journal_size = (long)st.st_size;
	compacted_size = journal_size;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(path);
	free(sdir);
	return rc;
}

void
sky_ctl_journal_close(void)
{
	if (journal_fd >= 0)
		close(journal_fd);
	journal_fd = -1;
	free(journal_path);
	free(state_dir);
	journal_path = NULL;
	state_dir = NULL;
	journal_size = -1;
	journal_broken = 0;
}

const char *
sky_ctl_state_dir(void)
{
	return state_dir;
}

int
sky_ctl_journal_is_open(void)
{
	return journal_fd >= 0 || journal_broken;
}

long
sky_ctl_journal_size(void)
{
	return journal_size;
}

void
sky_ctl_journal_batch_begin(void)
{
	batch = 1;
	batch_records = 0;
}

int
sky_ctl_journal_batch_end(void)
{
	int rc = 0;

	batch = 0;
	if (batch_records == 0 || journal_fd < 0)
		return 0;
	if (fsync(journal_fd) != 0) {
		rc = -errno;
		/* the replies are queued already; refuse every later change so the operator
		 * learns at once that the journal is not durable */
		SKY_LOG(CRIT,
			"journal %s: fsync failed: %s: the last %d changes may be lost at "
			"restart; further changes are refused until skygate restarts",
			journal_path, strerror(-rc), batch_records);
		close(journal_fd);
		journal_fd = -1;
		journal_broken = 1;
		sky_ctl_counters[SKY_CTL_C_journal_errors]++;
	}
	batch_records = 0;
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

int
sky_ctl_journal_append(int argc, char *const *argv, uid_t uid)
{
	char ts[32], *json = NULL, *rec = NULL;
	json_t *o = NULL, *a;
	struct tm tm;
	time_t now = time(NULL);
	size_t jlen;
	int n, rc;

	if (journal_fd < 0)
		return journal_broken ? -EIO : -ENOTCONN;
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
	rc = write_all(journal_fd, rec, (size_t)n);
	if (rc == 0 && !batch && fsync(journal_fd) != 0)
		rc = -errno;
	if (rc == 0 && batch)
		batch_records++;
	if (rc != 0) {
		/* do not leave a torn record for later appends to follow */
		if (ftruncate(journal_fd, journal_size) != 0)
			SKY_LOG(ERR, "journal %s: cannot cut a failed append: %s", journal_path,
				strerror(errno));
	} else {
		journal_size += n;
		if (journal_size > COMPACT_MIN && journal_size > COMPACT_GROWTH * compacted_size &&
		    sky_ctl_have_rules()) {
			char err[512];

			if (sky_ctl_journal_compact(err, sizeof(err)) < 0)
				SKY_LOG(WARNING, "%s", err);
			/* not again before the journal has grown as much once more */
			compacted_size = journal_size;
		}
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

static int
read_file(const char *path, char **bufp, size_t *lenp, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t len = 0;

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "journal: cannot read %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "journal: %s: out of memory (%lld bytes)", path,
			 (long long)st.st_size);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "journal: cannot read %s: %s", path, strerror(errno));
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
	*bufp = buf;
	*lenp = len;
	return 0;
}

/*
 * Check the record at buf[off..len): 1 intact (*end, *argv set), 0 incomplete (runs past
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
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SKY_CTL_MAX_ARGS) {
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

/* Save bytes the replay drops, so an operator can look at them. */
static void
save_dropped(const char *buf, size_t len, char *saved, size_t savedlen)
{
	char ts[32], path[4096];
	struct tm tm;
	time_t now = time(NULL);
	int fd = -1;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 0; i < 10000 && fd < 0; i++) {
		if (i == 0)
			snprintf(path, sizeof(path), "%s/%s.dropped-%s", state_dir, JOURNAL_NAME,
				 ts);
		else
			snprintf(path, sizeof(path), "%s/%s.dropped-%s.%d", state_dir, JOURNAL_NAME,
				 ts, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0 || write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
		snprintf(saved, savedlen, "not saved: %s", strerror(errno));
	} else {
		snprintf(saved, savedlen, "saved to %s", path);
		fsync_dir(state_dir);
	}
	if (fd >= 0)
		close(fd);
}

int
sky_ctl_journal_replay(char *err, size_t errlen)
{
	size_t len, off = 0, end = 0;
	char *buf;
	int n = 0, rec = 0;

	if (journal_fd < 0) {
		snprintf(err, errlen, "journal: not open");
		return -1;
	}
	if (read_file(journal_path, &buf, &len, err, errlen) != 0)
		return -1;
	while (off < len) {
		const char *why = NULL;
		json_t *doc = NULL, *a, *reply, *w;
		char *argv[SKY_CTL_MAX_ARGS];
		size_t i;
		int rc = parse_record(buf, len, off, &end, &doc, &why);

		if (rc <= 0) {
			char saved[4200];

			save_dropped(buf + off, len - off, saved, sizeof(saved));
			/* the last record, unless another record starts after this one's header
			 * (a damaged length makes a middle record look like it runs to the end) */
			if ((rc == 0 || end == len) &&
			    memmem(buf + off + 1, len - off - 1, "\nSKYJ ", 6) == NULL)
				SKY_LOG(WARNING,
					"journal %s: torn last record at byte %zu (%s): ignored "
					"%zu bytes, %s",
					journal_path, off, why, len - off, saved);
			else
				SKY_LOG(WARNING,
					"journal %s: corrupt record #%d at byte %zu (%s): ignored "
					"it and everything after it (%zu bytes), %s",
					journal_path, rec + 1, off, why, len - off, saved);
			sky_ctl_counters[SKY_CTL_C_journal_dropped]++;
			if (ftruncate(journal_fd, (off_t)off) != 0 || fsync(journal_fd) != 0) {
				snprintf(err, errlen, "journal: cannot cut %s at byte %zu: %s",
					 journal_path, off, strerror(errno));
				free(buf);
				return -1;
			}
			len = off;
			break;
		}
		rec++;
		a = json_object_get(doc, "argv");
		json_array_foreach(a, i, w) argv[i] = (char *)json_string_value(w);
		reply = sky_ctl_dispatch_argv((int)json_array_size(a), argv, 0, 0, 1);
		if (json_is_true(json_object_get(reply, "ok"))) {
			n++;
			sky_ctl_counters[SKY_CTL_C_replayed]++;
		} else {
			char words[512];

			sky_ctl_join(words, sizeof(words), (int)json_array_size(a), argv);
			SKY_LOG(WARNING, "journal %s: record #%d '%s' failed on replay: %s",
				journal_path, rec, words,
				reply ? json_string_value(json_object_get(reply, "error"))
				      : "out of memory");
			sky_ctl_counters[SKY_CTL_C_replay_failed]++;
		}
		json_decref(reply);
		json_decref(doc);
		off = end;
	}
	journal_size = (long)len;
	free(buf);
	if (rec > 0 && sky_ctl_have_rules()) {
		int dropped = sky_ctl_journal_compact(err, errlen);

		if (dropped < 0)
			SKY_LOG(WARNING, "%s", err); /* the journal stays as it was: still good */
		else if (dropped > 0)
			SKY_LOG(INFO, "journal %s: compacted, %d superseded records dropped",
				journal_path, dropped);
	}
	return n;
}

/* --- compaction --- */

/* A set of strings (open addressing), for the supersede keys seen so far. */
struct strset {
	char **slot;
	size_t cap, n;
};

static uint64_t
str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* 1 found, 0 not found (added if add), -ENOMEM */
static int
strset_probe(struct strset *set, const char *key, int add)
{
	size_t i;

	if (add && (set->n + 1) * 2 > set->cap) {
		struct strset big = {.cap = set->cap ? set->cap * 2 : 256};

		big.slot = calloc(big.cap, sizeof(char *));
		if (big.slot == NULL)
			return -ENOMEM;
		for (size_t k = 0; k < set->cap; k++) {
			if (set->slot[k] == NULL)
				continue;
			for (i = str_hash(set->slot[k]) & (big.cap - 1); big.slot[i] != NULL;
			     i = (i + 1) & (big.cap - 1))
				;
			big.slot[i] = set->slot[k];
		}
		free(set->slot);
		big.n = set->n;
		*set = big;
	}
	if (set->cap == 0)
		return 0;
	for (i = str_hash(key) & (set->cap - 1); set->slot[i] != NULL; i = (i + 1) & (set->cap - 1))
		if (strcmp(set->slot[i], key) == 0)
			return 1;
	if (add) {
		set->slot[i] = strdup(key);
		if (set->slot[i] == NULL)
			return -ENOMEM;
		set->n++;
	}
	return 0;
}

static void
strset_free(struct strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
}

/* "group\x1e" + n + "\x1e" + the first n args separated by \x1f */
static char *
rule_key(const char *group, int n, char **args)
{
	char *k = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&k, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "%s\x1e%d\x1e", group, n);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\x1f", args[i]);
	if (fclose(f) != 0) {
		free(k);
		return NULL;
	}
	return k;
}

struct rec {
	size_t off, end;
	int keep;
};

/*
 * Walk the records newest first. A record is superseded when a later record's rule
 * covers it: same group, and (nkey 0) anything or (nkey n) the same first n arguments.
 * Rules seen are kept as keys "group|n|args"; a record probes each n used in its group.
 */
static int
mark_superseded(const char *buf, struct rec *recs, int n_recs, int *dropped)
{
	struct strset seen = {0};
	struct {
		char *group;
		int n;
	} used[64];
	int n_used = 0, rc = 0;

	*dropped = 0;
	for (int r = n_recs - 1; r >= 0 && rc == 0; r--) {
		const char *why, *group;
		json_t *doc = NULL, *a, *w;
		char *argv[SKY_CTL_MAX_ARGS];
		size_t end, i;
		int argc, nkey, n_words;

		recs[r].keep = 1;
		if (parse_record(buf, recs[r].end, recs[r].off, &end, &doc, &why) != 1)
			continue; /* cannot happen: checked when the offsets were taken */
		a = json_object_get(doc, "argv");
		json_array_foreach(a, i, w) argv[i] = (char *)json_string_value(w);
		argc = (int)json_array_size(a);
		if (sky_ctl_rule_of(argc, argv, &group, &nkey, &n_words) != 0) {
			json_decref(doc);
			continue;
		}
		/* covered by a later record's rule? */
		for (int u = 0; u < n_used && recs[r].keep; u++) {
			char *k;

			if (strcmp(used[u].group, group) != 0 || used[u].n > argc - n_words)
				continue;
			k = rule_key(group, used[u].n, argv + n_words);
			if (k == NULL) {
				rc = -ENOMEM;
				break;
			}
			if (strset_probe(&seen, k, 0) == 1) {
				recs[r].keep = 0;
				(*dropped)++;
			}
			free(k);
		}
		/* its own rule covers the older ones (even when it is itself superseded) */
		if (rc == 0 && nkey >= 0 && nkey <= argc - n_words) {
			char *k = rule_key(group, nkey, argv + n_words);
			int u;

			for (u = 0; u < n_used; u++)
				if (used[u].n == nkey && strcmp(used[u].group, group) == 0)
					break;
			if (u == n_used && n_used < (int)(sizeof(used) / sizeof(used[0]))) {
				used[n_used].group = strdup(group);
				used[n_used].n = nkey;
				if (used[n_used].group != NULL)
					n_used++;
			}
			if (k == NULL || strset_probe(&seen, k, 1) < 0)
				rc = -ENOMEM;
			free(k);
		}
		json_decref(doc);
	}
	for (int u = 0; u < n_used; u++)
		free(used[u].group);
	strset_free(&seen);
	return rc;
}

int
sky_ctl_journal_compact(char *err, size_t errlen)
{
	char *buf = NULL, *tmp = NULL;
	struct rec *recs = NULL;
	size_t len, off = 0, next, out_len = 0;
	int n_recs = 0, cap = 0, dropped = 0, fd = -1, nfd, rc = -1;

	if (journal_fd < 0) {
		snprintf(err, errlen, "journal: not open");
		return -1;
	}
	if (read_file(journal_path, &buf, &len, err, errlen) != 0)
		return -1;
	if (journal_size >= 0 && (size_t)journal_size < len)
		len = (size_t)journal_size;
	while (off < len) {
		const char *why;
		json_t *doc = NULL;

		if (parse_record(buf, len, off, &next, &doc, &why) != 1)
			break;
		json_decref(doc);
		if (n_recs == cap) {
			struct rec *r = realloc(recs, sizeof(*r) * (cap ? cap * 2 : 1024));

			if (r == NULL)
				goto nomem;
			recs = r;
			cap = cap ? cap * 2 : 1024;
		}
		recs[n_recs].off = off;
		recs[n_recs].end = next;
		n_recs++;
		off = next;
	}
	if (mark_superseded(buf, recs, n_recs, &dropped) != 0)
		goto nomem;
	if (dropped == 0) {
		rc = 0;
		goto out;
	}
	if (asprintf(&tmp, "%s.compact", journal_path) < 0) {
		tmp = NULL;
		goto nomem;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "journal compact: cannot create %s: %s", tmp,
			 strerror(errno));
		goto out;
	}
	for (int r = 0; r < n_recs; r++) {
		if (!recs[r].keep)
			continue;
		if (write_all(fd, buf + recs[r].off, recs[r].end - recs[r].off) != 0) {
			snprintf(err, errlen, "journal compact: cannot write %s: %s", tmp,
				 strerror(errno));
			goto out;
		}
		out_len += recs[r].end - recs[r].off;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		snprintf(err, errlen, "journal compact: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	/* records appended after our read would be lost by the rename: there are none,
	 * everything here runs on the one control thread */
	if (rename(tmp, journal_path) != 0) {
		snprintf(err, errlen, "journal compact: cannot rename %s: %s", tmp,
			 strerror(errno));
		goto out;
	}
	fsync_dir(state_dir);
	nfd = open(journal_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (nfd < 0) {
		/* the new journal is in place but cannot be appended to: stop journaling
		 * loudly rather than append to the unlinked old file */
		snprintf(err, errlen, "journal compact: cannot reopen %s: %s", journal_path,
			 strerror(errno));
		close(journal_fd);
		journal_fd = -1;
		journal_broken = 1;
		goto out;
	}
	close(journal_fd);
	journal_fd = nfd;
	journal_size = (long)out_len;
	compacted_size = journal_size;
	sky_ctl_counters[SKY_CTL_C_journal_compactions]++;
	sky_ctl_counters[SKY_CTL_C_journal_superseded] += (uint64_t)dropped;
	rc = dropped;
	goto out;
nomem:
	snprintf(err, errlen, "journal compact: out of memory");
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL && rc < 0)
		unlink(tmp);
	free(tmp);
	free(recs);
	free(buf);
	return rc;
}

/* `journal show [N]`: the last N (default 20, 0 = all) intact records, oldest first. */
int
sky_ctl_journal_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	char err[512], *buf, *end;
	size_t len, off = 0, next;
	unsigned long last = 20, total = 0, skip;
	json_t *list;
	int n = 0;

	if (argc > 1)
		return sky_ctl_fail(call, "usage: journal show [N]");
	if (argc == 1) {
		errno = 0;
		last = strtoul(argv[0], &end, 10);
		if (errno != 0 || end == argv[0] || *end != '\0' || argv[0][0] == '-')
			return sky_ctl_fail(call, "N '%s': expected a number of records (0 = all)",
					    argv[0]);
	}
	if (journal_fd < 0)
		return sky_ctl_fail(call, "no journal (the configuration sets no state.dir)");
	if (read_file(journal_path, &buf, &len, err, sizeof(err)) != 0)
		return sky_ctl_fail(call, "%s", err);
	/* only what replay would apply: intact records up to the known good size */
	if (journal_size >= 0 && (size_t)journal_size < len)
		len = (size_t)journal_size;
	/* count first, so a long journal costs one pass of parsing and no reshuffling */
	while (off < len) {
		const char *why;
		json_t *doc = NULL;

		if (parse_record(buf, len, off, &next, &doc, &why) != 1)
			break;
		json_decref(doc);
		total++;
		off = next;
	}
	skip = last > 0 && total > last ? total - last : 0;
	off = 0;
	list = json_array();
	while (list != NULL && off < len) {
		const char *why;
		json_t *doc = NULL, *a, *w;
		char *words[SKY_CTL_MAX_ARGS], line[1024];
		size_t i;

		if (parse_record(buf, len, off, &next, &doc, &why) != 1)
			break;
		n++;
		if ((unsigned long)n <= skip) {
			json_decref(doc);
			off = next;
			continue;
		}
		a = json_object_get(doc, "argv");
		json_array_foreach(a, i, w) words[i] = (char *)json_string_value(w);
		sky_ctl_join(line, sizeof(line), (int)json_array_size(a), words);
		json_array_append_new(list,
				      json_pack("{s:i, s:O?, s:O?, s:s}", "n", n, "time",
						json_object_get(doc, "time"), "uid",
						json_object_get(doc, "uid"), "command", line));
		json_decref(doc);
		off = next;
	}
	free(buf);
	if (list == NULL)
		return sky_ctl_fail(call, "out of memory");
	*result = list;
	return 0;
}
