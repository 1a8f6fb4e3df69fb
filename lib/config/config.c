/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Configuration tree: libyaml events -> nodes that remember their line and dotted path,
 * plus typed getters that report "FILE:LINE: PATH: reason".
 *
 * Control path only (plain malloc). The tree is built iteratively from the event stream
 * with an explicit stack bounded by MAX_DEPTH, so hostile input cannot recurse deeply;
 * sky_cfg_free() recurses at most MAX_DEPTH levels.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "skygate/config.h"

#define MAX_DEPTH 64			   /* nesting levels below the root */
#define MAX_FILE_BYTES (16u * 1024 * 1024) /* a config larger than this is a mistake */
#define SHOW_MAX 64			   /* characters of a value echoed in messages */

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

const char *const sky_cfg_sections[] = {
	"eal",	 "workers", "control", "ports",	 "mempool", "state",	 "subscribers", "plans",
	"beams", "classes", "geo",     "policy", "shaping", "telemetry", "log",		NULL,
};

/* ------------------------------------------------------------------ messages */

static const char *
file_of(const struct sky_cfg *cfg)
{
	return cfg != NULL && cfg->file != NULL ? cfg->file : "<config>";
}

static const char *
type_name(enum sky_cfg_type t)
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
static const char *
show(char *buf, size_t len, const char *s)
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

#define SHOWBUF (SHOW_MAX + 8)

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

static int __attribute__((format(printf, 5, 6)))
emit(struct sky_cfg_err *err, const char *file, unsigned int line, const char *path,
     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vemit(err, file, line, 0, path, fmt, ap);
	va_end(ap);
	return -1;
}

static int __attribute__((format(printf, 5, 6)))
emit_col(struct sky_cfg_err *err, const char *file, unsigned int line, unsigned int col,
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
	vemit(err, file_of(cfg), n != NULL ? n->line : 0, 0, n != NULL ? n->path : NULL, fmt, ap);
	va_end(ap);
	return -1;
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
static char *
join_path(const char *parent, const char *key)
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

static char *
index_path(const char *parent, size_t i)
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
		return emit(err, file_of(cfg), 0, NULL, "%s: required", key);
	path = join_path(map->path, key);
	emit(err, file_of(cfg), map->line, path != NULL ? path : key, "required");
	free(path);
	return -1;
}

/* ------------------------------------------------------------------ nodes */

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

static long
map_find(const struct sky_cfg_node *map, const char *key)
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

static void
node_free(struct sky_cfg_node *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->n; i++) {
		node_free(n->val[i]);
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
	node_free(cfg->root);
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
	i = map_find(n, key);
	return i >= 0 ? n->val[i] : NULL;
}

/* ------------------------------------------------------------------ building */

struct frame {
	struct sky_cfg_node *node;
	char *key; /* MAP: key read, value pending */
	unsigned int key_line;
};

struct builder {
	const char *file;
	const unsigned char *buf;
	size_t len;
	struct sky_cfg_err *err;
	struct sky_cfg *cfg;
	struct frame stack[MAX_DEPTH + 2];
	int depth;
	int docs;
	bool done;
};

static unsigned int
mark_line(const yaml_mark_t *m)
{
	return (unsigned int)m->line + 1;
}

static struct sky_cfg_node *
node_new(enum sky_cfg_type type, unsigned int line, char *path)
{
	struct sky_cfg_node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->type = type;
	n->line = line;
	n->path = path;
	return n;
}

static int
append(struct sky_cfg_node *parent, struct sky_cfg_node *child, char *key)
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

static int
oom(struct builder *b)
{
	return emit(b->err, b->file, 0, NULL, "out of memory");
}

static bool
is_null_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/*
 * Where the next node goes: its path and line. For a MAP parent with no pending key the
 * event is a key: *is_key is set and nothing else.
 */
