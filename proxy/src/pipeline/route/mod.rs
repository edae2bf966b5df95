//! The `route` stage: the compiled route table of one listener.
//!
//! Built once per config snapshot. A route matches when all of its
//! matchers do ([`RouteMatch::matches`]); the first match in file order wins:
//!
//! - Host (exact or `*.suffix`, case-insensitive, port and one trailing dot
//!   ignored);
//! - one path matcher: `path_prefix` (byte prefix, the default `/`), `path`
//!   (exact), `path_segment_prefix` (`/api` matches `/api` and `/api/…`, not
//!   `/apix`) or `path_regex` (the whole path);
//! - `methods` (any of them, case-sensitive);
//! - `headers` and `query` conditions (`exact`, `prefix`, `regex`,
//!   `present`, `absent`), all of which must hold; `matcher.rs` has what they
//!   mean for repeated headers and raw query values.
//!
//! The matchers are config types ([`PathMatch`], [`HeaderMatch`],
//! [`QueryMatch`], regexes compiled with a size limit when the config is
//! built); their matching is in `route/matcher.rs`. A new matcher is a new
//! field of [`RouteMatch`], checked in [`RouteMatch::matches_conditions`]
//! (which the index calls too) unless the index keys on it.
//!
//! # Lookup
//!
//! [`RouteMatch::matches`] is the definition of a match, and the answer of
//! [`RouteTable::find`] is defined as the linear scan: the route with the
//! lowest position in the table whose matcher matches. Small tables (up to
//! [`LINEAR_MAX_ROUTES`] routes) do exactly that scan. Larger tables build an
//! index (`route/index.rs`) that returns the same route without looking at
//! the others:
//!
//! - the routes are split into candidate groups by host: one group per exact
//!   host (hash map keyed by the lower-case name), one per wildcard suffix
//!   (hash map keyed by the lower-case `.suffix`, looked up once per label
//!   boundary of the request host: `a.b.example.com` → `.b.example.com`,
//!   `.example.com`, `.com`), and one for the routes without a host;
//! - each group holds its routes in a compressed radix trie keyed by a path
//!   *key*, bytes every matching path starts with (the prefix, the exact
//!   path, the segment prefix, or the literal start of a regex such as
//!   `/users/` for `/users/[0-9]+`). Every node keeps its routes in position
//!   order (and the lowest position in its subtree). Walking the request
//!   path down the trie passes exactly the nodes of the keys the path starts
//!   with; at each, the routes below the best found so far are tested in
//!   order (the rest of the path for `path` and `path_segment_prefix`, then
//!   regex, methods, headers and query for the routes that have them), and
//!   the first that matches is the node's answer. The minimum seen on the
//!   walk is the group's first match.
//!
//! A route sits in exactly one group, and every group whose host can match
//! the request is consulted, so the minimum over the groups is the minimum
//! over all matching routes: the linear scan's answer. Only positions are
//! compared, so neither the hash maps' order nor the trie layout can change
//! the result. Cost: one hash lookup for the exact host, one per label for
//! the suffixes, one trie walk (at most the path's length) per group found,
//! plus the condition checks of the routes filed on the walked nodes (few,
//! unless many routes share a key and differ only in method, headers, query
//! or regex: those are tried one by one, like a scan of that key); no
//! allocation (the host is lower-cased in a stack buffer), no locks. Routes the index cannot key (a
//! host name longer than that buffer, or a suffix that does not start with
//! `.`; neither passes config validation) are checked one by one, in order,
//! after the index.

mod index;
pub mod matcher;

use std::sync::Arc;

use crate::config::{
    Config, HeaderMatch, HostMatch, PathMatch, QueryMatch, RouteAction, RouteConfig,
};
use crate::pipeline::filters::Filter;
use index::RouteIndex;
pub use matcher::{method_matches, target_query, RequestHeaders};

/// Tables with at most this many routes are scanned linearly instead of
/// indexed. A scan costs a prefix compare and, for routes with a host, a
/// short case-insensitive compare per route (criterion on this VM, 10 routes:
/// 20 ns for a hit on the first, 83–124 ns for the last); an indexed lookup
/// costs a host hash, a hash probe per label and a trie walk per group found,
/// 56–125 ns whatever the table size. The crossover is at 10–16 routes; a
/// small table keeps the scan because its common case, an early hit, is
/// several times cheaper than any indexed lookup.
pub const LINEAR_MAX_ROUTES: usize = 16;

