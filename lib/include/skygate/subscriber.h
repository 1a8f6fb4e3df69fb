/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Subscribers and their service model: plans, beams, traffic classes, and the subscriber
 * table (address/prefix -> subscriber), loaded from the config and a CSV at start and
 * changed at runtime over the control socket.
 *
 * Control path: sky_subs_create() parses the `subscribers`, `plans`, `beams` and
 * `classes` sections of the config and the CSV; commands (subscriber add|del|set|show|
 * list|load, plan list|show|set, beam list|show|set) change it. Every change is validated
 * whole first, then applied reader-safely (RCU), then listeners are told.
 * Data path: sky_subs_lookup_burst() fills the subscriber fields of sky_meta;
 * sky_subs_account_burst() counts per-subscriber packets/bytes/drops per worker.
 * The subscriber CSV reader (sky_subs_csv_parse*) stands alone: plain C, no EAL, no
 * sky_subs; skygate-pktgen reads its subscriber files with it.
 *
 * Rates are bit/s, bursts bytes. Indexes (plan, beam, class) are dense, stable for the
 * life of the process (a plan or beam is never removed at runtime, only changed).
 */
#ifndef SKYGATE_SUBSCRIBER_H
#define SKYGATE_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/classify.h" /* classes: SKY_MAX_CLASSES, SKY_NAME_MAX, struct sky_class */
#include "skygate/config.h"
#include "skygate/meta.h"

struct rte_mbuf;

#define SKY_MAX_PLANS 256
#define SKY_MAX_BEAMS 64
#define SKY_MAX_ZONES 255 /* zone ids 1..255; 0 = no zone */

/*
 * Plan defaults (config `plans:` and `plan set`): down_burst = max(down_bps / 8 * 10 ms,
 * 64 KiB), up_burst likewise from up_bps, `burst:` sets both (down_burst/up_burst win),
 * weight = down_bps in kbit/s (at least 1), class weights 1. A default follows its rate
 * when the rate changes at runtime unless it was given explicitly.
 */
struct sky_plan {
	char name[SKY_NAME_MAX];
	uint64_t down_bps;
	uint64_t up_bps;
	uint64_t down_burst_bytes;
	uint64_t up_burst_bytes;
	uint32_t class_weight[SKY_MAX_CLASSES]; /* relative weights inside a subscriber */
	uint32_t weight; /* share of a congested beam (default: down_bps in kbit/s) */
};

struct sky_beam {
	char name[SKY_NAME_MAX];
	uint64_t down_bps; /* forward link capacity */
	uint64_t up_bps;   /* return link capacity */
};

/** One subscriber as the control plane sees it. */
struct sky_sub_info {
	uint32_t id;	     /* operator's id (CSV), unique, > 0 */
	uint32_t idx;	     /* dense index used by the data path and counters */
	uint16_t plan, beam; /* indexes */
	uint16_t country;    /* sky_cc */
	uint16_t realm;	     /* outer VLAN, 0 = none */
	uint8_t zone;	     /* zone id (config `zones`, 1..255), 0 = none */
	uint8_t has_v4, has_v6;
	uint8_t v4[4];	/* network order */
	uint8_t v4_len; /* prefix length 0..32 */
	uint8_t v6[16];
	uint8_t v6_len; /* prefix length 0..128 */
};

/*
 * Fair-use state of a subscriber, set by the control plane (the quota engine) with
 * sky_subs_set_quota_state() and carried by the data path into every packet's meta and the
 * policy context (quota_state). A new subscriber starts at SKY_QUOTA_NONE; the state stays
 * through `subscriber set` and a `subscriber load` that keeps the id.
 */
enum sky_quota_state {
	SKY_QUOTA_NONE = 0,	 /* no allowance (the plan has none, or not evaluated yet) */
	SKY_QUOTA_UNDER = 1,	 /* within the allowance */
	SKY_QUOTA_OVER = 2,	 /* over the allowance, no throttling action (yet) */
	SKY_QUOTA_THROTTLED = 3, /* over and throttled (throttle plan or graded rate) */
	SKY_QUOTA_MAX
};

