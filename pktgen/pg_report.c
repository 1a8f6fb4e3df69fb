/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End of run: sum the per-flow counters per direction, class, country and subscriber,
 * write the JSON report and print a summary. Control path, after the poller stopped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <rte_ethdev.h>

#include "pg_gen.h"

static const char *const dir_name[2] = {"up", "down"};

struct agg {
	uint64_t tx, tx_bytes, rx, rx_bytes, dup, reord, lat_sum, lat_max, flows;
};

static void
agg_add(struct agg *a, const struct pg_flow *f, const struct pg_rxf *x)
{
	a->tx += f->tx_pkts;
	a->tx_bytes += f->tx_bytes;
	a->rx += x->sq.rx;
	a->rx_bytes += x->rx_bytes;
	a->dup += x->sq.dup;
	a->reord += x->sq.reord;
	a->lat_sum += x->lat_sum;
	if (x->lat_max > a->lat_max)
		a->lat_max = x->lat_max;
	a->flows++;
}

static void
agg_sum(struct agg *a, const struct agg *b)
{
	a->tx += b->tx;
	a->tx_bytes += b->tx_bytes;
	a->rx += b->rx;
	a->rx_bytes += b->rx_bytes;
	a->dup += b->dup;
	a->reord += b->reord;
	a->lat_sum += b->lat_sum;
	if (b->lat_max > a->lat_max)
		a->lat_max = b->lat_max;
	a->flows += b->flows;
}

/* sent minus distinct received; never negative */
static uint64_t
agg_lost(const struct agg *a)
{
	uint64_t uniq = a->rx - a->dup;
	return a->tx > uniq ? a->tx - uniq : 0;
}

static double
cyc_us(const struct pg_run *r, uint64_t cyc)
{
	return (double)cyc * 1e6 / (double)r->tsc_hz;
}

static json_t *
agg_json(const struct pg_run *r, const struct agg *a, const uint64_t *hist)
{
	double secs = r->elapsed_s > 0 ? r->elapsed_s : 1;
	uint64_t lost = agg_lost(a);
	uint64_t uniq = a->rx - a->dup;
	json_t *lat = json_pack("{s:f, s:f}", "mean", uniq ? cyc_us(r, a->lat_sum / a->rx) : 0.0,
				"max", cyc_us(r, a->lat_max));
	if (hist) {
		json_object_set_new(lat, "p50",
				    json_real(cyc_us(r, pg_hist_quantile(hist, 0.5, a->lat_max))));
		json_object_set_new(lat, "p99",
				    json_real(cyc_us(r, pg_hist_quantile(hist, 0.99, a->lat_max))));
		json_object_set_new(
			lat, "p999",
			json_real(cyc_us(r, pg_hist_quantile(hist, 0.999, a->lat_max))));
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:o}",
			 "flows", (json_int_t)a->flows, "tx_pkts", (json_int_t)a->tx, "tx_bytes",
			 (json_int_t)a->tx_bytes, "rx_pkts", (json_int_t)a->rx, "rx_bytes",
			 (json_int_t)a->rx_bytes, "loss_ratio",
			 a->tx ? (double)lost / (double)a->tx : 0.0, "lost", (json_int_t)lost,
			 "reordered", (json_int_t)a->reord, "duplicated", (json_int_t)a->dup,
			 "tx_pps", (double)a->tx / secs, "tx_mbps",
			 (double)a->tx_bytes * 8e-6 / secs, "rx_pps", (double)a->rx / secs,
			 "rx_mbps", (double)a->rx_bytes * 8e-6 / secs, "latency_us", lat);
}

struct sub_agg {
	struct agg d[2];
};

struct top_ent {
	uint64_t lost;
	uint32_t sub;
};

static int
top_cmp(const void *a, const void *b)
{
	const struct top_ent *x = a, *y = b;
	if (x->lost != y->lost)
		return x->lost < y->lost ? 1 : -1;
	return x->sub < y->sub ? -1 : x->sub > y->sub;
}

double
pg_run_loss(const struct pg_run *r, uint64_t *tx, uint64_t *lost)
{
	struct agg a = {0};
	for (uint32_t i = 0; i < r->n_flows; i++)
		agg_add(&a, &r->flows[i], &r->rxf[i]);
	*tx = a.tx;
	*lost = agg_lost(&a);
	return a.tx ? (double)*lost / (double)a.tx : 0;
}

