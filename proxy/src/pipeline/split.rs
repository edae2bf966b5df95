//! The cluster choice of a `split` route: smooth weighted round robin per
//! worker (exact to the percent over every `sum(weights)` requests), or,
//! with `split_by`, a hash of a header or cookie so that one user always
//! lands on the same cluster (a request without the key falls back to the
//! weighted round robin).

use super::cookie::cookie_value;
use super::generation::WorkerGen;
use crate::config::{SplitAction, StickyKey};
use crate::http::RequestHead;

/// FNV-1a: stable across workers, processes and restarts, so a sticky key
/// maps to the same cluster on every ringway node with the same weights.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Mix the high bits down (FNV's low bits are weak for small moduli).
    h ^ (h >> 29)
}

/// The sticky key of a request, if it has one.
fn sticky_key<'a>(key: &StickyKey, buf: &'a [u8], head: &RequestHead) -> Option<&'a [u8]> {
    match key {
        StickyKey::Header(name) => head
            .headers
            .iter()
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.get(buf)),
        StickyKey::Cookie(name) => head
            .headers
            .iter()
            .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"cookie"))
            .find_map(|h| cookie_value(h.value.get(buf), name.as_bytes())),
    }
}

/// The cluster (index) this request of split route `route` goes to.
pub fn pick_cluster(
    gen: &WorkerGen,
    route: usize,
    split: &SplitAction,
    buf: &[u8],
    head: &RequestHead,
) -> usize {
    let Some(state) = gen.splits.get(route).and_then(Option::as_ref) else {
        return split.targets[0].0;
    };
    let by_key = split
        .sticky
        .as_ref()
        .and_then(|k| sticky_key(k, buf, head))
        .filter(|v| !v.is_empty())
        .and_then(|v| state.pick_by_hash(stable_hash(v)));
    let i = by_key.or_else(|| state.pick()).unwrap_or(0);
    // Per-split counters (`/stats` routes[].split, `ringway_split_requests_total`).
    if let Some(c) = gen.stats.splits.get(route).and_then(|s| s.get(i)) {
        c.inc();
    }
    split.targets[i].0
}
