//! Keep-alive to clients and upstreams, pipelining, bodiless responses.

use std::collections::HashSet;
use std::time::Duration;

use ringway_tests::client::{Client, Framing, Request};
use ringway_tests::setup::Setup;

#[test]
fn keepalive_reuses_client_and_upstream_connections() {
    const WORKERS: usize = 2;
    // 2 × 2 = 4 < 5 client connections: a proxy that pairs each client
    // connection with its own upstream connection fails.
    const MAX_IDLE: usize = 2;
    let s = Setup::new("keepalive", |c| {
        c.runtime("workers", &WORKERS.to_string())
            .cluster_set("app", "max_idle_per_endpoint", &MAX_IDLE.to_string())
            .cluster_set("app", "idle_timeout", "\"60s\"")
    });
    let mut clients: Vec<Client> = (0..5).map(|_| s.client()).collect();
    let mut upstream_conns = HashSet::new();
    for i in 0..100 {
        let target = format!("/ka/{i}");
        let r = clients[i % 5].request(&Request::get(&target));
        assert_eq!(r.status(), 200, "request {i} ({target}): {r}");
        assert_eq!(
            r.header("x-echo-target"),
            Some(target.as_str()),
            "request {i}: {r}"
        );
        assert!(
            !r.has_token("connection", "close"),
            "request {i}: the proxy closes a keep-alive connection: {r}"
        );
        upstream_conns.insert(r.header("x-origin-conn").unwrap_or("?").to_string());
    }
    assert_eq!(s.origin.request_count(), 100);
    let conns = s.origin.connections();
    println!("100 requests over 5 client connections used {conns} upstream connections");
    assert!(
        conns <= MAX_IDLE * WORKERS,
        "the origin accepted {conns} connections for 100 sequential requests; expected at most \
         max_idle_per_endpoint × workers = {}",
        MAX_IDLE * WORKERS
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Setup::new("pipelining", |c| c);
    let mut c = s.client();
    let mut bytes = Request::get("/delay/300").to_bytes();
    bytes.extend(
        Request::get("/second")
            .header("X-Echo-Headers", "x-seq")
            .header("X-Seq", "2")
            .to_bytes(),
    );
    bytes.extend(Request::post("/third").body("third body").to_bytes());
    c.send(&bytes); // one write
    let r1 = c.read_response();
    let r2 = c.read_response();
    let r3 = c.read_response();
    assert_eq!(
        (r1.status(), r1.body_str().as_str()),
        (200, "delayed 300"),
        "first answer: {r1}"
    );
    assert_eq!(
        r2.header("x-echo-target"),
        Some("/second"),
        "second answer: {r2}"
    );
    assert_eq!(r2.header("x-echo-x-seq"), Some("2"), "second answer: {r2}");
    assert_eq!(
        r3.header("x-echo-target"),
        Some("/third"),
        "third answer: {r3}"
    );
    assert_eq!(r3.body_str(), "third body", "third answer: {r3}");
    // Still usable.
    assert_eq!(c.get("/fourth").header("x-echo-target"), Some("/fourth"));
}

#[test]
fn head_204_304_have_no_body_and_keep_the_connection() {
    let s = Setup::new("nobody", |c| c);
    let mut c = s.client();

    let r = c.request(&Request::new("HEAD", "/bytes/1000"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.framing, Framing::NoBody);
    if let Some(cl) = r.header("content-length") {
        assert_eq!(cl, "1000", "HEAD keeps the origin's Content-Length: {r}");
    }

    let r = c.request(&Request::new("HEAD", "/chunked"));
    assert_eq!(r.status(), 200, "HEAD of a chunked resource: {r}");

    for code in [204u16, 304] {
        let r = c.get(&format!("/status/{code}"));
        assert_eq!(r.status(), code, "{r}");
        assert!(
            r.header("content-length").is_none_or(|v| v == "0")
                && r.header("transfer-encoding").is_none(),
            "{code} must not announce a body: {r}"
        );
    }
    // A byte leaked after any of those would corrupt this response.
    let r = c.get("/after");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-echo-target"), Some("/after"), "{r}");
    assert_eq!(s.origin.request_count(), 5);
}

#[test]
fn client_connection_close_is_honoured() {
    let s = Setup::new("conn-close", |c| c);
    let mut c = s.client();
    let r = c.request(&Request::get("/bye").header("Connection", "close"));
    assert_eq!(r.status(), 200, "{r}");
    c.assert_closed(
        Duration::from_secs(5),
        "after a request with Connection: close",
    );
}

#[test]
fn http10_client_without_keepalive_gets_close() {
    let s = Setup::new("http10", |c| c);
    let mut c = s.client();
    let r = c.request(&Request::get("/old").http10());
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-echo-target"), Some("/old"), "{r}");
    c.assert_closed(
        Duration::from_secs(5),
        "after an HTTP/1.0 request without keep-alive",
    );
}
