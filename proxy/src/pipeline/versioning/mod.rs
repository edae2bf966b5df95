//! API versioning as a route action (`versions = [...]`): read the version
//! a request asks for, then forward it to that version's cluster (with an
//! optional path rewrite and deprecation fields on the response), or answer
//! locally when the version is unknown.
//!
//! # Architecture
//! - `config`: the `[[route]]` keys (`version_from`, `default_version`,
//!   `versions`) and their compilation into a [`Versioning`].
//! - `select`: where the version comes from (a header, the first path
//!   segment, the `Accept` media types, a query parameter).
//! - `dates`: RFC 3339 → unix seconds → HTTP-date for `Deprecation` /
//!   `Sunset`.
//!
//! # Errors
//! An unknown version, or none without a `default_version`, is answered
//! locally with an RFC 9457 `application/problem+json` body: 404 when the
//! version comes from the path (the resource does not exist), else 400. The
//! connection stays open, as for every local reply.
//!
//! # Performance
//! Deprecation field values are formatted once, at config build. Request
//! counters are striped per thread (`filters::api_key::counters`), so
//! workers do not share a contended cache line. A rewrite writes into the
//! connection's reusable target buffer.

mod config;
mod dates;
mod select;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::{build, DeprecatedFile, RewritePrefixFile, VersionFile, VersionFromFile};

use crate::pipeline::filters::api_key::counters::{Count, KeyCounters};
use crate::pipeline::filters::context::RequestCx;
use crate::pipeline::filters::reply::{LocalReply, ReplyBody};

/// Where a route reads the API version from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSource {
    /// A request header (lower-case name); its value is the version.
    Header(String),
    /// The first path segment, `v<version>` (`/v2/orders` → `"2"`);
    /// `strip` removes that segment from the target sent upstream.
    PathPrefix { strip: bool },
    /// The `Accept` media types: a `version=` parameter on any type, or a
    /// vendor type `<vendor>.v<version>[+suffix]` (vendor lower-case).
    Accept(String),
    /// A query parameter (raw name, matched as sent).
    Query(String),
}

/// One entry of `versions`.
#[derive(Debug, Clone)]
pub struct Version {
    pub name: String,
    /// Cluster index.
    pub cluster: usize,
    /// `rewrite_prefix`: a path starting with `from` has it replaced by `to`.
    pub rewrite: Option<PrefixRewrite>,
    /// Response fields of a deprecated version (name, value), formatted at
    /// build time.
    pub deprecation: Vec<(&'static [u8], Box<[u8]>)>,
}

/// `rewrite_prefix = { from, to }`.
#[derive(Debug, Clone)]
pub struct PrefixRewrite {
    pub from: Box<[u8]>,
    pub to: Box<[u8]>,
}

/// A route's compiled `versions` action.
#[derive(Debug, Clone)]
pub struct Versioning {
    pub source: VersionSource,
    /// Index into `versions` used when a request names none.
    pub default: Option<usize>,
    pub versions: Vec<Version>,
    /// Requests per version (index into `versions`).
    counters: Arc<KeyCounters>,
}

impl Versioning {
    pub fn new(source: VersionSource, default: Option<usize>, versions: Vec<Version>) -> Self {
        let counters = Arc::new(KeyCounters::new(versions.len()));
        Versioning {
            source,
            default,
            versions,
            counters,
        }
    }

    /// Resolve the request's version: the cluster to forward to (after the
    /// target rewrite and the deprecation edits are recorded in the
    /// request's filter state), or the local problem reply.
    pub fn resolve(&self, cx: &mut RequestCx<'_>) -> Result<usize, LocalReply> {
        let asked = select::version_of(&self.source, cx);
        let index = match &asked {
            Some(v) => self.versions.iter().position(|x| x.name.as_bytes() == *v),
            None => self.default,
        };
        let Some(i) = index else {
            return Err(self.problem(asked));
        };
        let version = &self.versions[i];
        self.counters.bump(Count::Ok(i));
        let strip =
            matches!(self.source, VersionSource::PathPrefix { strip: true }) && asked.is_some();
        select::rewrite_target(cx, strip, version.rewrite.as_ref());
        for (name, value) in &version.deprecation {
            if name.eq_ignore_ascii_case(b"link") {
                cx.state.response.add(name, value);
            } else {
                cx.state.response.set(name, value);
            }
        }
        Ok(version.cluster)
    }

    /// Requests served per version (name, count), in file order.
    pub fn counts(&self) -> Vec<(&str, u64)> {
        self.versions
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.as_str(), self.counters.get(Count::Ok(i))))
            .collect()
    }

    /// The clusters the versions forward to (file order, no repeats).
    pub fn clusters(&self) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for v in &self.versions {
            if !out.contains(&v.cluster) {
                out.push(v.cluster);
            }
        }
        out
    }

    /// The RFC 9457 reply for an unknown version (`asked`) or none.
    fn problem(&self, asked: Option<&[u8]>) -> LocalReply {
        let status = match self.source {
            VersionSource::PathPrefix { .. } => 404,
            _ => 400,
        };
        let known: Vec<&str> = self.versions.iter().map(|v| v.name.as_str()).collect();
        let detail = match asked {
            Some(v) => format!(
                "unknown API version {:?}; known versions: {}",
                String::from_utf8_lossy(v),
                known.join(", ")
            ),
            None => format!("no API version given; known versions: {}", known.join(", ")),
        };
        let title = if status == 404 {
            "Not Found"
        } else {
            "Bad Request"
        };
        let body = serde_json::json!({
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
        });
        LocalReply {
            status,
            content_type: Some(Arc::from("application/problem+json")),
            body: ReplyBody::Owned(body.to_string().into_bytes()),
        }
    }
}
