//! The file layer: what `config.toml` looks like, as plain serde structs.
//!
//! Every table denies unknown keys. Values are kept close to what was written
//! (names instead of indices, strings for addresses, durations and enums;
//! integers as `i64`): range checks, name resolution, address parsing and TLS
//! loading happen in [`super::Config::build`], which reports every problem at
//! once. See `docs/config.md` for the meaning and default of every key.
//!
//! `FileConfig` can be deserialised directly (`toml::from_str`), but
//! [`super::Config::parse`] deserialises section by section and element by
//! element so that one bad `[[route]]` does not hide the problems of the next.

use serde::Deserialize;

use super::units::{DurationValue, SizeValue, WorkersValue};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct FileConfig {
    #[serde(default)]
    pub runtime: RuntimeFile,
    #[serde(default)]
    pub limits: LimitsFile,
    /// `[[listener]]`
    #[serde(default)]
    pub listener: Vec<ListenerFile>,
    /// `[[route]]`
    #[serde(default)]
    pub route: Vec<RouteFile>,
    /// `[[cluster]]`
    #[serde(default)]
    pub cluster: Vec<ClusterFile>,
    /// `[admin]`; absent = no admin listener.
    #[serde(default)]
    pub admin: Option<AdminFile>,
    /// `[stats]`
    #[serde(default)]
    pub stats: StatsFile,
    /// `[access_log]`; absent = no access log.
    #[serde(default)]
    pub access_log: Option<AccessLogFile>,
    /// `[tracing]`
    #[serde(default)]
    pub tracing: TracingFile,
    /// `[reload]`
    #[serde(default)]
    pub reload: ReloadFile,
    /// `[etcd]`: the etcd cluster for `etcd` discovery and registration.
    #[serde(default)]
    pub etcd: Option<EtcdFile>,
}

/// `[etcd]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct EtcdFile {
    /// `["http://127.0.0.1:2379", ...]`, tried in order.
    pub endpoints: Vec<String>,
    /// One call (write the request, read the answer). Default `"2s"`.
    pub timeout: Option<DurationValue>,
    /// Connecting to a member. Default `"1s"`.
    pub dial_timeout: Option<DurationValue>,
    /// `[etcd.register]`: put this process under a key with a lease.
    pub register: Option<EtcdRegisterFile>,
}

/// `[etcd.register]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct EtcdRegisterFile {
    /// `"/services/gateway/node-1"`.
    pub key: String,
    /// `"host:port"` others should send to.
    pub address: String,
    pub weight: Option<i64>,
    pub zone: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Default `"10s"`; at least `"2s"`.
    pub lease_ttl: Option<DurationValue>,
}

/// `etcd = { prefix = "/services/orders/" }` on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct EtcdSourceFile {
    pub prefix: String,
}

/// `[reload]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct ReloadFile {
    /// Reload when the file changes (default false).
    pub watch: Option<bool>,
    /// How often the file is checked (default `"1s"`; 100ms..=1h).
    pub interval: Option<DurationValue>,
}

/// `[runtime]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RuntimeFile {
    /// Integer ≥ 1 or `"auto"` (default).
    pub workers: Option<WorkersValue>,
    /// CPU ids to pin workers to.
    pub cores: Option<Vec<i64>>,
    /// `"auto"` (default), `"io_uring"` or `"legacy"`.
    pub driver: Option<String>,
    /// Default 1024; a power of two in 2..=32768.
    pub ring_entries: Option<i64>,
    /// Completion queue size; default from `max_connections_per_worker`.
    pub cq_entries: Option<i64>,
    /// SQPOLL idle time; absent = SQPOLL off.
    pub sqpoll_idle: Option<DurationValue>,
    /// Default `["single_issuer", "coop_taskrun"]`.
    pub ring_flags: Option<Vec<String>>,
    /// Default `["buffer_ring"]`; known: `"recv_poll_first"`, `"buffer_ring"`
    /// (used when the kernel supports it).
    pub ring_features: Option<Vec<String>>,
    /// Default 10000.
    pub max_connections_per_worker: Option<i64>,
    /// Default `"30s"`.
    pub drain_timeout: Option<DurationValue>,
    /// Default `"1s"`.
    pub drain_idle_grace: Option<DurationValue>,
    /// Default true: an idle keep-alive connection gives its read buffer
    /// back after a short grace and waits for readiness instead.
    pub idle_read_release: Option<bool>,
    /// Default `"info"`.
    pub log_level: Option<String>,
}

