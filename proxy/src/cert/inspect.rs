//! `ringway cert inspect`: what each certificate in a PEM file says, and
//! whether the file's chain verifies.
//!
//! Checks, each reported as OK or with exactly what fails:
//! * every certificate (and `--ca` root) is within its validity period;
//! * each certificate's issuer is the next one in the file (or, for the
//!   last, a `--ca` certificate, or itself when self-signed): the issuer
//!   name matches, the issuer is a CA allowed to sign certificates
//!   (keyCertSign), the signature verifies with the issuer's key, and a
//!   SPIFFE ID lies in the issuer's trust domain;
//! * for a leaf with a root, the whole path as rustls verifies it
//!   (rustls-webpki, for each extended key usage the leaf has).
//!
//! With one certificate, no `--ca` and no self-signature, only validity is
//! checked.

use std::path::Path;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry as oids;

use super::{format_serial, format_time};

/// One certificate, as `inspect` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub spiffe_id: Option<String>,
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
    pub ip_sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// `valid, expires in 23 h`, `expired 2 h ago`, `not yet valid (…)`.
    pub validity: String,
    pub key: String,
    /// `CA (pathlen 0)` or `leaf`.
    pub kind: String,
    pub is_ca: bool,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub self_signed: bool,
}

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    /// Why it failed (empty when it passed).
    pub detail: String,
}

/// Everything `inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub certificates: Vec<CertInfo>,
    pub checks: Vec<Check>,
    /// Every check passed.
    pub ok: bool,
}

