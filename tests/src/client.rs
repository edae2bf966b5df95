//! A raw HTTP/1.1 client: writes arbitrary bytes (so malformed requests can
//! be sent as-is), parses responses strictly with httparse and reads their
//! bodies by the RFC 9112 framing rules (no body for HEAD/1xx/204/304, then
//! chunked, Content-Length, read-until-close). Plain TCP or rustls with SNI.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, ServerName};

use crate::wire::{ChunkedInfo, Wire};
use crate::IO_TIMEOUT;

/// Largest response head the client accepts.
pub const MAX_HEAD: usize = 1024 * 1024;

/// A client byte stream: plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// How a response body was delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// No body by the rules (HEAD request, 1xx, 204, 304).
    NoBody,
    ContentLength(u64),
    Chunked,
    /// Delimited by the server closing the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    pub status: u16,
    pub reason: String,
    /// Header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The head exactly as received.
    pub raw: Vec<u8>,
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub head: ResponseHead,
    pub framing: Framing,
    pub body: Vec<u8>,
    /// Set for chunked bodies.
    pub chunked: Option<ChunkedInfo>,
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn headers_all<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether the comma-separated lists in every `name` field contain `token`
/// (case-insensitive).
fn has_token_in(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers_all(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        headers_all(&self.headers, name)
    }
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        has_token_in(&self.headers, name, token)
    }

    /// The body framing for a response to a request with `method`.
    pub fn framing(&self, method: &str) -> io::Result<Framing> {
        if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            return Ok(Framing::NoBody);
        }
        let te = self.headers_all("transfer-encoding");
        if !te.is_empty() {
            let last = te
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|t| !t.is_empty())
                .unwrap_or("");
            if last.eq_ignore_ascii_case("chunked") {
                return Ok(Framing::Chunked);
            }
            return Ok(Framing::UntilClose);
        }
        let cl = self.headers_all("content-length");
        if !cl.is_empty() {
            let mut value: Option<u64> = None;
            for v in cl.iter().flat_map(|v| v.split(',')) {
                let v = v.trim();
                let n: u64 = if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
                    v.parse()
                        .map_err(|_| bad(format!("bad Content-Length {v:?}")))?
                } else {
                    return Err(bad(format!("bad Content-Length {v:?}")));
                };
                if value.is_some_and(|x| x != n) {
                    return Err(bad(format!("differing Content-Length values {cl:?}")));
                }
                value = Some(n);
            }
            return Ok(Framing::ContentLength(value.unwrap_or(0)));
        }
        Ok(Framing::UntilClose)
    }
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.head.headers_all(name)
    }
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.head.has_token(name, token)
    }
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.head.raw))?;
        let shown = self.body.len().min(300);
        write!(f, "{}", String::from_utf8_lossy(&self.body[..shown]))?;
        if self.body.len() > shown {
            write!(f, "... ({} body bytes in all)", self.body.len())?;
        }
        Ok(())
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses a response head.
pub fn parse_head(raw: &[u8]) -> io::Result<ResponseHead> {
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) if n == raw.len() => {}
        Ok(_) => {
            return Err(bad(format!(
                "incomplete response head {:?}",
                String::from_utf8_lossy(raw)
            )))
        }
        Err(e) => {
            return Err(bad(format!(
                "unparsable response head ({e}): {:?}",
                String::from_utf8_lossy(raw)
            )))
        }
    }
    Ok(ResponseHead {
        version: resp.version.unwrap_or(1),
        status: resp.code.unwrap_or(0),
        reason: resp.reason.unwrap_or("").to_string(),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        raw: raw.to_vec(),
    })
}

/// The body of a [`Request`].
#[derive(Debug, Clone)]
pub enum Body {
    None,
    /// Sent with Content-Length.
    Bytes(Vec<u8>),
    /// Sent chunked; holds the already encoded body.
    Chunked(Vec<u8>),
}

