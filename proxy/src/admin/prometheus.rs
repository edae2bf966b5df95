//! `/metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Every family is written once (`# HELP`, `# TYPE`, then all its samples),
//! names start with `ringway_`, counters end in `_total`, durations are in
//! seconds. Latency is exported twice from the same HDR histograms:
//!
//! - as a Prometheus **histogram** (`<name>_bucket{le}`, `<name>_sum`,
//!   `<name>_count`) with the fixed bounds [`BUCKETS_SECONDS`], for
//!   aggregation across instances;
//! - as a **summary** named `<name>_quantiles` (a different name: Prometheus
//!   forbids a histogram and a summary of the same name) with the exact
//!   p50/p90/p99/p99.9 of the HDR histogram ([`QUANTILES`]).
//!
//! With `stats.per_worker = true` every data series carries a `worker`
//! label (one series per worker, [`crate::stats::merge`] of that worker
//! alone); otherwise series are sums over all workers. Ring series always
//! carry `worker`.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::{AdminState, RingStats};
use crate::config::Config;
use crate::stats::merge;
use crate::stats::merge::{EndpointView, ListenerView, RouteView, StatsView};

/// Upper bounds of the histogram buckets, in seconds (`+Inf` is added).
pub const BUCKETS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The same bounds as `le` label values.
const BUCKET_LABELS: [&str; 16] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10",
];