/// What a route needs to see of a request to decide.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// Host header value (may carry a `:port`), if any.
    pub host: Option<&'a [u8]>,
    /// Path of the request target (no query, see [`target_path`]).
    pub path: &'a [u8],
    pub method: &'a [u8],
    /// Query string of the request target, if it has a `?` (see
    /// [`target_query`]).
    pub query: Option<&'a [u8]>,
    pub headers: RequestHeaders<'a>,
}

impl<'a> RouteInput<'a> {
    /// A `GET` of `path` with no query and no headers but `host`.
    pub fn get(host: Option<&'a [u8]>, path: &'a [u8]) -> Self {
        RouteInput {
            host,
            path,
            method: b"GET",
            query: None,
            headers: RequestHeaders::NONE,
        }
    }
}

/// The match part of a route: every field must match.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub host: Option<HostMatch>,
    pub path: PathMatch,
    /// Empty: any method.
    pub methods: Vec<String>,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
}

impl Default for RouteMatch {
    /// Any host, `path_prefix = "/"`, no other condition.
    fn default() -> Self {
        RouteMatch {
            host: None,
            path: PathMatch::Prefix("/".into()),
            methods: Vec::new(),
            headers: Vec::new(),
            query: Vec::new(),
        }
    }
}

impl RouteMatch {
    /// The definition of a match. Cheap checks first: a literal path, the
    /// host, then [`matches_conditions`](Self::matches_conditions).
    pub fn matches(&self, input: &RouteInput<'_>) -> bool {
        let path_ok = match &self.path {
            PathMatch::Regex(_) => true, // in `matches_conditions`
            literal => literal.matches(input.path),
        };
        path_ok
            && match &self.host {
                None => true,
                Some(want) => match input.host {
                    None => false,
                    Some(host) => host_matches(want, request_host(host)),
                },
            }
            && self.matches_conditions(input)
    }

    /// Whether the request passes the conditions the index does not key on:
    /// a `path_regex`, methods, query and headers (true if there are none).
    pub fn matches_conditions(&self, input: &RouteInput<'_>) -> bool {
        method_matches(&self.methods, input.method)
            && match &self.path {
                PathMatch::Regex(p) => p.regex.is_match(input.path),
                _ => true,
            }
            && self.query.iter().all(|q| q.matches(input.query))
            && self.headers.iter().all(|h| h.matches(&input.headers))
    }

    /// Whether [`matches_conditions`](Self::matches_conditions) can say no.
    pub fn has_conditions(&self) -> bool {
        matches!(self.path, PathMatch::Regex(_))
            || !self.methods.is_empty()
            || !self.headers.is_empty()
            || !self.query.is_empty()
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

/// The name a Host header value is matched as: port removed, then one
/// trailing dot (a fully-qualified name may end with a dot).
fn request_host(host: &[u8]) -> &[u8] {
    let host = strip_port(host);
    host.strip_suffix(b".").unwrap_or(host)
}

/// `host` as returned by [`request_host`].
fn host_matches(want: &HostMatch, host: &[u8]) -> bool {
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
    pub action: RouteAction,
    pub max_body_bytes: Option<u64>,
    pub timeout: std::time::Duration,
    /// The filter chain (shared with the config; empty for most routes).
    pub filters: Arc<[Filter]>,
}

/// The routes of one listener, in match order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// `None`: the table is small enough to scan (or empty).
    index: Option<RouteIndex>,
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
        Self::from_routes(routes)
    }

    /// A table of `routes`, in this (match) order; indexed above
    /// [`LINEAR_MAX_ROUTES`].
    fn from_routes(routes: Vec<Route>) -> Self {
        let index = (routes.len() > LINEAR_MAX_ROUTES)
            .then(|| RouteIndex::build(&routes))
            .flatten();
        RouteTable { routes, index }
    }

    /// The first route that matches, if any.
    pub fn find(&self, input: &RouteInput<'_>) -> Option<&Route> {
        match &self.index {
            Some(index) => index.find(&self.routes, input).map(|i| &self.routes[i]),
            None => self.find_linear(input),
        }
    }

    /// The definition of [`find`](Self::find): the first route in order whose
    /// matcher matches.
    fn find_linear(&self, input: &RouteInput<'_>) -> Option<&Route> {
        self.routes.iter().find(|r| r.matcher.matches(input))
    }

