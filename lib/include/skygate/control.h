/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Control plane commands: a registry that modules fill with their own commands, a
 * dispatcher, the Unix-socket server, the change journal and Prometheus metrics.
 *
 * Control path only (EAL main lcore). Nothing here is touched by workers.
 *
 * Wire protocol (Unix stream socket, mode 0660): newline-delimited JSON, one request
 * per line, one reply per line, any number per connection.
 *   request  {"argv": ["subscriber", "show", "42"]}
 *   reply    {"ok": true, "result": <object|array>}
 *            {"ok": false, "error": "subscriber show: no subscriber with id 42"}
 *
 * A command is the longest run of leading argv words that names a registered command
 * ("subscriber show"); the handler gets the remaining words. `help` lists commands.
 *
 * Journal (write-ahead): a command registered with SKY_CTL_F_JOURNAL validates the request and
 * prepares its new state aside, then calls sky_ctl_commit(call), which appends the request's
 * record to the journal (skygate/journal.h: STATE_DIR/journal) and fsyncs it; only then does
 * the handler publish the change. Then the dispatcher moves the journal's tip past the record
 * (the commit mark) and the reply follows. When the commit fails (ENOSPC, EIO, EROFS...) the
 * handler discards what it prepared and fails: nothing changed, the reply says so. The
 * dispatcher checks that a successful journaled command committed exactly once (a handler
 * that forgot is counted as journal_uncommitted and journaled late, a bug the tests catch),
 * and takes the record back when a handler fails after committing (a crash before that
 * leaves it after the tip, where the replay drops it: never acknowledged). At start,
 * after the config is applied, the journal is replayed through the same dispatcher
 * (call->replay = 1; sky_ctl_commit() is then a no-op). A record that fails on replay, a
 * file it names that is missing or changed (SHA-256), or any damage but a torn last record
 * stops the start (see sky_ctl_journal_replay()).
 *
 * Events: sky_ctl_event() emits a typed JSON event; a client that sends `events follow
 * [type=GLOB ...]` gets the reply, then one line per matching event, for as long as it stays
 * connected (it sends no more requests on that connection). Each subscriber has a bounded
 * queue: one that cannot keep up loses events, counted, and gets
 * {"type":"events_lost","count":N} where the gap is once it has caught up. A subscription is
 * a connection like any other (control.clients_per_uid, max_clients), exempt from the idle
 * timeout only.
 *
 * State: each module registers its part of the live state (sky_ctl_state_register): a
 * canonical dump (`state dump`) and the commands that recreate it (a snapshot). `journal
 * compact` writes the snapshot, parts in their order (geo, classes, plans, beams, policy,
 * maps, subscribers, ...), as a new journal, renamed into place.
 */
#ifndef SKYGATE_CONTROL_H
#define SKYGATE_CONTROL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#define SKY_CTL_MAX_ARGS 64

/** One call of a command: who asked, and where the handler writes its error. */
struct sky_ctl_call {
	uid_t uid; /* socket peer (SO_PEERCRED); 0 for replay and tests */
	pid_t pid;
	int replay;	/* 1 while replaying the journal at start */
	char err[1024]; /* set through sky_ctl_fail() */
	/* what to journal instead of the request's argv (sky_ctl_journal_as) */
	int journal_argc;
	char *journal_argv[SKY_CTL_MAX_ARGS];
	/* set by the dispatcher */
	int argc; /* the whole request, command words included */
	char *const *argv;
	int journaled;	  /* the command has SKY_CTL_F_JOURNAL */
	int committed;	  /* sky_ctl_commit() succeeded this many times */
	long commit_mark; /* journal size before the commit (to take the record back) */
	/* cluster mode (sky_ctl_store_hook) */
	int from_store;	      /* a change read from the store, applied here */
	int stored;	      /* the change went to the store instead of being applied */
	json_t *store_result; /* the reply's result for a stored change */
};

/**
 * Handler: argc/argv are the words after the command name. On success return 0 and set
 * *result to a new JSON object or array (NULL means {}). On failure return
 * sky_ctl_fail(call, ...). A handler must leave every state unchanged when it fails.
 */
