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

/// A published snapshot: request duration per listener and route, the time
/// ringway itself added per route (`routes_proxy`: total minus upstream
/// time, requests that reached an upstream only), upstream response time
/// per cluster and endpoint (flattened), in microseconds.
/// Empty vectors mean the dimension is switched off.
#[derive(Debug, Clone)]
pub struct HistogramSet {
    pub listeners: Vec<Arc<Histogram<u64>>>,
    pub routes: Vec<Arc<Histogram<u64>>>,
    /// Proxy-added time per route (on with the route histograms).
    pub routes_proxy: Vec<Arc<Histogram<u64>>>,
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
            routes_proxy: make(s.route_histograms, config.routes.len()),
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
            &mut set.routes_proxy,
            &keys.routes,
            &prev.routes_proxy,
            &old.routes,
        );
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
    routes_proxy: Dim,
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
            routes_proxy: Dim::new(
                s.route_histograms,
                &keys.routes,
                sig,
                p(|w| (&w.routes_proxy, &w.keys.routes)),
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

    /// Record one request: its total duration on the listener and route,
    /// the time the proxy added (total minus upstream time, for requests
    /// that reached an upstream) on the route, and the upstream time on the
    /// cluster and endpoint when there was one.
    pub fn record(
        &self,
        listener: usize,
        route: Option<usize>,
        upstream: Option<(usize, usize, Duration)>,
        total: Duration,
        proxy_added: Option<Duration>,
    ) {
        let micros = total.as_micros() as u64;
        self.listeners.record(listener, micros);
        if let Some(r) = route {
            self.routes.record(r, micros);
            if let Some(p) = proxy_added {
                self.routes_proxy.record(r, p.as_micros() as u64);
            }
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
        any |= self.routes_proxy.publish(&mut last.routes_proxy);
        any |= self.clusters.publish(&mut last.clusters);
        any |= self.endpoints.publish(&mut last.endpoints);
        any.then(|| last.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{merge, StatsRegistry};

    fn config(routes: &[&str], extra: &str) -> Arc<Config> {
        let mut text = String::from(
            "[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n\
             [[cluster]]\nname = \"backend\"\nendpoints = [\"127.0.0.1:9001\"]\n",
        );
        for (i, r) in routes.iter().enumerate() {
            text.push_str(&format!(
                "\n[[route]]\nname = \"{r}\"\npath_prefix = \"/{i}/\"\ncluster = \"backend\"\n"
            ));
        }
        text.push_str(extra);
        Arc::new(Config::parse(&text, None).unwrap())
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// A request through an upstream: `total` µs, of which `up` upstream.
    fn request(h: &WorkerHistograms, route: usize, total: u64, up: u64) {
        h.record(
            0,
            Some(route),
            Some((0, 0, us(up))),
            us(total),
            Some(us(total - up)),
        );
    }

    #[test]
    fn proxy_added_is_recorded_per_route_and_published() {
        let cfg = config(&["a", "b"], "");
        let h = WorkerHistograms::new(&cfg);
        assert!(h.snapshot().is_none());
        request(&h, 0, 1_000, 900);
        request(&h, 0, 2_000, 1_800);
        // Answered locally: no upstream, no proxy-added sample.
        h.record(0, Some(1), None, us(50), None);
        // Unrouted.
        h.record(0, None, None, us(10), None);
        let set = h.snapshot().expect("changed");
        assert_eq!(set.routes_proxy.len(), 2);
        let a = &set.routes_proxy[0];
        assert_eq!(a.len(), 2);
        assert_eq!(a.min(), 100);
        assert_eq!(a.max(), 200);
        assert_eq!(set.routes_proxy[1].len(), 0);
        assert_eq!(set.routes[1].len(), 1);
        assert_eq!(set.routes[0].len(), 2);
        // Nothing changed: no new snapshot.
        assert!(h.snapshot().is_none());
        // Only the proxy-added histogram changes: a new snapshot anyway.
        h.record(0, None, None, us(10), None);
        h.snapshot();
        h.routes_proxy.record(1, 5);
        let set = h.snapshot().expect("proxy-added changed");
        assert_eq!(set.routes_proxy[1].len(), 1);
    }

    #[test]
    fn proxy_added_follows_the_route_histogram_switch() {
        let cfg = config(&["a"], "\n[stats]\nhistograms = [\"listener\"]\n");
        let h = WorkerHistograms::new(&cfg);
        request(&h, 0, 1_000, 900);
        let set = h.snapshot().expect("listener changed");
        assert!(set.routes.is_empty());
        assert!(set.routes_proxy.is_empty());
        assert!(HistogramSet::empty(&cfg).routes_proxy.is_empty());

        let cfg = config(&["a"], "\n[stats]\nhistograms = [\"route\"]\n");
        let set = HistogramSet::empty(&cfg);
        assert_eq!(set.routes_proxy.len(), 1);
        assert!(set.listeners.is_empty());
    }

    #[test]
    fn proxy_added_merges_across_workers() {
        let cfg = config(&["a", "b"], "");
        let registry = StatsRegistry::new(cfg.clone(), 2);
        let hists: Vec<_> = (0..2).map(|_| WorkerHistograms::new(&cfg)).collect();
        request(&hists[0], 0, 1_000, 900);
        request(&hists[1], 0, 5_000, 4_700);
        request(&hists[1], 0, 2_000, 1_800);
        hists[1].record(0, Some(1), None, us(40), None);
        for (w, h) in hists.iter().enumerate() {
            registry
                .worker(w)
                .histograms
                .store(Arc::new(h.snapshot().unwrap()));
        }
        let view = merge(&registry.load(), None);
        let a = view.routes[0].proxy_latency.as_ref().unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.min(), 100);
        assert_eq!(a.max(), 300);
        assert_eq!(view.routes[0].latency.as_ref().unwrap().len(), 3);
        // Route b only answered locally: present, empty.
        assert_eq!(view.routes[1].proxy_latency.as_ref().unwrap().len(), 0);
        // One worker alone.
        let w1 = merge(&registry.load(), Some(1));
        assert_eq!(w1.routes[0].proxy_latency.as_ref().unwrap().len(), 2);

        // Switched off: no histogram in the view.
        let off = config(&["a"], "\n[stats]\nhistograms = []\n");
        let registry = StatsRegistry::new(off, 1);
        assert!(merge(&registry.load(), None).routes[0]
            .proxy_latency
            .is_none());
    }

    #[test]
    fn proxy_added_is_carried_over_a_reload_by_route_name() {
        let old = config(&["a", "b"], "");
        let h = WorkerHistograms::new(&old);
        request(&h, 0, 1_000, 900); // a
        request(&h, 1, 3_000, 2_500); // b
        let published = h.snapshot().unwrap();

        // b moves first, a is gone, c is new.
        let new = config(&["b", "c"], "");
        let set = HistogramSet::carried(&new, &published, &old);
        assert_eq!(set.routes_proxy.len(), 2);
        assert_eq!(set.routes_proxy[0].len(), 1);
        assert_eq!(set.routes_proxy[0].max(), 500);
        assert_eq!(set.routes_proxy[1].len(), 0);

        let h2 = WorkerHistograms::carried(&new, Some(&h), Some(&set));
        // A request finishing on the old generation and one on the new
        // both land in b's live histogram.
        request(&h, 1, 2_000, 1_800);
        request(&h2, 0, 4_000, 3_600);
        let snap = h2.snapshot().unwrap();
        let b = &snap.routes_proxy[0];
        assert_eq!(b.len(), 3);
        assert_eq!(b.min(), 200);
        assert_eq!(b.max(), 500);
        assert_eq!(snap.routes_proxy[1].len(), 0);
        assert_eq!(snap.routes[0].len(), 3);
    }
}
