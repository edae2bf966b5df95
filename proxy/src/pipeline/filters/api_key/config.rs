//! `type = "api_key"`: the file form, the keys file, and their checks.
//!
//! ```toml
//! [[route.filters]]
//! type = "api_key"
//! header = "x-api-key"            # default; or query = "api_key"
//! keys = [{ id = "team-a", sha256 = "9f86d081…", plan = "gold" }]
//! keys_file = "apikeys.toml"      # [[key]] tables, relative to the config
//! strip = true                    # default: the key is not forwarded
//! realm = "api"                   # WWW-Authenticate: ApiKey realm="api"
//! ```
//!
//! `sha256` is the hex SHA-256 of the key (`ringway apikey hash`). Ids and
//! hashes must be unique across `keys` and the keys file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::counters::KeyCounters;
use super::filter::{ApiKeyFilter, KeySource, StoredKey};
use crate::pipeline::filters::Problems;

/// The default `header`.
pub const DEFAULT_HEADER: &str = "x-api-key";
/// The default `realm` of both auth filters.
pub const DEFAULT_REALM: &str = "ringway";
/// Longest id, plan or realm accepted.
const MAX_LABEL: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyFile {
    /// The header holding the key (default `x-api-key`).
    #[serde(default)]
    pub header: Option<String>,
    /// The query parameter holding the key (instead of a header).
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub keys: Vec<KeyEntryFile>,
    /// A TOML file of `[[key]]` tables, relative to the config file.
    #[serde(default)]
    pub keys_file: Option<String>,
    /// Remove the key from the request sent upstream (default true).
    #[serde(default)]
    pub strip: Option<bool>,
    /// `WWW-Authenticate: ApiKey realm="…"` (default `ringway`).
    #[serde(default)]
    pub realm: Option<String>,
}

/// One key: `{ id = "team-a", sha256 = "…", plan = "gold" }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntryFile {
    pub id: String,
    pub sha256: String,
    /// A rate-limit plan name, exposed as `$var.api_key_plan`.
    #[serde(default)]
    pub plan: Option<String>,
}

/// The keys file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    key: Vec<KeyEntryFile>,
}

impl ApiKeyFile {
    pub fn build(&self, base_dir: &Path, p: &mut Problems) -> Option<ApiKeyFilter> {
        let before = p.len();
        let source = self.source(p);
        let challenge = challenge("ApiKey", self.realm.as_deref(), "", p);

        let mut entries: Vec<(At, KeyEntryFile)> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (At::Inline(i), k.clone()))
            .collect();
        if let Some(file) = &self.keys_file {
            let path = crate::config::tls::resolve_path(base_dir, file);
            match read_keys_file(&path) {
                Ok(list) => entries.extend(
                    list.into_iter()
                        .enumerate()
                        .map(|(i, k)| (At::File(file, i), k)),
                ),
                Err(m) => p.push(("keys_file".into(), format!("{file:?}: {m}"))),
            }
        }
        let keys = check_keys(&entries, p);
        if keys.is_empty() && p.len() == before {
            p.push((
                String::new(),
                "no keys: list them in `keys` or in a `keys_file` (every request would get 401)"
                    .into(),
            ));
        }
        if p.len() != before {
            return None;
        }
        let by_hash: HashMap<[u8; 32], u32> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.sha256, i as u32))
            .collect();
        Some(ApiKeyFilter {
            source: source?,
            counters: Arc::new(KeyCounters::new(keys.len())),
            keys: keys.into(),
            by_hash: Arc::new(by_hash),
            strip: self.strip.unwrap_or(true),
            challenge: challenge?,
        })
    }

    fn source(&self, p: &mut Problems) -> Option<KeySource> {
        match (&self.header, &self.query) {
            (Some(_), Some(_)) => {
                p.push((
                    "query".into(),
                    "give `header` or `query`, not both: the key is read from one place".into(),
                ));
                None
            }
            (None, Some(q)) => {
                let ok = !q.is_empty()
                    && q.bytes().all(|b| {
                        b.is_ascii_graphic()
                            && !matches!(b, b'&' | b'=' | b'#' | b'%' | b'+' | b'?')
                    });
                if ok {
                    Some(KeySource::Query(q.as_bytes().into()))
                } else {
                    p.push((
                        "query".into(),
                        format!("{q:?} is not a query parameter name (visible ASCII without & = # % + ?)"),
                    ));
                    None
                }
            }
            (h, None) => {
                let h = h.as_deref().unwrap_or(DEFAULT_HEADER);
                if crate::http::edits::is_token(h.as_bytes()) {
                    Some(KeySource::Header(
                        h.to_ascii_lowercase().into_bytes().into(),
                    ))
                } else {
                    p.push(("header".into(), format!("{h:?} is not a valid header name")));
                    None
                }
            }
        }
    }
}

