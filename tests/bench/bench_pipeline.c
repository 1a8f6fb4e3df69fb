/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The whole pipeline at production scale: the real worker loop of gateway/worker.c
 * (gw_worker_poll, linked from the daemon's own static library), fed from in-memory ports
 * (net_ring ethdevs made with rte_eth_from_rings), with
 *  - 1M subscribers (an IPv4 /32 and an IPv6 /56 each; every 1000th in a VLAN realm),
 *  - the full libloc database, the reference classes and country_block policy of
 *    conf/skygate.yaml (the policy JITed), the reference plans, shaping on,
 *  - traffic to 100k active subscribers (spread over the table), a random subscriber and
 *    a random remote address per packet, 64 B and IMIX, upstream, downstream and both
 *    (both IPv4 only, and 30% IPv6: a random family per packet costs parse and geo more
 *    than either family alone, so the two tell the direction mix from the family mix),
 *    shaper slots for all of them (max_active_per_worker 131072).
 * Tracing knobs: BENCH_PIPELINE_ONLY=TEXT runs the cases whose name contains TEXT,
 * BENCH_ALTERNATE feeds the two directions in turns instead of together, BENCH_SLOTS=N
 * sets the shaper's slots per worker.
 * Each port plays a NIC: N_MBUF mbufs (a RX ring's worth) recycled, each filled with the
 * next of N_TPL random frames when it is fed (so the packet is in cache, as DDIO leaves
 * it in the LLC; the worker pays for it in parse). For each case the loop runs three
 * ways, in interleaved rounds of 4096 packets: BYPASS (every stage off, rx -> tx: the
 * baseline), RUN (production: the total is the worker's busy cycles / packets) and
 * PROFILE (a TSC read around each step, per burst: cycles per packet by step). Rounds
 * in which the thread was preempted (the machine is shared) are left out; the median of
 * the others is printed, with the best and worst. Then 1 worker against 2 workers on two
 * port pairs (one lcore each). DPDK memory is on 2 MB hugepages (--in-memory) when 1000
 * of them are free, as the daemon runs, else --no-huge (4 KB pages: more TLB misses); the
 * first lines say which. 3 of 4 TCP frames carry the timestamp option (66 B at least).
 * Prints figures next to the budgets; never fails on one.
 *
 *   bench_pipeline [SUBSCRIBERS]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "gateway.h"
#include "sky_build_config.h"
#include "skygate/classify.h"
#include "skygate/config.h"
#include "skygate/control.h"
#include "skygate/flow.h"
#include "skygate/geo.h"
#include "skygate/policy.h"
#include "skygate/runtime.h"
#include "skygate/shaper.h"
#include "skygate/subscriber.h"

#include "fixture.h"

/* the daemon's one global (gateway/main.c defines it for skygate) */
struct gw gw;

#define N_ACTIVE 100000 /* subscribers the traffic goes to */
#define LOOPS 128	/* turns of the loop per round (a round of 4096 packets per way) */
#define ROUNDS 100	/* rounds per mode and case */
#define N_PAIRS 2	/* port pairs: worker w owns pair w */
#define RING_SIZE 256
#define N_TPL 32768 /* random frames per port, replayed in turn */
#define N_MBUF 2048 /* mbufs per port, recycled */

static int alloc_mbufs(unsigned int port);
static void free_mbufs(unsigned int port);

static const char *countries[] = {"DE", "FR", "NG", "KE", "BR", "ID", "PE", "US", "ZA", "IN"};

static uint64_t rng = 88172645463325252ULL;
static bool alternate; /* BENCH_ALTERNATE: both directions fed in turns, not together */
static uint32_t n_subs;
static double hz;

static inline uint64_t
rnd(void)
{
	return sky_fx_rand64(&rng);
}

/* --- the subscribers ---------------------------------------------------------------------- */

static void
v4_of(uint32_t i, uint8_t a[4])
{
	uint32_t x = (10u << 24) + 1 + i; /* 10.0.0.1 ... sequential /32s */

	a[0] = (uint8_t)(x >> 24);
	a[1] = (uint8_t)(x >> 16);
	a[2] = (uint8_t)(x >> 8);
	a[3] = (uint8_t)x;
}

static void
v6_of(uint32_t i, uint8_t a[16])
{
	memset(a, 0, 16);
	a[0] = 0x20; /* 2001:db8:XXXX:XX00::/56, delegated from a pool in order */
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	a[4] = (uint8_t)(i >> 16);
	a[5] = (uint8_t)(i >> 8);
	a[6] = (uint8_t)i;
}

static bool
in_realm(uint32_t i)
{
	return i % 1000 == 999;
}

static int
write_csv(const char *path, uint32_t n)
{
	FILE *f = fopen(path, "w");
	char v4[32], v6[64];
	uint8_t a[16];

	if (f == NULL)
		return -1;
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	fputs(SKY_FX_CSV_HDR, f);
	for (uint32_t i = 0; i < n; i++) {
		v4_of(i, a);
		inet_ntop(AF_INET, a, v4, sizeof(v4));
		v6_of(i, a);
		inet_ntop(AF_INET6, a, v6, sizeof(v6));
		/* every 1000th subscriber belongs to a virtual operator on VLAN 100 + i%8 */
		fprintf(f, "%u,%s,%s/56,%s,beam%u,%s,%u\n", i + 1, v4, v6,
			i & 1 ? "premium" : "basic", i % 4 + 1, countries[i % 10],
			in_realm(i) ? 100 + i % 8 : 0);
	}
	return fclose(f);
}

/* --- the configuration: the reference's classes and policy -------------------------------- */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	if (buf != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* the top-level block `key:` of a YAML text: its line and the indented / list lines under
 * it (comments dropped), into out */
static int
yaml_block(const char *text, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key), used = 0;
	const char *l = text;
	bool in = false;

	out[0] = '\0';
	while (*l != '\0') {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);

		if (len > 0 && l[0] != ' ' && l[0] != '-' && l[0] != '#')
			in = strncmp(l, key, klen) == 0 && l[klen] == ':';
		if (in && len > 0 && l[strspn(l, " ")] != '#') {
			if (used + len + 2 > cap)
				return -1;
			memcpy(out + used, l, len);
			used += len;
			out[used++] = '\n';
			out[used] = '\0';
		}
		l += len + (e != NULL);
	}
	return used > 0 ? 0 : -1;
}

/* replace the first `from` in s (cap bytes) by `to` */
static int
replace(char *s, size_t cap, const char *from, const char *to)
{
	char *p = strstr(s, from), tail[4096];

	if (p == NULL)
		return -1;
	snprintf(tail, sizeof(tail), "%s", p + strlen(from));
	if ((size_t)(p - s) + strlen(to) + strlen(tail) + 1 > cap)
		return -1;
	snprintf(p, cap - (size_t)(p - s), "%s%s", to, tail);
	return 0;
}

static struct sky_cfg *
make_config(const char *csv)
{
	char *ref = slurp(SKY_SOURCE_ROOT "/conf/skygate.yaml");
	char classes[4096], plans[2048], policy[4096];
	struct sky_cfg_err err;
	struct sky_cfg *cfg;
	/* a slot per active subscriber, as an operator sizes it (the default, 65536, would
	 * have the shaper evict idle slots for every third packet: BENCH_SLOTS overrides) */
	unsigned int n_slots =
		getenv("BENCH_SLOTS") ? (unsigned int)atoi(getenv("BENCH_SLOTS")) : 131072;

	if (ref == NULL || yaml_block(ref, "classes", classes, sizeof(classes)) < 0 ||
	    yaml_block(ref, "plans", plans, sizeof(plans)) < 0 ||
	    yaml_block(ref, "policy", policy, sizeof(policy)) < 0 ||
	    replace(policy, sizeof(policy), "build/conf/policies/",
		    SKY_BUILD_ROOT "/conf/policies/") < 0) {
		fprintf(stderr, "bench_pipeline: cannot read classes, plans and policy of %s\n",
			SKY_SOURCE_ROOT "/conf/skygate.yaml");
		free(ref);
		return NULL;
	}
	free(ref);
	if (strstr(policy, "jit:") == NULL)
		strncat(policy, "  jit: true\n", sizeof(policy) - strlen(policy) - 1);
	/* beams far above the offered load: the plans are evaluated but bind no one, so the
	 * figures are the cost of shaping, not of dropping */
	cfg = sky_fx_cfg("bench_pipeline.yaml", &err,
			 "workers: %u\n"
			 "ports:\n"
			 "  - { name: sat0, role: uplink, peer: net0, device: net_ring_sat0 }\n"
			 "  - { name: net0, role: backhaul, peer: sat0, device: net_ring_net0 }\n"
			 "  - { name: sat1, role: uplink, peer: net1, device: net_ring_sat1 }\n"
			 "  - { name: net1, role: backhaul, peer: sat1, device: net_ring_net1 }\n"
			 "subscribers: { file: %s, unknown: drop }\n"
			 "%s"
			 "beams:\n"
			 "  beam1: { down: 100Gbit, up: 100Gbit }\n"
			 "  beam2: { down: 100Gbit, up: 100Gbit }\n"
			 "  beam3: { down: 100Gbit, up: 100Gbit }\n"
			 "  beam4: { down: 100Gbit, up: 100Gbit }\n"
			 "%s"
			 "geo: { database: /usr/share/libloc-location/location.db }\n"
			 "shaping: { max_active_per_worker: %u }\n"
			 "flows: { entries: 262144, rtt: true, records: true }\n"
			 "%s",
			 N_PAIRS, csv, plans, classes, n_slots, policy);
	if (cfg == NULL)
		fprintf(stderr, "bench_pipeline: %s\n", err.msg);
	return cfg;
}

/* --- memory: on --no-huge (4 KB pages), AnonHugePages shows whether any part got
 * transparent huge pages */

static void
thp_report(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "AnonHugePages:", 14) == 0 || strncmp(line, "Rss:", 4) == 0)
			printf("memory: %s", line);
	if (f != NULL)
		fclose(f);
}

