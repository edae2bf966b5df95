//! One downstream connection: the stage loop.
//!
//! ```text
//! accept → [proxy header] → [tls handshake] → read_head → route → checks
//!        → request filters
//!        → action: local answer | pick cluster → forward (pick endpoint,
//!          exchange, response filters) → log
//!                               ↑                                    │
//!                               └──────── keep-alive / pipelined ────┘
//! ```
//!
//! Requests on a connection are handled one after the other, so pipelined
//! requests are answered in order. An error closes the connection after its
//! response (once something went wrong, the framing of what follows cannot be
//! trusted); a local answer from a filter or a route action keeps it open
//! when the request's body was absent or already read in full.
//!
//! # Client address
//! The connection's peer is the TCP peer, or the source of the PROXY header
//! a `proxy_protocol` listener reads first (`proxy_header.rs`). With
//! `trusted_proxies`, each request's client is found in its
//! X-Forwarded-For (`ringway_http::forwarded`); that client is what the
//! listener `ip_acl`, the filters (`$client_ip`, `ip_acl`) and the access
//! log see, and the source of a PROXY header sent upstream. The
//! X-Forwarded-For sent upstream still ends with the connection's peer.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Split};
use monoio::net::TcpStream;

use super::buffer::ConnBuf;
use super::filters::reply::{write_local_reply, ReplyConnection};
use super::filters::{
    context::body_in_hand, run_checks, run_request, run_response, FilterState, Flow, LocalReply,
    RequestCx, ResponseCx, TlsFacts,
};
use super::forward::{forward, Downstream, Exchange, Next, RequestIds};
use super::h2_conn::serve_h2;
use super::log::{log_request, RequestRecord};
use super::proxy_header::read_proxy_header;
use super::read_head::{read_head, HeadRead};
use super::route::{target_path, Route, RouteInput};
use super::split::pick_cluster;
use super::trace::{scan_headers, trace_context};
use super::upgrade::tunnel;
use crate::accesslog::RequestMeta;
use crate::config::RouteAction;
use crate::error::{write_error_response, ErrorKind, ProxyError};
use crate::http::{RequestHead, Version};
use crate::net::h2::preface::{sniff, Prefixed, Sniffed};
use crate::net::h2::response::ResetWatch;
use crate::net::plain::PlainStream;
use crate::runtime::watchdog::{Guard, WatchKey};
use crate::runtime::worker::{ConnGuard, Worker, BUF_SIZE, HEAD_BUF_SIZE};

use super::generation::WorkerGen;
use super::serve::Serving;

/// What a connection's listener expects before the stage loop, as
/// configured when the connection was accepted.
pub struct Accepted {
    /// Its TLS acceptor (of the generation it was accepted under).
    pub tls: Option<monoio_rustls::TlsAcceptor>,
    /// A PROXY header comes first.
    pub proxy_protocol: bool,
    pub protocols: crate::config::http2::Protocols,
    pub header_timeout: std::time::Duration,
}

/// Entry point for an accepted TCP connection on listener socket group
/// `group`: the PROXY header when the listener expects one, the TLS
/// handshake when it terminates TLS, then the stage loop. `addrs`: the
/// connection's peer and local address.
///
/// # Memory of an idle connection
/// This future is the connection's task, and a parked connection keeps
/// nothing else but its socket and watchdog slot. A plain HTTP/1.1
/// connection's task is [`serve_plain`] itself, sized for its park loop;
/// every other kind runs boxed ([`serve_other`]), so the task of a plain
/// one keeps no room for a TLS or HTTP/2 connection's state.
pub fn serve_tcp(
    serving: Rc<Serving>,
    group: u64,
    accepted: Accepted,
    stream: TcpStream,
    addrs: (SocketAddr, SocketAddr),
    guard: ConnGuard,
) -> impl std::future::Future<Output = ()> {
    use futures_util::future::Either;
    if accepted.tls.is_none() && !accepted.protocols.h2 && !accepted.proxy_protocol {
        Either::Left(serve_plain(serving, group, stream, addrs, guard))
    } else {
        let other = serve_other(serving, group, accepted, stream, addrs, guard);
        Either::Right(Box::pin(other))
    }
}