/// `[limits]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct LimitsFile {
    /// Default 64KiB; 1KiB..=1MiB.
    pub max_head_bytes: Option<SizeValue>,
    /// Default 100; 1..=1000.
    pub max_headers: Option<i64>,
    /// Default `"10s"`.
    pub header_read_timeout: Option<DurationValue>,
    /// Default `"30s"`.
    pub body_read_timeout: Option<DurationValue>,
    /// Default `"60s"`.
    pub idle_timeout: Option<DurationValue>,
    /// Default 64KiB; 0..=1MiB (0: never gathered).
    pub request_buffer_bytes: Option<SizeValue>,
    /// Response bodies. Default 256KiB; 0 (never) or 64KiB..=1GiB.
    pub splice_min_bytes: Option<SizeValue>,
    /// Request bodies. Default 2MiB; 0 (never) or 64KiB..=1GiB.
    pub splice_min_request_bytes: Option<SizeValue>,
}

/// `[[listener]]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct ListenerFile {
    pub name: String,
    /// `ip:port`.
    pub address: String,
    pub tls: Option<ListenerTlsFile>,
    /// `ip_acl = { allow = [...], deny = [...] }`: client addresses this
    /// listener answers (others get 403).
    pub ip_acl: Option<crate::pipeline::filters::ip_acl::IpAclFile>,
    /// Every connection starts with a PROXY protocol header (v1 or v2),
    /// whose source is the client (default false).
    pub proxy_protocol: Option<bool>,
    /// Blocks whose X-Forwarded-For entries are believed: the client is the
    /// rightmost address not in them (default none).
    pub trusted_proxies: Option<Vec<String>>,
    /// `"reuseport"` (default) or `"balanced"` (`net::listener`).
    pub accept: Option<String>,
    /// Routes without an `authz` filter answer 403 (default false).
    pub default_deny: Option<bool>,
    /// `["http/1.1", "h2"]`: the protocols spoken (default `["http/1.1"]`).
    pub protocols: Option<Vec<String>>,
    /// `[listener.http2]`: HTTP/2 connection limits.
    pub http2: Option<Http2File>,
}

/// `[listener.http2]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct Http2File {
    /// Default 128; 1..=10000.
    pub max_concurrent_streams: Option<i64>,
    /// Default `"256KiB"`; 64KiB-1..=2GiB-1.
    pub initial_stream_window: Option<SizeValue>,
    /// Default `"1MiB"`; 64KiB-1..=2GiB-1.
    pub connection_window: Option<SizeValue>,
    /// Default `"16KiB"`; 16KiB..=16MiB-1.
    pub max_frame_size: Option<SizeValue>,
}

/// `[listener.tls]` / `tls = { ... }` on a listener.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct ListenerTlsFile {
    /// Default certificate chain (PEM), relative to the config file.
    pub cert: Option<String>,
    /// Private key for `cert` (PEM).
    pub key: Option<String>,
    /// Certificates chosen by SNI name.
    #[serde(default)]
    pub sni: Vec<SniCertFile>,
    /// DER OCSP response stapled with `cert` (re-read when it changes).
    pub ocsp: Option<String>,
    /// `"1.2"` (default) or `"1.3"`.
    pub min_version: Option<String>,
    /// The server's cipher-suite order wins (default true).
    pub prefer_server_ciphers: Option<bool>,
    /// Stateless session tickets, keys shared by every worker (default true).
    pub session_tickets: Option<bool>,
    /// Client certificates (mTLS): PEM files of the CAs they must chain to.
    pub client_ca: Option<Vec<String>>,
    /// `"required"` (default with `client_ca`) or `"optional"`.
    pub client_auth: Option<String>,
    /// PEM certificate revocation lists checked with `client_ca`.
    pub crl: Option<Vec<String>>,
}

