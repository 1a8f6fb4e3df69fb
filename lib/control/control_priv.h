/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internal to lib/control. The folder is cut by job; each file calls only the ones above it
 * in this list (checked with nm: no file calls one below it):
 *
 *   util.c        mkdir -p, joining words for messages
 *   crc32.c       the journal's record check
 *   metrics.c     the control plane's counters, Prometheus writers, telemetry
 *   journal.c     the log: records of words, the tip, append, scan, replay, snapshots
 *   registry.c    the command table, the state parts, `help`, what handlers call
 *   journal_ctl.c the daemon's journal: the write-ahead commit, replay checks, recovery
 *                 notes, snapshots from the parts, `journal ...` and `state dump`
 *   events.c      the events stream: sky_ctl_event, subscriptions and their bounded queues
 *   dispatch.c    registration with the built-ins, dispatch (validate, commit, apply),
 *                 replay, `metrics`
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
	X(journal_compactions, counter, "Journal compactions (snapshots of the live state)")       \
	X(journal_torn, counter, "Torn last journal records cut at start (a crash mid-append)")    \
	X(journal_recoveries, counter, "Damaged journal parts moved aside by --recover")           \
	X(journal_undone, counter, "Committed records taken back (the change failed after it)")    \
	X(journal_uncommitted, counter,                                                            \
	  "Journaled commands that succeeded without a write-ahead commit (a bug)")                \
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

/* Counters of the events stream (Prometheus skygate_events_<name>_total, `status`). */
#define SKY_CTL_EVENTS_COUNTERS(X)                                                                 \
	X(emitted, counter, "Events emitted (sky_ctl_event)")                                      \
	X(delivered, counter, "Event lines handed to subscribers' connections")                    \
	X(lost, counter, "Event lines dropped because a subscriber's queue was full")

/* clang-format off */
enum sky_ctl_events_counter {
#define X(name, type, help) SKY_CTL_EV_##name,
	SKY_CTL_EVENTS_COUNTERS(X)
#undef X
	SKY_CTL_EV_MAX
};
/* clang-format on */

extern uint64_t sky_ctl_events_counters[SKY_CTL_EV_MAX];
extern unsigned int sky_ctl_events_subscribers; /* subscriptions open now */
extern unsigned int sky_ctl_clients_now;
extern unsigned int sky_ctl_unacked_now; /* recoveries not yet acknowledged */

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
};

/* One registered part of the live state. */
struct sky_ctl_part {
	char *name;
	int order;
	sky_ctl_dump_fn dump;
	sky_ctl_snap_fn snap;
	void *arg;
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
/* The parts, in snapshot order. */
const struct sky_ctl_part *sky_ctl_parts(unsigned int *n);
void sky_ctl_parts_clear(void);
/* Forget the words set with sky_ctl_journal_as(). */
void sky_ctl_journal_as_clear(struct sky_ctl_call *call);
/* Built-in command `help`. */
int sky_ctl_help_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result);

/* --- journal_ctl.c --- */

/* The journal sky_ctl_journal_open() opened, or NULL. */
struct sky_journal *sky_ctl_journal(void);
/* The dispatcher's checks around a journaled command: before it runs (0, or -1 with the call
 * failed: the journal is broken), after it (rc: the handler's result): takes the record of a
 * failed change back, commits an applied one (the tip); -1 with the call failed when the
 * commit mark cannot be written. */
int sky_ctl_journal_precheck(struct sky_ctl_call *call);
int sky_ctl_journal_after(struct sky_ctl_call *call, int rc);
/* Group commit is gone with write-ahead (the fsync must precede the apply): the server's
 * calls around a round are no-ops, kept so server.c needs no change. */
void sky_ctl_journal_batch_begin(void);
int sky_ctl_journal_batch_end(void);
/* Check the files a record names ("files": path and SHA-256): 0, or -1 with why filled. */
int sky_ctl_journal_check_files(const json_t *doc, char *why, size_t whylen);
/* Note a recovery (shown in status and metrics until `journal ack`). */
int sky_ctl_journal_note(const char *aside, long offset, int record, const char *why);
/* The journal's own part of the state (its unacknowledged recoveries). */
int sky_ctl_journal_register_part(void);
/* Built-in commands. `journal recovered` runs on replay, or when *arg (an int) is set. */
int sky_ctl_journal_show_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			     json_t **result);
int sky_ctl_journal_compact_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
				json_t **result);
int sky_ctl_journal_ack_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			    json_t **result);
int sky_ctl_journal_recovered_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
				  json_t **result);
int sky_ctl_state_dump_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			   json_t **result);

/* --- events.c --- */

/* Bytes of event lines queued for one subscriber at most (beyond them: lost, counted). */
#define SKY_CTL_EVENTS_QUEUE_MAX (256u << 10)

struct sky_ctl_sub;
/* A subscription with filters argv ("type=GLOB", any matches; none: every event) and a
 * queue of cap bytes. NULL with err filled (a bad filter, ENOMEM). */
struct sky_ctl_sub *sky_ctl_sub_new(int argc, char **argv, size_t cap, char *err, size_t errlen);
void sky_ctl_sub_free(struct sky_ctl_sub *s);
/* Bytes queued, and events lost since the queue last drained. */
size_t sky_ctl_sub_queued(const struct sky_ctl_sub *s);
uint64_t sky_ctl_sub_lost(const struct sky_ctl_sub *s);
/* Something to send: queued lines or a pending events_lost line. */
int sky_ctl_sub_has_output(const struct sky_ctl_sub *s);
/* Where sky_ctl_sub_pump writes: 0, or -1 (nothing taken: stop). */
typedef int (*sky_ctl_sub_out_fn)(void *arg, const char *data, size_t len);
/* Move whole queued lines to out, about room bytes; once the queue is empty, the
 * events_lost line if events were lost. Returns the bytes moved. */
size_t sky_ctl_sub_pump(struct sky_ctl_sub *s, sky_ctl_sub_out_fn out, void *arg, size_t room);
/* The last sequence number given (0: no event yet). */
uint64_t sky_ctl_events_seq(void);
/* Built-in `events follow`: leaves a subscription for the server to claim. */
int sky_ctl_events_follow_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			      json_t **result);
/* The subscription the last `events follow` made (the caller owns it), or NULL. */
struct sky_ctl_sub *sky_ctl_events_claim(void);
/* Free an unclaimed subscription (a dispatch outside the server: tests, replay). */
void sky_ctl_events_drop_pending(void);

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
