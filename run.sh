#!/usr/bin/env bash
# ringway: one entry point for operators and CI.
#
#   ./run.sh demo    build, start a demo origin and ringway in front of it, send traffic
#   ./run.sh mesh-demo   two services, each behind a ringway sidecar with mTLS,
#                    calling each other by name; checks every step (README "Mesh demo")
#   ./run.sh test    everything CI runs: fmt, clippy, unit + integration tests,
#                    release build, short fuzz runs, benchmark smoke run
#   ./run.sh fuzz [SECONDS]   only the fuzz targets (default 20 s each)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

need_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "cargo not found. Install Rust (>= 1.85) first, e.g.:" >&2
            echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y" >&2
            exit 1
        fi
    fi
}

apt_install() {
    # apt_install PKG...: install Debian packages when missing (root only).
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "cannot install ${missing[*]} (not root or no apt-get)" >&2
        return 1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

run_fuzz() {
    local secs=${1:-20}
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        log "installing cargo-fuzz (cargo install, from crates.io)"
        if ! cargo install --locked cargo-fuzz >/dev/null 2>&1; then
            echo "SKIP fuzz: cargo-fuzz could not be installed (no crates.io access?)"
            return 0
        fi
    fi
    local targets
    targets=$(cd fuzz && cargo fuzz list 2>/dev/null || true)
    if [ -z "$targets" ]; then
        echo "SKIP fuzz: no fuzz targets found"
        return 0
    fi
    for t in $targets; do
        log "fuzz $t for ${secs}s"
        mkdir -p "fuzz/corpus/$t"
        (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
            -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 3)
    done
}

cmd_test() {
    need_cargo
    export CARGO_TERM_COLOR=never
    log "cargo fmt --check"
    cargo fmt --all --check
    log "cargo clippy --all-targets -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
    log "build binaries (the integration tests start them)"
    cargo build --workspace --bins
    # A second, independent Prometheus parser for the metrics tests (they
    # print a skip reason when it is missing).
    python3 -c "import prometheus_client" 2>/dev/null \
        || python3 -m pip install -q prometheus_client >/dev/null 2>&1 \
        || echo "note: prometheus_client (PyPI) not installable; its check is skipped"
    # dnsmasq for the DNS discovery tests (they print a skip reason when it
    # is missing).
    command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || apt_install dnsmasq-base \
        || echo "note: dnsmasq (Debian dnsmasq-base) not installable; the DNS discovery tests are skipped"
    # iproute2 and nftables for the network-namespace fault tests (as root;
    # they print a skip reason without `ip`, and skip only the
    # dropped-packets case when neither nft nor iptables works).
    command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || apt_install iproute2 \
        || echo "note: iproute2 not installable; the netns fault tests are skipped"
    command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || apt_install nftables \
        || echo "note: nftables (Debian) not installable; the netns dropped-packets case needs nft or iptables"
    # etcd (3.4, HTTP/JSON gateway) for the etcd discovery and
    # registration tests (they print a skip reason when it is missing).
    command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || apt_install etcd-server \
        || echo "note: etcd (Debian etcd-server) not installable; the etcd tests are skipped"
    # curl (with HTTP/2) and h2load for the HTTP/2 tests (they print a
    # skip reason when either is missing).
    command -v curl >/dev/null 2>&1 || apt_install curl \
        || echo "note: curl (Debian) not installable; the HTTP/2 curl tests are skipped"
    command -v h2load >/dev/null 2>&1 || apt_install nghttp2-client \
        || echo "note: h2load (Debian nghttp2-client) not installable; the HTTP/2 load test is skipped"
    # Headless Chromium for the dashboard test (it prints a skip reason
    # when the browser is missing).
    command -v chromium >/dev/null 2>&1 || apt_install chromium \
        || echo "note: chromium (Debian) not installable; the dashboard browser test is skipped"
    log "unit + integration tests"
    cargo test --workspace
    # The io_uring features of runtime.ring_features: the first pass runs
    # the defaults (buffer_ring on, recv_poll_first off); the integration
    # suite runs again with each of them flipped (recv_poll_first on,
    # buffer_ring off), so each runs the whole suite on and off, and with
    # splice(2) of large bodies (limits.splice_min_bytes, on by default)
    # forced off.
    log "integration tests again with the ring features flipped and splicing off (RINGWAY_RING_FEATURES=recv_poll_first RINGWAY_SPLICE_MIN_BYTES=0)"
    RINGWAY_RING_FEATURES=recv_poll_first RINGWAY_SPLICE_MIN_BYTES=0 cargo test -p ringway-tests
    log "release build (LTO)"
    cargo build --release --workspace --bins
    log "fuzz (short, bounded)"
    run_fuzz "${FUZZ_SECONDS:-20}"
    log "benchmark harness smoke run (ringway vs nginx vs haproxy vs direct vs relay, --quick)"
    cargo run --release -p ringway-bench -- compare --quick \
        --contenders ringway,nginx,haproxy,direct,relay --out target/bench-smoke
    log "all checks passed"
}

cmd_demo() {
    need_cargo
    log "building release binaries"
    cargo build --release -p ringway -p ringway-loadgen
    local bin="$ROOT/target/release"
    DEMO_DIR=$(mktemp -d)
    local dir=$DEMO_DIR
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "${DEMO_DIR:-}"' EXIT
    log "demo origin: ringload serve on 127.0.0.1:9000"
    "$bin/ringload" serve --listen 127.0.0.1:9000 --body-size 64 >"$dir/origin.log" 2>&1 &
    for _ in $(seq 1 50); do
        grep -q "listening on" "$dir/origin.log" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -q "listening on" "$dir/origin.log" 2>/dev/null; then
        cat "$dir/origin.log" >&2
        echo "the demo origin did not start (is 127.0.0.1:9000 already in use?)" >&2
        exit 1
    fi
    log "ringway with examples/minimal.toml (listener 127.0.0.1:8080 → cluster app 127.0.0.1:9000)"
    "$bin/ringway" run -c examples/minimal.toml >"$dir/ringway.out" 2>"$dir/ringway.err" &
    for _ in $(seq 1 50); do
        grep -q "ringway: ready" "$dir/ringway.out" 2>/dev/null && break
        sleep 0.1
    done
    cat "$dir/ringway.out"
    if ! grep -q "ringway: ready" "$dir/ringway.out"; then
        cat "$dir/ringway.err" >&2
        echo "ringway did not start (is 127.0.0.1:8080 or :9901 already in use?)" >&2
        exit 1
    fi
    log "5 s of load through the proxy: ringload run -c 50 -d 5s http://127.0.0.1:8080/"
    "$bin/ringload" run -c 50 -d 5s http://127.0.0.1:8080/
    if [ -t 0 ] && [ -z "${CI:-}" ]; then
        log "ringway is serving on http://127.0.0.1:8080/ (try: curl -v http://127.0.0.1:8080/). Ctrl-C stops."
        wait
    fi
}

# The two-service mesh demo: orders and payments (examples/mesh/app.py),
# each behind its own ringway sidecar (examples/mesh/orders.toml,
# payments.toml: inbound mTLS + authz, outbound by service name with the
# server's SPIFFE ID checked). Every step checks what it shows; any
# unexpected result makes the command exit 1.
cmd_mesh_demo() {
    need_cargo
    command -v python3 >/dev/null 2>&1 || apt_install python3 \
        || { echo "python3 is needed for the demo services" >&2; exit 1; }
    command -v curl >/dev/null 2>&1 || apt_install curl \
        || { echo "curl is needed for the demo" >&2; exit 1; }
    log "building release binaries"
    cargo build --release -p ringway -p ringway-loadgen
    export PATH="$ROOT/target/release:$PATH"
    MESH_DIR=$(mktemp -d)
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "${MESH_DIR:-}"' EXIT
    cp examples/mesh/orders.toml examples/mesh/payments.toml examples/mesh/app.py "$MESH_DIR/"
    cd "$MESH_DIR"
    local failed=0
    show() { printf '$ %s\n' "$*"; }
    check() { # check DESCRIPTION COMMAND...: runs the test, prints OK or FAIL
        local what=$1
        shift
        if "$@"; then
            printf '  OK    %s\n' "$what"
        else
            printf '  FAIL  %s\n' "$what"
            failed=$((failed + 1))
        fi
    }
    wait_for() { # wait_for FILE TEXT WHAT PID: until FILE has TEXT, or exit 1
        for _ in $(seq 1 100); do
            grep -q "$2" "$1" 2>/dev/null && return 0
            kill -0 "$4" 2>/dev/null || break
            sleep 0.1
        done
        cat "$1" "${1%.out}.err" >&2 2>/dev/null || true
        echo "$3 did not start" >&2
        exit 1
    }
    # http_get OUT URL [CURL ARGS...]: the status code in $code, the body in
    # OUT, curl's exit code in $rc and its error message in $err.
    http_get() {
        local out=$1 url=$2
        shift 2
        rc=0
        code=$(curl -sS --max-time 5 -o "$out" -w '%{http_code}' "$@" "$url" 2>curl.err) || rc=$?
        err=$(cat curl.err)
    }
    refused() { [ "$rc" != 0 ] && [ "$code" = 000 ]; }
    seen_requests() { python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])' <"$1"; }

    local port busy=()
    for port in 24080 24443 24001 24900 25080 25443 25001 25900; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && busy+=("$port")
    done
    if [ ${#busy[@]} -ne 0 ]; then
        echo "ports in use on 127.0.0.1: ${busy[*]}; the demo needs 24080 24443 24001 24900" >&2
        echo "(orders) and 25080 25443 25001 25900 (payments), see examples/mesh/*.toml" >&2
        exit 1
    fi

    log "certificates: one mesh CA (trust domain mesh.local), one workload certificate per service"
    local step
    for step in \
        "ringway cert ca init --trust-domain mesh.local --out certs" \
        "ringway cert issue --ca-dir certs --spiffe-id spiffe://mesh.local/orders --dns orders.mesh.local --out-cert certs/orders.pem --out-key certs/orders-key.pem" \
        "ringway cert issue --ca-dir certs --spiffe-id spiffe://mesh.local/payments --dns payments.mesh.local --out-cert certs/payments.pem --out-key certs/payments-key.pem" \
        "ringway cert issue --ca-dir certs --spiffe-id spiffe://mesh.local/intruder --client --out-cert certs/intruder.pem --out-key certs/intruder-key.pem" \
        "ringway cert ca init --trust-domain mesh.local --out other-ca" \
        "ringway cert issue --ca-dir other-ca --spiffe-id spiffe://mesh.local/orders --client --out-cert other-ca/orders.pem --out-key other-ca/orders-key.pem"; do
        show "$step"
        $step
    done

    log "services and sidecars"
    for svc in orders payments; do
        local app_port=24080 out_port=24001
        [ "$svc" = payments ] && app_port=25080 && out_port=25001
        show "python3 app.py $svc 127.0.0.1:$app_port 127.0.0.1:$out_port &"
        python3 app.py "$svc" "127.0.0.1:$app_port" "127.0.0.1:$out_port" >"$svc-app.out" 2>"$svc-app.err" &
        wait_for "$svc-app.out" "listening on" "the $svc app" $!
        cat "$svc-app.out"
        show "ringway run -c $svc.toml &"
        ringway run -c "$svc.toml" >"$svc.out" 2>"$svc.err" &
        wait_for "$svc.out" "ringway: ready" "the $svc sidecar" $!
        grep "listener" "$svc.out"
    done

    log "1. orders calls payments by name, through both sidecars (mTLS, identities checked)"
    show "curl http://127.0.0.1:24080/call/payments/charge?order=42"
    http_get body "http://127.0.0.1:24080/call/payments/charge?order=42"
    cat body
    check "200 from payments, through the mesh" [ "$code" = 200 ]
    check "payments saw the caller spiffe://mesh.local/orders in X-Forwarded-Client-Cert" \
        grep -q '"caller": "spiffe://mesh.local/orders"' body

    log "2. payments calls orders by name"
    show "curl http://127.0.0.1:25080/call/orders/42"
    http_get body "http://127.0.0.1:25080/call/orders/42"
    cat body
    check "200 from orders" [ "$code" = 200 ]
    check "orders saw the caller spiffe://mesh.local/payments" \
        grep -q '"caller": "spiffe://mesh.local/payments"' body

    local tls_args=(--cacert certs/ca.pem --resolve payments.mesh.local:25443:127.0.0.1)
    local url=https://payments.mesh.local:25443/payments/charge?order=666
    curl -sS http://127.0.0.1:25080/seen >seen.before
    log "3. no client certificate, straight at the payments sidecar"
    show "curl ${tls_args[*]} $url"
    http_get body "$url" "${tls_args[@]}"
    echo "curl: exit code $rc, HTTP status $code: $err"
    check "refused in the TLS handshake (no HTTP answer)" refused

    log "4. a certificate of the mesh CA, but the identity spiffe://mesh.local/intruder"
    show "curl ${tls_args[*]} --cert certs/intruder.pem --key certs/intruder-key.pem $url"
    http_get body "$url" "${tls_args[@]}" --cert certs/intruder.pem --key certs/intruder-key.pem
    echo "HTTP status $code: $(cat body)"
    check "403 from the authz filter" [ "$code" = 403 ]

    log "5. a certificate claiming spiffe://mesh.local/orders, from another CA"
    show "curl ${tls_args[*]} --cert other-ca/orders.pem --key other-ca/orders-key.pem $url"
    http_get body "$url" "${tls_args[@]}" --cert other-ca/orders.pem --key other-ca/orders-key.pem
    echo "curl: exit code $rc, HTTP status $code: $err"
    check "refused in the TLS handshake" refused

    show "curl http://127.0.0.1:25080/seen    # what the payments app itself saw"
    curl -sS http://127.0.0.1:25080/seen | tee seen.after
    check "the payments app saw none of the refused requests" \
        [ "$(seen_requests seen.before)" = "$(seen_requests seen.after)" ]
    check "no identity but orders ever reached the payments app" \
        python3 -c 'import json,sys; sys.exit(set(json.load(open("seen.after"))["callers"]) != {"spiffe://mesh.local/orders"})'

    log "6. 3 s of load: ringload -> orders' outbound sidecar -> mTLS -> payments' sidecar -> payments app"
    show "ringload run -t 1 -c 4 -d 3s --json -H 'Host: payments' http://127.0.0.1:24001/payments/charge >load.json"
    ringload run -t 1 -c 4 -d 3s --json -H 'Host: payments' http://127.0.0.1:24001/payments/charge >load.json || true
    python3 - load.json <<'PY' || failed=$((failed + 1))
import json, sys
r = json.load(open(sys.argv[1]))
codes = r.get("status_counts", {})
print(f'requests {r["requests"]}, {r["requests"] / r["duration_s"]:.0f}/s, '
      f'status {codes}, errors {r["errors_total"]}, latency p50 {r["latency_us"]["p50"] / 1000:.2f} ms, '
      f'p99 {r["latency_us"]["p99"] / 1000:.2f} ms')
ok = r["requests"] > 0 and r["errors_total"] == 0 and codes.get("200") == r["requests"]
print("  OK    every request answered 200, no errors" if ok else "  FAIL  not every request answered 200")
sys.exit(0 if ok else 1)
PY

    log "7. what the sidecars counted (/metrics excerpts)"
    local want='^ringway_(responses_by_code_total\{|downstream_tls_handshake_failures_total\{listener="inbound")'
    show "curl -s http://127.0.0.1:25900/metrics | grep -E '$want'    # payments sidecar"
    curl -sS http://127.0.0.1:25900/metrics >payments.metrics
    grep -E "$want" payments.metrics
    want='^ringway_(responses_by_code_total\{|upstream_connections_total\{cluster="payments")'
    show "curl -s http://127.0.0.1:24900/metrics | grep -E '$want'    # orders sidecar"
    curl -sS http://127.0.0.1:24900/metrics >orders.metrics
    grep -E "$want" orders.metrics
    check "payments sidecar: 2 failed handshakes on inbound" \
        grep -q '^ringway_downstream_tls_handshake_failures_total{listener="inbound"} 2$' payments.metrics
    check "payments sidecar: exactly one 403 (the intruder)" \
        grep -q '^ringway_responses_by_code_total{route="payments-api",code="403"} 1$' payments.metrics

    if [ "$failed" -ne 0 ]; then
        log "mesh demo: $failed check(s) FAILED"
        for f in orders.err payments.err; do
            echo "--- $f"
            tail -n 20 "$f"
        done
        exit 1
    fi
    log "mesh demo: every check passed"
    if [ -t 0 ] && [ -z "${CI:-}" ]; then
        log "the mesh is serving (try: curl http://127.0.0.1:24080/call/payments/charge). Ctrl-C stops."
        wait
    fi
}

case "${1:-}" in
    test) cmd_test ;;
    demo) cmd_demo ;;
    mesh-demo) cmd_mesh_demo ;;
    fuzz) need_cargo; run_fuzz "${2:-20}" ;;
    *) echo "usage: $0 demo|mesh-demo|test|fuzz [SECONDS]" >&2; exit 2 ;;
esac
