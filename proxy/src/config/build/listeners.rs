//! `[[listener]]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::super::file::*;
use super::super::source::Skipped;
use super::super::*;
use super::Builder;
use crate::config::units::SizeValue;

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
            let protocols = self.protocols(&path, l.protocols.as_deref());
            let http2 = self.http2(&path, l.http2.as_ref());
            // TLS listeners offer the protocols by ALPN.
            let tls = tls.map(|c| {
                let alpn = protocols.alpn();
                if c.alpn_protocols == alpn {
                    c
                } else {
                    let mut c = (*c).clone();
                    c.alpn_protocols = alpn;
                    Arc::new(c)
                }
            });
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
                protocols,
                http2,
            }));
        }
        out
    }

    /// `protocols = ["http/1.1", "h2"]`.
    fn protocols(&mut self, path: &str, list: Option<&[String]>) -> http2::Protocols {
        let Some(list) = list else {
            return http2::Protocols::default();
        };
        let mut p = http2::Protocols {
            http1: false,
            h2: false,
        };
        for (j, name) in list.iter().enumerate() {
            match name.trim() {
                "http/1.1" => p.http1 = true,
                "h2" => p.h2 = true,
                other => self.error(
                    format!("{path}.protocols[{j}]"),
                    format!("unknown protocol {other:?}: expected \"http/1.1\" or \"h2\""),
                ),
            }
        }
        if list.is_empty() {
            self.error(
                format!("{path}.protocols"),
                "must name at least one protocol",
            );
        }
        p
    }

    /// `[listener.http2]`.
    fn http2(&mut self, path: &str, file: Option<&Http2File>) -> http2::Http2Settings {
        let d = http2::Http2Settings::default();
        let Some(f) = file else {
            return d;
        };
        const WINDOW_MIN: u64 = 65_535;
        const WINDOW_MAX: u64 = (1 << 31) - 1;
        let size =
            |b: &mut Self, key: &str, v: Option<&SizeValue>, dflt: u32, min: u64, max: u64| {
                let Some(v) = v else { return dflt };
                let key = format!("{path}.http2.{key}");
                match b.size(&key, v) {
                    Some(n) if (min..=max).contains(&n) => n as u32,
                    Some(n) => {
                        b.error(key, format!("{n} is out of range ({min}..={max} bytes)"));
                        dflt
                    }
                    None => dflt,
                }
            };
        http2::Http2Settings {
            max_concurrent_streams: self.int_in(
                &format!("{path}.http2.max_concurrent_streams"),
                f.max_concurrent_streams,
                u64::from(d.max_concurrent_streams),
                1,
                10_000,
            ) as u32,
            initial_stream_window: size(
                self,
                "initial_stream_window",
                f.initial_stream_window.as_ref(),
                d.initial_stream_window,
                WINDOW_MIN,
                WINDOW_MAX,
            ),
            connection_window: size(
                self,
                "connection_window",
                f.connection_window.as_ref(),
                d.connection_window,
                WINDOW_MIN,
                WINDOW_MAX,
            ),
            max_frame_size: size(
                self,
                "max_frame_size",
                f.max_frame_size.as_ref(),
                d.max_frame_size,
                16_384,
                (1 << 24) - 1,
            ),
        }
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
