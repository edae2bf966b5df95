//! Body framing state for both directions, and the loops that stream a body
//! through a fixed-size buffer (memory per connection stays bounded whatever
//! the body size).
//!
//! Chunked bodies are passed through unchanged (the decoder only finds where
//! they end and checks them) except when the client speaks HTTP/1.0: then the
//! response is de-chunked and ends with the connection.

use crate::error::{request_chunk_error, response_chunk_error, ErrorKind, ProxyError};
use crate::http::{BodyFraming, ChunkedDecoder, ResponseFraming};

#[derive(Debug)]
enum State {
    Done,
    Length { remaining: u64 },
    Chunked { decoder: ChunkedDecoder },
    UntilClose,
}

/// Where a message body ends, tracked as its bytes go by.
#[derive(Debug)]
pub struct BodyFrame {
    state: State,
    /// Payload bytes seen (decoded size for chunked).
    payload: u64,
    /// Largest payload accepted (`BodyTooLarge` above).
    max_payload: Option<u64>,
    /// Errors are the client's (request) or the upstream's (response).
    request: bool,
    /// When asked for: the framing bytes after the last payload byte (at
    /// the end of a chunked body, the last chunk and its trailer section).
    tail: Option<Vec<u8>>,
}

impl BodyFrame {
    pub fn request(framing: BodyFraming, max_payload: Option<u64>) -> Self {
        let state = match framing {
            BodyFraming::None => State::Done,
            BodyFraming::Length(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::Chunked {
                decoder: ChunkedDecoder::new(),
            },
        };
        BodyFrame {
            state,
            payload: 0,
            max_payload,
            request: true,
            tail: None,
        }
    }

    pub fn response(framing: ResponseFraming) -> Self {
        let state = match framing {
            ResponseFraming::None => State::Done,
            ResponseFraming::Length(n) => State::Length { remaining: n },
            ResponseFraming::Chunked => State::Chunked {
                decoder: ChunkedDecoder::new(),
            },
            ResponseFraming::UntilClose => State::UntilClose,
        };
        BodyFrame {
            state,
            payload: 0,
            max_payload: None,
            request: false,
            tail: None,
        }
    }

    /// Keep a chunked body's trailer section for [`BodyFrame::trailers`].
    pub fn keep_trailers(&mut self) {
        self.tail = Some(Vec::new());
    }

    /// The trailer section of a chunked body that has ended (kept when
    /// asked for), as the bytes after its last payload byte.
    pub fn trailers(&self) -> Option<&[u8]> {
        self.tail.as_deref().filter(|_| self.is_done())
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    pub fn is_until_close(&self) -> bool {
        matches!(self.state, State::UntilClose)
    }

    /// Whether more than `n` payload bytes are (likely) still to come: the
    /// rest of a Content-Length body, or — when the length is not known — a
    /// body that has already carried more than `n`.
    pub fn expects_more_than(&self, n: u64) -> bool {
        match &self.state {
            State::Done => false,
            State::Length { remaining } => *remaining > n,
            State::UntilClose | State::Chunked { .. } => self.payload > n,
        }
    }

    /// The payload bytes still to come of a Content-Length body (`None`
    /// for other framings; 0 once it has ended).
    pub fn length_remaining(&self) -> Option<u64> {
        match &self.state {
            State::Length { remaining } => Some(*remaining),
            State::Done => Some(0),
            State::UntilClose | State::Chunked { .. } => None,
        }
    }

    /// `n` bytes of a Content-Length body went by without passing through
    /// [`BodyFrame::advance`] (spliced, `pipeline::splice`).
    pub fn skip(&mut self, n: u64) {
        if let State::Length { remaining } = &mut self.state {
            let n = n.min(*remaining);
            *remaining -= n;
            self.payload += n;
            if *remaining == 0 {
                self.state = State::Done;
            }
        }
    }

    /// Payload bytes seen so far.
    pub fn payload(&self) -> u64 {
        self.payload
    }

    /// The peer closed: the end of an until-close body, an error otherwise.
    pub fn on_eof(&mut self) -> Result<(), ProxyError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ if self.request => Err(ProxyError::new(ErrorKind::ClientClosed)),
            _ => Err(ProxyError::new(ErrorKind::UpstreamClosed)),
        }
    }