/* --- ports and modules -------------------------------------------------------------------- */

static struct rte_ring *rx_ring[GW_MAX_PORTS], *tx_ring[GW_MAX_PORTS];

static int
setup(const char *csv)
{
	struct sky_cfg_err err = {0};
	char **eal_argv = NULL, e[512] = "";
	int eal_argc = 0;
	uint64_t t0;

	gw.config_path = "bench_pipeline.yaml";
	gw.cfg = make_config(csv);
	if (gw.cfg == NULL)
		return -1;
	if (gw_config_parse(&gw, gw.cfg, &err, &eal_argv, &eal_argc) < 0) {
		fprintf(stderr, "bench_pipeline: %s\n", err.msg);
		return -1;
	}
	free(eal_argv);
	for (unsigned int i = 0; i < gw.n_ports; i++) {
		char n[RTE_RING_NAMESIZE];

		snprintf(n, sizeof(n), "bp_rx%u", i);
		rx_ring[i] =
			rte_ring_create(n, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(n, sizeof(n), "bp_tx%u", i);
		tx_ring[i] =
			rte_ring_create(n, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (rx_ring[i] == NULL || tx_ring[i] == NULL ||
		    /* the PMD names the ethdev "net_ring_" + name: the device in the config */
		    rte_eth_from_rings(gw.ports[i].device + strlen("net_ring_"), &rx_ring[i], 1,
				       &tx_ring[i], 1, (unsigned int)rte_socket_id()) < 0) {
			fprintf(stderr, "bench_pipeline: ring port %s: %s\n", gw.ports[i].device,
				rte_strerror(rte_errno));
			return -1;
		}
	}
	/* the ports' mbuf sets, and what the PMD setup wants */
	gw.pool = rte_pktmbuf_pool_create("bp_pkts", 2 * N_PAIRS * N_MBUF + 4096, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	gw.workers =
		rte_zmalloc("bp_workers", sizeof(*gw.workers) * gw.n_workers, RTE_CACHE_LINE_SIZE);
	if (gw.pool == NULL || gw.workers == NULL) {
		fprintf(stderr, "bench_pipeline: out of memory (pool, workers)\n");
		return -1;
	}
	for (unsigned int w = 0; w < gw.n_workers; w++)
		gw.workers[w].id = w;
	for (unsigned int p = 0; p < gw.n_ports; p++)
		if (alloc_mbufs(p) < 0)
			return -1;
	if (gw_ports_probe(&gw, e, sizeof(e)) < 0 || gw_ports_start(&gw, e, sizeof(e)) < 0) {
		fprintf(stderr, "bench_pipeline: %s\n", e);
		return -1;
	}
	gw_workers_assign(&gw);
	if (sky_rcu_init(gw.n_workers) < 0)
		return -1;

	t0 = rte_rdtsc();
	gw.subs = sky_subs_create(gw.cfg, gw.n_workers, &err);
	if (gw.subs == NULL) {
		fprintf(stderr, "bench_pipeline: %s\n", err.msg);
		return -1;
	}
	printf("loaded %u subscribers in %.2f s\n", sky_subs_count(gw.subs),
	       (double)(rte_rdtsc() - t0) / hz);
	gw.cls = sky_classify_create(gw.cfg, sky_subs_n_classes(gw.subs), &err);
	if (gw.cls != NULL)
		gw.geo = sky_geo_create(gw.cfg, &err);
	if (gw.geo != NULL)
		gw.policy = sky_policy_create(gw.cfg, gw.subs, &err);
	if (gw.policy != NULL)
		gw.shaper = sky_shaper_create(gw.cfg, gw.subs, gw.n_workers, N_PAIRS, &err);
	if (gw.shaper != NULL)
		gw.flow = sky_flow_create(gw.cfg, gw.n_workers, &err);
	if (gw.flow == NULL) {
		fprintf(stderr, "bench_pipeline: %s\n", err.msg);
		return -1;
	}
	for (unsigned int w = 0; w < gw.n_workers; w++)
		gw_worker_start(&gw.workers[w]);
	return 0;
}

static void
teardown(void)
{
	if (gw.workers != NULL)
		for (unsigned int w = 0; w < gw.n_workers; w++)
			gw_worker_finish(&gw.workers[w]);
	gw_ports_stop(&gw);
	for (unsigned int p = 0; p < gw.n_ports; p++)
		free_mbufs(p);
	if (gw.flow != NULL)
		sky_flow_destroy(gw.flow);
	if (gw.shaper != NULL)
		sky_shaper_destroy(gw.shaper);
	if (gw.policy != NULL)
		sky_policy_destroy(gw.policy);
	if (gw.geo != NULL)
		sky_geo_destroy(gw.geo);
	if (gw.cls != NULL)
		sky_classify_destroy(gw.cls);
	if (gw.subs != NULL)
		sky_subs_destroy(gw.subs);
	sky_rcu_fini();
	rte_free(gw.workers);
	for (unsigned int i = 0; i < gw.n_ports; i++) {
		rte_ring_free(rx_ring[i]);
		rte_ring_free(tx_ring[i]);
	}
	if (gw.pool != NULL)
		rte_mempool_free(gw.pool);
	sky_cfg_free(gw.cfg);
}

/* --- traffic ------------------------------------------------------------------------------ */

struct traffic {
	const char *name;
	int dirs;	/* 1 up, 2 down, 3 both */
	int v6_pct;	/* share of IPv6 packets */
	bool imix;	/* 64 B only, or 7:4:1 of 64, 576, 1500 B */
	int geo_budget; /* cycles: 25 IPv4, 45 IPv6, weighted by the mix */
};

/* a random public IPv4 address (not 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
 * 192.168/16, multicast and above) */
static void
remote_v4(uint8_t a[16])
{
	uint32_t x;

	for (;;) {
		x = (uint32_t)rnd();
		if (x < 0x01000000u || x >= 0xe0000000u || (x >> 24) == 10 || (x >> 24) == 127 ||
		    (x >> 22) == (100u << 2 | 1) || (x >> 16) == 0xa9fe || (x >> 20) == 0xac1 ||
		    (x >> 16) == 0xc0a8)
			continue;
		break;
	}
	memset(a, 0, 16);
	a[0] = (uint8_t)(x >> 24);
	a[1] = (uint8_t)(x >> 16);
	a[2] = (uint8_t)(x >> 8);
	a[3] = (uint8_t)x;
}

/* a random address in one of the RIRs' IPv6 blocks (2400::/12 APNIC, 2600::/12 ARIN,
 * 2800::/12 LACNIC, 2a00::/12 RIPE, 2c00::/12 AFRINIC) */
static void
remote_v6(uint8_t a[16])
{
	static const uint8_t first[] = {0x24, 0x26, 0x28, 0x2a, 0x2c};
	uint64_t h = rnd(), l = rnd();

	for (int i = 0; i < 8; i++) {
		a[i] = (uint8_t)(h >> (56 - 8 * i));
		a[8 + i] = (uint8_t)(l >> (56 - 8 * i));
	}
	a[0] = first[h % 5];
	a[1] &= 0x0f;
}

/* a pre-built frame: its length and first TPL_HDR bytes (the rest is zero payload) */
#define TPL_HDR 128
struct tpl {
	uint16_t len;
	uint8_t hdr[TPL_HDR];
};

static void
make_tpl(int dir, const struct traffic *t, struct tpl *out)
{
	uint32_t r = (uint32_t)(rnd() % N_ACTIVE);
	/* every 10th subscriber, shifted so that 1% of the active ones are realm members */
	uint32_t k = (r * 10 + r % 10) % n_subs;
	bool v6 = (int)(rnd() % 100) < t->v6_pct;
	struct sky_fx_pkt p = {.l3 = v6 ? 6 : 4};
	uint8_t sub[16] = {0}, rem[16], frame[1600];
	struct sky_fx_layout lay;
	uint16_t svc, eph = (uint16_t)(1024 + rnd() % 60000);
	unsigned int x = (unsigned int)(rnd() % 100);

	if (v6) {
		v6_of(k, sub);
		for (int i = 7; i < 16; i++)
			sub[i] = (uint8_t)rnd(); /* any address in the /56 */
		remote_v6(rem);
	} else {
		v4_of(k, sub);
		remote_v4(rem);
	}
	if (in_realm(k)) {
		p.n_vlan = 1;
		p.tci[0] = (uint16_t)(100 + k % 8);
	}
	/* a mix over the reference classes: interactive, realtime, bulk, scavenger */
	p.proto = 6;
	if (x < 40) {
		svc = 443;
	} else if (x < 55) {
		p.proto = 17;
		svc = 53;
	} else if (x < 70) {
		svc = 80;
	} else if (x < 75) {
		p.proto = 17;
		p.tos = 46 << 2;
		svc = (uint16_t)(10000 + rnd() % 1000);
	} else if (x < 80) {
		p.tos = 8 << 2;
		svc = (uint16_t)(6881 + rnd() % 9);
	} else {
		p.proto = rnd() & 1 ? 6 : 17;
		svc = (uint16_t)(1024 + rnd() % 60000);
	}
	if (dir == SKY_DIR_UP) {
		memcpy(p.src, sub, 16);
		memcpy(p.dst, rem, 16);
		p.sport = eph;
		p.dport = svc;
	} else {
		memcpy(p.src, rem, 16);
		memcpy(p.dst, sub, 16);
		p.sport = svc;
		p.dport = eph;
	}
	p.len = 64;
	if (t->imix) {
		unsigned int s = (unsigned int)(rnd() % 12);

		p.len = s < 7 ? 64 : s < 11 ? 576 : 1500;
	}
	out->len = (uint16_t)sky_fx_frame(frame, sizeof(frame), &p, &lay);
	/* TCP timestamps (NOP NOP TS, data offset 8) on 3 of 4 TCP frames, as Linux, Android
	 * and Apple stacks send them (Windows does not by default): the flow stage's option
	 * path is measured; a 64 B frame grows to the 66 B the options need */
	if (p.proto == 6 && rnd() % 4 != 0) {
		uint32_t tsv = (uint32_t)rnd(), tse = (uint32_t)rnd();
		uint8_t *th;

		if (lay.l4_off + 32 > out->len) {
			p.len = lay.l4_off + 32;
			out->len = (uint16_t)sky_fx_frame(frame, sizeof(frame), &p, &lay);
		}
		th = frame + lay.l4_off;
		th[12] = 8 << 4;
		th[20] = 1;
		th[21] = 1;
		th[22] = 8;
		th[23] = 10;
		for (int b = 0; b < 4; b++) {
			th[24 + b] = (uint8_t)(tsv >> (24 - 8 * b));
			th[28 + b] = (uint8_t)(tse >> (24 - 8 * b));
		}
	}
	memcpy(out->hdr, frame, TPL_HDR);
}

/*
 * A port's side of the "NIC": N_TPL random frames, and N_MBUF mbufs (what a NIC's RX
 * ring and the pool's cache recycle) that each feed fills with the next frame's headers,
 * as a NIC writes a packet and its descriptor.
 */
struct port_feed {
	struct tpl tpl[N_TPL];
	struct rte_mbuf *m[N_MBUF];
	uint32_t tpos, mpos;
};

static struct port_feed *pf[GW_MAX_PORTS];

static void
build_tpls(unsigned int port, const struct traffic *t)
{
	pf[port]->tpos = 0;
	for (uint32_t i = 0; i < N_TPL; i++)
		make_tpl(gw.ports[port].dir, t, &pf[port]->tpl[i]);
}

static int
alloc_mbufs(unsigned int port)
{
	for (uint32_t i = 0; i < N_MBUF; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(gw.pool);

		if (m == NULL || rte_pktmbuf_tailroom(m) < 1514) {
			fprintf(stderr, "bench_pipeline: out of mbufs\n");
			return -1;
		}
		memset(rte_pktmbuf_mtod(m, void *), 0, 1514);
		pf[port]->m[i] = m;
	}
	return 0;
}

static void
free_mbufs(unsigned int port)
{
	if (pf[port] == NULL)
		return;
	for (uint32_t i = 0; i < N_MBUF; i++)
		if (pf[port]->m[i] != NULL)
			rte_pktmbuf_free(pf[port]->m[i]); /* held by the shaper: it frees last */
}

/*
 * One burst into the port's RX ring. A fed mbuf holds a second reference (refcnt 2), so
 * what the worker drops or transmits comes back to the set instead of the pool; one the
 * shaper still holds (refcnt 2) is skipped.
 */
static void
feed(unsigned int port)
{
	struct port_feed *f = pf[port];
	struct rte_mbuf *b[SKY_BURST];
	unsigned int n = 0, tries = 0;

	while (n < SKY_BURST && tries++ < 2 * SKY_BURST) {
		struct rte_mbuf *m = f->m[f->mpos];
		const struct tpl *t = &f->tpl[f->tpos];

		f->mpos = (f->mpos + 1) % N_MBUF;
		if (rte_mbuf_refcnt_read(m) != 1)
			continue;
		f->tpos = (f->tpos + 1) % N_TPL;
		m->data_off = RTE_PKTMBUF_HEADROOM;
		m->ol_flags = 0;
		m->data_len = t->len;
		m->pkt_len = t->len;
		memcpy(rte_pktmbuf_mtod(m, void *), t->hdr, TPL_HDR);
		rte_mbuf_refcnt_set(m, 2);
		b[n++] = m;
	}
	for (unsigned int i = rte_ring_enqueue_burst(rx_ring[port], (void **)b, n, NULL); i < n;
	     i++)
		rte_mbuf_refcnt_set(b[i], 1); /* the ring is full: still ours */
}

/* what the worker transmitted comes back to its set */
static void
drain(unsigned int port)
{
	struct rte_mbuf *b[64];
	unsigned int n;

	while ((n = rte_ring_dequeue_burst(tx_ring[port], (void **)b, 64, NULL)) != 0)
		for (unsigned int i = 0; i < n; i++)
			rte_pktmbuf_free(b[i]); /* refcnt 2 -> 1 */
}

/* --- measuring ---------------------------------------------------------------------------- */

struct result {
	uint64_t busy, pkts;
	uint64_t prof[GW_STEP_MAX];
	uint64_t rx, tx, drops[SKY_DROP_MAX];
	bool clean; /* the thread was not preempted during the round */
};

#define MAX_ROUNDS 512
struct drive {
	struct gw_worker *w;
	unsigned int pair;
	int dirs;
	unsigned int loops;    /* per round */
	unsigned int n_rounds; /* rounds; round i runs in modes[i % n_modes] */
	unsigned int n_modes;
	enum gw_mode modes[3];
	struct result r[MAX_ROUNDS]; /* out */
};

static double
per_pkt(const struct result *r)
{
	return r->pkts ? (double)r->busy / (double)r->pkts : 0;
}

static void
snap(const struct gw_worker *w, struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->busy = w->busy_tsc;
	r->pkts = w->busy_pkts;
	memcpy(r->prof, w->prof, sizeof(r->prof));
	for (unsigned int p = 0; p < gw.n_ports; p++) {
		r->rx += w->stats[p].rx_packets;
		r->tx += w->stats[p].tx_packets;
		for (unsigned int k = 0; k < SKY_DROP_MAX; k++)
			r->drops[k] += w->stats[p].drops[k];
	}
}

static void
diff(struct result *a, const struct result *b)
{
	a->busy = b->busy - a->busy;
	a->pkts = b->pkts - a->pkts;
	a->rx = b->rx - a->rx;
	a->tx = b->tx - a->tx;
	for (int s = 0; s < GW_STEP_MAX; s++)
		a->prof[s] = b->prof[s] - a->prof[s];
	for (int k = 0; k < SKY_DROP_MAX; k++)
		a->drops[k] = b->drops[k] - a->drops[k];
}

static long
preemptions(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nivcsw;
}

/* feed the pair's ports, one turn of the worker loop, take back what it sent; rounds of
 * d->loops turns, each counted apart (a preempted round is marked) */
static int
drive(void *arg)
{
	struct drive *d = arg;
	unsigned int up = 2 * d->pair, down = 2 * d->pair + 1;

	for (unsigned int k = 0; k < d->n_rounds; k++) {
		struct result now;
		long cs;

		d->w->mode = d->modes[k % d->n_modes];
		snap(d->w, &d->r[k]);
		cs = preemptions();
		for (unsigned int i = 0; i < d->loops; i++) {
			if ((d->dirs & 1) && !(alternate && d->dirs == 3 && (i & 1)))
				feed(up);
			if ((d->dirs & 2) && !(alternate && d->dirs == 3 && !(i & 1)))
				feed(down);
			gw_worker_poll(d->w);
			drain(up);
			drain(down);
		}
		d->r[k].clean = preemptions() == cs;
		snap(d->w, &now);
		diff(&d->r[k], &now);
	}
	d->w->mode = GW_MODE_RUN;
	/* the shaper's tail */
	for (int i = 0; i < 1000; i++) {
		gw_worker_poll(d->w);
		drain(up);
		drain(down);
	}
	return 0;
}

/* run n_workers drivers at once (worker w on pair w, lcore w) */
static void
run(unsigned int n_workers, struct drive *d)
{
	unsigned int lcore = rte_get_next_lcore(-1, 1, 0);

	if (n_workers > 1)
		rte_eal_remote_launch(drive, &d[1], lcore);
	drive(&d[0]);
	if (n_workers > 1)
		rte_eal_wait_lcore(lcore);
}

static int
cmp_per_pkt(const void *a, const void *b)
{
	double x = per_pkt(a), y = per_pkt(b);

	return x < y ? -1 : x > y;
}

/* the rounds of mode m: the clean ones (all when none is), sorted by cycles per packet */
struct summary {
	struct result r[MAX_ROUNDS];
	unsigned int n, n_all;
	bool clean;
};

static void
summarize(const struct drive *d, enum gw_mode m, struct summary *s)
{
	s->n = s->n_all = 0;
	for (int pass = 0; pass < 2 && s->n == 0; pass++)
		for (unsigned int k = 0; k < d->n_rounds; k++) {
			if (d->modes[k % d->n_modes] != m || d->r[k].pkts == 0)
				continue;
			s->n_all += pass == 0;
			if (pass == 0 && !d->r[k].clean)
				continue;
			s->r[s->n++] = d->r[k];
		}
	s->clean = s->n < s->n_all || (s->n > 0 && s->r[0].clean);
	qsort(s->r, s->n, sizeof(s->r[0]), cmp_per_pkt);
}

static const struct result *
median(const struct summary *s)
{
	return &s->r[s->n / 2];
}

static const char *step_budget[GW_STEP_MAX] = {
	[GW_STEP_parse] = "<= 15",
	[GW_STEP_subscriber] = "} <= 40 together",
	[GW_STEP_account] = "}",
	[GW_STEP_classify] = "<= 40",
	[GW_STEP_policy] = "<= 15",
	[GW_STEP_police] = "} shaper <= 60-90 together",
	[GW_STEP_shape] = "}",
	[GW_STEP_shaped_tx] = "}",
	[GW_STEP_flow] = "<= 25 (RTT 15 + records 10)",
};

static const char *step_name[GW_STEP_MAX] = {
#define GW_STEP_NAME(n, h) #n,
	GW_FOREACH_STEP(GW_STEP_NAME)
#undef GW_STEP_NAME
};

static struct drive dr[N_PAIRS];

static void
print_spread(const char *what, const struct summary *s, const char *budget)
{
	printf("  %-36s %8.1f   %-26s [best %.1f, worst %.1f; %u of %u rounds clean]\n", what,
	       per_pkt(median(s)), budget, per_pkt(&s->r[0]), per_pkt(&s->r[s->n - 1]), s->n,
	       s->n_all);
}

static void
bench_traffic(const struct traffic *t)
{
	static struct summary by, ru, pr;
	struct drive *d = &dr[0];
	const struct result *p, *r;
	double sum = 0, shaper = 0, subacc = 0;
	char geo[48];

	for (unsigned int port = 0; port < 2; port++)
		if ((t->dirs >> port) & 1)
			build_tpls(port, t);
	/* warm-up: first touch of the tables, the shaper meets its subscribers */
	*d = (struct drive){.w = &gw.workers[0],
			    .dirs = t->dirs,
			    .loops = N_TPL / SKY_BURST,
			    .n_rounds = 1,
			    .n_modes = 1,
			    .modes = {GW_MODE_RUN}};
	run(1, d);
	*d = (struct drive){.w = &gw.workers[0],
			    .dirs = t->dirs,
			    .loops = LOOPS,
			    .n_rounds = 3 * ROUNDS,
			    .n_modes = 3,
			    .modes = {GW_MODE_BYPASS, GW_MODE_RUN, GW_MODE_PROFILE}};
	run(1, d);
	summarize(d, GW_MODE_BYPASS, &by);
	summarize(d, GW_MODE_RUN, &ru);
	summarize(d, GW_MODE_PROFILE, &pr);
	p = median(&pr);
	r = median(&ru);

	printf("\n%s: rounds of %u packets per way, the median clean round\n", t->name,
	       LOOPS * SKY_BURST);
	printf("  %-36s %8s   %s\n", "step (PROFILE: TSC around each call)", "cyc/pkt", "budget");
	snprintf(geo, sizeof(geo), "<= %d (%d%% IPv6)", t->geo_budget, t->v6_pct);
	for (int s = 0; s < GW_STEP_MAX; s++) {
		double c = (double)p->prof[s] / (double)p->pkts;

		sum += c;
		if (s == GW_STEP_police || s == GW_STEP_shape || s == GW_STEP_shaped_tx)
			shaper += c;
		if (s == GW_STEP_subscriber || s == GW_STEP_account)
			subacc += c;
		printf("  %-36s %8.1f   %s\n", step_name[s], c,
		       s == GW_STEP_geo ? geo
		       : step_budget[s] ? step_budget[s]
					: "");
	}
	printf("  %-36s %8.1f   <= 40\n", "= subscriber + account", subacc);
	printf("  %-36s %8.1f   <= 60-90\n", "= shaper (police + shape + shaped_tx)", shaper);
	printf("  %-36s %8.1f\n", "loop (busy time outside the steps)", per_pkt(p) - sum);
	print_spread("total, PROFILE", &pr, "");
	print_spread("TOTAL, RUN (busy cycles / packets)", &ru, "<= 250 (stretch 200)");
	print_spread("baseline, BYPASS (rx -> tx)", &by, "");
	printf("  %-36s %8.1f x baseline; %.1f Mpps per %.2f GHz core\n", "RUN / BYPASS",
	       per_pkt(r) / per_pkt(median(&by)), hz / per_pkt(r) / 1e6, hz / 1e9);
	printf("  RUN round: %llu received, %llu transmitted", (unsigned long long)r->rx,
	       (unsigned long long)r->tx);
	for (int k = 1; k < SKY_DROP_MAX; k++)
		if (r->drops[k] != 0)
			printf(", %llu dropped %s", (unsigned long long)r->drops[k],
			       sky_drop_name((uint8_t)k));
	printf("\n");
}

/* 1 worker against 2 (one lcore each, each feeding its own pair) */
static void
bench_workers(void)
{
	const struct traffic t = {"", 3, 30, false, 0};
	static struct summary s;

	if (rte_lcore_count() < 2) {
		printf("\nworkers: only one lcore, 2 workers not measured\n");
		return;
	}
	for (unsigned int port = 0; port < 2 * N_PAIRS; port++)
		build_tpls(port, &t);
	printf("\nworkers (64 B, both directions, 30%% IPv6; RUN; worker w on lcore w feeds "
	       "and polls port pair w; a shared 2-vCPU machine: report only)\n");
	for (unsigned int n = 1; n <= 2; n++) {
		for (unsigned int w = 0; w < n; w++)
			dr[w] = (struct drive){.w = &gw.workers[w],
					       .pair = w,
					       .dirs = 3,
					       .loops = LOOPS,
					       .n_rounds = ROUNDS,
					       .n_modes = 1,
					       .modes = {GW_MODE_RUN}};
		run(n, dr);
		printf("  %u worker%s:", n, n > 1 ? "s" : "");
		for (unsigned int w = 0; w < n; w++) {
			summarize(&dr[w], GW_MODE_RUN, &s);
			printf("  worker %u %.1f cycles/packet [best %.1f, worst %.1f; %u of %u "
			       "rounds clean]",
			       w, per_pkt(median(&s)), per_pkt(&s.r[0]), per_pkt(&s.r[s.n - 1]),
			       s.n, s.n_all);
		}
		printf("\n");
	}
}

int
main(int argc, char **argv)
{
	static const struct traffic traffic[] = {
		{"64 B, upstream, IPv4", 1, 0, false, 25},
		{"64 B, upstream, IPv6", 1, 100, false, 45},
		{"64 B, downstream, IPv4", 2, 0, false, 25},
		{"64 B, downstream, IPv6", 2, 100, false, 45},
		{"64 B, both directions, IPv4", 3, 0, false, 25},
		{"64 B, both directions, 30% IPv6", 3, 30, false, 31},
		{"IMIX (7:4:1 of 64, 576, 1500 B), both directions, 30% IPv6", 3, 30, true, 31},
	};
	char csv[300];
	double t_start = sky_fx_now_s();
	const char *only;
	int rc = 1;

	n_subs = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
	alternate = getenv("BENCH_ALTERNATE") != NULL;
	only = getenv("BENCH_PIPELINE_ONLY"); /* the cases whose name contains it */
	if (n_subs < N_ACTIVE)
		n_subs = N_ACTIVE;
	/* lcore 0 drives worker 0, lcore 1 worker 1 (the 2-worker figures) */
	/* on 2 MB hugepages when 1000 of them are free (as the daemon runs), else --no-huge */
	if (sky_fx_eal_start("bench_pipeline", &(struct sky_fx_eal){.mem_mb = 2000,
								    .huge = 1,
								    .lcores = "0-1",
								    .skygate_log = "warning"}) < 0)
		return 1;
	hz = (double)rte_get_tsc_hz();
	for (unsigned int p = 0; p < 2 * N_PAIRS; p++) {
		pf[p] = calloc(1, sizeof(*pf[p]));
		if (pf[p] == NULL)
			return 1;
	}
	snprintf(csv, sizeof(csv), "%s/subs.csv", sky_fx_tmpdir());
	if (write_csv(csv, n_subs) != 0)
		return 1;
	printf("whole pipeline (gateway/worker.c gw_worker_poll) on net_ring ports: %u "
	       "subscribers (IPv4 /32 + IPv6 /56, 0.1%% in 8 VLAN realms), traffic to %u of "
	       "them at random, random remote addresses, full libloc database, reference "
	       "classes, plans and country_block policy (JIT), shaping on; TSC %.2f GHz\n",
	       n_subs, N_ACTIVE, hz / 1e9);
	if (setup(csv) < 0)
		goto out;
	printf("memory: %s\n", sky_fx_huge ? "2 MB hugepages (--in-memory)"
					   : "4 KB pages (--no-huge: too few free hugepages)");
	thp_report();
	for (size_t i = 0; i < RTE_DIM(traffic); i++)
		if (only == NULL || strstr(traffic[i].name, only) != NULL)
			bench_traffic(&traffic[i]);
	if (only == NULL)
		bench_workers();
	{
		struct sky_policy_stats ps;

		sky_policy_stats(gw.policy, &ps);
		printf("\npolicy: %llu runs (every IP packet of RUN and PROFILE rounds), %llu "
		       "dropped, %llu faults\n",
		       (unsigned long long)ps.runs, (unsigned long long)ps.drop,
		       (unsigned long long)ps.faults);
	}
	printf("\nbench_pipeline ran %.1f s\n", sky_fx_now_s() - t_start);
	rc = 0;
out:
	teardown();
	for (unsigned int p = 0; p < 2 * N_PAIRS; p++)
		free(pf[p]);
	sky_ctl_unregister_all();
	sky_metrics_unregister_all();
	sky_fx_eal_stop();
	return rc;
}
