#!/usr/bin/env bash
# Queueing delay bounded in time, measured by skygate-pktgen on the receive side of a real
# memif run (downstream, unresponsive UDP):
#  1. a beam at 50 Mbit/s offered 3x its capacity by three subscribers: the p99 queueing
#     delay stays within shaping.max_delay (100ms) plus one shaping period (10ms), the excess
#     is dropped and counted as queue_delay_drop, and `shaper show` reports the beam's delay.
#     Queueing delay = one-way delay minus the path's own (p99 with the beam at 30% load,
#     same run): on this shared VM the worker and the generator are descheduled now and
#     then, and packets waiting in a memif ring meanwhile are not in any queue of the shaper;
#  2. one subscriber whose own 4 bulk flows offer 3x his 50 Mbit/s plan: a sparse flow of his
#     (50 pps of 100-byte frames, DNS/VoIP-like) keeps its p99 within 2 ms of what it sees
#     when nothing queues: the same traffic with the subscriber on a 1 Gbit/s plan, so the
#     generator and skygate do the same work and the baseline carries this VM's own jitter
#     (fair queuing inside the subscriber, sparse flows first); each run 20 s (1000 probe
#     packets), as the Linux figures in the issue were taken; a second pair of runs when
#     the first pair's p99s differ by a stall of the VM (the median must hold in both).
# The bounds are relative to the configuration (max_delay, period) or to a baseline measured
# in the same run, so they hold on a slow or loaded machine; the bulk traffic's own delay is
# checked to show that the load was real (without the bound it would wait seconds).
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.1.1,,p50,beam2,DE
2,100.64.2.1,,p100,beam1,FR
3,100.64.2.2,,p100,beam1,FR
4,100.64.2.3,,p100,beam1,FR
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
  p50:  { down: 50Mbit, up: 50Mbit, burst: 16KB }
  p100: { down: 100Mbit, up: 100Mbit, burst: 16KB }
  p1g:  { down: 1Gbit, up: 1Gbit, burst: 16KB }
beams:
  beam1: { down: 50Mbit, up: 1Gbit }
  beam2: { down: 1Gbit, up: 1Gbit }
classes: [ { name: bulk, default: true } ]
shaping: { max_delay: 100ms, period: 10ms }
YAML

# pktgen latency of a class, downstream: "p50 p99" in us
lat() { # report class
	python3 - "$1" "$2" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
l = rep["classes"][sys.argv[2]]["down"]["latency_us"]
print(f'{l["p50"]:.0f} {l["p99"]:.0f}')
PY
}
probe() { # report -> "tx rx p50 p99 max" in us
	python3 - "$1" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["probe"]
l = p["latency_us"]
print(f'{p["tx"]} {p["rx"]} {l["p50"]:.0f} {l["p99"]:.0f} {l["max"]:.0f}')
PY
}

# --- 1: a beam offered 3x its capacity ---------------------------------------------------
grep -v '^1,' "$T/subs.csv" >"$T/subs_beam.csv"
start_skygate "$T/sky.yaml" delay0
pg_start base --subs "$T/subs_beam.csv" --remote-countries US:100 --direction down --size 1500 \
	--classes bulk --flows-per-sub 2 --sub-rate 5Mbit --duration 4 --drain 300
pg_wait base
stop_skygate
pg_stop || fail "skygate-pktgen (base)"
read -r q50 q99 <<<"$(lat "$T/base.json" bulk)"
echo "  beam at 30% load: one-way delay p50 ${q50} us, p99 ${q99} us (the path's own)"
start_skygate "$T/sky.yaml" delay1
pg_start over --subs "$T/subs_beam.csv" --remote-countries US:100 --direction down --size 1500 \
	--classes bulk --flows-per-sub 2 --sub-rate 50Mbit --duration 5 --drain 300
pg_wait over
ctlj shaper show >"$T/shaper_show.json" || fail "shaper show"
stop_skygate
pg_stop || fail "skygate-pktgen (over)"
read -r p50 p99 <<<"$(lat "$T/over.json" bulk)"
echo "  beam at 50 Mbit/s offered 150 Mbit/s: one-way delay p50 ${p50} us, p99 ${p99} us"
python3 - "$T/shaper_show.json" <<'PY' || fail "shaper show: no delay drops or no delay figures"
import json, sys
s = json.load(open(sys.argv[1]))
b = [x for x in s["beams"] if x["beam"] == "beam1"][0]
d = b["delay"]
print(f'  shaper show beam1: queue_delay_drops {b["queue_delay_drops"]}, delay p50 '
      f'{d["p50_us"]} p99 {d["p99_us"]} max {d["max_us"]} us over the last interval')
