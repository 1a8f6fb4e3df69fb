#!/usr/bin/env bash
# Flow records to real collectors that no one here wrote: skygate exports IPFIX to nfcapd
# (nfdump 1.7.1) and to pmacct's nfacctd at once, plus to a collector that is down.
# The demo-like traffic of skygate-pktgen (IPv4 and IPv6 terminals, remote hosts in US, DE
# and CN) crosses skygate with the country_block policy blocking remote CN; the config has
# `ipfix:` and no `flows:` (the flow table comes up with its defaults for records). On stop,
# skygate exports the flows still open, then the collectors write what they received:
#  - nfdump: one record per flow and direction, packets and bytes per direction equal to
#    what the generator sent, the blocked flows with egress interface 0 (dropped), IPv6
#    flows present (nfdump 1.7.1 does not show forwardingStatus or enterprise elements);
#  - nfacctd with an aggregate_primitives file (conf/pmacct/skygate.lst): the
#    enterprise elements (subscriber id, terminal and remote country, verdict, drop
#    reason) match the subscriber CSV and the policy; forwardingStatus 129 on blocked flows;
#  - the collector that is down: its records are counted as lost (`ipfix show`), the other
#    collectors got every record, forwarding was not affected.
# And a bad collector in the config is refused by --check naming the key.
. "$(dirname "$0")/lib.sh"
[ -x "$PKTGEN" ] || fail "skygate-pktgen not built"
for t in nfcapd nfdump nfacctd; do
	command -v "$t" >/dev/null || fail "$t not installed (tools/run setup installs nfdump and pmacct)"
done
POL=$BLD/conf/policies/country_block.bpf.o
PRIMS=$SRC/conf/pmacct/skygate.lst
[ -f "$PRIMS" ] || fail "$PRIMS missing"

