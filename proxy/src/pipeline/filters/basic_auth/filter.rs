//! `type = "basic_auth"`: the request phase.
//!
//! 1. Exactly one `Authorization` field, scheme `Basic` (any case), then
//!    base64 of `user:password` (UTF-8; the user is everything before the
//!    first `:`). Anything else (no field, two, another scheme, bad
//!    base64, no colon, non-UTF-8) → 401.
//! 2. The per-worker cache (`cache.rs`): a hit skips the verify.
//! 3. The user's hash is verified (an unknown user costs a verify too, of
//!    the first user's hash, so timing does not say which users exist).
//! 4. Success: `$var.user`, `Authorization` removed from the request sent
//!    upstream (`strip`), the success cached. Failure: 401 with
//!    `WWW-Authenticate: Basic realm="…", charset="UTF-8"`, a local reply
//!    (the connection stays open), the upstream untouched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::cache;
use super::htpasswd::Htpasswd;
use crate::pipeline::filters::context::RequestCx;
use crate::pipeline::filters::reply::LocalReply;
use crate::pipeline::filters::Flow;

/// The variable holding the user name.
pub const VAR_USER: &str = "user";

/// Standard base64, padding optional.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

#[derive(Clone)]
pub struct BasicAuthFilter {
    /// Unique per build: part of every cache key.
    pub(super) id: u64,
    pub(super) users: Arc<Htpasswd>,
    /// `Basic realm="…", charset="UTF-8"`
    pub(super) challenge: Box<[u8]>,
    pub(super) strip: bool,
    /// Zero: no cache.
    pub(super) cache_ttl: Duration,
}

impl std::fmt::Debug for BasicAuthFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthFilter")
            .field("users", &self.users.users.len())
            .field("strip", &self.strip)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl BasicAuthFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let Some(value) = single_authorization(cx) else {
            return self.refuse(cx);
        };
        let Some(token) = basic_token(value) else {
            return self.refuse(cx);
        };
        let cached =
            (!self.cache_ttl.is_zero()).then(|| (cache::key(self.id, value), Instant::now()));
        let hit = cached.as_ref().and_then(|(k, now)| cache::get(k, *now));
        let user = match hit {
            Some(user) => user,
            None => {
                let Some(user) = self.verify(token) else {
                    return self.refuse(cx);
                };
                if let Some((k, now)) = cached {
                    cache::put(k, user, now, self.cache_ttl);
                }
                user
            }
        };
        let name = &self.users.users[user as usize].0;
        cx.state.vars.set(VAR_USER, name.as_bytes());
        if self.strip {
            cx.state.request.remove(b"authorization");
        }
        Flow::Continue
    }

    /// Decode `token` and verify; the user's index on success.
    fn verify(&self, token: &[u8]) -> Option<u32> {
        let decoded = BASE64.decode(token).ok()?;
        let text = std::str::from_utf8(&decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        match self.users.index.get(user) {
            Some(&i) => self.users.users[i as usize]
                .1
                .verify(password.as_bytes())
                .then_some(i),
            None => {
                // As long as a known user's failure; the result is
                // ignored.
                let _ = self.users.users[0].1.verify(password.as_bytes());
                None
            }
        }
    }

    fn refuse(&self, cx: &mut RequestCx<'_>) -> Flow {
        cx.state.response.set(b"WWW-Authenticate", &self.challenge);
        Flow::Respond(LocalReply::text(401, "401 Unauthorized\n"))
    }

    /// Users in the htpasswd file.
    pub fn user_count(&self) -> usize {
        self.users.users.len()
    }
}

/// The value of the one `Authorization` field; `None` for none or several.
fn single_authorization<'a>(cx: &RequestCx<'a>) -> Option<&'a [u8]> {
    let buf = cx.buf;
    let mut values = cx
        .head
        .headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"authorization"))
        .map(|h| h.value.get(buf));
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// `Basic <token>` (scheme in any case, one or more spaces) → the token.
fn basic_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case(b"basic") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}
