#!/usr/bin/env bash
# Cost of the gateway security filters (issue #11): proxy CPU µs per request
# at a fixed offered rate, in one run, variants interleaved (order rotated)
# in every repetition. Every variant gets the same request: GET with an
# `Authorization: Bearer <token>` header.
#
#   plain            ringway, a route without filters
#   jwt-es256        ringway, jwt filter, ES256 key, the one token repeated (cache on)
#   jwt-rs256        ringway, jwt filter, RS256 key (cache on)
#   jwt-es256-nocache ringway, jwt filter, ES256, cache_size = 0 (every request verified)
#   rate-limit       ringway, rate_limit keyed on the client address, a limit never reached
#   haproxy-plain    HAProxy 2.6, no check                        (when haproxy is installed)
#   haproxy-jwt-es256 HAProxy 2.6, http_auth_bearer + jwt_verify("ES256", pub.pem)
#
# The summary gives medians and [min–max] of per-repetition ratios:
# jwt-*/plain, rate-limit/plain, jwt-es256-nocache/haproxy-jwt-es256 (the
# issue's comparison: no cache on either side) and haproxy-jwt/haproxy-plain.
#
# Usage: bench/security-cost.sh [REPS] [RATE]   (defaults 6, 8000)
# Needs: target/release/{ringway,ringload}, python3 with `cryptography`
# (bench/jwt-fixture.py). Placement A: the proxy on core 1; origin and load
# on core 0. Everything listens on 127.0.0.1 only.
set -euo pipefail
REPS=${1:-6}
RATE=${2:-8000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=$ROOT/target/release
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "security-cost: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-security-cost.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18390}
PROXY_PORT=${PROXY_PORT:-18391}
cleanup() { kill "${SERVE:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT

python3 "$ROOT/bench/jwt-fixture.py" "$DIR"
ES_TOKEN=$(cat "$DIR/es256.jwt")
RS_TOKEN=$(cat "$DIR/rs256.jwt")

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
printf '%s\n' "$head" > "$DIR/plain.toml"
for alg in es256 rs256; do
    ALG=$(echo "$alg" | tr a-z A-Z)
    printf '%s\n[[route.filters]]\ntype = "jwt"\nkeys = [{ pem = "%s/%s.pub.pem", alg = "%s", kid = "%s" }]\naudiences = ["ringway"]\n' \
        "$head" "$DIR" "$alg" "$ALG" "$alg" > "$DIR/jwt-$alg.toml"
done
printf '%s\ncache_size = 0\n' "$(cat "$DIR/jwt-es256.toml")" > "$DIR/jwt-es256-nocache.toml"
printf '%s\n[[route.filters]]\ntype = "rate_limit"\nkey = "client_ip"\nrate = "1000000/s"\nburst = 1000000\n' \
    "$head" > "$DIR/rate-limit.toml"

VARIANTS="plain jwt-es256 jwt-rs256 jwt-es256-nocache rate-limit"
if command -v haproxy >/dev/null 2>&1; then
    hap="global
    nbthread 1
    cpu-map 1/1 1
    maxconn 8000
    tune.bufsize 16384
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
frontend fe
    bind 127.0.0.1:$PROXY_PORT
"
    printf '%s    default_backend be\nbackend be\n    server s1 127.0.0.1:%s maxconn 4000\n' "$hap" "$ORIGIN_PORT" > "$DIR/haproxy-plain.cfg"
    printf '%s    http-request set-var(txn.bearer) http_auth_bearer\n    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify("ES256","%s/es256.pub.pem") -m int 1 }\n    default_backend be\nbackend be\n    server s1 127.0.0.1:%s maxconn 4000\n' \
        "$hap" "$DIR" "$ORIGIN_PORT" > "$DIR/haproxy-jwt-es256.cfg"
    VARIANTS="$VARIANTS haproxy-plain haproxy-jwt-es256"
else
    echo "security-cost: haproxy not installed: the HAProxy variants are skipped" >&2
fi
token_of() { case "$1" in jwt-rs256) echo "$RS_TOKEN" ;; *) echo "$ES_TOKEN" ;; esac; }
start() {
    case "$1" in
        haproxy-*) taskset -c 1 haproxy -f "$DIR/$1.cfg" -db > "$DIR/$1.log" 2>&1 & ;;
        *) "$R/ringway" run -c "$DIR/$1.toml" > "$DIR/$1.log" 2>&1 & ;;
    esac
    P=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break
        sleep 0.1
    done
}
# CPU time of the process (utime + stime of every thread) in ns, from
# /proc/PID/stat (10 ms ticks: ±0.3 % over a 5 s run at this load). Not
# schedstat: on this kernel a busy io_uring worker's schedstat run time lags
# by seconds (checked against perf stat task-clock, which agrees with the
# ticks).
TCK=$(getconf CLK_TCK)
cpu_ns() { awk -v tck="$TCK" '{printf "%d", ($14 + $15) * 1e9 / tck}' "/proc/$1/stat"; }

taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
SERVE=$!
sleep 0.5
URL="http://127.0.0.1:$PROXY_PORT/"
echo "# rep variant cpu_us_per_req open_p99_us non_2xx errors" | tee "$DIR/results.txt"
read -ra VS <<< "$VARIANTS"
N=${#VS[@]}
for rep in $(seq "$REPS"); do
    off=$(( (rep - 1) % N ))
    order=("${VS[@]:off}" "${VS[@]:0:off}")
    for v in "${order[@]}"; do
        start "$v"
        auth="Authorization: Bearer $(token_of "$v")"
        taskset -c 0 "$R/ringload" run -c 50 -d 1s -t 1 -H "$auth" "$URL" > /dev/null
        c1=$(cpu_ns $P)
        out=$(taskset -c 0 "$R/ringload" run -c 50 -d 5s -t 1 --rate "$RATE" -H "$auth" --json "$URL")
        c2=$(cpu_ns $P)
        kill -TERM $P
        wait $P 2>/dev/null || true
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
us = (int(sys.argv[3]) - int(sys.argv[2])) / 1e3 / d["requests"]
ok = sum(n for s, n in d["status_counts"].items() if s.startswith("2"))
print(sys.argv[4], sys.argv[5], round(us, 2), d["latency_us"]["p99"], d["requests"] - ok, d["errors_total"])
' "$out" "$c1" "$c2" "$rep" "$v" | tee -a "$DIR/results.txt"
    done
done
python3 - "$DIR/results.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
cpu = {}
for rep, v, us, p99, bad, errors in rows:
    cpu.setdefault(rep, {})[v] = float(us)
    if int(bad) or int(errors):
        print(f"warning: rep {rep} {v}: {bad} non-2xx, {errors} errors")
print()
pairs = [("jwt-es256", "plain"), ("jwt-rs256", "plain"), ("jwt-es256-nocache", "plain"),
         ("rate-limit", "plain"), ("jwt-es256-nocache", "haproxy-jwt-es256"),
         ("haproxy-jwt-es256", "haproxy-plain"), ("plain", "haproxy-plain")]
for a, b in pairs:
    r = [c[a] / c[b] for c in cpu.values() if a in c and b in c]
    if r:
        print(f"{a:>18} / {b:<18}: CPU per request median {statistics.median(r):.3f}x  [min {min(r):.3f} - max {max(r):.3f}]  ({len(r)} reps)")
vs = sorted({v for c in cpu.values() for v in c})
print("median CPU us/req: " + ", ".join(f"{v} {statistics.median(c[v] for c in cpu.values() if v in c):.1f}" for v in vs))
EOF
echo "raw results: $DIR/results.txt"
