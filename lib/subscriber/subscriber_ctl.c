/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control commands, telemetry and Prometheus metrics of the subscriber module.
 * Control path only (EAL main lcore).
 *
 *   subscriber add ID ipv4=A[/L] ipv6=P[/L] plan=NAME beam=NAME country=CC [realm=N]
 *   subscriber del ID
 *   subscriber set ID key=value...     (plan beam country ipv4 ipv6 realm; ipv4= removes)
 *   subscriber show ID
 *   subscriber list [page=N] [size=N]  (sorted by id, pages from 1, size default 50)
 *   subscriber find ADDRESS [vlan=N]   (who owns an address: longest prefix, realm)
 *   subscriber load FILE               (replace the whole table)
 *   plan list | plan show NAME | plan set NAME key=value...
 *        (down up burst down_burst up_burst weight cw.CLASS=N)
 *   beam list | beam show NAME | beam set NAME down=RATE up=RATE
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <rte_telemetry.h>

#include "skygate/control.h"
#include "skygate/file.h"
#include "skygate/runtime.h"

#include "subscriber_priv.h"

static struct sky_subs *tel_subs; /* telemetry callbacks carry no argument */

/* ------------------------------------------------------------------ helpers */

/* run a change under the lock the telemetry thread reads under */
#define locked_op(s, call)                                                                         \
	({                                                                                         \
		int rc_;                                                                           \
		pthread_mutex_lock(&(s)->lock);                                                    \
		rc_ = (call);                                                                      \
		pthread_mutex_unlock(&(s)->lock);                                                  \
		rc_;                                                                               \
	})

static void
cc_str(uint16_t cc, char out[3])
{
	out[0] = cc ? (char)(cc >> 8) : '-';
	out[1] = cc ? (char)(cc & 0xff) : '-';
	out[2] = '\0';
}

void
sky_subs_prefix_str(char *buf, size_t n, int fam, const uint8_t *a, uint8_t len)
{
	char txt[INET6_ADDRSTRLEN];

	inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, txt, sizeof(txt));
	snprintf(buf, n, "%s/%u", txt, len);
}

static json_t *
pfx_json(int fam, const uint8_t *a, uint8_t len)
{
	char buf[INET6_ADDRSTRLEN + 4];

	sky_subs_prefix_str(buf, sizeof(buf), fam, a, len);
	return json_string(buf);
}

static json_t *
info_json(const struct sky_subs *s, const struct sky_sub_info *in)
{
	char cc[3];

	const char *zone = sky_subs_zone_name(s, in->zone);

	cc_str(in->country, cc);
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:s}", "id",
			 (json_int_t)in->id, "idx", (json_int_t)in->idx, "plan",
			 s->plans[in->plan].name, "beam", s->beams[in->beam].name, "country", cc,
			 "realm", in->realm, "zone", zone ? json_string(zone) : json_null(), "ipv4",
			 in->has_v4 ? pfx_json(4, in->v4, in->v4_len) : json_null(), "ipv6",
			 in->has_v6 ? pfx_json(6, in->v6, in->v6_len) : json_null(), "quota_state",
			 sky_quota_state_name(subs_k_quota(
				 __atomic_load_n(&s->tab->rec[in->idx].k, __ATOMIC_RELAXED))));
}

int
sky_subs_parse_id(const char *s, uint32_t *id)
{
	uint64_t v;

	if (sky_parse_u64(s, 1, UINT32_MAX, &v) < 0)
		return -1;
	*id = (uint32_t)v;
	return 0;
}

/* A zone name that is not configured: the message names it and lists the zones. */
static int
zone_unknown(const struct sky_subs *s, const char *v, struct sky_ctl_call *call)
{
	char list[512] = "";
	size_t o = 0;

	if (s->n_zones == 0)
		return sky_ctl_fail(call,
				    "zone '%s' unknown: no zones are configured (config `zones: "
				    "[NAME, ...]`)",
				    v);
	for (unsigned int i = 0; i < s->n_zones && o + 1 < sizeof(list); i++) {
		int n = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", s->zones[i]);

		if (n < 0)
			break;
		o += (size_t)n;
	}
	return sky_ctl_fail(call, "zone '%s' unknown (zones: %s)", v, list);
}

/* Apply key=value words to *in. mask of keys seen returned through *seen. */
enum { K_IPV4 = 1, K_IPV6 = 2, K_PLAN = 4, K_BEAM = 8, K_COUNTRY = 16, K_REALM = 32, K_ZONE = 64 };

