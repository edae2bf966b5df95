#!/usr/bin/env bash
# A/B of one ringway binary under two `[runtime]` settings (issue #18:
# each io_uring feature measured alone): HTTP/1.1 keep-alive small GET
# through one worker on core 1, origin and ringload on core 0, at a fixed
# rate (or closed loop with RATE=0); CPU per request from /proc/PID/stat
# (utime+stime) over the measured 10 s, and the RSS at the end (and its
# peak, VmHWM: with many connections in a closed loop, what the requests
# in flight held). The two
# settings alternate, PAIRS times.
#   Usage: bench/ring-features-ab.sh 'ring_features = []' 'ring_features = ["recv_poll_first"]' [RATE] [PAIRS]
# A setting may open another table: $'[limits]\nrequest_buffer_bytes = 0'.
# LOAD_ARGS adds ringload arguments to every run, e.g. a POST body:
#   LOAD_ARGS="-m POST --body-file /tmp/16k" bench/ring-features-ab.sh ...
# ORIGIN_BODY sets the origin's response size (default 2 bytes), e.g.
#   ORIGIN_BODY=67108864 CONNS=10 bench/ring-features-ab.sh $'[limits]\nsplice_min_bytes = 0' '' 0 3
# BIN_A / BIN_B name a directory with another ringway binary for that
# side (two builds compared, settings equal or not; ringload still comes
# from BIN_DIR), e.g. BIN_A=target/base/release BIN_B=target/release
#   CONNS=9900 POOL=9900 bench/ring-features-ab.sh '' '' 0 3   (closed loop; ulimit -n 20000)
# POOL sets the cluster's max_idle_per_endpoint (default 64: at 9,900
# connections most requests would then open a new upstream connection, as
# bench/ring-ops-trace.sh with CONNS=9900 shows; the compare sets it to the
# connection count).
# Needs: target/release/{ringway,ringload}. Loopback only, bounded.
set -euo pipefail
A=$1; B=$2; RATE=${3:-20000}; PAIRS=${4:-5}; CONNS=${CONNS:-50}; ORIGIN_BODY=${ORIGIN_BODY:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=${BIN_DIR:-$ROOT/target/release}
R_A=${BIN_A:-$R}; R_B=${BIN_B:-$R}
DIR=$(mktemp -d /tmp/ringway-ab.XXXXXX)
O_PORT=${O_PORT:-18700}; P_PORT=${P_PORT:-18701}
cleanup() { kill "${O:-}" "${P:-}" 2>/dev/null || true; }
trap cleanup EXIT
config() {  # config SETTING -> file
    local f="$DIR/cfg.$RANDOM.toml"
    printf '[runtime]\nworkers = 1\n%s\n\n[[listener]]\nname = "public"\naddress = "127.0.0.1:%s"\n\n[[route]]\nname = "all"\npath_prefix = "/"\ncluster = "app"\n\n[[cluster]]\nname = "app"\nendpoints = ["127.0.0.1:%s"]\n%s' \
        "$1" "$P_PORT" "$O_PORT" "${POOL:+max_idle_per_endpoint = $POOL
}" > "$f"
    echo "$f"
}
one() {  # one SETTING BIN_DIR -> prints a result line
    local cfg rflag n u1 s1 u2 s2 rss hwm p99 errs
    cfg=$(config "$1")
    rflag=(); [ "$RATE" != 0 ] && rflag=(-R "$RATE")
    # shellcheck disable=SC2206
    rflag+=(${LOAD_ARGS:-})
    taskset -c 0 "$R/ringload" serve --listen "127.0.0.1:$O_PORT" --body-size "$ORIGIN_BODY" -t 1 > "$DIR/origin.log" 2>&1 & O=$!
    taskset -c 1 "$2/ringway" run -c "$cfg" > "$DIR/proxy.log" 2>&1 & P=$!
    for _ in $(seq 100); do grep -q "ringway: ready" "$DIR/proxy.log" && break; sleep 0.1; done
    taskset -c 0 "$R/ringload" run -c "$CONNS" -t 1 "${rflag[@]}" -d 2s "http://127.0.0.1:$P_PORT/" > /dev/null
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$P/stat")
    taskset -c 0 "$R/ringload" run -c "$CONNS" -t 1 "${rflag[@]}" -d 10s --json "http://127.0.0.1:$P_PORT/" > "$DIR/load.json"
    read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$P/stat")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$P/status")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$P/status")
    n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" "$DIR/load.json")
    p99=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['latency_us']['p99'])" "$DIR/load.json")
    errs=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['errors_total'], ' '.join(f'{k}={v}' for k, v in d['errors'].items() if v))" "$DIR/load.json")
    kill "$P" "$O"; wait "$P" "$O" 2>/dev/null || true
    python3 -c "
n=$n; tick=1e6/$(getconf CLK_TCK)
u=($u2-$u1)*tick/n; s=($s2-$s1)*tick/n
mib=$ORIGIN_BODY/1048576
per=f'  ({(u+s)/mib:7.1f} µs/MiB of response)' if mib >= 1 else ''
print(f'{n/10:9.0f} req/s  p99 $p99 µs  errors $errs  user {u:5.2f}  kernel {s:5.2f}  total {u+s:5.2f} µs/req  RSS $rss KiB (peak $hwm){per}')"
}
for i in $(seq "$PAIRS"); do
    echo "pair $i  A ($A${BIN_A:+, $BIN_A}): $(one "$A" "$R_A")"
    echo "pair $i  B ($B${BIN_B:+, $BIN_B}): $(one "$B" "$R_B")"
done
