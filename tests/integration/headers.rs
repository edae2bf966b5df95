//! Header rewriting: X-Forwarded-*, X-Request-Id, hop-by-hop stripping.

use ringway_tests::client::Request;
use ringway_tests::setup::Setup;

#[test]
fn forwarded_headers_and_request_id_are_added() {
    let s = Setup::new("forwarded", |c| c);
    let mut c = s.client();
    let r = c.request(&Request::get("/fwd").host("fwd.test"));
    assert_eq!(r.status(), 200, "{r}");
    let rec = s.origin.last_request().unwrap();
    let xff = rec
        .header("x-forwarded-for")
        .unwrap_or_else(|| panic!("no X-Forwarded-For: {}", rec.raw_str()));
    assert_eq!(
        xff.split(',').next_back().map(str::trim),
        Some("127.0.0.1"),
        "{}",
        rec.raw_str()
    );
    assert_eq!(
        rec.header("x-forwarded-proto"),
        Some("http"),
        "{}",
        rec.raw_str()
    );
    assert_eq!(
        rec.header("x-forwarded-host"),
        Some("fwd.test"),
        "{}",
        rec.raw_str()
    );
    assert_eq!(
        rec.header("host"),
        Some("fwd.test"),
        "Host is kept: {}",
        rec.raw_str()
    );
    let id1 = rec
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id: {}", rec.raw_str()))
        .to_string();
    assert!(!id1.trim().is_empty());

    c.get("/fwd2");
    let id2 = s
        .origin
        .last_request()
        .unwrap()
        .header("x-request-id")
        .unwrap_or("")
        .to_string();
    assert_ne!(id1, id2, "two requests got the same X-Request-Id");

    // A client-supplied id is kept, once.
    c.request(&Request::get("/fwd3").header("X-Request-Id", "client-id-123"));
    let rec = s.origin.last_request().unwrap();
    assert_eq!(
        rec.headers_all("x-request-id"),
        vec!["client-id-123"],
        "{}",
        rec.raw_str()
    );

    // An incoming X-Forwarded-For is extended, not trusted as-is.
    c.request(&Request::get("/fwd4").header("X-Forwarded-For", "192.0.2.1"));
    let rec = s.origin.last_request().unwrap();
    let all = rec.headers_all("x-forwarded-for").join(",");
    assert_eq!(
        all.split(',').next_back().map(str::trim),
        Some("127.0.0.1"),
        "{}",
        rec.raw_str()
    );
}

#[test]
fn hop_by_hop_request_headers_are_stripped() {
    let s = Setup::new("hop-req", |c| c);
    let mut c = s.client();
    let r = c.request(
        &Request::get("/hop-req")
            .header("Connection", "keep-alive, X-Custom-Hop")
            .header("X-Custom-Hop", "1")
            .header("Keep-Alive", "timeout=5")
            .header("X-End-To-End", "kept"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let rec = s.origin.last_request().unwrap();
    assert!(
        !rec.has_header("x-custom-hop"),
        "Connection-listed header forwarded: {}",
        rec.raw_str()
    );
    assert!(
        !rec.has_header("keep-alive"),
        "Keep-Alive forwarded: {}",
        rec.raw_str()
    );
    assert!(
        !rec.headers_all("connection")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("x-custom-hop")),
        "client Connection options forwarded: {}",
        rec.raw_str()
    );
    assert_eq!(
        rec.header("x-end-to-end"),
        Some("kept"),
        "{}",
        rec.raw_str()
    );
}

#[test]
fn hop_by_hop_response_headers_are_stripped() {
    let s = Setup::new("hop-resp", |c| c);
    let mut c = s.client();
    let r = c.get("/hop");
    assert_eq!(r.status(), 200, "{r}");
    assert!(
        r.header("x-resp-hop").is_none(),
        "Connection-listed response header forwarded: {r}"
    );
    assert!(
        r.header("keep-alive").is_none(),
        "Keep-Alive response header forwarded: {r}"
    );
    assert!(!r.has_token("connection", "x-resp-hop"), "{r}");
    assert_eq!(r.header("x-end-to-end"), Some("yes"), "{r}");
    assert_eq!(r.body_str(), "hop\n");
    assert_eq!(c.get("/again").status(), 200);
}
