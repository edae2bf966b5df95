//! The admin listener: metrics, health and introspection over plain HTTP/1.1.
//!
//! # Architecture
//! The admin side runs **off the data path**: [`spawn`] starts two ordinary
//! std threads, never a worker.
//!
//! - `ringway-admin` accepts on a blocking `std::net` socket and serves one
//!   request at a time (read/write timeouts, a bounded request head,
//!   `Connection: close` after every response). A slow or stuck admin client
//!   can only delay other admin clients, never the proxy.
//! - `ringway-admin-ring` samples every worker's io_uring telemetry from
//!   `/proc/self/fdinfo/<ring fd>` ([`crate::stats::ring`]) every
//!   [`RING_SAMPLE_INTERVAL`] and keeps 64-bit totals in a mutex that only
//!   the two admin threads touch. Once a second it also folds the merged
//!   route figures into the dashboard's five-minute history
//!   ([`history`]).
//!
//! Workers are never locked or signalled by a scrape: rendering reads their
//! single-writer counters and the histogram snapshots they publish every
//! `stats.publish_interval`, and merges them here ([`crate::stats::merge`]).
//! Both admin threads lower their own scheduling priority so that a scrape
//! loses against a busy worker on the same core.
//!
//! # Endpoints
//! | Path | Response |
//! |------|----------|
//! | `GET /metrics` | Prometheus text format 0.0.4 ([`prometheus`]) |
//! | `GET /stats` | the same numbers as JSON, quantiles in µs ([`json::stats`]) |
//! | `GET /live` | 200 while the process runs |
//! | `GET /ready` | 200, or 503 once draining has started |
//! | `GET /config` | the effective configuration, TLS key paths redacted ([`json::config`]) |
//! | `GET /workers` | per worker: core, driver, active connections, requests, ring stats |
//! | `GET /dashboard` | a live page of all of the above ([`dashboard`]), fed by `GET /dashboard.json` |
//! | `GET /` | a list of the above |
//!
//! `HEAD` is answered like `GET` without a body; any other method gets 405,
//! an unknown path 404.

pub mod dashboard;
pub mod history;
pub mod json;
pub mod prometheus;
pub mod routes;
pub mod server;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::runtime::shutdown::ShutdownFlag;
use crate::stats::StatsRegistry;

pub use server::RING_SAMPLE_INTERVAL;

/// What the admin threads read. Built by the main thread once the workers
/// are up; shared read-only.
pub struct AdminState {
    /// The stats and the current configuration (replaced on reload).
    pub registry: Arc<StatsRegistry>,
    /// `POST /reload`: load and apply the config file (None: not offered).
    pub reload: Option<Reloader>,
    /// `POST /routes/NAME/weights` (`None`: no config file, so no reloads).
    pub weights: Option<WeightsSetter>,
    /// Set when draining starts: `/ready` answers 503 from then on.
    pub draining: ShutdownFlag,
    /// Process start, for `ringway_uptime_seconds`.
    pub started: Instant,
    /// Per worker, e.g. `"io_uring (single_issuer, defer_taskrun)"` or
    /// `"epoll (legacy)"`.
    pub drivers: Vec<String>,
    /// Per worker: the `ring_features` its ring uses (none on epoll).
    pub ring_features: Vec<Vec<&'static str>>,
    /// Per worker: the CPU it is pinned to.
    pub cores: Vec<Option<usize>>,
}

/// What `POST /reload` calls: `Ok(message)` when the new generation is
/// serving, `Err((status, message))` otherwise (400: the file is invalid,
/// the old generation keeps serving).
pub type Reloader = Arc<dyn Fn() -> Result<String, (u16, String)> + Send + Sync>;

/// `POST /routes/NAME/weights`: set a split route's weights (route, cluster
/// name → weight); the message, or a status and message.
pub type WeightsSetter =
    Arc<dyn Fn(&str, &[(String, u32)]) -> Result<String, (u16, String)> + Send + Sync>;

impl AdminState {
    /// The configuration of the current generation.
    pub fn config(&self) -> Arc<Config> {
        self.registry.load().config.clone()
    }
}

/// io_uring telemetry of one worker, as last sampled by the admin side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Submission queue entries consumed by the kernel since the ring was
    /// created (64-bit, built from the kernel's 32-bit `SqHead`).
    pub submissions: u64,
    /// Completions posted since the ring was created (from `CqTail`).
    pub completions: u64,
    /// Operations submitted and not completed yet: an estimate
    /// (`SqHead - CqTail`; multishot operations complete more than once).
    pub inflight: u32,
    pub sq_entries: u32,
    pub cq_entries: u32,
    /// Completions waiting on the kernel's overflow list right now.
    pub cq_overflow: u32,
}

/// A running admin server. Dropping the handle leaves the server running
/// (it lives as long as the process); [`AdminHandle::stop`] ends it.
pub struct AdminHandle {
    /// The bound address (the real port when the config asked for port 0).
    pub address: SocketAddr,
    /// A duplicate of the listening socket, handed to a new process on a
    /// binary upgrade (`server::upgrade`).
    pub socket: std::os::fd::OwnedFd,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl AdminHandle {
    /// Stop both admin threads and wait for them (at most about one request
    /// timeout, when a client is being served).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept.
        let wake = server::wake_address(self.address);
        let _ = std::net::TcpStream::connect_timeout(&wake, Duration::from_millis(500));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Bind the admin address from `state.config.admin` (port 0 allowed) and
/// start the admin threads. Errors: no `[admin]` in the config
/// (`InvalidInput`), or the bind failed.
pub fn spawn(state: Arc<AdminState>) -> std::io::Result<AdminHandle> {
    let Some(admin) = state.config().admin.clone() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no [admin] section in the configuration",
        ));
    };
    spawn_on(state.clone(), admin.address)
}

/// [`spawn`] on a socket inherited from the process this one replaces
/// (`server::upgrade`), or bound as configured when there is none.
pub fn spawn_inherited(
    state: Arc<AdminState>,
    inherited: Option<std::net::TcpListener>,
) -> std::io::Result<AdminHandle> {
    match inherited {
        Some(listener) => start_on(state, listener),
        None => spawn(state),
    }
}

/// [`spawn`] on an explicit address (tests).
pub fn spawn_on(state: Arc<AdminState>, address: SocketAddr) -> std::io::Result<AdminHandle> {
    start_on(state, std::net::TcpListener::bind(address)?)
}

fn start_on(
    state: Arc<AdminState>,
    listener: std::net::TcpListener,
) -> std::io::Result<AdminHandle> {
    let address = listener.local_addr()?;
    let socket = std::os::fd::OwnedFd::from(listener.try_clone()?);
    let stop = Arc::new(AtomicBool::new(false));
    let threads = server::start(state, listener, stop.clone())?;
    Ok(AdminHandle {
        address,
        socket,
        stop,
        threads,
    })
}
