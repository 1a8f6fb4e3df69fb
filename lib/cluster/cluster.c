/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The node of a cluster (skygate/cluster.h). Three threads of control:
 *
 *   session thread  holds the lease (grant, keepalive every lease_ttl / 3), the member
 *                   key, and the beam claims: it computes the beam table from the live
 *                   members, claims (owners/BEAM, a put that succeeds only when nobody
 *                   holds it, bound to our lease) the beams the table gives this node, and
 *                   releases the ones it no longer should own once the data path has
 *                   stopped shaping them.
 *   watch thread    one watch over the whole prefix: member and owner keys update the
 *                   shared view; state keys are queued for the main lcore. On a broken
 *                   stream it watches again from the last revision seen, or reloads a full
 *                   snapshot when that revision was compacted.
 *   main lcore      sky_cluster_poll(): applies queued state changes through the control
 *                   commands (journaled locally: the node's cache) and sets the per-beam
 *                   flags the data path reads. A beam is shaped here only while this node
 *                   holds its claim, the table gives it here, and the lease is surely
 *                   alive: the fence is lease_ttl * 2/3 after the last keepalive was sent,
 *                   so a node cut from etcd stops shaping before its lease (and with it
 *                   its claims) can expire and another node can claim its beams.
 *
 * Neither thread touches a data-path table or calls a control command: they share with
 * the main lcore only the fields under c->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skygate/cluster.h"
#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/file.h"
#include "skygate/quota.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"

#include "cluster_priv.h"

#define TICK_MS 50		    /* the session thread's step */
#define RETRY_MS 250		    /* after a failed call */
#define POLL_MAX_CHANGES 256	    /* state changes applied per sky_cluster_poll() */
#define POLICY_FILE_MAX (64u << 20) /* bytes of a policy object hashed */

int64_t
sky_cluster_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
sky_cluster_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
sky_cluster_file_sha256(const char *path, char hex[65], char *err, size_t errlen)
{
	size_t len;
	void *buf;
	int rc = sky_file_read(path, POLICY_FILE_MAX, 0, &buf, &len, err, errlen);

	if (rc != 0)
		return rc;
	rc = sky_sha256_hex(buf, len, hex);
	free(buf);
	if (rc != 0)
		snprintf(err, errlen, "%s: SHA-256 failed", path);
	return rc;
}

/* sleep ms in steps, back early when the node stops */
static void
nap(struct sky_cluster *c, unsigned int ms)
{
	while (ms > 0 && !__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		unsigned int s = ms < 20 ? ms : 20;

		usleep(s * 1000);
		ms -= s;
	}
}

static void
set_err(struct sky_cluster *c, const char *what, const struct sky_etcd *e)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->last_err, sizeof(c->last_err), "%s: %s", what, e->err);
	c->ctr[SKY_CLUSTER_C_etcd_errors]++;
	pthread_mutex_unlock(&c->lock);
}

/* --- the shared view, from keys (caller holds c->lock) --- */

static int
beam_of(const struct sky_cluster *c, const char *name)
{
	for (unsigned int b = 0; b < c->n_beams; b++)
		if (strcmp(c->beams[b].name, name) == 0)
			return (int)b;
	return -1;
}

/* what follows PREFIX/<dir>/ in key, or NULL */
static const char *
under(const struct sky_cluster *c, const char *key, const char *dir)
{
	size_t pl = strlen(c->cfg.prefix), dl = strlen(dir);

	if (strncmp(key, c->cfg.prefix, pl) != 0 || key[pl] != '/' ||
	    strncmp(key + pl + 1, dir, dl) != 0 || key[pl + 1 + dl] != '/')
		return NULL;
	return key + pl + 1 + dl + 1;
}

static void
member_set(struct sky_cluster *c, const char *name, const char *value, bool del)
{
	unsigned int i;

	for (i = 0; i < c->n_members; i++)
		if (strcmp(c->members[i].name, name) == 0)
			break;
	if (del) {
		if (i < c->n_members) {
			c->members[i] = c->members[--c->n_members];
			c->members_changed = true;
		}
		return;
	}
	if (i == c->n_members) {
		if (c->n_members == SKY_CLUSTER_MAX_NODES || strlen(name) >= SKY_CLUSTER_NAME_MAX)
			return;
		snprintf(c->members[i].name, sizeof(c->members[i].name), "%s", name);
		c->n_members++;
		c->members_changed = true;
	}
	json_t *j = json_loads(value, 0, NULL);

	c->members[i].lease = sky_etcd_i64(json_object_get(j, "lease"));
	c->members[i].applied = sky_etcd_i64(json_object_get(j, "applied"));
	json_decref(j);
}

static void
queue_push(struct sky_cluster *c, const char *key, const char *value, bool del, int64_t rev)
{
	struct sky_cluster_change *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->key = strdup(key)) == NULL || (q->value = strdup(value)) == NULL) {
		if (q != NULL) {
			free(q->key);
			free(q);
		}
		c->ctr[SKY_CLUSTER_C_changes_lost]++;
		return;
	}
	q->del = del;
	q->rev = rev;
	if (c->q_tail != NULL)
		c->q_tail->next = q;
	else
		c->q_head = q;
	c->q_tail = q;
	sky_ctl_wake(); /* the main lcore applies it now, not at the end of its wait */
}

/* one key/value of the prefix, from a snapshot or the watch */
static void
see_key(struct sky_cluster *c, const char *key, const char *value, bool del, int64_t rev)
{
	const char *rest;

	if ((rest = under(c, key, "members")) != NULL) {
		member_set(c, rest, value, del);
	} else if ((rest = under(c, key, "owners")) != NULL) {
		char name[SKY_CLUSTER_NAME_MAX];
		int b = sky_cluster_key_unescape(rest, name, sizeof(name)) < 0 ? -1
									       : beam_of(c, name);

		if (b >= 0)
			snprintf(c->beams[b].holder, sizeof(c->beams[b].holder), "%s",
				 del ? "" : value);
	} else if (under(c, key, "state") != NULL ||
		   strcmp(key + strlen(c->cfg.prefix), "/state/policy") == 0) {
		queue_push(c, key, value, del, rev);
	}
	if (rev > c->seen_rev)
		c->seen_rev = rev;
}

