/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The journal: a durable, append-only log of records, each one list of words with the time
 * and the uid of whoever asked. It knows nothing of what the words mean: the control plane
 * (skygate/control.h) appends its state-changing commands to it and replays them at start
 * through a function it hands to sky_journal_replay(); which records supersede which is the
 * caller's business too (sky_journal_rewrite() keeps what the caller says).
 *
 * File: DIR/journal. Record: "SKYJ <len> <crc32 hex8>\n<json>\n", len and CRC (IEEE, as
 * zlib's crc32) over the JSON bytes only; JSON {"time": "2026-01-01T00:00:00Z", "uid": 0,
 * "argv": ["map", "update", ...]}. A record is intact when its header parses, all len + 1
 * bytes are there, the CRC matches, the trailing byte is '\n' and the JSON has an argv of
 * 1 to SKY_JOURNAL_MAX_WORDS strings.
 *
 * Durability: an append is written and fsync'd before sky_journal_append() returns, except
 * between sky_journal_batch_begin() and sky_journal_batch_end(), which fsyncs once for every
 * append of the batch (group commit). A failed fsync breaks the journal: every later append
 * fails with -EIO until it is closed and opened again.
 *
 * Control path only, one thread; nothing here is touched by workers.
 */
#ifndef SKYGATE_JOURNAL_H
#define SKYGATE_JOURNAL_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define SKY_JOURNAL_MAX_WORDS 64 /* words in one record (= SKY_CTL_MAX_ARGS) */

struct sky_journal;

/** One intact record, as the walks below hand it to their callback. */
struct sky_journal_record {
	int n;		   /* position in the journal, 1 = oldest */
	int argc;	   /* 1 .. SKY_JOURNAL_MAX_WORDS */
	char **argv;	   /* the words; valid during the callback only */
	const json_t *doc; /* the record's JSON object ("time", "uid", "argv") */
};

/**
 * Callback of the walks. sky_journal_replay() and sky_journal_foreach(): return 0 to go on,
 * or a negative value to stop the walk (the walk returns it). sky_journal_rewrite(): return 1
 * to keep the record, 0 to drop it, a negative value to give up (nothing changes).
 */
typedef int (*sky_journal_record_fn)(void *ctx, const struct sky_journal_record *rec);

/**
 * Open (create) DIR/journal for appending; DIR is created (mode 0750) when missing. Returns
 * the journal, or NULL with errno set and err filled.
 */
struct sky_journal *sky_journal_open(const char *dir, char *err, size_t errlen);
/** Close and free (NULL is fine). Nothing pending is lost: appends are already fsync'd. */
void sky_journal_close(struct sky_journal *j);

/** The directory given to sky_journal_open() and the journal file's path. */
const char *sky_journal_dir(const struct sky_journal *j);
const char *sky_journal_path(const struct sky_journal *j);
/** Bytes of intact records after the last open, replay, append or rewrite. */
long sky_journal_size(const struct sky_journal *j);
/** 1 when a failed fsync or a rewrite that could not reopen the file broke the journal. */
int sky_journal_is_broken(const struct sky_journal *j);

/**
 * Append one record of argc words (1 .. SKY_JOURNAL_MAX_WORDS, UTF-8) and fsync it (outside
 * a batch). Returns 0, or -errno: nothing of the record stays in the file (-EIO once the
 * journal is broken).
 */
int sky_journal_append(struct sky_journal *j, int argc, char *const *argv, uid_t uid);
/** Group commit: appends until sky_journal_batch_end() are written but not fsync'd. */
void sky_journal_batch_begin(struct sky_journal *j);
/** fsync the batch's appends once: 0, or -errno (the journal is broken: see above). */
int sky_journal_batch_end(struct sky_journal *j);

/**
 * Call fn on every intact record of the file, oldest first (the start-up replay). Replay
 * stops at the first record that is not intact: the bytes from there on are saved aside
 * (DIR/journal.dropped-<time>), cut from the journal and reported in the log (a torn last
 * record is a crash mid-write), so later appends follow an intact record. Returns the number
 * of intact records, fn's negative value, or -1 with err filled when the file cannot be read
 * or cut.
 */
int sky_journal_replay(struct sky_journal *j, sky_journal_record_fn fn, void *ctx, char *err,
		       size_t errlen);
/**
 * Call fn on every intact record up to sky_journal_size(), oldest first; changes nothing.
 * Returns the number of records walked, fn's negative value, or -1 with err filled.
 */
int sky_journal_foreach(struct sky_journal *j, sky_journal_record_fn fn, void *ctx, char *err,
			size_t errlen);
/**
 * Ask keep about every intact record, newest first, then rewrite the journal with the kept
 * ones (temporary file, fsync, rename: a crash leaves the old or the new journal, both
 * intact). Returns the number of records dropped (0: the file is untouched), or -1 with err
 * filled (the journal is unchanged, unless it could not be reopened: then it is broken).
 */
int sky_journal_rewrite(struct sky_journal *j, sky_journal_record_fn keep, void *ctx, char *err,
			size_t errlen);

#endif /* SKYGATE_JOURNAL_H */
