//! `type = "cors"`: the file form and its validation.
//!
//! ```toml
//! [[route.filters]]
//! type = "cors"
//! allow_origins = ["https://app.example.com", "*.example.com"]
//! allow_methods = ["GET", "POST", "PUT"]      # default GET, HEAD, POST
//! allow_headers = ["content-type", "x-api-key"]
//! expose_headers = ["x-request-id"]
//! allow_credentials = true
//! max_age = "10m"                               # or whole seconds: 600
//! ```
//!
//! Origins: an exact origin (`"https://app.example.com"`, with a port when
//! not the default one), a host suffix (`"*.example.com"`: any scheme and
//! port, host ending in `.example.com`; `"https://*.example.com"`: https
//! only), or `"*"` for any origin. `"*"` with `allow_credentials` is refused
//! (browsers refuse it too). `allow_headers = ["*"]` allows whatever headers a
//! preflight asks for (they are echoed back).

use serde::Deserialize;

use super::filter::{CorsFilter, OriginRule};
use crate::config::units::{parse_duration, DurationValue, IntOrText};
use crate::pipeline::filters::Problems;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsFile {
    pub allow_origins: Vec<String>,
    /// Default `["GET", "HEAD", "POST"]`.
    #[serde(default)]
    pub allow_methods: Option<Vec<String>>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    /// A duration (`"10m"`) or whole seconds (`600`).
    #[serde(default)]
    pub max_age: Option<DurationValue>,
}

/// `Access-Control-Max-Age` is whole seconds; a day is more than any
/// browser keeps a preflight (Firefox: 24 h, Chromium: 2 h).
const MAX_AGE_LIMIT_SECS: u64 = 86_400;

impl CorsFile {
    pub fn build(&self, p: &mut Problems) -> Option<CorsFilter> {
        let before = p.len();
        let mut any_origin = false;
        let mut origins = Vec::new();
        if self.allow_origins.is_empty() {
            p.push((
                "allow_origins".into(),
                "must list at least one origin (\"https://app.example.com\", \"*.example.com\" or \"*\")".into(),
            ));
        }
        for (i, o) in self.allow_origins.iter().enumerate() {
            match parse_origin_rule(o) {
                Ok(None) => any_origin = true,
                Ok(Some(rule)) => origins.push(rule),
                Err(m) => p.push((format!("allow_origins[{i}]"), m)),
            }
        }
        if any_origin && self.allow_credentials {
            p.push((
                "allow_origins".into(),
                "\"*\" cannot be used with allow_credentials = true (browsers reject it): list the origins instead".into(),
            ));
        }

        let default_methods = ["GET", "HEAD", "POST"].map(String::from);
        let methods = self.allow_methods.as_deref().unwrap_or(&default_methods);
        if methods.is_empty() {
            p.push(("allow_methods".into(), "must not be empty".into()));
        }
        let methods = tokens("allow_methods", methods, p);
        let headers = tokens("allow_headers", &self.allow_headers, p);
        let expose = tokens("expose_headers", &self.expose_headers, p);
        let any_header = headers.iter().any(|h| h == "*");
        if any_header && headers.len() > 1 {
            p.push((
                "allow_headers".into(),
                "\"*\" allows every requested header: list nothing else beside it".into(),
            ));
        }

        let max_age = match &self.max_age {
            None => None,
            Some(v) => match max_age_secs(v) {
                Ok(s) => Some(s),
                Err(m) => {
                    p.push(("max_age".into(), m));
                    None
                }
            },
        };
        if p.len() != before {
            return None;
        }
        let join = |list: &[String]| list.join(", ").into_bytes().into_boxed_slice();
        Some(CorsFilter {
            any_origin,
            origins: origins.into(),
            methods_value: join(&methods),
            methods: methods.into_iter().map(|m| m.into_bytes().into()).collect(),
            headers_value: (!any_header && !headers.is_empty()).then(|| join(&headers)),
            headers: if any_header {
                Box::default()
            } else {
                headers.into_iter().map(|h| h.into_bytes().into()).collect()
            },
            any_header,
            expose_value: (!expose.is_empty()).then(|| join(&expose)),
            credentials: self.allow_credentials,
            max_age_value: max_age.map(|s| {
                itoa::Buffer::new()
                    .format(s)
                    .as_bytes()
                    .to_vec()
                    .into_boxed_slice()
            }),
        })
    }
}

