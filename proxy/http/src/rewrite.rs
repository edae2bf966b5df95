//! Head rewriting: the head sent upstream and the head sent back downstream,
//! written straight into a reusable output buffer.

use crate::ascii::eq_lower;
use std::io::Write as _;
use std::net::IpAddr;

use super::edits::HeaderEdits;
use super::fields::{push_u64, trim_ows};
use super::head::{BodyFraming, HeaderSpan, RequestHead, Span};
use super::hop::is_hop_by_hop;
use super::response::ResponseHead;

/// What the proxy adds to or removes from a forwarded request head.
#[derive(Debug, Clone, Copy)]
pub struct ForwardInfo<'a> {
    /// Appended to X-Forwarded-For (after any values the client sent).
    pub client_ip: IpAddr,
    /// X-Forwarded-Proto: `https` when true, else `http` (replaces the client's).
    pub tls: bool,
    /// X-Request-Id to add when the request has none.
    pub request_id: &'a [u8],
    /// Host to add when the request has none (HTTP/1.0 clients).
    pub default_host: &'a [u8],
    /// Keep `Upgrade` and send `Connection: upgrade` (WebSocket and friends).
    pub upgrade: bool,
    /// Drop `Expect` (the proxy answered `100 Continue` itself).
    pub strip_expect: bool,
    /// W3C trace context: replace any `traceparent` with this value.
    pub traceparent: Option<&'a [u8]>,
    /// Drop `tracestate` (the incoming trace context was invalid and a new
    /// trace was started).
    pub drop_tracestate: bool,
    /// Request target to send instead of the client's (path rewrite).
    pub target: Option<&'a [u8]>,
    /// Header edits of the route's filters: originals they `set` or
    /// `remove` are dropped (ringway's own X-Forwarded-* / X-Request-Id /
    /// traceparent too), their fields are written last.
    pub edits: Option<&'a HeaderEdits>,
    /// `X-Forwarded-Client-Cert` to send: the verified client certificate
    /// of an mTLS connection. A client's own copies are always dropped.
    pub client_cert: Option<&'a [u8]>,
}

