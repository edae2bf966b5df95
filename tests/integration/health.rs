//! Active health checks against real origins: an endpoint whose checks
//! fail leaves the rotation on every worker and comes back when they pass;
//! a dead endpoint is found without sending it traffic; too few healthy
//! endpoints (panic threshold) means all take traffic; health survives a
//! reload; `/clusters` and `/metrics` show it.

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
    checks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FlipOrigin {
    fn start(name: &'static str) -> FlipOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let o = FlipOrigin {
            addr: listener.local_addr().unwrap(),
            healthy: Arc::new(AtomicBool::new(true)),
            checks: Default::default(),
            stop: Default::default(),
        };
        let (healthy, checks, stop) = (o.healthy.clone(), o.checks.clone(), o.stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(s) = conn else { continue };
                let (healthy, checks) = (healthy.clone(), checks.clone());
                std::thread::spawn(move || serve(s, name, &healthy, &checks));
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

fn serve(mut s: TcpStream, name: &str, healthy: &AtomicBool, checks: &AtomicUsize) {
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
