/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/quota: fair use with time as a parameter. Failure cases first: bad config values
 * (named by file, line and key), bad values of the parsers; then period bounds (month
 * ends, 4-week anchors, DST changes in Europe/Paris, leap days), windows, the decision
 * (graded rows, throttle plan, peak priority); then the module on the real subscriber
 * model and counters (sky_subs_account_burst): uncounted classes, directions and windows,
 * graded throttling, the throttle plan applied to the data path's plan, top-up and
 * rollover during throttle, `plan set` following derived plans, commands refused with
 * their reasons, the journal's sequence numbers, and the usage file (saved, loaded,
 * corrupt file refused, reset on the operator's word).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
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
#include <jansson.h>

#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/quota.h"
#include "skygate/runtime.h"
#include "skygate/subscriber.h"

#include "../../lib/quota/quota_priv.h"
#include "fixture.h"

/* "2026-03-29T01:00:00Z" -> Unix seconds */
static int64_t
utc(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
	return (int64_t)timegm(&tm);
}

static int32_t
day_of(const char *s)
{
	int32_t d;

	assert_int_equal(sky_quota_parse_date(s, &d), 0);
	return d;
}

/* ------------------------------------------------------------------ config errors */

#define CSV_PATH_FMT "subscribers: { file: %s }\n"
#define BASE_PLANS                                                                                 \
	"  slow: { down: 1Mbit, up: 256kbit }\n"                                                   \
	"  basic: { down: 50Mbit, up: 5Mbit }\n"

static const struct {
	const char *gold;  /* the flow map of plans.gold after down/up */
	const char *quota; /* a quota: section, or "" */
	const char *expect;
} cfg_bad[] = {
	{"allowance: 0", "", "t.yaml:5: plans.gold.allowance: must be > 0"},
	{"allowance: 50Gbit", "", "t.yaml:5: plans.gold.allowance:"},
	{"allowance: -5GB", "", "t.yaml:5: plans.gold.allowance:"},
	{"period: monthly@1", "", "t.yaml:5: plans.gold.period: needs an allowance"},
	{"allowance: 5GB, period: weekly", "", "t.yaml:5: plans.gold.period: 'weekly': expected"},
	{"allowance: 5GB, period: monthly@32", "", "plans.gold.period: 'monthly@32'"},
	{"allowance: 5GB, period: monthly@0", "", "plans.gold.period: 'monthly@0'"},
	{"allowance: 5GB, period: every 0w", "", "plans.gold.period: 'every 0w'"},
	{"allowance: 5GB, period: every 60w", "", "plans.gold.period: 'every 60w'"},
	{"allowance: 5GB, timezone: Mars/Olympus", "",
	 "t.yaml:5: plans.gold.timezone: 'Mars/Olympus': not a time zone"},
	{"allowance: 5GB, timezone: ../../etc/passwd", "", "plans.gold.timezone:"},
	{"allowance: 5GB, count: [sideways]", "", "plans.gold.count[0]:"},
	{"allowance: 5GB, count: []", "", "plans.gold.count: expected a list of directions"},
	{"allowance: 5GB, uncounted: [\"25:00-07:00\"]", "",
	 "plans.gold.uncounted[0]: '25:00-07:00': expected a local time window"},
	{"allowance: 5GB, uncounted: [\"07:00-07:00\"]", "", "plans.gold.uncounted[0]:"},
	{"allowance: 5GB, uncounted: [\"2-7\"]", "", "plans.gold.uncounted[0]:"},
	{"allowance: 5GB, uncounted: \"02:00-07:00\"", "", "plans.gold.uncounted: expected a list"},
	{"allowance: 5GB, uncounted_classes: [nope]", "",
	 "plans.gold.uncounted_classes[0]: unknown class 'nope'"},
	{"allowance: 5GB, over: { throttle_plan: nope }", "",
	 "plans.gold.over.throttle_plan: unknown plan 'nope'"},
	{"allowance: 5GB, over: { throttle_plan: gold }", "",
	 "plans.gold.over.throttle_plan: a plan cannot throttle to itself"},
	{"allowance: 5GB, over: { throttle_plan: slow, graded: [[5%, 0.9]] }", "",
	 "plans.gold.over: throttle_plan or graded, not both"},
	{"allowance: 5GB, over: { graded: [[10%, 0.9], [5%, 0.95]] }", "",
	 "plans.gold.over.graded[1]: overage shares must ascend"},
	{"allowance: 5GB, over: { graded: [[5%, 1.5]] }", "",
	 "plans.gold.over.graded[0]: rate factor '1.5': expected 0 < factor < 1"},
	{"allowance: 5GB, over: { graded: [[5%, 0]] }", "", "rate factor '0'"},
	{"allowance: 5GB, over: { graded: [[5, 0.9]] }", "", "overage share '5'"},
	{"allowance: 5GB, over: { graded: [5%, 0.9] }", "", "plans.gold.over.graded[0]: expected"},
	{"allowance: 5GB, over: { graded: [] }", "", "plans.gold.over.graded: expected a list"},
	{"allowance: 5GB, over: { slow: 1 }", "", "plans.gold.over.slow: unknown key"},
	{"allowance: 5GB, peak: { window: \"17:00-22:00\", under_share: 150%, weight: 4 }", "",
	 "plans.gold.peak.under_share: '150%': expected a share"},
	{"allowance: 5GB, peak: { window: \"17:00-22:00\", under_share: 50% }", "",
	 "plans.gold.peak.weight: required"},
	{"allowance: 5GB, peak: { window: \"17:00-22:00\", under_share: 50%, weight: 1 }", "",
	 "plans.gold.peak.weight:"},
	{"allowance: 5GB, peak: { window: \"17-22\", under_share: 50%, weight: 4 }", "",
	 "plans.gold.peak.window: '17-22'"},
	{"allowance: 5GB", "quota: { save_interval: 1ms }\n", "quota.save_interval: must be"},
	{"allowance: 5GB", "quota: { timezone: Nowhere }\n", "quota.timezone: 'Nowhere'"},
	{"allowance: 5GB", "quota: { saveinterval: 2s }\n", "quota.saveinterval: unknown key"},
};

static struct sky_subs *
subs_from(const char *yaml, struct sky_cfg_err *err, struct sky_cfg **cfg_out)
{
	struct sky_cfg *cfg = sky_cfg_load_string("t.yaml", yaml, err);
	struct sky_subs *s;

	assert_non_null(cfg);
	s = sky_subs_create(cfg, 2, err);
	*cfg_out = cfg;
	return s;
}

