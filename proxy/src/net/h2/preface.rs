//! Cleartext HTTP/2 by prior knowledge: a listener speaking both protocols
//! reads the first bytes of a connection and compares them with the
//! HTTP/2 client preface. An HTTP/1.1 request differs at its first byte
//! (no method starts with "PRI * HTTP/2.0"), so the sniff never waits for
//! more than one read on an HTTP/1.1 connection; the bytes read are
//! replayed to whichever side serves the connection ([`Prefixed`]).

use std::io;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split};
use monoio::BufResult;

/// RFC 9113 §3.4.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// The HTTP/2 client preface.
    Http2,
    /// Anything else (HTTP/1.1, or garbage the HTTP/1.1 parser refuses).
    Other,
    /// The connection closed before saying anything.
    Closed,
}

/// Read until the bytes are known to be (or not be) the preface; the
/// verdict and the bytes read.
pub async fn sniff<S: AsyncReadRent>(stream: &mut S) -> io::Result<(Sniffed, Vec<u8>)> {
    let mut got: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let len = got.len();
        let (res, slice) = stream.read(got.slice_mut(len..)).await;
        got = slice.into_inner();
        let n = res?;
        if n == 0 {
            let verdict = if got.is_empty() {
                Sniffed::Closed
            } else {
                Sniffed::Other
            };
            return Ok((verdict, got));
        }
        let k = got.len().min(PREFACE.len());
        if got[..k] != PREFACE[..k] {
            return Ok((Sniffed::Other, got));
        }
        if k == PREFACE.len() {
            return Ok((Sniffed::Http2, got));
        }
    }
}

/// `inner`, with `prefix` read back first.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// Copy unread prefix bytes to `dst` (room for `len`); the count.
    fn take(&mut self, dst: *mut u8, len: usize) -> usize {
        let n = (self.prefix.len() - self.pos).min(len);
        // SAFETY: `dst` has room for `len` >= `n` bytes.
        unsafe { dst.copy_from_nonoverlapping(self.prefix[self.pos..].as_ptr(), n) };
        self.pos += n;
        if self.pos == self.prefix.len() {
            self.prefix = Vec::new();
            self.pos = 0;
        }
        n
    }
}

// SAFETY: as for `S`: reads use the prefix and `inner`'s read side, writes
// only `inner`'s write side.
unsafe impl<S: Split> Split for Prefixed<S> {}

impl<S: AsyncReadRent> AsyncReadRent for Prefixed<S> {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        if self.prefix.is_empty() {
            return self.inner.read(buf).await;
        }
        let n = self.take(buf.write_ptr(), buf.bytes_total());
        // SAFETY: `take` initialised `n` bytes.
        unsafe { buf.set_init(n) };
        (Ok(n), buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        if self.prefix.is_empty() {
            return self.inner.readv(buf).await;
        }
        let mut n = 0;
        // SAFETY: the iovecs are valid for their lengths (IoVecBufMut).
        unsafe {
            let vecs = std::slice::from_raw_parts(buf.write_iovec_ptr(), buf.write_iovec_len());
            for v in vecs {
                if self.prefix.is_empty() {
                    break;
                }
                n += self.take(v.iov_base.cast(), v.iov_len);
            }
            buf.set_init(n);
        }
        (Ok(n), buf)
    }
}

/// Idle reads go to `inner` once the prefix is used up.
impl<S: crate::net::idle_read::IdleRead> crate::net::idle_read::IdleRead for Prefixed<S> {
    fn can_release(&self) -> bool {
        self.prefix.is_empty() && self.inner.can_release()
    }

    async fn idle_read<T: IoBufMut>(
        &mut self,
        buf: T,
        cancel: monoio::io::CancelHandle,
    ) -> BufResult<usize, T> {
        if self.prefix.is_empty() {
            return self.inner.idle_read(buf, cancel).await;
        }
        self.read(buf).await
    }

    fn wait_readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> {
        self.inner.wait_readable()
    }

    fn shutdown_before_close(&self) -> bool {
        self.inner.shutdown_before_close()
    }

    fn splice_socket(&self) -> Option<&monoio::net::TcpStream> {
        self.inner
            .splice_socket()
            .filter(|_| self.prefix.is_empty())
    }

    fn splice_target(&self) -> Option<&monoio::net::TcpStream> {
        self.inner.splice_target()
    }

    fn kept_alive(&self) {
        self.inner.kept_alive()
    }

    fn body_follows(&mut self) {
        self.inner.body_follows()
    }
}

impl<S: AsyncWriteRent> AsyncWriteRent for Prefixed<S> {
    fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.inner.write(buf)
    }

    fn writev<T: IoVecBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.inner.writev(buf)
    }

    fn flush(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.inner.shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn tells_the_preface_from_http1_and_replays_what_it_read() {
        run(async {
            let mut h1: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
            let (v, got) = sniff(&mut h1).await.unwrap();
            assert_eq!(v, Sniffed::Other);
            let mut p = Prefixed::new(got, h1);
            let (n, buf) = p.read(Vec::with_capacity(64)).await;
            assert_eq!(&buf[..n.unwrap()], b"GET / HTTP/1.1\r\n\r\n");

            let mut all = PREFACE.to_vec();
            all.extend_from_slice(b"\0\0\0\x04");
            let mut h2: &[u8] = &all;
            let (v, got) = sniff(&mut h2).await.unwrap();
            assert_eq!(v, Sniffed::Http2);
            assert!(got.starts_with(PREFACE));

            let mut empty: &[u8] = b"";
            assert_eq!(sniff(&mut empty).await.unwrap().0, Sniffed::Closed);
            let mut short: &[u8] = b"PRI * HT";
            assert_eq!(sniff(&mut short).await.unwrap().0, Sniffed::Other);
        });
    }
}
