/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fair-use arithmetic with time as a parameter: local dates and minutes in a time zone,
 * period bounds, uncounted windows, the decision over/under an allowance, and the parsers
 * of the config's and the commands' values. No state, no EAL: tests drive it directly.
 *
 * Time zones: the tz database through the C library (localtime_r/mktime) with TZ set to
 * ":NAME" around each computation and put back after, on the control thread only. The
 * library reads the zone file once per switch; the fold does one switch per plan time
 * zone per second and period bounds are computed at rollover only. Civil-date arithmetic
 * (days since the epoch <-> year, month, day) is our own, so month lengths and leap days
 * never depend on mktime's normalisation.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "quota_priv.h"

/* --- civil dates (proleptic Gregorian) --- */

static bool
leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
quota_month_days(int64_t y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* days since 1970-01-01 of y-m-d (m 1..12, d 1..31) */
int64_t
quota_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
quota_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* --- time zones --- */

static char saved_tz[256];
static int saved_state; /* 0 = not saved, 1 = TZ was unset, 2 = saved_tz holds it */

static int
tz_enter(const char *tz)
{
	const char *cur = getenv("TZ");
	char want[SKY_QUOTA_TZ_MAX + 1];

	if (sky_quota_check_tz(tz) < 0)
		return -EINVAL;
	if (cur == NULL) {
		saved_state = 1;
	} else if (strlen(cur) < sizeof(saved_tz)) {
		snprintf(saved_tz, sizeof(saved_tz), "%s", cur);
		saved_state = 2;
	} else {
		return -EINVAL;
	}
	snprintf(want, sizeof(want), ":%s", tz);
	if (setenv("TZ", want, 1) != 0)
		return -errno;
	tzset();
	return 0;
}

static void
tz_leave(void)
{
	if (saved_state == 1)
		unsetenv("TZ");
	else if (saved_state == 2)
		setenv("TZ", saved_tz, 1);
	saved_state = 0;
	tzset();
}

int
sky_quota_check_tz(const char *tz)
{
	char path[128];
	struct stat st;
	size_t n = tz != NULL ? strlen(tz) : 0;

	if (n == 0 || n >= SKY_QUOTA_TZ_MAX || tz[0] == '/' || strstr(tz, "..") != NULL)
		return -EINVAL;
	for (const char *p = tz; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '+' || *p == '/'))
			return -EINVAL;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return -EINVAL;
	return 0;
}

int
sky_quota_local(const char *tz, int64_t now, int *minute, int32_t *day)
{
	time_t t = (time_t)now;
	struct tm tm;
	int rc = tz_enter(tz);

	if (rc < 0)
		return rc;
	if (localtime_r(&t, &tm) == NULL) {
		tz_leave();
		return -EINVAL;
	}
	tz_leave();
	if (minute != NULL)
		*minute = tm.tm_hour * 60 + tm.tm_min;
	if (day != NULL)
		*day = (int32_t)quota_days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1,
						      tm.tm_mday);
	return 0;
}

/* the first instant of local date `day` (TZ already entered): 00:00, or the first minute
 * that exists when a DST change skips midnight */
static int64_t
local_midnight(int64_t day)
{
	int64_t y;
	int m, d;
	struct tm tm;

	quota_civil_from_days(day, &y, &m, &d);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)(y - 1900);
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

