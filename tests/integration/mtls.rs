//! Inbound mTLS with SPIFFE identities, written against the attacks first:
//! a missing client certificate, one from an unknown CA, an expired one, a
//! not-yet-valid one, a wrong trust domain, a spoofed
//! `X-Forwarded-Client-Cert`: each is refused (handshake failure or 403) and
//! never reaches the origin. The accepted client's identity reaches the
//! origin in `X-Forwarded-Client-Cert` and the access log.

use std::net::SocketAddr;
use std::time::Duration;

use ringway_tests::certs::{Ca, Leaf};
use ringway_tests::client::{Client, TlsOptions};
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;

const SERVER_NAME: &str = "mesh.test";

struct Mesh {
    ca: Ca,
    proxy: Proxy,
    origin: Origin,
    _dir: TestDir,
}

/// An mTLS listener (`client_auth` as given) in front of one origin; route
/// `/admin` only for the ops service account, `/` for the trust domain.
fn mesh(label: &str, client_auth: &str) -> Mesh {
    let dir = TestDir::new(label);
    let ca = Ca::new("mesh CA");
    let ca_path = ca.write_pem(dir.path(), "ca.pem");
    let (cert, key) = ca.issue(&[SERVER_NAME]).write(dir.path(), "server");
    let origin = Origin::start_named("app");
    let tls = format!(
        r#"{{ cert = "{}", key = "{}", client_ca = ["{}"], client_auth = "{client_auth}" }}"#,
        cert.display(),
        key.display(),
        ca_path.display()
    );
    let config = Config::new()
        .runtime("workers", "1")
        .listener_with("mesh", &[("tls", &tls)])
        .route(
            "mesh",
            "/admin",
            "app",
            &[(
                "filters",
                r#"[{ type = "authz", allow_ids = ["spiffe://example.org/ns/ops/sa/admin"] }]"#,
            )],
        )
        .route(
            "mesh",
            "/",
            "app",
            &[(
                "filters",
                r#"[{ type = "authz", allow_trust_domains = ["example.org"], deny_prefixes = ["spiffe://example.org/ns/batch/"] }]"#,
            )],
        )
        .cluster("app", &[origin.addr()], &[])
        .section("access_log", "path", "\"access.log\"")
        .section("access_log", "format", "\"json\"");
    let proxy = Proxy::start(&dir, &config);
    Mesh {
        ca,
        proxy,
        origin,
        _dir: dir,
    }
}

fn tls_as(ca: &Ca, client: Option<&Leaf>) -> TlsOptions {
    TlsOptions {
        server_name: SERVER_NAME.into(),
        config: ringway_tests::tls::client_config(
            &[ca.cert_der()],
            client.map(|l| (vec![l.cert()], l.key())),
        ),
    }
}