/* the order a snapshot applies in: what a change needs comes first (maps need the
 * policy that declares them) */
static int
kind_rank(const struct sky_cluster *c, const char *key)
{
	static const char *const kinds[] = {"plans/", "beams/", "policy", "maps/", "subscribers/"};
	const char *k = key + strlen(c->cfg.prefix) + strlen("/state/");

	if (strlen(key) < strlen(c->cfg.prefix) + strlen("/state/"))
		return 9;
	for (int i = 0; i < 5; i++)
		if (strncmp(k, kinds[i], strlen(kinds[i])) == 0)
			return i;
	return 9;
}

struct snap_kv {
	char *key, *value;
	int64_t rev;
	int rank;
};

static int
snap_cmp(const void *a, const void *b)
{
	const struct snap_kv *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank - y->rank;
	return x->rev < y->rev ? -1 : x->rev > y->rev;
}

/*
 * Read the whole prefix at one revision and take it in: members and owners replace the
 * view, state keys changed after `after` are queued in dependency order. Returns the
 * snapshot's revision, or -errno.
 */
static int64_t
load_snapshot(struct sky_cluster *c, struct sky_etcd *e, int64_t after)
{
	json_t *resp, *kvs, *kv;
	struct snap_kv *s;
	int64_t rev;
	size_t i, n = 0;
	char end[SKY_CLUSTER_KEY_MAX];
	int rc;

	/* members, owners, state: they sort before usage/, whose values (up to ~1 MB a beam)
	 * only the next owner of a beam reads */
	snprintf(end, sizeof(end), "%.400s/usage/", c->cfg.prefix);
	rc = sky_etcd_range_to(e, c->cfg.prefix, end, 0, &resp);

	if (rc != 0)
		return rc;
	rev = sky_etcd_i64(json_object_get(json_object_get(resp, "header"), "revision"));
	kvs = json_object_get(resp, "kvs");
	s = calloc(json_array_size(kvs) + 1, sizeof(*s));
	if (s == NULL) {
		json_decref(resp);
		return -ENOMEM;
	}
	json_array_foreach(kvs, i, kv)
	{
		const char *k64 = json_string_value(json_object_get(kv, "key"));
		const char *v64 = json_string_value(json_object_get(kv, "value")) ?: "";
		size_t kl = k64 ? strlen(k64) : 0, vl = strlen(v64);
		long a, b;

		s[n].key = malloc(kl / 4 * 3 + 1);
		s[n].value = malloc(vl / 4 * 3 + 1);
		if (s[n].key == NULL || s[n].value == NULL || k64 == NULL ||
		    (a = sky_b64_decode(k64, kl, s[n].key, kl / 4 * 3)) < 0 ||
		    (b = sky_b64_decode(v64, vl, s[n].value, vl / 4 * 3)) < 0) {
			free(s[n].key);
			free(s[n].value);
			continue;
		}
		s[n].key[a] = '\0';
		s[n].value[b] = '\0';
		s[n].rev = sky_etcd_i64(json_object_get(kv, "mod_revision"));
		s[n].rank = kind_rank(c, s[n].key);
		n++;
	}
	json_decref(resp);
	qsort(s, n, sizeof(*s), snap_cmp);
	pthread_mutex_lock(&c->lock);
	c->n_members = 0;
	c->members_changed = true;
	for (unsigned int b = 0; b < c->n_beams; b++)
		c->beams[b].holder[0] = '\0';
	for (i = 0; i < n; i++) {
		bool state = under(c, s[i].key, "state") != NULL ||
			     strcmp(s[i].key + strlen(c->cfg.prefix), "/state/policy") == 0;

		/* a quota change is not replayed from a snapshot (a top-up would count twice):
		 * a subscriber's usage comes with his beam's usage snapshot */
		if (state && under(c, s[i].key, "state") != NULL &&
		    strncmp(under(c, s[i].key, "state"), "quota/", 6) == 0) {
			if (s[i].rev > c->seen_rev)
				c->seen_rev = s[i].rev;
		} else if (!state || s[i].rev > after) {
			see_key(c, s[i].key, s[i].value, false, s[i].rev);
		}
		free(s[i].key);
		free(s[i].value);
	}
	if (rev > c->seen_rev)
		c->seen_rev = rev;
	c->ctr[SKY_CLUSTER_C_snapshots]++;
	pthread_mutex_unlock(&c->lock);
	free(s);
	return rev;
}

/* --- the watch thread --- */

