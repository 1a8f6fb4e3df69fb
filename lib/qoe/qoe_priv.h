/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the files of lib/qoe share: the window's storage. Private to this folder.
 *
 * qoe.c      the tables: samples in, windows rolled, views, grade, ranking
 * qoe_cfg.c  the `qoe:` section
 * qoe_ctl.c  commands, the fields added to subscriber/beam views, telemetry, Prometheus
 */
#ifndef SKYGATE_QOE_PRIV_H
#define SKYGATE_QOE_PRIV_H

#include "skygate/qoe.h"
#include "skygate/subscriber.h"

/* log-linear bins: 2^sub_bits per octave from 256 us, linear below, 15 octaves (to 8.4 s;
 * longer RTTs land in the last bin, the window's max clamps what it reports) */
#define QOE_SUB_BITS 3	/* subscribers: 128 bins of 1/8 octave */
#define QOE_BEAM_BITS 4 /* beams: 256 bins of 1/16 octave */
#define QOE_BINS(sb) (16u << (sb))
#define QOE_SUB_BINS QOE_BINS(QOE_SUB_BITS)
#define QOE_BEAM_BINS QOE_BINS(QOE_BEAM_BITS)
#define QOE_NONE UINT32_MAX /* no entry / no minimum */

/* Prometheus buckets of the beams' cumulative histograms (microseconds) */
#define QOE_PROM_LE                                                                                \
	5000, 10000, 20000, 30000, 50000, 75000, 100000, 150000, 200000, 300000, 400000, 500000,   \
		600000, 750000, 1000000, 1500000, 2000000, 5000000
#define QOE_N_LE 18

/* one slot of a subscriber's window (u16 counts, saturating: a slot is 10 s) */
struct qoe_sub_slot {
	uint16_t h[2][QOE_SUB_BINS];
	uint32_t n[2], min[2], max[2];
	uint32_t segs[2], retrans[2];
};

struct qoe_sub {
	uint32_t idx; /* subscriber index, QOE_NONE = free */
	uint32_t id;  /* operator's id of the samples' subscriber */
	uint16_t beam;
	uint64_t epoch;	    /* slot number (now / slot_us) of the newest slot */
	uint64_t min_epoch; /* same for the min window */
	uint64_t last_us;
	uint32_t lmin[2][SKY_QOE_SLOTS]; /* min per min-window slot, QOE_NONE = none */
	struct qoe_sub_slot s[SKY_QOE_SLOTS];
};

struct qoe_beam_slot {
	uint32_t h[2][QOE_BEAM_BINS];
	uint32_t n[2], min[2], max[2];
	uint64_t segs[2], retrans[2];
};

struct qoe_beam {
	uint64_t epoch, min_epoch, last_us;
	uint32_t lmin[2][SKY_QOE_SLOTS];
	struct qoe_beam_slot s[SKY_QOE_SLOTS];
	/* since start, for Prometheus */
	uint64_t cum[2][QOE_N_LE]; /* samples <= le */
	uint64_t count[2], sum_us[2];
	uint64_t segs_total[2], retrans_total[2];
};

struct sky_qoe {
	struct sky_qoe_params p;
	struct sky_subs *subs;
	uint64_t slot_us, min_slot_us;
	uint32_t n_idx;	      /* subscriber indexes */
	uint32_t *map;	      /* [n_idx]: entry of a subscriber index, QOE_NONE = none */
	struct qoe_sub *ents; /* [p.max_subs] */
	uint32_t n_used;      /* entries handed out once (the rest were never used) */
	uint32_t hand;	      /* clock hand of the idle-entry search */
	uint32_t *free_list;  /* entries freed (subscriber removed) */
	uint32_t n_free;
	unsigned int n_beams;
	struct qoe_beam *beams; /* [n_beams] */
	struct sky_qoe_stats st;
	int registered;
	void (*on_destroy)(struct sky_qoe *q); /* qoe_ctl.c: forget the telemetry pointer */
};

/* qoe.c: an entry given up (its subscriber was removed) */
void qoe_forget(struct sky_qoe *q, uint32_t idx);

#endif /* SKYGATE_QOE_PRIV_H */
