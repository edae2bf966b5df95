//! `type = "redirect"` and the route action `redirect = {…}`: answer with a
//! 3xx whose `Location` is the request's URL with parts replaced.
//!
//! `Location` = scheme `://` host [`:` port] path [`?` query]:
//!
//! - scheme: the configured one, else the request's (`https` on a TLS
//!   listener, `http` otherwise);
//! - host: the configured one, else the request's `Host` field (also for
//!   an absolute-form target: it is the value the route matched on);
//! - port: the configured one; else, with the request's host, the request's
//!   port when the scheme is unchanged and none when it changes (an
//!   `http://a.test:8080` request redirected to `https` goes to
//!   `https://a.test`, not to `:8080`). The scheme's default port is never
//!   written;
//! - path: the client's (an absolute-form target gives its path), or
//!   `path`, or the client's with `prefix.from` replaced by `prefix.to`;
//! - query: the client's, unless `strip_query`. The fragment is dropped.
//!
//! The reply has no body; the field goes into the request's response edits,
//! so the route's response header filters see the reply too.
//!
//! # Errors
//! The request's Host is client input written into a response field, so it
//! must be a plain authority: a host name (letters, digits, `-`, `.`, `_`)
//! or a bracketed IPv6 address, and an optional numeric port. Anything else
//! (`@`, `/`, `\`, spaces, control characters, percent-encoding, a missing
//! or empty Host) is answered 400 instead of reflected; so is a `*` target
//! or a path with a space or control character. The HTTP parser refuses
//! most of these already: this check holds on its own.
//!
//! # Performance
//! One allocation for the `Location` value per redirect.

use crate::error::{ErrorKind, ProxyError};
use crate::pipeline::filters::context::{RequestCx, ResponseCx};
use crate::pipeline::filters::reply::LocalReply;
use crate::pipeline::filters::rewrite::filter::append_query;
use crate::pipeline::filters::Flow;

/// Longest Host value a redirect reflects.
pub const MAX_AUTHORITY: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Scheme::Http => b"http",
            Scheme::Https => b"https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone)]
pub enum PathRule {
    /// The client's path.
    Keep,
    /// This path instead.
    Replace(Box<[u8]>),
    /// The client's path with the prefix `from` replaced by `to` (unchanged
    /// when it does not start with `from`).
    Prefix { from: Box<[u8]>, to: Box<[u8]> },
}

#[derive(Debug, Clone)]
pub struct RedirectFilter {
    pub status: u16,
    /// `None`: the request's.
    pub scheme: Option<Scheme>,
    /// Lower case; `None`: the request's Host.
    pub host: Option<Box<[u8]>>,
    pub port: Option<u16>,
    pub path: PathRule,
    pub strip_query: bool,
}

/// Split a plain authority `host[:port]` into host and port; `None` when it
/// is not one (see the module docs). `a.test:` has no port.
pub fn parse_authority(v: &[u8]) -> Option<(&[u8], Option<u16>)> {
    if v.is_empty() || v.len() > MAX_AUTHORITY {
        return None;
    }
    let (host, rest) = if v[0] == b'[' {
        let close = memchr::memchr(b']', v)?;
        let inner = &v[1..close];
        let ok = inner.contains(&b':')
            && inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return None;
        }
        (&v[..=close], &v[close + 1..])
    } else {
        let end = memchr::memchr(b':', v).unwrap_or(v.len());
        let host = &v[..end];
        let ok = !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !ok {
            return None;
        }
        (host, &v[end..])
    };
    let port = match rest {
        [] | [b':'] => None,
        [b':', digits @ ..] => {
            if digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u32 = digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0'));
            match u16::try_from(n) {
                Ok(p) if p > 0 => Some(p),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some((host, port))
}

fn bad_request(why: &'static str) -> Flow {
    Flow::Reject(ProxyError::new(ErrorKind::BadRequest(why)))
}

impl RedirectFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let request_scheme = if cx.tls.is_some() {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let scheme = self.scheme.unwrap_or(request_scheme);
        let (host, port) = match &self.host {
            Some(h) => (&h[..], self.port),
            None => {
                let Some(value) = cx.host() else {
                    return bad_request("no Host to redirect to");
                };
                let Some((host, request_port)) = parse_authority(value) else {
                    return bad_request("Host is not a plain host[:port] to redirect to");
                };
                let kept = if scheme == request_scheme {
                    request_port
                } else {
                    None
                };
                (host, self.port.or(kept))
            }
        };
        let client_path = cx.path();
        if !matches!(self.path, PathRule::Replace(_)) && client_path.first() != Some(&b'/') {
            return bad_request("no path to redirect");
        }

        let mut loc = Vec::with_capacity(16 + host.len() + client_path.len());
        loc.extend_from_slice(scheme.as_bytes());
        loc.extend_from_slice(b"://");
        loc.extend_from_slice(host);
        if let Some(p) = port.filter(|&p| p != scheme.default_port()) {
            loc.push(b':');
            loc.extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
        }
        match &self.path {
            PathRule::Keep => loc.extend_from_slice(client_path),
            PathRule::Replace(p) => loc.extend_from_slice(p),
            PathRule::Prefix { from, to } => match client_path.strip_prefix(&from[..]) {
                Some(rest) => {
                    loc.extend_from_slice(to);
                    loc.extend_from_slice(rest);
                }
                None => loc.extend_from_slice(client_path),
            },
        }
        if !self.strip_query {
            append_query(&mut loc, cx.query());
        }
        if loc.iter().any(|&b| b <= b' ' || b == 0x7f) {
            return bad_request("the target cannot be redirected");
        }
        if !cx.state.response.set(b"Location", &loc) {
            return Flow::Reject(ProxyError::new(ErrorKind::Internal(
                "redirect Location refused",
            )));
        }
        Flow::Respond(LocalReply::empty(self.status))
    }

    pub fn on_response(&self, _cx: &mut ResponseCx<'_>) -> Flow {
        Flow::Continue
    }
}
