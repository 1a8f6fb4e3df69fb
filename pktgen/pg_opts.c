/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * skygate-pktgen control path: the class table, option value parsers, the subscriber
 * CSV (read with libskygate's reader, generate, write) and the latency histogram helpers. No DPDK
 * here, so the unit test and the --write-csv mode run without EAL.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/subscriber.h"

#include "pg.h"

/*
 * Class -> DSCP and services, consistent with the demo config's `classes:` rules
 * (realtime by DSCP 46 and ports 5060/53, interactive 443/22, bulk 80/4000, scavenger
 * DSCP 8 and port 6881). A flow of a class uses svc[flow % n_svc].
 */
const struct pg_class_def pg_classes[] = {
	{"realtime", 46, 2, {{IPPROTO_UDP, 5060}, {IPPROTO_UDP, 53}}},
	{"interactive", 0, 2, {{IPPROTO_TCP, 443}, {IPPROTO_TCP, 22}}},
	{"bulk", 0, 2, {{IPPROTO_TCP, 80}, {IPPROTO_UDP, 4000}}},
	{"scavenger", 8, 1, {{IPPROTO_UDP, 6881}}},
};
const unsigned int pg_n_classes = sizeof(pg_classes) / sizeof(pg_classes[0]);

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static char *
trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int
pg_mix_parse(const char *s, struct pg_mix *mix, char *err, size_t errlen)
{
	memset(mix, 0, sizeof(*mix));
	if (s == NULL || *s == 0)
		return fail(err, errlen, "empty list");
	char *dup = strdup(s), *save = NULL;
	if (dup == NULL)
		return fail(err, errlen, "out of memory");
	int rc = 0;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		char *colon = strchr(tok, ':');
		double w = 1;
		if (colon) {
			*colon = 0;
			char *end;
			errno = 0;
			w = strtod(colon + 1, &end);
			if (errno || end == colon + 1 || *trim(end) || !(w >= 0) || isinf(w)) {
				rc = fail(err, errlen, "'%s': bad weight '%s'", tok, colon + 1);
				break;
			}
		}
		tok = trim(tok);
		if (*tok == 0 || strlen(tok) >= PG_NAME_MAX) {
			rc = fail(err, errlen, "bad name '%s' in '%s'", tok, s);
			break;
		}
		for (unsigned int i = 0; i < mix->n; i++)
			if (strcmp(mix->name[i], tok) == 0) {
				rc = fail(err, errlen, "'%s' listed twice", tok);
				goto out;
			}
		if (mix->n == PG_MAX_MIX) {
			rc = fail(err, errlen, "more than %d entries", PG_MAX_MIX);
			break;
		}
		snprintf(mix->name[mix->n], PG_NAME_MAX, "%s", tok);
		mix->weight[mix->n++] = w;
	}
out:
	free(dup);
	if (rc == 0) {
		double sum = 0;
		for (unsigned int i = 0; i < mix->n; i++)
			sum += mix->weight[i];
		if (mix->n == 0 || sum <= 0)
			rc = fail(err, errlen, "'%s': weights sum to zero", s);
	}
	return rc;
}

int
pg_list_parse(const char *s, struct pg_mix *mix, char *err, size_t errlen)
{
	if (strchr(s, ':'))
		return fail(err, errlen, "'%s': a plain list takes no weights", s);
	return pg_mix_parse(s, mix, err, errlen);
}

void
pg_mix_apportion(const struct pg_mix *mix, uint64_t total, uint64_t *out)
{
	double sum = 0, rem[PG_MAX_MIX];
	uint64_t given = 0;
	for (unsigned int i = 0; i < mix->n; i++)
		sum += mix->weight[i];
	for (unsigned int i = 0; i < mix->n; i++) {
		double exact = (double)total * mix->weight[i] / sum;
		out[i] = (uint64_t)floor(exact);
		rem[i] = exact - (double)out[i];
		given += out[i];
	}
	while (given < total) { /* largest remainder first, ties to the earlier entry */
		unsigned int best = 0;
		for (unsigned int i = 1; i < mix->n; i++)
			if (rem[i] > rem[best])
				best = i;
		out[best]++;
		rem[best] = -1;
		given++;
	}
}

