//! The `forward` stage: from the chosen cluster to the response on its way
//! back to the client.
//!
//! ```text
//! pick endpoint (pick.rs) → write the upstream head (header edits, rewritten
//!   target) → upstream exchange (exchange.rs: pooled connection or connect,
//!   send, stream the request body, response head; may run again)
//!   → response filters → send response head → stream response body
//!   → return the connection to the pool
//! ```
//!
//! Timeouts (kept by the worker's watchdog, one deadline per connection; the
//! connect timeout is a plain timer): `connect_timeout` (connect + TLS), the
//! route `timeout` from the request being sent to the response head and
//! between response body reads, `body_read_timeout` between request body
//! reads, `idle_timeout` for each write to the client.

use std::net::SocketAddr;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::body::BodyFrame;
use super::buffer::ConnBuf;
use super::exchange::{exchange, read_upstream, UpstreamRequest};
use super::filters::compress::Compressor;
use super::filters::reply::{write_local_reply, ReplyConnection};
use super::filters::{run_response, FilterState, Flow, ResponseCx};
use super::pick::{pick_endpoint, PickRequest};
use super::route::Route;
use super::splice::splice_rest;
use crate::error::{ErrorKind, ProxyError};
use crate::http::rewrite::{write_request_head, write_response_head, ForwardInfo, ResponseInfo};
use crate::http::{HeadLimits, RequestHead, ResponseFraming, ResponseHead, Version};
use crate::net::idle_read::IdleRead;
use crate::runtime::watchdog::{Guard, WatchKey};
use crate::runtime::worker::{Worker, BIG_BUF_SIZE, BUF_SIZE};

use super::generation::WorkerGen;
use crate::upstream::{EndpointId, UpstreamStream};

/// What happens to the downstream connection after the exchange.
pub enum Next {
    KeepAlive,
    Close,
    /// 101 Switching Protocols: tunnel bytes both ways from now on.
    Upgrade(UpstreamStream),
}

/// What the exchange did, for the log stage.
#[derive(Debug, Default)]
pub struct Exchange {
    pub status: u16,
    /// Part of the response reached the client: an error now can only close.
    pub response_started: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Of `bytes_in` and `bytes_out`, those moved with splice(2)
    /// (`pipeline::splice`).
    pub bytes_spliced: u64,
    /// Index of the cluster the request went to.
    pub cluster: Option<usize>,
    /// Index of the endpoint in its cluster.
    pub endpoint: Option<usize>,
    pub reused_connection: bool,
    /// Time from sending the request to the response head.
    pub upstream_time: Option<Duration>,
    /// When the request was sent upstream (the last attempt).
    pub upstream_sent: Option<std::time::Instant>,
    /// An aggregate request's sent legs (span export).
    pub legs: Vec<super::aggregate::LegSpan>,
    /// A gRPC answer's `grpc-status` (from its head or its trailers).
    pub grpc_status: Option<u32>,
}

/// Identifiers the forwarded request carries.
#[derive(Clone, Copy)]
pub struct RequestIds<'a> {
    /// X-Request-Id to add when the request has none.
    pub request_id: &'a [u8; 32],
    /// W3C trace context to send (None: tracing off).
    pub trace: Option<&'a super::trace::TraceContext>,
}

/// Where the exchange talks to its client.
pub struct Downstream<'a, S> {
    pub stream: &'a mut S,
    pub buf: &'a mut ConnBuf,
    /// The connection's peer (TCP or PROXY header): appended to
    /// X-Forwarded-For.
    pub peer: SocketAddr,
    /// The request's client (the peer, or found in X-Forwarded-For through
    /// trusted proxies): filters, and the source of a PROXY header sent
    /// upstream.
    pub client: SocketAddr,
    /// The local address the client connected to (PROXY header destination).
    pub local: SocketAddr,
    pub tls: bool,
    /// `X-Forwarded-Client-Cert` of the verified client certificate (mTLS).
    pub client_cert: Option<&'a [u8]>,
    /// The connection's deadline slot.
    pub watch: &'a WatchKey<'a>,
    /// The connection closes after this response (its listener was removed
    /// by a reload): answer with `Connection: close`.
    pub closing: bool,
}

