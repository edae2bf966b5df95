//! The certificates every contender terminates TLS with, minted per run:
//! - a self-signed server certificate (the TLS scenarios);
//! - for the mutual-TLS scenarios, a CA, a server certificate and a client
//!   certificate signed by it (the client one with a SPIFFE URI SAN).
//!
//! All keys are ECDSA P-256 (rcgen's default).

use std::path::{Path, PathBuf};

use crate::scenarios::Scenario;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The names on every server certificate.
const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];
/// The identity in the mTLS client certificate (URI SAN).
pub const CLIENT_SPIFFE_ID: &str = "spiffe://bench.local/ringload";

/// PEM files in the run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Certificate then key in one file (haproxy's `crt`).
    pub combined: PathBuf,
}

/// The mutual-TLS set: the CA every contender verifies client certificates
/// against, the server certificate it signed, and the load generator's
/// client certificate.
#[derive(Debug, Clone)]
pub struct MtlsFiles {
    pub ca: PathBuf,
    pub server: CertFiles,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// The certificates of a run, minted for the scenarios that need them.
#[derive(Debug, Clone, Default)]
pub struct Certs {
    /// Self-signed server certificate (TLS scenarios without client certs).
    pub server: Option<CertFiles>,
    /// CA, server and client certificates (mutual-TLS scenarios).
    pub mtls: Option<MtlsFiles>,
}

impl Certs {
    /// Mint what `scenarios` need into `dir`.
    pub fn mint_for(dir: &Path, scenarios: &[Scenario]) -> Result<Certs, String> {
        let any = |f: fn(&Scenario) -> bool| scenarios.iter().any(f);
        Ok(Certs {
            server: if any(|s| s.tls && !s.client_cert) {
                Some(mint(dir)?)
            } else {
                None
            },
            mtls: if any(|s| s.client_cert) {
                Some(mint_mtls(dir)?)
            } else {
                None
            },
        })
    }

    /// A contender's listener in `sc`: its certificate (None: plain HTTP)
    /// and, for mutual TLS, the CA client certificates must chain to.
    pub fn for_scenario(
        &self,
        sc: &Scenario,
    ) -> Result<(Option<&CertFiles>, Option<&Path>), String> {
        match (sc.tls, sc.client_cert) {
            (false, _) => Ok((None, None)),
            (true, false) => self
                .server
                .as_ref()
                .map(|s| (Some(s), None))
                .ok_or_else(|| "no certificate for the TLS scenario".into()),
            (true, true) => self
                .mtls
                .as_ref()
                .map(|m| (Some(&m.server), Some(m.ca.as_path())))
                .ok_or_else(|| "no certificates for the mutual-TLS scenario".into()),
        }
    }

    /// The load generator's client certificate and key in `sc`, if any.
    pub fn client_identity(&self, sc: &Scenario) -> Option<(PathBuf, PathBuf)> {
        self.mtls
            .as_ref()
            .filter(|_| sc.tls && sc.client_cert)
            .map(|m| (m.client_cert.clone(), m.client_key.clone()))
    }
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("cannot mint the {what}: {e}")
}

fn write(p: &Path, s: &str) -> Result<(), String> {
    std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()))
}