/// The same bounds in microseconds (the histograms' unit).
const BUCKETS_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Quantiles of the `_quantiles` summaries: (label value, quantile).
pub const QUANTILES: [(&str, f64); 4] =
    [("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99), ("0.999", 0.999)];

/// Response classes as exported in `code_class` (index = class).
pub const CODE_CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// The `listener` label of a route's series: the listener it belongs to;
/// for a route shared by every listener, that listener when there is only
/// one, else `"*"`.
pub fn route_listener<'a>(config: &'a Config, view: &'a RouteView) -> &'a str {
    match &view.listener {
        Some(l) => l,
        None if config.listeners.len() == 1 => &config.listeners[0].name,
        None => "*",
    }
}

/// Escape a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escape HELP text: `\` → `\\`, newline → `\n`.
fn escape_help(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float the way Prometheus writes them (`+Inf`, `-Inf`, `NaN`).
fn float(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A sample value.
enum Value {
    Int(u64),
    Signed(i64),
    Float(f64),
}

struct Writer {
    out: String,
}

type Labels<'a> = [(&'a str, &'a str)];

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.out, "# HELP {name} ");
        escape_help(help, &mut self.out);
        let _ = writeln!(self.out, "\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &Labels<'_>, worker: Option<&str>, value: Value) {
        self.out.push_str(name);
        let worker = worker.map(|w| ("worker", w));
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(worker) {
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label(v, &mut self.out);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
        match value {
            Value::Int(n) => {
                let _ = write!(self.out, "{n}");
            }
            Value::Signed(n) => {
                let _ = write!(self.out, "{n}");
            }
            Value::Float(f) => float(f, &mut self.out),
        }
        self.out.push('\n');
    }

    /// `_bucket{le}` (cumulative), `_sum` and `_count` of a µs histogram.
    fn histogram(
        &mut self,
        name: &str,
        labels: &Labels<'_>,
        worker: Option<&str>,
        h: &Histogram<u64>,
    ) {
        let mut counts = [0u64; BUCKETS_MICROS.len()];
        let mut total = 0u64;
        for v in h.iter_recorded() {
            // Every recorded value is represented by the highest value
            // equivalent to it (as HDR's `max` and quantiles do), so a
            // bucket never claims a request faster than it was.
            let value = v.value_iterated_to();
            let n = v.count_at_value();
            total += n;
            if let Some(i) = BUCKETS_MICROS.iter().position(|&b| value <= b) {
                counts[i] += n;
            }
        }
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            with_le.push(("le", BUCKET_LABELS[i]));
            self.sample(&bucket, &with_le, worker, Value::Int(cumulative));
            with_le.pop();
        }
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, worker, Value::Int(total));
        let sum = h.mean() * total as f64 / 1e6;
        self.sample(&format!("{name}_sum"), labels, worker, Value::Float(sum));
        self.sample(&format!("{name}_count"), labels, worker, Value::Int(total));
    }

    /// Exact quantiles (seconds), `_sum` and `_count` of a µs histogram.
    fn summary(
        &mut self,
        name: &str,
        labels: &Labels<'_>,
        worker: Option<&str>,
        h: &Histogram<u64>,
    ) {
        let total = h.len();
        let mut with_q: Vec<(&str, &str)> = labels.to_vec();
        for (label, q) in QUANTILES {
            let v = if total == 0 {
                f64::NAN
            } else {
                h.value_at_quantile(q) as f64 / 1e6
            };
            with_q.push(("quantile", label));
            self.sample(name, &with_q, worker, Value::Float(v));
            with_q.pop();
        }
        let sum = h.mean() * total as f64 / 1e6;
        self.sample(&format!("{name}_sum"), labels, worker, Value::Float(sum));
        self.sample(&format!("{name}_count"), labels, worker, Value::Int(total));
    }
}

/// One view to export, with its `worker` label value (per-worker mode).
struct Part {
    worker: Option<String>,
    view: StatsView,
}

impl Part {
    fn w(&self) -> Option<&str> {
        self.worker.as_deref()
    }
}

/// Render everything. `rings[i]`: worker i's io_uring figures (`None`: no
/// ring or not sampled).
pub fn render(state: &AdminState, rings: &[Option<RingStats>]) -> String {
    let reg = state.registry.load();
    let config = &reg.config;
    let parts: Vec<Part> = if config.stats.per_worker {
        reg.workers
            .iter()
            .map(|w| Part {
                worker: Some(w.worker.to_string()),
                view: merge(&reg, Some(w.worker)),
            })
            .collect()
    } else {
        vec![Part {
            worker: None,
            view: merge(&reg, None),
        }]
    };
    let mut w = Writer {
        out: String::with_capacity(16 * 1024),
    };

    process(&mut w, state);
    listeners(&mut w, &parts);
    routes(&mut w, config, &parts);
    clusters(&mut w, &parts);
    endpoints(&mut w, &parts);
    latency(&mut w, &parts);
    filters(&mut w, config);
    workers(&mut w, state, rings);
    w.out
}

/// Counters kept by the filters themselves (process-wide: summed over the
/// workers inside the filter, so no `worker` label). A family is written
/// only when some route has that filter.
fn filters(w: &mut Writer, config: &Config) {
    use crate::pipeline::filters::Filter;
    let mut api_ok: Vec<(String, String, &'static str, u64)> = Vec::new();
    let mut api_refused: Vec<(String, &'static str, u64)> = Vec::new();
    let mut limited: Vec<(String, u64, u64)> = Vec::new();
    let mut concurrency: Vec<(String, u64, u64)> = Vec::new();
    let mut versions: Vec<(String, String, u64)> = Vec::new();
    for r in &config.routes {
        if let crate::config::RouteAction::Versioned(v) = &r.action {
            for (name, n) in v.counts() {
                versions.push((r.name.clone(), name.to_owned(), n));
            }
        }
        for f in r.filters.iter() {
            match f {
                Filter::ApiKey(k) => {
                    for c in k.counts() {
                        api_ok.push((r.name.clone(), c.id.to_string(), "ok", c.ok));
                        api_ok.push((r.name.clone(), c.id.to_string(), "rejected", c.rejected));
                    }
                    let (missing, unknown) = k.unmatched();
                    api_refused.push((r.name.clone(), "missing", missing));
                    api_refused.push((r.name.clone(), "unknown", unknown));
                }
                Filter::RateLimit(l) => {
                    limited.push((r.name.clone(), l.limited_total(), l.table_full_total()))
                }
                Filter::ConcurrencyLimit(c) => {
                    concurrency.push((r.name.clone(), c.rejected_total(), c.in_flight() as u64))
                }
                _ => {}
            }
        }
    }
    if !api_ok.is_empty() {
        w.family(
            "ringway_api_key_requests_total",
            "counter",
            "Requests that presented a configured API key, by route, key id and result.",
        );
        for (route, key, result, n) in &api_ok {
            w.sample(
                "ringway_api_key_requests_total",
                &[("route", route), ("key", key), ("result", result)],
                None,
                Value::Int(*n),
            );
        }
        w.family(
            "ringway_api_key_refused_total",
            "counter",
            "Requests refused (401) without a known API key, by route and reason.",
        );
        for (route, reason, n) in &api_refused {
            w.sample(
                "ringway_api_key_refused_total",
                &[("route", route), ("reason", reason)],
                None,
                Value::Int(*n),
            );
        }
    }
    if !limited.is_empty() {
        w.family(
            "ringway_rate_limited_total",
            "counter",
            "Requests answered 429 by a route's rate_limit filter.",
        );
        for (route, n, _) in &limited {
            w.sample(
                "ringway_rate_limited_total",
                &[("route", route)],
                None,
                Value::Int(*n),
            );
        }
        w.family(
            "ringway_rate_limit_table_full_total",
            "counter",
            "Requests let through because the limiter's key table had no free slot (fail open).",
        );
        for (route, _, n) in &limited {
            w.sample(
                "ringway_rate_limit_table_full_total",
                &[("route", route)],
                None,
                Value::Int(*n),
            );
        }
    }
    if !concurrency.is_empty() {
        w.family(
            "ringway_concurrency_limited_total",
            "counter",
            "Requests answered 503 by a route's concurrency_limit filter.",
        );
        for (route, n, _) in &concurrency {
            w.sample(
                "ringway_concurrency_limited_total",
                &[("route", route)],
                None,
                Value::Int(*n),
            );
        }
        w.family(
            "ringway_concurrency_in_flight",
            "gauge",
            "Requests in flight on a route with a concurrency_limit filter.",
        );
        for (route, _, n) in &concurrency {
            w.sample(
                "ringway_concurrency_in_flight",
                &[("route", route)],
                None,
                Value::Int(*n),
            );
        }
    }
    if !versions.is_empty() {
        w.family(
            "ringway_api_version_requests_total",
            "counter",
            "Requests forwarded by a `versions` route, by route and API version.",
        );
        for (route, version, n) in &versions {
            w.sample(
                "ringway_api_version_requests_total",
                &[("route", route), ("version", version)],
                None,
                Value::Int(*n),
            );
        }
    }
}

fn process(w: &mut Writer, state: &AdminState) {
    w.family(
        "ringway_build_info",
        "gauge",
        "Always 1; the version of the running ringway.",
    );
    w.sample(
        "ringway_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        None,
        Value::Int(1),
    );
    w.family(
        "ringway_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    w.sample(
        "ringway_uptime_seconds",
        &[],
        None,
        Value::Float(state.started.elapsed().as_secs_f64()),
    );
    w.family("ringway_workers", "gauge", "Number of worker threads.");
    w.sample(
        "ringway_workers",
        &[],
        None,
        Value::Int(state.registry.worker_count() as u64),
    );
    w.family(
        "ringway_draining",
        "gauge",
        "1 once graceful shutdown (drain) has started, else 0.",
    );
    w.sample(
        "ringway_draining",
        &[],
        None,
        Value::Int(state.draining.is_set() as u64),
    );
    let reloads = &state.registry.reloads;
    w.family(
        "ringway_config_generation",
        "gauge",
        "Configuration generation published (1 = the one ringway started with).",
    );
    w.sample(
        "ringway_config_generation",
        &[],
        None,
        Value::Int(reloads.generation()),
    );
    w.family(
        "ringway_reloads_total",
        "counter",
        "Configuration reloads by result (ok: a new generation; error: the file was refused).",
    );
    for (result, n) in [("ok", &reloads.ok), ("error", &reloads.failed)] {
        w.sample(
            "ringway_reloads_total",
            &[("result", result)],
            None,
            Value::Int(n.load(std::sync::atomic::Ordering::Relaxed)),
        );
    }
    if state.config().trace.otlp.is_some() {
        trace_export(w);
    }
    if state.config().etcd.is_some() {
        etcd(w);
    }
    health(w, state);
}

/// Active health checks: each checked endpoint's state and check counts.
fn health(w: &mut Writer, state: &AdminState) {
    use std::sync::atomic::Ordering::Relaxed;
    let config = state.config();
    let checked: Vec<_> = config
        .clusters
        .iter()
        .filter_map(|c| Some((c, crate::upstream::health::registry().cluster(c)?)))
        .collect();
    if checked.is_empty() {
        return;
    }
    w.family(
        "ringway_endpoint_healthy",
        "gauge",
        "1 while the endpoint passes its cluster's active health checks, else 0.",
    );
    for (c, h) in &checked {
        for (e, cell) in c.endpoints.iter().zip(h.cells.iter()) {
            w.sample(
                "ringway_endpoint_healthy",
                &[("cluster", &c.name), ("endpoint", &e.label)],
                None,
                Value::Int(cell.is_healthy() as u64),
            );
        }
    }
    w.family(
        "ringway_health_checks_total",
        "counter",
        "Active health checks by result (pass: the expected status in time).",
    );
    for (c, h) in &checked {
        for (e, cell) in c.endpoints.iter().zip(h.cells.iter()) {
            for (result, n) in [("pass", &cell.passes), ("fail", &cell.failures)] {
                w.sample(
                    "ringway_health_checks_total",
                    &[
                        ("cluster", &c.name),
                        ("endpoint", &e.label),
                        ("result", result),
                    ],
                    None,
                    Value::Int(n.load(Relaxed)),
                );
            }
        }
    }
}

/// `[tracing.otlp]`: what the exporter did.
/// etcd discovery and registration (`[etcd]`).
fn etcd(w: &mut Writer) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = crate::config::etcd::counters();
    for (name, help, n) in [
        (
            "ringway_etcd_watch_reconnects_total",
            "etcd watches opened again after they broke.",
            &c.watch_reconnects,
        ),
        (
            "ringway_etcd_compactions_total",
            "Prefixes read again because the watched revision was compacted.",
            &c.compactions,
        ),
        (
            "ringway_etcd_events_total",
            "Watch events received from etcd.",
            &c.events,
        ),
        (
            "ringway_etcd_malformed_values_total",
            "etcd values skipped because they are not endpoint JSON.",
            &c.malformed_values,
        ),
        (
            "ringway_etcd_registrations_total",
            "Leases granted for this process's own key ([etcd.register]).",
            &c.registrations,
        ),
        (
            "ringway_etcd_keepalive_failures_total",
            "Lease keepalives that failed (etcd unreachable or the lease lost).",
            &c.keepalive_failures,
        ),
    ] {
        w.family(name, "counter", help);
        w.sample(name, &[], None, Value::Int(n.load(Relaxed)));
    }
    w.family(
        "ringway_etcd_updates_total",
        "counter",
        "Endpoint changes from etcd by result (ok: applied; refused: the rebuilt configuration was refused).",
    );
    for (result, n) in [("ok", &c.updates_applied), ("refused", &c.updates_refused)] {
        w.sample(
            "ringway_etcd_updates_total",
            &[("result", result)],
            None,
            Value::Int(n.load(Relaxed)),
        );
    }
}

fn trace_export(w: &mut Writer) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = crate::otel::counters();
    w.family(
        "ringway_trace_spans_exported_total",
        "counter",
        "Spans the collector accepted.",
    );
    w.sample(
        "ringway_trace_spans_exported_total",
        &[],
        None,
        Value::Int(c.exported.load(Relaxed)),
    );
    w.family(
        "ringway_trace_spans_dropped_total",
        "counter",
        "Spans dropped: queue_full (the exporter was behind), export_failed (the collector did not accept them).",
    );
    for (reason, n) in [
        ("queue_full", &c.dropped_queue_full),
        ("export_failed", &c.dropped_export_failed),
    ] {
        w.sample(
            "ringway_trace_spans_dropped_total",
            &[("reason", reason)],
            None,
            Value::Int(n.load(Relaxed)),
        );
    }
    w.family(
        "ringway_trace_export_requests_total",
        "counter",
        "Export requests to the collector by result.",
    );
    for (result, n) in [("ok", &c.requests_ok), ("failed", &c.requests_failed)] {
        w.sample(
            "ringway_trace_export_requests_total",
            &[("result", result)],
            None,
            Value::Int(n.load(Relaxed)),
        );
    }
}

fn listeners(w: &mut Writer, parts: &[Part]) {
    type Get = fn(&ListenerView) -> Value;
    let families: [(&str, &str, &str, Get); 9] = [
        (
            "ringway_downstream_connections_total",
            "counter",
            "Downstream connections accepted.",
            |l| Value::Int(l.cx_total),
        ),
        (
            "ringway_downstream_connections_active",
            "gauge",
            "Downstream connections open now.",
            |l| Value::Signed(l.cx_active),
        ),
        (
            "ringway_downstream_tls_handshake_failures_total",
            "counter",
            "Downstream TLS handshakes that failed.",
            |l| Value::Int(l.tls_handshake_failures),
        ),
        (
            "ringway_downstream_proxy_protocol_errors_total",
            "counter",
            "Downstream connections closed for a malformed, missing or late PROXY protocol header.",
            |l| Value::Int(l.proxy_protocol_errors),
        ),
        (
            "ringway_listener_requests_total",
            "counter",
            "Requests whose head was read on the listener, routed or not.",
            |l| Value::Int(l.requests),
        ),
        (
            "ringway_listener_rejected_total",
            "counter",
            "Requests rejected before routing (bad head, 408, 431) or not routed (404).",
            |l| Value::Int(l.rejected),
        ),
        (
            "ringway_downstream_bytes_received_total",
            "counter",
            "Bytes received from downstream clients.",
            |l| Value::Int(l.bytes_in),
        ),
        (
            "ringway_downstream_bytes_sent_total",
            "counter",
            "Bytes sent to downstream clients.",
            |l| Value::Int(l.bytes_out),
        ),
        (
            "ringway_downstream_bytes_spliced_total",
            "counter",
            "Of the bytes received from and sent to downstream clients, those moved with splice(2) between two sockets (never copied into user space; limits.splice_min_bytes).",
            |l| Value::Int(l.bytes_spliced),
        ),
    ];
    for (name, kind, help, get) in families {
        w.family(name, kind, help);
        for p in parts {
            for l in &p.view.listeners {
                w.sample(name, &[("listener", &l.name)], p.w(), get(l));
            }
        }
    }
}

fn routes(w: &mut Writer, config: &Config, parts: &[Part]) {
    let name = "ringway_requests_total";
    w.family(
        name,
        "counter",
        "Requests routed, by route (listener=\"*\": a route shared by every listener).",
    );
    for p in parts {
        for r in &p.view.routes {
            let labels = [("listener", route_listener(config, r)), ("route", &r.name)];
            w.sample(name, &labels, p.w(), Value::Int(r.requests));
        }
    }

    let name = "ringway_responses_total";
    w.family(
        name,
        "counter",
        "Responses sent on routed requests, by status class.",
    );
    for p in parts {
        for r in &p.view.routes {
            let classes = r.classes();
            for (class, label) in CODE_CLASSES.iter().enumerate().skip(1) {
                let labels = [("route", r.name.as_str()), ("code_class", label)];
                w.sample(name, &labels, p.w(), Value::Int(classes[class]));
            }
        }
    }

    let name = "ringway_responses_by_code_total";
    w.family(
        name,
        "counter",
        "Responses sent on routed requests, by exact status code (codes seen only).",
    );
    for p in parts {
        for r in &p.view.routes {
            for &(code, n) in r.codes.iter().filter(|(c, _)| *c != 0) {
                let code = code.to_string();
                let labels = [("route", r.name.as_str()), ("code", &code)];
                w.sample(name, &labels, p.w(), Value::Int(n));
            }
        }
    }

    let name = "ringway_grpc_responses_total";
    w.family(
        name,
        "counter",
        "gRPC answers on routed requests, by grpc-status (from the answer's head or trailers; codes seen only).",
    );
    for p in parts {
        for r in &p.view.routes {
            for &(code, n) in &r.grpc {
                let code = code.to_string();
                let labels = [("route", r.name.as_str()), ("grpc_status", &code)];
                w.sample(name, &labels, p.w(), Value::Int(n));
            }
        }
    }

    let name = "ringway_errors_total";
    w.family(
        name,
        "counter",
        "Failed requests by route and error kind (kinds seen only).",
    );
    for p in parts {
        for r in &p.view.routes {
            for &(kind, n) in &r.errors {
                let labels = [("route", r.name.as_str()), ("kind", kind)];
                w.sample(name, &labels, p.w(), Value::Int(n));
            }
        }
    }

    for (name, help, bytes_in) in [
        (
            "ringway_route_bytes_received_total",
            "Request bytes received from downstream, by route.",
            true,
        ),
        (
            "ringway_route_bytes_sent_total",
            "Response bytes sent to downstream, by route.",
            false,
        ),
    ] {
        w.family(name, "counter", help);
        for p in parts {
            for r in &p.view.routes {
                let n = if bytes_in { r.bytes_in } else { r.bytes_out };
                w.sample(name, &[("route", &r.name)], p.w(), Value::Int(n));
            }
        }
    }
}

fn clusters(w: &mut Writer, parts: &[Part]) {
    let name = "ringway_upstream_requests_total";
    w.family(name, "counter", "Requests forwarded to the cluster.");
    for p in parts {
        for c in &p.view.clusters {
            w.sample(name, &[("cluster", &c.name)], p.w(), Value::Int(c.requests));
        }
    }
    let name = "ringway_upstream_responses_total";
    w.family(
        name,
        "counter",
        "Upstream responses by status class, by cluster.",
    );
    for p in parts {
        for c in &p.view.clusters {
            for (class, label) in CODE_CLASSES.iter().enumerate().skip(1) {
                let labels = [("cluster", c.name.as_str()), ("code_class", label)];
                w.sample(name, &labels, p.w(), Value::Int(c.classes[class]));
            }
        }
    }
    type Pick = fn(&crate::stats::merge::ClusterView) -> u64;
    let families: [(&str, &str, Pick); 4] = [
        (
            "ringway_upstream_retries_total",
            "Retries sent to the cluster (`retries` on a route).",
            |c| c.retries,
        ),
        (
            "ringway_upstream_retries_budget_exhausted_total",
            "Retries and hedges not sent: the cluster's retry budget was spent.",
            |c| c.retries_budget_exhausted,
        ),
        (
            "ringway_upstream_hedges_total",
            "Hedged requests sent to the cluster (`hedge` on a route).",
            |c| c.hedges,
        ),
        (
            "ringway_upstream_hedge_wins_total",
            "Hedged requests whose answer was used (it came before the first attempt's).",
            |c| c.hedge_wins,
        ),
    ];
    for (name, help, pick) in families {
        w.family(name, "counter", help);
        for p in parts {
            for c in &p.view.clusters {
                w.sample(name, &[("cluster", &c.name)], p.w(), Value::Int(pick(c)));
            }
        }
    }
    let name = "ringway_split_requests_total";
    w.family(
        name,
        "counter",
        "Requests a split route sent to each of its clusters (kept over reloads that keep the route's clusters).",
    );
    for p in parts {
        for r in &p.view.routes {
            for (cluster, n) in &r.split {
                let labels = [("route", r.name.as_str()), ("cluster", cluster.as_str())];
                w.sample(name, &labels, p.w(), Value::Int(*n));
            }
        }
    }
    let name = "ringway_mirror_requests_total";
    w.family(
        name,
        "counter",
        "Request copies sent to the cluster as a mirror's shadow, by result (sent, failed, dropped).",
    );
    for p in parts {
        for c in &p.view.clusters {
            for (result, n) in [
                ("sent", c.mirror[0]),
                ("failed", c.mirror[1]),
                ("dropped", c.mirror[2]),
            ] {
                let labels = [("cluster", c.name.as_str()), ("result", result)];
                w.sample(name, &labels, p.w(), Value::Int(n));
            }
        }
    }
    let name = "ringway_upstream_overflow_total";
    w.family(
        name,
        "counter",
        "Requests (max_requests, max_connections, max_pending) and retries (max_retries) refused by the cluster's circuit breakers.",
    );
    for p in parts {
        for c in &p.view.clusters {
            for (breaker, n) in [
                ("max_requests", c.overflow_requests),
                ("max_retries", c.overflow_retries),
                ("max_connections", c.overflow_connections),
                ("max_pending", c.overflow_pending),
            ] {
                let labels = [("cluster", c.name.as_str()), ("breaker", breaker)];
                w.sample(name, &labels, p.w(), Value::Int(n));
            }
        }
    }
    let name = "ringway_upstream_errors_total";
    w.family(
        name,
        "counter",
        "Failed upstream requests by cluster and error kind (kinds seen only).",
    );
    for p in parts {
        for c in &p.view.clusters {
            for &(kind, n) in &c.errors {
                let labels = [("cluster", c.name.as_str()), ("kind", kind)];
                w.sample(name, &labels, p.w(), Value::Int(n));
            }
        }
    }
}

fn endpoints(w: &mut Writer, parts: &[Part]) {
    let name = "ringway_upstream_endpoint_requests_total";
    w.family(name, "counter", "Requests forwarded to the endpoint.");
    for p in parts {
        for e in &p.view.endpoints {
            let labels = [("cluster", e.cluster.as_str()), ("endpoint", &e.endpoint)];
            w.sample(name, &labels, p.w(), Value::Int(e.requests));
        }
    }
    let name = "ringway_upstream_endpoint_responses_total";
    w.family(
        name,
        "counter",
        "Upstream responses by status class, by endpoint.",
    );
    for p in parts {
        for e in &p.view.endpoints {
            for (class, label) in CODE_CLASSES.iter().enumerate().skip(1) {
                let labels = [
                    ("cluster", e.cluster.as_str()),
                    ("endpoint", &e.endpoint),
                    ("code_class", label),
                ];
                w.sample(name, &labels, p.w(), Value::Int(e.classes[class]));
            }
        }
    }
    let name = "ringway_upstream_connections_total";
    w.family(
        name,
        "counter",
        "Upstream connections used: kind=\"new\" opened, kind=\"reused\" taken from the idle pool.",
    );
    for p in parts {
        for e in &p.view.endpoints {
            for (kind, n) in [("new", e.cx_new), ("reused", e.cx_reused)] {
                let labels = [
                    ("cluster", e.cluster.as_str()),
                    ("endpoint", &e.endpoint),
                    ("kind", kind),
                ];
                w.sample(name, &labels, p.w(), Value::Int(n));
            }
        }
    }
    type Count = fn(&EndpointView) -> u64;
    let counts: [(&str, &str, Count); 3] = [
        (
            "ringway_upstream_connect_failures_total",
            "Upstream connection attempts that failed (refused, unreachable, TLS, connect timeout).",
            |e| e.connect_failures,
        ),
        (
            "ringway_upstream_timeouts_total",
            "Upstream connect or response timeouts.",
            |e| e.timeouts,
        ),
        (
            "ringway_upstream_streams_refused_total",
            "HTTP/2 streams the upstream refused unprocessed (REFUSED_STREAM); each is sent again, at most 3 times.",
            |e| e.streams_refused,
        ),
    ];
    for (name, help, count) in counts {
        w.family(name, "counter", help);
        for p in parts {
            for e in &p.view.endpoints {
                let labels = [("cluster", e.cluster.as_str()), ("endpoint", &e.endpoint)];
                w.sample(name, &labels, p.w(), Value::Int(count(e)));
            }
        }
    }
    let name = "ringway_outlier_ejections_total";
    w.family(
        name,
        "counter",
        "Times a worker ejected the endpoint (outlier_detection: runs of 5xx or gateway errors).",
    );
    for p in parts {
        for e in &p.view.endpoints {
            let labels = [("cluster", e.cluster.as_str()), ("endpoint", &e.endpoint)];
            w.sample(name, &labels, p.w(), Value::Int(e.ejections));
        }
    }
    let name = "ringway_outlier_ejected";
    w.family(
        name,
        "gauge",
        "Workers that eject the endpoint now (outlier_detection).",
    );
    for p in parts {
        for e in &p.view.endpoints {
            let labels = [("cluster", e.cluster.as_str()), ("endpoint", &e.endpoint)];
            w.sample(name, &labels, p.w(), Value::Signed(e.ejected_by));
        }
    }
    let name = "ringway_pool_idle_connections";
    w.family(
        name,
        "gauge",
        "Idle upstream connections held in the pools now.",
    );
    for p in parts {
        w.sample(name, &[], p.w(), Value::Signed(p.view.pool_idle));
    }
}

/// One latency dimension: histogram + summary families over every part.
fn latency_family<'v, T: 'v>(
    w: &mut Writer,
    parts: &'v [Part],
    name: &str,
    help: &str,
    items: impl Fn(&'v StatsView) -> &'v [T],
    labels: impl Fn(&'v T) -> Vec<(&'v str, &'v str)>,
    hist: impl Fn(&'v T) -> Option<&'v Histogram<u64>>,
) {
    let any = parts
        .iter()
        .any(|p| items(&p.view).iter().any(|t| hist(t).is_some()));
    if !any {
        // Dimension switched off (`stats.histograms`) or nothing to show.
        return;
    }
    w.family(name, "histogram", help);
    for p in parts {
        for t in items(&p.view) {
            if let Some(h) = hist(t) {
                w.histogram(name, &labels(t), p.w(), h);
            }
        }
    }
    let qname = format!("{name}_quantiles");
    w.family(
        &qname,
        "summary",
        &format!("{help} Exact quantiles from the HDR histogram (NaN before the first sample)."),
    );
    for p in parts {
        for t in items(&p.view) {
            if let Some(h) = hist(t) {
                w.summary(&qname, &labels(t), p.w(), h);
            }
        }
    }
}

fn latency(w: &mut Writer, parts: &[Part]) {
    latency_family(
        w,
        parts,
        "ringway_request_duration_seconds",
        "Request duration by route: request head read to response complete.",
        |v| &v.routes,
        |r| vec![("route", r.name.as_str())],
        |r| r.latency.as_ref(),
    );
    latency_family(
        w,
        parts,
        "ringway_route_proxy_added_seconds",
        "Time ringway added by route: request duration minus upstream response time, \
         requests that reached an upstream only.",
        |v| &v.routes,
        |r| vec![("route", r.name.as_str())],
        |r| r.proxy_latency.as_ref(),
    );
    latency_family(
        w,
        parts,
        "ringway_listener_request_duration_seconds",
        "Request duration by listener (routed or not).",
        |v| &v.listeners,
        |l| vec![("listener", l.name.as_str())],
        |l| l.latency.as_ref(),
    );
    latency_family(
        w,
        parts,
        "ringway_upstream_duration_seconds",
        "Upstream response time by cluster: request sent upstream to response head received.",
        |v| &v.clusters,
        |c| vec![("cluster", c.name.as_str())],
        |c| c.latency.as_ref(),
    );
    latency_family(
        w,
        parts,
        "ringway_upstream_endpoint_duration_seconds",
        "Upstream response time by endpoint: request sent upstream to response head received.",
        |v| &v.endpoints,
        |e| {
            vec![
                ("cluster", e.cluster.as_str()),
                ("endpoint", e.endpoint.as_str()),
            ]
        },
        |e| e.latency.as_ref(),
    );
}

fn workers(w: &mut Writer, state: &AdminState, rings: &[Option<RingStats>]) {
    let ids: Vec<String> = (0..state.registry.worker_count())
        .map(|i| i.to_string())
        .collect();
    let name = "ringway_worker_info";
    w.family(
        name,
        "gauge",
        "Always 1; the worker's I/O driver and pinned core (\"-\": not pinned).",
    );
    for (i, id) in ids.iter().enumerate() {
        let driver = state.drivers.get(i).map_or("unknown", String::as_str);
        let core = state
            .cores
            .get(i)
            .copied()
            .flatten()
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        let labels = [("worker", id.as_str()), ("driver", driver), ("core", &core)];
        w.sample(name, &labels, None, Value::Int(1));
    }
    type Get = fn(&RingStats) -> Value;
    let families: [(&str, &str, &str, Get); 6] = [
        (
            "ringway_worker_ring_submissions_total",
            "counter",
            "io_uring submission queue entries consumed by the kernel (from SqHead; no series for workers without a ring).",
            |r| Value::Int(r.submissions),
        ),
        (
            "ringway_worker_ring_completions_total",
            "counter",
            "io_uring completions posted (from CqTail).",
            |r| Value::Int(r.completions),
        ),
        (
            "ringway_worker_ring_inflight",
            "gauge",
            "io_uring operations submitted and not completed yet. An estimate: SqHead - CqTail at the last sample; multishot operations complete more than once.",
            |r| Value::Int(r.inflight as u64),
        ),
        (
            "ringway_worker_ring_entries",
            "gauge",
            "io_uring submission queue size (entries).",
            |r| Value::Int(r.sq_entries as u64),
        ),
        (
            "ringway_worker_ring_cq_entries",
            "gauge",
            "io_uring completion queue size (entries).",
            |r| Value::Int(r.cq_entries as u64),
        ),
        (
            "ringway_worker_ring_cq_overflow",
            "gauge",
            "io_uring completions waiting on the kernel's CQ overflow list at the last sample (non-zero: the completion queue overflowed).",
            |r| Value::Int(r.cq_overflow as u64),
        ),
    ];
    for (name, kind, help, get) in families {
        w.family(name, kind, help);
        for (id, ring) in ids.iter().zip(rings) {
            if let Some(r) = ring {
                w.sample(name, &[("worker", id)], None, get(r));
            }
        }
    }
}
