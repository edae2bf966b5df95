//! The client address behind trusted proxies: walk `X-Forwarded-For` from
//! the right, past the hops we trust, to the first one we do not.
//!
//! # Semantics (nginx's `real_ip_recursive on`, Envoy's trusted CIDRs)
//! The chain is `XFF values in order (left to right), then the peer` (the
//! TCP peer, or the address a PROXY header carried). Every hop appends the
//! address it saw, so only the rightmost entries, written by proxies we
//! trust, can be believed; anything left of the first untrusted hop was
//! written by that hop or by the client and may be forged.
//!
//! - If the peer is not trusted, the peer is the client (its XFF is ignored).
//! - Otherwise the entries are read from the right: the first one that is
//!   not in a trusted block is the client.
//! - If every entry is trusted, the leftmost one is the client.
//! - A malformed entry (not an IP address) stops the walk: the client is the
//!   last trusted hop, the one that wrote it (its view is the last we can
//!   believe). So is a chain longer than [`MAX_HOPS`] entries.
//!
//! An entry is an IPv4 or IPv6 address, optionally `[v6]`, `[v6]:port` or
//! `v4:port` (some load balancers add the port); empty list elements
//! (`a, , b`) are skipped as list syntax allows. IPv4-mapped IPv6 addresses
//! count (and are returned) as IPv4.
//!
//! # Performance
//! No allocation: the values are read in place, blocks are `u32`/`u128`
//! masked compares over a short list.

use std::fmt;
use std::net::IpAddr;

/// Hops walked at most before giving up (the last trusted one is used).
pub const MAX_HOPS: usize = 64;

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    V4 { net: u32, len: u8 },
    V6 { net: u128, len: u8 },
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// The IPv4 address inside `::ffff:a.b.c.d`, else the address itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Cidr {
    /// Parse `addr` or `addr/len`. Host bits after the prefix must be zero
    /// (`10.0.0.1/8` is refused: it usually hides a typo). `::ffff:a.b.c.d/n`
    /// (n ≥ 96) is stored as the IPv4 block.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let t = text.trim();
        let (addr, len) = match t.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (t, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!("{text:?} is not an address or block: expected e.g. \"10.0.0.0/8\", \"192.0.2.7\" or \"2001:db8::/32\"")
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max && !l.starts_with('+') => n,
                _ => return Err(format!("{text:?}: the prefix length must be 0..={max}")),
            },
        };
        let cidr = match ip {
            IpAddr::V4(a) => Cidr::V4 {
                net: u32::from(a),
                len,
            },
            IpAddr::V6(a) => Cidr::V6 {
                net: u128::from(a),
                len,
            },
        };
        let masked = cidr.masked();
        if masked != cidr {
            return Err(format!(
                "{text:?} has bits set after the /{len} prefix: write \"{masked}\" (or the address alone for one host)"
            ));
        }
        Ok(match masked {
            Cidr::V6 { net, len } if len >= 96 && (net >> 32) == 0xffff => Cidr::V4 {
                net: net as u32,
                len: len - 96,
            },
            c => c,
        })
    }

    fn masked(self) -> Cidr {
        match self {
            Cidr::V4 { net, len } => Cidr::V4 {
                net: net & mask4(len),
                len,
            },
            Cidr::V6 { net, len } => Cidr::V6 {
                net: net & mask6(len),
                len,
            },
        }
    }

    /// Whether `ip` is in this block (IPv4-mapped IPv6 counts as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical(ip)) {
            (Cidr::V4 { net, len }, IpAddr::V4(a)) => u32::from(a) & mask4(*len) == *net,
            (Cidr::V6 { net, len }, IpAddr::V6(a)) => u128::from(a) & mask6(*len) == *net,
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cidr::V4 { net, len } => write!(f, "{}/{len}", std::net::Ipv4Addr::from(net)),
            Cidr::V6 { net, len } => write!(f, "{}/{len}", std::net::Ipv6Addr::from(net)),
        }
    }
}

fn trusted(blocks: &[Cidr], ip: IpAddr) -> bool {
    blocks.iter().any(|c| c.contains(ip))
}

