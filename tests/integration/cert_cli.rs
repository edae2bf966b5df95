//! `ringway cert ca init | issue | inspect`, run as the real binary; the
//! files it writes then used for mutual TLS between rustls peers in this
//! process (the CA as the only root on both sides).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ringway_tests::certs::{read_pem_certs, read_pem_key};
use ringway_tests::dir::TestDir;
use ringway_tests::proxy::{run_ringway, CmdOutput};
use ringway_tests::tls::{client_config, server_config};
use rustls_pki_types::{CertificateDer, ServerName};

fn cert(dir: &TestDir, args: &[&str]) -> CmdOutput {
    let mut all = vec!["cert"];
    all.extend_from_slice(args);
    run_ringway(&all, Some(dir.path()), Duration::from_secs(20))
}

fn ok(out: &CmdOutput) {
    assert_eq!(out.code(), Some(0), "{out}");
}

fn refused(out: &CmdOutput, why: &str) {
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.all().contains(why), "no {why:?} in\n{out}");
    assert!(!out.all().contains("panicked"), "{out}");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A CA in `dir/<name>` and, signed by it, a server certificate
/// (`<name>-server.pem`) and a client certificate (`<name>-client.pem`).
fn mint(dir: &TestDir, name: &str, td: &str) {
    ok(&cert(
        dir,
        &[
            "ca",
            "init",
            "--trust-domain",
            td,
            "--out",
            name,
            "--ttl",
            "48h",
        ],
    ));
    let server_id = format!("spiffe://{td}/ns/prod/sa/orders");
    let client_id = format!("spiffe://{td}/ns/prod/sa/checkout");
    let (sc, sk) = (
        format!("{name}-server.pem"),
        format!("{name}-server-key.pem"),
    );
    let (cc, ck) = (
        format!("{name}-client.pem"),
        format!("{name}-client-key.pem"),
    );
    ok(&cert(
        dir,
        &[
            "issue",
            "--ca-dir",
            name,
            "--spiffe-id",
            &server_id,
            "--dns",
            "orders.prod.svc",
            "--ip",
            "127.0.0.1",
            "--ttl",
            "24h",
            "--server",
            "--out-cert",
            &sc,
            "--out-key",
            &sk,
        ],
    ));
    ok(&cert(
        dir,
        &[
            "issue",
            "--ca-dir",
            name,
            "--spiffe-id",
            &client_id,
            "--ttl",
            "1h",
            "--client",
            "--out-cert",
            &cc,
            "--out-key",
            &ck,
        ],
    ));
}

