/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The one set-up every unit test and benchmark shares (tests/common, linked as
 * sky_fixture_dep):
 *  - EAL start and stop: --no-huge, --no-pci, a unique --file-prefix (NAME-PID, so
 *    several build directories can run the same test at once), DPDK's own logs at error
 *    level, skygate's runtime (log type, TSC rate), an optional mbuf pool; the stop also
 *    removes the runtime directory the EAL leaves behind;
 *  - a temporary directory removed at exit, and files written into it;
 *  - the standard model: the plans, beams and classes several tests configure, and the
 *    standard subscribers (SKY_FX_SUBS_CSV), and a config loader;
 *  - a packet builder (Ethernet, 0-2 VLAN tags, IPv4 or IPv6, TCP/UDP/ICMP/other) into a
 *    buffer or an mbuf, and an mbuf holding given bytes;
 *  - small things the tests and benchmarks repeated: xorshift generators, clocks, qsort
 *    compares, a DPDK telemetry client.
 * Functions that can fail return 0 / a pointer, or -1 / NULL after printing why on
 * stderr: a test asserts on the result, a benchmark exits.
 */
#ifndef SKY_TEST_FIXTURE_H
#define SKY_TEST_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "skygate/meta.h"

struct rte_mbuf;
struct rte_mempool;
struct sky_cfg;
struct sky_cfg_err;

/* --- EAL ---------------------------------------------------------------------------------- */

/** What differs between the programs' EAL starts; zero fields take the default. */
struct sky_fx_eal {
	unsigned int mem_mb;	 /* -m: memory in MB (default 512) */
	const char *lcores;	 /* -l LIST (default: the EAL's, every CPU) */
	int telemetry;		 /* 1: keep DPDK telemetry (default --no-telemetry) */
	const char *skygate_log; /* skygate's log level, e.g. "warning" (default: info) */
	const char *extra;	 /* one more EAL argument (default none) */
	int huge;		 /* 1: 2 MB hugepages (--in-memory) when mem_mb of them are free
				  * and SKY_FX_NO_HUGE is unset (valgrind), else --no-huge (the
				  * default); sky_fx_huge tells which */
	unsigned int pool_mbufs; /* > 0: create sky_fx_pool with this many mbufs */
	unsigned int pool_cache; /* its per-lcore cache (default 0) */
	uint16_t pool_data_room; /* its data room (default RTE_MBUF_DEFAULT_BUF_SIZE) */
};

/** 1 when sky_fx_eal_start ran on hugepages (huge was asked and enough were free). */
extern int sky_fx_huge;

/** The pool sky_fx_eal_start created (pool_mbufs > 0), else NULL. */
extern struct rte_mempool *sky_fx_pool;

/**
 * Start the EAL for program name (also the file prefix's stem) and skygate's runtime
 * (sky_runtime_init). @return 0, or -1 (reason on stderr).
 */
int sky_fx_eal_start(const char *name, const struct sky_fx_eal *o);

/** Free the pool, rte_eal_cleanup(), remove the EAL's runtime directory. */
void sky_fx_eal_stop(void);

/**
 * A cmocka group that needs the EAL: set sky_fx_group, then
 * cmocka_run_group_tests(tests, sky_fx_group_setup, sky_fx_group_teardown).
 */
struct sky_fx_group {
	const char *name;
	struct sky_fx_eal eal;
};
extern struct sky_fx_group sky_fx_group;
int sky_fx_group_setup(void **state);	 /* sky_fx_eal_start(name, &eal) */
int sky_fx_group_teardown(void **state); /* sky_fx_eal_stop() */

/* --- files -------------------------------------------------------------------------------- */

/** A private directory under /tmp (made on first use, removed with its contents at exit). */
const char *sky_fx_tmpdir(void);

/**
 * Write text into sky_fx_tmpdir()/name. @return its path (valid for the next 7 calls), or
 * NULL (reason on stderr).
 */
