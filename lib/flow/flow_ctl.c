/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flow commands and telemetry: `flows show`, `flows top`, `flows flush`, telemetry
 * /skygate/flows, Prometheus skygate_flow_*, and the periodic drain of the workers' rings
 * into the consumers. Main lcore; calls the owner (flow.c) and the configuration.
 *
 * `flows top` reads the workers' tables while they write them: no lock, so a flow's
 * counters may be torn (one direction updated, the other not yet) or the flow may end
 * under the walk. It is a view, not an account; records are the account.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ring_elem.h>
#include <rte_telemetry.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "flow_priv.h"

#define FLOW_POLL_US 10000 /* the drain runs this often (when the main loop does) */
#define FLOW_TOP_MAX 1000

static struct sky_flow *tel_f; /* telemetry callbacks have no argument */

struct sky_flow *
sky_flow_create(const struct sky_cfg *cfg, unsigned int n_workers, struct sky_cfg_err *err)
{
	struct flow_params p;
	struct sky_flow *f;
	char msg[256];

	sky_flow_params_default(&p);
	if (sky_flow_parse_config(cfg, &p, err) < 0)
		return NULL;
	f = sky_flow_create_params(&p, n_workers, sky_rt.tsc_hz ? sky_rt.tsc_hz : rte_get_tsc_hz(),
				   msg, sizeof(msg));
	if (f == NULL) {
		const struct sky_cfg_node *fl = sky_cfg_get(cfg->root, "flows");

		sky_cfg_fail(err, cfg, fl != NULL ? sky_cfg_get(fl, "entries") : NULL, "%s", msg);
		return NULL;
	}
	if (f->on)
		SKY_LOG(INFO,
			"flow table: %u worker(s) x %u entries, %.1f MiB each (rtt %s, records %s)",
			f->n_workers, f->p.entries, (double)f->mem_bytes / (1 << 20),
			f->rtt ? "on" : "off", f->records ? "on" : "off");
	return f;
}

static json_t *
counters_json(const struct sky_flow *f, const struct flow_worker *w)
{
	json_t *o = json_object();

	for (unsigned int c = 0; c < FLOW_CTR_MAX; c++)
		json_object_set_new(
			o, sky_flow_ctr_names[c],
			json_integer((json_int_t)(w != NULL ? __atomic_load_n(&w->ctr[c],
									      __ATOMIC_RELAXED)
							    : sky_flow_ctr_sum(f, c))));
	return o;
}

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_flow *f = arg;
	json_t *r, *ws;
	uint64_t used = 0;

	(void)argv;
	if (argc != 0)
		return sky_ctl_fail(call, "usage: flows show");
	r = json_pack("{s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I}", "enabled", f->on, "rtt", f->rtt,
		      "records", f->records, "entries_per_worker", (json_int_t)f->p.entries,
		      "rtt_samples_per_sec", (json_int_t)f->p.rtt_samples_per_sec,
		      "active_timeout_ms", (json_int_t)(f->p.active_timeout_us / 1000),
		      "idle_timeout_ms", (json_int_t)(f->p.idle_timeout_us / 1000),
		      "memory_bytes_per_worker", (json_int_t)(f->w != NULL ? f->mem_bytes : 0));
	ws = json_array();
	for (unsigned int i = 0; f->w != NULL && i < f->n_workers; i++) {
		const struct flow_worker *w = &f->w[i];
		json_t *o = json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "worker", i,
				      "entries", (json_int_t)sky_flow_used(f, i), "capacity",
				      (json_int_t)f->p.entries, "inserts",
				      (json_int_t)w->ctr[FLOW_CTR_inserts], "evictions",
				      (json_int_t)w->ctr[FLOW_CTR_evictions], "rtt_ring_drops",
				      (json_int_t)w->ctr[FLOW_CTR_rtt_ring_drops], "rec_ring_drops",
				      (json_int_t)w->ctr[FLOW_CTR_rec_ring_drops], "memory_bytes",
				      (json_int_t)f->mem_bytes, "rtt_ring_queued",
				      (json_int_t)rte_ring_count(w->rtt_ring));

		json_object_set_new(o, "counters", counters_json(f, w));
		json_array_append_new(ws, o);
		used += sky_flow_used(f, i);
	}
	json_object_set_new(r, "entries", json_integer((json_int_t)used));
	json_object_set_new(r, "workers", ws);
	json_object_set_new(r, "totals", counters_json(f, NULL));
	*result = r;
	return 0;
}