sys.exit(0 if b["queue_delay_drops"] > 0 and d["packets"] > 0 and d["p99_us"] <= 110000 * 5 // 4
         and s["max_delay_us"] == 100000 else 1)
PY
[ "$p99" -le $((110000 + q99)) ] ||
	fail "p99 delay ${p99} us above max_delay + period + the path's p99 (110000 + ${q99} us)"
[ "$p50" -ge 20000 ] || fail "p50 delay ${p50} us: the beam was not overloaded"
ok "beam overloaded 3x: p99 delay ${p99} us <= max_delay + period + path (${q99} us)"

# --- 2: a sparse flow beside the subscriber's own bulk flows ------------------------------
grep -v '^[234],' "$T/subs.csv" >"$T/subs_one.csv"
sed 's/^1,\(.*\),p50,/1,\1,p1g,/' "$T/subs_one.csv" >"$T/subs_big.csv"
grep -q '^1,.*,p1g,' "$T/subs_big.csv" || fail "subs_big.csv"
sed "s#file: $T/subs.csv#file: $T/subs_big.csv#" "$T/sky.yaml" >"$T/sky_big.yaml"
# one attempt: a baseline run and a loaded run, 20 s each; 0 when the p99 holds
sparse_pair() { # attempt
	start_skygate "$T/sky_big.yaml" delay2-$1
	pg_start idle$1 --subs "$T/subs_one.csv" --remote-countries US:100 --direction down \
		--size 1500 --classes bulk --flows-per-sub 4 --sub-rate 150Mbit --probe 1:50:100 \
		--duration 20 --drain 300
	pg_wait idle$1
	stop_skygate
	pg_stop || fail "skygate-pktgen (idle $1)"
	start_skygate "$T/sky.yaml" delay3-$1
	pg_start loaded$1 --subs "$T/subs_one.csv" --remote-countries US:100 --direction down \
		--size 1500 --classes bulk --flows-per-sub 4 --sub-rate 150Mbit --probe 1:50:100 \
		--duration 20 --drain 300
	pg_wait loaded$1
	stop_skygate
	pg_stop || fail "skygate-pktgen (loaded $1)"
	read -r itx irx i50 i99 imax <<<"$(probe "$T/idle$1.json")"
	read -r ltx lrx l50 l99 lmax <<<"$(probe "$T/loaded$1.json")"
	read -r b50 b99 <<<"$(lat "$T/loaded$1.json" bulk)"
	read -r u50 u99 <<<"$(lat "$T/idle$1.json" bulk)"
	echo "  [$1] probe, nothing queued (1 Gbit/s plan): sent $itx received $irx, p50 ${i50} p99 ${i99} max ${imax} us (bulk p50 ${u50} p99 ${u99} us)"
	echo "  [$1] probe, bulk at 3x of a 50 Mbit/s plan: sent $ltx received $lrx, p50 ${l50} p99 ${l99} max ${lmax} us"
	echo "  [$1] bulk flows at 3x of the plan: p50 ${b50} p99 ${b99} us"
	# every attempt: nothing lost, the load real, the median unmoved (a probe queued behind
	# the bulk would wait ~100 ms at every percentile)
	[ "$ltx" -ge 900 ] && [ "$lrx" -eq "$ltx" ] || fail "probe packets lost under load ($lrx of $ltx)"
	[ "$b50" -ge 20000 ] || fail "bulk p50 ${b50} us: the subscriber was not overloaded"
	[ "$l50" -le $((i50 + 2000)) ] || fail "probe p50 ${l50} us more than 2 ms above its baseline ${i50} us"
	[ "$l99" -le $((i99 + 2000)) ]
}
# the p99 of 1000 packets is the 10th worst: one stall of the VM (tens of ms, the worker or
# the generator descheduled) in one run and not the other moves it; a second attempt must
# hold it then (a shaper that queued the probe would fail both)
if sparse_pair 1 || sparse_pair 2; then
	ok "sparse flow under 3x self-overload: p99 ${l99} us (baseline ${i99} us, +2 ms allowed)"
else
	fail "probe p99 ${l99} us more than 2 ms above its baseline ${i99} us (twice)"
fi
