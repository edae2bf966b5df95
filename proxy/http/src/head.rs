//! Request heads: strict RFC 9112 parsing into spans of the read buffer.

use crate::ascii::eq_lower;
use std::mem::MaybeUninit;
use std::ops::Range;

use super::fields::{
    check_line_endings, is_token, is_valid_host, map_httparse, push_field_spans,
    read_message_field, span_of, trim_ows, ConnFlags, Framing,
};

/// A byte range inside the connection's read buffer (offsets from the start of
/// the slice that was parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
    pub fn get(self, buf: &[u8]) -> &[u8] {
        &buf[self.range()]
    }
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

/// The value of the first of `fields` (spans into `buf`) named `name`
/// (case-insensitive).
pub fn field_value<'a>(fields: &[HeaderSpan], buf: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|h| h.name.get(buf).eq_ignore_ascii_case(name))
        .map(|h| h.value.get(buf))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    Http10,
    #[default]
    Http11,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFraming {
    /// No body (no Content-Length, no Transfer-Encoding, or Content-Length: 0).
    #[default]
    None,
    Length(u64),
    Chunked,
}

/// Limits applied while parsing a head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Largest head accepted, request line + headers + final CRLF (431 above).
    pub max_head_bytes: usize,
    /// Most header fields accepted (431 above).
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Why a head was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The head is larger than `max_head_bytes` (431).
    TooLarge,
    /// More than `max_headers` fields (431).
    TooManyHeaders,
    /// Anything else that is not a valid, unambiguous HTTP/1.x head (400).
    Malformed(&'static str),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::TooLarge => f.write_str("head too large"),
            HeadError::TooManyHeaders => f.write_str("too many header fields"),
            HeadError::Malformed(why) => write!(f, "malformed head: {why}"),
        }
    }
}

/// A parsed request head. Reused per connection: `parse_request_head` clears it
/// first and keeps the `headers` capacity, so steady state does not allocate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Span,
    pub target: Span,
    pub version: Version,
    /// Every header field in arrival order (including hop-by-hop ones).
    pub headers: Vec<HeaderSpan>,
    /// Length of the head including the final CRLF CRLF.
    pub head_len: usize,
    pub framing: BodyFraming,
    /// Value of the single Host header, if any.
    pub host: Option<Span>,
    /// `Connection: close` was sent.
    pub conn_close: bool,
    /// `Connection: keep-alive` was sent (matters for HTTP/1.0).
    pub conn_keep_alive: bool,
    /// `Connection: upgrade` was sent together with an `Upgrade` header:
    /// the value of the Upgrade header.
    pub upgrade: Option<Span>,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// An `Expect` header with any other value was sent (417).
    pub expect_other: bool,
    /// Header names listed in the Connection header (other than close,
    /// keep-alive, upgrade): these are hop-by-hop and must be stripped.
    pub conn_tokens: Vec<Span>,
}

/// Field slots a fresh head starts with: a typical head's fields fit, so
/// parsing it allocates once instead of growing the list two or three
/// times (a head per HTTP/2 stream, a response head per exchange).
pub const TYPICAL_FIELDS: usize = 16;

impl RequestHead {
    /// An empty head with room for [`TYPICAL_FIELDS`] fields.
    pub fn with_typical_capacity() -> Self {
        RequestHead {
            headers: Vec::with_capacity(TYPICAL_FIELDS),
            ..Default::default()
        }
    }

    pub fn method<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.method.get(buf)
    }
    pub fn is_head(&self, buf: &[u8]) -> bool {
        self.method(buf) == b"HEAD"
    }
    /// The path part of the target (before `?`).
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let t = self.target.get(buf);
        match memchr::memchr(b'?', t) {
            Some(i) => &t[..i],
            None => t,
        }
    }
    /// Whether the connection may stay open after this request.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.conn_close,
            Version::Http10 => self.conn_keep_alive && !self.conn_close,
        }
    }
}

