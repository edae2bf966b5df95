//! Line formats: JSON (one object per line) and the NCSA combined format.

use std::time::SystemTime;

use super::record::LogLine;
use super::time::ClockCache;
use crate::http::Version;

/// An IP address as text without `fmt` (this runs once per log line).
fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, octet as u64);
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// `ip:port`, or `[ip6]:port`.
fn push_socket_addr(out: &mut Vec<u8>, addr: std::net::SocketAddr) {
    match addr.ip().to_canonical() {
        ip @ std::net::IpAddr::V4(_) => push_ip(out, ip),
        ip => {
            out.push(b'[');
            push_ip(out, ip);
            out.push(b']');
        }
    }
    out.push(b':');
    push_u64(out, addr.port() as u64);
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n).as_bytes());
}

/// True for a byte that a JSON string cannot hold as it is (`"`, `\\`,
/// control bytes) or that may need `\u00XX` (bytes ≥ 0x7f). Written as
/// comparisons without short-circuits so the check over a field vectorises
/// (measured with callgrind: cheaper than an eight-bytes-at-a-time SWAR test
/// on the short fields of a log line).
#[inline(always)]
fn byte_needs_care(b: u8) -> bool {
    !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\')
}

fn needs_care(s: &[u8]) -> bool {
    s.iter().fold(false, |acc, &b| acc | byte_needs_care(b))
}

/// A JSON string body: `"` `\` and control bytes escaped; bytes ≥ 0x80
/// that are not valid UTF-8 become `\u00XX` so the line stays valid JSON.
/// Plain printable ASCII (nearly every field) is copied in one go.
fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    if !needs_care(s) {
        out.extend_from_slice(s);
    } else {
        let utf8_ok = std::str::from_utf8(s).is_ok();
        for &b in s {
            push_json_byte(out, b, utf8_ok);
        }
    }
    out.push(b'"');
}

fn push_json_byte(out: &mut Vec<u8>, b: u8, utf8_ok: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0..=0x1f | 0x7f => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        }
        0x80..=0xff if !utf8_ok => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        }
        _ => out.push(b),
    }
}

/// `,"name":` as one constant slice.
macro_rules! key {
    ($out:expr, $k:literal) => {
        $out.extend_from_slice(concat!(",\"", $k, "\":").as_bytes())
    };
}

/// Upper bound of a line without its variable-length strings; reserved
/// once so the pushes below do not grow the buffer piecemeal.
const JSON_FIXED: usize = 432;