    /// How many leading bytes of `input` belong to the body (to be forwarded
    /// as they are). When `dechunk` is given, the payload bytes are also
    /// appended to it (for forwarding without the chunked framing).
    pub fn advance(
        &mut self,
        input: &[u8],
        mut dechunk: Option<&mut Vec<u8>>,
    ) -> Result<usize, ProxyError> {
        match &mut self.state {
            State::Done => Ok(0),
            State::Length { remaining } => {
                let n = (*remaining).min(input.len() as u64);
                *remaining -= n;
                self.payload += n;
                if *remaining == 0 {
                    self.state = State::Done;
                }
                if let Some(out) = dechunk {
                    out.extend_from_slice(&input[..n as usize]);
                }
                Ok(n as usize)
            }
            State::UntilClose => {
                self.payload += input.len() as u64;
                if let Some(out) = dechunk {
                    out.extend_from_slice(input);
                }
                Ok(input.len())
            }
            State::Chunked { decoder } => {
                let mut off = 0;
                let mut done = false;
                while off < input.len() {
                    let p = decoder.decode(&input[off..]).map_err(|e| {
                        if self.request {
                            request_chunk_error(e)
                        } else {
                            response_chunk_error(e)
                        }
                    })?;
                    let data = (off + p.data.start)..(off + p.data.end);
                    if let Some(tail) = self.tail.as_mut() {
                        if data.is_empty() {
                            tail.extend_from_slice(&input[off..off + p.consumed]);
                        } else {
                            tail.clear();
                            tail.extend_from_slice(&input[data.end..off + p.consumed]);
                        }
                    }
                    self.payload += data.len() as u64;
                    if let Some(out) = dechunk.as_deref_mut() {
                        out.extend_from_slice(&input[data]);
                    }
                    off += p.consumed;
                    if p.done {
                        done = true;
                        break;
                    }
                    if p.consumed == 0 {
                        break;
                    }
                }
                if let Some(max) = self.max_payload {
                    if self.payload > max {
                        return Err(ProxyError::new(ErrorKind::BodyTooLarge));
                    }
                }
                if done {
                    self.state = State::Done;
                }
                Ok(off)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_kept_when_asked_for() {
        let mut b = BodyFrame::response(ResponseFraming::Chunked);
        b.keep_trailers();
        let body = b"5\r\nhello\r\n0\r\ngrpc-status: 14\r\n\r\n";
        // In two pieces, split inside the trailer section.
        let n = b.advance(&body[..20], None).unwrap();
        assert!(b.trailers().is_none());
        b.advance(&body[n..], None).unwrap();
        let t = b.trailers().unwrap();
        let fields = crate::net::h2::send::trailer_fields(t).unwrap();
        assert_eq!(fields.get("grpc-status").unwrap(), "14");
    }

    #[test]
    fn expects_more_than() {
        let mut b = BodyFrame::response(ResponseFraming::Length(100_000));
        assert!(b.expects_more_than(16_384));
        let input = vec![0u8; 90_000];
        assert_eq!(b.advance(&input, None).unwrap(), 90_000);
        assert!(!b.expects_more_than(16_384));
        assert!(b.expects_more_than(9_999));
        assert_eq!(b.advance(&input, None).unwrap(), 10_000);
        assert!(!b.expects_more_than(0));
        // Unknown length: decided by what went by so far.
        let mut u = BodyFrame::response(ResponseFraming::UntilClose);
        assert!(!u.expects_more_than(16_384));
        u.advance(&input[..20_000], None).unwrap();
        assert!(u.expects_more_than(16_384));
    }
}
