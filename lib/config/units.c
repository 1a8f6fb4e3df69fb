/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit parsers: rates, sizes, times, integers and country codes.
 *
 * Numbers are parsed digit by digit in integer arithmetic, so "1.5Gbit" is exactly
 * 1500000000 and never 1499999999 through a double. A decimal whose value is not a whole
 * number of the base unit (bit, byte, microsecond) is refused rather than rounded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "skygate/config.h"
#include "skygate/meta.h"

__extension__ typedef unsigned __int128 u128;

/* Decimal places kept after trailing zeros are dropped. With at most 18 digits the
 * fraction is < 10^18 < 2^60 and every multiplier below is < 2^41, so the product fits
 * in 128 bits. No valid input with more places exists for decimal units; for binary units
 * (KiB..GiB) such inputs are absurd ("1.000000000931322574615478515625GiB"). */
#define MAX_FRAC_DIGITS 18

struct unit {
	const char *suffix;
	uint64_t mult;
};

static const struct unit rate_units[] = {
	{"", 1},
	{"bit", 1},
	{"bps", 1},
	{"bit/s", 1},
	{"kbit", 1000ULL},
	{"Kbit", 1000ULL},
	{"kbps", 1000ULL},
	{"Kbps", 1000ULL},
	{"kbit/s", 1000ULL},
	{"Kbit/s", 1000ULL},
	{"Mbit", 1000000ULL},
	{"Mbps", 1000000ULL},
	{"Mbit/s", 1000000ULL},
	{"Gbit", 1000000000ULL},
	{"Gbps", 1000000000ULL},
	{"Gbit/s", 1000000000ULL},
	{"Tbit", 1000000000000ULL},
	{"Tbps", 1000000000000ULL},
	{"Tbit/s", 1000000000000ULL},
	{NULL, 0},
};

static const struct unit size_units[] = {
	{"", 1},
	{"B", 1},
	{"KB", 1000ULL},
	{"kB", 1000ULL},
	{"MB", 1000000ULL},
	{"GB", 1000000000ULL},
	{"TB", 1000000000000ULL},
	{"KiB", 1ULL << 10},
	{"MiB", 1ULL << 20},
	{"GiB", 1ULL << 30},
	{"TiB", 1ULL << 40},
	{NULL, 0},
};

static const struct unit time_units[] = {
	{"", 1000ULL}, /* plain number = milliseconds */
	{"us", 1},     {"ms", 1000ULL}, {"s", 1000000ULL}, {"m", 60000000ULL}, {NULL, 0},
};

static const char RATE_WHY[] = "expected a number with a unit: bit, kbit, Mbit, Gbit, Tbit";
static const char RATE_BYTES_WHY[] = "rates are in bits per second, e.g. 100Mbit; B would be bytes";
static const char RATE_CASE_WHY[] = "units are case-sensitive: use Mbit (m is not mega)";
static const char SIZE_WHY[] = "expected a number with a unit: B, KB, MB, GB, KiB, MiB, GiB";
static const char SIZE_BITS_WHY[] = "sizes are in bytes, e.g. 64KB or 256KiB, not bits";
static const char TIME_WHY[] = "expected a number with a unit: us, ms, s, m (plain number = ms)";
static const char NEG_WHY[] = "must not be negative";
static const char EMPTY_WHY[] = "empty value";
static const char NUM_WHY[] = "expected a number such as 10 or 1.5 before the unit";
static const char FRAC_LONG_WHY[] = "too many decimal places";
static const char OVERFLOW_WHY[] = "too large: does not fit in 64 bits";