static int
on_event(void *arg, const struct sky_etcd_event *ev, int64_t rev)
{
	struct sky_cluster *c = arg;

	/* only events move seen_rev: a reply's header revision is the store's, not what was
	 * delivered (the reply that creates a watch, or one that reports a compaction, carries
	 * the newest revision and no event) */
	if (ev == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	see_key(c, ev->key, ev->value, ev->del, ev->mod_rev);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void *
watch_main(void *arg)
{
	struct sky_cluster *c = arg;
	bool need_snapshot = c->seen_rev == 0;
	char wend[SKY_CLUSTER_KEY_MAX];

	/* not usage/: every owner writes its beams' usage every save_interval */
	snprintf(wend, sizeof(wend), "%.400s/usage/", c->cfg.prefix);

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		int64_t from, compacted = 0, rev;
		int rc;

		__atomic_store_n(&c->wstop, 0, __ATOMIC_RELAXED);
		if (need_snapshot) {
			pthread_mutex_lock(&c->lock);
			from = c->applied_seen;
			pthread_mutex_unlock(&c->lock);
			rev = load_snapshot(c, &c->wcl, from);
			if (rev < 0) {
				set_err(c, "snapshot", &c->wcl);
				nap(c, RETRY_MS);
				continue;
			}
			need_snapshot = false;
		}
		pthread_mutex_lock(&c->lock);
		from = c->seen_rev + 1;
		c->watching = true;
		pthread_mutex_unlock(&c->lock);
		rc = sky_etcd_watch(&c->wcl, c->cfg.prefix, wend, from, on_event, c, &c->wstop,
				    &compacted);
		pthread_mutex_lock(&c->lock);
		c->watching = false;
		pthread_mutex_unlock(&c->lock);
		if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED))
			break;
		if (rc == -ESTALE) {
			/* the revisions we missed are gone: a full snapshot instead */
			SKY_LOG(WARNING,
				"cluster: revision %" PRId64 " was compacted (oldest %" PRId64
				"): reloading the whole state",
				from, compacted);
			need_snapshot = true;
			continue;
		}
		if (rc != 0) {
			set_err(c, "watch", &c->wcl);
			nap(c, RETRY_MS);
		}
	}
	return NULL;
}

/* --- the session thread --- */

static int
member_put(struct sky_cluster *c, int64_t lease, int64_t applied)
{
	char key[SKY_CLUSTER_KEY_MAX], val[256];

	snprintf(key, sizeof(key), "%.200s/members/%s", c->cfg.prefix, c->cfg.node);
	snprintf(val, sizeof(val),
		 "{\"node\":\"%s\",\"lease\":\"%" PRId64 "\",\"pid\":%d,\"applied\":%" PRId64 "}",
		 c->cfg.node, lease, (int)getpid(), applied);
	return sky_etcd_put(&c->scl, key, val, lease, NULL);
}

static void
lose_lease(struct sky_cluster *c, const char *why)
{
	pthread_mutex_lock(&c->lock);
	if (c->lease != 0) {
		SKY_LOG(WARNING, "cluster: lease %" PRIx64 " lost (%s): no claims until a new one",
			(uint64_t)c->lease, why);
		c->ctr[SKY_CLUSTER_C_leases_lost]++;
	}
	c->lease = 0;
	c->fence_ms = 0;
	for (unsigned int b = 0; b < c->n_beams; b++) {
		c->beams[b].claimed = false;
		c->beams[b].usage_read = false;
	}
	pthread_mutex_unlock(&c->lock);
	sky_ctl_wake();
}

/* the table from the live members (and this node, once it has a lease) */
static void
compute_table(struct sky_cluster *c)
{
	const char *names[SKY_CLUSTER_MAX_NODES + 1];
	const char *beams[SKY_CLUSTER_MAX_BEAMS];
	int owner[SKY_CLUSTER_MAX_BEAMS];
	unsigned int n = 0;
	bool self = false;

	for (unsigned int i = 0; i < c->n_members; i++) {
		names[n++] = c->members[i].name;
		self |= strcmp(c->members[i].name, c->cfg.node) == 0;
	}
	if (!self && c->lease != 0)
		names[n++] = c->cfg.node;
	for (unsigned int b = 0; b < c->n_beams; b++)
		beams[b] = c->beams[b].name;
	if (sky_cluster_table(beams, c->n_beams, names, n, c->cfg.pins, c->cfg.n_pins, owner) != 0)
		return;
	for (unsigned int b = 0; b < c->n_beams; b++) {
		snprintf(c->beams[b].table, sizeof(c->beams[b].table), "%s",
			 owner[b] >= 0 ? names[owner[b]] : "");
		c->beams[b].desired = owner[b] >= 0 && strcmp(names[owner[b]], c->cfg.node) == 0;
	}
	c->members_changed = false;
}

/* put the usage snapshot the main lcore made for beam b, while this node holds its claim */
static void
put_usage(struct sky_cluster *c, unsigned int b)
{
	char key[SKY_CLUSTER_KEY_MAX], owner[SKY_CLUSTER_KEY_MAX], esc[200];
	char *text;
	int done = 0, rc;

	pthread_mutex_lock(&c->lock);
	text = c->beams[b].usage_out;
	c->beams[b].usage_out = NULL;
	pthread_mutex_unlock(&c->lock);
	if (text == NULL)
		return;
	sky_cluster_key_escape(c->beams[b].name, esc, sizeof(esc));
	snprintf(owner, sizeof(owner), "%.200s/owners/%.200s", c->cfg.prefix, esc);
	sky_cluster_usage_key(c->cfg.prefix, c->beams[b].name, key, sizeof(key));
	rc = sky_etcd_put_when(&c->scl, owner, c->cfg.node, key, text, &done);
	free(text);
	if (rc != 0)
		set_err(c, "usage snapshot", &c->scl);
	pthread_mutex_lock(&c->lock);
	c->ctr[rc == 0 && done ? SKY_CLUSTER_C_usage_saved : SKY_CLUSTER_C_usage_errors]++;
	pthread_mutex_unlock(&c->lock);
}

/* read beam b's usage snapshot after claiming it (the main lcore applies it before
 * shaping the beam): 0, or -errno (read again at the next tick) */
