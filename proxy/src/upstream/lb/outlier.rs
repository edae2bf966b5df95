//! Passive outlier ejection (`outlier_detection` on a cluster): an endpoint
//! whose responses keep failing is taken out of this worker's rotation for
//! a while.
//!
//! # Rules (as Envoy's outlier detection)
//! - `consecutive_5xx` answers of 5xx (or failures of the upstream: connect
//!   refused or timed out, reset, response timeout) in a row eject the
//!   endpoint; `consecutive_gateway_errors` of those failures or 502 / 503 /
//!   504 in a row do too. A success resets both runs.
//! - An ejection lasts `base_ejection_time` × the number of times the
//!   endpoint was ejected (so a flapping endpoint stays out longer), at most
//!   `max_ejection_time`; it ends when a pick finds it over.
//! - At most `max_ejection_percent` of the endpoints are ejected at once
//!   (but always one, so a cluster of two can still eject its bad half).
//!
//! # Per worker
//! Each worker judges the traffic it sends (shared nothing: no locks, no
//! cross-core messages); an endpoint a worker sees failing is ejected on
//! that worker first, and on the others when they see it too. The
//! endpoint stats count ejections and how many workers eject it now
//! (`/clusters`, `ringway_outlier_*`).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::OutlierDetection;
use crate::error::ErrorKind;
use crate::stats::layout::EndpointStats;

/// One endpoint's runs and ejection on this worker.
#[derive(Debug, Default)]
struct Track {
    run_5xx: Cell<u32>,
    run_gateway: Cell<u32>,
    ejected_until: Cell<Option<Instant>>,
    times: Cell<u32>,
    /// This interval: successes and counted outcomes (success-rate).
    ok: Cell<u32>,
    seen: Cell<u32>,
}

/// What a finished exchange says about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A 5xx answer other than 502/503/504.
    ServerError,
    /// 502/503/504, or the upstream failed (refused, reset, timeout).
    GatewayError,
    /// Says nothing about the endpoint (a client-side error, a 4xx).
    Neutral,
}

impl Outcome {
    /// Classify a request's end: the status sent (0: none) and the error.
    pub fn of(status: u16, error: Option<&ErrorKind>) -> Outcome {
        match error {
            Some(
                ErrorKind::ConnectFailed
                | ErrorKind::ConnectTimeout
                | ErrorKind::UpstreamTls
                | ErrorKind::UpstreamClosed
                | ErrorKind::UpstreamTimeout
                | ErrorKind::BadResponse(_),
            ) => Outcome::GatewayError,
            Some(_) => Outcome::Neutral,
            None => match status {
                502..=504 => Outcome::GatewayError,
                500..=599 => Outcome::ServerError,
                100..=499 => Outcome::Success,
                _ => Outcome::Neutral,
            },
        }
    }
}

/// A cluster's outlier state on one worker.
#[derive(Debug)]
pub struct Outliers {
    cfg: OutlierDetection,
    tracks: Box<[Track]>,
    /// The endpoints' stats (ejections, ejected now) on this worker.
    stats: Box<[Arc<EndpointStats>]>,
    ejected: Cell<usize>,
    /// When success rates were last compared.
    last_sweep: Cell<Instant>,
}

impl Outliers {
    pub fn new(cfg: OutlierDetection, stats: Vec<Arc<EndpointStats>>) -> Outliers {
        Outliers {
            cfg,
            tracks: stats.iter().map(|_| Track::default()).collect(),
            stats: stats.into(),
            ejected: Cell::new(0),
            last_sweep: Cell::new(Instant::now()),
        }
    }

