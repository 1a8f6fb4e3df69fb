/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The flow table's data path: one lookup per packet, the RTT matcher, the record
 * counters, the expiry scan. Worker lcore; no allocation, no lock, no log, no syscall.
 *
 * A burst is three passes over the packets that have a subscriber: (1) build each key,
 * hash it once (CRC32) and prefetch its bucket; (2) compare the 16 signatures of each
 * bucket and prefetch the first matching entry's two hot lines; (3) in packet order,
 * compare that candidate's key, or find or insert the entry, and update it. Once the
 * burst has inserted or ended an entry, pass 3 checks a candidate's slot again and walks
 * the bucket on a miss (it is cached), so two packets of a new flow in one burst meet in
 * one entry and an eviction never leaves a stale pointer behind.
 */
#include <netinet/in.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_hash_crc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring_elem.h>
#ifdef RTE_ARCH_X86
#include <immintrin.h>
#endif
#if RTE_BYTE_ORDER != RTE_LITTLE_ENDIAN
#error "flow keys are built as little-endian words"
#endif

#include "flow_priv.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* serial number arithmetic (RFC 1982) on 32 bits: a is after b */
static inline int
after(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

/* slots of b whose signature is sig, one bit per slot */
static inline uint32_t
sig_match(const struct flow_bucket *b, uint16_t sig)
{
#ifdef RTE_ARCH_X86
	const __m128i s = _mm_set1_epi16((short)sig);
	const __m128i lo = _mm_load_si128((const __m128i *)(const void *)&b->sig[0]);
	const __m128i hi = _mm_load_si128((const __m128i *)(const void *)&b->sig[8]);
	/* packs keep one byte per 16-bit lane: one movemask bit per slot */
	const __m128i eq = _mm_packs_epi16(_mm_cmpeq_epi16(lo, s), _mm_cmpeq_epi16(hi, s));

	return (uint32_t)_mm_movemask_epi8(eq);
#else
	uint32_t m = 0;

	for (unsigned int i = 0; i < FLOW_WAYS; i++)
		m |= (uint32_t)(b->sig[i] == sig) << i;
	return m;
#endif
}

static inline uint64_t
ld64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t
ld32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* what key_of and the counters load together */
_Static_assert(offsetof(struct sky_meta, dport) == offsetof(struct sky_meta, sport) + 2,
	       "sky_meta ports");
_Static_assert(offsetof(struct sky_meta, proto) == offsetof(struct sky_meta, l3) + 1,
	       "sky_meta l3, proto");
_Static_assert(offsetof(struct flow_key, proto) == offsetof(struct flow_key, l3) + 1,
	       "flow_key l3, proto");
_Static_assert(offsetof(struct sky_meta, reason) == offsetof(struct sky_meta, verdict) + 1,
	       "sky_meta verdict, reason");
_Static_assert(offsetof(struct flow_ent, reason) == offsetof(struct flow_ent, verdict) + 1,
	       "flow_ent verdict, reason");

/* a big-endian 32-bit field at any alignment */
static inline uint32_t
be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return rte_be_to_cpu_32(v);
}

static inline int
key_eq(const struct flow_key *a, const struct flow_key *b)
{
	const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
#if defined(RTE_ARCH_X86) && defined(__SSE4_1__)
	/* two 16-byte compares and one 8-byte one: 8 instructions instead of 15 */
	const __m128i d0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)x),
					 _mm_loadu_si128((const __m128i *)(const void *)y));
	const __m128i d1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(x + 16)),
					 _mm_loadu_si128((const __m128i *)(const void *)(y + 16)));

	return _mm_testz_si128(_mm_or_si128(d0, d1), _mm_or_si128(d0, d1)) &&
	       ld64(x + 32) == ld64(y + 32);
#else
	return ((ld64(x) ^ ld64(y)) | (ld64(x + 8) ^ ld64(y + 8)) | (ld64(x + 16) ^ ld64(y + 16)) |
		(ld64(x + 24) ^ ld64(y + 24)) | (ld64(x + 32) ^ ld64(y + 32))) == 0;
#endif
}

static inline uint16_t
sig_of(uint32_t h)
{
	uint16_t s = (uint16_t)(h >> 16);

	return s != 0 ? s : 1;
}