/// Write `PREFIX-cert.pem`, `PREFIX-key.pem` and `PREFIX-combined.pem`.
fn write_server(
    dir: &Path,
    prefix: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<CertFiles, String> {
    let files = CertFiles {
        cert: dir.join(format!("{prefix}-cert.pem")),
        key: dir.join(format!("{prefix}-key.pem")),
        combined: dir.join(format!("{prefix}-combined.pem")),
    };
    write(&files.cert, cert_pem)?;
    write(&files.key, key_pem)?;
    write(&files.combined, &format!("{cert_pem}{key_pem}"))?;
    Ok(files)
}

/// Mint an ECDSA P-256 certificate for `localhost` / `127.0.0.1` into `dir`.
pub fn mint(dir: &Path) -> Result<CertFiles, String> {
    let ck = rcgen::generate_simple_self_signed(SERVER_NAMES.map(String::from).to_vec())
        .map_err(err("certificate"))?;
    write_server(
        dir,
        "bench",
        &ck.cert.pem(),
        &ck.signing_key.serialize_pem(),
    )
}

/// Mint the mTLS set into `dir`: `mtls-ca.pem`, `mtls-server-*.pem` (SAN
/// localhost / 127.0.0.1, serverAuth) and `mtls-client-{cert,key}.pem` (URI
/// SAN [`CLIENT_SPIFFE_ID`], clientAuth), all signed by the CA.
pub fn mint_mtls(dir: &Path) -> Result<MtlsFiles, String> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err("CA"))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ringway-bench mTLS CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(err("CA key"))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err("CA"))?;
    let ca_path = dir.join("mtls-ca.pem");
    write(&ca_path, &ca_cert.pem())?;
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(SERVER_NAMES.map(String::from).to_vec())
        .map_err(err("server certificate"))?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(err("server key"))?;
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .map_err(err("server certificate"))?;
    let server_files = write_server(
        dir,
        "mtls-server",
        &server_cert.pem(),
        &server_key.serialize_pem(),
    )?;

    let mut client =
        CertificateParams::new(Vec::<String>::new()).map_err(err("client certificate"))?;
    client
        .distinguished_name
        .push(DnType::CommonName, "ringload");
    let uri = CLIENT_SPIFFE_ID
        .try_into()
        .map_err(err("client certificate's URI SAN"))?;
    client.subject_alt_names = vec![SanType::URI(uri)];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let client_key = KeyPair::generate().map_err(err("client key"))?;
    let client_cert = client
        .signed_by(&client_key, &issuer)
        .map_err(err("client certificate"))?;
    let files = MtlsFiles {
        ca: ca_path,
        server: server_files,
        client_cert: dir.join("mtls-client-cert.pem"),
        client_key: dir.join("mtls-client-key.pem"),
    };
    write(&files.client_cert, &client_cert.pem())?;
    write(&files.client_key, &client_key.serialize_pem())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringway-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn mints_pem_files() {
        let dir = temp("tls");
        let f = super::mint(&dir).unwrap();
        let cert = std::fs::read_to_string(&f.cert).unwrap();
        let key = std::fs::read_to_string(&f.key).unwrap();
        let both = std::fs::read_to_string(&f.combined).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY-----"));
        assert_eq!(both, format!("{cert}{key}"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn certs_per_scenario() {
        let by = |n: &str| {
            crate::scenarios::ALL
                .iter()
                .find(|s| s.name == n)
                .unwrap()
                .clone()
        };
        let dir = temp("certs");
        let (plain, tls, mtls) = (by("get-1k"), by("tls-keepalive"), by("mtls-keepalive"));
        let only_tls = super::Certs::mint_for(&dir, &[plain.clone(), tls.clone()]).unwrap();
        assert!(only_tls.server.is_some() && only_tls.mtls.is_none());
        assert!(only_tls.for_scenario(&mtls).is_err());
        let c = super::Certs::mint_for(&dir, &[plain.clone(), tls.clone(), mtls.clone()]).unwrap();
        assert_eq!(c.for_scenario(&plain).unwrap(), (None, None));
        let (cert, ca) = c.for_scenario(&tls).unwrap();
        assert_eq!(cert.unwrap().cert, dir.join("bench-cert.pem"));
        assert!(ca.is_none());
        assert!(c.client_identity(&tls).is_none());
        let (cert, ca) = c.for_scenario(&mtls).unwrap();
        assert_eq!(cert.unwrap().cert, dir.join("mtls-server-cert.pem"));
        assert_eq!(ca, Some(dir.join("mtls-ca.pem").as_path()));
        assert_eq!(
            c.client_identity(&mtls),
            Some((
                dir.join("mtls-client-cert.pem"),
                dir.join("mtls-client-key.pem")
            ))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The server and client certificates chain to the CA, with the names
    /// and key usages the proxies check (webpki, as rustls and ringway use).
    #[test]
    fn mints_an_mtls_set_that_verifies() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
        let dir = temp("mtls");
        let f = super::mint_mtls(&dir).unwrap();
        let der = |p: &PathBuf| CertificateDer::from_pem_file(p).unwrap();
        let ca = der(&f.ca);
        let anchor = webpki::anchor_from_trusted_cert(&ca).unwrap();
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let now = UnixTime::now();

        let server = der(&f.server.cert);
        let ee = webpki::EndEntityCert::try_from(&server).unwrap();
        ee.verify_for_usage(
            algs.all,
            std::slice::from_ref(&anchor),
            &[],
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap();
        for name in ["localhost", "127.0.0.1"] {
            ee.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }

        let client = der(&f.client_cert);
        let ee = webpki::EndEntityCert::try_from(&client).unwrap();
        ee.verify_for_usage(
            algs.all,
            &[anchor],
            &[],
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .unwrap();
        // The SPIFFE ID is in the certificate (a URI SAN, in DER as is).
        let needle = super::CLIENT_SPIFFE_ID.as_bytes();
        assert!(client.windows(needle.len()).any(|w| w == needle));
        let key = std::fs::read_to_string(&f.client_key).unwrap();
        assert!(key.contains("PRIVATE KEY-----"));
        let combined = std::fs::read_to_string(&f.server.combined).unwrap();
        assert!(combined.contains("CERTIFICATE") && combined.contains("PRIVATE KEY"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
