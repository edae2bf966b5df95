//! Load balancing: which endpoint of a cluster takes a request (`lb` on a
//! `[[cluster]]`).
//!
//! # Architecture
//! One [`ClusterBalancer`] per cluster per worker, built with the worker's
//! generation (`pipeline::generation::WorkerGen`): a [`Balancer`] (the
//! algorithm, one file each) and a [`Load`] (in-flight requests per
//! endpoint). Everything is `!Send` (`Cell`): no locks, no atomics, no
//! cross-core traffic; each worker balances its own share of the requests,
//! and in-flight counts and latencies are what this worker sees.
//!
//! A pick returns an [`InFlight`] guard: it counts the request as in flight
//! until dropped (at the end of the forward stage), and takes the response
//! latency back for `peak_ewma`.
//!
//! | `lb` | file | picks |
//! | --- | --- | --- |
//! | `round_robin` | `upstream::balancer` | in turn, ignoring weights |
//! | `weighted_round_robin` | `upstream::balancer` | smooth WRR (nginx): exact shares per `sum(weights)` |
//! | `random` | `random.rs` | at random, by weight |
//! | `least_request` | `least_request.rs` | P2C on in-flight / weight |
//! | `peak_ewma` | `peak_ewma.rs` | P2C on peak-EWMA latency × (in-flight + 1) |
//! | `ring_hash` | `ring_hash.rs` | consistent hash ring of the request key |
//! | `maglev` | `maglev.rs` | Maglev table of the request key |
//!
//! A request without its hash key (no such header, cookie or query
//! parameter) goes by smooth weighted round robin instead.
//!
//! # Performance
//! Picks are O(1) except `ring_hash` (binary search over ~100 × weight
//! points) and bounded-load hashing (a short walk when the owner is over
//! its bound). Rings and tables are built per worker per generation.

pub mod hash;
pub mod least_request;
pub mod load;
pub mod maglev;
pub mod outlier;
pub mod peak_ewma;
pub mod random;
pub mod ring_hash;

use std::time::{Duration, Instant};

use crate::config::{ClusterConfig, LbPolicy};
use crate::upstream::balancer::{RoundRobin, SmoothWeighted};

pub use least_request::LeastRequest;
pub use load::Load;
pub use maglev::Maglev;
pub use peak_ewma::PeakEwma;
pub use random::Random;
pub use ring_hash::RingHash;

/// What a pick may look at.
pub struct PickContext<'a> {
    /// The hash of the request's `hash_key`, when the cluster has one and
    /// the request carries it.
    pub hash: Option<u64>,
    /// In-flight requests per endpoint (this worker).
    pub load: &'a Load,
}

/// A load-balancing algorithm over one cluster's endpoints.
#[derive(Debug)]
pub enum Balancer {
    RoundRobin(RoundRobin, usize),
    WeightedRoundRobin(SmoothWeighted),
    Random(Random),
    LeastRequest(LeastRequest),
    PeakEwma(PeakEwma),
    /// The ring, and the weighted round robin for requests without a key.
    RingHash(RingHash, SmoothWeighted),
    Maglev(Maglev, SmoothWeighted),
}

impl Balancer {
    /// Build `policy` over `(name, weight)` endpoints; `seed` differs per
    /// worker and cluster (random draws, round-robin start).
    pub fn new(
        policy: LbPolicy,
        endpoints: &[(&str, u32)],
        bound: Option<f64>,
        seed: u64,
    ) -> Balancer {
        let n = endpoints.len();
        let weights: Vec<u32> = endpoints.iter().map(|e| e.1).collect();
        match policy {
            LbPolicy::RoundRobin => {
                Balancer::RoundRobin(RoundRobin::starting_at(seed as usize % n.max(1)), n)
            }
            LbPolicy::WeightedRoundRobin => {
                Balancer::WeightedRoundRobin(SmoothWeighted::new(&weights))
            }
            LbPolicy::Random => Balancer::Random(Random::new(&weights, seed)),
            LbPolicy::LeastRequest => Balancer::LeastRequest(LeastRequest::new(&weights, seed)),
            LbPolicy::PeakEwma => Balancer::PeakEwma(PeakEwma::new(n, seed)),
            LbPolicy::RingHash => Balancer::RingHash(
                RingHash::new(endpoints, bound),
                SmoothWeighted::new(&weights),
            ),
            LbPolicy::Maglev => Balancer::Maglev(
                Maglev::new(endpoints, maglev::TABLE_SIZE, bound),
                SmoothWeighted::new(&weights),
            ),
        }
    }

