#!/usr/bin/env python3
"""journal_kill.py: the test side of kill -9 under changes.

  journal_kill.py run SOCKET SEED FIRST_ID LOG   changes until the daemon goes away; LOG gets
                                                 'sent WORDS' before each request and
                                                 'ok WORDS' / 'no WORDS' after its reply
  journal_kill.py check DUMP LOG [BASE]          the state dump (JSON file) is BASE (the
                                                 dump the previous round started from) with
                                                 every change LOG acknowledged; the one in
                                                 flight when the daemon died may or may not
                                                 be there

The model: subscriber country per id, beam1's downstream rate, blocked_remote_countries'
keys. Acknowledged is exactly what a restart must give back."""
import copy
import json
import random
import socket
import sys

MAP = "blocked_remote_countries"
COUNTRIES = ["DE", "FR", "RU", "KP", "CN", "NO", "BY", "IR", "BR", "JP"]


def run(sock, seed, first_id, log):
    rng = random.Random(seed)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock)
    f = s.makefile("rwb")
    out = open(log, "a")
    next_id, ids = first_id, []
    while True:
        k = rng.randrange(5)
        if k == 0 or not ids:
            w = ["subscriber", "add", str(next_id), f"ipv4=100.70.{next_id // 250}.{next_id % 250 + 1}",
                 "plan=basic", "beam=beam1", f"country={rng.choice(COUNTRIES)}"]
        elif k == 1:
            w = ["subscriber", "set", str(rng.choice(ids)), f"country={rng.choice(COUNTRIES)}"]
        elif k == 2:
            w = ["beam", "set", "beam1", f"down={rng.randrange(1, 40)}Gbit"]
        elif k == 3:
            w = ["map", "update", MAP, rng.choice(COUNTRIES), "1"]
        else:
            w = ["map", "delete", MAP, rng.choice(COUNTRIES)]
        out.write("sent " + " ".join(w) + "\n")
        out.flush()
        try:
            f.write(json.dumps({"argv": w}).encode() + b"\n")
            f.flush()
            line = f.readline()
        except OSError:
            return
        if not line:
            return
        r = json.loads(line)
        out.write(("ok " if r.get("ok") else "no ") + " ".join(w) + "\n")
        out.flush()
        if r.get("ok") and w[1] == "add":
            ids.append(next_id)
        if w[1] == "add":
            next_id += 1


def apply(state, w):
    subs, beam, keys = state
    if w[0] == "subscriber" and w[1] == "add":
        subs[int(w[2])] = w[6].split("=")[1]
    elif w[0] == "subscriber" and w[1] == "set":
        subs[int(w[2])] = w[3].split("=")[1]
    elif w[0] == "beam":
        beam[0] = int(w[3][5:-4]) * 1000000000
    elif w[1] == "update":
        keys.add(w[3])
    elif w[1] == "delete":
        keys.discard(w[3])


def model(d):
    return ({s["id"]: s["country"] for s in d["subscribers"] if s["id"] >= 1000},
            [[b["down_bps"] for b in d["beams"] if b["name"] == "beam1"][0]],
            set(d["maps"].get(MAP, {}).keys()))


def check(dump_path, log, base_path):
    got_subs, (got_beam,), got_keys = model(json.load(open(dump_path)))
    acked = model(json.load(open(base_path))) if base_path else ({}, [None], set())
    pending = None
    for line in open(log):
        tag, _, words = line.rstrip("\n").partition(" ")
        if tag == "sent":
            pending = words.split()
        elif tag == "ok":
            apply(acked, words.split())
            pending = None
        else:
            pending = None
    inflight = pending
    # the acknowledged state, with and without the change in flight
    with_inflight = copy.deepcopy(acked)
    if inflight:
        apply(with_inflight, inflight)
    ok = False
    for cand in (acked, with_inflight):
        subs, beam, keys = cand
        if got_subs == subs and (beam[0] is None or got_beam == beam[0]) and got_keys == keys:
            ok = True
    if not ok:
        subs, beam, keys = acked
        print(f"state differs from the acknowledged one (in flight: {inflight}):")
        print(f"  subscribers: got {len(got_subs)}, acked {len(subs)}; "
              f"diff {set(got_subs.items()) ^ set(subs.items())}")
        print(f"  beam1 down: got {got_beam}, acked {beam[0]}")
        print(f"  {MAP}: got {sorted(got_keys)}, acked {sorted(keys)}")
        sys.exit(1)
    n = sum(1 for line in open(log) if line.startswith("ok "))
    print(f"{n} acknowledged changes all there")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
