/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Process-wide runtime facts shared by the modules: workers, RCU, logging, audit,
 * periodic control-plane tasks.
 *
 * RCU: workers are rte_rcu_qsbr readers (thread id = worker id, 0..n_workers-1) and report
 * quiescence once per loop. A module that replaces a table publishes the new pointer with
 * __atomic_store_n(..., __ATOMIC_RELEASE), calls sky_rcu_sync(), then frees the old one.
 * Workers load table pointers once per burst with __atomic_load_n(..., __ATOMIC_ACQUIRE).
 */
#ifndef SKYGATE_RUNTIME_H
#define SKYGATE_RUNTIME_H

#include <stdint.h>
#include <sys/types.h>

#include <rte_log.h>

#define SKY_MAX_WORKERS 16

struct rte_rcu_qsbr;

struct sky_runtime {
	struct rte_rcu_qsbr *qs; /* NULL when no worker runs (tests, --check) */
	unsigned int n_workers;	 /* worker ids are 0..n_workers-1 */
	uint64_t tsc_hz;
	volatile int stop; /* set by the signal handler; workers leave their loop */
	/* Long control work (a CSV load, a geo reload, a policy check) gives up when this is
	 * set: sky_should_stop(). Set with stop once the daemon serves requests, never during
	 * start-up, where an abandoned journal record would look like damage. */
	volatile int cancel;
	volatile int serving;	  /* the main loop runs: a stop request also sets cancel */
	volatile int stop_signal; /* the signal that asked for the stop, 0 = none */
	/* SIGHUP: set by the handler, taken by the main loop (the hook for a reload) */
	volatile int reload;
};

extern struct sky_runtime sky_rt;
extern int sky_logtype;

#define SKY_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, sky_logtype, "skygate: " fmt "\n", ##__VA_ARGS__)

/** Initialise logging and tsc_hz (call after rte_eal_init, or before for tests). */
void sky_runtime_init(void);

/**
 * Create the QSBR variable for n workers (0 = none: sky_rcu_sync returns at once).
 * Returns 0 or -errno.
 */
int sky_rcu_init(unsigned int n_workers);
void sky_rcu_fini(void);
/** Wait until every worker has reported quiescence after this call (control path). */
void sky_rcu_sync(void);

/** Audit trail: "AUDIT uid=U <what>" at NOTICE level, with a UTC timestamp. */
void sky_audit(uid_t uid, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Run fn every period_us on the main lcore (control path). */
typedef void (*sky_periodic_fn)(void *arg, uint64_t now_tsc);
int sky_periodic_register(const char *name, uint64_t period_us, sky_periodic_fn fn, void *arg);
/** Called from the main loop: runs the tasks that are due. */
void sky_periodic_run(uint64_t now_tsc);
void sky_periodic_clear(void);

/*
 * Stopping. A signal handler calls sky_rt_request_stop(): workers and the main loop leave
 * their loops, long control work returns -EINTR ("stopped by shutdown") at its next
 * sky_should_stop() check, and the shutdown watchdog starts counting. If the main thread
 * has not called sky_rt_watchdog_stop() within the grace time (it is stuck in work without
 * a check, or its clean-up is slow), the watchdog thread calls its expire function (remove
 * what must not outlive the process: the control socket, DPDK's runtime files) and ends
 * the process with _exit(sky_rt_exit_code). The journal is written ahead of every change,
 * so nothing acknowledged is lost.
 */

/** Stop the process (async-signal-safe: call it from a signal handler). */
void sky_rt_request_stop(int sig);
/** Note a reload request (SIGHUP; async-signal-safe). The main loop takes it. */
void sky_rt_request_reload(void);
/** The main loop calls this: 1 once per reload request (clears it), else 0. */
int sky_rt_take_reload(void);
/** The daemon serves requests from now on (0: start-up or shutdown, nothing cancels). */
void sky_rt_set_serving(int on);

/**
 * Control work that can run long checks this in its loops (cheap: one load). When it
 * returns 1, undo what was done and return -EINTR with the message "stopped by shutdown".
 */
static inline int
sky_should_stop(void)
{
	return __atomic_load_n(&sky_rt.cancel, __ATOMIC_RELAXED) != 0;
}

/** What the main thread works on now, for the watchdog's message (NULL = nothing). */
void sky_rt_set_busy(const char *what);

typedef void (*sky_rt_expire_fn)(void *arg);
/**
 * Start the shutdown watchdog thread (once, after EAL init). grace_ms after the first stop
 * request, unless sky_rt_watchdog_stop() was called, it logs why, calls fn(arg) and exits
 * the process with sky_rt_exit_code. fn runs on the watchdog thread while the main thread
 * may still run: it must only do what is safe then (unlink files, print, flush).
 * Returns 0 or -errno.
 */
int sky_rt_watchdog_start(unsigned int grace_ms, sky_rt_expire_fn fn, void *arg);
/** The main thread has finished shutting down: the watchdog stands down and is joined. */
void sky_rt_watchdog_stop(void);
/** The exit status the watchdog uses (the daemon's status so far; default 0). */
extern volatile int sky_rt_exit_code;

/**
 * A big table the data path reads at random, zeroed, on 2 MB pages (rte_malloc with
 * hugepages; without them an anonymous 2 MB-aligned mapping with MADV_HUGEPAGE, faulted in
 * now). Control path. NULL when out of memory. Free with sky_big_free() (NULL is fine).
 */
void *sky_big_zalloc(const char *name, size_t size);
void sky_big_free(void *p);
/** Bytes sky_big_zalloc() holds outside rte_malloc now (benches add them to DPDK's). */
size_t sky_big_mapped(void);

/**
 * rte_eal_cleanup(), then, in a primary process, remove what DPDK leaves behind: the
 * runtime directory (/var/run/dpdk/<prefix>) and this prefix's hugepage files. Call it
 * instead of rte_eal_cleanup() on the way out. Returns rte_eal_cleanup()'s result.
 */
int sky_eal_cleanup(void);
/**
 * Remove only the files sky_eal_cleanup() removes after rte_eal_cleanup() (runtime
 * directory, hugepage files), leaving memory mapped: for a process about to _exit() while
 * another thread may still use DPDK (the shutdown watchdog). Primary process only.
 */
void sky_eal_remove_files(void);

#endif /* SKYGATE_RUNTIME_H */
