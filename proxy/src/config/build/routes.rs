//! `[[route]]`: matchers, the action, the filter chain.

use std::collections::HashMap;

use super::super::file::*;
use super::super::source::Skipped;
use super::super::*;
use super::{defaults, index_by_name, known_names, Builder};

impl Builder<'_> {
    pub(super) fn routes(
        &mut self,
        file: &FileConfig,
        skipped: &Skipped,
    ) -> Vec<Option<RouteConfig>> {
        if file.route.is_empty() && !skipped.section("route") {
            self.error("route", "at least one [[route]] is required");
        }
        let listener_index = index_by_name(file.listener.iter().map(|l| l.name.as_str()));
        let cluster_index = index_by_name(file.cluster.iter().map(|c| c.name.as_str()));
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut listener_has_route = vec![false; file.listener.len()];
        let mut out = Vec::new();
        for (i, r) in file.route.iter().enumerate() {
            let path = format!("route[{i}]");
            let name = match &r.name {
                // A skipped route's placeholder name is empty when its
                // `name` was missing or unreadable.
                Some(n) if !(n.is_empty() && skipped.routes.contains(&i)) => n.clone(),
                _ => format!("route{i}"),
            };
            if skipped.routes.contains(&i) {
                if !name.is_empty() {
                    names.entry(name).or_insert(i);
                }
                out.push(None);
                continue;
            }
            if name.trim().is_empty() {
                self.error(
                    format!("{path}.name"),
                    "must not be empty (leave it out for the default)",
                );
            } else if let Some(first) = names.get(&name) {
                self.error(
                    format!("{path}.name"),
                    format!("duplicate route name {name:?} (also used by route[{first}])"),
                );
            } else {
                names.insert(name.clone(), i);
            }

            let mut ok = true;
            let listener = match &r.listener {
                None => {
                    listener_has_route.iter_mut().for_each(|h| *h = true);
                    None
                }
                Some(l) => match listener_index.get(l.as_str()) {
                    Some(&idx) => {
                        listener_has_route[idx] = true;
                        Some(idx)
                    }
                    None if skipped.section("listener") => {
                        ok = false;
                        None
                    }
                    None => {
                        self.error(
                            format!("{path}.listener"),
                            format!(
                                "unknown listener {l:?}{}",
                                known_names(file.listener.iter().map(|l| l.name.as_str()))
                            ),
                        );
                        ok = false;
                        None
                    }
                },
            };
            let host = match &r.host {
                None => None,
                Some(h) => match parse_host(h) {
                    Ok(m) => Some(m),
                    Err(m) => {
                        self.error(format!("{path}.host"), m);
                        ok = false;
                        None
                    }
                },
            };
            let path_match = self.route_path(r, &path);
            let methods = self.route_methods(r, &path);
            let headers = self.value_matches(&r.headers, &format!("{path}.headers"), true);
            let query = self.value_matches(&r.query, &format!("{path}.query"), false);
            let matchers = match (path_match, methods, headers, query) {
                (Some(p), Some(m), Some(h), Some(q)) => Some((p, m, h, q)),
                _ => None,
            };
            let timeout = self.timeout(
                &format!("{path}.timeout"),
                r.timeout.as_ref(),
                defaults::ROUTE_TIMEOUT,
            );
            let action =
                self.route_action(r, &path, timeout, &file.cluster, &cluster_index, skipped);
            let filters = self.route_filters(r, &path, &name);
            let retries = r
                .retries
                .as_ref()
                .and_then(|f| self.retries(f, &format!("{path}.retries")));
            let hedge = r.hedge.as_ref().and_then(|f| {
                let at = format!("{path}.hedge.delay");
                match &f.delay {
                    None => {
                        self.error(
                            at,
                            "is required (e.g. \"20ms\": about the p95 of the upstream)",
                        );
                        None
                    }
                    Some(d) => Some(HedgePolicy {
                        delay: self.timeout(&at, Some(d), defaults::ROUTE_TIMEOUT),
                    }),
                }
            });
            let mirror = r.mirror.as_ref().and_then(|m| {
                let at = format!("{path}.mirror");
                let before = self.errors.len();
                let cluster = match cluster_index.get(m.cluster.as_str()) {
                    Some(&i) => i,
                    None => {
                        self.error(
                            format!("{at}.cluster"),
                            format!("unknown cluster {:?}", m.cluster),
                        );
                        0
                    }
                };
                let fraction = m.fraction.unwrap_or(1.0);
                if !(0.0..=1.0).contains(&fraction) || fraction.is_nan() {
                    self.error(format!("{at}.fraction"), "must be between 0 and 1");
                }
                let max_body = match &m.max_body {
                    None => 64 * 1024,
                    Some(v) => self.size(&format!("{at}.max_body"), v).unwrap_or(0),
                };
                let timeout = self.timeout(
                    &format!("{at}.timeout"),
                    m.timeout.as_ref(),
                    std::time::Duration::from_secs(1),
                );
                (self.errors.len() == before).then_some(MirrorPolicy {
                    cluster,
                    fraction,
                    max_body,
                    timeout,
                })
            });
            let max_body_bytes = match &r.max_body_bytes {
                None => None,
                Some(v) => self.size(&format!("{path}.max_body_bytes"), v),
            };
            out.push(match (action, filters, matchers) {
                (Some(action), Some(filters), Some((path_match, methods, headers, query)))
                    if ok =>
                {
                    Some(RouteConfig {
                        name,
                        listener,
                        host,
                        path: path_match,
                        methods,
                        headers,
                        query,
                        action,
                        max_body_bytes,
                        timeout,
                        retries,
                        hedge,
                        mirror,
                        filters,
                    })
                }
                _ => None,
            });
        }
        // A skipped route might have served any listener: don't guess.
        // Skipped and duplicate listeners have their own errors already.
        if skipped.routes.is_empty() && !skipped.section("route") {
            for (i, has) in listener_has_route.iter().enumerate() {
                let l = &file.listener[i];
                let duplicate = listener_index.get(l.name.as_str()) != Some(&i);
                if !has && !l.name.is_empty() && !duplicate && !skipped.listeners.contains(&i) {
                    self.error(
                        format!("listener[{i}]"),
                        format!(
                            "listener {:?} has no routes: add a [[route]] with listener = {:?} (or one without `listener`)",
                            l.name, l.name
                        ),
                    );
                }
            }
        }
        out
    }

    /// A cluster name a route refers to.
    pub(super) fn cluster_ref(
        &mut self,
        key: &str,
        name: &str,
        clusters: &[ClusterFile],
        index: &HashMap<&str, usize>,
        skipped: &Skipped,
    ) -> Option<usize> {
        match index.get(name) {
            Some(&idx) => Some(idx),
            None if skipped.section("cluster") => None,
            None => {
                self.error(
                    key,
                    format!(
                        "unknown cluster {name:?}{}",
                        known_names(clusters.iter().map(|c| c.name.as_str()))
                    ),
                );
                None
            }
        }
    }

    /// The route's one action: `cluster`, `split`, `direct_response`,
    /// `redirect`, `versions` or `aggregate` (whose `deadline` defaults to
    /// the route's `timeout`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_action(
        &mut self,
        r: &RouteFile,
        path: &str,
        timeout: std::time::Duration,
        clusters: &[ClusterFile],
        index: &HashMap<&str, usize>,
        skipped: &Skipped,
    ) -> Option<RouteAction> {
        let given: Vec<&str> = [
            r.cluster.as_ref().map(|_| "cluster"),
            r.split.as_ref().map(|_| "split"),
            r.direct_response.as_ref().map(|_| "direct_response"),
            r.redirect.as_ref().map(|_| "redirect"),
            r.versions.as_ref().map(|_| "versions"),
            r.aggregate.as_ref().map(|_| "aggregate"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let msg = if given.is_empty() {
                "a route needs one action: `cluster`, `split`, `direct_response`, `redirect`, `versions` or `aggregate`"
                    .to_owned()
            } else {
                format!("a route has one action; found {}", given.join(" and "))
            };
            self.error(path, msg);
            return None;
        }
        if r.split_by.is_some() && r.split.is_none() {
            self.error(
                format!("{path}.split_by"),
                "only applies to a `split` route",
            );
        }
        if r.versions.is_none() && (r.version_from.is_some() || r.default_version.is_some()) {
            let key = if r.version_from.is_some() {
                "version_from"
            } else {
                "default_version"
            };
            self.error(
                format!("{path}.{key}"),
                "only applies to a `versions` route",
            );
        }
        if let Some(versions) = &r.versions {
            let mut p = Vec::new();
            let built = crate::pipeline::versioning::build(
                r.version_from.as_ref(),
                r.default_version.as_deref(),
                versions,
                &mut |i, name| {
                    let key = format!("{path}.versions[{i}].cluster");
                    self.cluster_ref(&key, name, clusters, index, skipped)
                },
                &mut p,
            );
            for (key, msg) in p {
                self.error(format!("{path}.{key}"), msg);
            }
            return built.map(RouteAction::Versioned);
        }
        if let Some(a) = &r.aggregate {
            let mut p = Vec::new();
            let built = crate::pipeline::aggregate::build(
                a,
                r.path_regex.as_deref(),
                timeout,
                &mut |i, name| {
                    let key = format!("{path}.aggregate.legs[{i}].cluster");
                    self.cluster_ref(&key, name, clusters, index, skipped)
                },
                &mut p,
            );
            for (key, msg) in p {
                self.error(format!("{path}.aggregate.{key}"), msg);
            }
            return built.map(|a| RouteAction::Aggregate(std::sync::Arc::new(a)));
        }
        if let Some(c) = &r.cluster {
            return self
                .cluster_ref(&format!("{path}.cluster"), c, clusters, index, skipped)
                .map(RouteAction::Forward);
        }
        if let Some(d) = &r.direct_response {
            let mut p = Vec::new();
            let built = d.build(&mut p);
            for (key, msg) in p {
                self.error(format!("{path}.direct_response.{key}"), msg);
            }
            return built
                .map(|d| RouteAction::Local(crate::pipeline::filters::Filter::DirectResponse(d)));
        }
        if let Some(d) = &r.redirect {
            let mut p = Vec::new();
            let built = d.build(&mut p);
            for (key, msg) in p {
                let full = if key.is_empty() {
                    format!("{path}.redirect")
                } else {
                    format!("{path}.redirect.{key}")
                };
                self.error(full, msg);
            }
            return built
                .map(|d| RouteAction::Local(crate::pipeline::filters::Filter::Redirect(d)));
        }
        let split = r.split.as_deref().unwrap_or_default();
        if split.is_empty() {
            self.error(
                format!("{path}.split"),
                "needs at least one { cluster, weight }",
            );
            return None;
        }
        let mut targets = Vec::new();
        let mut ok = true;
        for (i, t) in split.iter().enumerate() {
            let key = format!("{path}.split[{i}]");
            let c = self.cluster_ref(
                &format!("{key}.cluster"),
                &t.cluster,
                clusters,
                index,
                skipped,
            );
            if !(0..=1_000_000).contains(&t.weight) {
                self.error(
                    format!("{key}.weight"),
                    format!("must be 0..=1000000 (found {})", t.weight),
                );
                ok = false;
            }
            match c {
                Some(c) => targets.push((c, t.weight.clamp(0, 1_000_000) as u32)),
                None => ok = false,
            }
        }
        if ok && targets.iter().all(|&(_, w)| w == 0) {
            self.error(
                format!("{path}.split"),
                "at least one weight must be above 0",
            );
            ok = false;
        }
        let sticky = match &r.split_by {
            None => None,
            Some(s) => match (&s.header, &s.cookie) {
                (Some(h), None) if crate::http::edits::is_token(h.as_bytes()) => {
                    Some(StickyKey::Header(h.to_ascii_lowercase()))
                }
                (None, Some(c)) if crate::http::edits::is_token(c.as_bytes()) => {
                    Some(StickyKey::Cookie(c.clone()))
                }
                _ => {
                    self.error(
                        format!("{path}.split_by"),
                        "give one of `header` or `cookie`, a valid header or cookie name",
                    );
                    ok = false;
                    None
                }
            },
        };
        ok.then_some(RouteAction::Split(SplitAction { targets, sticky }))
    }

    /// Compile `[[route.filters]]` of the route named `name`.
    pub(super) fn route_filters(
        &mut self,
        r: &RouteFile,
        path: &str,
        name: &str,
    ) -> Option<std::sync::Arc<[crate::pipeline::filters::Filter]>> {
        let mut out = Vec::with_capacity(r.filters.len());
        let mut ok = true;
        for (i, f) in r.filters.iter().enumerate() {
            let mut p = Vec::new();
            match f.build_on_route(name, &self.base_dir, &mut p) {
                Some(built) if p.is_empty() => out.push(built),
                _ => ok = false,
            }
            for (key, msg) in p {
                let full = if key.is_empty() {
                    format!("{path}.filters[{i}]")
                } else {
                    format!("{path}.filters[{i}].{key}")
                };
                self.error(full, msg);
            }
        }
        ok.then(|| out.into())
    }
}

