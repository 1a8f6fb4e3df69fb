/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shaper control plane glue: `shaper show`, the shaper fields of `beam show` and
 * `subscriber show`, the subscriber-model listener (plan/beam changes) and validator
 * (rates above the port speed), the periodic capacity split, telemetry /skygate/shaper
 * and Prometheus metrics.
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

#include "shaper_priv.h"

static struct sky_shaper *tel_sh; /* telemetry callbacks have no argument */

static const char *const aqm_names[] = {"none", "codel", "red"};

static json_t *
stats_json(const struct sky_shaper *sh, const struct sky_shaper_stats *st, unsigned int n_cls,
	   bool with_up)
{
	json_t *o = json_object();
	json_t *drops = json_object();
	json_t *cls = json_array();

	for (unsigned int i = 0; i < SKY_SHAPER_CTR_MAX; i++) {
		if (!with_up && (i == SKY_SHAPER_UP_PASS_PKTS || i == SKY_SHAPER_UP_PASS_BYTES))
			continue;
		json_object_set_new(o, sky_shaper_ctr_names[i],
				    json_integer((json_int_t)st->ctr[i]));
	}
	json_object_set_new(drops, sky_drop_name(SKY_DROP_QUEUE_TAIL),
			    json_integer((json_int_t)st->ctr[SKY_SHAPER_DROP_TAIL]));
	json_object_set_new(drops, sky_drop_name(SKY_DROP_QUEUE_AQM),
			    json_integer((json_int_t)st->ctr[SKY_SHAPER_DROP_AQM]));
	json_object_set_new(drops, sky_drop_name(SKY_DROP_QUEUE_DELAY),
			    json_integer((json_int_t)st->ctr[SKY_SHAPER_DROP_DELAY]));
	json_object_set_new(drops, sky_drop_name(SKY_DROP_POLICE),
			    json_integer((json_int_t)st->ctr[SKY_SHAPER_DROP_POLICE]));
	json_object_set_new(o, "dropped", drops);
	for (unsigned int c = 0; c < n_cls; c++)
		json_array_append_new(cls, json_pack("{s:I,s:I}", "tail_drops",
						     (json_int_t)st->cls_tail[c], "aqm_drops",
						     (json_int_t)st->cls_aqm[c]));
	json_object_set_new(o, "classes", cls);
	json_object_set_new(o, "queued_packets", json_integer((json_int_t)st->queued_pkts));
	json_object_set_new(o, "queued_bytes", json_integer((json_int_t)st->queued_bytes));
	(void)sh;
	return o;
}

/* measured rate from the last call on the same object (sent bytes, tsc) */
static uint64_t
measured_bps(const struct sky_shaper *sh, uint64_t *prev, uint64_t bytes, uint64_t now)
{
	uint64_t r = 0;

	if (prev[1] != 0 && now > prev[1] && bytes >= prev[0])
		r = (uint64_t)((unsigned __int128)(bytes - prev[0]) * 8 * sh->hz / (now - prev[1]));
	prev[0] = bytes;
	prev[1] = now;
	return r;
}

/* queueing delay of the last interval and since start */
static json_t *
delay_json(const struct sky_shaper *sh, enum sky_shaper_delay_of of, unsigned int idx)
{
	struct sky_shaper_delay last, total;

	if (sky_shaper_delay(sh, of, idx, &last, &total) < 0)
		return json_null();
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "interval_us",
			 (json_int_t)SKY_SHAPER_DELAY_INTERVAL_US, "packets",
			 (json_int_t)last.count, "p50_us", (json_int_t)last.p50_us, "p99_us",
			 (json_int_t)last.p99_us, "max_us", (json_int_t)last.max_us,
			 "total_packets", (json_int_t)total.count, "total_p50_us",
			 (json_int_t)total.p50_us, "total_p99_us", (json_int_t)total.p99_us,
			 "total_max_us", (json_int_t)total.max_us);
}