static int
apply_kv(const struct sky_subs *s, int argc, char **argv, struct sky_sub_info *in,
	 unsigned int *seen, struct sky_ctl_call *call)
{
	static const char *const names[] = {"ipv4",    "ipv6",	"plan", "beam",
					    "country", "realm", "zone"};

	*seen = 0;
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '='), *v;
		size_t kl;
		int k = -1;

		if (eq == NULL)
			return sky_ctl_fail(call,
					    "'%s': expected key=value (keys: ipv4, ipv6, "
					    "plan, beam, country, realm, zone)",
					    argv[i]);
		kl = (size_t)(eq - argv[i]);
		v = eq + 1;
		for (int j = 0; j < 7; j++)
			if (strlen(names[j]) == kl && strncmp(names[j], argv[i], kl) == 0)
				k = j;
		if (k < 0)
			return sky_ctl_fail(call,
					    "'%s': unknown key (keys: ipv4, ipv6, plan, beam, "
					    "country, realm, zone)",
					    argv[i]);
		if (*seen & (1u << k))
			return sky_ctl_fail(call, "'%s': key given twice", argv[i]);
		*seen |= 1u << k;
		switch (k) {
		case 0:
			in->has_v4 = 0;
			memset(in->v4, 0, 4);
			in->v4_len = 0;
			if (*v == '\0')
				break;
			if (sky_parse_ip4_prefix(v, strlen(v), in->v4, &in->v4_len) < 0 ||
			    in->v4_len == 0)
				return sky_ctl_fail(call,
						    "ipv4 '%s' is not an IPv4 address or prefix "
						    "(/1../32, host bits zero)",
						    v);
			in->has_v4 = 1;
			break;
		case 1:
			in->has_v6 = 0;
			memset(in->v6, 0, 16);
			in->v6_len = 0;
			if (*v == '\0')
				break;
			if (sky_parse_ip6_prefix(v, strlen(v), in->v6, &in->v6_len) < 0 ||
			    in->v6_len == 0)
				return sky_ctl_fail(call,
						    "ipv6 '%s' is not an IPv6 address or prefix "
						    "(/1../128, host bits zero)",
						    v);
			in->has_v6 = 1;
			break;
		case 2: {
			int p = sky_subs_plan_index(s, v);

			if (p < 0)
				return sky_ctl_fail(call, "plan '%s' unknown (see plan list)", v);
			in->plan = (uint16_t)p;
			break;
		}
		case 3: {
			int b = sky_subs_beam_index(s, v);

			if (b < 0)
				return sky_ctl_fail(call, "beam '%s' unknown (see beam list)", v);
			in->beam = (uint16_t)b;
			break;
		}
		case 4:
			if (sky_parse_country(v, &in->country) < 0)
				return sky_ctl_fail(
					call, "country '%s' is not an ISO 3166 alpha-2 code", v);
			break;
		case 5: {
			uint64_t r;

			if (sky_parse_u64(v, 0, SKY_REALM_MAX, &r) < 0)
				return sky_ctl_fail(call, "realm '%s' is not a VLAN id 0..%d", v,
						    SKY_REALM_MAX);
			in->realm = (uint16_t)r;
			break;
		}
		case 6: {
			int z;

			if (*v == '\0') { /* zone= : no zone */
				in->zone = 0;
				break;
			}
			z = sky_subs_zone_index(s, v);
			if (z < 0)
				return zone_unknown(s, v, call);
			in->zone = (uint8_t)z;
			break;
		}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ subscriber */

/* "subscriber.changed" for the OSS following the events stream (not on replay: nothing
 * changes then, the state is rebuilt). sub: the subscriber as `subscriber show` has it
 * (copied), or NULL. */
static void
changed_event(const struct sky_ctl_call *call, const char *change, uint32_t id, const json_t *sub,
	      unsigned int n_subs)
{
	json_t *f;

	if (call->replay)
		return;
	f = json_pack("{s:s}", "change", change);
	if (f == NULL)
		return;
	if (id != 0)
		json_object_set_new(f, "id", json_integer(id));
	if (sub != NULL)
		json_object_set_new(f, "subscriber", json_deep_copy(sub));
	if (strcmp(change, "load") == 0)
		json_object_set_new(f, "subscribers", json_integer(n_subs));
	sky_ctl_event("subscriber.changed", f);
}

static int
cmd_sub_add(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	struct sky_sub_info in;
	unsigned int seen;
	char err[512];

	memset(&in, 0, sizeof(in));
	if (argc < 1 || sky_subs_parse_id(argv[0], &in.id) < 0)
		return sky_ctl_fail(call, "id '%s' is not a number 1..4294967295",
				    argc ? argv[0] : "");
	if (apply_kv(s, argc - 1, argv + 1, &in, &seen, call) < 0)
		return -1;
	if (!(seen & K_PLAN))
		return sky_ctl_fail(call, "plan=NAME required");
	if (!(seen & K_BEAM))
		return sky_ctl_fail(call, "beam=NAME required");
	if (!(seen & K_COUNTRY))
		return sky_ctl_fail(call, "country=CC required");
	if (sky_ctl_commit(call) != 0) /* write-ahead: journaled, then applied */
		return -1;
	if (locked_op(s, subs_op_add(s, &in, err, sizeof(err))) < 0)
		return sky_ctl_fail(call, "id %u: %s", in.id, err);
	sky_subs_get(s, in.id, &in);
	sky_audit(call->uid, "subscriber %u added (idx %u)", in.id, in.idx);
	*result = info_json(s, &in);
	changed_event(call, "add", in.id, *result, 0);
	return 0;
}

static int
cmd_sub_del(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	uint32_t id;
	char err[512];

	if (argc != 1 || sky_subs_parse_id(argv[0], &id) < 0)
		return sky_ctl_fail(call, "usage: subscriber del ID (1..4294967295)");
	if (sky_ctl_commit(call) != 0) /* write-ahead: journaled, then applied */
		return -1;
	if (locked_op(s, subs_op_del(s, id, err, sizeof(err))) < 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "subscriber %u deleted", id);
	*result = json_pack("{s:I}", "deleted", (json_int_t)id);
	changed_event(call, "del", id, NULL, 0);
	return 0;
}

static int
cmd_sub_set(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	struct sky_sub_info in;
	unsigned int seen;
	uint32_t id;
	char err[512];

	if (argc < 2 || sky_subs_parse_id(argv[0], &id) < 0)
		return sky_ctl_fail(call, "usage: subscriber set ID key=value...");
	if (sky_subs_get(s, id, &in) < 0)
		return sky_ctl_fail(call, "no subscriber with id %u", id);
	if (apply_kv(s, argc - 1, argv + 1, &in, &seen, call) < 0)
		return -1;
	if (sky_ctl_commit(call) != 0) /* write-ahead: journaled, then applied */
		return -1;
	if (locked_op(s, subs_op_set(s, &in, err, sizeof(err))) < 0)
		return sky_ctl_fail(call, "id %u: %s", id, err);
	sky_subs_get(s, id, &in);
	sky_audit(call->uid, "subscriber %u changed", id);
	*result = info_json(s, &in);
	changed_event(call, "set", id, *result, 0);
	return 0;
}

static json_t *
counters_json(const struct sky_subs *s, const uint64_t *c)
{
	json_t *o = json_object(), *dirs[2] = {json_object(), json_object()}, *dr = json_object();
	const unsigned int nc = s->n_classes;

	for (unsigned int d = 0; d < 2; d++) {
		for (unsigned int k = 0; k < nc; k++)
			json_object_set_new(dirs[d], s->cs.cls[k].name,
					    json_pack("{s:I, s:I}", "packets",
						      (json_int_t)c[d * nc + k], "bytes",
						      (json_int_t)c[2 * nc + d * nc + k]));
	}
	for (unsigned int g = 0; g < SKY_SUBS_DG_MAX; g++)
		json_object_set_new(dr, sky_subs_dg_names[g],
				    json_integer((json_int_t)c[4 * nc + g]));
	json_object_set_new(o, "up", dirs[0]);
	json_object_set_new(o, "down", dirs[1]);
	json_object_set_new(o, "drops", dr);
	return o;
}

static int
cmd_sub_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	struct sky_sub_info in;
	uint64_t c[4 * SKY_MAX_CLASSES + SKY_SUBS_DG_MAX];
	uint32_t id;
	json_t *o;

	if (argc != 1 || sky_subs_parse_id(argv[0], &id) < 0)
		return sky_ctl_fail(call, "usage: subscriber show ID (1..4294967295)");
	if (sky_subs_get(s, id, &in) < 0)
		return sky_ctl_fail(call, "no subscriber with id %u", id);
	o = info_json(s, &in);
	subs_sum_counters(s, in.idx, c);
	json_object_set_new(o, "counters", counters_json(s, c));
	*result = o;
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmd_sub_list(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	uint64_t page = 1, size = 50, *keys, n = 0;
	json_t *arr, *o;

	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "page=", 5) == 0) {
			if (sky_parse_u64(argv[i] + 5, 1, UINT32_MAX, &page) < 0)
				return sky_ctl_fail(call, "'%s': page must be 1 or more", argv[i]);
		} else if (strncmp(argv[i], "size=", 5) == 0) {
			if (sky_parse_u64(argv[i] + 5, 1, 10000, &size) < 0)
				return sky_ctl_fail(call, "'%s': size must be 1..10000", argv[i]);
		} else {
			return sky_ctl_fail(call, "'%s': expected page=N or size=N", argv[i]);
		}
	}
	keys = malloc((s->n_subs + 1) * sizeof(*keys));
	if (keys == NULL)
		return sky_ctl_fail(call, "out of memory");
	for (uint32_t i = 0; i < s->capacity; i++)
		if (s->info[i].id != 0)
			keys[n++] = (uint64_t)s->info[i].id << 32 | i;
	qsort(keys, n, sizeof(*keys), cmp_u64);
	arr = json_array();
	for (uint64_t k = (page - 1) * size; k < n && k < page * size; k++)
		json_array_append_new(arr, info_json(s, &s->info[(uint32_t)keys[k]]));
	free(keys);
	o = json_pack("{s:I, s:I, s:I, s:I, s:o}", "total", (json_int_t)n, "page", (json_int_t)page,
		      "size", (json_int_t)size, "pages", (json_int_t)((n + size - 1) / size),
		      "subscribers", arr);
	*result = o;
	return 0;
}

