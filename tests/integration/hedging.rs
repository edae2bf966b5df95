//! Hedging against real origins: a slow origin (answers after 600 ms) beside
//! a fast one. With `hedge` on the route, a GET that went to the slow one is
//! sent again to the fast one after the delay and answered from there; a
//! POST is never hedged; without `hedge` (or without budget) the slow
//! answers are waited for.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

const SLOW: Duration = Duration::from_millis(600);

/// Answers every request with 200 `slow` after [`SLOW`], counting requests
/// (by method) and connections closed before the answer was sent.
struct SlowOrigin {
    addr: SocketAddr,
    gets: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl SlowOrigin {
    fn start() -> SlowOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let o = SlowOrigin {
            addr: listener.local_addr().unwrap(),
            gets: Default::default(),
            posts: Default::default(),
            stop: Default::default(),
        };
        let (gets, posts, stop) = (o.gets.clone(), o.posts.clone(), o.stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut s) = conn else { continue };
                let (gets, posts) = (gets.clone(), posts.clone());
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let body: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if buf.len() < end + 4 + body {
                                break;
                            }
                            buf.drain(..end + 4 + body);
                            if head.starts_with("post") {
                                posts.fetch_add(1, Ordering::Relaxed);
                            } else {
                                gets.fetch_add(1, Ordering::Relaxed);
                            }
                            std::thread::sleep(SLOW);
                            let r = b"HTTP/1.1 200 OK\r\nx-origin: slow\r\nContent-Length: 5\r\n\r\nslow\n";
                            if s.write_all(r).is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        o
    }
}

impl Drop for SlowOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn proxy(label: &str, eps: &[SocketAddr], hedge: bool, budget: &str) -> (Proxy, TestDir) {
    let dir = TestDir::new(label);
    let mut route: Vec<(&str, &str)> = Vec::new();
    if hedge {
        route.push(("hedge", r#"{ delay = "50ms" }"#));
    }
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "app", &route)
        .cluster("app", eps, &[("retry_budget", budget)])
        .admin();
    (Proxy::start(&dir, &config), dir)
}

/// `n` requests on one connection: (status, answering origin, time taken).
fn timed(proxy: &Proxy, n: usize, post: bool) -> Vec<(u16, String, Duration)> {
    let mut c = Client::connect(proxy.addr("public"));
    (0..n)
        .map(|i| {
            let t = Instant::now();
            let r = if post {
                c.request(&Request::new("POST", &format!("/p/{i}")).body(b"hello".to_vec()))
            } else {
                c.get(&format!("/g/{i}"))
            };
            let origin = r.header("x-origin").unwrap_or("").to_string();
            (r.status(), origin, t.elapsed())
        })
        .collect()
}

fn cluster_stats(proxy: &Proxy, requests: u64) -> serde_json::Value {
    // The log stage counts a request just after its response is written.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = Client::connect(proxy.admin_addr()).get("/stats");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let c = v["total"]["clusters"][0].clone();
        if c["requests"].as_u64() >= Some(requests) || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_slow_get_is_answered_by_the_hedge() {
    let slow = SlowOrigin::start();
    let fast = Origin::start_named("fast");
    let eps = [slow.addr, fast.addr()];

    // Without hedging: the requests that go to the slow origin wait for it.
    let (p, _d) = proxy("hedge-off", &eps, false, "{ ratio = 1.0 }");
    let got = timed(&p, 6, false);
    assert!(got.iter().all(|(s, _, _)| *s == 200), "{got:?}");
    let waited = got.iter().filter(|(_, _, t)| *t >= SLOW).count();
    assert_eq!(waited, 3, "round robin: half wait without hedging: {got:?}");
    drop(p);

    // With it: every request is answered by the fast origin, well before
    // the slow one would have answered.
    let (p, _d) = proxy("hedge-on", &eps, true, "{ ratio = 1.0 }");
    let gets_before = slow.gets.load(Ordering::Relaxed);
    let got = timed(&p, 10, false);
    for (status, origin, took) in &got {
        assert_eq!(*status, 200, "{got:?}");
        assert_eq!(origin, "fast", "{got:?}");
        assert!(*took < SLOW - Duration::from_millis(200), "{got:?}");
    }
    // The first attempts did reach the slow origin (and were abandoned).
    assert!(slow.gets.load(Ordering::Relaxed) > gets_before);
    let c = cluster_stats(&p, 10);
    let sent = c["hedges"]["sent"].as_u64().unwrap();
    let won = c["hedges"]["won"].as_u64().unwrap();
    assert!(sent >= 5 && won == sent, "{c}");
    assert_eq!(c["responses"]["2xx"], 10, "{c}");
    // And the metrics say the same.
    let m = Client::connect(p.admin_addr()).get("/metrics");
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        text.contains(&format!(
            "ringway_upstream_hedge_wins_total{{cluster=\"app\"}} {won}"
        )),
        "{text}"
    );
}

#[test]
fn a_post_is_never_hedged() {
    let slow = SlowOrigin::start();
    let fast = Origin::start_named("fast");
    let (p, _d) = proxy(
        "hedge-post",
        &[slow.addr, fast.addr()],
        true,
        "{ ratio = 1.0 }",
    );
    let got = timed(&p, 4, true);
    assert!(got.iter().all(|(s, _, _)| *s == 200), "{got:?}");
    // Round robin: two POSTs went to the slow origin and waited for it; the
    // fast origin never saw a copy of them.
    let waited: Vec<_> = got.iter().filter(|(_, o, _)| o == "slow").collect();
    assert_eq!(waited.len(), 2, "{got:?}");
    assert!(waited.iter().all(|(_, _, t)| *t >= SLOW), "{got:?}");
    assert_eq!(slow.posts.load(Ordering::Relaxed), 2);
    assert_eq!(fast.request_count(), 2);
    let c = cluster_stats(&p, 4);
    assert_eq!(c["hedges"]["sent"], 0, "{c}");
}

#[test]
fn no_hedge_without_retry_budget() {
    let slow = SlowOrigin::start();
    let fast = Origin::start_named("fast");
    let (p, _d) = proxy(
        "hedge-budget",
        &[slow.addr, fast.addr()],
        true,
        "{ ratio = 0.0, min_per_second = 0 }",
    );
    let got = timed(&p, 4, false);
    assert!(got.iter().all(|(s, _, _)| *s == 200), "{got:?}");
    let waited = got
        .iter()
        .filter(|(_, o, t)| o == "slow" && *t >= SLOW)
        .count();
    assert_eq!(waited, 2, "{got:?}");
    let c = cluster_stats(&p, 4);
    assert_eq!(c["hedges"]["sent"], 0, "{c}");
    assert!(c["retries_budget_exhausted"].as_u64() >= Some(2), "{c}");
}