const char *sky_fx_file(const char *name, const char *text);

/** sky_fx_file for len bytes that may hold NULs. */
const char *sky_fx_file_bytes(const char *name, const void *data, size_t len);

/** Remove path and everything below it (like rm -rf; a missing path is fine). */
void sky_fx_rm_rf(const char *path);

/* --- the standard model ------------------------------------------------------------------- */

#define SKY_FX_PLANS                                                                               \
	"plans:\n"                                                                                 \
	"  basic:   { down: 50Mbit, up: 5Mbit, burst: 256KB, weight: 1, class_weights: { "         \
	"realtime: 1, interactive: 4, bulk: 8, scavenger: 1 } }\n"                                 \
	"  premium: { down: 200Mbit, up: 20Mbit, down_burst: 1MB, up_burst: 128KB }\n"

#define SKY_FX_BEAMS                                                                               \
	"beams:\n"                                                                                 \
	"  beam1: { down: 1Gbit, up: 200Mbit }\n"                                                  \
	"  beam2: { down: 500Mbit, up: 100Mbit }\n"

/* the four classes of the brief, in this order: realtime 0, interactive 1, bulk 2 (the
 * default), scavenger 3 */
#define SKY_FX_CLASSES                                                                             \
	"classes:\n"                                                                               \
	"  - { name: realtime, dscp: [46, 34], ports: [53, 5060, \"16384-32767\"], queue: "        \
	"64, aqm: { kind: red } }\n"                                                               \
	"  - { name: interactive, protocol: [tcp], ports: [22, 80, 443], prefixes: "               \
	"[\"198.51.100.0/24\", \"2001:db8::/32\"] }\n"                                             \
	"  - { name: bulk, default: true }\n"                                                      \
	"  - { name: scavenger, dscp: [8], match: [ { protocol: [udp], ports: "                    \
	"[\"6881-6889\"] } ] }\n"

#define SKY_FX_MODEL SKY_FX_PLANS SKY_FX_BEAMS SKY_FX_CLASSES

/* the smallest model, for tests that bring their own classes: one plan, one beam */
#define SKY_FX_MODEL_MIN                                                                           \
	"plans: { basic: { down: 50Mbit, up: 5Mbit } }\n"                                          \
	"beams: { beam1: { down: 1Gbit, up: 200Mbit } }\n"

#define SKY_FX_CSV_HDR "id,ipv4,ipv6,plan,beam,country,realm\n"

/* the standard subscribers: exact addresses and prefixes, nested ones (3 inside 2), realms
 * (4, 5 and 6 share addresses with 1 in VLANs 100 and 200), an IPv6-only subscriber */
#define SKY_FX_SUBS_CSV                                                                            \
	SKY_FX_CSV_HDR "1,100.64.0.1,2001:db8:1000:100::/56,basic,beam1,DE,\n"                     \
		       "2,198.18.5.0/24,2001:db8:2000::/48,premium,beam2,NL,\n"                    \
		       "3,198.18.5.77,2001:db8:2000:77::/64,basic,beam1,FR,\n"                     \
		       "4,100.64.0.1,2001:db8:3000::/56,basic,beam2,TR,100\n"                      \
		       "5,100.64.0.1,,premium,beam1,JO,200\n"                                      \
		       "6,10.9.0.0/16,,basic,beam1,IT,100\n"                                       \
		       "7,,2001:db8:4000::1,premium,beam2,ES,\n"

/**
 * Load a configuration from text made with printf(fmt, ...), under the file name name
 * (which the error messages quote). @return the configuration, or NULL with err filled.
 */
