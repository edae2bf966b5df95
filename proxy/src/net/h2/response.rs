//! The write side of a stream bridge: the HTTP/1.1 response the stage loop
//! writes, sent as an HTTP/2 response.
//!
//! The head is parsed with the same strict parser as upstream responses;
//! 1xx heads are dropped (the client gets the final response only);
//! connection-specific fields (`connection` and the fields it names,
//! `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`, `te`)
//! are removed (RFC 9113 §8.2.2). The body is un-framed (content-length
//! counted, chunked decoded) and sent as DATA within the stream's flow
//! control window: a write waits for window, so a client that does not read
//! holds the stage loop back exactly as a full socket would, for at most
//! the write timeout (`limits.idle_timeout`, as for HTTP/1.1 clients), after
//! which the stream is reset.
//!
//! The stream's sending half is shared (`Rc<RefCell<_>>`, borrowed only
//! inside a poll) with a [`ResetWatch`], so the connection task notices a
//! client's RST_STREAM while the stage loop still waits for the upstream.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::SendStream;

use crate::http::chunked::ChunkedDecoder;
use crate::http::head::HeadLimits;
use crate::http::response::{parse_response_head, ResponseFraming, ResponseHead};

/// Limits for heads the stage loop itself writes (generous: they are ours).
const OWN_HEAD_LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 64 * 1024,
    max_headers: 512,
};

enum Body {
    Length(u64),
    /// The decoder, and the framing bytes read since the last payload
    /// byte (at the end: the last chunk and the trailer section).
    Chunked(ChunkedDecoder, Vec<u8>),
    UntilClose,
}

enum State {
    /// Collecting the response head.
    Head(SendResponse<Bytes>),
    /// Sending the body.
    Body(SendStream<Bytes>, Body),
    /// END_STREAM sent (or the stream was reset).
    Done,
}

pub struct ResponseWriter {
    state: Rc<RefCell<State>>,
    /// Longest wait for send window.
    write_timeout: Duration,
    /// Head bytes collected so far.
    pending: Vec<u8>,
    request_was_head: bool,
    head: ResponseHead,
}

fn broken(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("HTTP/2 stream: {why}"))
}

impl ResponseWriter {
    pub fn new(
        respond: SendResponse<Bytes>,
        request_was_head: bool,
        write_timeout: Duration,
    ) -> Self {
        ResponseWriter {
            state: Rc::new(RefCell::new(State::Head(respond))),
            write_timeout,
            pending: Vec::new(),
            request_was_head,
            head: ResponseHead::default(),
        }
    }