/* subscriber top by=NAME: an ordering another module registered (sky_subs_top_order) */
static int
top_by_order(struct sky_subs *s, const char *by, unsigned int size, struct sky_ctl_call *call,
	     json_t **result)
{
	uint32_t idx[100];
	unsigned int n;
	char names[160] = "bytes";
	json_t *arr;

	for (unsigned int i = 0; i < s->n_orders; i++) {
		if (strcmp(s->orders[i].name, by) != 0)
			continue;
		n = s->orders[i].rank(s->orders[i].arg, idx, size);
		arr = json_array();
		for (unsigned int k = 0; k < n && k < size; k++)
			if (idx[k] < s->capacity && s->info[idx[k]].id != 0)
				json_array_append_new(arr, info_json(s, &s->info[idx[k]]));
		*result = json_pack("{s:s, s:o}", "by", by, "subscribers", arr);
		return 0;
	}
	for (unsigned int i = 0; i < s->n_top_keys; i++) {
		size_t l = strlen(names);

		snprintf(names + l, sizeof(names) - l, ", %s", s->top_keys[i].name);
	}
	for (unsigned int i = 0; i < s->n_orders; i++) {
		size_t l = strlen(names);

		snprintf(names + l, sizeof(names) - l, ", %s", s->orders[i].name);
	}
	return sky_ctl_fail(call, "'%s': unknown figure (by=%s)", by, names);
}

