//! Stage helper: a large `Content-Length` body moves between two plain TCP
//! sockets with splice(2) (`limits.splice_min_bytes`), in either direction:
//! a request body from the client to the upstream (`exchange`), a response
//! body from the upstream to the client (`forward`).
//!
//! It applies when both ends are plain sockets (no TLS, no HTTP/2, no
//! buffered prefix), the body's framing is a length (so exactly the body is
//! taken from the source socket: a pipelined request behind it stays there,
//! and the upstream connection can be reused), nothing is to be done to the
//! bytes on the way (no compression, no de-chunking), and what was already
//! read into the connection's buffer has gone out. The bytes then go
//! socket → pipe → socket and are never copied into user space
//! (`net::splice` has the syscalls and why they are not io_uring
//! operations).
//!
//! Waits are the same as the buffered path's: a read that waits on the
//! source is under the source's guard (`body_read_timeout` for a client,
//! the route's timeout for an upstream), a write that waits on the
//! destination under the destination's; the watchdog shuts the socket down
//! when one passes, which ends the wait.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::net::TcpStream;

use super::body::BodyFrame;
use crate::error::{ErrorKind, ProxyError};
use crate::net::splice::{BodyPipe, NonBlocking};
use crate::runtime::watchdog::{Guard, WatchKey};
use crate::runtime::worker::Worker;

/// Bytes moved without waiting after which the transfer lets the worker's
/// other tasks run (a fast pair of sockets never makes it wait).
const YIELD_EVERY: u64 = 1024 * 1024;

/// One end of a transfer: its socket, the guard a wait on it runs under
/// and that guard's timeout.
struct End<'s> {
    socket: &'s TcpStream,
    /// `Body` (client, reading), `ClientWrite` (client, writing) or
    /// `Upstream` (either direction).
    guard: Guard,
    timeout: Duration,
}

impl End<'_> {
    fn upstream(&self) -> bool {
        self.guard == Guard::Upstream
    }

    /// This end failed or its peer closed.
    fn closed(&self, cause: Option<io::Error>) -> ProxyError {
        let kind = if self.upstream() {
            ErrorKind::UpstreamClosed
        } else {
            ErrorKind::ClientClosed
        };
        match cause {
            Some(c) => ProxyError::new(kind).with_cause(c),
            None => ProxyError::new(kind),
        }
    }

    /// This end's guard fired.
    fn timed_out(&self) -> ProxyError {
        ProxyError::new(match self.guard {
            Guard::Upstream => ErrorKind::UpstreamTimeout,
            Guard::Body => ErrorKind::BodyTimeout,
            _ => ErrorKind::ClientClosed,
        })
    }

    /// Wait until this end can be read (`read`) or written.
    async fn wait(&self, watch: &WatchKey<'_>, read: bool) -> Result<(), ProxyError> {
        let deadline = watch.now() + self.timeout;
        let upstream = self.upstream();
        watch.begin(
            self.guard,
            deadline,
            upstream.then(|| self.socket.as_raw_fd()),
        );
        let ready = if read {
            self.socket.readable(false).await
        } else {
            self.socket.writable(false).await
        };
        if watch.end(upstream).is_some() {
            return Err(self.timed_out());
        }
        ready.map_err(|e| self.closed(Some(e)))
    }
}

/// Whether a body with `remaining` bytes still to come, between these two
/// ends, is spliced (`limits.splice_min_bytes`; 0 is off).
fn wanted(min_bytes: u64, remaining: Option<u64>) -> bool {
    min_bytes > 0 && remaining.is_some_and(|r| r >= min_bytes)
}

/// One side of [`splice_rest`]: its plain socket (`None`: not one, so
/// no splice), the guard a wait on it runs under, and that guard's timeout.
pub(super) type Side<'s> = (Option<&'s TcpStream>, Guard, Duration);

/// The rest of `body` moved from `from` to `to` with splice(2), when it is
/// a `Content-Length` body with at least `min_bytes` still to come and both
/// sides are plain sockets. `None`: not spliced (the caller streams it
/// through its buffer). `moved` counts the bytes written to `to`, also
/// after a failure. The caller's buffer must hold none of the body.
pub(super) async fn splice_rest(
    worker: &Worker,
    watch: &WatchKey<'_>,
    body: &mut BodyFrame,
    min_bytes: u64,
    (from, from_guard, from_timeout): Side<'_>,
    (to, to_guard, to_timeout): Side<'_>,
    moved: &mut u64,
) -> Option<Result<(), ProxyError>> {
    let len = body.length_remaining()?;
    if !wanted(min_bytes, Some(len)) {
        return None;
    }
    let (from, to) = (from?, to?);
    let sp = Splice::prepare(worker, from, to)?;
    let from = End {
        socket: from,
        guard: from_guard,
        timeout: from_timeout,
    };
    let to = End {
        socket: to,
        guard: to_guard,
        timeout: to_timeout,
    };
    // Boxed: only a long body gets here, and in place the transfer's state
    // would be part of every request's forward future (the body stages
    // await this for each body, spliced or not).
    let res = Box::pin(sp.run(worker, watch, from, to, len, moved)).await;
    if res.is_ok() {
        body.skip(len);
    }
    Some(res)
}

