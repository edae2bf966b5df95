//! Large bodies moved with splice(2) (`limits.splice_min_bytes`): both
//! directions arrive intact with exactly the body taken from each socket
//! (a pipelined request behind an upload is answered, the upstream
//! connection is reused after a download), the listener's `bytes_spliced`
//! counts them (and stays 0 with splicing off), a client that stops
//! reading holds up no other connection of its worker, and failures on
//! either side end the exchange as on the buffered path.
//!
//! Every proxy here gets `RINGWAY_SPLICE_MIN_BYTES` in its environment, so
//! the suite's pass with splicing forced off (`./run.sh test`) does not
//! change what these tests ask for.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use serde_json::Value;

use ringway_tests::client::Client;
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::pattern::Pattern;
use ringway_tests::proxy::Proxy;

const SIZE: u64 = 3 * 1024 * 1024;

fn start(label: &str, origin: SocketAddr, driver: &str, splice: &str) -> (Proxy, TestDir) {
    let dir = TestDir::new(label);
    let config = Config::simple(origin)
        .runtime("workers", "1")
        .runtime("driver", &q(driver))
        .limit("body_read_timeout", &q("500ms"))
        .admin();
    let proxy = Proxy::start_toml(
        &dir,
        &config.to_toml(),
        &[("RINGWAY_SPLICE_MIN_BYTES", splice)],
    );
    (proxy, dir)
}

fn listener_stats(p: &Proxy) -> Value {
    let r = Client::connect(p.admin_addr()).get("/stats");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["total"]["listeners"][0].clone()
}

/// A 3 MiB upload with a request pipelined behind it, then a 3 MiB
/// download and a request behind it, all on one client connection.
fn upload_then_download(c: &mut Client) {
    let p = Pattern::new();
    let head = format!("POST /sink HTTP/1.1\r\nHost: test.local\r\nContent-Length: {SIZE}\r\n\r\n");
    c.send(head.as_bytes());
    {
        let mut w = c.tcp();
        p.write_to(&mut w, SIZE).expect("upload body");
        w.write_all(b"GET /behind-the-upload HTTP/1.1\r\nHost: test.local\r\n\r\n")
            .unwrap();
        w.flush().unwrap();
    }
    let r = c.read_response_to("POST");
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.body_str(), SIZE.to_string(), "the origin counted: {r}");
    assert_eq!(r.header("x-sink-pattern-ok"), Some("true"), "altered: {r}");
    let r = c.read_response();
    assert_eq!(r.status(), 200, "the pipelined request: {r}");

    c.send(format!("GET /bytes/{SIZE} HTTP/1.1\r\nHost: test.local\r\n\r\n").as_bytes());
    let head = c.read_head().expect("response head");
    assert_eq!(head.status, 200, "{head:?}");
    let mut offset = 0u64;
    let mut first_bad = None;
    c.read_body_with(&head, "GET", &mut |b| {
        if first_bad.is_none() && !p.matches(offset, b) {
            first_bad = Some(offset);
        }
        offset += b.len() as u64;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("the body broke off after {offset} bytes: {e}"));
    assert_eq!(offset, SIZE);
    assert_eq!(first_bad, None, "the body differs from this offset on");
    assert_eq!(c.get("/after-the-download").status(), 200);
}

#[test]
fn large_bodies_are_spliced_both_ways_intact_and_exactly() {
    for driver in ["io_uring", "legacy"] {
        for (splice, spliced) in [("262144", true), ("0", false)] {
            let origin = Origin::start();
            let (p, _d) = start(
                &format!("splice-{driver}-{splice}"),
                origin.addr(),
                driver,
                splice,
            );
            let mut c = Client::connect(p.addr("public"));
            upload_then_download(&mut c);
            let l = listener_stats(&p);
            let bytes = l["bytes_spliced"].as_u64().unwrap();
            let context = format!("driver {driver}, splice_min_bytes {splice}: {l}");
            if spliced {
                // All of both bodies but what came with the upload's head
                // (at most a read buffer) went through the pipe.
                assert!(bytes <= 2 * SIZE, "{context}");
                assert!(bytes >= 2 * SIZE - 64 * 1024, "{context}");
            } else {
                assert_eq!(bytes, 0, "{context}");
            }
            // The byte counts include spliced bytes either way.
            assert!(l["bytes_in"].as_u64().unwrap() >= SIZE, "{context}");
            assert!(l["bytes_out"].as_u64().unwrap() >= SIZE, "{context}");
            // One upstream connection for all four requests: the spliced
            // download left it on a message boundary, and it was reused.
            assert_eq!(origin.connections(), 1, "{context}");
        }
    }
}

