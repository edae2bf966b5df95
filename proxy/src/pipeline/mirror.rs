//! Mirroring (`mirror = { cluster = "shadow", fraction = 0.1 }` on a
//! route): a copy of the request goes to a shadow cluster; its answer is
//! read up to the response head and thrown away. The primary request never
//! waits for it.
//!
//! # How
//! Just before the `forward` stage, a sampled request whose body is absent
//! or already wholly in hand (a `Content-Length` body up to `max_body`;
//! chunked bodies are not copied) is written once more, as it would go
//! upstream (same header edits and rewritten target), into its own buffer,
//! and a detached task on the same worker sends it: pick an endpoint of the
//! shadow cluster, connect (within its circuit breakers), write, read the
//! response head, close. The task is bounded by `timeout` and at most
//! [`MAX_IN_FLIGHT`] copies run per worker; past that a copy is dropped
//! (counted), never queued. Counted per shadow cluster: `mirror.sent`,
//! `mirror.failed`, `mirror.dropped`.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use monoio::io::AsyncWriteRentExt;

use super::buffer::ConnBuf;
use super::exchange::{open_connection, read_head_alone};
use super::generation::WorkerGen;
use crate::config::MirrorPolicy;
use crate::http::rewrite::{write_request_head, ForwardInfo};
use crate::http::{BodyFraming, HeadLimits, RequestHead, ResponseHead};
use crate::runtime::worker::Worker;

/// Copies in flight on one worker at most.
pub const MAX_IN_FLIGHT: u32 = 64;

thread_local! {
    static IN_FLIGHT: Cell<u32> = const { Cell::new(0) };
}

/// A copy's place among the worker's in-flight copies.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        IN_FLIGHT.with(|n| {
            if n.get() >= MAX_IN_FLIGHT {
                None
            } else {
                n.set(n.get() + 1);
                Some(Slot)
            }
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Send a copy of the request in `data` (head parsed into `head`) to the
/// policy's shadow cluster, if it is sampled and its body is in hand.
#[allow(clippy::too_many_arguments)]
pub fn maybe_mirror(
    worker: &Rc<Worker>,
    gen: &Rc<WorkerGen>,
    policy: &MirrorPolicy,
    data: &[u8],
    head: &RequestHead,
    info: &ForwardInfo<'_>,
    proxy_addrs: (SocketAddr, SocketAddr),
) {
    if policy.fraction < 1.0 {
        let draw = (worker.random_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= policy.fraction {
            return;
        }
    }
    let body = match head.framing {
        BodyFraming::None => 0,
        BodyFraming::Length(n) if n <= policy.max_body => n as usize,
        _ => return,
    };
    let Some(body_bytes) = data.get(head.head_len..head.head_len + body) else {
        // Not all of it has arrived: not copied.
        return;
    };
    let stats = &gen.stats.clusters[policy.cluster];
    let Some(slot) = Slot::take() else {
        stats.mirror_dropped.inc();
        return;
    };
    let mut copy = Vec::with_capacity(head.head_len + body + 128);
    write_request_head(&mut copy, data, head, info);
    copy.extend_from_slice(body_bytes);
    let (worker, gen) = (worker.clone(), gen.clone());
    let (cluster, timeout, was_head) = (policy.cluster, policy.timeout, head.is_head(data));
    monoio::spawn(async move {
        let _slot = slot;
        let sent = monoio::time::timeout(
            timeout,
            send(&worker, &gen, cluster, copy, was_head, proxy_addrs),
        )
        .await;
        let stats = &gen.stats.clusters[cluster];
        match sent {
            Ok(Ok(())) => stats.mirror_sent.inc(),
            _ => stats.mirror_failed.inc(),
        }
    });
}

/// One copy: an endpoint, a new connection, the request, the answer's head.
async fn send(
    worker: &Worker,
    gen: &WorkerGen,
    cluster: usize,
    copy: Vec<u8>,
    was_head: bool,
    proxy_addrs: (SocketAddr, SocketAddr),
) -> Result<(), crate::error::ProxyError> {
    let picked = super::pick::pick_again(gen, cluster, usize::MAX)?;
    let (mut up, _) = open_connection(worker, gen, cluster, picked.endpoint(), proxy_addrs).await?;
    let (res, _) = up.write_all(copy).await;
    res.map_err(|e| {
        crate::error::ProxyError::new(crate::error::ErrorKind::UpstreamClosed).with_cause(e)
    })?;
    let config = gen.config();
    let limits = HeadLimits {
        max_head_bytes: config.limits.max_head_bytes,
        max_headers: config.limits.max_headers,
    };
    let mut buf = ConnBuf::with_buffer(Vec::with_capacity(4096));
    let mut resp = ResponseHead::default();
    read_head_alone(
        &mut up,
        &mut buf,
        &limits,
        was_head,
        &mut resp,
        "101 to a mirrored request",
    )
    .await?;
    drop(picked);
    Ok(())
}