/* ICMP echo request / reply: 1 / 2, anything else 0 */
static inline int
icmp_echo(const struct sky_meta *m)
{
	if (!(m->flags & SKY_MF_ICMP))
		return 0;
	if (m->l3 == 4)
		return m->icmp_type == 8 ? 1 : m->icmp_type == 0 ? 2 : 0;
	return m->icmp_type == 128 ? 1 : m->icmp_type == 129 ? 2 : 0;
}

/* CRC32-C of one 64-bit word (the instruction rte_hash_crc_8byte uses; the intrinsic lets
 * the compiler schedule it, the header's asm volatile does not) */
static inline uint32_t
crc64(uint64_t w, uint32_t h)
{
#if defined(RTE_ARCH_X86_64) && defined(__SSE4_2__)
	return (uint32_t)_mm_crc32_u64(h, w);
#else
	return rte_hash_crc_8byte(w, h);
#endif
}

/*
 * The key of packet m into k, and its hash; 0, or -1 when the packet cannot be tracked.
 * The key is built in registers and stored once, word by word: the hash reads the words,
 * not the stored key (a load of bytes just stored in pieces stalls on store forwarding).
 */
static inline int
key_of(const struct sky_meta *m, const struct rte_mbuf *mb, struct flow_key *k, uint32_t seed,
       uint32_t *hash)
{
	const uint8_t *s = sky_meta_sub_addr(m), *r = sky_meta_remote_addr(m);
	uint64_t w[5];
	uint32_t sp, rp, h;
	uint16_t l3p;

	if (m->flags & SKY_MF_PORTS) {
		/* sport and dport in one load; downstream, the halves swap */
		uint32_t pp = ld32(&m->sport);

		pp = m->dir == SKY_DIR_UP ? pp : pp >> 16 | pp << 16;
		sp = pp & 0xffff;
		rp = pp >> 16;
	} else if (icmp_echo(m)) {
		uint8_t buf[2];
		const uint8_t *id = rte_pktmbuf_read(mb, (uint32_t)m->l4_off + 4, 2, buf);

		/* both directions of an echo carry the identifier: the flow's "port" */
		sp = id != NULL ? (uint32_t)(id[0] << 8 | id[1]) : 0;
		rp = 0;
	} else {
		if ((m->flags & SKY_MF_FRAG) && !(m->flags & SKY_MF_FRAG_FIRST) &&
		    (m->proto == IPPROTO_TCP || m->proto == IPPROTO_UDP ||
		     m->proto == IPPROTO_SCTP))
			return -1; /* a later fragment: its ports are in the first one */
		sp = 0;
		rp = 0;
	}
	memcpy(&w[0], s, 8);
	memcpy(&w[1], s + 8, 8);
	memcpy(&w[2], r, 8);
	memcpy(&w[3], r + 8, 8);
	/* sub_port, rem_port, realm, l3, proto: the struct's last word (little endian) */
	memcpy(&l3p, &m->l3, sizeof(l3p)); /* l3, proto */
	w[4] = (uint64_t)sp | (uint64_t)rp << 16 | (uint64_t)m->realm << 32 | (uint64_t)l3p << 48;
	h = crc64(w[0], seed);
	h = crc64(w[1], h);
	h = crc64(w[2], h);
	h = crc64(w[3], h);
	h = crc64(w[4], h);
	memcpy(k, w, sizeof(w));
	*hash = h;
	return 0;
}

/* what the flow stage reads of a TCP header */
struct tcp_seg {
	uint32_t seq, ack, plen, tsval, tsecr;
	uint8_t flags;
	uint8_t has_ts;
};

/*
 * Read the TCP header at m->l4_off: flags, seq, ack, payload length, and the timestamp
 * option if the options hold exactly one well-formed one. Returns 0, or -1 when the
 * header cannot be read. Malformed options (a length below 2 or past the header's end, a
 * timestamp option that is not 10 bytes) count and give no timestamp.
 */
static inline int
tcp_read(struct flow_worker *w, const struct rte_mbuf *mb, const struct sky_meta *m,
	 struct tcp_seg *t)
{
	uint8_t buf[60];
	const uint8_t *h;
	uint32_t hl, ipl, optlen;
	const uint8_t *o;

