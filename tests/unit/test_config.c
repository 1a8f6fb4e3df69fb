/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/config: YAML tree, line numbers and paths, refused constructs, unit parsers, typed
 * getters and their messages. Table-driven, failure cases first.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "skygate/config.h"
#include "skygate/meta.h"

#include "fixture.h"

#define NAME "t.yaml"

static struct sky_cfg *
load_ok(const char *text)
{
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg = sky_cfg_load_string(NAME, text, &err);

	if (cfg == NULL)
		print_error("unexpected failure: %s\ninput:\n%s\n", err.msg, text);
	assert_non_null(cfg);
	assert_int_equal(err.failed, 0);
	return cfg;
}

/* ------------------------------------------------------------------ refused input */

struct refuse_case {
	const char *text;
	const char *msg; /* exact message, or a prefix when it ends with '*' */
};

static void
check_msg(const char *got, const char *want, const char *input)
{
	size_t n = strlen(want);

	if (n > 0 && want[n - 1] == '*') {
		if (strncmp(got, want, n - 1) != 0) {
			print_error("input: %s\nwant prefix: %.*s\ngot:         %s\n", input,
				    (int)n - 1, want, got);
			fail();
		}
		return;
	}
	if (strcmp(got, want) != 0) {
		print_error("input: %s\nwant: %s\ngot:  %s\n", input, want, got);
		fail();
	}
}

static const struct refuse_case syntax_cases[] = {
	/* scanner: a value where none may start */
	{"a: b: c\n", NAME ":1:5: mapping values are not allowed in this context"},
	{"a: b\n  c: d\n", NAME ":2:4: mapping values are not allowed in this context"},
	/* parser: unclosed flow collections */
	{"a: [1, 2\n", NAME ":2:1: did not find expected ',' or ']' (while parsing a flow sequence "
			    "at line 1, column 4)"},
	{"a: {b: 1\n", NAME ":2:1: did not find expected ',' or '}' (while parsing a flow mapping "
			    "at line 1, column 4)"},
	/* scanner: unterminated quotes */
	{"a: \"abc\n", NAME ":2:1: found unexpected end of stream (while scanning a quoted scalar "
			    "at line 1, column 4)"},
	{"a: 'x\n", NAME ":2:1: found unexpected end of stream (while scanning a quoted scalar at "
			 "line 1, column 4)"},
	/* parser: bad indentation, mixed block styles */
	{"a:\n  b: 1\n c: 2\n", NAME
	 ":3:2: did not find expected key (while parsing a block mapping at line 1, column 1)"},
	{"a:\n  - 1\n  b: 2\n", NAME ":3:3: did not find expected '-' indicator (while parsing a "
				     "block collection at line 2, column 3)"},
	{"a: 1\n- b\n", NAME
	 ":2:1: did not find expected key (while parsing a block mapping at line 1, column 1)"},
	/* scanner: tabs and reserved indicators */
	{"a:\n\tb: 1\n", NAME ":2:1: found character that cannot start any token (while scanning "
			      "for the next token at line 2, column 1)"},
	{"a: @x\n", NAME ":1:4: found character that cannot start any token*"},
	{"a: `x\n", NAME ":1:4: found character that cannot start any token*"},
	/* scanner: escapes */
	{"a: \"\\q\"\n", NAME ":1:5: found unknown escape character (while parsing a quoted scalar "
			      "at line 1, column 4)"},
	/* reader: not UTF-8 text */
	{"a: \xff\n", NAME ":1:4: invalid leading UTF-8 octet (byte 0xff): a config is UTF-8 text"},
	{"ok: 1\nb: \x01\n",
	 NAME ":2:4: control characters are not allowed (byte 0x01): a config is UTF-8 text"},
	{"a: \xc3\n",
	 NAME ":1:5: invalid trailing UTF-8 octet (byte 0x0a): a config is UTF-8 text"},
	{"a: \xc3", NAME ":1:4: incomplete UTF-8 octet sequence*"},
};

static const struct refuse_case plain_cases[] = {
	/* duplicate keys: both lines named */
	{"a: 1\nb: 2\na: 3\n", NAME ":3: a: duplicate key (first at line 1)"},
	{"plans:\n  basic:\n    down: 1Mbit\n    up: 1Mbit\n    down: 2Mbit\n",
	 NAME ":5: plans.basic.down: duplicate key (first at line 3)"},
	{"a: {b: 1, b: 2}\n", NAME ":1: a.b: duplicate key (first at line 1)"},
	{"a:\n  b:\n    - {c: 1}\n    - {c: 1, c: 2}\n",
	 NAME ":4: a.b[1].c: duplicate key (first at line 4)"},
	{"? a\n? a\n", NAME ":2: a: duplicate key (first at line 1)"},
	/* anchors, aliases, tags, directives */
	{"a: &x 1\nb: *x\n",
	 NAME ":1: a: anchor '&x' not allowed: write values out in full (keep configs plain)"},
	{"a: 1\nb: *x\n",
	 NAME ":2: alias '*x' not allowed: write values out in full (keep configs plain)"},
	{"x: [1, &a 2]\n",
	 NAME ":1: x[1]: anchor '&a' not allowed: write values out in full (keep configs plain)"},
	{"m:\n  &k a: 1\n",
	 NAME ":2: m: anchor '&k' not allowed: write values out in full (keep configs plain)"},
	{"a: !!str 1\n",
	 NAME ":1: a: tag '!!str' not allowed: values are typed by their key (keep configs plain)"},
	{"a: !!map {}\n",
	 NAME ":1: a: tag '!!map' not allowed: values are typed by their key (keep configs plain)"},
	{"a: !foo 1\n",
	 NAME ":1: a: tag '!foo' not allowed: values are typed by their key (keep configs plain)"},
	{"%TAG !e! tag:e.com:\n---\na: 1\n",
	 NAME ":1: %TAG directive not allowed (keep configs plain)"},
	/* one document only */
	{"a: 1\n---\nb: 2\n", NAME ":2: a second document ('---'): a config is one document"},
	{"a: 1\n---\n", NAME ":2: a second document ('---'): a config is one document"},
	/* the root is a map */
	{"- 1\n- 2\n",
	 NAME ":1: the top level must be a map of sections (eal:, ports:, ...), not a list"},
	{"\n\nhello\n", NAME
	 ":3: the top level must be a map of sections (eal:, ports:, ...), not a single value"},
	{"[]\n",
	 NAME ":1: the top level must be a map of sections (eal:, ports:, ...), not a list"},
	/* keys are plain words */
	{"? {a: 1}\n: x\n", NAME ":1: a key must be a plain word, not a map"},
	{"m:\n  ? [1]\n  : 2\n", NAME ":2: m: a key must be a plain word, not a list"},
	{"\"\": 1\n", NAME ":1: empty key"},
	{"m: {? : 1}\n", NAME ":1: m: empty key"},
	/* NUL through an escape would silently cut a C string */
	{"a: \"x\\0y\"\n", NAME ":1: a: NUL character in a value"},
	{"\"k\\0\": 1\n", NAME ":1: NUL character in a key"},
};

static void
run_refuse(const struct refuse_case *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg = sky_cfg_load_string(NAME, c[i].text, &err);

		if (cfg != NULL)
			print_error("accepted: %s\n", c[i].text);
		assert_null(cfg);
		assert_int_equal(err.failed, 1);
		check_msg(err.msg, c[i].msg, c[i].text);
	}
}

static void
test_syntax_errors(void **state)
{
	run_refuse(syntax_cases, sizeof(syntax_cases) / sizeof(syntax_cases[0]));
}

static void
test_refused_constructs(void **state)
{
	run_refuse(plain_cases, sizeof(plain_cases) / sizeof(plain_cases[0]));
}

static void
nested(char *text, int levels)
{
	int i, n = sprintf(text, "a: ");

	for (i = 0; i < levels; i++)
		text[n++] = '[';
	for (i = 0; i < levels; i++)
		text[n++] = ']';
	strcpy(text + n, "\n");
}

static void
test_depth_limit(void **state)
{
	char text[512];
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;

	/* 65 nested lists below the root map: one too many */
	nested(text, 65);
	cfg = sky_cfg_load_string(NAME, text, &err);
	assert_null(cfg);
	check_msg(err.msg, NAME ":1: a[0][0][0]*", text);
	assert_non_null(strstr(err.msg, "[0]: nested deeper than 64 levels"));

	/* 64 is fine */
	nested(text, 64);
	cfg = load_ok(text);
	sky_cfg_free(cfg);
}

/* ------------------------------------------------------------------ empty documents */

