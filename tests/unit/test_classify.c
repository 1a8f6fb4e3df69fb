/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/classify: table-driven rule matching on real sky_meta records (shorthand rules,
 * match: rules whose fields must all match, ports on either side, prefixes on the remote
 * address in both directions, list order = priority, default class), edges of the address
 * space, and `class reload` through the control registry (rules change; names may not).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>

#include "skygate/classify.h"
#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/runtime.h"

#include "fixture.h"

#define MODEL SKY_FX_MODEL_MIN /* tests/common/fixture.h */

/* the four classes of the brief: the standard ones */
static const char brief_classes[] = SKY_FX_CLASSES;

enum { RT, IA, BU, SC };

struct pkt {
	int dir;
	const char *src, *dst;
	uint8_t proto, dscp;
	int ports; /* SKY_MF_PORTS */
	uint16_t sport, dport;
	int expect;
};

#define UP SKY_DIR_UP
#define DN SKY_DIR_DOWN

static const struct pkt brief_pkts[] = {
	/* nothing matches: the default */
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 40000, 40001, BU},
	{UP, "100.64.0.1", "203.0.113.1", 1, 0, 0, 0, 0, BU},	       /* icmp */
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 0, 53, 53, BU},       /* no ports flag */
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 16383, 32768, BU}, /* range edges */
	{DN, "198.51.100.7", "100.64.0.1", 17, 0, 1, 1000, 2000, IA},  /* remote = src */
	{UP, "198.51.100.7", "203.0.113.1", 17, 0, 1, 1000, 2000, BU}, /* sub side only */
	{UP, "2001:db8:1::1", "2001:db9::1", 17, 0, 1, 1000, 2000, BU},
	{UP, "100.64.0.1", "203.0.113.1", 17, 9, 1, 6880, 6890, BU},
	{UP, "100.64.0.1", "203.0.113.1", 132, 0, 1, 6885, 6885, BU}, /* sctp, not udp */
	/* realtime: dscp rule, ports rule on either side */
	{UP, "100.64.0.1", "203.0.113.1", 17, 46, 1, 40000, 40001, RT},
	{UP, "100.64.0.1", "203.0.113.1", 17, 34, 1, 40000, 40001, RT},
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 40000, 53, RT},
	{DN, "203.0.113.1", "100.64.0.1", 17, 0, 1, 5060, 40000, RT},
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 16384, 9, RT},
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 9, 32767, RT},
	{UP, "100.64.0.1", "203.0.113.1", 6, 46, 1, 22, 22, RT}, /* earlier class wins */
	{UP, "100.64.0.1", "203.0.113.1", 1, 46, 0, 0, 0, RT},
	/* interactive: any tcp, ports 22/80/443 for any protocol, remote prefixes */
	{UP, "100.64.0.1", "203.0.113.1", 6, 0, 1, 40000, 8080, IA},
	{UP, "100.64.0.1", "203.0.113.1", 6, 8, 1, 40000, 6885, IA}, /* before scavenger */
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 40000, 443, IA},
	{UP, "100.64.0.1", "198.51.100.255", 17, 0, 1, 40000, 40001, IA},
	{UP, "100.64.0.1", "198.51.100.0", 1, 0, 0, 0, 0, IA},
	{UP, "100.64.0.1", "198.51.101.0", 1, 0, 0, 0, 0, BU},
	{UP, "2001:db9::1", "2001:db8:ffff::1", 17, 0, 1, 1, 2, IA},
	{DN, "2001:db8::", "2001:db9::1", 58, 0, 0, 0, 0, IA},
	/* scavenger: dscp 8, or udp AND ports 6881-6889 */
	{UP, "100.64.0.1", "203.0.113.1", 17, 8, 1, 40000, 40001, SC},
	{UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 40000, 6881, SC},
	{DN, "203.0.113.1", "100.64.0.1", 17, 0, 1, 6889, 40000, SC},
	{UP, "2001:db8:1::1", "2001:db9::1", 17, 0, 1, 6885, 1, SC},
};

/* priority by list order over nested prefixes, edges of both address spaces, a match rule
 * with dscp AND protocol, and a default class in the middle that has rules itself */
