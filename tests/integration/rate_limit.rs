//! `type = "rate_limit"` and `type = "concurrency_limit"` on a real ringway
//! with two workers: accuracy over 10 s at 3× the limit, the 429's fields,
//! independent keys, a flood of distinct keys against a bounded RSS, state
//! kept across a reload, per-plan rates for API keys, and 503 beyond `max`
//! requests in flight.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{run_ringway, Proxy};

/// Two workers, one listener, one route `/` with `filters` → `origin`.
fn config(origin: SocketAddr, filters: &str) -> String {
    format!(
        r#"[runtime]
workers = 2

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
name = "api"
listener = "public"
path_prefix = "/"
cluster = "app"
filters = {filters}

[[cluster]]
name = "app"
endpoints = ["{origin}"]
"#
    )
}

#[test]
fn rate_limit_ten_seconds_at_three_times_the_limit_accepts_the_limit() {
    const RATE: f64 = 500.0;
    const BURST: f64 = 50.0;
    const SECS: f64 = 10.0;
    let dir = TestDir::new("rate-limit-accuracy");
    let origin = Origin::start();
    let filters = r#"[{ type = "rate_limit", rate = "500/s", burst = 50 }]"#;
    let proxy = Proxy::start_toml(&dir, &config(origin.addr(), filters), &[]);
    let addr = proxy.addr("public");

    // Six paced keep-alive clients, 250 requests/s each: 1500/s, 3× the
    // limit, all from 127.0.0.1 (one key), spread over both workers.
    let clients = 6;
    let per_client = 3.0 * RATE / clients as f64;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let (mut ok, mut limited, mut sent) = (0u64, 0u64, 0u64);
                let mut bad = Vec::new();
                let offset = Duration::from_secs_f64(i as f64 / (clients as f64 * per_client));
                loop {
                    let due = offset + Duration::from_secs_f64(sent as f64 / per_client);
                    if due.as_secs_f64() >= SECS {
                        break;
                    }
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    sent += 1;
                    let r = c.get("/x");
                    match r.status() {
                        200 => ok += 1,
                        429 => {
                            limited += 1;
                            if limited == 1 {
                                bad.extend(check_429(&r));
                            }
                        }
                        other => bad.push(format!("status {other}: {r}")),
                    }
                }
                (ok, limited, sent, bad)
            })
        })
        .collect();
    let (mut ok, mut limited, mut sent) = (0, 0, 0);
    for t in threads {
        let (o, l, s, bad) = t.join().unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        ok += o;
        limited += l;
        sent += s;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let expected = RATE * SECS + BURST;
    let ratio = ok as f64 / expected;
    println!(
        "rate_limit accuracy: sent {sent} in {elapsed:.2} s, accepted {ok}, limited {limited}, expected {expected} → {ratio:.4}"
    );
    assert!(
        sent as f64 >= 2.7 * RATE * SECS,
        "the clients could not drive 3× the limit: {sent} in {elapsed:.2} s"
    );
    assert!(
        (0.95..=1.05).contains(&ratio),
        "accepted {ok}, expected {expected} ± 5 %"
    );
    assert_eq!(
        origin.request_count() as u64,
        ok,
        "the origin saw only the accepted requests"
    );
}

/// What is wrong with a 429 (nothing: empty).
fn check_429(r: &ringway_tests::client::Response) -> Vec<String> {
    let mut bad = Vec::new();
    match r.header("retry-after").map(str::parse::<u64>) {
        Some(Ok(1..=2)) => {}
        other => bad.push(format!("Retry-After {other:?}: {r}")),
    }
    if r.header("ratelimit-policy") != Some("\"default\";q=500;w=1") {
        bad.push(format!("RateLimit-Policy: {r}"));
    }
    let want = format!(
        "\"default\";r=0;t={}",
        r.header("retry-after").unwrap_or("?")
    );
    if r.header("ratelimit") != Some(want.as_str()) {
        bad.push(format!("RateLimit: {r}"));
    }
    if r.has_token("connection", "close") {
        bad.push(format!("the 429 closes the connection: {r}"));
    }
    bad
}

