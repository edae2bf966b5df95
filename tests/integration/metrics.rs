//! The admin listener: `/metrics` counts exactly what was sent, the output
//! parses with real Prometheus parsers, `/ready` turns 503 while draining,
//! and the JSON endpoints, `/live`, 404 and 405.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringway_tests::certs::Ca;
use ringway_tests::client::{Client, Request, Response};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{parse_admin_line, Proxy};

/// `GET path` (or another method) on the admin listener.
fn admin(addr: SocketAddr, method: &str, path: &str) -> Response {
    let mut c = Client::connect(addr);
    let r = c.request(&Request::new(method, path).host("admin"));
    assert_eq!(r.header("connection"), Some("close"), "{r}");
    r
}

fn admin_get(addr: SocketAddr, path: &str) -> Response {
    admin(addr, "GET", path)
}

fn json(r: &Response) -> serde_json::Value {
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r}");
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body_str()))
}

/// A scrape, read with the `prometheus-parse` crate.
struct Scrape {
    text: String,
    parsed: prometheus_parse::Scrape,
}

impl Scrape {
    fn get(addr: SocketAddr) -> Scrape {
        let r = admin_get(addr, "/metrics");
        assert_eq!(r.status(), 200, "{r}");
        let ct = r.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = r.body_str();
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("prometheus-parse");
        Scrape { text, parsed }
    }

    /// Sum of the counter/gauge/untyped samples `name` whose labels include
    /// all of `with`; None when there is no such sample.
    fn sum(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for s in &self.parsed.samples {
            if s.metric != name || !with.iter().all(|(k, v)| s.labels.get(k) == Some(*v)) {
                continue;
            }
            let v = match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{name}: not a plain sample: {other:?}"),
            };
            *found.get_or_insert(0.0) += v;
        }
        found
    }

    fn value(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.sum(name, with)
            .unwrap_or_else(|| panic!("no {name} {with:?} in\n{}", self.text))
    }

    /// Quantile `q` of the summary `name` whose labels include `with`.
    fn quantile(&self, name: &str, with: &[(&str, &str)], q: f64) -> f64 {
        let s = self
            .parsed
            .samples
            .iter()
            .find(|s| s.metric == name && with.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {with:?} in\n{}", self.text));
        let prometheus_parse::Value::Summary(qs) = &s.value else {
            panic!("{name}: not a summary: {s:?}");
        };
        qs.iter()
            .find(|x| x.quantile == q)
            .unwrap_or_else(|| panic!("{name}: no quantile {q}: {qs:?}"))
            .count
    }

    /// Every sample line of the text was understood by the parser.
    fn check_complete(&self) {
        let lines = self
            .text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        let parsed: usize = self
            .parsed
            .samples
            .iter()
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(b) => b.len(),
                prometheus_parse::Value::Summary(q) => q.len(),
                _ => 1,
            })
            .sum();
        assert_eq!(parsed, lines, "samples the parser skipped:\n{}", self.text);
        for name in self.parsed.docs.keys() {
            assert!(name.starts_with("ringway_"), "{name}");
        }
    }
}

/// Checks the text with Python's `prometheus_client` parser; prints why and
/// returns false when python3 or the module is missing.
fn python_parses(text: &str) -> bool {
    use std::io::Write;
    const SCRIPT: &str = "import sys\ntry:\n    from prometheus_client.parser import text_string_to_metric_families\nexcept ImportError as e:\n    print('SKIP: %s' % e)\n    sys.exit(0)\nn = sum(len(f.samples) for f in text_string_to_metric_families(sys.stdin.read()))\nprint('OK %d' % n)\n";
    let child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("skipping the prometheus_client check: python3 not found");
        return false;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "prometheus_client rejected /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(reason) = stdout.strip_prefix("SKIP: ") {
        println!(
            "skipping the prometheus_client check: {} (pip install prometheus_client)",
            reason.trim()
        );
        return false;
    }
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert_eq!(stdout.trim(), format!("OK {samples}"), "{text}");
    true
}

