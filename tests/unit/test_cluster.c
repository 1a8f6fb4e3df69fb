/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/cluster, the pure parts: the beam table (refused input, balance within 10 % over
 * 64 beams and 3..8 nodes, movement on join and leave, the same table whatever the order
 * of the member list, pins), the key layout (escaping, the key and value of each
 * journaled command, merging, malformed values) and base64. Table-driven, failure cases
 * first. The etcd client and the node are tested against a real etcd by
 * tests/integration/cluster_etcd.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skygate/cluster.h"
#include "skygate/config.h"
#include "skygate/quota.h"

#include "../../lib/cluster/cluster_priv.h"

#define NB 64

/* case i's message got must contain want */
static void __attribute__((noinline)) want_in(size_t i, const char *got, const char *want)
{
	if (strstr(got, want) != NULL)
		return;
	print_error("case %zu: '%s' lacks '%s'\n", i, got, want);
	fail();
}

static char beam_buf[NB][16];
static const char *beams[NB];

static void
names(char (*buf)[16], const char **out, unsigned int n, const char *fmt)
{
	for (unsigned int i = 0; i < n; i++) {
		snprintf(buf[i], 16, fmt, i);
		out[i] = buf[i];
	}
}

/* ------------------------------------------------------------------ the beam table */

static void
test_table_refused(void **state)
{
	const char *two[] = {"gw1", "gw1"}, *null[] = {"gw1", NULL};
	const char *many[SKY_CLUSTER_MAX_NODES + 1];
	int owner[NB];

	(void)state;
	names(beam_buf, beams, NB, "beam%u");
	for (unsigned int i = 0; i <= SKY_CLUSTER_MAX_NODES; i++)
		many[i] = "x";
	assert_int_equal(sky_cluster_table(beams, NB, two, 2, NULL, 0, owner), -EINVAL);
	assert_int_equal(sky_cluster_table(beams, NB, null, 2, NULL, 0, owner), -EINVAL);
	assert_int_equal(
		sky_cluster_table(beams, NB, many, SKY_CLUSTER_MAX_NODES + 1, NULL, 0, owner),
		-EINVAL);
	assert_int_equal(
		sky_cluster_table(beams, SKY_CLUSTER_MAX_BEAMS + 1, two, 1, NULL, 0, owner),
		-EINVAL);
	assert_int_equal(sky_cluster_table(beams, NB, two, 1, NULL, 0, NULL), -EINVAL);
	/* no node: nobody owns anything */
	assert_int_equal(sky_cluster_table(beams, NB, two, 0, NULL, 0, owner), 0);
	for (unsigned int b = 0; b < NB; b++)
		assert_int_equal(owner[b], -1);
}

/* node name patterns: the properties must not depend on how operators name things */
static const char *const node_fmts[] = {"gw%u", "skygate-%u.station1", "node%02u", "n%u"};

static void
test_table_balance(void **state)
{
	char nbuf[9][16];
	const char *nodes[9];
	int owner[NB];

	(void)state;
	names(beam_buf, beams, NB, "beam%u");
	for (unsigned int f = 0; f < sizeof(node_fmts) / sizeof(node_fmts[0]); f++)
		for (unsigned int n = 3; n <= 8; n++) {
			unsigned int load[9] = {0};
			double share = (double)NB / n;

			names(nbuf, nodes, n, node_fmts[f]);
			assert_int_equal(sky_cluster_table(beams, NB, nodes, n, NULL, 0, owner), 0);
			for (unsigned int b = 0; b < NB; b++) {
				assert_true(owner[b] >= 0 && owner[b] < (int)n);
				load[owner[b]]++;
			}
			for (unsigned int i = 0; i < n; i++) {
				if (load[i] < share * 0.9 || load[i] > share * 1.1)
					print_error("%s, %u nodes: node %u has %u beams (share "
						    "%.2f)\n",
						    node_fmts[f], n, i, load[i], share);
				assert_true(load[i] >= share * 0.9 && load[i] <= share * 1.1);
			}
		}
}

/*
 * Leave: the beams of the node that left move, and of the others at most as many again as
 * one node's share (a modulo hash would move most of them). Join: the new node takes its
 * share, and at most as many again move among the others.
 */
