/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * skygate-pktgen: the project's DPDK traffic generator.
 *
 * Two ports: port 0 faces skygate's uplink port (it plays the terminals), port 1 faces the
 * backhaul port (it plays the internet hosts). Upstream flows leave port 0 with the
 * subscriber's address as source and must come back on port 1; downstream flows go the
 * other way. Every packet carries a stamp (flow, class, direction, per-flow sequence, TX
 * TSC); the receiving side counts per flow and the control path sums per subscriber,
 * class, direction and country at the end.
 *
 * Control path (pg_opts.c, pg_geo.c, pg_report.c, pg_main.c): options, subscriber CSV,
 * remote address pools from libloc, flow table, JSON report. Plain malloc.
 * Data path (pg_main.c: loop()): one lcore polls both ports, TX paced from the TSC by a
 * token bucket per burst, RX parsed and accounted per flow. No malloc, no syscalls.
 *
 * Sizes are Ethernet frame lengths including the 4-byte FCS (64 = 60 bytes in the mbuf),
 * rates in frame bits (size * 8) or packets per second.
 */
#ifndef SKYGATE_PKTGEN_H
#define SKYGATE_PKTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_MAX_CLASSES 8
#define PG_MAX_MIX 64 /* entries of --remote-countries / --countries */
#define PG_NAME_MAX 32
#define PG_MAX_NAMES 64 /* distinct plans / beams in a CSV */
#define PG_MAX_FLOWS (1u << 24)
/* latency histogram: log2 buckets of cycles, each split in 64 linear steps (<= 1.6% wide:
 * at 100 ms a bound within 1.6 ms; 8 steps gave 7 ms, and a p99 reported as 102 ms could
 * have been 95) */
#define PG_HIST_SUB_BITS 6
#define PG_HIST_SUB (1u << PG_HIST_SUB_BITS)
#define PG_HIST_BUCKETS (64 * PG_HIST_SUB)
#define PG_MIN_FRAME 60	  /* without FCS */
#define PG_MAX_FRAME 1522 /* with FCS: 1518 + one VLAN tag */
#define PG_FCS 4

/* ---- traffic classes: the mapping the demo config classifies on ---- */
struct pg_service {
	uint8_t proto; /* IPPROTO_UDP / IPPROTO_TCP */
	uint16_t port; /* the service (internet-side) port */
};

struct pg_class_def {
	const char *name;
	uint8_t dscp;
	uint8_t n_svc;
	struct pg_service svc[2];
};

extern const struct pg_class_def pg_classes[];
extern const unsigned int pg_n_classes;

/* ---- weighted mixes: "realtime:10,bulk:50" or "US:40,DE:20" ---- */
struct pg_mix {
	unsigned int n;
	char name[PG_MAX_MIX][PG_NAME_MAX];
	double weight[PG_MAX_MIX];
};

/** Parse "a:w,b:w" (a bare name has weight 1). 0, or -1 with a message in err. */
int pg_mix_parse(const char *s, struct pg_mix *mix, char *err, size_t errlen);
/**
 * Split total items among the mix entries by largest remainder: out[i] counts sum to total,
 * each within 1 of total * w_i / sum(w).
 */
void pg_mix_apportion(const struct pg_mix *mix, uint64_t total, uint64_t *out);

/* ---- rates and sizes ---- */
enum pg_rate_unit { PG_RATE_NONE = 0, PG_RATE_PPS, PG_RATE_BPS };

struct pg_rate {
	enum pg_rate_unit unit; /* NONE = as fast as possible */
	double value;		/* pps or bit/s */
};

/** "200000pps", "1.5Mpps", "500Mbit", "1Gbps", "0". 0 or -1 with err. */
int pg_rate_parse(const char *s, struct pg_rate *r, char *err, size_t errlen);

enum pg_size_mode { PG_SIZE_FIXED, PG_SIZE_IMIX, PG_SIZE_RANGE };

struct pg_size {
	enum pg_size_mode mode;
	uint16_t lo, hi; /* frame sizes with FCS; lo == hi for FIXED */
};

/** "64", "imix", "60-1500". 0 or -1 with err. */
int pg_size_parse(const char *s, struct pg_size *sz, char *err, size_t errlen);
/** Fill tab[n] (n a power of two) with the size sequence (seeded shuffle for imix/range). */
void pg_size_table(const struct pg_size *sz, uint16_t *tab, unsigned int n, uint64_t seed);

