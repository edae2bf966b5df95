//! The admin threads: a blocking accept loop serving one request per
//! connection, and the io_uring telemetry sampler.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::history::History;
use super::routes::{self, Response};
use super::{AdminState, RingStats};
use crate::stats::merge;
use crate::stats::ring::{RingSample, RingTotals};

/// How often the sampler reads every worker's ring counters.
pub const RING_SAMPLE_INTERVAL: Duration = Duration::from_millis(500);
/// How often the sampler adds a point to the dashboard's history.
pub const HISTORY_INTERVAL: Duration = Duration::from_secs(1);
/// Read and write timeout of an admin connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest request head accepted (431 above).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Ring totals per worker, kept by the admin side only (workers never touch
/// this mutex).
pub struct RingSampler {
    state: Arc<AdminState>,
    totals: Mutex<Vec<Slot>>,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    fd: Option<i32>,
    totals: RingTotals,
}

impl RingSampler {
    pub fn new(state: Arc<AdminState>) -> RingSampler {
        let n = state.registry.worker_count();
        RingSampler {
            state,
            totals: Mutex::new(vec![Slot::default(); n]),
        }
    }

    /// Read every worker's ring now and fold the readings into the totals.
    pub fn sample(&self) {
        // Read /proc outside the lock; the lock only guards the fold.
        let readings: Vec<(Option<i32>, Option<RingSample>)> = self
            .state
            .registry
            .load()
            .workers
            .iter()
            .map(|w| {
                let fd = w.ring_fd();
                (fd, fd.and_then(RingSample::read))
            })
            .collect();
        let mut slots = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        for (slot, (fd, reading)) in slots.iter_mut().zip(readings) {
            if slot.fd != fd {
                // A new (or no) ring behind this worker: start over.
                *slot = Slot {
                    fd,
                    totals: RingTotals::default(),
                };
            }
            if let Some(s) = reading {
                slot.totals.update(s);
            }
        }
    }

    /// The latest figures per worker (`None`: no io_uring ring, e.g. the
    /// epoll driver, or not sampled yet).
    pub fn stats(&self) -> Vec<Option<RingStats>> {
        let slots = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .map(|slot| {
                let last = slot.totals.last()?;
                slot.fd?;
                Some(RingStats {
                    submissions: slot.totals.submissions,
                    completions: slot.totals.completions,
                    inflight: last.in_flight(),
                    sq_entries: last.sq_entries,
                    cq_entries: last.cq_entries,
                    cq_overflow: last.cq_overflow_pending,
                })
            })
            .collect()
    }
}

/// Give the calling thread a lower scheduling priority (nice 10), so admin
/// work loses against a busy worker on a shared core. Best effort.
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers and only affect the
    // calling thread's scheduling; no memory is involved.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// Start the sampler and the accept loop on `listener`.
pub fn start(
    state: Arc<AdminState>,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let sampler = Arc::new(RingSampler::new(state.clone()));
    sampler.sample();
    let history = Arc::new(Mutex::new(History::default()));

    let s = sampler.clone();
    let stop_s = stop.clone();
    let (h, state_s) = (history.clone(), state.clone());
    let ring_thread = std::thread::Builder::new()
        .name("ringway-admin-ring".into())
        .spawn(move || {
            lower_priority();
            let tick = Duration::from_millis(50);
            let mut next = Instant::now() + RING_SAMPLE_INTERVAL;
            let mut next_point = Instant::now();
            while !stop_s.load(Ordering::Acquire) {
                let now = Instant::now();
                if now >= next_point {
                    // Merge outside the lock; the lock only guards the fold.
                    let view = merge(&state_s.registry.load(), None);
                    h.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .record(&view, now);
                    next_point += HISTORY_INTERVAL;
                    if next_point < now {
                        next_point = now + HISTORY_INTERVAL;
                    }
                }
                if now >= next {
                    s.sample();
                    next = Instant::now() + RING_SAMPLE_INTERVAL;
                }
                std::thread::sleep(tick);
            }
        })?;

    // Non-blocking: a connection that goes away between poll and accept
    // must not leave the thread blocked in accept.
    listener.set_nonblocking(true)?;
    let stop_a = stop;
    let accept_thread = std::thread::Builder::new()
        .name("ringway-admin".into())
        .spawn(move || {
            lower_priority();
            loop {
                // Poll with a timeout so that `stop` is seen even if the
                // wake-up connection never arrives.
                let ready = readable(&listener, Duration::from_millis(250));
                if stop_a.load(Ordering::Acquire) {
                    break;
                }
                if !ready {
                    continue;
                }
                match listener.accept().map(|(s, _)| s) {
                    Ok(stream) => {
                        // Accepted sockets do not inherit O_NONBLOCK on
                        // Linux; make sure, the timeouts rely on it.
                        if stream.set_nonblocking(false).is_ok() {
                            serve(&state, &sampler, &history, stream);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "admin accept failed");
                        // EMFILE and friends: don't spin.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(vec![ring_thread, accept_thread])
}

/// Wait until `listener` has a connection to accept (or `timeout`).
fn readable(listener: &TcpListener, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, owned by this frame, for the duration of
    // the call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    n > 0
}

/// Where to connect to wake an accept loop bound on `bound`.
pub fn wake_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// A parsed request line.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string (after `?`, without it; empty when none).
    pub query: &'a str,
}

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Closed, reset or timed out before a full head: no response.
    Gone,
    /// Head larger than [`MAX_HEAD_BYTES`]: 431.
    TooLarge,
    /// Not an HTTP/1.x request head: 400.
    Malformed,
}

/// Read a request head (up to the blank line) from `r`.
pub fn read_head<R: Read>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Err(ReadError::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Gone),
        };
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf[scan_from..]) {
            buf.truncate(scan_from + end);
            if buf.len() > MAX_HEAD_BYTES {
                return Err(ReadError::TooLarge);
            }
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadError::TooLarge);
        }
    }
}