struct sky_subs;

/** Create from config (sections subscribers, plans, beams, classes) and the CSV.
 *  n_workers sizes the per-worker counters. NULL with err on any error. */
struct sky_subs *sky_subs_create(const struct sky_cfg *cfg, unsigned int n_workers,
				 struct sky_cfg_err *err);
/** Register control commands, telemetry endpoints and metrics. */
int sky_subs_register(struct sky_subs *s);
void sky_subs_destroy(struct sky_subs *s);

/* --- model, control path --- */
unsigned int sky_subs_n_plans(const struct sky_subs *s);
unsigned int sky_subs_n_beams(const struct sky_subs *s);
unsigned int sky_subs_n_classes(const struct sky_subs *s);
/** Current value (a copy); index must be < n. */
struct sky_plan sky_subs_plan(const struct sky_subs *s, unsigned int idx);
struct sky_beam sky_subs_beam(const struct sky_subs *s, unsigned int idx);
struct sky_class sky_subs_class(const struct sky_subs *s, unsigned int idx);
/** Index by name, -1 if none. */
int sky_subs_plan_index(const struct sky_subs *s, const char *name);
int sky_subs_beam_index(const struct sky_subs *s, const char *name);
int sky_subs_class_index(const struct sky_subs *s, const char *name);
/*
 * Beam ownership (cluster mode, skygate/cluster.h): what a node does with packets of a
 * subscriber whose beam another node shapes. Every beam starts SKY_SUBS_BEAM_OWNED (a
 * single node shapes everything). The lookup reads the flag of each packet's beam (one
 * byte, one shared cache line for every beam); a change is a single atomic store, seen
 * by the workers' next burst.
 */
enum sky_subs_beam_mode {
	SKY_SUBS_BEAM_OWNED = 0, /* shaped here */
	SKY_SUBS_BEAM_DROP = 1,	 /* another node's: dropped (SKY_DROP_BEAM_NOT_OWNED) */
	SKY_SUBS_BEAM_PASS = 2,	 /* another node's: passed on as usual, counted */
};
/** Set beam idx's mode: 0, or -EINVAL (no such beam, bad mode). */
int sky_subs_beam_mode_set(struct sky_subs *s, unsigned int idx, enum sky_subs_beam_mode mode);
enum sky_subs_beam_mode sky_subs_beam_mode(const struct sky_subs *s, unsigned int idx);
/** Packets of beams not owned here, summed over workers: dropped, passed. */
void sky_subs_beam_foreign(const struct sky_subs *s, uint64_t *dropped, uint64_t *passed);
/** Zones (config `zones: [NAME, ...]`): ids 1..n in file order, 0 = no zone. */
unsigned int sky_subs_n_zones(const struct sky_subs *s);
/** Zone id of name (1..n), -1 if none. */
int sky_subs_zone_index(const struct sky_subs *s, const char *name);
/** Name of zone id (1..n), NULL for 0 or out of range. */
const char *sky_subs_zone_name(const struct sky_subs *s, unsigned int id);
/** Default plan for unknown addresses (`unknown: {plan: X}`), -1 when unknown = drop. */
int sky_subs_unknown_plan(const struct sky_subs *s);
/** Highest subscriber idx + 1 that may be in use (sizes per-subscriber arrays). */
uint32_t sky_subs_capacity(const struct sky_subs *s);
/** Subscribers in the table now (<= capacity). */
uint32_t sky_subs_count(const struct sky_subs *s);
/** A subscriber id as the commands take it: 1..2^32-1 in decimal. 0, or -1 when not. */
int sky_subs_parse_id(const char *s, uint32_t *id);
/** Look up by operator id; 0 and *out filled, or -ENOENT. */
int sky_subs_get(const struct sky_subs *s, uint32_t id, struct sky_sub_info *out);
/**
 * Set the quota state (enum sky_quota_state) of subscriber sub_id: one byte store the data
 * path sees from its next burst; reader-safe (no RCU wait, no lock on the data path), cheap
 * enough to call for every subscriber once a second. Control path: the thread that makes
 * the subscriber changes (the main lcore); it takes no lock, so a subscriber listener may
 * call it. Not journaled: the state is derived (the quota engine sets it again after a
 * restart). Returns 0, -ENOENT (no such subscriber), -EINVAL (state not a sky_quota_state).
 */