/// Parse a request head at the start of `buf`.
///
/// Returns `Ok(true)` when a complete head was parsed into `head`
/// (`head.head_len` bytes), `Ok(false)` when more bytes are needed, and an
/// error when the head is invalid or over a limit (checked on partial input
/// too: a partial head already longer than `max_head_bytes` is `TooLarge`).
pub fn parse_request_head(
    buf: &[u8],
    limits: &HeadLimits,
    head: &mut RequestHead,
) -> Result<bool, HeadError> {
    head.reset();
    let max = limits.max_head_bytes.min(u32::MAX as usize);
    let region = &buf[..buf.len().min(max)];
    if limits.max_headers <= STACK_HEADERS {
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_request_inner(buf, region, max, &mut storage[..limits.max_headers], head)
    } else {
        // Rare configuration: more fields than fit on the stack. `region`
        // cannot hold more than `len / 4` fields ("a:\r\n"), so this bound
        // never turns into a spurious TooManyHeaders.
        let n = limits.max_headers.min(region.len() / 3 + 1);
        let mut storage = Vec::with_capacity(n);
        storage.resize_with(n, MaybeUninit::uninit);
        parse_request_inner(buf, region, max, &mut storage, head)
    }
}

/// Header fields parsed with a stack array up to this many `max_headers`.
pub(crate) const STACK_HEADERS: usize = 256;

impl RequestHead {
    fn reset(&mut self) {
        self.method = Span::default();
        self.target = Span::default();
        self.version = Version::Http11;
        self.headers.clear();
        self.head_len = 0;
        self.framing = BodyFraming::None;
        self.host = None;
        self.conn_close = false;
        self.conn_keep_alive = false;
        self.upgrade = None;
        self.expect_continue = false;
        self.expect_other = false;
        self.conn_tokens.clear();
    }
}

fn parse_request_inner<'b>(
    buf: &'b [u8],
    region: &'b [u8],
    max: usize,
    storage: &mut [MaybeUninit<httparse::Header<'b>>],
    head: &mut RequestHead,
) -> Result<bool, HeadError> {
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(region, storage) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            check_line_endings(region, true)?;
            if region.len() >= max {
                return Err(HeadError::TooLarge);
            }
            return Ok(false);
        }
        Err(e) => return Err(map_httparse(e)),
    };
    check_line_endings(&buf[..len], false)?;

    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("invalid request line"));
    };
    debug_assert!(is_token(method.as_bytes()), "httparse checks the method");
    if !is_request_target(target.as_bytes()) {
        return Err(HeadError::Malformed("invalid request target"));
    }
    head.method = span_of(buf, method.as_bytes())?;
    head.target = span_of(buf, target.as_bytes())?;
    head.version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HeadError::Malformed("unsupported HTTP version")),
    };

    let mut fields = FieldReader::default();
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        let value_span = push_field_spans(buf, name, value, &mut head.headers)?;
        fields.read(head, name, value, value_span)?;
    }
    fields.finish(head)?;
    head.head_len = len;
    Ok(true)
}

/// What a request's fields say, read one field at a time: the same for a
/// parsed head and for one laid out by a trusted writer
/// ([`complete_written_head`]).
#[derive(Default)]
struct FieldReader {
    framing: Framing,
    conn: ConnFlags,
    upgrade_value: Option<Span>,
}

impl FieldReader {
    fn read(
        &mut self,
        head: &mut RequestHead,
        name: &[u8],
        value: &[u8],
        value_span: Span,
    ) -> Result<(), HeadError> {
        match name.len() {
            4 if eq_lower(name, b"host") => {
                if head.host.is_some() {
                    return Err(HeadError::Malformed("multiple Host fields"));
                }
                if !is_valid_host(value) {
                    return Err(HeadError::Malformed("invalid Host"));
                }
                head.host = Some(value_span);
            }
            6 if eq_lower(name, b"expect") => {
                if trim_ows(value).eq_ignore_ascii_case(b"100-continue") {
                    head.expect_continue = true;
                } else {
                    head.expect_other = true;
                }
            }
            7 if self.upgrade_value.is_none() && eq_lower(name, b"upgrade") => {
                self.upgrade_value = Some(value_span);
            }
            _ => read_message_field(
                name,
                value,
                value_span,
                &mut self.framing,
                &mut self.conn,
                &mut head.conn_tokens,
            )?,
        }
        Ok(())
    }