/*
 * subscriber top: the N subscribers that moved the most bytes (both directions, every
 * class) since start, or with the most of another module's figure (by=NAME, `--by NAME`:
 * sky_subs_top_key, e.g. quota's usage this period). A scan of every subscriber's counters
 * on the control plane: about 100 ms for 1M subscribers; never on the data path.
 */
static int
cmd_sub_top(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	uint64_t size = 10, c[4 * SKY_MAX_CLASSES + SKY_SUBS_DG_MAX];
	const unsigned int nc = s->n_classes;
	uint64_t best_bytes[100];
	uint32_t best_idx[100];
	unsigned int n_best = 0;
	json_t *arr;

	const char *by = "bytes";
	int key = -1; /* -1: bytes, else top_keys[key] */

	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "by=", 3) == 0) {
			by = argv[i] + 3;
		} else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc) {
			by = argv[++i];
		} else if (strncmp(argv[i], "size=", 5) != 0 ||
			   sky_parse_u64(argv[i] + 5, 1, 100, &size) < 0) {
			return sky_ctl_fail(call, "'%s': expected size=N (1..100) or by=NAME",
					    argv[i]);
		}
	}
	for (unsigned int k = 0; k < s->n_top_keys; k++)
		if (strcmp(by, s->top_keys[k].name) == 0)
			key = (int)k;
	if (key < 0 && strcmp(by, "bytes") != 0)
		return top_by_order(s, by, (unsigned int)size, call, result);
	for (uint32_t i = 0; i < s->capacity; i++) {
		uint64_t bytes = 0;
		unsigned int pos;

		if (s->info[i].id == 0)
			continue;
		if (key >= 0) {
			bytes = s->top_keys[key].fn(s->top_keys[key].arg, i);
		} else {
			subs_sum_counters(s, i, c);
			for (unsigned int k = 0; k < 2 * nc; k++)
				bytes += c[2 * nc + k];
		}
		if (bytes == 0 || (n_best == size && bytes <= best_bytes[n_best - 1]))
			continue;
		/* insertion into a short sorted list */
		pos = n_best < size ? n_best++ : n_best - 1;
		while (pos > 0 && best_bytes[pos - 1] < bytes) {
			best_bytes[pos] = best_bytes[pos - 1];
			best_idx[pos] = best_idx[pos - 1];
			pos--;
		}
		best_bytes[pos] = bytes;
		best_idx[pos] = i;
	}
	arr = json_array();
	for (unsigned int k = 0; k < n_best; k++) {
		json_t *o = info_json(s, &s->info[best_idx[k]]);
		uint64_t up = 0, down = 0, bytes = 0;

		subs_sum_counters(s, best_idx[k], c);
		for (unsigned int j = 0; j < nc; j++) {
			up += c[2 * nc + j];
			down += c[3 * nc + j];
		}
		if (key >= 0)
			json_object_set_new(o, s->top_keys[key].name,
					    json_integer((json_int_t)best_bytes[k]));
		for (unsigned int j = 0; j < 2 * nc; j++)
			bytes += c[2 * nc + j];
		json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
		json_object_set_new(o, "up_bytes", json_integer((json_int_t)up));
		json_object_set_new(o, "down_bytes", json_integer((json_int_t)down));
		json_array_append_new(arr, o);
	}
	*result = json_pack("{s:s, s:o}", "by", key >= 0 ? s->top_keys[key].name : "bytes",
			    "subscribers", arr);
	return 0;
}

static int
cmd_sub_find(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	uint8_t a[16] = {0}, len;
	uint64_t vid = 0;
	uint32_t idx;
	int fam;

	if (argc < 1 || argc > 2 || (argc == 2 && strncmp(argv[1], "vlan=", 5) != 0))
		return sky_ctl_fail(call, "usage: subscriber find ADDRESS [vlan=N]");
	if (argc == 2 && sky_parse_u64(argv[1] + 5, 0, 4095, &vid) < 0)
		return sky_ctl_fail(call, "'%s': vlan must be 0..4095", argv[1]);
	fam = strchr(argv[0], ':') != NULL ? 6 : 4;
	if ((fam == 4 ? sky_parse_ip4_prefix(argv[0], strlen(argv[0]), a, &len)
		      : sky_parse_ip6_prefix(argv[0], strlen(argv[0]), a, &len)) < 0 ||
	    len != (fam == 4 ? 32 : 128))
		return sky_ctl_fail(call, "'%s' is not an IPv4 or IPv6 address", argv[0]);
	idx = subs_find(s, (uint8_t)fam, a, (uint16_t)vid);
	if (idx == SKY_SUB_NONE)
		return sky_ctl_fail(call, "no subscriber owns %s%s%s", argv[0],
				    vid ? " on vlan " : "", vid ? argv[1] + 5 : "");
	*result = info_json(s, &s->info[idx]);
	return 0;
}

/*
 * Copy the operator's CSV to the state directory (what the journal replays). The file is
 * read the safe way (sky_file_read: a FIFO, device or directory refused at once, size and
 * time bounded, refused if it changed while being read), so the copy is one consistent
 * version of it.
 */
