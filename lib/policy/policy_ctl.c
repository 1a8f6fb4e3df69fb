/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy control commands, telemetry and Prometheus metrics (control path only).
 *
 *   policy load FILE.bpf.o   check + JIT off the data path, swap; journaled as the copy
 *                            in the state directory
 *   policy show | unload
 *   map list | show NAME | update NAME KEY VALUE | delete NAME KEY
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_telemetry.h>

#include "skygate/control.h"
#include "skygate/file.h"
#include "skygate/policy.h"
#include "skygate/runtime.h"

#include "policy_impl.h"

#define SHOW_MAX_ENTRIES 10000

/* the registered instance (telemetry, metrics), under policy_prog_lock */
static struct sky_policy *tel_policy;

static void
cc_str(uint16_t cc, char out[3])
{
	if (cc == 0) {
		snprintf(out, 3, "--");
		return;
	}
	out[0] = (char)(cc >> 8);
	out[1] = (char)(cc & 0xff);
	out[2] = '\0';
}

/* readable parts of a blocked-table key (struct blk_ent) */
struct blk_names {
	char sub[3], remote[3];
	const char *dir;
};

static void
blk_names(uint64_t key, struct blk_names *nm)
{
	cc_str((uint16_t)(key >> 17), nm->sub);
	cc_str((uint16_t)(key >> 1), nm->remote);
	nm->dir = (key & 1) ? "down" : "up";
}

static double
ns_per_packet(const struct sky_policy_stats *st)
{
	if (st->timed_runs == 0 || sky_rt.tsc_hz == 0)
		return 0;
	return (double)st->cycles * 1e9 / (double)sky_rt.tsc_hz / (double)st->timed_runs;
}

/* ------------------------------------------------------------------ JSON */

static json_t *
show_json(struct sky_policy *p)
{
	const struct sky_prog *prog = p->prog;
	struct sky_policy_stats st;
	json_t *o = json_object(), *maps;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "loaded", json_boolean(prog != NULL));
	json_object_set_new(o, "on_fault", json_string(p->on_fault_drop ? "drop" : "pass"));
	if (prog == NULL)
		return o;
	sky_policy_stats(p, &st);
	json_object_set_new(o, "file", json_string(prog->path));
	json_object_set_new(o, "program", json_string(prog->name));
	json_object_set_new(o, "abi", json_integer(prog->abi));
	json_object_set_new(o, "sha256", json_string(prog->sha256));
	json_object_set_new(o, "loaded_at", json_integer((json_int_t)prog->loaded_at));
	json_object_set_new(o, "load_us", json_real((double)prog->load_ns / 1000.0));
	json_object_set_new(o, "read_us", json_real((double)prog->read_ns / 1000.0));
	json_object_set_new(o, "check_us", json_real((double)prog->check_ns / 1000.0));
	json_object_set_new(o, "rte_bpf_load_us", json_real((double)prog->jit_ns / 1000.0));
	json_object_set_new(o, "instructions", json_integer(prog->n_ins));
	json_object_set_new(o, "jit", json_boolean(prog->jit != NULL));
	json_object_set_new(o, "inlined_lookups", json_integer(prog->n_inlined));
	json_object_set_new(o, "runs", json_integer((json_int_t)st.runs));
	json_object_set_new(o, "pass", json_integer((json_int_t)st.pass));
	json_object_set_new(o, "drop", json_integer((json_int_t)st.drop));
	json_object_set_new(o, "pass_class", json_integer((json_int_t)st.pass_class));
	json_object_set_new(o, "pass_dscp", json_integer((json_int_t)st.pass_dscp));
	json_object_set_new(o, "faults", json_integer((json_int_t)st.faults));
	json_object_set_new(o, "ns_per_packet", json_real(ns_per_packet(&st)));
	maps = json_array();
	for (uint32_t i = 0; i < prog->n_maps; i++)
		json_array_append_new(maps, json_string(prog->maps[i]->spec.name));
	json_object_set_new(o, "maps", maps);
	return o;
}

static json_t *
map_info_json(const struct sky_pmap *m)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(m->spec.name));
	json_object_set_new(o, "type", json_string(pmap_type_name(m->spec.type)));
	json_object_set_new(o, "key_size", json_integer(m->key_size));
	json_object_set_new(o, "value_size", json_integer(m->value_size));
	json_object_set_new(o, "max_entries", json_integer(m->max_entries));
	if (m->kind != PMAP_ARRAY)
		json_object_set_new(o, "entries", json_integer(m->n_entries));
	return o;
}