/// One entry of `tls.sni`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct SniCertFile {
    /// `"a.example"` or `"*.b.example"` (one label).
    pub names: Vec<String>,
    pub cert: String,
    pub key: String,
    /// DER OCSP response stapled with this certificate.
    pub ocsp: Option<String>,
}

/// `[[route]]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RouteFile {
    /// Default `route<index>`.
    pub name: Option<String>,
    /// Listener name; absent = every listener.
    pub listener: Option<String>,
    /// `"api.example.com"` or `"*.example.com"`.
    pub host: Option<String>,
    /// Default `"/"`. At most one of `path_prefix`, `path`,
    /// `path_segment_prefix` and `path_regex`.
    pub path_prefix: Option<String>,
    /// Exact path.
    pub path: Option<String>,
    /// `"/api"`: `/api` and `/api/...`, not `/apix`.
    pub path_segment_prefix: Option<String>,
    /// Regex the whole path must match.
    pub path_regex: Option<String>,
    /// Request methods; absent = any.
    pub methods: Option<Vec<String>>,
    /// Header conditions, all of which must hold.
    #[serde(default)]
    pub headers: Vec<ValueMatchFile>,
    /// Query parameter conditions, all of which must hold.
    #[serde(default)]
    pub query: Vec<ValueMatchFile>,
    /// Action: forward to this cluster (one action per route: `cluster`,
    /// `split`, `direct_response`, `redirect`, `versions` or `aggregate`).
    pub cluster: Option<String>,
    /// Action: weighted split over clusters.
    pub split: Option<Vec<SplitFile>>,
    /// Split stickiness: the same key always picks the same cluster.
    pub split_by: Option<StickyFile>,
    /// Action: answer with a fixed response.
    pub direct_response: Option<crate::pipeline::filters::direct::DirectFile>,
    /// Action: answer with a redirect (`filters/redirect`).
    pub redirect: Option<crate::pipeline::filters::redirect::RedirectFile>,
    /// Action: forward by API version (`pipeline/versioning`).
    pub versions: Option<Vec<crate::pipeline::versioning::VersionFile>>,
    /// Where a `versions` route reads the version.
    pub version_from: Option<crate::pipeline::versioning::VersionFromFile>,
    /// The version of a request that names none.
    pub default_version: Option<String>,
    /// Action: fan out to several upstream requests and merge their JSON
    /// answers (`pipeline/aggregate`).
    pub aggregate: Option<crate::pipeline::aggregate::AggregateFile>,
    /// Retries of a failed upstream attempt (`pipeline::retry`).
    pub retries: Option<RetriesFile>,
    /// A second copy of a slow idempotent request (`pipeline::hedge`).
    pub hedge: Option<HedgeFile>,
    /// A copy of requests to a shadow cluster (`pipeline::mirror`).
    pub mirror: Option<MirrorFile>,
    pub max_body_bytes: Option<SizeValue>,
    /// Default `"30s"`.
    pub timeout: Option<DurationValue>,
    /// `[[route.filters]]`, run in order.
    #[serde(default)]
    pub filters: Vec<crate::pipeline::filters::FilterFile>,
}

/// `dns = { name = "orders.svc", port = 8080 }` on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct DnsFile {
    pub name: String,
    /// Required for A / AAAA records.
    pub port: Option<i64>,
    /// `"A"` (default), `"AAAA"` or `"SRV"`.
    pub record: Option<String>,
    /// `"ip:port"`; default the first nameserver of /etc/resolv.conf.
    pub resolver: Option<String>,
    /// Default `"1s"`.
    pub min_ttl: Option<DurationValue>,
    /// Default `"5m"`.
    pub max_ttl: Option<DurationValue>,
    /// Default `"2s"`.
    pub timeout: Option<DurationValue>,
}