/// A plain HTTP/1.1 connection: the stage loop, parked between requests.
///
/// An idle keep-alive connection parks: its stage loop, and the request
/// state it keeps for reuse, is freed while it waits for its next request;
/// the socket's readiness (a request, the client closing, or the idle
/// deadline shutting it) starts a new one. The loop is boxed, so this
/// future holds only the stream, its addresses, the guard, the watchdog key
/// and the readiness wait. It is an `async move` block over the arguments
/// rather than an `async fn`: an `async fn` moves each argument into a
/// local of its own, and its future holds both copies (hence the allowed
/// lint).
#[allow(clippy::manual_async_fn)]
fn serve_plain(
    serving: Rc<Serving>,
    group: u64,
    stream: TcpStream,
    addrs: (SocketAddr, SocketAddr),
    guard: ConnGuard,
) -> impl std::future::Future<Output = ()> {
    // Read through its multishot receive, once one is armed (`net::plain`).
    // Wrapped here, not in the block: the block would keep the argument's
    // room beside the wrapper's.
    let mut stream = PlainStream::new(stream);
    async move {
        let fd = std::os::fd::AsRawFd::as_raw_fd(stream.socket());
        let watch = serving.worker.watchdog.register_tagged(fd, group);
        let mut resumed = false;
        loop {
            // Back from parking: the next bytes, or readiness. With the
            // buffer ring the kernel takes a buffer from the worker's ring
            // when they come (one receive, no buffer held while waiting);
            // they are copied into a head buffer for the stage loop.
            // Without it (or when it ran dry), readiness: the stage loop
            // reads. An error shows again at the next read, which ends it.
            let first = if !resumed {
                None
            } else {
                // The multishot receive's bytes; without one, a selected
                // receive's or readiness (`net::plain`). Two awaits, one
                // after the other, so the task holds room for the larger
                // only: in a `match` or an `if let ... else` (edition
                // 2021) the first one's result would stay alive across the
                // second, 32 bytes more in every parked connection.
                #[allow(clippy::never_loop)]
                let got = loop {
                    if let Some(got) = stream.next_from_receive().await {
                        break got;
                    }
                    break stream
                        .socket()
                        .next_bytes()
                        .await
                        .map(|got| got.map(crate::net::plain::Got::whole));
                };
                match got {
                    // The client closed, or the idle deadline (or a drain)
                    // shut the socket.
                    Ok(Some(got)) if got.as_slice().is_empty() => break,
                    Ok(Some(got)) => {
                        let mut bytes = serving.worker.take_head_buffer();
                        bytes.extend_from_slice(got.as_slice());
                        Some(bytes)
                    }
                    Ok(None) | Err(_) => None,
                }
            };
            let park = Park::Allowed { resumed, first };
            let serve = serve(&serving, group, stream, addrs, None, None, &watch, park);
            // Back into the same place (a local of its own would be more
            // room in this future).
            match Box::pin(serve).await {
                Some(parked) => stream = parked,
                None => break,
            }
            // The read canceller is for a pending idle read; a parked
            // connection has none, and gets a new one if it idles again.
            watch.drop_canceller();
            resumed = true;
        }
        drop(watch);
        drop(guard);
    }
}

/// Every connection but plain HTTP/1.1 without a PROXY header
/// ([`serve_tcp`]): the PROXY header, then cleartext HTTP/1.1
/// ([`serve_plain`]), cleartext HTTP/2 by prior knowledge (with or without
/// HTTP/1.1 beside it), or TLS. Each branch's future is boxed: the task
/// holds only the one its connection takes.
async fn serve_other(
    serving: Rc<Serving>,
    group: u64,
    accepted: Accepted,
    mut stream: TcpStream,
    mut addrs: (SocketAddr, SocketAddr),
    guard: ConnGuard,
) {
    let Accepted {
        tls,
        proxy_protocol,
        protocols,
        header_timeout,
    } = accepted;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let watch = serving.worker.watchdog.register_tagged(fd, group);
    // Stage: proxy header (listeners with `proxy_protocol`).
    if proxy_protocol {
        match Box::pin(read_proxy_header(&stream, header_timeout)).await {
            Ok(h) => addrs.0 = h.source.unwrap_or(addrs.0),
            Err(e) => {
                guard.stats().proxy_protocol_errors.inc();
                let (worker, peer) = (serving.worker.id, addrs.0);
                tracing::debug!(worker, %peer, "{e}; closing");
                return;
            }
        }
    }
    if tls.is_some() || protocols.h2 {
        // A TLS handshake, or HTTP/2's preface and settings, is several
        // exchanges on its own: the socket's operations name a registered
        // slot from the start (`fixed_files`). Plain HTTP/1.1 gets one when
        // its second request comes (`IdleRead::kept_alive`).
        stream.register_fixed();
    }
    match tls {
        None if !protocols.h2 => {
            // Its own watchdog slot from here (this one's is released
            // first).
            drop(watch);
            Box::pin(serve_plain(serving, group, stream, addrs, guard)).await
        }
        None if !protocols.http1 => {
            Box::pin(serve_h2(&serving, group, stream, addrs, None, &watch)).await
        }
        None => {
            // Stage: protocol (cleartext HTTP/2 by prior knowledge).
            watch.arm(Guard::Header, header_timeout);
            let sniffed = sniff(&mut stream).await;
            watch.disarm();
            let timed_out = watch.take_fired().is_some();
            match sniffed {
                Ok((Sniffed::Http2, got)) if !timed_out => {
                    let stream = Prefixed::new(got, stream);
                    Box::pin(serve_h2(&serving, group, stream, addrs, None, &watch)).await
                }
                Ok((Sniffed::Other, got)) if !timed_out => {
                    let stream = Prefixed::new(got, stream);
                    let park = Park::Never;
                    Box::pin(serve(
                        &serving, group, stream, addrs, None, None, &watch, park,
                    ))
                    .await;
                }
                _ => {}
            }
        }
        Some(acceptor) => {
            let tls = (acceptor, header_timeout);
            Box::pin(serve_tls(
                &serving, group, tls, stream, addrs, &guard, &watch,
            ))
            .await
        }
    }
}

