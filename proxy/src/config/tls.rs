//! TLS material: listener `ServerConfig`s (SNI-aware) and cluster
//! `ClientConfig`s (upstream TLS, optional mTLS).
//!
//! Both use the `ring` provider explicitly, TLS 1.2 and 1.3 only, and ALPN
//! `http/1.1`. Every function reports problems as [`ConfigError`]s whose path
//! is the config key that named the file (`listener[0].tls.cert`), with
//! `line: None` — the build step fills in lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::error::ConfigError;
use super::file::{ClusterTlsFile, ListenerTlsFile};
use super::UpstreamTls;

/// The only application protocol ringway speaks.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// TLS 1.3 and 1.2; nothing older.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider used for every config (`ring`).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `path` relative to `base_dir` unless absolute.
pub fn resolve_path(base_dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() || base_dir.as_os_str().is_empty() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// An I/O error without the ` (os error N)` suffix.
fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn read_file(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read {}: {}", file.display(), io_message(&e)))
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = read_file(file)?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&data) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => return Err(format!("cannot parse {} as PEM: {e}", file.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "no certificate found in {} (expected a PEM \"BEGIN CERTIFICATE\" block)",
            file.display()
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(file: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = read_file(file)?;
    match PrivateKeyDer::from_pem_slice(&data) {
        Ok(k) => Ok(k),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(format!(
            "no private key found in {} (expected a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)",
            file.display()
        )),
        Err(e) => Err(format!("cannot parse {} as PEM: {e}", file.display())),
    }
}

/// A certificate chain with its private key, checked to belong together.
struct LoadedPair {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    certified: Arc<CertifiedKey>,
}

/// Load a chain + key pair and check that they belong together.
/// Errors name `cert_path` / `key_path` (config key paths).
fn load_certified_key(
    provider: &CryptoProvider,
    base_dir: &Path,
    cert: &str,
    key: &str,
    cert_path: &str,
    key_path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<LoadedPair> {
    let chain = load_certs(&resolve_path(base_dir, cert))
        .map_err(|m| errors.push(ConfigError::new(cert_path, m)))
        .ok();
    let key_der = load_key(&resolve_path(base_dir, key))
        .map_err(|m| errors.push(ConfigError::new(key_path, m)))
        .ok();
    let (chain, key_der) = (chain?, key_der?);
    match CertifiedKey::from_der(chain.clone(), key_der.clone_key(), provider) {
        Ok(certified) => Some(LoadedPair {
            chain,
            key: key_der,
            certified: Arc::new(certified),
        }),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            errors.push(ConfigError::new(
                key_path,
                format!(
                    "key {key} does not belong to certificate {cert} (their public keys differ)"
                ),
            ));
            None
        }
        Err(e) => {
            errors.push(ConfigError::new(
                key_path,
                format!("unusable certificate {cert} / key {key}: {e}"),
            ));
            None
        }
    }
}

/// A name a server certificate is chosen for: exact or one-label wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SniName {
    /// `a.example` (lower case).
    Exact(String),
    /// `*.b.example`, stored as `b.example`: matches `x.b.example` only.
    Wildcard(String),
}

impl SniName {
    /// Parse `a.example` / `*.b.example` (case-insensitive).
    pub fn parse(name: &str) -> Result<SniName, String> {
        let lower = name.trim().to_ascii_lowercase();
        let (wild, rest) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if !is_dns_name(rest) {
            return Err(format!(
                "invalid SNI name {name:?}: expected a DNS name such as \"a.example\" or a one-label wildcard such as \"*.b.example\""
            ));
        }
        Ok(if wild {
            SniName::Wildcard(rest.to_owned())
        } else {
            SniName::Exact(rest.to_owned())
        })
    }
}

/// Letters, digits, `-` and `_` in non-empty labels separated by dots.
pub(crate) fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A server certificate whose stapled OCSP response can be replaced while
/// the listener runs (`tls.ocsp`, re-read when the file changes by the
/// server's OCSP thread; handshakes load the current one lock-free).
#[derive(Debug)]
pub struct StapledKey {
    current: arc_swap::ArcSwap<CertifiedKey>,
    /// The DER OCSP response file, if any.
    pub ocsp_file: Option<PathBuf>,
    /// Modification time of the OCSP file when it was last read.
    seen: std::sync::Mutex<Option<std::time::SystemTime>>,
}

impl StapledKey {
    pub fn new(key: CertifiedKey, ocsp_file: Option<PathBuf>) -> StapledKey {
        StapledKey {
            current: arc_swap::ArcSwap::from_pointee(key),
            ocsp_file,
            seen: std::sync::Mutex::new(None),
        }
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Read the OCSP file again when its modification time changed. Returns
    /// whether a new response was installed; an unreadable file keeps the
    /// last good response (and says why).
    pub fn refresh_ocsp(&self) -> Result<bool, String> {
        let Some(file) = &self.ocsp_file else {
            return Ok(false);
        };
        let modified = std::fs::metadata(file)
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {}", file.display(), io_message(&e)))?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == Some(modified) {
            return Ok(false);
        }
        let der = read_file(file)?;
        if der.is_empty() {
            return Err(format!("{}: the OCSP response is empty", file.display()));
        }
        let base = self.current.load();
        let mut next = CertifiedKey::new(base.cert.clone(), base.key.clone());
        next.ocsp = Some(der);
        self.current.store(Arc::new(next));
        *seen = Some(modified);
        Ok(true)
    }
}

/// Chooses the server certificate from the SNI name: exact names first, then
/// one-label wildcards, then the default; no match and no default = no
/// certificate (the handshake fails).
#[derive(Debug, Default)]
pub struct SniResolver {
    default: Option<Arc<StapledKey>>,
    exact: HashMap<String, Arc<StapledKey>>,
    wildcard: HashMap<String, Arc<StapledKey>>,
}

impl SniResolver {
    pub fn new() -> SniResolver {
        SniResolver::default()
    }

    pub fn set_default(&mut self, key: Arc<StapledKey>) {
        self.default = Some(key);
    }

    /// Add a name; returns `false` (and keeps the first) if already present.
    pub fn add(&mut self, name: SniName, key: Arc<StapledKey>) -> bool {
        let map = match &name {
            SniName::Exact(_) => &mut self.exact,
            SniName::Wildcard(_) => &mut self.wildcard,
        };
        let (SniName::Exact(n) | SniName::Wildcard(n)) = name;
        if map.contains_key(&n) {
            return false;
        }
        map.insert(n, key);
        true
    }

    /// The certificate for a client-sent server name (`None` = no SNI).
    pub fn choose(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = server_name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(k) = self.exact.get(&name) {
                return Some(k.current());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(k) = self.wildcard.get(parent) {
                    return Some(k.current());
                }
            }
        }
        self.default.as_ref().map(|k| k.current())
    }

    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.exact.is_empty() && self.wildcard.is_empty()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(client_hello.server_name())
    }
}

