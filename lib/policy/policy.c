/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The policy hook: program load and swap (control path), the per-burst run (data path).
 *
 * Swap: a new object is read, checked, bound to maps (same name and spec: the running
 * map with its entries; otherwise a new one), loaded and JIT-compiled by librte_bpf off
 * the data path, published with one pointer store; after sky_rcu_sync() the old program
 * is destroyed and the maps only it used are freed. A refused object changes nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_bpf.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "skygate/parse.h"
#include "skygate/policy.h"
#include "skygate/runtime.h"
#ifdef SKY_POLICY_HAVE_SUBS
#include "skygate/subscriber.h"
#endif

#include "policy_impl.h"

/* ================================================================== data path */

/* copy the fields the program reads (the checker proved it reads no others) */
static void
ctx_fill_other(struct sky_policy_ctx *c, const struct sky_meta *m, uint32_t g)
{
	if (g & CTXG_HDR) {
		c->dir = m->dir;
		c->family = m->l3;
		c->proto = m->proto;
		c->dscp = m->dscp;
	}
	if (g & CTXG_SUB)
		c->sub_id = m->sub_id;
	if (g & CTXG_BEAM) {
		c->beam = m->beam;
		c->plan = m->plan;
	}
	if (g & CTXG_REALM) {
		c->realm = m->realm;
		c->cls = m->cls;
		c->remote_flags = m->remote_flags;
	}
	if (g & CTXG_PORTS) {
		c->sport = m->sport;
		c->dport = m->dport;
	}
	if (g & CTXG_LEN)
		c->len = m->pkt_len;
	if (g & CTXG_MISC) {
		c->flags = m->flags & (SKY_POLICY_F_FRAG | SKY_POLICY_F_FRAG_FIRST |
				       SKY_POLICY_F_PORTS | SKY_POLICY_F_ICMP);
		c->icmp_type = m->icmp_type;
		c->icmp_code = m->icmp_code;
		c->ip_len = m->ip_len;
	}
	if (g & CTXG_SRC)
		memcpy(c->src, m->src, 16);
	if (g & CTXG_DST)
		memcpy(c->dst, m->dst, 16);
}

static inline void
ctx_fill(struct sky_policy_ctx *c, const struct sky_meta *m, uint32_t g)
{
	/* countries first: what country policies read, without the other tests */
	if (g & CTXG_CC) {
		c->sub_country = m->sub_country;
		c->remote_country = m->remote_country;
	}
	if (g & ~(uint32_t)CTXG_CC)
		ctx_fill_other(c, m, g);
}

static uint32_t
ctx_groups(const uint8_t *used)
{
	static const struct {
		uint8_t off, len;
		uint32_t g;
	} gs[] = {
		{4, 4, CTXG_HDR},    {8, 4, CTXG_SUB},	  {12, 4, CTXG_CC},  {16, 4, CTXG_BEAM},
		{20, 4, CTXG_REALM}, {24, 4, CTXG_PORTS}, {28, 4, CTXG_LEN}, {32, 8, CTXG_MISC},
		{40, 16, CTXG_SRC},  {56, 16, CTXG_DST},
	};
	uint32_t g = 0;

	for (size_t i = 0; i < RTE_DIM(gs); i++)
		for (unsigned int b = gs[i].off; b < gs[i].off + gs[i].len; b++)
			if (used[b])
				g |= gs[i].g;
	return g;
}

static inline void
blk_count(struct policy_wstats *ws, const struct sky_meta *m)
{
	uint64_t key = 1ULL << 63 | (uint64_t)m->sub_country << 17 |
		       (uint64_t)m->remote_country << 1 | (m->dir & 1);
	uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ULL) >> 56);

	for (unsigned int i = 0; i < BLK_PROBES; i++) {
		struct blk_ent *e = &ws->blk[(h + i) & (BLK_SIZE - 1)];

		if (e->key == key || e->key == 0) {
			e->key = key;
			e->pkts++;
			e->bytes += m->pkt_len;
			return;
		}
	}
	ws->blk_other_pkts++;
	ws->blk_other_bytes += m->pkt_len;
}

void
sky_policy_run_burst(struct sky_policy *p, unsigned int worker, struct rte_mbuf **pkts,
		     struct sky_meta *meta, uint16_t n)
{
	const struct sky_prog *prog = __atomic_load_n(&p->prog, __ATOMIC_ACQUIRE);
	uint64_t (*jit)(void *);
	struct policy_wstats *ws;
	struct sky_policy_ctx ctx;
	uint64_t t0 = 0;
	/* counted in registers, added once per burst; pass = runs - the others */
	uint32_t runs = 0, n_drop = 0, n_cls = 0, n_dscp = 0, n_fault = 0;
	uint32_t g;
	bool timed;

