/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_geo: lib/geo against the real location database and libloc's own answers.
 *
 * Failure cases first (config keys, missing, empty, truncated and garbage files), then the
 * full database: fixed addresses, `location lookup` (the CLI) on a list of addresses,
 * >= 10000 random IPv4 and IPv6 addresses compared with loc_database_lookup(), nested
 * networks at their edges, the burst function on meta arrays in both directions, the
 * control commands, a reload swap under a reader thread, and the per-country enumeration.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

#include <libloc/libloc.h>
#include <libloc/database.h>
#include <libloc/network.h>

#include <rte_eal.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/geo.h"
#include "skygate/runtime.h"

#include "fixture.h"

#define DB "/usr/share/libloc-location/location.db"
#define TRUNC "/tmp/skygate_test_geo_trunc.db"
#define GARBAGE "/tmp/skygate_test_geo_garbage.db"
#define EMPTY "/tmp/skygate_test_geo_empty.db"
#define CORRUPT "/tmp/skygate_test_geo_corrupt.db"
/* the journal test's state directory: per process, tests of several checkouts may run at once */
static char state_dir[64];
#define STATE state_dir

/* STATE + rest, in one of two rotating buffers */
static const char *
state_path(const char *rest)
{
	static char buf[2][128];
	static unsigned int k;

	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s%s", state_dir, rest);
	return buf[k];
}
#define N_RANDOM 10000

/* ------------------------------------------------------------------ helpers */

static struct sky_geo *geo;  /* full database, shared by the tests after the failures */
static struct loc_ctx *lctx; /* libloc reference */
static struct loc_database *ldb;
static FILE *lf;
static uint64_t rng = 0x243f6a8885a308d3ull; /* seeded: runs are reproducible */

static uint64_t
rnd(void)
{
	return sky_fx_rand64(&rng);
}

static struct sky_cfg *
cfg_text(const char *fmt, ...)
{
	struct sky_cfg_err err;
	struct sky_cfg *cfg;
	va_list ap;

	va_start(ap, fmt);
	cfg = sky_fx_vcfg("test.yaml", &err, fmt, ap);
	va_end(ap);
	if (cfg == NULL)
		fail_msg("config did not parse: %s", err.msg);
	return cfg;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (len > 0)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* first n bytes of the real database */
static void
write_truncated(const char *path, size_t n)
{
	FILE *in = fopen(DB, "r");
	char *buf = malloc(n);

	assert_non_null(in);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, n, in), n);
	fclose(in);
	write_file(path, buf, n);
	free(buf);
}

/* the real database with 4 KiB of 0xff inside its network tree */
static void
write_corrupt(const char *path)
{
	FILE *in = fopen(DB, "r");
	long len;
	char *buf;

	assert_non_null(in);
	fseek(in, 0, SEEK_END);
	len = ftell(in);
	rewind(in);
	assert_true(len > 24000000);
	buf = malloc((size_t)len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, in), (size_t)len);
	fclose(in);
	memset(buf + 20000000, 0xff, 4096);
	write_file(path, buf, (size_t)len);
	free(buf);
}

/* What libloc answers: found, cc, flags, network string. */
struct ref {
	int found;
	uint16_t cc;
	uint8_t flags;
	char net[64];
};

static void
ref_lookup(int family, const uint8_t *addr, struct ref *r)
{
	struct in6_addr a;
	struct loc_network *n = NULL;
	const char *cc;

	memset(r, 0, sizeof(*r));
	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		a.s6_addr[10] = 0xff;
		a.s6_addr[11] = 0xff;
		memcpy(&a.s6_addr[12], addr, 4);
	} else {
		memcpy(a.s6_addr, addr, 16);
	}
	if (loc_database_lookup(ldb, &a, &n) != 0 || n == NULL)
		return;
	r->found = 1;
	cc = loc_network_get_country_code(n);
	if (cc != NULL && strlen(cc) == 2)
		r->cc = sky_cc(cc);
	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_ANONYMOUS_PROXY))
		r->flags |= SKY_GEO_F_ANONYMOUS_PROXY;
	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_SATELLITE_PROVIDER))
		r->flags |= SKY_GEO_F_SATELLITE;
	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_ANYCAST))
		r->flags |= SKY_GEO_F_ANYCAST;
	if (loc_network_has_flag(n, LOC_NETWORK_FLAG_DROP))
		r->flags |= SKY_GEO_F_DROP;
	snprintf(r->net, sizeof(r->net), "%s", loc_network_str(n));
	loc_network_unref(n);
}

static void
addr_str(int family, const uint8_t *a, char *buf)
{
	inet_ntop(family, a, buf, INET6_ADDRSTRLEN);
}

/* sky_geo_lookup() must equal libloc; returns 1 when a network matched */
static int
check_one(int family, const uint8_t *a)
{
	struct ref r;
	uint16_t cc;
	uint8_t fl;
	char net[64], s[INET6_ADDRSTRLEN];
	int rc;

	ref_lookup(family, a, &r);
	rc = sky_geo_lookup(geo, family, a, &cc, &fl, net, sizeof(net));
	addr_str(family, a, s);
	if ((rc == 0) != r.found || cc != r.cc || fl != r.flags || strcmp(net, r.net) != 0)
		fail_msg("%s: geo rc=%d cc=%04x flags=%x net=%s, libloc found=%d cc=%04x "
			 "flags=%x net=%s",
			 s, rc, cc, fl, net, r.found, r.cc, r.flags, r.net);
	return r.found;
}

struct netv {
	uint8_t ip[16]; /* 4 bytes for IPv4 */
	uint8_t depth;
	uint16_t cc;
	uint16_t parent_cc;
	int nested; /* inside a network of another country */
	int no_cc;
};

static struct netv *nets4, *nets6;
static size_t n_nets4, n_nets6;

