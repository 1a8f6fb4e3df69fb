/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Defaults and output: fill the keys a file omits from a YAML text of defaults
 * (sky_cfg_merge_defaults), and write a tree back as YAML that sky_cfg_load reads into the
 * same tree (sky_cfg_write; `skygate --check --print`). Control path only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/config.h"

#include "config_priv.h"

/* a default node moves into the file's tree: the message of an error in it has no line */
static void
unline(struct sky_cfg_node *n)
{
	n->line = 0;
	for (size_t i = 0; i < n->n; i++)
		unline(n->val[i]);
}

/* add to dst every key of src it lacks (recursively into maps both have); src loses them */
static int
merge(struct sky_cfg_node *dst, struct sky_cfg_node *src)
{
	for (size_t i = 0; i < src->n; i++) {
		long j;
		int rc;

		if (src->val[i] == NULL)
			continue;
		j = sky_cfg_map_find(dst, src->key[i]);
		if (j >= 0) {
			struct sky_cfg_node *d = dst->val[j];

			if (d->type == SKY_CFG_MAP && src->val[i]->type == SKY_CFG_MAP &&
			    (rc = merge(d, src->val[i])) < 0)
				return rc;
			/* `section:` written empty takes the defaults whole */
			if (d->type == SKY_CFG_SCALAR && d->null &&
			    src->val[i]->type == SKY_CFG_MAP) {
				unline(src->val[i]);
				sky_cfg_node_free(d);
				dst->val[j] = src->val[i];
				src->val[i] = NULL;
			}
			continue;
		}
		{
			char *key = strdup(src->key[i]);

			if (key == NULL)
				return -ENOMEM;
			unline(src->val[i]);
			rc = sky_cfg_node_append(dst, src->val[i], key);
			if (rc < 0) {
				free(key);
				return rc;
			}
			src->val[i] = NULL;
		}
	}
	return 0;
}

int
sky_cfg_merge_defaults(struct sky_cfg *cfg, const char *defaults_yaml, struct sky_cfg_err *err)
{
	struct sky_cfg *d;
	int rc;

	if (cfg == NULL || cfg->root == NULL || cfg->root->type != SKY_CFG_MAP)
		return sky_cfg_emit(err, "<config>", 0, NULL, "no config");
	d = sky_cfg_load_string("<defaults>", defaults_yaml, err);
	if (d == NULL)
		return -1;
	rc = merge(cfg->root, d->root);
	sky_cfg_free(d);
	if (rc < 0)
		return sky_cfg_emit(err, sky_cfg_file_of(cfg), 0, NULL,
				    "filling defaults: out of memory");
	return 0;
}

/* written plain when it reads back as the same text in block and flow context */
static bool
plain_ok(const char *s)
{
	static const char *const words[] = {"~", "null", "Null", "NULL", NULL};

	if (s[0] == '\0')
		return false;
	for (const char *const *w = words; *w != NULL; w++)
		if (strcmp(s, *w) == 0)
			return false;
	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		return false; /* "0660": other YAML readers would take it as octal */
	if (s[0] == '-' || s[0] == '.')
		return s[1] != '\0' && strspn(s + 1, "0123456789.") == strlen(s + 1) && s[0] == '-';
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.' || *p == '/'))
			return false;
	return true;
}

static void
put_scalar(FILE *f, const struct sky_cfg_node *n)
{
	if (n->null) {
		fputs("~", f);
		return;
	}
	if (plain_ok(n->text)) {
		fputs(n->text, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)n->text; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void
put_key(FILE *f, const char *k)
{
	struct sky_cfg_node t = {.type = SKY_CFG_SCALAR, .text = (char *)(uintptr_t)k};

	put_scalar(f, &t);
}

static bool
all_scalars(const struct sky_cfg_node *n)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->val[i]->type != SKY_CFG_SCALAR)
			return false;
	return true;
}

static void write_node(FILE *f, const struct sky_cfg_node *n, int indent);

