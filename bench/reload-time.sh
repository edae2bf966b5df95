#!/usr/bin/env bash
# Reload time (issue #10): from SIGHUP to every worker serving the new
# generation, as ringway measures it (it prints "generation N on every worker
# X ms after SIGHUP"), over N reloads of a file that changes each time (a
# route added or removed, a cluster's endpoints changed), with and without
# load (ringload at 50 connections). Prints p50 / p99 / max of each.
#
# Usage: bench/reload-time.sh [RELOADS] [WORKERS]   (defaults 20, 2)
# Needs: target/release/{ringway,ringload}, python3. 127.0.0.1 only.
set -euo pipefail
RELOADS=${1:-20}
WORKERS=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=$ROOT/target/release
for b in ringway ringload; do
    [ -x "$R/$b" ] || { echo "reload-time: $R/$b missing: run cargo build --release first" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/ringway-reload-time.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18290}
ORIGIN2_PORT=${ORIGIN2_PORT:-18292}
PROXY_PORT=${PROXY_PORT:-18291}
cleanup() { kill "${SERVE:-}" "${SERVE2:-}" "${P:-}" "${LOAD:-}" 2>/dev/null || true; }
trap cleanup EXIT

write_config() {
    local i=$1
    {
        printf '[runtime]\nworkers = %s\n\n[[listener]]\nname = "public"\naddress = "127.0.0.1:%s"\n\n' "$WORKERS" "$PROXY_PORT"
        if [ $((i % 2)) -eq 1 ]; then
            printf '[[route]]\nname = "odd%s"\npath_prefix = "/odd"\ncluster = "side"\n\n' "$i"
        fi
        printf '[[route]]\nname = "all"\npath_prefix = "/"\ncluster = "app"\n\n'
        printf '[[cluster]]\nname = "app"\nendpoints = ["127.0.0.1:%s"]\n\n' "$ORIGIN_PORT"
        if [ $((i % 3)) -eq 0 ]; then
            printf '[[cluster]]\nname = "side"\nendpoints = ["127.0.0.1:%s"]\n' "$ORIGIN2_PORT"
        else
            printf '[[cluster]]\nname = "side"\nendpoints = ["127.0.0.1:%s", "127.0.0.1:%s"]\n' "$ORIGIN2_PORT" "$ORIGIN_PORT"
        fi
    } > "$DIR/ringway.toml"
}

"$R/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/serve.log" 2>&1 &
SERVE=$!
"$R/ringload" serve --listen "127.0.0.1:$ORIGIN2_PORT" --body-size 2 -t 1 > "$DIR/serve2.log" 2>&1 &
SERVE2=$!
sleep 0.5

run() {
    local label=$1 load=$2
    write_config 0
    "$R/ringway" run -c "$DIR/ringway.toml" > "$DIR/ringway.$label.log" 2>&1 &
    P=$!
    for _ in $(seq 50); do grep -q "ringway: ready" "$DIR/ringway.$label.log" && break; sleep 0.1; done
    if [ "$load" = yes ]; then
        "$R/ringload" run -c 50 -t 1 -d 60s "http://127.0.0.1:$PROXY_PORT/" > "$DIR/load.$label.txt" 2>&1 &
        LOAD=$!
        sleep 1
    fi
    for i in $(seq "$RELOADS"); do
        write_config "$i"
        kill -HUP $P
        for _ in $(seq 500); do
            grep -q "generation $((i + 1)) on every worker" "$DIR/ringway.$label.log" && break
            sleep 0.01
        done
        sleep 0.2
    done
    if [ "$load" = yes ]; then kill -INT $LOAD 2>/dev/null || true; wait $LOAD 2>/dev/null || true; fi
    kill -TERM $P
    wait $P || true
    python3 - "$DIR/ringway.$label.log" "$label" "$RELOADS" <<'EOF'
import re, statistics, sys
ms = [float(m.group(1)) for m in re.finditer(r"on every worker ([0-9.]+) ms after SIGHUP", open(sys.argv[1]).read())]
want = int(sys.argv[3])
if len(ms) != want:
    sys.exit(f"{sys.argv[2]}: {len(ms)} of {want} reloads reported")
ms.sort()
p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
print(f"{sys.argv[2]:>10}: {len(ms)} reloads, SIGHUP -> every worker: p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
EOF
}
run idle no
run loaded yes
echo "logs: $DIR"