static void
test_empty_is_empty_map(void **state)
{
	static const char *const texts[] = {"",	   "\n\n",	 "# only a comment\n", "---\n",
					    "~\n", "---\n...\n", "%YAML 1.1\n---\n"};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct sky_cfg *cfg = load_ok(texts[i]);

		assert_int_equal(sky_cfg_type(cfg->root), SKY_CFG_MAP);
		assert_int_equal(sky_cfg_len(cfg->root), 0);
		assert_string_equal(sky_cfg_path(cfg->root), "");
		assert_null(sky_cfg_get(cfg->root, "eal"));
		assert_null(sky_cfg_at(cfg->root, 0));
		assert_null(sky_cfg_key_at(cfg->root, 0));
		assert_string_equal(cfg->file, NAME);
		sky_cfg_free(cfg);
	}
}

/* Forms that are plain enough: each gives key b with value and line as listed. */
static void
test_accepted_forms(void **state)
{
	static const struct {
		const char *text;
		const char *value;
		unsigned int line;
	} cases[] = {
		{"a: 1\r\nb: x\r\n", "x", 2}, /* CRLF */
		{"\xef\xbb\xbf"
		 "a: 1\nb: x\n",
		 "x", 2},				       /* UTF-8 byte order mark */
		{"%YAML 1.1\n---\na: 1\nb: x\n...\n", "x", 4}, /* directive, end marker */
		{"# c\n\n  # c\nb: x # trailing comment\n", "x", 4},
		{"{a: 1, b: x}\n", "x", 1}, /* flow root */
		{"b: 'it''s'\n", "it's", 1},
		{"b: \"caf\\u00e9\"\n", "caf\xc3\xa9", 1},
		{"b: >\n  folded\n  text\n", "folded text\n", 1},
		{"a:\n  - 1\nb:\n  x\n", "x", 3}, /* value on the next line: key's line */
		{"b: no\n", "no", 1},		  /* stays text: no YAML typing */
		{"b: 0o17\n", "0o17", 1},
		{"b: ~x\n", "~x", 1},
		{"b: ~\n", "", 1}, /* null reads as "" */
		{"b: NULL\n", "", 1},
		{"b: \"~\"\n", "~", 1}, /* quoted: text */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_cfg *cfg = load_ok(cases[i].text);
		const struct sky_cfg_node *b = sky_cfg_get(cfg->root, "b");

		assert_non_null(b);
		assert_string_equal(sky_cfg_str(b), cases[i].value);
		assert_int_equal(sky_cfg_line(b), cases[i].line);
		sky_cfg_free(cfg);
	}
}

/* ------------------------------------------------------------------ tree, paths, lines */

static const char tree_text[] = "# skygate test config\n"			      /* 1 */
				"eal: [\"-l\", \"0-1\"]\n"			      /* 2 */
				"workers: 1\n"					      /* 3 */
				"ports:\n"					      /* 4 */
				"  - { name: sat0, role: uplink, peer: net0,\n"	      /* 5 */
				"      device: \"net_memif0,role=server\" }\n"	      /* 6 */
				"  - name: net0\n"				      /* 7 */
				"    device: net_null0\n"			      /* 8 */
				"plans:\n"					      /* 9 */
				"  basic:\n"					      /* 10 */
				"    down: 50Mbit\n"				      /* 11 */
				"    up:\n"					      /* 12 */
				"policy:\n"					      /* 13 */
				"  maps: { blocked: { RU: 1, \"10.0.0.0/8\": 2 } }\n" /* 14 */
				"classes:\n"					      /* 15 */
				"  - [ 46, [ 53, 5060 ] ]\n"			      /* 16 */
				"text: |\n"					      /* 17 */
				"  two\n"					      /* 18 */
				"  lines\n"					      /* 19 */
				"quoted: ''\n";					      /* 20 */

struct walk_row {
	const char *path;
	unsigned int line;
	enum sky_cfg_type type;
	const char *str; /* scalars */
};

/* Every node in document order, as a depth-first walk yields it. */
static const struct walk_row tree_rows[] = {
	{"", 2, SKY_CFG_MAP, NULL},
	{"eal", 2, SKY_CFG_SEQ, NULL},
	{"eal[0]", 2, SKY_CFG_SCALAR, "-l"},
	{"eal[1]", 2, SKY_CFG_SCALAR, "0-1"},
	{"workers", 3, SKY_CFG_SCALAR, "1"},
	{"ports", 4, SKY_CFG_SEQ, NULL},
	{"ports[0]", 5, SKY_CFG_MAP, NULL},
	{"ports[0].name", 5, SKY_CFG_SCALAR, "sat0"},
	{"ports[0].role", 5, SKY_CFG_SCALAR, "uplink"},
	{"ports[0].peer", 5, SKY_CFG_SCALAR, "net0"},
	{"ports[0].device", 6, SKY_CFG_SCALAR, "net_memif0,role=server"},
	{"ports[1]", 7, SKY_CFG_MAP, NULL},
	{"ports[1].name", 7, SKY_CFG_SCALAR, "net0"},
	{"ports[1].device", 8, SKY_CFG_SCALAR, "net_null0"},
	{"plans", 9, SKY_CFG_MAP, NULL},
	{"plans.basic", 10, SKY_CFG_MAP, NULL},
	{"plans.basic.down", 11, SKY_CFG_SCALAR, "50Mbit"},
	{"plans.basic.up", 12, SKY_CFG_SCALAR, ""},
	{"policy", 13, SKY_CFG_MAP, NULL},
	{"policy.maps", 14, SKY_CFG_MAP, NULL},
	{"policy.maps.blocked", 14, SKY_CFG_MAP, NULL},
	{"policy.maps.blocked.RU", 14, SKY_CFG_SCALAR, "1"},
	{"policy.maps.blocked[\"10.0.0.0/8\"]", 14, SKY_CFG_SCALAR, "2"},
	{"classes", 15, SKY_CFG_SEQ, NULL},
	{"classes[0]", 16, SKY_CFG_SEQ, NULL},
	{"classes[0][0]", 16, SKY_CFG_SCALAR, "46"},
	{"classes[0][1]", 16, SKY_CFG_SEQ, NULL},
	{"classes[0][1][0]", 16, SKY_CFG_SCALAR, "53"},
	{"classes[0][1][1]", 16, SKY_CFG_SCALAR, "5060"},
	{"text", 17, SKY_CFG_SCALAR, "two\nlines\n"},
	{"quoted", 20, SKY_CFG_SCALAR, ""},
};

static void
walk(const struct sky_cfg_node *n, const struct walk_row *rows, size_t n_rows, size_t *i)
{
	size_t k;

	assert_true(*i < n_rows);
	if (strcmp(sky_cfg_path(n), rows[*i].path) != 0 || sky_cfg_line(n) != rows[*i].line)
		print_error("row %zu: want %s line %u, got %s line %u\n", *i, rows[*i].path,
			    rows[*i].line, sky_cfg_path(n), sky_cfg_line(n));
	assert_string_equal(sky_cfg_path(n), rows[*i].path);
	assert_int_equal(sky_cfg_line(n), rows[*i].line);
	assert_int_equal(sky_cfg_type(n), rows[*i].type);
	if (rows[*i].type == SKY_CFG_SCALAR) {
		assert_string_equal(sky_cfg_str(n), rows[*i].str);
		assert_int_equal(sky_cfg_len(n), 0);
		assert_null(sky_cfg_at(n, 0));
	} else {
		assert_null(sky_cfg_str(n));
	}
	(*i)++;
	for (k = 0; k < sky_cfg_len(n); k++) {
		if (sky_cfg_type(n) == SKY_CFG_MAP) {
			/* key_at and get agree with at */
			assert_ptr_equal(sky_cfg_get(n, sky_cfg_key_at(n, k)), sky_cfg_at(n, k));
		} else {
			assert_null(sky_cfg_key_at(n, k));
		}
		walk(sky_cfg_at(n, k), rows, n_rows, i);
	}
	assert_null(sky_cfg_at(n, sky_cfg_len(n)));
}