/* every network of a family, with whether it sits inside a network of another country */
static struct netv *
collect(int family, size_t *count)
{
	struct loc_database_enumerator *e;
	struct loc_network *n, *stack[130];
	struct netv *v = NULL;
	size_t cap = 0, sp = 0;

	*count = 0;
	assert_int_equal(loc_database_enumerator_new(&e, ldb, LOC_DB_ENUMERATE_NETWORKS, 0), 0);
	loc_database_enumerator_set_family(e, family);
	while (loc_database_enumerator_next_network(e, &n) == 0 && n != NULL) {
		const char *cc = loc_network_get_country_code(n);
		struct netv *x;

		while (sp > 0 && !loc_network_is_subnet(stack[sp - 1], n))
			loc_network_unref(stack[--sp]);
		if (*count == cap) {
			cap = cap ? cap * 2 : 65536;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		x = &v[(*count)++];
		memset(x, 0, sizeof(*x));
		memcpy(x->ip,
		       family == AF_INET ? &loc_network_get_first_address(n)->s6_addr[12]
					 : loc_network_get_first_address(n)->s6_addr,
		       family == AF_INET ? 4 : 16);
		x->depth = (uint8_t)loc_network_prefix(n);
		x->cc = (cc && strlen(cc) == 2) ? sky_cc(cc) : 0;
		x->no_cc = x->cc == 0;
		if (sp > 0) {
			const char *pc = loc_network_get_country_code(stack[sp - 1]);

			x->parent_cc = (pc && strlen(pc) == 2) ? sky_cc(pc) : 0;
			x->nested = x->parent_cc != x->cc;
		}
		if (sp < RTE_DIM(stack))
			stack[sp++] = n;
		else
			loc_network_unref(n);
	}
	while (sp > 0)
		loc_network_unref(stack[--sp]);
	loc_database_enumerator_unref(e);
	return v;
}

/* random address inside x (random host bits) */
static void
draw(const struct netv *x, int family, uint8_t *a)
{
	unsigned int len = family == AF_INET ? 4 : 16;

	for (unsigned int b = 0; b < 16; b += 8) {
		uint64_t r = rnd();
		memcpy(a + b, &r, 8);
	}
	for (unsigned int bit = 0; bit < x->depth; bit++) {
		uint8_t m = (uint8_t)(0x80 >> (bit & 7));

		a[bit >> 3] = (uint8_t)((a[bit >> 3] & ~m) | (x->ip[bit >> 3] & m));
	}
	if (len == 4)
		memset(a + 4, 0, 12);
}

/* first (last = 0) or last (last = 1) address of x, then step -1/+1 when step != 0 */
static void
edge(const struct netv *x, int family, int last, int step, uint8_t *a)
{
	unsigned int len = family == AF_INET ? 4 : 16;
	int i;

	memset(a, 0, 16);
	memcpy(a, x->ip, len);
	if (last)
		for (unsigned int bit = x->depth; bit < len * 8; bit++)
			a[bit >> 3] |= (uint8_t)(0x80 >> (bit & 7));
	if (step > 0) {
		for (i = (int)len - 1; i >= 0 && ++a[i] == 0; i--)
			;
	} else if (step < 0) {
		for (i = (int)len - 1; i >= 0 && a[i]-- == 0; i--)
			;
	}
}

static json_t *
run_cmd(int argc, char **argv)
{
	json_t *r = sky_ctl_dispatch_argv(argc, argv, 0, 0, 0);

	assert_non_null(r);
	return r;
}

static int
cmd_ok(json_t *r)
{
	return json_is_true(json_object_get(r, "ok"));
}

/* run a command that must succeed; *result is its "result" (owned by the reply) */
static json_t *
run_ok(int argc, char **argv, json_t **result)
{
	json_t *r = run_cmd(argc, argv);

	assert_true(cmd_ok(r));
	*result = json_object_get(r, "result");
	return r;
}

/* ------------------------------------------------------------------ failures */

struct cfg_case {
	const char *name;
	const char *yaml;
	const char *want; /* substring of the error */
};

static void
test_config_failures(void **state)
{
	static const struct cfg_case cases[] = {
		{"missing file", "geo: { database: /nonexistent/location.db }\n",
		 "/nonexistent/location.db: No such file or directory"},
		{"empty file", "geo: { database: " EMPTY " }\n",
		 "not a readable location database"},
		{"garbage file", "geo: { database: " GARBAGE " }\n",
		 "not a readable location database"},
		{"truncated file", "geo: { database: " TRUNC " }\n", "corrupt"},
		{"garbage inside the network tree", "geo: { database: " CORRUPT " }\n",
		 CORRUPT ": corrupt database"},
		{"directory", "geo: { database: /tmp }\n", "/tmp: a directory, not a regular file"},
		{"unknown key", "geo: { database: " DB ", bogus: 1 }\n", "bogus"},
		{"database missing", "geo: { flags: true }\n", "geo.database"},
		{"section without a value", "geo:\n", "geo.database"},
		{"database empty", "geo: { database: \"\" }\n", "empty path"},
		{"flags not a bool", "geo: { database: " DB ", flags: maybe }\n", "flags"},
		{"ipv6 not a bool", "geo: { database: " DB ", ipv6: [1] }\n", "ipv6"},
		{"section not a map", "geo: 5\n", "geo"},
		{"check_interval too short", "geo: { database: " DB ", check_interval: 10ms }\n",
		 "geo.check_interval"},
		{"check_interval not a time", "geo: { database: " DB ", check_interval: soon }\n",
		 "geo.check_interval"},
		{"lookup unknown", "geo: { database: " DB ", lookup: fastest }\n", "geo.lookup"},
		/* EAL here runs with --force-max-simd-bitwidth=256: AVX512 lookups are refused
		 * (on a CPU without AVX512F too, with another reason) */
		{"lookup avx512 forbidden", "geo: { database: " DB ", lookup: avx512 }\n",
		 "geo.lookup: avx512: "},
	};
	static const char garbage[] = "this is not a location database, just text\n";

	(void)state;
	write_file(EMPTY, "", 0);
	write_file(GARBAGE, garbage, sizeof(garbage) - 1);
	write_truncated(TRUNC, 1000000);
	write_corrupt(CORRUPT);
	for (size_t i = 0; i < RTE_DIM(cases); i++) {
		struct sky_cfg *cfg = cfg_text("%s", cases[i].yaml);
		struct sky_cfg_err err = {0};
		struct sky_geo *g = sky_geo_create(cfg, &err);

		if (g != NULL)
			fail_msg("%s: accepted", cases[i].name);
		if (strstr(err.msg, cases[i].want) == NULL)
			fail_msg("%s: error '%s' does not name '%s'", cases[i].name, err.msg,
				 cases[i].want);
		/* every error names the config file */
		if (strstr(err.msg, "test.yaml") == NULL)
			fail_msg("%s: error '%s' does not name the file", cases[i].name, err.msg);
		sky_cfg_free(cfg);
	}
}

static void
test_disabled(void **state)
{
	struct sky_cfg *cfg = cfg_text("workers: 1\n");
	struct sky_cfg_err err = {0};
	struct sky_geo *g = sky_geo_create(cfg, &err);
	struct sky_meta m[4];
	uint8_t a[4] = {8, 8, 8, 8};
	uint16_t cc = 1;
	uint8_t fl = 1;
	char net[64] = "x";
	char msg[256];

	(void)state;
	assert_non_null(g);
	assert_int_equal(sky_geo_enabled(g), 0);
	assert_int_equal(sky_geo_lookup(g, AF_INET, a, &cc, &fl, net, sizeof(net)), -ENODEV);
	assert_int_equal(cc, 0);
	assert_string_equal(net, "");
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 4; i++) {
		m[i].l3 = 4;
		memcpy(m[i].dst, a, 4);
	}
	sky_geo_lookup_burst(g, 0, m, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(m[i].remote_country, 0);
	/* reload without a path has nothing to load */
	assert_int_equal(sky_geo_reload(g, NULL, msg, sizeof(msg)), -ENODEV);
	/* a refused reload with a path leaves it disabled */
	assert_int_not_equal(sky_geo_reload(g, TRUNC, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, TRUNC));
	assert_int_equal(sky_geo_enabled(g), 0);
	sky_geo_destroy(g);
	sky_cfg_free(cfg);
	/* no config at all: disabled too */
	g = sky_geo_create(NULL, &err);
	assert_non_null(g);
	assert_int_equal(sky_geo_enabled(g), 0);
	sky_geo_destroy(g);
}

static void
test_country_networks_failures(void **state)
{
	(void)state;
	assert_int_equal(sky_geo_country_networks("/nonexistent.db", sky_cc("DE"), AF_INET,
						  (sky_geo_net_fn)abort, NULL),
			 -ENOENT);
	assert_int_equal(
		sky_geo_country_networks(TRUNC, sky_cc("DE"), AF_INET, (sky_geo_net_fn)abort, NULL),
		-EINVAL);
	assert_int_equal(
		sky_geo_country_networks(DB, sky_cc("DE"), 12345, (sky_geo_net_fn)abort, NULL),
		-EINVAL);
	assert_int_equal(sky_geo_country_networks(DB, 0, AF_INET, (sky_geo_net_fn)abort, NULL),
			 -EINVAL);
}

/* ------------------------------------------------------------------ full database */

static int
setup_full(void **state)
{
	struct sky_cfg *cfg = cfg_text("geo: { database: %s, check_interval: 60m }\n", DB);
	struct sky_cfg_err err = {0};

	(void)state;
	geo = sky_geo_create(cfg, &err);
	sky_cfg_free(cfg);
	if (geo == NULL) {
		fprintf(stderr, "test_geo: %s\n", err.msg);
		return -1;
	}
	lf = fopen(DB, "r");
	if (lf == NULL || loc_new(&lctx) != 0 || loc_database_new(lctx, &ldb, lf) != 0)
		return -1;
	nets4 = collect(AF_INET, &n_nets4);
	nets6 = collect(AF_INET6, &n_nets6);
	return sky_geo_register(geo) == 0 ? 0 : -1;
}

static int
teardown_full(void **state)
{
	(void)state;
	sky_ctl_unregister_all();
	sky_geo_destroy(geo);
	geo = NULL;
	free(nets4);
	free(nets6);
	if (ldb != NULL)
		loc_database_unref(ldb);
	if (lctx != NULL)
		loc_unref(lctx);
	if (lf != NULL)
		fclose(lf);
	return 0;
}

struct fixed_case {
	const char *addr;
	const char *country; /* NULL = none */
	const char *network; /* NULL = no network */
	uint8_t flags;
};

static void
test_fixed_addresses(void **state)
{
	/* facts of the Debian 12 database (libloc-database 0~20221029) */
	static const struct fixed_case cases[] = {
		{"8.8.8.8", "US", "8.8.8.0/24", SKY_GEO_F_ANYCAST},
		{"1.1.1.1", "AU", "1.1.1.0/24", SKY_GEO_F_ANYCAST},
		{"1.0.3.1", "CN", "1.0.2.0/23", 0},
		{"10.0.0.1", NULL, NULL, 0},
		{"127.0.0.1", NULL, NULL, 0},
		{"2a00:1450:4001:80b::200e", "IE", "2a00:1450:4001::/48", 0},
		{"::ffff:8.8.8.8", "US", "8.8.8.0/24", SKY_GEO_F_ANYCAST},
		{"fe80::1", NULL, NULL, 0},
	};

	(void)state;
	for (size_t i = 0; i < RTE_DIM(cases); i++) {
		uint8_t a[16];
		int fam = strchr(cases[i].addr, ':') ? AF_INET6 : AF_INET;
		uint16_t cc;
		uint8_t fl;
		char net[64];
		int rc;

		assert_int_equal(inet_pton(fam, cases[i].addr, a), 1);
		rc = sky_geo_lookup(geo, fam, a, &cc, &fl, net, sizeof(net));
		if (cases[i].network == NULL) {
			assert_int_equal(rc, -ENOENT);
			assert_int_equal(cc, 0);
			continue;
		}
		if (rc != 0 || cc != sky_cc(cases[i].country) || fl != cases[i].flags ||
		    strcmp(net, cases[i].network) != 0)
			fail_msg("%s: rc=%d cc=%c%c flags=%x net=%s", cases[i].addr, rc, cc >> 8,
				 cc & 0xff, fl, net);
		check_one(fam, a);
	}
}

/* `location lookup` (the CLI) prints "  Network : CIDR" and "  Country : NAME" per address */
static void
test_location_cli(void **state)
{
	const char *addrs[] = {"8.8.8.8",
			       "1.1.1.1",
			       "9.9.9.9",
			       "185.53.178.9",
			       "41.0.0.1",
			       "200.1.1.1",
			       "2001:4860:4860::8888",
			       "2a02:2e0::1",
			       "2c0f:fb50:4003::1",
			       "240e::1",
			       "10.1.1.1"};
	char cmd[1024], line[512], net[64] = "";
	int seen[16] = {0};
	size_t len, idx = 0, checked = 0;
	FILE *p;

	(void)state;
	len = (size_t)snprintf(cmd, sizeof(cmd), "location --database %s lookup", DB);
	for (size_t i = 0; i < RTE_DIM(addrs); i++)
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " %s", addrs[i]);
	snprintf(cmd + len, sizeof(cmd) - len, " 2>/dev/null");
	p = popen(cmd, "r");
	if (p == NULL)
		skip();
	/* blocks in order: "ADDR:" then indented fields, or "Nothing found for ADDR" */
	for (;;) {
		char *s = fgets(line, sizeof(line), p);
		int end_block = s == NULL || (line[0] != ' ' && idx > 0);

		if (end_block && idx > 0) {
			const char *a = addrs[idx - 1];
			uint8_t b[16];
			int fam = strchr(a, ':') ? AF_INET6 : AF_INET;
			char mine[64];
			uint16_t cc;
			uint8_t fl;

			inet_pton(fam, a, b);
			sky_geo_lookup(geo, fam, b, &cc, &fl, mine, sizeof(mine));
			if (strcmp(mine, net) != 0)
				fail_msg("%s: location lookup says network '%s', geo '%s'", a, net,
					 mine);
			checked++;
			seen[idx - 1] = 1;
			idx = 0;
			net[0] = '\0';
		}
		if (s == NULL)
			break;
		if (line[0] != ' ') {
			for (size_t i = 0; i < RTE_DIM(addrs); i++)
				if (strncmp(line, addrs[i], strlen(addrs[i])) == 0 &&
				    line[strlen(addrs[i])] == ':')
					idx = i + 1;
			continue;
		}
		if (strstr(line, "Network") != NULL && strchr(line, ':') != NULL) {
			char *v = strchr(line, ':') + 1;

			while (*v == ' ')
				v++;
			v[strcspn(v, "\r\n")] = '\0';
			snprintf(net, sizeof(net), "%s", v);
		}
	}
	pclose(p);
	if (checked == 0)
		skip(); /* the CLI is not installed */
	/* "Nothing found for ADDR" goes to stderr: the addresses without a block */
	for (size_t i = 0; i < RTE_DIM(addrs); i++) {
		uint8_t b[16];
		int fam = strchr(addrs[i], ':') ? AF_INET6 : AF_INET;

		if (seen[i])
			continue;
		inet_pton(fam, addrs[i], b);
		if (sky_geo_lookup(geo, fam, b, NULL, NULL, NULL, 0) != -ENOENT)
			fail_msg("%s: location lookup found nothing, geo did", addrs[i]);
		checked++;
	}
	assert_int_equal(checked, RTE_DIM(addrs));
}

