/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internal to lib/control. The folder is cut by job; each file calls only the ones above it
 * in this list (checked with nm: no file calls one below it):
 *
 *   util.c        mkdir -p, joining words for messages
 *   crc32.c       the journal's record check
 *   metrics.c     the control plane's counters, Prometheus writers, telemetry
 *   journal.c     the log: records of words, append, group commit, replay, rewrite
 *   registry.c    the command table, compaction rules, `help`, what handlers call
 *   journal_ctl.c the daemon's journal: recording commands, compaction by the rules,
 *                 `journal show` and `journal compact`
 *   dispatch.c    registration with the built-ins, dispatch (apply, then record), replay,
 *                 `metrics`
 *   server.c      the Unix socket and the metrics HTTP listener
 */
#ifndef SKYGATE_CONTROL_PRIV_H
#define SKYGATE_CONTROL_PRIV_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "skygate/control.h"
#include "skygate/journal.h"

_Static_assert(SKY_JOURNAL_MAX_WORDS == SKY_CTL_MAX_ARGS,
	       "a journaled command must fit in a journal record and back");

/* --- util.c --- */

/* mkdir -p; 0 or -errno. */
int sky_ctl_mkdirs(const char *path, mode_t mode);
/* Join argv into "a b 'c d'" for messages and audit lines (truncated to len). */
void sky_ctl_join(char *buf, size_t len, int argc, char *const *argv);

/* --- metrics.c --- */

/* Counters of the control plane itself (control path only, main lcore). */
#define SKY_CTL_COUNTERS(X)                                                                        \
	X(requests, counter, "Control requests dispatched (socket and replay)")                    \
	X(errors, counter, "Control requests answered with an error")                              \
	X(bad_requests, counter, "Malformed control requests (JSON, argv shape, size)")            \
	X(journal_records, counter, "Records appended to the journal")                             \
	X(journal_errors, counter, "Journal appends that failed")                                  \
	X(replayed, counter, "Journal records replayed at start")                                  \
	X(replay_failed, counter, "Journal records whose command failed on replay")                \
	X(clients_accepted, counter, "Control socket connections accepted")                        \
	X(clients_refused, counter, "Control socket connections refused (limit)")                  \
	X(clients_evicted, counter,                                                                \
	  "Control socket connections closed to make room for root or the socket owner")           \
	X(clients_idle_closed, counter,                                                            \
	  "Control socket connections closed after the idle timeout")                              \
	X(requests_timed_out, counter,                                                             \
	  "Control requests not complete within the request timeout (connection closed)")          \
	X(replies_timed_out, counter,                                                              \
	  "Control connections closed because the client did not read its reply in time")          \
	X(journal_compactions, counter,                                                            \
	  "Journal compactions (rewrites without superseded records)")                             \
	X(journal_superseded, counter, "Journal records dropped by compaction as superseded")      \
	X(journal_dropped, counter, "Torn or corrupt journal tails dropped at replay")             \
	X(http_requests, counter, "HTTP requests served by the metrics listener")

/* clang-format off */
enum sky_ctl_counter {
#define X(name, type, help) SKY_CTL_C_##name,
	SKY_CTL_COUNTERS(X)
#undef X
	SKY_CTL_C_MAX
};
/* clang-format on */

extern uint64_t sky_ctl_counters[SKY_CTL_C_MAX];
extern unsigned int sky_ctl_clients_now;

/* DPDK telemetry endpoint /skygate/control (once per process). */
void sky_ctl_telemetry_register(void);

/* --- registry.c --- */

struct sky_ctl_extender {
	sky_ctl_extend_fn fn;
	void *arg;
};

/* One registered command. */
struct sky_ctl_cmd {
	char *name; /* "map update" */
	char *usage;
	char *help;
	int n_words;
	char **words; /* name split at spaces */
	unsigned int flags;
	sky_ctl_fn fn;
	void *arg;
	struct sky_ctl_extender *ext;
	unsigned int n_ext;
	char *group; /* journal compaction rule (sky_ctl_journal_rule), or NULL */
	int nkey;
};

