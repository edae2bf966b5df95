//! The target URL of `ringload run`: `http://` or `https://`, a host, an
//! optional port and a path with an optional query.

use std::net::{SocketAddr, ToSocketAddrs};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// The host as written, without brackets for IPv6 literals.
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        let bad = |why: &str| format!("invalid URL '{text}': {why}");
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("expected http://HOST[:PORT]/PATH or https://..."))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unterminated IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("the host contains whitespace"));
        }
        let port = match port {
            None | Some("") => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port must be 1-65535")),
                Ok(n) => n,
            },
        };
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("the path contains whitespace (percent-encode it)"));
        }
        Ok(Target {
            tls,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The `Host` header value: the port is left out when it is the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolve once, before the run starts.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("cannot resolve {}: no address", self.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls() {
        let t = Target::parse("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert!(!t.tls);
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path, "/a/b?x=1");
        assert_eq!(t.host_header(), "127.0.0.1:8080");

        let t = Target::parse("https://example.test").unwrap();
        assert!(t.tls);
        assert_eq!(t.port, 443);
        assert_eq!(t.path, "/");
        assert_eq!(t.host_header(), "example.test");

        let t = Target::parse("http://h?q=1#frag").unwrap();
        assert_eq!(t.path, "/?q=1");
        assert_eq!(t.port, 80);
    }

    #[test]
    fn ipv6() {
        let t = Target::parse("http://[::1]:9000/x").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.port, 9000);
        assert_eq!(t.host_header(), "[::1]:9000");
        assert_eq!(t.resolve().unwrap(), "[::1]:9000".parse().unwrap());
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "127.0.0.1:8080",
            "ftp://x/",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:70000/",
            "http://h:x/",
            "http://u@h/",
            "http://[::1/",
            "http://h/a b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