static void
test_config_errors(void **state)
{
	const char *csv = sky_fx_file("e.csv", SKY_FX_CSV_HDR "1,100.64.0.1,,gold,beam1,DE,\n");

	(void)state;
	assert_non_null(csv);
	for (size_t i = 0; i < sizeof(cfg_bad) / sizeof(cfg_bad[0]); i++) {
		char yaml[2048];
		struct sky_cfg_err err = {0};
		struct sky_cfg *cfg;
		struct sky_subs *s;
		struct sky_quota *q;

		snprintf(yaml, sizeof(yaml),
			 CSV_PATH_FMT
			 "plans:\n" BASE_PLANS
			 "  gold: { down: 100Mbit, up: 10Mbit, %s }\n" SKY_FX_BEAMS SKY_FX_CLASSES
			 "%s",
			 csv, cfg_bad[i].gold, cfg_bad[i].quota);
		s = subs_from(yaml, &err, &cfg);
		if (s == NULL) {
			print_error("row %zu: the model refused it: %s\n", i, err.msg);
			fail();
		}
		q = sky_quota_create(cfg, s, &err);
		if (q != NULL || strstr(err.msg, cfg_bad[i].expect) == NULL) {
			print_error("row %zu (%s): expected '%s', got '%s'\n", i, cfg_bad[i].gold,
				    cfg_bad[i].expect, q ? "(accepted)" : err.msg);
			fail();
		}
		sky_subs_destroy(s);
		sky_cfg_free(cfg);
	}
}

/* ------------------------------------------------------------------ parsers */

static void
test_parsers(void **state)
{
	static const char *const bad_windows[] = {"",
						  "7:00",
						  "07:00-",
						  "07:0-08:00",
						  "24:00-01:00",
						  "07:60-08:00",
						  "07:00-24:01",
						  "07:00-07:00",
						  "07:00-08:00x",
						  NULL};
	static const char *const bad_periods[] = {"",	      "monthly@", "monthly@1x",
						  "every",    "every w",  "every 4",
						  "every 4y", "hourly",	  NULL};
	static const char *const bad_shares[] = {"",	     "5",   "%",       "5.%",
						 "1.23456%", "-5%", "100001%", NULL};
	static const char *const bad_dates[] = {"2026-02-29", "2026-13-01", "2026-1-01",
						"1969-12-31", "2026-04-31", "20260101",
						NULL};
	struct sky_quota_window w;
	struct sky_quota_plan qp;
	uint32_t ppm;
	int32_t d;

	(void)state;
	for (int i = 0; bad_windows[i]; i++)
		if (sky_quota_parse_window(bad_windows[i], &w) == 0)
			fail_msg("window '%s' accepted", bad_windows[i]);
	for (int i = 0; bad_periods[i]; i++)
		if (sky_quota_parse_period(bad_periods[i], &qp) == 0)
			fail_msg("period '%s' accepted", bad_periods[i]);
	for (int i = 0; bad_shares[i]; i++)
		if (sky_quota_parse_share(bad_shares[i], &ppm) == 0)
			fail_msg("share '%s' accepted", bad_shares[i]);
	for (int i = 0; bad_dates[i]; i++)
		if (sky_quota_parse_date(bad_dates[i], &d) == 0)
			fail_msg("date '%s' accepted", bad_dates[i]);
	assert_int_equal(quota_parse_factor("1", &ppm), -EINVAL);
	assert_int_equal(quota_parse_factor("0.0000001", &ppm), -EINVAL);
	assert_int_equal(quota_parse_factor("100%", &ppm), -EINVAL);
	assert_int_equal(sky_quota_check_tz("Europe/Nowhere"), -EINVAL);
	assert_int_equal(sky_quota_check_tz("Europe"), -EINVAL); /* a directory */

	assert_int_equal(sky_quota_parse_window("22:00-06:00", &w), 0);
	assert_int_equal(w.start_min, 1320);
	assert_int_equal(w.end_min, 360);
	assert_int_equal(sky_quota_parse_window("17:30-24:00", &w), 0);
	assert_int_equal(w.start_min, 1050);
	assert_int_equal(w.end_min, 0);
	assert_int_equal(sky_quota_parse_period("monthly@31", &qp), 0);
	assert_int_equal(qp.period, SKY_QUOTA_MONTHLY);
	assert_int_equal(qp.day, 31);
	assert_int_equal(sky_quota_parse_period("every 4w", &qp), 0);
	assert_int_equal(qp.period, SKY_QUOTA_EVERY);
	assert_int_equal(qp.days, 28);
	assert_int_equal(sky_quota_parse_period("every 30d", &qp), 0);
	assert_int_equal(qp.days, 30);
	assert_int_equal(sky_quota_parse_share("12.5%", &ppm), 0);
	assert_int_equal(ppm, 125000);
	assert_int_equal(sky_quota_parse_share("200%", &ppm), 0);
	assert_int_equal(ppm, 2000000);
	assert_int_equal(quota_parse_factor("0.95", &ppm), 0);
	assert_int_equal(ppm, 950000);
	assert_int_equal(quota_parse_factor("5%", &ppm), 0);
	assert_int_equal(ppm, 50000);
	assert_int_equal(sky_quota_parse_date("1970-01-02", &d), 0);
	assert_int_equal(d, 1);
	assert_int_equal(sky_quota_parse_date("2028-02-29", &d), 0);
	assert_int_equal(d, (int32_t)(utc("2028-02-29T00:00:00Z") / 86400));
	for (int64_t z = -1000; z < 200000; z += 37) { /* the civil round trip */
		int64_t y;
		int m, dd;

		quota_civil_from_days(z, &y, &m, &dd);
		assert_int_equal(quota_days_from_civil(y, m, dd), z);
	}
}

/* ------------------------------------------------------------------ period bounds */

