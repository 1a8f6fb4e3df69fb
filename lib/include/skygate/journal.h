/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The journal: a durable, append-only log of records, each one list of words with the time
 * and the uid of whoever asked. It knows nothing of what the words mean: the control plane
 * (skygate/control.h) appends its state-changing commands to it before applying them
 * (write-ahead), replays them at start through a function it hands to sky_journal_replay(),
 * and writes snapshots with sky_journal_rewrite_*().
 *
 * Files, in DIR:
 *   journal      a header record, then the records. Record: "SKYJ <len> <crc32 hex8>\n<json>\n",
 *                len and CRC (IEEE, as zlib's crc32) over the JSON bytes only. The header's
 *                JSON is {"skygate_journal": 2, "generation": "...", "created": "..."}; a
 *                record's {"time": "2026-01-01T00:00:00Z", "uid": 0, "argv": [...]} plus
 *                whatever fields the caller adds (e.g. "files" with SHA-256 sums). A file
 *                whose first record is a command and not a header is a version-1 journal
 *                (written before headers existed) and is read as such.
 *   journal.tip  "SKYTIP <generation> <bytes>\n": how many bytes of the journal are
 *                committed, rewritten in place (and fdatasync'd) when a record is marked. A
 *                journal shorter than its tip lost committed records (truncation) and is
 *                refused; records after the tip were never committed and are dropped.
 *
 * Durability, in two steps: sky_journal_write() returns when the record is written and
 * fsync'd; sky_journal_mark() then moves the tip past it, which commits it
 * (sky_journal_append() does both). The control plane writes before it applies a change and
 * marks after it applied (so a change that failed, or a crash in between, leaves a record
 * after the tip: never applied, never acknowledged, dropped by the next replay). A failed
 * write or fsync cuts the record again; when even that fails, or the tip cannot be written,
 * the journal is broken: every later append fails with -EIO until it is opened again.
 *
 * Damage (sky_journal_scan()): the only damage repaired on its own is a torn last record:
 * bytes after the tip (nothing committed is lost), as a crash in the middle of an append, or
 * between a write and its mark, leaves them; without a tip (version 1), bytes after the last
 * intact record that hold no other intact record and are a record cut short or zeros. Any
 * other damage — a bad header, length or CRC before the end, garbage, an empty file, a file
 * shorter than its tip, a record the caller's function refuses — stops the replay and names
 * the record and byte; with SKY_JOURNAL_RECOVER the damaged part is moved aside instead.
 *
 * Control path only, one thread; nothing here is touched by workers.
 */
#ifndef SKYGATE_JOURNAL_H
#define SKYGATE_JOURNAL_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define SKY_JOURNAL_MAX_WORDS 64 /* words in one record (= SKY_CTL_MAX_ARGS) */
#define SKY_JOURNAL_VERSION 2	 /* the header's "skygate_journal" */

struct sky_journal;

/** One intact record, as the walks below hand it to their callback. */
struct sky_journal_record {
	int n;		   /* position in the journal, 1 = oldest (the header is not counted) */
	long offset;	   /* byte offset of its first byte in the file */
	int argc;	   /* 1 .. SKY_JOURNAL_MAX_WORDS */
	char **argv;	   /* the words; valid during the callback only */
	const json_t *doc; /* the record's JSON object ("time", "uid", "argv", ...) */
};

/**
 * Callback of the walks: return 0 to go on, or a negative value to stop the walk (the walk
 * returns it; sky_journal_replay() treats it as damage at that record).
 */
typedef int (*sky_journal_record_fn)(void *ctx, const struct sky_journal_record *rec);

/** How a scan ended. */
enum sky_journal_end {
	SKY_JOURNAL_CLEAN,   /* every byte is an intact record */
	SKY_JOURNAL_TORN,    /* a torn last record (repaired by replay) */
	SKY_JOURNAL_DAMAGED, /* damage: replay refuses (or recovers) */
	SKY_JOURNAL_STOPPED, /* the callback stopped the walk at record bad_record */
};

/** What sky_journal_scan() found. */
struct sky_journal_scan {
	enum sky_journal_end end;
	int version;	     /* the header's version; 1 when there is no header */
	int records;	     /* intact records walked (the header not counted) */
	size_t good_bytes;   /* bytes up to the end of the last intact record walked */
	size_t len;	     /* bytes scanned */
	int bad_record;	     /* the record that is torn, damaged or stopped (0 = the header) */
	size_t bad_offset;   /* its byte offset */
	int intact_after;    /* damaged: intact-looking records found after it */
	char why[160];	     /* what is wrong there */
	char generation[40]; /* the header's generation ("" for version 1) */
};

/**
 * Walk the journal bytes buf[0..len) (no file involved: the fuzz target and tests use it),
 * calling fn (may be NULL) on every intact record in order. tip_bytes: the committed size
 * from journal.tip, or -1 when unknown. Fills *res; returns 0, or fn's negative value.
 */
int sky_journal_scan(const char *buf, size_t len, long tip_bytes, sky_journal_record_fn fn,
		     void *ctx, struct sky_journal_scan *res);

/**
 * Open DIR/journal for appending; DIR is created (mode 0750) when missing. A missing journal
 * is created with its header and tip (written aside, fsync'd, renamed, directory fsync'd), so
 * an empty or header-less file never is a journal skygate wrote. Returns the journal, or
 * NULL with errno set and err filled.
 */
struct sky_journal *sky_journal_open(const char *dir, char *err, size_t errlen);
/** Close and free (NULL is fine). Nothing pending is lost: appends are already fsync'd. */
void sky_journal_close(struct sky_journal *j);

/** The directory given to sky_journal_open() and the journal file's path. */
const char *sky_journal_dir(const struct sky_journal *j);
const char *sky_journal_path(const struct sky_journal *j);
/** Bytes of intact records (with the header) after the last open, replay, append or rewrite. */
long sky_journal_size(const struct sky_journal *j);
/** 1 when a failed write that could not be cut, or a rewrite that could not reopen the file,
 *  broke the journal. */
int sky_journal_is_broken(const struct sky_journal *j);

/**
 * Append one record of argc words (1 .. SKY_JOURNAL_MAX_WORDS, UTF-8), with extra's fields
 * (an object, or NULL) added, and make it durable (write, fsync, tip). Returns 0, or -errno:
 * nothing of the record stays in the file (-EIO once the journal is broken).
 */
int sky_journal_append(struct sky_journal *j, int argc, char *const *argv, uid_t uid,
		       const json_t *extra);
/** sky_journal_append() without moving the tip: the record is durable, not yet committed. */
int sky_journal_write(struct sky_journal *j, int argc, char *const *argv, uid_t uid,
		      const json_t *extra);
/** Move the tip to the end of the journal: every record written so far is committed. 0, or
 *  -errno and the journal is broken. */
int sky_journal_mark(struct sky_journal *j);
/**
 * Cut the journal back to size bytes (a value sky_journal_size() returned since the last
 * open or rewrite): take back a record whose change could not be applied. 0, or -errno and
 * the journal is broken.
 */
int sky_journal_cut(struct sky_journal *j, long size);

/** sky_journal_replay() flags. */
#define SKY_JOURNAL_RECOVER 0x1 /* move damage aside instead of refusing */

/**
 * The start-up replay: read the whole file (and the tip), call fn on every intact record.
 * A torn last record is saved aside (DIR/journal.torn-<time>), cut and logged. Damage, or fn
 * refusing a record, returns -1 with res and err filled (file, byte, record, why, the way
 * out), changing nothing; with SKY_JOURNAL_RECOVER the bytes from the damaged (or refused)
 * record on are moved to DIR/journal.damaged-<time> (its path in aside), cut from the
 * journal, and the number of records replayed is returned. Returns the number of records
 * replayed, or -1 (err filled) also when the file cannot be read or cut.
 */
int sky_journal_replay(struct sky_journal *j, unsigned int flags, sky_journal_record_fn fn,
		       void *ctx, struct sky_journal_scan *res, char *aside, size_t asidelen,
		       char *err, size_t errlen);
/**
 * Call fn on every intact record up to sky_journal_size(), oldest first; changes nothing.
 * Returns the number of records walked, fn's negative value, or -1 with err filled.
 */
int sky_journal_foreach(struct sky_journal *j, sky_journal_record_fn fn, void *ctx, char *err,
			size_t errlen);

/**
 * A snapshot: a new journal written aside (DIR/journal.compact) with a new generation, then
 * put in place with sky_journal_rewrite_commit() (fsync, tip, rename, directory fsync: a crash
 * leaves the old or the new journal, both whole). Between begin and commit nothing else may
 * be appended. begin returns 0 or -1 with err filled.
 */
int sky_journal_rewrite_begin(struct sky_journal *j, char *err, size_t errlen);
/** Add a record to the snapshot being written: 0, or -errno. */
int sky_journal_rewrite_add(struct sky_journal *j, int argc, char *const *argv, uid_t uid,
			    const json_t *extra);
/** Put the snapshot in place: 0, or -1 with err filled (the old journal stays; broken only
 *  when the new one is in place but cannot be reopened). */
int sky_journal_rewrite_commit(struct sky_journal *j, char *err, size_t errlen);
/** Throw the snapshot away (after a failed add). */
void sky_journal_rewrite_abort(struct sky_journal *j);

#endif /* SKYGATE_JOURNAL_H */