#[allow(clippy::too_many_arguments)]
pub async fn forward<S: AsyncReadRent + AsyncWriteRent + IdleRead>(
    worker: &Worker,
    gen: &WorkerGen,
    ds: Downstream<'_, S>,
    head: &RequestHead,
    route: &Route,
    ids: RequestIds<'_>,
    cluster_index: usize,
    (fstate, ran): (&mut FilterState, usize),
    out: &mut Vec<u8>,
    ex: &mut Exchange,
) -> Result<Next, ProxyError> {
    let Downstream {
        stream: client,
        buf: cbuf,
        peer,
        client: client_addr,
        local,
        tls,
        client_cert,
        watch,
        closing,
    } = ds;
    let config = gen.config();
    let cluster = &config.clusters[cluster_index];
    ex.cluster = Some(cluster_index);
    let idle = config.limits.idle_timeout;

    // Facts about the request we still need once its head is consumed.
    let data = cbuf.data();
    let request_was_head = head.is_head(data);
    let client_http10 = head.version == Version::Http10;
    let client_keep_alive = head.keep_alive();
    let wants_upgrade = head.upgrade.is_some();
    // A gRPC call's own deadline shortens the route's timeout.
    let route_timeout =
        super::grpc::grpc_timeout(data, head).map_or(route.timeout, |g| g.min(route.timeout));
    let idempotent = super::retry::idempotent(head.method(data));

    // Stage: pick endpoint.
    // The guard counts the request in flight to the endpoint until this
    // stage returns (least_request, peak_ewma, bounded loads).
    let pick_req = PickRequest {
        buf: data,
        head,
        client: client_addr.ip(),
    };
    let mut picked = pick_endpoint(gen, cluster_index, &pick_req)?;
    let ep_index = picked.endpoint();
    let endpoint = &cluster.endpoints[ep_index];
    ex.endpoint = Some(ep_index);
    let mut ep_id: EndpointId = worker.pool.borrow().endpoint_id(cluster_index, ep_index);

    // The upstream head, then whatever of the body is already here.
    let mut body = BodyFrame::request(head.framing, route.max_body_bytes);
    let buffered = &data[head.head_len..];
    let in_hand = body.advance(buffered, None)?;
    let mut body_in_hand = body.is_done();
    let gather = super::gather::should_gather(
        &body,
        head.expect_continue,
        config.limits.request_buffer_bytes,
    );
    out.clear();
    if let Some(rest) = gather {
        // Room for the whole request: no reallocation mid-gather.
        super::gather::room_for_gather(worker, out, head.head_len + 1024 + in_hand + rest);
    }
    write_request_head(
        out,
        data,
        head,
        &ForwardInfo {
            client_ip: peer.ip(),
            tls,
            request_id: ids.request_id,
            default_host: endpoint.label.as_bytes(),
            upgrade: wants_upgrade,
            strip_expect: head.expect_continue,
            traceparent: ids.trace.map(|t| &t.header[..]),
            drop_tracestate: ids.trace.is_some_and(|t| t.started),
            target: fstate.target(),
            edits: Some(&fstate.request),
            client_cert,
        },
    );
    out.extend_from_slice(&buffered[..in_hand]);
    let send_continue = head.expect_continue && !client_http10 && !body_in_hand && in_hand == 0;
    ex.bytes_in += (head.head_len + in_hand) as u64;
    cbuf.consume(head.head_len + in_hand);
    // `head` spans are stale from here on.

    // Stage: gather (a small body is read whole before going upstream).
    if gather.is_some() {
        let timeout = config.limits.body_read_timeout;
        ex.bytes_in += super::gather::gather_body(client, out, &mut body, watch, timeout).await?;
        body_in_hand = body.is_done();
    }

    if send_continue {
        let (res, _) = client
            .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
            .await;
        res.map_err(|e| ProxyError::new(ErrorKind::ClientClosed).with_cause(e))?;
    }

    // With the buffer ring on, the response's first read takes its buffer
    // when the response arrives (`exchange::read_upstream_selected`).
    let mut ubuf = if monoio::ring_ext::buffer_ring_on() {
        ConnBuf::default()
    } else {
        ConnBuf::with_buffer(worker.take_buffer())
    };
    let mut resp = ResponseHead::with_typical_capacity();
    let head_limits = HeadLimits {
        max_head_bytes: config.limits.max_head_bytes,
        max_headers: config.limits.max_headers,
    };
    // Stage: upstream exchange (runs again on a replayable failure), and
    // retries (`pipeline::retry`) when the route has them and the whole
    // request is in hand.
    let policy = gen.config().routes[route.index]
        .retries
        .as_ref()
        .filter(|_| body_in_hand);
    // Hedging (`pipeline::hedge`): the first attempt of a replayable
    // idempotent request, to a cluster with another endpoint to ask.
    let hedge = gen.config().routes[route.index]
        .hedge
        .as_ref()
        .filter(|_| body_in_hand && idempotent && !wants_upgrade && cluster.endpoints.len() > 1);
    let budget = &gen.retry_budgets[cluster_index];
    if policy.is_some() || hedge.is_some() {
        budget.deposit();
    }
    let overall = watch.now() + route_timeout;
    let mut retries = 0u32;
    // Counts this request among the cluster's retries in flight from its
    // first retry until it ends.
    let mut _retry_guard: Option<RetryInFlight<'_>> = None;
    let (mut up, sent_at) = loop {
        let per_try = policy.and_then(|p| p.per_try_timeout);
        let left = overall.saturating_duration_since(watch.now());
        // The hedge's copy of the request, made before the first attempt
        // borrows it.
        let hedge_req = hedge.filter(|_| retries == 0).map(|h| {
            let req = super::hedge::HedgeRequest {
                cluster: cluster_index,
                first: picked.endpoint(),
                head: out.clone(),
                head_limits,
                request_was_head,
                deadline: std::time::Instant::now() + per_try.map_or(left, |t| t.min(left)),
                proxy_addrs: (client_addr, local),
                watch,
            };
            (h, req)
        });
        let mut req = UpstreamRequest {
            cluster: cluster_index,
            endpoint: picked.endpoint(),
            pool_id: ep_id,
            timeout: per_try
                .map_or(left, |t| t.min(left))
                .max(Duration::from_millis(1)),
            head: &mut *out,
            body: &mut body,
            body_in_hand,
            request_was_head,
            client_http10,
            hedged: hedge_req.is_some(),
            head_limits,
            proxy_addrs: (client_addr, local),
        };
        let first = exchange(
            worker, gen, &mut req, client, cbuf, &mut ubuf, &mut resp, ex, watch,
        );
        let result = match hedge_req {
            None => first.await,
            // Boxed: the race holds two exchanges (11 KB), and in place it
            // made every request's forward future that large, though only
            // hedged routes ever race.
            Some((h, hreq)) => {
                match Box::pin(super::hedge::race(worker, gen, h, hreq, first)).await {
                    super::hedge::Raced::First(r) => r,
                    super::hedge::Raced::Hedge(win) => {
                        // The hedge's answer: its connection, buffer, head and
                        // endpoint replace the first attempt's.
                        let old = std::mem::replace(&mut ubuf, win.buf);
                        worker.give_buffer(old.into_inner());
                        // The first attempt may have been dropped mid-write,
                        // with the head lent out: a retry sends the hedge's.
                        *out = win.head;
                        resp = win.resp;
                        picked = win.picked;
                        ex.endpoint = Some(picked.endpoint());
                        ex.reused_connection = win.reused;
                        ep_id = worker
                            .pool
                            .borrow()
                            .endpoint_id(cluster_index, picked.endpoint());
                        Ok((win.up, win.sent_at))
                    }
                }
            }
        };
        let Some(p) = policy else { break result? };
        let per_try_fired = per_try.is_some() && watch.now() < overall;
        let (again, failed_status, error) = match &result {
            Ok(_) => (
                p.statuses.contains(&resp.status)
                    || (!p.grpc_statuses.is_empty()
                        && super::grpc::grpc_status_in_head(ubuf.data(), &resp)
                            .is_some_and(|g| p.grpc_statuses.contains(&g))),
                resp.status,
                None,
            ),
            Err(e) => (
                !ex.response_started && super::retry::retriable(e, per_try_fired),
                0,
                Some(e),
            ),
        };
        if !again || retries >= p.attempts || watch.now() >= overall {
            break result?;
        }
        // Circuit breaker: retries in flight to the cluster on this worker.
        let in_flight = &gen.retries_in_flight[cluster_index];
        let max_retries = gen.config().clusters[cluster_index].max_retries;
        if retries == 0 && max_retries.is_some_and(|m| in_flight.get() >= m) {
            gen.stats.clusters[cluster_index].overflow_retries.inc();
            break result?;
        }
        if !budget.withdraw() {
            gen.stats.clusters[cluster_index]
                .retries_budget_exhausted
                .inc();
            break result?;
        }
        if retries == 0 {
            in_flight.set(in_flight.get() + 1);
            _retry_guard = Some(RetryInFlight(in_flight));
        }
        // This attempt counts for its endpoint (requests, class, outlier
        // detection); the final one is counted by the log stage.
        record_attempt(gen, cluster_index, picked.endpoint(), failed_status, error);
        let delay = if failed_status == 503 {
            retry_after_of(ubuf.data(), &resp).map(|d| d.min(p.retry_after_max))
        } else {
            None
        }
        .unwrap_or_else(|| super::retry::backoff(p, retries, worker.random_u64()));
        // The failed answer is discarded with its connection.
        drop(result);
        ubuf.consume(ubuf.len());
        gen.stats.clusters[cluster_index].retries.inc();
        retries += 1;
        if !delay.is_zero() {
            monoio::time::sleep(delay.min(overall.saturating_duration_since(watch.now()))).await;
        }
        // Another endpoint when the cluster has one.
        let failed = picked.endpoint();
        drop(picked);
        picked = super::pick::pick_again(gen, cluster_index, failed)?;
        ex.endpoint = Some(picked.endpoint());
        ep_id = worker
            .pool
            .borrow()
            .endpoint_id(cluster_index, picked.endpoint());
    };
    let upstream_time = sent_at.elapsed();
    ex.upstream_time = Some(upstream_time);
    ex.upstream_sent = Some(sent_at);
    picked.observe(upstream_time);

    // Response head to the client.
    let upgrade = resp.status == 101;
    if upgrade && !wants_upgrade {
        return Err(ProxyError::new(ErrorKind::BadResponse(
            "101 without an upgrade request",
        )));
    }
    if ran > 0 {
        let mut cx = ResponseCx {
            status: resp.status,
            upstream: Some((ubuf.data(), &resp)),
            client: client_addr,
            route: &route.name,
            state: &mut *fstate,
        };
        match run_response(&route.filters, ran, &mut cx) {
            Flow::Continue => {}
            Flow::Reject(e) => return Err(e),
            Flow::Respond(reply) => {
                // The filter answers instead of the upstream: the upstream
                // connection is dropped (its body is not read).
                let keep = client_keep_alive && !worker.draining.get() && !closing && !upgrade;
                let mode = match (keep, client_http10) {
                    (false, _) => ReplyConnection::Close,
                    (true, true) => ReplyConnection::KeepAliveHttp10,
                    (true, false) => ReplyConnection::KeepAlive,
                };
                ex.status = reply.status;
                out.clear();
                write_local_reply(out, &reply, &fstate.response, mode, request_was_head);
                ex.bytes_out += out.len() as u64;
                write_client(client, out, idle, watch).await?;
                ex.response_started = true;
                worker.give_buffer(ubuf.into_inner());
                drop(up);
                return Ok(if keep { Next::KeepAlive } else { Next::Close });
            }
        }
    }
    // A compressed body (the `compress` filter chose it: never for HTTP/1.0
    // clients, upgrades or bodiless responses) is re-framed as chunked.
    let mut compressor = fstate.compress.chosen().map(Compressor::new);
    let dechunk = client_http10 && resp.framing == ResponseFraming::Chunked;
    let close = !client_keep_alive
        || worker.draining.get()
        || closing
        || resp.framing == ResponseFraming::UntilClose
        || dechunk;
    ex.status = resp.status;
    out.clear();
    let info = ResponseInfo {
        close: close && !upgrade,
        keep_alive_http10: client_http10 && !close,
        dechunk,
        upgrade,
        edits: Some(&fstate.response),
        compress: fstate.compress.chosen().map(|p| p.codec.token()),
    };
    // An HTTP/2 stream takes the head as fields (no HTTP/1.1 head written
    // and parsed again); a body re-framed on the way keeps the bytes path.
    let as_fields = match client.response_writer() {
        Some(w) if !upgrade && !dechunk && compressor.is_none() => {
            let len = w
                .start_from_upstream(ubuf.data(), &resp, &info)
                .map_err(|e| ProxyError::new(ErrorKind::ClientClosed).with_cause(e))?;
            ex.bytes_out += len as u64;
            // The head is out: a later failure can only end the stream.
            ex.response_started = true;
            true
        }
        _ => {
            write_response_head(out, ubuf.data(), &resp, &info);
            false
        }
    };
    let mut rbody = BodyFrame::response(resp.framing);
    // gRPC: the status is in the head of a trailers-only answer, else in
    // the trailers.
    let grpc = super::grpc::is_grpc(ubuf.data(), &resp);
    if grpc {
        ex.grpc_status = super::grpc::grpc_status_in_head(ubuf.data(), &resp);
        rbody.keep_trailers();
    }
    let head_len = resp.head_len;
    let upstream_close = resp.conn_close;
    ubuf.consume(head_len);
    room_in_out(worker, out, ubuf.len());
    let taken = if let Some(c) = compressor.as_mut() {
        c.step(&mut rbody, ubuf.data(), out)?
    } else if dechunk {
        let mut tmp = std::mem::take(out);
        let n = rbody.advance(ubuf.data(), Some(&mut tmp));
        *out = tmp;
        n?
    } else {
        let n = rbody.advance(ubuf.data(), None)?;
        out.extend_from_slice(&ubuf.data()[..n]);
        n
    };
    ubuf.consume(taken);
    ex.bytes_out += out.len() as u64;
    if !(as_fields && out.is_empty()) {
        write_client(client, out, idle, watch).await?;
    }
    ex.response_started = true;

    if upgrade {
        // Anything the upstream sent after the 101 belongs to the tunnel.
        let n = ubuf.len();
        if n > 0 {
            timed_write_prefix(&mut ubuf, client, n, idle, watch).await?;
        }
        worker.give_buffer(ubuf.into_inner());
        return Ok(Next::Upgrade(up));
    }

    // The rest of the response body.
    while !rbody.is_done() {
        // A long body between two plain sockets: spliced, not copied.
        if ubuf.is_empty() && compressor.is_none() && !dechunk {
            let mut moved = 0;
            let spliced = splice_rest(
                worker,
                watch,
                &mut rbody,
                config.limits.splice_min_bytes,
                (up.splice_socket(), Guard::Upstream, route_timeout),
                (client.splice_target(), Guard::ClientWrite, idle),
                &mut moved,
            )
            .await;
            ex.bytes_out += moved;
            ex.bytes_spliced += moved;
            if let Some(res) = spliced {
                res?;
                continue;
            }
        }
        if ubuf.is_empty() {
            // A large body streams through a big buffer: a quarter of the
            // reads, writes and loopback segments of 16 KiB steps.
            if ubuf.capacity() < BIG_BUF_SIZE && rbody.expects_more_than(BUF_SIZE as u64) {
                let small = ubuf.replace_storage(worker.take_big_buffer());
                worker.give_buffer(small);
            }
            // A compressed stream (chunked or until close): what the encoder
            // holds goes out before waiting for more.
            if let Some(c) = compressor
                .as_mut()
                .filter(|_| !matches!(resp.framing, ResponseFraming::Length(_)))
            {
                out.clear();
                c.flush(out)?;
                if !out.is_empty() {
                    ex.bytes_out += out.len() as u64;
                    write_client(client, out, idle, watch).await?;
                }
            }
            let deadline = worker.watchdog.now() + route_timeout;
            if read_upstream(watch, &mut up, &mut ubuf, deadline).await? == 0 {
                rbody.on_eof()?;
                break;
            }
        }
        if let Some(c) = compressor.as_mut() {
            out.clear();
            let n = c.step(&mut rbody, ubuf.data(), out)?;
            ubuf.consume(n);
            if !out.is_empty() {
                ex.bytes_out += out.len() as u64;
                write_client(client, out, idle, watch).await?;
            }
        } else if dechunk {
            out.clear();
            let n = rbody.advance(ubuf.data(), Some(out))?;
            ubuf.consume(n);
            ex.bytes_out += out.len() as u64;
            write_client(client, out, idle, watch).await?;
        } else {
            let n = rbody.advance(ubuf.data(), None)?;
            ex.bytes_out += n as u64;
            timed_write_prefix(&mut ubuf, client, n, idle, watch).await?;
        }
    }

    if grpc && ex.grpc_status.is_none() {
        ex.grpc_status = rbody
            .trailers()
            .and_then(crate::net::h2::send::trailer_fields)
            .and_then(|t| t.get("grpc-status")?.to_str().ok()?.trim().parse().ok());
    }

    // A body that ended with the upstream's close: the encoder's last
    // bytes and the last chunk.
    if let Some(c) = compressor.as_mut().filter(|c| !c.is_finished()) {
        out.clear();
        c.finish(out)?;
        ex.bytes_out += out.len() as u64;
        write_client(client, out, idle, watch).await?;
    }

    // Reuse the upstream connection only when the exchange ended cleanly on a
    // message boundary, and never one that began with a PROXY header (it
    // names this request's client).
    let reusable = cluster.send_proxy_protocol.is_none()
        && !up.is_h2()
        && !upstream_close
        && !rbody.is_until_close()
        && resp.framing != ResponseFraming::UntilClose
        && ubuf.is_empty()
        && !worker.draining.get();
    if reusable {
        worker
            .pool
            .borrow_mut()
            .checkin(ep_id, up, worker.watchdog.now());
    }
    worker.give_buffer(ubuf.into_inner());
    Ok(if close { Next::Close } else { Next::KeepAlive })
}

