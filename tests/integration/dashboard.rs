//! `/dashboard` in a real browser: headless Chromium loads the page from a
//! ringway under load, runs its script (several one-second refreshes),
//! and the figures it renders match `/stats`; no script error reaches the
//! console, and a screenshot is taken.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_tests::client::Client;
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Run headless Chromium on `url` with `args`; returns (stdout, stderr).
fn browse(bin: &str, profile: &Path, args: &[&str], url: &str) -> (String, String) {
    let out = Command::new("timeout")
        .arg("60")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The text of the element whose `data-k` is `key`, as a number.
fn shown(dom: &str, key: &str) -> Option<u64> {
    let needle = format!("data-k=\"{key}\">");
    let at = dom.find(&needle)? + needle.len();
    let text = &dom[at..at + dom[at..].find('<')?];
    text.replace(',', "").trim().parse().ok()
}

fn stats(admin: SocketAddr) -> serde_json::Value {
    let r = Client::connect(admin).get("/stats");
    assert_eq!(r.status(), 200, "{r}");
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn dashboard_renders_live_figures_in_a_browser() {
    let Some(bin) = chromium() else {
        println!(
            "SKIP dashboard_renders_live_figures_in_a_browser: no chromium (Debian package `chromium`; ./run.sh test installs it as root)"
        );
        return;
    };
    let dir = TestDir::new("dashboard");
    let origin = Origin::start();
    let config = Config::new()
        .listener("public")
        .route("public", "/api", "app", &[("name", "\"api\"")])
        .route("public", "/", "app", &[("name", "\"rest\"")])
        .cluster("app", &[origin.addr()], &[])
        .admin();
    let proxy = Proxy::start(&dir, &config);
    let (addr, admin) = (proxy.addr("public"), proxy.admin_addr());

    // Load: two keep-alive clients on /api until told to stop (at most
    // 30 s), and a few requests on the other route.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let until = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    assert_eq!(c.get("/api/items").status(), 200);
                    sent.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    let mut c = Client::connect(addr);
    for _ in 0..7 {
        assert_eq!(c.get("/other").status(), 200);
    }
    std::thread::sleep(Duration::from_millis(2500));

    let url = format!("http://{admin}/dashboard");
    let t0 = Instant::now();
    let (dom, log) = browse(
        bin,
        &dir.join("chromium"),
        &["--virtual-time-budget=4000", "--dump-dom"],
        &url,
    );
    let after = stats(admin);
    let took = t0.elapsed();
    let rate = sent.load(Ordering::Relaxed) as f64 / 2.5_f64.max(t0.elapsed().as_secs_f64());

    // The script ran, refreshed more than once, and raised nothing.
    assert!(
        dom.contains("data-refreshes=\""),
        "the script never rendered:\n{dom}\n{log}"
    );
    let refreshes: u32 = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(refreshes >= 2, "{refreshes} refreshes:\n{dom}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        dom.contains("<div id=\"errors\"></div>"),
        "script errors shown:\n{dom}"
    );

    // The figures match /stats within one refresh (plus the browser's
    // run time): the page's count is at most what /stats says now, and
    // behind by no more than the requests of those seconds.
    let route = |name: &str| {
        after["total"]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let api_now = route("api")["requests"].as_u64().unwrap();
    let api_shown = shown(&dom, "route:api:requests").expect("api requests shown");
    let slack = (rate * (took.as_secs_f64() + 2.0)) as u64 + 50;
    assert!(
        api_shown <= api_now && api_now - api_shown <= slack,
        "page shows {api_shown} api requests, /stats {api_now} (slack {slack})"
    );
    assert!(api_shown > 100, "{api_shown}");
    // A quiet route is exact.
    assert_eq!(shown(&dom, "route:rest:requests"), Some(7));
    assert_eq!(route("rest")["requests"], 7);
    // Counters of one refresh are read one after another while requests
    // complete: the listener's total is within a few of the routes'.
    let listener_shown = shown(&dom, "listener:public:requests").unwrap();
    assert!(
        listener_shown + 50 >= api_shown + 7,
        "listener {listener_shown}, api {api_shown}"
    );
    assert_eq!(shown(&dom, "cluster:app:endpoints"), Some(1));
    assert_eq!(shown(&dom, "generation"), Some(1));
    // Both workers are listed, with their cores.
    assert!(dom.contains("data-k=\"worker:0:worker\""), "{dom}");
    assert!(dom.contains("data-k=\"worker:1:worker\""), "{dom}");
    // The endpoint's health: this cluster has no checks.
    let health = format!(
        "data-k=\"endpoint:app/{}:health\">unchecked<",
        origin.addr()
    );
    assert!(dom.contains(&health), "{health} not in:\n{dom}");
    let ejections = format!("data-k=\"endpoint:app/{}:ejections\">0<", origin.addr());
    assert!(dom.contains(&ejections), "{ejections} not in:\n{dom}");
    // Sparklines drew a line once the history had two points.
    assert!(dom.contains("<polyline"), "no sparkline:\n{dom}");

    // A screenshot, kept with the test files.
    let png = dir.join("dashboard.png");
    let shot = format!("--screenshot={}", png.display());
    let (_, log) = browse(
        bin,
        &dir.join("chromium"),
        &["--virtual-time-budget=3000", &shot],
        &url,
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{log}"));
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );

    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
}
