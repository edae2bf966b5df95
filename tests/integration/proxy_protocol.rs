//! The client address: PROXY protocol v1/v2 on listeners (plain and TLS),
//! malformed and late headers, `trusted_proxies` for X-Forwarded-For, and
//! `send_proxy_protocol` towards a raw TCP origin.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringway_tests::certs::Ca;
use ringway_tests::client::{Client, Request};
use ringway_tests::config::{q, Config};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;
use ringway_tests::tls;

const SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 header: command PROXY, TCP over IPv4 or IPv6.
fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut v = SIG.to_vec();
    v.push(0x21);
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            v.extend_from_slice(&[0x11, 0, 12]);
            v.extend_from_slice(&s.ip().octets());
            v.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            v.extend_from_slice(&[0x21, 0, 36]);
            v.extend_from_slice(&s.ip().octets());
            v.extend_from_slice(&d.ip().octets());
        }
        _ => panic!("mixed families"),
    }
    v.extend_from_slice(&src.port().to_be_bytes());
    v.extend_from_slice(&dst.port().to_be_bytes());
    v
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Listener "pp" with `proxy_protocol = true` (and `extra`), route `/` →
/// the origin.
fn pp_proxy(dir: &TestDir, origin: &Origin, extra: &[(&str, &str)]) -> Proxy {
    let mut keys = vec![("proxy_protocol", "true")];
    keys.extend_from_slice(extra);
    let config = Config::new()
        .limit("header_read_timeout", &q("1s"))
        .listener_with("pp", &keys)
        .route("pp", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[])
        .admin();
    Proxy::start(dir, &config)
}

