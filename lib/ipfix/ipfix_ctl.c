/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ipfix control plane: `ipfix show`, the `ipfix` object in `status`, telemetry
 * /skygate/ipfix, Prometheus skygate_ipfix_*, and the periodic task that sends pending
 * messages and due templates. Calls the owner (ipfix.c); the owner reaches this file only
 * through the sky_ipfix.unregister callback left by sky_ipfix_register().
 *
 * Commands, metrics writers and the periodic task run on the main lcore; the telemetry
 * callback runs in DPDK's telemetry thread and only reads counters under cur_lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_telemetry.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "ipfix_priv.h"

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sky_ipfix *cur;
static int tel_done;

/* The per-collector counters, defined once: field, name, Prometheus help. */
#define IPFIX_FOREACH_COUNTER(_)                                                                   \
	_(records, "records", "IPFIX data records sent")                                           \
	_(messages, "messages", "IPFIX messages sent (templates-only ones included)")              \
	_(bytes, "bytes", "Bytes of the IPFIX messages sent (UDP payload)")                        \
	_(drops, "drops", "Data records lost: their message could not be sent")                    \
	_(template_sends, "template_sends", "Template sets sent")                                  \
	_(send_errors, "send_errors", "IPFIX messages that could not be sent")

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static json_t *
coll_json(const struct sky_ipfix *ip, unsigned int i)
{
	const struct ipfix_coll_conf *cc = &ip->conf.coll[i];
	struct sky_ipfix_stats st;
	json_t *o = json_object();

	if (o == NULL || sky_ipfix_collector_stats(ip, i, &st) < 0) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "address", json_string(cc->address));
	json_object_set_new(o, "port", json_integer(cc->port));
	json_object_set_new(o, "observation_domain", json_integer((json_int_t)cc->domain));
#define IPFIX_C_JSON(f, s, h) json_object_set_new(o, s, json_integer((json_int_t)st.f));
	IPFIX_FOREACH_COUNTER(IPFIX_C_JSON)
#undef IPFIX_C_JSON
	json_object_set_new(o, "sequence", json_integer((json_int_t)st.sequence));
	json_object_set_new(o, "last_error",
			    st.last_errno != 0 ? json_string(strerror(st.last_errno))
					       : json_null());
	return o;
}

static json_t *
ipfix_json(const struct sky_ipfix *ip, int full)
{
	json_t *o = json_object(), *list = json_array();
	uint64_t sum_records = 0, sum_drops = 0;

	if (o == NULL || list == NULL) {
		json_decref(o);
		json_decref(list);
		return NULL;
	}
	json_object_set_new(o, "enabled", json_boolean(sky_ipfix_enabled(ip)));
	if (full) {
		json_object_set_new(o, "enterprise_number", json_integer(ip->conf.pen));
		json_object_set_new(o, "mtu", json_integer(ip->conf.mtu));
		json_object_set_new(o, "template_refresh_ms",
				    json_integer((json_int_t)ip->conf.refresh_ms));
		json_object_set_new(o, "template_refresh_packets",
				    json_integer((json_int_t)ip->conf.refresh_packets));
	}
	json_object_set_new(o, "flow_records", json_integer((json_int_t)sky_ipfix_records_in(ip)));
	for (unsigned int i = 0; i < sky_ipfix_n_collectors(ip); i++) {
		struct sky_ipfix_stats st;

		if (sky_ipfix_collector_stats(ip, i, &st) == 0) {
			sum_records += st.records;
			sum_drops += st.drops;
		}
		if (full)
			json_array_append_new(list, coll_json(ip, i));
	}
	json_object_set_new(o, "records", json_integer((json_int_t)sum_records));
	json_object_set_new(o, "drops", json_integer((json_int_t)sum_drops));
	if (full)
		json_object_set_new(o, "collectors", list);
	else {
		json_object_set_new(o, "collectors", json_integer(sky_ipfix_n_collectors(ip)));
		json_decref(list);
	}
	return o;
}

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	json_t *o;

	(void)argv;
	if (argc != 0)
		return sky_ctl_fail(call, "ipfix show: takes no arguments");
	o = ipfix_json(arg, 1);
	if (o == NULL)
		return sky_ctl_fail(call, "ipfix show: out of memory");
	*result = o;
	return 0;
}

static void
ext_status(void *arg, int argc, char **argv, json_t *result)
{
	json_t *o = ipfix_json(arg, 0);

	(void)argc;
	(void)argv;
	if (o != NULL)
		json_object_set_new(result, "ipfix", o);
}

/* ------------------------------------------------------------------ telemetry */

