//! The `filters` stage: a per-route chain of filters with a request phase
//! (after `route`, before `pick`) and a response phase (after the upstream
//! response head, before it goes downstream).
//!
//! # Architecture
//! A route's chain is an `Arc<[Filter]>` compiled once per configuration
//! generation (`[[route.filters]]` in file order). [`Filter`] is an enum, so
//! dispatch is a `match`, not a virtual call. Each filter returns a [`Flow`]:
//! go on, answer locally ([`LocalReply`]), or fail with a [`ProxyError`].
//!
//! - Request phase: filters run in order until one answers. They read the
//!   request through [`RequestCx`] (method, path, query, headers by name,
//!   client address, listener, TLS facts, route, variables) and leave
//!   header edits, a rewritten target and variables in [`FilterState`].
//! - Response phase: the filters whose request phase ran, in reverse order
//!   (as Envoy's encoder filters): they see the status and the response
//!   headers through [`ResponseCx`] and add response edits. It runs for
//!   upstream responses and for local replies alike, so a route's response
//!   headers are on its direct responses and redirects too.
//!
//! Before the chain, two built-in checks answer what no filter can fix:
//! `Expect` other than `100-continue` (417) and a declared body over the
//! route's `max_body_bytes` (413).
//!
//! # Performance
//! An empty chain is an empty slice: no call, no allocation. The state
//! (edits, variables) is per connection and reused across its requests.
//!
//! # Adding a filter
//! See `docs/filters.md`: a folder with `config.rs` (serde file struct with
//! `build`) and `filter.rs` (`on_request` / `on_response`), a variant in
//! [`Filter`] and in [`FilterFile`].

pub mod api_key;
pub mod authz;
pub mod basic_auth;
pub mod compress;
pub mod concurrency;
pub mod context;
pub mod cors;
pub mod direct;
pub mod headers;
pub mod ip_acl;
pub mod jwt;
pub mod rate_limit;
pub mod redirect;
pub mod reply;
pub mod rewrite;
pub mod template;

use serde::Deserialize;

use crate::error::{ErrorKind, ProxyError};
use crate::http::{BodyFraming, RequestHead};

pub use context::{CompressState, FilterState, RequestCx, ResponseCx, TlsFacts, Vars};
pub use reply::{LocalReply, ReplyBody};

/// Problems found while building a filter: (key path relative to the filter,
/// message). The config builder prefixes the filter's own path and adds the
/// line.
pub type Problems = Vec<(String, String)>;

/// What a filter decided.
#[derive(Debug)]
pub enum Flow {
    /// Go on to the next filter / stage.
    Continue,
    /// Answer now with this reply; the request goes no further. The
    /// connection stays open when the request body was absent or fully read.
    Respond(LocalReply),
    /// Answer with this error's response (and close, as every error does).
    Reject(ProxyError),
}

/// One compiled filter.
#[derive(Debug, Clone)]
pub enum Filter {
    Headers(headers::HeadersFilter),
    DirectResponse(direct::DirectFilter),
    Cors(cors::CorsFilter),
    IpAcl(ip_acl::IpAclFilter),
    Authz(authz::AuthzFilter),
    Rewrite(rewrite::RewriteFilter),
    Redirect(redirect::RedirectFilter),
    ApiKey(api_key::ApiKeyFilter),
    BasicAuth(basic_auth::BasicAuthFilter),
    RateLimit(rate_limit::RateLimitFilter),
    ConcurrencyLimit(concurrency::ConcurrencyLimitFilter),
    Jwt(jwt::JwtFilter),
    Compress(compress::CompressFilter),
}

impl Filter {
    #[inline]
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        match self {
            Filter::Headers(f) => f.on_request(cx),
            Filter::DirectResponse(f) => f.on_request(cx),
            Filter::Cors(f) => f.on_request(cx),
            Filter::IpAcl(f) => f.on_request(cx),
            Filter::Authz(f) => f.on_request(cx),
            Filter::Rewrite(f) => f.on_request(cx),
            Filter::Redirect(f) => f.on_request(cx),
            Filter::ApiKey(f) => f.on_request(cx),
            Filter::BasicAuth(f) => f.on_request(cx),
            Filter::RateLimit(f) => f.on_request(cx),
            Filter::ConcurrencyLimit(f) => f.on_request(cx),
            Filter::Jwt(f) => f.on_request(cx),
            Filter::Compress(f) => f.on_request(cx),
        }
    }

    #[inline]
    pub fn on_response(&self, cx: &mut ResponseCx<'_>) -> Flow {
        match self {
            Filter::Headers(f) => f.on_response(cx),
            Filter::DirectResponse(_) => Flow::Continue,
            // CORS fields are recorded in the request phase.
            Filter::Cors(_) => Flow::Continue,
            Filter::IpAcl(_) | Filter::Authz(_) => Flow::Continue,
            Filter::Rewrite(f) => f.on_response(cx),
            Filter::Redirect(f) => f.on_response(cx),
            // The 401 challenge is recorded in the request phase.
            Filter::ApiKey(_) | Filter::BasicAuth(_) => Flow::Continue,
            // The 429 fields are recorded in the request phase.
            Filter::RateLimit(_) => Flow::Continue,
            // Gives the request's slot back.
            Filter::ConcurrencyLimit(f) => f.on_response(cx),
            // Claims and the 401/403 challenge are set in the request phase.
            Filter::Jwt(_) => Flow::Continue,
            // Decides from the response head; `forward` streams the body.
            Filter::Compress(f) => f.on_response(cx),
        }
    }

    /// The query parameter this filter reads a secret from (an API key, a
    /// token): the access log never shows its value.
    pub fn secret_query_param(&self) -> Option<&[u8]> {
        match self {
            Filter::ApiKey(f) => match &f.source {
                api_key::filter::KeySource::Query(name) => Some(name),
                api_key::filter::KeySource::Header(_) => None,
            },
            Filter::Jwt(f) => match &f.source {
                jwt::filter::TokenSource::Query(name) => Some(name),
                _ => None,
            },
            _ => None,
        }
    }

    /// The `type` of this filter, for `/config` and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Filter::Headers(_) => "headers",
            Filter::DirectResponse(_) => "direct_response",
            Filter::Cors(_) => "cors",
            Filter::IpAcl(_) => "ip_acl",
            Filter::Authz(_) => "authz",
            Filter::Rewrite(_) => "rewrite",
            Filter::Redirect(_) => "redirect",
            Filter::ApiKey(_) => "api_key",
            Filter::BasicAuth(_) => "basic_auth",
            Filter::RateLimit(_) => "rate_limit",
            Filter::ConcurrencyLimit(_) => "concurrency_limit",
            Filter::Jwt(_) => "jwt",
            Filter::Compress(_) => "compress",
        }
    }
}

