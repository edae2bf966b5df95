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
pub mod discovery;
pub mod dns;
pub mod error;
pub mod etcd;
pub mod file;
pub mod http2;
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
    pub stats: StatsConfig,
    /// `None` = no access log.
    pub access_log: Option<AccessLogConfig>,
    /// `[tracing]`: W3C trace context.
    pub trace: TraceConfig,
    /// `[reload]`: watch the file.
    pub reload: ReloadConfig,
    /// `[etcd]`: discovery (`etcd` on clusters) and registration.
    pub etcd: Option<etcd::EtcdConfig>,
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

/// io_uring features beyond monoio's own (`runtime::ring_features`): the
/// ones asked for; each is used only where the kernel supports it. A
/// feature is on by default ([`RingFeatures::DEFAULT`]) only once it is
/// measured to help (bench/README.md, "io_uring features"); `Default` is
/// none (what an explicit list starts from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingFeatures {
    pub recv_poll_first: bool,
    /// Idle keep-alive reads select a buffer from a provided-buffer ring
    /// when data arrives, instead of lending one while they wait.
    pub buffer_ring: bool,
    /// Sockets get a slot in the ring's registered-files table, and their
    /// operations name the slot instead of the descriptor.
    pub fixed_files: bool,
    /// A plain HTTP/1.1 client socket's reads come from one multishot
    /// receive, armed when it first parks (needs `buffer_ring`).
    pub multishot_recv: bool,
}

impl RingFeatures {
    /// Without a `ring_features` list: `["buffer_ring", "fixed_files"]`
    /// (measured: less memory per busy connection, no CPU cost; no
    /// descriptor lookups on kept-alive connections, no cost for the others;
    /// bench/README.md).
    pub const DEFAULT: RingFeatures = RingFeatures {
        recv_poll_first: false,
        buffer_ring: true,
        fixed_files: true,
        multishot_recv: false,
    };
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
    /// Completion queue size (`IORING_SETUP_CQSIZE`): a power of two,
    /// at least `ring_entries`, at most 65536.
    pub cq_entries: u32,
    /// SQPOLL with this idle time; `None` = off.
    pub sqpoll_idle: Option<Duration>,
    pub ring_flags: RingFlags,
    pub ring_features: RingFeatures,
    pub max_connections_per_worker: usize,
    pub drain_timeout: Duration,
    /// During a drain, connections idle between requests stay open this
    /// long, then close spread over as long again.
    pub drain_idle_grace: Duration,
    /// A keep-alive connection idle between requests for
    /// [`IDLE_READ_RELEASE_AFTER`](crate::runtime::watchdog::IDLE_READ_RELEASE_AFTER)
    /// cancels its read, gives its read buffer back and waits for
    /// readiness (plain-text HTTP/1.1 connections; restart-only).
    pub idle_read_release: bool,
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
    /// A request body with a Content-Length of at most this many bytes is
    /// read whole before the request goes upstream (one upstream write;
    /// the request can be retried and hedged). 0: bodies always stream.
    pub request_buffer_bytes: usize,
    /// A Content-Length response body with at least this many bytes still
    /// to come, between two plain TCP sockets, moves with splice(2) through
    /// a pipe (`pipeline::splice`) instead of through a buffer. 0: never.
    pub splice_min_bytes: u64,
    /// The same for request bodies (a higher default: measured, splicing
    /// an upload pays off only from about 2 MiB).
    pub splice_min_request_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    /// TLS termination (SNI-aware certificate choice, ALPN http/1.1).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The files `tls` was loaded from (for the admin `/config` view).
    pub tls_files: Option<ListenerTlsFiles>,
    /// Certificates with a stapled OCSP response file (re-read on change).
    pub ocsp: Vec<Arc<tls::StapledKey>>,
    /// Client address rules checked before routing (403 when denied).
    pub ip_acl: Option<Arc<crate::pipeline::filters::ip_acl::IpAcl>>,
    /// Read a PROXY protocol header (v1 or v2) before anything else; its
    /// source address is the connection's peer.
    pub proxy_protocol: bool,
    /// X-Forwarded-For hops believed when finding the client (empty: the
    /// peer is the client).
    pub trusted_proxies: Arc<[crate::http::Cidr]>,
    /// How new connections reach the workers (`net::listener`).
    pub accept: AcceptMode,
    /// A route without an `authz` filter answers 403 on this listener.
    pub default_deny: bool,
    /// HTTP/1.1 and/or HTTP/2 (ALPN on TLS listeners, the client preface
    /// on cleartext ones).
    pub protocols: http2::Protocols,
    pub http2: http2::Http2Settings,
}

