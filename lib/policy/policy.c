/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The policy hook's owner (control path): program load and swap, map entries in readable
 * form, the counters summed over workers, create and destroy. The per-burst run is in
 * policy_dp.c, the config section in policy_cfg.c, commands in policy_ctl.c (which call
 * here, never the other way).
 *
 * Swap: a new object is read, checked, bound to maps (same name and spec: the running
 * map with its entries; otherwise a new one), loaded and JIT-compiled by librte_bpf off
 * the data path, published with one pointer store; after sky_rcu_sync() the old program
 * is destroyed and the maps only it used are freed. A refused object changes nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_bpf.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_malloc.h>

#include "skygate/config.h"
#include "skygate/file.h"
#include "skygate/policy.h"
#include "skygate/runtime.h"
#ifdef SKY_POLICY_HAVE_SUBS
#include "skygate/subscriber.h"
#endif

#include "policy_impl.h"

/* ================================================================== stats */

void
policy_stats_total(const struct sky_policy *p, struct sky_policy_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned int w = 0; w < SKY_MAX_WORKERS; w++) {
		const struct policy_wstats *ws = &p->ws[w];

		st->runs += ws->runs;
		st->pass += ws->v[SKY_POLICY_V_PASS];
		st->drop += ws->v[SKY_POLICY_V_DROP];
		st->pass_class += ws->v[SKY_POLICY_V_PASS_CLASS];
		st->pass_dscp += ws->v[SKY_POLICY_V_PASS_DSCP];
		st->faults += ws->v[PV_FAULT];
		st->cycles += ws->cycles;
		st->timed_runs += ws->timed_runs;
	}
}

void
sky_policy_stats(const struct sky_policy *p, struct sky_policy_stats *st)
{
	policy_stats_total(p, st);
	st->runs -= p->base.runs;
	st->pass -= p->base.pass;
	st->drop -= p->base.drop;
	st->pass_class -= p->base.pass_class;
	st->pass_dscp -= p->base.pass_dscp;
	st->faults -= p->base.faults;
	st->cycles -= p->base.cycles;
	st->timed_runs -= p->base.timed_runs;
}

void
policy_blk_sum(const struct sky_policy *p, struct blk_ent *out, unsigned int *n, unsigned int max)
{
	*n = 0;
	for (unsigned int w = 0; w < SKY_MAX_WORKERS; w++) {
		for (unsigned int i = 0; i < BLK_SIZE; i++) {
			const struct blk_ent *e = &p->ws[w].blk[i];
			uint64_t key = __atomic_load_n(&e->key, __ATOMIC_RELAXED);
			unsigned int j;

			if (key == 0)
				continue;
			for (j = 0; j < *n && out[j].key != key; j++)
				;
			if (j == *n) {
				if (*n == max)
					continue;
				out[j].key = key;
				out[j].pkts = 0;
				out[j].bytes = 0;
				(*n)++;
			}
			out[j].pkts += e->pkts;
			out[j].bytes += e->bytes;
		}
	}
}

/* ================================================================== load / swap */

static void
prog_destroy(struct sky_prog *prog)
{
	if (prog == NULL)
		return;
	rte_bpf_destroy(prog->bpf);
	free(prog->xsym);
	free(prog);
}

/* rte_bpf_load with librte_bpf's log captured: its validator says why and where */
static struct rte_bpf *
bpf_load_logged(const struct rte_bpf_prm *prm, char *why, size_t len)
{
	FILE *old = rte_log_get_stream(), *ms;
	char *buf = NULL, *line, *save = NULL;
	size_t sz = 0;
	struct rte_bpf *b;

	why[0] = '\0';
	ms = open_memstream(&buf, &sz);
	if (ms == NULL)
		return rte_bpf_load(prm);
	rte_openlog_stream(ms);
	b = rte_bpf_load(prm);
	rte_openlog_stream(old);
	fclose(ms);
	/* the last line is the validator's verdict */
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		if (line[0] != '\0')
			snprintf(why, len, "%s", line);
	free(buf);
	return b;
}

static uint64_t
unreachable_helper(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	return 0; /* never called: the checker proved no path reaches the call */
}

