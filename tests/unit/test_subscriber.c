/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/subscriber: config sections, CSV errors (failure cases first), lookups on real
 * sky_meta records through real rte_lpm6 tables, accounting, and runtime changes through
 * the real control registry (sky_ctl_dispatch_argv), with failures leaving everything
 * unchanged and listeners/validators called.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"

#include "fixture.h"

static char tmpdir[256];

static const char *
write_file(const char *name, const char *text)
{
	const char *p = sky_fx_file(name, text);

	assert_non_null(p);
	return p;
}

#define PLANS_BEAMS_CLASSES SKY_FX_MODEL /* the standard model (tests/common/fixture.h) */

static struct sky_subs *
make(const char *csv_text, const char *unknown, struct sky_cfg_err *err)
{
	const char *csv = write_file("t.csv", csv_text);
	struct sky_cfg *cfg;
	struct sky_subs *s;

	cfg = sky_fx_cfg("t.yaml", err, "subscribers: { file: %s, unknown: %s }\n" SKY_FX_MODEL,
			 csv, unknown);
	assert_non_null(cfg);
	s = sky_subs_create(cfg, 2, err);
	sky_cfg_free(cfg);
	return s;
}

#define HDR SKY_FX_CSV_HDR

/* ------------------------------------------------------------------ CSV errors */

static const struct {
	const char *csv;
	const char *expect; /* substring of the error */
} csv_bad[] = {
	{"", "t.csv: no header line"},
	{"# only a comment\n\n", "t.csv: no header line"},
	{"id,ipv4,ipv6,plan,beam\n", "t.csv:1: header must be"},
	{"id,ipv6,ipv4,plan,beam,country\n", "t.csv:1: header must be"},
	{"id,ipv4,ipv6,plan,beam,country,realm,x\n", "t.csv:1: header must be"},
	{HDR "1,10.0.0.1,,basic,beam1\n", "t.csv:2: 5 fields, expected 7"},
	{"id,ipv4,ipv6,plan,beam,country\n1,10.0.0.1,,basic,beam1,DE,7\n",
	 "t.csv:2: 7 fields, expected 6"},
	{HDR "0,10.0.0.1,,basic,beam1,DE,\n", "t.csv:2: id '0' is not a number"},
	{HDR "x1,10.0.0.1,,basic,beam1,DE,\n", "t.csv:2: id 'x1' is not a number"},
	{HDR "4294967296,10.0.0.1,,basic,beam1,DE,\n", "t.csv:2: id '4294967296'"},
	{HDR "-3,10.0.0.1,,basic,beam1,DE,\n", "t.csv:2: id '-3'"},
	{HDR "1,10.0.0.1,,basic,beam1,DE,\n\n# c\n1,10.0.0.2,,basic,beam1,DE,\n",
	 "t.csv:5: id 1 duplicate (also on line 2)"},
	{HDR "1,10.0.0.256,,basic,beam1,DE,\n", "t.csv:2: ipv4 '10.0.0.256'"},
	{HDR "1,10.0.0.1/33,,basic,beam1,DE,\n", "t.csv:2: ipv4 '10.0.0.1/33'"},
	{HDR "1,10.0.0.1/24,,basic,beam1,DE,\n", "t.csv:2: ipv4 '10.0.0.1/24'"},
	{HDR "1,010.0.0.1,,basic,beam1,DE,\n", "t.csv:2: ipv4 '010.0.0.1'"},
	{HDR "1,10.0.0.0/0,,basic,beam1,DE,\n", "t.csv:2: ipv4 '10.0.0.0/0'"},
	{HDR "1,2001:db8::1,,basic,beam1,DE,\n", "t.csv:2: ipv4 '2001:db8::1'"},
	{HDR "1,,2001:db8::/129,basic,beam1,DE,\n", "t.csv:2: ipv6 '2001:db8::/129'"},
	{HDR "1,,2001:db8::1/56,basic,beam1,DE,\n", "t.csv:2: ipv6 '2001:db8::1/56'"},
	{HDR "1,,zz::1,basic,beam1,DE,\n", "t.csv:2: ipv6 'zz::1'"},
	{HDR "1,,,basic,beam1,DE,\n", "t.csv:2: id 1 has neither ipv4 nor ipv6"},
	{HDR "1,10.0.0.1,,basic,beam1,DE,\n2,10.0.0.1,,basic,beam1,DE,\n",
	 "t.csv:3: ipv4 10.0.0.1/32 (realm 0) already belongs to id 1 (line 2)"},
	{HDR "1,,2001:db8:1::/56,basic,beam1,DE,\n2,,2001:db8:1::/56,basic,beam1,DE,\n",
	 "t.csv:3: ipv6 2001:db8:1::/56 (realm 0) already belongs to id 1 (line 2)"},
	{HDR "1,10.0.0.1,,basic,beam1,DE,7\n2,10.0.0.1,,basic,beam1,DE,7\n",
	 "t.csv:3: ipv4 10.0.0.1/32 (realm 7) already belongs to id 1 (line 2)"},
	{HDR "1,10.0.0.1,,gold,beam1,DE,\n",
	 "t.csv:2: plan 'gold' unknown (plans: basic, premium)"},
	{HDR "1,10.0.0.1,,basic,beam9,DE,\n",
	 "t.csv:2: beam 'beam9' unknown (beams: beam1, beam2)"},
	{HDR "1,10.0.0.1,,basic,beam1,D,\n", "t.csv:2: country 'D' is not an ISO 3166"},
	{HDR "1,10.0.0.1,,basic,beam1,DEU,\n", "t.csv:2: country 'DEU'"},
	{HDR "1,10.0.0.1,,basic,beam1,1A,\n", "t.csv:2: country '1A'"},
	{HDR "1,10.0.0.1,,basic,beam1,DE,4095\n", "t.csv:2: realm '4095' is not a VLAN id"},
	{HDR "1,10.0.0.1,,basic,beam1,DE,x\n", "t.csv:2: realm 'x'"},
	{HDR "1,,2001:db8::1,basic,beam1,DE,5\n", "t.csv:2: ipv6 '2001:db8::1': a subscriber "
						  "with a realm may have at most a /112"},
};

static void
test_csv_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(csv_bad) / sizeof(csv_bad[0]); i++) {
		struct sky_cfg_err err;
		struct sky_subs *s = make(csv_bad[i].csv, "drop", &err);

		if (s != NULL || strstr(err.msg, csv_bad[i].expect) == NULL) {
			print_error("case %zu: expected '%s', got '%s'\n", i, csv_bad[i].expect,
				    s ? "(success)" : err.msg);
			sky_subs_destroy(s);
			fail();
		}
		/* the config file and key are named too */
		assert_non_null(strstr(err.msg, "t.yaml:1: subscribers.file: "));
	}
}

static void
test_csv_ok_forms(void **state)
{
	struct sky_cfg_err err;
	struct sky_sub_info in;
	struct sky_subs *s;

	(void)state;
	/* comments, blank lines, CRLF, spaces around fields, empty realm, no realm column */
	s = make("# comment\r\n\r\n  id , ipv4 ,ipv6,plan,beam,country,realm\r\n"
		 "7, 10.1.0.0/16 , 2001:db8:7::/48 ,premium,beam2,de,\r\n"
		 "   # indented comment\n"
		 "8,10.1.2.3,,basic,beam1,FR,12\n"
		 "9,,2001:db8:9::1,basic,beam1,IT,0",
		 "drop", &err);
	assert_non_null(s);
	assert_int_equal(sky_subs_get(s, 7, &in), 0);
	assert_int_equal(in.plan, 1);
	assert_int_equal(in.beam, 1);
	assert_int_equal(in.country, sky_cc("DE"));
	assert_int_equal(in.v4_len, 16);
	assert_int_equal(in.v6_len, 48);
	assert_int_equal(sky_subs_get(s, 8, &in), 0);
	assert_int_equal(in.realm, 12);
	assert_int_equal(sky_subs_get(s, 9, &in), 0);
	assert_int_equal(in.has_v4, 0);
	assert_int_equal(in.v6_len, 128);
	assert_int_equal(sky_subs_get(s, 10, &in), -ENOENT);
	sky_subs_destroy(s);

	s = make("\xEF\xBB\xBFid,ipv4,ipv6,plan,beam,country\n1,10.0.0.1,,basic,beam1,DE\n", "drop",
		 &err);
	assert_non_null(s);
	assert_int_equal(sky_subs_get(s, 1, &in), 0);
	sky_subs_destroy(s);
}

/* ------------------------------------------------------------------ the reader's API */

/* what the row callback saw; refuses or stops at row `refuse_at` / `stop_at` (1-based) */
struct seen {
	unsigned int n, refuse_at, stop_at;
	struct sky_subs_csv_row rows[4];
	char plans[4][16];
};

static int
seen_row(void *arg, const struct sky_subs_csv_row *r, char *err, size_t errlen)
{
	struct seen *sn = arg;

	if (++sn->n == sn->refuse_at) {
		snprintf(err, errlen, "id %u refused by the caller", r->sub.id);
		return -1;
	}
	if (sn->n <= 4) {
		sn->rows[sn->n - 1] = *r;
		snprintf(sn->plans[sn->n - 1], sizeof(sn->plans[0]), "%.*s", (int)r->plan_len,
			 r->plan);
	}
	return sn->n == sn->stop_at ? 1 : 0;
}

