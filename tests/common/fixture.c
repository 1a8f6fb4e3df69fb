/* SPDX-License-Identifier: BSD-3-Clause */
/* The shared test set-up: see fixture.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "skygate/runtime.h"

#include "fixture.h"

struct rte_mempool *sky_fx_pool;
int sky_fx_huge;

static char tmp_dir[256];
static pid_t tmp_owner; /* a forked child that exits must not remove its parent's files */

/* --- EAL ---------------------------------------------------------------------------------- */

/* free 2 MB hugepages (HugePages_Free of /proc/meminfo when the page size is 2 MB), 0 if none */
static unsigned long
free_hugepages_2m(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long n = 0, kb = 0, v;
	char line[128];

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "HugePages_Free: %lu", &v) == 1)
			n = v;
		else if (sscanf(line, "Hugepagesize: %lu kB", &v) == 1)
			kb = v;
	}
	if (f != NULL)
		fclose(f);
	return kb == 2048 ? n : 0;
}

int
sky_fx_eal_start(const char *name, const struct sky_fx_eal *o)
{
	static const struct sky_fx_eal none;
	char mem[16], prefix[128], skylog[64], pool_name[RTE_MEMPOOL_NAMESIZE];
	char *argv[16];
	int argc = 0;

	if (o == NULL)
		o = &none;
	snprintf(mem, sizeof(mem), "%u", o->mem_mb ? o->mem_mb : 512);
	snprintf(prefix, sizeof(prefix), "--file-prefix=%s-%d", name, (int)getpid());
	argv[argc++] = (char *)name;
	if (o->lcores != NULL) {
		argv[argc++] = "-l";
		argv[argc++] = (char *)o->lcores;
	}
	/* hugepages only when every page -m asks for is free now (another process may take
	 * them meanwhile: then the EAL fails and says so) */
	sky_fx_huge = o->huge && getenv("SKY_FX_NO_HUGE") == NULL /* valgrind cannot */ &&
		      free_hugepages_2m() >= (o->mem_mb ? o->mem_mb : 512) / 2;
	argv[argc++] = sky_fx_huge ? "--in-memory" : "--no-huge";
	argv[argc++] = "-m";
	argv[argc++] = mem;
	argv[argc++] = "--no-pci";
	argv[argc++] = prefix;
	argv[argc++] = "--log-level=lib.*:error";
	if (o->skygate_log != NULL) {
		snprintf(skylog, sizeof(skylog), "--log-level=skygate:%s", o->skygate_log);
		argv[argc++] = skylog;
	}
	if (!o->telemetry)
		argv[argc++] = "--no-telemetry";
	if (o->extra != NULL)
		argv[argc++] = (char *)o->extra;
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "%s: EAL init failed: %s\n", name, rte_strerror(rte_errno));
		return -1;
	}
	sky_runtime_init();
	if (o->pool_mbufs > 0) {
		snprintf(pool_name, sizeof(pool_name), "fx_%.20s", name);
		sky_fx_pool = rte_pktmbuf_pool_create(pool_name, o->pool_mbufs, o->pool_cache, 0,
						      o->pool_data_room ? o->pool_data_room
									: RTE_MBUF_DEFAULT_BUF_SIZE,
						      SOCKET_ID_ANY);
		if (sky_fx_pool == NULL) {
			fprintf(stderr, "%s: mbuf pool: %s\n", name, rte_strerror(rte_errno));
			return -1;
		}
	}
	return 0;
}

void
sky_fx_eal_stop(void)
{
	rte_mempool_free(sky_fx_pool);
	sky_fx_pool = NULL;
	sky_eal_cleanup(); /* and the runtime directory and hugepage files the EAL leaves */
}

struct sky_fx_group sky_fx_group;

int
sky_fx_group_setup(void **state)
{
	(void)state;
	return sky_fx_eal_start(sky_fx_group.name, &sky_fx_group.eal);
}

int
sky_fx_group_teardown(void **state)
{
	(void)state;
	sky_fx_eal_stop();
	return 0;
}

/* --- files -------------------------------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void
sky_fx_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
tmp_remove(void)
{
	if (tmp_dir[0] != '\0' && getpid() == tmp_owner)
		sky_fx_rm_rf(tmp_dir);
}

const char *
sky_fx_tmpdir(void)
{
	if (tmp_dir[0] == '\0') {
		snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/sky_test_%d_XXXXXX", (int)getpid());
		if (mkdtemp(tmp_dir) == NULL) {
			fprintf(stderr, "mkdtemp %s: %s\n", tmp_dir, strerror(errno));
			abort(); /* every test that asks needs it */
		}
		tmp_owner = getpid();
		atexit(tmp_remove);
	}
	return tmp_dir;
}

const char *
sky_fx_file_bytes(const char *name, const void *data, size_t len)
{
	static char paths[8][512];
	static unsigned int k;
	char *p = paths[k++ & 7];
	FILE *f;

	snprintf(p, sizeof(paths[0]), "%s/%s", sky_fx_tmpdir(), name);
	f = fopen(p, "w");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", p, strerror(errno));
		return NULL;
	}
	if ((len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		fprintf(stderr, "%s: %s\n", p, strerror(errno));
		return NULL;
	}
	return p;
}

