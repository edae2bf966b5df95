//! A real multi-threaded HTTP/1.1 origin server on 127.0.0.1:0 (std threads,
//! blocking sockets, one thread per connection), plain or TLS (rustls).
//!
//! It counts connections, requests and raw bytes received, records every
//! request head (even unparsable ones), and serves by path:
//!
//! | path | response |
//! | --- | --- |
//! | anything else | echo: 200 with the request body (CL or chunked request), `x-echo-<name>` for [`ECHO_HEADERS`] and the names listed in `x-echo-headers`; chunked reply if the request has `x-reply-chunked` |
//! | `/chunked` | 200 chunked, body [`chunked_body`] |
//! | `/trailers` | 200 chunked, body `hello`, trailers `x-checksum: 5d41402a` and `grpc-status: 0` |
//! | `/delay/<ms>` | sleeps, then 200 `delayed <ms>` |
//! | `/status/<code>` | that status; 1xx/204/304 without body, others `status <code>\n` |
//! | `/bytes/<n>` | 200, Content-Length n, [`crate::pattern`] bytes in 64 KiB writes |
//! | `/sink` | reads the whole body (not kept), 200 with its byte count; `x-sink-pattern-ok` says whether it matched the pattern |
//! | `/close` | 200 without Content-Length, body [`close_body`], then closes |
//! | `/hop` | 200 with hop-by-hop response headers (`Connection: x-resp-hop`, `X-Resp-Hop`, `Keep-Alive`) and `X-End-To-End` |
//! | `/ws` | with an `Upgrade` header: 101, then echoes raw bytes until EOF |
//! | `/abort` | closes the connection without answering |
//! | `/bad-response` | an invalid response (two differing Content-Length fields) |
//! | `/drop-after` | a normal keep-alive response, then closes the connection anyway |
//!
//! Every response carries `x-origin: <name>`, `x-origin-conn: <connection
//! number>` and `x-origin-req: <request number on that connection>`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::CertificateDer;

use crate::pattern::Pattern;
use crate::wire::Wire;

/// Largest request head the origin accepts.
pub const MAX_HEAD: usize = 1024 * 1024;
/// Largest body the origin holds in memory (echo); `/sink` has no limit.
pub const MAX_ECHO_BODY: u64 = 64 * 1024 * 1024;
/// How long an origin connection may sit without receiving anything.
pub const ORIGIN_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Request headers the echo path always reflects as `x-echo-<name>`.
pub const ECHO_HEADERS: &[&str] = &[
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "content-length",
    "transfer-encoding",
];

/// The decoded body of `/chunked`.
pub fn chunked_body() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..2000 {
        v.extend_from_slice(format!("chunked line {i:04} of the /chunked response\n").as_bytes());
    }
    v
}

/// Chunk sizes `/chunked` uses (cycled).
pub const CHUNKED_PIECES: &[usize] = &[1, 7, 100, 4096, 70_000, 13];

/// The body of `/close` (sent without framing, then the origin closes).
pub fn close_body() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..3000 {
        v.extend_from_slice(format!("read-until-close line {i:04}\n").as_bytes());
    }
    v
}

/// One request head as the origin received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Connection number (1-based, in accept order).
    pub conn_id: usize,
    /// Request number on that connection (1-based).
    pub index_on_conn: usize,
    pub method: String,
    pub target: String,
    /// Minor version.
    pub version: u8,
    /// Fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The head as received (for unparsable ones: what was received).
    pub raw_head: Vec<u8>,
    /// Body bytes read (after de-chunking); None until the body was read.
    pub body_len: Option<u64>,
    /// Set when the head could not be parsed.
    pub parse_error: Option<String>,
    /// TLS mode: the SNI the client sent.
    pub tls_sni: Option<String>,
    /// TLS mode: the client certificate, if one was presented.
    pub client_cert: Option<CertificateDer<'static>>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
    pub fn raw_str(&self) -> String {
        String::from_utf8_lossy(&self.raw_head).into_owned()
    }
}

