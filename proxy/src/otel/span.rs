//! The spans of one request, encoded as OTLP `Span` messages (each one a
//! `spans` field of `ScopeSpans`, so a batch is their concatenation).
//!
//! Attributes follow the OpenTelemetry HTTP semantic conventions where one
//! exists (`http.request.method`, `url.path`, `url.query`, `url.scheme`,
//! `server.address`, `server.port`, `client.address`,
//! `network.peer.address`, `network.peer.port`, `user_agent.original`,
//! `network.protocol.version`, `http.route`, `http.response.status_code`,
//! `http.request.size`, `http.response.size`, `error.type`), and use a
//! `ringway.` prefix otherwise. Status is ERROR for a server span with a
//! 5xx answer or a proxy error, and for a client span without a response
//! or with a 5xx (per the conventions; 4xx are not errors of the server).

use std::borrow::Cow;
use std::net::IpAddr;

use super::proto::{self, attribute, field_len, Value};

/// `Span.SpanKind`.
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
/// `Status.StatusCode`.
const STATUS_ERROR: u64 = 2;

/// What the server span of a request says.
#[derive(Debug, Clone)]
pub struct ServerSpan<'a> {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span (a continued trace).
    pub parent: Option<[u8; 8]>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub method: &'a [u8],
    /// The request target (path and query; query values already redacted
    /// for the access log's list).
    pub target: &'a [u8],
    pub host: &'a [u8],
    pub user_agent: &'a [u8],
    pub route: Option<&'a str>,
    pub listener: &'a str,
    pub worker: usize,
    pub tls: bool,
    pub server_port: u16,
    pub client: IpAddr,
    pub http10: bool,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: Option<&'static str>,
    pub request_id: &'a [u8],
}

/// One upstream attempt (or aggregation leg).
#[derive(Debug, Clone)]
pub struct ClientSpan<'a> {
    pub span_id: [u8; 8],
    pub start_ns: u64,
    pub end_ns: u64,
    pub method: &'a [u8],
    /// The endpoint as configured (`host:port`).
    pub endpoint: &'a str,
    pub peer: std::net::SocketAddr,
    pub cluster: &'a str,
    /// 0: no response.
    pub status: u16,
    pub reused: bool,
    pub error: Option<&'a str>,
    /// The aggregation leg's name.
    pub leg: Option<&'a str>,
}

/// Protobuf strings must be UTF-8: bytes that are not (obs-text in a
/// header) are replaced.
fn text(b: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(b) {
        Ok(_) => Cow::Borrowed(b),
        Err(_) => Cow::Owned(String::from_utf8_lossy(b).into_owned().into_bytes()),
    }
}

fn status_text(status: u16, buf: &mut [u8; 3]) -> &[u8] {
    buf[0] = b'0' + (status / 100 % 10) as u8;
    buf[1] = b'0' + (status / 10 % 10) as u8;
    buf[2] = b'0' + (status % 10) as u8;
    &buf[..]
}

