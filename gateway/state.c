/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's parts of the live state (skygate/control.h: sky_ctl_state_register): for each,
 * a canonical dump (`skygatectl state dump`) and the commands that recreate it on top of the
 * configuration (the snapshot `journal compact` writes), in dependency order: geo, classes,
 * plans, beams, the policy object, its maps, subscribers. Parts read the state through the
 * module's own read commands (geo show, plan list, map show...), so the dump is what an
 * operator sees, minus counters and timings, or through its public walk (subscribers);
 * `map clear` lets a snapshot state a map's whole content. Control path only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <jansson.h>

#include "gateway.h"
#include "skygate/control.h"
#include "skygate/policy.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"

static int config_policy_loaded; /* the configuration loaded a program (before replay) */
static char last_policy[4096];	 /* the object of the last `policy load` (its maps outlive an
				  * unload) */

/* `policy load` succeeded: remember which object (the state-dir copy) it loaded. */
static void
policy_loaded(void *arg, int argc, char **argv, json_t *result)
{
	const char *f = json_string_value(json_object_get(result, "file"));

	if (f != NULL)
		snprintf(last_policy, sizeof(last_policy), "%s", f);
}

/* The result of a read command, or NULL with err filled. */
static json_t *
run(char *err, size_t errlen, int argc, ...)
{
	char *argv[8];
	json_t *reply, *res;
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc && i < 8; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	reply = sky_ctl_dispatch_argv(argc, argv, 0, 0, 0);
	if (!json_is_true(json_object_get(reply, "ok"))) {
		snprintf(err, errlen, "%s",
			 reply ? json_string_value(json_object_get(reply, "error"))
			       : "out of memory");
		json_decref(reply);
		return NULL;
	}
	res = json_incref(json_object_get(reply, "result"));
	json_decref(reply);
	return res;
}

/* A copy of o with only the named fields (missing ones left out). */
static json_t *
pick(const json_t *o, const char *const *keys)
{
	json_t *out = json_object();

	for (; *keys != NULL; keys++)
		if (json_object_get(o, *keys) != NULL)
			json_object_set(out, *keys, json_object_get(o, *keys));
	return out;
}

static int
add(struct sky_ctl_snapshot *snap, char *err, size_t errlen, int argc, const char *const *argv)
{
	int rc = sky_ctl_snapshot_add(snap, argc, argv);

	if (rc != 0)
		snprintf(err, errlen, "cannot write '%s ...': %s", argv[0], strerror(-rc));
	return rc != 0 ? -1 : 0;
}

static int
in_state_dir(const char *path)
{
	const char *d = sky_ctl_state_dir();
	size_t n = d != NULL ? strlen(d) : 0;

	return path != NULL && n > 0 && strncmp(path, d, n) == 0 && path[n] == '/';
}

/* --- geo: the database in use --- */

/* The keys of `<stage> show` that a dump keeps; when the stage does not answer, null (its
 * part is optional: a stage that may be off) or an error. */
static int
show_dump(const char *stage, const char *const *keys, bool optional, json_t **part, char *err,
	  size_t errlen)
{
	json_t *r = run(err, errlen, 2, (char *)stage, "show");

	if (r == NULL && !optional)
		return -1;
	*part = r != NULL ? pick(r, keys) : json_null();
	json_decref(r);
	return 0;
}

static int
geo_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	static const char *const keys[] = {"database", NULL};

	/* geo off: nothing to dump */
	return show_dump("geo", keys, true, part, err, errlen);
}

static int
geo_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	json_t *r = run(err, errlen, 2, "geo", "show");
	const char *db = json_string_value(json_object_get(r, "database"));
	const char *w[] = {"geo", "reload", db};
	int rc = 0;

	if (in_state_dir(db))
		rc = add(snap, err, errlen, 3, w);
	json_decref(r);
	return rc;
}

/* --- classes: from the configuration (class reload re-reads it); dumped only --- */

static int
classes_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	*part = run(err, errlen, 2, "class", "list");
	return *part != NULL ? 0 : -1;
}

static int
nothing_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	return 0;
}

/* --- plans and beams --- */

static const char *const plan_keys[] = {
	"name",		  "down_bps", "up_bps",	       "down_burst_bytes",
	"up_burst_bytes", "weight",   "class_weights", NULL};
static const char *const beam_keys[] = {"name", "down_bps", "up_bps", NULL};

static int
list_dump(const char *what, const char *const *keys, json_t **part, char *err, size_t errlen)
{
	json_t *r = run(err, errlen, 2, (char *)what, "list"), *e;
	size_t i;

	if (r == NULL)
		return -1;
	*part = json_array();
	json_array_foreach(r, i, e) json_array_append_new(*part, pick(e, keys));
	json_decref(r);
	return 0;
}

