//! One error type for the whole request path, and the one place where errors
//! become responses.
//!
//! A [`ProxyError`] says *what* failed ([`ErrorKind`]), *which side* failed
//! ([`Side`]: the client, the upstream, or ringway itself) and whether the
//! request may be *retried* on another upstream connection. The pipeline
//! never writes an error response itself: it calls [`write_error_response`].

use std::fmt;
use std::io;

use crate::http::{ChunkError, HeadError};

/// Which side of the proxy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client (bad request, slow client, client went away).
    Downstream,
    /// The upstream (refused, reset, timed out, bad response).
    Upstream,
    /// ringway itself (no route, config or resource problem).
    Internal,
}

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or ambiguous request (400).
    BadRequest(&'static str),
    /// Request head over `max_head_bytes` (431).
    HeadTooLarge,
    /// More than `max_headers` header fields (431).
    TooManyHeaders,
    /// Request body over the route's `max_body_bytes` (413).
    BodyTooLarge,
    /// The request head did not arrive within `header_read_timeout` (408).
    HeaderTimeout,
    /// The request body stalled longer than `body_read_timeout` (408).
    BodyTimeout,
    /// `Expect` with something other than `100-continue` (417).
    ExpectationFailed,
    /// The client closed or reset the connection (no response possible).
    ClientClosed,
    /// No route matches host and path (404).
    NoRoute,
    /// The cluster has no endpoint to send to (503).
    NoEndpoint,
    /// Connecting to the upstream failed: refused, unreachable (502).
    ConnectFailed,
    /// Connecting to the upstream took longer than `connect_timeout` (504).
    ConnectTimeout,
    /// The upstream TLS handshake failed (502).
    UpstreamTls,
    /// The upstream closed or reset the connection before a full response (502).
    UpstreamClosed,
    /// The upstream did not answer within the route `timeout` (504).
    UpstreamTimeout,
    /// The upstream sent something that is not a valid response (502).
    BadResponse(&'static str),
    /// The proxy is shutting down (503).
    Draining,
    /// A bug or an impossible state inside ringway (500).
    Internal(&'static str),
    /// A circuit breaker of the cluster is open (503, `x-ringway-overflow`
    /// names the breaker).
    Overflow(&'static str),
}

/// An error on the request path.
#[derive(Debug)]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub side: Side,
    /// The request can be sent again on a new upstream connection (nothing
    /// of it was consumed by the upstream, and it can be replayed).
    pub retry: bool,
    /// The underlying I/O error, when there is one.
    pub cause: Option<io::Error>,
}

impl ProxyError {
    pub fn new(kind: ErrorKind) -> Self {
        let side = match kind {
            ErrorKind::BadRequest(_)
            | ErrorKind::HeadTooLarge
            | ErrorKind::TooManyHeaders
            | ErrorKind::BodyTooLarge
            | ErrorKind::HeaderTimeout
            | ErrorKind::BodyTimeout
            | ErrorKind::ExpectationFailed
            | ErrorKind::ClientClosed => Side::Downstream,
            ErrorKind::ConnectFailed
            | ErrorKind::ConnectTimeout
            | ErrorKind::UpstreamTls
            | ErrorKind::UpstreamClosed
            | ErrorKind::UpstreamTimeout
            | ErrorKind::BadResponse(_) => Side::Upstream,
            ErrorKind::NoRoute
            | ErrorKind::NoEndpoint
            | ErrorKind::Draining
            | ErrorKind::Overflow(_)
            | ErrorKind::Internal(_) => Side::Internal,
        };
        ProxyError {
            kind,
            side,
            retry: false,
            cause: None,
        }
    }

    pub fn with_cause(mut self, cause: io::Error) -> Self {
        self.cause = Some(cause);
        self
    }

    pub fn retryable(mut self, retry: bool) -> Self {
        self.retry = retry;
        self
    }

    /// The status code the client gets, or `None` when no response can be
    /// sent (the client is gone).
    pub fn status(&self) -> Option<u16> {
        Some(match self.kind {
            ErrorKind::BadRequest(_) => 400,
            ErrorKind::HeadTooLarge | ErrorKind::TooManyHeaders => 431,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::HeaderTimeout | ErrorKind::BodyTimeout => 408,
            ErrorKind::ExpectationFailed => 417,
            ErrorKind::ClientClosed => return None,
            ErrorKind::NoRoute => 404,
            ErrorKind::NoEndpoint | ErrorKind::Draining | ErrorKind::Overflow(_) => 503,
            ErrorKind::ConnectFailed
            | ErrorKind::UpstreamTls
            | ErrorKind::UpstreamClosed
            | ErrorKind::BadResponse(_) => 502,
            ErrorKind::ConnectTimeout | ErrorKind::UpstreamTimeout => 504,
            ErrorKind::Internal(_) => 500,
        })
    }

    /// The status the log stage records when this error ended a request
    /// before any response: the error response's status, or for a client
    /// that went away (nothing sent) [`CLIENT_CLOSED_STATUS`].
    pub fn logged_status(&self) -> u16 {
        self.status().unwrap_or(CLIENT_CLOSED_STATUS)
    }

    /// Short name for logs and stats.
    pub fn name(&self) -> &'static str {
        ERROR_KIND_NAMES[self.kind.index()]
    }
}

/// The status logged (never sent) for a request whose client went away
/// before its response: nginx's 499 "client closed request". An HTTP/1.1
/// client that closes its connection, or an HTTP/2 client that resets its
/// stream (or closes the connection) while the request is in flight.
pub const CLIENT_CLOSED_STATUS: u16 = 499;

/// Names of the error kinds, indexed by [`ErrorKind::index`] (stats labels).
pub const ERROR_KIND_NAMES: [&str; 19] = [
    "bad_request",
    "head_too_large",
    "too_many_headers",
    "body_too_large",
    "header_timeout",
    "body_timeout",
    "expectation_failed",
    "client_closed",
    "no_route",
    "no_endpoint",
    "connect_failed",
    "connect_timeout",
    "upstream_tls",
    "upstream_closed",
    "upstream_timeout",
    "bad_response",
    "draining",
    "internal",
    "overflow",
];

impl ErrorKind {
    /// Dense index of the kind, for per-kind counters.
    pub fn index(&self) -> usize {
        match self {
            ErrorKind::BadRequest(_) => 0,
            ErrorKind::HeadTooLarge => 1,
            ErrorKind::TooManyHeaders => 2,
            ErrorKind::BodyTooLarge => 3,
            ErrorKind::HeaderTimeout => 4,
            ErrorKind::BodyTimeout => 5,
            ErrorKind::ExpectationFailed => 6,
            ErrorKind::ClientClosed => 7,
            ErrorKind::NoRoute => 8,
            ErrorKind::NoEndpoint => 9,
            ErrorKind::ConnectFailed => 10,
            ErrorKind::ConnectTimeout => 11,
            ErrorKind::UpstreamTls => 12,
            ErrorKind::UpstreamClosed => 13,
            ErrorKind::UpstreamTimeout => 14,
            ErrorKind::BadResponse(_) => 15,
            ErrorKind::Draining => 16,
            ErrorKind::Internal(_) => 17,
            ErrorKind::Overflow(_) => 18,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Downstream => "downstream",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
        };
        write!(f, "{side} {}", self.name())?;
        match self.kind {
            ErrorKind::BadRequest(why) | ErrorKind::BadResponse(why) | ErrorKind::Internal(why) => {
                write!(f, ": {why}")?
            }
            _ => {}
        }
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProxyError {}

impl From<HeadError> for ProxyError {
    /// A request head error (client side).
    fn from(e: HeadError) -> Self {
        ProxyError::new(match e {
            HeadError::TooLarge => ErrorKind::HeadTooLarge,
            HeadError::TooManyHeaders => ErrorKind::TooManyHeaders,
            HeadError::Malformed(why) => ErrorKind::BadRequest(why),
        })
    }
}

/// A chunked-body error in the request (client side).
pub fn request_chunk_error(e: ChunkError) -> ProxyError {
    ProxyError::new(ErrorKind::BadRequest(match e {
        ChunkError::Malformed(why) => why,
        ChunkError::LineTooLong => "chunk-size line too long",
        ChunkError::TrailersTooLarge => "chunked trailers too large",
    }))
}

/// A head or chunked-body error in the response (upstream side).
pub fn response_head_error(e: HeadError) -> ProxyError {
    ProxyError::new(ErrorKind::BadResponse(match e {
        HeadError::TooLarge => "response head too large",
        HeadError::TooManyHeaders => "too many response header fields",
        HeadError::Malformed(why) => why,
    }))
}

pub fn response_chunk_error(e: ChunkError) -> ProxyError {
    ProxyError::new(ErrorKind::BadResponse(match e {
        ChunkError::Malformed(why) => why,
        ChunkError::LineTooLong => "chunk-size line too long",
        ChunkError::TrailersTooLarge => "chunked trailers too large",
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// Append the response for `err` to `out`. Every error response closes the
/// connection (`Connection: close`): after an error the framing of what
/// follows on the connection cannot be trusted. Returns the status written,
/// or `None` when there is no one to answer.
pub fn write_error_response(out: &mut Vec<u8>, err: &ProxyError) -> Option<u16> {
    let status = err.status()?;
    let reason = reason(status);
    let mut digits = itoa::Buffer::new();
    let code = digits.format(status).as_bytes();
    let body_len = code.len() + 1 + reason.len() + 1; // "404 Not Found\n"
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: text/plain\r\ncontent-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
    if let ErrorKind::Overflow(breaker) = err.kind {
        out.extend_from_slice(b"\r\nx-ringway-overflow: ");
        out.extend_from_slice(breaker.as_bytes());
    }
    out.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.push(b'\n');
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_have_status_length_and_close() {
        let mut out = Vec::new();
        let status = write_error_response(&mut out, &ProxyError::new(ErrorKind::NoRoute));
        assert_eq!(status, Some(404));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("connection: close\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert_eq!(body, "404 Not Found\n");
    }

    #[test]
    fn an_open_circuit_breaker_is_named() {
        let mut out = Vec::new();
        let e = ProxyError::new(ErrorKind::Overflow("max_requests"));
        assert_eq!(write_error_response(&mut out, &e), Some(503));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\r\nx-ringway-overflow: max_requests\r\n"),
            "{text}"
        );
        assert_eq!(e.side, Side::Internal);
        assert_eq!(e.name(), "overflow");
    }

    #[test]
    fn client_gone_gets_no_response() {
        let mut out = Vec::new();
        let err = ProxyError::new(ErrorKind::ClientClosed);
        assert_eq!(write_error_response(&mut out, &err), None);
        assert!(out.is_empty());
        assert_eq!(err.side, Side::Downstream);
        // Logged as nginx logs it.
        assert_eq!(err.logged_status(), 499);
        assert_eq!(ProxyError::new(ErrorKind::NoRoute).logged_status(), 404);
    }

    #[test]
    fn sides_and_statuses() {
        let e = ProxyError::new(ErrorKind::UpstreamTimeout);
        assert_eq!((e.side, e.status()), (Side::Upstream, Some(504)));
        let e = ProxyError::new(ErrorKind::ConnectFailed).retryable(true);
        assert!(e.retry);
        assert_eq!(e.status(), Some(502));
        let e: ProxyError = HeadError::TooManyHeaders.into();
        assert_eq!(e.status(), Some(431));
    }
}
