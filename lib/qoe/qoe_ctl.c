/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qoe control plane glue: the flow table's RTT consumer, `qoe show`, the rtt fields of
 * `subscriber show`, `subscriber top` (and its orderings by=rtt, by=retrans) and `beam
 * show`, telemetry /skygate/qoe and Prometheus:
 *   skygate_beam_rtt_seconds{beam,half}               histogram since start
 *   skygate_beam_rtt_min_seconds{beam,half}           gauge, over qoe.min_window
 *   skygate_beam_rtt_window_seconds{beam,half,stat}   gauge, p50/p95/p99 over the window
 *   skygate_beam_tcp_retrans_ratio{beam,dir}          gauge, over the window
 *   skygate_beam_tcp_segments_total{beam,dir}, skygate_beam_tcp_retrans_total{beam,dir}
 *   skygate_qoe_samples_total, _table_full_total, _subscribers, _memory_bytes
 * and with qoe.per_subscriber_metrics (one series per measured subscriber and figure):
 *   skygate_subscriber_rtt_seconds{id,half,stat="min|p50|p95|p99"}
 *   skygate_subscriber_tcp_retrans_ratio{id,dir}, skygate_subscriber_qoe_score{id}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <rte_cycles.h>
#include <rte_telemetry.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "qoe_priv.h"

static struct sky_qoe *tel_q; /* telemetry callbacks have no argument */

static const char *const half_names[2] = {"satellite", "internet"};
static const char *const dir_names[2] = {"up", "down"};

static uint64_t
now_us(void)
{
	uint64_t tsc = rte_rdtsc(), hz = rte_get_tsc_hz();

	return tsc / hz * 1000000 + tsc % hz * 1000000 / hz;
}

void
sky_qoe_on_rtt(void *arg, const struct sky_rtt_sample *s, uint64_t now_tsc)
{
	uint64_t hz = rte_get_tsc_hz();

	sky_qoe_add(arg, s, now_tsc / hz * 1000000 + now_tsc % hz * 1000000 / hz);
}

/* --- views ----------------------------------------------------------------------------------- */

static json_t *
half_json(const struct sky_qoe_half *h)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "samples", (json_int_t)h->samples,
			 "min_us", (json_int_t)h->min_us, "p50_us", (json_int_t)h->p50_us, "p95_us",
			 (json_int_t)h->p95_us, "p99_us", (json_int_t)h->p99_us, "max_us",
			 (json_int_t)h->max_us);
}

static json_t *
view_json(const struct sky_qoe *q, const struct sky_qoe_view *v)
{
	json_t *o = json_object(), *rt = json_object();
	char g[2] = {v->grade, '\0'};

	for (unsigned int h = 0; h < 2; h++)
		json_object_set_new(o, half_names[h], half_json(&v->half[h]));
	for (unsigned int d = 0; d < 2; d++)
		json_object_set_new(rt, dir_names[d],
				    json_pack("{s:I, s:I, s:f}", "segments", (json_int_t)v->segs[d],
					      "retransmitted", (json_int_t)v->retrans[d], "share",
					      (double)v->retrans_bp[d] / 10000.0));
	json_object_set_new(o, "retrans", rt);
	json_object_set_new(o, "score", json_integer(v->score));
	json_object_set_new(o, "grade", json_string(g));
	json_object_set_new(o, "window_s", json_integer((json_int_t)(q->p.window_us / 1000000)));
	json_object_set_new(o, "min_window_s",
			    json_integer((json_int_t)(q->p.min_window_us / 1000000)));
	return o;
}

