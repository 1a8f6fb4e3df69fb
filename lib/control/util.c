/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers the control files share: mkdir -p, words joined for messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "control_priv.h"

int
sky_ctl_mkdirs(const char *path, mode_t mode)
{
	char *p, *s;
	struct stat st;
	int rc = 0;

	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	s = strdup(path);
	if (s == NULL)
		return -ENOMEM;
	for (p = s + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(s, mode) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
		rc = -ENOTDIR;
	free(s);
	return rc;
}

/* Quote a word for messages when it is empty or has spaces or quotes. */
void
sky_ctl_join(char *buf, size_t len, int argc, char *const *argv)
{
	size_t off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (int i = 0; i < argc && off + 1 < len; i++) {
		const char *w = argv[i];
		int quote = w[0] == '\0' || strpbrk(w, " \t\n'\"") != NULL;
		int n = snprintf(buf + off, len - off, "%s%s%s%s", i > 0 ? " " : "",
				 quote ? "'" : "", w, quote ? "'" : "");

		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
}
