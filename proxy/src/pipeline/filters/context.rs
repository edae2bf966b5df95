//! What a filter sees of a request ([`RequestCx`]) and of a response
//! ([`ResponseCx`]), and the per-request state filters leave for later
//! stages ([`FilterState`]: variables, header edits, a rewritten target).
//!
//! Header lookups read the connection buffer through the parsed spans: no
//! copy of the head. `FilterState` lives as long as the downstream
//! connection and is cleared per request, so a request that uses no filter
//! touches none of its storage and a request that does reuses it.

use std::net::SocketAddr;
use std::ops::Range;

use crate::http::{HeaderEdits, RequestHead, ResponseHead};

/// TLS facts of a downstream connection, captured once after the handshake.
#[derive(Debug, Clone, Default)]
pub struct TlsFacts {
    /// Server name the client asked for (SNI).
    pub sni: Option<String>,
    /// Protocol agreed by ALPN.
    pub alpn: Option<Vec<u8>>,
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: &'static str,
    /// The verified client certificate (mTLS listeners), if the client
    /// sent one.
    pub peer: Option<PeerIdentity>,
}

/// Who the client is, from its verified certificate.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity {
    /// The SPIFFE ID (the first `spiffe://` URI SAN), else the first DNS
    /// SAN; empty when the certificate has neither.
    pub id: String,
    /// The `X-Forwarded-Client-Cert` value sent upstream (Envoy's format:
    /// `Hash=<sha256 of the DER, hex>;URI=<uri>;DNS=<name>...`).
    pub xfcc: Box<[u8]>,
}

impl TlsFacts {
    /// What the handshake of `session` settled (called once per TLS
    /// connection).
    pub fn of(session: &rustls::ServerConnection) -> TlsFacts {
        TlsFacts {
            sni: session.server_name().map(str::to_owned),
            alpn: session.alpn_protocol().map(<[u8]>::to_vec),
            version: match session.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "",
            },
            peer: session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| PeerIdentity::of(leaf.as_ref())),
        }
    }
}

impl PeerIdentity {
    /// The identity and the XFCC value of a (verified) DER certificate.
    pub fn of(der: &[u8]) -> PeerIdentity {
        let sans = subject_alt_names(der);
        let uris: Vec<&str> = sans.iter().filter_map(|s| s.strip_prefix("URI:")).collect();
        let dns: Vec<&str> = sans.iter().filter_map(|s| s.strip_prefix("DNS:")).collect();
        // SPIFFE: exactly one URI SAN, a well-formed ID; else the first DNS
        // name (lowercased). An odd certificate gets no identity.
        let spiffe: Vec<&&str> = uris.iter().filter(|u| u.starts_with("spiffe://")).collect();
        let id = match spiffe.as_slice() {
            [one] if uris.len() == 1 => {
                if super::authz::valid_spiffe_id(one) {
                    (**one).to_owned()
                } else {
                    String::new()
                }
            }
            [] => dns
                .first()
                .map(|d| d.to_ascii_lowercase())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut xfcc = String::from("Hash=");
        for b in digest.as_ref() {
            xfcc.push_str(&format!("{b:02x}"));
        }
        // Values with `;`, `,` or `"` are quoted (Envoy's rule); SANs are
        // checked ASCII without controls by the parser already.
        let push = |xfcc: &mut String, key: &str, v: &str| {
            xfcc.push(';');
            xfcc.push_str(key);
            xfcc.push('=');
            if v.contains([';', ',', '"', '=']) {
                xfcc.push('"');
                xfcc.push_str(&v.replace('\\', "\\\\").replace('"', "\\\""));
                xfcc.push('"');
            } else {
                xfcc.push_str(v);
            }
        };
        for u in &uris {
            push(&mut xfcc, "URI", u);
        }
        for d in &dns {
            push(&mut xfcc, "DNS", d);
        }
        PeerIdentity {
            id,
            xfcc: xfcc.into_bytes().into_boxed_slice(),
        }
    }
}

/// The URI and DNS subject alternative names of a DER certificate, as
/// `URI:…` / `DNS:…` (empty when it cannot be parsed or has none).
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) if printable(u) => Some(format!("URI:{u}")),
            GeneralName::DNSName(d) if printable(d) => Some(format!("DNS:{d}")),
            _ => None,
        })
        .collect()
}

/// A SAN worth passing on: visible ASCII only (no spaces, controls or
/// header-breaking bytes).
fn printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Per-request variables (`$var.NAME`): set by a filter (an auth subject, an
/// API key id), read by later filters, header templates and the access log.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    entries: Vec<(Range<usize>, Range<usize>)>,
    arena: Vec<u8>,
}

impl Vars {
    pub fn clear(&mut self) {
        self.entries.clear();
        self.arena.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Set `name` to `value` (replacing an earlier value).
    pub fn set(&mut self, name: &str, value: &[u8]) {
        if let Some(i) = self
            .entries
            .iter()
            .position(|(n, _)| &self.arena[n.clone()] == name.as_bytes())
        {
            self.entries.remove(i);
        }
        let n0 = self.arena.len();
        self.arena.extend_from_slice(name.as_bytes());
        let v0 = self.arena.len();
        self.arena.extend_from_slice(value);
        self.entries.push((n0..v0, v0..self.arena.len()));
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| &self.arena[n.clone()] == name.as_bytes())
            .map(|(_, v)| &self.arena[v.clone()])
    }

