//! `lb = "maglev"`: Maglev hashing (Eisenbud et al., NSDI 2016), as in
//! Envoy's `MAGLEV`.
//!
//! A lookup table of prime size M (65537) is filled by letting endpoints
//! take turns claiming the next free slot of their own permutation
//! (`offset + j·skip mod M`, both from hashes of the endpoint's address);
//! weighted endpoints take proportionally more turns. Lookups are one array
//! index; removing one of N endpoints moves little more than 1/N of the
//! keys. With `bounded_load`, an endpoint over its bound is skipped for the
//! next slot's endpoint.

use super::hash::hash64;
use super::load::Load;

/// The default table size (prime).
pub const TABLE_SIZE: usize = 65537;

#[derive(Debug)]
pub struct Maglev {
    table: Box<[u32]>,
    weights: Box<[u32]>,
    total_weight: u64,
    bound: Option<f64>,
}

impl Maglev {
    /// `endpoints`: (stable name, weight); `size` must be prime and larger
    /// than the number of endpoints.
    pub fn new(endpoints: &[(&str, u32)], size: usize, bound: Option<f64>) -> Maglev {
        let weights: Box<[u32]> = endpoints.iter().map(|e| e.1).collect();
        let total_weight = weights.iter().map(|&w| u64::from(w)).sum();
        let max_weight = u64::from(weights.iter().copied().max().unwrap_or(0));
        let mut table = vec![u32::MAX; size];
        if max_weight > 0 {
            let m = size as u64;
            let perm: Vec<(u64, u64)> = endpoints
                .iter()
                .map(|(name, _)| {
                    let offset = hash64(name.as_bytes(), 1) % m;
                    let skip = hash64(name.as_bytes(), 2) % (m - 1) + 1;
                    (offset, skip)
                })
                .collect();
            let mut next = vec![0u64; endpoints.len()];
            let mut count = vec![0u64; endpoints.len()];
            let mut filled = 0;
            'fill: for turn in 1u64.. {
                for i in 0..endpoints.len() {
                    // Endpoint i claims at most turn × w_i / max_w slots.
                    if count[i] * max_weight >= turn * u64::from(weights[i]) {
                        continue;
                    }
                    let (offset, skip) = perm[i];
                    loop {
                        let slot = ((offset + next[i] * skip) % m) as usize;
                        next[i] += 1;
                        if table[slot] == u32::MAX {
                            table[slot] = i as u32;
                            count[i] += 1;
                            filled += 1;
                            break;
                        }
                    }
                    if filled == size {
                        break 'fill;
                    }
                }
            }
        }
        Maglev {
            table: if max_weight > 0 {
                table.into()
            } else {
                Box::new([])
            },
            weights,
            total_weight,
            bound,
        }
    }

    pub fn pick(&self, hash: u64, load: &Load) -> Option<usize> {
        let m = self.table.len();
        if m == 0 {
            return None;
        }
        let start = (hash % m as u64) as usize;
        let owner = self.table[start] as usize;
        let Some(c) = self.bound else {
            return Some(owner);
        };
        (0..m)
            .map(|j| self.table[(start + j) % m] as usize)
            .find(|&e| load.has_room(e, c, self.weights[e], self.total_weight))
            .or(Some(owner))
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::hash64;
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.1.{i}:80")).collect()
    }

    fn maglev(names: &[String], w: impl Fn(usize) -> u32, bound: Option<f64>) -> Maglev {
        let eps: Vec<(&str, u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), w(i)))
            .collect();
        Maglev::new(&eps, TABLE_SIZE, bound)
    }

    #[test]
    fn a_key_always_maps_to_the_same_endpoint() {
        let m = maglev(&names(5), |_| 1, None);
        let load = Load::new(5);
        for k in 0..1000u32 {
            let h = hash64(&k.to_le_bytes(), 0);
            assert_eq!(m.pick(h, &load), m.pick(h, &load));
        }
    }

    #[test]
    fn removing_one_of_n_moves_at_most_1_2_over_n() {
        let all = names(5);
        let before = maglev(&all, |_| 1, None);
        let after = maglev(&all[..4], |_| 1, None);
        let (l5, l4) = (Load::new(5), Load::new(4));
        let moved = (0..10_000u32)
            .filter(|k| {
                let h = hash64(&k.to_le_bytes(), 0);
                before.pick(h, &l5) != after.pick(h, &l4)
            })
            .count();
        assert!(moved <= 2400, "{moved} of 10000 moved (ideal 2000)");
        assert!(moved >= 1800, "{moved}");
    }

    #[test]
    fn weights_respected_within_two_percent() {
        let m = maglev(&names(3), |i| [3, 1, 1][i], None);
        let load = Load::new(3);
        let mut counts = [0u32; 3];
        for k in 0..10_000u32 {
            counts[m.pick(hash64(&k.to_le_bytes(), 0), &load).unwrap()] += 1;
        }
        assert!((5800..=6200).contains(&counts[0]), "{counts:?}");
        // And the table itself is exact to a slot.
        let owned = m.table.iter().filter(|&&e| e == 0).count();
        assert!(owned.abs_diff(TABLE_SIZE * 3 / 5) <= 1, "{owned}");
    }

    #[test]
    fn bounded_load_caps_an_endpoint() {
        let m = maglev(&names(4), |_| 1, Some(1.25));
        let load = Load::new(4);
        let h = hash64(b"one hot key", 0);
        for _ in 0..400 {
            load.start(m.pick(h, &load).unwrap());
        }
        for e in 0..4 {
            assert!(load.in_flight(e) <= 125, "{e}: {}", load.in_flight(e));
        }
    }
}