#[test]
fn rate_limit_keys_per_header_are_independent_and_survive_a_reload() {
    let dir = TestDir::new("rate-limit-keys");
    let origin = Origin::start();
    let filters = r#"[{ type = "rate_limit", rate = "2/m", key = ["header:x-key", "client_ip/24"], policy = "tenant" }]"#;
    let toml = config(origin.addr(), filters);
    let proxy = Proxy::start_toml(&dir, &toml, &[]);
    let mut c = Client::connect(proxy.addr("public"));
    let get = |c: &mut Client, key: &str| c.request(&Request::get("/k").header("x-key", key));
    for _ in 0..2 {
        assert_eq!(get(&mut c, "a").status(), 200);
    }
    let r = get(&mut c, "a");
    assert_eq!(r.status(), 429, "{r}");
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"tenant\";q=2;w=60"),
        "{r}"
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((29..=30).contains(&retry), "{r}");
    assert_eq!(r.body_str(), "429 Too Many Requests\n");
    // Another key has its own bucket; the connection stayed open.
    assert_eq!(get(&mut c, "b").status(), 200);
    assert_eq!(get(&mut c, "b").status(), 200);
    assert_eq!(get(&mut c, "b").status(), 429);
    assert_eq!(origin.request_count(), 4);

    // A reload that leaves the limiter as it was keeps its state.
    let changed = format!(
        "{toml}\n[[route]]\nname = \"other\"\nlistener = \"public\"\npath = \"/other\"\ncluster = \"app\"\n"
    );
    proxy.rewrite_config_toml(&changed);
    proxy.sighup();
    assert!(
        proxy
            .wait_stdout_line("reloaded: generation 2", Duration::from_secs(10))
            .is_some(),
        "no reload\n{}",
        proxy.output_report()
    );
    let mut c = Client::connect(proxy.addr("public"));
    assert_eq!(
        get(&mut c, "a").status(),
        429,
        "the bucket of `a` was lost on reload"
    );
    assert_eq!(get(&mut c, "c").status(), 200);
    assert_eq!(origin.request_count(), 5);
}

/// `n` pipelined GETs with distinct `x-key` values from `first`.
fn pipelined(first: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 60);
    for k in first..first + n {
        let _ = write!(out, "GET /f HTTP/1.1\r\nHost: a\r\nx-key: k{k}\r\n\r\n");
    }
    out
}

#[test]
fn rate_limit_flood_of_distinct_keys_keeps_memory_bounded() {
    let dir = TestDir::new("rate-limit-flood");
    let toml = r#"[runtime]
workers = 2

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[route]]
name = "flood"
listener = "public"
path_prefix = "/"
direct_response = { status = 204 }
filters = [{ type = "rate_limit", rate = "10/s", burst = 1, key = "header:x-key" }]

[[cluster]]
name = "unused"
endpoints = ["127.0.0.1:9"]
"#;
    let proxy = Proxy::start_toml(&dir, toml, &[]);
    let addr = proxy.addr("public");
    let before = proxy.memory();

    // Four connections, each a writer and a reader, for at most 20 s or
    // 1,000,000 requests in all.
    const TOTAL: u64 = 1_000_000;
    const BATCH: u64 = 2_000;
    let conns = 4u64;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            let (stop, ok, other) = (stop.clone(), ok.clone(), other.clone());
            std::thread::spawn(move || {
                let mut w = TcpStream::connect(addr).unwrap();
                let mut r = w.try_clone().unwrap();
                r.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let share = TOTAL / conns;
                let sent = Arc::new(AtomicU64::new(0));
                let writer = {
                    let (stop, sent) = (stop.clone(), sent.clone());
                    std::thread::spawn(move || {
                        let mut k = i * share;
                        while k < (i + 1) * share && !stop.load(Ordering::Relaxed) {
                            w.write_all(&pipelined(k, BATCH)).unwrap();
                            k += BATCH;
                            sent.fetch_add(BATCH, Ordering::Release);
                        }
                        sent.fetch_add(1 << 40, Ordering::Release); // done
                    })
                };
                // Every response is a bare head ("HTTP/1.1 204 No Content")
                // or a 429 with a short body: count status lines.
                let mut buf = vec![0u8; 256 * 1024];
                let mut carry = Vec::new();
                let mut seen = 0u64;
                loop {
                    let s = sent.load(Ordering::Acquire);
                    if s >= 1 << 40 && seen >= s - (1 << 40) {
                        break;
                    }
                    let n = r.read(&mut buf).expect("read responses");
                    assert!(n > 0, "the proxy closed a flood connection after {seen}");
                    carry.extend_from_slice(&buf[..n]);
                    let mut at = 0;
                    while let Some(p) = memchr(&carry[at..], b"HTTP/1.1 ") {
                        let line = at + p;
                        if carry.len() < line + 12 {
                            break;
                        }
                        match &carry[line + 9..line + 12] {
                            b"204" => ok.fetch_add(1, Ordering::Relaxed),
                            _ => other.fetch_add(1, Ordering::Relaxed),
                        };
                        seen += 1;
                        at = line + 12;
                    }
                    carry.drain(..at);
                }
                writer.join().unwrap();
            })
        })
        .collect();
    while started.elapsed() < Duration::from_secs(20) && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = proxy.memory();
    let (ok, other) = (ok.load(Ordering::Relaxed), other.load(Ordering::Relaxed));
    println!(
        "rate_limit flood: {ok} distinct keys answered 204 ({other} other) in {elapsed:.1} s; RSS {} → {} KiB (peak {} KiB)",
        before.rss_kib, after.rss_kib, after.hwm_kib
    );
    // A distinct key is limited only when it shares its home slots and its
    // 20-bit tag with a key seen in the last 100 ms (table.rs): about
    // 5,000 live keys × 10^6 keys / (8,192 regions × 2^20 tags) ≈ 0.6
    // expected per run of 10^6. More than a handful would be a bug.
    assert!(
        other <= 20,
        "{other} distinct keys were limited (expected about 0.6 per million from tag collisions)"
    );
    assert!(
        ok >= 100_000,
        "the flood was too slow to mean anything: {ok}"
    );
    // The table is 64 Ki slots × 8 bytes, fixed: growth is buffers only.
    assert!(
        after.rss_kib < before.rss_kib + 32 * 1024,
        "RSS grew from {} to {} KiB",
        before.rss_kib,
        after.rss_kib
    );
}

