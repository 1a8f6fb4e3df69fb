/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for control requests: arbitrary bytes as one request line through
 * json_loadb + sky_ctl_dispatch, with a few registered commands (one journaled, with a real
 * journal); inputs starting with 'J' are written as a journal file and replayed instead
 * (refused with a reason, or replayed; fuzz_journal covers the reader itself),
 * 'S' and 'H' go to the control socket and the metrics HTTP listener as raw bytes.
 * The reply must always be an object with "ok" that serialises.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>
#include <rte_log.h>

#include "skygate/control.h"

static char state_dir[64];
static char journal_path[128];
static char sock_path[128];
static struct sky_ctl_server *srv;

static int
cmd_echo(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	json_t *a = json_array();

	for (int i = 0; i < argc; i++)
		json_array_append_new(a, json_string(argv[i]));
	*result = json_pack("{s:o}", "args", a);
	return 0;
}

static int
cmd_set(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	if (argc != 2)
		return sky_ctl_fail(call, "expected KEY VALUE, got %d words: '%s'", argc,
				    argc ? argv[0] : "");
	if (argv[1][0] == 'x') {
		const char *w[2] = {"set", argv[0]};

		sky_ctl_journal_as(call, 2, w);
	}
	/* 'n': forgets its write-ahead commit (the dispatcher journals it late) */
	return argv[1][0] == 'n' ? 0 : sky_ctl_commit(call);
}

static int
cmd_fail(void *arg, int argc, char **argv, struct sky_ctl_call *call, json_t **result)
{
	/* echo the caller's bytes into the error, truncated anywhere */
	return sky_ctl_fail(call, "%.*s", argc ? (int)(strlen(argv[0]) % 7) : 0,
			    argc ? argv[0] : "");
}

static void
ext(void *arg, int argc, char **argv, json_t *result)
{
	json_object_set_new(result, "ext", json_integer(argc));
}

static void drop_saved_tails(void);

static void
cleanup(void)
{
	sky_ctl_server_close(srv);
	sky_metrics_http_close();
	sky_ctl_journal_close();
	drop_saved_tails();
	unlink(journal_path);
	rmdir(state_dir);
}

static void
init(void)
{
	char err[256];
	FILE *null = fopen("/dev/null", "w");

	if (null != NULL)
		rte_openlog_stream(null); /* replay warnings and audit lines */
	/* tmpfs where there is one: the journal fsyncs every record */
	snprintf(state_dir, sizeof(state_dir), "/dev/shm/fuzz-control-XXXXXX");
	if (mkdtemp(state_dir) == NULL) {
		snprintf(state_dir, sizeof(state_dir), "/tmp/fuzz-control-XXXXXX");
		if (mkdtemp(state_dir) == NULL)
			abort();
	}
	atexit(cleanup);
	snprintf(journal_path, sizeof(journal_path), "%s/journal", state_dir);
	if (sky_ctl_register("echo", "", "", 0, cmd_echo, NULL) != 0 ||
	    sky_ctl_register("map", "", "", 0, cmd_echo, NULL) != 0 ||
	    sky_ctl_register("map update", "K V", "", SKY_CTL_F_JOURNAL, cmd_set, NULL) != 0 ||
	    sky_ctl_register("set", "K V", "", SKY_CTL_F_JOURNAL, cmd_set, NULL) != 0 ||
	    sky_ctl_register("fail", "", "", 0, cmd_fail, NULL) != 0 ||
	    sky_ctl_register("reset", "", "", SKY_CTL_F_JOURNAL, cmd_echo, NULL) != 0 ||
	    sky_ctl_extend("map", ext, NULL) != 0 ||
	    sky_ctl_journal_open(state_dir, err, sizeof(err)) != 0)
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", state_dir);
	srv = sky_ctl_server_open(sock_path, 0600, err, sizeof(err));
	if (srv == NULL || sky_metrics_http_open("127.0.0.1:0", err, sizeof(err)) != 0)
		abort();
}

/* Replay saves torn and damaged parts aside (journal.torn-*, journal.damaged-*): remove them
 * so the directory stays small. */
static void
drop_saved_tails(void)
{
	DIR *d = opendir(state_dir);
	struct dirent *e;

	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL) {
		char p[512];

		if (strncmp(e->d_name, "journal.torn", 12) != 0 &&
		    strncmp(e->d_name, "journal.damaged", 15) != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", state_dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

static void
check_reply(json_t *reply)
{
	char *s;

	if (reply == NULL || !json_is_boolean(json_object_get(reply, "ok")))
		abort();
	if (json_is_false(json_object_get(reply, "ok")) &&
	    !json_is_string(json_object_get(reply, "error")))
		abort();
	s = json_dumps(reply, JSON_COMPACT);
	if (s == NULL)
		abort();
	free(s);
}

/*
 * 'S' + bytes: sent as is to the control socket; 'H' + bytes: sent to the metrics HTTP
 * listener. The client half-closes, then the server runs until it has answered and closed
 * (or 200 rounds). Whatever the bytes, the server must neither crash nor leak.
 */

static void
serve_bytes(int http, const uint8_t *data, size_t size)
{
	char buf[65536];
	int fd;

	if (http) {
		struct sockaddr_in sa = {.sin_family = AF_INET};

		sa.sin_port = htons((uint16_t)sky_metrics_http_port());
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			abort();
	} else {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			abort();
	}
	if (size > 0 && send(fd, data, size, MSG_NOSIGNAL) < 0)
		abort();
	shutdown(fd, SHUT_WR);
	for (int round = 0; round < 200; round++) {
		ssize_t n;

		if (sky_ctl_server_poll(srv, 1) < 0)
			abort();
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			break;
	}
	close(fd);
	/* let the server see the close */
	sky_ctl_server_poll(srv, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	json_t *req, *reply;

	if (!ready) {
		init();
		ready = 1;
	}
	if (size > 0 && (data[0] == 'S' || data[0] == 'H')) {
		serve_bytes(data[0] == 'H', data + 1, size - 1);
		return 0;
	}
	if (size > 0 && data[0] == 'J') {
		char err[256];
		FILE *f = fopen(journal_path, "wb");

		if (f == NULL)
			abort();
		fwrite(data + 1, 1, size - 1, f);
		fclose(f);
		if (sky_ctl_journal_open(state_dir, err, sizeof(err)) != 0)
			abort();
		err[0] = '\0';
		if (sky_ctl_journal_replay(err, sizeof(err)) < 0) {
			/* refused: with a reason, and the journal as it was */
			if (err[0] == '\0' || sky_ctl_journal_size() != (long)size - 1)
				abort();
		} else if (sky_ctl_journal_size() < 0 || sky_ctl_journal_size() > (long)size) {
			/* replayed, a torn last record cut */
			abort();
		}
		drop_saved_tails();
		return 0;
	}
	/* keep the journal from growing without bound */
	if (sky_ctl_journal_size() > (1 << 20)) {
		char err[256];

		if (unlink(journal_path) != 0 ||
		    sky_ctl_journal_open(state_dir, err, sizeof(err)) != 0)
			abort();
	}
	req = json_loadb((const char *)data, size, 0, NULL);
	reply = sky_ctl_dispatch(req, 0, 0);
	check_reply(reply);
	json_decref(reply);
	json_decref(req);
	return 0;
}
