//! The `gather` stage: a small request body is read whole before the
//! request goes upstream.
//!
//! A request whose head and first body bytes arrived in one read, but whose
//! Content-Length body did not fit in that read, would otherwise go upstream
//! in two writes (the head with the first part, then the rest), each a
//! separate trip through the kernel's TCP path and a separate wake-up of the
//! origin. When the rest is at most `limits.request_buffer_bytes`, it is read
//! straight after the head already written into the upstream request buffer
//! (no copy), exactly as many bytes as the body has left (a pipelined request
//! behind it stays in the socket), so the request goes out in one write and
//! is whole in hand: retries and hedging can replay it. nginx does the same
//! by default (`proxy_request_buffering on`, `client_body_buffer_size`).
//!
//! Chunked bodies and bodies whose client waits for `100 Continue` stream as
//! before.
//!
//! The upstream request buffer that gathers a body comes from the worker's
//! free lists when the whole request fits one of their buffers
//! ([`room_for_gather`]). Growing the connection's 2 KiB output buffer
//! instead cost a `realloc` per upload: a new block, a copy of the old one,
//! and the old one's page retired and set up again in the allocator
//! (1.3 % of the worker's CPU under `realloc` in a 16 KiB POST profile).

use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

use super::body::BodyFrame;
use crate::error::{ErrorKind, ProxyError};
use crate::runtime::watchdog::{Guard, WatchKey};
use crate::runtime::worker::{Worker, BIG_BUF_SIZE, BUF_SIZE};

/// Whether the rest of `body` (`Some` remaining length) should be gathered
/// under `limit` (0: never).
pub fn should_gather(body: &BodyFrame, expect_continue: bool, limit: usize) -> Option<usize> {
    if expect_continue || limit == 0 {
        return None;
    }
    match body.length_remaining() {
        Some(rem) if rem > 0 && rem <= limit as u64 => Some(rem as usize),
        _ => None,
    }
}

/// Make `out` (holding what was written of the request so far, or empty)
/// able to hold `need` bytes without growing: a pooled buffer of the
/// smallest free-list size that holds them (the content moved over), the
/// old one given back; past the largest size, one exact allocation.
pub fn room_for_gather(worker: &Worker, out: &mut Vec<u8>, need: usize) {
    if out.capacity() >= need {
        return;
    }
    let mut pooled = if need <= BUF_SIZE {
        worker.take_buffer()
    } else if need <= BIG_BUF_SIZE {
        worker.take_big_buffer()
    } else {
        Vec::with_capacity(need)
    };
    pooled.extend_from_slice(out);
    worker.give_buffer(std::mem::replace(out, pooled));
}

/// Read the rest of a Content-Length `body` from `client`, appending it to
/// `out` (after the upstream head and the body bytes already there), each
/// read bounded by `timeout` (`body_read_timeout`). Returns the bytes read.
pub async fn gather_body<S: AsyncReadRent>(
    client: &mut S,
    out: &mut Vec<u8>,
    body: &mut BodyFrame,
    watch: &WatchKey<'_>,
    timeout: Duration,
) -> Result<u64, ProxyError> {
    let mut total = 0u64;
    while let Some(rem) = body.length_remaining().filter(|&r| r > 0) {
        let rem = rem as usize;
        let mut buf = std::mem::take(out);
        let start = buf.len();
        buf.reserve(rem);
        let deadline = watch.now() + timeout;
        watch.begin(Guard::Body, deadline, None);
        let (res, slice) = client.read(buf.slice_mut(start..start + rem)).await;
        let fired = watch.end(false);
        *out = slice.into_inner();
        if fired.is_some() {
            return Err(ProxyError::new(ErrorKind::BodyTimeout));
        }
        match res {
            Err(e) => return Err(ProxyError::new(ErrorKind::ClientClosed).with_cause(e)),
            Ok(0) => body.on_eof()?,
            Ok(n) => {
                let taken = body.advance(&out[start..start + n], None)?;
                debug_assert_eq!(taken, n);
                total += n as u64;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::BodyFraming;

    #[test]
    fn only_small_length_bodies_without_expect_are_gathered() {
        let mut b = BodyFrame::request(BodyFraming::Length(20_000), None);
        b.advance(&[0u8; 16_000], None).unwrap();
        assert_eq!(should_gather(&b, false, 64 * 1024), Some(4_000));
        assert_eq!(should_gather(&b, false, 3_999), None);
        assert_eq!(should_gather(&b, false, 0), None);
        assert_eq!(should_gather(&b, true, 64 * 1024), None);
        let c = BodyFrame::request(BodyFraming::Chunked, None);
        assert_eq!(should_gather(&c, false, 64 * 1024), None);
        let done = BodyFrame::request(BodyFraming::Length(0), None);
        assert_eq!(should_gather(&done, false, 64 * 1024), None);
    }

    /// The gathering buffer comes from the free list that fits, with what
    /// was written kept, and goes back to it; a request past the largest
    /// size gets one exact allocation; a buffer with room is left alone.
    #[test]
    fn gather_room_comes_from_the_free_lists() {
        let w = crate::runtime::worker::test_worker();
        let head = b"POST / HTTP/1.1\r\n";
        for (need, min, max) in [
            (BUF_SIZE, BUF_SIZE, BIG_BUF_SIZE),
            (BUF_SIZE + 1, BIG_BUF_SIZE, 2 * BIG_BUF_SIZE + 1),
            (BIG_BUF_SIZE, BIG_BUF_SIZE, 2 * BIG_BUF_SIZE + 1),
            (BIG_BUF_SIZE + 1, BIG_BUF_SIZE + 1, 2 * BIG_BUF_SIZE),
        ] {
            let mut out = Vec::with_capacity(2048);
            out.extend_from_slice(head);
            room_for_gather(&w, &mut out, need);
            assert!(
                (min..max).contains(&out.capacity()),
                "{need}: {}",
                out.capacity()
            );
            assert_eq!(&out[..], head, "{need}: the written part moves over");
            let ptr = out.as_ptr();
            // Given back, the same storage serves the next upload of its size.
            w.give_buffer(std::mem::take(&mut out));
            room_for_gather(&w, &mut out, need);
            if need <= BIG_BUF_SIZE {
                assert_eq!(out.as_ptr(), ptr, "{need}: reused from the free list");
            }
            w.give_buffer(out);
        }
        let mut roomy = Vec::with_capacity(4096);
        let ptr = roomy.as_ptr();
        room_for_gather(&w, &mut roomy, 4096);
        assert_eq!(roomy.as_ptr(), ptr);
    }
}
