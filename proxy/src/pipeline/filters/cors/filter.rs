//! `type = "cors"`: answer preflights, add CORS fields to actual responses.
//!
//! - No `Origin`: nothing happens.
//! - Preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`):
//!   answered here, never forwarded. Allowed origin, method and every
//!   requested header → 204 with `Access-Control-Allow-Origin`,
//!   `-Allow-Methods`, `-Allow-Headers`, `-Max-Age`, `-Allow-Credentials`
//!   and `Vary: Origin`; anything else → 403 without CORS fields.
//! - Actual request from an allowed origin: forwarded; the response (or a
//!   local reply of a later filter) gets `Access-Control-Allow-Origin`,
//!   `-Allow-Credentials`, `-Expose-Headers` (these replace the upstream's
//!   own) and `Vary: Origin` (added beside the upstream's `Vary`). From any
//!   other origin: forwarded untouched, and the browser withholds the
//!   response from the page.
//!
//! The origin is echoed only when it matched a configured rule; `"*"` is
//! answered with `*` (and no `Vary`, the answer does not depend on it).
//! The response fields are recorded in the request phase (the response
//! edits), so the response phase has nothing left to do.

use super::super::context::RequestCx;
use super::super::reply::LocalReply;
use super::super::Flow;
use super::config::{is_scheme, split_host_port};

/// One `allow_origins` entry other than `"*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    /// `scheme://host[:port]`, lower-case.
    Exact(Box<str>),
    /// `*.example.com` (stored as `.example.com`), optionally with a scheme.
    Suffix {
        scheme: Option<Box<str>>,
        suffix: Box<str>,
    },
}

impl OriginRule {
    /// Whether `origin` (as the client sent it) matches.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginRule::Exact(o) => o.eq_ignore_ascii_case(origin),
            OriginRule::Suffix { scheme, suffix } => {
                let Some((s, rest)) = origin.split_once("://") else {
                    return false;
                };
                if !is_scheme(s)
                    || scheme
                        .as_deref()
                        .is_some_and(|want| !want.eq_ignore_ascii_case(s))
                {
                    return false;
                }
                let Some(host) = split_host_port(rest) else {
                    return false;
                };
                host.len() > suffix.len()
                    && host.as_bytes()[host.len() - suffix.len()..]
                        .eq_ignore_ascii_case(suffix.as_bytes())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct CorsFilter {
    pub(super) any_origin: bool,
    pub(super) origins: Box<[OriginRule]>,
    pub(super) methods: Box<[Box<[u8]>]>,
    /// `GET, HEAD, POST`
    pub(super) methods_value: Box<[u8]>,
    /// Allowed request headers (compared case-insensitively).
    pub(super) headers: Box<[Box<[u8]>]>,
    /// `allow_headers = ["*"]`: any requested header, echoed back.
    pub(super) any_header: bool,
    pub(super) headers_value: Option<Box<[u8]>>,
    pub(super) expose_value: Option<Box<[u8]>>,
    pub(super) credentials: bool,
    pub(super) max_age_value: Option<Box<[u8]>>,
}

const ACAO: &[u8] = b"Access-Control-Allow-Origin";
const ACAC: &[u8] = b"Access-Control-Allow-Credentials";

impl CorsFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let mut origins = cx.headers(b"origin");
        let Some(origin) = origins.next() else {
            return Flow::Continue;
        };
        // Two Origin fields: no browser sends that; allow neither.
        let origin = match origins.next() {
            None => std::str::from_utf8(origin.trim_ascii()).ok(),
            Some(_) => None,
        };
        let allowed = origin.filter(|o| self.origin_allowed(o));
        let preflight = cx.method() == b"OPTIONS";
        let request_method = cx.header(b"access-control-request-method");
        match (preflight, request_method) {
            (true, Some(method)) => self.preflight(cx, allowed, method.trim_ascii()),
            _ => {
                if let Some(origin) = allowed {
                    self.actual(cx, origin);
                }
                Flow::Continue
            }
        }
    }

    /// Whether a request from `origin` may read responses.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|r| r.matches(origin))
    }

    /// The `Access-Control-Allow-Origin` value: `*` for `"*"` without
    /// credentials, else the origin itself.
    fn allow_origin_value<'o>(&self, origin: &'o str) -> &'o [u8] {
        if self.any_origin && !self.credentials {
            b"*"
        } else {
            origin.as_bytes()
        }
    }

    fn preflight(&self, cx: &mut RequestCx<'_>, origin: Option<&str>, method: &[u8]) -> Flow {
        let forbidden = || Flow::Respond(LocalReply::text(403, "403 Forbidden\n"));
        let Some(origin) = origin else {
            return forbidden();
        };
        if !self.methods.iter().any(|m| **m == *method) {
            return forbidden();
        }
        let requested = cx
            .headers(b"access-control-request-headers")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|h| !h.is_empty());
        let mut echo = Vec::new();
        for h in requested {
            if self.any_header {
                if !echo.is_empty() {
                    echo.extend_from_slice(b", ");
                }
                echo.extend_from_slice(h);
            } else if !self.headers.iter().any(|a| a.eq_ignore_ascii_case(h)) {
                return forbidden();
            }
        }
        let r = &mut cx.state.response;
        r.set(ACAO, self.allow_origin_value(origin));
        r.set(b"Access-Control-Allow-Methods", &self.methods_value);
        if let Some(v) = &self.headers_value {
            r.set(b"Access-Control-Allow-Headers", v);
        } else if !echo.is_empty() {
            r.set(b"Access-Control-Allow-Headers", &echo);
        }
        if let Some(v) = &self.max_age_value {
            r.set(b"Access-Control-Max-Age", v);
        }
        if self.credentials {
            r.set(ACAC, b"true");
        }
        if !self.any_origin || self.credentials {
            r.add(b"Vary", b"Origin");
        }
        Flow::Respond(LocalReply::empty(204))
    }

    fn actual(&self, cx: &mut RequestCx<'_>, origin: &str) {
        let r = &mut cx.state.response;
        r.set(ACAO, self.allow_origin_value(origin));
        if self.credentials {
            r.set(ACAC, b"true");
        }
        if let Some(v) = &self.expose_value {
            r.set(b"Access-Control-Expose-Headers", v);
        }
        if !self.any_origin || self.credentials {
            r.add(b"Vary", b"Origin");
        }
    }
}
