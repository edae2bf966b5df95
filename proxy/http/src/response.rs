//! Response heads from upstreams: parsed into spans, framing decided once.

use std::mem::MaybeUninit;

use super::fields::{
    check_line_endings, is_field_value_byte, map_httparse, push_field_spans, read_message_field,
    span, ConnFlags, Framing,
};
use super::head::{HeadError, HeadLimits, HeaderSpan, Span, Version, STACK_HEADERS};

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFraming {
    /// No body: HEAD request, 1xx, 204, 304, or Content-Length: 0.
    #[default]
    None,
    Length(u64),
    Chunked,
    /// No length: the body ends when the upstream closes.
    UntilClose,
}

/// A parsed response head, reused per upstream exchange.
#[derive(Debug, Default)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    pub reason: Span,
    pub headers: Vec<HeaderSpan>,
    pub head_len: usize,
    pub framing: ResponseFraming,
    /// `Connection: close` (or HTTP/1.0 without keep-alive): the upstream
    /// connection cannot be reused.
    pub conn_close: bool,
    /// Header names listed in Connection (besides close/keep-alive/upgrade).
    pub conn_tokens: Vec<Span>,
}

/// Parse a response head at the start of `buf`. `request_was_head` makes the
/// framing `None` whatever the headers say. Same return convention as
/// [`super::head::parse_request_head`]. Both Content-Length and
/// Transfer-Encoding, an invalid/differing Content-Length, or a
/// Transfer-Encoding whose final coding is not chunked are errors (the proxy
/// answers 502), bare LF/CR in the head too.
pub fn parse_response_head(
    buf: &[u8],
    limits: &HeadLimits,
    request_was_head: bool,
    head: &mut ResponseHead,
) -> Result<bool, HeadError> {
    head.reset();
    let max = limits.max_head_bytes.min(u32::MAX as usize);
    let region = &buf[..buf.len().min(max)];
    if limits.max_headers <= STACK_HEADERS {
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_response_inner(
            buf,
            region,
            max,
            &mut storage[..limits.max_headers],
            request_was_head,
            head,
        )
    } else {
        let n = limits.max_headers.min(region.len() / 3 + 1);
        let mut storage = Vec::with_capacity(n);
        storage.resize_with(n, MaybeUninit::uninit);
        parse_response_inner(buf, region, max, &mut storage, request_was_head, head)
    }
}

/// Parse a response head the proxy wrote itself (the stage loop's
/// serializer: CRLF line endings, `HTTP/1.x NNN reason`, `name: value`
/// fields), as the HTTP/2 bridge must to send it as a HEADERS frame. The
/// strict checks of [`parse_response_head`] already ran on the upstream's
/// head this one was written from, so only the structure is checked here
/// (about a fifth of the work); framing is decided the same way. Same
/// return convention; `max` bounds an incomplete head.
pub fn parse_own_response_head(
    buf: &[u8],
    max: usize,
    request_was_head: bool,
    head: &mut ResponseHead,
) -> Result<bool, HeadError> {
    head.reset();
    // The head is walked line by line; running out of bytes before the
    // empty line means it is not complete yet.
    let incomplete = || {
        if buf.len() >= max {
            Err(HeadError::TooLarge)
        } else {
            Ok(false)
        }
    };
    let bad = || HeadError::Malformed("invalid status line");
    let Some(line_end) = memchr::memchr(b'\r', buf) else {
        return incomplete();
    };
    let line = &buf[..line_end];
    if line.len() < 12 || !line.starts_with(b"HTTP/1.") || line[8] != b' ' {
        return Err(bad());
    }
    head.version = match line[7] {
        b'0' => Version::Http10,
        b'1' => Version::Http11,
        _ => return Err(bad()),
    };
    let digits = &line[9..12];
    if !digits.iter().all(u8::is_ascii_digit) || (line.len() > 12 && line[12] != b' ') {
        return Err(bad());
    }
    head.status = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if head.status < 100 {
        return Err(HeadError::Malformed("invalid status code"));
    }
    head.reason = span((13).min(line_end), line_end);
    let mut framing = Framing::default();
    let mut conn = ConnFlags::default();
    let mut pos = line_end + 2;
    let len = loop {
        match buf.get(pos..pos + 2) {
            None => return incomplete(),
            Some(b"\r\n") => break pos + 2,
            Some(_) => {}
        }
        let Some(n) = memchr::memchr(b'\r', &buf[pos..]) else {
            return incomplete();
        };
        let le = pos + n;
        let line = &buf[pos..le];
        let colon =
            memchr::memchr(b':', line).ok_or(HeadError::Malformed("field without a colon"))?;
        let mut vs = pos + colon + 1;
        let mut ve = le;
        while vs < ve && matches!(buf[vs], b' ' | b'\t') {
            vs += 1;
        }
        while ve > vs && matches!(buf[ve - 1], b' ' | b'\t') {
            ve -= 1;
        }
        let value = span(vs, ve);
        head.headers.push(HeaderSpan {
            name: span(pos, pos + colon),
            value,
        });
        read_message_field(
            &line[..colon],
            &buf[vs..ve],
            value,
            &mut framing,
            &mut conn,
            &mut head.conn_tokens,
        )?;
        pos = le + 2;
    };
    decide_framing(head, framing, conn, request_was_head, len)
}

