/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow table configuration: the `flows:` section. Control path.
 *
 *   flows:
 *     entries: 262144         # per worker, a power of two (1024..16M)
 *     rtt: true               # passive RTT (TCP timestamps, handshake, ICMP echo)
 *     rtt_samples_per_sec: 4  # per flow and half (1..1000)
 *     records: false          # flow records (forced on by an `ipfix:` collector)
 *     active_timeout: 60s     # a longer flow is exported and its counters restart (1s..1h)
 *     idle_timeout: 15s       # a flow without packets this long ends (1s..120s)
 *
 * Without the section the table is off. The section's defaults are also merged into the
 * file by the daemon (sky_flow_cfg_defaults, for `skygate --check --print`); both come
 * from sky_flow_params_default, which the unit test compares against the text.
 */
#include <stdio.h>

#include "skygate/config.h"

#include "flow_priv.h"

const char sky_flow_cfg_defaults[] = "flows:\n"
				     "  entries: 262144\n"
				     "  rtt: true\n"
				     "  rtt_samples_per_sec: 4\n"
				     "  records: false\n"
				     "  active_timeout: 60s\n"
				     "  idle_timeout: 15s\n";

void
sky_flow_params_default(struct flow_params *p)
{
	*p = (struct flow_params){
		.entries = 262144,
		.rtt = true,
		.records = false,
		.rtt_samples_per_sec = 4,
		.active_timeout_us = 60000000,
		.idle_timeout_us = 15000000,
		.present = false,
	};
}

int
sky_flow_parse_config(const struct sky_cfg *cfg, struct flow_params *p, struct sky_cfg_err *err)
{
	static const char *const keys[] = {
		"entries",	"rtt", "rtt_samples_per_sec", "records", "active_timeout",
		"idle_timeout", NULL};
	const struct sky_cfg_node *fl = sky_cfg_get(cfg->root, "flows");
	uint64_t v;

	if (fl == NULL)
		return 0;
	p->present = true;
	if (sky_cfg_check_keys(err, cfg, fl, keys) < 0 ||
	    sky_cfg_get_bool(err, cfg, fl, "rtt", false, &p->rtt) < 0 ||
	    sky_cfg_get_bool(err, cfg, fl, "records", false, &p->records) < 0 ||
	    sky_cfg_get_time(err, cfg, fl, "active_timeout", false, &p->active_timeout_us) < 0 ||
	    sky_cfg_get_time(err, cfg, fl, "idle_timeout", false, &p->idle_timeout_us) < 0)
		return -1;
	v = p->entries;
	if (sky_cfg_get_u64(err, cfg, fl, "entries", false, 1024, 1u << 24, &v) < 0)
		return -1;
	if ((v & (v - 1)) != 0)
		return sky_cfg_fail(err, cfg, sky_cfg_get(fl, "entries"),
				    "entries must be a power of two (%llu is not)",
				    (unsigned long long)v);
	p->entries = (uint32_t)v;
	v = p->rtt_samples_per_sec;
	if (sky_cfg_get_u64(err, cfg, fl, "rtt_samples_per_sec", false, 1, 1000, &v) < 0)
		return -1;
	p->rtt_samples_per_sec = (uint32_t)v;
	if (p->idle_timeout_us < 1000000 || p->idle_timeout_us > 120000000)
		return sky_cfg_fail(err, cfg, sky_cfg_get(fl, "idle_timeout"),
				    "idle_timeout must be 1s..120s");
	if (p->active_timeout_us < 1000000 || p->active_timeout_us > 3600000000ULL)
		return sky_cfg_fail(err, cfg, sky_cfg_get(fl, "active_timeout"),
				    "active_timeout must be 1s..1h");
	if (p->active_timeout_us < p->idle_timeout_us)
		return sky_cfg_fail(err, cfg, sky_cfg_get(fl, "active_timeout"),
				    "active_timeout must not be below idle_timeout");
	return 0;
}
