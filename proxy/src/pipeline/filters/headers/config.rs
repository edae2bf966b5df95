//! `type = "headers"`: the file form and its validation.
//!
//! ```toml
//! [[route.filters]]
//! type = "headers"
//! request_set = { "x-user" = "$var.sub", "x-route" = "$route" }
//! request_add = { "x-via" = "ringway" }
//! request_remove = ["x-internal-token"]
//! response_set = { "server" = "ringway" }
//! response_add = { "x-request-id" = "$request_id" }
//! response_remove = ["x-powered-by"]
//! ```
//!
//! Values are templates (`filters/template.rs`). Framing and connection
//! fields cannot be edited (`connection`, `content-length`,
//! `transfer-encoding`, `keep-alive`, `proxy-connection`, `te`, `trailer`,
//! `upgrade`): ringway owns them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::filter::{HeaderOp, HeadersFilter, OpKind};
use crate::pipeline::filters::template::Template;
use crate::pipeline::filters::Problems;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersFile {
    #[serde(default)]
    pub request_set: BTreeMap<String, String>,
    #[serde(default)]
    pub request_add: BTreeMap<String, String>,
    #[serde(default)]
    pub request_remove: Vec<String>,
    #[serde(default)]
    pub response_set: BTreeMap<String, String>,
    #[serde(default)]
    pub response_add: BTreeMap<String, String>,
    #[serde(default)]
    pub response_remove: Vec<String>,
}

/// Fields whose edits would change framing or the connection.
pub const RESERVED: [&str; 8] = [
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Check a field name an edit targets; `None` (and a problem) when refused.
pub fn check_name(key: &str, name: &str, p: &mut Problems) -> Option<Box<[u8]>> {
    if !crate::http::edits::is_token(name.as_bytes()) {
        p.push((
            key.to_owned(),
            format!("{name:?} is not a valid header name"),
        ));
        return None;
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        p.push((
            key.to_owned(),
            format!("{name:?} cannot be edited: ringway sets framing and connection fields itself"),
        ));
        return None;
    }
    Some(name.as_bytes().into())
}

fn ops(
    set: &BTreeMap<String, String>,
    add: &BTreeMap<String, String>,
    remove: &[String],
    side: &str,
    p: &mut Problems,
) -> Vec<HeaderOp> {
    let mut out = Vec::new();
    for (i, name) in remove.iter().enumerate() {
        if let Some(name) = check_name(&format!("{side}_remove[{i}]"), name, p) {
            out.push(HeaderOp {
                name,
                kind: OpKind::Remove,
            });
        }
    }
    for (table, map, append) in [("set", set, false), ("add", add, true)] {
        for (name, value) in map {
            let key = format!("{side}_{table}.{name}");
            let Some(n) = check_name(&key, name, p) else {
                continue;
            };
            match Template::parse(value) {
                Ok(t) => out.push(HeaderOp {
                    name: n,
                    kind: if append {
                        OpKind::Add(t)
                    } else {
                        OpKind::Set(t)
                    },
                }),
                Err(m) => p.push((key, m)),
            }
        }
    }
    out
}

impl HeadersFile {
    pub fn build(&self, p: &mut Problems) -> Option<HeadersFilter> {
        let before = p.len();
        let request = ops(
            &self.request_set,
            &self.request_add,
            &self.request_remove,
            "request",
            p,
        );
        let response = ops(
            &self.response_set,
            &self.response_add,
            &self.response_remove,
            "response",
            p,
        );
        if request.is_empty() && response.is_empty() && p.len() == before {
            p.push((
                String::new(),
                "a headers filter needs at least one of request_set, request_add, request_remove, response_set, response_add, response_remove".into(),
            ));
        }
        (p.len() == before).then(|| HeadersFilter::new(request, response))
    }
}