/// How a listener's connections are spread over the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptMode {
    /// One `SO_REUSEPORT` socket per worker: the kernel hashes each
    /// connection to one of them.
    #[default]
    Reuseport,
    /// One socket every worker accepts from; a worker takes a connection
    /// only while it holds at most one more than the least loaded worker.
    Balanced,
}

impl AcceptMode {
    pub fn name(self) -> &'static str {
        match self {
            AcceptMode::Reuseport => "reuseport",
            AcceptMode::Balanced => "balanced",
        }
    }
}

/// Resolved paths of a listener's TLS files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerTlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub sni: Vec<SniFiles>,
    /// Client CA bundles and CRLs (mTLS): watched, a change reloads.
    pub client_ca: Vec<PathBuf>,
    pub crl: Vec<PathBuf>,
}

/// One `tls.sni` entry: names and resolved paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SniFiles {
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Resolved paths and switches of a cluster's upstream TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClusterTlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    /// The SPIFFE ID or trust domain the server must have (part of the pool
    /// identity: a connection verified for one is never used for another).
    pub spiffe: Option<String>,
    /// Hash of the files' contents when loaded (pool identity across
    /// reloads; not shown in `/config`).
    pub fingerprint: u64,
}

/// Host part of a route match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// Exact name, lower-case, no port.
    Exact(String),
    /// `*.example.com`: stored as `.example.com`, matches any deeper name.
    Suffix(String),
}

/// Path part of a route match (one per route; matching in
/// `pipeline/route/matcher.rs`).
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// `path_prefix`: the path starts with these bytes.
    Prefix(String),
    /// `path`: the path is exactly this.
    Exact(String),
    /// `path_segment_prefix`: the path is this or continues with `/`
    /// (stored without the one trailing `/` the config may have).
    SegmentPrefix(String),
    /// `path_regex`: the whole path matches.
    Regex(Pattern),
}

/// A regex compiled at config time, with its source as written.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As written in the config.
    pub source: String,
    /// For `path_regex` compiled anchored (`^(?:source)$`), otherwise as is.
    pub regex: regex::bytes::Regex,
}

/// What a header or query parameter value must look like.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Exact(String),
    Prefix(String),
    /// Searched (unanchored) in the value.
    Regex(Pattern),
    /// Sent, with any value.
    Present,
    /// Not sent at all.
    Absent,
}

/// One entry of a route's `headers`.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    /// Lower-case header name.
    pub name: String,
    pub value: ValueMatch,
}

/// One entry of a route's `query`.
#[derive(Debug, Clone)]
pub struct QueryMatch {
    /// Parameter name, raw (as sent, not percent-decoded).
    pub name: String,
    pub value: ValueMatch,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Index into `Config::listeners`; `None` = all listeners.
    pub listener: Option<usize>,
    pub host: Option<HostMatch>,
    pub path: PathMatch,
    /// Request methods (case-sensitive tokens); empty = any.
    pub methods: Vec<String>,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions, all of which must hold.
    pub query: Vec<QueryMatch>,
    /// What the route does with a request its filters let through.
    pub action: RouteAction,
    /// Largest request body accepted (413 above); `None` = unlimited.
    pub max_body_bytes: Option<u64>,
    /// Time from the request being sent upstream to the response head (504).
    pub timeout: Duration,
    /// Retries of failed upstream attempts (`pipeline::retry`).
    pub retries: Option<RetryPolicy>,
    /// Hedging of slow idempotent requests (`pipeline::hedge`).
    pub hedge: Option<HedgePolicy>,
    /// Copies of requests to a shadow cluster (`pipeline::mirror`).
    pub mirror: Option<MirrorPolicy>,
    /// The route's filter chain, in order (compiled once per generation).
    pub filters: Arc<[crate::pipeline::filters::Filter]>,
}

