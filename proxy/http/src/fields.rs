//! Shared field-level syntax helpers for request and response heads
//! (RFC 9110 §5, RFC 9112 §5-§6): character classes, list splitting, framing
//! header accumulation and line-ending checks.

use super::head::{HeadError, HeaderSpan, Span};
use crate::ascii::eq_lower;

/// `tchar` (RFC 9110 §5.6.2).
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
        | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// A non-empty `token`.
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A byte allowed inside a field value: HTAB, SP, VCHAR, obs-text.
#[inline]
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

#[inline]
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Offsets `(start, end)` of `s` with leading/trailing OWS removed.
#[inline]
pub(crate) fn trim_ows_bounds(s: &[u8]) -> (usize, usize) {
    let mut start = 0;
    let mut end = s.len();
    while start < end && is_ows(s[start]) {
        start += 1;
    }
    while end > start && is_ows(s[end - 1]) {
        end -= 1;
    }
    (start, end)
}

#[inline]
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let (a, b) = trim_ows_bounds(s);
    &s[a..b]
}

/// Iterator over the elements of a comma-separated list value: yields the
/// OWS-trimmed `(start, end)` offsets of every element (empty ones included).
pub(crate) struct ListIter<'a> {
    value: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> ListIter<'a> {
    pub(crate) fn new(value: &'a [u8]) -> Self {
        ListIter {
            value,
            pos: 0,
            done: false,
        }
    }
}

impl Iterator for ListIter<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.done {
            return None;
        }
        let rest = &self.value[self.pos..];
        let (elem_len, last) = match memchr::memchr(b',', rest) {
            Some(i) => (i, false),
            None => (rest.len(), true),
        };
        let (a, b) = trim_ows_bounds(&rest[..elem_len]);
        let item = (self.pos + a, self.pos + b);
        if last {
            self.done = true;
        } else {
            self.pos += elem_len + 1;
        }
        Some(item)
    }
}

/// Span of `sub` (a subslice of `buf`) as offsets into `buf`.
#[inline]
pub(crate) fn span_of(buf: &[u8], sub: &[u8]) -> Result<Span, HeadError> {
    let base = buf.as_ptr() as usize;
    let p = sub.as_ptr() as usize;
    let start = p.wrapping_sub(base);
    let end = start.wrapping_add(sub.len());
    if p < base || end > buf.len() || end > u32::MAX as usize {
        return Err(HeadError::Malformed("internal span error"));
    }
    Ok(Span {
        start: start as u32,
        end: end as u32,
    })
}

#[inline]
pub(crate) fn span(start: usize, end: usize) -> Span {
    Span {
        start: start as u32,
        end: end as u32,
    }
}

/// Only CRLF line endings: no bare LF, no bare CR in `region`. When
/// `partial`, a CR as the very last byte is allowed (its LF may follow).
pub(crate) fn check_line_endings(region: &[u8], partial: bool) -> Result<(), HeadError> {
    if crlf_only(region, partial) {
        return Ok(());
    }
    // Refused: find the first offender, for the error.
    for i in memchr::memchr2_iter(b'\r', b'\n', region) {
        if region[i] == b'\n' {
            if i == 0 || region[i - 1] != b'\r' {
                return Err(HeadError::Malformed("bare LF"));
            }
        } else {
            match region.get(i + 1) {
                Some(b'\n') => {}
                None if partial => {}
                _ => return Err(HeadError::Malformed("bare CR")),
            }
        }
    }
    Ok(())
}

/// Whether `region` has only CRLF line endings (as `check_line_endings`
/// decides). One branch-free pass over byte pairs, which the compiler
/// vectorises: a head has a CR and an LF on every line, and finding each
/// with its own `memchr2` call cost more than the whole pass.
fn crlf_only(region: &[u8], partial: bool) -> bool {
    let (Some(&first), Some(&last)) = (region.first(), region.last()) else {
        return true;
    };
    if first == b'\n' || (last == b'\r' && !partial) {
        return false;
    }
    // Every CR is followed by an LF, and every LF follows a CR.
    let mut bad = false;
    for (a, b) in region.iter().zip(&region[1..]) {
        bad |= (*a == b'\r') != (*b == b'\n');
    }
    !bad
}

