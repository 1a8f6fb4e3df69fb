/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the eBPF policy loader and safety checker (lib/policy): every
 * input is an object file given to sky_policy_load_file(), as `policy load` does. A
 * malformed or hostile object must be refused with a reason; one that loads is run over a
 * fixed burst of live IPv4/IPv6 packets (every verdict must be one the hook documents)
 * and unloaded again.
 *
 * Random bytes rarely get past the ELF parser, so LLVMFuzzerInitialize builds a seed
 * corpus from real clang-built objects: every *.bpf.o under SKY_BUILD_ROOT/conf/policies
 * and SKY_BUILD_ROOT/tests/unit/policy (and SKY_FUZZ_SEED_DIR, if set), each run once
 * through the same path, plus deterministic mutations of them (ELF header fields, section
 * header fields, instruction bytes of SEC("policy")). They are written to a per-process
 * directory that is appended to argv as a corpus directory, so a plain
 * `fuzz_policy -max_total_time=20` starts from meaningful inputs. Corpus directories given
 * on the command line come first (libFuzzer writes new inputs to the first one).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>

#include "skygate/config.h"
#include "skygate/meta.h"
#include "skygate/policy.h"
#include "skygate/runtime.h"
#include "sky_build_config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEED_SIZE (1u << 20)
#define INSN_MUTATIONS 24 /* instructions of SEC("policy") mutated per seed object */

static struct sky_cfg *cfg;    /* no policy section */
static struct sky_policy *pol; /* fresh per input */
static int obj_fd = -1;
static char obj_path[64];
static char seed_dir[256];
static unsigned int n_seeds;
static unsigned int n_loaded; /* seed objects that loaded (Initialize only) */
static unsigned int n_refused;

/* ------------------------------------------------------------------ the burst */

static void
meta_set(struct sky_meta *m, uint8_t dir, uint8_t l3, uint8_t proto, uint16_t sport, uint16_t dport,
	 uint8_t flags)
{
	memset(m, 0, sizeof(*m));
	m->dir = dir;
	m->l3 = l3;
	m->proto = proto;
	m->flags = flags;
	m->sport = sport;
	m->dport = dport;
	m->pkt_len = l3 == 6 ? 94 : 74;
	m->ip_len = (uint16_t)(m->pkt_len - 14);
	m->sub_idx = 1;
	m->sub_id = 1001;
	m->plan = 1;
	m->beam = 1;
	m->sub_country = SKY_CC('D', 'E');
	m->remote_country = SKY_CC('K', 'P');
	m->cls = 1;
	m->dscp = 10;
	if (l3 == 4) {
		static const uint8_t a[4] = {100, 64, 0, 1}, b[4] = {198, 51, 100, 7};

		memcpy(dir == SKY_DIR_UP ? m->src : m->dst, a, 4);
		memcpy(dir == SKY_DIR_UP ? m->dst : m->src, b, 4);
	} else if (l3 == 6) {
		static const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1},
				     b[16] = {0x26, 0x00, [15] = 0x77};

		memcpy(dir == SKY_DIR_UP ? m->src : m->dst, a, 16);
		memcpy(dir == SKY_DIR_UP ? m->dst : m->src, b, 16);
	}
}

#define N_META 8

static void
burst_build(struct sky_meta *m)
{
	meta_set(&m[0], SKY_DIR_UP, 4, 17, 40000, 53, SKY_MF_PORTS);
	meta_set(&m[1], SKY_DIR_DOWN, 4, 6, 443, 50000, SKY_MF_PORTS);
	meta_set(&m[2], SKY_DIR_UP, 6, 6, 40001, 443, SKY_MF_PORTS);
	meta_set(&m[3], SKY_DIR_DOWN, 6, 58, 0, 0, SKY_MF_ICMP);
	m[3].icmp_type = 128;
	meta_set(&m[4], SKY_DIR_UP, 4, 1, 0, 0, SKY_MF_ICMP);
	m[4].icmp_type = 8;
	meta_set(&m[5], SKY_DIR_UP, 4, 17, 0, 0, SKY_MF_FRAG); /* a later fragment */
	meta_set(&m[6], SKY_DIR_UP, 0, 0, 0, 0, 0);	       /* non-IP: not live */
	meta_set(&m[7], SKY_DIR_DOWN, 4, 6, 80, 40002, SKY_MF_PORTS);
	sky_meta_drop(&m[7], SKY_DROP_L4_TRUNC); /* already dropped: not live */
}

