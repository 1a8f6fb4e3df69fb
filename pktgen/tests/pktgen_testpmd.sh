#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# skygate-pktgen against dpdk-testpmd over two memif pairs.
#   1. testpmd io forwarding (port 0 <-> port 1): 50 kpps for 5 s, both directions, 64 B,
#      then IMIX with IPv6 and VLAN realms: everything sent must arrive, and the report's
#      sums must agree (directions, classes, countries, subscribers, port counters).
#   2. testpmd rxonly (drops everything): the generator must report the loss and exit 3
#      with --max-loss 0.
# usage: pktgen_testpmd.sh [path/to/skygate-pktgen]     (exit 77 = skipped)
set -u
PG=${1:-${SKY_BUILD_ROOT:-build}/pktgen/skygate-pktgen}
TESTPMD=$(command -v dpdk-testpmd || true)
PY=$(command -v python3 || true)
if [ -z "$TESTPMD" ] || [ -z "$PY" ]; then
	echo "SKIP: needs dpdk-testpmd (Debian package dpdk-dev) and python3"
	exit 77
fi
[ -x "$PG" ] || { echo "FAIL: $PG not built"; exit 1; }

DIR=$(mktemp -d /tmp/pktgen_testpmd.XXXXXX)
. "$(dirname "$0")/testpmd_lib.sh"
# testpmd leaves its runtime dir behind (ours clean up after themselves)
trap 'stop_testpmd; rm -rf "$DIR" /var/run/dpdk/pgtp$$ /var/run/dpdk/pgc$$' EXIT

# rsize=14: 16384-slot memif rings (the client proposes the size), so a generator that is
# descheduled for a while on a shared VM does not make testpmd drop bursts towards it
run_pktgen() { # name, options...
	local name=$1; shift
	"$PG" --lcores=0@1,1@0 $EAL_COMMON --file-prefix=pgc$$ \
		--vdev=net_memif0,role=client,socket="$DIR"/a.sock,id=0,rsize=14 \
		--vdev=net_memif1,role=client,socket="$DIR"/b.sock,id=0,rsize=14 -- \
		--wait-link 5 --quiet --report "$DIR/$name.json" "$@" >"$DIR/$name.out" 2>&1
	local rc=$?
	cat "$DIR/$name.out"
	return $rc
}