static const struct {
	const char *period, *tz, *anchor; /* anchor: "every" periods only */
	const char *now, *start, *end;	  /* UTC */
} periods[] = {
	/* month ends: day 31 is the last day of shorter months */
	{"monthly@1", "UTC", NULL, "2026-03-15T12:00:00Z", "2026-03-01T00:00:00Z",
	 "2026-04-01T00:00:00Z"},
	{"monthly@1", "UTC", NULL, "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z",
	 "2026-04-01T00:00:00Z"},
	{"monthly@1", "UTC", NULL, "2026-02-28T23:59:59Z", "2026-02-01T00:00:00Z",
	 "2026-03-01T00:00:00Z"},
	{"monthly@31", "UTC", NULL, "2026-02-15T00:00:00Z", "2026-01-31T00:00:00Z",
	 "2026-02-28T00:00:00Z"},
	{"monthly@31", "UTC", NULL, "2026-02-28T00:00:00Z", "2026-02-28T00:00:00Z",
	 "2026-03-31T00:00:00Z"},
	{"monthly@31", "UTC", NULL, "2026-04-30T10:00:00Z", "2026-04-30T00:00:00Z",
	 "2026-05-31T00:00:00Z"},
	{"monthly@15", "UTC", NULL, "2026-12-20T00:00:00Z", "2026-12-15T00:00:00Z",
	 "2027-01-15T00:00:00Z"},
	{"monthly@15", "UTC", NULL, "2027-01-02T00:00:00Z", "2026-12-15T00:00:00Z",
	 "2027-01-15T00:00:00Z"},
	/* leap day */
	{"monthly@30", "UTC", NULL, "2028-02-29T12:00:00Z", "2028-02-29T00:00:00Z",
	 "2028-03-30T00:00:00Z"},
	{"monthly@30", "UTC", NULL, "2028-02-28T12:00:00Z", "2028-01-30T00:00:00Z",
	 "2028-02-29T00:00:00Z"},
	{"monthly@29", "UTC", NULL, "2027-03-01T00:00:00Z", "2027-02-28T00:00:00Z",
	 "2027-03-29T00:00:00Z"},
	{"daily", "UTC", NULL, "2028-02-29T05:00:00Z", "2028-02-29T00:00:00Z",
	 "2028-03-01T00:00:00Z"},
	/* Europe/Paris: local midnight, CET (UTC+1) in winter, CEST (UTC+2) in summer */
	{"monthly@1", "Europe/Paris", NULL, "2026-03-01T00:30:00Z", "2026-02-28T23:00:00Z",
	 "2026-03-31T22:00:00Z"},
	{"monthly@1", "Europe/Paris", NULL, "2026-02-28T22:59:59Z", "2026-01-31T23:00:00Z",
	 "2026-02-28T23:00:00Z"},
	/* the DST change days: 23 hours (29 March 2026), 25 hours (25 October 2026) */
	{"daily", "Europe/Paris", NULL, "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z",
	 "2026-03-29T22:00:00Z"},
	{"daily", "Europe/Paris", NULL, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z",
	 "2026-10-25T23:00:00Z"},
	{"monthly@1", "Europe/Paris", NULL, "2026-10-15T00:00:00Z", "2026-09-30T22:00:00Z",
	 "2026-10-31T23:00:00Z"},
	/* 4-week periods from the subscriber's anchor date */
	{"every 4w", "UTC", "2026-01-05", "2026-03-03T08:00:00Z", "2026-03-02T00:00:00Z",
	 "2026-03-30T00:00:00Z"},
	{"every 4w", "UTC", "2026-01-05", "2026-01-05T00:00:00Z", "2026-01-05T00:00:00Z",
	 "2026-02-02T00:00:00Z"},
	{"every 4w", "UTC", "2026-03-01", "2026-02-20T00:00:00Z", "2026-02-01T00:00:00Z",
	 "2026-03-01T00:00:00Z"},
	{"every 4w", "Europe/Paris", "2026-03-01", "2026-03-30T10:00:00Z", "2026-03-28T23:00:00Z",
	 "2026-04-25T22:00:00Z"},
	{"every 4w", "Europe/Paris", "2028-02-01", "2028-02-29T12:00:00Z", "2028-02-28T23:00:00Z",
	 "2028-03-27T22:00:00Z"},
};

static void
test_period_bounds(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
		struct sky_quota_plan qp;
		int64_t s = 0, e = 0;

		memset(&qp, 0, sizeof(qp));
		assert_int_equal(sky_quota_parse_period(periods[i].period, &qp), 0);
		snprintf(qp.tz, sizeof(qp.tz), "%s", periods[i].tz);
		assert_int_equal(sky_quota_period_bounds(
					 &qp, periods[i].anchor ? day_of(periods[i].anchor) : 0,
					 utc(periods[i].now), &s, &e),
				 0);
		if (s != utc(periods[i].start) || e != utc(periods[i].end))
			fail_msg("row %zu (%s %s at %s): [%lld, %lld), want [%s, %s)", i,
				 periods[i].period, periods[i].tz, periods[i].now, (long long)s,
				 (long long)e, periods[i].start, periods[i].end);
	}
	/* an unknown zone is refused, and the process's TZ is left as it was */
	{
		struct sky_quota_plan qp = {.period = SKY_QUOTA_DAILY};
		int64_t s, e;

		snprintf(qp.tz, sizeof(qp.tz), "Nowhere/Atlantis");
		assert_int_equal(sky_quota_period_bounds(&qp, 0, 0, &s, &e), -EINVAL);
		assert_null(getenv("TZ"));
	}
}

/* ------------------------------------------------------------------ windows, local time */

static void
test_windows_local(void **state)
{
	struct sky_quota_plan qp = {0};
	int m = -1;
	int32_t d = 0;

	(void)state;
	assert_int_equal(sky_quota_parse_window("02:00-07:00", &qp.uncounted[0]), 0);
	assert_int_equal(sky_quota_parse_window("23:00-01:00", &qp.uncounted[1]), 0);
	qp.n_windows = 2;
	assert_false(sky_quota_uncounted_now(&qp, 119));
	assert_true(sky_quota_uncounted_now(&qp, 120));
	assert_true(sky_quota_uncounted_now(&qp, 419));
	assert_false(sky_quota_uncounted_now(&qp, 420));
	assert_true(sky_quota_uncounted_now(&qp, 1380));
	assert_true(sky_quota_uncounted_now(&qp, 0));
	assert_true(sky_quota_uncounted_now(&qp, 59));
	assert_false(sky_quota_uncounted_now(&qp, 60));
	assert_false(sky_quota_uncounted_now(&qp, 1379));
	/* 01:30 UTC is 02:30 local in winter (counted in Paris: no), 03:30 in summer */
	assert_int_equal(sky_quota_local("Europe/Paris", utc("2026-01-10T01:30:00Z"), &m, &d), 0);
	assert_int_equal(m, 150);
	assert_int_equal(d, day_of("2026-01-10"));
	assert_int_equal(sky_quota_local("Europe/Paris", utc("2026-07-10T01:30:00Z"), &m, &d), 0);
	assert_int_equal(m, 210);
	/* the hour that does not exist on 29 March: 01:00Z is already 03:00 local */
	assert_int_equal(sky_quota_local("Europe/Paris", utc("2026-03-29T01:00:00Z"), &m, &d), 0);
	assert_int_equal(m, 180);
	/* and the local date across midnight */
	assert_int_equal(sky_quota_local("Europe/Paris", utc("2026-07-10T22:30:00Z"), &m, &d), 0);
	assert_int_equal(m, 30);
	assert_int_equal(d, day_of("2026-07-11"));
	assert_null(getenv("TZ"));
}