static void
burst_run(void)
{
	struct sky_meta m[N_META], before[N_META];

	burst_build(m);
	memcpy(before, m, sizeof(m));
	sky_policy_run_burst(pol, 0, m, N_META);
	for (unsigned int i = 0; i < N_META; i++) {
		if (!sky_meta_live(&before[i])) {
			/* the hook never touches packets that are not live */
			if (memcmp(&m[i], &before[i], sizeof(m[i])) != 0)
				abort();
			continue;
		}
		if (m[i].verdict == SKY_V_DROP) {
			if (m[i].reason != SKY_DROP_POLICY && m[i].reason != SKY_DROP_POLICY_FAULT)
				abort();
		} else if (m[i].verdict != SKY_V_PASS) {
			abort();
		}
		if (m[i].dscp > 63)
			abort();
		/* a DSCP verdict is recorded, never written: the only flag the hook sets is
		 * SKY_MF_DSCP_SET, on a packet it passes */
		if (((m[i].flags ^ before[i].flags) & ~SKY_MF_DSCP_SET) != 0 ||
		    ((m[i].flags & SKY_MF_DSCP_SET) && m[i].verdict != SKY_V_PASS))
			abort();
	}
}

/* ------------------------------------------------------------------ one input */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sky_cfg_err cerr = {0};
	char err[1024];
	int rc;

	if (size > MAX_SEED_SIZE)
		return -1; /* objects are small; keep inputs so */
	if (ftruncate(obj_fd, 0) != 0 ||
	    (size > 0 && pwrite(obj_fd, data, size, 0) != (ssize_t)size))
		abort();
	/* a fresh hook per input: maps a program leaves behind (kept for the next program
	 * of the same spec) live in rte_malloc memory, which LeakSanitizer does not scan,
	 * and would make inputs depend on each other */
	pol = sky_policy_create(cfg, NULL, &cerr);
	if (pol == NULL) {
		fprintf(stderr, "fuzz_policy: policy: %s\n", cerr.msg);
		abort();
	}
	err[0] = '\0';
	rc = sky_policy_load_file(pol, obj_path, err, sizeof(err));
	if (rc == 0) {
		n_loaded++;
		burst_run();
		burst_run(); /* a second burst sees the map state the first one left */
		sky_policy_unload(pol);
	} else {
		n_refused++;
		if (rc > 0 || err[0] == '\0')
			abort(); /* a refusal is -errno and always says why */
	}
	sky_policy_destroy(pol);
	pol = NULL;
	return 0;
}

/* ------------------------------------------------------------------ seeds */