static int
copy_file(const char *from, const char *to, char *err, size_t errlen)
{
	void *buf;
	size_t len, off = 0;
	int out, rc = 0;

	if (sky_file_read(from, SKY_SUBS_CSV_MAX_BYTES, SKY_SUBS_CSV_TIMEOUT_MS, &buf, &len, err,
			  errlen) < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		snprintf(err, errlen, "%s: %s", to, strerror(errno));
		free(buf);
		return -1;
	}
	while (rc == 0 && off < len) {
		ssize_t w = write(out, (const char *)buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = subs_fail(err, errlen, "%s: %s", to, strerror(errno));
		else
			off += (size_t)w;
	}
	free(buf);
	if (rc == 0 && fsync(out) < 0)
		rc = subs_fail(err, errlen, "%s: fsync: %s", to, strerror(errno));
	if (close(out) < 0 && rc == 0)
		rc = subs_fail(err, errlen, "%s: %s", to, strerror(errno));
	if (rc < 0)
		unlink(to);
	return rc;
}

static int
cmd_sub_load(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	const char *dir = sky_ctl_state_dir(), *path;
	char copy[PATH_MAX] = "", err[512] = "";

	if (argc != 1 || argv[0][0] == '\0')
		return sky_ctl_fail(call, "usage: subscriber load FILE");
	path = argv[0];
	/* keep the file the journal replays: a copy in the state directory */
	if (dir != NULL && !call->replay) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(copy, sizeof(copy), "%s/subscribers-%lld-%09ld.csv", dir,
			 (long long)ts.tv_sec, ts.tv_nsec);
		if (copy_file(path, copy, err, sizeof(err)) < 0)
			return sky_ctl_fail(call, "%s", err);
		path = copy;
	}
	if (copy[0] != '\0') {
		const char *j[] = {"subscriber", "load", copy};

		sky_ctl_journal_as(call, 3, j);
	}
	if (sky_ctl_commit(call) != 0) { /* write-ahead: journaled, then applied */
		if (copy[0] != '\0')
			unlink(copy);
		return -1;
	}
	if (locked_op(s, subs_op_load(s, path, err, sizeof(err))) < 0) {
		if (copy[0] != '\0')
			unlink(copy);
		if (copy[0] != '\0' && strncmp(err, copy, strlen(copy)) == 0) {
			/* name the operator's file, not the copy */
			char msg[600];

			snprintf(msg, sizeof(msg), "%s%s", argv[0], err + strlen(copy));
			return sky_ctl_fail(call, "%s", msg);
		}
		return sky_ctl_fail(call, "%s", err);
	}
	sky_audit(call->uid, "subscriber table replaced from %s (%u subscribers)%s%s", argv[0],
		  s->n_subs, copy[0] ? ", kept as " : "", copy);
	*result = json_pack("{s:I, s:s}", "subscribers", (json_int_t)s->n_subs, "file", path);
	changed_event(call, "load", 0, NULL, s->n_subs);
	return 0;
}

/* ------------------------------------------------------------------ plans, beams */

static json_t *
plan_json(const struct sky_subs *s, unsigned int i)
{
	const struct sky_plan *p = &s->plans[i];
	json_t *cw = json_object();

	for (unsigned int c = 0; c < s->cs.n_classes; c++)
		json_object_set_new(cw, s->cs.cls[c].name, json_integer(p->class_weight[c]));
	return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:o}", "name", p->name, "index", i,
			 "down_bps", (json_int_t)p->down_bps, "up_bps", (json_int_t)p->up_bps,
			 "down_burst_bytes", (json_int_t)p->down_burst_bytes, "up_burst_bytes",
			 (json_int_t)p->up_burst_bytes, "weight", (json_int_t)p->weight,
			 "class_weights", cw);
}

static json_t *
beam_json(const struct sky_subs *s, unsigned int i)
{
	return json_pack("{s:s, s:i, s:I, s:I}", "name", s->beams[i].name, "index", i, "down_bps",
			 (json_int_t)s->beams[i].down_bps, "up_bps",
			 (json_int_t)s->beams[i].up_bps);
}

/* plans and beams: the model's named records, listed, shown and found alike */
struct named_kind {
	const char *what; /* "plan", "beam" */
	unsigned int (*count)(const struct sky_subs *s);
	int (*index)(const struct sky_subs *s, const char *name);
	json_t *(*json)(const struct sky_subs *s, unsigned int i);
};

static const struct named_kind plan_kind = {"plan", sky_subs_n_plans, sky_subs_plan_index,
					    plan_json};
static const struct named_kind beam_kind = {"beam", sky_subs_n_beams, sky_subs_beam_index,
					    beam_json};

/* index of the record called name, or -1 with the call failed */
static int
named_find(const struct named_kind *k, const struct sky_subs *s, const char *name,
	   struct sky_ctl_call *call)
{
	int i = k->index(s, name);

	return i < 0 ? sky_ctl_fail(call, "%s '%s' unknown", k->what, name) : i;
}

static int
named_list(const struct named_kind *k, const struct sky_subs *s, int argc,
	   struct sky_ctl_call *call, json_t **result)
{
	json_t *a;

	if (argc != 0)
		return sky_ctl_fail(call, "usage: %s list", k->what);
	a = json_array();
	for (unsigned int i = 0; i < k->count(s); i++)
		json_array_append_new(a, k->json(s, i));
	*result = a;
	return 0;
}

static int
named_show(const struct named_kind *k, const struct sky_subs *s, int argc, char **argv,
	   struct sky_ctl_call *call, json_t **result)
{
	int i;

	if (argc != 1)
		return sky_ctl_fail(call, "usage: %s show NAME", k->what);
	i = named_find(k, s, argv[0], call);
	if (i < 0)
		return -1;
	*result = k->json(s, (unsigned int)i);
	return 0;
}

static int
cmd_plan_list(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return named_list(&plan_kind, arg, argc, call, result);
}

