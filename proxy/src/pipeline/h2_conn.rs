//! HTTP/2 downstream connections: every stream runs the same stage loop as
//! an HTTP/1.1 request (route, filters, pick, exchange, response, log).
//!
//! The h2 codec (hyperium's `h2`) owns the connection: frames, HPACK, flow
//! control, stream limits, and its defences (rapid reset, CONTINUATION
//! flood, header list size). Each accepted stream becomes a
//! [`StreamBridge`] that speaks HTTP/1.1 to the stage loop
//! (`net::h2::bridge`), served by a future polled by this connection's own
//! task (no task per stream, no `'static` state): the connection future and
//! the stream futures are polled together, so a slow stream never stops
//! frames of the others.
//!
//! Timeouts: the connection's watchdog slot guards it while no stream is
//! open (`idle_timeout`, shortened by a drain); each stream has its own
//! slot for its upstream wait; request bodies wait at most
//! `body_read_timeout` per DATA frame, and response DATA waits at most
//! `idle_timeout` for send window (then the stream is reset). A client's
//! RST_STREAM, or the connection closing, cancels the stream's request at
//! once; it is logged with status 499 and error `client_closed`. A drain sends GOAWAY:
//! streams in flight finish, new ones are refused, then the connection
//! closes.

use std::net::SocketAddr;
use std::rc::Rc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::connection::serve;
use super::filters::context::TlsFacts;
use super::serve::Serving;
use crate::http::head::complete_written_head;
use crate::http::{HeadLimits, RequestHead};
use crate::net::h2::bridge::StreamBridge;
use crate::net::h2::request::{write_head, BodyFraming};
use crate::net::h2::response::ResponseWriter;
use crate::runtime::watchdog::{Guard, WatchKey};

/// Serve an HTTP/2 connection (after ALPN `h2`, or the cleartext preface)
/// on listener socket group `group`.
pub async fn serve_h2<S>(
    serving: &Rc<Serving>,
    group: u64,
    io: S,
    addrs: (SocketAddr, SocketAddr),
    tls: Option<TlsFacts>,
    watch: &WatchKey<'_>,
) where
    S: AsyncReadRent + AsyncWriteRent + Unpin + 'static,
{
    let worker = &serving.worker;
    let (builder, limits) = {
        let gen = serving.current();
        let Some(l) = gen.snap.listener_index(group) else {
            return;
        };
        let cfg = gen.config();
        (cfg.listeners[l].http2.builder(&cfg.limits), cfg.limits)
    };
    let io = monoio_compat::StreamWrapper::new(io);
    // The client preface and SETTINGS must come within the header timeout.
    watch.arm(Guard::Header, limits.header_read_timeout);
    let handshake = builder.handshake::<_, bytes::Bytes>(io).await;
    watch.disarm();
    if watch.take_fired().is_some() {
        return;
    }
    let mut conn = match handshake {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(worker = worker.id, peer = %addrs.0, "HTTP/2 handshake failed: {e}");
            return;
        }
    };
    let mut streams = FuturesUnordered::new();
    let mut going_away = false;
    loop {
        if !going_away && worker.drain_idle.get().is_some() {
            conn.graceful_shutdown();
            going_away = true;
        }
        if streams.is_empty() {
            match worker.drain_idle.get() {
                Some((from, spread)) => watch.arm_idle_draining(limits.idle_timeout, from, spread),
                None => watch.arm(Guard::Idle, limits.idle_timeout),
            }
        } else {
            watch.disarm();
        }
        monoio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    streams.push(serve_stream(serving, group, req, respond, addrs, tls.as_ref()));
                }
                Some(Err(e)) => {
                    tracing::debug!(worker = worker.id, peer = %addrs.0, "HTTP/2 connection error: {e}");
                    break;
                }
                None => break,
            },
            Some(()) = streams.next(), if !streams.is_empty() => {}
        }
    }
    watch.disarm();
    // The connection is gone (closed by the client, an error, or GOAWAY
    // after its last stream): nothing a stream still running could send
    // would arrive, so its request is cancelled. The codec has reset every
    // open stream, so each stage loop sees its reset at its next poll and
    // logs the request (499); polled a little longer for that, then
    // dropped.
    if !streams.is_empty() {
        let last_records = async { while streams.next().await.is_some() {} };
        let _ = monoio::time::timeout(CANCELLED_STREAMS_WAIT, last_records).await;
    }
    drop(streams);
}