	/* the header in the first segment (the parser read this line): a pointer, no copy */
	if (likely((uint32_t)m->l4_off + 20 <= rte_pktmbuf_data_len(mb)))
		h = rte_pktmbuf_mtod_offset(mb, const uint8_t *, m->l4_off);
	else if (unlikely((h = rte_pktmbuf_read(mb, m->l4_off, 20, buf)) == NULL))
		return -1;
	t->seq = be32(h + 4);
	t->ack = be32(h + 8);
	t->flags = h[13];
	t->has_ts = 0;
	t->tsval = 0;
	t->tsecr = 0;
	hl = (uint32_t)(h[12] >> 4) << 2;
	ipl = (uint32_t)m->ip_len - (uint32_t)(m->l4_off - m->l3_off);
	t->plen = ipl > hl && hl >= 20 ? ipl - hl : 0;
	if (hl <= 20)
		return 0; /* no options: the common case of a pure ACK without timestamps */
	optlen = hl - 20;
	if (likely(h != buf && (uint32_t)m->l4_off + hl <= rte_pktmbuf_data_len(mb)))
		o = h + 20; /* the options are in the segment too */
	else if (unlikely((o = rte_pktmbuf_read(mb, (uint32_t)m->l4_off + 20, optlen, buf + 20)) ==
			  NULL)) {
		w->ctr[FLOW_CTR_tcp_bad_options]++;
		return 0;
	}
	/* the usual layout of a data segment first: NOP NOP TS(10), nothing else (the four
	 * bytes 01 01 08 0a in one compare) */
	if (likely(optlen == 12 && ld32(o) == RTE_BE32(0x0101080a))) {
		t->tsval = be32(o + 4);
		t->tsecr = be32(o + 8);
		t->has_ts = 1;
		return 0;
	}
	/* any layout: at most 40 bytes, each step moves at least one */
	for (uint32_t i = 0; i < optlen;) {
		uint8_t kind = o[i], len;

		if (kind == 0)
			break; /* end of options */
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= optlen || (len = o[i + 1]) < 2 || i + len > optlen ||
		    (kind == 8 && len != 10)) {
			w->ctr[FLOW_CTR_tcp_bad_options]++;
			t->has_ts = 0;
			return 0;
		}
		if (kind == 8) {
			t->tsval = be32(o + i + 2);
			t->tsecr = be32(o + i + 6);
			t->has_ts = 1;
		}
		i += len;
	}
	return 0;
}

static inline void
emit_sample(struct flow_worker *w, struct flow_ent *e, unsigned int half, unsigned int kind,
	    uint32_t rtt_us)
{
	const struct flow_cold *c = &w->c[e - w->e];
	struct sky_rtt_sample s = {
		.sub_idx = e->sub_idx,
		.sub_id = c->sub_id,
		.beam = c->beam,
		.half = (uint8_t)half,
		.kind = (uint8_t)kind,
		.rtt_us = rtt_us,
		.segs = {e->segs[0], e->segs[1]},
		.retrans = {e->retrans[0], e->retrans[1]},
	};

	e->segs[0] = e->segs[1] = 0;
	e->retrans[0] = e->retrans[1] = 0;
	if (unlikely(rte_ring_sp_enqueue_elem(w->rtt_ring, &s, sizeof(s)) != 0))
		w->ctr[FLOW_CTR_rtt_ring_drops]++;
	else if (rtt_us != 0)
		w->ctr[FLOW_CTR_samples]++;
	else
		w->ctr[FLOW_CTR_count_samples]++;
}

/* the flow's segment counts leave without an RTT (once a window, and at its end) */
static void
flush_counts(struct flow_worker *w, struct flow_ent *e)
{
	if ((e->segs[0] | e->segs[1]) != 0)
		emit_sample(w, e, SKY_RTT_SAT, SKY_RTT_TCP_TS, 0);
}

static inline void
arm(struct flow_ent *e, unsigned int d, uint32_t v, uint32_t now_f, uint8_t hs)
{
	e->pend[d] = v;
	e->pend_f[d] = now_f;
	e->st = (uint8_t)((e->st & ~(FST_HS << d)) | ((FST_ARM | FST_SEEN) << d) | (hs << d));
}

