//! `ringload relay`: a plain TCP relay, the floor of what a proxy costs on
//! this machine.
//!
//! Each accepted connection gets an upstream connection of its own, and
//! bytes go each way through one buffer per direction: per request on a
//! kept-alive connection that is one receive and one send each way, the
//! same four socket operations an HTTP/1.1 proxy makes, and nothing else
//! (no parsing, no rewriting, no pool, no timers, no logs, no stats).
//! `ringway-bench compare --contenders ...,relay` runs it beside the
//! proxies: its CPU per request is what moving the bytes costs here, so a
//! proxy's CPU over the relay's is what its HTTP work costs, and nginx's
//! over the relay's says how far below nginx any proxy could go on this
//! kernel (issue #18).
//!
//! Workers are pinned threads with one SO_REUSEPORT socket each, as in
//! `ringload serve`. When one side ends its sending (EOF), the relay shuts
//! down its sending to the other side; a connection ends when both
//! directions have. A read or write error ends that direction the same way.

use std::net::SocketAddr;
use std::rc::Rc;

use clap::Args;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;

use crate::cli::{core_list, size, CoreList};
use crate::runtime::{self, DriverChoice};

/// `ringload relay` flags.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(short = 'l', long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where every connection is relayed to.
    #[arg(short = 'u', long)]
    pub upstream: SocketAddr,
    /// Worker threads, one SO_REUSEPORT socket each [default: one per core].
    #[arg(short = 't', long = "workers", visible_alias = "threads")]
    pub workers: Option<usize>,
    /// Cores to pin the workers to, e.g. 1 or 0,2-3.
    #[arg(long, value_parser = core_list)]
    pub cores: Option<CoreList>,
    /// Buffer per direction per connection (at most one read's worth moves
    /// at a time; the default holds a 16 KiB upload and its head in one read).
    #[arg(long, value_parser = size, default_value = "64k")]
    pub buffer_size: u64,
    /// I/O driver.
    #[arg(long, value_enum, default_value_t = DriverChoice::Auto)]
    pub driver: DriverChoice,
    /// io_uring submission queue entries per worker.
    #[arg(long, default_value_t = 1024, hide = true)]
    pub ring_entries: u32,
}

/// A validated `relay`.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub workers: usize,
    pub cores: Option<Vec<usize>>,
    pub buffer_size: usize,
    pub driver: DriverChoice,
    pub ring_entries: u32,
}

impl RelayArgs {
    pub fn validate(self) -> Result<RelayConfig, String> {
        let workers = self.workers.unwrap_or_else(crate::cli::default_workers);
        if workers == 0 {
            return Err("-t/--workers must be at least 1".into());
        }
        if !(1..=(16 << 20)).contains(&self.buffer_size) {
            return Err("--buffer-size must be 1 to 16m".into());
        }
        if self.upstream.port() == 0 {
            return Err("--upstream needs a port".into());
        }
        Ok(RelayConfig {
            listen: self.listen,
            upstream: self.upstream,
            workers,
            cores: self.cores.map(|c| c.0),
            buffer_size: self.buffer_size as usize,
            driver: self.driver,
            ring_entries: self.ring_entries.clamp(8, 32768),
        })
    }
}

/// Run the relay until the process is killed; returns an exit code only
/// when it cannot start.
pub fn relay(cfg: RelayConfig) -> i32 {
    match relay_inner(cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ringload relay: {e}");
            1
        }
    }
}