static void
test_csv_reader(void **state)
{
	static const char csv[] = "# c\n" HDR "5,10.0.0.0/24,,gold,b7,de,\n\n"
				  "6,,2001:db8::/48,basic,beam2,FR,9\n";
	static const struct sky_subs_csv_names names = {.n_plans = 2,
							.n_beams = 2,
							.plans = {"basic", "premium"},
							.beams = {"beam1", "beam2"}};
	static const struct {
		const struct sky_subs_csv_names *names;
		unsigned int refuse_at, stop_at;
		int rc;
		const char *expect; /* error, or NULL */
		unsigned int n_rows;
	} t[] = {
		{NULL, 2, 0, -1, "t.csv:5: id 6 refused by the caller", 2},
		{&names, 0, 0, -1, "t.csv:3: plan 'gold' unknown (plans: basic, premium)", 0},
		{NULL, 0, 1, 0, NULL, 1},
		{NULL, 0, 0, 0, NULL, 2},
	};
	char err[256];
	struct seen sn;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc;

		memset(&sn, 0, sizeof(sn));
		sn.refuse_at = t[i].refuse_at;
		sn.stop_at = t[i].stop_at;
		err[0] = '\0';
		rc = sky_subs_csv_parse("t.csv", csv, sizeof(csv) - 1, t[i].names, seen_row, &sn,
					err, sizeof(err));
		if (rc != t[i].rc || sn.n != t[i].n_rows ||
		    (t[i].expect != NULL && strcmp(err, t[i].expect) != 0)) {
			print_error("case %zu: rc %d, %u rows, '%s'\n", i, rc, sn.n, err);
			fail();
		}
	}
	/* the rows as read: any names (names NULL), lines counted with comments and blanks */
	assert_int_equal(sn.rows[0].line, 3);
	assert_int_equal(sn.rows[0].sub.id, 5);
	assert_string_equal(sn.plans[0], "gold");
	assert_int_equal(sn.rows[0].beam_len, 2);
	assert_memory_equal(sn.rows[0].beam, "b7", 2);
	assert_int_equal(sn.rows[0].sub.country, sky_cc("DE"));
	assert_int_equal(sn.rows[0].sub.has_v4, 1);
	assert_int_equal(sn.rows[0].sub.v4_len, 24);
	assert_int_equal(sn.rows[0].sub.has_v6, 0);
	assert_int_equal(sn.rows[1].line, 5);
	assert_int_equal(sn.rows[1].sub.realm, 9);
	assert_int_equal(sn.rows[1].sub.v6_len, 48);

	/* a file: refused when it is not a regular file, read whole when it is */
	assert_int_equal(sky_subs_csv_parse_file(tmpdir, NULL, seen_row, &sn, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(
		sky_subs_csv_parse_file("/nonexistent.csv", NULL, seen_row, &sn, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "/nonexistent.csv: No such file"));
	memset(&sn, 0, sizeof(sn));
	sn.refuse_at = 2;
	assert_int_equal(sky_subs_csv_parse_file(write_file("r.csv", csv), &names, seen_row, &sn,
						 err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "r.csv:3: plan 'gold' unknown"));
}

/* ------------------------------------------------------------------ config errors */

#define PB "plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"

static const struct {
	const char *yaml;
	const char *expect;
} cfg_bad[] = {
	{"beams: { b: { down: 1Gbit, up: 1Gbit } }\n", "plans: required"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\n", "beams: required"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit, color: red } }\nbeams: { b: { down: 1Gbit, up: "
	 "1Gbit } }\n",
	 "t.yaml:1: plans.p.color: unknown key"},
	{"plans: { p: { down: 0, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n",
	 "plans.p.down: rate must be > 0"},
	{"plans: { p: { down: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n",
	 "plans.p.up: required"},
	{"plans: { p: { down: fast, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n",
	 "plans.p.down"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit, burst: 0 } }\nbeams: { b: { down: 1Gbit, up: "
	 "1Gbit } }\n",
	 "plans.p.burst: burst must be > 0"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit, class_weights: { gold: 2 } } }\nbeams: { b: { "
	 "down: 1Gbit, up: 1Gbit } }\n",
	 "plans.p.class_weights.gold: unknown class 'gold'"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit, weight: 0 } }\nbeams: { b: { down: 1Gbit, up: "
	 "1Gbit } }\n",
	 "plans.p.weight"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit } }\n",
	 "beams.b.up: required"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "subscribers: { unknown: { plan: gold } }\n",
	 "t.yaml:3: subscribers.unknown.plan: unknown plan 'gold'"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "subscribers: { unknown: pass }\n",
	 "subscribers.unknown: 'pass': expected 'drop'"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "subscribers: { fil: x.csv }\n",
	 "subscribers.fil: unknown key"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "subscribers: { file: /nonexistent/s.csv }\n",
	 "/nonexistent/s.csv: No such file"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a }, { name: b, default: true } ]\n",
	 "classes[0]: class 'a' has no rules"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, dscp: [1] } ]\n",
	 "no class has 'default: true'"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, default: true } ]\n",
	 "classes[1].default: class 'b' is default, but 'a' already is"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: a, dscp: [1] } ]\n",
	 "class 'a' defined twice"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ {name: c1, default: true}, {name: c2, dscp: [1]}, {name: c3, dscp: [1]}, "
	 "{name: c4, dscp: [1]}, {name: c5, dscp: [1]}, {name: c6, dscp: [1]}, {name: c7, dscp: "
	 "[1]}, {name: c8, dscp: [1]}, {name: c9, dscp: [1]} ]\n",
	 "9 classes, at most 8"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, dscp: [64] } ]\n",
	 "classes[1].dscp[0]: dscp '64' is not a number 0..63"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, protocol: [tcpp] } ]\n",
	 "classes[1].protocol[0]: protocol 'tcpp' unknown"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, ports: [\"90-80\"] } ]\n",
	 "classes[1].ports[0]: port '90-80'"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, prefixes: [\"10.0.0.1/8\"] } ]\n",
	 "classes[1].prefixes[0]: prefix '10.0.0.1/8'"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, match: [ { port: [1] } ] } ]\n",
	 "classes[1].match[0].port: unknown key"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, match: [ {} ] } ]\n",
	 "empty match rule"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true }, { name: b, dscp: [] } ]\n",
	 "classes[1].dscp: empty list"},
	{"plans: { p: { down: 1Mbit, up: 1Mbit } }\nbeams: { b: { down: 1Gbit, up: 1Gbit } }\n"
	 "classes: [ { name: a, default: true, weight: 3 } ]\n",
	 "classes[0].weight: unknown key"},
	/* zones */
	{PB "zones: north\n", "t.yaml:3: zones: expected a list of zone names ([NAME, ...])"},
	{PB "zones: { north: 1 }\n", "t.yaml:3: zones: expected a list of zone names"},
	{PB "zones: [north, south, north]\n", "t.yaml:3: zones[2]: zone 'north' listed twice"},
	{PB "zones: [north, [a]]\n", "t.yaml:3: zones[1]: expected a zone name"},
	{PB "zones: [\"no rth\"]\n", "zones[0]: zone name 'no rth': use letters, digits"},
	{PB "zones: [\"\"]\n", "zones[0]: zone name '' must be 1..31 characters"},
	{PB "zones: [z123456789012345678901234567890123]\n", "must be 1..31 characters"},
};

static void
test_config_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cfg_bad) / sizeof(cfg_bad[0]); i++) {
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg = sky_cfg_load_string("t.yaml", cfg_bad[i].yaml, &err);
		struct sky_subs *s;

		assert_non_null(cfg);
		s = sky_subs_create(cfg, 1, &err);
		sky_cfg_free(cfg);
		if (s != NULL || strstr(err.msg, cfg_bad[i].expect) == NULL) {
			print_error("case %zu: expected '%s', got '%s'\n", i, cfg_bad[i].expect,
				    s ? "(success)" : err.msg);
			sky_subs_destroy(s);
			fail();
		}
	}
}

static void
test_model(void **state)
{
	struct sky_cfg_err err;
	struct sky_subs *s = make(HDR "1,10.0.0.1,,basic,beam1,DE,\n", "{ plan: premium }", &err);
	struct sky_plan p;
	struct sky_beam b;

	(void)state;
	assert_non_null(s);
	assert_int_equal(sky_subs_n_plans(s), 2);
	assert_int_equal(sky_subs_n_beams(s), 2);
	assert_int_equal(sky_subs_n_classes(s), 4);
	assert_int_equal(sky_subs_class_index(s, "bulk"), 2);
	assert_true(sky_subs_class(s, 2).is_default);
	assert_false(sky_subs_class(s, 0).is_default);
	assert_int_equal(sky_subs_unknown_plan(s), 1);
	p = sky_subs_plan(s, 0);
	assert_string_equal(p.name, "basic");
	assert_int_equal(p.down_bps, 50000000);
	assert_int_equal(p.up_bps, 5000000);
	assert_int_equal(p.down_burst_bytes, 256000);
	assert_int_equal(p.up_burst_bytes, 256000);
	assert_int_equal(p.weight, 1);
	assert_int_equal(p.class_weight[1], 4);
	assert_int_equal(p.class_weight[2], 8);
	p = sky_subs_plan(s, 1);
	assert_int_equal(p.down_burst_bytes, 1000000);
	assert_int_equal(p.up_burst_bytes, 128000);
	assert_int_equal(p.weight, 200000); /* default: down in kbit/s */
	assert_int_equal(p.class_weight[3], 1);
	b = sky_subs_beam(s, 1);
	assert_string_equal(b.name, "beam2");
	assert_int_equal(b.down_bps, 500000000);
	assert_int_equal(sky_subs_beam_index(s, "beam2"), 1);
	assert_int_equal(sky_subs_plan_index(s, "gold"), -1);
	assert_true(sky_subs_capacity(s) >= 4096);
	sky_subs_destroy(s);
}

/* ------------------------------------------------------------------ lookups */

static const char lookup_csv[] = SKY_FX_SUBS_CSV; /* the standard subscribers */

static struct sky_meta
mk(int dir, const char *sub, const char *remote, uint16_t vid)
{
	struct sky_meta m;
	int v6 = strchr(sub, ':') != NULL;
	uint8_t *sa, *ra;

	memset(&m, 0, sizeof(m));
	m.dir = (uint8_t)dir;
	m.l3 = v6 ? 6 : 4;
	m.verdict = SKY_V_PASS;
	m.sub_idx = SKY_SUB_NONE;
	m.outer_vid = vid;
	m.n_vlan = vid ? 1 : 0;
	m.pkt_len = 100;
	m.proto = 17;
	sa = dir == SKY_DIR_UP ? m.src : m.dst;
	ra = dir == SKY_DIR_UP ? m.dst : m.src;
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, sub, sa), 1);
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, remote, ra), 1);
	return m;
}

static const struct {
	int dir;
	const char *sub;
	uint16_t vid;
	uint32_t id; /* 0 = unknown */
	uint16_t realm;
} lookups[] = {
	/* unknown first */
	{SKY_DIR_UP, "100.64.0.2", 0, 0, 0},
	{SKY_DIR_DOWN, "198.18.6.1", 0, 0, 0},
	{SKY_DIR_UP, "2001:db8:1000:200::1", 0, 0, 0},
	{SKY_DIR_UP, "10.9.1.1", 0, 0, 0},   /* realm-only subscriber, untagged */
	{SKY_DIR_UP, "10.9.1.1", 200, 0, 0}, /* ... other realm */
	{SKY_DIR_UP, "2001:db8:4000::2", 0, 0, 0},
	/* exact, up by source and down by destination */
	{SKY_DIR_UP, "100.64.0.1", 0, 1, 0},
	{SKY_DIR_DOWN, "100.64.0.1", 0, 1, 0},
	{SKY_DIR_UP, "2001:db8:1000:1ff:1:2:3:4", 0, 1, 0},
	{SKY_DIR_DOWN, "2001:db8:1000:100::1", 0, 1, 0},
	{SKY_DIR_DOWN, "2001:db8:4000::1", 0, 7, 0},
	/* prefixes and nesting: longest wins */
	{SKY_DIR_UP, "198.18.5.1", 0, 2, 0},
	{SKY_DIR_DOWN, "198.18.5.255", 0, 2, 0},
	{SKY_DIR_UP, "198.18.5.77", 0, 3, 0},
	{SKY_DIR_UP, "2001:db8:2000:76::1", 0, 2, 0},
	{SKY_DIR_UP, "2001:db8:2000:77::1", 0, 3, 0},
	/* realms: same address, VLAN picks the subscriber; realm 0 is the fallback */
	{SKY_DIR_UP, "100.64.0.1", 100, 4, 100},
	{SKY_DIR_DOWN, "100.64.0.1", 200, 5, 200},
	{SKY_DIR_UP, "100.64.0.1", 300, 1, 0},
	{SKY_DIR_UP, "2001:db8:3000:0:1::1", 100, 4, 100},
	{SKY_DIR_UP, "2001:db8:1000:100::9", 100, 1, 0},
	{SKY_DIR_UP, "10.9.200.3", 100, 6, 100},
};

static void
check_lookups(struct sky_subs *s, int unknown_plan)
{
	for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		const char *remote =
			strchr(lookups[i].sub, ':') ? "2001:db8:ffff::1" : "203.0.113.9";
		struct sky_meta m = mk(lookups[i].dir, lookups[i].sub, remote, lookups[i].vid);
		struct sky_sub_info in;

		sky_subs_lookup_burst(s, 0, &m, 1);
		if (lookups[i].id == 0) {
			assert_int_equal(m.sub_idx, SKY_SUB_NONE);
			assert_int_equal(m.sub_id, 0);
			if (unknown_plan < 0) {
				assert_int_equal(m.verdict, SKY_V_DROP);
				assert_int_equal(m.reason, SKY_DROP_SUB_UNKNOWN);
			} else {
				assert_int_equal(m.verdict, SKY_V_PASS);
				assert_int_equal(m.plan, unknown_plan);
				assert_int_equal(m.beam, 0);
			}
			continue;
		}
		if (m.sub_id != lookups[i].id) {
			print_error("case %zu (%s vid %u): id %u, expected %u\n", i, lookups[i].sub,
				    lookups[i].vid, m.sub_id, lookups[i].id);
			fail();
		}
		assert_int_equal(sky_subs_get(s, lookups[i].id, &in), 0);
		assert_int_equal(m.verdict, SKY_V_PASS);
		assert_int_equal(m.sub_idx, in.idx);
		assert_int_equal(m.plan, in.plan);
		assert_int_equal(m.beam, in.beam);
		assert_int_equal(m.sub_country, in.country);
		assert_int_equal(m.realm, lookups[i].realm);
	}
}

