//! The `proxy_header` stage: on a listener with `proxy_protocol = true`,
//! read the PROXY protocol header (v1 or v2) off the raw socket before
//! anything else, TLS handshake included.
//!
//! # Byte-exact reading
//! The TLS acceptor takes the `TcpStream` and cannot be handed bytes read
//! ahead of it, so the header is taken off the socket without reading a
//! byte past its end: peek (`MSG_PEEK`) what has arrived, parse it, then
//! read exactly the header's bytes. While the parser asks for more, every
//! peeked byte is part of the header (`ringway_http::proxy_protocol`), so
//! those are read too (no busy loop on data that stays queued) and the next
//! wait is for new bytes. Plain listeners use the same path (one small copy
//! per connection).
//!
//! # Errors
//! A malformed header, end of stream or a header not complete within
//! `header_read_timeout` ends the connection without a response; the
//! caller counts it in `proxy_protocol_errors`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use monoio::net::TcpStream;

use crate::http::proxy_protocol::{parse_proxy_header, ProxyHeader, MAX_HEADER_LEN};

/// Why no header was read.
#[derive(Debug)]
pub enum ProxyReadError {
    Malformed(crate::http::ProxyHeaderError),
    Closed,
    TimedOut,
    Io(io::Error),
}

impl std::fmt::Display for ProxyReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyReadError::Malformed(e) => e.fmt(f),
            ProxyReadError::Closed => f.write_str("closed before the PROXY header was complete"),
            ProxyReadError::TimedOut => f.write_str("PROXY header not complete in time"),
            ProxyReadError::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

/// Read the PROXY header at the start of `stream`, within `timeout`.
pub async fn read_proxy_header(
    stream: &TcpStream,
    timeout: Duration,
) -> Result<ProxyHeader, ProxyReadError> {
    match monoio::time::timeout(timeout, read_exact_header(stream)).await {
        Ok(r) => r,
        Err(_) => Err(ProxyReadError::TimedOut),
    }
}

async fn read_exact_header(stream: &TcpStream) -> Result<ProxyHeader, ProxyReadError> {
    let fd = stream.as_raw_fd();
    // Header bytes already taken off the socket, then the peeked ones.
    let mut got = [0u8; MAX_HEADER_LEN];
    let mut taken = 0;
    loop {
        stream.readable(false).await.map_err(ProxyReadError::Io)?;
        let peeked = match recv(fd, &mut got[taken..], libc::MSG_PEEK) {
            Ok(0) => return Err(ProxyReadError::Closed),
            Ok(n) => n,
            Err(e) if would_block(&e) => continue,
            Err(e) => return Err(ProxyReadError::Io(e)),
        };
        let seen = taken + peeked;
        match parse_proxy_header(&got[..seen]) {
            Ok(Some((header, consumed))) => {
                take(fd, consumed - taken)?;
                return Ok(header);
            }
            // Every byte seen belongs to the header: take them all.
            Ok(None) if seen < MAX_HEADER_LEN => {
                take(fd, peeked)?;
                taken = seen;
            }
            Ok(None) => {
                return Err(ProxyReadError::Malformed(crate::http::ProxyHeaderError(
                    "header longer than the maximum",
                )))
            }
            Err(e) => return Err(ProxyReadError::Malformed(e)),
        }
    }
}

/// Read and drop `n` bytes that a peek showed are queued.
fn take(fd: RawFd, mut n: usize) -> Result<(), ProxyReadError> {
    let mut sink = [0u8; MAX_HEADER_LEN];
    while n > 0 {
        match recv(fd, &mut sink[..n], 0) {
            Ok(0) => return Err(ProxyReadError::Closed),
            Ok(k) => n -= k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ProxyReadError::Io(e)),
        }
    }
    Ok(())
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// `recv(2)` without blocking.
fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
