#!/usr/bin/env bash
# Side-by-side closed-loop comparison of ringload and wrk on the same origin,
# with the same connections and duration, and of `ringload serve` against
# nginx as the origin.
#
# Layout on a 2-core machine: the origin (ringload serve, then nginx) is
# pinned to ORIGIN_CORE with taskset, each client (wrk -t1, ringload -t1) to
# CLIENT_CORE. Runs are interleaved (wrk, ringload, then ringload, wrk, ...)
# so drift hits both tools alike. Prints a markdown table.
#
# Usage: loadgen/compare-wrk.sh [--quick]
#   env: DURATION (s, default 10), CONNECTIONS (default 64), REPS (default 3),
#        BODY_SIZE (bytes, default 13), CLIENT_CORE (0), ORIGIN_CORE (1),
#        RINGLOAD (path to a built binary; default: cargo build --release)
#   --quick: DURATION=2 REPS=1 (proves the script works; not for numbers)
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
REPS=${REPS:-3}
BODY_SIZE=${BODY_SIZE:-13}
CLIENT_CORE=${CLIENT_CORE:-0}
ORIGIN_CORE=${ORIGIN_CORE:-1}
if [[ "${1:-}" == "--quick" ]]; then
    DURATION=2
    REPS=1
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

need_pkg() { # command package
    if ! command -v "$1" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$1" ]]; then
        echo "installing $2 ..." >&2
        apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
    fi
}
need_pkg wrk wrk
need_pkg nginx nginx
need_pkg taskset util-linux
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ -z "${RINGLOAD:-}" ]]; then
    (cd "$root" && cargo build --release -p ringway-loadgen >&2)
    RINGLOAD="$root/target/release/ringload"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]:+${pids[@]}}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

body=$(head -c "$BODY_SIZE" < <(yes abcdefghijklmnopqrstuvwxyz | tr -d '\n'))

# The start_* functions run in this shell (not in $(...)) so that the PIDs
# they record are the ones cleanup() kills; they set $addr.
start_serve() {
    taskset -c "$ORIGIN_CORE" "$RINGLOAD" serve --listen 127.0.0.1:0 -t 1 --cores "$ORIGIN_CORE" \
        --body-size "$BODY_SIZE" >"$work/serve.out" 2>"$work/serve.err" &
    pids+=($!)
    for _ in $(seq 100); do
        addr=$(sed -n 's/^ringload serve: listening on //p' "$work/serve.out")
        [[ -n "$addr" ]] && return
        sleep 0.05
    done
    echo "ringload serve did not start: $(cat "$work/serve.err")" >&2
    exit 1
}

free_port() {
    # Ask ringload serve for a free port, then release it.
    taskset -c "$ORIGIN_CORE" "$RINGLOAD" serve --listen 127.0.0.1:0 -t 1 >"$work/port.out" 2>/dev/null &
    local p=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^ringload serve: listening on //p' "$work/port.out")
        [[ -n "$addr" ]] && break
        sleep 0.05
    done
    kill "$p"; wait "$p" 2>/dev/null || true
    echo "${addr##*:}"
}

start_nginx() {
    local port
    port=$(free_port)
    mkdir -p "$work/nginx"
    cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$port;
        location / {
            default_type text/plain;
            return 200 "$body";
        }
    }
}
EOF
    taskset -c "$ORIGIN_CORE" "$NGINX" -p "$work/nginx" -e "$work/nginx/error.log" \
        -c "$work/nginx/nginx.conf" &
    pids+=($!)
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 ||
            "$RINGLOAD" run "http://127.0.0.1:$port/" -n 1 -c 1 -t 1 --json >/dev/null 2>&1; then
            addr="127.0.0.1:$port"
            return
        fi
        sleep 0.05
    done
    echo "nginx did not start: $(cat "$work/nginx/error.log")" >&2
    exit 1
}

stop_last() {
    local p=${pids[-1]}
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset 'pids[-1]'
}

