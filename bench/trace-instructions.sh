#!/usr/bin/env bash
# Instructions per request of span export (issue #17), counted by
# valgrind's callgrind: deterministic where CPU time on this noisy 2-core
# machine is not. ringway runs under callgrind with the epoll driver
# (valgrind does not follow io_uring), one worker; each variant serves N1
# and then, in a second process, N2 requests (closed loop); the marginal
# cost (I(N2) - I(N1)) / (N2 - N1) removes start-up and shutdown.
#   off     [tracing] w3c only
#   p1      [tracing.otlp] sample_ratio = 0.01
#   p100    [tracing.otlp] sample_ratio = 1
# Spans go to a real collector sink (`ringload serve`). The exporter
# thread's instructions are included (it is part of the process).
#
# Usage: bench/trace-instructions.sh [N1] [N2]   (defaults 4000, 16000)
#   ACCESS_LOG=1: every variant also writes the JSON access log (to
#   /dev/null), the common production setup: the request facts spans need
#   are then captured anyway.
# Needs: valgrind, target/release/{ringway,ringload}.
set -euo pipefail
N1=${1:-4000}
N2=${2:-16000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
command -v valgrind >/dev/null || { echo "trace-instructions: valgrind missing" >&2; exit 2; }
DIR=$(mktemp -d /tmp/ringway-trace-instr.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18390}
PROXY_PORT=${PROXY_PORT:-18391}
COLLECTOR_PORT=${COLLECTOR_PORT:-18392}
cleanup() { kill "${SERVE:-}" "${COLL:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT
head="[runtime]
workers = 1
driver = \"legacy\"

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
if [ "${ACCESS_LOG:-0}" = 1 ]; then
    head="$head
[access_log]
path = \"/dev/null\"
"
fi
printf '%s\n' "$head" > "$DIR/off.toml"
for v in p1:0.01 p100:1.0; do
    printf '%s\n[tracing.otlp]\nendpoint = "http://127.0.0.1:%s/v1/traces"\nsample_ratio = %s\nflush_interval = "200ms"\n' \
        "$head" "$COLLECTOR_PORT" "${v#*:}" > "$DIR/${v%%:*}.toml"
done
"$R/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
SERVE=$!
"$R/ringload" serve --listen "127.0.0.1:$COLLECTOR_PORT" --body-size 2 -t 1 > "$DIR/collector.log" 2>&1 &
COLL=$!
sleep 0.5
URL="http://127.0.0.1:$PROXY_PORT/"
count() {  # count VARIANT N -> total instructions
    local v=$1 n=$2 out="$DIR/cg.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$R/ringway" run -c "$DIR/$v.toml" > "$DIR/ringway.$v.$n.log" 2>&1 &
    P=$!
    for _ in $(seq 300); do grep -q "ringway: ready" "$DIR/ringway.$v.$n.log" 2>/dev/null && break; sleep 0.1; done
    "$R/ringload" run -c 4 -t 1 -n "$n" --timeout 30s --json "$URL" > "$DIR/load.$v.$n.json"
    sleep 0.6   # one more flush of the span buffer and the exporter
    kill -TERM $P
    wait $P || true
    awk '/^totals:|^summary:/ {print $2; exit}' "$out"
}
echo "# variant n1_instr n2_instr instr_per_request" | tee "$DIR/results.txt"
for v in off p1 p100; do
    a=$(count "$v" "$N1")
    b=$(count "$v" "$N2")
    per=$(python3 -c "print(round(($b - $a) / ($N2 - $N1)))")
    echo "$v $a $b $per" | tee -a "$DIR/results.txt"
done
python3 - "$DIR/results.txt" <<'EOF'
import sys
rows = {l.split()[0]: int(l.split()[3]) for l in open(sys.argv[1]) if not l.startswith("#")}
for v in ("p1", "p100"):
    print(f"{v:>5} / off: instructions per request {rows[v] / rows['off']:.3f}x  ({rows[v]:,} vs {rows['off']:,})")
EOF
echo "raw results: $DIR/results.txt"