int sky_subs_set_quota_state(struct sky_subs *s, uint32_t sub_id, uint8_t state);
/** The quota state of subscriber sub_id (0..SKY_QUOTA_MAX-1), or -ENOENT. Control path, as
 *  the setter. */
int sky_subs_quota_state(const struct sky_subs *s, uint32_t sub_id);
/** "none", "under", "over", "throttled"; "?" out of range. */
const char *sky_quota_state_name(unsigned int state);
/** Iterate all subscribers (control path); fn returns non-zero to stop. */
void sky_subs_foreach(const struct sky_subs *s, int (*fn)(void *arg, const struct sky_sub_info *),
		      void *arg);

/* --- the subscriber CSV (control path, plain C: no EAL; skygate-pktgen reads it too) --- */
/*
 * `id,ipv4,ipv6,plan,beam,country[,realm][,zone]`: a header line first (exactly these names;
 * realm and zone optional, in either order), blank lines and `#` comments allowed, LF or
 * CRLF, a leading UTF-8 BOM ignored, spaces around fields ignored, no quoting (no field
 * needs it).
 *   id       1..4294967295
 *   ipv4     an address or prefix /1../32, host bits zero; may be empty
 *   ipv6     an address or prefix /1../128, host bits zero; may be empty (not both)
 *   country  ISO 3166 alpha-2 (either case): where the terminal is
 *   realm    outer VLAN id 0..4094, 0 or empty = none; a realm subscriber's IPv6 is at
 *            most a /112
 *   zone     a zone name (config `zones`), empty = none
 * Every refusal names the file and line: "FILE:LINE: field 'value' reason".
 */
struct sky_subs_csv_row {
	uint32_t line;		   /* 1-based line in the file */
	const char *plan, *beam;   /* as written, not NUL-terminated: plan_len, beam_len */
	size_t plan_len, beam_len; /* bytes */
	const char *zone;	   /* as written (zone_len 0: none or no zone column) */
	size_t zone_len;
	/* the subscriber; idx 0; plan and beam: indexes into the names given, else 0; zone:
	 * the id (index + 1) of the name given, else 0 */
	struct sky_sub_info sub;
};

/** Plan, beam and zone names a file may use (e.g. the configured ones); pointers are
 *  borrowed. A zone is refused when n_zones is 0. */
struct sky_subs_csv_names {
	unsigned int n_plans, n_beams, n_zones;
	const char *plans[SKY_MAX_PLANS];
	const char *beams[SKY_MAX_BEAMS];
	const char *zones[SKY_MAX_ZONES];
};

/**
 * Called for each row, in file order. Return 0 to read on, > 0 to stop reading (the parse
 * then returns 0), < 0 to refuse the file with the reason in err (the reader puts
 * "FILE:LINE: " in front).
 */
typedef int (*sky_subs_csv_row_fn)(void *arg, const struct sky_subs_csv_row *row, char *err,
				   size_t errlen);

/**
 * Read a subscriber CSV held in buf (len bytes, need not be NUL-terminated); fname names it
 * in messages. names NULL: any plan, beam and zone name is passed on; else a name must be
 * one of them (refused with the list). Checks syntax and ranges row by row, not uniqueness.
 * Returns 0, or -1 with err filled.
 */
int sky_subs_csv_parse(const char *fname, const char *buf, size_t len,
		       const struct sky_subs_csv_names *names, sky_subs_csv_row_fn fn, void *arg,
		       char *err, size_t errlen);