static int
plans_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	return list_dump("plan", plan_keys, part, err, errlen);
}

static int
beams_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	return list_dump("beam", beam_keys, part, err, errlen);
}

#define NUM(o, k) ((long long)json_integer_value(json_object_get(o, k)))

/* `<what> list`, and for each element the snapshot command one() adds; 0, or -1 */
static int
list_snap(const char *what,
	  int (*one)(const json_t *e, struct sky_ctl_snapshot *snap, char *err, size_t errlen),
	  struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	json_t *r = run(err, errlen, 2, (char *)what, "list"), *e;
	size_t i;

	if (r == NULL)
		return -1;
	json_array_foreach(r, i, e)
	{
		if (one(e, snap, err, errlen) != 0) {
			json_decref(r);
			return -1;
		}
	}
	json_decref(r);
	return 0;
}

static int
plan_snap(const json_t *p, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	char words[6 + 8][64];
	const char *w[6 + 8 + 3];
	const char *cls;
	json_t *cw;
	int n = 0;

	w[n++] = "plan";
	w[n++] = "set";
	w[n++] = json_string_value(json_object_get(p, "name"));
	long long down = NUM(p, "down_bps"), up = NUM(p, "up_bps"), k = 0;
	long long db = down / 800 > 65536 ? down / 800 : 65536;
	long long ub = up / 800 > 65536 ? up / 800 : 65536;
	long long wt = down / 1000 < 1 ? 1 : down / 1000 > UINT32_MAX ? UINT32_MAX : down / 1000;

	/* bursts and weight only when they are not the ones the rates give: a value
	 * stated here would stay fixed when a later `plan set` changes the rates */
	snprintf(words[k++], 64, "down=%lld", down);
	snprintf(words[k++], 64, "up=%lld", up);
	if (NUM(p, "down_burst_bytes") != db)
		snprintf(words[k++], 64, "down_burst=%lld", NUM(p, "down_burst_bytes"));
	if (NUM(p, "up_burst_bytes") != ub)
		snprintf(words[k++], 64, "up_burst=%lld", NUM(p, "up_burst_bytes"));
	if (NUM(p, "weight") != wt)
		snprintf(words[k++], 64, "weight=%lld", NUM(p, "weight"));
	for (int x = 0; x < k; x++)
		w[n++] = words[x];
	json_object_foreach(json_object_get(p, "class_weights"), cls, cw)
	{
		if (n - 3 >= 6 + 8)
			break;
		snprintf(words[n - 3], 64, "cw.%s=%lld", cls, (long long)json_integer_value(cw));
		w[n] = words[n - 3];
		n++;
	}
	return add(snap, err, errlen, n, w);
}

static int
plans_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	return list_snap("plan", plan_snap, snap, err, errlen);
}

static int
beam_snap(const json_t *b, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	char down[40], up[40];
	const char *w[] = {"beam", "set", json_string_value(json_object_get(b, "name")), down, up};

	snprintf(down, sizeof(down), "down=%lld", NUM(b, "down_bps"));
	snprintf(up, sizeof(up), "up=%lld", NUM(b, "up_bps"));
	return add(snap, err, errlen, 5, w);
}

static int
beams_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	return list_snap("beam", beam_snap, snap, err, errlen);
}

/* --- the policy object --- */

static int
policy_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	static const char *const keys[] = {"loaded", "on_fault", "file", "program",
					   "sha256", "maps",	 NULL};

	return show_dump("policy", keys, false, part, err, errlen);
}

static int
policy_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	json_t *r = run(err, errlen, 2, "policy", "show");
	const char *file = json_string_value(json_object_get(r, "file"));
	int rc = 0;

	if (r == NULL)
		return -1;
	if (json_is_true(json_object_get(r, "loaded")) && in_state_dir(file)) {
		const char *w[] = {"policy", "load", file};

		rc = add(snap, err, errlen, 3, w);
	} else if (!json_is_true(json_object_get(r, "loaded"))) {
		const char *load[] = {"policy", "load", last_policy};
		const char *unload[] = {"policy", "unload"};

		/* unloaded: the maps that stay are the last program's, so load it first */
		if (in_state_dir(last_policy))
			rc = add(snap, err, errlen, 3, load);
		if (rc == 0 && (in_state_dir(last_policy) || config_policy_loaded))
			rc = add(snap, err, errlen, 2, unload);
	}
	json_decref(r);
	return rc;
}

/* --- the policy's maps: `map clear` then every entry --- */

