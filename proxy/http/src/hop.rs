//! Hop-by-hop header names (RFC 9110 §7.6.1) that a proxy never forwards.

use crate::ascii::eq_lower;
/// True for header names that are hop-by-hop on every message: Connection,
/// Keep-Alive, Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, TE,
/// Trailer, Upgrade. (Transfer-Encoding is handled by the framing code.)
/// Case-insensitive.
#[inline]
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    // By length first: most names are none of these lengths, and this runs
    // for every field of every head.
    let names: &[&[u8]] = match name.len() {
        2 => &[b"te"],
        7 => &[b"trailer", b"upgrade"],
        10 => &[b"connection", b"keep-alive"],
        16 => &[b"proxy-connection"],
        18 => &[b"proxy-authenticate"],
        19 => &[b"proxy-authorization"],
        _ => return false,
    };
    names.iter().any(|n| eq_lower(name, n))
}