static json_t *
beam_json(struct sky_shaper *sh, unsigned int b)
{
	struct sky_shaper_stats st;
	json_t *o, *shares = json_array();
	uint64_t now = rte_rdtsc();

	sky_shaper_beam_stats(sh, b, &st);
	o = stats_json(sh, &st, sh->n_classes, true);
	json_object_set_new(o, "beam", json_string(sh->cp_beams[b].name));
	json_object_set_new(o, "down_capacity_bps",
			    json_integer((json_int_t)sh->cp_beams[b].down_bps));
	json_object_set_new(o, "up_capacity_bps", json_integer((json_int_t)sh->cp_beams[b].up_bps));
	json_object_set_new(o, "down_share_sum_bps", json_integer((json_int_t)st.rate_bps));
	json_object_set_new(o, "up_share_sum_bps", json_integer((json_int_t)st.up_rate_bps));
	json_object_set_new(
		o, "rate_bps",
		json_integer((json_int_t)measured_bps(sh, sh->beam_rate_prev[b],
						      st.ctr[SKY_SHAPER_SENT_BYTES], now)));
	json_object_set_new(o, "active_subscribers", json_integer(st.active));
	for (unsigned int w = 0; w < sh->n_workers; w++)
		for (unsigned int out = 0; out < sh->n_out; out++)
			json_array_append_new(
				shares,
				json_pack("{s:i,s:i,s:I}", "worker", w, "out", out, "down_bps",
					  (json_int_t)sky_shaper_share_bps(sh, w, out, b)));
	json_object_set_new(o, "shares", shares);
	json_object_set_new(o, "delay", delay_json(sh, SKY_SHAPER_DELAY_BEAM, b));
	return o;
}

static json_t *
sub_json(struct sky_shaper *sh, uint32_t idx, uint16_t plan)
{
	struct sky_shaper_stats st;
	json_t *o;
	uint32_t k = idx == SKY_SUB_NONE ? sh->cap : idx;

	if (sky_shaper_sub_stats(sh, idx, &st) < 0)
		return json_object();
	o = stats_json(sh, &st, sh->n_classes, true);
	json_object_set_new(o, "plan_down_bps",
			    json_integer((json_int_t)sh->cp_plans[plan].down_bps));
	json_object_set_new(o, "plan_up_bps", json_integer((json_int_t)sh->cp_plans[plan].up_bps));
	json_object_set_new(
		o, "rate_bps",
		json_integer((json_int_t)measured_bps(sh, &sh->cp_subrate[2 * k],
						      st.ctr[SKY_SHAPER_SENT_BYTES], rte_rdtsc())));
	json_object_set_new(o, "active", json_boolean(st.active != 0));
	return o;
}

