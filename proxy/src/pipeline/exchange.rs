//! The upstream exchange: one request sent to one picked endpoint and its
//! response head read back, run again when that is safe.
//!
//! ```text
//! pooled connection (or connect) → send head + buffered body → stream the
//!   rest of the request body → read the response head (1xx handled)
//! ```
//!
//! [`exchange`] is one function that can run several times for one
//! downstream request: today it runs again, on a fresh connection, when a
//! *reused* pooled connection fails before any response byte arrives and the
//! whole request (head and body) was still in hand (the upstream closed an
//! idle connection at the moment we picked it). Retries with budgets,
//! hedging and fan-out build on the same function.
//!
//! Timeouts are the connection's watchdog deadlines: the route `timeout`
//! while sending to the upstream and waiting for the response head,
//! `body_read_timeout` between request body reads; `connect_timeout`
//! (connect + TLS) is a plain timer in `upstream::connect`.

use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::body::BodyFrame;
use super::buffer::ConnBuf;
use super::forward::{write_client, Exchange};
use super::generation::WorkerGen;
use super::splice::splice_rest;
use crate::error::{response_head_error, ErrorKind, ProxyError};
use crate::http::response::parse_response_head;
use crate::http::rewrite::{write_response_head, ResponseInfo};
use crate::http::{HeadLimits, ResponseHead};
use crate::net::idle_read::IdleRead;
use crate::runtime::watchdog::{Guard, WatchKey};
use crate::runtime::worker::{Worker, BUF_SIZE};
use crate::upstream::{connect, EndpointId, UpstreamStream};

/// What one exchange sends, and to whom.
pub struct UpstreamRequest<'a> {
    /// Cluster and endpoint (indices in the generation's config).
    pub cluster: usize,
    pub endpoint: usize,
    /// The endpoint's slot in the worker's pool.
    pub pool_id: EndpointId,
    /// The route timeout: sending and waiting for the response head.
    pub timeout: Duration,
    /// The upstream request head plus the body bytes already in hand (kept
    /// intact, so the exchange can send it again).
    pub head: &'a mut Vec<u8>,
    /// The request body's framing state (for the part not in hand).
    pub body: &'a mut BodyFrame,
    /// The whole body was in `head` (the request can be replayed).
    pub body_in_hand: bool,
    pub request_was_head: bool,
    pub client_http10: bool,
    /// A hedge may replace this attempt (`pipeline::hedge`): interim 1xx
    /// answers are not passed to the client (this attempt may be dropped
    /// mid-write, and the winner's answer must start clean).
    pub hedged: bool,
    pub head_limits: HeadLimits,
    /// Source and destination of the PROXY header a new connection starts
    /// with, when the cluster sends one.
    pub proxy_addrs: (std::net::SocketAddr, std::net::SocketAddr),
}

