#!/usr/bin/env bash
# Rate limiters side by side (issue #11): ringway `rate_limit`, nginx
# `limit_req` and HAProxy stick tables, each with one worker/thread, the same
# limit, offered 3x the limit for DURATION seconds (open loop). Reports per
# contender: requests accepted (2xx) against the ideal (rate x duration +
# burst), 429s, and proxy CPU µs per request (all requests, accepted or not),
# over REPS interleaved repetitions.
#
# Limit: LIMIT requests/s for one key (all load comes from 127.0.0.1, so the
# key is the client address everywhere). nginx: `limit_req_zone
# $binary_remote_addr ... rate=LIMITr/s`, `limit_req burst=BURST nodelay`,
# `limit_req_status 429`. HAProxy: `stick-table type ip ... store
# http_req_rate(1s)`, deny 429 when the rate is above LIMIT (a sliding
# window, not a bucket: no burst setting). ringway: `rate_limit` with
# `key = "client_ip"`, `rate = "LIMIT/s"`, `burst = BURST`.
#
# Usage: bench/limiter-compare.sh [REPS] [LIMIT] [DURATION]   (defaults 3, 1000, 10)
# Needs: target/release/{ringway,ringload}; nginx and haproxy (each skipped
# with a note when missing). 127.0.0.1 only.
set -euo pipefail
REPS=${1:-3}
LIMIT=${2:-1000}
DURATION=${3:-10}
BURST=$((LIMIT / 10))
RATE=$((LIMIT * 3))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=$ROOT/target/release
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "limiter-compare: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-limiter.XXXXXX)
mkdir -p "$DIR/tmp"
ORIGIN_PORT=${ORIGIN_PORT:-18490}
PROXY_PORT=${PROXY_PORT:-18491}
cleanup() { kill "${SERVE:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT

cat > "$DIR/ringway.toml" <<EOF
[runtime]
workers = 1
cores = [1]

[[listener]]
name = "public"
address = "127.0.0.1:$PROXY_PORT"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:$ORIGIN_PORT"]

[[route]]
name = "all"
path_prefix = "/"
cluster = "app"

[[route.filters]]
type = "rate_limit"
key = "client_ip"
rate = "$LIMIT/s"
burst = $BURST
EOF
cat > "$DIR/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity 10;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $DIR/tmp/client;
    proxy_temp_path $DIR/tmp/proxy;
    fastcgi_temp_path $DIR/tmp/fastcgi;
    uwsgi_temp_path $DIR/tmp/uwsgi;
    scgi_temp_path $DIR/tmp/scgi;
    limit_req_zone \$binary_remote_addr zone=perip:10m rate=${LIMIT}r/s;
    limit_req_status 429;
    upstream backend {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 256;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT backlog=4096;
        location / {
            limit_req zone=perip burst=$BURST nodelay;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
cat > "$DIR/haproxy.cfg" <<EOF
global
    nbthread 1
    cpu-map 1/1 1
    maxconn 8000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$PROXY_PORT
    stick-table type ip size 1m expire 10s store http_req_rate(1s)
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt $LIMIT }
    default_backend be
backend be
    server s1 127.0.0.1:$ORIGIN_PORT maxconn 4000
EOF

CONTENDERS="ringway"
command -v nginx >/dev/null 2>&1 && CONTENDERS="$CONTENDERS nginx" || echo "limiter-compare: nginx not installed: skipped" >&2
command -v haproxy >/dev/null 2>&1 && CONTENDERS="$CONTENDERS haproxy" || echo "limiter-compare: haproxy not installed: skipped" >&2

start() {
    case "$1" in
        ringway) "$R/ringway" run -c "$DIR/ringway.toml" > "$DIR/ringway.log" 2>&1 & ;;
        nginx) nginx -c "$DIR/nginx.conf" -p "$DIR" > "$DIR/nginx.out" 2>&1 & ;;
        haproxy) taskset -c 1 haproxy -f "$DIR/haproxy.cfg" -db > "$DIR/haproxy.log" 2>&1 & ;;
    esac
    P=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.3
}
# nginx forks its worker: count the process and its children.
TCK=$(getconf CLK_TCK)
cpu_ns() {
    local total=0 p
    for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo $((total * 1000000000 / TCK))
}

taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
SERVE=$!
sleep 0.5
echo "# rep contender accepted limited other cpu_us_per_req" | tee "$DIR/results.txt"
read -ra CS <<< "$CONTENDERS"
N=${#CS[@]}
for rep in $(seq "$REPS"); do
    off=$(( (rep - 1) % N ))
    order=("${CS[@]:off}" "${CS[@]:0:off}")
    for c in "${order[@]}"; do
        start "$c"
        c1=$(cpu_ns $P)
        out=$(taskset -c 0 "$R/ringload" run -c 20 -d "${DURATION}s" -t 1 --rate "$RATE" --json "http://127.0.0.1:$PROXY_PORT/")
        c2=$(cpu_ns $P)
        kill -TERM $P 2>/dev/null || true
        [ "$c" = nginx ] && kill -TERM "$(cat "$DIR/nginx.pid" 2>/dev/null)" 2>/dev/null || true
        wait $P 2>/dev/null || true
        sleep 0.3
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
sc = d["status_counts"]
ok = sum(n for s, n in sc.items() if s.startswith("2"))
limited = sc.get("429", 0)
us = (int(sys.argv[3]) - int(sys.argv[2])) / 1e3 / max(d["requests"], 1)
print(sys.argv[4], sys.argv[5], ok, limited, d["requests"] - ok - limited + d["errors_total"], round(us, 2))
' "$out" "$c1" "$c2" "$rep" "$c" | tee -a "$DIR/results.txt"
    done
done
python3 - "$DIR/results.txt" "$LIMIT" "$DURATION" "$BURST" <<'EOF'
import statistics, sys
limit, duration, burst = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ideal = limit * duration + burst
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
by = {}
for rep, c, ok, limited, other, us in rows:
    by.setdefault(c, []).append((int(ok), int(limited), int(other), float(us)))
print(f"\nideal accepted: {limit}/s x {duration} s + burst {burst} = {ideal}")
for c, runs in by.items():
    acc = [r[0] / ideal for r in runs]
    print(f"{c:>8}: accepted/ideal median {statistics.median(acc):.3f} [{min(acc):.3f}-{max(acc):.3f}], "
          f"CPU µs/req median {statistics.median(r[3] for r in runs):.1f}, other responses/errors {sum(r[2] for r in runs)}")
EOF
echo "raw results: $DIR/results.txt"