/* --- commands --------------------------------------------------------------------------- */

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_shaper *sh = arg;
	json_t *o = json_object(), *beams = json_array(), *workers = json_array();
	json_t *cls = json_array();
	struct sky_shaper_stats un;

	(void)argv;
	if (argc > 0) {
		json_decref(o);
		json_decref(beams);
		json_decref(workers);
		json_decref(cls);
		return sky_ctl_fail(call, "shaper show: takes no arguments");
	}
	json_object_set_new(o, "enabled", json_boolean(sh->p.enabled));
	json_object_set_new(o, "period_us", json_integer((json_int_t)sh->p.period_us));
	json_object_set_new(o, "rtt_us", json_integer((json_int_t)sh->p.rtt_us));
	json_object_set_new(o, "beam_burst_us", json_integer((json_int_t)sh->p.beam_burst_us));
	json_object_set_new(o, "port_rate_bps", json_integer((json_int_t)sh->p.port_rate_bps));
	json_object_set_new(o, "frame_overhead", json_integer(sh->p.frame_overhead));
	json_object_set_new(o, "max_active_per_worker", json_integer(sh->p.max_active_per_worker));
	json_object_set_new(o, "max_queued_per_worker", json_integer(sh->p.max_queued_per_worker));
	json_object_set_new(o, "max_flows_per_worker", json_integer(sh->p.max_flows_per_worker));
	json_object_set_new(o, "max_delay_us", json_integer((json_int_t)sh->p.max_delay_us));
	for (unsigned int c = 0; c < sh->n_classes; c++)
		json_array_append_new(
			cls, json_pack("{s:i,s:s,s:I,s:I,s:o}", "queue", sh->p.cls[c].queue_pkts,
				       "aqm", aqm_names[sh->cls[c].aqm], "target_us",
				       (json_int_t)(((uint64_t)sh->cls[c].target_ts << TS_SHIFT) *
						    1000000 / sh->hz),
				       "interval_us",
				       (json_int_t)(((uint64_t)sh->cls[c].interval_ts << TS_SHIFT) *
						    1000000 / sh->hz),
				       "delay", delay_json(sh, SKY_SHAPER_DELAY_CLASS, c)));
	json_object_set_new(o, "classes", cls);
	for (unsigned int b = 0; b < sh->n_beams; b++)
		json_array_append_new(beams, beam_json(sh, b));
	json_object_set_new(o, "beams", beams);
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		const struct shp_worker *w = &sh->w[i];
		struct sky_shaper_ctr_pool cp;
		json_t *wo;

		sky_shaper_ctr_pool(sh, i, &cp);
		json_array_append_new(
			workers,
			wo = json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "worker", i,
				       "slots_in_use", (json_int_t)(w->n_slots - 1 - w->n_free),
				       "slots", (json_int_t)(w->n_slots - 1), "queued_packets",
				       (json_int_t)w->queued, "slot_pool_full_drops",
				       (json_int_t)w->pool_full, "buffer_full_drops",
				       (json_int_t)w->buf_full, "flow_queues_in_use",
				       (json_int_t)(w->n_fq - w->n_slots - w->fq_n_free),
				       "flow_queues", (json_int_t)(w->n_fq - w->n_slots),
				       "flow_pool_full_drops", (json_int_t)w->fq_full,
				       "delay_drops", (json_int_t)w->delay_drops));
		json_object_set_new(wo, "counter_blocks_in_use", json_integer(cp.blocks_in_use));
		json_object_set_new(wo, "counter_blocks_ready", json_integer(cp.blocks_ready));
		json_object_set_new(wo, "counter_block_misses",
				    json_integer((json_int_t)cp.misses));
		json_object_set_new(wo, "uncounted",
				    stats_json(sh, &cp.uncounted, sh->n_classes, false));
	}
	json_object_set_new(o, "workers", workers);
	sky_shaper_sub_stats(sh, SKY_SUB_NONE, &un);
	json_object_set_new(o, "unknown_aggregate", stats_json(sh, &un, sh->n_classes, true));
	*result = o;
	return 0;
}

/* `beam show NAME`: adds "shaper": {...} */
static void
ext_beam_show(void *arg, int argc, char **argv, json_t *result)
{
	struct sky_shaper *sh = arg;
	int b;

	if (argc < 1 || !json_is_object(result) || sh->subs == NULL)
		return;
	b = sky_subs_beam_index(sh->subs, argv[0]);
	if (b < 0 || (unsigned int)b >= sh->n_beams)
		return;
	json_object_set_new(result, "shaper", beam_json(sh, (unsigned int)b));
}

/* `subscriber show ID`: adds "shaper": {...} */
static void
ext_sub_show(void *arg, int argc, char **argv, json_t *result)
{
	struct sky_shaper *sh = arg;
	struct sky_sub_info info;
	uint64_t id;

	if (argc < 1 || !json_is_object(result) || sh->subs == NULL)
		return;
	if (sky_parse_u64(argv[0], 1, UINT32_MAX, &id) < 0 ||
	    sky_subs_get(sh->subs, (uint32_t)id, &info) < 0 || info.idx >= sh->cap)
		return;
	json_object_set_new(result, "shaper", sub_json(sh, info.idx, info.plan));
}

/* --- subscriber model hooks ---------------------------------------------------------------- */