/* the short form of a `subscriber top` row */
static json_t *
row_json(const struct sky_qoe_view *v)
{
	char g[2] = {v->grade, '\0'};

	return json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:i, s:s}", "sat_min_us",
			 (json_int_t)v->half[0].min_us, "sat_p95_us", (json_int_t)v->half[0].p95_us,
			 "inet_min_us", (json_int_t)v->half[1].min_us, "inet_p95_us",
			 (json_int_t)v->half[1].p95_us, "retrans_up",
			 (double)v->retrans_bp[0] / 10000.0, "retrans_down",
			 (double)v->retrans_bp[1] / 10000.0, "score", v->score, "grade", g);
}

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_qoe *q = arg;
	struct sky_qoe_stats st;
	json_t *o, *beams = json_array();
	uint64_t now = now_us();

	(void)argv;
	if (argc != 0)
		return sky_ctl_fail(call, "usage: qoe show");
	sky_qoe_stats(q, &st);
	o = json_pack("{s:b, s:I, s:I, s:I, s:b, s:{s:I, s:I, s:f, s:f, s:I}}", "enabled",
		      q->p.enabled, "window_s", (json_int_t)(q->p.window_us / 1000000),
		      "min_window_s", (json_int_t)(q->p.min_window_us / 1000000), "subscribers_max",
		      (json_int_t)q->p.max_subs, "per_subscriber_metrics", q->p.per_sub_metrics,
		      "grade", "latency_good_us", (json_int_t)q->p.lat_good_us, "latency_bad_us",
		      (json_int_t)q->p.lat_bad_us, "loss_good", (double)q->p.loss_good_bp / 10000.0,
		      "loss_bad", (double)q->p.loss_bad_bp / 10000.0, "min_samples",
		      (json_int_t)q->p.grade_min_samples);
	json_object_set_new(o, "samples", json_integer((json_int_t)st.samples));
	json_object_set_new(o, "counts_only", json_integer((json_int_t)st.counts_only));
	json_object_set_new(o, "table_full", json_integer((json_int_t)st.table_full));
	json_object_set_new(o, "taken_over", json_integer((json_int_t)st.taken_over));
	json_object_set_new(o, "bad", json_integer((json_int_t)st.bad));
	json_object_set_new(o, "subscribers", json_integer(st.active));
	json_object_set_new(o, "memory_bytes", json_integer((json_int_t)sky_qoe_memory(q)));
	for (unsigned int b = 0; b < q->n_beams; b++) {
		struct sky_qoe_view v;
		json_t *bo;

		sky_qoe_beam(q, b, now, &v);
		bo = view_json(q, &v);
		if (q->subs != NULL)
			json_object_set_new(bo, "beam",
					    json_string(sky_subs_beam(q->subs, b).name));
		json_array_append_new(beams, bo);
	}
	json_object_set_new(o, "beams", beams);
	*result = o;
	return 0;
}

/* `subscriber show ID`: adds "rtt": {...} */
static void
ext_sub_show(void *arg, int argc, char **argv, json_t *result)
{
	struct sky_qoe *q = arg;
	struct sky_sub_info info;
	struct sky_qoe_view v;
	uint32_t id;

	if (argc < 1 || !json_is_object(result) || q->subs == NULL)
		return;
	if (sky_subs_parse_id(argv[0], &id) < 0 || sky_subs_get(q->subs, id, &info) < 0)
		return;
	if (sky_qoe_sub(q, info.idx, now_us(), &v) < 0 || v.sub_id != info.id) {
		json_object_set_new(result, "rtt", json_null());
		return;
	}
	json_object_set_new(result, "rtt", view_json(q, &v));
}

/* `subscriber top`: adds "rtt": {...} to each row that has figures */
static void
ext_sub_top(void *arg, int argc, char **argv, json_t *result)
{
	struct sky_qoe *q = arg;
	json_t *arr = json_object_get(result, "subscribers"), *row;
	uint64_t now = now_us();
	size_t i;

	(void)argc;
	(void)argv;
	json_array_foreach(arr, i, row)
	{
		json_t *ix = json_object_get(row, "idx"), *id = json_object_get(row, "id");
		struct sky_qoe_view v;

		if (!json_is_integer(ix) || !json_is_integer(id) ||
		    sky_qoe_sub(q, (uint32_t)json_integer_value(ix), now, &v) < 0 ||
		    v.sub_id != (uint32_t)json_integer_value(id))
			continue;
		json_object_set_new(row, "rtt", row_json(&v));
	}
}