static void
test_lookup(void **state)
{
	struct sky_cfg_err err;
	struct sky_subs *s = make(lookup_csv, "drop", &err);
	struct sky_meta burst[SKY_BURST];

	(void)state;
	assert_non_null(s);
	check_lookups(s, -1);
	/* a burst: dropped and non-IP packets are left alone */
	for (int i = 0; i < SKY_BURST; i++)
		burst[i] = mk(SKY_DIR_UP, i & 1 ? "100.64.0.1" : "198.18.5.77", "203.0.113.9", 0);
	burst[3].l3 = 0;
	sky_meta_drop(&burst[4], SKY_DROP_IP4_IHL);
	sky_subs_lookup_burst(s, 1, burst, SKY_BURST);
	for (int i = 0; i < SKY_BURST; i++) {
		if (i == 3 || i == 4) {
			assert_int_equal(burst[i].sub_idx, SKY_SUB_NONE);
			continue;
		}
		assert_int_equal(burst[i].sub_id, i & 1 ? 1 : 3);
	}
	assert_int_equal(burst[4].reason, SKY_DROP_IP4_IHL);
	{
		/* more than a burst in one call, IPv4/IPv6/realm mixed */
		struct sky_meta big[SKY_BURST + 9];
		static const struct {
			const char *a;
			uint16_t vid;
			uint32_t id;
		} mix[3] = {{"100.64.0.1", 100, 4},
			    {"2001:db8:2000:77::1", 0, 3},
			    {"198.18.5.1", 7, 2}};

		for (size_t i = 0; i < SKY_BURST + 9; i++)
			big[i] =
				mk(SKY_DIR_DOWN, mix[i % 3].a,
				   i % 3 == 1 ? "2001:db8:ffff::1" : "203.0.113.9", mix[i % 3].vid);
		sky_subs_lookup_burst(s, 0, big, SKY_BURST + 9);
		for (size_t i = 0; i < SKY_BURST + 9; i++)
			assert_int_equal(big[i].sub_id, mix[i % 3].id);
	}
	sky_subs_destroy(s);

	s = make(lookup_csv, "{ plan: premium }", &err);
	assert_non_null(s);
	check_lookups(s, 1);
	sky_subs_destroy(s);
}

/* ------------------------------------------------------------------ runtime */

static int n_events[SKY_SUBS_EV_RELOAD + 1];
static uint32_t last_index;
static int refuse_rate_above_1g = 1;

static void
listener(void *arg, enum sky_subs_event ev, uint32_t index, const struct sky_sub_info *info)
{
	(void)arg;
	(void)info;
	n_events[ev]++;
	last_index = index;
}

static int
validator(void *arg, enum sky_subs_event ev, uint32_t index, const void *nv, char *err,
	  size_t errlen)
{
	(void)arg;
	(void)index;
	if (!refuse_rate_above_1g)
		return 0;
	if (ev == SKY_SUBS_EV_PLAN && ((const struct sky_plan *)nv)->down_bps > 1000000000ULL) {
		snprintf(err, errlen, "down above the 1Gbit port");
		return -1;
	}
	if (ev == SKY_SUBS_EV_BEAM && ((const struct sky_beam *)nv)->down_bps > 10000000000ULL) {
		snprintf(err, errlen, "beam above 10Gbit");
		return -1;
	}
	return 0;
}

/* run a command line (words split on spaces); returns the reply */
static json_t *
run(const char *line)
{
	char buf[1024], *argv[SKY_CTL_MAX_ARGS], *save = NULL;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	return sky_ctl_dispatch_argv(argc, argv, 0, 0, 0);
}

static json_t *
ok(const char *line)
{
	json_t *r = run(line);

	if (!json_is_true(json_object_get(r, "ok"))) {
		print_error("'%s' failed: %s\n", line,
			    json_string_value(json_object_get(r, "error")));
		fail();
	}
	return r;
}

static void
bad(const char *line, const char *expect)
{
	json_t *r = run(line);
	const char *e = json_string_value(json_object_get(r, "error"));

	if (json_is_true(json_object_get(r, "ok")) || e == NULL || strstr(e, expect) == NULL) {
		print_error("'%s': expected error '%s', got '%s'\n", line, expect, e ? e : "(ok)");
		fail();
	}
	json_decref(r);
}

static uint64_t fingerprint_fn_acc;

static int
fp_fn(void *arg, const struct sky_sub_info *in)
{
	const uint8_t *p = (const uint8_t *)in;

	(void)arg;
	for (size_t i = 0; i < sizeof(*in); i++)
		fingerprint_fn_acc = (fingerprint_fn_acc ^ p[i]) * 1099511628211ULL;
	return 0;
}

/* everything a failed command must leave alone */
static uint64_t
fingerprint(const struct sky_subs *s)
{
	fingerprint_fn_acc = 1469598103934665603ULL;
	sky_subs_foreach(s, fp_fn, NULL);
	for (unsigned int i = 0; i < sky_subs_n_plans(s); i++) {
		struct sky_plan p = sky_subs_plan(s, i);

		fp_fn(NULL, (const void *)&p); /* first bytes of the plan */
		fingerprint_fn_acc ^= p.down_bps ^ p.up_bps ^ p.weight ^ p.down_burst_bytes;
	}
	for (unsigned int i = 0; i < sky_subs_n_beams(s); i++) {
		struct sky_beam b = sky_subs_beam(s, i);

		fingerprint_fn_acc = (fingerprint_fn_acc ^ b.down_bps ^ (b.up_bps << 1)) * 31;
	}
	return fingerprint_fn_acc;
}

static uint32_t
lookup_id(struct sky_subs *s, int dir, const char *addr, uint16_t vid)
{
	struct sky_meta m =
		mk(dir, addr, strchr(addr, ':') ? "2001:db8:ffff::1" : "203.0.113.9", vid);

	sky_subs_lookup_burst(s, 0, &m, 1);
	return m.sub_id;
}

/*
 * Cluster mode: a packet of a beam another node owns is dropped (beam_not_owned) or passed,
 * counted either way; a beam owned here is looked up as before; unknown addresses are not
 * affected. Refused modes first.
 */
static void
test_beam_modes(void **state)
{
	static const struct {
		enum sky_subs_beam_mode mode;
		uint8_t verdict, reason;
		uint64_t dropped, passed; /* counts after this step (cumulative) */
	} steps[] = {
		{SKY_SUBS_BEAM_DROP, SKY_V_DROP, SKY_DROP_BEAM_NOT_OWNED, 1, 0},
		{SKY_SUBS_BEAM_PASS, SKY_V_PASS, SKY_DROP_NONE, 1, 1},
		{SKY_SUBS_BEAM_OWNED, SKY_V_PASS, SKY_DROP_NONE, 1, 1},
	};
	struct sky_cfg_err err;
	struct sky_subs *s = make(lookup_csv, "drop", &err);
	int b2;
	uint64_t d, p;

	(void)state;
	assert_non_null(s);
	b2 = sky_subs_beam_index(s, "beam2");
	assert_true(b2 >= 0);
	assert_int_equal(sky_subs_beam_mode_set(s, sky_subs_n_beams(s), SKY_SUBS_BEAM_DROP),
			 -EINVAL);
	assert_int_equal(sky_subs_beam_mode_set(s, (unsigned int)b2, 3), -EINVAL);
	assert_int_equal(sky_subs_beam_mode(s, (unsigned int)b2), SKY_SUBS_BEAM_OWNED);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		/* subscriber 2 is on beam2, subscriber 1 on beam1 (always owned here) */
		struct sky_meta m2 = mk(SKY_DIR_DOWN, "198.18.5.9", "203.0.113.9", 0);
		struct sky_meta m1 = mk(SKY_DIR_DOWN, "100.64.0.1", "203.0.113.9", 0);

		assert_int_equal(sky_subs_beam_mode_set(s, (unsigned int)b2, steps[i].mode), 0);
		assert_int_equal(sky_subs_beam_mode(s, (unsigned int)b2), steps[i].mode);
		sky_subs_lookup_burst(s, 0, &m2, 1);
		sky_subs_lookup_burst(s, 0, &m1, 1);
		assert_int_equal(m2.sub_id, 2);
		assert_int_equal(m2.beam, b2);
		assert_int_equal(m2.verdict, steps[i].verdict);
		assert_int_equal(m2.reason, steps[i].reason);
		assert_int_equal(m1.sub_id, 1);
		assert_int_equal(m1.verdict, SKY_V_PASS);
		sky_subs_beam_foreign(s, &d, &p);
		assert_int_equal(d, steps[i].dropped);
		assert_int_equal(p, steps[i].passed);
	}
	assert_string_equal(sky_drop_name(SKY_DROP_BEAM_NOT_OWNED), "beam_not_owned");
	sky_subs_destroy(s);
}

static struct sky_subs *
runtime_setup(void)
{
	struct sky_cfg_err err;
	struct sky_subs *s = make(lookup_csv, "drop", &err);

	assert_non_null(s);
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	assert_int_equal(sky_subs_register(s), 0);
	assert_int_equal(sky_subs_listen(s, listener, NULL), 0);
	assert_int_equal(sky_subs_validate_hook(s, validator, NULL), 0);
	memset(n_events, 0, sizeof(n_events));
	return s;
}

static void
runtime_teardown(struct sky_subs *s)
{
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_subs_destroy(s);
}

