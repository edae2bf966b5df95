//! The filter chain's request + response phases on a typical request:
//! an empty chain (what every route without filters pays), 3 header edits,
//! and 3 header edits + CORS (an allowed Origin), followed by writing the
//! upstream head with the edits applied (`write_request_head`).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ringway::http::head::parse_request_head;
use ringway::http::rewrite::{write_request_head, ForwardInfo};
use ringway::http::{HeadLimits, RequestHead};
use ringway::pipeline::filters::{
    run_request, run_response, Filter, FilterFile, FilterState, RequestCx, ResponseCx,
};

fn chain(text: &str) -> Vec<Filter> {
    #[derive(serde::Deserialize)]
    struct F {
        #[serde(default)]
        filters: Vec<FilterFile>,
    }
    let f: F = toml::from_str(text).expect("filters");
    f.filters
        .iter()
        .map(|f| f.build(&mut Vec::new()).expect("filter builds"))
        .collect()
}

const HEADERS: &str = r#"
[[filters]]
type = "headers"
request_set = { "x-route" = "$route" }
request_remove = ["x-debug"]
response_set = { "x-served-by" = "ringway" }
"#;

const CORS: &str = r#"
[[filters]]
type = "cors"
allow_origins = ["https://app.example.com"]
allow_methods = ["GET", "POST"]
max_age = "10m"
"#;

fn bench(c: &mut Criterion) {
    let mut raw = common::typical_request();
    // An Origin the CORS filter allows (before the final CRLF).
    raw.truncate(raw.len() - 2);
    raw.extend_from_slice(b"Origin: https://app.example.com\r\n\r\n");
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
    };
    let mut head = RequestHead::default();
    assert!(parse_request_head(&raw, &limits, &mut head).unwrap());
    let client = "10.1.2.3:5555".parse().unwrap();
    let cases = [
        ("empty", chain("")),
        ("headers3", chain(HEADERS)),
        ("headers3_cors", chain(&format!("{HEADERS}{CORS}"))),
    ];
    let mut g = c.benchmark_group("filter_chain");
    let mut state = FilterState::default();
    let mut out = Vec::with_capacity(4096);
    for (name, filters) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| {
                state.clear();
                let mut cx = RequestCx {
                    buf: &raw,
                    head: &head,
                    client,
                    listener: "public",
                    tls: None,
                    route: "api",
                    request_id: b"7f3c9a2e1b4d4e8f9a6b2c1d0e9f8a7b",
                    state: &mut state,
                };
                let (flow, ran) = if filters.is_empty() {
                    (ringway::pipeline::filters::Flow::Continue, 0)
                } else {
                    run_request(filters, &mut cx)
                };
                black_box(&flow);
                out.clear();
                write_request_head(
                    &mut out,
                    &raw,
                    &head,
                    &ForwardInfo {
                        client_ip: client.ip(),
                        tls: false,
                        request_id: b"7f3c9a2e1b4d4e8f9a6b2c1d0e9f8a7b",
                        default_host: b"backend",
                        upgrade: false,
                        strip_expect: false,
                        traceparent: None,
                        drop_tracestate: false,
                        target: state.target(),
                        edits: Some(&state.request),
                        client_cert: None,
                    },
                );
                let mut rcx = ResponseCx {
                    status: 200,
                    upstream: None,
                    client,
                    route: "api",
                    state: &mut state,
                };
                black_box(run_response(filters, ran, &mut rcx));
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