/// Inspects `certs` (a file's certificates, leaf first) against the
/// optional `roots`, at `now`.
pub fn inspect(
    certs: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    now: OffsetDateTime,
) -> Result<Report, String> {
    let parsed = parse_all(certs, "certificate")?;
    let parsed_roots = parse_all(roots, "CA certificate")?;
    let mut checks = Vec::new();
    for (i, c) in parsed.iter().enumerate() {
        checks.push(validity_check(
            &format!("certificate {} validity", i + 1),
            c,
            now,
        ));
        if let Some(check) = svid_check(&format!("certificate {} SPIFFE ID", i + 1), c) {
            checks.push(check);
        }
    }
    for w in 0..parsed.len().saturating_sub(1) {
        checks.extend(link_checks(
            &format!("certificate {} signed by certificate {}", w + 1, w + 2),
            &parsed[w],
            &parsed[w + 1],
        ));
    }
    let last = parsed.len() - 1;
    let last_cert = &parsed[last];
    // The root the chain ends at: a --ca certificate, or the file's last
    // one when it is self-signed.
    let mut root: Option<&CertificateDer<'_>> = None;
    if !roots.is_empty() {
        for (i, r) in parsed_roots.iter().enumerate() {
            checks.push(validity_check(&format!("CA {} validity", i + 1), r, now));
        }
        match parsed_roots
            .iter()
            .position(|r| r.subject().as_raw() == last_cert.issuer().as_raw())
        {
            Some(i) => {
                checks.extend(link_checks(
                    &format!("certificate {} signed by the CA", last + 1),
                    last_cert,
                    &parsed_roots[i],
                ));
                root = Some(&roots[i]);
            }
            None => checks.push(Check {
                what: format!("certificate {} signed by the CA", last + 1),
                ok: false,
                detail: format!(
                    "its issuer is {:?}, but the CA's subject is {}: issued by another CA",
                    last_cert.issuer().to_string(),
                    parsed_roots
                        .iter()
                        .map(|r| format!("{:?}", r.subject().to_string()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    } else if last_cert.subject().as_raw() == last_cert.issuer().as_raw() {
        checks.extend(link_checks(
            &format!("certificate {} self-signature", last + 1),
            last_cert,
            last_cert,
        ));
        root = Some(&certs[last]);
    } else if parsed.len() > 1 {
        checks.push(Check {
            what: "chain root".into(),
            ok: false,
            detail: format!(
                "the chain ends at issuer {:?}, which is not in the file; pass its certificate with --ca",
                last_cert.issuer().to_string()
            ),
        });
    }
    if let Some(root) = root {
        if !parsed[0].is_ca() {
            let intermediates: Vec<CertificateDer<'_>> = certs[1..]
                .iter()
                .filter(|c| c.as_ref() != root.as_ref())
                .map(|c| CertificateDer::from(c.as_ref()))
                .collect();
            checks.extend(webpki_checks(
                &certs[0],
                &parsed[0],
                root,
                &intermediates,
                now,
            ));
        }
    }
    let certificates = parsed.iter().map(|c| describe(c, now)).collect();
    let ok = checks.iter().all(|c| c.ok);
    Ok(Report {
        certificates,
        checks,
        ok,
    })
}

/// `cert inspect FILE [--ca CA]`: reads the files and inspects as of now.
pub fn inspect_files(file: &Path, ca: Option<&Path>) -> Result<Report, String> {
    let certs = super::read_pem_certs(file)?;
    let roots = match ca {
        Some(p) => super::read_pem_certs(p)?,
        None => Vec::new(),
    };
    inspect(&certs, &roots, OffsetDateTime::now_utc())
}

fn parse_all<'a>(
    certs: &'a [CertificateDer<'_>],
    what: &str,
) -> Result<Vec<X509Certificate<'a>>, String> {
    certs
        .iter()
        .enumerate()
        .map(|(i, der)| {
            x509_parser::parse_x509_certificate(der)
                .map(|(_, c)| c)
                .map_err(|e| format!("{what} {} does not parse: {e}", i + 1))
        })
        .collect()
}

fn pass(what: &str) -> Check {
    Check {
        what: what.into(),
        ok: true,
        detail: String::new(),
    }
}

fn fail(what: &str, detail: String) -> Check {
    Check {
        what: what.into(),
        ok: false,
        detail,
    }
}

fn validity_check(what: &str, c: &X509Certificate<'_>, now: OffsetDateTime) -> Check {
    let nb = c.validity().not_before.to_datetime();
    let na = c.validity().not_after.to_datetime();
    if now < nb {
        fail(
            what,
            format!(
                "not yet valid: valid from {} (in {})",
                format_time(nb),
                span(nb - now)
            ),
        )
    } else if now > na {
        fail(
            what,
            format!("expired at {} ({} ago)", format_time(na), span(now - na)),
        )
    } else {
        pass(what)
    }
}

/// For a certificate with a `spiffe:` URI SAN: an X.509-SVID has exactly
/// one URI SAN, a valid SPIFFE ID (with a path for a leaf). `None` when it
/// claims no SPIFFE identity.
fn svid_check(what: &str, c: &X509Certificate<'_>) -> Option<Check> {
    let uris = uri_sans(c);
    let claimed: Vec<&String> = uris
        .iter()
        .filter(|u| {
            u.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("spiffe:"))
        })
        .collect();
    if claimed.is_empty() {
        return None;
    }
    if uris.len() > 1 {
        return Some(fail(
            what,
            format!(
                "{} URI SANs ({}): an X.509-SVID has exactly one",
                uris.len(),
                uris.join(", ")
            ),
        ));
    }
    Some(match super::spiffe::SpiffeId::parse(claimed[0]) {
        Err(e) => fail(what, e),
        Ok(id) if !c.is_ca() && id.path().is_empty() => fail(
            what,
            format!(
                "the leaf's SPIFFE ID {id} has no path: it names the trust domain, not a workload"
            ),
        ),
        Ok(_) => pass(what),
    })
}

/// Checks that `issuer` issued `child`.
fn link_checks(
    what: &str,
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Vec<Check> {
    let mut problems = Vec::new();
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        problems.push(format!(
            "its issuer name is {:?}, the issuer's subject is {:?}",
            child.issuer().to_string(),
            issuer.subject().to_string()
        ));
    }
    if !issuer.is_ca() {
        problems.push(format!(
            "the issuer {:?} is not a CA (basic constraints CA:FALSE or absent)",
            issuer.subject().to_string()
        ));
    }
    if let Ok(Some(ku)) = issuer.key_usage() {
        if !ku.value.key_cert_sign() {
            problems.push("the issuer's key usage lacks keyCertSign".into());
        }
    }
    if let Err(e) = child.verify_signature(Some(issuer.public_key())) {
        problems.push(format!(
            "the signature does not verify with the key of {:?} ({e}): signed by another key",
            issuer.subject().to_string()
        ));
    }
    if let (Some(id), Some(td)) = (spiffe_id(child), issuer_trust_domain(issuer)) {
        if let Ok(id) = super::spiffe::SpiffeId::parse(&id) {
            if id.trust_domain() != td {
                problems.push(format!(
                    "its SPIFFE ID {id} is outside the issuer's trust domain {td:?}"
                ));
            }
        }
    }
    if problems.is_empty() {
        vec![pass(what)]
    } else {
        vec![fail(what, problems.join("; "))]
    }
}

/// The path as rustls verifies it, per extended key usage of the leaf.
fn webpki_checks(
    leaf: &CertificateDer<'_>,
    parsed: &X509Certificate<'_>,
    root: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: OffsetDateTime,
) -> Vec<Check> {
    let anchor = match webpki::anchor_from_trusted_cert(root) {
        Ok(a) => a,
        Err(e) => return vec![fail("root usable as a trust anchor", format!("{e:?}"))],
    };
    let ee = match webpki::EndEntityCert::try_from(leaf) {
        Ok(ee) => ee,
        Err(e) => return vec![fail("leaf usable by rustls", format!("{e:?}"))],
    };
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now.unix_timestamp().max(0) as u64));
    let mut usages = Vec::new();
    let eku = eku_names(parsed);
    if eku.iter().any(|e| e == "serverAuth") || eku.is_empty() {
        usages.push(("serverAuth", webpki::KeyUsage::server_auth()));
    }
    if eku.iter().any(|e| e == "clientAuth") || eku.is_empty() {
        usages.push(("clientAuth", webpki::KeyUsage::client_auth()));
    }
    if usages.is_empty() {
        return vec![fail(
            "path as rustls verifies it",
            format!(
                "the leaf has neither serverAuth nor clientAuth (EKU: {})",
                eku.join(", ")
            ),
        )];
    }
    usages
        .into_iter()
        .map(|(name, usage)| {
            let what = format!("path as rustls verifies it, for {name}");
            match ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                std::slice::from_ref(&anchor),
                intermediates,
                time,
                usage,
                None,
                None,
            ) {
                Ok(_) => pass(&what),
                Err(e) => fail(&what, format!("{e:?}")),
            }
        })
        .collect()
}

