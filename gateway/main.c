/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * skygate: the daemon. Reads one YAML config, starts EAL, builds every module, starts
 * the ports and the worker lcores, and serves the control socket from the main lcore.
 *
 *   skygate -c FILE [-- EAL ARGS...]      run
 *   skygate --check -c FILE               validate config and referenced files, exit
 *   skygate --recover -c FILE             run, moving a damaged journal part aside
 *   skygate --reset-usage -c FILE         run, moving a damaged usage file aside
 *
 * Exit status: 0 after a clean stop or a valid --check; 1 when the configuration, EAL, a
 * port or a module cannot start; 3 when the journal is damaged or a journaled change does
 * not replay (the message names the file, byte and record, and --recover), or when the
 * usage file (fair use) is damaged (the message names the file and --reset-usage).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_debug.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pdump.h>
#include <rte_version.h>

#include "gateway.h"
#include "sky_build_config.h"
#include "skygate/classify.h"
#include "skygate/cluster.h"
#include "skygate/control.h"
#include "skygate/geo.h"
#include "skygate/flow.h"
#include "skygate/ipfix.h"
#include "skygate/policy.h"
#include "skygate/qoe.h"
#include "skygate/quota.h"
#include "skygate/shaper.h"
#include "skygate/subscriber.h"

/* SIGTERM/SIGINT to exit: 2 s at most; the rest is margin for a loaded host */
#define GW_STOP_GRACE_MS 1300

struct gw gw;

/* SIGTERM, SIGINT: stop (the watchdog bounds how long that takes) */
static void
on_signal(int sig)
{
	sky_rt_request_stop(sig);
}

/* SIGHUP: noted; the main loop takes it (reload_requested) */
static void
on_hup(int sig)
{
	(void)sig;
	sky_rt_request_reload();
}

/* Handlers before anything that can take long, so no signal ever finds the default
 * action (which, for SIGHUP, killed the daemon and left its socket behind). */
