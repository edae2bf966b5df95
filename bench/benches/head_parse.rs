//! `parse_request_head` / `parse_response_head`: strict HTTP/1.1 head parsing
//! into spans, on a typical (~8 headers, ~300 B) and a large (~60 headers,
//! ~4 KiB) head. The `RequestHead` is reused, as on a keep-alive connection.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway::http::head::{parse_request_head, HeadLimits, RequestHead};
use ringway::http::response::{parse_response_head, ResponseHead};

fn request_head(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let mut g = c.benchmark_group("parse_request_head");
    for (name, buf) in common::request_heads() {
        let mut head = RequestHead::default();
        assert_eq!(parse_request_head(&buf, &limits, &mut head), Ok(true));
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let done = parse_request_head(black_box(&buf), &limits, &mut head);
                black_box((done, head.headers.len()))
            })
        });
    }
    g.finish();
}

fn response_head(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let mut g = c.benchmark_group("parse_response_head");
    for (name, buf) in common::response_heads() {
        let mut head = ResponseHead::default();
        assert_eq!(
            parse_response_head(&buf, &limits, false, &mut head),
            Ok(true)
        );
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let done = parse_response_head(black_box(&buf), &limits, false, &mut head);
                black_box((done, head.headers.len()))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, request_head, response_head);
criterion_main!(benches);
