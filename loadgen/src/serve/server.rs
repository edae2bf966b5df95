//! One `serve` worker: accept on its own SO_REUSEPORT socket and answer
//! every connection it gets, with the configured delays and faults.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use monoio_rustls::{ServerTlsStream, TlsAcceptor};
use rustls::ServerConfig;

use super::faults::{Faults, Rng};
use super::request::{Echo, Parsed, RequestInfo, RequestParser};
use super::response::{framing, push_chunk, start_head, Templates, LAST_CHUNK};
use crate::cli::ServeConfig;

const READ_BUF: usize = 16 * 1024;
/// Responses queued for one write are flushed past this size.
const FLUSH_AT: usize = 64 * 1024;

/// What all workers share, immutable (the stall counter is atomic).
pub struct Shared {
    pub cfg: ServeConfig,
    pub templates: Templates,
    pub faults: Faults,
    pub tls: Option<Arc<ServerConfig>>,
}

/// Thread-local state of one worker.
pub struct Worker {
    shared: Arc<Shared>,
    rng: RefCell<Rng>,
    tls: Option<TlsAcceptor>,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, index: usize) -> Worker {
        Worker {
            tls: shared.tls.clone().map(TlsAcceptor::from),
            rng: RefCell::new(Rng::seeded(index as u64 + 1)),
            shared,
        }
    }
}

pub async fn accept_loop(listener: TcpListener, worker: Rc<Worker>) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                let worker = worker.clone();
                monoio::spawn(async move { serve_connection(tcp, worker).await });
            }
            // Out of descriptors or similar: back off instead of spinning.
            Err(_) => monoio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<ServerTlsStream<TcpStream>>),
}

impl Stream {
    async fn read(&mut self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        let len = buf.len();
        let cap = buf.capacity();
        let slice = buf.slice_mut(len..cap);
        let (res, slice) = match self {
            Stream::Plain(s) => s.read(slice).await,
            Stream::Tls(s) => s.read(slice).await,
        };
        (res, slice.into_inner())
    }

    async fn write_all<T: IoBuf + 'static>(&mut self, buf: T) -> (std::io::Result<()>, T) {
        let (res, buf) = match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => s.write_all(buf).await,
        };
        (res.map(|_| ()), buf)
    }

    /// Write and clear `out`, keeping its allocation.
    async fn flush(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let (res, mut buf) = self.write_all(std::mem::take(out)).await;
        buf.clear();
        *out = buf;
        res
    }
}

/// Make the next close send a TCP RST.
fn set_linger_zero(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is an open socket owned by the caller; the option value
    // is a valid `linger` of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    out: Vec<u8>,
    parser: RequestParser,
    echo: Option<Echo>,
    served: u64,
}

async fn serve_connection(tcp: TcpStream, worker: Rc<Worker>) {
    let fd = tcp.as_raw_fd();
    let shared = worker.shared.clone();
    let reset = shared.faults.reset_connection(&mut worker.rng.borrow_mut());
    let stream = match &worker.tls {
        None => Stream::Plain(tcp),
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(s) => Stream::Tls(Box::new(s)),
            Err(_) => return,
        },
    };
    if shared.cfg.hang {
        hang(stream).await;
        return;
    }
    let mut conn = Connection {
        stream,
        buf: Vec::with_capacity(READ_BUF),
        start: 0,
        out: Vec::with_capacity(READ_BUF),
        parser: RequestParser::new(),
        echo: shared.cfg.echo.then(|| Echo {
            names: shared.cfg.echo_headers.clone(),
            ..Echo::default()
        }),
        served: 0,
    };
    if serve_requests(&mut conn, &worker, &shared, reset).await == Ending::Reset {
        set_linger_zero(fd);
    }
}

