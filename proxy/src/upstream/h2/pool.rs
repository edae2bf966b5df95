//! The worker's HTTP/2 upstream connections: several per endpoint, each
//! shared by as many requests as the peer allows at once.
//!
//! A connection is filed under the endpoint's [`PoolKey`] (address and TLS
//! identity, including the fingerprint of the cluster's TLS files), so a
//! stream only ever goes on a connection made with the material the
//! cluster has now. Each connection's task (`h2::stream`) closes it after
//! the cluster's `idle_timeout` without a stream. A new configuration
//! generation (a reload, rotated CA or client certificate files) *retires*
//! the connections whose key it no longer has ([`H2Pool::retire_stale`]):
//! they leave the pool, so no new stream goes on them; their streams in
//! flight finish, then the connection's task closes it.
//! Every connection is counted in its cluster's [`ConnGauge`]
//! (`circuit_breakers.max_connections`) until it closes. Nothing here is
//! `Send`.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;

use crate::config::{Config, UpstreamProtocol};
use crate::runtime::notify::LocalNotify;
use crate::upstream::gauge::ConnGauge;
use crate::upstream::pool::PoolKey;

/// What one connection's pool entry, its streams' slots and its task share.
pub struct ConnState {
    /// Streams open on it (ours).
    inflight: Cell<usize>,
    /// When its last stream ended (its idle time starts).
    idle_since: Cell<Instant>,
    /// Its connection task ended (closed by either side, GOAWAY, error,
    /// idle timeout).
    closed: Cell<bool>,
    /// Taken out of the pool: its task closes it as soon as it has no
    /// stream.
    retired: Cell<bool>,
    /// Wakes its task (retired, or its last stream ended while retired).
    wake: LocalNotify,
    /// The cluster's connection count (it counts this one); told when a
    /// stream ends, for requests waiting under `max_connections`.
    gauge: Rc<ConnGauge>,
}

impl ConnState {
    pub fn new(gauge: Rc<ConnGauge>) -> Rc<ConnState> {
        Rc::new(ConnState {
            inflight: Cell::new(0),
            idle_since: Cell::new(Instant::now()),
            closed: Cell::new(false),
            retired: Cell::new(false),
            wake: LocalNotify::new(),
            gauge,
        })
    }

    /// How long the connection's task may wait before it must look again
    /// (`None`: close it now: no stream, and retired or idle for
    /// `idle_timeout`).
    pub fn wait(&self, idle_timeout: Duration) -> Option<Duration> {
        if self.inflight.get() > 0 {
            return Some(idle_timeout);
        }
        if self.retired.get() {
            return None;
        }
        let left = idle_timeout.saturating_sub(self.idle_since.get().elapsed());
        (!left.is_zero()).then_some(left)
    }

    /// A change the task must look at (retired, last stream ended).
    pub async fn changed(&self) {
        self.wake.notified().await
    }

    /// The task ended: the connection is closed.
    pub fn set_closed(&self) {
        self.closed.set(true);
    }

    fn retire(&self) {
        self.retired.set(true);
        self.wake.notify_all();
    }

    fn room(&self, send: &SendRequest<Bytes>) -> bool {
        !self.closed.get() && self.inflight.get() < send.current_max_send_streams().max(1)
    }

    fn claim(self: &Rc<Self>) -> StreamSlot {
        self.inflight.set(self.inflight.get() + 1);
        StreamSlot(self.clone())
    }
}

struct H2Conn {
    send: SendRequest<Bytes>,
    state: Rc<ConnState>,
}

/// A stream's claim on a connection: counted until dropped.
pub struct StreamSlot(Rc<ConnState>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let s = &self.0;
        let left = s.inflight.get().saturating_sub(1);
        s.inflight.set(left);
        if left == 0 {
            s.idle_since.set(Instant::now());
            if s.retired.get() {
                s.wake.notify_all();
            }
        }
        // Room for a stream: a request waiting at `max_connections` may
        // take it.
        if s.gauge.pending() > 0 {
            s.gauge.notify_freed();
        }
    }
}

/// The stream limit a new connection assumes until the peer's SETTINGS
/// arrive, for an endpoint none has been learned from yet: the lowest value
/// RFC 9113 §6.5.2 recommends a peer allow. A peer that allows fewer
/// refuses the streams past its limit unprocessed (REFUSED_STREAM), and
/// the exchange sends them again.
pub const FIRST_STREAM_LIMIT: usize = 100;

#[derive(Default)]
pub struct H2Pool {
    endpoints: HashMap<PoolKey, Endpoint>,
}

