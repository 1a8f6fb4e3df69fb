/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's journal: the one log (skygate/journal.h) that successful state-changing
 * commands are recorded in, its compaction by the commands' rules, and the commands
 * `journal show` and `journal compact`. The journal itself knows nothing of commands:
 * which records supersede which is decided here, from the rules in the command table.
 *
 * Compaction: a journaled record of a command with a rule (sky_ctl_journal_rule)
 * supersedes the earlier records of its group with the same first nkey arguments. The
 * journal is rewritten without those after replay, on `journal compact`, and whenever it
 * has doubled past 1 MiB.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/control.h"
#include "skygate/journal.h"
#include "skygate/runtime.h"

#include "control_priv.h"

#define COMPACT_MIN (1L << 20) /* appends compact once the journal passes this ... */
#define COMPACT_GROWTH 2       /* ... and has grown this many times since the last one */

static struct sky_journal *journal;
static long compacted_size; /* journal size after the last compaction (or open) */

struct sky_journal *
sky_ctl_journal(void)
{
	return journal;
}

int
sky_ctl_journal_open(const char *dir, char *err, size_t errlen)
{
	sky_ctl_journal_close();
	journal = sky_journal_open(dir, err, errlen);
	if (journal == NULL)
		return -errno;
	compacted_size = sky_journal_size(journal);
	return 0;
}

void
sky_ctl_journal_close(void)
{
	sky_journal_close(journal);
	journal = NULL;
}

const char *
sky_ctl_state_dir(void)
{
	return journal != NULL ? sky_journal_dir(journal) : NULL;
}

long
sky_ctl_journal_size(void)
{
	return journal != NULL ? sky_journal_size(journal) : -1;
}

void
sky_ctl_journal_batch_begin(void)
{
	if (journal != NULL)
		sky_journal_batch_begin(journal);
}

int
sky_ctl_journal_batch_end(void)
{
	return journal != NULL ? sky_journal_batch_end(journal) : 0;
}

int
sky_ctl_journal_record(int argc, char *const *argv, uid_t uid)
{
	long size;
	int rc;

	if (journal == NULL)
		return -ENOTCONN;
	rc = sky_journal_append(journal, argc, argv, uid);
	if (rc != 0)
		return rc;
	size = sky_journal_size(journal);
	if (size > COMPACT_MIN && size > COMPACT_GROWTH * compacted_size && sky_ctl_have_rules()) {
		char err[512];

		if (sky_ctl_journal_compact(err, sizeof(err)) < 0)
			SKY_LOG(WARNING, "%s", err);
		/* not again before the journal has grown as much once more */
		compacted_size = sky_journal_size(journal);
	}
	return 0;
}

/* --- compaction by the commands' rules --- */

/* A set of strings (open addressing), for the supersede keys seen so far. */
struct strset {
	char **slot;
	size_t cap, n;
};

static uint64_t
str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* 1 found, 0 not found (added if add), -ENOMEM */
static int
strset_probe(struct strset *set, const char *key, int add)
{
	size_t i;

	if (add && (set->n + 1) * 2 > set->cap) {
		struct strset big = {.cap = set->cap ? set->cap * 2 : 256};

		big.slot = calloc(big.cap, sizeof(char *));
		if (big.slot == NULL)
			return -ENOMEM;
		for (size_t k = 0; k < set->cap; k++) {
			if (set->slot[k] == NULL)
				continue;
			for (i = str_hash(set->slot[k]) & (big.cap - 1); big.slot[i] != NULL;
			     i = (i + 1) & (big.cap - 1))
				;
			big.slot[i] = set->slot[k];
		}
		free(set->slot);
		big.n = set->n;
		*set = big;
	}
	if (set->cap == 0)
		return 0;
	for (i = str_hash(key) & (set->cap - 1); set->slot[i] != NULL; i = (i + 1) & (set->cap - 1))
		if (strcmp(set->slot[i], key) == 0)
			return 1;
	if (add) {
		set->slot[i] = strdup(key);
		if (set->slot[i] == NULL)
			return -ENOMEM;
		set->n++;
	}
	return 0;
}

static void
strset_free(struct strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
}

/* "group\x1e" + n + "\x1e" + the first n args separated by \x1f */
static char *
rule_key(const char *group, int n, char **args)
{
	char *k = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&k, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "%s\x1e%d\x1e", group, n);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\x1f", args[i]);
	if (fclose(f) != 0) {
		free(k);
		return NULL;
	}
	return k;
}

/*
 * What the records seen so far (the newer ones: the journal asks newest first) supersede:
 * keys "group|n|args" in seen, and each (group, n) used, so that a record probes each n
 * used in its group.
 */
struct supersede {
	struct strset seen;
	struct {
		char *group;
		int n;
	} used[64];
	int n_used;
};

/* Is the record covered by a newer record's rule? 1 yes, 0 no, -ENOMEM. */
static int
covered(struct supersede *s, const char *group, int argc, char **args)
{
	for (int u = 0; u < s->n_used; u++) {
		char *k;
		int rc;

		if (strcmp(s->used[u].group, group) != 0 || s->used[u].n > argc)
			continue;
		k = rule_key(group, s->used[u].n, args);
		if (k == NULL)
			return -ENOMEM;
		rc = strset_probe(&s->seen, k, 0);
		free(k);
		if (rc == 1)
			return 1;
	}
	return 0;
}