/// A transfer made ready: both sockets non-blocking until it is dropped,
/// and a pipe.
struct Splice {
    pipe: BodyPipe,
    _nonblocking: (NonBlocking, NonBlocking),
}

impl Splice {
    /// `None` when the pipe or the socket flags cannot be had (out of
    /// descriptors, say): the body then goes through the buffer as usual.
    fn prepare(worker: &Worker, from: &TcpStream, to: &TcpStream) -> Option<Splice> {
        let ready = || -> io::Result<Splice> {
            let src = NonBlocking::set(from.as_raw_fd())?;
            let dst = NonBlocking::set(to.as_raw_fd())?;
            Ok(Splice {
                pipe: worker.take_pipe()?,
                _nonblocking: (src, dst),
            })
        };
        match ready() {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(worker = worker.id, "no splice for this body: {e}");
                None
            }
        }
    }

    /// Move exactly `len` bytes from `from` to `to`. `moved` counts the
    /// bytes written to `to` (what the access log reports, also after a
    /// failure).
    async fn run(
        self,
        worker: &Worker,
        watch: &WatchKey<'_>,
        from: End<'_>,
        to: End<'_>,
        len: u64,
        moved: &mut u64,
    ) -> Result<(), ProxyError> {
        let result = transfer(&self.pipe, watch, &from, &to, len, moved).await;
        // Only an empty pipe is used again.
        if result.is_ok() {
            worker.give_pipe(self.pipe);
        }
        result
    }
}

async fn transfer(
    pipe: &BodyPipe,
    watch: &WatchKey<'_>,
    from: &End<'_>,
    to: &End<'_>,
    len: u64,
    moved: &mut u64,
) -> Result<(), ProxyError> {
    let (src, dst) = (from.socket.as_raw_fd(), to.socket.as_raw_fd());
    let mut left = len;
    let mut in_pipe = 0usize;
    let mut since_yield = 0u64;
    // A splice that moved less than asked found the source empty (or the
    // destination full): the next step is then a readiness wait, not a
    // splice that would only say `EAGAIN` (a wait on a socket that is ready
    // after all completes at once).
    let mut source_dry = false;
    let mut sink_full = false;
    while left > 0 || in_pipe > 0 {
        if left > 0 && in_pipe == 0 && source_dry {
            from.wait(watch, true).await?;
            source_dry = false;
            since_yield = 0;
        }
        // Fill: as much as the pipe has room for, never past the body.
        if left > 0 && !source_dry && in_pipe < pipe.capacity() {
            let want = (pipe.capacity() - in_pipe).min(left.min(usize::MAX as u64) as usize);
            match pipe.fill_from(src, want) {
                Ok(0) => return Err(from.closed(None)),
                Ok(n) => {
                    left -= n as u64;
                    in_pipe += n;
                    source_dry = n < want;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => source_dry = true,
                Err(e) => return Err(from.closed(Some(e))),
            }
        }
        // Drain what the pipe holds.
        if in_pipe > 0 {
            if sink_full {
                to.wait(watch, false).await?;
                since_yield = 0;
            }
            match pipe.drain_to(dst, in_pipe, left > 0) {
                Ok(n) => {
                    in_pipe -= n;
                    *moved += n as u64;
                    since_yield += n as u64;
                    sink_full = in_pipe > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => sink_full = true,
                Err(e) => return Err(to.closed(Some(e))),
            }
        }
        if since_yield >= YIELD_EVERY {
            since_yield = 0;
            YieldNow(false).await;
        }
    }
    Ok(())
}

/// Pending once, woken at once: the task goes to the back of the queue.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_enough_length_bodies_are_spliced() {
        assert!(wanted(256 * 1024, Some(256 * 1024)));
        assert!(!wanted(256 * 1024, Some(256 * 1024 - 1)));
        // Off, or a body of unknown length.
        assert!(!wanted(0, Some(1 << 30)));
        assert!(!wanted(256 * 1024, None));
    }
}