    /// The endpoint (index) for the next request, `None` when there is
    /// none.
    #[inline]
    pub fn pick(&self, ctx: &PickContext) -> Option<usize> {
        match self {
            Balancer::RoundRobin(rr, n) => rr.pick(*n),
            Balancer::WeightedRoundRobin(w) => w.pick(),
            Balancer::Random(r) => r.pick(),
            Balancer::LeastRequest(l) => l.pick(ctx.load),
            Balancer::PeakEwma(p) => p.pick(ctx.load),
            Balancer::RingHash(r, fallback) => match ctx.hash {
                Some(h) => r.pick(h, ctx.load),
                None => fallback.pick(),
            },
            Balancer::Maglev(m, fallback) => match ctx.hash {
                Some(h) => m.pick(h, ctx.load),
                None => fallback.pick(),
            },
        }
    }

    /// A response from `endpoint` arrived `latency` after the request went
    /// out.
    #[inline]
    pub fn observe(&self, endpoint: usize, latency: Duration) {
        if let Balancer::PeakEwma(p) = self {
            p.observe(endpoint, latency, Instant::now());
        }
    }
}

/// One cluster's balancer on one worker (`!Send`).
#[derive(Debug)]
pub struct ClusterBalancer {
    pub balancer: Balancer,
    pub load: Load,
    /// Active health of the endpoints (clusters with a `health_check`).
    pub health: Option<std::sync::Arc<crate::upstream::health::ClusterHealth>>,
    /// Fewer healthy endpoints than this share (0–1): every endpoint
    /// takes traffic.
    pub panic: f64,
    /// Passive outlier ejection on this worker (`outlier_detection`).
    pub outliers: Option<outlier::Outliers>,
    /// Zone-aware routing: which endpoints are in the preferred zone, and
    /// the share of them that must be eligible to keep traffic there.
    pub local: Option<(Box<[bool]>, f64)>,
}

impl ClusterBalancer {
    /// The balancer of `cluster` (index `index`) on worker `worker`, with
    /// the endpoints' `health` when the cluster is checked.
    pub fn new(
        cluster: &ClusterConfig,
        index: usize,
        worker: usize,
        health: Option<std::sync::Arc<crate::upstream::health::ClusterHealth>>,
    ) -> ClusterBalancer {
        let endpoints: Vec<(&str, u32)> = cluster
            .endpoints
            .iter()
            .map(|e| (e.label.as_str(), e.weight))
            .collect();
        // Round robin starts at the worker's id (as before); the others
        // draw from a stream of their own.
        let seed = match cluster.lb {
            LbPolicy::RoundRobin => worker as u64,
            _ => hash::mix64(((worker as u64) << 32) ^ index as u64 ^ 0x5eed),
        };
        ClusterBalancer {
            balancer: Balancer::new(cluster.lb, &endpoints, cluster.bounded_load, seed),
            load: Load::new(endpoints.len()),
            health,
            panic: cluster.panic_threshold / 100.0,
            outliers: None,
            local: cluster.prefer_zone.as_ref().map(|(zone, share)| {
                let mask: Box<[bool]> = cluster
                    .endpoints
                    .iter()
                    .map(|e| e.zone.as_deref() == Some(zone.as_str()))
                    .collect();
                (mask, *share)
            }),
        }
    }

    /// Whether `endpoint` may take a request: healthy (active checks) and
    /// not ejected (outlier detection).
    #[inline]
    fn eligible(&self, endpoint: usize) -> bool {
        self.health.as_ref().is_none_or(|h| h.is_healthy(endpoint))
            && self
                .outliers
                .as_ref()
                .is_none_or(|o| !o.is_ejected(endpoint))
    }

    /// The worker's tick: success-rate outlier detection.
    pub fn tick(&self, now: Instant) {
        if let Some(o) = &self.outliers {
            o.sweep(now);
        }
    }