struct show_ctx {
	const struct sky_policy *p;
	const struct sky_pmap *m;
	json_t *arr;
	unsigned int n;
	bool truncated;
};

static int
show_one(void *arg, const void *key, const void *value)
{
	struct show_ctx *s = arg;
	char k[160], v[600];
	json_t *e;

	if (s->m->kind == PMAP_ARRAY) {
		/* an array shows its non-zero elements */
		const uint8_t *b = value;
		bool zero = true;

		for (uint32_t i = 0; i < s->m->value_size; i++)
			zero &= b[i] == 0;
		if (zero)
			return 0;
	}
	if (s->n == SHOW_MAX_ENTRIES) {
		s->truncated = true;
		return 1;
	}
	pmap_format(s->m, true, key, k, sizeof(k));
	policy_value_out(s->p, s->m, value, v, sizeof(v));
	e = json_object();
	json_object_set_new(e, "key", json_string(k));
	json_object_set_new(e, "value", json_string(v));
	json_array_append_new(s->arr, e);
	s->n++;
	return 0;
}

/* ------------------------------------------------------------------ commands */

/* the object's bytes to dst, atomically (tmp, fsync, rename) */
static int
write_copy(const void *buf, size_t len, const char *dst, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	size_t done = 0;
	int out;

	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		snprintf(err, errlen, "%.400s: %s", tmp, strerror(errno));
		return -errno;
	}
	while (done < len) {
		ssize_t w = write(out, (const char *)buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (done != len || fsync(out) != 0 || close(out) != 0 || rename(tmp, dst) != 0) {
		snprintf(err, errlen, "copy to %.400s: %s", dst, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

static int
cmd_load(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	struct sky_policy *p = arg;
	const char *sd = sky_ctl_state_dir();
	const char *use = argc == 1 ? argv[0] : NULL;
	char dst[PATH_MAX], err[1024], hex[65];
	bool made = false;
	void *buf;
	size_t len;
	int rc;

	if (argc != 1)
		return sky_ctl_fail(call, "usage: policy load FILE.bpf.o");
	/* read once, whole: the bytes checked, hashed, kept and loaded are the same */
	if (sky_file_read(argv[0], SKY_POLICY_MAX_FILE, 0, &buf, &len, err, sizeof(err)) != 0)
		return sky_ctl_fail(call, "%s (the running program is unchanged)", err);
	if (sd != NULL && !call->replay) {
		/* keep the object in the state directory so a restart replays the same code */
		sky_sha256_hex(buf, len, hex);
		snprintf(dst, sizeof(dst), "%s/policy-%.16s.bpf.o", sd, hex);
		made = access(dst, F_OK) != 0;
		if (write_copy(buf, len, dst, err, sizeof(err)) != 0) {
			free(buf);
			return sky_ctl_fail(call, "%s", err);
		}
		use = dst;
	}
	if (use != argv[0]) {
		const char *j[] = {"policy", "load", use};

		sky_ctl_journal_as(call, 3, j);
	}
	/* write-ahead: the same bytes checked (a dry run), journaled, then loaded */
	rc = call->replay
		     ? 0
		     : policy_load_bytes(p, buf, len, use, argv[0], true, NULL, err, sizeof(err));
	if (rc == 0 && sky_ctl_commit(call) != 0)
		rc = -1;
	if (rc == 0)
		rc = policy_load_bytes(p, buf, len, use, argv[0], false, NULL, err, sizeof(err));
	free(buf);
	if (rc != 0) {
		if (made)
			unlink(dst);
		if (call->err[0] != '\0')
			return -1;
		return sky_ctl_fail(call, "%s: %s (the running program is unchanged)", argv[0],
				    err);
	}
	sky_audit(call->uid, "policy load %s (%s) sha256=%s jit=%s", use, p->prog->name,
		  p->prog->sha256, p->prog->jit != NULL ? "yes" : "no");
	*res = show_json(p);
	return 0;
}

static int
cmd_check(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	struct sky_prog_info info;
	char err[1024];
	json_t *o;

	if (argc != 1)
		return sky_ctl_fail(call, "usage: policy check FILE.bpf.o");
	if (policy_check_file(arg, argv[0], &info, err, sizeof(err)) != 0)
		return sky_ctl_fail(call, "%s: %s", argv[0], err);
	o = json_object();
	json_object_set_new(o, "file", json_string(argv[0]));
	json_object_set_new(o, "program", json_string(info.name));
	json_object_set_new(o, "abi", json_integer(info.abi));
	json_object_set_new(o, "sha256", json_string(info.sha256));
	json_object_set_new(o, "instructions", json_integer(info.n_ins));
	json_object_set_new(o, "maps", json_integer(info.n_maps));
	json_object_set_new(o, "jit", json_boolean(info.jit));
	json_object_set_new(o, "load_us", json_real((double)info.load_ns / 1000.0));
	json_object_set_new(o, "validator_visits", json_integer((json_int_t)info.visits));
	*res = o;
	return 0;
}

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	if (argc != 0)
		return sky_ctl_fail(call, "usage: policy show");
	*res = show_json(arg);
	return 0;
}

static int
cmd_unload(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	struct sky_policy *p = arg;

	if (argc != 0)
		return sky_ctl_fail(call, "usage: policy unload");
	if (p->prog == NULL)
		return sky_ctl_fail(call, "no program is loaded");
	if (sky_ctl_commit(call) != 0)
		return -1;
	sky_audit(call->uid, "policy unload %s", p->prog->path);
	sky_policy_unload(p);
	*res = show_json(p);
	return 0;
}

static int
cmd_map_list(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	struct sky_policy *p = arg;
	json_t *a;

	if (argc != 0)
		return sky_ctl_fail(call, "usage: map list");
	a = json_array();
	for (uint32_t i = 0; i < p->n_maps; i++)
		json_array_append_new(a, map_info_json(p->maps[i]));
	*res = a;
	return 0;
}

static int
cmd_map_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	struct sky_policy *p = arg;
	struct sky_pmap *m;
	struct show_ctx s;
	json_t *o;

	if (argc != 1)
		return sky_ctl_fail(call, "usage: map show NAME");
	m = policy_map_find(p, argv[0]);
	if (m == NULL)
		return sky_ctl_fail(call, "no map named '%s'", argv[0]);
	o = map_info_json(m);
	s.p = p;
	s.m = m;
	s.arr = json_array();
	s.n = 0;
	s.truncated = false;
	pmap_foreach(m, show_one, &s);
	json_object_set_new(o, "items", s.arr);
	if (s.truncated)
		json_object_set_new(o, "truncated", json_true());
	*res = o;
	return 0;
}

/* What map update and map delete check before they change anything: want words, the map
 * exists, the journal commit (write-ahead); 0 to go on, -1 (the call failed) */
static int
map_change_begin(struct sky_policy *p, int argc, char **argv, int want, const char *usage,
		 struct sky_ctl_call *call)
{
	if (argc != want)
		return sky_ctl_fail(call, "usage: %s", usage);
	if (policy_map_find(p, argv[0]) == NULL)
		return sky_ctl_fail(call, "no map named '%s'", argv[0]);
	if (sky_ctl_commit(call) != 0)
		return -1;
	return 0;
}

static int
cmd_map_update(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	char err[512];

	if (map_change_begin(arg, argc, argv, 3, "map update NAME KEY VALUE", call) != 0)
		return -1;
	if (sky_policy_map_update(arg, argv[0], argv[1], argv[2], err, sizeof(err)) != 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "map update %s %s %s", argv[0], argv[1], argv[2]);
	return 0;
}

static int
cmd_map_delete(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **res)
{
	char err[512];

	if (map_change_begin(arg, argc, argv, 2, "map delete NAME KEY", call) != 0)
		return -1;
	if (sky_policy_map_delete(arg, argv[0], argv[1], err, sizeof(err)) != 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "map delete %s %s", argv[0], argv[1]);
	return 0;
}

/* policy blocked: what the policy dropped, per (terminal country, remote country,
 * direction), most packets first; the audit view of a country block */
static int
cmp_blk(const void *a, const void *b)
{
	const struct blk_ent *x = a, *y = b;

	return x->pkts < y->pkts ? 1 : x->pkts > y->pkts ? -1 : 0;
}

static int
cmd_blocked(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_policy *p = arg;
	struct blk_ent *e;
	unsigned int n = 0;
	json_t *a;

	if (argc != 0)
		return sky_ctl_fail(call, "usage: policy blocked");
	e = malloc(sizeof(*e) * BLK_SIZE);
	if (e == NULL)
		return sky_ctl_fail(call, "out of memory");
	policy_blk_sum(p, e, &n, BLK_SIZE);
	qsort(e, n, sizeof(*e), cmp_blk);
	a = json_array();
	for (unsigned int i = 0; i < n; i++) {
		struct blk_names nm;

		blk_names(e[i].key, &nm);
		json_array_append_new(
			a, json_pack("{s:s, s:s, s:s, s:I, s:I}", "subscriber_country", nm.sub,
				     "remote_country", nm.remote, "direction", nm.dir, "packets",
				     (json_int_t)e[i].pkts, "bytes", (json_int_t)e[i].bytes));
	}
	free(e);
	*result = json_pack("{s:o}", "blocked", a);
	return 0;
}

/* ------------------------------------------------------------------ telemetry */

static int
tel_policy_cb(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sky_policy *p;
	struct sky_policy_stats st;

	pthread_mutex_lock(&policy_prog_lock);
	p = tel_policy;
	rte_tel_data_start_dict(d);
	if (p == NULL || p->prog == NULL) {
		rte_tel_data_add_dict_int(d, "loaded", 0);
		pthread_mutex_unlock(&policy_prog_lock);
		return 0;
	}
	sky_policy_stats(p, &st);
	rte_tel_data_add_dict_int(d, "loaded", 1);
	rte_tel_data_add_dict_string(d, "file", p->prog->path);
	rte_tel_data_add_dict_string(d, "sha256", p->prog->sha256);
	rte_tel_data_add_dict_int(d, "jit", p->prog->jit != NULL);
	rte_tel_data_add_dict_u64(d, "runs", st.runs);
	rte_tel_data_add_dict_u64(d, "pass", st.pass);
	rte_tel_data_add_dict_u64(d, "drop", st.drop);
	rte_tel_data_add_dict_u64(d, "pass_class", st.pass_class);
	rte_tel_data_add_dict_u64(d, "pass_dscp", st.pass_dscp);
	rte_tel_data_add_dict_u64(d, "faults", st.faults);
	rte_tel_data_add_dict_u64(d, "ns_per_packet_x1000",
				  (uint64_t)(ns_per_packet(&st) * 1000.0));
	pthread_mutex_unlock(&policy_prog_lock);
	return 0;
}

static int
tel_blocked_cb(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sky_policy *p;
	struct blk_ent e[BLK_SIZE];
	unsigned int n = 0;

	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&policy_prog_lock);
	p = tel_policy;
	if (p != NULL)
		policy_blk_sum(p, e, &n, BLK_SIZE);
	pthread_mutex_unlock(&policy_prog_lock);
	for (unsigned int i = 0; i < n; i++) {
		struct blk_names nm;
		char name[32];

		blk_names(e[i].key, &nm);
		snprintf(name, sizeof(name), "%s_%s_%s", nm.sub, nm.remote, nm.dir);
		rte_tel_data_add_dict_u64(d, name, e[i].pkts);
	}
	return 0;
}

/* ------------------------------------------------------------------ Prometheus */

/* skygate_policy_blocked_<what>_total{sub_country,remote_country,direction} */
static void
blk_metric(FILE *out, const char *what, const char *What, const struct blk_ent *e, unsigned int n)
{
	bool bytes = strcmp(what, "bytes") == 0;

	fprintf(out,
		"# HELP skygate_policy_blocked_%s_total %s dropped by the policy, by subscriber "
		"country, remote country and direction.\n"
		"# TYPE skygate_policy_blocked_%s_total counter\n",
		what, What, what);
	for (unsigned int i = 0; i < n; i++) {
		struct blk_names nm;

		blk_names(e[i].key, &nm);
		fprintf(out,
			"skygate_policy_blocked_%s_total{sub_country=\"%s\",remote_country=\"%s\","
			"direction=\"%s\"} %" PRIu64 "\n",
			what, nm.sub, nm.remote, nm.dir, bytes ? e[i].bytes : e[i].pkts);
	}
}

static void
metrics(void *arg, FILE *out)
{
	struct sky_policy *p = tel_policy;
	struct sky_policy_stats st;
	struct blk_ent e[BLK_SIZE];
	unsigned int n = 0;

	if (p == NULL)
		return;
	policy_stats_total(p, &st);
	fprintf(out,
		"# HELP skygate_policy_loaded Whether a policy program is loaded.\n"
		"# TYPE skygate_policy_loaded gauge\n"
		"skygate_policy_loaded %d\n",
		p->prog != NULL);
	fprintf(out,
		"# HELP skygate_policy_runs_total Packets judged by the policy program.\n"
		"# TYPE skygate_policy_runs_total counter\n"
		"skygate_policy_runs_total %" PRIu64 "\n",
		st.runs);
	fprintf(out, "# HELP skygate_policy_verdicts_total Policy verdicts by kind.\n"
		     "# TYPE skygate_policy_verdicts_total counter\n");
	fprintf(out, "skygate_policy_verdicts_total{verdict=\"pass\"} %" PRIu64 "\n", st.pass);
	fprintf(out, "skygate_policy_verdicts_total{verdict=\"drop\"} %" PRIu64 "\n", st.drop);
	fprintf(out, "skygate_policy_verdicts_total{verdict=\"pass_class\"} %" PRIu64 "\n",
		st.pass_class);
	fprintf(out, "skygate_policy_verdicts_total{verdict=\"pass_dscp\"} %" PRIu64 "\n",
		st.pass_dscp);
	fprintf(out,
		"# HELP skygate_policy_faults_total Runs that returned no valid verdict.\n"
		"# TYPE skygate_policy_faults_total counter\n"
		"skygate_policy_faults_total %" PRIu64 "\n",
		st.faults);
	fprintf(out,
		"# HELP skygate_policy_timed_cycles_total TSC cycles of the timed policy "
		"bursts (one in %u).\n"
		"# TYPE skygate_policy_timed_cycles_total counter\n"
		"skygate_policy_timed_cycles_total %" PRIu64 "\n",
		SKY_POLICY_TIMED_EVERY, st.cycles);
	fprintf(out,
		"# HELP skygate_policy_timed_runs_total Packets judged in the timed bursts.\n"
		"# TYPE skygate_policy_timed_runs_total counter\n"
		"skygate_policy_timed_runs_total %" PRIu64 "\n",
		st.timed_runs);
	policy_blk_sum(p, e, &n, BLK_SIZE);
	blk_metric(out, "packets", "Packets", e, n);
	blk_metric(out, "bytes", "Bytes", e, n);
}

/* ------------------------------------------------------------------ registration */

static const struct {
	const char *cmd, *usage, *help;
	unsigned int flags;
	sky_ctl_fn fn;
} cmds[] = {
	{"policy load", "FILE.bpf.o",
	 "check, JIT and swap in a policy program (the running one stays if refused)",
	 SKY_CTL_F_JOURNAL, cmd_load},
	{"policy check", "FILE.bpf.o",
	 "check and JIT-compile a program without loading it (the running one is untouched)", 0,
	 cmd_check},
	{"policy show", "", "the loaded program: file, sha256, JIT, counters, ns/packet", 0,
	 cmd_show},
	{"policy blocked", "",
	 "packets and bytes the policy dropped, per terminal country, remote country and direction",
	 0, cmd_blocked},
	{"policy unload", "", "remove the program (every packet passes; maps keep entries)",
	 SKY_CTL_F_JOURNAL, cmd_unload},
	{"map list", "", "maps of the policy program", 0, cmd_map_list},
	{"map show", "NAME", "entries of a map (readable keys and values)", 0, cmd_map_show},
	{"map update", "NAME KEY VALUE",
	 "add or change an entry (KEY: DE, RU:KP, 10.0.0.0/8, 2001:db8::/32, number, hex; "
	 "VALUE: number, pass, drop, class:NAME, dscp:N, hex)",
	 SKY_CTL_F_JOURNAL, cmd_map_update},
	{"map delete", "NAME KEY", "remove an entry", SKY_CTL_F_JOURNAL, cmd_map_delete},
};

/* p goes away (sky_policy_destroy calls this through p->on_destroy) */
static void
forget(struct sky_policy *p)
{
	pthread_mutex_lock(&policy_prog_lock);
	if (tel_policy == p)
		tel_policy = NULL;
	pthread_mutex_unlock(&policy_prog_lock);
}

int
sky_policy_register(struct sky_policy *p)
{
	static bool tel_done;
	int rc;

	for (size_t i = 0; i < RTE_DIM(cmds); i++) {
		rc = sky_ctl_register(cmds[i].cmd, cmds[i].usage, cmds[i].help, cmds[i].flags,
				      cmds[i].fn, p);
		if (rc != 0)
			return rc;
	}
	pthread_mutex_lock(&policy_prog_lock);
	tel_policy = p;
	p->on_destroy = forget;
	pthread_mutex_unlock(&policy_prog_lock);
	/* telemetry endpoints and metric writers cannot be removed: registered once per
	 * process, they report the registered instance (none after its destroy) */
	if (!tel_done) {
		rte_telemetry_register_cmd("/skygate/policy", tel_policy_cb,
					   "Policy program and verdict counters");
		rte_telemetry_register_cmd("/skygate/policy/blocked", tel_blocked_cb,
					   "Packets blocked by the policy per country pair");
		rc = sky_metrics_register("policy", metrics, NULL);
		if (rc != 0 && rc != -EEXIST)
			return rc;
		tel_done = true;
	}
	return 0;
}