static json_t *
opts_json(const struct pg_run *r)
{
	const struct pg_opts *o = r->o;
	static const char *const sz[] = {"fixed", "imix", "range"};
	static const char *const ru[] = {"max", "pps", "bit/s"};
	static const char *const dn[] = {"up", "down", "both"};
	json_t *cls = json_object(), *rem = json_object();
	for (unsigned int i = 0; i < o->classes.n; i++)
		json_object_set_new(cls, o->classes.name[i], json_real(o->classes.weight[i]));
	for (unsigned int i = 0; i < o->remote.n; i++)
		json_object_set_new(rem, o->remote.name[i], json_real(o->remote.weight[i]));
	const struct pg_rate *rt = o->sub_rate.unit ? &o->sub_rate : &o->rate;
	return json_pack("{s:s?, s:i, s:i, s:i, s:s, s:{s:s, s:i, s:i}, s:{s:s, s:s, s:f}, "
			 "s:f, s:i, s:o, s:o, s:I, s:i, s:f}",
			 "subs", o->subs_path, "subscribers", (int)r->subs.n, "flows",
			 (int)r->n_flows, "flows_per_sub", (int)o->flows_per_sub, "direction",
			 dn[o->direction], "size", "mode", sz[o->size.mode], "lo", o->size.lo, "hi",
			 o->size.hi, "rate", "scope", o->sub_rate.unit ? "per_subscriber" : "total",
			 "unit", ru[rt->unit], "value", rt->value, "duration_s", o->duration_s,
			 "drain_ms", (int)o->drain_ms, "classes", cls, "remote_countries", rem,
			 "seed", (json_int_t)o->seed, "burst", (int)o->burst, "flow_v6",
			 o->flow_v6);
}

