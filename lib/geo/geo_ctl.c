/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo control plane: commands (geo lookup|reload|show), telemetry /skygate/geo, Prometheus,
 * the database file watch. Calls the owner (geo.c); the owner reaches this file only
 * through the sky_geo.unregister callback left by sky_geo_register().
 *
 * Commands and Prometheus writers run on the main lcore. Telemetry callbacks run in DPDK's
 * telemetry thread: they only read the geo_info snapshot (under info_lock) and the
 * per-worker counters, never the table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_telemetry.h>

#include "skygate/control.h"
#include "skygate/file.h"
#include "geo_priv.h"

/* The module registered for telemetry and metrics (one per process), NULL after destroy. */
static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sky_geo *cur;
static int tel_done;

static const char *const counter_names[GEO_C_MAX] = {
#define GEO_C_NAME(n, s, h) s,
	GEO_FOREACH_COUNTER(GEO_C_NAME)
#undef GEO_C_NAME
};
static const char *const counter_help[GEO_C_MAX] = {
#define GEO_C_HELP(n, s, h) h,
	GEO_FOREACH_COUNTER(GEO_C_HELP)
#undef GEO_C_HELP
};

static const struct {
	uint8_t flag;
	const char *name;
} flag_names[] = {
	{SKY_GEO_F_ANONYMOUS_PROXY, "anonymous_proxy"},
	{SKY_GEO_F_SATELLITE, "satellite_provider"},
	{SKY_GEO_F_ANYCAST, "anycast"},
	{SKY_GEO_F_DROP, "drop"},
};

static int
flags_names(uint8_t flags, const char **names, int max)
{
	int n = 0;

	for (size_t i = 0; i < RTE_DIM(flag_names) && n < max; i++)
		if (flags & flag_names[i].flag)
			names[n++] = flag_names[i].name;
	return n;
}

static void
sum_counters(const struct sky_geo *g, uint64_t *out)
{
	memset(out, 0, sizeof(uint64_t) * GEO_C_MAX);
	for (unsigned int w = 0; w < SKY_MAX_WORKERS; w++)
		for (unsigned int c = 0; c < GEO_C_MAX; c++)
			out[c] += __atomic_load_n(&g->w[w].c[c], __ATOMIC_RELAXED);
}

static void
fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, len, "%s", "");
		return;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------ commands */

static int
cmd_lookup(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_geo *g = arg;
	uint8_t addr[16], flags = 0;
	char net[INET6_ADDRSTRLEN + 8], norm[INET6_ADDRSTRLEN], ccs[3];
	const char *names[8];
	uint16_t cc = 0;
	int family, rc, nf;
	json_t *o, *fl;

	if (argc != 1)
		return sky_ctl_fail(call, "geo lookup: usage: geo lookup ADDR");
	if (inet_pton(AF_INET, argv[0], addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, argv[0], addr) == 1)
		family = AF_INET6;
	else
		return sky_ctl_fail(call, "geo lookup: '%s' is not an IPv4 or IPv6 address",
				    argv[0]);
	rc = sky_geo_lookup(g, family, addr, &cc, &flags, net, sizeof(net));
	if (rc == -ENODEV)
		return sky_ctl_fail(call, "geo lookup: geo is disabled (no geo section in the "
					  "config and no geo reload PATH)");
	if (rc != 0 && rc != -ENOENT)
		return sky_ctl_fail(call, "geo lookup: %s: %s", argv[0], strerror(-rc));
	inet_ntop(family, addr, norm, sizeof(norm));
	o = json_object();
	fl = json_array();
	if (o == NULL || fl == NULL) {
		json_decref(o);
		json_decref(fl);
		return sky_ctl_fail(call, "geo lookup: out of memory");
	}
	json_object_set_new(o, "address", json_string(norm));
	json_object_set_new(o, "network", rc == 0 && net[0] ? json_string(net) : json_null());
	if (cc != SKY_COUNTRY_NONE) {
		ccs[0] = (char)(cc >> 8);
		ccs[1] = (char)cc;
		ccs[2] = '\0';
		json_object_set_new(o, "country", json_string(ccs));
	} else {
		json_object_set_new(o, "country", json_null());
	}
	nf = flags_names(flags, names, (int)RTE_DIM(names));
	for (int i = 0; i < nf; i++)
		json_array_append_new(fl, json_string(names[i]));
	json_object_set_new(o, "flags", fl);
	*result = o;
	return 0;
}

