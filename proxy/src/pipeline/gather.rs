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

use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

use super::body::BodyFrame;
use crate::error::{ErrorKind, ProxyError};
use crate::runtime::watchdog::{Guard, WatchKey};

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
}