/// Stage: tls. The handshake (within `header_timeout`), then the stage loop
/// for the protocol ALPN settled. A function of its own, boxed by the
/// caller, so that a plain connection's task keeps no room for a TLS
/// stream.
async fn serve_tls(
    serving: &Rc<Serving>,
    group: u64,
    (acceptor, header_timeout): (monoio_rustls::TlsAcceptor, std::time::Duration),
    stream: TcpStream,
    addrs: (SocketAddr, SocketAddr),
    guard: &ConnGuard,
    watch: &WatchKey<'_>,
) {
    let worker = &serving.worker;
    let peer = addrs.0;
    match monoio::time::timeout(header_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) if tls.session().alpn_protocol() == Some(b"h2") => {
            let facts = TlsFacts::of(tls.session());
            Box::pin(serve_h2(serving, group, tls, addrs, Some(facts), watch)).await
        }
        Ok(Ok(tls)) => {
            let facts = TlsFacts::of(tls.session());
            Box::pin(serve(
                serving,
                group,
                tls,
                addrs,
                Some(&facts),
                None,
                watch,
                Park::Never,
            ))
            .await;
        }
        Ok(Err(e)) => {
            guard.stats().tls_handshake_failures.inc();
            let e = std::io::Error::from(e);
            tracing::debug!(worker = worker.id, %peer, "TLS handshake failed: {e}")
        }
        Err(_) => {
            guard.stats().tls_handshake_failures.inc();
            tracing::debug!(worker = worker.id, %peer, "TLS handshake timed out")
        }
    }
}

/// What one request of the loop needs besides the stream.
struct Conn<'a, S> {
    worker: &'a Rc<Worker>,
    stream: S,
    peer: SocketAddr,
    /// Close after the current request (its listener was removed).
    closing: bool,
    /// Output buffer, held only while a request is in flight.
    out: Vec<u8>,
}

impl<S: AsyncWriteRent> Conn<'_, S> {
    /// Early answer for `e` (if anyone is listening), then its log record.
    /// The connection closes after it.
    async fn answer_error(&mut self, e: &ProxyError, at: &At<'_>) {
        let mut ex = Exchange::default();
        let sent = respond_error(&mut self.stream, &mut self.out, e).await;
        ex.status = sent.unwrap_or_else(|| e.logged_status());
        ex.bytes_out = if sent.is_some() {
            self.out.len() as u64
        } else {
            0
        };
        let rec = RequestRecord {
            listener: at.listener,
            peer: self.peer,
            route: at.route,
            ex: &ex,
            error: Some(e),
            started: at.started,
            elapsed: at.started.elapsed(),
            meta: at.meta,
            trace: at.trace,
            vars: None,
        };
        log_request(self.worker, at.gen, &rec);
    }
}

/// A request's output buffer to start with: room for a typical upstream
/// request head, then a typical response head and a small body.
const OUT_BUFFER: usize = 2048;

/// Where a request stands, for the log stage.
struct At<'a> {
    gen: &'a WorkerGen,
    listener: usize,
    route: Option<&'a Route>,
    started: Instant,
    meta: Option<&'a RequestMeta>,
    trace: Option<&'a super::trace::TraceContext>,
}

/// Whether the stage loop may end while its connection idles, handing the
/// stream back to be woken when it is readable (`HeadRead::Parked`).
pub(super) enum Park {
    /// It waits where it is (TLS, HTTP/2 streams, sniffed prefixes).
    Never,
    /// It may park; `resumed`: it starts again after parking (the
    /// connection is not new: no header deadline from its accept), with
    /// `first`, the bytes the park loop's selected receive got (in a head
    /// buffer), if it read them.
    Allowed {
        resumed: bool,
        first: Option<Vec<u8>>,
    },
}