	if (prog == NULL)
		return;
	ws = &p->ws[worker];
	timed = (ws->bursts++ & (SKY_POLICY_TIMED_EVERY - 1)) == 0;
	if (timed)
		t0 = rte_rdtsc();
	g = prog->ctx_groups;
	jit = prog->jit;
	ctx.abi = SKY_POLICY_ABI_VERSION;
	ctx.pad0 = 0;
	ctx.pad1 = 0;
	for (uint16_t i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];
		uint64_t v;
		unsigned int code, arg;

		if (!sky_meta_live(m))
			continue;
		ctx_fill(&ctx, m, g);
		v = likely(jit != NULL) ? jit(&ctx) : rte_bpf_exec(prog->bpf, &ctx);
		runs++;
		if (likely(v == SKY_POLICY_PASS))
			continue;
		if (v == SKY_POLICY_DROP) {
			n_drop++;
			sky_meta_drop(m, SKY_DROP_POLICY);
			blk_count(ws, m);
			continue;
		}
		code = SKY_POLICY_VERDICT_CODE(v);
		arg = SKY_POLICY_VERDICT_ARG(v);
		if ((v >> 16) == 0) {
			if (code == SKY_POLICY_V_PASS_CLASS && arg < p->n_classes) {
				m->cls = (uint8_t)arg;
				n_cls++;
				continue;
			}
			if (code == SKY_POLICY_V_PASS_DSCP && arg < 64) {
				if (pkts != NULL)
					sky_parse_set_dscp(pkts[i], m, (uint8_t)arg);
				else
					m->dscp = (uint8_t)arg;
				n_dscp++;
				continue;
			}
		}
		/* 0 (librte_bpf's result of a fault) or no verdict we know */
		n_fault++;
		if (p->on_fault_drop)
			sky_meta_drop(m, SKY_DROP_POLICY_FAULT);
	}
	ws->runs += runs;
	ws->v[SKY_POLICY_V_PASS] += runs - n_drop - n_cls - n_dscp - n_fault;
	ws->v[SKY_POLICY_V_DROP] += n_drop;
	ws->v[SKY_POLICY_V_PASS_CLASS] += n_cls;
	ws->v[SKY_POLICY_V_PASS_DSCP] += n_dscp;
	ws->v[PV_FAULT] += n_fault;
	if (timed) {
		ws->cycles += rte_rdtsc() - t0;
		ws->timed_runs += runs;
	}
}

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

/* ================================================================== load / swap */

uint64_t
policy_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
prog_destroy(struct sky_prog *prog)
{
	if (prog == NULL)
		return;
	rte_bpf_destroy(prog->bpf);
	free(prog->xsym);
	free(prog);
}

int
policy_file_sha256(const char *path, char hex[65], char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, sum[32];
	long len;
	int rc = -EIO;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    len > (64L << 20))
		goto out;
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
		goto out;
	sky_sha256(buf, (size_t)len, sum);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
	rc = 0;
out:
	if (rc != 0)
		snprintf(err, errlen, "%s: cannot read", path);
	free(buf);
	fclose(f);
	return rc;
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

/* bind a checked object (consumed), rte_bpf_load and JIT; then swap in, or (dry_run)
 * throw away. path: the file (NULL: code built in memory, tests) */
static int
load_obj(struct sky_policy *p, struct pobj *op, const char *path, uint64_t t0, bool dry_run,
	 struct sky_prog_info *info, char *err, size_t errlen)
{
	struct pobj o = *op;
	uint64_t t1;
	struct sky_prog *prog, *old;
	struct sky_pmap *nm[SKY_POLICY_MAX_MAPS] = {NULL};
	bool created[SKY_POLICY_MAX_MAPS] = {false};
	int xidx[SKY_POLICY_MAX_MAPS], unreach = -1;
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
	if (path != NULL) {
		rc = policy_file_sha256(path, prog->sha256, err, errlen);
		if (rc != 0)
			goto unwind;
	}
	snprintf(prog->path, sizeof(prog->path), "%s", path != NULL ? path : "(memory)");
	snprintf(prog->name, sizeof(prog->name), "%s", o.prog_name);
	prog->n_ins = o.n_ins;
	prog->ctx_groups = ctx_groups(o.ctx_read);

	/* maps: keep a running map of the same name and spec, else make one */
	for (uint32_t i = 0; i < o.n_maps; i++) {
		for (uint32_t j = 0; j < p->n_maps; j++)
			if (pmap_spec_equal(&p->maps[j]->spec, &o.maps[i]))
				nm[i] = p->maps[j];
		if (nm[i] == NULL) {
			nm[i] = pmap_create(&o.maps[i], err, errlen);
			if (nm[i] == NULL) {
				rc = -EINVAL;
				goto unwind;
			}
			created[i] = true;
		}
		prog->maps[i] = nm[i];
	}
	prog->n_maps = o.n_maps;