/// What a route does with a request.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Forward to the cluster with this index.
    Forward(usize),
    /// Forward to one of several clusters, by weight.
    Split(SplitAction),
    /// Answer locally: a filter that always answers (a direct response, a
    /// redirect), run after the route's chain.
    Local(crate::pipeline::filters::Filter),
    /// Forward to the cluster of the API version the request asks for
    /// (`versions`), or answer 400/404 for an unknown one.
    Versioned(crate::pipeline::versioning::Versioning),
    /// Fan out to several upstream requests and answer with their merged
    /// JSON (`aggregate`).
    Aggregate(Arc<crate::pipeline::aggregate::Aggregation>),
}

/// `split = [...]`: clusters (indices) with weights, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitAction {
    pub targets: Vec<(usize, u32)>,
    pub sticky: Option<StickyKey>,
}

/// What a sticky split hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    /// A request header (lower-case name).
    Header(String),
    /// A cookie.
    Cookie(String),
}

impl RouteConfig {
    /// Clusters this route can send to (in file order, without repeats).
    pub fn clusters(&self) -> Vec<usize> {
        match &self.action {
            RouteAction::Forward(c) => vec![*c],
            RouteAction::Split(s) => {
                let mut v: Vec<usize> = Vec::new();
                for &(c, _) in &s.targets {
                    if !v.contains(&c) {
                        v.push(c);
                    }
                }
                v
            }
            RouteAction::Local(_) => Vec::new(),
            RouteAction::Versioned(v) => v.clusters(),
            RouteAction::Aggregate(a) => a.clusters(),
        }
    }

    /// The route's target as shown in stats and `/config`: the cluster
    /// name, names joined with `,` for a split, `-` for a local answer.
    pub fn target_label(&self, clusters: &[ClusterConfig]) -> String {
        let names: Vec<&str> = self
            .clusters()
            .into_iter()
            .map(|c| clusters[c].name.as_str())
            .collect();
        if names.is_empty() {
            "-".into()
        } else {
            names.join(",")
        }
    }
}

/// `lb` on a cluster: how an endpoint is chosen (`upstream::lb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    RoundRobin,
    WeightedRoundRobin,
    Random,
    /// Power of two choices on in-flight requests.
    LeastRequest,
    /// Power of two choices on peak-EWMA latency × (in-flight + 1).
    PeakEwma,
    RingHash,
    Maglev,
}

impl LbPolicy {
    /// Every policy, by its config name.
    pub const ALL: [(&'static str, LbPolicy); 7] = [
        ("round_robin", LbPolicy::RoundRobin),
        ("weighted_round_robin", LbPolicy::WeightedRoundRobin),
        ("random", LbPolicy::Random),
        ("least_request", LbPolicy::LeastRequest),
        ("peak_ewma", LbPolicy::PeakEwma),
        ("ring_hash", LbPolicy::RingHash),
        ("maglev", LbPolicy::Maglev),
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("round_robin", |(n, _)| n)
    }

    /// The policy hashes a request key (`hash_key`).
    pub fn is_hashing(self) -> bool {
        matches!(self, LbPolicy::RingHash | LbPolicy::Maglev)
    }
}

/// `hash_key` of a `ring_hash` / `maglev` cluster: what part of the request
/// is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// A header value (name lowercase).
    Header(String),
    Cookie(String),
    /// The client address (after trusted X-Forwarded-For).
    ClientIp,
    /// The path of the target (before `?`).
    Path,
    /// A query parameter's raw value.
    Query(String),
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: SocketAddr,
    /// As written in the config (`host:port`), for logs and stats.
    pub label: String,
    /// Relative share of the traffic (1..=1000, default 1); used by every
    /// policy but `round_robin`, `random` and `least_request`.
    pub weight: u32,
    /// Locality, for zone-aware routing.
    pub zone: Option<String>,
    /// Discovered endpoints (etcd): `metadata` as published (shown by the
    /// admin API, not used for routing).
    pub metadata: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls_pki_types::ServerName<'static>,
}

