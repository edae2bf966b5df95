//! What a client stream offers for an idle keep-alive read that holds no
//! buffer: a read that can be cancelled, and a wait for readiness.
//!
//! A keep-alive connection waiting for its next request has one receive
//! pending with the connection's read buffer lent to the kernel. After a
//! short grace (`runtime::watchdog::IDLE_READ_RELEASE_AFTER`) the watchdog
//! cancels that receive; the stage loop gives the buffer back to the worker
//! and waits for the socket to become readable (a poll, which holds no
//! memory), then takes a buffer and reads (`pipeline::read_head`).
//!
//! With the `buffer_ring` ring feature (io_uring), the idle read lends no
//! buffer at all: the receive selects one from the worker's provided-buffer
//! ring when the next request arrives (`read_selected`), its bytes are
//! copied into a head buffer, and the ring buffer goes straight back. The
//! connection then holds no read buffer from the first moment it idles, not
//! only after the grace.
//!
//! Only plain TCP can do this today. A TLS stream (monoio-rustls) reads
//! through its own record buffer and offers no cancelable read, and an
//! HTTP/2 stream never waits between requests in the stage loop: both keep
//! the defaults (`can_release` false), i.e. an ordinary read.

use std::future::Future;
use std::io;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, CancelHandle, CancelableAsyncReadRent};
use monoio::net::TcpStream;
use monoio::ring_ext::SelectedBuf;
use monoio::BufResult;

/// Whether a selected receive's error means "read into a buffer of your
/// own instead": the ring was empty (`ENOBUFS`; it grows for the next
/// ones) or selected receives are off or refused here (`Unsupported`).
pub fn read_unselected_instead(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOBUFS) || e.kind() == io::ErrorKind::Unsupported
}

/// A client stream whose idle read can give its buffer back.
pub trait IdleRead: AsyncReadRent {
    /// Whether a read can be cancelled and readiness awaited right now.
    fn can_release(&self) -> bool {
        false
    }

    /// A read that `cancel` cancels (`ECANCELED`; the buffer comes back
    /// either way). Without support, an ordinary read.
    fn idle_read<T: IoBufMut>(
        &mut self,
        buf: T,
        cancel: CancelHandle,
    ) -> impl Future<Output = BufResult<usize, T>> {
        let _ = cancel;
        self.read(buf)
    }

    /// Whether an idle read can take its buffer from the worker's
    /// provided-buffer ring (`runtime.ring_features` `"buffer_ring"`).
    fn can_select(&self) -> bool {
        false
    }

    /// A read that `cancel` cancels and whose buffer the kernel selects
    /// from the worker's ring when data arrives (`can_select`). Without
    /// support, `Unsupported` (and nothing read).
    fn read_selected(
        &mut self,
        cancel: Option<CancelHandle>,
    ) -> impl Future<Output = io::Result<SelectedBuf>> {
        let _ = cancel;
        std::future::ready(Err(io::Error::from(io::ErrorKind::Unsupported)))
    }

    /// Wait until a read would not block (data, end of stream or an error).
    fn wait_readable(&self) -> impl Future<Output = io::Result<()>> {
        std::future::ready(Ok(()))
    }

    /// Whether ending the connection needs a `shutdown` before the stream
    /// is dropped (TLS: its close_notify; a bridged HTTP/2 stream: its end).
    /// A plain socket's close sends the FIN itself: one syscall less per
    /// connection.
    fn shutdown_before_close(&self) -> bool {
        true
    }

    /// The plain TCP socket under this stream, when nothing sits between
    /// it and the bytes on the wire (no TLS, no buffered prefix): a large
    /// body may then move with splice(2) (`pipeline::splice`).
    fn splice_socket(&self) -> Option<&TcpStream> {
        None
    }

    /// The plain TCP socket under this stream for writing a large body to
    /// with splice(2): as [`splice_socket`](Self::splice_socket), except
    /// that a socket whose reads go through a multishot receive may still
    /// be written to (`net::plain`).
    fn splice_target(&self) -> Option<&TcpStream> {
        self.splice_socket()
    }

    /// The first request's bytes, already in hand (a bridged HTTP/2
    /// stream's head, encoded as HTTP/1.1): the stage loop takes this
    /// storage as its read buffer and parses the head where it is, with no
    /// read, no copy and no pooled buffer. Reading then continues after
    /// these bytes.
    fn take_first_bytes(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// The head of those first bytes, already complete (its writer recorded
    /// where each part is, `crate::http::head::complete_written_head`):
    /// the first `read_head` is then skipped. `None`: the bytes are parsed.
    fn take_first_head(&mut self) -> Option<crate::http::RequestHead> {
        None
    }

    /// Whether the stream carries one request and then ends (a bridged
    /// HTTP/2 stream): the stage loop then stops after it, and sizes its
    /// output for one response instead of taking a pooled buffer.
    fn one_request(&self) -> bool {
        false
    }

    /// The sender that takes an upstream's response head as fields (a
    /// bridged HTTP/2 stream), so no HTTP/1.1 head is written for it and
    /// parsed again (`ResponseWriter::start_from_upstream`).
    fn response_writer(&mut self) -> Option<&mut crate::net::h2::response::ResponseWriter> {
        None
    }

    /// The connection is kept alive (its second request has come): a
    /// plain socket's operations name a slot of the worker ring's
    /// registered files from now on (`ring_features` `fixed_files`). A
    /// connection that carries one request never pays for the slot (two
    /// ring entries: one fills it, one empties it); other streams either
    /// registered their socket at the start (TLS, HTTP/2) or have none.
    fn kept_alive(&self) {}

    /// The request just read has a body to stream (more than came with its
    /// head) or upgrades the connection: a plain socket's multishot receive
    /// ends for the rest of the connection (`net::plain`), so the body is
    /// read (or spliced) from the socket itself.
    fn body_follows(&mut self) {}
}

impl IdleRead for TcpStream {
    fn can_release(&self) -> bool {
        true
    }

    fn idle_read<T: IoBufMut>(
        &mut self,
        buf: T,
        cancel: CancelHandle,
    ) -> impl Future<Output = BufResult<usize, T>> {
        self.cancelable_read(buf, cancel)
    }

    fn can_select(&self) -> bool {
        monoio::ring_ext::buffer_ring_on()
    }

    fn read_selected(
        &mut self,
        cancel: Option<CancelHandle>,
    ) -> impl Future<Output = io::Result<SelectedBuf>> {
        self.cancelable_read_selected(cancel)
    }

    /// A single-shot poll (io_uring `POLL_ADD`; with the epoll driver, the
    /// registered readiness, confirmed by `poll(2)`: not `relaxed`).
    fn wait_readable(&self) -> impl Future<Output = io::Result<()>> {
        self.readable(false)
    }

    fn shutdown_before_close(&self) -> bool {
        false
    }

    fn splice_socket(&self) -> Option<&TcpStream> {
        Some(self)
    }

    #[inline]
    fn kept_alive(&self) {
        self.register_fixed();
    }
}

/// TLS keeps an ordinary read (see the module docs).
impl<IO: AsyncReadRent + monoio::io::AsyncWriteRent> IdleRead
    for monoio_rustls::ServerTlsStream<IO>
{
}