static inline void
disarm(struct flow_ent *e, unsigned int d)
{
	e->st &= (uint8_t) ~(FST_ARM << d);
}

/*
 * The value armed in direction d came back in the reverse direction: one RTT of the half
 * that d's sender sits on the far side of (the terminal's value, UP, echoed by the server
 * measures the internet half; the server's, DOWN, echoed by the terminal the satellite
 * half). At most one sample per smp_gap per flow and half.
 */
static void
matched(const struct sky_flow *f, struct flow_worker *w, struct flow_ent *e, unsigned int d,
	uint32_t now_f, uint32_t now_c, unsigned int kind)
{
	uint32_t dt = now_f - e->pend_f[d];
	unsigned int half = d == SKY_DIR_UP ? SKY_RTT_INET : SKY_RTT_SAT;
	struct flow_cold *c = &w->c[e - w->e];
	uint32_t us;

	disarm(e, d);
	if (dt > FLOW_RTT_MAX_F)
		return;
	if ((e->st2 & (FST2_SMP << half)) && now_c - c->last_smp_c[half] < f->smp_gap_c) {
		w->ctr[FLOW_CTR_samples_limited]++;
		return;
	}
	us = (uint32_t)(((uint64_t)dt * f->us_mul) >> 24);
	if (us == 0)
		us = 1; /* 0 means "counts only" */
	e->st2 |= (uint8_t)(FST2_SMP << half);
	c->last_smp_c[half] = now_c;
	c->rtt_us[half] = us;
	emit_sample(w, e, half, kind, us);
}

/* RTT and retransmissions of a passed TCP segment in direction d */
static inline void
tcp_rtt(const struct sky_flow *f, struct flow_worker *w, struct flow_ent *e, unsigned int d,
	const struct tcp_seg *t, uint32_t now_f, uint32_t now_c)
{
	const unsigned int r = d ^ 1;

	if (t->plen != 0) {
		uint32_t end = t->seq + t->plen;

		e->segs[d]++;
		if ((e->st & (FST_HI << d)) && !after(end, e->hiend[d])) {
			/* a retransmission: counted, and no RTT from it either way */
			e->retrans[d]++;
			return;
		}
		e->hiend[d] = end;
		e->st |= (uint8_t)(FST_HI << d);
	}
	if (likely(t->has_ts)) {
		/* the echo: the reverse direction's armed TSval */
		if ((e->st & ((FST_ARM | FST_HS) << r)) == (FST_ARM << r)) {
			if (t->tsecr == e->pend[r])
				matched(f, w, e, r, now_f, now_c, SKY_RTT_TCP_TS);
			else if (after(t->tsecr, e->pend[r]))
				disarm(e, r); /* its echo passed unseen: stale */
		}
		/* the sighting: only a TSval newer than the last one armed, and only while
		 * nothing is armed (a repeated TSval keeps its first sighting) */
		if (!(e->st & (FST_ARM << d)) &&
		    (!(e->st & (FST_SEEN << d)) || (e->st & (FST_HS << d)) ||
		     after(t->tsval, e->pend[d])))
			arm(e, d, t->tsval, now_f, 0);
		return;
	}
	/* no timestamps: the handshake. SYN arms seq + 1; the SYN-ACK that acks it measures
	 * the far half of the SYN's sender and arms its own seq + 1; the ACK that acks that
	 * measures the other half. */
	if ((e->st & ((FST_ARM | FST_HS) << r)) == ((FST_ARM | FST_HS) << r) &&
	    (t->flags & TH_ACK)) {
		if (t->ack == e->pend[r])
			matched(f, w, e, r, now_f, now_c, SKY_RTT_HANDSHAKE);
		else
			disarm(e, r);
	}
	if (t->flags & TH_SYN) {
		uint32_t v = t->seq + 1;

		/* a retransmitted SYN keeps the first sighting */
		if ((e->st & ((FST_ARM | FST_HS) << d)) != ((FST_ARM | FST_HS) << d) ||
		    e->pend[d] != v)
			arm(e, d, v, now_f, FST_HS);
	}
}

