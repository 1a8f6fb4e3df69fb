/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Configuration: one YAML file read into a tree of nodes that remember their line, plus
 * typed accessors that validate a value and report errors as "FILE:LINE: KEY: reason".
 *
 * Control path only. Each module validates its own section (subscriber: plans, beams,
 * classes, subscribers; geo: geo; policy: policy; shaper: shaping; gateway: eal, workers,
 * control, ports, mempool, state) with these accessors, so that the same code serves the
 * daemon's start and `skygate --check`.
 *
 * Units:
 *   rate  "100Mbit", "2Gbit", "64kbit", "1.5Gbit", "800bit", plain number = bit/s;
 *         suffixes bit, kbit (or Kbit), Mbit, Gbit, Tbit (decimal, x1000); also
 *         bps/kbps/Mbps/Gbps/Tbps and "Mbit/s" as the same bit/s units. Case-sensitive:
 *         "mbit" and byte units ("100MB") are refused with a hint. Result in bit/s.
 *   size  "64KB", "1MB", "256KiB", "1500B", plain number = bytes; KB (or kB)/MB/GB/TB
 *         decimal, KiB/MiB/GiB/TiB binary. Result in bytes.
 *   time  "10ms", "1s", "500us", "2m", plain number = ms. Result in microseconds.
 *   All: digits with an optional fraction ("1.5"), then an optional single space and the
 *   unit. Arithmetic is exact integer arithmetic; a value that is not a whole number of the
 *   base unit ("1.5bit", "0.5us") is refused, as are signs, exponents, hex and overflow.
 *
 * Scalars are kept as text: YAML types do not apply (`workers: "2"` reads as 2 through
 * sky_cfg_get_u64, `name: no` is the string "no"). A key written without a value
 * (`up:`, `up: ~`, `up: null`) is a scalar "" that every typed getter refuses.
 * Lines: a map value carries the line of its key, a list item the line of the item.
 * Maps and lists nest at most 64 levels.
 */
#ifndef SKYGATE_CONFIG_H
#define SKYGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sky_cfg_type {
	SKY_CFG_SCALAR,
	SKY_CFG_MAP,
	SKY_CFG_SEQ,
};

struct sky_cfg_node;

/** A parsed file. Owns all its nodes. */
struct sky_cfg {
	char *file;		   /* path as given */
	struct sky_cfg_node *root; /* a MAP (an empty file gives an empty map) */
};

/** Error sink: the first error wins; msg is "FILE:LINE: KEY: reason". */
struct sky_cfg_err {
	char msg[512];
	int failed;
};

/**
 * Read and parse a YAML file. Returns NULL with err filled (file, line, what) on I/O or
 * syntax errors, on duplicate keys, anchors/aliases/tags (refused: keep configs plain).
 */
struct sky_cfg *sky_cfg_load(const char *path, struct sky_cfg_err *err);
/** Same from a string (tests); name is used in messages. */
struct sky_cfg *sky_cfg_load_string(const char *name, const char *text, struct sky_cfg_err *err);
void sky_cfg_free(struct sky_cfg *cfg);

/* --- node inspection (n may be NULL except for sky_cfg_type) --- */
enum sky_cfg_type sky_cfg_type(const struct sky_cfg_node *n);
unsigned int sky_cfg_line(const struct sky_cfg_node *n);
/** Dotted path of the node from the root, e.g. "ports[1].device", "plans.basic.down". */
const char *sky_cfg_path(const struct sky_cfg_node *n);
/** Scalar text, NULL if not a scalar. */
const char *sky_cfg_str(const struct sky_cfg_node *n);
/** Number of entries of a map or sequence (0 for scalars). */
size_t sky_cfg_len(const struct sky_cfg_node *n);
/** i-th entry of a sequence, or i-th value of a map (in file order). */
struct sky_cfg_node *sky_cfg_at(const struct sky_cfg_node *n, size_t i);
/** i-th key of a map (in file order); NULL otherwise. */
const char *sky_cfg_key_at(const struct sky_cfg_node *n, size_t i);
/** Value of key in a map, NULL if absent or n is not a map. */
struct sky_cfg_node *sky_cfg_get(const struct sky_cfg_node *n, const char *key);

/**
 * Fail with "FILE:LINE: PATH: <formatted reason>" about node n (n may be NULL: then
 * the message names the file only). Returns -1 so callers can `return sky_cfg_fail(...)`.
 * Only the first error is kept.
 */
