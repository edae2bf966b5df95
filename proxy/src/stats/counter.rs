//! Single-writer counters and gauges.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A monotonically increasing count, written by one thread only.
///
/// `add` is a relaxed load and store (not a read-modify-write), which is
/// correct because there is exactly one writer: the worker that owns it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down (open connections), single writer.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_gauge() {
        let c = Counter::default();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        let g = Gauge::default();
        g.add(3);
        g.add(-1);
        assert_eq!(g.get(), 2);
    }

    #[test]
    fn readers_on_other_threads_see_writes() {
        let c = std::sync::Arc::new(Counter::default());
        let w = c.clone();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                w.inc();
            }
        })
        .join()
        .unwrap();
        assert_eq!(c.get(), 1000);
    }
}