fn relay_inner(cfg: RelayConfig) -> Result<(), String> {
    let (bound, sockets) = crate::serve::bind_group(cfg.listen, cfg.workers)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let settings = cfg.clone();
    let (threads, drivers) = runtime::start_workers(
        "relay",
        sockets,
        cfg.cores.as_deref(),
        (cfg.driver, cfg.ring_entries),
        move |_, listener| accept_loop(listener, Rc::new(settings.clone())),
    )?;
    println!(
        "ringload relay: listening on {bound}, relaying to {}",
        cfg.upstream
    );
    eprintln!(
        "ringload relay: {} workers, driver {}, {} B per direction",
        drivers.len(),
        drivers.first().map(ToString::to_string).unwrap_or_default(),
        cfg.buffer_size
    );
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

async fn accept_loop(listener: monoio::net::TcpListener, cfg: Rc<RelayConfig>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                monoio::spawn(connection(client, cfg.clone()));
            }
            Err(e) => {
                // Out of descriptors or similar: say so, wait, go on.
                eprintln!("ringload relay: accept: {e}");
                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// One client connection: connect upstream, then both directions at once.
async fn connection(client: TcpStream, cfg: Rc<RelayConfig>) {
    let upstream = match TcpStream::connect_addr(cfg.upstream).await {
        Ok(s) => s,
        // The client sees its connection closed.
        Err(_) => return,
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    monoio::join!(
        pipe(&mut client_read, &mut up_write, cfg.buffer_size),
        pipe(&mut up_read, &mut client_write, cfg.buffer_size)
    );
}

/// Move bytes from `from` to `to` until `from` ends or either side fails,
/// then shut `to`'s sending down.
async fn pipe<R: AsyncReadRent, W: AsyncWriteRent>(from: &mut R, to: &mut W, size: usize) {
    let mut buf = Vec::with_capacity(size);
    loop {
        let (res, b) = from.read(buf).await;
        buf = b;
        if !matches!(res, Ok(n) if n > 0) {
            break;
        }
        let (res, b) = to.write_all(buf).await;
        buf = b;
        if res.is_err() {
            break;
        }
        buf.clear();
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    fn args(list: &[&str]) -> Result<RelayConfig, String> {
        use clap::Parser;
        let mut full = vec!["ringload", "relay"];
        full.extend_from_slice(list);
        match crate::cli::Cli::try_parse_from(full)
            .map_err(|e| e.to_string())?
            .command
        {
            crate::cli::Command::Relay(r) => r.validate(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_are_checked() {
        let c = args(&["-u", "127.0.0.1:9000", "-t", "1", "--buffer-size", "4k"]).unwrap();
        assert_eq!(
            (c.upstream.port(), c.workers, c.buffer_size),
            (9000, 1, 4096)
        );
        assert!(args(&["-u", "127.0.0.1:0"]).unwrap_err().contains("port"));
        assert!(args(&["-u", "127.0.0.1:1", "-t", "0"])
            .unwrap_err()
            .contains("workers"));
        assert!(args(&["-u", "127.0.0.1:1", "--buffer-size", "0"])
            .unwrap_err()
            .contains("buffer-size"));
        assert!(args(&[]).is_err(), "--upstream is required");
    }

    /// Real sockets on 127.0.0.1: an echo origin that answers each message
    /// with its bytes reversed; several rounds of different sizes (larger
    /// than the relay's buffer too) come back intact on one connection,
    /// and the client's EOF reaches the origin, whose close reaches the
    /// client.
    #[test]
    fn relays_both_ways_and_passes_the_end_on() {
        let origin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = origin.local_addr().unwrap();
        let origin_thread = std::thread::spawn(move || {
            let (mut s, _) = origin.accept().unwrap();
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            // Each round: a 4-byte length, then that many bytes; reply
            // with the bytes reversed.
            loop {
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).is_err() {
                    break;
                }
                let n = u32::from_be_bytes(len) as usize;
                let mut msg = Vec::with_capacity(n);
                while msg.len() < n {
                    let k = s.read(&mut buf[..(n - msg.len()).min(4096)]).unwrap();
                    assert!(k > 0, "EOF inside a message");
                    msg.extend_from_slice(&buf[..k]);
                }
                all.extend_from_slice(&msg);
                msg.reverse();
                s.write_all(&msg).unwrap();
            }
            all.len()
        });
        let cfg = RelayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream,
            workers: 1,
            cores: None,
            buffer_size: 1000,
            driver: DriverChoice::Auto,
            ring_entries: 64,
        };
        let (bound, sockets) = crate::serve::bind_group(cfg.listen, 1).unwrap();
        // The relay's worker runs for the rest of the test process.
        let (_threads, drivers) = runtime::start_workers(
            "relay",
            sockets,
            None,
            (DriverChoice::Auto, 64),
            move |_, listener| accept_loop(listener, Rc::new(cfg.clone())),
        )
        .unwrap();
        assert_eq!(drivers.len(), 1);
        let mut c = std::net::TcpStream::connect(bound).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut sent = 0;
        for (round, n) in [1usize, 999, 1000, 1001, 70_000, 3].into_iter().enumerate() {
            let msg: Vec<u8> = (0..n).map(|i| (i * 7 + round) as u8).collect();
            c.write_all(&(n as u32).to_be_bytes()).unwrap();
            c.write_all(&msg).unwrap();
            let mut back = vec![0u8; n];
            c.read_exact(&mut back).unwrap();
            back.reverse();
            assert_eq!(back, msg, "round {round}: {n} bytes");
            sent += n;
        }
        // Our EOF travels to the origin, which then closes; its close
        // travels back as our EOF.
        c.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(origin_thread.join().unwrap(), sent);
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}