/* `beam show NAME`: adds "rtt": {...} */
static void
ext_beam_show(void *arg, int argc, char **argv, json_t *result)
{
	struct sky_qoe *q = arg;
	struct sky_qoe_view v;
	int b;

	if (argc < 1 || !json_is_object(result) || q->subs == NULL)
		return;
	b = sky_subs_beam_index(q->subs, argv[0]);
	if (b < 0 || sky_qoe_beam(q, (unsigned int)b, now_us(), &v) < 0)
		return;
	json_object_set_new(result, "rtt", view_json(q, &v));
}

static unsigned int
rank_rtt(void *arg, uint32_t *idx, unsigned int n)
{
	return sky_qoe_worst(arg, 0, now_us(), idx, n);
}

static unsigned int
rank_retrans(void *arg, uint32_t *idx, unsigned int n)
{
	return sky_qoe_worst(arg, 1, now_us(), idx, n);
}

static void
listener(void *arg, enum sky_subs_event ev, uint32_t index, const struct sky_sub_info *info)
{
	struct sky_qoe *q = arg;

	(void)info;
	if (ev == SKY_SUBS_EV_SUB_DEL)
		qoe_forget(q, index);
	else if (ev == SKY_SUBS_EV_RELOAD)
		for (uint32_t i = 0; i < q->n_idx; i++)
			qoe_forget(q, i);
}

/* --- telemetry ------------------------------------------------------------------------------- */

static void
tel_half(struct rte_tel_data *d, const char *pfx, const struct sky_qoe_half *h)
{
	char k[64];

	snprintf(k, sizeof(k), "%s_samples", pfx);
	rte_tel_data_add_dict_u64(d, k, h->samples);
	snprintf(k, sizeof(k), "%s_min_us", pfx);
	rte_tel_data_add_dict_u64(d, k, h->min_us);
	snprintf(k, sizeof(k), "%s_p50_us", pfx);
	rte_tel_data_add_dict_u64(d, k, h->p50_us);
	snprintf(k, sizeof(k), "%s_p95_us", pfx);
	rte_tel_data_add_dict_u64(d, k, h->p95_us);
	snprintf(k, sizeof(k), "%s_p99_us", pfx);
	rte_tel_data_add_dict_u64(d, k, h->p99_us);
}

static int
tel_qoe(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sky_qoe *q = tel_q;
	struct sky_qoe_stats st;

	(void)cmd;
	if (q == NULL)
		return -1;
	if (params != NULL && *params != '\0') {
		/* /skygate/qoe,BEAM_INDEX: that beam's halves */
		struct sky_qoe_view v;
		uint64_t b;

		if (q->n_beams == 0 || sky_parse_u64(params, 0, q->n_beams - 1, &b) < 0)
			return -1;
		sky_qoe_beam(q, (unsigned int)b, now_us(), &v);
		rte_tel_data_start_dict(d);
		if (q->subs != NULL)
			rte_tel_data_add_dict_string(d, "beam",
						     sky_subs_beam(q->subs, (unsigned int)b).name);
		tel_half(d, "satellite", &v.half[0]);
		tel_half(d, "internet", &v.half[1]);
		rte_tel_data_add_dict_u64(d, "retrans_up_bp", v.retrans_bp[0]);
		rte_tel_data_add_dict_u64(d, "retrans_down_bp", v.retrans_bp[1]);
		return 0;
	}
	sky_qoe_stats(q, &st);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "enabled", q->p.enabled);
	rte_tel_data_add_dict_u64(d, "window_s", q->p.window_us / 1000000);
	rte_tel_data_add_dict_u64(d, "samples", st.samples);
	rte_tel_data_add_dict_u64(d, "counts_only", st.counts_only);
	rte_tel_data_add_dict_u64(d, "table_full", st.table_full);
	rte_tel_data_add_dict_u64(d, "subscribers", st.active);
	rte_tel_data_add_dict_u64(d, "subscribers_max", q->p.max_subs);
	rte_tel_data_add_dict_u64(d, "memory_bytes", sky_qoe_memory(q));
	rte_tel_data_add_dict_u64(d, "beams", q->n_beams);
	return 0;
}

/* --- Prometheus ------------------------------------------------------------------------------ */

