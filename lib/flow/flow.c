/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow table's owner: memory, time units, consumers, the drain of the workers' rings,
 * the flush. Control path (EAL main lcore).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_ring_elem.h>

#include "flow_priv.h"

const char *const sky_flow_ctr_names[FLOW_CTR_MAX] = {
#define FLOW_CTR_NAME(n, h) #n,
	FLOW_FOREACH_CTR(FLOW_CTR_NAME)
#undef FLOW_CTR_NAME
};
const char *const sky_flow_ctr_help[FLOW_CTR_MAX] = {
#define FLOW_CTR_HELP(n, h) h,
	FLOW_FOREACH_CTR(FLOW_CTR_HELP)
#undef FLOW_CTR_HELP
};

static unsigned int n_instances; /* ring names are unique per process */

/* largest s with 2^s <= x (0 for x < 2) */
static uint8_t
log2_floor(uint64_t x)
{
	return x < 2 ? 0 : (uint8_t)(63 - __builtin_clzll(x));
}

static uint64_t
div_ceil(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

static void
free_tables(struct sky_flow *f)
{
	if (f->w == NULL)
		return;
	for (unsigned int i = 0; i < f->n_workers; i++) {
		rte_free(f->w[i].b);
		rte_free(f->w[i].e);
		rte_free(f->w[i].c);
		rte_ring_free(f->w[i].rtt_ring);
		rte_ring_free(f->w[i].rec_ring);
	}
	rte_free(f->w);
	f->w = NULL;
}

/* the per-worker tables and rings (rte_zmalloc: hugepage memory the data path owns) */
static int
alloc_tables(struct sky_flow *f, char *err, size_t errlen)
{
	const uint32_t nb = f->p.entries / FLOW_WAYS;
	char name[RTE_RING_NAMESIZE];

	f->w = rte_zmalloc("sky_flow_workers", sizeof(*f->w) * f->n_workers, RTE_CACHE_LINE_SIZE);
	if (f->w == NULL)
		goto nomem;
	for (unsigned int i = 0; i < f->n_workers; i++) {
		struct flow_worker *w = &f->w[i];

		w->b = rte_zmalloc_socket("sky_flow_buckets", sizeof(*w->b) * nb,
					  RTE_CACHE_LINE_SIZE, SOCKET_ID_ANY);
		w->e = rte_zmalloc_socket("sky_flow_entries", sizeof(*w->e) * f->p.entries,
					  sizeof(*w->e), SOCKET_ID_ANY);
		w->c = rte_zmalloc_socket("sky_flow_cold", sizeof(*w->c) * f->p.entries,
					  RTE_CACHE_LINE_SIZE, SOCKET_ID_ANY);
		snprintf(name, sizeof(name), "skyflow%u_rtt%u", f->instance, i);
		w->rtt_ring =
			rte_ring_create_elem(name, sizeof(struct sky_rtt_sample), FLOW_RTT_RING,
					     SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "skyflow%u_rec%u", f->instance, i);
		w->rec_ring = rte_ring_create_elem(name, sizeof(struct sky_flow_rec), FLOW_REC_RING,
						   SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (w->b == NULL || w->e == NULL || w->c == NULL || w->rtt_ring == NULL ||
		    w->rec_ring == NULL)
			goto nomem;
	}
	f->mem_bytes = sizeof(struct flow_bucket) * nb +
		       (sizeof(struct flow_ent) + sizeof(struct flow_cold)) * f->p.entries +
		       rte_ring_get_memsize_elem(sizeof(struct sky_rtt_sample), FLOW_RTT_RING) +
		       rte_ring_get_memsize_elem(sizeof(struct sky_flow_rec), FLOW_REC_RING) +
		       sizeof(struct flow_worker);
	return 0;
nomem:
	snprintf(err, errlen,
		 "no memory for the flow table (%u workers x %u entries: %llu MiB each)",
		 f->n_workers, f->p.entries,
		 (unsigned long long)((sizeof(struct flow_ent) + sizeof(struct flow_cold) +
				       sizeof(struct flow_bucket) / FLOW_WAYS) *
					      f->p.entries >>
				      20));
	free_tables(f);
	return -ENOMEM;
}

struct sky_flow *
sky_flow_create_params(const struct flow_params *p, unsigned int n_workers, uint64_t tsc_hz,
		       char *err, size_t errlen)
{
	struct sky_flow *f;
	struct timespec ts;
	uint64_t hz = tsc_hz ? tsc_hz : 1000000000ULL;
	uint32_t nb;

	if (p->entries < FLOW_WAYS || (p->entries & (p->entries - 1)) != 0 ||
	    p->rtt_samples_per_sec == 0 || p->idle_timeout_us == 0 ||
	    p->idle_timeout_us > 120000000) {
		snprintf(err, errlen, "bad flow table parameters");
		return NULL;
	}
	f = rte_zmalloc("sky_flow", sizeof(*f), RTE_CACHE_LINE_SIZE);
	if (f == NULL) {
		snprintf(err, errlen, "no memory for the flow module");
		return NULL;
	}
	f->p = *p;
	f->n_workers = n_workers ? n_workers : 1;
	f->tsc_hz = hz;
	f->instance = __atomic_fetch_add(&n_instances, 1, __ATOMIC_RELAXED);
	f->rtt = p->present && p->rtt;
	f->records = p->present && p->records;
	nb = p->entries / FLOW_WAYS;
	f->bmask = nb - 1;
	f->seed = 0x5ca1ab1e;
	f->shift_f = log2_floor(hz / 1000000);
	f->shift_c = log2_floor(hz / 1000);
	f->shift_a = log2_floor(hz / 256);
	f->shift_s = log2_floor(hz);
	f->idle_c = (uint32_t)div_ceil(p->idle_timeout_us * (hz / 1000) / 1000, 1ULL << f->shift_c);
	f->active_c =
		(uint32_t)div_ceil(p->active_timeout_us / 1000 * (hz / 1000), 1ULL << f->shift_c);
	f->idle_a = (uint16_t)(p->idle_timeout_us * (hz / 1000) / 1000 >> f->shift_a);
	f->smp_gap_c = (uint32_t)div_ceil(hz / p->rtt_samples_per_sec, 1ULL << f->shift_c);
	f->us_mul = (1000000ULL << (24 + f->shift_f)) / hz;
	f->exp_step_tsc = hz * FLOW_EXPIRE_SLICE / nb;
	if (f->exp_step_tsc == 0)
		f->exp_step_tsc = 1;
	f->ns_per_tsc = 1e9 / (double)hz;
	clock_gettime(CLOCK_REALTIME, &ts);
	f->base_tsc = rte_rdtsc();
	f->base_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if ((f->rtt || f->records) && alloc_tables(f, err, errlen) < 0) {
		rte_free(f);
		return NULL;
	}
	f->on = f->w != NULL;
	return f;
}

int
sky_flow_enabled(const struct sky_flow *f)
{
	return f != NULL && f->on;
}

void
sky_flow_want_records(struct sky_flow *f)
{
	char err[256];

	if (f == NULL || f->records)
		return;
	if (f->w == NULL && alloc_tables(f, err, sizeof(err)) < 0) {
		SKY_LOG(ERR, "flow records stay off: %s", err);
		return;
	}
	f->records = 1;
	f->on = 1;
}

int
sky_flow_on_record(struct sky_flow *f, sky_flow_rec_fn fn, void *arg)
{
	if (f == NULL || fn == NULL)
		return -EINVAL;
	if (f->n_rec >= FLOW_MAX_CONSUMERS)
		return -ENOSPC;
	f->rec_fn[f->n_rec].fn = fn;
	f->rec_fn[f->n_rec].arg = arg;
	f->n_rec++;
	return 0;
}

int
sky_flow_on_rtt(struct sky_flow *f, sky_rtt_fn fn, void *arg)
{
	if (f == NULL || fn == NULL)
		return -EINVAL;
	if (f->n_rtt >= FLOW_MAX_CONSUMERS)
		return -ENOSPC;
	f->rtt_fn[f->n_rtt].fn = fn;
	f->rtt_fn[f->n_rtt].arg = arg;
	f->n_rtt++;
	return 0;
}

unsigned int
sky_flow_poll(struct sky_flow *f, uint64_t now_tsc)
{
	struct sky_rtt_sample smp[64];
	struct sky_flow_rec rec[32];
	unsigned int total = 0;

	if (f == NULL || f->w == NULL)
		return 0;
	for (unsigned int i = 0; i < f->n_workers; i++) {
		struct flow_worker *w = &f->w[i];
		unsigned int n;

		/* bounded: at most what the rings held when the drain began */
		for (unsigned int left = rte_ring_count(w->rtt_ring); left != 0; left -= n) {
			n = rte_ring_sc_dequeue_burst_elem(
				w->rtt_ring, smp, sizeof(smp[0]),
				RTE_DIM(smp) < left ? RTE_DIM(smp) : left, NULL);
			if (n == 0)
				break;
			for (unsigned int k = 0; k < n; k++)
				for (unsigned int c = 0; c < f->n_rtt; c++)
					f->rtt_fn[c].fn(f->rtt_fn[c].arg, &smp[k], now_tsc);
			total += n;
		}
		for (unsigned int left = rte_ring_count(w->rec_ring); left != 0; left -= n) {
			n = rte_ring_sc_dequeue_burst_elem(
				w->rec_ring, rec, sizeof(rec[0]),
				RTE_DIM(rec) < left ? RTE_DIM(rec) : left, NULL);
			if (n == 0)
				break;
			for (unsigned int k = 0; k < n; k++)
				for (unsigned int c = 0; c < f->n_rec; c++)
					f->rec_fn[c].fn(f->rec_fn[c].arg, &rec[k]);
			total += n;
		}
	}
	return total;
}

uint64_t
sky_flow_ctr_sum(const struct sky_flow *f, enum flow_ctr c)
{
	uint64_t s = 0;

	if (f == NULL || f->w == NULL)
		return 0;
	for (unsigned int i = 0; i < f->n_workers; i++)
		s += __atomic_load_n(&f->w[i].ctr[c], __ATOMIC_RELAXED);
	return s;
}

uint32_t
sky_flow_used(const struct sky_flow *f, unsigned int worker)
{
	if (f == NULL || f->w == NULL || worker >= f->n_workers)
		return 0;
	return __atomic_load_n(&f->w[worker].used, __ATOMIC_RELAXED);
}

void
sky_flow_request_flush(struct sky_flow *f)
{
	if (f == NULL || f->w == NULL)
		return;
	f->flush_gen++;
	for (unsigned int i = 0; i < f->n_workers; i++)
		__atomic_store_n(&f->w[i].flush_req, f->flush_gen, __ATOMIC_RELEASE);
}

unsigned int
sky_flow_flush(struct sky_flow *f)
{
	unsigned int drained = 0;

	if (f == NULL || f->w == NULL)
		return 0;
	for (unsigned int i = 0; i < f->n_workers; i++) {
		/* each call ends what its record ring has room for; drain, go on */
		while (sky_flow_worker_flush(f, i) != 0)
			drained += sky_flow_poll(f, rte_rdtsc());
	}
	drained += sky_flow_poll(f, rte_rdtsc());
	return drained;
}

void
sky_flow_destroy(struct sky_flow *f)
{
	if (f == NULL)
		return;
	if (f->on_destroy != NULL)
		f->on_destroy(f);
	sky_flow_flush(f);
	free_tables(f);
	rte_free(f);
}