    /// Every variable, in the order set.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (&self.arena[n.clone()], &self.arena[v.clone()]))
    }
}

/// What the filters of one request leave behind. One per downstream
/// connection, cleared per request.
#[derive(Debug, Default)]
pub struct FilterState {
    pub vars: Vars,
    /// Edits to the head sent upstream.
    pub request: HeaderEdits,
    /// Edits to the head sent downstream (upstream response or local reply).
    pub response: HeaderEdits,
    /// The request target to send upstream instead of the client's; valid
    /// when `target_set`.
    target: Vec<u8>,
    target_set: bool,
    /// Request facts kept for the response phase (copied only when a
    /// route's chain asks for them: `$host` / `$path` in a response template).
    pub host: Vec<u8>,
    pub path: Vec<u8>,
    /// `host` and `path` hold this request's facts (set by the first filter
    /// that needed them).
    pub request_line_kept: bool,
    /// The request id, kept for the response phase (when the route has
    /// filters).
    pub request_id: Vec<u8>,
    /// Slots this request holds (a `concurrency_limit` permit): given back
    /// when dropped, by the holder's response phase or at the latest by
    /// `clear()` (next request) or with the connection.
    pub permits: Vec<super::concurrency::Permit>,
    /// Response compression (`compress` filter): the coding the request
    /// accepted, then whether the response is compressed.
    pub compress: CompressState,
}

/// Where a request stands with the `compress` filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CompressState {
    /// Not compressed.
    #[default]
    Off,
    /// The request phase found a coding the client accepts.
    Accepted(super::compress::Plan),
    /// The response phase found the response eligible: `forward` compresses
    /// the body with this plan.
    Chosen(super::compress::Plan),
}

impl CompressState {
    /// The plan to compress the response body with, if any.
    #[inline]
    pub fn chosen(&self) -> Option<super::compress::Plan> {
        match self {
            CompressState::Chosen(p) => Some(*p),
            _ => None,
        }
    }
}

impl FilterState {
    pub fn clear(&mut self) {
        self.vars.clear();
        self.request.clear();
        self.response.clear();
        self.target.clear();
        self.target_set = false;
        self.host.clear();
        self.path.clear();
        self.request_line_kept = false;
        self.request_id.clear();
        self.permits.clear();
        self.compress = CompressState::Off;
    }

    /// The rewritten request target, if a filter rewrote it.
    pub fn target(&self) -> Option<&[u8]> {
        self.target_set.then_some(&self.target[..])
    }

    /// Replace the request target (path and query) sent upstream.
    pub fn set_target(&mut self, target: &[u8]) {
        self.target.clear();
        self.target.extend_from_slice(target);
        self.target_set = true;
    }

    /// Storage to build a new target in; call [`commit_target`] after.
    ///
    /// [`commit_target`]: FilterState::commit_target
    pub fn target_buf(&mut self) -> &mut Vec<u8> {
        self.target.clear();
        &mut self.target
    }

    pub fn commit_target(&mut self) {
        self.target_set = true;
    }
}

/// A request as the request phase of the filter chain sees it.
pub struct RequestCx<'a> {
    /// The connection buffer the head's spans point into.
    pub buf: &'a [u8],
    pub head: &'a RequestHead,
    /// The client's address (after PROXY protocol / trusted X-Forwarded-For
    /// once those exist: today the TCP peer).
    pub client: SocketAddr,
    /// Listener name.
    pub listener: &'a str,
    /// TLS facts, on a TLS listener.
    pub tls: Option<&'a TlsFacts>,
    /// Name of the matched route.
    pub route: &'a str,
    /// The request id (the client's X-Request-Id, else the one ringway adds).
    pub request_id: &'a [u8],
    pub state: &'a mut FilterState,
}

impl<'a> RequestCx<'a> {
    pub fn method(&self) -> &'a [u8] {
        self.head.method.get(self.buf)
    }

    /// The request target as the client sent it.
    pub fn original_target(&self) -> &'a [u8] {
        self.head.target.get(self.buf)
    }

    /// The path (no query) the client asked for; absolute-form targets give
    /// their path.
    pub fn path(&self) -> &'a [u8] {
        crate::pipeline::route::target_path(self.original_target())
    }

    /// The query string (after `?`, without it), if any.
    pub fn query(&self) -> Option<&'a [u8]> {
        let t = self.original_target();
        let q = memchr::memchr(b'?', t).map(|i| &t[i + 1..])?;
        Some(match memchr::memchr(b'#', q) {
            Some(j) => &q[..j],
            None => q,
        })
    }

    /// The Host header value, if any.
    pub fn host(&self) -> Option<&'a [u8]> {
        self.head.host.map(|h| h.get(self.buf))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        crate::http::head::field_value(&self.head.headers, self.buf, name)
    }

    /// Every value of header `name`, in order.
    pub fn headers(&self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.head
            .headers
            .iter()
            .filter(move |h| h.name.get(buf).eq_ignore_ascii_case(name))
            .map(move |h| h.value.get(buf))
    }

    /// The request carries no body, or all of it is already buffered: a
    /// local answer can keep the connection open.
    pub fn body_in_hand(&self) -> bool {
        body_in_hand(self.head, self.buf.len())
    }
}