#[test]
fn cert_cli_ca_issue_inspect() {
    let dir = TestDir::new("cert-cli");
    let out = cert(
        &dir,
        &["ca", "init", "--trust-domain", "example.org", "--out", "ca"],
    );
    ok(&out);
    assert_eq!(mode(&dir.path().join("ca/ca-key.pem")), 0o600);
    let ca_pem = std::fs::read(dir.path().join("ca/ca.pem")).unwrap();
    // Never over an existing CA without --force.
    refused(
        &cert(
            &dir,
            &["ca", "init", "--trust-domain", "example.org", "--out", "ca"],
        ),
        "pass --force",
    );
    assert_eq!(std::fs::read(dir.path().join("ca/ca.pem")).unwrap(), ca_pem);
    refused(
        &cert(
            &dir,
            &["ca", "init", "--trust-domain", "Example.org", "--out", "x"],
        ),
        "uppercase",
    );
    refused(
        &cert(
            &dir,
            &[
                "ca",
                "init",
                "--trust-domain",
                "spiffe://example.org",
                "--out",
                "x",
            ],
        ),
        "scheme",
    );

    let out = cert(
        &dir,
        &[
            "issue",
            "--ca-dir",
            "ca",
            "--spiffe-id",
            "spiffe://example.org/ns/prod/sa/orders",
            "--dns",
            "orders.prod.svc",
            "--ttl",
            "24h",
        ],
    );
    ok(&out);
    assert!(
        out.stdout
            .contains("SPIFFE ID:   spiffe://example.org/ns/prod/sa/orders"),
        "{out}"
    );
    assert!(out.stdout.contains("serial:      "), "{out}");
    assert_eq!(mode(&dir.path().join("orders-key.pem")), 0o600);

    // Identities the CA must not sign.
    for (id, why) in [
        (
            "spiffe://evil.org/ns/prod/sa/orders",
            "the CA signs for trust domain \"example.org\" only",
        ),
        ("spiffe://example.org/ns/../admin", "dot segments"),
        ("spiffe://example.org/ns//x", "empty segment"),
        ("spiffe://example.org/a?b", "query"),
        ("spiffe://example.org:8443/a", "port"),
        ("https://example.org/a", "\"spiffe\""),
    ] {
        refused(
            &cert(
                &dir,
                &[
                    "issue",
                    "--ca-dir",
                    "ca",
                    "--spiffe-id",
                    id,
                    "--out-cert",
                    "bad.pem",
                    "--out-key",
                    "bad-key.pem",
                ],
            ),
            why,
        );
        assert!(!dir.path().join("bad-key.pem").exists());
    }
    refused(
        &cert(
            &dir,
            &[
                "issue",
                "--ca-dir",
                "ca",
                "--spiffe-id",
                "spiffe://example.org/late",
                "--ttl",
                "9000h",
            ],
        ),
        "would outlive the CA",
    );
    refused(
        &cert(
            &dir,
            &[
                "issue",
                "--ca-dir",
                "ca",
                "--spiffe-id",
                "spiffe://example.org/ns/prod/sa/orders",
            ],
        ),
        "pass --force",
    );

    let out = cert(&dir, &["inspect", "orders.pem", "--ca", "ca/ca.pem"]);
    ok(&out);
    for want in [
        "SPIFFE ID:   spiffe://example.org/ns/prod/sa/orders",
        "DNS SANs:    orders.prod.svc",
        "key:         EC P-256",
        "ext. usage:  serverAuth, clientAuth",
        "valid, expires in 23 h",
        "OK    certificate 1 signed by the CA",
        "OK    path as rustls verifies it, for clientAuth",
        "result: OK",
    ] {
        assert!(out.stdout.contains(want), "no {want:?} in\n{out}");
    }

    // Another CA of the same trust domain (so the same name): the
    // signature check fails; of another trust domain: the issuer differs.
    ok(&cert(
        &dir,
        &[
            "ca",
            "init",
            "--trust-domain",
            "example.org",
            "--out",
            "other",
        ],
    ));
    let out = cert(&dir, &["inspect", "orders.pem", "--ca", "other/ca.pem"]);
    refused(
        &out,
        "FAIL  certificate 1 signed by the CA: the signature does not verify",
    );
    assert!(out.stdout.contains("result: FAILED"), "{out}");
    ok(&cert(
        &dir,
        &[
            "ca",
            "init",
            "--trust-domain",
            "other.org",
            "--out",
            "third",
        ],
    ));
    refused(
        &cert(&dir, &["inspect", "orders.pem", "--ca", "third/ca.pem"]),
        "issued by another CA",
    );

    // --chain: leaf then CA in one file; it checks without --ca.
    ok(&cert(
        &dir,
        &[
            "issue",
            "--ca-dir",
            "ca",
            "--spiffe-id",
            "spiffe://example.org/web",
            "--chain",
        ],
    ));
    assert_eq!(read_pem_certs(&dir.path().join("web.pem")).len(), 2);
    let out = cert(&dir, &["inspect", "web.pem"]);
    ok(&out);
    assert!(
        out.stdout.contains("certificate 2 of 2: CA (pathlen 0)"),
        "{out}"
    );

    // --json.
    let out = cert(
        &dir,
        &["inspect", "--json", "orders.pem", "--ca", "other/ca.pem"],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(
        v["certificates"][0]["spiffe_id"],
        "spiffe://example.org/ns/prod/sa/orders"
    );
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["ok"] == false));
}