impl ResponseHead {
    /// An empty head with room for a typical head's fields
    /// ([`crate::head::TYPICAL_FIELDS`]): one allocation, no growth.
    pub fn with_typical_capacity() -> Self {
        ResponseHead {
            headers: Vec::with_capacity(crate::head::TYPICAL_FIELDS),
            ..Default::default()
        }
    }

    fn reset(&mut self) {
        self.version = Version::Http11;
        self.status = 0;
        self.reason = Span::default();
        self.headers.clear();
        self.head_len = 0;
        self.framing = ResponseFraming::None;
        self.conn_close = false;
        self.conn_tokens.clear();
    }
}

fn parse_response_inner<'b>(
    buf: &'b [u8],
    region: &'b [u8],
    max: usize,
    storage: &mut [MaybeUninit<httparse::Header<'b>>],
    request_was_head: bool,
    head: &mut ResponseHead,
) -> Result<bool, HeadError> {
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, region, storage);
    let len = match parsed {
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
    let bytes = &buf[..len];
    check_line_endings(bytes, false)?;

    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(HeadError::Malformed("invalid status line"));
    };
    head.version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HeadError::Malformed("unsupported HTTP version")),
    };
    if !(100..=999).contains(&status) {
        return Err(HeadError::Malformed("invalid status code"));
    }
    head.status = status;

    // The reason phrase is located by hand: httparse replaces one containing
    // obs-text with a static "" that does not point into `buf`.
    let mut line_start = 0;
    while bytes[line_start..].starts_with(b"\r\n") {
        line_start += 2;
    }
    let line_end = line_start
        + memchr::memchr(b'\r', &bytes[line_start..])
            .ok_or(HeadError::Malformed("invalid status line"))?;
    // "HTTP/1.x NNN" is 12 bytes; a reason follows a single SP.
    let reason_start = (line_start + 13).min(line_end);
    if line_end > line_start + 12 && bytes[line_start + 12] != b' ' {
        return Err(HeadError::Malformed("invalid status line"));
    }
    if !bytes[reason_start..line_end]
        .iter()
        .all(|&b| is_field_value_byte(b))
    {
        return Err(HeadError::Malformed("invalid reason phrase"));
    }
    head.reason = span(reason_start, line_end);

    let mut framing = Framing::default();
    let mut conn = ConnFlags::default();
    for h in resp.headers.iter() {
        read_message_field(
            h.name.as_bytes(),
            h.value,
            push_field_spans(buf, h.name.as_bytes(), h.value, &mut head.headers)?,
            &mut framing,
            &mut conn,
            &mut head.conn_tokens,
        )?;
    }
    decide_framing(head, framing, conn, request_was_head, len)
}

/// The framing and keep-alive verdict of a head whose fields were read
/// (shared by the strict and the own-head parser).
fn decide_framing(
    head: &mut ResponseHead,
    framing: Framing,
    conn: ConnFlags,
    request_was_head: bool,
    len: usize,
) -> Result<bool, HeadError> {
    let status = head.status;
    framing.finish()?;
    if framing.te_seen && head.version == Version::Http10 {
        // RFC 9112 §6.1: faulty framing; never guess.
        return Err(HeadError::Malformed(
            "Transfer-Encoding in HTTP/1.0 response",
        ));
    }
    head.framing = if request_was_head || status < 200 || status == 204 || status == 304 {
        ResponseFraming::None
    } else if framing.te_seen {
        ResponseFraming::Chunked
    } else {
        match framing.content_length {
            Some(0) => ResponseFraming::None,
            Some(n) => ResponseFraming::Length(n),
            None => ResponseFraming::UntilClose,
        }
    };
    head.conn_close = conn.close
        || (head.version == Version::Http10 && !conn.keep_alive)
        || head.framing == ResponseFraming::UntilClose;
    head.head_len = len;
    Ok(true)
}