#[test]
fn v1_and_v2_headers_carry_the_client_address() {
    let dir = TestDir::new("pp-carry");
    let origin = Origin::start();
    let proxy = pp_proxy(
        &dir,
        &origin,
        &[("ip_acl", r#"{ deny = ["198.51.100.0/24"] }"#)],
    );
    let addr = proxy.addr("pp");

    // v1, then two requests on the connection.
    let mut c = Client::connect(addr);
    c.send(b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n");
    assert_eq!(c.get("/a").status(), 200);
    let rec = origin.last_request().unwrap();
    assert_eq!(
        rec.header("x-forwarded-for"),
        Some("203.0.113.7"),
        "{}",
        rec.raw_str()
    );
    assert_eq!(c.get("/b").status(), 200);
    let rec = origin.last_request().unwrap();
    assert_eq!(rec.header("x-forwarded-for"), Some("203.0.113.7"));

    // v2 over IPv6, header and request in one write.
    let mut c = Client::connect(addr);
    let mut bytes = v2(sa("[2001:db8::9]:5000"), sa("[2001:db8::1]:443"));
    bytes.extend(Request::get("/v2").to_bytes());
    c.send(&bytes);
    assert_eq!(c.read_response().status(), 200);
    let rec = origin.last_request().unwrap();
    assert_eq!(rec.header("x-forwarded-for"), Some("2001:db8::9"));

    // v2 LOCAL (a health check): the TCP peer is the client.
    let mut c = Client::connect(addr);
    c.send(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00");
    assert_eq!(c.get("/local").status(), 200);
    let rec = origin.last_request().unwrap();
    assert_eq!(rec.header("x-forwarded-for"), Some("127.0.0.1"));

    // The listener's ip_acl applies to the carried address.
    for header in [
        b"PROXY TCP4 198.51.100.5 10.0.0.1 1 443\r\n".to_vec(),
        v2(sa("198.51.100.6:1"), sa("10.0.0.1:443")),
    ] {
        let before = origin.request_count();
        let mut c = Client::connect(addr);
        c.send(&header);
        let r = c.get("/denied");
        assert_eq!(r.status(), 403, "{r}");
        assert_eq!(origin.request_count(), before);
    }
}

#[test]
fn route_ip_acl_filter_sees_the_carried_address() {
    let dir = TestDir::new("pp-filter-acl");
    let origin = Origin::start();
    let config = Config::new()
        .listener_with("pp", &[("proxy_protocol", "true")])
        .route(
            "pp",
            "/",
            "app",
            &[(
                "filters",
                r#"[{ type = "ip_acl", allow = ["203.0.113.0/24"] }]"#,
            )],
        )
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let mut c = Client::connect(proxy.addr("pp"));
    c.send(b"PROXY TCP4 203.0.113.7 10.0.0.1 1 443\r\n");
    assert_eq!(c.get("/in").status(), 200);
    let mut c = Client::connect(proxy.addr("pp"));
    c.send(b"PROXY TCP4 192.0.2.7 10.0.0.1 1 443\r\n");
    assert_eq!(c.get("/out").status(), 403);
    assert_eq!(origin.request_count(), 1);
}

/// One HTTP/1.1 request over rustls on `tcp` (after whatever was already
/// written to it); returns the raw response (read to the close).
fn tls_request(tcp: TcpStream, ca: &Ca, name: &str, path: &str) -> std::io::Result<String> {
    let config = tls::client_config(&[ca.cert_der()], None);
    let server_name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config, server_name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // Some peers end TLS without close_notify.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn tls_listener_reads_the_header_before_the_handshake() {
    let dir = TestDir::new("pp-tls");
    let ca = Ca::new("pp CA");
    let leaf = ca.issue(&["pp.test"]);
    leaf.write(dir.path(), "srv");
    let origin = Origin::start();
    let proxy = pp_proxy(
        &dir,
        &origin,
        &[("tls", r#"{ cert = "srv.pem", key = "srv.key" }"#)],
    );
    let addr = proxy.addr("pp");

    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&v2(sa("203.0.113.44:999"), addr)).unwrap();
    let resp = tls_request(tcp, &ca, "pp.test", "/tls").unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let rec = origin.last_request().unwrap();
    assert_eq!(rec.header("x-forwarded-for"), Some("203.0.113.44"));
    assert_eq!(rec.header("x-forwarded-proto"), Some("https"));

    // v1 too, written in two pieces.
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"PROXY TCP4 203.0.1").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    tcp.write_all(b"13.45 10.0.0.1 1 443\r\n").unwrap();
    let resp = tls_request(tcp, &ca, "pp.test", "/tls").unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(
        origin.last_request().unwrap().header("x-forwarded-for"),
        Some("203.0.113.45")
    );

    // A handshake without a header is refused.
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(tls_request(tcp, &ca, "pp.test", "/none").is_err());
    assert_eq!(origin.request_count(), 2);
}

/// `ringway_downstream_proxy_protocol_errors_total` of listener "pp", once
/// it reaches `want` (or its value after 5 s).
fn pp_errors(proxy: &Proxy, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(proxy.admin_addr());
        let r = c.request(&Request::get("/metrics").host("admin"));
        let n = r
            .body_str()
            .lines()
            .find(|l| {
                l.starts_with("ringway_downstream_proxy_protocol_errors_total")
                    && l.contains("listener=\"pp\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn malformed_headers_close_the_connection_unanswered() {
    let dir = TestDir::new("pp-malformed");
    let origin = Origin::start();
    let proxy = pp_proxy(&dir, &origin, &[]);
    let addr = proxy.addr("pp");
    let mut bad_v2_len = v2(sa("1.2.3.4:1"), sa("5.6.7.8:2"));
    bad_v2_len[14..16].copy_from_slice(&600u16.to_be_bytes());
    let mut bad_v2_version = v2(sa("1.2.3.4:1"), sa("5.6.7.8:2"));
    bad_v2_version[12] = 0x11;
    let mut bad_v2_family = v2(sa("1.2.3.4:1"), sa("5.6.7.8:2"));
    bad_v2_family[13] = 0x12; // UDP
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no header", Request::get("/").to_bytes()),
        ("v1 LF only", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec()),
        (
            "v1 port",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n".to_vec(),
        ),
        ("v1 plus", b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n".to_vec()),
        ("v1 octet", b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n".to_vec()),
        ("v1 family", b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n".to_vec()),
        ("v1 spaces", b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n".to_vec()),
        (
            "v1 too long",
            [&b"PROXY UNKNOWN "[..], &[b'x'; 120]].concat(),
        ),
        (
            "v2 signature",
            b"\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c".to_vec(),
        ),
        ("v2 version", bad_v2_version),
        ("v2 length", bad_v2_len),
        ("v2 udp", bad_v2_family),
        (
            "v2 short inet",
            [&SIG[..], b"\x21\x11\x00\x04\x01\x02\x03\x04"].concat(),
        ),
    ];
    for (what, bytes) in &cases {
        let mut c = Client::connect(addr);
        let mut bytes = bytes.clone();
        bytes.extend(Request::get("/after").to_bytes());
        let _ = c.try_send(&bytes);
        c.assert_closed(Duration::from_secs(3), what);
    }
    assert_eq!(origin.request_count(), 0);
    assert_eq!(origin.connections(), 0);
    let n = cases.len() as u64;
    assert_eq!(pp_errors(&proxy, n), n);
}

#[test]
fn slow_header_is_closed_after_the_header_timeout() {
    let dir = TestDir::new("pp-slow");
    let origin = Origin::start();
    let proxy = pp_proxy(&dir, &origin, &[]);
    let mut c = Client::connect(proxy.addr("pp"));
    let t = Instant::now();
    c.send(b"PROXY TCP4 203.0.113.7 ");
    c.assert_closed(Duration::from_secs(4), "slow PROXY header");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    // Silence is closed the same way.
    let mut c = Client::connect(proxy.addr("pp"));
    c.assert_closed(Duration::from_secs(4), "no bytes at all");
    assert_eq!(origin.request_count(), 0);
    assert_eq!(pp_errors(&proxy, 2), 2);
}

#[test]
fn trusted_proxies_pick_the_rightmost_untrusted_hop() {
    let dir = TestDir::new("pp-trusted");
    let origin = Origin::start();
    let set = r#"[{ type = "headers", request_set = { "x-client" = "$client_ip" } }]"#;
    let config = Config::new()
        .listener_with(
            "edge",
            &[("trusted_proxies", r#"["127.0.0.0/8", "10.0.0.0/8"]"#)],
        )
        .listener("plain")
        .route("edge", "/", "app", &[("filters", set)])
        .route(
            "plain",
            "/",
            "app",
            &[("filters", set), ("name", "\"plain\"")],
        )
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);

    let mut c = Client::connect(proxy.addr("edge"));
    let cases = [
        // (X-Forwarded-For values, expected client)
        (vec!["6.6.6.6, 203.0.113.5, 10.1.1.1"], "203.0.113.5"),
        (
            vec!["6.6.6.6", "203.0.113.5", "10.1.1.1, 10.2.2.2"],
            "203.0.113.5",
        ),
        (vec!["2001:db8::5"], "2001:db8::5"),
        (vec!["10.3.3.3, 10.1.1.1"], "10.3.3.3"),
        (vec!["203.0.113.5, garbage, 10.1.1.1"], "10.1.1.1"),
        (vec![], "127.0.0.1"),
    ];
    for (xff, want) in &cases {
        let mut req = Request::get("/t");
        for v in xff {
            req = req.header("X-Forwarded-For", v);
        }
        assert_eq!(c.request(&req).status(), 200);
        let rec = origin.last_request().unwrap();
        assert_eq!(
            rec.header("x-client"),
            Some(*want),
            "{xff:?}: {}",
            rec.raw_str()
        );
        // X-Forwarded-For still ends with the TCP peer.
        let sent = rec.headers_all("x-forwarded-for").join(", ");
        assert!(sent.ends_with("127.0.0.1"), "{sent}");
    }
    // Without trusted_proxies the peer is the client, whatever XFF says.
    let mut c = Client::connect(proxy.addr("plain"));
    let r = c.request(&Request::get("/p").header("X-Forwarded-For", "203.0.113.5"));
    assert_eq!(r.status(), 200);
    assert_eq!(
        origin.last_request().unwrap().header("x-client"),
        Some("127.0.0.1")
    );
}

/// A raw TCP origin: reads a PROXY header (v1 line or v2 block), then
/// answers every request on the connection with 200 (keep-alive). Sends
/// each connection's header bytes on the channel.
fn proxy_origin() -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve_raw(s, tx));
        }
    });
    (addr, rx)
}

fn read_byte(s: &mut TcpStream) -> Option<u8> {
    let mut b = [0u8];
    match s.read(&mut b) {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

fn serve_raw(mut s: TcpStream, tx: mpsc::Sender<Vec<u8>>) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut header = Vec::new();
    // v2 starts with CR, v1 with 'P'.
    loop {
        let Some(b) = read_byte(&mut s) else { return };
        header.push(b);
        if header[0] == b'P' && header.ends_with(b"\r\n") {
            break;
        }
        if header[0] == b'\r' && header.len() >= 16 {
            let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
            if header.len() == 16 + len {
                break;
            }
        }
        if header.len() > 600 {
            return;
        }
    }
    let _ = tx.send(header);
    let mut buf = Vec::new();
    loop {
        let Some(b) = read_byte(&mut s) else { return };
        buf.push(b);
        if buf.ends_with(b"\r\n\r\n") {
            buf.clear();
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    }
}

fn v1_text(h: &[u8]) -> String {
    String::from_utf8_lossy(h).into_owned()
}

#[test]
fn send_proxy_protocol_starts_every_upstream_connection_with_a_header() {
    let dir = TestDir::new("pp-send");
    let (o1, rx1) = proxy_origin();
    let (o2, rx2) = proxy_origin();
    let config = Config::new()
        .listener("public")
        .listener_with("pp", &[("proxy_protocol", "true")])
        .route("public", "/v1", "one", &[])
        .route("public", "/v2", "two", &[("name", "\"v2\"")])
        .route("pp", "/", "two", &[("name", "\"pp\"")])
        .cluster("one", &[o1], &[("send_proxy_protocol", &q("v1"))])
        .cluster("two", &[o2], &[("send_proxy_protocol", &q("v2"))]);
    let proxy = Proxy::start(&dir, &config);
    let listener = proxy.addr("public");
    let wait = Duration::from_secs(10);

    // v1: two requests on one client connection → two upstream
    // connections (never pooled), each with the client's header.
    let mut c = Client::connect(listener);
    let me = c.tcp().local_addr().unwrap();
    for _ in 0..2 {
        let r = c.get("/v1");
        assert_eq!((r.status(), r.body_str().as_str()), (200, "ok"), "{r}");
        let h = rx1.recv_timeout(wait).expect("a PROXY header");
        assert_eq!(
            v1_text(&h),
            format!(
                "PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\n",
                me.port(),
                listener.port()
            )
        );
    }

    // v2.
    let r = c.get("/v2");
    assert_eq!(r.status(), 200, "{r}");
    let h = rx2.recv_timeout(wait).expect("a PROXY header");
    assert_eq!(h, v2(me, listener));

    // Received on one side, sent on the other: the carried client goes on.
    let pp = proxy.addr("pp");
    let mut c = Client::connect(pp);
    c.send(b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n");
    assert_eq!(c.get("/chain").status(), 200);
    let h = rx2.recv_timeout(wait).expect("a PROXY header");
    assert_eq!(h, v2(sa("203.0.113.7:40000"), pp));
}

#[test]
fn config_errors_name_the_keys() {
    use ringway_tests::proxy::run_ringway;
    let dir = TestDir::new("pp-check");
    let config = Config::simple("127.0.0.1:9".parse().unwrap())
        .listener_with(
            "edge",
            &[
                ("proxy_protocol", "true"),
                ("trusted_proxies", r#"["10.0.0.0/8", "10.0.0.1/8"]"#),
            ],
        )
        .cluster_set("app", "send_proxy_protocol", &q("v3"));
    let path = dir.write("ringway.toml", config.to_toml());
    let out = run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    for key in [
        "error: listener[1].trusted_proxies[1]",
        "error: cluster[0].send_proxy_protocol",
    ] {
        assert!(
            out.all().lines().any(|l| l.starts_with(key)),
            "no `{key}`\n{out}"
        );
    }
}