/// Read and parse a keys file (`[[key]]` tables).
fn read_keys_file(path: &Path) -> Result<Vec<KeyEntryFile>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let file: KeysFile = toml::from_str(&text).map_err(|e| {
        // toml's message names the line and column; keep it on one line.
        e.to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    })?;
    Ok(file.key)
}

/// Where a key entry was written.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    /// `keys[i]`
    Inline(usize),
    /// The `i`th `[[key]]` of the keys file.
    File(&'a str, usize),
}

impl At<'_> {
    /// Report `message` about `field` of this entry: an inline entry by
    /// its key path, a keys-file entry under `keys_file` with its place.
    fn report(self, field: &str, message: String, p: &mut Problems) {
        match self {
            At::Inline(i) => p.push((format!("keys[{i}].{field}"), message)),
            At::File(file, i) => p.push((
                "keys_file".into(),
                format!("{file:?}: key[{i}].{field}: {message}"),
            )),
        }
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Inline(i) => write!(f, "keys[{i}]"),
            At::File(file, i) => write!(f, "{file:?} key[{i}]"),
        }
    }
}

/// Check every entry; returns the good ones (problems for the rest).
fn check_keys(entries: &[(At<'_>, KeyEntryFile)], p: &mut Problems) -> Vec<StoredKey> {
    let mut out: Vec<StoredKey> = Vec::with_capacity(entries.len());
    let mut ids: HashMap<&str, At<'_>> = HashMap::new();
    let mut hashes: HashMap<[u8; 32], At<'_>> = HashMap::new();
    for &(at, ref k) in entries {
        let mut ok = true;
        if let Err(m) = check_label(&k.id) {
            at.report("id", m, p);
            ok = false;
        } else if let Some(first) = ids.insert(&k.id, at) {
            at.report("id", format!("{:?} is already the id of {first}", k.id), p);
            ok = false;
        }
        let hash = match parse_hex32(k.sha256.trim()) {
            Some(h) => {
                if let Some(first) = hashes.insert(h, at) {
                    at.report(
                        "sha256",
                        format!("the same key as {first}: every key needs its own"),
                        p,
                    );
                    ok = false;
                }
                h
            }
            None => {
                at.report(
                    "sha256",
                    "expected 64 hex digits: the SHA-256 of the key (`ringway apikey hash`), not the key".into(),
                    p,
                );
                ok = false;
                [0; 32]
            }
        };
        if let Some(plan) = &k.plan {
            if let Err(m) = check_label(plan) {
                at.report("plan", m, p);
                ok = false;
            }
        }
        if ok {
            out.push(StoredKey {
                id: k.id.as_str().into(),
                sha256: hash,
                plan: k.plan.as_deref().map(Into::into),
            });
        }
    }
    out
}

/// An id or plan: 1–256 visible ASCII characters (they go into logs and
/// header templates verbatim).
fn check_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_LABEL || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{s:?}: expected 1 to {MAX_LABEL} visible ASCII characters (no spaces)"
        ));
    }
    Ok(())
}

/// 64 hex digits → 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibble(b[2 * i])? << 4 | nibble(b[2 * i + 1])?;
    }
    Some(out)
}

/// `WWW-Authenticate` value `{scheme} realm="{realm}"{extra}`; the realm
/// must be printable ASCII without `"` or `\` (it is sent as a quoted
/// string).
pub fn challenge(
    scheme: &str,
    realm: Option<&str>,
    extra: &str,
    p: &mut Problems,
) -> Option<Box<[u8]>> {
    let realm = realm.unwrap_or(DEFAULT_REALM);
    let ok = !realm.is_empty()
        && realm.len() <= MAX_LABEL
        && realm
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if !ok {
        p.push((
            "realm".into(),
            format!("{realm:?}: expected 1 to {MAX_LABEL} printable ASCII characters without '\"' or '\\'"),
        ));
        return None;
    }
    Some(
        format!("{scheme} realm=\"{realm}\"{extra}")
            .into_bytes()
            .into(),
    )
}