/* ---- subscribers ---- */
struct pg_sub {
	uint32_t id;
	uint8_t has_v4, has_v6;
	uint8_t v4[4]; /* the host address used (first host of the prefix), network order */
	uint8_t v6[16];
	uint16_t country;   /* 'D' << 8 | 'E' */
	uint16_t realm;	    /* outer VLAN, 0 = untagged */
	uint8_t plan, beam; /* indexes into pg_subs.plans / beams */
};

struct pg_subs {
	struct pg_sub *v;
	uint32_t n, cap;
	unsigned int n_plans, n_beams;
	char plans[PG_MAX_NAMES][PG_NAME_MAX];
	char beams[PG_MAX_NAMES][PG_NAME_MAX];
};

/**
 * Load the subscriber CSV (id,ipv4,ipv6,plan,beam,country[,realm]) with libskygate's reader
 * (sky_subs_csv_parse_file): exactly the files skygate reads, refused with the same
 * FILE:LINE messages; any plan and beam names (up to PG_MAX_NAMES each). limit 0 = all.
 */
int pg_subs_load(struct pg_subs *s, const char *path, uint32_t limit, char *err, size_t errlen);

struct pg_gen {
	uint32_t n;
	struct pg_mix countries; /* weights ignored; spread evenly in blocks */
	struct pg_mix beams, plans;
	double v6_share;
	unsigned int realms; /* 0 = no realm column */
	uint8_t v4_base[4];
	uint8_t v4_len;
	uint8_t v6_base[16];
	uint8_t v6_len;
	uint64_t seed;
};

/** Generate n subscribers (addresses from the bases, /32 and /56 each). */
int pg_subs_generate(struct pg_subs *s, const struct pg_gen *g, char *err, size_t errlen);
/** Write the CSV skygate reads (pg_subs_load reads it back the same). */
int pg_subs_write_csv(const struct pg_subs *s, const char *path, char *err, size_t errlen);
void pg_subs_free(struct pg_subs *s);
/** First host of an address/prefix ("10.0.0.0/24" -> 10.0.0.1, "/32" itself). */
int pg_prefix_first_host(const char *txt, int family, uint8_t *out);

static inline uint16_t
pg_cc(const char *s)
{
	return (uint16_t)(((uint16_t)(uint8_t)s[0] << 8) | (uint8_t)s[1]);
}

static inline void
pg_cc_str(uint16_t cc, char out[3])
{
	out[0] = (char)(cc >> 8);
	out[1] = (char)(cc & 0xff);
	out[2] = 0;
}

/* ---- remote addresses from libloc ---- */
struct pg_geo_pool {
	uint16_t cc;
	uint32_t n4, n6;
	uint8_t (*v4)[4];
	uint8_t (*v6)[16];
};

/**
 * Build pools of per_country random addresses per family for each country of mix, each
 * verified to geolocate to that country. NULL with err on failure.
 */
struct pg_geo_pool *pg_geo_pools(const char *db_path, const struct pg_mix *mix,
				 unsigned int per_country, uint64_t seed, char *err, size_t errlen);
void pg_geo_pools_free(struct pg_geo_pool *p, unsigned int n);
/** The n countries with the most IPv4 networks in the database, into mix (weight 1). */
int pg_geo_top_countries(const char *db_path, unsigned int n, struct pg_mix *mix, char *err,
			 size_t errlen);

/* ---- stamp ---- */
/*
 * 16 bytes of facts per packet. UDP: all in the payload right after the header.
 * TCP: seq in th.sent_seq, tsc low 32 in th.recv_ack, magic in th.rx_win, tsc high 16 in
 * th.tcp_urp (URG clear), the flow word in the first 4 payload bytes — so an IPv4 TCP
 * frame still fits in 64 bytes.
 */
#define PG_FW_FLOW_MASK 0x00ffffffu
#define PG_FW_CLASS_SHIFT 24
#define PG_FW_DIR_SHIFT 27

/*
 * TCP timestamps (--rtt-emulate): a TCP flow's data segments carry the timestamp option
 * (NOP, NOP, kind 8: 12 bytes, so the header is 32 bytes) with TSval = the flow's packet
 * number + 1 (a timestamp clock that ticks once a segment: RFC 7323 asks only that it never
 * goes back, and no two segments of a flow share one) and TSecr 0, and their sequence
 * number is the flow's packet number << PG_TS_SEQ_SHIFT (2048 bytes apart: no segment
 * overlaps the next, so skygate counts no retransmission that was not one). The host that
 * receives a segment with a TSval it has not echoed yet answers after twice its side's
 * one-way delay with a pure ACK (no payload, PSH clear): TSval its own clock
 * (milliseconds), TSecr the segment's TSval, the flow word | PG_FW_ECHO in the
 * acknowledgement number, the magic in the window. skygate's passive RTT then measures
 * 2 x the configured one-way delay of that side plus what skygate itself queued.
 */
