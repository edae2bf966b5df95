//! 64-bit hashing and a tiny PRNG for the balancers: stable across workers,
//! processes and restarts (a key maps to the same endpoint on every ringway
//! node with the same config), no dependencies.

use std::cell::Cell;

/// The splitmix64 / murmur3 finalizer: every input bit affects every output
/// bit.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a over `bytes`, started from `seed`, then [`mix64`] (FNV alone has
/// weak low bits and clusters on a ring).
#[inline]
pub fn hash64(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ mix64(seed);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// xorshift64*: fast, good enough to pick endpoints, per worker (`Cell`).
#[derive(Debug)]
pub struct Rng(Cell<u64>);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(Cell::new(mix64(seed) | 1))
    }

    #[inline]
    pub fn next_u64(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`; Lemire's multiply-shift, no division).
    #[inline]
    pub fn below(&self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Two distinct indices in `0..n` (`n >= 2`).
    #[inline]
    pub fn two_below(&self, n: usize) -> (usize, usize) {
        let a = self.below(n);
        let mut b = self.below(n - 1);
        if b >= a {
            b += 1;
        }
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_seeded() {
        assert_eq!(hash64(b"user-1", 0), hash64(b"user-1", 0));
        assert_ne!(hash64(b"user-1", 0), hash64(b"user-1", 1));
        assert_ne!(hash64(b"user-1", 0), hash64(b"user-2", 0));
    }

    #[test]
    fn two_below_are_distinct_and_in_range() {
        let r = Rng::new(7);
        for _ in 0..1000 {
            let (a, b) = r.two_below(3);
            assert!(a < 3 && b < 3 && a != b);
        }
        let (a, b) = r.two_below(2);
        assert_eq!(a + b, 1);
    }
}
