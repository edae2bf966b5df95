//! Misbehaving upstreams: early close, invalid responses, pooled
//! connections the origin has closed.

use std::time::Duration;

use ringway_tests::setup::Setup;

#[test]
fn upstream_closing_without_response_gets_502() {
    let s = Setup::new("upstream-abort", |c| c);
    let r = s.client().get("/abort");
    assert_eq!(r.status(), 502, "{r}");
    assert!(r.has_token("connection", "close"), "{r}");
    assert_eq!(s.client().get("/fine").status(), 200);
}

#[test]
fn invalid_upstream_response_gets_502() {
    // Two differing Content-Length fields: forwarding it would let the
    // origin smuggle a response.
    let s = Setup::new("upstream-invalid", |c| c);
    let r = s.client().get("/bad-response");
    assert_eq!(r.status(), 502, "{r}");
    assert_eq!(s.client().get("/fine").status(), 200);
}

#[test]
fn pooled_connection_closed_by_origin_is_not_reused_blindly() {
    // The origin answers keep-alive, then closes: the proxy's pooled
    // connection is dead before its next use. The next request must still
    // succeed (detect the close, or retry a request that was never sent).
    let s = Setup::new("upstream-stale", |c| c.runtime("workers", "1"));
    let mut c = s.client();
    let r = c.get("/drop-after");
    assert_eq!(
        (r.status(), r.body_str().as_str()),
        (200, "dropping\n"),
        "{r}"
    );
    std::thread::sleep(Duration::from_millis(200)); // the FIN has arrived
    for i in 0..3 {
        let r = c.get(&format!("/next/{i}"));
        assert_eq!(
            r.status(),
            200,
            "request {i} after the origin closed a pooled connection: {r}"
        );
    }
    assert_eq!(s.origin.connections(), 2);
}
