//! `ringway cert issue`: a workload certificate (X.509-SVID) signed by the
//! mesh CA.
//!
//! The leaf is EC P-256, `CA:FALSE`, key usage digitalSignature, extended
//! key usage serverAuth and/or clientAuth, exactly one URI SAN (the SPIFFE
//! ID) plus the DNS and IP SANs asked for, valid from `now − 1 min` to
//! `now + ttl`.
//!
//! Refused rather than patched up:
//! * a SPIFFE ID that does not parse, has no path (that names the trust
//!   domain, not a workload), or belongs to another trust domain than the
//!   CA's;
//! * a CA that is expired or not yet valid;
//! * a ttl that would outlive the CA: the leaf could never verify for its
//!   last part, so `issue` says until when the CA is valid instead of
//!   silently clamping.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::ca::LoadedCa;
use super::spiffe::SpiffeId;
use super::{
    add_duration, check_writable, format_time, random_serial, write_private, write_public, BACKDATE,
};

/// What the certificate may be used for (extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
    Both,
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub spiffe_id: String,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub ttl: Duration,
    pub usage: Usage,
}

/// An issued certificate and its key.
pub struct Issued {
    pub spiffe_id: SpiffeId,
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Issues a leaf for `req`, signed by `ca`, as of `now`.
pub fn issue(ca: &LoadedCa, req: &IssueRequest, now: OffsetDateTime) -> Result<Issued, String> {
    let id = SpiffeId::parse(&req.spiffe_id)?;
    if id.trust_domain() != ca.trust_domain {
        return Err(format!(
            "the SPIFFE ID {id} is in trust domain {:?}, but the CA signs for trust domain {:?} only",
            id.trust_domain(),
            ca.trust_domain
        ));
    }
    if id.path().is_empty() {
        return Err(format!(
            "the SPIFFE ID {id} has no path: it names the trust domain, not a workload (e.g. {id}/ns/prod/sa/orders)"
        ));
    }
    if now < ca.not_before {
        return Err(format!(
            "the CA is not valid before {}",
            format_time(ca.not_before)
        ));
    }
    if now >= ca.not_after {
        return Err(format!(
            "the CA expired at {}; make a new one with `ringway cert ca init`",
            format_time(ca.not_after)
        ));
    }
    if req.ttl.is_zero() {
        return Err("the ttl is zero".into());
    }
    let not_after = add_duration(now, req.ttl)?;
    if not_after > ca.not_after {
        let left = (ca.not_after - now).whole_hours();
        return Err(format!(
            "a ttl of {} would outlive the CA, which expires at {} (in {left}h): use --ttl {left}h or less, or renew the CA",
            ttl_text(req.ttl),
            format_time(ca.not_after)
        ));
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, id.trust_domain());
    if let Some(first) = req.dns.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    let mut sans = vec![SanType::URI(
        id.to_string()
            .try_into()
            .map_err(|e| format!("the SPIFFE ID as a URI SAN: {e}"))?,
    )];
    for name in &req.dns {
        validate_dns_name(name)?;
        sans.push(SanType::DnsName(
            name.as_str()
                .try_into()
                .map_err(|e| format!("DNS name {name:?}: {e}"))?,
        ));
    }
    sans.extend(req.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match req.usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::Both => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = not_after;
    let serial = random_serial()?;
    params.serial_number = Some(serial.clone());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("generating the key: {e}"))?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    Ok(Issued {
        spiffe_id: id,
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial: serial.to_string(),
        not_before: params.not_before,
        not_after,
    })
}

/// Where `issue_files` writes.
#[derive(Debug, Clone, Default)]
pub struct OutFiles {
    /// Certificate file; default `LAST-PATH-SEGMENT.pem`.
    pub cert: Option<PathBuf>,
    /// Key file (mode 0600); default `LAST-PATH-SEGMENT-key.pem`.
    pub key: Option<PathBuf>,
    /// Append the CA certificate after the leaf.
    pub chain: bool,
    /// Replace existing files.
    pub force: bool,
}

/// `cert issue`: loads the CA, issues, and writes the key (0600) and then
/// the certificate; refuses to replace either without `force`. Returns the
/// certificate and the paths written.
pub fn issue_files(
    ca_cert: &Path,
    ca_key: &Path,
    req: &IssueRequest,
    out: &OutFiles,
) -> Result<(Issued, PathBuf, PathBuf), String> {
    let ca = LoadedCa::load(ca_cert, ca_key)?;
    let issued = issue(&ca, req, OffsetDateTime::now_utc())?;
    let stem = issued
        .spiffe_id
        .segments()
        .last()
        .unwrap_or("workload")
        .to_owned();
    let cert_path = out
        .cert
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{stem}.pem")));
    let key_path = out
        .key
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{stem}-key.pem")));
    check_writable(&[&cert_path, &key_path], out.force)?;
    let mut pem = issued.cert_pem.clone();
    if out.chain {
        pem.push_str(&ca.cert_pem);
    }
    write_private(&key_path, &issued.key_pem, out.force)?;
    write_public(&cert_path, &pem, out.force)?;
    Ok((issued, cert_path, key_path))
}

/// `9000h`, `90m`, `45s`.
fn ttl_text(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A DNS SAN: letters, digits, `-`, `.`, an optional leading `*.`; no
/// empty labels, at most 253 bytes.
fn validate_dns_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("DNS name {name:?}: {why}"));
    let body = name.strip_prefix("*.").unwrap_or(name);
    if body.is_empty() || name.len() > 253 {
        return bad("empty or longer than 253 bytes");
    }
    if body.parse::<IpAddr>().is_ok() {
        return bad("an IP address: pass it with --ip");
    }
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("a label is empty or longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits, '-' and '.' are allowed (and a leading \"*.\")");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::ca::generate;