/// The stage loop over `stream`: HTTP/1.1 requests one after the other, or
/// (with `stream_reset`, the reset of the HTTP/2 stream `stream` bridges)
/// one HTTP/2 stream's request. Returns the stream when it parked
/// ([`Park::Allowed`]): the caller waits for it to become readable and
/// starts the loop again; `None` when the connection is done.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve<S>(
    serving: &Rc<Serving>,
    group: u64,
    mut stream: S,
    (peer, local_addr): (SocketAddr, SocketAddr),
    tls_facts: Option<&TlsFacts>,
    stream_reset: Option<&ResetWatch>,
    watch: &WatchKey<'_>,
    park: Park,
) -> Option<S>
where
    S: AsyncReadRent + AsyncWriteRent + Split + crate::net::idle_read::IdleRead,
{
    let worker = &serving.worker;
    let (may_park, mut first, resumed_with) = match park {
        Park::Never => (false, true, None),
        Park::Allowed { resumed, first } => (true, !resumed, first),
    };
    // Back from parking with readiness only (no ring, or it ran dry): the
    // first read reads what woke it instead of parking again at once.
    let mut park_at_once = first || resumed_with.is_some();
    // A bridged HTTP/2 stream hands its head over: parsed where it is; a
    // connection back from parking may bring its next bytes.
    let mut cbuf = match stream.take_first_bytes().or(resumed_with) {
        Some(bytes) => ConnBuf::with_data(bytes),
        None => ConnBuf::with_buffer(worker.take_head_buffer()),
    };
    // Its head may be complete already: the first read_head is skipped.
    let first_head = stream.take_first_head();
    let mut head_in_hand = first_head.is_some();
    let one_request = stream.one_request();
    // The output buffer is held only while a request is in flight, so an idle
    // keep-alive connection keeps one buffer (the read buffer its pending
    // receive needs), not two.
    let mut conn = Conn {
        worker,
        stream,
        peer,
        closing: false,
        out: Vec::new(),
    };
    let mut head = first_head.unwrap_or_else(RequestHead::with_typical_capacity);
    let mut meta = RequestMeta::default();
    let mut fstate = FilterState::default();
    let logging = worker.access_log.is_some();

    // A 101 answer ends the loop with the upstream to tunnel to.
    let end = loop {
        // The generation this request is served with; the listener may be
        // gone from it (removed by a reload): then the connection closes.
        let gen = serving.current();
        let Some(listener) = gen.snap.listener_index(group) else {
            break End::Close;
        };
        // Stage: read_head.
        conn.peer = peer;
        let started = Instant::now();
        let read = if std::mem::take(&mut head_in_hand) {
            Ok(HeadRead::Ready)
        } else {
            read_head(
                worker,
                &gen.config().limits,
                &mut conn.stream,
                &mut cbuf,
                &mut head,
                first,
                may_park,
                std::mem::replace(&mut park_at_once, true),
                watch,
            )
            .await
        };
        match read {
            Ok(HeadRead::Ready) => {}
            Ok(HeadRead::Closed) => break End::Close,
            Ok(HeadRead::Parked) => break End::Park,
            Err(e) => {
                let at = At {
                    gen: &gen,
                    listener,
                    route: None,
                    started,
                    meta: None,
                    trace: None,
                };
                Box::pin(conn.answer_error(&e, &at)).await;
                break End::Close;
            }
        }
        if !first {
            // Its second request or later: a registered slot from now on
            // (`IdleRead::kept_alive`; a no-op once it has one).
            conn.stream.kept_alive();
        }
        if body_follows(&head, cbuf.len()) {
            // Read from the socket itself (`IdleRead::body_follows`).
            conn.stream.body_follows();
        }
        first = false;
        // A reload may have happened while the head arrived. If it removed
        // this listener, the request is still answered, on the generation
        // it arrived under, and the connection closes after it.
        let newest = serving.current();
        let (gen, listener) = match newest.snap.listener_index(group) {
            Some(l) => (newest, l),
            None => {
                conn.closing = true;
                (gen, listener)
            }
        };
        // Every later stage, boxed (see `serve_request`).
        let cx = ConnCx {
            worker,
            peer,
            local_addr,
            tls_facts,
            stream_reset,
            watch,
            logging,
        };
        let step = Box::pin(serve_request(
            &cx,
            &mut conn,
            &mut cbuf,
            &head,
            &mut meta,
            &mut fstate,
            &gen,
            listener,
        ))
        .await;
        match step {
            // A stream that carries one request: its end is all that
            // could follow.
            Step::Next if one_request => break End::Close,
            // The output buffer goes back between requests, and a read
            // buffer that went full-size for a body makes way for a head
            // buffer again (what the connection holds while it waits). A
            // connection whose heads are large keeps its full-size one.
            Step::Next => {
                worker.give_buffer(std::mem::take(&mut conn.out));
                if cbuf.is_empty()
                    && cbuf.capacity() >= BUF_SIZE
                    && head.head_len <= HEAD_BUF_SIZE / 2
                {
                    let full = cbuf.replace_storage(worker.take_head_buffer());
                    worker.release_buffer(full);
                }
            }
            Step::Stop => break End::Close,
            Step::Upgrade(up) => break End::Upgrade(up),
        }
    };

    worker.give_buffer(std::mem::take(&mut conn.out));
    let mut stream = conn.stream;
    match end {
        End::Upgrade(up) => {
            let pending = cbuf.data().to_vec();
            worker.give_buffer(cbuf.into_inner());
            let (a, b) = Box::pin(tunnel(stream, up, pending)).await;
            tracing::debug!(worker = worker.id, %peer, to_upstream = a, to_client = b, "tunnel closed");
            None
        }
        End::Close => {
            worker.give_buffer(cbuf.into_inner());
            if stream.shutdown_before_close() {
                let _ = stream.shutdown().await;
            }
            None
        }
        // Nothing is buffered (the read buffer went back before parking).
        End::Park => Some(stream),
    }
}

/// Whether the request whose head is in a buffer of `buffered` bytes has
/// more body to stream than came with its head, or upgrades the
/// connection.
fn body_follows(head: &RequestHead, buffered: usize) -> bool {
    use crate::http::BodyFraming;
    let with_head = buffered.saturating_sub(head.head_len) as u64;
    head.upgrade.is_some()
        || match head.framing {
            BodyFraming::None => false,
            BodyFraming::Length(n) => n > with_head,
            BodyFraming::Chunked => true,
        }
}

