#!/usr/bin/env python3
"""ctlbatch SOCKET: one control-socket connection, one request per stdin line (words),
one JSON reply per stdout line. Lets tests ask hundreds of questions quickly."""
import json
import socket
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    f.write(json.dumps({"argv": words}).encode() + b"\n")
    f.flush()
    sys.stdout.write(f.readline().decode())