/// `mirror = { cluster = "shadow", fraction = 0.1 }` on a route.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct MirrorFile {
    pub cluster: String,
    /// Share of requests copied, 0–1. Default 1.
    pub fraction: Option<f64>,
    /// Largest request body copied. Default `"64KiB"`.
    pub max_body: Option<SizeValue>,
    /// Time a copy may take (then it is dropped). Default `"1s"`.
    pub timeout: Option<DurationValue>,
}

/// `hedge = { delay = "20ms" }` on a route.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct HedgeFile {
    /// How long the first attempt may go without a response head before
    /// the hedge is sent. Required.
    pub delay: Option<DurationValue>,
}

/// `retries = { attempts = 2, ... }` on a route.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RetriesFile {
    /// Retries after the first attempt. Default 2.
    pub attempts: Option<i64>,
    /// Statuses retried. Default `[502, 503, 504]`.
    pub statuses: Option<Vec<i64>>,
    /// gRPC statuses retried when a trailers-only answer carries them
    /// (`["unavailable"]`, names as in the gRPC spec, kebab-case). Default
    /// none.
    pub grpc_statuses: Option<Vec<String>>,
    /// Time for one attempt (connect to response head); default the
    /// route's `timeout`.
    pub per_try_timeout: Option<DurationValue>,
    /// First backoff (doubled each retry, full jitter). Default `"25ms"`.
    pub backoff: Option<DurationValue>,
    /// Largest backoff. Default `"250ms"`.
    pub max_backoff: Option<DurationValue>,
    /// A 503's `Retry-After` is honoured up to this. Default `"1s"`.
    pub retry_after_max: Option<DurationValue>,
}

/// `retry_budget = { ratio = 0.2, min_per_second = 10 }` on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RetryBudgetFile {
    pub ratio: Option<f64>,
    pub min_per_second: Option<f64>,
}

/// One entry of a route's `headers` or `query`: a name and exactly one
/// condition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct ValueMatchFile {
    pub name: String,
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<String>,
    /// `present = true`
    pub present: Option<bool>,
    /// `absent = true`
    pub absent: Option<bool>,
}

/// One entry of a route's `split`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct SplitFile {
    pub cluster: String,
    /// Share of requests, relative to the other entries (0 = none).
    pub weight: i64,
}

/// `split_by = { header = "x-user" }` or `{ cookie = "session" }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct StickyFile {
    pub header: Option<String>,
    pub cookie: Option<String>,
}

/// `[[cluster]]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct ClusterFile {
    pub name: String,
    /// `"ip:port"` or `"host:port"`, or `{ address = "...", weight = 3 }`.
    #[serde(default)]
    pub endpoints: Vec<EndpointFile>,
    /// Discovery from a file (JSON or TOML) instead of `endpoints`: watched,
    /// a change applies without a reload (`config::discovery`).
    pub endpoints_file: Option<String>,
    /// DNS discovery instead of `endpoints` (`config::dns`).
    pub dns: Option<DnsFile>,
    /// etcd discovery instead of `endpoints` (`config::etcd`).
    pub etcd: Option<EtcdSourceFile>,
    /// Default `"round_robin"`; see `LbPolicy`.
    pub lb: Option<String>,
    /// What `ring_hash` / `maglev` hash (exactly one key).
    pub hash_key: Option<HashKeyFile>,
    /// `ring_hash` / `maglev`: cap each endpoint at this factor (> 1) of the
    /// average in-flight requests (per worker).
    pub bounded_load: Option<f64>,
    /// Default `"2s"`.
    pub connect_timeout: Option<DurationValue>,
    /// Default `"60s"`.
    pub idle_timeout: Option<DurationValue>,
    /// Default 64.
    pub max_idle_per_endpoint: Option<i64>,
    pub tls: Option<ClusterTlsFile>,
    /// `"v1"` or `"v2"`: start every upstream connection with a PROXY
    /// protocol header (such connections are not pooled).
    pub send_proxy_protocol: Option<String>,
    /// `"http/1.1"` (default) or `"h2"`: the protocol spoken to the
    /// endpoints (h2: prior knowledge in cleartext, ALPN over TLS).
    pub protocol: Option<String>,
    /// Active health checks (`upstream::health`).
    pub health_check: Option<HealthCheckFile>,
    /// Percent of healthy endpoints below which health is ignored and
    /// every endpoint takes traffic. Default 50.
    pub panic_threshold: Option<f64>,
    /// Passive outlier ejection (`upstream::lb::outlier`).
    pub outlier_detection: Option<OutlierFile>,
    /// Retries to this cluster per worker: at most `ratio` × requests +
    /// `min_per_second`. Default 0.2 and 10.
    pub retry_budget: Option<RetryBudgetFile>,
    /// Per-worker limits (`max_requests`, `max_retries`): past them, 503
    /// with `x-ringway-overflow`.
    pub circuit_breakers: Option<CircuitBreakersFile>,
    /// Zone-aware routing: send to endpoints of this zone while enough of
    /// them can take traffic.
    pub prefer_zone: Option<String>,
    /// Percent of the preferred zone's endpoints that must be healthy and
    /// not ejected for traffic to stay in it. Default 70.
    pub zone_min_healthy: Option<f64>,
}

