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
        health: None,
        panic: 0.5,
        outliers: None,
        local: None,
    }
}

/// `b` with health cells; `down` endpoints unhealthy.
fn with_health(mut b: ClusterBalancer, n: usize, down: &[usize]) -> ClusterBalancer {
    use crate::upstream::health::{ClusterHealth, HealthCell};
    let cells: Vec<std::sync::Arc<HealthCell>> = (0..n)
        .map(|i| {
            let c = std::sync::Arc::new(HealthCell::default());
            if down.contains(&i) {
                for _ in 0..3 {
                    c.record(false, 0, 2, 3);
                }
            }
            c
        })
        .collect();
    b.health = Some(std::sync::Arc::new(ClusterHealth {
        cells: cells.into(),
    }));
    b
}

#[test]
fn unhealthy_endpoints_get_nothing_until_too_few_are_left() {
    let policies = [
        LbPolicy::RoundRobin,
        LbPolicy::WeightedRoundRobin,
        LbPolicy::Random,
        LbPolicy::LeastRequest,
        LbPolicy::PeakEwma,
        LbPolicy::RingHash,
        LbPolicy::Maglev,
    ];
    for policy in policies {
        let b = with_health(build(policy, &[1, 1, 1, 1], None), 4, &[1]);
        let c = counts(&b, 4, 4000, |i| Some(hash::mix64(i as u64)));
        assert_eq!(c[1], 0, "{policy:?}: {c:?}");
        assert!(
            c.iter().filter(|&&x| x > 0).count() == 3,
            "{policy:?}: {c:?}"
        );
        // Without hash keys too.
        let c = counts(&b, 4, 4000, |_| None);
        assert_eq!(c[1], 0, "{policy:?}: {c:?}");
        // Three of four down: 25 % healthy, under the 50 % panic
        // threshold: every endpoint takes traffic again.
        let b = with_health(build(policy, &[1, 1, 1, 1], None), 4, &[0, 1, 2]);
        let c = counts(&b, 4, 4000, |_| None);
        assert!(
            c[0] > 0 && c[1] > 0 && c[2] > 0,
            "{policy:?} in panic: {c:?}"
        );
    }
    // A hash key whose owner is down moves to one neighbour, always the
    // same: the rest of the keys stay where they were.
    let all = build(LbPolicy::Maglev, &[1, 1, 1, 1], None);
    let b = with_health(build(LbPolicy::Maglev, &[1, 1, 1, 1], None), 4, &[2]);
    for i in 0..2000u64 {
        let h = Some(hash::mix64(i));
        let before = all.pick(h).unwrap().endpoint();
        let now = b.pick(h).unwrap().endpoint();
        if before != 2 {
            assert_eq!(now, before, "key {i} moved although its endpoint is up");
        } else {
            assert_eq!(now, b.pick(h).unwrap().endpoint(), "key {i} is not stable");
            assert_ne!(now, 2);
        }
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

#[test]
fn zone_aware_routing_stays_local_until_too_few_are_left() {
    for policy in [
        LbPolicy::RoundRobin,
        LbPolicy::LeastRequest,
        LbPolicy::Random,
    ] {
        // Endpoints 0 and 1 in the preferred zone, 2 and 3 elsewhere.
        let local = |down: &[usize]| {
            let mut b = with_health(build(policy, &[1, 1, 1, 1], None), 4, down);
            b.local = Some((vec![true, true, false, false].into(), 0.5));
            b.panic = 0.0;
            b
        };
        let c = counts(&local(&[]), 4, 2000, |_| None);
        assert_eq!((c[2], c[3]), (0, 0), "{policy:?}: {c:?}");
        assert!(c[0] > 0 && c[1] > 0, "{policy:?}: {c:?}");
        // One of two local endpoints down: 50 % ≥ 50 %, still local.
        let c = counts(&local(&[0]), 4, 2000, |_| None);
        assert_eq!((c[0], c[2], c[3]), (0, 0, 0), "{policy:?}: {c:?}");
        // Both down: traffic spills over to the other zone.
        let c = counts(&local(&[0, 1]), 4, 2000, |_| None);
        assert_eq!((c[0], c[1]), (0, 0), "{policy:?}: {c:?}");
        assert!(c[2] > 0 && c[3] > 0, "{policy:?}: {c:?}");
    }
}