fn memchr(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn rate_limit_concurrency_limit_answers_503_beyond_max_then_recovers() {
    let dir = TestDir::new("concurrency-limit");
    let origin = Origin::start();
    let filters = r#"[{ type = "concurrency_limit", max = 4, retry_after = 2 }]"#;
    let proxy = Proxy::start_toml(&dir, &config(origin.addr(), filters), &[]);
    let addr = proxy.addr("public");

    let hold = |ms: u64| {
        std::thread::spawn(move || Client::connect(addr).get(&format!("/delay/{ms}")).status())
    };
    let slow: Vec<_> = (0..4).map(|_| hold(1500)).collect();
    assert!(
        origin.wait_until(Duration::from_secs(5), |o| o.request_count() >= 4),
        "the slow requests did not reach the origin"
    );
    let mut c = Client::connect(addr);
    for _ in 0..3 {
        let r = c.get("/fast");
        assert_eq!(r.status(), 503, "{r}");
        assert_eq!(r.header("retry-after"), Some("2"), "{r}");
        assert!(!r.has_token("connection", "close"), "{r}");
    }
    assert_eq!(
        origin.request_count(),
        4,
        "a refused request reached the origin"
    );
    for t in slow {
        assert_eq!(t.join().unwrap(), 200);
    }
    // Back to normal: four at once again, on the kept-alive connection too.
    let again: Vec<_> = (0..4).map(|_| hold(200)).collect();
    for t in again {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(c.get("/fast").status(), 200);
    // A client that vanishes mid-request gives its slot back.
    for _ in 0..4 {
        let mut gone = TcpStream::connect(addr).unwrap();
        gone.write_all(b"GET /delay/300 HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        drop(gone);
    }
    std::thread::sleep(Duration::from_millis(800));
    let all: Vec<_> = (0..4).map(|_| hold(100)).collect();
    for t in all {
        assert_eq!(t.join().unwrap(), 200, "slots leaked");
    }
}

#[test]
fn rate_limit_plans_give_each_api_key_its_plans_rate() {
    let dir = TestDir::new("rate-limit-plans");
    let origin = Origin::start();
    let hash = |key: &str| {
        let out = run_ringway(&["apikey", "hash", key], None, Duration::from_secs(10));
        assert_eq!(out.code(), Some(0), "{out}");
        out.stdout.trim().to_string()
    };
    let (gold, free, none) = (
        hash("gold-secret"),
        hash("free-secret"),
        hash("none-secret"),
    );
    let filters = format!(
        r#"[{{ type = "api_key", keys = [{{ id = "team-a", sha256 = "{gold}", plan = "gold" }}, {{ id = "team-b", sha256 = "{free}", plan = "free" }}, {{ id = "team-c", sha256 = "{none}" }}] }}, {{ type = "rate_limit", key = "var:api_key_id", plans = {{ gold = {{ rate = "1000/s", burst = 100 }}, free = {{ rate = "1/s", burst = 3 }} }}, rate = "1/m", burst = 2 }}]"#
    );
    let proxy = Proxy::start_toml(&dir, &config(origin.addr(), &filters), &[]);
    let mut c = Client::connect(proxy.addr("public"));
    let get = |c: &mut Client, key: &str| c.request(&Request::get("/p").header("x-api-key", key));
    let start = Instant::now();
    // The free key: its burst of 3, then 429 naming its plan.
    let statuses: Vec<u16> = (0..5)
        .map(|_| get(&mut c, "free-secret").status())
        .collect();
    // The gold key on the same route, meanwhile: 30 at once, all allowed.
    let gold_statuses: Vec<u16> = (0..30)
        .map(|_| get(&mut c, "gold-secret").status())
        .collect();
    let r = get(&mut c, "free-secret");
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(900),
        "too slow to judge a 1/s plan: {elapsed:?}"
    );
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert!(gold_statuses.iter().all(|&s| s == 200), "{gold_statuses:?}");
    assert_eq!(r.status(), 429, "{r}");
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"free\";q=1;w=1"),
        "{r}"
    );
    assert_eq!(r.header("ratelimit"), Some("\"free\";r=0;t=1"), "{r}");
    assert_eq!(r.header("retry-after"), Some("1"), "{r}");
    // A key without a plan gets the default: `rate`, `burst`, "default".
    assert_eq!(get(&mut c, "none-secret").status(), 200);
    assert_eq!(get(&mut c, "none-secret").status(), 200);
    let r = get(&mut c, "none-secret");
    assert_eq!(r.status(), 429, "{r}");
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"default\";q=1;w=60"),
        "{r}"
    );
    assert_eq!(origin.request_count(), 3 + 30 + 2);
}