int
pg_rate_parse(const char *s, struct pg_rate *r, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || isinf(v))
		return fail(err, errlen, "rate '%s': not a number", s);
	if (v == 0 && *end == 0) {
		r->unit = PG_RATE_NONE;
		r->value = 0;
		return 0;
	}
	double mult = 1;
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1e3;
		end++;
		break;
	case 'M':
		mult = 1e6;
		end++;
		break;
	case 'G':
		mult = 1e9;
		end++;
		break;
	default:
		break;
	}
	if (strcmp(end, "pps") == 0)
		r->unit = PG_RATE_PPS;
	else if (strcmp(end, "bit") == 0 || strcmp(end, "bps") == 0 || strcmp(end, "bit/s") == 0 ||
		 strcmp(end, "b") == 0)
		r->unit = PG_RATE_BPS;
	else
		return fail(err, errlen,
			    "rate '%s': unit must be pps, kpps, Mpps, bit, kbit, Mbit "
			    "or Gbit",
			    s);
	r->value = v * mult;
	if (r->value == 0)
		r->unit = PG_RATE_NONE;
	return 0;
}

int
pg_size_parse(const char *s, struct pg_size *sz, char *err, size_t errlen)
{
	if (strcmp(s, "imix") == 0) {
		sz->mode = PG_SIZE_IMIX;
		sz->lo = 64;
		sz->hi = 1518;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long lo = strtoul(s, &end, 10), hi = lo;
	if (errno || end == s)
		return fail(err, errlen, "size '%s': expected N, LO-HI or imix", s);
	if (*end == '-') {
		const char *p = end + 1;
		hi = strtoul(p, &end, 10);
		if (end == p)
			return fail(err, errlen, "size '%s': expected LO-HI", s);
	}
	if (*end)
		return fail(err, errlen, "size '%s': trailing '%s'", s, end);
	if (lo < PG_MIN_FRAME || hi > PG_MAX_FRAME || lo > hi)
		return fail(err, errlen,
			    "size '%s': frame sizes (with FCS) must be %d..%d, LO <= HI", s,
			    PG_MIN_FRAME, PG_MAX_FRAME);
	sz->mode = lo == hi ? PG_SIZE_FIXED : PG_SIZE_RANGE;
	sz->lo = (uint16_t)lo;
	sz->hi = (uint16_t)hi;
	return 0;
}

void
pg_size_table(const struct pg_size *sz, uint16_t *tab, unsigned int n, uint64_t seed)
{
	uint64_t st = seed ^ 0x5153;
	for (unsigned int i = 0; i < n; i++) {
		switch (sz->mode) {
		case PG_SIZE_FIXED:
			tab[i] = sz->lo;
			break;
		case PG_SIZE_IMIX: { /* 7:4:1 of 64/570/1518 */
			unsigned int k = i % 12;
			tab[i] = k < 7 ? 64 : k < 11 ? 570 : 1518;
			break;
		}
		case PG_SIZE_RANGE:
			tab[i] =
				(uint16_t)(sz->lo + pg_rand(&st) % (uint64_t)(sz->hi - sz->lo + 1));
			break;
		}
	}
	if (sz->mode == PG_SIZE_IMIX) /* keep the exact ratio, lose the pattern */
		for (unsigned int i = n - 1; i > 0; i--) {
			unsigned int j = (unsigned int)(pg_rand(&st) % (i + 1));
			uint16_t t = tab[i];
			tab[i] = tab[j];
			tab[j] = t;
		}
}

/* ---------------- subscribers ---------------- */

/* a (maxlen bits) becomes the first host of a/len: host bits cleared, then network + 1
 * unless the prefix is a host or a /31, /127 */
static void
first_host(uint8_t *a, unsigned int maxlen, unsigned int len)
{
	for (unsigned int bit = len; bit < maxlen; bit++)
		a[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	if (len + 1 < maxlen)
		a[maxlen / 8 - 1] |= 1;
}

int
pg_prefix_first_host(const char *txt, int family, uint8_t *out)
{
	char buf[64];
	if (strlen(txt) >= sizeof(buf))
		return -1;
	strcpy(buf, txt);
	unsigned int maxlen = family == AF_INET ? 32 : 128, len = maxlen;
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		char *end;
		unsigned long l = strtoul(slash + 1, &end, 10);
		if (end == slash + 1 || *end || l > maxlen)
			return -1;
		len = (unsigned int)l;
	}
	uint8_t a[16];
	if (inet_pton(family, buf, a) != 1)
		return -1;
	first_host(a, maxlen, len);
	memcpy(out, a, maxlen / 8);
	return 0;
}

static int
name_index(char names[][PG_NAME_MAX], unsigned int *n, const char *name)
{
	for (unsigned int i = 0; i < *n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	if (*n == PG_MAX_NAMES || strlen(name) >= PG_NAME_MAX || *name == 0)
		return -1;
	snprintf(names[*n], PG_NAME_MAX, "%s", name);
	return (int)(*n)++;
}

static int
subs_push(struct pg_subs *s, const struct pg_sub *sub)
{
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 1024;
		struct pg_sub *v = realloc(s->v, (size_t)cap * sizeof(*v));
		if (v == NULL)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *sub;
	return 0;
}

static bool
valid_cc(const char *c)
{
	return strlen(c) == 2 && isupper((unsigned char)c[0]) && isupper((unsigned char)c[1]);
}

/* one row of the CSV (libskygate's reader has checked it): names collected, the first host
 * of each prefix kept */
struct load_ctx {
	struct pg_subs *s;
	uint32_t limit;
};

static int
name_of(char names[][PG_NAME_MAX], unsigned int *n, const char *s, size_t len)
{
	char name[PG_NAME_MAX];

	if (len >= sizeof(name))
		return -1;
	memcpy(name, s, len);
	name[len] = 0;
	return name_index(names, n, name);
}

static int
load_row(void *arg, const struct sky_subs_csv_row *r, char *err, size_t errlen)
{
	struct load_ctx *c = arg;
	struct pg_subs *s = c->s;
	const struct sky_sub_info *in = &r->sub;
	struct pg_sub sub = {.id = in->id, .country = in->country, .realm = in->realm};
	int pi = name_of(s->plans, &s->n_plans, r->plan, r->plan_len);
	int bi = name_of(s->beams, &s->n_beams, r->beam, r->beam_len);

	if (pi < 0 || bi < 0)
		return fail(err, errlen,
			    "%s '%.*s': empty, longer than %d characters or more than %d "
			    "distinct names",
			    pi < 0 ? "plan" : "beam", (int)(pi < 0 ? r->plan_len : r->beam_len),
			    pi < 0 ? r->plan : r->beam, PG_NAME_MAX - 1, PG_MAX_NAMES);
	sub.plan = (uint8_t)pi;
	sub.beam = (uint8_t)bi;
	sub.has_v4 = in->has_v4;
	sub.has_v6 = in->has_v6;
	memcpy(sub.v4, in->v4, 4);
	memcpy(sub.v6, in->v6, 16);
	if (sub.has_v4)
		first_host(sub.v4, 32, in->v4_len);
	if (sub.has_v6)
		first_host(sub.v6, 128, in->v6_len);
	if (subs_push(s, &sub))
		return fail(err, errlen, "out of memory");
	return c->limit && s->n == c->limit ? 1 : 0; /* 1: enough, stop reading */
}

int
pg_subs_load(struct pg_subs *s, const char *path, uint32_t limit, char *err, size_t errlen)
{
	struct load_ctx c = {.s = s, .limit = limit};
	int rc;

	memset(s, 0, sizeof(*s));
	rc = sky_subs_csv_parse_file(path, NULL, load_row, &c, err, errlen);
	if (rc == 0 && s->n == 0)
		rc = fail(err, errlen, "%s: no subscribers", path);
	if (rc)
		pg_subs_free(s);
	return rc;
}

static void
addr_add(uint8_t *a, unsigned int nbytes, unsigned int shift_bits, uint64_t v)
{
	/* a += v << shift_bits, big-endian over nbytes */
	unsigned int carry = 0;
	for (int byte = (int)nbytes - 1; byte >= 0; byte--) {
		unsigned int bitpos = (nbytes - 1 - (unsigned int)byte) * 8;
		uint64_t part = 0;
		if (bitpos + 8 > shift_bits && bitpos < shift_bits + 64) {
			int sh = (int)bitpos - (int)shift_bits;
			part = sh >= 0 ? (v >> sh) & 0xff : (v << -sh) & 0xff;
		}
		unsigned int sum = a[byte] + (unsigned int)part + carry;
		a[byte] = (uint8_t)sum;
		carry = sum >> 8;
	}
}

int
pg_subs_generate(struct pg_subs *s, const struct pg_gen *g, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (g->n == 0)
		return fail(err, errlen, "--gen-subs: need at least one subscriber");
	if ((uint64_t)g->n + 2 > (1ull << (32 - g->v4_len)))
		return fail(err, errlen, "--sub-v4: /%u holds fewer than %u addresses", g->v4_len,
			    g->n);
	if (g->v6_len > 56 || (56 - g->v6_len < 32 && (uint64_t)g->n > (1ull << (56 - g->v6_len))))
		return fail(err, errlen, "--sub-v6: /%u holds fewer than %u /56 prefixes",
			    g->v6_len, g->n);
	for (unsigned int i = 0; i < g->countries.n; i++)
		if (!valid_cc(g->countries.name[i]))
			return fail(err, errlen, "--countries: '%s' is not ISO 3166 alpha-2",
				    g->countries.name[i]);
	if (g->plans.n > PG_MAX_NAMES || g->beams.n > PG_MAX_NAMES)
		return fail(err, errlen, "at most %d plans and beams", PG_MAX_NAMES);
	s->v = calloc(g->n, sizeof(*s->v));
	if (s->v == NULL)
		return fail(err, errlen, "out of memory");
	s->cap = g->n;
	for (unsigned int i = 0; i < g->plans.n; i++)
		name_index(s->plans, &s->n_plans, g->plans.name[i]);
	for (unsigned int i = 0; i < g->beams.n; i++)
		name_index(s->beams, &s->n_beams, g->beams.name[i]);
	uint64_t st = g->seed ^ 0x5ab5;
	uint64_t v6_count[1] = {0};
	struct pg_mix yesno = {.n = 2, .weight = {g->v6_share, 1 - g->v6_share}};
	uint64_t split[2];
	pg_mix_apportion(&yesno, g->n, split);
	v6_count[0] = split[0];
	for (uint32_t i = 0; i < g->n; i++) {
		struct pg_sub *sub = &s->v[i];
		sub->id = i + 1;
		sub->has_v4 = 1;
		memcpy(sub->v4, g->v4_base, 4);
		addr_add(sub->v4, 4, 0, (uint64_t)i + 1);
		/* countries in contiguous blocks (operators allocate per region), beams follow
		 * countries, plans drawn at random */
		unsigned int c = (unsigned int)((uint64_t)i * g->countries.n / g->n);
		sub->country = pg_cc(g->countries.name[c]);
		sub->beam = (uint8_t)(((uint64_t)i * s->n_beams / g->n) % s->n_beams);
		sub->plan = (uint8_t)(pg_rand(&st) % s->n_plans);
		if (g->realms)
			sub->realm = (uint16_t)(100 + i % g->realms);
	}
	/* v6_share of the subscribers, spread evenly, also get a /56 */
	for (uint64_t k = 0; k < v6_count[0]; k++) {
		uint32_t i = (uint32_t)(k * g->n / v6_count[0]);
		struct pg_sub *sub = &s->v[i];
		sub->has_v6 = 1;
		memcpy(sub->v6, g->v6_base, 16);
		addr_add(sub->v6, 16, 128 - 56, i);
		sub->v6[15] |= 1;
	}
	s->n = g->n;
	return 0;
}

int
pg_subs_write_csv(const struct pg_subs *s, const char *path, char *err, size_t errlen)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	if (f == NULL)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	bool realm = false;
	for (uint32_t i = 0; i < s->n && !realm; i++)
		realm = s->v[i].realm != 0;
	fprintf(f, "id,ipv4,ipv6,plan,beam,country%s\n", realm ? ",realm" : "");
	for (uint32_t i = 0; i < s->n; i++) {
		const struct pg_sub *sub = &s->v[i];
		char a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN + 4] = "", cc[3];
		if (sub->has_v4)
			inet_ntop(AF_INET, sub->v4, a4, sizeof(a4));
		if (sub->has_v6) {
			uint8_t net[16];
			memcpy(net, sub->v6, 16);
			memset(net + 7, 0, 9);
			inet_ntop(AF_INET6, net, a6, INET6_ADDRSTRLEN);
			strcat(a6, "/56");
		}
		pg_cc_str(sub->country, cc);
		fprintf(f, "%u,%s,%s,%s,%s,%s", sub->id, a4, a6, s->plans[sub->plan],
			s->beams[sub->beam], cc);
		if (realm)
			fprintf(f, ",%u", sub->realm);
		fputc('\n', f);
	}
	int bad = ferror(f);
	if (f != stdout ? fclose(f) : fflush(f))
		bad = 1;
	if (bad)
		return fail(err, errlen, "%s: write failed", path);
	return 0;
}