	/* bind: map symbols -> handles, calls -> one helper entry per map */
	/* a helper and an inlined block per map, and the unreachable stub */
	prog->xsym = calloc(2 * o.n_maps + 2, sizeof(*prog->xsym));
	if (prog->xsym == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto unwind;
	}
	for (uint32_t i = 0; i < SKY_POLICY_MAX_MAPS; i++)
		xidx[i] = -1;
	for (uint32_t pc = 0; pc < o.n_ins; pc++) {
		struct ebpf_insn *ins = &o.ins[pc];

		if (o.ld_map[pc] >= 0) {
			uint64_t h = nm[o.ld_map[pc]]->handle;

			ins[0].src_reg = 0;
			ins[0].imm = (int32_t)(uint32_t)h;
			ins[1].imm = (int32_t)(uint32_t)(h >> 32);
		} else if (o.call_helper[pc] >= 0 && o.call_map[pc] < 0) {
			/* a call the checker proved unreachable: bound to a stub for librte_bpf's
			 * validator, which walks every path */
			if (unreach < 0) {
				struct rte_bpf_xsym *x = &prog->xsym[prog->n_xsym];

				x->name = "unreachable";
				x->type = RTE_BPF_XTYPE_FUNC;
				x->func.val = unreachable_helper;
				x->func.nb_args = 2;
				x->func.args[0].type = RTE_BPF_ARG_RAW;
				x->func.args[0].size = sizeof(uint64_t);
				x->func.args[1].type = RTE_BPF_ARG_RAW;
				x->func.args[1].size = sizeof(uint64_t);
				x->func.ret.type = RTE_BPF_ARG_PTR;
				x->func.ret.size = SKY_MAP_MAX_VALUE;
				unreach = (int)prog->n_xsym++;
			}
			ins->src_reg = 0;
			ins->imm = unreach;
		} else if (o.call_helper[pc] >= 0) {
			int mi = o.call_map[pc];
			struct sky_pmap *m = nm[mi];

			if (xidx[mi] < 0) {
				struct rte_bpf_xsym *x = &prog->xsym[prog->n_xsym];

				x->name = m->spec.name;
				x->type = RTE_BPF_XTYPE_FUNC;
				x->func.val = pmap_helper_for(m);
				x->func.nb_args = 2;
				x->func.args[0].type = RTE_BPF_ARG_RAW;
				x->func.args[0].size = sizeof(uint64_t);
				x->func.args[1].type = RTE_BPF_ARG_PTR;
				x->func.args[1].size = m->key_size;
				x->func.ret.type = RTE_BPF_ARG_PTR;
				x->func.ret.size = m->value_size;
				xidx[mi] = (int)prog->n_xsym++;
			}
			ins->src_reg = 0;
			ins->imm = xidx[mi];
		}
	}
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
		info->n_maps = prog->n_maps;
		info->jit = prog->jit != NULL;
		info->load_ns = prog->load_ns;
		snprintf(info->sha256, sizeof(info->sha256), "%s", prog->sha256);
		snprintf(info->name, sizeof(info->name), "%s", prog->name);
	}
	if (dry_run) {
		rc = 0;
		goto unwind;
	}

	/* publish, wait for the workers, then reclaim */
	pthread_mutex_lock(&policy_tel_lock);
	old = p->prog;
	__atomic_store_n(&p->prog, prog, __ATOMIC_RELEASE);
	sky_rcu_sync();
	prog_destroy(old);
	pthread_mutex_unlock(&policy_tel_lock);
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

static int
load_file(struct sky_policy *p, const char *path, bool dry_run, struct sky_prog_info *info,
	  char *err, size_t errlen)
{
	uint64_t t0 = policy_now_ns();
	struct pobj o;
	int rc = pobj_load(path, &o, err, errlen);

	if (rc != 0)
		return rc;
	return load_obj(p, &o, path, t0, dry_run, info, err, errlen);
}

int
sky_policy_load_file(struct sky_policy *p, const char *path, char *err, size_t errlen)
{
	return load_file(p, path, false, NULL, err, errlen);
}

