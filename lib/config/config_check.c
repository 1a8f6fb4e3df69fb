/* SPDX-License-Identifier: BSD-3-Clause */
/* Structure checks: a map has only the keys a module allows; the top level only sections. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "skygate/config.h"

#include "config_priv.h"

const char *const sky_cfg_sections[] = {
	"eal",	 "workers", "control", "ports",	 "mempool", "state",	 "subscribers", "plans",
	"beams", "classes", "geo",     "policy", "shaping", "telemetry", "log",		"flows",
	"zones", "ipfix",   "qoe",     "quota",	 "cluster", NULL,
};

int
sky_cfg_check_keys(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		   const char *const *allowed)
{
	const char *const *a;
	char list[384];
	size_t i;

	if (n == NULL || (n->type == SKY_CFG_SCALAR && n->null))
		return 0; /* absent optional section, or one written with all its keys commented out
			   */
	if (n->type != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, n, "expected a map, got %s",
				    sky_cfg_type_name(n->type));
	for (i = 0; i < n->n; i++) {
		for (a = allowed; a != NULL && *a != NULL; a++)
			if (strcmp(*a, n->key[i]) == 0)
				break;
		if (a == NULL || *a == NULL) {
			sky_cfg_list_words(list, sizeof(list), allowed, ", ");
			return sky_cfg_fail(err, cfg, n->val[i], "unknown key (allowed: %s)", list);
		}
	}
	return 0;
}

int
sky_cfg_check_sections(struct sky_cfg_err *err, const struct sky_cfg *cfg)
{
	if (cfg == NULL)
		return sky_cfg_emit(err, "<config>", 0, NULL, "no config");
	return sky_cfg_check_keys(err, cfg, cfg->root, sky_cfg_sections);
}