/// Offset just past the first `\r\n\r\n` (or bare `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    for i in 0..buf.len() {
        if buf[i..].starts_with(b"\r\n\r\n") {
            return Some(i + 4);
        }
        if buf[i..].starts_with(b"\n\n") {
            return Some(i + 2);
        }
    }
    None
}

/// Parse the request line of a head: `METHOD SP target SP HTTP/1.x`.
pub fn parse_request_line(head: &[u8]) -> Result<RequestLine<'_>, ReadError> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(ReadError::Malformed)?;
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| ReadError::Malformed)?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed);
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !target.bytes().all(|b| b.is_ascii_graphic())
        || !(version == "HTTP/1.1" || version == "HTTP/1.0")
    {
        return Err(ReadError::Malformed);
    }
    let without_fragment = target.split('#').next().unwrap_or(target);
    let (path, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    Ok(RequestLine {
        method,
        path,
        query,
    })
}

/// Serve one connection: one request, one response, close.
fn serve(
    state: &Arc<AdminState>,
    sampler: &RingSampler,
    history: &Mutex<History>,
    mut stream: TcpStream,
) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let (response, head_only) = match read_head(&mut stream) {
        Err(ReadError::Gone) => return,
        Err(ReadError::TooLarge) => (Response::text(431, "request head too large\n"), false),
        Err(ReadError::Malformed) => (Response::text(400, "bad request\n"), false),
        Ok(head) => match parse_request_line(&head) {
            Err(_) => (Response::text(400, "bad request\n"), false),
            Ok(req) => {
                let head_only = req.method == "HEAD";
                let ctx = routes::Context {
                    state,
                    rings: &|| {
                        sampler.sample();
                        sampler.stats()
                    },
                    history,
                };
                (
                    routes::handle_query(&ctx, req.method, req.path, req.query),
                    head_only,
                )
            }
        },
    };
    let bytes = response.to_bytes(head_only);
    if stream.write_all(&bytes).is_err() {
        return;
    }
    let _ = stream.flush();
    // Close gracefully: stop writing, then drain what the client may still
    // send (a body we ignored) so the close does not turn into a reset that
    // could destroy the response in flight.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        fn ok(head: &str) -> Result<RequestLine<'_>, ReadError> {
            parse_request_line(head.as_bytes())
        }
        assert_eq!(
            ok("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(RequestLine {
                method: "GET",
                path: "/metrics",
                query: ""
            })
        );
        assert_eq!(ok("HEAD /stats?x=1 HTTP/1.0\n\n").unwrap().path, "/stats");
        assert_eq!(
            ok("POST /routes/r/weights?a=1&b=2 HTTP/1.1\n\n")
                .unwrap()
                .query,
            "a=1&b=2"
        );
        for bad in [
            "GET /metrics\r\n\r\n",
            "GET metrics HTTP/1.1\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
            "get / HTTP/1.1\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "\r\n\r\n",
        ] {
            assert_eq!(ok(bad), Err(ReadError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn head_reading() {
        let mut r: &[u8] = b"GET / HTTP/1.1\r\nA: b\r\n\r\nBODY";
        assert_eq!(
            read_head(&mut r).unwrap(),
            b"GET / HTTP/1.1\r\nA: b\r\n\r\n"
        );
        let mut r: &[u8] = b"GET / HTTP/1.1\r\nA: b\r\n";
        assert_eq!(read_head(&mut r), Err(ReadError::Gone));
        let big = format!(
            "GET / HTTP/1.1\r\nA: {}\r\n\r\n",
            "x".repeat(MAX_HEAD_BYTES)
        );
        let mut r = big.as_bytes();
        assert_eq!(read_head(&mut r), Err(ReadError::TooLarge));
        // The terminator split over two reads.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let mut r = Trickle(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(read_head(&mut r).unwrap().len(), 18);
    }

    #[test]
    fn wake_addresses() {
        assert_eq!(
            wake_address("0.0.0.0:9901".parse().unwrap()),
            "127.0.0.1:9901".parse().unwrap()
        );
        assert_eq!(
            wake_address("[::]:1".parse().unwrap()),
            "[::1]:1".parse().unwrap()
        );
        assert_eq!(
            wake_address("127.0.0.2:5".parse().unwrap()),
            "127.0.0.2:5".parse().unwrap()
        );
    }
}
