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

/**
 * rte_eal_cleanup(), then, in a primary process, remove what DPDK leaves behind: the
 * runtime directory (/var/run/dpdk/<prefix>) and this prefix's hugepage files. Call it
 * instead of rte_eal_cleanup() on the way out. Returns rte_eal_cleanup()'s result.
 */
int sky_eal_cleanup(void);

#endif /* SKYGATE_RUNTIME_H */
