//! Counts recorded since the last publish, in front of an HDR histogram.
//!
//! A request records its latency in up to five histograms (listener, route,
//! proxy-added time, cluster, endpoint), and `hdrhistogram`'s `record` does more than
//! a hot path needs each time: an `Option` index, a saturating add, min/max
//! and total-count upkeep, a `Result`. [`PendingCounts`] keeps plain `u32`
//! counters laid out exactly as the histogram's own (same buckets, same
//! index for every value), so a record is a leading-zero count, a shift and
//! an increment. Once a second the worker drains the touched counters into
//! the histogram with one `record_n` each, before it publishes the snapshot:
//! the published histogram is the one `record` would have built, count for
//! count (quantiles, min, max and mean are read from the buckets).

use hdrhistogram::Histogram;

/// Counters with an HDR histogram's bucket layout (lowest discernible value
/// 1, `sigfig` significant digits), grown on demand like the histogram.
#[derive(Debug)]
pub struct PendingCounts {
    counts: Vec<u32>,
    /// `64 - sub_bucket_count_magnitude` (hdrhistogram's
    /// `leading_zero_count_base` with unit magnitude 0).
    zero_base: u32,
    half_magnitude: u32,
    half_count: u32,
    /// `sub_bucket_count - 1`.
    mask: u64,
    /// Touched index range `[lo, hi)`; empty when `lo >= hi`.
    lo: usize,
    hi: usize,
}

impl PendingCounts {
    /// Counters for a histogram made by `Histogram::new(sigfig)`.
    pub fn new(sigfig: u8) -> Self {
        // hdrhistogram's construction: the smallest power of two that holds
        // 2 × 10^sigfig single-unit values.
        let largest = 2 * 10u64.pow(u32::from(sigfig));
        let count_magnitude = 64 - (largest - 1).leading_zeros();
        let half_magnitude = count_magnitude.max(1) - 1;
        PendingCounts {
            counts: Vec::new(),
            zero_base: 64 - count_magnitude,
            half_magnitude,
            half_count: 1 << half_magnitude,
            mask: (1u64 << count_magnitude) - 1,
            lo: usize::MAX,
            hi: 0,
        }
    }

    /// The counter of `value` (≥ 1), as the histogram indexes it.
    #[inline]
    fn index(&self, value: u64) -> usize {
        let bucket = self.zero_base - (value | self.mask).leading_zeros();
        let sub = (value >> bucket) as u32;
        (((bucket + 1) << self.half_magnitude) + sub - self.half_count) as usize
    }

    /// The lowest value counted at `index` (hdrhistogram's `value_for`).
    fn value_at(&self, index: usize) -> u64 {
        let bucket = (index >> self.half_magnitude) as i64 - 1;
        let sub = (index as u32 & (self.half_count - 1)) + self.half_count;
        if bucket < 0 {
            u64::from(sub - self.half_count)
        } else {
            u64::from(sub) << bucket
        }
    }

    /// Count one `value` (≥ 1).
    #[inline]
    pub fn record(&mut self, value: u64) {
        let i = self.index(value);
        if i >= self.counts.len() {
            self.grow(i);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        self.lo = self.lo.min(i);
        self.hi = self.hi.max(i + 1);
    }

    #[cold]
    fn grow(&mut self, i: usize) {
        // Whole half-buckets, as the histogram grows.
        let step = self.half_count as usize;
        self.counts.resize((i / step + 1) * step, 0);
    }

    /// Whether nothing was counted since the last drain.
    pub fn is_empty(&self) -> bool {
        self.lo >= self.hi
    }

    /// Add the counts to `h` (a histogram of the same `sigfig`) and clear
    /// them. `h` grows as its own `record` would grow it.
    pub fn drain_into(&mut self, h: &mut Histogram<u64>) {
        for i in self.lo..self.hi.min(self.counts.len()) {
            let c = std::mem::take(&mut self.counts[i]);
            if c != 0 {
                let v = self.value_at(i);
                if h.record_n(v, u64::from(c)).is_err() {
                    // Only a failed resize (a counter array past usize).
                    h.saturating_record_n(v, u64::from(c));
                }
            }
        }
        self.lo = usize::MAX;
        self.hi = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::PendingCounts;
    use hdrhistogram::Histogram;

    /// Values spread over 1 µs .. 1 h and the edges of every bucket.
    fn values() -> Vec<u64> {
        let mut v: Vec<u64> = (1..5000).collect();
        let mut x = 1u64;
        while x < 3_600_000_000 {
            v.extend([x.saturating_sub(1).max(1), x, x + 1, x * 3 / 2]);
            x *= 2;
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v.push(1 + s % 3_600_000_000);
        }
        v
    }

    #[test]
    fn every_value_lands_in_the_histograms_own_bucket() {
        for sigfig in 1..=5u8 {
            let h = Histogram::<u64>::new(sigfig).unwrap();
            let p = PendingCounts::new(sigfig);
            for v in values() {
                let i = p.index(v);
                assert_eq!(
                    p.value_at(i),
                    h.lowest_equivalent(v),
                    "sigfig {sigfig}, value {v}"
                );
            }
        }
    }

    #[test]
    fn drained_counts_make_the_same_histogram_as_recording() {
        for sigfig in [1u8, 2, 3, 5] {
            let mut direct = Histogram::<u64>::new(sigfig).unwrap();
            let mut drained = Histogram::<u64>::new(sigfig).unwrap();
            let mut p = PendingCounts::new(sigfig);
            for (n, v) in values().into_iter().enumerate() {
                direct.record(v).unwrap();
                p.record(v);
                // Drain now and then, as the worker's publish does.
                if n % 7_000 == 0 {
                    p.drain_into(&mut drained);
                    assert!(p.is_empty());
                }
            }
            assert!(!p.is_empty());
            p.drain_into(&mut drained);
            assert_eq!(direct.len(), drained.len());
            assert_eq!(direct.min(), drained.min());
            assert_eq!(direct.max(), drained.max());
            assert_eq!(direct.mean(), drained.mean());
            for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(
                    direct.value_at_quantile(q),
                    drained.value_at_quantile(q),
                    "sigfig {sigfig}, q {q}"
                );
            }
            let a: Vec<_> = direct
                .iter_recorded()
                .map(|x| (x.value_iterated_to(), x.count_at_value()))
                .collect();
            let b: Vec<_> = drained
                .iter_recorded()
                .map(|x| (x.value_iterated_to(), x.count_at_value()))
                .collect();
            assert_eq!(a, b, "sigfig {sigfig}");
        }
    }
}
