//! `type = "compress"`: the request phase picks a coding from
//! Accept-Encoding, the response phase decides from the response head.
//!
//! A response is *eligible* when none of these hold: a local reply; status
//! 1xx, 204, 206 or 304; a Content-Encoding other than `identity`; a
//! Content-Range; a transfer coding other than chunked; `Cache-Control: no-transform`; no Content-Type or one not
//! in `content_types`; a Content-Length under `min_size`. An eligible
//! response gets `Vary: Accept-Encoding` (whether or not this client gets it
//! compressed: caches must know). It is compressed when it is eligible, has
//! a body, and the request phase chose a coding: not for HEAD, not for
//! HTTP/1.0 clients (they cannot take the chunked framing a compressed body
//! of unknown length needs), not when Accept-Encoding accepts none of
//! `algorithms`. The head writer then reframes it (`ResponseInfo::compress`)
//! and `forward` streams the body through the encoder.

use super::super::context::{response_fields, CompressState, RequestCx, ResponseCx};
use super::super::Flow;
use super::negotiate::choose;
use super::types::TypeList;
use super::{Codec, Plan};
use crate::http::{ResponseFraming, Version};

#[derive(Debug, Clone)]
pub struct CompressFilter {
    /// Live compressors per worker beyond which responses go uncompressed.
    pub(super) max_streams: usize,
    /// Server preference order.
    pub(super) algorithms: Box<[Codec]>,
    pub(super) gzip_level: u8,
    pub(super) brotli_quality: u8,
    pub(super) brotli_window: u8,
    pub(super) min_size: u64,
    pub(super) types: TypeList,
}

impl CompressFilter {
    pub fn on_request(&self, cx: &mut RequestCx<'_>) -> Flow {
        if cx.head.version == Version::Http10 || cx.method() == b"HEAD" {
            return Flow::Continue;
        }
        if let Some(codec) = choose(cx.headers(b"accept-encoding"), &self.algorithms) {
            cx.state.compress = CompressState::Accepted(self.plan(codec));
        }
        Flow::Continue
    }

    pub fn on_response(&self, cx: &mut ResponseCx<'_>) -> Flow {
        let accepted = std::mem::take(&mut cx.state.compress);
        let Some((_, head)) = cx.upstream else {
            return Flow::Continue;
        };
        if !self.eligible(cx) {
            return Flow::Continue;
        }
        add_vary(cx);
        if let CompressState::Accepted(plan) = accepted {
            // Each stream holds its encoder's state (0.3 – 2 MiB): a worker
            // compresses at most `max_streams` responses at once, the rest
            // go out as they are.
            if head.framing != ResponseFraming::None
                && super::encoder::live_streams() < self.max_streams
            {
                cx.state.compress = CompressState::Chosen(plan);
            }
        }
        Flow::Continue
    }

    fn plan(&self, codec: Codec) -> Plan {
        match codec {
            Codec::Gzip => Plan {
                codec,
                level: self.gzip_level,
                window: 15,
            },
            Codec::Brotli => Plan {
                codec,
                level: self.brotli_quality,
                window: self.brotli_window,
            },
        }
    }

    /// Whether the response may be compressed (see the module docs).
    fn eligible(&self, cx: &ResponseCx<'_>) -> bool {
        let Some((_, head)) = cx.upstream else {
            return false;
        };
        let status = cx.status;
        if status < 200 || matches!(status, 204 | 206 | 304) {
            return false;
        }
        let mut typed = false;
        for (name, value) in cx.headers() {
            if name.eq_ignore_ascii_case(b"content-type") {
                // Server-sent events are a stream of small messages that must
                // arrive one by one: never buffered in an encoder.
                let media = value.split(|&b| b == b';').next().unwrap_or(b"");
                if typed
                    || !self.types.matches(value)
                    || trim(media).eq_ignore_ascii_case(b"text/event-stream")
                {
                    return false;
                }
                typed = true;
            } else if name.eq_ignore_ascii_case(b"content-encoding") {
                if !trim(value).eq_ignore_ascii_case(b"identity") {
                    return false;
                }
            } else if name.eq_ignore_ascii_case(b"content-range") {
                return false;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // A transfer coding besides chunked (`gzip, chunked`): the
                // de-chunked payload is still coded; leave it alone.
                if value
                    .split(|&b| b == b',')
                    .any(|t| !trim(t).eq_ignore_ascii_case(b"chunked"))
                {
                    return false;
                }
            } else if name.eq_ignore_ascii_case(b"cache-control") {
                if has_token(value, b"no-transform") {
                    return false;
                }
            } else if name.eq_ignore_ascii_case(b"content-length")
                && head.framing == ResponseFraming::None
            {
                // No body here (a HEAD-like answer): its stated length
                // still decides, so that Vary matches the GET's.
                if std::str::from_utf8(trim(value))
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|n| n < self.min_size)
                {
                    return false;
                }
            }
        }
        if let ResponseFraming::Length(n) = head.framing {
            if n < self.min_size {
                return false;
            }
        }
        typed
    }
}

/// Add `Accept-Encoding` to Vary: nothing when Vary already lists it or
/// `*`; appended to the upstream's Vary (one field line) when there is one;
/// else `Vary: Accept-Encoding`.
fn add_vary(cx: &mut ResponseCx<'_>) {
    let upstream = cx.upstream;
    let edits = &cx.state.response;
    let upstream_kept = !edits.drops(b"vary");
    let mut upstream_has = false;
    if upstream_kept {
        for (name, value) in response_fields(upstream) {
            if name.eq_ignore_ascii_case(b"vary") {
                upstream_has = true;
                if lists_encoding(value) {
                    return;
                }
            }
        }
    }
    if edits
        .fields()
        .any(|(n, v)| n.eq_ignore_ascii_case(b"vary") && lists_encoding(v))
    {
        return;
    }
    let edits = &mut cx.state.response;
    if !upstream_has {
        edits.add(b"Vary", b"Accept-Encoding");
        return;
    }
    // Join the upstream's Vary lines and append: one field line.
    let start = edits.begin_value();
    for (name, value) in response_fields(upstream) {
        if name.eq_ignore_ascii_case(b"vary") {
            let v = trim(value);
            if !v.is_empty() {
                edits.push_value(v);
                edits.push_value(b", ");
            }
        }
    }
    edits.push_value(b"Accept-Encoding");
    // Keep edit-made Vary lines: finish as a `set` drops only the
    // upstream's (and earlier `set`s of it, which is what they were).
    let kept: Vec<(Vec<u8>, Vec<u8>)> = edits
        .fields()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"vary"))
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    edits.finish_value(start, b"Vary", false);
    for (n, v) in kept {
        edits.add(&n, &v);
    }
}

fn lists_encoding(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| {
        let t = trim(t);
        t == b"*" || t.eq_ignore_ascii_case(b"accept-encoding")
    })
}

/// Whether a comma-separated directive list holds `token` (parameters
/// after `=` ignored).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|d| {
        let d = trim(d);
        let name = d.split(|&b| b == b'=').next().unwrap_or(d);
        trim(name).eq_ignore_ascii_case(token)
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}
