//! Active health checks against real origins: an endpoint whose checks
//! fail leaves the rotation on every worker and comes back when they pass;
//! a dead endpoint is found without sending it traffic; too few healthy
//! endpoints (panic threshold) means all take traffic; health survives a
//! reload; `/clusters` and `/metrics` show it. Passive outlier ejection: an
//! endpoint answering 503 is taken out after a run of failures and tried
//! again when its ejection ends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_tests::client::Client;
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::Proxy;

/// An origin whose `/healthz` answers 200 or 503 at the test's will; any
/// other path answers 200 with `x-origin: <name>`.
struct FlipOrigin {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    /// Requests (other than /healthz) get 503.
    failing: Arc<AtomicBool>,
    /// Every other request (other than /healthz) gets 503.
    half: Arc<AtomicBool>,
    checks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FlipOrigin {
    fn start(name: &'static str) -> FlipOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let o = FlipOrigin {
            addr: listener.local_addr().unwrap(),
            healthy: Arc::new(AtomicBool::new(true)),
            failing: Default::default(),
            half: Default::default(),
            checks: Default::default(),
            stop: Default::default(),
        };
        let (healthy, checks, stop) = (o.healthy.clone(), o.checks.clone(), o.stop.clone());
        let failing = o.failing.clone();
        let half = o.half.clone();
        let served = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(s) = conn else { continue };
                let (healthy, checks, failing) = (healthy.clone(), checks.clone(), failing.clone());
                let (half, served) = (half.clone(), served.clone());
                std::thread::spawn(move || {
                    serve(s, name, &healthy, &checks, (&failing, &half, &served))
                });
            }
        });
        o
    }
}

