//! Merge on read: sum every worker's counters and add up their latest
//! histogram snapshots into one [`StatsView`] (or a view of one worker).

use hdrhistogram::Histogram;

use super::histograms::new_histogram;
use super::layout::{StatsGeneration, WorkerStats, CODE_SLOTS, ERROR_KINDS};
use crate::error::ERROR_KIND_NAMES;

#[derive(Debug, Clone, Default)]
pub struct ListenerView {
    pub name: String,
    pub cx_total: u64,
    pub cx_active: i64,
    pub tls_handshake_failures: u64,
    pub proxy_protocol_errors: u64,
    pub requests: u64,
    pub rejected: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_spliced: u64,
    /// Request duration, µs (None: dimension off).
    pub latency: Option<Histogram<u64>>,
}

#[derive(Debug, Clone, Default)]
pub struct RouteView {
    pub name: String,
    /// Listener names the route belongs to (empty: all).
    pub listener: Option<String>,
    pub cluster: String,
    pub requests: u64,
    /// Non-zero counts by status code (0 = no response sent), ascending.
    pub codes: Vec<(u16, u64)>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Non-zero failures by error kind name.
    pub errors: Vec<(&'static str, u64)>,
    /// A `split` route: requests sent to each of its clusters, in order.
    pub split: Vec<(String, u64)>,
    /// Non-zero counts of gRPC answers by `grpc-status`, ascending.
    pub grpc: Vec<(u32, u64)>,
    /// Request duration, µs.
    pub latency: Option<Histogram<u64>>,
    /// Time ringway added (request duration minus upstream time), µs, for
    /// the requests that reached an upstream.
    pub proxy_latency: Option<Histogram<u64>>,
}

impl RouteView {
    /// Responses by class: index 0 = none sent, 1..=5 = 1xx..5xx.
    pub fn classes(&self) -> [u64; 6] {
        let mut c = [0u64; 6];
        for &(code, n) in &self.codes {
            c[super::layout::class_of(code)] += n;
        }
        c
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub name: String,
    pub requests: u64,
    pub retries: u64,
    pub retries_budget_exhausted: u64,
    pub mirror: [u64; 3],
    pub hedges: u64,
    pub hedge_wins: u64,
    pub overflow_requests: u64,
    pub overflow_retries: u64,
    pub overflow_connections: u64,
    pub overflow_pending: u64,
    pub classes: [u64; 6],
    pub errors: Vec<(&'static str, u64)>,
    /// Upstream response time, µs.
    pub latency: Option<Histogram<u64>>,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointView {
    pub cluster: String,
    pub endpoint: String,
    pub requests: u64,
    pub classes: [u64; 6],
    pub cx_new: u64,
    pub cx_reused: u64,
    pub connect_failures: u64,
    /// HTTP/2 streams refused unprocessed (REFUSED_STREAM).
    pub streams_refused: u64,
    /// Ejections by all workers, and how many eject it now.
    pub ejections: u64,
    pub ejected_by: i64,
    pub timeouts: u64,
    pub latency: Option<Histogram<u64>>,
}

/// Stats summed over the workers asked for.
#[derive(Debug, Clone, Default)]
pub struct StatsView {
    /// Workers merged into this view.
    pub workers: Vec<usize>,
    pub listeners: Vec<ListenerView>,
    pub routes: Vec<RouteView>,
    pub clusters: Vec<ClusterView>,
    pub endpoints: Vec<EndpointView>,
    pub pool_idle: i64,
}

fn add_hist(into: &mut Option<Histogram<u64>>, from: Option<&Histogram<u64>>, sigfig: u8) {
    if let Some(h) = from {
        let target = into.get_or_insert_with(|| new_histogram(sigfig));
        // Same bounds on every worker: add cannot fail; if it ever did, the
        // view would only miss that worker's samples.
        let _ = target.add(h);
    }
}

fn errors_of(arr: &[u64; ERROR_KINDS]) -> Vec<(&'static str, u64)> {
    arr.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (ERROR_KIND_NAMES[i], *n))
        .collect()
}

/// Merge the workers in `only` (all when `None`).
pub fn merge(reg: &StatsGeneration, only: Option<usize>) -> StatsView {
    let config = &reg.config;
    let sigfig = config.stats.histogram_sigfig;
    let blocks: Vec<&WorkerStats> = reg
        .workers
        .iter()
        .filter(|w| only.is_none_or(|o| o == w.worker))
        .map(|w| &**w)
        .collect();
    let snaps: Vec<_> = blocks.iter().map(|w| w.histograms.load_full()).collect();

    let mut view = StatsView {
        workers: blocks.iter().map(|w| w.worker).collect(),
        ..Default::default()
    };

    for (i, l) in config.listeners.iter().enumerate() {
        let mut v = ListenerView {
            name: l.name.clone(),
            ..Default::default()
        };
        for (w, snap) in blocks.iter().zip(&snaps) {
            let s = &w.listeners[i];
            v.cx_total += s.cx_total.get();
            v.cx_active += s.cx_active.get();
            v.tls_handshake_failures += s.tls_handshake_failures.get();
            v.proxy_protocol_errors += s.proxy_protocol_errors.get();
            v.requests += s.requests.get();
            v.rejected += s.rejected.get();
            v.bytes_in += s.bytes_in.get();
            v.bytes_out += s.bytes_out.get();
            v.bytes_spliced += s.bytes_spliced.get();
            add_hist(&mut v.latency, snap.listeners.get(i).map(|h| &**h), sigfig);
        }
        view.listeners.push(v);
    }

    for (i, r) in config.routes.iter().enumerate() {
        let mut codes = vec![0u64; CODE_SLOTS];
        let mut errors = [0u64; ERROR_KINDS];
        let mut grpc = [0u64; super::layout::GRPC_CODES];
        let mut v = RouteView {
            name: r.name.clone(),
            listener: r.listener.map(|l| config.listeners[l].name.clone()),
            cluster: r.target_label(&config.clusters),
            ..Default::default()
        };
        if let crate::config::RouteAction::Split(sp) = &r.action {
            v.split = sp
                .targets
                .iter()
                .enumerate()
                .map(|(t, (ci, _))| {
                    let n = blocks
                        .iter()
                        .map(|w| {
                            w.splits
                                .get(i)
                                .and_then(|s| s.get(t))
                                .map_or(0, |c| c.get())
                        })
                        .sum();
                    (config.clusters[*ci].name.clone(), n)
                })
                .collect();
        }
        for (w, snap) in blocks.iter().zip(&snaps) {
            let s = &w.routes[i];
            v.requests += s.requests.get();
            v.bytes_in += s.bytes_in.get();
            v.bytes_out += s.bytes_out.get();
            for (slot, c) in s.codes.iter().enumerate() {
                codes[slot] += c.get();
            }
            for (k, c) in s.errors.iter().enumerate() {
                errors[k] += c.get();
            }
            for (k, c) in s.grpc.iter().enumerate() {
                grpc[k] += c.get();
            }
            add_hist(&mut v.latency, snap.routes.get(i).map(|h| &**h), sigfig);
            add_hist(
                &mut v.proxy_latency,
                snap.routes_proxy.get(i).map(|h| &**h),
                sigfig,
            );
        }
        v.codes = codes
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code as u16, *n))
            .collect();
        v.errors = errors_of(&errors);
        v.grpc = grpc
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code as u32, *n))
            .collect();
        view.routes.push(v);
    }

    let mut flat = 0;
    for (ci, c) in config.clusters.iter().enumerate() {
        let mut errors = [0u64; ERROR_KINDS];
        let mut v = ClusterView {
            name: c.name.clone(),
            ..Default::default()
        };
        for (w, snap) in blocks.iter().zip(&snaps) {
            let s = &w.clusters[ci];
            v.requests += s.requests.get();
            v.retries += s.retries.get();
            v.retries_budget_exhausted += s.retries_budget_exhausted.get();
            v.mirror[0] += s.mirror_sent.get();
            v.mirror[1] += s.mirror_failed.get();
            v.mirror[2] += s.mirror_dropped.get();
            v.hedges += s.hedges.get();
            v.hedge_wins += s.hedge_wins.get();
            v.overflow_requests += s.overflow_requests.get();
            v.overflow_retries += s.overflow_retries.get();
            v.overflow_connections += s.overflow_connections.get();
            v.overflow_pending += s.overflow_pending.get();
            for (k, n) in s.classes.iter().enumerate() {
                v.classes[k] += n.get();
            }
            for (k, n) in s.errors.iter().enumerate() {
                errors[k] += n.get();
            }
            add_hist(&mut v.latency, snap.clusters.get(ci).map(|h| &**h), sigfig);
        }
        v.errors = errors_of(&errors);
        view.clusters.push(v);

        for ep in &c.endpoints {
            let mut e = EndpointView {
                cluster: c.name.clone(),
                endpoint: ep.label.clone(),
                ..Default::default()
            };
            for (w, snap) in blocks.iter().zip(&snaps) {
                let s = &w.endpoints[flat];
                e.requests += s.requests.get();
                for (k, n) in s.classes.iter().enumerate() {
                    e.classes[k] += n.get();
                }
                e.cx_new += s.cx_new.get();
                e.cx_reused += s.cx_reused.get();
                e.connect_failures += s.connect_failures.get();
                e.streams_refused += s.streams_refused.get();
                e.timeouts += s.timeouts.get();
                e.ejections += s.ejections.get();
                e.ejected_by += s.ejected.get();
                add_hist(
                    &mut e.latency,
                    snap.endpoints.get(flat).map(|h| &**h),
                    sigfig,
                );
            }
            view.endpoints.push(e);
            flat += 1;
        }
    }
    view.pool_idle = blocks.iter().map(|w| w.pool_idle.get()).sum();
    view
}
