//! File discovery: a cluster's `endpoints_file` is watched, and endpoints
//! added and removed there take traffic (or stop) while requests run,
//! without a reload and without a failed request; a broken file keeps the
//! running set.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_tests::client::Client;
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

fn wait(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn endpoints_file_changes_apply_while_requests_run() {
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let dir = TestDir::new("discovery-file");
    let write = |eps: &[std::net::SocketAddr]| {
        let list: Vec<String> = eps.iter().map(|e| format!("\"{e}\"")).collect();
        // Write then rename: the watcher never sees half a file.
        std::fs::write(dir.join("eps.json.tmp"), format!("[{}]", list.join(", "))).unwrap();
        std::fs::rename(dir.join("eps.json.tmp"), dir.join("eps.json")).unwrap();
    };
    write(&[a.addr()]);
    let config = Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[], &[("endpoints_file", &q("eps.json"))])
        .section("reload", "interval", &q("100ms"))
        .admin();
    // `cluster` wrote `endpoints = []`: drop it.
    let toml = config.to_toml().replace("endpoints = []\n", "");
    let proxy = Proxy::start_toml(&dir, &toml, &[]);
    let addr = proxy.addr("public");

    // ringload runs throughout the changes below, and so do requests on
    // fresh and kept connections.
    let ringload = ringway_tests::load::Load::start(
        "endpoints_file_changes_apply_while_requests_run",
        &format!("http://{addr}/load"),
        8,
        400,
        "5s",
    );
    // Requests run the whole time, on fresh and kept connections.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..2)
        .map(|t| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let until = Instant::now() + Duration::from_secs(30);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    if t == 1 && i % 10 == 0 {
                        c = Client::connect(addr);
                    }
                    let r = c.get(&format!("/d/{i}"));
                    if r.status() == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    wait("first requests", Duration::from_secs(5), || {
        a.request_count() > 20
    });
    assert_eq!(b.request_count(), 0);

    // Added: b takes traffic.
    write(&[a.addr(), b.addr()]);
    wait("b to take traffic", Duration::from_secs(5), || {
        b.request_count() > 20
    });
    let v: serde_json::Value =
        serde_json::from_slice(&Client::connect(proxy.admin_addr()).get("/clusters").body).unwrap();
    let eps = v["clusters"][0]["endpoints"].as_array().unwrap().clone();
    assert_eq!(eps.len(), 2, "{v}");
    assert!(eps.iter().all(|e| e["source"] == "file"), "{v}");

    // Removed: a stops getting requests.
    write(&[b.addr()]);
    wait("a to leave", Duration::from_secs(5), || {
        let before = a.request_count();
        std::thread::sleep(Duration::from_millis(300));
        a.request_count() == before
    });

    // A broken file is refused: the running set (b) stays.
    std::fs::write(dir.join("eps.json"), "[\"not an endpoint").unwrap();
    assert!(proxy.wait_stderr_contains("eps.json", Duration::from_secs(5)));
    let before = b.request_count();
    wait("b to keep serving", Duration::from_secs(5), || {
        b.request_count() > before + 20
    });

    if let Some(l) = ringload {
        let n = l.assert_no_failure();
        println!("endpoints file changes: {n} ringload requests, none failed");
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests during discovery"
    );
    assert!(ok.load(Ordering::Relaxed) > 100);
}

#[test]
fn endpoints_file_problems_are_config_errors() {
    let dir = TestDir::new("discovery-check");
    std::fs::write(
        dir.join("eps.json"),
        "[{\"address\": \"127.0.0.1:1\", \"port\": 2}]",
    )
    .unwrap();
    let toml = Config::new()
        .listener("public")
        .route("public", "/", "app", &[])
        .cluster("app", &[], &[("endpoints_file", &q("eps.json"))])
        .to_toml()
        .replace("endpoints = []\n", "");
    std::fs::write(dir.join("ringway.toml"), &toml).unwrap();
    let out = ringway_tests::proxy::run_ringway(
        &["check", "-c", dir.join("ringway.toml").to_str().unwrap()],
        None,
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.all().contains("cluster[0].endpoints_file"), "{out}");
    assert!(out.all().contains("unknown key \"port\""), "{out}");
}
