/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command table: commands modules register, the extenders that add to their results,
 * the parts of the live state (dump, snapshot), and what handlers call (sky_ctl_fail,
 * sky_ctl_journal_as).
 * A command is a run of words ("map update"); a request's argv goes to the command that
 * matches the most leading words. Control path only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/control.h"

#include "control_priv.h"

static struct sky_ctl_cmd **cmds;
static unsigned int n_cmds;

static void
command_free(struct sky_ctl_cmd *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->usage);
	free(c->help);
	free(c->words);
	free(c->ext);
	free(c);
}

static struct sky_ctl_cmd *
find_exact(const char *name)
{
	for (unsigned int i = 0; i < n_cmds; i++)
		if (strcmp(cmds[i]->name, name) == 0)
			return cmds[i];
	return NULL;
}

/* A name is words of printable non-space characters separated by single spaces. */
static int
name_valid(const char *name)
{
	const char *p;

	if (name == NULL || name[0] == '\0' || name[0] == ' ')
		return 0;
	for (p = name; *p != '\0'; p++) {
		if (*p == ' ' && (p[1] == ' ' || p[1] == '\0'))
			return 0;
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	}
	return 1;
}

int
sky_ctl_table_add(const char *cmd, const char *usage, const char *help, unsigned int flags,
		  sky_ctl_fn fn, void *arg)
{
	struct sky_ctl_cmd *c, **n;
	char *p;
	int w;

	if (!name_valid(cmd) || fn == NULL)
		return -EINVAL;
	if (find_exact(cmd) != NULL)
		return -EEXIST;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->name = strdup(cmd);
	c->usage = strdup(usage != NULL ? usage : "");
	c->help = strdup(help != NULL ? help : "");
	if (c->name == NULL || c->usage == NULL || c->help == NULL)
		goto nomem;
	c->n_words = 1;
	for (p = c->name; *p != '\0'; p++)
		c->n_words += *p == ' ';
	/* words point into a second copy so name stays intact */
	c->words = malloc(sizeof(char *) * c->n_words + strlen(cmd) + 1);
	if (c->words == NULL)
		goto nomem;
	p = (char *)(c->words + c->n_words);
	strcpy(p, cmd);
	for (w = 0; w < c->n_words; w++) {
		c->words[w] = p;
		p = strchr(p, ' ');
		if (p != NULL)
			*p++ = '\0';
	}
	c->flags = flags;
	c->fn = fn;
	c->arg = arg;
	n = realloc(cmds, sizeof(*cmds) * (n_cmds + 1));
	if (n == NULL)
		goto nomem;
	cmds = n;
	cmds[n_cmds++] = c;
	return 0;
nomem:
	command_free(c);
	return -ENOMEM;
}

void
sky_ctl_table_clear(void)
{
	for (unsigned int i = 0; i < n_cmds; i++)
		command_free(cmds[i]);
	free(cmds);
	cmds = NULL;
	n_cmds = 0;
}

int
sky_ctl_table_extend(const char *cmd, sky_ctl_extend_fn fn, void *arg)
{
	struct sky_ctl_cmd *c;
	struct sky_ctl_extender *e;

	if (fn == NULL || cmd == NULL)
		return -EINVAL;
	c = find_exact(cmd);
	if (c == NULL)
		return -ENOENT;
	e = realloc(c->ext, sizeof(*e) * (c->n_ext + 1));
	if (e == NULL)
		return -ENOMEM;
	c->ext = e;
	c->ext[c->n_ext].fn = fn;
	c->ext[c->n_ext].arg = arg;
	c->n_ext++;
	return 0;
}

/* Most leading words wins; ties cannot happen since names are unique. */
const struct sky_ctl_cmd *
sky_ctl_table_match(int argc, char **argv)
{
	struct sky_ctl_cmd *best = NULL;

	for (unsigned int i = 0; i < n_cmds; i++) {
		struct sky_ctl_cmd *c = cmds[i];
		int w;

		if (c->n_words > argc || (best != NULL && c->n_words <= best->n_words))
			continue;
		for (w = 0; w < c->n_words; w++)
			if (strcmp(c->words[w], argv[w]) != 0)
				break;
		if (w == c->n_words)
			best = c;
	}
	return best;
}

/* --- the parts of the live state (state dump, snapshots) --- */

static struct sky_ctl_part *parts;
static unsigned int n_parts;

