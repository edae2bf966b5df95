//! Hop-by-hop names and head rewriting (exact bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{req, resp};
use crate::hop::is_hop_by_hop;
use crate::rewrite::{write_request_head, write_response_head, ForwardInfo, ResponseInfo};

fn info() -> ForwardInfo<'static> {
    ForwardInfo {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
        tls: false,
        request_id: b"rid-1",
        default_host: b"backend.local",
        upgrade: false,
        strip_expect: false,
        traceparent: None,
        drop_tracestate: false,
        target: None,
        edits: None,
        client_cert: None,
    }
}

fn fwd(buf: &[u8], info: &ForwardInfo) -> String {
    let head = req(buf).unwrap();
    let mut out = b"PREFIX|".to_vec(); // appends, never clears
    write_request_head(&mut out, buf, &head, info);
    let out = String::from_utf8(out).unwrap();
    out.strip_prefix("PREFIX|").unwrap().to_owned()
}

fn back(buf: &[u8], head_req: bool, info: &ResponseInfo) -> String {
    let head = resp(buf, head_req).unwrap();
    let mut out = Vec::new();
    write_response_head(&mut out, buf, &head, info);
    String::from_utf8(out).unwrap()
}

#[test]
fn hop_by_hop_names() {
    for n in [
        "Connection",
        "keep-alive",
        "PROXY-CONNECTION",
        "Proxy-Authorization",
        "proxy-authenticate",
        "TE",
        "Trailer",
        "upgrade",
    ] {
        assert!(is_hop_by_hop(n.as_bytes()), "{n}");
    }
    for n in [
        "Transfer-Encoding",
        "Trailers",
        "T",
        "Host",
        "Content-Length",
        "Upgrade-Insecure-Requests",
        "",
        "Keep-Alive2",
    ] {
        assert!(!is_hop_by_hop(n.as_bytes()), "{n}");
    }
}

#[test]
fn plain_get() {
    let out = fwd(
        b"GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        &info(),
    );
    assert_eq!(
        out,
        "GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\n\
X-Request-Id: rid-1\r\n\r\n"
    );
}

#[test]
fn strips_hop_by_hop_and_connection_listed() {
    let buf = b"POST /s HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret, x-other\r\n\
Keep-Alive: timeout=5\r\nX-Secret: 1\r\nTE: trailers\r\nTrailer: X-Sum\r\nProxy-Authorization: Basic x\r\n\
Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-OTHER: 2\r\nX-Kept: 3\r\nContent-Length: 2\r\n\r\nhi";
    let out = fwd(buf, &info());
    assert_eq!(
        out,
        "POST /s HTTP/1.1\r\nHost: h\r\nX-Kept: 3\r\nContent-Length: 2\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\
X-Request-Id: rid-1\r\n\r\n"
    );
}

#[test]
fn connection_cannot_strip_framing_or_host() {
    let buf =
        b"POST /s HTTP/1.1\r\nHost: h\r\nConnection: Transfer-Encoding, host, content-length\r\n\
Transfer-Encoding: chunked\r\n\r\n";
    let out = fwd(buf, &info());
    assert_eq!(
        out,
        "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\
X-Request-Id: rid-1\r\n\r\n"
    );
}

#[test]
fn xff_appended_and_forwarded_headers_replaced() {
    let buf = b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nHost: h:81\r\n\
x-forwarded-for: 3.3.3.3 \r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Forwarded-For:\r\n\r\n";
    let mut i = info();
    i.tls = true;
    i.client_ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let out = fwd(buf, &i);
    assert_eq!(
        out,
        "GET / HTTP/1.1\r\nHost: h:81\r\n\
X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 2001:db8::1\r\nX-Forwarded-Proto: https\r\n\
X-Forwarded-Host: h:81\r\nX-Request-Id: rid-1\r\n\r\n"
    );
    // IPv4-mapped IPv6 peers are logged as IPv4.
    i.client_ip = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert!(
        fwd(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &i).contains("X-Forwarded-For: 192.0.2.1\r\n")
    );
}

#[test]
fn request_id_only_when_absent() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\nx-request-id: client-id\r\n\r\n";
    assert_eq!(
        fwd(buf, &info()),
        "GET / HTTP/1.1\r\nHost: h\r\nx-request-id: client-id\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n"
    );
}

