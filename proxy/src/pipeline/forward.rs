//! The `forward` stage: one request/response exchange with an upstream.
//!
//! ```text
//! pick endpoint → pooled connection or connect → send head (+ buffered body)
//!   → stream the rest of the request body → read response head (1xx handled)
//!   → send response head → stream response body → return connection to pool
//! ```
//!
//! Retry: a request whose head and whole body were still in hand is sent once
//! more, on a fresh connection, when a *reused* pooled connection fails before
//! any response byte arrives (the upstream closed an idle connection at the
//! same moment we picked it). Nothing else is retried yet.
//!
//! Timeouts (kept by the worker's watchdog, one deadline per connection;
//! the connect timeout is a plain timer): `connect_timeout` (connect + TLS), the route `timeout` from the
//! request being sent to the response head and between response body reads,
//! `body_read_timeout` between request body reads, `idle_timeout` for each
//! write to the client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::body::BodyFrame;
use super::buffer::ConnBuf;
use super::filters::reply::{write_local_reply, ReplyConnection};
use super::filters::{run_response, FilterState, Flow, ResponseCx};
use super::route::Route;
use crate::error::{response_head_error, ErrorKind, ProxyError};
use crate::http::response::parse_response_head;
use crate::http::rewrite::{write_request_head, write_response_head, ForwardInfo, ResponseInfo};
use crate::http::{HeadLimits, RequestHead, ResponseFraming, ResponseHead, Version};
use crate::runtime::watchdog::{Fired, Guard, WatchKey};
use crate::runtime::worker::{Worker, BIG_BUF_SIZE, BUF_SIZE};

use super::generation::WorkerGen;
use crate::upstream::{connect, EndpointId, UpstreamStream};

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
    /// Index of the cluster the request went to.
    pub cluster: Option<usize>,
    /// Index of the endpoint in its cluster.
    pub endpoint: Option<usize>,
    pub reused_connection: bool,
    /// Time from sending the request to the response head.
    pub upstream_time: Option<Duration>,
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
    pub peer: SocketAddr,
    pub tls: bool,
    /// The connection's deadline slot.
    pub watch: &'a WatchKey<'a>,
}

