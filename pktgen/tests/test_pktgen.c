/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of skygate-pktgen's control path: option value parsers, mixes, the
 * subscriber CSV (load, generate, write), sequence accounting, the latency histogram,
 * and remote address pools from the real libloc database.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libloc/database.h>
#include <libloc/libloc.h>
#include <libloc/network.h>

#include "pg.h"

#define DB "/usr/share/libloc-location/location.db"

static void
test_rate_parse(void **state)
{
	static const struct {
		const char *in;
		int rc;
		enum pg_rate_unit unit;
		double value;
	} t[] = {
		{"", -1, 0, 0},
		{"abc", -1, 0, 0},
		{"10xps", -1, 0, 0},
		{"-5pps", -1, 0, 0},
		{"100", -1, 0, 0}, /* a rate needs a unit unless it is 0 */
		{"5Tbit", -1, 0, 0},
		{"0", 0, PG_RATE_NONE, 0},
		{"0pps", 0, PG_RATE_NONE, 0},
		{"200000pps", 0, PG_RATE_PPS, 200000},
		{"1.5Mpps", 0, PG_RATE_PPS, 1.5e6},
		{"64kpps", 0, PG_RATE_PPS, 64000},
		{"500Mbit", 0, PG_RATE_BPS, 5e8},
		{"1Gbps", 0, PG_RATE_BPS, 1e9},
		{"1Mbit", 0, PG_RATE_BPS, 1e6},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pg_rate r = {0};
		char err[128] = "";
		int rc = pg_rate_parse(t[i].in, &r, err, sizeof(err));
		if (rc != t[i].rc)
			fail_msg("'%s': rc %d, want %d (%s)", t[i].in, rc, t[i].rc, err);
		if (rc) {
			assert_true(err[0] != 0);
			continue;
		}
		assert_int_equal(r.unit, t[i].unit);
		assert_true(r.value == t[i].value);
	}
}

static void
test_size_parse(void **state)
{
	static const struct {
		const char *in;
		int rc;
		enum pg_size_mode mode;
		unsigned int lo, hi;
	} t[] = {
		{"", -1, 0, 0, 0},
		{"59", -1, 0, 0, 0},
		{"1523", -1, 0, 0, 0},
		{"100-60", -1, 0, 0, 0},
		{"64-", -1, 0, 0, 0},
		{"64x", -1, 0, 0, 0},
		{"imx", -1, 0, 0, 0},
		{"64", 0, PG_SIZE_FIXED, 64, 64},
		{"1518", 0, PG_SIZE_FIXED, 1518, 1518},
		{"imix", 0, PG_SIZE_IMIX, 64, 1518},
		{"60-1500", 0, PG_SIZE_RANGE, 60, 1500},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pg_size s = {0};
		char err[128] = "";
		int rc = pg_size_parse(t[i].in, &s, err, sizeof(err));
		if (rc != t[i].rc)
			fail_msg("'%s': rc %d, want %d (%s)", t[i].in, rc, t[i].rc, err);
		if (rc)
			continue;
		assert_int_equal(s.mode, t[i].mode);
		assert_int_equal(s.lo, t[i].lo);
		assert_int_equal(s.hi, t[i].hi);
	}
}

static void
test_size_table(void **state)
{
	uint16_t tab[4096];
	struct pg_size imix = {PG_SIZE_IMIX, 64, 1518};
	pg_size_table(&imix, tab, 4096, 7);
	unsigned int c64 = 0, c570 = 0, c1518 = 0;
	for (unsigned int i = 0; i < 4096; i++) {
		c64 += tab[i] == 64;
		c570 += tab[i] == 570;
		c1518 += tab[i] == 1518;
	}
	assert_int_equal(c64 + c570 + c1518, 4096);
	/* 7:4:1 within one period of 12 */
	assert_true(abs((int)c64 - 4096 * 7 / 12) <= 7);
	assert_true(abs((int)c570 - 4096 * 4 / 12) <= 4);
	assert_true(abs((int)c1518 - 4096 / 12) <= 1);
	struct pg_size rng = {PG_SIZE_RANGE, 100, 200};
	pg_size_table(&rng, tab, 4096, 7);
	unsigned int lo = 0, hi = 0;
	for (unsigned int i = 0; i < 4096; i++) {
		assert_true(tab[i] >= 100 && tab[i] <= 200);
		lo += tab[i] == 100;
		hi += tab[i] == 200;
	}
	assert_true(lo > 0 && hi > 0); /* both ends reachable */
}

