//! A raw HTTP/2 client for attack tests: it writes whatever frames it is
//! told to, including the ones a well-behaved client library refuses to send
//! (rapid resets, endless CONTINUATION, HPACK bombs, floods of PING and
//! SETTINGS, stream ids going backwards).
//!
//! - [`H2Conn::connect`]: TCP, the client preface and a SETTINGS frame with
//!   the chosen settings (cleartext prior knowledge, h2c).
//! - [`frame`] encodes any frame (9-byte header + payload); [`H2Conn`]'s
//!   helpers send the common ones.
//! - [`Hpack`]: a minimal HPACK encoder (RFC 7541) with no Huffman coding:
//!   literal fields without indexing, literal fields with incremental
//!   indexing, and indexed fields (static or dynamic table).
//! - [`H2Conn::read_frame`] parses what the server sends; [`H2Conn::watch`]
//!   reads until a condition, the connection's end or a deadline and sums up
//!   what it saw in [`Seen`].
//! - [`flood`] writes a large buffer from another thread, so the test can
//!   read while the server is (or stops) reading.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Settings identifiers.
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// Index of the first dynamic table entry (after the 61 static ones).
pub const FIRST_DYNAMIC: usize = 62;

/// One frame as bytes: the 9-byte header then `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 1 << 24, "frame payload too long");
    let len = payload.len() as u32;
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A SETTINGS frame (not ACK) with these `(identifier, value)` pairs.
pub fn settings_frame(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::with_capacity(6 * settings.len());
    for (id, v) in settings {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

/// A PING frame (not ACK).
pub fn ping_frame(data: [u8; 8]) -> Vec<u8> {
    frame(PING, 0, 0, &data)
}

/// A RST_STREAM frame.
pub fn rst_frame(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// A WINDOW_UPDATE frame (`stream` 0 for the connection).
pub fn window_update_frame(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// A GOAWAY frame.
pub fn goaway_frame(last_stream: u32, code: u32) -> Vec<u8> {
    let mut p = last_stream.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    frame(GOAWAY, 0, 0, &p)
}

/// A HEADERS frame; `end_headers` false leaves the block open for
/// CONTINUATION frames.
pub fn headers_frame(stream: u32, block: &[u8], end_stream: bool, end_headers: bool) -> Vec<u8> {
    let mut flags = 0;
    if end_stream {
        flags |= END_STREAM;
    }
    if end_headers {
        flags |= END_HEADERS;
    }
    frame(HEADERS, flags, stream, block)
}

/// A CONTINUATION frame.
pub fn continuation_frame(stream: u32, block: &[u8], end_headers: bool) -> Vec<u8> {
    frame(
        CONTINUATION,
        if end_headers { END_HEADERS } else { 0 },
        stream,
        block,
    )
}

/// A minimal HPACK encoder (no Huffman, RFC 7541).
#[derive(Debug, Default, Clone)]
pub struct Hpack {
    pub buf: Vec<u8>,
}

impl Hpack {
    pub fn new() -> Hpack {
        Hpack::default()
    }

    /// The block for a request with no body-related fields:
    /// `:method`, `:scheme http`, `:path`, `:authority`, all as literals
    /// without indexing.
    pub fn request(method: &str, path: &str, authority: &str) -> Hpack {
        let mut h = Hpack::new();
        h.literal(":method", method)
            .literal(":scheme", "http")
            .literal(":path", path)
            .literal(":authority", authority);
        h
    }

    /// Literal header field without indexing, new name (§6.2.2).
    pub fn literal(&mut self, name: &str, value: &str) -> &mut Hpack {
        self.buf.push(0x00);
        self.string(name.as_bytes());
        self.string(value.as_bytes());
        self
    }

    /// Literal header field with incremental indexing, new name (§6.2.1):
    /// the field becomes dynamic table entry [`FIRST_DYNAMIC`].
    pub fn literal_indexed(&mut self, name: &str, value: &str) -> &mut Hpack {
        self.buf.push(0x40);
        self.string(name.as_bytes());
        self.string(value.as_bytes());
        self
    }

    /// Indexed header field (§6.1): one byte for an index below 127.
    pub fn indexed(&mut self, index: usize) -> &mut Hpack {
        integer(&mut self.buf, 7, 0x80, index);
        self
    }

    /// String literal, no Huffman (§5.2).
    fn string(&mut self, s: &[u8]) {
        integer(&mut self.buf, 7, 0x00, s.len());
        self.buf.extend_from_slice(s);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Integer with an N-bit prefix (§5.1); `first` holds the bits above it.
pub fn integer(out: &mut Vec<u8>, prefix_bits: u8, first: u8, mut v: usize) {
    let max = (1usize << prefix_bits) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A frame from the server.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `(last stream id, error code)` of a GOAWAY.
    pub fn goaway(&self) -> Option<(u32, u32)> {
        if self.kind != GOAWAY {
            return None;
        }
        Some((self.u32_at(0)? & 0x7fff_ffff, self.u32_at(4)?))
    }

    /// The error code of a RST_STREAM.
    pub fn rst_code(&self) -> Option<u32> {
        if self.kind != RST_STREAM {
            return None;
        }
        self.u32_at(0)
    }

    pub fn is_end_stream(&self) -> bool {
        (self.kind == HEADERS || self.kind == DATA) && self.flags & END_STREAM != 0
    }
}

/// What [`H2Conn::watch`] saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub frames: usize,
    /// The first GOAWAY: `(last stream id, error code)`.
    pub goaway: Option<(u32, u32)>,
    /// RST_STREAM frames: `(stream, error code)`.
    pub resets: Vec<(u32, u32)>,
    /// Streams whose HEADERS arrived.
    pub headers: Vec<u32>,
    /// Streams ended by the server (END_STREAM on HEADERS or DATA).
    pub ended: Vec<u32>,
    pub data_bytes: u64,
    pub settings: usize,
    pub settings_acks: usize,
    pub ping_acks: usize,
    /// The server closed (EOF or reset); `None` if still open.
    pub closed: Option<String>,
    /// The deadline passed with the connection still open.
    pub timed_out: bool,
}

impl Seen {
    pub fn goaway_code(&self) -> Option<u32> {
        self.goaway.map(|g| g.1)
    }

    pub fn reset_of(&self, stream: u32) -> Option<u32> {
        self.resets.iter().find(|r| r.0 == stream).map(|r| r.1)
    }

    fn add(&mut self, f: &Frame) {
        self.frames += 1;
        match f.kind {
            GOAWAY if self.goaway.is_none() => self.goaway = f.goaway(),
            RST_STREAM => self
                .resets
                .push((f.stream, f.rst_code().unwrap_or(u32::MAX))),
            HEADERS => self.headers.push(f.stream),
            DATA => self.data_bytes += f.payload.len() as u64,
            SETTINGS if f.flags & ACK != 0 => self.settings_acks += 1,
            SETTINGS => self.settings += 1,
            PING if f.flags & ACK != 0 => self.ping_acks += 1,
            _ => {}
        }
        if f.is_end_stream() {
            self.ended.push(f.stream);
        }
    }
}

/// A raw HTTP/2 client connection.
pub struct H2Conn {
    pub sock: TcpStream,
    rbuf: Vec<u8>,
}

impl H2Conn {
    /// Connects, sends the preface and SETTINGS with `settings`.
    pub fn connect(addr: SocketAddr, settings: &[(u16, u32)]) -> io::Result<H2Conn> {
        let sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        sock.set_write_timeout(Some(crate::IO_TIMEOUT))?;
        let mut c = H2Conn {
            sock,
            rbuf: Vec::new(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(settings_frame(settings));
        c.send(&hello)?;
        Ok(c)
    }

    /// [`H2Conn::connect`], then waits for the server's SETTINGS and ACKs
    /// them: h2 applies its own limits (header list size among them) only
    /// once the client has acknowledged them.
    pub fn handshake(addr: SocketAddr, settings: &[(u16, u32)]) -> io::Result<H2Conn> {
        let mut c = H2Conn::connect(addr, settings)?;
        let deadline = Instant::now() + crate::IO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match c.read_frame(left)? {
                Some(f) if f.kind == SETTINGS && f.flags & ACK == 0 => break,
                Some(_) => {}
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
        c.send(&frame(SETTINGS, ACK, 0, &[]))?;
        Ok(c)
    }

    /// A second handle on the same socket (e.g. a reader thread while
    /// this one writes); each has its own read buffer.
    pub fn try_clone(&self) -> io::Result<H2Conn> {
        Ok(H2Conn {
            sock: self.sock.try_clone()?,
            rbuf: Vec::new(),
        })
    }

    /// Writes raw bytes (one or more frames).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// A request without body on `stream` (HEADERS, END_STREAM|END_HEADERS).
    pub fn get(&mut self, stream: u32, path: &str) -> io::Result<()> {
        let h = Hpack::request("GET", path, "attack.test");
        self.send(&headers_frame(stream, h.bytes(), true, true))
    }

    /// Reads one frame, waiting at most `timeout`. `Ok(None)` at EOF; a
    /// timeout is an error of kind `WouldBlock` or `TimedOut`.
    pub fn read_frame(&mut self, timeout: Duration) -> io::Result<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.rbuf.len() >= 9 {
                let len =
                    u32::from_be_bytes([0, self.rbuf[0], self.rbuf[1], self.rbuf[2]]) as usize;
                if self.rbuf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.rbuf[3],
                        flags: self.rbuf[4],
                        stream: u32::from_be_bytes([
                            self.rbuf[5],
                            self.rbuf[6],
                            self.rbuf[7],
                            self.rbuf[8],
                        ]) & 0x7fff_ffff,
                        payload: self.rbuf[9..9 + len].to_vec(),
                    };
                    self.rbuf.drain(..9 + len);
                    return Ok(Some(f));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no frame in time"));
            }
            self.sock.set_read_timeout(Some(left))?;
            let mut buf = [0u8; 65536];
            let n = self.sock.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.rbuf.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads frames until `stop` holds, the server closes, or `timeout`
    /// passes; returns what was seen. A GOAWAY alone does not stop it
    /// unless `stop` says so.
    pub fn watch(&mut self, timeout: Duration, stop: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + timeout;
        let mut seen = Seen::default();
        loop {
            if stop(&seen) {
                return seen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                seen.timed_out = true;
                return seen;
            }
            match self.read_frame(left) {
                Ok(Some(f)) => seen.add(&f),
                Ok(None) => {
                    seen.closed = Some("eof".into());
                    return seen;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    seen.closed = Some(e.to_string());
                    return seen;
                }
            }
        }
    }
}

/// How a [`flood`] ended.
#[derive(Debug)]
pub struct Flooded {
    /// Bytes the kernel accepted.
    pub written: usize,
    /// `None`: all written; else the error that stopped it (a write
    /// timeout means the server stopped reading: throttled).
    pub error: Option<io::ErrorKind>,
}

/// Writes `bytes` `times` times over on a clone of `conn`'s socket from a
/// new thread, in 16 KiB writes, each allowed `stall` before the flood
/// counts as throttled and stops.
pub fn flood(conn: &H2Conn, bytes: Vec<u8>, times: usize, stall: Duration) -> JoinHandle<Flooded> {
    let mut sock = conn.sock.try_clone().expect("clone socket");
    std::thread::spawn(move || {
        let _ = sock.set_write_timeout(Some(stall));
        let mut written = 0;
        for _ in 0..times {
            for chunk in bytes.chunks(16 * 1024) {
                if let Err(e) = sock.write_all(chunk) {
                    return Flooded {
                        written,
                        error: Some(e.kind()),
                    };
                }
                written += chunk.len();
            }
        }
        Flooded {
            written,
            error: None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_in_rfc7541_appendix_c1() {
        let mut v = Vec::new();
        integer(&mut v, 5, 0, 10);
        assert_eq!(v, [0x0a]);
        let mut v = Vec::new();
        integer(&mut v, 5, 0, 1337);
        assert_eq!(v, [0x1f, 0x9a, 0x0a]);
        let mut v = Vec::new();
        integer(&mut v, 8, 0, 42);
        assert_eq!(v, [0x2a]);
    }

    #[test]
    fn literals_as_in_rfc7541_appendix_c2() {
        // C.2.1: literal with indexing.
        let mut h = Hpack::new();
        h.literal_indexed("custom-key", "custom-header");
        let mut want = vec![0x40, 0x0a];
        want.extend_from_slice(b"custom-key");
        want.push(0x0d);
        want.extend_from_slice(b"custom-header");
        assert_eq!(h.bytes(), want);
        // C.2.2 uses an indexed name; here the name is new: 0x00 prefix.
        let mut h = Hpack::new();
        h.literal("a", "b").indexed(2).indexed(FIRST_DYNAMIC);
        assert_eq!(h.bytes(), [0x00, 1, b'a', 1, b'b', 0x82, 0x80 | 62]);
        // A long value needs a multi-byte length.
        let mut h = Hpack::new();
        h.literal("x", &"v".repeat(200));
        assert_eq!(&h.bytes()[..5], &[0x00, 1, b'x', 0x7f, 200 - 127]);
    }

    #[test]
    fn frames_have_the_nine_byte_header() {
        let f = rst_frame(3, CANCEL);
        assert_eq!(f, [0, 0, 4, RST_STREAM, 0, 0, 0, 0, 3, 0, 0, 0, 8]);
        let f = settings_frame(&[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]);
        assert_eq!(f, [0, 0, 6, SETTINGS, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
        let g = Frame {
            kind: GOAWAY,
            flags: 0,
            stream: 0,
            payload: goaway_frame(7, ENHANCE_YOUR_CALM)[9..].to_vec(),
        };
        assert_eq!(g.goaway(), Some((7, ENHANCE_YOUR_CALM)));
    }
}
