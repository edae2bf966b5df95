#!/usr/bin/env bash
# Instructions per HTTP/1.1 small keep-alive GET (issue #18's user-space
# target), counted by valgrind's callgrind: deterministic, where CPU time on
# this noisy 2-core machine is not. Each ringway binary given runs under
# callgrind with the epoll driver (valgrind does not follow io_uring), one
# worker, the default configuration otherwise (W3C trace context, latency
# histograms); `ringload run` sends N1 and then, to a second process, N2
# GETs over 4 keep-alive connections. The marginal cost
# (I(N2) - I(N1)) / (N2 - N1) removes start-up and shutdown; the
# once-a-second histogram publish is left in (valgrind runs the requests
# about 20x slower than a real run, so its share is larger here than in a
# real one). With nginx installed the origin is nginx with the bench's
# upstream configuration (bench/peers/nginx-upstream.conf: 2-byte body,
# Server/Date/Content-Type/Content-Length/Connection), and nginx itself is
# counted as a proxy the same way (bench/peers/nginx-proxy.conf.in, one
# worker, `master_process off` so callgrind sees the worker); without
# nginx the origin is `ringload serve` (fewer response fields: lower
# figures, not comparable) and no peer is counted.
#
# With nginx, `ringload relay` (a plain TCP relay, no HTTP work: the floor
# of any proxy here) is counted the same way, also on epoll.
#
# Usage: bench/http1-instructions.sh [BIN...]   (default target/release/ringway)
#   N1, N2 (defaults 4000, 24000).
#   LOAD_ARGS adds ringload arguments, e.g. LOAD_ARGS=--no-keepalive for a
#   new connection per request (then smaller N1, N2: 1000, 5000).
# Needs: valgrind, target/release/ringload.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N1=${N1:-4000}
N2=${N2:-24000}
[ $# -gt 0 ] || set -- "$ROOT/target/release/ringway"
command -v valgrind >/dev/null || { echo "http1-instructions: valgrind missing" >&2; exit 2; }
LOAD="$ROOT/target/release/ringload"
DIR=$(mktemp -d /tmp/ringway-http1-instr.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18690}
PROXY_PORT=${PROXY_PORT:-18691}
cleanup() {
    kill "${P:-}" 2>/dev/null || true
    if [ -f "$DIR/upstream/upstream.pid" ]; then kill "$(cat "$DIR/upstream/upstream.pid")" 2>/dev/null || true; fi
    kill "${SERVE:-}" 2>/dev/null || true
}
trap cleanup EXIT

NGINX=0
if command -v nginx >/dev/null; then
    NGINX=1
    mkdir -p "$DIR/upstream/tmp" "$DIR/proxy/tmp"
    sed "s/127.0.0.1:28080/127.0.0.1:$ORIGIN_PORT/" "$ROOT/bench/peers/nginx-upstream.conf" > "$DIR/nginx-upstream.conf"
    nginx -p "$DIR/upstream" -c "$DIR/nginx-upstream.conf" > "$DIR/nginx.log" 2>&1 &
    ORIGIN="nginx"
    { echo "master_process off;"
      sed -e 's/@WORKERS@/1/; s/@CPU_AFFINITY@/auto/; s/@WORKER_RLIMIT_NOFILE@/16384/; s/@WORKER_CONNECTIONS@/8192/' \
          -e "s/@SERVERS@/        server 127.0.0.1:$ORIGIN_PORT;/; s/@POOL@/256/; s/@LISTEN@/127.0.0.1:$PROXY_PORT/" \
          -e 's/@SSL_LISTEN@//; s/@SSL_DIRECTIVES@//; s/@LARGE_BODY@//; s/@NEXT_UPSTREAM@//' \
          "$ROOT/bench/peers/nginx-proxy.conf.in"; } > "$DIR/proxy/nginx.conf"
else
    "$LOAD" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
    SERVE=$!
    ORIGIN="ringload serve (fewer response fields than the bench's nginx origin; not comparable)"
fi
cat > "$DIR/ringway.toml" <<CFG
[runtime]
workers = 1
driver = "legacy"
log_level = "warn"

[[listener]]
name = "bench"
address = "127.0.0.1:$PROXY_PORT"

[[route]]
listener = "bench"
path_prefix = "/"
cluster = "origin"

[[cluster]]
name = "origin"
endpoints = ["127.0.0.1:$ORIGIN_PORT"]
CFG
sleep 0.5
URL="http://127.0.0.1:$PROXY_PORT/"
load() {  # load N
    # shellcheck disable=SC2086
    "$LOAD" run -c 4 -t 1 -n "$1" --timeout 60s ${LOAD_ARGS:-} --json "$URL" > "$DIR/load.$1.json"
}
wait_port() {
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "http1-instructions: nothing listens on $PROXY_PORT" >&2
    exit 1
}
count_ringway() {  # count_ringway BIN N INDEX -> total instructions
    local bin=$1 n=$2 out="$DIR/cg.ringway.$3.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" run -c "$DIR/ringway.toml" > "$DIR/ringway.$n.log" 2>&1 &
    P=$!
    for _ in $(seq 300); do grep -q "ringway: ready" "$DIR/ringway.$n.log" 2>/dev/null && break; sleep 0.1; done
    load "$n"
    kill -TERM $P
    wait $P || true
    awk '/^totals:|^summary:/ {print $2; exit}' "$out"
}
count_other() {  # count_other NAME N CMD... -> total instructions of CMD under callgrind
    local name=$1 n=$2; shift 2
    local out="$DIR/cg.$name.$n"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" > "$DIR/$name.$n.log" 2>&1 &
    P=$!
    wait_port
    load "$n"
    kill -TERM $P
    wait $P || true
    awk '/^totals:|^summary:/ {print $2; exit}' "$out"
}
count_nginx() {  # count_nginx N
    count_other nginx-proxy "$1" nginx -p "$DIR/proxy" -c "$DIR/proxy/nginx.conf"
}
count_relay() {  # count_relay N
    count_other relay "$1" "$LOAD" relay --driver legacy -t 1 \
        --listen "127.0.0.1:$PROXY_PORT" --upstream "127.0.0.1:$ORIGIN_PORT"
}
echo "# origin: $ORIGIN; N1=$N1 N2=$N2; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# proxy instructions_per_request"
i=0
for bin in "$@"; do
    i=$((i + 1))
    a=$(count_ringway "$bin" "$N1" "$i")
    b=$(count_ringway "$bin" "$N2" "$i")
    echo "$bin $(( (b - a) / (N2 - N1) ))"
done
if [ "$NGINX" = 1 ]; then
    a=$(count_nginx "$N1")
    b=$(count_nginx "$N2")
    echo "nginx $(( (b - a) / (N2 - N1) ))"
    a=$(count_relay "$N1")
    b=$(count_relay "$N2")
    echo "relay $(( (b - a) / (N2 - N1) ))"
fi
echo "raw files: $DIR"
