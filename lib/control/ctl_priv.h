/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal to lib/control: what dispatch, journal, server and metrics share. */
#ifndef SKYGATE_CTL_PRIV_H
#define SKYGATE_CTL_PRIV_H

#include <stdint.h>
#include <sys/types.h>

#include "skygate/control.h"

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

/* Journal one record (argv JSON); 0 or -errno. Not open: returns -ENOTCONN. */
int sky_ctl_journal_append(int argc, char *const *argv, uid_t uid);
int sky_ctl_journal_is_open(void);
/* Group commit: between begin and end appends are written but not fsync'd; end fsyncs
 * once (0, or -errno: then later appends fail until the journal is reopened). */
void sky_ctl_journal_batch_begin(void);
int sky_ctl_journal_batch_end(void);
/* The compaction rule of the command argv names: 0, or -ENOENT when it has none. */
int sky_ctl_rule_of(int argc, char **argv, const char **group, int *nkey, int *n_words);
/* Does any registered command have a compaction rule? */
int sky_ctl_have_rules(void);
/* Built-in command `journal show [N]`. */
int sky_ctl_journal_show(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			 json_t **result);

/* Metrics: the control plane's own counters (always rendered first). */
void sky_ctl_metrics_write(void *arg, FILE *out);

/* DPDK telemetry endpoint /skygate/control (once per process). */
void sky_ctl_telemetry_register(void);

/* mkdir -p; 0 or -errno. */
int sky_ctl_mkdirs(const char *path, mode_t mode);

/* Join argv into "a b 'c d'" for messages and audit lines (truncated to len). */
void sky_ctl_join(char *buf, size_t len, int argc, char *const *argv);

#endif