/* --- flows top --------------------------------------------------------------------------- */

struct top_item {
	uint64_t v;
	unsigned int worker;
	struct flow_ent e; /* copies: the worker goes on writing the table */
	struct flow_cold c;
};

struct top_heap {
	struct top_item *it;
	unsigned int n, cap;
};

static void
heap_down(struct top_heap *h, unsigned int i)
{
	for (;;) {
		unsigned int l = 2 * i + 1, m = i;
		struct top_item t;

		if (l < h->n && h->it[l].v < h->it[m].v)
			m = l;
		if (l + 1 < h->n && h->it[l + 1].v < h->it[m].v)
			m = l + 1;
		if (m == i)
			return;
		t = h->it[i];
		h->it[i] = h->it[m];
		h->it[m] = t;
		i = m;
	}
}

static void
heap_up(struct top_heap *h, unsigned int i)
{
	while (i > 0 && h->it[(i - 1) / 2].v > h->it[i].v) {
		struct top_item t = h->it[i];

		h->it[i] = h->it[(i - 1) / 2];
		h->it[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/* keep the cap largest values: a min-heap whose root is the smallest kept */
static void
heap_offer(struct top_heap *h, uint64_t v, unsigned int worker, const struct flow_ent *e,
	   const struct flow_cold *c)
{
	if (h->n < h->cap) {
		h->it[h->n] = (struct top_item){.v = v, .worker = worker, .e = *e, .c = *c};
		heap_up(h, h->n++);
	} else if (v > h->it[0].v) {
		h->it[0] = (struct top_item){.v = v, .worker = worker, .e = *e, .c = *c};
		heap_down(h, 0);
	}
}

static int
cmp_desc(const void *a, const void *b)
{
	const struct top_item *x = a, *y = b;

	return x->v < y->v ? 1 : x->v > y->v ? -1 : 0;
}

static void
addr_str(char *buf, size_t n, uint8_t l3, const uint8_t *a)
{
	if (inet_ntop(l3 == 4 ? AF_INET : AF_INET6, a, buf, (socklen_t)n) == NULL)
		snprintf(buf, n, "?");
}

static json_t *
top_json(const struct sky_flow *f, const struct top_item *t, uint64_t now)
{
	struct sky_flow_rec r;
	char sub[INET6_ADDRSTRLEN], rem[INET6_ADDRSTRLEN];

	sky_flow_fill_rec(f, &t->e, &t->c, t->worker, now, &r);
	addr_str(sub, sizeof(sub), r.l3, r.sub_addr);
	addr_str(rem, sizeof(rem), r.l3, r.remote_addr);
	return json_pack(
		"{s:i, s:I, s:s, s:i, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:s, s:s, "
		"s:i, s:I, s:I, s:I, s:I}",
		"worker", t->worker, "subscriber", (json_int_t)r.sub_id, "sub_addr", sub,
		"sub_port", r.sub_port, "remote_addr", rem, "remote_port", r.remote_port, "proto",
		r.proto, "beam", r.beam, "packets_up", (json_int_t)r.packets[SKY_DIR_UP],
		"packets_down", (json_int_t)r.packets[SKY_DIR_DOWN], "bytes_up",
		(json_int_t)r.bytes[SKY_DIR_UP], "bytes_down", (json_int_t)r.bytes[SKY_DIR_DOWN],
		"verdict", r.verdict == SKY_V_PASS ? "pass" : "drop", "reason",
		sky_drop_name(r.reason), "tcp_flags", r.tcp_flags, "rtt_sat_us",
		(json_int_t)r.rtt_sat_us, "rtt_inet_us", (json_int_t)r.rtt_inet_us, "first_ns",
		(json_int_t)r.first_ns, "last_ns", (json_int_t)r.last_ns);
}

static int
cmd_top(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_flow *f = arg;
	uint64_t n = 20, sub = 0;
	int by_pkts = 0, have_sub = 0;
	struct top_heap h = {0};
	uint64_t walked = 0, now = rte_rdtsc();
	json_t *a, *r;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "by=bytes") == 0)
			by_pkts = 0;
		else if (strcmp(argv[i], "by=packets") == 0)
			by_pkts = 1;
		else if (strncmp(argv[i], "n=", 2) == 0) {
			if (sky_parse_u64(argv[i] + 2, 1, FLOW_TOP_MAX, &n) < 0)
				return sky_ctl_fail(call, "flows top: n must be 1..%u, not '%s'",
						    FLOW_TOP_MAX, argv[i] + 2);
		} else if (strncmp(argv[i], "subscriber=", 11) == 0) {
			if (sky_parse_u64(argv[i] + 11, 0, UINT32_MAX, &sub) < 0)
				return sky_ctl_fail(call, "flows top: bad subscriber id '%s'",
						    argv[i] + 11);
			have_sub = 1;
		} else {
			return sky_ctl_fail(call,
					    "flows top: unknown argument '%s' (usage: flows top "
					    "[by=bytes|packets] [subscriber=ID] [n=N])",
					    argv[i]);
		}
	}
	if (f->w == NULL) {
		*result = json_pack("{s:b, s:[]}", "enabled", 0, "flows");
		return 0;
	}
	h.cap = (unsigned int)n;
	h.it = calloc(h.cap, sizeof(*h.it));
	if (h.it == NULL)
		return sky_ctl_fail(call, "flows top: out of memory");
	/* bounded: every worker's table once (entries x workers) */
	for (unsigned int wi = 0; wi < f->n_workers; wi++) {
		const struct flow_worker *w = &f->w[wi];

		for (uint32_t bi = 0; bi <= f->bmask; bi++) {
			for (unsigned int s = 0; s < FLOW_WAYS; s++) {
				struct flow_ent e;
				struct flow_cold c;

				if (__atomic_load_n(&w->b[bi].sig[s], __ATOMIC_RELAXED) == 0)
					continue;
				memcpy(&e, &w->e[bi * FLOW_WAYS + s], sizeof(e));
				memcpy(&c, &w->c[bi * FLOW_WAYS + s], sizeof(c));
				walked++;
				if (have_sub && c.sub_id != sub)
					continue;
				heap_offer(&h,
					   by_pkts ? (uint64_t)e.pkts[0] + e.pkts[1]
						   : e.bytes[0] + e.bytes[1],
					   wi, &e, &c);
			}
		}
	}
	qsort(h.it, h.n, sizeof(*h.it), cmp_desc);
	a = json_array();
	for (unsigned int i = 0; i < h.n; i++)
		json_array_append_new(a, top_json(f, &h.it[i], now));
	free(h.it);
	r = json_pack("{s:b, s:s, s:I, s:o}", "enabled", 1, "by", by_pkts ? "packets" : "bytes",
		      "walked", (json_int_t)walked, "flows", a);
	*result = r;
	return 0;
}

