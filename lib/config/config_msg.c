/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * How the configuration names things in its messages: "FILE:LINE: PATH: reason", dotted
 * paths ("ports[1].device", plans["odd key"]), values echoed safely, lists of words.
 * The first error wins.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/config.h"

#include "config_priv.h"

/* ------------------------------------------------------------------ messages */

const char *
sky_cfg_file_of(const struct sky_cfg *cfg)
{
	return cfg != NULL && cfg->file != NULL ? cfg->file : "<config>";
}

const char *
sky_cfg_type_name(enum sky_cfg_type t)
{
	switch (t) {
	case SKY_CFG_MAP:
		return "a map";
	case SKY_CFG_SEQ:
		return "a list";
	case SKY_CFG_SCALAR:
		return "a single value";
	}
	return "?";
}

/* Copy s for a message: at most SHOW_MAX bytes, control characters as '?'. */
const char *
sky_cfg_show(char *buf, size_t len, const char *s)
{
	size_t i, n = 0;

	for (i = 0; s[i] != '\0' && n + 4 < len && i < SHOW_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (s[i] != '\0') {
		buf[n++] = '.';
		buf[n++] = '.';
		buf[n++] = '.';
	}
	buf[n] = '\0';
	return buf;
}

/* "FILE: ", "FILE:LINE: ", "FILE:LINE:COL: " or "FILE:LINE: PATH: ", then the reason. */
static int
vemit(struct sky_cfg_err *err, const char *file, unsigned int line, unsigned int col,
      const char *path, const char *fmt, va_list ap)
{
	int n;

	if (err == NULL || err->failed)
		return -1;
	if (line != 0 && col != 0)
		n = snprintf(err->msg, sizeof(err->msg), "%s:%u:%u: ", file, line, col);
	else if (line == 0)
		n = snprintf(err->msg, sizeof(err->msg), "%s: ", file);
	else if (path == NULL || path[0] == '\0')
		n = snprintf(err->msg, sizeof(err->msg), "%s:%u: ", file, line);
	else
		n = snprintf(err->msg, sizeof(err->msg), "%s:%u: %s: ", file, line, path);
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(err->msg))
		vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
	err->failed = 1;
	return -1;
}

int
sky_cfg_emit(struct sky_cfg_err *err, const char *file, unsigned int line, const char *path,
	     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vemit(err, file, line, 0, path, fmt, ap);
	va_end(ap);
	return -1;
}

int
sky_cfg_emit_col(struct sky_cfg_err *err, const char *file, unsigned int line, unsigned int col,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vemit(err, file, line, col, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int
sky_cfg_fail(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
	     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vemit(err, sky_cfg_file_of(cfg), n != NULL ? n->line : 0, 0, n != NULL ? n->path : NULL,
	      fmt, ap);
	va_end(ap);
	return -1;
}

int
sky_cfg_list_words(char *buf, size_t len, const char *const *words, const char *sep)
{
	size_t n = 0;
	int w;

	buf[0] = '\0';
	if (words == NULL || words[0] == NULL) {
		snprintf(buf, len, "none");
		return 0;
	}
	for (; *words != NULL && n < len; words++) {
		w = snprintf(buf + n, len - n, "%s%s", n != 0 ? sep : "", *words);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return 0;
}

/* ------------------------------------------------------------------ paths */

static bool
key_needs_quotes(const char *key)
{
	const unsigned char *p = (const unsigned char *)key;

	if (*p == '\0')
		return true;
	for (; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '.' || *p == '[' || *p == ']' || *p == '"' ||
		    *p == '\\')
			return true;
	return false;
}

/* "parent.key", "key" at the root, or parent["odd key"]; malloc'd, NULL on ENOMEM. */
char *
sky_cfg_join_path(const char *parent, const char *key)
{
	size_t pl = strlen(parent), kl = strlen(key);
	char *s, *q;
	const unsigned char *p;

	if (!key_needs_quotes(key)) {
		s = malloc(pl + kl + 2);
		if (s == NULL)
			return NULL;
		if (pl == 0)
			memcpy(s, key, kl + 1);
		else
			sprintf(s, "%s.%s", parent, key);
		return s;
	}
	/* worst case every byte becomes \xNN */
	s = malloc(pl + 4 * kl + 5);
	if (s == NULL)
		return NULL;
	q = s + sprintf(s, "%s[\"", parent);
	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			*q++ = '\\';
			*q++ = (char)*p;
		} else if (*p < ' ' || *p == 0x7f) {
			q += sprintf(q, "\\x%02x", *p);
		} else {
			*q++ = (char)*p;
		}
	}
	strcpy(q, "\"]");
	return s;
}

char *
sky_cfg_index_path(const char *parent, size_t i)
{
	size_t len = strlen(parent) + 24;
	char *s = malloc(len);

	if (s != NULL)
		snprintf(s, len, "%s[%zu]", parent, i);
	return s;
}

int
sky_cfg_fail_missing(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		     const struct sky_cfg_node *map, const char *key)
{
	char *path;

	if (err == NULL || err->failed)
		return -1;
	if (map == NULL)
		return sky_cfg_emit(err, sky_cfg_file_of(cfg), 0, NULL, "%s: required", key);
	path = sky_cfg_join_path(map->path, key);
	sky_cfg_emit(err, sky_cfg_file_of(cfg), map->line, path != NULL ? path : key, "required");
	free(path);
	return -1;
}
