//! `ringway cert`: a small certificate authority for the mesh's mTLS with
//! SPIFFE identities (X.509-SVIDs).
//!
//! * [`ca`]: `ca init`: a self-signed EC P-256 CA whose URI SAN records its
//!   trust domain (`spiffe://example.org`); loading it back to issue.
//! * [`issue`]: `issue`: an EC P-256 leaf whose only URI SAN is a SPIFFE ID
//!   of the CA's trust domain, plus DNS/IP SANs.
//! * [`inspect`]: `inspect`: what a PEM file holds and whether its chain
//!   (to `--ca`) verifies, with exactly what fails when it does not.
//! * [`spiffe`]: the SPIFFE ID parser the mTLS authorization also uses.
//!
//! Errors are `String`s that say what is wrong and what to do; the command
//! prints them after `error: `. Private keys are created with mode 0600 from
//! the start (never written first and restricted after); no file is
//! overwritten without `--force`.

pub mod ca;
pub mod inspect;
pub mod issue;
pub mod spiffe;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// Backdating of `notBefore`, for peers whose clocks run a little slow.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// Refuses to go on when any of `paths` exists and `force` is off; checked
/// for every output before the first is written.
pub fn check_writable(paths: &[&Path], force: bool) -> Result<(), String> {
    if force {
        return Ok(());
    }
    for p in paths {
        if p.exists() {
            return Err(format!(
                "{} exists; not overwriting it (pass --force to replace it)",
                p.display()
            ));
        }
    }
    Ok(())
}

/// Writes a private key: the file is created with mode 0600 (the open
/// itself sets it), never chmod-ed afterwards. With `force` an existing
/// file is removed first, so an old file's wider mode is not kept.
pub fn write_private(path: &Path, contents: &str, force: bool) -> Result<(), String> {
    write_file(path, contents, force, 0o600)
}

/// Writes a certificate (public): mode 0644.
pub fn write_public(path: &Path, contents: &str, force: bool) -> Result<(), String> {
    write_file(path, contents, force, 0o644)
}

fn write_file(path: &Path, contents: &str, force: bool, mode: u32) -> Result<(), String> {
    if force {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing {}: {e}", path.display())),
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} exists; not overwriting it (pass --force to replace it)",
                path.display()
            ),
            _ => format!("creating {}: {e}", path.display()),
        })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Every certificate in a PEM text, in order; an error when there is none.
pub fn parse_pem_certs(text: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: not valid PEM: {e:?}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no CERTIFICATE block in it"));
    }
    Ok(certs)
}

/// Reads every certificate from a PEM file.
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_pem_certs(&text, &path.display().to_string())
}

/// `2026-11-29 19:54:11 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `now + d`, or an error when that is past what a certificate can hold.
pub fn add_duration(now: OffsetDateTime, d: Duration) -> Result<OffsetDateTime, String> {
    let d = time::Duration::try_from(d).map_err(|_| format!("{d:?} is too long"))?;
    now.checked_add(d)
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| "the validity would end after the year 9999".to_string())
}

/// A serial number: 16 random bytes, the top bit cleared so the DER
/// INTEGER stays positive and at most 16 bytes (RFC 5280 §4.1.2.2).
pub fn random_serial() -> Result<rcgen::SerialNumber, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random number generator failed".to_string())?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // never a leading zero byte: a fixed-length serial
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// `0a:1b:…` for a serial number's big-endian bytes.
pub fn format_serial(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ringway-cert-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn private_files_are_0600_and_not_overwritten() {
        let d = temp_dir("modes");
        let key = d.join("k.pem");
        // An existing world-readable file replaced with --force does not
        // keep its mode.
        std::fs::write(&key, "old").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = write_private(&key, "new", false).unwrap_err();
        assert!(e.contains("--force"), "{e}");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "old");
        write_private(&key, "new", true).unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "new");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(check_writable(&[&key], false).is_err());
        assert!(check_writable(&[&key], true).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
