//! The worker's HTTP/2 upstream connections: several per endpoint, each
//! shared by as many requests as the peer allows at once.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use h2::client::SendRequest;

/// Which connections a request may share: the endpoint's address and, for
/// TLS, the server name it was verified as.
pub type H2Key = (SocketAddr, Option<String>);

struct H2Conn {
    send: SendRequest<Bytes>,
    /// Streams open on it (ours).
    inflight: Rc<Cell<usize>>,
    /// Its connection task ended (closed by either side, GOAWAY, error).
    closed: Rc<Cell<bool>>,
}

/// A stream's claim on a connection: counted until dropped.
pub struct StreamSlot(Rc<Cell<usize>>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

#[derive(Default)]
pub struct H2Pool {
    conns: HashMap<H2Key, Vec<H2Conn>>,
}

impl H2Pool {
    /// A connection to `key` with room for one more stream (below the
    /// peer's SETTINGS_MAX_CONCURRENT_STREAMS), claimed.
    pub fn pick(&mut self, key: &H2Key) -> Option<(SendRequest<Bytes>, StreamSlot)> {
        let list = self.conns.get_mut(key)?;
        list.retain(|c| !c.closed.get());
        let c = list
            .iter()
            .find(|c| c.inflight.get() < c.send.current_max_send_streams().max(1))?;
        c.inflight.set(c.inflight.get() + 1);
        Some((c.send.clone(), StreamSlot(c.inflight.clone())))
    }

    /// A new connection, with its first stream claimed.
    pub fn add(
        &mut self,
        key: H2Key,
        send: SendRequest<Bytes>,
        closed: Rc<Cell<bool>>,
    ) -> StreamSlot {
        let inflight = Rc::new(Cell::new(1));
        self.conns.entry(key).or_default().push(H2Conn {
            send,
            inflight: inflight.clone(),
            closed,
        });
        StreamSlot(inflight)
    }

    /// Open connections (for `/workers`-style views and tests).
    pub fn open(&self) -> usize {
        self.conns
            .values()
            .flat_map(|l| l.iter())
            .filter(|c| !c.closed.get())
            .count()
    }
}