# wrk prints latencies as 812.00us, 1.25ms, 2.00s: to microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000;
        else if (u == "m") m = 60000000; else m = 1;
        printf "%.0f", n * m }'
}

run_wrk() { # url -> "rps p50_us p99_us"
    local out
    out=$(taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$1")
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$rps $(to_us "$p50") $(to_us "$p99")"
}

run_ringload() { # url -> "rps p50_us p99_us"
    local out
    out=$(taskset -c "$CLIENT_CORE" "$RINGLOAD" run "$1" -t 1 --cores "$CLIENT_CORE" \
        -c "$CONNECTIONS" -d "${DURATION}s" --json)
    local rps p50 p99
    rps=$(sed -n 's/^  "rps": \([0-9.]*\),*$/\1/p' <<<"$out")
    p50=$(sed -n 's/^ *"p50": \([0-9]*\),*$/\1/p' <<<"$out")
    p99=$(sed -n 's/^ *"p99": \([0-9]*\),*$/\1/p' <<<"$out")
    echo "$rps $p50 $p99"
}

median() { tr ' ' '\n' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

declare -A rps p50 p99
for origin in serve nginx; do
    if [[ $origin == serve ]]; then start_serve; else start_nginx; fi
    url="http://$addr/"
    echo "origin $origin at $url: warming up" >&2
    taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNECTIONS" -d1s "$url" >/dev/null
    for rep in $(seq "$REPS"); do
        if (( rep % 2 )); then order="wrk ringload"; else order="ringload wrk"; fi
        for tool in $order; do
            read -r r a b < <(if [[ $tool == wrk ]]; then run_wrk "$url"; else run_ringload "$url"; fi)
            echo "  $origin / $tool run $rep: $r req/s, p50 ${a}us, p99 ${b}us" >&2
            rps[$origin,$tool]="${rps[$origin,$tool]:-} $r"
            p50[$origin,$tool]="${p50[$origin,$tool]:-} $a"
            p99[$origin,$tool]="${p99[$origin,$tool]:-} $b"
        done
    done
    stop_last
done

echo
echo "Closed loop, $CONNECTIONS connections, ${DURATION}s per run, $REPS run(s) each, interleaved;"
echo "client on core $CLIENT_CORE (one thread), origin on core $ORIGIN_CORE (one worker), ${BODY_SIZE}-byte body."
echo "$(uname -sr), $(nproc) cores, $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
echo
echo "| origin | client | req/s per run | median req/s | median p50 | median p99 |"
echo "| --- | --- | --- | --- | --- | --- |"
for origin in serve nginx; do
    for tool in wrk ringload; do
        k="$origin,$tool"
        name=$([[ $origin == serve ]] && echo "ringload serve" || echo "nginx")
        printf '| %s | %s | %s | %s | %sus | %sus |\n' "$name" "$tool" \
            "$(echo ${rps[$k]} | sed 's/ /, /g')" "$(echo ${rps[$k]} | median)" \
            "$(echo ${p50[$k]} | median)" "$(echo ${p99[$k]} | median)"
    done
done
echo
for origin in serve nginx; do
    w=$(echo ${rps[$origin,wrk]} | median)
    r=$(echo ${rps[$origin,ringload]} | median)
    awk -v o="$origin" -v w="$w" -v r="$r" 'BEGIN {
        d = (r - w) / w * 100
        printf "- origin %s: ringload %.0f req/s vs wrk %.0f req/s (%+.1f%%, %s)\n", o, r, w, d,
            (d >= -10 && d <= 10) ? "within 10%" : "NOT within 10%" }'
done
for tool in wrk ringload; do
    s=$(echo ${rps[serve,$tool]} | median)
    n=$(echo ${rps[nginx,$tool]} | median)
    awk -v t="$tool" -v s="$s" -v n="$n" 'BEGIN {
        printf "- measured by %s: ringload serve %.0f req/s vs nginx %.0f req/s (%+.1f%%)\n", t, s, n, (s - n) / n * 100 }'
done
