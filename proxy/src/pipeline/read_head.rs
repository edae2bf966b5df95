//! The `read_head` stage: wait for and parse the next request head.
//!
//! Timeouts: a new connection must deliver a complete head within
//! `header_read_timeout`; between keep-alive requests the connection may sit
//! idle for `idle_timeout`, and once the first byte of a head arrives the
//! head must be complete within `header_read_timeout` (slowloris → 408).
//! A connection that is idle when the worker starts draining is closed.

use std::time::Instant;

use monoio::io::AsyncReadRent;

use super::buffer::ConnBuf;
use crate::error::{ErrorKind, ProxyError};
use crate::http::head::parse_request_head;
use crate::http::{HeadLimits, RequestHead};
use crate::runtime::worker::Worker;

/// What `read_head` found.
pub enum HeadRead {
    /// `head` holds a complete head at the start of the buffer.
    Ready,
    /// The connection ended cleanly between requests (or idled out).
    Closed,
}

pub async fn read_head<S: AsyncReadRent>(
    worker: &Worker,
    stream: &mut S,
    buf: &mut ConnBuf,
    head: &mut RequestHead,
    first: bool,
) -> Result<HeadRead, ProxyError> {
    let limits = &worker.config.limits;
    let head_limits = HeadLimits {
        max_head_bytes: limits.max_head_bytes,
        max_headers: limits.max_headers,
    };
    let mut deadline = if first || !buf.is_empty() {
        Some(Instant::now() + limits.header_read_timeout)
    } else {
        None
    };
    loop {
        if !buf.is_empty() && parse_request_head(buf.data(), &head_limits, head)? {
            return Ok(HeadRead::Ready);
        }
        buf.make_room(4096, limits.max_head_bytes + 4096);
        match deadline {
            None => {
                // Idle keep-alive connection: wait for the next request.
                if worker.draining.get() {
                    return Ok(HeadRead::Closed);
                }
                let read = monoio::select! {
                    r = monoio::time::timeout(limits.idle_timeout, buf.read_from(stream)) => r,
                    _ = worker.shutdown.notified() => return Ok(HeadRead::Closed),
                };
                match read {
                    Ok(Ok(n)) if n > 0 => {
                        deadline = Some(Instant::now() + limits.header_read_timeout);
                    }
                    _ => return Ok(HeadRead::Closed),
                }
            }
            Some(at) => {
                // A timed-out read takes the buffer with it: decide on what
                // was there before the read.
                let had_bytes = !buf.is_empty();
                let at = monoio::time::Instant::from_std(at);
                let read = monoio::time::timeout_at(at, buf.read_from(stream)).await;
                match read {
                    Err(_) if !had_bytes => return Ok(HeadRead::Closed),
                    Err(_) => return Err(ProxyError::new(ErrorKind::HeaderTimeout)),
                    Ok(Ok(0)) if buf.is_empty() => return Ok(HeadRead::Closed),
                    Ok(Ok(0)) => return Err(ProxyError::new(ErrorKind::ClientClosed)),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        return Err(ProxyError::new(ErrorKind::ClientClosed).with_cause(e))
                    }
                }
            }
        }
    }
}
