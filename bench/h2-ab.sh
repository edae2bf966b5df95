#!/usr/bin/env bash
# A/B of two ringway binaries on HTTP/2 cleartext (issue #15's load: h2load,
# 10 connections x 100 streams), one worker on core 1, the origin (nginx
# with the bench's upstream configuration, else `ringload serve`) and
# h2load on core 0. The binaries alternate PAIRS times; each run is a 2 s
# warm-up and an 8 s measured h2load run against a fresh proxy: req/s, CPU
# per request (utime+stime from /proc/PID/stat over the measured run) and
# the RSS at its end.
#   Usage: bench/h2-ab.sh DIR_A DIR_B [PAIRS]   (directories holding `ringway`)
# Needs: h2load (nghttp2-client). Loopback only, bounded.
set -euo pipefail
A=$1; B=$2; PAIRS=${3:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d /tmp/ringway-h2ab.XXXXXX)
O_PORT=${O_PORT:-18710}; P_PORT=${P_PORT:-18711}
cleanup() {
    kill "${P:-}" "${S:-}" 2>/dev/null || true
    if [ -f "$DIR/upstream/upstream.pid" ]; then kill "$(cat "$DIR/upstream/upstream.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT
command -v h2load >/dev/null || { echo "h2-ab: h2load missing" >&2; exit 2; }
if command -v nginx >/dev/null; then
    mkdir -p "$DIR/upstream/tmp"
    sed "s/127.0.0.1:28080/127.0.0.1:$O_PORT/" "$ROOT/bench/peers/nginx-upstream.conf" > "$DIR/nginx-upstream.conf"
    taskset -c 0 nginx -p "$DIR/upstream" -c "$DIR/nginx-upstream.conf" > "$DIR/nginx.log" 2>&1 &
else
    taskset -c 0 "$ROOT/target/release/ringload" serve --listen "127.0.0.1:$O_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 & S=$!
fi
printf '[runtime]\nworkers = 1\nlog_level = "warn"\n\n[[listener]]\nname = "bench"\naddress = "127.0.0.1:%s"\nprotocols = ["http/1.1", "h2"]\n\n[[route]]\nlistener = "bench"\npath_prefix = "/"\ncluster = "origin"\n\n[[cluster]]\nname = "origin"\nendpoints = ["127.0.0.1:%s"]\nmax_idle_per_endpoint = 1000\n' \
    "$P_PORT" "$O_PORT" > "$DIR/ringway.toml"
sleep 0.5
one() {  # one BIN_DIR -> a result line
    local u1 s1 u2 s2 rss n
    taskset -c 1 "$1/ringway" run -c "$DIR/ringway.toml" > "$DIR/proxy.log" 2>&1 & P=$!
    for _ in $(seq 100); do grep -q "ringway: ready" "$DIR/proxy.log" && break; sleep 0.1; done
    taskset -c 0 h2load -c 10 -m 100 -D 2 "http://127.0.0.1:$P_PORT/" > /dev/null
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$P/stat")
    taskset -c 0 h2load -c 10 -m 100 -D 8 "http://127.0.0.1:$P_PORT/" > "$DIR/h2load.out"
    read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$P/stat")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$P/status")
    n=$(awk '/^requests:/ {print $8}' "$DIR/h2load.out")
    kill "$P"; wait "$P" 2>/dev/null || true
    python3 -c "
n=$n; tick=1e6/$(getconf CLK_TCK)
u=($u2-$u1)*tick/n; s=($s2-$s1)*tick/n
print(f'{n/8:9.0f} req/s  user {u:5.2f}  kernel {s:5.2f}  total {u+s:5.2f} µs/req  RSS $rss KiB')"
}
for i in $(seq "$PAIRS"); do
    echo "pair $i  A ($A): $(one "$A")"
    echo "pair $i  B ($B): $(one "$B")"
done
