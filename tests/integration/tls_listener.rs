//! TLS listener options: minimum version, session tickets shared by every
//! worker, OCSP stapling re-read when the file changes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use ringway_tests::certs::Ca;
use ringway_tests::config::Config;
use ringway_tests::dir::TestDir;
use ringway_tests::origin::Origin;
use ringway_tests::proxy::Proxy;
use ringway_tests::tls::provider;

/// Verifies like webpki and records the stapled OCSP response it was given.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    ocsp: Mutex<Vec<u8>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.ocsp.lock().unwrap() = ocsp_response.to_vec();
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, &[], now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn roots(ca: &Ca) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der()).unwrap();
    Arc::new(roots)
}

fn client(ca: &Ca, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots(ca))
            .with_no_client_auth(),
    )
}

/// Handshake, one request, read the response head; returns the connection
/// (for its handshake kind) or the handshake error.
fn exchange(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<ClientConnection, String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = ServerName::try_from("tls.test").unwrap();
    let mut conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    {
        let mut s = rustls::Stream::new(&mut conn, &mut tcp);
        s.write_all(b"GET / HTTP/1.1\r\nHost: tls.test\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Read to the end: the session tickets arrive with the response.
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        if !got.starts_with(b"HTTP/1.1 200") {
            return Err(format!("response: {}", String::from_utf8_lossy(&got)));
        }
    }
    Ok(conn)
}

fn start(dir: &TestDir, tls: &str, ca: &Ca) -> (Proxy, Origin) {
    ca.issue(&["tls.test"]).write(dir.path(), "srv");
    let origin = Origin::start();
    let config = Config::new()
        .listener_with("secure", &[("tls", tls)])
        .route("secure", "/", "app", &[])
        .cluster("app", &[origin.addr()], &[]);
    (Proxy::start(dir, &config), origin)
}

#[test]
fn min_version_13_refuses_tls12_clients() {
    let dir = TestDir::new("tls-min13");
    let ca = Ca::new("ringway test CA");
    let (proxy, origin) = start(
        &dir,
        r#"{ cert = "srv.pem", key = "srv.key", min_version = "1.3" }"#,
        &ca,
    );
    let addr = proxy.addr("secure");
    let refused = exchange(addr, client(&ca, &[&rustls::version::TLS12]));
    assert!(refused.is_err(), "a TLS 1.2 handshake must fail");
    let ok = exchange(addr, client(&ca, &[&rustls::version::TLS13])).unwrap();
    assert_eq!(
        ok.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(origin.request_count(), 1);
}

#[test]
fn session_tickets_resume_on_every_worker() {
    let dir = TestDir::new("tls-tickets");
    let ca = Ca::new("ringway test CA");
    let (proxy, _origin) = start(&dir, r#"{ cert = "srv.pem", key = "srv.key" }"#, &ca);
    let addr = proxy.addr("secure");
    for versions in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client(&ca, &[versions]);
        let first = exchange(addr, config.clone()).unwrap();
        assert_eq!(first.handshake_kind(), Some(HandshakeKind::Full));
        // New connections spread over both workers (SO_REUSEPORT): each
        // resumes, so the ticket keys are the same on every worker.
        for i in 0..8 {
            let c = exchange(addr, config.clone()).unwrap();
            assert_eq!(
                c.handshake_kind(),
                Some(HandshakeKind::Resumed),
                "{versions:?} connection {i}"
            );
        }
    }

    // Tickets off: TLS 1.3 clients get no ticket, so nothing resumes.
    let dir = TestDir::new("tls-no-tickets");
    let (proxy, _origin) = start(
        &dir,
        r#"{ cert = "srv.pem", key = "srv.key", session_tickets = false }"#,
        &ca,
    );
    let config = client(&ca, &[&rustls::version::TLS13]);
    for _ in 0..3 {
        let c = exchange(proxy.addr("secure"), config.clone()).unwrap();
        assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
    }
}

#[test]
fn ringload_resumes_with_the_tickets_ringway_gives() {
    // What the bench's tls-new-connection scenario relies on: ringload,
    // a new connection per request, resumes (and counts it); with
    // --no-tls-resumption every handshake is full.
    let Some(ringload) = ringway_tests::proxy::ringload_bin() else {
        println!("SKIP ringload_resumes_with_the_tickets_ringway_gives: ringload binary not built (cargo build --workspace --bins)");
        return;
    };
    let dir = TestDir::new("tls-ringload");
    let ca = Ca::new("ringway test CA");
    let (proxy, _origin) = start(&dir, r#"{ cert = "srv.pem", key = "srv.key" }"#, &ca);
    let url = format!("https://{}/", proxy.addr("secure"));
    let run = |extra: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(&ringload)
            .args([
                "run",
                "-n",
                "40",
                "-c",
                "2",
                "-t",
                "1",
                "--no-keepalive",
                "--json",
            ])
            .arg("--insecure")
            .args(extra)
            .arg(&url)
            .output()
            .expect("ringload runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("ringload JSON")
    };
    let v = run(&[]);
    assert_eq!(v["requests"], 40, "{v}");
    assert_eq!(v["errors_total"], 0, "{v}");
    let (connects, resumed) = (
        v["connects"].as_u64().unwrap(),
        v["tls_resumed"].as_u64().unwrap(),
    );
    assert!(connects >= 40, "{v}");
    // The first connection of each client connection slot is full.
    assert!(resumed + 2 >= connects, "{v}");
    let v = run(&["--no-tls-resumption"]);
    assert_eq!(v["requests"], 40, "{v}");
    assert_eq!(v["tls_resumed"], 0, "{v}");
}

#[test]
fn ocsp_response_is_stapled_and_reread_when_the_file_changes() {
    let dir = TestDir::new("tls-ocsp");
    let ca = Ca::new("ringway test CA");
    dir.write("srv.ocsp", b"first-ocsp-response");
    let (proxy, _origin) = start(
        &dir,
        r#"{ cert = "srv.pem", key = "srv.key", ocsp = "srv.ocsp" }"#,
        &ca,
    );
    let addr = proxy.addr("secure");
    let stapled = || -> Vec<u8> {
        let verifier = Arc::new(RecordingVerifier {
            inner: WebPkiServerVerifier::builder_with_provider(roots(&ca), provider())
                .build()
                .unwrap(),
            ocsp: Mutex::new(Vec::new()),
        });
        let config = Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth(),
        );
        exchange(addr, config).unwrap();
        let got = verifier.ocsp.lock().unwrap().clone();
        got
    };
    assert_eq!(stapled(), b"first-ocsp-response");

    // A new response on disk (a different modification time) is stapled
    // without a reload, within the refresher's interval.
    std::thread::sleep(Duration::from_millis(20));
    dir.write("srv.ocsp", b"second-ocsp-response");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = stapled();
        if now == b"second-ocsp-response" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still stapling {:?}",
            String::from_utf8_lossy(&now)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // An emptied file keeps the last good response.
    dir.write("srv.ocsp", b"");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(stapled(), b"second-ocsp-response");
}
