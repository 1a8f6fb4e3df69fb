/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's own commands (status, stats, ports), DPDK telemetry endpoints and
 * Prometheus metrics for the same counters.
 */
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include <jemalloc/jemalloc.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>
#include <rte_version.h>

#include "gateway.h"
#include "skygate/control.h"
#include "skygate/subscriber.h"
#include "sky_build_config.h"

void
gw_port_stats_sum(const struct gw *g, unsigned int port, struct gw_port_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int w = 0; w < g->n_workers; w++) {
		const struct gw_port_stats *s = &g->workers[w].stats[port];

#define GW_CTR_SUM(n, h) out->n += __atomic_load_n(&s->n, __ATOMIC_RELAXED);
		GW_FOREACH_PORT_CTR(GW_CTR_SUM)
#undef GW_CTR_SUM
		for (unsigned int r = 0; r < SKY_DROP_MAX; r++)
			out->drops[r] += __atomic_load_n(&s->drops[r], __ATOMIC_RELAXED);
		for (unsigned int c = 0; c < 8; c++) {
			out->cls_packets[c] +=
				__atomic_load_n(&s->cls_packets[c], __ATOMIC_RELAXED);
			out->cls_bytes[c] += __atomic_load_n(&s->cls_bytes[c], __ATOMIC_RELAXED);
		}
	}
}

static uint64_t
drops_total(const struct gw_port_stats *s)
{
	uint64_t t = 0;

	for (unsigned int r = 1; r < SKY_DROP_MAX; r++)
		t += s->drops[r];
	return t;
}

static json_t *
port_stats_json(const struct gw *g, unsigned int i)
{
	const struct gw_port *p = &g->ports[i];
	struct gw_port_stats s;
	struct rte_eth_stats es;
	json_t *o = json_object(), *d = json_object();

	gw_port_stats_sum(g, i, &s);
	json_object_set_new(o, "port", json_string(p->name));
	json_object_set_new(o, "role", json_string(p->dir == SKY_DIR_UP ? "uplink" : "backhaul"));
	json_object_set_new(o, "direction",
			    json_string(p->dir == SKY_DIR_UP ? "upstream" : "downstream"));
#define GW_CTR_JSON(n, h) json_object_set_new(o, #n, json_integer((json_int_t)s.n));
	GW_FOREACH_PORT_CTR(GW_CTR_JSON)
#undef GW_CTR_JSON
	json_object_set_new(o, "dropped", json_integer((json_int_t)drops_total(&s)));
	for (unsigned int r = 1; r < SKY_DROP_MAX; r++)
		if (s.drops[r] != 0)
			json_object_set_new(d, sky_drop_name(r),
					    json_integer((json_int_t)s.drops[r]));
	json_object_set_new(o, "drops", d);
	if (g->subs != NULL) {
		json_t *c = json_object();

		for (unsigned int k = 0; k < sky_subs_n_classes(g->subs) && k < 8; k++) {
			struct sky_class cl = sky_subs_class(g->subs, k);

			json_object_set_new(c, cl.name,
					    json_pack("{s:I,s:I}", "packets",
						      (json_int_t)s.cls_packets[k], "bytes",
						      (json_int_t)s.cls_bytes[k]));
		}
		json_object_set_new(o, "classes", c);
	}
	if (p->started && rte_eth_stats_get(p->port_id, &es) == 0) {
		json_object_set_new(o, "hw_missed", json_integer((json_int_t)es.imissed));
		json_object_set_new(o, "hw_rx_errors", json_integer((json_int_t)es.ierrors));
		json_object_set_new(o, "hw_rx_nombuf", json_integer((json_int_t)es.rx_nombuf));
	}
	return o;
}

/* {"ports": [one(g, i) for each port]}: the reply of `stats` and `ports` (no arguments) */
static int
ports_reply(const struct gw *g, json_t *(*one)(const struct gw *g, unsigned int i), const char *cmd,
	    int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	json_t *ports = json_array();

	if (argc > 0) {
		json_decref(ports);
		return sky_ctl_fail(call, "%s: unexpected argument '%s'", cmd, argv[0]);
	}
	for (unsigned int i = 0; i < g->n_ports; i++)
		json_array_append_new(ports, one(g, i));
	*result = json_pack("{s:o}", "ports", ports);
	return 0;
}

static int
cmd_stats(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return ports_reply(arg, port_stats_json, "stats", argc, argv, call, result);
}

