//! `ringway cert ca init`: a self-signed mesh CA, and loading it back.
//!
//! The CA is EC P-256 (ECDSA with SHA-256), basic constraints `CA:TRUE,
//! pathlen:0` (it signs workload certificates only, no intermediate CAs),
//! key usage keyCertSign + cRLSign, and one URI SAN naming its trust domain
//! (`spiffe://example.org`): [`issue`](super::issue) reads the trust
//! domain from there and refuses SPIFFE IDs of any other.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::spiffe::SpiffeId;
use super::{add_duration, check_writable, random_serial, write_private, write_public, BACKDATE};

/// File names `ca init` writes in its `--out` directory (and `issue
/// --ca-dir` reads).
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// A new CA, as PEM.
pub struct NewCa {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: String,
    pub not_after: OffsetDateTime,
}

/// Generates a CA for `trust_domain`, valid from `now − 1 min` to
/// `now + ttl`.
pub fn generate(trust_domain: &str, ttl: Duration, now: OffsetDateTime) -> Result<NewCa, String> {
    let td_id = SpiffeId::for_trust_domain(trust_domain)?;
    if ttl < Duration::from_secs(3600) {
        return Err("a CA's ttl must be at least 1h".into());
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("ringway mesh CA {trust_domain}"),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, trust_domain);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.subject_alt_names = vec![SanType::URI(
        td_id
            .to_string()
            .try_into()
            .map_err(|e| format!("the trust domain URI: {e}"))?,
    )];
    params.not_before = now - BACKDATE;
    params.not_after = add_duration(now, ttl)?;
    let serial = random_serial()?;
    params.serial_number = Some(serial.clone());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("generating the CA key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("signing the CA certificate: {e}"))?;
    Ok(NewCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial: serial.to_string(),
        not_after: params.not_after,
    })
}

/// `ca init`: writes `dir/ca.pem` and `dir/ca-key.pem` (0600); refuses to
/// replace either without `force`. Returns the paths written and the CA.
pub fn init(
    dir: &Path,
    trust_domain: &str,
    ttl: Duration,
    force: bool,
) -> Result<(PathBuf, PathBuf, NewCa), String> {
    let ca = generate(trust_domain, ttl, OffsetDateTime::now_utc())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    check_writable(&[&cert_path, &key_path], force)?;
    write_private(&key_path, &ca.key_pem, force)?;
    write_public(&cert_path, &ca.cert_pem, force)?;
    Ok((cert_path, key_path, ca))
}

/// A CA loaded to issue certificates: its certificate, its key (checked
/// to belong to the certificate) and its trust domain.
pub struct LoadedCa {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub trust_domain: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub(super) issuer: Issuer<'static, KeyPair>,
}

impl LoadedCa {
    /// Loads `cert_path` (the first certificate in it) and `key_path`.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<LoadedCa, String> {
        let cert_pem = std::fs::read_to_string(cert_path)
            .map_err(|e| format!("reading {}: {e}", cert_path.display()))?;
        let key_pem = std::fs::read_to_string(key_path)
            .map_err(|e| format!("reading {}: {e}", key_path.display()))?;
        LoadedCa::from_pem(&cert_pem, &key_pem)
            .map_err(|e| format!("{} / {}: {e}", cert_path.display(), key_path.display()))
    }

    /// A CA from its certificate and key PEM. Refuses a certificate that is
    /// not a CA, has no usable `spiffe://` trust-domain SAN, or does not
    /// match the key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<LoadedCa, String> {
        let cert_der = super::parse_pem_certs(cert_pem.as_bytes(), "the CA certificate")?
            .into_iter()
            .next()
            .expect("parse_pem_certs returns at least one");
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("the CA key: {e}"))?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| format!("the CA certificate does not parse: {e}"))?;
        if !x509.is_ca() {
            return Err("the CA certificate is not a CA (basic constraints CA:FALSE)".into());
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err("the CA key does not belong to the CA certificate".into());
        }
        let trust_domain = ca_trust_domain(&x509)?;
        let not_before = x509.validity().not_before.to_datetime();
        let not_after = x509.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| format!("the CA certificate: {e}"))?;
        Ok(LoadedCa {
            cert_der,
            cert_pem: cert_pem.to_owned(),
            trust_domain,
            not_before,
            not_after,
            issuer,
        })
    }
}

/// The trust domain a CA certificate records: its one `spiffe://` URI SAN,
/// which must have no path.
pub fn ca_trust_domain(
    x509: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<String, String> {
    let uris = super::inspect::uri_sans(x509);
    let spiffe: Vec<&String> = uris.iter().filter(|u| u.starts_with("spiffe:")).collect();
    match spiffe.as_slice() {
        [] => Err("the CA certificate has no spiffe://TRUST-DOMAIN URI SAN, so its trust domain is unknown (make it with `ringway cert ca init`)".into()),
        [one] => {
            let id = SpiffeId::parse(one)?;
            if !id.path().is_empty() {
                return Err(format!("the CA certificate's SPIFFE URI SAN {one} has a path; a CA names a trust domain only"));
            }
            Ok(id.trust_domain().to_owned())
        }
        _ => Err("the CA certificate has more than one spiffe:// URI SAN".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_p256_ca_with_trust_domain() {
        let now = OffsetDateTime::now_utc();
        let ca = generate("example.org", Duration::from_secs(3600), now).unwrap();
        let loaded = LoadedCa::from_pem(&ca.cert_pem, &ca.key_pem).unwrap();
        assert_eq!(loaded.trust_domain, "example.org");
        let (_, x) = x509_parser::parse_x509_certificate(&loaded.cert_der).unwrap();
        assert!(x.is_ca());
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert_eq!(
            x.public_key()
                .algorithm
                .parameters
                .as_ref()
                .unwrap()
                .as_oid()
                .unwrap(),
            x509_parser::oid_registry::OID_EC_P256
        );
        assert!((x.validity().not_after.timestamp() - (now.unix_timestamp() + 3600)).abs() <= 1);
        assert!(x.validity().not_before.timestamp() <= now.unix_timestamp() - 59);
        assert!(generate("Example.org", Duration::from_secs(60), now).is_err());
        assert!(generate("spiffe://example.org", Duration::from_secs(3600), now).is_err());
        assert!(generate("example.org", Duration::from_secs(60), now)
            .err()
            .unwrap()
            .contains("at least 1h"));
    }

    #[test]
    fn ca_key_must_match_certificate() {
        let now = OffsetDateTime::now_utc();
        let a = generate("example.org", Duration::from_secs(3600), now).unwrap();
        let b = generate("example.org", Duration::from_secs(3600), now).unwrap();
        let e = LoadedCa::from_pem(&a.cert_pem, &b.key_pem).err().unwrap();
        assert!(e.contains("does not belong"), "{e}");
    }

    #[test]
    fn ca_init_writes_key_0600_and_refuses_overwrite() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ringway-ca-init-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (cert, key, _) = init(&dir, "example.org", Duration::from_secs(3600), false).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(cert.exists());
        let before = std::fs::read(&key).unwrap();
        let e = init(&dir, "example.org", Duration::from_secs(3600), false)
            .err()
            .unwrap();
        assert!(e.contains("--force"), "{e}");
        assert_eq!(std::fs::read(&key).unwrap(), before, "key replaced");
        init(&dir, "example.org", Duration::from_secs(3600), true).unwrap();
        assert_ne!(std::fs::read(&key).unwrap(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
