/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internal to lib/cluster. The folder is cut by job; each file calls only the ones above it
 * in this list:
 *
 *   cluster_table.c  the beam table (pure)
 *   cluster_keys.c   the key layout, values, their checks (pure)
 *   cluster_etcd.c   the etcd v3 JSON client (libcurl): unary calls and the watch stream
 *   cluster_cfg.c    the `cluster:` section
 *   cluster.c        the node: its thread (lease, claims, watch), what the main lcore
 *                    applies (state through the control commands, beam flags), the hook
 *                    that sends a validated change to etcd instead of applying it
 *   cluster_ctl.c    `cluster status`, `cluster import`, metrics
 */
#ifndef SKYGATE_CLUSTER_PRIV_H
#define SKYGATE_CLUSTER_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "skygate/cluster.h"

#define SKY_CLUSTER_MAX_ARGS 64
#define SKY_CLUSTER_MAX_ENDPOINTS 8

/* --- cluster_etcd.c --- */

/* Base64 (RFC 4648, with padding). encode: returns the length written (out has room for
 * 4 * ceil(n / 3) + 1), decode: the bytes written or -EINVAL. */
size_t sky_b64_encode(const void *in, size_t n, char *out);
long sky_b64_decode(const char *in, size_t n, void *out, size_t outlen);
/* int64 fields of etcd's JSON come as strings ("12") or numbers; 0 when absent/bad */
int64_t sky_etcd_i64(const json_t *v);

/* One connection's worth of client: endpoints tried in turn, every call bounded. One
 * thread per struct (libcurl easy handles are not shared). */
struct sky_etcd {
	char endpoints[SKY_CLUSTER_MAX_ENDPOINTS][256]; /* "http://127.0.0.1:2379" */
	unsigned int n_endpoints;
	unsigned int cur;	 /* the endpoint that answered last */
	unsigned int timeout_ms; /* each unary call, connection included */
	void *curl;		 /* CURL * */
	char err[1024];		 /* the last failure */
	/* the watch's socket, so that another thread can break the stream at once */
	pthread_mutex_t sock_lock;
	int sock; /* -1: none */
};

int sky_etcd_init(struct sky_etcd *e, const char (*endpoints)[256], unsigned int n,
		  unsigned int timeout_ms);
void sky_etcd_fini(struct sky_etcd *e);
/* POST /v3/<path> with req; *resp: the reply object. 0, -ETIMEDOUT / -ECONNREFUSED /
 * -EIO (transport; e->err says), -EPROTO (an error reply: e->err has etcd's message). */
int sky_etcd_call(struct sky_etcd *e, const char *path, const json_t *req, json_t **resp);
/* Range over [key, key + prefix end) when prefix, else the one key; at revision rev (0:
 * now). *resp: the reply (kvs with base64 keys/values, header.revision). */
int sky_etcd_range(struct sky_etcd *e, const char *key, bool prefix, int64_t rev, json_t **resp);
/* Range over [key, end) (end "": key's prefix end, NULL: the one key). */
int sky_etcd_range_to(struct sky_etcd *e, const char *key, const char *end, int64_t rev,
		      json_t **resp);
int sky_etcd_put(struct sky_etcd *e, const char *key, const char *val, int64_t lease, int64_t *rev);
int sky_etcd_delete(struct sky_etcd *e, const char *key, int64_t *rev);
/* Put key=val when key's mod_revision is mod_rev (0: when key does not exist). 0 with
 * *done = 1 (stored, *rev its revision) or 0 (the compare failed), or -errno. */
int sky_etcd_put_if(struct sky_etcd *e, const char *key, const char *val, int64_t lease,
		    int64_t mod_rev, int *done, int64_t *rev);
/* Put key=val (no lease) when guard holds guard_val (a usage snapshot, only while this
 * node holds the beam's claim). 0 with *done 1 or 0, or -errno. */
