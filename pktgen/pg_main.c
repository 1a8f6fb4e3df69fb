/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * skygate-pktgen: options, EAL and ports, the flow table, and the polling loop.
 *
 *   skygate-pktgen [EAL options] -- [options]       generate traffic, report
 *   skygate-pktgen --gen-subs N ... --write-csv F   write a subscriber CSV, no EAL
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pcapng.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "pg_gen.h"
#include "pg_pkt.h"
#include "skygate/runtime.h"

#define DEFAULT_DB "/usr/share/libloc-location/location.db"
#define DEFAULT_REMOTE "US:30,DE:15,CN:10,GB:10,FR:10,JP:10,BR:5,RU:5,IN:5"
#define DEFAULT_CLASSES "realtime:10,interactive:30,bulk:50,scavenger:10"
#define POOL_MBUFS 8191
#define RING_DESC 1024

static volatile int stop_flag;
static volatile int finish_flag; /* SIGUSR1: end the run now, as --duration would */

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		finish_flag = 1;
	else
		stop_flag = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: skygate-pktgen [EAL options] -- [options]\n"
		"       skygate-pktgen --gen-subs N [generator options] --write-csv FILE   (no "
		"EAL)\n"
		"\n"
		"Port 0 = terminal side (to skygate's uplink port), port 1 = internet side "
		"(backhaul).\n"
		"\n"
		"subscribers:\n"
		"  --subs FILE            subscriber CSV (id,ipv4,ipv6,plan,beam,country[,realm])\n"
		"  --subs-limit N         use the first N rows only\n"
		"  --gen-subs N           generate N subscribers instead\n"
		"  --countries LIST|N     DE,FR,... or N = the N countries with most networks "
		"(default 8)\n"
		"  --beams LIST           beam names (default beam1,beam2)\n"
		"  --plans LIST           plan names (default basic,premium)\n"
		"  --v6-share F           share of generated subscribers with an IPv6 /56 (default "
		"0.3)\n"
		"  --realms N             give generated subscribers realm (VLAN) 100..100+N-1\n"
		"  --sub-v4 PFX           IPv4 block for generated subscribers (default "
		"100.64.0.0/10)\n"
		"  --sub-v6 PFX           IPv6 block, one /56 each (default 2001:db8::/32)\n"
		"  --write-csv FILE       write the subscriber CSV and exit ('-' = stdout)\n"
		"traffic:\n"
		"  --db FILE              libloc database (default " DEFAULT_DB ")\n"
		"  --remote-countries MIX remote country mix (default " DEFAULT_REMOTE ")\n"
		"  --classes MIX          class mix (default " DEFAULT_CLASSES ")\n"
		"  --direction up|down|both  (default both)\n"
		"  --flows-per-sub N      flows per subscriber (default 4)\n"
		"  --flow-v6 F            share of a dual-stack subscriber's flows on IPv6 "
		"(default 0.5)\n"
		"  --size 64|imix|LO-HI   frame size with FCS (default 64); imix = 7:4:1 of "
		"64/570/1518\n"
		"  --rate R               total: 200000pps, 1.5Mpps, 500Mbit, 0 = as fast as "
		"possible\n"
		"  --sub-rate R           per subscriber and direction (total = R x subs x "
		"directions)\n"
		"  --duration SEC         sending time (default 10)\n"
		"  --wait-link SEC        wait for both links before sending (default 5)\n"
		"  --drain MS             keep receiving after sending stops (default 200)\n"
		"  --ports A,B            port ids for terminal and internet side (default 0,1)\n"
		"  --burst N              packets per TX burst (default 32)\n"
		"  --seed N               PRNG seed (default 1)\n"
		"  --probe ID:PPS:SIZE    one more downstream flow for subscriber ID (realtime, "
		"UDP),\n"
		"                         PPS packets/s of SIZE bytes, paced apart from the rest; "
		"its\n"
		"                         latency is reported under \"probe\" (e.g. 1:50:100)\n"
		"  --rtt-emulate SAT_MS:INET_MS[,BEAM=SAT_MS:INET_MS...]\n"
		"                         TCP flows carry timestamps; each side echoes a new "
		"TSval\n"
		"                         after twice its one-way delay (terminal side: SAT_MS,\n"
		"                         internet side: INET_MS; per beam), so skygate's passive\n"
		"                         RTT halves have a known truth (e.g. 250:10,leo=20:10)\n"
		"  --rtt-handshake        with --rtt-emulate: TCP flows carry no timestamps; each\n"
		"                         opens with SYN, SYN-ACK (after 2 x INET_MS), ACK (after\n"
		"                         2 x SAT_MS): one sample of each half per flow\n"
		"  --rtt-retrans SHARE    with --rtt-emulate: this share (0..0.5) of TCP data\n"
		"                         segments are retransmissions (sent twice, the copy not\n"
		"                         counted as sent)\n"
		"output:\n"
		"  --report FILE.json     JSON report\n"
		"  --pcap-out FILE        write every received frame (pcapng, lowers the rate)\n"
		"  --top N                subscribers listed by loss in the report (default 20)\n"
		"  --max-loss RATIO       exit 3 when lost/sent exceeds RATIO (e.g. 0 or 0.001)\n"
		"  --quiet                no progress line\n"
		"  --linger SEC           after the report, stay connected (idle, not polling) for "
		"SEC\n"
		"                         seconds or until SIGINT/SIGTERM, so the peer can stop "
		"first\n"
		"                         (DPDK 22.11's memif frees its rings under a peer still "
		"polling)\n"
		"signals: SIGUSR1 ends sending at once and finishes the run as --duration would "
		"(drain,\n"
		"         report, linger); SIGINT/SIGTERM stop at once (no drain)\n");
}

enum {
	O_SUBS = 256,
	O_SUBS_LIMIT,
	O_GEN,
	O_COUNTRIES,
	O_BEAMS,
	O_PLANS,
	O_V6SHARE,
	O_REALMS,
	O_SUBV4,
	O_SUBV6,
	O_WRITE,
	O_DB,
	O_REMOTE,
	O_CLASSES,
	O_DIR,
	O_FPS,
	O_FLOWV6,
	O_SIZE,
	O_RATE,
	O_SUBRATE,
	O_DUR,
	O_WAIT,
	O_DRAIN,
	O_PORTS,
	O_BURST,
	O_SEED,
	O_REPORT,
	O_PCAP,
	O_TOP,
	O_MAXLOSS,
	O_QUIET,
	O_LINGER,
	O_PROBE,
	O_RTT,
	O_RTT_RETRANS,
	O_RTT_HS,
	O_HELP,
};

static const struct option long_opts[] = {
	{"subs", 1, 0, O_SUBS},
	{"subs-limit", 1, 0, O_SUBS_LIMIT},
	{"gen-subs", 1, 0, O_GEN},
	{"countries", 1, 0, O_COUNTRIES},
	{"beams", 1, 0, O_BEAMS},
	{"plans", 1, 0, O_PLANS},
	{"v6-share", 1, 0, O_V6SHARE},
	{"realms", 1, 0, O_REALMS},
	{"sub-v4", 1, 0, O_SUBV4},
	{"sub-v6", 1, 0, O_SUBV6},
	{"write-csv", 1, 0, O_WRITE},
	{"db", 1, 0, O_DB},
	{"remote-countries", 1, 0, O_REMOTE},
	{"classes", 1, 0, O_CLASSES},
	{"direction", 1, 0, O_DIR},
	{"flows-per-sub", 1, 0, O_FPS},
	{"flow-v6", 1, 0, O_FLOWV6},
	{"size", 1, 0, O_SIZE},
	{"rate", 1, 0, O_RATE},
	{"sub-rate", 1, 0, O_SUBRATE},
	{"duration", 1, 0, O_DUR},
	{"wait-link", 1, 0, O_WAIT},
	{"drain", 1, 0, O_DRAIN},
	{"ports", 1, 0, O_PORTS},
	{"burst", 1, 0, O_BURST},
	{"seed", 1, 0, O_SEED},
	{"report", 1, 0, O_REPORT},
	{"pcap-out", 1, 0, O_PCAP},
	{"top", 1, 0, O_TOP},
	{"max-loss", 1, 0, O_MAXLOSS},
	{"quiet", 0, 0, O_QUIET},
	{"linger", 1, 0, O_LINGER},
	{"probe", 1, 0, O_PROBE},
	{"rtt-emulate", 1, 0, O_RTT},
	{"rtt-retrans", 1, 0, O_RTT_RETRANS},
	{"rtt-handshake", 0, 0, O_RTT_HS},
	{"help", 0, 0, O_HELP},
	{0, 0, 0, 0},
};