static void
test_random_ipv4(void **state)
{
	size_t found = 0;

	(void)state;
	for (int i = 0; i < N_RANDOM; i++) { /* uniform */
		uint32_t v = (uint32_t)rnd();

		found += (size_t)check_one(AF_INET, (uint8_t *)&v);
	}
	for (int i = 0; i < N_RANDOM; i++) { /* inside the database's networks */
		uint8_t a[16];

		draw(&nets4[rnd() % n_nets4], AF_INET, a);
		found += (size_t)check_one(AF_INET, a);
	}
	assert_true(found > N_RANDOM); /* the test looked at real answers */
}

static void
test_random_ipv6(void **state)
{
	size_t found = 0;

	(void)state;
	for (int i = 0; i < N_RANDOM; i++) { /* uniform in 2000::/3 */
		uint8_t a[16];

		for (int b = 0; b < 16; b += 8) {
			uint64_t r = rnd();
			memcpy(a + b, &r, 8);
		}
		a[0] = (uint8_t)(0x20 | (a[0] & 0x1f));
		found += (size_t)check_one(AF_INET6, a);
	}
	for (int i = 0; i < N_RANDOM; i++) { /* inside the database's networks */
		uint8_t a[16];

		draw(&nets6[rnd() % n_nets6], AF_INET6, a);
		found += (size_t)check_one(AF_INET6, a);
	}
	assert_true(found > N_RANDOM);
}