static int
place(struct builder *b, const yaml_event_t *ev, char **path, unsigned int *line, bool *is_key)
{
	struct frame *top;

	*is_key = false;
	*line = mark_line(&ev->start_mark);
	if (b->depth == 0) {
		*path = strdup("");
		return *path != NULL ? 0 : oom(b);
	}
	top = &b->stack[b->depth - 1];
	if (top->node->type == SKY_CFG_SEQ) {
		*path = index_path(top->node->path, top->node->n);
		return *path != NULL ? 0 : oom(b);
	}
	if (top->key == NULL) {
		*is_key = true;
		return 0;
	}
	*line = top->key_line;
	*path = join_path(top->node->path, top->key);
	return *path != NULL ? 0 : oom(b);
}

static int
add_key(struct builder *b, const yaml_event_t *ev)
{
	struct frame *top = &b->stack[b->depth - 1];
	struct sky_cfg_node *map = top->node;
	unsigned int line = mark_line(&ev->start_mark);
	const char *k = (const char *)ev->data.scalar.value;
	char *path;
	long i;

	if (ev->type != YAML_SCALAR_EVENT)
		return emit(b->err, b->file, line, map->path, "a key must be a plain word, not %s",
			    ev->type == YAML_MAPPING_START_EVENT ? "a map" : "a list");
	if (strlen(k) != ev->data.scalar.length)
		return emit(b->err, b->file, line, map->path, "NUL character in a key");
	if (k[0] == '\0')
		return emit(b->err, b->file, line, map->path, "empty key");
	i = map_find(map, k);
	if (i >= 0) {
		path = join_path(map->path, k);
		emit(b->err, b->file, line, path != NULL ? path : k,
		     "duplicate key (first at line %u)", map->val[i]->line);
		free(path);
		return -1;
	}
	top->key = strdup(k);
	if (top->key == NULL)
		return oom(b);
	top->key_line = line;
	return 0;
}

/* Anchors, aliases and tags make a config hard to read and to diff: refuse them. */
static int
refuse_decorations(struct builder *b, unsigned int line, const char *path,
		   const yaml_char_t *anchor, const yaml_char_t *tag)
{
	char s[SHOWBUF];

	if (anchor != NULL)
		return emit(
			b->err, b->file, line, path,
			"anchor '&%s' not allowed: write values out in full (keep configs plain)",
			show(s, sizeof(s), (const char *)anchor));
	if (tag != NULL) {
		const char *t = (const char *)tag;
		const char *yaml_ns = "tag:yaml.org,2002:"; /* what "!!" expands to */
		bool core = strncmp(t, yaml_ns, strlen(yaml_ns)) == 0;

		return emit(b->err, b->file, line, path,
			    "tag '%s%s' not allowed: values are typed by their key (keep configs "
			    "plain)",
			    core ? "!!" : "", show(s, sizeof(s), core ? t + strlen(yaml_ns) : t));
	}
	return 0;
}

