//! `type = "api_key"`: the request phase.
//!
//! 1. Find the key: the configured header (one field; two are refused) or
//!    query parameter (one occurrence, `%XX` decoded) of the target so far
//!    (the client's, or an earlier `rewrite`'s).
//! 2. Hash it (SHA-256) and look the hash up; confirm in constant time.
//! 3. Known: set `$var.api_key_id` (and `$var.api_key_plan` when the key
//!    has a plan), remove the key from the request sent upstream (`strip`),
//!    go on. Anything else: 401 with `WWW-Authenticate: ApiKey realm="…"`,
//!    a local reply (the connection stays open), the upstream untouched.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use ring::digest;

use super::counters::{Count, KeyCounters};
use crate::pipeline::filters::context::RequestCx;
use crate::pipeline::filters::reply::LocalReply;
use crate::pipeline::filters::rewrite::filter::target_query;
use crate::pipeline::filters::Flow;
use crate::pipeline::route::target_path;

/// The variable holding the id of the key that matched.
pub const VAR_ID: &str = "api_key_id";
/// The variable holding its plan, when it has one.
pub const VAR_PLAN: &str = "api_key_plan";

/// Where the key is read from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A header name, lower-case.
    Header(Box<[u8]>),
    /// A query parameter name.
    Query(Box<[u8]>),
}

/// One configured key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: Box<str>,
    pub sha256: [u8; 32],
    pub plan: Option<Box<str>>,
}

/// Requests seen by one key of a filter (see [`ApiKeyFilter::counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCount {
    pub id: Box<str>,
    /// Let through.
    pub ok: u64,
    /// Carried this key and were refused anyway (the key field twice).
    pub rejected: u64,
}

#[derive(Clone)]
pub struct ApiKeyFilter {
    pub(crate) source: KeySource,
    pub(super) keys: Arc<[StoredKey]>,
    /// SHA-256 → index into `keys`.
    pub(super) by_hash: Arc<HashMap<[u8; 32], u32>>,
    pub(super) strip: bool,
    /// `ApiKey realm="…"`
    pub(super) challenge: Box<[u8]>,
    pub(super) counters: Arc<KeyCounters>,
}

impl std::fmt::Debug for ApiKeyFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyFilter")
            .field("source", &self.source)
            .field("keys", &self.keys.len())
            .field("strip", &self.strip)
            .finish_non_exhaustive()
    }
}

/// What the request carried.
enum Presented<'a> {
    /// No key field, or an empty one.
    Missing,
    /// One key.
    One(Cow<'a, [u8]>),
    /// The key field more than once (the first one's value): refused,
    /// whatever they hold.
    Several(Cow<'a, [u8]>),
    /// A query value whose `%` escapes are malformed.
    Malformed,
}

impl ApiKeyFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let presented = match &self.source {
            KeySource::Header(name) => header_key(cx, name),
            KeySource::Query(name) => query_key(cx, name),
        };
        let key = match presented {
            Presented::Missing => return self.refuse(cx, Count::Missing),
            Presented::Malformed => return self.refuse(cx, Count::Unknown),
            Presented::Several(first) => {
                let count = match self.lookup(&first) {
                    Some(i) => Count::Rejected(i),
                    None => Count::Unknown,
                };
                return self.refuse(cx, count);
            }
            Presented::One(key) => key,
        };
        let Some(i) = self.lookup(&key) else {
            return self.refuse(cx, Count::Unknown);
        };
        self.counters.bump(Count::Ok(i));
        let k = &self.keys[i];
        cx.state.vars.set(VAR_ID, k.id.as_bytes());
        if let Some(plan) = &k.plan {
            cx.state.vars.set(VAR_PLAN, plan.as_bytes());
        }
        if self.strip {
            match &self.source {
                KeySource::Header(name) => {
                    cx.state.request.remove(name);
                }
                KeySource::Query(name) => strip_query_param(cx, name),
            }
        }
        Flow::Continue
    }

    /// The index of the key whose hash is SHA-256(`key`).
    ///
    /// The map probe's timing depends only on the SHA-256 of what the
    /// client sent, which the client cannot aim at a stored hash; the hit
    /// is then confirmed with a constant-time compare.
    fn lookup(&self, key: &[u8]) -> Option<usize> {
        let d = digest::digest(&digest::SHA256, key);
        let hash: &[u8; 32] = d.as_ref().try_into().ok()?;
        let &i = self.by_hash.get(hash)?;
        let i = i as usize;
        constant_time_eq(&self.keys[i].sha256, hash).then_some(i)
    }

    fn refuse(&self, cx: &mut RequestCx<'_>, count: Count) -> Flow {
        self.counters.bump(count);
        cx.state.response.set(b"WWW-Authenticate", &self.challenge);
        Flow::Respond(LocalReply::text(401, "401 Unauthorized\n"))
    }

    /// Requests per key since this filter was built (a reload builds a new
    /// one, with counters from zero), in the order the keys were written
    /// (`keys`, then the keys file).
    pub fn counts(&self) -> Vec<KeyCount> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyCount {
                id: k.id.clone(),
                ok: self.counters.get(Count::Ok(i)),
                rejected: self.counters.get(Count::Rejected(i)),
            })
            .collect()
    }

    /// Requests refused without a key (or with an empty one), and with a
    /// key that matches none.
    pub fn unmatched(&self) -> (u64, u64) {
        (
            self.counters.get(Count::Missing),
            self.counters.get(Count::Unknown),
        )
    }
}