static void
seed_write(const uint8_t *buf, size_t len)
{
	char path[512];
	FILE *f;

	if (seed_dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/seed-%05u", seed_dir, n_seeds++);
	f = fopen(path, "wb");
	if (f == NULL)
		return;
	if (fwrite(buf, 1, len, f) != len)
		fprintf(stderr, "fuzz_policy: short write of %s\n", path);
	fclose(f);
}

/* write a variant: buf with len bytes at off replaced by v (little-endian) */
static void
variant(uint8_t *buf, size_t size, size_t off, unsigned int len, uint64_t v)
{
	uint8_t save[8];

	if (off + len > size || len > sizeof(save))
		return;
	memcpy(save, buf + off, len);
	memcpy(buf + off, &v, len);
	seed_write(buf, size);
	memcpy(buf + off, save, len);
}

/* deterministic mutations of a real object */
static void
seed_mutate(uint8_t *buf, size_t size)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
	const Elf64_Shdr *sh;
	uint64_t shoff;
	unsigned int shnum;

	if (size < sizeof(*eh) || memcmp(buf, ELFMAG, SELFMAG) != 0)
		return;
	/* ELF header: section table position, counts, string table index */
	variant(buf, size, offsetof(Elf64_Ehdr, e_shoff), 8, size - 8);
	variant(buf, size, offsetof(Elf64_Ehdr, e_shentsize), 2, 0);
	variant(buf, size, offsetof(Elf64_Ehdr, e_shnum), 2, 0xffff);
	variant(buf, size, offsetof(Elf64_Ehdr, e_shstrndx), 2, 0);
	variant(buf, size, offsetof(Elf64_Ehdr, e_shstrndx), 2, 0xfff0);
	shoff = eh->e_shoff;
	shnum = eh->e_shnum;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || shoff > size ||
	    shnum > (size - shoff) / sizeof(Elf64_Shdr))
		return;
	sh = (const Elf64_Shdr *)(buf + shoff);
	for (unsigned int i = 1; i < shnum; i++) {
		size_t base = shoff + i * sizeof(Elf64_Shdr);

		/* entry sizes and sizes of tables: zero and odd values */
		if (sh[i].sh_type == SHT_SYMTAB || sh[i].sh_type == SHT_REL) {
			variant(buf, size, base + offsetof(Elf64_Shdr, sh_entsize), 8, 0);
			variant(buf, size, base + offsetof(Elf64_Shdr, sh_entsize), 8, 1);
			variant(buf, size, base + offsetof(Elf64_Shdr, sh_size), 8,
				sh[i].sh_size + sh[i].sh_entsize);
			variant(buf, size, base + offsetof(Elf64_Shdr, sh_link), 4, shnum + 3);
			if (sh[i].sh_type == SHT_REL)
				variant(buf, size, base + offsetof(Elf64_Shdr, sh_info), 4, 0);
		}
		variant(buf, size, base + offsetof(Elf64_Shdr, sh_offset), 8, size - 4);
		variant(buf, size, base + offsetof(Elf64_Shdr, sh_size), 8, sh[i].sh_size + 9);
	}
	/* instructions of SEC("policy"): opcode, registers, offset, immediate */
	if (eh->e_shstrndx >= shnum || sh[eh->e_shstrndx].sh_offset >= size)
		return;
	for (unsigned int i = 1; i < shnum; i++) {
		const Elf64_Shdr *s = &sh[i];
		size_t stroff = sh[eh->e_shstrndx].sh_offset + s->sh_name;
		uint64_t n;

		if (s->sh_type != SHT_PROGBITS || stroff + 7 > size ||
		    memcmp(buf + stroff, "policy", 7) != 0 || s->sh_offset > size ||
		    s->sh_size > size - s->sh_offset)
			continue;
		n = s->sh_size / 8;
		for (uint64_t k = 0; k < n && k < INSN_MUTATIONS; k++) {
			/* spread the mutated instructions over the program */
			size_t off = s->sh_offset +
				     8 * (n <= INSN_MUTATIONS ? k : k * n / INSN_MUTATIONS);

			variant(buf, size, off, 1, buf[off] ^ 0x08);	     /* op or class bit */
			variant(buf, size, off + 1, 1, buf[off + 1] ^ 0x11); /* dst and src reg */
			variant(buf, size, off + 2, 2, 0x7fff);		     /* jump offset */
			variant(buf, size, off + 4, 4, 0xfffffff8);	     /* immediate -8 */
		}
	}
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void
seed_dir_scan(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[1024];
		struct stat st;
		uint8_t *buf;
		FILE *f;

		if (!ends_with(de->d_name, ".bpf.o"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
		    st.st_size > MAX_SEED_SIZE)
			continue;
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		buf = malloc((size_t)st.st_size);
		if (buf != NULL && fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
			LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
			seed_write(buf, (size_t)st.st_size);
			seed_mutate(buf, (size_t)st.st_size);
		}
		free(buf);
		fclose(f);
	}
	closedir(d);
}