int sky_etcd_put_when(struct sky_etcd *e, const char *guard, const char *guard_val, const char *key,
		      const char *val, int *done);
/* Delete key when its value is val (a claim we hold). */
int sky_etcd_delete_if(struct sky_etcd *e, const char *key, const char *val);
int sky_etcd_lease_grant(struct sky_etcd *e, unsigned int ttl_s, int64_t *id);
/* *ttl: seconds left (0 or less: the lease is gone) */
int sky_etcd_lease_keepalive(struct sky_etcd *e, int64_t id, int64_t *ttl);
int sky_etcd_lease_revoke(struct sky_etcd *e, int64_t id);

/* A watch event, decoded: type, key, value (NUL-terminated), revisions. */
struct sky_etcd_event {
	bool del;
	const char *key;
	const char *value; /* "" for a delete */
	size_t value_len;
	int64_t mod_rev;
};
/* Called for each event, then with ev == NULL at the end of each reply (header revision
 * rev). Return non-zero to stop the watch. */
typedef int (*sky_etcd_watch_fn)(void *arg, const struct sky_etcd_event *ev, int64_t rev);
/* Watch [prefix, end) (end NULL: prefix end) from revision from_rev, until fn returns non-zero,
 * *stop is set, or the stream fails. Returns 0 (stopped), -ESTALE (from_rev was compacted:
 * *compacted = the oldest revision kept), or -errno with e->err. */
int sky_etcd_watch(struct sky_etcd *e, const char *prefix, const char *end, int64_t from_rev,
		   sky_etcd_watch_fn fn, void *arg, const volatile int *stop, int64_t *compacted);
/* From another thread: end a running sky_etcd_watch() on e now (its socket is shut down:
 * the watch returns at once instead of at libcurl's next progress call). */
void sky_etcd_watch_break(struct sky_etcd *e);

/* --- cluster_cfg.c --- */

struct sky_cluster_cfg {
	char endpoints[SKY_CLUSTER_MAX_ENDPOINTS][256];
	unsigned int n_endpoints;
	char prefix[256];
	char node[SKY_CLUSTER_NAME_MAX];
	unsigned int ttl_s;	 /* the lease's time to live */
	unsigned int timeout_ms; /* each etcd call */
	enum sky_cluster_other other;
	struct sky_cluster_pin pins[SKY_CLUSTER_MAX_BEAMS];
	unsigned int n_pins;
};

/* The `cluster:` section: 1 with out filled, 0 when absent, -1 with err. */
int sky_cluster_cfg_parse(const struct sky_cfg *cfg, struct sky_cluster_cfg *out,
			  struct sky_cfg_err *err);

/* --- cluster.c --- */

#define SKY_CLUSTER_COUNTERS(X)                                                                    \
	X(changes_applied, "State changes from the store applied through the control commands")    \
	X(changes_refused,                                                                         \
	  "State changes from the store refused (malformed, or a command failed)")                 \
	X(changes_lost, "State changes dropped for lack of memory")                                \
	X(changes_stored, "Validated changes this node wrote to the store")                        \
	X(writes_refused, "Changes refused because etcd could not be reached (read-only)")         \
	X(etcd_errors, "Calls to etcd that failed (timeouts, refused connections, errors)")        \
	X(leases_lost, "Leases lost (expired, or not renewed in time)")                            \
	X(snapshots, "Full state snapshots read from etcd")                                        \
	X(ownership_changes, "Beams this node started or stopped shaping")                         \
	X(usage_saved, "Usage snapshots of owned beams written to the store")                      \
	X(usage_taken, "Usage snapshots read and applied when a beam was taken over")              \
	X(usage_refused, "Usage snapshots refused (malformed): the previous usage stays")          \
	X(usage_errors, "Usage snapshots not written (etcd unreachable, claim gone)")

/* clang-format off */
enum sky_cluster_counter {
#define X(n, h) SKY_CLUSTER_C_##n,
	SKY_CLUSTER_COUNTERS(X)
#undef X
	SKY_CLUSTER_C_MAX
};
/* clang-format on */