const char *
sky_fx_file(const char *name, const char *text)
{
	return sky_fx_file_bytes(name, text, strlen(text));
}

/* --- packets ------------------------------------------------------------------------------ */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

uint32_t
sky_fx_frame(uint8_t *b, uint32_t cap, const struct sky_fx_pkt *p, struct sky_fx_layout *lay)
{
	uint32_t o = 12, ip, l4 = 0, hdr = 0, len;
	unsigned int t;

	if (p->n_vlan > 2)
		return 0;
	o += 4u * p->n_vlan + 2;
	if (p->l3 == 4 || p->l3 == 6) {
		hdr = (p->l3 == 4 ? 20 : 40) + (p->hbh ? 8 : 0) + (p->proto == 6 ? 20 : 8);
	}
	len = o + hdr;
	if (p->len > len)
		len = p->len;
	if (len > cap)
		return 0;
	memset(b, 0, len);
	memcpy(b, p->mac, 12);
	for (t = 0, o = 12; t < p->n_vlan; t++, o += 4) {
		put16(b + o, p->tpid[t] ? p->tpid[t] : 0x8100);
		put16(b + o + 2, p->tci[t]);
	}
	ip = o + 2;
	if (p->l3 == 4) {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)(b + ip);

		put16(b + o, 0x0800);
		b[ip] = 0x45;
		b[ip + 1] = p->tos;
		put16(b + ip + 2, (uint16_t)(len - ip));
		put16(b + ip + 6, p->frag_off);
		b[ip + 8] = 64;
		b[ip + 9] = p->proto;
		memcpy(b + ip + 12, p->src, 4);
		memcpy(b + ip + 16, p->dst, 4);
		h->hdr_checksum = rte_ipv4_cksum(h);
		l4 = ip + 20;
	} else if (p->l3 == 6) {
		put16(b + o, 0x86dd);
		b[ip] = (uint8_t)(0x60 | p->tos >> 4);
		b[ip + 1] = (uint8_t)(p->tos << 4);
		put16(b + ip + 4, (uint16_t)(len - ip - 40));
		b[ip + 6] = p->hbh ? 0 : p->proto;
		b[ip + 7] = 64;
		memcpy(b + ip + 8, p->src, 16);
		memcpy(b + ip + 24, p->dst, 16);
		l4 = ip + 40;
		if (p->hbh) {
			b[l4] = p->proto; /* next header; length 0: 8 bytes */
			l4 += 8;
		}
	} else {
		put16(b + o, p->ethertype);
	}
	if (l4 != 0) {
		put16(b + l4, p->sport);
		put16(b + l4 + 2, p->dport);
		if (p->proto == 6)
			b[l4 + 12] = 0x50;
		else if (p->proto == 17)
			put16(b + l4 + 4, (uint16_t)(len - l4));
	}
	if (lay != NULL) {
		lay->len = len;
		lay->l3_off = ip;
		lay->l4_off = l4;
	}
	return len;
}

struct rte_mbuf *
sky_fx_mbuf_bytes(struct rte_mempool *mp, const uint8_t *f, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	char *d;

	if (m == NULL)
		return NULL;
	d = len <= UINT16_MAX ? rte_pktmbuf_append(m, (uint16_t)len) : NULL;
	if (d == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memcpy(d, f, len);
	return m;
}

struct rte_mbuf *
sky_fx_mbuf(struct rte_mempool *mp, const struct sky_fx_pkt *p)
{
	uint8_t buf[RTE_MBUF_DEFAULT_DATAROOM];
	uint32_t len = sky_fx_frame(buf, sizeof(buf), p, NULL);

	return len != 0 ? sky_fx_mbuf_bytes(mp, buf, len) : NULL;
}

int
sky_fx_addr(const char *text, uint8_t a[16])
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET, text, a) == 1)
		return 4;
	if (inet_pton(AF_INET6, text, a) == 1)
		return 6;
	return 0;
}

/* --- small things ------------------------------------------------------------------------- */

static double
clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
sky_fx_now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

double
sky_fx_cpu_s(void)
{
	return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

int
sky_fx_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
sky_fx_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
sky_fx_telemetry_open(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[4096];
	int fd, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/dpdk_telemetry.v2",
		     rte_eal_get_runtime_dir());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		fprintf(stderr, "telemetry socket path too long\n");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "telemetry socket %s: %s\n", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (read(fd, buf, sizeof(buf)) <= 0) { /* the greeting */
		fprintf(stderr, "telemetry socket %s: no greeting\n", sa.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

ssize_t
sky_fx_telemetry_query(const char *cmd, char *buf, size_t size)
{
	size_t len = strlen(cmd);
	ssize_t n;
	int fd = sky_fx_telemetry_open();

	if (fd < 0 || size == 0)
		goto fail;
	if (write(fd, cmd, len) != (ssize_t)len) {
		fprintf(stderr, "telemetry: cannot send %s: %s\n", cmd, strerror(errno));
		goto fail;
	}
	n = read(fd, buf, size - 1);
	if (n <= 0) {
		fprintf(stderr, "telemetry: no reply to %s\n", cmd);
		goto fail;
	}
	buf[n] = '\0';
	close(fd);
	return n;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

char *
sky_fx_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (len != NULL)
		*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			if (len != NULL)
				*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}