/// `{"time":...,"worker":0,...}\n`
pub fn json(out: &mut Vec<u8>, clock: &mut ClockCache, l: &LogLine<'_>) {
    out.reserve(JSON_FIXED + l.meta.map_or(0, |m| m.captured_len()));
    out.extend_from_slice(b"{\"time\":\"");
    clock.write_iso(out, SystemTime::now());
    out.push(b'"');
    key!(out, "worker");
    push_u64(out, l.worker as u64);
    key!(out, "client");
    out.push(b'"');
    push_socket_addr(out, l.client);
    out.push(b'"');
    key!(out, "listener");
    json_str(out, l.listener.as_bytes());
    if let Some(m) = l.meta {
        key!(out, "method");
        json_str(out, m.method());
        key!(out, "path");
        json_str(out, m.target());
        key!(out, "host");
        json_str(out, m.host());
        key!(out, "request_id");
        json_str(out, m.request_id());
    }
    key!(out, "route");
    match l.route {
        Some(r) => json_str(out, r.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    key!(out, "status");
    push_u64(out, l.status as u64);
    key!(out, "bytes_in");
    push_u64(out, l.bytes_in);
    key!(out, "bytes_out");
    push_u64(out, l.bytes_out);
    key!(out, "duration_us");
    push_u64(out, l.duration.as_micros() as u64);
    key!(out, "upstream");
    match l.upstream {
        Some(u) => json_str(out, u.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    key!(out, "upstream_us");
    match l.upstream_time {
        Some(t) => push_u64(out, t.as_micros() as u64),
        None => out.extend_from_slice(b"null"),
    }
    // The time ringway added: `duration_us` minus `upstream_us` (in whole
    // µs, so the line's fields add up; saturating); null when the request
    // got no upstream time.
    key!(out, "proxy_us");
    match l.upstream_time {
        Some(t) => push_u64(
            out,
            (l.duration.as_micros() as u64).saturating_sub(t.as_micros() as u64),
        ),
        None => out.extend_from_slice(b"null"),
    }
    key!(out, "trace_id");
    match l.trace_id {
        Some(t) => json_str(out, t),
        None => out.extend_from_slice(b"null"),
    }
    key!(out, "error");
    match l.error {
        Some(e) => json_str(out, e.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(g) = l.grpc_status {
        key!(out, "grpc_status");
        push_u64(out, u64::from(g));
    }
    if let Some(vars) = l.vars.filter(|v| !v.is_empty()) {
        key!(out, "vars");
        out.push(b'{');
        for (i, (name, value)) in vars.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_str(out, name);
            out.push(b':');
            json_str(out, value);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

/// `"..."` with `"` and `\\` escaped and control bytes as `?`; `"-"` when
/// every part is empty. The parts are written one after the other, so a
/// field made of several pieces needs no temporary buffer.
fn quoted(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.push(b'"');
    if parts.iter().all(|p| p.is_empty()) {
        out.push(b'-');
    }
    for &b in parts.iter().flat_map(|p| p.iter()) {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f | 0x7f => out.extend_from_slice(b"?"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// `client - - [time] "METHOD target HTTP/1.1" status bytes "referer" "ua"`
/// followed by ringway's fields: request id, duration in seconds, upstream.
pub fn combined(out: &mut Vec<u8>, clock: &mut ClockCache, l: &LogLine<'_>) {
    push_ip(out, l.client.ip());
    out.extend_from_slice(b" - - [");
    clock.write_clf(out, SystemTime::now());
    out.extend_from_slice(b"] ");
    match l.meta {
        Some(m) => {
            let version: &[u8] = match m.version {
                _ if m.http2 => b" HTTP/2.0",
                Version::Http10 => b" HTTP/1.0",
                Version::Http11 => b" HTTP/1.1",
            };
            quoted(out, &[m.method(), b" ", m.target(), version]);
        }
        None => quoted(out, &[]),
    }
    out.push(b' ');
    push_u64(out, l.status as u64);
    out.push(b' ');
    push_u64(out, l.bytes_out);
    out.push(b' ');
    quoted(out, &[l.meta.map(|m| m.referer()).unwrap_or(b"")]);
    out.push(b' ');
    quoted(out, &[l.meta.map(|m| m.user_agent()).unwrap_or(b"")]);
    out.push(b' ');
    quoted(out, &[l.meta.map(|m| m.request_id()).unwrap_or(b"")]);
    out.push(b' ');
    let us = l.duration.as_micros() as u64;
    push_u64(out, us / 1_000_000);
    out.push(b'.');
    let frac = us % 1_000_000 / 1000;
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
    out.push(b' ');
    quoted(out, &[l.upstream.unwrap_or("").as_bytes()]);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::record::RequestMeta;
    use crate::http::head::{parse_request_head, HeadLimits, RequestHead};
    use std::time::Duration;

    fn meta(raw: &[u8]) -> RequestMeta {
        let mut head = RequestHead::default();
        assert!(parse_request_head(raw, &HeadLimits::default(), &mut head).unwrap());
        let mut m = RequestMeta::default();
        m.capture(raw, &head, b"abc123", (None, None), &[]);
        m
    }

    #[test]
    fn redacted_query_values_never_reach_the_line() {
        let raw = b"GET /v1/x?a=1&api_key=s3cr3t&api_key=two&token&b=api_key%3D#api_key=f HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut head = RequestHead::default();
        assert!(parse_request_head(raw, &HeadLimits::default(), &mut head).unwrap());
        let mut m = RequestMeta::default();
        let redact: Vec<Box<[u8]>> = vec![b"api_key"[..].into(), b"token"[..].into()];
        m.capture(raw, &head, b"id", (None, None), &redact);
        assert_eq!(
            std::str::from_utf8(m.target()).unwrap(),
            "/v1/x?a=1&api_key=REDACTED&api_key=REDACTED&token&b=api_key%3D#api_key=f"
        );
        // Without a list, or without a query, the target is copied as is.
        m.capture(raw, &head, b"id", (None, None), &[]);
        assert!(std::str::from_utf8(m.target()).unwrap().contains("s3cr3t"));
        let raw = b"GET /plain HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(parse_request_head(raw, &HeadLimits::default(), &mut head).unwrap());
        m.capture(raw, &head, b"id", (None, None), &redact);
        assert_eq!(m.target(), b"/plain");
    }

    fn line<'a>(m: Option<&'a RequestMeta>) -> LogLine<'a> {
        LogLine {
            worker: 1,
            client: "127.0.0.1:5555".parse().unwrap(),
            meta: m,
            listener: "public",
            route: Some("api"),
            status: 200,
            bytes_in: 10,
            bytes_out: 20,
            duration: Duration::from_micros(1500),
            upstream: Some("127.0.0.1:9000"),
            upstream_time: Some(Duration::from_micros(900)),
            trace_id: Some(b"0af7651916cd43dd8448eb211c80319c"),
            error: None,
            vars: None,
            grpc_status: None,
        }
    }

    #[test]
    fn json_line_carries_the_grpc_status_when_there_is_one() {
        let mut out = Vec::new();
        let mut clock = ClockCache::default();
        json(&mut out, &mut clock, &line(None));
        assert!(!String::from_utf8_lossy(&out).contains("grpc_status"));
        out.clear();
        let l = LogLine {
            grpc_status: Some(14),
            ..line(None)
        };
        json(&mut out, &mut clock, &l);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["grpc_status"], 14);
    }

    #[test]
    fn json_line_carries_filter_variables() {
        let mut vars = crate::pipeline::filters::Vars::default();
        vars.set("sub", b"alice \"a\"");
        vars.set("key_id", b"k1");
        let mut l = line(None);
        l.vars = Some(&vars);
        let mut out = Vec::new();
        json(&mut out, &mut ClockCache::default(), &l);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["vars"]["sub"], "alice \"a\"");
        assert_eq!(v["vars"]["key_id"], "k1");
        // No variables: no key at all.
        let mut out = Vec::new();
        json(&mut out, &mut ClockCache::default(), &line(None));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("vars").is_none());
    }

    #[test]
    fn json_line_is_valid_json_with_all_fields() {
        let m = meta(b"GET /a\"b?x=\\ HTTP/1.1\r\nHost: h.test\r\n\r\n");
        let mut out = Vec::new();
        json(&mut out, &mut ClockCache::default(), &line(Some(&m)));
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/a\"b?x=\\");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_us"], 1500);
        assert_eq!(v["upstream_us"], 900);
        assert_eq!(v["proxy_us"], 600);
        assert_eq!(v["request_id"], "abc123");
        assert_eq!(v["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert!(v["error"].is_null());
    }

    #[test]
    fn json_without_head_and_with_odd_bytes() {
        let mut out = Vec::new();
        let mut l = line(None);
        l.status = 400;
        l.error = Some("bad_request");
        json(&mut out, &mut ClockCache::default(), &l);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"], "bad_request");
        assert!(v.get("method").is_none());
        let mut out = Vec::new();
        l.upstream_time = None;
        json(&mut out, &mut ClockCache::default(), &l);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["upstream_us"].is_null());
        assert!(v["proxy_us"].is_null());
        // An upstream time longer than the duration (clock skew) saturates.
        let mut out = Vec::new();
        l.upstream_time = Some(Duration::from_micros(2000));
        json(&mut out, &mut ClockCache::default(), &l);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["proxy_us"], 0);
        let mut s = Vec::new();
        json_str(&mut s, b"a\xffb\x01");
        let parsed: String = serde_json::from_slice(&s).unwrap();
        assert_eq!(parsed, "a\u{ff}b\u{1}");
        // Valid UTF-8 stays as it is; plain ASCII takes the fast path.
        for text in ["caf\u{e9} /x?y=1", "/plain/path?q=1&r=2", "", "del\u{7f}"] {
            let mut s = Vec::new();
            json_str(&mut s, text.as_bytes());
            let parsed: String = serde_json::from_slice(&s).unwrap();
            assert_eq!(parsed, text);
        }
    }

    #[test]
    fn care_check_matches_the_escaping_rules() {
        for b in 0..=255u8 {
            let plain = (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
            assert_eq!(byte_needs_care(b), !plain, "{b:#x}");
            let mut field = *b"/some/path?x=";
            field[5] = b;
            assert_eq!(needs_care(&field), !plain);
        }
    }

    #[test]
    fn addresses_are_written_like_display() {
        for a in [
            "127.0.0.1:5555",
            "10.0.200.3:80",
            "[::1]:8080",
            "[2001:db8::1]:443",
        ] {
            let addr: std::net::SocketAddr = a.parse().unwrap();
            let mut out = Vec::new();
            push_socket_addr(&mut out, addr);
            assert_eq!(String::from_utf8(out).unwrap(), addr.to_string());
        }
    }

    #[test]
    fn combined_line() {
        let m = meta(b"POST /x HTTP/1.0\r\nUser-Agent: t\r\n\r\n");
        let mut out = Vec::new();
        combined(&mut out, &mut ClockCache::default(), &line(Some(&m)));
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("127.0.0.1 - - ["), "{s}");
        assert!(
            s.contains(
                "] \"POST /x HTTP/1.0\" 200 20 \"-\" \"-\" \"abc123\" 0.001 \"127.0.0.1:9000\"\n"
            ),
            "{s}"
        );
    }
}