#[test]
fn http10_gets_host_and_version() {
    let buf = b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert_eq!(
        fwd(buf, &info()),
        "GET /old HTTP/1.1\r\nHost: backend.local\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Request-Id: rid-1\r\n\r\n"
    );
}

#[test]
fn content_length_normalised() {
    let buf =
        b"PUT /x HTTP/1.1\r\nContent-Length: 3, 3\r\nHost: h\r\ncontent-length: 003\r\n\r\nabc";
    let out = fwd(buf, &info());
    assert_eq!(
        out,
        "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\
X-Request-Id: rid-1\r\n\r\n"
    );
    let buf = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\n";
    assert!(fwd(buf, &info()).contains("\r\nContent-Length: 0\r\n"));
    let buf = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert!(fwd(buf, &info()).contains("\r\nContent-Length: 18446744073709551615\r\n"));
    let buf = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    assert!(!fwd(buf, &info()).contains("Content-Length"));
}

#[test]
fn expect_and_upgrade_options() {
    let buf = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: k\r\nExpect: 100-continue\r\n\r\n";
    let mut i = info();
    i.request_id = b"";
    assert_eq!(
        fwd(buf, &i),
        "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nExpect: 100-continue\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n"
    );
    i.upgrade = true;
    i.strip_expect = true;
    assert_eq!(
        fwd(buf, &i),
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\
Connection: upgrade\r\n\r\n"
    );
}