/// Run the exchange: returns the upstream connection, positioned after the
/// final response head (parsed into `resp`, its bytes at the start of
/// `ubuf`), and when the request was sent.
#[allow(clippy::too_many_arguments)]
pub async fn exchange<S: AsyncReadRent + AsyncWriteRent + IdleRead>(
    worker: &Worker,
    gen: &WorkerGen,
    req: &mut UpstreamRequest<'_>,
    client: &mut S,
    cbuf: &mut ConnBuf,
    ubuf: &mut ConnBuf,
    resp: &mut ResponseHead,
    ex: &mut Exchange,
    watch: &WatchKey<'_>,
) -> Result<(UpstreamStream, Instant), ProxyError> {
    let cluster = &gen.config().clusters[req.cluster];
    // Resends of a stream the HTTP/2 upstream refused unprocessed: it may
    // be refused again while the connections are still learning the
    // peer's stream limit (`upstream::h2::pool`), but not forever.
    const MAX_REFUSED_RESENDS: u32 = 3;
    let mut refused = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A cluster that sends PROXY headers never pools (forward.rs); a
        // connection a reload carried over from before it did is not used.
        let h2 = cluster.protocol == crate::config::UpstreamProtocol::H2;
        let pooled = if attempt == 1 && cluster.send_proxy_protocol.is_none() && !h2 {
            worker.pool.borrow_mut().checkout(req.pool_id)
        } else {
            None
        };
        let mut reused = pooled.is_some();
        let ep_stats = gen.stats.endpoint(req.cluster, req.endpoint);
        let mut up = match pooled {
            Some(c) => {
                ep_stats.cx_reused.inc();
                c
            }
            // Both boxed: each future is about 3 KB, and in place they
            // made every exchange (and the forward future holding it,
            // boxed per request) that much larger, though a keep-alive
            // exchange takes a pooled connection and awaits neither.
            None => match if h2 {
                Box::pin(crate::upstream::h2::stream(
                    worker,
                    gen,
                    req.cluster,
                    req.endpoint,
                    req.timeout,
                    req.proxy_addrs,
                ))
                .await
            } else {
                Box::pin(open_connection(
                    worker,
                    gen,
                    req.cluster,
                    req.endpoint,
                    req.proxy_addrs,
                ))
                .await
            } {
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
                    if !matches!(e.kind, ErrorKind::Overflow(_)) {
                        ep_stats.connect_failures.inc();
                    }
                    return Err(e);
                }
            },
        };
        ex.reused_connection = reused;
        let replayable = reused && req.body_in_hand && attempt == 1;
        let fd = up.fd();
        let deadline = watch.now() + req.timeout;
        watch.begin(Guard::Upstream, deadline, Some(fd));
        let (res, o) = up.write_all(std::mem::take(req.head)).await;
        let fired = watch.end(true);
        *req.head = o;
        if fired.is_some() {
            return Err(ProxyError::new(ErrorKind::UpstreamTimeout));
        }
        if let Err(e) = res {
            if replayable {
                continue;
            }
            return Err(ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e));
        }
        if !req.body_in_hand {
            send_request_body(
                worker,
                gen,
                client,
                cbuf,
                &mut up,
                req.body,
                ex,
                watch,
                req.timeout,
            )
            .await?;
        }
        let sent_at = Instant::now();
        match read_response_head(
            worker,
            &mut up,
            ubuf,
            resp,
            &req.head_limits,
            req.request_was_head,
            req.timeout,
            client,
            // HTTP/1.0 clients get no interim answers; neither does a
            // hedged request.
            req.client_http10 || req.hedged,
            ex,
            watch,
        )
        .await
        {
            Ok(()) => return Ok((up, sent_at)),
            // An HTTP/2 stream the upstream refused unprocessed is sent
            // again (its body in hand), on whatever stream is free now.
            Err(e)
                if h2
                    && e.cause
                        .as_ref()
                        .is_some_and(|c| c.kind() == std::io::ErrorKind::ConnectionRefused) =>
            {
                ep_stats.streams_refused.inc();
                if refused == MAX_REFUSED_RESENDS || !req.body_in_hand {
                    return Err(e);
                }
                refused += 1;
                tracing::debug!(
                    worker = worker.id,
                    refused,
                    "HTTP/2 upstream refused the stream; sending it again"
                );
                continue;
            }
            Err(e) if e.retry && replayable => {
                tracing::debug!(
                    worker = worker.id,
                    "reused upstream connection failed: {e}; retrying"
                );
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A new connection to `endpoint` of `cluster`, within the cluster's
/// `circuit_breakers.max_connections` (see `upstream::gauge`: an idle
/// connection of the cluster is closed to make room, else the request waits
/// for one to close or go idle, as one of at most `max_pending`, for at most
/// `connect_timeout`; a connection to this endpoint that went idle
/// meanwhile is taken, and then the flag is `true`). Counted in the
/// cluster's gauge until it closes.
pub(super) async fn open_connection(
    worker: &Worker,
    gen: &WorkerGen,
    cluster: usize,
    endpoint: usize,
    proxy_addrs: (std::net::SocketAddr, std::net::SocketAddr),
) -> Result<(UpstreamStream, bool), ProxyError> {
    let c = &gen.config().clusters[cluster];
    if c.protocol == crate::config::UpstreamProtocol::H2 {
        // A stream of a shared connection (hedges, mirror copies and
        // aggregation legs run under their own timers; this one is only a
        // safety net).
        const STREAM_SAFETY_TIMEOUT: Duration = Duration::from_secs(300);
        return crate::upstream::h2::stream(
            worker,
            gen,
            cluster,
            endpoint,
            STREAM_SAFETY_TIMEOUT,
            proxy_addrs,
        )
        .await;
    }
    let gauge = &gen.conn_gauges[cluster];
    if let Some(max) = c.max_connections {
        let mut queued = None;
        let deadline = Instant::now() + c.connect_timeout;
        while gauge.open() >= max {
            // After a wait: a connection to this endpoint that went back to
            // the pool is taken as it is.
            if queued.is_some() && c.send_proxy_protocol.is_none() {
                let id = worker.pool.borrow().endpoint_id(cluster, endpoint);
                if let Some(pooled) = worker.pool.borrow_mut().checkout(id) {
                    return Ok((pooled, true));
                }
            }
            if worker.pool.borrow_mut().evict_one(cluster) {
                continue;
            }
            let overflow = &gen.stats.clusters[cluster].overflow_pending;
            let woke = gauge
                .wait_for_room(&mut queued, c.max_pending, overflow, deadline)
                .await?;
            if !woke && gauge.open() >= max {
                gen.stats.clusters[cluster].overflow_connections.inc();
                return Err(ProxyError::new(ErrorKind::Overflow("max_connections")));
            }
        }
    }
    let counted = gauge.count();
    let stream = connect(c, &c.endpoints[endpoint], proxy_addrs).await?;
    Ok((stream.counted(counted), false))
}

/// Stream the request body that was not in hand from the client to the
/// upstream.
#[allow(clippy::too_many_arguments)]
async fn send_request_body<S: IdleRead>(
    worker: &Worker,
    gen: &WorkerGen,
    client: &mut S,
    cbuf: &mut ConnBuf,
    up: &mut UpstreamStream,
    body: &mut BodyFrame,
    ex: &mut Exchange,
    watch: &WatchKey<'_>,
    upstream_timeout: Duration,
) -> Result<(), ProxyError> {
    let limits = &gen.config().limits;
    let timeout = limits.body_read_timeout;
    while !body.is_done() {
        // A long body between two plain sockets: spliced, not copied.
        if cbuf.is_empty() {
            let mut moved = 0;
            let spliced = splice_rest(
                worker,
                watch,
                body,
                limits.splice_min_request_bytes,
                (client.splice_socket(), Guard::Body, timeout),
                (up.splice_socket(), Guard::Upstream, upstream_timeout),
                &mut moved,
            )
            .await;
            ex.bytes_in += moved;
            ex.bytes_spliced += moved;
            if let Some(res) = spliced {
                res?;
                continue;
            }
        }
        if cbuf.is_empty() {
            // The rest of the body comes through a full-size buffer (the
            // head was read into a small one: `runtime::worker`'s
            // HEAD_BUF_SIZE); after the request the connection takes a head
            // buffer again (`connection::serve`).
            if cbuf.capacity() < BUF_SIZE {
                let head_buffer = cbuf.replace_storage(worker.take_buffer());
                worker.give_buffer(head_buffer);
            }
            cbuf.make_room(4096, BUF_SIZE);
            let deadline = watch.now() + timeout;
            watch.begin(Guard::Body, deadline, None);
            let read = cbuf.read_from(client).await;
            let fired = watch.end(false);
            if fired.is_some() {
                return Err(ProxyError::new(ErrorKind::BodyTimeout));
            }
            match read {
                Err(e) => return Err(ProxyError::new(ErrorKind::ClientClosed).with_cause(e)),
                Ok(0) => body.on_eof()?,
                Ok(_) => {}
            }
        }
        let n = body.advance(cbuf.data(), None)?;
        ex.bytes_in += n as u64;
        let fd = up.fd();
        let deadline = watch.now() + upstream_timeout;
        watch.begin(Guard::Upstream, deadline, Some(fd));
        let res = cbuf.write_prefix_to(up, n).await;
        let fired = watch.end(true);
        if fired.is_some() {
            return Err(ProxyError::new(ErrorKind::UpstreamTimeout));
        }
        res.map_err(|e| ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e))?;
    }
    Ok(())
}

/// One read from the upstream, bounded by `deadline` (the watchdog shuts the
/// socket down when it passes). `UpstreamTimeout` when it fired.
pub(super) async fn read_upstream(
    watch: &WatchKey<'_>,
    up: &mut UpstreamStream,
    ubuf: &mut ConnBuf,
    deadline: std::time::Instant,
) -> Result<usize, ProxyError> {
    let fd = up.fd();
    upstream_guarded(watch, fd, deadline, || ubuf.read_from(up))
        .await?
        .map_err(|e| ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e))
}

