//! The compiled `jwt` filter: find the token, verify it (or take it from
//! the worker's cache), check the claims and the rules, forward claims.
//!
//! Order per request (docs/security.md lists the token checks in detail):
//! 1. remove the incoming fields named in `forward_claims` (always, so a
//!    client can never smuggle its own `x-user-id`);
//! 2. find the token: none → 401 `Bearer realm="…"`;
//! 3. verify it → else 401 `error="invalid_token"`;
//! 4. the rules → else 403 `error="insufficient_scope"`;
//! 5. set the forwarded claim fields and the variables.
//!
//! A refusal is a local reply (the connection stays open when it can), so
//! the upstream is never contacted.

use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::super::context::RequestCx;
use super::super::reply::LocalReply;
use super::super::Flow;
use super::cache;
use super::claims::{render, ClaimChecks, Rule};
use super::keys::KeySet;
use super::remote::RemoteJwks;
use super::verify::{self, Invalid, MAX_TOKEN_BYTES};

/// Where the token is read from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The whole value of this field (lower-case name).
    Header(Box<[u8]>),
    Cookie(Box<[u8]>),
    Query(Box<[u8]>),
}

/// What a source held.
enum Found<'a> {
    Nothing,
    /// More than one candidate (two `Authorization` fields, a cookie twice):
    /// refused rather than guessed.
    Ambiguous,
    Token(&'a [u8]),
}

fn one<'a>(mut it: impl Iterator<Item = &'a [u8]>) -> Found<'a> {
    match (it.next(), it.next()) {
        (None, _) => Found::Nothing,
        (Some(_), Some(_)) => Found::Ambiguous,
        (Some([]), None) => Found::Nothing,
        (Some(t), None) => Found::Token(t),
    }
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// Every value of field `name`.
fn fields<'a: 'n, 'n>(cx: &RequestCx<'a>, name: &'n [u8]) -> impl Iterator<Item = &'a [u8]> + 'n {
    let (buf, head) = (cx.buf, cx.head);
    head.headers
        .iter()
        .filter(move |h| h.name.get(buf).eq_ignore_ascii_case(name))
        .map(move |h| h.value.get(buf))
}

/// `name=value` pairs split at `sep`.
fn pairs(text: &[u8], sep: u8) -> impl Iterator<Item = (&[u8], &[u8])> {
    text.split(move |&b| b == sep).filter_map(|p| {
        let p = trim(p);
        let eq = memchr::memchr(b'=', p)?;
        Some((&p[..eq], &p[eq + 1..]))
    })
}

impl TokenSource {
    fn find<'a>(&self, cx: &RequestCx<'a>) -> Found<'a> {
        match self {
            TokenSource::Bearer => match one(fields(cx, b"authorization")) {
                Found::Token(v) => match v.get(..7) {
                    Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => {
                        one(std::iter::once(trim(&v[7..])))
                    }
                    // Another scheme (Basic, …): no bearer token.
                    _ => Found::Nothing,
                },
                other => other,
            },
            TokenSource::Header(name) => one(fields(cx, name).map(trim)),
            TokenSource::Cookie(name) => one(fields(cx, b"cookie")
                .flat_map(|v| pairs(v, b';'))
                .filter(|(n, _)| *n == &name[..])
                .map(|(_, v)| v)),
            TokenSource::Query(name) => match cx.query() {
                None => Found::Nothing,
                Some(q) => one(pairs(q, b'&')
                    .filter(|(n, _)| *n == &name[..])
                    .map(|(_, v)| v)),
            },
        }
    }
}

/// The time source: the system clock, or a fixed instant for tests.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Fixed(u64),
}

impl Clock {
    pub fn now(self) -> u64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Clock::Fixed(t) => t,
        }
    }
}

/// A claim forwarded upstream: (claim name, lower-case field name).
pub type ClaimField = (Box<str>, Box<[u8]>);

