/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Cluster mode: several gateways per ground station share one source of truth in etcd
 * (v3 JSON gateway, reached with libcurl + jansson) and split the beams among themselves.
 *
 * Pieces, from the bottom:
 *   beam table   sky_cluster_table(): every node computes the same beam -> node table from
 *                the names of the live members (Maglev-style population: each node walks
 *                its own permutation of the beams, nodes take turns, so the split is exact
 *                to one beam and a join or leave moves few beams). Pure.
 *   key layout   sky_cluster_key_*(), sky_cluster_op_from_argv(): where each piece of state
 *                lives under the prefix and which control command a value replays. Pure.
 *   etcd client  struct sky_etcd: range (with revision), put, delete, txn, lease grant /
 *                keepalive / revoke, watch (a streaming read). Every call is bounded in
 *                time. Control path only (a dedicated thread).
 *   the node     struct sky_cluster: a lease and a member key, beam claims, the state
 *                snapshot and watch. Its thread talks to etcd and never touches a data-path
 *                table; the main lcore applies what it found (sky_cluster_poll) through the
 *                control commands (journaled locally as the node's cache) and flips the
 *                subscriber model's per-beam owned flags.
 *
 * Key layout under the prefix (`cluster.prefix`, e.g. /skygate/station1):
 *   members/NODE              {"node", "lease", "pid", "applied"}   bound to NODE's lease
 *   owners/BEAM               NODE                                   bound to NODE's lease
 *   state/plans/NAME          {"argv": ["plan", "set", NAME, ...]}
 *   state/beams/NAME          {"argv": ["beam", "set", NAME, ...]}
 *   state/subscribers/ID      {"argv": ["subscriber", "add"|"set"|"del", ID, ...]}
 *   state/maps/MAP/KEY        {"argv": ["map", "update"|"delete", MAP, KEY, ...]}
 *   state/policy              {"argv": ["policy", "load", FILE], "sha256": HEX}
 *                             | {"argv": ["policy", "unload"]}   (FILE: the same on every node)
 *   state/quota/ID            {"argv": ["quota", "add"|"reset"|"set", ID, ...]}   the last one
 *                             (a `quota import` is stored as one `quota set` per row)
 *   usage/BEAM                the beam's usage snapshot (sky_cluster_usage_encode), written
 *                             by its owner every quota.save_interval, read by the next owner
 * Names in keys are escaped: bytes other than A-Z a-z 0-9 . _ - : become %XX (so a map key
 * 10.0.0.0/8 is 10.0.0.0%2F8). A removal is stored as a tombstone (its `del` / `delete` /
 * `unload` command), so an object of the configuration removed at runtime stays removed
 * on every node, also on one that starts later.
 */
#ifndef SKYGATE_CLUSTER_H
#define SKYGATE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SKY_CLUSTER_MAX_NODES 64
#define SKY_CLUSTER_MAX_BEAMS 64
#define SKY_CLUSTER_NAME_MAX 64 /* node and beam names, NUL included */
#define SKY_CLUSTER_KEY_MAX 512

/* --- the beam table (pure) --- */

/** A beam pinned to a node: that node owns it while it is live, else the table decides. */
struct sky_cluster_pin {
	char beam[SKY_CLUSTER_NAME_MAX];
	char node[SKY_CLUSTER_NAME_MAX];
};

/**
 * Assign beams to live nodes. beams[n_beams] and nodes[n_nodes] are names (nodes in any
 * order, distinct); owner[b] is set to the index in nodes[] of beam b's owner, -1 when
 * there is no node. Pinned beams go to their live node first; the others are dealt
 * Maglev-style: node i's preference order of the beams is by a hash of (node name, beam
 * name); the (node, beam) pairs are taken heaviest first while the node has room (the
 * floor of the share, then one more until every beam has a node). The result depends on the names
 * only (not on their order in the arrays), so every node computes the same table; each node gets
 * floor or ceil of the unpinned beams / nodes. Returns 0, -EINVAL (too many beams or nodes, a NULL
 * or duplicate node name), -ENOMEM.
 */
int sky_cluster_table(const char *const *beams, unsigned int n_beams, const char *const *nodes,
		      unsigned int n_nodes, const struct sky_cluster_pin *pins, unsigned int n_pins,
		      int *owner);

/** The 64-bit hash the table uses (FNV-1a over a, a 0 byte, b; then a finalizer). */
uint64_t sky_cluster_hash(const char *a, const char *b);

/* --- the key layout (pure) --- */

/** Escape a name for a key component (see above). Returns its length, or -ENAMETOOLONG. */
int sky_cluster_key_escape(const char *name, char *out, size_t outlen);
/** The inverse. Returns the length, or -EINVAL (bad %XX, an escaped NUL), -ENAMETOOLONG. */
int sky_cluster_key_unescape(const char *comp, char *out, size_t outlen);

/** What a state change does in etcd: the key (under the prefix) and the value to store. */
struct sky_cluster_op {
	char key[SKY_CLUSTER_KEY_MAX]; /* full key: PREFIX/state/... */
	json_t *value;		       /* {"argv": [...]}: the caller owns it */
};

/**
 * The etcd change for a journaled control command (argv: the whole request, command words
 * included). prev: the value stored at the key now (NULL: none): a `plan set`, `beam set`
 * or `subscriber set` is merged into it (key=value words: later ones win; into a stored
 * `subscriber add` the set's words are folded, `k=` removing k), so a key always holds
 * what recreates the object on top of the configuration. Returns 0 with op filled,
 * -ENOTSUP (a command with no place in the store: err says which), -EINVAL (bad words).
 */
int sky_cluster_op_from_argv(const char *prefix, int argc, char *const *argv, const json_t *prev,
			     struct sky_cluster_op *op, char *err, size_t errlen);

/**
 * Check a value read at key (full key, under prefix): a JSON object {"argv": [strings]}
 * whose command belongs at that very key. Returns the argv array (borrowed from value),
 * or NULL with err naming the key and what is wrong.
 */
const json_t *sky_cluster_value_check(const char *prefix, const char *key, const json_t *value,
				      char *err, size_t errlen);

/* --- quota usage snapshots (pure) --- */

struct sky_quota_snap;

/** Subscribers in one beam's usage snapshot at most (the heaviest; ~80 bytes each, so a
 *  value stays under etcd's 1.5 MiB request limit). */
#define SKY_CLUSTER_USAGE_MAX_SUBS 16384

/** PREFIX/usage/esc(BEAM). 0 or -ENAMETOOLONG. */
int sky_cluster_usage_key(const char *prefix, const char *beam, char *out, size_t outlen);
/**
 * A beam's usage snapshot as stored at its usage key: {"v": 1, "beam", "node", "rev": the
 * revision the writer had applied, "at": Unix seconds, "subs": [[id, used, credit,
 * period_start, period_end, anchor_day, alerts], ...]}. At most SKY_CLUSTER_USAGE_MAX_SUBS
 * of r[0..n) (the first ones: pass them heaviest first); *dropped = how many did not fit.
 * Returns malloc'd compact JSON text, or NULL (out of memory).
 */
char *sky_cluster_usage_encode(const char *beam, const char *node, int64_t rev, int64_t at,
			       const struct sky_quota_snap *r, size_t n, size_t *dropped);
/**
 * Check and decode a usage snapshot read at key (beam: the beam the key names). 0 with
 * *out (malloc'd, may be NULL when *n is 0), *n and *rev (the writer's applied revision);
 * -EINVAL with err naming the key and what is wrong (nothing allocated).
 */
int sky_cluster_usage_decode(const char *key, const char *beam, const char *text,
			     struct sky_quota_snap **out, size_t *n, int64_t *rev, char *err,
			     size_t errlen);

/* --- the node (control path only) --- */

struct sky_cfg;
struct sky_cfg_err;
struct sky_subs;
struct sky_cluster;
struct sky_quota;

/** What a node does with packets of beams it does not own. */
enum sky_cluster_other { SKY_CLUSTER_OTHER_DROP = 0, SKY_CLUSTER_OTHER_PASS = 1 };

/**
 * Read and check the `cluster:` section (absent: *enabled = 0, nothing else happens).
 * Used by the daemon's start and `skygate --check`. Returns 0, or -1 with err
 * "FILE:LINE: cluster.KEY: reason".
 */
int sky_cluster_cfg_check(const struct sky_cfg *cfg, int *enabled, struct sky_cfg_err *err);

/**
 * Create the node from the `cluster:` section (NULL with err when it is absent or bad).
 * subs: the subscriber model whose per-beam flags the node sets. Nothing is contacted yet.
 */
struct sky_cluster *sky_cluster_create(const struct sky_cfg *cfg, struct sky_subs *subs,
				       struct sky_cfg_err *err);
/**
 * Join: grant a lease, write the member key, load the state snapshot (one revision) and
 * apply it through the control commands, start the node's thread (keepalive, watch,
 * claims). Call after the journal is open and the commands are registered. When etcd
 * cannot be reached in time the node starts on its local cache (the journal, replayed by
 * the caller), read-only and alarmed, and keeps trying. Returns 0, or -1 with err.
 */
int sky_cluster_start(struct sky_cluster *c, char *err, size_t errlen);
/** Apply what the thread found (state changes, membership, ownership); main lcore,
 *  from the control loop. Bounded: at most a few hundred changes per call. */
void sky_cluster_poll(struct sky_cluster *c);
/** Give up the beams, revoke the lease (bounded, ~1 s), stop the thread. */
void sky_cluster_stop(struct sky_cluster *c);
void sky_cluster_destroy(struct sky_cluster *c);
/** Fair use: keep the usage of the beams this node owns in etcd (usage/BEAM, every
 *  quota.save_interval, and when a beam is given up) and take a beam's usage over before
 *  shaping it. Call before sky_cluster_start. */
void sky_cluster_set_quota(struct sky_cluster *c, struct sky_quota *q);
/** What `reload` says in cluster mode (it is refused): into buf. */
void sky_cluster_reload_refusal(const struct sky_cluster *c, char *buf, size_t len);
/** Register `cluster status`, `cluster import`, the store hook (sky_ctl_store_hook), the
 *  metrics and the periodic poll. */
int sky_cluster_register(struct sky_cluster *c);

#endif /* SKYGATE_CLUSTER_H */
