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
//! Timeouts: the watchdog cannot shut a shared socket for one stream, so
//! the stream keeps its own timer: the route timeout for the response head
//! and between DATA frames (a little after the watchdog's deadline, so the
//! exchange still reports it as the upstream timeout, 504).

pub mod exchange;
pub mod pool;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::config::ClusterConfig;
use crate::error::{ErrorKind, ProxyError};
use crate::runtime::worker::Worker;

use super::{connect, UpstreamStream};
use exchange::H2Upstream;
use pool::H2Key;

/// A stream to endpoint `endpoint` of cluster `c`, on a shared connection
/// when one has room (`true`: reused) or a new one.
pub async fn stream(
    worker: &Worker,
    c: &ClusterConfig,
    endpoint: usize,
    timeout: Duration,
    proxy_addrs: (std::net::SocketAddr, std::net::SocketAddr),
) -> Result<(UpstreamStream, bool), ProxyError> {
    let ep = &c.endpoints[endpoint];
    let key: H2Key = (
        ep.address,
        c.tls.as_ref().map(|t| format!("{:?}", t.server_name)),
    );
    let https = c.tls.is_some();
    let picked = worker.h2_pool.borrow_mut().pick(&key);
    if let Some((send, slot)) = picked {
        let s = H2Upstream::new(send, slot, https, timeout);
        return Ok((UpstreamStream::h2(s), true));
    }
    let io = connect(c, ep, proxy_addrs).await?;
    let mut builder = h2::client::Builder::new();
    builder
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
    let closed = Rc::new(Cell::new(false));
    let ended = closed.clone();
    let (worker_id, address) = (worker.id, ep.address);
    monoio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(worker = worker_id, %address, "HTTP/2 upstream connection ended: {e}");
        }
        ended.set(true);
    });
    let slot = worker.h2_pool.borrow_mut().add(key, send.clone(), closed);
    Ok((
        UpstreamStream::h2(H2Upstream::new(send, slot, https, timeout)),
        false,
    ))
}
