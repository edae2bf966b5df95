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
use super::send::{write_buf, writev_buf};

/// An HTTP/2 stream the stage loop reads a request from and writes its
/// response to.
pub struct StreamBridge {
    reader: Http1Reader,
    writer: ResponseWriter,
    /// The request head, complete from its spans (`None`: parsed).
    head: Option<crate::http::RequestHead>,
}

impl StreamBridge {
    /// `head`: the request head (HTTP/1.1), and `parsed` the head complete
    /// from its spans when it could be; `early`: body bytes already read;
    /// `body`: the stream's DATA still to come, with its framing.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        head: Vec<u8>,
        parsed: Option<crate::http::RequestHead>,
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
            head: parsed,
        }
    }
}

// SAFETY: reading touches only `reader`, writing only `writer`; the halves
// of a split bridge never share state. (The stage loop splits a stream only
// for an upgraded connection, which HTTP/2 streams never become.)
unsafe impl Split for StreamBridge {}

/// An HTTP/2 stream carries one request: no idle wait to release; its
/// head is handed over in place.
impl crate::net::idle_read::IdleRead for StreamBridge {
    fn take_first_bytes(&mut self) -> Option<Vec<u8>> {
        self.reader.take_head()
    }

    fn take_first_head(&mut self) -> Option<crate::http::RequestHead> {
        self.head.take()
    }

    fn one_request(&self) -> bool {
        true
    }

    fn response_writer(&mut self) -> Option<&mut ResponseWriter> {
        Some(&mut self.writer)
    }
}

impl AsyncReadRent for StreamBridge {
    fn read<T: IoBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.reader.read(buf)
    }

    fn readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.reader.readv(buf)
    }
}

impl AsyncWriteRent for StreamBridge {
    fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        write_buf(&mut self.writer, buf)
    }

    fn writev<T: IoVecBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        writev_buf(&mut self.writer, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.writer.finish();
        Ok(())
    }
}