static int
read_usage(struct sky_cluster *c, unsigned int b)
{
	char key[SKY_CLUSTER_KEY_MAX], *text = NULL;
	json_t *resp, *kv;

	sky_cluster_usage_key(c->cfg.prefix, c->beams[b].name, key, sizeof(key));
	if (sky_etcd_range(&c->scl, key, false, 0, &resp) != 0) {
		set_err(c, "usage snapshot read", &c->scl);
		return -EIO;
	}
	kv = json_array_get(json_object_get(resp, "kvs"), 0);
	if (kv != NULL) {
		const char *v64 = json_string_value(json_object_get(kv, "value")) ?: "";
		size_t vl = strlen(v64);
		long n;

		text = malloc(vl / 4 * 3 + 1);
		n = text ? sky_b64_decode(v64, vl, text, vl / 4 * 3) : -ENOMEM;
		if (n < 0) {
			/* not base64: refused as malformed by the main lcore */
			if (text != NULL)
				snprintf(text, vl / 4 * 3 + 1, "%s", "");
		} else {
			text[n] = '\0';
		}
	}
	json_decref(resp);
	if (kv != NULL && text == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	free(c->beams[b].usage_in);
	c->beams[b].usage_in = text ? text : strdup("");
	c->beams[b].usage_read = c->beams[b].usage_in != NULL && c->beams[b].claimed;
	pthread_mutex_unlock(&c->lock);
	sky_ctl_wake(); /* shape it now */
	return 0;
}

/* claim what the table gives us and nobody holds; release what we should not own once the
 * data path has let it go */
static void
claims(struct sky_cluster *c, uint64_t now)
{
	for (unsigned int b = 0; b < c->n_beams; b++) {
		char key[SKY_CLUSTER_KEY_MAX], esc[200];
		bool claim, release, usage, out;
		int64_t lease;
		int done = 0;

		pthread_mutex_lock(&c->lock);
		lease = c->lease;
		usage = c->beams[b].claimed && !c->beams[b].usage_read;
		out = c->beams[b].usage_out != NULL && c->beams[b].claimed;
		claim = lease != 0 && now < c->fence_ms && c->beams[b].desired &&
			!c->beams[b].claimed && c->beams[b].holder[0] == '\0';
		release = c->beams[b].claimed && !c->beams[b].desired && !c->beams[b].shaping;
		pthread_mutex_unlock(&c->lock);
		/* the snapshot first: a beam given up leaves its last usage for the next owner */
		if (out)
			put_usage(c, b);
		if (usage && !release && read_usage(c, b) != 0)
			return;
		if (!claim && !release)
			continue;
		sky_cluster_key_escape(c->beams[b].name, esc, sizeof(esc));
		snprintf(key, sizeof(key), "%.200s/owners/%.200s", c->cfg.prefix, esc);
		if (claim) {
			/* only when nobody holds it: its previous owner released it, or its
			 * lease is gone (etcd deleted the claim with it) */
			if (sky_etcd_put_if(&c->scl, key, c->cfg.node, lease, 0, &done, NULL) !=
			    0) {
				set_err(c, "claim", &c->scl);
				return;
			}
			if (done) {
				pthread_mutex_lock(&c->lock);
				c->beams[b].claimed = true;
				snprintf(c->beams[b].holder, sizeof(c->beams[b].holder), "%s",
					 c->cfg.node);
				c->beams[b].usage_read = c->quota == NULL;
				pthread_mutex_unlock(&c->lock);
				/* the previous owner's usage before this node shapes it */
				if (c->quota != NULL && read_usage(c, b) != 0)
					return;
				sky_ctl_wake(); /* shape it from now on */
			}
		} else {
			if (sky_etcd_delete_if(&c->scl, key, c->cfg.node) != 0) {
				set_err(c, "release", &c->scl);
				return;
			}
			pthread_mutex_lock(&c->lock);
			c->beams[b].claimed = false;
			c->beams[b].usage_read = false;
			if (strcmp(c->beams[b].holder, c->cfg.node) == 0)
				c->beams[b].holder[0] = '\0';
			pthread_mutex_unlock(&c->lock);
		}
	}
}

static void *
session_main(void *arg)
{
	struct sky_cluster *c = arg;
	const uint64_t ttl_ms = c->cfg.ttl_s * 1000ull;
	uint64_t next_ka = 0, last_report = 0;
	int64_t reported = -1;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		uint64_t now = sky_cluster_now_ms();
		int64_t lease, applied;

		pthread_mutex_lock(&c->lock);
		lease = c->lease;
		applied = c->applied_rev;
		pthread_mutex_unlock(&c->lock);
		if (lease == 0) {
			int64_t id;

			if (sky_etcd_lease_grant(&c->scl, c->cfg.ttl_s, &id) != 0 ||
			    member_put(c, id, applied) != 0) {
				set_err(c, "join", &c->scl);
				pthread_mutex_lock(&c->lock);
				c->connected = false;
				pthread_mutex_unlock(&c->lock);
				nap(c, RETRY_MS);
				continue;
			}
			if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
				/* stopping meanwhile: the main lcore revoked the old one */
				sky_etcd_lease_revoke(&c->scl, id);
				break;
			}
			pthread_mutex_lock(&c->lock);
			c->lease = id;
			c->fence_ms = now + ttl_ms - ttl_ms / 3;
			c->connected = true;
			c->members_changed = true;
			pthread_mutex_unlock(&c->lock);
			SKY_LOG(NOTICE, "cluster: node %s joined %s (lease %" PRIx64 ", ttl %us)",
				c->cfg.node, c->cfg.prefix, (uint64_t)id, c->cfg.ttl_s);
			next_ka = now + ttl_ms / 3;
			reported = applied;
			last_report = now;
		} else if (now >= next_ka) {
			int64_t ttl = 0;
			int rc = sky_etcd_lease_keepalive(&c->scl, lease, &ttl);

			if (rc == 0 && ttl > 0) {
				pthread_mutex_lock(&c->lock);
				/* the lease ends no earlier than ttl after etcd got this keepalive,
				 * sent at now: shaping stops a third of it before that */
				c->fence_ms = now + (uint64_t)ttl * 1000 - ttl_ms / 3;
				if (!c->connected)
					SKY_LOG(NOTICE, "cluster: etcd reachable again");
				c->connected = true;
				pthread_mutex_unlock(&c->lock);
				next_ka = now + ttl_ms / 3;
			} else if (rc == 0 || rc == -EPROTO) {
				lose_lease(c, rc == 0 ? "expired" : c->scl.err);
				__atomic_store_n(&c->wstop, 1, __ATOMIC_RELAXED);
				sky_etcd_watch_break(&c->wcl);
				continue;
			} else {
				set_err(c, "keepalive", &c->scl);
				pthread_mutex_lock(&c->lock);
				if (c->connected)
					SKY_LOG(WARNING,
						"cluster: etcd unreachable (%s): forwarding on the "
						"last state, read-only; beams given up in %" PRIu64
						" ms unless it comes back",
						c->scl.err,
						c->fence_ms > now ? c->fence_ms - now : 0);
				c->connected = false;
				pthread_mutex_unlock(&c->lock);
				/* the watch may hang on a dead connection: make it start again */
				__atomic_store_n(&c->wstop, 1, __ATOMIC_RELAXED);
				sky_etcd_watch_break(&c->wcl);
				next_ka = now + RETRY_MS;
				if (now > c->fence_ms + ttl_ms)
					lose_lease(c, "not renewed for longer than its ttl");
				continue;
			}
			/* tell the others which revision this node has applied (status) */
			if (applied != reported && now - last_report >= 1000 &&
			    member_put(c, lease, applied) == 0) {
				reported = applied;
				last_report = now;
			}
		}
		pthread_mutex_lock(&c->lock);
		if (c->members_changed) {
			compute_table(c);
			sky_ctl_wake(); /* a beam the table moved away stops being shaped now */
		}
		pthread_mutex_unlock(&c->lock);
		claims(c, now);
		nap(c, TICK_MS);
	}
	return NULL;
}