/* ICMP echo: a request arms id.seq (a new one replaces it), the reply matches it */
static inline void
icmp_rtt(const struct sky_flow *f, struct flow_worker *w, struct flow_ent *e, unsigned int d,
	 const struct rte_mbuf *mb, const struct sky_meta *m, int echo, uint32_t now_f,
	 uint32_t now_c)
{
	uint8_t buf[4];
	const uint8_t *h = rte_pktmbuf_read(mb, (uint32_t)m->l4_off + 4, 4, buf);
	uint32_t v;

	if (h == NULL)
		return;
	v = be32(h);
	if (echo == 1) {
		if ((e->st & (FST_ARM << d)) == 0 || e->pend[d] != v)
			arm(e, d, v, now_f, 0);
	} else if ((e->st & (FST_ARM << (d ^ 1))) && e->pend[d ^ 1] == v) {
		matched(f, w, e, d ^ 1, now_f, now_c, SKY_RTT_ICMP_ECHO);
	}
}

/* the TSC a coarse time stands for, relative to now (u32 coarse times wrap) */
static inline uint64_t
tsc_of_c(const struct sky_flow *f, uint32_t c, uint64_t now_tsc)
{
	uint64_t now_full = now_tsc >> f->shift_c;

	return (now_full - (uint32_t)((uint32_t)now_full - c)) << f->shift_c;
}

void
sky_flow_fill_rec(const struct sky_flow *f, const struct flow_ent *e, const struct flow_cold *c,
		  unsigned int worker, uint64_t now_tsc, struct sky_flow_rec *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->sub_addr, e->key.sub, 16);
	memcpy(r->remote_addr, e->key.rem, 16);
	r->sub_port = e->key.sub_port;
	r->remote_port = e->key.rem_port;
	r->l3 = e->key.l3;
	r->proto = e->key.proto;
	r->verdict = e->verdict;
	r->reason = e->reason;
	r->realm = e->key.realm;
	r->beam = c->beam;
	r->sub_id = c->sub_id;
	r->sub_idx = e->sub_idx;
	r->sub_country = c->sub_country;
	r->remote_country = c->remote_country;
	r->cls = e->cls;
	r->tcp_flags = e->tcp_flags;
	r->worker = (uint8_t)worker;
	for (int d = 0; d < 2; d++) {
		r->packets[d] = e->pkts[d];
		r->bytes[d] = e->bytes[d];
	}
	r->first_ns = flow_ns_of_tsc(f, tsc_of_c(f, e->first_c, now_tsc));
	r->last_ns = flow_ns_of_tsc(f, tsc_of_c(f, e->last_c, now_tsc));
	r->rtt_sat_us = c->rtt_us[SKY_RTT_SAT];
	r->rtt_inet_us = c->rtt_us[SKY_RTT_INET];
}

static void
emit_rec(const struct sky_flow *f, struct flow_worker *w, const struct flow_ent *e,
	 unsigned int worker, uint64_t now_tsc, enum sky_flow_end why)
{
	struct sky_flow_rec r;

	sky_flow_fill_rec(f, e, &w->c[e - w->e], worker, now_tsc, &r);
	r.end = (uint8_t)why;
	if (unlikely(rte_ring_sp_enqueue_elem(w->rec_ring, &r, sizeof(r)) != 0))
		w->ctr[FLOW_CTR_rec_ring_drops]++;
}

/* end the entry in slot s of bucket bi: its counts and its record leave, the slot frees */
static void
end_entry(const struct sky_flow *f, struct flow_worker *w, uint32_t bi, unsigned int s,
	  unsigned int worker, uint64_t now_tsc, enum sky_flow_end why)
{
	struct flow_ent *e = &w->e[bi * FLOW_WAYS + s];

	if (f->rtt)
		flush_counts(w, e);
	if (f->records)
		emit_rec(f, w, e, worker, now_tsc, why);
	switch (why) {
	case SKY_FLOW_END_FIN:
		w->ctr[FLOW_CTR_ended_fin]++;
		break;
	case SKY_FLOW_END_IDLE:
		w->ctr[FLOW_CTR_ended_idle]++;
		break;
	case SKY_FLOW_END_FORCED:
		w->ctr[FLOW_CTR_ended_forced]++;
		break;
	default:
		break; /* pressure: counted as an eviction */
	}
	w->b[bi].sig[s] = 0;
	w->used--;
}