static void
test_tree_paths_lines(void **state)
{
	struct sky_cfg *cfg = load_ok(tree_text);
	size_t i = 0, n = sizeof(tree_rows) / sizeof(tree_rows[0]);
	const struct sky_cfg_node *p;

	walk(cfg->root, tree_rows, n, &i);
	assert_int_equal(i, n);

	/* keys in file order; lookups by key */
	assert_string_equal(sky_cfg_key_at(cfg->root, 0), "eal");
	assert_string_equal(sky_cfg_key_at(cfg->root, 7), "quoted");
	assert_null(sky_cfg_key_at(cfg->root, 8));
	p = sky_cfg_at(sky_cfg_get(cfg->root, "ports"), 1);
	assert_string_equal(sky_cfg_str(sky_cfg_get(p, "device")), "net_null0");
	assert_null(sky_cfg_get(p, "peer"));
	assert_null(sky_cfg_get(sky_cfg_get(cfg->root, "ports"), "name")); /* not a map */
	assert_null(sky_cfg_get(NULL, "x"));
	assert_null(sky_cfg_get(cfg->root, NULL));
	sky_cfg_free(cfg);
}

/* Big maps are indexed: every key found, a late duplicate caught, order kept. */
static void
test_big_map(void **state)
{
	const unsigned int n = 5000;
	size_t len = 40 * (size_t)n + 64, off = 0;
	char *text = malloc(len), key[32];
	struct sky_cfg_err err = {0};
	const struct sky_cfg_node *m;
	struct sky_cfg *cfg;
	unsigned int i;

	assert_non_null(text);
	off += (size_t)snprintf(text + off, len - off, "m:\n");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(text + off, len - off, "  \"10.%u.%u.0/24\": %u\n", i >> 8,
					i & 255, i);
	cfg = load_ok(text);
	m = sky_cfg_get(cfg->root, "m");
	assert_int_equal(sky_cfg_len(m), n);
	for (i = 0; i < n; i++) {
		uint64_t v = 0;

		snprintf(key, sizeof(key), "10.%u.%u.0/24", i >> 8, i & 255);
		assert_string_equal(sky_cfg_key_at(m, i), key);
		assert_int_equal(sky_cfg_get_u64(&err, cfg, m, key, true, 0, n, &v), 0);
		assert_int_equal(v, i);
		assert_int_equal(sky_cfg_line(sky_cfg_get(m, key)), i + 2);
	}
	assert_null(sky_cfg_get(m, "10.255.255.0/24"));
	sky_cfg_free(cfg);

	/* the same key again at the end: refused, naming both lines */
	snprintf(text + off, len - off, "  \"10.0.17.0/24\": 1\n");
	cfg = sky_cfg_load_string(NAME, text, &err);
	assert_null(cfg);
	assert_string_equal(err.msg,
			    NAME ":5002: m[\"10.0.17.0/24\"]: duplicate key (first at line 19)");
	free(text);
}

/* ------------------------------------------------------------------ unit parsers */

enum kind { RATE, SIZE, TIME };

struct unit_case {
	enum kind kind;
	const char *s;
	int rc;
	uint64_t v;
	const char *why; /* substring of the reason for failures */
};

static const struct unit_case unit_cases[] = {
	/* --- failures --- */
	{RATE, "", -EINVAL, 0, "empty"},
	{RATE, "-1Mbit", -EINVAL, 0, "negative"},
	{RATE, "+1Mbit", -EINVAL, 0, "expected a number"},
	{RATE, "Mbit", -EINVAL, 0, "expected a number"},
	{RATE, " 1Mbit", -EINVAL, 0, "expected a number"},
	{RATE, "1Mbit ", -EINVAL, 0, "bit, kbit, Mbit"},
	{RATE, "1  Mbit", -EINVAL, 0, "bit, kbit, Mbit"},
	{RATE, "50Mbt", -EINVAL, 0, "expected a number with a unit: bit, kbit, Mbit, Gbit, Tbit"},
	{RATE, "1.Gbit", -EINVAL, 0, "expected a number"},
	{RATE, ".5Gbit", -EINVAL, 0, "expected a number"},
	{RATE, "1.2.3Gbit", -EINVAL, 0, "bit, kbit"},
	{RATE, "1e9", -EINVAL, 0, "bit, kbit"},
	{RATE, "0x10", -EINVAL, 0, "bit, kbit"},
	{RATE, "100MB", -EINVAL, 0, "rates are in bits per second"},
	{RATE, "100MiB", -EINVAL, 0, "rates are in bits per second"},
	{RATE, "100B", -EINVAL, 0, "rates are in bits per second"},
	{RATE, "100MBps", -EINVAL, 0, "rates are in bits per second"},
	{RATE, "100mbit", -EINVAL, 0, "case-sensitive"},
	{RATE, "100gbps", -EINVAL, 0, "case-sensitive"},
	{RATE, "100MBIT", -EINVAL, 0, "bit, kbit"},
	{RATE, "1.5bit", -EINVAL, 0, "not a whole number of bit/s"},
	{RATE, "1.0001kbit", -EINVAL, 0, "not a whole number"},
	{RATE, "1.0000000000000000001Tbit", -EINVAL, 0, "too many decimal places"},
	{RATE, "18446744073709551616", -ERANGE, 0, "too large"},
	{RATE, "18446744073709552Kbit", -ERANGE, 0, "too large"},
	{RATE, "18446744073709551615.5Mbit", -ERANGE, 0, "too large"},
	{RATE, "18446745Tbit", -ERANGE, 0, "too large"},
	{SIZE, "", -EINVAL, 0, "empty"},
	{SIZE, "-5KB", -EINVAL, 0, "negative"},
	{SIZE, "64Kb", -EINVAL, 0, "sizes are in bytes"},
	{SIZE, "64kbit", -EINVAL, 0, "sizes are in bytes"},
	{SIZE, "64b", -EINVAL, 0, "sizes are in bytes"},
	{SIZE, "64K", -EINVAL, 0, "B, KB, MB, GB, KiB, MiB, GiB"},
	{SIZE, "64kib", -EINVAL, 0, "KiB"},
	{SIZE, "1KBB", -EINVAL, 0, "KiB"},
	{SIZE, "0.1KiB", -EINVAL, 0, "not a whole number of bytes"},
	{SIZE, "1.5B", -EINVAL, 0, "not a whole number of bytes"},
	{SIZE, "17179869184GiB", -ERANGE, 0, "too large"},
	{SIZE, "99999999999999999999", -ERANGE, 0, "too large"},
	{TIME, "", -EINVAL, 0, "empty"},
	{TIME, "-1ms", -EINVAL, 0, "negative"},
	{TIME, "10ns", -EINVAL, 0, "us, ms, s, m"},
	{TIME, "10sec", -EINVAL, 0, "us, ms, s, m"},
	{TIME, "10MS", -EINVAL, 0, "us, ms, s, m"},
	{TIME, "1h", -EINVAL, 0, "us, ms, s, m"},
	{TIME, "0.5us", -EINVAL, 0, "not a whole number of microseconds"},
	{TIME, "1.0005", -EINVAL, 0, "not a whole number of microseconds"},
	{TIME, "307445734561825861m", -ERANGE, 0, "too large"},
	{TIME, "18446744073709552", -ERANGE, 0, "too large"},
	/* --- good values --- */
	{RATE, "0", 0, 0, NULL},
	{RATE, "800", 0, 800, NULL},
	{RATE, "800bit", 0, 800, NULL},
	{RATE, "64kbit", 0, 64000, NULL},
	{RATE, "64Kbit", 0, 64000, NULL},
	{RATE, "100Mbit", 0, 100000000, NULL},
	{RATE, "100 Mbit", 0, 100000000, NULL},
	{RATE, "100Mbit/s", 0, 100000000, NULL},
	{RATE, "2Gbit", 0, 2000000000ULL, NULL},
	{RATE, "1.5Gbit", 0, 1500000000ULL, NULL},
	{RATE, "0.1Gbit", 0, 100000000ULL, NULL},
	{RATE, "2.125kbit", 0, 2125, NULL},
	{RATE, "1.10000000000000000000000Gbit", 0, 1100000000ULL, NULL},
	{RATE, "0.000000000001Tbit", 0, 1, NULL},
	{RATE, "1Tbit", 0, 1000000000000ULL, NULL},
	{RATE, "10Mbps", 0, 10000000, NULL},
	{RATE, "10kbps", 0, 10000, NULL},
	{RATE, "10bps", 0, 10, NULL},
	{RATE, "3Gbps", 0, 3000000000ULL, NULL},
	{RATE, "18446744073709551615", 0, UINT64_MAX, NULL},
	{RATE, "18446744073709551615bit", 0, UINT64_MAX, NULL},
	{RATE, "18446744073709551kbit", 0, 18446744073709551000ULL, NULL},
	{RATE, "18446744.073709551Tbit", 0, 18446744073709551000ULL, NULL},
	{RATE, "007Mbit", 0, 7000000, NULL},
	{SIZE, "0", 0, 0, NULL},
	{SIZE, "1500", 0, 1500, NULL},
	{SIZE, "1500B", 0, 1500, NULL},
	{SIZE, "64KB", 0, 64000, NULL},
	{SIZE, "64kB", 0, 64000, NULL},
	{SIZE, "1MB", 0, 1000000, NULL},
	{SIZE, "2GB", 0, 2000000000ULL, NULL},
	{SIZE, "256KiB", 0, 262144, NULL},
	{SIZE, "1.5KiB", 0, 1536, NULL},
	{SIZE, "1MiB", 0, 1048576, NULL},
	{SIZE, "4GiB", 0, 4294967296ULL, NULL},
	{SIZE, "0.5GiB", 0, 536870912ULL, NULL},
	{SIZE, "17179869183GiB", 0, 17179869183ULL << 30, NULL},
	{TIME, "0", 0, 0, NULL},
	{TIME, "10", 0, 10000, NULL},
	{TIME, "10ms", 0, 10000, NULL},
	{TIME, "500us", 0, 500, NULL},
	{TIME, "1s", 0, 1000000, NULL},
	{TIME, "2m", 0, 120000000, NULL},
	{TIME, "1.5ms", 0, 1500, NULL},
	{TIME, "0.001", 0, 1, NULL},
	{TIME, "0.25s", 0, 250000, NULL},
	{TIME, "18446744073709551615us", 0, UINT64_MAX, NULL},
};