int
policy_load_obj(struct sky_policy *p, struct pobj *o, char *err, size_t errlen)
{
	return load_obj(p, o, NULL, policy_now_ns(), false, NULL, err, errlen);
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
	pthread_mutex_lock(&policy_tel_lock);
	__atomic_store_n(&p->prog, NULL, __ATOMIC_RELEASE);
	sky_rcu_sync();
	prog_destroy(old);
	pthread_mutex_unlock(&policy_tel_lock);
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

static const char *const policy_keys[] = {"object", "on_fault", "jit", "maps", NULL};
static const char *const on_fault_choices[] = {"pass", "drop", NULL};

static int
apply_cfg_maps(struct sky_policy *p, const struct sky_cfg *cfg, const struct sky_cfg_node *maps,
	       struct sky_cfg_err *err)
{
	if (sky_cfg_type(maps) != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, maps, "expected a map of map names");
	for (size_t i = 0; i < sky_cfg_len(maps); i++) {
		const char *name = sky_cfg_key_at(maps, i);
		const struct sky_cfg_node *ent = sky_cfg_at(maps, i);
		struct sky_pmap *m = policy_map_find(p, name);

		if (m == NULL)
			return sky_cfg_fail(err, cfg, ent,
					    "the policy object has no map named '%s'", name);
		if (sky_cfg_type(ent) != SKY_CFG_MAP)
			return sky_cfg_fail(err, cfg, ent, "expected { KEY: VALUE, ... }");
		for (size_t j = 0; j < sky_cfg_len(ent); j++) {
			const char *key = sky_cfg_key_at(ent, j);
			const struct sky_cfg_node *vn = sky_cfg_at(ent, j);
			const char *val = sky_cfg_str(vn);
			char why[256];

			if (val == NULL)
				return sky_cfg_fail(err, cfg, vn, "expected a scalar value");
			if (sky_policy_map_update(p, name, key, val, why, sizeof(why)) != 0)
				return sky_cfg_fail(err, cfg, vn, "%s", why);
		}
	}
	return 0;
}

struct sky_policy *
sky_policy_create(const struct sky_cfg *cfg, const struct sky_subs *subs, struct sky_cfg_err *err)
{
	const struct sky_cfg_node *sec = cfg != NULL ? sky_cfg_get(cfg->root, "policy") : NULL;
	const struct sky_cfg_node *maps;
	struct sky_policy *p;
	const char *object = NULL;
	unsigned int on_fault = 0;
	bool jit = true;
	char path[4096], why[768];

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		sky_cfg_fail(err, cfg, NULL, "policy: out of memory");
		return NULL;
	}
	p->ws = rte_zmalloc("sky_policy_ws", sizeof(struct policy_wstats) * SKY_MAX_WORKERS,
			    RTE_CACHE_LINE_SIZE);
	if (p->ws == NULL) {
		sky_cfg_fail(err, cfg, sec, "out of hugepage memory for the policy counters");
		free(p);
		return NULL;
	}
	p->n_classes = SKY_MAX_CLASSES;
	p->subs = subs;
#ifdef SKY_POLICY_HAVE_SUBS
	if (subs != NULL && sky_subs_n_classes(subs) > 0)
		p->n_classes = (uint8_t)sky_subs_n_classes(subs);
#else
	(void)subs;
#endif
	p->jit = true;
	if (cfg != NULL && cfg->file != NULL) {
		char tmp[4096];

		snprintf(tmp, sizeof(tmp), "%s", cfg->file);
		snprintf(p->cfg_dir, sizeof(p->cfg_dir), "%s", dirname(tmp));
	}
	if (sec == NULL)
		return p;
	if (sky_cfg_check_keys(err, cfg, sec, policy_keys) != 0 ||
	    sky_cfg_get_str(err, cfg, sec, "object", false, &object) != 0 ||
	    sky_cfg_get_enum(err, cfg, sec, "on_fault", false, on_fault_choices, &on_fault) != 0 ||
	    sky_cfg_get_bool(err, cfg, sec, "jit", false, &jit) != 0)
		goto fail;
	p->on_fault_drop = on_fault == 1;
	p->jit = jit;
	maps = sky_cfg_get(sec, "maps");
	if (object == NULL) {
		if (maps != NULL) {
			sky_cfg_fail(err, cfg, maps, "maps given without a policy object");
			goto fail;
		}
		return p;
	}
	/* a relative path: from the working directory, else from the config's directory */
	snprintf(path, sizeof(path), "%s", object);
	if (object[0] != '/' && access(path, R_OK) != 0 && p->cfg_dir[0] != '\0' &&
	    snprintf(path, sizeof(path), "%s/%s", p->cfg_dir, object) >= (int)sizeof(path)) {
		sky_cfg_fail(err, cfg, sky_cfg_get(sec, "object"), "path too long");
		goto fail;
	}
	if (sky_policy_load_file(p, path, why, sizeof(why)) != 0) {
		sky_cfg_fail(err, cfg, sky_cfg_get(sec, "object"), "%s", why);
		goto fail;
	}
	if (maps != NULL && apply_cfg_maps(p, cfg, maps, err) != 0)
		goto fail;
	return p;
fail:
	sky_policy_destroy(p);
	return NULL;
}

void
sky_policy_destroy(struct sky_policy *p)
{
	if (p == NULL)
		return;
	policy_unregister_ctl(p);
	sky_policy_unload(p);
	for (uint32_t i = 0; i < p->n_maps; i++)
		pmap_free(p->maps[i]);
	rte_free(p->ws);
	free(p);
}