#[test]
fn response_plain_and_stripped() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Internal\r\n\
Keep-Alive: timeout=5\r\nX-Internal: 1\r\nServer: s\r\nProxy-Authenticate: Basic\r\nTrailer: X\r\n\r\nok";
    assert_eq!(
        back(buf, false, &ResponseInfo::default()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: s\r\n\r\n"
    );
    let close = ResponseInfo {
        close: true,
        ..ResponseInfo::default()
    };
    assert_eq!(
        back(buf, false, &close),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: s\r\nConnection: close\r\n\r\n"
    );
    let ka = ResponseInfo {
        keep_alive_http10: true,
        ..ResponseInfo::default()
    };
    assert_eq!(
        back(buf, false, &ka),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: s\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn response_dechunk_and_protected_framing() {
    let buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\nX: y\r\n\r\n";
    assert_eq!(
        back(buf, false, &ResponseInfo::default()),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n"
    );
    let de = ResponseInfo {
        dechunk: true,
        close: true,
        ..ResponseInfo::default()
    };
    assert_eq!(
        back(buf, false, &de),
        "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn response_upgrade() {
    let buf = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: a\r\n\r\n";
    let up = ResponseInfo {
        upgrade: true,
        ..ResponseInfo::default()
    };
    assert_eq!(
        back(buf, false, &up),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\
Connection: upgrade\r\n\r\n"
    );
    assert_eq!(
        back(buf, false, &ResponseInfo::default()),
        "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: a\r\n\r\n"
    );
}

#[test]
fn response_reason_and_version() {
    let r = ResponseInfo::default();
    assert_eq!(
        back(b"HTTP/1.0 204\r\n\r\n", false, &r),
        "HTTP/1.1 204 No Content\r\n\r\n"
    );
    assert_eq!(
        back(b"HTTP/1.1 299 \r\n\r\n", false, &r),
        "HTTP/1.1 299 \r\n\r\n"
    );
    assert_eq!(
        back(b"HTTP/1.1 404 Nope Nope\r\n\r\n", false, &r),
        "HTTP/1.1 404 Nope Nope\r\n\r\n"
    );
    let buf = b"HTTP/1.1 200 Tr\xe8s\r\n\r\n";
    let head = resp(buf, false).unwrap();
    let mut out = Vec::new();
    write_response_head(&mut out, buf, &head, &r);
    assert_eq!(out, b"HTTP/1.1 200 Tr\xe8s\r\n\r\n");
}

#[test]
fn trace_context_is_replaced_and_tracestate_optionally_dropped() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\ntraceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01\r\ntracestate: k=v\r\n\r\n";
    let mut i = info();
    i.traceparent = Some(b"00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-cccccccccccccccc-01");
    let out = fwd(buf, &i);
    assert_eq!(out.matches("traceparent:").count(), 1, "{out}");
    assert!(
        out.contains("traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-cccccccccccccccc-01\r\n")
    );
    assert!(out.contains("tracestate: k=v\r\n"));
    i.drop_tracestate = true;
    let out = fwd(buf, &i);
    assert!(!out.contains("tracestate"), "{out}");
}

/// What the proxy forwards must itself be a valid head with the same framing
/// (the property the `request_head` fuzz target checks).
#[test]
fn forwarded_heads_reparse_with_same_framing() {
    use crate::head::{parse_request_head, HeadLimits, RequestHead};
    let heads: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nConnection: transfer-encoding\r\n\
Transfer-Encoding: chunked\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade, x-forwarded-for\r\n\
X-Forwarded-For: 1.2.3.4\r\n\r\n",
    ];
    for buf in heads {
        let head = req(buf).unwrap();
        for flags in 0..8u8 {
            let mut i = info();
            i.tls = flags & 1 != 0;
            i.upgrade = flags & 2 != 0;
            i.strip_expect = flags & 4 != 0;
            let mut out = Vec::new();
            write_request_head(&mut out, buf, &head, &i);
            let mut again = RequestHead::default();
            assert_eq!(
                parse_request_head(&out, &HeadLimits::default(), &mut again),
                Ok(true)
            );
            assert_eq!(again.head_len, out.len());
            assert_eq!(again.framing, head.framing);
            assert_eq!(again.version, crate::head::Version::Http11);
        }
    }
}

#[test]
fn request_edits_and_target_override() {
    use crate::HeaderEdits;
    let buf = b"GET /old/x?q=1 HTTP/1.1\r\nHost: a.test\r\nX-Drop: 1\r\nX-Keep: 2\r\nX-Set: old\r\nx-set: old2\r\n\r\n";
    let mut edits = HeaderEdits::new();
    edits.remove(b"x-drop");
    edits.set(b"X-Set", b"new");
    edits.add(b"X-Added", b"v");
    edits.set(b"x-forwarded-proto", b"https");
    let info = ForwardInfo {
        target: Some(b"/new/x?q=1"),
        edits: Some(&edits),
        ..info()
    };
    let out = fwd(buf, &info);
    assert!(out.starts_with("GET /new/x?q=1 HTTP/1.1\r\n"), "{out}");
    assert!(!out.contains("X-Drop"), "{out}");
    assert!(!out.contains("old"), "{out}");
    assert!(out.contains("X-Keep: 2\r\n"), "{out}");
    assert!(
        out.ends_with("X-Set: new\r\nX-Added: v\r\nx-forwarded-proto: https\r\n\r\n"),
        "{out}"
    );
    assert_eq!(
        out.matches("orwarded-Proto").count() + out.matches("orwarded-proto").count(),
        1,
        "{out}"
    );
    // An empty list changes nothing.
    let empty = HeaderEdits::new();
    let plain = fwd(buf, &info_with(None));
    assert_eq!(fwd(buf, &info_with(Some(&empty))), plain);
}

fn info_with(edits: Option<&crate::HeaderEdits>) -> ForwardInfo<'_> {
    ForwardInfo { edits, ..info() }
}

#[test]
fn response_edits() {
    use crate::HeaderEdits;
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: s\r\nX-Powered-By: php\r\n\r\nok";
    let mut edits = HeaderEdits::new();
    edits.remove(b"x-powered-by");
    edits.set(b"server", b"ringway");
    edits.add(b"Vary", b"Origin");
    let info = ResponseInfo {
        edits: Some(&edits),
        ..ResponseInfo::default()
    };
    assert_eq!(
        back(buf, false, &info),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nserver: ringway\r\nVary: Origin\r\n\r\n"
    );
}