static void
test_runtime_failures(void **state)
{
	struct sky_subs *s = runtime_setup();
	uint64_t fp = fingerprint(s);

	(void)state;
	/* add */
	bad("subscriber add 0 ipv4=10.1.1.1 plan=basic beam=beam1 country=DE", "id '0'");
	bad("subscriber add 1 ipv4=10.1.1.1 plan=basic beam=beam1 country=DE", "id 1 exists");
	bad("subscriber add 50 ipv4=100.64.0.1 plan=basic beam=beam1 country=DE",
	    "ipv4 100.64.0.1/32 (realm 0) already belongs to id 1");
	bad("subscriber add 50 ipv4=100.64.0.1 plan=basic beam=beam1 country=DE realm=100",
	    "already belongs to id 4");
	bad("subscriber add 50 ipv6=2001:db8:2000::/48 plan=basic beam=beam1 country=DE",
	    "ipv6 2001:db8:2000::/48 (realm 0) already belongs to id 2");
	bad("subscriber add 50 ipv4=10.1.1.1 plan=gold beam=beam1 country=DE", "plan 'gold'");
	bad("subscriber add 50 ipv4=10.1.1.1 plan=basic beam=b9 country=DE", "beam 'b9'");
	bad("subscriber add 50 ipv4=10.1.1.1 plan=basic beam=beam1 country=D1", "country 'D1'");
	bad("subscriber add 50 ipv4=10.1.1.1 plan=basic beam=beam1", "country=CC required");
	bad("subscriber add 50 ipv4=10.1.1.1 beam=beam1 country=DE", "plan=NAME required");
	bad("subscriber add 50 plan=basic beam=beam1 country=DE", "needs ipv4 or ipv6");
	bad("subscriber add 50 ipv4=10.1.1.1/8 plan=basic beam=beam1 country=DE",
	    "ipv4 '10.1.1.1/8'");
	bad("subscriber add 50 ipv6=2001:db8::1/200 plan=basic beam=beam1 country=DE",
	    "ipv6 '2001:db8::1/200'");
	bad("subscriber add 50 ipv4=10.1.1.1 plan=basic beam=beam1 country=DE realm=5000",
	    "realm '5000'");
	bad("subscriber add 50 ipv4=10.1.1.1 plan=basic beam=beam1 country=DE colour=red",
	    "'colour=red': unknown key");
	bad("subscriber add 50 ipv4=10.1.1.1 ipv4=10.1.1.2 plan=basic beam=beam1 country=DE",
	    "key given twice");
	/* del, set, show */
	bad("subscriber del 99", "no subscriber with id 99");
	bad("subscriber del x", "usage");
	bad("subscriber set 99 plan=basic", "no subscriber with id 99");
	bad("subscriber set 1 plan=gold", "plan 'gold'");
	bad("subscriber set 1 ipv4=198.18.5.77", "already belongs to id 3");
	bad("subscriber set 7 ipv6=", "needs ipv4 or ipv6");
	bad("subscriber set 1 country=XYZ", "country 'XYZ'");
	bad("subscriber set 3 realm=7 ipv6=2001:db8:5::1", "at most a /112");
	bad("subscriber show 99", "no subscriber with id 99");
	bad("subscriber list page=0", "page must be");
	bad("subscriber find 100.64.0.2", "no subscriber owns 100.64.0.2");
	bad("subscriber find 10.9.1.1", "no subscriber owns 10.9.1.1");
	bad("subscriber find 10.9.1.1 vlan=200", "no subscriber owns 10.9.1.1 on vlan 200");
	bad("subscriber find 10.9.0.0/16", "not an IPv4 or IPv6 address");
	bad("subscriber find 10.9.1.1 vlan=5000", "vlan must be 0..4095");
	/* load */
	bad("subscriber load /nonexistent.csv", "/nonexistent.csv: No such file");
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "subscriber load %s",
			 write_file("bad.csv", HDR "1,10.0.0.1,,basic,beam1,DE,\n"
						   "2,10.0.0.1,,basic,beam1,DE,\n"));
		bad(cmd, "bad.csv:3: ipv4 10.0.0.1/32 (realm 0) already belongs to id 1 (line 2)");
		snprintf(cmd, sizeof(cmd), "subscriber load %s",
			 write_file("bad2.csv", HDR "1,10.0.0.1,,silver,beam1,DE,\n"));
		bad(cmd, "bad2.csv:2: plan 'silver' unknown");
	}
	/* plan and beam */
	bad("plan set gold down=1Mbit", "plan 'gold' unknown");
	bad("plan set basic down=0", "'down=0': rate must be > 0");
	bad("plan set basic down=fast", "'down=fast'");
	bad("plan set basic burst=0", "size must be > 0");
	bad("plan set basic cw.gold=3", "unknown class 'gold'");
	bad("plan set basic cw.bulk=0", "class weight must be 1..65535");
	bad("plan set basic speed=1", "unknown key");
	bad("plan set basic up=1Mbit down=2Gbit", "refused: down above the 1Gbit port");
	bad("beam set beam9 down=1Gbit", "beam 'beam9' unknown");
	bad("beam set beam1 up=0", "rate must be > 0");
	bad("beam set beam1 down=20Gbit", "refused: beam above 10Gbit");
	bad("beam set beam1 left=1", "unknown key");

	assert_int_equal(fingerprint(s), fp);
	check_lookups(s, -1);
	for (int e = 0; e <= SKY_SUBS_EV_RELOAD; e++)
		assert_int_equal(n_events[e], 0);
	runtime_teardown(s);
}

static void
test_runtime_changes(void **state)
{
	struct sky_subs *s = runtime_setup();
	struct sky_sub_info in;
	struct sky_plan p;
	json_t *r;
	char cmd[600];

	(void)state;
	/* add: lookups see it at once */
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.50.0.1", 0), 0);
	json_decref(ok("subscriber add 50 ipv4=10.50.0.1 ipv6=2001:db8:50::/56 plan=premium "
		       "beam=beam2 country=br"));
	assert_int_equal(n_events[SKY_SUBS_EV_SUB_ADD], 1);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.50.0.1", 0), 50);
	assert_int_equal(lookup_id(s, SKY_DIR_DOWN, "2001:db8:50:ff::1", 0), 50);
	assert_int_equal(sky_subs_get(s, 50, &in), 0);
	assert_int_equal(last_index, in.idx);
	assert_int_equal(in.country, sky_cc("BR"));
	/* a nested prefix inside another subscriber's /24 */
	json_decref(ok("subscriber add 51 ipv4=198.18.5.128/25 plan=basic beam=beam1 country=NL"));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "198.18.5.200", 0), 51);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "198.18.5.100", 0), 2);
	/* a realm subscriber on a realm not used before */
	json_decref(ok("subscriber add 52 ipv4=100.64.0.1 plan=basic beam=beam1 country=SE "
		       "realm=300"));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "100.64.0.1", 300), 52);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "100.64.0.1", 0), 1);

	/* set: a moved terminal is one command; plan and beam */
	r = ok("subscriber set 1 country=AT plan=premium beam=beam2");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "result"), "country")), "AT");
	json_decref(r);
	assert_int_equal(n_events[SKY_SUBS_EV_SUB_SET], 1);
	{
		struct sky_meta m = mk(SKY_DIR_UP, "100.64.0.1", "203.0.113.9", 0);

		sky_subs_lookup_burst(s, 0, &m, 1);
		assert_int_equal(m.sub_country, sky_cc("AT"));
		assert_int_equal(m.plan, 1);
		assert_int_equal(m.beam, 1);
	}
	/* set ipv4: the old address is free, the new one matches */
	json_decref(ok("subscriber set 1 ipv4=100.64.9.9"));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "100.64.0.1", 0), 0);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "100.64.9.9", 0), 1);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "2001:db8:1000:100::1", 0), 1);
	/* the freed address can be taken by someone else */
	json_decref(ok("subscriber add 53 ipv4=100.64.0.1 plan=basic beam=beam1 country=DE"));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "100.64.0.1", 0), 53);
	/* ipv4= removes it; realm change moves the subscriber to a VLAN */
	json_decref(ok("subscriber set 1 ipv4="));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "100.64.9.9", 0), 0);
	json_decref(ok("subscriber set 7 realm=42 ipv6=2001:db8:4000::/64"));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "2001:db8:4000::1", 0), 0);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "2001:db8:4000::1", 42), 7);
	/* del */
	json_decref(ok("subscriber del 3"));
	assert_int_equal(n_events[SKY_SUBS_EV_SUB_DEL], 1);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "198.18.5.77", 0), 2); /* covering /24 */
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "2001:db8:2000:77::1", 0), 2);
	assert_int_equal(sky_subs_get(s, 3, &in), -ENOENT);
	json_decref(ok("subscriber del 52"));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "100.64.0.1", 300), 53);

	/* show with counters summed over workers */
	{
		struct sky_meta m[3];
		json_t *c;

		m[0] = mk(SKY_DIR_UP, "10.50.0.1", "203.0.113.9", 0);
		m[1] = mk(SKY_DIR_DOWN, "10.50.0.1", "203.0.113.9", 0);
		m[2] = mk(SKY_DIR_DOWN, "10.50.0.1", "203.0.113.9", 0);
		sky_subs_lookup_burst(s, 0, m, 3);
		m[0].cls = 0;
		m[1].cls = 2;
		m[2].cls = 2;
		m[2].pkt_len = 1500;
		sky_subs_account_burst(s, 0, m, 3);
		sky_meta_drop(&m[1], SKY_DROP_POLICY);
		sky_subs_account_burst(s, 1, m, 2);
		r = ok("subscriber show 50");
		c = json_object_get(json_object_get(r, "result"), "counters");
		assert_int_equal(
			json_integer_value(json_object_get(
				json_object_get(json_object_get(c, "up"), "realtime"), "packets")),
			2);
		assert_int_equal(
			json_integer_value(json_object_get(
				json_object_get(json_object_get(c, "down"), "bulk"), "bytes")),
			1600);
		assert_int_equal(
			json_integer_value(json_object_get(json_object_get(c, "drops"), "policy")),
			1);
		json_decref(r);
	}

	/* top: only subscribers that moved bytes, most first; bad sizes refused */
	{
		json_t *a;

		r = ok("subscriber top size=5");
		a = json_object_get(json_object_get(r, "result"), "subscribers");
		assert_int_equal(json_array_size(a), 1);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "id")),
				 50);
		assert_true(json_integer_value(
				    json_object_get(json_array_get(a, 0), "down_bytes")) >= 1600);
		json_decref(r);
		for (const char *const *bad = (const char *const[]){"subscriber top size=0",
								    "subscriber top size=101",
								    "subscriber top 5", NULL};
		     *bad != NULL; bad++) {
			char buf[64], *av[8];
			int ac = 0;
			json_t *rep;

			snprintf(buf, sizeof(buf), "%s", *bad);
			for (char *t = strtok(buf, " "); t != NULL; t = strtok(NULL, " "))
				av[ac++] = t;
			rep = sky_ctl_dispatch_argv(ac, av, 0, 0, 0);
			assert_false(json_is_true(json_object_get(rep, "ok")));
			json_decref(rep);
		}
	}

	/* find: what the data path would match */
	{
		static const struct {
			const char *cmd;
			uint32_t id;
		} finds[] = {
			{"subscriber find 198.18.5.200", 51},
			{"subscriber find 198.18.5.100", 2},
			{"subscriber find 100.64.0.1 vlan=100", 4},
			{"subscriber find 100.64.0.1 vlan=300", 53},
			{"subscriber find 2001:db8:4000::1 vlan=42", 7},
			{"subscriber find 2001:db8:50:ff::1", 50},
		};

		for (size_t i = 0; i < sizeof(finds) / sizeof(finds[0]); i++) {
			r = ok(finds[i].cmd);
			assert_int_equal(json_integer_value(json_object_get(
						 json_object_get(r, "result"), "id")),
					 finds[i].id);
			json_decref(r);
		}
	}

	/* list: sorted by id, paged */
	r = ok("subscriber list page=2 size=3");
	{
		json_t *res = json_object_get(r, "result"),
		       *arr = json_object_get(res, "subscribers");

		assert_int_equal(json_integer_value(json_object_get(res, "total")), 9);
		assert_int_equal(json_array_size(arr), 3);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "id")),
				 5);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 2), "id")),
				 7);
	}
	json_decref(r);

	/* plan and beam changes: listeners told, defaults follow the rate */
	json_decref(ok("plan set premium down=400Mbit cw.realtime=7"));
	p = sky_subs_plan(s, 1);
	assert_int_equal(p.down_bps, 400000000);
	assert_int_equal(p.weight, 400000);
	assert_int_equal(p.class_weight[0], 7);
	assert_int_equal(p.down_burst_bytes, 1000000); /* set explicitly in the config: kept */
	assert_int_equal(n_events[SKY_SUBS_EV_PLAN], 1);
	json_decref(ok("plan set basic burst=64KB weight=9"));
	p = sky_subs_plan(s, 0);
	assert_int_equal(p.up_burst_bytes, 64000);
	assert_int_equal(p.weight, 9);
	json_decref(ok("beam set beam2 down=300Mbit"));
	assert_int_equal(sky_subs_beam(s, 1).down_bps, 300000000);
	assert_int_equal(sky_subs_beam(s, 1).up_bps, 100000000);
	assert_int_equal(n_events[SKY_SUBS_EV_BEAM], 1);
	assert_int_equal(last_index, 1);
	r = ok("plan list");
	assert_int_equal(json_array_size(json_object_get(r, "result")), 2);
	json_decref(r);
	json_decref(ok("beam show beam1"));

	/* load: the whole table replaced; ids that stay keep their index */
	{
		struct sky_sub_info before, after;

		assert_int_equal(sky_subs_get(s, 2, &before), 0);
		snprintf(cmd, sizeof(cmd), "subscriber load %s",
			 write_file("new.csv", HDR "900,10.90.0.1,,basic,beam1,DE,\n"
						   "2,198.18.5.0/24,,premium,beam2,NL,\n"
						   "901,10.90.0.2,,basic,beam1,DE,9\n"));
		json_decref(ok(cmd));
		assert_int_equal(n_events[SKY_SUBS_EV_RELOAD], 1);
		assert_int_equal(sky_subs_get(s, 2, &after), 0);
		assert_int_equal(before.idx, after.idx);
		assert_int_equal(sky_subs_get(s, 50, &after), -ENOENT);
		assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.90.0.1", 0), 900);
		assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.90.0.2", 9), 901);
		assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.90.0.2", 0), 0);
		assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.50.0.1", 0), 0);
		assert_int_equal(lookup_id(s, SKY_DIR_UP, "198.18.5.1", 0), 2);
		assert_int_equal(lookup_id(s, SKY_DIR_UP, "2001:db8:2000::1", 0), 0);
		/* a new subscriber's counters start at zero even on a reused index */
		r = ok("subscriber show 900");
		assert_int_equal(
			json_integer_value(json_object_get(
				json_object_get(
					json_object_get(
						json_object_get(json_object_get(r, "result"),
								"counters"),
						"up"),
					"realtime"),
				"packets")),
			0);
		json_decref(r);
	}
	runtime_teardown(s);
}