/*
 * Bounds on a subscriber CSV file (the config's subscribers.file, `subscriber load`,
 * skygate-pktgen --subs): 1M dual-stack rows are about 60 MB; reading them from the page
 * cache takes well under a second.
 */
#define SKY_SUBS_CSV_MAX_BYTES (512u * 1024 * 1024) /* 2M rows of 256 bytes */
#define SKY_SUBS_CSV_TIMEOUT_MS 20000u
/**
 * The same for the file at path: opened non-blocking and refused unless a regular file of
 * at most SKY_SUBS_CSV_MAX_BYTES, read whole into memory within SKY_SUBS_CSV_TIMEOUT_MS
 * (refused if it changed while being read), then parsed from that copy (sky_file_read).
 */
int sky_subs_csv_parse_file(const char *path, const struct sky_subs_csv_names *names,
			    sky_subs_csv_row_fn fn, void *arg, char *err, size_t errlen);
/** The CSV's address forms (also `subscriber add/set/find`, class prefixes):
 *  "a.b.c.d[/len]" and "v6addr[/len]" (n bytes of s, host bits zero), len defaults to the
 *  full length. 0 or -1. */
int sky_parse_ip4_prefix(const char *s, size_t n, uint8_t a[4], uint8_t *len);
int sky_parse_ip6_prefix(const char *s, size_t n, uint8_t a[16], uint8_t *len);
/** Write "ADDR/LEN" (fam 4 or 6) into buf, the form the parsers above read. */
void sky_subs_prefix_str(char *buf, size_t n, int fam, const uint8_t *a, uint8_t len);

/* --- change listeners (control path, called after a change is applied) --- */
enum sky_subs_event {
	SKY_SUBS_EV_PLAN,    /* plan `index` changed (rates, weights) */
	SKY_SUBS_EV_BEAM,    /* beam `index` changed (capacity) */
	SKY_SUBS_EV_SUB_ADD, /* subscriber idx `index` added: info = new */
	SKY_SUBS_EV_SUB_DEL, /* subscriber idx `index` removed: info = old */
	SKY_SUBS_EV_SUB_SET, /* subscriber idx `index` changed: info = new (plan/beam/...) */
	SKY_SUBS_EV_RELOAD,  /* the whole table was replaced (subscriber load) */
};
typedef void (*sky_subs_listener_fn)(void *arg, enum sky_subs_event ev, uint32_t index,
				     const struct sky_sub_info *info);
int sky_subs_listen(struct sky_subs *s, sky_subs_listener_fn fn, void *arg);
/**
 * Validators run before a plan or beam change is applied (e.g. the shaper refusing a rate
 * above the port speed). newval is a const struct sky_plan * (EV_PLAN) or const struct
 * sky_beam * (EV_BEAM). Return 0 to accept, or -1 with a reason in err to refuse the
 * change whole.
 */
typedef int (*sky_subs_validator_fn)(void *arg, enum sky_subs_event ev, uint32_t index,
				     const void *newval, char *err, size_t errlen);
int sky_subs_validate_hook(struct sky_subs *s, sky_subs_validator_fn fn, void *arg);
/**
 * Another ordering for `subscriber top by=NAME` (qoe: rtt, retrans), so the subscriber
 * model needs nothing of the module that measures it. rank fills idx with at most n
 * subscriber indexes, worst first, and returns how many. The rows are the subscribers' own
 * (the module adds its figures with sky_ctl_extend("subscriber top")). NAME: 1..15 chars.
 * Returns 0, -EINVAL, -EEXIST, -ENOSPC.
 */
typedef unsigned int (*sky_subs_rank_fn)(void *arg, uint32_t *idx, unsigned int n);
int sky_subs_top_order(struct sky_subs *s, const char *name, sky_subs_rank_fn rank, void *arg);

/* --- for modules that act on subscribers (lib/quota; control path) --- */
/** Keys of `plans.NAME` that another module reads (lib/quota's fair-use terms): the
 *  model accepts them and leaves them to that module's checks. */
