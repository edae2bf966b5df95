//! OTLP trace export, end to end: a test collector on loopback decodes
//! what ringway POSTs with the official OpenTelemetry protobuf definitions
//! (`opentelemetry-proto`) and the tests check span counts, parent/child
//! links across two ringway hops, attributes, sampling and keep rules,
//! aggregation legs, and that a dead collector costs spans (counted), never
//! requests or memory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{memory_of, Proxy};

/// A span with the service that exported it.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    span: Span,
}

/// An OTLP/HTTP collector: decodes every POSTed body, answers `status`.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Got>>>,
    requests: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let c = Collector {
            addr,
            spans: Default::default(),
            requests: Default::default(),
            status: Arc::new(AtomicU16::new(200)),
            stop: Default::default(),
        };
        let (spans, requests, status, stop) = (
            c.spans.clone(),
            c.requests.clone(),
            c.status.clone(),
            c.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut s) = conn else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let Some((head, body)) = read_request(&mut s) else {
                    continue;
                };
                requests.lock().unwrap().push(head.clone());
                let req = ExportTraceServiceRequest::decode(&body[..])
                    .unwrap_or_else(|e| panic!("undecodable OTLP body ({e}); head:\n{head}"));
                let mut got = spans.lock().unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .as_ref()
                        .and_then(|r| string_attr(&r.attributes, "service.name"))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        assert_eq!(ss.scope.as_ref().unwrap().name, "ringway");
                        for span in ss.spans {
                            got.push(Got {
                                service: service.clone(),
                                span,
                            });
                        }
                    }
                }
                drop(got);
                let code = status.load(Ordering::Relaxed);
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        c
    }

    fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }

    /// Wait until `n` spans arrived (or 10 s); returns them.
    fn wait_for(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.spans();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("Content-Length");
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + len].to_vec()))
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        AnyValue::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `[tracing.otlp]` for `collector` plus `extra` keys.
fn with_otlp(
    config: Config,
    collector: &Collector,
    service: &str,
    extra: &[(&str, &str)],
) -> Config {
    let mut c = config
        .section("tracing.otlp", "endpoint", &q(&collector.endpoint()))
        .section("tracing.otlp", "service_name", &q(service))
        .section("tracing.otlp", "node", &q("test-node"))
        .section("tracing.otlp", "flush_interval", &q("50ms"));
    for (k, v) in extra {
        c = c.section("tracing.otlp", k, v);
    }
    c
}

fn of_kind(spans: &[Got], service: &str, kind: SpanKind) -> Vec<Span> {
    spans
        .iter()
        .filter(|g| g.service == service && g.span.kind == kind as i32)
        .map(|g| g.span.clone())
        .collect()
}

