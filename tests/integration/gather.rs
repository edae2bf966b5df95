//! The `gather` stage (`limits.request_buffer_bytes`): a small
//! Content-Length body that arrives after its head is read whole before the
//! request goes upstream. Shown through what only a whole body allows (a
//! retry), through what must not change (a pipelined request behind it, the
//! body timeout), and through what never reaches the origin (a body that
//! stalls or is cut off).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::pattern::Pattern;
use ringway_tests::proxy::Proxy;

const BODY: usize = 20_000;
/// Sent with the head; the rest follows after a pause, in another segment.
const FIRST: usize = 1_000;

fn refused_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn start(label: &str, eps: &[SocketAddr], buffer: Option<&str>, retries: bool) -> (Proxy, TestDir) {
    let dir = TestDir::new(label);
    let route: Vec<(&str, &str)> = if retries {
        vec![("retries", r#"{ attempts = 2, backoff = "1ms" }"#)]
    } else {
        Vec::new()
    };
    let mut config = Config::new()
        .runtime("workers", "1")
        .limit("body_read_timeout", &q("500ms"))
        .listener("public")
        .route("public", "/", "app", &route)
        .cluster("app", eps, &[("retry_budget", "{ ratio = 1.0 }")]);
    if let Some(b) = buffer {
        config = config.limit("request_buffer_bytes", b);
    }
    (Proxy::start(&dir, &config), dir)
}

/// The head and the first part of a POST of `body`, a pause, then the rest
/// (followed by `after`, e.g. a pipelined request).
fn send_in_two(c: &mut Client, target: &str, body: &[u8], after: &[u8]) {
    let req = Request::post(target).body(body.to_vec());
    let mut first = req.head_bytes();
    first.extend_from_slice(&body[..FIRST]);
    c.send(&first);
    std::thread::sleep(Duration::from_millis(40));
    let mut rest = body[FIRST..].to_vec();
    rest.extend_from_slice(after);
    c.send(&rest);
}

#[test]
fn a_small_body_sent_after_its_head_is_gathered_and_can_be_retried() {
    let good = Origin::start_named("good");
    let body = Pattern::new().vec(BODY);
    // Round robin over a refused port and a good origin: every other
    // request fails its first attempt. A retry needs the whole body in
    // hand, which only gathering gives here (the body comes after the head).
    for (buffer, expect_all_ok) in [(None, true), (Some("0"), false)] {
        let (p, _d) = start(
            &format!("gather-retry-{}", buffer.unwrap_or("default")),
            &[refused_port(), good.addr()],
            buffer,
            true,
        );
        let mut statuses = Vec::new();
        for i in 0..6 {
            let mut c = Client::connect(p.addr("public"));
            send_in_two(&mut c, &format!("/echo/{i}"), &body, b"");
            let r = c.read_response_to("POST");
            if r.status() == 200 {
                assert_eq!(r.body.len(), BODY);
                assert!(r.body == body, "echoed body differs");
            }
            statuses.push(r.status());
        }
        let ok = statuses.iter().filter(|&&s| s == 200).count();
        if expect_all_ok {
            assert_eq!(ok, 6, "gathered bodies are retried: {statuses:?}");
        } else {
            assert_eq!(ok, 3, "streamed bodies are not retried: {statuses:?}");
        }
    }
    // Every body the origin got was whole.
    for r in good.requests() {
        assert_eq!(r.body_len, Some(BODY as u64), "{}", r.target);
    }
}

#[test]
fn a_pipelined_request_behind_a_gathered_body_is_answered() {
    let origin = Origin::start();
    let (p, _d) = start("gather-pipelined", &[origin.addr()], None, false);
    let body = Pattern::new().vec(BODY);
    let mut c = Client::connect(p.addr("public"));
    let next = Request::post("/second").body(b"tail".to_vec()).to_bytes();
    send_in_two(&mut c, "/first", &body, &next);
    let r1 = c.read_response_to("POST");
    assert_eq!(r1.status(), 200);
    assert!(r1.body == body, "first body differs");
    let r2 = c.read_response_to("POST");
    assert_eq!(r2.status(), 200);
    assert_eq!(r2.body, b"tail");
    assert_eq!(r2.header("x-origin-req"), Some("2"));
}

#[test]
fn a_small_body_that_stalls_or_is_cut_off_never_reaches_the_origin() {
    let origin = Origin::start();
    let body = Pattern::new().vec(BODY);
    let req = Request::post("/stalled").body(body.clone());
    let mut first = req.head_bytes();
    first.extend_from_slice(&body[..FIRST]);

    let (p, _d) = start("gather-stall", &[origin.addr()], None, false);
    // Stalls: 408 after body_read_timeout, and the origin saw nothing.
    let mut c = Client::connect(p.addr("public"));
    c.set_read_timeout(Duration::from_secs(5));
    c.send(&first);
    let r = c.read_response_to("POST");
    assert_eq!(r.status(), 408);
    // Cut off: the client goes away mid-body.
    let mut c = Client::connect(p.addr("public"));
    c.send(&first);
    std::thread::sleep(Duration::from_millis(50));
    drop(c);
    // The proxy still serves, and its next request is the origin's first.
    let mut c = Client::connect(p.addr("public"));
    let r = c.request(&Request::post("/after").body(b"ok".to_vec()));
    assert_eq!(r.status(), 200);
    let seen: Vec<String> = origin.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        seen,
        ["/after"],
        "only the whole request reached the origin"
    );
    drop(p);

    // Streaming instead (request_buffer_bytes = 0): the head goes on at
    // once, so the origin does see the stalled request.
    let (p, _d) = start("gather-stall-off", &[origin.addr()], Some("0"), false);
    let mut c = Client::connect(p.addr("public"));
    c.set_read_timeout(Duration::from_secs(5));
    c.send(&first);
    let r = c.read_response_to("POST");
    assert_eq!(r.status(), 408);
    assert!(
        origin.wait_until(Duration::from_secs(2), |o| o
            .requests()
            .iter()
            .any(|r| r.target == "/stalled")),
        "a streamed head reaches the origin"
    );
}
