#!/usr/bin/env bash
# RSS per request waiting for its upstream (issue #18's 10,000-connection
# target): N client connections each send one GET through a proxy to an
# origin that answers after DELAY seconds; the proxy's RSS is read once
# every request is at the origin, against the RSS before. ringway with
# its default ring features and with none (`RINGWAY_RING_FEATURES=`), and
# nginx (the bench's proxy configuration, one worker: its worker's RSS).
# The origin and the clients are small Python asyncio/socket programs.
#   Usage: bench/waiting-memory.sh [N] [DELAY]   (defaults 9000, 10)
#   BIN=path: the ringway binary (default target/release/ringway).
# Needs: target/release/ringway, python3; nginx optional. Loopback only,
# bounded (one request per connection; everything stops after DELAY).
set -euo pipefail
N=${1:-9000}; DELAY=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/ringway}
DIR=$(mktemp -d /tmp/ringway-waiting.XXXXXX)
O_PORT=${O_PORT:-18720}; P_PORT=${P_PORT:-18721}; N_PORT=${N_PORT:-18722}
ulimit -n "$(ulimit -Hn)"
cleanup() { kill "${P:-}" "${O:-}" "${M:-}" 2>/dev/null || true; }
trap cleanup EXIT
cat > "$DIR/origin.py" <<'PY'
import asyncio, sys
async def handle(r, w):
    try:
        while True:
            await r.readuntil(b"\r\n\r\n")
            await asyncio.sleep(float(sys.argv[2]))
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=20000)
    async with s:
        await s.serve_forever()
asyncio.run(main())
PY
cat > "$DIR/client.py" <<'PY'
import socket, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /waiting/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    socks.append(s)
print("sent", flush=True)
ok = 0
for s in socks:
    s.settimeout(60)
    try:
        ok += s.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        pass
print("answered", ok, flush=True)
PY
python3 "$DIR/origin.py" "$O_PORT" "$DELAY" > "$DIR/origin.log" 2>&1 & O=$!
sleep 0.5
measure() {  # measure LABEL PID PORT -> a result line
    local r0 r1
    for _ in $(seq 20); do curl -s "127.0.0.1:$3/warm" > /dev/null; done
    r0=$(awk '/VmRSS/ {print $2}' "/proc/$2/status")
    python3 "$DIR/client.py" "$N" "$3" > "$DIR/client.log" 2>&1 & local C=$!
    for _ in $(seq 300); do grep -q sent "$DIR/client.log" && break; sleep 0.2; done
    sleep 1.5
    r1=$(awk '/VmRSS/ {print $2}' "/proc/$2/status")
    wait "$C" || true
    echo "$1: RSS $r0 -> $r1 KiB while $N requests wait: $(( (r1 - r0) * 1024 / N )) B per request ($(tail -1 "$DIR/client.log"))"
}
printf '[runtime]\nworkers = 1\n\n[[listener]]\nname = "public"\naddress = "127.0.0.1:%s"\n\n[[route]]\nname = "all"\npath_prefix = "/"\ncluster = "app"\n\n[[cluster]]\nname = "app"\nendpoints = ["127.0.0.1:%s"]\n' \
    "$P_PORT" "$O_PORT" > "$DIR/ringway.toml"
for features in default none; do
    if [ "$features" = none ]; then export RINGWAY_RING_FEATURES=; else unset RINGWAY_RING_FEATURES; fi
    "$BIN" run -c "$DIR/ringway.toml" > "$DIR/ringway.log" 2>&1 & P=$!
    for _ in $(seq 100); do grep -q "ringway: ready" "$DIR/ringway.log" && break; sleep 0.1; done
    measure "ringway, ring features $features" "$P" "$P_PORT"
    kill "$P"; wait "$P" 2>/dev/null || true
done
unset RINGWAY_RING_FEATURES
if command -v nginx > /dev/null; then
    mkdir -p "$DIR/nginx/tmp"
    sed -e 's/@WORKERS@/1/; s/@CPU_AFFINITY@/auto/; s/@WORKER_RLIMIT_NOFILE@/20000/; s/@WORKER_CONNECTIONS@/19000/' \
        -e "s/@SERVERS@/        server 127.0.0.1:$O_PORT;/; s/@POOL@/10000/; s/@LISTEN@/127.0.0.1:$N_PORT/" \
        -e 's/@SSL_LISTEN@//; s/@SSL_DIRECTIVES@//; s/@LARGE_BODY@//; s/@NEXT_UPSTREAM@//' \
        "$ROOT/bench/peers/nginx-proxy.conf.in" > "$DIR/nginx/nginx.conf"
    nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" > "$DIR/nginx.log" 2>&1 & M=$!
    sleep 1
    W=$(pgrep -P "$M" | head -1)
    measure "nginx (its worker)" "$W" "$N_PORT"
    # nginx's master can sit on TERM with thousands of upstream keep-alive
    # connections: bounded, then killed with its worker.
    kill "$M"
    for _ in $(seq 50); do kill -0 "$M" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$M" "$W" 2>/dev/null || true
    wait "$M" 2>/dev/null || true
else
    echo "nginx: not installed, skipped"
fi
