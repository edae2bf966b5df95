#!/usr/bin/env python3
"""Memory of idle keep-alive connections (issue #18, target 2).

Opens N client connections to a proxy on 127.0.0.1, sends one small GET on
each and reads its answer, then leaves them all idle for HOLD seconds and
reads the proxy's RSS (VmRSS, summed over PIDS). Prints the growth per
connection against the RSS before the connections were opened. Loopback
only; bounded: N connections, one request each, then everything closes.

    bench/idle-memory.py PORT PIDS N [HOLD]

PIDS is a comma-separated list (nginx: its worker). `bench/idle-memory.sh`
runs ringway, nginx and HAProxy one after another through it. With BODY=n
in the environment, the request is a POST with an n-byte body instead (the
memory a connection keeps between requests after an upload).
"""
import os
import resource
import selectors
import socket
import sys
import time


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def main():
    port = int(sys.argv[1])
    pids = [int(p) for p in sys.argv[2].split(",")]
    n = int(sys.argv[3])
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    before = rss_kib(pids)
    sel = selectors.DefaultSelector()
    req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    body = int(os.environ.get("BODY", "0"))
    if body > 0:
        req = (b"POST / HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n" % body
               + b"x" * body)
    socks = []
    pending = {}
    deadline = time.time() + 60
    # Open in batches so the listen backlog never overflows.
    batch = 500
    for start in range(0, n, batch):
        for _ in range(min(batch, n - start)):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            s.sendall(req)
            socks.append(s)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        while pending and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(65536)
                if not data:
                    sys.exit(f"a connection closed before its answer ({len(pending)} pending)")
                buf = pending[s] + data
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    head = buf[:end].lower()
                    cl = 0
                    for line in head.split(b"\r\n"):
                        if line.startswith(b"content-length:"):
                            cl = int(line.split(b":")[1])
                    if not head.startswith(b"http/1.1 200"):
                        sys.exit(f"unexpected answer: {head[:40]!r}")
                    if len(buf) >= end + 4 + cl:
                        sel.unregister(s)
                        del pending[s]
                        continue
                pending[s] = buf
    if pending:
        sys.exit(f"{len(pending)} connections got no answer within 60 s")
    time.sleep(hold)
    after = rss_kib(pids)
    grown = (after - before) * 1024 / n
    print(f"connections {n} rss_before_kib {before} rss_after_kib {after} "
          f"bytes_per_connection {grown:.0f}")
    for s in socks:
        s.close()


main()