/// How the stage loop ends.
enum End {
    /// The connection closes.
    Close,
    /// It becomes a tunnel to the upstream (a 101 answer).
    Upgrade(crate::upstream::stream::UpstreamStream),
    /// It parks (`HeadRead::Parked`).
    Park,
}

/// What the connection does after a request.
enum Step {
    /// The request is done and the connection stays open.
    Next,
    /// Close the connection.
    Stop,
    /// Tunnel the connection to the upstream (a 101 answer).
    Upgrade(crate::upstream::stream::UpstreamStream),
}

/// What a connection's requests share.
struct ConnCx<'a> {
    worker: &'a Rc<Worker>,
    peer: SocketAddr,
    local_addr: SocketAddr,
    tls_facts: Option<&'a TlsFacts>,
    stream_reset: Option<&'a ResetWatch>,
    watch: &'a WatchKey<'a>,
    logging: bool,
}

/// Every stage after `read_head`, for the head in `cbuf`. Boxed by the
/// caller: an idle keep-alive connection's future is then only the loop
/// in [`serve`] waiting in `read_head`, not the room every stage needs.
#[allow(clippy::too_many_arguments)]
async fn serve_request<S>(
    cx: &ConnCx<'_>,
    conn: &mut Conn<'_, S>,
    cbuf: &mut ConnBuf,
    head: &RequestHead,
    meta: &mut RequestMeta,
    fstate: &mut FilterState,
    gen: &Rc<WorkerGen>,
    listener: usize,
) -> Step
where
    S: AsyncReadRent + AsyncWriteRent + Split + crate::net::idle_read::IdleRead,
{
    let ConnCx {
        worker,
        peer,
        local_addr,
        tls_facts,
        stream_reset,
        watch,
        logging,
    } = *cx;
    let tracing_on = gen.config().trace.w3c;
    let listener_name: &str = &gen.config().listeners[listener].name;
    if conn.out.capacity() == 0 {
        // Small, not a pooled 16 KiB buffer: the upstream request head is
        // written here and kept while the request waits for its answer (a
        // replay sends it again), and at 10,000 connections nearly every
        // request is waiting. A response body's first bytes move it into a
        // pooled buffer when they do not fit (`forward::room_in_out`).
        conn.out = Vec::with_capacity(OUT_BUFFER);
    }
    let started = Instant::now();

    // Request id and trace context, and what the access log keeps.
    let data = cbuf.data();
    let scan = scan_headers(data, head);
    // Fresh hex digits: the X-Request-Id to add when the client sent
    // none, and the new span id (its first half).
    let mut request_id = [0u8; 32];
    if scan.request_id.is_none() || tracing_on {
        worker.next_request_id(&mut request_id);
    }
    let trace = tracing_on.then(|| {
        let new_trace_id = || {
            let mut id = [0u8; 32];
            worker.next_request_id(&mut id);
            id
        };
        trace_context(
            scan.traceparent.map(|s| s.get(data)),
            &request_id,
            new_trace_id,
            gen.config().trace.otlp.as_ref().map(|o| o.sample_ratio),
        )
    });
    let rid: &[u8] = match scan.request_id {
        Some(s) => s.get(data),
        None => &request_id[..],
    };
    // The access log and span export read the request facts.
    let capture = logging || worker.spans.is_some();
    if capture {
        meta.capture(
            data,
            head,
            rid,
            (scan.user_agent, scan.referer),
            &gen.snap.log_redact,
        );
        meta.http2 = stream_reset.is_some();
    }
    let meta_ref = capture.then_some(&*meta);
    let client = request_client(
        &gen.config().listeners[listener].trusted_proxies,
        peer,
        data,
        head,
    );
    conn.peer = client;

    // Targets that could alias another route (dot segments, encoded
    // unreserved characters, an absolute form naming another host): 400.
    if let Err(why) =
        super::target::check_target(head.target.get(data), head.host.map(|h| h.get(data)))
    {
        let e = ProxyError::new(crate::error::ErrorKind::BadRequest(why));
        let at = At {
            gen,
            listener,
            route: None,
            started,
            meta: meta_ref,
            trace: trace.as_ref(),
        };
        conn.answer_error(&e, &at).await;
        return Step::Stop;
    }

    // The listener's IP rules (before routing): 403, connection kept.
    if let Some(acl) = &gen.config().listeners[listener].ip_acl {
        if !acl.allows(client.ip()) {
            fstate.clear();
            let reply = LocalReply::text(403, "403 Forbidden\n");
            let (ex, keep) =
                answer_local(conn, gen, cbuf, head, None, 0, fstate, reply, watch).await;
            let rec = RequestRecord {
                listener,
                peer: client,
                route: None,
                ex: &ex,
                error: None,
                started,
                elapsed: started.elapsed(),
                meta: meta_ref,
                trace: trace.as_ref(),
                vars: None,
            };
            log_request(worker, gen, &rec);
            if keep {
                return Step::Next;
            }
            return Step::Stop;
        }
    }

    // Stage: route.
    let input = RouteInput {
        host: head.host.map(|h| h.get(data)),
        path: target_path(head.target.get(data)),
        method: head.method(data),
        query: super::route::target_query(head.target.get(data)),
        headers: super::route::RequestHeaders::new(data, &head.headers),
    };
    let mut at = At {
        gen,
        listener,
        route: None,
        started,
        meta: meta_ref,
        trace: trace.as_ref(),
    };
    let Some(route) = gen.snap.routes[listener].find(&input) else {
        let e = ProxyError::new(crate::error::ErrorKind::NoRoute);
        conn.answer_error(&e, &at).await;
        return Step::Stop;
    };
    at.route = Some(route);

    // Stage: checks, then the request phase of the route's filters.
    if let Err(e) = run_checks(route.max_body_bytes, head) {
        conn.answer_error(&e, &at).await;
        return Step::Stop;
    }
    fstate.clear();
    let default_deny = gen.config().listeners[listener].default_deny;
    // mTLS: the client's identity, for filters (`authz`, `$var.`),
    // header templates and the access log.
    if let Some(p) = tls_facts.and_then(|t| t.peer.as_ref()) {
        fstate.vars.set("client_identity", p.id.as_bytes());
    }
    let local_action = matches!(route.action, RouteAction::Local(_));
    if !route.filters.is_empty() || local_action {
        fstate.request_id.extend_from_slice(rid);
    }
    let mut cx = RequestCx {
        buf: data,
        head,
        client,
        listener: listener_name,
        tls: tls_facts,
        route: &route.name,
        request_id: rid,
        state: fstate,
    };
    let (mut flow, ran) = if default_deny
        && !route
            .filters
            .iter()
            .any(|f| matches!(f, super::filters::Filter::Authz(_)))
    {
        // `default_deny` listener: a route without an `authz` filter
        // lets nobody through.
        (Flow::Respond(LocalReply::text(403, "403 Forbidden\n")), 0)
    } else if route.filters.is_empty() {
        (Flow::Continue, 0)
    } else {
        run_request(&route.filters, &mut cx)
    };
    if let (Flow::Continue, RouteAction::Local(f)) = (&flow, &route.action) {
        flow = match f.on_request(&mut cx) {
            // A local action always answers; one that does not is a bug.
            Flow::Continue => Flow::Reject(ProxyError::new(crate::error::ErrorKind::Internal(
                "local action did not answer",
            ))),
            other => other,
        };
    }
    // Stage: action (a local answer, or the cluster to forward to).
    let mut cluster = 0;
    // An aggregate answer: the time its legs took, and its error (502).
    let mut aggregated: Option<(std::time::Duration, Option<ProxyError>)> = None;
    let mut leg_spans = Vec::new();
    let local = match flow {
        Flow::Continue => match &route.action {
            RouteAction::Local(_) => None,
            RouteAction::Forward(c) => {
                cluster = *c;
                None
            }
            RouteAction::Split(split) => {
                cluster = pick_cluster(gen, route.index, split, data, head);
                None
            }
            RouteAction::Versioned(v) => match v.resolve(&mut cx) {
                Ok(c) => {
                    cluster = c;
                    None
                }
                Err(reply) => Some(reply),
            },
            RouteAction::Aggregate(agg) => {
                let inc = super::aggregate::Incoming {
                    worker,
                    gen,
                    buf: data,
                    head,
                    peer,
                    client,
                    local: local_addr,
                    tls: tls_facts.is_some(),
                    request_id: rid,
                    traceparent: trace.as_ref().map(|t| &t.header[..]),
                    edits: &cx.state.request,
                };
                let legs_started = Instant::now();
                let Some((outcomes, spans)) = unless_reset(
                    stream_reset,
                    std::pin::pin!(super::aggregate::run(agg, &inc)),
                )
                .await
                else {
                    conn.answer_error(&ProxyError::new(ErrorKind::ClientClosed), &at)
                        .await;
                    return Step::Stop;
                };
                leg_spans = spans;
                let took = legs_started.elapsed();
                let (reply, failed) =
                    super::aggregate::reply(agg, &outcomes, &mut cx.state.response);
                let error = failed.then(|| {
                    ProxyError::new(crate::error::ErrorKind::BadResponse("aggregate leg failed"))
                });
                aggregated = Some((took, error));
                Some(reply)
            }
        },
        Flow::Respond(reply) => Some(reply),
        Flow::Reject(e) => {
            conn.answer_error(&e, &at).await;
            return Step::Stop;
        }
    };
    if let Some(reply) = local {
        let (mut ex, keep) = answer_local(
            conn,
            gen,
            cbuf,
            head,
            Some(route),
            ran,
            fstate,
            reply,
            watch,
        )
        .await;
        // The legs' time is the aggregate's upstream time (what ringway
        // added is the rest).
        let agg_error = aggregated.and_then(|(took, error)| {
            ex.upstream_time = Some(took);
            error
        });
        ex.legs = leg_spans;
        let rec = RequestRecord {
            listener,
            peer: client,
            route: Some(route),
            ex: &ex,
            error: agg_error.as_ref(),
            started,
            elapsed: started.elapsed(),
            meta: meta_ref,
            trace: trace.as_ref(),
            vars: Some(&fstate.vars),
        };
        log_request(worker, gen, &rec);
        if keep {
            return Step::Next;
        }
        return Step::Stop;
    }

    // Stage: forward (pick endpoint, exchange, response filters).
    // Stage: mirror (a copy to the route's shadow cluster, never
    // waited for).
    if let Some(m) = &gen.config().routes[route.index].mirror {
        let info = crate::http::rewrite::ForwardInfo {
            client_ip: peer.ip(),
            tls: tls_facts.is_some(),
            request_id: &request_id,
            default_host: gen.config().clusters[m.cluster]
                .endpoints
                .first()
                .map_or(&b""[..], |e| e.label.as_bytes()),
            upgrade: false,
            strip_expect: head.expect_continue,
            traceparent: trace.as_ref().map(|t| &t.header[..]),
            drop_tracestate: trace.as_ref().is_some_and(|t| t.started),
            target: fstate.target(),
            edits: Some(&fstate.request),
            client_cert: tls_facts.and_then(|t| t.peer.as_ref()).map(|p| &p.xfcc[..]),
        };
        if head.upgrade.is_none() {
            super::mirror::maybe_mirror(
                worker,
                gen,
                m,
                cbuf.data(),
                head,
                &info,
                (client, local_addr),
            );
        }
    }
    let mut ex = Exchange::default();
    let ds = Downstream {
        stream: &mut conn.stream,
        buf: cbuf,
        peer,
        client,
        local: local_addr,
        tls: tls_facts.is_some(),
        client_cert: tls_facts.and_then(|t| t.peer.as_ref()).map(|p| &p.xfcc[..]),
        watch,
        closing: conn.closing,
    };
    let ids = RequestIds {
        request_id: &request_id,
        trace: trace.as_ref(),
    };
    let result = {
        // Pinned in this (boxed) request future: the forward state is most
        // of a busy connection's size, and an idle keep-alive connection
        // keeps no room for it.
        let mut forwarding = std::pin::pin!(forward(
            worker,
            gen,
            ds,
            head,
            route,
            ids,
            cluster,
            (fstate, ran),
            &mut conn.out,
            &mut ex,
        ));
        // A reset HTTP/2 stream cancels the forward where it stands (its
        // upstream connection closed, not pooled; no more retries) and is
        // logged as a client gone (499), as an HTTP/1.1 client that leaves.
        unless_reset(stream_reset, forwarding.as_mut())
            .await
            .unwrap_or_else(|| Err(ProxyError::new(ErrorKind::ClientClosed)))
    };

    // Stage: log.
    let (next, error) = match result {
        Ok(next) => (Some(next), None),
        Err(e) => {
            if !ex.response_started {
                ex.status = match respond_error(&mut conn.stream, &mut conn.out, &e).await {
                    Some(sent) => {
                        ex.bytes_out += conn.out.len() as u64;
                        sent
                    }
                    None => e.logged_status(),
                };
            }
            (None, Some(e))
        }
    };
    let rec = RequestRecord {
        listener,
        peer: client,
        route: Some(route),
        ex: &ex,
        error: error.as_ref(),
        started,
        elapsed: started.elapsed(),
        meta: meta_ref,
        trace: trace.as_ref(),
        vars: Some(&fstate.vars),
    };
    log_request(worker, gen, &rec);
    match next {
        Some(Next::KeepAlive) => Step::Next,
        Some(Next::Close) | None => Step::Stop,
        Some(Next::Upgrade(up)) => Step::Upgrade(up),
    }
}