static int
tel_ipfix(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&cur_lock);
	if (cur == NULL) {
		pthread_mutex_unlock(&cur_lock);
		rte_tel_data_add_dict_int(d, "enabled", 0);
		return 0;
	}
	rte_tel_data_add_dict_int(d, "enabled", sky_ipfix_enabled(cur));
	rte_tel_data_add_dict_u64(d, "flow_records", sky_ipfix_records_in(cur));
	/* DPDK 22.11 nests no dictionary in another: collector i's counters are flat keys
	 * "c<i>_<counter>", its address "c<i>" */
	for (unsigned int i = 0; i < sky_ipfix_n_collectors(cur); i++) {
		struct sky_ipfix_stats st;
		char key[64], val[96];

		if (sky_ipfix_collector_stats(cur, i, &st) < 0)
			continue;
		snprintf(key, sizeof(key), "c%u", i);
		snprintf(val, sizeof(val), "%s:%u", cur->conf.coll[i].address,
			 cur->conf.coll[i].port);
		rte_tel_data_add_dict_string(d, key, val);
#define IPFIX_C_TEL(f, s, h)                                                                       \
	snprintf(key, sizeof(key), "c%u_" s, i);                                                   \
	rte_tel_data_add_dict_u64(d, key, st.f);
		IPFIX_FOREACH_COUNTER(IPFIX_C_TEL)
#undef IPFIX_C_TEL
		snprintf(key, sizeof(key), "c%u_sequence", i);
		rte_tel_data_add_dict_u64(d, key, st.sequence);
	}
	pthread_mutex_unlock(&cur_lock);
	return 0;
}

/* ------------------------------------------------------------------ Prometheus */

static void
metrics_ipfix(void *arg, FILE *out)
{
	struct sky_ipfix *ip;

	(void)arg;
	pthread_mutex_lock(&cur_lock);
	ip = cur;
	if (ip == NULL) {
		pthread_mutex_unlock(&cur_lock);
		return;
	}
	fprintf(out,
		"# HELP skygate_ipfix_collectors IPFIX collectors configured\n"
		"# TYPE skygate_ipfix_collectors gauge\nskygate_ipfix_collectors %u\n"
		"# HELP skygate_ipfix_flow_records_total Flow records received from the flow "
		"table\n# TYPE skygate_ipfix_flow_records_total counter\n"
		"skygate_ipfix_flow_records_total %" PRIu64 "\n",
		sky_ipfix_n_collectors(ip), sky_ipfix_records_in(ip));
#define IPFIX_C_PROM(f, s, h)                                                                      \
	fprintf(out, "# HELP skygate_ipfix_" s "_total " h "\n# TYPE skygate_ipfix_" s             \
		     "_total counter\n");                                                          \
	for (unsigned int i = 0; i < sky_ipfix_n_collectors(ip); i++) {                            \
		struct sky_ipfix_stats st;                                                         \
		if (sky_ipfix_collector_stats(ip, i, &st) == 0)                                    \
			fprintf(out,                                                               \
				"skygate_ipfix_" s "_total{collector=\"%s:%u\"} %" PRIu64 "\n",    \
				ip->conf.coll[i].address, ip->conf.coll[i].port, st.f);            \
	}
	IPFIX_FOREACH_COUNTER(IPFIX_C_PROM)
#undef IPFIX_C_PROM
	pthread_mutex_unlock(&cur_lock);
}

/* ------------------------------------------------------------------ periodic send */

static void
periodic_send(void *arg, uint64_t now_tsc)
{
	(void)now_tsc;
	sky_ipfix_tick(arg, now_ms());
}

/* ------------------------------------------------------------------ registration */

/* sky_ipfix.unregister: sky_ipfix_destroy() runs it before freeing ip. */
static void
forget(struct sky_ipfix *ip)
{
	pthread_mutex_lock(&cur_lock);
	if (cur == ip)
		cur = NULL;
	pthread_mutex_unlock(&cur_lock);
}

int
sky_ipfix_register(struct sky_ipfix *ip)
{
	int rc;

	if (ip == NULL)
		return -EINVAL;
	rc = sky_ctl_register("ipfix show", "",
			      "IPFIX export: collectors, records, messages, bytes, drops, "
			      "template sends, sequence numbers",
			      0, cmd_show, ip);
	if (rc == 0)
		rc = sky_ctl_extend("status", ext_status, ip);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&cur_lock);
	cur = ip;
	pthread_mutex_unlock(&cur_lock);
	ip->unregister = forget; /* from here on, destroy must clear cur */
	if (sky_ipfix_enabled(ip)) {
		rc = sky_periodic_register("ipfix-send", IPFIX_PERIOD_US, periodic_send, ip);
		if (rc != 0)
			return rc;
	}
	rc = sky_metrics_register("ipfix", metrics_ipfix, NULL);
	if (rc != 0 && rc != -EEXIST)
		return rc;
	if (!tel_done) {
		rc = rte_telemetry_register_cmd("/skygate/ipfix", tel_ipfix,
						"skygate IPFIX export: counters per collector. No "
						"parameters");
		if (rc != 0)
			return rc;
		tel_done = 1;
	}
	return 0;
}
