/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/core: safe file reading (sky_file_*). Failure cases first: every kind of path that is
 * not a regular file is refused at once with a message naming it (a FIFO without a writer
 * must not block), sizes over the bound are refused, and a file copied into a memfd is
 * immune to what happens to the original afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "skygate/file.h"

static char dir[] = "/tmp/skyut.core.XXXXXX";

static void
path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void
write_file(const char *name, const char *data, size_t len)
{
	char p[256];
	path_of(p, sizeof(p), name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	char p[256];
	path_of(p, sizeof(p), "fifo");
	if (mkfifo(p, 0600) < 0)
		return -1;
	path_of(p, sizeof(p), "subdir");
	if (mkdir(p, 0700) < 0)
		return -1;
	/* a listening Unix socket: a file system object that open() refuses */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	path_of(a.sun_path, sizeof(a.sun_path), "sock");
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	close(s);
	write_file("ok.txt", "hello\n", 6);
	write_file("empty", "", 0);
	char big[4096];
	memset(big, 'x', sizeof(big));
	write_file("big", big, sizeof(big));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	const char *names[] = {"fifo", "sock", "ok.txt", "empty", "big", "trunc"};
	char p[256];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_of(p, sizeof(p), names[i]);
		unlink(p);
	}
	path_of(p, sizeof(p), "subdir");
	rmdir(p);
	rmdir(dir);
	return 0;
}

static uint64_t
ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct refuse_case {
	const char *name; /* under dir; NULL = the absolute path below */
	const char *abs;
	size_t max;
	int rc;
	const char *msg; /* expected in the error */
};

static const struct refuse_case refuse[] = {
	{"fifo", NULL, 0, -EINVAL, "a FIFO, not a regular file"},
	{"subdir", NULL, 0, -EINVAL, "a directory, not a regular file"},
	{NULL, "/dev/zero", 0, -EINVAL, "a character device, not a regular file"},
	{"sock", NULL, 0, -ENXIO, "sock"},
	{"missing", NULL, 0, -ENOENT, "No such file"},
	{"big", NULL, 4095, -EFBIG, "4096 bytes, more than the limit of 4095"},
	{NULL, "", 0, -EINVAL, "empty path"},
};

static void
test_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refuse) / sizeof(refuse[0]); i++) {
		const struct refuse_case *c = &refuse[i];
		char p[256], err[256] = "";
		void *buf = (void *)1;
		size_t len = 1;
		if (c->name)
			path_of(p, sizeof(p), c->name);
		else
			snprintf(p, sizeof(p), "%s", c->abs);
		uint64_t t0 = ms_now();
		int rc = sky_file_read(p, c->max, 0, &buf, &len, err, sizeof(err));
		if (rc != c->rc || strstr(err, c->msg) == NULL)
			fail_msg("case %zu (%s): rc %d err '%s', wanted %d '%s'", i, p, rc, err,
				 c->rc, c->msg);
		assert_null(buf);
		assert_int_equal(len, 0);
		assert_true(ms_now() - t0 < 1000); /* never blocks (the FIFO has no writer) */
		err[0] = '\0';
		rc = sky_file_memfd(p, c->max, 0, NULL, err, sizeof(err));
		assert_int_equal(rc, c->rc);
		assert_non_null(strstr(err, c->msg));
	}
}

static void
test_read_ok(void **state)
{
	(void)state;
	struct {
		const char *name;
		size_t max;
		size_t len;
	} ok[] = {{"ok.txt", 0, 6}, {"ok.txt", 6, 6}, {"empty", 0, 0}, {"big", 4096, 4096}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char p[256], err[256] = "";
		void *buf = NULL;
		size_t len = 99;
		path_of(p, sizeof(p), ok[i].name);
		assert_int_equal(sky_file_read(p, ok[i].max, 0, &buf, &len, err, sizeof(err)), 0);
		assert_int_equal(len, ok[i].len);
		assert_non_null(buf);
		assert_int_equal(((char *)buf)[len], '\0');
		free(buf);
	}
}

/* the memfd copy keeps its bytes when the original is truncated and rewritten, and it
 * cannot be shrunk or written: a mapping of it never faults */
static void
test_memfd_immune(void **state)
{
	(void)state;
	char p[256], err[256] = "";
	char data[8192];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	write_file("trunc", data, sizeof(data));
	path_of(p, sizeof(p), "trunc");
	size_t len = 0;
	int fd = sky_file_memfd(p, 0, 0, &len, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(len, sizeof(data));
	char *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(truncate(p, 0), 0);
	write_file("trunc", "xyz", 3);
	assert_memory_equal(m, data, sizeof(data)); /* the original's truncation: no SIGBUS */
	assert_int_equal(ftruncate(fd, 0), -1);	    /* sealed */
	assert_int_equal(errno, EPERM);
	assert_int_equal(write(fd, "x", 1), -1);
	char first;
	assert_int_equal(read(fd, &first, 1), 1); /* positioned at 0 for the reader */
	assert_int_equal(first, 'a');
	munmap(m, len);
	close(fd);
}

/* SHA-256 against FIPS 180-2's vectors (the policy object's and the cluster's file hash) */
static void
test_sha256(void **state)
{
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	char hex[65];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(sky_sha256_hex(v[i].in, strlen(v[i].in), hex), 0);
		assert_string_equal(hex, v[i].hex);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_read_ok),
		cmocka_unit_test(test_memfd_immune),
		cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
