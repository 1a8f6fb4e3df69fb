/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Configuration reload (SIGHUP, `skygatectl reload`): read the config file again, fill its
 * defaults, and apply what changed since the configuration in force was read, through the
 * registered commands (the dispatcher: validated, journaled, audited like skygatectl's).
 *
 * All or nothing:
 *   1. the new file is parsed and validated whole: the daemon's own sections, then scratch
 *      copies of the subscriber model (plans, beams, classes, the subscriber CSV) and the
 *      classifier when any of those changed, and the policy (object checked and
 *      JIT-compiled, map entries) when its section or object changed, are built from it
 *      and thrown away (what did not change was validated when it was read);
 *   2. any difference that cannot change live refuses the whole reload, naming each key:
 *      eal, workers, ports, control, mempool, state, shaping, flows, zones,
 *      subscribers.unknown, subscribers.capacity, geo settings other than the database,
 *      policy.on_fault and policy.jit, plans or beams added or removed, classes renamed,
 *      added, removed or with other queue/AQM/default, quota and the fair-use keys of plans;
 *   3. the metrics listener moves if telemetry.prometheus changed (refused, the old one put
 *      back, when the new address cannot be bound); then the commands for the rest are
 *      built (geo reload, class reload, plan set, beam set, policy load/unload,
 *      map update/delete, subscriber load) and run in that order.
 * Nothing is applied before 1 and 2 pass. A command can still fail in 3 when a file changes
 * again between the check and the command, or the journal cannot be written: the reload
 * stops there and says which changes were applied (each of them journaled) and which not.
 *
 * What "changed" means: a section's text (defaults filled) differs from the file read last
 * (at start or by the last successful reload), or a file it names changed on disk
 * (subscriber CSV and policy object: content; location database: inode, size and mtime).
 * Runtime changes made with skygatectl since are kept unless the file changed the same
 * thing. log.level is applied directly (it is not state).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_log.h>

#include "gateway.h"
#include "skygate/classify.h"
#include "skygate/cluster.h"
#include "skygate/control.h"
#include "skygate/policy.h"
#include "skygate/quota.h"
#include "skygate/subscriber.h"

#define RELOAD_MAX_FILE (64u << 20)

/* a file as it was when last applied */
struct fid {
	int have;
	uint64_t hash, size;
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
};

static struct {
	struct sky_cfg *boot; /* the start-up tree (EAL may point into it): kept */
	struct sky_cfg *cur;  /* the tree in force */
	struct fid subs, pol, geo;
} rl;

/* a list of commands to run */
struct cmds {
	char ***v;
	int *c;
	size_t n, cap;
};

static uint64_t
fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* content = hash the bytes; otherwise identity (inode, size, mtime) only */
static void
fid_of(const char *path, int content, struct fid *f)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	if (path == NULL || stat(path, &st) != 0)
		return;
	f->have = 1;
	f->size = (uint64_t)st.st_size;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->mtime = st.st_mtim;
	if (content && st.st_size <= RELOAD_MAX_FILE) {
		FILE *fp = fopen(path, "rb");
		unsigned char *buf = malloc((size_t)st.st_size + 1);
		size_t n = 0;

		if (fp != NULL && buf != NULL)
			n = fread(buf, 1, (size_t)st.st_size, fp);
		f->hash = fnv(buf != NULL ? buf : (unsigned char *)"", n);
		free(buf);
		if (fp != NULL)
			fclose(fp);
		f->dev = 0;
		f->ino = 0;
		f->mtime = (struct timespec){0};
	}
}