    const HOUR: Duration = Duration::from_secs(3600);

    fn ca(td: &str) -> LoadedCa {
        let new = generate(td, HOUR * 24 * 30, OffsetDateTime::now_utc()).unwrap();
        LoadedCa::from_pem(&new.cert_pem, &new.key_pem).unwrap()
    }

    fn req(id: &str) -> IssueRequest {
        IssueRequest {
            spiffe_id: id.into(),
            dns: vec!["orders.prod.svc".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            ttl: HOUR * 24,
            usage: Usage::Both,
        }
    }

    /// What rustls does with a peer's certificate: webpki path building
    /// from the leaf to `root`, at `now`.
    fn webpki_verify(
        leaf: &CertificateDer<'_>,
        root: &CertificateDer<'_>,
        usage: webpki::KeyUsage,
        now: OffsetDateTime,
    ) -> Result<(), webpki::Error> {
        let anchor = webpki::anchor_from_trusted_cert(root).unwrap();
        let ee = webpki::EndEntityCert::try_from(leaf).unwrap();
        let time = rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
            now.unix_timestamp() as u64,
        ));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            time,
            usage,
            None,
            None,
        )
        .map(|_| ())
    }

    #[test]
    fn issued_leaf_verifies_against_its_ca_only() {
        let ca = ca("example.org");
        let now = OffsetDateTime::now_utc();
        let leaf = issue(&ca, &req("spiffe://example.org/ns/prod/sa/orders"), now).unwrap();
        assert_eq!(leaf.spiffe_id.path(), "/ns/prod/sa/orders");
        for usage in [
            webpki::KeyUsage::server_auth(),
            webpki::KeyUsage::client_auth(),
        ] {
            webpki_verify(&leaf.cert_der, &ca.cert_der, usage, now).unwrap();
        }
        // Another CA, even of the same trust domain and so the same subject
        // name: the signature is checked, not the name.
        let other = self::ca("example.org");
        let e = webpki_verify(
            &leaf.cert_der,
            &other.cert_der,
            webpki::KeyUsage::server_auth(),
            now,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey
            ),
            "{e:?}"
        );
        // Expired by the time it is checked; not yet valid before.
        let later = now + time::Duration::hours(25);
        assert!(matches!(
            webpki_verify(
                &leaf.cert_der,
                &ca.cert_der,
                webpki::KeyUsage::server_auth(),
                later
            ),
            Err(webpki::Error::CertExpired { .. })
        ));
        let earlier = now - time::Duration::minutes(5);
        assert!(matches!(
            webpki_verify(
                &leaf.cert_der,
                &ca.cert_der,
                webpki::KeyUsage::server_auth(),
                earlier
            ),
            Err(webpki::Error::CertNotValidYet { .. })
        ));
    }

    #[test]
    fn usage_limits_eku() {
        let ca = ca("example.org");
        let now = OffsetDateTime::now_utc();
        let mut r = req("spiffe://example.org/web");
        r.usage = Usage::Server;
        let leaf = issue(&ca, &r, now).unwrap();
        webpki_verify(
            &leaf.cert_der,
            &ca.cert_der,
            webpki::KeyUsage::server_auth(),
            now,
        )
        .unwrap();
        assert!(webpki_verify(
            &leaf.cert_der,
            &ca.cert_der,
            webpki::KeyUsage::client_auth(),
            now
        )
        .is_err());
        r.usage = Usage::Client;
        let leaf = issue(&ca, &r, now).unwrap();
        assert!(webpki_verify(
            &leaf.cert_der,
            &ca.cert_der,
            webpki::KeyUsage::server_auth(),
            now
        )
        .is_err());
        let (_, x) = x509_parser::parse_x509_certificate(&leaf.cert_der).unwrap();
        assert!(!x.is_ca());
        assert!(x.key_usage().unwrap().unwrap().value.digital_signature());
        assert!(!x.key_usage().unwrap().unwrap().value.key_cert_sign());
    }

    #[test]
    fn issue_refuses_another_trust_domain() {
        let ca = ca("example.org");
        let now = OffsetDateTime::now_utc();
        for (id, why) in [
            (
                "spiffe://evil.org/ns/prod/sa/orders",
                "trust domain \"evil.org\"",
            ),
            (
                "spiffe://example.org.evil.org/a",
                "trust domain \"example.org.evil.org\"",
            ),
            (
                "spiffe://sub.example.org/a",
                "trust domain \"sub.example.org\"",
            ),
            ("spiffe://Example.org/a", "uppercase"),
            ("spiffe://example.org:443/a", "port"),
            ("spiffe://example.org", "no path"),
            ("spiffe://example.org/a/../b", "dot segments"),
            ("https://example.org/a", "\"spiffe\""),
        ] {
            let e = issue(&ca, &req(id), now).err().unwrap();
            assert!(e.contains(why), "{id}: {e}");
        }
    }

    #[test]
    fn issue_refuses_ttl_beyond_ca_and_expired_ca() {
        let ca = ca("example.org"); // 30 days
        let now = OffsetDateTime::now_utc();
        let mut r = req("spiffe://example.org/a");
        r.ttl = HOUR * 24 * 31;
        let e = issue(&ca, &r, now).err().unwrap();
        assert!(e.contains("outlive the CA") && e.contains("--ttl 7"), "{e}");
        r.ttl = Duration::ZERO;
        assert!(issue(&ca, &r, now).is_err());
        r.ttl = HOUR;
        let e = issue(&ca, &r, now + time::Duration::days(31))
            .err()
            .unwrap();
        assert!(e.contains("expired"), "{e}");
        let e = issue(&ca, &r, now - time::Duration::hours(1))
            .err()
            .unwrap();
        assert!(e.contains("not valid before"), "{e}");
    }

    #[test]
    fn issue_refuses_bad_dns_names() {
        let ca = ca("example.org");
        let now = OffsetDateTime::now_utc();
        for name in [
            "",
            "a..b",
            "a b",
            "10.0.0.1",
            "*.",
            "bad_name.example",
            "a/b",
        ] {
            let mut r = req("spiffe://example.org/a");
            r.dns = vec![name.into()];
            assert!(issue(&ca, &r, now).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn leaf_has_exactly_one_uri_san() {
        let ca = ca("example.org");
        let leaf = issue(
            &ca,
            &req("spiffe://example.org/ns/prod/sa/orders"),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(&leaf.cert_der).unwrap();
        assert_eq!(
            crate::cert::inspect::uri_sans(&x),
            ["spiffe://example.org/ns/prod/sa/orders"]
        );
    }
}