struct sky_cfg *sky_fx_cfg(const char *name, struct sky_cfg_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** sky_fx_cfg with a va_list. */
struct sky_cfg *sky_fx_vcfg(const char *name, struct sky_cfg_err *err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* --- packets ------------------------------------------------------------------------------ */

/** A frame to build; zero fields take the default. */
struct sky_fx_pkt {
	uint8_t mac[12];	  /* destination, source (default zero) */
	uint8_t n_vlan;		  /* tags, 0..2 */
	uint16_t tpid[2];	  /* outer first (default 0x8100) */
	uint16_t tci[2];	  /* outer first */
	uint8_t l3;		  /* 4, 6, or 0: not IP (ethertype, then zero payload) */
	uint16_t ethertype;	  /* l3 == 0 only */
	uint8_t src[16], dst[16]; /* addresses, network order (IPv4: the first 4 bytes) */
	uint8_t tos;		  /* IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN) */
	uint16_t frag_off;	  /* IPv4 flags and fragment offset, host order (0x4000: DF) */
	uint8_t hbh;		  /* IPv6: 1 = an 8-byte hop-by-hop header before L4 */
	uint8_t proto;		  /* 6 TCP (data offset 5), 17 UDP (length set), 1 ICMP, ... */
	uint16_t sport, dport;	  /* the first four L4 bytes, whatever the protocol */
	uint32_t len;		  /* frame length; raised to the headers' length */
};

/** Where the builder put the headers. */
struct sky_fx_layout {
	uint32_t len;	 /* frame length */
	uint32_t l3_off; /* after the tags */
	uint32_t l4_off; /* 0 when not IP */
};

/**
 * Build the frame p describes into buf (cap bytes): IPv4 total length / IPv6 payload
 * length cover the frame, the IPv4 header checksum is valid, TTL / hop limit 64, the
 * payload is zero. @return its length (0 when cap is too small); layout if not NULL.
 */
uint32_t sky_fx_frame(uint8_t *buf, uint32_t cap, const struct sky_fx_pkt *p,
		      struct sky_fx_layout *layout);

/** The frame p describes in a fresh mbuf from mp; NULL when mp is empty or it is too long. */
struct rte_mbuf *sky_fx_mbuf(struct rte_mempool *mp, const struct sky_fx_pkt *p);

/** A fresh single-segment mbuf from mp holding len bytes of f; NULL when it does not fit. */
struct rte_mbuf *sky_fx_mbuf_bytes(struct rte_mempool *mp, const uint8_t *f, uint32_t len);

/**
 * Address text (dotted quad or IPv6) into a[16] (IPv4: first 4 bytes, rest zero).
 * @return 4 or 6, or 0 when it is neither.
 */
int sky_fx_addr(const char *text, uint8_t a[16]);

/* --- small things ------------------------------------------------------------------------- */

/** xorshift64 (13, 7, 17): the generator the tests and benchmarks seed by hand. */
static inline uint64_t
sky_fx_rand64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/** xorshift32 (13, 17, 5). */
static inline uint32_t
sky_fx_rand32(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

double sky_fx_now_s(void);			     /* CLOCK_MONOTONIC, seconds */
double sky_fx_cpu_s(void);			     /* this process's CPU time, seconds */
int sky_fx_cmp_u64(const void *a, const void *b);    /* qsort, ascending */
int sky_fx_cmp_double(const void *a, const void *b); /* qsort, ascending */

/**
 * Connect to this process's DPDK telemetry socket (the EAL started with telemetry = 1)
 * and read its greeting, as dpdk-telemetry.py does. @return the fd, or -1.
 */
/**
 * A whole file into memory, NUL-terminated (free() it); *len (when not NULL) its size.
 * @return the bytes, or NULL (missing, unreadable, short read; *len = 0).
 */
char *sky_fx_read_file(const char *path, size_t *len);

int sky_fx_telemetry_open(void);

/**
 * One telemetry request: open the socket (sky_fx_telemetry_open), send cmd (e.g.
 * "/skygate/geo"), read the reply into buf (NUL-terminated), close.
 * @return the reply's length (> 0), or -1 (the reason on stderr).
 */
ssize_t sky_fx_telemetry_query(const char *cmd, char *buf, size_t size);

#endif /* SKY_TEST_FIXTURE_H */