/// Append the request's spans to `out` (`scratch`: a reusable buffer).
pub fn encode(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    s: &ServerSpan<'_>,
    clients: &[ClientSpan<'_>],
) {
    scratch.clear();
    encode_server(scratch, s);
    proto::len_header(out, 2, scratch.len());
    out.extend_from_slice(scratch);
    for c in clients {
        scratch.clear();
        encode_client(scratch, s, c);
        proto::len_header(out, 2, scratch.len());
        out.extend_from_slice(scratch);
    }
}

fn name(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    proto::len_header(out, 5, len);
    for p in parts {
        out.extend_from_slice(p);
    }
}

fn status(out: &mut Vec<u8>, message: Option<&str>) {
    let msg = message.unwrap_or("");
    let inner = if msg.is_empty() {
        0
    } else {
        field_len(2, msg.len())
    } + 2;
    proto::len_header(out, 15, inner);
    if !msg.is_empty() {
        proto::bytes(out, 2, msg.as_bytes());
    }
    proto::uint(out, 3, STATUS_ERROR);
}

fn encode_server(out: &mut Vec<u8>, s: &ServerSpan<'_>) {
    proto::bytes(out, 1, &s.trace_id);
    proto::bytes(out, 2, &s.span_id);
    if let Some(p) = &s.parent {
        proto::bytes(out, 4, p);
    }
    let method = text(s.method);
    let route = s.route.unwrap_or("-");
    name(out, &[&method, b" ", route.as_bytes()]);
    proto::uint(out, 6, KIND_SERVER);
    proto::fixed64(out, 7, s.start_ns);
    proto::fixed64(out, 8, s.end_ns);
    let target = text(s.target);
    let (path, query) = match memchr::memchr(b'?', &target) {
        Some(q) => (&target[..q], Some(&target[q + 1..])),
        None => (&target[..], None),
    };
    let host = text(s.host);
    let host_only = host_without_port(&host);
    let ua = text(s.user_agent);
    let client = s.client.to_string();
    let mut code = [0u8; 3];
    let a = |out: &mut Vec<u8>, k: &str, v: Value<'_>| attribute(out, 9, k, v);
    a(out, "http.request.method", Value::Str(&method));
    a(out, "url.path", Value::Str(path));
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        a(out, "url.query", Value::Str(q));
    }
    a(
        out,
        "url.scheme",
        Value::Str(if s.tls { b"https" } else { b"http" }),
    );
    if !host_only.is_empty() {
        a(out, "server.address", Value::Str(host_only));
    }
    a(out, "server.port", Value::Int(s.server_port as i64));
    a(out, "client.address", Value::Str(client.as_bytes()));
    if !ua.is_empty() {
        a(out, "user_agent.original", Value::Str(&ua));
    }
    a(
        out,
        "network.protocol.version",
        Value::Str(if s.http10 { b"1.0" } else { b"1.1" }),
    );
    if let Some(r) = s.route {
        a(out, "http.route", Value::Str(r.as_bytes()));
    }
    if s.status > 0 {
        a(
            out,
            "http.response.status_code",
            Value::Int(s.status as i64),
        );
    }
    a(out, "http.request.size", Value::Int(s.bytes_in as i64));
    a(out, "http.response.size", Value::Int(s.bytes_out as i64));
    let failed = s.error.is_some() || s.status >= 500;
    match s.error {
        Some(e) => a(out, "error.type", Value::Str(e.as_bytes())),
        None if s.status >= 500 => a(
            out,
            "error.type",
            Value::Str(status_text(s.status, &mut code)),
        ),
        None => {}
    }
    a(out, "ringway.listener", Value::Str(s.listener.as_bytes()));
    a(out, "ringway.worker", Value::Int(s.worker as i64));
    if !s.request_id.is_empty() {
        a(out, "ringway.request_id", Value::Str(&text(s.request_id)));
    }
    if failed {
        status(out, s.error);
    }
}

fn encode_client(out: &mut Vec<u8>, s: &ServerSpan<'_>, c: &ClientSpan<'_>) {
    proto::bytes(out, 1, &s.trace_id);
    proto::bytes(out, 2, &c.span_id);
    proto::bytes(out, 4, &s.span_id);
    let method = text(c.method);
    name(out, &[&method]);
    proto::uint(out, 6, KIND_CLIENT);
    proto::fixed64(out, 7, c.start_ns);
    proto::fixed64(out, 8, c.end_ns.max(c.start_ns));
    let (host, port) = split_endpoint(c.endpoint);
    let peer = c.peer.ip().to_string();
    let mut code = [0u8; 3];
    let a = |out: &mut Vec<u8>, k: &str, v: Value<'_>| attribute(out, 9, k, v);
    a(out, "http.request.method", Value::Str(&method));
    a(out, "server.address", Value::Str(host.as_bytes()));
    if let Some(p) = port {
        a(out, "server.port", Value::Int(p as i64));
    }
    a(out, "network.peer.address", Value::Str(peer.as_bytes()));
    a(out, "network.peer.port", Value::Int(c.peer.port() as i64));
    if c.status > 0 {
        a(
            out,
            "http.response.status_code",
            Value::Int(c.status as i64),
        );
    }
    let failed = c.error.is_some() || c.status == 0 || c.status >= 500;
    match c.error {
        Some(e) => a(out, "error.type", Value::Str(e.as_bytes())),
        None if c.status >= 500 => a(
            out,
            "error.type",
            Value::Str(status_text(c.status, &mut code)),
        ),
        None if c.status == 0 => a(out, "error.type", Value::Str(b"no_response")),
        None => {}
    }
    a(out, "ringway.cluster", Value::Str(c.cluster.as_bytes()));
    a(out, "ringway.endpoint", Value::Str(c.endpoint.as_bytes()));
    a(out, "ringway.connection.reused", Value::Bool(c.reused));
    if let Some(leg) = c.leg {
        a(out, "ringway.aggregate.leg", Value::Str(leg.as_bytes()));
    }
    if failed {
        status(out, c.error);
    }
}

/// `host` of `host:port` / `[v6]:port` / `host`.
fn host_without_port(h: &[u8]) -> &[u8] {
    if h.first() == Some(&b'[') {
        return match memchr::memchr(b']', h) {
            Some(i) => &h[..=i],
            None => h,
        };
    }
    match memchr::memrchr(b':', h) {
        Some(i) => &h[..i],
        None => h,
    }
}

fn split_endpoint(e: &str) -> (&str, Option<u16>) {
    match e.rfind(':') {
        Some(i) if !e[i..].contains(']') => match e[i + 1..].parse() {
            Ok(p) => (&e[..i], Some(p)),
            Err(_) => (e, None),
        },
        _ => (e, None),
    }
}
