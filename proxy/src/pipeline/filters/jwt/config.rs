//! `type = "jwt"`: the file form and its validation. Key files are read
//! here, once per configuration load (paths relative to the config file,
//! see [`JwtFile::with_base_dir`]).
//!
//! ```toml
//! [[route.filters]]
//! type = "jwt"
//! jwks_file = "jwks.json"
//! keys = [{ pem = "pub.pem", alg = "RS256", kid = "k1" }]
//! issuers = ["https://issuer.example"]
//! audiences = ["orders-api"]
//! leeway = "60s"
//! rules = [{ claim = "scope", contains = "read:orders" }]
//! forward_claims = { sub = "x-user-id" }
//! claims_to_vars = ["sub"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;

use super::claims::{ClaimChecks, Rule, Test};
use super::filter::{Clock, JwtFilter, TokenSource};
use super::keys::{self, Alg, KeySet};
use super::remote::{self, FetchConfig, RemoteJwks};
use crate::config::units::{DurationValue, IntOrText};
use crate::pipeline::filters::Problems;

/// Default clock skew allowed on `exp`, `nbf` and `iat` (Envoy's).
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// Default number of verified tokens kept per worker and filter.
pub const DEFAULT_CACHE_SIZE: usize = 1024;
/// Default `jwks_refresh`.
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 300;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFile {
    #[serde(default)]
    pub from_header: Option<String>,
    #[serde(default)]
    pub from_cookie: Option<String>,
    #[serde(default)]
    pub from_query: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// An https:// URL of a JWKS, fetched off the request path.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often `jwks_url` is fetched again (default 5m).
    #[serde(default)]
    pub jwks_refresh: Option<DurationValue>,
    /// PEM CA certificates trusted for `jwks_url` (default: the system
    /// bundle).
    #[serde(default)]
    pub jwks_ca: Option<String>,
    #[serde(default)]
    pub keys: Vec<KeyFile>,
    #[serde(default)]
    pub issuers: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// A duration (`"30s"`) or whole seconds.
    #[serde(default)]
    pub leeway: Option<DurationValue>,
    #[serde(default)]
    pub max_age: Option<DurationValue>,
    #[serde(default)]
    pub rules: Vec<RuleFile>,
    /// claim → field name.
    #[serde(default)]
    pub forward_claims: BTreeMap<String, String>,
    #[serde(default)]
    pub claims_to_vars: Vec<String>,
    /// Remove the token's field (`Authorization` or `from_header`) from the
    /// request sent upstream (default true).
    #[serde(default)]
    pub strip: Option<bool>,
    #[serde(default)]
    pub cache_size: Option<u64>,
    /// `realm` of the `WWW-Authenticate` challenge (default "ringway").
    #[serde(default)]
    pub realm: Option<String>,
}

/// One entry of `keys`: a PEM public key or an HMAC secret file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    #[serde(default)]
    pub pem: Option<String>,
    #[serde(default)]
    pub hmac_secret_file: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
}

/// One entry of `rules`: a claim and exactly one test.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub claim: String,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub any_of: Option<Vec<String>>,
    #[serde(default)]
    pub equals: Option<String>,
}

static NEXT_FILTER_ID: AtomicU64 = AtomicU64::new(1);

fn secs(v: &DurationValue) -> Result<u64, String> {
    match &v.0 {
        IntOrText::Int(n) => {
            u64::try_from(*n).map_err(|_| format!("must not be negative (found {n})"))
        }
        IntOrText::Text(_) => {
            let d = v.parse()?;
            if d.subsec_nanos() != 0 {
                return Err("whole seconds only (\"30s\", \"5m\")".into());
            }
            Ok(d.as_secs())
        }
    }
}

