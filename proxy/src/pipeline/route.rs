//! The `route` stage: the compiled route table of one listener.
//!
//! Built once per config snapshot. Matching today is Host (exact or
//! `*.suffix`, case-insensitive, port ignored) and path prefix, first match in
//! file order wins. New matchers (method, headers, query, regex) become new
//! fields of [`RouteMatch`], checked in [`RouteMatch::matches`].

use crate::config::{Config, HostMatch, RouteConfig};

/// What a route needs to see of a request to decide.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// Host header value (may carry a `:port`), if any.
    pub host: Option<&'a [u8]>,
    /// Path of the request target (no query).
    pub path: &'a [u8],
}

/// The match part of a route.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub host: Option<HostMatch>,
    pub path_prefix: Vec<u8>,
}

impl RouteMatch {
    pub fn matches(&self, input: &RouteInput<'_>) -> bool {
        if !input.path.starts_with(&self.path_prefix) {
            return false;
        }
        match &self.host {
            None => true,
            Some(want) => match input.host {
                None => false,
                Some(host) => host_matches(want, strip_port(host)),
            },
        }
    }
}

/// The path of a request target for matching: origin-form as is, the path
/// of an absolute-form target (`http://host/path?q` → `/path`), query removed.
pub fn target_path(target: &[u8]) -> &[u8] {
    let mut t = target;
    if t.first() != Some(&b'/') {
        if let Some(i) = memchr::memmem::find(t, b"://") {
            let rest = &t[i + 3..];
            t = match memchr::memchr(b'/', rest) {
                Some(j) => &rest[j..],
                None => b"/",
            };
        }
    }
    match memchr::memchr2(b'?', b'#', t) {
        Some(i) => &t[..i],
        None => t,
    }
}

fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        // IPv6 literal: keep up to and including ']'.
        return match memchr::memchr(b']', host) {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match memchr::memrchr(b':', host) {
        Some(i) => &host[..i],
        None => host,
    }
}

fn host_matches(want: &HostMatch, host: &[u8]) -> bool {
    // A fully-qualified name may end with a dot.
    let host = host.strip_suffix(b".").unwrap_or(host);
    match want {
        HostMatch::Exact(name) => host.eq_ignore_ascii_case(name.as_bytes()),
        HostMatch::Suffix(suffix) => {
            let s = suffix.as_bytes();
            host.len() > s.len() && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
        }
    }
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index in `Config::routes`.
    pub index: usize,
    pub name: String,
    pub matcher: RouteMatch,
    pub cluster: usize,
    pub max_body_bytes: Option<u64>,
    pub timeout: std::time::Duration,
}

/// The routes of one listener, in match order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Compile the table of listener `listener` from the config.
    pub fn build(config: &Config, listener: usize) -> Self {
        let routes = config
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.listener.is_none_or(|l| l == listener))
            .map(|(index, r)| Route::compile(index, r))
            .collect();
        RouteTable { routes }
    }

    /// The first route that matches, if any.
    pub fn find(&self, input: &RouteInput<'_>) -> Option<&Route> {
        self.routes.iter().find(|r| r.matcher.matches(input))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl Route {
    fn compile(index: usize, r: &RouteConfig) -> Self {
        Route {
            index,
            name: r.name.clone(),
            matcher: RouteMatch {
                host: r.host.clone(),
                path_prefix: r.path_prefix.as_bytes().to_vec(),
            },
            cluster: r.cluster,
            max_body_bytes: r.max_body_bytes,
            timeout: r.timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(host: Option<HostMatch>, prefix: &str) -> RouteMatch {
        RouteMatch {
            host,
            path_prefix: prefix.as_bytes().to_vec(),
        }
    }

    fn input<'a>(host: Option<&'a str>, path: &'a str) -> RouteInput<'a> {
        RouteInput {
            host: host.map(str::as_bytes),
            path: path.as_bytes(),
        }
    }

    #[test]
    fn path_prefix_and_exact_host() {
        let r = m(Some(HostMatch::Exact("api.test".into())), "/v1");
        assert!(r.matches(&input(Some("api.test"), "/v1/users")));
        assert!(r.matches(&input(Some("API.Test:8080"), "/v1")));
        assert!(r.matches(&input(Some("api.test."), "/v1")));
        assert!(!r.matches(&input(Some("api.test"), "/v2")));
        assert!(!r.matches(&input(Some("www.api.test"), "/v1")));
        assert!(!r.matches(&input(None, "/v1")));
    }

    #[test]
    fn wildcard_host() {
        let r = m(Some(HostMatch::Suffix(".example.com".into())), "/");
        assert!(r.matches(&input(Some("a.example.com"), "/")));
        assert!(r.matches(&input(Some("a.b.EXAMPLE.com:443"), "/x")));
        assert!(!r.matches(&input(Some("example.com"), "/")));
        assert!(!r.matches(&input(Some("badexample.com"), "/")));
    }

    #[test]
    fn ipv6_host_port_is_stripped() {
        let r = m(Some(HostMatch::Exact("[::1]".into())), "/");
        assert!(r.matches(&input(Some("[::1]:8080"), "/")));
    }

    #[test]
    fn target_paths() {
        assert_eq!(target_path(b"/a/b?x=1"), b"/a/b");
        assert_eq!(target_path(b"http://h.test/a?q"), b"/a");
        assert_eq!(target_path(b"http://h.test"), b"/");
        assert_eq!(target_path(b"*"), b"*");
    }

    #[test]
    fn first_match_wins() {
        let table = RouteTable {
            routes: vec![
                Route {
                    index: 0,
                    name: "api".into(),
                    matcher: m(None, "/api"),
                    cluster: 1,
                    max_body_bytes: None,
                    timeout: std::time::Duration::from_secs(1),
                },
                Route {
                    index: 1,
                    name: "all".into(),
                    matcher: m(None, "/"),
                    cluster: 0,
                    max_body_bytes: None,
                    timeout: std::time::Duration::from_secs(1),
                },
            ],
        };
        assert_eq!(table.find(&input(None, "/api/x")).unwrap().name, "api");
        assert_eq!(table.find(&input(None, "/other")).unwrap().name, "all");
        assert!(table.find(&input(None, "*")).is_none());
    }
}