static int
cmd_plan_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return named_show(&plan_kind, arg, argc, argv, call, result);
}

static int
cmd_beam_list(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return named_list(&beam_kind, arg, argc, call, result);
}

static int
cmd_beam_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	return named_show(&beam_kind, arg, argc, argv, call, result);
}

static int
cmd_plan_set(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	struct sky_plan p;
	struct plan_x x;
	char err[512];
	int i;
	uint64_t owned = 0; /* argv[k] is another module's key (sky_subs_plan_key_hook) */

	if (argc < 2)
		return sky_ctl_fail(call, "usage: plan set NAME key=value... (down up burst "
					  "down_burst up_burst weight cw.CLASS)");
	if (argc > 64)
		return sky_ctl_fail(call, "too many keys");
	i = named_find(&plan_kind, s, argv[0], call);
	if (i < 0)
		return -1;
	p = s->plans[i];
	x = s->plan_x[i];
	for (int k = 1; k < argc; k++) {
		const char *a = argv[k], *eq = strchr(a, '='), *v;
		uint64_t n;

		if (eq == NULL)
			return sky_ctl_fail(call, "'%s': expected key=value", a);
		v = eq + 1;
#define KEY(lit) ((size_t)(eq - a) == strlen(lit) && strncmp(a, lit, strlen(lit)) == 0)
		if (KEY("down") || KEY("up")) {
			if (sky_parse_rate(v, &n) < 0 || n == 0)
				return sky_ctl_fail(call, "'%s': rate must be > 0 (e.g. 50Mbit)",
						    a);
			*(KEY("down") ? &p.down_bps : &p.up_bps) = n;
		} else if (KEY("burst") || KEY("down_burst") || KEY("up_burst")) {
			if (sky_parse_size(v, &n) < 0 || n == 0)
				return sky_ctl_fail(call, "'%s': size must be > 0 (e.g. 256KB)", a);
			if (!KEY("up_burst")) {
				p.down_burst_bytes = n;
				x.down_burst_set = true;
			}
			if (!KEY("down_burst")) {
				p.up_burst_bytes = n;
				x.up_burst_set = true;
			}
		} else if (KEY("weight")) {
			if (sky_parse_u64(v, 1, UINT32_MAX, &n) < 0)
				return sky_ctl_fail(call, "'%s': weight must be 1..4294967295", a);
			p.weight = (uint32_t)n;
			x.weight_set = true;
		} else if (strncmp(a, "cw.", 3) == 0) {
			char cn[SKY_NAME_MAX];
			size_t l = (size_t)(eq - a) - 3;
			int c;

			if (l == 0 || l >= sizeof(cn))
				return sky_ctl_fail(call, "'%s': unknown class", a);
			memcpy(cn, a + 3, l);
			cn[l] = '\0';
			c = sky_subs_class_index(s, cn);
			if (c < 0)
				return sky_ctl_fail(call, "'%s': unknown class '%s'", a, cn);
			if (sky_parse_u64(v, 1, 65535, &n) < 0)
				return sky_ctl_fail(call, "'%s': class weight must be 1..65535", a);
			p.class_weight[c] = (uint32_t)n;
		} else {
			char key[64], also[128] = "";
			bool mine = false;

			snprintf(key, sizeof(key), "%.*s", (int)(eq - a), a);
			for (const char *const *o = s->pk_keys; o != NULL && *o != NULL; o++) {
				mine |= strcmp(*o, key) == 0;
				snprintf(also + strlen(also), sizeof(also) - strlen(also), ", %s",
					 *o);
			}
			if (!mine)
				return sky_ctl_fail(
					call,
					"'%s': unknown key (down, up, burst, down_burst, "
					"up_burst, weight, cw.CLASS%s)",
					a, also);
			if (s->pk_fn(s->pk_arg, (unsigned int)i, key, v, 0, err, sizeof(err)) < 0)
				return sky_ctl_fail(call, "'%s': %s", a, err);
			owned |= 1ULL << k;
		}
#undef KEY
	}
	subs_plan_defaults(&p, &x);
	if (sky_ctl_commit(call) != 0) /* write-ahead: journaled, then applied */
		return -1;
	if (locked_op(s, subs_op_plan_set(s, (unsigned int)i, &p, &x, err, sizeof(err))) < 0)
		return sky_ctl_fail(call, "plan %s: %s", argv[0], err);
	for (int k = 1; k < argc; k++) {
		char key[64];

		if (!(owned & (1ULL << k)))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(strchr(argv[k], '=') - argv[k]), argv[k]);
		/* checked above: applying cannot fail but for a bug, which is logged */
		if (s->pk_fn(s->pk_arg, (unsigned int)i, key, strchr(argv[k], '=') + 1, 1, err,
			     sizeof(err)) < 0)
			SKY_LOG(ERR, "plan %s: %s not applied: %s", argv[0], argv[k], err);
	}
	sky_audit(call->uid, "plan %s: down %" PRIu64 " up %" PRIu64 " bit/s", p.name, p.down_bps,
		  p.up_bps);
	*result = plan_json(s, (unsigned int)i);
	return 0;
}

