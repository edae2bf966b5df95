#!/usr/bin/env bash
# Ring operations and descriptor lookups per request, counted by the
# kernel's io_uring tracepoints (issue #18: what each ring feature changes
# in the kernel's work, where CPU time is too noisy to show it here).
#   io_uring_submit_req  one per operation the kernel takes from the ring
#                        (by opcode: FILES_UPDATE is a registered-files slot
#                        filled or emptied)
#   io_uring_file_get    one per operation that names a plain descriptor:
#                        a lookup in the process's descriptor table and a
#                        reference taken and dropped on the file (fget/fput).
#                        An operation on a registered slot has none.
# One worker on core 1, `ringload serve` origin and ringload on core 0,
# HTTP/1.1 small GETs: N on CONNS (50) keep-alive connections, then N/4 with
# a new connection each (ringload --no-keepalive). Each SETTING is a `[runtime]`
# line, e.g.:
#   bench/ring-ops-trace.sh 'ring_features = ["buffer_ring"]' 'ring_features = ["buffer_ring", "fixed_files"]'
# Needs root (tracefs) and target/release/{ringway,ringload}; prints SKIP
# otherwise. Loopback only, bounded (N requests per run, default 20000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
N=${N:-20000}
# Connections of the load (keep-alive runs), e.g. CONNS=9900 N=60000 (and
# `ulimit -n` above twice that).
CONNS=${CONNS:-50}
# Extra ringload arguments for every counted run, e.g. a 16 KiB upload:
#   LOAD_ARGS="-m POST --body-file /tmp/body-16k.bin" bench/ring-ops-trace.sh
read -r -a LOAD_ARGS <<< "${LOAD_ARGS:-}"
T=/sys/kernel/tracing
# A fresh machine may not have tracefs mounted: mount it when root.
if ! [ -d "$T/instances" ] && [ "$(id -u)" = 0 ] && [ -d "$T" ]; then
    mount -t tracefs nodev "$T" 2>/dev/null || true
fi
[ -d "$T/instances" ] || T=/sys/kernel/debug/tracing
if ! [ -w "$T/instances" ] || ! [ -d "$T/events/io_uring/io_uring_file_get" ]; then
    echo "SKIP: no writable tracefs with the io_uring tracepoints here (needs root)"
    exit 0
fi
[ $# -gt 0 ] || set -- 'ring_features = []'
DIR=$(mktemp -d /tmp/ringway-ops-trace.XXXXXX)
I="$T/instances/ringway-ops-$$"
O_PORT=${O_PORT:-18710}; P_PORT=${P_PORT:-18711}
cleanup() {
    kill "${O:-}" "${P:-}" 2>/dev/null || true
    [ -d "$I" ] && { echo 0 > "$I/tracing_on"; rmdir "$I"; } 2>/dev/null || true
}
trap cleanup EXIT

count() {  # count LABEL SETTING REQUESTS [ringload args...]
    local label=$1 setting=$2 n=$3; shift 3
    mkdir "$I"
    echo 32768 > "$I/buffer_size_kb"
    ls "/proc/$P/task" | tr '\n' ' ' > "$I/set_event_pid"
    echo 1 > "$I/events/io_uring/io_uring_submit_req/enable"
    echo 1 > "$I/events/io_uring/io_uring_file_get/enable"
    taskset -c 0 "$R/ringload" run -t 1 -n "$n" "$@" ${LOAD_ARGS[@]+"${LOAD_ARGS[@]}"} "http://127.0.0.1:$P_PORT/" > "$DIR/load.txt"
    echo 0 > "$I/tracing_on"
    cat "$I/trace" > "$DIR/trace.txt"
    rmdir "$I"
    python3 - "$DIR/trace.txt" "$n" "$label" "$setting" <<'EOF'
import re, sys, collections
path, n, label, setting = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ops = collections.Counter(); gets = 0; lost = 0
for line in open(path):
    if line.startswith('#'):
        if 'entries-in-buffer' in line:
            m = re.search(r'entries-in-buffer/entries-written: (\d+)/(\d+)', line)
            if m: lost = int(m.group(2)) - int(m.group(1))
        continue
    if 'io_uring_file_get:' in line:
        gets += 1
    m = re.search(r'io_uring_submit_req:.*opcode (\w+)', line)
    if m:
        ops[m.group(1)] += 1
total = sum(ops.values())
by = '  '.join(f'{k} {v / n:.2f}' for k, v in ops.most_common())
warn = f'  (WARNING: {lost} events lost)' if lost else ''
print(f'{label:11} {setting:48}  ring operations {total / n:5.2f}/req  descriptor lookups {gets / n:5.2f}/req  [{by}]{warn}')
EOF
}

for setting in "$@"; do
    cfg="$DIR/cfg.toml"
    printf '[runtime]\nworkers = 1\n%s\n\n[[listener]]\nname = "public"\naddress = "127.0.0.1:%s"\n\n[[route]]\nname = "all"\npath_prefix = "/"\ncluster = "app"\n\n[[cluster]]\nname = "app"\nendpoints = ["127.0.0.1:%s"]\n' \
        "$setting" "$P_PORT" "$O_PORT" > "$cfg"
    taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$O_PORT" -t 1 > "$DIR/origin.log" 2>&1 & O=$!
    taskset -c 1 "$R/ringway" run -c "$cfg" > "$DIR/proxy.log" 2>&1 & P=$!
    for _ in $(seq 100); do grep -q "ringway: ready" "$DIR/proxy.log" && break; sleep 0.1; done
    grep "ring features" "$DIR/proxy.log" || true
    # Warm: the upstream connection is pooled.
    taskset -c 0 "$R/ringload" run -t 1 -c 50 -n 1000 "http://127.0.0.1:$P_PORT/" > /dev/null
    count keep-alive "$setting" "$N" -c "$CONNS"
    count new-conn "$setting" $((N / 4)) -c "$CONNS" --no-keepalive
    kill "$P" "$O"; wait "$P" "$O" 2>/dev/null || true
done
