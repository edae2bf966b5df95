//! The `route` stage: the compiled route table of one listener.
//!
//! Built once per config snapshot. Matching today is Host (exact or
//! `*.suffix`, case-insensitive, port ignored) and path prefix, first match in
//! file order wins. New matchers (method, headers, query, regex) become new
//! fields of [`RouteMatch`], checked in [`RouteMatch::matches`].
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
//! - each group holds its path prefixes in a compressed radix trie in which
//!   every node records the lowest route position whose prefix ends there
//!   (and the lowest in its subtree). Walking the request path down the trie
//!   passes exactly the nodes of the group's prefixes that the path starts
//!   with, so the minimum seen on the walk is the group's first match.
//!
//! A route sits in exactly one group, and every group whose host can match
//! the request is consulted, so the minimum over the groups is the minimum
//! over all matching routes: the linear scan's answer. Only positions are
//! compared, so neither the hash maps' order nor the trie layout can change
//! the result. Cost: one hash lookup for the exact host, one per label for
//! the suffixes, one trie walk (at most the path's length) per group found;
//! independent of the number of routes, no allocation (the host is
//! lower-cased in a stack buffer), no locks. Routes the index cannot key (a
//! host name longer than that buffer, or a suffix that does not start with
//! `.`; neither passes config validation) are checked one by one, in order,
//! after the index.

mod index;

use std::sync::Arc;

use crate::config::{Config, HostMatch, RouteAction, RouteConfig};
use crate::pipeline::filters::Filter;
use index::RouteIndex;

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
                Some(host) => host_matches(want, request_host(host)),
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
                path_prefix: r.path_prefix.as_bytes().to_vec(),
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
        let inp = input(host, path);
        let got = table.find(&inp).map(|r| r.index);
        assert_eq!(
            got,
            table.find_linear(&inp).map(|r| r.index),
            "host {host:?} path {path:?}"
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

    /// A route whose prefix is mostly not a catch-all when it has no host
    /// (those would take most lookups in a large random table).
    fn random_route(rng: &mut Rng, pos: usize) -> Route {
        let host = random_host_match(rng);
        let mut prefix = rng.path();
        while host.is_none() && prefix.len() < 3 && !rng.chance(5) {
            prefix = rng.path();
        }
        route(pos, host, &prefix)
    }

    /// Host and path of a request, mostly built from those of `target`.
    fn random_input(rng: &mut Rng, target: &Route) -> (Option<String>, String) {
        (random_host(rng, target), random_path(rng, target))
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
        let prefix = String::from_utf8(target.matcher.path_prefix.clone()).unwrap();
        match rng.below(10) {
            0..5 => prefix + &rng.path(),
            5..7 => prefix[..rng.below(prefix.len() + 1)].to_string(),
            _ => rng.path(),
        }
    }

    #[test]
    fn index_equals_linear_scan_on_random_tables() {
        let mut rng = Rng(0x5eed_2024);
        let (mut lookups, mut hits, mut exact_hits, mut suffix_hits, mut any_hits) =
            (0, 0, 0, 0, 0);
        for _ in 0..150 {
            let n = LINEAR_MAX_ROUTES + 1 + rng.below(300 - LINEAR_MAX_ROUTES);
            let routes: Vec<Route> = (0..n).map(|i| random_route(&mut rng, i)).collect();
            let table = RouteTable::from_routes(routes);
            assert!(table.is_indexed(), "{n} routes");
            for _ in 0..300 {
                let target = &table.routes[rng.below(n)];
                let (host, path) = random_input(&mut rng, target);
                let got = pos(&table, host.as_deref(), &path);
                lookups += 1;
                if let Some(i) = got {
                    hits += 1;
                    match table.routes[i].matcher.host {
                        Some(HostMatch::Exact(_)) => exact_hits += 1,
                        Some(HostMatch::Suffix(_)) => suffix_hits += 1,
                        None => any_hits += 1,
                    }
                }
            }
        }
        // The inputs exercise every kind of group, not just misses.
        assert!(hits * 3 > lookups, "{hits} hits of {lookups}");
        assert!(
            exact_hits * 20 > lookups,
            "{exact_hits} exact-host hits of {lookups}"
        );
        assert!(
            suffix_hits * 20 > lookups,
            "{suffix_hits} suffix hits of {lookups}"
        );
        assert!(
            any_hits * 20 > lookups,
            "{any_hits} host-less hits of {lookups}"
        );
    }
}