/// Drives a client and a server connection against each other in memory
/// until both finish the handshake or one fails.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    name: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c = rustls::ClientConnection::new(client, name).unwrap();
    let mut s = rustls::ServerConnection::new(server).unwrap();
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets()
                .map_err(|e| format!("server: {e}"))?;
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()
                .map_err(|e| format!("client: {e}"))?;
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() {
            return Ok(s
                .peer_certificates()
                .map(|p| p.to_vec())
                .unwrap_or_default());
        }
    }
    Err("handshake did not finish".into())
}

#[test]
fn cert_cli_mutual_tls() {
    let dir = TestDir::new("cert-mtls");
    mint(&dir, "a", "example.org");
    mint(&dir, "b", "example.org");
    let p = |f: &str| dir.path().join(f);
    let ca_a = read_pem_certs(&p("a/ca.pem")).remove(0);
    let ca_b = read_pem_certs(&p("b/ca.pem")).remove(0);
    let server = |n: &str, client_ca: &CertificateDer<'static>| {
        server_config(
            read_pem_certs(&p(&format!("{n}-server.pem"))),
            read_pem_key(&p(&format!("{n}-server-key.pem"))),
            Some(client_ca.clone()),
        )
    };
    let client = |n: &str, root: &CertificateDer<'static>| {
        client_config(
            std::slice::from_ref(root),
            Some((
                read_pem_certs(&p(&format!("{n}-client.pem"))),
                read_pem_key(&p(&format!("{n}-client-key.pem"))),
            )),
        )
    };

    // Both sides from CA a: mutual TLS succeeds, and the server sees the
    // client's SPIFFE ID.
    let peer = handshake(client("a", &ca_a), server("a", &ca_a), "orders.prod.svc")
        .expect("mutual TLS with certificates of one CA");
    let (_, x) = x509_parser::parse_x509_certificate(&peer[0]).unwrap();
    let san = x.subject_alternative_name().unwrap().unwrap();
    assert!(
        format!("{:?}", san.value.general_names)
            .contains("spiffe://example.org/ns/prod/sa/checkout"),
        "{:?}",
        san.value.general_names
    );
    // By IP address too (the --ip SAN).
    handshake(client("a", &ca_a), server("a", &ca_a), "127.0.0.1").expect("by IP");

    // A client certificate from CA b: the server refuses it.
    let e = handshake(client("b", &ca_a), server("a", &ca_a), "orders.prod.svc").unwrap_err();
    assert!(
        e.starts_with("server: invalid peer certificate: BadSignature"),
        "{e}"
    );
    // A server certificate from CA b: the client refuses it.
    let e = handshake(client("a", &ca_a), server("b", &ca_a), "orders.prod.svc").unwrap_err();
    assert!(
        e.starts_with("client: invalid peer certificate: BadSignature"),
        "{e}"
    );
    // The wrong name: refused.
    let e = handshake(client("a", &ca_a), server("a", &ca_a), "payments.prod.svc").unwrap_err();
    assert!(
        e.starts_with("client: invalid peer certificate: certificate not valid for name"),
        "{e}"
    );
    // A client-only certificate presented as a server certificate: its
    // extended key usage says no.
    let wrong_use = server_config(
        read_pem_certs(&p("a-client.pem")),
        read_pem_key(&p("a-client-key.pem")),
        None,
    );
    let plain_client = client_config(std::slice::from_ref(&ca_a), None);
    let e = handshake(plain_client, wrong_use, "orders.prod.svc").unwrap_err();
    assert!(e.starts_with("client: invalid peer certificate: certificate does not allow extended key usage for server authentication"), "{e}");
    // Trusting CA b only, CA a's server is refused.
    let e = handshake(client("a", &ca_b), server("a", &ca_a), "orders.prod.svc").unwrap_err();
    assert!(
        e.starts_with("client: invalid peer certificate: BadSignature"),
        "{e}"
    );
}
