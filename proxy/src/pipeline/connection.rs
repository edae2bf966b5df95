//! One downstream connection: the stage loop.
//!
//! ```text
//! accept → [tls handshake] → read_head → route → filters → forward → log
//!                               ↑                                    │
//!                               └──────── keep-alive / pipelined ────┘
//! ```
//!
//! Requests on a connection are handled one after the other, so pipelined
//! requests are answered in order. Any error closes the connection after its
//! response: once something went wrong, the framing of what follows cannot be
//! trusted.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Split};
use monoio::net::TcpStream;

use super::buffer::ConnBuf;
use super::filters::{run_request_filters, Flow};
use super::forward::{forward, Downstream, Exchange, Next, RequestIds};
use super::log::{log_request, RequestRecord};
use super::read_head::{read_head, HeadRead};
use super::route::{target_path, RouteInput};
use super::trace::{scan_headers, trace_context};
use super::upgrade::tunnel;
use crate::accesslog::RequestMeta;
use crate::error::{write_error_response, ErrorKind, ProxyError};
use crate::http::RequestHead;
use crate::runtime::watchdog::WatchKey;
use crate::runtime::worker::{ConnGuard, Worker};

/// Entry point for an accepted TCP connection: TLS handshake when the
/// listener terminates TLS, then the stage loop.
pub async fn serve_tcp(
    worker: Rc<Worker>,
    listener: usize,
    stream: TcpStream,
    peer: SocketAddr,
    guard: ConnGuard,
) {
    let _guard = guard;
    let watch = worker
        .watchdog
        .register(std::os::fd::AsRawFd::as_raw_fd(&stream));
    match worker.tls[listener].clone() {
        None => serve(&worker, listener, stream, peer, false, &watch).await,
        Some(acceptor) => {
            let timeout = worker.config.limits.header_read_timeout;
            match monoio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve(&worker, listener, tls, peer, true, &watch).await,
                Ok(Err(e)) => {
                    tracing::debug!(worker = worker.id, %peer, "TLS handshake failed: {e}")
                }
                Err(_) => tracing::debug!(worker = worker.id, %peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve<S>(
    worker: &Rc<Worker>,
    listener: usize,
    mut stream: S,
    peer: SocketAddr,
    tls: bool,
    watch: &WatchKey<'_>,
) where
    S: AsyncReadRent + AsyncWriteRent + Split,
{
    let mut cbuf = ConnBuf::with_buffer(worker.take_buffer());
    // The output buffer is held only while a request is in flight, so an idle
    // keep-alive connection keeps one buffer (the read buffer its pending
    // receive needs), not two.
    let mut out: Vec<u8> = Vec::new();
    let mut head = RequestHead::default();
    let mut meta = RequestMeta::default();
    let logging = worker.access_log.is_some();
    let tracing_on = worker.config.trace.w3c;
    let mut first = true;
    let mut upgraded = None;

    loop {
        // Stage: read_head.
        let started = Instant::now();
        match read_head(worker, &mut stream, &mut cbuf, &mut head, first, watch).await {
            Ok(HeadRead::Ready) => {}
            Ok(HeadRead::Closed) => break,
            Err(e) => {
                let mut ex = Exchange {
                    status: respond_error(&mut stream, &mut out, &e).await.unwrap_or(0),
                    ..Default::default()
                };
                if ex.status != 0 {
                    ex.bytes_out = out.len() as u64;
                    let rec = RequestRecord {
                        listener,
                        peer,
                        route: None,
                        ex: &ex,
                        error: Some(&e),
                        elapsed: started.elapsed(),
                        meta: None,
                        trace_id: None,
                    };
                    log_request(worker, &rec);
                }
                break;
            }
        }
        first = false;
        if out.capacity() == 0 {
            out = worker.take_buffer();
        }
        let started = Instant::now();
        let mut ex = Exchange::default();

        // Request id and trace context, and what the access log keeps.
        let data = cbuf.data();
        let scan = scan_headers(data, &head);
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
            )
        });
        if logging {
            let rid = match scan.request_id {
                Some(s) => s.get(data),
                None => &request_id[..],
            };
            meta.capture(data, &head, rid, scan.user_agent, scan.referer);
        }
        let meta_ref = logging.then_some(&meta);
        let trace_id = trace.as_ref().map(|t| t.trace_id());

        // Stage: route.
        let input = RouteInput {
            host: head.host.map(|h| h.get(data)),
            path: target_path(head.target.get(data)),
        };
        let Some(route) = worker.routes[listener].find(&input) else {
            let e = ProxyError::new(ErrorKind::NoRoute);
            ex.status = respond_error(&mut stream, &mut out, &e).await.unwrap_or(0);
            ex.bytes_out = out.len() as u64;
            let rec = RequestRecord {
                listener,
                peer,
                route: None,
                ex: &ex,
                error: Some(&e),
                elapsed: started.elapsed(),
                meta: meta_ref,
                trace_id,
            };
            log_request(worker, &rec);
            break;
        };

        // Stage: filters.
        if let Flow::Respond(e) = run_request_filters(route, &head) {
            ex.status = respond_error(&mut stream, &mut out, &e).await.unwrap_or(0);
            ex.bytes_out = out.len() as u64;
            let rec = RequestRecord {
                listener,
                peer,
                route: Some(route),
                ex: &ex,
                error: Some(&e),
                elapsed: started.elapsed(),
                meta: meta_ref,
                trace_id,
            };
            log_request(worker, &rec);
            break;
        }

        // Stage: forward.
        let ds = Downstream {
            stream: &mut stream,
            buf: &mut cbuf,
            peer,
            tls,
            watch,
        };
        let ids = RequestIds {
            request_id: &request_id,
            trace: trace.as_ref(),
        };
        let result = forward(worker, ds, &head, route, ids, &mut out, &mut ex).await;

        // Stage: log.
        let (next, error) = match result {
            Ok(next) => (Some(next), None),
            Err(e) => {
                if !ex.response_started {
                    ex.status = respond_error(&mut stream, &mut out, &e).await.unwrap_or(0);
                    ex.bytes_out += out.len() as u64;
                }
                (None, Some(e))
            }
        };
        let rec = RequestRecord {
            listener,
            peer,
            route: Some(route),
            ex: &ex,
            error: error.as_ref(),
            elapsed: started.elapsed(),
            meta: meta_ref,
            trace_id,
        };
        log_request(worker, &rec);
        match next {
            Some(Next::KeepAlive) => {
                worker.give_buffer(std::mem::take(&mut out));
                continue;
            }
            Some(Next::Close) | None => break,
            Some(Next::Upgrade(up)) => {
                upgraded = Some(up);
                break;
            }
        }
    }

    worker.give_buffer(out);
    match upgraded {
        Some(up) => {
            let pending = cbuf.data().to_vec();
            worker.give_buffer(cbuf.into_inner());
            let (a, b) = tunnel(stream, up, pending).await;
            tracing::debug!(worker = worker.id, %peer, to_upstream = a, to_client = b, "tunnel closed");
        }
        None => {
            worker.give_buffer(cbuf.into_inner());
            let _ = stream.shutdown().await;
        }
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
