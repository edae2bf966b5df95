//! Rendering tests: a registry filled by calling the counters directly and
//! publishing histogram snapshots, rendered and read back with real parsers
//! (`prometheus-parse`, a strict checker of the text format below, and the
//! Python `prometheus_client` parser when it is installed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::routes::{handle, Context};
use super::*;
use crate::config::Config;
use crate::stats::layout::{class_of, code_slot};
use crate::stats::{StatsRegistry, WorkerHistograms};

const CONFIG: &str = r#"
[runtime]
workers = 2

[[listener]]
name = "public"
address = "127.0.0.1:0"

[[listener]]
name = "internal"
address = "127.0.0.1:0"

[[route]]
name = "api"
listener = "public"
path_prefix = "/api/"
cluster = "backend"

[[route]]
name = "static"
listener = "public"
path_prefix = "/static/"
cluster = "cdn"

[[route]]
name = "shared"
cluster = "backend"

[[cluster]]
name = "backend"
endpoints = ["127.0.0.1:9001", "127.0.0.1:9002"]

[[cluster]]
name = "cdn"
endpoints = ["127.0.0.1:9003"]

[admin]
listen = "127.0.0.1:0"
"#;

/// One request to record: (worker, route, endpoint of the route's cluster,
/// status, duration in µs, upstream time in µs).
type Req = (usize, usize, usize, u16, u64, u64);

struct Fixture {
    state: Arc<AdminState>,
    hist: Vec<WorkerHistograms>,
}

impl Fixture {
    fn new(extra: &str) -> Fixture {
        let config = Arc::new(Config::parse(&format!("{CONFIG}\n{extra}"), None).unwrap());
        let registry = Arc::new(StatsRegistry::new(config.clone(), 2));
        let hist = (0..2).map(|_| WorkerHistograms::new(&config)).collect();
        Fixture {
            state: Arc::new(AdminState {
                registry,
                reload: None,
                weights: None,
                draining: ShutdownFlag::new(),
                started: Instant::now()
                    .checked_sub(Duration::from_secs(5))
                    .unwrap_or_else(Instant::now),
                ring_features: vec![],
                drivers: vec![
                    "io_uring (single_issuer, defer_taskrun)".into(),
                    "epoll (legacy)".into(),
                ],
                cores: vec![Some(0), None],
            }),
            hist,
        }
    }

    /// Count one request the way the pipeline does, on `worker` (every
    /// request reached an upstream: the proxy added `micros - up_micros`).
    fn record(&self, (worker, route, endpoint, status, micros, up_micros): Req) {
        let config = &self.state.config();
        let w = &self.state.registry.worker(worker);
        let r = &config.routes[route];
        let listener = r.listener.unwrap_or(1);
        let l = &w.listeners[listener];
        l.requests.inc();
        l.bytes_in.add(100);
        l.bytes_out.add(1000);
        let rs = &w.routes[route];
        rs.requests.inc();
        rs.codes[code_slot(status)].inc();
        rs.bytes_in.add(100);
        rs.bytes_out.add(1000);
        let cs = &w.clusters[r.clusters()[0]];
        cs.requests.inc();
        cs.classes[class_of(status)].inc();
        let es = w.endpoint(r.clusters()[0], endpoint);
        es.requests.inc();
        es.classes[class_of(status)].inc();
        if es.requests.get() == 1 {
            es.cx_new.inc();
        } else {
            es.cx_reused.inc();
        }
        self.hist[worker].record(
            listener,
            Some(route),
            Some((r.clusters()[0], endpoint, Duration::from_micros(up_micros))),
            Duration::from_micros(micros),
            Some(Duration::from_micros(micros.saturating_sub(up_micros))),
        );
    }

    /// What the workers do every `publish_interval`.
    fn publish(&self) {
        for (w, h) in self.hist.iter().enumerate() {
            if let Some(set) = h.snapshot() {
                self.state
                    .registry
                    .worker(w)
                    .histograms
                    .store(Arc::new(set));
            }
        }
    }

    /// The standard load: 21 requests over 2 workers and 3 routes.
    fn load(&self) {
        for req in requests() {
            self.record(req);
        }
        let w0 = &self.state.registry.worker(0);
        w0.listeners[0].cx_total.add(3);
        w0.listeners[0].cx_active.add(2);
        w0.listeners[1].cx_active.add(1);
        w0.routes[1].errors[0].add(2); // bad_request
        w0.endpoint(1, 0).connect_failures.inc();
        w0.pool_idle.add(4);
        self.state.registry.worker(1).pool_idle.add(1);
        self.publish();
    }

    fn render(&self) -> String {
        prometheus::render(&self.state, &rings())
    }
}

/// api: 9 requests of 1 ms (200); static: 4 of 20 ms (404); shared: 8 of
/// 300 ms (503), on both workers. The proxy added 200 µs, 5 ms and 50 ms.
fn requests() -> Vec<Req> {
    let mut v = Vec::new();
    for (worker, n_api, n_static, n_shared) in [(0, 5, 3, 2), (1, 4, 1, 6)] {
        for i in 0..n_api {
            v.push((worker, 0, i % 2, 200, 1_000, 800));
        }
        for _ in 0..n_static {
            v.push((worker, 1, 0, 404, 20_000, 15_000));
        }
        for _ in 0..n_shared {
            v.push((worker, 2, 1, 503, 300_000, 250_000));
        }
    }
    v
}