/// Whether `a == b`, in a time that does not depend on where they differ
/// (every byte is read; `black_box` keeps the compiler from stopping at
/// the first difference). `ring::constant_time::verify_slices_are_equal`
/// did this, but ring 0.17 deprecates it for outside use.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The key in header `name` (lower-case).
fn header_key<'a>(cx: &RequestCx<'a>, name: &[u8]) -> Presented<'a> {
    let buf = cx.buf;
    let mut values = cx
        .head
        .headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(name))
        .map(|h| h.value.get(buf).trim_ascii());
    match (values.next(), values.next()) {
        (None, _) => Presented::Missing,
        (Some(b""), None) => Presented::Missing,
        (Some(v), None) => Presented::One(Cow::Borrowed(v)),
        (Some(v), Some(_)) => Presented::Several(Cow::Borrowed(v)),
    }
}

/// The target the request will be sent with so far.
fn current_target<'a>(cx: &'a RequestCx<'_>) -> &'a [u8] {
    match cx.state.target() {
        Some(t) => t,
        None => cx.original_target(),
    }
}

/// The key in query parameter `name`, `%XX` decoded.
fn query_key<'a>(cx: &RequestCx<'a>, name: &[u8]) -> Presented<'a> {
    let mut found: Option<Vec<u8>> = None;
    let mut several = false;
    let Some(query) = target_query(current_target(cx)) else {
        return Presented::Missing;
    };
    for (n, v) in params(query) {
        if n != name {
            continue;
        }
        if found.is_some() {
            several = true;
            break;
        }
        match percent_decode(v) {
            Some(v) => found = Some(v),
            None => return Presented::Malformed,
        }
    }
    match found {
        None => Presented::Missing,
        Some(v) if several => Presented::Several(Cow::Owned(v)),
        Some(v) if v.is_empty() => Presented::Missing,
        Some(v) => Presented::One(Cow::Owned(v)),
    }
}

/// `a=1&b&c=3` → (`a`, `1`), (`b`, ``), (`c`, `3`); empty parts skipped.
fn params(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match memchr::memchr(b'=', p) {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &b""[..]),
        })
}

/// Decode `%XX` escapes (`+` stays `+`); `None` for a malformed escape.
pub(super) fn percent_decode(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            let hex = v.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Send the target without parameter `name` (origin form, fragment
/// dropped, as a `rewrite` does).
fn strip_query_param(cx: &mut RequestCx<'_>, name: &[u8]) {
    let earlier: Vec<u8>;
    let target: &[u8] = match cx.state.target() {
        Some(t) => {
            earlier = t.to_vec();
            &earlier
        }
        None => cx.original_target(),
    };
    let path = target_path(target);
    let query = target_query(target).unwrap_or_default();
    let out = cx.state.target_buf();
    out.extend_from_slice(path);
    let mut sep = b'?';
    for part in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let n = memchr::memchr(b'=', part).map_or(part, |i| &part[..i]);
        if n == name {
            continue;
        }
        out.push(sep);
        sep = b'&';
        out.extend_from_slice(part);
    }
    cx.state.commit_target();
}

/// The hex SHA-256 of a key, as `keys[].sha256` wants it.
pub fn hash_key(key: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, key);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random key: `rwk_` and 32 random bytes in URL-safe base64 (no
/// padding): safe in a header and in a query string as it is.
pub fn new_key() -> Result<String, ring::error::Unspecified> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(format!(
        "rwk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}
