/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reading a config: the file (bounded), then libyaml events -> the tree. The tree is built
 * iteratively from the event stream with an explicit stack bounded by MAX_DEPTH, so hostile
 * input cannot recurse deeply. Anchors, aliases, tags, duplicate keys and second documents
 * are refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "skygate/config.h"
#include "skygate/file.h"

#include "config_priv.h"

#define MAX_FILE_BYTES (16u * 1024 * 1024) /* a config larger than this is a mistake */

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

static int
oom(struct builder *b)
{
	return sky_cfg_emit(b->err, b->file, 0, NULL, "out of memory");
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
		*path = sky_cfg_index_path(top->node->path, top->node->n);
		return *path != NULL ? 0 : oom(b);
	}
	if (top->key == NULL) {
		*is_key = true;
		return 0;
	}
	*line = top->key_line;
	*path = sky_cfg_join_path(top->node->path, top->key);
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
		return sky_cfg_emit(b->err, b->file, line, map->path,
				    "a key must be a plain word, not %s",
				    ev->type == YAML_MAPPING_START_EVENT ? "a map" : "a list");
	if (strlen(k) != ev->data.scalar.length)
		return sky_cfg_emit(b->err, b->file, line, map->path, "NUL character in a key");
	if (k[0] == '\0')
		return sky_cfg_emit(b->err, b->file, line, map->path, "empty key");
	i = sky_cfg_map_find(map, k);
	if (i >= 0) {
		path = sky_cfg_join_path(map->path, k);
		sky_cfg_emit(b->err, b->file, line, path != NULL ? path : k,
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
		return sky_cfg_emit(
			b->err, b->file, line, path,
			"anchor '&%s' not allowed: write values out in full (keep configs plain)",
			sky_cfg_show(s, sizeof(s), (const char *)anchor));
	if (tag != NULL) {
		const char *t = (const char *)tag;
		const char *yaml_ns = "tag:yaml.org,2002:"; /* what "!!" expands to */
		bool core = strncmp(t, yaml_ns, strlen(yaml_ns)) == 0;

		return sky_cfg_emit(
			b->err, b->file, line, path,
			"tag '%s%s' not allowed: values are typed by their key (keep configs "
			"plain)",
			core ? "!!" : "",
			sky_cfg_show(s, sizeof(s), core ? t + strlen(yaml_ns) : t));
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
		sky_cfg_emit(b->err, b->file, line, path, "NUL character in a value");
		free(path);
		return -1;
	}
	if (b->depth == 0) {
		/* The root: a map of sections; an empty document counts as an empty map. */
		if (type == SKY_CFG_SCALAR && is_null_scalar(ev)) {
			type = SKY_CFG_MAP;
		} else if (type != SKY_CFG_MAP) {
			free(path);
			return sky_cfg_emit(
				b->err, b->file, line, NULL,
				"the top level must be a map of sections (eal:, ports:, ...), "
				"not %s",
				sky_cfg_type_name(type));
		}
	}
	n = sky_cfg_node_new(type, line, path);
	if (n == NULL) {
		free(path);
		return oom(b);
	}
	if (type == SKY_CFG_SCALAR && b->depth > 0) {
		/* "~" and "null" read as "" like an empty value, so no module sees a literal "~" */
		n->null = is_null_scalar(ev);
		n->text = strdup(n->null ? "" : (const char *)ev->data.scalar.value);
		if (n->text == NULL) {
			sky_cfg_node_free(n);
			return oom(b);
		}
	}

	if (b->depth == 0) {
		b->cfg->root = n;
	} else {
		top = &b->stack[b->depth - 1];
		rc = sky_cfg_node_append(top->node, n, top->key);
		if (rc < 0) {
			sky_cfg_node_free(n);
			return oom(b);
		}
		top->key = NULL; /* owned by the map now */
	}

	if (type != SKY_CFG_SCALAR && ev->type != YAML_SCALAR_EVENT) {
		if (b->depth > MAX_DEPTH)
			return sky_cfg_emit(b->err, b->file, line, n->path,
					    "nested deeper than %d levels", MAX_DEPTH);
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
			return sky_cfg_emit(b->err, b->file, line, NULL,
					    "a second document ('---'): a config is one document");
		if (ev->data.document_start.tag_directives.start !=
		    ev->data.document_start.tag_directives.end)
			return sky_cfg_emit(b->err, b->file, line, NULL,
					    "%%TAG directive not allowed (keep configs plain)");
		return 0;
	case YAML_ALIAS_EVENT:
		/* names the enclosing map or list: the alias may stand for a key */
		return sky_cfg_emit(
			b->err, b->file, line,
			b->depth > 0 ? b->stack[b->depth - 1].node->path : NULL,
			"alias '*%s' not allowed: write values out in full (keep configs plain)",
			sky_cfg_show(s, sizeof(s), (const char *)ev->data.alias.anchor));
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
			sky_cfg_emit_col(b->err, b->file, line, col,
					 "%s (byte 0x%02x): a config is UTF-8 text", problem,
					 b->buf[off]);
		else
			sky_cfg_emit_col(b->err, b->file, line, col, "%s", problem);
		return;
	}
	default:
		if (p->context != NULL)
			sky_cfg_emit_col(b->err, b->file, mark_line(&p->problem_mark),
					 (unsigned int)p->problem_mark.column + 1,
					 "%s (%s at line %u, column %u)", problem, p->context,
					 mark_line(&p->context_mark),
					 (unsigned int)p->context_mark.column + 1);
		else
			sky_cfg_emit_col(b->err, b->file, mark_line(&p->problem_mark),
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
		sky_cfg_emit(err, file, 0, NULL, "out of memory");
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
		cfg->root = sky_cfg_node_new(SKY_CFG_MAP, 1, strdup(""));
		if (cfg->root == NULL || cfg->root->path == NULL) {
			oom(b);
			goto fail;
		}
	}
	free(b);
	return cfg;
fail:
	if (err != NULL && !err->failed)
		sky_cfg_emit(err, file, 0, NULL, "cannot parse");
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
		sky_cfg_emit(err, name, 0, NULL, "no text");
		return NULL;
	}
	return parse(name, (const unsigned char *)text, strlen(text), err);
}

/*
 * The config file is read the safe way (sky_file_read): a FIFO, device or directory is
 * refused at once instead of blocking the start (or --check) forever, the size is bounded
 * (MAX_FILE_BYTES), the read is bounded in time (SKY_FILE_TIMEOUT_MS) and a file changed
 * while being read is refused.
 */
struct sky_cfg *
sky_cfg_load(const char *path, struct sky_cfg_err *err)
{
	struct sky_cfg *cfg;
	char msg[512];
	const char *why = msg;
	size_t len = 0, pl;
	void *buf = NULL;
	int rc;

	if (path == NULL) {
		sky_cfg_emit(err, "<config>", 0, NULL, "no file name");
		return NULL;
	}
	msg[0] = '\0';
	rc = sky_file_read(path, MAX_FILE_BYTES, 0, &buf, &len, msg, sizeof(msg));
	if (rc < 0) {
		/* msg is "PATH: reason"; the config names the file itself */
		pl = strlen(path);
		if (strncmp(msg, path, pl) == 0 && msg[pl] == ':' && msg[pl + 1] == ' ')
			why = msg + pl + 2;
		/* an open failure says just strerror: "cannot open: ...", the rest "cannot read" */
		sky_cfg_emit(err, path, 0, NULL, "cannot %s: %s",
			     strcmp(why, strerror(-rc)) == 0 ? "open" : "read", why);
		return NULL;
	}
	cfg = parse(path, buf, len, err);
	free(buf);
	return cfg;
}
