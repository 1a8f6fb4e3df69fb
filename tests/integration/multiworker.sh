#!/usr/bin/env bash
# Two workers on this machine. memif (like net_ring and pcap) has no RSS, so gateway/ports.c
# gives each port one queue and each port pair one worker (gw_workers_assign: pair i ->
# worker i % workers): two memif pairs, two workers, one skygate-pktgen per pair, each
# with its own subscribers, both directions. Checked:
#  - worker w polls exactly pair w (status rx_queues), and each subscriber's packets, both
#    ways, stay on one worker: a worker's packet count (status) is the sum of its pair's
#    port counters and equals what that pair's generator sent, and a subscriber's
#    counters equal what its generator sent to it;
#  - counters add up: per port, received = transmitted to the peer + dropped (after the
#    shaper drained); the generators receive what skygate transmitted; the workers' packet
#    counts add up to the ports' total;
#  - shaping holds across workers: every subscriber gets its plan rate on an uncongested
#    beam whichever worker carries it (±8%), and a congested beam whose subscribers sit on
#    both workers (the beam split between the workers' shards) delivers its capacity in
#    total (±10%), shared between the workers (each 50% ±15 points);
#  (rates are small, 2-5 Mbit/s: two generators and two workers share 2 vCPUs)
#  - each worker reports its busy cycles per packet (status and Prometheus).
# Tolerances as in shaping_rates.sh: this 2-vCPU VM stalls workers and generators.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"
# main lcore and worker 1 share CPU 0, worker 0 has CPU 1
export SKY_LCORES=0@0,1@1,2@0

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.1.1,2001:db8:1:100::/56,p2,beam1,DE
2,100.64.1.2,,p4,beam1,DE
3,100.64.2.1,,p4,beam2,FR
11,100.64.3.1,2001:db8:3:100::/56,p2,beam1,NL
12,100.64.3.2,,p4,beam1,NL
13,100.64.4.1,,p4,beam2,IT
CSV
head -1 "$T/subs.csv" >"$T/subsA.csv"
head -1 "$T/subs.csv" >"$T/subsB.csv"
grep -E '^[1-3],' "$T/subs.csv" >>"$T/subsA.csv"
grep -E '^1[1-3],' "$T/subs.csv" >>"$T/subsB.csv"
cat >"$T/sky.yaml" <<YAML
workers: 2
control: { socket: $T/sky.sock }
mempool: { mbufs: 32767 }
telemetry: { prometheus: "127.0.0.1:$((20000 + $$ % 20000))" }
ports:
  - { name: sat0, role: uplink, peer: net0, device: "net_memif0,role=server,socket=$T/sat0.sock,id=0" }
  - { name: net0, role: backhaul, peer: sat0, device: "net_memif1,role=server,socket=$T/net0.sock,id=0" }
  - { name: sat1, role: uplink, peer: net1, device: "net_memif2,role=server,socket=$T/sat1.sock,id=0" }
  - { name: net1, role: backhaul, peer: sat1, device: "net_memif3,role=server,socket=$T/net1.sock,id=0" }
subscribers: { file: $T/subs.csv, unknown: drop }
plans:
  p2: { down: 2Mbit, up: 50Mbit, burst: 64KB }
  p4: { down: 4Mbit, up: 50Mbit, burst: 64KB }
beams:
  beam1: { down: 1Gbit, up: 1Gbit }
  beam2: { down: 5Mbit, up: 1Gbit }
# no AQM: its drops happen at dequeue, where the worker does not count them per port
# (sky_shaper_dequeue reports none; the shaper's own counters have them), and this test
# checks that the port counters add up exactly; tail drops are counted at enqueue. A short
# queue: the backlog drains within the generators' drain time.
classes: [ { name: bulk, default: true, queue: 64, aqm: { kind: none } } ]
# beam_burst 200 ms: a beam share's bucket must outlast the stalls of 4 busy pollers on 2
# vCPUs (with 20 ms, the 2.5 Mbit shares lost 20-65% of their capacity to stalls here)
shaping: { beam_burst: 200ms, frame_overhead: 0 }
YAML
start_skygate "$T/sky.yaml" mw