/// Polls `/metrics` until `done(scrape)` or `timeout`; returns the last one.
fn scrape_until(addr: SocketAddr, timeout: Duration, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + timeout;
    loop {
        let s = Scrape::get(addr);
        if done(&s) || Instant::now() >= deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Three routes over one cluster: `slow` (`/delay/`), `codes` (`/status/`)
/// and `rest` (everything else), 2 workers, admin on a free port,
/// histograms published every 50 ms.
fn three_routes(origin: &Origin) -> Config {
    Config::new()
        .runtime("workers", "2")
        .listener("public")
        .route("public", "/delay/", "app", &[("name", &q("slow"))])
        .route("public", "/status/", "app", &[("name", &q("codes"))])
        .route("public", "/", "app", &[("name", &q("rest"))])
        .cluster("app", &[origin.addr()], &[])
        .admin()
        .section("stats", "publish_interval", &q("50ms"))
}

/// (route, path, status): 5 + 7 + 9 = 21 requests.
fn plan() -> Vec<(&'static str, &'static str, u16)> {
    let mut v = Vec::new();
    v.extend(std::iter::repeat_n(("slow", "/delay/5", 200), 5));
    v.extend(std::iter::repeat_n(("codes", "/status/404", 404), 4));
    v.extend(std::iter::repeat_n(("codes", "/status/503", 503), 3));
    v.extend(std::iter::repeat_n(("rest", "/anything", 200), 9));
    v
}

/// Sends the plan, one connection per request (so the kernel spreads them
/// over both workers' `SO_REUSEPORT` sockets). Returns requests per route.
fn send_plan(proxy: &Proxy) -> HashMap<&'static str, u64> {
    let addr = proxy.addr("public");
    let mut per_route = HashMap::new();
    for (route, path, status) in plan() {
        let r = Client::connect(addr).get(path);
        assert_eq!(r.status(), status, "{path}: {r}");
        *per_route.entry(route).or_insert(0) += 1;
    }
    per_route
}

#[test]
fn metrics_count_exactly_the_requests_sent() {
    let dir = TestDir::new("metrics-exact");
    let origin = Origin::start();
    let proxy = Proxy::start(&dir, &three_routes(&origin));
    let admin_addr = proxy.admin_addr();
    assert!(admin_addr.ip().is_loopback());

    let per_route = send_plan(&proxy);
    let n: u64 = per_route.values().sum();
    assert_eq!(n, 21);

    // Counters are updated when a request completes and histograms are
    // published every 50 ms: wait until every route's histogram has them.
    let settled = |s: &Scrape| {
        per_route.iter().all(|(route, want)| {
            s.sum(
                "ringway_request_duration_seconds_count",
                &[("route", route)],
            ) == Some(*want as f64)
                && s.sum("ringway_requests_total", &[("route", route)]) == Some(*want as f64)
        })
    };
    let s = scrape_until(admin_addr, Duration::from_secs(10), settled);
    s.check_complete();

    for (route, want) in &per_route {
        let want = *want as f64;
        let labels = [("listener", "public"), ("route", *route)];
        assert_eq!(s.value("ringway_requests_total", &labels), want, "{route}");
        let r = [("route", *route)];
        assert_eq!(
            s.value("ringway_request_duration_seconds_count", &r),
            want,
            "{route}"
        );
        assert_eq!(
            s.value("ringway_request_duration_seconds_quantiles_count", &r),
            want,
            "{route}"
        );
        // The histogram's +Inf bucket holds every request.
        let hist = s
            .parsed
            .samples
            .iter()
            .find(|x| {
                x.metric == "ringway_request_duration_seconds"
                    && x.labels.get("route") == Some(*route)
            })
            .unwrap_or_else(|| panic!("no histogram for {route}"));
        let prometheus_parse::Value::Histogram(buckets) = &hist.value else {
            panic!("{hist:?}");
        };
        let last = buckets.last().unwrap();
        assert!(last.less_than.is_infinite(), "{buckets:?}");
        assert_eq!(last.count, want, "{route}");
        assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    }
    assert_eq!(
        s.value("ringway_requests_total", &[]),
        n as f64,
        "sum over routes"
    );
    // The slow route's requests took at least 5 ms.
    let p50 = s.quantile(
        "ringway_request_duration_seconds_quantiles",
        &[("route", "slow")],
        0.5,
    );
    assert!(p50 >= 0.005, "p50 of /delay/5 = {p50}");

    // Responses by class and code.
    let class = |route: &str, c: &str| {
        s.value(
            "ringway_responses_total",
            &[("route", route), ("code_class", c)],
        )
    };
    assert_eq!(class("slow", "2xx"), 5.0);
    assert_eq!(class("codes", "4xx"), 4.0);
    assert_eq!(class("codes", "5xx"), 3.0);
    assert_eq!(class("rest", "2xx"), 9.0);
    assert_eq!(class("rest", "5xx"), 0.0);
    let code = |c: &str| {
        s.value(
            "ringway_responses_by_code_total",
            &[("route", "codes"), ("code", c)],
        )
    };
    assert_eq!(code("404"), 4.0);
    assert_eq!(code("503"), 3.0);

    // Listener, cluster and endpoint views agree.
    let public = [("listener", "public")];
    assert_eq!(s.value("ringway_listener_requests_total", &public), 21.0);
    assert_eq!(
        s.value("ringway_downstream_connections_total", &public),
        21.0
    );
    assert_eq!(
        s.value("ringway_upstream_requests_total", &[("cluster", "app")]),
        21.0
    );
    let ep = origin.addr().to_string();
    let ep_labels = [("cluster", "app"), ("endpoint", ep.as_str())];
    assert_eq!(
        s.value("ringway_upstream_endpoint_requests_total", &ep_labels),
        21.0
    );
    let new = s.value(
        "ringway_upstream_connections_total",
        &[("endpoint", ep.as_str()), ("kind", "new")],
    );
    let reused = s.value(
        "ringway_upstream_connections_total",
        &[("endpoint", ep.as_str()), ("kind", "reused")],
    );
    assert!(new >= 1.0, "new upstream connections: {new}");
    assert_eq!(new + reused, 21.0, "one upstream connection per request");
    assert_eq!(
        s.value(
            "ringway_upstream_duration_seconds_count",
            &[("cluster", "app")]
        ),
        21.0
    );
    assert_eq!(s.value("ringway_workers", &[]), 2.0);
    assert!(s.value("ringway_uptime_seconds", &[]) > 0.0);

    // Both workers served some of them.
    let w = json(&admin_get(admin_addr, "/workers"));
    let workers = w["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let served: Vec<u64> = workers
        .iter()
        .map(|w| w["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(served.iter().sum::<u64>(), 21, "{w}");
    assert!(served.iter().all(|n| *n > 0), "one worker got nothing: {w}");

    // io_uring telemetry for workers on io_uring.
    for (i, wk) in workers.iter().enumerate() {
        let driver = wk["driver"].as_str().unwrap_or_default();
        if driver.starts_with("io_uring") {
            let id = i.to_string();
            let sub = s.value("ringway_worker_ring_submissions_total", &[("worker", &id)]);
            assert!(sub > 0.0, "worker {i}: no submissions");
            assert!(s.value("ringway_worker_ring_entries", &[("worker", &id)]) >= 2.0);
            assert!(wk["ring"]["submissions"].as_u64().unwrap() > 0, "{wk}");
        } else {
            println!("worker {i} runs {driver:?}: no ring telemetry to check");
        }
    }

    python_parses(&s.text);
}

#[test]
fn proxy_added_latency_excludes_the_upstream_time() {
    let dir = TestDir::new("metrics-proxy-added");
    let origin = Origin::start();
    let proxy = Proxy::start(&dir, &three_routes(&origin));
    let admin_addr = proxy.admin_addr();
    let addr = proxy.addr("public");
    // The origin sleeps 250 ms before its response head: upstream time.
    for _ in 0..4 {
        let r = Client::connect(addr).get("/delay/250");
        assert_eq!(r.status(), 200, "{r}");
    }
    let slow = [("route", "slow")];
    let s = scrape_until(admin_addr, Duration::from_secs(10), |s| {
        s.sum("ringway_route_proxy_added_seconds_count", &slow) == Some(4.0)
    });
    s.check_complete();
    assert_eq!(
        s.value("ringway_route_proxy_added_seconds_count", &slow),
        4.0
    );
    assert_eq!(
        s.value("ringway_route_proxy_added_seconds_quantiles_count", &slow),
        4.0
    );
    // Total and upstream time both include the origin's delay...
    let total = s.quantile("ringway_request_duration_seconds_quantiles", &slow, 0.5);
    assert!(total >= 0.25, "request duration p50 = {total}");
    let upstream = s.quantile(
        "ringway_upstream_duration_seconds_quantiles",
        &[("cluster", "app")],
        0.5,
    );
    assert!(upstream >= 0.25, "upstream p50 = {upstream}");
    // ...what ringway added is far below it.
    let added = s.quantile("ringway_route_proxy_added_seconds_quantiles", &slow, 0.999);
    assert!(added < 0.05, "proxy-added p99.9 = {added}");
    let hist = s
        .parsed
        .samples
        .iter()
        .find(|x| {
            x.metric == "ringway_route_proxy_added_seconds" && x.labels.get("route") == Some("slow")
        })
        .unwrap_or_else(|| panic!("no proxy-added histogram:\n{}", s.text));
    let prometheus_parse::Value::Histogram(buckets) = &hist.value else {
        panic!("{hist:?}");
    };
    let under = |le: f64| buckets.iter().find(|b| b.less_than == le).unwrap().count;
    assert_eq!(under(0.1), 4.0, "{buckets:?}");
    assert_eq!(under(f64::INFINITY), 4.0, "{buckets:?}");

    // The same in /stats.
    let stats = json(&admin_get(admin_addr, "/stats"));
    let route = stats["total"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "slow")
        .unwrap()
        .clone();
    assert_eq!(route["proxy_latency"]["count"], 4, "{route}");
    let max = route["proxy_latency"]["max_us"].as_u64().unwrap();
    assert!(max < 50_000, "{route}");
    assert!(
        route["latency"]["min_us"].as_u64().unwrap() >= 240_000,
        "{route}"
    );
    python_parses(&s.text);
}

#[test]
fn per_worker_series_add_up() {
    let dir = TestDir::new("metrics-per-worker");
    let origin = Origin::start();
    let config = three_routes(&origin).section("stats", "per_worker", "true");
    let proxy = Proxy::start(&dir, &config);
    let admin_addr = proxy.admin_addr();
    let per_route = send_plan(&proxy);
    let settled = |s: &Scrape| {
        per_route.iter().all(|(route, want)| {
            s.sum(
                "ringway_request_duration_seconds_count",
                &[("route", route)],
            ) == Some(*want as f64)
        })
    };
    let s = scrape_until(admin_addr, Duration::from_secs(10), settled);
    s.check_complete();
    for (route, want) in &per_route {
        let w0 = s
            .sum(
                "ringway_requests_total",
                &[("route", route), ("worker", "0")],
            )
            .unwrap();
        let w1 = s
            .sum(
                "ringway_requests_total",
                &[("route", route), ("worker", "1")],
            )
            .unwrap();
        assert_eq!(w0 + w1, *want as f64, "{route}");
        let c0 = s.value(
            "ringway_request_duration_seconds_count",
            &[("route", route), ("worker", "0")],
        );
        let c1 = s.value(
            "ringway_request_duration_seconds_count",
            &[("route", route), ("worker", "1")],
        );
        assert_eq!(c0 + c1, *want as f64, "{route}");
    }
    // Every data series has a worker label.
    for sample in &s.parsed.samples {
        let process_wide = [
            "ringway_build_info",
            "ringway_uptime_seconds",
            "ringway_workers",
            "ringway_draining",
            "ringway_config_generation",
            "ringway_reloads_total",
        ]
        .contains(&sample.metric.as_str());
        assert_eq!(
            sample.labels.get("worker").is_some(),
            !process_wide,
            "{sample:?}"
        );
    }
    let stats = json(&admin_get(admin_addr, "/stats"));
    let by = stats["by_worker"].as_array().expect("by_worker");
    assert_eq!(by.len(), 2);
    python_parses(&s.text);
}

#[test]
fn ready_turns_503_while_draining() {
    let dir = TestDir::new("metrics-drain");
    let origin = Origin::start();
    let config = Config::simple(origin.addr())
        .runtime("drain_timeout", &q("5s"))
        .admin();
    let mut proxy = Proxy::start(&dir, &config);
    let admin_addr = proxy.admin_addr();
    assert_eq!(admin_get(admin_addr, "/ready").status(), 200);
    assert_eq!(admin_get(admin_addr, "/ready").body_str(), "ready\n");

    let mut c = Client::connect(proxy.addr("public"));
    c.send(&Request::get("/delay/1500").to_bytes());
    std::thread::sleep(Duration::from_millis(200));
    proxy.sigterm();

    let t = Instant::now();
    let mut status = 0;
    while t.elapsed() < Duration::from_secs(1) {
        status = admin_get(admin_addr, "/ready").status();
        if status == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        status,
        503,
        "/ready during drain\n{}",
        proxy.output_report()
    );
    // Still alive, and the scrape still works while draining.
    assert_eq!(admin_get(admin_addr, "/live").status(), 200);
    let s = Scrape::get(admin_addr);
    assert_eq!(s.value("ringway_draining", &[]), 1.0);

    // The in-flight request finishes.
    let r = c.read_response();
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.body_str(), "delayed 1500");
    let exit = proxy.wait_exit(Duration::from_secs(8));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
}

#[test]
fn admin_endpoints() {
    let dir = TestDir::new("metrics-endpoints");
    let origin = Origin::start();
    let ca = Ca::new("admin test ca");
    let leaf = ca.issue(&["localhost"]);
    let (cert, key) = leaf.write(dir.path(), "server-secret");
    let tls = format!(
        "{{ cert = {}, key = {} }}",
        q(&cert.display().to_string()),
        q(&key.display().to_string())
    );
    let config = Config::new()
        .listener("public")
        .listener_with("secure", &[("tls", &tls)])
        .route("public", "/", "app", &[("name", &q("main"))])
        .route("secure", "/", "app", &[("name", &q("tls-main"))])
        .cluster("app", &[origin.addr()], &[])
        .admin();
    let proxy = Proxy::start(&dir, &config);
    let addr = proxy.admin_addr();
    assert!(
        proxy
            .stdout()
            .contains(&format!("ringway: admin on {addr}")),
        "{}",
        proxy.stdout()
    );
    for _ in 0..3 {
        assert_eq!(
            Client::connect(proxy.addr("public")).get("/x").status(),
            200
        );
    }

    // /live
    let r = admin_get(addr, "/live");
    assert_eq!(r.status(), 200);
    assert_eq!(r.body_str(), "live\n");

    // /config: the effective config, TLS key path redacted.
    let r = admin_get(addr, "/config");
    let body = r.body_str();
    let key_path = key.display().to_string();
    assert!(!body.contains(&key_path), "key path not redacted: {body}");
    assert!(!body.contains("server-secret.key"), "{body}");
    let v = json(&r);
    let listeners = v["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2);
    assert_eq!(listeners[1]["name"], "secure");
    assert_eq!(listeners[1]["tls"]["key"], "<redacted>");
    assert_eq!(
        listeners[1]["tls"]["cert"].as_str(),
        Some(cert.display().to_string().as_str())
    );
    assert!(listeners[0]["tls"].is_null());
    assert_eq!(v["routes"][1]["name"], "tls-main");
    assert_eq!(v["routes"][1]["listener"], "secure");
    assert_eq!(v["clusters"][0]["name"], "app");
    assert_eq!(
        v["clusters"][0]["endpoints"][0]["address"],
        origin.addr().to_string()
    );
    assert_eq!(v["runtime"]["workers"], 2);
    assert_eq!(v["runtime"]["drain_timeout"], "5s");
    assert_eq!(v["admin"]["address"], "127.0.0.1:0");

    // /workers (counters are bumped as requests complete: allow a moment).
    let requests_seen = || {
        let w = json(&admin_get(addr, "/workers"));
        let total: u64 = w["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["requests"].as_u64().unwrap())
            .sum();
        (total, w)
    };
    let t = Instant::now();
    let (mut total, mut w) = requests_seen();
    while total < 3 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        (total, w) = requests_seen();
    }
    let workers = w["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for (i, wk) in workers.iter().enumerate() {
        assert_eq!(wk["worker"], i);
        let driver = wk["driver"].as_str().unwrap_or_default();
        assert!(
            driver.starts_with("io_uring") || driver.starts_with("epoll"),
            "{wk}"
        );
        assert!(wk["connections_active"].is_i64(), "{wk}");
    }
    assert_eq!(total, 3, "{w}");

    // /stats (counters are read in place; no need to wait for a publish).
    let st = json(&admin_get(addr, "/stats"));
    assert_eq!(st["workers"], 2);
    assert_eq!(st["draining"], false);
    let routes = st["total"]["routes"].as_array().unwrap();
    assert_eq!(routes[0]["name"], "main");
    assert_eq!(routes[0]["requests"], 3);
    assert_eq!(routes[0]["responses"]["2xx"], 3);
    assert_eq!(routes[1]["requests"], 0);
    assert!(st["by_worker"].is_null());

    // 404, 405, HEAD.
    let r = admin_get(addr, "/nope");
    assert_eq!(r.status(), 404);
    for method in ["POST", "PUT", "DELETE"] {
        let r = admin(addr, method, "/metrics");
        assert_eq!(r.status(), 405, "{method}: {r}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    let mut c = Client::connect(addr);
    let r = c.request(&Request::new("HEAD", "/live"));
    assert_eq!(r.status(), 200);
    assert!(r.body.is_empty());

    // /metrics parses.
    let s = Scrape::get(addr);
    s.check_complete();
    assert_eq!(
        s.value(
            "ringway_requests_total",
            &[("listener", "public"), ("route", "main")]
        ),
        3.0
    );
    python_parses(&s.text);
}

#[test]
fn no_admin_listener_without_admin_table() {
    let dir = TestDir::new("metrics-no-admin");
    let origin = Origin::start();
    let proxy = Proxy::start(&dir, &Config::simple(origin.addr()));
    assert_eq!(proxy.try_admin_addr(Duration::from_millis(300)), None);
    assert!(!proxy.stdout().contains("admin on"));
}

#[test]
fn admin_line_parses() {
    assert_eq!(
        parse_admin_line("ringway: admin on 127.0.0.1:9901"),
        Some("127.0.0.1:9901".parse().unwrap())
    );
    assert_eq!(
        parse_admin_line("ringway: admin on [::1]:1 (loopback)"),
        Some("[::1]:1".parse().unwrap())
    );
    assert_eq!(parse_admin_line("ringway: ready"), None);
}