static void
signals_install(void)
{
	struct sigaction sa = {.sa_flags = SA_RESTART};

	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* SIGHUP: re-read the configuration and apply what changed (gateway/reload.c) */
static void
reload_requested(struct gw *g)
{
	gw_reload_signal(g);
}

/*
 * systemd's watchdog: WATCHDOG=1 from the main loop at half the interval systemd asked
 * for, and only while every worker's loop counter moved since the last one (a worker
 * stuck in a burst, or gone, stops the pings and systemd restarts the service).
 */
static struct {
	uint64_t interval_tsc, next_tsc;
	uint64_t *last_loops;
} wd;

static void
watchdog_init(const struct gw *g)
{
	uint64_t usec = gw_notify_watchdog_usec();

	if (usec == 0)
		return;
	wd.last_loops = calloc(g->n_workers, sizeof(*wd.last_loops));
	if (wd.last_loops == NULL)
		return;
	wd.interval_tsc = rte_get_tsc_hz() * (usec / 2) / 1000000;
	if (wd.interval_tsc == 0)
		wd.interval_tsc = 1;
	wd.next_tsc = rte_rdtsc() + wd.interval_tsc;
	SKY_LOG(INFO, "systemd watchdog: %" PRIu64 " ms, pinged every %" PRIu64 " ms", usec / 1000,
		usec / 2000);
}

static void
watchdog_tick(const struct gw *g, uint64_t now)
{
	unsigned int alive = 0;

	if (wd.interval_tsc == 0 || now < wd.next_tsc)
		return;
	wd.next_tsc = now + wd.interval_tsc;
	for (unsigned int w = 0; w < g->n_workers; w++) {
		uint64_t l = __atomic_load_n(&g->workers[w].loops, __ATOMIC_RELAXED);

		alive += l != wd.last_loops[w];
		wd.last_loops[w] = l;
	}
	if (alive == g->n_workers)
		gw_notify("WATCHDOG=1");
	else
		SKY_LOG(WARNING,
			"%u of %u workers did not loop for %" PRIu64 " ms: no watchdog ping",
			g->n_workers - alive, g->n_workers,
			wd.interval_tsc * 1000 / rte_get_tsc_hz());
}

/* What must not outlive the process, for the watchdog (other threads may still run) */
static struct {
	char path[256];
	dev_t dev;
	ino_t ino;
	int have;
} sock_id;
static int workers_launched;
static int final_printed;

static void
print_final_once(const struct gw *g)
{
	if (__atomic_exchange_n(&final_printed, 1, __ATOMIC_SEQ_CST) == 0)
		gw_print_final(g);
}

/* The watchdog gave up waiting for the main thread (see sky_rt_watchdog_start). */
static void
on_watchdog(void *arg)
{
	const struct gw *g = arg;
	struct stat st;

	__atomic_store_n(&sky_rt.stop, 1, __ATOMIC_SEQ_CST);
	if (sock_id.have && lstat(sock_id.path, &st) == 0 && st.st_ino == sock_id.ino &&
	    st.st_dev == sock_id.dev)
		unlink(sock_id.path);
	if (__atomic_load_n(&workers_launched, __ATOMIC_SEQ_CST) &&
	    !__atomic_load_n(&final_printed, __ATOMIC_SEQ_CST)) {
		/* workers leave their loop within a burst and a 100 ms drain */
		struct timespec d = {.tv_sec = 0, .tv_nsec = 120 * 1000000};

		nanosleep(&d, NULL);
		/* not if the main thread holds stdout (it may be stuck writing to it) */
		if (ftrylockfile(stdout) == 0) {
			print_final_once(g);
			funlockfile(stdout);
		}
	}
	sky_eal_remove_files();
}

/* a crash leaves a backtrace in the log (not async-signal-safe; we are dying anyway) */
static void
on_fatal(int sig)
{
	fprintf(stderr, "skygate: fatal signal %d (%s) on lcore %u\n", sig, strsignal(sig),
		rte_lcore_id());
	rte_dump_stack();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: skygate [-c FILE] [--check [--print]] [-- EAL-ARGS...]\n"
		"  -c, --config FILE  YAML configuration (default /etc/skygate/skygate.yaml)\n"
		"      --check        validate the configuration and every file it names, then "
		"exit\n"
		"                     (0 = valid; otherwise the reason, with file, line and key)\n"
		"      --print        with --check: print the effective configuration (defaults\n"
		"                     filled) as YAML that skygate accepts\n"
		"      --recover      start even though the journal (state.dir) is damaged: "
		"replay\n"
		"                     up to the last good record, move the rest aside\n"
		"                     (journal.damaged-<time>), record that in the journal; "
		"`status`\n"
		"                     and metrics show it until `skygatectl journal ack`\n"
		"      --reset-usage  start even though the usage file (state.dir/usage) is\n"
		"                     damaged: move it aside (usage.damaged-<time>), count from\n"
		"                     zero\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n"
		"  -- EAL-ARGS        replace the config's `eal:` list (e.g. -- -l 0-1 "
		"--no-huge)\n");
}

/* mkdir -p the directory part of path */
static void
mkdir_parent(const char *path)
{
	char buf[512], *d;

	snprintf(buf, sizeof(buf), "%s", path);
	d = dirname(buf);
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(d, 0755);
		*p = '/';
	}
	mkdir(d, 0755);
}

/* memif sockets live in directories the PMD does not create */
static void
prepare_device_dirs(const struct gw *g)
{
	for (unsigned int i = 0; i < g->n_ports; i++) {
		const char *s = strstr(g->ports[i].device, "socket=");
		char path[512];

		if (s == NULL || strncmp(g->ports[i].device, "net_memif", 9) != 0)
			continue;
		snprintf(path, sizeof(path), "%s", s + 7);
		path[strcspn(path, ",")] = '\0';
		mkdir_parent(path);
	}
}