struct State {
    name: String,
    connections: AtomicUsize,
    bytes_received: AtomicU64,
    requests: Mutex<Vec<RecordedRequest>>,
    tls_errors: Mutex<Vec<String>>,
    streams: Mutex<HashMap<usize, TcpStream>>,
    stop: AtomicBool,
}

/// TLS settings of an origin.
#[derive(Clone)]
pub struct OriginTls {
    pub config: Arc<ServerConfig>,
}

/// A running origin; stops on drop.
pub struct Origin {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
    tls: bool,
}

impl Origin {
    /// A plain origin named "origin".
    pub fn start() -> Origin {
        Origin::start_with("origin", None)
    }

    /// A plain origin with the given name (sent back as `x-origin`).
    pub fn start_named(name: &str) -> Origin {
        Origin::start_with(name, None)
    }

    /// A TLS origin.
    pub fn start_tls(name: &str, tls: OriginTls) -> Origin {
        Origin::start_with(name, Some(tls))
    }

    pub fn start_with(name: &str, tls: Option<OriginTls>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        // A deep accept queue: load tests open hundreds of upstream
        // connections at once (std listens with a backlog of 128).
        // SAFETY: listen(2) on a socket this function owns.
        unsafe {
            libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 4096);
        }
        let addr = listener.local_addr().expect("origin addr");
        let state = Arc::new(State {
            name: name.to_string(),
            connections: AtomicUsize::new(0),
            bytes_received: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            tls_errors: Mutex::new(Vec::new()),
            streams: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let is_tls = tls.is_some();
        let st = state.clone();
        let accept = std::thread::Builder::new()
            .name(format!("origin-{name}-accept"))
            .spawn(move || accept_loop(listener, st, tls))
            .expect("spawn origin");
        Origin {
            addr,
            state,
            accept: Some(accept),
            tls: is_tls,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Raw bytes received on all connections (before TLS decryption).
    pub fn bytes_received(&self) -> u64 {
        self.state.bytes_received.load(Ordering::SeqCst)
    }

    /// Request heads received so far (parsable or not).
    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Every request head received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The most recent request head.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.state.requests.lock().unwrap().last().cloned()
    }

    /// TLS handshake failures seen (TLS mode).
    pub fn tls_errors(&self) -> Vec<String> {
        self.state.tls_errors.lock().unwrap().clone()
    }

    /// Waits until `cond(self)` holds or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, cond: impl Fn(&Origin) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for (_, s) in self.state.streams.lock().unwrap().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>, tls: Option<OriginTls>) {
    for conn in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(sock) = conn else { continue };
        let id = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = sock.set_read_timeout(Some(ORIGIN_READ_TIMEOUT));
        let _ = sock.set_write_timeout(Some(crate::IO_TIMEOUT));
        let _ = sock.set_nodelay(true);
        if let Ok(c) = sock.try_clone() {
            state.streams.lock().unwrap().insert(id, c);
        }
        let st = state.clone();
        let tls = tls.clone();
        let _ = std::thread::Builder::new()
            .name(format!("origin-{}-conn-{id}", state.name))
            .spawn(move || {
                let counted = Counting {
                    inner: sock,
                    state: st.clone(),
                    id,
                };
                match tls {
                    None => serve(&st, id, &mut Wire::new(counted), None, None),
                    Some(tls) => serve_tls(&st, id, counted, &tls),
                }
            });
    }
}

/// A TcpStream that adds the bytes it reads to the origin's counter; on
/// drop it shuts the socket down (so the peer sees the end even though the
/// origin keeps a clone for shutting connections down when it stops).
struct Counting {
    inner: TcpStream,
    state: Arc<State>,
    id: usize,
}

impl Drop for Counting {
    fn drop(&mut self) {
        let _ = self.inner.shutdown(Shutdown::Both);
        self.state.streams.lock().unwrap().remove(&self.id);
    }
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.state
            .bytes_received
            .fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn serve_tls(state: &State, id: usize, mut sock: Counting, tls: &OriginTls) {
    let mut conn = match ServerConnection::new(tls.config.clone()) {
        Ok(c) => c,
        Err(e) => {
            state.tls_errors.lock().unwrap().push(e.to_string());
            return;
        }
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            state
                .tls_errors
                .lock()
                .unwrap()
                .push(format!("connection {id}: {e}"));
            return;
        }
    }
    let sni = conn.server_name().map(str::to_string);
    let client_cert = conn.peer_certificates().and_then(|c| c.first().cloned());
    let mut wire = Wire::new(StreamOwned::new(conn, sock));
    serve(state, id, &mut wire, sni, client_cert);
    let tls = wire.get_mut();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

enum ReqBody {
    None,
    Length(u64),
    Chunked,
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn serve<S: Read + Write>(
    state: &State,
    conn_id: usize,
    wire: &mut Wire<S>,
    sni: Option<String>,
    client_cert: Option<CertificateDer<'static>>,
) {
    let pattern = Pattern::new();
    let mut index = 0;
    loop {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let raw = match wire.read_head(MAX_HEAD) {
            Ok(Some(raw)) => raw,
            Ok(None) => return,
            Err(e) => {
                // Bytes that never formed a head: record them anyway.
                let partial = wire.take_buffered();
                if !partial.is_empty() {
                    index += 1;
                    state.requests.lock().unwrap().push(RecordedRequest {
                        conn_id,
                        index_on_conn: index,
                        method: String::new(),
                        target: String::new(),
                        version: 0,
                        headers: Vec::new(),
                        raw_head: partial,
                        body_len: None,
                        parse_error: Some(format!("incomplete head: {e}")),
                        tls_sni: sni.clone(),
                        client_cert: client_cert.clone(),
                    });
                }
                return;
            }
        };
        index += 1;
        let mut hdrs = [httparse::EMPTY_HEADER; 256];
        let mut req = httparse::Request::new(&mut hdrs);
        let parsed = req.parse(&raw);
        let mut rec = RecordedRequest {
            conn_id,
            index_on_conn: index,
            method: req.method.unwrap_or("").to_string(),
            target: req.path.unwrap_or("").to_string(),
            version: req.version.unwrap_or(0),
            headers: req
                .headers
                .iter()
                .take_while(|h| !h.name.is_empty())
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            raw_head: raw.clone(),
            body_len: None,
            parse_error: None,
            tls_sni: sni.clone(),
            client_cert: client_cert.clone(),
        };
        if let Err(e) = parsed {
            rec.parse_error = Some(e.to_string());
            state.requests.lock().unwrap().push(rec);
            let _ = respond(
                wire,
                state,
                conn_id,
                index,
                400,
                &[],
                b"origin: bad request\n",
                true,
                false,
            );
            return;
        }
        let headers = rec.headers.clone();
        let method = rec.method.clone();
        let target = rec.target.clone();
        let version = rec.version;
        let slot = {
            let mut reqs = state.requests.lock().unwrap();
            reqs.push(rec);
            reqs.len() - 1
        };
        let set_body_len = |n: u64| {
            state.requests.lock().unwrap()[slot].body_len = Some(n);
        };

        // Request body framing.
        let te: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "transfer-encoding")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let body_kind = if !te.is_empty() {
            if te.last().is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
                ReqBody::Chunked
            } else {
                let _ = respond(
                    wire,
                    state,
                    conn_id,
                    index,
                    400,
                    &[],
                    b"origin: bad transfer-encoding\n",
                    true,
                    false,
                );
                return;
            }
        } else if let Some((_, v)) = headers.iter().find(|(n, _)| n == "content-length") {
            match v.trim().parse::<u64>() {
                Ok(n) => ReqBody::Length(n),
                Err(_) => {
                    let _ = respond(
                        wire,
                        state,
                        conn_id,
                        index,
                        400,
                        &[],
                        b"origin: bad content-length\n",
                        true,
                        false,
                    );
                    return;
                }
            }
        } else {
            ReqBody::None
        };

