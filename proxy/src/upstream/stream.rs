//! The byte stream to an upstream: plain TCP, TLS over TCP, or one request
//! on a shared HTTP/2 connection (`upstream::h2`).

use std::io;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split};
use monoio::net::TcpStream;
use monoio::BufResult;

use super::gauge::OpenConn;

pub type UpstreamTlsStream = monoio_rustls::ClientTlsStream<TcpStream>;

/// A connection to an upstream endpoint, counted in its cluster's
/// [`ConnGauge`](super::gauge::ConnGauge) while it is open.
pub struct UpstreamStream {
    io: Io,
    open: Option<OpenConn>,
}

enum Io {
    Plain(TcpStream),
    /// The TLS stream and its socket's descriptor.
    Tls(Box<UpstreamTlsStream>, std::os::fd::RawFd),
    /// One stream of an HTTP/2 connection.
    H2(Box<super::h2::exchange::H2Upstream>),
}

// SAFETY: TcpStream and rustls' stream over a TcpStream are `Split`: reads
// and writes are independent operations; an HTTP/2 stream's reading and
// writing sides keep separate state but for the response handle the
// writer leaves for the reader (the stage loop reads only after writing).
unsafe impl Split for UpstreamStream {}

impl UpstreamStream {
    pub fn plain(s: TcpStream) -> UpstreamStream {
        UpstreamStream {
            io: Io::Plain(s),
            open: None,
        }
    }

    pub fn tls(s: UpstreamTlsStream, fd: std::os::fd::RawFd) -> UpstreamStream {
        UpstreamStream {
            io: Io::Tls(Box::new(s), fd),
            open: None,
        }
    }

    pub fn h2(s: super::h2::exchange::H2Upstream) -> UpstreamStream {
        UpstreamStream {
            io: Io::H2(Box::new(s)),
            open: None,
        }
    }

    /// One stream of a shared HTTP/2 connection: never pooled, and no
    /// socket of its own for the watchdog to shut.
    pub fn is_h2(&self) -> bool {
        matches!(self.io, Io::H2(_))
    }

    /// Counted in its cluster's gauge until it is dropped.
    pub fn counted(mut self, open: OpenConn) -> UpstreamStream {
        self.open = Some(open);
        self
    }

    /// It was put back into the pool: a request waiting for room under
    /// `max_connections` may close it.
    pub fn went_idle(&self) {
        if let Some(o) = &self.open {
            o.idle();
        }
    }

    /// The plain TCP socket, when this is one (a large body may move
    /// with splice(2), `pipeline::splice`).
    pub fn splice_socket(&self) -> Option<&TcpStream> {
        match &self.io {
            Io::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// The plain TCP socket, mutably (a response's first read may take
    /// its buffer from the worker's provided-buffer ring,
    /// `pipeline::exchange`).
    pub fn plain_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.io {
            Io::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// The socket's descriptor (for the watchdog's `shutdown`).
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match &self.io {
            Io::Plain(s) => s.as_raw_fd(),
            Io::Tls(_, fd) => *fd,
            Io::H2(_) => -1,
        }
    }
}

// The TLS and HTTP/2 branches' futures are boxed: in place they made every
// upstream read 776 bytes and every write 1,280 (a plain socket's are 207
// and 255), in each future that awaits one, and the per-request forward
// state holds several; a busy connection's request state is 1 KiB smaller
// for it (`bench/heap-profile.sh`). The price is one allocation per TLS
// or HTTP/2 upstream read or write, next to the record's encryption or
// the frame's encoding.
impl AsyncReadRent for UpstreamStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.read(buf).await,
            Io::Tls(s, _) => Box::pin(s.read(buf)).await,
            Io::H2(s) => Box::pin(s.read(buf)).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.readv(buf).await,
            Io::Tls(s, _) => Box::pin(s.readv(buf)).await,
            Io::H2(s) => Box::pin(s.readv(buf)).await,
        }
    }
}

impl AsyncWriteRent for UpstreamStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.write(buf).await,
            Io::Tls(s, _) => Box::pin(s.write(buf)).await,
            Io::H2(s) => Box::pin(s.write(buf)).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.writev(buf).await,
            Io::Tls(s, _) => Box::pin(s.writev(buf)).await,
            Io::H2(s) => Box::pin(s.writev(buf)).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match &mut self.io {
            Io::Plain(s) => s.flush().await,
            Io::Tls(s, _) => s.flush().await,
            Io::H2(_) => Ok(()),
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.io {
            Io::Plain(s) => s.shutdown().await,
            Io::Tls(s, _) => s.shutdown().await,
            Io::H2(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain upstream's read and write futures stay a plain socket's
    /// size: the TLS and HTTP/2 branches are boxed (776 and 1,280 bytes in
    /// place in a release build; every exchange future holds them).
    #[test]
    fn plain_upstream_io_futures_stay_small() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut up = UpstreamStream::plain(TcpStream::connect(addr).await.unwrap());
            let read = std::mem::size_of_val(&up.read(Vec::<u8>::with_capacity(16)));
            let write = std::mem::size_of_val(&up.write(Vec::<u8>::new()));
            println!("upstream read future {read} bytes, write future {write} bytes");
            assert!(read <= 320, "read future {read} bytes");
            assert!(write <= 320, "write future {write} bytes");
        });
    }
}