static int
cmd_flush(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_flow *f = arg;
	uint64_t used = 0;

	(void)argv;
	if (argc != 0)
		return sky_ctl_fail(call, "usage: flows flush");
	if (f->w == NULL)
		return sky_ctl_fail(call, "flows flush: the flow table is off (no flows: section)");
	for (unsigned int i = 0; i < f->n_workers; i++)
		used += sky_flow_used(f, i);
	sky_flow_request_flush(f);
	sky_audit(call->uid, "flows flush (%llu entries)", (unsigned long long)used);
	*result = json_pack("{s:I, s:s}", "entries", (json_int_t)used, "note",
			    "the workers end every entry (records: forced) within their next "
			    "loops");
	return 0;
}

/* --- telemetry, Prometheus, the drain --------------------------------------------------- */

static int
tel_flows(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sky_flow *f = tel_f;
	uint64_t used = 0;

	(void)cmd;
	(void)params;
	if (f == NULL)
		return -1;
	for (unsigned int i = 0; i < f->n_workers; i++)
		used += sky_flow_used(f, i);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "enabled", (uint64_t)f->on);
	rte_tel_data_add_dict_u64(d, "rtt", (uint64_t)f->rtt);
	rte_tel_data_add_dict_u64(d, "records", (uint64_t)f->records);
	rte_tel_data_add_dict_u64(d, "entries", used);
	rte_tel_data_add_dict_u64(d, "capacity",
				  f->w != NULL ? (uint64_t)f->p.entries * f->n_workers : 0);
	rte_tel_data_add_dict_u64(d, "memory_bytes",
				  f->w != NULL ? f->mem_bytes * f->n_workers : 0);
	for (unsigned int c = 0; c < FLOW_CTR_MAX; c++)
		rte_tel_data_add_dict_u64(d, sky_flow_ctr_names[c], sky_flow_ctr_sum(f, c));
	return 0;
}

