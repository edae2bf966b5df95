//! `ringload serve`: a multi-core origin. One SO_REUSEPORT socket per
//! worker (the first resolves port 0, the others bind the port it got), each
//! worker a pinned thread with its own runtime.

pub mod faults;
pub mod request;
pub mod response;
pub mod server;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use socket2::{Domain, Protocol, Socket, Type};

use crate::cli::ServeConfig;
use crate::runtime;
use server::{Shared, Worker};

const BACKLOG: i32 = 4096;

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Bind `count` sockets to `addr`; port 0 is resolved by the first.
pub fn bind_group(addr: SocketAddr, count: usize) -> io::Result<(SocketAddr, Vec<TcpListener>)> {
    let first = bind_one(addr)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(bound)?);
    }
    Ok((bound, sockets))
}

fn server_tls(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read --tls-cert {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse --tls-cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("--tls-cert {}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read --tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot build the TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Run the origin until the process is killed; returns an exit code only
/// when it cannot start.
pub fn serve(cfg: ServeConfig) -> i32 {
    match serve_inner(cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ringload serve: {e}");
            1
        }
    }
}

fn serve_inner(cfg: ServeConfig) -> Result<(), String> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(server_tls(cert, key)?),
        None => None,
    };
    let (bound, sockets) = bind_group(cfg.listen, cfg.workers)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let shared = Arc::new(Shared {
        templates: response::Templates::build(&cfg),
        faults: faults::Faults::new(&cfg),
        tls,
        cfg,
    });
    let cores = shared.cfg.cores.clone();
    let driver = (shared.cfg.driver, shared.cfg.ring_entries);
    let (threads, drivers) = runtime::start_workers(
        "serve",
        sockets,
        cores.as_deref(),
        driver,
        move |index, listener| {
            let worker = Rc::new(Worker::new(shared.clone(), index));
            server::accept_loop(listener, worker)
        },
    )?;
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "ringload serve: listening on {bound}");
    let _ = stdout.flush();
    drop(stdout);
    eprintln!(
        "ringload serve: {} workers, driver {}",
        drivers.len(),
        drivers.first().map(ToString::to_string).unwrap_or_default()
    );
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_group_shares_one_port() {
        let (addr, sockets) = bind_group("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_ne!(addr.port(), 0);
        assert_eq!(sockets.len(), 3);
        for s in &sockets {
            assert_eq!(s.local_addr().unwrap(), addr);
        }
    }
}
