//! OTLP trace export (`[tracing.otlp]`): a server span per request and a
//! client span per upstream attempt, sent to an OpenTelemetry collector
//! over OTLP/HTTP with protobuf bodies.
//!
//! # Architecture
//! ```text
//! worker: log stage → sample (head flag, then keep rules) → encode the
//!         spans (protobuf, straight into the worker's buffer)
//!         → full buffer or flush_interval: try_send to the exporter
//!           (a bounded queue: full → the batch is dropped and counted)
//! exporter thread: receive batches → one ExportTraceServiceRequest
//!         (resource + scope + spans) → HTTP POST → count exported / dropped
//! ```
//! - **No allocation per span, no lock, no waiting on the request path**:
//!   spans are encoded into a per-worker `Vec` ([`worker::WorkerSpans`])
//!   that is handed over whole; only the hand-over (one channel send per
//!   batch) crosses threads. A slow or dead collector fills the queue;
//!   the workers then drop batches (counted in
//!   `ringway_trace_spans_dropped_total{reason="queue_full"}`), and memory
//!   stays bounded by `queue_batches` × `batch_spans` spans.
//! - **Sampling** ([`sample`]): the head decision follows the incoming
//!   `traceparent`'s sampled flag, or draws a new trace with probability
//!   `sample_ratio` from its trace id (the same answer on every hop that
//!   uses the same rule). The decision is forwarded in the flags of the
//!   `traceparent` sent upstream. At the end of the request, **keep
//!   rules** export requests the head dropped when they failed (5xx or a
//!   proxy error) or were slower than `keep_slower_than`: tail sampling
//!   without buffering whole traces.
//! - **Spans** ([`span`]) follow the OpenTelemetry HTTP semantic
//!   conventions: server span `"{method} {route}"` (kind SERVER, parent =
//!   the incoming span), client span `"{method}"` (kind CLIENT, parent =
//!   the server span, span id = the one sent upstream in `traceparent`).
//!   Request aggregation legs get a client span each.

pub mod exporter;
pub mod proto;
pub mod sample;
pub mod span;
pub mod worker;

pub use exporter::{counters, Exporter};
pub use worker::WorkerSpans;

/// Where to send spans: an `http://` URL (OTLP/HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As configured.
    pub url: String,
    /// `host:port` to connect to (resolved at each export).
    pub authority: String,
    /// Host header value.
    pub host: String,
    /// Request target, e.g. `/v1/traces`.
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                format!("{url:?}: https is not supported for export; run the collector (or an agent) on loopback and use http://")
            } else {
                format!("{url:?} is not an http:// URL")
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/v1/traces"),
        };
        if authority.is_empty()
            || authority.contains('@')
            || path.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#')
        {
            return Err(format!("{url:?} is not a valid collector URL"));
        }
        // Default port: OTLP/HTTP's 4318.
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let with_port = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:4318")
        };
        if let Some(i) = with_port.rfind(':') {
            if with_port[i + 1..].parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("{url:?}: bad port"));
            }
        }
        Ok(Endpoint {
            url: url.to_owned(),
            authority: with_port,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// This machine's host name (the default `service.instance.id`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests;