fn describe(c: &X509Certificate<'_>, now: OffsetDateTime) -> CertInfo {
    let nb = c.validity().not_before.to_datetime();
    let na = c.validity().not_after.to_datetime();
    let validity = if now < nb {
        format!("NOT YET VALID (valid in {})", span(nb - now))
    } else if now > na {
        format!("EXPIRED ({} ago)", span(now - na))
    } else {
        format!("valid, expires in {}", span(na - now))
    };
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns.push(n.to_string()),
                GeneralName::IPAddress(b) => ips.push(ip_text(b)),
                _ => {}
            }
        }
    }
    let kind = match c.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => match bc.value.path_len_constraint {
            Some(n) => format!("CA (pathlen {n})"),
            None => "CA".into(),
        },
        _ => "leaf".into(),
    };
    let mut key_usage = Vec::new();
    if let Ok(Some(ku)) = c.key_usage() {
        let ku = ku.value;
        for (set, name) in [
            (ku.digital_signature(), "digitalSignature"),
            (ku.key_encipherment(), "keyEncipherment"),
            (ku.key_agreement(), "keyAgreement"),
            (ku.key_cert_sign(), "keyCertSign"),
            (ku.crl_sign(), "cRLSign"),
        ] {
            if set {
                key_usage.push(name.to_string());
            }
        }
    }
    CertInfo {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        serial: format_serial(c.raw_serial()),
        spiffe_id: spiffe_id(c),
        uri_sans: uri_sans(c),
        dns_sans: dns,
        ip_sans: ips,
        not_before: format_time(nb),
        not_after: format_time(na),
        validity,
        key: key_type(c),
        kind,
        is_ca: c.is_ca(),
        key_usage,
        extended_key_usage: eku_names(c),
        self_signed: c.subject().as_raw() == c.issuer().as_raw(),
    }
}

/// The URI SANs of a certificate.
pub fn uri_sans(c: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(u) = name {
                out.push(u.to_string());
            }
        }
    }
    out
}

/// The certificate's SPIFFE ID: its `spiffe://` URI SAN when it has exactly
/// one URI SAN (an X.509-SVID has exactly one) and that one parses.
pub fn spiffe_id(c: &X509Certificate<'_>) -> Option<String> {
    match uri_sans(c).as_slice() {
        [one] if one.starts_with("spiffe://") => super::spiffe::SpiffeId::parse(one)
            .ok()
            .map(|id| id.to_string()),
        _ => None,
    }
}

/// The trust domain of a CA certificate (its path-less SPIFFE URI SAN).
fn issuer_trust_domain(c: &X509Certificate<'_>) -> Option<String> {
    super::ca::ca_trust_domain(c).ok()
}