static int
modules_create(struct gw *g, unsigned int n_uplinks, struct sky_cfg_err *err)
{
	g->subs = sky_subs_create(g->cfg, g->n_workers, err);
	if (g->subs == NULL)
		return -1;
	g->cls = sky_classify_create(g->cfg, sky_subs_n_classes(g->subs), err);
	if (g->cls == NULL)
		return -1;
	g->geo = sky_geo_create(g->cfg, err);
	if (g->geo == NULL)
		return -1;
	g->policy = sky_policy_create(g->cfg, g->subs, err);
	if (g->policy == NULL)
		return -1;
	/* before the shaper: fair use adds the plans it derives (graded rates, peak weight) */
	g->quota = sky_quota_create(g->cfg, g->subs, err);
	if (g->quota == NULL)
		return -1;
	g->shaper = sky_shaper_create(g->cfg, g->subs, g->n_workers, n_uplinks, err);
	if (g->shaper == NULL)
		return -1;
	if (sky_cfg_get(g->cfg->root, "cluster") != NULL) {
		g->cluster = sky_cluster_create(g->cfg, g->subs, err);
		if (g->cluster == NULL)
			return -1;
		sky_cluster_set_quota(g->cluster, g->quota);
	}
	g->flow = sky_flow_create(g->cfg, g->n_workers, err);
	if (g->flow == NULL)
		return -1;
	g->ipfix = sky_ipfix_create(g->cfg, g->flow, err);
	if (g->ipfix == NULL)
		return -1;
	g->qoe = sky_qoe_create(g->cfg, g->subs, err);
	if (g->qoe == NULL)
		return -1;
	return 0;
}

static void
modules_destroy(struct gw *g)
{
	sky_cluster_destroy(g->cluster);
	g->cluster = NULL;
	/* reverse order: the flow table delivers its last records
	 * (to qoe, destroyed after it), the shaper frees its
	 * queued mbufs, the rest their tables */
	if (g->flow != NULL)
		sky_flow_destroy(g->flow);
	g->flow = NULL;
	sky_qoe_destroy(g->qoe);
	g->qoe = NULL;
	if (g->shaper != NULL)
		sky_shaper_destroy(g->shaper);
	if (g->quota != NULL)
		sky_quota_destroy(g->quota);
	if (g->policy != NULL)
		sky_policy_destroy(g->policy);
	if (g->geo != NULL)
		sky_geo_destroy(g->geo);
	if (g->cls != NULL)
		sky_classify_destroy(g->cls);
	if (g->subs != NULL)
		sky_subs_destroy(g->subs);
	/* last: whatever the others hand it on their way out is still sent */
	sky_ipfix_destroy(g->ipfix);
	g->ipfix = NULL;
	g->shaper = NULL;
	g->quota = NULL;
	g->policy = NULL;
	g->geo = NULL;
	g->cls = NULL;
	g->subs = NULL;
}

static int
modules_register(struct gw *g)
{
	if (gw_status_register(g) < 0 || sky_subs_register(g->subs) < 0 ||
	    sky_classify_register(g->cls, g->config_path) < 0 || sky_geo_register(g->geo) < 0 ||
	    sky_policy_register(g->policy) < 0 || sky_shaper_register(g->shaper) < 0 ||
	    sky_flow_register(g->flow) < 0 || sky_ipfix_register(g->ipfix) < 0 ||
	    sky_qoe_register(g->qoe) < 0 || sky_qoe_attach(g->qoe, g->flow) < 0 ||
	    sky_quota_register(g->quota) < 0)
		return -1;
	if (sky_ctl_journal_extend_status() < 0 || sky_ctl_events_extend_status() < 0 ||
	    gw_state_register(g) < 0)
		return -1;
	if (g->cluster != NULL && sky_cluster_register(g->cluster) < 0)
		return -1;
	return 0;
}

