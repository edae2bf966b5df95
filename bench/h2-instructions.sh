#!/usr/bin/env bash
# Instructions per HTTP/2 request (issue #15), counted by valgrind's
# callgrind: deterministic, where CPU time on this noisy 2-core machine is
# not. Each ringway binary given runs under callgrind with the epoll driver
# (valgrind does not follow io_uring), one worker, a listener speaking h2c
# (prior knowledge) or, with TLS=1, ALPN h2 (a certificate minted here with
# openssl); h2load sends N1 and then, to a second process, N2 GETs over 10
# connections x 100 streams, as the h2c-streams scenario does. The marginal
# cost (I(N2) - I(N1)) / (N2 - N1) removes start-up, handshakes and
# shutdown. The origin is nginx with the bench's upstream configuration
# (bench/peers/nginx-upstream.conf: 2-byte body, Server/Date/Content-Type/
# Content-Length), or `ringload serve` when nginx is missing (fewer fields:
# the figures are then lower and not comparable).
#
# Usage: bench/h2-instructions.sh [BIN...]   (default target/release/ringway)
#   N1, N2 (defaults 5000, 25000), TLS=1.
# Needs: valgrind, h2load (nghttp2-client); openssl with TLS=1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N1=${N1:-5000}
N2=${N2:-25000}
[ $# -gt 0 ] || set -- "$ROOT/target/release/ringway"
for t in valgrind h2load; do
    command -v $t >/dev/null || { echo "h2-instructions: $t missing" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-h2-instr.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18590}
PROXY_PORT=${PROXY_PORT:-18591}
cleanup() {
    kill "${P:-}" 2>/dev/null || true
    if [ -f "$DIR/upstream/upstream.pid" ]; then kill "$(cat "$DIR/upstream/upstream.pid")" 2>/dev/null || true; fi
    kill "${SERVE:-}" 2>/dev/null || true
}
trap cleanup EXIT

if command -v nginx >/dev/null; then
    mkdir -p "$DIR/upstream/tmp"
    sed "s/127.0.0.1:28080/127.0.0.1:$ORIGIN_PORT/" "$ROOT/bench/peers/nginx-upstream.conf" > "$DIR/nginx-upstream.conf"
    nginx -p "$DIR/upstream" -c "$DIR/nginx-upstream.conf" > "$DIR/nginx.log" 2>&1 &
    ORIGIN="nginx"
else
    "$ROOT/target/release/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
    SERVE=$!
    ORIGIN="ringload serve (fewer response fields than the bench's nginx origin)"
fi
TLS_LINE=""
SCHEME=http
LABEL="h2c"
if [ "${TLS:-0}" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$DIR/key.pem" -out "$DIR/cert.pem" -days 1 -subj "/CN=localhost" \
        -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
    TLS_LINE="tls = { cert = \"$DIR/cert.pem\", key = \"$DIR/key.pem\" }"
    SCHEME=https
    LABEL="h2 over TLS"
fi
cat > "$DIR/ringway.toml" <<CFG
[runtime]
workers = 1
driver = "legacy"
log_level = "warn"

[[listener]]
name = "bench"
address = "127.0.0.1:$PROXY_PORT"
protocols = ["http/1.1", "h2"]
$TLS_LINE

[[route]]
listener = "bench"
path_prefix = "/"
cluster = "origin"

[[cluster]]
name = "origin"
endpoints = ["127.0.0.1:$ORIGIN_PORT"]
max_idle_per_endpoint = 1000
CFG
sleep 0.5
count() {  # count BIN N -> total instructions
    local bin=$1 n=$2
    local out="$DIR/cg.$n"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" run -c "$DIR/ringway.toml" > "$DIR/ringway.$n.log" 2>&1 &
    P=$!
    for _ in $(seq 300); do grep -q "ringway: ready" "$DIR/ringway.$n.log" 2>/dev/null && break; sleep 0.1; done
    h2load -c 10 -m 100 -n "$n" "$SCHEME://127.0.0.1:$PROXY_PORT/" > "$DIR/h2load.$n" 2>&1
    grep -q " $n succeeded" "$DIR/h2load.$n" || { echo "h2-instructions: h2load failed" >&2; cat "$DIR/h2load.$n" >&2; exit 1; }
    kill -TERM $P
    wait $P || true
    awk '/^totals:|^summary:/ {print $2; exit}' "$out"
}
echo "# origin: $ORIGIN; $LABEL; N1=$N1 N2=$N2"
echo "# binary instructions_per_request"
for bin in "$@"; do
    a=$(count "$bin" "$N1")
    b=$(count "$bin" "$N2")
    echo "$bin $(( (b - a) / (N2 - N1) ))"
done
echo "raw files: $DIR"