struct sky_cluster_beam {
	char name[SKY_CLUSTER_NAME_MAX];
	int sub_idx;			   /* index in the subscriber model */
	char holder[SKY_CLUSTER_NAME_MAX]; /* owners/BEAM in etcd ("": nobody) */
	char table[SKY_CLUSTER_NAME_MAX];  /* the node the table gives it to */
	bool desired;			   /* the table gives it to this node */
	bool claimed;			   /* this node holds owners/BEAM */
	bool shaping;			   /* the data path shapes it here (main lcore writes) */
	bool draining;			   /* given up, the workers not yet quiescent since */
	/* usage snapshots (fair use): the main lcore encodes what the session thread puts
	 * at usage/BEAM; the session thread reads it after a claim, the main lcore applies
	 * it before the beam is shaped here */
	char *usage_out; /* to put (NULL: nothing new) */
	char *usage_in;	 /* read at the claim ("" when there was none) */
	bool usage_read; /* usage_in read since the claim (or no fair use) */
};

/* the last quota change of a subscriber this node applied from the store */
struct sky_cluster_qrev {
	uint32_t id;
	bool used;   /* it set his usage (reset, set used=), not only his top-ups */
	int64_t rev; /* its revision */
};

struct sky_cluster_member {
	char name[SKY_CLUSTER_NAME_MAX];
	int64_t lease;
	int64_t applied; /* the revision it says it has applied */
};

/* a state change from the store, waiting for the main lcore */
struct sky_cluster_change {
	struct sky_cluster_change *next;
	char *key, *value;
	bool del;
	int64_t rev;
};

struct sky_cluster {
	struct sky_cluster_cfg cfg;
	struct sky_subs *subs;
	unsigned int n_beams;
	struct sky_etcd mcl, scl, wcl; /* clients of the main lcore, session, watch threads */
	pthread_t sthr, wthr;
	bool threads;
	volatile int stop;  /* the node stops */
	volatile int wstop; /* the watch starts again (or stops) */
	/* --- shared, under lock --- */
	pthread_mutex_t lock;
	struct sky_cluster_beam beams[SKY_CLUSTER_MAX_BEAMS];
	struct sky_cluster_member members[SKY_CLUSTER_MAX_NODES];
	unsigned int n_members;
	bool members_changed;
	int64_t lease;	     /* 0: none */
	uint64_t fence_ms;   /* claims are good until then (monotonic ms) */
	bool connected;	     /* the last call to etcd worked */
	bool connected_said; /* what the last cluster.etcd event said (main lcore) */
	bool watching;
	struct sky_cluster_change *q_head, *q_tail;
	int64_t seen_rev;	 /* the last revision the watch or a snapshot delivered */
	int64_t applied_rev;	 /* the revision of the last state change applied */
	int64_t applied_seen;	 /* every state change up to this revision is applied */
	int64_t applied_at_ms;	 /* wall clock when applied_rev was applied */
	int64_t sent_at_ms;	 /* wall clock when this node last sent a change (main lcore) */
	struct sky_quota *quota; /* NULL: no usage snapshots */
	uint64_t usage_next_ms;	 /* the next snapshot of the owned beams (main lcore) */
	struct sky_cluster_qrev *qrev; /* main lcore */
	size_t n_qrev, cap_qrev;
	char last_err[1200];
	char last_refused[1200];
	uint64_t ctr[SKY_CLUSTER_C_MAX];
};

/* SHA-256 of a file (bounded), as 64 hex digits: 0 or -errno with err */
int sky_cluster_file_sha256(const char *path, char hex[65], char *err, size_t errlen);
/* monotonic milliseconds; wall clock milliseconds (Unix time: compared across nodes) */
uint64_t sky_cluster_now_ms(void);
int64_t sky_cluster_wall_ms(void);

#endif
