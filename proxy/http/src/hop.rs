//! Hop-by-hop header names (RFC 9110 §7.6.1) that a proxy never forwards.

/// True for header names that are hop-by-hop on every message: Connection,
/// Keep-Alive, Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, TE,
/// Trailer, Upgrade. (Transfer-Encoding is handled by the framing code.)
/// Case-insensitive.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 8] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"upgrade",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}
