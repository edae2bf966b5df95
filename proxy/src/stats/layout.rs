//! What each worker counts, laid out once per config: one block per worker,
//! arrays indexed by listener, route, cluster and endpoint (endpoints are
//! flattened over clusters: `cluster_base[c] + e`, like the upstream pool).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::counter::{Counter, Gauge};
use super::histograms::HistogramSet;
use crate::config::Config;
use crate::error::ERROR_KIND_NAMES;

/// Number of error kinds counted (`error::ERROR_KIND_NAMES`).
pub const ERROR_KINDS: usize = ERROR_KIND_NAMES.len();
/// Status codes are counted exactly for 100..=599; index 0 = no response.
pub const CODE_SLOTS: usize = 600;

fn counters(n: usize) -> Box<[Counter]> {
    (0..n).map(|_| Counter::default()).collect()
}

#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Connections accepted.
    pub cx_total: Counter,
    pub cx_active: Gauge,
    pub tls_handshake_failures: Counter,
    /// Connections closed for a malformed, missing or late PROXY header.
    pub proxy_protocol_errors: Counter,
    /// Requests whose head was read (routed or not).
    pub requests: Counter,
    /// Requests rejected before routing (bad head, 408, 431) or unrouted (404).
    pub rejected: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    /// Of `bytes_in` and `bytes_out`, those moved with splice(2).
    pub bytes_spliced: Counter,
}

#[derive(Debug)]
pub struct RouteStats {
    pub requests: Counter,
    /// Responses by exact status code (index = code; 0 = none sent).
    pub codes: Box<[Counter]>,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    /// Failures by `ErrorKind::index`.
    pub errors: Box<[Counter]>,
    /// gRPC answers by `grpc-status` (0..=16; larger codes count as 2,
    /// UNKNOWN).
    pub grpc: Box<[Counter]>,
}

/// gRPC status codes counted (0 OK .. 16 UNAUTHENTICATED).
pub const GRPC_CODES: usize = 17;

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats {
            requests: Counter::default(),
            codes: counters(CODE_SLOTS),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            errors: counters(ERROR_KINDS),
            grpc: counters(GRPC_CODES),
        }
    }
}

#[derive(Debug)]
pub struct ClusterStats {
    pub requests: Counter,
    /// Responses by class: 0 = none, 1..=5 = 1xx..5xx.
    pub classes: [Counter; 6],
    pub errors: Box<[Counter]>,
    /// Retries sent (`retries` on a route).
    pub retries: Counter,
    /// Retries not sent: the cluster's retry budget was spent.
    pub retries_budget_exhausted: Counter,
    /// Request copies sent to this cluster as a shadow (`mirror` on a
    /// route): sent, failed (no answer head in time, refused), dropped
    /// (too many in flight on the worker).
    pub mirror_sent: Counter,
    pub mirror_failed: Counter,
    pub mirror_dropped: Counter,
    /// Hedges sent (`hedge` on a route), and those whose answer was used.
    pub hedges: Counter,
    pub hedge_wins: Counter,
    /// Requests refused (503) by `circuit_breakers.max_requests`.
    pub overflow_requests: Counter,
    /// Retries not sent because of `circuit_breakers.max_retries`.
    pub overflow_retries: Counter,
    /// Requests refused (503) by `max_connections` (waited
    /// `connect_timeout` without room) and by `max_pending`.
    pub overflow_connections: Counter,
    pub overflow_pending: Counter,
}

impl Default for ClusterStats {
    fn default() -> Self {
        ClusterStats {
            requests: Counter::default(),
            classes: Default::default(),
            errors: counters(ERROR_KINDS),
            retries: Counter::default(),
            retries_budget_exhausted: Counter::default(),
            mirror_sent: Counter::default(),
            mirror_failed: Counter::default(),
            mirror_dropped: Counter::default(),
            hedges: Counter::default(),
            hedge_wins: Counter::default(),
            overflow_requests: Counter::default(),
            overflow_retries: Counter::default(),
            overflow_connections: Counter::default(),
            overflow_pending: Counter::default(),
        }
    }
}

#[derive(Debug, Default)]
pub struct EndpointStats {
    pub requests: Counter,
    pub classes: [Counter; 6],
    /// Upstream connections: newly opened / taken from the pool.
    pub cx_new: Counter,
    pub cx_reused: Counter,
    pub connect_failures: Counter,
    pub timeouts: Counter,
    /// HTTP/2 streams the endpoint refused unprocessed (REFUSED_STREAM),
    /// each sent again or answered 502.
    pub streams_refused: Counter,
    /// Times this worker ejected the endpoint (`outlier_detection`).
    pub ejections: Counter,
    /// 1 while this worker ejects it.
    pub ejected: Gauge,
}

/// A worker's io_uring ring features, as its worker last published them
/// (`/workers`).
#[derive(Debug, Default)]
pub struct RingGauges {
    /// `buffer_ring`: buffers in the provided-buffer ring, and selected
    /// reads that found it empty.
    pub buffers: Gauge,
    pub ran_dry: Gauge,
    /// `fixed_files`: slots holding a socket, slots in the table, and
    /// registrations that found every slot taken.
    pub fixed_in_use: Gauge,
    pub fixed_slots: Gauge,
    pub fixed_went_without: Gauge,
    /// `multishot_recv`: receives armed now, and armed in all.
    pub multishot_armed: Gauge,
    pub multishot_arms: Gauge,
}