/* networks inside a network of another country, and networks without a country: at the
 * first and last address, and one address outside each edge */
static void
test_nested_edges(void **state)
{
	struct {
		struct netv *v;
		size_t n;
		int fam;
	} f[2] = {{nets4, n_nets4, AF_INET}, {nets6, n_nets6, AF_INET6}};
	size_t nested = 0, no_cc = 0;

	(void)state;
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < f[k].n; i++) {
			struct netv *x = &f[k].v[i];
			uint8_t a[16];

			if (!x->nested && !x->no_cc)
				continue;
			nested += (size_t)x->nested;
			no_cc += (size_t)x->no_cc;
			/* every no-country network, every 4th nested one (time) */
			if (!x->no_cc && (i & 3) != 0)
				continue;
			for (int last = 0; last < 2; last++) {
				edge(x, f[k].fam, last, 0, a);
				assert_int_equal(check_one(f[k].fam, a), 1);
				edge(x, f[k].fam, last, last ? 1 : -1, a);
				check_one(f[k].fam, a);
			}
		}
	}
	/* the database has both kinds, or this test proves nothing */
	assert_true(nested > 1000);
	assert_true(no_cc > 10);
}

/* sky_geo_lookup_burst on meta arrays: both directions, both families, dropped and non-IP
 * packets left alone */
static void
test_burst(void **state)
{
	struct sky_meta m[SKY_BURST * 3];
	struct ref r[SKY_BURST * 3];

	(void)state;
	for (int round = 0; round < 200; round++) {
		unsigned int n = 1 + (unsigned int)(rnd() % RTE_DIM(m));

		memset(m, 0, sizeof(m));
		for (unsigned int i = 0; i < n; i++) {
			uint8_t a[16], other[16];
			int v6 = rnd() & 1;
			int kind = (int)(rnd() % 10);
			int fam = v6 ? AF_INET6 : AF_INET;

			if (kind == 2) { /* IPv6 packet, IPv4-mapped remote: answered as IPv4 */
				uint8_t v4[16];

				draw(&nets4[rnd() % n_nets4], AF_INET, v4);
				memset(a, 0, 16);
				a[10] = 0xff;
				a[11] = 0xff;
				memcpy(a + 12, v4, 4);
				v6 = 1;
				fam = AF_INET6;
			} else if (rnd() & 1) {
				draw(v6 ? &nets6[rnd() % n_nets6] : &nets4[rnd() % n_nets4], fam,
				     a);
			} else {
				draw(&(struct netv){.depth = 0}, fam, a);
			}
			draw(&(struct netv){.depth = 0}, fam, other);
			m[i].dir = (rnd() & 1) ? SKY_DIR_UP : SKY_DIR_DOWN;
			m[i].l3 = v6 ? 6 : 4;
			memcpy(m[i].dir == SKY_DIR_UP ? m[i].dst : m[i].src, a, 16);
			memcpy(m[i].dir == SKY_DIR_UP ? m[i].src : m[i].dst, other, 16);
			ref_lookup(fam, a, &r[i]);
			if (kind == 0) { /* dropped earlier: untouched */
				m[i].verdict = SKY_V_DROP;
				m[i].remote_country = 0xbeef;
			} else if (kind == 1) { /* non-IP */
				m[i].l3 = 0;
				m[i].remote_country = 0xbeef;
			}
		}
		sky_geo_lookup_burst(geo, 1, m, (uint16_t)n);
		for (unsigned int i = 0; i < n; i++) {
			if (!sky_meta_live(&m[i])) {
				assert_int_equal(m[i].remote_country, 0xbeef);
				continue;
			}
			if (m[i].remote_country != r[i].cc || m[i].remote_flags != r[i].flags) {
				char s[INET6_ADDRSTRLEN];

				addr_str(m[i].l3 == 4 ? AF_INET : AF_INET6,
					 sky_meta_remote_addr(&m[i]), s);
				fail_msg("burst: %s (dir %u): cc %04x flags %x, libloc %04x %x", s,
					 m[i].dir, m[i].remote_country, m[i].remote_flags, r[i].cc,
					 r[i].flags);
			}
		}
	}
}

