//! Running the legs: two waves (independent legs, then the legs that read
//! their answers), each joined on the request's own task.
//!
//! One leg: pick the endpoint (kept in flight until the leg ends) → write
//! the leg's head → pooled connection or connect (a reused connection that
//! fails before any response byte is retried once on a fresh one, as in
//! `exchange.rs`) → response head (1xx skipped) → body de-chunked into a
//! buffer of at most `max_leg_bytes` → connection back to the pool when it
//! ended cleanly. The whole leg runs under one monoio timer: its `timeout`,
//! or what is left of the aggregation's `deadline` when that is sooner.
//!
//! Each leg counts as an upstream request of its cluster and endpoint
//! (requests, response classes, errors, timeouts, connections), like a
//! forwarded request; the aggregate request itself counts for its route.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use monoio::io::AsyncWriteRentExt;

use super::template::{json_field, query_value, Source, Value};
use super::{Aggregation, Leg};
use crate::error::{ErrorKind, ProxyError};
use crate::http::hop::is_hop_by_hop;
use crate::http::{HeadLimits, HeaderEdits, RequestHead, ResponseFraming, ResponseHead};
use crate::pipeline::body::BodyFrame;
use crate::pipeline::buffer::ConnBuf;
use crate::pipeline::generation::WorkerGen;
use crate::pipeline::log::count_upstream;
use crate::pipeline::pick::{pick_endpoint, PickRequest};
use crate::pipeline::route::target_path;
use crate::runtime::worker::Worker;

/// The incoming request, as the legs need it.
pub struct Incoming<'a> {
    pub worker: &'a Worker,
    pub gen: &'a WorkerGen,
    /// The connection buffer the head's spans point into.
    pub buf: &'a [u8],
    pub head: &'a RequestHead,
    /// The connection's peer (appended to X-Forwarded-For).
    pub peer: SocketAddr,
    /// The request's client (hash keys, PROXY header source).
    pub client: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    pub tls: bool,
    /// The request's X-Request-Id (sent, or generated).
    pub request_id: &'a [u8],
    /// The traceparent to send (tracing on).
    pub traceparent: Option<&'a [u8]>,
    /// Request header edits of the route's filters (applied to every leg).
    pub edits: &'a HeaderEdits,
}

/// A leg's 2xx answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Decoded (de-chunked) body.
    pub body: Vec<u8>,
}

/// Why a leg failed (shown per leg in the 502 body).
#[derive(Debug)]
pub enum LegError {
    /// Connect, TLS, transport, or an invalid response.
    Upstream(ProxyError),
    /// The leg's own `timeout`.
    Timeout(Duration),
    /// The aggregation's `deadline` passed first.
    Deadline(Duration),
    /// A status outside 200..=299.
    Status(u16),
    /// The body was over `max_leg_bytes`.
    TooLarge(u64),
    /// A placeholder had no value (`missing value for {x}`).
    Missing(String),
    /// A leg whose answer this one reads failed (its name).
    Dependency(String),
}

impl fmt::Display for LegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LegError::Upstream(e) => write!(f, "{e}"),
            LegError::Timeout(d) => write!(f, "timeout after {d:?}"),
            LegError::Deadline(d) => write!(f, "deadline of {d:?} passed"),
            LegError::Status(s) => write!(f, "status {s}"),
            LegError::TooLarge(n) => write!(f, "body over max_leg_bytes ({n} bytes)"),
            LegError::Missing(m) => f.write_str(m),
            LegError::Dependency(leg) => write!(f, "not sent: leg {leg:?} failed"),
        }
    }
}

impl LegError {
    /// What the client is told: an upstream failure by its kind only (its
    /// cause, an io or TLS message, may name internal hosts: logged, not
    /// sent).
    pub fn public(&self) -> String {
        match self {
            LegError::Upstream(e) => format!("upstream error: {}", e.name()),
            other => other.to_string(),
        }
    }
}

pub type LegOutcome = Result<Answer, LegError>;