/// One worker's counters for one configuration generation (written by that
/// worker only) and its latest published histograms.
///
/// The arrays are indexed like the generation's config (listener, route,
/// cluster, flattened endpoint); each entry is an `Arc` so that a reload
/// carries the counters of unchanged names over ([`WorkerStats::carried`]):
/// the old and the new layout share the same counter objects, and a request
/// still finishing on the old generation counts into them too.
pub struct WorkerStats {
    pub worker: usize,
    pub listeners: Box<[Arc<ListenerStats>]>,
    pub routes: Box<[Arc<RouteStats>]>,
    pub clusters: Box<[Arc<ClusterStats>]>,
    /// Flattened: `cluster_base[c] + e`.
    pub endpoints: Box<[Arc<EndpointStats>]>,
    pub cluster_base: Box<[usize]>,
    /// Per route: requests sent to each target of its `split` (empty for
    /// other routes). Carried over a reload when the route keeps its name
    /// and the same clusters in the same order.
    pub splits: Box<[Arc<[Counter]>]>,
    /// Idle upstream connections held in the pool (per worker, not per
    /// generation: shared by every layout of the worker).
    pub pool_idle: Arc<Gauge>,
    /// The worker's ring features' figures (per worker, like `pool_idle`).
    pub ring: Arc<RingGauges>,
    /// Latest snapshot published by the worker.
    pub histograms: ArcSwap<HistogramSet>,
    /// The worker's io_uring file descriptor (-1: none, e.g. epoll driver),
    /// set by the main thread after the worker started (shared by every
    /// layout of the worker).
    pub ring_fd: Arc<AtomicI32>,
}

/// What carries a split route's counters over a reload: its name and its
/// clusters, in order.
type SplitKey = (String, Vec<String>);

