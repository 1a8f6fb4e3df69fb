/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The key layout of the cluster's state in etcd (skygate/cluster.h): escaping names into
 * key components, the key and value a journaled command stores, and the check of a value
 * read back. Pure: no I/O, so the unit tests cover every shape of key and value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/cluster.h"
#include "skygate/quota.h"

#include "cluster_priv.h"

static int
plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == ':';
}

int
sky_cluster_key_escape(const char *name, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (plain(*p)) {
			if (o + 1 >= outlen)
				return -ENAMETOOLONG;
			out[o++] = (char)*p;
			continue;
		}
		if (o + 3 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = '%';
		out[o++] = hex[*p >> 4];
		out[o++] = hex[*p & 15];
	}
	if (o >= outlen)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return (int)o;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
sky_cluster_key_unescape(const char *comp, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *p = comp; *p != '\0'; p++) {
		int c = (unsigned char)*p;

		if (*p == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return -EINVAL;
			c = hi << 4 | lo;
			p += 2;
		} else if (!plain((unsigned char)c)) {
			return -EINVAL; /* a '/' or a byte escaping would have hidden */
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = (char)c;
	}
	if (o >= outlen)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return (int)o;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* PREFIX/state/KIND/esc(a)[/esc(b)] */
static int
state_key(char *out, size_t outlen, const char *prefix, const char *kind, const char *a,
	  const char *b)
{
	char ea[SKY_CLUSTER_KEY_MAX / 2], eb[SKY_CLUSTER_KEY_MAX / 2];
	int n;

	if (a != NULL && sky_cluster_key_escape(a, ea, sizeof(ea)) < 0)
		return -ENAMETOOLONG;
	if (b != NULL && sky_cluster_key_escape(b, eb, sizeof(eb)) < 0)
		return -ENAMETOOLONG;
	if (a == NULL)
		n = snprintf(out, outlen, "%s/state/%s", prefix, kind);
	else if (b == NULL)
		n = snprintf(out, outlen, "%s/state/%s/%s", prefix, kind, ea);
	else
		n = snprintf(out, outlen, "%s/state/%s/%s/%s", prefix, kind, ea, eb);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* The argv stored in a value ({"argv": [...]}) as an array, or NULL. */
static const json_t *
value_argv(const json_t *v)
{
	const json_t *a = json_is_object(v) ? json_object_get(v, "argv") : NULL;

	return json_is_array(a) ? a : NULL;
}

static json_t *
argv_json(int argc, char *const *argv)
{
	json_t *a = json_array();

	for (int i = 0; a != NULL && i < argc; i++)
		if (json_array_append_new(a, json_string(argv[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* k of a "k=v" word, its length; 0 when the word has no '=' */
static size_t
word_key(const char *w)
{
	const char *eq = strchr(w, '=');

	return eq == NULL ? 0 : (size_t)(eq - w) + 1; /* with the '=' */
}

/*
 * words[n0..] of base, with the key=value words of set[from..argc] folded in: a key
 * already there gets the new value in place, a new key is appended. drop_empty: `k=`
 * removes k (folding a set into an add). Returns a new array.
 */
static json_t *
fold(const json_t *base, int argc, char *const *set, int from, int drop_empty)
{
	json_t *out = json_deep_copy(base);

	if (out == NULL)
		return NULL;
	for (int i = from; i < argc; i++) {
		size_t kl = word_key(set[i]);
		int found = 0;

		for (size_t j = 0; kl > 0 && j < json_array_size(out); j++) {
			const char *w = json_string_value(json_array_get(out, j));

			if (w == NULL || strncmp(w, set[i], kl) != 0)
				continue;
			found = 1;
			if (drop_empty && set[i][kl] == '\0')
				json_array_remove(out, j);
			else
				json_array_set_new(out, j, json_string(set[i]));
			break;
		}
		if (!found && !(drop_empty && kl > 0 && set[i][kl] == '\0'))
			json_array_append_new(out, json_string(set[i]));
	}
	return out;
}

static int
is(int argc, char *const *argv, const char *a, const char *b)
{
	return argc >= 2 && strcmp(argv[0], a) == 0 && strcmp(argv[1], b) == 0;
}

static int
prev_is(const json_t *prev, const char *a, const char *b)
{
	const json_t *pa = value_argv(prev);

	return pa != NULL && json_array_size(pa) >= 3 &&
	       strcmp(json_string_value(json_array_get(pa, 0)) ?: "", a) == 0 &&
	       strcmp(json_string_value(json_array_get(pa, 1)) ?: "", b) == 0;
}

int
sky_cluster_op_from_argv(const char *prefix, int argc, char *const *argv, const json_t *prev,
			 struct sky_cluster_op *op, char *err, size_t errlen)
{
	json_t *words = NULL;
	int rc;

	memset(op, 0, sizeof(*op));
	for (int i = 0; i < argc; i++)
		if (argv[i] == NULL)
			return fail(err, errlen, -EINVAL, "argv[%d] is missing", i);
	if (is(argc, argv, "plan", "set") || is(argc, argv, "beam", "set")) {
		if (argc < 4)
			return fail(err, errlen, -EINVAL, "%s set: NAME and key=value expected",
				    argv[0]);
		rc = state_key(op->key, sizeof(op->key), prefix,
			       argv[0][0] == 'p' ? "plans" : "beams", argv[2], NULL);
		/* the stored set with this one's words folded in */
		words = prev_is(prev, argv[0], "set") ? fold(value_argv(prev), argc, argv, 3, 0)
						      : argv_json(argc, argv);
	} else if (is(argc, argv, "subscriber", "add") || is(argc, argv, "subscriber", "del")) {
		if (argc < 3)
			return fail(err, errlen, -EINVAL, "subscriber %s: ID expected", argv[1]);
		rc = state_key(op->key, sizeof(op->key), prefix, "subscribers", argv[2], NULL);
		words = argv_json(argc, argv);
	} else if (is(argc, argv, "subscriber", "set")) {
		if (argc < 4)
			return fail(err, errlen, -EINVAL,
				    "subscriber set: ID and key=value expected");
		rc = state_key(op->key, sizeof(op->key), prefix, "subscribers", argv[2], NULL);
		if (prev_is(prev, "subscriber", "add"))
			words = fold(value_argv(prev), argc, argv, 3, 1);
		else if (prev_is(prev, "subscriber", "set"))
			words = fold(value_argv(prev), argc, argv, 3, 0);
		else
			words = argv_json(argc, argv);
	} else if (is(argc, argv, "map", "update") || is(argc, argv, "map", "delete")) {
		if (argc != (argv[1][0] == 'u' ? 5 : 4))
			return fail(err, errlen, -EINVAL, "map %s: %s expected", argv[1],
				    argv[1][0] == 'u' ? "NAME KEY VALUE" : "NAME KEY");
		rc = state_key(op->key, sizeof(op->key), prefix, "maps", argv[2], argv[3]);
		words = argv_json(argc, argv);
	} else if (is(argc, argv, "quota", "add") || is(argc, argv, "quota", "reset") ||
		   is(argc, argv, "quota", "set")) {
		/* the last quota change of a subscriber: applied by every node from the watch,
		 * never replayed from a snapshot (a top-up would count twice): usage itself
		 * comes with the beam's usage snapshot */
		if (argc < 3)
			return fail(err, errlen, -EINVAL, "quota %s: ID expected", argv[1]);
		rc = state_key(op->key, sizeof(op->key), prefix, "quota", argv[2], NULL);
		words = argv_json(argc, argv);
	} else if ((is(argc, argv, "policy", "load") && argc == 3) ||
		   (is(argc, argv, "policy", "unload") && argc == 2)) {
		rc = state_key(op->key, sizeof(op->key), prefix, "policy", NULL, NULL);
		words = argv_json(argc, argv);
	} else if (is(argc, argv, "quota", "import")) {
		return fail(err, errlen, -ENOTSUP,
			    "quota import has no key of its own: in cluster mode the node that "
			    "reads the file stores each row as `quota set ID used=...` "
			    "(state/quota/ID)");
	} else {
		char w[128];

		snprintf(w, sizeof(w), "%s%s%s", argc > 0 ? argv[0] : "", argc > 1 ? " " : "",
			 argc > 1 ? argv[1] : "");
		return fail(err, errlen, -ENOTSUP,
			    "'%s' has no place in the cluster's store (cluster mode changes "
			    "plans, beams, subscribers one by one, policy, map entries and "
			    "quota add/reset/set)",
			    w);
	}
	if (rc != 0) {
		json_decref(words);
		return fail(err, errlen, rc, "a name is too long for a key");
	}
	if (words == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	op->value = json_pack("{s:o}", "argv", words);
	if (op->value == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

const json_t *
sky_cluster_value_check(const char *prefix, const char *key, const json_t *value, char *err,
			size_t errlen)
{
	char *w[SKY_CLUSTER_MAX_ARGS];
	struct sky_cluster_op op;
	const json_t *a = value_argv(value);
	char why[256];
	size_t n;
	int rc;

	if (a == NULL) {
		fail(err, errlen, 0, "%s: not a JSON object {\"argv\": [...]}", key);
		return NULL;
	}
	n = json_array_size(a);
	if (n < 2 || n > SKY_CLUSTER_MAX_ARGS) {
		fail(err, errlen, 0, "%s: argv has %zu words (2..%d)", key, n,
		     SKY_CLUSTER_MAX_ARGS);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		w[i] = (char *)json_string_value(json_array_get(a, i));
		if (w[i] == NULL) {
			fail(err, errlen, 0, "%s: argv[%zu] is not a string", key, i);
			return NULL;
		}
	}
	/* the command must be one of the store's, and belong at this very key */
	rc = sky_cluster_op_from_argv(prefix, (int)n, w, NULL, &op, why, sizeof(why));
	json_decref(op.value);
	if (rc != 0) {
		fail(err, errlen, 0, "%s: %s", key, why);
		return NULL;
	}
	if (strcmp(op.key, key) != 0) {
		fail(err, errlen, 0, "%s: holds a change of %s", key, op.key);
		return NULL;
	}
	return a;
}

/* --- usage snapshots --- */

int
sky_cluster_usage_key(const char *prefix, const char *beam, char *out, size_t outlen)
{
	char esc[SKY_CLUSTER_KEY_MAX / 2];
	int n;

	if (sky_cluster_key_escape(beam, esc, sizeof(esc)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(out, outlen, "%s/usage/%s", prefix, esc);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

char *
sky_cluster_usage_encode(const char *beam, const char *node, int64_t rev, int64_t at,
			 const struct sky_quota_snap *r, size_t n, size_t *dropped)
{
	size_t k = n < SKY_CLUSTER_USAGE_MAX_SUBS ? n : SKY_CLUSTER_USAGE_MAX_SUBS;
	json_t *subs = json_array(), *v;
	char *text;

	*dropped = n - k;
	for (size_t i = 0; subs != NULL && i < k; i++)
		if (json_array_append_new(subs,
					  json_pack("[I, I, I, I, I, i, i]", (json_int_t)r[i].id,
						    (json_int_t)r[i].used, (json_int_t)r[i].credit,
						    (json_int_t)r[i].period_start,
						    (json_int_t)r[i].period_end,
						    (int)r[i].anchor_day, (int)r[i].alerts)) != 0) {
			json_decref(subs);
			return NULL;
		}
	v = subs ? json_pack("{s:i, s:s, s:s, s:I, s:I, s:o}", "v", 1, "beam", beam, "node", node,
			     "rev", (json_int_t)rev, "at", (json_int_t)at, "subs", subs)
		 : NULL;
	if (v == NULL)
		return NULL;
	text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return text;
}

static int
id_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

#define USAGE_MAX_BYTES ((json_int_t)1 << 60) /* as `quota set` takes them */

int
sky_cluster_usage_decode(const char *key, const char *beam, const char *text,
			 struct sky_quota_snap **out, size_t *n, int64_t *rev, char *err,
			 size_t errlen)
{
	static const char *const col[] = {"id",		"used",	      "credit", "period_start",
					  "period_end", "anchor_day", "alerts"};
	json_error_t je;
	json_t *v = json_loads(text, 0, &je), *subs, *row;
	const json_t *f;
	struct sky_quota_snap *r = NULL;
	size_t i, m;

	*out = NULL;
	*n = 0;
	if (v == NULL)
		return fail(err, errlen, -EINVAL, "%s: not JSON (%s)", key, je.text);
	if (!json_is_object(v)) {
		fail(err, errlen, -EINVAL, "%s: not a JSON object", key);
		goto bad;
	}
	f = json_object_get(v, "v");
	if (!json_is_integer(f) || json_integer_value(f) != 1) {
		fail(err, errlen, -EINVAL,
		     "%s: \"v\" is not 1 (not a usage snapshot of this version)", key);
		goto bad;
	}
	f = json_object_get(v, "beam");
	if (!json_is_string(f) || strcmp(json_string_value(f), beam) != 0) {
		fail(err, errlen, -EINVAL, "%s: \"beam\" is %s%s%s, not %s", key,
		     json_is_string(f) ? "'" : "",
		     json_is_string(f) ? json_string_value(f) : "missing",
		     json_is_string(f) ? "'" : "", beam);
		goto bad;
	}
	f = json_object_get(v, "rev");
	if (!json_is_integer(f) || json_integer_value(f) < 0) {
		fail(err, errlen, -EINVAL, "%s: \"rev\" is not a revision", key);
		goto bad;
	}
	*rev = (int64_t)json_integer_value(f);
	subs = json_object_get(v, "subs");
	if (!json_is_array(subs)) {
		fail(err, errlen, -EINVAL, "%s: \"subs\" is not an array", key);
		goto bad;
	}
	m = json_array_size(subs);
	if (m > SKY_CLUSTER_USAGE_MAX_SUBS) {
		fail(err, errlen, -EINVAL, "%s: %zu subscribers, more than %d", key, m,
		     SKY_CLUSTER_USAGE_MAX_SUBS);
		goto bad;
	}
	if (m > 0 && (r = calloc(m, sizeof(*r))) == NULL) {
		fail(err, errlen, -EINVAL, "%s: out of memory", key);
		goto bad;
	}
	json_array_foreach(subs, i, row)
	{
		json_int_t x[7];

		if (!json_is_array(row) || json_array_size(row) != 7) {
			fail(err, errlen, -EINVAL,
			     "%s: subs[%zu] is not [id, used, credit, period_start, period_end, "
			     "anchor_day, alerts]",
			     key, i);
			goto bad;
		}
		for (size_t c = 0; c < 7; c++) {
			f = json_array_get(row, c);
			if (!json_is_integer(f)) {
				fail(err, errlen, -EINVAL, "%s: subs[%zu].%s is not an integer",
				     key, i, col[c]);
				goto bad;
			}
			x[c] = json_integer_value(f);
		}
		if (x[0] < 1 || x[0] > UINT32_MAX || x[1] < 0 || x[1] > USAGE_MAX_BYTES ||
		    x[2] < 0 || x[2] > USAGE_MAX_BYTES || x[3] < 0 || x[4] <= x[3] ||
		    x[5] < INT32_MIN || x[5] > INT32_MAX || x[6] < 0 || x[6] > 3) {
			static const char *const why[] = {"id out of range (1..4294967295)",
							  "used out of range (0..2^60)",
							  "credit out of range (0..2^60)",
							  "period_end not after period_start",
							  "anchor_day out of range",
							  "alerts out of range (0..3)"};
			int w = x[0] < 1 || x[0] > UINT32_MAX	       ? 0
				: x[1] < 0 || x[1] > USAGE_MAX_BYTES   ? 1
				: x[2] < 0 || x[2] > USAGE_MAX_BYTES   ? 2
				: x[3] < 0 || x[4] <= x[3]	       ? 3
				: x[5] < INT32_MIN || x[5] > INT32_MAX ? 4
								       : 5;

			fail(err, errlen, -EINVAL, "%s: subs[%zu]: %s", key, i, why[w]);
			goto bad;
		}
		r[i] = (struct sky_quota_snap){.id = (uint32_t)x[0],
					       .used = (uint64_t)x[1],
					       .credit = (uint64_t)x[2],
					       .period_start = (int64_t)x[3],
					       .period_end = (int64_t)x[4],
					       .anchor_day = (int32_t)x[5],
					       .alerts = (uint8_t)x[6]};
	}
	if (m > 1) {
		/* a subscriber once: sorted ids, no two alike */
		uint32_t *ids = malloc(m * sizeof(*ids));

		if (ids == NULL) {
			fail(err, errlen, -EINVAL, "%s: out of memory", key);
			goto bad;
		}
		for (i = 0; i < m; i++)
			ids[i] = r[i].id;
		qsort(ids, m, sizeof(*ids), id_cmp);
		for (i = 1; i < m && ids[i] != ids[i - 1]; i++)
			;
		if (i < m) {
			fail(err, errlen, -EINVAL, "%s: subscriber %u is there twice", key, ids[i]);
			free(ids);
			goto bad;
		}
		free(ids);
	}
	json_decref(v);
	*out = r;
	*n = m;
	return 0;
bad:
	free(r);
	json_decref(v);
	return -EINVAL;
}