/* {NAME: map show result} for every map, or NULL with err filled. */
static json_t *
maps_all(char *err, size_t errlen)
{
	json_t *list = run(err, errlen, 2, "map", "list"), *out, *m;
	size_t i;

	if (list == NULL)
		return NULL;
	out = json_object();
	json_array_foreach(list, i, m)
	{
		const char *name = json_string_value(json_object_get(m, "name"));
		json_t *r = run(err, errlen, 3, "map", "show", (char *)name);

		if (r == NULL || json_is_true(json_object_get(r, "truncated"))) {
			if (r != NULL)
				snprintf(err, errlen, "map %s: more entries than `map show` lists",
					 name);
			json_decref(r);
			json_decref(out);
			json_decref(list);
			return NULL;
		}
		json_object_set_new(out, name, r);
	}
	json_decref(list);
	return out;
}

static int
maps_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	json_t *all = maps_all(err, errlen), *m, *e;
	const char *name;
	size_t i;

	if (all == NULL)
		return -1;
	*part = json_object();
	json_object_foreach(all, name, m)
	{
		json_t *items = json_object();

		json_array_foreach(json_object_get(m, "items"), i, e)
			json_object_set(items, json_string_value(json_object_get(e, "key")),
					json_object_get(e, "value"));
		json_object_set_new(*part, name, items);
	}
	json_decref(all);
	return 0;
}

static int
maps_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	json_t *all = maps_all(err, errlen), *m, *e;
	const char *name;
	size_t i;

	if (all == NULL)
		return -1;
	json_object_foreach(all, name, m)
	{
		const char *clear[] = {"map", "clear", name};

		if (add(snap, err, errlen, 3, clear) != 0)
			goto fail;
		json_array_foreach(json_object_get(m, "items"), i, e)
		{
			const char *w[] = {"map", "update", name,
					   json_string_value(json_object_get(e, "key")),
					   json_string_value(json_object_get(e, "value"))};

			if (add(snap, err, errlen, 5, w) != 0)
				goto fail;
		}
	}
	json_decref(all);
	return 0;
fail:
	json_decref(all);
	return -1;
}

/* `map clear NAME`: remove every entry (a snapshot states a map's whole content). */
static int
cmd_map_clear(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct gw *g = arg;
	char err[512];
	json_t *r, *e;
	size_t i;
	int n = 0;

	if (argc != 1)
		return sky_ctl_fail(call, "usage: map clear NAME");
	r = run(err, sizeof(err), 3, "map", "show", argv[0]);
	if (r == NULL)
		return sky_ctl_fail(call, "%s", err);
	if (json_is_true(json_object_get(r, "truncated"))) {
		json_decref(r);
		return sky_ctl_fail(call, "map %s: more entries than `map show` lists", argv[0]);
	}
	if (sky_ctl_commit(call) != 0) {
		json_decref(r);
		return -1;
	}
	json_array_foreach(json_object_get(r, "items"), i, e)
	{
		if (sky_policy_map_delete(g->policy, argv[0],
					  json_string_value(json_object_get(e, "key")), err,
					  sizeof(err)) == 0)
			n++;
		else
			SKY_LOG(ERR, "map clear %s: %s", argv[0], err);
	}
	json_decref(r);
	*result = json_pack("{s:i}", "removed", n);
	return 0;
}

/* --- subscribers: the whole table, as a CSV in the state directory --- */

struct sub_rows {
	json_t *rows;
	const struct sky_subs *s;
};

static json_t *
prefix_json(int fam, const uint8_t *a, uint8_t len)
{
	char buf[INET6_ADDRSTRLEN + 4];

	sky_subs_prefix_str(buf, sizeof(buf), fam, a, len);
	return json_string(buf);
}

static int
sub_row(void *arg, const struct sky_sub_info *in)
{
	struct sub_rows *r = arg;
	struct sky_plan plan = sky_subs_plan(r->s, in->plan);
	struct sky_beam beam = sky_subs_beam(r->s, in->beam);
	char cc[3] = {(char)(in->country >> 8), (char)(in->country & 0xff), '\0'};
	const char *zone = sky_subs_zone_name(r->s, in->zone);

	json_array_append_new(
		r->rows,
		json_pack("{s:I, s:o, s:o, s:s, s:s, s:s, s:i, s:o}", "id", (json_int_t)in->id,
			  "ipv4", in->has_v4 ? prefix_json(4, in->v4, in->v4_len) : json_null(),
			  "ipv6", in->has_v6 ? prefix_json(6, in->v6, in->v6_len) : json_null(),
			  "plan", plan.name, "beam", beam.name, "country", cc, "realm", in->realm,
			  "zone", zone ? json_string(zone) : json_null()));
	return 0;
}

static int
by_id(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));

	return x < y ? -1 : x > y;
}