static int
validator(void *arg, enum sky_subs_event ev, uint32_t index, const void *newval, char *err,
	  size_t errlen)
{
	struct sky_shaper *sh = arg;

	if (ev == SKY_SUBS_EV_PLAN)
		return sky_shaper_check_plan(sh, newval, err, errlen);
	if (ev == SKY_SUBS_EV_BEAM) {
		if (index >= sh->n_beams) {
			snprintf(err, errlen, "beam %u: the shaper knows %u beams", index,
				 sh->n_beams);
			return -1;
		}
		return sky_shaper_check_beam(sh, newval, err, errlen);
	}
	return 0;
}

static void
listener(void *arg, enum sky_subs_event ev, uint32_t index, const struct sky_sub_info *info)
{
	struct sky_shaper *sh = arg;
	int rc = 0;

	(void)info;
	if (ev == SKY_SUBS_EV_SUB_DEL && index < sh->cap) {
		/* the model synchronised RCU: no new packet of idx; a new holder of the index
		 * starts with zero counters and a full upstream bucket */
		shp_forget_sub(sh, index);
		return;
	}
	if (ev == SKY_SUBS_EV_PLAN) {
		struct sky_plan p = sky_subs_plan(sh->subs, index);

		rc = sky_shaper_set_plan(sh, index, &p);
	} else if (ev == SKY_SUBS_EV_BEAM) {
		struct sky_beam b = sky_subs_beam(sh->subs, index);

		rc = sky_shaper_set_beam(sh, index, &b);
	}
	/* subscriber add/del/set need nothing: packets carry plan and beam, and a
	 * subscriber's slot takes a new plan at once and a new beam when its queues drain */
	if (rc < 0)
		SKY_LOG(ERR, "shaper: could not apply %s %u (validator should have refused it)",
			ev == SKY_SUBS_EV_PLAN ? "plan" : "beam", index);
}

static void
periodic(void *arg, uint64_t now_tsc)
{
	sky_shaper_rebalance(arg, now_tsc);
}

/* --- telemetry ------------------------------------------------------------------------------- */

static int
tel_shaper(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sky_shaper *sh = tel_sh;
	uint64_t queued = 0, active = 0, pool_full = 0, aqm = 0, delay = 0, fq_full = 0;
	uint64_t ctr_miss = 0;

	(void)cmd;
	if (sh == NULL)
		return -1;
	if (params != NULL && *params != '\0') {
		/* /skygate/shaper,BEAM_INDEX: that beam's counters */
		uint64_t b;
		struct sky_shaper_stats st;

		if (sky_parse_u64(params, 0, sh->n_beams - 1, &b) < 0)
			return -1;
		sky_shaper_beam_stats(sh, (unsigned int)b, &st);
		rte_tel_data_start_dict(d);
		rte_tel_data_add_dict_string(d, "beam", sh->cp_beams[b].name);
		for (unsigned int i = 0; i < SKY_SHAPER_CTR_MAX; i++)
			rte_tel_data_add_dict_u64(d, sky_shaper_ctr_names[i], st.ctr[i]);
		rte_tel_data_add_dict_u64(d, "queued_packets", st.queued_pkts);
		rte_tel_data_add_dict_u64(d, "down_share_sum_bps", st.rate_bps);
		rte_tel_data_add_dict_u64(d, "active_subscribers", st.active);
		{
			struct sky_shaper_delay dl;

			sky_shaper_delay(sh, SKY_SHAPER_DELAY_BEAM, (unsigned int)b, &dl, NULL);
			rte_tel_data_add_dict_u64(d, "delay_p50_us", dl.p50_us);
			rte_tel_data_add_dict_u64(d, "delay_p99_us", dl.p99_us);
			rte_tel_data_add_dict_u64(d, "delay_max_us", dl.max_us);
		}
		return 0;
	}
	for (unsigned int i = 0; i < sh->n_workers; i++) {
		queued += sh->w[i].queued;
		active += sh->w[i].n_slots - 1 - sh->w[i].n_free;
		pool_full += sh->w[i].pool_full;
		aqm += sh->w[i].aqm_drops;
		delay += sh->w[i].delay_drops;
		fq_full += sh->w[i].fq_full;
		ctr_miss += __atomic_load_n(&sh->w[i].ctr_miss, __ATOMIC_RELAXED);
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "enabled", sh->p.enabled);
	rte_tel_data_add_dict_u64(d, "beams", sh->n_beams);
	rte_tel_data_add_dict_u64(d, "queued_packets", queued);
	rte_tel_data_add_dict_u64(d, "slots_in_use", active);
	rte_tel_data_add_dict_u64(d, "slot_pool_full_drops", pool_full);
	rte_tel_data_add_dict_u64(d, "aqm_drops", aqm);
	rte_tel_data_add_dict_u64(d, "delay_drops", delay);
	rte_tel_data_add_dict_u64(d, "flow_pool_full_drops", fq_full);
	rte_tel_data_add_dict_u64(d, "counter_block_misses", ctr_miss);
	for (unsigned int c = 0; c < sh->n_classes; c++) {
		struct sky_shaper_delay dl;
		char k[32];

		sky_shaper_delay(sh, SKY_SHAPER_DELAY_CLASS, c, &dl, NULL);
		snprintf(k, sizeof(k), "class%u_delay_p99_us", c);
		rte_tel_data_add_dict_u64(d, k, dl.p99_us);
	}
	return 0;
}