# worker w polls pair w
ctlj status >"$T/status0.json"
python3 - "$T/status0.json" <<'PY' || fail "workers do not own one pair each"
import json, sys
w = json.load(open(sys.argv[1]))["workers"]
q = [sorted(x["rx_queues"]) for x in w]
print("  rx queues by worker:", q)
sys.exit(0 if q == [["net0/0", "sat0/0"], ["net1/0", "sat1/0"]] else 1)
PY
ok "2 workers, worker 0 polls sat0/net0, worker 1 polls sat1/net1"

# one generator per pair (memif clients of that pair's sockets), 1000 B frames offered at
# 6 Mbit/s per subscriber and direction (more than the plans; little enough that two
# generators and two workers on 2 vCPUs reach it); NAME PAIR SUBS DIRECTION DRAIN_MS
pg_pair() {
	"$PKTGEN" --no-huge -m 512 --no-pci --lcores=0@1,1@0 --file-prefix=skyit-pg-$1-$$ \
		--log-level=lib.*:warning \
		--vdev=net_memif0,role=client,socket=$T/sat$2.sock,id=0,rsize=14 \
		--vdev=net_memif1,role=client,socket=$T/net$2.sock,id=0,rsize=14 -- \
		--wait-link 10 --quiet --linger 600 --report "$T/$1.json" --subs "$3" \
		--remote-countries US:100 --direction "$4" --size 1000 --sub-rate 6Mbit \
		--duration 6 --drain "$5" >"$T/$1.log" 2>&1 &
	EXTRA_PIDS+=("$!")
}
pg_done() { grep -q "^skygate-pktgen: [0-9.]* s, .* subscribers, .* flows" "$T/$1.log" 2>/dev/null; }
pg_both_wait() { # NAME_A NAME_B
	for _ in $(seq 1 1200); do
		pg_done "$1" && pg_done "$2" && return 0
		sleep 0.1
	done
	tail -5 "$T/$1.log" "$T/$2.log"
	fail "generators did not finish"
}
pg_all_stop() { # after stop_skygate (a memif client leaving under a polling worker)
	for p in "${EXTRA_PIDS[@]}"; do stop_pid "$p" TERM; done
	EXTRA_PIDS=()
}

# 1: both directions: placement and counters
pg_pair A 0 "$T/subsA.csv" both 1000
pg_pair B 1 "$T/subsB.csv" both 1000
pg_both_wait A B
# the shaper drains its backlog: wait until skygate's counters stop moving
prev=
for _ in $(seq 1 50); do
	cur=$(ctlj stats | python3 -c "import json, sys; print([p['tx_packets'] for p in json.load(sys.stdin)['ports']])")
	[ "$cur" = "$prev" ] && break
	prev=$cur
	sleep 0.5
done
ctlj stats >"$T/stats.json"
ctlj status >"$T/status.json"
for id in 1 2 3 11 12 13; do ctlj subscriber show $id >"$T/sub$id.json"; done
python3 -c "import urllib.request, sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" \
	"http://127.0.0.1:$((20000 + $$ % 20000))/metrics" >"$T/metrics.txt" || true
stop_skygate
pg_all_stop

# 2: downstream only (the generators reach the offered rate): shaping across workers
start_skygate "$T/sky.yaml" mw2
pg_pair DA 0 "$T/subsA.csv" down 300
pg_pair DB 1 "$T/subsB.csv" down 300
pg_both_wait DA DB
stop_skygate
pg_all_stop

python3 - "$T" <<'PY' || fail "multi-worker counters, placement or shaping off"
import json, os, re, sys
T = sys.argv[1]
ld = lambda n: json.load(open(os.path.join(T, n)))
stats = {p["port"]: p for p in ld("stats.json")["ports"]}
workers = ld("status.json")["workers"]
rep = {g: ld(g + ".json") for g in ("A", "B", "DA", "DB")}
bad = []

def check(cond, msg):
    print(("  ok   " if cond else "  FAIL ") + msg)
    if not cond:
        bad.append(msg)

def sub_rows(r):
    cols = r["subscribers"]["columns"]
    return {row[0]: dict(zip(cols, row)) for row in r["subscribers"]["rows"]}

rows = {g: sub_rows(rep[g]) for g in rep}
for g in ("DA", "DB"):
    print(f"  generator {g} offered {rep[g]['totals']['tx_mbps']:.1f} Mbit/s downstream "
          f"(3 subscribers x 6)")
