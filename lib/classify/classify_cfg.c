/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `classes:` section: names, the default class, and match rules (semantics in
 * skygate/classify.h). Read by the classifier (rules) and by the subscriber model (names,
 * count, order). Control path only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify_priv.h"

static const char *const class_keys[] = {"name",     "default", "dscp",	 "protocol", "ports",
					 "prefixes", "match",	"queue", "aqm",	     NULL};
static const char *const match_keys[] = {"dscp", "protocol", "ports", "prefixes", NULL};

static const struct {
	const char *name;
	uint8_t num;
} proto_names[] = {{"tcp", 6}, {"udp", 17}, {"icmp", 1}, {"icmpv6", 58}, {"sctp", 132}};

static int
seq_of(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v)
{
	if (sky_cfg_type(v) != SKY_CFG_SEQ)
		return sky_cfg_fail(err, cfg, v, "expected a list");
	if (sky_cfg_len(v) == 0)
		return sky_cfg_fail(err, cfg, v, "empty list");
	return 0;
}

static int
scalar_of(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	  const char **s)
{
	*s = sky_cfg_str(v);
	if (*s == NULL)
		return sky_cfg_fail(err, cfg, v, "expected a scalar");
	return 0;
}

/* Entry s (node e) of the list v of a field into rule r. 0, or -1 with err filled. */
typedef int (*item_fn)(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		       const struct sky_cfg_node *v, const struct sky_cfg_node *e, const char *s,
		       struct cls_rule *r);

static int
dscp_item(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	  const struct sky_cfg_node *e, const char *s, struct cls_rule *r)
{
	uint64_t d;

	if (sky_parse_u64(s, 0, 63, &d) < 0)
		return sky_cfg_fail(err, cfg, e, "dscp '%s' is not a number 0..63", s);
	r->dscp_mask |= 1ULL << d;
	return 0;
}

static int
proto_item(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	   const struct sky_cfg_node *e, const char *s, struct cls_rule *r)
{
	uint64_t p = 256;

	for (size_t k = 0; k < RTE_DIM(proto_names); k++)
		if (strcasecmp(s, proto_names[k].name) == 0)
			p = proto_names[k].num;
	if (p == 256 && sky_parse_u64(s, 0, 255, &p) < 0)
		return sky_cfg_fail(
			err, cfg, e,
			"protocol '%s' unknown (tcp, udp, icmp, icmpv6, sctp or 0..255)", s);
	r->proto_bm[p >> 6] |= 1ULL << (p & 63);
	return 0;
}

/* "P" or "LO-HI". 0 or -1. */
static int
parse_port(const char *s, struct cls_port_range *pr)
{
	const char *dash = strchr(s, '-');
	char a[16], b[16];
	uint64_t lo, hi;

	if (dash == NULL) {
		if (sky_parse_u64(s, 0, 65535, &lo) < 0)
			return -1;
		pr->lo = pr->hi = (uint16_t)lo;
		return 0;
	}
	if ((size_t)(dash - s) >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
		return -1;
	memcpy(a, s, (size_t)(dash - s));
	a[dash - s] = '\0';
	strcpy(b, dash + 1);
	if (sky_parse_u64(a, 0, 65535, &lo) < 0 || sky_parse_u64(b, 0, 65535, &hi) < 0 || lo > hi)
		return -1;
	pr->lo = (uint16_t)lo;
	pr->hi = (uint16_t)hi;
	return 0;
}

static int
port_item(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	  const struct sky_cfg_node *e, const char *s, struct cls_rule *r)
{
	if (r->ports == NULL) {
		r->ports = calloc(sky_cfg_len(v), sizeof(*r->ports));
		if (r->ports == NULL)
			return sky_cfg_fail(err, cfg, v, "out of memory");
	}
	if (parse_port(s, &r->ports[r->n_ports]) < 0)
		return sky_cfg_fail(err, cfg, e,
				    "port '%s' is not a port 0..65535 or a range LO-HI", s);
	r->n_ports++;
	return 0;
}

/*
 * "ADDR[/LEN]" of family fam (4 or 6), host bits zero, as the subscriber CSV takes them:
 * dotted quads without leading zeros, any inet_pton IPv6 form, LEN without leading zeros
 * (default: the full length). 0 or -1.
 */
static int
parse_prefix(const char *s, uint8_t fam, uint8_t a[16], uint8_t *len)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned int max = fam == 4 ? 32 : 128, v = 0;
	char buf[64];

	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(fam == 4 ? AF_INET : AF_INET6, buf, a) != 1)
		return -1;
	if (slash != NULL) {
		const char *d = slash + 1;
		size_t n = strlen(d);

		if (n == 0 || n > 3 || (n > 1 && d[0] == '0'))
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (d[i] < '0' || d[i] > '9')
				return -1;
			v = v * 10 + (unsigned int)(d[i] - '0');
		}
		if (v > max)
			return -1;
	} else {
		v = max;
	}
	for (unsigned int bit = v; bit < max; bit++)
		if (a[bit / 8] >> (7 - bit % 8) & 1)
			return -1;
	*len = (uint8_t)v;
	return 0;
}

