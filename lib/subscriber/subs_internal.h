/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of lib/subscriber shared with the unit tests, the bench and the CSV fuzzer.
 * Not an installed API.
 *
 * Lookup tables (data path, rte_malloc, measured choice, see tests/bench/bench_subscriber.c):
 *   lpm4  rte_lpm6 keyed by the IPv4 address in bytes 0..3, depth = prefix length
 *   lpm6  rte_lpm6 keyed by the IPv6 address
 *   lpmr  rte_lpm6 for subscribers with a realm (outer VLAN): key = 16-bit header
 *         (family nibble 4|6 << 12 | realm) followed by the address, depth 16 + len;
 *         so a realm subscriber's IPv6 prefix is at most /112. Created on first use.
 * Why rte_lpm6 for IPv4 too: rte_lpm adds are O(rules of that depth) (1M /32 = hours),
 * rte_fib's RIB costs ~390 bytes per route, rte_fib6's trie reserves one tbl8 per level
 * per route (4 per /56: 4 GB for 1M). rte_lpm6 keeps rules in a hash (~90 B/rule) and
 * adds 1M /32 or /56 in ~0.3 s.
 * Reader safety: one writer (the control thread). rte_lpm6 writes each 32-bit entry
 * atomically; the only hazard is a tbl8 group freed by a delete and reused by a later add
 * while a worker still reads it, so every delete is followed by sky_rcu_sync() before any
 * further add. A whole-table replacement (subscriber load) builds new tables aside,
 * publishes one pointer, syncs, frees.
 */
#ifndef SKY_SUBS_INTERNAL_H
#define SKY_SUBS_INTERNAL_H

#include <stdint.h>

#include "skygate/config.h"
#include "skygate/subscriber.h"

/* --- data path record: one 64-bit word written atomically --- */
/* w = id | country << 32 | plan << 48 | beam << 56; w == 0: slot unused */
struct sky_sub_rec {
	uint64_t w;
	uint16_t realm;
	uint16_t pad[3];
};

static inline uint64_t
sky_sub_rec_word(uint32_t id, uint16_t country, uint16_t plan, uint16_t beam)
{
	return (uint64_t)id | (uint64_t)country << 32 | (uint64_t)(plan & 0xff) << 48 |
	       (uint64_t)(beam & 0xff) << 56;
}

#define SKY_SUBS_MAX_CAPACITY ((1u << 21) - 2) /* rte_lpm6 next hops are 21 bits */
#define SKY_REALM_MAX 4094
#define SKY_REALM_V6_MAX_LEN 112

/* --- CSV --- */
struct sky_subs_row {
	uint32_t id;
	uint32_t line;
	uint16_t plan, beam, country, realm;
	uint8_t has4, has6, len4, len6;
	uint8_t v4[4];
	uint8_t v6[16];
};

struct sky_subs_rows {
	struct sky_subs_row *r;
	size_t n, cap;
};

/* Names that plan/beam columns may use (pointers into the model). */
struct sky_subs_names {
	unsigned int n_plans, n_beams;
	const char *plans[SKY_MAX_PLANS];
	const char *beams[SKY_MAX_BEAMS];
};

/**
 * Parse a subscriber CSV held in buf (need not be NUL-terminated). fname names the file
 * in messages ("FILE:LINE: field 'value' reason"). Rows are appended to out (grown in
 * big steps). Checks syntax, ranges, names; not uniqueness (sky_subs_rows_check).
 * Returns 0, or -1 with err filled.
 */
int sky_subs_csv_parse(const struct sky_subs_names *names, const char *fname, const char *buf,
		       size_t len, struct sky_subs_rows *out, char *err, size_t errlen);
/** Duplicate ids and identical (realm, prefix) pairs, naming both lines. 0 or -1. */
int sky_subs_rows_check(const char *fname, const struct sky_subs_rows *rows, char *err,
			size_t errlen);
void sky_subs_rows_free(struct sky_subs_rows *rows);
/** Same, and need[t] = rte_lpm6 tbl8 groups table t (0 lpm4, 1 lpm6, 2 realm) needs. */
int sky_subs_rows_check_need(const char *fname, const struct sky_subs_rows *rows, uint32_t need[3],
			     char *err, size_t errlen);
/** rte_lpm6 key, depth and table (0 lpm4, 1 lpm6, 2 realm) of an address of a subscriber. */
void sky_subs_lpm_key(uint8_t fam, uint16_t realm, const uint8_t *addr, uint8_t len,
		      uint8_t key[16], uint8_t *depth, uint8_t *table);

/** Parse "a.b.c.d[/len]" (host bits must be zero). 0 or -1. */
int sky_parse_ip4_prefix(const char *s, size_t n, uint8_t a[4], uint8_t *len);
/** Parse "v6addr[/len]". 0 or -1. */
int sky_parse_ip6_prefix(const char *s, size_t n, uint8_t a[16], uint8_t *len);

#endif /* SKY_SUBS_INTERNAL_H */