static const char *
beam_name(const struct sky_qoe *q, unsigned int b, char *buf, size_t n)
{
	if (q->subs != NULL)
		snprintf(buf, n, "%s", sky_subs_beam(q->subs, b).name);
	else
		snprintf(buf, n, "%u", b);
	return buf;
}

static void
metrics_beams(struct sky_qoe *q, FILE *out, uint64_t now)
{
	static const uint64_t le[QOE_N_LE] = {QOE_PROM_LE};
	struct sky_qoe_view v[SKY_MAX_BEAMS];
	char name[SKY_NAME_MAX];

	for (unsigned int b = 0; b < q->n_beams; b++)
		sky_qoe_beam(q, b, now, &v[b]);
	fprintf(out, "# HELP skygate_beam_rtt_seconds Passive TCP/ICMP round-trip time per beam "
		     "and half of the path (satellite: gateway-terminal-gateway; internet: "
		     "gateway-server-gateway), since start.\n"
		     "# TYPE skygate_beam_rtt_seconds histogram\n");
	for (unsigned int b = 0; b < q->n_beams; b++) {
		const struct qoe_beam *qb = &q->beams[b];

		beam_name(q, b, name, sizeof(name));
		for (unsigned int h = 0; h < 2; h++) {
			for (unsigned int j = 0; j < QOE_N_LE; j++)
				fprintf(out,
					"skygate_beam_rtt_seconds_bucket{beam=\"%s\",half=\"%s\","
					"le=\"%g\"} %llu\n",
					name, half_names[h], (double)le[j] / 1e6,
					(unsigned long long)qb->cum[h][j]);
			fprintf(out,
				"skygate_beam_rtt_seconds_bucket{beam=\"%s\",half=\"%s\",le=\"+"
				"Inf\"} %llu\n"
				"skygate_beam_rtt_seconds_sum{beam=\"%s\",half=\"%s\"} %.6f\n"
				"skygate_beam_rtt_seconds_count{beam=\"%s\",half=\"%s\"} %llu\n",
				name, half_names[h], (unsigned long long)qb->count[h], name,
				half_names[h], (double)qb->sum_us[h] / 1e6, name, half_names[h],
				(unsigned long long)qb->count[h]);
		}
	}
	fprintf(out, "# HELP skygate_beam_rtt_min_seconds Lowest RTT per beam and half over "
		     "qoe.min_window (the path without queues).\n"
		     "# TYPE skygate_beam_rtt_min_seconds gauge\n");
	for (unsigned int b = 0; b < q->n_beams; b++)
		for (unsigned int h = 0; h < 2; h++)
			fprintf(out, "skygate_beam_rtt_min_seconds{beam=\"%s\",half=\"%s\"} %.6f\n",
				beam_name(q, b, name, sizeof(name)), half_names[h],
				(double)v[b].half[h].min_us / 1e6);
	fprintf(out, "# HELP skygate_beam_rtt_window_seconds RTT percentiles (stat p50, p95, "
		     "p99) per beam and half over qoe.window.\n"
		     "# TYPE skygate_beam_rtt_window_seconds gauge\n");
	for (unsigned int b = 0; b < q->n_beams; b++)
		for (unsigned int h = 0; h < 2; h++) {
			const struct sky_qoe_half *hf = &v[b].half[h];
			const uint32_t val[3] = {hf->p50_us, hf->p95_us, hf->p99_us};
			static const char *const stat[3] = {"p50", "p95", "p99"};

			beam_name(q, b, name, sizeof(name));
			for (unsigned int k = 0; k < 3; k++)
				fprintf(out,
					"skygate_beam_rtt_window_seconds{beam=\"%s\",half=\"%s\","
					"stat=\"%s\"} %.6f\n",
					name, half_names[h], stat[k], (double)val[k] / 1e6);
		}
	fprintf(out, "# HELP skygate_beam_tcp_retrans_ratio Share of TCP data segments "
		     "retransmitted per beam and direction over qoe.window.\n"
		     "# TYPE skygate_beam_tcp_retrans_ratio gauge\n");
	for (unsigned int b = 0; b < q->n_beams; b++)
		for (unsigned int d = 0; d < 2; d++)
			fprintf(out,
				"skygate_beam_tcp_retrans_ratio{beam=\"%s\",dir=\"%s\"} %.4f\n",
				beam_name(q, b, name, sizeof(name)), dir_names[d],
				(double)v[b].retrans_bp[d] / 10000.0);
	fprintf(out, "# HELP skygate_beam_tcp_segments_total TCP data segments seen by the "
		     "flow table per beam and direction.\n"
		     "# TYPE skygate_beam_tcp_segments_total counter\n");
	for (unsigned int b = 0; b < q->n_beams; b++)
		for (unsigned int d = 0; d < 2; d++)
			fprintf(out,
				"skygate_beam_tcp_segments_total{beam=\"%s\",dir=\"%s\"} %llu\n",
				beam_name(q, b, name, sizeof(name)), dir_names[d],
				(unsigned long long)q->beams[b].segs_total[d]);
	fprintf(out, "# HELP skygate_beam_tcp_retrans_total TCP data segments retransmitted "
		     "(sequence went backwards) per beam and direction.\n"
		     "# TYPE skygate_beam_tcp_retrans_total counter\n");
	for (unsigned int b = 0; b < q->n_beams; b++)
		for (unsigned int d = 0; d < 2; d++)
			fprintf(out,
				"skygate_beam_tcp_retrans_total{beam=\"%s\",dir=\"%s\"} %llu\n",
				beam_name(q, b, name, sizeof(name)), dir_names[d],
				(unsigned long long)q->beams[b].retrans_total[d]);
}

