//! Sending an HTTP/1.1 body on an HTTP/2 stream: the body is un-framed
//! (`content-length` counted, chunked decoded, a close-delimited body
//! passed as it comes), its chunked trailers become a trailer section, and
//! DATA is sent within the stream's flow-control window, waiting at most a
//! timeout for window. Used for responses to HTTP/2 clients and for
//! requests to HTTP/2 upstreams.

use std::future::poll_fn;
use std::io;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use h2::SendStream;
use monoio::buf::{IoBuf, IoVecBuf};
use monoio::BufResult;

use crate::http::chunked::ChunkedDecoder;

/// How the HTTP/1.1 body being sent is framed.
pub enum Unframe {
    /// This many bytes are left.
    Length(u64),
    /// The decoder, and the framing bytes read since the last payload
    /// byte (at the end: the last chunk and the trailer section).
    Chunked(ChunkedDecoder, Vec<u8>),
    /// Everything until the writer closes.
    UntilClose,
}

/// What one un-framing step found in the bytes it was given.
struct Step {
    payload: Range<usize>,
    last: bool,
    consumed: usize,
    trailers: Option<http::HeaderMap>,
}

impl Unframe {
    pub fn chunked() -> Unframe {
        Unframe::Chunked(ChunkedDecoder::new(), Vec::new())
    }

    fn step(&mut self, data: &[u8]) -> io::Result<Step> {
        Ok(match self {
            Unframe::UntilClose => Step {
                payload: 0..data.len(),
                last: false,
                consumed: data.len(),
                trailers: None,
            },
            Unframe::Length(left) => {
                let n = (*left).min(data.len() as u64) as usize;
                *left -= n as u64;
                Step {
                    payload: 0..n,
                    last: *left == 0,
                    consumed: data.len(),
                    trailers: None,
                }
            }
            Unframe::Chunked(dec, tail) => {
                let p = dec
                    .decode(data)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                if p.data.is_empty() {
                    tail.extend_from_slice(&data[..p.consumed]);
                } else {
                    tail.clear();
                    tail.extend_from_slice(&data[p.data.end..p.consumed]);
                }
                Step {
                    trailers: if p.done { trailer_fields(tail) } else { None },
                    payload: p.data,
                    last: p.done,
                    consumed: p.consumed,
                }
            }
        })
    }
}

/// Send the body bytes `data` on `send`; `true` once the body is complete
/// (END_STREAM sent, with the trailers when there were any).
pub async fn send_body(
    unframe: &mut Unframe,
    send: &mut SendStream<Bytes>,
    mut data: &[u8],
    window_timeout: Duration,
) -> io::Result<bool> {
    loop {
        let step = unframe.step(data)?;
        let payload = &data[step.payload.clone()];
        match step.trailers {
            Some(t) => {
                send_data(send, payload, false, window_timeout).await?;
                send.send_trailers(t).map_err(broken)?;
            }
            None if !payload.is_empty() || step.last => {
                send_data(send, payload, step.last, window_timeout).await?;
            }
            None => {}
        }
        if step.last {
            return Ok(true);
        }
        data = &data[step.consumed..];
        if data.is_empty() || step.consumed == 0 {
            return Ok(false);
        }
    }
}

/// Something that takes an HTTP/1.1 message as byte slices: the two
/// bridges' writing sides, driven by [`write_buf`] and [`writev_buf`].
pub(crate) trait TakeBytes {
    /// Take all of `data`.
    async fn take_bytes(&mut self, data: &[u8]) -> io::Result<()>;
}

/// `write(2)` into a [`TakeBytes`]: all of `buf` is taken.
pub(crate) async fn write_buf<W: TakeBytes, T: IoBuf>(w: &mut W, buf: T) -> BufResult<usize, T> {
    // SAFETY: an IoBuf is valid for `bytes_init` bytes from its pointer.
    let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
    match w.take_bytes(data).await {
        Ok(()) => (Ok(data.len()), buf),
        Err(e) => (Err(e), buf),
    }
}

/// `writev(2)` into a [`TakeBytes`]: the vectors in order; a failure after
/// some were taken reports what was.
pub(crate) async fn writev_buf<W: TakeBytes, T: IoVecBuf>(
    w: &mut W,
    buf: T,
) -> BufResult<usize, T> {
    let mut n = 0;
    // SAFETY: the iovec array and each vector are valid for the lengths
    // they give (the IoVecBuf contract).
    let vecs = unsafe { std::slice::from_raw_parts(buf.read_iovec_ptr(), buf.read_iovec_len()) };
    for v in vecs {
        // SAFETY: as above.
        let data = unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) };
        if let Err(e) = w.take_bytes(data).await {
            return (if n > 0 { Ok(n) } else { Err(e) }, buf);
        }
        n += data.len();
    }
    (Ok(n), buf)
}

/// The stream's end for a body that runs until its writer closes.
pub fn end_stream(send: &mut SendStream<Bytes>) -> io::Result<()> {
    send.send_data(Bytes::new(), true).map_err(broken)
}

pub fn broken(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("HTTP/2 stream: {why}"))
}

/// Send `data` within the stream's flow-control window (waiting at most
/// `window_timeout` for window, then resetting the stream), END_STREAM
/// with the last of it when `last`.
pub async fn send_data(
    send: &mut SendStream<Bytes>,
    mut data: &[u8],
    last: bool,
    window_timeout: Duration,
) -> io::Result<()> {
    if data.is_empty() {
        return if last { end_stream(send) } else { Ok(()) };
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        // Window is usually there at once: then no timer is armed.
        let mut window = poll_fn(|cx| send.poll_capacity(cx));
        let waited = match (&mut window).now_or_never() {
            Some(got) => Ok(got),
            None => monoio::time::timeout(window_timeout, window).await,
        };
        let cap = match waited {
            Err(_) => {
                send.send_reset(h2::Reason::CANCEL);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "HTTP/2 stream: no send window within the timeout",
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
        send.send_data(Bytes::copy_from_slice(&data[..n]), end)
            .map_err(broken)?;
        data = &data[n..];
    }
    Ok(())
}

/// The trailer fields at the end of a chunked body (`tail`: the framing
/// after the last payload byte: CRLF, the last-chunk line, the trailer
/// section). `None` when there are none. Fields HTTP/2 forbids, and
/// framing fields, are left out.
pub fn trailer_fields(tail: &[u8]) -> Option<http::HeaderMap> {
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

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2): the hop-by-hop ones
/// (`hop::is_hop_by_hop`, which the stage loop never forwards anyway) and
/// `transfer-encoding`; `te` is allowed only as `te: trailers`, which the
/// callers add back where it matters.
pub fn is_connection_specific(name: &[u8]) -> bool {
    crate::http::hop::is_hop_by_hop(name) || name.eq_ignore_ascii_case(b"transfer-encoding")
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

    #[test]
    fn steps_count_lengths_and_decode_chunks() {
        let mut u = super::Unframe::Length(5);
        let s = u.step(b"abcdefg").unwrap();
        assert_eq!((s.payload, s.last), (0..5, true));
        let mut u = super::Unframe::chunked();
        let s = u.step(b"3\r\nabc\r\n").unwrap();
        assert_eq!(&b"3\r\nabc\r\n"[s.payload.clone()], b"abc");
        assert!(!s.last);
    }
}
