#!/usr/bin/env python3
"""ctlflood: abuse a control socket the way an attacker (or a broken script) would.

    ctlflood.py hold    SOCKET UID N SECONDS REPORT   N connections held, nothing sent
    ctlflood.py trickle SOCKET UID N SECONDS REPORT   N clients sending one byte a second;
                                                      a dropped one reconnects at once
    ctlflood.py churn   SOCKET UID N SECONDS REPORT   connect as fast as possible, holding the
                                                      newest N (older ones closed)
    ctlflood.py idle    SOCKET UID REPORT             one silent connection, until closed
    ctlflood.py run     UID CMD...                    run CMD as UID (exit status passed on)

UID is a number (0 = stay root). The report (JSON) counts the last lines the daemon sent,
by the limit they name ("limit" in {"ok": false, "error": ..., "limit": ...}), and gives
times in seconds. A file REPORT.ready appears once every connection is made.
"""
import json
import os
import resource
import selectors
import socket
import sys
import time


def become(uid):
    if uid:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def limit_of(line):
    try:
        return json.loads(line).get("limit", "none")
    except ValueError:
        return "bad-json"


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.setblocking(False)
    return s


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.start = time.monotonic()  # first byte sent (trickle) or connect (hold)
        self.sent = 0


def hold(path, n, seconds, report):
    sel = selectors.DefaultSelector()
    out = {"connected": 0, "connect_errors": 0, "limits": {}, "closed": 0}
    for _ in range(n):
        try:
            c = Conn(connect(path))
        except OSError as e:
            out["connect_errors"] += 1
            out["last_connect_error"] = str(e)
            continue
        out["connected"] += 1
        sel.register(c.sock, selectors.EVENT_READ, c)
    open(report + ".ready", "w").close()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.1):
            c = key.data
            try:
                data = c.sock.recv(4096)
            except OSError:
                data = b""
            if data:
                c.buf += data
                continue
            for line in c.buf.split(b"\n"):
                if line.strip():
                    lim = limit_of(line)
                    out["limits"][lim] = out["limits"].get(lim, 0) + 1
            out["closed"] += 1
            sel.unregister(c.sock)
            c.sock.close()
    out["open_at_end"] = len(sel.get_map())
    json.dump(out, open(report, "w"))


def trickle(path, n, seconds, report):
    req = b'{"argv": ["status"]}\n'
    out = {"connects": 0, "limits": {}, "closed": 0, "longest_s": 0.0}

    def new():
        out["connects"] += 1
        return Conn(connect(path))

    conns = [new() for _ in range(n)]
    open(report + ".ready", "w").close()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tick = time.monotonic()
        for i, c in enumerate(conns):
            closed = False
            try:
                while True:
                    data = c.sock.recv(4096)
                    if not data:
                        closed = True
                        break
                    c.buf += data
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            if not closed:
                try:
                    if c.sent == 0:
                        c.start = time.monotonic()
                    c.sock.send(req[c.sent % (len(req) - 1):c.sent % (len(req) - 1) + 1])
                    c.sent += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
            if closed:
                for line in c.buf.split(b"\n"):
                    if line.strip():
                        lim = limit_of(line)
                        out["limits"][lim] = out["limits"].get(lim, 0) + 1
                out["closed"] += 1
                out["longest_s"] = max(out["longest_s"], time.monotonic() - c.start)
                c.sock.close()
                conns[i] = new()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    # connections still open have lasted this long (with their bytes still coming)
    for c in conns:
        if c.sent:
            out["longest_open_s"] = max(out.get("longest_open_s", 0.0),
                                        time.monotonic() - c.start)
    json.dump(out, open(report, "w"))


def churn(path, n, seconds, report):
    out = {"connects": 0, "connect_errors": 0}
    held = []
    ready = False
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            held.append(connect(path))
            out["connects"] += 1
        except OSError as e:
            out["connect_errors"] += 1
            out["last_connect_error"] = str(e)
        if len(held) > n:
            held.pop(0).close()
        if not ready and len(held) == n:
            open(report + ".ready", "w").close()
            ready = True
    out["rate_per_s"] = out["connects"] / seconds
    json.dump(out, open(report, "w"))


def idle(path, report):
    c = connect(path)
    t0 = time.monotonic()
    open(report + ".ready", "w").close()
    c.setblocking(True)
    c.settimeout(120)
    buf = b""
    while True:
        data = c.recv(4096)
        if not data:
            break
        buf += data
    json.dump({"closed_after_s": time.monotonic() - t0,
               "limit": limit_of(buf.split(b"\n")[0]) if buf else "none"}, open(report, "w"))


def main():
    mode = sys.argv[1]
    if mode == "run":
        uid = int(sys.argv[2])
        pid = os.fork()
        if pid == 0:
            become(uid)
            os.execv(sys.argv[3], sys.argv[3:])
        _, st = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(st))
    path, uid = sys.argv[2], int(sys.argv[3])
    if mode == "hold":
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[4]) + 256,) * 2)
        become(uid)
        hold(path, int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    elif mode == "trickle":
        become(uid)
        trickle(path, int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    elif mode == "churn":
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[4]) + 256,) * 2)
        become(uid)
        churn(path, int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    elif mode == "idle":
        become(uid)
        idle(path, sys.argv[4])
    else:
        sys.exit("ctlflood: unknown mode " + mode)


if __name__ == "__main__":
    main()