static int
fid_eq(const struct fid *a, const struct fid *b)
{
	return a->have == b->have && a->hash == b->hash && a->size == b->size && a->dev == b->dev &&
	       a->ino == b->ino && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static const char *
str_at(const struct sky_cfg *cfg, const char *sec, const char *key)
{
	return sky_cfg_str(sky_cfg_get(sky_cfg_get(cfg->root, sec), key));
}

static const char *
subs_file(const struct sky_cfg *c)
{
	return str_at(c, "subscribers", "file");
}
static const char *
pol_file(const struct sky_cfg *c)
{
	return str_at(c, "policy", "object");
}
static const char *
geo_file(const struct sky_cfg *c)
{
	return str_at(c, "geo", "database");
}

static void
fids_take(const struct sky_cfg *c, struct fid *s, struct fid *p, struct fid *g)
{
	fid_of(subs_file(c), 1, s);
	fid_of(pol_file(c), 1, p);
	fid_of(geo_file(c), 0, g);
}

/* the two nodes written as YAML are the same text (both absent counts as the same) */
static int
same(const struct sky_cfg_node *a, const struct sky_cfg_node *b)
{
	char *x = sky_cfg_write_node(a), *y = sky_cfg_write_node(b);
	int r = x != NULL && y != NULL && strcmp(x, y) == 0;

	free(x);
	free(y);
	return r;
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* appends "what, " to the reasons a restart is needed */
static void
need_restart(char *buf, size_t len, const char *what)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", what);
}

static int
cmds_add(struct cmds *l, int argc, ...)
{
	char **v;
	va_list ap;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char ***nv = realloc(l->v, cap * sizeof(*nv));
		int *nc;

		if (nv == NULL)
			return -ENOMEM;
		l->v = nv;
		nc = realloc(l->c, cap * sizeof(*nc));
		if (nc == NULL)
			return -ENOMEM;
		l->c = nc;
		l->cap = cap;
	}
	v = calloc((size_t)argc + 1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	va_start(ap, argc);
	for (int i = 0; i < argc; i++) {
		const char *s = va_arg(ap, const char *);

		v[i] = strdup(s);
		if (v[i] == NULL) {
			va_end(ap);
			for (int j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
	}
	va_end(ap);
	l->v[l->n] = v;
	l->c[l->n] = argc;
	l->n++;
	return 0;
}

/* a command of up to SKY_CTL_MAX_ARGS words given as an array */
static int
cmds_addv(struct cmds *l, int argc, char **words)
{
	int rc = cmds_add(l, 0);

	if (rc < 0)
		return rc;
	free(l->v[l->n - 1]);
	l->v[l->n - 1] = calloc((size_t)argc + 1, sizeof(char *));
	if (l->v[l->n - 1] == NULL) {
		l->n--;
		return -ENOMEM;
	}
	for (int i = 0; i < argc; i++) {
		l->v[l->n - 1][i] = strdup(words[i]);
		if (l->v[l->n - 1][i] == NULL)
			return -ENOMEM; /* freed with the list (argc counts what is set) */
		l->c[l->n - 1] = i + 1;
	}
	return 0;
}

static void
cmds_free(struct cmds *l)
{
	for (size_t i = 0; i < l->n; i++) {
		for (int j = 0; l->v[i] != NULL && j < l->c[i]; j++)
			free(l->v[i][j]);
		free(l->v[i]);
	}
	free(l->v);
	free(l->c);
	memset(l, 0, sizeof(*l));
}

static void
join(char *buf, size_t len, int argc, char **argv)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < argc && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "", argv[i]);
}

/* the keys of two maps are the same set */
static int
same_keys(const struct sky_cfg_node *a, const struct sky_cfg_node *b)
{
	if (sky_cfg_len(a) != sky_cfg_len(b))
		return 0;
	for (size_t i = 0; i < sky_cfg_len(a); i++)
		if (sky_cfg_get(b, sky_cfg_key_at(a, i)) == NULL)
			return 0;
	return 1;
}

/* classes: what `class reload` cannot change (names, order, default, queue, aqm) */
static int
classes_fixed_same(const struct sky_cfg_node *a, const struct sky_cfg_node *b)
{
	static const char *const fixed[] = {"name", "default", "queue", "aqm"};

	if (sky_cfg_len(a) != sky_cfg_len(b))
		return 0;
	for (size_t i = 0; i < sky_cfg_len(a); i++)
		for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
			if (!same(sky_cfg_get(sky_cfg_at(a, i), fixed[k]),
				  sky_cfg_get(sky_cfg_at(b, i), fixed[k])))
				return 0;
	return 1;
}

static int
has_any(const struct sky_cfg_node *a, const struct sky_cfg_node *b, const char *const *keys)
{
	for (; *keys != NULL; keys++)
		if (sky_cfg_get(a, *keys) != NULL || sky_cfg_get(b, *keys) != NULL)
			return 1;
	return 0;
}

/*
 * `plan set NAME ...` with the rates, and the bursts, weight and class weights when the old
 * or the new file writes them (a key the new file drops goes back to its computed default;
 * keys neither writes stay computed from the rates, as at start).
 */
static int
plan_cmd(struct cmds *l, const struct sky_subs *ns, unsigned int idx, const struct sky_cfg_node *o,
	 const struct sky_cfg_node *nn)
{
	static const char *const bursts[] = {"burst", "down_burst", "up_burst", NULL};
	static const char *const weight[] = {"weight", NULL};
	static const char *const cws[] = {"class_weights", NULL};
	struct sky_plan p = sky_subs_plan(ns, idx);
	char *w[4 + 5 + SKY_MAX_CLASSES], buf[5 + SKY_MAX_CLASSES][96];
	int n = 0, b = 0;

	w[n++] = "plan";
	w[n++] = "set";
	w[n++] = p.name;
	snprintf(buf[b], sizeof(buf[b]), "down=%" PRIu64, p.down_bps);
	w[n++] = buf[b++];
	snprintf(buf[b], sizeof(buf[b]), "up=%" PRIu64, p.up_bps);
	w[n++] = buf[b++];
	if (has_any(o, nn, bursts)) {
		snprintf(buf[b], sizeof(buf[b]), "down_burst=%" PRIu64, p.down_burst_bytes);
		w[n++] = buf[b++];
		snprintf(buf[b], sizeof(buf[b]), "up_burst=%" PRIu64, p.up_burst_bytes);
		w[n++] = buf[b++];
	}
	if (has_any(o, nn, weight)) {
		snprintf(buf[b], sizeof(buf[b]), "weight=%" PRIu32, p.weight);
		w[n++] = buf[b++];
	}
	for (unsigned int c = 0; has_any(o, nn, cws) && c < sky_subs_n_classes(ns); c++) {
		struct sky_class k = sky_subs_class(ns, c);

		snprintf(buf[b], sizeof(buf[b]), "cw.%s=%" PRIu32, k.name, p.class_weight[c]);
		w[n++] = buf[b++];
	}
	return cmds_addv(l, n, w);
}

static int
beam_cmd(struct cmds *l, const struct sky_subs *ns, unsigned int idx)
{
	struct sky_beam bm = sky_subs_beam(ns, idx);
	char d[64], u[64];

	snprintf(d, sizeof(d), "down=%" PRIu64, bm.down_bps);
	snprintf(u, sizeof(u), "up=%" PRIu64, bm.up_bps);
	return cmds_add(l, 5, "beam", "set", bm.name, d, u);
}

/* map update/delete for the differences of policy.maps */
static int
maps_cmds(struct cmds *l, const struct sky_cfg_node *om, const struct sky_cfg_node *nm)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sky_cfg_len(nm); i++) {
		const char *map = sky_cfg_key_at(nm, i);
		const struct sky_cfg_node *ne = sky_cfg_at(nm, i), *oe = sky_cfg_get(om, map);

		for (size_t k = 0; rc == 0 && k < sky_cfg_len(ne); k++) {
			const char *key = sky_cfg_key_at(ne, k);
			const char *v = sky_cfg_str(sky_cfg_at(ne, k));

			if (v != NULL && !same_str(sky_cfg_str(sky_cfg_get(oe, key)), v))
				rc = cmds_add(l, 5, "map", "update", map, key, v);
		}
	}
	for (size_t i = 0; rc == 0 && i < sky_cfg_len(om); i++) {
		const char *map = sky_cfg_key_at(om, i);
		const struct sky_cfg_node *oe = sky_cfg_at(om, i), *ne = sky_cfg_get(nm, map);

		for (size_t k = 0; rc == 0 && k < sky_cfg_len(oe); k++)
			if (sky_cfg_get(ne, sky_cfg_key_at(oe, k)) == NULL)
				rc = cmds_add(l, 4, "map", "delete", map, sky_cfg_key_at(oe, k));
	}
	return rc;
}