static void
seed_dir_remove(void)
{
	DIR *d;
	struct dirent *de;

	if (seed_dir[0] == '\0' || (d = opendir(seed_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[1024];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", seed_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(seed_dir);
}

/* ------------------------------------------------------------------ init */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char prefix[64];
	static char *eal[] = {"fuzz_policy",
			      "--no-huge",
			      "-m",
			      "512",
			      "--no-pci",
			      "--no-telemetry",
			      "--log-level=lib.*:crit",
			      "--log-level=skygate:crit",
			      prefix};
	const char *br = getenv("SKY_BUILD_ROOT");
	const char *extra = getenv("SKY_FUZZ_SEED_DIR");
	char dir[1024];
	struct sky_cfg_err cerr = {0};
	static char error_exitcode[] = "-error_exitcode=1";
	bool has_exitcode = false;
	char **nargv;

	snprintf(prefix, sizeof(prefix), "--file-prefix=fuzzpol-%d", (int)getpid());
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "fuzz_policy: EAL init failed\n");
		exit(1);
	}
	/* libFuzzer leaves through exit(): remove the EAL's runtime directory then */
	atexit((void (*)(void))sky_eal_cleanup);
	sky_runtime_init();
	cfg = sky_cfg_load_string("fuzz.yaml", "workers: 1\n", &cerr);
	if (cfg == NULL) {
		fprintf(stderr, "fuzz_policy: config: %s\n", cerr.msg);
		exit(1);
	}
	obj_fd = memfd_create("fuzz_policy.bpf.o", MFD_CLOEXEC);
	if (obj_fd < 0) {
		perror("fuzz_policy: memfd_create");
		exit(1);
	}
	snprintf(obj_path, sizeof(obj_path), "/proc/self/fd/%d", obj_fd);

	/* seeds: run each real object once, write it and its variants to a corpus dir */
	snprintf(seed_dir, sizeof(seed_dir), "/tmp/fuzzpol-seeds-%d", (int)getpid());
	if (mkdir(seed_dir, 0700) != 0) {
		perror("fuzz_policy: seed dir");
		seed_dir[0] = '\0';
	} else {
		atexit(seed_dir_remove);
	}
	if (br == NULL)
		br = SKY_BUILD_ROOT;
	snprintf(dir, sizeof(dir), "%s/conf/policies", br);
	seed_dir_scan(dir);
	snprintf(dir, sizeof(dir), "%s/tests/unit/policy", br);
	seed_dir_scan(dir);
	if (extra != NULL && extra[0] != '\0')
		seed_dir_scan(extra);
	fprintf(stderr, "fuzz_policy: seed objects: %u loaded, %u refused; %u seeds in %s\n",
		n_loaded, n_refused, n_seeds, seed_dir[0] ? seed_dir : "(none)");
	if (seed_dir[0] == '\0' || n_seeds == 0)
		return 0;
	/* a file argument means "run these inputs" (reproducing a crash): add nothing */
	for (int i = 1; i < *argc; i++) {
		struct stat st;

		if ((*argv)[i][0] != '-' && stat((*argv)[i], &st) == 0 && !S_ISDIR(st.st_mode))
			return 0;
		has_exitcode |= strncmp((*argv)[i], "-error_exitcode=", 16) == 0;
	}
	/* append the seed dir as the last corpus directory, and -error_exitcode=1 unless
	 * given: libFuzzer's default (77) is what meson reads as "skipped" */
	nargv = calloc((size_t)*argc + 3, sizeof(*nargv));
	if (nargv == NULL)
		return 0;
	memcpy(nargv, *argv, sizeof(*nargv) * (size_t)*argc);
	nargv[(*argc)++] = seed_dir;
	if (!has_exitcode)
		nargv[(*argc)++] = error_exitcode;
	nargv[*argc] = NULL;
	*argv = nargv;
	return 0;
}
