//! The PROXY protocol (HAProxy's `proxy-protocol.txt`, versions 1 and 2):
//! the header a load balancer puts in front of a TCP stream to say whose
//! connection it is, parsed strictly, and written for upstreams.
//!
//! # Architecture
//! [`parse_proxy_header`] looks at the bytes received so far, like
//! `parse_request_head`: `Ok(None)` asks for more, `Ok(Some((header,
//! consumed)))` is a complete header of `consumed` bytes (whatever follows is
//! the client's stream: an HTTP request or a TLS ClientHello), `Err` is a
//! malformed header. It never looks past the header's end, so a caller may
//! feed it peeked bytes and then read exactly `consumed` of them.
//!
//! An incomplete header is never answered `Ok(None)` when the bytes seen
//! already rule out every valid header: a wrong signature, a v1 line longer
//! than 107 bytes or a v2 length above [`V2_MAX_LEN`] fail at once. While the
//! answer is `Ok(None)`, every byte seen belongs to the header (the header is
//! longer than the input), so they may be consumed from the socket.
//!
//! # What is accepted
//! - v1: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (and `TCP6`), single
//!   spaces, dotted-quad IPv4 without leading zeros (`Ipv4Addr::from_str`),
//!   IPv6 in its text form (no zone, no brackets), ports 0..=65535 in decimal
//!   without sign or leading zeros, CRLF required, at most 107 bytes.
//!   `PROXY UNKNOWN` (with anything up to the CRLF) carries no address.
//! - v2: the 12-byte signature, version 2, command LOCAL (no address: the
//!   caller uses the TCP peer) or PROXY; family/protocol one of the defined
//!   values; for PROXY, `STREAM` over INET/INET6 carries the addresses,
//!   UNIX and UNSPEC carry none, `DGRAM` is refused (a datagram source on a
//!   stream listener). The length must hold the address block, the TLVs
//!   after it must tile the rest exactly (their contents are skipped, CRC32C
//!   not checked), and the whole header is at most [`V2_MAX_LEN`] + 16 bytes.
//!
//! # Errors
//! Every rejection is a [`ProxyHeaderError`] with a static reason; the proxy
//! closes the connection without answering (the peer is not an HTTP client
//! it can talk to).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte signature that starts a v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included (`proxy-protocol.txt` §2.1).
pub const V1_MAX_LEN: usize = 107;
/// Largest v2 length field accepted: the IPv6 block (36) plus TLVs; the
/// whole header is then at most 536 bytes.
pub const V2_MAX_LEN: usize = 520;
/// Bytes the peek of a header needs at most (the longest v2 header).
pub const MAX_HEADER_LEN: usize = 16 + V2_MAX_LEN;

const V1_PREFIX: &[u8] = b"PROXY ";

/// What a PROXY header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyHeader {
    /// The original client; `None` for `UNKNOWN`, `LOCAL`, UNIX and UNSPEC
    /// (use the TCP peer).
    pub source: Option<SocketAddr>,
    /// The address the client connected to (same cases as `source`).
    pub destination: Option<SocketAddr>,
}

/// A malformed PROXY header (the reason is for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeaderError(pub &'static str);

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed PROXY protocol header: {}", self.0)
    }
}

impl std::error::Error for ProxyHeaderError {}

type Parsed = Result<Option<(ProxyHeader, usize)>, ProxyHeaderError>;

fn err<T>(why: &'static str) -> Result<T, ProxyHeaderError> {
    Err(ProxyHeaderError(why))
}

/// Parse a PROXY header (v1 or v2) at the start of `buf`: `Ok(None)` = need
/// more bytes, `Ok(Some((header, consumed)))`, `Err` = malformed.
pub fn parse_proxy_header(buf: &[u8]) -> Parsed {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match first {
        b'\r' => parse_v2(buf),
        b'P' => parse_v1(buf),
        _ => err("neither a v1 nor a v2 signature"),
    }
}

/// `buf` is a prefix of `want`, or starts with all of it.
fn prefix_ok(buf: &[u8], want: &[u8]) -> bool {
    let n = buf.len().min(want.len());
    buf[..n] == want[..n]
}