static void
test_table_movement(void **state)
{
	char nbuf[10][16];
	const char *nodes[10], *less[10];
	int before[NB], after[NB];

	(void)state;
	names(beam_buf, beams, NB, "beam%u");
	for (unsigned int f = 0; f < sizeof(node_fmts) / sizeof(node_fmts[0]); f++)
		for (unsigned int n = 3; n <= 8; n++) {
			unsigned int share = (NB + n - 1) / n;

			names(nbuf, nodes, n + 1, node_fmts[f]);
			assert_int_equal(sky_cluster_table(beams, NB, nodes, n, NULL, 0, before),
					 0);
			/* every node in turn leaves */
			for (unsigned int gone = 0; gone < n; gone++) {
				unsigned int k = 0, moved = 0;
				int map[10];

				for (unsigned int i = 0; i < n; i++)
					if (i != gone) {
						map[i] = (int)k;
						less[k++] = nodes[i];
					}
				assert_int_equal(
					sky_cluster_table(beams, NB, less, n - 1, NULL, 0, after),
					0);
				for (unsigned int b = 0; b < NB; b++)
					if (before[b] != (int)gone && map[before[b]] != after[b])
						moved++;
				if (moved > share)
					print_error("%s: %u -> %u nodes: %u other beams moved\n",
						    node_fmts[f], n, n - 1, moved);
				assert_true(moved <= share);
			}
			/* node n joins */
			assert_int_equal(sky_cluster_table(beams, NB, nodes, n + 1, NULL, 0, after),
					 0);
			unsigned int to_new = 0, moved = 0, jshare = (NB + n) / (n + 1);

			for (unsigned int b = 0; b < NB; b++) {
				if (after[b] == (int)n)
					to_new++;
				else if (after[b] != before[b])
					moved++;
			}
			assert_true(to_new >= NB / (n + 1) && to_new <= jshare);
			if (moved > jshare)
				print_error(
					"%s: %u -> %u nodes: %u beams moved between old nodes\n",
					node_fmts[f], n, n + 1, moved);
			assert_true(moved <= jshare);
		}
}

/* every node computes the table from its own member list: order must not matter */
static void
test_table_deterministic(void **state)
{
	const char *a[] = {"gw-a", "gw-b", "gw-c", "gw-d", "gw-e"};
	const char *b[] = {"gw-d", "gw-a", "gw-e", "gw-c", "gw-b"};
	int oa[NB], ob[NB];

	(void)state;
	names(beam_buf, beams, NB, "beam%u");
	assert_int_equal(sky_cluster_table(beams, NB, a, 5, NULL, 0, oa), 0);
	assert_int_equal(sky_cluster_table(beams, NB, b, 5, NULL, 0, ob), 0);
	for (unsigned int i = 0; i < NB; i++)
		assert_string_equal(a[oa[i]], b[ob[i]]);
	/* and the same twice (no state kept between calls) */
	assert_int_equal(sky_cluster_table(beams, NB, a, 5, NULL, 0, ob), 0);
	assert_memory_equal(oa, ob, sizeof(oa));
	/* the hash is fixed: a change would reshuffle every station's beams on upgrade */
	assert_true(sky_cluster_hash("gw1", "beam1") == sky_cluster_hash("gw1", "beam1"));
	assert_true(sky_cluster_hash("gw1", "beam1") != sky_cluster_hash("gw1beam1", ""));
	assert_true(sky_cluster_hash("gw1", "beam1") != sky_cluster_hash("gw2", "beam1"));
}

static void
test_table_pins(void **state)
{
	const char *nodes[] = {"gw1", "gw2", "gw3"};
	struct sky_cluster_pin pins[] = {{"beam5", "gw3"}, {"beam6", "gw3"}, {"beam7", "gwX"}};
	int o[NB], free_o[NB];

	(void)state;
	names(beam_buf, beams, NB, "beam%u");
	assert_int_equal(sky_cluster_table(beams, NB, nodes, 3, pins, 3, o), 0);
	assert_int_equal(o[5], 2);
	assert_int_equal(o[6], 2);
	assert_true(o[7] >= 0); /* pinned to a node that is not live: the table decides */
	/* a pin to a node that is gone is no pin */
	assert_int_equal(sky_cluster_table(beams, NB, nodes, 2, pins, 3, o), 0);
	assert_int_equal(sky_cluster_table(beams, NB, nodes, 2, NULL, 0, free_o), 0);
	assert_memory_equal(o, free_o, sizeof(o));
}

