//! Header-map building: parse a head, then walk its header spans the way the
//! proxy's stages do — resolve every (name, value) pair from the read buffer
//! into a reused list and look a few names up case-insensitively. Measures
//! what a request costs before routing when filters read headers.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway::http::head::{parse_request_head, HeadLimits, RequestHead};

const LOOKUPS: [&[u8]; 4] = [
    b"x-request-id",
    b"authorization",
    b"content-type",
    b"traceparent",
];

fn build_and_iterate(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let mut g = c.benchmark_group("header_map_build_iterate");
    for (name, buf) in common::request_heads() {
        let mut head = RequestHead::default();
        let mut map: Vec<(&[u8], &[u8])> = Vec::with_capacity(128);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let buf = black_box(&buf[..]);
                parse_request_head(buf, &limits, &mut head).unwrap();
                map.clear();
                map.extend(
                    head.headers
                        .iter()
                        .map(|h| (h.name.get(buf), h.value.get(buf))),
                );
                let mut found = 0usize;
                for want in LOOKUPS {
                    if let Some((_, v)) = map.iter().find(|(n, _)| n.eq_ignore_ascii_case(want)) {
                        found += v.len();
                    }
                }
                black_box((map.len(), found))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, build_and_iterate);
criterion_main!(benches);