/// Await the operation `op` makes on upstream socket `fd` under the
/// watchdog's upstream guard until `deadline` (it shuts the socket down
/// when the deadline passes, which ends the operation). `UpstreamTimeout`
/// when it fired. `op` makes the future here rather than being one: a
/// future argument stays in this future's state beside the copy being
/// awaited, twice its size (568 bytes for a read instead of 300).
async fn upstream_guarded<T, F: std::future::Future<Output = T>>(
    watch: &WatchKey<'_>,
    fd: std::os::fd::RawFd,
    deadline: std::time::Instant,
    op: impl FnOnce() -> F,
) -> Result<T, ProxyError> {
    watch.begin(Guard::Upstream, deadline, Some(fd));
    let out = op().await;
    if watch.end(true).is_some() {
        return Err(ProxyError::new(ErrorKind::UpstreamTimeout));
    }
    Ok(out)
}

/// The first read of a response into `ubuf`, which has no storage yet.
/// From a plain socket with the `buffer_ring` ring feature on, the kernel
/// takes one of the worker's provided buffers when the response arrives:
/// while the upstream prepares its answer (and at 10,000 connections
/// nearly every request is waiting there) the request holds no response
/// buffer. The bytes are copied into a pooled buffer taken then, and the
/// ring buffer goes straight back. A ring found empty (`ENOBUFS`; it grows
/// for the next ones), or any other stream (TLS, HTTP/2), reads into a
/// pooled buffer as before: `None`, `ubuf` has its storage, the caller
/// reads with [`read_upstream`] (awaited there, not nested in this
/// future, which stays the size of the selected receive).
async fn read_upstream_selected(
    worker: &Worker,
    watch: &WatchKey<'_>,
    up: &mut UpstreamStream,
    ubuf: &mut ConnBuf,
    deadline: std::time::Instant,
) -> Result<Option<usize>, ProxyError> {
    let fd = up.fd();
    if let Some(sock) = up.plain_mut() {
        match upstream_guarded(watch, fd, deadline, || sock.cancelable_read_selected(None)).await? {
            Ok(got) => {
                ubuf.replace_storage(worker.take_buffer());
                ubuf.append(got.as_slice());
                return Ok(Some(got.as_slice().len()));
            }
            Err(e) if crate::net::idle_read::read_unselected_instead(&e) => {}
            Err(e) => return Err(ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e)),
        }
    }
    ubuf.replace_storage(worker.take_buffer());
    Ok(None)
}