/* the program's maps: a running map of the same name and spec (with its entries), else a
 * new one (created[i]); nm[i] for o->maps[i] */
static int
bind_maps(const struct sky_policy *p, const struct pobj *o, struct sky_prog *prog,
	  struct sky_pmap **nm, bool *created, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < o->n_maps; i++) {
		for (uint32_t j = 0; j < p->n_maps; j++)
			if (pmap_spec_equal(&p->maps[j]->spec, &o->maps[i]))
				nm[i] = p->maps[j];
		if (nm[i] == NULL) {
			nm[i] = pmap_create(&o->maps[i], err, errlen);
			if (nm[i] == NULL)
				return -EINVAL;
			created[i] = true;
		}
		prog->maps[i] = nm[i];
	}
	prog->n_maps = o->n_maps;
	return 0;
}

/* append a helper (handle, arg) -> pointer of ret_size to prog->xsym; its index */
static int
add_helper(struct sky_prog *prog, const char *name, pmap_helper_fn fn, enum rte_bpf_arg_type arg,
	   size_t arg_size, size_t ret_size)
{
	struct rte_bpf_xsym *x = &prog->xsym[prog->n_xsym];

	x->name = name;
	x->type = RTE_BPF_XTYPE_FUNC;
	x->func.val = fn;
	x->func.nb_args = 2;
	x->func.args[0].type = RTE_BPF_ARG_RAW;
	x->func.args[0].size = sizeof(uint64_t);
	x->func.args[1].type = arg;
	x->func.args[1].size = arg_size;
	x->func.ret.type = RTE_BPF_ARG_PTR;
	x->func.ret.size = ret_size;
	return (int)prog->n_xsym++;
}

/* bind the code: map symbols -> handles, calls -> one helper entry per map */
static int
bind_code(struct pobj *o, struct sky_prog *prog, struct sky_pmap *const *nm, char *err,
	  size_t errlen)
{
	int xidx[SKY_POLICY_MAX_MAPS], unreach = -1;

	/* a helper and an inlined block per map, and the unreachable stub */
	prog->xsym = calloc(2 * o->n_maps + 2, sizeof(*prog->xsym));
	if (prog->xsym == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < SKY_POLICY_MAX_MAPS; i++)
		xidx[i] = -1;
	for (uint32_t pc = 0; pc < o->n_ins; pc++) {
		struct ebpf_insn *ins = &o->ins[pc];

		if (o->ld_map[pc] >= 0) {
			uint64_t h = nm[o->ld_map[pc]]->handle;

			ins[0].src_reg = 0;
			ins[0].imm = (int32_t)(uint32_t)h;
			ins[1].imm = (int32_t)(uint32_t)(h >> 32);
		} else if (o->call_helper[pc] >= 0 && o->call_map[pc] < 0) {
			/* a call the checker proved unreachable: bound to a stub for librte_bpf's
			 * validator, which walks every path */
			if (unreach < 0)
				unreach = add_helper(prog, "unreachable", unreachable_helper,
						     RTE_BPF_ARG_RAW, sizeof(uint64_t),
						     SKY_MAP_MAX_VALUE);
			ins->src_reg = 0;
			ins->imm = unreach;
		} else if (o->call_helper[pc] >= 0) {
			int mi = o->call_map[pc];
			const struct sky_pmap *m = nm[mi];

			if (xidx[mi] < 0)
				xidx[mi] = add_helper(prog, m->spec.name, pmap_helper_for(m),
						      RTE_BPF_ARG_PTR, m->key_size, m->value_size);
			ins->src_reg = 0;
			ins->imm = xidx[mi];
		}
	}
	return 0;
}

/* bind a checked object (consumed), rte_bpf_load and JIT; then swap in, or (dry_run)
 * throw away. path: the file (NULL: code built in memory, tests) */