/* ------------------------------------------------------------------ the decision */

static const struct {
	uint64_t used, credit;
	int minute;
	uint8_t state;
	int grade;
	uint32_t factor_ppm;
} graded_rows[] = {
	{0, 0, 600, SKY_QUOTA_UNDER, -1, 1000000},
	{1000000, 0, 600, SKY_QUOTA_UNDER, -1, 1000000}, /* exactly the allowance */
	{1000001, 0, 600, SKY_QUOTA_OVER, -1, 1000000},	 /* over, under the first row */
	{1049999, 0, 600, SKY_QUOTA_OVER, -1, 1000000},
	{1050000, 0, 600, SKY_QUOTA_THROTTLED, 0, 950000}, /* 5 % over */
	{1099999, 0, 600, SKY_QUOTA_THROTTLED, 0, 950000},
	{1100000, 0, 600, SKY_QUOTA_THROTTLED, 1, 900000},
	{2999999, 0, 600, SKY_QUOTA_THROTTLED, 1, 900000},
	{3000000, 0, 600, SKY_QUOTA_THROTTLED, 2, 50000}, /* 200 % over */
	{50000000, 0, 600, SKY_QUOTA_THROTTLED, 2, 50000},
	{1500000, 1000000, 600, SKY_QUOTA_UNDER, -1, 1000000},	 /* a top-up lifts it */
	{2100000, 1000000, 600, SKY_QUOTA_THROTTLED, 0, 950000}, /* over 2 MB by 5 % */
	{2200000, 1000000, 600, SKY_QUOTA_THROTTLED, 1, 900000}, /* by 10 % */
};

static void
test_decide(void **state)
{
	struct sky_quota_plan qp = {.on = true, .allowance_bytes = 1000000, .throttle_plan = -1};
	struct sky_quota_decision d;

	(void)state;
	qp.grades[0] = (struct sky_quota_grade){50000, 950000};
	qp.grades[1] = (struct sky_quota_grade){100000, 900000};
	qp.grades[2] = (struct sky_quota_grade){2000000, 50000};
	qp.n_grades = 3;
	for (size_t i = 0; i < sizeof(graded_rows) / sizeof(graded_rows[0]); i++) {
		d = sky_quota_decide(&qp, graded_rows[i].used, graded_rows[i].credit,
				     graded_rows[i].minute);
		if (d.state != graded_rows[i].state || d.grade != graded_rows[i].grade ||
		    d.factor_ppm != graded_rows[i].factor_ppm || d.throttle || d.peak)
			fail_msg("row %zu: state %u grade %d factor %u, want %u %d %u", i, d.state,
				 d.grade, d.factor_ppm, graded_rows[i].state, graded_rows[i].grade,
				 graded_rows[i].factor_ppm);
	}
	d = sky_quota_decide(&qp, 800000, 0, 0);
	assert_int_equal(d.used_ppm, 800000);
	d = sky_quota_decide(&qp, 20000000, 0, 0);
	assert_int_equal(d.used_ppm, 10000000); /* capped at 10x */

	/* a throttle plan: any overage */
	qp.n_grades = 0;
	qp.throttle_plan = 3;
	d = sky_quota_decide(&qp, 1000001, 0, 0);
	assert_int_equal(d.state, SKY_QUOTA_THROTTLED);
	assert_true(d.throttle);
	d = sky_quota_decide(&qp, 1000001, 1, 0);
	assert_int_equal(d.state, SKY_QUOTA_UNDER);
	assert_false(d.throttle);

	/* peak priority: in 17:00-22:00, under 50 % of the allowance (+ top-ups) */
	qp.peak = true;
	assert_int_equal(sky_quota_parse_window("17:00-22:00", &qp.peak_window), 0);
	qp.peak_under_ppm = 500000;
	qp.peak_weight = 4;
	assert_true(sky_quota_decide(&qp, 400000, 0, 18 * 60).peak);
	assert_true(sky_quota_decide(&qp, 499999, 0, 17 * 60).peak);
	assert_false(sky_quota_decide(&qp, 500000, 0, 18 * 60).peak);
	assert_true(sky_quota_decide(&qp, 900000, 1000000, 18 * 60).peak);
	assert_false(sky_quota_decide(&qp, 400000, 0, 17 * 60 - 1).peak);
	assert_false(sky_quota_decide(&qp, 400000, 0, 22 * 60).peak);
	assert_false(sky_quota_decide(&qp, 2000000, 0, 18 * 60).peak); /* over: throttled */
	/* no allowance: nothing */
	qp.on = false;
	assert_int_equal(sky_quota_decide(&qp, 5, 0, 0).state, SKY_QUOTA_NONE);
}

/* ------------------------------------------------------------------ the module */

#define QCSV                                                                                       \
	SKY_FX_CSV_HDR "1,100.64.0.1,,gold,beam1,DE,\n"                                            \
		       "2,100.64.0.2,,silver,beam1,DE,\n"                                          \
		       "3,100.64.0.3,,basic,beam1,DE,\n"                                           \
		       "4,100.64.0.4,,peaky,beam1,DE,\n"

#define QPLANS                                                                                     \
	"plans:\n" BASE_PLANS                                                                      \
	"  gold: { down: 100Mbit, up: 10Mbit, allowance: 1MB, period: monthly@1,\n"                \
	"          over: { graded: [[5%%, 0.5], [50%%, 0.1]] } }\n"                                \
	"  silver: { down: 20Mbit, up: 2Mbit, allowance: 1MB, period: every 30d, timezone: UTC,\n" \
	"            count: [down], uncounted: [\"02:00-07:00\"], uncounted_classes: [bulk],\n"    \
	"            over: { throttle_plan: slow } }\n"                                            \
	"  peaky: { down: 10Mbit, up: 1Mbit, weight: 10, allowance: 1MB, period: every 30d,\n"     \
	"           peak: { window: \"17:00-22:00\", under_share: 50%%, weight: 4 } }\n"

