/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * classify commands: `class reload` (re-read the rules from the config file; names fixed)
 * and `class list`. Main lcore; calls the owner (classify.c).
 */
#include <stdio.h>

#include "skygate/control.h"
#include "skygate/runtime.h"
#include "classify_priv.h"

static int
cmd_reload(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_classifier *c = arg;
	char err[600];

	if (argc != 0)
		return sky_ctl_fail(call, "usage: class reload");
	if (c->cfg_path[0] == '\0')
		return sky_ctl_fail(call, "no config file to read");
	if (sky_classify_reload(c, c->cfg_path, err, sizeof(err)) < 0)
		return sky_ctl_fail(call, "%s", err);
	sky_audit(call->uid, "class rules reloaded from %s (%u rules)", c->cfg_path, c->n_rules);
	*result = json_pack("{s:s, s:I}", "file", c->cfg_path, "rules", (json_int_t)c->n_rules);
	return 0;
}

static int
cmd_list(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	struct sky_classifier *c = arg;
	json_t *a = json_array();

	if (argc != 0)
		return sky_ctl_fail(call, "usage: class list");
	for (unsigned int i = 0; i < c->n_classes; i++)
		json_array_append_new(a,
				      json_pack("{s:i, s:s, s:b}", "index", i, "name",
						c->cls[i].name, "default", c->cls[i].is_default));
	*result = a;
	return 0;
}

int
sky_classify_register(struct sky_classifier *c, const char *config_path)
{
	int rc;

	if (config_path != NULL)
		snprintf(c->cfg_path, sizeof(c->cfg_path), "%s", config_path);
	rc = sky_ctl_register("class reload", "",
			      "re-read the classes rules from the config file (names fixed)", 0,
			      cmd_reload, c);
	if (rc < 0)
		return rc;
	return sky_ctl_register("class list", "", "traffic classes in priority order", 0, cmd_list,
				c);
}
