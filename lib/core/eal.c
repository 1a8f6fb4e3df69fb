/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Leaving no trace of a DPDK process. rte_eal_cleanup() frees memory but leaves the runtime
 * directory (/var/run/dpdk/<prefix>: config, sockets, fbarrays) and, without --huge-unlink,
 * the hugepage files <prefix>map_* behind; a few test runs then fill /dev/hugepages. A
 * primary process owns both, so it removes them after the cleanup. Control path only.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include "skygate/runtime.h"

/* unlink the entries of dir whose name starts with prefix ("" = all); returns how many */
static unsigned int
unlink_prefixed(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	unsigned int n = 0;
	if (d == NULL)
		return 0;
	size_t plen = strlen(prefix);
	struct dirent *e;
	char path[PATH_MAX];
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strncmp(e->d_name, prefix, plen) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path) &&
		    unlink(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* the runtime directory and its hugepage file prefix ("<prefix>map_") */
static void
our_paths(char *rundir, size_t rlen, char *hugeprefix, size_t hlen)
{
	snprintf(rundir, rlen, "%s", rte_eal_get_runtime_dir());
	const char *slash = strrchr(rundir, '/');
	snprintf(hugeprefix, hlen, "%smap_", slash ? slash + 1 : rundir);
}

static void
remove_files(const char *rundir, const char *hugeprefix)
{
	if (rundir[0] == '\0')
		return;
	unlink_prefixed(rundir, "");
	rmdir(rundir);
	FILE *m = setmntent("/proc/mounts", "r");
	if (m != NULL) {
		struct mntent *ent;
		while ((ent = getmntent(m)) != NULL)
			if (strcmp(ent->mnt_type, "hugetlbfs") == 0)
				unlink_prefixed(ent->mnt_dir, hugeprefix);
		endmntent(m);
	}
}

int
sky_eal_cleanup(void)
{
	bool primary = rte_eal_process_type() == RTE_PROC_PRIMARY;
	char rundir[PATH_MAX], hugeprefix[PATH_MAX + 8];

	our_paths(rundir, sizeof(rundir), hugeprefix, sizeof(hugeprefix));
	int rc = rte_eal_cleanup();
	if (primary)
		remove_files(rundir, hugeprefix);
	return rc;
}

void
sky_eal_remove_files(void)
{
	char rundir[PATH_MAX], hugeprefix[PATH_MAX + 8];

	if (rte_eal_process_type() != RTE_PROC_PRIMARY)
		return;
	our_paths(rundir, sizeof(rundir), hugeprefix, sizeof(hugeprefix));
	remove_files(rundir, hugeprefix);
}