struct mod {
	struct sky_cfg *cfg;
	struct sky_subs *s;
	struct sky_quota *q;
};

static void
mod_make(struct mod *m)
{
	struct sky_cfg_err err = {0};
	const char *csv = sky_fx_file("q.csv", QCSV);

	assert_non_null(csv);
	m->cfg = sky_fx_cfg("q.yaml", &err, CSV_PATH_FMT QPLANS SKY_FX_BEAMS SKY_FX_CLASSES, csv);
	if (m->cfg == NULL)
		fail_msg("%s", err.msg);
	m->s = sky_subs_create(m->cfg, 2, &err);
	if (m->s == NULL)
		fail_msg("%s", err.msg);
	m->q = sky_quota_create(m->cfg, m->s, &err);
	if (m->q == NULL)
		fail_msg("%s", err.msg);
	assert_int_equal(sky_subs_register(m->s), 0);
	assert_int_equal(sky_quota_register(m->q), 0);
}

static void
mod_free(struct mod *m)
{
	sky_periodic_clear();
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_quota_destroy(m->q);
	sky_subs_destroy(m->s);
	sky_cfg_free(m->cfg);
}

/* a packet of `bytes` for subscriber address sub in direction dir, class cls, counted by
 * worker w; returns the plan the data path gave it */
static uint16_t
send_bytes(struct mod *m, unsigned int w, const char *sub, int dir, uint8_t cls, uint32_t bytes)
{
	struct sky_meta x;

	memset(&x, 0, sizeof(x));
	x.dir = (uint8_t)dir;
	x.l3 = 4;
	x.verdict = SKY_V_PASS;
	x.sub_idx = SKY_SUB_NONE;
	x.pkt_len = bytes;
	x.proto = 17;
	assert_int_equal(inet_pton(AF_INET, sub, dir == SKY_DIR_UP ? x.src : x.dst), 1);
	assert_int_equal(inet_pton(AF_INET, "203.0.113.9", dir == SKY_DIR_UP ? x.dst : x.src), 1);
	sky_subs_lookup_burst(m->s, w, &x, 1);
	assert_int_not_equal(x.sub_idx, SKY_SUB_NONE);
	x.cls = cls;
	if (bytes > 0)
		sky_subs_account_burst(m->s, w, &x, 1);
	return x.plan;
}

static struct sky_quota_usage
usage(struct mod *m, uint32_t id)
{
	struct sky_quota_usage u;

	assert_int_equal(sky_quota_usage(m->q, id, &u), 0);
	return u;
}

static json_t *
run(const char *line, int replay)
{
	char buf[1024], *argv[SKY_CTL_MAX_ARGS], *save = NULL;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	return sky_ctl_dispatch_argv(argc, argv, 0, 0, replay);
}

static json_t *
ok(const char *line)
{
	json_t *r = run(line, 0);

	if (!json_is_true(json_object_get(r, "ok")))
		fail_msg("'%s' failed: %s", line, json_string_value(json_object_get(r, "error")));
	return r;
}

static void
bad(const char *line, const char *expect)
{
	json_t *r = run(line, 0);
	const char *e = json_string_value(json_object_get(r, "error"));

	if (json_is_true(json_object_get(r, "ok")) || e == NULL || strstr(e, expect) == NULL)
		fail_msg("'%s': expected error '%s', got '%s'", line, expect, e ? e : "(ok)");
	json_decref(r);
}

static int
plan_idx(struct mod *m, const char *name)
{
	int i = sky_subs_plan_index(m->s, name);

	if (i < 0)
		fail_msg("no plan '%s'", name);
	return i;
}

static uint64_t
event_count(struct mod *m, enum quota_event ev)
{
	return m->q->events[ev];
}