/// How long the streams of a closed connection are polled to log their
/// cancelled requests (they end at once; this only bounds a stream stuck
/// elsewhere).
const CANCELLED_STREAMS_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Request body read ahead of the stage loop, at most (what is already
/// there; nothing is waited for).
const EARLY_BODY_MAX: usize = 64 * 1024;

/// Longest wait for a request body to end before the stage loop starts
/// with what has come (a client that streams its body, or waits for the
/// response head before sending it, loses this much once).
const EARLY_BODY_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// One stream through the stage loop.
async fn serve_stream(
    serving: &Rc<Serving>,
    group: u64,
    req: http::Request<h2::RecvStream>,
    respond: h2::server::SendResponse<bytes::Bytes>,
    addrs: (SocketAddr, SocketAddr),
    tls: Option<&TlsFacts>,
) {
    let limits = serving.current().config().limits;
    let (parts, mut body) = req.into_parts();
    let no_body = body.is_end_stream();
    // A body already received whole (a gRPC unary call, a small POST) goes
    // to the stage loop with its length: it can then be retried, hedged and
    // mirrored like an HTTP/1.1 body in hand.
    let mut early = bytes::BytesMut::new();
    let mut whole = None;
    if !no_body {
        // The body is waited for briefly (it usually follows the HEADERS at
        // once): until END_STREAM, EARLY_BODY_MAX bytes, or EARLY_BODY_WAIT.
        let deadline = std::time::Instant::now() + EARLY_BODY_WAIT;
        loop {
            if body.is_end_stream() {
                whole = Some(early.len());
                break;
            }
            if early.len() >= EARLY_BODY_MAX {
                break;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let next = match body.data().now_or_never() {
                Some(next) => next,
                None if left.is_zero() => break,
                None => match monoio::time::timeout(left, body.data()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            match next {
                Some(Ok(d)) => {
                    let _ = body.flow_control().release_capacity(d.len());
                    early.extend_from_slice(&d);
                }
                // The data has ended; trailers may follow (not waited for).
                _ => break,
            }
        }
    }
    let mut head = Vec::with_capacity(256 + early.len());
    let mut spans = RequestHead::with_typical_capacity();
    let framing = write_head(&parts, no_body, whole, &mut head, &mut spans);
    // The head is complete from the spans its writer recorded (no parse),
    // unless anything in it is for the parser to decide.
    let head_limits = HeadLimits {
        max_head_bytes: limits.max_head_bytes,
        max_headers: limits.max_headers,
    };
    let parsed = complete_written_head(&head, &head_limits, &mut spans).then_some(spans);
    // The stage loop parses the head in place (`take_first_bytes`): a body
    // read ahead and sent as it is (not chunked) follows it there.
    if framing != BodyFraming::Chunked {
        head.extend_from_slice(&early);
        early.clear();
    }
    let is_head = parts.method == http::Method::HEAD;
    let writer = ResponseWriter::new(respond, is_head, limits.idle_timeout);
    let reset = writer.reset_watch();
    let bridge = StreamBridge::new(
        head,
        parsed,
        framing,
        early.freeze(),
        body,
        writer,
        limits.body_read_timeout,
    );
    // The stream's own slot: no client socket of its own (-1), so a
    // deadline only ever shuts the upstream socket it waits on.
    let watch = serving.worker.watchdog.register_tagged(-1, group);
    // A client that resets the stream cancels its request: the stage loop
    // watches the reset while it forwards, drops the exchange where it
    // stands (its upstream connection closed, not pooled), and logs the
    // request as a client gone (499), as when an HTTP/1.1 client leaves.
    // Awaited in place: this future is moved once, into the connection's
    // set, and then stays pinned there; the stage loop's per-request
    // part is boxed inside `serve`.
    let park = super::connection::Park::Never;
    serve(
        serving,
        group,
        bridge,
        addrs,
        tls,
        Some(&reset),
        &watch,
        park,
    )
    .await;
}