static void
test_unit_parsers(void **state)
{
	static const enum sky_unit units[] = {SKY_UNIT_RATE, SKY_UNIT_SIZE, SKY_UNIT_TIME};
	size_t i;

	for (i = 0; i < sizeof(unit_cases) / sizeof(unit_cases[0]); i++) {
		const struct unit_case *c = &unit_cases[i];
		uint64_t v = 0xdeadbeef, w = 0xdeadbeef;
		const char *why = NULL;
		int rc, rc2;

		rc = sky_parse_unit(units[c->kind], c->s, &v, &why);
		switch (c->kind) {
		case RATE:
			rc2 = sky_parse_rate(c->s, &w);
			break;
		case SIZE:
			rc2 = sky_parse_size(c->s, &w);
			break;
		default:
			rc2 = sky_parse_time(c->s, &w);
			break;
		}
		if (rc != c->rc || (rc == 0 && v != c->v))
			print_error(
				"case %zu '%s': want rc %d value %llu, got rc %d value %llu (%s)\n",
				i, c->s, c->rc, (unsigned long long)c->v, rc, (unsigned long long)v,
				why != NULL ? why : "-");
		assert_int_equal(rc, c->rc);
		assert_int_equal(rc2, c->rc);
		if (c->rc == 0) {
			assert_true(v == c->v);
			assert_true(w == c->v);
			assert_null(why);
		} else {
			/* a failure leaves the output alone and says why */
			assert_true(v == 0xdeadbeef);
			assert_true(w == 0xdeadbeef);
			assert_non_null(why);
			if (strstr(why, c->why) == NULL)
				print_error("case %zu '%s': reason '%s' lacks '%s'\n", i, c->s, why,
					    c->why);
			assert_non_null(strstr(why, c->why));
		}
	}
	/* NULL why is allowed; NULL string is -EINVAL */
	uint64_t v;
	assert_int_equal(sky_parse_unit(SKY_UNIT_RATE, "x", &v, NULL), -EINVAL);
	assert_int_equal(sky_parse_rate(NULL, &v), -EINVAL);
}

struct u64_case {
	const char *s;
	uint64_t min, max;
	int rc;
	uint64_t v;
};

static const struct u64_case u64_cases[] = {
	{"", 0, UINT64_MAX, -EINVAL, 0},
	{"-1", 0, UINT64_MAX, -EINVAL, 0},
	{"+1", 0, UINT64_MAX, -EINVAL, 0},
	{" 1", 0, UINT64_MAX, -EINVAL, 0},
	{"1 ", 0, UINT64_MAX, -EINVAL, 0},
	{"1.0", 0, UINT64_MAX, -EINVAL, 0},
	{"1k", 0, UINT64_MAX, -EINVAL, 0},
	{"0x", 0, UINT64_MAX, -EINVAL, 0},
	{"0xg", 0, UINT64_MAX, -EINVAL, 0},
	{"x10", 0, UINT64_MAX, -EINVAL, 0},
	{"18446744073709551616", 0, UINT64_MAX, -ERANGE, 0},
	{"0x10000000000000000", 0, UINT64_MAX, -ERANGE, 0},
	{"0", 1, 10, -ERANGE, 0},
	{"11", 1, 10, -ERANGE, 0},
	{"0xb", 1, 10, -ERANGE, 0},
	{"0", 0, 0, 0, 0},
	{"1", 1, 10, 0, 1},
	{"10", 1, 10, 0, 10},
	{"010", 0, 100, 0, 10}, /* decimal, never octal */
	{"0x0A", 0, 100, 0, 10},
	{"0Xff", 0, 255, 0, 255},
	{"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
	{"0xffffffffffffffff", 0, UINT64_MAX, 0, UINT64_MAX},
	{"0x00000000000000000001", 0, UINT64_MAX, 0, 1},
};

static void
test_parse_u64(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
		const struct u64_case *c = &u64_cases[i];
		uint64_t v = 77;
		int rc = sky_parse_u64(c->s, c->min, c->max, &v);

		if (rc != c->rc)
			print_error("case %zu '%s': want %d got %d\n", i, c->s, c->rc, rc);
		assert_int_equal(rc, c->rc);
		assert_true(v == (c->rc == 0 ? c->v : 77));
	}
}

static void
test_parse_country(void **state)
{
	static const char *const bad[] = {"",  "D",  "DEU", "D1", "1E", "D ", " D",
					  "Ä", "d-", "@A",  "[A", "`a", "{a"};
	static const struct {
		const char *s, *norm;
	} good[] = {
		{"DE", "DE"}, {"de", "DE"}, {"dE", "DE"}, {"KP", "KP"}, {"az", "AZ"}, {"ZA", "ZA"},
	};
	uint16_t cc;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cc = 7;
		assert_int_equal(sky_parse_country(bad[i], &cc), -EINVAL);
		assert_int_equal(cc, 7);
	}
	assert_int_equal(sky_parse_country(NULL, &cc), -EINVAL);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(sky_parse_country(good[i].s, &cc), 0);
		assert_int_equal(cc, sky_cc(good[i].norm));
		assert_int_equal(cc >> 8, good[i].norm[0]);
		assert_int_equal(cc & 0xff, good[i].norm[1]);
	}
}

/* ------------------------------------------------------------------ typed getters */

static const char getter_text[] =
	"m:\n"							     /* 1 */
	"  s: hello\n"						     /* 2 */
	"  t: yes\n"						     /* 3 */
	"  f: Off\n"						     /* 4 */
	"  maybe: maybe\n"					     /* 5 */
	"  n: 42\n"						     /* 6 */
	"  hex: 0x2a\n"						     /* 7 */
	"  neg: -3\n"						     /* 8 */
	"  big: 99999999999999999999\n"				     /* 9 */
	"  down: 50Mbit\n"					     /* 10 */
	"  bad: 50Mbt\n"					     /* 11 */
	"  bytes: 100MB\n"					     /* 12 */
	"  burst: 256KiB\n"					     /* 13 */
	"  delay: 10ms\n"					     /* 14 */
	"  mode: drop\n"					     /* 15 */
	"  sub: { a: 1 }\n"					     /* 16 */
	"  list: [1, 2]\n"					     /* 17 */
	"  empty:\n"						     /* 18 */
	"  tilde: ~\n"						     /* 19 */
	"  quoted: \"\"\n"					     /* 20 */
	"  qnum: \"7\"\n"					     /* 21 */
	"seq: [1]\n"						     /* 22 */
	"scalar: x\n"						     /* 23 */
	"empty_section:\n"					     /* 24 */
	"  # a: 1\n"						     /* 25 */
	"c:\n"							     /* 26 */
	"  cc: de\n"						     /* 27 */
	"  badcc: DEU\n"					     /* 28 */
	"  items: [46, x, [1], ~, 1.5Gbit, 'on', 2KiB, 1s, drop]\n"; /* 29 */

enum getter { G_STR, G_BOOL, G_U64, G_RATE, G_SIZE, G_TIME, G_ENUM, G_COUNTRY };

struct getter_case {
	const char *on; /* "m", "seq", "scalar", "" (root) or NULL (absent map) */
	enum getter g;
	const char *key;
	bool required;
	int rc;
	uint64_t v;	 /* numbers, bool, enum index */
	const char *str; /* G_STR result, or the exact error message */
};

