/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The configuration tree: nodes that remember their line and dotted path, maps with a hash
 * index once they are large, and what modules read the tree with.
 *
 * Control path only (plain malloc). sky_cfg_free() recurses at most MAX_DEPTH levels (the
 * builder refuses deeper nesting).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/config.h"

#include "config_priv.h"

/*
 * Key lookup. Small maps are scanned; from HASH_MIN keys on a map gets a hash index, so
 * loading a policy map with 50k entries stays linear (duplicate checks look every key up).
 */
#define HASH_MIN 16

static uint32_t
hash_key(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void
index_put(struct sky_cfg_node *map, size_t i)
{
	size_t mask = map->hcap - 1, slot = hash_key(map->key[i]) & mask;

	while (map->hidx[slot] != 0)
		slot = (slot + 1) & mask;
	map->hidx[slot] = (uint32_t)i + 1;
}

/*
 * Index entry i (just appended); grows the index to keep it at most half full. Without
 * memory for an index the map is scanned instead: slower, still correct.
 */
static void
index_add(struct sky_cfg_node *map, size_t i)
{
	size_t cap, j;

	if (map->n < HASH_MIN || map->n > UINT32_MAX - 1)
		return;
	if (map->hidx == NULL || 2 * map->n > map->hcap) {
		for (cap = 64; cap < 4 * map->n; cap *= 2)
			;
		free(map->hidx);
		map->hidx = calloc(cap, sizeof(*map->hidx));
		map->hcap = cap;
		if (map->hidx == NULL) {
			map->hcap = 0;
			return;
		}
		for (j = 0; j < map->n; j++)
			index_put(map, j);
		return;
	}
	index_put(map, i);
}

long
sky_cfg_map_find(const struct sky_cfg_node *map, const char *key)
{
	size_t i, mask, slot;

	if (map->hidx == NULL) {
		for (i = 0; i < map->n; i++)
			if (strcmp(map->key[i], key) == 0)
				return (long)i;
		return -1;
	}
	mask = map->hcap - 1;
	for (slot = hash_key(key) & mask; map->hidx[slot] != 0; slot = (slot + 1) & mask)
		if (strcmp(map->key[map->hidx[slot] - 1], key) == 0)
			return (long)map->hidx[slot] - 1;
	return -1;
}

void
sky_cfg_node_free(struct sky_cfg_node *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->n; i++) {
		sky_cfg_node_free(n->val[i]);
		if (n->key != NULL)
			free(n->key[i]);
	}
	free(n->val);
	free(n->key);
	free(n->hidx);
	free(n->text);
	free(n->path);
	free(n);
}

void
sky_cfg_free(struct sky_cfg *cfg)
{
	if (cfg == NULL)
		return;
	sky_cfg_node_free(cfg->root);
	free(cfg->file);
	free(cfg);
}

enum sky_cfg_type
sky_cfg_type(const struct sky_cfg_node *n)
{
	return n->type;
}

unsigned int
sky_cfg_line(const struct sky_cfg_node *n)
{
	return n != NULL ? n->line : 0;
}

const char *
sky_cfg_path(const struct sky_cfg_node *n)
{
	return n != NULL ? n->path : "";
}

const char *
sky_cfg_str(const struct sky_cfg_node *n)
{
	return n != NULL && n->type == SKY_CFG_SCALAR ? n->text : NULL;
}

size_t
sky_cfg_len(const struct sky_cfg_node *n)
{
	return n != NULL && n->type != SKY_CFG_SCALAR ? n->n : 0;
}

struct sky_cfg_node *
sky_cfg_at(const struct sky_cfg_node *n, size_t i)
{
	if (n == NULL || n->type == SKY_CFG_SCALAR || i >= n->n)
		return NULL;
	return n->val[i];
}

const char *
sky_cfg_key_at(const struct sky_cfg_node *n, size_t i)
{
	if (n == NULL || n->type != SKY_CFG_MAP || i >= n->n)
		return NULL;
	return n->key[i];
}

struct sky_cfg_node *
sky_cfg_get(const struct sky_cfg_node *n, const char *key)
{
	long i;

	if (n == NULL || n->type != SKY_CFG_MAP || key == NULL)
		return NULL;
	i = sky_cfg_map_find(n, key);
	return i >= 0 ? n->val[i] : NULL;
}

/* ------------------------------------------------------------------ growing (the builder) */

struct sky_cfg_node *
sky_cfg_node_new(enum sky_cfg_type type, unsigned int line, char *path)
{
	struct sky_cfg_node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->type = type;
	n->line = line;
	n->path = path;
	return n;
}

int
sky_cfg_node_append(struct sky_cfg_node *parent, struct sky_cfg_node *child, char *key)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap != 0 ? parent->cap * 2 : 4;
		struct sky_cfg_node **v = realloc(parent->val, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		parent->val = v;
		if (parent->type == SKY_CFG_MAP) {
			char **k = realloc(parent->key, cap * sizeof(*k));

			if (k == NULL)
				return -ENOMEM;
			parent->key = k;
		}
		parent->cap = cap;
	}
	parent->val[parent->n] = child;
	if (parent->type == SKY_CFG_MAP)
		parent->key[parent->n] = key;
	parent->n++;
	if (parent->type == SKY_CFG_MAP)
		index_add(parent, parent->n - 1);
	return 0;
}