fn parse_v1(buf: &[u8]) -> Parsed {
    if !prefix_ok(buf, V1_PREFIX) {
        return err("bad v1 signature");
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    // The first CR or LF ends the line (a bare LF is refused).
    let Some(end) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        if buf.len() >= V1_MAX_LEN {
            return err("v1 line longer than 107 bytes");
        }
        return Ok(None);
    };
    if window[end] == b'\n' {
        return err("v1 line ends in LF without CR");
    }
    if end + 1 >= V1_MAX_LEN {
        // The LF would be byte 108.
        return err("v1 line longer than 107 bytes");
    }
    match buf.get(end + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return err("v1 CR not followed by LF"),
    }
    let line = &buf[V1_PREFIX.len()..end];
    let header = parse_v1_fields(line)?;
    Ok(Some((header, end + 2)))
}

fn parse_v1_fields(line: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    // UNKNOWN: anything up to the CRLF is ignored (§2.1).
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return Ok(ProxyHeader::default());
    }
    let mut parts = line.split(|&b| b == b' ');
    let proto = parts.next().unwrap_or_default();
    let v6 = match proto {
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return err("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
    };
    let mut next = |what: &'static str| match parts.next() {
        Some(p) if !p.is_empty() => Ok(p),
        // An empty field is two spaces in a row, or a trailing space.
        Some(_) => err("v1 fields must be separated by single spaces"),
        None => err(what),
    };
    let src = next("v1 source address missing")?;
    let dst = next("v1 destination address missing")?;
    let sport = next("v1 source port missing")?;
    let dport = next("v1 destination port missing")?;
    if parts.next().is_some() {
        return err("v1 line has extra fields");
    }
    let src = v1_ip(src, v6)?;
    let dst = v1_ip(dst, v6)?;
    let sport = v1_port(sport)?;
    let dport = v1_port(dport)?;
    Ok(ProxyHeader {
        source: Some(SocketAddr::new(src, sport)),
        destination: Some(SocketAddr::new(dst, dport)),
    })
}

fn v1_ip(text: &[u8], v6: bool) -> Result<IpAddr, ProxyHeaderError> {
    let Ok(text) = std::str::from_utf8(text) else {
        return err("v1 address is not ASCII");
    };
    if v6 {
        match text.parse::<Ipv6Addr>() {
            Ok(a) => Ok(IpAddr::V6(a)),
            Err(_) => err("v1 TCP6 address is not an IPv6 address"),
        }
    } else {
        // `Ipv4Addr::from_str` takes exactly four decimal octets without
        // leading zeros (no octal, no shorthand forms).
        match text.parse::<Ipv4Addr>() {
            Ok(a) => Ok(IpAddr::V4(a)),
            Err(_) => err("v1 TCP4 address is not a dotted-quad IPv4 address"),
        }
    }
}

fn v1_port(text: &[u8]) -> Result<u16, ProxyHeaderError> {
    if text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return err("v1 port is not a decimal number");
    }
    if text.len() > 1 && text[0] == b'0' {
        return err("v1 port has a leading zero");
    }
    let n = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).or(err("v1 port above 65535"))
}

