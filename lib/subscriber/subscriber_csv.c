/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The subscriber CSV (format in skygate/subscriber.h): the one reader, used by the
 * subscriber table (start, `subscriber load`) and by skygate-pktgen, and what a table load
 * does with the rows: names resolved, uniqueness, tbl8 sizing.
 *
 * Speed: one pass over a buffer (a file is read whole into memory we own, see
 * sky_subs_csv_parse_file), no allocation per row (a load's rows land in one array grown
 * by doubling), hand-written IPv4/number parsers; uniqueness is
 * checked afterwards by radix-sorting ids and sorting prefixes, which also yields the
 * number of rte_lpm6 tbl8 groups the tables need (sky_subs_rows_check_need).
 * Control path only; plain C (no DPDK call), so skygate-pktgen links it without EAL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/file.h"

#include "subscriber_priv.h"

#define MAX_FIELDS 8

int
subs_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
host_bits_zero(const uint8_t *a, unsigned int bytes, unsigned int len)
{
	for (unsigned int b = 0; b < bytes; b++) {
		unsigned int lo = b * 8;
		uint8_t mask;

		if (len >= lo + 8)
			continue;
		mask = len <= lo ? 0xff : (uint8_t)(0xff >> (len - lo));
		if (a[b] & mask)
			return 0;
	}
	return 1;
}

static int
parse_len(const char *s, size_t n, unsigned int max, uint8_t *len)
{
	unsigned int v = 0;

	if (n == 0 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if ((n > 1 && s[0] == '0') || v > max)
		return -1;
	*len = (uint8_t)v;
	return 0;
}

int
sky_parse_ip4_prefix(const char *s, size_t n, uint8_t a[4], uint8_t *len)
{
	size_t i = 0;

	for (int k = 0; k < 4; k++) {
		unsigned int v = 0, nd = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9') {
			v = v * 10 + (unsigned int)(s[i] - '0');
			if (++nd > 3)
				return -1;
			i++;
		}
		if (nd == 0 || v > 255 || (nd > 1 && s[i - nd] == '0'))
			return -1;
		a[k] = (uint8_t)v;
		if (k < 3) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
	}
	*len = 32;
	if (i < n) {
		if (s[i] != '/' || parse_len(s + i + 1, n - i - 1, 32, len) < 0)
			return -1;
	}
	return host_bits_zero(a, 4, *len) ? 0 : -1;
}

int
sky_parse_ip6_prefix(const char *s, size_t n, uint8_t a[16], uint8_t *len)
{
	char buf[64];
	const char *slash = memchr(s, '/', n);
	size_t alen = slash != NULL ? (size_t)(slash - s) : n;

	if (alen == 0 || alen >= sizeof(buf) || memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET6, buf, a) != 1)
		return -1;
	*len = 128;
	if (slash != NULL && parse_len(slash + 1, n - alen - 1, 128, len) < 0)
		return -1;
	return host_bits_zero(a, 16, *len) ? 0 : -1;
}

/* ------------------------------------------------------------------ the reader */

struct field {
	const char *s;
	size_t n;
};

static void
trim(struct field *f)
{
	while (f->n > 0 && (f->s[0] == ' ' || f->s[0] == '\t')) {
		f->s++;
		f->n--;
	}
	while (f->n > 0 && (f->s[f->n - 1] == ' ' || f->s[f->n - 1] == '\t'))
		f->n--;
}

static int
feq(const struct field *f, const char *lit)
{
	size_t n = strlen(lit);

	return f->n == n && memcmp(f->s, lit, n) == 0;
}

static int
find_name(const char *const *names, unsigned int n, const struct field *f)
{
	for (unsigned int i = 0; i < n; i++)
		if (strlen(names[i]) == f->n && memcmp(names[i], f->s, f->n) == 0)
			return (int)i;
	return -1;
}

static void
list_names(char *out, size_t sz, const char *const *names, unsigned int n)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned int i = 0; i < n && o + 1 < sz; i++) {
		int w = snprintf(out + o, sz - o, "%s%s", i ? ", " : "", names[i]);

		if (w < 0)
			break;
		o += (size_t)w;
	}
	if (o >= sz && sz > 4)
		strcpy(out + sz - 4, "...");
}