fn eku_names(c: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(eku)) = c.extended_key_usage() {
        let e = eku.value;
        for (set, name) in [
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
            (e.any, "any"),
        ] {
            if set {
                out.push(name.to_string());
            }
        }
        out.extend(e.other.iter().map(|o| o.to_id_string()));
    }
    out
}

fn key_type(c: &X509Certificate<'_>) -> String {
    let spki = c.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == oids::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == oids::OID_EC_P256 => "EC P-256".into(),
            Some(c) if c == oids::OID_NIST_EC_P384 => "EC P-384".into(),
            Some(c) => format!("EC {}", c.to_id_string()),
            None => "EC (curve unknown)".into(),
        };
    }
    if *alg == oids::OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(k)) => format!("RSA {} bits", k.key_size()),
            _ => "RSA".into(),
        };
    }
    if *alg == oids::OID_SIG_ED25519 {
        return "Ed25519".into();
    }
    alg.to_id_string()
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap()).to_string(),
        _ => format!("{b:02x?}"),
    }
}

/// `3 d 4 h`, `23 h`, `12 min`, `40 s`.
fn span(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, _) => format!("{h} h"),
        (d, h, _) => format!("{} h ({d} d {h} h)", d * 24 + h),
    }
}

/// The report as text, one certificate after another, then the checks.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let n = report.certificates.len();
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    for (i, c) in report.certificates.iter().enumerate() {
        let _ = writeln!(out, "certificate {} of {n}: {}", i + 1, c.kind);
        let _ = writeln!(out, "  subject:     {}", c.subject);
        let _ = writeln!(
            out,
            "  issuer:      {}{}",
            c.issuer,
            if c.self_signed { " (self-signed)" } else { "" }
        );
        let _ = writeln!(out, "  serial:      {}", c.serial);
        let _ = writeln!(
            out,
            "  SPIFFE ID:   {}",
            c.spiffe_id.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "  URI SANs:    {}", list(&c.uri_sans));
        let _ = writeln!(out, "  DNS SANs:    {}", list(&c.dns_sans));
        let _ = writeln!(out, "  IP SANs:     {}", list(&c.ip_sans));
        let _ = writeln!(out, "  not before:  {}", c.not_before);
        let _ = writeln!(out, "  not after:   {}", c.not_after);
        let _ = writeln!(out, "  validity:    {}", c.validity);
        let _ = writeln!(out, "  key:         {}", c.key);
        let _ = writeln!(out, "  key usage:   {}", list(&c.key_usage));
        let _ = writeln!(out, "  ext. usage:  {}", list(&c.extended_key_usage));
    }
    let _ = writeln!(out, "checks:");
    for c in &report.checks {
        if c.ok {
            let _ = writeln!(out, "  OK    {}", c.what);
        } else {
            let _ = writeln!(out, "  FAIL  {}: {}", c.what, c.detail);
        }
    }
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        let _ = writeln!(out, "result: OK");
    } else {
        let _ = writeln!(out, "result: FAILED ({failed} check(s))");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::ca::{generate, LoadedCa};
    use crate::cert::issue::{issue, IssueRequest, Usage};
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};

    const HOUR: Duration = Duration::from_secs(3600);

    fn ca(td: &str) -> LoadedCa {
        let new = generate(td, HOUR * 24 * 30, OffsetDateTime::now_utc()).unwrap();
        LoadedCa::from_pem(&new.cert_pem, &new.key_pem).unwrap()
    }

    fn leaf(ca: &LoadedCa, id: &str) -> CertificateDer<'static> {
        let req = IssueRequest {
            spiffe_id: id.into(),
            dns: vec!["orders.svc".into()],
            ips: vec!["10.0.0.7".parse().unwrap()],
            ttl: HOUR * 24,
            usage: Usage::Both,
        };
        issue(ca, &req, OffsetDateTime::now_utc()).unwrap().cert_der
    }

    fn failures(r: &Report) -> Vec<String> {
        r.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.what, c.detail))
            .collect()
    }

    /// A leaf minted with rcgen directly, signed by `ca`'s key, valid
    /// `nb..na`.
    fn minted(ca: &LoadedCa, nb: OffsetDateTime, na: OffsetDateTime) -> CertificateDer<'static> {
        let mut p = CertificateParams::default();
        p.subject_alt_names = vec![SanType::URI("spiffe://example.org/old".try_into().unwrap())];
        p.not_before = nb;
        p.not_after = na;
        p.is_ca = IsCa::ExplicitNoCa;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        p.signed_by(&key, &ca.issuer).unwrap().der().clone()
    }

    #[test]
    fn inspect_good_leaf_with_ca() {
        let ca = ca("example.org");
        let l = leaf(&ca, "spiffe://example.org/ns/prod/sa/orders");
        let now = OffsetDateTime::now_utc();
        let r = inspect(
            std::slice::from_ref(&l),
            std::slice::from_ref(&ca.cert_der),
            now,
        )
        .unwrap();
        assert!(r.ok, "{}", render(&r));
        let c = &r.certificates[0];
        assert_eq!(
            c.spiffe_id.as_deref(),
            Some("spiffe://example.org/ns/prod/sa/orders")
        );
        assert_eq!(c.dns_sans, ["orders.svc"]);
        assert_eq!(c.ip_sans, ["10.0.0.7"]);
        assert_eq!(c.key, "EC P-256");
        assert_eq!(c.kind, "leaf");
        assert_eq!(c.extended_key_usage, ["serverAuth", "clientAuth"]);
        assert!(
            c.validity.starts_with("valid, expires in 23 h"),
            "{}",
            c.validity
        );
        // The chain in the file (leaf + CA) checks the same way.
        let r = inspect(&[l, ca.cert_der.clone()], &[], now).unwrap();
        assert!(r.ok, "{}", render(&r));
        assert_eq!(r.certificates[1].kind, "CA (pathlen 0)");
        // A CA alone: its self-signature and validity.
        let r = inspect(std::slice::from_ref(&ca.cert_der), &[], now).unwrap();
        assert!(r.ok, "{}", render(&r));
        assert!(r.checks.iter().any(|c| c.what.contains("self-signature")));
    }

    #[test]
    fn inspect_other_ca_fails() {
        let ca_a = ca("example.org");
        let ca_b = ca("example.org");
        let l = leaf(&ca_a, "spiffe://example.org/a");
        let r = inspect(
            std::slice::from_ref(&l),
            std::slice::from_ref(&ca_b.cert_der),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert!(!r.ok);
        let f = failures(&r).join("\n");
        // Same subject name, different key: the signature check says so.
        assert!(f.contains("signature does not verify"), "{f}");
        // A CA of another trust domain: another name as well.
        let ca_c = ca("other.org");
        let r = inspect(
            &[l],
            std::slice::from_ref(&ca_c.cert_der),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let f = failures(&r).join("\n");
        assert!(f.contains("issued by another CA"), "{f}");
    }

    #[test]
    fn inspect_detects_expired_and_not_yet_valid() {
        let ca = ca("example.org");
        let now = OffsetDateTime::now_utc();
        let expired = minted(
            &ca,
            now - time::Duration::days(3),
            now - time::Duration::hours(2),
        );
        let r = inspect(&[expired], std::slice::from_ref(&ca.cert_der), now).unwrap();
        assert!(!r.ok);
        assert!(
            r.certificates[0].validity.starts_with("EXPIRED (2 h ago)"),
            "{:?}",
            r.certificates[0]
        );
        let f = failures(&r).join("\n");
        assert!(f.contains("certificate 1 validity: expired at"), "{f}");
        assert!(f.contains("CertExpired"), "{f}");

        let future = minted(
            &ca,
            now + time::Duration::hours(5),
            now + time::Duration::days(3),
        );
        let r = inspect(&[future], std::slice::from_ref(&ca.cert_der), now).unwrap();
        assert!(!r.ok);
        assert!(r.certificates[0].validity.starts_with("NOT YET VALID"));
        let f = failures(&r).join("\n");
        assert!(f.contains("not yet valid: valid from"), "{f}");

        // The CA itself expired: the leaf is fine, the root is not.
        let l = leaf(&ca, "spiffe://example.org/a");
        let r = inspect(
            &[l],
            std::slice::from_ref(&ca.cert_der),
            now + time::Duration::days(31),
        )
        .unwrap();
        let f = failures(&r).join("\n");
        assert!(f.contains("CA 1 validity: expired"), "{f}");
    }

    #[test]
    fn inspect_refuses_malformed_svids() {
        let ca = ca("example.org");
        let now = OffsetDateTime::now_utc();
        let with_uris = |uris: &[&str]| {
            let mut p = CertificateParams::default();
            p.subject_alt_names = uris
                .iter()
                .map(|u| SanType::URI((*u).try_into().unwrap()))
                .collect();
            p.not_before = now - time::Duration::minutes(1);
            p.not_after = now + time::Duration::hours(1);
            p.is_ca = IsCa::ExplicitNoCa;
            let key = KeyPair::generate().unwrap();
            p.signed_by(&key, &ca.issuer).unwrap().der().clone()
        };
        for (uris, why) in [
            (
                &["spiffe://example.org/a", "spiffe://example.org/admin"][..],
                "an X.509-SVID has exactly one",
            ),
            (
                &["spiffe://example.org/a", "https://x.example/"][..],
                "exactly one",
            ),
            (&["spiffe://Example.org/a"][..], "uppercase"),
            (&["SPIFFE://example.org/a"][..], "lowercase"),
            (&["spiffe://example.org/a/../b"][..], "dot segments"),
            (&["spiffe://example.org"][..], "no path"),
        ] {
            let r = inspect(&[with_uris(uris)], std::slice::from_ref(&ca.cert_der), now).unwrap();
            let f = failures(&r).join("\n");
            assert!(
                f.contains("certificate 1 SPIFFE ID: ") && f.contains(why),
                "{uris:?}: {f}"
            );
            if why != "no path" {
                assert_eq!(r.certificates[0].spiffe_id, None, "{uris:?}");
            }
        }
        // The CA's own trust-domain ID has no path and passes.
        let r = inspect(std::slice::from_ref(&ca.cert_der), &[], now).unwrap();
        assert!(r.ok, "{}", render(&r));
    }

    #[test]
    fn inspect_refuses_forged_chains() {
        let now = OffsetDateTime::now_utc();
        let ca = ca("example.org");
        // A leaf signing another certificate: not a CA.
        let leaf_key = KeyPair::generate().unwrap();
        let mut lp = CertificateParams::new(vec!["leaf.example".to_string()]).unwrap();
        lp.is_ca = IsCa::ExplicitNoCa;
        lp.not_before = now - time::Duration::minutes(1);
        lp.not_after = now + time::Duration::hours(1);
        let leaf_cert = lp.signed_by(&leaf_key, &ca.issuer).unwrap().der().clone();
        let leaf_issuer = Issuer::new(lp, leaf_key);
        let mut child = CertificateParams::default();
        child.subject_alt_names = vec![SanType::URI(
            "spiffe://example.org/admin".try_into().unwrap(),
        )];
        child.not_before = now - time::Duration::minutes(1);
        child.not_after = now + time::Duration::hours(1);
        let child_key = KeyPair::generate().unwrap();
        let forged = child
            .signed_by(&child_key, &leaf_issuer)
            .unwrap()
            .der()
            .clone();
        let r = inspect(
            &[forged, leaf_cert],
            std::slice::from_ref(&ca.cert_der),
            now,
        )
        .unwrap();
        let f = failures(&r).join("\n");
        assert!(f.contains("is not a CA"), "{f}");

        // A CA of trust domain other.org signing an example.org identity.
        let other = generate("other.org", HOUR * 24, now).unwrap();
        let other = LoadedCa::from_pem(&other.cert_pem, &other.key_pem).unwrap();
        let smuggled = minted(
            &other,
            now - time::Duration::minutes(1),
            now + time::Duration::hours(1),
        );
        let r = inspect(&[smuggled], std::slice::from_ref(&other.cert_der), now).unwrap();
        let f = failures(&r).join("\n");
        assert!(
            f.contains("outside the issuer's trust domain \"other.org\""),
            "{f}"
        );

        // A self-signed leaf claiming the identity, with the real CA as root.
        let mut p = CertificateParams::default();
        p.subject_alt_names = vec![SanType::URI("spiffe://example.org/a".try_into().unwrap())];
        let k = KeyPair::generate().unwrap();
        let selfie = p.self_signed(&k).unwrap().der().clone();
        let r = inspect(&[selfie], std::slice::from_ref(&ca.cert_der), now).unwrap();
        assert!(!r.ok);

        // A leaf and a CA that did not sign it, in one file.
        let ca_b = self::ca("example.org");
        let l = leaf(&ca_b, "spiffe://example.org/a");
        let r = inspect(&[l, ca.cert_der.clone()], &[], now).unwrap();
        let f = failures(&r).join("\n");
        assert!(f.contains("signature does not verify"), "{f}");
    }
}