int
sky_ctl_state_register(const char *name, int order, sky_ctl_dump_fn dump, sky_ctl_snap_fn snap,
		       void *arg)
{
	struct sky_ctl_part *n;
	unsigned int i;

	if (name == NULL || name[0] == '\0' || dump == NULL || snap == NULL)
		return -EINVAL;
	for (i = 0; i < n_parts; i++)
		if (strcmp(parts[i].name, name) == 0)
			return -EEXIST;
	n = realloc(parts, sizeof(*n) * (n_parts + 1));
	if (n == NULL)
		return -ENOMEM;
	parts = n;
	/* kept sorted by order, then by registration */
	for (i = n_parts; i > 0 && parts[i - 1].order > order; i--)
		parts[i] = parts[i - 1];
	parts[i] = (struct sky_ctl_part){
		.name = strdup(name), .order = order, .dump = dump, .snap = snap, .arg = arg};
	if (parts[i].name == NULL) {
		memmove(&parts[i], &parts[i + 1], sizeof(*parts) * (n_parts - i));
		return -ENOMEM;
	}
	n_parts++;
	return 0;
}

const struct sky_ctl_part *
sky_ctl_parts(unsigned int *n)
{
	*n = n_parts;
	return parts;
}

void
sky_ctl_parts_clear(void)
{
	for (unsigned int i = 0; i < n_parts; i++)
		free(parts[i].name);
	free(parts);
	parts = NULL;
	n_parts = 0;
}

/* --- what handlers call --- */

int
sky_ctl_fail(struct sky_ctl_call *call, const char *fmt, ...)
{
	va_list ap;

	if (call == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(call->err, sizeof(call->err), fmt, ap);
	va_end(ap);
	return -1;
}

void
sky_ctl_journal_as_clear(struct sky_ctl_call *call)
{
	for (int i = 0; i < call->journal_argc; i++)
		free(call->journal_argv[i]);
	call->journal_argc = 0;
}

int
sky_ctl_journal_as(struct sky_ctl_call *call, int argc, const char *const *argv)
{
	if (call == NULL || argc <= 0 || argc > SKY_CTL_MAX_ARGS || argv == NULL)
		return -EINVAL;
	sky_ctl_journal_as_clear(call);
	for (int i = 0; i < argc; i++) {
		if (argv[i] == NULL) {
			sky_ctl_journal_as_clear(call);
			return -EINVAL;
		}
		call->journal_argv[i] = strdup(argv[i]);
		if (call->journal_argv[i] == NULL) {
			call->journal_argc = i;
			sky_ctl_journal_as_clear(call);
			return -ENOMEM;
		}
		call->journal_argc = i + 1;
	}
	return 0;
}

/* --- built-in `help` --- */

static int
cmp_name(const void *a, const void *b)
{
	const struct sky_ctl_cmd *x = *(const struct sky_ctl_cmd *const *)a;
	const struct sky_ctl_cmd *y = *(const struct sky_ctl_cmd *const *)b;

	return strcmp(x->name, y->name);
}

int
sky_ctl_help_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_ctl_cmd **sorted;
	json_t *list;
	char prefix[512];

	sky_ctl_join(prefix, sizeof(prefix), argc, argv);
	sorted = malloc(sizeof(*sorted) * (n_cmds ? n_cmds : 1));
	list = json_array();
	if (sorted == NULL || list == NULL) {
		free(sorted);
		json_decref(list);
		return sky_ctl_fail(call, "out of memory");
	}
	memcpy(sorted, cmds, sizeof(*sorted) * n_cmds);
	qsort(sorted, n_cmds, sizeof(*sorted), cmp_name);
	for (unsigned int i = 0; i < n_cmds; i++) {
		const struct sky_ctl_cmd *c = sorted[i];
		size_t pl = strlen(prefix);

		/* "help map" lists "map" and "map update", not "mapping" */
		if (argc > 0 && (strncmp(c->name, prefix, pl) != 0 ||
				 (c->name[pl] != '\0' && c->name[pl] != ' ')))
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "command", c->name,
						      "usage", c->usage, "help", c->help));
	}
	free(sorted);
	if (argc > 0 && json_array_size(list) == 0) {
		json_decref(list);
		return sky_ctl_fail(call, "no command starts with '%s'", prefix);
	}
	*result = list;
	return 0;
}