/* Copy src to dst (through dst.tmp + rename), so a journaled reload survives src going. */
static int
copy_file(const char *src, const char *dst, char *msg, size_t msg_len)
{
	char tmp[PATH_MAX], buf[1 << 16];
	int in = -1, out = -1, rc = 0;
	ssize_t r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= (int)sizeof(tmp)) {
		snprintf(msg, msg_len, "%s: path too long", dst);
		return -ENAMETOOLONG;
	}
	/* the source was just loaded, but may have been replaced by anything since */
	in = sky_file_open(src, GEO_DB_MAX_BYTES, NULL, msg, msg_len);
	if (in < 0)
		return in;
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		rc = -errno;
		snprintf(msg, msg_len, "%.300s: %s", tmp, strerror(errno));
		close(in);
		return rc;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0) {
		char *p = buf;

		while (r > 0) {
			ssize_t w = write(out, p, (size_t)r);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				rc = -errno;
				snprintf(msg, msg_len, "%.300s: %s", tmp, strerror(errno));
				goto done;
			}
			p += w;
			r -= w;
		}
	}
	if (r < 0) {
		rc = -errno;
		snprintf(msg, msg_len, "%.300s: %s", src, strerror(errno));
		goto done;
	}
	if (fsync(out) != 0) {
		rc = -errno;
		snprintf(msg, msg_len, "%.300s: %s", tmp, strerror(errno));
	}
done:
	close(in);
	if (close(out) != 0 && rc == 0) {
		rc = -errno;
		snprintf(msg, msg_len, "%.300s: %s", tmp, strerror(errno));
	}
	if (rc == 0 && rename(tmp, dst) != 0) {
		rc = -errno;
		snprintf(msg, msg_len, "%.300s: %s", dst, strerror(errno));
	}
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static int
cmd_reload(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_geo *g = arg;
	const char *path = argc > 0 ? argv[0] : NULL;
	const char *state = sky_ctl_state_dir();
	char msg[512], copy[PATH_MAX];
	const struct geo_table *t;
	json_t *o;

	if (argc > 1)
		return sky_ctl_fail(call, "geo reload: usage: geo reload [PATH]");
	if (path != NULL && path[0] == '\0')
		return sky_ctl_fail(call, "geo reload: empty PATH");
	/* a database named on the command line is kept in the state directory, so that the
	 * journal replays what was loaded even if the file is replaced or removed later */
	copy[0] = '\0';
	if (path != NULL && state != NULL && !call->replay) {
		struct timespec ts;
		int n;

		/* a name of its own: older journal records name (and checksum) older copies */
		clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(copy, sizeof(copy), "%s/geo-%lld-%09ld.db", state,
			     (long long)ts.tv_sec, ts.tv_nsec);
		if (n < 0 || n >= (int)sizeof(copy) || strcmp(copy, path) == 0)
			copy[0] = '\0';
	}
	if (copy[0] != '\0') {
		const char *jargv[3] = {"geo", "reload", copy};

		if (copy_file(path, copy, msg, sizeof(msg)) != 0) {
			g->reload_failures++; /* refused before the load: a refused reload all the
						 same */
			return sky_ctl_fail(call, "geo reload: cannot keep a copy of %s: %s", path,
					    msg);
		}
		sky_ctl_journal_as(call, 3, jargv);
		path = copy;
	}
	/* write-ahead: the record is durable before the new database is published */
	if (sky_ctl_commit(call) != 0 || sky_geo_reload(g, path, msg, sizeof(msg)) != 0) {
		size_t cl = strlen(copy);

		if (copy[0] != '\0')
			unlink(copy);
		if (call->err[0] != '\0')
			return -1;
		/* name the operator's file, not the copy */
		if (cl > 0 && strncmp(msg, copy, cl) == 0)
			return sky_ctl_fail(call, "geo reload: %s%s", argv[0], msg + cl);
		return sky_ctl_fail(call, "geo reload: %s", msg);
	}
	t = g->table;
	sky_audit(call->uid, "%sgeo reload %s: %u IPv4 + %u IPv6 networks loaded",
		  call->replay ? "(replay) " : "", t->path, t->n4, t->n6);
	o = json_object();
	if (o == NULL)
		return sky_ctl_fail(call, "geo reload: out of memory");
	json_object_set_new(o, "database", json_string(t->path));
	json_object_set_new(o, "networks_ipv4", json_integer(t->n4));
	json_object_set_new(o, "networks_ipv6", json_integer(t->n6));
	json_object_set_new(o, "load_ms", json_real((double)t->load_us / 1e3));
	json_object_set_new(o, "memory_bytes", json_integer((json_int_t)t->mem_bytes));
	*result = o;
	return 0;
}

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_geo *g = arg;
	const struct geo_table *t = g->table;
	uint64_t c[GEO_C_MAX];
	char created[32];
	json_t *o;

	if (argc != 0)
		return sky_ctl_fail(call, "geo show: takes no arguments");
	o = json_object();
	if (o == NULL)
		return sky_ctl_fail(call, "geo show: out of memory");
	json_object_set_new(o, "enabled", json_boolean(t != NULL));
	json_object_set_new(o, "database", t ? json_string(t->path) : json_null());
	json_object_set_new(o, "flags", json_boolean(g->opts.flags));
	json_object_set_new(o, "ipv6", json_boolean(g->opts.ipv6));
	json_object_set_new(o, "lookup", json_string(geo_lookup_names[g->opts.lookup]));
	if (t != NULL) {
		struct geo_db_meta m;

		geo_table_meta(t, &m);
		fmt_time(m.created_at, created, sizeof(created));
		json_object_set_new(o, "networks_ipv4", json_integer(t->n4));
		json_object_set_new(o, "networks_ipv6", json_integer(t->n6));
		json_object_set_new(o, "routes_ipv4", json_integer(t->routes4));
		json_object_set_new(o, "routes_ipv6", json_integer(t->routes6));
		json_object_set_new(o, "load_ms", json_real((double)t->load_us / 1e3));
		json_object_set_new(o, "memory_bytes", json_integer((json_int_t)t->mem_bytes));
		json_object_set_new(o, "next_hop_bytes_ipv4", json_integer(t->nh_bytes4));
		json_object_set_new(o, "next_hop_bytes_ipv6", json_integer(t->nh_bytes6));
		json_object_set_new(o, "tbl8_groups_ipv4", json_integer(t->tbl8_4));
		json_object_set_new(o, "tbl8_groups_ipv6", json_integer(t->tbl8_6));
		json_object_set_new(o, "attributes", json_integer(t->n_attr - 1));
		json_object_set_new(o, "vendor", json_string(m.vendor));
		json_object_set_new(o, "description", json_string(m.description));
		json_object_set_new(o, "license", json_string(m.license));
		json_object_set_new(o, "created_at", json_string(created));
	}
	json_object_set_new(o, "check_interval_s",
			    json_integer((json_int_t)(g->check_interval_us / 1000000)));
	json_object_set_new(o, "auto_reloads", json_integer((json_int_t)g->auto_reloads));
	json_object_set_new(o, "reloads", json_integer((json_int_t)g->reloads));
	json_object_set_new(o, "reload_failures", json_integer((json_int_t)g->reload_failures));
	sum_counters(g, c);
	for (unsigned int i = 0; i < GEO_C_MAX; i++)
		json_object_set_new(o, counter_names[i], json_integer((json_int_t)c[i]));
	*result = o;
	return 0;
}

