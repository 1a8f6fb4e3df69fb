#!/usr/bin/env bash
# Passive RTT against a known truth (issue #16). skygate-pktgen emulates TCP terminals and
# servers that carry timestamps (--rtt-emulate): each side echoes a new TSval after twice
# its configured one-way delay, so skygate's satellite half must read 2 x the satellite
# one-way delay (plus what skygate queued downstream) and its internet half 2 x the internet
# one-way delay. Two beams: `geo` (40 ms one way) with room to spare, `leo` (10 ms one way)
# offered about 2.7x its forward capacity, so its queue holds about shaping.max_delay; the
# internet side is 10 ms one way for both. 5 % of the TCP data segments are retransmitted.
# Checks, per subscriber (skygatectl subscriber show) and per beam (beam show):
#  - min RTT of each half = 2 x the one-way delay, within the tolerance below (leo's
#    satellite half: not below it; a congested beam's minimum carries its standing queue);
#  - leo's satellite half: its p50 rises above the path (20 ms) by about the queueing delay
#    the shaper reports for the beam (beam show: shaper.delay), between the shaper's median
#    and its maximum + 10 ms (see below why), and by 20 ms at least; geo's stays within
#    15 ms of its path (nothing queued). Both net of the VM's own jitter at the median,
#    read from the internet half of the same beam, which no queue of skygate's is on;
#  - the retransmission share per direction = what the generator injected (its report), to
#    1.5 points (the generator's share is over all segments; a subscriber's over its own);
#  - subscriber top by=rtt lists all four, worst latency (p95 satellite + internet) first;
#    Prometheus has the beam histograms and, with per_subscriber_metrics, the gauges.
# Tolerance of a minimum: the flow table's clock tick (the TSC >> k, at most 1 us here) +
# 1 ms: memif transit and the generator's polling, which the minimum over hundreds of
# samples leaves at tens of microseconds; the truth is scaled by the two processes' TSC
# frequency estimates (below). Then the same without timestamps (--rtt-handshake): each
# connection's handshake gives one sample of each half. About 35 s.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

SAT_GEO_MS=40 SAT_LEO_MS=10 INET_MS=10 RETRANS=0.05
TOL_US=1001 # tick (<= 1 us) + 1 ms

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.1.1,,fast,geo,DE
2,100.64.1.2,,fast,geo,FR
3,100.64.2.1,,fast,leo,DE
4,100.64.2.2,,fast,leo,FR
CSV
cat >"$T/sky.yaml" <<YAML
workers: 1
control: { socket: $T/sky.sock }
mempool: { mbufs: 16383 }
ports:
  - { name: sat0, role: uplink, peer: net0, device: "net_memif0,role=server,socket=$T/sat0.sock,id=0" }
  - { name: net0, role: backhaul, peer: sat0, device: "net_memif1,role=server,socket=$T/net0.sock,id=0" }
subscribers: { file: $T/subs.csv, unknown: drop }
plans:
  fast: { down: 100Mbit, up: 100Mbit }
beams:
  geo: { down: 100Mbit, up: 100Mbit }
  leo: { down: 1500kbit, up: 100Mbit }
classes: [ { name: bulk, default: true } ]
shaping: { max_delay: 100ms, period: 10ms }
flows: { rtt_samples_per_sec: 50 }
qoe: { per_subscriber_metrics: true }
YAML

start_skygate "$T/sky.yaml" qoe
pg_start rtt --subs "$T/subs.csv" --remote-countries US:100 --direction both \
	--classes interactive --flows-per-sub 8 --sub-rate 2Mbit --size 800 --duration 15 \
	--drain 600 --rtt-emulate "$SAT_LEO_MS:$INET_MS,geo=$SAT_GEO_MS:$INET_MS" \
	--rtt-retrans $RETRANS
