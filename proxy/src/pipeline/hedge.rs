//! Hedging (`hedge = { delay = "20ms" }` on a route): when the first
//! attempt of an idempotent request has no response head after `delay`, the
//! same request goes to another endpoint of the cluster, and the first
//! response head that arrives wins; the other attempt is abandoned (its
//! connection closed, which cancels the request at that upstream).
//!
//! # When
//! Only for the first attempt of a request whose whole body is in hand, with
//! an idempotent method (RFC 9110: GET, HEAD, OPTIONS, TRACE, PUT, DELETE),
//! that is not an upgrade, to a cluster with more than one endpoint. A hedge
//! takes a token from the cluster's retry budget (`pipeline::retry`): when
//! the budget is spent no hedge is sent (`retries_budget_exhausted`), so a
//! slow cluster gets at most `1 + ratio` times its traffic.
//!
//! # Who wins
//! The first *response head*, whatever its status: a 503 that comes first
//! is the answer (the route's `retries`, if any, then treat it as they
//! treat any failed attempt). A failed attempt (connect failure, reset,
//! timeout) does not win while the other is still running: the request gets
//! the other's answer, and the failure is counted for its endpoint like a
//! retried attempt.
//!
//! # How
//! The first attempt is the ordinary [`exchange`](super::exchange) (it owns
//! the connection's watchdog slot). The hedge runs beside it on the same
//! task, without a client (interim 1xx answers are dropped) and bounded by a
//! plain timer. Both futures are polled by one `poll_fn`; the loser is
//! dropped: monoio cancels its pending ring operation and closes its socket.
//! A dropped first attempt may leave the watchdog armed, so the slot is
//! reset before the winner goes on.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;

use monoio::io::AsyncWriteRentExt;

use super::buffer::ConnBuf;
use super::exchange::read_head_alone;
use super::generation::WorkerGen;
use crate::config::HedgePolicy;
use crate::error::{ErrorKind, ProxyError};
use crate::http::{HeadLimits, ResponseHead};
use crate::runtime::watchdog::WatchKey;
use crate::runtime::worker::Worker;
use crate::upstream::lb::InFlight;
use crate::upstream::UpstreamStream;

/// What the hedge needs to send its copy of the request.
pub struct HedgeRequest<'a> {
    pub cluster: usize,
    /// The first attempt's endpoint (the hedge goes elsewhere).
    pub first: usize,
    /// The upstream head and the whole body (a copy of the first's).
    pub head: Vec<u8>,
    pub head_limits: HeadLimits,
    pub request_was_head: bool,
    /// When the attempts must have their response head.
    pub deadline: Instant,
    pub proxy_addrs: (std::net::SocketAddr, std::net::SocketAddr),
    pub watch: &'a WatchKey<'a>,
}

/// The hedge's answer, when it won.
pub struct HedgeWin<'g> {
    pub up: UpstreamStream,
    pub sent_at: Instant,
    /// Holds the response head (and any body bytes read with it).
    pub buf: ConnBuf,
    pub resp: ResponseHead,
    pub picked: InFlight<'g>,
    pub reused: bool,
    /// The request head (and body) as sent, for a retry.
    pub head: Vec<u8>,
}

/// Which attempt's outcome the request goes on with.
pub enum Raced<'g> {
    First(Result<(UpstreamStream, Instant), ProxyError>),
    Hedge(HedgeWin<'g>),
}