/* the value after "key:" or "- ": inline when a scalar, an empty or a scalar list */
static void
write_value(FILE *f, const struct sky_cfg_node *v, int indent)
{
	if (v->type == SKY_CFG_SCALAR) {
		fputc(' ', f);
		put_scalar(f, v);
		fputc('\n', f);
	} else if (v->n == 0) {
		fputs(v->type == SKY_CFG_MAP ? " {}\n" : " []\n", f);
	} else if (v->type == SKY_CFG_SEQ && all_scalars(v)) {
		fputs(" [", f);
		for (size_t i = 0; i < v->n; i++) {
			if (i > 0)
				fputs(", ", f);
			put_scalar(f, v->val[i]);
		}
		fputs("]\n", f);
	} else {
		fputc('\n', f);
		write_node(f, v, indent + 2);
	}
}

static void
write_node(FILE *f, const struct sky_cfg_node *n, int indent)
{
	for (size_t i = 0; i < n->n; i++) {
		if (n->type == SKY_CFG_MAP) {
			fprintf(f, "%*s", indent, "");
			put_key(f, n->key[i]);
			fputc(':', f);
			write_value(f, n->val[i], indent);
			continue;
		}
		/* a list item */
		fprintf(f, "%*s-", indent, "");
		if (n->val[i]->type == SKY_CFG_MAP && n->val[i]->n > 0) {
			const struct sky_cfg_node *m = n->val[i];

			for (size_t k = 0; k < m->n; k++) {
				fprintf(f, k == 0 ? " " : "%*s", k == 0 ? 0 : indent + 2, "");
				put_key(f, m->key[k]);
				fputc(':', f);
				write_value(f, m->val[k], indent + 2);
			}
		} else {
			write_value(f, n->val[i], indent);
		}
	}
}

int
sky_cfg_write(const struct sky_cfg *cfg, FILE *f)
{
	if (cfg == NULL || cfg->root == NULL)
		return -EINVAL;
	if (cfg->root->n == 0)
		fputs("{}\n", f);
	else
		write_node(f, cfg->root, 0);
	return ferror(f) ? -EIO : 0;
}

char *
sky_cfg_write_node(const struct sky_cfg_node *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (n == NULL)
		return strdup("");
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	if (n->type == SKY_CFG_SCALAR) {
		put_scalar(f, n);
		fputc('\n', f);
	} else {
		write_value(f, n, 0);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * The documented default of every key that has a fixed one (README "Configuration
 * reference"); the daemon merges it under the file (sky_cfg_merge_defaults), so the
 * modules read the same values whether a key is written or not, and `--check --print`
 * shows them. Keys whose default is computed (plan bursts and weights, subscribers.capacity,
 * shaping.max_queued_per_worker, class queues and AQM) or means "off" (state.dir,
 * telemetry.prometheus, geo.database, policy.object) are not listed.
 */
const char sky_cfg_defaults[] = "workers: 1\n"
				"eal: []\n"
				"control:\n"
				"  socket: /run/skygate/skygate.sock\n"
				"  mode: \"0660\"\n"
				"  max_clients: 256\n"
				"  clients_per_uid: 16\n"
				"  reserved_clients: 16\n"
				"  request_timeout: 10s\n"
				"  idle_timeout: 60s\n"
				"  send_timeout: 30s\n"
				"  request_max: 1MiB\n"
				"mempool: { mbufs: 16383, cache: 256, data_room: 2176 }\n"
				"log: { level: info }\n"
				"subscribers: { unknown: drop }\n"
				"zones: []\n"
				"classes: [ { name: default, default: true } ]\n"
				"policy: { on_fault: pass, jit: true }\n"
				"shaping:\n"
				"  enabled: true\n"
				"  period: 10ms\n"
				"  rtt: 600ms\n"
				"  beam_burst: 2ms\n"
				"  max_active_per_worker: 65536\n"
				"  frame_overhead: 24\n"
				"  port_rate: 100Gbit\n"
				"ipfix:\n"
				"  template_refresh: 60s\n"
				"  template_refresh_packets: 0\n"
				"  enterprise_number: 32473\n"
				"  mtu: 1400\n"
				"qoe:\n"
				"  enabled: true\n"
				"  window: 60s\n"
				"  min_window: 5m\n"
				"  subscribers: 4096\n"
				"  per_subscriber_metrics: false\n"
				"  grade:\n"
				"    latency_good: 100ms\n"
				"    latency_bad: 2s\n"
				"    loss_good: 0.1%\n"
				"    loss_bad: 5%\n"
				"    min_samples: 5\n"
				"quota:\n"
				"  save_interval: 2s\n"
				"  timezone: UTC\n"
				"  per_subscriber_metrics: false\n";