static int
load_obj(struct sky_policy *p, struct pobj *op, const char *path, const char *sha256, uint64_t t0,
	 bool dry_run, struct sky_prog_info *info, char *err, size_t errlen)
{
	struct pobj o = *op;
	uint64_t t1;
	struct sky_prog *prog, *old;
	struct sky_pmap *nm[SKY_POLICY_MAX_MAPS] = {NULL};
	bool created[SKY_POLICY_MAX_MAPS] = {false};
	char why[256];
	struct rte_bpf_prm prm;
	struct rte_bpf_jit jit = {0};
	int rc;

	prog = calloc(1, sizeof(*prog));
	if (prog == NULL) {
		pobj_free(&o);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (sha256 != NULL)
		snprintf(prog->sha256, sizeof(prog->sha256), "%s", sha256);
	snprintf(prog->path, sizeof(prog->path), "%s", path != NULL ? path : "(memory)");
	snprintf(prog->name, sizeof(prog->name), "%s", o.prog_name);
	prog->n_ins = o.n_ins;
	prog->abi = o.abi != 0 ? o.abi : SKY_POLICY_ABI_VERSION;
	prog->ctx_groups = policy_ctx_groups(o.ctx_read);

	rc = bind_maps(p, &o, prog, nm, created, err, errlen);
	if (rc == 0)
		rc = bind_code(&o, prog, nm, err, errlen);
	if (rc != 0)
		goto unwind;
	memset(&prm, 0, sizeof(prm));
	prm.ins = o.ins;
	prm.nb_ins = o.n_ins;
	prm.xsym = prog->xsym;
	prm.nb_xsym = prog->n_xsym;
	prm.prog_arg.type = RTE_BPF_ARG_PTR;
	prm.prog_arg.size = sizeof(struct sky_policy_ctx);
	t1 = policy_now_ns();
	/* lookups inlined (for the JIT: the interpreter is faster calling the helper); if
	 * librte_bpf's validator says no, without (the JIT bug fixes stay) */
	for (int inl = p->jit ? 1 : 0; inl >= 0 && prog->bpf == NULL; inl--) {
		struct ebpf_insn *rw = NULL;
		uint32_t n_rw = 0, n_xsym = prog->n_xsym, n_inl = 0;
		int k = policy_rewrite(&o, nm, inl, prog->xsym, &prog->n_xsym, &rw, &n_rw, &n_inl,
				       err, errlen);

		if (k < 0) {
			rc = k;
			goto unwind;
		}
		prm.ins = k > 0 ? rw : o.ins;
		prm.nb_ins = k > 0 ? n_rw : o.n_ins;
		prm.nb_xsym = prog->n_xsym;
		/* the budget again, on the code librte_bpf walks: inlined lookups add a
		 * branch each; over it, without them; over it still, refused */
		uint32_t at;

		if (pobj_path_visits(prm.ins, prm.nb_ins, SKY_POLICY_MAX_VISITS, &at) >
		    SKY_POLICY_MAX_VISITS) {
			prog->n_xsym = n_xsym;
			free(rw);
			if (inl > 0)
				continue;
			rc = pobj_refuse_budget(err, errlen, at, "the bound program");
			goto unwind;
		}
		prog->bpf = bpf_load_logged(&prm, why, sizeof(why));
		if (prog->bpf != NULL)
			prog->n_inlined = n_inl;
		else
			prog->n_xsym = n_xsym;
		free(rw);
	}
	if (prog->bpf == NULL) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: librte_bpf refused the program: %s",
			 path != NULL ? path : "(memory)", why[0] ? why : rte_strerror(rte_errno));
		goto unwind;
	}
	if (p->jit && rte_bpf_get_jit(prog->bpf, &jit) == 0)
		prog->jit = jit.func;
	prog->jit_ns = policy_now_ns() - t1;
	prog->load_ns = policy_now_ns() - t0;
	prog->read_ns = o.read_ns;
	prog->check_ns = o.check_ns;
	prog->loaded_at = (uint64_t)time(NULL);
	pobj_free(&o);
	if (info != NULL) {
		info->n_ins = prog->n_ins;
		info->abi = prog->abi;
		info->n_maps = prog->n_maps;
		info->jit = prog->jit != NULL;
		info->load_ns = prog->load_ns;
		info->visits = o.visits;
		snprintf(info->sha256, sizeof(info->sha256), "%s", prog->sha256);
		snprintf(info->name, sizeof(info->name), "%s", prog->name);
	}
	if (dry_run) {
		rc = 0;
		goto unwind;
	}

	/* publish, wait for the workers, then reclaim */
	pthread_mutex_lock(&policy_prog_lock);
	old = p->prog;
	__atomic_store_n(&p->prog, prog, __ATOMIC_RELEASE);
	sky_rcu_sync();
	prog_destroy(old);
	pthread_mutex_unlock(&policy_prog_lock);
	for (uint32_t j = 0; j < p->n_maps; j++) {
		bool kept = false;

		for (uint32_t i = 0; i < prog->n_maps; i++)
			kept |= nm[i] == p->maps[j];
		if (!kept)
			pmap_free(p->maps[j]);
	}
	memcpy(p->maps, nm, sizeof(nm));
	p->n_maps = prog->n_maps;
	policy_stats_total(p, &p->base);
	return 0;
