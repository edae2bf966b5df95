//! One request on an HTTP/2 upstream connection, as the byte stream the
//! upstream exchange writes an HTTP/1.1 request to and reads an HTTP/1.1
//! response from.
//!
//! Writing: the request head is parsed (it is the stage loop's own, already
//! checked), `Host` becomes `:authority`, connection-specific fields are
//! dropped (`te: trailers` is kept, as gRPC needs it), and the body is
//! un-framed and sent as DATA, chunked trailers as a trailer section.
//! Reading: the response head is encoded as HTTP/1.1 (a body without
//! `content-length` is chunked, its trailers chunked trailers), then the
//! body as it arrives.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::BufResult;

use super::pool::StreamSlot;
use crate::net::h2::recv::Http1Reader;
use crate::net::h2::request::{field, BodyFraming};
use crate::net::h2::send::{
    broken, is_connection_specific, send_body, write_buf, writev_buf, TakeBytes, Unframe,
};
use crate::runtime::watchdog::TICK;

/// What the writing side hands the reading side.
#[derive(Default)]
struct Sent {
    response: Option<ResponseFuture>,
    head_request: bool,
}

enum Writing {
    /// Collecting the request head.
    Head(SendRequest<Bytes>, Vec<u8>),
    /// Sending the body.
    Body(SendStream<Bytes>, Unframe),
    /// The request is complete.
    Done,
}

enum Reading {
    Waiting,
    Body(Http1Reader),
}

pub struct H2Upstream {
    writing: Writing,
    reading: Reading,
    sent: Sent,
    https: bool,
    /// The route timeout, plus two watchdog ticks: the watchdog marks the
    /// exchange's deadline first, so a timeout still reads as one (504).
    timeout: Duration,
    _slot: StreamSlot,
}

impl H2Upstream {
    pub fn new(send: SendRequest<Bytes>, slot: StreamSlot, https: bool, timeout: Duration) -> Self {
        H2Upstream {
            writing: Writing::Head(send, Vec::with_capacity(512)),
            reading: Reading::Waiting,
            sent: Sent::default(),
            https,
            timeout: timeout + 2 * TICK,
            _slot: slot,
        }
    }

    /// Body bytes of the request: sent; the request is complete with the
    /// last of them.
    async fn body(&mut self, data: &[u8]) -> io::Result<()> {
        let Writing::Body(send, unframe) = &mut self.writing else {
            return Err(broken("no request body expected"));
        };
        if send_body(unframe, send, data, self.timeout).await? {
            self.writing = Writing::Done;
        }
        Ok(())
    }

    async fn try_head(&mut self) -> io::Result<()> {
        let Writing::Head(_, head) = &self.writing else {
            return Ok(());
        };
        let Some((request, framing, len)) = parse_request(head, self.https)? else {
            return Ok(());
        };
        let Writing::Head(send, head) = std::mem::replace(&mut self.writing, Writing::Done) else {
            unreachable!("checked above");
        };
        let head_request = request.method() == http::Method::HEAD;
        let send = monoio::time::timeout(self.timeout, send.ready())
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "HTTP/2 upstream: no stream free")
            })?
            .map_err(broken)?;
        let mut send = send;
        let (response, stream) = send
            .send_request(request, framing.is_none())
            .map_err(broken)?;
        self.sent = Sent {
            response: Some(response),
            head_request,
        };
        if let Some(unframe) = framing {
            self.writing = Writing::Body(stream, unframe);
            if head.len() > len {
                self.body(&head[len..]).await?;
            }
        }
        Ok(())
    }

    /// Wait for the response head (once) and set up its reader.
    async fn fill_head(&mut self) -> io::Result<()> {
        if let Reading::Waiting = self.reading {
            let (response, head_request) = (self.sent.response.take(), self.sent.head_request);
            let Some(response) = response else {
                return Err(broken("response read before the request was sent"));
            };
            let resp = monoio::time::timeout(self.timeout, response)
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "HTTP/2 upstream: no response")
                })?
                .map_err(|e| {
                    // REFUSED_STREAM: the peer did not process the request
                    // (RFC 9113 §8.7), e.g. a stream sent on a new connection
                    // before the peer's SETTINGS lowered its stream limit.
                    // Marked so that the exchange sends it again.
                    let kind = if e.reason() == Some(h2::Reason::REFUSED_STREAM) {
                        io::ErrorKind::ConnectionRefused
                    } else {
                        io::ErrorKind::ConnectionReset
                    };
                    io::Error::new(kind, e)
                })?;
            let (parts, body) = resp.into_parts();
            let mut head = Vec::with_capacity(256);
            let framing = response_head(&parts, body.is_end_stream(), head_request, &mut head);
            self.reading = Reading::Body(Http1Reader::new(head, framing, body, self.timeout));
        }
        Ok(())
    }
}

impl Drop for H2Upstream {
    fn drop(&mut self) {
        if let Writing::Body(send, _) = &mut self.writing {
            send.send_reset(h2::Reason::CANCEL);
        }
    }
}

/// The request at the start of `head`, once complete: the HTTP/2 request,
/// how its body is framed (`None`: no body), and the head's length.
type Parsed = (http::Request<()>, Option<Unframe>, usize);

