//! Endpoint and cluster choice: round robin (one cursor per cluster per
//! worker) and smooth weighted round robin (nginx's algorithm: exact shares
//! over every `sum(weights)` picks, spread evenly, no randomness).

use std::cell::{Cell, RefCell};

/// Round robin over `n` endpoints. Each worker has its own cursor, so
/// workers do not coordinate; over many requests each endpoint still gets
/// an equal share.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: Cell<usize>,
}

impl RoundRobin {
    /// A cursor starting at `start` (workers start at different offsets so
    /// that the first requests of each do not all hit endpoint 0).
    pub fn starting_at(start: usize) -> Self {
        RoundRobin {
            next: Cell::new(start),
        }
    }

    /// The index of the next endpoint, or `None` when there is none.
    pub fn pick(&self, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let i = self.next.get() % n;
        self.next.set(i + 1);
        Some(i)
    }
}

/// Smooth weighted round robin over a fixed list of weights. Over every
/// `sum(weights)` consecutive picks, item `i` is picked exactly
/// `weights[i]` times, and picks of one item are spread out (a 90/10 split
/// never sends ten in a row to the 10). Per worker, `!Send`.
#[derive(Debug, Default)]
pub struct SmoothWeighted {
    weights: Box<[i64]>,
    current: RefCell<Box<[i64]>>,
    total: i64,
}

impl SmoothWeighted {
    pub fn new(weights: &[u32]) -> Self {
        let weights: Box<[i64]> = weights.iter().map(|&w| i64::from(w)).collect();
        let total = weights.iter().sum();
        SmoothWeighted {
            current: RefCell::new(vec![0; weights.len()].into()),
            weights,
            total,
        }
    }

    /// The next item, or `None` when every weight is 0.
    pub fn pick(&self) -> Option<usize> {
        if self.total <= 0 {
            return None;
        }
        let mut cur = self.current.borrow_mut();
        let mut best = 0;
        for i in 0..cur.len() {
            cur[i] += self.weights[i];
            if cur[i] > cur[best] {
                best = i;
            }
        }
        cur[best] -= self.total;
        Some(best)
    }

    /// The item a key hash maps to: the same hash always gives the same
    /// item, and hashes spread over items in proportion to the weights.
    pub fn pick_by_hash(&self, hash: u64) -> Option<usize> {
        if self.total <= 0 {
            return None;
        }
        let mut point = (hash % self.total as u64) as i64;
        for (i, &w) in self.weights.iter().enumerate() {
            if point < w {
                return Some(i);
            }
            point -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_weighted_is_exact_per_cycle_and_spread() {
        let s = SmoothWeighted::new(&[90, 10]);
        for _cycle in 0..3 {
            let picks: Vec<usize> = (0..100).map(|_| s.pick().unwrap()).collect();
            assert_eq!(picks.iter().filter(|&&p| p == 1).count(), 10);
            // Never two picks of the 10 % target in a row.
            assert!(picks.windows(2).all(|w| w != [1, 1]), "{picks:?}");
        }
        let s = SmoothWeighted::new(&[5, 0, 3, 2]);
        let mut counts = [0; 4];
        for _ in 0..1000 {
            counts[s.pick().unwrap()] += 1;
        }
        assert_eq!(counts, [500, 0, 300, 200]);
        assert_eq!(SmoothWeighted::new(&[0, 0]).pick(), None);
    }

    #[test]
    fn hash_picks_are_stable_and_weighted() {
        let s = SmoothWeighted::new(&[1, 3]);
        let mut counts = [0; 2];
        for h in 0..4000u64 {
            let a = s
                .pick_by_hash(h.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .unwrap();
            assert_eq!(
                Some(a),
                s.pick_by_hash(h.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            );
            counts[a] += 1;
        }
        assert!((900..1100).contains(&counts[0]), "{counts:?}");
        assert_eq!(SmoothWeighted::new(&[0]).pick_by_hash(7), None);
    }

    #[test]
    fn cycles_through_all_endpoints() {
        let rr = RoundRobin::starting_at(1);
        let picks: Vec<_> = (0..6).map(|_| rr.pick(3).unwrap()).collect();
        assert_eq!(picks, vec![1, 2, 0, 1, 2, 0]);
        assert_eq!(rr.pick(0), None);
    }
}