/* The quota state: refused for unknown ids and states, carried into meta from the next
 * lookup, kept through `subscriber set` and a load that keeps the id, reset by del/add. */
static void
test_quota_state(void **state)
{
	static const struct {
		uint32_t id;
		unsigned int st;
		int rc;
	} bad_sets[] = {
		{99, SKY_QUOTA_OVER, -ENOENT},
		{0, SKY_QUOTA_OVER, -ENOENT},
		{1, SKY_QUOTA_MAX, -EINVAL},
		{1, 255, -EINVAL},
	};
	struct sky_subs *s = runtime_setup();
	struct sky_meta m;
	json_t *r;
	char cmd[600];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_sets) / sizeof(bad_sets[0]); i++)
		assert_int_equal(
			sky_subs_set_quota_state(s, bad_sets[i].id, (uint8_t)bad_sets[i].st),
			bad_sets[i].rc);
	assert_int_equal(sky_subs_quota_state(s, 99), -ENOENT);
	assert_int_equal(sky_subs_quota_state(s, 0), -ENOENT);
	/* nothing changed by the refusals */
	for (uint32_t id = 1; id <= 7; id++)
		assert_int_equal(sky_subs_quota_state(s, id), SKY_QUOTA_NONE);
	assert_string_equal(sky_quota_state_name(SKY_QUOTA_THROTTLED), "throttled");
	assert_string_equal(sky_quota_state_name(SKY_QUOTA_MAX), "?");

	/* each state reaches the next lookup; other subscribers keep theirs */
	for (unsigned int st = SKY_QUOTA_NONE; st < SKY_QUOTA_MAX; st++) {
		assert_int_equal(sky_subs_set_quota_state(s, 3, (uint8_t)st), 0);
		assert_int_equal(sky_subs_quota_state(s, 3), (int)st);
		m = mk(SKY_DIR_UP, "198.18.5.77", "203.0.113.9", 0);
		sky_subs_lookup_burst(s, 0, &m, 1);
		assert_int_equal(m.sub_id, 3);
		assert_int_equal(m.quota_state, st);
		m = mk(SKY_DIR_DOWN, "198.18.5.78", "203.0.113.9", 0);
		sky_subs_lookup_burst(s, 0, &m, 1);
		assert_int_equal(m.sub_id, 2);
		assert_int_equal(m.quota_state, SKY_QUOTA_NONE);
	}
	/* unknown addresses carry none */
	m = mk(SKY_DIR_UP, "10.200.0.1", "203.0.113.9", 0);
	m.quota_state = 0xee;
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.sub_idx, SKY_SUB_NONE);
	assert_int_equal(m.quota_state, SKY_QUOTA_NONE);

	/* shown; kept through set */
	r = ok("subscriber show 3");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "result"), "quota_state")),
		"throttled");
	json_decref(r);
	json_decref(ok("subscriber set 3 plan=premium ipv4=198.18.5.99"));
	assert_int_equal(sky_subs_quota_state(s, 3), SKY_QUOTA_THROTTLED);
	m = mk(SKY_DIR_UP, "198.18.5.99", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.sub_id, 3);
	assert_int_equal(m.quota_state, SKY_QUOTA_THROTTLED);

	/* a load keeps the state of ids that stay, new ids start at none */
	assert_int_equal(sky_subs_set_quota_state(s, 1, SKY_QUOTA_OVER), 0);
	snprintf(cmd, sizeof(cmd), "subscriber load %s",
		 write_file("q.csv", HDR "1,100.64.0.1,,basic,beam1,DE,\n"
					 "8,198.18.5.77,,basic,beam1,FR,\n"));
	json_decref(ok(cmd));
	assert_int_equal(sky_subs_quota_state(s, 1), SKY_QUOTA_OVER);
	assert_int_equal(sky_subs_quota_state(s, 8), SKY_QUOTA_NONE);
	assert_int_equal(sky_subs_quota_state(s, 3), -ENOENT);
	m = mk(SKY_DIR_UP, "100.64.0.1", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.quota_state, SKY_QUOTA_OVER);
	m = mk(SKY_DIR_UP, "198.18.5.77", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.sub_id, 8);
	assert_int_equal(m.quota_state, SKY_QUOTA_NONE);

	/* del then add at the same index: the old state does not come back */
	json_decref(ok("subscriber del 1"));
	json_decref(ok("subscriber add 1 ipv4=100.64.0.1 plan=basic beam=beam1 country=DE"));
	assert_int_equal(sky_subs_quota_state(s, 1), SKY_QUOTA_NONE);
	m = mk(SKY_DIR_UP, "100.64.0.1", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.quota_state, SKY_QUOTA_NONE);
	runtime_teardown(s);
}

/* read event lines from fd while serving s, until want lines (or 2 s); returns them */
static char *
follow_lines(struct sky_ctl_server *s, int fd, int want)
{
	static char buf[65536];
	size_t len = 0;
	int lines = 0;

	for (int round = 0; round < 400 && lines < want; round++) {
		ssize_t n;

		sky_ctl_server_poll(s, 5);
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		for (ssize_t k = 0; k < n; k++)
			lines += buf[len + k] == '\n';
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (lines != want)
		fail_msg("%d lines, want %d: '%s'", lines, want, buf);
	return buf;
}

/* subscriber changes are events (subscriber.changed) for a follower of the control socket;
 * refused changes and the journal's replay are not */
static void
test_changed_events(void **state)
{
	struct sky_subs *s = runtime_setup();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char follow[] = "{\"argv\":[\"events\",\"follow\",\"type=subscriber.*\"]}\n";
	struct sky_ctl_server *srv;
	char path[100], err[256], cmd[600], *out, *l;
	json_t *e;
	int fd;

	(void)state;
	assert_true(strlen(tmpdir) + 8 < sizeof(path)); /* a socket path is short */
	snprintf(path, sizeof(path), "%.90s/ev.sock", tmpdir);
	srv = sky_ctl_server_open(path, 0600, err, sizeof(err));
	if (srv == NULL)
		fail_msg("%s", err);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, follow, sizeof(follow) - 1, 0), (ssize_t)sizeof(follow) - 1);
	out = follow_lines(srv, fd, 1);
	assert_non_null(strstr(out, "\"following\":true"));

	/* refused: nothing */
	bad("subscriber set 99 plan=basic", "no subscriber with id 99");
	bad("subscriber add 50 ipv4=10.50.0.1 plan=gold beam=beam1 country=DE", "plan 'gold'");
	/* replayed at start: nothing */
	{
		char *w[] = {"subscriber", "add",	 "51",	      "ipv4=10.51.0.1",
			     "plan=basic", "beam=beam1", "country=DE"};

		json_decref(sky_ctl_dispatch_argv(7, w, 0, 0, 1));
		assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.51.0.1", 0), 51);
	}
	json_decref(ok("subscriber add 50 ipv4=10.50.0.1 plan=basic beam=beam1 country=DE"));
	json_decref(ok("subscriber set 50 plan=premium"));
	json_decref(ok("subscriber del 50"));
	snprintf(cmd, sizeof(cmd), "subscriber load %s",
		 write_file("ev.csv", HDR "1,100.64.0.1,,basic,beam1,DE,\n"
					  "2,100.64.0.2,,basic,beam1,DE,\n"));
	json_decref(ok(cmd));
	out = follow_lines(srv, fd, 4);
	{
		static const char *const change[] = {"add", "set", "del", "load"};
		json_int_t prev = 0;

		l = out;
		for (int i = 0; i < 4; i++) {
			char *nl = strchr(l, '\n');

			e = json_loadb(l, (size_t)(nl - l), 0, NULL);
			assert_non_null(e);
			assert_string_equal(json_string_value(json_object_get(e, "type")),
					    "subscriber.changed");
			assert_string_equal(json_string_value(json_object_get(e, "change")),
					    change[i]);
			assert_true(json_integer_value(json_object_get(e, "seq")) > prev);
			prev = json_integer_value(json_object_get(e, "seq"));
			if (i < 3)
				assert_int_equal(json_integer_value(json_object_get(e, "id")), 50);
			if (i == 1)
				assert_string_equal(
					json_string_value(json_object_get(
						json_object_get(e, "subscriber"), "plan")),
					"premium");
			if (i == 2)
				assert_null(json_object_get(e, "subscriber"));
			if (i == 3)
				assert_int_equal(
					json_integer_value(json_object_get(e, "subscribers")), 2);
			json_decref(e);
			l = nl + 1;
		}
	}
	close(fd);
	sky_ctl_server_close(srv);
	runtime_teardown(s);
}

/* ------------------------------------------------------------------ zones */

/* a config with n zones z1..zn and the standard model; NULL with err on refusal */
static struct sky_subs *
make_zones(unsigned int n, const char *csv_text, struct sky_cfg_err *err)
{
	char *zones = malloc(8 * 256 + 32);
	const char *csv = write_file("z.csv", csv_text);
	struct sky_cfg *cfg;
	struct sky_subs *s;
	size_t o = 0;

	assert_non_null(zones);
	o += (size_t)sprintf(zones + o, "zones: [");
	for (unsigned int i = 1; i <= n; i++)
		o += (size_t)sprintf(zones + o, "%sz%u", i > 1 ? ", " : "", i);
	sprintf(zones + o, "]\n");
	cfg = sky_fx_cfg("t.yaml", err, "subscribers: { file: %s }\n%s" SKY_FX_MODEL, csv, zones);
	free(zones);
	assert_non_null(cfg);
	s = sky_subs_create(cfg, 1, err);
	sky_cfg_free(cfg);
	return s;
}