typedef int (*sky_ctl_fn)(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			  json_t **result);

/** Adds fields to the result of another module's command (e.g. shaper stats in `beam show`). */
typedef void (*sky_ctl_extend_fn)(void *arg, int argc, char **argv, json_t *result);

#define SKY_CTL_F_JOURNAL 0x1 /* a state change: journal it on success */

/**
 * Register a command. cmd: words separated by single spaces ("map update"); usage: the
 * argument synopsis ("NAME KEY VALUE"); help: one line. Returns 0, -EEXIST, -ENOMEM.
 */
int sky_ctl_register(const char *cmd, const char *usage, const char *help, unsigned int flags,
		     sky_ctl_fn fn, void *arg);
/** Remove every command (end of the daemon, tests). */
void sky_ctl_unregister_all(void);
/** Call fn after cmd succeeds, to add to its result object. */
int sky_ctl_extend(const char *cmd, sky_ctl_extend_fn fn, void *arg);

/** Record an error message for the caller; returns -1. */
int sky_ctl_fail(struct sky_ctl_call *call, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** Journal these words instead of the request's (e.g. a path copied into the state dir). */
int sky_ctl_journal_as(struct sky_ctl_call *call, int argc, const char *const *argv);
/**
 * The write-ahead point of a journaled command: append the request's record (or the words
 * given to sky_ctl_journal_as) and fsync it, after validation and before the change is
 * published. Files in the state directory that the words name are recorded with their
 * SHA-256, checked again on replay. No journal (no state.dir) or replaying: nothing to
 * write, 0. Returns 0, or -1 with the call failed ("not journaled: ...: nothing changed"):
 * the handler then discards what it prepared and returns -1.
 */
int sky_ctl_commit(struct sky_ctl_call *call);

/**
 * Cluster mode: where a validated change goes instead of the journal. At the write-ahead
 * point (sky_ctl_commit) of a change from a client, fn(arg, call, argc, argv, &result) is
 * called with the request's words: it returns 0 when it stored the change (the handler is
 * then told to discard what it prepared, and the client gets {"ok": true, "result":
 * result}: the change applies on every node, this one too, when the store sends it back
 * through sky_ctl_dispatch_store), 1 when the change stays local (journaled and applied
 * here as without a store), or -1 with the call failed (refused: nothing changed).
 * fn NULL: no store. Changes replayed from the journal never reach fn.
 */
typedef int (*sky_ctl_store_fn)(void *arg, struct sky_ctl_call *call, int argc, char *const *argv,
				json_t **result);
void sky_ctl_store_hook(sky_ctl_store_fn fn, void *arg);
/** Apply a change read from the store: validated, journaled (the node's cache), applied
 *  and audited like a client's, but never sent back to the store. A reply as dispatch. */
json_t *sky_ctl_dispatch_store(int argc, char **argv);

/**
 * Run one request. Returns a new reply object ({"ok":...}); never NULL except on ENOMEM.
 * Bad requests (not an object, no argv, argv not an array of strings, unknown command)
 * get an error reply naming what was wrong.
 */
json_t *sky_ctl_dispatch(const json_t *request, uid_t uid, pid_t pid);
/** Convenience for tests and replay: dispatch argv directly. */
json_t *sky_ctl_dispatch_argv(int argc, char **argv, uid_t uid, pid_t pid, int replay);

/* --- the daemon's journal (skygate/journal.h holds the log itself) --- */
/** Open (create) STATE_DIR/journal for appending. Returns 0 or -errno with err filled. */
int sky_ctl_journal_open(const char *state_dir, char *err, size_t errlen);
/**
 * Replay the journal through the dispatcher. Returns the number of records replayed, or -1
 * with err filled: damage (file, byte offset, record, what, and the way out), a record that
 * fails on replay, a file it names missing or changed, or an I/O error.
 */
int sky_ctl_journal_replay(char *err, size_t errlen);
/**
 * sky_ctl_journal_replay() for `skygate --recover`: damage, and the first record that fails,
 * are moved aside (journal.damaged-<time>) with everything after them; the recovery is
 * recorded in the journal and shown in `status` and metrics until `journal ack`.
 */
int sky_ctl_journal_recover(char *err, size_t errlen);
void sky_ctl_journal_close(void);
/** The state directory given to sky_ctl_journal_open(), or NULL. */
const char *sky_ctl_state_dir(void);
/**
 * Write a snapshot of the live state (every registered part, in order) as the new journal
 * (temp file, fsync, rename: a crash leaves the old or the new journal), then remove the
 * state-dir files only the old journal named. Returns the number of records in the
 * snapshot, or -1 with err filled (the journal is unchanged). Appends compact on their own
 * once the journal has doubled past 1 MiB since the last compaction.
 */
int sky_ctl_journal_compact(char *err, size_t errlen);
/** Bytes of intact records in the journal after the last replay/append (tests, status). */
long sky_ctl_journal_size(void);
/** Recoveries (`--recover`) not yet acknowledged with `journal ack`. */
unsigned int sky_ctl_journal_unacked(void);
/** Add the journal (path, bytes, broken, unacknowledged recoveries) to `status`'s result;
 *  call once `status` is registered. 0 or -errno. */
int sky_ctl_journal_extend_status(void);

/* --- the events stream --- */
/**
 * Emit an event to the subscribers of the control socket (`events follow`). type: lowercase
 * words with dots ("subscriber.changed", "quota.over"), at most 64 bytes; fields: a JSON
 * object or NULL, whose reference is taken (also on failure). The line sent is
 * {"type": type, "time": "2026-01-31T12:00:00.123Z" (RFC 3339, UTC, ms), "seq": N, ...fields};
 * seq counts the events of this process from 1. Fields named type, time or seq are ignored.
 * Never blocks: a subscriber whose queue is full loses the event (counted, reported to it).
 * Control path only. Returns 0, -EINVAL (bad type, fields not an object), -ENOMEM.
 */
int sky_ctl_event(const char *type, json_t *fields);
/** Add the events counters (emitted, delivered, lost, subscribers) to `status`'s result;
 *  call once `status` is registered. 0 or -errno. */
int sky_ctl_events_extend_status(void);

/* --- the live state, part by part --- */
struct sky_ctl_snapshot;
/** A part's canonical dump: set *part to a new JSON value (same state, same JSON). */
typedef int (*sky_ctl_dump_fn)(void *arg, json_t **part, char *err, size_t errlen);
/** A part's snapshot: sky_ctl_snapshot_add() the commands that recreate it on top of the
 *  configuration; 0 or -1 with err filled. */
typedef int (*sky_ctl_snap_fn)(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen);

/* Snapshot order: what a part's commands need comes before it. */
#define SKY_CTL_ORDER_GEO 10
#define SKY_CTL_ORDER_CLASSES 20
#define SKY_CTL_ORDER_PLANS 30
#define SKY_CTL_ORDER_BEAMS 40
#define SKY_CTL_ORDER_POLICY 50
#define SKY_CTL_ORDER_MAPS 60
#define SKY_CTL_ORDER_SUBSCRIBERS 70
#define SKY_CTL_ORDER_JOURNAL 90

/** Register a part of the state ("subscribers"). Returns 0, -EEXIST, -EINVAL, -ENOMEM. */
int sky_ctl_state_register(const char *name, int order, sky_ctl_dump_fn dump, sky_ctl_snap_fn snap,
			   void *arg);
/** Add one command to a snapshot being written: 0 or -errno. */
int sky_ctl_snapshot_add(struct sky_ctl_snapshot *snap, int argc, const char *const *argv);
/** The canonical dump of every part, {name: part}: a new object, or NULL with err filled. */
json_t *sky_ctl_state_dump(char *err, size_t errlen);

/* --- server --- */
/**
 * Bounds of the control socket (control.* in the config). Root and the socket's owner (the
 * daemon's user) are privileged: no per-uid bound, `reserved` connections that only they can
 * take, and when every connection is taken, a new privileged peer closes the least useful
 * one (already answered, else idle or mid-request, oldest first; never a privileged one
 * being served). Every request is bounded in bytes (request_max) and in time: from its first
 * byte to its newline (request_timeout), and its reply must be taken by the client
 * (send_timeout, without progress). A connection with nothing in progress is closed after
 * idle_timeout. Whatever limit is hit, the peer gets a last reply line naming it:
 * {"ok": false, "error": "...", "limit": "request_timeout"}.
 */
struct sky_ctl_limits {
	unsigned int max_clients;	 /* connections at once, all peers */
	unsigned int clients_per_uid;	 /* per peer uid, except root and the owner */
	unsigned int reserved;		 /* of max_clients: only root and the owner */
	unsigned int idle_timeout_ms;	 /* nothing in progress for this long: closed */
	unsigned int request_timeout_ms; /* first byte of a request to its newline */
	unsigned int send_timeout_ms;	 /* a pending reply not read for this long: closed */
	size_t request_max;		 /* bytes of one request line */
};

#define SKY_CTL_DEF_MAX_CLIENTS 256
#define SKY_CTL_DEF_CLIENTS_PER_UID 16
#define SKY_CTL_DEF_RESERVED 16
#define SKY_CTL_DEF_IDLE_TIMEOUT_MS 60000
#define SKY_CTL_DEF_REQUEST_TIMEOUT_MS 10000
#define SKY_CTL_DEF_SEND_TIMEOUT_MS 30000
#define SKY_CTL_DEF_REQUEST_MAX (1u << 20)

/** The defaults above. */
void sky_ctl_limits_default(struct sky_ctl_limits *l);
/**
 * Check l: 0, or -EINVAL with err naming the field (max_clients 2..65536, reserved below
 * max_clients, clients_per_uid 1..max_clients, timeouts 100 ms..1 day, request_max
 * 1 KiB..64 MiB).
 */
int sky_ctl_limits_check(const struct sky_ctl_limits *l, char *err, size_t errlen);

struct sky_ctl_server;
/** Listen on a Unix socket (removes a stale socket file; mode e.g. 0660). NULL + err. */
struct sky_ctl_server *sky_ctl_server_open(const char *path, unsigned int mode, char *err,
					   size_t errlen);
/** Serve ready clients, waiting at most timeout_ms. Never exits the process on bad input. */
int sky_ctl_server_poll(struct sky_ctl_server *s, int timeout_ms);
/** From any thread: end the server's current (or next) wait in sky_ctl_server_poll, so the
 *  main loop runs its periodic work now (e.g. a change another thread queued). */
void sky_ctl_wake(void);
void sky_ctl_server_close(struct sky_ctl_server *s);
/** Clients connected to s now. */
unsigned int sky_ctl_server_clients(const struct sky_ctl_server *s);
/** Replace s's limits (checked: 0 or -EINVAL with err). New bounds apply from the next poll. */
int sky_ctl_server_set_limits(struct sky_ctl_server *s, const struct sky_ctl_limits *l, char *err,
			      size_t errlen);

/* --- Prometheus metrics --- */
/** A writer appends Prometheus text exposition lines (with # HELP / # TYPE) to out. */
typedef void (*sky_metrics_fn)(void *arg, FILE *out);
int sky_metrics_register(const char *name, sky_metrics_fn fn, void *arg);
/** All registered writers' output, as one malloc'd string (caller frees). */
char *sky_metrics_render(size_t *len);
/** Optional HTTP listener (GET /metrics) on "ADDR:PORT"; served from sky_ctl_server_poll. */
int sky_metrics_http_open(const char *listen, char *err, size_t errlen);
void sky_metrics_http_close(void);
/** Remove every metrics writer (end of the daemon, tests). */
void sky_metrics_unregister_all(void);
/** TCP port the metrics listener is bound to (useful with port 0), or -1 when closed. */
int sky_metrics_http_port(void);

/* --- the journal's record check --- */
/** CRC-32 (IEEE 802.3, reflected; zlib's crc32): crc = 0 to start, chainable. */
uint32_t sky_ctl_crc32(uint32_t crc, const void *buf, size_t len);

#endif /* SKYGATE_CONTROL_H */
