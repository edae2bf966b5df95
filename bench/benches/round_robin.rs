//! `RoundRobin::pick`: the per-worker endpoint cursor, for 1, 3 and 16
//! endpoints.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ringway::upstream::RoundRobin;

fn pick(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_robin_pick");
    for n in [1usize, 3, 16] {
        let rr = RoundRobin::starting_at(0);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| black_box(rr.pick(black_box(n))))
        });
    }
    g.finish();
}

criterion_group!(benches, pick);
criterion_main!(benches);
