//! Latency histograms: recorded by the owning worker, published as
//! immutable snapshots.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
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

    /// The set of `config`'s layout, taking the histograms of names that
    /// `prev` (laid out for `prev_config`) has.
    pub fn carried(config: &Config, prev: &HistogramSet, prev_config: &Config) -> Self {
        let mut set = HistogramSet::empty(config);
        let keys = Keys::of(config);
        let old = Keys::of(prev_config);
        carry(
            &mut set.listeners,
            &keys.listeners,
            &prev.listeners,
            &old.listeners,
        );
        carry(&mut set.routes, &keys.routes, &prev.routes, &old.routes);
        carry(
            &mut set.clusters,
            &keys.clusters,
            &prev.clusters,
            &old.clusters,
        );
        carry(
            &mut set.endpoints,
            &keys.endpoints,
            &prev.endpoints,
            &old.endpoints,
        );
        set
    }
}

/// The names a layout is keyed by, per dimension.
struct Keys {
    listeners: Vec<String>,
    routes: Vec<String>,
    clusters: Vec<String>,
    endpoints: Vec<String>,
}

impl Keys {
    fn of(config: &Config) -> Keys {
        Keys {
            listeners: config.listeners.iter().map(|l| l.name.clone()).collect(),
            routes: config.routes.iter().map(|r| r.name.clone()).collect(),
            clusters: config.clusters.iter().map(|c| c.name.clone()).collect(),
            endpoints: super::layout::endpoint_keys(config)
                .into_iter()
                .map(|(c, e)| format!("{c}\u{0}{e}"))
                .collect(),
        }
    }
}

/// `into[i] = from[j]` wherever `keys[i] == from_keys[j]` (both present).
fn carry<T: Clone>(into: &mut [T], keys: &[String], from: &[T], from_keys: &[String]) {
    if into.is_empty() || from.is_empty() {
        return;
    }
    for (i, k) in keys.iter().enumerate() {
        if let Some(j) = from_keys.iter().position(|f| f == k) {
            if let (Some(slot), Some(v)) = (into.get_mut(i), from.get(j)) {
                *slot = v.clone();
            }
        }
    }
}

/// One live histogram and whether it changed since the last publish. Shared
/// (`Rc`) between the layouts of consecutive generations that keep its
/// name, so a request finishing on an old generation records into the same
/// histogram as the new one.
#[derive(Debug)]
struct Live {
    h: RefCell<Histogram<u64>>,
    dirty: Cell<bool>,
}

impl Live {
    fn new(sigfig: u8) -> Rc<Live> {
        Rc::new(Live {
            h: RefCell::new(new_histogram(sigfig)),
            dirty: Cell::new(false),
        })
    }
}

struct Dim {
    live: Vec<Rc<Live>>,
}

impl Dim {
    fn new(on: bool, keys: &[String], sigfig: u8, prev: Option<(&Dim, &[String])>) -> Self {
        if !on {
            return Dim { live: Vec::new() };
        }
        let live = keys
            .iter()
            .map(|k| {
                prev.and_then(|(d, pk)| {
                    let j = pk.iter().position(|p| p == k)?;
                    d.live.get(j).cloned()
                })
                .unwrap_or_else(|| Live::new(sigfig))
            })
            .collect();
        Dim { live }
    }

    #[inline]
    fn record(&self, i: usize, micros: u64) {
        if let Some(l) = self.live.get(i) {
            l.h.borrow_mut()
                .saturating_record(micros.clamp(1, MAX_MICROS));
            l.dirty.set(true);
        }
    }

    /// Clone the changed histograms into `published` (unchanged ones keep
    /// their `Arc`).
    fn publish(&self, published: &mut [Arc<Histogram<u64>>]) -> bool {
        let mut any = false;
        for (i, l) in self.live.iter().enumerate() {
            if l.dirty.get() {
                if let Some(p) = published.get_mut(i) {
                    *p = Arc::new(l.h.borrow().clone());
                }
                l.dirty.set(false);
                any = true;
            }
        }
        any
    }
}

/// The worker-owned, mutable histograms of one generation's layout.
pub struct WorkerHistograms {
    listeners: Dim,
    routes: Dim,
    clusters: Dim,
    endpoints: Dim,
    cluster_base: Vec<usize>,
    keys: Keys,
    last: RefCell<HistogramSet>,
}

impl WorkerHistograms {
    pub fn new(config: &Config) -> Self {
        Self::carried(config, None, None)
    }

    /// The histograms of `config`'s layout, sharing the live histograms of
    /// names that `prev` has; `published` is the set last published (the
    /// starting point of this layout's snapshots).
    pub fn carried(
        config: &Config,
        prev: Option<&WorkerHistograms>,
        published: Option<&HistogramSet>,
    ) -> Self {
        let s = &config.stats;
        let keys = Keys::of(config);
        let mut cluster_base = Vec::new();
        let mut n = 0;
        for c in &config.clusters {
            cluster_base.push(n);
            n += c.endpoints.len();
        }
        let sig = s.histogram_sigfig;
        let p = |f: fn(&WorkerHistograms) -> (&Dim, &[String])| prev.map(f);
        WorkerHistograms {
            listeners: Dim::new(
                s.listener_histograms,
                &keys.listeners,
                sig,
                p(|w| (&w.listeners, &w.keys.listeners)),
            ),
            routes: Dim::new(
                s.route_histograms,
                &keys.routes,
                sig,
                p(|w| (&w.routes, &w.keys.routes)),
            ),
            clusters: Dim::new(
                s.cluster_histograms,
                &keys.clusters,
                sig,
                p(|w| (&w.clusters, &w.keys.clusters)),
            ),
            endpoints: Dim::new(
                s.endpoint_histograms,
                &keys.endpoints,
                sig,
                p(|w| (&w.endpoints, &w.keys.endpoints)),
            ),
            cluster_base,
            keys,
            last: RefCell::new(
                published
                    .cloned()
                    .unwrap_or_else(|| HistogramSet::empty(config)),
            ),
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
        let micros = total.as_micros() as u64;
        self.listeners.record(listener, micros);
        if let Some(r) = route {
            self.routes.record(r, micros);
        }
        if let Some((c, e, t)) = upstream {
            let up = t.as_micros() as u64;
            self.clusters.record(c, up);
            if let Some(base) = self.cluster_base.get(c) {
                self.endpoints.record(base + e, up);
            }
        }
    }

    /// A new snapshot when anything changed since the last one.
    pub fn snapshot(&self) -> Option<HistogramSet> {
        let mut last = self.last.borrow_mut();
        let mut any = self.listeners.publish(&mut last.listeners);
        any |= self.routes.publish(&mut last.routes);
        any |= self.clusters.publish(&mut last.clusters);
        any |= self.endpoints.publish(&mut last.endpoints);
        any.then(|| last.clone())
    }
}