/* what needs a restart, into why (empty: nothing) */
static void
restart_needed(const struct sky_cfg *o, const struct sky_cfg *n, char *why, size_t len)
{
	static const char *const whole[] = {"eal",   "workers", "ports",   "control", "mempool",
					    "state", "shaping", "flows",   "zones",   "ipfix",
					    "qoe",   "quota",	"cluster", NULL};
	static const char *const fair_use[] = {SKY_PLAN_EXTRA_KEYS, NULL};
	static const char *const geo_keys[] = {"flags", "ipv6", "lookup", "check_interval", NULL};
	const struct sky_cfg_node *os, *ns;
	char what[96];

	why[0] = '\0';
	for (const char *const *s = whole; *s != NULL; s++)
		if (!same(sky_cfg_get(o->root, *s), sky_cfg_get(n->root, *s)))
			need_restart(why, len, *s);
	os = sky_cfg_get(o->root, "subscribers");
	ns = sky_cfg_get(n->root, "subscribers");
	if (!same(sky_cfg_get(os, "unknown"), sky_cfg_get(ns, "unknown")))
		need_restart(why, len, "subscribers.unknown");
	if (!same(sky_cfg_get(os, "capacity"), sky_cfg_get(ns, "capacity")))
		need_restart(why, len, "subscribers.capacity");
	if ((geo_file(o) == NULL) != (geo_file(n) == NULL))
		need_restart(why, len, geo_file(n) ? "geo (turned on)" : "geo (turned off)");
	for (const char *const *k = geo_keys; *k != NULL; k++)
		if (!same(sky_cfg_get(sky_cfg_get(o->root, "geo"), *k),
			  sky_cfg_get(sky_cfg_get(n->root, "geo"), *k))) {
			snprintf(what, sizeof(what), "geo.%s", *k);
			need_restart(why, len, what);
		}
	os = sky_cfg_get(o->root, "policy");
	ns = sky_cfg_get(n->root, "policy");
	if (!same(sky_cfg_get(os, "on_fault"), sky_cfg_get(ns, "on_fault")))
		need_restart(why, len, "policy.on_fault");
	if (!same(sky_cfg_get(os, "jit"), sky_cfg_get(ns, "jit")))
		need_restart(why, len, "policy.jit");
	if (!same_keys(sky_cfg_get(o->root, "plans"), sky_cfg_get(n->root, "plans")))
		need_restart(why, len, "plans added or removed");
	/* fair-use terms make plans of their own at start (graded rates, peak weight) */
	os = sky_cfg_get(o->root, "plans");
	ns = sky_cfg_get(n->root, "plans");
	for (size_t i = 0; i < sky_cfg_len(ns); i++) {
		const char *name = sky_cfg_key_at(ns, i);

		for (const char *const *k = fair_use; *k != NULL; k++)
			if (!same(sky_cfg_get(sky_cfg_get(os, name), *k),
				  sky_cfg_get(sky_cfg_at(ns, i), *k))) {
				snprintf(what, sizeof(what), "plans.%s.%s", name, *k);
				need_restart(why, len, what);
			}
	}
	if (!same_keys(sky_cfg_get(o->root, "beams"), sky_cfg_get(n->root, "beams")))
		need_restart(why, len, "beams added or removed");
	if (!classes_fixed_same(sky_cfg_get(o->root, "classes"), sky_cfg_get(n->root, "classes")))
		need_restart(why, len, "classes (names, order, default, queue or aqm)");
}

