#!/usr/bin/env python3
"""journal_changes.py SOCKET SEED N SRC BLD OUTDIR: N random changes of every kind over one
control connection (subscriber add/set/del/load, plan set, beam set, map update/delete/clear,
policy load/unload, class reload). Prints one line per change: 'ok WORDS' (acknowledged) or 'no WORDS'
(refused), flushed as soon as the reply is read, so a test that kills the daemon knows what
was acknowledged."""
import json
import os
import random
import socket
import sys

sock, seed, n, src, bld, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:7]
rng = random.Random(seed)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sock)
f = s.makefile("rwb")
pols = [f"{bld}/conf/policies/{p}.bpf.o" for p in ("country_block", "remote_country_block")]
countries = ["DE", "FR", "RU", "KP", "CN", "NO", "BY", "IR"]
ids = list(range(1, 40))


def change():
    k = rng.randrange(14)
    i = rng.choice(ids)
    if k <= 2:
        return ["subscriber", "add", str(i), f"ipv4=100.65.{i}.{rng.randrange(1, 250)}",
                f"plan={rng.choice(['basic', 'gold'])}", "beam=beam1",
                f"country={rng.choice(countries)}"]
    if k == 3:
        return ["subscriber", "set", str(i), f"country={rng.choice(countries)}"]
    if k == 4:
        return ["subscriber", "del", str(i)]
    if k == 5:
        path = f"{out}/subs-{rng.randrange(1 << 30)}.csv"
        with open(path, "w") as fh:
            fh.write("id,ipv4,ipv6,plan,beam,country\n")
            for j in rng.sample(ids, 5):
                fh.write(f"{j},100.66.{j}.1,,basic,beam1,{rng.choice(countries)}\n")
        return ["subscriber", "load", path]
    if k == 6:
        return ["plan", "set", rng.choice(["basic", "gold"]),
                f"down={rng.randrange(1, 100)}Mbit", f"up={rng.randrange(1, 20)}Mbit"]
    if k == 7:
        return ["beam", "set", "beam1", f"down={rng.randrange(1, 40)}Gbit",
                f"up={rng.randrange(1, 10)}Gbit"]
    if k == 8:
        return ["map", "update", rng.choice(["blocked_remote_countries",
                                             "blocked_terminal_countries"]),
                rng.choice(countries), "1"]
    if k == 9:
        return ["map", "delete", rng.choice(["blocked_remote_countries",
                                             "blocked_terminal_countries"]),
                rng.choice(countries)]
    if k == 10:
        return ["policy", "load", rng.choice(pols)]
    if k == 11:
        return ["policy", "unload"]
    if k == 12:
        return ["class", "reload"]
    return ["map", "clear", "blocked_remote_countries"]


for _ in range(n):
    w = change()
    f.write(json.dumps({"argv": w}).encode() + b"\n")
    f.flush()
    line = f.readline()
    if not line:
        sys.exit(0)  # the daemon went away (kill -9)
    r = json.loads(line)
    print(("ok " if r.get("ok") else "no ") + " ".join(w), flush=True)
    if not r.get("ok") and "not journaled" in r.get("error", ""):
        print("NOT JOURNALED " + r["error"], flush=True)