static const char *const frac_why[] = {
	[SKY_UNIT_RATE] = "not a whole number of bit/s",
	[SKY_UNIT_SIZE] = "not a whole number of bytes",
	[SKY_UNIT_TIME] = "not a whole number of microseconds",
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Why a suffix that is not in the table was refused: a hint for the usual mix-ups. */
static const char *
bad_suffix_why(enum sky_unit unit, const char *suf)
{
	size_t n = strlen(suf);

	switch (unit) {
	case SKY_UNIT_RATE:
		if (n > 0 &&
		    (suf[n - 1] == 'B' || strstr(suf, "B/s") != NULL || strstr(suf, "iB") != NULL ||
		     strcmp(suf, "Bps") == 0 || strstr(suf, "Bps") != NULL))
			return RATE_BYTES_WHY;
		if (strcmp(suf, "mbit") == 0 || strcmp(suf, "gbit") == 0 ||
		    strcmp(suf, "tbit") == 0 || strcmp(suf, "mbps") == 0 ||
		    strcmp(suf, "gbps") == 0 || strcmp(suf, "tbps") == 0 ||
		    strcmp(suf, "mbit/s") == 0)
			return RATE_CASE_WHY;
		return RATE_WHY;
	case SKY_UNIT_SIZE:
		if (strstr(suf, "bit") != NULL || strstr(suf, "bps") != NULL ||
		    strcmp(suf, "b") == 0 || (n == 2 && suf[1] == 'b'))
			return SIZE_BITS_WHY;
		return SIZE_WHY;
	case SKY_UNIT_TIME:
	default:
		return TIME_WHY;
	}
}

static const struct unit *
unit_table(enum sky_unit unit)
{
	switch (unit) {
	case SKY_UNIT_RATE:
		return rate_units;
	case SKY_UNIT_SIZE:
		return size_units;
	case SKY_UNIT_TIME:
		return time_units;
	}
	return NULL;
}

int
sky_parse_unit(enum sky_unit unit, const char *s, uint64_t *out, const char **why)
{
	const struct unit *tab = unit_table(unit), *u;
	const char *p = s, *frac, *suf;
	const char *dummy;
	uint64_t ip = 0, fp = 0, res;
	unsigned int nfrac = 0, i;
	u128 prod, pow10 = 1;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (tab == NULL) {
		*why = "unknown unit kind";
		return -EINVAL;
	}
	if (s == NULL || *s == '\0') {
		*why = EMPTY_WHY;
		return -EINVAL;
	}
	if (*p == '-') {
		*why = NEG_WHY;
		return -EINVAL;
	}
	if (!is_digit(*p)) {
		*why = NUM_WHY;
		return -EINVAL;
	}
	for (; is_digit(*p); p++) {
		if (__builtin_mul_overflow(ip, 10, &ip) ||
		    __builtin_add_overflow(ip, (uint64_t)(*p - '0'), &ip)) {
			*why = OVERFLOW_WHY;
			return -ERANGE;
		}
	}
	frac = NULL;
	if (*p == '.') {
		p++;
		if (!is_digit(*p)) {
			*why = NUM_WHY;
			return -EINVAL;
		}
		frac = p;
		while (is_digit(*p))
			p++;
	}
	suf = p;
	/* One optional space between number and unit: "100 Mbit". */
	if (*suf == ' ' && suf[1] != '\0')
		suf++;

	for (u = tab; u->suffix != NULL; u++)
		if (strcmp(suf, u->suffix) == 0)
			break;
	if (u->suffix == NULL || (suf != p && *u->suffix == '\0')) {
		*why = bad_suffix_why(unit, suf);
		return -EINVAL;
	}

	if (frac != NULL) {
		const char *last = p; /* the fraction ends where the unit (or its space) starts */

		while (last > frac && last[-1] == '0')
			last--;
		nfrac = (unsigned int)(last - frac);
		if (nfrac > MAX_FRAC_DIGITS) {
			*why = FRAC_LONG_WHY;
			return -EINVAL;
		}
		for (i = 0; i < nfrac; i++) {
			fp = fp * 10 + (uint64_t)(frac[i] - '0');
			pow10 *= 10;
		}
	}
	prod = (u128)fp * u->mult;
	if (prod % pow10 != 0) {
		*why = frac_why[unit];
		return -EINVAL;
	}
	if (__builtin_mul_overflow(ip, u->mult, &res) ||
	    __builtin_add_overflow(res, (uint64_t)(prod / pow10), &res)) {
		*why = OVERFLOW_WHY;
		return -ERANGE;
	}
	*out = res;
	return 0;
}

int
sky_parse_rate(const char *s, uint64_t *bps)
{
	return sky_parse_unit(SKY_UNIT_RATE, s, bps, NULL);
}

int
sky_parse_size(const char *s, uint64_t *bytes)
{
	return sky_parse_unit(SKY_UNIT_SIZE, s, bytes, NULL);
}

int
sky_parse_time(const char *s, uint64_t *us)
{
	return sky_parse_unit(SKY_UNIT_TIME, s, us, NULL);
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decimal or 0x hex, no sign, no spaces; -EINVAL on syntax, -ERANGE on overflow. */
static int
parse_u64_raw(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	int d;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		if (*p == '\0')
			return -EINVAL;
		for (; *p != '\0'; p++) {
			d = hex_val(*p);
			if (d < 0)
				return -EINVAL;
			if (v >> 60)
				return -ERANGE;
			v = (v << 4) | (uint64_t)d;
		}
	} else {
		for (; *p != '\0'; p++) {
			if (!is_digit(*p))
				return -EINVAL;
			if (__builtin_mul_overflow(v, 10, &v) ||
			    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
				return -ERANGE;
		}
	}
	*out = v;
	return 0;
}

int
sky_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int rc = parse_u64_raw(s, &v);

	if (rc < 0)
		return rc;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int
sky_parse_country(const char *s, uint16_t *cc)
{
	char up[2];
	int i;

	if (s == NULL)
		return -EINVAL;
	for (i = 0; i < 2; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return -EINVAL;
		up[i] = c;
	}
	if (s[2] != '\0')
		return -EINVAL;
	*cc = sky_cc(up);
	return 0;
}
