//! The last five minutes of every route, one point per second, for the
//! dashboard's sparklines.
//!
//! Kept by the admin sampler thread (never a worker): once a second it
//! merges the workers' counters and published histograms
//! ([`crate::stats::merge`]) and stores, per route, the requests per
//! second, the share of 5xx answers and the p99 of the requests of that
//! second (the cumulative histogram minus the previous one). Routes are
//! keyed by name, so a reload that keeps a route keeps its history; a
//! route that left the configuration drops out at the next sample.
//! Memory: [`POINTS`] × 12 bytes per route.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::stats::merge::StatsView;

/// Points kept per route: 300 one-second points = five minutes.
pub const POINTS: usize = 300;

/// One second of one route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub rps: f32,
    /// 5xx answers over requests in that second (0 without requests).
    pub error_ratio: f32,
    /// p99 of that second's requests, µs (`None`: no request, or the
    /// latency dimension is off).
    pub p99_us: Option<u32>,
}

struct Track {
    points: VecDeque<Point>,
    requests: u64,
    errors: u64,
    latency: Option<Histogram<u64>>,
}

/// Per-route series, newest last.
#[derive(Default)]
pub struct History {
    routes: HashMap<String, Track>,
    last: Option<Instant>,
}

impl History {
    /// Fold the current merged view in (`at`: when it was taken).
    pub fn record(&mut self, view: &StatsView, at: Instant) {
        let secs = self
            .last
            .map(|l| at.saturating_duration_since(l).as_secs_f64())
            .filter(|s| *s > 0.0);
        self.last = Some(at);
        self.routes
            .retain(|name, _| view.routes.iter().any(|r| &r.name == name));
        for r in &view.routes {
            let errors = r.classes()[5];
            let Some(track) = self.routes.get_mut(&r.name) else {
                // First sight: the baseline, no point yet.
                self.routes.insert(
                    r.name.clone(),
                    Track {
                        points: VecDeque::with_capacity(POINTS),
                        requests: r.requests,
                        errors,
                        latency: r.latency.clone(),
                    },
                );
                continue;
            };
            let Some(secs) = secs else { continue };
            // Counters only grow within a route's life; a reset (a route
            // re-created under the same name) starts from zero.
            let requests = r.requests.checked_sub(track.requests).unwrap_or(r.requests);
            let failed = errors.checked_sub(track.errors).unwrap_or(errors);
            let p99_us = interval_p99(r.latency.as_ref(), track.latency.as_ref());
            let point = Point {
                rps: (requests as f64 / secs) as f32,
                error_ratio: if requests == 0 {
                    0.0
                } else {
                    (failed as f64 / requests as f64) as f32
                },
                p99_us,
            };
            if track.points.len() == POINTS {
                track.points.pop_front();
            }
            track.points.push_back(point);
            track.requests = r.requests;
            track.errors = errors;
            track.latency = r.latency.clone();
        }
    }

    /// The points of `route`, oldest first.
    pub fn points(&self, route: &str) -> Vec<Point> {
        self.routes
            .get(route)
            .map(|t| t.points.iter().copied().collect())
            .unwrap_or_default()
    }

    /// `{ "rps": [...], "error_ratio": [...], "p99_us": [...] }` for `route`.
    pub fn json(&self, route: &str) -> Value {
        let points = self.points(route);
        let round = |v: f32, scale: f64| (v as f64 * scale).round() / scale;
        json!({
            "rps": points.iter().map(|p| round(p.rps, 10.0)).collect::<Vec<_>>(),
            "error_ratio": points.iter().map(|p| round(p.error_ratio, 10000.0)).collect::<Vec<_>>(),
            "p99_us": points.iter().map(|p| p.p99_us).collect::<Vec<_>>(),
        })
    }
}

/// p99 of the samples in `now` that were not in `before`.
fn interval_p99(now: Option<&Histogram<u64>>, before: Option<&Histogram<u64>>) -> Option<u32> {
    let now = now?;
    let mut delta = now.clone();
    if let Some(b) = before {
        if b.len() <= now.len() && delta.subtract(b).is_err() {
            return None;
        }
    }
    if delta.is_empty() {
        return None;
    }
    Some(delta.value_at_quantile(0.99).min(u32::MAX as u64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::merge::RouteView;
    use std::time::Duration;

    fn view(requests: u64, codes: &[(u16, u64)], samples: &[u64]) -> StatsView {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for s in samples {
            h.record(*s).unwrap();
        }
        StatsView {
            routes: vec![RouteView {
                name: "api".into(),
                requests,
                codes: codes.to_vec(),
                latency: Some(h),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn points_are_per_second_differences() {
        let mut h = History::default();
        let t0 = Instant::now();
        h.record(&view(100, &[(200, 100)], &[1000; 100]), t0);
        assert!(h.points("api").is_empty());
        // One second later: 50 more requests, 5 of them 503, slow ones.
        let mut samples = vec![1000; 100];
        samples.extend([90_000; 50]);
        h.record(
            &view(150, &[(200, 145), (503, 5)], &samples),
            t0 + Duration::from_secs(1),
        );
        // Two seconds later: nothing happened.
        h.record(
            &view(150, &[(200, 145), (503, 5)], &samples),
            t0 + Duration::from_secs(3),
        );
        let p = h.points("api");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].rps, 50.0);
        assert_eq!(p[0].error_ratio, 0.1);
        // The second's p99 only sees that second's (slow) samples.
        let p99 = p[0].p99_us.unwrap();
        assert!((89_000..=91_000).contains(&p99), "{p99}");
        assert_eq!(p[1].rps, 0.0);
        assert_eq!(p[1].p99_us, None);
        let v = h.json("api");
        assert_eq!(v["rps"], json!([50.0, 0.0]));
        assert_eq!(v["error_ratio"], json!([0.1, 0.0]));
    }

    #[test]
    fn history_is_bounded_and_follows_the_configuration() {
        let mut h = History::default();
        let t0 = Instant::now();
        for i in 0..(POINTS as u64 + 50) {
            h.record(
                &view(i * 10, &[(200, i * 10)], &[]),
                t0 + Duration::from_secs(i),
            );
        }
        assert_eq!(h.points("api").len(), POINTS);
        assert!(h.points("api").iter().all(|p| p.rps == 10.0));
        // The route leaves the configuration: its history goes too.
        h.record(&StatsView::default(), t0 + Duration::from_secs(1000));
        assert!(h.points("api").is_empty());
        assert_eq!(h.json("missing")["rps"], json!([]));
    }
}