/// `[[route.filters]]`: one filter as written, selected by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterFile {
    Headers(headers::HeadersFile),
    DirectResponse(direct::DirectFile),
    Cors(cors::CorsFile),
    IpAcl(ip_acl::IpAclFile),
    Authz(authz::AuthzFile),
    Rewrite(rewrite::RewriteFile),
    Redirect(redirect::RedirectFile),
    ApiKey(api_key::ApiKeyFile),
    BasicAuth(basic_auth::BasicAuthFile),
    RateLimit(rate_limit::RateLimitFile),
    ConcurrencyLimit(concurrency::ConcurrencyLimitFile),
    // Boxed: the largest file form by far.
    Jwt(Box<jwt::JwtFile>),
    Compress(compress::CompressFile),
}

impl FilterFile {
    /// Check and compile; problems are reported into `p`. Files a filter
    /// reads (`keys_file`, `htpasswd_file`) are relative to the current
    /// directory: see [`FilterFile::build_in`].
    pub fn build(&self, p: &mut Problems) -> Option<Filter> {
        self.build_in(std::path::Path::new(""), p)
    }

    /// As [`FilterFile::build`], with files a filter reads relative to
    /// `base_dir` (the config file's directory).
    pub fn build_in(&self, base_dir: &std::path::Path, p: &mut Problems) -> Option<Filter> {
        self.build_on_route("", base_dir, p)
    }

    /// As [`FilterFile::build_in`], for the route named `route`: limiters
    /// (`rate_limit`, `concurrency_limit`) keep their state across reloads
    /// by route name.
    pub fn build_on_route(
        &self,
        route: &str,
        base_dir: &std::path::Path,
        p: &mut Problems,
    ) -> Option<Filter> {
        match self {
            FilterFile::Headers(f) => f.build(p).map(Filter::Headers),
            FilterFile::DirectResponse(f) => f.build(p).map(Filter::DirectResponse),
            FilterFile::Cors(f) => f.build(p).map(Filter::Cors),
            FilterFile::IpAcl(f) => f.build(p).map(Filter::IpAcl),
            FilterFile::Authz(f) => f.build(p).map(Filter::Authz),
            FilterFile::Rewrite(f) => f.build(p).map(Filter::Rewrite),
            FilterFile::Redirect(f) => f.build(p).map(Filter::Redirect),
            FilterFile::ApiKey(f) => f.build(base_dir, p).map(Filter::ApiKey),
            FilterFile::BasicAuth(f) => f.build(base_dir, p).map(Filter::BasicAuth),
            FilterFile::RateLimit(f) => f.build(route, p).map(Filter::RateLimit),
            FilterFile::ConcurrencyLimit(f) => f.build(route, p).map(Filter::ConcurrencyLimit),
            FilterFile::Jwt(f) => f.build(base_dir, p).map(Filter::Jwt),
            FilterFile::Compress(f) => f.build(p).map(Filter::Compress),
        }
    }
}

/// Run the request phase of `chain`. Returns the decision and how many
/// filters ran (the response phase runs those).
pub fn run_request(chain: &[Filter], cx: &mut RequestCx<'_>) -> (Flow, usize) {
    for (i, f) in chain.iter().enumerate() {
        match f.on_request(cx) {
            Flow::Continue => {}
            other => return (other, i + 1),
        }
    }
    (Flow::Continue, chain.len())
}

/// Run the response phase of the first `ran` filters of `chain`, last first.
pub fn run_response(chain: &[Filter], ran: usize, cx: &mut ResponseCx<'_>) -> Flow {
    for f in chain[..ran.min(chain.len())].iter().rev() {
        match f.on_response(cx) {
            Flow::Continue => {}
            other => return other,
        }
    }
    Flow::Continue
}

/// The built-in checks that run before a route's chain: `Expect` other than
/// `100-continue` → 417, then a declared Content-Length over the route's
/// `max_body_bytes` → 413 (before the client sends the body; chunked bodies
/// are counted while they stream, in `forward`).
pub fn run_checks(max_body_bytes: Option<u64>, head: &RequestHead) -> Result<(), ProxyError> {
    if head.expect_other {
        return Err(ProxyError::new(ErrorKind::ExpectationFailed));
    }
    if let (Some(max), BodyFraming::Length(n)) = (max_body_bytes, head.framing) {
        if n > max {
            return Err(ProxyError::new(ErrorKind::BodyTooLarge));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
