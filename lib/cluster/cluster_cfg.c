/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `cluster:` section. Absent: skygate runs alone on its journal. Present:
 *   cluster:
 *     etcd: [http://10.0.0.1:2379, http://10.0.0.2:2379]   # endpoints, tried in turn
 *     prefix: /skygate/station1   # every key of this station lives under it
 *     node: gw1                   # this node's name, unique in the station
 *     lease_ttl: 3s               # whole seconds, 2s..60s
 *     timeout: 500ms              # each call to etcd, 50ms..10s, below lease_ttl / 3
 *     other_beams: drop           # or pass: packets of beams another node owns
 *     pins: { beam1: gw1 }        # beams that go to a node while it is live
 * Defaults (lease_ttl, timeout, other_beams) come from gateway/config.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "skygate/cluster.h"
#include "skygate/config.h"

#include "cluster_priv.h"

static const char *const cluster_keys[] = {"etcd",    "prefix",	     "node", "lease_ttl",
					   "timeout", "other_beams", "pins", NULL};

/* node and beam names in keys and values: short, plain */
static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SKY_CLUSTER_NAME_MAX)
		return 0;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

static int
endpoints(const struct sky_cfg *cfg, const struct sky_cfg_node *c, struct sky_cluster_cfg *out,
	  struct sky_cfg_err *err)
{
	const struct sky_cfg_node *e = sky_cfg_get(c, "etcd");

	if (e == NULL)
		return sky_cfg_fail_missing(err, cfg, c, "etcd");
	if (sky_cfg_type(e) != SKY_CFG_SEQ || sky_cfg_len(e) == 0)
		return sky_cfg_fail(err, cfg, e,
				    "a list of etcd client URLs expected, e.g. "
				    "[http://127.0.0.1:2379]");
	if (sky_cfg_len(e) > SKY_CLUSTER_MAX_ENDPOINTS)
		return sky_cfg_fail(err, cfg, e, "%zu endpoints (at most %d)", sky_cfg_len(e),
				    SKY_CLUSTER_MAX_ENDPOINTS);
	for (size_t i = 0; i < sky_cfg_len(e); i++) {
		const struct sky_cfg_node *v = sky_cfg_at(e, i);
		const char *url;

		if (sky_cfg_as_str(err, cfg, v, &url) < 0)
			return -1;
		if (strncmp(url, "http://", 7) != 0 || strlen(url) <= 7 ||
		    strlen(url) >= sizeof(out->endpoints[0]) || strpbrk(url + 7, "/ ") != NULL)
			return sky_cfg_fail(err, cfg, v,
					    "'%s' is not an etcd client URL (http://HOST:PORT; "
					    "TLS is not supported yet)",
					    url);
		snprintf(out->endpoints[i], sizeof(out->endpoints[i]), "%s", url);
	}
	out->n_endpoints = (unsigned int)sky_cfg_len(e);
	return 0;
}

int
sky_cluster_cfg_parse(const struct sky_cfg *cfg, struct sky_cluster_cfg *out,
		      struct sky_cfg_err *err)
{
	static const char *const others[] = {"drop", "pass", NULL};
	const struct sky_cfg_node *c = sky_cfg_get(cfg->root, "cluster"), *pins;
	const char *prefix, *node;
	uint64_t ttl_us = 3000000, timeout_us = 500000;
	unsigned int other = 0;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return 0;
	if (sky_cfg_check_keys(err, cfg, c, cluster_keys) < 0 || endpoints(cfg, c, out, err) < 0)
		return -1;
	if (sky_cfg_get_str(err, cfg, c, "prefix", true, &prefix) < 0 ||
	    sky_cfg_get_str(err, cfg, c, "node", true, &node) < 0 ||
	    sky_cfg_get_time(err, cfg, c, "lease_ttl", false, &ttl_us) < 0 ||
	    sky_cfg_get_time(err, cfg, c, "timeout", false, &timeout_us) < 0 ||
	    sky_cfg_get_enum(err, cfg, c, "other_beams", false, others, &other) < 0)
		return -1;
	if (prefix[0] != '/' || strlen(prefix) < 2 || prefix[strlen(prefix) - 1] == '/' ||
	    strlen(prefix) >= 200 || strstr(prefix, "//") != NULL)
		return sky_cfg_fail(err, cfg, sky_cfg_get(c, "prefix"),
				    "'%s': a key prefix such as /skygate/station1 expected (starts "
				    "with /, no trailing /, < 200 bytes)",
				    prefix);
	if (!name_ok(node))
		return sky_cfg_fail(err, cfg, sky_cfg_get(c, "node"),
				    "'%s': a node name of 1..63 letters, digits, '.', '_', '-' "
				    "expected",
				    node);
	if (ttl_us % 1000000 != 0 || ttl_us < 2000000 || ttl_us > 60000000)
		return sky_cfg_fail(err, cfg, sky_cfg_get(c, "lease_ttl"),
				    "whole seconds from 2s to 60s expected (etcd leases count "
				    "seconds)");
	if (timeout_us < 50000 || timeout_us > 10000000 || timeout_us * 3 > ttl_us)
		return sky_cfg_fail(err, cfg, sky_cfg_get(c, "timeout"),
				    "50ms..10s and at most lease_ttl / 3 expected (a node must try "
				    "to renew its lease more than once before giving its beams "
				    "up)");
	snprintf(out->prefix, sizeof(out->prefix), "%s", prefix);
	snprintf(out->node, sizeof(out->node), "%s", node);
	out->ttl_s = (unsigned int)(ttl_us / 1000000);
	out->timeout_ms = (unsigned int)(timeout_us / 1000);
	out->other = other == 1 ? SKY_CLUSTER_OTHER_PASS : SKY_CLUSTER_OTHER_DROP;
	pins = sky_cfg_get(c, "pins");
	/* a map, or `pins:` without a value */
	if (pins != NULL && sky_cfg_type(pins) != SKY_CFG_MAP &&
	    (sky_cfg_str(pins) == NULL || sky_cfg_str(pins)[0] != '\0'))
		return sky_cfg_fail(err, cfg, pins, "a map of BEAM: NODE expected");
	for (size_t i = 0; pins != NULL && i < sky_cfg_len(pins); i++) {
		const struct sky_cfg_node *v = sky_cfg_at(pins, i);
		const char *beam = sky_cfg_key_at(pins, i), *to;

		if (sky_cfg_as_str(err, cfg, v, &to) < 0)
			return -1;
		if (!name_ok(to))
			return sky_cfg_fail(err, cfg, v, "'%s' is not a node name", to);
		if (strlen(beam) >= SKY_CLUSTER_NAME_MAX || i >= SKY_CLUSTER_MAX_BEAMS)
			return sky_cfg_fail(err, cfg, v, "too long a beam name, or too many pins");
		snprintf(out->pins[i].beam, sizeof(out->pins[i].beam), "%s", beam);
		snprintf(out->pins[i].node, sizeof(out->pins[i].node), "%s", to);
		out->n_pins++;
	}
	return 1;
}

int
sky_cluster_cfg_check(const struct sky_cfg *cfg, int *enabled, struct sky_cfg_err *err)
{
	struct sky_cluster_cfg c;
	int rc = sky_cluster_cfg_parse(cfg, &c, err);

	if (rc < 0)
		return -1;
	*enabled = rc;
	return 0;
}