impl Drop for FlipOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut s: TcpStream,
    name: &str,
    healthy: &AtomicBool,
    checks: &AtomicUsize,
    (failing, half, served): (&AtomicBool, &AtomicBool, &AtomicUsize),
) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let close = head.to_ascii_lowercase().contains("connection: close");
            let reply = if head.starts_with("GET /healthz ") {
                checks.fetch_add(1, Ordering::Relaxed);
                if healthy.load(Ordering::Relaxed) {
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n".to_string()
                } else {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\ndown\n"
                        .to_string()
                }
            } else if failing.load(Ordering::Relaxed)
                || (half.load(Ordering::Relaxed) && served.fetch_add(1, Ordering::Relaxed) % 2 == 0)
            {
                format!("HTTP/1.1 503 Service Unavailable\r\nx-origin: {name}\r\nContent-Length: 0\r\n\r\n")
            } else {
                format!("HTTP/1.1 200 OK\r\nx-origin: {name}\r\nContent-Length: 0\r\n\r\n")
            };
            if s.write_all(reply.as_bytes()).is_err() || close {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn config(eps: &[SocketAddr], extra: &[(&str, &str)]) -> Config {
    let hc = r#"{ path = "/healthz", interval = "100ms", jitter = "0s", timeout = "500ms", healthy_threshold = 2, unhealthy_threshold = 2 }"#;
    let mut keys = vec![("health_check", hc)];
    keys.extend_from_slice(extra);
    Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", eps, &keys)
        .admin()
}

fn clusters(proxy: &Proxy) -> serde_json::Value {
    let r = Client::connect(proxy.admin_addr()).get("/clusters");
    assert_eq!(r.status(), 200, "{r}");
    serde_json::from_slice(&r.body).unwrap()
}

fn health_of(proxy: &Proxy, endpoint: SocketAddr) -> String {
    let v = clusters(proxy);
    v["clusters"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == endpoint.to_string())
        .map(|e| e["health"].as_str().unwrap().to_string())
        .unwrap()
}

/// Wait (at most 5 s) until `endpoint`'s health is `want`.
fn wait_health(proxy: &Proxy, endpoint: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while health_of(proxy, endpoint) != want {
        assert!(
            Instant::now() < deadline,
            "{endpoint} never became {want}: {}",
            clusters(proxy)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Requests per origin over `n` requests on fresh connections (both
/// workers get some).
fn spread(proxy: &Proxy, n: usize) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for i in 0..n {
        let mut c = Client::connect(proxy.addr("public"));
        let r = c.get(&format!("/r/{i}"));
        assert_eq!(r.status(), 200, "request {i}: {r}");
        *counts
            .entry(r.header("x-origin").unwrap_or("-").to_string())
            .or_default() += 1;
    }
    counts
}

#[test]
fn failing_checks_take_an_endpoint_out_and_passing_ones_bring_it_back() {
    let (a, b, c) = (
        FlipOrigin::start("a"),
        FlipOrigin::start("b"),
        FlipOrigin::start("c"),
    );
    let dir = TestDir::new("health-flip");
    let proxy = Proxy::start(&dir, &config(&[a.addr, b.addr, c.addr], &[]));
    let counts = spread(&proxy, 30);
    assert_eq!(counts.len(), 3, "{counts:?}");
    // Checks run once per process, not per worker: about 10 per second
    // per endpoint at a 100 ms interval.
    std::thread::sleep(Duration::from_millis(1000));
    let checks = b.checks.load(Ordering::Relaxed);
    assert!((5..=15).contains(&checks), "{checks} checks of b in 1 s");

    b.healthy.store(false, Ordering::Relaxed);
    wait_health(&proxy, b.addr, "unhealthy");
    let counts = spread(&proxy, 60);
    assert_eq!(counts.get("b"), None, "b is out: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 60);
    let metrics = Client::connect(proxy.admin_addr())
        .get("/metrics")
        .body_str();
    let line = format!(
        "ringway_endpoint_healthy{{cluster=\"app\",endpoint=\"{}\"}} 0",
        b.addr
    );
    assert!(metrics.contains(&line), "{line} not in /metrics");
    let v = clusters(&proxy);
    assert_eq!(v["clusters"][0]["healthy_endpoints"], 2, "{v}");
    assert_eq!(v["clusters"][0]["panic"], false, "{v}");

    // A reload keeps what the checks found.
    proxy.rewrite_config(&config(
        &[a.addr, b.addr, c.addr],
        &[("connect_timeout", &q("2s"))],
    ));
    proxy.sighup();
    assert!(proxy
        .wait_stdout_line("generation 2 on every worker", Duration::from_secs(10))
        .is_some());
    assert_eq!(health_of(&proxy, b.addr), "unhealthy");
    assert_eq!(spread(&proxy, 20).get("b"), None);

    b.healthy.store(true, Ordering::Relaxed);
    wait_health(&proxy, b.addr, "healthy");
    let counts = spread(&proxy, 30);
    assert!(
        counts.get("b").copied().unwrap_or(0) > 0,
        "b is back: {counts:?}"
    );
}

#[test]
fn a_dead_endpoint_is_found_without_sending_it_requests() {
    let (a, c) = (FlipOrigin::start("a"), FlipOrigin::start("c"));
    // Nothing listens on this one.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = TestDir::new("health-dead");
    let proxy = Proxy::start(&dir, &config(&[a.addr, dead, c.addr], &[]));
    wait_health(&proxy, dead, "unhealthy");
    // Every request answers 200: none is sent to the dead endpoint.
    let counts = spread(&proxy, 40);
    assert_eq!(counts.values().sum::<usize>(), 40, "{counts:?}");
    let v = clusters(&proxy);
    let ep = v["clusters"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == dead.to_string())
        .unwrap()
        .clone();
    assert_eq!(ep["checks"]["last_status"], 0, "{ep}");
    assert!(ep["checks"]["failed"].as_u64().unwrap() >= 2, "{ep}");
}

#[test]
fn below_the_panic_threshold_every_endpoint_takes_traffic() {
    let (a, b, c) = (
        FlipOrigin::start("a"),
        FlipOrigin::start("b"),
        FlipOrigin::start("c"),
    );
    let dir = TestDir::new("health-panic");
    let proxy = Proxy::start(
        &dir,
        &config(&[a.addr, b.addr, c.addr], &[("panic_threshold", "50")]),
    );
    a.healthy.store(false, Ordering::Relaxed);
    b.healthy.store(false, Ordering::Relaxed);
    wait_health(&proxy, a.addr, "unhealthy");
    wait_health(&proxy, b.addr, "unhealthy");
    // One of three healthy (33 % < 50 %): health is ignored.
    let v = clusters(&proxy);
    assert_eq!(v["clusters"][0]["panic"], true, "{v}");
    let counts = spread(&proxy, 60);
    assert_eq!(counts.len(), 3, "all take traffic in panic: {counts:?}");
}

/// Statuses over `n` sequential requests on one keep-alive connection.
fn statuses(proxy: &Proxy, n: usize) -> Vec<(u16, String)> {
    let mut c = Client::connect(proxy.addr("public"));
    (0..n)
        .map(|i| {
            let r = c.get(&format!("/o/{i}"));
            (r.status(), r.header("x-origin").unwrap_or("-").to_string())
        })
        .collect()
}

#[test]
fn a_run_of_503s_ejects_the_endpoint_until_its_ejection_ends() {
    let (a, b, c) = (
        FlipOrigin::start("a"),
        FlipOrigin::start("b"),
        FlipOrigin::start("c"),
    );
    b.failing.store(true, Ordering::Relaxed);
    let cluster = |outlier: bool| {
        let mut t = Config::new()
            .runtime("workers", "1")
            .listener("public")
            .route("public", "/", "app", &[])
            .admin();
        let od = r#"{ consecutive_gateway_errors = 3, base_ejection_time = "1s", max_ejection_percent = 50 }"#;
        t = if outlier {
            t.cluster(
                "app",
                &[a.addr, b.addr, c.addr],
                &[("outlier_detection", od)],
            )
        } else {
            t.cluster("app", &[a.addr, b.addr, c.addr], &[])
        };
        t
    };
    // Without outlier detection: a third of the requests fail.
    let dir = TestDir::new("outlier-off");
    let plain = Proxy::start(&dir, &cluster(false));
    let got = statuses(&plain, 60);
    let failed = got.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(failed, 20, "round robin over 3, one failing: {got:?}");
    drop(plain);

    // With it: three 503s in a row from b, then b is out.
    let dir = TestDir::new("outlier-on");
    let proxy = Proxy::start(&dir, &cluster(true));
    let got = statuses(&proxy, 60);
    let failed: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s == 503)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed.len(), 3, "{got:?}");
    assert!(got[failed[2] + 1..]
        .iter()
        .all(|(s, o)| *s == 200 && o != "b"));
    let v = clusters(&proxy);
    let ep = v["clusters"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == b.addr.to_string())
        .unwrap()
        .clone();
    assert_eq!(ep["ejections"], 1, "{ep}");
    assert_eq!(ep["ejected_by_workers"], 1, "{ep}");
    let metrics = Client::connect(proxy.admin_addr())
        .get("/metrics")
        .body_str();
    let line = format!(
        "ringway_outlier_ejections_total{{cluster=\"app\",endpoint=\"{}\"}} 1",
        b.addr
    );
    assert!(metrics.contains(&line), "{line}");

    // The ejection ends after base_ejection_time: b is tried again, fails
    // three more times, and is out again (for 2 × base this time).
    std::thread::sleep(Duration::from_millis(1100));
    let got = statuses(&proxy, 30);
    assert_eq!(got.iter().filter(|(s, _)| *s == 503).count(), 3, "{got:?}");
    let v = clusters(&proxy);
    let ejections: u64 = v["clusters"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ejections"].as_u64().unwrap())
        .sum();
    assert_eq!(ejections, 2, "{v}");
    // Once b recovers and its ejection ends, it takes traffic again.
    b.failing.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(2100));
    let got = statuses(&proxy, 30);
    assert!(got.iter().all(|(s, _)| *s == 200), "{got:?}");
    assert!(got.iter().any(|(_, o)| o == "b"), "{got:?}");
}

#[test]
fn zone_aware_routing_prefers_the_local_zone_and_spills_over() {
    let (a1, a2, b1) = (
        FlipOrigin::start("a1"),
        FlipOrigin::start("a2"),
        FlipOrigin::start("b1"),
    );
    let eps = format!(
        r#"[{{ address = "{}", zone = "a" }}, {{ address = "{}", zone = "a" }}, {{ address = "{}", zone = "b" }}]"#,
        a1.addr, a2.addr, b1.addr
    );
    let dir = TestDir::new("zone-aware");
    let config = config(
        &[a1.addr],
        &[
            ("endpoints", &eps),
            ("prefer_zone", &q("a")),
            ("zone_min_healthy", "50"),
            ("panic_threshold", "0"),
        ],
    );
    let proxy = Proxy::start(&dir, &config);
    let counts = spread(&proxy, 40);
    assert_eq!(counts.get("b1"), None, "zone a first: {counts:?}");
    assert!(
        counts.contains_key("a1") && counts.contains_key("a2"),
        "{counts:?}"
    );
    // One of two in zone a down: 50 % is still enough.
    a1.healthy.store(false, Ordering::Relaxed);
    wait_health(&proxy, a1.addr, "unhealthy");
    let counts = spread(&proxy, 20);
    assert_eq!(counts.get("a2"), Some(&20), "{counts:?}");
    // Both down: zone b takes the traffic.
    a2.healthy.store(false, Ordering::Relaxed);
    wait_health(&proxy, a2.addr, "unhealthy");
    let counts = spread(&proxy, 20);
    assert_eq!(counts.get("b1"), Some(&20), "{counts:?}");
    let v = clusters(&proxy);
    assert_eq!(v["clusters"][0]["endpoints"][2]["zone"], "b", "{v}");
}

#[test]
fn half_failing_endpoint_is_a_success_rate_outlier_and_retries_cover_the_rest() {
    // One of three origins answers 503 to every other request: never
    // three failures in a row, so only the success-rate comparison finds
    // it. With retries on top, the client sees no failure.
    let (a, b, c) = (
        FlipOrigin::start("a"),
        FlipOrigin::start("b"),
        FlipOrigin::start("c"),
    );
    b.half.store(true, Ordering::Relaxed);
    let od = r#"{ consecutive_5xx = 3, consecutive_gateway_errors = 3, interval = "300ms", success_rate_minimum_hosts = 3, success_rate_request_volume = 10, success_rate_stdev_factor = 1.0, base_ejection_time = "30s", max_ejection_percent = 34 }"#;
    let dir = TestDir::new("outlier-success-rate");
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route(
            "public",
            "/",
            "app",
            &[("retries", r#"{ attempts = 2, backoff = "1ms" }"#)],
        )
        .cluster(
            "app",
            &[a.addr, b.addr, c.addr],
            &[
                ("outlier_detection", od),
                ("retry_budget", "{ ratio = 1.0 }"),
            ],
        )
        .admin();
    let proxy = Proxy::start(&dir, &config);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    let mut failed = 0;
    loop {
        let got = statuses(&proxy, 30);
        sent += got.len();
        failed += got.iter().filter(|(s, _)| *s != 200).count();
        let v = clusters(&proxy);
        let ejected = v["clusters"][0]["endpoints"][1]["ejections"]
            .as_u64()
            .unwrap();
        if ejected >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "b never ejected: {v}");
    }
    // Ejected for 30 s: b gets nothing now.
    let got = statuses(&proxy, 60);
    assert!(got.iter().all(|(s, o)| *s == 200 && o != "b"), "{got:?}");
    assert_eq!(failed, 0, "{failed} of {sent} failed before the ejection");
}
