//! A plain HTTP/1.1 client socket with its multishot receive
//! (`runtime.ring_features` `"multishot_recv"`).
//!
//! A keep-alive connection normally submits one receive per request: the
//! park loop's selected receive (`TcpStream::next_bytes`), armed again
//! after every answer. With a multishot receive (`ring_ext::MultiRecv`) it
//! is armed once, when the connection first parks, and stays armed: each
//! request's bytes arrive in a buffer of the worker's provided-buffer ring
//! with no submission, one ring operation less per request (4 → 3 for a
//! small GET, `bench/ring-ops-trace.sh`).
//!
//! While it is armed every read of the socket must come from it (a plain
//! read beside it would race it for the bytes), so [`PlainStream`] is the
//! socket for the whole stage loop: its reads copy out of the queued ring
//! buffers (a buffer a read had no room for is kept, in part, for the next
//! one) and fall back to the socket itself once the receive has ended.
//!
//! A request with a body to stream (more than came with its head), or an
//! upgrade, ends the multishot for the rest of the connection
//! ([`IdleRead::body_follows`]): ring buffers are 2 KiB, so a body through
//! them would be a completion and a copy per 2 KiB instead of one read per
//! 16 KiB, and a long body moves with `splice(2)`, which needs the socket
//! to itself. Its bytes already queued are read first; from the receive's
//! last completion on, reads (and splices) go to the socket. A connection
//! that uploads keeps single-shot receives, one cancel more in its life.
//!
//! The receive also ends by itself: at the end of the stream, on an error,
//! or when the ring ran dry (`ENOBUFS`: that read goes to the socket, the
//! ring grows, and the next park arms a new receive).

use std::future::{poll_fn, Future};
use std::io;
use std::task::Poll;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelHandle, CancelableAsyncReadRent, Split};
use monoio::net::TcpStream;
use monoio::ring_ext::{MultiRecv, SelectedBuf};
use monoio::BufResult;

use super::idle_read::IdleRead;

/// A ring buffer's bytes from `from` on.
pub struct Got {
    buf: SelectedBuf,
    from: usize,
}

impl Got {
    /// A whole ring buffer's bytes.
    pub fn whole(buf: SelectedBuf) -> Self {
        Got { buf, from: 0 }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf.as_slice()[self.from..]
    }
}

/// A plain client socket, read through its multishot receive while one is
/// armed (see the module docs). Fields drop in order: the receive's cancel
/// is queued before the socket's close.
pub struct PlainStream {
    recv: Option<MultiRecv>,
    /// What a read had no room for.
    rest: Option<Box<Got>>,
    /// No multishot for this connection any more (a body came).
    single: bool,
    inner: TcpStream,
}

/// What the receive gave.
enum Next {
    Bytes(SelectedBuf),
    /// There is none: read the socket.
    Socket,
    /// It has ended (cancelled, for a body or for queueing too much), its
    /// last completion read: read the socket, or arm a new one.
    Ended,
    /// The ring ran dry (`ENOBUFS`): read the socket this time.
    Dry,
    Failed(io::Error),
}

impl PlainStream {
    pub fn new(inner: TcpStream) -> Self {
        PlainStream {
            recv: None,
            rest: None,
            single: false,
            inner,
        }
    }

    /// The socket itself.
    pub fn socket(&self) -> &TcpStream {
        &self.inner
    }

    /// Whether reads go to the socket itself: no receive (armed, or with
    /// completions still to read) and no bytes in hand.
    fn on_socket(&self) -> bool {
        self.recv.is_none() && self.rest.is_none()
    }

