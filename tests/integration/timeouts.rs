//! Timeouts and upstream failures: 408 slow header, 504 slow origin, 502
//! dead origin, idle client connections.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;
use ringway_tests::setup::Setup;

#[test]
fn slow_header_gets_408() {
    let s = Setup::new("slow-header", |c| c.limit("header_read_timeout", "\"1s\""));
    let mut c = s.client();
    let t = Instant::now();
    c.send(b"GET /slow HTTP/1.1\r\nHost: test.local\r\n"); // no blank line
    let r = c.read_response();
    let waited = t.elapsed();
    assert_eq!(r.status(), 408, "{r}");
    assert!(r.has_token("connection", "close"), "{r}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "408 after {waited:?}; header_read_timeout is 1s"
    );
    c.assert_closed(Duration::from_secs(3), "after 408");
    assert_eq!(s.origin.request_count(), 0);
    assert_eq!(s.client().get("/ok").status(), 200);
}

#[test]
fn trickled_header_still_gets_408() {
    // One byte every 150 ms: the timeout covers the whole head, not each read.
    let s = Setup::new("slowloris", |c| c.limit("header_read_timeout", "\"1s\""));
    let mut c = s.client();
    let mut w = c.tcp().try_clone().unwrap();
    let head = b"GET /trickle HTTP/1.1\r\nHost: test.local\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".to_vec();
    let t = Instant::now();
    let writer = std::thread::spawn(move || {
        for b in head {
            if w.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let r = c.read_response();
    let waited = t.elapsed();
    assert_eq!(r.status(), 408, "{r}");
    assert!(waited < Duration::from_secs(5), "408 only after {waited:?}");
    let _ = writer.join();
    assert_eq!(s.origin.request_count(), 0);
}

#[test]
fn stalled_request_body_gets_408() {
    let s = Setup::new("slow-body", |c| c.limit("body_read_timeout", "\"1s\""));
    let mut c = s.client();
    let t = Instant::now();
    // 10 of 100 announced bytes, then silence; /sink answers only after the
    // whole body, so no response has started.
    c.send(b"POST /sink HTTP/1.1\r\nHost: test.local\r\nContent-Length: 100\r\n\r\n0123456789");
    let r = c.read_response();
    let waited = t.elapsed();
    assert_eq!(r.status(), 408, "{r}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "408 after {waited:?}; body_read_timeout is 1s"
    );
    c.assert_closed(Duration::from_secs(3), "after 408");
}

#[test]
fn slow_origin_gets_504() {
    let s = Setup::new("slow-origin", |c| c.all_routes("timeout", "\"500ms\""));
    let mut c = s.client();
    let t = Instant::now();
    let r = c.get("/delay/3000");
    let waited = t.elapsed();
    assert_eq!(r.status(), 504, "{r}");
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_millis(2500),
        "504 after {waited:?}; route timeout is 500ms"
    );
    // The proxy keeps serving.
    let r = s.client().get("/delay/10");
    assert_eq!(
        (r.status(), r.body_str().as_str()),
        (200, "delayed 10"),
        "{r}"
    );
}

/// A port that was bound and released: connecting to it is refused.
fn dead_port() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

#[test]
fn dead_origin_gets_502_and_good_routes_keep_working() {
    let dir = TestDir::new("dead-origin");
    let origin = Origin::start();
    let dead = dead_port();
    let config = Config::new()
        .listener("public")
        .route("public", "/dead", "dead", &[])
        .route("public", "/", "app", &[])
        .cluster("dead", &[dead], &[])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let addr = proxy.addr("public");
    for i in 0..3 {
        let t = Instant::now();
        let mut c = Client::connect(addr);
        let r = c.get(&format!("/dead/{i}"));
        assert_eq!(r.status(), 502, "attempt {i}: {r}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "502 took {:?}",
            t.elapsed()
        );
        let r = Client::connect(addr).get(&format!("/alive/{i}"));
        assert_eq!(r.status(), 200, "good route after a 502: {r}");
        assert_eq!(
            r.header("x-echo-target"),
            Some(format!("/alive/{i}").as_str())
        );
    }
    drop(proxy);
}

#[test]
fn idle_client_connection_is_closed() {
    let s = Setup::new("idle", |c| c.limit("idle_timeout", "\"1s\""));
    let mut c = s.client();
    assert_eq!(c.request(&Request::get("/x")).status(), 200);
    let t = Instant::now();
    c.assert_closed(
        Duration::from_secs(6),
        "an idle keep-alive connection with idle_timeout = 1s",
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "closed after only {waited:?}"
    );
}