static int
prefix_item(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	    const struct sky_cfg_node *e, const char *s, struct cls_rule *r)
{
	struct cls_rule_pfx *p;

	if (r->pfx == NULL) {
		r->pfx = calloc(sky_cfg_len(v), sizeof(*r->pfx));
		if (r->pfx == NULL)
			return sky_cfg_fail(err, cfg, v, "out of memory");
	}
	p = &r->pfx[r->n_pfx];
	p->family = strchr(s, ':') != NULL ? 6 : 4;
	if (parse_prefix(s, p->family, p->a, &p->len) < 0)
		return sky_cfg_fail(err, cfg, e,
				    "prefix '%s' is not an IPv%u prefix (host bits must be zero)",
				    s, p->family);
	r->n_pfx++;
	return 0;
}

_Static_assert(sizeof(((struct cls_rule *)0)->has_dscp) == 1, "has_ flags are single bytes");

/* A rule field: its key, how one entry is read, and the rule's flag saying it is given. */
static const struct field {
	const char *key;
	item_fn item;
	size_t has; /* offsetof(struct cls_rule, has_...) */
} fields[] = {
	{"dscp", dscp_item, offsetof(struct cls_rule, has_dscp)},
	{"protocol", proto_item, offsetof(struct cls_rule, has_proto)},
	{"ports", port_item, offsetof(struct cls_rule, has_ports)},
	{"prefixes", prefix_item, offsetof(struct cls_rule, has_pfx)},
};

/* Field f of rule r from its value v: a non-empty list of scalars. 0, or -1 with err. */
static int
parse_field(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	    struct cls_rule *r, const struct field *f)
{
	if (seq_of(err, cfg, v) < 0)
		return -1;
	for (size_t i = 0; i < sky_cfg_len(v); i++) {
		const struct sky_cfg_node *e = sky_cfg_at(v, i);
		const char *s;

		if (scalar_of(err, cfg, e, &s) < 0 || f->item(err, cfg, v, e, s, r) < 0)
			return -1;
	}
	*((uint8_t *)r + f->has) = 1;
	return 0;
}

static struct cls_rule *
new_rule(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *at,
	 struct sky_class_set *out, unsigned int cls)
{
	struct cls_rule *r;

	if (out->rules->n == CLS_MAX_RULES) {
		sky_cfg_fail(err, cfg, at, "too many rules (at most %d over all classes)",
			     CLS_MAX_RULES);
		return NULL;
	}
	r = &out->rules->r[out->rules->n++];
	memset(r, 0, sizeof(*r));
	r->cls = (uint8_t)cls;
	r->line = sky_cfg_line(at);
	return r;
}

static int
parse_class(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *c,
	    struct sky_class_set *out, unsigned int ci)
{
	const char *name = NULL;
	bool def = false;
	unsigned int first_rule = out->rules->n;
	const struct sky_cfg_node *m;