/// `circuit_breakers = { max_requests = 1000, max_retries = 3,
/// max_connections = 200, max_pending = 100 }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct CircuitBreakersFile {
    pub max_requests: Option<i64>,
    pub max_retries: Option<i64>,
    pub max_connections: Option<i64>,
    pub max_pending: Option<i64>,
}

/// `outlier_detection = { ... }` on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct OutlierFile {
    /// Default 5; 0 = off.
    pub consecutive_5xx: Option<i64>,
    /// Default 5; 0 = off.
    pub consecutive_gateway_errors: Option<i64>,
    /// Default `"30s"`.
    pub base_ejection_time: Option<DurationValue>,
    /// Default `"300s"`.
    pub max_ejection_time: Option<DurationValue>,
    /// Default 10.
    pub max_ejection_percent: Option<f64>,
    /// How often success rates are compared. Default `"10s"`.
    pub interval: Option<DurationValue>,
    /// Endpoints with at least `success_rate_request_volume` requests in an
    /// interval needed to compare rates. Default 5; 0 = success-rate
    /// detection off.
    pub success_rate_minimum_hosts: Option<i64>,
    /// Default 100.
    pub success_rate_request_volume: Option<i64>,
    /// Ejected below mean − factor × standard deviation. Default 1.9.
    pub success_rate_stdev_factor: Option<f64>,
}

/// `health_check = { path = "/healthz", ... }` on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct HealthCheckFile {
    /// Request path of an HTTP check (required unless `grpc_service`).
    #[serde(default)]
    pub path: String,
    /// A gRPC check instead (`grpc.health.v1.Health/Check` for this
    /// service; `""` = the server as a whole), for `protocol = "h2"`.
    pub grpc_service: Option<String>,
    /// Host header; default the endpoint as written.
    pub host: Option<String>,
    /// Default `"5s"`.
    pub interval: Option<DurationValue>,
    /// Up to this much is added to each interval at random. Default
    /// a tenth of the interval.
    pub jitter: Option<DurationValue>,
    /// Default `"2s"`.
    pub timeout: Option<DurationValue>,
    /// Passes in a row to come back. Default 2.
    pub healthy_threshold: Option<i64>,
    /// Failures in a row to leave. Default 3.
    pub unhealthy_threshold: Option<i64>,
    /// `["200-399"]` (default), `["200", "204"]`, ...
    pub expected_statuses: Option<Vec<String>>,
}

/// One element of `endpoints`: a plain `"host:port"` string or a table
/// with a weight.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "\"host:port\" or { address = \"host:port\", weight = 1 }"
)]
pub enum EndpointFile {
    Address(String),
    Weighted(WeightedEndpointFile),
}

impl EndpointFile {
    pub fn address(&self) -> &str {
        match self {
            EndpointFile::Address(a) => a,
            EndpointFile::Weighted(w) => &w.address,
        }
    }
}

