//! `[[listener]]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::super::file::*;
use super::super::source::Skipped;
use super::super::*;
use super::Builder;

impl Builder<'_> {
    pub(super) fn listeners(
        &mut self,
        file: &[ListenerFile],
        skipped: &Skipped,
    ) -> Vec<Option<ListenerConfig>> {
        let section_broken = skipped.section("listener");
        let skipped = &skipped.listeners;
        if file.is_empty() && !section_broken {
            self.error("listener", "at least one [[listener]] is required");
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut addresses: HashMap<SocketAddr, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, l) in file.iter().enumerate() {
            let path = format!("listener[{i}]");
            self.unique_name(
                &mut names,
                &l.name,
                i,
                "listener",
                &path,
                skipped.contains(&i),
            );
            if skipped.contains(&i) {
                out.push(None);
                continue;
            }
            let address = self.socket_addr(&format!("{path}.address"), &l.address);
            if let Some(a) = address {
                if a.port() != 0 {
                    if let Some(first) = addresses.insert(a, i) {
                        self.error(
                            format!("{path}.address"),
                            format!("address {a} is already used by listener[{first}]"),
                        );
                    }
                }
            }
            let (tls, ocsp) = match &l.tls {
                None => (None, Vec::new()),
                Some(t) => match tls::listener_tls(t, &format!("{path}.tls"), &self.base_dir) {
                    Ok((c, ocsp)) => (Some(c), ocsp),
                    Err(e) => {
                        self.extend(e);
                        (None, Vec::new())
                    }
                },
            };
            let tls_files = l
                .tls
                .as_ref()
                .map(|t| listener_tls_files(t, &self.base_dir));
            let ip_acl = l.ip_acl.as_ref().and_then(|a| {
                let mut p = Vec::new();
                let acl = a.compile(&mut p);
                for (key, msg) in p {
                    let full = if key.is_empty() {
                        format!("{path}.ip_acl")
                    } else {
                        format!("{path}.ip_acl.{key}")
                    };
                    self.error(full, msg);
                }
                acl.map(Arc::new)
            });
            let trusted_proxies = self.trusted_proxies(&path, l.trusted_proxies.as_deref());
            let accept = match l.accept.as_deref().map(str::trim) {
                None | Some("reuseport") => AcceptMode::Reuseport,
                Some("balanced") => AcceptMode::Balanced,
                Some(other) => {
                    self.error(
                        format!("{path}.accept"),
                        format!(
                            "unknown accept mode {other:?}: expected \"reuseport\" or \"balanced\""
                        ),
                    );
                    AcceptMode::Reuseport
                }
            };
            out.push(address.map(|address| ListenerConfig {
                name: l.name.clone(),
                address,
                tls,
                tls_files,
                ocsp: ocsp.clone(),
                ip_acl,
                proxy_protocol: l.proxy_protocol.unwrap_or(false),
                trusted_proxies,
                accept,
                default_deny: l.default_deny.unwrap_or(false),
            }));
        }
        out
    }

    /// `trusted_proxies = ["10.0.0.0/8", ...]`: every entry a block.
    fn trusted_proxies(&mut self, path: &str, list: Option<&[String]>) -> Arc<[crate::http::Cidr]> {
        let mut out = Vec::new();
        for (j, text) in list.unwrap_or_default().iter().enumerate() {
            match crate::http::Cidr::parse(text) {
                Ok(c) => out.push(c),
                Err(m) => self.error(format!("{path}.trusted_proxies[{j}]"), m),
            }
        }
        out.into()
    }

    /// Check a name for emptiness and duplicates (`names` maps names seen so
    /// far to their index).
    pub(super) fn unique_name<'n>(
        &mut self,
        names: &mut HashMap<&'n str, usize>,
        name: &'n str,
        index: usize,
        kind: &str,
        path: &str,
        skipped: bool,
    ) {
        if name.trim().is_empty() {
            // A skipped element whose name could not be read has an empty
            // placeholder name: its own error was reported already.
            if !skipped {
                self.error(format!("{path}.name"), "must not be empty");
            }
            return;
        }
        if let Some(first) = names.insert(name, index) {
            names.insert(name, first);
            self.error(
                format!("{path}.name"),
                format!("duplicate {kind} name {name:?} (also used by {kind}[{first}])"),
            );
        }
    }
}

/// The resolved TLS file paths of a listener (for display only; the files
/// themselves are loaded by [`tls::listener_tls`]).
pub(super) fn listener_tls_files(file: &ListenerTlsFile, base_dir: &Path) -> ListenerTlsFiles {
    ListenerTlsFiles {
        cert: file.cert.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        key: file.key.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        sni: file
            .sni
            .iter()
            .map(|s| SniFiles {
                names: s.names.clone(),
                cert: tls::resolve_path(base_dir, &s.cert),
                key: tls::resolve_path(base_dir, &s.key),
            })
            .collect(),
        client_ca: file
            .client_ca
            .iter()
            .flatten()
            .map(|p| tls::resolve_path(base_dir, p))
            .collect(),
        crl: file
            .crl
            .iter()
            .flatten()
            .map(|p| tls::resolve_path(base_dir, p))
            .collect(),
    }
}