/* --- Prometheus --------------------------------------------------------------------------------
 */

/* queueing delay as Prometheus histograms, per beam and per class (seconds) */
static void
metrics_delay(struct sky_shaper *sh, FILE *out)
{
	static const uint64_t le_us[] = {100,	 250,	 500,	  1000,	   2000,
					 5000,	 10000,	 20000,	  50000,   100000,
					 200000, 500000, 1000000, 2000000, 5000000};
	enum { N_LE = sizeof(le_us) / sizeof(le_us[0]) };
	static const char *const what[2] = {"beam", "class"};

	for (int of = 0; of < 2; of++) {
		unsigned int n = of == 0 ? sh->n_beams : sh->n_classes;

		fprintf(out,
			"# HELP skygate_shaper_%s_delay_seconds Queueing delay (enqueue to "
			"dequeue) of the packets sent, per %s.\n"
			"# TYPE skygate_shaper_%s_delay_seconds histogram\n",
			what[of], what[of], what[of]);
		for (unsigned int i = 0; i < n; i++) {
			uint64_t cum[N_LE], count, sum_us;
			char label[96];

			if (sky_shaper_delay_buckets(sh, (enum sky_shaper_delay_of)of, i, le_us,
						     N_LE, cum, &count, &sum_us) < 0)
				continue;
			if (of == 0)
				snprintf(label, sizeof(label), "beam=\"%s\"", sh->cp_beams[i].name);
			else
				snprintf(label, sizeof(label), "class=\"%u\"", i);
			for (unsigned int j = 0; j < N_LE; j++)
				fprintf(out,
					"skygate_shaper_%s_delay_seconds_bucket{%s,le=\"%g\"} "
					"%llu\n",
					what[of], label, (double)le_us[j] / 1e6,
					(unsigned long long)cum[j]);
			fprintf(out,
				"skygate_shaper_%s_delay_seconds_bucket{%s,le=\"+Inf\"} %llu\n"
				"skygate_shaper_%s_delay_seconds_sum{%s} %.6f\n"
				"skygate_shaper_%s_delay_seconds_count{%s} %llu\n",
				what[of], label, (unsigned long long)count, what[of], label,
				(double)sum_us / 1e6, what[of], label, (unsigned long long)count);
		}
	}
}