void
pg_subs_free(struct pg_subs *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* ---------------- histogram ---------------- */

uint64_t
pg_hist_bucket_hi(unsigned int b)
{
	if (b < PG_HIST_SUB)
		return b;
	unsigned int msb = b / PG_HIST_SUB, sub = b % PG_HIST_SUB;
	/* bucket holds [ (SUB + sub) << (msb - BITS), (SUB + sub + 1) << (msb - BITS) ) */
	return ((uint64_t)(PG_HIST_SUB + sub + 1) << (msb - PG_HIST_SUB_BITS)) - 1;
}

uint64_t
pg_hist_quantile(const uint64_t *hist, double q, uint64_t max_cyc)
{
	uint64_t total = 0;
	for (unsigned int b = 0; b < PG_HIST_BUCKETS; b++)
		total += hist[b];
	if (total == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)total);
	if (rank == 0)
		rank = 1;
	uint64_t acc = 0;
	for (unsigned int b = 0; b < PG_HIST_BUCKETS; b++) {
		acc += hist[b];
		if (acc >= rank) {
			uint64_t v = pg_hist_bucket_hi(b);
			return v < max_cyc ? v : max_cyc;
		}
	}
	return max_cyc;
}

/* "250" or "0.5" milliseconds (three decimals at most) -> microseconds, 0..10 s */
static int
ms_to_us(const char *s, size_t n, uint32_t *us)
{
	uint64_t whole = 0, frac = 0;
	unsigned int nd = 0;
	size_t i = 0;

	if (n == 0 || !isdigit((unsigned char)s[0]))
		return -1;
	while (i < n && isdigit((unsigned char)s[i])) {
		whole = whole * 10 + (uint64_t)(s[i++] - '0');
		if (whole > 10000)
			return -1;
	}
	if (i < n && s[i] == '.') {
		i++;
		if (i == n)
			return -1;
		while (i < n && isdigit((unsigned char)s[i])) {
			if (++nd > 3)
				return -1;
			frac = frac * 10 + (uint64_t)(s[i++] - '0');
		}
		for (unsigned int k = nd; k < 3; k++)
			frac *= 10;
	}
	if (i != n || whole * 1000 + frac > 10000000)
		return -1;
	*us = (uint32_t)(whole * 1000 + frac);
	return 0;
}