#[allow(clippy::too_many_arguments)]
pub async fn forward<S: AsyncReadRent + AsyncWriteRent>(
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
        tls,
        watch,
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

    let ep_index = gen.balancers[cluster_index]
        .pick(cluster.endpoints.len())
        .ok_or_else(|| ProxyError::new(ErrorKind::NoEndpoint))?;
    let endpoint = &cluster.endpoints[ep_index];
    ex.endpoint = Some(ep_index);
    let ep_id: EndpointId = worker.pool.borrow().endpoint_id(cluster_index, ep_index);

    // The upstream head, then whatever of the body is already here.
    let mut body = BodyFrame::request(head.framing, route.max_body_bytes);
    let buffered = &data[head.head_len..];
    let in_hand = body.advance(buffered, None)?;
    let body_in_hand = body.is_done();
    out.clear();
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
        },
    );
    out.extend_from_slice(&buffered[..in_hand]);
    let send_continue = head.expect_continue && !client_http10 && !body_in_hand && in_hand == 0;
    ex.bytes_in += (head.head_len + in_hand) as u64;
    cbuf.consume(head.head_len + in_hand);
    // `head` spans are stale from here on.

    if send_continue {
        let (res, _) = client
            .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
            .await;
        res.map_err(|e| ProxyError::new(ErrorKind::ClientClosed).with_cause(e))?;
    }

    let mut ubuf = ConnBuf::with_buffer(worker.take_buffer());
    let mut resp = ResponseHead::default();
    let head_limits = HeadLimits {
        max_head_bytes: config.limits.max_head_bytes,
        max_headers: config.limits.max_headers,
    };
    let mut attempt = 0;
    let (mut up, sent_at) = loop {
        attempt += 1;
        let pooled = if attempt == 1 {
            worker.pool.borrow_mut().checkout(ep_id)
        } else {
            None
        };
        let reused = pooled.is_some();
        ex.reused_connection = reused;
        let ep_stats = gen.stats.endpoint(cluster_index, ep_index);
        let mut up = match pooled {
            Some(c) => {
                ep_stats.cx_reused.inc();
                c
            }
            None => match connect(cluster, endpoint).await {
                Ok(c) => {
                    ep_stats.cx_new.inc();
                    c
                }
                Err(e) => {
                    ep_stats.connect_failures.inc();
                    return Err(e);
                }
            },
        };
        let replayable = reused && body_in_hand && attempt == 1;
        let fd = up.fd();
        let deadline = watch.now() + route.timeout;
        let ((res, o), fired) = watch
            .guard(
                Guard::Upstream,
                deadline,
                Some(fd),
                up.write_all(std::mem::take(out)),
            )
            .await;
        *out = o;
        if fired.is_some() {
            return Err(ProxyError::new(ErrorKind::UpstreamTimeout));
        }
        if let Err(e) = res {
            if replayable {
                continue;
            }
            return Err(ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e));
        }
        if !body_in_hand {
            send_request_body(gen, client, cbuf, &mut up, &mut body, ex, watch, route).await?;
        }
        let sent_at = Instant::now();
        match read_response_head(
            &mut up,
            &mut ubuf,
            &mut resp,
            &head_limits,
            request_was_head,
            route.timeout,
            client,
            client_http10,
            ex,
            watch,
        )
        .await
        {
            Ok(()) => break (up, sent_at),
            Err(e) if e.retry && replayable => {
                tracing::debug!(
                    worker = worker.id,
                    "reused upstream connection failed: {e}; retrying"
                );
                continue;
            }
            Err(e) => return Err(e),
        }
    };
    ex.upstream_time = Some(sent_at.elapsed());

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
            client: peer,
            route: &route.name,
            state: &mut *fstate,
        };
        match run_response(&route.filters, ran, &mut cx) {
            Flow::Continue => {}
            Flow::Reject(e) => return Err(e),
            Flow::Respond(reply) => {
                // The filter answers instead of the upstream: the upstream
                // connection is dropped (its body is not read).
                let keep = client_keep_alive && !worker.draining.get() && !upgrade;
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
    let dechunk = client_http10 && resp.framing == ResponseFraming::Chunked;
    let close = !client_keep_alive
        || worker.draining.get()
        || resp.framing == ResponseFraming::UntilClose
        || dechunk;
    ex.status = resp.status;
    out.clear();
    write_response_head(
        out,
        ubuf.data(),
        &resp,
        &ResponseInfo {
            close: close && !upgrade,
            keep_alive_http10: client_http10 && !close,
            dechunk,
            upgrade,
            edits: Some(&fstate.response),
        },
    );
    let mut rbody = BodyFrame::response(resp.framing);
    let head_len = resp.head_len;
    let upstream_close = resp.conn_close;
    ubuf.consume(head_len);
    let taken = if dechunk {
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
    write_client(client, out, idle, watch).await?;
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
        if ubuf.is_empty() {
            // A large body streams through a big buffer: a quarter of the
            // reads, writes and loopback segments of 16 KiB steps.
            if ubuf.capacity() < BIG_BUF_SIZE && rbody.expects_more_than(BUF_SIZE as u64) {
                let small = ubuf.replace_storage(worker.take_big_buffer());
                worker.give_buffer(small);
            }
            let deadline = worker.watchdog.now() + route.timeout;
            if read_upstream(watch, &mut up, &mut ubuf, deadline).await? == 0 {
                rbody.on_eof()?;
                break;
            }
        }
        if dechunk {
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

    // Reuse the upstream connection only when the exchange ended cleanly on a
    // message boundary.
    let reusable = !upstream_close
        && !rbody.is_until_close()
        && resp.framing != ResponseFraming::UntilClose
        && ubuf.is_empty()
        && !worker.draining.get();
    if reusable {
        worker.pool.borrow_mut().checkin(ep_id, up);
    }
    worker.give_buffer(ubuf.into_inner());
    Ok(if close { Next::Close } else { Next::KeepAlive })
}

/// Stream the request body that was not in hand from the client to the
/// upstream.
#[allow(clippy::too_many_arguments)]
async fn send_request_body<S: AsyncReadRent>(
    gen: &WorkerGen,
    client: &mut S,
    cbuf: &mut ConnBuf,
    up: &mut UpstreamStream,
    body: &mut BodyFrame,
    ex: &mut Exchange,
    watch: &WatchKey<'_>,
    route: &Route,
) -> Result<(), ProxyError> {
    let timeout = gen.config().limits.body_read_timeout;
    while !body.is_done() {
        if cbuf.is_empty() {
            cbuf.make_room(4096, BUF_SIZE);
            let deadline = watch.now() + timeout;
            let (read, fired) = watch
                .guard(Guard::Body, deadline, None, cbuf.read_from(client))
                .await;
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
        let deadline = watch.now() + route.timeout;
        let (res, fired) = watch
            .guard(
                Guard::Upstream,
                deadline,
                Some(fd),
                cbuf.write_prefix_to(up, n),
            )
            .await;
        if fired.is_some() {
            return Err(ProxyError::new(ErrorKind::UpstreamTimeout));
        }
        res.map_err(|e| ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e))?;
    }
    Ok(())
}

/// One read from the upstream, bounded by `deadline` (the watchdog shuts the
/// socket down when it passes). `UpstreamTimeout` when it fired.
async fn read_upstream(
    watch: &WatchKey<'_>,
    up: &mut UpstreamStream,
    ubuf: &mut ConnBuf,
    deadline: std::time::Instant,
) -> Result<usize, ProxyError> {
    let fd = up.fd();
    let (read, fired) = watch
        .guard(Guard::Upstream, deadline, Some(fd), ubuf.read_from(up))
        .await;
    if fired.is_some() {
        return Err(ProxyError::new(ErrorKind::UpstreamTimeout));
    }
    read.map_err(|e| ProxyError::new(ErrorKind::UpstreamClosed).with_cause(e))
}

/// Read the final response head into `ubuf`/`resp`. Interim 1xx responses:
/// `100 Continue` is dropped (the proxy answered the client's expectation
/// itself), others are passed to HTTP/1.1 clients. A failure before any byte
/// arrived is marked retryable.
#[allow(clippy::too_many_arguments)]
async fn read_response_head<S: AsyncWriteRent>(
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
    let deadline = std::time::Instant::now() + timeout;
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
        ubuf.make_room(4096, limits.max_head_bytes + 4096);
        match read_upstream(watch, up, ubuf, deadline).await {
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

pub(super) async fn write_client<S: AsyncWriteRent>(
    client: &mut S,
    out: &mut Vec<u8>,
    timeout: Duration,
    watch: &WatchKey<'_>,
) -> Result<(), ProxyError> {
    let deadline = watch.now() + timeout;
    let ((res, buf), fired) = watch
        .guard(
            Guard::ClientWrite,
            deadline,
            None,
            client.write_all(std::mem::take(out)),
        )
        .await;
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
    let (res, fired): (_, Option<Fired>) = watch
        .guard(
            Guard::ClientWrite,
            deadline,
            None,
            buf.write_prefix_to(client, n),
        )
        .await;
    if fired.is_some() {
        return Err(ProxyError::new(ErrorKind::ClientClosed));
    }
    res.map_err(|e| ProxyError::new(ErrorKind::ClientClosed).with_cause(e))
}
