/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the journal reader. The first byte picks the tip (none, at the end,
 * before the end) and, with bit 0x80, has the harness write the right CRC into every record
 * header it can frame (so the fuzzer gets past the CRC to the JSON); the rest is the
 * journal's bytes. sky_journal_scan() must walk them
 * without crashing and report consistently: records numbered in order at increasing
 * offsets, each with 1..64 words; damage starting where the last good record ends; the
 * good prefix scanning clean with the same records. Then the bytes go to a real state
 * directory: a replay with SKY_JOURNAL_RECOVER keeps what is good, and a second replay
 * finds a whole journal with the same records.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <rte_log.h>

#include "skygate/control.h"
#include "skygate/journal.h"

static char dir[64], path[128], tip[128];

struct walk {
	int n;
	long last_off;
};

static int
on_record(void *ctx, const struct sky_journal_record *rec)
{
	struct walk *w = ctx;

	if (rec->n != w->n + 1 || rec->offset <= w->last_off || rec->argc < 1 ||
	    rec->argc > SKY_JOURNAL_MAX_WORDS || !json_is_object(rec->doc))
		abort();
	for (int i = 0; i < rec->argc; i++)
		if (rec->argv[i] == NULL)
			abort();
	w->n++;
	w->last_off = rec->offset;
	return 0;
}

static void
clean_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char p[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

static void
cleanup(void)
{
	clean_dir();
	rmdir(dir);
}

static void
init(void)
{
	FILE *null = fopen("/dev/null", "w");

	if (null != NULL)
		rte_openlog_stream(null); /* torn-record and recovery warnings */
	snprintf(dir, sizeof(dir), "/dev/shm/fuzz-journal-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-journal-XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
	}
	snprintf(path, sizeof(path), "%s/journal", dir);
	snprintf(tip, sizeof(tip), "%s/journal.tip", dir);
	atexit(cleanup);
}

/* Replay the bytes from a real file with --recover, then again: whole, same records. */
static void
replay_file(const char *buf, size_t len, int records)
{
	struct sky_journal_scan r1, r2;
	struct sky_journal *j;
	struct walk w = {0, -1};
	char err[4096], aside[512];
	FILE *f;
	int n1, n2;

	clean_dir();
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		abort();
	j = sky_journal_open(dir, err, sizeof(err));
	if (j == NULL)
		abort();
	n1 = sky_journal_replay(j, SKY_JOURNAL_RECOVER, on_record, &w, &r1, aside, sizeof(aside),
				err, sizeof(err));
	if (n1 < 0 || n1 != r1.records || n1 > records)
		abort();
	w = (struct walk){0, -1};
	n2 = sky_journal_replay(j, 0, on_record, &w, &r2, aside, sizeof(aside), err, sizeof(err));
	if (n2 != n1 || r2.end != SKY_JOURNAL_CLEAN)
		abort();
	/* and it takes appends */
	if (sky_journal_append(j, 1, (char *const[]){"after"}, 0, NULL) != 0)
		abort();
	sky_journal_close(j);
}

/* Write the right CRC into each "SKYJ <len> <crc8>\n" header that frames a whole record. */
static void
fix_crcs(char *b, size_t len)
{
	size_t off = 0;

	while (off + 5 < len && memcmp(b + off, "SKYJ ", 5) == 0) {
		char *nl = memchr(b + off, '\n', len - off < 32 ? len - off : 32), *end;
		unsigned long rlen = strtoul(b + off + 5, &end, 10);
		char hex[9];

		if (nl == NULL || *end != ' ' || nl - end != 9 || rlen > len ||
		    (size_t)(nl - b) + 1 + rlen + 1 > len)
			return;
		snprintf(hex, sizeof(hex), "%08x", sky_ctl_crc32(0, nl + 1, rlen));
		memcpy(end + 1, hex, 8);
		off = (size_t)(nl - b) + 1 + rlen + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct sky_journal_scan r, g;
	struct walk w = {0, -1}, wg = {0, -1};
	char *buf;
	size_t len;
	long tipb;

	if (!ready) {
		init();
		ready = 1;
	}
	if (size == 0)
		return 0;
	len = size - 1;
	buf = malloc(len + 1);
	if (buf == NULL)
		abort();
	memcpy(buf, data + 1, len);
	if (data[0] & 0x80)
		fix_crcs(buf, len);
	tipb = data[0] % 3 == 0 ? -1 : data[0] % 3 == 1 ? (long)len : (long)len / 2;
	if (sky_journal_scan(buf, len, tipb, on_record, &w, &r) != 0)
		abort();
	if (r.records != w.n || r.good_bytes > len || r.len != len)
		abort();
	switch (r.end) {
	case SKY_JOURNAL_CLEAN:
		if (r.good_bytes != len || r.bad_record != 0)
			abort();
		break;
	case SKY_JOURNAL_TORN:
	case SKY_JOURNAL_DAMAGED:
		if (r.bad_offset > len || r.why[0] == '\0')
			abort();
		/* damage past the header starts where the last good record ends */
		if (r.bad_record > 0 && r.bad_offset != r.good_bytes && r.bad_offset != len)
			abort();
		if (r.end == SKY_JOURNAL_TORN && (r.bad_record == 0 || r.intact_after != 0))
			abort();
		break;
	default:
		abort(); /* nothing stops this walk */
	}
	/* the good prefix scans clean, with the same records */
	if (r.bad_record > 0 || r.end == SKY_JOURNAL_CLEAN) {
		if (sky_journal_scan(buf, r.good_bytes, -1, on_record, &wg, &g) != 0 ||
		    g.end != SKY_JOURNAL_CLEAN || g.records != r.records)
			abort();
	}
	if (len < (1u << 16))
		replay_file(buf, len, r.records);
	free(buf);
	return 0;
}