/* --- the main lcore: state changes and beam flags --- */

/* a quota change applied here from the store: its revision, and whether it set his usage
 * (a usage snapshot older than it keeps this node's value) */
static void
qrev_note(struct sky_cluster *c, int argc, char **argv, int64_t rev)
{
	struct sky_cluster_qrev *r = NULL;
	uint64_t id;
	bool used = strcmp(argv[1], "reset") == 0;

	if (argc < 3 || sky_parse_u64(argv[2], 1, UINT32_MAX, &id) != 0)
		return;
	for (int i = 3; i < argc; i++)
		used |= strncmp(argv[i], "used=", 5) == 0;
	for (size_t i = 0; i < c->n_qrev && r == NULL; i++)
		if (c->qrev[i].id == (uint32_t)id)
			r = &c->qrev[i];
	if (r == NULL) {
		if (c->n_qrev == c->cap_qrev) {
			size_t cap = c->cap_qrev ? c->cap_qrev * 2 : 64;
			struct sky_cluster_qrev *x = realloc(c->qrev, cap * sizeof(*x));

			if (x == NULL)
				return;
			c->qrev = x;
			c->cap_qrev = cap;
		}
		r = &c->qrev[c->n_qrev++];
		r->id = (uint32_t)id;
	}
	r->used = used;
	r->rev = rev;
}

static const struct sky_cluster_qrev *
qrev_find(const struct sky_cluster *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_qrev; i++)
		if (c->qrev[i].id == id)
			return &c->qrev[i];
	return NULL;
}

static void
usage_refused(struct sky_cluster *c, const char *key, const char *err)
{
	SKY_LOG(ERR, "cluster: refused %s: the previous usage stays", err);
	c->ctr[SKY_CLUSTER_C_usage_refused]++;
	snprintf(c->last_refused, sizeof(c->last_refused), "%s", err);
	sky_ctl_event("cluster.refused", json_pack("{s:s, s:s}", "key", key, "error", err));
}

/* beam b is about to be shaped here: its usage as its previous owner last stored it
 * (caller holds c->lock) */
static void
usage_take(struct sky_cluster *c, unsigned int b)
{
	char key[SKY_CLUSTER_KEY_MAX], err[1024];
	struct sky_quota_snap *r;
	int64_t rev, now = sky_cluster_wall_ms() / 1000;
	size_t n, took = 0;
	char *text = c->beams[b].usage_in;

	c->beams[b].usage_in = NULL;
	if (c->quota == NULL || text == NULL || text[0] == '\0') {
		free(text);
		return;
	}
	sky_cluster_usage_key(c->cfg.prefix, c->beams[b].name, key, sizeof(key));
	if (sky_cluster_usage_decode(key, c->beams[b].name, text, &r, &n, &rev, err, sizeof(err)) !=
	    0) {
		usage_refused(c, key, err);
		free(text);
		return;
	}
	free(text);
	for (size_t i = 0; i < n; i++) {
		const struct sky_cluster_qrev *qr = qrev_find(c, r[i].id);
		/* a quota change applied here after the snapshot was made: this node's top-ups
		 * are right, and his usage too when that change set it */
		bool newer = qr != NULL && qr->rev > rev;

		took += sky_quota_adopt(c->quota, &r[i], !(newer && qr->used), !newer, now) == 0;
	}
	free(r);
	c->ctr[SKY_CLUSTER_C_usage_taken]++;
	SKY_LOG(NOTICE,
		"cluster: beam %s: usage of %zu subscribers taken from %s (revision %" PRId64
		", %zu in it)",
		c->beams[b].name, took, key, rev, n);
}

/* the usage of the beams shaped here (draining: those just given up) for the session
 * thread to store: one fold, one pass over the subscribers (main lcore) */
