//! The write side of a stream bridge: the HTTP/1.1 response the stage loop
//! writes, sent as an HTTP/2 response.
//!
//! The head (the stage loop's own output, so its structure is all that is
//! checked: `parse_own_response_head`) is sent as HEADERS; 1xx heads are
//! dropped (the client gets the final response only);
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

use super::send::{broken, end_stream, is_connection_specific, send_body, TakeBytes, Unframe};

use crate::http::response::{parse_own_response_head, ResponseFraming, ResponseHead};
use crate::http::rewrite::{connection_field, response_fields, status_line_len, ResponseInfo};

/// Longest head the stage loop itself writes (generous: they are ours).
const OWN_HEAD_MAX: usize = 64 * 1024;

enum State {
    /// Collecting the response head.
    Head(SendResponse<Bytes>),
    /// Sending the body.
    Body(SendStream<Bytes>, Unframe),
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
            // Used only for heads the stage loop writes as bytes (its own
            // answers): most streams start from fields and never need it.
            head: ResponseHead::default(),
        }
    }

    /// Take all of `data` (the stage loop's next bytes of the response).
    async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let phase = match &*self.state.borrow() {
            State::Done => None,
            State::Body(..) => Some(false),
            State::Head(_) => Some(true),
        };
        match phase {
            None => Err(broken("response already complete")),
            Some(false) => self.body(data).await,
            // The whole head usually comes in one write: parsed in place.
            Some(true) if self.pending.is_empty() => self.head_from(data).await,
            Some(true) => {
                let mut buf = std::mem::take(&mut self.pending);
                buf.extend_from_slice(data);
                self.head_from(&buf).await
            }
        }
    }

    /// Start the response from the upstream's final head (`buf` holds it),
    /// sent as HEADERS with the fields [`response_fields`] gives for `info`
    /// (connection-specific ones left out), with no HTTP/1.1 head written
    /// and parsed again. The body bytes the stage loop writes next are
    /// framed as the upstream framed them (`head.framing`). Returns the
    /// length the HTTP/1.1 head would have had (counted as bytes sent, as
    /// for the bytes path). Not for 1xx heads, upgrades, or compressed or
    /// de-chunked bodies (their heads differ from the upstream's framing).
    pub fn start_from_upstream(
        &mut self,
        buf: &[u8],
        head: &ResponseHead,
        info: &ResponseInfo<'_>,
    ) -> io::Result<usize> {
        debug_assert!(head.status >= 200 && info.compress.is_none() && !info.dechunk);
        if !matches!(&*self.state.borrow(), State::Head(_)) || !self.pending.is_empty() {
            return Err(broken("response already started"));
        }
        let mut resp = http::Response::new(());
        *resp.status_mut() = http::StatusCode::from_u16(head.status)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // One copy of the head; each value of it is a slice (no copy and
        // no allocation per value). An edit's value is copied.
        let shared = Bytes::copy_from_slice(&buf[..head.head_len]);
        let within = buf[..head.head_len].as_ptr_range();
        let headers = resp.headers_mut();
        headers.reserve(head.headers.len());
        let mut h1_len = status_line_len(buf, head) + 2;
        response_fields(buf, head, info, |name, value| {
            h1_len += name.len() + value.len() + 4;
            if is_connection_specific(name) {
                return;
            }
            let value = if within.contains(&value.as_ptr()) {
                let at = value.as_ptr() as usize - within.start as usize;
                http::HeaderValue::from_maybe_shared(shared.slice(at..at + value.len()))
            } else {
                http::HeaderValue::from_bytes(value)
            };
            if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name), value) {
                headers.append(n, v);
            }
        });
        if let Some((name, value)) = connection_field(info) {
            h1_len += name.len() + value.len() + 4;
        }
        // The upstream's head was parsed knowing the request was HEAD: its
        // framing already says "no body" then.
        self.send_head(resp, head.framing)?;
        Ok(h1_len)
    }

    /// Send the final head (in the Head state) as HEADERS; the body bytes
    /// that follow are framed as `framing` says (none: END_STREAM now).
    fn send_head(&mut self, resp: http::Response<()>, framing: ResponseFraming) -> io::Result<()> {
        let body = match framing {
            ResponseFraming::None | ResponseFraming::Length(0) => None,
            ResponseFraming::Length(n) => Some(Unframe::Length(n)),
            ResponseFraming::Chunked => Some(Unframe::chunked()),
            ResponseFraming::UntilClose => Some(Unframe::UntilClose),
        };
        let State::Head(mut respond) = self.state.replace(State::Done) else {
            unreachable!("a head is sent in the Head state only");
        };
        let send = respond
            .send_response(resp, body.is_none())
            .map_err(broken)?;
        if let Some(body) = body {
            *self.state.borrow_mut() = State::Body(send, body);
        }
        Ok(())
    }

    /// A watch on the client resetting this stream.
    pub fn reset_watch(&self) -> ResetWatch {
        ResetWatch(self.state.clone())
    }

    /// Parse the head at the start of `buf` (1xx heads are dropped); send
    /// the final one, then any body bytes that came with it. An incomplete
    /// head waits in `pending` for the next write.
    async fn head_from(&mut self, mut buf: &[u8]) -> io::Result<()> {
        loop {
            let complete =
                parse_own_response_head(buf, OWN_HEAD_MAX, self.request_was_head, &mut self.head)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if !complete {
                self.pending.extend_from_slice(buf);
                return Ok(());
            }
            let len = self.head.head_len;
            if (100..200).contains(&self.head.status) {
                buf = &buf[len..];
                continue;
            }
            let response = self.response(buf)?;
            self.send_head(response, self.head.framing)?;
            if matches!(&*self.state.borrow(), State::Body(..)) {
                let rest = &buf[len..];
                if !rest.is_empty() {
                    self.body(rest).await?;
                }
            }
            return Ok(());
        }
    }

    /// The parsed head (in `buf`) as an HTTP/2 response.
    fn response(&self, buf: &[u8]) -> io::Result<http::Response<()>> {
        let mut resp = http::Response::new(());
        *resp.status_mut() = http::StatusCode::from_u16(self.head.status)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let listed = |name: &[u8]| {
            self.head
                .conn_tokens
                .iter()
                .any(|t| buf[t.range()].eq_ignore_ascii_case(name))
        };
        // One copy of the head; each value is a slice of it (no copy and
        // no allocation per value).
        let shared = Bytes::copy_from_slice(&buf[..self.head.head_len]);
        let headers = resp.headers_mut();
        headers.reserve(self.head.headers.len());
        for h in &self.head.headers {
            let name = &buf[h.name.range()];
            if is_connection_specific(name) || listed(name) {
                continue;
            }
            let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_maybe_shared(shared.slice(h.value.range())),
            ) else {
                continue;
            };
            headers.append(n, v);
        }
        Ok(resp)
    }

    /// Body bytes: un-framed and sent. The sending half is taken out of
    /// the shared state meanwhile (a reset then shows as a failed send).
    async fn body(&mut self, data: &[u8]) -> io::Result<()> {
        let State::Body(mut send, mut unframe) = self.state.replace(State::Done) else {
            return Err(broken("no response body expected"));
        };
        match send_body(&mut unframe, &mut send, data, self.write_timeout).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                *self.state.borrow_mut() = State::Body(send, unframe);
                Ok(())
            }
            Err(e) => {
                send.send_reset(h2::Reason::CANCEL);
                Err(e)
            }
        }
    }

    /// The stage loop closes its side: a body that runs to the close ends
    /// here; an incomplete response resets the stream.
    pub fn finish(&mut self) {
        match self.state.replace(State::Done) {
            State::Done => {}
            State::Body(mut send, Unframe::UntilClose) => {
                let _ = end_stream(&mut send);
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

impl TakeBytes for ResponseWriter {
    async fn take_bytes(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data).await
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
