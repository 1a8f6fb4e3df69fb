/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's own config sections: eal, workers, control, ports, mempool, state,
 * telemetry, log. The lib modules validate theirs (subscribers, plans, beams, classes,
 * geo, policy, shaping).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "skygate/flow.h"

static const char *const port_keys[] = {"name",	   "role",    "device", "peer",
					"rx_desc", "tx_desc", NULL};
static const char *const control_keys[] = {"socket",	       "mode",
					   "max_clients",      "clients_per_uid",
					   "reserved_clients", "idle_timeout",
					   "request_timeout",  "send_timeout",
					   "request_max",      NULL};
static const char *const mempool_keys[] = {"mbufs", "cache", "data_room", NULL};
static const char *const state_keys[] = {"dir", NULL};
static const char *const telemetry_keys[] = {"prometheus", NULL};
static const char *const log_keys[] = {"level", NULL};
static const char *const roles[] = {"uplink", "backhaul", NULL};
static const char *const levels[] = {"emerg",  "alert", "crit",	 "error", "warning",
				     "notice", "info",	"debug", NULL};

static int
parse_eal(const struct sky_cfg *cfg, struct sky_cfg_err *err, char ***argv, int *argc)
{
	struct sky_cfg_node *n = sky_cfg_get(cfg->root, "eal");
	size_t len;
	char **v;

	*argv = NULL;
	*argc = 0;
	if (n == NULL)
		return 0;
	if (sky_cfg_type(n) != SKY_CFG_SEQ)
		return sky_cfg_fail(err, cfg, n,
				    "must be a list of EAL arguments, e.g. [\"-l\", \"0-1\"]");
	len = sky_cfg_len(n);
	v = calloc(len + 1, sizeof(*v));
	if (v == NULL)
		return sky_cfg_fail(err, cfg, n, "out of memory");
	for (size_t i = 0; i < len; i++) {
		const char *s = sky_cfg_str(sky_cfg_at(n, i));

		if (s == NULL) {
			free(v);
			return sky_cfg_fail(err, cfg, sky_cfg_at(n, i), "must be a string");
		}
		v[i] = (char *)s;
	}
	*argv = v;
	*argc = (int)len;
	return 0;
}