/// Answer the request with a local reply: the response phase of the filters
/// that ran, then the reply. Returns what the log stage needs and whether
/// the connection stays open (the body was absent or fully buffered, the
/// client keeps alive, the worker is not draining).
#[allow(clippy::too_many_arguments)]
async fn answer_local<S: AsyncWriteRent>(
    conn: &mut Conn<'_, S>,
    gen: &Rc<WorkerGen>,
    cbuf: &mut ConnBuf,
    head: &RequestHead,
    route: Option<&Route>,
    ran: usize,
    fstate: &mut FilterState,
    mut reply: LocalReply,
    watch: &WatchKey<'_>,
) -> (Exchange, bool) {
    let data = cbuf.data();
    let head_only = head.is_head(data);
    let body_read = body_in_hand(head, data.len());
    let keep = body_read && head.keep_alive() && !conn.worker.draining.get() && !conn.closing;
    let mut cx = ResponseCx {
        status: reply.status,
        upstream: None,
        client: conn.peer,
        route: route.map_or("", |r| r.name.as_str()),
        state: fstate,
    };
    let chain = route.map_or(&[][..], |r| &r.filters[..]);
    let mut keep = keep;
    match run_response(chain, ran, &mut cx) {
        Flow::Continue => {}
        Flow::Respond(r) => reply = r,
        // An error from the response phase replaces the reply, and closes
        // like every error answer.
        Flow::Reject(e) => {
            reply = LocalReply::empty(e.status().unwrap_or(500));
            keep = false;
        }
    }
    let conn_mode = match (keep, head.version) {
        (false, _) => ReplyConnection::Close,
        (true, Version::Http10) => ReplyConnection::KeepAliveHttp10,
        (true, Version::Http11) => ReplyConnection::KeepAlive,
    };
    let mut ex = Exchange {
        status: reply.status,
        ..Default::default()
    };
    // The request (and its body, when kept alive) is consumed.
    let consumed = if keep {
        head.head_len + (data.len() - head.head_len).min(body_len(head))
    } else {
        head.head_len
    };
    ex.bytes_in = consumed as u64;
    cbuf.consume(consumed);
    conn.out.clear();
    write_local_reply(
        &mut conn.out,
        &reply,
        &fstate.response,
        conn_mode,
        head_only,
    );
    ex.bytes_out = conn.out.len() as u64;
    let idle = gen.config().limits.idle_timeout;
    let ok = super::forward::write_client(&mut conn.stream, &mut conn.out, idle, watch)
        .await
        .is_ok();
    ex.response_started = true;
    (ex, keep && ok)
}

