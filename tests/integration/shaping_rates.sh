#!/usr/bin/env bash
# Shaping measured on the receive side of a real memif run: skygate-pktgen offers more than
# the plans and the beam allow, downstream; what it receives per subscriber must match the
# plan (beam1, uncongested) or the weighted fair share of a congested beam (beam2), and a
# runtime `beam set` must take effect. Tolerances are wider than the unit tests' (±2%, time
# driven exactly there) because this VM stalls the worker and the generator now and then:
# absolute rates ±8%, and the weighted shares of the congested beam relative to each other
# (which stalls do not move) ±5%.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
1,100.64.1.1,,p10,beam1,DE
2,100.64.1.2,,p20,beam1,DE
3,100.64.2.1,,p20,beam2,FR
4,100.64.2.2,,p20,beam2,FR
5,100.64.2.3,,p20w2,beam2,FR
CSV
cat >"$T/sky.yaml" <<YAML
workers: 1
control: { socket: $T/sky.sock }
mempool: { mbufs: 16383 }
ports:
  - { name: sat0, role: uplink, peer: net0, device: "net_memif0,role=server,socket=$T/a.sock,id=0" }
  - { name: net0, role: backhaul, peer: sat0, device: "net_memif1,role=server,socket=$T/b.sock,id=0" }
subscribers: { file: $T/subs.csv, unknown: drop }
plans:
  p10:   { down: 10Mbit, up: 10Mbit, burst: 64KB }
  p20:   { down: 20Mbit, up: 20Mbit, burst: 64KB, weight: 1 }
  p20w2: { down: 20Mbit, up: 20Mbit, burst: 64KB, weight: 2 }
beams:
  beam1: { down: 1Gbit, up: 1Gbit }
  beam2: { down: 24Mbit, up: 1Gbit }
classes: [ { name: bulk, default: true } ]
shaping: { beam_burst: 20ms, frame_overhead: 0 }
YAML
start_skygate "$T/sky.yaml" shape

run_pg() { # name duration
	"$PKTGEN" --no-huge -m 512 --no-pci --lcores=0@1,1@0 --file-prefix=skyit-shpg-$$ \
		--log-level=lib.*:warning --vdev=net_memif0,role=client,socket=$T/a.sock,id=0,rsize=14 \
		--vdev=net_memif1,role=client,socket=$T/b.sock,id=0,rsize=14 -- --subs "$T/subs.csv" \
		--remote-countries US:100 --direction down --size 1000 --sub-rate 30Mbit \
		--duration "$2" --wait-link 10 --drain 300 --quiet --report "$T/$1.json" \
		>"$T/$1.log" 2>&1 || { cat "$T/$1.log"; fail "skygate-pktgen ($1)"; }
}
check_rates() { # name "id:expected_mbit ..."
	python3 - "$T/$1.json" "$2" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
cols = rep["subscribers"]["columns"]
rows = {r[0]: dict(zip(cols, r)) for r in rep["subscribers"]["rows"]}
# the shaper keeps releasing the backlog at the shaped rate while the generator drains
dur = rep["config"]["duration_s"] + rep["config"]["drain_ms"] / 1000.0
bad = []
got_by = {}
for item in sys.argv[2].split():
    sid, want = item.split(":")
    r = rows[int(sid)]
    # received frames (996 B without FCS, as the shaper counts them) over the sending
    # and draining time; the first 64 KB (plan burst) is excluded
    got = max(0, r["rx_down"] * 996 - 64000) * 8 / dur / 1e6
    err = (got - float(want)) / float(want)
    got_by[sid] = got
    print(f"  subscriber {sid}: {got:6.2f} Mbit/s, expected {want} ({100 * err:+.1f}%)")
    if abs(err) > 0.08:
        bad.append(sid)
if "3" in got_by and "5" in got_by:
    r35, r34 = got_by["5"] / got_by["3"], got_by["4"] / got_by["3"]
    print(f"  weight 2 : weight 1 = {r35:.3f} (expected 2), weight 1 : weight 1 = {r34:.3f}")
    if abs(r35 / 2 - 1) > 0.05 or abs(r34 - 1) > 0.05:
        bad.append("ratio")
sys.exit(1 if bad else 0)
PY
}

run_pg plans 5
echo "plans (beam1 uncongested) and weighted share of beam2 (24 Mbit, weights 1:1:2):"
check_rates plans "1:10 2:20 3:6 4:6 5:12" || fail "shaped rates off"
ok "plan rates within 8%, weighted shares of a congested beam within 5%"

# rain fade: beam2 down to 12 Mbit, live
ctl beam set beam2 down=12Mbit >/dev/null || fail "beam set"
run_pg fade 4
echo "after beam set beam2 down=12Mbit:"
check_rates fade "3:3 4:3 5:6" || fail "beam change not applied"
ok "beam capacity change applied live"
stop_skygate