static int
parse_ports(struct gw *g, const struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	struct sky_cfg_node *list = sky_cfg_get(cfg->root, "ports");
	size_t len;

	if (list == NULL)
		return sky_cfg_fail_missing(err, cfg, cfg->root, "ports");
	if (sky_cfg_type(list) != SKY_CFG_SEQ || sky_cfg_len(list) == 0)
		return sky_cfg_fail(err, cfg, list, "must be a non-empty list of ports");
	len = sky_cfg_len(list);
	if (len > GW_MAX_PORTS)
		return sky_cfg_fail(err, cfg, list, "at most %d ports", GW_MAX_PORTS);
	g->n_ports = (unsigned int)len;
	for (size_t i = 0; i < len; i++) {
		struct sky_cfg_node *n = sky_cfg_at(list, i);
		struct gw_port *p = &g->ports[i];
		const char *name = NULL, *device = NULL, *peer = NULL;
		unsigned int role = 0;
		uint64_t rx = 1024, tx = 1024;

		if (sky_cfg_check_keys(err, cfg, n, port_keys) < 0 ||
		    sky_cfg_get_str(err, cfg, n, "name", true, &name) < 0 ||
		    sky_cfg_get_enum(err, cfg, n, "role", true, roles, &role) < 0 ||
		    sky_cfg_get_str(err, cfg, n, "device", true, &device) < 0 ||
		    sky_cfg_get_str(err, cfg, n, "peer", true, &peer) < 0 ||
		    sky_cfg_get_u64(err, cfg, n, "rx_desc", false, 64, 32768, &rx) < 0 ||
		    sky_cfg_get_u64(err, cfg, n, "tx_desc", false, 64, 32768, &tx) < 0)
			return -1;
		if (strlen(name) == 0 || strlen(name) >= GW_NAME_MAX)
			return sky_cfg_fail(err, cfg, sky_cfg_get(n, "name"),
					    "name must be 1..%d characters", GW_NAME_MAX - 1);
		if (strlen(device) == 0 || strlen(device) >= sizeof(p->device))
			return sky_cfg_fail(err, cfg, sky_cfg_get(n, "device"),
					    "device must be a PCI address or a vdev string");
		if (strlen(peer) >= GW_NAME_MAX)
			return sky_cfg_fail(err, cfg, sky_cfg_get(n, "peer"), "no port named '%s'",
					    peer);
		snprintf(p->name, sizeof(p->name), "%s", name);
		snprintf(p->device, sizeof(p->device), "%s", device);
		snprintf(p->peer_name, sizeof(p->peer_name), "%s", peer);
		p->dir = role == 0 ? SKY_DIR_UP : SKY_DIR_DOWN;
		p->rx_desc = (unsigned int)rx;
		p->tx_desc = (unsigned int)tx;
		p->line = sky_cfg_line(n);
		p->out_slot = -1;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(g->ports[j].name, p->name) == 0)
				return sky_cfg_fail(err, cfg, sky_cfg_get(n, "name"),
						    "duplicate port name '%s' (also on line %u)",
						    p->name, g->ports[j].line);
			if (strcmp(g->ports[j].device, p->device) == 0)
				return sky_cfg_fail(err, cfg, sky_cfg_get(n, "device"),
						    "device '%s' already used by port '%s'",
						    p->device, g->ports[j].name);
		}
	}
	/* peers: exist, are mutual and of the opposite role */
	for (unsigned int i = 0; i < g->n_ports; i++) {
		struct gw_port *p = &g->ports[i];
		struct sky_cfg_node *pn = sky_cfg_get(sky_cfg_at(list, i), "peer");
		unsigned int j;

		for (j = 0; j < g->n_ports; j++)
			if (strcmp(g->ports[j].name, p->peer_name) == 0)
				break;
		if (j == g->n_ports)
			return sky_cfg_fail(err, cfg, pn, "no port named '%s'", p->peer_name);
		if (j == i)
			return sky_cfg_fail(err, cfg, pn, "a port cannot be its own peer");
		if (strcmp(g->ports[j].peer_name, p->name) != 0)
			return sky_cfg_fail(err, cfg, pn,
					    "peer '%s' must name '%s' as its peer (it names '%s')",
					    p->peer_name, p->name, g->ports[j].peer_name);
		if (g->ports[j].dir == p->dir)
			return sky_cfg_fail(
				err, cfg, pn,
				"peer '%s' has the same role; pair an uplink with a backhaul port",
				p->peer_name);
		p->peer = (uint16_t)j;
	}
	return 0;
}

static int
parse_mode(const struct sky_cfg *cfg, struct sky_cfg_err *err, struct sky_cfg_node *ctl,
	   unsigned int *mode)
{
	const char *s = NULL;
	char *end;
	unsigned long v;

	if (sky_cfg_get_str(err, cfg, ctl, "mode", false, &s) < 0)
		return -1;
	if (s == NULL)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno != 0 || *end != '\0' || end == s || v > 0777)
		return sky_cfg_fail(err, cfg, sky_cfg_get(ctl, "mode"),
				    "bad mode '%s' (octal permission bits, e.g. \"0660\")", s);
	*mode = (unsigned int)v;
	return 0;
}

/* control: { max_clients, clients_per_uid, reserved_clients, *_timeout, request_max } */
static int
parse_ctl_limits(const struct sky_cfg *cfg, struct sky_cfg_err *err, struct sky_cfg_node *ctl,
		 struct sky_ctl_limits *l)
{
	static const char *const timers[] = {"idle_timeout", "request_timeout", "send_timeout"};
	unsigned int *ms[] = {&l->idle_timeout_ms, &l->request_timeout_ms, &l->send_timeout_ms};
	uint64_t mc = l->max_clients, pu = l->clients_per_uid, rs = l->reserved,
		 rm = l->request_max;
	char why[200];