fn parse_request(head: &[u8], https: bool) -> io::Result<Option<Parsed>> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    // The stage loop's heads hold at most `limits.max_headers` (≤ 1000)
    // fields: the usual few fit on the stack.
    let mut small = [httparse::EMPTY_HEADER; 64];
    let mut large = Vec::new();
    let mut req = httparse::Request::new(&mut small);
    let parsed = match req.parse(head) {
        Err(httparse::Error::TooManyHeaders) => {
            large.resize(1024, httparse::EMPTY_HEADER);
            req = httparse::Request::new(&mut large);
            req.parse(head)
        }
        other => other,
    };
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(format!("request head for HTTP/2: {e}"))),
    };
    let method = req.method.unwrap_or("GET");
    let path = req.path.unwrap_or("/");
    let mut authority = None;
    let mut framing = None;
    let mut headers = http::HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            authority = Some(h.value);
            continue;
        }
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            framing = Some(Unframe::chunked());
            continue;
        }
        if name.eq_ignore_ascii_case(b"te") {
            if h.value.eq_ignore_ascii_case(b"trailers") {
                headers.append(http::header::TE, http::HeaderValue::from_static("trailers"));
            }
            continue;
        }
        if is_connection_specific(name) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n: u64 = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| bad("bad content-length".into()))?;
            if n > 0 && framing.is_none() {
                framing = Some(Unframe::Length(n));
            }
        }
        let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(h.value),
        ) else {
            return Err(bad(format!("field {:?} not valid in HTTP/2", h.name)));
        };
        headers.append(n, v);
    }
    let authority = authority
        .and_then(|a| std::str::from_utf8(a).ok())
        .unwrap_or("localhost");
    let scheme = if https { "https" } else { "http" };
    let uri: http::Uri = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| bad(format!("request target for HTTP/2: {e}")))?;
    let mut request = http::Request::new(());
    *request.method_mut() =
        http::Method::from_bytes(method.as_bytes()).map_err(|e| bad(e.to_string()))?;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(Some((request, framing, len)))
}

/// The HTTP/1.1 head of an HTTP/2 response, appended to `out`; how the body
/// that follows is framed.
fn response_head(
    parts: &http::response::Parts,
    end_of_stream: bool,
    head_request: bool,
    out: &mut Vec<u8>,
) -> BodyFraming {
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_length = false;
    for (name, value) in &parts.headers {
        if *name == http::header::CONTENT_LENGTH {
            has_length = true;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let code = status.as_u16();
    let framing = if head_request || code < 200 || code == 204 || code == 304 {
        BodyFraming::None
    } else if end_of_stream {
        if !has_length {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        BodyFraming::None
    } else if has_length {
        BodyFraming::Length
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        BodyFraming::Chunked
    };
    out.extend_from_slice(b"\r\n");
    framing
}

impl TakeBytes for H2Upstream {
    /// Take the next bytes of the HTTP/1.1 request.
    async fn take_bytes(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.writing {
            Writing::Done => Err(broken("request already complete")),
            Writing::Body(..) => self.body(data).await,
            Writing::Head(_, head) => {
                head.extend_from_slice(data);
                self.try_head().await
            }
        }
    }
}

impl H2Upstream {
    /// The response reader, once the response head has come.
    async fn reader(&mut self) -> io::Result<&mut Http1Reader> {
        self.fill_head().await?;
        match &mut self.reading {
            Reading::Body(r) => Ok(r),
            Reading::Waiting => unreachable!("fill_head sets it"),
        }
    }

    pub async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self.reader().await {
            Ok(r) => r.read(buf).await,
            Err(e) => (Err(e), buf),
        }
    }

    pub async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self.reader().await {
            Ok(r) => r.readv(buf).await,
            Err(e) => (Err(e), buf),
        }
    }

    pub fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> + '_ {
        write_buf(self, buf)
    }

    pub fn writev<T: IoVecBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> + '_ {
        writev_buf(self, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_become_http2_requests() {
        let head = b"POST /v1/x?y=1 HTTP/1.1\r\nHost: api.internal\r\nConnection: keep-alive\r\nTE: trailers\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello";
        let (req, framing, len) = parse_request(head, false).unwrap().unwrap();
        assert_eq!(req.uri().to_string(), "http://api.internal/v1/x?y=1");
        assert_eq!(req.method(), http::Method::POST);
        assert!(req.headers().get("connection").is_none());
        assert_eq!(req.headers().get("te").unwrap(), "trailers");
        assert_eq!(req.headers().get("x-a").unwrap(), "1");
        assert!(matches!(framing, Some(Unframe::Length(5))));
        assert_eq!(&head[len..], b"hello");
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost: a", true)
            .unwrap()
            .is_none());
        let (req, framing, _) = parse_request(
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(req.uri().scheme_str(), Some("https"));
        assert!(matches!(framing, Some(Unframe::Chunked(..))));
    }

    #[test]
    fn responses_without_length_are_chunked() {
        let parts = |status: u16| {
            let (p, ()) = http::Response::builder()
                .status(status)
                .header("grpc-encoding", "identity")
                .body(())
                .unwrap()
                .into_parts();
            p
        };
        let mut out = Vec::new();
        assert_eq!(
            response_head(&parts(200), false, false, &mut out),
            BodyFraming::Chunked
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ngrpc-encoding: identity\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let mut out = Vec::new();
        assert_eq!(
            response_head(&parts(200), true, false, &mut out),
            BodyFraming::None
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("content-length: 0\r\n"));
        let mut out = Vec::new();
        assert_eq!(
            response_head(&parts(204), false, false, &mut out),
            BodyFraming::None
        );
    }
}