/// A route's `host`: `api.example.com` → exact, `*.example.com` → suffix.
pub fn parse_host(text: &str) -> Result<HostMatch, String> {
    let lower = text.trim().to_ascii_lowercase();
    let hint = "expected a host name such as \"api.example.com\" or a wildcard such as \"*.example.com\" (no port, no scheme)";
    if lower.is_empty() {
        return Err(format!("must not be empty: {hint}"));
    }
    if lower.contains(':') || lower.contains('/') {
        return Err(format!("invalid host {text:?}: {hint}"));
    }
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    if !tls::is_dns_name(name) {
        return Err(format!("invalid host {text:?}: {hint}"));
    }
    Ok(if wild {
        HostMatch::Suffix(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_owned())
    })
}

/// The route matchers beyond `host`: path, methods, headers, query.
impl Builder<'_> {
    /// The route's one path matcher (default `path_prefix = "/"`).
    fn route_path(&mut self, r: &RouteFile, path: &str) -> Option<PathMatch> {
        let given: Vec<(&str, &String)> = [
            ("path_prefix", r.path_prefix.as_ref()),
            ("path", r.path.as_ref()),
            ("path_segment_prefix", r.path_segment_prefix.as_ref()),
            ("path_regex", r.path_regex.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
        if let [(first, _), (second, _), ..] = given[..] {
            self.error(
                format!("{path}.{second}"),
                format!("a route has at most one path matcher; found `{first}` and `{second}`"),
            );
            return None;
        }
        let Some(&(key, value)) = given.first() else {
            return Some(PathMatch::Prefix(defaults::PATH_PREFIX.to_owned()));
        };
        let key_path = format!("{path}.{key}");
        if key == "path_regex" {
            return self.pattern(&key_path, value, true).map(PathMatch::Regex);
        }
        if !value.starts_with('/') {
            self.error(key_path, format!("must start with '/' (found {value:?})"));
            return None;
        }
        if value
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
        {
            self.error(
                key_path,
                "must not contain spaces, control characters, '?' or '#'",
            );
            return None;
        }
        Some(match key {
            "path" => PathMatch::Exact(value.clone()),
            "path_segment_prefix" => {
                PathMatch::SegmentPrefix(value.strip_suffix('/').unwrap_or(value).to_owned())
            }
            _ => PathMatch::Prefix(value.clone()),
        })
    }

    /// `methods`: a non-empty list of tokens (absent = any method).
    fn route_methods(&mut self, r: &RouteFile, path: &str) -> Option<Vec<String>> {
        let Some(methods) = &r.methods else {
            return Some(Vec::new());
        };
        if methods.is_empty() {
            self.error(
                format!("{path}.methods"),
                "must not be empty (leave it out to match any method)",
            );
            return None;
        }
        let mut ok = true;
        for (i, m) in methods.iter().enumerate() {
            if !crate::http::edits::is_token(m.as_bytes()) {
                self.error(
                    format!("{path}.methods[{i}]"),
                    format!("{m:?} is not a method (a token such as \"GET\")"),
                );
                ok = false;
            }
        }
        ok.then(|| methods.clone())
    }

    /// `headers` (`header_names`: names are tokens, lower-cased) or `query`
    /// (names are raw query parameter names) at `key`.
    fn value_matches<T: From<(String, ValueMatch)>>(
        &mut self,
        entries: &[ValueMatchFile],
        key: &str,
        header_names: bool,
    ) -> Option<Vec<T>> {
        let mut out = Vec::with_capacity(entries.len());
        let mut ok = true;
        for (i, e) in entries.iter().enumerate() {
            let at = format!("{key}[{i}]");
            let name = if header_names {
                if !crate::http::edits::is_token(e.name.as_bytes()) {
                    self.error(
                        format!("{at}.name"),
                        format!("{:?} is not a valid header name", e.name),
                    );
                    ok = false;
                }
                e.name.to_ascii_lowercase()
            } else {
                if e.name.is_empty()
                    || e.name
                        .bytes()
                        .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'&' | b'=' | b'#'))
                {
                    self.error(
                        format!("{at}.name"),
                        format!(
                            "{:?} is not a query parameter name (not empty; no spaces, control characters, '&', '=' or '#')",
                            e.name
                        ),
                    );
                    ok = false;
                }
                e.name.clone()
            };
            match self.value_match(e, &at) {
                Some(value) => out.push(T::from((name, value))),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The one condition of a `headers` / `query` entry at `at`.
    fn value_match(&mut self, e: &ValueMatchFile, at: &str) -> Option<ValueMatch> {
        let given: Vec<&str> = [
            e.exact.as_ref().map(|_| "exact"),
            e.prefix.as_ref().map(|_| "prefix"),
            e.regex.as_ref().map(|_| "regex"),
            e.present.map(|_| "present"),
            e.absent.map(|_| "absent"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let msg = if given.is_empty() {
                "needs one condition: `exact`, `prefix`, `regex`, `present = true` or `absent = true`"
                    .to_owned()
            } else {
                format!("has one condition; found {}", given.join(" and "))
            };
            self.error(at, msg);
            return None;
        }
        if let Some(v) = &e.exact {
            return Some(ValueMatch::Exact(v.clone()));
        }
        if let Some(v) = &e.prefix {
            return Some(ValueMatch::Prefix(v.clone()));
        }
        if let Some(v) = &e.regex {
            return self
                .pattern(&format!("{at}.regex"), v, false)
                .map(ValueMatch::Regex);
        }
        let (key, set, value) = match e.present {
            Some(p) => ("present", p, ValueMatch::Present),
            None => ("absent", e.absent == Some(true), ValueMatch::Absent),
        };
        if !set {
            self.error(
                format!("{at}.{key}"),
                "can only be `true` (use `present = true` or `absent = true`)",
            );
            return None;
        }
        Some(value)
    }

    /// Compile regex `source` (anchored to the whole input if `whole`).
    fn pattern(&mut self, key: &str, source: &str, whole: bool) -> Option<Pattern> {
        match Pattern::compile(source, whole) {
            Ok(p) => Some(p),
            Err(msg) => {
                self.error(key, msg);
                None
            }
        }
    }
}

impl From<(String, ValueMatch)> for HeaderMatch {
    fn from((name, value): (String, ValueMatch)) -> Self {
        HeaderMatch { name, value }
    }
}

impl From<(String, ValueMatch)> for QueryMatch {
    fn from((name, value): (String, ValueMatch)) -> Self {
        QueryMatch { name, value }
    }
}

impl Builder<'_> {
    /// `retries` of a route (at `path`).
    fn retries(&mut self, f: &RetriesFile, path: &str) -> Option<RetryPolicy> {
        let before = self.errors.len();
        let attempts = self.int_in(&format!("{path}.attempts"), f.attempts, 2, 1, 10) as u32;
        let mut statuses = Vec::new();
        match &f.statuses {
            None => statuses.extend([502, 503, 504]),
            Some(list) => {
                for (i, &s) in list.iter().enumerate() {
                    if (500..=599).contains(&s) || s == 429 || s == 408 {
                        statuses.push(s as u16);
                    } else {
                        self.error(
                            format!("{path}.statuses[{i}]"),
                            format!("{s} is not a status worth retrying (5xx, 408 or 429)"),
                        );
                    }
                }
            }
        }
        let mut grpc_statuses = Vec::new();
        for (i, name) in f.grpc_statuses.iter().flatten().enumerate() {
            match crate::pipeline::grpc::grpc_code(name.trim()) {
                Some(code) => grpc_statuses.push(code),
                None => self.error(
                    format!("{path}.grpc_statuses[{i}]"),
                    format!("unknown gRPC status {name:?} (expected e.g. \"unavailable\", \"resource-exhausted\", \"internal\")"),
                ),
            }
        }
        let per_try_timeout = f.per_try_timeout.as_ref().map(|v| {
            self.timeout(
                &format!("{path}.per_try_timeout"),
                Some(v),
                defaults::ROUTE_TIMEOUT,
            )
        });
        let backoff = self.timeout(
            &format!("{path}.backoff"),
            f.backoff.as_ref(),
            std::time::Duration::from_millis(25),
        );
        let max_backoff = self.timeout(
            &format!("{path}.max_backoff"),
            f.max_backoff.as_ref(),
            std::time::Duration::from_millis(250),
        );
        if max_backoff < backoff {
            self.error(
                format!("{path}.max_backoff"),
                "must not be shorter than backoff",
            );
        }
        let retry_after_max = self.duration(
            &format!("{path}.retry_after_max"),
            f.retry_after_max.as_ref(),
            std::time::Duration::from_secs(1),
        );
        (self.errors.len() == before).then_some(RetryPolicy {
            attempts,
            statuses,
            grpc_statuses,
            per_try_timeout,
            backoff,
            max_backoff,
            retry_after_max,
        })
    }
}