/* telemetry.prometheus: move the listener (close, open the new one; put the old one back when
 * the new address cannot be bound) */
static int
telemetry_apply(struct gw *g, const struct sky_cfg *o, const struct sky_cfg *n, json_t *changes,
		char *out, size_t outlen)
{
	const char *to = str_at(o, "telemetry", "prometheus"),
		   *tn = str_at(n, "telemetry", "prometheus");
	char err[300], line[300];

	if (same_str(to, tn))
		return 0;
	if (tn == NULL) {
		sky_metrics_http_close();
	} else if (sky_metrics_http_open(tn, err, sizeof(err)) < 0) {
		char err2[300] = "";

		if (to != NULL && sky_metrics_http_open(to, err2, sizeof(err2)) < 0)
			SKY_LOG(ERR, "reload: the previous metrics listener is lost: %s", err2);
		snprintf(out, outlen, "telemetry.prometheus: %s; nothing changed%s", err,
			 err2[0] ? " (but the previous listener could not be reopened)" : "");
		return -1;
	}
	snprintf(g->prometheus, sizeof(g->prometheus), "%s", tn ? tn : "");
	snprintf(line, sizeof(line), "telemetry prometheus %s", tn ? tn : "off");
	json_array_append_new(changes, json_string(line));
	return 0;
}