static void
metrics(void *arg, FILE *out)
{
	struct sky_flow *f = arg;
	uint64_t used = 0;

	if (f->w == NULL)
		return; /* off: nothing to say */
	for (unsigned int i = 0; i < f->n_workers; i++)
		used += sky_flow_used(f, i);
	for (unsigned int c = 0; c < FLOW_CTR_MAX; c++)
		fprintf(out,
			"# HELP skygate_flow_%s_total Flow table: %s.\n"
			"# TYPE skygate_flow_%s_total counter\n"
			"skygate_flow_%s_total %llu\n",
			sky_flow_ctr_names[c], sky_flow_ctr_help[c], sky_flow_ctr_names[c],
			sky_flow_ctr_names[c], (unsigned long long)sky_flow_ctr_sum(f, c));
	fprintf(out,
		"# HELP skygate_flow_entries Flow table entries in use, all workers.\n"
		"# TYPE skygate_flow_entries gauge\n"
		"skygate_flow_entries %llu\n"
		"# HELP skygate_flow_capacity Flow table entries, all workers.\n"
		"# TYPE skygate_flow_capacity gauge\n"
		"skygate_flow_capacity %llu\n"
		"# HELP skygate_flow_memory_bytes Flow table memory (tables and rings), all "
		"workers.\n"
		"# TYPE skygate_flow_memory_bytes gauge\n"
		"skygate_flow_memory_bytes %llu\n",
		(unsigned long long)used, (unsigned long long)f->p.entries * f->n_workers,
		(unsigned long long)f->mem_bytes * f->n_workers);
}

static void
periodic(void *arg, uint64_t now_tsc)
{
	sky_flow_poll(arg, now_tsc);
}

static void
forget(struct sky_flow *f)
{
	if (tel_f == f)
		tel_f = NULL;
}

int
sky_flow_register(struct sky_flow *f)
{
	int rc;

	if (f == NULL)
		return -EINVAL;
	if (f->registered)
		return 0;
	rc = sky_ctl_register("flows show", "",
			      "flow table per worker: entries, capacity, inserts, evictions, ring "
			      "drops, memory",
			      0, cmd_show, f);
	if (rc == 0)
		rc = sky_ctl_register("flows top", "[by=bytes|packets] [subscriber=ID] [n=N]",
				      "the largest flows in the tables now (read while the "
				      "workers write: counters may be torn)",
				      0, cmd_top, f);
	if (rc == 0)
		rc = sky_ctl_register("flows flush", "",
				      "end every flow now (records: forced); RTT state restarts", 0,
				      cmd_flush, f);
	if (rc == 0)
		rc = sky_periodic_register("flow drain", FLOW_POLL_US, periodic, f);
	if (rc == 0)
		rc = sky_metrics_register("flow", metrics, f);
	if (rc < 0)
		return rc;
	tel_f = f;
	/* -EEXIST when a previous flow module registered it in this process: it reads tel_f */
	rte_telemetry_register_cmd("/skygate/flows", tel_flows,
				   "Flow table: entries, capacity, memory, counters (all workers)");
	f->registered = 1;
	f->on_destroy = forget;
	return 0;
}
