//! `lb = "ring_hash"`: consistent hashing on a ring (Karger et al.), as in
//! Envoy's `RING_HASH`.
//!
//! Every endpoint puts 256 × weight points on a 64-bit ring, at hashes of
//! its address (not its index: removing one endpoint moves only the keys it
//! owned, about 1/N). A request key goes to the owner of the first point at
//! or after its hash (binary search). With `bounded_load`, an endpoint over
//! its bound is skipped for the next one along the ring.

use super::hash::{hash64, mix64};
use super::load::Load;

/// Points per unit of weight. Fixed, not scaled to a minimum ring size as
/// Envoy does: then removing an endpoint would change every survivor's
/// points and move keys between survivors. 100 leave shares ~3 % off the
/// weights; 256 keep them within ~2 %.
pub const POINTS_PER_WEIGHT: u64 = 256;
/// The ring never grows beyond this many points (weights are scaled down).
pub const MAX_POINTS: u64 = 1 << 18;

#[derive(Debug)]
pub struct RingHash {
    /// (hash, endpoint), sorted by hash.
    ring: Box<[(u64, u32)]>,
    weights: Box<[u32]>,
    total_weight: u64,
    bound: Option<f64>,
}

impl RingHash {
    /// `endpoints`: (stable name, weight).
    pub fn new(endpoints: &[(&str, u32)], bound: Option<f64>) -> RingHash {
        let total_weight: u64 = endpoints.iter().map(|e| u64::from(e.1)).sum();
        let wanted = total_weight * POINTS_PER_WEIGHT;
        let scale = if wanted > MAX_POINTS {
            MAX_POINTS as f64 / wanted as f64
        } else {
            1.0
        };
        let mut ring = Vec::with_capacity(wanted.min(MAX_POINTS) as usize + endpoints.len());
        for (i, (name, weight)) in endpoints.iter().enumerate() {
            let base = hash64(name.as_bytes(), 0);
            let points = ((u64::from(*weight) * POINTS_PER_WEIGHT) as f64 * scale).ceil() as u64;
            for p in 0..points {
                ring.push((
                    mix64(base ^ p.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    i as u32,
                ));
            }
        }
        ring.sort_unstable();
        RingHash {
            ring: ring.into(),
            weights: endpoints.iter().map(|e| e.1).collect(),
            total_weight,
            bound,
        }
    }

    pub fn pick(&self, hash: u64, load: &Load) -> Option<usize> {
        let n = self.ring.len();
        if n == 0 {
            return None;
        }
        let start = self.ring.partition_point(|p| p.0 < hash) % n;
        let owner = self.ring[start].1 as usize;
        let Some(c) = self.bound else {
            return Some(owner);
        };
        (0..n)
            .map(|j| self.ring[(start + j) % n].1 as usize)
            .find(|&e| load.has_room(e, c, self.weights[e], self.total_weight))
            .or(Some(owner))
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::hash64;
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
    }

    fn ring(names: &[String], w: impl Fn(usize) -> u32, bound: Option<f64>) -> RingHash {
        let eps: Vec<(&str, u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), w(i)))
            .collect();
        RingHash::new(&eps, bound)
    }

    #[test]
    fn a_key_always_maps_to_the_same_endpoint() {
        let r = ring(&names(5), |_| 1, None);
        let load = Load::new(5);
        for k in 0..1000u32 {
            let h = hash64(&k.to_le_bytes(), 0);
            assert_eq!(r.pick(h, &load), r.pick(h, &load));
        }
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        let all = names(5);
        let before = ring(&all, |_| 1, None);
        let after = ring(&all[..4], |_| 1, None);
        let (l5, l4) = (Load::new(5), Load::new(4));
        let mut moved = 0;
        for k in 0..10_000u32 {
            let h = hash64(&k.to_le_bytes(), 0);
            let (a, b) = (before.pick(h, &l5).unwrap(), after.pick(h, &l4).unwrap());
            if a != b {
                assert_eq!(a, 4, "a key moved between surviving endpoints");
                moved += 1;
            }
        }
        // Ideal 2000 (1/5).
        assert!((1500..=2500).contains(&moved), "{moved}");
    }

    #[test]
    fn weights_respected() {
        let r = ring(&names(2), |i| if i == 0 { 3 } else { 1 }, None);
        let load = Load::new(2);
        let mut counts = [0u32; 2];
        for k in 0..10_000u32 {
            counts[r.pick(hash64(&k.to_le_bytes(), 0), &load).unwrap()] += 1;
        }
        assert!((7300..=7700).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn bounded_load_caps_an_endpoint() {
        let r = ring(&names(4), |_| 1, Some(1.25));
        let load = Load::new(4);
        let h = hash64(b"one hot key", 0);
        for _ in 0..400 {
            load.start(r.pick(h, &load).unwrap());
        }
        for e in 0..4 {
            assert!(load.in_flight(e) <= 125, "{e}: {}", load.in_flight(e));
        }
    }
}
