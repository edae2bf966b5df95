//! The pick of each load-balancing algorithm (`upstream::lb`) at 3 and 100
//! endpoints, including the in-flight guard (counted up on pick, down on
//! drop). Hashing policies get a fresh key hash per pick.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ringway::config::LbPolicy;
use ringway::upstream::lb::hash::mix64;
use ringway::upstream::lb::{Balancer, ClusterBalancer, Load};

fn cluster(policy: LbPolicy, n: usize, bound: Option<f64>) -> ClusterBalancer {
    let names: Vec<String> = (0..n)
        .map(|i| format!("10.0.{}.{}:80", i / 256, i % 256))
        .collect();
    let endpoints: Vec<(&str, u32)> = names
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), 1 + (i % 3) as u32))
        .collect();
    ClusterBalancer {
        balancer: Balancer::new(policy, &endpoints, bound, 7),
        load: Load::new(n),
        health: None,
        panic: 0.5,
        outliers: None,
        local: None,
    }
}

/// `cluster` with active health checks on and every endpoint healthy (the
/// pick's extra cost: one atomic load).
fn checked(policy: LbPolicy, n: usize) -> ClusterBalancer {
    use ringway::upstream::health::{ClusterHealth, HealthCell};
    let mut b = cluster(policy, n, None);
    let cells: Vec<std::sync::Arc<HealthCell>> = (0..n)
        .map(|_| std::sync::Arc::new(HealthCell::default()))
        .collect();
    b.health = Some(std::sync::Arc::new(ClusterHealth {
        cells: cells.into(),
    }));
    b
}

fn pick(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb_pick");
    let cases: [(&str, LbPolicy, Option<f64>); 8] = [
        ("round_robin", LbPolicy::RoundRobin, None),
        ("weighted_round_robin", LbPolicy::WeightedRoundRobin, None),
        ("random", LbPolicy::Random, None),
        ("least_request", LbPolicy::LeastRequest, None),
        ("peak_ewma", LbPolicy::PeakEwma, None),
        ("ring_hash", LbPolicy::RingHash, None),
        ("maglev", LbPolicy::Maglev, None),
        ("maglev_bounded", LbPolicy::Maglev, Some(1.25)),
    ];
    for (name, policy, bound) in cases {
        for n in [3usize, 100] {
            let b = cluster(policy, n, bound);
            let mut key = 0u64;
            g.bench_with_input(BenchmarkId::new(name, n), &n, |bench, _| {
                bench.iter(|| {
                    key += 1;
                    let guard = b.pick(Some(mix64(key)));
                    black_box(guard.map(|g| g.endpoint()))
                })
            });
        }
    }
    for (name, policy) in [
        ("round_robin_checked", LbPolicy::RoundRobin),
        ("peak_ewma_checked", LbPolicy::PeakEwma),
    ] {
        for n in [3usize, 100] {
            let b = checked(policy, n);
            g.bench_with_input(BenchmarkId::new(name, n), &n, |bench, _| {
                bench.iter(|| black_box(b.pick(None).map(|g| g.endpoint())))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pick);
criterion_main!(benches);