    /// The head-wide checks and verdicts, once every field is read.
    fn finish(self, head: &mut RequestHead) -> Result<(), HeadError> {
        let FieldReader {
            framing,
            conn,
            upgrade_value,
        } = self;
        framing.finish()?;
        if framing.te_seen && head.version == Version::Http10 {
            return Err(HeadError::Malformed(
                "Transfer-Encoding in HTTP/1.0 request",
            ));
        }
        if head.version == Version::Http11 && head.host.is_none() {
            return Err(HeadError::Malformed("missing Host"));
        }
        head.framing = if framing.te_seen {
            BodyFraming::Chunked
        } else {
            match framing.content_length {
                None | Some(0) => BodyFraming::None,
                Some(n) => BodyFraming::Length(n),
            }
        };
        head.conn_close = conn.close;
        head.conn_keep_alive = conn.keep_alive;
        head.upgrade = if conn.upgrade { upgrade_value } else { None };
        Ok(())
    }
}

/// A request-target the parser accepts: not empty, visible ASCII only
/// (no space, no control byte, no obs-text). One rule for parsed and
/// written heads.
fn is_request_target(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(0x21) < 0x5e))
}

/// How many bytes are control bytes (CTLs but HTAB, and DEL): in a head,
/// only its CRLFs may be. Counted 32 bytes at a time in byte lanes (the
/// inner loop vectorises).
fn control_bytes(s: &[u8]) -> usize {
    #[inline(always)]
    fn control(b: u8) -> u8 {
        u8::from((b < 0x20) & (b != b'\t')) | u8::from(b == 0x7f)
    }
    let mut chunks = s.chunks_exact(32);
    let mut n = 0usize;
    for chunk in &mut chunks {
        let mut k = 0u8;
        for &b in chunk {
            k += control(b);
        }
        n += usize::from(k);
    }
    n + chunks
        .remainder()
        .iter()
        .map(|&b| usize::from(control(b)))
        .sum::<usize>()
}

/// Complete a request head that a trusted writer laid out in `buf` as
/// HTTP/1.1 and whose spans it recorded (an HTTP/2 stream's head, written
/// by the bridge): `head.method`, `head.target` and `head.headers` hold
/// them, `head.head_len` the length with the final CRLF, and the version
/// is HTTP/1.1. Every verdict [`parse_request_head`] draws from the fields
/// is drawn by the same code; every check it makes of the bytes
/// themselves is made here too (token method and names; target bytes;
/// value bytes, with no surrounding whitespace, which the parser would
/// trim; both limits). The layout is the writer's own, so its CRLFs are
/// not checked again.
///
/// `true`: `head` is what parsing `buf` would have given. `false`: some
/// part is not as the parser would take it unchanged, or the head is
/// invalid: the caller parses the bytes instead, and gets the parser's
/// answer, its error included. Nothing is ever accepted here that the
/// parser refuses (`tests::written_heads_agree_with_the_parser`).
pub fn complete_written_head(buf: &[u8], limits: &HeadLimits, head: &mut RequestHead) -> bool {
    let len = head.head_len;
    if len > buf.len()
        || len > limits.max_head_bytes.min(u32::MAX as usize)
        || head.headers.len() > limits.max_headers
        || !buf[..len].ends_with(b"\r\n\r\n")
    {
        return false;
    }
    let target = head.target.get(buf);
    if !is_token(head.method.get(buf)) || !is_request_target(target) {
        return false;
    }
    // The writer put exactly one CRLF after the request line, after each
    // field and at the end: any other control byte or DEL (a CR or LF in a
    // value, a NUL) shows as one more, counted in one pass over the head.
    if control_bytes(&buf[..len]) != 2 * (head.headers.len() + 2) {
        return false;
    }
    head.version = Version::Http11;
    head.host = None;
    head.conn_tokens.clear();
    head.expect_continue = false;
    head.expect_other = false;
    let mut fields = FieldReader::default();
    for i in 0..head.headers.len() {
        let HeaderSpan { name, value } = head.headers[i];
        let (name, value_span) = (name.get(buf), value);
        let value = value_span.get(buf);
        if !is_token(name)
            || value.first().is_some_and(|b| *b == b' ' || *b == b'\t')
            || value.last().is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            return false;
        }
        if fields.read(head, name, value, value_span).is_err() {
            return false;
        }
    }
    fields.finish(head).is_ok()
}
