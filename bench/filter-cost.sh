#!/usr/bin/env bash
# Cost of the filter chain (issue #10): proxy CPU µs per request at a fixed
# offered rate, in one run, variants interleaved in every repetition:
#   before   the ringway binary built before the filter chain (BEFORE_BIN)
#   empty    this build, a route with no filters
#   filters  this build, a route with 3 header edits + CORS
# Every variant gets the same request (GET with an Origin header that the
# CORS filter allows). The summary gives the median and min–max of the
# per-repetition ratios (same run): empty/before and filters/empty.
#
# Usage: BEFORE_BIN=/path/to/old/ringway bench/filter-cost.sh [REPS] [RATE]
#        (defaults 8, 10000). Without BEFORE_BIN only empty and filters run.
# Needs: target/release/{ringway,ringload} (cargo build --release), python3.
# Placement A: ringway on core 1; origin and load generator on core 0.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
REPS=${1:-8}
RATE=${2:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=$ROOT/target/release
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "filter-cost: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-filter-cost.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18190}
PROXY_PORT=${PROXY_PORT:-18191}
cleanup() { kill "${SERVE:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT

head="[runtime]
workers = 1
cores = [1]

[[listener]]
name = \"public\"
address = \"127.0.0.1:$PROXY_PORT\"

[[cluster]]
name = \"app\"
endpoints = [\"127.0.0.1:$ORIGIN_PORT\"]
"
printf '%s\n[[route]]\nname = "all"\npath_prefix = "/"\ncluster = "app"\n' "$head" > "$DIR/plain.toml"
cat > "$DIR/filters.toml" <<EOF
$head
[[route]]
name = "all"
path_prefix = "/"
cluster = "app"

[[route.filters]]
type = "headers"
request_set = { "x-route" = "\$route" }
request_remove = ["x-debug"]
response_set = { "x-served-by" = "ringway" }

[[route.filters]]
type = "cors"
allow_origins = ["https://app.example.com"]
allow_methods = ["GET", "POST"]
max_age = "10m"
EOF

VARIANTS="empty filters"
if [ -n "${BEFORE_BIN:-}" ]; then
    [ -x "$BEFORE_BIN" ] || { echo "filter-cost: BEFORE_BIN=$BEFORE_BIN is not executable" >&2; exit 2; }
    VARIANTS="before empty filters"
fi
bin_of() { if [ "$1" = before ]; then echo "$BEFORE_BIN"; else echo "$R/ringway"; fi; }
conf_of() { if [ "$1" = filters ]; then echo "$DIR/filters.toml"; else echo "$DIR/plain.toml"; fi; }

taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
SERVE=$!
sleep 0.5
# CPU time of the process (utime + stime of every thread) in ns, from
# /proc/PID/stat (10 ms ticks: ±0.3 % over a 5 s run at this load). Not
# schedstat: on this kernel a busy io_uring worker's schedstat run time lags
# by seconds (checked against perf stat task-clock, which agrees with the
# ticks).
TCK=$(getconf CLK_TCK)
cpu_ns() { awk -v tck="$TCK" '{printf "%d", ($14 + $15) * 1e9 / tck}' "/proc/$1/stat"; }
URL="http://127.0.0.1:$PROXY_PORT/"
echo "# rep variant cpu_us_per_req open_p99_us errors" | tee "$DIR/results.txt"
read -ra VS <<< "$VARIANTS"
N=${#VS[@]}
for rep in $(seq "$REPS"); do
    # Rotate the order each repetition.
    off=$(( (rep - 1) % N ))
    order=("${VS[@]:off}" "${VS[@]:0:off}")
    for v in "${order[@]}"; do
        "$(bin_of "$v")" run -c "$(conf_of "$v")" > "$DIR/ringway.$v.log" 2>&1 &
        P=$!
        for _ in $(seq 50); do grep -q "ringway: ready" "$DIR/ringway.$v.log" && break; sleep 0.1; done
        taskset -c 0 "$R/ringload" run -c 50 -d 1s -t 1 -H "Origin: https://app.example.com" "$URL" > /dev/null
        c1=$(cpu_ns $P)
        out=$(taskset -c 0 "$R/ringload" run -c 50 -d 5s -t 1 --rate "$RATE" -H "Origin: https://app.example.com" --json "$URL")
        c2=$(cpu_ns $P)
        kill -TERM $P
        wait $P || true
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
us = (int(sys.argv[3]) - int(sys.argv[2])) / 1e3 / d["requests"]
print(sys.argv[4], sys.argv[5], round(us, 2), d["latency_us"]["p99"], d["errors_total"])
' "$out" "$c1" "$c2" "$rep" "$v" | tee -a "$DIR/results.txt"
    done
done
python3 - "$DIR/results.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
cpu = {}
for rep, v, us, p99, errors in rows:
    cpu.setdefault(rep, {})[v] = float(us)
print()
for a, b in (("empty", "before"), ("filters", "empty")):
    r = [c[a] / c[b] for c in cpu.values() if a in c and b in c]
    if r:
        print(f"{a:>8} / {b:<7}: CPU per request median {statistics.median(r):.3f}x  [min {min(r):.3f} - max {max(r):.3f}]  ({len(r)} reps)")
vs = [v for v in ("before", "empty", "filters") if any(v in c for c in cpu.values())]
med = {v: statistics.median(c[v] for c in cpu.values() if v in c) for v in vs}
print("median CPU us/req: " + ", ".join(f"{k} {x:.1f}" for k, x in med.items()))
EOF
echo "raw results: $DIR/results.txt"