static void
metrics(void *arg, FILE *out)
{
	struct sky_shaper *sh = arg;
	struct sky_shaper_stats st[SKY_MAX_BEAMS];

	for (unsigned int b = 0; b < sh->n_beams; b++)
		sky_shaper_beam_stats(sh, b, &st[b]);
	for (unsigned int i = 0; i < SKY_SHAPER_CTR_MAX; i++) {
		fprintf(out, "# HELP skygate_shaper_beam_%s_total Shaper %s per beam.\n",
			sky_shaper_ctr_names[i], sky_shaper_ctr_names[i]);
		fprintf(out, "# TYPE skygate_shaper_beam_%s_total counter\n",
			sky_shaper_ctr_names[i]);
		for (unsigned int b = 0; b < sh->n_beams; b++)
			fprintf(out, "skygate_shaper_beam_%s_total{beam=\"%s\"} %llu\n",
				sky_shaper_ctr_names[i], sh->cp_beams[b].name,
				(unsigned long long)st[b].ctr[i]);
	}
	fprintf(out, "# HELP skygate_shaper_beam_queued_packets Packets queued per beam.\n"
		     "# TYPE skygate_shaper_beam_queued_packets gauge\n");
	for (unsigned int b = 0; b < sh->n_beams; b++)
		fprintf(out, "skygate_shaper_beam_queued_packets{beam=\"%s\"} %llu\n",
			sh->cp_beams[b].name, (unsigned long long)st[b].queued_pkts);
	fprintf(out, "# HELP skygate_shaper_beam_active_subscribers Backlogged subscribers.\n"
		     "# TYPE skygate_shaper_beam_active_subscribers gauge\n");
	for (unsigned int b = 0; b < sh->n_beams; b++)
		fprintf(out, "skygate_shaper_beam_active_subscribers{beam=\"%s\"} %u\n",
			sh->cp_beams[b].name, st[b].active);
	fprintf(out, "# HELP skygate_shaper_beam_capacity_bps Configured forward capacity.\n"
		     "# TYPE skygate_shaper_beam_capacity_bps gauge\n");
	for (unsigned int b = 0; b < sh->n_beams; b++)
		fprintf(out,
			"skygate_shaper_beam_capacity_bps{beam=\"%s\",dir=\"down\"} %llu\n"
			"skygate_shaper_beam_capacity_bps{beam=\"%s\",dir=\"up\"} %llu\n",
			sh->cp_beams[b].name, (unsigned long long)sh->cp_beams[b].down_bps,
			sh->cp_beams[b].name, (unsigned long long)sh->cp_beams[b].up_bps);
	fprintf(out, "# HELP skygate_shaper_stats_block_misses_total Downstream counts of "
		     "subscribers that found no counter block ready (counted in shaper show's "
		     "uncounted).\n"
		     "# TYPE skygate_shaper_stats_block_misses_total counter\n");
	for (unsigned int i = 0; i < sh->n_workers; i++)
		fprintf(out, "skygate_shaper_stats_block_misses_total{worker=\"%u\"} %llu\n", i,
			(unsigned long long)__atomic_load_n(&sh->w[i].ctr_miss, __ATOMIC_RELAXED));
	metrics_delay(sh, out);
}