static int
num(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "skygate-pktgen: --%s: '%s' is not a number in %g..%g\n", opt, s,
			lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_prefix(const char *opt, const char *s, int fam, uint8_t *addr, uint8_t *len)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	unsigned long l = fam == AF_INET ? 32 : 128;
	if (slash) {
		*slash = 0;
		char *end;
		l = strtoul(slash + 1, &end, 10);
		if (*end || end == slash + 1 || l > (fam == AF_INET ? 32u : 128u))
			goto bad;
	}
	if (inet_pton(fam, buf, addr) != 1)
		goto bad;
	*len = (uint8_t)l;
	return 0;
bad:
	fprintf(stderr, "skygate-pktgen: --%s: '%s' is not an %s prefix\n", opt, s,
		fam == AF_INET ? "IPv4" : "IPv6");
	return -1;
}

static int
parse_opts(int argc, char **argv, struct pg_opts *o)
{
	char err[256];
	double d;
	memset(o, 0, sizeof(*o));
	o->db_path = DEFAULT_DB;
	o->direction = 2;
	o->flows_per_sub = 4;
	o->flow_v6 = 0.5;
	o->size = (struct pg_size){PG_SIZE_FIXED, 64, 64};
	o->duration_s = 10;
	o->wait_link_s = 5;
	o->drain_ms = 200;
	o->top_n = 20;
	o->seed = 1;
	o->port[0] = 0;
	o->port[1] = 1;
	o->burst = PG_BURST;
	o->max_loss = -1;
	o->pool_per_country = 256;
	o->gen.v6_share = 0.3;
	inet_pton(AF_INET, "100.64.0.0", o->gen.v4_base);
	o->gen.v4_len = 10;
	inet_pton(AF_INET6, "2001:db8::", o->gen.v6_base);
	o->gen.v6_len = 32;
	pg_list_parse("beam1,beam2", &o->gen.beams, err, sizeof(err));
	pg_list_parse("basic,premium", &o->gen.plans, err, sizeof(err));
	pg_mix_parse(DEFAULT_REMOTE, &o->remote, err, sizeof(err));
	pg_mix_parse(DEFAULT_CLASSES, &o->classes, err, sizeof(err));

	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		const char *name = NULL;
		for (const struct option *lo = long_opts; lo->name; lo++)
			if (lo->val == c)
				name = lo->name;
		int rc = 0;
		switch (c) {
		case O_SUBS:
			o->subs_path = optarg;
			break;
		case O_SUBS_LIMIT:
			rc = num(name, optarg, 1, UINT32_MAX, &d);
			o->subs_limit = (uint32_t)d;
			break;
		case O_GEN:
			rc = num(name, optarg, 1, PG_MAX_FLOWS, &d);
			o->gen.n = (uint32_t)d;
			o->gen_mode = true;
			break;
		case O_COUNTRIES:
			o->countries_arg = optarg;
			break;
		case O_BEAMS:
			rc = pg_list_parse(optarg, &o->gen.beams, err, sizeof(err));
			break;
		case O_PLANS:
			rc = pg_list_parse(optarg, &o->gen.plans, err, sizeof(err));
			break;
		case O_V6SHARE:
			rc = num(name, optarg, 0, 1, &o->gen.v6_share);
			break;
		case O_REALMS:
			rc = num(name, optarg, 0, 3994, &d);
			o->gen.realms = (unsigned int)d;
			break;
		case O_SUBV4:
			rc = parse_prefix(name, optarg, AF_INET, o->gen.v4_base, &o->gen.v4_len);
			break;
		case O_SUBV6:
			rc = parse_prefix(name, optarg, AF_INET6, o->gen.v6_base, &o->gen.v6_len);
			break;
		case O_WRITE:
			o->write_csv = optarg;
			break;
		case O_DB:
			o->db_path = optarg;
			break;
		case O_REMOTE:
			rc = pg_mix_parse(optarg, &o->remote, err, sizeof(err));
			break;
		case O_CLASSES:
			rc = pg_mix_parse(optarg, &o->classes, err, sizeof(err));
			break;
		case O_DIR:
			if (strcmp(optarg, "up") == 0)
				o->direction = 0;
			else if (strcmp(optarg, "down") == 0)
				o->direction = 1;
			else if (strcmp(optarg, "both") == 0)
				o->direction = 2;
			else {
				snprintf(err, sizeof(err), "'%s': expected up, down or both",
					 optarg);
				rc = -1;
			}
			break;
		case O_FPS:
			rc = num(name, optarg, 1, 1024, &d);
			o->flows_per_sub = (unsigned int)d;
			break;
		case O_FLOWV6:
			rc = num(name, optarg, 0, 1, &o->flow_v6);
			break;
		case O_SIZE:
			rc = pg_size_parse(optarg, &o->size, err, sizeof(err));
			break;
		case O_RATE:
			rc = pg_rate_parse(optarg, &o->rate, err, sizeof(err));
			break;
		case O_SUBRATE:
			rc = pg_rate_parse(optarg, &o->sub_rate, err, sizeof(err));
			break;
		case O_DUR:
			rc = num(name, optarg, 0.001, 86400 * 7, &o->duration_s);
			break;
		case O_WAIT:
			rc = num(name, optarg, 0, 3600, &o->wait_link_s);
			break;
		case O_DRAIN:
			rc = num(name, optarg, 0, 60000, &d);
			o->drain_ms = (unsigned int)d;
			break;
		case O_PORTS: {
			unsigned int a, b;
			char tail;
			if (sscanf(optarg, "%u,%u%c", &a, &b, &tail) != 2 || a == b ||
			    a >= RTE_MAX_ETHPORTS || b >= RTE_MAX_ETHPORTS) {
				snprintf(err, sizeof(err),
					 "'%s': expected two different port ids A,B", optarg);
				rc = -1;
			}
			o->port[0] = (uint16_t)a;
			o->port[1] = (uint16_t)b;
			break;
		}
		case O_BURST:
			rc = num(name, optarg, 1, PG_BURST, &d);
			o->burst = (unsigned int)d;
			break;
		case O_SEED:
			rc = num(name, optarg, 0, 1e18, &d);
			o->seed = (uint64_t)d;
			break;
		case O_REPORT:
			o->report = optarg;
			break;
		case O_PCAP:
			o->pcap_out = optarg;
			break;
		case O_TOP:
			rc = num(name, optarg, 0, 1e6, &d);
			o->top_n = (unsigned int)d;
			break;
		case O_MAXLOSS:
			rc = num(name, optarg, 0, 1, &o->max_loss);
			break;
		case O_QUIET:
			o->quiet = true;
			break;
		case O_LINGER:
			rc = num(name, optarg, 0, 86400, &o->linger);
			break;
		case O_PROBE: {
			unsigned long id;
			double pps;
			unsigned int size;
			char tail;

			if (sscanf(optarg, "%lu:%lf:%u%c", &id, &pps, &size, &tail) != 3 ||
			    id == 0 || id > UINT32_MAX || !(pps >= 0.1 && pps <= 100000) ||
			    size < PG_MIN_FRAME + PG_FCS || size > PG_MAX_FRAME) {
				fprintf(stderr,
					"skygate-pktgen: --probe: '%s' is not ID:PPS:SIZE (id >= "
					"1, "
					"0.1..100000 pps, %u..%u bytes)\n",
					optarg, PG_MIN_FRAME + PG_FCS, PG_MAX_FRAME);
				return -1;
			}
			o->probe_sub = (uint32_t)id;
			o->probe_pps = pps;
			o->probe_size = (uint16_t)size;
			break;
		}
		case O_RTT:
			rc = pg_rtt_parse(optarg, &o->rtt, err, sizeof(err));
			break;
		case O_RTT_RETRANS:
			rc = num(name, optarg, 0, 0.5, &o->rtt.retrans);
			break;
		case O_RTT_HS:
			o->rtt_handshake = true;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
		if (rc) {
			if (name && err[0])
				fprintf(stderr, "skygate-pktgen: --%s: %s\n", name, err);
			return -1;
		}
		err[0] = 0;
	}
	if (optind < argc) {
		fprintf(stderr, "skygate-pktgen: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->gen_mode && o->subs_path == NULL) {
		fprintf(stderr, "skygate-pktgen: give --subs FILE or --gen-subs N\n");
		return -1;
	}
	if (o->gen_mode && o->subs_path) {
		fprintf(stderr, "skygate-pktgen: --subs and --gen-subs exclude each other\n");
		return -1;
	}
	if (o->write_csv && !o->gen_mode) {
		fprintf(stderr, "skygate-pktgen: --write-csv needs --gen-subs\n");
		return -1;
	}
	if (o->probe_sub && o->direction == 0) {
		fprintf(stderr,
			"skygate-pktgen: --probe sends downstream: not with --direction up\n");
		return -1;
	}
	if ((o->rtt.retrans > 0 || o->rtt_handshake) && o->rtt.n == 0) {
		fprintf(stderr, "skygate-pktgen: --rtt-retrans and --rtt-handshake go with "
				"--rtt-emulate\n");
		return -1;
	}
	if (o->rate.unit != PG_RATE_NONE && o->sub_rate.unit != PG_RATE_NONE) {
		fprintf(stderr, "skygate-pktgen: --rate and --sub-rate exclude each other\n");
		return -1;
	}
	for (unsigned int i = 0; i < o->classes.n; i++) {
		unsigned int k;
		for (k = 0; k < pg_n_classes; k++)
			if (strcmp(o->classes.name[i], pg_classes[k].name) == 0)
				break;
		if (k == pg_n_classes) {
			fprintf(stderr,
				"skygate-pktgen: --classes: unknown class '%s' (known: "
				"realtime, interactive, bulk, scavenger)\n",
				o->classes.name[i]);
			return -1;
		}
	}
	return 0;
}

/* class index in pg_classes of mix entry i */
static unsigned int
class_of(const struct pg_opts *o, unsigned int i)
{
	for (unsigned int k = 0; k < pg_n_classes; k++)
		if (strcmp(o->classes.name[i], pg_classes[k].name) == 0)
			return k;
	return 0;
}

static int
load_subs(struct pg_opts *o, struct pg_subs *s)
{
	char err[256];
	if (!o->gen_mode) {
		if (pg_subs_load(s, o->subs_path, o->subs_limit, err, sizeof(err))) {
			fprintf(stderr, "skygate-pktgen: %s\n", err);
			return -1;
		}
		return 0;
	}
	const char *ca = o->countries_arg ? o->countries_arg : "8";
	char *end;
	unsigned long n = strtoul(ca, &end, 10);
	int rc;
	if (*end == 0 && end != ca)
		rc = pg_geo_top_countries(o->db_path, (unsigned int)n, &o->gen.countries, err,
					  sizeof(err));
	else
		rc = pg_list_parse(ca, &o->gen.countries, err, sizeof(err));
	if (rc == 0) {
		o->gen.seed = o->seed;
		rc = pg_subs_generate(s, &o->gen, err, sizeof(err));
	}
	if (rc) {
		fprintf(stderr, "skygate-pktgen: %s\n", err);
		return -1;
	}
	return 0;
}

static void
shuffle_u8(uint8_t *v, uint32_t n, uint64_t *st)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = (uint32_t)(pg_rand(st) % i);
		uint8_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* fill v[n] with mix indexes in exact proportion, shuffled */
static void
spread(const struct pg_mix *m, uint8_t *v, uint32_t n, uint64_t *st)
{
	uint64_t cnt[PG_MAX_MIX];
	pg_mix_apportion(m, n, cnt);
	uint32_t k = 0;
	for (unsigned int i = 0; i < m->n; i++)
		for (uint64_t j = 0; j < cnt[i]; j++)
			v[k++] = (uint8_t)i;
	shuffle_u8(v, n, st);
}

static int
build_flows(struct pg_run *r)
{
	struct pg_opts *o = r->o;
	uint64_t nf = (uint64_t)r->subs.n * o->flows_per_sub;
	uint32_t probe_si = UINT32_MAX;
	r->probe_idx = UINT32_MAX;
	if (o->probe_sub) {
		for (uint32_t k = 0; k < r->subs.n; k++)
			if (r->subs.v[k].id == o->probe_sub)
				probe_si = k;
		if (probe_si == UINT32_MAX) {
			fprintf(stderr, "skygate-pktgen: --probe: no subscriber %u\n",
				o->probe_sub);
			return -1;
		}
	}
	r->n_tx_flows = (uint32_t)nf;
	if (probe_si != UINT32_MAX)
		nf++; /* the probe: the last flow */
	if (nf > PG_MAX_FLOWS) {
		fprintf(stderr,
			"skygate-pktgen: %" PRIu64 " flows (subscribers x --flows-per-sub)"
			" exceed %u\n",
			nf, PG_MAX_FLOWS);
		return -1;
	}
	r->n_flows = (uint32_t)nf;
	r->flows = rte_zmalloc("pg_flows", nf * sizeof(*r->flows), 64);
	r->rxf = rte_zmalloc("pg_rxf", nf * sizeof(*r->rxf), 64);
	r->finfo = calloc(nf, sizeof(*r->finfo));
	uint8_t *cls = malloc(nf), *rem = malloc(nf), *dir = malloc(nf);
	int rc = -1;
	if (!r->flows || !r->rxf || !r->finfo || !cls || !rem || !dir) {
		fprintf(stderr, "skygate-pktgen: no memory for %" PRIu64 " flows (raise -m)\n", nf);
		goto out;
	}
	uint64_t st = o->seed ^ 0xf10;
	spread(&o->classes, cls, r->n_flows, &st);
	spread(&o->remote, rem, r->n_flows, &st);
	if (o->direction == 2) {
		struct pg_mix half = {.n = 2, .weight = {1, 1}};
		spread(&half, dir, r->n_flows, &st);
	} else {
		memset(dir, o->direction, nf);
	}
	if (probe_si != UINT32_MAX) {
		r->probe_idx = r->n_tx_flows;
		rem[r->probe_idx] = 0;
		dir[r->probe_idx] = PG_DOWN;
	}
	for (uint32_t i = 0; i < r->n_flows; i++) {
		struct pg_flow *f = &r->flows[i];
		const bool probe = i == r->probe_idx;
		uint32_t si = probe ? probe_si : i % r->subs.n;
		const struct pg_sub *sub = &r->subs.v[si];
		const struct pg_geo_pool *pool = &r->pools[rem[i]];
		/* the probe: pg_classes[0] (realtime, UDP 5060/53) */
		const unsigned int pc = probe ? 0 : class_of(o, cls[i]);
		const struct pg_class_def *cd = &pg_classes[pc];
		bool v6 = sub->has_v6 &&
			  (!sub->has_v4 || (double)(pg_rand(&st) >> 11) * 0x1p-53 < o->flow_v6);
		if (v6 && pool->n6 == 0 && sub->has_v4)
			v6 = false;
		if (!v6 && pool->n4 == 0 && sub->has_v6)
			v6 = true;
		if ((v6 && pool->n6 == 0) || (!v6 && pool->n4 == 0)) {
			fprintf(stderr,
				"skygate-pktgen: remote country %s has no IPv%d address for "
				"subscriber %u\n",
				o->remote.name[rem[i]], v6 ? 6 : 4, sub->id);
			goto out;
		}
		const uint8_t *sa = v6 ? sub->v6 : sub->v4;
		const uint8_t *ra =
			v6 ? pool->v6[pg_rand(&st) % pool->n6] : pool->v4[pg_rand(&st) % pool->n4];
		const struct pg_service *svc = &cd->svc[pg_rand(&st) % cd->n_svc];
		uint16_t eph = (uint16_t)(32768 + pg_rand(&st) % 28232);
		f->dir = dir[i];
		f->v6 = v6;
		f->cls = (uint8_t)pc;
		f->proto = svc->proto;
		f->dscp = cd->dscp;
		f->vlan = sub->realm;
		unsigned int alen = v6 ? 16 : 4;
		f->ts = o->rtt.n > 0 && f->proto == IPPROTO_TCP
				? (o->rtt_handshake ? PG_TS_HANDSHAKE : PG_TS_OPTION)
				: 0;
		f->hs = PG_HS_NONE;
		f->rtt_cls = 0;
		for (unsigned int k = 1; k < o->rtt.n; k++)
			if (strcmp(o->rtt.beam[k], r->subs.beams[sub->beam]) == 0)
				f->rtt_cls = (uint8_t)k;
		unsigned int need = (f->vlan ? 18 : 14) + (v6 ? 40 : 20) +
				    (f->proto == IPPROTO_TCP ? 20 + 4 : 8 + 16) +
				    (f->ts == PG_TS_OPTION ? PG_TS_OPT_LEN : 0);
		f->min_len = (uint16_t)(need < PG_MIN_FRAME ? PG_MIN_FRAME : need);
		if (f->dir == PG_UP) {
			memcpy(f->src, sa, alen);
			memcpy(f->dst, ra, alen);
			f->sport = eph;
			f->dport = svc->port;
		} else {
			memcpy(f->src, ra, alen);
			memcpy(f->dst, sa, alen);
			f->sport = svc->port;
			f->dport = eph;
		}
		r->finfo[i].sub = si;
		r->finfo[i].remote = rem[i];
	}
	rc = 0;
out:
	free(cls);
	free(rem);
	free(dir);
	return rc;
}

/* ---------------- data path ---------------- */

/* the TSval clock of the echoes: milliseconds since the start, never 0 (data segments
 * carry their flow's packet number + 1 instead: a clock that ticks once a segment, so no
 * two segments of a flow share a TSval and an echo names exactly one segment) */
static inline uint32_t
ts_clock(const struct pg_run *r, uint64_t tsc)
{
	return (uint32_t)((tsc - r->start_tsc) * 1000 / r->tsc_hz) + 1;
}

/* the handshake's answer of the host on side to flow (| PG_ECHO_SYNACK or PG_ECHO_ACK),
 * due twice its one-way delay after now */
static inline void
hs_queue(struct pg_run *r, unsigned int side, uint32_t flow, const struct pg_flow *f, uint64_t now)
{
	struct pg_echo_q *q = r->echo_q[side][f->rtt_cls];

	if (q->tail - q->head == PG_ECHO_Q) {
		r->echo_dropped++;
		return;
	}
	q->e[q->tail & (PG_ECHO_Q - 1)] =
		(struct pg_echo){.flow = flow, .due = now + r->echo_delay_tsc[side][f->rtt_cls]};
	q->tail++;
}

/* a new TSval arrived on side: the host there echoes it after twice its one-way delay */
static inline void
echo_queue(struct pg_run *r, unsigned int side, uint32_t idx, const struct pg_flow *f,
	   struct pg_rxf *x, uint32_t tsval, uint64_t now)
{
	struct pg_echo_q *q = r->echo_q[side][f->rtt_cls];

	x->echoed = tsval;
	if (q->tail - q->head == PG_ECHO_Q) {
		r->echo_dropped++;
		return;
	}
	q->e[q->tail & (PG_ECHO_Q - 1)] = (struct pg_echo){
		.flow = idx, .tsecr = tsval, .due = now + r->echo_delay_tsc[side][f->rtt_cls]};
	q->tail++;
}

static void
rx_burst(struct pg_run *r, unsigned int side, struct rte_mbuf **pkts, uint16_t n, uint64_t now)
{
	/* the echoes' clock: read after the burst arrived (now, read before polling, may be
	 * older than the forwarder's timestamp of these frames when this lcore was
	 * descheduled in between: an echo due from it would come back early) */
	const uint64_t t_rx = rte_rdtsc();
	struct pg_rx_hit hit[PG_BURST];
	uint32_t idx[PG_BURST];
	uint8_t ok[PG_BURST];
	for (uint16_t i = 0; i < n; i++) {
		ok[i] = pg_pkt_parse(pkts[i], r->magic, &hit[i]) == 0;
		idx[i] = hit[i].fw & PG_FW_FLOW_MASK;
		if (ok[i] && hit[i].ctl) {
			ok[i] = 0;
			if (idx[i] >= r->n_flows ||
			    pg_flow_word(idx[i], &r->flows[idx[i]]) != hit[i].fw ||
			    r->flows[idx[i]].ts != PG_TS_HANDSHAKE) {
				r->rx_invalid++;
				continue;
			}
			r->hs_rx[hit[i].ctl]++;
			/* the server answers a SYN, the terminal a SYN-ACK (once: a SYN-ACK for a
			 * connection already open is a late copy) */
			if (hit[i].ctl == PG_CTL_SYN && side == 1)
				hs_queue(r, 1, idx[i] | PG_ECHO_SYNACK, &r->flows[idx[i]], t_rx);
			else if (hit[i].ctl == PG_CTL_SYNACK && side == 0 &&
				 r->flows[idx[i]].hs == PG_HS_SYN_SENT)
				hs_queue(r, 0, idx[i] | PG_ECHO_ACK, &r->flows[idx[i]], t_rx);
			continue;
		}
		if (ok[i] && hit[i].echo) {
			/* an echo sent from the other side: it went through skygate, that is
			 * all it is for */
			ok[i] = 0;
			if (idx[i] < r->n_flows &&
			    (pg_flow_word(idx[i], &r->flows[idx[i]]) | PG_FW_ECHO) == hit[i].fw)
				r->rx_echo++;
			else
				r->rx_invalid++;
			continue;
		}
		if (!ok[i] || idx[i] >= r->n_flows ||
		    pg_flow_word(idx[i], &r->flows[idx[i]]) != hit[i].fw) {
			ok[i] = 0;
			r->rx_invalid++;
			continue;
		}
		/* upstream is sent on side 0 and must arrive on side 1 */
		if (r->flows[idx[i]].dir == side) {
			ok[i] = 0;
			r->rx_wrong_port++;
			continue;
		}
		rte_prefetch0(&r->rxf[idx[i]]);
	}
	for (uint16_t i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		const struct pg_flow *f = &r->flows[idx[i]];
		struct pg_rxf *x = &r->rxf[idx[i]];
		uint32_t bytes = rte_pktmbuf_pkt_len(pkts[i]) + PG_FCS;
		uint64_t lat = (now - hit[i].tsc) & ((1ull << 48) - 1);
		uint64_t gap0 = x->sq.gap;
		pg_seq_update(&x->sq, f->ts ? hit[i].seq >> PG_TS_SEQ_SHIFT : hit[i].seq);
		struct pg_dir_ctr *c = &r->ctr[f->dir];
		c->rx_pkts++;
		c->rx_bytes += bytes;
		c->gap += x->sq.gap - gap0; /* modulo 2^64: a filled gap subtracts */
		x->rx_bytes += bytes;
		x->lat_sum += lat;
		if (lat > x->lat_max)
			x->lat_max = lat;
		r->hist[f->cls][f->dir][pg_hist_bucket(lat)]++;
		if (unlikely(idx[i] == r->probe_idx)) {
			r->probe_hist[pg_hist_bucket(lat)]++;
			if (lat > r->probe_max)
				r->probe_max = lat;
		}
		if (lat > r->lat_max[f->cls][f->dir])
			r->lat_max[f->cls][f->dir] = lat;
		if (f->ts == PG_TS_OPTION && hit[i].tsval != x->echoed)
			echo_queue(r, side, idx[i], f, x, hit[i].tsval, t_rx);
	}
}

static void
pcap_burst(struct pg_run *r, unsigned int side, struct rte_mbuf **pkts, uint16_t n, uint64_t now)
{
	struct rte_mbuf *cp[PG_BURST];
	uint16_t k = 0;
	for (uint16_t i = 0; i < n; i++) {
		cp[k] = rte_pcapng_copy(r->o->port[side], 0, pkts[i], r->pcap_pool, UINT32_MAX, now,
					RTE_PCAPNG_DIRECTION_IN);
		if (cp[k])
			k++;
	}
	if (k) {
		/* 22.11 does not free the copies, whatever its header says (dumpcap frees too) */
		rte_pcapng_write_packets(r->pcapng, cp, k);
		rte_pktmbuf_free_bulk(cp, k);
	}
}

static void
sample(struct pg_run *r, uint64_t now)
{
	if (r->n_samples == r->max_samples)
		return;
	struct pg_sample *s = &r->samples[r->n_samples++];
	s->t = (double)(now - r->start_tsc) / (double)r->tsc_hz;
	for (int d = 0; d < 2; d++) {
		const struct pg_dir_ctr *c = &r->ctr[d];
		s->tx_pkts[d] = __atomic_load_n(&c->tx_pkts, __ATOMIC_RELAXED);
		s->tx_bytes[d] = __atomic_load_n(&c->tx_bytes, __ATOMIC_RELAXED);
		s->rx_pkts[d] = __atomic_load_n(&c->rx_pkts, __ATOMIC_RELAXED);
		s->rx_bytes[d] = __atomic_load_n(&c->rx_bytes, __ATOMIC_RELAXED);
		s->gap[d] = __atomic_load_n(&c->gap, __ATOMIC_RELAXED);
	}
	if (!r->o->quiet) {
		const struct pg_sample *a = &r->last;
		double dt = s->t - a->t;
		if (dt <= 0)
			dt = 1;
		fprintf(stderr, "%6.1fs", s->t);
		static const char *dn[2] = {"up", "down"};
		for (int d = 0; d < 2; d++)
			fprintf(stderr, "  %s tx %.0f pps %.1f Mbit/s rx %.0f pps %.1f Mbit/s",
				dn[d], (double)(s->tx_pkts[d] - a->tx_pkts[d]) / dt,
				(double)(s->tx_bytes[d] - a->tx_bytes[d]) * 8e-6 / dt,
				(double)(s->rx_pkts[d] - a->rx_pkts[d]) / dt,
				(double)(s->rx_bytes[d] - a->rx_bytes[d]) * 8e-6 / dt);
		fprintf(stderr, "  lost so far %" PRIu64 "\n", s->gap[0] + s->gap[1]);
	}
	r->last = *s;
}

/* room for a burst of data segments, their retransmitted copies and a burst of echoes */
#define PG_TXQ (3 * PG_BURST)
#define PG_TXQ_RETRANS 0x80000000u /* flow[] of a retransmitted copy */
#define PG_TXQ_ECHO 0x40000000u	   /* flow[] of an echo */

struct txq {
	struct rte_mbuf *m[PG_TXQ];
	uint16_t n, off;
	uint64_t bytes[PG_TXQ];
	uint32_t flow[PG_TXQ];
};

static inline void
tx_flush(struct pg_run *r, unsigned int side, struct txq *q)
{
	if (q->n == q->off)
		return;
	uint16_t sent = rte_eth_tx_burst(r->o->port[side], 0, q->m + q->off, q->n - q->off);
	struct pg_dir_ctr *c = &r->ctr[side];
	for (uint16_t i = q->off; i < q->off + sent; i++) {
		if (unlikely(q->flow[i] & (PG_TXQ_RETRANS | PG_TXQ_ECHO))) {
			/* not data of the run: counted apart */
			if (q->flow[i] & PG_TXQ_RETRANS)
				r->tx_retrans[side]++;
			else
				r->echo_sent[side]++;
			continue;
		}
		struct pg_flow *f = &r->flows[q->flow[i]];
		f->tx_pkts++;
		f->tx_bytes += q->bytes[i];
		c->tx_bytes += q->bytes[i];
		c->tx_pkts++;
	}
	q->off += sent;
	if (q->off == q->n)
		q->n = q->off = 0;
}

/* the echoes that are due, into the TX queue of the side that answers (at most a burst) */
static void
echo_send(struct pg_run *r, struct txq *tq, unsigned int side, uint64_t now)
{
	for (unsigned int k = 0; k < r->o->rtt.n; k++) {
		struct pg_echo_q *q = r->echo_q[side][k];

		while (q->head != q->tail && q->e[q->head & (PG_ECHO_Q - 1)].due <= now &&
		       tq->n < PG_TXQ && tq->n - tq->off < PG_BURST) {
			const struct pg_echo *e = &q->e[q->head & (PG_ECHO_Q - 1)];
			const uint32_t idx = e->flow & PG_FW_FLOW_MASK;
			struct pg_flow *f = &r->flows[idx];
			const uint32_t fw = pg_flow_word(idx, f);
			struct rte_mbuf *m = rte_pktmbuf_alloc(r->tx_pool);
			uint16_t len;

			if (m == NULL)
				return;
			if (e->flow & PG_ECHO_SYNACK) {
				len = pg_pkt_build_ctl(
					m, idx, f, false, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, ~fw,
					fw + 1, r->magic, (const uint8_t(*)[6])r->mac, false, 0, 0);
				r->hs_sent[PG_CTL_SYNACK]++;
			} else if (e->flow & PG_ECHO_ACK) {
				len = pg_pkt_build_ctl(m, idx, f, true, RTE_TCP_ACK_FLAG, fw + 1,
						       ~fw + 1, r->magic,
						       (const uint8_t(*)[6])r->mac, false, 0, 0);
				r->hs_sent[PG_CTL_ACK]++;
				f->hs = PG_HS_DONE; /* the terminal sends data from now on */
			} else {
				len = pg_pkt_build_echo(m, idx, f, r->magic,
							(const uint8_t(*)[6])r->mac,
							ts_clock(r, now), e->tsecr);
			}
			tq->flow[tq->n] = idx | PG_TXQ_ECHO;
			tq->bytes[tq->n] = len + PG_FCS;
			tq->m[tq->n++] = m;
			q->head++;
		}
	}
}

/* --rtt-retrans: a copy of the segment just built (same sequence number and TSval: the
 * gateway and the receiver have seen that TSval already, so it moves no RTT sample) */
static void
retrans_copy(struct pg_run *r, struct txq *tq, uint32_t idx, struct pg_flow *f, uint16_t frame,
	     uint64_t tsc)
{
	struct rte_mbuf *m;
	uint16_t len;

	r->retrans_acc[f->dir] += r->o->rtt.retrans / (1.0 - r->o->rtt.retrans);
	if (r->retrans_acc[f->dir] < 1.0 || tq->n == PG_TXQ ||
	    (m = rte_pktmbuf_alloc(r->tx_pool)) == NULL)
		return;
	r->retrans_acc[f->dir] -= 1.0;
	f->seq--;
	len = pg_pkt_build_ts(m, idx, f, frame, tsc, r->magic, (const uint8_t(*)[6])r->mac,
			      f->seq + 1);
	f->seq++;
	tq->flow[tq->n] = idx | PG_TXQ_RETRANS;
	tq->bytes[tq->n] = len + PG_FCS;
	tq->m[tq->n++] = m;
}

/* how long a connection of flow idx lasts: 1 to 1.5 s, so that the flows do not open their
 * connections in step (each handshake is then a sample apart from the others) */
static inline uint32_t
hs_life_ms(uint32_t idx)
{
	return PG_HS_RECONNECT_MS + idx * 37 % (PG_HS_RECONNECT_MS / 2);
}

/*
 * --rtt-handshake: a connection not open yet, or open for hs_life_ms() (the flow then
 * opens a new one on the same ports: short connections, one pair of samples each). Its
 * turn sends the terminal's SYN (the SYN again after 3 s without an answer: lost, or
 * dropped by a full queue); while it waits the flow sends nothing. m is used or freed.
 */
static void
handshake_open(struct pg_run *r, struct txq *tq, uint32_t idx, struct pg_flow *f,
	       struct rte_mbuf *m, uint64_t tsc)
{
	struct pg_rxf *x = &r->rxf[idx];
	uint32_t ms = ts_clock(r, tsc);
	uint16_t len;

	if ((f->hs == PG_HS_SYN_SENT && ms - x->syn_ms < 3000) ||
	    (f->hs == PG_HS_DONE && ms - x->syn_ms < hs_life_ms(idx)) || tq->n == PG_TXQ) {
		rte_pktmbuf_free(m);
		return;
	}
	len = pg_pkt_build_ctl(m, idx, f, true, RTE_TCP_SYN_FLAG, pg_flow_word(idx, f), 0, r->magic,
			       (const uint8_t(*)[6])r->mac, false, 0, 0);
	f->hs = PG_HS_SYN_SENT;
	x->syn_ms = ms;
	r->hs_sent[PG_CTL_SYN]++;
	tq->flow[tq->n] = idx | PG_TXQ_ECHO;
	tq->bytes[tq->n] = len + PG_FCS;
	tq->m[tq->n++] = m;
}

/* the probe's next packet, paced by its own clock (never more than one per call) */
static void
probe_send(struct pg_run *r, struct txq *tq, uint64_t now)
{
	struct pg_flow *f = &r->flows[r->probe_idx];
	struct rte_mbuf *m;
	uint16_t frame = (uint16_t)(r->o->probe_size - PG_FCS), len;

	r->probe_next = (r->probe_next ? r->probe_next : now) +
			(uint64_t)((double)r->tsc_hz / r->o->probe_pps);
	if (r->probe_next < now)
		r->probe_next = now; /* after a stall: no catch-up burst */
	if (tq->n == PG_BURST || (m = rte_pktmbuf_alloc(r->tx_pool)) == NULL)
		return;
	if (frame < f->min_len)
		frame = f->min_len;
	len = pg_pkt_build(m, r->probe_idx, f, frame, rte_rdtsc(), r->magic,
			   (const uint8_t(*)[6])r->mac);
	f->seq++;
	tq->flow[tq->n] = r->probe_idx;
	tq->bytes[tq->n] = len + PG_FCS;
	tq->m[tq->n++] = m;
}

static int
loop(void *arg)
{
	struct pg_run *r = arg;
	struct pg_opts *o = r->o;
	const bool ticking = rte_lcore_id() == rte_get_main_lcore();
	const uint64_t hz = r->tsc_hz;
	struct txq q[2] = {0};
	struct rte_mbuf *rx[PG_BURST], *mb[PG_BURST];
	uint32_t cursor = 0, size_i = 0;
	const unsigned int burst = o->burst;
	/*
	 * token bucket: packets or bits, refilled from the TSC once per burst. The cap (10 ms
	 * of traffic, at least two bursts) bounds the catch-up after the lcore was descheduled
	 * (the VM's CPUs are shared), so the average rate holds without long line-rate bursts.
	 */
	double tokens = 0, per_tsc = 0, cap = 0;
	double rate = o->rate.value;
	enum pg_rate_unit unit = o->rate.unit;
	if (o->sub_rate.unit != PG_RATE_NONE) {
		unit = o->sub_rate.unit;
		rate = o->sub_rate.value * r->subs.n * (o->direction == 2 ? 2 : 1);
	}
	if (unit != PG_RATE_NONE) {
		per_tsc = rate / (double)hz;
		cap = rate / 100;
		double min_cap = unit == PG_RATE_PPS ? 2.0 * burst : 2.0 * burst * PG_MAX_FRAME * 8;
		if (cap < min_cap)
			cap = min_cap;
	}
	uint64_t now = rte_rdtsc(), last = now, next_tick = now + hz;
	r->start_tsc = now;
	r->end_tx_tsc = now + (uint64_t)(o->duration_s * (double)hz);
	r->end_tsc = r->end_tx_tsc + (uint64_t)o->drain_ms * hz / 1000;
	bool sending = true;

	for (;;) {
		now = rte_rdtsc();
		for (unsigned int side = 0; side < 2; side++) {
			uint16_t n = rte_eth_rx_burst(o->port[side], 0, rx, PG_BURST);
			if (n == 0)
				continue;
			rx_burst(r, side, rx, n, now);
			if (unlikely(r->pcapng != NULL))
				pcap_burst(r, side, rx, n, now);
			rte_pktmbuf_free_bulk(rx, n);
		}
		if (unlikely(ticking && now >= next_tick)) {
			sample(r, now);
			next_tick += hz;
		}
		if (unlikely(sending && (now >= r->end_tx_tsc || stop_flag || finish_flag))) {
			sending = false;
			r->end_tx_tsc = now;
			/* stopped by a signal: no drain, the peer may be leaving too */
			r->end_tsc = stop_flag ? now : now + (uint64_t)o->drain_ms * hz / 1000;
		}
		if (unlikely(stop_flag) && !sending && now < r->end_tsc)
			r->end_tsc = now;
		if (o->rtt.n > 0) {
			echo_send(r, &q[0], 0, now);
			echo_send(r, &q[1], 1, now);
		}
		if (!sending) {
			if (now >= r->end_tsc)
				break;
			tx_flush(r, 0, &q[0]);
			tx_flush(r, 1, &q[1]);
			continue;
		}
		if (unlikely(r->probe_idx != UINT32_MAX && now >= r->probe_next))
			probe_send(r, &q[PG_DOWN], now);
		if (q[0].n || q[1].n) {
			tx_flush(r, 0, &q[0]);
			tx_flush(r, 1, &q[1]);
			if (q[0].n || q[1].n)
				continue;
		}
		unsigned int n = burst;
		if (unit != PG_RATE_NONE) {
			tokens += (double)(now - last) * per_tsc;
			last = now;
			if (tokens > cap)
				tokens = cap;
			if (unit == PG_RATE_PPS) {
				if (tokens < n)
					n = (unsigned int)tokens;
				tokens -= n;
			} else {
				/* the frames this burst will carry: next flows, next sizes */
				double t = tokens;
				unsigned int k = 0;
				uint32_t c = cursor;
				while (k < n) {
					uint16_t fr =
						r->size_tab[(size_i + k) & (PG_SIZE_TAB - 1)] -
						PG_FCS;
					uint16_t ml = r->flows[c].min_len;
					double bits = ((fr > ml ? fr : ml) + PG_FCS) * 8.0;
					if (t < bits)
						break;
					c = c + 1 == r->n_tx_flows ? 0 : c + 1;
					t -= bits;
					k++;
				}
				n = k;
				tokens = t;
			}
			if (n == 0)
				continue;
		}
		if (rte_pktmbuf_alloc_bulk(r->tx_pool, mb, n) != 0)
			continue;
		uint64_t tsc = rte_rdtsc();
		for (unsigned int i = 0; i < n; i++) {
			uint32_t idx = cursor;
			cursor = cursor + 1 == r->n_tx_flows ? 0 : cursor + 1;
			struct pg_flow *f = &r->flows[idx];
			if (unlikely(f->ts == PG_TS_HANDSHAKE) &&
			    (f->hs != PG_HS_DONE ||
			     ts_clock(r, tsc) - r->rxf[idx].syn_ms >= hs_life_ms(idx))) {
				handshake_open(r, &q[0], idx, f, mb[i], tsc);
				continue;
			}
			uint16_t frame = r->size_tab[size_i++ & (PG_SIZE_TAB - 1)] - PG_FCS;
			uint16_t len = pg_pkt_build_ts(mb[i], idx, f, frame, tsc, r->magic,
						       (const uint8_t(*)[6])r->mac,
						       f->ts ? f->seq + 1 : 0);
			f->seq++;
			struct txq *tq = &q[f->dir];
			tq->flow[tq->n] = idx;
			tq->bytes[tq->n] = len + PG_FCS;
			tq->m[tq->n++] = mb[i];
			if (f->ts && o->rtt.retrans > 0)
				retrans_copy(r, tq, idx, f, frame, tsc);
		}
		tx_flush(r, 0, &q[0]);
		tx_flush(r, 1, &q[1]);
	}
	/* what never got on the wire is not counted as sent */
	for (unsigned int side = 0; side < 2; side++)
		if (q[side].n > q[side].off) {
			r->tx_pending_dropped += q[side].n - q[side].off;
			rte_pktmbuf_free_bulk(q[side].m + q[side].off, q[side].n - q[side].off);
		}
	if (ticking)
		sample(r, now);
	r->elapsed_s = (double)(r->end_tx_tsc - r->start_tsc) / (double)hz;
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return 0;
}

/* ---------------- ports ---------------- */

static int
port_setup(struct pg_run *r, unsigned int side)
{
	uint16_t port = r->o->port[side];
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf = {0};
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc)
		goto fail;
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	rc = rte_eth_dev_configure(port, 1, 1, &conf);
	if (rc)
		goto fail;
	uint16_t nrx = RING_DESC, ntx = RING_DESC;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
	if (rc)
		goto fail;
	int sock = rte_eth_dev_socket_id(port);
	rc = rte_eth_rx_queue_setup(port, 0, nrx, sock < 0 ? 0 : (unsigned int)sock, NULL,
				    r->rx_pool);
	if (rc)
		goto fail;
	struct rte_eth_txconf txc = info.default_txconf;
	txc.offloads = conf.txmode.offloads;
	rc = rte_eth_tx_queue_setup(port, 0, ntx, sock < 0 ? 0 : (unsigned int)sock, &txc);
	if (rc)
		goto fail;
	/* a memif client cannot start before its server listens: retry within --wait-link */
	uint64_t deadline =
		rte_get_timer_cycles() + (uint64_t)(r->o->wait_link_s * (double)rte_get_timer_hz());
	while ((rc = rte_eth_dev_start(port)) != 0 && rte_get_timer_cycles() < deadline &&
	       !stop_flag)
		usleep(100 * 1000);
	if (rc)
		goto fail;
	rte_eth_promiscuous_enable(port); /* not every PMD has it; harmless when refused */
	struct rte_ether_addr a;
	if (rte_eth_macaddr_get(port, &a) == 0)
		memcpy(r->mac[side], a.addr_bytes, 6);
	return 0;
fail:
	fprintf(stderr, "skygate-pktgen: port %u: setup failed: %s\n", port, rte_strerror(-rc));
	return -1;
}