        let close = has_token(&headers, "connection", "close")
            || (version == 0 && !has_token(&headers, "connection", "keep-alive"));
        let head_only = method.eq_ignore_ascii_case("HEAD");
        let path = target.split('?').next().unwrap_or("").to_string();

        let result: io::Result<bool> = (|| {
            if path == "/sink" {
                let mut count = 0u64;
                let mut ok = true;
                let mut f = |b: &[u8]| {
                    if ok && !pattern.matches(count, b) {
                        ok = false;
                    }
                    count += b.len() as u64;
                    Ok(())
                };
                match body_kind {
                    ReqBody::None => {}
                    ReqBody::Length(n) => wire.read_exact_with(n, &mut f)?,
                    ReqBody::Chunked => {
                        wire.read_chunked_with(&mut f)?;
                    }
                }
                set_body_len(count);
                let extra = [("x-sink-pattern-ok".to_string(), ok.to_string())];
                respond(
                    wire,
                    state,
                    conn_id,
                    index,
                    200,
                    &extra,
                    format!("{count}").as_bytes(),
                    close,
                    head_only,
                )?;
                return Ok(close);
            }

            let mut body = Vec::new();
            let mut f = |b: &[u8]| {
                if body.len() as u64 + b.len() as u64 > MAX_ECHO_BODY {
                    return Err(io::Error::other("echo body too large"));
                }
                body.extend_from_slice(b);
                Ok(())
            };
            let framing = match body_kind {
                ReqBody::None => "none",
                ReqBody::Length(n) => {
                    wire.read_exact_with(n, &mut f)?;
                    "content-length"
                }
                ReqBody::Chunked => {
                    wire.read_chunked_with(&mut f)?;
                    "chunked"
                }
            };
            set_body_len(body.len() as u64);

            if path == "/ws" && headers.iter().any(|(n, _)| n == "upgrade") {
                let proto = headers
                    .iter()
                    .find(|(n, _)| n == "upgrade")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {proto}\r\nx-origin: {}\r\n\r\n",
                    state.name
                );
                wire.write_all(head.as_bytes())?;
                loop {
                    let data = wire.read_some()?;
                    if data.is_empty() {
                        return Ok(true);
                    }
                    wire.write_all(&data)?;
                }
            }
            if path == "/abort" {
                return Ok(true);
            }
            if path == "/bad-response" {
                let mut head =
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n".to_string();
                head.push_str(&common_headers(state, conn_id, index));
                head.push_str("\r\nhello!");
                wire.write_all(head.as_bytes())?;
                return Ok(true);
            }
            if path == "/drop-after" {
                respond(
                    wire,
                    state,
                    conn_id,
                    index,
                    200,
                    &[],
                    b"dropping\n",
                    false,
                    head_only,
                )?;
                return Ok(true);
            }
            if let Some(ms) = path.strip_prefix("/delay/") {
                let ms: u64 = ms.parse().unwrap_or(0);
                std::thread::sleep(Duration::from_millis(ms));
                respond(
                    wire,
                    state,
                    conn_id,
                    index,
                    200,
                    &[],
                    format!("delayed {ms}").as_bytes(),
                    close,
                    head_only,
                )?;
                return Ok(close);
            }
            if let Some(code) = path.strip_prefix("/status/") {
                let code: u16 = code.parse().unwrap_or(500);
                if (100..200).contains(&code) || code == 204 || code == 304 {
                    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
                    head.push_str(&common_headers(state, conn_id, index));
                    if close {
                        head.push_str("Connection: close\r\n");
                    }
                    head.push_str("\r\n");
                    wire.write_all(head.as_bytes())?;
                } else {
                    respond(
                        wire,
                        state,
                        conn_id,
                        index,
                        code,
                        &[],
                        format!("status {code}\n").as_bytes(),
                        close,
                        head_only,
                    )?;
                }
                return Ok(close);
            }
            if let Some(n) = path.strip_prefix("/bytes/") {
                let n: u64 = n.parse().unwrap_or(0);
                let mut head =
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n".to_string();
                head.push_str(&common_headers(state, conn_id, index));
                head.push_str(&format!("Content-Length: {n}\r\n"));
                if close {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                wire.write_all(head.as_bytes())?;
                if !head_only {
                    pattern.write_to(wire.get_mut(), n)?;
                    wire.get_mut().flush()?;
                }
                return Ok(close);
            }
            if path == "/trailers" {
                let mut head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum, grpc-status\r\n"
                        .to_string();
                head.push_str(&common_headers(state, conn_id, index));
                head.push_str("\r\n");
                wire.write_all(head.as_bytes())?;
                if !head_only {
                    wire.write_all(
                        b"5\r\nhello\r\n0\r\nx-checksum: 5d41402a\r\ngrpc-status: 0\r\n\r\n",
                    )?;
                }
                return Ok(close);
            }
            if path == "/chunked" {
                let mut head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                        .to_string();
                head.push_str(&common_headers(state, conn_id, index));
                if close {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                wire.write_all(head.as_bytes())?;
                if !head_only {
                    let data = chunked_body();
                    let mut rest = &data[..];
                    let mut i = 0;
                    while !rest.is_empty() {
                        let n = CHUNKED_PIECES[i % CHUNKED_PIECES.len()].min(rest.len());
                        // One chunk carries a (valid) extension.
                        let ext = if i == 1 { ";ext=1" } else { "" };
                        let mut c = format!("{n:x}{ext}\r\n").into_bytes();
                        c.extend_from_slice(&rest[..n]);
                        c.extend_from_slice(b"\r\n");
                        wire.write_all(&c)?;
                        rest = &rest[n..];
                        i += 1;
                    }
                    wire.write_all(b"0\r\n\r\n")?;
                }
                return Ok(close);
            }
            if path == "/close" {
                let mut head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                        .to_string();
                head.push_str(&common_headers(state, conn_id, index));
                head.push_str("\r\n");
                wire.write_all(head.as_bytes())?;
                if !head_only {
                    wire.write_all(&close_body())?;
                }
                return Ok(true);
            }
            if path == "/hop" {
                let extra = [
                    ("Connection".to_string(), "x-resp-hop".to_string()),
                    ("X-Resp-Hop".to_string(), "secret".to_string()),
                    ("Keep-Alive".to_string(), "timeout=9".to_string()),
                    ("X-End-To-End".to_string(), "yes".to_string()),
                ];
                respond(
                    wire, state, conn_id, index, 200, &extra, b"hop\n", close, head_only,
                )?;
                return Ok(close);
            }

            // Echo.
            let mut extra = vec![
                ("x-echo-method".to_string(), method.clone()),
                ("x-echo-target".to_string(), target.clone()),
                ("x-echo-body-framing".to_string(), framing.to_string()),
            ];
            let mut names: Vec<String> = ECHO_HEADERS.iter().map(|s| s.to_string()).collect();
            for (n, v) in &headers {
                if n == "x-echo-headers" {
                    names.extend(v.split(',').map(|s| s.trim().to_ascii_lowercase()));
                }
            }
            for name in &names {
                for (n, v) in &headers {
                    if n == name {
                        extra.push((format!("x-echo-{name}"), v.clone()));
                    }
                }
            }
            if headers.iter().any(|(n, _)| n == "x-reply-chunked") {
                let mut head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n".to_string();
                head.push_str(&common_headers(state, conn_id, index));
                for (n, v) in &extra {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                if close {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                wire.write_all(head.as_bytes())?;
                if !head_only {
                    wire.write_all(&crate::wire::chunked_body(
                        &body,
                        &[1, 10, 100, 1000, 10_000],
                    ))?;
                }
                return Ok(close);
            }
            respond(
                wire, state, conn_id, index, 200, &extra, &body, close, head_only,
            )?;
            Ok(close)
        })();
        match result {
            Ok(false) => continue,
            Ok(true) | Err(_) => {
                let _ = wire.get_mut().flush();
                return;
            }
        }
    }
}

fn common_headers(state: &State, conn_id: usize, index: usize) -> String {
    format!(
        "x-origin: {}\r\nx-origin-conn: {conn_id}\r\nx-origin-req: {index}\r\n",
        state.name
    )
}

#[allow(clippy::too_many_arguments)]
fn respond<S: Read + Write>(
    wire: &mut Wire<S>,
    state: &State,
    conn_id: usize,
    index: usize,
    status: u16,
    extra: &[(String, String)],
    body: &[u8],
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    head.push_str(&common_headers(state, conn_id, index));
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    wire.write_all(&out)
}