static void
test_mix(void **state)
{
	static const char *const bad[] = {"",	 ",",	    "a:x",   "a:-1", "a,a",
					  "a:0", "a:0,b:0", "a:1:2", ":3"};
	struct pg_mix m;
	char err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pg_mix_parse(bad[i], &m, err, sizeof(err)) == 0)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(pg_list_parse("a:1", &m, err, sizeof(err)), -1);

	static const struct {
		const char *mix;
		uint64_t total;
		uint64_t want[4];
	} t[] = {
		{"realtime:10,interactive:30,bulk:50,scavenger:10", 800, {80, 240, 400, 80}},
		{"a:1,b:1,c:1", 10, {4, 3, 3}},
		{"a:2,b:1", 1, {1, 0}},
		{"a,b", 5, {3, 2}},
		{"x:0,y:5", 7, {0, 7}},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(pg_mix_parse(t[i].mix, &m, err, sizeof(err)), 0);
		uint64_t out[PG_MAX_MIX];
		pg_mix_apportion(&m, t[i].total, out);
		for (unsigned int k = 0; k < m.n; k++)
			if (out[k] != t[i].want[k])
				fail_msg("%s x %lu: entry %u got %lu want %lu", t[i].mix,
					 (unsigned long)t[i].total, k, (unsigned long)out[k],
					 (unsigned long)t[i].want[k]);
	}
}