/// Listener TLS settings besides the certificates.
#[derive(Debug, Clone, Copy)]
pub struct ServerTlsOptions {
    /// TLS 1.3 only (`min_version = "1.3"`); else 1.2 and 1.3.
    pub tls13_only: bool,
    /// The server's cipher-suite order wins over the client's.
    pub prefer_server_ciphers: bool,
    /// Stateless session tickets (TLS 1.2 and 1.3).
    pub session_tickets: bool,
}

impl Default for ServerTlsOptions {
    fn default() -> Self {
        ServerTlsOptions {
            tls13_only: false,
            prefer_server_ciphers: true,
            session_tickets: true,
        }
    }
}

/// The client-certificate verifier of a listener with `client_ca` (mTLS):
/// chains must end at one of the CAs (web PKI rules: validity, key usage,
/// signatures), not be revoked by a `crl`; `client_auth = "optional"` lets
/// clients without a certificate through (a filter decides).
fn client_verifier(
    file: &ListenerTlsFile,
    path: &str,
    base_dir: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, Vec<ConfigError>> {
    let optional = match file.client_auth.as_deref() {
        None | Some("required") => false,
        Some("optional") => true,
        Some(other) => {
            return Err(vec![ConfigError::new(
                format!("{path}.client_auth"),
                format!("expected \"required\" or \"optional\" (found {other:?})"),
            )])
        }
    };
    let Some(cas) = file.client_ca.as_ref() else {
        if file.client_auth.is_some() || file.crl.is_some() {
            let key = if file.client_auth.is_some() {
                "client_auth"
            } else {
                "crl"
            };
            return Err(vec![ConfigError::new(
                format!("{path}.{key}"),
                "needs `client_ca` (the CAs client certificates must chain to)",
            )]);
        }
        return Ok(None);
    };
    let mut errors = Vec::new();
    if cas.is_empty() {
        errors.push(ConfigError::new(
            format!("{path}.client_ca"),
            "at least one CA file is required",
        ));
    }
    let mut roots = RootCertStore::empty();
    for (i, ca) in cas.iter().enumerate() {
        match load_certs(&resolve_path(base_dir, ca)) {
            Err(m) => errors.push(ConfigError::new(format!("{path}.client_ca[{i}]"), m)),
            Ok(certs) => {
                for c in certs {
                    if let Err(e) = roots.add(c) {
                        errors.push(ConfigError::new(
                            format!("{path}.client_ca[{i}]"),
                            format!("not a usable CA certificate: {e}"),
                        ));
                    }
                }
            }
        }
    }
    let mut crls = Vec::new();
    for (i, crl) in file.crl.iter().flatten().enumerate() {
        let file = resolve_path(base_dir, crl);
        match read_file(&file) {
            Err(m) => errors.push(ConfigError::new(format!("{path}.crl[{i}]"), m)),
            Ok(data) => {
                let mut found = false;
                for item in rustls_pki_types::CertificateRevocationListDer::pem_slice_iter(&data) {
                    match item {
                        Ok(c) => {
                            found = true;
                            crls.push(c);
                        }
                        Err(e) => errors.push(ConfigError::new(
                            format!("{path}.crl[{i}]"),
                            format!("cannot parse {} as a PEM CRL: {e}", file.display()),
                        )),
                    }
                }
                if !found {
                    errors.push(ConfigError::new(
                        format!("{path}.crl[{i}]"),
                        format!("no \"BEGIN X509 CRL\" block in {}", file.display()),
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .with_crls(crls);
    if optional {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map(Some).map_err(|e| {
        vec![ConfigError::new(
            format!("{path}.client_ca"),
            format!("cannot build the client certificate verifier: {e}"),
        )]
    })
}

/// The session-ticket keys of the process: one ticketer (rustls's ring
/// ticketer, keys rotated every 6 hours, a ticket valid for up to 12) shared
/// by every listener, every worker and every configuration generation, so a
/// ticket issued by one worker resumes on another and across reloads.
pub fn shared_ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    static TICKETER: std::sync::OnceLock<Arc<dyn rustls::server::ProducesTickets>> =
        std::sync::OnceLock::new();
    if let Some(t) = TICKETER.get() {
        return Ok(t.clone());
    }
    let t = rustls::crypto::ring::Ticketer::new()?;
    Ok(TICKETER.get_or_init(|| t).clone())
}

/// A `ServerConfig` (ALPN http/1.1, no client auth) around a certificate
/// resolver, with `options`.
pub fn server_config_with_resolver(
    resolver: Arc<dyn ResolvesServerCert>,
    options: ServerTlsOptions,
    client_verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        PROTOCOL_VERSIONS
    };
    let builder =
        ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions)?;
    let mtls = client_verifier.is_some();
    let builder = match client_verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    config.ignore_client_order = options.prefer_server_ciphers;
    if mtls {
        // No resumption on an mTLS listener: a resumed handshake would take
        // the client certificate from the ticket or cache without running
        // this listener's verifier (its CAs, its CRLs, `required`) again.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    } else if options.session_tickets {
        config.ticketer = shared_ticketer()?;
    } else {
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// A listener's TLS: the `ServerConfig` and the certificates whose stapled
/// OCSP response is re-read from a file.
pub type ListenerTls = (Arc<ServerConfig>, Vec<Arc<StapledKey>>);

/// Build a listener's `ServerConfig` from its `tls` table. `path` is the key
/// path of that table (`listener[0].tls`).
pub fn listener_tls(
    file: &ListenerTlsFile,
    path: &str,
    base_dir: &Path,
) -> Result<ListenerTls, Vec<ConfigError>> {
    let provider = provider();
    let mut errors = Vec::new();
    let mut resolver = SniResolver::new();
    let mut stapled: Vec<Arc<StapledKey>> = Vec::new();
    let mut staple = |certified: Arc<CertifiedKey>,
                      ocsp: &Option<String>,
                      key_path: String,
                      errors: &mut Vec<ConfigError>|
     -> Arc<StapledKey> {
        let file = ocsp.as_deref().map(|p| resolve_path(base_dir, p));
        let key = Arc::new(StapledKey::new((*certified).clone(), file.clone()));
        if file.is_some() {
            if let Err(m) = key.refresh_ocsp() {
                errors.push(ConfigError::new(key_path, m));
            }
            stapled.push(key.clone());
        }
        key
    };

    match (&file.cert, &file.key) {
        (Some(cert), Some(key)) => {
            if let Some(pair) = load_certified_key(
                &provider,
                base_dir,
                cert,
                key,
                &format!("{path}.cert"),
                &format!("{path}.key"),
                &mut errors,
            ) {
                let key = staple(
                    pair.certified,
                    &file.ocsp,
                    format!("{path}.ocsp"),
                    &mut errors,
                );
                resolver.set_default(key);
            }
        }
        (Some(_), None) => errors.push(ConfigError::new(
            format!("{path}.key"),
            "`cert` is set but `key` is missing",
        )),
        (None, Some(_)) => errors.push(ConfigError::new(
            format!("{path}.cert"),
            "`key` is set but `cert` is missing",
        )),
        (None, None) => {
            if file.sni.is_empty() {
                errors.push(ConfigError::new(
                    path,
                    "TLS needs a default certificate (`cert` and `key`) or at least one `sni` entry",
                ));
            }
        }
    }

    for (i, entry) in file.sni.iter().enumerate() {
        let entry_path = format!("{path}.sni[{i}]");
        if entry.names.is_empty() {
            errors.push(ConfigError::new(
                format!("{entry_path}.names"),
                "at least one name is required",
            ));
        }
        let mut names = Vec::new();
        for (j, name) in entry.names.iter().enumerate() {
            match SniName::parse(name) {
                Ok(n) => names.push((j, n)),
                Err(m) => errors.push(ConfigError::new(format!("{entry_path}.names[{j}]"), m)),
            }
        }
        let Some(pair) = load_certified_key(
            &provider,
            base_dir,
            &entry.cert,
            &entry.key,
            &format!("{entry_path}.cert"),
            &format!("{entry_path}.key"),
            &mut errors,
        ) else {
            continue;
        };
        let key = staple(
            pair.certified,
            &entry.ocsp,
            format!("{entry_path}.ocsp"),
            &mut errors,
        );
        for (j, name) in names {
            if !resolver.add(name, key.clone()) {
                errors.push(ConfigError::new(
                    format!("{entry_path}.names[{j}]"),
                    format!("SNI name {:?} is listed more than once", entry.names[j]),
                ));
            }
        }
    }

    let tls13_only = match file.min_version.as_deref() {
        None | Some("1.2") => false,
        Some("1.3") => true,
        Some(other) => {
            errors.push(ConfigError::new(
                format!("{path}.min_version"),
                format!("expected \"1.2\" or \"1.3\" (found {other:?}); older versions are never offered"),
            ));
            false
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let options = ServerTlsOptions {
        tls13_only,
        prefer_server_ciphers: file.prefer_server_ciphers.unwrap_or(true),
        session_tickets: file.session_tickets.unwrap_or(true),
    };
    let client_verifier = client_verifier(file, path, base_dir, &provider)?;
    server_config_with_resolver(Arc::new(resolver), options, client_verifier)
        .map(|c| (c, stapled))
        .map_err(|e| {
            vec![ConfigError::new(
                path,
                format!("cannot build TLS config: {e}"),
            )]
        })
}

/// Build a cluster's upstream TLS settings from its `tls` table. `path` is
/// the key path of that table (`cluster[0].tls`); `first_host` is the host
/// part of the cluster's first endpoint (the default `server_name`).
pub fn upstream_tls(
    file: &ClusterTlsFile,
    path: &str,
    base_dir: &Path,
    first_host: Option<&str>,
) -> Result<UpstreamTls, Vec<ConfigError>> {
    let provider = provider();
    let mut errors = Vec::new();

    let server_name = match (&file.server_name, first_host) {
        (Some(name), _) => match ServerName::try_from(name.trim().to_owned()) {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(ConfigError::new(
                    format!("{path}.server_name"),
                    format!("invalid server name {name:?}: expected a DNS name or an IP address"),
                ));
                None
            }
        },
        (None, Some(host)) => match ServerName::try_from(host.to_owned()) {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(ConfigError::new(
                    format!("{path}.server_name"),
                    format!("the first endpoint's host {host:?} is not a valid TLS server name; set `server_name`"),
                ));
                None
            }
        },
        (None, None) => {
            errors.push(ConfigError::new(
                format!("{path}.server_name"),
                "cannot derive a server name from the endpoints; set `server_name`",
            ));
            None
        }
    };

    let roots = if file.insecure_skip_verify {
        if file.ca.is_some() {
            errors.push(ConfigError::new(
                format!("{path}.ca"),
                "`ca` has no effect with `insecure_skip_verify = true`; remove one of them",
            ));
        }
        None
    } else {
        match &file.ca {
            None => {
                errors.push(ConfigError::new(
                    format!("{path}.ca"),
                    "upstream TLS needs `ca` (a PEM file of trusted CA certificates) unless `insecure_skip_verify = true`",
                ));
                None
            }
            Some(ca) => match load_certs(&resolve_path(base_dir, ca)) {
                Err(m) => {
                    errors.push(ConfigError::new(format!("{path}.ca"), m));
                    None
                }
                Ok(certs) => {
                    let mut store = RootCertStore::empty();
                    let (added, _ignored) = store.add_parsable_certificates(certs);
                    if added == 0 {
                        errors.push(ConfigError::new(
                            format!("{path}.ca"),
                            format!("no usable CA certificate in {ca}"),
                        ));
                    }
                    Some(store)
                }
            },
        }
    };

    // SPIFFE: the server is verified by its URI SAN, not a DNS name.
    let spiffe = match (&file.spiffe_id, &file.spiffe_trust_domain) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            errors.push(ConfigError::new(
                format!("{path}.spiffe_trust_domain"),
                "give `spiffe_id` or `spiffe_trust_domain`, not both",
            ));
            None
        }
        (Some(id), None) => match crate::cert::spiffe::SpiffeId::parse(id) {
            Ok(_) => Some(SpiffeExpect::Id(id.clone())),
            Err(m) => {
                errors.push(ConfigError::new(format!("{path}.spiffe_id"), m));
                None
            }
        },
        (None, Some(td)) => match crate::cert::spiffe::validate_trust_domain(td) {
            Ok(()) => Some(SpiffeExpect::TrustDomain(td.clone())),
            Err(m) => {
                errors.push(ConfigError::new(format!("{path}.spiffe_trust_domain"), m));
                None
            }
        },
    };
    if spiffe.is_some() && file.insecure_skip_verify {
        errors.push(ConfigError::new(
            format!("{path}.insecure_skip_verify"),
            "a SPIFFE check needs a verified chain: remove `insecure_skip_verify`",
        ));
    }

    let client_auth = match (&file.cert, &file.key) {
        (Some(cert), Some(key)) => load_certified_key(
            &provider,
            base_dir,
            cert,
            key,
            &format!("{path}.cert"),
            &format!("{path}.key"),
            &mut errors,
        ),
        (Some(_), None) => {
            errors.push(ConfigError::new(
                format!("{path}.key"),
                "`cert` is set but `key` is missing (a client certificate needs both)",
            ));
            None
        }
        (None, Some(_)) => {
            errors.push(ConfigError::new(
                format!("{path}.cert"),
                "`key` is set but `cert` is missing (a client certificate needs both)",
            ));
            None
        }
        (None, None) => None,
    };

    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(server_name) = server_name else {
        return Err(vec![ConfigError::new(path, "no server name")]);
    };
    let build = || -> Result<ClientConfig, rustls::Error> {
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(PROTOCOL_VERSIONS)?;
        let builder =
            match (roots, spiffe) {
                (Some(store), Some(expect)) => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier {
                        roots: store.roots,
                        expect,
                        provider: provider.clone(),
                        signatures: AcceptAnyServerCert::new(provider.clone()),
                    })),
                (Some(store), None) => builder.with_root_certificates(store),
                (None, _) => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new(
                        provider.clone(),
                    ))),
            };
        let mut config = match client_auth {
            Some(pair) => builder.with_client_auth_cert(pair.chain, pair.key)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(config)
    };
    match build() {
        Ok(config) => Ok(UpstreamTls {
            config: Arc::new(config),
            server_name,
        }),
        Err(e) => Err(vec![ConfigError::new(
            path,
            format!("cannot build TLS config: {e}"),
        )]),
    }
}

/// What a cluster's `spiffe_id` / `spiffe_trust_domain` asks of the server.
#[derive(Debug, Clone)]
pub enum SpiffeExpect {
    Id(String),
    TrustDomain(String),
}

/// Outbound mTLS with SPIFFE identities: the server's chain must verify
/// against the cluster's `ca` (web PKI rules, `serverAuth`), and its SPIFFE
/// ID (exactly one well-formed `spiffe://` URI SAN) must be the expected
/// one or in the expected trust domain. The name sent in SNI is not checked
/// against a DNS SAN: workload certificates name workloads, not hosts.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: Vec<rustls_pki_types::TrustAnchor<'static>>,
    expect: SpiffeExpect,
    provider: Arc<CryptoProvider>,
    /// Handshake signatures are checked as every verifier here does.
    signatures: AcceptAnyServerCert,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let bad = |m: String| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                Arc::new(std::io::Error::other(m)),
            )))
        };
        let ee = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| bad(format!("unparsable server certificate: {e:?}")))?;
        ee.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &self.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| bad(format!("server certificate does not verify: {e:?}")))?;
        let id = crate::pipeline::filters::context::PeerIdentity::of(end_entity.as_ref()).id;
        let ok = id.starts_with("spiffe://")
            && match &self.expect {
                SpiffeExpect::Id(want) => &id == want,
                SpiffeExpect::TrustDomain(td) => id
                    .strip_prefix("spiffe://")
                    .and_then(|r| r.split('/').next())
                    .is_some_and(|t| t == td),
            };
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(bad(format!(
                "server SPIFFE ID {id:?} is not the expected {:?}",
                self.expect
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

/// `insecure_skip_verify = true`: accepts ANY upstream certificate (expired,
/// self-signed, for another name). Handshake signatures are still checked,
/// so the peer must hold the key of the certificate it sent — but anyone can
/// mint such a certificate. For tests and local experiments only.
#[derive(Debug)]
pub struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyServerCert {
    pub fn new(provider: Arc<CryptoProvider>) -> AcceptAnyServerCert {
        AcceptAnyServerCert { provider }
    }
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
    fn sni_names() {
        assert_eq!(
            SniName::parse("A.Example"),
            Ok(SniName::Exact("a.example".into()))
        );
        assert_eq!(
            SniName::parse("*.B.example"),
            Ok(SniName::Wildcard("b.example".into()))
        );
        for bad in [
            "", "*", "*.", "a..b", "a.*.b", "a b", "**.x", "x:443", "-a.b",
        ] {
            assert!(SniName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_files_are_reported() {
        let file = ListenerTlsFile {
            cert: Some("/nonexistent/ringway/cert.pem".into()),
            key: Some("/nonexistent/ringway/key.pem".into()),
            ..ListenerTlsFile::default()
        };
        let errs = listener_tls(&file, "listener[0].tls", Path::new("/")).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].path, "listener[0].tls.cert");
        assert_eq!(
            errs[0].message,
            "cannot read /nonexistent/ringway/cert.pem: No such file or directory"
        );
        assert_eq!(errs[1].path, "listener[0].tls.key");
    }

    #[test]
    fn upstream_requires_ca() {
        let errs = upstream_tls(
            &ClusterTlsFile::default(),
            "cluster[0].tls",
            Path::new("."),
            Some("127.0.0.1"),
        )
        .unwrap_err();
        assert_eq!(errs[0].path, "cluster[0].tls.ca");
        let ok = upstream_tls(
            &ClusterTlsFile {
                insecure_skip_verify: true,
                ..Default::default()
            },
            "cluster[0].tls",
            Path::new("."),
            Some("localhost"),
        )
        .unwrap();
        assert_eq!(ok.server_name, ServerName::try_from("localhost").unwrap());
        assert_eq!(ok.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