/// Read the final response head into `ubuf`/`resp`. Interim 1xx responses:
/// `100 Continue` is dropped (the proxy answered the client's expectation
/// itself), others are passed to HTTP/1.1 clients. A failure before any byte
/// arrived is marked retryable.
#[allow(clippy::too_many_arguments)]
async fn read_response_head<S: AsyncWriteRent>(
    worker: &Worker,
    up: &mut UpstreamStream,
    ubuf: &mut ConnBuf,
    resp: &mut ResponseHead,
    limits: &HeadLimits,
    request_was_head: bool,
    timeout: Duration,
    client: &mut S,
    client_http10: bool,
    ex: &mut Exchange,
    watch: &WatchKey<'_>,
) -> Result<(), ProxyError> {
    let deadline = watch.now() + timeout;
    let mut got_any = false;
    loop {
        if !ubuf.is_empty() {
            got_any = true;
            let complete = parse_response_head(ubuf.data(), limits, request_was_head, resp)
                .map_err(response_head_error)?;
            if complete {
                if (100..200).contains(&resp.status) && resp.status != 101 {
                    let len = resp.head_len;
                    if resp.status != 100 && !client_http10 {
                        let mut interim = Vec::with_capacity(len);
                        write_response_head(
                            &mut interim,
                            ubuf.data(),
                            resp,
                            &ResponseInfo::default(),
                        );
                        ex.bytes_out += interim.len() as u64;
                        write_client(client, &mut interim, Duration::from_secs(30), watch).await?;
                    }
                    ubuf.consume(len);
                    continue;
                }
                return Ok(());
            }
        }
        let read = if ubuf.capacity() == 0 {
            // No storage yet (`forward`, with the buffer ring on): none is
            // lent while the upstream prepares its answer.
            match read_upstream_selected(worker, watch, up, ubuf, deadline).await {
                Ok(None) => read_upstream(watch, up, ubuf, deadline).await,
                selected => selected.map(|n| n.unwrap_or_default()),
            }
        } else {
            ubuf.make_room(4096, limits.max_head_bytes + 4096);
            read_upstream(watch, up, ubuf, deadline).await
        };
        match read {
            Ok(0) => {
                return Err(ProxyError::new(ErrorKind::UpstreamClosed).retryable(!got_any));
            }
            Ok(_) => {}
            // A timeout is final; a reset before any byte may be retried.
            Err(e) if e.kind == ErrorKind::UpstreamTimeout => return Err(e),
            Err(e) => return Err(e.retryable(!got_any)),
        }
    }
}

