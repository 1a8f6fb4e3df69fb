/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `policy` section of the config (control path): on_fault, jit, the object (a
 * relative path from the working directory, else from the config's directory) and map
 * entries applied after the load. Builds the hook through policy.c; errors name the
 * config line.
 */
#include <errno.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "skygate/config.h"
#include "skygate/policy.h"

#include "policy_impl.h"

static const char *const policy_keys[] = {"object", "on_fault", "jit", "maps", NULL};
static const char *const on_fault_choices[] = {"pass", "drop", NULL};

static int
apply_cfg_maps(struct sky_policy *p, const struct sky_cfg *cfg, const struct sky_cfg_node *maps,
	       struct sky_cfg_err *err)
{
	if (sky_cfg_type(maps) != SKY_CFG_MAP)
		return sky_cfg_fail(err, cfg, maps, "expected a map of map names");
	for (size_t i = 0; i < sky_cfg_len(maps); i++) {
		const char *name = sky_cfg_key_at(maps, i);
		const struct sky_cfg_node *ent = sky_cfg_at(maps, i);
		struct sky_pmap *m = policy_map_find(p, name);

		if (m == NULL)
			return sky_cfg_fail(err, cfg, ent,
					    "the policy object has no map named '%s'", name);
		if (sky_cfg_type(ent) != SKY_CFG_MAP)
			return sky_cfg_fail(err, cfg, ent, "expected { KEY: VALUE, ... }");
		for (size_t j = 0; j < sky_cfg_len(ent); j++) {
			const char *key = sky_cfg_key_at(ent, j);
			const struct sky_cfg_node *vn = sky_cfg_at(ent, j);
			const char *val = sky_cfg_str(vn);
			char why[256];

			if (val == NULL)
				return sky_cfg_fail(err, cfg, vn, "expected a scalar value");
			if (sky_policy_map_update(p, name, key, val, why, sizeof(why)) != 0)
				return sky_cfg_fail(err, cfg, vn, "%s", why);
		}
	}
	return 0;
}

struct sky_policy *
sky_policy_create(const struct sky_cfg *cfg, const struct sky_subs *subs, struct sky_cfg_err *err)
{
	const struct sky_cfg_node *sec = cfg != NULL ? sky_cfg_get(cfg->root, "policy") : NULL;
	const struct sky_cfg_node *maps;
	struct sky_policy *p;
	const char *object = NULL;
	unsigned int on_fault = 0;
	bool jit = true;
	char path[4096], why[768];

	switch (policy_new(subs, &p)) {
	case 0:
		break;
	case -ENOMEM:
		sky_cfg_fail(err, cfg, NULL, "policy: out of memory");
		return NULL;
	default:
		sky_cfg_fail(err, cfg, sec, "out of hugepage memory for the policy counters");
		return NULL;
	}
	if (cfg != NULL && cfg->file != NULL) {
		char tmp[4096];

		snprintf(tmp, sizeof(tmp), "%s", cfg->file);
		snprintf(p->cfg_dir, sizeof(p->cfg_dir), "%s", dirname(tmp));
	}
	if (sec == NULL)
		return p;
	if (sky_cfg_check_keys(err, cfg, sec, policy_keys) != 0 ||
	    sky_cfg_get_str(err, cfg, sec, "object", false, &object) != 0 ||
	    sky_cfg_get_enum(err, cfg, sec, "on_fault", false, on_fault_choices, &on_fault) != 0 ||
	    sky_cfg_get_bool(err, cfg, sec, "jit", false, &jit) != 0)
		goto fail;
	p->on_fault_drop = on_fault == 1;
	p->jit = jit;
	maps = sky_cfg_get(sec, "maps");
	if (object == NULL) {
		if (maps != NULL) {
			sky_cfg_fail(err, cfg, maps, "maps given without a policy object");
			goto fail;
		}
		return p;
	}
	/* a relative path: from the working directory, else from the config's directory */
	snprintf(path, sizeof(path), "%s", object);
	if (object[0] != '/' && access(path, R_OK) != 0 && p->cfg_dir[0] != '\0' &&
	    snprintf(path, sizeof(path), "%s/%s", p->cfg_dir, object) >= (int)sizeof(path)) {
		sky_cfg_fail(err, cfg, sky_cfg_get(sec, "object"), "path too long");
		goto fail;
	}
	if (sky_policy_load_file(p, path, why, sizeof(why)) != 0) {
		sky_cfg_fail(err, cfg, sky_cfg_get(sec, "object"), "%s", why);
		goto fail;
	}
	if (maps != NULL && apply_cfg_maps(p, cfg, maps, err) != 0)
		goto fail;
	return p;
fail:
	sky_policy_destroy(p);
	return NULL;
}
