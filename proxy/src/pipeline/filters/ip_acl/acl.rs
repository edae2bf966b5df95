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

use std::net::IpAddr;

/// One block parser and matcher for the whole proxy: the codec crate's,
/// shared with `trusted_proxies` (the http crate cannot see this one).
pub use crate::http::forwarded::{canonical, Cidr};

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