/// One X-Forwarded-For entry (already trimmed): an address, `[v6]`,
/// `[v6]:port` or `v4:port`.
pub fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !after.is_empty() && !valid_port(after.strip_prefix(':')?) {
            return None;
        }
        return addr.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let (addr, port) = text.split_once(':')?;
    if !valid_port(port) {
        return None;
    }
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The client address for a request that came from `peer` with these
/// X-Forwarded-For field values (in arrival order), trusting the hops in
/// `trusted_proxies` (see the module docs).
pub fn client_address<'a, I>(xff_values: I, peer: IpAddr, trusted_proxies: &[Cidr]) -> IpAddr
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    let mut last = canonical(peer);
    if !trusted(trusted_proxies, last) {
        return last;
    }
    let mut hops = 0;
    for value in xff_values.rev() {
        for entry in value.rsplit(|&b| b == b',') {
            let entry = trim(entry);
            if entry.is_empty() {
                continue;
            }
            hops += 1;
            if hops > MAX_HOPS {
                return last;
            }
            let Some(ip) = parse_entry(entry) else {
                return last;
            };
            let ip = canonical(ip);
            if !trusted(trusted_proxies, ip) {
                return ip;
            }
            last = ip;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn blocks(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|b| Cidr::parse(b).unwrap()).collect()
    }

    fn client(values: &[&str], peer: &str, trust: &[&str]) -> IpAddr {
        let b = blocks(trust);
        client_address(values.iter().map(|v| v.as_bytes()), ip(peer), &b)
    }

    const LB: &[&str] = &["10.0.0.0/8", "2001:db8:ffff::/48"];

    #[test]
    fn untrusted_peer_is_the_client() {
        assert_eq!(client(&["1.1.1.1"], "192.0.2.9", LB), ip("192.0.2.9"));
        assert_eq!(client(&[], "192.0.2.9", &[]), ip("192.0.2.9"));
        // No trusted list: XFF is never believed.
        assert_eq!(client(&["1.1.1.1"], "10.0.0.1", &[]), ip("10.0.0.1"));
    }

    #[test]
    fn rightmost_untrusted_entry_is_the_client() {
        assert_eq!(client(&["203.0.113.5"], "10.0.0.1", LB), ip("203.0.113.5"));
        // Spoofed leftmost entries are ignored.
        assert_eq!(
            client(&["6.6.6.6, 7.7.7.7, 203.0.113.5, 10.1.1.1"], "10.0.0.1", LB),
            ip("203.0.113.5")
        );
        // Across several header fields, in order.
        assert_eq!(
            client(
                &["6.6.6.6", "203.0.113.5,10.2.2.2", "10.1.1.1"],
                "10.0.0.1",
                LB
            ),
            ip("203.0.113.5")
        );
        // A spoofed "trusted" address left of the real client changes nothing.
        assert_eq!(
            client(&["10.9.9.9, 203.0.113.5"], "10.0.0.1", LB),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn all_trusted_gives_the_leftmost() {
        assert_eq!(
            client(&["10.3.3.3, 10.2.2.2"], "10.0.0.1", LB),
            ip("10.3.3.3")
        );
        assert_eq!(client(&[], "10.0.0.1", LB), ip("10.0.0.1"));
        assert_eq!(client(&[" , ,"], "10.0.0.1", LB), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        assert_eq!(
            client(&["2001:db8:1::5, 2001:db8:ffff::2"], "2001:db8:ffff::1", LB),
            ip("2001:db8:1::5")
        );
        assert_eq!(
            client(&["[2001:db8:1::5]:443"], "::ffff:10.0.0.1", LB),
            ip("2001:db8:1::5")
        );
        // A mapped peer and mapped entries are treated as IPv4.
        assert_eq!(
            client(
                &["::ffff:203.0.113.5, ::ffff:10.1.1.1"],
                "::ffff:10.0.0.1",
                LB
            ),
            ip("203.0.113.5")
        );
        let mapped = blocks(&["::ffff:10.0.0.0/104"]);
        assert_eq!(mapped, blocks(&["10.0.0.0/8"]));
    }

    #[test]
    fn malformed_entries_stop_at_the_last_trusted_hop() {
        for bad in [
            "unknown",
            "_hidden",
            "1.2.3",
            "1.2.3.4.5",
            "[::1",
            "::1]:1",
            "1.2.3.4:99999",
            "01.2.3.4",
            "1.2.3.4:",
            "2001:db8::1:80x",
        ] {
            assert_eq!(
                client(&[&format!("203.0.113.5, {bad}, 10.1.1.1")], "10.0.0.1", LB),
                ip("10.1.1.1"),
                "{bad}"
            );
        }
        assert_eq!(client(&["garbage"], "10.0.0.1", LB), ip("10.0.0.1"));
        // Not UTF-8.
        let b = blocks(LB);
        let v: [&[u8]; 1] = [b"\xff\xfe"];
        assert_eq!(
            client_address(v.into_iter(), ip("10.0.0.1"), &b),
            ip("10.0.0.1")
        );
        // Ports are allowed where a load balancer writes them.
        assert_eq!(
            client(&["203.0.113.5:1234"], "10.0.0.1", LB),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn long_chains_are_bounded() {
        let chain = vec!["10.1.1.1"; MAX_HOPS + 5].join(",");
        let with_client = format!("203.0.113.5,{chain}");
        assert_eq!(client(&[&with_client], "10.0.0.1", LB), ip("10.1.1.1"));
    }

    #[test]
    fn cidr_parse_and_contains() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::a00:1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(!Cidr::parse("::/0").unwrap().contains(ip("1.2.3.4")));
        assert!(Cidr::parse("192.0.2.7").unwrap().contains(ip("192.0.2.7")));
        assert_eq!(
            Cidr::parse("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "nope",
            "::/129",
            "10.0.0.0/",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