	if (sky_cfg_check_keys(err, cfg, c, class_keys) < 0)
		return -1;
	if (sky_cfg_get_str(err, cfg, c, "name", true, &name) < 0 ||
	    sky_cfg_get_bool(err, cfg, c, "default", false, &def) < 0)
		return -1;
	if (name[0] == '\0' || strlen(name) >= SKY_NAME_MAX)
		return sky_cfg_fail(err, cfg, sky_cfg_get(c, "name"),
				    "class name '%s' must be 1..%d characters", name,
				    SKY_NAME_MAX - 1);
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return sky_cfg_fail(err, cfg, sky_cfg_get(c, "name"),
					    "class name '%s': use letters, digits, '_' or '-'",
					    name);
	for (unsigned int k = 0; k < ci; k++)
		if (strcmp(out->cls[k].name, name) == 0)
			return sky_cfg_fail(err, cfg, sky_cfg_get(c, "name"),
					    "class '%s' defined twice", name);
	snprintf(out->cls[ci].name, SKY_NAME_MAX, "%s", name);
	out->cls[ci].is_default = def;
	if (def) {
		if (out->default_cls >= 0)
			return sky_cfg_fail(err, cfg, sky_cfg_get(c, "default"),
					    "class '%s' is default, but '%s' already is", name,
					    out->cls[out->default_cls].name);
		out->default_cls = (int)ci;
	}
	/* shorthand keys: one rule each */
	for (size_t f = 0; f < RTE_DIM(fields); f++) {
		const struct sky_cfg_node *v = sky_cfg_get(c, fields[f].key);
		struct cls_rule *r;

		if (v == NULL)
			continue;
		r = new_rule(err, cfg, v, out, ci);
		if (r == NULL || parse_field(err, cfg, v, r, &fields[f]) < 0)
			return -1;
	}
	m = sky_cfg_get(c, "match");
	if (m != NULL) {
		if (seq_of(err, cfg, m) < 0)
			return -1;
		for (size_t i = 0; i < sky_cfg_len(m); i++) {
			const struct sky_cfg_node *e = sky_cfg_at(m, i);
			struct cls_rule *r;
			unsigned int nf = 0;

			if (sky_cfg_check_keys(err, cfg, e, match_keys) < 0)
				return -1;
			r = new_rule(err, cfg, e, out, ci);
			if (r == NULL)
				return -1;
			for (size_t f = 0; f < RTE_DIM(fields); f++) {
				const struct sky_cfg_node *v = sky_cfg_get(e, fields[f].key);

				if (v == NULL)
					continue;
				if (parse_field(err, cfg, v, r, &fields[f]) < 0)
					return -1;
				nf++;
			}
			if (nf == 0)
				return sky_cfg_fail(
					err, cfg, e,
					"empty match rule (give dscp, protocol, ports or "
					"prefixes)");
		}
	}
	if (!def && out->rules->n == first_rule)
		return sky_cfg_fail(err, cfg, c,
				    "class '%s' has no rules (dscp, protocol, ports, prefixes, "
				    "match) and is not the default",
				    name);
	return 0;
}

void
sky_class_set_free(struct sky_class_set *cs)
{
	if (cs->rules == NULL)
		return;
	for (unsigned int i = 0; i < cs->rules->n; i++) {
		free(cs->rules->r[i].ports);
		free(cs->rules->r[i].pfx);
	}
	free(cs->rules);
	cs->rules = NULL;
}

int
sky_class_set_parse(const struct sky_cfg *cfg, struct sky_cfg_err *err, struct sky_class_set *out)
{
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, "classes");
	size_t n;

	memset(out, 0, sizeof(*out));
	out->default_cls = -1;
	if (sec == NULL) {
		out->n_classes = 1;
		snprintf(out->cls[0].name, SKY_NAME_MAX, "default");
		out->cls[0].is_default = true;
		out->default_cls = 0;
		return 0;
	}
	if (sky_cfg_type(sec) != SKY_CFG_SEQ)
		return sky_cfg_fail(err, cfg, sec, "expected a list of classes");
	n = sky_cfg_len(sec);
	if (n == 0)
		return sky_cfg_fail(err, cfg, sec, "no classes (give at least a default class)");
	if (n > SKY_MAX_CLASSES)
		return sky_cfg_fail(err, cfg, sec, "%zu classes, at most %d", n, SKY_MAX_CLASSES);
	out->rules = calloc(1, sizeof(*out->rules));
	if (out->rules == NULL)
		return sky_cfg_fail(err, cfg, sec, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (parse_class(err, cfg, sky_cfg_at(sec, i), out, (unsigned int)i) < 0) {
			sky_class_set_free(out);
			return -1;
		}
		out->n_classes = (unsigned int)i + 1;
	}
	if (out->default_cls < 0) {
		sky_class_set_free(out);
		return sky_cfg_fail(err, cfg, sec,
				    "no class has 'default: true' (exactly one must)");
	}
	return 0;
}
