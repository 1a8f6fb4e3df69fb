/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Subscribers: the service model (plans, beams, classes) and the subscriber table.
 *
 * Config (validated here, every key checked, unknown keys are errors):
 *   subscribers: { file: PATH, unknown: drop | { plan: NAME }, capacity: N }
 *     file      CSV (see csv.c), relative to the working directory; absent: start empty
 *     unknown   what packets of no subscriber get: dropped (default) or a plan
 *               (sub_idx = SKY_SUB_NONE, beam 0)
 *     capacity  most subscribers the process holds (sizes counters, tables and the
 *               shaper's per-subscriber state); default max(rows * 5/4, 4096), at most
 *               2^21 - 2
 *   plans: NAME: { down: RATE, up: RATE, burst: SIZE, down_burst: SIZE, up_burst: SIZE,
 *                  weight: N, class_weights: { CLASS: N } }
 *     down, up     required, > 0
 *     burst        sets down_burst and up_burst; the specific keys win
 *     down_burst   default max(down / 8 * 10 ms, 64 KiB); up_burst likewise from up
 *     weight       share of a congested beam, default down in kbit/s (at least 1)
 *     class_weights  1..65535 per class, default 1
 *   beams: NAME: { down: RATE, up: RATE }   both required, > 0
 *   classes: see classes.c
 *
 * Memory per subscriber (rte_malloc): a 16-byte record, per worker 8 * (4 * classes + 4)
 * bytes of counters (160 B with 4 classes), the rte_lpm6 rule hash (~90 B per address)
 * and tbl8 share, plus two fixed 64 MB rte_lpm6 tbl24s (a third once a realm is used).
 * bench_subscriber prints the measured figure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_lpm6.h>
#include <rte_malloc.h>
#include <rte_branch_prediction.h>
#include <rte_prefetch.h>

#include "skygate/runtime.h"
#include "subs_priv.h"

const char *const sky_subs_dg_names[SKY_SUBS_DG_MAX] = {"policy", "police", "unknown", "other"};

static uint8_t drop_group[SKY_DROP_MAX] = {
	[SKY_DROP_POLICY] = SKY_SUBS_DG_POLICY,	   [SKY_DROP_POLICY_FAULT] = SKY_SUBS_DG_POLICY,
	[SKY_DROP_POLICE] = SKY_SUBS_DG_POLICE,	   [SKY_DROP_QUEUE_TAIL] = SKY_SUBS_DG_POLICE,
	[SKY_DROP_QUEUE_AQM] = SKY_SUBS_DG_POLICE, [SKY_DROP_SUB_UNKNOWN] = SKY_SUBS_DG_UNKNOWN,
};

static void __attribute__((constructor)) drop_group_init(void)
{
	for (unsigned int i = 0; i < SKY_DROP_MAX; i++)
		if (drop_group[i] == 0 && i != SKY_DROP_POLICY && i != SKY_DROP_POLICY_FAULT)
			drop_group[i] = SKY_SUBS_DG_OTHER;
}

static int efail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
efail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ------------------------------------------------------------------ id map */

static inline uint32_t
idmap_slot(const struct idmap *m, uint32_t id)
{
	uint32_t h = id * 0x9E3779B1u;

	return (h ^ (h >> 15)) & m->mask;
}

static int
idmap_init(struct idmap *m, uint32_t cap)
{
	uint32_t size = 1024;

	while (size < cap * 2u)
		size <<= 1;
	m->keys = calloc(size, sizeof(uint32_t));
	m->vals = malloc(size * sizeof(uint32_t));
	m->mask = size - 1;
	if (m->keys == NULL || m->vals == NULL) {
		free(m->keys);
		free(m->vals);
		m->keys = m->vals = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void
idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = m->vals = NULL;
}

static uint32_t
idmap_get(const struct idmap *m, uint32_t id)
{
	for (uint32_t i = idmap_slot(m, id);; i = (i + 1) & m->mask) {
		if (m->keys[i] == id)
			return m->vals[i];
		if (m->keys[i] == 0)
			return SKY_SUB_NONE;
	}
}

static void
idmap_put(struct idmap *m, uint32_t id, uint32_t val)
{
	uint32_t i = idmap_slot(m, id);

	while (m->keys[i] != 0 && m->keys[i] != id)
		i = (i + 1) & m->mask;
	m->keys[i] = id;
	m->vals[i] = val;
}

static void
idmap_del(struct idmap *m, uint32_t id)
{
	uint32_t i = idmap_slot(m, id), j;

	while (m->keys[i] != id) {
		if (m->keys[i] == 0)
			return;
		i = (i + 1) & m->mask;
	}
	/* backward-shift deletion keeps probe chains intact */
	for (j = i;;) {
		uint32_t k;

		j = (j + 1) & m->mask;
		if (m->keys[j] == 0)
			break;
		k = idmap_slot(m, m->keys[j]);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
}

/* ------------------------------------------------------------------ model */

static int
check_name(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *at,
	   const char *what, const char *name)
{
	if (name[0] == '\0' || strlen(name) >= SKY_NAME_MAX)
		return sky_cfg_fail(err, cfg, at, "%s name '%s' must be 1..%d characters", what,
				    name, SKY_NAME_MAX - 1);
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return sky_cfg_fail(err, cfg, at,
					    "%s name '%s': use letters, digits, '_', '-' or '.'",
					    what, name);
	return 0;
}

void
subs_plan_defaults(struct sky_plan *p, const struct plan_x *x)
{
	if (!x->down_burst_set) {
		uint64_t b = p->down_bps / 800; /* bytes in 10 ms */

		p->down_burst_bytes = b > 65536 ? b : 65536;
	}
	if (!x->up_burst_set) {
		uint64_t b = p->up_bps / 800;

		p->up_burst_bytes = b > 65536 ? b : 65536;
	}
	if (!x->weight_set) {
		uint64_t w = p->down_bps / 1000;

		p->weight = w == 0 ? 1 : w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
	}
}

static int
rate_pos(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
	 const char *key, bool req, uint64_t *out)
{
	if (sky_cfg_get_rate(err, cfg, n, key, req, out) < 0)
		return -1;
	if (sky_cfg_get(n, key) != NULL && *out == 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(n, key), "rate must be > 0");
	return 0;
}

static int
size_pos(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
	 const char *key, uint64_t *out, bool *set)
{
	if (sky_cfg_get(n, key) == NULL)
		return 0;
	if (sky_cfg_get_size(err, cfg, n, key, false, out) < 0)
		return -1;
	if (*out == 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(n, key), "burst must be > 0");
	*set = true;
	return 0;
}

/* a required top-level map of NAME: {...} entries, 1..max of them; returns the count or -1 */
static int
named_section(const struct sky_cfg *cfg, struct sky_cfg_err *err, const char *key, size_t max,
	      const struct sky_cfg_node **out)
{
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, key);
	size_t n;

	if (sec == NULL)
		return sky_cfg_fail_missing(err, cfg, cfg->root, key);
	if (sky_cfg_type(sec) != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, sec, "expected a map of %s (NAME: {down, up})", key);
	n = sky_cfg_len(sec);
	if (n == 0)
		return sky_cfg_fail(err, cfg, sec, "no %s", key);
	if (n > max)
		return sky_cfg_fail(err, cfg, sec, "%zu %s, at most %zu", n, key, max);
	*out = sec;
	return (int)n;
}

static int
parse_plans(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	static const char *const keys[] = {"down",     "up",	 "burst",	  "down_burst",
					   "up_burst", "weight", "class_weights", NULL};
	const struct sky_cfg_node *sec = NULL;
	int r = named_section(cfg, err, "plans", SKY_MAX_PLANS, &sec);
	size_t n;

	if (r < 0)
		return -1;
	n = (size_t)r;
	for (size_t i = 0; i < n; i++) {
		const struct sky_cfg_node *p = sky_cfg_at(sec, i), *cw;
		const char *name = sky_cfg_key_at(sec, i);
		struct sky_plan *pl = &s->plans[i];
		struct plan_x *x = &s->plan_x[i];
		uint64_t burst = 0, v;
		bool burst_set = false;

		memset(pl, 0, sizeof(*pl));
		memset(x, 0, sizeof(*x));
		if (check_name(err, cfg, p, "plan", name) < 0 ||
		    sky_cfg_check_keys(err, cfg, p, keys) < 0)
			return -1;
		snprintf(pl->name, sizeof(pl->name), "%s", name);
		if (rate_pos(err, cfg, p, "down", true, &pl->down_bps) < 0 ||
		    rate_pos(err, cfg, p, "up", true, &pl->up_bps) < 0 ||
		    size_pos(err, cfg, p, "burst", &burst, &burst_set) < 0 ||
		    size_pos(err, cfg, p, "down_burst", &pl->down_burst_bytes, &x->down_burst_set) <
			    0 ||
		    size_pos(err, cfg, p, "up_burst", &pl->up_burst_bytes, &x->up_burst_set) < 0)
			return -1;
		if (burst_set) {
			if (!x->down_burst_set)
				pl->down_burst_bytes = burst;
			if (!x->up_burst_set)
				pl->up_burst_bytes = burst;
			x->down_burst_set = x->up_burst_set = true;
		}
		if (sky_cfg_get(p, "weight") != NULL) {
			if (sky_cfg_get_u64(err, cfg, p, "weight", false, 1, UINT32_MAX, &v) < 0)
				return -1;
			pl->weight = (uint32_t)v;
			x->weight_set = true;
		}
		subs_plan_defaults(pl, x);
		for (unsigned int c = 0; c < SKY_MAX_CLASSES; c++)
			pl->class_weight[c] = 1;
		cw = sky_cfg_get(p, "class_weights");
		if (cw != NULL) {
			if (sky_cfg_type(cw) != SKY_CFG_MAP)
				return sky_cfg_fail(err, cfg, cw, "expected a map CLASS: WEIGHT");
			for (size_t k = 0; k < sky_cfg_len(cw); k++) {
				const char *cn = sky_cfg_key_at(cw, k);
				int ci = sky_subs_class_index(s, cn);

				if (ci < 0)
					return sky_cfg_fail(err, cfg, sky_cfg_at(cw, k),
							    "unknown class '%s'", cn);
				if (sky_cfg_get_u64(err, cfg, cw, cn, true, 1, 65535, &v) < 0)
					return -1;
				pl->class_weight[ci] = (uint32_t)v;
			}
		}
		s->n_plans = (unsigned int)i + 1;
	}
	return 0;
}

static int
parse_beams(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	static const char *const keys[] = {"down", "up", NULL};
	const struct sky_cfg_node *sec = NULL;
	int r = named_section(cfg, err, "beams", SKY_MAX_BEAMS, &sec);
	size_t n;

	if (r < 0)
		return -1;
	n = (size_t)r;
	for (size_t i = 0; i < n; i++) {
		const struct sky_cfg_node *b = sky_cfg_at(sec, i);
		const char *name = sky_cfg_key_at(sec, i);
		struct sky_beam *bm = &s->beams[i];

		memset(bm, 0, sizeof(*bm));
		if (check_name(err, cfg, b, "beam", name) < 0 ||
		    sky_cfg_check_keys(err, cfg, b, keys) < 0)
			return -1;
		snprintf(bm->name, sizeof(bm->name), "%s", name);
		if (rate_pos(err, cfg, b, "down", true, &bm->down_bps) < 0 ||
		    rate_pos(err, cfg, b, "up", true, &bm->up_bps) < 0)
			return -1;
		s->n_beams = (unsigned int)i + 1;
	}
	return 0;
}

void
subs_names(const struct sky_subs *s, struct sky_subs_names *nm)
{
	nm->n_plans = s->n_plans;
	nm->n_beams = s->n_beams;
	for (unsigned int i = 0; i < s->n_plans; i++)
		nm->plans[i] = s->plans[i].name;
	for (unsigned int i = 0; i < s->n_beams; i++)
		nm->beams[i] = s->beams[i].name;
}

/* Read and parse a CSV file: rows + tbl8 needs. */
static int
load_csv(const struct sky_subs *s, const char *path, struct sky_subs_rows *rows, uint32_t need[3],
	 char *err, size_t errlen)
{
	struct sky_subs_names nm;
	struct stat st;
	void *map = NULL;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return efail(err, errlen, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return efail(err, errlen, "%s: not a regular file", path);
	}
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (map == MAP_FAILED) {
			close(fd);
			return efail(err, errlen, "%s: mmap: %s", path, strerror(errno));
		}
		madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	}
	close(fd);
	subs_names(s, &nm);
	rc = sky_subs_csv_parse(&nm, path, map != NULL ? map : "", (size_t)st.st_size, rows, err,
				errlen);
	if (map != NULL)
		munmap(map, (size_t)st.st_size);
	if (rc == 0)
		rc = sky_subs_rows_check_need(path, rows, need, err, errlen);
	if (rc < 0)
		sky_subs_rows_free(rows);
	return rc;
}

/* ------------------------------------------------------------------ tables */

static struct rte_lpm6 *
lpm_create(struct sky_subs *s, const char *kind, uint32_t max_rules, uint32_t tbl8)
{
	struct rte_lpm6_config c = {.max_rules = max_rules, .number_tbl8s = tbl8};
	static unsigned int seq; /* rte object names are process-wide */
	char name[32];

	(void)s;
	snprintf(name, sizeof(name), "sky_s%s_%u", kind, seq++);
	return rte_lpm6_create(name, SOCKET_ID_ANY, &c);
}

/* groups a table needs now, plus room for runtime adds: a new /32 or /56 outside the
 * groups in use takes one to three; most land in groups already there */
static uint32_t
tbl8_budget(uint32_t need, uint32_t spare_subs)
{
	return need + need / 8 + 1024 + spare_subs / 16;
}

static int
lpmr_create(struct sky_subs *s, struct subs_tables *t, uint32_t n_realm_entries, uint32_t need,
	    uint32_t spare)
{
	t->max_rules[2] = 2 * n_realm_entries + 4096;
	t->tbl8[2] = tbl8_budget(need, spare / 8);
	struct rte_lpm6 *l = lpm_create(s, "r", t->max_rules[2], t->tbl8[2]);

	if (l == NULL)
		return -ENOMEM;
	__atomic_store_n(&t->lpmr, l, __ATOMIC_RELEASE);
	return 0;
}

static void
tables_free(struct subs_tables *t)
{
	if (t == NULL)
		return;
	rte_lpm6_free(t->lpm4);
	rte_lpm6_free(t->lpm6);
	rte_lpm6_free(t->lpmr);
	rte_free(t->rec);
	rte_free(t);
}

static struct rte_lpm6 *
table_of(const struct subs_tables *t, unsigned int table)
{
	return table == 0 ? t->lpm4 : table == 1 ? t->lpm6 : t->lpmr;
}

/* add one address of a subscriber; 0 or -errno */
static int
addr_add(struct subs_tables *t, uint8_t fam, uint16_t realm, const uint8_t *a, uint8_t len,
	 uint32_t idx)
{
	uint8_t key[16], depth, table;

	sky_subs_lpm_key(fam, realm, a, len, key, &depth, &table);
	if (realm != 0)
		__atomic_fetch_or(&t->realm_bm[realm >> 6], 1ULL << (realm & 63), __ATOMIC_RELEASE);
	return rte_lpm6_add(table_of(t, table), key, depth, idx);
}

static void
addr_del(struct subs_tables *t, uint8_t fam, uint16_t realm, const uint8_t *a, uint8_t len)
{
	uint8_t key[16], depth, table;

	sky_subs_lpm_key(fam, realm, a, len, key, &depth, &table);
	rte_lpm6_delete(table_of(t, table), key, depth);
}

/* owner idx of exactly this (realm, prefix), or SKY_SUB_NONE */
static uint32_t
addr_owner(const struct subs_tables *t, uint8_t fam, uint16_t realm, const uint8_t *a, uint8_t len)
{
	uint8_t key[16], depth, table;
	uint32_t nh;
	struct rte_lpm6 *l;

	sky_subs_lpm_key(fam, realm, a, len, key, &depth, &table);
	l = table_of(t, table);
	if (l == NULL || rte_lpm6_is_rule_present(l, key, depth, &nh) != 1)
		return SKY_SUB_NONE;
	return nh;
}

static const char *
lpm_err(int rc)
{
	return rc == -ENOSPC ? "lookup table full (raise subscribers.capacity, or subscriber load "
			       "to resize)"
			     : strerror(-rc);
}

static struct subs_tables *
tables_create(struct sky_subs *s, const struct sky_subs_rows *rows, const uint32_t *row_idx,
	      const uint32_t need[3], char *err, size_t errlen)
{
	struct subs_tables *t;
	uint32_t spare = s->capacity - (uint32_t)rows->n, n_realm = 0;

	t = rte_zmalloc("sky_subs_tab", sizeof(*t), RTE_CACHE_LINE_SIZE);
	if (t == NULL)
		goto nomem;
	t->rec = rte_zmalloc("sky_subs_rec", (size_t)s->capacity * sizeof(*t->rec),
			     RTE_CACHE_LINE_SIZE);
	t->max_rules[0] = t->max_rules[1] = s->capacity + 64;
	t->tbl8[0] = tbl8_budget(need[0], spare);
	t->tbl8[1] = tbl8_budget(need[1], spare);
	t->lpm4 = lpm_create(s, "4", t->max_rules[0], t->tbl8[0]);
	t->lpm6 = lpm_create(s, "6", t->max_rules[1], t->tbl8[1]);
	if (t->rec == NULL || t->lpm4 == NULL || t->lpm6 == NULL)
		goto nomem;
	for (size_t i = 0; i < rows->n; i++)
		if (rows->r[i].realm != 0)
			n_realm += rows->r[i].has4 + rows->r[i].has6;
	if (n_realm > 0 && lpmr_create(s, t, n_realm, need[2], spare) < 0)
		goto nomem;
	for (size_t i = 0; i < rows->n; i++) {
		const struct sky_subs_row *r = &rows->r[i];
		uint32_t idx = row_idx != NULL ? row_idx[i] : (uint32_t)i;
		int rc = 0;

		t->rec[idx].realm = r->realm;
		t->rec[idx].w = sky_sub_rec_word(r->id, r->country, r->plan, r->beam);
		if (r->has4)
			rc = addr_add(t, 4, r->realm, r->v4, r->len4, idx);
		if (rc == 0 && r->has6)
			rc = addr_add(t, 6, r->realm, r->v6, r->len6, idx);
		if (rc < 0) {
			efail(err, errlen, "line %u: id %u: %s", r->line, r->id, lpm_err(rc));
			tables_free(t);
			return NULL;
		}
	}
	return t;
nomem:
	efail(err, errlen, "out of DPDK memory for %u subscribers (capacity)", s->capacity);
	tables_free(t);
	return NULL;
}

static void
info_of_row(const struct sky_subs_row *r, uint32_t idx, struct sky_sub_info *in)
{
	memset(in, 0, sizeof(*in));
	in->id = r->id;
	in->idx = idx;
	in->plan = r->plan;
	in->beam = r->beam;
	in->country = r->country;
	in->realm = r->realm;
	in->has_v4 = r->has4;
	in->has_v6 = r->has6;
	memcpy(in->v4, r->v4, 4);
	in->v4_len = r->len4;
	memcpy(in->v6, r->v6, 16);
	in->v6_len = r->len6;
}

/* control-side state of one generation of the table */
struct ctl_state {
	struct sky_sub_info *info;
	struct idmap map;
	uint32_t *free_idx;
	uint32_t n_free;
};

static int
ctl_state_build(const struct sky_subs *s, const struct sky_subs_rows *rows, const uint32_t *row_idx,
		struct ctl_state *cs)
{
	uint32_t cap = s->capacity;

	memset(cs, 0, sizeof(*cs));
	cs->info = calloc(cap, sizeof(*cs->info));
	cs->free_idx = malloc(cap * sizeof(uint32_t));
	if (cs->info == NULL || cs->free_idx == NULL || idmap_init(&cs->map, cap) < 0)
		goto fail;
	for (size_t i = 0; i < rows->n; i++) {
		uint32_t idx = row_idx != NULL ? row_idx[i] : (uint32_t)i;

		info_of_row(&rows->r[i], idx, &cs->info[idx]);
		idmap_put(&cs->map, rows->r[i].id, idx);
	}
	for (uint32_t i = cap; i-- > 0;)
		if (cs->info[i].id == 0)
			cs->free_idx[cs->n_free++] = i;
	return 0;
fail:
	free(cs->info);
	free(cs->free_idx);
	idmap_free(&cs->map);
	return -ENOMEM;
}

static void
realm_refs_recount(struct sky_subs *s)
{
	memset(s->realm_refs, 0, sizeof(s->realm_refs));
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && s->info[i].realm != 0)
			s->realm_refs[s->info[i].realm] += s->info[i].has_v4 + s->info[i].has_v6;
}

