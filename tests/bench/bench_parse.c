/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * parse benchmark: sky_parse_burst over a pool of 4096 real mbufs holding a realistic
 * mix, in bursts of SKY_BURST, timed with the TSC. Prints cycles/packet.
 *
 * Mix (fixed seed, shuffled): 60% IPv4 TCP, 20% IPv4 UDP, 15% IPv6 TCP/UDP, 5% other
 * (IPv4 ICMP, IPv6 with a hop-by-hop header, IPv4 first fragments, ARP); 60% untagged,
 * 30% one 802.1Q tag, 10% QinQ; frame sizes 60-1514 bytes (40% small, 40% full, 20% mid).
 *
 * The pool lives in memory backed by transparent huge pages where the kernel grants
 * them (madvise), as the daemon's pools live in hugepages: with EAL --no-huge every
 * mbuf would sit on its own 4 KiB page and the figure would mostly measure TLB misses.
 * A second line gives the same run on a plain EAL --no-huge pool for comparison.
 *
 *   bench_parse [passes]     (default 2000 passes over the 4096 packets)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <sys/mman.h>

#include "skygate/meta.h"
#include "skygate/parse.h"
#include "skygate/parse_inline.h"

#include "fixture.h"

#define N_PKTS 4096

enum kind { K_V4TCP, K_V4UDP, K_V6TCP, K_V6UDP, K_V4ICMP, K_V6HBH, K_V4FRAG, K_ARP, K_MAX };

static uint32_t seed = 0x5eed1234;

static uint32_t
rnd(void)
{
	return sky_fx_rand32(&seed);
}

/* build one frame of the given kind, tag count and size into b (1600 bytes); returns its
 * length. Random MACs, tags, TOS, addresses and ports. */
static uint32_t
build(uint8_t *b, enum kind k, unsigned int tags, uint32_t size)
{
	int v6 = k == K_V6TCP || k == K_V6UDP || k == K_V6HBH;
	struct sky_fx_pkt p = {
		.n_vlan = (uint8_t)tags,
		.l3 = k == K_ARP ? 0
		      : v6	 ? 6
				 : 4,
		.ethertype = 0x0806,
		.frag_off = k == K_V4FRAG ? 0x2000 : 0x4000,
		.hbh = k == K_V6HBH,
		.proto = (k == K_V4UDP || k == K_V6UDP || k == K_V4FRAG) ? 17
			 : k == K_V4ICMP				 ? 1
									 : 6,
		.len = size,
	};
	struct sky_fx_layout lay;
	uint32_t len;

	for (int i = 0; i < 12; i++)
		p.mac[i] = (uint8_t)rnd();
	for (unsigned int t = 0; t < tags; t++) {
		p.tpid[t] = tags == 2 && t == 0 ? 0x88a8 : 0x8100;
		p.tci[t] = (uint16_t)(rnd() & 0xfff);
	}
	if (k == K_ARP) {
		p.len = 60;
		len = sky_fx_frame(b, 1600, &p, &lay);
		memset(b + lay.l3_off, 1, 28);
		return len;
	}
	if (!v6) {
		p.tos = (uint8_t)(rnd() & 0xfc);
		for (int i = 0; i < 4; i++)
			p.src[i] = (uint8_t)rnd();
		for (int i = 0; i < 4; i++)
			p.dst[i] = (uint8_t)rnd();
	} else {
		for (int i = 0; i < 16; i++)
			p.src[i] = (uint8_t)rnd();
		for (int i = 0; i < 16; i++)
			p.dst[i] = (uint8_t)rnd();
	}
	p.sport = (uint16_t)rnd();
	p.dport = (uint16_t)rnd();
	return sky_fx_frame(b, 1600, &p, NULL);
}

static enum kind
pick_kind(void)
{
	uint32_t r = rnd() % 100;

	if (r < 60)
		return K_V4TCP;
	if (r < 80)
		return K_V4UDP;
	if (r < 88)
		return K_V6TCP;
	if (r < 95)
		return K_V6UDP;
	return (enum kind)(K_V4ICMP + rnd() % 4);
}

static uint32_t
pick_size(void)
{
	uint32_t r = rnd() % 100;

	if (r < 40)
		return 60 + rnd() % 20;
	if (r < 80)
		return 1514;
	return 200 + rnd() % 1000;
}

#define THP_SIZE (2u << 20)

/* an mbuf pool in THP-backed memory; NULL (and the reason printed) when not possible */
/* AnonHugePages of the mapping holding addr, in KiB (from /proc/self/smaps) */
static unsigned long
anon_huge_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	int in = 0;
	unsigned long kb = 0, lo, hi;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static struct rte_mempool *