static void
test_commands_refused(void **state)
{
	struct mod m;
	const char *f;

	(void)state;
	mod_make(&m);
	bad("quota show", "usage: quota show SUBSCRIBER_ID");
	bad("quota show x1", "'x1': expected a subscriber id");
	bad("quota show 999", "no subscriber with id 999");
	bad("quota show 3", "subscriber 3: plan 'basic' has no allowance");
	bad("quota add 1", "usage: quota add SUBSCRIBER_ID SIZE");
	bad("quota add 1 lots", "'lots': expected a size > 0");
	bad("quota add 1 0", "'0': expected a size > 0");
	bad("quota add 1 10Gbit", "'10Gbit': expected a size");
	bad("quota add 999 1GB", "no subscriber with id 999");
	bad("quota add 3 1GB", "subscriber 3: plan 'basic' has no allowance");
	bad("quota add 1 1GB seq=4", "'seq=4': seq= is written by the journal only");
	bad("quota reset", "usage: quota reset SUBSCRIBER_ID");
	bad("quota reset 3", "plan 'basic' has no allowance");
	bad("quota set 1", "usage: quota set SUBSCRIBER_ID");
	bad("quota set 1 used", "'used': expected key=value");
	bad("quota set 1 spent=5GB", "'spent=5GB': unknown key (used, credit, anchor)");
	bad("quota set 1 used=5Gbit", "'used=5Gbit': expected a size");
	bad("quota set 1 anchor=2026-02-30", "'anchor=2026-02-30': expected a date YYYY-MM-DD");
	bad("quota set 1 anchor=2999-01-01", "anchor date in the future");
	bad("quota import", "usage: quota import FILE.csv");
	bad("quota import /nonexistent/u.csv", "/nonexistent/u.csv");
	f = sky_fx_file("u1.csv", "id,spent\n1,5GB\n");
	bad("quota import /tmp/none", "/tmp/none");
	{
		char line[600];

		snprintf(line, sizeof(line), "quota import %s", f);
		bad(line,
		    "u1.csv:1: header: expected id,used[,credit][,anchor], column 2 is 'spent'");
		f = sky_fx_file("u2.csv", "id,used\n1,5GB\n999,1GB\n");
		snprintf(line, sizeof(line), "quota import %s", f);
		bad(line, "u2.csv:3: no subscriber with id 999");
		f = sky_fx_file("u3.csv", "id,used,credit\n1,5GB,1GB\n2,lots,\n");
		snprintf(line, sizeof(line), "quota import %s", f);
		bad(line, "u3.csv:3: 'used=lots': expected a size");
		f = sky_fx_file("u4.csv", "id,used\n3,5GB\n");
		snprintf(line, sizeof(line), "quota import %s", f);
		bad(line, "u4.csv:2: subscriber 3: plan 'basic' has no allowance");
		/* nothing changed by the refused imports */
		assert_int_equal(usage(&m, 1).used_bytes, 0);
		f = sky_fx_file("u5.csv", "# migrated\nid,used,credit,anchor\n1,200KB,,\n"
					  "2,300KB,1MB,2026-01-05\n");
		snprintf(line, sizeof(line), "quota import %s", f);
		json_decref(ok(line));
		assert_int_equal(usage(&m, 1).used_bytes, 200000);
		assert_int_equal(usage(&m, 2).used_bytes, 300000);
		assert_int_equal(usage(&m, 2).credit_bytes, 1000000);
		assert_int_equal(usage(&m, 2).anchor_day, day_of("2026-01-05"));
	}
	/* `plan set NAME allowance=`: checked before it is journaled, applied with the plan */
	bad("plan set gold allowance=lots", "'allowance=lots': expected a size > 0");
	bad("plan set gold allowance=0", "'allowance=0': expected a size > 0");
	bad("plan set gold~50% allowance=1MB", "made by fair use itself");
	bad("plan set gold allowence=1MB", "unknown key (down, up, burst, down_burst, up_burst, "
					   "weight, cw.CLASS, allowance)");
	assert_int_equal(usage(&m, 1).allowance_bytes, 1000000);
	json_decref(ok("plan set gold allowance=2MB down=90Mbit"));
	assert_int_equal(usage(&m, 1).allowance_bytes, 2000000);
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)plan_idx(&m, "gold")).down_bps, 90000000);
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)plan_idx(&m, "gold~50%")).down_bps,
			 45000000);
	{
		struct sky_quota_usage u;

		assert_int_equal(sky_quota_usage(m.q, 3, &u), -ENODATA);
		json_decref(ok("plan set basic allowance=100KB"));
		send_bytes(&m, 0, "100.64.0.3", SKY_DIR_DOWN, 1, 150000);
		sky_quota_fold(m.q, quota_now());
		u = usage(&m, 3);
		assert_int_equal(u.used_bytes, 150000);
		assert_int_equal(u.d.state, SKY_QUOTA_OVER); /* no rate cut configured */
		json_decref(ok("plan set basic allowance=none"));
		assert_int_equal(sky_quota_usage(m.q, 3, &u), -ENODATA);
	}
	mod_free(&m);
}