static const char *const modes[] = {"pass", "drop", "default", NULL};

#define P NAME ":"
static const struct getter_case getter_cases[] = {
	/* --- missing required --- */
	{"m", G_STR, "nope", true, -1, 0, P "1: m.nope: required"},
	{"m", G_RATE, "up", true, -1, 0, P "1: m.up: required"},
	{"", G_U64, "workers", true, -1, 0, P "1: workers: required"},
	{NULL, G_BOOL, "x", true, -1, 0, NAME ": x: required"},
	/* --- wrong node types --- */
	{"m", G_STR, "sub", false, -1, 0, P "16: m.sub: expected a string, got a map"},
	{"m", G_U64, "list", false, -1, 0, P "17: m.list: expected an integer, got a list"},
	{"m", G_RATE, "sub", true, -1, 0,
	 P "16: m.sub: expected a rate such as 100Mbit, got a map"},
	{"m", G_SIZE, "list", false, -1, 0,
	 P "17: m.list: expected a size such as 64KB, got a list"},
	{"m", G_TIME, "sub", false, -1, 0, P "16: m.sub: expected a time such as 10ms, got a map"},
	{"m", G_BOOL, "sub", false, -1, 0, P "16: m.sub: expected true or false, got a map"},
	{"m", G_ENUM, "list", false, -1, 0,
	 P "17: m.list: expected one of: pass, drop, default, got a list"},
	{"seq", G_STR, "a", false, -1, 0, P "22: seq: expected a map, got a list"},
	{"scalar", G_U64, "a", false, -1, 0, P "23: scalar: expected a map, got a single value"},
	/* a section written without a value is an empty map */
	{"empty_section", G_U64, "a", true, -1, 0, P "24: empty_section.a: required"},
	/* --- written without a value --- */
	{"m", G_STR, "empty", false, -1, 0, P "18: m.empty: no value (expected a string)"},
	{"m", G_U64, "tilde", true, -1, 0, P "19: m.tilde: no value (expected an integer)"},
	{"m", G_RATE, "empty", false, -1, 0,
	 P "18: m.empty: no value (expected a rate such as 100Mbit)"},
	/* --- bad values --- */
	{"m", G_BOOL, "maybe", false, -1, 0,
	 P "5: m.maybe: bad boolean 'maybe' (expected true/false, yes/no or on/off)"},
	{"m", G_BOOL, "n", false, -1, 0,
	 P "6: m.n: bad boolean '42' (expected true/false, yes/no or on/off)"},
	{"m", G_U64, "s", false, -1, 0,
	 P "2: m.s: bad integer 'hello' (expected a decimal or 0x hex integer)"},
	{"m", G_U64, "neg", false, -1, 0,
	 P "8: m.neg: bad integer '-3' (expected a decimal or 0x hex integer)"},
	{"m", G_U64, "down", false, -1, 0,
	 P "10: m.down: bad integer '50Mbit' (expected a decimal or 0x hex integer)"},
	{"m", G_U64, "big", false, -1, 0,
	 P "9: m.big: 99999999999999999999 out of range (min 0, max 18446744073709551615)"},
	{"m", G_RATE, "bad", true, -1, 0,
	 P "11: m.bad: bad rate '50Mbt' (expected a number with a unit: bit, kbit, Mbit, Gbit, "
	   "Tbit)"},
	{"m", G_RATE, "bytes", true, -1, 0,
	 P "12: m.bytes: bad rate '100MB' (rates are in bits per second, e.g. 100Mbit; B would be "
	   "bytes)"},
	{"m", G_RATE, "s", true, -1, 0,
	 P "2: m.s: bad rate 'hello' (expected a number such as 10 or 1.5 before the unit)"},
	{"m", G_SIZE, "down", false, -1, 0,
	 P "10: m.down: bad size '50Mbit' (sizes are in bytes, e.g. 64KB or 256KiB, not bits)"},
	{"m", G_SIZE, "big", false, -1, 0,
	 P "9: m.big: bad size '99999999999999999999' (too large: does not fit in 64 bits)"},
	{"m", G_TIME, "neg", false, -1, 0, P "8: m.neg: bad time '-3' (must not be negative)"},
	{"m", G_TIME, "burst", false, -1, 0,
	 P "13: m.burst: bad time '256KiB' (expected a number with a unit: us, ms, s, m (plain "
	   "number = ms))"},
	{"m", G_ENUM, "s", true, -1, 0,
	 P "2: m.s: bad value 'hello' (expected one of: pass, drop, default)"},
	{"c", G_COUNTRY, "badcc", true, -1, 0,
	 P "28: c.badcc: bad country 'DEU' (expected two letters, ISO 3166 alpha-2, e.g. DE)"},
	{"c", G_COUNTRY, "items", true, -1, 0,
	 P "29: c.items: expected a country code such as DE, got a list"},
	/* --- absent and optional: 0, default kept --- */
	{"m", G_STR, "nope", false, 0, 0, "default"},
	{"m", G_U64, "nope", false, 0, 12345, NULL},
	{NULL, G_RATE, "nope", false, 0, 12345, NULL},
	{"empty_section", G_TIME, "a", false, 0, 12345, NULL},
	{"m", G_ENUM, "nope", false, 0, 12345, NULL},
	/* --- good --- */
	{"m", G_STR, "s", true, 0, 0, "hello"},
	{"m", G_STR, "quoted", true, 0, 0, ""},
	{"m", G_STR, "n", true, 0, 0, "42"},
	{"m", G_BOOL, "t", true, 0, 1, NULL},
	{"m", G_BOOL, "f", true, 0, 0, NULL},
	{"m", G_U64, "n", true, 0, 42, NULL},
	{"m", G_U64, "hex", true, 0, 42, NULL},
	{"m", G_U64, "qnum", true, 0, 7, NULL},
	{"m", G_RATE, "down", true, 0, 50000000, NULL},
	{"m", G_RATE, "n", true, 0, 42, NULL},
	{"m", G_SIZE, "burst", true, 0, 262144, NULL},
	{"m", G_SIZE, "bytes", true, 0, 100000000, NULL},
	{"m", G_TIME, "delay", true, 0, 10000, NULL},
	{"m", G_TIME, "n", true, 0, 42000, NULL},
	{"m", G_ENUM, "mode", true, 0, 1, NULL},
	{"c", G_COUNTRY, "cc", true, 0, ('D' << 8) | 'E', NULL},
};

static void
test_getters(void **state)
{
	struct sky_cfg *cfg = load_ok(getter_text);
	size_t i;

	for (i = 0; i < sizeof(getter_cases) / sizeof(getter_cases[0]); i++) {
		const struct getter_case *c = &getter_cases[i];
		struct sky_cfg_err err = {0};
		const struct sky_cfg_node *on = NULL;
		const char *s = "default";
		uint64_t v = 12345;
		bool b = false;
		unsigned int e = 12345;
		int rc = -99;

		if (c->on != NULL)
			on = c->on[0] == '\0' ? cfg->root : sky_cfg_get(cfg->root, c->on);
		switch (c->g) {
		case G_STR:
			rc = sky_cfg_get_str(&err, cfg, on, c->key, c->required, &s);
			break;
		case G_BOOL:
			rc = sky_cfg_get_bool(&err, cfg, on, c->key, c->required, &b);
			v = b;
			break;
		case G_U64:
			rc = sky_cfg_get_u64(&err, cfg, on, c->key, c->required, 0, UINT64_MAX, &v);
			break;
		case G_RATE:
			rc = sky_cfg_get_rate(&err, cfg, on, c->key, c->required, &v);
			break;
		case G_SIZE:
			rc = sky_cfg_get_size(&err, cfg, on, c->key, c->required, &v);
			break;
		case G_TIME:
			rc = sky_cfg_get_time(&err, cfg, on, c->key, c->required, &v);
			break;
		case G_ENUM:
			rc = sky_cfg_get_enum(&err, cfg, on, c->key, c->required, modes, &e);
			v = e;
			break;
		case G_COUNTRY: {
			uint16_t cc = 12345;

			rc = sky_cfg_get_country(&err, cfg, on, c->key, c->required, &cc);
			v = cc;
			break;
		}
		}
		if (rc != c->rc)
			print_error("case %zu (%s): want rc %d got %d: %s\n", i, c->key, c->rc, rc,
				    err.msg);
		assert_int_equal(rc, c->rc);
		if (rc < 0) {
			assert_int_equal(err.failed, 1);
			check_msg(err.msg, c->str, c->key);
			continue;
		}
		assert_int_equal(err.failed, 0);
		if (c->g == G_STR)
			assert_string_equal(s, c->str);
		else
			assert_true(v == c->v);
	}
	sky_cfg_free(cfg);
}