/// Largest answer whose fields another leg may read (a parsed JSON tree
/// takes up to ~16× its text; larger answers are still merged verbatim).
pub const REFERENCE_MAX: usize = 256 * 1024;

/// What a sent leg's client span says (span export; `traceparent` on).
#[derive(Debug, Clone)]
pub struct LegSpan {
    /// Index in the aggregation's legs.
    pub leg: usize,
    pub cluster: usize,
    /// The endpoint picked (none: the pick failed).
    pub endpoint: Option<usize>,
    /// The span id sent in the leg's `traceparent` (hex).
    pub span_id: [u8; 16],
    pub started: Instant,
    pub ended: Instant,
    /// The upstream's status (0: none came).
    pub status: u16,
    pub reused: bool,
    /// Why the leg failed.
    pub error: Option<String>,
}

/// Run every leg of `agg` for the request; outcomes in leg order, and the
/// sent legs' spans (when a `traceparent` is sent).
pub async fn run(agg: &Aggregation, inc: &Incoming<'_>) -> (Vec<LegOutcome>, Vec<LegSpan>) {
    let mut spans = Vec::new();
    let deadline_at = Instant::now() + agg.deadline;
    let target = inc.head.target.get(inc.buf);
    let caps = agg
        .captures
        .as_ref()
        .and_then(|r| r.captures(target_path(target)));
    let n = agg.legs.len();
    let mut results: Vec<Option<LegOutcome>> = (0..n).map(|_| None).collect();
    // The parsed answers of the legs another leg reads.
    let mut answers: Vec<Option<serde_json::Value>> = vec![None; n];
    for wave in 0..2 {
        let mut started = Vec::new();
        let mut futs = Vec::new();
        for (i, leg) in agg.legs.iter().enumerate() {
            if leg.deps.is_empty() != (wave == 0) {
                continue;
            }
            if let Some(&d) = leg
                .deps
                .iter()
                .find(|&&d| !matches!(results[d], Some(Ok(_))))
            {
                results[i] = Some(Err(LegError::Dependency(agg.legs[d].name.clone())));
                continue;
            }
            let mut path = Vec::with_capacity(64);
            let rendered = leg.path.render(&mut path, |s| match s {
                Source::Named(name) => {
                    caps.as_ref()
                        .and_then(|c| c.name(name))
                        .map(|m| Value::Request {
                            raw: m.as_bytes(),
                            keep_plus: false,
                        })
                }
                Source::Index(i) => caps
                    .as_ref()
                    .and_then(|c| c.get(*i))
                    .map(|m| Value::Request {
                        raw: m.as_bytes(),
                        keep_plus: false,
                    }),
                Source::Query(name) => query_value(target, name).map(|raw| Value::Request {
                    raw,
                    keep_plus: true,
                }),
                Source::Field { leg, path } => answers[*leg]
                    .as_ref()
                    .and_then(|v| json_field(v, path))
                    .map(Value::Plain),
            });
            match rendered {
                Err(m) => results[i] = Some(Err(LegError::Missing(m))),
                Ok(()) => {
                    started.push(i);
                    futs.push(Box::pin(run_leg(agg, inc, i, path, deadline_at)));
                }
            }
        }
        for (i, (outcome, span)) in started.into_iter().zip(join_all(futs).await) {
            spans.extend(span);
            if let (true, Ok(a)) = (agg.legs[i].referenced, &outcome) {
                // Fields are read from answers up to REFERENCE_MAX bytes:
                // a parsed tree takes many times its text.
                answers[i] = if a.body.len() <= REFERENCE_MAX {
                    serde_json::from_slice(&a.body).ok()
                } else {
                    None
                };
            }
            results[i] = Some(outcome);
        }
    }
    let outcomes = results
        .into_iter()
        .map(|r| r.expect("every leg has an outcome"))
        .collect();
    (outcomes, spans)
}