    /// The next bytes of an idle connection from its multishot receive
    /// (the park loop's wait), arming one if there is none and the worker
    /// has them on: `Some` with the bytes (empty: the end of the stream) or
    /// the receive's error; `None` when there is no receive (off, or this
    /// connection uploads) or it ran dry: wait with the socket's own
    /// `next_bytes` instead. A receive that was cancelled for queueing too
    /// much, and whose bytes have all been read, is armed again here.
    ///
    /// A plain future over `&mut self` rather than an `async fn`: a parked
    /// connection's task holds this for as long as it idles, so its size
    /// is every parked connection's (`connection::serve_plain`).
    pub fn next_from_receive(
        &mut self,
    ) -> impl Future<Output = Option<io::Result<Option<Got>>>> + '_ {
        let mut armed = false;
        poll_fn(move |cx| {
            if let Some(rest) = self.rest.take() {
                return Poll::Ready(Some(Ok(Some(*rest))));
            }
            loop {
                if self.recv.is_none() && !self.single && monoio::ring_ext::multishot_recv_on() {
                    self.recv = self.inner.recv_multishot().ok();
                    armed = true;
                }
                let Some(recv) = self.recv.as_mut() else {
                    return Poll::Ready(None);
                };
                let polled = std::task::ready!(recv.poll_next(cx));
                match self.took(polled) {
                    Next::Bytes(buf) => return Poll::Ready(Some(Ok(Some(Got::whole(buf))))),
                    Next::Failed(e) => return Poll::Ready(Some(Err(e))),
                    // Ended, all read: armed again (once; an upload's
                    // stays ended, `single`).
                    Next::Ended if !armed && !self.single => {}
                    Next::Ended | Next::Dry | Next::Socket => return Poll::Ready(None),
                }
            }
        })
    }

    /// The receive's next completion; `Socket` once it has ended (it is
    /// then dropped) or when there is none.
    async fn next(&mut self) -> Next {
        let Some(recv) = self.recv.as_mut() else {
            return Next::Socket;
        };
        let polled = poll_fn(|cx| recv.poll_next(cx)).await;
        self.took(polled)
    }

    /// What the receive's completion `polled` means here; a receive that
    /// has ended is dropped.
    fn took(&mut self, polled: Option<io::Result<SelectedBuf>>) -> Next {
        match polled {
            Some(Ok(buf)) => Next::Bytes(buf),
            Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                self.recv = None;
                Next::Dry
            }
            Some(Err(e)) => {
                self.recv = None;
                Next::Failed(e)
            }
            None => {
                self.recv = None;
                Next::Ended
            }
        }
    }

    /// Copy `got`'s bytes to `dst` (room for `len`); what does not fit is
    /// kept in hand for the next read. The count.
    fn take(&mut self, got: Got, dst: *mut u8, len: usize) -> usize {
        let src = got.as_slice();
        let n = src.len().min(len);
        // SAFETY: `dst` has room for `len` >= `n` bytes, and a ring buffer
        // is never the caller's.
        unsafe { dst.copy_from_nonoverlapping(src.as_ptr(), n) };
        if n < src.len() {
            self.rest = Some(Box::new(Got {
                from: got.from + n,
                buf: got.buf,
            }));
        }
        n
    }

    /// The next bytes to read: those in hand, else the receive's next
    /// buffer (no allocation unless a read leaves part of it); `None` when
    /// the socket is to be read instead, `Err` when the receive failed.
    /// Empty: the end of the stream (kept in hand: every read after it
    /// reads 0).
    async fn fill(&mut self) -> io::Result<Option<Got>> {
        if let Some(rest) = self.rest.take() {
            return Ok(Some(*rest));
        }
        match self.next().await {
            Next::Bytes(buf) => Ok(Some(Got::whole(buf))),
            Next::Socket | Next::Ended | Next::Dry => Ok(None),
            Next::Failed(e) => Err(e),
        }
    }
}

// SAFETY: reads use the receive, the bytes in hand and the socket's read
// side; writes only the socket's write side.
unsafe impl Split for PlainStream {}

impl AsyncReadRent for PlainStream {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let got = match self.fill().await {
            Ok(Some(got)) => got,
            Ok(None) => return self.inner.read(buf).await,
            Err(e) => return (Err(e), buf),
        };
        if got.as_slice().is_empty() {
            self.rest = Some(Box::new(got));
            return (Ok(0), buf);
        }
        let n = self.take(got, buf.write_ptr(), buf.bytes_total());
        // SAFETY: `take` initialised `n` bytes.
        unsafe { buf.set_init(n) };
        (Ok(n), buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let got = match self.fill().await {
            Ok(Some(got)) => got,
            Ok(None) => return self.inner.readv(buf).await,
            Err(e) => return (Err(e), buf),
        };
        if got.as_slice().is_empty() {
            self.rest = Some(Box::new(got));
            return (Ok(0), buf);
        }
        let mut got = Some(got);
        let mut n = 0;
        // SAFETY: the iovecs are valid for their lengths (IoVecBufMut).
        unsafe {
            let vecs = std::slice::from_raw_parts(buf.write_iovec_ptr(), buf.write_iovec_len());
            for v in vecs {
                let Some(g) = got.take().or_else(|| self.rest.take().map(|r| *r)) else {
                    break;
                };
                n += self.take(g, v.iov_base.cast(), v.iov_len);
            }
            buf.set_init(n);
        }
        (Ok(n), buf)
    }
}

impl AsyncWriteRent for PlainStream {
    fn write<T: IoBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        self.inner.write(buf)
    }

    fn writev<T: IoVecBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        self.inner.writev(buf)
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        self.inner.shutdown()
    }
}

/// As a `TcpStream`'s while no receive is armed; with one, its reads come
/// from the receive (it lends no buffer while it waits, so there is nothing
/// to cancel for).
impl IdleRead for PlainStream {
    fn can_release(&self) -> bool {
        true
    }

