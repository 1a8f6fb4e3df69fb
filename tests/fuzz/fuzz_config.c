/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for lib/config: arbitrary bytes -> sky_cfg_load_string(), then walk the
 * tree and call every getter on every key, and the unit parsers on every scalar. Must not
 * crash, leak, or write an unterminated message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/config.h"

static const char *const choices[] = {"pass", "drop", "default", NULL};

static void
check_err(const struct sky_cfg_err *err)
{
	/* the message is always terminated and non-empty once failed */
	if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
		abort();
	if (err->failed && err->msg[0] == '\0')
		abort();
}

static void
use_scalar(const char *s)
{
	uint64_t v;
	uint16_t cc;
	const char *why;

	sky_parse_unit(SKY_UNIT_RATE, s, &v, &why);
	sky_parse_unit(SKY_UNIT_SIZE, s, &v, &why);
	sky_parse_unit(SKY_UNIT_TIME, s, &v, &why);
	sky_parse_u64(s, 1, 1000, &v);
	sky_parse_country(s, &cc);
}

static void
walk(const struct sky_cfg *cfg, const struct sky_cfg_node *n, unsigned int depth)
{
	struct sky_cfg_err err;
	size_t i, len = sky_cfg_len(n);

	if (depth > 100) /* the loader caps nesting at 64: deeper is a bug */
		abort();
	(void)sky_cfg_path(n);
	(void)sky_cfg_line(n);
	if (sky_cfg_type(n) == SKY_CFG_SCALAR) {
		use_scalar(sky_cfg_str(n));
		return;
	}
	memset(&err, 0, sizeof(err));
	sky_cfg_check_keys(&err, cfg, n, choices);
	check_err(&err);
	for (i = 0; i < len; i++) {
		const char *key = sky_cfg_key_at(n, i);

		if (key != NULL) {
			const char *s = NULL;
			bool b;
			uint64_t v;
			unsigned int e;

			if (sky_cfg_get(n, key) == NULL)
				abort();
			memset(&err, 0, sizeof(err));
			sky_cfg_get_str(&err, cfg, n, key, true, &s);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_get_bool(&err, cfg, n, key, true, &b);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_get_u64(&err, cfg, n, key, true, 2, 100000, &v);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_get_rate(&err, cfg, n, key, true, &v);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_get_size(&err, cfg, n, key, false, &v);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_get_time(&err, cfg, n, key, false, &v);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_get_enum(&err, cfg, n, key, true, choices, &e);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_fail(&err, cfg, sky_cfg_at(n, i), "%s", key);
			check_err(&err);
		}
		{
			const struct sky_cfg_node *c = sky_cfg_at(n, i);
			const char *s;
			bool b;
			uint64_t v;
			unsigned int e;
			uint16_t cc;

			memset(&err, 0, sizeof(err));
			sky_cfg_as_str(&err, cfg, c, &s);
			sky_cfg_as_bool(&err, cfg, c, &b);
			sky_cfg_as_u64(&err, cfg, c, 0, 255, &v);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_as_rate(&err, cfg, c, &v);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			sky_cfg_as_size(&err, cfg, c, &v);
			sky_cfg_as_time(&err, cfg, c, &v);
			sky_cfg_as_enum(&err, cfg, c, choices, &e);
			sky_cfg_as_country(&err, cfg, c, &cc);
			check_err(&err);
			memset(&err, 0, sizeof(err));
			if (key != NULL)
				sky_cfg_get_country(&err, cfg, n, key, false, &cc);
			check_err(&err);
		}
		walk(cfg, sky_cfg_at(n, i), depth + 1);
	}
	/* a missing key on this node */
	memset(&err, 0, sizeof(err));
	sky_cfg_fail_missing(&err, cfg, n, "no-such-key");
	check_err(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sky_cfg_err err = {0};
	struct sky_cfg *cfg;
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	use_scalar(text);
	cfg = sky_cfg_load_string("fuzz.yaml", text, &err);
	check_err(&err);
	if (cfg == NULL) {
		if (!err.failed)
			abort();
	} else {
		if (err.failed || sky_cfg_type(cfg->root) != SKY_CFG_MAP)
			abort();
		walk(cfg, cfg->root, 0);
		memset(&err, 0, sizeof(err));
		sky_cfg_check_sections(&err, cfg);
		check_err(&err);
		sky_cfg_free(cfg);
	}
	free(text);
	return 0;
}