static void
usage_make(struct sky_cluster *c, bool draining)
{
	int64_t rev, now = sky_cluster_wall_ms() / 1000;
	struct sky_quota_snap *r;
	size_t n, i = 0;

	if (c->quota == NULL || sky_quota_usage_all(c->quota, now, &r, &n) != 0)
		return;
	pthread_mutex_lock(&c->lock);
	rev = c->applied_seen;
	pthread_mutex_unlock(&c->lock);
	for (unsigned int b = 0; b < c->n_beams; b++) {
		const struct sky_cluster_beam *cb = &c->beams[b];
		size_t from, dropped = 0;
		char *text;

		while (i < n && r[i].beam < (unsigned int)cb->sub_idx)
			i++;
		from = i;
		while (i < n && r[i].beam == (unsigned int)cb->sub_idx)
			i++;
		if (draining ? !cb->draining : !cb->shaping || cb->draining)
			continue;
		text = sky_cluster_usage_encode(cb->name, c->cfg.node, rev, now, r + from, i - from,
						&dropped);
		if (dropped > 0)
			SKY_LOG(WARNING,
				"cluster: beam %s: %zu subscribers with usage, the snapshot keeps "
				"the %d heaviest",
				cb->name, i - from, SKY_CLUSTER_USAGE_MAX_SUBS);
		if (text == NULL)
			continue;
		pthread_mutex_lock(&c->lock);
		free(c->beams[b].usage_out);
		c->beams[b].usage_out = text;
		pthread_mutex_unlock(&c->lock);
	}
	free(r);
}

/* one state change from the store, through the control commands */
static void
apply_change(struct sky_cluster *c, const struct sky_cluster_change *q)
{
	char err[1024], *argv[SKY_CLUSTER_MAX_ARGS];
	const json_t *a;
	json_t *v, *reply;
	size_t n;

	if (q->del) {
		/* removals are tombstones: a deleted key (etcdctl del) has no command */
		SKY_LOG(WARNING,
			"cluster: %s was deleted from the store: this node keeps its value (remove "
			"objects with skygatectl, which stores a tombstone)",
			q->key);
		return;
	}
	v = json_loads(q->value, 0, NULL);
	a = v ? sky_cluster_value_check(c->cfg.prefix, q->key, v, err, sizeof(err)) : NULL;
	if (a == NULL) {
		if (v == NULL)
			snprintf(err, sizeof(err), "%s: not JSON", q->key);
		SKY_LOG(ERR, "cluster: refused %s (revision %" PRId64 "): the previous value stays",
			err, q->rev);
		sky_ctl_event("cluster.refused",
			      json_pack("{s:s, s:s, s:I}", "key", q->key, "error", err, "revision",
					(json_int_t)q->rev));
		c->ctr[SKY_CLUSTER_C_changes_refused]++;
		snprintf(c->last_refused, sizeof(c->last_refused), "%s", err);
		json_decref(v);
		return;
	}
	n = json_array_size(a);
	for (size_t i = 0; i < n; i++)
		argv[i] = (char *)json_string_value(json_array_get(a, i));
	/* a policy object is named by its path: it must be the very file the writer checked */
	if (strcmp(argv[0], "policy") == 0 && strcmp(argv[1], "load") == 0 &&
	    json_is_string(json_object_get(v, "sha256"))) {
		const char *want = json_string_value(json_object_get(v, "sha256"));
		char have[65] = "", why[512];

		if (sky_cluster_file_sha256(argv[2], have, why, sizeof(why)) != 0 ||
		    strcmp(have, want) != 0) {
			if (have[0] != '\0')
				snprintf(why, sizeof(why),
					 "%s here has SHA-256 %.16s..., the store %.16s...",
					 argv[2], have, want);
			SKY_LOG(ERR,
				"cluster: %s (revision %" PRId64 "): refused: %s; the previous "
				"program stays",
				q->key, q->rev, why);
			c->ctr[SKY_CLUSTER_C_changes_refused]++;
			snprintf(c->last_refused, sizeof(c->last_refused), "%s: %s", q->key, why);
			sky_ctl_event("cluster.refused",
				      json_pack("{s:s, s:s, s:I}", "key", q->key, "error", why,
						"revision", (json_int_t)q->rev));
			json_decref(v);
			return;
		}
	}
	/* upserts: an add of a subscriber this node has is a set; a removal of what is not
	 * here is done already */
	if (strcmp(argv[0], "subscriber") == 0) {
		struct sky_sub_info si;
		uint64_t id;
		bool have = sky_parse_u64(argv[2], 1, UINT32_MAX, &id) == 0 &&
			    sky_subs_get(c->subs, (uint32_t)id, &si) == 0;

		if (strcmp(argv[1], "add") == 0 && have)
			argv[1] = "set";
		if (strcmp(argv[1], "del") == 0 && !have) {
			json_decref(v);
			return;
		}
	}
	reply = sky_ctl_dispatch_store((int)n, argv);
	if (json_is_true(json_object_get(reply, "ok"))) {
		c->ctr[SKY_CLUSTER_C_changes_applied]++;
		if (strcmp(argv[0], "quota") == 0)
			qrev_note(c, (int)n, argv, q->rev);
	} else {
		const char *why = reply ? json_string_value(json_object_get(reply, "error"))
					: "out of memory";

		if (strcmp(argv[0], "map") == 0 && strcmp(argv[1], "delete") == 0 && why != NULL &&
		    strstr(why, "no such key") != NULL) {
			json_decref(reply);
			json_decref(v);
			return; /* a tombstone of an entry this node does not have */
		}
		SKY_LOG(ERR,
			"cluster: %s (revision %" PRId64 "): refused: %s; the previous value "
			"stays",
			q->key, q->rev, why ?: "?");
		c->ctr[SKY_CLUSTER_C_changes_refused]++;
		snprintf(c->last_refused, sizeof(c->last_refused), "%s: %s", q->key, why ?: "?");
		sky_ctl_event("cluster.refused",
			      json_pack("{s:s, s:s, s:I}", "key", q->key, "error", why ?: "?",
					"revision", (json_int_t)q->rev));
	}
	json_decref(reply);
	json_decref(v);
}

