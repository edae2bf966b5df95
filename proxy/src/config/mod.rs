//! Configuration in two layers.
//!
//! `config.toml` → [`file::FileConfig`] (serde, `deny_unknown_fields`, plain
//! values) → [`Config::build`] → [`Config`] (typed: `Duration`, resolved
//! `SocketAddr`s, loaded TLS material, indices instead of names). Every problem
//! found on the way is a [`ConfigError`] naming the key path and, where the
//! source text is known, the line. Building never panics and never stops at the
//! first problem: `ringway check` lists them all.
//!
//! The typed `Config` is immutable once built and shared between workers as
//! `Arc<Config>`.

pub mod build;
pub mod error;
pub mod file;
pub mod source;
pub mod tls;
pub mod units;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors};

/// The validated, typed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub limits: Limits,
    pub listeners: Vec<ListenerConfig>,
    /// In file order; the route table for a listener is the routes whose
    /// `listener` is that listener (or `None` = every listener), first match wins.
    pub routes: Vec<RouteConfig>,
    pub clusters: Vec<ClusterConfig>,
    pub admin: Option<AdminConfig>,
    /// The file this was loaded from, if any.
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// io_uring, falling back to epoll (printed once) when io_uring cannot start.
    Auto,
    IoUring,
    Legacy,
}

/// io_uring setup flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingFlags {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Number of worker threads (resolved from `"auto"`: online cores, or
    /// the length of `cores` when given).
    pub workers: usize,
    /// CPU ids to pin worker i to (`cores[i % cores.len()]`); empty = the
    /// online cores in order.
    pub cores: Vec<usize>,
    pub driver: DriverKind,
    pub ring_entries: u32,
    /// SQPOLL with this idle time; `None` = off.
    pub sqpoll_idle: Option<Duration>,
    pub ring_flags: RingFlags,
    pub max_connections_per_worker: usize,
    pub drain_timeout: Duration,
    /// `tracing` filter directive (RUST_LOG wins when set).
    pub log_level: String,
}

/// Downstream limits, applied on every listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
    /// Time allowed to receive a complete request head (408 after).
    pub header_read_timeout: Duration,
    /// Longest gap between two reads of a request body (408 after).
    pub body_read_timeout: Duration,
    /// Keep-alive idle time before a quiet connection is closed.
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    /// TLS termination (SNI-aware certificate choice, ALPN http/1.1).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Host part of a route match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// Exact name, lower-case, no port.
    Exact(String),
    /// `*.example.com`: stored as `.example.com`, matches any deeper name.
    Suffix(String),
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Index into `Config::listeners`; `None` = all listeners.
    pub listener: Option<usize>,
    pub host: Option<HostMatch>,
    pub path_prefix: String,
    /// Index into `Config::clusters`.
    pub cluster: usize,
    /// Largest request body accepted (413 above); `None` = unlimited.
    pub max_body_bytes: Option<u64>,
    /// Time from the request being sent upstream to the response head (504).
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    RoundRobin,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: SocketAddr,
    /// As written in the config (`host:port`), for logs and stats.
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls_pki_types::ServerName<'static>,
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    pub lb: LbPolicy,
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    pub max_idle_per_endpoint: usize,
    pub tls: Option<UpstreamTls>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub address: SocketAddr,
}