/* ------------------------------------------------------------------ key layout */

static void
test_key_escape(void **state)
{
	static const struct {
		const char *in, *esc;
	} ok[] = {
		{"beam1", "beam1"},
		{"10.0.0.0/8", "10.0.0.0%2F8"},
		{"2001:db8::/32", "2001:db8::%2F32"},
		{"a b%c", "a%20b%25c"},
		{"RU:KP", "RU:KP"},
		{"", ""},
		{"\xc3\xa9t\xc3\xa9", "%C3%A9t%C3%A9"},
	};
	static const char *const bad[] = {"%", "%2", "%G0", "%00", "a/b", "a b", "%2f%"};
	char buf[64], back[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sky_cluster_key_unescape(bad[i], back, sizeof(back)) != -EINVAL)
			print_error("'%s' was accepted\n", bad[i]);
		assert_int_equal(sky_cluster_key_unescape(bad[i], back, sizeof(back)), -EINVAL);
	}
	assert_int_equal(sky_cluster_key_escape("10.0.0.0/8", buf, 8), -ENAMETOOLONG);
	assert_int_equal(sky_cluster_key_unescape("10.0.0.0%2F8", back, 4), -ENAMETOOLONG);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(sky_cluster_key_escape(ok[i].in, buf, sizeof(buf)),
				 (int)strlen(ok[i].esc));
		assert_string_equal(buf, ok[i].esc);
		assert_int_equal(sky_cluster_key_unescape(buf, back, sizeof(back)),
				 (int)strlen(ok[i].in));
		assert_string_equal(back, ok[i].in);
	}
	/* lower-case hex reads too */
	assert_int_equal(sky_cluster_key_unescape("a%2fb", back, sizeof(back)), 3);
	assert_string_equal(back, "a/b");
}

#define P "/skygate/st1"

struct op_case {
	const char *argv[8];
	const char *prev; /* JSON of the stored value, or NULL */
	int rc;
	const char *key;   /* expected key (rc 0) or a substring of err */
	const char *value; /* expected value, compact JSON */
};