/// One GET: the status, or why there was none (handshake refused, closed).
fn get(
    addr: SocketAddr,
    tls: &TlsOptions,
    path: &str,
    extra: &str,
) -> Result<(u16, String), String> {
    let mut c = Client::try_connect_tls(addr, tls).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Duration::from_secs(5));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\n{extra}\r\n");
    c.try_send(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let r = c.try_read_response().map_err(|e| format!("read: {e}"))?;
    Ok((r.status(), String::from_utf8_lossy(&r.body).to_string()))
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

#[test]
fn required_client_certificates_refuse_every_forgery() {
    let m = mesh("mtls-required", "required");
    let addr = m.proxy.addr("mesh");
    let now = time::OffsetDateTime::now_utc();
    let good =
        m.ca.issue_spiffe("spiffe://example.org/ns/prod/sa/web", None);
    let other_ca = Ca::new("someone else's CA");
    let refused: Vec<(&str, TlsOptions)> = vec![
        ("no certificate", tls_as(&m.ca, None)),
        (
            "unknown CA",
            tls_as(
                &m.ca,
                Some(&other_ca.issue_spiffe("spiffe://example.org/ns/prod/sa/web", None)),
            ),
        ),
        (
            "expired",
            tls_as(
                &m.ca,
                Some(&m.ca.issue_spiffe(
                    "spiffe://example.org/ns/prod/sa/web",
                    Some((now - days(10), now - days(1))),
                )),
            ),
        ),
        (
            "not yet valid",
            tls_as(
                &m.ca,
                Some(&m.ca.issue_spiffe(
                    "spiffe://example.org/ns/prod/sa/web",
                    Some((now + days(1), now + days(10))),
                )),
            ),
        ),
    ];
    for (what, tls) in &refused {
        let got = get(addr, tls, "/x", "");
        assert!(
            got.is_err(),
            "{what}: expected a refused handshake, got {got:?}"
        );
    }
    // Verified, but not allowed by the route's authz filter: 403.
    for (id, path) in [
        ("spiffe://evil.org/ns/prod/sa/web", "/x"),
        ("spiffe://example.org.evil.org/ns/prod/sa/web", "/x"),
        ("spiffe://example.org/ns/batch/sa/job", "/x"),
        ("spiffe://example.org/ns/prod/sa/web", "/admin/users"),
    ] {
        let leaf = m.ca.issue_spiffe(id, None);
        let got = get(addr, &tls_as(&m.ca, Some(&leaf)), path, "");
        assert_eq!(got.as_ref().map(|r| r.0), Ok(403), "{id} {path}: {got:?}");
    }
    assert_eq!(
        m.origin.request_count(),
        0,
        "a refused request reached the origin"
    );

    // The good one passes; the origin sees ringway's XFCC, not the spoof.
    let got = get(
        addr,
        &tls_as(&m.ca, Some(&good)),
        "/x",
        "X-Forwarded-Client-Cert: Hash=00;URI=spiffe://example.org/ns/ops/sa/admin\r\n",
    );
    assert_eq!(got.as_ref().map(|r| r.0), Ok(200), "{got:?}");
    let r = m.origin.last_request().unwrap();
    let xfcc = r.headers_all("x-forwarded-client-cert");
    assert_eq!(xfcc.len(), 1, "{xfcc:?}");
    assert!(xfcc[0].starts_with("Hash="), "{xfcc:?}");
    assert!(
        xfcc[0].contains(";URI=spiffe://example.org/ns/prod/sa/web"),
        "{xfcc:?}"
    );
    assert!(!xfcc[0].contains("ops/sa/admin"), "{xfcc:?}");
    // The admin identity reaches /admin.
    let admin =
        m.ca.issue_spiffe("spiffe://example.org/ns/ops/sa/admin", None);
    let got = get(addr, &tls_as(&m.ca, Some(&admin)), "/admin/users", "");
    assert_eq!(got.as_ref().map(|r| r.0), Ok(200), "{got:?}");
    assert_eq!(m.origin.request_count(), 2);

    // The access log names the identity of each request.
    let log_path = m._dir.join("access.log");
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("ns/ops/sa/admin") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        log.contains("\"client_identity\":\"spiffe://example.org/ns/prod/sa/web\""),
        "{log}"
    );
}

#[test]
fn optional_client_certificates_leave_the_decision_to_authz() {
    let m = mesh("mtls-optional", "optional");
    let addr = m.proxy.addr("mesh");
    // No certificate: the handshake succeeds, the authz filter says 403.
    let got = get(
        addr,
        &tls_as(&m.ca, None),
        "/x",
        "X-Forwarded-Client-Cert: URI=spiffe://example.org/ns/prod/sa/web\r\n",
    );
    assert_eq!(got.as_ref().map(|r| r.0), Ok(403), "{got:?}");
    // A certificate from another CA is still refused in the handshake.
    let other = Ca::new("other").issue_spiffe("spiffe://example.org/ns/prod/sa/web", None);
    assert!(get(addr, &tls_as(&m.ca, Some(&other)), "/x", "").is_err());
    assert_eq!(m.origin.request_count(), 0);
    let good =
        m.ca.issue_spiffe("spiffe://example.org/ns/prod/sa/web", None);
    let got = get(addr, &tls_as(&m.ca, Some(&good)), "/x", "");
    assert_eq!(got.as_ref().map(|r| r.0), Ok(200), "{got:?}");
}

#[test]
fn spoofed_client_cert_header_is_stripped_on_plain_listeners() {
    let origin = Origin::start();
    let dir = TestDir::new("xfcc-plain");
    let proxy = Proxy::start(&dir, &Config::simple(origin.addr()));
    let mut c = Client::connect(proxy.addr("public"));
    c.send(b"GET /p HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: URI=spiffe://example.org/ns/ops/sa/admin\r\n\r\n");
    assert_eq!(c.read_response().status(), 200);
    let r = origin.last_request().unwrap();
    assert!(!r.has_header("x-forwarded-client-cert"), "{}", r.raw_str());
}