/// Room for `more` bytes in `out`, which starts small (the upstream
/// request head is written there, and a request keeps it while it waits
/// for its answer, `connection::serve_request`): when the first bytes of a
/// response body do not fit, a pooled buffer takes over (no reallocation
/// on the way). Past a pooled buffer's size, `out` grows as a `Vec` does.
fn room_in_out(worker: &Worker, out: &mut Vec<u8>, more: usize) {
    if out.capacity() - out.len() < more && out.len() + more <= BUF_SIZE {
        let mut pooled = worker.take_buffer();
        pooled.extend_from_slice(out);
        worker.give_buffer(std::mem::replace(out, pooled));
    }
}

pub(super) async fn write_client<S: AsyncWriteRent>(
    client: &mut S,
    out: &mut Vec<u8>,
    timeout: Duration,
    watch: &WatchKey<'_>,
) -> Result<(), ProxyError> {
    let deadline = watch.now() + timeout;
    watch.begin(Guard::ClientWrite, deadline, None);
    let (res, buf) = client.write_all(std::mem::take(out)).await;
    let fired = watch.end(false);
    *out = buf;
    if fired.is_some() {
        return Err(ProxyError::new(ErrorKind::ClientClosed));
    }
    res.map(|_| ())
        .map_err(|e| ProxyError::new(ErrorKind::ClientClosed).with_cause(e))
}