/* Attach a new node (scalar, or the start of a map/list) where the stream says. */
static int
add_node(struct builder *b, const yaml_event_t *ev, enum sky_cfg_type type,
	 const yaml_char_t *anchor, const yaml_char_t *tag)
{
	struct sky_cfg_node *n;
	struct frame *top;
	unsigned int line;
	char *path = NULL;
	bool is_key;
	int rc;

	if (place(b, ev, &path, &line, &is_key) < 0)
		return -1;
	if (is_key) {
		if (refuse_decorations(b, line, b->stack[b->depth - 1].node->path, anchor, tag) < 0)
			return -1;
		return add_key(b, ev);
	}
	if (refuse_decorations(b, line, path, anchor, tag) < 0) {
		free(path);
		return -1;
	}

	if (type == SKY_CFG_SCALAR &&
	    strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
		emit(b->err, b->file, line, path, "NUL character in a value");
		free(path);
		return -1;
	}
	if (b->depth == 0) {
		/* The root: a map of sections; an empty document counts as an empty map. */
		if (type == SKY_CFG_SCALAR && is_null_scalar(ev)) {
			type = SKY_CFG_MAP;
		} else if (type != SKY_CFG_MAP) {
			free(path);
			return emit(b->err, b->file, line, NULL,
				    "the top level must be a map of sections (eal:, ports:, ...), "
				    "not %s",
				    type_name(type));
		}
	}
	n = node_new(type, line, path);
	if (n == NULL) {
		free(path);
		return oom(b);
	}
	if (type == SKY_CFG_SCALAR && b->depth > 0) {
		/* "~" and "null" read as "" like an empty value, so no module sees a literal "~" */
		n->null = is_null_scalar(ev);
		n->text = strdup(n->null ? "" : (const char *)ev->data.scalar.value);
		if (n->text == NULL) {
			node_free(n);
			return oom(b);
		}
	}

	if (b->depth == 0) {
		b->cfg->root = n;
	} else {
		top = &b->stack[b->depth - 1];
		rc = append(top->node, n, top->key);
		if (rc < 0) {
			node_free(n);
			return oom(b);
		}
		top->key = NULL; /* owned by the map now */
	}

	if (type != SKY_CFG_SCALAR && ev->type != YAML_SCALAR_EVENT) {
		if (b->depth > MAX_DEPTH)
			return emit(b->err, b->file, line, n->path, "nested deeper than %d levels",
				    MAX_DEPTH);
		b->stack[b->depth].node = n;
		b->stack[b->depth].key = NULL;
		b->depth++;
	}
	return 0;
}

static int
on_event(struct builder *b, const yaml_event_t *ev)
{
	unsigned int line = mark_line(&ev->start_mark);
	char s[SHOWBUF];

	switch (ev->type) {
	case YAML_NO_EVENT:
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return 0;
	case YAML_STREAM_END_EVENT:
		b->done = true;
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (b->docs++ > 0)
			return emit(b->err, b->file, line, NULL,
				    "a second document ('---'): a config is one document");
		if (ev->data.document_start.tag_directives.start !=
		    ev->data.document_start.tag_directives.end)
			return emit(b->err, b->file, line, NULL,
				    "%%TAG directive not allowed (keep configs plain)");
		return 0;
	case YAML_ALIAS_EVENT:
		/* names the enclosing map or list: the alias may stand for a key */
		return emit(
			b->err, b->file, line,
			b->depth > 0 ? b->stack[b->depth - 1].node->path : NULL,
			"alias '*%s' not allowed: write values out in full (keep configs plain)",
			show(s, sizeof(s), (const char *)ev->data.alias.anchor));
	case YAML_SCALAR_EVENT:
		return add_node(b, ev, SKY_CFG_SCALAR, ev->data.scalar.anchor, ev->data.scalar.tag);
	case YAML_SEQUENCE_START_EVENT:
		return add_node(b, ev, SKY_CFG_SEQ, ev->data.sequence_start.anchor,
				ev->data.sequence_start.tag);
	case YAML_MAPPING_START_EVENT:
		return add_node(b, ev, SKY_CFG_MAP, ev->data.mapping_start.anchor,
				ev->data.mapping_start.tag);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	}
	return 0;
}