/// The protocol a cluster's endpoints speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    #[default]
    Http1,
    /// HTTP/2, multiplexed (`upstream::h2`).
    H2,
}

impl UpstreamProtocol {
    pub fn name(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http/1.1",
            UpstreamProtocol::H2 => "h2",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    /// HTTP/1.1 (pooled connections) or HTTP/2 (multiplexed).
    pub protocol: UpstreamProtocol,
    pub endpoints: Vec<Endpoint>,
    pub lb: LbPolicy,
    /// `ring_hash` / `maglev` only (required there).
    pub hash_key: Option<HashKey>,
    /// `ring_hash` / `maglev`: the bounded-load factor `c` (> 1).
    pub bounded_load: Option<f64>,
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    pub max_idle_per_endpoint: usize,
    pub tls: Option<UpstreamTls>,
    /// The files `tls` was loaded from (for the admin `/config` view).
    pub tls_files: Option<ClusterTlsFiles>,
    /// Write a PROXY protocol header at the start of every connection
    /// (these connections are never pooled: the header names one client).
    pub send_proxy_protocol: Option<ProxyVersion>,
    /// Active health checks (`upstream::health`).
    pub health_check: Option<HealthCheck>,
    /// Percent (0–100) of healthy endpoints below which every endpoint
    /// takes traffic whatever its health.
    pub panic_threshold: f64,
    /// Passive outlier ejection (`upstream::lb::outlier`).
    pub outlier_detection: Option<OutlierDetection>,
    /// Where the endpoints came from: `None` = the config file,
    /// `Some(path)` = `endpoints_file`.
    pub endpoints_file: Option<std::path::PathBuf>,
    /// DNS discovery (`dns`): the query the endpoints came from.
    pub dns: Option<dns::DnsQuery>,
    /// etcd discovery (`etcd`): the prefix the endpoints came from (the
    /// cluster is `Config::etcd`).
    pub etcd: Option<String>,
    /// Retries allowed per worker: `ratio` × requests + `min_per_second`.
    pub retry_budget: (f64, f64),
    /// Per worker: requests in flight to the cluster at most (503 past it).
    pub max_requests: Option<u32>,
    /// Per worker: retries in flight to the cluster at most.
    pub max_retries: Option<u32>,
    /// Per worker: upstream connections open to the cluster at most.
    pub max_connections: Option<u32>,
    /// Per worker: requests waiting for room under `max_connections` at
    /// most (`None`: no limit; each waits `connect_timeout` at most).
    pub max_pending: Option<u32>,
    /// Zone-aware routing: the preferred zone and the share (0–1) of its
    /// endpoints that must be eligible for traffic to stay in it.
    pub prefer_zone: Option<(String, f64)>,
}

/// `mirror` on a route.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorPolicy {
    /// The shadow cluster (index).
    pub cluster: usize,
    pub fraction: f64,
    pub max_body: u64,
    pub timeout: Duration,
}

/// `hedge` on a route: when the first attempt has no response head after
/// `delay`, the same request goes to another endpoint; the first answer
/// wins.
#[derive(Debug, Clone, PartialEq)]
pub struct HedgePolicy {
    pub delay: Duration,
}