int
sky_quota_period_bounds(const struct sky_quota_plan *qp, int32_t anchor_day, int64_t now,
			int64_t *start, int64_t *end)
{
	time_t t = (time_t)now;
	struct tm tm;
	int64_t today, y, s_day, e_day;
	int m, rc = tz_enter(qp->tz);

	if (rc < 0)
		return rc;
	if (localtime_r(&t, &tm) == NULL) {
		tz_leave();
		return -EINVAL;
	}
	y = (int64_t)tm.tm_year + 1900;
	m = tm.tm_mon + 1;
	today = quota_days_from_civil(y, m, tm.tm_mday);
	switch (qp->period) {
	case SKY_QUOTA_DAILY:
		s_day = today;
		e_day = today + 1;
		break;
	case SKY_QUOTA_EVERY: {
		int64_t n = qp->days, k = today - anchor_day;

		k = k >= 0 ? k / n : -((-k + n - 1) / n);
		s_day = anchor_day + k * n;
		e_day = s_day + n;
		break;
	}
	default: { /* monthly: day `day` of the month, the month's last day when shorter */
		int64_t py = m == 1 ? y - 1 : y, ny = m == 12 ? y + 1 : y;
		int pm = m == 1 ? 12 : m - 1, nm = m == 12 ? 1 : m + 1;
		int dd = qp->day < quota_month_days(y, m) ? qp->day : quota_month_days(y, m);

		if (tm.tm_mday >= dd) {
			s_day = quota_days_from_civil(y, m, dd);
			dd = qp->day < quota_month_days(ny, nm) ? qp->day
								: quota_month_days(ny, nm);
			e_day = quota_days_from_civil(ny, nm, dd);
		} else {
			e_day = quota_days_from_civil(y, m, dd);
			dd = qp->day < quota_month_days(py, pm) ? qp->day
								: quota_month_days(py, pm);
			s_day = quota_days_from_civil(py, pm, dd);
		}
		break;
	}
	}
	*start = local_midnight(s_day);
	*end = local_midnight(e_day);
	tz_leave();
	return *start <= now && now < *end ? 0 : -EINVAL;
}

bool
sky_quota_in_window(const struct sky_quota_window *w, int minute)
{
	if (w->start_min < w->end_min)
		return minute >= w->start_min && minute < w->end_min;
	return minute >= w->start_min || minute < w->end_min; /* wraps midnight */
}

bool
sky_quota_uncounted_now(const struct sky_quota_plan *qp, int minute)
{
	for (unsigned int i = 0; i < qp->n_windows; i++)
		if (sky_quota_in_window(&qp->uncounted[i], minute))
			return true;
	return false;
}

struct sky_quota_decision
sky_quota_decide(const struct sky_quota_plan *qp, uint64_t used, uint64_t credit, int minute)
{
	struct sky_quota_decision d = {
		.state = SKY_QUOTA_NONE, .grade = -1, .factor_ppm = SKY_QUOTA_PPM};
	unsigned __int128 total, share;

	if (!qp->on)
		return d;
	total = (unsigned __int128)qp->allowance_bytes + credit;
	share = (unsigned __int128)used * SKY_QUOTA_PPM / total;
	d.used_ppm = share > 10ULL * SKY_QUOTA_PPM ? 10 * SKY_QUOTA_PPM : (uint32_t)share;
	if ((unsigned __int128)used <= total) {
		d.state = SKY_QUOTA_UNDER;
		d.peak = qp->peak && sky_quota_in_window(&qp->peak_window, minute) &&
			 d.used_ppm < qp->peak_under_ppm;
		return d;
	}
	d.state = SKY_QUOTA_OVER;
	if (qp->throttle_plan >= 0) {
		d.state = SKY_QUOTA_THROTTLED;
		d.throttle = true;
		return d;
	}
	share = ((unsigned __int128)used - total) * SKY_QUOTA_PPM / total;
	for (unsigned int i = 0; i < qp->n_grades; i++)
		if (share >= qp->grades[i].over_ppm)
			d.grade = (int8_t)i;
	if (d.grade >= 0) {
		d.state = SKY_QUOTA_THROTTLED;
		d.factor_ppm = qp->grades[d.grade].factor_ppm;
	}
	return d;
}

/* --- parsers --- */

/* digits at *p into v (at most 9 of them); the count, 0 if none */
static int
digits(const char **p, uint64_t *v)
{
	int n = 0;

	*v = 0;
	while (**p >= '0' && **p <= '9' && n < 10) {
		*v = *v * 10 + (uint64_t)(**p - '0');
		(*p)++;
		n++;
	}
	return n > 9 ? 0 : n;
}

/* "HH:MM": minutes 0..1440 (24:00 allowed) */
static int
hhmm(const char **p, unsigned int *min)
{
	uint64_t h, m;

	if (digits(p, &h) == 0 || h > 24 || **p != ':')
		return -EINVAL;
	(*p)++;
	if (digits(p, &m) != 2 || m > 59 || (h == 24 && m != 0))
		return -EINVAL;
	*min = (unsigned int)(h * 60 + m);
	return 0;
}