/// Run `first` (the ordinary exchange) and, when it is slow, a hedge.
pub async fn race<'g, F>(
    worker: &Worker,
    gen: &'g WorkerGen,
    policy: &HedgePolicy,
    mut req: HedgeRequest<'_>,
    first: F,
) -> Raced<'g>
where
    F: Future<Output = Result<(UpstreamStream, Instant), ProxyError>>,
{
    let mut first = pin!(first);
    // Phase 1: the first attempt alone, for `delay`.
    let mut timer = pin!(monoio::time::sleep(policy.delay));
    let early = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = first.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await;
    if let Some(r) = early {
        return Raced::First(r);
    }
    // Slow: a hedge, when the budget allows one and the cluster has another
    // endpoint (the token goes back when it has not).
    let stats = &gen.stats.clusters[req.cluster];
    let budget = &gen.retry_budgets[req.cluster];
    if !budget.withdraw() {
        stats.retries_budget_exhausted.inc();
        return Raced::First(first.await);
    }
    let picked = match super::pick::pick_again(gen, req.cluster, req.first) {
        Ok(p) if p.endpoint() != req.first => p,
        _ => {
            budget.refund();
            return Raced::First(first.await);
        }
    };
    stats.hedges.inc();
    let left = req.deadline.saturating_duration_since(Instant::now());
    let (cluster, second, watch) = (req.cluster, picked.endpoint(), req.watch);
    let head = std::mem::take(&mut req.head);
    let mut hedge = pin!(monoio::time::timeout(
        left,
        attempt(worker, gen, &req, second, head)
    ));

    // Phase 2: the first response head wins; a failure waits for the other.
    let mut first_failed: Option<ProxyError> = None;
    let mut hedge_failed: Option<ProxyError> = None;
    let outcome = std::future::poll_fn(|cx| {
        if first_failed.is_none() {
            if let Poll::Ready(r) = first.as_mut().poll(cx) {
                match r {
                    Ok(v) => return Poll::Ready(Ok(v)),
                    Err(e) => first_failed = Some(e),
                }
            }
        }
        if hedge_failed.is_none() {
            if let Poll::Ready(r) = hedge.as_mut().poll(cx) {
                match r {
                    Ok(Ok(v)) => return Poll::Ready(Err(Some(v))),
                    Ok(Err(e)) => hedge_failed = Some(e),
                    Err(_) => hedge_failed = Some(ProxyError::new(ErrorKind::UpstreamTimeout)),
                }
            }
        }
        if first_failed.is_some() && hedge_failed.is_some() {
            return Poll::Ready(Err(None));
        }
        Poll::Pending
    })
    .await;
    match outcome {
        // The first attempt answered first: the hedge is dropped (its
        // failure, if it had one, counts for its endpoint).
        Ok(v) => {
            if let Some(e) = hedge_failed.as_ref().filter(|e| !is_local(e)) {
                super::forward::record_attempt(gen, cluster, second, 0, Some(e));
            }
            Raced::First(Ok(v))
        }
        Err(Some((up, sent_at, buf, resp, reused, head))) => {
            // The first attempt is dropped when this returns (its ring
            // operations cancelled, its socket closed); it may have left
            // its deadline armed.
            watch.disarm();
            watch.set_upstream(-1);
            let _ = watch.take_fired();
            if let Some(e) = first_failed.as_ref().filter(|e| !is_local(e)) {
                super::forward::record_attempt(gen, cluster, req.first, 0, Some(e));
            }
            stats.hedge_wins.inc();
            Raced::Hedge(HedgeWin {
                up,
                sent_at,
                buf,
                resp,
                picked,
                reused,
                head,
            })
        }
        // Both failed: the hedge's failure is counted here, the first's goes
        // on to the retry loop and the log stage.
        Err(None) => {
            let (e1, e2) = (first_failed.take(), hedge_failed.take());
            if let Some(e) = e2.as_ref().filter(|e| !is_local(e)) {
                super::forward::record_attempt(gen, cluster, second, 0, Some(e));
            }
            Raced::First(Err(e1.expect("both attempts failed")))
        }
    }
}

type Answer = (
    UpstreamStream,
    Instant,
    ConnBuf,
    ResponseHead,
    bool,
    Vec<u8>,
);

/// A failure of ringway's own (a circuit breaker): no endpoint was asked,
/// so none is charged with it.
fn is_local(e: &ProxyError) -> bool {
    matches!(e.kind, ErrorKind::Overflow(_))
}

/// The hedge: a pooled connection (or a new one) to `endpoint`, the request,
/// and its response head.
async fn attempt(
    worker: &Worker,
    gen: &WorkerGen,
    req: &HedgeRequest<'_>,
    endpoint: usize,
    head: Vec<u8>,
) -> Result<Answer, ProxyError> {
    let cluster = &gen.config().clusters[req.cluster];
    let ep_stats = gen.stats.endpoint(req.cluster, endpoint);
    let pool_id = worker.pool.borrow().endpoint_id(req.cluster, endpoint);
    let pooled = if cluster.send_proxy_protocol.is_none() {
        worker.pool.borrow_mut().checkout(pool_id)
    } else {
        None
    };
    let mut reused = pooled.is_some();
    let mut up = match pooled {
        Some(c) => {
            ep_stats.cx_reused.inc();
            c
        }
        None => match super::exchange::open_connection(
            worker,
            gen,
            req.cluster,
            endpoint,
            req.proxy_addrs,
        )
        .await
        {
            Ok((c, from_pool)) => {
                reused = from_pool;
                if from_pool {
                    ep_stats.cx_reused.inc();
                } else {
                    ep_stats.cx_new.inc();
                }
                c
            }
            Err(e) => {
                if !is_local(&e) {
                    ep_stats.connect_failures.inc();
                }
                return Err(e);
            }
        },
    };
    let (res, head) = up.write_all(head).await;
    res.map_err(|e| ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e))?;
    let sent_at = Instant::now();
    let mut buf = ConnBuf::with_buffer(worker.take_buffer());
    let mut resp = ResponseHead::default();
    read_head_alone(
        &mut up,
        &mut buf,
        &req.head_limits,
        req.request_was_head,
        &mut resp,
        "101 to a hedged request",
    )
    .await?;
    Ok((up, sent_at, buf, resp, reused, head))
}