# the shaper's queueing delay of the congested beam while the load is on
sleep 11
ctlj beam show leo >"$T/leo_loaded.json" || fail "beam show leo"
pg_wait rtt
sleep 1 # the last samples reach the control plane (the periodic drain of the flow table)
for id in 1 2 3 4; do ctlj subscriber show $id >"$T/sub$id.json" || fail "subscriber show $id"; done
ctlj beam show geo >"$T/geo.json" || fail "beam show geo"
ctlj beam show leo >"$T/leo.json" || fail "beam show leo"
ctlj subscriber top by=rtt >"$T/top_rtt.json" || fail "subscriber top by=rtt"
ctlj qoe show >"$T/qoe.json" || fail "qoe show"
ctlj status >"$T/status.json" || fail "status"
ctl metrics >"$T/metrics.txt" || fail "metrics"
# DPDK telemetry: the summary, then the first beam (geo)
if command -v dpdk-telemetry.py >/dev/null; then
	printf '/skygate/qoe\n/skygate/qoe,0\n' | timeout 10 dpdk-telemetry.py -f skyit-qoe-$$ >"$T/tel.out" 2>&1 ||
		{ cat "$T/tel.out"; fail "dpdk-telemetry.py failed"; }
	python3 - "$T/tel.out" <<'PY' || { cat "$T/tel.out"; fail "telemetry /skygate/qoe"; }
import json, sys
r = [json.loads(l)["/skygate/qoe"] for l in open(sys.argv[1]) if l.startswith('{"/skygate/qoe"')]
print(f"  telemetry /skygate/qoe: samples {r[0]['samples']}, subscribers {r[0]['subscribers']}; "
      f"/skygate/qoe,0: beam {r[1]['beam']} satellite min {r[1]['satellite_min_us']} us")
sys.exit(0 if r[0]["samples"] > 0 and r[1]["beam"] == "geo" and r[1]["satellite_min_us"] > 0 else 1)
PY
fi
stop_skygate
pg_stop || fail "skygate-pktgen"

python3 - "$T" "$SAT_GEO_MS" "$SAT_LEO_MS" "$INET_MS" "$TOL_US" <<'PY' || fail "RTT figures"
import json, sys
T, sat_geo, sat_leo, inet, tol = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ld = lambda n: json.load(open(f"{T}/{n}.json"))
rep = ld("rtt")
emu = rep["rtt_emulation"]
bad = []
# Each DPDK process estimates the frequency of the TSC at start (EAL: TSC cycles over a timed
# sleep); on a loaded VM two estimates differ by up to a few percent. The generator waits
# 2 x delay x its estimate in cycles, skygate turns cycles into time with its own: its
# reading of the truth is 2 x delay x hz(generator) / hz(skygate).
def find(o, k):
    if isinstance(o, dict):
        if k in o:
            return o[k]
        for v in o.values():
            r = find(v, k)
            if r is not None:
                return r
    return None
scale = rep["tsc_hz"] / find(ld("status"), "tsc_hz")
print(f"  TSC frequency: generator {rep['tsc_hz']} Hz, skygate {find(ld('status'), 'tsc_hz')} Hz: "
      f"truth x {scale:.5f}")
print(f"  generator: echoes {emu['echoes_sent']}, retransmitted {emu['retransmitted']}, "
      f"share up {emu['retrans_ratio']['up']:.4f} down {emu['retrans_ratio']['down']:.4f}, "
      f"echo queue full {emu['echo_queue_full']}")
if emu["echo_queue_full"]:
    bad.append("the echo queue of the generator overflowed")