/* a new entry for the packet m in bucket bi; a full bucket evicts its oldest idle entry */
static __rte_noinline struct flow_ent *
insert_slow(const struct sky_flow *f, struct flow_worker *w, uint32_t bi, uint16_t sig,
	    const struct flow_key *k, const struct sky_meta *m, unsigned int worker,
	    uint64_t now_tsc)
{
	struct flow_bucket *b = &w->b[bi];
	const uint16_t now_a = (uint16_t)(now_tsc >> f->shift_a);
	const uint32_t now_c = (uint32_t)(now_tsc >> f->shift_c);
	uint32_t free_m = sig_match(b, 0);
	struct flow_ent *e;
	struct flow_cold *c;
	unsigned int s;

	if (likely(free_m != 0)) {
		s = (unsigned int)__builtin_ctz(free_m);
	} else {
		uint16_t oldest = 0;

		s = 0;
		for (unsigned int i = 0; i < FLOW_WAYS; i++) {
			uint16_t idle = (uint16_t)(now_a - b->age[i]);

			if (idle > oldest) {
				oldest = idle;
				s = i;
			}
		}
		end_entry(f, w, bi, s, worker, now_tsc, SKY_FLOW_END_PRESSURE);
		w->ctr[FLOW_CTR_evictions]++;
	}
	e = &w->e[bi * FLOW_WAYS + s];
	memset(e, 0, sizeof(*e));
	e->key = *k;
	e->first_c = now_c;
	e->last_c = now_c;
	e->sub_idx = m->sub_idx;
	e->win = (uint8_t)(now_tsc >> f->shift_s);
	c = &w->c[bi * FLOW_WAYS + s];
	memset(c, 0, sizeof(*c));
	c->sub_id = m->sub_id;
	c->beam = m->beam;
	c->sub_country = m->sub_country;
	c->remote_country = m->remote_country;
	b->sig[s] = sig;
	b->age[s] = now_a;
	w->used++;
	w->ctr[FLOW_CTR_inserts]++;
	return e;
}

/* the active timeout: the record so far leaves, the flow goes on with fresh counters */
static __rte_noinline void
active_restart(const struct sky_flow *f, struct flow_worker *w, struct flow_ent *e,
	       const struct sky_meta *m, unsigned int worker, uint64_t now_tsc)
{
	struct flow_cold *c = &w->c[e - w->e];

	if (f->records)
		emit_rec(f, w, e, worker, now_tsc, SKY_FLOW_END_ACTIVE);
	w->ctr[FLOW_CTR_ended_active]++;
	e->first_c = (uint32_t)(now_tsc >> f->shift_c);
	e->bytes[0] = e->bytes[1] = 0;
	e->pkts[0] = e->pkts[1] = 0;
	e->tcp_flags = 0;
	/* the subscriber may have moved (beam, country) since the flow began */
	c->beam = m->beam;
	c->sub_id = m->sub_id;
	c->sub_country = m->sub_country;
}

