/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "skygate/runtime.h"

struct sky_runtime sky_rt;
int sky_logtype = RTE_LOGTYPE_USER1;

#define MAX_PERIODIC 32

struct periodic {
	char name[32];
	uint64_t period_tsc;
	uint64_t next_tsc;
	sky_periodic_fn fn;
	void *arg;
};

static struct periodic periodic[MAX_PERIODIC];
static unsigned int n_periodic;

void
sky_runtime_init(void)
{
	int t = rte_log_register_type_and_pick_level("skygate", RTE_LOG_INFO);

	if (t >= 0)
		sky_logtype = t;
	sky_rt.tsc_hz = rte_get_tsc_hz();
	if (sky_rt.tsc_hz == 0)
		sky_rt.tsc_hz = 1000000000ULL;
}

int
sky_rcu_init(unsigned int n_workers)
{
	size_t sz;
	struct rte_rcu_qsbr *qs;

	sky_rcu_fini();
	sky_rt.n_workers = n_workers;
	if (n_workers == 0)
		return 0;
	sz = rte_rcu_qsbr_get_memsize(n_workers);
	qs = rte_zmalloc("sky_rcu", sz, RTE_CACHE_LINE_SIZE);
	if (qs == NULL)
		return -ENOMEM;
	if (rte_rcu_qsbr_init(qs, n_workers) != 0) {
		rte_free(qs);
		return -EINVAL;
	}
	sky_rt.qs = qs;
	return 0;
}

void
sky_rcu_fini(void)
{
	rte_free(sky_rt.qs);
	sky_rt.qs = NULL;
}

void
sky_rcu_sync(void)
{
	if (sky_rt.qs != NULL)
		rte_rcu_qsbr_synchronize(sky_rt.qs, RTE_QSBR_THRID_INVALID);
}

void
sky_audit(uid_t uid, const char *fmt, ...)
{
	char what[768], ts[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rte_log(RTE_LOG_NOTICE, sky_logtype, "skygate: AUDIT %s uid=%u %s\n", ts, (unsigned int)uid,
		what);
}

int
sky_periodic_register(const char *name, uint64_t period_us, sky_periodic_fn fn, void *arg)
{
	struct periodic *p;
	uint64_t hz = sky_rt.tsc_hz ? sky_rt.tsc_hz : rte_get_tsc_hz();

	if (n_periodic == MAX_PERIODIC)
		return -ENOSPC;
	if (fn == NULL || period_us == 0)
		return -EINVAL;
	p = &periodic[n_periodic++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->period_tsc = hz / 1000000 * period_us;
	if (p->period_tsc == 0)
		p->period_tsc = 1;
	p->next_tsc = rte_rdtsc() + p->period_tsc;
	p->fn = fn;
	p->arg = arg;
	return 0;
}

void
sky_periodic_run(uint64_t now_tsc)
{
	for (unsigned int i = 0; i < n_periodic; i++) {
		struct periodic *p = &periodic[i];

		if (now_tsc < p->next_tsc)
			continue;
		p->next_tsc = now_tsc + p->period_tsc;
		p->fn(p->arg, now_tsc);
	}
}

void
sky_periodic_clear(void)
{
	n_periodic = 0;
}