static void
metrics_subs(struct sky_qoe *q, FILE *out, uint64_t now)
{
	static const char *const stats[4] = {"min", "p50", "p95", "p99"};

	fprintf(out, "# HELP skygate_subscriber_rtt_seconds RTT per subscriber and half: min "
		     "over qoe.min_window, percentiles over qoe.window.\n"
		     "# TYPE skygate_subscriber_rtt_seconds gauge\n");
	for (uint32_t e = 0; e < q->n_used; e++) {
		struct sky_qoe_view v;

		if (q->ents[e].idx == QOE_NONE || sky_qoe_sub(q, q->ents[e].idx, now, &v) < 0)
			continue;
		for (unsigned int h = 0; h < 2; h++) {
			const uint32_t val[4] = {v.half[h].min_us, v.half[h].p50_us,
						 v.half[h].p95_us, v.half[h].p99_us};

			if (v.half[h].samples == 0 && v.half[h].min_us == 0)
				continue;
			for (unsigned int k = 0; k < 4; k++)
				fprintf(out,
					"skygate_subscriber_rtt_seconds{id=\"%u\",half=\"%s\","
					"stat=\"%s\"} %.6f\n",
					v.sub_id, half_names[h], stats[k], (double)val[k] / 1e6);
		}
	}
	fprintf(out, "# HELP skygate_subscriber_tcp_retrans_ratio Share of TCP data segments "
		     "retransmitted per subscriber and direction over qoe.window.\n"
		     "# TYPE skygate_subscriber_tcp_retrans_ratio gauge\n");
	for (uint32_t e = 0; e < q->n_used; e++) {
		struct sky_qoe_view v;

		if (q->ents[e].idx == QOE_NONE || sky_qoe_sub(q, q->ents[e].idx, now, &v) < 0)
			continue;
		for (unsigned int d = 0; d < 2; d++)
			if (v.segs[d] > 0)
				fprintf(out,
					"skygate_subscriber_tcp_retrans_ratio{id=\"%u\",dir=\"%s\"}"
					" "
					"%.4f\n",
					v.sub_id, dir_names[d], (double)v.retrans_bp[d] / 10000.0);
	}
	fprintf(out, "# HELP skygate_subscriber_qoe_score Quality of experience score 0..100 "
		     "per graded subscriber (README: Quality of experience).\n"
		     "# TYPE skygate_subscriber_qoe_score gauge\n");
	for (uint32_t e = 0; e < q->n_used; e++) {
		struct sky_qoe_view v;

		if (q->ents[e].idx == QOE_NONE || sky_qoe_sub(q, q->ents[e].idx, now, &v) < 0 ||
		    v.score < 0)
			continue;
		fprintf(out, "skygate_subscriber_qoe_score{id=\"%u\"} %d\n", v.sub_id, v.score);
	}
}

