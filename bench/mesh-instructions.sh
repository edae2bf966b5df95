#!/usr/bin/env bash
# Instructions per request of a cluster with active health checks and
# outlier detection on, against a plain cluster (issue #13), counted by
# valgrind's callgrind (deterministic, where CPU time on this noisy 2-core
# machine is not). ringway runs under callgrind with the epoll driver
# (valgrind does not follow io_uring), one worker; each variant serves N1
# and then, in a second process, N2 requests (closed loop); the marginal
# cost (I(N2) - I(N1)) / (N2 - N1) removes start-up and shutdown.
#   plain    three endpoints, round robin
#   checked  the same with health_check (every 1 s, the checker thread's
#            instructions included) and outlier_detection
#
# Usage: bench/mesh-instructions.sh [N1] [N2]   (defaults 4000, 16000)
# Needs: valgrind, target/release/{ringway,ringload}.
set -euo pipefail
N1=${1:-4000}
N2=${2:-16000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
command -v valgrind >/dev/null || { echo "mesh-instructions: valgrind missing" >&2; exit 2; }
DIR=$(mktemp -d /tmp/ringway-mesh-instr.XXXXXX)
PROXY_PORT=${PROXY_PORT:-18491}
O1=${O1:-18490}; O2=${O2:-18492}; O3=${O3:-18493}
cleanup() { kill "${S1:-}" "${S2:-}" "${S3:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT
cluster="[[cluster]]
name = \"app\"
endpoints = [\"127.0.0.1:$O1\", \"127.0.0.1:$O2\", \"127.0.0.1:$O3\"]"
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
"
printf '%s\n%s\n' "$head" "$cluster" > "$DIR/plain.toml"
printf '%s\n%s\nhealth_check = { path = "/healthz", interval = "1s" }\noutlier_detection = { consecutive_5xx = 5, consecutive_gateway_errors = 5 }\n' \
    "$head" "$cluster" > "$DIR/checked.toml"
"$R/ringload" serve --listen "127.0.0.1:$O1" --body-size 2 -t 1 > "$DIR/o1.log" 2>&1 & S1=$!
"$R/ringload" serve --listen "127.0.0.1:$O2" --body-size 2 -t 1 > "$DIR/o2.log" 2>&1 & S2=$!
"$R/ringload" serve --listen "127.0.0.1:$O3" --body-size 2 -t 1 > "$DIR/o3.log" 2>&1 & S3=$!
sleep 0.5
URL="http://127.0.0.1:$PROXY_PORT/"
count() {  # count VARIANT N -> total instructions
    local v=$1 n=$2 out="$DIR/cg.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$R/ringway" run -c "$DIR/$v.toml" > "$DIR/ringway.$v.$n.log" 2>&1 &
    P=$!
    for _ in $(seq 300); do grep -q "ringway: ready" "$DIR/ringway.$v.$n.log" 2>/dev/null && break; sleep 0.1; done
    "$R/ringload" run -c 4 -t 1 -n "$n" --timeout 30s --json "$URL" > "$DIR/load.$v.$n.json"
    kill -TERM $P
    wait $P || true
    awk '/^totals:|^summary:/ {print $2; exit}' "$out"
}
echo "# variant n1_instr n2_instr instr_per_request" | tee "$DIR/results.txt"
for v in plain checked; do
    a=$(count "$v" "$N1")
    b=$(count "$v" "$N2")
    per=$(python3 -c "print(round(($b - $a) / ($N2 - $N1)))")
    echo "$v $a $b $per" | tee -a "$DIR/results.txt"
done
python3 - "$DIR/results.txt" <<'EOF'
import sys
rows = {l.split()[0]: int(l.split()[3]) for l in open(sys.argv[1]) if not l.startswith("#")}
print(f"checked / plain: instructions per request {rows['checked'] / rows['plain']:.3f}x  ({rows['checked']:,} vs {rows['plain']:,})")
EOF
echo "raw results: $DIR/results.txt"
