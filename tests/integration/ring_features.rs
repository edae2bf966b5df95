//! `[runtime] ring_features` (issue #18): io_uring features beyond
//! monoio's own, probed at start, reported in the start-up summary and in
//! `/workers`, and overridden by `RINGWAY_RING_FEATURES` (the suite runs a
//! second time with every feature on: `./run.sh test`).

use ringway_tests::client::{Client, Request};
use ringway_tests::config::q;
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::check_config;
use ringway_tests::setup::Setup;

/// Whether the suite runs with `RINGWAY_RING_FEATURES` set (it wins over
/// the file, so the file's choice is not what runs).
fn overridden() -> bool {
    std::env::var_os("RINGWAY_RING_FEATURES").is_some()
}

/// Requests of several shapes through `s`: keep-alive GETs, a body that
/// arrives in parts, a new connection per request.
fn traffic(s: &Setup) {
    let mut c = s.client();
    for i in 0..50 {
        let r = c.request(&Request::get(&format!("/rf/{i}")));
        assert_eq!(r.status(), 200, "{r}");
    }
    let body = vec![b'b'; 200_000];
    let r = c.request(&Request::post("/rf/upload").body(body));
    assert_eq!(r.status(), 200, "{r}");
    for i in 0..20 {
        let r = s.client().request(&Request::get(&format!("/rf/new/{i}")));
        assert_eq!(r.status(), 200, "{r}");
    }
}

/// The `ring_features` list of each worker in `/workers`.
fn worker_features(s: &Setup) -> Vec<Vec<String>> {
    let r = Client::connect(s.proxy.admin_addr()).get("/workers");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w["ring_features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn recv_poll_first_serves_and_is_reported() {
    let s = Setup::new("ring-features-on", |c| {
        c.runtime("ring_features", "[\"recv_poll_first\"]")
            .runtime("workers", "2")
            .admin()
    });
    let out = s.proxy.stdout();
    if !out.contains("driver io_uring") {
        println!("SKIP ring features: io_uring is not available here (epoll fallback)");
        return;
    }
    if out.contains("ringway: ring features: none") && !overridden() {
        // The probe refused it: only a kernel older than 5.19 does.
        println!("SKIP recv_poll_first: this kernel refuses IORING_RECVSEND_POLL_FIRST\n{out}");
        return;
    }
    if !overridden() {
        assert!(
            out.contains("ringway: ring features: recv_poll_first\n"),
            "{out}"
        );
        assert_eq!(
            worker_features(&s),
            vec![vec!["recv_poll_first".to_owned()]; 2]
        );
    }
    traffic(&s);
}

#[test]
fn no_ring_feature_by_default_and_an_unknown_one_is_refused() {
    let s = Setup::new("ring-features-default", |c| c.admin());
    let out = s.proxy.stdout();
    if !overridden() && out.contains("driver io_uring") {
        assert!(
            out.contains("ringway: ring features: none (off: recv_poll_first;"),
            "{out}"
        );
        assert!(
            worker_features(&s).iter().all(|f| f.is_empty()),
            "{:?}",
            worker_features(&s)
        );
    }
    traffic(&s);

    let dir = TestDir::new("ring-features-check");
    let cfg = format!(
        "[runtime]\nworkers = 1\nring_features = [\"recv_poll_first\", {}]\n",
        q("fixed_buffers")
    );
    let out = check_config(&dir, "bad.toml", &cfg);
    let all = out.all();
    assert_ne!(out.code(), Some(0), "{all}");
    assert!(all.contains("runtime.ring_features[1]"), "{all}");
    assert!(
        all.contains("unknown ring feature \"fixed_buffers\""),
        "{all}"
    );
    assert!(all.contains("line 3"), "{all}");
}