/* Every subscriber, in id order (the one walk of the table, then a sort). */
static json_t *
subs_all(struct gw *g, char *err, size_t errlen)
{
	struct sub_rows r = {json_array(), g->subs};
	json_t **v, *out;
	size_t n, i;

	if (r.rows == NULL)
		goto nomem;
	sky_subs_foreach(g->subs, sub_row, &r);
	n = json_array_size(r.rows);
	v = malloc(sizeof(*v) * (n ? n : 1));
	out = json_array();
	if (v == NULL || out == NULL) {
		free(v);
		json_decref(out);
		json_decref(r.rows);
		goto nomem;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(r.rows, i);
	qsort(v, n, sizeof(*v), by_id);
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(r.rows);
	return out;
nomem:
	snprintf(err, errlen, "subscribers: out of memory");
	return NULL;
}

static int
subs_dump(void *arg, json_t **part, char *err, size_t errlen)
{
	*part = subs_all(arg, err, errlen);
	return *part != NULL ? 0 : -1;
}

/* One CSV row per subscriber, straight from the table walk (1M rows need no JSON). */
struct csv_out {
	FILE *f;
	const struct sky_subs *s;
};

static void
csv_prefix(FILE *f, int fam, const uint8_t *a, uint8_t len)
{
	char txt[64];

	inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, txt, sizeof(txt));
	fprintf(f, "%s/%u", txt, len);
}

static int
csv_row(void *arg, const struct sky_sub_info *in)
{
	struct csv_out *o = arg;
	struct sky_plan plan = sky_subs_plan(o->s, in->plan);
	struct sky_beam beam = sky_subs_beam(o->s, in->beam);

	fprintf(o->f, "%u,", in->id);
	if (in->has_v4)
		csv_prefix(o->f, 4, in->v4, in->v4_len);
	fputc(',', o->f);
	if (in->has_v6)
		csv_prefix(o->f, 6, in->v6, in->v6_len);
	fprintf(o->f, ",%s,%s,%c%c,", plan.name, beam.name, (char)(in->country >> 8),
		(char)(in->country & 0xff));
	if (in->realm != 0)
		fprintf(o->f, "%u", in->realm);
	fputc(',', o->f);
	if (in->zone != 0)
		fputs(sky_subs_zone_name(o->s, in->zone), o->f);
	fputc('\n', o->f);
	return 0;
}

static int
subs_snap(void *arg, struct sky_ctl_snapshot *snap, char *err, size_t errlen)
{
	struct gw *g = arg;
	struct csv_out o = {NULL, g->subs};
	const char *w[] = {"subscriber", "load", NULL};
	char path[4096];
	struct timespec ts;
	int bad;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(path, sizeof(path), "%s/subscribers-snapshot-%lld-%09ld.csv", sky_ctl_state_dir(),
		 (long long)ts.tv_sec, ts.tv_nsec);
	o.f = fopen(path, "w");
	if (o.f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(o.f, "id,ipv4,ipv6,plan,beam,country,realm,zone\n");
	sky_subs_foreach(g->subs, csv_row, &o);
	bad = ferror(o.f) || fflush(o.f) != 0 || fsync(fileno(o.f)) != 0;
	if (fclose(o.f) != 0 || bad) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	w[2] = path;
	if (add(snap, err, errlen, 3, w) != 0) {
		unlink(path);
		return -1;
	}
	return 0;
}

int
gw_state_register(struct gw *g)
{
	static const struct {
		const char *name;
		int order;
		sky_ctl_dump_fn dump;
		sky_ctl_snap_fn snap;
	} parts[] = {
		{"geo", SKY_CTL_ORDER_GEO, geo_dump, geo_snap},
		{"classes", SKY_CTL_ORDER_CLASSES, classes_dump, nothing_snap},
		{"plans", SKY_CTL_ORDER_PLANS, plans_dump, plans_snap},
		{"beams", SKY_CTL_ORDER_BEAMS, beams_dump, beams_snap},
		{"policy", SKY_CTL_ORDER_POLICY, policy_dump, policy_snap},
		{"maps", SKY_CTL_ORDER_MAPS, maps_dump, maps_snap},
		{"subscribers", SKY_CTL_ORDER_SUBSCRIBERS, subs_dump, subs_snap},
	};
	char err[256];
	json_t *r;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (sky_ctl_state_register(parts[i].name, parts[i].order, parts[i].dump,
					   parts[i].snap, g) != 0)
			return -1;
	r = run(err, sizeof(err), 2, "policy", "show");
	config_policy_loaded = json_is_true(json_object_get(r, "loaded"));
	json_decref(r);
	last_policy[0] = '\0';
	if (sky_ctl_extend("policy load", policy_loaded, NULL) != 0)
		return -1;
	return sky_ctl_register("map clear", "NAME",
				"remove every entry of a map (journal snapshots use it)",
				SKY_CTL_F_JOURNAL, cmd_map_clear, g);
}
