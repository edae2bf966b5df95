//! Mirroring: copies of a route's requests go to a shadow cluster, its
//! answers are discarded, and the primary never waits for it, even when
//! the shadow stalls.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_tests::client::{Client, Request};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

/// A shadow that reads requests and never answers; counts request heads.
fn stalled_shadow() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let heads = Arc::new(AtomicUsize::new(0));
    let h = heads.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let h = h.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = s.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let seen = buf.windows(4).filter(|w| *w == b"\r\n\r\n").count();
                    if seen > 0 {
                        h.fetch_add(seen, Ordering::Relaxed);
                        buf.clear();
                    }
                }
            });
        }
    });
    (addr, heads)
}

fn proxy(label: &str, primary: SocketAddr, shadow: SocketAddr, mirror: &str) -> (Proxy, TestDir) {
    let dir = TestDir::new(label);
    let config = Config::new()
        .runtime("workers", "1")
        .listener("public")
        .route("public", "/", "app", &[("mirror", mirror)])
        .cluster("app", &[primary], &[])
        .cluster("shadow", &[shadow], &[])
        .admin();
    (Proxy::start(&dir, &config), dir)
}

#[test]
fn copies_reach_the_shadow_and_a_stalled_shadow_delays_nothing() {
    let primary = Origin::start_named("primary");
    let shadow = Origin::start_named("shadow");
    let (p, _d) = proxy(
        "mirror",
        primary.addr(),
        shadow.addr(),
        r#"{ cluster = "shadow", max_body = "1KiB" }"#,
    );
    let mut c = Client::connect(p.addr("public"));
    for i in 0..10 {
        let r = c.get(&format!("/m/{i}"));
        assert_eq!(r.header("x-origin"), Some("primary"));
    }
    // A body in hand is copied; one over max_body is not.
    let r = c.request(&Request::new("POST", "/small").body(b"hello".to_vec()));
    assert_eq!(r.status(), 200);
    let r = c.request(&Request::new("POST", "/big").body(vec![b'x'; 4096]));
    assert_eq!(r.status(), 200);
    assert!(shadow.wait_until(Duration::from_secs(5), |o| o.request_count() >= 11));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(shadow.request_count(), 11, "10 GETs and the small POST");
    let small = shadow
        .requests()
        .into_iter()
        .find(|r| r.raw_str().starts_with("POST /small"))
        .expect("the small POST was copied");
    assert_eq!(small.body_len, Some(5));
    assert_eq!(primary.request_count(), 12);
    drop(p);

    // A stalled shadow (reads, never answers), half the requests copied:
    // the primary answers each request as fast as without it.
    let (stalled, heads) = stalled_shadow();
    let (p, _d) = proxy(
        "mirror-stalled",
        primary.addr(),
        stalled,
        r#"{ cluster = "shadow", fraction = 0.5, timeout = "2s" }"#,
    );
    let mut c = Client::connect(p.addr("public"));
    let mut slowest = Duration::ZERO;
    for i in 0..100 {
        let t = Instant::now();
        assert_eq!(c.get(&format!("/s/{i}")).status(), 200);
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a request waited {slowest:?} for the shadow"
    );
    let copied = heads.load(Ordering::Relaxed);
    assert!(
        (25..=75).contains(&copied),
        "{copied} of 100 copied at fraction 0.5"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&Client::connect(p.admin_addr()).get("/stats").body).unwrap();
    let shadow_stats = &v["total"]["clusters"][1]["mirror"];
    println!(
        "stalled shadow: slowest primary request {slowest:?}; {copied} copies; {shadow_stats}"
    );
}
