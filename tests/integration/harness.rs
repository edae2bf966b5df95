//! Self-tests of the harness (client ↔ origin directly, TLS, certs, config,
//! parsing helpers). They need no ringway binary.

use std::time::{Duration, Instant};

use ringway_tests::certs::{self, Ca};
use ringway_tests::client::{Client, Framing, Request, TlsOptions};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::{self, Origin, OriginTls};
use ringway_tests::pattern::Pattern;
use ringway_tests::proxy::{memory_of, parse_listener_line};
use ringway_tests::tls;

#[test]
fn origin_echoes_content_length_and_chunked_bodies() {
    let o = Origin::start();
    let mut c = Client::connect(o.addr());
    let body = Pattern::new().vec(100_000);
    let r = c.request(
        &Request::post("/echo")
            .body(body.clone())
            .header("X-Echo-Headers", "x-a")
            .header("X-A", "1"),
    );
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.framing, Framing::ContentLength(100_000));
    assert!(r.body == body);
    assert_eq!(r.header("x-echo-x-a"), Some("1"));
    assert_eq!(r.header("x-echo-host"), Some("test.local"));
    assert_eq!(r.header("x-echo-body-framing"), Some("content-length"));

    let r = c.request(
        &Request::post("/echo")
            .chunked(&body, &[1, 1000, 65536])
            .header("x-reply-chunked", "1"),
    );
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.framing, Framing::Chunked);
    assert_eq!(r.header("x-echo-body-framing"), Some("chunked"));
    assert!(r.body == body);

    let r = c.request(&Request::post("/echo").chunked(b"", &[1]));
    assert_eq!(r.body, b"");
    assert_eq!(o.connections(), 1);
    assert_eq!(o.request_count(), 3);
    let reqs = o.requests();
    assert_eq!(reqs[0].body_len, Some(100_000));
    assert_eq!(reqs[1].body_len, Some(100_000));
    assert_eq!(reqs[2].index_on_conn, 3);
    assert!(o.bytes_received() > 200_000);
}

#[test]
fn origin_serves_its_paths() {
    let o = Origin::start_named("paths");
    let mut c = Client::connect(o.addr());
    let r = c.get("/chunked");
    assert_eq!(r.framing, Framing::Chunked);
    assert!(r.body == origin::chunked_body());
    assert_eq!(
        r.chunked.as_ref().unwrap().extensions,
        vec![";ext=1".to_string()]
    );
    assert_eq!(r.header("x-origin"), Some("paths"));

    let t = Instant::now();
    let r = c.get("/delay/100");
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(r.body_str(), "delayed 100");

    for code in [204u16, 304] {
        let r = c.get(&format!("/status/{code}"));
        assert_eq!(r.status(), code);
        assert_eq!(r.framing, Framing::NoBody);
    }
    let r = c.get("/status/503");
    assert_eq!((r.status(), r.body_str().as_str()), (503, "status 503\n"));

    let r = c.request(&Request::new("HEAD", "/bytes/5000"));
    assert_eq!(r.header("content-length"), Some("5000"));
    assert!(r.body.is_empty());

    let r = c.get("/bytes/300000");
    assert_eq!(r.body.len(), 300_000);
    assert!(Pattern::new().matches(0, &r.body));

    let p = Pattern::new();
    let r = c.request(&Request::post("/sink").body(p.vec(70_000)));
    assert_eq!(r.body_str(), "70000");
    assert_eq!(r.header("x-sink-pattern-ok"), Some("true"));
    let r = c.request(&Request::post("/sink").body(vec![7u8; 10]));
    assert_eq!(r.header("x-sink-pattern-ok"), Some("false"));

    let r = c.get("/hop");
    assert_eq!(r.header("x-resp-hop"), Some("secret"));

    let r = c.get("/close");
    assert_eq!(r.framing, Framing::UntilClose);
    assert!(r.body == origin::close_body());
    assert_eq!(o.connections(), 1);
}

#[test]
fn origin_pipelining_and_upgrade() {
    let o = Origin::start();
    let mut c = Client::connect(o.addr());
    let mut bytes = Request::get("/delay/50").to_bytes();
    bytes.extend(Request::get("/two").to_bytes());
    bytes.extend(Request::post("/three").body("3").to_bytes());
    c.send(&bytes);
    assert_eq!(c.read_response().body_str(), "delayed 50");
    assert_eq!(c.read_response().header("x-echo-target"), Some("/two"));
    assert_eq!(c.read_response().body_str(), "3");

    let mut c = Client::connect(o.addr());
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly",
    );
    let h = c.read_head().unwrap();
    assert_eq!(h.status, 101);
    let mut got = Vec::new();
    while got.len() < 5 {
        got.extend(c.wire().read_some().unwrap());
    }
    assert_eq!(got, b"early");
    c.send(b"more");
    let mut got = Vec::new();
    while got.len() < 4 {
        got.extend(c.wire().read_some().unwrap());
    }
    assert_eq!(got, b"more");
}

