//! `serve`'s delays and fault knobs: per-request delay distributions, the
//! one-off whole-server stall, connection resets, a fraction of failed
//! answers, slow bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cli::{DelayDist, ServeConfig};

/// xorshift64*: fast, good enough for fault injection, not a secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(salt: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        let mut r = Rng((t ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draw one response delay.
pub fn sample_delay(mean: Duration, dist: DelayDist, rng: &mut Rng) -> Duration {
    match dist {
        DelayDist::Fixed => mean,
        DelayDist::Uniform => mean.mul_f64(2.0 * rng.unit()),
        DelayDist::Exponential => {
            let x = -(1.0 - rng.unit()).ln();
            mean.mul_f64(x.min(20.0))
        }
    }
}

/// The one-off stall, shared by all workers: the request that makes the
/// count exceed `after` starts it, and every request answered before it
/// ends waits for its end.
#[derive(Debug)]
pub struct Stall {
    after: u64,
    length: Duration,
    base: Instant,
    seen: AtomicU64,
    /// Nanoseconds after `base` at which the stall ends; 0 = not started.
    until: AtomicU64,
}

impl Stall {
    pub fn new(after: u64, length: Duration) -> Stall {
        Stall {
            after,
            length,
            base: Instant::now(),
            seen: AtomicU64::new(0),
            until: AtomicU64::new(0),
        }
    }

    /// Count a request; how long it must wait (zero outside the stall).
    pub fn on_request(&self) -> Duration {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.base.elapsed();
        if n == self.after + 1 {
            let end = now + self.length;
            self.until
                .store(end.as_nanos().max(1) as u64, Ordering::Release);
            return self.length;
        }
        let until = self.until.load(Ordering::Acquire);
        if until == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(until).saturating_sub(now)
    }
}

/// The fault configuration of one `serve`.
#[derive(Debug)]
pub struct Faults {
    pub close_after: Option<u64>,
    pub reset_fraction: f64,
    pub fail_fraction: f64,
    pub stall: Option<Stall>,
    /// Pause between pieces, piece size.
    pub slow_body: Option<(Duration, usize)>,
    pub delay: Option<(Duration, DelayDist)>,
}

impl Faults {
    pub fn new(cfg: &ServeConfig) -> Faults {
        Faults {
            close_after: cfg.close_after,
            reset_fraction: cfg.reset_fraction,
            fail_fraction: cfg.fail_fraction,
            stall: cfg.stall.map(|(after, length)| Stall::new(after, length)),
            slow_body: cfg.slow_body,
            delay: cfg.delay,
        }
    }

    /// Should this new connection be reset at its first request?
    pub fn reset_connection(&self, rng: &mut Rng) -> bool {
        self.reset_fraction > 0.0 && rng.unit() < self.reset_fraction
    }

    /// Should this request get the `--fail-status` answer?
    pub fn fail_request(&self, rng: &mut Rng) -> bool {
        self.fail_fraction > 0.0 && rng.unit() < self.fail_fraction
    }

    /// How long to wait before answering a request (delay and stall).
    pub fn wait_before_response(&self, rng: &mut Rng) -> Duration {
        let stall = self
            .stall
            .as_ref()
            .map_or(Duration::ZERO, Stall::on_request);
        let delay = self
            .delay
            .map_or(Duration::ZERO, |(mean, dist)| sample_delay(mean, dist, rng));
        stall.max(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_uniformish() {
        let mut r = Rng::seeded(1);
        let n = 100_000;
        let mean: f64 = (0..n).map(|_| r.unit()).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn delay_means() {
        let mut r = Rng::seeded(2);
        let mean = Duration::from_millis(10);
        for dist in [DelayDist::Fixed, DelayDist::Uniform, DelayDist::Exponential] {
            let n = 50_000;
            let total: Duration = (0..n).map(|_| sample_delay(mean, dist, &mut r)).sum();
            let avg = total.as_secs_f64() / n as f64;
            assert!((avg - 0.010).abs() < 0.0005, "{dist:?}: {avg}");
        }
        for _ in 0..1000 {
            assert!(sample_delay(mean, DelayDist::Uniform, &mut r) <= mean * 2);
            assert!(sample_delay(mean, DelayDist::Exponential, &mut r) <= mean * 20);
        }
    }

    #[test]
    fn stall_happens_once_after_n() {
        let s = Stall::new(2, Duration::from_millis(200));
        assert_eq!(s.on_request(), Duration::ZERO);
        assert_eq!(s.on_request(), Duration::ZERO);
        assert_eq!(s.on_request(), Duration::from_millis(200));
        let w = s.on_request();
        assert!(w > Duration::from_millis(150) && w <= Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(s.on_request(), Duration::ZERO);
    }

    #[test]
    fn reset_fraction_extremes() {
        let mut r = Rng::seeded(3);
        let mut f = Faults {
            close_after: None,
            reset_fraction: 0.0,
            fail_fraction: 0.0,
            stall: None,
            slow_body: None,
            delay: None,
        };
        assert!(!(0..1000).any(|_| f.reset_connection(&mut r)));
        f.reset_fraction = 1.0;
        assert!((0..1000).all(|_| f.reset_connection(&mut r)));
        f.reset_fraction = 0.5;
        let hits = (0..10_000).filter(|_| f.reset_connection(&mut r)).count();
        assert!((4500..5500).contains(&hits), "{hits}");
    }

    #[test]
    fn fail_fraction_extremes() {
        let mut r = Rng::seeded(5);
        let mut f = Faults {
            close_after: None,
            reset_fraction: 0.0,
            fail_fraction: 0.0,
            stall: None,
            slow_body: None,
            delay: None,
        };
        assert!(!(0..1000).any(|_| f.fail_request(&mut r)));
        f.fail_fraction = 1.0;
        assert!((0..1000).all(|_| f.fail_request(&mut r)));
        f.fail_fraction = 0.5;
        let hits = (0..10_000).filter(|_| f.fail_request(&mut r)).count();
        assert!((4500..5500).contains(&hits), "{hits}");
    }
}