static json_t *
port_json(const struct gw *g, unsigned int i)
{
	const struct gw_port *p = &g->ports[i];
	struct rte_eth_link link;
	struct rte_ether_addr mac;
	char macs[RTE_ETHER_ADDR_FMT_SIZE] = "";
	json_t *o = json_object();

	memset(&link, 0, sizeof(link));
	if (p->started)
		rte_eth_link_get_nowait(p->port_id, &link);
	if (rte_eth_macaddr_get(p->port_id, &mac) == 0)
		rte_ether_format_addr(macs, sizeof(macs), &mac);
	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "role", json_string(p->dir == SKY_DIR_UP ? "uplink" : "backhaul"));
	json_object_set_new(o, "peer", json_string(g->ports[p->peer].name));
	json_object_set_new(o, "port_id", json_integer(p->port_id));
	json_object_set_new(o, "device", json_string(p->device));
	json_object_set_new(o, "mac", json_string(macs));
	json_object_set_new(o, "link", json_string(link.link_status ? "up" : "down"));
	json_object_set_new(o, "speed_mbps", json_integer(link.link_status ? link.link_speed : 0));
	json_object_set_new(o, "queues", json_integer(p->n_queues));
	json_object_set_new(o, "rss", json_boolean(p->rss));
	return o;
}

static int
cmd_ports(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return ports_reply(arg, port_json, "ports", argc, argv, call, result);
}

static json_t *
memory_json(const struct gw *g)
{
	struct rte_malloc_socket_stats ms;
	size_t allocated = 0, resident = 0, active = 0, sz = sizeof(size_t);
	uint64_t epoch = 1;
	size_t esz = sizeof(epoch);
	json_t *o = json_object(), *dpdk = json_object(), *je = json_object();
	size_t heap_total = 0, heap_alloc = 0;

	for (int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		if (rte_malloc_get_socket_stats(s, &ms) != 0)
			continue;
		heap_total += ms.heap_totalsz_bytes;
		heap_alloc += ms.heap_allocsz_bytes;
	}
	json_object_set_new(dpdk, "heap_total_bytes", json_integer((json_int_t)heap_total));
	json_object_set_new(dpdk, "heap_allocated_bytes", json_integer((json_int_t)heap_alloc));
	if (g->pool != NULL) {
		json_object_set_new(dpdk, "mbufs", json_integer(g->pool->size));
		json_object_set_new(dpdk, "mbufs_in_use",
				    json_integer(rte_mempool_in_use_count(g->pool)));
		json_object_set_new(
			dpdk, "mempool_bytes",
			json_integer((json_int_t)((size_t)g->pool->size *
						  (g->pool->elt_size + g->pool->header_size +
						   g->pool->trailer_size))));
	}
	mallctl("epoch", &epoch, &esz, &epoch, esz);
	mallctl("stats.allocated", &allocated, &sz, NULL, 0);
	sz = sizeof(size_t);
	mallctl("stats.active", &active, &sz, NULL, 0);
	sz = sizeof(size_t);
	mallctl("stats.resident", &resident, &sz, NULL, 0);
	json_object_set_new(je, "allocated_bytes", json_integer((json_int_t)allocated));
	json_object_set_new(je, "active_bytes", json_integer((json_int_t)active));
	json_object_set_new(je, "resident_bytes", json_integer((json_int_t)resident));
	json_object_set_new(o, "dpdk", dpdk);
	json_object_set_new(o, "jemalloc", je);
	return o;
}

static int
cmd_status(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct gw *g = arg;
	json_t *o = json_object(), *lcores = json_array(), *ports = json_array();
	uint64_t up_tsc = rte_rdtsc() - g->start_tsc;
	uint64_t up = up_tsc / sky_rt.tsc_hz;

	if (argc > 0) {
		json_decref(o);
		json_decref(lcores);
		json_decref(ports);
		return sky_ctl_fail(call, "status: unexpected argument '%s'", argv[0]);
	}
	json_object_set_new(o, "version", json_string(SKY_VERSION));
	json_object_set_new(o, "dpdk", json_string(rte_version()));
	json_object_set_new(o, "config", json_string(g->config_path));
	json_object_set_new(o, "uptime_s", json_integer((json_int_t)up));
	json_object_set_new(o, "main_lcore", json_integer(rte_get_main_lcore()));
	for (unsigned int w = 0; w < g->n_workers; w++) {
		const struct gw_worker *wk = &g->workers[w];
		json_t *l = json_object(), *q = json_array();
		uint64_t loops = __atomic_load_n(&wk->loops, __ATOMIC_RELAXED);
		uint64_t busy = __atomic_load_n(&wk->busy_tsc, __ATOMIC_RELAXED);
		uint64_t pkts = __atomic_load_n(&wk->busy_pkts, __ATOMIC_RELAXED);

		for (unsigned int i = 0; i < wk->n_rxq; i++) {
			char s[64];

			snprintf(s, sizeof(s), "%s/%u", g->ports[wk->rxq[i].port].name,
				 wk->rxq[i].queue);
			json_array_append_new(q, json_string(s));
		}
		json_object_set_new(l, "worker", json_integer(w));
		json_object_set_new(l, "lcore", json_integer(wk->lcore));
		json_object_set_new(l, "rx_queues", q);
		json_object_set_new(l, "loops", json_integer((json_int_t)loops));
		/* share of the worker's time spent on non-empty bursts since start */
		json_object_set_new(
			l, "busy_pct",
			json_real(up_tsc ? 100.0 * (double)busy / (double)up_tsc : 0.0));
		/* the worker's own cost: cycles of the loops that carried packets per packet
		 * received (the headroom is tsc_hz / this, in packets per second) */
		json_object_set_new(l, "busy_cycles", json_integer((json_int_t)busy));
		json_object_set_new(l, "packets", json_integer((json_int_t)pkts));
		json_object_set_new(l, "cycles_per_packet",
				    json_real(pkts ? (double)busy / (double)pkts : 0.0));
		json_array_append_new(lcores, l);
	}
	json_object_set_new(o, "workers", lcores);
	json_object_set_new(o, "tsc_hz", json_integer((json_int_t)sky_rt.tsc_hz));
	for (unsigned int i = 0; i < g->n_ports; i++) {
		json_t *p = port_json(g, i);

		json_array_append_new(ports,
				      json_pack("{s:O,s:O,s:O}", "name", json_object_get(p, "name"),
						"role", json_object_get(p, "role"), "link",
						json_object_get(p, "link")));
		json_decref(p);
	}
	json_object_set_new(o, "ports", ports);
	json_object_set_new(o, "memory", memory_json(g));
	*result = o;
	return 0;
}