void
sky_flow_burst(struct sky_flow *f, unsigned int worker, struct rte_mbuf *const *pkts,
	       const struct sky_meta *meta, uint16_t n, uint64_t now_tsc)
{
	/* by tracked packet j (the burst's packets with a subscriber, in order) */
	struct flow_key keys[SKY_BURST];
	uint32_t bix[SKY_BURST];  /* bucket index */
	uint16_t sigs[SKY_BURST]; /* signature */
	uint32_t cand[SKY_BURST]; /* entry index of the first signature match, or NONE */
	uint8_t idx[SKY_BURST];	  /* its packet's index in the burst */
	unsigned int nt = 0, dirty = 0;
	struct flow_worker *w;
	struct flow_bucket *bk;
	struct flow_ent *ents;
	uint32_t now_c, now_f, bmask, active_c, seed;
	uint16_t now_a;
	uint8_t now_win;
	int rtt;

	if (f == NULL || !f->on)
		return;
	/* what the loop reads of f, in locals: stores into entries cannot alias them */
	w = &f->w[worker];
	bk = w->b;
	ents = w->e;
	bmask = f->bmask;
	active_c = f->active_c;
	rtt = f->rtt;
	seed = f->seed;
	now_c = (uint32_t)(now_tsc >> f->shift_c);
	now_f = (uint32_t)(now_tsc >> f->shift_f);
	now_a = (uint16_t)(now_tsc >> f->shift_a);
	now_win = (uint8_t)(now_tsc >> f->shift_s);
	if (n > SKY_BURST)
		n = SKY_BURST;

	/* 1: keys, one hash each, bucket prefetch; the tracked packets in a compact list */
	for (unsigned int i = 0; i < n; i++) {
		const struct sky_meta *m = &meta[i];
		uint32_t h;

		if (m->l3 == 0 || m->sub_idx == SKY_SUB_NONE)
			continue;
		if (unlikely(key_of(m, pkts[i], &keys[nt], seed, &h) < 0)) {
			w->ctr[FLOW_CTR_untracked]++;
			continue;
		}
		bix[nt] = h & bmask;
		sigs[nt] = sig_of(h);
		rte_prefetch0(&bk[h & bmask]);
		idx[nt++] = (uint8_t)i;
	}
	/* 2: the first candidate entry's hot lines */
	for (unsigned int j = 0; j < nt; j++) {
		const uint32_t mt = sig_match(&bk[bix[j]], sigs[j]);
		const uint32_t ei = bix[j] * FLOW_WAYS + (uint32_t)__builtin_ctz(mt | 1u << 16);

		cand[j] = mt != 0 ? ei : UINT32_MAX;
		if (mt != 0) {
			rte_prefetch0(&ents[ei]);
			rte_prefetch0((const uint8_t *)&ents[ei] + RTE_CACHE_LINE_SIZE);
		}
	}
	/* 3: find or insert, count, match */
	for (unsigned int j = 0; j < nt; j++) {
		const unsigned int i = idx[j];
		const struct sky_meta *m = &meta[i];
		const unsigned int d = m->dir;
		const uint16_t sig = sigs[j];
		const uint32_t bi = bix[j];
		const uint32_t c = cand[j];
		struct flow_ent *e = NULL;
		struct tcp_seg t;

		/* the candidate; once an earlier packet of the burst inserted or ended an
		 * entry, only if its slot still holds its signature (a freed slot keeps its
		 * key) */
		if (likely(c != UINT32_MAX) &&
		    (likely(!dirty) || bk[bi].sig[c % FLOW_WAYS] == sig) &&
		    likely(key_eq(&ents[c].key, &keys[j]))) {
			e = &ents[c];
			bk[bi].age[c % FLOW_WAYS] = now_a;
		} else {
			for (uint32_t mt = sig_match(&bk[bi], sig); mt != 0; mt &= mt - 1) {
				unsigned int s = (unsigned int)__builtin_ctz(mt);

				if (key_eq(&ents[bi * FLOW_WAYS + s].key, &keys[j])) {
					e = &ents[bi * FLOW_WAYS + s];
					bk[bi].age[s] = now_a;
					break;
				}
			}
			if (e == NULL) {
				e = insert_slow(f, w, bi, sig, &keys[j], m, worker, now_tsc);
				dirty = 1;
			}
		}
		if (unlikely(now_c - e->first_c >= active_c))
			active_restart(f, w, e, m, worker, now_tsc);
		e->last_c = now_c;
		e->bytes[d] += m->pkt_len;
		e->pkts[d]++;
		memcpy(&e->verdict, &m->verdict, 2); /* verdict, reason */
		e->cls = m->cls;
		if (m->proto == IPPROTO_TCP && (m->flags & SKY_MF_PORTS)) {
			if (unlikely(tcp_read(w, pkts[i], m, &t) < 0))
				continue;
			e->tcp_flags |= t.flags;
			if (rtt) {
				if (m->verdict == SKY_V_PASS)
					tcp_rtt(f, w, e, d, &t, now_f, now_c);
				/* segment counts leave at least once a window (only TCP
				 * counts segments) */
				if (unlikely(e->win != now_win)) {
					e->win = now_win;
					flush_counts(w, e);
				}
			}
			if (unlikely((t.flags & (TH_FIN | TH_RST)) != 0)) {
				end_entry(f, w, bi, (unsigned int)(e - &ents[bi * FLOW_WAYS]),
					  worker, now_tsc, SKY_FLOW_END_FIN);
				dirty = 1;
			}
		} else if (unlikely(rtt && m->verdict == SKY_V_PASS && icmp_echo(m))) {
			icmp_rtt(f, w, e, d, pkts[i], m, icmp_echo(m), now_f, now_c);
		}
	}
	w->ctr[FLOW_CTR_packets] += nt;
}