static const struct op_case op_cases[] = {
	/* refused first */
	{{"subscriber", "load", "x.csv"}, NULL, -ENOTSUP, "'subscriber load' has no place", NULL},
	{{"map", "clear", "blocked"}, NULL, -ENOTSUP, "'map clear'", NULL},
	{{"journal", "ack"}, NULL, -ENOTSUP, "'journal ack'", NULL},
	{{"plan", "set", "gold"}, NULL, -EINVAL, "plan set: NAME and key=value", NULL},
	{{"subscriber", "set", "7"}, NULL, -EINVAL, "subscriber set: ID and key=value", NULL},
	{{"subscriber", "del"}, NULL, -EINVAL, "subscriber del: ID expected", NULL},
	{{"map", "update", "m", "DE"}, NULL, -EINVAL, "map update: NAME KEY VALUE", NULL},
	{{"map", "delete", "m", "DE", "1"}, NULL, -EINVAL, "map delete: NAME KEY", NULL},
	{{"policy", "load"}, NULL, -ENOTSUP, "'policy load'", NULL},
	{{"quota", "import", "/tmp/u.csv"},
	 NULL,
	 -ENOTSUP,
	 "quota import has no key of its own",
	 NULL},
	{{"quota", "add"}, NULL, -EINVAL, "quota add: ID expected", NULL},
	/* stored */
	{{"plan", "set", "gold", "down=10Mbit"},
	 NULL,
	 0,
	 P "/state/plans/gold",
	 "{\"argv\":[\"plan\",\"set\",\"gold\",\"down=10Mbit\"]}"},
	{{"plan", "set", "gold", "up=1Mbit", "down=20Mbit"},
	 "{\"argv\":[\"plan\",\"set\",\"gold\",\"down=10Mbit\",\"burst=64KB\"]}",
	 0,
	 P "/state/plans/gold",
	 "{\"argv\":[\"plan\",\"set\",\"gold\",\"down=20Mbit\",\"burst=64KB\",\"up=1Mbit\"]}"},
	{{"beam", "set", "beam 1", "down=1Gbit"},
	 NULL,
	 0,
	 P "/state/beams/beam%201",
	 "{\"argv\":[\"beam\",\"set\",\"beam 1\",\"down=1Gbit\"]}"},
	{{"subscriber", "add", "42", "ipv4=10.0.0.1", "plan=basic", "beam=b1", "country=DE"},
	 NULL,
	 0,
	 P "/state/subscribers/42",
	 "{\"argv\":[\"subscriber\",\"add\",\"42\",\"ipv4=10.0.0.1\",\"plan=basic\","
	 "\"beam=b1\",\"country=DE\"]}"},
	/* a set folded into the stored add; ipv4= removes the address */
	{{"subscriber", "set", "42", "plan=gold", "ipv4=", "ipv6=2001:db8::/56"},
	 "{\"argv\":[\"subscriber\",\"add\",\"42\",\"ipv4=10.0.0.1\",\"plan=basic\"]}",
	 0,
	 P "/state/subscribers/42",
	 "{\"argv\":[\"subscriber\",\"add\",\"42\",\"plan=gold\",\"ipv6=2001:db8::/56\"]}"},
	/* a set of a subscriber from the configuration: stays a set, folded */
	{{"subscriber", "set", "9", "plan=gold", "ipv4="},
	 "{\"argv\":[\"subscriber\",\"set\",\"9\",\"plan=basic\",\"beam=b2\"]}",
	 0,
	 P "/state/subscribers/9",
	 "{\"argv\":[\"subscriber\",\"set\",\"9\",\"plan=gold\",\"beam=b2\",\"ipv4=\"]}"},
	{{"subscriber", "del", "9"},
	 "{\"argv\":[\"subscriber\",\"add\",\"9\",\"plan=basic\"]}",
	 0,
	 P "/state/subscribers/9",
	 "{\"argv\":[\"subscriber\",\"del\",\"9\"]}"},
	{{"map", "update", "allow", "10.0.0.0/8", "pass"},
	 NULL,
	 0,
	 P "/state/maps/allow/10.0.0.0%2F8",
	 "{\"argv\":[\"map\",\"update\",\"allow\",\"10.0.0.0/8\",\"pass\"]}"},
	{{"map", "delete", "allow", "10.0.0.0/8"},
	 NULL,
	 0,
	 P "/state/maps/allow/10.0.0.0%2F8",
	 "{\"argv\":[\"map\",\"delete\",\"allow\",\"10.0.0.0/8\"]}"},
	{{"policy", "load", "/usr/lib/skygate/policies/country_block.bpf.o"},
	 NULL,
	 0,
	 P "/state/policy",
	 "{\"argv\":[\"policy\",\"load\",\"/usr/lib/skygate/policies/country_block.bpf.o\"]}"},
	{{"policy", "unload"}, NULL, 0, P "/state/policy", "{\"argv\":[\"policy\",\"unload\"]}"},
	/* quota changes: the last one of a subscriber, as it was given */
	{{"quota", "add", "7", "10GB"},
	 "{\"argv\":[\"quota\",\"reset\",\"7\"]}",
	 0,
	 P "/state/quota/7",
	 "{\"argv\":[\"quota\",\"add\",\"7\",\"10GB\"]}"},
	{{"quota", "reset", "7"},
	 NULL,
	 0,
	 P "/state/quota/7",
	 "{\"argv\":[\"quota\",\"reset\",\"7\"]}"},
	{{"quota", "set", "7", "used=1GB", "anchor=2026-01-05"},
	 NULL,
	 0,
	 P "/state/quota/7",
	 "{\"argv\":[\"quota\",\"set\",\"7\",\"used=1GB\",\"anchor=2026-01-05\"]}"},
};

static void
test_op_from_argv(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(op_cases) / sizeof(op_cases[0]); i++) {
		const struct op_case *c = &op_cases[i];
		struct sky_cluster_op op;
		json_t *prev = NULL;
		char err[512] = "";
		int argc = 0, rc;

		while (argc < 8 && c->argv[argc] != NULL)
			argc++;
		if (c->prev != NULL)
			assert_non_null(prev = json_loads(c->prev, 0, NULL));
		rc = sky_cluster_op_from_argv(P, argc, (char *const *)c->argv, prev, &op, err,
					      sizeof(err));
		json_decref(prev);
		if (rc != c->rc)
			print_error("case %zu (%s %s): rc %d, want %d (%s)\n", i, c->argv[0],
				    c->argv[1], rc, c->rc, err);
		assert_int_equal(rc, c->rc);
		if (rc != 0) {
			want_in(i, err, c->key);
			continue;
		}
		char *v = json_dumps(op.value, JSON_COMPACT);

		assert_string_equal(op.key, c->key);
		assert_string_equal(v, c->value);
		free(v);
		/* what is stored passes the check at its own key */
		assert_non_null(sky_cluster_value_check(P, op.key, op.value, err, sizeof(err)));
		json_decref(op.value);
	}
}