/// Reuse `prev`'s entry named `key` when there is one.
fn reuse<K: PartialEq, T: Default>(prev: &[(K, Arc<T>)], key: &K) -> Arc<T> {
    prev.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Endpoint key: cluster name and endpoint label.
pub fn endpoint_keys(config: &Config) -> Vec<(String, String)> {
    config
        .clusters
        .iter()
        .flat_map(|c| {
            c.endpoints
                .iter()
                .map(move |e| (c.name.clone(), e.label.clone()))
        })
        .collect()
}

impl WorkerStats {
    pub fn new(worker: usize, config: &Config) -> Self {
        Self::carried(worker, config, None)
    }

    /// The layout of `config`, sharing the counters (and the latest
    /// published histograms) of every listener, route, cluster and endpoint
    /// whose name is also in `prev` (with its config).
    pub fn carried(worker: usize, config: &Config, prev: Option<(&WorkerStats, &Config)>) -> Self {
        let mut cluster_base = Vec::with_capacity(config.clusters.len());
        let mut n_endpoints = 0;
        for c in &config.clusters {
            cluster_base.push(n_endpoints);
            n_endpoints += c.endpoints.len();
        }
        let names = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<String>>();
        let (pl, pr, pc, pe) = match prev {
            None => (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            Some((w, c)) => (
                names(&mut c.listeners.iter().map(|l| l.name.clone()))
                    .into_iter()
                    .zip(w.listeners.iter().cloned())
                    .collect::<Vec<_>>(),
                names(&mut c.routes.iter().map(|r| r.name.clone()))
                    .into_iter()
                    .zip(w.routes.iter().cloned())
                    .collect::<Vec<_>>(),
                names(&mut c.clusters.iter().map(|k| k.name.clone()))
                    .into_iter()
                    .zip(w.clusters.iter().cloned())
                    .collect::<Vec<_>>(),
                endpoint_keys(c)
                    .into_iter()
                    .zip(w.endpoints.iter().cloned())
                    .collect::<Vec<_>>(),
            ),
        };
        let histograms = match prev {
            None => HistogramSet::empty(config),
            Some((w, c)) => HistogramSet::carried(config, &w.histograms.load(), c),
        };
        let split_key = |c: &Config, r: &crate::config::RouteConfig| -> SplitKey {
            let targets = match &r.action {
                crate::config::RouteAction::Split(s) => s
                    .targets
                    .iter()
                    .map(|(ci, _)| c.clusters[*ci].name.clone())
                    .collect(),
                _ => Vec::new(),
            };
            (r.name.clone(), targets)
        };
        let prev_splits: Vec<(SplitKey, Arc<[Counter]>)> = match prev {
            None => Vec::new(),
            Some((w, c)) => c
                .routes
                .iter()
                .map(|r| split_key(c, r))
                .zip(w.splits.iter().cloned())
                .collect(),
        };
        let splits = config
            .routes
            .iter()
            .map(|r| {
                let key = split_key(config, r);
                prev_splits
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| counters(key.1.len()).into())
            })
            .collect();
        WorkerStats {
            worker,
            splits,
            listeners: config
                .listeners
                .iter()
                .map(|l| reuse(&pl, &l.name))
                .collect(),
            routes: config.routes.iter().map(|r| reuse(&pr, &r.name)).collect(),
            clusters: config
                .clusters
                .iter()
                .map(|c| reuse(&pc, &c.name))
                .collect(),
            endpoints: endpoint_keys(config)
                .iter()
                .map(|k| reuse(&pe, k))
                .collect(),
            cluster_base: cluster_base.into_boxed_slice(),
            pool_idle: prev.map(|(w, _)| w.pool_idle.clone()).unwrap_or_default(),
            ring: prev.map(|(w, _)| w.ring.clone()).unwrap_or_default(),
            histograms: ArcSwap::from_pointee(histograms),
            ring_fd: prev
                .map(|(w, _)| w.ring_fd.clone())
                .unwrap_or_else(|| Arc::new(AtomicI32::new(-1))),
        }
    }

    pub fn endpoint(&self, cluster: usize, endpoint: usize) -> &EndpointStats {
        &self.endpoints[self.cluster_base[cluster] + endpoint]
    }

    /// The shared handle of [`WorkerStats::endpoint`].
    pub fn endpoint_arc(&self, cluster: usize, endpoint: usize) -> Arc<EndpointStats> {
        self.endpoints[self.cluster_base[cluster] + endpoint].clone()
    }

    pub fn ring_fd(&self) -> Option<i32> {
        let fd = self.ring_fd.load(Ordering::Relaxed);
        (fd >= 0).then_some(fd)
    }
}

/// The stats of one configuration generation: its config (for names) and
/// every worker's layout of it.
pub struct StatsGeneration {
    /// The configuration generation these stats are laid out for.
    pub generation: u64,
    pub config: Arc<Config>,
    pub workers: Vec<Arc<WorkerStats>>,
}

/// Every worker's stats, for readers. The main thread installs a new
/// [`StatsGeneration`] on each reload (before the workers switch), carrying
/// the counters of unchanged names over.
pub struct StatsRegistry {
    current: ArcSwap<StatsGeneration>,
    workers: usize,
    /// Configuration generations and reloads.
    pub reloads: ReloadStatus,
}

/// What the admin side shows of reloads. Written by the main thread (and
/// `applied[w]` by worker `w` only).
pub struct ReloadStatus {
    /// The newest generation published (1 = the config ringway started with).
    pub generation: std::sync::atomic::AtomicU64,
    pub ok: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    /// Per worker: the generation it serves new requests with.
    pub applied: Arc<[std::sync::atomic::AtomicU64]>,
    /// Per worker: event-loop ticks (`server::notify`'s watchdog).
    pub beats: Arc<[std::sync::atomic::AtomicU64]>,
}

impl ReloadStatus {
    fn new(workers: usize) -> Self {
        use std::sync::atomic::AtomicU64;
        ReloadStatus {
            generation: AtomicU64::new(1),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            applied: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            beats: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether every worker serves generation `g` (or a newer one).
    pub fn all_applied(&self, g: u64) -> bool {
        self.applied.iter().all(|a| a.load(Ordering::Acquire) >= g)
    }
}

impl StatsRegistry {
    pub fn new(config: Arc<Config>, workers: usize) -> Self {
        let blocks = (0..workers)
            .map(|w| Arc::new(WorkerStats::new(w, &config)))
            .collect();
        StatsRegistry {
            current: ArcSwap::from_pointee(StatsGeneration {
                generation: 1,
                config,
                workers: blocks,
            }),
            workers,
            reloads: ReloadStatus::new(workers),
        }
    }

    /// The current generation's stats.
    pub fn load(&self) -> Arc<StatsGeneration> {
        self.current.load_full()
    }

    /// Worker `w`'s stats block of the current generation.
    pub fn worker(&self, w: usize) -> Arc<WorkerStats> {
        self.current.load().workers[w].clone()
    }

    pub fn worker_count(&self) -> usize {
        self.workers
    }

    /// Lay out the stats of `config` for every worker, carrying counters
    /// over by name, and make it current. Returns the new blocks (one per
    /// worker) for the workers to switch to.
    pub fn install(&self, config: Arc<Config>, generation: u64) -> Vec<Arc<WorkerStats>> {
        let prev = self.current.load_full();
        let blocks: Vec<Arc<WorkerStats>> = prev
            .workers
            .iter()
            .map(|w| {
                Arc::new(WorkerStats::carried(
                    w.worker,
                    &config,
                    Some((w, &prev.config)),
                ))
            })
            .collect();
        self.current.store(Arc::new(StatsGeneration {
            generation,
            config,
            workers: blocks.clone(),
        }));
        blocks
    }
}

/// Class index of a status code: 1..=5, 0 when none was sent.
#[inline]
pub fn class_of(status: u16) -> usize {
    match status {
        100..=599 => (status / 100) as usize,
        _ => 0,
    }
}

/// Counter slot of a status code: the code itself, 0 when none was sent.
#[inline]
pub fn code_slot(status: u16) -> usize {
    match status {
        100..=599 => status as usize,
        _ => 0,
    }
}
