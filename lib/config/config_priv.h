/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internal to lib/config. The folder is cut by job; each file calls only those listed
 * above it (checked with nm):
 *
 *   units.c         unit parsers on plain strings (rates, sizes, times, integers, countries)
 *   config_msg.c    messages "FILE:LINE: PATH: reason", dotted paths, values echoed safely
 *   config_tree.c   the tree: nodes, maps with a hash index, the read accessors
 *   config_yaml.c   reading a file: libyaml events -> the tree
 *   config_check.c  allowed keys and sections
 *   config_get.c    typed getters on nodes and keys
 *   config_out.c    defaults merged in from YAML text; the tree written back as YAML
 */
#ifndef SKYGATE_CONFIG_PRIV_H
#define SKYGATE_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/config.h"

#define MAX_DEPTH 64 /* nesting levels below the root */
#define SHOW_MAX 64  /* characters of a value echoed in messages */
#define SHOWBUF (SHOW_MAX + 8)

struct sky_cfg_node {
	enum sky_cfg_type type;
	unsigned int line;	   /* 1-based; map values: the key's line */
	bool null;		   /* plain scalar "", "~" or "null": written without a value */
	char *path;		   /* "ports[1].device"; "" for the root */
	char *text;		   /* SCALAR only */
	size_t n, cap;		   /* entries of a MAP or SEQ */
	struct sky_cfg_node **val; /* SEQ items or MAP values, in file order */
	char **key;		   /* MAP keys (NULL for SEQ) */
	uint32_t *hidx;		   /* MAP with many keys: open-addressing index, slot = i + 1 */
	size_t hcap;		   /* slots in hidx (power of two), 0 = no index yet */
};

/* --- config_msg.c --- */

/* The file name for messages ("<config>" without one). */
const char *sky_cfg_file_of(const struct sky_cfg *cfg);
/* "a map", "a list", "a single value". */
const char *sky_cfg_type_name(enum sky_cfg_type t);
/* Copy s for a message into buf (SHOWBUF bytes): at most SHOW_MAX bytes, control
 * characters as '?', "..." when cut. Returns buf. */
const char *sky_cfg_show(char *buf, size_t len, const char *s);
/* Fail with "FILE: ", "FILE:LINE: " or "FILE:LINE: PATH: " and the reason; returns -1. */
int sky_cfg_emit(struct sky_cfg_err *err, const char *file, unsigned int line, const char *path,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Same with "FILE:LINE:COL: " (syntax errors). */
int sky_cfg_emit_col(struct sky_cfg_err *err, const char *file, unsigned int line, unsigned int col,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* words joined by sep into buf ("none" for no words). */
int sky_cfg_list_words(char *buf, size_t len, const char *const *words, const char *sep);
/* "parent.key", "key" at the root, or parent["odd key"]; malloc'd, NULL on ENOMEM. */
char *sky_cfg_join_path(const char *parent, const char *key);
/* "parent[i]"; malloc'd, NULL on ENOMEM. */
char *sky_cfg_index_path(const char *parent, size_t i);

/* --- config_tree.c --- */

/* A node of type at line; takes path (malloc'd). NULL on ENOMEM. */
struct sky_cfg_node *sky_cfg_node_new(enum sky_cfg_type type, unsigned int line, char *path);
/* Append child (and, to a map, key: both owned by parent on success); 0 or -ENOMEM. */
int sky_cfg_node_append(struct sky_cfg_node *parent, struct sky_cfg_node *child, char *key);
void sky_cfg_node_free(struct sky_cfg_node *n);
/* Index of key in map, or -1. */
long sky_cfg_map_find(const struct sky_cfg_node *map, const char *key);

#endif