int sky_cfg_fail(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *n,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** Same, naming a key of map n that is missing: "FILE:LINE: PATH.key: required". */
int sky_cfg_fail_missing(struct sky_cfg_err *err, const struct sky_cfg *cfg,
			 const struct sky_cfg_node *map, const char *key);

/**
 * Check that map n is a map and has only the keys listed (NULL-terminated).
 * An unknown key is an error naming it and its line, and listing the allowed keys:
 * "FILE:LINE: ports[0].devce: unknown key (allowed: name, role, device)".
 * n == NULL (an absent optional section) passes, and so does a key written without a
 * value (`telemetry:` with every line under it commented out): it counts as an empty map.
 */
int sky_cfg_check_keys(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		       const struct sky_cfg_node *n, const char *const *allowed);

/*
 * Typed getters on key of map n. Each returns 0 and sets *out; if the key is absent it
 * returns 0 leaving *out as the caller's default when `required` is false, or fails when
 * true. A present value of the wrong type or out of range fails naming file, line, key,
 * the value and what was expected. Return -1 on failure (*out untouched).
 * n == NULL or a key without a value is a map without the key; any other non-map fails.
 * bool: true/false, yes/no, on/off (any case). u64: decimal or 0x hex, min <= v <= max.
 */
int sky_cfg_get_str(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *n, const char *key, bool required, const char **out);
int sky_cfg_get_bool(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		     const struct sky_cfg_node *n, const char *key, bool required, bool *out);
int sky_cfg_get_u64(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *n, const char *key, bool required, uint64_t min,
		    uint64_t max, uint64_t *out);
int sky_cfg_get_rate(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		     const struct sky_cfg_node *n, const char *key, bool required,
		     uint64_t *out_bps);
int sky_cfg_get_size(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		     const struct sky_cfg_node *n, const char *key, bool required,
		     uint64_t *out_bytes);
int sky_cfg_get_time(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		     const struct sky_cfg_node *n, const char *key, bool required,
		     uint64_t *out_us);
/** key must be one of the NULL-terminated choices; *out = index of the match. */
int sky_cfg_get_enum(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		     const struct sky_cfg_node *n, const char *key, bool required,
		     const char *const *choices, unsigned int *out);

/** Same as sky_cfg_get_str etc. for key; a country is two letters, stored as sky_cc(). */
int sky_cfg_get_country(struct sky_cfg_err *err, const struct sky_cfg *cfg,
			const struct sky_cfg_node *n, const char *key, bool required, uint16_t *cc);

/*
 * The same conversions on a node itself, for list items (`dscp: [46, 34]`) and the values
 * of maps keyed by name (`class_weights: { realtime: 4 }`). v must be a scalar with a
 * value; v == NULL fails naming the file only. Return 0 or -1 with err filled.
 */
int sky_cfg_as_str(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		   const char **out);
int sky_cfg_as_bool(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *v, bool *out);
int sky_cfg_as_u64(struct sky_cfg_err *err, const struct sky_cfg *cfg, const struct sky_cfg_node *v,
		   uint64_t min, uint64_t max, uint64_t *out);
int sky_cfg_as_rate(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *v, uint64_t *out_bps);
int sky_cfg_as_size(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *v, uint64_t *out_bytes);
int sky_cfg_as_time(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *v, uint64_t *out_us);
int sky_cfg_as_enum(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		    const struct sky_cfg_node *v, const char *const *choices, unsigned int *out);
int sky_cfg_as_country(struct sky_cfg_err *err, const struct sky_cfg *cfg,
		       const struct sky_cfg_node *v, uint16_t *cc);

/*
 * Unit parsers on plain strings (also used by control commands such as `beam set down=1Gbit`).
 * Return 0, or -EINVAL (bad syntax/unit) / -ERANGE (overflow). A rate or size of 0 parses
 * as 0: callers decide whether zero is allowed.
 */
int sky_parse_rate(const char *s, uint64_t *bps);
int sky_parse_size(const char *s, uint64_t *bytes);
int sky_parse_time(const char *s, uint64_t *us);
int sky_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/** Parse "DE" (case-insensitive on input, must be two letters A-Z) -> sky_cc. */
int sky_parse_country(const char *s, uint16_t *cc);

/** Unit kinds for sky_parse_unit(). */
enum sky_unit {
	SKY_UNIT_RATE, /* bit/s */
	SKY_UNIT_SIZE, /* bytes */
	SKY_UNIT_TIME, /* microseconds */
};

/**
 * Same as sky_parse_rate/size/time, but on failure *why (if why is not NULL) points to a
 * static one-line reason without the value, e.g. "expected a number with a unit: bit, kbit,
 * Mbit, Gbit, Tbit", for messages such as "bad rate '50Mbt' (<why>)".
 * Decimals are exact ("1.5Gbit" = 1500000000); a value that is not a whole number of the
 * base unit ("1.5bit", "0.1KiB") is -EINVAL.
 */
int sky_parse_unit(enum sky_unit unit, const char *s, uint64_t *out, const char **why);

/** Top-level sections of a skygate config; any other top-level key is an error. */
extern const char *const sky_cfg_sections[];

/** Fail (as sky_cfg_check_keys) if the root map has a key not in sky_cfg_sections. */
int sky_cfg_check_sections(struct sky_cfg_err *err, const struct sky_cfg *cfg);

/**
 * Fill what the file omits: every key of defaults_yaml (a YAML map) that the tree lacks is
 * added, recursively into maps both have; a section written without a value (`geo:`) takes
 * the default map whole. Lists are never merged. Added nodes carry line 0 (messages about
 * them name the file and key only). Returns 0 or -1 with err filled.
 */
int sky_cfg_merge_defaults(struct sky_cfg *cfg, const char *defaults_yaml, struct sky_cfg_err *err);
/**
 * Write the tree as block YAML that sky_cfg_load reads back into the same tree (same keys,
 * order and texts; scalars quoted when needed). Returns 0 or -errno.
 */
int sky_cfg_write(const struct sky_cfg *cfg, FILE *f);
/** One node as YAML text (a canonical form to compare subtrees); malloc'd, NULL on ENOMEM;
 * n == NULL gives "". */
char *sky_cfg_write_node(const struct sky_cfg_node *n);

/** The fixed defaults of the whole file as YAML (see config_out.c), for sky_cfg_merge_defaults. */
extern const char sky_cfg_defaults[];

#endif /* SKYGATE_CONFIG_H */