static const char edge_classes[] =
	"classes:\n"
	"  - { name: c0, prefixes: [\"10.1.2.0/24\", \"255.255.255.255/32\", \"ffff::/16\"] }\n"
	"  - { name: c1, prefixes: [\"10.0.0.0/8\", \"0.0.0.0/32\", \"::/128\"] }\n"
	"  - { name: c2, default: true, dscp: [63] }\n"
	"  - { name: c3, match: [ { dscp: [10], protocol: [17] }, { prefixes: [\"0.0.0.0/0\"], "
	"ports: [9] } ] }\n"
	"  - { name: c4, prefixes: [\"::/0\"], dscp: [12] }\n";

static const struct pkt edge_pkts[] = {
	{UP, "1.1.1.1", "10.1.2.3", 17, 0, 1, 1, 2, 0},
	{UP, "1.1.1.1", "10.1.3.3", 17, 0, 1, 1, 2, 1},
	{UP, "1.1.1.1", "10.255.255.255", 17, 0, 1, 1, 2, 1},
	{UP, "1.1.1.1", "11.0.0.0", 17, 0, 1, 1, 2, 2},
	{UP, "1.1.1.1", "9.255.255.255", 17, 0, 1, 1, 2, 2},
	{UP, "1.1.1.1", "255.255.255.255", 17, 0, 1, 1, 2, 0},
	{UP, "1.1.1.1", "255.255.255.254", 17, 0, 1, 1, 2, 2},
	{UP, "1.1.1.1", "0.0.0.0", 17, 0, 1, 1, 2, 1},
	{UP, "1.1.1.1", "0.0.0.1", 17, 0, 1, 1, 2, 2},
	{UP, "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 17, 0, 1, 1, 2, 0},
	{UP, "::1", "fffe:ffff::", 17, 0, 1, 1, 2, 4}, /* ::/0 of c4 */
	{UP, "::1", "::", 17, 0, 1, 1, 2, 1},
	{UP, "1.1.1.1", "10.1.2.3", 17, 63, 1, 1, 2, 0}, /* c0 before the default's rule */
	{UP, "1.1.1.1", "12.0.0.1", 17, 63, 1, 1, 2, 2},
	{UP, "1.1.1.1", "12.0.0.1", 17, 10, 1, 1, 2, 3},
	{UP, "1.1.1.1", "12.0.0.1", 6, 10, 1, 1, 2, 2}, /* dscp alone is not enough */
	{UP, "1.1.1.1", "12.0.0.1", 6, 0, 1, 9, 2, 3},	/* 0.0.0.0/0 AND port 9 */
	{UP, "::1", "2001::1", 6, 0, 1, 9, 2, 4},	/* c3 is IPv4 only: c4 */
	{UP, "::1", "2001::1", 6, 12, 1, 7, 2, 4},	/* ::/0 rule */
	{UP, "1.1.1.1", "12.0.0.1", 6, 12, 1, 7, 2, 4}, /* dscp 12 rule alone */
	{UP, "1.1.1.1", "12.0.0.1", 6, 13, 1, 7, 2, 2},
};

static struct sky_meta
mk(const struct pkt *p)
{
	struct sky_meta m;
	int v6 = strchr(p->src, ':') != NULL;

	memset(&m, 0, sizeof(m));
	m.dir = (uint8_t)p->dir;
	m.l3 = v6 ? 6 : 4;
	m.verdict = SKY_V_PASS;
	m.proto = p->proto;
	m.dscp = p->dscp;
	m.flags = p->ports ? SKY_MF_PORTS : 0;
	m.sport = p->sport;
	m.dport = p->dport;
	m.cls = 0xee;
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, p->src, m.src), 1);
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, p->dst, m.dst), 1);
	return m;
}

/* The class model (what lib/subscriber builds its plans on) and the classifier, from one
 * config, as the gateway makes them. */
static struct sky_classifier *
make_cfg(const struct sky_cfg *cfg, struct sky_class_set *cs)
{
	struct sky_cfg_err err = {0};
	struct sky_classifier *c;

	assert_int_equal(sky_class_set_parse(cfg, &err, cs), 0);
	c = sky_classify_create(cfg, cs->n_classes, &err);
	if (c == NULL)
		print_error("%s\n", err.msg);
	assert_non_null(c);
	return c;
}

static struct sky_classifier *
make(const char *classes, struct sky_class_set *cs)
{
	struct sky_cfg_err err;
	struct sky_cfg *cfg = sky_fx_cfg("c.yaml", &err, MODEL "%s", classes);
	struct sky_classifier *c;

	assert_non_null(cfg);
	c = make_cfg(cfg, cs);
	sky_cfg_free(cfg);
	return c;
}

