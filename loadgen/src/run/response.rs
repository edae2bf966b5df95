//! Framing HTTP/1.x responses (RFC 9112 section 6.3): an incremental parser
//! that is fed the bytes read so far and says how many it consumed and
//! whether a whole response is done. Bodies are skipped, never copied.
//!
//! A response whose end cannot be determined, or whose head is invalid,
//! is `Malformed`: it is counted as an error, never as a success.

use crate::fields::trim;
use thiserror::Error;

use crate::chunked::{ChunkError, ChunkedDecoder};

/// Longest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformed {
    #[error("invalid response head: {0}")]
    Head(httparse::Error),
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("both Content-Length and Transfer-Encoding")]
    ConflictingFraming,
    #[error("unexpected 101 Switching Protocols")]
    Upgrade,
    #[error("invalid chunked body: {0}")]
    Chunked(ChunkError),
    #[error("connection closed in the middle of a response")]
    Truncated,
}

/// How a connection ended while a response was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EofError {
    /// Closed before any byte of the response arrived.
    Closed,
    Malformed(Malformed),
}

/// A complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complete {
    pub status: u16,
    /// The connection may carry another request.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed; `consumed` bytes may be dropped.
    Partial { consumed: usize },
    /// A response ended after `consumed` bytes; the rest belongs to the next.
    Done { consumed: usize, response: Complete },
}

#[derive(Debug, Clone)]
enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

#[derive(Debug, Clone)]
pub struct ResponseParser {
    body: Option<Body>,
    pending: Complete,
    /// Any byte of the current response (including interim 1xx) was seen.
    started: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    pub fn new() -> Self {
        ResponseParser {
            body: None,
            pending: Complete {
                status: 0,
                keep_alive: false,
            },
            started: false,
        }
    }

    /// Forget any partial response (after a connection is replaced).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Parse from `buf`, the unconsumed bytes read so far. `head_request`:
    /// the request this answers was HEAD (no body follows).
    pub fn feed(&mut self, buf: &[u8], head_request: bool) -> Result<Parsed, Malformed> {
        let mut consumed = 0;
        loop {
            match &mut self.body {
                None => {
                    let rest = &buf[consumed..];
                    if rest.is_empty() {
                        return Ok(Parsed::Partial { consumed });
                    }
                    self.started = true;
                    match parse_head(rest, head_request)? {
                        HeadOutcome::Partial => {
                            if rest.len() > MAX_HEAD {
                                return Err(Malformed::HeadTooLarge);
                            }
                            return Ok(Parsed::Partial { consumed });
                        }
                        HeadOutcome::Interim(n) => consumed += n,
                        HeadOutcome::Final {
                            len,
                            response,
                            body,
                        } => {
                            consumed += len;
                            match body {
                                None => return Ok(self.finish(consumed, response)),
                                Some(body) => {
                                    self.pending = response;
                                    self.body = Some(body);
                                }
                            }
                        }
                    }
                }
                Some(Body::Length(remaining)) => {
                    let take = ((buf.len() - consumed) as u64).min(*remaining);
                    consumed += take as usize;
                    *remaining -= take;
                    if *remaining > 0 {
                        return Ok(Parsed::Partial { consumed });
                    }
                    let response = self.pending;
                    return Ok(self.finish(consumed, response));
                }
                Some(Body::Chunked(decoder)) => {
                    let (n, done) = decoder
                        .feed(&buf[consumed..], None)
                        .map_err(Malformed::Chunked)?;
                    consumed += n;
                    if !done {
                        return Ok(Parsed::Partial { consumed });
                    }
                    let response = self.pending;
                    return Ok(self.finish(consumed, response));
                }
                Some(Body::UntilClose) => {
                    return Ok(Parsed::Partial {
                        consumed: buf.len(),
                    })
                }
            }
        }
    }

    /// The peer closed the connection; `unconsumed` bytes were left over.
    pub fn eof(&mut self, unconsumed: usize) -> Result<Complete, EofError> {
        let outcome = match &self.body {
            Some(Body::UntilClose) => Ok(Complete {
                status: self.pending.status,
                keep_alive: false,
            }),
            None if !self.started && unconsumed == 0 => Err(EofError::Closed),
            _ => Err(EofError::Malformed(Malformed::Truncated)),
        };
        self.reset();
        outcome
    }

    fn finish(&mut self, consumed: usize, response: Complete) -> Parsed {
        self.body = None;
        self.started = false;
        Parsed::Done { consumed, response }
    }
}

enum HeadOutcome {
    Partial,
    /// A 1xx interim response of this many bytes.
    Interim(usize),
    Final {
        len: usize,
        response: Complete,
        body: Option<Body>,
    },
}

