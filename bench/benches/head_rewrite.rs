//! `write_request_head` / `write_response_head`: the forwarded heads written
//! into a reused output buffer (hop-by-hop removal, X-Forwarded-*,
//! X-Request-Id), from already-parsed typical and large heads.

mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway::http::head::{parse_request_head, HeadLimits, RequestHead};
use ringway::http::response::{parse_response_head, ResponseHead};
use ringway::http::rewrite::{write_request_head, write_response_head, ForwardInfo, ResponseInfo};

fn request_head(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let info = ForwardInfo {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        tls: false,
        request_id: b"0af7651916cd43dd8448eb211c80319c",
        default_host: b"api.example.com",
        upgrade: false,
        strip_expect: false,
        traceparent: Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        drop_tracestate: false,
        target: None,
        edits: None,
        client_cert: None,
    };
    let mut g = c.benchmark_group("write_request_head");
    for (name, buf) in common::request_heads() {
        let mut head = RequestHead::default();
        parse_request_head(&buf, &limits, &mut head).unwrap();
        let mut out = Vec::with_capacity(16 * 1024);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_request_head(&mut out, black_box(&buf), &head, &info);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn response_head(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let info = ResponseInfo::default();
    let mut g = c.benchmark_group("write_response_head");
    for (name, buf) in common::response_heads() {
        let mut head = ResponseHead::default();
        parse_response_head(&buf, &limits, false, &mut head).unwrap();
        let mut out = Vec::with_capacity(16 * 1024);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_response_head(&mut out, black_box(&buf), &head, &info);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, request_head, response_head);
criterion_main!(benches);