/// Check every entry of a list of header names or methods (RFC 9110
/// tokens); duplicates are dropped (case-insensitively).
fn tokens(key: &str, list: &[String], p: &mut Problems) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let t = t.trim();
        if !crate::http::edits::is_token(t.as_bytes()) {
            p.push((format!("{key}[{i}]"), format!("{t:?} is not a valid token")));
        } else if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_owned());
        }
    }
    out
}

fn max_age_secs(v: &DurationValue) -> Result<u64, String> {
    let secs = match &v.0 {
        IntOrText::Int(n) => {
            u64::try_from(*n).map_err(|_| format!("must not be negative (found {n})"))?
        }
        IntOrText::Text(s) => {
            let d = parse_duration(s)?;
            if d.subsec_nanos() != 0 {
                return Err(format!(
                    "{s:?}: Access-Control-Max-Age is whole seconds; write e.g. \"10s\" or \"10m\""
                ));
            }
            d.as_secs()
        }
    };
    if secs > MAX_AGE_LIMIT_SECS {
        return Err(format!(
            "at most 24h ({MAX_AGE_LIMIT_SECS} seconds; found {secs}): browsers cap it lower anyway"
        ));
    }
    Ok(secs)
}

/// Parse one `allow_origins` entry: `Ok(None)` for `"*"`.
pub fn parse_origin_rule(text: &str) -> Result<Option<OriginRule>, String> {
    let hint = "expected an origin such as \"https://app.example.com\" (scheme, host, optional port; no path), a suffix such as \"*.example.com\" or \"https://*.example.com\", or \"*\"";
    let t = text.trim().to_ascii_lowercase();
    if t == "*" {
        return Ok(None);
    }
    if t == "null" {
        return Err(
            "\"null\" is not accepted: sandboxed frames and file: pages of any site send it".into(),
        );
    }
    let (scheme, rest) = match t.split_once("://") {
        Some((s, r)) if is_scheme(s) => (Some(s), r),
        Some(_) => return Err(format!("{text:?}: bad scheme; {hint}")),
        None => (None, t.as_str()),
    };
    if let Some(host) = rest.strip_prefix("*.") {
        if !is_host_name(host) || !host.contains(|c: char| c.is_ascii_alphabetic()) {
            return Err(format!("{text:?}: bad host suffix; {hint}"));
        }
        return Ok(Some(OriginRule::Suffix {
            scheme: scheme.map(Box::from),
            suffix: format!(".{host}").into(),
        }));
    }
    let Some(_) = scheme else {
        return Err(format!("{text:?}: the scheme is missing; {hint}"));
    };
    if rest.ends_with('/') {
        return Err(format!(
            "{text:?}: an origin has no path, not even \"/\"; write {:?}",
            t.trim_end_matches('/')
        ));
    }
    if split_host_port(rest).is_none() {
        return Err(format!("{text:?}: {hint}"));
    }
    Ok(Some(OriginRule::Exact(t.into())))
}

/// `http`, `https`, `chrome-extension`, ...: a letter, then letters, digits,
/// `+`, `-`, `.`.
pub(super) fn is_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// A DNS name (letters, digits, `-`, `.`; no empty label).
pub(super) fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

/// `host[:port]` or `[v6][:port]` → the host; `None` when malformed.
pub(super) fn split_host_port(s: &str) -> Option<&str> {
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let end = r.find(']')?;
        let host = &s[..end + 2];
        if !r[..end]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return None;
        }
        (host, &r[end + 1..])
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    let port_ok = port.is_empty()
        || (port.len() > 1
            && port.len() <= 6
            && port[1..].bytes().all(|c| c.is_ascii_digit())
            && port.starts_with(':'));
    ((host.starts_with('[') || is_host_name(host)) && port_ok).then_some(host)
}