/* the subscriber model's sections or its CSV differ from those in force */
static int
subs_model_changed(const struct sky_cfg *n)
{
	static const char *const secs[] = {"plans", "beams", "classes", "subscribers", NULL};
	struct fid f;

	for (const char *const *k = secs; *k != NULL; k++)
		if (!same(sky_cfg_get(rl.cur->root, *k), sky_cfg_get(n->root, *k)))
			return 1;
	fid_of(subs_file(n), 1, &f);
	return !fid_eq(&f, &rl.subs);
}

/*
 * step 1: the new file, validated whole. The subscriber model (with its CSV) and the
 * classifier are built aside when their sections or the CSV changed (otherwise they are
 * the ones validated before, and *ns is the live model, read only: *ns_live = 1); the
 * policy likewise.
 */
static struct sky_cfg *
validate(struct gw *g, struct sky_subs **ns, int *ns_live, int *policy_changed, char *err,
	 size_t errlen)
{
	struct sky_cfg_err cerr = {0};
	struct sky_cfg *n = sky_cfg_load(g->config_path, &cerr);
	struct gw scratch;
	char **eal = NULL;
	int eal_n = 0;
	struct sky_classifier *cls;

	*ns = NULL;
	memset(&scratch, 0, sizeof(scratch));
	if (n == NULL || gw_config_defaults(n, &cerr) < 0 ||
	    gw_config_parse(&scratch, n, &cerr, &eal, &eal_n) < 0)
		goto bad;
	free(eal);
	*ns_live = !subs_model_changed(n);
	if (*ns_live) {
		*ns = g->subs;
	} else {
		*ns = sky_subs_create(n, g->n_workers, &cerr);
		if (*ns == NULL)
			goto bad;
		cls = sky_classify_create(n, sky_subs_n_classes(*ns), &cerr);
		if (cls == NULL)
			goto bad;
		sky_classify_destroy(cls);
	}
	if (!*ns_live || !same(sky_cfg_get(rl.cur->root, "quota"), sky_cfg_get(n->root, "quota"))) {
		/* the fair-use terms checked whole (on a scratch model: it adds plans) */
		struct sky_subs *qs = *ns_live ? sky_subs_create(n, g->n_workers, &cerr) : *ns;
		struct sky_quota *q = qs != NULL ? sky_quota_create(n, qs, &cerr) : NULL;

		sky_quota_destroy(q);
		if (*ns_live && qs != NULL)
			sky_subs_destroy(qs);
		if (q == NULL)
			goto bad;
	}
	*policy_changed =
		!same(sky_cfg_get(rl.cur->root, "policy"), sky_cfg_get(n->root, "policy"));
	{
		struct fid f;

		fid_of(pol_file(n), 1, &f);
		*policy_changed |= !fid_eq(&f, &rl.pol);
	}
	if (*policy_changed) {
		struct sky_policy *p = sky_policy_create(n, *ns, &cerr);

		if (p == NULL)
			goto bad;
		sky_policy_destroy(p);
	}
	return n;
bad:
	snprintf(err, errlen, "%s", cerr.msg[0] ? cerr.msg : "out of memory");
	if (*ns != NULL && !*ns_live)
		sky_subs_destroy(*ns);
	*ns = NULL;
	sky_cfg_free(n);
	return NULL;
}