/* The node-level conversions on list items: c.items = [46, x, [1], ~, 1.5Gbit, 'on', 2KiB, 1s,
 * drop] */
static void
test_as_items(void **state)
{
	static const struct {
		size_t idx;
		enum getter g;
		int rc;
		uint64_t v;
		const char *msg;
		uint64_t max; /* G_U64 only; 0 = UINT64_MAX */
	} cases[] = {
		{1, G_U64, -1, 0,
		 P "29: c.items[1]: bad integer 'x' (expected a decimal or 0x hex integer)"},
		{0, G_U64, -1, 0, P "29: c.items[0]: 46 out of range (min 0, max 45)", 45},
		{2, G_STR, -1, 0, P "29: c.items[2]: expected a string, got a list"},
		{3, G_RATE, -1, 0, P "29: c.items[3]: no value (expected a rate such as 100Mbit)"},
		{6, G_RATE, -1, 0,
		 P "29: c.items[6]: bad rate '2KiB' (rates are in bits per second, e.g. 100Mbit; B "
		   "would be bytes)"},
		{4, G_SIZE, -1, 0,
		 P "29: c.items[4]: bad size '1.5Gbit' (sizes are in bytes, e.g. 64KB or 256KiB, "
		   "not bits)"},
		{1, G_BOOL, -1, 0,
		 P "29: c.items[1]: bad boolean 'x' (expected true/false, yes/no or on/off)"},
		{1, G_ENUM, -1, 0,
		 P "29: c.items[1]: bad value 'x' (expected one of: pass, drop, default)"},
		{1, G_TIME, -1, 0,
		 P "29: c.items[1]: bad time 'x' (expected a number such as 10 or 1.5 before the "
		   "unit)"},
		{1, G_COUNTRY, -1, 0,
		 P "29: c.items[1]: bad country 'x' (expected two letters, ISO 3166 alpha-2, e.g. "
		   "DE)"},
		{99, G_U64, -1, 0, NAME ": no node (expected an integer)"},
		{0, G_U64, 0, 46, NULL},
		{4, G_RATE, 0, 1500000000ULL, NULL},
		{5, G_BOOL, 0, 1, NULL},
		{6, G_SIZE, 0, 2048, NULL},
		{7, G_TIME, 0, 1000000, NULL},
		{8, G_ENUM, 0, 1, NULL},
	};
	struct sky_cfg *cfg = load_ok(getter_text);
	const struct sky_cfg_node *items = sky_cfg_get(sky_cfg_get(cfg->root, "c"), "items");
	size_t i;

	assert_int_equal(sky_cfg_len(items), 9);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sky_cfg_node *it = sky_cfg_at(items, cases[i].idx);
		struct sky_cfg_err err = {0};
		uint64_t v = 12345;
		const char *s = NULL;
		unsigned int e;
		uint16_t cc;
		bool b;
		int rc = -99;

		switch (cases[i].g) {
		case G_STR:
			rc = sky_cfg_as_str(&err, cfg, it, &s);
			break;
		case G_BOOL:
			rc = sky_cfg_as_bool(&err, cfg, it, &b);
			if (rc == 0)
				v = b;
			break;
		case G_U64:
			rc = sky_cfg_as_u64(&err, cfg, it, 0,
					    cases[i].max != 0 ? cases[i].max : UINT64_MAX, &v);
			break;
		case G_RATE:
			rc = sky_cfg_as_rate(&err, cfg, it, &v);
			break;
		case G_SIZE:
			rc = sky_cfg_as_size(&err, cfg, it, &v);
			break;
		case G_TIME:
			rc = sky_cfg_as_time(&err, cfg, it, &v);
			break;
		case G_ENUM:
			rc = sky_cfg_as_enum(&err, cfg, it, modes, &e);
			if (rc == 0)
				v = e;
			break;
		case G_COUNTRY:
			rc = sky_cfg_as_country(&err, cfg, it, &cc);
			if (rc == 0)
				v = cc;
			break;
		}
		if (rc != cases[i].rc)
			print_error("case %zu: want %d got %d: %s\n", i, cases[i].rc, rc, err.msg);
		assert_int_equal(rc, cases[i].rc);
		if (rc < 0) {
			check_msg(err.msg, cases[i].msg, "items");
			assert_true(v == 12345);
		} else {
			assert_true(v == cases[i].v);
		}
	}
	sky_cfg_free(cfg);
}

static void
test_u64_range_message(void **state)
{
	static const struct {
		const char *text;
		uint64_t min, max;
		const char *msg;
	} cases[] = {
		{"workers: 0\n", 1, 64, P "1: workers: 0 out of range (min 1, max 64)"},
		{"workers: 65\n", 1, 64, P "1: workers: 65 out of range (min 1, max 64)"},
		{"\n\nworkers: 0x41\n", 1, 64, P "3: workers: 0x41 out of range (min 1, max 64)"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_cfg *cfg = load_ok(cases[i].text);
		struct sky_cfg_err err = {0};
		uint64_t v = 5;

		assert_int_equal(sky_cfg_get_u64(&err, cfg, cfg->root, "workers", true,
						 cases[i].min, cases[i].max, &v),
				 -1);
		assert_int_equal(v, 5);
		check_msg(err.msg, cases[i].msg, cases[i].text);
		sky_cfg_free(cfg);
	}
}

/* ------------------------------------------------------------------ keys and messages */

static const char ports_text[] = "ports:\n"				/* 1 */
				 "  - name: sat0\n"			/* 2 */
				 "    role: uplink\n"			/* 3 */
				 "    peer: net0\n"			/* 4 */
				 "    rx_queues: 1\n"			/* 5 */
				 "    # typo below\n"			/* 6 */
				 "    devce: net_null0\n"		/* 7 */
				 "  - { name: net0, role: backhaul }\n" /* 8 */
				 "gateway: { x: 1 }\n"			/* 9 */
				 "long key with spaces: 1\n";		/* 10 */

static const char *const port_keys[] = {"name", "role", "device", "peer", "rx_queues", NULL};

static void
test_check_keys_and_missing(void **state)
{
	struct sky_cfg *cfg = load_ok(ports_text);
	const struct sky_cfg_node *ports = sky_cfg_get(cfg->root, "ports");
	struct sky_cfg_err err = {0};
	static const char *const none[] = {NULL};
	const char *dev = NULL;

	assert_int_equal(sky_cfg_check_keys(&err, cfg, sky_cfg_at(ports, 0), port_keys), -1);
	assert_string_equal(err.msg, NAME ":7: ports[0].devce: unknown key "
					  "(allowed: name, role, device, peer, rx_queues)");

	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_check_keys(&err, cfg, sky_cfg_at(ports, 1), port_keys), 0);
	assert_int_equal(err.failed, 0);
	assert_int_equal(sky_cfg_get_str(&err, cfg, sky_cfg_at(ports, 1), "device", true, &dev),
			 -1);
	assert_string_equal(err.msg, NAME ":8: ports[1].device: required");
	assert_null(dev);

	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_check_keys(&err, cfg, ports, port_keys), -1);
	assert_string_equal(err.msg, NAME ":1: ports: expected a map, got a list");

	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_check_keys(&err, cfg, sky_cfg_get(cfg->root, "gateway"), none),
			 -1);
	assert_string_equal(err.msg, NAME ":9: gateway.x: unknown key (allowed: none)");

	/* absent optional section: fine */
	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_check_keys(&err, cfg, NULL, port_keys), 0);
	assert_int_equal(err.failed, 0);
	/* a scalar is not a map */
	assert_int_equal(sky_cfg_check_keys(&err, cfg,
					    sky_cfg_get(cfg->root, "long key with spaces"),
					    port_keys),
			 -1);
	assert_string_equal(err.msg, NAME
			    ":10: [\"long key with spaces\"]: expected a map, got a single value");

	/* top-level sections */
	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_check_sections(&err, cfg), -1);
	check_msg(err.msg,
		  NAME ":9: gateway: unknown key (allowed: eal, workers, control, ports, "
		       "mempool, state, subscribers, plans, beams, classes, geo, policy, shaping, "
		       "telemetry, log, flows, zones, ipfix, qoe, quota, cluster)",
		  "");

	/* odd keys are quoted in paths */
	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_fail(&err, cfg, sky_cfg_at(cfg->root, 2), "x"), -1);
	assert_string_equal(err.msg, NAME ":10: [\"long key with spaces\"]: x");

	/* sky_cfg_fail_missing names the map's line and the full path */
	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_fail_missing(&err, cfg, sky_cfg_at(ports, 0), "device"), -1);
	assert_string_equal(err.msg, NAME ":2: ports[0].device: required");
	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_fail_missing(&err, cfg, cfg->root, "workers"), -1);
	assert_string_equal(err.msg, NAME ":1: workers: required");
	sky_cfg_free(cfg);

	cfg = load_ok("ports: []\nplans: {}\neal: [a]\ntelemetry:\n  # prometheus: x\n");
	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_check_sections(&err, cfg), 0);
	/* a section without a value is an empty map for check_keys */
	assert_int_equal(
		sky_cfg_check_keys(&err, cfg, sky_cfg_get(cfg->root, "telemetry"), port_keys), 0);
	assert_int_equal(err.failed, 0);
	sky_cfg_free(cfg);
}