static void
syntax_error(struct builder *b, const yaml_parser_t *p)
{
	const char *problem = p->problem != NULL ? p->problem : "syntax error";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		oom(b);
		return;
	case YAML_READER_ERROR: {
		/* The reader gives a byte offset, not a mark: count lines ourselves. */
		size_t off = p->problem_offset < b->len ? p->problem_offset : b->len;
		unsigned int line = 1, col = 1;
		size_t i;

		for (i = 0; i < off; i++) {
			if (b->buf[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		if (off < b->len)
			emit_col(b->err, b->file, line, col,
				 "%s (byte 0x%02x): a config is UTF-8 text", problem, b->buf[off]);
		else
			emit_col(b->err, b->file, line, col, "%s", problem);
		return;
	}
	default:
		if (p->context != NULL)
			emit_col(b->err, b->file, mark_line(&p->problem_mark),
				 (unsigned int)p->problem_mark.column + 1,
				 "%s (%s at line %u, column %u)", problem, p->context,
				 mark_line(&p->context_mark),
				 (unsigned int)p->context_mark.column + 1);
		else
			emit_col(b->err, b->file, mark_line(&p->problem_mark),
				 (unsigned int)p->problem_mark.column + 1, "%s", problem);
		return;
	}
}

static struct sky_cfg *
parse(const char *file, const unsigned char *buf, size_t len, struct sky_cfg_err *err)
{
	struct builder *b;
	struct sky_cfg *cfg;
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0, i;

	cfg = calloc(1, sizeof(*cfg));
	b = calloc(1, sizeof(*b));
	if (cfg == NULL || b == NULL || (cfg->file = strdup(file)) == NULL) {
		emit(err, file, 0, NULL, "out of memory");
		free(b);
		sky_cfg_free(cfg);
		return NULL;
	}
	b->file = cfg->file;
	b->buf = buf;
	b->len = len;
	b->err = err;
	b->cfg = cfg;

	if (!yaml_parser_initialize(&parser)) {
		oom(b);
		goto fail;
	}
	yaml_parser_set_input_string(&parser, buf, len);
	while (!b->done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			syntax_error(b, &parser);
			rc = -1;
			break;
		}
		rc = on_event(b, &ev);
		yaml_event_delete(&ev);
		if (rc < 0)
			break;
	}
	yaml_parser_delete(&parser);
	for (i = 0; i < b->depth; i++)
		free(b->stack[i].key);
	if (rc < 0)
		goto fail;
	if (cfg->root == NULL) {
		/* no document at all (empty file, only comments) */
		cfg->root = node_new(SKY_CFG_MAP, 1, strdup(""));
		if (cfg->root == NULL || cfg->root->path == NULL) {
			oom(b);
			goto fail;
		}
	}
	free(b);
	return cfg;
fail:
	if (err != NULL && !err->failed)
		emit(err, file, 0, NULL, "cannot parse");
	free(b);
	sky_cfg_free(cfg);
	return NULL;
}

struct sky_cfg *
sky_cfg_load_string(const char *name, const char *text, struct sky_cfg_err *err)
{
	if (name == NULL)
		name = "<string>";
	if (text == NULL) {
		emit(err, name, 0, NULL, "no text");
		return NULL;
	}
	return parse(name, (const unsigned char *)text, strlen(text), err);
}

struct sky_cfg *
sky_cfg_load(const char *path, struct sky_cfg_err *err)
{
	struct sky_cfg *cfg;
	unsigned char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd;

	if (path == NULL) {
		emit(err, "<config>", 0, NULL, "no file name");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		emit(err, path, 0, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	/* Read in a loop rather than trusting st_size: /dev/stdin and pipes work too. */
	for (;;) {
		if (len == cap) {
			cap = cap != 0 ? cap * 2 : 16384;
			if (cap > MAX_FILE_BYTES + 1)
				cap = MAX_FILE_BYTES + 1;
			if (len == cap) {
				emit(err, path, 0, NULL, "file larger than %u bytes: not a config",
				     MAX_FILE_BYTES);
				goto fail;
			}
			nb = realloc(buf, cap);
			if (nb == NULL) {
				emit(err, path, 0, NULL, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			emit(err, path, 0, NULL, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	cfg = parse(path, buf != NULL ? buf : (const unsigned char *)"", len, err);
	free(buf);
	return cfg;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------------ checks */

static int
list_words(char *buf, size_t len, const char *const *words, const char *sep)
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

int
sky_cfg_check_keys(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		   const char *const *allowed)
{
	const char *const *a;
	char list[384];
	size_t i;

	if (n == NULL || (n->type == SKY_CFG_SCALAR && n->null))
		return 0; /* absent optional section, or one written with all its keys commented out
			   */
	if (n->type != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, n, "expected a map, got %s", type_name(n->type));
	for (i = 0; i < n->n; i++) {
		for (a = allowed; a != NULL && *a != NULL; a++)
			if (strcmp(*a, n->key[i]) == 0)
				break;
		if (a == NULL || *a == NULL) {
			list_words(list, sizeof(list), allowed, ", ");
			return sky_cfg_fail(err, cfg, n->val[i], "unknown key (allowed: %s)", list);
		}
	}
	return 0;
}

int
sky_cfg_check_sections(struct sky_cfg_err *err, const struct sky_cfg *cfg)
{
	if (cfg == NULL)
		return emit(err, "<config>", 0, NULL, "no config");
	return sky_cfg_check_keys(err, cfg, cfg->root, sky_cfg_sections);
}

/* ------------------------------------------------------------------ getters */

/* What each value kind is called in "expected ..." messages. */
static const char A_STR[] = "a string";
static const char A_BOOL[] = "true or false";
static const char A_U64[] = "an integer";
static const char *const a_unit[] = {
	[SKY_UNIT_RATE] = "a rate such as 100Mbit",
	[SKY_UNIT_SIZE] = "a size such as 64KB",
	[SKY_UNIT_TIME] = "a time such as 10ms",
};
static const char A_COUNTRY[] = "a country code such as DE";

/* v must be a scalar with a value. */
static int
check_scalar(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	     const char *what)
{
	if (v == NULL)
		return sky_cfg_fail(err, cfg, NULL, "no node (expected %s)", what);
	if (v->type != SKY_CFG_SCALAR)
		return sky_cfg_fail(err, cfg, v, "expected %s, got %s", what, type_name(v->type));
	if (v->null)
		return sky_cfg_fail(err, cfg, v, "no value (expected %s)", what);
	return 0;
}

/*
 * Find key in map n. Returns -1 on failure, 0 with *out = NULL when absent and optional,
 * 0 with *out set otherwise.
 */
static int
lookup(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
       const char *key, bool required, const struct sky_cfg_node **out)
{
	*out = NULL;
	/* "section:" with nothing under it is an empty map */
	if (n != NULL && n->type != SKY_CFG_MAP && !(n->type == SKY_CFG_SCALAR && n->null))
		return sky_cfg_fail(err, cfg, n, "expected a map, got %s", type_name(n->type));
	*out = sky_cfg_get(n, key);
	if (*out == NULL && required)
		return sky_cfg_fail_missing(err, cfg, n, key);
	return 0;
}

int
sky_cfg_as_str(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	       const char **out)
{
	if (check_scalar(err, cfg, v, A_STR) < 0)
		return -1;
	*out = v->text;
	return 0;
}

int
sky_cfg_as_bool(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	char s[SHOWBUF];
	size_t i;

	if (check_scalar(err, cfg, v, A_BOOL) < 0)
		return -1;
	for (i = 0; i < 3; i++) {
		if (strcasecmp(v->text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v->text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return sky_cfg_fail(err, cfg, v, "bad boolean '%s' (expected true/false, yes/no or on/off)",
			    show(s, sizeof(s), v->text));
}

int
sky_cfg_as_u64(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	       uint64_t min, uint64_t max, uint64_t *out)
{
	char s[SHOWBUF];
	uint64_t x;
	int rc;

	if (check_scalar(err, cfg, v, A_U64) < 0)
		return -1;
	rc = sky_parse_u64(v->text, 0, UINT64_MAX, &x);
	if (rc == -EINVAL)
		return sky_cfg_fail(err, cfg, v,
				    "bad integer '%s' (expected a decimal or 0x hex integer)",
				    show(s, sizeof(s), v->text));
	if (rc < 0 || x < min || x > max)
		return sky_cfg_fail(err, cfg, v,
				    "%s out of range (min %" PRIu64 ", max %" PRIu64 ")",
				    show(s, sizeof(s), v->text), min, max);
	*out = x;
	return 0;
}

static int
as_unit(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	enum sky_unit unit, uint64_t *out)
{
	static const char *const what[] = {
		[SKY_UNIT_RATE] = "rate",
		[SKY_UNIT_SIZE] = "size",
		[SKY_UNIT_TIME] = "time",
	};
	const char *why;
	char s[SHOWBUF];
	uint64_t x;

	if (check_scalar(err, cfg, v, a_unit[unit]) < 0)
		return -1;
	if (sky_parse_unit(unit, v->text, &x, &why) < 0)
		return sky_cfg_fail(err, cfg, v, "bad %s '%s' (%s)", what[unit],
				    show(s, sizeof(s), v->text), why);
	*out = x;
	return 0;
}

int
sky_cfg_as_rate(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		uint64_t *out_bps)
{
	return as_unit(err, cfg, v, SKY_UNIT_RATE, out_bps);
}

int
sky_cfg_as_size(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		uint64_t *out_bytes)
{
	return as_unit(err, cfg, v, SKY_UNIT_SIZE, out_bytes);
}

int
sky_cfg_as_time(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		uint64_t *out_us)
{
	return as_unit(err, cfg, v, SKY_UNIT_TIME, out_us);
}

int
sky_cfg_as_enum(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		const char *const *choices, unsigned int *out)
{
	char list[384], what[400], s[SHOWBUF];
	unsigned int i;

	list_words(list, sizeof(list), choices, ", ");
	snprintf(what, sizeof(what), "one of: %s", list);
	if (check_scalar(err, cfg, v, what) < 0)
		return -1;
	for (i = 0; choices != NULL && choices[i] != NULL; i++) {
		if (strcmp(v->text, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return sky_cfg_fail(err, cfg, v, "bad value '%s' (expected one of: %s)",
			    show(s, sizeof(s), v->text), list);
}

int
sky_cfg_as_country(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		   uint16_t *cc)
{
	char s[SHOWBUF];

	if (check_scalar(err, cfg, v, A_COUNTRY) < 0)
		return -1;
	if (sky_parse_country(v->text, cc) < 0)
		return sky_cfg_fail(
			err, cfg, v,
			"bad country '%s' (expected two letters, ISO 3166 alpha-2, e.g. DE)",
			show(s, sizeof(s), v->text));
	return 0;
}

/* The key-based getters: look the key up, then convert the node. */
#define GET_BY_KEY(call)                                                                           \
	do {                                                                                       \
		const struct sky_cfg_node *v_;                                                     \
		if (lookup(err, cfg, n, key, required, &v_) < 0)                                   \
			return -1;                                                                 \
		if (v_ == NULL)                                                                    \
			return 0;                                                                  \
		return call;                                                                       \
	} while (0)

int
sky_cfg_get_str(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		const char *key, bool required, const char **out)
{
	GET_BY_KEY(sky_cfg_as_str(err, cfg, v_, out));
}

int
sky_cfg_get_bool(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, bool *out)
{
	GET_BY_KEY(sky_cfg_as_bool(err, cfg, v_, out));
}

int
sky_cfg_get_u64(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		const char *key, bool required, uint64_t min, uint64_t max, uint64_t *out)
{
	GET_BY_KEY(sky_cfg_as_u64(err, cfg, v_, min, max, out));
}

int
sky_cfg_get_rate(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, uint64_t *out_bps)
{
	GET_BY_KEY(sky_cfg_as_rate(err, cfg, v_, out_bps));
}

int
sky_cfg_get_size(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, uint64_t *out_bytes)
{
	GET_BY_KEY(sky_cfg_as_size(err, cfg, v_, out_bytes));
}

int
sky_cfg_get_time(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, uint64_t *out_us)
{
	GET_BY_KEY(sky_cfg_as_time(err, cfg, v_, out_us));
}

int
sky_cfg_get_enum(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, const char *const *choices, unsigned int *out)
{
	GET_BY_KEY(sky_cfg_as_enum(err, cfg, v_, choices, out));
}

int
sky_cfg_get_country(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *n, const char *key, bool required, uint16_t *cc)
{
	GET_BY_KEY(sky_cfg_as_country(err, cfg, v_, cc));
}