/// Map an httparse error to a head error.
pub(crate) fn map_httparse(e: httparse::Error) -> HeadError {
    use httparse::Error as E;
    match e {
        E::TooManyHeaders => HeadError::TooManyHeaders,
        E::HeaderName => HeadError::Malformed("invalid header field name"),
        E::HeaderValue => HeadError::Malformed("invalid header field value"),
        E::NewLine => HeadError::Malformed("invalid line ending"),
        E::Status => HeadError::Malformed("invalid status line"),
        E::Token => HeadError::Malformed("invalid request line"),
        E::Version => HeadError::Malformed("unsupported HTTP version"),
    }
}

/// Header names the framing code interprets. A name that only differs from
/// one of these by `_` instead of `-` is rejected: CGI-style upstreams map
/// both to the same variable, which would let a client smuggle framing.
pub(crate) fn is_framing_lookalike(name: &[u8]) -> bool {
    fn eq_underscored(name: &[u8], target: &[u8]) -> bool {
        name.len() == target.len()
            && name.contains(&b'_')
            && name
                .iter()
                .zip(target)
                .all(|(&a, &b)| a.eq_ignore_ascii_case(&b) || (a == b'_' && b == b'-'))
    }
    eq_underscored(name, b"content-length") || eq_underscored(name, b"transfer-encoding")
}

/// Accumulates Content-Length and Transfer-Encoding fields of one head.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    pub(crate) content_length: Option<u64>,
    pub(crate) te_seen: bool,
    te_chunked: u32,
    te_last_chunked: bool,
}