static void
test_fail_first_error_wins(void **state)
{
	struct sky_cfg *cfg = load_ok("a: 1\nb:\n  c: x\n");
	const struct sky_cfg_node *b = sky_cfg_get(cfg->root, "b");
	struct sky_cfg_err err = {0};
	uint64_t v = 3;
	char big[700];

	assert_int_equal(sky_cfg_fail(&err, cfg, sky_cfg_get(b, "c"), "bad %s %d", "thing", 7), -1);
	assert_string_equal(err.msg, NAME ":3: b.c: bad thing 7");
	/* later failures keep the first message but still fail */
	assert_int_equal(sky_cfg_fail(&err, cfg, b, "second"), -1);
	assert_int_equal(sky_cfg_get_u64(&err, cfg, b, "c", true, 0, 10, &v), -1);
	assert_int_equal(v, 3);
	assert_string_equal(err.msg, NAME ":3: b.c: bad thing 7");
	/* the root has no path; NULL node names the file only; NULL err and cfg are tolerated */
	memset(&err, 0, sizeof(err));
	sky_cfg_fail(&err, cfg, cfg->root, "root problem");
	assert_string_equal(err.msg, NAME ":1: root problem");
	memset(&err, 0, sizeof(err));
	sky_cfg_fail(&err, cfg, NULL, "file problem");
	assert_string_equal(err.msg, NAME ": file problem");
	memset(&err, 0, sizeof(err));
	sky_cfg_fail(&err, NULL, NULL, "no cfg");
	assert_string_equal(err.msg, "<config>: no cfg");
	assert_int_equal(sky_cfg_fail(NULL, cfg, b, "dropped"), -1);
	/* long messages are cut, not overrun */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(&err, 0, sizeof(err));
	sky_cfg_fail(&err, cfg, b, "%s", big);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	sky_cfg_free(cfg);
	sky_cfg_free(NULL);
}

static void
test_long_value_echo(void **state)
{
	char text[400];
	struct sky_cfg *cfg;
	struct sky_cfg_err err = {0};
	uint64_t v;

	/* a long bad value is shortened in the message; control characters are masked */
	snprintf(text, sizeof(text), "r: \"%0200d\\tx\"\n", 5);
	cfg = load_ok(text);
	assert_int_equal(sky_cfg_get_rate(&err, cfg, cfg->root, "r", true, &v), -1);
	check_msg(err.msg,
		  NAME ":1: r: bad rate "
		       "'0000000000000000000000000000000000000000000000000000000000000000...' "
		       "(expected a number with a unit*",
		  text);
	sky_cfg_free(cfg);

	cfg = load_ok("r: \"50\\tMbit\"\n");
	memset(&err, 0, sizeof(err));
	assert_int_equal(sky_cfg_get_rate(&err, cfg, cfg->root, "r", true, &v), -1);
	check_msg(err.msg, NAME ":1: r: bad rate '50?Mbit' (*", "tab");
	sky_cfg_free(cfg);
}

/* ------------------------------------------------------------------ files */

static char *
write_temp(const char *text, size_t len)
{
	static unsigned int n;
	char name[32];
	const char *path;

	snprintf(name, sizeof(name), "config_%u.yaml", n++);
	path = sky_fx_file_bytes(name, text, len);
	assert_non_null(path);
	return strdup(path);
}

static const char design_text[] =
	"eal: [\"-l\", \"0-1\", \"--file-prefix\", \"skygate\"]   # overridable\n"
	"workers: 1\n"
	"control: { socket: /run/skygate/skygate.sock }\n"
	"ports:\n"
	"  - { name: sat0, role: uplink,   peer: net0,\n"
	"      device: \"net_memif0,role=server,socket=/run/skygate/sat0.sock\" }\n"
	"  - { name: net0, role: backhaul, peer: sat0,\n"
	"      device: \"net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap\" }\n"
	"subscribers: { file: conf/subscribers.csv, unknown: drop }\n"
	"plans:   { basic: { down: 50Mbit, up: 5Mbit, burst: 256KB } }\n"
	"beams:   { beam1: { down: 1Gbit, up: 200Mbit } }\n"
	"classes: [ { name: realtime, dscp: [46], ports: [53, 5060] }, { name: bulk, default: true "
	"} ]\n"
	"geo:     { database: /usr/share/libloc-location/location.db }\n"
	"policy:\n"
	"  object: build/conf/policies/country_block.bpf.o\n"
	"  on_fault: pass\n"
	"  maps: { blocked_terminal_countries: { RU: 1 }, blocked_remote_countries: { KP: 1 } }\n";

static void
test_load_files(void **state)
{
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	char *path, want[600];
	const struct sky_cfg_node *n;
	uint64_t v = 0;
	bool b = false;
	uint16_t cc;

	/* failures first: missing file, a directory, a syntax error names the real path */
	cfg = sky_cfg_load("/nonexistent/skygate.yaml", &err);
	assert_null(cfg);
	assert_string_equal(err.msg,
			    "/nonexistent/skygate.yaml: cannot open: No such file or directory");
	memset(&err, 0, sizeof(err));
	cfg = sky_cfg_load("/tmp", &err);
	assert_null(cfg);
	assert_string_equal(err.msg, "/tmp: cannot read: a directory, not a regular file");
	memset(&err, 0, sizeof(err));
	assert_null(sky_cfg_load(NULL, &err));
	assert_int_equal(err.failed, 1);

	path = write_temp("a: 1\nb: [\n", 10);
	memset(&err, 0, sizeof(err));
	assert_null(sky_cfg_load(path, &err));
	snprintf(want, sizeof(want), "%s:3:1: did not find expected node content*", path);
	check_msg(err.msg, want, path);
	unlink(path);
	free(path);

	/* an embedded NUL byte in a file is not text */
	path = write_temp("a: 1\nb: x\0y\n", 12);
	memset(&err, 0, sizeof(err));
	assert_null(sky_cfg_load(path, &err));
	snprintf(want, sizeof(want), "%s:2:5: control characters are not allowed (byte 0x00)*",
		 path);
	check_msg(err.msg, want, path);
	unlink(path);
	free(path);

	/* an empty file is an empty map */
	path = write_temp("", 0);
	memset(&err, 0, sizeof(err));
	cfg = sky_cfg_load(path, &err);
	assert_non_null(cfg);
	assert_int_equal(sky_cfg_len(cfg->root), 0);
	assert_string_equal(cfg->file, path);
	sky_cfg_free(cfg);
	unlink(path);
	free(path);

	/* the design document's example, through the getters */
	path = write_temp(design_text, strlen(design_text));
	memset(&err, 0, sizeof(err));
	cfg = sky_cfg_load(path, &err);
	assert_non_null(cfg);
	assert_int_equal(sky_cfg_check_sections(&err, cfg), 0);
	n = sky_cfg_get(sky_cfg_get(cfg->root, "plans"), "basic");
	assert_int_equal(sky_cfg_get_rate(&err, cfg, n, "down", true, &v), 0);
	assert_true(v == 50000000);
	assert_int_equal(sky_cfg_get_size(&err, cfg, n, "burst", true, &v), 0);
	assert_true(v == 256000);
	n = sky_cfg_at(sky_cfg_get(cfg->root, "classes"), 1);
	assert_string_equal(sky_cfg_path(n), "classes[1]");
	assert_int_equal(sky_cfg_line(n), 12);
	assert_int_equal(sky_cfg_get_bool(&err, cfg, n, "default", true, &b), 0);
	assert_true(b);
	n = sky_cfg_get(sky_cfg_get(sky_cfg_get(cfg->root, "policy"), "maps"),
			"blocked_remote_countries");
	assert_string_equal(sky_cfg_path(n), "policy.maps.blocked_remote_countries");
	assert_int_equal(sky_cfg_line(n), 17);
	assert_int_equal(sky_parse_country(sky_cfg_key_at(n, 0), &cc), 0);
	assert_int_equal(cc, sky_cc("KP"));
	n = sky_cfg_at(sky_cfg_get(cfg->root, "ports"), 1);
	assert_int_equal(sky_cfg_line(sky_cfg_get(n, "device")), 8);
	/* a bad value in a file names the file's path */
	assert_int_equal(sky_cfg_get_rate(&err, cfg, n, "name", true, &v), -1);
	snprintf(want, sizeof(want), "%s:7: ports[1].name: bad rate 'net0' (*", path);
	check_msg(err.msg, want, path);
	sky_cfg_free(cfg);
	unlink(path);
	free(path);
}

