//! TLS: termination with SNI-selected certificates, upstream TLS with CA
//! verification, mutual TLS to the origin.

use ringway_tests::certs::{self, Ca};
use ringway_tests::client::{Client, Request, TlsOptions};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::{Origin, OriginTls};
use ringway_tests::proxy::Proxy;
use ringway_tests::tls;

#[test]
fn tls_termination_picks_the_certificate_by_sni() {
    let dir = TestDir::new("tls-sni");
    let ca = Ca::new("ringway test CA");
    let default = ca.issue(&["default.test"]);
    let a = ca.issue(&["a.test"]);
    let b = ca.issue(&["b.test"]);
    default.write(dir.path(), "srv");
    a.write(dir.path(), "a");
    b.write(dir.path(), "b");
    let origin = Origin::start();
    let tls_table = r#"{ cert = "srv.pem", key = "srv.key", sni = [{ names = ["a.test"], cert = "a.pem", key = "a.key" }, { names = ["b.test"], cert = "b.pem", key = "b.key" }] }"#;
    let config = Config::new()
        .listener_with("secure", &[("tls", tls_table)])
        .route("secure", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let l = proxy.listener("secure");
    assert!(l.tls, "listener line should say (tls): {l:?}");

    for (name, leaf) in [("a.test", &a), ("b.test", &b), ("default.test", &default)] {
        let mut c = Client::connect_tls(l.addr, &TlsOptions::new(name, ca.cert_der()));
        let peer = c.peer_certificates();
        assert!(!peer.is_empty(), "{name}: no peer certificate");
        assert_eq!(
            certs::dns_names(&peer[0]),
            vec![name.to_string()],
            "{name}: SANs of the served certificate"
        );
        assert_eq!(
            certs::subject_cn(&peer[0]).as_deref(),
            Some(name),
            "{name}: subject CN"
        );
        assert!(
            peer[0] == leaf.cert_der,
            "{name}: not the configured certificate"
        );
        let r = c.request(&Request::get("/over-tls").host(name));
        assert_eq!(r.status(), 200, "{name}: {r}");
        let rec = origin.last_request().unwrap();
        assert_eq!(
            rec.header("x-forwarded-proto"),
            Some("https"),
            "{name}: {}",
            rec.raw_str()
        );
        // Keep-alive over TLS.
        let r = c.request(&Request::post("/again").host(name).body("tls body"));
        assert_eq!(r.body_str(), "tls body", "{name}: {r}");
    }

    // A client that does not trust the CA fails.
    let other = Ca::new("other CA");
    assert!(Client::try_connect_tls(l.addr, &TlsOptions::new("a.test", other.cert_der())).is_err());
    // Plain HTTP on the TLS port gets no HTTP 200.
    let mut c = Client::connect(l.addr);
    let _ = c.try_send(&Request::get("/plain").to_bytes());
    if let Ok(r) = c.try_read_response() {
        assert_ne!(r.status(), 200, "plain HTTP served on a TLS listener: {r}");
    }
}

struct UpstreamTls {
    proxy: Proxy,
    origin: Origin,
    client_leaf: certs::Leaf,
    _dir: TestDir,
}

/// A TLS origin (certificate for origin.test from `ca`, client certificates
/// required when `mtls`) behind a proxy whose routes are:
/// `/mtls` → cluster with ca + client cert, `/nocert` → ca only,
/// `/wrongca` → another CA, `/wrongname` → server_name other.test,
/// `/` → ca only.
fn upstream_tls(label: &str, mtls: bool) -> UpstreamTls {
    let dir = TestDir::new(label);
    let ca = Ca::new("ringway upstream CA");
    let other_ca = Ca::new("some other CA");
    let server = ca.issue(&["origin.test"]);
    let client_leaf = ca.issue(&["ringway-client.test"]);
    ca.write_pem(dir.path(), "ca.pem");
    other_ca.write_pem(dir.path(), "other-ca.pem");
    client_leaf.write(dir.path(), "client");
    let origin = Origin::start_tls(
        "tls-origin",
        OriginTls {
            config: tls::server_config(
                vec![server.cert()],
                server.key(),
                mtls.then(|| ca.cert_der()),
            ),
        },
    );
    let eps = [origin.addr()];
    let config = Config::new()
        .listener("public")
        .route("public", "/mtls", "mtls", &[])
        .route("public", "/nocert", "nocert", &[])
        .route("public", "/wrongca", "wrongca", &[])
        .route("public", "/wrongname", "wrongname", &[])
        .route("public", "/", "nocert", &[])
        .cluster(
            "mtls",
            &eps,
            &[("tls", r#"{ ca = "ca.pem", server_name = "origin.test", cert = "client.pem", key = "client.key" }"#)],
        )
        .cluster("nocert", &eps, &[("tls", r#"{ ca = "ca.pem", server_name = "origin.test" }"#)])
        .cluster("wrongca", &eps, &[("tls", r#"{ ca = "other-ca.pem", server_name = "origin.test" }"#)])
        .cluster("wrongname", &eps, &[("tls", r#"{ ca = "ca.pem", server_name = "other.test" }"#)]);
    let proxy = Proxy::start(&dir, &config);
    UpstreamTls {
        proxy,
        origin,
        client_leaf,
        _dir: dir,
    }
}

#[test]
fn upstream_tls_verifies_the_origin() {
    let u = upstream_tls("upstream-tls", false);
    let addr = u.proxy.addr("public");
    let mut c = Client::connect(addr);
    for i in 0..3 {
        let r = c.request(&Request::post(&format!("/tls/{i}")).body("to a TLS origin"));
        assert_eq!(r.status(), 200, "{r}");
        assert_eq!(r.body_str(), "to a TLS origin");
    }
    let rec = u.origin.last_request().unwrap();
    assert_eq!(
        rec.tls_sni.as_deref(),
        Some("origin.test"),
        "SNI sent upstream"
    );
    assert!(rec.client_cert.is_none());

    let before = u.origin.request_count();
    for path in ["/wrongca/x", "/wrongname/x"] {
        let r = Client::connect(addr).get(path);
        assert_eq!(
            r.status(),
            502,
            "{path}: an origin certificate that must not verify: {r}"
        );
    }
    assert_eq!(
        u.origin.request_count(),
        before,
        "a request reached an unverified origin"
    );
}

#[test]
fn upstream_mtls_presents_the_client_certificate() {
    let u = upstream_tls("upstream-mtls", true);
    let addr = u.proxy.addr("public");
    let r = Client::connect(addr).get("/mtls/x");
    assert_eq!(r.status(), 200, "{r}");
    let rec = u.origin.last_request().unwrap();
    assert_eq!(
        rec.client_cert,
        Some(u.client_leaf.cert()),
        "the origin saw another client certificate"
    );

    // Without a client certificate the origin refuses the handshake.
    let r = Client::connect(addr).get("/nocert/x");
    assert_eq!(r.status(), 502, "{r}");
    assert_eq!(u.origin.request_count(), 1);
    // The origin's thread records the failed handshake after its alert
    // went out, which may be after the proxy's 502 arrived here.
    assert!(
        u.origin
            .wait_until(std::time::Duration::from_secs(5), |o| !o
                .tls_errors()
                .is_empty()),
        "the origin recorded no failed handshake"
    );
}

/// Filters see the TLS facts of the connection: `$tls_sni` and
/// `$tls_version` in a header template reach the origin.
#[test]
fn filters_see_sni_and_tls_version() {
    let dir = TestDir::new("tls-facts");
    let ca = Ca::new("ringway test CA");
    ca.issue(&["facts.test"]).write(dir.path(), "srv");
    let origin = Origin::start();
    let config = Config::new()
        .listener_with("secure", &[("tls", r#"{ cert = "srv.pem", key = "srv.key" }"#)])
        .route(
            "secure",
            "/",
            "app",
            &[(
                "filters",
                r#"[{ type = "headers", request_set = { "x-sni" = "$tls_sni", "x-tls" = "$tls_version" } }]"#,
            )],
        )
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let addr = proxy.addr("secure");
    let mut c = Client::connect_tls(addr, &TlsOptions::new("facts.test", ca.cert_der()));
    let r = c.request(&Request::get("/").host("facts.test"));
    assert_eq!(r.status(), 200, "{r}");
    let rec = origin.last_request().unwrap();
    assert_eq!(rec.header("x-sni"), Some("facts.test"), "{}", rec.raw_str());
    assert_eq!(rec.header("x-tls"), Some("TLSv1.3"), "{}", rec.raw_str());
}

/// A cluster's client certificate replaced on disk: new upstream
/// connections present the new one, without a signal; pooled connections
/// made with the old one are not reused.
#[test]
fn upstream_client_certificate_rotation_applies_without_a_signal() {
    let dir = TestDir::new("upstream-cert-rotation");
    let ca = Ca::new("ringway upstream CA");
    let server = ca.issue(&["origin.test"]);
    let first = ca.issue(&["ringway-client.test"]);
    ca.write_pem(dir.path(), "ca.pem");
    first.write(dir.path(), "client");
    let origin = Origin::start_tls(
        "tls-origin",
        OriginTls {
            config: tls::server_config(vec![server.cert()], server.key(), Some(ca.cert_der())),
        },
    );
    let config = Config::new()
        .listener("public")
        .route("public", "/", "mtls", &[])
        .cluster(
            "mtls",
            &[origin.addr()],
            &[("tls", r#"{ ca = "ca.pem", server_name = "origin.test", cert = "client.pem", key = "client.key" }"#)],
        )
        .section("reload", "interval", "\"100ms\"");
    let proxy = Proxy::start(&dir, &config);
    let mut c = Client::connect(proxy.addr("public"));
    assert_eq!(c.get("/a").status(), 200);
    assert_eq!(
        origin.last_request().unwrap().client_cert,
        Some(first.cert())
    );
    // Replace the pair (written beside, renamed over).
    let next = ca.issue(&["ringway-client.test"]);
    let (cp, kp) = next.write(dir.path(), "next");
    std::fs::rename(&kp, dir.join("client.key")).unwrap();
    std::fs::rename(&cp, dir.join("client.pem")).unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = None;
    while std::time::Instant::now() < until {
        assert_eq!(c.get("/b").status(), 200);
        seen = origin.last_request().unwrap().client_cert;
        if seen == Some(next.cert()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        seen,
        Some(next.cert()),
        "the origin still sees the old client certificate"
    );
}