static void
test_zones_csv(void **state)
{
	static const struct {
		unsigned int n_zones;
		const char *csv, *expect;
	} bad[] = {
		{2, "id,ipv4,ipv6,plan,beam,country,zone,zone\n", "z.csv:1: header must be"},
		{2, "id,ipv4,ipv6,plan,beam,country,realm,realm\n", "z.csv:1: header must be"},
		{2, "id,ipv4,ipv6,plan,beam,country,zones\n", "z.csv:1: header must be"},
		{2, "id,ipv4,ipv6,plan,beam,country,zone,realm,x\n",
		 "z.csv:1: too many fields (expected 6)"},
		{2, "id,ipv4,ipv6,plan,beam,zone,country\n", "z.csv:1: header must be"},
		{2, "id,ipv4,ipv6,plan,beam,country,zone\n1,10.0.0.1,,basic,beam1,DE,z3\n",
		 "z.csv:2: zone 'z3' unknown (zones: z1, z2)"},
		{2, "id,ipv4,ipv6,plan,beam,country,zone\n1,10.0.0.1,,basic,beam1,DE,Z1\n",
		 "z.csv:2: zone 'Z1' unknown (zones: z1, z2)"},
		{0, "id,ipv4,ipv6,plan,beam,country,zone\n1,10.0.0.1,,basic,beam1,DE,z1\n",
		 "z.csv:2: zone 'z1' unknown (no zones configured"},
		{2, "id,ipv4,ipv6,plan,beam,country,realm,zone\n1,10.0.0.1,,basic,beam1,DE,z1\n",
		 "z.csv:2: 7 fields, expected 8 (id,ipv4,ipv6,plan,beam,country,realm,zone)"},
		{2, "id,ipv4,ipv6,plan,beam,country,zone,realm\n1,10.0.0.1,,basic,beam1,DE,z1,x\n",
		 "z.csv:2: realm 'x' is not a VLAN id"},
		{2, "id,ipv4,ipv6,plan,beam,country,zone\n1,10.0.0.1,,basic,beam1,DE\n",
		 "z.csv:2: 6 fields, expected 7 (id,ipv4,ipv6,plan,beam,country,zone)"},
	};
	struct sky_cfg_err err;
	struct sky_subs *s;
	struct sky_sub_info in;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *want = bad[i].expect;

		memset(&err, 0, sizeof(err));
		s = make_zones(bad[i].n_zones, bad[i].csv, &err);
		if (s != NULL || strstr(err.msg, want) == NULL) {
			print_error("case %zu: expected '%s', got '%s'\n", i, want,
				    s ? "(success)" : err.msg);
			sky_subs_destroy(s);
			fail();
		}
	}
	/* 255 zones are fine, 256 are not */
	memset(&err, 0, sizeof(err));
	s = make_zones(256, HDR, &err);
	assert_null(s);
	assert_non_null(strstr(err.msg, "zones: 256 zones, at most 255"));
	s = make_zones(255,
		       "id,ipv4,ipv6,plan,beam,country,zone,realm\n"
		       "1,10.0.0.1,,basic,beam1,DE,z255,7\n"
		       "2,10.0.0.2,,basic,beam1,DE,,\n"
		       "3,10.0.0.3,,basic,beam1,DE,z1,\n",
		       &err);
	if (s == NULL)
		fail_msg("%s", err.msg);
	assert_int_equal(sky_subs_n_zones(s), 255);
	assert_int_equal(sky_subs_zone_index(s, "z1"), 1);
	assert_int_equal(sky_subs_zone_index(s, "z255"), 255);
	assert_int_equal(sky_subs_zone_index(s, "z256"), -1);
	assert_string_equal(sky_subs_zone_name(s, 255), "z255");
	assert_null(sky_subs_zone_name(s, 0));
	assert_null(sky_subs_zone_name(s, 256));
	assert_int_equal(sky_subs_get(s, 1, &in), 0);
	assert_int_equal(in.zone, 255);
	assert_int_equal(in.realm, 7);
	assert_int_equal(sky_subs_get(s, 2, &in), 0);
	assert_int_equal(in.zone, 0);
	{
		static const struct {
			const char *a;
			uint16_t vid;
			uint8_t zone;
		} want[] = {{"10.0.0.1", 7, 255}, {"10.0.0.2", 0, 0}, {"10.0.0.3", 0, 1}};
		struct sky_meta m[3];

		for (int i = 0; i < 3; i++)
			m[i] = mk(SKY_DIR_UP, want[i].a, "203.0.113.9", want[i].vid);
		sky_subs_lookup_burst(s, 0, m, 3);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(m[i].sub_id, (uint32_t)i + 1);
			assert_int_equal(m[i].zone, want[i].zone);
		}
	}
	sky_subs_destroy(s);
	/* the reader alone: any zone name passes with no names; rows carry it as written */
	{
		static const char csv[] = "id,ipv4,ipv6,plan,beam,country,zone\n"
					  "5,10.0.0.5,,gold,b7,DE,far-north\n";
		struct seen sn;
		char e[256];

		memset(&sn, 0, sizeof(sn));
		assert_int_equal(sky_subs_csv_parse("t.csv", csv, sizeof(csv) - 1, NULL, seen_row,
						    &sn, e, sizeof(e)),
				 0);
		assert_int_equal(sn.n, 1);
		assert_int_equal(sn.rows[0].zone_len, 9);
		assert_memory_equal(sn.rows[0].zone, "far-north", 9);
		assert_int_equal(sn.rows[0].sub.zone, 0);
	}
}

/* zone= on add and set: refused naming the zone, applied live, shown */
static void
test_zones_runtime(void **state)
{
	struct sky_cfg_err err;
	struct sky_subs *s;
	struct sky_meta m;
	json_t *r;

	(void)state;
	s = make_zones(2, HDR "1,100.64.0.1,,basic,beam1,DE,\n", &err);
	assert_non_null(s);
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	assert_int_equal(sky_subs_register(s), 0);
	bad("subscriber add 2 ipv4=10.1.1.1 plan=basic beam=beam1 country=DE zone=z9",
	    "zone 'z9' unknown (zones: z1, z2)");
	bad("subscriber set 1 zone=north", "zone 'north' unknown (zones: z1, z2)");
	bad("subscriber set 1 zone=z1 zone=z2", "key given twice");
	r = ok("subscriber show 1");
	assert_true(json_is_null(json_object_get(json_object_get(r, "result"), "zone")));
	json_decref(r);

	json_decref(ok("subscriber add 2 ipv4=10.1.1.1 plan=basic beam=beam1 country=DE zone=z2"));
	m = mk(SKY_DIR_DOWN, "10.1.1.1", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.zone, 2);
	/* moved live: the next lookup sees it */
	r = ok("subscriber set 2 zone=z1");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "result"), "zone")), "z1");
	json_decref(r);
	m = mk(SKY_DIR_DOWN, "10.1.1.1", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.zone, 1);
	r = ok("subscriber show 2");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "result"), "zone")), "z1");
	json_decref(r);
	/* zone= removes it */
	json_decref(ok("subscriber set 2 zone="));
	m = mk(SKY_DIR_DOWN, "10.1.1.1", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, &m, 1);
	assert_int_equal(m.zone, 0);
	runtime_teardown(s);

	/* no zones configured: a zone is refused saying so */
	s = runtime_setup();
	bad("subscriber set 1 zone=z1", "zone 'z1' unknown: no zones are configured");
	runtime_teardown(s);
}

static void
test_capacity(void **state)
{
	char yaml[2048];
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	struct sky_subs *s;

	(void)state;
	snprintf(yaml, sizeof(yaml), "subscribers: { file: %s, capacity: 2 }\n" PLANS_BEAMS_CLASSES,
		 write_file("cap.csv", HDR "1,10.0.0.1,,basic,beam1,DE,\n"
					   "2,10.0.0.2,,basic,beam1,DE,\n"
					   "3,10.0.0.3,,basic,beam1,DE,\n"));
	cfg = sky_cfg_load_string("t.yaml", yaml, &err);
	assert_non_null(cfg);
	s = sky_subs_create(cfg, 1, &err);
	assert_null(s);
	assert_non_null(strstr(err.msg, "3 subscribers in"));
	assert_non_null(strstr(err.msg, "exceed capacity 2"));
	sky_cfg_free(cfg);

	snprintf(yaml, sizeof(yaml), "subscribers: { file: %s, capacity: 2 }\n" PLANS_BEAMS_CLASSES,
		 write_file("cap.csv", HDR "1,10.0.0.1,,basic,beam1,DE,\n"));
	cfg = sky_cfg_load_string("t.yaml", yaml, &err);
	s = sky_subs_create(cfg, 1, &err);
	sky_cfg_free(cfg);
	assert_non_null(s);
	assert_int_equal(sky_subs_capacity(s), 2);
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	assert_int_equal(sky_subs_register(s), 0);
	json_decref(ok("subscriber add 2 ipv4=10.0.0.2 plan=basic beam=beam1 country=DE"));
	bad("subscriber add 3 ipv4=10.0.0.3 plan=basic beam=beam1 country=DE",
	    "subscriber table full (capacity 2");
	json_decref(ok("subscriber del 1"));
	json_decref(ok("subscriber add 3 ipv4=10.0.0.3 plan=basic beam=beam1 country=DE"));
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.0.0.3", 0), 3);
	runtime_teardown(s);
}

static void
test_metrics(void **state)
{
	struct sky_subs *s = runtime_setup();
	struct sky_meta m[2];
	char *txt;
	size_t len;

	(void)state;
	m[0] = mk(SKY_DIR_UP, "100.64.0.1", "203.0.113.9", 0);
	m[1] = mk(SKY_DIR_UP, "100.64.0.77", "203.0.113.9", 0);
	sky_subs_lookup_burst(s, 0, m, 2);
	m[0].cls = 1;
	sky_subs_account_burst(s, 0, m, 2);
	txt = sky_metrics_render(&len);
	assert_non_null(txt);
	assert_non_null(strstr(txt, "skygate_subscribers 7\n"));
	assert_non_null(strstr(txt, "skygate_unknown_subscriber_packets_total{dir=\"up\"} 1\n"));
	assert_non_null(
		strstr(txt, "skygate_class_packets_total{class=\"interactive\",dir=\"up\"} 1\n"));
	assert_non_null(strstr(txt, "skygate_subscriber_drops_total{group=\"unknown\"} 1\n"));
	free(txt);
	runtime_teardown(s);
}

static void
test_load_journal(void **state)
{
	struct sky_subs *s = runtime_setup();
	struct sky_sub_info in;
	char statedir[600], cmd[700], e[256];
	const char *a;
	int n;

	(void)state;
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
	assert_int_equal(sky_ctl_journal_open(statedir, e, sizeof(e)), 0);
	a = write_file("a.csv",
		       HDR "900,10.90.0.1,,basic,beam1,DE,\n901,10.90.0.2,,basic,beam1,DE,\n");
	snprintf(cmd, sizeof(cmd), "subscriber load %s", a);
	json_decref(ok(cmd));
	/* the operator's file changes afterwards: the journal must not depend on it */
	write_file("a.csv", "garbage\n");
	json_decref(ok("subscriber del 900"));
	sky_ctl_journal_close();
	runtime_teardown(s);

	/* restart: config table, then the journal replayed */
	s = runtime_setup();
	assert_int_equal(sky_subs_get(s, 1, &in), 0);
	assert_int_equal(sky_ctl_journal_open(statedir, e, sizeof(e)), 0);
	n = sky_ctl_journal_replay(e, sizeof(e));
	assert_int_equal(n, 2);
	assert_int_equal(sky_subs_get(s, 1, &in), -ENOENT);
	assert_int_equal(sky_subs_get(s, 900, &in), -ENOENT);
	assert_int_equal(sky_subs_get(s, 901, &in), 0);
	assert_int_equal(lookup_id(s, SKY_DIR_UP, "10.90.0.2", 0), 901);
	sky_ctl_journal_close();
	runtime_teardown(s);
}

/* /skygate/subscriber over DPDK's telemetry socket, as dpdk-telemetry.py reads it */
static json_t *
tel_query(int fd, const char *q)
{
	char buf[16384];
	ssize_t n;
	json_t *j, *d;

	assert_int_equal(write(fd, q, strlen(q)), (ssize_t)strlen(q));
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	j = json_loads(buf, 0, NULL);
	assert_non_null(j);
	d = json_incref(json_object_get(j, "/skygate/subscriber"));
	json_decref(j);
	return d;
}