    /// Whether lookups use the index (more than [`LINEAR_MAX_ROUTES`]
    /// routes) rather than a linear scan.
    pub fn is_indexed(&self) -> bool {
        self.index.is_some()
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
                path: r.path.clone(),
                methods: r.methods.clone(),
                headers: r.headers.clone(),
                query: r.query.clone(),
            },
            action: r.action.clone(),
            max_body_bytes: r.max_body_bytes,
            timeout: r.timeout,
            filters: r.filters.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::{Pattern, ValueMatch};
    use crate::http::{HeaderSpan, Span};

    fn m(host: Option<HostMatch>, prefix: &str) -> RouteMatch {
        RouteMatch {
            host,
            path: PathMatch::Prefix(prefix.into()),
            ..RouteMatch::default()
        }
    }

    fn input<'a>(host: Option<&'a str>, path: &'a str) -> RouteInput<'a> {
        RouteInput::get(host.map(str::as_bytes), path.as_bytes())
    }

    /// Header fields `(name, value)` as a head buffer and spans.
    fn header_fields(fields: &[(String, String)]) -> (Vec<u8>, Vec<HeaderSpan>) {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for (n, v) in fields {
            let mut span = |s: &str| {
                let start = buf.len() as u32;
                buf.extend_from_slice(s.as_bytes());
                Span {
                    start,
                    end: buf.len() as u32,
                }
            };
            let name = span(n);
            let value = span(v);
            spans.push(HeaderSpan { name, value });
        }
        (buf, spans)
    }

    fn regex_path(source: &str) -> PathMatch {
        PathMatch::Regex(Pattern::compile(source, true).unwrap())
    }