static void
test_commands(void **state)
{
	char *lookup[] = {"geo", "lookup", "8.8.8.8"};
	char *lookup6[] = {"geo", "lookup", "2a00:1450:4001:80b::200e"};
	char *lookup_none[] = {"geo", "lookup", "10.0.0.1"};
	char *lookup_bad[] = {"geo", "lookup", "8.8.8.800"};
	char *lookup_noarg[] = {"geo", "lookup"};
	char *show[] = {"geo", "show"};
	char *show_bad[] = {"geo", "show", "x"};
	json_t *r, *o;
	char *metrics;
	int no_cc_seen = 0;

	(void)state;
	/* failures first */
	r = run_cmd(3, lookup_bad);
	assert_false(cmd_ok(r));
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "8.8.8.800"));
	json_decref(r);
	r = run_cmd(2, lookup_noarg);
	assert_false(cmd_ok(r));
	json_decref(r);
	r = run_cmd(3, show_bad);
	assert_false(cmd_ok(r));
	json_decref(r);

	r = run_ok(3, lookup, &o);
	assert_string_equal(json_string_value(json_object_get(o, "address")), "8.8.8.8");
	assert_string_equal(json_string_value(json_object_get(o, "network")), "8.8.8.0/24");
	assert_string_equal(json_string_value(json_object_get(o, "country")), "US");
	assert_int_equal(json_array_size(json_object_get(o, "flags")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "flags"), 0)),
			    "anycast");
	json_decref(r);

	r = run_ok(3, lookup6, &o);
	assert_string_equal(json_string_value(json_object_get(o, "network")),
			    "2a00:1450:4001::/48");
	assert_string_equal(json_string_value(json_object_get(o, "country")), "IE");
	json_decref(r);

	r = run_ok(3, lookup_none, &o);
	assert_true(json_is_null(json_object_get(o, "network")));
	assert_true(json_is_null(json_object_get(o, "country")));
	json_decref(r);

	/* a network without a country: network shown, country null */
	for (size_t i = 0; i < n_nets4; i++) {
		char a[INET_ADDRSTRLEN];
		char *av[] = {"geo", "lookup", a};

		uint16_t cc = 1;

		if (!nets4[i].no_cc ||
		    sky_geo_lookup(geo, AF_INET, nets4[i].ip, &cc, NULL, NULL, 0) != 0 || cc != 0)
			continue;
		inet_ntop(AF_INET, nets4[i].ip, a, sizeof(a));
		r = run_ok(3, av, &o);
		assert_true(json_is_string(json_object_get(o, "network")));
		assert_true(json_is_null(json_object_get(o, "country")));
		json_decref(r);
		no_cc_seen = 1;
		break;
	}
	assert_true(no_cc_seen);

	r = run_ok(2, show, &o);
	assert_true(json_is_true(json_object_get(o, "enabled")));
	assert_string_equal(json_string_value(json_object_get(o, "database")), DB);
	assert_int_equal(json_integer_value(json_object_get(o, "networks_ipv4")), n_nets4);
	assert_int_equal(json_integer_value(json_object_get(o, "networks_ipv6")), n_nets6);
	assert_true(json_integer_value(json_object_get(o, "memory_bytes")) > (1 << 25));
	assert_string_equal(json_string_value(json_object_get(o, "vendor")), "IPFire Project");
	assert_int_equal(strlen(json_string_value(json_object_get(o, "created_at"))), 20);
	assert_true(json_integer_value(json_object_get(o, "lookups_ipv4")) > 0);
	json_decref(r);

	metrics = sky_metrics_render(NULL);
	assert_non_null(metrics);
	assert_non_null(strstr(metrics, "skygate_geo_networks{family=\"ipv4\"}"));
	assert_non_null(strstr(metrics, "skygate_geo_lookups_ipv4_total{worker=\"1\"}"));
	assert_non_null(strstr(metrics, "skygate_geo_unknown_country_total{worker=\"1\"}"));
	free(metrics);
}

/* DPDK telemetry, through its real socket: /skygate/geo */
static void
test_telemetry(void **state)
{
	char buf[16384];
	json_t *j, *d;
	ssize_t n;

	(void)state;
	n = sky_fx_telemetry_query("/skygate/geo", buf, sizeof(buf));
	assert_true(n > 0);
	j = json_loads(buf, 0, NULL);
	assert_non_null(j);
	d = json_object_get(j, "/skygate/geo");
	if (d == NULL)
		fail_msg("telemetry reply: %s", buf);
	assert_int_equal(json_integer_value(json_object_get(d, "enabled")), 1);
	assert_int_equal(json_integer_value(json_object_get(d, "networks_ipv4")), n_nets4);
	assert_int_equal(json_integer_value(json_object_get(d, "networks_ipv6")), n_nets6);
	assert_string_equal(json_string_value(json_object_get(d, "database")), DB);
	assert_true(json_integer_value(json_object_get(d, "lookups_ipv4")) > 0);
	json_decref(j);
}

/* ---- reload under a reader: the reader keeps getting right answers across the swap */

#define READER_N 64

struct reader {
	struct sky_meta m[READER_N];
	struct ref want[READER_N];
	volatile int stop;
	uint64_t bursts;
	uint64_t wrong;
};

static void *
reader_main(void *arg)
{
	struct reader *rd = arg;

	rte_rcu_qsbr_thread_register(sky_rt.qs, 0);
	rte_rcu_qsbr_thread_online(sky_rt.qs, 0);
	while (!rd->stop) {
		for (unsigned int i = 0; i < READER_N; i++)
			rd->m[i].remote_country = 0xffff;
		sky_geo_lookup_burst(geo, 0, rd->m, READER_N);
		for (unsigned int i = 0; i < READER_N; i++)
			if (rd->m[i].remote_country != rd->want[i].cc)
				rd->wrong++;
		rd->bursts++;
		rte_rcu_qsbr_quiescent(sky_rt.qs, 0);
		usleep(200); /* a reader, not a busy poller: the machine is shared */
	}
	rte_rcu_qsbr_thread_offline(sky_rt.qs, 0);
	rte_rcu_qsbr_thread_unregister(sky_rt.qs, 0);
	return NULL;
}

