/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus metrics: a registry of writers, rendered together, and the control plane's own
 * counters (rendered first, and served to DPDK telemetry). Control path only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

#include "skygate/control.h"

#include "control_priv.h"

struct writer {
	char *name;
	sky_metrics_fn fn;
	void *arg;
};

static struct writer *writers;
static unsigned int n_writers;

/* The control plane's own counters (written on the main lcore only). */
uint64_t sky_ctl_counters[SKY_CTL_C_MAX];
unsigned int sky_ctl_clients_now;
unsigned int sky_ctl_unacked_now;
uint64_t sky_ctl_events_counters[SKY_CTL_EV_MAX];
unsigned int sky_ctl_events_subscribers;

static void ctl_metrics_write(FILE *out);

int
sky_metrics_register(const char *name, sky_metrics_fn fn, void *arg)
{
	struct writer *w;

	if (name == NULL || name[0] == '\0' || fn == NULL)
		return -EINVAL;
	for (unsigned int i = 0; i < n_writers; i++)
		if (strcmp(writers[i].name, name) == 0)
			return -EEXIST;
	w = realloc(writers, sizeof(*w) * (n_writers + 1));
	if (w == NULL)
		return -ENOMEM;
	writers = w;
	w = &writers[n_writers];
	w->name = strdup(name);
	if (w->name == NULL)
		return -ENOMEM;
	w->fn = fn;
	w->arg = arg;
	n_writers++;
	return 0;
}

void
sky_metrics_unregister_all(void)
{
	for (unsigned int i = 0; i < n_writers; i++)
		free(writers[i].name);
	free(writers);
	writers = NULL;
	n_writers = 0;
}

char *
sky_metrics_render(size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (f == NULL)
		return NULL;
	/* the control plane's own counters always come first */
	ctl_metrics_write(f);
	for (unsigned int i = 0; i < n_writers; i++)
		writers[i].fn(writers[i].arg, f);
	if (fclose(f) != 0 || buf == NULL) {
		free(buf);
		return NULL;
	}
	if (len != NULL)
		*len = n;
	return buf;
}

/* The control plane's own counters, from the one X-macro list. */
static void
ctl_metrics_write(FILE *out)
{
#define X(name, type, help)                                                                        \
	fprintf(out,                                                                               \
		"# HELP skygate_control_" #name "_total " help "\n"                                \
		"# TYPE skygate_control_" #name "_total " #type "\n"                               \
		"skygate_control_" #name "_total %llu\n",                                          \
		(unsigned long long)sky_ctl_counters[SKY_CTL_C_##name]);
	SKY_CTL_COUNTERS(X)
#undef X
	fprintf(out,
		"# HELP skygate_control_clients Control socket clients connected now\n"
		"# TYPE skygate_control_clients gauge\n"
		"skygate_control_clients %u\n"
		"# HELP skygate_control_journal_unacknowledged Journal recoveries (--recover) not "
		"yet "
		"acknowledged with `journal ack`\n"
		"# TYPE skygate_control_journal_unacknowledged gauge\n"
		"skygate_control_journal_unacknowledged %u\n",
		sky_ctl_clients_now, sky_ctl_unacked_now);
#define X(name, type, help)                                                                        \
	fprintf(out,                                                                               \
		"# HELP skygate_events_" #name "_total " help "\n"                                 \
		"# TYPE skygate_events_" #name "_total " #type "\n"                                \
		"skygate_events_" #name "_total %llu\n",                                           \
		(unsigned long long)sky_ctl_events_counters[SKY_CTL_EV_##name]);
	SKY_CTL_EVENTS_COUNTERS(X)
#undef X
	fprintf(out,
		"# HELP skygate_events_subscribers Control socket connections following the "
		"events stream now\n"
		"# TYPE skygate_events_subscribers gauge\n"
		"skygate_events_subscribers %u\n",
		sky_ctl_events_subscribers);
}

/*
 * /skygate/control for dpdk-telemetry.py. Runs on DPDK's telemetry thread: it only reads
 * the counters (relaxed 64-bit loads; the main lcore is their one writer).
 */
static int
telemetry_control(const char *cmd, const char *params, struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
#define X(name, type, help)                                                                        \
	rte_tel_data_add_dict_u64(                                                                 \
		d, #name, __atomic_load_n(&sky_ctl_counters[SKY_CTL_C_##name], __ATOMIC_RELAXED));
	SKY_CTL_COUNTERS(X)
#undef X
	rte_tel_data_add_dict_u64(d, "clients",
				  __atomic_load_n(&sky_ctl_clients_now, __ATOMIC_RELAXED));
#define X(name, type, help)                                                                        \
	rte_tel_data_add_dict_u64(                                                                 \
		d, "events_" #name,                                                                \
		__atomic_load_n(&sky_ctl_events_counters[SKY_CTL_EV_##name], __ATOMIC_RELAXED));
	SKY_CTL_EVENTS_COUNTERS(X)
#undef X
	rte_tel_data_add_dict_u64(d, "events_subscribers",
				  __atomic_load_n(&sky_ctl_events_subscribers, __ATOMIC_RELAXED));
	return 0;
}

void
sky_ctl_telemetry_register(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	rte_telemetry_register_cmd(
		"/skygate/control", telemetry_control,
		"Control plane counters: requests, errors, journal, clients, events");
}
