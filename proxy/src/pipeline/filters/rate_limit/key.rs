//! The key spec of a limiter: what makes two requests "the same client".
//!
//! `key` is one part or a list of parts; the request's key is all of them
//! together:
//!
//! | part | value |
//! |------|-------|
//! | `client_ip` | the client's address (IPv4-mapped IPv6 as IPv4) |
//! | `client_ip/24` | its IPv4 `/24` block; an IPv6 client's `/64` |
//! | `client_ip/16/48` | IPv4 `/16`, IPv6 `/48` (any lengths, 0–32 and 0–128) |
//! | `header:NAME` | the first value of request field `NAME` |
//! | `var:NAME` or `$var.NAME` | the per-request variable `NAME` (`api_key_id`, `sub`, …) |
//! | `route` | the route's name: one bucket for the route |
//!
//! A missing header or unset variable is an empty value: every request
//! without it shares one bucket (per the other parts).

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use crate::pipeline::filters::context::RequestCx;
use crate::pipeline::filters::ip_acl::acl::canonical;

/// One part of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client address, masked to these prefix lengths.
    ClientIp {
        v4: u8,
        v6: u8,
    },
    /// Lower-cased field name.
    Header(Box<[u8]>),
    Var(Box<str>),
    Route,
}

/// A parsed key spec (at least one part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub parts: Box<[KeyPart]>,
}

impl KeyPart {
    /// Parse one part as written in `key`.
    pub fn parse(text: &str) -> Result<KeyPart, String> {
        let hint = "expected client_ip, client_ip/24, client_ip/24/64, header:NAME, var:NAME ($var.NAME) or route";
        let t = text.trim();
        if t == "route" {
            return Ok(KeyPart::Route);
        }
        if let Some(rest) = t.strip_prefix("client_ip") {
            if rest.is_empty() {
                return Ok(KeyPart::ClientIp { v4: 32, v6: 128 });
            }
            let mut lens = rest.strip_prefix('/').unwrap_or("!").split('/');
            let len = |s: Option<&str>, max: u8| -> Result<Option<u8>, String> {
                match s {
                    None => Ok(None),
                    Some(s) => match s.parse::<u8>() {
                        Ok(n) if n <= max && !s.starts_with('+') => Ok(Some(n)),
                        _ => Err(format!(
                            "{text:?}: a prefix length must be 0..={max} ({hint})"
                        )),
                    },
                }
            };
            let v4 = len(lens.next(), 32)?;
            let v6 = len(lens.next(), 128)?;
            if lens.next().is_some() {
                return Err(format!("{text:?}: at most two prefix lengths ({hint})"));
            }
            let v4 = v4.unwrap_or(32);
            // One length: the IPv6 block that plays the same role, a site
            // (/64) for a shorter IPv4 prefix, the address for /32.
            let v6 = v6.unwrap_or(if v4 == 32 { 128 } else { 64 });
            return Ok(KeyPart::ClientIp { v4, v6 });
        }
        if let Some(name) = t.strip_prefix("header:") {
            if !crate::http::edits::is_token(name.as_bytes()) {
                return Err(format!("{text:?}: {name:?} is not a valid header name"));
            }
            return Ok(KeyPart::Header(
                name.to_ascii_lowercase().into_bytes().into(),
            ));
        }
        if let Some(name) = t.strip_prefix("var:").or_else(|| t.strip_prefix("$var.")) {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(format!(
                    "{text:?}: {name:?} is not a variable name (letters, digits, `_`, `-`)"
                ));
            }
            return Ok(KeyPart::Var(name.into()));
        }
        Err(format!("unknown key part {text:?}: {hint}"))
    }

    /// The part as it is written canonically (registry identity, `/config`).
    pub fn canonical(&self) -> String {
        match self {
            KeyPart::ClientIp { v4: 32, v6: 128 } => "client_ip".into(),
            KeyPart::ClientIp { v4, v6 } => format!("client_ip/{v4}/{v6}"),
            KeyPart::Header(n) => format!("header:{}", String::from_utf8_lossy(n)),
            KeyPart::Var(n) => format!("var:{n}"),
            KeyPart::Route => "route".into(),
        }
    }

    fn hash_into(&self, cx: &RequestCx<'_>, h: &mut impl Hasher) {
        match self {
            KeyPart::ClientIp { v4, v6 } => match group(cx.client.ip(), *v4, *v6) {
                Group::V4(a) => {
                    h.write_u8(4);
                    h.write_u32(a);
                }
                Group::V6(a) => {
                    h.write_u8(6);
                    h.write_u128(a);
                }
            },
            KeyPart::Header(n) => {
                let v = cx.header(n).unwrap_or(b"");
                h.write_u8(b'h');
                h.write_usize(v.len());
                h.write(v);
            }
            KeyPart::Var(n) => {
                let v = cx.state.vars.get(n).unwrap_or(b"");
                h.write_u8(b'v');
                h.write_usize(v.len());
                h.write(v);
            }
            KeyPart::Route => {
                h.write_u8(b'r');
                h.write_usize(cx.route.len());
                h.write(cx.route.as_bytes());
            }
        }
    }
}

/// A client address reduced to its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    V4(u32),
    V6(u128),
}

/// `ip` masked to `/v4` (IPv4, and IPv4-mapped IPv6) or `/v6` (IPv6).
pub fn group(ip: IpAddr, v4: u8, v6: u8) -> Group {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            Group::V4(u32::from(a) & mask)
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            Group::V6(u128::from(a) & mask)
        }
    }
}

impl KeySpec {
    /// The canonical spelling: parts joined by `+` (registry identity).
    pub fn canonical(&self) -> String {
        let parts: Vec<String> = self.parts.iter().map(KeyPart::canonical).collect();
        parts.join("+")
    }

    /// The request's key, hashed with the table's `hasher`.
    #[inline]
    pub fn hash(&self, cx: &RequestCx<'_>, hasher: &impl BuildHasher) -> u64 {
        let mut h = hasher.build_hasher();
        for p in self.parts.iter() {
            p.hash_into(cx, &mut h);
        }
        h.finish()
    }
}