/* DPDK telemetry: /skygate/stats,<port name> and /skygate/ports */
static int
tel_ports(const char *cmd, const char *params, struct rte_tel_data *d)
{
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	for (unsigned int i = 0; i < gw.n_ports; i++)
		rte_tel_data_add_array_string(d, gw.ports[i].name);
	return 0;
}

static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct gw_port_stats s;
	unsigned int i;

	if (params == NULL)
		return -1;
	for (i = 0; i < gw.n_ports; i++)
		if (strcmp(gw.ports[i].name, params) == 0)
			break;
	if (i == gw.n_ports)
		return -1;
	gw_port_stats_sum(&gw, i, &s);
	rte_tel_data_start_dict(d);
#define GW_CTR_TEL(n, h) rte_tel_data_add_dict_u64(d, #n, s.n);
	GW_FOREACH_PORT_CTR(GW_CTR_TEL)
#undef GW_CTR_TEL
	for (unsigned int r = 1; r < SKY_DROP_MAX; r++) {
		char k[64];

		snprintf(k, sizeof(k), "drop_%s", sky_drop_name(r));
		rte_tel_data_add_dict_u64(d, k, s.drops[r]);
	}
	return 0;
}

/* skygate_worker_<name>_total: each worker's busy_pkts (pkts) or busy_tsc */
static void
prom_worker_counter(FILE *out, const struct gw *g, const char *name, const char *help, bool pkts)
{
	fprintf(out, "# HELP skygate_worker_%s_total %s\n# TYPE skygate_worker_%s_total counter\n",
		name, help, name);
	for (unsigned int w = 0; w < g->n_workers; w++) {
		const struct gw_worker *wk = &g->workers[w];

		fprintf(out, "skygate_worker_%s_total{worker=\"%u\"} %llu\n", name, w,
			(unsigned long long)(pkts ? __atomic_load_n(&wk->busy_pkts,
								    __ATOMIC_RELAXED)
						  : __atomic_load_n(&wk->busy_tsc,
								    __ATOMIC_RELAXED)));
	}
}

/* skygate_port_class_<what>_total (what: packets or bytes), by port and class */
static void
prom_port_class(FILE *out, const struct gw *g, const struct gw_port_stats *s, const char *what)
{
	bool bytes = strcmp(what, "bytes") == 0;

	fprintf(out,
		"# HELP skygate_port_class_%s_total passed IP %s by class and receiving port\n"
		"# TYPE skygate_port_class_%s_total counter\n",
		what, what, what);
	for (unsigned int i = 0; i < g->n_ports && g->subs != NULL; i++)
		for (unsigned int k = 0; k < sky_subs_n_classes(g->subs) && k < 8; k++)
			fprintf(out, "skygate_port_class_%s_total{port=\"%s\",class=\"%s\"} %llu\n",
				what, g->ports[i].name, sky_subs_class(g->subs, k).name,
				(unsigned long long)(bytes ? s[i].cls_bytes[k]
							   : s[i].cls_packets[k]));
}