/// The request's client: the peer, or with `trusted_proxies` the rightmost
/// untrusted X-Forwarded-For hop (`ringway_http::forwarded`; its port is
/// unknown: 0).
fn request_client(
    trusted: &[crate::http::Cidr],
    peer: SocketAddr,
    data: &[u8],
    head: &RequestHead,
) -> SocketAddr {
    if trusted.is_empty() {
        return peer;
    }
    let xff = head
        .headers
        .iter()
        .filter(|h| h.name.get(data).eq_ignore_ascii_case(b"x-forwarded-for"))
        .map(|h| h.value.get(data));
    let ip = crate::http::client_address(xff, peer.ip(), trusted);
    if ip == crate::http::forwarded::canonical(peer.ip()) {
        peer
    } else {
        SocketAddr::new(ip, 0)
    }
}

/// The declared body length (0 without a body).
fn body_len(head: &RequestHead) -> usize {
    match head.framing {
        crate::http::BodyFraming::Length(n) => n as usize,
        _ => 0,
    }
}

/// `f`, or `None` when the HTTP/2 stream is reset first (`f` is dropped
/// where it stands). Without a stream to watch, just `f`.
///
/// `f` is taken pinned in place (the forward stage's future is tens of
/// KiB: moved into this one and its select, it was copied four times per
/// request).
async fn unless_reset<F: std::future::Future>(
    reset: Option<&ResetWatch>,
    f: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    match reset {
        None => Some(f.await),
        Some(reset) => monoio::select! {
            out = f => Some(out),
            reason = reset.reset() => {
                tracing::debug!("HTTP/2 stream reset by the client ({reason:?}); request cancelled");
                None
            }
        },
    }
}