#[test]
fn origin_records_unparsable_heads() {
    let o = Origin::start();
    let mut c = Client::connect(o.addr());
    c.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status(), 400);
    assert_eq!(o.request_count(), 1);
    assert!(o.requests()[0].parse_error.is_some());

    let mut c = Client::connect(o.addr());
    c.send(b"GET / HTTP/1.1\r\n");
    c.shutdown_write();
    c.assert_closed(Duration::from_secs(5), "half head");
    assert!(o.wait_until(Duration::from_secs(5), |o| o.request_count() == 2));
}

#[test]
fn tls_client_and_origin_with_sni_and_client_certs() {
    let dir = TestDir::new("harness-tls");
    let ca = Ca::new("harness CA");
    let leaf = ca.issue(&["origin.test", "alt.test"]);
    let (cert_path, key_path) = leaf.write(dir.path(), "origin");
    let ca_path = ca.write_pem(dir.path(), "ca.pem");
    // The PEM files round-trip through PemObject.
    assert_eq!(certs::read_pem_certs(&cert_path), vec![leaf.cert()]);
    assert_eq!(certs::read_pem_certs(&ca_path), vec![ca.cert_der()]);
    let _ = certs::read_pem_key(&key_path);
    assert_eq!(
        certs::dns_names(&leaf.cert_der),
        vec!["origin.test", "alt.test"]
    );
    assert_eq!(
        certs::subject_cn(&leaf.cert_der).as_deref(),
        Some("origin.test")
    );

    let o = Origin::start_tls(
        "tls",
        OriginTls {
            config: tls::server_config(vec![leaf.cert()], leaf.key(), None),
        },
    );
    let mut c = Client::connect_tls(o.addr(), &TlsOptions::new("alt.test", ca.cert_der()));
    assert_eq!(c.peer_certificates()[0], leaf.cert_der);
    let r = c.request(&Request::post("/echo").body("over tls"));
    assert_eq!(r.body_str(), "over tls");
    let rec = o.last_request().unwrap();
    assert_eq!(rec.tls_sni.as_deref(), Some("alt.test"));
    assert!(rec.client_cert.is_none());

    // A client that does not trust the CA fails the handshake.
    let other = Ca::new("other CA");
    assert!(
        Client::try_connect_tls(o.addr(), &TlsOptions::new("alt.test", other.cert_der())).is_err()
    );

    // mTLS: the origin requires a client certificate from `ca`.
    let client_leaf = ca.issue(&["client.test"]);
    let o = Origin::start_tls(
        "mtls",
        OriginTls {
            config: tls::server_config(vec![leaf.cert()], leaf.key(), Some(ca.cert_der())),
        },
    );
    let with_cert = TlsOptions {
        server_name: "origin.test".into(),
        config: tls::client_config(
            &[ca.cert_der()],
            Some((vec![client_leaf.cert()], client_leaf.key())),
        ),
    };
    let mut c = Client::connect_tls(o.addr(), &with_cert);
    assert_eq!(c.get("/x").status(), 200);
    assert_eq!(
        o.last_request().unwrap().client_cert,
        Some(client_leaf.cert())
    );

    // Without a certificate: TLS 1.3 reports the rejection after the
    // handshake, so the request fails either way.
    let failed =
        match Client::try_connect_tls(o.addr(), &TlsOptions::new("origin.test", ca.cert_der())) {
            Err(_) => true,
            Ok(mut c) => {
                c.try_send(&Request::get("/x").to_bytes()).is_err()
                    || c.try_read_response().is_err()
            }
        };
    assert!(
        failed,
        "a client without a certificate got a response from an mTLS origin"
    );
    assert!(o.wait_until(Duration::from_secs(5), |o| !o.tls_errors().is_empty()));
    assert_eq!(o.request_count(), 1);
}

#[test]
fn config_builder_and_parsers() {
    let t = Config::simple("127.0.0.1:9".parse().unwrap())
        .limit("max_head_bytes", "\"64KiB\"")
        .route("public", "/x", "app", &[("timeout", "\"2s\"")])
        .to_toml();
    assert!(
        t.contains("[runtime]\nworkers = 2\ndriver = \"auto\"\n"),
        "{t}"
    );
    assert!(t.contains("[limits]\nmax_head_bytes = \"64KiB\"\n"), "{t}");
    assert!(
        t.contains("[[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9\"]\n"),
        "{t}"
    );
    assert!(
        t.contains("path_prefix = \"/x\"\ncluster = \"app\"\ntimeout = \"2s\"\n"),
        "{t}"
    );

    let l = parse_listener_line("ringway: listener public on 127.0.0.1:4321 (tls)").unwrap();
    assert_eq!(
        (l.name.as_str(), l.addr.port(), l.tls),
        ("public", 4321, true)
    );
    assert!(parse_listener_line("ringway: listener x on nowhere (plain)").is_none());
    assert!(parse_listener_line("ringway: ready").is_none());

    let m = memory_of(std::process::id()).unwrap();
    assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib, "{m:?}");
}