int
sky_quota_parse_window(const char *s, struct sky_quota_window *w)
{
	unsigned int a, b;

	if (s == NULL || hhmm(&s, &a) < 0 || *s++ != '-' || hhmm(&s, &b) < 0 || *s != '\0')
		return -EINVAL;
	if (a == 1440) /* a window starts within the day */
		return -EINVAL;
	if (b == 1440)
		b = 0;
	if (a == b)
		return -EINVAL;
	w->start_min = (uint16_t)a;
	w->end_min = (uint16_t)b;
	return 0;
}

int
sky_quota_parse_period(const char *s, struct sky_quota_plan *qp)
{
	uint64_t v;

	if (s == NULL)
		return -EINVAL;
	if (strcmp(s, "daily") == 0) {
		qp->period = SKY_QUOTA_DAILY;
		return 0;
	}
	if (strcmp(s, "monthly") == 0) {
		qp->period = SKY_QUOTA_MONTHLY;
		qp->day = 1;
		return 0;
	}
	if (strncmp(s, "monthly@", 8) == 0) {
		s += 8;
		if (digits(&s, &v) == 0 || *s != '\0' || v < 1 || v > 31)
			return -EINVAL;
		qp->period = SKY_QUOTA_MONTHLY;
		qp->day = (uint8_t)v;
		return 0;
	}
	if (strncmp(s, "every ", 6) == 0) {
		s += 6;
		if (digits(&s, &v) == 0 || v == 0)
			return -EINVAL;
		if (strcmp(s, "w") == 0)
			v *= 7;
		else if (strcmp(s, "d") != 0)
			return -EINVAL;
		if (v > 366)
			return -EINVAL;
		qp->period = SKY_QUOTA_EVERY;
		qp->days = (uint16_t)v;
		return 0;
	}
	return -EINVAL;
}

/* a decimal with at most `scale` fraction digits, times 10^scale */
static int
fixed(const char **p, int scale, uint64_t *out)
{
	uint64_t v, f = 0;
	int nf = 0;

	if (digits(p, &v) == 0)
		return -EINVAL;
	if (**p == '.') {
		(*p)++;
		while (**p >= '0' && **p <= '9') {
			if (nf == scale)
				return -EINVAL;
			f = f * 10 + (uint64_t)(**p - '0');
			(*p)++;
			nf++;
		}
		if (nf == 0)
			return -EINVAL;
	}
	for (int i = nf; i < scale; i++)
		f *= 10;
	for (int i = 0; i < scale; i++)
		v *= 10;
	*out = v + f;
	return 0;
}

int
sky_quota_parse_share(const char *s, uint32_t *ppm)
{
	uint64_t v;

	if (s == NULL || fixed(&s, 4, &v) < 0 || strcmp(s, "%") != 0 || v > 10000ULL * 10000)
		return -EINVAL;
	*ppm = (uint32_t)v;
	return 0;
}

/* a rate factor: "0.95" or "95%", strictly between 0 and 1 */
int
quota_parse_factor(const char *s, uint32_t *ppm)
{
	uint64_t v;
	const char *p = s;

	if (s == NULL)
		return -EINVAL;
	if (s[0] != '\0' && s[strlen(s) - 1] == '%') {
		if (sky_quota_parse_share(s, ppm) < 0)
			return -EINVAL;
		v = *ppm;
	} else if (fixed(&p, 6, &v) < 0 || *p != '\0') {
		return -EINVAL;
	}
	if (v == 0 || v >= SKY_QUOTA_PPM)
		return -EINVAL;
	*ppm = (uint32_t)v;
	return 0;
}

int
sky_quota_parse_date(const char *s, int32_t *day)
{
	uint64_t y, m, d;

	if (s == NULL || digits(&s, &y) != 4 || *s++ != '-' || digits(&s, &m) != 2 || *s++ != '-' ||
	    digits(&s, &d) != 2 || *s != '\0')
		return -EINVAL;
	if (y < 1970 || m < 1 || m > 12 || d < 1 ||
	    d > (uint64_t)quota_month_days((int64_t)y, (int)m))
		return -EINVAL;
	*day = (int32_t)quota_days_from_civil((int64_t)y, (int)m, (int)d);
	return 0;
}

void
quota_date_str(int32_t day, char *buf, size_t n)
{
	int64_t y;
	int m, d;

	quota_civil_from_days(day, &y, &m, &d);
	snprintf(buf, n, "%04lld-%02d-%02d", (long long)y, m, d);
}