impl Framing {
    /// One Content-Length field value: `1*DIGIT`, or a comma list of equal
    /// such values; must equal any earlier Content-Length.
    pub(crate) fn add_content_length(&mut self, value: &[u8]) -> Result<(), HeadError> {
        // Nearly every value is one number: read without the list walk
        // (the walk gives the same for it).
        let n = if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
            parse_decimal(value)?
        } else {
            content_length_list(value)?
        };
        match self.content_length {
            Some(prev) if prev != n => {
                Err(HeadError::Malformed("conflicting Content-Length values"))
            }
            _ => {
                self.content_length = Some(n);
                Ok(())
            }
        }
    }

    /// One Transfer-Encoding field value (a list of transfer-codings).
    pub(crate) fn add_transfer_encoding(&mut self, value: &[u8]) -> Result<(), HeadError> {
        self.te_seen = true;
        for (a, b) in ListIter::new(value) {
            let elem = &value[a..b];
            if elem.is_empty() {
                return Err(HeadError::Malformed("empty Transfer-Encoding element"));
            }
            let (name, has_params) = parse_transfer_coding(elem)?;
            let chunked = eq_lower(name, b"chunked");
            if chunked {
                if has_params {
                    return Err(HeadError::Malformed("parameters on chunked"));
                }
                self.te_chunked += 1;
                if self.te_chunked > 1 {
                    return Err(HeadError::Malformed("chunked applied more than once"));
                }
            }
            self.te_last_chunked = chunked;
        }
        Ok(())
    }

    /// After all fields: CL+TE is ambiguous, TE must end in chunked.
    pub(crate) fn finish(&self) -> Result<(), HeadError> {
        if self.te_seen {
            if self.content_length.is_some() {
                return Err(HeadError::Malformed(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if !self.te_last_chunked {
                return Err(HeadError::Malformed("final transfer coding is not chunked"));
            }
        }
        Ok(())
    }
}

/// `1*DIGIT` into a u64 (no sign, no whitespace, no overflow).
/// A Content-Length value read as a list (`1, 1` is 1; differing
/// elements are refused).
fn content_length_list(value: &[u8]) -> Result<u64, HeadError> {
    let mut this: Option<u64> = None;
    for (a, b) in ListIter::new(value) {
        let n = parse_decimal(&value[a..b])?;
        match this {
            Some(prev) if prev != n => {
                return Err(HeadError::Malformed("conflicting Content-Length values"))
            }
            _ => this = Some(n),
        }
    }
    this.ok_or(HeadError::Malformed("invalid Content-Length"))
}

pub(crate) fn parse_decimal(s: &[u8]) -> Result<u64, HeadError> {
    if s.is_empty() {
        return Err(HeadError::Malformed("invalid Content-Length"));
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(HeadError::Malformed("invalid Content-Length"));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(HeadError::Malformed("Content-Length overflow"))?;
    }
    Ok(n)
}

/// `transfer-coding = token *( OWS ";" OWS token BWS "=" BWS token )`
/// (quoted-string parameter values are not accepted). Returns the coding name
/// and whether parameters were present.
fn parse_transfer_coding(elem: &[u8]) -> Result<(&[u8], bool), HeadError> {
    const BAD: HeadError = HeadError::Malformed("invalid transfer-coding");
    let mut parts = elem.split(|&b| b == b';');
    let name = parts.next().map(trim_ows).unwrap_or_default();
    if !is_token(name) {
        return Err(BAD);
    }
    let mut has_params = false;
    for param in parts {
        has_params = true;
        let eq = memchr::memchr(b'=', param).ok_or(BAD)?;
        if !is_token(trim_ows(&param[..eq])) || !is_token(trim_ows(&param[eq + 1..])) {
            return Err(BAD);
        }
    }
    Ok((name, has_params))
}

/// Flags and extra tokens of Connection fields.
#[derive(Debug, Default)]
pub(crate) struct ConnFlags {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) upgrade: bool,
}

/// Parse one Connection field value whose bytes are `buf[off..off+value.len()]`:
/// sets flags and pushes other option names to `tokens`.
pub(crate) fn add_connection(
    value: &[u8],
    off: usize,
    flags: &mut ConnFlags,
    tokens: &mut Vec<Span>,
) -> Result<(), HeadError> {
    // Nearly every value is one of these alone: no list walk (the same
    // result as the walk below gives for it).
    if eq_lower(value, b"keep-alive") {
        flags.keep_alive = true;
        return Ok(());
    }
    if eq_lower(value, b"close") {
        flags.close = true;
        return Ok(());
    }
    for (a, b) in ListIter::new(value) {
        let t = &value[a..b];
        if t.is_empty() {
            continue; // empty list elements are ignored (RFC 9110 §5.6.1)
        }
        if !is_token(t) {
            return Err(HeadError::Malformed("invalid Connection option"));
        }
        if t.eq_ignore_ascii_case(b"close") {
            flags.close = true;
        } else if t.eq_ignore_ascii_case(b"keep-alive") {
            flags.keep_alive = true;
        } else if t.eq_ignore_ascii_case(b"upgrade") {
            flags.upgrade = true;
        } else {
            tokens.push(span(off + a, off + b));
        }
    }
    Ok(())
}

/// Host field value: `uri-host [ ":" port ]` (RFC 9110 §7.2), possibly empty.
pub(crate) fn is_valid_host(v: &[u8]) -> bool {
    fn unreserved_or_sub_delim(b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            )
    }
    if v.is_empty() {
        return true;
    }
    let port = if v[0] == b'[' {
        let Some(close) = memchr::memchr(b']', v) else {
            return false;
        };
        let inner = &v[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| unreserved_or_sub_delim(b) || b == b':')
        {
            return false;
        }
        match &v[close + 1..] {
            [] => &[][..],
            [b':', port @ ..] => port,
            _ => return false,
        }
    } else {
        let (host, port) = match memchr::memchr(b':', v) {
            Some(i) => (&v[..i], &v[i + 1..]),
            None => (v, &[][..]),
        };
        if host.is_empty() {
            return false;
        }
        let mut i = 0;
        while i < host.len() {
            let b = host[i];
            if b == b'%' {
                if i + 2 >= host.len() {
                    return false;
                }
                if !(host[i + 1].is_ascii_hexdigit() && host[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 3;
                continue;
            }
            if !unreserved_or_sub_delim(b) {
                return false;
            }
            i += 1;
        }
        port
    };
    port.iter().all(u8::is_ascii_digit)
}

/// Append `n` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Record one header field of a request or response: push its spans onto
/// `headers` and return the value's span.
pub(crate) fn push_field_spans(
    buf: &[u8],
    name: &[u8],
    value: &[u8],
    headers: &mut Vec<HeaderSpan>,
) -> Result<Span, HeadError> {
    // httparse already enforces both (token names; HTAB / SP / VCHAR /
    // obs-text values): checked again only in debug builds.
    debug_assert!(is_token(name), "invalid header field name");
    debug_assert!(value.iter().all(|&b| is_field_value_byte(b)));
    let name_span = span_of(buf, name)?;
    let value_span = span_of(buf, value)?;
    headers.push(HeaderSpan {
        name: name_span,
        value: value_span,
    });
    Ok(value_span)
}

/// The fields that frame a message and scope its hop-by-hop headers, read
/// the same way in requests and responses: Connection, Content-Length,
/// Transfer-Encoding (and their `_` look-alikes, rejected). Other names are
/// left alone.
pub(crate) fn read_message_field(
    name: &[u8],
    value: &[u8],
    value_span: Span,
    framing: &mut Framing,
    conn: &mut ConnFlags,
    conn_tokens: &mut Vec<Span>,
) -> Result<(), HeadError> {
    match name.len() {
        10 if eq_lower(name, b"connection") => {
            add_connection(value, value_span.start as usize, conn, conn_tokens)
        }
        14 if eq_lower(name, b"content-length") => framing.add_content_length(value),
        17 if eq_lower(name, b"transfer-encoding") => framing.add_transfer_encoding(value),
        14 | 17 if is_framing_lookalike(name) => {
            Err(HeadError::Malformed("framing header name with underscore"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    /// A Content-Length value gives the same number or refusal with the
    /// single-number fast path as read as a list; Connection's fast path
    /// sets the flag the list walk sets, and nothing else.
    #[test]
    fn fast_paths_agree_with_the_list_walk() {
        for v in [
            "0",
            "1",
            "42",
            "007",
            "18446744073709551615",
            "18446744073709551616",
            "1, 1",
            "1,2",
            " 1",
            "",
            ",",
            "1,",
            "x",
            "-1",
            "+1",
        ] {
            let mut f = super::Framing::default();
            let fast = f
                .add_content_length(v.as_bytes())
                .map(|()| f.content_length.unwrap());
            assert_eq!(fast, super::content_length_list(v.as_bytes()), "{v:?}");
        }
        for (v, close, keep_alive, tokens) in [
            ("keep-alive", false, true, 0),
            ("Keep-Alive", false, true, 0),
            ("close", true, false, 0),
            ("CLOSE", true, false, 0),
            ("close, x-a", true, false, 1),
            ("keep-alive,close", true, true, 0),
            ("closed", false, false, 1),
        ] {
            let (mut flags, mut t) = (super::ConnFlags::default(), Vec::new());
            super::add_connection(v.as_bytes(), 0, &mut flags, &mut t).unwrap();
            assert_eq!(
                (flags.close, flags.keep_alive, t.len()),
                (close, keep_alive, tokens),
                "{v:?}"
            );
        }
    }

    /// The CRLF rule, one offender at a time (the slow path's loop).
    fn reference(region: &[u8], partial: bool) -> bool {
        region.iter().enumerate().all(|(i, &b)| match b {
            b'\n' => i > 0 && region[i - 1] == b'\r',
            b'\r' => match region.get(i + 1) {
                Some(b'\n') => true,
                None => partial,
                _ => false,
            },
            _ => true,
        })
    }

    /// Every string of up to 7 bytes over {a, CR, LF}, complete and
    /// partial: the one-pass check decides as the reference does.
    #[test]
    fn crlf_only_agrees_with_the_rule_exhaustively() {
        let alphabet = [b'a', b'\r', b'\n'];
        let mut checked = 0;
        for len in 0..=7u32 {
            for code in 0..3usize.pow(len) {
                let mut c = code;
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = alphabet[c % 3];
                        c /= 3;
                        b
                    })
                    .collect();
                for partial in [false, true] {
                    let want = reference(&s, partial);
                    assert_eq!(
                        super::crlf_only(&s, partial),
                        want,
                        "{s:?} partial={partial}"
                    );
                    assert_eq!(
                        super::check_line_endings(&s, partial).is_ok(),
                        want,
                        "{s:?} partial={partial}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(
            checked,
            2 * (1..=7).map(|l| 3usize.pow(l)).sum::<usize>() + 2
        );
    }

    #[test]
    fn refusals_name_the_offender() {
        let e = super::check_line_endings(b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n", false);
        assert!(
            matches!(e, Err(crate::HeadError::Malformed("bare LF"))),
            "{e:?}"
        );
        let e = super::check_line_endings(b"GET / HTTP/1.1\r\nA: b\rC: d\r\n\r\n", false);
        assert!(
            matches!(e, Err(crate::HeadError::Malformed("bare CR"))),
            "{e:?}"
        );
        assert!(super::check_line_endings(b"A: b\r", true).is_ok());
        assert!(super::check_line_endings(b"A: b\r", false).is_err());
    }
}
