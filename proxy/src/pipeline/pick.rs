//! The `pick` stage: which endpoint of the chosen cluster gets this request.
//!
//! The cluster's balancer (`upstream::lb`, per worker, per generation)
//! chooses; for `ring_hash` / `maglev` this stage first finds and hashes the
//! request's `hash_key` (a request without it is balanced by weighted round
//! robin). The pick comes back as an [`InFlight`] guard: the forward stage
//! holds it until the exchange ends and reports the response latency
//! through it.

use std::net::IpAddr;

use super::cookie::cookie_value;
use super::generation::WorkerGen;
use crate::config::HashKey;
use crate::error::{ErrorKind, ProxyError};
use crate::http::RequestHead;
use crate::upstream::lb::hash::hash64;
use crate::upstream::lb::InFlight;

/// The parts of a request a hash key can come from.
pub struct PickRequest<'a> {
    /// The connection buffer the head's spans point into.
    pub buf: &'a [u8],
    pub head: &'a RequestHead,
    pub client: IpAddr,
}

/// The endpoint for the next request to `cluster`, counted in flight until
/// the guard drops; `NoEndpoint` (503) when the cluster has none.
pub fn pick_endpoint<'g>(
    gen: &'g WorkerGen,
    cluster: usize,
    req: &PickRequest<'_>,
) -> Result<InFlight<'g>, ProxyError> {
    // Circuit breaker: requests in flight to the cluster on this worker.
    if let Some(max) = gen.config().clusters[cluster].max_requests {
        if gen.balancers[cluster].load.total() >= max {
            gen.stats.clusters[cluster].overflow_requests.inc();
            return Err(ProxyError::new(ErrorKind::Overflow("max_requests")));
        }
    }
    let hash = gen.config().clusters[cluster]
        .hash_key
        .as_ref()
        .and_then(|k| key_hash(k, req));
    gen.balancers[cluster]
        .pick(hash)
        .ok_or_else(|| ProxyError::new(ErrorKind::NoEndpoint))
}

/// An endpoint for a retry: another than `failed` when the cluster has
/// another one to give (a few picks are tried). A retry is picked without
/// the request's hash key (its owner just failed): by the cluster's
/// algorithm, or weighted round robin for `ring_hash` / `maglev`.
pub fn pick_again(
    gen: &WorkerGen,
    cluster: usize,
    failed: usize,
) -> Result<InFlight<'_>, ProxyError> {
    let b = &gen.balancers[cluster];
    let n = gen.config().clusters[cluster].endpoints.len();
    for _ in 0..4 {
        let p = b
            .pick(None)
            .ok_or_else(|| ProxyError::new(ErrorKind::NoEndpoint))?;
        if p.endpoint() != failed || n == 1 {
            return Ok(p);
        }
    }
    b.pick(None)
        .ok_or_else(|| ProxyError::new(ErrorKind::NoEndpoint))
}

/// The hash of the request's key, `None` when it has no (or an empty) one.
fn key_hash(key: &HashKey, req: &PickRequest<'_>) -> Option<u64> {
    let (buf, head) = (req.buf, req.head);
    let bytes: &[u8] = match key {
        HashKey::ClientIp => {
            return Some(match req.client {
                IpAddr::V4(a) => hash64(&a.octets(), 0),
                IpAddr::V6(a) => hash64(&a.octets(), 0),
            })
        }
        HashKey::Path => head.path(buf),
        HashKey::Header(name) => head
            .headers
            .iter()
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.get(buf))?,
        HashKey::Cookie(name) => head
            .headers
            .iter()
            .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"cookie"))
            .find_map(|h| cookie_value(h.value.get(buf), name.as_bytes()))?,
        HashKey::Query(name) => query_value(head.target.get(buf), name.as_bytes())?,
    };
    (!bytes.is_empty()).then(|| hash64(bytes, 0))
}

/// The raw (not percent-decoded) value of query parameter `name` in a
/// request target.
fn query_value<'a>(target: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let q = memchr::memchr(b'?', target).map(|i| &target[i + 1..])?;
    let q = memchr::memchr(b'#', q).map_or(q, |i| &q[..i]);
    q.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::query_value;

    #[test]
    fn finds_query_values() {
        let t = b"/a?x=1&id=42&flag&e=";
        assert_eq!(query_value(t, b"id"), Some(&b"42"[..]));
        assert_eq!(query_value(t, b"x"), Some(&b"1"[..]));
        assert_eq!(query_value(t, b"flag"), Some(&b""[..]));
        assert_eq!(query_value(t, b"i"), None);
        assert_eq!(query_value(b"/a", b"id"), None);
        assert_eq!(query_value(b"/a?id=7#f", b"id"), Some(&b"7"[..]));
    }
}