static void
test_telemetry(void **state)
{
	struct sky_subs *s = runtime_setup();
	struct sky_meta m = mk(SKY_DIR_UP, "100.64.0.99", "203.0.113.9", 0);
	json_t *d;
	int fd;

	(void)state;
	sky_subs_lookup_burst(s, 1, &m, 1); /* one unknown packet */
	fd = sky_fx_telemetry_open();
	assert_true(fd >= 0);
	d = tel_query(fd, "/skygate/subscriber");
	assert_int_equal(json_integer_value(json_object_get(d, "subscribers")), 7);
	assert_int_equal(json_integer_value(json_object_get(d, "unknown_up_packets")), 1);
	json_decref(d);
	d = tel_query(fd, "/skygate/subscriber,3");
	assert_int_equal(json_integer_value(json_object_get(d, "id")), 3);
	assert_string_equal(json_string_value(json_object_get(d, "country")), "FR");
	assert_string_equal(json_string_value(json_object_get(d, "ipv4")), "198.18.5.77/32");
	assert_string_equal(json_string_value(json_object_get(d, "ipv6")), "2001:db8:2000:77::/64");
	json_decref(d);
	d = tel_query(fd, "/skygate/subscriber,99");
	assert_true(d == NULL || json_is_null(d));
	json_decref(d);
	close(fd);
	runtime_teardown(s);
}

/* ------------------------------------------------------------------ hitless changes */

static volatile int reader_stop;
static uint64_t reader_loops, reader_errors;

static const struct {
	const char *addr;
	uint16_t vid;
	uint32_t id;
} stable[] = {
	{"100.64.0.1", 0, 1},	{"198.18.5.77", 0, 3},	       {"198.18.5.1", 0, 2},
	{"198.18.5.250", 0, 2}, {"2001:db8:2000:76::1", 0, 2}, {"2001:db8:2000:77::5", 0, 3},
	{"100.64.0.1", 100, 4}, {"10.9.1.1", 100, 6},	       {"2001:db8:1000:100::1", 0, 1},
};

static int
reader(void *arg)
{
	struct sky_subs *s = arg;
	const size_t n = sizeof(stable) / sizeof(stable[0]);
	struct sky_meta m[sizeof(stable) / sizeof(stable[0])];

	rte_rcu_qsbr_thread_register(sky_rt.qs, 0);
	rte_rcu_qsbr_thread_online(sky_rt.qs, 0);
	while (!reader_stop) {
		for (size_t i = 0; i < n; i++) {
			int v6 = strchr(stable[i].addr, ':') != NULL;

			memset(&m[i], 0, sizeof(m[i]));
			m[i].dir = SKY_DIR_UP;
			m[i].l3 = v6 ? 6 : 4;
			m[i].outer_vid = stable[i].vid;
			inet_pton(v6 ? AF_INET6 : AF_INET, stable[i].addr, m[i].src);
		}
		sky_subs_lookup_burst(s, 1, m, (uint16_t)n);
		for (size_t i = 0; i < n; i++)
			if (m[i].sub_id != stable[i].id || m[i].verdict != SKY_V_PASS)
				reader_errors++;
		reader_loops++;
		rte_rcu_qsbr_quiescent(sky_rt.qs, 0);
	}
	rte_rcu_qsbr_thread_offline(sky_rt.qs, 0);
	rte_rcu_qsbr_thread_unregister(sky_rt.qs, 0);
	return 0;
}

static void
test_hitless_under_readers(void **state)
{
	struct sky_subs *s;
	unsigned int lcore = rte_get_next_lcore(-1, 1, 0);
	char cmd[700], load_csv_path[512];
	uint64_t loops_before;

	(void)state;
	if (lcore >= RTE_MAX_LCORE) {
		print_message("no worker lcore: skipped\n");
		skip();
	}
	assert_int_equal(sky_rcu_init(2), 0);
	s = runtime_setup();
	snprintf(load_csv_path, sizeof(load_csv_path), "%s",
		 write_file("same.csv",
			    "id,ipv4,ipv6,plan,beam,country,realm\n"
			    "1,100.64.0.1,2001:db8:1000:100::/56,basic,beam1,DE,\n"
			    "2,198.18.5.0/24,2001:db8:2000::/48,premium,beam2,NL,\n"
			    "3,198.18.5.77,2001:db8:2000:77::/64,basic,beam1,FR,\n"
			    "4,100.64.0.1,2001:db8:3000::/56,basic,beam2,TR,100\n"
			    "6,10.9.0.0/16,,basic,beam1,IT,100\n"
			    "77,198.18.5.64/26,2001:db8:2000:76:8000::/65,basic,beam1,PT,\n"));
	/* worker 0 reads; worker 1 is registered but never runs, so mark it offline */
	reader_stop = 0;
	reader_loops = reader_errors = 0;
	assert_int_equal(rte_eal_remote_launch(reader, s, lcore), 0);
	while (reader_loops == 0)
		rte_pause();
	for (int k = 0; k < 120; k++) {
		/* other subscribers, next to the readers' entries (same tbl8 groups) */
		snprintf(cmd, sizeof(cmd),
			 "subscriber add %d ipv4=198.18.5.%d ipv6=2001:db8:2000:76:%x::/80 "
			 "plan=basic beam=beam1 country=DE",
			 1000 + k, 128 + k % 100, k + 1);
		json_decref(ok(cmd));
		snprintf(cmd, sizeof(cmd), "subscriber set %d ipv4=198.18.5.64/27 plan=premium",
			 1000 + k);
		json_decref(ok(cmd));
		snprintf(cmd, sizeof(cmd), "subscriber set %d realm=100 ipv4=100.64.0.2", 1000 + k);
		json_decref(ok(cmd));
		snprintf(cmd, sizeof(cmd), "subscriber del %d", 1000 + k);
		json_decref(ok(cmd));
		if (k % 40 == 39) {
			snprintf(cmd, sizeof(cmd), "subscriber load %s", load_csv_path);
			json_decref(ok(cmd));
		}
	}
	loops_before = reader_loops;
	while (reader_loops < loops_before + 10)
		rte_pause();
	reader_stop = 1;
	rte_eal_wait_lcore(lcore);
	print_message("reader: %" PRIu64 " bursts during 480 changes and 3 loads, %" PRIu64
		      " wrong\n",
		      reader_loops, reader_errors);
	assert_int_equal(reader_errors, 0);
	runtime_teardown(s);
	sky_rcu_fini();
}

/* ------------------------------------------------------------------ random cross-check */

/* the reference: every subscriber as a list, longest prefix by brute force */
struct ref_sub {
	uint32_t id;
	uint16_t realm;
	uint8_t has4, has6, len4, len6;
	uint8_t v4[4], v6[16];
};

#define REF_MAX 600
static struct ref_sub refs[REF_MAX];
static unsigned int n_refs;
static uint64_t ref_rng = 0x9e3779b97f4a7c15ULL;

static int
prefix_has(const uint8_t *p, unsigned int len, const uint8_t *a)
{
	for (unsigned int i = 0; i < len; i++)
		if (((p[i / 8] ^ a[i / 8]) >> (7 - i % 8)) & 1)
			return 0;
	return 1;
}