async fn timed_write_prefix<S: AsyncWriteRent>(
    buf: &mut ConnBuf,
    client: &mut S,
    n: usize,
    timeout: Duration,
    watch: &WatchKey<'_>,
) -> Result<(), ProxyError> {
    let deadline = watch.now() + timeout;
    watch.begin(Guard::ClientWrite, deadline, None);
    let res = buf.write_prefix_to(client, n).await;
    let fired = watch.end(false);
    if fired.is_some() {
        return Err(ProxyError::new(ErrorKind::ClientClosed));
    }
    res.map_err(|e| ProxyError::new(ErrorKind::ClientClosed).with_cause(e))
}

/// Count a failed attempt that is retried (or hedged) on its endpoint (the
/// final attempt is counted by the log stage).
pub(super) fn record_attempt(
    gen: &WorkerGen,
    cluster: usize,
    endpoint: usize,
    status: u16,
    error: Option<&ProxyError>,
) {
    let status = match (status, error) {
        (0, Some(e)) => e.status().unwrap_or(502),
        (s, _) => s,
    };
    super::log::count_upstream(gen, cluster, endpoint, status, error.map(|e| &e.kind));
}

/// A `Retry-After` field of the response head in `buf`.
fn retry_after_of(buf: &[u8], resp: &ResponseHead) -> Option<Duration> {
    crate::http::head::field_value(&resp.headers, buf, b"retry-after")
        .and_then(super::retry::retry_after)
}

/// A request being retried, counted until it ends
/// (`circuit_breakers.max_retries`).
struct RetryInFlight<'a>(&'a std::cell::Cell<u32>);

impl Drop for RetryInFlight<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future an async fn taking these arguments returns.
    #[allow(clippy::type_complexity)]
    fn future_size<A, B, C, D, E, G, H, I, J, K, F: std::future::Future>(
        _: fn(A, B, C, D, E, G, H, I, J, K) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// The forward stage's future is boxed for every request, so all of it
    /// is allocated and copied each time: what only some requests await
    /// is boxed where it is awaited (the hedge race, 11 KB; opening an
    /// upstream connection, 3 KB; the TLS and HTTP/2 branches of upstream
    /// reads and writes, 0.6 and 1 KB; a splice transfer, 0.6 KB). 2,632
    /// bytes today (debug and release); any one of them in place again
    /// makes this fail (the splice transfer alone: 2,808).
    #[test]
    fn the_forward_future_stays_small() {
        let size = future_size(super::forward::<monoio::net::TcpStream>);
        println!("forward future: {size} bytes");
        assert!(size <= 2720, "forward's future is {size} bytes");
    }
}