fn is_var_name(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn boxed(list: &[String]) -> Box<[Box<str>]> {
    list.iter().map(|s| s.as_str().into()).collect()
}

impl JwtFile {
    /// The same filter with its file paths resolved against `base_dir`
    /// (the config file's directory), as TLS files are.
    pub fn with_base_dir(&self, base_dir: &Path) -> JwtFile {
        let resolve = |p: &String| {
            crate::config::tls::resolve_path(base_dir, p)
                .to_string_lossy()
                .into_owned()
        };
        let mut out = self.clone();
        out.jwks_file = self.jwks_file.as_ref().map(resolve);
        out.jwks_ca = self.jwks_ca.as_ref().map(resolve);
        for k in &mut out.keys {
            k.pem = k.pem.as_ref().map(resolve);
            k.hmac_secret_file = k.hmac_secret_file.as_ref().map(resolve);
        }
        out
    }

    /// Check and compile; files are read relative to `base_dir` (the
    /// config file's directory; empty: the current directory).
    pub fn build(&self, base_dir: &Path, p: &mut Problems) -> Option<JwtFilter> {
        self.with_base_dir(base_dir).build_resolved(p)
    }

    fn build_resolved(&self, p: &mut Problems) -> Option<JwtFilter> {
        let before = p.len();
        let source = self.source(p);
        let keys = self.key_set(p);
        let fetch = self.fetch_config(p);
        let leeway = match &self.leeway {
            None => DEFAULT_LEEWAY_SECS,
            Some(v) => secs(v).unwrap_or_else(|m| {
                p.push(("leeway".into(), m));
                0
            }),
        };
        let max_age = self
            .max_age
            .as_ref()
            .and_then(|v| secs(v).map_err(|m| p.push(("max_age".into(), m))).ok());
        let rules = self.rules(p);
        let mut forward = Vec::new();
        for (claim, field) in &self.forward_claims {
            let key = format!("forward_claims.{claim}");
            if let Some(name) =
                crate::pipeline::filters::headers::config::check_name(&key, field, p)
            {
                forward.push((claim.as_str().into(), name.to_ascii_lowercase().into()));
            }
        }
        for (i, v) in self.claims_to_vars.iter().enumerate() {
            if !is_var_name(v) {
                p.push((
                    format!("claims_to_vars[{i}]"),
                    format!("{v:?} is not a variable name (letters, digits, `_`, `-`)"),
                ));
            }
        }
        let realm = self.realm.as_deref().unwrap_or("ringway");
        if realm
            .bytes()
            .any(|b| b == b'"' || b == b'\\' || b.is_ascii_control())
        {
            p.push((
                "realm".into(),
                "must not contain quotes, backslashes or control characters".into(),
            ));
        }
        let cache_size = match self.cache_size {
            None => DEFAULT_CACHE_SIZE,
            Some(n) if n <= 1 << 20 => n as usize,
            Some(n) => {
                p.push((
                    "cache_size".into(),
                    format!("{n} is more than 1048576 entries"),
                ));
                0
            }
        };
        if p.len() != before {
            return None;
        }
        // Last: the fetcher thread starts only for a filter that builds.
        let remote = match fetch {
            None => None,
            Some(cfg) => match RemoteJwks::start(cfg) {
                Ok(r) => Some(r),
                Err(m) => {
                    p.push(("jwks_url".into(), m));
                    return None;
                }
            },
        };
        let challenge = |error: &str| {
            let mut v = format!("Bearer realm=\"{realm}\"");
            if !error.is_empty() {
                v.push_str(&format!(", error=\"{error}\""));
            }
            v.into_bytes().into_boxed_slice()
        };
        Some(JwtFilter {
            id: NEXT_FILTER_ID.fetch_add(1, Ordering::Relaxed),
            source: source?,
            keys: Arc::new(keys?),
            remote,
            checks: ClaimChecks {
                leeway,
                max_age,
                issuers: boxed(&self.issuers),
                audiences: boxed(&self.audiences),
                required: boxed(&self.required_claims),
            },
            rules: rules.into(),
            forward: forward.into(),
            vars: boxed(&self.claims_to_vars),
            strip_token: self.strip.unwrap_or(true),
            cache_size,
            challenge_missing: challenge(""),
            challenge_invalid: challenge("invalid_token"),
            challenge_scope: challenge("insufficient_scope"),
            clock: Clock::System,
        })
    }

    fn source(&self, p: &mut Problems) -> Option<TokenSource> {
        let given = [
            ("from_header", &self.from_header),
            ("from_cookie", &self.from_cookie),
            ("from_query", &self.from_query),
        ];
        let set: Vec<_> = given.iter().filter(|(_, v)| v.is_some()).collect();
        if set.len() > 1 {
            p.push((
                set[1].0.into(),
                "give at most one of from_header, from_cookie, from_query".into(),
            ));
            return None;
        }
        let Some((key, Some(name))) = set.first().copied() else {
            return Some(TokenSource::Bearer);
        };
        let ok = match *key {
            "from_header" => crate::http::edits::is_token(name.as_bytes()),
            // Cookie names and query parameter names: token characters,
            // no `=`, `;`, `&`.
            _ => {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"=;&,\"\\".contains(&b))
            }
        };
        if !ok {
            p.push((key.to_string(), format!("{name:?} is not a valid name")));
            return None;
        }
        let bytes: Box<[u8]> = name.as_bytes().into();
        Some(match *key {
            "from_header" => TokenSource::Header(name.to_ascii_lowercase().into_bytes().into()),
            "from_cookie" => TokenSource::Cookie(bytes),
            _ => TokenSource::Query(bytes),
        })
    }

    fn key_set(&self, p: &mut Problems) -> Option<KeySet> {
        let before = p.len();
        let mut set = KeySet::default();
        if let Some(path) = &self.jwks_file {
            match std::fs::read(path) {
                Ok(bytes) => match keys::parse_jwks(&bytes) {
                    Ok(s) => set.keys.extend(s.keys),
                    Err(m) => p.push(("jwks_file".into(), format!("{path}: {m}"))),
                },
                Err(e) => p.push(("jwks_file".into(), format!("cannot read {path}: {e}"))),
            }
        }
        for (i, k) in self.keys.iter().enumerate() {
            match key_entry(k) {
                Ok(key) => set.keys.push(key),
                Err((field, m)) => p.push((format!("keys[{i}]{field}"), m)),
            }
        }
        if p.len() == before && set.keys.is_empty() && self.jwks_url.is_none() {
            p.push((
                String::new(),
                "no verification keys: give `jwks_url`, `jwks_file` (with at least one signing key) or `keys`"
                    .into(),
            ));
        }
        (p.len() == before).then_some(set)
    }

    /// `jwks_url`, `jwks_refresh`, `jwks_ca`: checked, the TLS config built.
    fn fetch_config(&self, p: &mut Problems) -> Option<FetchConfig> {
        let Some(url) = &self.jwks_url else {
            for (key, set) in [
                ("jwks_refresh", self.jwks_refresh.is_some()),
                ("jwks_ca", self.jwks_ca.is_some()),
            ] {
                if set {
                    p.push((key.into(), "only used with `jwks_url`".into()));
                }
            }
            return None;
        };
        let parts = remote::parse_url(url)
            .map_err(|m| p.push(("jwks_url".into(), format!("{url:?}: {m}"))))
            .ok();
        let refresh = match &self.jwks_refresh {
            None => Some(DEFAULT_JWKS_REFRESH_SECS),
            Some(v) => match secs(v) {
                Ok(0) => {
                    p.push(("jwks_refresh".into(), "must be at least 1s".into()));
                    None
                }
                Ok(s) => Some(s),
                Err(m) => {
                    p.push(("jwks_refresh".into(), m));
                    None
                }
            },
        };
        let tls = remote::client_tls(self.jwks_ca.as_deref().map(Path::new))
            .map_err(|m| {
                let key = if self.jwks_ca.is_some() {
                    "jwks_ca"
                } else {
                    "jwks_url"
                };
                p.push((key.into(), m))
            })
            .ok();
        let ((host, port, target), refresh, tls) = (parts?, refresh?, tls?);
        Some(FetchConfig {
            url: url.as_str().into(),
            host,
            port,
            target,
            tls,
            refresh: std::time::Duration::from_secs(refresh),
        })
    }

    fn rules(&self, p: &mut Problems) -> Vec<Rule> {
        let mut out = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let test = match (&r.contains, &r.any_of, &r.equals) {
                (Some(c), None, None) => Test::Contains(c.as_str().into()),
                (None, Some(a), None) if !a.is_empty() => Test::AnyOf(boxed(a)),
                (None, None, Some(e)) => Test::Equals(e.as_str().into()),
                _ => {
                    p.push((
                        format!("rules[{i}]"),
                        "give exactly one of `contains`, `any_of` (not empty), `equals`".into(),
                    ));
                    continue;
                }
            };
            if r.claim.is_empty() {
                p.push((format!("rules[{i}].claim"), "must not be empty".into()));
                continue;
            }
            out.push(Rule {
                claim: r.claim.as_str().into(),
                test,
            });
        }
        out
    }
}

/// One `keys` entry; an error names the field (`.pem`, `.alg`, …).
fn key_entry(k: &KeyFile) -> Result<keys::Key, (&'static str, String)> {
    let alg = match &k.alg {
        None => None,
        Some(a) => Some(Alg::from_name(a).ok_or_else(|| {
            (
                ".alg",
                format!("{a:?} is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512"),
            )
        })?),
    };
    let kid = k.kid.as_deref();
    match (&k.pem, &k.hmac_secret_file) {
        (Some(path), None) => {
            let text =
                std::fs::read(path).map_err(|e| (".pem", format!("cannot read {path}: {e}")))?;
            keys::parse_pem(&text, alg, kid).map_err(|m| (".pem", format!("{path}: {m}")))
        }
        (None, Some(path)) => {
            let secret = std::fs::read(path)
                .map_err(|e| (".hmac_secret_file", format!("cannot read {path}: {e}")))?;
            keys::Key::hmac(&secret, alg.unwrap_or(Alg::Hs256), kid)
                .map_err(|m| (".hmac_secret_file", format!("{path}: {m}")))
        }
        _ => Err(("", "give exactly one of `pem`, `hmac_secret_file`".into())),
    }
}