/* ------------------------------------------------------------------ telemetry */

static int
tel_geo(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct geo_info in;
	uint64_t c[GEO_C_MAX];
	char created[32];
	int have = 0;

	(void)cmd;
	(void)params;
	pthread_mutex_lock(&cur_lock);
	if (cur != NULL) {
		pthread_mutex_lock(&cur->info_lock);
		in = cur->info;
		pthread_mutex_unlock(&cur->info_lock);
		sum_counters(cur, c);
		have = 1;
	}
	pthread_mutex_unlock(&cur_lock);
	rte_tel_data_start_dict(d);
	if (!have) {
		rte_tel_data_add_dict_int(d, "enabled", 0);
		return 0;
	}
	rte_tel_data_add_dict_int(d, "enabled", in.enabled);
	rte_tel_data_add_dict_string(d, "database", in.path);
	rte_tel_data_add_dict_u64(d, "networks_ipv4", in.n4);
	rte_tel_data_add_dict_u64(d, "networks_ipv6", in.n6);
	rte_tel_data_add_dict_u64(d, "load_us", in.load_us);
	rte_tel_data_add_dict_u64(d, "memory_bytes", in.mem_bytes);
	rte_tel_data_add_dict_string(d, "vendor", in.vendor);
	fmt_time(in.created_at, created, sizeof(created));
	rte_tel_data_add_dict_string(d, "created_at", created);
	for (unsigned int i = 0; i < GEO_C_MAX; i++)
		rte_tel_data_add_dict_u64(d, counter_names[i], c[i]);
	return 0;
}

/* ------------------------------------------------------------------ Prometheus */

