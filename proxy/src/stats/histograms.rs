//! Latency histograms: recorded by the owning worker, published as
//! immutable snapshots.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::config::Config;

/// Highest latency tracked, in microseconds (larger values are clamped).
pub const MAX_MICROS: u64 = 3_600_000_000;

pub fn new_histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, sigfig.clamp(1, 5))
        .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits is valid"))
}

/// A published snapshot: request duration per listener and route, upstream
/// response time per cluster and endpoint (flattened), in microseconds.
/// Empty vectors mean the dimension is switched off.
#[derive(Debug, Clone)]
pub struct HistogramSet {
    pub listeners: Vec<Arc<Histogram<u64>>>,
    pub routes: Vec<Arc<Histogram<u64>>>,
    pub clusters: Vec<Arc<Histogram<u64>>>,
    pub endpoints: Vec<Arc<Histogram<u64>>>,
}

impl HistogramSet {
    pub fn empty(config: &Config) -> Self {
        let s = &config.stats;
        let make = |on: bool, n: usize| -> Vec<Arc<Histogram<u64>>> {
            if on {
                let h = Arc::new(new_histogram(s.histogram_sigfig));
                vec![h; n]
            } else {
                Vec::new()
            }
        };
        let endpoints = config.clusters.iter().map(|c| c.endpoints.len()).sum();
        HistogramSet {
            listeners: make(s.listener_histograms, config.listeners.len()),
            routes: make(s.route_histograms, config.routes.len()),
            clusters: make(s.cluster_histograms, config.clusters.len()),
            endpoints: make(s.endpoint_histograms, endpoints),
        }
    }
}

struct Dim {
    live: Vec<Histogram<u64>>,
    dirty: Vec<bool>,
}

impl Dim {
    fn new(on: bool, n: usize, sigfig: u8) -> Self {
        let n = if on { n } else { 0 };
        Dim {
            live: (0..n).map(|_| new_histogram(sigfig)).collect(),
            dirty: vec![false; n],
        }
    }

    #[inline]
    fn record(&mut self, i: usize, micros: u64) {
        if let Some(h) = self.live.get_mut(i) {
            h.saturating_record(micros.clamp(1, MAX_MICROS));
            self.dirty[i] = true;
        }
    }

    /// Clone the changed histograms into `published` (unchanged ones keep
    /// their `Arc`).
    fn publish(&mut self, published: &mut [Arc<Histogram<u64>>]) -> bool {
        let mut any = false;
        for (i, d) in self.dirty.iter_mut().enumerate() {
            if *d {
                published[i] = Arc::new(self.live[i].clone());
                *d = false;
                any = true;
            }
        }
        any
    }
}

/// The worker-owned, mutable histograms.
pub struct WorkerHistograms {
    inner: RefCell<Inner>,
}

struct Inner {
    listeners: Dim,
    routes: Dim,
    clusters: Dim,
    endpoints: Dim,
    cluster_base: Vec<usize>,
    last: HistogramSet,
}

impl WorkerHistograms {
    pub fn new(config: &Config) -> Self {
        let s = &config.stats;
        let mut cluster_base = Vec::new();
        let mut n = 0;
        for c in &config.clusters {
            cluster_base.push(n);
            n += c.endpoints.len();
        }
        WorkerHistograms {
            inner: RefCell::new(Inner {
                listeners: Dim::new(
                    s.listener_histograms,
                    config.listeners.len(),
                    s.histogram_sigfig,
                ),
                routes: Dim::new(s.route_histograms, config.routes.len(), s.histogram_sigfig),
                clusters: Dim::new(
                    s.cluster_histograms,
                    config.clusters.len(),
                    s.histogram_sigfig,
                ),
                endpoints: Dim::new(s.endpoint_histograms, n, s.histogram_sigfig),
                cluster_base,
                last: HistogramSet::empty(config),
            }),
        }
    }

    /// Record one request: its total duration on the listener and route, and
    /// the upstream time on the cluster and endpoint when there was one.
    pub fn record(
        &self,
        listener: usize,
        route: Option<usize>,
        upstream: Option<(usize, usize, Duration)>,
        total: Duration,
    ) {
        let mut inner = self.inner.borrow_mut();
        let micros = total.as_micros() as u64;
        inner.listeners.record(listener, micros);
        if let Some(r) = route {
            inner.routes.record(r, micros);
        }
        if let Some((c, e, t)) = upstream {
            let up = t.as_micros() as u64;
            inner.clusters.record(c, up);
            let flat = inner.cluster_base[c] + e;
            inner.endpoints.record(flat, up);
        }
    }

    /// A new snapshot when anything changed since the last one.
    pub fn snapshot(&self) -> Option<HistogramSet> {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            listeners,
            routes,
            clusters,
            endpoints,
            last,
            ..
        } = &mut *inner;
        let mut any = listeners.publish(&mut last.listeners);
        any |= routes.publish(&mut last.routes);
        any |= clusters.publish(&mut last.clusters);
        any |= endpoints.publish(&mut last.endpoints);
        any.then(|| last.clone())
    }
}