#[test]
fn edits_never_touch_framing() {
    use crate::HeaderEdits;
    let buf = b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut edits = HeaderEdits::new();
    edits.remove(b"transfer-encoding");
    edits.set(b"content-length", b"5");
    edits.set(b"connection", b"close");
    edits.add(b"x-ok", b"1");
    let out = fwd(buf, &info_with(Some(&edits)));
    assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
    assert!(
        !out.to_ascii_lowercase().contains("content-length"),
        "{out}"
    );
    assert!(
        !out.to_ascii_lowercase().contains("connection: close"),
        "{out}"
    );
    assert!(out.contains("x-ok: 1\r\n"), "{out}");
    let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let info = ResponseInfo {
        edits: Some(&edits),
        ..ResponseInfo::default()
    };
    let back = back(resp, false, &info);
    assert!(back.contains("Transfer-Encoding: chunked\r\n"), "{back}");
    assert!(
        !back.to_ascii_lowercase().contains("content-length"),
        "{back}"
    );
}

#[test]
fn response_compressed_reframes_and_weakens_etag() {
    use crate::HeaderEdits;
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: identity\r\n\
ETag: \"v1\"\r\nAccept-Ranges: bytes\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n\r\nok";
    let info = ResponseInfo {
        compress: Some(b"gzip"),
        ..ResponseInfo::default()
    };
    assert_eq!(
        back(buf, false, &info),
        "HTTP/1.1 200 OK\r\nETag: W/\"v1\"\r\nContent-Type: text/plain\r\n\
Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    // Chunked upstream, weak and malformed tags, edits naming framing or
    // the coding are ignored; other edits apply.
    let buf = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nETag: W/\"w\"\r\n\
Etag: bogus\r\nX-A: 1\r\n\r\n";
    let mut edits = HeaderEdits::new();
    edits.set(b"content-encoding", b"x");
    edits.set(b"content-length", b"9");
    edits.remove(b"x-a");
    edits.add(b"Vary", b"Accept-Encoding");
    let info = ResponseInfo {
        compress: Some(b"br"),
        close: true,
        edits: Some(&edits),
        ..ResponseInfo::default()
    };
    assert_eq!(
        back(buf, false, &info),
        "HTTP/1.1 404 Not Found\r\nETag: W/\"w\"\r\nVary: Accept-Encoding\r\n\
Content-Encoding: br\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn client_cert_header_is_never_the_clients() {
    let buf = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Client-Cert: URI=spiffe://evil/admin\r\nx-forwarded-client-cert: Hash=00\r\n\r\n";
    // Plain connection: the spoofed copies are dropped, none is added.
    let out = fwd(buf, &info());
    assert!(
        !out.to_ascii_lowercase().contains("x-forwarded-client-cert"),
        "{out}"
    );
    // mTLS: only ringway's.
    let info = ForwardInfo {
        client_cert: Some(b"Hash=ab;URI=spiffe://td/ok"),
        ..info()
    };
    let out = fwd(buf, &info);
    assert_eq!(
        out.to_ascii_lowercase()
            .matches("x-forwarded-client-cert")
            .count(),
        1,
        "{out}"
    );
    assert!(
        out.contains("X-Forwarded-Client-Cert: Hash=ab;URI=spiffe://td/ok\r\n"),
        "{out}"
    );
    assert!(!out.contains("evil"), "{out}");
}

/// Kept fields go out as runs of the original bytes when they are laid out
/// as `name: value` CRLF; any other layout (no space, several spaces or a
/// tab after the colon, trailing whitespace, an empty value) still comes out
/// normalised, and a dropped field between two kept ones splits the run
/// without leaking its bytes.
#[test]
fn kept_fields_are_the_same_bytes_in_any_layout() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB:2\r\nC:   3\r\nD: 4  \r\nE:\t5\r\n\
Keep-Alive: 9\r\nF: 6\r\nG: \r\nH:\r\nI: 7\r\n\r\n";
    assert_eq!(
        fwd(buf, &info()),
        "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\
F: 6\r\nG: \r\nH: \r\nI: 7\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\
X-Request-Id: rid-1\r\n\r\n"
    );
    let buf = b"HTTP/1.1 200 OK\r\nA: 1\r\nB:2\r\nConnection: x-drop\r\nX-Drop: 0\r\n\
C: 3 \r\nD: 4\r\nE: 5\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(
        back(buf, false, &ResponseInfo::default()),
        "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nContent-Length: 2\r\n\r\n"
    );
}
