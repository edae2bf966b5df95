//! The rustls client configuration for https:// targets (ring provider).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::cli::TlsTrust;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Build the client configuration; offers ALPN `http/1.1` only. With
/// `resumption`, sessions are kept in rustls's in-memory store (shared by
/// every connection of the run) and resumed. With `identity` (certificate
/// chain and key files, PEM), the client presents that certificate when the
/// server asks for one (mutual TLS).
pub fn client_config(
    trust: &TlsTrust,
    resumption: bool,
    identity: Option<&(PathBuf, PathBuf)>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot build the TLS configuration: {e}"))?;
    let builder = match trust {
        TlsTrust::CaFile(path) => builder.with_root_certificates(load_roots(path)?),
        TlsTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider })),
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let (chain, key) = load_identity(cert, key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--client-cert/--client-key: {e}"))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = if resumption {
        rustls::client::Resumption::store(Arc::new(TicketStore::default()))
    } else {
        rustls::client::Resumption::disabled()
    };
    Ok(Arc::new(config))
}

/// `--client-cert` (a chain, leaf first) and `--client-key`.
fn load_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read --client-cert {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse --client-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--client-cert {}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read --client-key {}: {e}", key.display()))?;
    Ok((chain, key))
}

fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read --cacert {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse --cacert {}: {e}", path.display()))?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "--cacert {}: no usable CA certificate",
            path.display()
        ));
    }
    Ok(store)
}

/// The TLS server name (SNI, certificate check) for the URL host.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("invalid TLS server name '{host}': {e}"))
}

/// Sessions to resume, shared by every connection of a worker: many
/// clients' worth of TLS 1.3 tickets (rustls's own cache keeps 8 per
/// server, so 50 connections opening at once would mostly find none and
/// make full handshakes: a load-generator artifact, not what 50 real
/// clients, each with its own cache, would do).
#[derive(Debug, Default)]
struct TicketStore {
    inner: std::sync::Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    kx: std::collections::HashMap<ServerName<'static>, rustls::NamedGroup>,
    tls12: std::collections::HashMap<ServerName<'static>, rustls::client::Tls12ClientSessionValue>,
    tls13: std::collections::HashMap<
        ServerName<'static>,
        std::collections::VecDeque<rustls::client::Tls13ClientSessionValue>,
    >,
}

/// TLS 1.3 tickets kept per server (the oldest are dropped past it).
const TICKETS_PER_SERVER: usize = 4096;

impl rustls::client::ClientSessionStore for TicketStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.lock().unwrap().kx.insert(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner
            .lock()
            .unwrap()
            .kx
            .get(&server_name.to_owned())
            .copied()
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.lock().unwrap().tls12.insert(server_name, value);
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner
            .lock()
            .unwrap()
            .tls12
            .get(&server_name.to_owned())
            .cloned()
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.lock().unwrap().tls12.remove(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        let mut s = self.inner.lock().unwrap();
        let q = s.tls13.entry(server_name).or_default();
        if q.len() == TICKETS_PER_SERVER {
            q.pop_front();
        }
        q.push_back(value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        // Newest first: the likeliest to be within the server's key window.
        self.inner
            .lock()
            .unwrap()
            .tls13
            .get_mut(server_name)
            .and_then(|q| q.pop_back())
    }
}

/// `--insecure`: any certificate is accepted; handshake signatures are
/// still verified.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_config_builds() {
        let c = client_config(&TlsTrust::Insecure, true, None).unwrap();
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_ca_file_is_reported() {
        let err =
            client_config(&TlsTrust::CaFile("/nonexistent/ca.pem".into()), true, None).unwrap_err();
        assert!(err.contains("--cacert"), "{err}");
        let files = ("/nonexistent/c.pem".into(), "/nonexistent/k.pem".into());
        let err = client_config(&TlsTrust::Insecure, true, Some(&files)).unwrap_err();
        assert!(err.contains("--client-cert"), "{err}");
    }

    #[test]
    fn server_names() {
        assert!(server_name("localhost").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
    }
}
