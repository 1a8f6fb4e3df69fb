/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subscribers: create and destroy. sky_subs_create() reads the model (subscriber_cfg.c),
 * the CSV (subscriber_csv.c) and builds the table (subscriber_table.c); the data path is
 * subscriber_dp.c, the commands subscriber_ctl.c. File map and layering: subscriber_priv.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

#include "subscriber_priv.h"

static int
counters_alloc(struct sky_subs *s)
{
	size_t bytes = (size_t)s->capacity * s->stride * sizeof(uint64_t);

	s->ws = rte_zmalloc("sky_subs_ws", s->n_ctr_workers * sizeof(*s->ws), RTE_CACHE_LINE_SIZE);
	if (s->ws == NULL)
		return -ENOMEM;
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		s->ctr[w] = rte_zmalloc_socket("sky_subs_ctr", bytes, RTE_CACHE_LINE_SIZE,
					       SOCKET_ID_ANY);
		if (s->ctr[w] == NULL)
			return -ENOMEM;
	}
	return 0;
}

struct sky_subs *
sky_subs_create(const struct sky_cfg *cfg, unsigned int n_workers, struct sky_cfg_err *err)
{
	struct sky_subs *s;
	struct sky_subs_rows rows = {0};
	uint32_t need[3] = {0, 0, 0};
	const char *file;
	uint64_t capacity;
	struct subs_state st;
	char msg[512];

	if (n_workers > SKY_MAX_WORKERS) {
		sky_cfg_fail(err, cfg, NULL, "%u workers, at most %d", n_workers, SKY_MAX_WORKERS);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		sky_cfg_fail(err, cfg, NULL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->n_workers = n_workers;
	s->n_ctr_workers = n_workers ? n_workers : 1;
	snprintf(s->cfg_file, sizeof(s->cfg_file), "%s", cfg->file ? cfg->file : "");
	if (sky_class_set_parse(cfg, err, &s->cs) < 0)
		goto fail;
	s->n_classes = s->cs.n_classes;
	s->default_cls = (unsigned int)s->cs.default_cls;
	s->stride = 4 * s->n_classes + SKY_SUBS_DG_MAX;
	if (subs_cfg_parse(s, cfg, err, &file, &capacity) < 0)
		goto fail;
	if (file != NULL) {
		struct sky_subs_csv_names nm;

		snprintf(s->csv_path, sizeof(s->csv_path), "%s", file);
		subs_names(s, &nm);
		if (sky_subs_rows_load(&nm, file, &rows, need, msg, sizeof(msg)) < 0) {
			sky_cfg_fail(err, cfg,
				     sky_cfg_get(sky_cfg_get(cfg->root, "subscribers"), "file"),
				     "%s", msg);
			goto fail;
		}
	}
	if (capacity == 0) {
		capacity = rows.n + rows.n / 4;
		if (capacity < 4096)
			capacity = 4096;
		if (capacity > SKY_SUBS_MAX_CAPACITY)
			capacity = SKY_SUBS_MAX_CAPACITY;
	}
	if (rows.n > capacity) {
		sky_cfg_fail(
			err, cfg, sky_cfg_get(sky_cfg_get(cfg->root, "subscribers"), "capacity"),
			"%zu subscribers in %s exceed capacity %" PRIu64, rows.n, file, capacity);
		goto fail;
	}
	s->capacity = (uint32_t)capacity;
	if (counters_alloc(s) < 0) {
		sky_cfg_fail(err, cfg, NULL, "out of DPDK memory for subscriber counters (%u x %u)",
			     s->capacity, s->n_ctr_workers);
		goto fail;
	}
	s->tab = subs_tables_create(s, &rows, NULL, need, msg, sizeof(msg));
	if (s->tab == NULL) {
		sky_cfg_fail(err, cfg, NULL, "%s: %s", file ? file : "subscribers", msg);
		goto fail;
	}
	if (subs_state_build(s, &rows, NULL, &st) < 0) {
		sky_cfg_fail(err, cfg, NULL, "out of memory");
		goto fail;
	}
	subs_state_install(s, &st, (uint32_t)rows.n);
	sky_subs_rows_free(&rows);
	return s;
fail:
	sky_subs_rows_free(&rows);
	sky_subs_destroy(s);
	return NULL;
}

void
sky_subs_destroy(struct sky_subs *s)
{
	if (s == NULL)
		return;
	if (s->on_destroy != NULL)
		s->on_destroy(s);
	subs_tables_free(s->tab);
	for (unsigned int w = 0; w < SKY_MAX_WORKERS; w++)
		rte_free(s->ctr[w]);
	rte_free(s->ws);
	subs_state_free(s);
	sky_class_set_free(&s->cs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int
sky_subs_unknown_plan(const struct sky_subs *s)
{
	return s->unknown_plan;
}

uint32_t
sky_subs_capacity(const struct sky_subs *s)
{
	return s->capacity;
}

uint32_t
sky_subs_count(const struct sky_subs *s)
{
	return s->n_subs;
}
