//! [`Cidr`] blocks and an [`IpAcl`]: allow and deny lists of them.
//!
//! # Semantics (as nginx's `allow` / `deny` with the deny list first)
//! - An address in a `deny` block is denied, whatever `allow` says.
//! - When `allow` is not empty, an address in none of its blocks is denied.
//! - Otherwise the address is allowed.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, as a dual-stack socket
//! reports IPv4 peers) are matched as the IPv4 address, and rules written in
//! that form (`::ffff:10.0.0.0/104`) are stored as IPv4 rules, so either
//! spelling matches either kind of client. Other IPv6 rules never match an
//! IPv4 client, nor IPv4 rules an IPv6 one.
//!
//! # Performance
//! A check is a linear scan of masked compares on `u32` / `u128` (lists
//! are short, written by hand); no allocation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

impl Cidr {
    /// Parse `addr` or `addr/len`. Host bits after the prefix must be zero
    /// (`10.0.0.1/8` is refused: it usually hides a typo).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let t = text.trim();
        let (addr, len) = match t.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (t, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!("{text:?} is not an address or block: expected e.g. \"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\" or \"::1\"")
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
        Ok(masked.v4_if_mapped())
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

    /// `::ffff:0:0/96` and longer → the IPv4 block.
    fn v4_if_mapped(self) -> Cidr {
        match self {
            Cidr::V6 { net, len } if len >= 96 && (net >> 32) == 0xffff => Cidr::V4 {
                net: net as u32,
                len: len - 96,
            },
            c => c,
        }
    }

    /// Whether `ip` is in this block (`ip` already [`canonical`]).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Cidr::V4 { net, len }, IpAddr::V4(a)) => u32::from(a) & mask4(*len) == *net,
            (Cidr::V6 { net, len }, IpAddr::V6(a)) => u128::from(a) & mask6(*len) == *net,
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cidr::V4 { net, len } => write!(f, "{}/{len}", Ipv4Addr::from(net)),
            Cidr::V6 { net, len } => write!(f, "{}/{len}", Ipv6Addr::from(net)),
        }
    }
}

/// Compiled allow and deny lists. See the module docs for the semantics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAcl {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

impl IpAcl {
    /// Whether a client at `ip` may go on.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.deny.iter().any(|c| c.contains(ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip))
    }
}
