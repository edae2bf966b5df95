#!/usr/bin/env bash
# Where ringway's heap goes with many busy connections: valgrind's DHAT
# records every allocation, and the heap at its peak (t-gmax) is summed by
# the allocation site's first ringway or monoio frame, per connection.
#
# ringway is built with the `system-alloc` feature (glibc's malloc, which
# DHAT intercepts; mimalloc is called directly and DHAT would see nothing)
# into target/prof, and runs on the epoll driver (valgrind does not follow
# io_uring), one worker. The origin is nginx with the bench's upstream
# configuration (or `ringload serve`); ringload keeps CONNS connections
# busy, closed loop, for SECS seconds. Heap only: socket buffers, the
# driver's rings and pages the allocator keeps are not in it.
#
# Usage: bench/heap-profile.sh [CONNS] [SECS] [TOP]   (defaults 1000, 20, 25)
#   BIN=path: profile this binary (built with `--features system-alloc`)
#   instead of building target/prof.
# Needs: valgrind, python3, target/release/ringload.
set -euo pipefail
CONNS=${1:-1000}
SECS=${2:-20}
TOP=${3:-25}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || { echo "heap-profile: valgrind missing" >&2; exit 2; }
[ -x "$ROOT/target/release/ringload" ] || { echo "heap-profile: build ringload first (cargo build --release)" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
    (cd "$ROOT" && CARGO_TARGET_DIR=target/prof cargo build --release -p ringway --features system-alloc)
    BIN="$ROOT/target/prof/release/ringway"
fi
DIR=$(mktemp -d /tmp/ringway-heap.XXXXXX)
ORIGIN_PORT=${ORIGIN_PORT:-18690}
PROXY_PORT=${PROXY_PORT:-18691}
cleanup() {
    kill "${P:-}" 2>/dev/null || true
    if [ -f "$DIR/upstream/upstream.pid" ]; then kill "$(cat "$DIR/upstream/upstream.pid")" 2>/dev/null || true; fi
    kill "${SERVE:-}" 2>/dev/null || true
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

if command -v nginx >/dev/null; then
    mkdir -p "$DIR/upstream/tmp"
    sed "s/127.0.0.1:28080/127.0.0.1:$ORIGIN_PORT/" "$ROOT/bench/peers/nginx-upstream.conf" > "$DIR/nginx-upstream.conf"
    nginx -p "$DIR/upstream" -c "$DIR/nginx-upstream.conf" > "$DIR/nginx.log" 2>&1 &
else
    "$ROOT/target/release/ringload" serve --listen "127.0.0.1:$ORIGIN_PORT" --body-size 2 -t 1 > "$DIR/origin.log" 2>&1 &
    SERVE=$!
fi
cat > "$DIR/ringway.toml" <<EOF
[runtime]
workers = 1
driver = "legacy"

[[listener]]
name = "public"
address = "127.0.0.1:$PROXY_PORT"

[[route]]
name = "all"
path_prefix = "/"
cluster = "app"

[[cluster]]
name = "app"
endpoints = ["127.0.0.1:$ORIGIN_PORT"]
EOF
sleep 0.5
valgrind --tool=dhat --dhat-out-file="$DIR/dhat.json" "$BIN" run -c "$DIR/ringway.toml" > "$DIR/ringway.log" 2>&1 &
P=$!
for _ in $(seq 300); do grep -q "ringway: ready" "$DIR/ringway.log" 2>/dev/null && break; sleep 0.1; done
"$ROOT/target/release/ringload" run -c "$CONNS" -t 1 -d "${SECS}s" --timeout 60s "http://127.0.0.1:$PROXY_PORT/" > "$DIR/load.txt" 2>&1
kill -TERM $P
wait $P || true
grep -E "Status codes|Errors" "$DIR/load.txt" || true
python3 - "$DIR/dhat.json" "$CONNS" "$TOP" <<'EOF'
import json, re, sys
from collections import defaultdict
d = json.load(open(sys.argv[1]))
conns, top = int(sys.argv[2]), int(sys.argv[3])
ftbl = d["ftbl"]
alloc_frame = re.compile(r"alloc::|mimalloc|__rust|core::ptr|<alloc|vg_replace|malloc|calloc|realloc|hashbrown|RawVec|Vec<")
def site(p):
    frames = [ftbl[i].split(": ", 1)[-1] for i in p["fs"]]
    own = [f for f in frames if ("ringway" in f or "monoio" in f) and not alloc_frame.search(f.split(" (")[0][:40])]
    return " <- ".join(re.sub(r"\{closure[^}]*\}|<[^<>]*>", "", f.split(" (")[0])[:70] + " (" + f.split(" (")[-1] for f in own[:2]) or frames[0]
by = defaultdict(lambda: [0, 0])
for p in d["pps"]:
    if p.get("gb", 0):
        s = by[site(p)]
        s[0] += p["gb"]; s[1] += p["gbk"]
total = sum(v[0] for v in by.values())
print(f"heap at its peak: {total / 1024 / 1024:.1f} MiB in {sum(v[1] for v in by.values())} blocks, {total / conns:.0f} B per connection ({conns} connections)")
print(f"{'bytes':>12} {'per conn':>9} {'blocks':>8}  site")
for s, (b, n) in sorted(by.items(), key=lambda kv: -kv[1][0])[:top]:
    print(f"{b:>12} {b / conns:>9.0f} {n:>8}  {s}")
EOF
echo "raw profile: $DIR/dhat.json (open in /usr/libexec/valgrind/dh_view.html)"
