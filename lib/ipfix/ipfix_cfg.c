/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `ipfix:` section (control path): collectors, template refresh, enterprise number,
 * path MTU. Every refusal names the key: "FILE:LINE: ipfix.collectors[1].port: ...".
 * The documented defaults are in sky_cfg_defaults (lib/config/config_out.c); the same
 * values are the fallbacks here, for callers that did not merge them (tests).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ipfix_priv.h"

static const char *const ipfix_keys[] = {
	"collectors", "template_refresh", "template_refresh_packets", "enterprise_number", "mtu",
	NULL};
static const char *const coll_keys[] = {"address", "port", "observation_domain", NULL};

/* Largest message a data record of either template needs with the template set before it. */
static size_t
min_payload(void)
{
	return IPFIX_MSG_HDR + ipfix_enc_templates_len() + IPFIX_SET_HDR + ipfix_enc_record_len(1);
}

static int
parse_collector(const struct sky_cfg *cfg, const struct sky_cfg_node *n, struct ipfix_coll_conf *c,
		struct sky_cfg_err *err)
{
	const char *addr = NULL;
	uint64_t port = 0, domain = 1;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&c->sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->sa;

	if (sky_cfg_type(n) != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, n,
				    "a collector is a map: { address: 192.0.2.1, port: 4739, "
				    "observation_domain: 1 }");
	if (sky_cfg_check_keys(err, cfg, n, coll_keys) < 0 ||
	    sky_cfg_get_str(err, cfg, n, "address", true, &addr) < 0 ||
	    sky_cfg_get_u64(err, cfg, n, "port", true, 1, 65535, &port) < 0 ||
	    sky_cfg_get_u64(err, cfg, n, "observation_domain", false, 0, UINT32_MAX, &domain) < 0)
		return -1;
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		c->sa_len = sizeof(*s4);
		c->family = AF_INET;
		inet_ntop(AF_INET, &s4->sin_addr, c->address, sizeof(c->address));
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		c->sa_len = sizeof(*s6);
		c->family = AF_INET6;
		inet_ntop(AF_INET6, &s6->sin6_addr, c->address, sizeof(c->address));
	} else {
		return sky_cfg_fail(err, cfg, sky_cfg_get(n, "address"),
				    "'%s' is not an IPv4 or IPv6 address (no host names: the "
				    "exporter resolves nothing)",
				    addr);
	}
	c->port = (uint16_t)port;
	c->domain = (uint32_t)domain;
	return 0;
}

int
ipfix_conf_parse(const struct sky_cfg *cfg, struct ipfix_conf *c, struct sky_cfg_err *err)
{
	const struct sky_cfg_node *sec = sky_cfg_get(cfg->root, "ipfix");
	const struct sky_cfg_node *list;
	uint64_t refresh_us = 60000000, packets = 0, pen = SKY_IPFIX_DEFAULT_PEN, mtu = 1400;

	memset(c, 0, sizeof(*c));
	if (sky_cfg_check_keys(err, cfg, sec, ipfix_keys) < 0 ||
	    sky_cfg_get_time(err, cfg, sec, "template_refresh", false, &refresh_us) < 0 ||
	    sky_cfg_get_u64(err, cfg, sec, "template_refresh_packets", false, 0, 1000000,
			    &packets) < 0 ||
	    sky_cfg_get_u64(err, cfg, sec, "enterprise_number", false, 1, UINT32_MAX, &pen) < 0 ||
	    sky_cfg_get_u64(err, cfg, sec, "mtu", false, 512, IPFIX_MAX_MSG, &mtu) < 0)
		return -1;
	if (refresh_us < 1000000 || refresh_us > 86400000000ull)
		return sky_cfg_fail(err, cfg, sky_cfg_get(sec, "template_refresh"),
				    "must be 1s..1d (collectors forget UDP templates they are not "
				    "sent again)");
	/* the smallest message must hold the template set and one IPv6 record */
	if (mtu - 48 < min_payload())
		return sky_cfg_fail(err, cfg, sky_cfg_get(sec, "mtu"),
				    "%u is too small: a message with the templates and one IPv6 "
				    "record needs %zu bytes plus 48 of IPv6 and UDP headers",
				    (unsigned int)mtu, min_payload());
	c->refresh_ms = refresh_us / 1000;
	c->refresh_packets = packets;
	c->pen = (uint32_t)pen;
	c->mtu = (unsigned int)mtu;
	list = sky_cfg_get(sec, "collectors");
	if (list == NULL || (sky_cfg_type(list) == SKY_CFG_SCALAR && sky_cfg_str(list) != NULL &&
			     sky_cfg_str(list)[0] == '\0'))
		return 0; /* no collector: export off */
	if (sky_cfg_type(list) != SKY_CFG_SEQ)
		return sky_cfg_fail(err, cfg, list,
				    "must be a list of collectors: [ { address: 192.0.2.1, port: "
				    "4739 } ]");
	if (sky_cfg_len(list) > SKY_IPFIX_MAX_COLLECTORS)
		return sky_cfg_fail(err, cfg, list, "at most %d collectors",
				    SKY_IPFIX_MAX_COLLECTORS);
	for (size_t i = 0; i < sky_cfg_len(list); i++) {
		const struct sky_cfg_node *n = sky_cfg_at(list, i);
		struct ipfix_coll_conf *cc = &c->coll[i];

		if (parse_collector(cfg, n, cc, err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (c->coll[j].port == cc->port &&
			    strcmp(c->coll[j].address, cc->address) == 0)
				return sky_cfg_fail(err, cfg, n,
						    "collector %s port %u is listed twice "
						    "(collectors[%zu])",
						    cc->address, cc->port, j);
		c->n_coll++;
	}
	return 0;
}
