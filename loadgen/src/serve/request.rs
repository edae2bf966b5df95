//! Reading requests on the `serve` side: an incremental parser over the
//! connection's read buffer, with the body discarded or (for `--echo`)
//! collected, from Content-Length or chunked framing.

use crate::fields::trim;
use thiserror::Error;

use crate::chunked::{ChunkError, ChunkedDecoder};

pub const MAX_HEAD: usize = 64 * 1024;
/// Largest body `--echo` keeps.
pub const MAX_ECHO_BODY: u64 = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BadRequest {
    #[error("invalid request head: {0}")]
    Head(httparse::Error),
    #[error("request head too large")]
    HeadTooLarge,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("unsupported Transfer-Encoding")]
    BadTransferEncoding,
    #[error("invalid chunked body: {0}")]
    Chunked(ChunkError),
    #[error("body too large to echo")]
    BodyTooLarge,
}

impl BadRequest {
    pub fn status(&self) -> u16 {
        match self {
            BadRequest::HeadTooLarge => 431,
            BadRequest::BodyTooLarge => 413,
            BadRequest::BadTransferEncoding => 501,
            _ => 400,
        }
    }
}

/// What the response needs to know about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestInfo {
    pub head: bool,
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Partial {
        consumed: usize,
    },
    Done {
        consumed: usize,
        request: RequestInfo,
    },
}

/// Where `--echo` puts what it copies from a request.
#[derive(Debug, Default)]
pub struct Echo {
    /// Header names to copy (lower case).
    pub names: Vec<String>,
    /// Copied header lines, `Name: value\r\n` each.
    pub headers: Vec<u8>,
    pub body: Vec<u8>,
}

impl Echo {
    pub fn clear(&mut self) {
        self.headers.clear();
        self.body.clear();
    }
}

#[derive(Debug)]
enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
}

#[derive(Debug)]
pub struct RequestParser {
    body: Option<Body>,
    pending: RequestInfo,
    /// The client asked for `100 Continue` and it has not been sent.
    pub wants_continue: bool,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    pub fn new() -> Self {
        RequestParser {
            body: None,
            pending: RequestInfo {
                head: false,
                keep_alive: true,
            },
            wants_continue: false,
        }
    }

    /// Parse from `buf` (unconsumed bytes), copying into `echo` when given.
    pub fn feed(&mut self, buf: &[u8], mut echo: Option<&mut Echo>) -> Result<Parsed, BadRequest> {
        let mut consumed = 0;
        loop {
            match &mut self.body {
                None => {
                    let rest = &buf[consumed..];
                    if rest.is_empty() {
                        return Ok(Parsed::Partial { consumed });
                    }
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut req = httparse::Request::new(&mut headers);
                    let len = match req.parse(rest) {
                        Ok(httparse::Status::Partial) => {
                            if rest.len() > MAX_HEAD {
                                return Err(BadRequest::HeadTooLarge);
                            }
                            return Ok(Parsed::Partial { consumed });
                        }
                        Ok(httparse::Status::Complete(n)) => n,
                        Err(httparse::Error::TooManyHeaders) => {
                            return Err(BadRequest::HeadTooLarge)
                        }
                        Err(e) => return Err(BadRequest::Head(e)),
                    };
                    consumed += len;
                    let http11 = req.version == Some(1);
                    let mut close = false;
                    let mut keep_alive_token = false;
                    let mut length: Option<u64> = None;
                    let mut chunked = None;
                    let mut expect_continue = false;
                    for h in req.headers.iter() {
                        let name = h.name;
                        if name.eq_ignore_ascii_case("content-length") {
                            let v = parse_length(h.value)?;
                            if length.is_some_and(|old| old != v) {
                                return Err(BadRequest::BadContentLength);
                            }
                            length = Some(v);
                        } else if name.eq_ignore_ascii_case("transfer-encoding") {
                            let last = h.value.rsplit(|&b| b == b',').next().map(trim);
                            chunked =
                                Some(last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")));
                        } else if name.eq_ignore_ascii_case("connection") {
                            for t in h.value.split(|&b| b == b',').map(trim) {
                                close |= t.eq_ignore_ascii_case(b"close");
                                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
                            }
                        } else if name.eq_ignore_ascii_case("expect") {
                            expect_continue = trim(h.value).eq_ignore_ascii_case(b"100-continue");
                        }
                        if let Some(e) = echo.as_deref_mut() {
                            if e.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                                e.headers.extend_from_slice(name.as_bytes());
                                e.headers.extend_from_slice(b": ");
                                e.headers.extend_from_slice(h.value);
                                e.headers.extend_from_slice(b"\r\n");
                            }
                        }
                    }
                    let info = RequestInfo {
                        head: req.method == Some("HEAD"),
                        keep_alive: if http11 {
                            !close
                        } else {
                            keep_alive_token && !close
                        },
                    };
                    let body = match (chunked, length) {
                        (Some(_), Some(_)) | (Some(false), None) => {
                            return Err(BadRequest::BadTransferEncoding)
                        }
                        (Some(true), None) => Some(Body::Chunked(ChunkedDecoder::new())),
                        (None, Some(0)) | (None, None) => None,
                        (None, Some(n)) => {
                            if echo.is_some() && n > MAX_ECHO_BODY {
                                return Err(BadRequest::BodyTooLarge);
                            }
                            Some(Body::Length(n))
                        }
                    };
                    match body {
                        None => {
                            return Ok(Parsed::Done {
                                consumed,
                                request: info,
                            })
                        }
                        Some(b) => {
                            self.wants_continue = expect_continue && http11;
                            self.pending = info;
                            self.body = Some(b);
                        }
                    }
                }
                Some(Body::Length(remaining)) => {
                    let take = ((buf.len() - consumed) as u64).min(*remaining) as usize;
                    if let Some(e) = echo.as_deref_mut() {
                        e.body.extend_from_slice(&buf[consumed..consumed + take]);
                    }
                    consumed += take;
                    *remaining -= take as u64;
                    if *remaining > 0 {
                        return Ok(Parsed::Partial { consumed });
                    }
                    return Ok(self.finish(consumed));
                }
                Some(Body::Chunked(decoder)) => {
                    let sink = echo.as_deref_mut().map(|e| &mut e.body);
                    let (n, done) = decoder
                        .feed(&buf[consumed..], sink)
                        .map_err(BadRequest::Chunked)?;
                    consumed += n;
                    if echo
                        .as_ref()
                        .is_some_and(|e| e.body.len() as u64 > MAX_ECHO_BODY)
                    {
                        return Err(BadRequest::BodyTooLarge);
                    }
                    if !done {
                        return Ok(Parsed::Partial { consumed });
                    }
                    return Ok(self.finish(consumed));
                }
            }
        }
    }

