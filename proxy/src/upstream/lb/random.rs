//! `lb = "random"`: each request to an endpoint drawn at random in
//! proportion to the weights (uniform when all weights are equal).

use super::hash::Rng;

#[derive(Debug)]
pub struct Random {
    /// Cumulative weights: endpoint `i` owns `cumulative[i-1]..cumulative[i]`.
    cumulative: Box<[u64]>,
    rng: Rng,
}

impl Random {
    pub fn new(weights: &[u32], seed: u64) -> Random {
        let mut sum = 0;
        let cumulative = weights
            .iter()
            .map(|&w| {
                sum += u64::from(w);
                sum
            })
            .collect();
        Random {
            cumulative,
            rng: Rng::new(seed),
        }
    }

    pub fn pick(&self) -> Option<usize> {
        let total = *self.cumulative.last()?;
        if total == 0 {
            return None;
        }
        let point = ((u128::from(self.rng.next_u64()) * u128::from(total)) >> 64) as u64;
        Some(self.cumulative.partition_point(|&c| c <= point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roughly_uniform() {
        let r = Random::new(&[1, 1, 1, 1], 1);
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            counts[r.pick().unwrap()] += 1;
        }
        for c in counts {
            assert!((2300..2700).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn weights_respected_within_two_percent() {
        let r = Random::new(&[3, 1], 9);
        let mut counts = [0u32; 2];
        for _ in 0..10_000 {
            counts[r.pick().unwrap()] += 1;
        }
        assert!((7300..=7700).contains(&counts[0]), "{counts:?}");
        assert_eq!(Random::new(&[], 1).pick(), None);
    }
}