/// A well-formed request to serialize (for malformed ones, send raw bytes).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    /// `method target HTTP/1.1` with `Host: test.local`.
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_string(),
            target: target.to_string(),
            version: "HTTP/1.1",
            headers: vec![("Host".into(), "test.local".into())],
            body: Body::None,
        }
    }
    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }
    pub fn post(target: &str) -> Request {
        Request::new("POST", target)
    }
    /// Replaces the Host header.
    pub fn host(mut self, host: &str) -> Request {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        self.headers.insert(0, ("Host".into(), host.into()));
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn http10(mut self) -> Request {
        self.version = "HTTP/1.0";
        self
    }
    /// A Content-Length body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Body::Bytes(body.into());
        self
    }
    /// A chunked body, split in pieces of the given sizes (cycled).
    pub fn chunked(mut self, data: &[u8], pieces: &[usize]) -> Request {
        self.body = Body::Chunked(crate::wire::chunked_body(data, pieces));
        self
    }
    /// The head only (with the framing header for the body).
    pub fn head_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        match &self.body {
            Body::None => {}
            Body::Bytes(b) => out.push_str(&format!("Content-Length: {}\r\n", b.len())),
            Body::Chunked(_) => out.push_str("Transfer-Encoding: chunked\r\n"),
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.head_bytes();
        match &self.body {
            Body::None => {}
            Body::Bytes(b) | Body::Chunked(b) => out.extend_from_slice(b),
        }
        out
    }
}

/// How a connection ended, as seen by [`Client::read_eof`].
#[derive(Debug, PartialEq, Eq)]
pub enum Eof {
    /// Orderly end of stream.
    Closed,
    /// Connection reset (or another error that means the peer went away).
    Reset(String),
    /// Bytes arrived instead.
    Data(Vec<u8>),
    /// Nothing happened within the timeout.
    TimedOut,
}

/// One client connection.
pub struct Client {
    wire: Wire<Stream>,
    pub addr: SocketAddr,
}

fn set_timeouts(s: &TcpStream) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)
}

/// Options for a TLS client connection.
pub struct TlsOptions {
    /// SNI and the name the certificate is verified against.
    pub server_name: String,
    pub config: Arc<ClientConfig>,
}

impl TlsOptions {
    /// Trusting `ca`, no client certificate.
    pub fn new(server_name: &str, ca: CertificateDer<'static>) -> TlsOptions {
        TlsOptions {
            server_name: server_name.to_string(),
            config: crate::tls::client_config(&[ca], None),
        }
    }
}

