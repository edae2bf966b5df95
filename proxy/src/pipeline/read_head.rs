//! The `read_head` stage: wait for and parse the next request head.
//!
//! Timeouts: a new connection must deliver a complete head within
//! `header_read_timeout`; between keep-alive requests the connection may sit
//! idle for `idle_timeout`, and once the first byte of a head arrives the
//! head must be complete within `header_read_timeout` (slowloris → 408).
//! During a drain an idle connection waits for its next request until its
//! drain deadline (`runtime.drain_idle_grace`, spread; see the watchdog),
//! so a request already on its way is answered, with `Connection: close`.
//! Deadlines are kept by the worker's watchdog (`runtime/watchdog.rs`), not
//! by a timer per read.
//!
//! An idle keep-alive connection holds no read buffer once it has waited
//! `IDLE_READ_RELEASE_AFTER` (`runtime.idle_read_release`, plain TCP only):
//! the watchdog cancels the read, the buffer goes back to the worker, and a
//! poll for readiness waits instead; a buffer is taken again when the next
//! request (or the end of the connection) arrives. See [`idle_read`].

use std::io;
use std::time::Duration;

use super::buffer::ConnBuf;
use crate::config::Limits;
use crate::error::{ErrorKind, ProxyError};
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::net::idle_read::IdleRead;
use crate::runtime::watchdog::{Guard, WatchKey};
use crate::runtime::worker::{Worker, BUF_SIZE};

/// What `read_head` found.
pub enum HeadRead {
    /// `head` holds a complete head at the start of the buffer.
    Ready,
    /// The connection ended cleanly between requests (or idled out).
    Closed,
    /// An idle keep-alive connection gave its buffer back and may park
    /// (`may_park`): its stage loop ends, and the caller waits for the
    /// socket to become readable, the idle deadline still armed, before it
    /// starts a new one (see `connection::serve_tcp`).
    Parked,
}

#[allow(clippy::too_many_arguments)]
pub async fn read_head<S: IdleRead>(
    worker: &Worker,
    limits: &Limits,
    stream: &mut S,
    buf: &mut ConnBuf,
    head: &mut RequestHead,
    first: bool,
    may_park: bool,
    park_at_once: bool,
    watch: &WatchKey<'_>,
) -> Result<HeadRead, ProxyError> {
    let head_limits = HeadLimits {
        max_head_bytes: limits.max_head_bytes,
        max_headers: limits.max_headers,
    };
    // The head must be complete by this time: set at accept for a new
    // connection, at the first byte for a kept-alive one.
    let mut deadline = if first || !buf.is_empty() {
        Some(worker.watchdog.now() + limits.header_read_timeout)
    } else {
        None
    };
    loop {
        if !buf.is_empty() && parse_request_head(buf.data(), &head_limits, head)? {
            watch.disarm();
            return Ok(HeadRead::Ready);
        }
        // A head that outgrows its head buffer moves into a full-size one
        // (recycled, not reallocated); larger still, it grows. The head
        // buffer it leaves is released: past its list's cap its written
        // pages go back to the kernel, not to the allocator's free blocks.
        if buf.capacity() < BUF_SIZE && !buf.has_room(4096) {
            worker.release_buffer(buf.move_into(worker.take_buffer()));
        }
        buf.make_room(4096, limits.max_head_bytes + 4096);
        let had_bytes = !buf.is_empty();
        let release = match deadline {
            None => {
                // Idle keep-alive connection: wait for the next request (a
                // drain shortens the wait to the connection's drain deadline).
                match worker.drain_idle.get() {
                    Some((from, spread)) => {
                        watch.arm_idle_draining(limits.idle_timeout, from, spread)
                    }
                    None => watch.arm(Guard::Idle, limits.idle_timeout),
                }
                watch
                    .release_after()
                    .filter(|grace| *grace < limits.idle_timeout && stream.can_release())
            }
            Some(at) => {
                watch.arm_at(Guard::Header, at);
                None
            }
        };
        // With the buffer ring a connection that may park parks at once:
        // its next request is read by its park loop's selected receive
        // (`connection::serve_plain`), so between requests it holds
        // neither a read buffer nor this stage loop. Not when it has just
        // come back from a readiness wait with nothing read (the ring ran
        // dry): that wait's data is read here, or it would park again.
        if release.is_some() && may_park && park_at_once && stream.can_select() {
            worker.give_buffer(buf.take_storage());
            return Ok(HeadRead::Parked);
        }
        let read = match release {
            Some(grace) => match idle_read(worker, stream, buf, watch, grace, may_park).await {
                Some(read) => read,
                // The idle deadline stays armed while the connection parks.
                None => return Ok(HeadRead::Parked),
            },
            None if deadline.is_none() && stream.can_select() => {
                selected_read(worker, stream, buf, None).await
            }
            None => buf.read_from(stream).await,
        };
        watch.disarm();
        match watch.take_fired() {
            Some(Guard::Header) if had_bytes => {
                return Err(ProxyError::new(ErrorKind::HeaderTimeout))
            }
            // A request arrived as the idle (or drain) deadline passed: it
            // is answered (the read side is shut, so it is the last one).
            Some(Guard::Idle) if matches!(read, Ok(n) if n > 0) => {}
            Some(_) => return Ok(HeadRead::Closed),
            None => {}
        }
        match read {
            Ok(0) if !had_bytes => return Ok(HeadRead::Closed),
            Ok(0) => return Err(ProxyError::new(ErrorKind::ClientClosed)),
            Ok(_) => {
                if deadline.is_none() {
                    deadline = Some(worker.watchdog.now() + limits.header_read_timeout);
                }
            }
            Err(_) if !had_bytes => return Ok(HeadRead::Closed),
            Err(e) => return Err(ProxyError::new(ErrorKind::ClientClosed).with_cause(e)),
        }
    }
}

