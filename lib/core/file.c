/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reading files that a request or the configuration names, safely (control path only).
 *
 * A path may name anything: a FIFO (open and read block forever), a directory, a device,
 * a file that someone truncates while we map it (SIGBUS). So: open with O_NONBLOCK (a FIFO
 * without a writer opens at once), fstat the descriptor (not the path: no race), refuse
 * what is not a regular file or is larger than the caller's bound, read with a time bound,
 * and check the size did not change under us. What the data path depends on is then in
 * memory we own: a heap buffer, or a sealed memfd for libraries that want a FILE or a
 * descriptor to mmap (libloc): nobody can shrink or write a sealed memfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "skygate/file.h"

static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static const char *
kind_of(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "not a regular file";
}

int
sky_file_open(const char *path, size_t max_bytes, struct stat *st, char *err, size_t errlen)
{
	struct stat sb;

	if (path == NULL || path[0] == '\0')
		return fail(err, errlen, -EINVAL, "empty path");
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, -e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return fail(err, errlen, -EINVAL, "%s: %s, not a regular file", path,
			    kind_of(sb.st_mode));
	}
	if (max_bytes > 0 && (uint64_t)sb.st_size > max_bytes) {
		close(fd);
		return fail(err, errlen, -EFBIG, "%s: %lld bytes, more than the limit of %zu", path,
			    (long long)sb.st_size, max_bytes);
	}
	/* reads of a regular file do not need O_NONBLOCK; clear it for plain read() loops */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if (st != NULL)
		*st = sb;
	return fd;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* read st_size bytes of fd into dst (or into the memfd out), bounded in time */
static int
copy_bounded(int fd, const char *path, const struct stat *st, void *dst, int out,
	     unsigned int timeout_ms, char *err, size_t errlen)
{
	char chunk[1 << 16];
	size_t want = (size_t)st->st_size, got = 0;
	uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : SKY_FILE_TIMEOUT_MS);

	while (got < want) {
		size_t n = want - got < sizeof(chunk) ? want - got : sizeof(chunk);
		ssize_t r = read(fd, dst != NULL ? (char *)dst + got : chunk, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(err, errlen, -errno, "%s: read: %s", path, strerror(errno));
		if (r == 0)
			return fail(err, errlen, -EIO,
				    "%s: changed while being read (%zu of %zu bytes)", path, got,
				    want);
		if (dst == NULL) {
			for (ssize_t w = 0; w < r;) {
				ssize_t k = write(out, chunk + w, (size_t)(r - w));
				if (k < 0 && errno == EINTR)
					continue;
				if (k < 0)
					return fail(err, errlen, -errno, "%s: copy: %s", path,
						    strerror(errno));
				w += k;
			}
		}
		got += (size_t)r;
		if (now_ms() > deadline)
			return fail(err, errlen, -ETIMEDOUT,
				    "%s: reading took more than %u ms (%zu of %zu bytes)", path,
				    timeout_ms ? timeout_ms : SKY_FILE_TIMEOUT_MS, got, want);
	}
	struct stat after;
	if (fstat(fd, &after) == 0 &&
	    (after.st_size != st->st_size || after.st_mtim.tv_sec != st->st_mtim.tv_sec ||
	     after.st_mtim.tv_nsec != st->st_mtim.tv_nsec))
		return fail(err, errlen, -EAGAIN, "%s: changed while being read", path);
	return 0;
}

int
sky_file_read(const char *path, size_t max_bytes, unsigned int timeout_ms, void **buf, size_t *len,
	      char *err, size_t errlen)
{
	struct stat st;

	*buf = NULL;
	*len = 0;
	int fd = sky_file_open(path, max_bytes, &st, err, errlen);
	if (fd < 0)
		return fd;
	/* one byte more: a NUL, so text parsers may treat the buffer as a string */
	char *b = malloc((size_t)st.st_size + 1);
	if (b == NULL) {
		close(fd);
		return fail(err, errlen, -ENOMEM, "%s: out of memory for %lld bytes", path,
			    (long long)st.st_size);
	}
	int rc = copy_bounded(fd, path, &st, b, -1, timeout_ms, err, errlen);
	close(fd);
	if (rc < 0) {
		free(b);
		return rc;
	}
	b[st.st_size] = '\0';
	*buf = b;
	*len = (size_t)st.st_size;
	return 0;
}

int
sky_file_memfd(const char *path, size_t max_bytes, unsigned int timeout_ms, size_t *len, char *err,
	       size_t errlen)
{
	struct stat st;

	int fd = sky_file_open(path, max_bytes, &st, err, errlen);
	if (fd < 0)
		return fd;
	int mfd = memfd_create("skygate-file", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, -e, "%s: memfd_create: %s", path, strerror(e));
	}
	int rc = copy_bounded(fd, path, &st, NULL, mfd, timeout_ms, err, errlen);
	close(fd);
	if (rc == 0 &&
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		rc = fail(err, errlen, -errno, "%s: sealing the copy: %s", path, strerror(errno));
	if (rc == 0 && lseek(mfd, 0, SEEK_SET) < 0)
		rc = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (rc < 0) {
		close(mfd);
		return rc;
	}
	if (len != NULL)
		*len = (size_t)st.st_size;
	return mfd;
}

int
sky_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	hex[0] = '\0';
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -EIO;
	for (unsigned int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}