    async fn idle_read<T: IoBufMut>(
        &mut self,
        buf: T,
        cancel: CancelHandle,
    ) -> BufResult<usize, T> {
        if self.on_socket() {
            return self.inner.cancelable_read(buf, cancel).await;
        }
        self.read(buf).await
    }

    fn can_select(&self) -> bool {
        self.inner.can_select()
    }

    /// With a receive armed (or bytes in hand), `Unsupported`: the caller
    /// reads, and the read takes them.
    fn read_selected(
        &mut self,
        cancel: Option<CancelHandle>,
    ) -> impl Future<Output = io::Result<SelectedBuf>> {
        let plain = self.on_socket();
        let inner = &mut self.inner;
        async move {
            if plain {
                inner.read_selected(cancel).await
            } else {
                Err(io::Error::from(io::ErrorKind::Unsupported))
            }
        }
    }

    /// With a receive armed, its bytes go to it, not to a poll: wait for
    /// them there (or for its end, then for the socket).
    async fn wait_readable(&self) -> io::Result<()> {
        if self.rest.is_some() {
            return Ok(());
        }
        if let Some(recv) = &self.recv {
            poll_fn(|cx| recv.poll_ready(cx)).await;
            if recv.queued() > 0 {
                return Ok(());
            }
        }
        self.inner.readable(false).await
    }

    fn shutdown_before_close(&self) -> bool {
        false
    }

    fn splice_socket(&self) -> Option<&TcpStream> {
        self.on_socket().then_some(&self.inner)
    }

    /// Writes never race the receive.
    fn splice_target(&self) -> Option<&TcpStream> {
        Some(&self.inner)
    }

    #[inline]
    fn kept_alive(&self) {
        self.inner.register_fixed();
    }