static int
build(const struct sky_cfg *o, const struct sky_cfg *n, const struct sky_subs *ns,
      int policy_changed, struct cmds *l)
{
	const struct sky_cfg_node *op = sky_cfg_get(o->root, "plans"),
				  *np = sky_cfg_get(n->root, "plans"),
				  *ob = sky_cfg_get(o->root, "beams"),
				  *nb = sky_cfg_get(n->root, "beams");
	struct fid fs, fp, fg;
	int rc = 0, new_program = 0;

	fids_take(n, &fs, &fp, &fg);
	if (geo_file(n) != NULL && (!same_str(geo_file(o), geo_file(n)) || !fid_eq(&fg, &rl.geo)))
		rc = cmds_add(l, 3, "geo", "reload", geo_file(n));
	if (rc == 0 && !same(sky_cfg_get(o->root, "classes"), sky_cfg_get(n->root, "classes")))
		rc = cmds_add(l, 2, "class", "reload");
	for (size_t i = 0; rc == 0 && i < sky_cfg_len(np); i++) {
		const char *name = sky_cfg_key_at(np, i);

		if (!same(sky_cfg_get(op, name), sky_cfg_at(np, i)))
			rc = plan_cmd(l, ns, (unsigned int)sky_subs_plan_index(ns, name),
				      sky_cfg_get(op, name), sky_cfg_at(np, i));
	}
	for (size_t i = 0; rc == 0 && i < sky_cfg_len(nb); i++) {
		const char *name = sky_cfg_key_at(nb, i);

		if (!same(sky_cfg_get(ob, name), sky_cfg_at(nb, i)))
			rc = beam_cmd(l, ns, (unsigned int)sky_subs_beam_index(ns, name));
	}
	if (rc == 0 && policy_changed &&
	    (!same_str(pol_file(o), pol_file(n)) || !fid_eq(&fp, &rl.pol))) {
		rc = pol_file(n) != NULL ? cmds_add(l, 3, "policy", "load", pol_file(n))
					 : cmds_add(l, 2, "policy", "unload");
		new_program = pol_file(n) != NULL;
	}
	/* a new program: every entry the file gives its maps (the old program's maps, and what
	 * the file deleted from them, went with it); otherwise the differences */
	if (rc == 0)
		rc = maps_cmds(
			l, new_program ? NULL : sky_cfg_get(sky_cfg_get(o->root, "policy"), "maps"),
			sky_cfg_get(sky_cfg_get(n->root, "policy"), "maps"));
	if (rc == 0 && subs_file(n) != NULL &&
	    (!same_str(subs_file(o), subs_file(n)) || !fid_eq(&fs, &rl.subs)))
		rc = cmds_add(l, 3, "subscriber", "load", subs_file(n));
	if (rc == 0 && subs_file(n) == NULL && subs_file(o) != NULL)
		return -EXDEV; /* no command empties the table: a restart does */
	return rc;
}

int
gw_reload(struct gw *g, json_t *changes, char *out, size_t outlen)
{
	struct sky_subs *ns = NULL;
	struct cmds l = {0};
	struct sky_cfg *n;
	int policy_changed = 0, ns_live = 0, rc;
	char why[1024], line[600];
	const char *lvl_o, *lvl_n;

	out[0] = '\0';
	if (rl.cur == NULL) {
		snprintf(out, outlen, "reload: not ready");
		return -1;
	}
	n = validate(g, &ns, &ns_live, &policy_changed, why, sizeof(why));
	if (n == NULL) {
		snprintf(out, outlen, "%s is invalid, nothing changed: %s", g->config_path, why);
		return -1;
	}
	restart_needed(rl.cur, n, why, sizeof(why));
	if (subs_file(n) == NULL && subs_file(rl.cur) != NULL)
		need_restart(why, sizeof(why), "subscribers.file removed");
	if (why[0] != '\0') {
		snprintf(out, outlen, "%s: these changes need a restart, nothing changed: %s",
			 g->config_path, why);
		rc = -1;
		goto done;
	}
	rc = build(rl.cur, n, ns, policy_changed, &l);
	if (rc < 0) {
		snprintf(out, outlen, "reload: %s, nothing changed", strerror(-rc));
		rc = -1;
		goto done;
	}
	/* the metrics listener first: it can fail (address in use), and is put back then */
	if (telemetry_apply(g, rl.cur, n, changes, out, outlen) < 0) {
		rc = -1;
		goto done;
	}
	for (size_t i = 0; i < l.n; i++) {
		json_t *reply = sky_ctl_dispatch_argv(l.c[i], l.v[i], 0, getpid(), 0);

		join(line, sizeof(line), l.c[i], l.v[i]);
		if (!json_is_true(json_object_get(reply, "ok"))) {
			const char *e = json_string_value(json_object_get(reply, "error"));

			snprintf(out, outlen,
				 "reload stopped at change %zu of %zu (%s): %s; the %zu before it "
				 "are applied and journaled",
				 i + 1, l.n, line, e ? e : "out of memory", i);
			json_decref(reply);
			rc = -1;
			goto done;
		}
		json_decref(reply);
		json_array_append_new(changes, json_string(line));
	}
	lvl_o = str_at(rl.cur, "log", "level");
	lvl_n = str_at(n, "log", "level");
	if (!same_str(lvl_o, lvl_n) && g->log_level != 0) {
		struct gw scratch;
		char **eal = NULL;
		int eal_n = 0;
		struct sky_cfg_err cerr = {0};

		memset(&scratch, 0, sizeof(scratch));
		if (gw_config_parse(&scratch, n, &cerr, &eal, &eal_n) == 0 &&
		    scratch.log_level > 0) {
			rte_log_set_level(sky_logtype, (uint32_t)scratch.log_level);
			g->log_level = scratch.log_level;
			snprintf(line, sizeof(line), "log level %s", lvl_n ? lvl_n : "");
			json_array_append_new(changes, json_string(line));
		}
		free(eal);
	}
	/* in force from now on */
	fids_take(n, &rl.subs, &rl.pol, &rl.geo);
	if (rl.cur != rl.boot)
		sky_cfg_free(rl.cur);
	rl.cur = n;
	g->cfg = n;
	n = NULL;
	snprintf(out, outlen, "%zu change%s applied", json_array_size(changes),
		 json_array_size(changes) == 1 ? "" : "s");
	rc = 0;
done:
	cmds_free(&l);
	if (ns != NULL && !ns_live)
		sky_subs_destroy(ns);
	sky_cfg_free(n);
	return rc;
}

