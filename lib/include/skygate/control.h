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
 * Journal: a command registered with SKY_CTL_F_JOURNAL that succeeds is recorded in the
 * journal (skygate/journal.h: STATE_DIR/journal, fsync'd) before the reply is sent: the
 * dispatcher applies the change, then appends it. At start, after the config is applied, the
 * journal is replayed through the same dispatcher (call->replay = 1). A torn or corrupt last
 * record is ignored with a warning. The journal is a log of words: which commands supersede
 * which (compaction) is declared here, with sky_ctl_journal_rule().
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
/** Replay every intact record; returns the number replayed, or -1 (err filled) on I/O error.
 *  A record whose command fails on replay is reported in the log and skipped. */
int sky_ctl_journal_replay(char *err, size_t errlen);
void sky_ctl_journal_close(void);
/** The state directory given to sky_ctl_journal_open(), or NULL. */
const char *sky_ctl_state_dir(void);
/**
 * Journal compaction rule for a registered command. Commands of one group change the same
 * state. A journaled record of cmd supersedes the earlier records of its group whose first
 * nkey arguments (after the command words) equal its own; nkey = 0: every earlier record of
 * the group; nkey < 0: cmd joins the group (can be superseded) but supersedes nothing.
 * Commands without a rule are never dropped. Only for commands whose record states the
 * whole resulting value (use sky_ctl_journal_as to journal the full form of a partial
 * change). E.g. ("beam set", "beam", 1); ("subscriber load", "subscriber", 0) with
 * ("subscriber add", "subscriber", -1). Returns 0, -ENOENT (not registered), -EINVAL.
 */
int sky_ctl_journal_rule(const char *cmd, const char *group, int nkey);
/**
 * Rewrite the journal without superseded records (temp file, fsync, rename: a crash leaves
 * the old or the new journal). Replay compacts when it finds superseded records, appends
 * when the journal has doubled (and passed 1 MiB) since. Returns the number of records
 * dropped, or -1 with err filled (the journal is unchanged).
 */
int sky_ctl_journal_compact(char *err, size_t errlen);
/** Bytes of intact records in the journal after the last replay/append (tests, status). */
long sky_ctl_journal_size(void);

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
