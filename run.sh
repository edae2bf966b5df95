#!/usr/bin/env bash
# ringway: one entry point for operators and CI.
#
#   ./run.sh demo    build, start a demo origin and ringway in front of it, send traffic
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
    log "release build (LTO)"
    cargo build --release --workspace --bins
    log "fuzz (short, bounded)"
    run_fuzz "${FUZZ_SECONDS:-20}"
    log "benchmark harness smoke run (ringway vs nginx vs haproxy vs direct, --quick)"
    cargo run --release -p ringway-bench -- compare --quick --out target/bench-smoke
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

case "${1:-}" in
    test) cmd_test ;;
    demo) cmd_demo ;;
    fuzz) need_cargo; run_fuzz "${2:-20}" ;;
    *) echo "usage: $0 demo|test|fuzz [SECONDS]" >&2; exit 2 ;;
esac
