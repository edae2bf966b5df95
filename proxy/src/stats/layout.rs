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
    /// Requests whose head was read (routed or not).
    pub requests: Counter,
    /// Requests rejected before routing (bad head, 408, 431) or unrouted (404).
    pub rejected: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
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
}

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats {
            requests: Counter::default(),
            codes: counters(CODE_SLOTS),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            errors: counters(ERROR_KINDS),
        }
    }
}

#[derive(Debug)]
pub struct ClusterStats {
    pub requests: Counter,
    /// Responses by class: 0 = none, 1..=5 = 1xx..5xx.
    pub classes: [Counter; 6],
    pub errors: Box<[Counter]>,
}

impl Default for ClusterStats {
    fn default() -> Self {
        ClusterStats {
            requests: Counter::default(),
            classes: Default::default(),
            errors: counters(ERROR_KINDS),
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
}

/// One worker's counters (written by that worker only) and its latest
/// published histograms.
pub struct WorkerStats {
    pub worker: usize,
    pub listeners: Box<[ListenerStats]>,
    pub routes: Box<[RouteStats]>,
    pub clusters: Box<[ClusterStats]>,
    /// Flattened: `cluster_base[c] + e`.
    pub endpoints: Box<[EndpointStats]>,
    pub cluster_base: Box<[usize]>,
    /// Idle upstream connections held in the pool.
    pub pool_idle: Gauge,
    /// Latest snapshot published by the worker.
    pub histograms: ArcSwap<HistogramSet>,
    /// The worker's io_uring file descriptor (-1: none, e.g. epoll driver),
    /// set by the main thread after the worker started.
    pub ring_fd: AtomicI32,
}

impl WorkerStats {
    pub fn new(worker: usize, config: &Config) -> Self {
        let mut cluster_base = Vec::with_capacity(config.clusters.len());
        let mut n_endpoints = 0;
        for c in &config.clusters {
            cluster_base.push(n_endpoints);
            n_endpoints += c.endpoints.len();
        }
        WorkerStats {
            worker,
            listeners: (0..config.listeners.len())
                .map(|_| Default::default())
                .collect(),
            routes: (0..config.routes.len())
                .map(|_| Default::default())
                .collect(),
            clusters: (0..config.clusters.len())
                .map(|_| Default::default())
                .collect(),
            endpoints: (0..n_endpoints).map(|_| Default::default()).collect(),
            cluster_base: cluster_base.into_boxed_slice(),
            pool_idle: Gauge::default(),
            histograms: ArcSwap::from_pointee(HistogramSet::empty(config)),
            ring_fd: AtomicI32::new(-1),
        }
    }

    pub fn endpoint(&self, cluster: usize, endpoint: usize) -> &EndpointStats {
        &self.endpoints[self.cluster_base[cluster] + endpoint]
    }

    pub fn ring_fd(&self) -> Option<i32> {
        let fd = self.ring_fd.load(Ordering::Relaxed);
        (fd >= 0).then_some(fd)
    }
}

/// Every worker's stats block, for readers. Built once by the main thread.
pub struct StatsRegistry {
    pub config: Arc<Config>,
    pub workers: Vec<Arc<WorkerStats>>,
}

impl StatsRegistry {
    pub fn new(config: Arc<Config>, workers: usize) -> Self {
        let blocks = (0..workers)
            .map(|w| Arc::new(WorkerStats::new(w, &config)))
            .collect();
        StatsRegistry {
            config,
            workers: blocks,
        }
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
