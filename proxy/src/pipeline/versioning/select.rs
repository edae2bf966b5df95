//! Where a request names its API version, and the target it is forwarded
//! with.

use super::{PrefixRewrite, VersionSource};
use crate::pipeline::filters::context::RequestCx;
use crate::pipeline::route::target_path;

/// The version `cx` asks for by `source` (a slice of the request; `None`
/// when absent or empty).
pub(super) fn version_of<'a>(source: &VersionSource, cx: &RequestCx<'a>) -> Option<&'a [u8]> {
    let v = match source {
        VersionSource::Header(name) => cx.header(name.as_bytes()).map(|v| v.trim_ascii()),
        VersionSource::PathPrefix { .. } => path_version(cx.path()).map(|(v, _)| v),
        VersionSource::Accept(vendor) => accept_version(cx.headers(b"accept"), vendor.as_bytes()),
        VersionSource::Query(name) => cx.query().and_then(|q| query_param(q, name.as_bytes())),
    };
    v.filter(|v| !v.is_empty())
}

/// `/v2/orders` → (`"2"`, `"/orders"`); `/v2` → (`"2"`, `""`). `None`
/// when the first segment is not `v<something>`.
pub(super) fn path_version(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = path.strip_prefix(b"/")?;
    let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
    let seg = &rest[..end];
    match seg.split_first() {
        Some((b'v' | b'V', v)) if !v.is_empty() => Some((v, &rest[end..])),
        _ => None,
    }
}

/// The first non-empty value of query parameter `name` (raw, as sent).
pub(super) fn query_param<'a>(query: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name && !v.is_empty()).then_some(v)
    })
}

/// The version of the most preferred media range of `Accept` values that
/// names one: a `version=` parameter, or a vendor type
/// `<vendor>.v<version>[+suffix]`. Highest `q` wins, the first on a tie;
/// `q=0` ranges are refused ones and never count.
pub(super) fn accept_version<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    vendor: &[u8],
) -> Option<&'a [u8]> {
    let mut best: Option<(u16, &'a [u8])> = None;
    for value in values {
        for range in value.split(|&b| b == b',') {
            let mut parts = range.split(|&b| b == b';');
            let media = parts.next().unwrap_or_default().trim_ascii();
            let mut q = 1000;
            let mut version = vendor_version(media, vendor);
            for p in parts {
                let Some(i) = memchr::memchr(b'=', p) else {
                    continue;
                };
                let (k, v) = (p[..i].trim_ascii(), unquote(p[i + 1..].trim_ascii()));
                if k.eq_ignore_ascii_case(b"q") {
                    q = parse_q(v);
                } else if k.eq_ignore_ascii_case(b"version") && version.is_none() {
                    version = Some(v);
                }
            }
            if let Some(v) = version.filter(|v| !v.is_empty()) {
                if q > 0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, v));
                }
            }
        }
    }
    best.map(|(_, v)| v)
}

/// `application/vnd.acme.v2+json` with vendor `application/vnd.acme` → `"2"`.
fn vendor_version<'a>(media: &'a [u8], vendor: &[u8]) -> Option<&'a [u8]> {
    if vendor.is_empty() || media.len() < vendor.len() + 2 {
        return None;
    }
    let (head, rest) = media.split_at(vendor.len());
    if !head.eq_ignore_ascii_case(vendor) {
        return None;
    }
    let rest = rest
        .strip_prefix(b".v")
        .or_else(|| rest.strip_prefix(b".V"))?;
    let end = memchr::memchr(b'+', rest).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn unquote(v: &[u8]) -> &[u8] {
    v.strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v)
}

/// A quality value in thousandths (`0.5` → 500); a malformed one counts as 1.
pub(super) fn parse_q(v: &[u8]) -> u16 {
    let (int, frac) = match memchr::memchr(b'.', v) {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    let ok = matches!(int, b"0" | b"1") && frac.len() <= 3 && frac.iter().all(u8::is_ascii_digit);
    if !ok {
        return 1000;
    }
    let mut n: u16 = if int == b"1" { 1000 } else { 0 };
    for (i, d) in frac.iter().enumerate() {
        n += u16::from(d - b'0') * [100, 10, 1][i];
    }
    n.min(1000)
}

/// Record the target sent upstream: without the `/v<N>` segment when
/// `strip`, then with `rewrite` (`from` → `to`) applied when the path
/// starts with `from`. Nothing is recorded when neither changes the path.
pub(super) fn rewrite_target(cx: &mut RequestCx<'_>, strip: bool, rewrite: Option<&PrefixRewrite>) {
    if !strip && rewrite.is_none() {
        return;
    }
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
        return;
    }
    let mut p = path;
    let mut changed = false;
    if strip {
        if let Some((_, rest)) = path_version(path) {
            p = rest;
            changed = true;
        }
    }
    let (to, rest): (&[u8], &[u8]) = match rewrite {
        Some(r) if p.starts_with(&r.from) => {
            changed = true;
            (&r.to, &p[r.from.len()..])
        }
        _ => (b"", p),
    };
    if !changed {
        return;
    }
    let query = target_query(target);
    let out = cx.state.target_buf();
    out.extend_from_slice(to);
    out.extend_from_slice(rest);
    if out.first() != Some(&b'/') {
        out.insert(0, b'/');
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push(if memchr::memchr(b'?', out).is_some() {
            b'&'
        } else {
            b'?'
        });
        out.extend_from_slice(q);
    }
    cx.state.commit_target();
}

/// The query of a target (after `?`, fragment removed).
fn target_query(target: &[u8]) -> Option<&[u8]> {
    let q = memchr::memchr(b'?', target).map(|i| &target[i + 1..])?;
    Some(match memchr::memchr(b'#', q) {
        Some(j) => &q[..j],
        None => q,
    })
}