static const struct {
	const char *key, *value, *err;
} malformed[] = {
	{P "/state/plans/gold", "[\"plan\"]", "/state/plans/gold: not a JSON object"},
	{P "/state/plans/gold", "{\"args\":[]}", "/state/plans/gold: not a JSON object"},
	{P "/state/plans/gold", "{\"argv\":[\"plan\"]}", "argv has 1 words"},
	{P "/state/plans/gold", "{\"argv\":[\"plan\",\"set\",3]}", "argv[2] is not a string"},
	{P "/state/plans/gold", "{\"argv\":[\"plan\",\"set\",\"gold\"]}",
	 "/state/plans/gold: plan set: NAME and key=value"},
	/* a valid change stored at another object's key */
	{P "/state/plans/gold", "{\"argv\":[\"plan\",\"set\",\"silver\",\"down=1Mbit\"]}",
	 "/state/plans/gold: holds a change of " P "/state/plans/silver"},
	{P "/state/subscribers/1", "{\"argv\":[\"subscriber\",\"load\",\"x\"]}", "has no place"},
	{P "/state/policy", "{\"argv\":[\"reload\",\"now\"]}", "/state/policy: 'reload now'"},
};

static void
test_value_malformed(void **state)
{
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		json_t *v = json_loads(malformed[i].value, JSON_DECODE_ANY, NULL);

		assert_non_null(v);
		err[0] = '\0';
		assert_null(sky_cluster_value_check(P, malformed[i].key, v, err, sizeof(err)));
		want_in(i, err, malformed[i].err);
		want_in(i, err, malformed[i].key); /* the message names the key */
		json_decref(v);
	}
}

/* ------------------------------------------------------------------ usage snapshots */

#define UK P "/usage/beam%201"
#define UHEAD "{\"v\":1,\"beam\":\"beam 1\",\"node\":\"gw1\",\"rev\":12,\"at\":1700000000,"
#define UROW "[7,1000,0,1699990000,1700990000,19000,1]"

static void
test_usage_malformed(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{"", UK ": not JSON"},
		{"{\"v\":1", UK ": not JSON"},
		{"[1,2]", UK ": not a JSON object"},
		{"{\"beam\":\"beam 1\",\"rev\":1,\"subs\":[]}", UK ": \"v\" is not 1"},
		{"{\"v\":2,\"beam\":\"beam 1\",\"rev\":1,\"subs\":[]}", UK ": \"v\" is not 1"},
		{"{\"v\":1,\"beam\":\"beam2\",\"rev\":1,\"subs\":[]}",
		 UK ": \"beam\" is 'beam2', not beam 1"},
		{"{\"v\":1,\"rev\":1,\"subs\":[]}", UK ": \"beam\" is missing"},
		{"{\"v\":1,\"beam\":\"beam 1\",\"rev\":\"12\",\"subs\":[]}",
		 UK ": \"rev\" is not a revision"},
		{UHEAD "\"subs\":{}}", UK ": \"subs\" is not an array"},
		{UHEAD "\"subs\":[[7,1000,0]]}", UK ": subs[0] is not [id, used"},
		{UHEAD "\"subs\":[" UROW ",7]}", UK ": subs[1] is not [id"},
		{UHEAD "\"subs\":[[7,\"1000\",0,1,2,0,0]]}", UK ": subs[0].used is not an integer"},
		{UHEAD "\"subs\":[[7,1.5,0,1,2,0,0]]}", UK ": subs[0].used is not an integer"},
		{UHEAD "\"subs\":[[0,1000,0,1,2,0,0]]}", UK ": subs[0]: id out of range"},
		{UHEAD "\"subs\":[[4294967296,1,0,1,2,0,0]]}", UK ": subs[0]: id out of range"},
		{UHEAD "\"subs\":[[7,-1,0,1,2,0,0]]}", UK ": subs[0]: used out of range"},
		{UHEAD "\"subs\":[[7,1,1152921504606846977,1,2,0,0]]}",
		 UK ": subs[0]: credit out of range"},
		{UHEAD "\"subs\":[[7,1,0,5,5,0,0]]}", UK ": subs[0]: period_end not after"},
		{UHEAD "\"subs\":[[7,1,0,1,2,2147483648,0]]}", UK ": subs[0]: anchor_day out of"},
		{UHEAD "\"subs\":[[7,1,0,1,2,0,4]]}", UK ": subs[0]: alerts out of range"},
		{UHEAD "\"subs\":[" UROW ",[8,1,0,1,2,0,0]," UROW "]}",
		 UK ": subscriber 7 is there twice"},
	};
	struct sky_quota_snap *r;
	char err[512];
	int64_t rev;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		r = (void *)1;
		n = 99;
		assert_int_equal(sky_cluster_usage_decode(UK, "beam 1", bad[i].text, &r, &n, &rev,
							  err, sizeof(err)),
				 -EINVAL);
		want_in(i, err, bad[i].err);
		assert_null(r);
		assert_int_equal(n, 0);
	}
	/* more subscribers than a snapshot holds */
	{
		size_t len = 256 + (SKY_CLUSTER_USAGE_MAX_SUBS + 1) * 40;
		char *big = malloc(len), *p = big;

		assert_non_null(big);
		p += sprintf(p, UHEAD "\"subs\":[");
		for (unsigned int i = 0; i <= SKY_CLUSTER_USAGE_MAX_SUBS; i++)
			p += sprintf(p, "%s[%u,1,0,1,2,0,0]", i ? "," : "", i + 1);
		sprintf(p, "]}");
		assert_int_equal(
			sky_cluster_usage_decode(UK, "beam 1", big, &r, &n, &rev, err, sizeof(err)),
			-EINVAL);
		want_in(0, err, UK ": 16385 subscribers, more than 16384");
		free(big);
	}
}