unwind: /* a failure, or the end of a dry run */
	for (uint32_t i = 0; i < o.n_maps; i++)
		if (created[i])
			pmap_free(nm[i]);
	if (prog->bpf != NULL)
		rte_bpf_destroy(prog->bpf);
	free(prog->xsym);
	free(prog);
	pobj_free(&o);
	return rc;
}

int
policy_load_bytes(struct sky_policy *p, void *buf, size_t len, const char *path, const char *origin,
		  bool dry_run, struct sky_prog_info *info, char *err, size_t errlen)
{
	uint64_t t0 = policy_now_ns();
	char sha[65];
	struct pobj o;
	int rc = pobj_load_mem(buf, len, origin != NULL ? origin : path, &o, err, errlen);

	if (rc != 0)
		return rc;
	sky_sha256_hex(buf, len, sha);
	return load_obj(p, &o, path, sha, t0, dry_run, info, err, errlen);
}

/* the file is read once, whole (regular file, bounded size and time): what is checked,
 * hashed and loaded are the same bytes, whatever happens to the file */
static int
load_file(struct sky_policy *p, const char *path, bool dry_run, struct sky_prog_info *info,
	  char *err, size_t errlen)
{
	void *buf;
	size_t len;
	int rc = sky_file_read(path, SKY_POLICY_MAX_FILE, 0, &buf, &len, err, errlen);

	if (rc != 0)
		return rc;
	rc = policy_load_bytes(p, buf, len, path, NULL, dry_run, info, err, errlen);
	free(buf);
	return rc;
}

int
sky_policy_load_file(struct sky_policy *p, const char *path, char *err, size_t errlen)
{
	return load_file(p, path, false, NULL, err, errlen);
}

int
policy_load_obj(struct sky_policy *p, struct pobj *o, char *err, size_t errlen)
{
	return load_obj(p, o, NULL, NULL, policy_now_ns(), false, NULL, err, errlen);
}

int
policy_check_file(struct sky_policy *p, const char *path, struct sky_prog_info *info, char *err,
		  size_t errlen)
{
	return load_file(p, path, true, info, err, errlen);
}

void
sky_policy_unload(struct sky_policy *p)
{
	struct sky_prog *old = p->prog;

	if (old == NULL)
		return;
	pthread_mutex_lock(&policy_prog_lock);
	__atomic_store_n(&p->prog, NULL, __ATOMIC_RELEASE);
	sky_rcu_sync();
	prog_destroy(old);
	pthread_mutex_unlock(&policy_prog_lock);
	/* the maps stay (with their entries) for the next program of the same spec */
}

const char *
policy_value_in(const struct sky_policy *p, const char *s, char *out, size_t len)
{
	uint64_t v;
	int cls = -1;

	if (strncmp(s, "dscp:", 5) == 0) {
		if (sky_parse_u64(s + 5, 0, 63, &v) != 0)
			return NULL;
		snprintf(out, len, "%" PRIu64, SKY_POLICY_PASS_DSCP(v));
		return out;
	}
	if (strncmp(s, "class:", 6) != 0)
		return s;
	if (sky_parse_u64(s + 6, 0, p->n_classes - 1, &v) == 0)
		cls = (int)v;
#ifdef SKY_POLICY_HAVE_SUBS
	else if (p->subs != NULL)
		cls = sky_subs_class_index(p->subs, s + 6);
#endif
	if (cls < 0 || cls >= p->n_classes)
		return NULL;
	snprintf(out, len, "%" PRIu64, SKY_POLICY_PASS_CLASS((unsigned int)cls));
	return out;
}