# check REPORT RATE_PPS EXPECT_LOSS(0|all) SUBS
check_report() {
	"$PY" - "$@" <<'EOF'
import json, sys
path, rate, expect, nsubs = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
r = json.load(open(path))
bad = []
def want(cond, what):
    if not cond:
        bad.append(what)
t = r["totals"]
want(t["tx_pkts"] > 0, "nothing sent")
if expect == "0":
    want(t["lost"] == 0 and t["rx_pkts"] == t["tx_pkts"], "lost %d of %d" % (t["lost"], t["tx_pkts"]))
    want(t["rx_invalid"] == 0 and t["rx_wrong_port"] == 0, "foreign or misrouted frames")
    want(t["latency_us"]["max"] > 0 and t["latency_us"]["p50"] <= t["latency_us"]["max"], "latency")
else:
    want(t["rx_pkts"] == 0 and t["lost"] == t["tx_pkts"] and t["loss_ratio"] == 1, "loss not seen")
# pacing never overshoots the requested rate
want(t["tx_pps"] <= rate * 1.05, "tx %.0f pps above --rate %.0f" % (t["tx_pps"], rate))
# the parts add up to the whole
for key in ("tx_pkts", "rx_pkts", "lost", "tx_bytes"):
    for part in ("directions",):
        want(sum(v[key] for v in r[part].values()) == t[key], "%s %s sum" % (part, key))
    want(sum(v[key] for v in r["classes"].values()) == t[key], "classes %s sum" % key)
    for side in ("terminal", "remote"):
        want(sum(v[key] for v in r["countries"][side].values()) == t[key], "countries.%s %s sum" % (side, key))
for c in r["classes"].values():
    want(c["up"]["tx_pkts"] + c["down"]["tx_pkts"] == c["tx_pkts"], "class up+down")
# flows follow the class mix exactly (largest remainder over the flow table)
mix = r["config"]["classes"]
flows = r["config"]["flows"]
for name, w in mix.items():
    share = w / sum(mix.values()) * flows
    want(abs(r["classes"][name]["flows"] - share) <= 1, "class %s flows %d, want %.1f" % (name, r["classes"][name]["flows"], share))
want(r["classes"]["realtime"]["dscp"] == 46 and r["classes"]["scavenger"]["dscp"] == 8, "dscp table")
rem = r["config"]["remote_countries"]
for cc, w in rem.items():
    share = w / sum(rem.values()) * flows
    want(abs(r["countries"]["remote"][cc]["flows"] - share) <= 1, "remote %s flows" % cc)
s = r["subscribers"]
want(s["count"] == nsubs and len(s["rows"]) == nsubs, "subscriber rows")
cols = s["columns"]
tx = sum(row[cols.index("tx_up")] + row[cols.index("tx_down")] for row in s["rows"])
lost = sum(row[cols.index("lost_up")] + row[cols.index("lost_down")] for row in s["rows"])
want(tx == t["tx_pkts"] and lost == t["lost"], "subscriber rows sum")
want(len(s["top_by_loss"]) > 0, "top_by_loss empty")
# port counters agree with the stamps
p = r["ports"]
want(p["terminal"]["opackets"] == r["directions"]["up"]["tx_pkts"], "port 0 opackets")
want(p["internet"]["opackets"] == r["directions"]["down"]["tx_pkts"], "port 1 opackets")
if expect == "0":
    want(p["internet"]["ipackets"] == r["directions"]["up"]["rx_pkts"], "port 1 ipackets")
want(len(r["rate_samples"]) >= int(r["config"]["duration_s"]), "rate samples")
if bad:
    print("FAIL %s: %s" % (path, "; ".join(bad)))
    sys.exit(1)
print("ok %s: tx %d rx %d lost %d, %.0f pps, latency p50 %.1f us" % (path, t["tx_pkts"], t["rx_pkts"], t["lost"], t["tx_pps"], t["latency_us"].get("p50", 0)))
EOF
}

# A fresh testpmd for every run: DPDK 22.11's memif server can crash its polling lcore
# when a client disconnects (segfault in librte_net_memif seen here after a run ended).
fail=0
start_testpmd io pgtp$$ 1 "$DIR/testpmd-io.log"
run_pktgen io64 --gen-subs 200 --countries 4 --rate 50000pps --duration 5 --size 64 \
	--max-loss 0 || { echo "FAIL: io64 exit $?"; fail=1; }
check_report "$DIR/io64.json" 50000 0 200 || fail=1
stop_testpmd
start_testpmd io pgtp$$ 1 "$DIR/testpmd-io.log"
run_pktgen imix --gen-subs 100 --countries DE,FR,IT --v6-share 0.5 --realms 3 --size imix \
	--rate 20000pps --duration 2 --max-loss 0 || { echo "FAIL: imix exit $?"; fail=1; }
check_report "$DIR/imix.json" 20000 0 100 || fail=1
stop_testpmd

start_testpmd rxonly pgtp$$ 1 "$DIR/testpmd-rxonly.log"
run_pktgen drop --gen-subs 50 --countries 2 --rate 10000pps --duration 1 --drain 100 \
	--max-loss 0
rc=$?
[ $rc -eq 3 ] || { echo "FAIL: rxonly: exit $rc, want 3 (loss above --max-loss)"; fail=1; }
check_report "$DIR/drop.json" 10000 all 50 || fail=1
stop_testpmd

if [ $fail -ne 0 ]; then
	echo "--- testpmd logs"; tail -n 30 "$DIR"/testpmd-*.log
	exit 1
fi
echo "pktgen_testpmd: all checks passed"
exit 0