static int
cmd_beam_set(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_subs *s = arg;
	struct sky_beam b;
	char err[512];
	int i;

	if (argc < 2)
		return sky_ctl_fail(call, "usage: beam set NAME down=RATE up=RATE");
	i = named_find(&beam_kind, s, argv[0], call);
	if (i < 0)
		return -1;
	b = s->beams[i];
	for (int k = 1; k < argc; k++) {
		const char *a = argv[k];
		uint64_t n;
		int down = strncmp(a, "down=", 5) == 0;

		if (!down && strncmp(a, "up=", 3) != 0)
			return sky_ctl_fail(call, "'%s': unknown key (down, up)", a);
		if (sky_parse_rate(a + (down ? 5 : 3), &n) < 0 || n == 0)
			return sky_ctl_fail(call, "'%s': rate must be > 0 (e.g. 1Gbit)", a);
		*(down ? &b.down_bps : &b.up_bps) = n;
	}
	if (sky_ctl_commit(call) != 0) /* write-ahead: journaled, then applied */
		return -1;
	if (locked_op(s, subs_op_beam_set(s, (unsigned int)i, &b, err, sizeof(err))) < 0)
		return sky_ctl_fail(call, "beam %s: %s", argv[0], err);
	sky_audit(call->uid, "beam %s: down %" PRIu64 " up %" PRIu64 " bit/s", b.name, b.down_bps,
		  b.up_bps);
	*result = beam_json(s, (unsigned int)i);
	return 0;
}

/* ------------------------------------------------------------------ telemetry, metrics */

static void
sum_ws(const struct sky_subs *s, struct subs_wstats *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned int w = 0; w < s->n_ctr_workers; w++) {
		const struct subs_wstats *x = &s->ws[w];

		for (int d = 0; d < 2; d++) {
			t->unknown[d] += x->unknown[d];
			for (int c = 0; c < SKY_MAX_CLASSES; c++) {
				t->pkts[d][c] += x->pkts[d][c];
				t->bytes[d][c] += x->bytes[d][c];
			}
		}
		for (int g = 0; g < SKY_SUBS_DG_MAX; g++)
			t->drops[g] += x->drops[g];
	}
}

static int tel_fill(struct sky_subs *s, const char *params, struct rte_tel_data *d);