void
policy_value_out(const struct sky_policy *p, const struct sky_pmap *m, const void *value, char *out,
		 size_t len)
{
	uint32_t v, code, arg;

	if (m->spec.value_fmt != FMT_VERDICT) {
		pmap_format(m, false, value, out, len);
		return;
	}
	memcpy(&v, value, 4);
	code = SKY_POLICY_VERDICT_CODE(v);
	arg = SKY_POLICY_VERDICT_ARG(v);
	if (v == SKY_POLICY_PASS)
		snprintf(out, len, "pass");
	else if (v == SKY_POLICY_DROP)
		snprintf(out, len, "drop");
	else if ((v >> 16) == 0 && code == SKY_POLICY_V_PASS_DSCP && arg < 64)
		snprintf(out, len, "dscp:%u", arg);
	else if ((v >> 16) == 0 && code == SKY_POLICY_V_PASS_CLASS && arg < p->n_classes) {
#ifdef SKY_POLICY_HAVE_SUBS
		if (p->subs != NULL) {
			struct sky_class c = sky_subs_class(p->subs, arg);

			snprintf(out, len, "class:%s", c.name);
			return;
		}
#endif
		snprintf(out, len, "class:%u", arg);
	} else {
		snprintf(out, len, "%u", v); /* no verdict: a fault if returned */
	}
}

struct sky_pmap *
policy_map_find(struct sky_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->n_maps; i++)
		if (strcmp(p->maps[i]->spec.name, name) == 0)
			return p->maps[i];
	return NULL;
}

int
sky_policy_map_update(struct sky_policy *p, const char *map, const char *key, const char *value,
		      char *err, size_t errlen)
{
	struct sky_pmap *m = policy_map_find(p, map);
	char buf[32];
	const char *v;

	if (m == NULL) {
		snprintf(err, errlen, "no map named '%s'", map);
		return -ENOENT;
	}
	v = policy_value_in(p, value, buf, sizeof(buf));
	if (v == NULL) {
		snprintf(err, errlen,
			 "map %s: bad value '%s': no such class or DSCP (class:NAME, "
			 "class:0..%u, dscp:0..63)",
			 map, value, p->n_classes - 1);
		return -EINVAL;
	}
	return pmap_update_str(m, key, v, err, errlen);
}

int
sky_policy_map_delete(struct sky_policy *p, const char *map, const char *key, char *err,
		      size_t errlen)
{
	struct sky_pmap *m = policy_map_find(p, map);

	if (m == NULL) {
		snprintf(err, errlen, "no map named '%s'", map);
		return -ENOENT;
	}
	return pmap_delete_str(m, key, err, errlen);
}

/* ================================================================== create / destroy */

pthread_mutex_t policy_prog_lock = PTHREAD_MUTEX_INITIALIZER;

int
policy_new(const struct sky_subs *subs, struct sky_policy **out)
{
	struct sky_policy *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (p == NULL)
		return -ENOMEM;
	p->ws = rte_zmalloc("sky_policy_ws", sizeof(struct policy_wstats) * SKY_MAX_WORKERS,
			    RTE_CACHE_LINE_SIZE);
	if (p->ws == NULL) {
		free(p);
		return -ENOSPC;
	}
	p->n_classes = SKY_MAX_CLASSES;
	p->subs = subs;
#ifdef SKY_POLICY_HAVE_SUBS
	if (subs != NULL && sky_subs_n_classes(subs) > 0)
		p->n_classes = (uint8_t)sky_subs_n_classes(subs);
#endif
	p->jit = true;
	*out = p;
	return 0;
}

void
sky_policy_destroy(struct sky_policy *p)
{
	if (p == NULL)
		return;
	if (p->on_destroy != NULL)
		p->on_destroy(p);
	sky_policy_unload(p);
	for (uint32_t i = 0; i < p->n_maps; i++)
		pmap_free(p->maps[i]);
	rte_free(p->ws);
	free(p);
}
