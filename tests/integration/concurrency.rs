//! Many concurrent clients: every response matches its request.

use ringway_tests::client::{Client, Request};
use ringway_tests::setup::Setup;

#[test]
fn concurrent_clients_get_their_own_answers() {
    const CLIENTS: usize = 32;
    const REQUESTS: usize = 25;
    let s = Setup::new("concurrency", |c| c.runtime("workers", "2"));
    let addr = s.addr();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..REQUESTS {
                    let body = format!("client {t} request {i} ").repeat(1 + (t * i) % 50);
                    let req = if i % 2 == 0 {
                        Request::post(&format!("/c/{t}/{i}")).body(body.clone())
                    } else {
                        Request::post(&format!("/c/{t}/{i}")).chunked(body.as_bytes(), &[7, 100])
                    };
                    let r = c.request(&req);
                    assert_eq!(r.status(), 200, "client {t} request {i}: {r}");
                    assert_eq!(r.body_str(), body, "client {t} request {i}");
                    assert_eq!(
                        r.header("x-echo-target"),
                        Some(format!("/c/{t}/{i}").as_str())
                    );
                }
            })
        })
        .collect();
    let mut failed = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        if let Err(e) = h.join() {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("client {t}: {msg}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} clients failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert_eq!(s.origin.request_count(), CLIENTS * REQUESTS);
}
