#!/usr/bin/env bash
# Cost of response compression: proxy CPU per MB of response body
# compressed, ringway's `compress` filter against nginx's `gzip` at the same
# level, in one run, variants interleaved (order rotated) in every
# repetition. Every variant proxies the same ~100 KiB JSON document (served
# by an nginx origin as a static file, on core 0) to the same load
# (ringload, GET with Accept-Encoding, a fixed rate, on core 0); the proxy
# runs alone on core 1.
#
#   ringway-plain   ringway, no filter (what proxying the body costs)
#   nginx-plain     nginx, gzip off
#   ringway-gzip1   ringway, compress { algorithms = ["gzip"], gzip_level = 1 }
#   nginx-gzip1     nginx, gzip on; gzip_comp_level 1
#   ringway-gzip6   ringway, gzip_level = 6
#   nginx-gzip6     nginx, gzip_comp_level 6
#   ringway-br4     ringway, brotli quality 4, window 18 (for information:
#                   nginx has no brotli without a third-party module)
#
# Both sides: types application/json, min length 1 KiB, Vary added, the
# default window (zlib 32 KiB). ringway's gzip is zlib-rs (a Rust port of
# zlib), nginx's the system zlib.
#
# The summary gives, per variant, the median proxy CPU µs per MB of
# uncompressed body and the bytes per response on the wire; and the
# medians and [min–max] of the per-repetition ratios ringway/nginx at each
# level (the same run, so comparable), and gzip6/plain.
#
# Usage: bench/compress-cost.sh [REPS] [RATE] [SECS]   (defaults 6, 300, 5)
#   RATE requests/s × 100 KiB must be within what the slowest variant
#   (gzip 6) compresses on one core, or the variants are not loaded alike:
#   check that every variant's achieved rps equals RATE.
# Needs: target/release/{ringway,ringload} (cargo build --release), nginx,
# python3. BIN_DIR=… takes the binaries from elsewhere (a smoke run with
# debug builds: BIN_DIR=target/debug bench/compress-cost.sh 1 50 1).
# Everything listens on 127.0.0.1 only.
set -euo pipefail
REPS=${1:-6}
RATE=${2:-300}
SECS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
case "$R" in /*) ;; *) R=$ROOT/$R ;; esac
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "compress-cost: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
command -v nginx >/dev/null 2>&1 || { echo "compress-cost: nginx is not installed" >&2; exit 2; }
DIR=$(mktemp -d /tmp/ringway-compress-cost.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18490}
PROXY_PORT=${PROXY_PORT:-18491}
cleanup() {
    kill "${P:-}" 2>/dev/null || true
    [ -f "$DIR/origin/nginx.pid" ] && kill "$(cat "$DIR/origin/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

# The document: ~100 KiB of JSON records with varying values (compresses
# about 4-6x, like real API output; not a repeated byte).
mkdir -p "$DIR/origin/www" "$DIR/origin/tmp"
python3 - "$DIR/origin/www/data.json" <<'EOF'
import json, random, sys
random.seed(7)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
items, size = [], 0
while size < 100 * 1024:
    it = {"id": len(items), "name": " ".join(random.choice(words) for _ in range(3)),
          "price": round(random.uniform(1, 500), 2), "stock": random.randint(0, 9999),
          "tags": random.sample(words, 3), "active": random.random() < 0.7,
          "sku": "%08x" % random.getrandbits(32)}
    items.append(it)
    size += len(json.dumps(it)) + 2
open(sys.argv[1], "w").write(json.dumps({"items": items}, indent=1)[: 100 * 1024 + 512])
EOF
BODY_BYTES=$(stat -c %s "$DIR/origin/www/data.json")

# nginx workers (not root) must read the document and write their temp dirs.
chmod 755 "$DIR"
ngx_common="user root;
worker_processes 1;
daemon off;
error_log error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; multi_accept on; }"
ngx_temps="    client_body_temp_path tmp/client;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;"
cat > "$DIR/origin/nginx.conf" <<EOF
$ngx_common
pid nginx.pid;
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
$ngx_temps
    types { application/json json; }
    sendfile on;
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        root www;
    }
}
EOF
# nginx as the proxy (the reference config of ../shared/reference, plus gzip).
ngx_proxy() { # $1 = gzip directives
    cat <<EOF
$ngx_common
pid nginx.pid;
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
$ngx_temps
$1
    upstream backend {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 256;
        keepalive_requests 10000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The whole 100 KiB response in memory: no temp file.
            proxy_buffer_size 16k;
            proxy_buffers 16 16k;
        }
    }
}
EOF
}
for v in nginx-plain nginx-gzip1 nginx-gzip6; do
    mkdir -p "$DIR/$v/tmp"
done
ngx_proxy "    gzip off;" > "$DIR/nginx-plain/nginx.conf"
for lvl in 1 6; do
    ngx_proxy "    gzip on;
    gzip_comp_level $lvl;
    gzip_types application/json;
    gzip_min_length 1024;
    gzip_proxied any;
    gzip_vary on;" > "$DIR/nginx-gzip$lvl/nginx.conf"
done

head="[runtime]
workers = 1
cores = [1]

[[listener]]
name = \"public\"
address = \"127.0.0.1:$PROXY_PORT\"

[[cluster]]
name = \"app\"
endpoints = [\"127.0.0.1:$ORIGIN_PORT\"]

[[route]]
name = \"all\"
path_prefix = \"/\"
cluster = \"app\"
"
printf '%s\n' "$head" > "$DIR/ringway-plain.toml"
for lvl in 1 6; do
    printf '%s\n[[route.filters]]\ntype = "compress"\nalgorithms = ["gzip"]\ngzip_level = %s\nmin_size = "1KiB"\ncontent_types = ["application/json"]\n' \
        "$head" "$lvl" > "$DIR/ringway-gzip$lvl.toml"
done
printf '%s\n[[route.filters]]\ntype = "compress"\nalgorithms = ["br"]\nbrotli_quality = 4\nbrotli_window = 18\nmin_size = "1KiB"\ncontent_types = ["application/json"]\n' \
    "$head" > "$DIR/ringway-br4.toml"

VARIANTS="ringway-plain nginx-plain ringway-gzip1 nginx-gzip1 ringway-gzip6 nginx-gzip6 ringway-br4"
accept_of() { case "$1" in *-br4) echo "br" ;; *) echo "gzip" ;; esac; }

# Start variant $1 on core 1; sets P to the process whose CPU is measured
# (nginx: its single worker).
start_variant() {
    case "$1" in
        ringway-*)
            taskset -c 1 "$R/ringway" run -c "$DIR/$1.toml" > "$DIR/$1.log" 2>&1 &
            P=$!
            for _ in $(seq 50); do grep -q "ringway: ready" "$DIR/$1.log" && break; sleep 0.1; done
            ;;
        nginx-*)
            rm -f "$DIR/$1/nginx.pid"
            taskset -c 1 nginx -p "$DIR/$1" -c nginx.conf > "$DIR/$1/stdout.log" 2>&1 &
            M=$!
            P=""
            for _ in $(seq 50); do
                P=$(pgrep -P "$M" | head -1 || true)
                [ -n "$P" ] && break
                sleep 0.1
            done
            [ -n "$P" ] || { echo "compress-cost: nginx ($1) did not start: $(cat "$DIR/$1/error.log" 2>/dev/null)" >&2; exit 1; }
            P_MASTER=$M
            ;;
    esac
}
stop_variant() {
    case "$1" in
        ringway-*) kill -TERM "$P"; wait "$P" || true ;;
        nginx-*) kill -QUIT "$P_MASTER"; wait "$P_MASTER" || true ;;
    esac
    P=""
}

(cd "$DIR/origin" && taskset -c 0 nginx -p "$DIR/origin" -c nginx.conf > stdout.log 2>&1 &)
for _ in $(seq 50); do [ -f "$DIR/origin/nginx.pid" ] && break; sleep 0.1; done
# CPU time of a process (utime + stime, every thread) in ns from
# /proc/PID/stat (10 ms ticks), as the other cost scripts.
TCK=$(getconf CLK_TCK)
cpu_ns() { awk -v tck="$TCK" '{printf "%d", ($14 + $15) * 1e9 / tck}' "/proc/$1/stat"; }
URL="http://127.0.0.1:$PROXY_PORT/data.json"
echo "# body $BODY_BYTES bytes, rate $RATE/s, ${SECS}s per variant" | tee "$DIR/results.txt"
echo "# rep variant cpu_us_per_mb wire_bytes_per_resp rps errors" | tee -a "$DIR/results.txt"
read -ra VS <<< "$VARIANTS"
N=${#VS[@]}
for rep in $(seq "$REPS"); do
    off=$(( (rep - 1) % N ))
    order=("${VS[@]:off}" "${VS[@]:0:off}")
    for v in "${order[@]}"; do
        start_variant "$v"
        ae="Accept-Encoding: $(accept_of "$v")"
        taskset -c 0 "$R/ringload" run -c 20 -d 1s -t 1 --rate "$RATE" -H "$ae" "$URL" > /dev/null
        c1=$(cpu_ns "$P")
        out=$(taskset -c 0 "$R/ringload" run -c 20 -d "${SECS}s" -t 1 --rate "$RATE" -H "$ae" --json "$URL")
        c2=$(cpu_ns "$P")
        stop_variant "$v"
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
n = max(d["requests"], 1)
bad = {k: c for k, c in d["status_counts"].items() if k != "200"}
if bad:
    print(f"compress-cost: {sys.argv[5]}: responses other than 200: {bad}", file=sys.stderr)
mb = n * int(sys.argv[6]) / 1e6
us_per_mb = (int(sys.argv[3]) - int(sys.argv[2])) / 1e3 / mb
print(sys.argv[4], sys.argv[5], round(us_per_mb, 1), d["bytes"] // n, round(d["rps"]), d["errors_total"])
' "$out" "$c1" "$c2" "$rep" "$v" "$BODY_BYTES" | tee -a "$DIR/results.txt"
    done
done
python3 - "$DIR/results.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
cpu, wire = {}, {}
for rep, v, us, wb, rps, errors in rows:
    cpu.setdefault(rep, {})[v] = float(us)
    wire.setdefault(v, []).append(int(wb))
print()
order = ["ringway-plain", "nginx-plain", "ringway-gzip1", "nginx-gzip1", "ringway-gzip6", "nginx-gzip6", "ringway-br4"]
for v in order:
    xs = [c[v] for c in cpu.values() if v in c]
    if xs:
        print(f"{v:>14}: CPU {statistics.median(xs):8.1f} us per MB of body   {statistics.median(wire[v]):8.0f} bytes per response on the wire")
print()
for a, b in (("ringway-gzip1", "nginx-gzip1"), ("ringway-gzip6", "nginx-gzip6"),
             ("ringway-plain", "nginx-plain"), ("ringway-gzip6", "ringway-plain"),
             ("ringway-br4", "ringway-gzip6")):
    r = [c[a] / c[b] for c in cpu.values() if a in c and b in c and c[b] > 0]
    if r:
        print(f"{a:>14} / {b:<14}: CPU per MB median {statistics.median(r):.3f}x  [min {min(r):.3f} - max {max(r):.3f}]  ({len(r)} reps)")
EOF
echo "raw results: $DIR/results.txt"
