//! Mutual TLS: `run --client-cert/--client-key` presents a client
//! certificate to a server that requires one (a small rustls server on a
//! thread, verifying against the test CA); without it the server refuses
//! every handshake. And `serve --hang` reads a request and never answers.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{run_json, Serve, TempDir};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ca.pem; server.pem/server-key.pem (localhost); client.pem/client-key.pem
/// (a SPIFFE URI SAN, clientAuth).
fn make_pki(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ringload mTLS test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), key.serialize_pem()).unwrap();

    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.subject_alt_names = vec![SanType::URI(
        "spiffe://test.local/ringload".try_into().unwrap(),
    )];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = client.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("client.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("client-key.pem"), key.serialize_pem()).unwrap();
}

/// An HTTPS server on a thread that requires a client certificate from the
/// CA and answers every request `200 ok`. Lives until the process exits.
fn mtls_server(dir: &Path) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let conn = ServerConnection::new(config).unwrap();
                let mut tls = StreamOwned::new(conn, s);
                answer_all(&mut tls);
            });
        }
    });
    addr
}

/// Answer each request head with a 2-byte body, until the peer closes.
fn answer_all<S: Read + Write>(s: &mut S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .and_then(|_| s.flush())
                .is_err()
            {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

#[test]
fn client_certificate_is_presented() {
    let dir = TempDir::new("mtls");
    make_pki(&dir.0);
    let p = |f: &str| dir.0.join(f).to_str().unwrap().to_string();
    let addr = mtls_server(&dir.0);
    let url = format!("https://localhost:{}/", addr.port());
    let base = ["-c", "2", "-t", "1", "--cacert"];

    // Keep-alive, then a new connection (full handshake) per request.
    for extra in [&[][..], &["--no-keepalive", "--no-tls-resumption"][..]] {
        let mut args = vec![url.as_str(), "-n", "40"];
        args.extend_from_slice(&base);
        let (ca, cert, key) = (p("ca.pem"), p("client.pem"), p("client-key.pem"));
        args.extend([ca.as_str(), "--client-cert", &cert, "--client-key", &key]);
        args.extend_from_slice(extra);
        let r = run_json(&args, 0);
        assert_eq!(r["status_counts"]["200"], 40, "{extra:?}: {r}");
        assert_eq!(r["errors_total"], 0, "{r}");
    }

    // Without a client certificate the server refuses the handshake.
    let ca = p("ca.pem");
    let mut args = vec![url.as_str(), "-n", "3"];
    args.extend_from_slice(&base);
    args.push(&ca);
    let r = run_json(&args, 1);
    assert!(r["status_counts"]["200"].is_null(), "{r}");
    assert!(r["errors_total"].as_u64().unwrap() >= 3, "{r}");
}

#[test]
fn hanging_server_reads_and_never_answers() {
    let serve = Serve::start(&["--hang"]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 64];
    let e = s.read(&mut b).expect_err("no answer, connection kept open");
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e}"
    );
    // It keeps reading: more requests on the same connection are taken.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
}