int
pg_report_write(struct pg_run *r, const char *path)
{
	const struct pg_opts *o = r->o;
	struct agg dir[2] = {0}, cls[PG_MAX_CLASSES][2] = {0}, total = {0};
	static struct agg term[26 * 26];
	struct agg remote[PG_MAX_MIX];
	memset(term, 0, sizeof(term));
	memset(remote, 0, sizeof(remote));
	struct sub_agg *sa = calloc(r->subs.n, sizeof(*sa));
	struct top_ent *top = calloc(r->subs.n, sizeof(*top));
	static uint64_t hsum[PG_HIST_BUCKETS], hdir[2][PG_HIST_BUCKETS],
		hcls[PG_MAX_CLASSES][PG_HIST_BUCKETS];
	if (sa == NULL || top == NULL) {
		free(sa);
		free(top);
		fprintf(stderr, "skygate-pktgen: report: out of memory\n");
		return -1;
	}
	for (uint32_t i = 0; i < r->n_flows; i++) {
		const struct pg_flow *f = &r->flows[i];
		const struct pg_rxf *x = &r->rxf[i];
		const struct pg_sub *sub = &r->subs.v[r->finfo[i].sub];
		agg_add(&cls[f->cls][f->dir], f, x);
		agg_add(&sa[r->finfo[i].sub].d[f->dir], f, x);
		agg_add(&remote[r->finfo[i].remote], f, x);
		unsigned int a = (sub->country >> 8) - 'A', b = (sub->country & 0xff) - 'A';
		if (a < 26 && b < 26)
			agg_add(&term[a * 26 + b], f, x);
	}
	memset(hsum, 0, sizeof(hsum));
	memset(hdir, 0, sizeof(hdir));
	memset(hcls, 0, sizeof(hcls));
	for (unsigned int c = 0; c < PG_MAX_CLASSES; c++)
		for (unsigned int d = 0; d < 2; d++) {
			agg_sum(&dir[d], &cls[c][d]);
			for (unsigned int b = 0; b < PG_HIST_BUCKETS; b++) {
				hdir[d][b] += r->hist[c][d][b];
				hcls[c][b] += r->hist[c][d][b];
				hsum[b] += r->hist[c][d][b];
			}
		}
	agg_sum(&total, &dir[0]);
	agg_sum(&total, &dir[1]);

	json_t *root = json_object();
	json_object_set_new(root, "tool", json_string("skygate-pktgen"));
	json_object_set_new(root, "report_version", json_integer(1));
	json_object_set_new(root, "config", opts_json(r));
	json_object_set_new(root, "elapsed_s", json_real(r->elapsed_s));
	json_object_set_new(root, "tsc_hz", json_integer((json_int_t)r->tsc_hz));
	json_t *tot = agg_json(r, &total, hsum);
	json_object_set_new(tot, "rx_invalid", json_integer((json_int_t)r->rx_invalid));
	json_object_set_new(tot, "rx_wrong_port", json_integer((json_int_t)r->rx_wrong_port));
	json_object_set_new(tot, "tx_unsent", json_integer((json_int_t)r->tx_pending_dropped));
	json_object_set_new(root, "totals", tot);
	if (o->rtt.n > 0) {
		/* the truth skygate's passive RTT is checked against */
		json_t *cl = json_array();
		uint64_t segs[2] = {0, 0}; /* TCP data segments sent (counted) */

		for (uint32_t i = 0; i < r->n_flows; i++)
			if (r->flows[i].ts)
				segs[r->flows[i].dir] += r->flows[i].tx_pkts;

		for (unsigned int k = 0; k < o->rtt.n; k++)
			json_array_append_new(cl,
					      json_pack("{s:s?, s:f, s:f, s:f, s:f}", "beam",
							k ? o->rtt.beam[k] : NULL, "sat_one_way_ms",
							o->rtt.sat_us[k] / 1e3, "inet_one_way_ms",
							o->rtt.inet_us[k] / 1e3, "sat_rtt_ms",
							2 * o->rtt.sat_us[k] / 1e3, "inet_rtt_ms",
							2 * o->rtt.inet_us[k] / 1e3));
		uint64_t open = 0;

		for (uint32_t i = 0; i < r->n_flows; i++)
			open += r->flows[i].ts == PG_TS_HANDSHAKE && r->flows[i].hs == PG_HS_DONE;
		json_object_set_new(root, "rtt_handshakes",
				    json_pack("{s:b, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}}",
					      "on", o->rtt_handshake, "completed", (json_int_t)open,
					      "sent", "syn", (json_int_t)r->hs_sent[PG_CTL_SYN],
					      "syn_ack", (json_int_t)r->hs_sent[PG_CTL_SYNACK],
					      "ack", (json_int_t)r->hs_sent[PG_CTL_ACK], "received",
					      "syn", (json_int_t)r->hs_rx[PG_CTL_SYN], "syn_ack",
					      (json_int_t)r->hs_rx[PG_CTL_SYNACK], "ack",
					      (json_int_t)r->hs_rx[PG_CTL_ACK]));
		json_object_set_new(
			root, "rtt_emulation",
			json_pack("{s:o, s:f, s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:I, s:{s:f, s:f}}",
				  "delays", cl, "retrans_share", o->rtt.retrans, "echoes_sent",
				  "terminal", (json_int_t)r->echo_sent[0], "internet",
				  (json_int_t)r->echo_sent[1], "retransmitted", "up",
				  (json_int_t)r->tx_retrans[0], "down",
				  (json_int_t)r->tx_retrans[1], "echoes_received",
				  (json_int_t)r->rx_echo, "echo_queue_full",
				  (json_int_t)r->echo_dropped, "retrans_ratio", "up",
				  segs[0] + r->tx_retrans[0]
					  ? (double)r->tx_retrans[0] /
						    (double)(segs[0] + r->tx_retrans[0])
					  : 0.0,
				  "down",
				  segs[1] + r->tx_retrans[1]
					  ? (double)r->tx_retrans[1] /
						    (double)(segs[1] + r->tx_retrans[1])
					  : 0.0));
	}

	json_t *dj = json_object();
	for (unsigned int d = 0; d < 2; d++)
		json_object_set_new(dj, dir_name[d], agg_json(r, &dir[d], hdir[d]));
	json_object_set_new(root, "directions", dj);

	json_t *cj = json_object();
	for (unsigned int c = 0; c < pg_n_classes; c++) {
		struct agg both = {0};
		agg_sum(&both, &cls[c][0]);
		agg_sum(&both, &cls[c][1]);
		if (both.flows == 0)
			continue;
		json_t *e = agg_json(r, &both, hcls[c]);
		json_object_set_new(e, "dscp", json_integer(pg_classes[c].dscp));
		for (unsigned int d = 0; d < 2; d++)
			json_object_set_new(e, dir_name[d], agg_json(r, &cls[c][d], r->hist[c][d]));
		json_object_set_new(cj, pg_classes[c].name, e);
	}
	json_object_set_new(root, "classes", cj);

	json_t *tj = json_object(), *rj = json_object();
	for (unsigned int k = 0; k < 26 * 26; k++)
		if (term[k].flows) {
			char cc[3] = {(char)('A' + k / 26), (char)('A' + k % 26), 0};
			json_object_set_new(tj, cc, agg_json(r, &term[k], NULL));
		}
	for (unsigned int k = 0; k < o->remote.n; k++)
		if (remote[k].flows)
			json_object_set_new(rj, o->remote.name[k], agg_json(r, &remote[k], NULL));
	json_object_set_new(root, "countries",
			    json_pack("{s:o, s:o}", "terminal", tj, "remote", rj));

	/* subscribers: top N by loss as objects, then every subscriber as a compact row */
	for (uint32_t s = 0; s < r->subs.n; s++) {
		top[s].sub = s;
		top[s].lost = agg_lost(&sa[s].d[0]) + agg_lost(&sa[s].d[1]);
	}
	qsort(top, r->subs.n, sizeof(*top), top_cmp);
	json_t *topj = json_array();
	for (uint32_t k = 0; k < r->subs.n && k < o->top_n; k++) {
		uint32_t s = top[k].sub;
		const struct pg_sub *sub = &r->subs.v[s];
		char cc[3];
		pg_cc_str(sub->country, cc);
		struct agg both = {0};
		agg_sum(&both, &sa[s].d[0]);
		agg_sum(&both, &sa[s].d[1]);
		json_t *e = agg_json(r, &both, NULL);
		json_object_set_new(e, "id", json_integer(sub->id));
		json_object_set_new(e, "country", json_string(cc));
		json_object_set_new(e, "plan", json_string(r->subs.plans[sub->plan]));
		json_object_set_new(e, "beam", json_string(r->subs.beams[sub->beam]));
		for (unsigned int d = 0; d < 2; d++)
			json_object_set_new(e, dir_name[d], agg_json(r, &sa[s].d[d], NULL));
		json_array_append_new(topj, e);
	}
	json_t *rows = json_array();
	for (uint32_t s = 0; s < r->subs.n; s++) {
		const struct pg_sub *sub = &r->subs.v[s];
		const struct agg *u = &sa[s].d[0], *dn = &sa[s].d[1];
		char cc[3];
		pg_cc_str(sub->country, cc);
		struct agg both = {0};
		agg_sum(&both, u);
		agg_sum(&both, dn);
		uint64_t uniq = both.rx - both.dup;
		json_array_append_new(
			rows,
			json_pack("[i, s, I, I, I, I, I, I, I, I, f, f]", (int)sub->id, cc,
				  (json_int_t)u->tx, (json_int_t)u->rx, (json_int_t)agg_lost(u),
				  (json_int_t)dn->tx, (json_int_t)dn->rx, (json_int_t)agg_lost(dn),
				  (json_int_t)both.reord, (json_int_t)both.dup,
				  uniq ? cyc_us(r, both.lat_sum / both.rx) : 0.0,
				  cyc_us(r, both.lat_max)));
	}
	json_object_set_new(root, "subscribers",
			    json_pack("{s:i, s:o, s:[s,s,s,s,s,s,s,s,s,s,s,s], s:o}", "count",
				      (int)r->subs.n, "top_by_loss", topj, "columns", "id",
				      "country", "tx_up", "rx_up", "lost_up", "tx_down", "rx_down",
				      "lost_down", "reordered", "duplicated", "lat_mean_us",
				      "lat_max_us", "rows", rows));

	json_t *sj = json_array();
	struct pg_sample prev = {0};
	for (unsigned int k = 0; k < r->n_samples; k++) {
		const struct pg_sample *s = &r->samples[k];
		double dt = s->t - prev.t;
		if (dt <= 0)
			continue;
		json_t *e = json_pack("{s:f, s:I}", "t", s->t, "lost_so_far",
				      (json_int_t)(s->gap[0] + s->gap[1]));
		for (unsigned int d = 0; d < 2; d++)
			json_object_set_new(
				e, dir_name[d],
				json_pack("{s:f, s:f, s:f, s:f}", "tx_pps",
					  (double)(s->tx_pkts[d] - prev.tx_pkts[d]) / dt, "tx_mbps",
					  (double)(s->tx_bytes[d] - prev.tx_bytes[d]) * 8e-6 / dt,
					  "rx_pps", (double)(s->rx_pkts[d] - prev.rx_pkts[d]) / dt,
					  "rx_mbps",
					  (double)(s->rx_bytes[d] - prev.rx_bytes[d]) * 8e-6 / dt));
		json_array_append_new(sj, e);
		prev = *s;
	}
	json_object_set_new(root, "rate_samples", sj);
	if (r->probe_idx != UINT32_MAX) {
		const struct pg_flow *f = &r->flows[r->probe_idx];
		const struct pg_rxf *x = &r->rxf[r->probe_idx];
		uint64_t rx = 0;

		for (unsigned int b = 0; b < PG_HIST_BUCKETS; b++)
			rx += r->probe_hist[b];
		json_object_set_new(
			root, "probe",
			json_pack("{s:I,s:f,s:i,s:I,s:I,s:{s:f,s:f,s:f,s:f}}", "sub",
				  (json_int_t)o->probe_sub, "pps", o->probe_pps, "size",
				  (int)o->probe_size, "tx", (json_int_t)f->tx_pkts, "rx",
				  (json_int_t)rx, "latency_us", "mean",
				  rx ? cyc_us(r, x->lat_sum / rx) : 0.0, "p50",
				  cyc_us(r, pg_hist_quantile(r->probe_hist, 0.5, r->probe_max)),
				  "p99",
				  cyc_us(r, pg_hist_quantile(r->probe_hist, 0.99, r->probe_max)),
				  "max", cyc_us(r, r->probe_max)));
	}

	json_t *pj = json_object();
	for (unsigned int side = 0; side < 2; side++) {
		struct rte_eth_stats es;
		if (rte_eth_stats_get(o->port[side], &es) != 0)
			continue;
		char name[RTE_ETH_NAME_MAX_LEN] = "";
		rte_eth_dev_get_name_by_port(o->port[side], name);
		json_object_set_new(
			pj, side ? "internet" : "terminal",
			json_pack("{s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "port",
				  o->port[side], "device", name, "ipackets",
				  (json_int_t)es.ipackets, "opackets", (json_int_t)es.opackets,
				  "ibytes", (json_int_t)es.ibytes, "obytes", (json_int_t)es.obytes,
				  "imissed", (json_int_t)es.imissed, "ierrors",
				  (json_int_t)es.ierrors, "oerrors", (json_int_t)es.oerrors));
	}
	json_object_set_new(root, "ports", pj);

	int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
	if (rc)
		fprintf(stderr, "skygate-pktgen: --report %s: cannot write\n", path);
	json_decref(root);
	free(sa);
	free(top);
	return rc ? -1 : 0;
}