/// Append the upstream request head for `head` (parsed from `buf`) to `out`.
///
/// Request line `METHOD TARGET HTTP/1.1`; every field of the request in order
/// except: hop-by-hop names (`hop::is_hop_by_hop`), names listed in
/// Connection (`head.conn_tokens`), X-Forwarded-For / -Proto / -Host (rewritten
/// below), Content-Length (re-emitted once from `head.framing`), Expect when
/// `strip_expect`, Upgrade unless `upgrade`. Then: `Host` when absent,
/// `Content-Length: N` for `BodyFraming::Length`, `X-Forwarded-For` (client
/// values joined with ", " then `client_ip`), `X-Forwarded-Proto`,
/// `X-Forwarded-Host` (the Host value, when present), `X-Request-Id` when
/// absent, `X-Forwarded-Client-Cert` when `client_cert` (a client's own
/// copies are always dropped), `Upgrade` + `Connection: upgrade` when
/// upgrading, then the fields of `info.edits`. Ends with CRLF.
pub fn write_request_head(out: &mut Vec<u8>, buf: &[u8], head: &RequestHead, info: &ForwardInfo) {
    let edits = info.edits.filter(|e| !e.is_empty());
    // Framing is never an edit's to change (whatever a filter's config
    // named): Transfer-Encoding and Content-Length stay as parsed.
    let dropped = |name: &[u8]| edits.is_some_and(|e| e.drops(name)) && !is_framing(name);
    out.extend_from_slice(head.method.get(buf));
    out.push(b' ');
    out.extend_from_slice(info.target.unwrap_or_else(|| head.target.get(buf)));
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let mut has_request_id = false;
    let mut has_content_length = false;
    let mut has_xff = false;
    let mut upgrade_forwarded = false;
    let mut run = RawRun::default();
    for h in &head.headers {
        let name = h.name.get(buf);
        if is_hop_by_hop(name) {
            if info.upgrade && eq_lower(name, b"upgrade") {
                upgrade_forwarded = true;
                run.keep(out, buf, h);
            }
            continue;
        }
        if eq_lower(name, b"content-length") {
            has_content_length = true;
            continue;
        }
        if eq_lower(name, b"x-forwarded-for") {
            has_xff = true;
            continue;
        }
        if eq_lower(name, b"x-forwarded-proto")
            || eq_lower(name, b"x-forwarded-host")
            || eq_lower(name, b"x-forwarded-client-cert")
            || (info.traceparent.is_some() && eq_lower(name, b"traceparent"))
            || (info.drop_tracestate && eq_lower(name, b"tracestate"))
            || (info.strip_expect && eq_lower(name, b"expect"))
            || listed_in_connection(name, buf, &head.conn_tokens)
        {
            continue;
        }
        if eq_lower(name, b"x-request-id") {
            has_request_id = true;
        }
        if dropped(name) {
            continue;
        }
        run.keep(out, buf, h);
    }
    run.flush(out, buf);

    if head.host.is_none() && !dropped(b"host") {
        push_field(out, b"Host", info.default_host);
    }
    match head.framing {
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        // The parser only lets `Content-Length: 0` through as `None`; keep
        // it (some servers insist on a length for POST/PUT).
        BodyFraming::None if has_content_length => push_field(out, b"Content-Length", b"0"),
        BodyFraming::None | BodyFraming::Chunked => {}
    }

    if !dropped(b"x-forwarded-for") {
        write_xff(out, buf, head, has_xff, info.client_ip);
    }
    if !dropped(b"x-forwarded-proto") {
        out.extend_from_slice(if info.tls {
            b"X-Forwarded-Proto: https\r\n"
        } else {
            b"X-Forwarded-Proto: http\r\n"
        });
    }
    if let Some(host) = head.host {
        if !host.is_empty() && !dropped(b"x-forwarded-host") {
            push_named(out, b"X-Forwarded-Host: ", host.get(buf));
        }
    }
    if !has_request_id && !info.request_id.is_empty() && !dropped(b"x-request-id") {
        push_named(out, b"X-Request-Id: ", info.request_id);
    }
    if let Some(tp) = info.traceparent {
        if !dropped(b"traceparent") {
            push_named(out, b"traceparent: ", tp);
        }
    }
    if let Some(cert) = info.client_cert {
        if !dropped(b"x-forwarded-client-cert") {
            push_field(out, b"X-Forwarded-Client-Cert", cert);
        }
    }
    if info.upgrade && upgrade_forwarded {
        push_field(out, b"Connection", b"upgrade");
    }
    if let Some(e) = edits {
        for (name, value) in e.fields() {
            if !is_framing(name) && !is_hop_by_hop(name) {
                push_field(out, name, value);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Fields that frame the message body.
fn is_framing(name: &[u8]) -> bool {
    eq_lower(name, b"transfer-encoding") || eq_lower(name, b"content-length")
}

/// `X-Forwarded-For`: the client's values joined with ", ", then `client_ip`.
fn write_xff(out: &mut Vec<u8>, buf: &[u8], head: &RequestHead, has_xff: bool, client_ip: IpAddr) {
    out.extend_from_slice(b"X-Forwarded-For: ");
    if has_xff {
        for h in &head.headers {
            if h.name.get(buf).eq_ignore_ascii_case(b"x-forwarded-for") {
                let v = trim_ows(h.value.get(buf));
                if !v.is_empty() {
                    out.extend_from_slice(v);
                    out.extend_from_slice(b", ");
                }
            }
        }
    }
    push_ip(out, client_ip.to_canonical());
    out.extend_from_slice(b"\r\n");
}

/// The textual form of `ip` (dotted quad written by hand: this runs on every
/// request and `fmt` costs a few hundred instructions).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Written into a stack buffer, then one copy.
            let mut text = [0u8; 15];
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    text[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    text[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                text[n] = b'0' + octet % 10;
                n += 1;
            }
            out.extend_from_slice(&text[..n]);
        }
        // Writing into a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Kept fields written as runs of the original bytes.
///
/// A field the head carries as exactly `name: value` CRLF, right after the
/// previous kept one, joins the pending run; the run is copied with one
/// `memcpy` instead of four per field. The bytes are the same
/// `push_field` would write: a field in any other layout (no space or
/// more than one after the colon, trailing whitespace) ends the run and is
/// written by `push_field`.
#[derive(Default)]
struct RawRun {
    /// `buf[start..end]`: whole field lines, each ending in CRLF.
    start: usize,
    end: usize,
}

impl RawRun {
    /// Write field `h` of `buf` (a field that is forwarded unchanged).
    #[inline(always)]
    fn keep(&mut self, out: &mut Vec<u8>, buf: &[u8], h: &HeaderSpan) {
        let (name_start, name_end) = (h.name.start as usize, h.name.end as usize);
        let value_end = h.value.end as usize;
        let canonical = h.value.start as usize == name_end + 2
            && buf.get(name_end) == Some(&b':')
            && buf.get(name_end + 1) == Some(&b' ')
            && buf.get(value_end) == Some(&b'\r')
            && buf.get(value_end + 1) == Some(&b'\n');
        if !canonical {
            self.flush(out, buf);
            push_field(out, h.name.get(buf), h.value.get(buf));
            return;
        }
        if self.end != name_start || self.start == self.end {
            self.flush(out, buf);
            self.start = name_start;
        }
        self.end = value_end + 2;
    }

    /// Write the pending run, if any.
    #[inline]
    fn flush(&mut self, out: &mut Vec<u8>, buf: &[u8]) {
        if self.start != self.end {
            out.extend_from_slice(&buf[self.start..self.end]);
            self.start = self.end;
        }
    }
}

/// `prefix` (a constant `Name: `), `value`, CRLF: the constant part is
/// stored in place, only `value` is a copy of unknown length.
#[inline]
fn push_named(out: &mut Vec<u8>, prefix: &'static [u8], value: &[u8]) {
    out.reserve(prefix.len() + value.len() + 2);
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `name: value\r\n`.
#[inline]
fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Whether `name` was listed in Connection. Framing and routing fields
/// (Content-Length, Transfer-Encoding, Host) are never dropped that way:
/// `Connection: transfer-encoding` would otherwise desynchronise the next hop.
#[inline(always)]
fn listed_in_connection(name: &[u8], buf: &[u8], tokens: &[Span]) -> bool {
    // Almost always none listed: decided here, without a call.
    !tokens.is_empty() && listed_in_connection_tokens(name, buf, tokens)
}

fn listed_in_connection_tokens(name: &[u8], buf: &[u8], tokens: &[Span]) -> bool {
    if eq_lower(name, b"transfer-encoding")
        || eq_lower(name, b"content-length")
        || eq_lower(name, b"host")
    {
        return false;
    }
    tokens.iter().any(|t| t.get(buf).eq_ignore_ascii_case(name))
}

/// How the response head sent downstream differs from the upstream's.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseInfo<'a> {
    /// Send `Connection: close` (the downstream connection closes after it).
    pub close: bool,
    /// HTTP/1.0 client that stays open: send `Connection: keep-alive`.
    pub keep_alive_http10: bool,
    /// The body is de-chunked for an HTTP/1.0 client: drop Transfer-Encoding.
    pub dechunk: bool,
    /// 101 Switching Protocols: keep Upgrade and send `Connection: upgrade`.
    pub upgrade: bool,
    /// Header edits of the route's response filters.
    pub edits: Option<&'a HeaderEdits>,
    /// The body is compressed on its way down with this content coding
    /// (`gzip`, `br`): see [`write_response_head`]. Framing changes only
    /// through this flag, never through `edits`.
    pub compress: Option<&'a [u8]>,
}

/// Append the downstream response head to `out`: status line
/// `HTTP/1.1 STATUS REASON`, the upstream's fields minus hop-by-hop ones and
/// those listed in its Connection header (minus Transfer-Encoding when
/// `dechunk`), then the Connection header `info` asks for. Ends with CRLF.
///
/// With `info.compress = Some(coding)` the body is re-encoded on the way:
/// the upstream's Content-Length, Transfer-Encoding and Content-Encoding
/// (an edit's too) are dropped, a strong ETag becomes weak (`W/"…"`, as
/// nginx does: the bytes differ, the meaning does not), and
/// `Content-Encoding: coding` + `Transfer-Encoding: chunked` are written.
pub fn write_response_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    info: &ResponseInfo<'_>,
) {
    let edits = info.edits.filter(|e| !e.is_empty());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(head.status));
    out.push(b' ');
    let reason = head.reason.get(buf);
    if reason.is_empty() {
        out.extend_from_slice(canonical_reason(head.status));
    } else {
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(b"\r\n");

    if let Some(coding) = info.compress {
        write_compressed_fields(out, buf, head, edits, coding);
    } else {
        let mut run = RawRun::default();
        kept_response_fields(buf, head, info, |h| run.keep(out, buf, h));
        run.flush(out, buf);
        added_response_fields(info, |name, value| push_field(out, name, value));
    }
    if let Some((name, value)) = connection_field(info) {
        push_field(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// The fields [`write_response_head`] writes for a body that is not
/// compressed (`info.compress` is not looked at), in order, the Connection
/// field excepted ([`connection_field`]): the upstream's fields minus
/// hop-by-hop ones, those its Connection header lists and those the edits
/// drop, then the edits' own. Each as `f(name, value)`, slices of `buf` or
/// of the edits. A response sent as fields (an HTTP/2 stream) takes them
/// from here, so both forms carry the same fields.
pub fn response_fields<'a>(
    buf: &'a [u8],
    head: &ResponseHead,
    info: &ResponseInfo<'a>,
    mut f: impl FnMut(&'a [u8], &'a [u8]),
) {
    kept_response_fields(buf, head, info, |h| f(h.name.get(buf), h.value.get(buf)));
    added_response_fields(info, f);
}

/// The upstream's fields [`response_fields`] keeps, as `kept(field)`.
fn kept_response_fields(
    buf: &[u8],
    head: &ResponseHead,
    info: &ResponseInfo<'_>,
    mut kept: impl FnMut(&HeaderSpan),
) {
    let edits = info.edits.filter(|e| !e.is_empty());
    for h in &head.headers {
        let name = h.name.get(buf);
        if is_hop_by_hop(name) {
            if info.upgrade && eq_lower(name, b"upgrade") {
                kept(h);
            }
            continue;
        }
        if (info.dechunk && eq_lower(name, b"transfer-encoding"))
            || listed_in_connection(name, buf, &head.conn_tokens)
            || (edits.is_some_and(|e| e.drops(name)) && !is_framing(name))
        {
            continue;
        }
        kept(h);
    }
}

/// The fields of the route's response edits [`response_fields`] adds after
/// the upstream's.
fn added_response_fields<'a>(info: &ResponseInfo<'a>, mut added: impl FnMut(&'a [u8], &'a [u8])) {
    if let Some(e) = info.edits.filter(|e| !e.is_empty()) {
        for (name, value) in e.fields() {
            if !is_framing(name) && !is_hop_by_hop(name) {
                added(name, value);
            }
        }
    }
}

/// The Connection field [`write_response_head`] ends the fields with, if
/// any.
pub fn connection_field(info: &ResponseInfo<'_>) -> Option<(&'static [u8], &'static [u8])> {
    if info.upgrade {
        Some((b"Connection", b"upgrade"))
    } else if info.close {
        Some((b"Connection", b"close"))
    } else if info.keep_alive_http10 {
        Some((b"Connection", b"keep-alive"))
    } else {
        None
    }
}

/// The length of the status line [`write_response_head`] writes.
pub fn status_line_len(buf: &[u8], head: &ResponseHead) -> usize {
    let reason = head.reason.get(buf);
    let reason = if reason.is_empty() {
        canonical_reason(head.status)
    } else {
        reason
    };
    // "HTTP/1.1 " + three digits + " " + reason + CRLF.
    9 + 3 + 1 + reason.len() + 2
}

/// The fields of a response whose body is compressed with `coding` on its
/// way down (see [`write_response_head`]).
fn write_compressed_fields(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    edits: Option<&HeaderEdits>,
    coding: &[u8],
) {
    // Accept-Ranges would invite byte ranges of the identity body that do
    // not fit the compressed one (nginx drops it too).
    let encoding =
        |name: &[u8]| eq_lower(name, b"content-encoding") || eq_lower(name, b"accept-ranges");
    for h in &head.headers {
        let name = h.name.get(buf);
        if is_hop_by_hop(name)
            || is_framing(name)
            || encoding(name)
            || listed_in_connection(name, buf, &head.conn_tokens)
            || edits.is_some_and(|e| e.drops(name))
        {
            continue;
        }
        let value = h.value.get(buf);
        if eq_lower(name, b"etag") {
            let value = trim_ows(value);
            if value.starts_with(b"W/") {
                push_field(out, name, value);
            } else if value.first() == Some(&b'"') {
                out.extend_from_slice(name);
                out.extend_from_slice(b": W/");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            // Anything else is no entity-tag: dropped (nginx does too).
            continue;
        }
        push_field(out, name, value);
    }
    if let Some(e) = edits {
        for (name, value) in e.fields() {
            if !is_framing(name) && !is_hop_by_hop(name) && !encoding(name) {
                push_field(out, name, value);
            }
        }
    }
    push_field(out, b"Content-Encoding", coding);
    push_field(out, b"Transfer-Encoding", b"chunked");
}

/// Reason phrase for a status code whose upstream reason was empty.
pub fn canonical_reason(status: u16) -> &'static [u8] {
    match status {
        100 => b"Continue",
        101 => b"Switching Protocols",
        102 => b"Processing",
        103 => b"Early Hints",
        200 => b"OK",
        201 => b"Created",
        202 => b"Accepted",
        203 => b"Non-Authoritative Information",
        204 => b"No Content",
        205 => b"Reset Content",
        206 => b"Partial Content",
        207 => b"Multi-Status",
        300 => b"Multiple Choices",
        301 => b"Moved Permanently",
        302 => b"Found",
        303 => b"See Other",
        304 => b"Not Modified",
        307 => b"Temporary Redirect",
        308 => b"Permanent Redirect",
        400 => b"Bad Request",
        401 => b"Unauthorized",
        402 => b"Payment Required",
        403 => b"Forbidden",
        404 => b"Not Found",
        405 => b"Method Not Allowed",
        406 => b"Not Acceptable",
        407 => b"Proxy Authentication Required",
        408 => b"Request Timeout",
        409 => b"Conflict",
        410 => b"Gone",
        411 => b"Length Required",
        412 => b"Precondition Failed",
        413 => b"Content Too Large",
        414 => b"URI Too Long",
        415 => b"Unsupported Media Type",
        416 => b"Range Not Satisfiable",
        417 => b"Expectation Failed",
        421 => b"Misdirected Request",
        422 => b"Unprocessable Content",
        425 => b"Too Early",
        426 => b"Upgrade Required",
        428 => b"Precondition Required",
        429 => b"Too Many Requests",
        431 => b"Request Header Fields Too Large",
        451 => b"Unavailable For Legal Reasons",
        500 => b"Internal Server Error",
        501 => b"Not Implemented",
        502 => b"Bad Gateway",
        503 => b"Service Unavailable",
        504 => b"Gateway Timeout",
        505 => b"HTTP Version Not Supported",
        _ => b"",
    }
}

#[cfg(test)]
mod ip_tests {
    use super::push_ip;
    use std::net::IpAddr;

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.20.30.40",
            "100.200.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }
}