static void
test_usage_and_throttling(void **state)
{
	struct mod m;
	struct sky_quota_usage u;
	int64_t now = quota_now(), midnight = (now / 86400 + 1) * 86400;
	int gold, gold50, gold10, silver, slow, peaky, peaky_peak;
	json_t *r;

	(void)state;
	mod_make(&m);
	gold = plan_idx(&m, "gold");
	gold50 = plan_idx(&m, "gold~50%");
	gold10 = plan_idx(&m, "gold~10%");
	silver = plan_idx(&m, "silver");
	slow = plan_idx(&m, "slow");
	peaky = plan_idx(&m, "peaky");
	peaky_peak = plan_idx(&m, "peaky~peak");
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)gold50).down_bps, 50000000);
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)gold10).up_bps, 1000000);
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)peaky_peak).weight, 40);
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)peaky_peak).down_bps, 10000000);

	/* graded: 4 % over is over without a cut; 6 % over is the first row */
	send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 2, 640000);
	send_bytes(&m, 1, "100.64.0.1", SKY_DIR_DOWN, 0, 400000);
	sky_quota_fold(m.q, now);
	u = usage(&m, 1);
	assert_int_equal(u.used_bytes, 1040000);
	assert_int_equal(u.d.state, SKY_QUOTA_OVER);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 2, 0), gold);
	assert_int_equal(event_count(&m, QUOTA_EV_WARN80), 1);
	assert_int_equal(event_count(&m, QUOTA_EV_WARN100), 1);
	send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 2, 20000);
	sky_quota_fold(m.q, now + 1);
	u = usage(&m, 1);
	assert_int_equal(u.d.state, SKY_QUOTA_THROTTLED);
	assert_int_equal(u.d.grade, 0);
	assert_int_equal(u.eff_plan, gold50);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 2, 0), gold50);
	assert_int_equal(event_count(&m, QUOTA_EV_THROTTLE_ON), 1);
	/* his own plan is unchanged in the model; `subscriber show` tells both */
	r = ok("subscriber show 1");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "result"), "plan")), "gold");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(r, "result"), "quota"), "effective_plan")),
		"gold~50%");
	json_decref(r);
	/* upstream counts too (count: default both): 56 % over is the second row */
	send_bytes(&m, 1, "100.64.0.1", SKY_DIR_UP, 1, 500000);
	sky_quota_fold(m.q, now + 2);
	assert_int_equal(usage(&m, 1).eff_plan, gold10);
	assert_int_equal(send_bytes(&m, 1, "100.64.0.1", SKY_DIR_UP, 1, 0), gold10);
	/* top-up during throttle: lifted at once, not at the next fold */
	json_decref(ok("quota add 1 1MB"));
	u = usage(&m, 1);
	assert_int_equal(u.credit_bytes, 1000000);
	assert_int_equal(u.d.state, SKY_QUOTA_UNDER);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 2, 0), gold);
	assert_int_equal(event_count(&m, QUOTA_EV_THROTTLE_OFF), 1);
	assert_int_equal(event_count(&m, QUOTA_EV_TOPUP), 1);
	/* `plan set` of the base plan: its derived plans follow */
	json_decref(ok("plan set gold down=80Mbit"));
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)gold50).down_bps, 40000000);
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)gold10).down_bps, 8000000);
	assert_int_equal(sky_subs_plan(m.s, (unsigned int)gold50).up_bps, 5000000);

	/* silver: downstream only, bulk not counted, 02:00-07:00 UTC not counted */
	send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 2, 600000); /* bulk */
	send_bytes(&m, 0, "100.64.0.2", SKY_DIR_UP, 1, 600000);	  /* upstream */
	sky_quota_fold(m.q, midnight + 8 * 3600);
	assert_int_equal(usage(&m, 2).used_bytes, 0);
	send_bytes(&m, 1, "100.64.0.2", SKY_DIR_DOWN, 1, 600000);
	sky_quota_fold(m.q, midnight + 9 * 3600);
	assert_int_equal(usage(&m, 2).used_bytes, 600000);
	send_bytes(&m, 1, "100.64.0.2", SKY_DIR_DOWN, 1, 600000);
	sky_quota_fold(m.q, midnight + 3 * 3600); /* in the window */
	assert_int_equal(usage(&m, 2).used_bytes, 600000);
	send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 3, 500000);
	sky_quota_fold(m.q, midnight + 9 * 3600 + 10);
	u = usage(&m, 2);
	assert_int_equal(u.used_bytes, 1100000);
	assert_int_equal(u.d.state, SKY_QUOTA_THROTTLED);
	assert_true(u.d.throttle);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 1, 0), slow);
	/* the state a policy reads */
	assert_int_equal(sky_subs_quota_state(m.s, 2), SKY_QUOTA_THROTTLED);
	assert_int_equal(sky_subs_quota_state(m.s, 3), SKY_QUOTA_NONE);
	assert_int_equal(sky_subs_quota_state(m.s, 1), SKY_QUOTA_UNDER);
	/* rollover during throttle: usage back to zero at the period's end, plan back (and
	 * the others whose period ended by then roll over too) */
	{
		uint64_t before = event_count(&m, QUOTA_EV_ROLLOVER);
		int64_t t = u.period_end + 60;
		unsigned int ended = 0;

		ended += usage(&m, 1).period_end <= t;
		ended += usage(&m, 2).period_end <= t;
		ended += usage(&m, 4).period_end <= t;
		assert_in_range(ended, 1, 3);
		sky_quota_fold(m.q, t);
		assert_int_equal(event_count(&m, QUOTA_EV_ROLLOVER) - before, ended);
	}
	u = usage(&m, 2);
	assert_int_equal(u.used_bytes, 0);
	assert_int_equal(u.d.state, SKY_QUOTA_UNDER);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 1, 0), silver);

	/* peak: under half his allowance, inside 17:00-22:00 (his plan's zone: UTC) */
	sky_quota_fold(m.q, midnight + 18 * 3600);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.4", SKY_DIR_DOWN, 1, 0), peaky_peak);
	sky_quota_fold(m.q, midnight + 12 * 3600);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.4", SKY_DIR_DOWN, 1, 0), peaky);
	send_bytes(&m, 0, "100.64.0.4", SKY_DIR_DOWN, 1, 600000);
	sky_quota_fold(m.q, midnight + 18 * 3600 + 60);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.4", SKY_DIR_DOWN, 1, 0), peaky);

	/* reset and set (migration) */
	json_decref(ok("quota reset 1"));
	u = usage(&m, 1);
	assert_int_equal(u.used_bytes, 0);
	assert_int_equal(u.credit_bytes, 0);
	json_decref(ok("quota set 2 used=2MB"));
	assert_int_equal(send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 1, 0), slow);
	/* a subscriber set to a plan without allowance leaves fair use, and comes back */
	json_decref(ok("subscriber set 2 plan=basic"));
	assert_int_equal(send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 1, 0),
			 plan_idx(&m, "basic"));
	assert_int_equal(sky_quota_usage(m.q, 2, &u), -ENODATA);
	assert_int_equal(sky_subs_quota_state(m.s, 2), SKY_QUOTA_NONE); /* at once */
	json_decref(ok("subscriber set 2 plan=silver"));
	assert_int_equal(send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 1, 0), slow);

	/* journal sequence: a replayed change the usage file holds is skipped */
	assert_int_equal(m.q->seq, 3);
	r = run("quota add 2 5MB seq=2", 1);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	assert_int_equal(usage(&m, 2).credit_bytes, 0);
	r = run("quota add 2 5MB seq=4", 1);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	assert_int_equal(usage(&m, 2).credit_bytes, 5000000);
	assert_int_equal(m.q->seq, 4);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.2", SKY_DIR_DOWN, 1, 0), silver);

	/* subscriber top by usage (the figure lib/quota gives the model) */
	bad("subscriber top by=nope", "'nope': unknown figure (by=bytes, usage)");
	r = ok("subscriber top --by usage size=2");
	{
		json_t *a = json_object_get(json_object_get(r, "result"), "subscribers");

		assert_string_equal(
			json_string_value(json_object_get(json_object_get(r, "result"), "by")),
			"usage");
		assert_int_equal(json_array_size(a), 2);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "id")),
				 2);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "usage")),
				 2000000);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 1), "id")),
				 4);
	}
	json_decref(r);

	/* metrics: per-plan aggregates */
	sky_quota_fold(m.q, now + 5);
	{
		size_t len;
		char *txt = sky_metrics_render(&len);

		assert_non_null(txt);
		assert_non_null(strstr(
			txt, "skygate_quota_subscribers{plan=\"gold\",state=\"under\"} 1\n"));
		assert_non_null(
			strstr(txt, "skygate_quota_allowance_bytes{plan=\"silver\"} 1000000\n"));
		assert_non_null(
			strstr(txt, "skygate_quota_events_total{type=\"quota.topup\"} 2\n"));
		assert_null(
			strstr(txt, "skygate_quota_subscriber_used_bytes")); /* off by default */
		free(txt);
	}
	mod_free(&m);
}

/* ------------------------------------------------------------------ the usage file */

static int
count_damaged(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, "usage.damaged-", 14) == 0;
	closedir(d);
	return n;
}

/* cluster takeover: a beam's usage snapshot (sky_quota_usage_all) taken by another node
 * (sky_quota_adopt); failure cases first */