/* SIGHUP: the same, with the outcome in the log */
void
gw_reload_signal(struct gw *g)
{
	json_t *changes = json_array();
	char out[1600];

	if (g->cluster != NULL) {
		sky_cluster_reload_refusal(g->cluster, out, sizeof(out));
		SKY_LOG(ERR, "SIGHUP: %s", out);
		json_decref(changes);
		return;
	}
	gw_notify("RELOADING=1\nSTATUS=reloading %s", g->config_path);
	SKY_LOG(NOTICE, "SIGHUP received: reloading %s", g->config_path);
	if (changes == NULL || gw_reload(g, changes, out, sizeof(out)) < 0) {
		SKY_LOG(ERR, "reload refused: %s", changes ? out : "out of memory");
	} else {
		size_t i;
		json_t *v;

		json_array_foreach(changes, i, v)
			SKY_LOG(NOTICE, "reload: %s", json_string_value(v));
		SKY_LOG(NOTICE, "reload of %s: %s", g->config_path,
			json_array_size(changes) ? out : "no changes");
	}
	json_decref(changes);
	gw_notify("READY=1\nSTATUS=running: %u ports, %u workers", g->n_ports, g->n_workers);
}

static int
cmd_reload(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct gw *g = arg;
	json_t *changes = json_array();
	char out[1600];

	(void)argv;
	if (argc != 0)
		return sky_ctl_fail(call, "usage: reload");
	if (call->replay)
		return sky_ctl_fail(call, "reload is not replayed");
	if (g->cluster != NULL) {
		json_decref(changes);
		sky_cluster_reload_refusal(g->cluster, out, sizeof(out));
		return sky_ctl_fail(call, "%s", out);
	}
	if (changes == NULL)
		return sky_ctl_fail(call, "out of memory");
	gw_notify("RELOADING=1\nSTATUS=reloading %s", g->config_path);
	if (gw_reload(g, changes, out, sizeof(out)) < 0) {
		json_decref(changes);
		gw_notify("READY=1\nSTATUS=running: %u ports, %u workers", g->n_ports,
			  g->n_workers);
		SKY_LOG(ERR, "reload refused: %s", out);
		return sky_ctl_fail(call, "%s", out);
	}
	gw_notify("READY=1\nSTATUS=running: %u ports, %u workers", g->n_ports, g->n_workers);
	sky_audit(call->uid, "reload of %s: %s", g->config_path,
		  json_array_size(changes) ? out : "no changes");
	*result = json_pack("{s:s, s:o}", "file", g->config_path, "changes", changes);
	return *result != NULL ? 0 : sky_ctl_fail(call, "out of memory");
}

/* after start-up: the configuration in force is the one read at start */
int
gw_reload_register(struct gw *g)
{
	rl.boot = g->cfg;
	rl.cur = g->cfg;
	fids_take(g->cfg, &rl.subs, &rl.pol, &rl.geo);
	return sky_ctl_register("reload", "",
				"re-read the config file and apply what changed (all or nothing; "
				"lists the changes)",
				0, cmd_reload, g);
}

void
gw_reload_fini(void)
{
	if (rl.boot != NULL && rl.boot != rl.cur)
		sky_cfg_free(rl.boot);
	rl.boot = rl.cur = NULL;
}
