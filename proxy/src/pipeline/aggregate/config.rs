//! The `aggregate` key of a `[[route]]` and its compilation.
//!
//! ```toml
//! [[route]]
//! name = "dashboard"
//! path_regex = "/dash/(?P<id>[0-9]+)"
//! aggregate = { policy = "all", deadline = "2s", max_leg_bytes = "1MiB", legs = [
//!   { name = "user",   cluster = "users",  path = "/users/{id}", timeout = "1s", headers = ["authorization"] },
//!   { name = "orders", cluster = "orders", path = "/orders?user={user.id}&limit={query.limit}" },
//! ] }
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::template::{Names, Source, Template};
use super::{Aggregation, Leg, Policy};
use crate::config::units::{DurationValue, SizeValue};
use crate::http::edits::is_token;

/// Most legs one aggregation may have.
pub const MAX_LEGS: usize = 32;
/// Default `max_leg_bytes`.
pub const DEFAULT_MAX_LEG_BYTES: u64 = 1024 * 1024;
/// Largest `max_leg_bytes`.
pub const MAX_LEG_BYTES: u64 = 64 * 1024 * 1024;

/// `aggregate = { ... }`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct AggregateFile {
    /// `"all"` (default) or `"partial"`.
    pub policy: Option<String>,
    /// For the whole aggregation (default: the route's `timeout`).
    pub deadline: Option<DurationValue>,
    /// Largest body of one leg (default 1MiB).
    pub max_leg_bytes: Option<SizeValue>,
    #[serde(default)]
    pub legs: Vec<LegFile>,
}

/// One entry of `legs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct LegFile {
    /// The leg's member in the answer.
    pub name: String,
    pub cluster: String,
    /// Default `"GET"`.
    pub method: Option<String>,
    /// Path template (`template.rs`).
    pub path: String,
    /// Default: the `deadline`.
    pub timeout: Option<DurationValue>,
    /// Incoming request headers sent to this leg.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// Fields ringway writes itself (or that belong to one connection).
const OWN_FIELDS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-client-cert",
    "x-request-id",
    "traceparent",
];

