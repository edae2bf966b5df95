#!/usr/bin/env bash
# Idle keep-alive connection memory, ringway vs nginx vs HAProxy in one run
# (issue #18, target 2): for each contender, one worker pinned to core 1,
# origin (ringload serve) on core 0; N client connections, one small GET
# each, then idle for HOLD s; the proxy's RSS growth per connection
# (bench/idle-memory.py). Contenders alternate, REPS times. The peers'
# connection limits are raised to fit N (nginx worker_connections, HAProxy
# maxconn); their configurations are otherwise the reference ones.
#   Usage: bench/idle-memory.sh [N] [REPS] [HOLD]   (defaults 5000 2 3)
# BODY=n: each connection's request is a POST with an n-byte body; with a
# HOLD under ringway's idle read release (1 s), what a keep-alive
# connection holds between busy requests (e.g. BODY=16384 ... 5000 2 0.5).
# Needs: target/release/{ringway,ringload}, nginx, haproxy. Loopback only.
set -euo pipefail
N=${1:-5000}; REPS=${2:-2}; HOLD=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
DIR=$(mktemp -d /tmp/ringway-idle.XXXXXX)
O_PORT=18800; P_PORT=18801
MAXC=$((N + 2000))
# HAProxy asks for 2 x maxconn + 14 descriptors at start: with the 20,000
# hard limit here, it can hold at most 9,993 connections (use N <= 9,900).
HAPROXY_MAXC=$((N + 50))
# Every process here may open up to the hard limit (20,000 in this container).
ulimit -n "$(ulimit -Hn)"
cleanup() { kill "${O:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT

cat > "$DIR/ringway.toml" <<CFG
[runtime]
workers = 1
max_connections_per_worker = $MAXC
${RINGWAY_RUNTIME_EXTRA:-}

[[listener]]
name = "public"
address = "127.0.0.1:$P_PORT"

[[route]]
name = "all"
path_prefix = "/"
cluster = "app"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:$O_PORT"]
CFG

mkdir -p "$DIR/nginx/tmp"
cat > "$DIR/nginx/nginx.conf" <<CFG
worker_processes 1;
worker_cpu_affinity 10;
daemon off;
pid proxy.pid;
error_log proxy-error.log warn;
worker_rlimit_nofile $(ulimit -Hn);
events { worker_connections $MAXC; multi_accept on; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    # As the bench's nginx (bench/peers/nginx-proxy.conf.in): request
    # bodies in memory (BODY=n runs), not in temporary files.
    client_body_buffer_size 64k;
    client_body_temp_path tmp/client;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    upstream backend {
        server 127.0.0.1:$O_PORT;
        keepalive 256;
        keepalive_requests 10000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$P_PORT backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CFG

cat > "$DIR/haproxy.cfg" <<CFG
global
    nbthread 1
    cpu-map 1/1 1
    maxconn $HAPROXY_MAXC
    tune.bufsize 16384
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 30s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$P_PORT
    default_backend be
backend be
    server s1 127.0.0.1:$O_PORT maxconn 4000
CFG

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$P_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "contender did not listen on $P_PORT" >&2; return 1
}

one() {  # one NAME -> prints a result line
    local pids
    case $1 in
        ringway)
            taskset -c 1 "$R/ringway" run -c "$DIR/ringway.toml" > "$DIR/ringway.log" 2>&1 & P=$!
            wait_port; pids=$P ;;
        nginx)
            taskset -c 1 nginx -p "$DIR/nginx" -c nginx.conf > "$DIR/nginx.log" 2>&1 & P=$!
            wait_port; sleep 0.2; pids=$(pgrep -P "$P" | paste -sd, -) ;;
        haproxy)
            taskset -c 1 haproxy -f "$DIR/haproxy.cfg" > "$DIR/haproxy.log" 2>&1 & P=$!
            wait_port; pids=$P ;;
    esac
    # One request first, so start-up allocations are not counted.
    curl -s -o /dev/null "http://127.0.0.1:$P_PORT/"
    sleep 0.5
    taskset -c 0 python3 "$ROOT/bench/idle-memory.py" "$P_PORT" "$pids" "$N" "$HOLD"
    kill "$P"; wait "$P" 2>/dev/null || true
}

taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$O_PORT" --body-size 2 -t 1 > "$DIR/origin.log" 2>&1 & O=$!
sleep 0.3
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); N=$N, hold ${HOLD}s"
for rep in $(seq "$REPS"); do
    for c in ringway nginx haproxy; do
        echo "rep $rep  $c: $(one $c)"
    done
done