pool_on_thp(const char *name, unsigned int n, void **area, size_t *area_len, unsigned long *thp_kb)
{
	struct rte_pktmbuf_pool_private priv = {
		.mbuf_data_room_size = RTE_MBUF_DEFAULT_BUF_SIZE,
		.mbuf_priv_size = 0,
	};
	struct rte_mempool *mp;
	size_t obj, len;
	uint8_t *mem, *base;
	int ret;

	mp = rte_mempool_create_empty(name, n, sizeof(struct rte_mbuf) + RTE_MBUF_DEFAULT_BUF_SIZE,
				      256, sizeof(priv), SOCKET_ID_ANY,
				      RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (mp == NULL)
		return NULL;
	if (rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL) != 0)
		goto fail;
	rte_pktmbuf_pool_init(mp, &priv);
	obj = mp->header_size + mp->elt_size + mp->trailer_size;
	len = RTE_ALIGN_CEIL(obj * (size_t)(n + 64), THP_SIZE);
	mem = mmap(NULL, len + THP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	if (mem == MAP_FAILED)
		goto fail;
	base = RTE_PTR_ALIGN_CEIL(mem, THP_SIZE);
	if (madvise(base, len, MADV_HUGEPAGE) != 0)
		printf("parse: madvise(MADV_HUGEPAGE) refused; pool on 4 KiB pages\n");
	memset(base, 0, len);
	*thp_kb = anon_huge_kb(base);
	/* one chunk, IOVA unknown: the bench never hands these to a device */
	ret = rte_mempool_populate_iova(mp, (char *)base, RTE_BAD_IOVA, len, NULL, NULL);
	if (ret < (int)n) {
		fprintf(stderr, "bench_parse: THP pool: %d of %u objects\n", ret, n);
		rte_mempool_free(mp);
		munmap(mem, len + THP_SIZE);
		return NULL;
	}
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	*area = mem;
	*area_len = len + THP_SIZE;
	return mp;
fail:
	rte_mempool_free(mp);
	return NULL;
}

/*
 * Time each pass over the packets separately and keep the median and the minimum: the
 * machine is shared, and a pass (tens of microseconds) that a context switch hit would
 * otherwise inflate the figure.
 */
static void
run(struct rte_mbuf **pkts, unsigned int n_pkts, unsigned int rounds, uint64_t *sink,
    double *median, double *best, double *p10)
{
	struct sky_meta meta[SKY_BURST];
	uint64_t *t = malloc(sizeof(*t) * rounds), acc = 0;

	if (t == NULL)
		abort();
	for (unsigned int r = 0; r < rounds; r++) {
		uint64_t t0 = rte_rdtsc_precise();

		for (unsigned int i = 0; i < n_pkts; i += SKY_BURST) {
			uint16_t n = (uint16_t)(n_pkts - i < SKY_BURST ? n_pkts - i : SKY_BURST);

			sky_parse_burst(pkts + i, meta, n, (uint8_t)(i & 1));
			acc += meta[n - 1].sport + meta[0].verdict + meta[n >> 1].l4_off;
		}
		t[r] = rte_rdtsc_precise() - t0;
	}
	qsort(t, rounds, sizeof(*t), sky_fx_cmp_u64);
	*median = (double)t[rounds / 2] / n_pkts;
	*best = (double)t[0] / n_pkts;
	*p10 = (double)t[rounds / 10] / n_pkts;
	*sink += acc;
	free(t);
}

struct mix {
	unsigned int count[K_MAX], tagged[3], drops;
};

/* fill n mbufs from mp with the mix (same seed every time, so both pools hold the same
 * frames), shuffled; returns 0 or -1 */
static int
fill(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned int n, struct mix *mx)
{
	uint8_t frame[1600];

	memset(mx, 0, sizeof(*mx));
	seed = 0x5eed1234;
	for (unsigned int i = 0; i < n; i++) {
		enum kind k = pick_kind();
		uint32_t r = rnd() % 10, tags = r < 6 ? 0 : r < 9 ? 1 : 2;
		uint32_t len = build(frame, k, tags, pick_size());

		pkts[i] = sky_fx_mbuf_bytes(mp, frame, len);
		if (pkts[i] == NULL)
			return -1;
		mx->count[k]++;
		mx->tagged[tags]++;
	}
	/* allocation order is pool order; shuffle so neighbours are unrelated buffers */
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = rnd() % (i + 1);
		struct rte_mbuf *t = pkts[i];

		pkts[i] = pkts[j];
		pkts[j] = t;
	}
	/* sanity: everything in the mix parses */
	for (unsigned int i = 0; i < n; i += SKY_BURST) {
		struct sky_meta meta[SKY_BURST];

		sky_parse_burst(pkts + i, meta, SKY_BURST, SKY_DIR_UP);
		for (unsigned int k = 0; k < SKY_BURST; k++)
			mx->drops += meta[k].verdict != SKY_V_PASS;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned int rounds = argc > 1 ? (unsigned int)atoi(argv[1]) : 2000;
	struct rte_mempool *mp, *mp_thp;
	static struct rte_mbuf *pkts[N_PKTS], *pkts_thp[N_PKTS], *pkts_hot[N_PKTS];
	struct mix mx;
	uint64_t sink = 0;
	double cyc, cyc_hot, best, best_hot, cyc_4k, best_4k, p10, p10_hot, p10_4k;
	const char *mem = "transparent huge pages";
	void *area = NULL;
	size_t area_len = 0;
	unsigned long thp_kb = 0;
	char mem_desc[96];

	if (rounds == 0)
		rounds = 1;
	if (sky_fx_eal_start("bench_parse", &(struct sky_fx_eal){.pool_mbufs = N_PKTS + 511,
								 .pool_cache = 256}) < 0)
		return 1;
	mp = sky_fx_pool;
	if (fill(mp, pkts, N_PKTS, &mx) != 0) {
		fprintf(stderr, "bench_parse: no mbuf pool\n");
		return 1;
	}
	mp_thp = pool_on_thp("bench_parse_thp", N_PKTS + 511, &area, &area_len, &thp_kb);
	if (mp_thp == NULL || fill(mp_thp, pkts_thp, N_PKTS, &mx) != 0) {
		mem = "4 KiB pages (no THP pool)";
		memcpy(pkts_thp, pkts, sizeof(pkts));
	} else {
		snprintf(mem_desc, sizeof(mem_desc), "transparent huge pages (%lu of %zu KiB)",
			 thp_kb, area_len >> 10);
		mem = mem_desc;
	}

	run(pkts_thp, N_PKTS, 20, &sink, &cyc, &best, &p10); /* warm up */
	run(pkts_thp, N_PKTS, rounds, &sink, &cyc, &best, &p10);
	/* the same 32 packets over and over: data and branch history hot */
	for (unsigned int i = 0; i < N_PKTS; i++)
		pkts_hot[i] = pkts_thp[i % SKY_BURST];
	run(pkts_hot, N_PKTS, rounds, &sink, &cyc_hot, &best_hot, &p10_hot);
	run(pkts, N_PKTS, 20, &sink, &cyc_4k, &best_4k, &p10_4k);
	run(pkts, N_PKTS, rounds, &sink, &cyc_4k, &best_4k, &p10_4k);

	printf("parse: %.1f cycles/packet (mix: %u IPv4 TCP, %u IPv4 UDP, %u IPv6 TCP, "
	       "%u IPv6 UDP, %u other; %u untagged, %u 1 tag, %u QinQ; 60-1514 B; %u mbufs on "
	       "%s, bursts of %u; median of %u passes, 10th percentile %.1f, best %.1f) = "
	       "%.1f Mpps per core at %.2f GHz\n",
	       cyc, mx.count[K_V4TCP], mx.count[K_V4UDP], mx.count[K_V6TCP], mx.count[K_V6UDP],
	       mx.count[K_V4ICMP] + mx.count[K_V6HBH] + mx.count[K_V4FRAG] + mx.count[K_ARP],
	       mx.tagged[0], mx.tagged[1], mx.tagged[2], N_PKTS, mem, SKY_BURST, rounds, p10, best,
	       (double)rte_get_tsc_hz() / cyc / 1e6, (double)rte_get_tsc_hz() / 1e9);
	printf("parse: %.1f cycles/packet for one burst of 32 hot in L1 (10th percentile %.1f, "
	       "best %.1f)\n",
	       cyc_hot, p10_hot, best_hot);
	printf("parse: %.1f cycles/packet on the plain EAL --no-huge pool, 4 KiB pages "
	       "(10th percentile %.1f, best %.1f)\n",
	       cyc_4k, p10_4k, best_4k);
	printf("parse: %u drops in the mix (expect 0), checksum %lu\n", mx.drops,
	       (unsigned long)sink);
	for (unsigned int i = 0; i < N_PKTS; i++) {
		rte_pktmbuf_free(pkts[i]);
		if (mp_thp != NULL)
			rte_pktmbuf_free(pkts_thp[i]);
	}
	rte_mempool_free(mp_thp);
	if (area != NULL)
		munmap(area, area_len);
	sky_fx_eal_stop(); /* frees mp, the fixture's pool */
	return mx.drops != 0;
}