void
pg_report_summary(struct pg_run *r)
{
	struct agg d[2] = {0};
	for (uint32_t i = 0; i < r->n_flows; i++)
		agg_add(&d[r->flows[i].dir], &r->flows[i], &r->rxf[i]);
	double secs = r->elapsed_s > 0 ? r->elapsed_s : 1;
	printf("skygate-pktgen: %.2f s, %u subscribers, %u flows\n", r->elapsed_s, r->subs.n,
	       r->n_flows);
	for (unsigned int k = 0; k < 2; k++) {
		if (d[k].flows == 0)
			continue;
		static uint64_t h[PG_HIST_BUCKETS];
		uint64_t mx = 0;
		memset(h, 0, sizeof(h));
		for (unsigned int c = 0; c < PG_MAX_CLASSES; c++) {
			for (unsigned int b = 0; b < PG_HIST_BUCKETS; b++)
				h[b] += r->hist[c][k][b];
			if (r->lat_max[c][k] > mx)
				mx = r->lat_max[c][k];
		}
		uint64_t lost = agg_lost(&d[k]);
		printf("  %-4s tx %" PRIu64 " (%.3f Mpps, %.1f Mbit/s)  rx %" PRIu64
		       "  lost %" PRIu64 " (%.4f%%)  reordered %" PRIu64 "  dup %" PRIu64
		       "  latency p50 %.1f p99 %.1f max %.1f us\n",
		       dir_name[k], d[k].tx, (double)d[k].tx / secs * 1e-6,
		       (double)d[k].tx_bytes * 8e-6 / secs, d[k].rx, lost,
		       d[k].tx ? 100.0 * (double)lost / (double)d[k].tx : 0.0, d[k].reord, d[k].dup,
		       cyc_us(r, pg_hist_quantile(h, 0.5, mx)),
		       cyc_us(r, pg_hist_quantile(h, 0.99, mx)), cyc_us(r, mx));
	}
	if (r->rx_invalid || r->rx_wrong_port || r->tx_pending_dropped)
		printf("  rx not ours %" PRIu64 ", rx on the wrong port %" PRIu64
		       ", tx never sent %" PRIu64 "\n",
		       r->rx_invalid, r->rx_wrong_port, r->tx_pending_dropped);
}
