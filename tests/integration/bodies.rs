//! Request and response bodies through the proxy: Content-Length and chunked
//! both ways, read-until-close, HTTP/1.0 de-chunking, 100-continue, 413.

use std::io::Write;
use std::time::Duration;

use ringway_tests::client::{Framing, Request};
use ringway_tests::origin;
use ringway_tests::pattern::Pattern;
use ringway_tests::setup::Setup;

#[test]
fn content_length_body_roundtrip() {
    let s = Setup::new("cl-body", |c| c);
    let body = Pattern::new().vec(300_000);
    let mut c = s.client();
    let r = c.request(&Request::post("/echo").body(body.clone()));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(
        r.header("x-echo-body-framing"),
        Some("content-length"),
        "{r}"
    );
    assert_eq!(r.header("x-echo-content-length"), Some("300000"), "{r}");
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "echoed body differs");
    assert_eq!(s.origin.last_request().unwrap().body_len, Some(300_000));

    // Empty body, then a keep-alive follow-up.
    let r = c.request(&Request::post("/echo").body(""));
    assert_eq!((r.status(), r.body.len()), (200, 0), "{r}");
}

#[test]
fn chunked_request_body_is_passed_through() {
    let s = Setup::new("chunked-req", |c| c);
    let body = Pattern::new().vec(200_000);
    let mut c = s.client();
    let r = c.request(&Request::post("/echo").chunked(&body, &[1, 100, 5000, 65_536, 3]));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(
        r.header("x-echo-body-framing"),
        Some("chunked"),
        "origin should receive chunked: {r}"
    );
    assert!(
        r.body == body,
        "echoed body differs ({} bytes back)",
        r.body.len()
    );
    assert_eq!(s.origin.last_request().unwrap().body_len, Some(200_000));

    // An empty chunked body.
    let r = c.request(&Request::post("/echo").chunked(b"", &[1]));
    assert_eq!((r.status(), r.body.len()), (200, 0), "{r}");
}

#[test]
fn chunked_both_ways() {
    let s = Setup::new("chunked-both", |c| c);
    let body = Pattern::new().vec(150_000);
    let mut c = s.client();
    let r = c.request(
        &Request::post("/echo")
            .chunked(&body, &[7, 40_000])
            .header("x-reply-chunked", "1"),
    );
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.framing, Framing::Chunked, "{r}");
    assert!(r.body == body, "echoed body differs");
}

#[test]
fn chunked_response_is_passed_through() {
    let s = Setup::new("chunked-resp", |c| c);
    let mut c = s.client();
    for _ in 0..2 {
        let r = c.get("/chunked");
        assert_eq!(r.status(), 200, "{r}");
        assert_eq!(r.framing, Framing::Chunked, "{r}");
        assert!(
            r.body == origin::chunked_body(),
            "decoded /chunked body differs ({} bytes)",
            r.body.len()
        );
    }
}

#[test]
fn read_until_close_response_is_delivered() {
    let s = Setup::new("until-close", |c| c);
    let mut c = s.client();
    let r = c.get("/close");
    assert_eq!(r.status(), 200, "{r}");
    assert!(
        r.body == origin::close_body(),
        "body of /close differs ({} bytes)",
        r.body.len()
    );
    if r.framing == Framing::UntilClose {
        c.assert_closed(Duration::from_secs(5), "after a read-until-close response");
    }
    // The proxy keeps serving.
    assert_eq!(s.client().get("/next").status(), 200);
}

#[test]
fn http10_client_gets_dechunked_body_and_close() {
    let s = Setup::new("http10-dechunk", |c| c);
    let mut c = s.client();
    let r = c.request(&Request::get("/chunked").http10());
    assert_eq!(r.status(), 200, "{r}");
    assert_ne!(
        r.framing,
        Framing::Chunked,
        "an HTTP/1.0 client got a chunked response: {r}"
    );
    assert!(r.header("transfer-encoding").is_none(), "{r}");
    assert!(
        r.body == origin::chunked_body(),
        "de-chunked body differs ({} bytes)",
        r.body.len()
    );
    c.assert_closed(Duration::from_secs(5), "after the HTTP/1.0 response");
}

#[test]
fn expect_100_continue_is_answered_by_the_proxy() {
    let s = Setup::new("expect", |c| c);
    let mut c = s.client();
    let body = b"the body after 100";
    let head = format!(
        "POST /expect HTTP/1.1\r\nHost: test.local\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes());
    c.set_read_timeout(Duration::from_secs(5));
    let interim = c
        .read_head()
        .unwrap_or_else(|e| panic!("no interim response to Expect: 100-continue within 5 s: {e}"));
    assert_eq!(
        interim.status, 100,
        "expected `100 Continue` first, got {interim:?}"
    );
    // The proxy sent `100 Continue` itself, without waiting for the
    // origin: the head may already be on its way upstream (the body
    // streams after it, as nginx with `proxy_request_buffering off`), but
    // no body can have reached the origin before the client sent it.
    assert!(
        s.origin.requests().iter().all(|r| r.body_len.is_none()),
        "the origin read a body before the client sent it: {:?}",
        s.origin.requests()
    );
    c.send(body);
    let r = c.read_response();
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.body, body, "{r}");
    let rec = s.origin.last_request().unwrap();
    assert!(
        !rec.has_header("expect"),
        "the origin received Expect: {}",
        rec.raw_str()
    );
    assert_eq!(rec.body_len, Some(body.len() as u64));
}

#[test]
fn unknown_expectation_gets_417() {
    let s = Setup::new("expect-417", |c| c);
    let mut c = s.client();
    c.send(b"POST /expect HTTP/1.1\r\nHost: test.local\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\nhi");
    let r = c.read_response();
    assert_eq!(r.status(), 417, "{r}");
    assert_eq!(s.origin.request_count(), 0);
}

fn limited(label: &str) -> Setup {
    Setup::new(label, |c| c.all_routes("max_body_bytes", "\"1MiB\""))
}

#[test]
fn content_length_over_max_body_bytes_gets_413() {
    let s = limited("413-cl");
    let mut c = s.client();
    // Announce 2 MiB, send none of it: the proxy must answer from the head.
    c.send(b"POST /sink HTTP/1.1\r\nHost: test.local\r\nContent-Length: 2097152\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status(), 413, "{r}");
    assert!(r.has_token("connection", "close"), "{r}");
    c.assert_closed(Duration::from_secs(5), "after 413");
    assert_eq!(
        s.origin.request_count(),
        0,
        "the origin saw {:?}",
        s.origin.requests()
    );

    // Exactly at the limit is fine.
    let p = Pattern::new();
    let r = s
        .client()
        .request(&Request::post("/sink").body(p.vec(1024 * 1024)));
    assert_eq!((r.status(), r.body_str().as_str()), (200, "1048576"), "{r}");
}

#[test]
fn chunked_body_over_max_body_bytes_gets_413() {
    let s = limited("413-chunked");
    let mut c = s.client();
    c.send(b"POST /sink HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n");
    // Write 2 MiB of chunks from another thread; the proxy may stop reading.
    let mut w = c.tcp().try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let piece = ringway_tests::wire::chunk(&[b'x'; 64 * 1024]);
        for _ in 0..32 {
            if w.write_all(&piece).is_err() {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let r = c.read_response();
    assert_eq!(r.status(), 413, "{r}");
    assert!(r.has_token("connection", "close"), "{r}");
    let _ = writer.join();
}