static void
test_prefix_first_host(void **state)
{
	static const struct {
		const char *in;
		int fam;
		int rc;
		const char *want;
	} t[] = {
		{"10.0.0.0/33", AF_INET, -1, NULL},
		{"10.0.0/24", AF_INET, -1, NULL},
		{"10.0.0.0/", AF_INET, -1, NULL},
		{"2001:db8::/129", AF_INET6, -1, NULL},
		{"10.1.2.3", AF_INET, 0, "10.1.2.3"},
		{"10.1.2.3/32", AF_INET, 0, "10.1.2.3"},
		{"10.1.2.0/24", AF_INET, 0, "10.1.2.1"},
		{"10.1.2.77/24", AF_INET, 0, "10.1.2.1"},
		{"10.1.2.4/31", AF_INET, 0, "10.1.2.4"},
		{"2001:db8:0:100::/56", AF_INET6, 0, "2001:db8:0:100::1"},
		{"2001:db8::5", AF_INET6, 0, "2001:db8::5"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint8_t a[16] = {0};
		int rc = pg_prefix_first_host(t[i].in, t[i].fam, a);
		if (rc != t[i].rc)
			fail_msg("'%s': rc %d want %d", t[i].in, rc, t[i].rc);
		if (rc)
			continue;
		char s[64];
		inet_ntop(t[i].fam, a, s, sizeof(s));
		if (strcmp(s, t[i].want) != 0)
			fail_msg("'%s': got %s want %s", t[i].in, s, t[i].want);
	}
}

static char *
write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/test_pktgen.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

#define HDR6 "id,ipv4,ipv6,plan,beam,country\n"
#define HDR7 "id,ipv4,ipv6,plan,beam,country,realm\n"

/* libskygate's reader (skygate/subscriber.h): what skygate refuses, pktgen refuses, with
 * the same FILE:LINE messages */
static void
test_subs_load(void **state)
{
	static const struct {
		const char *csv;
		const char *err_has; /* NULL = must load */
		uint32_t n;
	} t[] = {
		{HDR6 "1,10.0.0.1,,basic,b1\n", ":2: 5 fields, expected 6", 0},
		{HDR6 "0,10.0.0.1,,basic,b1,DE\n", ":2: id '0' is not a number", 0},
		{HDR6 "x,10.0.0.1,,basic,b1,DE\n", ":2: id 'x' is not a number", 0},
		{HDR6 "1,10.0.0.300,,basic,b1,DE\n", ":2: ipv4 '10.0.0.300'", 0},
		{HDR6 "1,10.0.0.1/24,,basic,b1,DE\n", ":2: ipv4 '10.0.0.1/24'", 0}, /* host bits */
		{HDR6 "1,,2001:zz::/56,basic,b1,DE\n", ":2: ipv6 '2001:zz::/56'", 0},
		{HDR6 "1,,,basic,b1,DE\n", ":2: id 1 has neither ipv4 nor ipv6", 0},
		{HDR6 "1,10.0.0.1,,basic,b1,Germany\n", ":2: country 'Germany'", 0},
		{HDR6 "1,10.0.0.1,,basic,b1,D1\n", ":2: country 'D1'", 0},
		{HDR6 "1,10.0.0.1,,,b1,DE\n", ":2: plan '': empty", 0},
		{HDR6 "1,10.0.0.1,,basic,b1234567890123456789012345678901,DE\n",
		 ":2: beam 'b1234567890123456789012345678901': empty, longer than 31", 0},
		{HDR7 "1,10.0.0.1,,basic,b1,DE,5000\n", ":2: realm '5000'", 0},
		{"# only a comment\n", ": no header line", 0},
		{"0,10.0.0.1,,basic,b1,DE\n", ":1: header must be", 0},
		{"1,10.0.0.1,,basic,b1,DE\nid,ipv4,ipv6,plan,beam,country\n", ":1: header must be",
		 0},
		{HDR6 "# a header, no subscribers\n", ": no subscribers", 0},
		{"# comments before the header, CRLF line ends\r\n\r\n"
		 "id,ipv4,ipv6,plan,beam,country,realm\r\n"
		 "1,10.0.0.0/30,2001:db8:0:100::/56,basic,b1,DE,7\n"
		 "# comment\n\n"
		 "2,10.0.0.4,,premium,b2,FR,\n" /* every row has the header's columns */
		 "3,,2001:db8:0:200::/56,basic,b1,us,\n",
		 NULL, 3},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *path = write_tmp(t[i].csv);
		struct pg_subs s;
		char err[256] = "";
		int rc = pg_subs_load(&s, path, 0, err, sizeof(err));
		if (t[i].err_has) {
			unlink(path);
			if (rc == 0 || strstr(err, t[i].err_has) == NULL ||
			    strncmp(err, path, strlen(path)) != 0)
				fail_msg("case %zu: rc %d err '%s', want '%s'", i, rc, err,
					 t[i].err_has);
			continue;
		}
		if (rc)
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(s.n, t[i].n);
		char a[64];
		inet_ntop(AF_INET, s.v[0].v4, a, sizeof(a));
		assert_string_equal(a, "10.0.0.1");
		inet_ntop(AF_INET6, s.v[0].v6, a, sizeof(a));
		assert_string_equal(a, "2001:db8:0:100::1");
		assert_int_equal(s.v[0].realm, 7);
		assert_int_equal(s.v[1].has_v6, 0);
		assert_int_equal(s.v[2].has_v4, 0);
		assert_int_equal(s.v[2].country, pg_cc("US"));
		assert_string_equal(s.plans[s.v[1].plan], "premium");
		assert_string_equal(s.beams[s.v[2].beam], "b1");
		assert_int_equal(s.n_plans, 2);
		pg_subs_free(&s);
		/* limit: the first rows only */
		assert_int_equal(pg_subs_load(&s, path, 2, err, sizeof(err)), 0);
		unlink(path);
		assert_int_equal(s.n, 2);
		assert_int_equal(s.v[1].id, 2);
		pg_subs_free(&s);
	}
}

static void
test_subs_generate_roundtrip(void **state)
{
	struct pg_gen g = {.n = 1000, .v6_share = 0.3, .realms = 4, .seed = 3};
	char err[256];
	assert_int_equal(pg_list_parse("DE,FR,IT", &g.countries, err, sizeof(err)), 0);
	assert_int_equal(pg_list_parse("beam1,beam2", &g.beams, err, sizeof(err)), 0);
	assert_int_equal(pg_list_parse("basic,premium", &g.plans, err, sizeof(err)), 0);
	inet_pton(AF_INET, "100.64.0.0", g.v4_base);
	g.v4_len = 10;
	inet_pton(AF_INET6, "2001:db8::", g.v6_base);
	g.v6_len = 32;
	struct pg_subs s, back;
	/* refused: too many for the block, bad country */
	struct pg_gen small = g;
	small.v4_len = 24;
	assert_int_equal(pg_subs_generate(&s, &small, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--sub-v4"));
	struct pg_gen badcc = g;
	assert_int_equal(pg_list_parse("DE,XYZ", &badcc.countries, err, sizeof(err)), 0);
	assert_int_equal(pg_subs_generate(&s, &badcc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "XYZ"));

	assert_int_equal(pg_subs_generate(&s, &g, err, sizeof(err)), 0);
	assert_int_equal(s.n, 1000);
	unsigned int v6 = 0, per_cc[3] = {0};
	for (uint32_t i = 0; i < s.n; i++) {
		v6 += s.v[i].has_v6;
		for (unsigned int k = 0; k < 3; k++)
			per_cc[k] += s.v[i].country == pg_cc(g.countries.name[k]);
		assert_true(s.v[i].realm >= 100 && s.v[i].realm < 104);
	}
	assert_int_equal(v6, 300);
	for (unsigned int k = 0; k < 3; k++)
		assert_true(per_cc[k] >= 333 && per_cc[k] <= 334);
	/* distinct addresses */
	for (uint32_t i = 1; i < s.n; i++)
		assert_true(memcmp(s.v[i].v4, s.v[i - 1].v4, 4) != 0);

	char path[] = "/tmp/test_pktgen_csv.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pg_subs_write_csv(&s, path, err, sizeof(err)), 0);
	int rc = pg_subs_load(&back, path, 0, err, sizeof(err));
	unlink(path);
	if (rc)
		fail_msg("reload: %s", err);
	assert_int_equal(back.n, s.n);
	for (uint32_t i = 0; i < s.n; i++) {
		assert_int_equal(back.v[i].id, s.v[i].id);
		assert_memory_equal(back.v[i].v4, s.v[i].v4, 4);
		assert_int_equal(back.v[i].has_v6, s.v[i].has_v6);
		if (s.v[i].has_v6)
			assert_memory_equal(back.v[i].v6, s.v[i].v6, 16);
		assert_int_equal(back.v[i].country, s.v[i].country);
		assert_int_equal(back.v[i].realm, s.v[i].realm);
		assert_string_equal(back.plans[back.v[i].plan], s.plans[s.v[i].plan]);
		assert_string_equal(back.beams[back.v[i].beam], s.beams[s.v[i].beam]);
	}
	pg_subs_free(&back);
	pg_subs_free(&s);
}

static void
test_seq(void **state)
{
	static const struct {
		const char *name;
		uint32_t start; /* the flow's first sequence number */
		uint32_t seq[8];
		unsigned int n;
		uint64_t rx, dup, reord, gap;
	} t[] = {
		{"dup", 0, {0, 1, 1}, 3, 3, 1, 0, 0},
		{"dup of old", 0, {0, 1, 2, 3, 1}, 5, 5, 1, 0, 0},
		{"gap", 0, {0, 5}, 2, 2, 0, 0, 4},
		{"gap then fill", 0, {0, 5, 3}, 3, 3, 0, 1, 3},
		{"swap", 0, {0, 2, 1, 3}, 4, 4, 0, 1, 0},
		{"fill twice", 0, {0, 3, 1, 1}, 4, 4, 1, 1, 1},
		{"too late to tell", 0, {0, 100, 5}, 3, 3, 0, 1, 98},
		{"in order", 0, {0, 1, 2, 3}, 4, 4, 0, 0, 0},
		{"wrap", 0xfffffffe, {0xfffffffe, 0xffffffff, 0, 1, 3}, 5, 5, 0, 0, 1},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pg_seq s = {.next = t[i].start};
		for (unsigned int k = 0; k < t[i].n; k++)
			pg_seq_update(&s, t[i].seq[k]);
		if (s.rx != t[i].rx || s.dup != t[i].dup || s.reord != t[i].reord ||
		    s.gap != t[i].gap)
			fail_msg("%s: rx %lu dup %lu reord %lu gap %lu", t[i].name,
				 (unsigned long)s.rx, (unsigned long)s.dup, (unsigned long)s.reord,
				 (unsigned long)s.gap);
	}
}

static void
test_hist(void **state)
{
	/* every value lies inside its bucket, buckets are monotonic, precision 1/64 */
	unsigned int prev = 0;
	for (uint64_t v = 0; v < (1ull << 40); v = v < 64 ? v + 1 : v + v / 7) {
		unsigned int b = pg_hist_bucket(v);
		assert_true(b < PG_HIST_BUCKETS);
		assert_true(b >= prev);
		prev = b;
		uint64_t hi = pg_hist_bucket_hi(b);
		assert_true(hi >= v);
		assert_true(hi - v <= v / PG_HIST_SUB + 1);
	}
	static uint64_t h[PG_HIST_BUCKETS];
	/* 90 samples at 1000 cycles, 10 at 100000 */
	h[pg_hist_bucket(1000)] = 90;
	h[pg_hist_bucket(100000)] = 10;
	uint64_t p50 = pg_hist_quantile(h, 0.5, 100000);
	uint64_t p95 = pg_hist_quantile(h, 0.95, 100000);
	assert_true(p50 >= 1000 && p50 <= 1000 + 1000 / 64);
	assert_int_equal(p95, 100000); /* capped at the max seen */
	assert_int_equal(pg_hist_quantile(h, 0.90, 100000), p50);
	static uint64_t empty[PG_HIST_BUCKETS];
	assert_int_equal(pg_hist_quantile(empty, 0.5, 0), 0);
}

static void
test_geo_pools(void **state)
{
	char err[256];
	struct pg_mix m;
	/* refused: not a code, a code without networks */
	assert_int_equal(pg_mix_parse("DEU:1", &m, err, sizeof(err)), 0);
	assert_null(pg_geo_pools(DB, &m, 8, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "DEU"));
	assert_int_equal(pg_mix_parse("QQ:1", &m, err, sizeof(err)), 0);
	assert_null(pg_geo_pools(DB, &m, 8, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "QQ"));
	assert_null(pg_geo_pools("/nonexistent.db", &m, 8, 1, err, sizeof(err)));

	assert_int_equal(pg_mix_parse("DE:2,US:1,CN:1", &m, err, sizeof(err)), 0);
	struct pg_geo_pool *p = pg_geo_pools(DB, &m, 64, 42, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	/* check each address with libloc ourselves */
	struct loc_ctx *ctx;
	struct loc_database *db;
	assert_int_equal(loc_new(&ctx), 0);
	FILE *f = fopen(DB, "r");
	assert_non_null(f);
	assert_int_equal(loc_database_new(ctx, &db, f), 0);
	fclose(f);
	for (unsigned int i = 0; i < m.n; i++) {
		assert_int_equal(p[i].cc, pg_cc(m.name[i]));
		assert_int_equal(p[i].n4, 64);
		assert_int_equal(p[i].n6, 64);
		for (unsigned int k = 0; k < p[i].n4 + p[i].n6; k++) {
			char s[64];
			if (k < p[i].n4)
				inet_ntop(AF_INET, p[i].v4[k], s, sizeof(s));
			else
				inet_ntop(AF_INET6, p[i].v6[k - p[i].n4], s, sizeof(s));
			struct loc_network *n = NULL;
			assert_int_equal(loc_database_lookup_from_string(db, s, &n), 0);
			assert_non_null(n);
			if (strcmp(loc_network_get_country_code(n), m.name[i]) != 0)
				fail_msg("%s is in %s, not %s", s, loc_network_get_country_code(n),
					 m.name[i]);
			loc_network_unref(n);
		}
	}
	pg_geo_pools_free(p, m.n);

	struct pg_mix top;
	assert_int_equal(pg_geo_top_countries(DB, 0, &top, err, sizeof(err)), -1);
	assert_int_equal(pg_geo_top_countries(DB, 5, &top, err, sizeof(err)), 0);
	assert_int_equal(top.n, 5);
	for (unsigned int i = 0; i < top.n; i++) {
		assert_int_equal(strlen(top.name[i]), 2);
		for (unsigned int k = 0; k < i; k++)
			assert_string_not_equal(top.name[i], top.name[k]);
	}
	loc_database_unref(db);
	loc_unref(ctx);
}

/* --rtt-emulate: failures first, then the forms */
static void
test_rtt_parse(void **state)
{
	static const struct {
		const char *s;
		const char *err; /* substring */
	} bad[] = {
		{"", "empty"},
		{"250", "SAT_MS:INET_MS"},
		{"250:", "SAT_MS:INET_MS"},
		{":10", "SAT_MS:INET_MS"},
		{"250:10:5", "SAT_MS:INET_MS"},
		{"-1:10", "SAT_MS:INET_MS"},
		{"10001:10", "SAT_MS:INET_MS"},
		{"0.0001:10", "SAT_MS:INET_MS"},
		{"1.:10", "SAT_MS:INET_MS"},
		{"250:10,", "SAT_MS:INET_MS"},
		{"geo=250:10", "start with the default"},
		{"20:10,250:10", "BEAM=SAT_MS:INET_MS"},
		{"20:10,=250:10", "BEAM=SAT_MS:INET_MS"},
		{"20:10,geo=250:10,geo=300:10", "given twice"},
		{"1:1,a=1:1,b=1:1,c=1:1,d=1:1,e=1:1,f=1:1,g=1:1,h=1:1", "at most 8"},
	};
	struct pg_rtt rt;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&rt, 0, sizeof(rt));
		err[0] = 0;
		if (pg_rtt_parse(bad[i].s, &rt, err, sizeof(err)) == 0)
			fail_msg("accepted '%s'", bad[i].s);
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("'%s': got '%s', want '%s'", bad[i].s, err, bad[i].err);
	}
	memset(&rt, 0, sizeof(rt));
	rt.retrans = 0.05; /* --rtt-retrans before --rtt-emulate stays */
	assert_int_equal(pg_rtt_parse("250:10", &rt, err, sizeof(err)), 0);
	assert_int_equal(rt.n, 1);
	assert_int_equal(rt.sat_us[0], 250000);
	assert_int_equal(rt.inet_us[0], 10000);
	assert_true(rt.retrans == 0.05);
	assert_int_equal(
		pg_rtt_parse("20.5:0,geo=250:10.125,leo=0.001:10000", &rt, err, sizeof(err)), 0);
	assert_int_equal(rt.n, 3);
	assert_int_equal(rt.sat_us[0], 20500);
	assert_int_equal(rt.inet_us[0], 0);
	assert_string_equal(rt.beam[1], "geo");
	assert_int_equal(rt.sat_us[1], 250000);
	assert_int_equal(rt.inet_us[1], 10125);
	assert_string_equal(rt.beam[2], "leo");
	assert_int_equal(rt.sat_us[2], 1);
	assert_int_equal(rt.inet_us[2], 10000000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtt_parse),  cmocka_unit_test(test_rate_parse),
		cmocka_unit_test(test_size_parse), cmocka_unit_test(test_size_table),
		cmocka_unit_test(test_mix),	   cmocka_unit_test(test_prefix_first_host),
		cmocka_unit_test(test_subs_load),  cmocka_unit_test(test_subs_generate_roundtrip),
		cmocka_unit_test(test_seq),	   cmocka_unit_test(test_hist),
		cmocka_unit_test(test_geo_pools),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