/// Whether the whole body of `head` (parsed from a buffer holding
/// `buffered` bytes) is in the buffer.
pub fn body_in_hand(head: &RequestHead, buffered: usize) -> bool {
    match head.framing {
        crate::http::BodyFraming::None => true,
        crate::http::BodyFraming::Length(n) => (buffered - head.head_len) as u64 >= n,
        crate::http::BodyFraming::Chunked => false,
    }
}

/// The response as the response phase sees it: an upstream response, or a
/// local reply (no upstream head).
pub struct ResponseCx<'a> {
    pub status: u16,
    /// The upstream response head and the buffer its spans point into;
    /// `None` for a local reply.
    pub upstream: Option<(&'a [u8], &'a ResponseHead)>,
    pub client: SocketAddr,
    pub route: &'a str,
    /// Variables, edits, and the request facts kept for this phase
    /// (`request_id`, and `host` / `path` when a template needs them).
    pub state: &'a mut FilterState,
}

impl<'a> ResponseCx<'a> {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of upstream response header `name`
    /// (case-insensitive); `None` for a local reply.
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        let (buf, head) = self.upstream?;
        crate::http::head::field_value(&head.headers, buf, name)
    }

    /// Every upstream response field as `(name, value)`, in order; none for
    /// a local reply.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        response_fields(self.upstream)
    }
}

/// The fields of an upstream response head (see [`ResponseCx::upstream`]).
pub fn response_fields<'a>(
    upstream: Option<(&'a [u8], &'a ResponseHead)>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
    upstream.into_iter().flat_map(|(buf, head)| {
        head.headers
            .iter()
            .map(move |h| (h.name.get(buf), h.value.get(buf)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_replace_and_read() {
        let mut v = Vars::default();
        assert!(v.get("sub").is_none());
        v.set("sub", b"alice");
        v.set("key", b"k1");
        v.set("sub", b"bob");
        assert_eq!(v.get("sub"), Some(&b"bob"[..]));
        assert_eq!(v.get("key"), Some(&b"k1"[..]));
        let names: Vec<_> = v.iter().map(|(n, _)| n.to_vec()).collect();
        assert_eq!(names, [b"key".to_vec(), b"sub".to_vec()]);
        v.clear();
        assert!(v.is_empty());
    }

    #[test]
    fn sans_of_a_minted_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["api.test".to_string()]).expect("params");
        params.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from("spiffe://example.org/ns/a/sa/b").unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let sans = subject_alt_names(cert.der());
        assert_eq!(sans, ["DNS:api.test", "URI:spiffe://example.org/ns/a/sa/b"]);
        assert!(subject_alt_names(b"not a certificate").is_empty());
        // The SPIFFE ID wins over the DNS name; XFCC carries both and the
        // certificate's hash.
        let p = PeerIdentity::of(cert.der());
        assert_eq!(p.id, "spiffe://example.org/ns/a/sa/b");
        let x = String::from_utf8(p.xfcc.to_vec()).unwrap();
        assert!(x.starts_with("Hash="), "{x}");
        assert_eq!(x.split(';').next().unwrap().len(), 5 + 64);
        assert!(
            x.ends_with(";URI=spiffe://example.org/ns/a/sa/b;DNS=api.test"),
            "{x}"
        );
        // Without a URI SAN: the DNS name is the identity.
        let key = rcgen::KeyPair::generate().unwrap();
        let dns_only = rcgen::CertificateParams::new(vec!["db.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(PeerIdentity::of(dns_only.der()).id, "db.test");
        // Odd certificates get no identity: two URI SANs, an invalid
        // SPIFFE ID (uppercase trust domain, dot segment).
        for uris in [
            &["spiffe://example.org/a", "spiffe://example.org/b"][..],
            &["spiffe://Example.org/a"][..],
            &["spiffe://example.org/ns/../admin"][..],
        ] {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            for u in uris {
                params.subject_alt_names.push(rcgen::SanType::URI(
                    rcgen::string::Ia5String::try_from(*u).unwrap(),
                ));
            }
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            assert_eq!(PeerIdentity::of(cert.der()).id, "", "{uris:?}");
        }
    }

    #[test]
    fn target_rewrite_state() {
        let mut s = FilterState::default();
        assert_eq!(s.target(), None);
        s.set_target(b"/new");
        assert_eq!(s.target(), Some(&b"/new"[..]));
        s.clear();
        assert_eq!(s.target(), None);
        s.target_buf().extend_from_slice(b"/x");
        s.commit_target();
        assert_eq!(s.target(), Some(&b"/x"[..]));
    }
}