static int
tel_subscriber(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sky_subs *s = tel_subs;

	int rc;

	(void)cmd;
	if (s == NULL)
		return -1;
	pthread_mutex_lock(&s->lock);
	rc = tel_fill(s, params, d);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int
tel_fill(struct sky_subs *s, const char *params, struct rte_tel_data *d)
{
	struct sky_sub_info in;
	struct subs_wstats t;
	uint32_t id;
	char cc[3], txt[80];

	rte_tel_data_start_dict(d);
	if (params == NULL || params[0] == '\0') {
		sum_ws(s, &t);
		rte_tel_data_add_dict_u64(d, "subscribers", s->n_subs);
		rte_tel_data_add_dict_u64(d, "capacity", s->capacity);
		rte_tel_data_add_dict_u64(d, "unknown_up_packets", t.unknown[0]);
		rte_tel_data_add_dict_u64(d, "unknown_down_packets", t.unknown[1]);
		return 0;
	}
	if (sky_subs_parse_id(params, &id) < 0 || sky_subs_get(s, id, &in) < 0)
		return -1;
	cc_str(in.country, cc);
	rte_tel_data_add_dict_u64(d, "id", in.id);
	rte_tel_data_add_dict_u64(d, "idx", in.idx);
	rte_tel_data_add_dict_string(d, "plan", s->plans[in.plan].name);
	rte_tel_data_add_dict_string(d, "beam", s->beams[in.beam].name);
	rte_tel_data_add_dict_string(d, "country", cc);
	rte_tel_data_add_dict_u64(d, "realm", in.realm);
	if (in.has_v4) {
		inet_ntop(AF_INET, in.v4, txt, sizeof(txt));
		snprintf(txt + strlen(txt), sizeof(txt) - strlen(txt), "/%u", in.v4_len);
		rte_tel_data_add_dict_string(d, "ipv4", txt);
	}
	if (in.has_v6) {
		inet_ntop(AF_INET6, in.v6, txt, sizeof(txt));
		snprintf(txt + strlen(txt), sizeof(txt) - strlen(txt), "/%u", in.v6_len);
		rte_tel_data_add_dict_string(d, "ipv6", txt);
	}
	{
		uint64_t c[4 * SKY_MAX_CLASSES + SKY_SUBS_DG_MAX], up_p = 0, dn_p = 0, up_b = 0,
								   dn_b = 0;
		unsigned int nc = s->n_classes;

		subs_sum_counters(s, in.idx, c);
		for (unsigned int k = 0; k < nc; k++) {
			up_p += c[k];
			dn_p += c[nc + k];
			up_b += c[2 * nc + k];
			dn_b += c[3 * nc + k];
		}
		rte_tel_data_add_dict_u64(d, "up_packets", up_p);
		rte_tel_data_add_dict_u64(d, "up_bytes", up_b);
		rte_tel_data_add_dict_u64(d, "down_packets", dn_p);
		rte_tel_data_add_dict_u64(d, "down_bytes", dn_b);
		for (unsigned int g = 0; g < SKY_SUBS_DG_MAX; g++) {
			snprintf(txt, sizeof(txt), "drops_%s", sky_subs_dg_names[g]);
			rte_tel_data_add_dict_u64(d, txt, c[4 * nc + g]);
		}
	}
	return 0;
}

static void
metrics_write(void *arg, FILE *out)
{
	const struct sky_subs *s = arg;
	static const char *const dn[2] = {"up", "down"};
	struct subs_wstats t;

	sum_ws(s, &t);
	fprintf(out,
		"# HELP skygate_subscribers Subscribers in the table.\n"
		"# TYPE skygate_subscribers gauge\nskygate_subscribers %u\n",
		s->n_subs);
	fprintf(out,
		"# HELP skygate_subscriber_capacity Subscribers the table can hold.\n"
		"# TYPE skygate_subscriber_capacity gauge\nskygate_subscriber_capacity %u\n",
		s->capacity);
	fprintf(out, "# HELP skygate_unknown_subscriber_packets_total Packets of no subscriber.\n"
		     "# TYPE skygate_unknown_subscriber_packets_total counter\n");
	for (int d = 0; d < 2; d++)
		fprintf(out, "skygate_unknown_subscriber_packets_total{dir=\"%s\"} %" PRIu64 "\n",
			dn[d], t.unknown[d]);
	fprintf(out, "# HELP skygate_class_packets_total Packets passed, per class and direction.\n"
		     "# TYPE skygate_class_packets_total counter\n");
	for (int d = 0; d < 2; d++)
		for (unsigned int c = 0; c < s->n_classes; c++)
			fprintf(out,
				"skygate_class_packets_total{class=\"%s\",dir=\"%s\"} %" PRIu64
				"\n",
				s->cs.cls[c].name, dn[d], t.pkts[d][c]);
	fprintf(out, "# HELP skygate_class_bytes_total Bytes passed, per class and direction.\n"
		     "# TYPE skygate_class_bytes_total counter\n");
	for (int d = 0; d < 2; d++)
		for (unsigned int c = 0; c < s->n_classes; c++)
			fprintf(out,
				"skygate_class_bytes_total{class=\"%s\",dir=\"%s\"} %" PRIu64 "\n",
				s->cs.cls[c].name, dn[d], t.bytes[d][c]);
	fprintf(out, "# HELP skygate_subscriber_drops_total Dropped packets by reason group.\n"
		     "# TYPE skygate_subscriber_drops_total counter\n");
	for (int g = 0; g < SKY_SUBS_DG_MAX; g++)
		fprintf(out, "skygate_subscriber_drops_total{group=\"%s\"} %" PRIu64 "\n",
			sky_subs_dg_names[g], t.drops[g]);
}

/* ------------------------------------------------------------------ register */

static const struct {
	const char *cmd, *usage, *help;
	unsigned int flags;
	sky_ctl_fn fn;
} cmds[] = {
	{"subscriber add",
	 "ID ipv4=A[/L] ipv6=P[/L] plan=NAME beam=NAME country=CC [realm=VLAN] [zone=NAME]",
	 "add a subscriber", SKY_CTL_F_JOURNAL, cmd_sub_add},
	{"subscriber del", "ID", "remove a subscriber", SKY_CTL_F_JOURNAL, cmd_sub_del},
	{"subscriber set", "ID key=value... (plan beam country ipv4 ipv6 realm zone)",
	 "change a subscriber (ipv4= or ipv6= removes that address, zone= the zone)",
	 SKY_CTL_F_JOURNAL, cmd_sub_set},
	{"subscriber show", "ID", "a subscriber and its counters", 0, cmd_sub_show},
	{"subscriber list", "[page=N] [size=N]", "subscribers sorted by id, paged", 0,
	 cmd_sub_list},
	{"subscriber top", "[size=N] [by=bytes|NAME]",
	 "the N subscribers with the most bytes (default 10), or worst first by another "
	 "module's figure (by=usage with fair use, by=rtt, by=retrans with qoe)",
	 0, cmd_sub_top},
	{"subscriber find", "ADDRESS [vlan=N]",
	 "the subscriber a packet from/to ADDRESS (outer VLAN N) belongs to", 0, cmd_sub_find},
	{"subscriber load", "FILE", "replace the whole subscriber table from a CSV",
	 SKY_CTL_F_JOURNAL, cmd_sub_load},
	{"plan list", "", "plans", 0, cmd_plan_list},
	{"plan show", "NAME", "one plan", 0, cmd_plan_show},
	{"plan set", "NAME key=value... (down up burst down_burst up_burst weight cw.CLASS)",
	 "change a plan's rates, bursts or weights", SKY_CTL_F_JOURNAL, cmd_plan_set},
	{"beam list", "", "beams", 0, cmd_beam_list},
	{"beam show", "NAME", "one beam", 0, cmd_beam_show},
	{"beam set", "NAME down=RATE up=RATE", "change a beam's capacity (rain fade, ACM)",
	 SKY_CTL_F_JOURNAL, cmd_beam_set},
};

/* the owner calls this on destroy: telemetry must not read a freed table */
static void
forget(struct sky_subs *s)
{
	if (tel_subs == s)
		tel_subs = NULL;
}

int
sky_subs_register(struct sky_subs *s)
{
	static bool tel_done;
	int rc;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		rc = sky_ctl_register(cmds[i].cmd, cmds[i].usage, cmds[i].help, cmds[i].flags,
				      cmds[i].fn, s);
		if (rc < 0) {
			SKY_LOG(ERR, "register '%s': %s", cmds[i].cmd, strerror(-rc));
			return rc;
		}
	}
	rc = sky_metrics_register("subscriber", metrics_write, s);
	if (rc < 0 && rc != -EEXIST)
		return rc;
	tel_subs = s;
	s->on_destroy = forget;
	if (!tel_done) {
		rte_telemetry_register_cmd("/skygate/subscriber", tel_subscriber,
					   "Subscriber by id (param), or totals. Params: ID");
		tel_done = true;
	}
	return 0;
}