    /// Every `interval` (called on the worker's tick): compare the success
    /// rates of the endpoints with at least `request_volume` outcomes;
    /// when there are `minimum_hosts` of them, eject those below mean −
    /// `stdev_factor` × standard deviation. The counts start over.
    pub fn sweep(&self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep.get()) < self.cfg.interval {
            return;
        }
        self.last_sweep.set(now);
        let volume = self.cfg.success_rate_request_volume;
        let rates: Vec<(usize, f64)> = self
            .tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.seen.get() >= volume && t.ejected_until.get().is_none())
            .map(|(i, t)| (i, f64::from(t.ok.get()) / f64::from(t.seen.get())))
            .collect();
        for t in self.tracks.iter() {
            t.ok.set(0);
            t.seen.set(0);
        }
        let hosts = self.cfg.success_rate_minimum_hosts as usize;
        if hosts == 0 || rates.len() < hosts {
            return;
        }
        let n = rates.len() as f64;
        let mean = rates.iter().map(|r| r.1).sum::<f64>() / n;
        let var = rates.iter().map(|r| (r.1 - mean).powi(2)).sum::<f64>() / n;
        let floor = mean - self.cfg.success_rate_stdev_factor * var.sqrt();
        for (i, rate) in rates {
            if rate < floor {
                self.eject(i, &self.tracks[i]);
            }
        }
    }

    /// Whether `endpoint` is ejected now (an ejection found over ends here).
    #[inline]
    pub fn is_ejected(&self, endpoint: usize) -> bool {
        let Some(t) = self.tracks.get(endpoint) else {
            return false;
        };
        match t.ejected_until.get() {
            None => false,
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                t.ejected_until.set(None);
                self.ejected.set(self.ejected.get().saturating_sub(1));
                self.stats[endpoint].ejected.add(-1);
                false
            }
        }
    }

    /// Count how an exchange with `endpoint` ended.
    pub fn observe(&self, endpoint: usize, outcome: Outcome) {
        let Some(t) = self.tracks.get(endpoint) else {
            return;
        };
        if outcome != Outcome::Neutral {
            t.seen.set(t.seen.get() + 1);
        }
        match outcome {
            Outcome::Neutral => return,
            Outcome::Success => {
                t.ok.set(t.ok.get() + 1);
                t.run_5xx.set(0);
                t.run_gateway.set(0);
                return;
            }
            Outcome::ServerError => {
                t.run_5xx.set(t.run_5xx.get() + 1);
                t.run_gateway.set(0);
            }
            Outcome::GatewayError => {
                t.run_5xx.set(t.run_5xx.get() + 1);
                t.run_gateway.set(t.run_gateway.get() + 1);
            }
        }
        let tripped = (self.cfg.consecutive_5xx > 0 && t.run_5xx.get() >= self.cfg.consecutive_5xx)
            || (self.cfg.consecutive_gateway_errors > 0
                && t.run_gateway.get() >= self.cfg.consecutive_gateway_errors);
        if tripped && t.ejected_until.get().is_none() {
            self.eject(endpoint, t);
        }
    }

    fn eject(&self, endpoint: usize, t: &Track) {
        let n = self.tracks.len();
        let allowed = ((n as f64 * self.cfg.max_ejection_percent / 100.0) as usize).max(1);
        if self.ejected.get() >= allowed {
            return;
        }
        let times = t.times.get() + 1;
        t.times.set(times);
        let span = self
            .cfg
            .base_ejection_time
            .saturating_mul(times)
            .min(self.cfg.max_ejection_time.max(self.cfg.base_ejection_time));
        t.ejected_until.set(Some(Instant::now() + span));
        t.run_5xx.set(0);
        t.run_gateway.set(0);
        self.ejected.set(self.ejected.get() + 1);
        let s = &self.stats[endpoint];
        s.ejections.inc();
        s.ejected.add(1);
    }

    /// How long `endpoint`'s current ejection has left (tests, admin).
    pub fn ejected_for(&self, endpoint: usize) -> Option<Duration> {
        let until = self.tracks.get(endpoint)?.ejected_until.get()?;
        until.checked_duration_since(Instant::now())
    }
}