static void
test_adopt(void **state)
{
	struct mod m;
	int64_t now = quota_now();
	struct sky_quota_snap *all = NULL, r;
	size_t n = 0;
	const struct {
		uint32_t id;
		int64_t end_shift; /* period_end relative to now */
		int rc;
	} refused[] = {
		{99, 86400, -ENOENT}, /* no such subscriber here */
		{3, 86400, -ENODATA}, /* basic: no allowance */
		{1, 0, -ESTALE},      /* the record's period is over */
		{1, -3600, -ESTALE},
	};

	(void)state;
	mod_make(&m);
	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		r.id = refused[i].id;
		r.used = 123;
		r.period_start = now - 86400;
		r.period_end = now + refused[i].end_shift;
		assert_int_equal(sky_quota_adopt(m.q, &r, true, true, now), refused[i].rc);
	}
	/* a refused record changed nothing */
	assert_int_equal(usage(&m, 1).used_bytes, 0);

	/* the owner's snapshot: who has usage, heaviest first */
	send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 1, 300000);
	send_bytes(&m, 1, "100.64.0.4", SKY_DIR_DOWN, 1, 600000);
	assert_int_equal(sky_quota_usage_all(m.q, now, &all, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(all[0].id, 4);
	assert_int_equal(all[0].used, 600000);
	assert_int_equal(all[1].id, 1);
	assert_int_equal(all[1].used, 300000);
	r = all[1];
	free(all);

	/* this node counted on its own meanwhile: the owner's record wins over it */
	send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 1, 50000);
	r.used = 1100000; /* over the 1 MB: the graded rate applies at once */
	r.credit = 0;
	assert_int_equal(sky_quota_adopt(m.q, &r, true, true, now), 0);
	assert_int_equal(usage(&m, 1).used_bytes, 1100000);
	assert_int_not_equal(usage(&m, 1).d.state, SKY_QUOTA_UNDER);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 1, 0),
			 plan_idx(&m, "gold~50%"));

	/* top-ups only (take_used false): the usage this node has stays */
	r.used = 5;
	r.credit = 2000000;
	assert_int_equal(sky_quota_adopt(m.q, &r, false, true, now), 0);
	assert_int_equal(usage(&m, 1).used_bytes, 1100000);
	assert_int_equal(usage(&m, 1).credit_bytes, 2000000);
	assert_int_equal(usage(&m, 1).d.state, SKY_QUOTA_UNDER);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 1, 0), plan_idx(&m, "gold"));
	mod_free(&m);
}

/* these run at the wall clock's time (the usage file's load and save read it): subscriber 4
 * (peaky) counts at every hour, subscriber 2 (silver) not in its 02:00-07:00 UTC window */
static void
test_usage_file(void **state)
{
	struct mod m;
	char dir[512], path[600], err[1024];
	int64_t now = quota_now();
	FILE *f;
	long size;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/state", sky_fx_tmpdir());
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/usage", dir);
	unlink(path);

	mod_make(&m);
	assert_int_equal(sky_quota_load(m.q, dir, false, err, sizeof(err)), 0); /* first start */
	send_bytes(&m, 0, "100.64.0.4", SKY_DIR_DOWN, 1, 700000);
	send_bytes(&m, 1, "100.64.0.1", SKY_DIR_DOWN, 1, 1200000);
	json_decref(ok("quota add 1 100KB"));
	assert_int_equal(sky_quota_stop(m.q, err, sizeof(err)), 0);
	assert_int_equal(usage(&m, 4).used_bytes, 700000);
	mod_free(&m);

	/* a restart: the usage, the top-up and the throttle come back */
	mod_make(&m);
	assert_int_equal(sky_quota_load(m.q, dir, false, err, sizeof(err)), 0);
	assert_int_equal(usage(&m, 4).used_bytes, 700000);
	assert_int_equal(usage(&m, 1).used_bytes, 1200000);
	assert_int_equal(usage(&m, 1).credit_bytes, 100000);
	assert_int_equal(m.q->seq, 1);
	sky_quota_fold(m.q, now);
	assert_int_equal(usage(&m, 1).d.state, SKY_QUOTA_THROTTLED);
	assert_int_equal(send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 1, 0),
			 plan_idx(&m, "gold~50%")); /* 1.2 MB of 1.1 MB: 9 % over */
	/* usage of a subscriber the journal adds back after the file was read is kept */
	json_decref(ok("subscriber del 4"));
	assert_int_equal(quota_save(m.q, err, sizeof(err)), 0);
	mod_free(&m);
	mod_make(&m);
	json_decref(ok("subscriber del 4"));
	assert_int_equal(sky_quota_load(m.q, dir, false, err, sizeof(err)), 0);
	json_decref(ok("subscriber add 4 ipv4=100.64.0.4 plan=peaky beam=beam1 country=DE"));
	assert_int_equal(usage(&m, 4).used_bytes, 700000);
	/* a whole-table replacement keeps everyone's usage (by id, whatever his new index) */
	{
		char line[700];
		const char *csv =
			sky_fx_file("q2.csv", SKY_FX_CSV_HDR "4,100.64.0.4,,peaky,beam1,DE,\n"
							     "2,100.64.0.2,,silver,beam1,DE,\n"
							     "1,100.64.0.1,,gold,beam1,DE,\n");

		snprintf(line, sizeof(line), "subscriber load %s", csv);
		json_decref(ok(line));
		assert_int_equal(usage(&m, 4).used_bytes, 700000);
		assert_int_equal(usage(&m, 1).used_bytes, 1200000);
		assert_int_equal(usage(&m, 1).credit_bytes, 100000);
		sky_quota_fold(m.q, now);
		assert_int_equal(send_bytes(&m, 0, "100.64.0.1", SKY_DIR_DOWN, 1, 0),
				 plan_idx(&m, "gold~50%"));
	}
	mod_free(&m);

	/* damage: one byte flipped in the middle, then a truncated file */
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
	fputc(0x5a ^ fgetc(f), f);
	fclose(f);
	mod_make(&m);
	assert_int_equal(sky_quota_load(m.q, dir, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "CRC mismatch"));
	assert_non_null(strstr(err, "--reset-usage"));
	assert_int_equal(usage(&m, 4).used_bytes, 0); /* nothing was read as usage */
	assert_int_equal(truncate(path, size - 10), 0);
	assert_int_equal(sky_quota_load(m.q, dir, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated or damaged"));
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(sky_quota_load(m.q, dir, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a skygate usage file"));
	/* the operator's word: moved aside, counted from zero */
	assert_int_equal(count_damaged(dir), 0);
	assert_int_equal(sky_quota_load(m.q, dir, true, err, sizeof(err)), 0);
	assert_int_equal(count_damaged(dir), 1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(usage(&m, 4).used_bytes, 0);
	mod_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_period_bounds),
		cmocka_unit_test(test_windows_local),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_commands_refused),
		cmocka_unit_test(test_usage_and_throttling),
		cmocka_unit_test(test_usage_file),
		cmocka_unit_test(test_adopt),
	};
	int rc;

	unsetenv("TZ");
	if (sky_fx_eal_start("test_quota", &(struct sky_fx_eal){.lcores = "0-1",
								.mem_mb = 256,
								.skygate_log = "warning"}) < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	sky_fx_eal_stop();
	return rc;
}
