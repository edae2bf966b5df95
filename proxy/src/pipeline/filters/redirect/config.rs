//! `type = "redirect"` (and the route action `redirect = {…}`, same keys):
//! the file form and its validation.
//!
//! ```toml
//! # http → https, on a plain listener:
//! [[route]]
//! listener = "plain"
//! redirect = { scheme = "https" }
//!
//! [[route.filters]]
//! type = "redirect"
//! status = 308                              # 301 (default), 302, 303, 307, 308
//! scheme = "https"                          # default: the request's
//! host = "www.example.com"                  # default: the request's Host
//! port = 8443                               # default: none (the scheme's port)
//! prefix = { from = "/old/", to = "/new/" } # or path = "/elsewhere"
//! strip_query = false
//! ```

use serde::Deserialize;

use super::filter::{parse_authority, PathRule, RedirectFilter, Scheme};
use crate::pipeline::filters::rewrite::config::{check_config_path, PrefixFile};
use crate::pipeline::filters::Problems;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectFile {
    #[serde(default)]
    pub status: Option<i64>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub prefix: Option<PrefixFile>,
    #[serde(default)]
    pub strip_query: bool,
}

/// Redirect statuses a `redirect` may answer with.
pub const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

impl RedirectFile {
    pub fn build(&self, p: &mut Problems) -> Option<RedirectFilter> {
        let before = p.len();
        let status = self.status.unwrap_or(301);
        if !STATUSES.iter().any(|&s| i64::from(s) == status) {
            p.push((
                "status".into(),
                format!("must be 301, 302, 303, 307 or 308 (found {status})"),
            ));
        }
        let scheme = match self.scheme.as_deref() {
            None => None,
            Some("http") => Some(Scheme::Http),
            Some("https") => Some(Scheme::Https),
            Some(other) => {
                p.push((
                    "scheme".into(),
                    format!("must be \"http\" or \"https\" (found {other:?})"),
                ));
                None
            }
        };
        if let Some(h) = &self.host {
            match parse_authority(h.as_bytes()) {
                Some((_, None)) => {}
                Some((_, Some(_))) => p.push((
                    "host".into(),
                    "a host name without port: give the port as `port`".into(),
                )),
                None => p.push((
                    "host".into(),
                    format!("{h:?} is not a host name or IP address"),
                )),
            }
        }
        let port = match self.port {
            None => None,
            Some(n @ 1..=65535) => Some(n as u16),
            Some(n) => {
                p.push(("port".into(), format!("must be 1..=65535 (found {n})")));
                None
            }
        };
        let path = match (&self.path, &self.prefix) {
            (Some(_), Some(_)) => {
                p.push((
                    String::new(),
                    "a redirect takes one of `path` and `prefix`, not both".into(),
                ));
                PathRule::Keep
            }
            (Some(path), None) => {
                check_config_path("path", path, false, p);
                PathRule::Replace(path.as_bytes().into())
            }
            (None, Some(prefix)) => {
                prefix.check("prefix", p);
                PathRule::Prefix {
                    from: prefix.from.as_bytes().into(),
                    to: prefix.to.as_bytes().into(),
                }
            }
            (None, None) => PathRule::Keep,
        };
        if self.scheme.is_none()
            && self.host.is_none()
            && self.port.is_none()
            && matches!(path, PathRule::Keep)
            && p.len() == before
        {
            p.push((
                String::new(),
                "a redirect needs at least one of `scheme`, `host`, `port`, `path`, `prefix` (else it points at the request itself)".into(),
            ));
        }
        if p.len() != before {
            return None;
        }
        Some(RedirectFilter {
            status: status as u16,
            scheme,
            host: self
                .host
                .as_ref()
                .map(|h| h.to_ascii_lowercase().into_bytes().into_boxed_slice()),
            port,
            path,
            strip_query: self.strip_query,
        })
    }
}