    /// How an exchange with `endpoint` ended (outlier detection).
    #[inline]
    pub fn observe_outcome(&self, endpoint: usize, outcome: outlier::Outcome) {
        if let Some(o) = &self.outliers {
            o.observe(endpoint, outcome);
        }
    }

    /// Pick an endpoint for a request whose key hashes to `hash`, and count
    /// it in flight until the guard drops.
    #[inline]
    pub fn pick(&self, hash: Option<u64>) -> Option<InFlight<'_>> {
        let ctx = PickContext {
            hash,
            load: &self.load,
        };
        let mut endpoint = self.balancer.pick(&ctx)?;
        if (self.health.is_some() || self.outliers.is_some()) && !self.eligible(endpoint) {
            endpoint = self.healthy_instead(endpoint, &ctx);
        }
        if let Some((mask, share)) = &self.local {
            if !mask.get(endpoint).copied().unwrap_or(true) {
                endpoint = self.local_instead(endpoint, &ctx, mask, *share);
            }
        }
        self.load.start(endpoint);
        Some(InFlight {
            cluster: self,
            endpoint,
        })
    }
}

impl ClusterBalancer {
    /// The algorithm picked an unhealthy or ejected endpoint: let it pick
    /// again (its own order: the next in turn, another draw), then take the
    /// next eligible endpoint after `picked` (a hash key's owner is out:
    /// its keys move to one neighbour, as on a ring). With fewer eligible
    /// endpoints than the panic threshold, health and ejection are ignored
    /// (`picked`).
    #[cold]
    fn healthy_instead(&self, picked: usize, ctx: &PickContext) -> usize {
        let n = self.load.len();
        let eligible = (0..n).filter(|&e| self.eligible(e)).count();
        if eligible == 0 || (eligible as f64) < self.panic * n as f64 {
            return picked;
        }
        if ctx.hash.is_none() {
            for _ in 0..n {
                match self.balancer.pick(ctx) {
                    Some(e) if self.eligible(e) => return e,
                    Some(_) => {}
                    None => break,
                }
            }
        }
        (1..n)
            .map(|i| (picked + i) % n)
            .find(|&e| self.eligible(e))
            .unwrap_or(picked)
    }
}

impl ClusterBalancer {
    /// Zone-aware routing: the algorithm picked an endpoint outside the
    /// preferred zone. While at least `share` of the zone's endpoints are
    /// eligible (healthy, not ejected), pick again (its own order), then
    /// take the next eligible endpoint of the zone; otherwise the pick
    /// stands (traffic spills over to the other zones).
    #[cold]
    fn local_instead(&self, picked: usize, ctx: &PickContext, mask: &[bool], share: f64) -> usize {
        let local: Vec<usize> = (0..mask.len()).filter(|&e| mask[e]).collect();
        let ready = local.iter().filter(|&&e| self.eligible(e)).count();
        if ready == 0 || (ready as f64) < share * local.len() as f64 {
            return picked;
        }
        if ctx.hash.is_none() {
            for _ in 0..mask.len() {
                match self.balancer.pick(ctx) {
                    Some(e) if mask[e] && self.eligible(e) => return e,
                    Some(_) => {}
                    None => break,
                }
            }
        }
        (1..mask.len())
            .map(|i| (picked + i) % mask.len())
            .find(|&e| mask[e] && self.eligible(e))
            .unwrap_or(picked)
    }
}

/// A picked endpoint with its request in flight: dropping it ends the
/// request (for `least_request`, `peak_ewma` and bounded loads).
#[derive(Debug)]
pub struct InFlight<'a> {
    cluster: &'a ClusterBalancer,
    endpoint: usize,
}

impl InFlight<'_> {
    /// The endpoint's index in its cluster.
    #[inline]
    pub fn endpoint(&self) -> usize {
        self.endpoint
    }

    /// The response head arrived `latency` after the request was sent.
    #[inline]
    pub fn observe(&self, latency: Duration) {
        self.cluster.balancer.observe(self.endpoint, latency);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.cluster.load.finish(self.endpoint);
    }
}

#[cfg(test)]
mod tests;
