/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The usage file (layout in quota_priv.h): written whole to PATH.tmp, fsynced, renamed
 * over PATH, the directory fsynced, so a crash leaves the previous file or the new one.
 * Read whole (bounded), every byte checked: magic, version, length, CRC. Damage is never
 * read as zero usage: the caller refuses the start.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "skygate/control.h"
#include "skygate/file.h"

#include "quota_priv.h"

#define MAGIC "SKYUSAGE"
#define VERSION 1u
#define HDR 32u
#define REC 48u

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int
write_all(int fd, const uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int
quota_file_write(const char *path, const struct quota_rec *recs, size_t n, uint64_t seq,
		 int64_t saved_at, char *err, size_t errlen)
{
	size_t len = HDR + REC * n + 4;
	uint8_t *b = calloc(1, len);
	char tmp[4200], dir[4200];
	int fd = -1, rc;

	if (b == NULL) {
		snprintf(err, errlen, "%s: out of memory for %zu bytes", path, len);
		return -1;
	}
	memcpy(b, MAGIC, 8);
	put32(b + 8, VERSION);
	put32(b + 12, (uint32_t)n);
	put64(b + 16, seq);
	put64(b + 24, (uint64_t)saved_at);
	for (size_t i = 0; i < n; i++) {
		uint8_t *r = b + HDR + REC * i;

		put32(r, recs[i].id);
		put32(r + 4, (uint32_t)recs[i].anchor_day);
		put64(r + 8, recs[i].used);
		put64(r + 16, recs[i].credit);
		put64(r + 24, (uint64_t)recs[i].period_start);
		put64(r + 32, (uint64_t)recs[i].period_end);
		r[40] = recs[i].alerts;
	}
	put32(b + len - 4, sky_ctl_crc32(0, b, len - 4));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	rc = write_all(fd, b, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	fd = -1;
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		rc = -errno;
		snprintf(err, errlen, "rename %s -> %s: %s", tmp, path, strerror(-rc));
		unlink(tmp);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) != 0)
			rc = -errno;
		close(fd);
		if (rc < 0)
			snprintf(err, errlen, "%s: fsync of its directory: %s", path,
				 strerror(-rc));
	}
out:
	free(b);
	return rc < 0 ? -1 : 0;
}

int
quota_file_read(const char *path, struct quota_rec **recs, size_t *n, uint64_t *seq, char *err,
		size_t errlen)
{
	const char *way = "(start with --reset-usage to move it aside and count from zero)";
	void *buf = NULL;
	const uint8_t *b;
	size_t len = 0, cnt;
	struct quota_rec *r = NULL;
	int rc;

	rc = sky_file_read(path, HDR + (size_t)REC * QUOTA_FILE_MAX_RECS + 4, 0, &buf, &len, err,
			   errlen);
	if (rc < 0)
		return rc;
	b = buf;
	if (len < HDR + 4 || memcmp(b, MAGIC, 8) != 0) {
		snprintf(err, errlen, "%s: offset 0: not a skygate usage file (%zu bytes) %s", path,
			 len, way);
		rc = -EBADMSG;
		goto out;
	}
	if (get32(b + 8) != VERSION) {
		snprintf(err, errlen, "%s: offset 8: version %u, this skygate reads %u %s", path,
			 get32(b + 8), VERSION, way);
		rc = -EBADMSG;
		goto out;
	}
	cnt = get32(b + 12);
	if (cnt > QUOTA_FILE_MAX_RECS || len != HDR + REC * cnt + 4) {
		snprintf(err, errlen,
			 "%s: offset 12: %zu records need %zu bytes, the file has %zu "
			 "(truncated or damaged) %s",
			 path, cnt, HDR + REC * cnt + 4, len, way);
		rc = -EBADMSG;
		goto out;
	}
	if (get32(b + len - 4) != sky_ctl_crc32(0, b, len - 4)) {
		snprintf(err, errlen, "%s: offset %zu: CRC mismatch (damaged) %s", path, len - 4,
			 way);
		rc = -EBADMSG;
		goto out;
	}
	r = calloc(cnt ? cnt : 1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		const uint8_t *p = b + HDR + REC * i;

		r[i].id = get32(p);
		r[i].anchor_day = (int32_t)get32(p + 4);
		r[i].used = get64(p + 8);
		r[i].credit = get64(p + 16);
		r[i].period_start = (int64_t)get64(p + 24);
		r[i].period_end = (int64_t)get64(p + 32);
		r[i].alerts = p[40];
		if (r[i].id == 0 || r[i].period_end < r[i].period_start) {
			snprintf(err, errlen, "%s: offset %zu: record %zu is invalid %s", path,
				 HDR + REC * i, i, way);
			rc = -EBADMSG;
			free(r);
			r = NULL;
			goto out;
		}
	}
	*recs = r;
	*n = cnt;
	*seq = get64(b + 16);
	rc = 0;
out:
	free(buf);
	return rc;
}