# placement: worker w's packets are its pair's packets, which are its generator's
for w, (g, up, down) in enumerate([("A", "sat0", "net0"), ("B", "sat1", "net1")]):
    sent = sum(r["tx_up"] + r["tx_down"] for r in rows[g].values())
    pair = stats[up]["rx_packets"] + stats[down]["rx_packets"]
    check(workers[w]["packets"] == pair,
          f"worker {w}: {workers[w]['packets']} packets = rx of {up} + {down} ({pair})")
    check(pair == sent, f"pair {up}/{down}: received {pair} = generator {g} sent {sent}")
    check(workers[w]["cycles_per_packet"] > 0 and workers[w]["busy_cycles"] > 0,
          f"worker {w}: {workers[w]['cycles_per_packet']:.0f} busy cycles per packet")
    for sid, r in rows[g].items():
        c = ld(f"sub{sid}.json")["counters"]
        cu = sum(v["packets"] for v in c["up"].values())
        cd = sum(v["packets"] for v in c["down"].values())
        dr = sum(c["drops"].values())  # policing drops: before accounting, upstream
        check(cu + dr == r["tx_up"] and cd == r["tx_down"],
              f"subscriber {sid} (worker {w}): counted {cu} + {dr} dropped up / {cd} down "
              f"= sent {r['tx_up']} / {r['tx_down']}")
check(sum(x["packets"] for x in workers) == sum(p["rx_packets"] for p in stats.values()),
      "workers' packets add up to the ports' received packets")
# counters add up: received = transmitted to the peer + dropped; generators got the rest
peer = {"sat0": "net0", "net0": "sat0", "sat1": "net1", "net1": "sat1"}
for name, p in stats.items():
    q = stats[peer[name]]
    check(p["rx_packets"] == q["tx_packets"] + p["dropped"],
          f"{name}: received {p['rx_packets']} = {q['tx_packets']} sent on {peer[name]} "
          f"+ {p['dropped']} dropped")
for g, up, down in [("A", "sat0", "net0"), ("B", "sat1", "net1")]:
    got_up = sum(r["rx_up"] for r in rows[g].values())
    got_down = sum(r["rx_down"] for r in rows[g].values())
    check(got_up == stats[down]["tx_packets"] and got_down == stats[up]["tx_packets"],
          f"generator {g} received {got_up} up / {got_down} down = skygate sent "
          f"{stats[down]['tx_packets']} / {stats[up]['tx_packets']}")
# shaping across workers (downstream, 1000 B frames = 996 B counted, first 64 KB excluded)
def mbit(g, sid):
    r, c = rows[g][sid], rep[g]["config"]
    dur = c["duration_s"] + c["drain_ms"] / 1000.0
    return max(0, r["rx_down"] * 996 - 64000) * 8 / dur / 1e6
for g, sid, want in [("DA", 1, 2), ("DA", 2, 4), ("DB", 11, 2), ("DB", 12, 4)]:
    got = mbit(g, sid)
    check(abs(got / want - 1) <= 0.08,
          f"subscriber {sid} (beam1, generator {g}): {got:.2f} Mbit/s, plan {want}")
b3, b13 = mbit("DA", 3), mbit("DB", 13)
check(abs((b3 + b13) / 5 - 1) <= 0.10,
      f"beam2 (5 Mbit) across both workers: {b3:.2f} + {b13:.2f} = {b3 + b13:.2f} Mbit/s")
check(b3 + b13 > 0 and abs(b3 / (b3 + b13) - 0.5) <= 0.15,
      f"beam2 split between workers: worker 0 {100 * b3 / max(b3 + b13, 1e-9):.0f}%")
m = open(os.path.join(T, "metrics.txt")).read()
cpp = re.findall(r'^skygate_worker_cycles_per_packet\{worker="(\d)"\} ([0-9.]+)$', m, re.M)
check(len(cpp) == 2 and all(float(v) > 0 for _, v in cpp),
      f"Prometheus: skygate_worker_cycles_per_packet for both workers {cpp}")
sys.exit(1 if bad else 0)
PY
ok "2 workers: placement, counters, plans and the beam split hold"