static int
parse_u32(const struct field *f, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (f->n == 0 || f->n > 10)
		return -1;
	for (size_t i = 0; i < f->n; i++) {
		if (f->s[i] < '0' || f->s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(f->s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

#define SHOW(f) (int)((f)->n > 60 ? 60 : (f)->n), (f)->s

/* where a row's messages start */
struct at {
	const char *fname;
	uint32_t line;
};

/* the plan or beam column: one of names when there are names */
static int
name_field(const struct at *at, const char *what, const struct field *f, const char *const *names,
	   unsigned int n, uint16_t *idx, char *err, size_t errlen)
{
	char list[256];
	int i;

	*idx = 0;
	if (names == NULL)
		return 0;
	i = find_name(names, n, f);
	if (i < 0) {
		list_names(list, sizeof(list), names, n);
		return subs_fail(err, errlen, "%s:%u: %s '%.*s' unknown (%ss: %s)", at->fname,
				 at->line, what, SHOW(f), what, list);
	}
	*idx = (uint16_t)i;
	return 0;
}

static int
country_field(const struct field *f, uint16_t *cc)
{
	char s[4];

	if (f->n != 2 || memchr(f->s, '\0', 2) != NULL)
		return -1;
	memcpy(s, f->s, 2);
	s[2] = '\0';
	return sky_parse_country(s, cc) < 0 ? -1 : 0;
}

/* the ipv4 or ipv6 column: empty, or an address or prefix /1.. with host bits zero */
static int
addr_field(const struct at *at, const struct field *f, unsigned int fam, uint8_t *a, uint8_t *len,
	   uint8_t *has, char *err, size_t errlen)
{
	int rc;

	if (f->n == 0)
		return 0;
	rc = fam == 4 ? sky_parse_ip4_prefix(f->s, f->n, a, len)
		      : sky_parse_ip6_prefix(f->s, f->n, a, len);
	if (rc < 0 || *len == 0)
		return subs_fail(err, errlen,
				 "%s:%u: ipv%u '%.*s' is not an IPv%u address or prefix "
				 "(/1../%u, host bits zero)",
				 at->fname, at->line, fam, SHOW(f), fam, fam == 4 ? 32 : 128);
	*has = 1;
	return 0;
}

/* the columns a header names: the six fixed ones, then realm and zone, each optional and
 * in either order */
struct cols {
	unsigned int n;
	int realm, zone; /* column index, -1 when absent */
	char text[80];	 /* the header as expected in messages */
};

/* the zone column: empty (no zone), else one of the names when there are names */
static int
zone_field(const struct at *at, const struct field *f, const struct sky_subs_csv_names *names,
	   struct sky_subs_csv_row *r, char *err, size_t errlen)
{
	char list[256];
	int i;

	r->zone = f->s;
	r->zone_len = f->n;
	if (f->n == 0 || names == NULL)
		return 0;
	if (names->n_zones == 0)
		return subs_fail(err, errlen,
				 "%s:%u: zone '%.*s' unknown (no zones configured: add `zones: "
				 "[...]` to the config)",
				 at->fname, at->line, SHOW(f));
	i = find_name(names->zones, names->n_zones, f);
	if (i < 0) {
		list_names(list, sizeof(list), names->zones, names->n_zones);
		return subs_fail(err, errlen, "%s:%u: zone '%.*s' unknown (zones: %s)", at->fname,
				 at->line, SHOW(f), list);
	}
	r->sub.zone = (uint8_t)(i + 1);
	return 0;
}

/* one data row of c->n fields into r */
static int
parse_row(const struct at *at, const struct field *f, const struct cols *c,
	  const struct sky_subs_csv_names *names, struct sky_subs_csv_row *r, char *err,
	  size_t errlen)
{
	const char *fname = at->fname;
	struct sky_sub_info *sub;
	uint32_t line = at->line;

	memset(r, 0, sizeof(*r));
	r->line = line;
	sub = &r->sub;
	if (parse_u32(&f[0], 1, UINT32_MAX, &sub->id) < 0)
		return subs_fail(err, errlen, "%s:%u: id '%.*s' is not a number 1..4294967295",
				 fname, line, SHOW(&f[0]));
	if (addr_field(at, &f[1], 4, sub->v4, &sub->v4_len, &sub->has_v4, err, errlen) < 0 ||
	    addr_field(at, &f[2], 6, sub->v6, &sub->v6_len, &sub->has_v6, err, errlen) < 0)
		return -1;
	if (!sub->has_v4 && !sub->has_v6)
		return subs_fail(err, errlen, "%s:%u: id %u has neither ipv4 nor ipv6", fname, line,
				 sub->id);
	r->plan = f[3].s;
	r->plan_len = f[3].n;
	r->beam = f[4].s;
	r->beam_len = f[4].n;
	if (name_field(at, "plan", &f[3], names ? names->plans : NULL, names ? names->n_plans : 0,
		       &sub->plan, err, errlen) < 0 ||
	    name_field(at, "beam", &f[4], names ? names->beams : NULL, names ? names->n_beams : 0,
		       &sub->beam, err, errlen) < 0)
		return -1;
	if (country_field(&f[5], &sub->country) < 0)
		return subs_fail(err, errlen,
				 "%s:%u: country '%.*s' is not an ISO 3166 alpha-2 code", fname,
				 line, SHOW(&f[5]));
	if (c->realm >= 0 && f[c->realm].n > 0) {
		uint32_t realm;

		if (parse_u32(&f[c->realm], 0, SKY_REALM_MAX, &realm) < 0)
			return subs_fail(err, errlen, "%s:%u: realm '%.*s' is not a VLAN id 0..%d",
					 fname, line, SHOW(&f[c->realm]), SKY_REALM_MAX);
		sub->realm = (uint16_t)realm;
	}
	if (c->zone >= 0 && zone_field(at, &f[c->zone], names, r, err, errlen) < 0)
		return -1;
	if (sub->realm != 0 && sub->has_v6 && sub->v6_len > SKY_REALM_V6_MAX_LEN)
		return subs_fail(err, errlen,
				 "%s:%u: ipv6 '%.*s': a subscriber with a realm may have at most "
				 "a /%d",
				 fname, line, SHOW(&f[2]), SKY_REALM_V6_MAX_LEN);
	return 0;
}

/* the header: the six fixed names, then realm and/or zone; fills c, 0 or -1 */
static int
parse_header(const struct at *at, const struct field *f, unsigned int nf, struct cols *c, char *err,
	     size_t errlen)
{
	static const char *const hdr[] = {"id", "ipv4", "ipv6", "plan", "beam", "country"};

	c->realm = c->zone = -1;
	if (nf < 6 || nf > 8)
		goto bad;
	for (unsigned int i = 0; i < 6; i++)
		if (!feq(&f[i], hdr[i]))
			goto bad;
	for (unsigned int i = 6; i < nf; i++) {
		if (feq(&f[i], "realm") && c->realm < 0)
			c->realm = (int)i;
		else if (feq(&f[i], "zone") && c->zone < 0)
			c->zone = (int)i;
		else
			goto bad;
	}
	c->n = nf;
	snprintf(c->text, sizeof(c->text), "id,ipv4,ipv6,plan,beam,country%s%s%s%s",
		 nf > 6 ? "," : "", nf > 6 ? (c->realm == 6 ? "realm" : "zone") : "",
		 nf > 7 ? "," : "", nf > 7 ? (c->realm == 7 ? "realm" : "zone") : "");
	return 0;
bad:
	return subs_fail(err, errlen,
			 "%s:%u: header must be 'id,ipv4,ipv6,plan,beam,country' followed by "
			 "none, one or both of ',realm' and ',zone'",
			 at->fname, at->line);
}

int
sky_subs_csv_parse(const char *fname, const char *buf, size_t len,
		   const struct sky_subs_csv_names *names, sky_subs_csv_row_fn fn, void *arg,
		   char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	struct at at = {.fname = fname, .line = 0};
	struct cols cols = {.n = 0};

	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 BOM (spreadsheet export) */
		p += 3;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le, *next;
		struct field f[MAX_FIELDS];
		struct sky_subs_csv_row r;
		unsigned int nf = 0;
		const char *q;
		char msg[256];
		int rc;

		if (sky_should_stop()) /* SIGTERM: give up, nothing was applied */
			return subs_fail(err, errlen, "%s: stopped by shutdown", fname);
		if (eol == NULL)
			eol = end;
		next = eol < end ? eol + 1 : end;
		le = eol;
		if (le > p && le[-1] == '\r')
			le--;
		at.line++;
		q = p;
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		if (q == le || *q == '#') {
			p = next;
			continue;
		}
		/* split */
		for (const char *s = p;;) {
			const char *c = memchr(s, ',', (size_t)(le - s));

			if (nf == MAX_FIELDS)
				return subs_fail(err, errlen,
						 "%s:%u: too many fields (expected %u)", fname,
						 at.line, cols.n ? cols.n : 6);
			f[nf].s = s;
			f[nf].n = c != NULL ? (size_t)(c - s) : (size_t)(le - s);
			trim(&f[nf]);
			nf++;
			if (c == NULL)
				break;
			s = c + 1;
		}
		p = next;
		if (cols.n == 0) {
			if (parse_header(&at, f, nf, &cols, err, errlen) < 0)
				return -1;
			continue;
		}
		if (nf != cols.n)
			return subs_fail(err, errlen, "%s:%u: %u fields, expected %u (%s)", fname,
					 at.line, nf, cols.n, cols.text);
		if (parse_row(&at, f, &cols, names, &r, err, errlen) < 0)
			return -1;
		msg[0] = '\0';
		rc = fn(arg, &r, msg, sizeof(msg));
		if (rc > 0)
			return 0;
		if (rc < 0)
			return subs_fail(err, errlen, "%s:%u: %s", fname, at.line,
					 msg[0] ? msg : "row refused");
	}
	if (cols.n == 0)
		return subs_fail(err, errlen,
				 "%s: no header line (expected "
				 "'id,ipv4,ipv6,plan,beam,country[,realm][,zone]')",
				 fname);
	return 0;
}

int
sky_subs_csv_parse_file(const char *path, const struct sky_subs_csv_names *names,
			sky_subs_csv_row_fn fn, void *arg, char *err, size_t errlen)
{
	void *buf;
	size_t len;
	int rc;

	/* into memory we own: a FIFO or device is refused, a file truncated or rewritten
	 * while we parse cannot fault us or mix two versions */
	rc = sky_file_read(path, SKY_SUBS_CSV_MAX_BYTES, SKY_SUBS_CSV_TIMEOUT_MS, &buf, &len, err,
			   errlen);
	if (rc < 0)
		return -1;
	rc = sky_subs_csv_parse(path, buf, len, names, fn, arg, err, errlen);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ a table load's rows */

static int
grow(struct sky_subs_rows *out)
{
	size_t cap = out->cap ? out->cap * 2 : 4096;
	struct sky_subs_row *r = realloc(out->r, cap * sizeof(*r));

	if (r == NULL)
		return -1;
	out->r = r;
	out->cap = cap;
	return 0;
}

static int
row_append(void *arg, const struct sky_subs_csv_row *in, char *err, size_t errlen)
{
	struct sky_subs_rows *out = arg;
	struct sky_subs_row *r;

	if (out->n == out->cap && grow(out) < 0)
		return subs_fail(err, errlen, "out of memory");
	r = &out->r[out->n++];
	r->sub = in->sub;
	r->line = in->line;
	return 0;
}

int
sky_subs_rows_parse(const struct sky_subs_csv_names *names, const char *fname, const char *buf,
		    size_t len, struct sky_subs_rows *out, char *err, size_t errlen)
{
	return sky_subs_csv_parse(fname, buf, len, names, row_append, out, err, errlen);
}

int
sky_subs_rows_load(const struct sky_subs_csv_names *names, const char *path,
		   struct sky_subs_rows *rows, uint32_t need[3], char *err, size_t errlen)
{
	int rc = sky_subs_csv_parse_file(path, names, row_append, rows, err, errlen);

	if (rc == 0)
		rc = sky_subs_rows_check_need(path, rows, need, err, errlen);
	if (rc < 0)
		sky_subs_rows_free(rows);
	return rc;
}

void
sky_subs_rows_free(struct sky_subs_rows *rows)
{
	free(rows->r);
	rows->r = NULL;
	rows->n = rows->cap = 0;
}

/* LSD radix sort of 64-bit keys on bits [lo_bit, 64), 16 bits per pass. */
static int
radix_sort64(uint64_t *a, size_t n, unsigned int lo_bit)
{
	uint64_t *tmp = malloc(n * sizeof(*tmp)), *src = a, *dst = tmp;
	static size_t cnt[65536];

	if (tmp == NULL)
		return -1;
	for (unsigned int shift = lo_bit; shift < 64; shift += 16) {
		size_t sum = 0;

		memset(cnt, 0, sizeof(cnt));
		for (size_t i = 0; i < n; i++)
			cnt[(src[i] >> shift) & 0xffff]++;
		for (size_t d = 0; d < 65536; d++) {
			size_t c = cnt[d];

			cnt[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(src[i] >> shift) & 0xffff]++] = src[i];
		uint64_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	free(tmp);
	return 0;
}

/* an address as rte_lpm6 sees it, in a sortable form */
struct pkey {
	uint64_t k1, k2; /* key bytes 0..7 and 8..15, big-endian as numbers */
	uint32_t row;
	uint8_t depth;
	uint8_t table; /* 0 lpm4, 1 lpm6, 2 realm */
	uint8_t fam;
};

void
sky_subs_lpm_key(uint8_t fam, uint16_t realm, const uint8_t *addr, uint8_t len, uint8_t key[16],
		 uint8_t *depth, uint8_t *table)
{
	memset(key, 0, 16);
	if (realm == 0) {
		memcpy(key, addr, fam == 4 ? 4 : 16);
		*depth = len;
		*table = fam == 4 ? 0 : 1;
		return;
	}
	key[0] = (uint8_t)((fam == 4 ? 0x40 : 0x60) | (realm >> 8));
	key[1] = (uint8_t)realm;
	memcpy(key + 2, addr, fam == 4 ? 4 : 14);
	*depth = (uint8_t)(16 + len);
	*table = 2;
}

static inline uint64_t
be64_of(const uint8_t *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return __builtin_bswap64(v);
}

static void
pkey_make(struct pkey *p, uint8_t fam, uint16_t realm, const uint8_t *addr, uint8_t len,
	  uint32_t row)
{
	uint8_t k[16];

	p->row = row;
	p->fam = fam;
	if (realm == 0 && fam == 4) {
		p->k1 = (uint64_t)addr[0] << 56 | (uint64_t)addr[1] << 48 |
			(uint64_t)addr[2] << 40 | (uint64_t)addr[3] << 32;
		p->k2 = 0;
		p->depth = len;
		p->table = 0;
		return;
	}
	if (realm == 0) {
		p->k1 = be64_of(addr);
		p->k2 = be64_of(addr + 8);
		p->depth = len;
		p->table = 1;
		return;
	}
	sky_subs_lpm_key(fam, realm, addr, len, k, &p->depth, &p->table);
	p->k1 = be64_of(k);
	p->k2 = be64_of(k + 8);
}

/* 16-bit digit d of the sort key (table, k1, k2, depth), d = 0 least significant */
static inline unsigned int
pkey_digit(const struct pkey *p, unsigned int d)
{
	if (d == 0)
		return p->depth;
	if (d <= 4)
		return (unsigned int)(p->k2 >> (16 * (d - 1))) & 0xffff;
	if (d <= 8)
		return (unsigned int)(p->k1 >> (16 * (d - 5))) & 0xffff;
	return p->table;
}

/* LSD radix sort; passes whose digit is the same for every key are skipped (the unused
 * low bytes of IPv4 and /56 keys), so a typical table takes 3..5 passes */
static int
pkey_sort(struct pkey *a, size_t n)
{
	struct pkey *tmp = malloc(n * sizeof(*tmp)), *src = a, *dst = tmp;
	size_t *cnt = malloc(65536 * sizeof(*cnt));

	if (tmp == NULL || cnt == NULL) {
		free(tmp);
		free(cnt);
		return -1;
	}
	for (unsigned int d = 0; d < 10; d++) {
		size_t sum = 0;
		int skip = 0;

		memset(cnt, 0, 65536 * sizeof(*cnt));
		for (size_t i = 0; i < n; i++)
			cnt[pkey_digit(&src[i], d)]++;
		if (n == 0 || cnt[pkey_digit(&src[0], d)] == n)
			skip = 1;
		if (skip)
			continue;
		for (size_t v = 0; v < 65536; v++) {
			size_t c = cnt[v];

			cnt[v] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[pkey_digit(&src[i], d)]++] = src[i];
		struct pkey *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	free(tmp);
	free(cnt);
	return 0;
}

/* first j bytes of the keys equal */
static inline int
prefix_eq(const struct pkey *a, const struct pkey *b, unsigned int j)
{
	if (j <= 8)
		return j == 0 || (a->k1 ^ b->k1) >> (64 - 8 * j) == 0;
	return a->k1 == b->k1 && (j == 16 ? a->k2 == b->k2 : (a->k2 ^ b->k2) >> (128 - 8 * j) == 0);
}

int
sky_subs_rows_check_need(const char *fname, const struct sky_subs_rows *rows, uint32_t need[3],
			 char *err, size_t errlen)
{
	size_t n = rows->n, np = 0;
	uint64_t *ids;
	struct pkey *pk;
	int rc = 0;

	if (need != NULL)
		need[0] = need[1] = need[2] = 0;
	if (n == 0)
		return 0;
	ids = malloc(n * sizeof(*ids));
	if (ids == NULL)
		return subs_fail(err, errlen, "%s: out of memory", fname);
	for (size_t i = 0; i < n; i++)
		ids[i] = (uint64_t)rows->r[i].sub.id << 32 | i;
	if (radix_sort64(ids, n, 32) < 0) {
		free(ids);
		return subs_fail(err, errlen, "%s: out of memory", fname);
	}
	for (size_t i = 1; i < n; i++) {
		if (ids[i] >> 32 == ids[i - 1] >> 32) {
			/* radix sort is stable: the earlier line comes first */
			const struct sky_subs_row *a = &rows->r[(uint32_t)ids[i - 1]];
			const struct sky_subs_row *b = &rows->r[(uint32_t)ids[i]];

			free(ids);
			return subs_fail(err, errlen, "%s:%u: id %u duplicate (also on line %u)",
					 fname, b->line, b->sub.id, a->line);
		}
	}
	free(ids);

	pk = malloc(2 * n * sizeof(*pk));
	if (pk == NULL)
		return subs_fail(err, errlen, "%s: out of memory", fname);
	for (size_t i = 0; i < n; i++) {
		const struct sky_sub_info *r = &rows->r[i].sub;

		if (r->has_v4)
			pkey_make(&pk[np++], 4, r->realm, r->v4, r->v4_len, (uint32_t)i);
		if (r->has_v6)
			pkey_make(&pk[np++], 6, r->realm, r->v6, r->v6_len, (uint32_t)i);
	}
	/* partition by table (stable), then sort each: per table most digits are the same
	 * for every key (IPv4: all but two) and their passes are skipped */
	{
		struct pkey *tmp = malloc((np + 1) * sizeof(*tmp));
		size_t start[4] = {0, 0, 0, 0}, pos[3];

		if (tmp == NULL) {
			free(pk);
			return subs_fail(err, errlen, "%s: out of memory", fname);
		}
		for (size_t i = 0; i < np; i++)
			start[pk[i].table + 1]++;
		for (int t = 1; t < 4; t++)
			start[t] += start[t - 1];
		memcpy(pos, start, sizeof(pos));
		for (size_t i = 0; i < np; i++)
			tmp[pos[pk[i].table]++] = pk[i];
		memcpy(pk, tmp, np * sizeof(*pk));
		free(tmp);
		for (int t = 0; t < 3; t++)
			if (pkey_sort(pk + start[t], start[t + 1] - start[t]) < 0) {
				free(pk);
				return subs_fail(err, errlen, "%s: out of memory", fname);
			}
	}
	for (size_t i = 1; i < np; i++) {
		const struct pkey *x = &pk[i - 1], *y = &pk[i];

		if (x->table == y->table && x->depth == y->depth && x->k1 == y->k1 &&
		    x->k2 == y->k2) {
			/* stable sort: x is the earlier line */
			const struct sky_subs_row *first = &rows->r[x->row],
						  *second = &rows->r[y->row];
			char txt[64];
			uint8_t len = y->fam == 4 ? second->sub.v4_len : second->sub.v6_len;

			inet_ntop(y->fam == 4 ? AF_INET : AF_INET6,
				  y->fam == 4 ? (const void *)second->sub.v4
					      : (const void *)second->sub.v6,
				  txt, sizeof(txt));
			rc = subs_fail(
				err, errlen,
				"%s:%u: %s %s/%u (realm %u) already belongs to id %u (line %u)",
				fname, second->line, y->fam == 4 ? "ipv4" : "ipv6", txt, len,
				second->sub.realm, first->sub.id, first->line);
			goto out;
		}
	}
	/* tbl8 groups: for each level j >= 3 below a prefix, one group per distinct j-byte
	 * key prefix (rte_lpm6: tbl24 on bytes 0..2, one tbl8 level per further byte) */
	if (need != NULL) {
		const struct pkey *prev[16];
		int table = -1;

		for (size_t i = 0; i < np; i++) {
			const struct pkey *x = &pk[i];
			unsigned int levels = (x->depth + 7u) / 8u;

			if (x->table != table) {
				memset(prev, 0, sizeof(prev));
				table = x->table;
			}
			for (unsigned int j = 3; j < levels; j++) {
				if (prev[j] == NULL || !prefix_eq(prev[j], x, j))
					need[x->table]++;
				prev[j] = x;
			}
		}
	}
out:
	free(pk);
	return rc;
}

int
sky_subs_rows_check(const char *fname, const struct sky_subs_rows *rows, char *err, size_t errlen)
{
	return sky_subs_rows_check_need(fname, rows, NULL, err, errlen);
}