static int
wait_links(struct pg_run *r)
{
	uint64_t deadline =
		rte_get_timer_cycles() + (uint64_t)(r->o->wait_link_s * (double)rte_get_timer_hz());
	for (;;) {
		int up = 0;
		for (unsigned int side = 0; side < 2; side++) {
			struct rte_eth_link l;
			if (rte_eth_link_get_nowait(r->o->port[side], &l) == 0 && l.link_status)
				up++;
		}
		if (up == 2)
			return 0;
		if (rte_get_timer_cycles() >= deadline || stop_flag)
			break;
		usleep(50 * 1000);
	}
	for (unsigned int side = 0; side < 2; side++) {
		struct rte_eth_link l;
		if (rte_eth_link_get_nowait(r->o->port[side], &l) != 0 || !l.link_status)
			fprintf(stderr,
				"skygate-pktgen: port %u (%s side) link down after %.1f s "
				"(--wait-link)\n",
				r->o->port[side], side ? "internet" : "terminal",
				r->o->wait_link_s);
	}
	return -1;
}

/* clear every TX mbuf's data room once, so payload bytes past the header are zero */
static void
zero_pool(struct rte_mempool *mp)
{
	static struct rte_mbuf *all[POOL_MBUFS];
	unsigned int n = 0;
	while (n < POOL_MBUFS && (all[n] = rte_pktmbuf_alloc(mp)) != NULL) {
		memset(rte_pktmbuf_mtod(all[n], void *), 0,
		       rte_pktmbuf_data_room_size(mp) - RTE_PKTMBUF_HEADROOM);
		n++;
	}
	rte_pktmbuf_free_bulk(all, n);
}