static int
launch_workers(struct gw *g, char *err, size_t errlen)
{
	unsigned int lcore, w = 0;

	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (w == g->n_workers)
			break;
		g->workers[w].lcore = lcore;
		w++;
	}
	if (w < g->n_workers) {
		snprintf(
			err, errlen,
			"workers: %u configured but EAL gave %u worker lcores (give EAL %u lcores, "
			"e.g. -l 0-%u)",
			g->n_workers, w, g->n_workers + 1, g->n_workers);
		return -1;
	}
	for (w = 0; w < g->n_workers; w++)
		rte_eal_remote_launch(gw_worker_main, &g->workers[w], g->workers[w].lcore);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
		{"recover", no_argument, NULL, 'R'},	  {"reset-usage", no_argument, NULL, 'U'},
		{"help", no_argument, NULL, 'h'},	  {"version", no_argument, NULL, 'V'},
		{"print", no_argument, NULL, 'P'},	  {NULL, 0, NULL, 0}};
	const char *config = "/etc/skygate/skygate.yaml";
	bool check = false, recover = false, print = false, reset_usage = false;
	struct sky_cfg_err cerr = {0};
	char **cfg_eal = NULL, *eal[128], err[4096] = "", prefix[64];
	int cfg_eal_n = 0, eal_n = 0, opt, rc = 1, n_uplinks = 0;
	struct sky_ctl_server *srv = NULL;
	bool eal_up = false, launched = false;

	while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'R':
			recover = true;
			break;
		case 'U':
			reset_usage = true;
			break;
		case 'P':
			print = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("skygate %s (DPDK %s)\n", SKY_VERSION, rte_version());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	if (!check)
		signals_install();
	gw.config_path = config;
	if (!check)
		gw_notify("STATUS=reading %s", config);
	gw.cfg = sky_cfg_load(config, &cerr);
	if (print && !check) {
		fprintf(stderr, "skygate: --print goes with --check\n");
		return 2;
	}
	if (gw.cfg == NULL || gw_config_defaults(gw.cfg, &cerr) < 0 ||
	    gw_config_parse(&gw, gw.cfg, &cerr, &cfg_eal, &cfg_eal_n) < 0) {
		fprintf(stderr, "skygate: %s\n", cerr.msg);
		goto out;
	}

	/* EAL arguments: the config's list, or what follows `--` */
	eal[eal_n++] = argv[0];
	if (check) {
		snprintf(prefix, sizeof(prefix), "--file-prefix=skygate-check-%d", (int)getpid());
		eal[eal_n++] = "--no-huge";
		eal[eal_n++] = "-m";
		eal[eal_n++] = "4096";
		eal[eal_n++] = "--no-shconf";
		eal[eal_n++] = "--no-pci";
		eal[eal_n++] = "--no-telemetry";
		eal[eal_n++] = "--log-level=lib.*:error";
		eal[eal_n++] = "-l";
		eal[eal_n++] = "0";
		eal[eal_n++] = prefix;
	} else if (optind < argc) {
		for (int i = optind; i < argc && eal_n < 127; i++)
			eal[eal_n++] = argv[i];
	} else {
		for (int i = 0; i < cfg_eal_n && eal_n < 127; i++)
			eal[eal_n++] = cfg_eal[i];
	}
	eal[eal_n] = NULL;
	if (!check)
		prepare_device_dirs(&gw);
	if (rte_eal_init(eal_n, eal) < 0) {
		fprintf(stderr,
			"skygate: EAL init failed: %s (EAL arguments come from `eal:` in %s)\n",
			rte_strerror(rte_errno), config);
		goto out;
	}
	eal_up = true;
	sky_runtime_init();
	if (!check && sky_rt_watchdog_start(GW_STOP_GRACE_MS, on_watchdog, &gw) != 0)
		SKY_LOG(WARNING, "no shutdown watchdog: a stop may wait for control work");
	if (gw.log_level > 0)
		rte_log_set_level(sky_logtype, (uint32_t)gw.log_level);

	for (unsigned int i = 0; i < gw.n_ports; i++)
		n_uplinks += gw.ports[i].dir == SKY_DIR_UP;
	if (modules_create(&gw, (unsigned int)n_uplinks, &cerr) < 0) {
		fprintf(stderr, "skygate: %s\n", cerr.msg);
		goto out;
	}
	if (check) {
		if (print) {
			fprintf(stderr,
				"skygate: %s: configuration OK (%u ports, %u workers, %u "
				"subscribers)\n",
				config, gw.n_ports, gw.n_workers, sky_subs_count(gw.subs));
			printf("# skygate: the effective configuration, defaults filled\n"
			       "# computed defaults not shown: plans.*.burst (10 ms at the rate, "
			       ">= 64KB),\n"
			       "# plans.*.weight (down rate in kbit/s), subscribers.capacity,\n"
			       "# shaping.max_queued_per_worker (mbufs / 2 / workers), "
			       "classes[].queue, classes[].aqm\n");
			rc = sky_cfg_write(gw.cfg, stdout) == 0 ? 0 : 1;
			goto out;
		}
		printf("skygate: %s: configuration OK (%u ports, %u workers, %u subscribers)\n",
		       config, gw.n_ports, gw.n_workers, sky_subs_count(gw.subs));
		rc = 0;
		goto out;
	}

	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGFPE, on_fatal);
	signal(SIGILL, on_fatal);
	rte_pdump_init(); /* dpdk-dumpcap can attach as a secondary process */

	gw.pool = rte_pktmbuf_pool_create("sky_mbufs", gw.mbufs, gw.mbuf_cache, 0,
					  (uint16_t)gw.data_room, (int)rte_socket_id());
	if (gw.pool == NULL) {
		fprintf(stderr, "skygate: mempool of %u mbufs: %s (mempool.mbufs in %s)\n",
			gw.mbufs, rte_strerror(rte_errno), config);
		goto out;
	}
	gw.workers =
		rte_zmalloc("sky_workers", sizeof(*gw.workers) * gw.n_workers, RTE_CACHE_LINE_SIZE);
	if (gw.workers == NULL) {
		fprintf(stderr, "skygate: out of memory for workers\n");
		goto out;
	}
	for (unsigned int w = 0; w < gw.n_workers; w++)
		gw.workers[w].id = w;
	if (gw_ports_probe(&gw, err, sizeof(err)) < 0 ||
	    gw_ports_start(&gw, err, sizeof(err)) < 0) {
		fprintf(stderr, "skygate: %s\n", err);
		goto out;
	}
	gw_workers_assign(&gw);
	if (sky_rcu_init(gw.n_workers) < 0) {
		fprintf(stderr, "skygate: RCU init failed\n");
		goto out;
	}
	gw_notify("STATUS=registering commands, replaying the journal");
	if (modules_register(&gw) < 0 || gw_reload_register(&gw) < 0) {
		fprintf(stderr, "skygate: registering control commands failed\n");
		goto out;
	}
	if (gw.state_dir[0] != '\0') {
		int n;

		if (sky_ctl_journal_open(gw.state_dir, err, sizeof(err)) < 0) {
			fprintf(stderr, "skygate: state.dir: %s\n", err);
			goto out;
		}
		/* usage first: the journal's quota changes apply on top of it */
		if (sky_quota_load(gw.quota, gw.state_dir, reset_usage, err, sizeof(err)) < 0) {
			fprintf(stderr, "skygate: refusing to start: usage file: %s\n", err);
			rc = 3;
			goto out;
		}
		n = recover ? sky_ctl_journal_recover(err, sizeof(err))
			    : sky_ctl_journal_replay(err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "skygate: refusing to start: %s\n", err);
			rc = 3;
			goto out;
		}
		SKY_LOG(INFO, "replayed %d journaled changes from %s", n, gw.state_dir);
		if (sky_ctl_journal_unacked() > 0)
			fprintf(stderr,
				"skygate: the journal in %s was recovered: %u damaged part(s) "
				"moved "
				"aside; see `skygatectl status`, then `skygatectl journal ack`\n",
				gw.state_dir, sky_ctl_journal_unacked());
	}
	if (gw.cluster != NULL) {
		/* after the journal (the local cache): the store's snapshot on top of it */
		gw_notify("STATUS=loading the cluster's state from etcd");
		if (sky_cluster_start(gw.cluster, err, sizeof(err)) < 0) {
			fprintf(stderr, "skygate: %s\n", err);
			goto out;
		}
	}
	mkdir_parent(gw.socket_path);
	srv = sky_ctl_server_open(gw.socket_path, gw.socket_mode, err, sizeof(err));
	if (srv == NULL) {
		fprintf(stderr, "skygate: control socket: %s\n", err);
		goto out;
	}
	if (sky_ctl_server_set_limits(srv, &gw.ctl_limits, err, sizeof(err)) < 0) {
		fprintf(stderr, "skygate: control: %s\n", err);
		goto out;
	}
	{
		struct stat st;

		if (lstat(gw.socket_path, &st) == 0) {
			snprintf(sock_id.path, sizeof(sock_id.path), "%s", gw.socket_path);
			sock_id.dev = st.st_dev;
			sock_id.ino = st.st_ino;
			sock_id.have = 1;
		}
	}
	if (gw.prometheus[0] != '\0' &&
	    sky_metrics_http_open(gw.prometheus, err, sizeof(err)) < 0) {
		fprintf(stderr, "skygate: telemetry.prometheus: %s\n", err);
		goto out;
	}

	gw.start_tsc = rte_rdtsc();
	if (launch_workers(&gw, err, sizeof(err)) < 0) {
		fprintf(stderr, "skygate: %s\n", err);
		goto out;
	}
	launched = true;
	__atomic_store_n(&workers_launched, 1, __ATOMIC_SEQ_CST);
	printf("skygate %s: %u ports, %u workers, control socket %s\n", SKY_VERSION, gw.n_ports,
	       gw.n_workers, gw.socket_path);
	for (unsigned int i = 0; i < gw.n_ports; i++)
		printf("  port %-8s %-8s -> %-8s %s (%u queue%s%s)\n", gw.ports[i].name,
		       gw.ports[i].dir == SKY_DIR_UP ? "uplink" : "backhaul", gw.ports[i].peer_name,
		       gw.ports[i].device, gw.ports[i].n_queues,
		       gw.ports[i].n_queues > 1 ? "s" : "", gw.ports[i].rss ? ", RSS" : "");
	fflush(stdout);
	watchdog_init(&gw);
	gw_notify("READY=1\nSTATUS=running: %u ports, %u workers, control socket %s", gw.n_ports,
		  gw.n_workers, gw.socket_path);

	/* from here a stop also cancels long control work (never during start-up, where an
	 * abandoned journal record would read as damage) */
	sky_rt_set_serving(1);
	while (!__atomic_load_n(&sky_rt.stop, __ATOMIC_RELAXED)) {
		sky_ctl_server_poll(srv, 50);
		/* what the cluster's threads found (they end the wait: sky_ctl_wake) */
		sky_cluster_poll(gw.cluster);
		sky_periodic_run(rte_rdtsc());
		if (sky_rt_take_reload())
			reload_requested(&gw);
		watchdog_tick(&gw, rte_rdtsc());
	}
	gw_notify("STOPPING=1\nSTATUS=stopping");
	if (sky_rt.stop_signal > 0)
		SKY_LOG(NOTICE, "%s received: stopping", strsignal(sky_rt.stop_signal));
	rc = 0;

