//! The self-signed certificate every contender terminates TLS with.

use std::path::{Path, PathBuf};

/// PEM files in the run directory.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Certificate then key in one file (haproxy's `crt`).
    pub combined: PathBuf,
}

/// Mint an ECDSA P-256 certificate for `localhost` / `127.0.0.1` into `dir`.
pub fn mint(dir: &Path) -> Result<CertFiles, String> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| format!("cannot mint a certificate: {e}"))?;
    let cert_pem = ck.cert.pem();
    let key_pem = ck.signing_key.serialize_pem();
    let files = CertFiles {
        cert: dir.join("bench-cert.pem"),
        key: dir.join("bench-key.pem"),
        combined: dir.join("bench-combined.pem"),
    };
    let w = |p: &Path, s: &str| std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()));
    w(&files.cert, &cert_pem)?;
    w(&files.key, &key_pem)?;
    w(&files.combined, &format!("{cert_pem}{key_pem}"))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mints_pem_files() {
        let dir = std::env::temp_dir().join(format!("ringway-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = super::mint(&dir).unwrap();
        let cert = std::fs::read_to_string(&f.cert).unwrap();
        let key = std::fs::read_to_string(&f.key).unwrap();
        let both = std::fs::read_to_string(&f.combined).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY-----"));
        assert_eq!(both, format!("{cert}{key}"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
