/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* --- stopping: the request, the cooperative check, the watchdog --- */

volatile int sky_rt_exit_code;

static struct {
	sem_t wake; /* posted by a stop request (async-signal-safe) or by stop() */
	pthread_t tid;
	int started;
	volatile int done; /* the main thread finished shutting down */
	unsigned int grace_ms;
	sky_rt_expire_fn fn;
	void *arg;
} wd;

static char busy[128];

void
sky_rt_request_stop(int sig)
{
	int first = __atomic_exchange_n(&sky_rt.stop, 1, __ATOMIC_SEQ_CST) == 0;

	if (__atomic_load_n(&sky_rt.serving, __ATOMIC_SEQ_CST))
		__atomic_store_n(&sky_rt.cancel, 1, __ATOMIC_SEQ_CST);
	if (!first)
		return;
	__atomic_store_n(&sky_rt.stop_signal, sig, __ATOMIC_RELAXED);
	if (__atomic_load_n(&wd.started, __ATOMIC_ACQUIRE))
		sem_post(&wd.wake);
}

void
sky_rt_request_reload(void)
{
	__atomic_store_n(&sky_rt.reload, 1, __ATOMIC_RELAXED);
}

int
sky_rt_take_reload(void)
{
	return __atomic_exchange_n(&sky_rt.reload, 0, __ATOMIC_RELAXED) != 0;
}

void
sky_rt_set_serving(int on)
{
	__atomic_store_n(&sky_rt.serving, on ? 1 : 0, __ATOMIC_SEQ_CST);
	/* a stop that came before serving began still cancels work started after */
	if (on && __atomic_load_n(&sky_rt.stop, __ATOMIC_SEQ_CST))
		__atomic_store_n(&sky_rt.cancel, 1, __ATOMIC_SEQ_CST);
	if (!on)
		__atomic_store_n(&sky_rt.cancel, 0, __ATOMIC_SEQ_CST);
}

void
sky_rt_set_busy(const char *what)
{
	/* a torn read by the watchdog costs at worst a garbled word in its message */
	snprintf(busy, sizeof(busy), "%s", what ? what : "");
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Flush f unless another thread holds it (it may never let go). */
static void
flush_if_free(FILE *f)
{
	if (ftrylockfile(f) != 0)
		return;
	fflush_unlocked(f);
	funlockfile(f);
}

static void *
watchdog_main(void *unused)
{
	uint64_t deadline;
	char what[sizeof(busy)];
	int sig;

	(void)unused;
	while (sem_wait(&wd.wake) != 0 && errno == EINTR)
		;
	if (__atomic_load_n(&wd.done, __ATOMIC_ACQUIRE))
		return NULL;
	deadline = mono_ms() + wd.grace_ms;
	while (mono_ms() < deadline) {
		struct timespec d = {.tv_sec = 0, .tv_nsec = 10 * 1000000};

		if (__atomic_load_n(&wd.done, __ATOMIC_ACQUIRE))
			return NULL;
		nanosleep(&d, NULL);
	}
	if (__atomic_load_n(&wd.done, __ATOMIC_ACQUIRE))
		return NULL;
	sig = __atomic_load_n(&sky_rt.stop_signal, __ATOMIC_RELAXED);
	memcpy(what, busy, sizeof(what));
	what[sizeof(what) - 1] = '\0';
	/* dprintf, not stderr: the main thread may hold stdio's lock, stuck in a write */
	dprintf(STDERR_FILENO,
		"skygate: shutdown watchdog: the main thread has not finished %u ms after "
		"%s%s%s%s; "
		"exiting now (acknowledged changes are in the journal)\n",
		wd.grace_ms, sig > 0 ? "signal " : "the stop request",
		sig > 0 ? strsignal(sig) : "",
		what[0] ? ", busy with " : " (not in a control request)", what);
	if (wd.fn != NULL)
		wd.fn(wd.arg);
	flush_if_free(stdout);
	flush_if_free(stderr);
	_exit(sky_rt_exit_code);
}

int
sky_rt_watchdog_start(unsigned int grace_ms, sky_rt_expire_fn fn, void *arg)
{
	sigset_t all, old;
	int rc;

	if (wd.started)
		return -EALREADY;
	if (sem_init(&wd.wake, 0, 0) != 0)
		return -errno;
	wd.grace_ms = grace_ms;
	wd.fn = fn;
	wd.arg = arg;
	wd.done = 0;
	/* signals go to the other threads: the handler's sem_post wakes this one */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&wd.tid, NULL, watchdog_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		sem_destroy(&wd.wake);
		return -rc;
	}
	__atomic_store_n(&wd.started, 1, __ATOMIC_RELEASE);
	/* a stop requested before the thread existed */
	if (__atomic_load_n(&sky_rt.stop, __ATOMIC_SEQ_CST))
		sem_post(&wd.wake);
	return 0;
}

void
sky_rt_watchdog_stop(void)
{
	if (!__atomic_load_n(&wd.started, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&wd.done, 1, __ATOMIC_RELEASE);
	sem_post(&wd.wake);
	pthread_join(wd.tid, NULL);
	__atomic_store_n(&wd.started, 0, __ATOMIC_RELEASE);
	sem_destroy(&wd.wake);
}