    fn body_follows(&mut self) {
        self.single = true;
        if let Some(recv) = self.recv.as_mut() {
            recv.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monoio::io::AsyncWriteRentExt;
    use monoio::net::TcpListener;

    /// The park loop's wait (`connection::serve_plain`).
    async fn next(s: &mut PlainStream) -> Got {
        let got = match s.next_from_receive().await {
            Some(got) => got,
            None => s.socket().next_bytes().await.map(|o| o.map(Got::whole)),
        };
        got.unwrap().expect("bytes, not readiness")
    }

    async fn send(c: &mut TcpStream, bytes: &[u8]) {
        let (res, _) = c.write_all(bytes.to_vec()).await;
        res.unwrap();
    }

    async fn pair(listener: &TcpListener) -> (TcpStream, PlainStream) {
        let c = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        (c, PlainStream::new(s))
    }

    /// Read `n` bytes through `s`, at most `room` per read.
    async fn read_n(s: &mut PlainStream, n: usize, room: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while all.len() < n {
            let (res, got) = s.read(Vec::with_capacity(room)).await;
            assert!(res.unwrap() > 0, "end of stream after {} bytes", all.len());
            all.extend_from_slice(&got);
        }
        all
    }

    /// The vendored monoio's multishot receive on a real ring, through
    /// `PlainStream`: one receive carries many reads in order, a read with
    /// less room keeps the rest, a body ends it and the socket is read (and
    /// may be spliced) from then on, the end of the stream reads as 0, and
    /// no ring buffer is lost: the ring has 16 buffers and cannot grow, so
    /// one leaked per round would run it dry (`ran_dry` counts that).
    #[test]
    fn one_multishot_receive_carries_the_reads_in_order_and_loses_no_buffer() {
        use crate::runtime::ring_features::{supported, test_runtime};
        let Some(mut rt) = test_runtime(supported().multishot_recv, "multishot receives") else {
            return;
        };
        monoio::ring_ext::set_buffer_ring(16, 2048);
        monoio::ring_ext::set_multishot_recv(true);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (mut c, mut s) = pair(&listener).await;
            let arms = monoio::ring_ext::multishot_stats().1;
            for word in [&b"one"[..], b"two", b"three"] {
                send(&mut c, word).await;
                let got = next(&mut s).await;
                assert_eq!(got.as_slice(), word);
                assert!(s.recv.is_some());
            }
            assert_eq!(
                monoio::ring_ext::multishot_stats(),
                (1, arms + 1),
                "armed once, and still armed"
            );
            // Less room than the bytes: the rest is kept, in order, and
            // the park loop's wait hands it over first.
            send(&mut c, b"abcdefgh").await;
            assert_eq!(read_n(&mut s, 4, 4).await, b"abcd");
            assert_eq!(read_n(&mut s, 2, 2).await, b"ef");
            assert_eq!(next(&mut s).await.as_slice(), b"gh");
            // A vectored read fills its buffers in order from one ring
            // buffer and keeps the rest.
            send(&mut c, b"hello, vectored world").await;
            let bufs: monoio::buf::VecBuf = vec![vec![0u8; 5], vec![0u8; 4]].into();
            let (res, bufs) = s.readv(bufs).await;
            assert_eq!(res.unwrap(), 9);
            let bufs: Vec<Vec<u8>> = bufs.into();
            assert_eq!(bufs, vec![b"hello".to_vec(), b", ve".to_vec()]);
            assert_eq!(read_n(&mut s, 12, 64).await, b"ctored world");
            assert!(s.splice_socket().is_none(), "no splice beside the receive");
            // 40 rounds of 3 KiB (two ring buffers each) through the
            // receive: a buffer not given back would run the ring dry.
            let dry = monoio::ring_ext::buffer_ring_stats().1;
            for round in 0..40u8 {
                let bytes = vec![round; 3072];
                send(&mut c, &bytes).await;
                assert_eq!(read_n(&mut s, 3072, 1000).await, bytes);
            }
            assert_eq!(monoio::ring_ext::buffer_ring_stats().1, dry, "ran dry");
            // A client that sends more than is read: once the queue holds
            // MULTISHOT_QUEUE_CAP buffers the receive is cancelled (else it
            // would stay armed with all twelve queued); every byte still
            // comes, in order (the queue's, then the socket's), and the
            // next park arms a new receive.
            let cap = monoio::ring_ext::MULTISHOT_QUEUE_CAP;
            assert!(cap < 12);
            let flood: Vec<u8> = (0..12 * 2048u32).map(|i| (i % 241) as u8).collect();
            send(&mut c, &flood).await;
            monoio::time::sleep(std::time::Duration::from_millis(50)).await;
            let recv = s.recv.as_ref().expect("a receive");
            assert!(
                !recv.is_armed(),
                "not cancelled with {} queued",
                recv.queued()
            );
            assert_eq!(read_n(&mut s, flood.len(), 4096).await, flood);
            let arms = monoio::ring_ext::multishot_stats().1;
            send(&mut c, b"again").await;
            assert_eq!(next(&mut s).await.as_slice(), b"again");
            assert!(s.recv.is_some());
            assert_eq!(
                monoio::ring_ext::multishot_stats().1,
                arms + 1,
                "armed again at the next park"
            );
            assert_eq!(monoio::ring_ext::buffer_ring_stats().1, dry, "ran dry");
            // A body follows: the receive ends; its bytes already queued
            // come first, the socket's after them.
            send(&mut c, b"queued").await;
            s.wait_readable().await.unwrap();
            s.body_follows();
            let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            send(&mut c, &body).await;
            assert_eq!(read_n(&mut s, 6, 6).await, b"queued");
            assert_eq!(read_n(&mut s, body.len(), 16384).await, body);
            assert!(s.recv.is_none(), "the receive has ended");
            assert!(s.splice_socket().is_some(), "the socket is free to splice");
            // No new receive for an uploading connection.
            send(&mut c, b"next").await;
            assert_eq!(next(&mut s).await.as_slice(), b"next");
            assert!(s.recv.is_none());
            assert_eq!(monoio::ring_ext::multishot_stats().0, 0);
            drop(c);
            let (res, _) = s.read(Vec::with_capacity(8)).await;
            assert_eq!(res.unwrap(), 0);

            // The end of the stream through the receive, then again.
            let (c, mut s) = pair(&listener).await;
            let (mut c2, mut s2) = pair(&listener).await;
            send(&mut c2, b"x").await;
            assert_eq!(next(&mut s2).await.as_slice(), b"x");
            drop(c);
            assert!(next(&mut s).await.as_slice().is_empty());
            let (res, _) = s.read(Vec::with_capacity(8)).await;
            assert_eq!(res.unwrap(), 0, "the end reads as 0 again");
            // Streams dropped with bytes still queued (and their receive
            // armed) give those buffers back, and so do the completions
            // that come after: 20 × 2 buffers, more than the ring has.
            for _ in 0..20 {
                let (mut c, mut s) = pair(&listener).await;
                send(&mut c, b"first").await;
                assert_eq!(next(&mut s).await.as_slice(), b"first");
                send(&mut c, &[7; 3000]).await;
                s.wait_readable().await.unwrap();
                drop(s);
                send(&mut c, &[8; 100]).await;
            }
            send(&mut c2, b"still").await;
            assert_eq!(next(&mut s2).await.as_slice(), b"still");
            assert_eq!(monoio::ring_ext::buffer_ring_stats().1, dry, "ran dry");
            assert_eq!(monoio::ring_ext::multishot_stats().0, 1, "only s2's");
        });
        monoio::ring_ext::set_multishot_recv(false);
        monoio::ring_ext::set_buffer_ring(0, 0);
    }
}
