/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the subscriber CSV parser and its uniqueness check (the code that
 * reads operator files at start and on `subscriber load`). No DPDK needed.
 * The first input byte picks whether the input gets a valid header prepended (with or
 * without the zone column), so the fuzzer reaches row parsing quickly.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/subscriber/subscriber_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hdr_realm[] = "id,ipv4,ipv6,plan,beam,country,realm\n";
	static const char hdr_zone[] = "id,ipv4,ipv6,plan,beam,country,realm,zone\n";
	struct sky_subs_csv_names nm = {.n_plans = 2,
					.n_beams = 2,
					.n_zones = 2,
					.plans = {"basic", "premium"},
					.beams = {"beam1", "beam2"},
					.zones = {"north", "south"}};
	const char *hdr = hdr_realm;
	struct sky_subs_rows rows = {0};
	uint32_t need[3];
	char err[512];
	char *buf;
	size_t len;

	if (size == 0)
		return 0;
	buf = malloc(size + sizeof(hdr_zone));
	if (buf == NULL)
		return 0;
	len = 0;
	if (data[0] & 2)
		hdr = hdr_zone;
	if (data[0] & 1) {
		memcpy(buf, hdr, strlen(hdr));
		len = strlen(hdr);
	}
	memcpy(buf + len, data + 1, size - 1);
	len += size - 1;
	err[0] = '\0';
	if (sky_subs_rows_parse(&nm, "fuzz.csv", buf, len, &rows, err, sizeof(err)) == 0) {
		if (sky_subs_rows_check_need("fuzz.csv", &rows, need, err, sizeof(err)) == 0) {
			/* accepted rows obey the documented ranges */
			for (size_t i = 0; i < rows.n; i++) {
				const struct sky_sub_info *r = &rows.r[i].sub;

				if (r->id == 0 || r->plan >= 2 || r->beam >= 2 || r->zone > 2 ||
				    r->realm > SKY_REALM_MAX || (!r->has_v4 && !r->has_v6) ||
				    r->v4_len > 32 || r->v6_len > 128)
					abort();
			}
		}
	} else if (err[0] == '\0') {
		abort(); /* a refusal always says why */
	}
	sky_subs_rows_free(&rows);
	free(buf);
	return 0;
}
