#!/usr/bin/env bash
# Cost of ringway's observability (issue #4): proxy CPU µs per request at a
# fixed offered rate, with
#   off      counters only (histograms = [], no access log)
#   default  the default [stats] (route histograms), no access log
#   on       every histogram dimension + JSON access log to a file
# Variants are interleaved in each repetition; the summary gives the median
# and min–max of the per-repetition ratios to `off` (same run).
#
# Usage: bench/obs-cost.sh [REPS] [RATE]   (defaults 6, 10000)
# Needs: target/release/{ringway,ringload} (cargo build --release), python3.
# Placement A: ringway on core 1; origin and load generator on core 0.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
REPS=${1:-6}
RATE=${2:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=$ROOT/target/release
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "obs-cost: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-obs-cost.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18090}
PROXY_PORT=${PROXY_PORT:-18091}
cleanup() { kill "${SERVE:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT

base="[runtime]
workers = 1
cores = [1]

[[listener]]
name = \"public\"
address = \"127.0.0.1:$PROXY_PORT\"

[[route]]
name = \"all\"
path_prefix = \"/\"
cluster = \"app\"

[[cluster]]
name = \"app\"
endpoints = [\"127.0.0.1:$ORIGIN_PORT\"]
"
printf '%s\n[stats]\nhistograms = []\n' "$base" > "$DIR/off.toml"
printf '%s\n' "$base" > "$DIR/default.toml"
printf '%s\n[stats]\nhistograms = ["listener", "route", "cluster", "endpoint"]\n[access_log]\npath = "%s/access.log"\nformat = "json"\n' \
    "$base" "$DIR" > "$DIR/on.toml"

taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
SERVE=$!
sleep 0.5
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
echo "# rep variant cpu_us_per_req open_p99_us log_lines" | tee "$DIR/results.txt"
for rep in $(seq "$REPS"); do
    for v in off default on; do
        rm -f "$DIR/access.log"
        "$R/ringway" run -c "$DIR/$v.toml" > "$DIR/ringway.$v.log" 2>&1 &
        P=$!
        for _ in $(seq 50); do grep -q "ringway: ready" "$DIR/ringway.$v.log" && break; sleep 0.1; done
        taskset -c 0 "$R/ringload" run -c 50 -d 1s -t 1 "http://127.0.0.1:$PROXY_PORT/" > /dev/null
        c1=$(ticks $P)
        out=$(taskset -c 0 "$R/ringload" run -c 50 -d 5s -t 1 --rate "$RATE" --json "http://127.0.0.1:$PROXY_PORT/")
        c2=$(ticks $P)
        kill -TERM $P
        wait $P || true
        lines=$( (cat "$DIR/access.log" 2>/dev/null || true) | wc -l)
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
us = (int(sys.argv[3]) - int(sys.argv[2])) * 1e6 / int(sys.argv[4]) / d["requests"]
print(sys.argv[5], sys.argv[6], round(us, 2), d["latency_us"]["p99"], sys.argv[7])
' "$out" "$c1" "$c2" "$TCK" "$rep" "$v" "$lines" | tee -a "$DIR/results.txt"
    done
done
python3 - "$DIR/results.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
cpu = {}
for rep, v, us, p99, lines in rows:
    cpu.setdefault(rep, {})[v] = float(us)
print()
for v in ("default", "on"):
    r = [c[v] / c["off"] for c in cpu.values() if v in c and "off" in c]
    print(f"{v:>8} / off: CPU per request median {statistics.median(r):.3f}x  [min {min(r):.3f} - max {max(r):.3f}]  ({len(r)} reps)")
med = {v: statistics.median(c[v] for c in cpu.values() if v in c) for v in ("off", "default", "on")}
print("median CPU us/req: " + ", ".join(f"{k} {x:.1f}" for k, x in med.items()))
EOF
echo "raw results: $DIR/results.txt"
