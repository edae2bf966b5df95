//! `lb = "peak_ewma"`: power of two choices on cost = peak-EWMA latency ×
//! (in-flight + 1), as linkerd2-proxy and Finagle do.
//!
//! Each endpoint keeps an exponentially weighted moving average of its
//! response-head latency that jumps to any sample above it ("peak") and
//! decays with a time constant of [`DECAY`]; an endpoint not heard from
//! decays toward zero, so a once-slow endpoint is tried again later.
//! Endpoints never measured cost [`DEFAULT_RTT`].

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::hash::Rng;
use super::load::Load;

/// The EWMA's time constant (linkerd's default).
pub const DECAY: Duration = Duration::from_secs(10);
/// The estimate of an endpoint before its first response.
pub const DEFAULT_RTT: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy)]
struct Estimate {
    rtt_ns: f64,
    at: Instant,
}

impl Estimate {
    /// The estimate at `now`, decayed since the last sample.
    #[inline]
    fn at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_nanos() as f64;
        self.rtt_ns * (-elapsed / DECAY.as_nanos() as f64).exp()
    }
}

#[derive(Debug)]
pub struct PeakEwma {
    estimates: Box<[Cell<Estimate>]>,
    rng: Rng,
}

impl PeakEwma {
    pub fn new(endpoints: usize, seed: u64) -> PeakEwma {
        let start = Estimate {
            rtt_ns: DEFAULT_RTT.as_nanos() as f64,
            at: Instant::now(),
        };
        PeakEwma {
            estimates: (0..endpoints).map(|_| Cell::new(start)).collect(),
            rng: Rng::new(seed),
        }
    }

    pub fn pick(&self, load: &Load) -> Option<usize> {
        self.pick_at(load, Instant::now())
    }

    pub fn pick_at(&self, load: &Load, now: Instant) -> Option<usize> {
        match self.estimates.len() {
            0 => None,
            1 => Some(0),
            n => {
                let (a, b) = self.rng.two_below(n);
                let cost =
                    |i: usize| self.estimates[i].get().at(now) * f64::from(load.in_flight(i) + 1);
                Some(if cost(a) <= cost(b) { a } else { b })
            }
        }
    }

    /// A response head from `endpoint` arrived `rtt` after the request was
    /// sent.
    pub fn observe(&self, endpoint: usize, rtt: Duration, now: Instant) {
        let Some(cell) = self.estimates.get(endpoint) else {
            return;
        };
        let old = cell.get();
        let rtt_ns = rtt.as_nanos() as f64;
        let rtt_ns = if rtt_ns > old.rtt_ns {
            rtt_ns
        } else {
            let elapsed = now.saturating_duration_since(old.at).as_nanos() as f64;
            let w = (-elapsed / DECAY.as_nanos() as f64).exp();
            old.rtt_ns * w + rtt_ns * (1.0 - w)
        };
        cell.set(Estimate { rtt_ns, at: now });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avoids_a_slow_endpoint_after_feedback() {
        let p = PeakEwma::new(3, 11);
        let load = Load::new(3);
        let mut now = Instant::now();
        let mut counts = [0u32; 3];
        for _ in 0..1000 {
            let e = p.pick_at(&load, now).unwrap();
            counts[e] += 1;
            now += Duration::from_millis(1);
            let rtt = if e == 1 { 20 } else { 1 };
            p.observe(e, Duration::from_millis(rtt), now);
        }
        assert!(counts[1] < 20, "{counts:?}");
    }

    #[test]
    fn in_flight_counts_in_the_cost() {
        let p = PeakEwma::new(2, 1);
        let load = Load::new(2);
        for _ in 0..5 {
            load.start(0);
        }
        let now = Instant::now();
        assert!((0..100).all(|_| p.pick_at(&load, now) == Some(1)));
    }

    #[test]
    fn a_peak_decays() {
        let p = PeakEwma::new(2, 1);
        let t0 = Instant::now();
        p.observe(0, Duration::from_millis(100), t0);
        let later = p.estimates[0].get().at(t0 + DECAY * 3);
        assert!(later < 0.06 * 100e6, "{later}");
    }
}