fn rings() -> Vec<Option<RingStats>> {
    vec![
        Some(RingStats {
            submissions: 5_000_000_000,
            completions: 4_999_999_990,
            inflight: 10,
            sq_entries: 1024,
            cq_entries: 2048,
            cq_overflow: 0,
        }),
        None,
    ]
}

// ---------------------------------------------------------------------------
// A strict reader of the text format (0.0.4).

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Exposition {
    /// Family name → type.
    types: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// Samples named `name` whose labels include every pair in `with`.
    fn find(&self, name: &str, with: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && with
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The one sample named `name` with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<_> = self
            .find(name, labels)
            .into_iter()
            .filter(|s| s.labels.len() == labels.len())
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
            s.parse().map_err(|_| format!("bad value {s:?}"))
        }
        _ => Err(format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y\"z"}` → map; rest of the line after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("no =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or }".into());
        }
    }
}

/// Parse and check: grammar, one HELP and TYPE per family before its
/// samples, samples grouped under their family with the suffixes the type
/// allows, no duplicate series, counters named `_total`, histograms with
/// ascending `le`, non-decreasing cumulative counts and `+Inf` = `_count`.
fn strict_parse(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition::default();
    let mut helped: HashSet<String> = HashSet::new();
    let mut current: Option<(String, String)> = None;
    let mut closed: HashSet<String> = HashSet::new();
    let mut series: HashSet<String> = HashSet::new();
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest
                .split_once(' ')
                .ok_or_else(|| err("no help text".into()))?;
            if !helped.insert(name.to_owned()) || closed.contains(name) {
                return Err(err("second HELP".into()));
            }
            if let Some((prev, _)) = current.take() {
                closed.insert(prev);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| err("no type".into()))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(err(format!("unknown type {kind}")));
            }
            if !is_name(name) || exp.types.contains_key(name) || closed.contains(name) {
                return Err(err("bad or repeated TYPE".into()));
            }
            if !helped.contains(name) {
                return Err(err("TYPE without HELP first".into()));
            }
            if !name.starts_with("ringway_") {
                return Err(err("name does not start with ringway_".into()));
            }
            if (kind == "counter") != name.ends_with("_total") {
                return Err(err("counters and only counters end in _total".into()));
            }
            exp.types.insert(name.to_owned(), kind.to_owned());
            current = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(err("unexpected comment or empty line".into()));
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space".into()))?;
        if value.contains(' ') {
            return Err(err("timestamps are not used".into()));
        }
        let value = parse_value(value).map_err(err)?;
        let (family, kind) = current
            .as_ref()
            .ok_or_else(|| err("sample before any TYPE".into()))?;
        let suffix = name
            .strip_prefix(family.as_str())
            .ok_or_else(|| err(format!("sample outside its family {family}")))?;
        let ok = match kind.as_str() {
            "histogram" => {
                (suffix == "_bucket" && labels.contains_key("le"))
                    || ((suffix == "_sum" || suffix == "_count") && !labels.contains_key("le"))
            }
            "summary" => {
                (suffix.is_empty() && labels.contains_key("quantile"))
                    || ((suffix == "_sum" || suffix == "_count")
                        && !labels.contains_key("quantile"))
            }
            _ => suffix.is_empty(),
        };
        if !ok {
            return Err(err(format!("bad sample for {kind} {family}")));
        }
        if kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(err("negative or NaN counter".into()));
        }
        let key = format!("{name}{labels:?}");
        if !series.insert(key) {
            return Err(err("duplicate series".into()));
        }
        exp.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    check_histograms(&exp)?;
    Ok(exp)
}

fn check_histograms(exp: &Exposition) -> Result<(), String> {
    for (family, kind) in &exp.types {
        if kind != "histogram" {
            continue;
        }
        let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in exp.find(&format!("{family}_bucket"), &[]) {
            let mut rest = s.labels.clone();
            let le = parse_value(&rest.remove("le").unwrap())?;
            groups
                .entry(format!("{rest:?}"))
                .or_default()
                .push((le, s.value));
        }
        for (labels, buckets) in groups {
            for pair in buckets.windows(2) {
                if !(pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1) {
                    return Err(format!("{family}{labels}: buckets out of order {pair:?}"));
                }
            }
            let (le, inf) = *buckets.last().unwrap();
            if le != f64::INFINITY {
                return Err(format!("{family}{labels}: no +Inf bucket"));
            }
            let count = exp
                .samples
                .iter()
                .find(|s| {
                    s.name == format!("{family}_count") && format!("{:?}", s.labels) == labels
                })
                .ok_or_else(|| format!("{family}{labels}: no _count"))?;
            if count.value != inf {
                return Err(format!(
                    "{family}{labels}: +Inf {inf} != _count {}",
                    count.value
                ));
            }
        }
    }
    Ok(())
}

/// The output through the `prometheus-parse` crate: (metric, labels) →
/// sample, for cross-checks.
fn crate_parse(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("prometheus-parse")
}

fn crate_value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}");
    match &found[0].value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{name}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------

#[test]
fn metrics_counts_match_what_was_recorded() {
    let f = Fixture::new("");
    f.load();
    let text = f.render();
    let exp = strict_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // Requests per route, over both workers.
    let per_route = [
        ("api", "public", 9.0),
        ("static", "public", 4.0),
        ("shared", "*", 8.0),
    ];
    for (route, listener, n) in per_route {
        let labels = [("listener", listener), ("route", route)];
        assert_eq!(exp.value("ringway_requests_total", &labels), n, "{route}");
        let h = [("route", route)];
        assert_eq!(exp.value("ringway_request_duration_seconds_count", &h), n);
        let inf = [("route", route), ("le", "+Inf")];
        assert_eq!(
            exp.value("ringway_request_duration_seconds_bucket", &inf),
            n
        );
        assert_eq!(
            exp.value("ringway_request_duration_seconds_quantiles_count", &h),
            n
        );
    }
    let total: f64 = exp
        .find("ringway_requests_total", &[])
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 21.0);

    // Buckets: api requests took 1 ms, static 20 ms, shared 300 ms.
    let bucket = |route: &str, le: &str| {
        exp.value(
            "ringway_request_duration_seconds_bucket",
            &[("route", route), ("le", le)],
        )
    };
    assert_eq!(bucket("api", "0.0005"), 0.0);
    assert_eq!(bucket("api", "0.001"), 9.0);
    assert_eq!(bucket("static", "0.01"), 0.0);
    assert_eq!(bucket("static", "0.025"), 4.0);
    assert_eq!(bucket("shared", "0.25"), 0.0);
    assert_eq!(bucket("shared", "0.5"), 8.0);
    let sum = exp.value(
        "ringway_request_duration_seconds_sum",
        &[("route", "shared")],
    );
    assert!((sum - 2.4).abs() < 0.01, "{sum}");

    // Exact quantiles, in seconds (3 significant digits).
    let q = |route: &str, q: &str| {
        exp.value(
            "ringway_request_duration_seconds_quantiles",
            &[("route", route), ("quantile", q)],
        )
    };
    assert_eq!(q("api", "0.5"), 0.001);
    assert_eq!(q("api", "0.999"), 0.001);
    assert!((q("shared", "0.99") - 0.3).abs() < 0.0005);
    assert!((q("static", "0.9") - 0.02).abs() < 0.00005);

    // Proxy-added time per route (total minus upstream): api 200 µs,
    // static 5 ms, shared 50 ms.
    for (route, n) in [("api", 9.0), ("static", 4.0), ("shared", 8.0)] {
        let h = [("route", route)];
        assert_eq!(exp.value("ringway_route_proxy_added_seconds_count", &h), n);
        assert_eq!(
            exp.value(
                "ringway_route_proxy_added_seconds_bucket",
                &[("route", route), ("le", "+Inf")]
            ),
            n
        );
        assert_eq!(
            exp.value("ringway_route_proxy_added_seconds_quantiles_count", &h),
            n
        );
    }
    let added = |route: &str, le: &str| {
        exp.value(
            "ringway_route_proxy_added_seconds_bucket",
            &[("route", route), ("le", le)],
        )
    };
    assert_eq!(added("api", "0.0001"), 0.0);
    assert_eq!(added("api", "0.00025"), 9.0);
    assert_eq!(added("static", "0.0025"), 0.0);
    assert_eq!(added("static", "0.01"), 4.0);
    assert_eq!(added("shared", "0.025"), 0.0);
    assert_eq!(added("shared", "0.1"), 8.0);
    // Same bounds as the request duration family.
    assert_eq!(
        exp.find(
            "ringway_route_proxy_added_seconds_bucket",
            &[("route", "api")]
        )
        .len(),
        exp.find(
            "ringway_request_duration_seconds_bucket",
            &[("route", "api")]
        )
        .len()
    );
    let sum = exp.value(
        "ringway_route_proxy_added_seconds_sum",
        &[("route", "shared")],
    );
    assert!((sum - 0.4).abs() < 0.001, "{sum}");
    let pq = exp.value(
        "ringway_route_proxy_added_seconds_quantiles",
        &[("route", "api"), ("quantile", "0.99")],
    );
    assert_eq!(pq, 0.0002);

    // Responses by class and code; errors.
    let class = |route: &str, c: &str| {
        exp.value(
            "ringway_responses_total",
            &[("route", route), ("code_class", c)],
        )
    };
    assert_eq!(class("api", "2xx"), 9.0);
    assert_eq!(class("api", "5xx"), 0.0);
    assert_eq!(class("static", "4xx"), 4.0);
    assert_eq!(class("shared", "5xx"), 8.0);
    assert_eq!(exp.find("ringway_responses_total", &[]).len(), 15);
    assert_eq!(
        exp.value(
            "ringway_responses_by_code_total",
            &[("route", "shared"), ("code", "503")]
        ),
        8.0
    );
    assert_eq!(exp.find("ringway_responses_by_code_total", &[]).len(), 3);
    assert_eq!(
        exp.value(
            "ringway_errors_total",
            &[("route", "static"), ("kind", "bad_request")]
        ),
        2.0
    );

    // Listeners.
    assert_eq!(
        exp.value("ringway_listener_requests_total", &[("listener", "public")]),
        13.0
    );
    assert_eq!(
        exp.value(
            "ringway_listener_requests_total",
            &[("listener", "internal")]
        ),
        8.0
    );
    assert_eq!(
        exp.value(
            "ringway_downstream_connections_total",
            &[("listener", "public")]
        ),
        3.0
    );
    assert_eq!(
        exp.value(
            "ringway_downstream_connections_active",
            &[("listener", "public")]
        ),
        2.0
    );
    assert_eq!(
        exp.value(
            "ringway_downstream_bytes_sent_total",
            &[("listener", "public")]
        ),
        13_000.0
    );
    assert_eq!(
        exp.value(
            "ringway_listener_request_duration_seconds_count",
            &[("listener", "internal")]
        ),
        8.0
    );

    // Clusters and endpoints.
    assert_eq!(
        exp.value("ringway_upstream_requests_total", &[("cluster", "backend")]),
        17.0
    );
    assert_eq!(
        exp.value(
            "ringway_upstream_duration_seconds_count",
            &[("cluster", "backend")]
        ),
        17.0
    );
    fn ep(e: &str) -> [(&str, &str); 2] {
        [("cluster", "backend"), ("endpoint", e)]
    }
    // api alternates endpoints (5 on w0: 3+2, 4 on w1: 2+2), shared uses 1.
    assert_eq!(
        exp.value(
            "ringway_upstream_endpoint_requests_total",
            &ep("127.0.0.1:9001")
        ),
        5.0
    );
    assert_eq!(
        exp.value(
            "ringway_upstream_endpoint_requests_total",
            &ep("127.0.0.1:9002")
        ),
        12.0
    );
    assert_eq!(
        exp.value(
            "ringway_upstream_endpoint_duration_seconds_count",
            &ep("127.0.0.1:9002")
        ),
        12.0
    );
    let conns = |e: &str, kind: &str| {
        exp.value(
            "ringway_upstream_connections_total",
            &[("cluster", "backend"), ("endpoint", e), ("kind", kind)],
        )
    };
    // The first request per worker and endpoint opened a connection.
    assert_eq!(conns("127.0.0.1:9001", "new"), 2.0);
    assert_eq!(conns("127.0.0.1:9001", "reused"), 3.0);
    assert_eq!(
        exp.value(
            "ringway_upstream_connect_failures_total",
            &[("cluster", "cdn"), ("endpoint", "127.0.0.1:9003")]
        ),
        1.0
    );
    assert_eq!(exp.value("ringway_pool_idle_connections", &[]), 5.0);

    // Process and workers.
    assert_eq!(exp.value("ringway_workers", &[]), 2.0);
    assert!(exp.value("ringway_uptime_seconds", &[]) >= 5.0);
    assert_eq!(exp.value("ringway_draining", &[]), 0.0);
    assert_eq!(
        exp.value("ringway_worker_ring_submissions_total", &[("worker", "0")]),
        5_000_000_000.0
    );
    assert_eq!(
        exp.value("ringway_worker_ring_completions_total", &[("worker", "0")]),
        4_999_999_990.0
    );
    assert_eq!(
        exp.value("ringway_worker_ring_inflight", &[("worker", "0")]),
        10.0
    );
    assert_eq!(
        exp.value("ringway_worker_ring_entries", &[("worker", "0")]),
        1024.0
    );
    assert_eq!(
        exp.value("ringway_worker_ring_cq_overflow", &[("worker", "0")]),
        0.0
    );
    // Worker 1 has no ring (epoll): no ring series.
    assert!(exp
        .find("ringway_worker_ring_submissions_total", &[("worker", "1")])
        .is_empty());
    assert_eq!(
        exp.value(
            "ringway_worker_info",
            &[("worker", "1"), ("driver", "epoll (legacy)"), ("core", "-")]
        ),
        1.0
    );

    // Types.
    assert_eq!(exp.types["ringway_request_duration_seconds"], "histogram");
    assert_eq!(
        exp.types["ringway_request_duration_seconds_quantiles"],
        "summary"
    );
    assert_eq!(exp.types["ringway_route_proxy_added_seconds"], "histogram");
    assert_eq!(
        exp.types["ringway_route_proxy_added_seconds_quantiles"],
        "summary"
    );
    assert_eq!(exp.types["ringway_downstream_connections_active"], "gauge");
    assert_eq!(exp.types["ringway_requests_total"], "counter");

    // No worker label when per_worker is off (except on per-worker series).
    for s in &exp.samples {
        let per_worker_family = s.name.starts_with("ringway_worker_");
        assert_eq!(s.labels.contains_key("worker"), per_worker_family, "{s:?}");
    }
}

#[test]
fn metrics_parse_with_prometheus_parse_crate() {
    let f = Fixture::new("");
    f.load();
    let text = f.render();
    let scrape = crate_parse(&text);
    let strict = strict_parse(&text).unwrap();
    // Every sample line was understood by the crate: histogram and
    // summary lines are grouped per series, the rest are one each.
    let grouped: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(b) => b.len(),
            prometheus_parse::Value::Summary(q) => q.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(grouped, strict.samples.len());
    assert_eq!(
        crate_value(
            &scrape,
            "ringway_requests_total",
            &[("listener", "public"), ("route", "api")]
        ),
        9.0
    );
    assert_eq!(
        crate_value(
            &scrape,
            "ringway_request_duration_seconds_count",
            &[("route", "static")]
        ),
        4.0
    );
    let hist = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "ringway_request_duration_seconds" && s.labels.get("route") == Some("api")
        })
        .expect("api histogram");
    let prometheus_parse::Value::Histogram(buckets) = &hist.value else {
        panic!("{hist:?}")
    };
    assert_eq!(buckets.len(), 17);
    assert_eq!(buckets.last().unwrap().count, 9.0);
    assert!(buckets.last().unwrap().less_than.is_infinite());
    let summary = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "ringway_request_duration_seconds_quantiles"
                && s.labels.get("route") == Some("shared")
        })
        .expect("shared summary");
    let prometheus_parse::Value::Summary(qs) = &summary.value else {
        panic!("{summary:?}")
    };
    let quantiles: Vec<f64> = qs.iter().map(|q| q.quantile).collect();
    assert_eq!(quantiles, vec![0.5, 0.9, 0.99, 0.999]);
    for name in scrape.docs.keys() {
        assert!(name.starts_with("ringway_"), "{name}");
    }
}

#[test]
fn per_worker_labels_every_data_series() {
    let f = Fixture::new("[stats]\nper_worker = true\n");
    f.load();
    let text = f.render();
    let exp = strict_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for s in &exp.samples {
        let process_wide = [
            "ringway_build_info",
            "ringway_uptime_seconds",
            "ringway_workers",
            "ringway_draining",
            "ringway_config_generation",
            "ringway_reloads_total",
        ]
        .contains(&s.name.as_str());
        assert_eq!(s.labels.contains_key("worker"), !process_wide, "{s:?}");
    }
    let req = |w: &str, route: &str, listener: &str| {
        exp.value(
            "ringway_requests_total",
            &[("listener", listener), ("route", route), ("worker", w)],
        )
    };
    assert_eq!(req("0", "api", "public"), 5.0);
    assert_eq!(req("1", "api", "public"), 4.0);
    assert_eq!(req("0", "shared", "*"), 2.0);
    assert_eq!(req("1", "shared", "*"), 6.0);
    let count = |w: &str| {
        exp.value(
            "ringway_request_duration_seconds_count",
            &[("route", "shared"), ("worker", w)],
        )
    };
    assert_eq!(count("0"), 2.0);
    assert_eq!(count("1"), 6.0);
    assert_eq!(
        exp.value("ringway_pool_idle_connections", &[("worker", "0")]),
        4.0
    );
    assert_eq!(
        exp.value("ringway_pool_idle_connections", &[("worker", "1")]),
        1.0
    );
}

#[test]
fn switched_off_histograms_are_not_exported() {
    let f = Fixture::new("[stats]\nhistograms = [\"route\"]\n");
    f.load();
    let text = f.render();
    let exp = strict_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(exp.types.contains_key("ringway_request_duration_seconds"));
    assert!(exp.types.contains_key("ringway_route_proxy_added_seconds"));
    for off in [
        "ringway_listener_request_duration_seconds",
        "ringway_upstream_duration_seconds",
        "ringway_upstream_endpoint_duration_seconds",
    ] {
        assert!(!exp.types.contains_key(off), "{off}");
        assert!(
            !exp.types.contains_key(&format!("{off}_quantiles")),
            "{off}"
        );
    }
    // The proxy-added family follows the route histograms.
    let f = Fixture::new("[stats]\nhistograms = [\"listener\"]\n");
    f.load();
    let text = f.render();
    let exp = strict_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(exp
        .types
        .contains_key("ringway_listener_request_duration_seconds"));
    for off in [
        "ringway_request_duration_seconds",
        "ringway_route_proxy_added_seconds",
    ] {
        assert!(!exp.types.contains_key(off), "{off}");
        assert!(
            !exp.types.contains_key(&format!("{off}_quantiles")),
            "{off}"
        );
    }
}

#[test]
fn empty_registry_renders_valid_output() {
    let f = Fixture::new("");
    let text = f.render();
    let exp = strict_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        exp.value(
            "ringway_requests_total",
            &[("listener", "public"), ("route", "api")]
        ),
        0.0
    );
    assert_eq!(
        exp.value(
            "ringway_request_duration_seconds_count",
            &[("route", "api")]
        ),
        0.0
    );
    // A summary with no observations has NaN quantiles.
    assert!(exp
        .value(
            "ringway_request_duration_seconds_quantiles",
            &[("route", "api"), ("quantile", "0.5")]
        )
        .is_nan());
    crate_parse(&text);
}

#[test]
fn label_values_are_escaped() {
    let text = CONFIG.replace("name = \"static\"", "name = \"st\\\"at\\\\ic\\nx\"");
    let config = Arc::new(Config::parse(&text, None).unwrap());
    assert_eq!(config.routes[1].name, "st\"at\\ic\nx");
    let registry = Arc::new(StatsRegistry::new(config.clone(), 1));
    registry.worker(0).routes[1].requests.add(7);
    let state = AdminState {
        registry,
        reload: None,
        weights: None,
        draining: ShutdownFlag::new(),
        started: Instant::now(),
        ring_features: vec![],
        drivers: vec!["x\"y".into()],
        cores: vec![None],
    };
    let out = prometheus::render(&state, &[None]);
    assert!(
        out.contains(r#"ringway_requests_total{listener="public",route="st\"at\\ic\nx"} 7"#),
        "{out}"
    );
    let exp = strict_parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(
        exp.value(
            "ringway_requests_total",
            &[("listener", "public"), ("route", "st\"at\\ic\nx")]
        ),
        7.0
    );
    if let Some(py) = python_parse(&out) {
        assert!(
            py.contains("ringway_requests_total|listener=public,route=st\"at\\ic\nx|7.0"),
            "{py}"
        );
    }
}

#[test]
fn bucket_labels_match_bounds() {
    let exp = strict_parse(&Fixture::new("").render()).unwrap();
    let les: Vec<f64> = exp
        .find(
            "ringway_request_duration_seconds_bucket",
            &[("route", "api")],
        )
        .iter()
        .map(|s| parse_value(&s.labels["le"]).unwrap())
        .collect();
    let mut want = prometheus::BUCKETS_SECONDS.to_vec();
    want.push(f64::INFINITY);
    assert_eq!(les, want);
}

// ---------------------------------------------------------------------------
// The Python `prometheus_client` parser (optional).

/// Parse `text` with Python's `prometheus_client`; one line per sample:
/// `name|k=v,k=v|value` (labels sorted). `None` (with a printed reason) when
/// python3 or prometheus_client is missing.
fn python_parse(text: &str) -> Option<String> {
    const SCRIPT: &str = r#"
import sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print("SKIP: %s" % e)
    sys.exit(0)
text = sys.stdin.read()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s|%s|%r" % (s.name, labels, float(s.value)))
"#;
    let child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            println!("skipping the prometheus_client check: cannot run python3: {e}");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "prometheus_client rejected the output:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(reason) = stdout.strip_prefix("SKIP: ") {
        println!(
            "skipping the prometheus_client check: {} (pip install prometheus_client)",
            reason.trim()
        );
        return None;
    }
    Some(stdout)
}

#[test]
fn metrics_parse_with_python_prometheus_client() {
    let f = Fixture::new("[stats]\nper_worker = true\n");
    f.load();
    let text = f.render();
    let Some(py) = python_parse(&text) else {
        return;
    };
    let strict = strict_parse(&text).unwrap();
    assert_eq!(py.lines().count(), strict.samples.len(), "{py}");
    assert!(
        py.contains("ringway_requests_total|listener=public,route=api,worker=0|5.0"),
        "{py}"
    );
    assert!(
        py.contains("ringway_request_duration_seconds_count|route=shared,worker=1|6.0"),
        "{py}"
    );
    assert!(
        py.contains("ringway_request_duration_seconds_bucket|le=+Inf,route=api,worker=0|5.0"),
        "{py}"
    );
    assert!(
        py.contains(
            "ringway_request_duration_seconds_quantiles|quantile=0.5,route=api,worker=0|0.001"
        ),
        "{py}"
    );
    assert!(
        py.contains("ringway_route_proxy_added_seconds_count|route=shared,worker=1|6.0"),
        "{py}"
    );
    assert!(
        py.contains("ringway_route_proxy_added_seconds_bucket|le=0.00025,route=api,worker=0|5.0"),
        "{py}"
    );
}

// ---------------------------------------------------------------------------
// JSON and dispatch

fn get(state: &AdminState, method: &str, path: &str) -> routes::Response {
    let rings = || rings();
    let history = std::sync::Mutex::new(super::history::History::default());
    let ctx = Context {
        state,
        rings: &rings,
        history: &history,
    };
    handle(&ctx, method, path)
}

fn body_json(r: &routes::Response) -> serde_json::Value {
    assert_eq!(r.content_type, routes::JSON_CONTENT_TYPE);
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn stats_json() {
    let f = Fixture::new("");
    f.load();
    let r = get(&f.state, "GET", "/stats");
    assert_eq!(r.status, 200);
    let v = body_json(&r);
    assert_eq!(v["workers"], 2);
    assert_eq!(v["draining"], false);
    assert!(v.get("by_worker").is_none());
    let routes = v["total"]["routes"].as_array().unwrap();
    let api = &routes[0];
    assert_eq!(api["name"], "api");
    assert_eq!(api["requests"], 9);
    assert_eq!(api["responses"]["2xx"], 9);
    assert_eq!(api["codes"]["200"], 9);
    assert_eq!(api["latency"]["count"], 9);
    assert_eq!(api["latency"]["p50_us"], 1000);
    assert_eq!(api["latency"]["p999_us"], 1000);
    assert_eq!(api["latency"]["max_us"], 1000);
    assert_eq!(api["proxy_latency"]["count"], 9);
    assert_eq!(api["proxy_latency"]["p50_us"], 200);
    assert_eq!(api["proxy_latency"]["max_us"], 200);
    assert_eq!(routes[1]["proxy_latency"]["min_us"], 5000);
    let shared = &routes[2];
    assert_eq!(shared["listener"], "*");
    assert_eq!(shared["responses"]["5xx"], 8);
    let p99 = shared["latency"]["p99_us"].as_u64().unwrap();
    assert!((299_000..=301_000).contains(&p99), "{p99}");
    assert_eq!(routes[1]["errors"]["bad_request"], 2);
    assert_eq!(v["total"]["listeners"][0]["connections_active"], 2);
    assert_eq!(v["total"]["endpoints"][1]["connections_new"], 2);
    assert_eq!(v["total"]["pool_idle_connections"], 5);

    let f = Fixture::new("[stats]\nper_worker = true\nhistograms = []\n");
    f.load();
    let v = body_json(&get(&f.state, "GET", "/stats"));
    let by = v["by_worker"].as_array().unwrap();
    assert_eq!(by.len(), 2);
    assert_eq!(by[1]["worker"], 1);
    assert_eq!(by[1]["routes"][2]["requests"], 6);
    assert_eq!(v["total"]["routes"][2]["requests"], 8);
    assert!(v["total"]["routes"][0]["latency"].is_null());
    assert!(v["total"]["routes"][0]["proxy_latency"].is_null());
}

#[test]
fn workers_json() {
    let f = Fixture::new("");
    f.load();
    let v = body_json(&get(&f.state, "GET", "/workers"));
    let ws = v["workers"].as_array().unwrap();
    assert_eq!(ws.len(), 2);
    assert_eq!(ws[0]["core"], 0);
    assert_eq!(ws[0]["driver"], "io_uring (single_issuer, defer_taskrun)");
    assert_eq!(ws[0]["idle_read_release"], true);
    assert_eq!(ws[0]["connections_active"], 3);
    assert_eq!(ws[0]["requests"], 10);
    assert_eq!(ws[0]["ring"]["submissions"], 5_000_000_000u64);
    assert_eq!(ws[0]["ring"]["inflight_estimate"], 10);
    assert_eq!(ws[1]["core"], serde_json::Value::Null);
    assert_eq!(ws[1]["requests"], 11);
    assert!(ws[1]["ring"].is_null());
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringway-admin-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn config_json_redacts_tls_keys() {
    let dir = TempDir::new();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.0.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.0.join("secret-key.pem"), key.serialize_pem()).unwrap();
    let text = r#"
[runtime]
workers = 1
drain_timeout = "1500ms"

[[listener]]
name = "tls"
address = "127.0.0.1:0"
tls = { cert = "cert.pem", key = "secret-key.pem", sni = [{ names = ["a.example"], cert = "cert.pem", key = "secret-key.pem" }] }

[[route]]
host = "*.example.com"
cluster = "up"
max_body_bytes = "1MiB"

[[cluster]]
name = "up"
endpoints = ["127.0.0.1:9443", { address = "127.0.0.1:9444", weight = 3 }]
lb = "maglev"
hash_key = { header = "x-user" }
bounded_load = 1.25
tls = { ca = "cert.pem", server_name = "a.example", cert = "cert.pem", key = "secret-key.pem" }

[admin]
address = "127.0.0.1:0"

[access_log]
path = "access.log"

[stats]
histograms = ["route"]
"#;
    let path = dir.0.join("ringway.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let r = get(
        &AdminState {
            registry: Arc::new(StatsRegistry::new(Arc::new(config.clone()), 1)),
            reload: None,
            weights: None,
            draining: ShutdownFlag::new(),
            started: Instant::now(),
            ring_features: vec![],
            drivers: vec![],
            cores: vec![],
        },
        "GET",
        "/config",
    );
    assert_eq!(r.status, 200);
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(!body.contains("secret-key"), "{body}");
    let v = body_json(&r);
    let tls = &v["listeners"][0]["tls"];
    assert_eq!(tls["key"], json::REDACTED);
    assert_eq!(tls["sni"][0]["key"], json::REDACTED);
    assert_eq!(tls["sni"][0]["names"][0], "a.example");
    assert!(tls["cert"].as_str().unwrap().ends_with("cert.pem"));
    let up = &v["clusters"][0]["tls"];
    assert_eq!(up["key"], json::REDACTED);
    assert_eq!(up["server_name"], "a.example");
    assert!(up["ca"].as_str().unwrap().ends_with("cert.pem"));
    assert_eq!(v["runtime"]["drain_timeout"], "1500ms");
    assert_eq!(v["runtime"]["ring_flags"][1], "coop_taskrun");
    assert_eq!(v["runtime"]["idle_read_release"], true);
    assert_eq!(v["routes"][0]["host"], "*.example.com");
    assert_eq!(v["routes"][0]["listener"], serde_json::Value::Null);
    assert_eq!(v["routes"][0]["max_body_bytes"], 1 << 20);
    assert_eq!(v["routes"][0]["timeout"], "30s");
    assert_eq!(
        v["clusters"][0]["endpoints"][0]["address"],
        "127.0.0.1:9443"
    );
    assert_eq!(v["clusters"][0]["endpoints"][0]["weight"], 1);
    assert_eq!(v["clusters"][0]["endpoints"][1]["weight"], 3);
    assert_eq!(v["clusters"][0]["lb"], "maglev");
    assert_eq!(v["clusters"][0]["hash_key"]["header"], "x-user");
    assert_eq!(v["clusters"][0]["bounded_load"], 1.25);
    assert_eq!(v["limits"]["idle_timeout"], "1m");
    assert_eq!(v["stats"]["histograms"], serde_json::json!(["route"]));
    assert!(v["access_log"]["path"]
        .as_str()
        .unwrap()
        .ends_with("access.log"));
    assert_eq!(v["access_log"]["format"], "json");
    assert_eq!(v["tracing"]["w3c"], true);
    assert_eq!(v["admin"]["address"], "127.0.0.1:0");
}

#[test]
fn dispatch() {
    let f = Fixture::new("");
    let s = &f.state;
    assert_eq!(get(s, "GET", "/live").status, 200);
    assert_eq!(get(s, "GET", "/ready").status, 200);
    let m = get(s, "GET", "/metrics");
    assert_eq!(m.status, 200);
    assert!(m.content_type.starts_with("text/plain; version=0.0.4"));
    let r = get(s, "GET", "/nope");
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("/metrics"));
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = get(s, method, "/metrics");
        assert_eq!(r.status, 405, "{method}");
        assert!(String::from_utf8_lossy(&r.to_bytes(false)).contains("Allow: GET, HEAD\r\n"));
    }
    let head = get(s, "HEAD", "/live").to_bytes(true);
    let head = String::from_utf8(head).unwrap();
    assert!(
        head.ends_with("Content-Length: 5\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"),
        "{head}"
    );
    assert_eq!(get(s, "GET", "/").status, 200);
    let page = get(s, "GET", "/dashboard");
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, routes::HTML_CONTENT_TYPE);
    let html = String::from_utf8(page.body).unwrap();
    // Self-contained: no external fetch of any kind.
    for external in ["http://", "https://", "src=", "<link", "@import"] {
        assert!(!html.contains(external), "page refers to {external}");
    }
    let data = body_json(&get(s, "GET", "/dashboard.json"));
    assert_eq!(data["workers"].as_array().unwrap().len(), 2);
    assert_eq!(data["total"]["routes"][0]["name"], "api");
    assert_eq!(
        data["total"]["routes"][0]["history"]["rps"],
        serde_json::json!([])
    );
    assert_eq!(data["cluster_config"][0]["lb"], "round_robin");

    s.draining.trigger();
    let r = get(s, "GET", "/ready");
    assert_eq!(r.status, 503);
    assert_eq!(get(s, "GET", "/live").status, 200);
    let exp = strict_parse(&String::from_utf8(get(s, "GET", "/metrics").body).unwrap()).unwrap();
    assert_eq!(exp.value("ringway_draining", &[]), 1.0);
}

// ---------------------------------------------------------------------------
// The server, over real sockets.

fn fetch(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn server_answers_over_tcp() {
    let f = Fixture::new("");
    f.load();
    let handle = spawn(f.state.clone()).unwrap();
    assert!(handle.address.ip().is_loopback());
    assert_ne!(handle.address.port(), 0);
    let addr = handle.address;

    let (status, head, body) = fetch(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(head.contains("Connection: close"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    strict_parse(&body).unwrap();

    let (status, _, body) = fetch(addr, b"GET /stats?pretty HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"]["routes"][0]["requests"], 9);

    // A POST with a body gets its 405 (the body is drained, not reset).
    let (status, head, _) = fetch(
        addr,
        b"POST /ready HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"));
    assert_eq!(fetch(addr, b"GET /x HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(fetch(addr, b"BLAH\r\n\r\n").0, 400);
    let big = format!(
        "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(server::MAX_HEAD_BYTES)
    );
    assert_eq!(fetch(addr, big.as_bytes()).0, 431);

    // A client that connects and says nothing does not block the next
    // one for longer than the read timeout.
    let idle = TcpStream::connect(addr).unwrap();
    let t = Instant::now();
    assert_eq!(fetch(addr, b"GET /live HTTP/1.1\r\n\r\n").0, 200);
    assert!(t.elapsed() < server::IO_TIMEOUT + Duration::from_secs(2));
    drop(idle);

    f.state.draining.trigger();
    assert_eq!(fetch(addr, b"GET /ready HTTP/1.1\r\n\r\n").0, 503);
    handle.stop();
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn spawn_without_admin_section_is_an_error() {
    let config = Config::parse(
        &CONFIG.replace("[admin]\nlisten = \"127.0.0.1:0\"", ""),
        None,
    )
    .unwrap();
    assert!(config.admin.is_none());
    let config = Arc::new(config);
    let state = Arc::new(AdminState {
        registry: Arc::new(StatsRegistry::new(config.clone(), 1)),
        reload: None,
        weights: None,
        draining: ShutdownFlag::new(),
        started: Instant::now(),
        ring_features: vec![],
        drivers: vec![],
        cores: vec![],
    });
    let e = spawn(state).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn ring_sampler_reads_a_real_ring() {
    let Ok(ring) = io_uring::IoUring::new(8) else {
        println!("skipping: io_uring not available");
        return;
    };
    use std::os::fd::AsRawFd;
    let f = Fixture::new("");
    f.state
        .registry
        .worker(0)
        .ring_fd
        .store(ring.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
    let sampler = server::RingSampler::new(f.state.clone());
    sampler.sample();
    let stats = sampler.stats();
    let r = stats[0].expect("ring stats for worker 0");
    assert_eq!(r.sq_entries, 8);
    assert!(r.cq_entries >= 16);
    assert_eq!(r.submissions, 0);
    assert!(stats[1].is_none());
    drop(ring);
}