static void
run_table(struct sky_classifier *c, const struct pkt *t, size_t n)
{
	struct sky_meta burst[SKY_BURST];
	size_t nb = 0;

	for (size_t i = 0; i < n; i++) {
		struct sky_meta m = mk(&t[i]);

		sky_classify_burst(c, 0, &m, 1);
		if (m.cls != t[i].expect) {
			print_error("case %zu (%s -> %s proto %u dscp %u ports %u/%u): class %u, "
				    "expected %d\n",
				    i, t[i].src, t[i].dst, t[i].proto, t[i].dscp, t[i].sport,
				    t[i].dport, m.cls, t[i].expect);
			fail();
		}
	}
	/* the same as one burst */
	for (size_t i = 0; i < n && nb < SKY_BURST; i++)
		burst[nb++] = mk(&t[i]);
	sky_classify_burst(c, 0, burst, (uint16_t)nb);
	for (size_t i = 0; i < nb; i++)
		assert_int_equal(burst[i].cls, t[i].expect);
}

static void
test_brief_rules(void **state)
{
	struct sky_class_set s;
	struct sky_classifier *c = make(brief_classes, &s);
	struct sky_meta m[2];

	(void)state;
	run_table(c, brief_pkts, sizeof(brief_pkts) / sizeof(brief_pkts[0]));
	/* dropped and non-IP packets are left alone */
	m[0] = mk(&brief_pkts[9]);
	sky_meta_drop(&m[0], SKY_DROP_POLICY);
	m[1] = mk(&brief_pkts[9]);
	m[1].l3 = 0;
	sky_classify_burst(c, 0, m, 2);
	assert_int_equal(m[0].cls, 0xee);
	assert_int_equal(m[1].cls, 0xee);
	sky_classify_destroy(c);
	sky_class_set_free(&s);
}

static void
test_edges(void **state)
{
	struct sky_class_set s;
	struct sky_classifier *c = make(edge_classes, &s);

	(void)state;
	run_table(c, edge_pkts, sizeof(edge_pkts) / sizeof(edge_pkts[0]));
	sky_classify_destroy(c);
	sky_class_set_free(&s);
}

static void
test_no_classes(void **state)
{
	struct sky_class_set s;
	struct sky_classifier *c = make("", &s);
	struct pkt p = {UP, "1.1.1.1", "2.2.2.2", 6, 46, 1, 53, 53, 0};

	(void)state;
	assert_int_equal(s.n_classes, 1);
	assert_string_equal(s.cls[0].name, "default");
	run_table(c, &p, 1);
	sky_classify_destroy(c);
	sky_class_set_free(&s);
}

static json_t *
run(const char *w0, const char *w1)
{
	char a[32], b[32], *argv[2] = {a, b};

	snprintf(a, sizeof(a), "%s", w0);
	snprintf(b, sizeof(b), "%s", w1);
	return sky_ctl_dispatch_argv(2, argv, 0, 0, 0);
}

static void
write_cfg(const char *path, const char *classes)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, MODEL "%s", classes);
	fclose(f);
}

/* The brief rules with dscp 46 moved from realtime to scavenger: names and order kept. */
static const char alt_classes[] =
	"classes: [ { name: realtime, dscp: [34] }, { name: interactive, protocol: [tcp] }, "
	"{ name: bulk, default: true }, { name: scavenger, dscp: [8, 46] } ]\n";

/* A config file (path: a mkstemp template) with classes, and the classifier made from it. */
static struct sky_classifier *
make_file(char *path, const char *classes, struct sky_class_set *cs)
{
	struct sky_cfg_err err = {0};
	struct sky_classifier *c;
	struct sky_cfg *cfg;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_cfg(path, classes);
	cfg = sky_cfg_load(path, &err);
	assert_non_null(cfg);
	c = make_cfg(cfg, cs);
	sky_cfg_free(cfg);
	return c;
}

/* `class reload` refuses these (rules stay): a renamed class, a class less, a bad value */
static const struct {
	const char *classes;
	const char *error; /* in the reply's error */
} refused[] = {
	{"classes: [ { name: rt, dscp: [46] }, { name: interactive, dscp: [1] }, "
	 "{ name: bulk, default: true }, { name: scavenger, dscp: [8] } ]\n",
	 "class 0 is 'rt', running 'realtime'"},
	{"classes: [ { name: realtime, dscp: [46] }, { name: bulk, default: true } ]\n",
	 "2 classes"},
	{"classes: [ { name: realtime, dscp: [99] } ]\n", "dscp '99'"},
};