static int
open_pcap(struct pg_run *r)
{
	int fd = open(r->o->pcap_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "skygate-pktgen: --pcap-out %s: %s\n", r->o->pcap_out,
			strerror(errno));
		return -1;
	}
	struct utsname u;
	uname(&u);
	char os[200];
	snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
	r->pcapng = rte_pcapng_fdopen(fd, os, NULL, "skygate-pktgen", NULL);
	r->pcap_pool = rte_pktmbuf_pool_create("pg_pcap", 2047, 64, 0,
					       rte_pcapng_mbuf_size(RTE_MBUF_DEFAULT_DATAROOM),
					       rte_socket_id());
	if (r->pcapng == NULL || r->pcap_pool == NULL) {
		fprintf(stderr, "skygate-pktgen: --pcap-out: cannot open a pcapng writer\n");
		close(fd);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	/* our options are after "--"; without "--" there are no EAL options */
	int split = -1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			split = i;
			break;
		}
	int eal_argc = split < 0 ? 1 : split;
	char **own = split < 0 ? argv : argv + split;
	int own_argc = split < 0 ? argc : argc - split;
	if (split >= 0)
		own[0] = argv[0];

	static struct pg_opts opts;
	if (parse_opts(own_argc, own, &opts))
		return 1;
	struct pg_run run = {.o = &opts};
	struct pg_run *r = &run;

	if (opts.write_csv) {
		char err[256];
		if (load_subs(&opts, &r->subs))
			return 1;
		if (pg_subs_write_csv(&r->subs, opts.write_csv, err, sizeof(err))) {
			fprintf(stderr, "skygate-pktgen: %s\n", err);
			return 1;
		}
		if (strcmp(opts.write_csv, "-") != 0)
			fprintf(stderr, "skygate-pktgen: wrote %u subscribers to %s\n", r->subs.n,
				opts.write_csv);
		pg_subs_free(&r->subs);
		return 0;
	}

	/* before the EAL: a signal at any moment only sets the stop flag, which every
	 * set-up step and the lcores check */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	int rc = rte_eal_init(eal_argc, argv);
	if (rc < 0) {
		fprintf(stderr, "skygate-pktgen: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	int ret = 1;
	bool started = false; /* the lcores ran: a report follows */
	r->tsc_hz = rte_get_tsc_hz();

	char err[256];
	if (load_subs(&opts, &r->subs))
		goto out;
	r->pools = pg_geo_pools(opts.db_path, &opts.remote, opts.pool_per_country, opts.seed, err,
				sizeof(err));
	if (r->pools == NULL) {
		fprintf(stderr, "skygate-pktgen: %s\n", err);
		goto out;
	}
	if (build_flows(r))
		goto out;
	r->size_tab = rte_malloc("pg_sizes", PG_SIZE_TAB * sizeof(uint16_t), 64);
	r->hist = rte_zmalloc("pg_hist", sizeof(*r->hist) * PG_MAX_CLASSES, 64);
	r->max_samples = (unsigned int)opts.duration_s + opts.drain_ms / 1000 + 16;
	r->samples = calloc(r->max_samples, sizeof(*r->samples));
	if (!r->size_tab || !r->hist || !r->samples) {
		fprintf(stderr, "skygate-pktgen: out of memory\n");
		goto out;
	}
	pg_size_table(&opts.size, r->size_tab, PG_SIZE_TAB, opts.seed);
	for (unsigned int side = 0; side < 2; side++)
		for (unsigned int k = 0; k < opts.rtt.n; k++) {
			uint64_t one_way = side == 0 ? opts.rtt.sat_us[k] : opts.rtt.inet_us[k];

			r->echo_q[side][k] = rte_zmalloc("pg_echo", sizeof(struct pg_echo_q), 64);
			if (r->echo_q[side][k] == NULL) {
				fprintf(stderr, "skygate-pktgen: out of memory for echo queues\n");
				goto out;
			}
			r->echo_delay_tsc[side][k] = 2 * one_way * r->tsc_hz / 1000000;
		}
	for (unsigned int k = 1; k < opts.rtt.n; k++) {
		unsigned int b;

		for (b = 0; b < r->subs.n_beams; b++)
			if (strcmp(r->subs.beams[b], opts.rtt.beam[k]) == 0)
				break;
		if (b == r->subs.n_beams)
			fprintf(stderr,
				"skygate-pktgen: --rtt-emulate: no subscriber is on beam '%s'\n",
				opts.rtt.beam[k]);
	}
	uint64_t st = opts.seed ^ (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	do
		r->magic = (uint16_t)pg_rand(&st);
	while (r->magic == 0);

	if (rte_eth_dev_count_avail() < 2 || !rte_eth_dev_is_valid_port(opts.port[0]) ||
	    !rte_eth_dev_is_valid_port(opts.port[1])) {
		fprintf(stderr,
			"skygate-pktgen: need ports %u and %u (have %u); give two "
			"--vdev= or NICs\n",
			opts.port[0], opts.port[1], rte_eth_dev_count_avail());
		goto out;
	}
	r->tx_pool = rte_pktmbuf_pool_create("pg_tx", POOL_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					     rte_socket_id());
	r->rx_pool = rte_pktmbuf_pool_create("pg_rx", POOL_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					     rte_socket_id());
	if (!r->tx_pool || !r->rx_pool) {
		fprintf(stderr, "skygate-pktgen: mbuf pools: %s\n", rte_strerror(rte_errno));
		goto out;
	}
	zero_pool(r->tx_pool);
	if (port_setup(r, 0) || port_setup(r, 1))
		goto out;
	if (opts.pcap_out && open_pcap(r))
		goto out;
	if (wait_links(r))
		goto out;
	/* clear what arrived before the start (a forwarder's leftovers); bounded, as some
	 * ports (net_null) never run dry */
	for (unsigned int side = 0; side < 2; side++) {
		struct rte_mbuf *rx[PG_BURST];
		uint16_t n;
		for (unsigned int k = 0;
		     k < 1024 && (n = rte_eth_rx_burst(opts.port[side], 0, rx, PG_BURST)) > 0; k++)
			rte_pktmbuf_free_bulk(rx, n);
	}
	if (stop_flag)
		goto out;
	started = true;
	if (!opts.quiet)
		fprintf(stderr,
			"skygate-pktgen: %u subscribers, %u flows, %u remote countries, "
			"sending %.1f s\n",
			r->subs.n, r->n_flows, opts.remote.n, opts.duration_s);

	unsigned int worker = rte_get_next_lcore(-1, 1, 0);
	if (worker < RTE_MAX_LCORE) {
		/* the poller runs on the worker lcore; the main lcore sleeps and samples */
		rte_eal_remote_launch(loop, r, worker);
		while (__atomic_load_n(&r->start_tsc, __ATOMIC_ACQUIRE) == 0)
			usleep(1000);
		uint64_t next = r->start_tsc + r->tsc_hz;
		while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
			usleep(20 * 1000);
			uint64_t now = rte_rdtsc();
			if (now >= next && !__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
				sample(r, now);
				next += r->tsc_hz;
			}
		}
		rte_eal_wait_lcore(worker);
		sample(r, rte_rdtsc());
	} else {
		loop(r);
	}

	if (opts.report && pg_report_write(r, opts.report))
		goto out;
	pg_report_summary(r);
	ret = 0;
	if (opts.max_loss >= 0) {
		uint64_t tx, lost;
		double ratio = pg_run_loss(r, &tx, &lost);
		if (tx == 0 || ratio > opts.max_loss) {
			fprintf(stderr,
				"skygate-pktgen: loss %.6f (%" PRIu64 " of %" PRIu64
				") exceeds --max-loss %g\n",
				ratio, lost, tx, opts.max_loss);
			ret = 3;
		}
	}
	if (opts.linger > 0) {
		/* idle and connected until the peer is done (or a signal): no lcore polls */
		uint64_t end = rte_rdtsc() + (uint64_t)(opts.linger * (double)r->tsc_hz);

		fflush(stdout);
		fflush(stderr);
		while (!stop_flag && rte_rdtsc() < end)
			usleep(50000);
	}
out:
	if (!started && stop_flag) {
		/* a signal during set-up is a request to stop, not a failure */
		fprintf(stderr, "skygate-pktgen: stopped by a signal before sending\n");
		ret = 0;
	}
	if (r->pcapng)
		rte_pcapng_close(r->pcapng);
	for (unsigned int side = 0; side < 2; side++)
		if (rte_eth_dev_is_valid_port(opts.port[side])) {
			rte_eth_dev_stop(opts.port[side]);
			rte_eth_dev_close(opts.port[side]);
		}
	rte_free(r->flows);
	rte_free(r->rxf);
	rte_free(r->size_tab);
	rte_free(r->hist);
	for (unsigned int side = 0; side < 2; side++)
		for (unsigned int k = 0; k < PG_RTT_MAX; k++)
			rte_free(r->echo_q[side][k]);
	free(r->finfo);
	free(r->samples);
	pg_geo_pools_free(r->pools, opts.remote.n);
	pg_subs_free(&r->subs);
	sky_eal_cleanup();
	return ret;
}