/// Read the final response head into `ubuf`/`resp` without a client to
/// pass interim answers to (aggregate legs, hedges): interim 1xx are
/// skipped, a 101 is the error `on_101`.
/// A failure before any byte arrived is marked retryable.
pub(super) async fn read_head_alone(
    up: &mut UpstreamStream,
    ubuf: &mut ConnBuf,
    limits: &HeadLimits,
    head_request: bool,
    resp: &mut ResponseHead,
    on_101: &'static str,
) -> Result<(), ProxyError> {
    let mut got_any = false;
    loop {
        if !ubuf.is_empty() {
            got_any = true;
            let complete = parse_response_head(ubuf.data(), limits, head_request, resp)
                .map_err(response_head_error)?;
            if complete {
                if resp.status == 101 {
                    return Err(ProxyError::new(ErrorKind::BadResponse(on_101)));
                }
                if (100..200).contains(&resp.status) {
                    ubuf.consume(resp.head_len);
                    continue;
                }
                return Ok(());
            }
        }
        ubuf.make_room(4096, limits.max_head_bytes + 4096);
        match ubuf.read_from(up).await {
            Ok(0) => return Err(ProxyError::new(ErrorKind::UpstreamClosed).retryable(!got_any)),
            Ok(_) => {}
            Err(e) => {
                return Err(ProxyError::new(ErrorKind::UpstreamClosed)
                    .with_cause(e)
                    .retryable(!got_any))
            }
        }
    }
}
