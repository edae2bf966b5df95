//! A drain under load loses nothing: `ringload` keeps 50 keep-alive
//! connections busy (the origin answers in 5 ms) while ringway gets
//! SIGTERM. Every request that was sent on an open connection gets its
//! answer: no reset, no early close, no truncated response. Connections
//! the client opens after the listeners closed are refused (that is how a
//! client learns to go elsewhere), and are counted apart.

use std::time::Duration;

use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{ringload_bin, Proxy};

/// Runs of the whole scenario (the target: 0 resets in 20 runs).
const RUNS: usize = 20;

#[test]
fn sigterm_under_load_resets_nothing() {
    let Some(ringload) = ringload_bin() else {
        println!("SKIP sigterm_under_load_resets_nothing: ringload binary not built (cargo build --workspace --bins)");
        return;
    };
    let origin = Origin::start();
    let runs: usize = std::env::var("RINGWAY_DRAIN_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS);
    let mut totals = (0u64, 0u64);
    for run in 0..runs {
        let dir = TestDir::new(&format!("drain-load-{run}"));
        let config = Config::new()
            .runtime("workers", "2")
            .listener("public")
            .route("public", "/", "app", &[])
            .cluster("app", &[origin.addr()], &[]);
        let mut proxy = Proxy::start(&dir, &config);
        let url = format!("http://{}/delay/5", proxy.addr("public"));
        let load = std::process::Command::new(&ringload)
            .args(["run", "-c", "50", "-t", "1", "-d", "1500ms", "--json", &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ringload");
        std::thread::sleep(Duration::from_millis(700));
        proxy.sigterm();
        assert!(
            proxy.wait_exit(Duration::from_secs(15)).is_some(),
            "run {run}: ringway did not exit"
        );
        let out = load.wait_with_output().unwrap();
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "run {run}: {e}: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let requests = r["requests"].as_u64().unwrap_or(0);
        assert!(requests > 100, "run {run}: {r}");
        for kind in ["reset", "closed", "malformed", "timeout", "io"] {
            assert_eq!(
                r["errors"][kind].as_u64(),
                Some(0),
                "run {run}: {kind} errors during the drain: {}",
                r["errors"]
            );
        }
        let answered = r["status_counts"]["200"].as_u64().unwrap_or(0);
        assert_eq!(answered, requests, "run {run}: {r}");
        totals.0 += requests;
        totals.1 += r["errors"]["connect"].as_u64().unwrap_or(0);
    }
    println!(
        "drain under load: {runs} runs, {} requests answered, 0 resets or early closes; {} connects refused after the listeners closed",
        totals.0, totals.1
    );
}
