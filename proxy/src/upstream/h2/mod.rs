//! HTTP/2 to upstreams (`protocol = "h2"` on a cluster).
//!
//! Per worker and endpoint, a few h2 client connections ([`pool`]), each
//! driven by its own task and shared by as many requests as the peer's
//! SETTINGS_MAX_CONCURRENT_STREAMS allows; a request that finds every one
//! full opens another. The upstream exchange gets a per-request
//! [`exchange::H2Upstream`] instead of a pooled byte stream: it turns the
//! HTTP/1.1 request the stage loop writes into HEADERS, DATA and trailers,
//! and yields the response as HTTP/1.1 (a chunked body carrying the
//! trailers when the length is not known), so the stages after it are the
//! same for both protocols.
//!
//! Connections (`pool`): filed under the endpoint's pool key (its TLS
//! files' fingerprint included), closed after the cluster's `idle_timeout`
//! without a stream, retired (no new streams, closed after their last)
//! when a new generation has other TLS material for the endpoint, and
//! counted against `circuit_breakers.max_connections`.
//!
//! Timeouts: the watchdog cannot shut a shared socket for one stream, so
//! the stream keeps its own timer: the route timeout for the response head
//! and between DATA frames (a little after the watchdog's deadline, so the
//! exchange still reports it as the upstream timeout, 504).

pub mod exchange;
pub mod pool;

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::{ErrorKind, ProxyError};
use crate::pipeline::generation::WorkerGen;
use crate::runtime::worker::Worker;

use super::pool::PoolKey;
use super::{connect, UpstreamStream};
use exchange::H2Upstream;
use pool::ConnState;

/// A stream to endpoint `endpoint` of cluster `cluster`, on a shared
/// connection when one has room (`true`: reused) or a new one. At the
/// cluster's `circuit_breakers.max_connections` with every connection
/// full, a connection of the cluster with no stream is closed to make
/// room, else the request waits (one of at most `max_pending`, for at most
/// `connect_timeout`) for a stream or a connection to end: then 503
/// `x-ringway-overflow`, as for HTTP/1.1 (`pipeline::exchange`).
pub async fn stream(
    worker: &Worker,
    gen: &WorkerGen,
    cluster: usize,
    endpoint: usize,
    timeout: Duration,
    proxy_addrs: (std::net::SocketAddr, std::net::SocketAddr),
) -> Result<(UpstreamStream, bool), ProxyError> {
    let c = &gen.config().clusters[cluster];
    let key = PoolKey::of(c, endpoint);
    let https = c.tls.is_some();
    let gauge = &gen.conn_gauges[cluster];
    let mut queued = None;
    let deadline = Instant::now() + c.connect_timeout;
    loop {
        let picked = worker.h2_pool.borrow_mut().pick(&key);
        if let Some((send, slot)) = picked {
            let s = H2Upstream::new(send, slot, https, timeout);
            return Ok((UpstreamStream::h2(s), true));
        }
        let Some(max) = c.max_connections else {
            break;
        };
        if gauge.open() < max {
            break;
        }
        // Closing an idle connection makes room when its task has run:
        // the gauge wakes us then.
        worker.h2_pool.borrow_mut().evict_idle(gauge);
        let overflow = &gen.stats.clusters[cluster].overflow_pending;
        let woke = gauge
            .wait_for_room(&mut queued, c.max_pending, overflow, deadline)
            .await?;
        if !woke {
            let picked = worker.h2_pool.borrow_mut().pick(&key);
            if let Some((send, slot)) = picked {
                let s = H2Upstream::new(send, slot, https, timeout);
                return Ok((UpstreamStream::h2(s), true));
            }
            if gauge.open() >= max {
                gen.stats.clusters[cluster].overflow_connections.inc();
                return Err(ProxyError::new(ErrorKind::Overflow("max_connections")));
            }
            break;
        }
    }
    drop(queued);
    let counted = gauge.count();
    let ep = &c.endpoints[endpoint];
    let io = connect(c, ep, proxy_addrs).await?;
    let first_limit = worker.h2_pool.borrow().first_limit(&key);
    let mut builder = h2::client::Builder::new();
    builder
        .initial_max_send_streams(first_limit)
        .initial_window_size(256 * 1024)
        .initial_connection_window_size(1024 * 1024);
    let handshake = builder.handshake::<_, bytes::Bytes>(monoio_compat::StreamWrapper::new(io));
    let (send, conn) = match monoio::time::timeout(c.connect_timeout, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            return Err(ProxyError::new(ErrorKind::ConnectFailed)
                .with_cause(std::io::Error::other(format!("HTTP/2 handshake: {e}"))))
        }
        Err(_) => return Err(ProxyError::new(ErrorKind::ConnectTimeout)),
    };
    let state = ConnState::new(gauge.clone());
    let task_state = state.clone();
    let (worker_id, address, idle_timeout) = (worker.id, ep.address, c.idle_timeout);
    monoio::spawn(async move {
        drive(conn, &task_state, idle_timeout, worker_id, address).await;
        task_state.set_closed();
        // Dropped with the connection: counted until it is closed.
        drop(counted);
    });
    let slot = worker.h2_pool.borrow_mut().add(key, send.clone(), state);
    Ok((
        UpstreamStream::h2(H2Upstream::new(send, slot, https, timeout)),
        false,
    ))
}

/// Drive one connection until it ends, or until it has had no stream for
/// `idle_timeout` or was retired and has none left (returning drops it:
/// closed).
async fn drive(
    conn: impl std::future::Future<Output = Result<(), h2::Error>>,
    state: &Rc<ConnState>,
    idle_timeout: Duration,
    worker: usize,
    address: std::net::SocketAddr,
) {
    let mut conn = std::pin::pin!(conn);
    while let Some(wait) = state.wait(idle_timeout) {
        monoio::select! {
            ended = &mut conn => {
                if let Err(e) = ended {
                    tracing::debug!(worker, %address, "HTTP/2 upstream connection ended: {e}");
                }
                return;
            }
            _ = state.changed() => {}
            _ = monoio::time::sleep(wait) => {}
        }
    }
    tracing::debug!(worker, %address, "HTTP/2 upstream connection closed (idle or retired)");
}