/* The record's own rule covers the older ones with the same first nkey args. */
static int
note_rule(struct supersede *s, const char *group, int nkey, char **args)
{
	char *k = rule_key(group, nkey, args);
	int u, rc = 0;

	for (u = 0; u < s->n_used; u++)
		if (s->used[u].n == nkey && strcmp(s->used[u].group, group) == 0)
			break;
	if (u == s->n_used && s->n_used < (int)(sizeof(s->used) / sizeof(s->used[0]))) {
		s->used[u].group = strdup(group);
		s->used[u].n = nkey;
		if (s->used[u].group != NULL)
			s->n_used++;
	}
	if (k == NULL || strset_probe(&s->seen, k, 1) < 0)
		rc = -ENOMEM;
	free(k);
	return rc;
}

/* sky_journal_rewrite() callback: 1 keep, 0 superseded, -ENOMEM. */
static int
keep_record(void *ctx, const struct sky_journal_record *rec)
{
	struct supersede *s = ctx;
	const struct sky_ctl_cmd *c = sky_ctl_table_match(rec->argc, rec->argv);
	char **args;
	int n_args, rc, keep;

	if (c == NULL || c->group == NULL)
		return 1; /* no rule: never dropped */
	args = rec->argv + c->n_words;
	n_args = rec->argc - c->n_words;
	rc = covered(s, c->group, n_args, args);
	if (rc < 0)
		return rc;
	keep = rc == 0;
	/* its own rule covers the older ones (even when it is itself superseded) */
	if (c->nkey >= 0 && c->nkey <= n_args && note_rule(s, c->group, c->nkey, args) < 0)
		return -ENOMEM;
	return keep;
}

int
sky_ctl_journal_compact(char *err, size_t errlen)
{
	struct supersede s = {0};
	int dropped;

	if (journal == NULL) {
		snprintf(err, errlen, "journal: not open");
		return -1;
	}
	dropped = sky_journal_rewrite(journal, keep_record, &s, err, errlen);
	for (int u = 0; u < s.n_used; u++)
		free(s.used[u].group);
	strset_free(&s.seen);
	if (dropped > 0) {
		compacted_size = sky_journal_size(journal);
		sky_ctl_counters[SKY_CTL_C_journal_compactions]++;
		sky_ctl_counters[SKY_CTL_C_journal_superseded] += (uint64_t)dropped;
	}
	return dropped;
}

/* --- built-in commands --- */

int
sky_ctl_journal_compact_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			    json_t **result)
{
	char err[512];
	long before = sky_ctl_journal_size();
	int n;

	if (argc > 0)
		return sky_ctl_fail(call, "unexpected argument '%s' (usage: journal compact)",
				    argv[0]);
	if (journal == NULL)
		return sky_ctl_fail(call, "no journal (the configuration sets no state.dir)");
	n = sky_ctl_journal_compact(err, sizeof(err));
	if (n < 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "journal compact: %d records dropped, %ld -> %ld bytes", n, before,
		  sky_ctl_journal_size());
	*result = json_pack("{s:i, s:I, s:I}", "dropped_records", n, "bytes_before",
			    (json_int_t)before, "bytes_after", (json_int_t)sky_ctl_journal_size());
	return 0;
}

/* `journal show`: the records after the first skip, as a list. */
struct show {
	int skip;
	json_t *list;
};

static int
show_record(void *ctx, const struct sky_journal_record *rec)
{
	struct show *s = ctx;
	char line[1024];

	if (rec->n <= s->skip)
		return 0;
	sky_ctl_join(line, sizeof(line), rec->argc, rec->argv);
	json_array_append_new(s->list,
			      json_pack("{s:i, s:O?, s:O?, s:s}", "n", rec->n, "time",
					json_object_get(rec->doc, "time"), "uid",
					json_object_get(rec->doc, "uid"), "command", line));
	return 0;
}

/* `journal show [N]`: the last N (default 20, 0 = all) intact records, oldest first. */
int
sky_ctl_journal_show_cmd(void *arg, int argc, char **argv, struct sky_ctl_call *call,
			 json_t **result)
{
	char err[512], *end;
	unsigned long last = 20;
	struct show s = {0};
	int total;

	if (argc > 1)
		return sky_ctl_fail(call, "usage: journal show [N]");
	if (argc == 1) {
		errno = 0;
		last = strtoul(argv[0], &end, 10);
		if (errno != 0 || end == argv[0] || *end != '\0' || argv[0][0] == '-')
			return sky_ctl_fail(call, "N '%s': expected a number of records (0 = all)",
					    argv[0]);
	}
	if (journal == NULL || sky_journal_is_broken(journal))
		return sky_ctl_fail(call, "no journal (the configuration sets no state.dir)");
	/* count first, so a long journal costs one pass of parsing and no reshuffling */
	total = sky_journal_foreach(journal, NULL, NULL, err, sizeof(err));
	if (total < 0)
		return sky_ctl_fail(call, "%s", err);
	s.skip = last > 0 && (unsigned long)total > last ? total - (int)last : 0;
	s.list = json_array();
	if (s.list == NULL)
		return sky_ctl_fail(call, "out of memory");
	if (sky_journal_foreach(journal, show_record, &s, err, sizeof(err)) < 0) {
		json_decref(s.list);
		return sky_ctl_fail(call, "%s", err);
	}
	*result = s.list;
	return 0;
}