#[test]
fn a_replaced_client_ca_bundle_applies_without_a_restart() {
    let dir = TestDir::new("mtls-rotate");
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let ca_path = old_ca.write_pem(dir.path(), "client-ca.pem");
    let server_ca = Ca::new("server CA");
    let (cert, key) = server_ca.issue(&[SERVER_NAME]).write(dir.path(), "server");
    let origin = Origin::start();
    let tls = format!(
        r#"{{ cert = "{}", key = "{}", client_ca = ["{}"] }}"#,
        cert.display(),
        key.display(),
        ca_path.display()
    );
    let config = Config::new()
        .listener_with("mesh", &[("tls", &tls)])
        .route("mesh", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[])
        .section("reload", "interval", "\"100ms\"");
    let proxy = Proxy::start(&dir, &config);
    let addr = proxy.addr("mesh");
    let as_client = |ca: &Ca| {
        let leaf = ca.issue_spiffe("spiffe://example.org/ns/prod/sa/web", None);
        get(addr, &tls_as(&server_ca, Some(&leaf)), "/r", "")
    };
    assert_eq!(as_client(&old_ca).map(|r| r.0), Ok(200));
    assert!(as_client(&new_ca).is_err());
    // The bundle is replaced (write, then rename over it).
    std::fs::write(dir.join("client-ca.pem.tmp"), new_ca.cert_pem()).unwrap();
    std::fs::rename(dir.join("client-ca.pem.tmp"), &ca_path).unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while as_client(&new_ca).is_err() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Applied like a reload: each worker takes it within a tick; after the
    // first success, a tick more for every worker.
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..6 {
        let got = as_client(&new_ca).map(|r| r.0);
        assert_eq!(got, Ok(200), "the new CA was not applied");
        assert!(as_client(&old_ca).is_err(), "the old CA still verifies");
    }
}