/* Add a command to the table: 0, -EINVAL, -EEXIST, -ENOMEM. */
int sky_ctl_table_add(const char *cmd, const char *usage, const char *help, unsigned int flags,
		      sky_ctl_fn fn, void *arg);
/* Add an extender to cmd: 0, -EINVAL, -ENOENT, -ENOMEM. */
int sky_ctl_table_extend(const char *cmd, sky_ctl_extend_fn fn, void *arg);
/* Empty the table. */
void sky_ctl_table_clear(void);
/* The command that matches the most leading words of argv, or NULL. */
const struct sky_ctl_cmd *sky_ctl_table_match(int argc, char **argv);
/* Does any registered command have a compaction rule? */
int sky_ctl_have_rules(void);
/* Forget the words set with sky_ctl_journal_as(). */
void sky_ctl_journal_as_clear(struct sky_ctl_call *call);
/* Built-in command `help`. */
int sky_ctl_help_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result);

/* --- journal_ctl.c --- */

/* The journal sky_ctl_journal_open() opened, or NULL. */
struct sky_journal *sky_ctl_journal(void);
/* Journal a command that was applied: append (fsync'd unless in a batch), then compact when
 * the journal has grown enough. 0, or -errno from the append. Not open: -ENOTCONN. */
int sky_ctl_journal_record(int argc, char *const *argv, uid_t uid);
/* Group commit around one server round (no journal: nothing to do, 0). */
void sky_ctl_journal_batch_begin(void);
int sky_ctl_journal_batch_end(void);
/* Built-in commands `journal show [N]` and `journal compact`. */
int sky_ctl_journal_show_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			     json_t **result);
int sky_ctl_journal_compact_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
				json_t **result);

/* --- server.c: who may connect, who goes first (pure functions, for tests) --- */

enum sky_ctl_admit {
	SKY_CTL_ADMIT,	     /* take the connection */
	SKY_CTL_ADMIT_EVICT, /* take it after closing the victim */
	SKY_CTL_REFUSE_UID,  /* the peer's uid has clients_per_uid connections */
	SKY_CTL_REFUSE_FULL, /* no room for this peer */
};

/* Connections open now (not counting the new one). */
struct sky_ctl_census {
	unsigned int total;    /* every peer */
	unsigned int unpriv;   /* peers other than root and the owner */
	unsigned int same_uid; /* peers with the new connection's uid */
};

/* A new connection from a privileged (root, owner) or other peer; have_victim: an open
 * connection could be closed to make room (sky_ctl_pick_victim() found one). */
enum sky_ctl_admit sky_ctl_admit(const struct sky_ctl_limits *l, const struct sky_ctl_census *n,
				 int privileged, int have_victim);

/* An open connection as the eviction choice sees it. */
enum sky_ctl_conn_state {
	SKY_CTL_CONN_DONE, /* answered, closing */
	SKY_CTL_CONN_IDLE, /* nothing in progress, or a request arriving */
	SKY_CTL_CONN_BUSY, /* a request waiting to run or a reply being sent */
};
struct sky_ctl_conn_view {
	int privileged;
	enum sky_ctl_conn_state state;
	uint64_t last_ms; /* last activity */
};

/* The connection to close for a privileged newcomer: the least useful (other peers before
 * privileged ones; answered, then idle, then busy; oldest first), never a privileged busy
 * one. Its index, or -1. */
int sky_ctl_pick_victim(const struct sky_ctl_conn_view *v, unsigned int n);

/* The timers of one connection. */
struct sky_ctl_conn_times {
	uint64_t last_ms;      /* last byte read or reply finished */
	uint64_t req_start_ms; /* first byte of the request arriving now, 0 = none */
	uint64_t out_since_ms; /* last progress sending a pending reply, 0 = nothing pending */
	int work;	       /* a complete request waits to run */
};

enum sky_ctl_expiry {
	SKY_CTL_EXP_NONE,
	SKY_CTL_EXP_IDLE,
	SKY_CTL_EXP_REQUEST,
	SKY_CTL_EXP_SEND,
};

/* Which bound, if any, the connection has passed at now_ms. */
enum sky_ctl_expiry sky_ctl_expired(const struct sky_ctl_limits *l,
				    const struct sky_ctl_conn_times *t, uint64_t now_ms);

#endif
