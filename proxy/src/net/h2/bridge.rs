//! One HTTP/2 stream as the byte stream the stage loop serves.
//!
//! Reading yields the request as HTTP/1.1 (the head from
//! [`super::request`], then the DATA frames, chunked when the length is not
//! known, then end of stream); writing takes the HTTP/1.1 response the
//! stage loop produces and sends it on the stream ([`super::response`]).
//! The stage loop serves one request on it and finds the end of stream
//! where a keep-alive connection's next request would be.
//!
//! Flow control: a DATA frame's window is released when the stage loop has
//! read the frame, so at most one window of request body per stream waits
//! in memory; response bytes wait for send window before the write returns.

use std::io;
use std::time::Duration;

use h2::RecvStream;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split};
use monoio::BufResult;

use super::recv::Http1Reader;
use super::request::BodyFraming;
use super::response::ResponseWriter;

/// An HTTP/2 stream the stage loop reads a request from and writes its
/// response to.
pub struct StreamBridge {
    reader: Http1Reader,
    writer: ResponseWriter,
}

impl StreamBridge {
    /// `head`: the request head (HTTP/1.1); `early`: body bytes already
    /// read; `body`: the stream's DATA still to come, with its framing.
    pub fn new(
        head: Vec<u8>,
        framing: BodyFraming,
        early: bytes::Bytes,
        body: RecvStream,
        writer: ResponseWriter,
        body_timeout: Duration,
    ) -> Self {
        StreamBridge {
            reader: {
                let mut r = Http1Reader::new(head, framing, body, body_timeout);
                r.push_early(early);
                r
            },
            writer,
        }
    }
}

// SAFETY: reading touches only `reader`, writing only `writer`; the halves
// of a split bridge never share state. (The stage loop splits a stream only
// for an upgraded connection, which HTTP/2 streams never become.)
unsafe impl Split for StreamBridge {}

impl AsyncReadRent for StreamBridge {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        match self.reader.fill().await {
            Ok(true) => {}
            Ok(false) => return (Ok(0), buf),
            Err(e) => return (Err(e), buf),
        }
        // SAFETY: an IoBufMut is writable for `bytes_total` bytes.
        let n = unsafe { self.reader.take(buf.write_ptr(), buf.bytes_total()) };
        // SAFETY: `take` initialised the first `n` bytes.
        unsafe { buf.set_init(n) };
        (Ok(n), buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        match self.reader.fill().await {
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
                let got = self.reader.take(v.iov_base.cast(), v.iov_len);
                n += got;
                if got < v.iov_len {
                    break;
                }
            }
            buf.set_init(n);
        }
        (Ok(n), buf)
    }
}

impl AsyncWriteRent for StreamBridge {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: an IoBuf is valid for `bytes_init` bytes from its pointer.
        let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        match self.writer.write(data).await {
            Ok(()) => (Ok(data.len()), buf),
            Err(e) => (Err(e), buf),
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let mut n = 0;
        // SAFETY: as in `readv`, for reading.
        let vecs =
            unsafe { std::slice::from_raw_parts(buf.read_iovec_ptr(), buf.read_iovec_len()) };
        for v in vecs {
            // SAFETY: each vector is valid for its length.
            let data = unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) };
            if let Err(e) = self.writer.write(data).await {
                return (if n > 0 { Ok(n) } else { Err(e) }, buf);
            }
            n += data.len();
        }
        (Ok(n), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.writer.finish();
        Ok(())
    }
}