#[test]
fn default_deny_listener_refuses_routes_without_authz() {
    let dir = TestDir::new("mtls-default-deny");
    let ca = Ca::new("mesh CA");
    let ca_path = ca.write_pem(dir.path(), "ca.pem");
    let (cert, key) = ca.issue(&[SERVER_NAME]).write(dir.path(), "server");
    let origin = Origin::start();
    let tls = format!(
        r#"{{ cert = "{}", key = "{}", client_ca = ["{}"] }}"#,
        cert.display(),
        key.display(),
        ca_path.display()
    );
    let config = Config::new()
        .listener_with("mesh", &[("tls", &tls), ("default_deny", "true")])
        .route(
            "mesh",
            "/guarded",
            "app",
            &[(
                "filters",
                r#"[{ type = "authz", allow_trust_domains = ["example.org"] }]"#,
            )],
        )
        .route("mesh", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    let proxy = Proxy::start(&dir, &config);
    let leaf = ca.issue_spiffe("spiffe://example.org/ns/prod/sa/web", None);
    let tls = tls_as(&ca, Some(&leaf));
    let addr = proxy.addr("mesh");
    // A valid identity, but the route has no authz filter: 403.
    assert_eq!(get(addr, &tls, "/open", "").map(|r| r.0), Ok(403));
    assert_eq!(origin.request_count(), 0);
    // The guarded route lets it through.
    assert_eq!(get(addr, &tls, "/guarded/x", "").map(|r| r.0), Ok(200));
    assert_eq!(origin.request_count(), 1);
}

/// An upstream TLS origin whose certificate names `spiffe_id`.
fn spiffe_origin(ca: &Ca, spiffe_id: &str) -> Origin {
    let leaf = ca.issue_spiffe(spiffe_id, None);
    let config = ringway_tests::tls::server_config(vec![leaf.cert()], leaf.key(), None);
    Origin::start_tls("spiffe-origin", ringway_tests::origin::OriginTls { config })
}

#[test]
fn outbound_tls_verifies_the_servers_spiffe_id() {
    let ca = Ca::new("mesh CA");
    let other_ca = Ca::new("other CA");
    let good = spiffe_origin(&ca, "spiffe://example.org/ns/prod/sa/orders");
    let wrong_id = spiffe_origin(&ca, "spiffe://example.org/ns/prod/sa/billing");
    let wrong_td = spiffe_origin(&ca, "spiffe://evil.org/ns/prod/sa/orders");
    let wrong_ca = spiffe_origin(&other_ca, "spiffe://example.org/ns/prod/sa/orders");
    let dir = TestDir::new("spiffe-upstream");
    let ca_path = ca.write_pem(dir.path(), "ca.pem");
    let tls = |check: &str| {
        format!(
            r#"{{ ca = "{}", server_name = "orders.internal", {check} }}"#,
            ca_path.display()
        )
    };
    let id = tls(r#"spiffe_id = "spiffe://example.org/ns/prod/sa/orders""#);
    let td = tls(r#"spiffe_trust_domain = "example.org""#);
    let mut config = Config::new().listener("public");
    let cases = [
        ("good", &good, &id, 200),
        ("wrong-id", &wrong_id, &id, 502),
        ("td-any-id", &wrong_id, &td, 200),
        ("wrong-td", &wrong_td, &td, 502),
        ("wrong-ca", &wrong_ca, &id, 502),
    ];
    for (name, origin, tls, _) in &cases {
        config = config
            .route("public", &format!("/{name}/"), name, &[])
            .cluster(name, &[origin.addr()], &[("tls", tls.as_str())]);
    }
    let proxy = Proxy::start(&dir, &config);
    for (name, origin, _, want) in &cases {
        let r = Client::connect(proxy.addr("public")).get(&format!("/{name}/x"));
        assert_eq!(r.status(), *want, "{name}: {r}");
        let reached = origin.request_count();
        assert_eq!(
            reached,
            usize::from(*want == 200),
            "{name}: reached the origin {reached} times"
        );
    }
    // The log says why: the SPIFFE check, not a bare "io error".
    assert!(
        proxy.wait_stderr_contains(
            r#"server SPIFFE ID \"spiffe://example.org/ns/prod/sa/billing\" is not the expected"#,
            Duration::from_secs(5)
        ),
        "{}",
        proxy.stderr()
    );
}

#[test]
fn certificate_rotation_under_load_loses_no_request() {
    let Some(ringload) = ringway_tests::proxy::ringload_bin() else {
        println!("SKIP certificate_rotation_under_load_loses_no_request: ringload not built");
        return;
    };
    let dir = TestDir::new("cert-rotation");
    let ca = Ca::new("rotation CA");
    let ca_path = ca.write_pem(dir.path(), "ca.pem");
    let first = ca.issue(&[SERVER_NAME, "127.0.0.1"]);
    let (cert, key) = first.write(dir.path(), "server");
    let origin = Origin::start();
    let tls = format!(
        r#"{{ cert = "{}", key = "{}" }}"#,
        cert.display(),
        key.display()
    );
    let config = Config::new()
        .runtime("workers", "2")
        .listener_with("secure", &[("tls", &tls)])
        .route("secure", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[])
        .section("reload", "interval", "\"100ms\"");
    let proxy = Proxy::start(&dir, &config);
    let addr = proxy.addr("secure");
    let url = format!("https://{addr}/r");
    let load = std::process::Command::new(ringload)
        .args([
            "run", "-c", "8", "-t", "1", "-R", "1000", "-d", "10s", "--json",
        ])
        .arg("--cacert")
        .arg(&ca_path)
        .arg(&url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ringload");
    // Five rotations: the new pair written beside, then renamed over.
    let mut last = first;
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(1500));
        let next = ca.issue(&[SERVER_NAME, "127.0.0.1"]);
        let (c, k) = next.write(dir.path(), &format!("next-{i}"));
        std::fs::rename(&k, &key).unwrap();
        std::fs::rename(&c, &cert).unwrap();
        last = next;
    }
    let out = load.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let requests = r["requests"].as_u64().unwrap_or(0);
    assert!(requests > 1000, "{r}");
    assert_eq!(r["errors_total"], 0, "{r}");
    assert_eq!(r["status_counts"]["200"].as_u64(), Some(requests), "{r}");
    // A new connection gets the last certificate.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while std::time::Instant::now() < until {
        let c = Client::connect_tls(addr, &TlsOptions::new(SERVER_NAME, ca.cert_der()));
        seen = c.peer_certificates();
        if seen.first() == Some(&last.cert()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        seen.first(),
        Some(&last.cert()),
        "new connections still get an old certificate"
    );
    println!("certificate rotated 5 times under load: {requests} requests, none failed");
}
