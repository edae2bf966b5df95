#!/usr/bin/env bash
# Cost of OTLP span export (issue #17): proxy CPU µs per request at a fixed
# offered rate, in one run, variants interleaved (order rotated) in every
# repetition, a fresh ringway per run:
#   off     [tracing] w3c only (trace context, no export)
#   p1      [tracing.otlp] sample_ratio = 0.01 (keep rules on, nothing fails)
#   p100    [tracing.otlp] sample_ratio = 1: every request exports 2 spans
# The collector is a second `ringload serve` (answers every POST 200), so
# the exporter really sends. The summary gives the median and min–max of
# the per-repetition ratios p1/off and p100/off, and the spans exported.
#
# Usage: bench/trace-cost.sh [REPS] [RATE] [SECONDS]  (defaults 8, 10000, 5)
# Needs: target/release/{ringway,ringload} (cargo build --release), python3.
# Placement A: ringway on core 1; origin, collector and load on core 0.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
REPS=${1:-8}
RATE=${2:-10000}
SECS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "trace-cost: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-trace-cost.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18290}
PROXY_PORT=${PROXY_PORT:-18291}
COLLECTOR_PORT=${COLLECTOR_PORT:-18292}
ADMIN_PORT=${ADMIN_PORT:-18293}
cleanup() { kill "${SERVE:-}" "${COLL:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT

head="[runtime]
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

[admin]
address = \"127.0.0.1:$ADMIN_PORT\"
"
printf '%s\n' "$head" > "$DIR/off.toml"
for v in p1:0.01 p100:1.0; do
    printf '%s\n[tracing.otlp]\nendpoint = "http://127.0.0.1:%s/v1/traces"\nsample_ratio = %s\n' \
        "$head" "$COLLECTOR_PORT" "${v#*:}" > "$DIR/${v%%:*}.toml"
done

taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
SERVE=$!
taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$COLLECTOR_PORT" --body-size 2 -t 1 > "$DIR/collector.log" 2>&1 &
COLL=$!
sleep 0.5
TCK=$(getconf CLK_TCK)
cpu_ns() { awk -v tck="$TCK" '{printf "%d", ($14 + $15) * 1e9 / tck}' "/proc/$1/stat"; }
URL="http://127.0.0.1:$PROXY_PORT/"
echo "# rep variant cpu_us_per_req open_p99_us errors spans_exported spans_dropped" | tee "$DIR/results.txt"
VS=(off p1 p100)
N=${#VS[@]}
for rep in $(seq "$REPS"); do
    off=$(( (rep - 1) % N ))
    order=("${VS[@]:off}" "${VS[@]:0:off}")
    for v in "${order[@]}"; do
        "$R/ringway" run -c "$DIR/$v.toml" > "$DIR/ringway.$v.log" 2>&1 &
        P=$!
        for _ in $(seq 50); do grep -q "ringway: ready" "$DIR/ringway.$v.log" && break; sleep 0.1; done
        taskset -c 0 "$R/ringload" run -c 50 -d 1s -t 1 "$URL" > /dev/null
        c1=$(cpu_ns $P)
        out=$(taskset -c 0 "$R/ringload" run -c 50 -d "${SECS}s" -t 1 --rate "$RATE" --json "$URL")
        c2=$(cpu_ns $P)
        sleep 1.2
        metrics=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" || true)
        kill -TERM $P
        wait $P || true
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
us = (int(sys.argv[3]) - int(sys.argv[2])) / 1e3 / d["requests"]
exported = dropped = 0
for l in sys.argv[6].splitlines():
    if l.startswith("ringway_trace_spans_exported_total"):
        exported += int(float(l.split()[-1]))
    elif l.startswith("ringway_trace_spans_dropped_total"):
        dropped += int(float(l.split()[-1]))
print(sys.argv[4], sys.argv[5], round(us, 2), d["latency_us"]["p99"], d["errors_total"], exported, dropped)
' "$out" "$c1" "$c2" "$rep" "$v" "$metrics" | tee -a "$DIR/results.txt"
    done
done
python3 - "$DIR/results.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
cpu = {}
for rep, v, us, p99, errors, exported, dropped in rows:
    cpu.setdefault(rep, {})[v] = float(us)
print()
for a in ("p1", "p100"):
    r = [c[a] / c["off"] for c in cpu.values() if a in c and "off" in c]
    if r:
        print(f"{a:>5} / off: CPU per request median {statistics.median(r):.3f}x  [min {min(r):.3f} - max {max(r):.3f}]  ({len(r)} reps)")
med = {v: statistics.median(c[v] for c in cpu.values() if v in c) for v in ("off", "p1", "p100")}
print("median CPU us/req: " + ", ".join(f"{k} {x:.2f}" for k, x in med.items()))
EOF
echo "raw results: $DIR/results.txt"
