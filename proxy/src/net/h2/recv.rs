//! Reading an HTTP/2 stream's body as HTTP/1.1 bytes: the downstream
//! bridge reads a client's request this way, the upstream exchange an
//! HTTP/2 origin's response. A DATA frame's window is released when the
//! frame is taken, so at most one window per stream waits in memory.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::RecvStream;
use monoio::buf::{IoBufMut, IoVecBufMut};
use monoio::BufResult;

use super::request::{write_trailers, BodyFraming};

/// An HTTP/1.1 message read out of an HTTP/2 stream: its head (already
/// encoded), then the stream's DATA (chunked when the length is not
/// known), then its trailers as chunked trailers, then end of stream.
pub struct Http1Reader {
    /// The head, until it is read or taken ([`Http1Reader::take_head`]).
    head: Option<Vec<u8>>,
    ready: VecDeque<Bytes>,
    body: Option<RecvStream>,
    chunked: bool,
    /// Longest wait for the next DATA frame (`limits.body_read_timeout`).
    body_timeout: Duration,
}

impl Http1Reader {
    pub fn new(
        head: Vec<u8>,
        framing: BodyFraming,
        body: RecvStream,
        body_timeout: Duration,
    ) -> Self {
        Http1Reader {
            head: Some(head),
            ready: VecDeque::new(),
            body: (framing != BodyFraming::None).then_some(body),
            chunked: framing == BodyFraming::Chunked,
            body_timeout,
        }
    }

    /// Body bytes read ahead (before the stage loop started), framed as
    /// the rest will be.
    pub fn push_early(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if self.chunked {
            self.ready
                .push_back(Bytes::from(format!("{:x}\r\n", data.len())));
            self.ready.push_back(data);
            self.ready.push_back(Bytes::from_static(b"\r\n"));
        } else {
            self.ready.push_back(data);
        }
    }

    /// The head itself, not yet read: the reader's caller parses it where
    /// it is instead of reading a copy. Reading then starts with the body.
    pub fn take_head(&mut self) -> Option<Vec<u8>> {
        self.head.take()
    }

    /// Make sure bytes are ready; `false` at the end of the request.
    pub async fn fill(&mut self) -> io::Result<bool> {
        if let Some(head) = self.head.take() {
            self.ready.push_front(Bytes::from(head));
        }
        while self.ready.is_empty() {
            let Some(body) = self.body.as_mut() else {
                return Ok(false);
            };
            let next = monoio::time::timeout(self.body_timeout, body.data())
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "HTTP/2 stream: no DATA within the timeout",
                    )
                })?;
            match next {
                Some(Ok(data)) => {
                    let n = data.len();
                    let _ = body.flow_control().release_capacity(n);
                    if n == 0 {
                        continue;
                    }
                    if self.chunked {
                        self.ready.push_back(Bytes::from(format!("{n:x}\r\n")));
                        self.ready.push_back(data);
                        self.ready.push_back(Bytes::from_static(b"\r\n"));
                    } else {
                        self.ready.push_back(data);
                    }
                }
                Some(Err(e)) => return Err(io::Error::new(io::ErrorKind::ConnectionReset, e)),
                None => {
                    let trailers = body
                        .trailers()
                        .await
                        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionReset, e))?;
                    self.body = None;
                    if self.chunked {
                        let mut end = b"0\r\n".to_vec();
                        match trailers {
                            Some(t) => write_trailers(&t, &mut end),
                            None => end.extend_from_slice(b"\r\n"),
                        }
                        self.ready.push_back(Bytes::from(end));
                    }
                }
            }
        }
        Ok(true)
    }

    /// `read(2)` on the message: the next bytes into `buf`, 0 at its end.
    pub async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        match self.fill().await {
            Ok(true) => {}
            Ok(false) => return (Ok(0), buf),
            Err(e) => return (Err(e), buf),
        }
        // SAFETY: an IoBufMut is writable for `bytes_total` bytes, and
        // `take` initialised the first `n`.
        let n = unsafe { self.take(buf.write_ptr(), buf.bytes_total()) };
        unsafe { buf.set_init(n) };
        (Ok(n), buf)
    }

    /// `readv(2)` on the message.
    pub async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        match self.fill().await {
            Ok(true) => {}
            Ok(false) => return (Ok(0), buf),
            Err(e) => return (Err(e), buf),
        }
        let mut n = 0;
        // SAFETY: the iovec array and each vector are valid for the
        // lengths they give (the IoVecBufMut contract).
        unsafe {
            let vecs = std::slice::from_raw_parts(buf.write_iovec_ptr(), buf.write_iovec_len());
            for v in vecs {
                let got = self.take(v.iov_base.cast(), v.iov_len);
                n += got;
                if got < v.iov_len {
                    break;
                }
            }
            buf.set_init(n);
        }
        (Ok(n), buf)
    }

    /// Copy ready bytes to `dst` (at most `len`); the count.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `len` bytes.
    unsafe fn take(&mut self, dst: *mut u8, len: usize) -> usize {
        let mut done = 0;
        while done < len {
            let Some(front) = self.ready.front_mut() else {
                break;
            };
            let n = front.len().min(len - done);
            // SAFETY: `dst` has room for `len` bytes (the caller's promise).
            unsafe { dst.add(done).copy_from_nonoverlapping(front.as_ptr(), n) };
            front.advance(n);
            done += n;
            if front.is_empty() {
                self.ready.pop_front();
            }
        }
        done
    }
}