/// Poll every future on the current task until all are done. Each wake
/// polls the ones still pending (a handful of legs: cheaper than a
/// per-future waker).
async fn join_all<F: Future>(mut futs: Vec<Pin<Box<F>>>) -> Vec<F::Output> {
    let mut outs: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futs.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outs.into_iter()
        .map(|o| o.expect("joined future finished"))
        .collect()
}

/// One leg, start to end, with its stats (and its span when traced).
async fn run_leg(
    agg: &Aggregation,
    inc: &Incoming<'_>,
    i: usize,
    path: Vec<u8>,
    deadline_at: Instant,
) -> (LegOutcome, Option<LegSpan>) {
    let started = Instant::now();
    // Each leg is its own client span: a fresh span id in its traceparent.
    let span_id = inc.traceparent.map(|_| {
        let mut id = [0u8; 32];
        inc.worker.next_request_id(&mut id);
        let mut s = [0u8; 16];
        s.copy_from_slice(&id[..16]);
        s
    });
    let mut trace = (None, false, 0u16);
    let outcome = leg_outcome(agg, inc, i, path, deadline_at, span_id.as_ref(), &mut trace).await;
    let span = span_id.map(|span_id| LegSpan {
        leg: i,
        cluster: agg.legs[i].cluster,
        endpoint: trace.0,
        span_id,
        started,
        ended: Instant::now(),
        status: trace.2,
        reused: trace.1,
        error: outcome.as_ref().err().map(|e| e.to_string()),
    });
    (outcome, span)
}

/// [`run_leg`] without the span: `trace` gets the endpoint, whether the
/// connection was reused, and the upstream status.
async fn leg_outcome(
    agg: &Aggregation,
    inc: &Incoming<'_>,
    i: usize,
    path: Vec<u8>,
    deadline_at: Instant,
    span_id: Option<&[u8; 16]>,
    trace: &mut (Option<usize>, bool, u16),
) -> LegOutcome {
    let leg = &agg.legs[i];
    let gen = inc.gen;
    let left = deadline_at.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(LegError::Deadline(agg.deadline));
    }
    let (limit, by_deadline) = if leg.timeout < left {
        (leg.timeout, false)
    } else {
        (left, true)
    };
    let picked = match pick_endpoint(
        gen,
        leg.cluster,
        &PickRequest {
            buf: inc.buf,
            head: inc.head,
            client: inc.client.ip(),
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            let err = LegError::Upstream(e);
            // No endpoint, no upstream request: the forward path does not
            // count these in the cluster either (the route's 502 does).
            return Err(err);
        }
    };
    let ep = picked.endpoint();
    trace.0 = Some(ep);
    let label = gen.config().clusters[leg.cluster].endpoints[ep]
        .label
        .as_bytes();
    let head = leg_head(inc, leg, &path, label, span_id);
    let mut ubuf = ConnBuf::with_buffer(inc.worker.take_buffer());
    let exchanged = monoio::time::timeout(
        limit,
        exchange_leg(inc, leg, ep, head, agg.max_leg_bytes, &mut ubuf, trace),
    )
    .await;
    inc.worker.give_buffer(ubuf.into_inner());
    let outcome = match exchanged {
        Ok(Ok((answer, head_time))) => {
            picked.observe(head_time);
            Ok(answer)
        }
        Ok(Err(e)) => Err(e),
        Err(_) if by_deadline => Err(LegError::Deadline(agg.deadline)),
        Err(_) => Err(LegError::Timeout(leg.timeout)),
    };
    record(gen, leg.cluster, ep, outcome.as_ref().map(|a| a.status));
    let outcome = match outcome {
        Ok(a) if !(200..300).contains(&a.status) => Err(LegError::Status(a.status)),
        other => other,
    };
    if let Err(e) = &outcome {
        tracing::debug!(worker = inc.worker.id, leg = %leg.name, error = %e, "aggregate leg failed");
    }
    outcome
}