free_udp_port() {
	python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
P_NFCAPD=$(free_udp_port)
P_NFACCT=$(free_udp_port)
P_DEAD=$(free_udp_port) # nothing listens there

cat >"$T/subs.csv" <<CSV
id,ipv4,ipv6,plan,beam,country
11,100.64.1.1,2001:db8:11::/56,basic,beam1,DE
12,100.64.1.2,2001:db8:12::/56,basic,beam1,DE
13,100.64.1.3,,basic,beam1,FR
14,100.64.1.4,2001:db8:14::/56,basic,beam1,NL
CSV
ports="  - { name: sat0, role: uplink, peer: net0, device: \"net_memif0,role=server,socket=$T/sat0.sock,id=0\" }
  - { name: net0, role: backhaul, peer: sat0, device: \"net_memif1,role=server,socket=$T/net0.sock,id=0\" }"

# --- a bad collector is refused, naming the key -------------------------------------------
write_config "$ports" "ipfix:
  collectors:
    - { address: 127.0.0.1, port: $P_NFCAPD }
    - { address: 127.0.0.1, port: 0 }"
if out=$("$SKYGATE" --check -c "$T/sky.yaml" 2>&1); then fail "a collector on port 0 was accepted"; fi
echo "$out" | grep -q "sky.yaml:[0-9]*: ipfix.collectors\[1\].port: 0 out of range" ||
	fail "bad collector refused without naming ipfix.collectors[1].port: $out"
ok "bad collector refused: $out"

# --- the collectors ---------------------------------------------------------------------
mkdir -p "$T/nfcapd"
nfcapd -b 127.0.0.1 -p "$P_NFCAPD" -w "$T/nfcapd" -t 3600 >"$T/nfcapd.log" 2>&1 &
NFCAPD_PID=$!
EXTRA_PIDS+=("$NFCAPD_PID")
cat >"$T/nfacctd.conf" <<CONF
daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: $P_NFACCT
aggregate_primitives: $PRIMS
plugins: print[p]
aggregate[p]: src_host, dst_host, src_port, dst_port, proto, in_iface, out_iface, sky_subscriber_id, sky_beam, sky_terminal_country, sky_remote_country, sky_verdict, sky_drop_reason, sky_class, sky_direction, fwd_status
print_output[p]: csv
print_output_file[p]: $T/nfacctd.csv
print_output_file_append[p]: true
print_refresh_time[p]: 1
CONF
nfacctd -f "$T/nfacctd.conf" >"$T/nfacctd.log" 2>&1 &
NFACCT_PID=$!
EXTRA_PIDS+=("$NFACCT_PID")

# --- skygate: ipfix to the three collectors, no flows: section ------------------------------
write_config "$ports" "shaping: { enabled: false }
geo: { database: /usr/share/libloc-location/location.db }
policy:
  object: $POL
  maps: { blocked_remote_countries: { CN: 1 } }
ipfix:
  enterprise_number: 32473
  collectors:
    - { address: 127.0.0.1, port: $P_NFCAPD, observation_domain: 1 }
    - { address: 127.0.0.1, port: $P_NFACCT, observation_domain: 2 }
    - { address: 127.0.0.1, port: $P_DEAD, observation_domain: 3 }"
sed -i 's/unknown: { plan: basic }/unknown: drop/' "$T/sky.yaml"
start_skygate "$T/sky.yaml" ipfix
sleep 1 # the collectors are up (they bind at once; the first tick sends the templates)
pg_start gen --subs "$T/subs.csv" --remote-countries US:40,DE:30,CN:30 --direction both \
	--flows-per-sub 6 --flow-v6 0.5 --size 200 --sub-rate 300pps --duration 3 --drain 300
pg_wait gen
# end every flow now (records: forced), so the export happens while skygate runs
ctl flows flush >/dev/null
for _ in $(seq 1 50); do
	ctlj ipfix show >"$T/ipfix_before.json"
	n=$(jget "['collectors'][0]['records']" <"$T/ipfix_before.json")
	[ "$n" -gt 0 ] && [ "$(jget "['flow_records']" <"$T/ipfix_before.json")" -gt 0 ] && break
	sleep 0.1
done
sleep 0.5
ctlj ipfix show >"$T/ipfix_before.json"
ctl metrics >"$T/metrics.txt"
if command -v dpdk-telemetry.py >/dev/null; then
	printf '/skygate/ipfix\n' | timeout 10 dpdk-telemetry.py -f "skyit-ipfix-$$" >"$T/tel.out" 2>&1 ||
		{ cat "$T/tel.out"; fail "dpdk-telemetry.py failed"; }
fi
stop_skygate # would export the flows still open: there are none
grep -q "ipfix 127.0.0.1:$P_DEAD: [0-9]* records sent, [1-9][0-9]* lost, .*last: Connection refused" "$T/skygate.log" ||
	fail "no final ipfix line for the collector that is down: $(grep ipfix "$T/skygate.log")"
grep "  ipfix " "$T/skygate.log"
pg_stop || fail "skygate-pktgen"
sleep 1.5 # the print plugin of nfacctd writes every second
stop_pid "$NFACCT_PID" INT # its graceful end (SIGTERM is not)
stop_pid "$NFCAPD_PID" TERM # nfcapd writes and closes its file on SIGTERM

f=$(ls "$T"/nfcapd/nfcapd.* 2>/dev/null | grep -v current | head -1)
[ -n "$f" ] || fail "nfcapd wrote no file: $(cat "$T/nfcapd.log")"
nfdump -r "$f" -q -N -o "fmt:%sa|%da|%sp|%dp|%pr|%pkt|%byt|%in|%out" >"$T/nfdump.txt" ||
	fail "nfdump could not read $f"
# nfcapd checks the sequence numbers of each observation domain
grep -q "Sequence Errors: 0," "$T/nfcapd.log" || fail "nfcapd saw sequence errors: $(grep -i sequence "$T/nfcapd.log")"
[ -s "$T/nfacctd.csv" ] || fail "nfacctd wrote nothing: $(tail -5 "$T/nfacctd.log")"

python3 - "$T" <<'PY' || fail "collectors disagree with the generator (above)"
import csv, ipaddress, json, sys
T = sys.argv[1]
rep = json.load(open(f"{T}/gen.json"))
subs = {}
for row in csv.DictReader(open(f"{T}/subs.csv")):
    nets = [ipaddress.ip_network(row["ipv4"])] if row["ipv4"] else []
    if row["ipv6"]:
        nets.append(ipaddress.ip_network(row["ipv6"]))
    subs[int(row["id"])] = (row["country"], nets)

def owner(addr):
    a = ipaddress.ip_address(addr)
    for sid, (cc, nets) in subs.items():
        if any(a in n for n in nets):
            return sid, cc
    return None, None

bad = []
# nfdump: sa|da|sp|dp|proto|packets|bytes|in|out
recs = []
for line in open(f"{T}/nfdump.txt"):
    f = [x.strip() for x in line.split("|")]
    if len(f) != 9:
        continue
    recs.append(dict(sa=f[0], da=f[1], pkts=int(f[5]), byts=int(f[6]), i=int(f[7]), o=int(f[8])))
up = [r for r in recs if r["i"] == 1]
down = [r for r in recs if r["i"] == 2]
if len(up) + len(down) != len(recs):
    bad.append(f"{len(recs) - len(up) - len(down)} records with an unknown ingress interface")
for d, rs in (("up", up), ("down", down)):
    truth = rep["directions"][d]
    pk = sum(r["pkts"] for r in rs)
    by = sum(r["byts"] for r in rs)
    # the generator counts frames with their 4-byte FCS; skygate sees frames without it
    by_truth = truth["tx_bytes"] - 4 * truth["tx_pkts"]
    print(f"  nfdump {d}: {len(rs)} records, {pk} packets, {by} bytes; generator: "
          f"{truth['flows']} flows, {truth['tx_pkts']} packets, {by_truth} bytes")
    if len(rs) != truth["flows"] or pk != truth["tx_pkts"] or by != by_truth:
        bad.append(f"{d}: nfdump and the generator differ")
    for r in rs:
        term = r["sa"] if d == "up" else r["da"]
        if owner(term)[0] is None:
            bad.append(f"{d} record of {term}, owned by no subscriber")
v6 = [r for r in recs if ":" in r["sa"]]
if not v6:
    bad.append("no IPv6 flow in the records of nfdump")
blocked = [r for r in recs if r["o"] == 0]
rem = rep["countries"]["remote"]
if not blocked or len(blocked) != rem["CN"]["flows"]:
    bad.append(f"{len(blocked)} blocked records (egress interface 0) in nfdump, "
               f"{rem['CN']['flows']} flows to CN sent")
# forwarding was not affected by the export (nor by the collector that is down)
for c in ("US", "DE"):
    if rem[c]["lost"] != 0:
        bad.append(f"{rem[c]['lost']} packets to/from {c} lost")
if rem["CN"]["rx_pkts"] != 0:
    bad.append("packets of blocked flows were forwarded")

# nfacctd: the enterprise elements
rows = list(csv.DictReader(open(f"{T}/nfacctd.csv")))
rows = [r for r in rows if r.get("SRC_IP")]
cc = lambda raw: bytes.fromhex(raw.replace("-", "")).decode() if raw and raw != "0" else ""
n_block = 0
keys = set()
for r in rows:
    keys.add((r["SRC_IP"], r["DST_IP"], r["SRC_PORT"], r["DST_PORT"]))
    direction = int(r["sky_direction"])
    term = r["SRC_IP"] if direction == 0 else r["DST_IP"]
    sid, tcc = owner(term)
    if sid is None or int(r["sky_subscriber_id"]) != sid:
        bad.append(f"nfacctd: {term} has subscriber id {r['sky_subscriber_id']}, CSV says {sid}")
    if cc(r["sky_terminal_country"]) != tcc:
        bad.append(f"nfacctd: {term} terminal country {r['sky_terminal_country']}, CSV says {tcc}")
    rcc = cc(r["sky_remote_country"])
    verdict = int(r["sky_verdict"])
    if (rcc == "CN") != (verdict == 1):
        bad.append(f"nfacctd: remote {rcc} with verdict {verdict}")
    if verdict == 1:
        n_block += 1
        if int(r["sky_drop_reason"]) != 15 or int(r["fwd_status"]) != 129 or int(r["OUT_IFACE"]) != 0:
            bad.append(f"nfacctd: blocked flow without policy_drop/129/out 0: {r}")
    elif int(r["fwd_status"]) != 64:
        bad.append(f"nfacctd: passed flow with forwardingStatus {r['fwd_status']}")
if len(keys) != len(recs):
    bad.append(f"nfacctd has {len(keys)} flows, nfdump {len(recs)}")
if n_block != len(blocked):
    bad.append(f"nfacctd: {n_block} blocked, nfdump {len(blocked)}")
print(f"  nfacctd: {len(keys)} records, {n_block} blocked (remote CN, policy_drop), "
      f"enterprise fields match the subscriber CSV")
for b in bad[:20]:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
ok "nfdump and nfacctd hold every flow of the generator, per direction, blocked and IPv6 ones included"

# the collector that is down lost records (counted), the others none
python3 - "$T/ipfix_before.json" "$T/metrics.txt" "$T/tel.out" <<'PY' || fail "export counters"
import json, os, re, sys
c = json.load(open(sys.argv[1]))["collectors"]
# the same counters in Prometheus and DPDK telemetry
prom = open(sys.argv[2]).read()
for x in c:
    name = f'{x["address"]}:{x["port"]}'
    for k in ("records", "drops", "messages", "template_sends"):
        line = f'skygate_ipfix_{k}_total{{collector="{name}"}} {x[k]}'
        assert line in prom, "metrics lack " + line
if os.path.exists(sys.argv[3]):
    tel = [l for l in open(sys.argv[3]) if '"/skygate/ipfix"' in l]
    assert tel, "no /skygate/ipfix reply"
    t = json.loads(tel[0])["/skygate/ipfix"]
    for i, x in enumerate(c):
        assert t[f"c{i}"] == f'{x["address"]}:{x["port"]}', t
        assert t[f"c{i}_records"] == x["records"] and t[f"c{i}_drops"] == x["drops"], (t, x)
print(f"  while running: sent {c[0]['records']} / {c[1]['records']} / {c[2]['records']}, "
      f"lost {c[0]['drops']} / {c[1]['drops']} / {c[2]['drops']} (nfcapd / nfacctd / down)")
assert c[0]["drops"] == 0 and c[1]["drops"] == 0, "a live collector lost records"
assert c[0]["send_errors"] == 0 and c[1]["send_errors"] == 0
assert c[2]["send_errors"] > 0 and c[2]["last_error"] == "Connection refused", c[2]
assert c[2]["records"] + c[2]["drops"] == c[0]["records"], "records and drops of the dead collector"
assert c[0]["sequence"] == c[0]["records"] and c[2]["sequence"] == c[0]["records"]
PY
ok "the collector that is down: records lost and counted, nothing else (ipfix show, Prometheus and telemetry agree)"