fn parse_v2(buf: &[u8]) -> Parsed {
    if !prefix_ok(buf, &V2_SIGNATURE) {
        return err("bad v2 signature");
    }
    if buf.len() < 16 {
        // Check what is already there of the fixed part.
        if let Some(&vc) = buf.get(12) {
            let local = v2_command(vc)?;
            if let Some(&fp) = buf.get(13) {
                v2_family(local, fp)?;
            }
        }
        if let Some(&hi) = buf.get(14) {
            if usize::from(hi) << 8 > V2_MAX_LEN {
                return err("v2 length above 520");
            }
        }
        return Ok(None);
    }
    let local = v2_command(buf[12])?;
    let family = v2_family(local, buf[13])?;
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX_LEN {
        return err("v2 length above 520");
    }
    let addr_len = match family {
        Family::Unspec => 0,
        Family::Inet => 12,
        Family::Inet6 => 36,
        Family::Unix => 216,
    };
    if !local && len < addr_len {
        return err("v2 length shorter than the address block");
    }
    let total = 16 + len;
    let Some(body) = buf.get(16..total) else {
        return Ok(None);
    };
    if local {
        // LOCAL: the block (family included) is ignored (§2.2).
        return Ok(Some((ProxyHeader::default(), total)));
    }
    let header = match family {
        Family::Unspec => {
            // No address; the rest is not interpreted.
            return Ok(Some((ProxyHeader::default(), total)));
        }
        Family::Inet => {
            let a = |i: usize| Ipv4Addr::new(body[i], body[i + 1], body[i + 2], body[i + 3]);
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            ProxyHeader {
                source: Some(SocketAddr::new(IpAddr::V4(a(0)), port(8))),
                destination: Some(SocketAddr::new(IpAddr::V4(a(4)), port(10))),
            }
        }
        Family::Inet6 => {
            let a = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&body[i..i + 16]);
                Ipv6Addr::from(o)
            };
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            ProxyHeader {
                source: Some(SocketAddr::new(IpAddr::V6(a(0)), port(32))),
                destination: Some(SocketAddr::new(IpAddr::V6(a(16)), port(34))),
            }
        }
        // AF_UNIX: no address a TCP peer could have.
        Family::Unix => ProxyHeader::default(),
    };
    check_tlvs(&body[addr_len..])?;
    Ok(Some((header, total)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Unspec,
    Inet,
    Inet6,
    Unix,
}

/// Version 2 and the command: `true` for LOCAL, `false` for PROXY.
fn v2_command(vc: u8) -> Result<bool, ProxyHeaderError> {
    if vc >> 4 != 2 {
        return err("v2 version is not 2");
    }
    match vc & 0x0f {
        0 => Ok(true),
        1 => Ok(false),
        _ => err("v2 command is neither LOCAL nor PROXY"),
    }
}

/// The family/protocol byte: one of the defined values; a PROXY command
/// must carry a stream (or nothing).
fn v2_family(local: bool, fp: u8) -> Result<Family, ProxyHeaderError> {
    let family = match fp >> 4 {
        0 => Family::Unspec,
        1 => Family::Inet,
        2 => Family::Inet6,
        3 => Family::Unix,
        _ => return err("v2 address family unknown"),
    };
    let proto = fp & 0x0f;
    match (family, proto) {
        (Family::Unspec, 0) => {}
        (Family::Unspec, _) => return err("v2 UNSPEC family with a transport protocol"),
        (_, 1) => {}
        (_, 2) if local => {}
        (_, 2) => return err("v2 DGRAM source on a stream listener"),
        (_, _) => return err("v2 transport protocol unknown"),
    }
    Ok(family)
}

/// The TLVs after the address block: `type, length (u16 BE), value`, which
/// must cover the rest exactly.
fn check_tlvs(mut rest: &[u8]) -> Result<(), ProxyHeaderError> {
    while !rest.is_empty() {
        if rest.len() < 3 {
            return err("v2 truncated TLV");
        }
        let n = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let Some(after) = rest.get(3 + n..) else {
            return err("v2 TLV longer than the header");
        };
        rest = after;
    }
    Ok(())
}

/// The pair as one family: both IPv4 (IPv4-mapped IPv6 counts as IPv4), or
/// both IPv6 (an IPv4 address is written IPv4-mapped).
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canon = |a: SocketAddr| match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    };
    let (s, d) = (canon(src), canon(dst));
    if s.is_ipv4() == d.is_ipv4() {
        return (s, d);
    }
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (v6(s), v6(d))
}

/// Append a v1 header for a connection from `src` to `dst`.
pub fn write_proxy_v1(out: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr) {
    use std::io::Write as _;
    let (s, d) = same_family(src, dst);
    let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "PROXY {proto} {} {} {} {}\r\n",
        s.ip(),
        d.ip(),
        s.port(),
        d.port()
    );
}