static void
metrics_geo(void *arg, FILE *out)
{
	struct sky_geo *g;
	struct geo_info in;

	(void)arg;
	pthread_mutex_lock(&cur_lock);
	g = cur;
	if (g == NULL) {
		pthread_mutex_unlock(&cur_lock);
		return;
	}
	pthread_mutex_lock(&g->info_lock);
	in = g->info;
	pthread_mutex_unlock(&g->info_lock);
	fprintf(out,
		"# HELP skygate_geo_enabled 1 when a location database is loaded\n"
		"# TYPE skygate_geo_enabled gauge\nskygate_geo_enabled %d\n",
		in.enabled);
	fprintf(out,
		"# HELP skygate_geo_networks Networks of the loaded location database\n"
		"# TYPE skygate_geo_networks gauge\n"
		"skygate_geo_networks{family=\"ipv4\"} %u\n"
		"skygate_geo_networks{family=\"ipv6\"} %u\n",
		in.n4, in.n6);
	fprintf(out,
		"# HELP skygate_geo_memory_bytes DPDK memory of the geo FIBs\n"
		"# TYPE skygate_geo_memory_bytes gauge\nskygate_geo_memory_bytes %" PRIu64 "\n",
		in.mem_bytes);
	fprintf(out,
		"# HELP skygate_geo_load_seconds Time the last database load took\n"
		"# TYPE skygate_geo_load_seconds gauge\nskygate_geo_load_seconds %.3f\n",
		(double)in.load_us / 1e6);
	fprintf(out,
		"# HELP skygate_geo_database_created_seconds Creation time of the "
		"database (unix)\n# TYPE skygate_geo_database_created_seconds gauge\n"
		"skygate_geo_database_created_seconds %" PRId64 "\n",
		in.created_at);
	fprintf(out,
		"# HELP skygate_geo_reloads_total Successful geo reloads\n"
		"# TYPE skygate_geo_reloads_total counter\nskygate_geo_reloads_total %" PRIu64
		"\n# HELP skygate_geo_reload_failures_total Refused geo reloads\n"
		"# TYPE skygate_geo_reload_failures_total counter\n"
		"skygate_geo_reload_failures_total %" PRIu64 "\n"
		"# HELP skygate_geo_auto_reloads_total Reloads after the database file changed\n"
		"# TYPE skygate_geo_auto_reloads_total counter\n"
		"skygate_geo_auto_reloads_total %" PRIu64 "\n",
		g->reloads, g->reload_failures, g->auto_reloads);
	/* per worker (sum with PromQL); workers that never counted are left out */
	for (unsigned int i = 0; i < GEO_C_MAX; i++) {
		fprintf(out,
			"# HELP skygate_geo_%s_total %s\n# TYPE skygate_geo_%s_total counter\n",
			counter_names[i], counter_help[i], counter_names[i]);
		for (unsigned int w = 0; w < SKY_MAX_WORKERS; w++) {
			uint64_t v = __atomic_load_n(&g->w[w].c[i], __ATOMIC_RELAXED);

			if (v != 0 || w < sky_rt.n_workers)
				fprintf(out, "skygate_geo_%s_total{worker=\"%u\"} %" PRIu64 "\n",
					counter_names[i], w, v);
		}
	}
	pthread_mutex_unlock(&cur_lock);
}

/* ------------------------------------------------------------------ file watch */

static void
periodic_watch(void *arg, uint64_t now_tsc)
{
	(void)arg;
	(void)now_tsc;
	/* same thread as destroy (main lcore): cur cannot go away during the call */
	if (cur != NULL)
		geo_watch(cur);
}

/* ------------------------------------------------------------------ registration */

/* sky_geo.unregister: sky_geo_destroy() runs it before freeing g. */
static void
forget(struct sky_geo *g)
{
	pthread_mutex_lock(&cur_lock);
	if (cur == g)
		cur = NULL;
	pthread_mutex_unlock(&cur_lock);
}

int
sky_geo_register(struct sky_geo *g)
{
	int rc;

	if (g == NULL)
		return -EINVAL;
	rc = sky_ctl_register("geo lookup", "ADDR",
			      "country, flags and database network of an IPv4/IPv6 address", 0,
			      cmd_lookup, g);
	if (rc == 0)
		rc = sky_ctl_register("geo reload", "[PATH]",
				      "load the location database again (or from PATH) and swap "
				      "it in; a bad file is refused, the running one stays",
				      SKY_CTL_F_JOURNAL, cmd_reload, g);
	if (rc == 0)
		rc = sky_ctl_register("geo show", "",
				      "location database: path, networks, load time, memory, "
				      "vendor, creation date, counters",
				      0, cmd_show, g);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&cur_lock);
	cur = g;
	pthread_mutex_unlock(&cur_lock);
	g->unregister = forget; /* from here on, destroy must clear cur */
	if (g->check_interval_us != 0) {
		rc = sky_periodic_register("geo-watch", g->check_interval_us, periodic_watch, NULL);
		if (rc != 0)
			return rc;
	}
	rc = sky_metrics_register("geo", metrics_geo, NULL);
	if (rc != 0 && rc != -EEXIST)
		return rc;
	if (!tel_done) {
		rc = rte_telemetry_register_cmd("/skygate/geo", tel_geo,
						"skygate geo: database, networks, memory, lookup "
						"counters. No parameters");
		if (rc != 0)
			return rc;
		tel_done = 1;
	}
	return 0;
}