/// `--hang`: read and discard whatever comes until the peer closes; never
/// answer.
async fn hang(mut stream: Stream) {
    let mut buf = Vec::with_capacity(READ_BUF);
    loop {
        buf.clear();
        let (res, b) = stream.read(buf).await;
        buf = b;
        match res {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

#[derive(PartialEq, Eq)]
enum Ending {
    Closed,
    Reset,
}

async fn serve_requests(
    conn: &mut Connection,
    worker: &Worker,
    shared: &Shared,
    reset: bool,
) -> Ending {
    loop {
        let mut close = false;
        loop {
            let parsed = conn
                .parser
                .feed(&conn.buf[conn.start..], conn.echo.as_mut());
            match parsed {
                Ok(Parsed::Done { consumed, request }) => {
                    conn.start += consumed;
                    conn.served += 1;
                    if reset {
                        return Ending::Reset;
                    }
                    let last = !request.keep_alive
                        || shared.faults.close_after.is_some_and(|n| conn.served >= n);
                    if respond(conn, worker, shared, request, last).await.is_err() {
                        return Ending::Closed;
                    }
                    if last {
                        close = true;
                        break;
                    }
                }
                Ok(Parsed::Partial { consumed }) => {
                    conn.start += consumed;
                    if conn.parser.wants_continue {
                        conn.parser.wants_continue = false;
                        conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    break;
                }
                Err(e) => {
                    let status = e.status();
                    start_head(&mut conn.out, status, &[]);
                    conn.out
                        .extend_from_slice(b"Content-Length: 0\r\nConnection: close\r\n\r\n");
                    close = true;
                    break;
                }
            }
        }
        if conn.stream.flush(&mut conn.out).await.is_err() || close {
            return Ending::Closed;
        }
        // Make room after the unconsumed bytes, then read more.
        if conn.start == conn.buf.len() {
            conn.buf.clear();
            conn.start = 0;
        } else if conn.buf.len() == conn.buf.capacity() {
            if conn.start > 0 {
                conn.buf.copy_within(conn.start.., 0);
                conn.buf.truncate(conn.buf.len() - conn.start);
                conn.start = 0;
            } else {
                conn.buf.reserve(conn.buf.capacity());
            }
        }
        let (res, buf) = conn.stream.read(std::mem::take(&mut conn.buf)).await;
        conn.buf = buf;
        match res {
            Ok(n) if n > 0 => {}
            _ => return Ending::Closed,
        }
    }
}

/// Queue (or write) the response to one request.
async fn respond(
    conn: &mut Connection,
    worker: &Worker,
    shared: &Shared,
    request: RequestInfo,
    last: bool,
) -> std::io::Result<()> {
    let faults = &shared.faults;
    let wait = faults.wait_before_response(&mut worker.rng.borrow_mut());
    if !wait.is_zero() {
        conn.stream.flush(&mut conn.out).await?;
        monoio::time::sleep(wait).await;
    }
    let t = &shared.templates;
    let cfg = &shared.cfg;
    let slow = faults.slow_body.filter(|_| !request.head);
    if !request.head && faults.fail_request(&mut worker.rng.borrow_mut()) {
        conn.out
            .extend_from_slice(if last { t.fail_close } else { t.fail });
        if let Some(echo) = conn.echo.as_mut() {
            echo.clear();
        }
        if conn.out.len() >= FLUSH_AT {
            conn.stream.flush(&mut conn.out).await?;
        }
        return Ok(());
    }

    if let Some(echo) = conn.echo.as_mut() {
        let chunked = cfg.chunked && !super::response::bodyless(cfg.status);
        start_head(&mut conn.out, cfg.status, &cfg.headers);
        framing(&mut conn.out, cfg.status, chunked, echo.body.len());
        conn.out.extend_from_slice(&echo.headers);
        if last {
            conn.out.extend_from_slice(b"Connection: close\r\n");
        }
        conn.out.extend_from_slice(b"\r\n");
        let body = if request.head || super::response::bodyless(cfg.status) {
            Vec::new()
        } else {
            std::mem::take(&mut echo.body)
        };
        echo.clear();
        let result = write_body(conn, &body, chunked, slow).await;
        if let Some(echo) = conn.echo.as_mut() {
            // Keep the body's allocation for the next request.
            let mut body = body;
            body.clear();
            echo.body = body;
        }
        return result;
    }

    if request.head {
        conn.out
            .extend_from_slice(if last { t.head_close } else { t.head });
    } else if let Some(slow) = slow {
        conn.out
            .extend_from_slice(if last { t.head_close } else { t.head });
        write_body(conn, t.body, t.chunked, Some(slow)).await?;
    } else {
        let full = if last { t.full_close } else { t.full };
        if full.len() >= FLUSH_AT {
            conn.stream.flush(&mut conn.out).await?;
            let (res, _) = conn.stream.write_all(full).await;
            res?;
        } else {
            conn.out.extend_from_slice(full);
        }
    }
    if conn.out.len() >= FLUSH_AT {
        conn.stream.flush(&mut conn.out).await?;
    }
    Ok(())
}

/// Append `body` after the head already in `out`: all at once, or in
/// pieces with a pause before each (`--slow-body`).
async fn write_body(
    conn: &mut Connection,
    body: &[u8],
    chunked: bool,
    slow: Option<(Duration, usize)>,
) -> std::io::Result<()> {
    match slow {
        None => {
            if chunked {
                push_chunk(&mut conn.out, body);
                conn.out.extend_from_slice(LAST_CHUNK);
            } else {
                conn.out.extend_from_slice(body);
            }
            if conn.out.len() >= FLUSH_AT {
                conn.stream.flush(&mut conn.out).await?;
            }
            Ok(())
        }
        Some((pause, piece)) => {
            conn.stream.flush(&mut conn.out).await?;
            for part in body.chunks(piece) {
                monoio::time::sleep(pause).await;
                if chunked {
                    push_chunk(&mut conn.out, part);
                } else {
                    conn.out.extend_from_slice(part);
                }
                conn.stream.flush(&mut conn.out).await?;
            }
            if chunked {
                conn.out.extend_from_slice(LAST_CHUNK);
                conn.stream.flush(&mut conn.out).await?;
            }
            Ok(())
        }
    }
}