    /// Take all of `data` (the stage loop's next bytes of the response).
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let phase = match &*self.state.borrow() {
            State::Done => None,
            State::Body(..) => Some(false),
            State::Head(_) => Some(true),
        };
        match phase {
            None => Err(broken("response already complete")),
            Some(false) => self.body(data).await,
            Some(true) => {
                self.pending.extend_from_slice(data);
                self.try_head().await
            }
        }
    }

    /// A watch on the client resetting this stream.
    pub fn reset_watch(&self) -> ResetWatch {
        ResetWatch(self.state.clone())
    }

    /// Parse the collected head; send it when complete (then any body bytes
    /// that came with it).
    async fn try_head(&mut self) -> io::Result<()> {
        loop {
            let complete = parse_response_head(
                &self.pending,
                &OWN_HEAD_LIMITS,
                self.request_was_head,
                &mut self.head,
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if !complete {
                return Ok(());
            }
            let len = self.head.head_len;
            if (100..200).contains(&self.head.status) {
                self.pending.drain(..len);
                continue;
            }
            let response = self.response()?;
            let body = match self.head.framing {
                ResponseFraming::None | ResponseFraming::Length(0) => None,
                ResponseFraming::Length(n) => Some(Body::Length(n)),
                ResponseFraming::Chunked => Some(Body::Chunked(ChunkedDecoder::new(), Vec::new())),
                ResponseFraming::UntilClose => Some(Body::UntilClose),
            };
            let State::Head(mut respond) = self.state.replace(State::Done) else {
                unreachable!("try_head runs in the Head state");
            };
            let send = respond
                .send_response(response, body.is_none())
                .map_err(broken)?;
            let rest = self.pending.split_off(len);
            self.pending = Vec::new();
            if let Some(body) = body {
                *self.state.borrow_mut() = State::Body(send, body);
                if !rest.is_empty() {
                    self.body(&rest).await?;
                }
            }
            return Ok(());
        }
    }

    /// The parsed head as an HTTP/2 response.
    fn response(&self) -> io::Result<http::Response<()>> {
        let buf = &self.pending;
        let mut resp = http::Response::new(());
        *resp.status_mut() = http::StatusCode::from_u16(self.head.status)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let listed = |name: &[u8]| {
            self.head
                .conn_tokens
                .iter()
                .any(|t| buf[t.range()].eq_ignore_ascii_case(name))
        };
        let headers = resp.headers_mut();
        for h in &self.head.headers {
            let name = &buf[h.name.range()];
            if is_connection_specific(name) || listed(name) {
                continue;
            }
            let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(&buf[h.value.range()]),
            ) else {
                continue;
            };
            headers.append(n, v);
        }
        Ok(resp)
    }

    /// Body bytes: un-framed and sent; chunked trailers become an HTTP/2
    /// trailer section.
    async fn body(&mut self, mut data: &[u8]) -> io::Result<()> {
        loop {
            // What to send now, decided under a short borrow.
            let (payload, last, consumed, trailers) = {
                let mut st = self.state.borrow_mut();
                let State::Body(_, body) = &mut *st else {
                    return Err(broken("no response body expected"));
                };
                match body {
                    Body::UntilClose => (0..data.len(), false, data.len(), None),
                    Body::Length(left) => {
                        let n = (*left).min(data.len() as u64) as usize;
                        *left -= n as u64;
                        (0..n, *left == 0, data.len(), None)
                    }
                    Body::Chunked(dec, tail) => {
                        let p = dec.decode(data).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, e.to_string())
                        })?;
                        if p.data.is_empty() {
                            tail.extend_from_slice(&data[..p.consumed]);
                        } else {
                            tail.clear();
                            tail.extend_from_slice(&data[p.data.end..p.consumed]);
                        }
                        let trailers = if p.done { trailer_fields(tail) } else { None };
                        (p.data, p.done, p.consumed, trailers)
                    }
                }
            };
            match trailers {
                Some(t) => {
                    self.send_data(&data[payload], false).await?;
                    let mut t = Some(t);
                    self.with_send(&mut |s| {
                        s.send_trailers(t.take().unwrap_or_default())
                            .map_err(broken)
                    })?;
                }
                None if !payload.is_empty() || last => {
                    self.send_data(&data[payload], last).await?;
                }
                None => {}
            }
            if last {
                *self.state.borrow_mut() = State::Done;
                return Ok(());
            }
            data = &data[consumed..];
            if data.is_empty() || consumed == 0 {
                return Ok(());
            }
        }
    }

    /// Run `f` on the stream's sending half.
    fn with_send(
        &self,
        f: &mut dyn FnMut(&mut SendStream<Bytes>) -> io::Result<()>,
    ) -> io::Result<()> {
        match &mut *self.state.borrow_mut() {
            State::Body(send, _) => f(send),
            _ => Err(broken("stream gone")),
        }
    }

    /// Send `data` within the stream's flow-control window (waiting at most
    /// the write timeout for window), END_STREAM with the last of it when
    /// `last`.
    async fn send_data(&self, mut data: &[u8], last: bool) -> io::Result<()> {
        let state = &self.state;
        let with_send =
            |f: &mut dyn FnMut(&mut SendStream<Bytes>) -> io::Result<()>| match &mut *state
                .borrow_mut()
            {
                State::Body(send, _) => f(send),
                _ => Err(broken("stream gone")),
            };
        if data.is_empty() {
            return if last {
                with_send(&mut |s| s.send_data(Bytes::new(), true).map_err(broken))
            } else {
                Ok(())
            };
        }
        while !data.is_empty() {
            let want = data.len();
            with_send(&mut |s| {
                s.reserve_capacity(want);
                Ok(())
            })?;
            let window = poll_fn(|cx| match &mut *state.borrow_mut() {
                State::Body(send, _) => send.poll_capacity(cx),
                _ => Poll::Ready(None),
            });
            let cap = match monoio::time::timeout(self.write_timeout, window).await {
                Err(_) => {
                    with_send(&mut |s| {
                        s.send_reset(h2::Reason::CANCEL);
                        Ok(())
                    })?;
                    *state.borrow_mut() = State::Done;
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "HTTP/2 stream: no send window within the write timeout",
                    ));
                }
                Ok(Some(Ok(c))) => c,
                Ok(Some(Err(e))) => return Err(broken(e)),
                Ok(None) => return Err(broken("stream closed")),
            };
            if cap == 0 {
                continue;
            }
            let n = cap.min(data.len());
            let end = last && n == data.len();
            let chunk = Bytes::copy_from_slice(&data[..n]);
            let mut chunk = Some(chunk);
            with_send(&mut |s| {
                s.send_data(chunk.take().unwrap_or_default(), end)
                    .map_err(broken)
            })?;
            data = &data[n..];
        }
        Ok(())
    }

    /// The stage loop closes its side: a body that runs to the close ends
    /// here; an incomplete response resets the stream.
    pub fn finish(&mut self) {
        match self.state.replace(State::Done) {
            State::Done => {}
            State::Body(mut send, Body::UntilClose) => {
                let _ = send.send_data(Bytes::new(), true);
            }
            State::Body(mut send, _) => send.send_reset(h2::Reason::INTERNAL_ERROR),
            State::Head(mut respond) => respond.send_reset(h2::Reason::INTERNAL_ERROR),
        }
    }
}