    fn value_regex(source: &str) -> ValueMatch {
        ValueMatch::Regex(Pattern::compile(source, false).unwrap())
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

    fn route(pos: usize, host: Option<HostMatch>, prefix: &str) -> Route {
        Route {
            index: pos,
            name: format!("r{pos}"),
            matcher: m(host, prefix),
            action: RouteAction::Forward(0),
            max_body_bytes: None,
            timeout: std::time::Duration::from_secs(1),
            filters: Arc::from([]),
        }
    }

    fn exact(name: &str) -> Option<HostMatch> {
        Some(HostMatch::Exact(name.into()))
    }

    fn suffix(s: &str) -> Option<HostMatch> {
        Some(HostMatch::Suffix(s.into()))
    }

    /// A table of `routes` padded with routes that never match the inputs
    /// used with it, up to `len` routes (to get past the linear threshold).
    fn padded(routes: Vec<(Option<HostMatch>, &str)>, len: usize) -> RouteTable {
        let mut all: Vec<Route> = routes
            .into_iter()
            .enumerate()
            .map(|(i, (h, p))| route(i, h, p))
            .collect();
        while all.len() < len {
            let i = all.len();
            all.push(route(i, exact(&format!("pad{i}.invalid")), "/"));
        }
        RouteTable::from_routes(all)
    }

    /// `find` as a route position, after checking it against the linear scan.
    fn pos(table: &RouteTable, host: Option<&str>, path: &str) -> Option<usize> {
        pos_of(table, &input(host, path))
    }

    fn pos_of(table: &RouteTable, inp: &RouteInput<'_>) -> Option<usize> {
        let got = table.find(inp).map(|r| r.index);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers: Vec<String> = inp
            .headers
            .iter()
            .map(|(n, v)| format!("{}: {}", text(n), text(v)))
            .collect();
        assert_eq!(
            got,
            table.find_linear(inp).map(|r| r.index),
            "host {:?} {} {} query {:?} headers {headers:?}",
            inp.host.map(text),
            text(inp.method),
            text(inp.path),
            inp.query.map(text),
        );
        got
    }

    #[test]
    fn first_match_wins() {
        let table = RouteTable::from_routes(vec![
            Route {
                index: 0,
                name: "api".into(),
                matcher: m(None, "/api"),
                action: RouteAction::Forward(1),
                max_body_bytes: None,
                timeout: std::time::Duration::from_secs(1),
                filters: Arc::from([]),
            },
            Route {
                index: 1,
                name: "all".into(),
                matcher: m(None, "/"),
                action: RouteAction::Forward(0),
                max_body_bytes: None,
                timeout: std::time::Duration::from_secs(1),
                filters: Arc::from([]),
            },
        ]);
        assert_eq!(table.find(&input(None, "/api/x")).unwrap().name, "api");
        assert_eq!(table.find(&input(None, "/other")).unwrap().name, "all");
        assert!(table.find(&input(None, "*")).is_none());
    }

    #[test]
    fn strategy_follows_threshold() {
        assert!(!RouteTable::default().is_indexed());
        assert!(RouteTable::default().find(&input(None, "/")).is_none());
        let small = padded(vec![(None, "/")], LINEAR_MAX_ROUTES);
        assert_eq!(small.len(), LINEAR_MAX_ROUTES);
        assert!(!small.is_indexed());
        let large = padded(vec![(None, "/")], LINEAR_MAX_ROUTES + 1);
        assert_eq!(large.len(), LINEAR_MAX_ROUTES + 1);
        assert!(large.is_indexed());
        assert_eq!(pos(&large, Some("x.test"), "/a"), Some(0));
        assert_eq!(pos(&large, Some("pad5.invalid"), "/a"), Some(0));
        assert_eq!(pos(&large, None, "a"), None);
    }

    #[test]
    fn built_from_config_uses_index_above_threshold() {
        let mut text = String::from(
            "[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n\
             [[cluster]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9000\"]\n\n",
        );
        for i in 0..20 {
            text.push_str(&format!(
                "[[route]]\nhost = \"svc{i}.Example.com\"\npath_prefix = \"/svc{i}/\"\ncluster = \"app\"\n\n"
            ));
        }
        text.push_str(
            "[[route]]\nhost = \"*.example.COM\"\npath_prefix = \"/\"\ncluster = \"app\"\n\n",
        );
        let config = Config::parse(&text, None).expect("config");
        let table = RouteTable::build(&config, 0);
        assert_eq!(table.len(), 21);
        assert!(table.is_indexed());
        assert_eq!(pos(&table, Some("SVC7.example.com:80"), "/svc7/x"), Some(7));
        assert_eq!(pos(&table, Some("svc7.example.com"), "/svc8/x"), Some(20));
        assert_eq!(pos(&table, Some("example.com"), "/svc7/x"), None);
        assert_eq!(pos(&table, None, "/svc7/x"), None);
    }

    #[test]
    fn index_first_match_across_groups() {
        let table = padded(
            vec![
                (exact("api.test"), "/v1/"),
                (None, "/v1/admin"),
                (suffix(".test"), "/"),
                (None, "/"),
                (exact("api.test"), ""),
                (suffix(".api.test"), "/v2"),
                (exact("[::1]"), "/v1"),
                (None, "/v1"),
                // Duplicates of earlier routes: never chosen.
                (exact("API.test"), "/v1/"),
                (None, "/v1/admin"),
                (suffix(".TEST"), "/"),
            ],
            LINEAR_MAX_ROUTES + 1,
        );
        assert!(table.is_indexed());
        assert_eq!(pos(&table, Some("API.TEST:443"), "/v1/users"), Some(0));
        // "/v1" is not under "/v1/"; the wildcard is the next in order.
        assert_eq!(pos(&table, Some("api.test"), "/v1"), Some(2));
        assert_eq!(pos(&table, Some("api.test."), "v1"), Some(4));
        assert_eq!(pos(&table, Some("test"), "/x"), Some(3));
        assert_eq!(pos(&table, Some("x.api.test"), "/v2/a"), Some(2));
        assert_eq!(pos(&table, Some("x.api.test"), "v2"), None);
        assert_eq!(pos(&table, None, "/v1/admin/x"), Some(1));
        assert_eq!(pos(&table, None, "/v1"), Some(3));
        assert_eq!(pos(&table, None, ""), None);
        assert_eq!(pos(&table, Some("[::1]:8080"), "/v1"), Some(3));
        assert_eq!(pos(&table, Some("[::1]:8080"), "v1"), None);
        assert_eq!(pos(&table, Some("a.b.TEST."), "/"), Some(2));
    }

    #[test]
    fn index_handles_hosts_it_cannot_key() {
        let long = format!("{}.example.com", "a".repeat(300));
        let table = padded(
            vec![
                (suffix("example.com"), "/odd"),
                (exact(&long.to_ascii_uppercase()), "/long"),
                (suffix(&format!(".{long}")), "/deeper"),
                (suffix(".example.com"), "/"),
                (suffix(""), "/any"),
            ],
            LINEAR_MAX_ROUTES + 1,
        );
        assert!(table.is_indexed());
        assert_eq!(pos(&table, Some("badexample.com"), "/odd"), Some(0));
        assert_eq!(pos(&table, Some("badexample.com"), "/x"), None);
        assert_eq!(pos(&table, Some(&format!("{long}.:80")), "/long"), Some(1));
        assert_eq!(pos(&table, Some(&format!("x.{long}")), "/deeper"), Some(2));
        // A request host longer than the lower-casing buffer still finds the
        // suffix at its end.
        assert_eq!(
            pos(
                &table,
                Some(&format!("A{}", long.to_ascii_uppercase())),
                "/"
            ),
            Some(3)
        );
        assert_eq!(pos(&table, Some("x"), "/any/thing"), Some(4));
        assert_eq!(pos(&table, Some(""), "/any"), None);
    }

    /// splitmix64: a deterministic generator for the equivalence test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// True with probability `percent` / 100.
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        fn shuffle<T>(&mut self, items: &mut [T]) {
            for i in (1..items.len()).rev() {
                items.swap(i, self.below(i + 1));
            }
        }

        fn mixed_case(&mut self, s: &str) -> String {
            s.chars()
                .map(|c| {
                    if self.chance(30) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        }

        fn name(&mut self) -> String {
            const LABELS: &[&str] = &["a", "b", "api", "www", "example", "com", "test", "x-y"];
            let n = 1 + self.below(3);
            (0..n)
                .map(|_| self.pick(LABELS))
                .collect::<Vec<_>>()
                .join(".")
        }

        fn path(&mut self) -> String {
            const PREFIXES: &[&str] = &[
                "", "/", "/a", "/ab", "/api", "/api/", "/api/v1", "/apix", "/b/c",
            ];
            if self.chance(50) {
                self.pick(PREFIXES).to_string()
            } else {
                let n = self.below(6);
                (0..n).map(|_| self.pick(&["/", "a", "b", "A"])).collect()
            }
        }
    }

    const IPV6: &[&str] = &["[::1]", "[2001:db8::1]", "[::FFFF:1.2.3.4]"];

    fn random_host_match(rng: &mut Rng) -> Option<HostMatch> {
        match rng.below(100) {
            0..12 => None,
            12..52 => Some(HostMatch::Exact(rng.name())),
            52..58 => Some(HostMatch::Exact({
                let ip = rng.pick(IPV6);
                rng.mixed_case(ip)
            })),
            // Config lower-cases names; `HostMatch` itself does not have to be.
            58..63 => Some(HostMatch::Exact({
                let n = rng.name();
                rng.mixed_case(&n)
            })),
            63..85 => Some(HostMatch::Suffix(format!(".{}", rng.name()))),
            85..92 => Some(HostMatch::Suffix({
                let n = rng.name();
                rng.mixed_case(&format!(".{n}"))
            })),
            // Not produced by config: checked one by one after the index.
            92..94 => Some(HostMatch::Suffix(rng.name())),
            94 => Some(HostMatch::Suffix(String::new())),
            95 => Some(HostMatch::Suffix(".".into())),
            96 => Some(HostMatch::Exact(String::new())),
            97 => Some(HostMatch::Exact(format!(
                "{}.{}",
                "x".repeat(260),
                rng.name()
            ))),
            _ => Some(HostMatch::Suffix(format!(
                ".{}.{}",
                "x".repeat(260),
                rng.name()
            ))),
        }
    }

    const METHODS: &[&str] = &["GET", "POST", "PUT", "get"];
    const HEADER_NAMES: &[&str] = &["x-a", "x-b", "x-c"];
    const QUERY_NAMES: &[&str] = &["v", "id", "debug", "V"];
    const VALUES: &[&str] = &["", "1", "2", "12", "stag", "staging", "a%20b", "x"];
    const SUFFIXES: &[&str] = &["", "/", "/x", "12", "abc", "b", "bb", "A"];

    /// A route whose path is mostly not a catch-all when it has no host
    /// (those would take most lookups in a large random table), with every
    /// kind of path matcher and, on some routes, methods, headers and query.
    fn random_route(rng: &mut Rng, pos: usize) -> Route {
        let host = random_host_match(rng);
        let mut prefix = rng.path();
        while host.is_none() && prefix.len() < 3 && !rng.chance(5) {
            prefix = rng.path();
        }
        let path = match rng.below(100) {
            0..55 => PathMatch::Prefix(prefix),
            55..70 => PathMatch::Exact(prefix),
            70..85 => PathMatch::SegmentPrefix(match rng.chance(70) {
                true => prefix.strip_suffix('/').unwrap_or(&prefix).to_string(),
                false => prefix,
            }),
            _ => cached_regex_path(&random_regex(rng, &prefix)),
        };
        let mut r = route(pos, host, "/");
        r.matcher.path = path;
        if rng.chance(20) {
            let n = 1 + rng.below(2);
            r.matcher.methods = (0..n).map(|_| rng.pick(METHODS).to_string()).collect();
        }
        if rng.chance(20) {
            for _ in 0..1 + rng.below(2) {
                r.matcher.headers.push(HeaderMatch {
                    name: rng.pick(HEADER_NAMES).to_string(),
                    value: random_value_match(rng),
                });
            }
        }
        if rng.chance(20) {
            for _ in 0..1 + rng.below(2) {
                r.matcher.query.push(QueryMatch {
                    name: rng.pick(QUERY_NAMES).to_string(),
                    value: random_value_match(rng),
                });
            }
        }
        r
    }

    /// [`regex_path`], compiled once per source (compiling dominates the
    /// random test in a debug build).
    fn cached_regex_path(source: &str) -> PathMatch {
        thread_local! {
            static CACHE: std::cell::RefCell<std::collections::HashMap<String, PathMatch>> =
                Default::default();
        }
        CACHE.with_borrow_mut(|c| {
            c.entry(source.to_string())
                .or_insert_with(|| regex_path(source))
                .clone()
        })
    }

    /// A path regex around `prefix` (bytes from `Rng::path`: no
    /// metacharacters), with and without a literal start for the index.
    fn random_regex(rng: &mut Rng, prefix: &str) -> String {
        match rng.below(9) {
            0 => format!("{prefix}[a-z]*"),
            1 => format!("{prefix}(/.*)?"),
            2 => format!("{prefix}[0-9]+"),
            3 => format!("{prefix}b*"),
            4 => format!("{prefix}|/b"),
            5 => format!("(?i){prefix}.*"),
            6 => format!(".*{prefix}"),
            7 => format!("{prefix}/?"),
            _ => format!("{prefix}A+b?"),
        }
    }

    fn random_value_match(rng: &mut Rng) -> ValueMatch {
        match rng.below(6) {
            0 => ValueMatch::Exact(rng.pick(VALUES).into()),
            1 => ValueMatch::Prefix(rng.pick(VALUES).into()),
            2 => {
                thread_local! {
                    static REGEXES: Vec<ValueMatch> =
                        ["^[0-9]+$", "ag", "^$", "2"].map(value_regex).into();
                }
                let i = rng.below(4);
                REGEXES.with(|r| r[i].clone())
            }
            3 => ValueMatch::Present,
            _ => ValueMatch::Absent,
        }
    }

    /// A random request, mostly built from what `target` matches.
    struct Request {
        host: Option<String>,
        path: String,
        method: &'static str,
        query: Option<String>,
        headers: Vec<(String, String)>,
    }

    fn random_request(rng: &mut Rng, target: &Route) -> Request {
        let m = &target.matcher;
        let method = if !m.methods.is_empty() && rng.chance(70) {
            let want = &m.methods[rng.below(m.methods.len())];
            METHODS.iter().find(|x| *x == want).unwrap()
        } else {
            rng.pick(&["GET", "POST", "PUT", "DELETE", "get"])
        };
        let mut headers = Vec::new();
        for h in &m.headers {
            if rng.chance(70) {
                let name = rng.mixed_case(&h.name);
                headers.push((name, value_for(rng, &h.value)));
            }
        }
        for _ in 0..rng.below(3) {
            let name = rng.pick(HEADER_NAMES);
            headers.push((rng.mixed_case(name), rng.pick(VALUES).to_string()));
        }
        rng.shuffle(&mut headers);
        let mut params = Vec::new();
        for q in &m.query {
            if rng.chance(70) {
                params.push(format!("{}={}", q.name, value_for(rng, &q.value)));
            }
        }
        for _ in 0..rng.below(3) {
            let name = rng.pick(QUERY_NAMES);
            params.push(match rng.chance(20) {
                true => name.to_string(),
                false => format!("{name}={}", rng.pick(VALUES)),
            });
        }
        rng.shuffle(&mut params);
        let query = (!params.is_empty() || rng.chance(10)).then(|| params.join("&"));
        Request {
            host: random_host(rng, target),
            path: random_path(rng, target),
            method,
            query,
            headers,
        }
    }

    /// A value that often satisfies `want`.
    fn value_for(rng: &mut Rng, want: &ValueMatch) -> String {
        match want {
            ValueMatch::Exact(v) => v.clone(),
            ValueMatch::Prefix(v) => format!("{v}{}", rng.pick(VALUES)),
            _ => rng.pick(VALUES).to_string(),
        }
    }

    fn random_host(rng: &mut Rng, target: &Route) -> Option<String> {
        if rng.chance(10) {
            return None;
        }
        let target = &target.matcher.host;
        let mut host = match (rng.below(3), target) {
            (0 | 1, Some(HostMatch::Exact(name))) => name.clone(),
            (0, Some(HostMatch::Suffix(s))) => format!("{}{s}", rng.name()),
            (1, Some(HostMatch::Suffix(s))) => s.clone(),
            _ => match rng.below(10) {
                0 => rng.pick(IPV6).to_string(),
                1 => rng
                    .pick(&["", ".", ":80", "[::1", "a..", "[::1]x:1", "a:b:c"])
                    .to_string(),
                _ => rng.name(),
            },
        };
        host = rng.mixed_case(&host);
        if rng.chance(20) {
            host.push('.');
        }
        if rng.chance(30) {
            host.push_str(rng.pick(&[":80", ":8443", ":", "."]));
        }
        Some(host)
    }

    fn random_path(rng: &mut Rng, target: &Route) -> String {
        let key = match &target.matcher.path {
            PathMatch::Prefix(p) | PathMatch::Exact(p) | PathMatch::SegmentPrefix(p) => p.clone(),
            PathMatch::Regex(p) => matcher::regex_literal_prefix(&p.source).to_string(),
        };
        match rng.below(10) {
            0..3 => key + &rng.path(),
            3..5 => key + rng.pick(SUFFIXES),
            5..7 => key[..rng.below(key.len() + 1)].to_string(),
            _ => rng.path(),
        }
    }

    /// Hits of the random test, by what decided them.
    #[derive(Debug, Default)]
    struct Tally {
        lookups: usize,
        hits: usize,
        exact_host: usize,
        suffix_host: usize,
        any_host: usize,
        prefix: usize,
        exact_path: usize,
        segment: usize,
        regex: usize,
        methods: usize,
        headers: usize,
        query: usize,
        /// Hits where an earlier route with the same path key had
        /// conditions that failed.
        passed_over: usize,
    }

    impl Tally {
        fn count(&mut self, table: &RouteTable, got: Option<usize>, inp: &RouteInput<'_>) {
            self.lookups += 1;
            let Some(i) = got else { return };
            self.hits += 1;
            let m = &table.routes[i].matcher;
            match m.host {
                Some(HostMatch::Exact(_)) => self.exact_host += 1,
                Some(HostMatch::Suffix(_)) => self.suffix_host += 1,
                None => self.any_host += 1,
            }
            match m.path {
                PathMatch::Prefix(_) => self.prefix += 1,
                PathMatch::Exact(_) => self.exact_path += 1,
                PathMatch::SegmentPrefix(_) => self.segment += 1,
                PathMatch::Regex(_) => self.regex += 1,
            }
            self.methods += usize::from(!m.methods.is_empty());
            self.headers += usize::from(!m.headers.is_empty());
            self.query += usize::from(!m.query.is_empty());
            let passed = table.routes[..i].iter().any(|r| {
                let m = &r.matcher;
                m.has_conditions()
                    && (matches!(m.path, PathMatch::Regex(_)) || m.path.matches(inp.path))
                    && match (&m.host, inp.host) {
                        (None, _) => true,
                        (Some(want), Some(host)) => host_matches(want, request_host(host)),
                        (Some(_), None) => false,
                    }
            });
            self.passed_over += usize::from(passed);
        }
    }

    #[test]
    fn index_equals_linear_scan_on_random_tables() {
        let mut rng = Rng(0x5eed_2024);
        let mut t = Tally::default();
        for _ in 0..150 {
            let n = LINEAR_MAX_ROUTES + 1 + rng.below(300 - LINEAR_MAX_ROUTES);
            let routes: Vec<Route> = (0..n).map(|i| random_route(&mut rng, i)).collect();
            let table = RouteTable::from_routes(routes);
            assert!(table.is_indexed(), "{n} routes");
            for _ in 0..300 {
                let target = &table.routes[rng.below(n)];
                let req = random_request(&mut rng, target);
                let (buf, spans) = header_fields(&req.headers);
                let inp = RouteInput {
                    host: req.host.as_deref().map(str::as_bytes),
                    path: req.path.as_bytes(),
                    method: req.method.as_bytes(),
                    query: req.query.as_deref().map(str::as_bytes),
                    headers: RequestHeaders::new(&buf, &spans),
                };
                let got = pos_of(&table, &inp);
                t.count(&table, got, &inp);
            }
        }
        // The inputs exercise every kind of group and matcher, not just
        // misses.
        let lookups = t.lookups;
        assert!(t.hits * 3 > lookups, "{t:?}");
        for (what, n) in [
            ("exact-host", t.exact_host),
            ("suffix-host", t.suffix_host),
            ("host-less", t.any_host),
            ("prefix", t.prefix),
            ("exact-path", t.exact_path),
            ("segment-prefix", t.segment),
            ("regex", t.regex),
            ("method", t.methods),
            ("header", t.headers),
            ("query", t.query),
            ("passed-over", t.passed_over),
        ] {
            assert!(n * 50 > lookups, "{n} {what} hits of {lookups}: {t:?}");
        }
    }

    #[test]
    fn index_checks_conditions_in_order() {
        let get_api = |pos: usize, path: PathMatch, methods: &[&str]| {
            let mut r = route(pos, None, "/");
            r.matcher.path = path;
            r.matcher.methods = methods.iter().map(|m| m.to_string()).collect();
            r
        };
        let mut routes = vec![
            get_api(0, PathMatch::Prefix("/api".into()), &["POST"]),
            get_api(1, PathMatch::Exact("/api/x".into()), &[]),
            get_api(2, regex_path("/api/[0-9]+"), &[]),
            get_api(3, PathMatch::SegmentPrefix("/api".into()), &["GET"]),
            get_api(4, PathMatch::Prefix("/api".into()), &[]),
            // Never reached: same key after a catch-all.
            get_api(5, PathMatch::Prefix("/api".into()), &["PUT"]),
            get_api(6, regex_path("(?i)/other"), &[]),
        ];
        let mut header_route = route(7, None, "/h");
        header_route.matcher.headers.push(HeaderMatch {
            name: "x-canary".into(),
            value: ValueMatch::Exact("1".into()),
        });
        routes.push(header_route);
        let mut query_route = route(8, None, "/h");
        query_route.matcher.query.push(QueryMatch {
            name: "v".into(),
            value: value_regex("^[0-9]+$"),
        });
        routes.push(query_route);
        while routes.len() <= LINEAR_MAX_ROUTES {
            let i = routes.len();
            routes.push(route(i, exact(&format!("pad{i}.invalid")), "/"));
        }
        let table = RouteTable::from_routes(routes);
        assert!(table.is_indexed());
        let find = |method: &str, target: &str, headers: &[(&str, &str)]| {
            let fields: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let (buf, spans) = header_fields(&fields);
            pos_of(
                &table,
                &RouteInput {
                    host: Some(b"any.test"),
                    path: target_path(target.as_bytes()),
                    method: method.as_bytes(),
                    query: target_query(target.as_bytes()),
                    headers: RequestHeaders::new(&buf, &spans),
                },
            )
        };
        assert_eq!(find("POST", "/api/x", &[]), Some(0));
        assert_eq!(find("GET", "/api/x", &[]), Some(1));
        assert_eq!(find("GET", "/api/12", &[]), Some(2));
        assert_eq!(find("GET", "/api/12/x", &[]), Some(3));
        assert_eq!(find("GET", "/api", &[]), Some(3));
        assert_eq!(find("GET", "/apix", &[]), Some(4));
        assert_eq!(find("PUT", "/api/y", &[]), Some(4));
        assert_eq!(find("GET", "/OTHER", &[]), Some(6));
        assert_eq!(find("GET", "/OTHER/x", &[]), None);
        assert_eq!(find("GET", "/h", &[("X-Canary", "1")]), Some(7));
        assert_eq!(find("GET", "/h?v=12", &[("X-Canary", "2")]), Some(8));
        assert_eq!(find("GET", "/h?v=x&v=3", &[("x-canary", "0")]), Some(8));
        assert_eq!(find("GET", "/h?v=x", &[("x-canary", "0")]), None);
    }
}