sat_ms = {"geo": sat_geo, "leo": sat_leo}
for sid in (1, 2, 3, 4):
    s = ld(f"sub{sid}")
    rt = s.get("rtt")
    if not rt:
        bad.append(f"subscriber {sid}: no rtt figures")
        continue
    beam = s["beam"]
    want = {"satellite": round(2000 * sat_ms[beam] * scale), "internet": round(2000 * inet * scale)}
    for half in ("satellite", "internet"):
        h = rt[half]
        print(f"  subscriber {sid} ({beam}) {half:9}: samples {h['samples']:4} min {h['min_us']:7} "
              f"p50 {h['p50_us']:7} p95 {h['p95_us']:7} us (truth {want[half]} us + queueing)")
        if h["samples"] < 10:
            bad.append(f"subscriber {sid} {half}: {h['samples']} samples")
        elif (beam == "geo" or half == "internet") and abs(h["min_us"] - want[half]) > tol:
            bad.append(f"subscriber {sid} {half}: min {h['min_us']} us, want {want[half]} +- {tol}")
    for d in ("up", "down"):
        got, inj = rt["retrans"][d]["share"], emu["retrans_ratio"][d]
        print(f"  subscriber {sid} retransmissions {d:4}: {rt['retrans'][d]['retransmitted']} of "
              f"{rt['retrans'][d]['segments']} = {got:.4f} (injected {inj:.4f})")
        if rt["retrans"][d]["segments"] < 500 or abs(got - inj) > 0.015:
            bad.append(f"subscriber {sid} retrans {d}: {got:.4f}, injected {inj:.4f}")
    print(f"  subscriber {sid}: score {rt['score']} grade {rt['grade']}")

# queueing. The own jitter of the path at the median (memif, the two processes descheduled on this
# shared VM) is what the internet half, which no queue of skygate is on, reads above its
# truth: env. The satellite half of a beam then rose by its queue: rise = p50 - path - env.
loaded = ld("leo_loaded")
dl = loaded["shaper"]["delay"]
for name, path_us in (("geo", 2000 * sat_geo * scale), ("leo", 2000 * sat_leo * scale)):
    b = ld(name)
    h, hi = b["rtt"]["satellite"], b["rtt"]["internet"]
    env = round(hi["p50_us"] - 2000 * inet * scale)
    path_us = round(path_us)
    rise = h["p50_us"] - path_us - env
    print(f"  beam {name}: satellite min {h['min_us']} p50 {h['p50_us']} us, internet p50 "
          f"{hi['p50_us']} us: path {path_us} + jitter {env} + queue {rise} us")
    if name == "geo" and abs(rise) > 15000:
        bad.append(f"geo: satellite p50 {h['p50_us']} us is {rise} us off path + jitter (15 ms allowed)")
if dl["p99_us"] < 50000:
    bad.append(f"leo was not congested: shaper delay {dl}")
# the figures of the shaper are per packet: the pure ACKs of the upstream flows of leo, sparse and
# served first, pull its median down; the data segments the satellite half is measured on
# wait up to max_delay. So the rise must lie between the median of the shaper and its maximum.
print(f"  beam leo under load, shaper delay: p50 {dl['p50_us']} p99 {dl['p99_us']} max {dl['max_us']} us")
if not (dl["p50_us"] <= rise <= dl["max_us"] + 10000) or rise < 20000:
    bad.append(f"leo: satellite half rose {rise} us, the shaper delay p50 {dl['p50_us']} .. max "
               f"{dl['max_us']} us (+10 ms)")
for sid in (3, 4):
    h = ld(f"sub{sid}")["rtt"]["satellite"]
    if h["min_us"] < 2000 * sat_leo * scale - tol:
        bad.append(f"subscriber {sid}: satellite min {h['min_us']} us below the path")
top = ld("top_rtt")["subscribers"]
lat = [x["rtt"]["sat_p95_us"] + x["rtt"]["inet_p95_us"] for x in top if "rtt" in x]
print(f"  subscriber top by=rtt: {[(x['id'], x['beam']) for x in top]}, latency {lat} us")
if len(lat) != 4 or len(top) != 4 or lat != sorted(lat, reverse=True):
    bad.append(f"subscriber top by=rtt: {[(x['id'], x['beam']) for x in top]}, latency {lat}")
m = open(f"{T}/metrics.txt").read()
for want in ('skygate_beam_rtt_seconds_count{beam="geo",half="satellite"}',
             'skygate_subscriber_rtt_seconds{id="3",half="internet",stat="min"}',
             'skygate_beam_tcp_retrans_ratio{beam="leo",dir="up"}'):
    if want not in m:
        bad.append(f"metrics: no {want}")
