//! The two-service mesh demo's sidecar configs (`examples/mesh/orders.toml`
//! and `payments.toml`, run by `./run.sh mesh-demo`), as they are, with
//! certificates minted by `ringway cert` the way the demo mints them and
//! test origins in place of the demo's Python apps: each outbound sidecar
//! reaches the other service by name over mTLS, the callee sees the caller's
//! SPIFFE ID, and everything else is refused before it reaches an app.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use ringway_tests::certs::{read_pem_certs, read_pem_key};
use ringway_tests::client::{Client, Request, TlsOptions};
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::{run_ringway, Proxy};

fn mesh_example(file: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("examples/mesh")
        .join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ringway cert ARGS` in `dir`; must succeed.
fn cert(dir: &TestDir, args: &str) {
    let mut all = vec!["cert"];
    all.extend(args.split_whitespace());
    let out = run_ringway(&all, Some(dir.path()), Duration::from_secs(20));
    assert_eq!(out.code(), Some(0), "ringway cert {args}: {out}");
}

/// `text` with each `(from, to)` replaced; every `from` must occur, so a
/// port changed in the example without this test is noticed.
fn rewrite(text: &str, pairs: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        assert!(out.contains(from), "{from} not in the example");
        out = out.replace(from, to);
    }
    out
}

/// A TLS client straight at a sidecar's inbound listener, as `who`
/// (`certs/NAME` or `other-ca/NAME`, without `.pem`), or with no
/// certificate.
fn tls_as(dir: &TestDir, server_name: &str, who: Option<&str>) -> TlsOptions {
    let ca = read_pem_certs(&dir.join("certs/ca.pem"));
    let client = who.map(|w| {
        (
            read_pem_certs(&dir.join(&format!("{w}.pem"))),
            read_pem_key(&dir.join(&format!("{w}-key.pem"))),
        )
    });
    TlsOptions {
        server_name: server_name.into(),
        config: ringway_tests::tls::client_config(&ca, client),
    }
}

/// One GET over TLS: the status, or why there was none.
fn tls_get(addr: SocketAddr, tls: &TlsOptions, path: &str) -> Result<u16, String> {
    let mut c = Client::try_connect_tls(addr, tls).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Duration::from_secs(5));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", tls.server_name);
    c.try_send(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    c.try_read_response()
        .map(|r| r.status())
        .map_err(|e| format!("read: {e}"))
}

/// The single `X-Forwarded-Client-Cert` of the origin's last request.
fn last_xfcc(app: &Origin) -> String {
    let r = app.last_request().expect("a request reached the app");
    let all = r.headers_all("x-forwarded-client-cert");
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].to_string()
}

#[test]
fn mesh_demo_sidecars_call_each_other_by_name_with_identities_checked() {
    let dir = TestDir::new("mesh-demo");
    // The certificates `./run.sh mesh-demo` mints.
    cert(&dir, "ca init --trust-domain mesh.local --out certs");
    for svc in ["orders", "payments"] {
        cert(
            &dir,
            &format!(
                "issue --ca-dir certs --spiffe-id spiffe://mesh.local/{svc} --dns {svc}.mesh.local \
                 --out-cert certs/{svc}.pem --out-key certs/{svc}-key.pem"
            ),
        );
    }
    cert(
        &dir,
        "issue --ca-dir certs --spiffe-id spiffe://mesh.local/intruder --client \
         --out-cert certs/intruder.pem --out-key certs/intruder-key.pem",
    );
    cert(&dir, "ca init --trust-domain mesh.local --out other-ca");
    cert(
        &dir,
        "issue --ca-dir other-ca --spiffe-id spiffe://mesh.local/orders --client \
         --out-cert other-ca/orders.pem --out-key other-ca/orders-key.pem",
    );

    // As they are (the demo's fixed ports), beside those certificates,
    // both files pass `ringway check`.
    for file in ["orders.toml", "payments.toml"] {
        let path = dir.write(file, mesh_example(file));
        let out = run_ringway(
            &["check", "-c", path.to_str().unwrap()],
            None,
            Duration::from_secs(10),
        );
        assert_eq!(out.code(), Some(0), "{file}: {out}");
    }

    // The inbound ports are in both files (one sidecar's cluster is the
    // other's inbound listener), so they must be known before either
    // starts; the rest go to port 0.
    let orders_app = Origin::start_named("orders-app");
    let payments_app = Origin::start_named("payments-app");
    let (orders_in, payments_in) = (free_port(), free_port());
    // Each service's own ports are 24xxx (orders) or 25xxx (payments).
    let ports = |toml: &str, own: &str, app: &Origin| {
        rewrite(
            toml,
            &[
                ("127.0.0.1:24443", format!("127.0.0.1:{orders_in}")),
                ("127.0.0.1:25443", format!("127.0.0.1:{payments_in}")),
                (format!("127.0.0.1:{own}001").as_str(), "127.0.0.1:0".into()),
                (format!("127.0.0.1:{own}900").as_str(), "127.0.0.1:0".into()),
                (
                    format!("127.0.0.1:{own}080").as_str(),
                    app.addr().to_string(),
                ),
            ],
        )
    };
    let orders_toml = ports(&mesh_example("orders.toml"), "24", &orders_app);
    let payments_toml = ports(&mesh_example("payments.toml"), "25", &payments_app);
    let orders = Proxy::start_toml(&dir, &orders_toml, &[]);
    let payments = Proxy::start_toml(&dir, &payments_toml, &[]);

    // orders → payments by name, through both sidecars.
    let r = Client::connect(orders.addr("outbound"))
        .request(&Request::get("/payments/charge?order=42").host("payments"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-origin"), Some("payments-app"), "{r}");
    let xfcc = last_xfcc(&payments_app);
    assert!(xfcc.starts_with("Hash="), "{xfcc}");
    assert!(xfcc.contains(";URI=spiffe://mesh.local/orders"), "{xfcc}");
    // payments → orders.
    let r = Client::connect(payments.addr("outbound"))
        .request(&Request::get("/orders/42").host("orders"));
    assert_eq!(r.status(), 200, "{r}");
    assert_eq!(r.header("x-origin"), Some("orders-app"), "{r}");
    let xfcc = last_xfcc(&orders_app);
    assert!(xfcc.contains(";URI=spiffe://mesh.local/payments"), "{xfcc}");
    assert_eq!(
        (orders_app.request_count(), payments_app.request_count()),
        (1, 1)
    );

    // Only the payments API is reachable: another path has no route on
    // payments' inbound listener (404 there), and an unknown service name
    // has none on the outbound listener; neither reaches an app.
    let r =
        Client::connect(orders.addr("outbound")).request(&Request::get("/admin").host("payments"));
    assert_eq!(r.status(), 404, "{r}");
    let r = Client::connect(orders.addr("outbound"))
        .request(&Request::get("/payments/charge").host("billing"));
    assert_eq!(r.status(), 404, "{r}");
    assert_eq!(payments_app.request_count(), 1);

    // Straight at payments' inbound sidecar.
    let inbound = payments.addr("inbound");
    let server = "payments.mesh.local";
    let got = tls_get(inbound, &tls_as(&dir, server, None), "/payments/charge");
    assert!(got.is_err(), "no certificate: {got:?}");
    let got = tls_get(
        inbound,
        &tls_as(&dir, server, Some("other-ca/orders")),
        "/payments/charge",
    );
    assert!(got.is_err(), "another CA's orders: {got:?}");
    let got = tls_get(
        inbound,
        &tls_as(&dir, server, Some("certs/intruder")),
        "/payments/charge",
    );
    assert_eq!(got, Ok(403), "the intruder");
    assert_eq!(
        payments_app.request_count(),
        1,
        "a refused request reached the payments app"
    );
    // The orders certificate itself is let in (it is the identity that
    // counts, not the address).
    let got = tls_get(
        inbound,
        &tls_as(&dir, server, Some("certs/orders")),
        "/payments/charge",
    );
    assert_eq!(got, Ok(200));
    assert_eq!(payments_app.request_count(), 2);

    // The outbound side checks the server's identity: a sidecar whose
    // `payments` cluster leads to the orders sidecar (a server presenting
    // spiffe://mesh.local/orders) gets 502, the caller refusing the
    // handshake, and nothing reaches orders. The control: the same sidecar
    // expecting spiffe://mesh.local/orders gets through the handshake and
    // meets orders' authz (403, orders does not let itself in).
    let misrouted = rewrite(
        &orders_toml,
        &[
            (
                format!("endpoints = [\"127.0.0.1:{payments_in}\"]").as_str(),
                format!("endpoints = [\"127.0.0.1:{orders_in}\"]"),
            ),
            (
                format!("address = \"127.0.0.1:{orders_in}\"").as_str(),
                "address = \"127.0.0.1:0\"".into(),
            ),
        ],
    );
    let control = rewrite(
        &misrouted,
        &[(
            "spiffe_id = \"spiffe://mesh.local/payments\"",
            "spiffe_id = \"spiffe://mesh.local/orders\"".into(),
        )],
    );
    let before = orders_app.request_count();
    for (toml, want) in [(&misrouted, 502), (&control, 403)] {
        let p = Proxy::start_toml(&dir, toml, &[]);
        let r = Client::connect(p.addr("outbound"))
            .request(&Request::get("/orders/42").host("payments"));
        assert_eq!(r.status(), want, "{r}");
    }
    assert_eq!(orders_app.request_count(), before);
}
