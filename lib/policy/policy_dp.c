/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The policy hook's data path: per burst, the context of each live packet (only the
 * field groups the program reads), the program (JIT or interpreter), the verdict into
 * the packet's metadata (drop, class, DSCP to write at output), counters per worker.
 * No allocation, no lock, no log; the program pointer is read once per burst.
 */
#include <string.h>

#include <rte_bpf.h>
#include <rte_branch_prediction.h>
#include <rte_cycles.h>

#include "skygate/meta.h"
#include "skygate/policy.h"

#include "policy_impl.h"

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
		c->flags = m->flags & SKY_POLICY_F_ALL;
		c->icmp_type = m->icmp_type;
		c->icmp_code = m->icmp_code;
		c->ip_len = m->ip_len;
	}
	if (g & CTXG_SRC)
		memcpy(c->src, m->src, 16);
	if (g & CTXG_DST)
		memcpy(c->dst, m->dst, 16);
	if (g & CTXG_ZONE) {
		c->zone = m->zone;
		c->quota_state = m->quota_state;
	}
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

uint32_t
policy_ctx_groups(const uint8_t used[sizeof(struct sky_policy_ctx)])
{
	static const struct {
		uint8_t off, len;
		uint32_t g;
	} gs[] = {
		{4, 4, CTXG_HDR},    {8, 4, CTXG_SUB},	  {12, 4, CTXG_CC},   {16, 4, CTXG_BEAM},
		{20, 4, CTXG_REALM}, {24, 4, CTXG_PORTS}, {28, 4, CTXG_LEN},  {32, 8, CTXG_MISC},
		{40, 16, CTXG_SRC},  {56, 16, CTXG_DST},  {72, 4, CTXG_ZONE},
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
sky_policy_run_burst(struct sky_policy *p, unsigned int worker, struct sky_meta *meta, uint16_t n)
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
	ctx.pad2 = 0;
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
				/* the worker's output step writes it into the packet */
				m->dscp = (uint8_t)arg;
				m->flags |= SKY_MF_DSCP_SET;
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