#[test]
fn a_client_that_stops_reading_a_spliced_body_holds_up_no_one_else() {
    let origin = Origin::start();
    let (p, _d) = start("splice-slow-reader", origin.addr(), "auto", "262144");
    let size: u64 = 64 * 1024 * 1024;
    // A reads nothing: the transfer fills the socket buffers and waits.
    let mut a = Client::connect(p.addr("public"));
    a.send(format!("GET /bytes/{size} HTTP/1.1\r\nHost: test.local\r\n\r\n").as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    // The same (only) worker still answers others.
    for i in 0..3 {
        let mut b = Client::connect(p.addr("public"));
        b.set_read_timeout(Duration::from_secs(10));
        // (`get` fails after the 10 s read timeout if the worker is stuck.)
        let r = b.get(&format!("/other/{i}"));
        assert_eq!(r.status(), 200, "request {i} beside a stalled spliced body");
    }
    // A then reads all of it, intact.
    let p2 = Pattern::new();
    let head = a.read_head().unwrap();
    let mut offset = 0u64;
    let mut ok = true;
    a.read_body_with(&head, "GET", &mut |b| {
        ok &= p2.matches(offset, b);
        offset += b.len() as u64;
        Ok(())
    })
    .unwrap();
    assert_eq!(offset, size);
    assert!(ok, "the body arrived altered");
    // Counted when the exchange ends, which may be just after the client
    // has the last byte.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let spliced = listener_stats(&p)["bytes_spliced"].as_u64().unwrap();
        if spliced > size / 2 {
            break;
        }
        assert!(Instant::now() < deadline, "bytes_spliced {spliced}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stalled_spliced_upload_gets_408_and_its_upstream_connection_is_not_reused() {
    let origin = Origin::start();
    let (p, _d) = start("splice-stall", origin.addr(), "auto", "262144");
    let mut c = Client::connect(p.addr("public"));
    c.set_read_timeout(Duration::from_secs(10));
    let head = format!("POST /sink HTTP/1.1\r\nHost: test.local\r\nContent-Length: {SIZE}\r\n\r\n");
    c.send(head.as_bytes());
    std::thread::sleep(Duration::from_millis(50));
    // 512 KiB of the 3 MiB, in a later segment: spliced, then a stall.
    c.send(&Pattern::new().vec(512 * 1024));
    let t = Instant::now();
    let r = c.read_response_to("POST");
    assert_eq!(r.status(), 408, "{r}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "408 after {:?}",
        t.elapsed()
    );
    c.assert_closed(Duration::from_secs(3), "after 408");
    assert!(listener_stats(&p)["bytes_spliced"].as_u64().unwrap() > 0);
    // The upstream connection was left inside a body: it is closed, not
    // pooled, so the next request opens a new one.
    let mut c2 = Client::connect(p.addr("public"));
    assert_eq!(c2.get("/next").status(), 200);
    assert_eq!(origin.connections(), 2);
}

/// An origin that promises `promised` bytes, sends `sent` and closes.
fn short_origin(promised: u64, sent: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {promised}\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            std::thread::sleep(Duration::from_millis(50));
            let _ = s.write_all(&vec![b'x'; sent]);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    addr
}

#[test]
fn an_origin_that_closes_inside_a_spliced_body_closes_the_client() {
    let origin = short_origin(SIZE, 1024 * 1024);
    let (p, _d) = start("splice-cut", origin, "auto", "262144");
    let mut c = Client::connect(p.addr("public"));
    c.set_read_timeout(Duration::from_secs(10));
    c.send(b"GET /cut HTTP/1.1\r\nHost: test.local\r\n\r\n");
    let head = c.read_head().unwrap();
    assert_eq!(head.status, 200);
    let mut got = 0u64;
    let res = c.read_body_with(&head, "GET", &mut |b| {
        got += b.len() as u64;
        Ok(())
    });
    // The client sees the body end early (a close, not a hang, and no
    // made-up bytes).
    assert!(res.is_err(), "a body of {got} bytes read as whole");
    assert!(got < SIZE, "{got}");
    assert!(
        got >= 512 * 1024,
        "only {got} of the origin's 1 MiB came through"
    );
    // The proxy still serves.
    let mut c2 = Client::connect(p.addr("public"));
    c2.set_read_timeout(Duration::from_secs(10));
    c2.send(b"GET /again HTTP/1.1\r\nHost: test.local\r\n\r\n");
    // The one-shot origin is gone: a 502, but an answer.
    let r = c2.read_response();
    assert_eq!(r.status(), 502, "{r}");
}
