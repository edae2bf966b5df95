//! HTTPS: `run --cacert` verifies `serve --tls-cert`, `--insecure` skips
//! the check, and a certificate from another CA is a TLS error.

mod common;

use common::{error_count, run_json, Serve, TempDir};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// Write ca.pem, and cert.pem + key.pem for `names` signed by that CA.
fn make_pki(dir: &std::path::Path, prefix: &str, names: &[&str]) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ringload test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join(format!("{prefix}ca.pem")), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join(format!("{prefix}cert.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{prefix}key.pem")), key.serialize_pem()).unwrap();
}

#[test]
fn https_with_cacert_insecure_and_wrong_ca() {
    let dir = TempDir::new("tls");
    make_pki(&dir.0, "", &["localhost", "127.0.0.1"]);
    make_pki(&dir.0, "other-", &["localhost"]);
    let p = |f: &str| dir.0.join(f).to_str().unwrap().to_string();
    let serve = Serve::start(&["--tls-cert", &p("cert.pem"), "--tls-key", &p("key.pem")]);
    let port = serve.addr.port();

    // SNI and verification use the URL host.
    let url = format!("https://localhost:{port}/");
    let r = run_json(
        &[
            &url,
            "-n",
            "300",
            "-c",
            "3",
            "-t",
            "1",
            "--cacert",
            &p("ca.pem"),
        ],
        0,
    );
    assert_eq!(r["status_counts"]["200"], 300);
    assert_eq!(r["errors_total"], 0);

    let url_ip = format!("https://127.0.0.1:{port}/");
    let r = run_json(
        &[
            &url_ip,
            "-n",
            "100",
            "-c",
            "2",
            "-t",
            "1",
            "--pipeline",
            "4",
            "-k",
        ],
        0,
    );
    assert_eq!(r["status_counts"]["200"], 100);

    let r = run_json(
        &[
            &url,
            "-n",
            "3",
            "-c",
            "1",
            "-t",
            "1",
            "--cacert",
            &p("other-ca.pem"),
        ],
        1,
    );
    assert_eq!(error_count(&r, "tls"), 3, "{r}");
}
