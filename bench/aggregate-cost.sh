#!/usr/bin/env bash
# Cost of request aggregation: proxy CPU per composite request of an
# `aggregate` route with 3 legs, against the CPU of 3 separately proxied
# plain requests, in one run, variants interleaved in every repetition:
#   plain  GET /plain, forwarded to the origin       (offered 3 × RATE req/s)
#   agg    GET /agg/42, 3 legs to the same origin    (offered RATE req/s)
# Both variants send the same number of upstream requests per second. The
# origin is a second ringway answering every path with a small JSON body
# (a `direct_response` route), so the legs' answers are real JSON and are
# merged verbatim. The summary gives the median and min–max of the
# per-repetition ratios agg_us / (3 × plain_us) (target: ≤ 1.2×).
#
# Usage: bench/aggregate-cost.sh [REPS] [RATE] [SECONDS]
#        (defaults 8, 3000, 5; WARMUP=1s unmeasured load before each run).
#        Needs: target/release/{ringway,ringload} (cargo build --release),
#        python3; BIN_DIR=… to use other binaries.
# Placement A: the measured ringway on core 1; origin and load generator on
# core 0. Everything listens on 127.0.0.1 only.
set -euo pipefail
REPS=${1:-8}
RATE=${2:-3000}
SECS=${3:-5}
WARMUP=${WARMUP:-1s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "aggregate-cost: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-aggregate-cost.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18290}
PROXY_PORT=${PROXY_PORT:-18291}
cleanup() { kill "${ORIGIN:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT

cat > "$DIR/origin.toml" <<EOF
[runtime]
workers = 1
cores = [0]

[[listener]]
name = "origin"
address = "127.0.0.1:$ORIGIN_PORT"

[[route]]
name = "json"
path_prefix = "/"
direct_response = { status = 200, content_type = "application/json", body = '{"id":42,"name":"ringway","items":[1,2,3]}' }

# Never used: a config needs a cluster.
[[cluster]]
name = "unused"
endpoints = ["127.0.0.1:9"]
EOF
cat > "$DIR/proxy.toml" <<EOF
[runtime]
workers = 1
cores = [1]

[[listener]]
name = "public"
address = "127.0.0.1:$PROXY_PORT"

[[route]]
name = "plain"
path = "/plain"
cluster = "app"

[[route]]
name = "agg"
path_regex = "/agg/(?P<id>[0-9]+)"
aggregate = { legs = [
  { name = "user", cluster = "app", path = "/users/{id}" },
  { name = "orders", cluster = "app", path = "/orders?user={id}" },
  { name = "stock", cluster = "app", path = "/stock" },
] }

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:$ORIGIN_PORT"]
EOF

"$R/ringway" run -c "$DIR/origin.toml" > "$DIR/origin.log" 2>&1 &
ORIGIN=$!
for _ in $(seq 50); do grep -q "ringway: ready" "$DIR/origin.log" && break; sleep 0.1; done
grep -q "ringway: ready" "$DIR/origin.log" || { echo "aggregate-cost: the origin did not start:" >&2; cat "$DIR/origin.log" >&2; exit 1; }
# The composite answer must be a 200 with every leg's JSON, else the run
# would measure error answers.
check_agg() {
    python3 - "$1" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    body = json.load(r)
assert r.status == 200 and set(body) == {"user", "orders", "stock"} and body["user"]["id"] == 42, body
PY
}
# CPU time of the process (utime + stime of every thread) in ns, from
# /proc/PID/stat (10 ms ticks), as filter-cost.sh does.
TCK=$(getconf CLK_TCK)
cpu_ns() { awk -v tck="$TCK" '{printf "%d", ($14 + $15) * 1e9 / tck}' "/proc/$1/stat"; }
url_of() { if [ "$1" = agg ]; then echo "http://127.0.0.1:$PROXY_PORT/agg/42"; else echo "http://127.0.0.1:$PROXY_PORT/plain"; fi; }
rate_of() { if [ "$1" = agg ]; then echo "$RATE"; else echo $((3 * RATE)); fi; }
echo "# rep variant cpu_us_per_req open_p99_us errors" | tee "$DIR/results.txt"
VS=(plain agg)
for rep in $(seq "$REPS"); do
    # Alternate the order each repetition.
    off=$(( (rep - 1) % 2 ))
    order=("${VS[@]:off}" "${VS[@]:0:off}")
    for v in "${order[@]}"; do
        "$R/ringway" run -c "$DIR/proxy.toml" > "$DIR/ringway.$v.log" 2>&1 &
        P=$!
        for _ in $(seq 50); do grep -q "ringway: ready" "$DIR/ringway.$v.log" && break; sleep 0.1; done
        URL=$(url_of "$v")
        check_agg "$(url_of agg)" || { echo "aggregate-cost: /agg/42 did not answer the composite JSON" >&2; exit 1; }
        # Warm-up (pool, caches), not measured.
        taskset -c 0 "$R/ringload" run -c 50 -d "$WARMUP" -t 1 "$URL" > /dev/null
        c1=$(cpu_ns $P)
        out=$(taskset -c 0 "$R/ringload" run -c 50 -d "${SECS}s" -t 1 --rate "$(rate_of "$v")" --json "$URL")
        c2=$(cpu_ns $P)
        kill -TERM $P
        wait $P || true
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
us = (int(sys.argv[3]) - int(sys.argv[2])) / 1e3 / max(d["requests"], 1)
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
r = [c["agg"] / (3 * c["plain"]) for c in cpu.values() if "agg" in c and "plain" in c and c["plain"] > 0]
print()
if r:
    print(f"agg / 3 x plain: CPU median {statistics.median(r):.3f}x  [min {min(r):.3f} - max {max(r):.3f}]  ({len(r)} reps; target <= 1.2x)")
for v in ("plain", "agg"):
    xs = [c[v] for c in cpu.values() if v in c]
    if xs:
        print(f"median CPU us per {v} request: {statistics.median(xs):.1f}")
EOF
echo "raw results: $DIR/results.txt"