/// The read of an idle keep-alive connection (nothing buffered): after
/// `grace` without a byte the watchdog cancels it; the buffer goes back to
/// the worker, the socket is polled for readiness (the idle deadline still
/// armed: a timeout or drain shuts the socket, which makes it readable),
/// and only then is a buffer taken for the read. A request within `grace`
/// is read by the first read, as without this. With `may_park`, the wait
/// for readiness is left to the caller: `None` once the buffer is back.
/// With the `buffer_ring` ring feature no buffer is lent during the grace
/// either ([`selected_read`]).
async fn idle_read<S: IdleRead>(
    worker: &Worker,
    stream: &mut S,
    buf: &mut ConnBuf,
    watch: &WatchKey<'_>,
    grace: Duration,
    may_park: bool,
) -> Option<io::Result<usize>> {
    let cancel = watch.arm_release(watch.now() + grace);
    let read = if stream.can_select() {
        selected_read(worker, stream, buf, Some(cancel)).await
    } else {
        buf.read_cancelable_from(stream, cancel).await
    };
    let released = watch.disarm_release();
    let cancelled = matches!(&read, Err(e) if e.raw_os_error() == Some(libc::ECANCELED));
    if !(released && cancelled) {
        return Some(read);
    }
    worker.release_buffer(buf.take_storage());
    if may_park {
        return None;
    }
    let ready = stream.wait_readable().await;
    buf.replace_storage(worker.take_head_buffer());
    if let Err(e) = ready {
        return Some(Err(e));
    }
    Some(buf.read_from(stream).await)
}

/// The idle read with the `buffer_ring` ring feature: no buffer is lent
/// while the connection waits. The kernel takes one from the worker's
/// provided-buffer ring when the next request arrives; its bytes are
/// copied into a head buffer and it goes straight back to the ring. A
/// ring found empty (`ENOBUFS`; it grows for the next ones) or refused
/// means an ordinary (cancelable) read into a head buffer. Cancelled (or
/// failed), the connection holds no buffer. Used with or without
/// `idle_read_release` (`cancel` is its canceller, if on).
async fn selected_read<S: IdleRead>(
    worker: &Worker,
    stream: &mut S,
    buf: &mut ConnBuf,
    cancel: Option<monoio::io::CancelHandle>,
) -> io::Result<usize> {
    worker.give_buffer(buf.take_storage());
    match stream.read_selected(cancel.clone()).await {
        Ok(got) => {
            buf.replace_storage(worker.take_head_buffer());
            buf.append(got.as_slice());
            Ok(got.as_slice().len())
        }
        Err(e) if crate::net::idle_read::read_unselected_instead(&e) => {
            buf.replace_storage(worker.take_head_buffer());
            match cancel {
                Some(cancel) => buf.read_cancelable_from(stream, cancel).await,
                None => buf.read_from(stream).await,
            }
        }
        Err(e) => Err(e),
    }
}
