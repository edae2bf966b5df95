//! `type = "rewrite"`: replace the request target sent upstream.
//!
//! The input is the target so far: the client's (an absolute-form target
//! gives its path), or the one an earlier rewrite of the chain produced, so
//! rewrites compose in file order. A path that does not match (`prefix` not
//! a prefix of it, `regex` not matching) is left as it is.
//!
//! - `prefix`: `from` is replaced by `to`.
//! - `regex`: the first match is replaced by `replace` with its `$1` /
//!   `${name}` expanded (anchor the pattern with `^…$` to replace the
//!   whole path).
//!
//! The query of the input is kept: appended after `?`, or after `&` when
//! the replacement already has a `?`. The fragment, if a client sent one,
//! is dropped. The result is sent upstream in origin form.
//!
//! # Errors
//! The result must start with `/` and hold no space, control character or
//! DEL. The config allows none in `to` / `replace`, and the client's target
//! cannot carry them, so only a regex whose replacement starts with a group
//! (`replace = "$1"`) can produce such a target; the request is then
//! answered 500 (an internal error: the rule is wrong, and forwarding the
//! unrewritten target could reach what the rewrite was meant to hide).
//!
//! # Performance
//! The new target is written into the connection's reusable target buffer
//! (`FilterState::target_buf`): no allocation once it has grown. A regex
//! whose replacement has no `$` only finds the match; one with
//! references allocates its capture slots per request. A second rewrite in
//! the same chain copies the first one's target.

use regex::bytes::Regex;

use crate::error::{ErrorKind, ProxyError};
use crate::pipeline::filters::context::{RequestCx, ResponseCx};
use crate::pipeline::filters::Flow;
use crate::pipeline::route::target_path;

#[derive(Debug, Clone)]
pub struct RewriteFilter {
    pub(super) rule: Rule,
}

#[derive(Debug, Clone)]
pub(super) enum Rule {
    Prefix {
        from: Box<[u8]>,
        to: Box<[u8]>,
    },
    Regex {
        re: Regex,
        replace: Box<[u8]>,
        /// `replace` has no `$`: copied as is.
        literal: bool,
    },
}

/// The query of a target (after `?`, without it, fragment removed).
pub(crate) fn target_query(target: &[u8]) -> Option<&[u8]> {
    let q = memchr::memchr(b'?', target).map(|i| &target[i + 1..])?;
    Some(match memchr::memchr(b'#', q) {
        Some(j) => &q[..j],
        None => q,
    })
}

/// Append the query `q` (if any and not empty) to `out`, after `&` when
/// `out` already has a query, else after `?`.
pub(crate) fn append_query(out: &mut Vec<u8>, q: Option<&[u8]>) {
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        out.push(if memchr::memchr(b'?', out).is_some() {
            b'&'
        } else {
            b'?'
        });
        out.extend_from_slice(q);
    }
}

/// A target ringway may send: starts with `/`, no space, control or DEL.
pub(crate) fn is_safe_target(t: &[u8]) -> bool {
    t.first() == Some(&b'/') && !t.iter().any(|&b| b <= b' ' || b == 0x7f)
}

impl RewriteFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        let earlier: Vec<u8>;
        let target: &[u8] = match cx.state.target() {
            Some(t) => {
                earlier = t.to_vec();
                &earlier
            }
            None => cx.original_target(),
        };
        let path = target_path(target);
        if path.first() != Some(&b'/') {
            // `*` (OPTIONS) or an absolute-form target with an odd path.
            return Flow::Continue;
        }
        let query = target_query(target);
        let out = match &self.rule {
            Rule::Prefix { from, to } => {
                let Some(rest) = path.strip_prefix(&from[..]) else {
                    return Flow::Continue;
                };
                let out = cx.state.target_buf();
                out.extend_from_slice(to);
                out.extend_from_slice(rest);
                append_query(out, query);
                out
            }
            Rule::Regex {
                re,
                replace,
                literal: true,
            } => {
                let Some(m) = re.find(path) else {
                    return Flow::Continue;
                };
                let out = cx.state.target_buf();
                out.extend_from_slice(&path[..m.start()]);
                out.extend_from_slice(replace);
                out.extend_from_slice(&path[m.end()..]);
                append_query(out, query);
                out
            }
            Rule::Regex {
                re,
                replace,
                literal: false,
            } => {
                let Some(caps) = re.captures(path) else {
                    return Flow::Continue;
                };
                let whole = caps.get(0).map_or(0..0, |m| m.range());
                let out = cx.state.target_buf();
                out.extend_from_slice(&path[..whole.start]);
                caps.expand(replace, out);
                out.extend_from_slice(&path[whole.end..]);
                append_query(out, query);
                out
            }
        };
        if !is_safe_target(out) {
            return Flow::Reject(ProxyError::new(ErrorKind::Internal(
                "rewrite produced an invalid request target",
            )));
        }
        cx.state.commit_target();
        Flow::Continue
    }

    pub fn on_response(&self, _cx: &mut ResponseCx<'_>) -> Flow {
        Flow::Continue
    }
}