static void
set_beam(struct sky_cluster *c, unsigned int b, bool shape, const char *why)
{
	enum sky_subs_beam_mode mode = shape ? SKY_SUBS_BEAM_OWNED
				       : c->cfg.other == SKY_CLUSTER_OTHER_PASS
					       ? SKY_SUBS_BEAM_PASS
					       : SKY_SUBS_BEAM_DROP;

	sky_subs_beam_mode_set(c->subs, (unsigned int)c->beams[b].sub_idx, mode);
	/* given up: the claim goes only once no worker is still in a burst that saw the beam
	 * as ours (sky_cluster_poll: RCU quiescence, then shaping = false) */
	if (shape)
		c->beams[b].shaping = true;
	else
		c->beams[b].draining = true;
	c->ctr[SKY_CLUSTER_C_ownership_changes]++;
	SKY_LOG(NOTICE, "cluster: beam %s %s (%s)", c->beams[b].name,
		shape ? "shaped by this node" : "given up", why);
	sky_ctl_event("cluster.beam",
		      json_pack("{s:s, s:s, s:b, s:s}", "beam", c->beams[b].name, "node",
				c->cfg.node, "shaped_here", shape, "why", why));
}

/* after beams were given up: wait until every worker has passed a quiescent point (each
 * burst reads a beam's flag once per packet, within the burst), then let the thread
 * release the claims */
static void
settle(struct sky_cluster *c)
{
	sky_rcu_sync();
	/* the last usage of what was given up: stored before the claim is released */
	usage_make(c, true);
	pthread_mutex_lock(&c->lock);
	for (unsigned int b = 0; b < c->n_beams; b++)
		if (c->beams[b].draining) {
			c->beams[b].draining = false;
			c->beams[b].shaping = false;
		}
	pthread_mutex_unlock(&c->lock);
}

void
sky_cluster_poll(struct sky_cluster *c)
{
	struct sky_cluster_change *q, *next;
	uint64_t now = sky_cluster_now_ms();
	unsigned int n = 0;
	int64_t last = 0;
	bool drain = false;

	if (c == NULL)
		return;
	/* state changes, in revision order */
	pthread_mutex_lock(&c->lock);
	q = c->q_head;
	while (q != NULL && n < POLL_MAX_CHANGES) {
		q = q->next;
		n++;
	}
	next = q;
	q = c->q_head;
	c->q_head = next;
	if (next == NULL)
		c->q_tail = NULL;
	pthread_mutex_unlock(&c->lock);
	for (unsigned int i = 0; i < n; i++) {
		struct sky_cluster_change *f = q;

		apply_change(c, q);
		last = q->rev;
		q = q->next;
		free(f->key);
		free(f->value);
		free(f);
	}
	/* beams: shaped here only while claimed, given here by the table, and before the
	 * fence */
	pthread_mutex_lock(&c->lock);
	if (last > c->applied_rev) {
		c->applied_rev = last;
		c->applied_at_ms = sky_cluster_wall_ms();
	}
	if (c->connected != c->connected_said) {
		/* the alarm, as an event (the metric is skygate_cluster_connected) */
		c->connected_said = c->connected;
		sky_ctl_event("cluster.etcd", json_pack("{s:b, s:s}", "connected", c->connected,
							"error", c->connected ? "" : c->last_err));
	}
	if (c->q_head == NULL && c->seen_rev > c->applied_seen)
		c->applied_seen = c->seen_rev;
	for (unsigned int b = 0; b < c->n_beams; b++) {
		struct sky_cluster_beam *cb = &c->beams[b];
		bool fenced = now >= c->fence_ms;
		bool want = cb->claimed && cb->desired && !fenced && cb->usage_read;

		if (want && !cb->shaping && !cb->draining)
			usage_take(c, b);
		if (want != cb->shaping && !cb->draining)
			set_beam(c, b, want,
				 want		? "claimed"
				 : fenced	? "lease not renewed in time (fencing)"
				 : !cb->desired ? "the table moved it"
						: "claim lost");
		drain |= cb->draining;
	}
	pthread_mutex_unlock(&c->lock);
	if (drain)
		settle(c);
	/* the usage of the beams shaped here, every quota.save_interval */
	if (c->quota != NULL && now >= c->usage_next_ms) {
		c->usage_next_ms = now + sky_quota_save_interval_us(c->quota) / 1000;
		usage_make(c, false);
	}
}

void
sky_cluster_set_quota(struct sky_cluster *c, struct sky_quota *q)
{
	c->quota = q;
}

void
sky_cluster_reload_refusal(const struct sky_cluster *c, char *buf, size_t len)
{
	snprintf(buf, len,
		 "reload is refused in cluster mode (node %s of %s): plans, beams, subscribers, "
		 "the policy, map entries and quota changes live in etcd: change them with "
		 "skygatectl on any node (stored, applied on every node); other sections need a "
		 "restart of each node in turn (its beams move to the others meanwhile)",
		 c->cfg.node, c->cfg.prefix);
}

/* --- life --- */

struct sky_cluster *
sky_cluster_create(const struct sky_cfg *cfg, struct sky_subs *subs, struct sky_cfg_err *err)
{
	struct sky_cluster *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL) {
		sky_cfg_fail(err, cfg, NULL, "cluster: out of memory");
		return NULL;
	}
	rc = sky_cluster_cfg_parse(cfg, &c->cfg, err);
	if (rc <= 0) {
		if (rc == 0)
			sky_cfg_fail(err, cfg, NULL, "cluster: no `cluster:` section");
		free(c);
		return NULL;
	}
	c->subs = subs;
	c->n_beams = sky_subs_n_beams(subs);
	if (c->n_beams > SKY_CLUSTER_MAX_BEAMS)
		c->n_beams = SKY_CLUSTER_MAX_BEAMS;
	for (unsigned int b = 0; b < c->n_beams; b++) {
		struct sky_beam sb = sky_subs_beam(subs, b);

		snprintf(c->beams[b].name, sizeof(c->beams[b].name), "%s", sb.name);
		c->beams[b].sub_idx = (int)b;
	}
	for (unsigned int p = 0; p < c->cfg.n_pins; p++)
		if (beam_of(c, c->cfg.pins[p].beam) < 0) {
			sky_cfg_fail(err, cfg,
				     sky_cfg_get(sky_cfg_get(cfg->root, "cluster"), "pins"),
				     "pin of beam '%s': no such beam", c->cfg.pins[p].beam);
			free(c);
			return NULL;
		}
	pthread_mutex_init(&c->lock, NULL);
	/* until it holds a claim, this node shapes no beam */
	for (unsigned int b = 0; b < c->n_beams; b++)
		sky_subs_beam_mode_set(subs, b,
				       c->cfg.other == SKY_CLUSTER_OTHER_PASS ? SKY_SUBS_BEAM_PASS
									      : SKY_SUBS_BEAM_DROP);
	return c;
}