    fn finish(&mut self, consumed: usize) -> Parsed {
        self.body = None;
        self.wants_continue = false;
        Parsed::Done {
            consumed,
            request: self.pending,
        }
    }
}

fn parse_length(v: &[u8]) -> Result<u64, BadRequest> {
    crate::fields::content_length(v).ok_or(BadRequest::BadContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(p: Result<Parsed, BadRequest>) -> (usize, RequestInfo) {
        match p.unwrap() {
            Parsed::Done { consumed, request } => (consumed, request),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn get_without_body() {
        let r = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET";
        let (n, info) = done(RequestParser::new().feed(r, None));
        assert_eq!(n, r.len() - 3);
        assert!(info.keep_alive);
        assert!(!info.head);
    }

    #[test]
    fn content_length_body_is_echoed() {
        let r =
            b"POST / HTTP/1.1\r\nContent-Type: a/b\r\nX-Other: 1\r\nContent-Length: 5\r\n\r\nhello";
        let mut echo = Echo {
            names: vec!["content-type".into()],
            ..Echo::default()
        };
        let mut p = RequestParser::new();
        assert_eq!(
            p.feed(&r[..r.len() - 2], Some(&mut echo)).unwrap(),
            Parsed::Partial {
                consumed: r.len() - 2
            }
        );
        let (n, _) = done(p.feed(&r[r.len() - 2..], Some(&mut echo)));
        assert_eq!(n, 2);
        assert_eq!(echo.body, b"hello");
        assert_eq!(echo.headers, b"Content-Type: a/b\r\n");
    }

    #[test]
    fn chunked_body_is_echoed() {
        let r = b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut echo = Echo::default();
        let (n, _) = done(RequestParser::new().feed(r, Some(&mut echo)));
        assert_eq!(n, r.len());
        assert_eq!(echo.body, b"abcde");
    }

    #[test]
    fn keep_alive_and_head() {
        let (_, i) = done(RequestParser::new().feed(b"HEAD / HTTP/1.0\r\n\r\n", None));
        assert!(i.head);
        assert!(!i.keep_alive);
        let (_, i) = done(
            RequestParser::new().feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", None),
        );
        assert!(i.keep_alive);
        let (_, i) =
            done(RequestParser::new().feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", None));
        assert!(!i.keep_alive);
    }

    #[test]
    fn expect_continue() {
        let mut p = RequestParser::new();
        let r = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(p.feed(r, None).unwrap(), Parsed::Partial { .. }));
        assert!(p.wants_continue);
        done(p.feed(b"ok", None));
        assert!(!p.wants_continue);
    }

    #[test]
    fn bad_requests() {
        for (bad, status) in [
            (&b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"[..], 400),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
                501,
            ),
            (b"\x01\x02 garbage\r\n\r\n", 400),
        ] {
            let err = RequestParser::new().feed(bad, None).unwrap_err();
            assert_eq!(err.status(), status, "{err}");
        }
        let mut echo = Echo::default();
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_ECHO_BODY + 1
        );
        assert_eq!(
            RequestParser::new().feed(big.as_bytes(), Some(&mut echo)),
            Err(BadRequest::BodyTooLarge)
        );
    }
}
