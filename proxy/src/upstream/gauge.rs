//! Upstream connections open per cluster on one worker, for
//! `circuit_breakers.max_connections` and `max_pending`.
//!
//! Every connection carries an [`OpenConn`] guard from just before it is
//! opened until it is closed (dropped, wherever that happens: an error
//! path, the pool's eviction, a drain), so the count cannot drift. A request
//! that needs a new connection while the cluster is at `max_connections`
//! first closes one of the cluster's idle pooled connections if there is
//! one; otherwise it waits (a *pending* request, at most `max_pending` of
//! them) until a connection of the cluster closes or returns to the pool,
//! for at most `connect_timeout`. Past either limit: 503 with
//! `x-ringway-overflow`. Nothing here is `Send`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use crate::error::{ErrorKind, ProxyError};
use crate::runtime::notify::LocalNotify;
use crate::stats::counter::Counter;

/// One cluster's connections on one worker (carried over reloads by
/// cluster name).
#[derive(Default)]
pub struct ConnGauge {
    open: Cell<u32>,
    pending: Cell<u32>,
    /// A connection of the cluster closed or went back to the pool.
    freed: LocalNotify,
}

impl ConnGauge {
    pub fn open(&self) -> u32 {
        self.open.get()
    }

    pub fn pending(&self) -> u32 {
        self.pending.get()
    }

    /// Count a connection about to be opened; the guard uncounts it.
    pub fn count(self: &Rc<Self>) -> OpenConn {
        self.open.set(self.open.get() + 1);
        OpenConn(self.clone())
    }

    /// Count a waiting request; the guard uncounts it.
    pub fn queue(self: &Rc<Self>) -> Pending {
        self.pending.set(self.pending.get() + 1);
        Pending(self.clone())
    }

    /// A connection has room again (an HTTP/2 stream ended): wake the
    /// waiting requests.
    pub fn notify_freed(&self) {
        self.freed.notify_all();
    }

    /// Wait until a connection closes or is returned to the pool.
    pub async fn freed(&self) {
        self.freed.notified().await
    }

    /// One wait of a request at the cluster's connection cap (HTTP/1.1
    /// and HTTP/2 alike): the first wait joins the queue (`queued`), or is
    /// refused when `max_pending` requests already wait (`overflow_pending`
    /// counted, 503 `max_pending`); then it waits until `deadline` for a
    /// connection to be freed. `Ok(true)`: one was.
    pub async fn wait_for_room(
        self: &Rc<Self>,
        queued: &mut Option<Pending>,
        max_pending: Option<u32>,
        overflow_pending: &Counter,
        deadline: Instant,
    ) -> Result<bool, ProxyError> {
        if queued.is_none() {
            if max_pending.is_some_and(|m| self.pending() >= m) {
                overflow_pending.inc();
                return Err(ProxyError::new(ErrorKind::Overflow("max_pending")));
            }
            *queued = Some(self.queue());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        Ok(!left.is_zero() && monoio::time::timeout(left, self.freed()).await.is_ok())
    }
}

/// An open (or opening) upstream connection, counted.
pub struct OpenConn(Rc<ConnGauge>);

impl OpenConn {
    /// The connection went back to the pool: a waiting request may take
    /// its place (by closing it).
    pub fn idle(&self) {
        self.0.freed.notify_all();
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
        self.0.freed.notify_all();
    }
}

/// A request waiting for room under `max_connections`.
pub struct Pending(Rc<ConnGauge>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.set(self.0.pending.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_uncount() {
        let g = Rc::new(ConnGauge::default());
        let a = g.count();
        let b = g.count();
        let p = g.queue();
        assert_eq!((g.open(), g.pending()), (2, 1));
        drop(a);
        drop(p);
        assert_eq!((g.open(), g.pending()), (1, 0));
        drop(b);
        assert_eq!(g.open(), 0);
    }
}
