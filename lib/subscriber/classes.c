/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `classes:` section: names, the default class, and match rules. Shared by the
 * subscriber model (names, count, order) and the classifier (rules). Control path only.
 *
 * Semantics: classes are tried in list order, a class matches when any of its rules
 * matches; each shorthand key (dscp, protocol, ports, prefixes) at class level is a rule of
 * its own, each entry of `match:` is one rule whose fields must all match. `ports` matches
 * when sport or dport is in the set (packets without ports never match a ports rule);
 * `prefixes` match the remote address. The class with `default: true` takes every packet no
 * other class matched (its own rules, if any, are tried at its position like any other).
 * `queue` and `aqm` belong to the shaper and are accepted here unchecked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subs_internal.h"

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

static int
parse_dscp(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	   struct sky_rule *r)
{
	if (seq_of(err, cfg, v) < 0)
		return -1;
	for (size_t i = 0; i < sky_cfg_len(v); i++) {
		const struct sky_cfg_node *e = sky_cfg_at(v, i);
		const char *s;
		uint64_t d;

		if (scalar_of(err, cfg, e, &s) < 0)
			return -1;
		if (sky_parse_u64(s, 0, 63, &d) < 0)
			return sky_cfg_fail(err, cfg, e, "dscp '%s' is not a number 0..63", s);
		r->dscp_mask |= 1ULL << d;
	}
	r->has_dscp = 1;
	return 0;
}

static int
parse_proto(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	    struct sky_rule *r)
{
	if (seq_of(err, cfg, v) < 0)
		return -1;
	for (size_t i = 0; i < sky_cfg_len(v); i++) {
		const struct sky_cfg_node *e = sky_cfg_at(v, i);
		const char *s;
		uint64_t p = 256;

		if (scalar_of(err, cfg, e, &s) < 0)
			return -1;
		for (size_t k = 0; k < sizeof(proto_names) / sizeof(proto_names[0]); k++)
			if (strcasecmp(s, proto_names[k].name) == 0)
				p = proto_names[k].num;
		if (p == 256 && sky_parse_u64(s, 0, 255, &p) < 0)
			return sky_cfg_fail(
				err, cfg, e,
				"protocol '%s' unknown (tcp, udp, icmp, icmpv6, sctp or "
				"0..255)",
				s);
		r->proto_bm[p >> 6] |= 1ULL << (p & 63);
	}
	r->has_proto = 1;
	return 0;
}

static int
parse_port(const char *s, struct sky_port_range *pr)
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
parse_ports(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	    struct sky_rule *r)
{
	size_t n;

	if (seq_of(err, cfg, v) < 0)
		return -1;
	n = sky_cfg_len(v);
	r->ports = calloc(n, sizeof(*r->ports));
	if (r->ports == NULL)
		return sky_cfg_fail(err, cfg, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct sky_cfg_node *e = sky_cfg_at(v, i);
		const char *s;

		if (scalar_of(err, cfg, e, &s) < 0)
			return -1;
		if (parse_port(s, &r->ports[i]) < 0)
			return sky_cfg_fail(err, cfg, e,
					    "port '%s' is not a port 0..65535 or a range LO-HI", s);
		r->n_ports++;
	}
	r->has_ports = 1;
	return 0;
}

static int
parse_prefixes(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
	       struct sky_rule *r)
{
	size_t n;

	if (seq_of(err, cfg, v) < 0)
		return -1;
	n = sky_cfg_len(v);
	r->pfx = calloc(n, sizeof(*r->pfx));
	if (r->pfx == NULL)
		return sky_cfg_fail(err, cfg, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct sky_cfg_node *e = sky_cfg_at(v, i);
		struct sky_rule_pfx *p = &r->pfx[i];
		const char *s;

		if (scalar_of(err, cfg, e, &s) < 0)
			return -1;
		if (strchr(s, ':') != NULL) {
			p->family = 6;
			if (sky_parse_ip6_prefix(s, strlen(s), p->a, &p->len) < 0)
				return sky_cfg_fail(err, cfg, e,
						    "prefix '%s' is not an IPv6 prefix (host bits "
						    "must be zero)",
						    s);
		} else {
			p->family = 4;
			if (sky_parse_ip4_prefix(s, strlen(s), p->a, &p->len) < 0)
				return sky_cfg_fail(err, cfg, e,
						    "prefix '%s' is not an IPv4 prefix (host bits "
						    "must be zero)",
						    s);
		}
		r->n_pfx++;
	}
	r->has_pfx = 1;
	return 0;
}

typedef int (*field_fn)(struct sky_cfg_err *, const struct sky_cfg *, const struct sky_cfg_node *,
			struct sky_rule *);

static const struct {
	const char *key;
	field_fn fn;
} fields[] = {
	{"dscp", parse_dscp},
	{"protocol", parse_proto},
	{"ports", parse_ports},
	{"prefixes", parse_prefixes},
};

static struct sky_rule *
new_rule(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *at,
	 struct sky_class_set *out, unsigned int cls)
{
	struct sky_rule *r;

	if (out->n_rules == SKY_MAX_RULES) {
		sky_cfg_fail(err, cfg, at, "too many rules (at most %d over all classes)",
			     SKY_MAX_RULES);
		return NULL;
	}
	r = &out->rules[out->n_rules++];
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
	unsigned int first_rule = out->n_rules;
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
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		const struct sky_cfg_node *v = sky_cfg_get(c, fields[f].key);
		struct sky_rule *r;

		if (v == NULL)
			continue;
		r = new_rule(err, cfg, v, out, ci);
		if (r == NULL || fields[f].fn(err, cfg, v, r) < 0)
			return -1;
	}
	m = sky_cfg_get(c, "match");
	if (m != NULL) {
		if (seq_of(err, cfg, m) < 0)
			return -1;
		for (size_t i = 0; i < sky_cfg_len(m); i++) {
			const struct sky_cfg_node *e = sky_cfg_at(m, i);
			struct sky_rule *r;
			unsigned int nf = 0;

			if (sky_cfg_check_keys(err, cfg, e, match_keys) < 0)
				return -1;
			r = new_rule(err, cfg, e, out, ci);
			if (r == NULL)
				return -1;
			for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
				const struct sky_cfg_node *v = sky_cfg_get(e, fields[f].key);

				if (v == NULL)
					continue;
				if (fields[f].fn(err, cfg, v, r) < 0)
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
	if (!def && out->n_rules == first_rule)
		return sky_cfg_fail(err, cfg, c,
				    "class '%s' has no rules (dscp, protocol, ports, prefixes, "
				    "match) and is not the default",
				    name);
	return 0;
}

void
sky_class_set_free(struct sky_class_set *cs)
{
	for (unsigned int i = 0; i < cs->n_rules; i++) {
		free(cs->rules[i].ports);
		free(cs->rules[i].pfx);
		cs->rules[i].ports = NULL;
		cs->rules[i].pfx = NULL;
	}
	cs->n_rules = 0;
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