int
sky_cluster_start(struct sky_cluster *c, char *err, size_t errlen)
{
	int64_t rev;

	if (sky_etcd_init(&c->mcl, c->cfg.endpoints, c->cfg.n_endpoints, c->cfg.timeout_ms) != 0 ||
	    sky_etcd_init(&c->scl, c->cfg.endpoints, c->cfg.n_endpoints, c->cfg.timeout_ms) != 0 ||
	    sky_etcd_init(&c->wcl, c->cfg.endpoints, c->cfg.n_endpoints, c->cfg.timeout_ms) != 0) {
		snprintf(err, errlen, "cluster: cannot set up the etcd client (libcurl)");
		return -1;
	}
	/* one consistent snapshot, applied before the control socket opens */
	rev = load_snapshot(c, &c->mcl, 0);
	if (rev < 0) {
		SKY_LOG(WARNING,
			"cluster: etcd unreachable at start (%s): running on the local cache "
			"(journal), read-only, until it answers",
			c->mcl.err);
		set_err(c, "start", &c->mcl);
	} else {
		sky_cluster_poll(c);
		while (c->q_head != NULL)
			sky_cluster_poll(c);
		SKY_LOG(INFO,
			"cluster: state loaded at revision %" PRId64 " (%" PRIu64
			" changes applied, %" PRIu64 " refused)",
			rev, c->ctr[SKY_CLUSTER_C_changes_applied],
			c->ctr[SKY_CLUSTER_C_changes_refused]);
		pthread_mutex_lock(&c->lock);
		c->applied_seen = rev;
		c->applied_rev = rev;
		pthread_mutex_unlock(&c->lock);
	}
	if (pthread_create(&c->sthr, NULL, session_main, c) != 0) {
		snprintf(err, errlen, "cluster: cannot start the session thread");
		return -1;
	}
	if (pthread_create(&c->wthr, NULL, watch_main, c) != 0) {
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
		pthread_join(c->sthr, NULL);
		snprintf(err, errlen, "cluster: cannot start the watch thread");
		return -1;
	}
	pthread_setname_np(c->sthr, "sky-cluster");
	pthread_setname_np(c->wthr, "sky-watch");
	c->threads = true;
	return 0;
}

void
sky_cluster_stop(struct sky_cluster *c)
{
	int64_t lease;

	if (c == NULL || !c->threads)
		return;
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->wstop, 1, __ATOMIC_RELAXED);
	sky_etcd_watch_break(&c->wcl);
	/* stop shaping, then let the others have the beams at once: revoking the lease
	 * deletes its member key and claims (bounded by cluster.timeout) */
	pthread_mutex_lock(&c->lock);
	for (unsigned int b = 0; b < c->n_beams; b++)
		if (c->beams[b].shaping && !c->beams[b].draining)
			set_beam(c, b, false, "stopping");
	lease = c->lease;
	pthread_mutex_unlock(&c->lock);
	settle(c);
	/* the session thread may be gone: the last usage snapshots from here, while the
	 * claims still hold */
	pthread_join(c->sthr, NULL);
	for (unsigned int b = 0; lease != 0 && b < c->n_beams; b++) {
		char key[SKY_CLUSTER_KEY_MAX], owner[SKY_CLUSTER_KEY_MAX], esc[200];
		int done = 0;

		if (c->beams[b].usage_out == NULL)
			continue;
		sky_cluster_key_escape(c->beams[b].name, esc, sizeof(esc));
		snprintf(owner, sizeof(owner), "%.200s/owners/%.200s", c->cfg.prefix, esc);
		sky_cluster_usage_key(c->cfg.prefix, c->beams[b].name, key, sizeof(key));
		if (sky_etcd_put_when(&c->mcl, owner, c->cfg.node, key, c->beams[b].usage_out,
				      &done) == 0 &&
		    done)
			c->ctr[SKY_CLUSTER_C_usage_saved]++;
		else
			c->ctr[SKY_CLUSTER_C_usage_errors]++;
		free(c->beams[b].usage_out);
		c->beams[b].usage_out = NULL;
	}
	if (lease != 0 && sky_etcd_lease_revoke(&c->mcl, lease) == 0)
		SKY_LOG(INFO, "cluster: lease %" PRIx64 " revoked: beams released",
			(uint64_t)lease);
	sky_etcd_watch_break(&c->wcl);
	pthread_join(c->wthr, NULL);
	c->threads = false;
	c->lease = 0;
}

void
sky_cluster_destroy(struct sky_cluster *c)
{
	struct sky_cluster_change *q, *n;

	if (c == NULL)
		return;
	sky_cluster_stop(c);
	for (q = c->q_head; q != NULL; q = n) {
		n = q->next;
		free(q->key);
		free(q->value);
		free(q);
	}
	for (unsigned int b = 0; b < c->n_beams; b++) {
		free(c->beams[b].usage_out);
		free(c->beams[b].usage_in);
	}
	free(c->qrev);
	sky_etcd_fini(&c->mcl);
	sky_etcd_fini(&c->scl);
	sky_etcd_fini(&c->wcl);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
