//! What a log line is made of.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use crate::http::{RequestHead, Span, Version};

/// Request facts copied out of the read buffer before it is reused (the
/// head is consumed as soon as it is forwarded). One reusable buffer per
/// connection: no allocation in steady state.
#[derive(Debug, Default)]
pub struct RequestMeta {
    buf: Vec<u8>,
    method: Range<usize>,
    target: Range<usize>,
    host: Range<usize>,
    user_agent: Range<usize>,
    referer: Range<usize>,
    request_id: Range<usize>,
    pub version: Version,
    /// The request came as an HTTP/2 stream (logged as `HTTP/2.0`).
    pub http2: bool,
}

impl RequestMeta {
    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        start..self.buf.len()
    }

    /// Copy what the log needs from `head` (parsed from `data`); the
    /// values of the query parameters named in `redact` become `REDACTED`.
    pub fn capture(
        &mut self,
        data: &[u8],
        head: &RequestHead,
        request_id: &[u8],
        (user_agent, referer): (Option<Span>, Option<Span>),
        redact: &[Box<[u8]>],
    ) {
        self.buf.clear();
        let (m, t) = (head.method.range(), head.target.range());
        if redact.is_empty() && m.end <= t.start && t.end <= data.len() {
            // Method and target sit together in the request line: one copy.
            self.buf.extend_from_slice(&data[m.start..t.end]);
            self.method = 0..m.len();
            self.target = t.start - m.start..t.end - m.start;
        } else {
            self.method = self.push(&data[m]);
            self.target = self.push_target(&data[t], redact);
        }
        self.host = match head.host {
            Some(h) => self.push(h.get(data)),
            None => 0..0,
        };
        self.user_agent = match user_agent {
            Some(s) => self.push(s.get(data)),
            None => 0..0,
        };
        self.referer = match referer {
            Some(s) => self.push(s.get(data)),
            None => 0..0,
        };
        self.request_id = self.push(request_id);
        self.version = head.version;
    }

    fn push_target(&mut self, target: &[u8], redact: &[Box<[u8]>]) -> Range<usize> {
        let query_at = match memchr::memchr(b'?', target) {
            Some(q) if !redact.is_empty() => q + 1,
            _ => return self.push(target),
        };
        let start = self.buf.len();
        self.buf.extend_from_slice(&target[..query_at]);
        let (query, fragment) = match memchr::memchr(b'#', &target[query_at..]) {
            Some(h) => target[query_at..].split_at(h),
            None => (&target[query_at..], &b""[..]),
        };
        for (i, pair) in query.split(|&b| b == b'&').enumerate() {
            if i > 0 {
                self.buf.push(b'&');
            }
            match memchr::memchr(b'=', pair) {
                Some(eq) if redact.iter().any(|n| n[..] == pair[..eq]) => {
                    self.buf.extend_from_slice(&pair[..=eq]);
                    self.buf.extend_from_slice(b"REDACTED");
                }
                _ => self.buf.extend_from_slice(pair),
            }
        }
        self.buf.extend_from_slice(fragment);
        start..self.buf.len()
    }

    /// Bytes captured (the variable-length part of a log line).
    pub fn captured_len(&self) -> usize {
        self.buf.len()
    }

    pub fn method(&self) -> &[u8] {
        &self.buf[self.method.clone()]
    }
    pub fn target(&self) -> &[u8] {
        &self.buf[self.target.clone()]
    }
    pub fn host(&self) -> &[u8] {
        &self.buf[self.host.clone()]
    }
    pub fn user_agent(&self) -> &[u8] {
        &self.buf[self.user_agent.clone()]
    }
    pub fn referer(&self) -> &[u8] {
        &self.buf[self.referer.clone()]
    }
    pub fn request_id(&self) -> &[u8] {
        &self.buf[self.request_id.clone()]
    }
}

/// One access log record.
#[derive(Debug, Clone, Copy)]
pub struct LogLine<'a> {
    pub worker: usize,
    pub client: SocketAddr,
    /// `None` when the request head could not be read (400, 408, 431).
    pub meta: Option<&'a RequestMeta>,
    pub listener: &'a str,
    pub route: Option<&'a str>,
    /// 0 when no response was sent.
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
    /// Endpoint label (`host:port`).
    pub upstream: Option<&'a str>,
    pub upstream_time: Option<Duration>,
    /// 32 hex digits.
    pub trace_id: Option<&'a [u8]>,
    pub error: Option<&'static str>,
    /// Per-request variables set by filters (JSON: a `vars` object, written
    /// only when one was set).
    pub vars: Option<&'a crate::pipeline::filters::Vars>,
    /// A gRPC answer's `grpc-status` (JSON: `grpc_status`, only when set).
    pub grpc_status: Option<u32>,
}