	if (sky_cfg_get_u64(err, cfg, ctl, "max_clients", false, 2, 65536, &mc) < 0 ||
	    sky_cfg_get_u64(err, cfg, ctl, "clients_per_uid", false, 1, 65536, &pu) < 0 ||
	    sky_cfg_get_u64(err, cfg, ctl, "reserved_clients", false, 0, 65535, &rs) < 0 ||
	    sky_cfg_get_size(err, cfg, ctl, "request_max", false, &rm) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
		uint64_t us = (uint64_t)*ms[i] * 1000;

		if (sky_cfg_get_time(err, cfg, ctl, timers[i], false, &us) < 0)
			return -1;
		if (us < 100000 || us > 86400000000ull)
			return sky_cfg_fail(err, cfg, sky_cfg_get(ctl, timers[i]),
					    "%s must be 100ms..24h", timers[i]);
		*ms[i] = (unsigned int)(us / 1000);
	}
	l->max_clients = (unsigned int)mc;
	l->clients_per_uid = (unsigned int)pu;
	l->reserved = (unsigned int)rs;
	l->request_max = (size_t)rm;
	if (sky_ctl_limits_check(l, why, sizeof(why)) < 0)
		return sky_cfg_fail(err, cfg, ctl, "%s", why);
	return 0;
}

int
gw_config_parse(struct gw *g, const struct sky_cfg *cfg, struct sky_cfg_err *err, char ***eal_argv,
		int *eal_argc)
{
	struct sky_cfg_node *n;
	const char *s;
	uint64_t v;
	unsigned int lvl;

	if (sky_cfg_check_sections(err, cfg) < 0)
		return -1;
	v = 1;
	if (sky_cfg_get_u64(err, cfg, cfg->root, "workers", false, 1, SKY_MAX_WORKERS, &v) < 0)
		return -1;
	g->n_workers = (unsigned int)v;

	snprintf(g->socket_path, sizeof(g->socket_path), "/run/skygate/skygate.sock");
	g->socket_mode = 0660;
	sky_ctl_limits_default(&g->ctl_limits);
	n = sky_cfg_get(cfg->root, "control");
	if (n != NULL) {
		s = NULL;
		if (sky_cfg_check_keys(err, cfg, n, control_keys) < 0 ||
		    sky_cfg_get_str(err, cfg, n, "socket", false, &s) < 0 ||
		    parse_mode(cfg, err, n, &g->socket_mode) < 0 ||
		    parse_ctl_limits(cfg, err, n, &g->ctl_limits) < 0)
			return -1;
		if (s != NULL) {
			if (strlen(s) == 0 || strlen(s) >= 108)
				return sky_cfg_fail(err, cfg, sky_cfg_get(n, "socket"),
						    "socket path must be 1..107 characters");
			snprintf(g->socket_path, sizeof(g->socket_path), "%s", s);
		}
	}

	g->mbufs = 16383;
	g->mbuf_cache = 256;
	g->data_room = 2048 + 128;
	n = sky_cfg_get(cfg->root, "mempool");
	if (n != NULL) {
		uint64_t mb = g->mbufs, c = g->mbuf_cache, dr = g->data_room;

		if (sky_cfg_check_keys(err, cfg, n, mempool_keys) < 0 ||
		    sky_cfg_get_u64(err, cfg, n, "mbufs", false, 1024, 1u << 24, &mb) < 0 ||
		    sky_cfg_get_u64(err, cfg, n, "cache", false, 0, 512, &c) < 0 ||
		    sky_cfg_get_size(err, cfg, n, "data_room", false, &dr) < 0)
			return -1;
		if (dr < 1024 || dr > 65535)
			return sky_cfg_fail(err, cfg, sky_cfg_get(n, "data_room"),
					    "data_room must be 1KB..64KB (got %llu bytes)",
					    (unsigned long long)dr);
		g->mbufs = (unsigned int)mb;
		g->mbuf_cache = (unsigned int)c;
		g->data_room = (unsigned int)dr;
	}

	g->state_dir[0] = '\0';
	n = sky_cfg_get(cfg->root, "state");
	if (n != NULL) {
		s = NULL;
		if (sky_cfg_check_keys(err, cfg, n, state_keys) < 0 ||
		    sky_cfg_get_str(err, cfg, n, "dir", true, &s) < 0)
			return -1;
		snprintf(g->state_dir, sizeof(g->state_dir), "%s", s);
	}

	g->prometheus[0] = '\0';
	n = sky_cfg_get(cfg->root, "telemetry");
	if (n != NULL) {
		s = NULL;
		if (sky_cfg_check_keys(err, cfg, n, telemetry_keys) < 0 ||
		    sky_cfg_get_str(err, cfg, n, "prometheus", false, &s) < 0)
			return -1;
		if (s != NULL)
			snprintf(g->prometheus, sizeof(g->prometheus), "%s", s);
	}

	n = sky_cfg_get(cfg->root, "log");
	if (n != NULL) {
		lvl = 6;
		if (sky_cfg_check_keys(err, cfg, n, log_keys) < 0 ||
		    sky_cfg_get_enum(err, cfg, n, "level", false, levels, &lvl) < 0)
			return -1;
		g->log_level = (int)lvl + 1; /* RTE_LOG_EMERG = 1 */
	}

	if (parse_ports(g, cfg, err) < 0)
		return -1;
	return parse_eal(cfg, err, eal_argv, eal_argc);
}