fn parse_head(buf: &[u8], head_request: bool) -> Result<HeadOutcome, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(HeadOutcome::Partial),
        Ok(httparse::Status::Complete(n)) => n,
        Err(e) => return Err(Malformed::Head(e)),
    };
    let status = resp.code.unwrap_or(0);
    if status == 101 {
        return Err(Malformed::Upgrade);
    }
    if (100..200).contains(&status) {
        return Ok(HeadOutcome::Interim(len));
    }
    let http11 = resp.version == Some(1);
    let mut content_length: Option<u64> = None;
    let mut chunked = None;
    let mut close = false;
    let mut keep_alive_token = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = parse_content_length(h.value)?;
            if content_length.is_some_and(|old| old != v) {
                return Err(Malformed::BadContentLength);
            }
            content_length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .map(trim)
                .unwrap_or_default();
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                }
            }
        }
    }
    let mut keep_alive = if http11 {
        !close
    } else {
        keep_alive_token && !close
    };
    let body = if head_request || status == 204 || status == 304 {
        None
    } else {
        match (chunked, content_length) {
            (Some(_), Some(_)) => return Err(Malformed::ConflictingFraming),
            (Some(true), None) => Some(Body::Chunked(ChunkedDecoder::new())),
            (Some(false), None) | (None, None) => {
                keep_alive = false;
                Some(Body::UntilClose)
            }
            (None, Some(0)) => None,
            (None, Some(n)) => Some(Body::Length(n)),
        }
    };
    Ok(HeadOutcome::Final {
        len,
        response: Complete { status, keep_alive },
        body,
    })
}

fn parse_content_length(v: &[u8]) -> Result<u64, Malformed> {
    crate::fields::content_length(v).ok_or(Malformed::BadContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(p: Result<Parsed, Malformed>) -> (usize, Complete) {
        match p.unwrap() {
            Parsed::Done { consumed, response } => (consumed, response),
            other => panic!("expected a complete response, got {other:?}"),
        }
    }

    #[test]
    fn content_length() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP";
        let mut p = ResponseParser::new();
        let (n, c) = done(p.feed(r, false));
        assert_eq!(n, r.len() - 4);
        assert_eq!(c.status, 200);
        assert!(c.keep_alive);
    }

    #[test]
    fn partial_head_and_body() {
        let r = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
        let mut p = ResponseParser::new();
        assert_eq!(
            p.feed(&r[..10], false).unwrap(),
            Parsed::Partial { consumed: 0 }
        );
        let head_len = r.len() - 3;
        assert_eq!(
            p.feed(&r[..head_len + 1], false).unwrap(),
            Parsed::Partial {
                consumed: head_len + 1
            }
        );
        let (n, c) = done(p.feed(&r[head_len + 1..], false));
        assert_eq!(n, 2);
        assert_eq!(c.status, 404);
    }

    #[test]
    fn chunked_body() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let (n, c) = done(ResponseParser::new().feed(r, false));
        assert_eq!(n, r.len());
        assert!(c.keep_alive);
    }

    #[test]
    fn no_body_cases() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        let (n, _) = done(ResponseParser::new().feed(head, true));
        assert_eq!(n, head.len());
        for status in ["204 No Content", "304 Not Modified"] {
            let r = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            let (n, c) = done(ResponseParser::new().feed(r.as_bytes(), false));
            assert_eq!(n, r.len());
            assert!(c.keep_alive);
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        let (n, c) = done(ResponseParser::new().feed(r, false));
        assert_eq!(n, r.len());
        assert_eq!(c.status, 201);
    }

    #[test]
    fn until_close() {
        let mut p = ResponseParser::new();
        let r = b"HTTP/1.1 200 OK\r\n\r\nsome body";
        assert_eq!(
            p.feed(r, false).unwrap(),
            Parsed::Partial { consumed: r.len() }
        );
        let c = p.eof(0).unwrap();
        assert_eq!(c.status, 200);
        assert!(!c.keep_alive);
    }

    #[test]
    fn keep_alive_rules() {
        let r = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(!done(ResponseParser::new().feed(r, false)).1.keep_alive);
        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(!done(ResponseParser::new().feed(r, false)).1.keep_alive);
        let r = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        assert!(done(ResponseParser::new().feed(r, false)).1.keep_alive);
    }

    #[test]
    fn pipelined_responses() {
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut buf = Vec::new();
        for _ in 0..3 {
            buf.extend_from_slice(one);
        }
        let mut p = ResponseParser::new();
        let mut at = 0;
        for _ in 0..3 {
            let (n, _) = done(p.feed(&buf[at..], false));
            at += n;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"garbage\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(
                ResponseParser::new().feed(bad, false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b'a'; MAX_HEAD + 10];
        let mut h = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        h.extend_from_slice(&huge);
        assert_eq!(
            ResponseParser::new().feed(&h, false),
            Err(Malformed::HeadTooLarge)
        );
    }

    #[test]
    fn eof_classification() {
        let mut p = ResponseParser::new();
        assert_eq!(p.eof(0), Err(EofError::Closed));
        let mut p = ResponseParser::new();
        assert_eq!(p.eof(3), Err(EofError::Malformed(Malformed::Truncated)));
        let mut p = ResponseParser::new();
        p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false)
            .unwrap();
        assert_eq!(p.eof(0), Err(EofError::Malformed(Malformed::Truncated)));
    }
}