/// Count the leg as an upstream request of its cluster (and endpoint).
fn record(gen: &WorkerGen, cluster: usize, ep: usize, outcome: Result<u16, &LegError>) {
    let kind = match outcome {
        Ok(_) => None,
        Err(LegError::Upstream(e)) => Some(e.kind),
        Err(LegError::Timeout(_) | LegError::Deadline(_)) => Some(ErrorKind::UpstreamTimeout),
        Err(LegError::TooLarge(_)) => Some(ErrorKind::BadResponse("leg body over max_leg_bytes")),
        Err(LegError::Status(s)) => return count_upstream(gen, cluster, ep, *s, None),
        Err(LegError::Missing(_) | LegError::Dependency(_)) => return,
    };
    // Like a forwarded request: a failure counts in the class of the status
    // ringway would answer it with.
    let status = match (outcome, kind) {
        (Ok(s), _) => s,
        (Err(_), Some(k)) => ProxyError::new(k).status().unwrap_or(502),
        (Err(_), None) => 502,
    };
    count_upstream(gen, cluster, ep, status, kind.as_ref());
}

/// The leg's request head: method, rendered path, `Host` (the endpoint's
/// label), the listed incoming headers, the forwarding fields a forwarded
/// request carries, and the route filters' request edits.
fn leg_head(
    inc: &Incoming<'_>,
    leg: &Leg,
    path: &[u8],
    host: &[u8],
    span_id: Option<&[u8; 16]>,
) -> Vec<u8> {
    let buf = inc.buf;
    let edits = inc.edits;
    let mut out = Vec::with_capacity(256 + path.len());
    out.extend_from_slice(&leg.method);
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_field(&mut out, b"Host", host);
    for name in &leg.headers {
        if edits.drops(name) {
            continue;
        }
        for h in &inc.head.headers {
            if h.name.get(buf).eq_ignore_ascii_case(name) {
                push_field(&mut out, h.name.get(buf), h.value.get(buf));
            }
        }
    }
    if !edits.drops(b"x-forwarded-for") {
        out.extend_from_slice(b"X-Forwarded-For: ");
        for h in &inc.head.headers {
            if h.name.get(buf).eq_ignore_ascii_case(b"x-forwarded-for") {
                let v = h.value.get(buf).trim_ascii();
                if !v.is_empty() {
                    out.extend_from_slice(v);
                    out.extend_from_slice(b", ");
                }
            }
        }
        out.extend_from_slice(inc.peer.ip().to_canonical().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !edits.drops(b"x-forwarded-proto") {
        let proto: &[u8] = if inc.tls { b"https" } else { b"http" };
        push_field(&mut out, b"X-Forwarded-Proto", proto);
    }
    if let Some(h) = inc.head.host {
        if !h.is_empty() && !edits.drops(b"x-forwarded-host") {
            push_field(&mut out, b"X-Forwarded-Host", h.get(buf));
        }
    }
    if !edits.drops(b"x-request-id") {
        push_field(&mut out, b"X-Request-Id", inc.request_id);
    }
    if let Some(tp) = inc.traceparent {
        // The request's trace, the leg's own span id.
        match (span_id, tp.len()) {
            (Some(id), 55) => {
                let mut v = [0u8; 55];
                v.copy_from_slice(tp);
                v[36..52].copy_from_slice(id);
                push_field(&mut out, b"traceparent", &v);
            }
            _ => push_field(&mut out, b"traceparent", tp),
        }
    }
    if !matches!(&*leg.method, b"GET" | b"HEAD") {
        push_field(&mut out, b"Content-Length", b"0");
    }
    for (name, value) in edits.fields() {
        let own = name.eq_ignore_ascii_case(b"host")
            || name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
            || is_hop_by_hop(name);
        if !own {
            push_field(&mut out, name, value);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Send the head and read the answer: the answer and the time from the
/// request being sent to its response head.
async fn exchange_leg(
    inc: &Incoming<'_>,
    leg: &Leg,
    ep: usize,
    mut head: Vec<u8>,
    max: u64,
    ubuf: &mut ConnBuf,
    trace: &mut (Option<usize>, bool, u16),
) -> Result<(Answer, Duration), LegError> {
    let (worker, gen) = (inc.worker, inc.gen);
    let config = gen.config();
    let cluster = &config.clusters[leg.cluster];
    let pool_id = worker.pool.borrow().endpoint_id(leg.cluster, ep);
    let ep_stats = gen.stats.endpoint(leg.cluster, ep);
    let limits = HeadLimits {
        max_head_bytes: config.limits.max_head_bytes,
        max_headers: config.limits.max_headers,
    };
    let head_request = &*leg.method == b"HEAD";
    let mut resp = ResponseHead::default();
    let mut attempt = 0;
    let (mut up, sent_at) = loop {
        attempt += 1;
        // A cluster that sends PROXY headers never pools (forward.rs).
        let pooled = if attempt == 1 && cluster.send_proxy_protocol.is_none() {
            worker.pool.borrow_mut().checkout(pool_id)
        } else {
            None
        };
        let retry_allowed = pooled.is_some() && attempt == 1;
        trace.1 = pooled.is_some();
        let mut up = match pooled {
            Some(c) => {
                ep_stats.cx_reused.inc();
                c
            }
            None => match crate::pipeline::exchange::open_connection(
                worker,
                gen,
                leg.cluster,
                ep,
                (inc.client, inc.local),
            )
            .await
            {
                Ok((c, from_pool)) => {
                    trace.1 |= from_pool;
                    if from_pool {
                        ep_stats.cx_reused.inc();
                    } else {
                        ep_stats.cx_new.inc();
                    }
                    c
                }
                Err(e) => {
                    if !matches!(e.kind, ErrorKind::Overflow(_)) {
                        ep_stats.connect_failures.inc();
                    }
                    return Err(LegError::Upstream(e));
                }
            },
        };
        let (res, h) = up.write_all(head).await;
        head = h;
        if let Err(e) = res {
            if retry_allowed {
                continue;
            }
            let e = ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e);
            return Err(LegError::Upstream(e));
        }
        let sent_at = Instant::now();
        ubuf.consume(ubuf.len());
        match crate::pipeline::exchange::read_head_alone(
            &mut up,
            ubuf,
            &limits,
            head_request,
            &mut resp,
            "101 to an aggregate leg",
        )
        .await
        {
            Ok(()) => break (up, sent_at),
            // The request reached the upstream: send it again only when
            // that is safe (a stale pooled connection closed before any
            // answer, and a method without side effects).
            Err(e)
                if e.retry && retry_allowed && crate::pipeline::retry::idempotent(&leg.method) =>
            {
                continue
            }
            Err(e) => return Err(LegError::Upstream(e)),
        }
    };
    let head_time = sent_at.elapsed();
    trace.2 = resp.status;
    if let ResponseFraming::Length(n) = resp.framing {
        if n > max {
            return Err(LegError::TooLarge(max));
        }
    }
    ubuf.consume(resp.head_len);
    let mut frame = BodyFrame::response(resp.framing);
    let mut body = Vec::new();
    loop {
        let n = frame
            .advance(ubuf.data(), Some(&mut body))
            .map_err(LegError::Upstream)?;
        ubuf.consume(n);
        if body.len() as u64 > max {
            return Err(LegError::TooLarge(max));
        }
        if frame.is_done() {
            break;
        }
        ubuf.make_room(4096, usize::MAX);
        match ubuf.read_from(&mut up).await {
            Ok(0) => {
                frame.on_eof().map_err(LegError::Upstream)?;
                break;
            }
            Ok(_) => {}
            Err(e) => {
                let e = ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e);
                return Err(LegError::Upstream(e));
            }
        }
    }
    let reusable = cluster.send_proxy_protocol.is_none()
        && !resp.conn_close
        && resp.framing != ResponseFraming::UntilClose
        && ubuf.is_empty()
        && !worker.draining.get();
    if reusable {
        worker
            .pool
            .borrow_mut()
            .checkin(pool_id, up, worker.watchdog.now());
    }
    let answer = Answer {
        status: resp.status,
        body,
    };
    Ok((answer, head_time))
}