#define PG_FW_ECHO 0x10000000u /* with the flow word: an echo (pure ACK) of that flow */
#define PG_TS_SEQ_SHIFT 11     /* sequence number = packet number << 11 (2048 bytes) */
#define PG_TS_OPT_LEN 12

/* ---- --rtt-emulate: one-way delays of the terminal side and the internet side ---- */
#define PG_RTT_MAX 8 /* the default and up to 7 beams */
struct pg_rtt {
	unsigned int n;			    /* 0 = off; [0] is the default */
	char beam[PG_RTT_MAX][PG_NAME_MAX]; /* "" for the default */
	uint32_t sat_us[PG_RTT_MAX];	    /* one way: terminal <-> gateway (satellite) */
	uint32_t inet_us[PG_RTT_MAX];	    /* one way: gateway <-> server (internet) */
	double retrans;			    /* share of TCP data segments sent twice */
};

/**
 * "SAT_MS:INET_MS[,BEAM=SAT_MS:INET_MS...]": one-way delays in milliseconds (0..10000, three
 * decimals at most), the first for every beam not named. 0 or -1 with err.
 */
int pg_rtt_parse(const char *s, struct pg_rtt *rt, char *err, size_t errlen);

struct pg_udp_stamp {
	uint16_t magic;
	uint16_t tsc_hi;
	uint32_t flow_word;
	uint32_t seq;
	uint32_t tsc_lo;
} __attribute__((packed));

/* ---- per-flow sequence accounting ---- */
struct pg_seq {
	uint32_t next; /* next expected sequence number */
	uint32_t pad;
	uint64_t window; /* bit i: next - 1 - i was received */
	uint64_t rx;	 /* all received, including duplicates */
	uint64_t dup;
	uint64_t reord; /* arrived after a later sequence number */
	uint64_t gap;	/* sequence numbers skipped and not (yet) filled */
};

enum pg_seq_res { PG_SEQ_OK, PG_SEQ_GAP, PG_SEQ_REORD, PG_SEQ_DUP, PG_SEQ_LATE };

/** Account one sequence number. Data path, inline. */
static inline enum pg_seq_res
pg_seq_update(struct pg_seq *s, uint32_t seq)
{
	s->rx++;
	if (seq == s->next) {
		s->window = (s->window << 1) | 1;
		s->next = seq + 1;
		return PG_SEQ_OK;
	}
	if ((int32_t)(seq - s->next) > 0) {
		uint32_t skip = seq - s->next;
		s->gap += skip;
		s->window = skip >= 63 ? 1 : ((s->window << (skip + 1)) | 1);
		s->next = seq + 1;
		return PG_SEQ_GAP;
	}
	uint32_t back = s->next - 1 - seq; /* 0 = the last one received */
	if (back >= 64) {
		/* too old to tell a duplicate from a late packet: call it late (reordered) */
		s->reord++;
		if (s->gap)
			s->gap--;
		return PG_SEQ_LATE;
	}
	uint64_t bit = 1ull << back;
	if (s->window & bit) {
		s->dup++;
		return PG_SEQ_DUP;
	}
	s->window |= bit;
	s->reord++;
	if (s->gap)
		s->gap--;
	return PG_SEQ_REORD;
}

/* ---- latency histogram (cycles, log buckets with PG_HIST_SUB linear steps each) ---- */
static inline unsigned int
pg_hist_bucket(uint64_t cyc)
{
	if (cyc < PG_HIST_SUB)
		return (unsigned int)cyc;
	unsigned int msb = 63 - (unsigned int)__builtin_clzll(cyc);
	return msb * PG_HIST_SUB +
	       (unsigned int)((cyc >> (msb - PG_HIST_SUB_BITS)) & (PG_HIST_SUB - 1));
}

/** Upper bound (cycles) of bucket b. */
uint64_t pg_hist_bucket_hi(unsigned int b);
/** Value at quantile q (0..1) of hist (upper bucket bound, capped at max_cyc). */
uint64_t pg_hist_quantile(const uint64_t *hist, double q, uint64_t max_cyc);

/** Split "a,b,c" into mix entries of weight 1 (for --beams / --plans / --countries). */
int pg_list_parse(const char *s, struct pg_mix *mix, char *err, size_t errlen);

/** splitmix64 step: the seeded PRNG used everywhere outside the data path. */
static inline uint64_t
pg_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif /* SKYGATE_PKTGEN_H */