/* copy DB to path, as a careless update would leave it: written in place */
static void
copy_db(const char *path)
{
	FILE *in = fopen(DB, "r"), *out = fopen(path, "w");
	char buf[1 << 16];
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static void
test_reload(void **state)
{
	char *reload_missing[] = {"geo", "reload", "/nonexistent/location.db"};
	char *reload_trunc[] = {"geo", "reload", TRUNC};
	char *reload_garbage[] = {"geo", "reload", GARBAGE};
	char *reload_corrupt[] = {"geo", "reload", CORRUPT};
	char *reload_two[] = {"geo", "reload", "a", "b"};
	char *reload[] = {"geo", "reload"};
	char *reload_path[] = {"geo", "reload", DB};
	char *show[] = {"geo", "show"};
	char jerr[256], kept[512];
	struct reader *rd = calloc(1, sizeof(*rd));
	pthread_t th;
	uint64_t before, now;
	json_int_t failures;
	json_t *r, *o;
	struct stat st, st_db;

	(void)state;
	assert_non_null(rd);
	/* refused reloads: error names the file, the running table stays */
	write_truncated(TRUNC, 1000000);
	{
		char *const *bad[] = {reload_missing, reload_trunc, reload_garbage, reload_corrupt};
		const char *want[] = {"No such file", TRUNC, GARBAGE, CORRUPT ": corrupt"};

		write_corrupt(CORRUPT);
		for (int i = 0; i < 4; i++) {
			r = run_cmd(3, (char **)bad[i]);
			assert_false(cmd_ok(r));
			assert_non_null(
				strstr(json_string_value(json_object_get(r, "error")), want[i]));
			json_decref(r);
			check_one(AF_INET, (const uint8_t[]){8, 8, 8, 8});
		}
	}
	r = run_cmd(4, reload_two);
	assert_false(cmd_ok(r));
	json_decref(r);
	r = run_cmd(2, show);
	assert_int_equal(json_integer_value(
				 json_object_get(json_object_get(r, "result"), "reload_failures")),
			 4);
	json_decref(r);

	/* a good reload with a worker reading through RCU */
	for (unsigned int i = 0; i < READER_N; i++) {
		int v6 = i & 1;
		uint8_t a[16];

		draw(v6 ? &nets6[rnd() % n_nets6] : &nets4[rnd() % n_nets4],
		     v6 ? AF_INET6 : AF_INET, a);
		rd->m[i].l3 = v6 ? 6 : 4;
		rd->m[i].dir = SKY_DIR_UP;
		memcpy(rd->m[i].dst, a, 16);
		ref_lookup(v6 ? AF_INET6 : AF_INET, a, &rd->want[i]);
	}
	assert_int_equal(sky_rcu_init(1), 0);
	assert_int_equal(pthread_create(&th, NULL, reader_main, rd), 0);
	while (__atomic_load_n(&rd->bursts, __ATOMIC_RELAXED) == 0)
		usleep(1000);
	r = run_cmd(2, reload);
	if (!cmd_ok(r))
		fail_msg("reload: %s", json_string_value(json_object_get(r, "error")));
	json_decref(r);
	before = __atomic_load_n(&rd->bursts, __ATOMIC_RELAXED);
	while (__atomic_load_n(&rd->bursts, __ATOMIC_RELAXED) < before + 5)
		usleep(1000);
	rd->stop = 1;
	pthread_join(th, NULL);
	sky_rcu_fini();
	sky_rcu_init(0);
	assert_int_equal(rd->wrong, 0);
	for (int i = 0; i < 200; i++) { /* the new table answers like libloc */
		uint8_t a[16];

		draw(&nets4[rnd() % n_nets4], AF_INET, a);
		check_one(AF_INET, a);
		draw(&nets6[rnd() % n_nets6], AF_INET6, a);
		check_one(AF_INET6, a);
	}

	/* reload PATH with a state directory: the file is kept there for the journal */
	snprintf(state_dir, sizeof(state_dir), "/tmp/skygate_test_geo_state_%d", (int)getpid());
	mkdir(STATE, 0755);
	if (sky_ctl_journal_open(STATE, jerr, sizeof(jerr)) != 0)
		fail_msg("journal: %s", jerr);
	r = run_cmd(3, reload_path);
	assert_true(cmd_ok(r));
	/* a copy of its own (older journal records name older copies, by SHA-256) */
	snprintf(kept, sizeof(kept), "%s",
		 json_string_value(json_object_get(json_object_get(r, "result"), "database")));
	json_decref(r);
	assert_int_equal(strncmp(kept, state_path("/geo-"), strlen(state_path("/geo-"))), 0);
	assert_int_equal(stat(kept, &st), 0);
	assert_int_equal(stat(DB, &st_db), 0);
	assert_int_equal(st.st_size, st_db.st_size);
	sky_ctl_journal_close();
	/* a restart replays the journal: the kept copy is what gets loaded */
	if (sky_ctl_journal_open(STATE, jerr, sizeof(jerr)) != 0)
		fail_msg("journal: %s", jerr);
	assert_int_equal(sky_ctl_journal_replay(jerr, sizeof(jerr)), 1);
	sky_ctl_journal_close();
	r = run_cmd(2, show);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "result"), "database")), kept);
	json_decref(r);

	/* check_interval: the file replaced by rename (as `location update` does) */
	now = rte_rdtsc() + (1ull << 52); /* past the 60m period */
	sky_periodic_run(now);		  /* unchanged: nothing */
	r = run_cmd(2, show);
	o = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(o, "auto_reloads")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "check_interval_s")), 3600);
	failures = json_integer_value(json_object_get(o, "reload_failures"));
	json_decref(r);
	write_truncated(state_path("/new.db"), 1000000);
	assert_int_equal(rename(state_path("/new.db"), kept), 0);
	sky_periodic_run(now += 1ull << 52); /* refused: the running table stays */
	sky_periodic_run(now += 1ull << 52); /* and the same bad file is not retried */
	r = run_cmd(2, show);
	o = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(o, "auto_reloads")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "reload_failures")), failures + 1);
	json_decref(r);
	check_one(AF_INET, (const uint8_t[]){8, 8, 8, 8});
	copy_db(state_path("/new.db")); /* a good new version */
	assert_int_equal(rename(state_path("/new.db"), kept), 0);
	sky_periodic_run(now += 1ull << 52); /* a good new version: loaded */
	r = run_cmd(2, show);
	o = json_object_get(r, "result");
	assert_int_equal(json_integer_value(json_object_get(o, "auto_reloads")), 1);
	json_decref(r);
	check_one(AF_INET6, (const uint8_t[]){0x2a, 0x00, 0x14, 0x50, 0x40, 0x01, 0x08, 0x0b, 0, 0,
					      0, 0, 0, 0, 0x20, 0x0e});
	unlink(kept);
	unlink(state_path("/journal"));
	unlink(state_path("/journal.tip"));
	unlink(state_path("/new.db"));
	rmdir(STATE);
	r = run_cmd(2, show);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(r, "result"), "reloads")), 4);
	json_decref(r);
	check_one(AF_INET, (const uint8_t[]){1, 1, 1, 1});
	free(rd);
}

