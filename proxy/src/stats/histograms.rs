//! Latency histograms: recorded by the owning worker, published as
//! immutable snapshots.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::pending::PendingCounts;
use crate::config::Config;

/// Highest latency tracked, in microseconds (larger values are clamped).
pub const MAX_MICROS: u64 = 3_600_000_000;

/// An empty latency histogram that grows with the largest value recorded.
///
/// Sized for the whole 1 µs – 1 h range up front, a histogram of 3
/// significant digits holds 23,552 counters (184 KiB), and every copy of
/// it (the snapshot a worker publishes each second, the admin side's
/// merged views and its per-route history) touches all of them. Grown on
/// demand it holds 2,048 counters (16 KiB) for values up to 2 ms and
/// 1,024 more for each doubling above (40 KiB up to 16 ms). It grows at
/// most 21 times in its life, on the first value past each power of two;
/// values past [`MAX_MICROS`] are clamped, so it never grows past the
/// fixed-range size. Counts, quantiles and merges are the same as with
/// the fixed range: only the length of the counter array differs.
pub fn new_histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new(sigfig.clamp(1, 5))
        .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits is valid"))
}

/// `micros` as recorded: clamped to 1 µs – [`MAX_MICROS`] (the histogram
/// then grows at most to the fixed-range size).
#[inline]
pub fn clamp_micros(micros: u64) -> u64 {
    micros.clamp(1, MAX_MICROS)
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
/// Requests record into `pending` (cheap: `stats::pending`); a publish
/// drains it into `h` first.
#[derive(Debug)]
struct Live {
    h: RefCell<Histogram<u64>>,
    pending: RefCell<PendingCounts>,
}

impl Live {
    fn new(sigfig: u8) -> Rc<Live> {
        let h = new_histogram(sigfig);
        let pending = PendingCounts::new(h.sigfig());
        Rc::new(Live {
            h: RefCell::new(h),
            pending: RefCell::new(pending),
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
            l.pending.borrow_mut().record(clamp_micros(micros));
        }
    }

    /// Clone the changed histograms into `published` (unchanged ones keep
    /// their `Arc`).
    fn publish(&self, published: &mut [Arc<Histogram<u64>>]) -> bool {
        let mut any = false;
        for (i, l) in self.live.iter().enumerate() {
            let mut pending = l.pending.borrow_mut();
            if !pending.is_empty() {
                let mut h = l.h.borrow_mut();
                pending.drain_into(&mut h);
                if let Some(p) = published.get_mut(i) {
                    *p = Arc::new(h.clone());
                }
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

    /// One value into `h` the way a worker records it: clamped, counted,
    /// then drained into the histogram at publish.
    fn record_micros(h: &mut Histogram<u64>, micros: u64) {
        let mut pending = PendingCounts::new(h.sigfig());
        pending.record(clamp_micros(micros));
        pending.drain_into(h);
    }

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
    fn histograms_grow_with_the_values_and_stop_at_the_fixed_range() {
        let fixed = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3).unwrap();
        assert_eq!(fixed.distinct_values(), 23_552);
        let mut h = new_histogram(3);
        assert_eq!(h.distinct_values(), 2_048);
        for v in [0, 1, 150, 2_047] {
            record_micros(&mut h, v);
        }
        assert_eq!(h.distinct_values(), 2_048, "2 ms fits the first bucket");
        record_micros(&mut h, 10_000);
        assert_eq!(h.distinct_values(), 5_120, "10 ms: three more buckets");
        // Past an hour: clamped, never past the fixed-range size.
        record_micros(&mut h, 2 * MAX_MICROS);
        assert_eq!(h.distinct_values(), fixed.distinct_values());
        assert_eq!(h.max(), fixed.highest_equivalent(MAX_MICROS));
        assert_eq!(h.len(), 6);
        assert_eq!(h.min(), 1, "0 is clamped to 1 µs");
    }

    #[test]
    fn grown_histograms_give_the_fixed_range_answers_and_merge_across_sizes() {
        let mut fixed = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3).unwrap();
        let (mut small, mut large) = (new_histogram(3), new_histogram(3));
        for i in 0..5_000u64 {
            let v = 1 + (i * i * 7) % 40_000;
            fixed.saturating_record(v);
            record_micros(if i % 2 == 0 { &mut small } else { &mut large }, v);
        }
        record_micros(&mut large, 3_000_000);
        fixed.saturating_record(3_000_000);
        assert!(small.distinct_values() < large.distinct_values());
        // The admin side's merge: a fresh histogram, then each worker's.
        let mut merged = new_histogram(3);
        merged.add(&small).unwrap();
        merged.add(&large).unwrap();
        let mut other_order = new_histogram(3);
        other_order.add(&large).unwrap();
        other_order.add(&small).unwrap();
        for m in [&merged, &other_order] {
            assert_eq!(m.len(), fixed.len());
            assert_eq!((m.min(), m.max()), (fixed.min(), fixed.max()));
            for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(m.value_at_quantile(q), fixed.value_at_quantile(q), "q {q}");
            }
            assert_eq!(m.mean(), fixed.mean());
        }
        // The history's interval: cumulative now minus before.
        let mut delta = merged.clone();
        delta.subtract(&small).unwrap();
        assert_eq!(delta.len(), large.len());
        assert_eq!(delta.value_at_quantile(0.99), large.value_at_quantile(0.99));
    }

    #[test]
    fn a_published_snapshot_is_as_small_as_its_values() {
        let cfg = config(&["a"], "");
        let h = WorkerHistograms::new(&cfg);
        request(&h, 0, 1_500, 1_200);
        let set = h.snapshot().unwrap();
        for d in [
            &set.listeners,
            &set.routes,
            &set.routes_proxy,
            &set.clusters,
        ] {
            assert_eq!(d[0].distinct_values(), 2_048);
        }
        request(&h, 0, 9_000_000, 8_000_000);
        let set = h.snapshot().unwrap();
        assert_eq!(
            set.routes[0].distinct_values(),
            15 * 1_024,
            "9 s: 2^13 x 2 ms"
        );
        assert_eq!(
            set.routes[0].max(),
            set.routes[0].highest_equivalent(9_000_000)
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