static void
prefix_mask(uint8_t *a, unsigned int len, unsigned int bytes)
{
	for (unsigned int i = len; i < bytes * 8; i++)
		a[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
}

static uint32_t
ref_lookup(int fam, const uint8_t *a, uint16_t vid, uint16_t *realm)
{
	for (int pass = 0; pass < 2; pass++) {
		uint16_t want = pass == 0 ? vid : 0;
		int best = -1, best_len = -1;

		if (pass == 0 && vid == 0)
			continue;
		for (unsigned int i = 0; i < n_refs; i++) {
			const struct ref_sub *r = &refs[i];
			int len = fam == 4 ? r->len4 : r->len6;

			if (r->realm != want || !(fam == 4 ? r->has4 : r->has6) ||
			    len <= best_len ||
			    !prefix_has(fam == 4 ? r->v4 : r->v6, (unsigned int)len, a))
				continue;
			best = (int)i;
			best_len = len;
		}
		if (best >= 0) {
			*realm = want;
			return refs[best].id;
		}
	}
	*realm = 0;
	return 0;
}

/* a random prefix of family fam in one of four dense pools, masked */
static void
rand_prefix(int fam, uint16_t realm, uint8_t *a, uint8_t *len)
{
	static const uint8_t l4[] = {8, 16, 20, 24, 26, 28, 30, 32, 32, 32, 32, 32};
	static const uint8_t l6[] = {32, 40, 48, 56, 56, 56, 60, 64, 64, 65, 112, 128};
	uint64_t r = sky_fx_rand64(&ref_rng);

	if (fam == 4) {
		a[0] = 10;
		a[1] = (uint8_t)(r & 3);
		a[2] = (uint8_t)(r >> 8);
		a[3] = (uint8_t)(r >> 16);
		*len = l4[(r >> 24) % sizeof(l4)];
		prefix_mask(a, *len, 4);
		return;
	}
	memset(a, 0, 16);
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = (uint8_t)(0xb8 + (r & 3));
	for (int i = 4; i < 16; i++)
		a[i] = (uint8_t)(sky_fx_rand64(&ref_rng) & (i < 8 ? 0x0f : 0xff));
	*len = l6[(r >> 24) % sizeof(l6)];
	if (realm != 0 && *len > 112)
		*len = 112;
	prefix_mask(a, *len, 16);
}

/* no other subscriber has this (realm, prefix) */
static int
ref_free(int fam, uint16_t realm, const uint8_t *a, uint8_t len, uint32_t except)
{
	for (unsigned int i = 0; i < n_refs; i++) {
		const struct ref_sub *r = &refs[i];

		if (r->id == except || r->realm != realm)
			continue;
		if (fam == 4 && r->has4 && r->len4 == len && memcmp(r->v4, a, 4) == 0)
			return 0;
		if (fam == 6 && r->has6 && r->len6 == len && memcmp(r->v6, a, 16) == 0)
			return 0;
	}
	return 1;
}

static void
ref_random_sub(struct ref_sub *r, uint32_t id)
{
	uint64_t x = sky_fx_rand64(&ref_rng);

	memset(r, 0, sizeof(*r));
	r->id = id;
	r->realm = x % 5 == 0 ? (uint16_t)(100 + (x >> 8) % 3) : 0;
	r->has4 = (x >> 16) % 4 != 0;
	r->has6 = !r->has4 || (x >> 20) % 2 == 0;
	do
		rand_prefix(4, r->realm, r->v4, &r->len4);
	while (r->has4 && !ref_free(4, r->realm, r->v4, r->len4, id));
	do
		rand_prefix(6, r->realm, r->v6, &r->len6);
	while (r->has6 && !ref_free(6, r->realm, r->v6, r->len6, id));
}

static int
ref_fmt(const struct ref_sub *r, char *buf, size_t n, int csv)
{
	char a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "", f4[40] = "", f6[80] = "";

	if (r->has4) {
		inet_ntop(AF_INET, r->v4, a4, sizeof(a4));
		snprintf(f4, sizeof(f4), csv ? "%s/%u" : "ipv4=%s/%u", a4, r->len4);
	}
	if (r->has6) {
		inet_ntop(AF_INET6, r->v6, a6, sizeof(a6));
		snprintf(f6, sizeof(f6), csv ? "%s/%u" : "ipv6=%s/%u", a6, r->len6);
	}
	if (csv)
		return snprintf(buf, n, "%u,%s,%s,basic,beam1,DE,%u\n", r->id, f4, f6, r->realm);
	return snprintf(buf, n, "%s %s realm=%u", f4, f6, r->realm);
}

/* n random queries near the subscribers' prefixes, in bursts, against the reference */
static void
ref_check(struct sky_subs *s, int n)
{
	struct sky_meta m[SKY_BURST];
	uint32_t want[SKY_BURST];
	uint16_t want_realm[SKY_BURST];
	static const uint16_t vids[] = {0, 0, 0, 100, 101, 102, 200};
	int bad = 0;

	for (int done = 0; done < n; done += SKY_BURST) {
		for (int i = 0; i < SKY_BURST; i++) {
			const struct ref_sub *r = &refs[sky_fx_rand64(&ref_rng) % n_refs];
			uint64_t x = sky_fx_rand64(&ref_rng);
			int fam = (x & 1) ? 4 : 6;
			uint8_t a[16] = {0}, len;
			uint8_t *sa;

			if ((x >> 1) % 4 == 0 || !(fam == 4 ? r->has4 : r->has6)) {
				rand_prefix(fam, 0, a, &len); /* anywhere in the pools */
			} else {
				memcpy(a, fam == 4 ? r->v4 : r->v6, fam == 4 ? 4 : 16);
				len = fam == 4 ? r->len4 : r->len6;
			}
			/* random host bits below the prefix */
			for (unsigned int b = len; b < (fam == 4 ? 32u : 128u); b++)
				if (sky_fx_rand64(&ref_rng) & 1)
					a[b / 8] |= (uint8_t)(0x80 >> (b % 8));
			memset(&m[i], 0, sizeof(m[i]));
			m[i].dir = (uint8_t)((x >> 4) & 1);
			m[i].l3 = (uint8_t)fam;
			m[i].pkt_len = 100;
			m[i].outer_vid = vids[(x >> 8) % 7];
			sa = m[i].dir == SKY_DIR_UP ? m[i].src : m[i].dst;
			memcpy(sa, a, fam == 4 ? 4 : 16);
			want[i] = ref_lookup(fam, a, m[i].outer_vid, &want_realm[i]);
		}
		sky_subs_lookup_burst(s, 0, m, SKY_BURST);
		for (int i = 0; i < SKY_BURST; i++) {
			if (m[i].sub_id == want[i] && (want[i] == 0 || m[i].realm == want_realm[i]))
				continue;
			if (bad++ < 5) {
				char txt[64];

				inet_ntop(m[i].l3 == 4 ? AF_INET : AF_INET6,
					  sky_meta_sub_addr(&m[i]), txt, sizeof(txt));
				print_error("%s vid %u: id %u realm %u, reference id %u realm %u\n",
					    txt, m[i].outer_vid, m[i].sub_id, m[i].realm, want[i],
					    want_realm[i]);
			}
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_lookup_random_reference(void **state)
{
	static char csv[REF_MAX * 128];
	size_t len = 0;
	struct sky_cfg_err err;
	struct sky_subs *s;
	char cmd[512], f[300];
	uint32_t next_id = 1;

	(void)state;
	n_refs = 0;
	len += (size_t)snprintf(csv + len, sizeof(csv) - len, HDR);
	for (; n_refs < 400; n_refs++) {
		ref_random_sub(&refs[n_refs], next_id++);
		len += (size_t)ref_fmt(&refs[n_refs], csv + len, sizeof(csv) - len, 1);
	}
	s = make(csv, "drop", &err);
	if (s == NULL)
		print_error("%s\n", err.msg);
	assert_non_null(s);
	ref_check(s, 20000);

	/* runtime changes, checked against the reference after each round */
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	assert_int_equal(sky_subs_register(s), 0);
	for (int round = 0; round < 4; round++) {
		for (int k = 0; k < 60; k++) {
			uint64_t x = sky_fx_rand64(&ref_rng);
			unsigned int i = (unsigned int)((x >> 8) % n_refs);

			if (x % 3 == 0 && n_refs > 100) { /* del */
				snprintf(cmd, sizeof(cmd), "subscriber del %u", refs[i].id);
				json_decref(ok(cmd));
				refs[i] = refs[--n_refs];
			} else if (x % 3 == 1 && n_refs < REF_MAX) { /* add */
				ref_random_sub(&refs[n_refs], next_id++);
				ref_fmt(&refs[n_refs], f, sizeof(f), 0);
				snprintf(cmd, sizeof(cmd),
					 "subscriber add %u %s plan=basic beam=beam1 country=DE",
					 refs[n_refs].id, f);
				json_decref(ok(cmd));
				n_refs++;
			} else { /* set: new addresses (and maybe realm) */
				struct ref_sub r;

				ref_random_sub(&r, refs[i].id);
				ref_fmt(&r, f, sizeof(f), 0);
				if (!r.has4 || !r.has6) /* set keeps an address it is not given */
					continue;
				snprintf(cmd, sizeof(cmd), "subscriber set %u %s", r.id, f);
				json_decref(ok(cmd));
				refs[i] = r;
			}
		}
		ref_check(s, 8000);
	}
	runtime_teardown(s);
}

/* capacity holds for any address layout: packed, one per /24, IPv6 /56s spread */
static void
test_capacity_layouts(void **state)
{
	enum { CAP = 4096 };
	char yaml[2048], cmd[256];
	struct sky_cfg_err err = {0};

	(void)state;
	for (int layout = 0; layout < 4; layout++) {
		struct sky_cfg *cfg;
		struct sky_subs *s;
		char a4[32], a6[64];

		snprintf(yaml, sizeof(yaml),
			 "subscribers: { file: %s, capacity: %d }\n" PLANS_BEAMS_CLASSES,
			 write_file("lay.csv", HDR), CAP);
		cfg = sky_cfg_load_string("t.yaml", yaml, &err);
		assert_non_null(cfg);
		s = sky_subs_create(cfg, 1, &err);
		sky_cfg_free(cfg);
		assert_non_null(s);
		sky_ctl_unregister_all();
		sky_metrics_unregister_all();
		assert_int_equal(sky_subs_register(s), 0);
		for (unsigned int i = 0; i <= CAP; i++) {
			uint8_t b[16] = {0x20, 0x01};

			/* 0: 10.0.0.1, 10.0.0.2, ...  1: 10.0.0.1, 10.0.1.1, ... (one per /24)
			 * 2: /56s across 2000::/3  3: both, each /32 in its own /16 */
			if (layout == 0)
				snprintf(a4, sizeof(a4), "10.0.%u.%u", (i + 1) >> 8, (i + 1) & 255);
			else if (layout == 1)
				snprintf(a4, sizeof(a4), "10.%u.%u.1", i >> 8, i & 255);
			else
				snprintf(a4, sizeof(a4), "%u.%u.0.1", 11 + i / 256, i % 256);
			b[0] = (uint8_t)(0x20 | (i & 0x1f));
			b[1] = (uint8_t)(i * 37);
			b[2] = (uint8_t)(i >> 5);
			b[6] = (uint8_t)(i * 151);
			inet_ntop(AF_INET6, b, a6, sizeof(a6));
			snprintf(cmd, sizeof(cmd),
				 "subscriber add %u %s%s %s%s/56 plan=basic beam=beam1 country=DE",
				 i + 1, layout == 2 ? "" : "ipv4=", layout == 2 ? "" : a4,
				 layout >= 2 ? "ipv6=" : "", layout >= 2 ? a6 : "");
			if (layout < 2)
				snprintf(cmd, sizeof(cmd),
					 "subscriber add %u ipv4=%s plan=basic beam=beam1 "
					 "country=DE",
					 i + 1, a4);
			if (i < CAP) {
				json_decref(ok(cmd));
				assert_int_equal(lookup_id(s, SKY_DIR_UP, layout == 2 ? a6 : a4, 0),
						 i + 1);
			} else {
				bad(cmd, "subscriber table full (capacity 4096");
			}
		}
		assert_int_equal(sky_subs_count(s), CAP);
		runtime_teardown(s);
	}
}

/* ------------------------------------------------------------------ paths that are no CSV */

static uint64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A FIFO, a directory, a device, a missing or an oversized file, named by the config, by
 * `subscriber load` (with and without a state directory: the copy for the journal is read
 * the same way) or by skygate-pktgen's reader: refused at once (nothing blocks on a FIFO),
 * the path and the reason named, the table unchanged.
 */
static void
test_csv_not_a_file(void **state)
{
	char fifo[600], dir[600], huge[600], statedir[600], line[800], e[256];
	struct {
		const char *path;
		const char *want;
	} c[] = {
		{fifo, ": a FIFO, not a regular file"},
		{dir, ": a directory, not a regular file"},
		{"/dev/zero", "/dev/zero: a character device, not a regular file"},
		{"/dev/null", "/dev/null: a character device, not a regular file"},
		{"/nonexistent/subs.csv", "/nonexistent/subs.csv: No such file or directory"},
		{huge, ": 536870913 bytes, more than the limit of 536870912"},
	};
	struct sky_subs *s;
	uint64_t fp;
	int fd;

	(void)state;
	snprintf(fifo, sizeof(fifo), "%s/subs.fifo", tmpdir);
	snprintf(dir, sizeof(dir), "%s/subs.dir", tmpdir);
	snprintf(huge, sizeof(huge), "%s/huge.csv", tmpdir);
	snprintf(statedir, sizeof(statedir), "%s/state-files", tmpdir);
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	mkdir(dir, 0700);
	fd = open(huge, O_WRONLY | O_CREAT | O_TRUNC, 0600); /* sparse: no disk used */
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)SKY_SUBS_CSV_MAX_BYTES + 1), 0);
	close(fd);

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg;
		struct seen sn;
		uint64_t t0 = ms_now();

		/* the reader */
		memset(&sn, 0, sizeof(sn));
		assert_int_equal(
			sky_subs_csv_parse_file(c[i].path, NULL, seen_row, &sn, e, sizeof(e)), -1);
		if (strstr(e, c[i].path) == NULL || strstr(e, c[i].want) == NULL)
			fail_msg("%s: '%s' does not say '%s'", c[i].path, e, c[i].want);
		assert_int_equal(sn.n, 0);
		/* the config */
		cfg = sky_fx_cfg("t.yaml", &err, "subscribers: { file: %s }\n" SKY_FX_MODEL,
				 c[i].path);
		assert_non_null(cfg);
		assert_null(sky_subs_create(cfg, 2, &err));
		if (strstr(err.msg, c[i].path) == NULL || strstr(err.msg, c[i].want) == NULL)
			fail_msg("config %s: '%s' does not say '%s'", c[i].path, err.msg,
				 c[i].want);
		sky_cfg_free(cfg);
		if (ms_now() - t0 > 1000)
			fail_msg("%s: refused after %" PRIu64 " ms", c[i].path, ms_now() - t0);
	}

	/* `subscriber load`, without then with a state directory */
	s = runtime_setup();
	fp = fingerprint(s);
	for (int journal = 0; journal < 2; journal++) {
		if (journal)
			assert_int_equal(sky_ctl_journal_open(statedir, e, sizeof(e)), 0);
		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
			uint64_t t0 = ms_now();

			snprintf(line, sizeof(line), "subscriber load %s", c[i].path);
			bad(line, c[i].want);
			bad(line, c[i].path);
			if (ms_now() - t0 > 1000)
				fail_msg("%s: refused after %" PRIu64 " ms", line, ms_now() - t0);
			assert_int_equal(fingerprint(s), fp);
		}
	}
	/* nothing journaled, no copy left behind */
	assert_int_equal(sky_ctl_journal_replay(e, sizeof(e)), 0);
	sky_ctl_journal_close();
	{
		DIR *d = opendir(statedir);
		struct dirent *de;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, "subscribers-", 12) == 0)
				fail_msg("copy left behind: %s", de->d_name);
		closedir(d);
	}
	runtime_teardown(s);
	unlink(fifo);
	unlink(huge);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_csv_ok_forms),
		cmocka_unit_test(test_csv_reader),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_runtime_failures),
		cmocka_unit_test(test_runtime_changes),
		cmocka_unit_test(test_quota_state),
		cmocka_unit_test(test_zones_csv),
		cmocka_unit_test(test_zones_runtime),
		cmocka_unit_test(test_changed_events),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_capacity_layouts),
		cmocka_unit_test(test_lookup_random_reference),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_hitless_under_readers),
		cmocka_unit_test(test_load_journal),
		cmocka_unit_test(test_telemetry),
		cmocka_unit_test(test_csv_not_a_file),
		cmocka_unit_test(test_beam_modes),
	};
	int rc;

	if (sky_fx_eal_start("test_subscriber", &(struct sky_fx_eal){.lcores = "0-1",
								     .mem_mb = 1024,
								     .telemetry = 1,
								     .skygate_log = "warning"}) < 0)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s", sky_fx_tmpdir());
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	sky_fx_eal_stop();
	return rc;
}
