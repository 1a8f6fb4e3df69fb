/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Big tables the data path reads at random, on 2 MB pages.
 *
 * At 100k-1M subscribers a random line over 4 KB pages costs a page walk, and the stages'
 * tables compete for the same TLB (measured on this VM over 256 MB: 71 cycles per random
 * line on 4 KB pages, 18 on 2 MB pages; bench_subscriber). With hugepages the EAL's
 * rte_malloc gives them; without (--no-huge: tests, benches, memif setups) an anonymous
 * mapping aligned to 2 MB asks for transparent huge pages (MADV_HUGEPAGE) and is touched
 * whole here, so that the data path never faults. Control path only.
 */
#include <stdint.h>
#include <sys/mman.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_malloc.h>

#include "skygate/runtime.h"

struct big_hdr {
	void *map;	/* the mapping; NULL: rte_malloc */
	size_t map_len; /* its length */
} __rte_cache_aligned;

static size_t big_mapped; /* bytes mapped outside rte_malloc now */

void *
sky_big_zalloc(const char *name, size_t size)
{
	const size_t huge = 2u << 20;
	struct big_hdr *h;
	uint8_t *map, *p, *head, *tail;
	size_t len;

	if (rte_eal_has_hugepages()) {
		h = rte_zmalloc(name, sizeof(*h) + size, RTE_CACHE_LINE_SIZE);
		if (h == NULL)
			return NULL;
		h->map = NULL;
		return h + 1;
	}
	len = size + sizeof(*h) + huge;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	p = (uint8_t *)RTE_ALIGN_CEIL((uintptr_t)map + sizeof(*h), huge);
	/* keep the page holding the header, the block and its last page; give back the rest */
	head = p - 4096;
	tail = (uint8_t *)RTE_ALIGN_CEIL((uintptr_t)p + size, 4096);
	if (head > map)
		munmap(map, (size_t)(head - map));
	if (tail < map + len)
		munmap(tail, (size_t)(map + len - tail));
	(void)madvise(p, (size_t)(tail - p), MADV_HUGEPAGE);
	for (size_t o = 0; o < size; o += 4096) /* fault it in now, not on the data path */
		p[o] = 0;
	h = (struct big_hdr *)p - 1;
	h->map = head;
	h->map_len = (size_t)(tail - head);
	__atomic_fetch_add(&big_mapped, h->map_len, __ATOMIC_RELAXED);
	return p;
}

void
sky_big_free(void *p)
{
	struct big_hdr *h = p != NULL ? (struct big_hdr *)p - 1 : NULL;

	if (h == NULL)
		return;
	if (h->map == NULL) {
		rte_free(h);
		return;
	}
	__atomic_fetch_sub(&big_mapped, h->map_len, __ATOMIC_RELAXED);
	munmap(h->map, h->map_len);
}

size_t
sky_big_mapped(void)
{
	return __atomic_load_n(&big_mapped, __ATOMIC_RELAXED);
}
