//! `type = "basic_auth"`: the file form and its checks.
//!
//! ```toml
//! [[route.filters]]
//! type = "basic_auth"
//! htpasswd_file = "users.htpasswd"   # relative to the config file
//! realm = "staff"                    # default "ringway"
//! strip = true                       # default: Authorization not forwarded
//! cache_ttl = "60s"                  # default; "0s" turns the cache off
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::filter::BasicAuthFilter;
use super::htpasswd;
use crate::config::units::DurationValue;
use crate::pipeline::filters::api_key::config::challenge;
use crate::pipeline::filters::Problems;

/// The default `cache_ttl`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// The longest `cache_ttl` accepted.
const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);

/// Every built filter gets its own id: cache entries of another filter or
/// of an older configuration never match.
static NEXT_FILTER_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthFile {
    pub htpasswd_file: String,
    #[serde(default)]
    pub realm: Option<String>,
    /// Remove `Authorization` from the request sent upstream (default true).
    #[serde(default)]
    pub strip: Option<bool>,
    /// How long a verified `Authorization` value is trusted without a new
    /// verify, per worker (default 60 s; `"0s"`: verify every request).
    #[serde(default)]
    pub cache_ttl: Option<DurationValue>,
}

impl BasicAuthFile {
    pub fn build(&self, base_dir: &Path, p: &mut Problems) -> Option<BasicAuthFilter> {
        let before = p.len();
        let challenge = challenge("Basic", self.realm.as_deref(), ", charset=\"UTF-8\"", p);
        let cache_ttl = match self.cache_ttl.as_ref().map(DurationValue::parse) {
            None => DEFAULT_CACHE_TTL,
            Some(Ok(d)) if d <= MAX_CACHE_TTL => d,
            Some(Ok(_)) => {
                p.push(("cache_ttl".into(), "at most 1h: a removed user or changed password is only obeyed after a reload otherwise".into()));
                DEFAULT_CACHE_TTL
            }
            Some(Err(m)) => {
                p.push(("cache_ttl".into(), m));
                DEFAULT_CACHE_TTL
            }
        };
        let file = &self.htpasswd_file;
        let path = crate::config::tls::resolve_path(base_dir, file);
        let users = match std::fs::read_to_string(&path) {
            Err(e) => {
                p.push((
                    "htpasswd_file".into(),
                    format!("{file:?}: cannot read: {e}"),
                ));
                None
            }
            Ok(text) => match htpasswd::parse(&text) {
                Ok(h) if h.users.is_empty() => {
                    p.push((
                        "htpasswd_file".into(),
                        format!("{file:?}: no users (every request would get 401)"),
                    ));
                    None
                }
                Ok(h) => Some(h),
                Err(problems) => {
                    for (line, m) in problems {
                        p.push(("htpasswd_file".into(), format!("{file:?} line {line}: {m}")));
                    }
                    None
                }
            },
        };
        if p.len() != before {
            return None;
        }
        Some(BasicAuthFilter {
            id: NEXT_FILTER_ID.fetch_add(1, Ordering::Relaxed),
            users: Arc::new(users?),
            challenge: challenge?,
            strip: self.strip.unwrap_or(true),
            cache_ttl,
        })
    }
}