struct sky_shaper *
sky_shaper_create(const struct sky_cfg *cfg, struct sky_subs *subs, unsigned int n_workers,
		  unsigned int n_out_ports, struct sky_cfg_err *err)
{
	struct sky_shaper_params p;
	struct sky_plan plans[SKY_MAX_PLANS];
	struct sky_beam beams[SKY_MAX_BEAMS];
	unsigned int n_plans, n_beams;
	struct sky_shaper *sh;
	char msg[384];

	sky_shaper_params_default(&p);
	p.max_queued_per_worker = 0; /* 0: not in the config, derived below */
	if (sky_shaper_parse_config(cfg, &p, err) < 0)
		return NULL;
	p.n_workers = n_workers ? n_workers : 1;
	if (p.max_queued_per_worker == 0) {
		/* queued mbufs come from the daemon's pool (mempool.mbufs, validated by the
		 * gateway, default 16383): the workers' queues together hold at most half */
		const struct sky_cfg_node *mp =
			sky_cfg_get(sky_cfg_get(cfg->root, "mempool"), "mbufs");
		uint64_t mbufs = 16383;

		if (mp != NULL && sky_cfg_str(mp) != NULL)
			(void)sky_parse_u64(sky_cfg_str(mp), 1, UINT32_MAX, &mbufs);
		p.max_queued_per_worker = (uint32_t)(mbufs / 2 / p.n_workers);
		if (p.max_queued_per_worker < 64)
			p.max_queued_per_worker = 64;
	}
	p.n_out_ports = n_out_ports ? n_out_ports : 1;
	p.n_classes = sky_subs_n_classes(subs) ? sky_subs_n_classes(subs) : 1;
	if (p.n_classes > SKY_MAX_CLASSES)
		p.n_classes = SKY_MAX_CLASSES;
	p.sub_capacity = sky_subs_capacity(subs);
	p.unknown_plan = sky_subs_unknown_plan(subs);
	n_plans = sky_subs_n_plans(subs);
	n_beams = sky_subs_n_beams(subs);
	if (n_plans == 0 || n_beams == 0) {
		sky_cfg_fail(err, cfg, NULL, "shaping: needs at least one plan and one beam");
		return NULL;
	}
	for (unsigned int i = 0; i < n_plans; i++)
		plans[i] = sky_subs_plan(subs, i);
	for (unsigned int i = 0; i < n_beams; i++)
		beams[i] = sky_subs_beam(subs, i);
	for (unsigned int i = 0; i < n_plans; i++) {
		struct sky_shaper tmp = {.p = p};

		if (sky_shaper_check_plan(&tmp, &plans[i], msg, sizeof(msg)) < 0) {
			const struct sky_cfg_node *pn =
				sky_cfg_get(sky_cfg_get(cfg->root, "plans"), plans[i].name);

			sky_cfg_fail(err, cfg, pn, "%s", msg);
			return NULL;
		}
	}
	for (unsigned int i = 0; i < n_beams; i++) {
		struct sky_shaper tmp = {.p = p};

		if (sky_shaper_check_beam(&tmp, &beams[i], msg, sizeof(msg)) < 0) {
			const struct sky_cfg_node *bn =
				sky_cfg_get(sky_cfg_get(cfg->root, "beams"), beams[i].name);

			sky_cfg_fail(err, cfg, bn, "%s", msg);
			return NULL;
		}
	}
	sh = sky_shaper_create_params(&p, plans, n_plans, beams, n_beams, msg, sizeof(msg));
	if (sh == NULL) {
		sky_cfg_fail(err, cfg, sky_cfg_get(cfg->root, "shaping"), "%s", msg);
		return NULL;
	}
	sh->subs = subs;
	return sh;
}

/* --- registration --------------------------------------------------------------------------------
 */

static void forget(struct sky_shaper *sh);

int
sky_shaper_register(struct sky_shaper *sh)
{
	int rc;

	if (sh == NULL)
		return -EINVAL;
	if (sh->registered)
		return 0;
	rc = sky_ctl_register("shaper show", "",
			      "shaping state: parameters, beams, shares, "
			      "queues, drops",
			      0, cmd_show, sh);
	if (rc < 0)
		return rc;
	/* the subscriber model registers these first; without them there is nothing to extend */
	rc = sky_ctl_extend("beam show", ext_beam_show, sh);
	if (rc == 0)
		rc = sky_ctl_extend("subscriber show", ext_sub_show, sh);
	if (rc == -ENOENT)
		SKY_LOG(WARNING, "shaper: no beam/subscriber show command to extend");
	else if (rc < 0)
		return rc;
	if (sh->subs != NULL) {
		rc = sky_subs_validate_hook(sh->subs, validator, sh);
		if (rc == 0)
			rc = sky_subs_listen(sh->subs, listener, sh);
		if (rc < 0)
			return rc;
	}
	rc = sky_periodic_register("shaper rebalance", sh->p.period_us, periodic, sh);
	if (rc < 0)
		return rc;
	rc = sky_metrics_register("shaper", metrics, sh);
	if (rc < 0)
		return rc;
	tel_sh = sh;
	/* -EEXIST when a previous shaper registered it in this process: it reads tel_sh */
	rte_telemetry_register_cmd("/skygate/shaper", tel_shaper,
				   "Shaper summary; with a beam index: that beam's counters");
	sh->registered = 1;
	sh->on_destroy = forget;
	return 0;
}

static void
forget(struct sky_shaper *sh)
{
	if (tel_sh == sh)
		tel_sh = NULL;
}