/* "SAT:INET" of n bytes at s */
static int
rtt_pair(const char *s, size_t n, uint32_t *sat, uint32_t *inet)
{
	const char *c = memchr(s, ':', n);

	if (c == NULL)
		return -1;
	return ms_to_us(s, (size_t)(c - s), sat) == 0 &&
			       ms_to_us(c + 1, n - (size_t)(c - s) - 1, inet) == 0
		       ? 0
		       : -1;
}

int
pg_rtt_parse(const char *s, struct pg_rtt *rt, char *err, size_t errlen)
{
	const char *p = s;
	double retrans = rt->retrans;

	memset(rt, 0, sizeof(*rt));
	rt->retrans = retrans;
	while (*p) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		unsigned int k = rt->n;

		if (k == PG_RTT_MAX) {
			snprintf(err, errlen, "at most %u entries (the default and %u beams)",
				 PG_RTT_MAX, PG_RTT_MAX - 1);
			return -1;
		}
		if (k == 0 && eq != NULL) {
			snprintf(err, errlen,
				 "'%s': start with the default SAT_MS:INET_MS, then "
				 "BEAM=SAT_MS:INET_MS",
				 s);
			return -1;
		}
		if (k > 0) {
			size_t bl = eq ? (size_t)(eq - p) : 0;

			if (eq == NULL || bl == 0 || bl >= PG_NAME_MAX) {
				snprintf(err, errlen, "'%.*s': expected BEAM=SAT_MS:INET_MS",
					 (int)n, p);
				return -1;
			}
			memcpy(rt->beam[k], p, bl);
			rt->beam[k][bl] = '\0';
			for (unsigned int j = 1; j < k; j++)
				if (strcmp(rt->beam[j], rt->beam[k]) == 0) {
					snprintf(err, errlen, "beam '%s' given twice", rt->beam[k]);
					return -1;
				}
			if (rtt_pair(eq + 1, n - bl - 1, &rt->sat_us[k], &rt->inet_us[k]) < 0)
				goto bad;
		} else if (rtt_pair(p, n, &rt->sat_us[0], &rt->inet_us[0]) < 0) {
			goto bad;
		}
		rt->n++;
		p += n;
		if (*p == ',') {
			p++;
			if (*p == '\0')
				goto bad;
		}
		continue;
	bad:
		snprintf(err, errlen,
			 "'%.*s': one-way delays SAT_MS:INET_MS in milliseconds (0..10000, "
			 "three decimals at most)",
			 (int)n, p);
		return -1;
	}
	if (rt->n == 0) {
		snprintf(err, errlen, "empty");
		return -1;
	}
	return 0;
}