impl Drop for Outliers {
    fn drop(&mut self) {
        // This worker's generation ends: its ejections end with it (the
        // next generation starts afresh), so the gauges go back down.
        for (t, s) in self.tracks.iter().zip(self.stats.iter()) {
            if t.ejected_until.get().is_some() {
                s.ejected.add(-1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: 3,
            consecutive_gateway_errors: 2,
            base_ejection_time: Duration::from_millis(200),
            max_ejection_time: Duration::from_millis(500),
            max_ejection_percent: 50.0,
            interval: Duration::from_millis(100),
            success_rate_minimum_hosts: 3,
            success_rate_request_volume: 20,
            success_rate_stdev_factor: 1.0,
        }
    }

    #[test]
    fn success_rate_outliers_are_ejected_each_interval() {
        let o = outliers(4);
        // Endpoints 0–2 succeed; 3 fails every other request (never three
        // in a row: the consecutive rules do not see it).
        for i in 0..40 {
            for e in 0..3 {
                o.observe(e, Outcome::Success);
            }
            o.observe(
                3,
                if i % 2 == 0 {
                    Outcome::GatewayError
                } else {
                    Outcome::Success
                },
            );
        }
        assert!(!o.is_ejected(3));
        // Not yet an interval.
        o.sweep(o.last_sweep.get() + Duration::from_millis(50));
        assert!(!o.is_ejected(3));
        o.sweep(o.last_sweep.get() + Duration::from_millis(100));
        assert!(o.is_ejected(3), "50 % beside 100 %: an outlier");
        assert!(!o.is_ejected(0));
        // Counts start over: too few outcomes, nothing more.
        o.sweep(o.last_sweep.get() + Duration::from_millis(100));
        assert_eq!(o.stats[3].ejections.get(), 1);
        // Fewer hosts with enough volume than the minimum: no comparison.
        let o = outliers(4);
        for _ in 0..40 {
            o.observe(0, Outcome::Success);
            o.observe(1, Outcome::GatewayError);
            o.observe(1, Outcome::Success);
        }
        o.sweep(o.last_sweep.get() + Duration::from_millis(100));
        assert!(!o.is_ejected(1));
    }

    fn outliers(n: usize) -> Outliers {
        Outliers::new(
            cfg(),
            (0..n).map(|_| Arc::new(EndpointStats::default())).collect(),
        )
    }

    #[test]
    fn runs_of_failures_eject_and_successes_reset() {
        let o = outliers(4);
        o.observe(0, Outcome::ServerError);
        o.observe(0, Outcome::ServerError);
        o.observe(0, Outcome::Success);
        o.observe(0, Outcome::ServerError);
        o.observe(0, Outcome::Neutral);
        o.observe(0, Outcome::ServerError);
        assert!(!o.is_ejected(0));
        o.observe(0, Outcome::ServerError);
        assert!(o.is_ejected(0), "three 5xx in a row");
        assert_eq!(o.stats[0].ejections.get(), 1);
        assert_eq!(o.stats[0].ejected.get(), 1);
        // Two gateway errors in a row.
        o.observe(1, Outcome::GatewayError);
        o.observe(1, Outcome::GatewayError);
        assert!(o.is_ejected(1));
        // 50 % of 4 = 2 at once: a third waits.
        o.observe(2, Outcome::GatewayError);
        o.observe(2, Outcome::GatewayError);
        assert!(!o.is_ejected(2));
    }

    #[test]
    fn ejections_end_and_grow() {
        let o = outliers(2);
        let eject = |o: &Outliers| {
            o.observe(0, Outcome::GatewayError);
            o.observe(0, Outcome::GatewayError);
        };
        eject(&o);
        let first = o.ejected_for(0).unwrap();
        assert!(first <= Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(220));
        assert!(!o.is_ejected(0), "over after base_ejection_time");
        assert_eq!(o.stats[0].ejected.get(), 0);
        eject(&o);
        let second = o.ejected_for(0).unwrap();
        assert!(second > Duration::from_millis(300), "2 × base: {second:?}");
        std::thread::sleep(Duration::from_millis(420));
        assert!(!o.is_ejected(0));
        eject(&o);
        // 3 × base = 600 ms, capped at 500 ms.
        assert!(o.ejected_for(0).unwrap() <= Duration::from_millis(500));
        // A cluster of two may still eject one.
        assert_eq!(o.stats[0].ejections.get(), 3);
        drop(o);
    }

    #[test]
    fn outcomes_classify() {
        assert_eq!(Outcome::of(200, None), Outcome::Success);
        assert_eq!(Outcome::of(404, None), Outcome::Success);
        assert_eq!(Outcome::of(500, None), Outcome::ServerError);
        assert_eq!(Outcome::of(503, None), Outcome::GatewayError);
        assert_eq!(
            Outcome::of(502, Some(&ErrorKind::ConnectFailed)),
            Outcome::GatewayError
        );
        assert_eq!(
            Outcome::of(499, Some(&ErrorKind::ClientClosed)),
            Outcome::Neutral
        );
    }
}