/// Append a v2 header (command PROXY, TCP over IPv4 or IPv6, no TLVs) for a
/// connection from `src` to `dst`.
pub fn write_proxy_v2(out: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr) {
    let (s, d) = same_family(src, dst);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21);
    match (s.ip(), d.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(&b.octets());
        }
        (a, b) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V6(v6) => v6,
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(a).octets());
            out.extend_from_slice(&v6(b).octets());
        }
    }
    out.extend_from_slice(&s.port().to_be_bytes());
    out.extend_from_slice(&d.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Parse `input` whole, then byte by byte (every proper prefix must ask
    /// for more) and in a few other splits: all must agree.
    fn parse_all_ways(input: &[u8]) -> Parsed {
        let whole = parse_proxy_header(input);
        if let Ok(Some((_, n))) = whole {
            for cut in 0..n {
                assert_eq!(
                    parse_proxy_header(&input[..cut]),
                    Ok(None),
                    "prefix of {cut} bytes of {input:?}"
                );
            }
        }
        whole
    }

    fn v2(vc: u8, fp: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(vc);
        v.push(fp);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn inet_body() -> Vec<u8> {
        let mut b = vec![192, 0, 2, 1, 10, 0, 0, 1];
        b.extend_from_slice(&56324u16.to_be_bytes());
        b.extend_from_slice(&443u16.to_be_bytes());
        b
    }

    #[test]
    fn v1_tcp4_and_tcp6() {
        let input = b"PROXY TCP4 192.0.2.1 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let (h, n) = parse_all_ways(input).unwrap().unwrap();
        assert_eq!(n, 41);
        assert_eq!(&input[n..n + 3], b"GET");
        assert_eq!(h.source, Some(sa("192.0.2.1:56324")));
        assert_eq!(h.destination, Some(sa("10.0.0.1:443")));

        let input = b"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
        let (h, n) = parse_all_ways(input).unwrap().unwrap();
        assert_eq!(n, input.len());
        assert_eq!(h.source, Some(sa("[2001:db8::1]:0")));
        assert_eq!(h.destination, Some(sa("[::1]:65535")));

        let input = b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n";
        let (h, _) = parse_all_ways(input).unwrap().unwrap();
        assert_eq!(h.source, Some(sa("[::ffff:192.0.2.1]:1")));
    }

    #[test]
    fn v1_unknown_carries_no_address() {
        for input in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
            b"PROXY UNKNOWN anything at all\r\n",
        ] {
            let (h, n) = parse_all_ways(input).unwrap().unwrap();
            assert_eq!(n, input.len());
            assert_eq!(h, ProxyHeader::default());
        }
    }

    #[test]
    fn v1_longest_line_is_accepted_and_one_more_byte_is_not() {
        // The longest TCP6 line of the spec: 104 bytes + CRLF... build one
        // of exactly 107 bytes with UNKNOWN padding.
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(105, b'x');
        line.extend_from_slice(b"\r\n");
        assert_eq!(line.len(), 107);
        assert!(parse_all_ways(&line).unwrap().is_some());
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(106, b'x');
        long.extend_from_slice(b"\r\n");
        assert!(parse_proxy_header(&long).is_err());
        // Without any CR, 107 bytes is already too long.
        assert!(parse_proxy_header(&long[..107]).is_err());
        assert_eq!(parse_proxy_header(&long[..106]), Ok(None));
        // The spec's worst case parses.
        let max = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(max.len(), 104);
        assert!(parse_all_ways(max).unwrap().is_some());
    }

    #[test]
    fn v1_malformed() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP4 192.0.2.1 10.0.0.1 56324 443\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 56324 443\rX",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 56324 443 \r\n",
            b"PROXY TCP4 192.0.2.1  10.0.0.1 56324 443\r\n",
            b"PROXY  TCP4 192.0.2.1 10.0.0.1 56324 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 56324\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 56324 443 1\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 +5632 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 -1 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 65536 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 99999 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 0443 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 123456 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 0x10 443\r\n",
            b"PROXY TCP4 192.0.2.01 10.0.0.1 1 443\r\n",
            b"PROXY TCP4 192.0.2 10.0.0.1 1 443\r\n",
            b"PROXY TCP4 192.0.2.256 10.0.0.1 1 443\r\n",
            b"PROXY TCP4 ::1 10.0.0.1 1 443\r\n",
            b"PROXY TCP6 192.0.2.1 ::1 1 443\r\n",
            b"PROXY TCP6 [::1] ::1 1 443\r\n",
            b"PROXY TCP6 fe80::1%eth0 ::1 1 443\r\n",
            b"PROXY TCP5 192.0.2.1 10.0.0.1 1 443\r\n",
            b"PROXY tcp4 192.0.2.1 10.0.0.1 1 443\r\n",
            b"PROXY UDP4 192.0.2.1 10.0.0.1 1 443\r\n",
            b"PROXY\tTCP4 192.0.2.1 10.0.0.1 1 443\r\n",
            b"PROXY TCP4\t192.0.2.1 10.0.0.1 1 443\r\n",
            b"PROXY \r\n",
            b"PROXY UNKNOWNX\r\n",
            b"proxy TCP4 192.0.2.1 10.0.0.1 1 443\r\n",
            b"PROXI TCP4 192.0.2.1 10.0.0.1 1 443\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 \xff 443\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01",
        ];
        for input in bad {
            assert!(
                parse_proxy_header(input).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(input)
            );
        }
        // A wrong signature fails on its first wrong byte.
        assert!(parse_proxy_header(b"PROX ").is_err());
        assert!(parse_proxy_header(b"G").is_err());
        assert_eq!(parse_proxy_header(b"PROX"), Ok(None));
        assert_eq!(parse_proxy_header(b""), Ok(None));
    }

    #[test]
    fn v2_inet_and_inet6() {
        let mut input = v2(0x21, 0x11, &inet_body());
        input.extend_from_slice(b"GET /");
        let (h, n) = parse_all_ways(&input).unwrap().unwrap();
        assert_eq!(n, 28);
        assert_eq!(h.source, Some(sa("192.0.2.1:56324")));
        assert_eq!(h.destination, Some(sa("10.0.0.1:443")));

        let mut body = Vec::new();
        body.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        body.extend_from_slice(&[0, 80, 1, 187]);
        let input = v2(0x21, 0x21, &body);
        let (h, n) = parse_all_ways(&input).unwrap().unwrap();
        assert_eq!(n, 52);
        assert_eq!(h.source, Some(sa("[2001:db8::7]:80")));
        assert_eq!(h.destination, Some(sa("[::1]:443")));
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut body = inet_body();
        body.extend_from_slice(&[0x04, 0, 3, 1, 2, 3]); // NOOP, 3 bytes
        body.extend_from_slice(&[0x02, 0, 0]); // AUTHORITY, empty
        let input = v2(0x21, 0x11, &body);
        let (h, n) = parse_all_ways(&input).unwrap().unwrap();
        assert_eq!(n, input.len());
        assert_eq!(h.source, Some(sa("192.0.2.1:56324")));
        // The largest header accepted.
        let mut body = inet_body();
        let pad = V2_MAX_LEN - body.len() - 3;
        body.extend_from_slice(&[0x04, (pad >> 8) as u8, pad as u8]);
        body.resize(V2_MAX_LEN, 0);
        let input = v2(0x21, 0x11, &body);
        assert_eq!(input.len(), MAX_HEADER_LEN);
        assert!(parse_all_ways(&input).unwrap().is_some());
    }

    #[test]
    fn v2_local_unspec_and_unix_carry_no_address() {
        for (vc, fp, body) in [
            (0x20, 0x00, vec![]),
            (0x20, 0x11, inet_body()),
            (0x20, 0x12, vec![1, 2, 3]),
            (0x21, 0x00, vec![]),
            (0x21, 0x00, vec![9; 7]),
            (0x21, 0x31, vec![0; 216]),
        ] {
            let input = v2(vc, fp, &body);
            let (h, n) = parse_all_ways(&input).unwrap().unwrap();
            assert_eq!(n, input.len());
            assert_eq!(h, ProxyHeader::default(), "{vc:#x} {fp:#x}");
        }
    }

    #[test]
    fn v2_malformed() {
        let mut too_long = v2(0x21, 0x11, &inet_body());
        too_long[14..16].copy_from_slice(&521u16.to_be_bytes());
        let mut bad_tlv = inet_body();
        bad_tlv.extend_from_slice(&[0x04, 0, 9, 1]);
        let mut short_tlv = inet_body();
        short_tlv.extend_from_slice(&[0x04, 0]);
        let mut sig = v2(0x21, 0x11, &inet_body());
        sig[11] = b'X';
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("signature", sig),
            ("version 1", v2(0x11, 0x11, &inet_body())),
            ("version 3", v2(0x31, 0x11, &inet_body())),
            ("command 2", v2(0x22, 0x11, &inet_body())),
            ("command f", v2(0x2f, 0x11, &inet_body())),
            ("family 4", v2(0x21, 0x41, &inet_body())),
            ("protocol 3", v2(0x21, 0x13, &inet_body())),
            ("dgram", v2(0x21, 0x12, &inet_body())),
            ("unspec+stream", v2(0x21, 0x01, &[])),
            ("inet short", v2(0x21, 0x11, &inet_body()[..11])),
            ("inet6 with inet body", v2(0x21, 0x21, &inet_body())),
            ("unix short", v2(0x21, 0x31, &[0; 215])),
            ("length 521", too_long),
            ("tlv overruns", v2(0x21, 0x11, &bad_tlv)),
            ("tlv truncated", v2(0x21, 0x11, &short_tlv)),
        ];
        for (what, input) in &cases {
            assert!(parse_proxy_header(input).is_err(), "{what}: accepted");
        }
        // Decided as soon as the deciding byte is there.
        let sig = V2_SIGNATURE;
        assert_eq!(parse_proxy_header(&sig[..5]), Ok(None));
        assert!(parse_proxy_header(b"\r\n\r\n\0\r\nQUIX").is_err());
        assert!(parse_proxy_header(&[&sig[..], &[0x13]].concat()).is_err());
        assert!(parse_proxy_header(&[&sig[..], &[0x21, 0x51]].concat()).is_err());
        assert!(parse_proxy_header(&[&sig[..], &[0x21, 0x11, 0x03]].concat()).is_err());
        assert_eq!(
            parse_proxy_header(&[&sig[..], &[0x21, 0x11, 0x02]].concat()),
            Ok(None)
        );
    }

    #[test]
    fn every_prefix_of_a_valid_header_asks_for_more() {
        let mut v2_tlv = inet_body();
        v2_tlv.extend_from_slice(&[0x04, 0, 2, 0, 0]);
        for input in [
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            v2(0x21, 0x11, &v2_tlv),
            v2(0x20, 0x00, &[]),
        ] {
            for cut in 0..input.len() {
                assert_eq!(parse_proxy_header(&input[..cut]), Ok(None), "cut {cut}");
            }
            assert!(matches!(
                parse_proxy_header(&input),
                Ok(Some((_, n))) if n == input.len()
            ));
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let pairs = [
            (sa("192.0.2.1:56324"), sa("10.0.0.1:443")),
            (sa("[2001:db8::1]:1"), sa("[::1]:65535")),
            (sa("0.0.0.0:0"), sa("255.255.255.255:65535")),
        ];
        for (s, d) in pairs {
            for v in [1, 2] {
                let mut out = Vec::new();
                if v == 1 {
                    write_proxy_v1(&mut out, s, d);
                } else {
                    write_proxy_v2(&mut out, s, d);
                }
                let (h, n) = parse_all_ways(&out).unwrap().unwrap();
                assert_eq!(n, out.len());
                assert_eq!((h.source, h.destination), (Some(s), Some(d)), "v{v}");
            }
        }
        // Mixed families: IPv4-mapped is written as IPv4, a lone IPv4
        // next to IPv6 as IPv4-mapped IPv6.
        let mut out = Vec::new();
        write_proxy_v1(&mut out, sa("[::ffff:192.0.2.1]:5"), sa("10.0.0.1:80"));
        assert_eq!(out, b"PROXY TCP4 192.0.2.1 10.0.0.1 5 80\r\n");
        out.clear();
        write_proxy_v2(&mut out, sa("192.0.2.1:5"), sa("[::1]:80"));
        let (h, _) = parse_proxy_header(&out).unwrap().unwrap();
        assert_eq!(h.source, Some(sa("[::ffff:192.0.2.1]:5")));
        assert_eq!(h.destination, Some(sa("[::1]:80")));
    }
}
