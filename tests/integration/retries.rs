//! Retries against real origins: a 503ing origin, a refused port and a
//! resetting origin beside a good one; the same run without retries shows
//! the failures; the retry budget caps retries at ratio × requests (the
//! default 20 % cannot cover an endpoint that fails half the requests:
//! outlier ejection takes such an endpoint out instead).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringway_tests::client::{Client, Request};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

/// How a scripted origin answers every request.
#[derive(Clone, Copy)]
enum Mode {
    /// 503 with `Retry-After: 0`.
    Unavailable,
    /// Reads the request, then closes without answering.
    Reset,
}

struct BadOrigin {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl BadOrigin {
    fn start(mode: Mode) -> BadOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let o = BadOrigin {
            addr: listener.local_addr().unwrap(),
            requests: Default::default(),
            stop: Default::default(),
        };
        let (requests, stop) = (o.requests.clone(), o.stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut s) = conn else { continue };
                let requests = requests.clone();
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
                            requests.fetch_add(1, Ordering::Relaxed);
                            match mode {
                                Mode::Reset => return,
                                Mode::Unavailable => {
                                    let r = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 5\r\n\r\nbusy\n";
                                    if s.write_all(r).is_err() {
                                        return;
                                    }
                                }
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

impl Drop for BadOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn proxy(
    label: &str,
    eps: &[SocketAddr],
    retries: Option<&str>,
    budget: Option<&str>,
) -> (Proxy, TestDir) {
    let dir = TestDir::new(label);
    let mut route: Vec<(&str, &str)> = Vec::new();
    if let Some(r) = retries {
        route.push(("retries", r));
    }
    let mut cluster: Vec<(&str, &str)> = Vec::new();
    if let Some(b) = budget {
        cluster.push(("retry_budget", b));
    }
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "app", &route)
        .cluster("app", eps, &cluster)
        .admin();
    (Proxy::start(&dir, &config), dir)
}

fn statuses(proxy: &Proxy, n: usize, post: bool) -> Vec<u16> {
    let mut c = Client::connect(proxy.addr("public"));
    (0..n)
        .map(|i| {
            let r = if post {
                c.request(&Request::new("POST", &format!("/p/{i}")).body(b"hello".to_vec()))
            } else {
                c.get(&format!("/g/{i}"))
            };
            // A 502 of ringway's own closes the connection.
            if r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            {
                c = Client::connect(proxy.addr("public"));
            }
            r.status()
        })
        .collect()
}

fn cluster_stats(proxy: &Proxy) -> serde_json::Value {
    let r = Client::connect(proxy.admin_addr()).get("/stats");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["total"]["clusters"][0].clone()
}

#[test]
fn retries_turn_failures_into_successes() {
    let good = Origin::start_named("good");
    let unavailable = BadOrigin::start(Mode::Unavailable);
    let reset = BadOrigin::start(Mode::Reset);
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for (name, bad) in [
        ("503", unavailable.addr),
        ("reset", reset.addr),
        ("refused", refused),
    ] {
        // Without retries: the bad endpoint's share fails.
        let (p, _d) = proxy(
            &format!("retries-off-{name}"),
            &[good.addr(), bad],
            None,
            None,
        );
        let got = statuses(&p, 40, false);
        let failed = got.iter().filter(|&&s| s != 200).count();
        assert_eq!(failed, 20, "{name} without retries: {got:?}");
        drop(p);
        // With them (and a budget that allows one retry per request: half
        // the requests need one here): every request succeeds.
        let (p, _d) = proxy(
            &format!("retries-on-{name}"),
            &[good.addr(), bad],
            Some(r#"{ attempts = 2, backoff = "1ms", max_backoff = "5ms" }"#),
            Some("{ ratio = 1.0 }"),
        );
        let got = statuses(&p, 40, false);
        assert!(
            got.iter().all(|&s| s == 200),
            "{name} with retries: {got:?}"
        );
        // Round robin: a retry takes the good endpoint's turn, so the next
        // request tries the bad one first again (outlier ejection is what
        // takes it out of the rotation).
        // The log stage counts a request just after its response is
        // written: wait for the last one.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let c = loop {
            let c = cluster_stats(&p);
            if c["responses"]["2xx"] == 40 || std::time::Instant::now() > deadline {
                break c;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let retries = c["retries"].as_u64().unwrap();
        assert!((20..=40).contains(&retries), "{name}: {c}");
        assert_eq!(c["responses"]["2xx"], 40, "{name}: {c}");
    }
    // A POST whose body arrived with its head is retried too.
    let before = unavailable.requests.load(Ordering::Relaxed);
    let (p, _d) = proxy(
        "retries-post",
        &[good.addr(), unavailable.addr],
        Some(r#"{ attempts = 2, backoff = "1ms" }"#),
        Some("{ ratio = 1.0 }"),
    );
    let got = statuses(&p, 10, true);
    assert!(got.iter().all(|&s| s == 200), "{got:?}");
    assert!(unavailable.requests.load(Ordering::Relaxed) > before);
    assert!(good
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.body_len == Some(5)));
}

#[test]
fn the_retry_budget_caps_retries_during_an_outage() {
    let unavailable = BadOrigin::start(Mode::Unavailable);
    // Every endpoint fails: without a budget each request would be sent
    // three times. ratio 0.1 and no floor: about one retry per ten.
    let (p, _d) = proxy(
        "retries-budget",
        &[unavailable.addr],
        Some(r#"{ attempts = 2, backoff = "1ms" }"#),
        Some("{ ratio = 0.1, min_per_second = 0 }"),
    );
    let got = statuses(&p, 100, false);
    assert!(got.iter().all(|&s| s == 503), "{got:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let c = loop {
        let c = cluster_stats(&p);
        let counted =
            c["retries"].as_u64().unwrap() + c["retries_budget_exhausted"].as_u64().unwrap();
        if counted >= 100 || std::time::Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let retries = c["retries"].as_u64().unwrap();
    assert!((8..=11).contains(&retries), "{retries} retries: {c}");
    assert!(c["retries_budget_exhausted"].as_u64().unwrap() >= 85, "{c}");
    let sent = unavailable.requests.load(Ordering::Relaxed) as u64;
    assert_eq!(sent, 100 + retries, "the origin saw each retry once");
    let metrics = Client::connect(p.admin_addr()).get("/metrics").body_str();
    let line = format!("ringway_upstream_retries_total{{cluster=\"app\"}} {retries}");
    assert!(metrics.contains(&line), "{line} not in /metrics");
}

#[test]
fn circuit_breaker_max_requests_answers_503_with_the_breaker_named() {
    let slow = Origin::start_named("slow");
    let dir = TestDir::new("breaker-requests");
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster(
            "app",
            &[slow.addr()],
            &[("circuit_breakers", "{ max_requests = 2 }")],
        )
        .admin();
    let proxy = Proxy::start(&dir, &config);
    let addr = proxy.addr("public");
    // Six at once, each held 400 ms by the origin: two go through.
    let threads: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let r = Client::connect(addr).get("/delay/400");
                (
                    r.status(),
                    r.header("x-ringway-overflow").map(str::to_owned),
                )
            })
        })
        .collect();
    let got: Vec<(u16, Option<String>)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = got.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = got.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(ok, 2, "{got:?}");
    assert_eq!(refused.len(), 4, "{got:?}");
    assert!(refused
        .iter()
        .all(|(_, h)| h.as_deref() == Some("max_requests")));
    assert_eq!(
        slow.request_count(),
        2,
        "refused requests never reach the origin"
    );
    let c = cluster_stats(&proxy);
    assert_eq!(c["overflow"]["max_requests"], 4, "{c}");
    // Once they finish, requests flow again.
    assert_eq!(Client::connect(addr).get("/x").status(), 200);
}

/// Six requests at once, each held 400 ms by the origin, through a cluster
/// limited to `breakers`: (status, overflow header, time) per request.
fn six_at_once(proxy: &Proxy) -> Vec<(u16, Option<String>, Duration)> {
    let addr = proxy.addr("public");
    let threads: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                // Staggered a little, so the order they arrive in is known.
                std::thread::sleep(Duration::from_millis(20 * i));
                let t = std::time::Instant::now();
                let r = Client::connect(addr).get("/delay/400");
                (
                    r.status(),
                    r.header("x-ringway-overflow").map(str::to_owned),
                    t.elapsed(),
                )
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn breaker_proxy(
    label: &str,
    origin: &Origin,
    breakers: &str,
    connect_timeout: &str,
) -> (Proxy, TestDir) {
    let dir = TestDir::new(label);
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster(
            "app",
            &[origin.addr()],
            &[
                ("circuit_breakers", breakers),
                ("connect_timeout", &format!("\"{connect_timeout}\"")),
            ],
        )
        .admin();
    (Proxy::start(&dir, &config), dir)
}

#[test]
fn circuit_breaker_max_connections_queues_then_refuses() {
    let origin = Origin::start_named("limited");
    // Two connections; two requests may wait; the other two are refused at
    // once (max_pending). The waiting ones go out when the first finish.
    let (p, _d) = breaker_proxy(
        "breaker-conns",
        &origin,
        "{ max_connections = 2, max_pending = 2 }",
        "2s",
    );
    let got = six_at_once(&p);
    let ok: Vec<_> = got.iter().filter(|(s, _, _)| *s == 200).collect();
    let refused: Vec<_> = got.iter().filter(|(s, _, _)| *s == 503).collect();
    assert_eq!(ok.len(), 4, "{got:?}");
    assert_eq!(refused.len(), 2, "{got:?}");
    assert!(
        refused
            .iter()
            .all(|(_, h, _)| h.as_deref() == Some("max_pending")),
        "{got:?}"
    );
    // Two waited for a connection to come back (one 400 ms turn).
    let waited = ok
        .iter()
        .filter(|(_, _, t)| *t >= Duration::from_millis(700))
        .count();
    assert_eq!(waited, 2, "{got:?}");
    assert!(
        origin.connections() <= 2,
        "{} connections",
        origin.connections()
    );
    let c = cluster_stats(&p);
    assert_eq!(c["overflow"]["max_pending"], 2, "{c}");
    assert_eq!(c["overflow"]["max_connections"], 0, "{c}");
    drop(p);

    // No max_pending, a short connect_timeout: the waiting requests give up
    // after it with `max_connections`.
    let (p, _d) = breaker_proxy(
        "breaker-conns-wait",
        &origin,
        "{ max_connections = 1 }",
        "150ms",
    );
    let got = six_at_once(&p);
    let ok = got.iter().filter(|(s, _, _)| *s == 200).count();
    let refused: Vec<_> = got.iter().filter(|(s, _, _)| *s == 503).collect();
    assert_eq!(ok, 1, "{got:?}");
    assert_eq!(refused.len(), 5, "{got:?}");
    assert!(
        refused
            .iter()
            .all(|(_, h, t)| h.as_deref() == Some("max_connections")
                && *t < Duration::from_millis(390)),
        "{got:?}"
    );
    let m = Client::connect(p.admin_addr()).get("/metrics").body_str();
    let line = "ringway_upstream_overflow_total{cluster=\"app\",breaker=\"max_connections\"} 5";
    assert!(m.contains(line), "{line} not in /metrics");
}

#[test]
fn an_idle_connection_makes_room_under_max_connections() {
    // One connection allowed, two endpoints: a request to the second
    // endpoint closes the idle pooled connection to the first.
    let a = Origin::start_named("a");
    let b = Origin::start_named("b");
    let dir = TestDir::new("breaker-evict");
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster(
            "app",
            &[a.addr(), b.addr()],
            &[("circuit_breakers", "{ max_connections = 1 }")],
        )
        .admin();
    let p = Proxy::start(&dir, &config);
    let mut c = Client::connect(p.addr("public"));
    let names: Vec<String> = (0..4)
        .map(|i| {
            let r = c.get(&format!("/e/{i}"));
            assert_eq!(r.status(), 200);
            r.header("x-origin").unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(names, ["a", "b", "a", "b"]);
    // Each turn closed the other endpoint's idle connection and opened one.
    assert_eq!(a.connections() + b.connections(), 4);
}