out:
	/* the watchdog ends the process with this status if the rest takes too long */
	sky_rt_exit_code = rc;
	sky_rt_set_busy("shutting down");
	/* give the beams up first: the other nodes take them while this one stops */
	sky_cluster_stop(gw.cluster);
	if (launched) {
		__atomic_store_n(&sky_rt.stop, 1, __ATOMIC_RELAXED);
		rte_eal_mp_wait_lcore();
		print_final_once(&gw);
		/* the workers stopped: the counters are final, the usage file takes them */
		if (sky_quota_stop(gw.quota, err, sizeof(err)) < 0)
			fprintf(stderr, "skygate: usage file not written at stop: %s\n", err);
		/* the flows still open go to the collectors before the process does (their
		 * records end as forced); the tables themselves may be left to the exit */
		if (sky_ipfix_enabled(gw.ipfix)) {
			sky_flow_flush(gw.flow);
			sky_ipfix_flush(gw.ipfix);
			sky_ipfix_print(gw.ipfix, stdout);
			fflush(stdout);
		}
	}
	if (srv != NULL)
		sky_ctl_server_close(srv);
	sky_metrics_http_close();
	sky_ctl_journal_close();
	sky_periodic_clear();
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	if (eal_up) {
		gw_ports_stop(&gw);
		/*
		 * Stopped by a signal: the tables go with the process. Freeing them first costs
		 * seconds with a full location database or 1M subscribers (rte_free zeroes each
		 * freed byte; without hugepages that faults in pages never touched) and the stop
		 * must take less than two. Other exits free everything (tests, leak checks).
		 */
		if (sky_rt.stop_signal == 0) {
			modules_destroy(&gw);
			rte_free(gw.workers);
			gw.workers = NULL;
			if (gw.pool != NULL)
				rte_mempool_free(gw.pool);
		}
		sky_rcu_fini();
		if (!check)
			rte_pdump_uninit();
		sky_eal_cleanup();
	}
	if (rc != 0 && !check)
		gw_notify("STATUS=failed to start (exit %d)", rc);
	free(cfg_eal);
	free(wd.last_loops);
	gw_reload_fini();
	sky_cfg_free(gw.cfg);
	sky_rt_watchdog_stop();
	return rc;
}