for b in bad:
    print("  BAD:", b)
sys.exit(1 if bad else 0)
PY
ok "satellite and internet halves match the delays of the generator; the queue of leo shows in its satellite half; retransmission shares match"

# --- TCP without timestamps: the handshake alone (SYN -> SYN-ACK: internet half; SYN-ACK ->
# ACK: satellite half), one sample of each per connection (a flow opens a new connection
# every 0.5 to 0.75 s), against the same truth --------------------------------------------------
start_skygate "$T/sky.yaml" qoehs
pg_start hs --subs "$T/subs.csv" --remote-countries US:100 --direction both \
	--classes interactive --flows-per-sub 16 --sub-rate 2Mbit --size 800 --duration 5 \
	--drain 600 --rtt-emulate "$SAT_LEO_MS:$INET_MS,geo=$SAT_GEO_MS:$INET_MS" --rtt-handshake
pg_wait hs
sleep 1
for id in 1 2 3 4; do ctlj subscriber show $id >"$T/hs$id.json" || fail "subscriber show $id"; done
ctlj status >"$T/status.json" || fail "status"
stop_skygate
pg_stop || fail "skygate-pktgen (handshakes)"
python3 - "$T" "$SAT_GEO_MS" "$SAT_LEO_MS" "$INET_MS" "$TOL_US" <<'PY' || fail "handshake RTT figures"
import json, sys
T, sat_geo, sat_leo, inet, tol = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ld = lambda n: json.load(open(f"{T}/{n}.json"))
rep = ld("hs")
hs = rep["rtt_handshakes"]
print(f"  generator: {hs['sent']['ack']} connections opened by {rep['config']['flows']} flows, sent {hs['sent']}")
scale = rep["tsc_hz"] / ld("status")["tsc_hz"]
# A handshake is a sample at one moment per connection, and every half-second pair of
# connections on this shared VM lands in the same rhythm of the two pollers being
# descheduled (seen: all ~130 minima of a run 2-6 ms late together). So below the truth
# never (tick + 1 ms, as above), above it by the slices of the scheduler at most (10 ms); the
# millisecond check of the halves is the timestamp run above, with hundreds of samples.
hs_tol = 10000
bad = []
if hs["sent"]["ack"] < 5 * rep["config"]["flows"]:
    bad.append(f"{hs['sent']['ack']} handshakes completed by {rep['config']['flows']} flows in 5 s")
for sid in (1, 2, 3, 4):
    s = ld(f"hs{sid}")
    rt, beam = s.get("rtt"), s["beam"]
    if not rt:
        bad.append(f"subscriber {sid}: no rtt figures")
        continue
    want = {"satellite": round(2000 * (sat_geo if beam == "geo" else sat_leo) * scale),
            "internet": round(2000 * inet * scale)}
    for half in ("satellite", "internet"):
        h = rt[half]
        print(f"  subscriber {sid} ({beam}) {half:9}: handshake samples {h['samples']} min {h['min_us']} us "
              f"(truth {want[half]} us)")
        # 16 flows a subscriber, each a new connection every 0.5 to 0.75 s: one sample of
        # each half per connection
        if h["samples"] < 64:
            bad.append(f"subscriber {sid} {half}: {h['samples']} samples of 16 flows x 5 s")
        elif h["min_us"] < want[half] - tol or (
                (beam == "geo" or half == "internet") and h["min_us"] > want[half] + hs_tol):
            bad.append(f"subscriber {sid} {half}: min {h['min_us']} us, want {want[half]} - {tol} .. "
                       f"+ {hs_tol} us")
    if rt["retrans"]["up"]["segments"] + rt["retrans"]["down"]["segments"] == 0:
        bad.append(f"subscriber {sid}: no data segments after the handshakes")
for b in bad:
    print("  BAD:", b)
sys.exit(1 if bad else 0)
PY
ok "handshakes without timestamps give one sample of each half per connection, at the delays of the generator"