/// `{ address = "host:port", weight = 3 }` in `endpoints`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedEndpointFile {
    pub address: String,
    /// Default 1; 1..=1000.
    pub weight: Option<i64>,
    /// Locality (zone-aware routing: `prefer_zone` on the cluster).
    pub zone: Option<String>,
}

/// `hash_key = { header = "x-user" }` (or `cookie`, `client_ip = true`,
/// `path = true`, `query = "id"`) on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct HashKeyFile {
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub client_ip: Option<bool>,
    pub path: Option<bool>,
    pub query: Option<String>,
}

/// `tls = { ... }` on a cluster (TLS to the upstream).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct ClusterTlsFile {
    /// CA bundle (PEM) to verify upstream certificates; required unless
    /// `insecure_skip_verify`.
    pub ca: Option<String>,
    /// Name to send in SNI and verify; default: the host of the first endpoint.
    pub server_name: Option<String>,
    /// Client certificate chain for mTLS (PEM).
    pub cert: Option<String>,
    /// Client private key for mTLS (PEM).
    pub key: Option<String>,
    /// Accept any upstream certificate. Test setups only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Verify the server's SPIFFE ID (its URI SAN) instead of a DNS name:
    /// exactly this ID.
    pub spiffe_id: Option<String>,
    /// ... or any ID of this trust domain.
    pub spiffe_trust_domain: Option<String>,
}

/// `[admin]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct AdminFile {
    /// Default `"127.0.0.1:9901"`.
    pub address: Option<String>,
    /// Alias of `address` (give one of them).
    pub listen: Option<String>,
}

/// `[stats]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct StatsFile {
    /// Default 3; 1..=5.
    pub histogram_sigfig: Option<i64>,
    /// Default `"1s"`; at least 10ms.
    pub publish_interval: Option<DurationValue>,
    /// Subset of `["listener", "route", "cluster", "endpoint"]` (default: all).
    pub histograms: Option<Vec<String>>,
    /// Default false.
    pub per_worker: Option<bool>,
}

/// `[access_log]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct AccessLogFile {
    /// `"stdout"` (default) or a file path, relative to the config file.
    pub path: Option<String>,
    /// `"json"` (default) or `"combined"`.
    pub format: Option<String>,
    /// Default 64KiB; 4KiB..=16MiB.
    pub buffer: Option<SizeValue>,
    /// Default `"1s"`.
    pub flush_interval: Option<DurationValue>,
    /// Query parameters whose values the log replaces with `REDACTED`
    /// (the ones `api_key` and `jwt` filters read are always redacted).
    pub redact_query: Option<Vec<String>>,
}

/// `[tracing]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct TracingFile {
    /// Default true.
    pub w3c: Option<bool>,
    /// `[tracing.otlp]`: export spans to an OTLP/HTTP collector.
    pub otlp: Option<OtlpFile>,
}

/// `[tracing.otlp]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct OtlpFile {
    /// `"http://host:port/v1/traces"` (OTLP/HTTP, protobuf).
    pub endpoint: String,
    /// `service.name` of the resource; default `"ringway"`.
    pub service_name: Option<String>,
    /// `service.instance.id`; default the host name.
    pub node: Option<String>,
    /// Share of new traces sampled at the head, 0..=1 (default 1). A
    /// continued trace follows its parent's sampled flag.
    pub sample_ratio: Option<f64>,
    /// Also export requests that failed (5xx or a proxy error) whatever the
    /// head decision (default true).
    pub keep_errors: Option<bool>,
    /// Also export requests that took at least this long.
    pub keep_slower_than: Option<DurationValue>,
    /// Spans per export request (default 512).
    pub batch_spans: Option<i64>,
    /// Batches waiting for the exporter before new ones are dropped
    /// (default 16).
    pub queue_batches: Option<i64>,
    /// Longest time a span waits in its worker's buffer (default "1s").
    pub flush_interval: Option<DurationValue>,
    /// Connect + send + response timeout of one export (default "2s").
    pub timeout: Option<DurationValue>,
}