#define SKY_PLAN_EXTRA_KEYS                                                                        \
	"allowance", "period", "timezone", "count", "uncounted", "uncounted_classes", "over", "peak"
/**
 * Append a plan derived from a configured one (e.g. a graded rate), before the shaper is
 * created (it sizes its plans then). Its bursts and weight count as given. Returns its
 * index, or -1 with err (SKY_MAX_PLANS reached, a name in use, a zero rate).
 */
int sky_subs_plan_add(struct sky_subs *s, const struct sky_plan *p, char *err, size_t errlen);
/**
 * Change plan idx as `plan set` does (validators asked, applied, listeners told), without
 * the journal: for a plan derived from one whose change was journaled. Control thread;
 * callable from a listener. 0 or -1 with err.
 */
int sky_subs_plan_update(struct sky_subs *s, unsigned int idx, const struct sky_plan *p, char *err,
			 size_t errlen);
/**
 * The plan the data path applies to subscriber idx: plan index `plan`, or his own plan
 * when plan < 0. One atomic store of the record's word (the same store as `subscriber set
 * ... plan=`: the shaper moves his slot, queued packets kept); his own plan in
 * sky_sub_info is unchanged. A later change of the subscriber (set, load) writes his own
 * plan back: whoever overrides listens and applies again. 0, -ENOENT (no subscriber at
 * idx), -EINVAL (plan out of range).
 */
int sky_subs_set_plan_override(struct sky_subs *s, uint32_t idx, int plan);
/**
 * Keys of `plan set` that another module owns (lib/quota: allowance). fn(arg, plan, key,
 * value, apply, err, errlen) checks the value (apply 0) before the change is journaled,
 * then applies it (apply 1) after the plan's own keys; 0, or -1 with a reason in err.
 * keys: NULL-terminated, borrowed. One owner. 0, -EEXIST, -EINVAL.
 */
typedef int (*sky_subs_plan_key_fn)(void *arg, unsigned int plan, const char *key,
				    const char *value, int apply, char *err, size_t errlen);
int sky_subs_plan_key_hook(struct sky_subs *s, const char *const *keys, sky_subs_plan_key_fn fn,
			   void *arg);
/**
 * A per-subscriber figure of another module that `subscriber top by=NAME` (or `--by NAME`)
 * sorts by, e.g. lib/quota's "usage" (bytes counted this period): fn(arg, idx) gives the
 * value of subscriber idx (0 = not listed). Control path. 0, -EEXIST, -ENOSPC, -EINVAL.
 */
typedef uint64_t (*sky_subs_top_fn)(void *arg, uint32_t idx);
int sky_subs_top_key(struct sky_subs *s, const char *name, sky_subs_top_fn fn, void *arg);
/** Bytes of subscriber idx summed over workers: out[dir * n_classes + class] (dir as
 *  SKY_DIR_*), 2 * sky_subs_n_classes() values. */
void sky_subs_bytes(const struct sky_subs *s, uint32_t idx, uint64_t *out);

/* --- data path --- */
/**
 * Fill sub_idx, sub_id, plan, beam, sub_country, realm, zone, quota_state of each live
 * packet: upstream by
 * source, downstream by destination address, longest prefix wins, realm = outer VLAN id
 * when the subscriber has one. Unknown: drop (SKY_DROP_SUB_UNKNOWN) or the default plan
 * with sub_idx = SKY_SUB_NONE. Reads the published table once per burst, and prefetches
 * each hit's counter line for sky_subs_account_burst (structure and figures:
 * lib/subscriber/README.md).
 */
void sky_subs_lookup_burst(struct sky_subs *s, unsigned int worker, struct sky_meta *meta,
			   uint16_t n);
/** Count packets/bytes per subscriber, direction and class, and drops by reason. */
void sky_subs_account_burst(struct sky_subs *s, unsigned int worker, const struct sky_meta *meta,
			    uint16_t n);

#endif /* SKYGATE_SUBSCRIBER_H */