/* ------------------------------------------------------------------ create */

static int
parse_subscribers_section(struct sky_subs *s, const struct sky_cfg *cfg, struct sky_cfg_err *err,
			  const char **file, uint64_t *capacity)
{
	static const char *const keys[] = {"file", "unknown", "capacity", NULL};
	static const char *const ukeys[] = {"plan", NULL};
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, "subscribers"), *u;

	*file = NULL;
	*capacity = 0;
	s->unknown_plan = -1;
	if (sec == NULL)
		return 0;
	if (sky_cfg_check_keys(err, cfg, sec, keys) < 0 ||
	    sky_cfg_get_str(err, cfg, sec, "file", false, file) < 0 ||
	    sky_cfg_get_u64(err, cfg, sec, "capacity", false, 1, SKY_SUBS_MAX_CAPACITY, capacity) <
		    0)
		return -1;
	u = sky_cfg_get(sec, "unknown");
	if (u == NULL)
		return 0;
	if (sky_cfg_type(u) == SKY_CFG_SCALAR) {
		if (strcmp(sky_cfg_str(u), "drop") != 0)
			return sky_cfg_fail(err, cfg, u,
					    "'%s': expected 'drop' or a map { plan: NAME }",
					    sky_cfg_str(u));
		return 0;
	}
	if (sky_cfg_check_keys(err, cfg, u, ukeys) < 0)
		return -1;
	{
		const char *pn;

		if (sky_cfg_get_str(err, cfg, u, "plan", true, &pn) < 0)
			return -1;
		s->unknown_plan = sky_subs_plan_index(s, pn);
		if (s->unknown_plan < 0)
			return sky_cfg_fail(err, cfg, sky_cfg_get(u, "plan"), "unknown plan '%s'",
					    pn);
	}
	return 0;
}

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
	struct ctl_state cs;
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
	if (parse_plans(s, cfg, err) < 0 || parse_beams(s, cfg, err) < 0 ||
	    parse_subscribers_section(s, cfg, err, &file, &capacity) < 0)
		goto fail;
	if (file != NULL) {
		snprintf(s->csv_path, sizeof(s->csv_path), "%s", file);
		if (load_csv(s, file, &rows, need, msg, sizeof(msg)) < 0) {
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
	s->tab = tables_create(s, &rows, NULL, need, msg, sizeof(msg));
	if (s->tab == NULL) {
		sky_cfg_fail(err, cfg, NULL, "%s: %s", file ? file : "subscribers", msg);
		goto fail;
	}
	if (ctl_state_build(s, &rows, NULL, &cs) < 0) {
		sky_cfg_fail(err, cfg, NULL, "out of memory");
		goto fail;
	}
	s->info = cs.info;
	s->map = cs.map;
	s->free_idx = cs.free_idx;
	s->n_free = cs.n_free;
	s->n_subs = (uint32_t)rows.n;
	realm_refs_recount(s);
	sky_subs_rows_free(&rows);
	return s;
fail:
	sky_subs_rows_free(&rows);
	sky_subs_destroy(s);
	return NULL;
}

void sky_subs_unregister(struct sky_subs *s);

void
sky_subs_destroy(struct sky_subs *s)
{
	if (s == NULL)
		return;
	sky_subs_unregister(s);
	tables_free(s->tab);
	for (unsigned int w = 0; w < SKY_MAX_WORKERS; w++)
		rte_free(s->ctr[w]);
	rte_free(s->ws);
	free(s->info);
	free(s->free_idx);
	idmap_free(&s->map);
	sky_class_set_free(&s->cs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ------------------------------------------------------------------ accessors */

unsigned int
sky_subs_n_plans(const struct sky_subs *s)
{
	return s->n_plans;
}

unsigned int
sky_subs_n_beams(const struct sky_subs *s)
{
	return s->n_beams;
}

unsigned int
sky_subs_n_classes(const struct sky_subs *s)
{
	return s->cs.n_classes;
}

struct sky_plan
sky_subs_plan(const struct sky_subs *s, unsigned int idx)
{
	return s->plans[idx];
}

struct sky_beam
sky_subs_beam(const struct sky_subs *s, unsigned int idx)
{
	return s->beams[idx];
}

struct sky_class
sky_subs_class(const struct sky_subs *s, unsigned int idx)
{
	return s->cs.cls[idx];
}

int
sky_subs_plan_index(const struct sky_subs *s, const char *name)
{
	for (unsigned int i = 0; i < s->n_plans; i++)
		if (strcmp(s->plans[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
sky_subs_beam_index(const struct sky_subs *s, const char *name)
{
	for (unsigned int i = 0; i < s->n_beams; i++)
		if (strcmp(s->beams[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
sky_subs_class_index(const struct sky_subs *s, const char *name)
{
	for (unsigned int i = 0; i < s->cs.n_classes; i++)
		if (strcmp(s->cs.cls[i].name, name) == 0)
			return (int)i;
	return -1;
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

int
sky_subs_get(const struct sky_subs *s, uint32_t id, struct sky_sub_info *out)
{
	uint32_t idx = id != 0 ? idmap_get(&s->map, id) : SKY_SUB_NONE;

	if (idx == SKY_SUB_NONE)
		return -ENOENT;
	*out = s->info[idx];
	return 0;
}

void
sky_subs_foreach(const struct sky_subs *s, int (*fn)(void *arg, const struct sky_sub_info *),
		 void *arg)
{
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && fn(arg, &s->info[i]) != 0)
			return;
}

int
sky_subs_listen(struct sky_subs *s, sky_subs_listener_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	if (s->n_listeners == SUBS_MAX_HOOKS)
		return -ENOSPC;
	s->listeners[s->n_listeners].fn = fn;
	s->listeners[s->n_listeners++].arg = arg;
	return 0;
}

int
sky_subs_validate_hook(struct sky_subs *s, sky_subs_validator_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	if (s->n_validators == SUBS_MAX_HOOKS)
		return -ENOSPC;
	s->validators[s->n_validators].fn = fn;
	s->validators[s->n_validators++].arg = arg;
	return 0;
}

void
subs_notify(struct sky_subs *s, enum sky_subs_event ev, uint32_t index,
	    const struct sky_sub_info *info)
{
	for (unsigned int i = 0; i < s->n_listeners; i++)
		s->listeners[i].fn(s->listeners[i].arg, ev, index, info);
}

static int
run_validators(struct sky_subs *s, enum sky_subs_event ev, uint32_t index, const void *nv,
	       char *err, size_t errlen)
{
	for (unsigned int i = 0; i < s->n_validators; i++) {
		char msg[256] = "";

		if (s->validators[i].fn(s->validators[i].arg, ev, index, nv, msg, sizeof(msg)) != 0)
			return efail(err, errlen, "refused: %s", msg[0] ? msg : "by a validator");
	}
	return 0;
}

void
subs_sum_counters(const struct sky_subs *s, uint32_t idx, uint64_t *out)
{
	memset(out, 0, s->stride * sizeof(uint64_t));
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		const uint64_t *c = s->ctr[w] + (size_t)idx * s->stride;

		for (unsigned int k = 0; k < s->stride; k++)
			out[k] += __atomic_load_n(&c[k], __ATOMIC_RELAXED);
	}
}

static void
counters_zero(struct sky_subs *s, uint32_t idx)
{
	for (unsigned int w = 0; w < s->n_ctr_workers; w++)
		memset(s->ctr[w] + (size_t)idx * s->stride, 0, s->stride * sizeof(uint64_t));
}

/* ------------------------------------------------------------------ data path */

static inline int
realm_on(const struct subs_tables *t, uint16_t vid)
{
	return (__atomic_load_n(&t->realm_bm[(vid >> 6) & 63], __ATOMIC_RELAXED) >> (vid & 63)) & 1;
}

void
sky_subs_lookup_burst(struct sky_subs *s, unsigned int worker, struct sky_meta *meta, uint16_t n)
{
	const struct subs_tables *t = __atomic_load_n(&s->tab, __ATOMIC_ACQUIRE);
	const struct rte_lpm6 *lr = __atomic_load_n(&t->lpmr, __ATOMIC_ACQUIRE);
	struct subs_wstats *ws = &s->ws[worker];
	/* keys gathered per table, looked up in bulk (measured: ~20% fewer cycles than one
	 * rte_lpm6_lookup per packet), then the records prefetched for the whole burst */
	uint8_t k4[SKY_BURST][16], k6[SKY_BURST][16], kr[SKY_BURST][16];
	uint8_t p4[SKY_BURST], p6[SKY_BURST], pr[SKY_BURST];
	int32_t h[SKY_BURST];
	uint32_t idx[SKY_BURST];
	unsigned int n4 = 0, n6 = 0, nr = 0;

	if (unlikely(n > SKY_BURST)) { /* side arrays are SKY_BURST long; be safe anyway */
		for (uint16_t o = 0; o < n; o += SKY_BURST)
			sky_subs_lookup_burst(s, worker, meta + o,
					      (uint16_t)RTE_MIN(SKY_BURST, n - o));
		return;
	}

	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		const uint8_t *a = sky_meta_sub_addr(m);

		idx[i] = SKY_SUB_NONE;
		if (!sky_meta_live(m))
			continue;
		if (unlikely(m->outer_vid != 0 && lr != NULL && realm_on(t, m->outer_vid))) {
			uint16_t realm = m->outer_vid & 0xfff;

			kr[nr][0] = (uint8_t)((m->l3 == 4 ? 0x40 : 0x60) | (realm >> 8));
			kr[nr][1] = (uint8_t)realm;
			memcpy(&kr[nr][2], a, 14);
			pr[nr++] = (uint8_t)i;
		} else if (m->l3 == 4) {
			memcpy(k4[n4], a, 16);
			p4[n4++] = (uint8_t)i;
		} else {
			memcpy(k6[n6], a, 16);
			p6[n6++] = (uint8_t)i;
		}
	}
	if (unlikely(nr != 0)) {
		rte_lpm6_lookup_bulk_func(lr, kr, h, nr);
		for (unsigned int j = 0; j < nr; j++) {
			const struct sky_meta *m = &meta[pr[j]];

			if (h[j] >= 0) {
				idx[pr[j]] = (uint32_t)h[j];
				rte_prefetch0(&t->rec[h[j]]);
			} else if (m->l3 == 4) { /* no realm match: realm 0 */
				memcpy(k4[n4], sky_meta_sub_addr(m), 16);
				p4[n4++] = pr[j];
			} else {
				memcpy(k6[n6], sky_meta_sub_addr(m), 16);
				p6[n6++] = pr[j];
			}
		}
	}
	if (n4 != 0) {
		rte_lpm6_lookup_bulk_func(t->lpm4, k4, h, n4);
		for (unsigned int j = 0; j < n4; j++)
			if (h[j] >= 0) {
				idx[p4[j]] = (uint32_t)h[j];
				rte_prefetch0(&t->rec[h[j]]);
			}
	}
	if (n6 != 0) {
		rte_lpm6_lookup_bulk_func(t->lpm6, k6, h, n6);
		for (unsigned int j = 0; j < n6; j++)
			if (h[j] >= 0) {
				idx[p6[j]] = (uint32_t)h[j];
				rte_prefetch0(&t->rec[h[j]]);
			}
	}
	for (uint16_t i = 0; i < n; i++) {
		struct sky_meta *m = &meta[i];

		if (!sky_meta_live(m)) {
			m->sub_idx = SKY_SUB_NONE;
			continue;
		}
		if (idx[i] != SKY_SUB_NONE) {
			const struct sky_sub_rec *r = &t->rec[idx[i]];
			uint64_t w = __atomic_load_n(&r->w, __ATOMIC_RELAXED);

			if (w != 0) {
				m->sub_idx = idx[i];
				m->sub_id = (uint32_t)w;
				m->sub_country = (uint16_t)(w >> 32);
				m->plan = (uint16_t)((w >> 48) & 0xff);
				m->beam = (uint16_t)(w >> 56);
				m->realm = __atomic_load_n(&r->realm, __ATOMIC_RELAXED);
				continue;
			}
		}
		ws->unknown[m->dir & 1]++;
		m->sub_idx = SKY_SUB_NONE;
		m->sub_id = 0;
		m->sub_country = SKY_COUNTRY_NONE;
		m->realm = 0;
		m->beam = 0;
		if (s->unknown_plan < 0) {
			m->plan = 0;
			sky_meta_drop(m, SKY_DROP_SUB_UNKNOWN);
		} else {
			m->plan = (uint16_t)s->unknown_plan;
		}
	}
}

void
sky_subs_account_burst(struct sky_subs *s, unsigned int worker, const struct sky_meta *meta,
		       uint16_t n)
{
	struct subs_wstats *ws = &s->ws[worker];
	uint64_t *base = s->ctr[worker];
	const unsigned int nc = s->n_classes, stride = s->stride;
	const uint32_t cap = s->capacity;

	/* the counter lines of the whole burst first: they are random in a large array */
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];

		if (m->sub_idx < cap && m->l3 != 0) {
			uint64_t *c = base + (size_t)m->sub_idx * stride;
			unsigned int k = (m->dir & 1) * nc + (m->cls < nc ? m->cls : 0);

			rte_prefetch0(&c[k]);
			rte_prefetch0(&c[2 * nc + k]);
		}
	}
	for (uint16_t i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		uint64_t *c = m->sub_idx < cap ? base + (size_t)m->sub_idx * stride : NULL;
		unsigned int dir = m->dir & 1;

		if (m->l3 == 0)
			continue;
		if (m->verdict == SKY_V_PASS) {
			unsigned int cls = m->cls < nc ? m->cls : s->default_cls;

			ws->pkts[dir][cls]++;
			ws->bytes[dir][cls] += m->pkt_len;
			if (c != NULL) {
				c[dir * nc + cls]++;
				c[2 * nc + dir * nc + cls] += m->pkt_len;
			}
		} else {
			unsigned int g = drop_group[m->reason < SKY_DROP_MAX ? m->reason : 0];

			ws->drops[g]++;
			if (c != NULL)
				c[4 * nc + g]++;
		}
	}
}

/* ------------------------------------------------------------------ find */

uint32_t
subs_find(const struct sky_subs *s, uint8_t fam, const uint8_t *addr, uint16_t vid)
{
	const struct subs_tables *t = s->tab;
	uint8_t key[16] = {0};
	uint32_t nh;

	memcpy(key, addr, fam == 4 ? 4 : 16);
	if (vid != 0 && vid <= SKY_REALM_MAX && t->lpmr != NULL && realm_on(t, vid)) {
		uint8_t rk[16];

		rk[0] = (uint8_t)((fam == 4 ? 0x40 : 0x60) | (vid >> 8));
		rk[1] = (uint8_t)vid;
		memcpy(rk + 2, key, 14);
		if (rte_lpm6_lookup(t->lpmr, rk, &nh) == 0 && t->rec[nh].w != 0)
			return nh;
	}
	if (rte_lpm6_lookup(fam == 4 ? t->lpm4 : t->lpm6, key, &nh) == 0 && t->rec[nh].w != 0)
		return nh;
	return SKY_SUB_NONE;
}

/* ------------------------------------------------------------------ changes */

static int
check_addrs(const struct sky_subs *s, const struct sky_sub_info *ni, uint32_t self, char *err,
	    size_t errlen)
{
	char txt[64];

	if (!ni->has_v4 && !ni->has_v6)
		return efail(err, errlen, "a subscriber needs ipv4 or ipv6");
	if (ni->realm > SKY_REALM_MAX)
		return efail(err, errlen, "realm %u is not a VLAN id 0..%d", ni->realm,
			     SKY_REALM_MAX);
	if (ni->realm != 0 && ni->has_v6 && ni->v6_len > SKY_REALM_V6_MAX_LEN)
		return efail(err, errlen, "ipv6: a subscriber with a realm may have at most a /%d",
			     SKY_REALM_V6_MAX_LEN);
	for (int f = 0; f < 2; f++) {
		uint8_t fam = f == 0 ? 4 : 6;
		const uint8_t *a = f == 0 ? ni->v4 : ni->v6;
		uint8_t len = f == 0 ? ni->v4_len : ni->v6_len;
		uint32_t o;

		if (!(f == 0 ? ni->has_v4 : ni->has_v6))
			continue;
		o = addr_owner(s->tab, fam, ni->realm, a, len);
		if (o != SKY_SUB_NONE && o != self) {
			inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, txt, sizeof(txt));
			return efail(err, errlen, "ipv%c %s/%u (realm %u) already belongs to id %u",
				     fam == 4 ? '4' : '6', txt, len, ni->realm, s->info[o].id);
		}
	}
	return 0;
}

static int
check_model(const struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	if (ni->id == 0)
		return efail(err, errlen, "id must be 1..4294967295");
	if (ni->plan >= s->n_plans)
		return efail(err, errlen, "plan index %u out of range", ni->plan);
	if (ni->beam >= s->n_beams)
		return efail(err, errlen, "beam index %u out of range", ni->beam);
	return 0;
}

static int
ensure_lpmr(struct sky_subs *s, uint16_t realm, char *err, size_t errlen)
{
	if (realm == 0 || s->tab->lpmr != NULL)
		return 0;
	if (lpmr_create(s, s->tab, 0, 0, s->capacity) < 0)
		return efail(err, errlen, "out of DPDK memory for the realm table");
	return 0;
}

static void
realm_unref(struct sky_subs *s, uint16_t realm)
{
	if (realm == 0 || --s->realm_refs[realm] != 0)
		return;
	__atomic_fetch_and(&s->tab->realm_bm[realm >> 6], ~(1ULL << (realm & 63)),
			   __ATOMIC_RELEASE);
}

int
subs_op_add(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	struct sky_sub_info in = *ni;
	uint32_t idx;
	int rc = 0;

	if (check_model(s, ni, err, errlen) < 0)
		return -1;
	if (idmap_get(&s->map, ni->id) != SKY_SUB_NONE)
		return efail(err, errlen, "id %u exists (use subscriber set)", ni->id);
	if (check_addrs(s, ni, SKY_SUB_NONE, err, errlen) < 0)
		return -1;
	if (s->n_free == 0)
		return efail(err, errlen,
			     "subscriber table full (capacity %u; raise subscribers.capacity)",
			     s->capacity);
	if (ensure_lpmr(s, ni->realm, err, errlen) < 0)
		return -1;
	idx = s->free_idx[s->n_free - 1];
	__atomic_store_n(&t->rec[idx].realm, ni->realm, __ATOMIC_RELAXED);
	__atomic_store_n(&t->rec[idx].w, sky_sub_rec_word(ni->id, ni->country, ni->plan, ni->beam),
			 __ATOMIC_RELEASE);
	if (ni->has_v4)
		rc = addr_add(t, 4, ni->realm, ni->v4, ni->v4_len, idx);
	if (rc == 0 && ni->has_v6) {
		rc = addr_add(t, 6, ni->realm, ni->v6, ni->v6_len, idx);
		if (rc < 0 && ni->has_v4) {
			addr_del(t, 4, ni->realm, ni->v4, ni->v4_len);
			sky_rcu_sync();
		}
	}
	if (rc < 0) {
		__atomic_store_n(&t->rec[idx].w, 0, __ATOMIC_RELEASE);
		return efail(err, errlen, "%s", lpm_err(rc));
	}
	s->n_free--;
	in.idx = idx;
	s->info[idx] = in;
	idmap_put(&s->map, in.id, idx);
	s->n_subs++;
	if (in.realm != 0)
		s->realm_refs[in.realm] += in.has_v4 + in.has_v6;
	subs_notify(s, SKY_SUBS_EV_SUB_ADD, idx, &s->info[idx]);
	return 0;
}

int
subs_op_del(struct sky_subs *s, uint32_t id, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	uint32_t idx = id != 0 ? idmap_get(&s->map, id) : SKY_SUB_NONE;
	struct sky_sub_info old;

	if (idx == SKY_SUB_NONE)
		return efail(err, errlen, "no subscriber with id %u", id);
	old = s->info[idx];
	if (old.has_v4)
		addr_del(t, 4, old.realm, old.v4, old.v4_len);
	if (old.has_v6)
		addr_del(t, 6, old.realm, old.v6, old.v6_len);
	if (old.realm != 0) {
		if (old.has_v4)
			realm_unref(s, old.realm);
		if (old.has_v6)
			realm_unref(s, old.realm);
	}
	/* no worker holds idx after this: reuse of tbl8 groups, record and counters is safe */
	sky_rcu_sync();
	__atomic_store_n(&t->rec[idx].w, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->rec[idx].realm, 0, __ATOMIC_RELAXED);
	counters_zero(s, idx);
	memset(&s->info[idx], 0, sizeof(s->info[idx]));
	idmap_del(&s->map, id);
	s->free_idx[s->n_free++] = idx;
	s->n_subs--;
	subs_notify(s, SKY_SUBS_EV_SUB_DEL, idx, &old);
	return 0;
}

static int
same_addr(const struct sky_sub_info *a, const struct sky_sub_info *b, int fam)
{
	if (fam == 4)
		return a->has_v4 == b->has_v4 &&
		       (!a->has_v4 || (a->realm == b->realm && a->v4_len == b->v4_len &&
				       memcmp(a->v4, b->v4, 4) == 0));
	return a->has_v6 == b->has_v6 &&
	       (!a->has_v6 ||
		(a->realm == b->realm && a->v6_len == b->v6_len && memcmp(a->v6, b->v6, 16) == 0));
}

int
subs_op_set(struct sky_subs *s, const struct sky_sub_info *ni, char *err, size_t errlen)
{
	struct subs_tables *t = s->tab;
	uint32_t idx = ni->id != 0 ? idmap_get(&s->map, ni->id) : SKY_SUB_NONE;
	struct sky_sub_info old, in = *ni;
	int ch4, ch6, rc = 0;

	if (idx == SKY_SUB_NONE)
		return efail(err, errlen, "no subscriber with id %u", ni->id);
	if (check_model(s, ni, err, errlen) < 0 || check_addrs(s, ni, idx, err, errlen) < 0)
		return -1;
	if (ensure_lpmr(s, ni->realm, err, errlen) < 0)
		return -1;
	old = s->info[idx];
	in.idx = idx;
	ch4 = !same_addr(&old, &in, 4);
	ch6 = !same_addr(&old, &in, 6);
	/* 1. new addresses first (undone if the second cannot be added) */
	if (ch4 && in.has_v4)
		rc = addr_add(t, 4, in.realm, in.v4, in.v4_len, idx);
	if (rc == 0 && ch6 && in.has_v6) {
		rc = addr_add(t, 6, in.realm, in.v6, in.v6_len, idx);
		if (rc < 0 && ch4 && in.has_v4) {
			addr_del(t, 4, in.realm, in.v4, in.v4_len);
			sky_rcu_sync();
		}
	}
	if (rc < 0)
		return efail(err, errlen, "%s", lpm_err(rc));
	/* 2. the record: one atomic store */
	__atomic_store_n(&t->rec[idx].realm, in.realm, __ATOMIC_RELAXED);
	__atomic_store_n(&t->rec[idx].w, sky_sub_rec_word(in.id, in.country, in.plan, in.beam),
			 __ATOMIC_RELEASE);
	/* 3. old addresses out */
	if (in.realm != 0)
		s->realm_refs[in.realm] += (ch4 && in.has_v4) + (ch6 && in.has_v6);
	if (ch4 && old.has_v4) {
		addr_del(t, 4, old.realm, old.v4, old.v4_len);
		realm_unref(s, old.realm);
	}
	if (ch6 && old.has_v6) {
		addr_del(t, 6, old.realm, old.v6, old.v6_len);
		realm_unref(s, old.realm);
	}
	if ((ch4 && old.has_v4) || (ch6 && old.has_v6))
		sky_rcu_sync();
	s->info[idx] = in;
	subs_notify(s, SKY_SUBS_EV_SUB_SET, idx, &s->info[idx]);
	return 0;
}

int
subs_op_load(struct sky_subs *s, const char *path, char *err, size_t errlen)
{
	struct sky_subs_rows rows = {0};
	uint32_t need[3], *row_idx = NULL, next_free = 0, n_reuse = 0;
	uint8_t *used = NULL;
	uint32_t *reuse = NULL;
	struct subs_tables *nt, *old;
	struct ctl_state cs;
	uint32_t *zero = NULL, n_zero = 0;

	if (load_csv(s, path, &rows, need, err, errlen) < 0)
		return -1;
	if (rows.n > s->capacity) {
		efail(err, errlen, "%s: %zu subscribers exceed capacity %u", path, rows.n,
		      s->capacity);
		goto fail;
	}
	row_idx = malloc((rows.n + 1) * sizeof(uint32_t));
	used = calloc(s->capacity, 1);
	reuse = malloc((size_t)s->capacity * sizeof(uint32_t));
	zero = malloc((size_t)s->capacity * sizeof(uint32_t));
	if (row_idx == NULL || used == NULL || reuse == NULL || zero == NULL) {
		efail(err, errlen, "out of memory");
		goto fail;
	}
	/* ids that stay keep their index (counters, shaper state); new ids take indexes free
	 * in the old table first, then those of removed ids */
	for (size_t i = 0; i < rows.n; i++) {
		uint32_t idx = idmap_get(&s->map, rows.r[i].id);

		row_idx[i] = idx;
		if (idx != SKY_SUB_NONE)
			used[idx] = 1;
	}
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && !used[i])
			reuse[n_reuse++] = i;
	for (size_t i = 0, r = 0; i < rows.n; i++) {
		if (row_idx[i] != SKY_SUB_NONE)
			continue;
		while (next_free < s->capacity && (used[next_free] || s->info[next_free].id != 0))
			next_free++;
		if (next_free < s->capacity) {
			row_idx[i] = next_free;
			used[next_free] = 1;
		} else {
			row_idx[i] = reuse[r++];
		}
	}
	nt = tables_create(s, &rows, row_idx, need, err, errlen);
	if (nt == NULL)
		goto fail;
	if (ctl_state_build(s, &rows, row_idx, &cs) < 0) {
		tables_free(nt);
		efail(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0 && cs.info[i].id != s->info[i].id)
			zero[n_zero++] = i;
	old = s->tab;
	__atomic_store_n(&s->tab, nt, __ATOMIC_RELEASE);
	sky_rcu_sync();
	tables_free(old);
	for (uint32_t i = 0; i < n_zero; i++)
		counters_zero(s, zero[i]);
	free(s->info);
	free(s->free_idx);
	idmap_free(&s->map);
	s->info = cs.info;
	s->map = cs.map;
	s->free_idx = cs.free_idx;
	s->n_free = cs.n_free;
	s->n_subs = (uint32_t)rows.n;
	realm_refs_recount(s);
	snprintf(s->csv_path, sizeof(s->csv_path), "%s", path);
	free(row_idx);
	free(used);
	free(reuse);
	free(zero);
	sky_subs_rows_free(&rows);
	subs_notify(s, SKY_SUBS_EV_RELOAD, 0, NULL);
	return 0;
fail:
	free(row_idx);
	free(used);
	free(reuse);
	free(zero);
	sky_subs_rows_free(&rows);
	return -1;
}

int
subs_op_plan_set(struct sky_subs *s, unsigned int idx, const struct sky_plan *np,
		 const struct plan_x *nx, char *err, size_t errlen)
{
	if (idx >= s->n_plans)
		return efail(err, errlen, "plan index %u out of range", idx);
	if (np->down_bps == 0 || np->up_bps == 0)
		return efail(err, errlen, "%s must be > 0", np->down_bps == 0 ? "down" : "up");
	if (np->down_burst_bytes == 0 || np->up_burst_bytes == 0)
		return efail(err, errlen, "%s must be > 0",
			     np->down_burst_bytes == 0 ? "down_burst" : "up_burst");
	if (np->weight == 0)
		return efail(err, errlen, "weight must be > 0");
	for (unsigned int c = 0; c < s->cs.n_classes; c++)
		if (np->class_weight[c] == 0 || np->class_weight[c] > 65535)
			return efail(err, errlen, "cw.%s must be 1..65535", s->cs.cls[c].name);
	if (run_validators(s, SKY_SUBS_EV_PLAN, idx, np, err, errlen) < 0)
		return -1;
	s->plans[idx] = *np;
	s->plan_x[idx] = *nx;
	subs_notify(s, SKY_SUBS_EV_PLAN, idx, NULL);
	return 0;
}

int
subs_op_beam_set(struct sky_subs *s, unsigned int idx, const struct sky_beam *nb, char *err,
		 size_t errlen)
{
	if (idx >= s->n_beams)
		return efail(err, errlen, "beam index %u out of range", idx);
	if (nb->down_bps == 0 || nb->up_bps == 0)
		return efail(err, errlen, "%s must be > 0", nb->down_bps == 0 ? "down" : "up");
	if (run_validators(s, SKY_SUBS_EV_BEAM, idx, nb, err, errlen) < 0)
		return -1;
	s->beams[idx] = *nb;
	subs_notify(s, SKY_SUBS_EV_BEAM, idx, NULL);
	return 0;
}