impl Client {
    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        set_timeouts(&s)?;
        Ok(Client {
            wire: Wire::new(Stream::Plain(s)),
            addr,
        })
    }

    /// Connects (panics with the address on failure).
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Connects and completes the TLS handshake.
    pub fn try_connect_tls(addr: SocketAddr, tls: &TlsOptions) -> io::Result<Client> {
        let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        set_timeouts(&s)?;
        let name = ServerName::try_from(tls.server_name.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut conn = ClientConnection::new(tls.config.clone(), name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut s)?;
        }
        Ok(Client {
            wire: Wire::new(Stream::Tls(Box::new(StreamOwned::new(conn, s)))),
            addr,
        })
    }

    pub fn connect_tls(addr: SocketAddr, tls: &TlsOptions) -> Client {
        Client::try_connect_tls(addr, tls)
            .unwrap_or_else(|e| panic!("TLS connect to {addr} as {:?}: {e}", tls.server_name))
    }

    /// The server's certificate chain (TLS connections only).
    pub fn peer_certificates(&self) -> Vec<CertificateDer<'static>> {
        match self.wire.get_ref() {
            Stream::Tls(s) => s
                .conn
                .peer_certificates()
                .map(|c| c.to_vec())
                .unwrap_or_default(),
            Stream::Plain(_) => Vec::new(),
        }
    }

    pub fn wire(&mut self) -> &mut Wire<Stream> {
        &mut self.wire
    }

    pub fn tcp(&self) -> &TcpStream {
        self.wire.get_ref().tcp()
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.tcp()
            .set_read_timeout(Some(d))
            .expect("set_read_timeout");
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.write_all(bytes)
    }

    /// Writes raw bytes (panics on error).
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("write {} bytes to {}: {e}", bytes.len(), self.addr));
    }

    /// Half-closes the write side (TCP FIN).
    pub fn shutdown_write(&self) {
        let _ = self.tcp().shutdown(Shutdown::Write);
    }

    /// Reads the next response head (including 1xx interim ones).
    pub fn read_head(&mut self) -> io::Result<ResponseHead> {
        match self.wire.read_head(MAX_HEAD)? {
            Some(raw) => parse_head(&raw),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            )),
        }
    }

    /// Reads the body of a response to `method`, handing the decoded bytes to `f`.
    pub fn read_body_with(
        &mut self,
        head: &ResponseHead,
        method: &str,
        f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<(Framing, Option<ChunkedInfo>)> {
        let framing = head.framing(method)?;
        let info = match framing {
            Framing::NoBody => None,
            Framing::ContentLength(n) => {
                self.wire.read_exact_with(n, f)?;
                None
            }
            Framing::Chunked => Some(self.wire.read_chunked_with(f)?),
            Framing::UntilClose => {
                self.wire.read_to_eof_with(f)?;
                None
            }
        };
        Ok((framing, info))
    }

    /// Reads a whole response to a request with `method`.
    pub fn try_read_response_to(&mut self, method: &str) -> io::Result<Response> {
        let head = self.read_head()?;
        let mut body = Vec::new();
        let (framing, chunked) = self.read_body_with(&head, method, &mut |b| {
            body.extend_from_slice(b);
            Ok(())
        })?;
        Ok(Response {
            head,
            framing,
            body,
            chunked,
        })
    }

    pub fn try_read_response(&mut self) -> io::Result<Response> {
        self.try_read_response_to("GET")
    }

    /// Reads a whole response to a request with `method` (panics on error).
    pub fn read_response_to(&mut self, method: &str) -> Response {
        self.try_read_response_to(method)
            .unwrap_or_else(|e| panic!("reading a response from {}: {e}", self.addr))
    }

    /// Reads a whole response to a non-HEAD request (panics on error).
    pub fn read_response(&mut self) -> Response {
        self.read_response_to("GET")
    }

    /// Sends `req` and reads its response (panics on error).
    pub fn request(&mut self, req: &Request) -> Response {
        let bytes = req.to_bytes();
        self.send(&bytes);
        self.try_read_response_to(&req.method).unwrap_or_else(|e| {
            panic!(
                "reading the response to {} {} from {}: {e}",
                req.method, req.target, self.addr
            )
        })
    }

    /// `GET target` with the default Host.
    pub fn get(&mut self, target: &str) -> Response {
        self.request(&Request::get(target))
    }

    /// Waits up to `timeout` for the connection to end.
    pub fn read_eof(&mut self, timeout: Duration) -> Eof {
        let left = self.wire.take_buffered();
        if !left.is_empty() {
            return Eof::Data(left);
        }
        let deadline = Instant::now() + timeout;
        let _ = self
            .tcp()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let out = loop {
            match self.wire.fill() {
                Ok(0) => break Eof::Closed,
                Ok(_) => break Eof::Data(self.wire.take_buffered()),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    break Eof::TimedOut
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted && Instant::now() < deadline => {
                    continue
                }
                Err(e) => break Eof::Reset(e.to_string()),
            }
        };
        let _ = self.tcp().set_read_timeout(Some(IO_TIMEOUT));
        out
    }

    /// Asserts that the server closes the connection within `timeout`
    /// (end of stream or reset; not data, not silence).
    pub fn assert_closed(&mut self, timeout: Duration, context: &str) {
        match self.read_eof(timeout) {
            Eof::Closed | Eof::Reset(_) => {}
            Eof::Data(d) => panic!(
                "{context}: expected the connection to be closed, got more bytes: {:?}",
                String::from_utf8_lossy(&d)
            ),
            Eof::TimedOut => panic!(
                "{context}: expected the connection to be closed within {timeout:?}, it stayed open"
            ),
        }
    }
}
