//! The `[[route]]` keys of a `versions` action and their compilation.
//!
//! ```toml
//! version_from = { header = "api-version" }   # | { path_prefix = true, strip = true }
//!                                             # | { accept = "application/vnd.acme" } | { query = "v" }
//! default_version = "2"
//! versions = [
//!   { version = "1", cluster = "orders-v1", deprecated = { sunset = "2027-06-30T00:00:00Z" } },
//!   { version = "2", cluster = "orders-v2", rewrite_prefix = { from = "/orders", to = "/api/orders" } },
//! ]
//! ```

use serde::Deserialize;

use super::dates::{http_date, parse_rfc3339};
use super::{PrefixRewrite, Version, VersionSource, Versioning};
use crate::http::edits::{is_field_value, is_token};

/// `version_from`: exactly one source.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct VersionFromFile {
    /// A request header holding the version.
    pub header: Option<String>,
    /// `true`: the first path segment, `v<version>`.
    pub path_prefix: Option<bool>,
    /// With `path_prefix`: remove the `/v<version>` segment upstream.
    pub strip: Option<bool>,
    /// A vendor media type (`application/vnd.acme`): `Accept` types
    /// `application/vnd.acme.v2+json`; a `version=` parameter also counts.
    pub accept: Option<String>,
    /// A query parameter holding the version.
    pub query: Option<String>,
}

/// One entry of `versions`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct VersionFile {
    pub version: String,
    pub cluster: String,
    pub rewrite_prefix: Option<RewritePrefixFile>,
    pub deprecated: Option<DeprecatedFile>,
}

/// `rewrite_prefix = { from = "/orders", to = "/api/orders" }`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RewritePrefixFile {
    pub from: String,
    pub to: String,
}

/// `deprecated = { date = "...", sunset = "...", link = "...", sunset_link = "..." }`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct DeprecatedFile {
    /// RFC 3339: when the version was deprecated (`Deprecation: @<secs>`;
    /// absent = `@0`, deprecated since ever).
    pub date: Option<String>,
    /// RFC 3339: when it stops answering (`Sunset: <HTTP-date>`).
    pub sunset: Option<String>,
    /// `Link: <url>; rel="deprecation"`.
    pub link: Option<String>,
    /// `Link: <url>; rel="sunset"`.
    pub sunset_link: Option<String>,
}

/// Compile a route's `version_from`, `default_version` and `versions`.
/// `cluster(i, name)` resolves the cluster of `versions[i]` (reporting an
/// unknown one itself). Problems are `(key, message)`, keys relative to
/// the route.
pub fn build(
    from: Option<&VersionFromFile>,
    default: Option<&str>,
    versions: &[VersionFile],
    cluster: &mut dyn FnMut(usize, &str) -> Option<usize>,
    problems: &mut Vec<(String, String)>,
) -> Option<Versioning> {
    let n0 = problems.len();
    let source = build_source(from, problems);
    if versions.is_empty() {
        problems.push((
            "versions".into(),
            "needs at least one { version, cluster }".into(),
        ));
    }
    let mut out = Vec::with_capacity(versions.len());
    let mut cluster_ok = true;
    for (i, v) in versions.iter().enumerate() {
        let key = format!("versions[{i}]");
        if !is_token(v.version.as_bytes()) {
            problems.push((
                format!("{key}.version"),
                format!(
                    "must be a non-empty token such as \"2\" or \"2024-01\" (found {:?})",
                    v.version
                ),
            ));
        } else if versions[..i].iter().any(|w| w.version == v.version) {
            problems.push((
                format!("{key}.version"),
                format!("duplicate version {:?}", v.version),
            ));
        }
        let c = cluster(i, &v.cluster);
        cluster_ok &= c.is_some();
        let rewrite = v.rewrite_prefix.as_ref().and_then(|r| {
            let safe = |s: &str| {
                s.starts_with('/')
                    && !s
                        .bytes()
                        .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
            };
            if safe(&r.from) && safe(&r.to) {
                Some(PrefixRewrite {
                    from: r.from.as_bytes().into(),
                    to: r.to.as_bytes().into(),
                })
            } else {
                problems.push((
                    format!("{key}.rewrite_prefix"),
                    "`from` and `to` must be paths starting with `/` (no space, `?` or `#`)".into(),
                ));
                None
            }
        });
        let deprecation = v
            .deprecated
            .as_ref()
            .map(|d| deprecation_fields(d, &format!("{key}.deprecated"), problems))
            .unwrap_or_default();
        out.push(Version {
            name: v.version.clone(),
            cluster: c.unwrap_or(0),
            rewrite,
            deprecation,
        });
    }
    let default = match default {
        None => None,
        Some(d) => match versions.iter().position(|v| v.version == d) {
            Some(i) => Some(i),
            None => {
                let known: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
                problems.push((
                    "default_version".into(),
                    format!("{d:?} is not one of `versions` ({})", known.join(", ")),
                ));
                None
            }
        },
    };
    if problems.len() > n0 || !cluster_ok {
        return None;
    }
    Some(Versioning::new(source?, default, out))
}