/* flags: false and ipv6: false: no flags, IPv6 unknown (IPv4-mapped still answered) */
static void
test_options(void **state)
{
	struct sky_cfg *cfg = cfg_text("geo: { database: %s, flags: false, ipv6: false, "
				       "lookup: scalar }\n",
				       DB);
	struct sky_cfg_err err = {0};
	struct sky_geo *g = sky_geo_create(cfg, &err);
	uint8_t a4[4] = {8, 8, 8, 8}, a6[16], m6[16];
	struct sky_meta m[2];
	uint16_t cc;
	uint8_t fl;

	(void)state;
	if (g == NULL)
		fail_msg("%s", err.msg);
	assert_int_equal(sky_geo_lookup(g, AF_INET, a4, &cc, &fl, NULL, 0), 0);
	assert_int_equal(cc, sky_cc("US"));
	assert_int_equal(fl, 0); /* anycast, but flags are off */
	assert_int_equal(inet_pton(AF_INET6, "2a00:1450:4001:80b::200e", a6), 1);
	assert_int_equal(sky_geo_lookup(g, AF_INET6, a6, &cc, &fl, NULL, 0), -ENOENT);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:8.8.8.8", m6), 1);
	assert_int_equal(sky_geo_lookup(g, AF_INET6, m6, &cc, &fl, NULL, 0), 0);
	assert_int_equal(cc, sky_cc("US"));
	memset(m, 0, sizeof(m));
	m[0].l3 = 6;
	memcpy(m[0].dst, a6, 16);
	m[1].l3 = 6;
	memcpy(m[1].dst, m6, 16);
	sky_geo_lookup_burst(g, 0, m, 2);
	assert_int_equal(m[0].remote_country, 0);
	assert_int_equal(m[1].remote_country, sky_cc("US"));
	assert_int_equal(m[1].remote_flags, 0);
	sky_geo_destroy(g);
	sky_cfg_free(cfg);
}

/* ------------------------------------------------------------------ files that are not files */

/* per process: other checkouts may run this test at the same time */
static char FIFO[64], HUGE[64], LIVE[64], JUNK[64], NOTHING[64];

static void
name_files(void)
{
	int pid = (int)getpid();

	snprintf(FIFO, sizeof(FIFO), "/tmp/skygate_test_geo_%d.fifo", pid);
	/* sparse: 1 GiB + 1 byte, no disk used */
	snprintf(HUGE, sizeof(HUGE), "/tmp/skygate_test_geo_%d_huge.db", pid);
	/* a copy of DB changed under the table */
	snprintf(LIVE, sizeof(LIVE), "/tmp/skygate_test_geo_%d_live.db", pid);
	snprintf(JUNK, sizeof(JUNK), "/tmp/skygate_test_geo_%d_junk.db", pid);
	snprintf(NOTHING, sizeof(NOTHING), "/tmp/skygate_test_geo_%d_empty.db", pid);
}

static void
make_special_files(void)
{
	static const char junk[] = "this is not a location database, just text\n";
	int fd;

	name_files();
	write_file(JUNK, junk, sizeof(junk) - 1);
	write_file(NOTHING, "", 0);
	unlink(FIFO);
	assert_int_equal(mkfifo(FIFO, 0600), 0);
	fd = open(HUGE, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)1024 * 1024 * 1024 + 1), 0);
	close(fd);
}

/* paths that are no database file: refused at once (a FIFO does not block), the path and
 * the reason named; at start (the config) and by `geo reload PATH` */
static const struct {
	const char *path;
	const char *want; /* after "PATH: " */
} not_a_db[] = {
	{FIFO, "a FIFO, not a regular file"},
	{"/tmp", "a directory, not a regular file"},
	{"/dev/zero", "a character device, not a regular file"},
	{"/dev/null", "a character device, not a regular file"},
	{"/nonexistent/location.db", "No such file or directory"},
	{HUGE, "1073741825 bytes, more than the limit of 1073741824"},
	{JUNK, "not a readable location database"},
	{NOTHING, "not a readable location database"},
};

/* msg says "PATH: reason" */
static int
names_path_reason(const char *msg, const char *path, const char *reason)
{
	char want[256];

	snprintf(want, sizeof(want), "%s: %s", path, reason);
	return msg != NULL && strstr(msg, want) != NULL;
}

static void
remove_special_files(void)
{
	unlink(FIFO);
	unlink(HUGE);
	unlink(JUNK);
	unlink(NOTHING);
}

static void
test_config_not_a_file(void **state)
{
	(void)state;
	make_special_files();
	for (size_t i = 0; i < RTE_DIM(not_a_db); i++) {
		struct sky_cfg *cfg = cfg_text("geo: { database: %s }\n", not_a_db[i].path);
		struct sky_cfg_err err = {0};
		double t0 = sky_fx_now_s();
		struct sky_geo *g = sky_geo_create(cfg, &err);

		if (g != NULL)
			fail_msg("%s: accepted", not_a_db[i].path);
		if (!names_path_reason(err.msg, not_a_db[i].path, not_a_db[i].want) ||
		    strstr(err.msg, "test.yaml") == NULL)
			fail_msg("%s: error '%s' does not name '%s'", not_a_db[i].path, err.msg,
				 not_a_db[i].want);
		if (sky_fx_now_s() - t0 > 1.0)
			fail_msg("%s: refused after %.0f ms", not_a_db[i].path,
				 (sky_fx_now_s() - t0) * 1000);
		sky_cfg_free(cfg);
	}
	/* nor does the per-country enumeration (skygate-pktgen) block on a FIFO */
	assert_int_equal(
		sky_geo_country_networks(FIFO, sky_cc("DE"), AF_INET, (sky_geo_net_fn)abort, NULL),
		-EINVAL);
	remove_special_files();
}

static const char *
show_str(const char *key)
{
	static char buf[512];
	char *show[] = {"geo", "show"};
	json_t *r = run_cmd(2, show);
	json_t *v = json_object_get(json_object_get(r, "result"), key);

	if (json_is_string(v))
		snprintf(buf, sizeof(buf), "%s", json_string_value(v));
	else
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	json_decref(r);
	return buf;
}

/* the fixed sample the running table must keep answering like libloc */
static void
check_sample(void)
{
	uint64_t keep = rng;

	rng = 0x9e3779b97f4a7c15ull; /* the same addresses every time */
	check_one(AF_INET, (const uint8_t[]){8, 8, 8, 8});
	check_one(AF_INET, (const uint8_t[]){1, 1, 1, 1});
	for (int i = 0; i < 2000; i++) {
		uint8_t a[16];

		draw(&nets4[rnd() % n_nets4], AF_INET, a);
		check_one(AF_INET, a);
		draw(&nets6[rnd() % n_nets6], AF_INET6, a);
		check_one(AF_INET6, a);
	}
	rng = keep;
}

