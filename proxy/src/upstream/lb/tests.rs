//! The balancers behind the `Balancer` enum, as the pick stage uses them.

use super::*;

fn eps(weights: &[u32]) -> Vec<(String, u32)> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (format!("127.0.0.1:{}", 9000 + i), w))
        .collect()
}

fn build(policy: LbPolicy, weights: &[u32], bound: Option<f64>) -> ClusterBalancer {
    let owned = eps(weights);
    let endpoints: Vec<(&str, u32)> = owned.iter().map(|(n, w)| (n.as_str(), *w)).collect();
    ClusterBalancer {
        balancer: Balancer::new(policy, &endpoints, bound, 42),
        load: Load::new(weights.len()),
    }
}

fn counts(
    b: &ClusterBalancer,
    n: usize,
    picks: usize,
    hash: impl Fn(usize) -> Option<u64>,
) -> Vec<usize> {
    let mut c = vec![0; n];
    for i in 0..picks {
        c[b.pick(hash(i)).unwrap().endpoint()] += 1;
    }
    c
}

#[test]
fn weighted_round_robin_is_exact() {
    let b = build(LbPolicy::WeightedRoundRobin, &[3, 1], None);
    assert_eq!(counts(&b, 2, 10_000, |_| None), vec![7500, 2500]);
}

#[test]
fn round_robin_ignores_weights() {
    let b = build(LbPolicy::RoundRobin, &[3, 1, 1], None);
    assert_eq!(counts(&b, 3, 9_000, |_| None), vec![3000, 3000, 3000]);
}

#[test]
fn weights_respected_within_two_percent() {
    for policy in [LbPolicy::Random, LbPolicy::RingHash, LbPolicy::Maglev] {
        let b = build(policy, &[3, 1], None);
        let c = counts(&b, 2, 10_000, |i| {
            Some(hash::hash64(&(i as u64).to_le_bytes(), 0))
        });
        assert!(c[0].abs_diff(7500) <= 200, "{policy:?}: {c:?}");
    }
}

#[test]
fn hashing_without_a_key_falls_back_to_weighted_round_robin() {
    for policy in [LbPolicy::RingHash, LbPolicy::Maglev] {
        let b = build(policy, &[1, 1, 2], None);
        assert_eq!(
            counts(&b, 3, 400, |_| None),
            vec![100, 100, 200],
            "{policy:?}"
        );
    }
}

#[test]
fn the_guard_counts_in_flight_requests() {
    let b = build(LbPolicy::LeastRequest, &[1, 1], None);
    let g1 = b.pick(None).unwrap();
    let g2 = b.pick(None).unwrap();
    // P2C over two idle-then-busy endpoints: one each.
    assert_ne!(g1.endpoint(), g2.endpoint());
    assert_eq!(b.load.total(), 2);
    drop(g1);
    assert_eq!(b.load.total(), 1);
    drop(g2);
    assert_eq!((b.load.in_flight(0), b.load.in_flight(1)), (0, 0));
}

#[test]
fn peak_ewma_takes_latency_through_the_guard() {
    let b = build(LbPolicy::PeakEwma, &[1, 1, 1], None);
    let mut c = [0; 3];
    for _ in 0..300 {
        let g = b.pick(None).unwrap();
        c[g.endpoint()] += 1;
        let ms = if g.endpoint() == 2 { 20 } else { 1 };
        g.observe(Duration::from_millis(ms));
    }
    assert!(c[2] < 30, "{c:?}");
}