static void
metrics_ports(void *arg, FILE *out)
{
	struct gw *g = arg;
	struct gw_port_stats s[GW_MAX_PORTS];

	for (unsigned int i = 0; i < g->n_ports; i++)
		gw_port_stats_sum(g, i, &s[i]);
#define GW_CTR_PROM(n, h)                                                                          \
	fprintf(out, "# HELP skygate_port_%s_total %s\n# TYPE skygate_port_%s_total counter\n",    \
		#n, h, #n);                                                                        \
	for (unsigned int i = 0; i < g->n_ports; i++)                                              \
		fprintf(out, "skygate_port_%s_total{port=\"%s\"} %llu\n", #n, g->ports[i].name,    \
			(unsigned long long)s[i].n);
	GW_FOREACH_PORT_CTR(GW_CTR_PROM)
#undef GW_CTR_PROM
	fprintf(out, "# HELP skygate_port_dropped_total packets received on the port and dropped, "
		     "by reason\n"
		     "# TYPE skygate_port_dropped_total counter\n");
	for (unsigned int i = 0; i < g->n_ports; i++)
		for (unsigned int r = 1; r < SKY_DROP_MAX; r++)
			fprintf(out, "skygate_port_dropped_total{port=\"%s\",reason=\"%s\"} %llu\n",
				g->ports[i].name, sky_drop_name(r),
				(unsigned long long)s[i].drops[r]);
	prom_port_class(out, g, s, "packets");
	prom_port_class(out, g, s, "bytes");
	prom_worker_counter(out, g, "busy_cycles",
			    "TSC cycles of the worker's loops that received or sent packets",
			    false);
	prom_worker_counter(out, g, "packets", "packets the worker received", true);
	fprintf(out, "# HELP skygate_worker_cycles_per_packet busy cycles per packet received "
		     "since start (the worker's cost; headroom = tsc_hz / this)\n"
		     "# TYPE skygate_worker_cycles_per_packet gauge\n");
	for (unsigned int w = 0; w < g->n_workers; w++) {
		uint64_t b = __atomic_load_n(&g->workers[w].busy_tsc, __ATOMIC_RELAXED);
		uint64_t k = __atomic_load_n(&g->workers[w].busy_pkts, __ATOMIC_RELAXED);

		fprintf(out, "skygate_worker_cycles_per_packet{worker=\"%u\"} %.1f\n", w,
			k ? (double)b / (double)k : 0.0);
	}
	fprintf(out,
		"# HELP skygate_tsc_hz TSC frequency (cycles per second)\n"
		"# TYPE skygate_tsc_hz gauge\nskygate_tsc_hz %llu\n",
		(unsigned long long)sky_rt.tsc_hz);
	fprintf(out,
		"# HELP skygate_uptime_seconds time since start\n# TYPE skygate_uptime_seconds "
		"gauge\n"
		"skygate_uptime_seconds %llu\n",
		(unsigned long long)((rte_rdtsc() - g->start_tsc) / sky_rt.tsc_hz));
}

int
gw_status_register(struct gw *g)
{
	int rc = 0;

	rc |= sky_ctl_register("status", "",
			       "version, uptime, workers, ports with link state, memory", 0,
			       cmd_status, g);
	rc |= sky_ctl_register("stats", "", "per port and direction: rx, tx, dropped by reason", 0,
			       cmd_stats, g);
	rc |= sky_ctl_register("ports", "", "ports: role, peer, device, link, queues", 0, cmd_ports,
			       g);
	rc |= sky_metrics_register("ports", metrics_ports, g);
	rte_telemetry_register_cmd("/skygate/ports", tel_ports,
				   "List skygate ports. No parameters");
	rte_telemetry_register_cmd("/skygate/stats", tel_stats,
				   "skygate counters of one port. Parameters: port name");
	return rc == 0 ? 0 : -1;
}

void
gw_print_final(const struct gw *g)
{
	printf("skygate: final counters\n");
	printf("  %-10s %-9s %12s %14s %12s %14s %10s %10s\n", "port", "role", "rx_pkts",
	       "rx_bytes", "tx_pkts", "tx_bytes", "non_ip", "dropped");
	for (unsigned int i = 0; i < g->n_ports; i++) {
		struct gw_port_stats s;

		gw_port_stats_sum(g, i, &s);
		printf("  %-10s %-9s %12llu %14llu %12llu %14llu %10llu %10llu\n", g->ports[i].name,
		       g->ports[i].dir == SKY_DIR_UP ? "uplink" : "backhaul",
		       (unsigned long long)s.rx_packets, (unsigned long long)s.rx_bytes,
		       (unsigned long long)s.tx_packets, (unsigned long long)s.tx_bytes,
		       (unsigned long long)s.non_ip, (unsigned long long)drops_total(&s));
		for (unsigned int r = 1; r < SKY_DROP_MAX; r++)
			if (s.drops[r] != 0)
				printf("  %-10s   drop %-28s %llu\n", g->ports[i].name,
				       sky_drop_name(r), (unsigned long long)s.drops[r]);
	}
	fflush(stdout);
}