/// Compile a route's `aggregate`. `path_regex` is the route's (captures),
/// `default_deadline` its `timeout`; `cluster(i, name)` resolves the
/// cluster of `legs[i]` (reporting an unknown one itself). Problems are
/// `(key, message)`, keys relative to `aggregate`.
pub fn build(
    file: &AggregateFile,
    path_regex: Option<&str>,
    default_deadline: Duration,
    cluster: &mut dyn FnMut(usize, &str) -> Option<usize>,
    problems: &mut Vec<(String, String)>,
) -> Option<Aggregation> {
    let n0 = problems.len();
    let policy = match file.policy.as_deref() {
        None | Some("all") => Policy::All,
        Some("partial") => Policy::Partial,
        Some(other) => {
            problems.push((
                "policy".into(),
                format!("expected \"all\" or \"partial\" (found {other:?})"),
            ));
            Policy::All
        }
    };
    let deadline = positive(
        "deadline",
        file.deadline.as_ref(),
        default_deadline,
        problems,
    );
    let max_leg_bytes = match file.max_leg_bytes.as_ref().map(SizeValue::parse) {
        None => DEFAULT_MAX_LEG_BYTES,
        Some(Ok(n)) if (1..=MAX_LEG_BYTES).contains(&n) => n,
        Some(Ok(n)) => {
            problems.push((
                "max_leg_bytes".into(),
                format!("must be 1..=64MiB (found {n} bytes)"),
            ));
            DEFAULT_MAX_LEG_BYTES
        }
        Some(Err(m)) => {
            problems.push(("max_leg_bytes".into(), m));
            DEFAULT_MAX_LEG_BYTES
        }
    };
    if file.legs.is_empty() {
        problems.push((
            "legs".into(),
            "needs at least one { name, cluster, path }".into(),
        ));
    } else if file.legs.len() > MAX_LEGS {
        problems.push((
            "legs".into(),
            format!("at most {MAX_LEGS} legs (found {})", file.legs.len()),
        ));
    }

    // The route's captures, for `{name}` / `{1}`. An invalid regex is the
    // route's own error (`path_regex`); its legs then just cannot use it.
    let regex = path_regex.and_then(|r| crate::config::Pattern::compile(r, true).ok());
    let leg_names: Vec<&str> = file.legs.iter().map(|l| l.name.as_str()).collect();
    let names = Names {
        captures: regex
            .as_ref()
            .map(|p| p.regex.capture_names().collect::<Vec<_>>()),
        legs: &leg_names,
    };

    let mut legs = Vec::with_capacity(file.legs.len());
    let mut clusters_ok = true;
    for (i, l) in file.legs.iter().enumerate() {
        let key = format!("legs[{i}]");
        let name_ok = !l.name.is_empty()
            && l.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            problems.push((
                format!("{key}.name"),
                format!("must be letters, digits, `_` or `-` (found {:?})", l.name),
            ));
        } else if l.name == "query" {
            problems.push((
                format!("{key}.name"),
                "\"query\" is reserved ({query.NAME} is a query parameter)".into(),
            ));
        } else if leg_names[..i].contains(&l.name.as_str()) {
            problems.push((
                format!("{key}.name"),
                format!("duplicate leg name {:?}", l.name),
            ));
        }
        let c = cluster(i, &l.cluster);
        clusters_ok &= c.is_some();
        let method = l.method.as_deref().unwrap_or("GET");
        if !is_token(method.as_bytes()) {
            problems.push((
                format!("{key}.method"),
                format!("not a valid method: {method:?}"),
            ));
        }
        let path = match Template::parse(&l.path, &names) {
            Ok(t) => Some(t),
            Err(m) => {
                problems.push((format!("{key}.path"), m));
                None
            }
        };
        let timeout = positive(
            &format!("{key}.timeout"),
            l.timeout.as_ref(),
            deadline,
            problems,
        );
        let mut headers: Vec<Box<[u8]>> = Vec::with_capacity(l.headers.len());
        for (j, h) in l.headers.iter().enumerate() {
            let lower = h.to_ascii_lowercase();
            let hkey = format!("{key}.headers[{j}]");
            if !is_token(h.as_bytes()) {
                problems.push((hkey, format!("not a valid header name: {h:?}")));
            } else if OWN_FIELDS.contains(&lower.as_str()) {
                problems.push((
                    hkey,
                    format!("{h:?} is written by ringway itself; it cannot be forwarded by name"),
                ));
            } else if headers.iter().any(|x| **x == *lower.as_bytes()) {
                problems.push((hkey, format!("duplicate header {h:?}")));
            } else {
                headers.push(lower.into_bytes().into());
            }
        }
        let mut deps: Vec<usize> = Vec::new();
        if let Some(t) = &path {
            for s in t.sources() {
                if let Source::Field { leg, .. } = s {
                    if !deps.contains(leg) {
                        deps.push(*leg);
                    }
                }
            }
        }
        legs.push(Leg {
            name: l.name.clone(),
            key_json: format!("{}:", serde_json::Value::from(l.name.as_str()))
                .into_bytes()
                .into(),
            cluster: c.unwrap_or(0),
            method: method.as_bytes().into(),
            path: path.unwrap_or_else(|| Template::parse("/", &names).expect("static")),
            timeout,
            headers,
            deps,
            referenced: false,
        });
    }
    // One level of dependency: a leg may read legs that read nothing.
    for i in 0..legs.len() {
        for d in legs[i].deps.clone() {
            let key = format!("legs[{i}].path");
            if d == i {
                problems.push((
                    key,
                    format!("leg {:?} cannot use its own answer", legs[i].name),
                ));
            } else if !legs[d].deps.is_empty() {
                problems.push((
                    key,
                    format!(
                        "leg {:?} waits for leg {:?}, which itself waits for another leg; only one level of dependency is allowed",
                        legs[i].name, legs[d].name
                    ),
                ));
            } else {
                legs[d].referenced = true;
            }
        }
    }
    let uses_captures = legs.iter().any(|l| {
        l.path
            .sources()
            .any(|s| matches!(s, Source::Named(_) | Source::Index(_)))
    });
    if problems.len() > n0 || !clusters_ok {
        return None;
    }
    Some(Aggregation {
        policy,
        deadline,
        max_leg_bytes,
        legs,
        captures: regex.filter(|_| uses_captures).map(|p| p.regex),
    })
}

/// A duration above zero (`default` when absent).
fn positive(
    key: &str,
    value: Option<&DurationValue>,
    default: Duration,
    problems: &mut Vec<(String, String)>,
) -> Duration {
    match value.map(DurationValue::parse) {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            problems.push((key.into(), "must be greater than zero".into()));
            default
        }
        Some(Err(m)) => {
            problems.push((key.into(), m));
            default
        }
    }
}