/*
 * Fill what the file omits. Without `plans` and `beams` skygate is a transparent inline
 * forwarder: one plan `pass` and one beam `default` at the port rate, no shaping (so no
 * policing either), and without a `subscribers` section every address is an unknown
 * subscriber that passes on the first plan (counted, seen by the classifier and the
 * policy). Then every fixed default (sky_cfg_defaults) under whatever the file sets.
 */
int
gw_config_defaults(struct sky_cfg *cfg, struct sky_cfg_err *err)
{
	struct sky_cfg_node *plans;
	char buf[256];

	if (cfg == NULL || sky_cfg_type(cfg->root) != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, NULL, "the configuration must be a map of sections");
	if (sky_cfg_get(cfg->root, "plans") == NULL &&
	    sky_cfg_merge_defaults(cfg,
				   "plans: { pass: { down: 100Gbit, up: 100Gbit } }\n"
				   "shaping: { enabled: false }\n",
				   err) < 0)
		return -1;
	if (sky_cfg_get(cfg->root, "beams") == NULL &&
	    sky_cfg_merge_defaults(cfg, "beams: { default: { down: 100Gbit, up: 100Gbit } }\n",
				   err) < 0)
		return -1;
	plans = sky_cfg_get(cfg->root, "plans");
	if (sky_cfg_get(cfg->root, "subscribers") == NULL && sky_cfg_type(plans) == SKY_CFG_MAP &&
	    sky_cfg_len(plans) > 0) {
		const char *first = sky_cfg_key_at(plans, 0);

		/* a name with quotes is refused by the plan parser later; keep the text valid */
		if (strpbrk(first, "\"\\\n") != NULL)
			return sky_cfg_fail(err, cfg, sky_cfg_at(plans, 0), "bad plan name");
		snprintf(buf, sizeof(buf), "subscribers: { unknown: { plan: \"%s\" } }\n", first);
		if (sky_cfg_merge_defaults(cfg, buf, err) < 0)
			return -1;
	}
	/* cluster mode only when the section is there: its defaults never create it */
	if (sky_cfg_get(cfg->root, "cluster") != NULL &&
	    sky_cfg_merge_defaults(
		    cfg, "cluster: { lease_ttl: 3s, timeout: 500ms, other_beams: drop }\n", err) <
		    0)
		return -1;
	/* the flow table is off without its section: its defaults fill a section written */
	if (sky_cfg_get(cfg->root, "flows") != NULL &&
	    sky_cfg_merge_defaults(cfg, sky_flow_cfg_defaults, err) < 0)
		return -1;
	return sky_cfg_merge_defaults(cfg, sky_cfg_defaults, err);
}
