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
int sky_etcd_put(struct sky_etcd *e, const char *key, const char *val, int64_t lease, int64_t *rev);
int sky_etcd_delete(struct sky_etcd *e, const char *key, int64_t *rev);
/* Put key=val when key's mod_revision is mod_rev (0: when key does not exist). 0 with
 * *done = 1 (stored, *rev its revision) or 0 (the compare failed), or -errno. */
int sky_etcd_put_if(struct sky_etcd *e, const char *key, const char *val, int64_t lease,
		    int64_t mod_rev, int *done, int64_t *rev);
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
/* Watch [prefix, prefix end) from revision from_rev, until fn returns non-zero, *stop is
 * set, or the stream fails. Returns 0 (stopped), -ESTALE (from_rev was compacted:
 * *compacted = the oldest revision kept), or -errno with e->err. */
int sky_etcd_watch(struct sky_etcd *e, const char *prefix, int64_t from_rev, sky_etcd_watch_fn fn,
		   void *arg, const volatile int *stop, int64_t *compacted);

#endif
