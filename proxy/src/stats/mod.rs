//! Per-core statistics, merged on read.
//!
//! # Architecture
//! Envoy's thread-local model with exact HDR quantiles:
//!
//! - Every worker owns one [`WorkerStats`] block (allocated separately, so
//!   workers never share a cache line). Counters and gauges in it are
//!   *single-writer* atomics: only the owning worker writes them, with a plain
//!   load + store (no `lock` prefix, no contention); any thread may read them.
//! - Latency histograms (`hdrhistogram`) are plain values owned by the worker
//!   ([`WorkerHistograms`], `!Send` in practice: inside the worker's `Rc`).
//!   Every `publish_interval` the worker clones the histograms that changed
//!   into an immutable snapshot and publishes it with one `ArcSwap` store.
//! - Readers (the admin thread) never lock a worker: they read the counters
//!   and load the latest snapshots, then merge across workers ([`merge`]).
//!
//! # Performance
//! Recording a request is a handful of non-atomic-RMW stores and up to five
//! histogram increments on memory only this core touches.

pub mod counter;
pub mod histograms;
pub mod layout;
pub mod merge;
pub mod pending;
pub mod ring;

pub use counter::{Counter, Gauge};
pub use histograms::{HistogramSet, WorkerHistograms};
pub use layout::{
    ClusterStats, EndpointStats, ListenerStats, ReloadStatus, RouteStats, StatsGeneration,
    StatsRegistry, WorkerStats, ERROR_KINDS,
};
pub use merge::{merge, StatsView};