static void
test_reload_not_a_file(void **state)
{
	char db_before[512], fails_before[32];

	(void)state;
	make_special_files();
	snprintf(db_before, sizeof(db_before), "%s", show_str("database"));
	snprintf(fails_before, sizeof(fails_before), "%s", show_str("reload_failures"));
	for (size_t i = 0; i < RTE_DIM(not_a_db); i++) {
		char *argv[] = {"geo", "reload", (char *)not_a_db[i].path};
		double t0 = sky_fx_now_s();
		json_t *r = run_cmd(3, argv);
		const char *e = json_string_value(json_object_get(r, "error"));

		if (cmd_ok(r) || !names_path_reason(e, not_a_db[i].path, not_a_db[i].want))
			fail_msg("geo reload %s: %s (want '%s')", not_a_db[i].path,
				 e ? e : "accepted", not_a_db[i].want);
		if (sky_fx_now_s() - t0 > 1.0)
			fail_msg("geo reload %s: refused after %.0f ms", not_a_db[i].path,
				 (sky_fx_now_s() - t0) * 1000);
		json_decref(r);
		/* the running table stays */
		check_one(AF_INET, (const uint8_t[]){8, 8, 8, 8});
		assert_string_equal(show_str("database"), db_before);
	}
	assert_int_equal(strtoll(show_str("reload_failures"), NULL, 10),
			 strtoll(fails_before, NULL, 10) + (long long)RTE_DIM(not_a_db));
	remove_special_files();
}

/*
 * The database file truncated, then rewritten with garbage, in place, under the running
 * table: lookups (their network strings come from libloc's view of the file) answer as
 * before and do not fault (SIGBUS when libloc mapped the file itself); reloading the
 * broken file, by hand or by the watch, is refused and the running table stays.
 */
static void
test_file_changed_under(void **state)
{
	static const char garbage[] = "not a location database any more\n";
	char *reload_live[] = {"geo", "reload", NULL};
	char *reload[] = {"geo", "reload"};
	char *reload_db[] = {"geo", "reload", DB};
	uint64_t now = rte_rdtsc() + (1ull << 60);
	long long fails, autos;
	json_t *r;

	(void)state;
	name_files();
	reload_live[2] = LIVE;
	copy_db(LIVE);
	r = run_cmd(3, reload_live);
	if (!cmd_ok(r))
		fail_msg("reload: %s", json_string_value(json_object_get(r, "error")));
	json_decref(r);
	check_sample();
	fails = strtoll(show_str("reload_failures"), NULL, 10);
	autos = strtoll(show_str("auto_reloads"), NULL, 10);

	/* truncated in place */
	assert_int_equal(truncate(LIVE, 0), 0);
	check_sample();
	r = run_cmd(2, reload);
	assert_false(cmd_ok(r));
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), LIVE));
	json_decref(r);
	check_sample();

	/* then rewritten in place with garbage; the watch sees a new version and refuses it */
	write_file(LIVE, garbage, sizeof(garbage) - 1);
	check_sample();
	sky_periodic_run(now);
	sky_periodic_run(now += 1ull << 52);
	assert_int_equal(strtoll(show_str("auto_reloads"), NULL, 10), autos);
	assert_int_equal(strtoll(show_str("reload_failures"), NULL, 10), fails + 2);
	r = run_cmd(2, reload);
	assert_false(cmd_ok(r));
	assert_true(names_path_reason(json_string_value(json_object_get(r, "error")), LIVE,
				      "not a readable location database"));
	json_decref(r);
	check_sample();
	assert_string_equal(show_str("database"), LIVE);

	/* removed: still answering from the copy in memory */
	unlink(LIVE);
	check_sample();
	r = run_cmd(3, reload_db);
	assert_true(cmd_ok(r));
	json_decref(r);
	check_sample();
}

/* sky_geo_country_networks: every network reported looks up to the country */
struct cn_check {
	uint16_t cc;
	size_t n4, n6, bad;
};

static void
cn_fn(void *arg, int family, const uint8_t *addr, unsigned int prefixlen)
{
	struct cn_check *c = arg;
	struct netv x;
	uint8_t a[16];
	uint16_t cc;

	memset(&x, 0, sizeof(x));
	memcpy(x.ip, addr, family == AF_INET ? 4 : 16);
	x.depth = (uint8_t)prefixlen;
	if (family == AF_INET)
		c->n4++;
	else
		c->n6++;
	/* first, last and a random address: cheap enough for every network */
	for (int k = 0; k < 3; k++) {
		if (k < 2)
			edge(&x, family, k, 0, a);
		else
			draw(&x, family, a);
		if (sky_geo_lookup(geo, family, a, &cc, NULL, NULL, 0) != 0 || cc != c->cc)
			c->bad++;
	}
}

static void
test_country_networks(void **state)
{
	static const char *const ccs[] = {"DE", "AU", "BR"};

	(void)state;
	for (size_t i = 0; i < RTE_DIM(ccs); i++) {
		struct cn_check c = {.cc = sky_cc(ccs[i])};
		int n = sky_geo_country_networks(DB, c.cc, AF_UNSPEC, cn_fn, &c);

		assert_true(n > 100);
		assert_int_equal((size_t)n, c.n4 + c.n6);
		assert_true(c.n4 > 0 && c.n6 > 0);
		if (c.bad != 0)
			fail_msg("%s: %zu addresses of its networks look up elsewhere", ccs[i],
				 c.bad);
	}
	{
		struct cn_check c = {.cc = sky_cc("DE")};
		int n = sky_geo_country_networks(DB, c.cc, AF_INET6, cn_fn, &c);

		assert_true(n > 0);
		assert_int_equal(c.n4, 0);
		assert_int_equal(c.bad, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest failures[] = {
		cmocka_unit_test(test_config_failures),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_country_networks_failures),
		cmocka_unit_test(test_config_not_a_file),
	};
	const struct CMUnitTest full[] = {
		cmocka_unit_test(test_fixed_addresses),
		cmocka_unit_test(test_location_cli),
		cmocka_unit_test(test_random_ipv4),
		cmocka_unit_test(test_random_ipv6),
		cmocka_unit_test(test_nested_edges),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_telemetry),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_country_networks),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_reload_not_a_file),
		cmocka_unit_test(test_file_changed_under),
	};
	int rc;

	if (sky_fx_eal_start("test_geo",
			     &(struct sky_fx_eal){.mem_mb = 1024,
						  .telemetry = 1,
						  .extra = "--force-max-simd-bitwidth=256"}) < 0)
		return 1;
	rc = cmocka_run_group_tests_name("geo failures", failures, NULL, NULL);
	rc += cmocka_run_group_tests_name("geo full database", full, setup_full, teardown_full);
	unlink(TRUNC);
	unlink(GARBAGE);
	unlink(EMPTY);
	unlink(CORRUPT);
	sky_fx_eal_stop();
	return rc;
}