/* end every entry of buckets [from, from + nb) as FORCED */
static void
flush_buckets(const struct sky_flow *f, struct flow_worker *w, uint32_t from, uint32_t nb,
	      unsigned int worker, uint64_t now_tsc)
{
	for (uint32_t bi = from; bi < from + nb; bi++) {
		uint32_t mt = sig_match(&w->b[bi], 0) ^ ((1u << FLOW_WAYS) - 1);

		while (mt != 0) {
			unsigned int s = (unsigned int)__builtin_ctz(mt);

			end_entry(f, w, bi, s, worker, now_tsc, SKY_FLOW_END_FORCED);
			mt &= mt - 1;
		}
	}
}

/* room for one slice of flushed records (records off: always) */
static inline int
flush_room(const struct sky_flow *f, const struct flow_worker *w, uint32_t nb)
{
	return !f->records || rte_ring_free_count(w->rec_ring) >= nb * FLOW_WAYS;
}

uint32_t
sky_flow_worker_flush(struct sky_flow *f, unsigned int worker)
{
	struct flow_worker *w = &f->w[worker];
	const uint32_t nb = f->bmask + 1;
	uint64_t now = rte_rdtsc();

	while (w->flush_left < nb && w->used != 0) {
		if (!flush_room(f, w, 1))
			return w->used;
		flush_buckets(f, w, w->flush_left, 1, worker, now);
		w->flush_left++;
	}
	w->flush_left = 0;
	return w->used;
}

void
sky_flow_expire(struct sky_flow *f, unsigned int worker, uint64_t now_tsc)
{
	struct flow_worker *w;
	uint32_t now_c, req;
	uint16_t now_a;

	if (f == NULL || !f->on)
		return;
	w = &f->w[worker];
	req = w->flush_req;
	if (unlikely(req != w->flush_done)) {
		/* `flows flush`: a slice per call, when the record ring has room for it */
		const uint32_t nb = f->bmask + 1;
		uint32_t k = nb - w->flush_left < FLOW_FLUSH_SLICE ? nb - w->flush_left
								   : FLOW_FLUSH_SLICE;

		if (!flush_room(f, w, k))
			return;
		flush_buckets(f, w, w->flush_left, k, worker, now_tsc);
		w->flush_left += k;
		if (w->flush_left >= nb) {
			w->flush_left = 0;
			w->flush_done = req;
		}
		return;
	}
	if (now_tsc < w->exp_next_tsc)
		return;
	w->exp_next_tsc = now_tsc + f->exp_step_tsc;
	now_c = (uint32_t)(now_tsc >> f->shift_c);
	now_a = (uint16_t)(now_tsc >> f->shift_a);
	for (unsigned int k = 0; k < FLOW_EXPIRE_SLICE; k++) {
		const uint32_t bi = w->exp_cursor++ & f->bmask;
		struct flow_bucket *b = &w->b[bi];
		uint32_t mt = sig_match(b, 0) ^ ((1u << FLOW_WAYS) - 1);

		while (mt != 0) {
			unsigned int s = (unsigned int)__builtin_ctz(mt);

			/* the age (coarse, 16 bits) picks candidates; the entry's own time
			 * decides */
			if ((uint16_t)(now_a - b->age[s]) + 1u >= f->idle_a &&
			    now_c - w->e[bi * FLOW_WAYS + s].last_c >= f->idle_c)
				end_entry(f, w, bi, s, worker, now_tsc, SKY_FLOW_END_IDLE);
			mt &= mt - 1;
		}
	}
}