fn build_source(
    from: Option<&VersionFromFile>,
    problems: &mut Vec<(String, String)>,
) -> Option<VersionSource> {
    let hint = "give one of `header`, `path_prefix = true`, `accept` or `query`";
    let Some(f) = from else {
        problems.push((
            "version_from".into(),
            format!("a `versions` route needs `version_from`: {hint}"),
        ));
        return None;
    };
    let given: Vec<&str> = [
        f.header.as_ref().map(|_| "header"),
        f.path_prefix.filter(|p| *p).map(|_| "path_prefix"),
        f.accept.as_ref().map(|_| "accept"),
        f.query.as_ref().map(|_| "query"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() != 1 {
        let msg = if given.is_empty() {
            hint.to_owned()
        } else {
            format!("one source only; found {}", given.join(" and "))
        };
        problems.push(("version_from".into(), msg));
        return None;
    }
    if f.strip.is_some() && given[0] != "path_prefix" {
        problems.push((
            "version_from.strip".into(),
            "only applies to `path_prefix = true`".into(),
        ));
        return None;
    }
    if let Some(h) = &f.header {
        if !is_token(h.as_bytes()) {
            problems.push((
                "version_from.header".into(),
                format!("not a valid header name: {h:?}"),
            ));
            return None;
        }
        return Some(VersionSource::Header(h.to_ascii_lowercase()));
    }
    if let Some(a) = &f.accept {
        let ok = a
            .split_once('/')
            .is_some_and(|(t, s)| is_token(t.as_bytes()) && is_token(s.as_bytes()));
        if !ok {
            problems.push((
                "version_from.accept".into(),
                format!("expected a media type such as \"application/vnd.acme\" (found {a:?})"),
            ));
            return None;
        }
        return Some(VersionSource::Accept(a.to_ascii_lowercase()));
    }
    if let Some(q) = &f.query {
        if q.is_empty()
            || q.bytes()
                .any(|b| matches!(b, b'&' | b'=' | b'#') || b <= b' ')
        {
            problems.push((
                "version_from.query".into(),
                format!("not a valid parameter name: {q:?}"),
            ));
            return None;
        }
        return Some(VersionSource::Query(q.clone()));
    }
    Some(VersionSource::PathPrefix {
        strip: f.strip.unwrap_or(false),
    })
}

/// The response fields of a deprecated version.
fn deprecation_fields(
    d: &DeprecatedFile,
    key: &str,
    problems: &mut Vec<(String, String)>,
) -> Vec<(&'static [u8], Box<[u8]>)> {
    let mut out: Vec<(&'static [u8], Box<[u8]>)> = Vec::new();
    let date = match d.date.as_deref().map(parse_rfc3339) {
        None => Some(0),
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            problems.push((format!("{key}.date"), e));
            None
        }
    };
    if let Some(s) = date {
        out.push((b"Deprecation", format!("@{s}").into_bytes().into()));
    }
    if let Some(sunset) = &d.sunset {
        match parse_rfc3339(sunset) {
            Ok(s) => out.push((b"Sunset", http_date(s).into_bytes().into())),
            Err(e) => problems.push((format!("{key}.sunset"), e)),
        }
    }
    for (name, rel, url) in [
        ("link", "deprecation", &d.link),
        ("sunset_link", "sunset", &d.sunset_link),
    ] {
        let Some(url) = url else { continue };
        let ok = !url.is_empty()
            && is_field_value(url.as_bytes())
            && !url.bytes().any(|b| matches!(b, b'<' | b'>' | b' ' | b'\t'));
        if ok {
            out.push((
                b"Link",
                format!("<{url}>; rel=\"{rel}\"").into_bytes().into(),
            ));
        } else {
            problems.push((
                format!("{key}.{name}"),
                format!("not a valid URI reference: {url:?}"),
            ));
        }
    }
    out
}