/*
 * A config path that is no file: refused at once (a FIFO does not block the start or
 * --check), the path and the reason named; a config larger than 16 MiB is refused unread.
 */
static void
test_load_not_a_file(void **state)
{
	char fifo[512], huge[512];
	const struct {
		const char *path;
		const char *want;
	} c[] = {
		{fifo, "cannot read: a FIFO, not a regular file"},
		{"/dev/zero", "/dev/zero: cannot read: a character device, not a regular file"},
		{"/dev/null", "/dev/null: cannot read: a character device, not a regular file"},
		{huge, "cannot read: 16777217 bytes, more than the limit of 16777216"},
		{"/nonexistent/x.yaml",
		 "/nonexistent/x.yaml: cannot open: No such file or directory"},
	};
	int fd;

	(void)state;
	snprintf(fifo, sizeof(fifo), "%s/config.fifo", sky_fx_tmpdir());
	snprintf(huge, sizeof(huge), "%s/huge.yaml", sky_fx_tmpdir());
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	fd = open(huge, O_WRONLY | O_CREAT | O_TRUNC, 0600); /* sparse: no disk used */
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * 1024 * 1024 + 1), 0);
	close(fd);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct sky_cfg_err err = {0};
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_null(sky_cfg_load(c[i].path, &err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_int_equal(err.failed, 1);
		if (strncmp(err.msg, c[i].path, strlen(c[i].path)) != 0 ||
		    strstr(err.msg, c[i].want) == NULL)
			fail_msg("%s: '%s' does not say '%s'", c[i].path, err.msg, c[i].want);
		assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 <
			    1000);
	}
	unlink(fifo);
	unlink(huge);
}

/* --- defaults and output (config_out.c) --- */

static char *
write_str(const struct sky_cfg *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(sky_cfg_write(cfg, f), 0);
	fclose(f);
	return buf;
}

/* the defaults text is refused as a whole when it is not YAML; nothing merged */
static void
test_merge_defaults_errors(void **state)
{
	static const char *const bad[] = {"a: [1, 2\n", "a: 1\na: 2\n", "x: &a 1\ny: *a\n"};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sky_cfg *cfg = load_ok("ports: [1]\n");
		struct sky_cfg_err err = {0};

		assert_int_equal(sky_cfg_merge_defaults(cfg, bad[i], &err), -1);
		assert_true(err.failed);
		assert_non_null(strstr(err.msg, "<defaults>"));
		assert_int_equal(sky_cfg_len(cfg->root), 1);
		sky_cfg_free(cfg);
	}
}

static void
test_merge_defaults(void **state)
{
	static const struct {
		const char *file, *defaults, *want;
	} cases[] = {
		/* the file wins; missing keys are added at the end, recursively */
		{"a: 1\n", "a: 2\nb: 3\n", "a: 1\nb: 3\n"},
		{"m: { x: 1 }\n", "m: { x: 2, y: 3 }\n", "m:\n  x: 1\n  y: 3\n"},
		/* a section written empty takes the defaults whole */
		{"m:\n", "m: { y: 3 }\n", "m:\n  y: 3\n"},
		/* lists are not merged; a scalar is not replaced by a map */
		{"l: [1]\n", "l: [2, 3]\n", "l: [1]\n"},
		{"m: 5\n", "m: { y: 3 }\n", "m: 5\n"},
		{"", "a: { b: [ { c: 1 } ] }\n", "a:\n  b:\n    - c: 1\n"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_cfg *cfg = load_ok(cases[i].file);
		struct sky_cfg_err err = {0};
		char *out;

		assert_int_equal(sky_cfg_merge_defaults(cfg, cases[i].defaults, &err), 0);
		out = write_str(cfg);
		if (strcmp(out, cases[i].want) != 0)
			print_error("case %zu: got\n%s\nwant\n%s\n", i, out, cases[i].want);
		assert_string_equal(out, cases[i].want);
		free(out);
		/* an added node has no line of the file */
		if (i == 0)
			assert_int_equal(sky_cfg_line(sky_cfg_get(cfg->root, "b")), 0);
		sky_cfg_free(cfg);
	}
}

/* what is written reads back into the same tree, and writes the same text again */
static void
test_write_round_trip(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"", "{}\n"},
		{"a: ~\nb: \"\"\nc: null\n", "a: ~\nb: \"\"\nc: ~\n"},
		{"mode: \"0660\"\nn: 0x1f\nneg: -5\ndot: .5\n",
		 "mode: \"0660\"\nn: 0x1f\nneg: -5\ndot: \".5\"\n"},
		{"s: 'a: b'\nq: 'say \"hi\"'\nbs: 'a\\b'\nhash: 'x #y'\n",
		 "s: \"a: b\"\nq: \"say \\\"hi\\\"\"\nbs: \"a\\\\b\"\nhash: \"x #y\"\n"},
		{"\"RU:KP\": drop\n\"10.0.0.0/8\": 1\n\"odd key\": [x, \"y, z\"]\n",
		 "\"RU:KP\": drop\n10.0.0.0/8: 1\n\"odd key\": [x, \"y, z\"]\n"},
		{"l: []\nm: {}\nyes: no\n", "l: []\nm: {}\nyes: no\n"},
		{"c:\n  - { name: a, dscp: [46], match: [ { ports: [\"1-2\"] } ] }\n  - [1, [2]]\n",
		 "c:\n  - name: a\n    dscp: [46]\n    match:\n      - ports: [1-2]\n  -\n    - "
		 "1\n    - [2]\n"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sky_cfg *cfg = load_ok(cases[i].in), *again;
		char *out = write_str(cfg), *out2;

		if (strcmp(out, cases[i].want) != 0)
			print_error("case %zu: got\n%s\nwant\n%s\n", i, out, cases[i].want);
		assert_string_equal(out, cases[i].want);
		again = load_ok(out);
		out2 = write_str(again);
		assert_string_equal(out, out2);
		free(out);
		free(out2);
		sky_cfg_free(again);
		sky_cfg_free(cfg);
	}
}

/* the shipped defaults are valid YAML and fill an empty file */
static void
test_defaults_text(void **state)
{
	struct sky_cfg *cfg = load_ok("");
	struct sky_cfg_err err = {0};
	char *a, *b;
	(void)state;

	assert_int_equal(sky_cfg_merge_defaults(cfg, sky_cfg_defaults, &err), 0);
	assert_string_equal(sky_cfg_str(sky_cfg_get(sky_cfg_get(cfg->root, "control"), "mode")),
			    "0660");
	assert_string_equal(sky_cfg_str(sky_cfg_get(cfg->root, "workers")), "1");
	a = sky_cfg_write_node(sky_cfg_get(cfg->root, "shaping"));
	b = sky_cfg_write_node(sky_cfg_get(cfg->root, "shaping"));
	assert_non_null(a);
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "period: 10ms"));
	free(a);
	free(b);
	a = sky_cfg_write_node(NULL);
	assert_string_equal(a, "");
	free(a);
	sky_cfg_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_merge_defaults_errors),
		cmocka_unit_test(test_merge_defaults),
		cmocka_unit_test(test_write_round_trip),
		cmocka_unit_test(test_defaults_text),
		cmocka_unit_test(test_refused_constructs),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_unit_parsers),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_country),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_as_items),
		cmocka_unit_test(test_u64_range_message),
		cmocka_unit_test(test_check_keys_and_missing),
		cmocka_unit_test(test_fail_first_error_wins),
		cmocka_unit_test(test_long_value_echo),
		cmocka_unit_test(test_empty_is_empty_map),
		cmocka_unit_test(test_accepted_forms),
		cmocka_unit_test(test_tree_paths_lines),
		cmocka_unit_test(test_big_map),
		cmocka_unit_test(test_load_files),
		cmocka_unit_test(test_load_not_a_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