#[derive(Debug, Clone)]
pub struct JwtFilter {
    /// Identifies this filter's entries in the worker's token cache.
    pub(crate) id: u64,
    pub(crate) source: TokenSource,
    /// Keys from `jwks_file` and `keys`.
    pub(crate) keys: Arc<KeySet>,
    /// Keys from `jwks_url`, refreshed by their own thread.
    pub(crate) remote: Option<Arc<RemoteJwks>>,
    pub(crate) checks: ClaimChecks,
    pub(crate) rules: Box<[Rule]>,
    /// (claim, field name) pairs.
    pub(crate) forward: Box<[ClaimField]>,
    pub(crate) vars: Box<[Box<str>]>,
    /// Drop the `Authorization` (or `from_header`) field before forwarding.
    pub(crate) strip_token: bool,
    pub(crate) cache_size: usize,
    /// `WWW-Authenticate` values: no token / invalid token / rules failed.
    pub(crate) challenge_missing: Box<[u8]>,
    pub(crate) challenge_invalid: Box<[u8]>,
    pub(crate) challenge_scope: Box<[u8]>,
    pub(crate) clock: Clock,
}

impl JwtFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        for (_, field) in self.forward.iter() {
            cx.state.request.remove(field);
        }
        let token = match self.source.find(cx) {
            Found::Nothing => return self.refuse(cx, 401, &self.challenge_missing),
            Found::Ambiguous => {
                tracing::debug!(route = cx.route, "jwt refused: more than one token");
                return self.refuse(cx, 401, &self.challenge_invalid);
            }
            Found::Token(t) => t,
        };
        let claims = match self.verified(token) {
            Ok(c) => c,
            Err(why) => {
                tracing::debug!(route = cx.route, reason = why.as_str(), "jwt refused");
                return self.refuse(cx, 401, &self.challenge_invalid);
            }
        };
        if !self.rules.iter().all(|r| r.holds(&claims)) {
            tracing::debug!(route = cx.route, "jwt refused: rules not met");
            return self.refuse(cx, 403, &self.challenge_scope);
        }
        if self.strip_token {
            match &self.source {
                TokenSource::Bearer => cx.state.request.remove(b"authorization"),
                TokenSource::Header(h) => cx.state.request.remove(h),
                _ => true,
            };
        }
        let mut value = Vec::new();
        for (claim, field) in self.forward.iter() {
            if render(&claims, claim, &mut value) {
                // A value with control characters is refused by `set`: the
                // field then stays removed.
                cx.state.request.set(field, &value);
            }
        }
        for name in self.vars.iter() {
            if render(&claims, name, &mut value) {
                cx.state.vars.set(name, &value);
            }
        }
        Flow::Continue
    }

    /// Verify `token` (signature, then claims), or find it in the worker's
    /// cache.
    pub(crate) fn verified(&self, token: &[u8]) -> Result<Rc<Map<String, Value>>, Invalid> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Invalid::TooLong);
        }
        let now = self.clock.now();
        let generation = self.remote.as_ref().map_or(0, |r| r.generation());
        let key = (self.cache_size > 0).then(|| cache::digest(token));
        if let Some(k) = &key {
            if let Some(claims) = cache::get(self.id, k, now, generation) {
                return Ok(claims);
            }
        }
        let claims = match &self.remote {
            None => verify::verify(token, &[&self.keys]),
            Some(remote) => {
                let fetched = remote.keys();
                let result = match &fetched {
                    Some(set) => verify::verify(token, &[&self.keys, set]),
                    None => verify::verify(token, &[&self.keys]),
                };
                if matches!(result, Err(Invalid::UnknownKid | Invalid::NoKeyForAlg)) {
                    remote.want_refetch();
                }
                result
            }
        }?;
        let valid_until = self.checks.check(&claims, now)?;
        let claims = Rc::new(claims);
        if let Some(k) = key {
            cache::put(
                self.id,
                self.cache_size,
                k,
                valid_until,
                generation,
                claims.clone(),
            );
        }
        Ok(claims)
    }

    fn refuse(&self, cx: &mut RequestCx<'_>, status: u16, challenge: &[u8]) -> Flow {
        cx.state.response.set(b"www-authenticate", challenge);
        Flow::Respond(match status {
            403 => LocalReply::text(403, "403 Forbidden\n"),
            _ => LocalReply::text(401, "401 Unauthorized\n"),
        })
    }
}