/// `retries` on a route.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    pub statuses: Vec<u16>,
    /// gRPC status codes retried (from a trailers-only answer's
    /// `grpc-status`).
    pub grpc_statuses: Vec<u32>,
    pub per_try_timeout: Option<Duration>,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub retry_after_max: Duration,
}

/// `outlier_detection` on a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// 0 = this rule is off.
    pub consecutive_5xx: u32,
    pub consecutive_gateway_errors: u32,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    /// 0–100.
    pub max_ejection_percent: f64,
    /// Success-rate outliers: compared every `interval` among endpoints
    /// with at least `request_volume` requests, when there are at least
    /// `minimum_hosts` (0 = off) of them.
    pub interval: Duration,
    pub success_rate_minimum_hosts: u32,
    pub success_rate_request_volume: u32,
    pub success_rate_stdev_factor: f64,
}

/// `health_check` on a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub path: String,
    /// A `grpc.health.v1` check of this service instead of `GET path`.
    pub grpc_service: Option<String>,
    pub host: Option<String>,
    pub interval: Duration,
    pub jitter: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// Inclusive status ranges that pass.
    pub expected: Vec<(u16, u16)>,
}

impl HealthCheck {
    pub fn expects(&self, status: u16) -> bool {
        self.expected
            .iter()
            .any(|&(a, b)| (a..=b).contains(&status))
    }
}

/// PROXY protocol version sent to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    V1,
    V2,
}

/// `[admin]` (`address`, alias `listen`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub address: SocketAddr,
}

/// `[reload]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Reload when the config file changes.
    pub watch: bool,
    /// How often the file is checked.
    pub interval: Duration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            watch: false,
            interval: Duration::from_secs(1),
        }
    }
}

/// `[tracing]`
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// Propagate W3C `traceparent`/`tracestate`, starting a trace when a
    /// request has none (default true).
    pub w3c: bool,
    /// Span export (`[tracing.otlp]`); needs `w3c`.
    pub otlp: Option<OtlpConfig>,
}

/// `[tracing.otlp]` (`crate::otel`).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    pub endpoint: crate::otel::Endpoint,
    pub service_name: String,
    pub node: String,
    /// 0.0..=1.0
    pub sample_ratio: f64,
    pub keep_errors: bool,
    pub keep_slower_than: Option<Duration>,
    pub batch_spans: usize,
    pub queue_batches: usize,
    pub flush_interval: Duration,
    pub timeout: Duration,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            w3c: true,
            otlp: None,
        }
    }
}

/// `[stats]`: what the per-core stats keep.
#[derive(Debug, Clone)]
pub struct StatsConfig {
    /// Significant digits of the latency histograms (1..=5, default 3).
    pub histogram_sigfig: u8,
    /// How often workers publish histogram snapshots (default 1s).
    pub publish_interval: Duration,
    /// Latency histograms kept per listener / route / cluster / endpoint
    /// (counters are always kept).
    pub listener_histograms: bool,
    pub route_histograms: bool,
    pub cluster_histograms: bool,
    pub endpoint_histograms: bool,
    /// Export a `worker` label instead of summing over workers (default false).
    pub per_worker: bool,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            histogram_sigfig: 3,
            publish_interval: Duration::from_secs(1),
            listener_histograms: true,
            route_histograms: true,
            cluster_histograms: true,
            endpoint_histograms: true,
            per_worker: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    Json,
    Combined,
}

/// `[access_log]`
#[derive(Debug, Clone)]
pub struct AccessLogConfig {
    pub target: AccessLogTarget,
    pub format: AccessLogFormat,
    /// Per-worker buffer flushed when this full (default 64 KiB) …
    pub buffer_bytes: usize,
    /// … or at least this often (default 1s).
    pub flush_interval: Duration,
    /// `redact_query`: parameter names (raw, as sent).
    pub redact_query: Vec<String>,
}
