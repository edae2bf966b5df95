//! Listener sockets, one per worker per configured listener.
//!
//! `accept = "reuseport"` (default): every socket of a listener is bound to
//! the same address with `SO_REUSEPORT`, so the kernel spreads new
//! connections over the workers by a hash of their addresses and no accept
//! is ever shared between threads. Port 0 is resolved by the first socket;
//! the others bind to the port it got.
//!
//! `accept = "balanced"`: one socket, a duplicate of it per worker. Every
//! worker accepts from the same queue, and a worker takes a connection only
//! while it holds at most one more connection than the least loaded worker
//! (`pipeline::serve`'s accept gate). With few long-lived connections the
//! hash can put most of them on one core; this cannot. The cost: one
//! atomic store per connection opened or closed, and the workers' accepts
//! share one socket.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of each socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// The sockets of one configured listener: one per worker.
#[derive(Debug)]
pub struct ListenerGroup {
    pub address: SocketAddr,
    pub sockets: Vec<TcpListener>,
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux copies
    // it at accept), so the accept loop sets nothing per connection.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Bind `workers` sockets for `addr` (`reuseport`), or one socket and
/// `workers - 1` duplicates of it (`balanced`).
pub fn bind_group(
    addr: SocketAddr,
    workers: usize,
    mode: crate::config::AcceptMode,
) -> io::Result<ListenerGroup> {
    let first = bind_one(addr)?;
    if mode == crate::config::AcceptMode::Balanced {
        let address = first.local_addr()?;
        let mut sockets = Vec::with_capacity(workers);
        for _ in 1..workers {
            sockets.push(first.try_clone()?);
        }
        sockets.insert(0, first);
        return Ok(ListenerGroup { address, sockets });
    }
    let address = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        sockets.push(bind_one(address)?);
    }
    Ok(ListenerGroup { address, sockets })
}

/// A group made of sockets inherited from the process this one replaces
/// (`server::upgrade`): `workers` of them, more bound to the same address
/// when fewer were handed over (extra ones are closed here; the old process
/// still holds them until it exits). Each gets TCP_NODELAY, which the
/// connections accepted from it inherit (it may come from a binary that did
/// not set it).
pub fn adopt_group(
    mut sockets: Vec<TcpListener>,
    workers: usize,
    mode: crate::config::AcceptMode,
) -> io::Result<ListenerGroup> {
    let first = sockets
        .first()
        .ok_or_else(|| io::Error::other("no socket was handed over"))?;
    let address = first.local_addr()?;
    if mode == crate::config::AcceptMode::Balanced {
        // One queue for every worker: duplicates of the first socket.
        sockets.truncate(1);
        sockets[0].set_nonblocking(true)?;
        socket2::SockRef::from(&sockets[0]).set_tcp_nodelay(true)?;
        for _ in 1..workers {
            let dup = sockets[0].try_clone()?;
            sockets.push(dup);
        }
        return Ok(ListenerGroup { address, sockets });
    }
    sockets.truncate(workers);
    for s in &sockets {
        s.set_nonblocking(true)?;
        socket2::SockRef::from(s).set_tcp_nodelay(true)?;
    }
    while sockets.len() < workers {
        sockets.push(bind_one(address)?);
    }
    Ok(ListenerGroup { address, sockets })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accept loop sets no TCP_NODELAY: accepted sockets inherit it.
    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let g = bind_group("127.0.0.1:0".parse().unwrap(), 1, Default::default()).unwrap();
        let _c = std::net::TcpStream::connect(g.address).unwrap();
        g.sockets[0].set_nonblocking(false).unwrap();
        let (s, _) = g.sockets[0].accept().unwrap();
        assert!(s.nodelay().unwrap());
        // An adopted socket without it gets it.
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let g = adopt_group(vec![plain], 1, Default::default()).unwrap();
        let _c = std::net::TcpStream::connect(g.address).unwrap();
        g.sockets[0].set_nonblocking(false).unwrap();
        let (s, _) = g.sockets[0].accept().unwrap();
        assert!(s.nodelay().unwrap());
    }

    #[test]
    fn port_zero_group_shares_one_port() {
        let g = bind_group("127.0.0.1:0".parse().unwrap(), 3, Default::default()).unwrap();
        assert_ne!(g.address.port(), 0);
        assert_eq!(g.sockets.len(), 3);
        for s in &g.sockets {
            assert_eq!(s.local_addr().unwrap(), g.address);
        }
    }

    #[test]
    fn adopted_groups_are_filled_up_or_cut_to_the_worker_count() {
        let g = bind_group("127.0.0.1:0".parse().unwrap(), 2, Default::default()).unwrap();
        let addr = g.address;
        let more = adopt_group(g.sockets, 4, Default::default()).unwrap();
        assert_eq!(more.address, addr);
        assert_eq!(more.sockets.len(), 4);
        assert!(more.sockets.iter().all(|s| s.local_addr().unwrap() == addr));
        let fewer = adopt_group(more.sockets, 1, Default::default()).unwrap();
        assert_eq!(fewer.sockets.len(), 1);
        assert!(adopt_group(Vec::new(), 1, Default::default()).is_err());
    }

    #[test]
    fn a_balanced_group_is_one_socket_seen_by_every_worker() {
        use crate::config::AcceptMode;
        let g = bind_group("127.0.0.1:0".parse().unwrap(), 3, AcceptMode::Balanced).unwrap();
        assert_eq!(g.sockets.len(), 3);
        // A connection queued once is accepted through any of the copies,
        // and only once.
        let _c = std::net::TcpStream::connect(g.address).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(g.sockets[2].accept().is_ok());
        assert!(g.sockets[0].accept().is_err());
        assert!(g.sockets[1].accept().is_err());
        let adopted = adopt_group(g.sockets, 2, AcceptMode::Balanced).unwrap();
        assert_eq!(adopted.sockets.len(), 2);
    }
}