static void
test_usage_roundtrip(void **state)
{
	struct sky_quota_snap in[3] = {
		{.id = 4000000000u,
		 .anchor_day = -3,
		 .used = (1ull << 60),
		 .credit = 10ull << 30,
		 .period_start = 1700000000,
		 .period_end = 1702592000,
		 .alerts = 3},
		{.id = 7, .anchor_day = 19000, .used = 1000, .period_start = 1, .period_end = 2},
		{.id = 9,
		 .used = 0,
		 .credit = 5,
		 .period_start = 10,
		 .period_end = 20,
		 .alerts = 1},
	};
	struct sky_quota_snap *out, *many;
	char key[SKY_CLUSTER_KEY_MAX], err[256] = "", *text;
	size_t n, dropped = 99;
	int64_t rev = 0;

	(void)state;
	assert_int_equal(sky_cluster_usage_key(P, "beam 1", key, sizeof(key)), 0);
	assert_string_equal(key, UK);
	assert_int_equal(sky_cluster_usage_key(P, "beam1", key, 10), -ENAMETOOLONG);
	text = sky_cluster_usage_encode("beam 1", "gw1", 12, 1700000000, in, 3, &dropped);
	assert_non_null(text);
	assert_int_equal(dropped, 0);
	assert_string_equal(text, UHEAD "\"subs\":[[4000000000,1152921504606846976,10737418240,"
					"1700000000,1702592000,-3,3],[7,1000,0,1,2,19000,0],"
					"[9,0,5,10,20,0,1]]}");
	assert_int_equal(
		sky_cluster_usage_decode(UK, "beam 1", text, &out, &n, &rev, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rev, 12);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(out[i].id, in[i].id);
		assert_int_equal(out[i].anchor_day, in[i].anchor_day);
		assert_int_equal(out[i].used, in[i].used);
		assert_int_equal(out[i].credit, in[i].credit);
		assert_int_equal(out[i].period_start, in[i].period_start);
		assert_int_equal(out[i].period_end, in[i].period_end);
		assert_int_equal(out[i].alerts, in[i].alerts);
	}
	free(out);
	free(text);
	/* an empty snapshot (everyone at zero) is one too */
	text = sky_cluster_usage_encode("beam 1", "gw1", 0, 1, in, 0, &dropped);
	assert_int_equal(
		sky_cluster_usage_decode(UK, "beam 1", text, &out, &n, &rev, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rev, 0);
	free(out);
	free(text);
	/* bounded: the first SKY_CLUSTER_USAGE_MAX_SUBS (the caller puts the heaviest first) */
	many = calloc(SKY_CLUSTER_USAGE_MAX_SUBS + 5, sizeof(*many));
	assert_non_null(many);
	for (unsigned int i = 0; i < SKY_CLUSTER_USAGE_MAX_SUBS + 5; i++)
		many[i] = (struct sky_quota_snap){.id = i + 1,
						  .used = SKY_CLUSTER_USAGE_MAX_SUBS + 5 - i,
						  .period_start = 1,
						  .period_end = 2};
	text = sky_cluster_usage_encode("beam 1", "gw1", 3, 1, many, SKY_CLUSTER_USAGE_MAX_SUBS + 5,
					&dropped);
	assert_non_null(text);
	assert_int_equal(dropped, 5);
	assert_true(strlen(text) < 1024 * 1024); /* well under etcd's request limit */
	assert_int_equal(
		sky_cluster_usage_decode(UK, "beam 1", text, &out, &n, &rev, err, sizeof(err)), 0);
	assert_int_equal(n, SKY_CLUSTER_USAGE_MAX_SUBS);
	assert_int_equal(out[n - 1].id, SKY_CLUSTER_USAGE_MAX_SUBS);
	free(out);
	free(text);
	free(many);
}

/* ------------------------------------------------------------------ the cluster: section */

#define CL_OK "  etcd: [http://127.0.0.1:2379]\n  prefix: /skygate/st1\n  node: gw1\n"

static const struct {
	const char *yaml; /* the section's body, under "cluster:\n" */
	const char *msg;  /* expected message (substring) */
} cfg_bad[] = {
	{"  prefix: /skygate/st1\n  node: gw1\n", "c.yaml:1: cluster.etcd: required"},
	{"  etcd: http://127.0.0.1:2379\n  prefix: /a\n  node: gw1\n",
	 "c.yaml:2: cluster.etcd: a list of etcd client URLs expected"},
	{"  etcd: []\n  prefix: /a\n  node: gw1\n", "cluster.etcd: a list of etcd client URLs"},
	{"  etcd: [https://h:2379]\n  prefix: /a\n  node: gw1\n",
	 "c.yaml:2: cluster.etcd[0]: 'https://h:2379' is not an etcd client URL"},
	{"  etcd: [http://h:2379/v3]\n  prefix: /a\n  node: gw1\n", "is not an etcd client URL"},
	{"  etcd: [http://127.0.0.1:2379]\n  node: gw1\n", "cluster.prefix: required"},
	{"  etcd: [http://127.0.0.1:2379]\n  prefix: skygate\n  node: gw1\n",
	 "c.yaml:3: cluster.prefix: 'skygate': a key prefix such as /skygate/station1"},
	{"  etcd: [http://127.0.0.1:2379]\n  prefix: /skygate/\n  node: gw1\n",
	 "cluster.prefix: '/skygate/'"},
	{"  etcd: [http://127.0.0.1:2379]\n  prefix: /a\n", "cluster.node: required"},
	{"  etcd: [http://127.0.0.1:2379]\n  prefix: /a\n  node: gw/1\n",
	 "c.yaml:4: cluster.node: 'gw/1': a node name"},
	{CL_OK "  lease_ttl: 1s\n", "c.yaml:5: cluster.lease_ttl: whole seconds from 2s to 60s"},
	{CL_OK "  lease_ttl: 2500ms\n", "cluster.lease_ttl: whole seconds"},
	{CL_OK "  lease_ttl: 61s\n", "cluster.lease_ttl: whole seconds"},
	{CL_OK "  timeout: 10ms\n",
	 "c.yaml:5: cluster.timeout: 50ms..10s and at most lease_ttl / 3"},
	{CL_OK "  lease_ttl: 3s\n  timeout: 1500ms\n", "cluster.timeout: 50ms..10s and at most"},
	{CL_OK "  other_beams: forward\n", "c.yaml:5: cluster.other_beams"},
	{CL_OK "  pins: [beam1]\n", "cluster.pins: a map of BEAM: NODE expected"},
	{CL_OK "  pins: { beam1: 'gw 2' }\n", "cluster.pins.beam1: 'gw 2' is not a node name"},
	{CL_OK "  lease: 3s\n", "c.yaml:5: cluster.lease: unknown key"},
};

static void
test_cfg(void **state)
{
	struct sky_cluster_cfg c;
	struct sky_cfg_err err;
	struct sky_cfg *cfg;
	char text[1024];
	int enabled = -1;

	(void)state;
	for (size_t i = 0; i < sizeof(cfg_bad) / sizeof(cfg_bad[0]); i++) {
		snprintf(text, sizeof(text), "cluster:\n%s", cfg_bad[i].yaml);
		memset(&err, 0, sizeof(err));
		cfg = sky_cfg_load_string("c.yaml", text, &err);
		assert_non_null(cfg);
		assert_int_equal(sky_cluster_cfg_parse(cfg, &c, &err), -1);
		want_in(i, err.msg, cfg_bad[i].msg);
		sky_cfg_free(cfg);
	}
	/* absent: no cluster, nothing else */
	memset(&err, 0, sizeof(err));
	cfg = sky_cfg_load_string("c.yaml", "workers: 1\n", &err);
	assert_non_null(cfg);
	assert_int_equal(sky_cluster_cfg_check(cfg, &enabled, &err), 0);
	assert_int_equal(enabled, 0);
	sky_cfg_free(cfg);
	/* every key */
	cfg = sky_cfg_load_string("c.yaml",
				  "cluster:\n  etcd: [http://10.0.0.1:2379, http://10.0.0.2:2379]\n"
				  "  prefix: /skygate/st1\n  node: gw-1.a\n  lease_ttl: 6s\n"
				  "  timeout: 2s\n  other_beams: pass\n"
				  "  pins: { beam1: gw2, beam7: gw-1.a }\n",
				  &err);
	assert_non_null(cfg);
	assert_int_equal(sky_cluster_cfg_parse(cfg, &c, &err), 1);
	assert_int_equal(c.n_endpoints, 2);
	assert_string_equal(c.endpoints[1], "http://10.0.0.2:2379");
	assert_string_equal(c.prefix, "/skygate/st1");
	assert_string_equal(c.node, "gw-1.a");
	assert_int_equal(c.ttl_s, 6);
	assert_int_equal(c.timeout_ms, 2000);
	assert_int_equal(c.other, SKY_CLUSTER_OTHER_PASS);
	assert_int_equal(c.n_pins, 2);
	assert_string_equal(c.pins[1].beam, "beam7");
	assert_string_equal(c.pins[1].node, "gw-1.a");
	assert_int_equal(sky_cluster_cfg_check(cfg, &enabled, &err), 0);
	assert_int_equal(enabled, 1);
	sky_cfg_free(cfg);
}

/* ------------------------------------------------------------------ base64 */

static void
test_base64(void **state)
{
	static const char *const bad[] = {"A", "AAA", "A===", "AA=A", "AA==AAAA", "AA*A"};
	static const struct {
		const char *in, *out;
	} ok[] = {{"", ""},
		  {"f", "Zg=="},
		  {"fo", "Zm8="},
		  {"foo", "Zm9v"},
		  {"/skygate/st1/state", "L3NreWdhdGUvc3QxL3N0YXRl"}};
	char enc[64], dec[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sky_b64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), -EINVAL);
	assert_int_equal(sky_b64_decode("Zm9v", 4, dec, 2), -ENAMETOOLONG);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t n = strlen(ok[i].in);

		assert_int_equal(sky_b64_encode(ok[i].in, n, enc), strlen(ok[i].out));
		assert_string_equal(enc, ok[i].out);
		assert_int_equal(sky_b64_decode(enc, strlen(enc), dec, sizeof(dec)), (long)n);
		assert_memory_equal(dec, ok[i].in, n);
	}
	json_t *s12 = json_string("12"), *i7 = json_integer(7);

	assert_int_equal(sky_etcd_i64(s12), 12);
	assert_int_equal(sky_etcd_i64(i7), 7);
	assert_int_equal(sky_etcd_i64(NULL), 0);
	json_decref(s12);
	json_decref(i7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_refused),	cmocka_unit_test(test_table_balance),
		cmocka_unit_test(test_table_movement),	cmocka_unit_test(test_table_deterministic),
		cmocka_unit_test(test_table_pins),	cmocka_unit_test(test_key_escape),
		cmocka_unit_test(test_op_from_argv),	cmocka_unit_test(test_value_malformed),
		cmocka_unit_test(test_base64),		cmocka_unit_test(test_cfg),
		cmocka_unit_test(test_usage_malformed), cmocka_unit_test(test_usage_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
