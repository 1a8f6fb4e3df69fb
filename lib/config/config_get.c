/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Typed getters: a node (sky_cfg_as_*) or a key of a map (sky_cfg_get_*) converted to a
 * string, boolean, integer, rate, size, time, choice or country, with a message naming the
 * file, line, key, the value and what was expected.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "skygate/config.h"

#include "config_priv.h"

/* What each value kind is called in "expected ..." messages. */
static const char A_STR[] = "a string";
static const char A_BOOL[] = "true or false";
static const char A_U64[] = "an integer";
static const struct {
	const char *name;     /* "bad rate '...'" */
	const char *expected; /* "expected a rate such as 100Mbit" */
} units[] = {
	[SKY_UNIT_RATE] = {"rate", "a rate such as 100Mbit"},
	[SKY_UNIT_SIZE] = {"size", "a size such as 64KB"},
	[SKY_UNIT_TIME] = {"time", "a time such as 10ms"},
};
static const char A_COUNTRY[] = "a country code such as DE";

/* v must be a scalar with a value. */
static int
check_scalar(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	     const char *what)
{
	if (v == NULL)
		return sky_cfg_fail(err, cfg, NULL, "no node (expected %s)", what);
	if (v->type != SKY_CFG_SCALAR)
		return sky_cfg_fail(err, cfg, v, "expected %s, got %s", what,
				    sky_cfg_type_name(v->type));
	if (v->null)
		return sky_cfg_fail(err, cfg, v, "no value (expected %s)", what);
	return 0;
}

/*
 * Find key in map n. Returns -1 on failure, 0 with *out = NULL when absent and optional,
 * 0 with *out set otherwise.
 */
static int
lookup(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
       const char *key, bool required, const struct sky_cfg_node **out)
{
	*out = NULL;
	/* "section:" with nothing under it is an empty map */
	if (n != NULL && n->type != SKY_CFG_MAP && !(n->type == SKY_CFG_SCALAR && n->null))
		return sky_cfg_fail(err, cfg, n, "expected a map, got %s",
				    sky_cfg_type_name(n->type));
	*out = sky_cfg_get(n, key);
	if (*out == NULL && required)
		return sky_cfg_fail_missing(err, cfg, n, key);
	return 0;
}

int
sky_cfg_as_str(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	       const char **out)
{
	if (check_scalar(err, cfg, v, A_STR) < 0)
		return -1;
	*out = v->text;
	return 0;
}

