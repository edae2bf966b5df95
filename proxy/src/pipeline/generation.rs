//! Configuration generations: what a request is served with.
//!
//! # Architecture
//! A reload produces generation N+1 in two layers (monolake's
//! prepare/commit, DESIGN.md §8):
//!
//! - [`Snapshot`] (shared, immutable, `Send + Sync`): the validated config,
//!   the compiled route tables with their filter chains, the TLS acceptors
//!   and the ids of the listener socket groups. Built once, on the main
//!   thread, off the data path.
//! - [`WorkerGen`] (per worker, `!Send`): the worker's own parts of that
//!   generation: balancer cursors, split cursors, the stats layout (counters
//!   carried over by name) and the live histograms (shared by name with the
//!   previous generation). Built by the worker when it takes the update at
//!   its next tick.
//!
//! The worker keeps the current `Rc<WorkerGen>`; each request clones that
//! `Rc` when its head has arrived, so a request in flight finishes on the
//! generation it began on while the next request on the same kept-alive
//! connection uses the new one. Long-lived state (buffers, watchdog, the
//! upstream pool keyed by address + TLS identity, the drain flag) lives in
//! `runtime::worker::Worker`, outside any generation.

use std::sync::Arc;

use crate::config::{Config, RouteAction};
use crate::stats::{WorkerHistograms, WorkerStats};
use crate::upstream::lb::ClusterBalancer;
use crate::upstream::SmoothWeighted;

use super::route::RouteTable;

/// One configuration generation, compiled (shared by every worker).
pub struct Snapshot {
    pub generation: u64,
    pub config: Arc<Config>,
    /// Per listener (index in `config.listeners`): the compiled routes.
    pub routes: Vec<RouteTable>,
    /// Per listener: the TLS acceptor when the listener terminates TLS.
    pub tls: Vec<Option<monoio_rustls::TlsAcceptor>>,
    /// Per listener: the id of its socket group (unchanged listeners keep
    /// their id, and their sockets, across generations).
    pub listener_ids: Vec<u64>,
    /// Per cluster: the endpoints' active health (clusters with a
    /// `health_check`), shared with the checker thread.
    pub health: Vec<Option<Arc<crate::upstream::health::ClusterHealth>>>,
    /// Query parameters whose values the access log redacts:
    /// `access_log.redact_query` and every parameter a filter reads a
    /// secret from.
    pub log_redact: Vec<Box<[u8]>>,
}

impl Snapshot {
    /// Compile `config` as generation `generation`, its listeners served by
    /// the socket groups `listener_ids` (one per listener, in order).
    pub fn build(config: Arc<Config>, generation: u64, listener_ids: Vec<u64>) -> Snapshot {
        let routes = (0..config.listeners.len())
            .map(|l| RouteTable::build(&config, l))
            .collect();
        let tls = config
            .listeners
            .iter()
            .map(|l| l.tls.clone().map(monoio_rustls::TlsAcceptor::from))
            .collect();
        let log_redact = log_redact(&config);
        let health = crate::upstream::health::registry().for_config(&config);
        Snapshot {
            health,
            generation,
            config,
            routes,
            tls,
            listener_ids,
            log_redact,
        }
    }

    /// The index of the listener served by socket group `id`, if this
    /// generation still has it.
    pub fn listener_index(&self, id: u64) -> Option<usize> {
        self.listener_ids.iter().position(|&i| i == id)
    }
}

/// A worker's parts of one generation (`!Send`).
pub struct WorkerGen {
    pub snap: Arc<Snapshot>,
    /// This worker's counters in this generation's layout.
    pub stats: Arc<WorkerStats>,
    /// This worker's live latency histograms in this generation's layout.
    pub histograms: WorkerHistograms,
    /// Per cluster: the load balancer and in-flight counts.
    pub balancers: Vec<ClusterBalancer>,
    /// Per route (by `Route::index`): the weighted cursor of a split route.
    pub splits: Vec<Option<SmoothWeighted>>,
    /// Per cluster: its retry budget on this worker (`pipeline::retry`).
    pub retry_budgets: Vec<super::retry::RetryBudget>,
    /// Per cluster: retries in flight on this worker
    /// (`circuit_breakers.max_retries`).
    pub retries_in_flight: Vec<std::cell::Cell<u32>>,
    /// Per cluster: upstream connections open on this worker (carried over
    /// reloads by cluster name; `circuit_breakers.max_connections`).
    pub conn_gauges: Vec<std::rc::Rc<crate::upstream::gauge::ConnGauge>>,
}

impl WorkerGen {
    /// Prepare worker `id`'s parts of `snap`, carrying over what `prev` has
    /// under the same names (histograms; counters come carried in `stats`).
    pub fn new(
        id: usize,
        snap: Arc<Snapshot>,
        stats: Arc<WorkerStats>,
        prev: Option<&WorkerGen>,
    ) -> WorkerGen {
        let config = &snap.config;
        let balancers = config
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut b = ClusterBalancer::new(c, i, id, snap.health[i].clone());
                b.outliers = c.outlier_detection.clone().map(|o| {
                    let eps = (0..c.endpoints.len()).map(|e| stats.endpoint_arc(i, e));
                    crate::upstream::lb::outlier::Outliers::new(o, eps.collect())
                });
                b
            })
            .collect();
        let splits = config
            .routes
            .iter()
            .map(|r| match &r.action {
                RouteAction::Split(s) => {
                    let w: Vec<u32> = s.targets.iter().map(|t| t.1).collect();
                    Some(SmoothWeighted::new(&w))
                }
                _ => None,
            })
            .collect();
        let published = stats.histograms.load_full();
        let histograms =
            WorkerHistograms::carried(config, prev.map(|p| &p.histograms), Some(&published));
        let retry_budgets = config
            .clusters
            .iter()
            .map(|c| super::retry::RetryBudget::new(c.retry_budget))
            .collect();
        let retries_in_flight = config.clusters.iter().map(|_| Default::default()).collect();
        let conn_gauges = config
            .clusters
            .iter()
            .map(|c| {
                prev.and_then(|p| {
                    let i = p
                        .config()
                        .clusters
                        .iter()
                        .position(|pc| pc.name == c.name)?;
                    Some(p.conn_gauges[i].clone())
                })
                .unwrap_or_default()
            })
            .collect();
        WorkerGen {
            snap,
            stats,
            histograms,
            balancers,
            splits,
            retry_budgets,
            retries_in_flight,
            conn_gauges,
        }
    }

    #[inline]
    pub fn config(&self) -> &Config {
        &self.snap.config
    }

    /// Publish the histograms that changed (every `publish_interval`).
    pub fn publish_histograms(&self) {
        if let Some(set) = self.histograms.snapshot() {
            self.stats.histograms.store(Arc::new(set));
        }
    }
}

/// The query parameter names the access log redacts, without repeats.
fn log_redact(config: &Config) -> Vec<Box<[u8]>> {
    let mut names: Vec<Box<[u8]>> = Vec::new();
    let configured = config
        .access_log
        .iter()
        .flat_map(|a| a.redact_query.iter().map(|n| n.as_bytes()));
    let secret = config
        .routes
        .iter()
        .flat_map(|r| r.filters.iter().filter_map(|f| f.secret_query_param()));
    for name in configured.chain(secret) {
        if !names.iter().any(|n| &n[..] == name) {
            names.push(name.into());
        }
    }
    names
}