/// Send the response for `e` (if there is anyone to send it to).
async fn respond_error<S: AsyncWriteRent>(
    stream: &mut S,
    out: &mut Vec<u8>,
    e: &ProxyError,
) -> Option<u16> {
    out.clear();
    let status = write_error_response(out, e)?;
    let buf = std::mem::take(out);
    let timeout = std::time::Duration::from_secs(5);
    if let Ok((_, buf)) = monoio::time::timeout(timeout, stream.write_all(buf)).await {
        *out = buf;
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn taking these arguments returns.
    fn future_size<A, B, C, D, E, G, F: std::future::Future>(
        _: fn(A, B, C, D, E, G) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// The per-request future (boxed once per request; it holds the
    /// forward state pinned in it) fits mimalloc's 4 KiB size class: 4,064
    /// bytes in debug and release builds alike; it was 5,496 (the 6 KiB
    /// class) before the upstream I/O's TLS and HTTP/2 branches and the
    /// splice transfer were boxed and the upstream reads stopped nesting
    /// (`upstream::stream`, `exchange::upstream_guarded`).
    #[test]
    fn the_request_future_stays_small() {
        #[allow(clippy::type_complexity)]
        fn size<'a, S, F>(
            _: fn(
                &'a ConnCx<'a>,
                &'a mut Conn<'a, S>,
                &'a mut ConnBuf,
                &'a RequestHead,
                &'a mut RequestMeta,
                &'a mut FilterState,
                &'a Rc<WorkerGen>,
                usize,
            ) -> F,
        ) -> usize
        where
            F: std::future::Future,
        {
            std::mem::size_of::<F>()
        }
        let size = size::<monoio::net::TcpStream, _>(serve_request);
        println!("serve_request future: {size} bytes");
        assert!(size <= 4096, "serve_request's future is {size} bytes");
    }

    /// A connection's task is allocated for its whole life at the size of
    /// `serve_tcp`'s future: a plain connection's is its park loop alone
    /// (`serve_plain`), every other branch is boxed. 280 bytes (debug and
    /// release builds alike; 264 before its stream became a `PlainStream`,
    /// which carries the multishot receive): with monoio's task header and
    /// trailer (40 bytes) the task fits mimalloc's 320-byte size class; it was 2,912
    /// bytes in a release build before the park loop was split off and the
    /// readiness wait made smaller, 24,960 before the branches were boxed.
    #[test]
    fn the_connection_task_stays_small() {
        let size = future_size(serve_tcp);
        println!("serve_tcp future: {size} bytes");
        assert!(size <= 280, "serve_tcp's future is {size} bytes");
    }
}