#[test]
fn otlp_two_hops_link_parent_and_child_spans() {
    let collector = Collector::start();
    let origin = Origin::start();
    // mesh: the second hop, in front of the origin.
    let mesh_dir = TestDir::new("otlp-mesh");
    let mesh = Proxy::start(
        &mesh_dir,
        &with_otlp(Config::simple(origin.addr()), &collector, "mesh", &[]),
    );
    // edge: the first hop, in front of mesh.
    let edge_dir = TestDir::new("otlp-edge");
    let edge_config = Config::new()
        .listener("public")
        .route("public", "/", "mesh", &[("name", &q("api"))])
        .cluster("mesh", &[mesh.addr("public")], &[]);
    let edge = Proxy::start(&edge_dir, &with_otlp(edge_config, &collector, "edge", &[]));

    let mut c = Client::connect(edge.addr("public"));
    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = c.request(
        &Request::get("/items/7?color=red")
            .header("traceparent", incoming)
            .header("user-agent", "otlp-test/1"),
    );
    assert_eq!(r.status(), 200, "{r}");
    let r = c.request(&Request::get("/status/503"));
    assert_eq!(r.status(), 503, "{r}");

    // Two requests × two hops × (server + client) spans.
    let spans = collector.wait_for(8);
    assert_eq!(spans.len(), 8, "{spans:#?}");
    let edge_servers = of_kind(&spans, "edge", SpanKind::Server);
    let edge_clients = of_kind(&spans, "edge", SpanKind::Client);
    let mesh_servers = of_kind(&spans, "mesh", SpanKind::Server);
    let mesh_clients = of_kind(&spans, "mesh", SpanKind::Client);
    assert_eq!(
        [
            edge_servers.len(),
            edge_clients.len(),
            mesh_servers.len(),
            mesh_clients.len()
        ],
        [2, 2, 2, 2]
    );

    // The continued trace: incoming parent → edge server → edge client →
    // mesh server → mesh client, one trace id.
    let first = |v: &[Span]| {
        v.iter()
            .find(|s| hex(&s.trace_id) == "0af7651916cd43dd8448eb211c80319c")
            .cloned()
            .unwrap_or_else(|| panic!("no span of the continued trace in {v:#?}"))
    };
    let (es, ec, ms, mc) = (
        first(&edge_servers),
        first(&edge_clients),
        first(&mesh_servers),
        first(&mesh_clients),
    );
    assert_eq!(hex(&es.parent_span_id), "b7ad6b7169203331");
    assert_eq!(ec.parent_span_id, es.span_id);
    assert_eq!(
        ms.parent_span_id, ec.span_id,
        "mesh's server span is the child of edge's client span"
    );
    assert_eq!(mc.parent_span_id, ms.span_id);
    // What the origin received names mesh's client span.
    let rec = origin.requests().into_iter().next().unwrap();
    let tp = rec.header("traceparent").unwrap().to_owned();
    assert_eq!(
        tp,
        format!(
            "00-0af7651916cd43dd8448eb211c80319c-{}-01",
            hex(&mc.span_id)
        )
    );
    let ids: std::collections::HashSet<Vec<u8>> = [&es, &ec, &ms, &mc]
        .iter()
        .map(|s| s.span_id.clone())
        .collect();
    assert_eq!(ids.len(), 4, "span ids are distinct");

    // Server span: name and attributes after the HTTP conventions.
    assert_eq!(es.name, "GET api");
    let a = &es.attributes;
    assert_eq!(
        string_attr(a, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(string_attr(a, "url.path").as_deref(), Some("/items/7"));
    assert_eq!(string_attr(a, "url.query").as_deref(), Some("color=red"));
    assert_eq!(string_attr(a, "url.scheme").as_deref(), Some("http"));
    assert_eq!(string_attr(a, "http.route").as_deref(), Some("api"));
    assert_eq!(int_attr(a, "http.response.status_code"), Some(200));
    assert_eq!(
        string_attr(a, "client.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        string_attr(a, "user_agent.original").as_deref(),
        Some("otlp-test/1")
    );
    assert_eq!(
        string_attr(a, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert!(int_attr(a, "http.request.size").unwrap() > 0);
    assert!(int_attr(a, "http.response.size").unwrap() > 0);
    assert_eq!(
        string_attr(a, "ringway.listener").as_deref(),
        Some("public")
    );
    assert!(es.status.is_none() || es.status.as_ref().unwrap().code != StatusCode::Error as i32);
    assert!(es.start_time_unix_nano > 1_700_000_000_000_000_000);
    assert!(es.end_time_unix_nano >= es.start_time_unix_nano);
    // The client span sits inside its server span.
    assert!(ec.start_time_unix_nano >= es.start_time_unix_nano);
    assert!(ec.end_time_unix_nano <= es.end_time_unix_nano);
    assert_eq!(ec.name, "GET");
    let a = &ec.attributes;
    assert_eq!(
        string_attr(a, "network.peer.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        int_attr(a, "network.peer.port"),
        Some(mesh.addr("public").port() as i64)
    );
    assert_eq!(string_attr(a, "ringway.cluster").as_deref(), Some("mesh"));
    assert_eq!(int_attr(a, "http.response.status_code"), Some(200));

    // The 503 from the origin: both server spans are errors with
    // error.type 503 (a new trace, started at edge).
    let failed: Vec<&Span> = edge_servers
        .iter()
        .chain(&mesh_servers)
        .filter(|s| int_attr(&s.attributes, "http.response.status_code") == Some(503))
        .collect();
    assert_eq!(failed.len(), 2);
    for s in failed {
        assert_eq!(s.status.as_ref().unwrap().code, StatusCode::Error as i32);
        assert_eq!(
            string_attr(&s.attributes, "error.type").as_deref(),
            Some("503")
        );
    }

    // The resource names the service and node; the exporter posts protobuf.
    let heads = collector.requests.lock().unwrap().clone();
    assert!(heads
        .iter()
        .all(|h| h.starts_with("POST /v1/traces HTTP/1.1")));
    assert!(heads.iter().all(|h| h
        .to_ascii_lowercase()
        .contains("content-type: application/x-protobuf")));
}

#[test]
fn otlp_sampling_ratio_and_keep_rules() {
    let collector = Collector::start();
    let origin = Origin::start();
    let dir = TestDir::new("otlp-sampling");
    let config = Config::new()
        .listener("public")
        .route("public", "/dead", "dead", &[("name", &q("dead"))])
        .route("public", "/", "app", &[("name", &q("app"))])
        .cluster("app", &[origin.addr()], &[])
        // Nothing listens there: 502.
        .cluster("dead", &["127.0.0.1:9".parse().unwrap()], &[]);
    let config = with_otlp(
        config,
        &collector,
        "edge",
        &[("sample_ratio", "0.0"), ("keep_slower_than", &q("150ms"))],
    );
    let proxy = Proxy::start(&dir, &config);
    let mut c = Client::connect(proxy.addr("public"));
    // Head-sampled out: nothing exported, and the origin is told so.
    for i in 0..20 {
        assert_eq!(c.get(&format!("/fast/{i}")).status(), 200);
    }
    let tp = origin.last_request().unwrap();
    assert!(tp.header("traceparent").unwrap().ends_with("-00"), "{tp:?}");
    // A parent that sampled: exported (parent-based), flags kept.
    let r = c.request(&Request::get("/parent").header(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ));
    assert_eq!(r.status(), 200);
    // A parent that did not sample: not exported.
    let r = c.request(&Request::get("/unsampled-parent").header(
        "traceparent",
        "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    ));
    assert_eq!(r.status(), 200);
    // Kept at the end although the head said no: an error, a slow one.
    assert_eq!(c.get("/dead/x").status(), 502);
    let mut c = Client::connect(proxy.addr("public"));
    assert_eq!(c.get("/delay/300").status(), 200);
    // An origin 4xx is not an error of this server: not kept.
    assert_eq!(c.get("/status/404").status(), 404);

    let spans = collector.wait_for(5);
    std::thread::sleep(Duration::from_millis(300));
    let spans = if spans.len() < 5 {
        spans
    } else {
        collector.spans()
    };
    let servers = of_kind(&spans, "edge", SpanKind::Server);
    let paths: Vec<String> = servers
        .iter()
        .map(|s| string_attr(&s.attributes, "url.path").unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(sorted, ["/dead/x", "/delay/300", "/parent"], "{paths:?}");
    // The failed one has a client span with the error and no response.
    let clients = of_kind(&spans, "edge", SpanKind::Client);
    assert_eq!(clients.len(), 2, "{clients:#?}");
    let dead = servers
        .iter()
        .find(|s| string_attr(&s.attributes, "url.path").as_deref() == Some("/dead/x"))
        .unwrap();
    assert_eq!(dead.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert!(string_attr(&dead.attributes, "error.type").is_some());
    let parent = servers
        .iter()
        .find(|s| string_attr(&s.attributes, "url.path").as_deref() == Some("/parent"))
        .unwrap();
    assert_eq!(hex(&parent.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&parent.parent_span_id), "00f067aa0ba902b7");
}

#[test]
fn otlp_aggregation_legs_are_separate_client_spans() {
    let collector = Collector::start();
    let (a, b) = (Origin::start_named("a"), Origin::start_named("b"));
    let dir = TestDir::new("otlp-aggregate");
    let config = Config::new()
        .listener("public")
        .route(
            "public",
            "/both",
            "a",
            &[
                ("name", &q("both")),
                (
                    "aggregate",
                    r#"{ policy = "partial", legs = [{ name = "one", cluster = "a", path = "/x" }, { name = "two", cluster = "b", path = "/y" }] }"#,
                ),
            ],
        )
        .cluster("a", &[a.addr()], &[])
        .cluster("b", &[b.addr()], &[]);
    // `route` sets `cluster`; an aggregate route has no other action.
    let toml = with_otlp(config, &collector, "edge", &[]).to_toml();
    let toml = toml.replacen(
        "path_prefix = \"/both\"\ncluster = \"a\"\n",
        "path_prefix = \"/both\"\n",
        1,
    );
    assert!(!toml.contains("path_prefix = \"/both\"\ncluster"), "{toml}");
    let proxy = Proxy::start_toml(&dir, &toml, &[]);
    let mut c = Client::connect(proxy.addr("public"));
    let r = c.get("/both");
    assert_eq!(r.status(), 200, "{r}");
    let spans = collector.wait_for(3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = &of_kind(&spans, "edge", SpanKind::Server)[0];
    let legs = of_kind(&spans, "edge", SpanKind::Client);
    assert_eq!(legs.len(), 2);
    let mut names = Vec::new();
    for leg in &legs {
        assert_eq!(leg.parent_span_id, server.span_id);
        assert_eq!(leg.trace_id, server.trace_id);
        names.push(string_attr(&leg.attributes, "ringway.aggregate.leg").unwrap());
        assert_eq!(
            int_attr(&leg.attributes, "http.response.status_code"),
            Some(200)
        );
    }
    names.sort();
    assert_eq!(names, ["one", "two"]);
    assert_ne!(legs[0].span_id, legs[1].span_id);
    // Each origin saw its own leg's span id.
    for (origin, leg) in [(&a, "one"), (&b, "two")] {
        let tp = origin
            .last_request()
            .unwrap()
            .header("traceparent")
            .unwrap()
            .to_owned();
        let span = legs
            .iter()
            .find(|s| string_attr(&s.attributes, "ringway.aggregate.leg").as_deref() == Some(leg))
            .unwrap();
        assert_eq!(&tp[36..52], hex(&span.span_id), "{leg}");
    }
}

#[test]
fn otlp_dead_collector_costs_spans_not_requests() {
    let collector = Collector::start();
    let origin = Origin::start();
    let dir = TestDir::new("otlp-dead");
    let config = with_otlp(
        Config::simple(origin.addr()).admin(),
        &collector,
        "edge",
        &[
            ("batch_spans", "50"),
            ("queue_batches", "2"),
            ("timeout", &q("300ms")),
        ],
    );
    let proxy = Proxy::start(&dir, &config);
    let admin = proxy.admin_addr();
    let metric = |name: &str| -> u64 {
        let text = Client::connect(admin).get("/metrics").body_str();
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let mut c = Client::connect(proxy.addr("public"));
    for i in 0..50 {
        assert_eq!(c.get(&format!("/a/{i}")).status(), 200);
    }
    assert_eq!(collector.wait_for(100).len(), 100);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric("ringway_trace_spans_exported_total") < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metric("ringway_trace_spans_exported_total"), 100);

    // The collector goes away mid-load: it refuses, then nothing listens.
    collector.status.store(503, Ordering::Relaxed);
    let before = memory_of(proxy.pid()).unwrap().rss_kib;
    let started = Instant::now();
    let mut clients: Vec<_> = (0..4)
        .map(|_| Client::connect(proxy.addr("public")))
        .collect();
    for i in 0..3000 {
        let r = clients[i % 4].get(&format!("/b/{i}"));
        assert_eq!(r.status(), 200, "request {i}");
        if i == 1000 {
            collector_stop(&collector);
        }
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(700));
    let dropped = metric("ringway_trace_spans_dropped_total");
    let exported = metric("ringway_trace_spans_exported_total");
    assert_eq!(exported, 100, "nothing more was accepted");
    assert!(dropped >= 5000, "dropped {dropped} of 6000 spans");
    assert!(metric("ringway_trace_export_requests_total{result=\"failed\"") >= 1);
    // Memory stayed bounded: the queue holds at most 2 batches of 50.
    let after = memory_of(proxy.pid()).unwrap().rss_kib;
    assert!(after < before + 16 * 1024, "RSS {before} → {after} KiB");
    println!("3000 requests with a failing collector in {took:?}; dropped {dropped} spans");
}

/// Stop the collector's listener (new connections are refused).
fn collector_stop(c: &Collector) {
    c.stop.store(true, Ordering::Relaxed);
    let _ = TcpStream::connect(c.addr);
}