/// One endpoint's connections, and the stream limit they last reported
/// (SETTINGS_MAX_CONCURRENT_STREAMS; kept after they close).
#[derive(Default)]
struct Endpoint {
    conns: Vec<H2Conn>,
    limit: Option<usize>,
}

impl H2Pool {
    /// A connection to `key` with room for one more stream (below the
    /// peer's SETTINGS_MAX_CONCURRENT_STREAMS), claimed.
    pub fn pick(&mut self, key: &PoolKey) -> Option<(SendRequest<Bytes>, StreamSlot)> {
        let ep = self.endpoints.get_mut(key)?;
        ep.conns.retain(|c| !c.state.closed.get());
        let c = ep.conns.iter().find(|c| c.state.room(&c.send));
        // The limit a connection has now: the peer's, once its SETTINGS
        // came (all connections to one endpoint have the same peer).
        if let Some(seen) = c.or(ep.conns.last()) {
            ep.limit = Some(seen.send.current_max_send_streams());
        }
        let c = c?;
        Some((c.send.clone(), c.state.claim()))
    }

    /// The stream limit a new connection to `key` starts with before its
    /// peer's SETTINGS arrive: the one its connections last reported, so a
    /// burst of requests does not go past a limit already known (the
    /// streams past it would be refused).
    pub fn first_limit(&self, key: &PoolKey) -> usize {
        self.endpoints
            .get(key)
            .and_then(|ep| ep.limit)
            .unwrap_or(FIRST_STREAM_LIMIT)
    }

    /// A new connection, with its first stream claimed.
    pub fn add(
        &mut self,
        key: PoolKey,
        send: SendRequest<Bytes>,
        state: Rc<ConnState>,
    ) -> StreamSlot {
        let slot = state.claim();
        self.endpoints
            .entry(key)
            .or_default()
            .conns
            .push(H2Conn { send, state });
        slot
    }

    /// Retire one connection of the cluster counted by `gauge` that has no
    /// stream (room under `max_connections`); whether there was one. It
    /// closes at once; the gauge is told when it has.
    pub fn evict_idle(&mut self, gauge: &Rc<ConnGauge>) -> bool {
        for list in self.endpoints.values_mut().map(|ep| &mut ep.conns) {
            let idle = list.iter().position(|c| {
                Rc::ptr_eq(&c.state.gauge, gauge)
                    && c.state.inflight.get() == 0
                    && !c.state.closed.get()
            });
            if let Some(i) = idle {
                list.swap_remove(i).state.retire();
                return true;
            }
        }
        false
    }

    /// Retire the connections `config` has no HTTP/2 endpoint for (its
    /// TLS files changed, the endpoint or cluster went away): no new
    /// stream goes on them; each closes when its streams have ended.
    /// Returns how many were retired.
    pub fn retire_stale(&mut self, config: &Config) -> usize {
        let keep: HashSet<PoolKey> = config
            .clusters
            .iter()
            .filter(|c| c.protocol == UpstreamProtocol::H2)
            .flat_map(|c| (0..c.endpoints.len()).map(|e| PoolKey::of(c, e)))
            .collect();
        let mut retired = 0;
        // A kept endpoint stays, with no connection, for its limit.
        self.endpoints.retain(|key, ep| {
            if keep.contains(key) {
                ep.conns.retain(|c| !c.state.closed.get());
                return true;
            }
            for c in ep.conns.iter() {
                c.state.retire();
                retired += 1;
            }
            false
        });
        retired
    }

    /// Open connections in the pool (tests, views).
    pub fn open(&self) -> usize {
        self.endpoints
            .values()
            .flat_map(|ep| ep.conns.iter())
            .filter(|c| !c.state.closed.get())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_waits_for_its_streams_then_its_idle_timeout() {
        let gauge = Rc::new(ConnGauge::default());
        let s = ConnState::new(gauge.clone());
        let idle = Duration::from_secs(60);
        let a = s.claim();
        let b = s.claim();
        assert_eq!(s.wait(idle), Some(idle), "streams open");
        drop(a);
        assert_eq!(s.wait(idle), Some(idle));
        drop(b);
        let left = s.wait(idle).expect("idle, not for long yet");
        assert!(left <= idle && left > Duration::from_secs(59), "{left:?}");
        assert_eq!(s.wait(Duration::ZERO), None, "idle past its timeout");
        // Retired: closed as soon as no stream is open.
        let c = s.claim();
        s.retire();
        assert_eq!(s.wait(idle), Some(idle), "a stream still in flight");
        drop(c);
        assert_eq!(s.wait(idle), None);
    }
}