static void
test_reload(void **state)
{
	char path[] = "/tmp/test_classify.XXXXXX";
	struct sky_class_set s;
	struct sky_classifier *c = make_file(path, brief_classes, &s);
	struct pkt dscp46 = {UP, "100.64.0.1", "203.0.113.1", 17, 46, 1, 40000, 40001, RT};
	json_t *r;
	const char *e;

	(void)state;
	sky_ctl_unregister_all();
	assert_int_equal(sky_classify_register(c, path), 0);
	run_table(c, &dscp46, 1);

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		write_cfg(path, refused[i].classes);
		r = run("class", "reload");
		e = json_string_value(json_object_get(r, "error"));
		assert_non_null(e);
		assert_non_null(strstr(e, refused[i].error));
		json_decref(r);
	}
	run_table(c, brief_pkts, sizeof(brief_pkts) / sizeof(brief_pkts[0]));

	/* accepted: dscp 46 now scavenger */
	write_cfg(path, alt_classes);
	r = run("class", "reload");
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	dscp46.expect = SC;
	run_table(c, &dscp46, 1);
	r = run("class", "list");
	assert_int_equal(json_array_size(json_object_get(r, "result")), 4);
	json_decref(r);

	sky_ctl_unregister_all();
	sky_classify_destroy(c);
	sky_class_set_free(&s);
	unlink(path);
}

/* `class reload` while a worker classifies: every packet sees the old rules or the new
 * ones, never freed memory (run under ASan too) */
static volatile int stop_reader;
static uint64_t reader_bursts, reader_bad;

static int
cls_reader(void *arg)
{
	struct sky_classifier *c = arg;
	struct pkt p[2] = {{UP, "100.64.0.1", "203.0.113.1", 17, 46, 1, 1, 2, RT},
			   {UP, "100.64.0.1", "203.0.113.1", 17, 0, 1, 40000, 40001, BU}};
	struct sky_meta m[2];

	rte_rcu_qsbr_thread_register(sky_rt.qs, 0);
	rte_rcu_qsbr_thread_online(sky_rt.qs, 0);
	while (!stop_reader) {
		m[0] = mk(&p[0]);
		m[1] = mk(&p[1]);
		sky_classify_burst(c, 0, m, 2);
		/* dscp 46 is realtime in one rule set, scavenger in the other */
		if ((m[0].cls != RT && m[0].cls != SC) || m[1].cls != BU)
			reader_bad++;
		reader_bursts++;
		rte_rcu_qsbr_quiescent(sky_rt.qs, 0);
	}
	rte_rcu_qsbr_thread_offline(sky_rt.qs, 0);
	rte_rcu_qsbr_thread_unregister(sky_rt.qs, 0);
	return 0;
}

static void
test_reload_under_reader(void **state)
{
	char path[] = "/tmp/test_classify.XXXXXX";
	unsigned int lcore = rte_get_next_lcore(-1, 1, 0);
	struct sky_class_set s;
	struct sky_classifier *c;

	(void)state;
	if (lcore >= RTE_MAX_LCORE)
		skip();
	c = make_file(path, brief_classes, &s);
	assert_int_equal(sky_rcu_init(1), 0);
	stop_reader = 0;
	reader_bursts = reader_bad = 0;
	assert_int_equal(rte_eal_remote_launch(cls_reader, c, lcore), 0);
	for (int k = 0; k < 60; k++) {
		char e[600];

		write_cfg(path, k & 1 ? brief_classes : alt_classes);
		assert_int_equal(sky_classify_reload(c, path, e, sizeof(e)), 0);
	}
	stop_reader = 1;
	rte_eal_wait_lcore(lcore);
	print_message("reader: %" PRIu64 " bursts over 60 reloads, %" PRIu64 " wrong\n",
		      reader_bursts, reader_bad);
	assert_true(reader_bursts > 0);
	assert_int_equal(reader_bad, 0);
	sky_rcu_fini();
	sky_classify_destroy(c);
	sky_class_set_free(&s);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_brief_rules),	    cmocka_unit_test(test_edges),
		cmocka_unit_test(test_no_classes),	    cmocka_unit_test(test_reload),
		cmocka_unit_test(test_reload_under_reader),
	};
	int rc;

	if (sky_fx_eal_start("test_classify",
			     &(struct sky_fx_eal){.lcores = "0-1", .skygate_log = "warning"}) < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	sky_fx_eal_stop();
	return rc;
}
