//! Coordinated omission: against a `serve` that stalls once for 1 s, the
//! open loop's p99 shows the stall while the closed loop's hides it (each
//! closed-loop connection waits out the stall with one request, so only a
//! handful of samples are slow). The ordering is asserted, not absolute
//! times.

mod common;

use common::{run_json, Serve};

#[test]
fn open_loop_p99_reflects_a_stall_that_closed_loop_hides() {
    // Closed loop: thousands of requests per second; the stall starts
    // after 2000 of them.
    let serve = Serve::start(&["--stall", "1s", "--stall-after", "2000"]);
    let closed = run_json(&[&serve.url("/"), "-d", "3s", "-c", "2", "-t", "1"], 0);
    drop(serve);

    // Open loop at 1000 req/s: the stall starts after ~0.5 s.
    let serve = Serve::start(&["--stall", "1s", "--stall-after", "500"]);
    let open = run_json(
        &[
            &serve.url("/"),
            "-d",
            "3s",
            "-c",
            "2",
            "-t",
            "1",
            "--rate",
            "1000",
        ],
        0,
    );

    let p99 = |r: &serde_json::Value| r["latency_us"]["p99"].as_u64().unwrap();
    let max = |r: &serde_json::Value| r["latency_us"]["max"].as_u64().unwrap();
    eprintln!(
        "closed: p99 {} us, max {} us, {} requests; open: p99 {} us, max {} us, {} requests",
        p99(&closed),
        max(&closed),
        closed["requests"],
        p99(&open),
        max(&open),
        open["requests"]
    );
    // Both runs lived through the stall ...
    assert!(
        max(&closed) >= 500_000,
        "closed loop never saw the stall: {closed}"
    );
    assert!(
        max(&open) >= 500_000,
        "open loop never saw the stall: {open}"
    );
    // ... but only the open loop's percentiles show it.
    assert!(
        p99(&open) > 10 * p99(&closed),
        "open p99 {} should far exceed closed p99 {}",
        p99(&open),
        p99(&closed)
    );
    assert!(p99(&closed) < max(&closed) / 10);
    assert!(p99(&open) >= max(&open) / 2);
    // The open loop kept to its schedule: ~3000 requests in 3 s.
    let n = open["requests"].as_u64().unwrap();
    assert!((2500..=3100).contains(&n), "open loop sent {n}");
    assert_eq!(open["mode"], "open");
    assert_eq!(open["errors_total"], 0);
}
