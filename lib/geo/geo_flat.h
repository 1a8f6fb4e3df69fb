/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * geo address ranges (geo_flat.c), private to lib/geo: the arithmetic that turns the
 * database's nested networks into disjoint ranges and CIDR blocks. No libloc, no FIB:
 * the loader (geo_load.c) feeds networks in and takes ranges out. Control path only.
 *
 * Addresses are 128-bit, IPv4 as ::ffff:a.b.c.d like libloc's tree; a network of depth
 * d covers [first, last] with first's low 128 - d bits zero.
 */
#ifndef SKY_GEO_FLAT_H
#define SKY_GEO_FLAT_H

#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 geo_u128;

#define GEO_U128_MAX (~(geo_u128)0)
#define GEO_V4_LO ((geo_u128)0xffff << 32)  /* ::ffff:0.0.0.0 */
#define GEO_V4_HI (GEO_V4_LO | 0xffffffffu) /* ::ffff:255.255.255.255 */

struct geo_fnet {
	geo_u128 first, last;
	uint16_t val;  /* attr index (FIB) or country (sky_geo_country_networks) */
	uint8_t depth; /* in the 128-bit space */
};

/* A growable array of networks (malloc; free v). */
struct geo_fnets {
	struct geo_fnet *v;
	size_t n, cap;
};

/* Make room for need elements of esz bytes in *p (doubling from 64k). 0 or -ENOMEM. */
int geo_grow(void **p, size_t *cap, size_t need, size_t esz);

/* Append the network addr/depth (addr 16 bytes, network order; depth in the 128-bit
 * space) valued val. Returns 0, -EINVAL (depth > 128), -ENOMEM. */
int geo_fnets_add(struct geo_fnets *s, const uint8_t *addr, unsigned int depth, uint16_t val);

/* Address order, parents first (libloc enumerates so already; sorts only if it did not). */
void geo_fnets_sort(struct geo_fnets *s);

/* Range [lo, hi] valued val; returns 0 to go on, or an error that stops the walk. */
typedef int (*geo_range_fn)(void *arg, geo_u128 lo, geo_u128 hi, uint16_t val);

/*
 * Call fn for the disjoint ranges of sorted networks v, each with the value of the deepest
 * network covering it, neighbours of equal value merged. Returns 0, fn's error, or -EINVAL
 * when the nesting is impossible (corrupt input).
 */
int geo_flatten(const struct geo_fnet *v, size_t n, geo_range_fn fn, void *arg);

/* A CIDR block: addr 4 (AF_INET) or 16 bytes (AF_INET6), network order. */
typedef int (*geo_cidr_fn)(void *arg, int family, const uint8_t *addr, unsigned int prefixlen,
			   uint16_t val);

/*
 * Range [lo, hi] as CIDR blocks, cut at the IPv4-mapped /96: what lies inside goes out as
 * IPv4 blocks, the rest as IPv6. Returns 0 or fn's error.
 */
int geo_range_cidrs(geo_u128 lo, geo_u128 hi, uint16_t val, geo_cidr_fn fn, void *arg);

/* x as 16 bytes, network order. */
void geo_u128_to(geo_u128 x, uint8_t *b);

#endif /* SKY_GEO_FLAT_H */
