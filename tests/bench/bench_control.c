/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/control figures: dispatch cost, a request's round trip over the real Unix socket
 * (client and server in this thread), journaled changes per second (append + fsync, on the
 * state directory's file system), and replay + compaction speed, which is restart time.
 * Prints figures; never fails on a number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <rte_log.h>

#include "skygate/control.h"
#include "skygate/runtime.h"

#include "fixture.h"

#define now_s sky_fx_now_s
#define cpu_s sky_fx_cpu_s /* CPU time too: the machine is shared, wall time varies */

static int
cmd_set(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	if (argc != 2)
		return sky_ctl_fail(call, "expected KEY VALUE");
	return sky_ctl_commit(call);
}

static int
cmd_show(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	*result =
		json_pack("{s:s, s:i, s:i}", "name", argc ? argv[0] : "-", "rx", 12345, "tx", 678);
	return 0;
}

static void
bench_dispatch(void)
{
	char *argv[] = {"beam", "show", "beam1"};
	const int n = 200000;
	double t0 = now_s(), dt;

	for (int i = 0; i < n; i++)
		json_decref(sky_ctl_dispatch_argv(3, argv, 0, 0, 0));
	dt = now_s() - t0;
	printf("dispatch (argv -> handler -> reply object):  %8.0f ns/request\n", dt / n * 1e9);
}

static void
bench_socket(const char *dir)
{
	char path[100], err[256], buf[4096];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char req[] = "{\"argv\":[\"beam\",\"show\",\"beam1\"]}\n";
	struct sky_ctl_server *s;
	const int n = 20000;
	double t0, dt;
	int fd;

	snprintf(path, sizeof(path), "%s/bench.sock", dir);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	if (s == NULL) {
		printf("socket: %s\n", err);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		printf("socket: connect: %s\n", strerror(errno));
		return;
	}
	sky_ctl_server_poll(s, 0);
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		ssize_t got = 0;

		if (send(fd, req, sizeof(req) - 1, 0) < 0)
			break;
		/* serve, then read the one reply line */
		while (got == 0 || buf[got - 1] != '\n') {
			ssize_t k;

			sky_ctl_server_poll(s, 0);
			k = recv(fd, buf + got, sizeof(buf) - (size_t)got, MSG_DONTWAIT);
			if (k > 0)
				got += k;
		}
	}
	dt = now_s() - t0;
	printf("socket round trip (one client, same thread):   %8.1f us/request, %.0f requests/s\n",
	       dt / n * 1e6, n / dt);
	close(fd);
	sky_ctl_server_close(s);
}

/* Pipelined changes on one connection: the server fsyncs once per poll round. */
static void
bench_pipelined(const char *dir, const char *what)
{
	char path[100], err[256], *req, *buf;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct sky_ctl_server *s;
	const int n = 2000;
	size_t off = 0, got = 0, sent = 0;
	int fd, lines = 0;
	double t0, dt;
	FILE *devnull = fopen("/dev/null", "w");

	if (sky_ctl_journal_open(dir, err, sizeof(err)) != 0)
		return;
	snprintf(path, sizeof(path), "%s/pipe.sock", dir);
	s = sky_ctl_server_open(path, 0600, err, sizeof(err));
	if (s == NULL)
		return;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return;
	req = malloc((size_t)n * 64);
	buf = malloc((size_t)n * 64);
	for (int i = 0; i < n; i++)
		off += (size_t)sprintf(req + off, "{\"argv\":[\"set\",\"k%d\",\"%d\"]}\n", i % 100,
				       i);
	rte_openlog_stream(devnull);
	t0 = now_s();
	while (lines < n) {
		ssize_t k;

		if (sent < off) {
			k = send(fd, req + sent, off - sent, MSG_DONTWAIT);
			if (k > 0)
				sent += (size_t)k;
		}
		sky_ctl_server_poll(s, 0);
		k = recv(fd, buf + got, (size_t)n * 64 - got, MSG_DONTWAIT);
		if (k > 0) {
			for (ssize_t j = 0; j < k; j++)
				lines += buf[got + (size_t)j] == '\n';
			got += (size_t)k;
		}
	}
	dt = now_s() - t0;
	rte_openlog_stream(NULL);
	fclose(devnull);
	printf("journaled changes pipelined on one socket (%s): %8.1f us/change, %.0f changes/s\n",
	       what, dt / n * 1e6, n / dt);
	free(req);
	free(buf);
	close(fd);
	sky_ctl_server_close(s);
	sky_ctl_journal_close();
}

static void
bench_journal(const char *dir, const char *what)
{
	char err[256], key[32], val[32];
	char *argv[] = {"set", key, val};
	int n = 2000, replayed;
	double t0, c0, dt;
	FILE *devnull = fopen("/dev/null", "w");

	if (sky_ctl_journal_open(dir, err, sizeof(err)) != 0) {
		printf("journal: %s\n", err);
		return;
	}
	rte_openlog_stream(devnull); /* the audit lines */
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%d", i % 1000);
		snprintf(val, sizeof(val), "%d", i);
		json_decref(sky_ctl_dispatch_argv(3, argv, 0, 0, 0));
	}
	dt = now_s() - t0;
	printf("journaled change (append + fsync, %s): %8.1f us/change, %.0f changes/s\n", what,
	       dt / n * 1e6, n / dt);
	/* grow it to 100k records for replay: append raw, no fsync per record */
	sky_ctl_journal_close();
	{
		char path[512];
		FILE *f;

		snprintf(path, sizeof(path), "%s/journal", dir);
		f = fopen(path, "a");
		for (int i = 0; i < 100000 - n; i++) {
			char j[160];
			int len = snprintf(j, sizeof(j),
					   "{\"time\":\"2026-01-01T00:00:00Z\",\"uid\":0,"
					   "\"argv\":[\"set\",\"k%d\",\"%d\"]}",
					   i % 1000, i);

			fprintf(f, "SKYJ %d %08x\n%s\n", len, sky_ctl_crc32(0, j, (size_t)len), j);
		}
		fclose(f);
	}
	sky_ctl_journal_open(dir, err, sizeof(err));
	t0 = now_s();
	c0 = cpu_s();
	replayed = sky_ctl_journal_replay(err, sizeof(err));
	dt = now_s() - t0;
	printf("replay %d records:                             %8.3f s (%.3f s CPU), %.0f "
	       "records/s\n",
	       replayed, dt, cpu_s() - c0, replayed / dt);
	sky_ctl_journal_close();
	rte_openlog_stream(NULL);
	fclose(devnull);
}

int
main(void)
{
	char dir[64], shm[64];

	sky_runtime_init();
	if (sky_ctl_register("beam show", "NAME", "", 0, cmd_show, NULL) != 0 ||
	    sky_ctl_register("set", "K V", "", SKY_CTL_F_JOURNAL, cmd_set, NULL) != 0)
		return 1;
	snprintf(dir, sizeof(dir), "%s", sky_fx_tmpdir());
	bench_dispatch();
	bench_socket(dir);
	bench_pipelined(dir, "/tmp");
	bench_journal(dir, "/tmp");
	snprintf(shm, sizeof(shm), "/dev/shm/bench-control-XXXXXX");
	if (mkdtemp(shm) != NULL) {
		sky_ctl_unregister_all();
		sky_ctl_register("set", "K V", "", SKY_CTL_F_JOURNAL, cmd_set, NULL);
		bench_journal(shm, "tmpfs");
		sky_fx_rm_rf(shm);
	}
	sky_ctl_unregister_all(); /* dir goes with the fixture's temporary directory */
	return 0;
}
