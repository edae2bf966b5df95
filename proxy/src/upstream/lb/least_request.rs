//! `lb = "least_request"`: power of two choices (Mitzenmacher): draw two
//! distinct endpoints at random, send to the one with fewer requests in
//! flight on this worker relative to its weight. Nearly as good as scanning
//! every endpoint, O(1), and without the herd a global minimum attracts.

use super::hash::Rng;
use super::load::Load;

#[derive(Debug)]
pub struct LeastRequest {
    weights: Box<[u32]>,
    rng: Rng,
}

impl LeastRequest {
    pub fn new(weights: &[u32], seed: u64) -> LeastRequest {
        LeastRequest {
            weights: weights.into(),
            rng: Rng::new(seed),
        }
    }

    pub fn pick(&self, load: &Load) -> Option<usize> {
        match self.weights.len() {
            0 => None,
            1 => Some(0),
            n => {
                let (a, b) = self.rng.two_below(n);
                // load_a / w_a <= load_b / w_b, without division.
                let la = u64::from(load.in_flight(a)) * u64::from(self.weights[b]);
                let lb = u64::from(load.in_flight(b)) * u64::from(self.weights[a]);
                Some(if la <= lb { a } else { b })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_idle_endpoints() {
        let lr = LeastRequest::new(&[1, 1, 1], 3);
        let load = Load::new(3);
        for _ in 0..10 {
            load.start(0);
            load.start(1);
        }
        let mut counts = [0u32; 3];
        for _ in 0..1000 {
            counts[lr.pick(&load).unwrap()] += 1;
        }
        // Endpoint 2 wins every draw it is in (2/3 of them); 0 and 1 only
        // when drawn against each other.
        assert!(counts[2] > 600, "{counts:?}");
    }

    #[test]
    fn spreads_open_requests_evenly() {
        let lr = LeastRequest::new(&[1; 4], 5);
        let load = Load::new(4);
        for _ in 0..400 {
            load.start(lr.pick(&load).unwrap());
        }
        for e in 0..4 {
            assert!((90..=110).contains(&load.in_flight(e)), "{e}");
        }
    }
}