static void
metrics(void *arg, FILE *out)
{
	struct sky_qoe *q = arg;
	uint64_t now = now_us();

	fprintf(out,
		"# HELP skygate_qoe_samples_total RTT samples taken in by qoe.\n"
		"# TYPE skygate_qoe_samples_total counter\n"
		"skygate_qoe_samples_total %llu\n"
		"# HELP skygate_qoe_table_full_total Samples dropped: the subscriber table "
		"(qoe.subscribers) had no idle entry.\n"
		"# TYPE skygate_qoe_table_full_total counter\n"
		"skygate_qoe_table_full_total %llu\n"
		"# HELP skygate_qoe_subscribers Subscribers with RTT figures kept.\n"
		"# TYPE skygate_qoe_subscribers gauge\n"
		"skygate_qoe_subscribers %u\n"
		"# HELP skygate_qoe_memory_bytes Memory of the qoe tables.\n"
		"# TYPE skygate_qoe_memory_bytes gauge\n"
		"skygate_qoe_memory_bytes %zu\n",
		(unsigned long long)q->st.samples, (unsigned long long)q->st.table_full,
		q->st.active, sky_qoe_memory(q));
	metrics_beams(q, out, now);
	if (q->p.per_sub_metrics)
		metrics_subs(q, out, now);
}

/* --- registration ---------------------------------------------------------------------------- */

static void
forget(struct sky_qoe *q)
{
	if (tel_q == q)
		tel_q = NULL;
}

int
sky_qoe_register(struct sky_qoe *q)
{
	int rc;

	if (q == NULL)
		return -EINVAL;
	if (q->registered || !q->p.enabled)
		return 0;
	rc = sky_ctl_register("qoe show", "",
			      "passive RTT (satellite and internet halves), retransmissions and "
			      "grades: parameters, counters, per beam",
			      0, cmd_show, q);
	if (rc < 0)
		return rc;
	if (q->subs != NULL) {
		rc = sky_ctl_extend("subscriber show", ext_sub_show, q);
		if (rc == 0)
			rc = sky_ctl_extend("subscriber top", ext_sub_top, q);
		if (rc == 0)
			rc = sky_ctl_extend("beam show", ext_beam_show, q);
		if (rc == -ENOENT)
			SKY_LOG(WARNING, "qoe: no subscriber/beam commands to extend");
		else if (rc < 0)
			return rc;
		rc = sky_subs_top_order(q->subs, "rtt", rank_rtt, q);
		if (rc == 0)
			rc = sky_subs_top_order(q->subs, "retrans", rank_retrans, q);
		if (rc == 0)
			rc = sky_subs_listen(q->subs, listener, q);
		if (rc < 0)
			return rc;
	}
	rc = sky_metrics_register("qoe", metrics, q);
	if (rc < 0)
		return rc;
	tel_q = q;
	/* -EEXIST when an earlier instance registered it in this process: it reads tel_q */
	rte_telemetry_register_cmd("/skygate/qoe", tel_qoe,
				   "Passive RTT summary; with a beam index: that beam's halves");
	q->on_destroy = forget;
	q->registered = 1;
	SKY_LOG(INFO,
		"qoe: passive RTT for up to %u subscribers and %u beams, window %llu s, %.1f MB",
		q->p.max_subs, q->n_beams, (unsigned long long)(q->p.window_us / 1000000),
		(double)sky_qoe_memory(q) / 1e6);
	return 0;
}

int
sky_qoe_attach(struct sky_qoe *q, struct sky_flow *f)
{
	if (!sky_qoe_enabled(q) || f == NULL || !sky_flow_enabled(f))
		return 0;
	return sky_flow_on_rtt(f, sky_qoe_on_rtt, q);
}