int
sky_cfg_as_bool(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	char s[SHOWBUF];
	size_t i;

	if (check_scalar(err, cfg, v, A_BOOL) < 0)
		return -1;
	for (i = 0; i < 3; i++) {
		if (strcasecmp(v->text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v->text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return sky_cfg_fail(err, cfg, v, "bad boolean '%s' (expected true/false, yes/no or on/off)",
			    sky_cfg_show(s, sizeof(s), v->text));
}

int
sky_cfg_as_u64(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	       uint64_t min, uint64_t max, uint64_t *out)
{
	char s[SHOWBUF];
	uint64_t x;
	int rc;

	if (check_scalar(err, cfg, v, A_U64) < 0)
		return -1;
	rc = sky_parse_u64(v->text, 0, UINT64_MAX, &x);
	if (rc == -EINVAL)
		return sky_cfg_fail(err, cfg, v,
				    "bad integer '%s' (expected a decimal or 0x hex integer)",
				    sky_cfg_show(s, sizeof(s), v->text));
	if (rc < 0 || x < min || x > max)
		return sky_cfg_fail(err, cfg, v,
				    "%s out of range (min %" PRIu64 ", max %" PRIu64 ")",
				    sky_cfg_show(s, sizeof(s), v->text), min, max);
	*out = x;
	return 0;
}

static int
as_unit(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	enum sky_unit unit, uint64_t *out)
{
	const char *why;
	char s[SHOWBUF];
	uint64_t x;

	if (check_scalar(err, cfg, v, units[unit].expected) < 0)
		return -1;
	if (sky_parse_unit(unit, v->text, &x, &why) < 0)
		return sky_cfg_fail(err, cfg, v, "bad %s '%s' (%s)", units[unit].name,
				    sky_cfg_show(s, sizeof(s), v->text), why);
	*out = x;
	return 0;
}

int
sky_cfg_as_rate(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		uint64_t *out_bps)
{
	return as_unit(err, cfg, v, SKY_UNIT_RATE, out_bps);
}

int
sky_cfg_as_size(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		uint64_t *out_bytes)
{
	return as_unit(err, cfg, v, SKY_UNIT_SIZE, out_bytes);
}

int
sky_cfg_as_time(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		uint64_t *out_us)
{
	return as_unit(err, cfg, v, SKY_UNIT_TIME, out_us);
}

int
sky_cfg_as_enum(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		const char *const *choices, unsigned int *out)
{
	char list[384], what[400], s[SHOWBUF];
	unsigned int i;

	sky_cfg_list_words(list, sizeof(list), choices, ", ");
	snprintf(what, sizeof(what), "one of: %s", list);
	if (check_scalar(err, cfg, v, what) < 0)
		return -1;
	for (i = 0; choices != NULL && choices[i] != NULL; i++) {
		if (strcmp(v->text, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return sky_cfg_fail(err, cfg, v, "bad value '%s' (expected one of: %s)",
			    sky_cfg_show(s, sizeof(s), v->text), list);
}

int
sky_cfg_as_country(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		   uint16_t *cc)
{
	char s[SHOWBUF];

	if (check_scalar(err, cfg, v, A_COUNTRY) < 0)
		return -1;
	if (sky_parse_country(v->text, cc) < 0)
		return sky_cfg_fail(
			err, cfg, v,
			"bad country '%s' (expected two letters, ISO 3166 alpha-2, e.g. DE)",
			sky_cfg_show(s, sizeof(s), v->text));
	return 0;
}

/* The key-based getters: look the key up, then convert the node. */
#define GET_BY_KEY(call)                                                                           \
	do {                                                                                       \
		const struct sky_cfg_node *v_;                                                     \
		if (lookup(err, cfg, n, key, required, &v_) < 0)                                   \
			return -1;                                                                 \
		if (v_ == NULL)                                                                    \
			return 0;                                                                  \
		return call;                                                                       \
	} while (0)

int
sky_cfg_get_str(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		const char *key, bool required, const char **out)
{
	GET_BY_KEY(sky_cfg_as_str(err, cfg, v_, out));
}

int
sky_cfg_get_bool(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, bool *out)
{
	GET_BY_KEY(sky_cfg_as_bool(err, cfg, v_, out));
}

int
sky_cfg_get_u64(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		const char *key, bool required, uint64_t min, uint64_t max, uint64_t *out)
{
	GET_BY_KEY(sky_cfg_as_u64(err, cfg, v_, min, max, out));
}

int
sky_cfg_get_rate(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, uint64_t *out_bps)
{
	GET_BY_KEY(sky_cfg_as_rate(err, cfg, v_, out_bps));
}

int
sky_cfg_get_size(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, uint64_t *out_bytes)
{
	GET_BY_KEY(sky_cfg_as_size(err, cfg, v_, out_bytes));
}

int
sky_cfg_get_time(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, uint64_t *out_us)
{
	GET_BY_KEY(sky_cfg_as_time(err, cfg, v_, out_us));
}

int
sky_cfg_get_enum(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *key, bool required, const char *const *choices, unsigned int *out)
{
	GET_BY_KEY(sky_cfg_as_enum(err, cfg, v_, choices, out));
}

int
sky_cfg_get_country(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *n, const char *key, bool required, uint16_t *cc)
{
	GET_BY_KEY(sky_cfg_as_country(err, cfg, v_, cc));
}