impl Drop for ResponseWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Resolves when the client resets the stream before the response is
/// complete (never after).
pub struct ResetWatch(Rc<RefCell<State>>);

impl ResetWatch {
    pub async fn reset(&self) -> h2::Reason {
        poll_fn(|cx| {
            let polled = match &mut *self.0.borrow_mut() {
                State::Head(respond) => respond.poll_reset(cx),
                State::Body(send, _) => send.poll_reset(cx),
                State::Done => return Poll::Pending,
            };
            match polled {
                Poll::Ready(Ok(reason)) => Poll::Ready(reason),
                Poll::Ready(Err(_)) => Poll::Ready(h2::Reason::CANCEL),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// The trailer fields at the end of a chunked body (`tail`: the framing
/// after the last payload byte: CRLF, the last-chunk line, the trailer
/// section). `None` when there are none. Fields HTTP/2 forbids, and
/// framing fields, are left out.
fn trailer_fields(tail: &[u8]) -> Option<http::HeaderMap> {
    let rest = tail.strip_prefix(b"\r\n").unwrap_or(tail);
    let line_end = memchr::memmem::find(rest, b"\r\n")?;
    let section = &rest[line_end + 2..];
    if section == b"\r\n" {
        return None;
    }
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let httparse::Status::Complete((_, fields)) =
        httparse::parse_headers(section, &mut storage).ok()?
    else {
        return None;
    };
    let mut map = http::HeaderMap::new();
    for f in fields {
        let name = f.name.as_bytes();
        if is_connection_specific(name)
            || name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"trailer")
        {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(f.value),
        ) {
            map.append(n, v);
        }
    }
    (!map.is_empty()).then_some(map)
}

/// Fields HTTP/2 forbids in a response (RFC 9113 §8.2.2).
fn is_connection_specific(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"te",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn trailers_after_the_last_chunk() {
        let t = super::trailer_fields(b"\r\n0\r\ngrpc-status: 0\r\nX-Sum: abc\r\n\r\n").unwrap();
        assert_eq!(t.get("grpc-status").unwrap(), "0");
        assert_eq!(t.get("x-sum").unwrap(), "abc");
        assert!(super::trailer_fields(b"0;ext=1\r\n\r\n").is_none());
        assert!(super::trailer_fields(b"\r\n0\r\n\r\n").is_none());
        let t = super::trailer_fields(b"0\r\nconnection: x\r\nok: 1\r\n\r\n").unwrap();
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn connection_specific_fields() {
        for n in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "TE",
            "upgrade",
        ] {
            assert!(super::is_connection_specific(n.as_bytes()), "{n}");
        }
        for n in ["content-length", "x-te", "server"] {
            assert!(!super::is_connection_specific(n.as_bytes()), "{n}");
        }
    }
}
