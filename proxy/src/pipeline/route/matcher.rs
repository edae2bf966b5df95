//! The matchers of a route beyond the host: path (prefix, exact, segment
//! prefix, regex), methods, headers and query parameters. The types are the
//! config's ([`crate::config::PathMatch`] and friends, compiled at config
//! time); this file says what they match.
//!
//! - Header names are case-insensitive. A header sent several times (several
//!   field lines) matches if any one of its values does; a value is a whole
//!   field line, not split at commas. `absent` holds when no line has the
//!   name.
//! - Query parameters come from the request target's query string, split at
//!   `&`; `name=value`, or `name` alone (value empty). Names and values are
//!   compared raw: not percent-decoded, `+` is not a space. A parameter sent
//!   several times matches if any value does.
//! - `exact` and `prefix` compare bytes (case-sensitive). Header and query
//!   regexes are searched in the value (anchor them with `^…$`); a
//!   `path_regex` must match the whole path.

use crate::config::{HeaderMatch, PathMatch, Pattern, QueryMatch, ValueMatch};
use crate::http::HeaderSpan;

/// Compiled regexes may not grow past this (`RegexBuilder::size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Pattern {
    /// A regex as a route matcher uses it: `^(?:source)$` when it must match
    /// the `whole` input, else searched; at most [`REGEX_SIZE_LIMIT`]
    /// compiled. The error is a sentence for a config error.
    pub fn compile(source: &str, whole: bool) -> Result<Pattern, String> {
        let build = |text: &str| {
            regex::bytes::RegexBuilder::new(text)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| regex_error(source, e))
        };
        // Checked on its own first: wrapping must not change how it parses
        // (`a)|(b` would escape the group).
        let regex = build(source)?;
        let regex = if whole {
            build(&format!("^(?:{source})$"))?
        } else {
            regex
        };
        Ok(Pattern {
            source: source.to_owned(),
            regex,
        })
    }
}

fn regex_error(source: &str, e: regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("regex {source:?} is too large (compiled over {limit} bytes)")
        }
        regex::Error::Syntax(text) => {
            // The crate's text draws a caret under the pattern; keep the
            // "error: ..." line.
            let reason = text
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(text.as_str())
                .trim()
                .to_owned();
            format!("invalid regex {source:?}: {reason}")
        }
        other => format!("invalid regex {source:?}: {other}"),
    }
}

/// The header fields of a request, for [`HeaderMatch`]es.
#[derive(Debug, Clone, Copy)]
pub struct RequestHeaders<'a> {
    buf: &'a [u8],
    fields: &'a [HeaderSpan],
}

impl<'a> RequestHeaders<'a> {
    /// No headers at all.
    pub const NONE: RequestHeaders<'static> = RequestHeaders {
        buf: &[],
        fields: &[],
    };

    /// The fields of a parsed head (`RequestHead::headers`) in `buf`.
    pub fn new(buf: &'a [u8], fields: &'a [HeaderSpan]) -> Self {
        RequestHeaders { buf, fields }
    }

    /// Every field as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.fields
            .iter()
            .map(|h| (h.name.get(self.buf), h.value.get(self.buf)))
    }

    /// The values of every field named `name` (lower-case), in order.
    pub fn values<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = &'a [u8]> + 's {
        self.fields
            .iter()
            .filter(move |h| h.name.get(self.buf).eq_ignore_ascii_case(name))
            .map(|h| h.value.get(self.buf))
    }
}

impl PathMatch {
    /// Whether the request path (no query) matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            PathMatch::Prefix(p) => path.starts_with(p.as_bytes()),
            PathMatch::Exact(p) => path == p.as_bytes(),
            PathMatch::SegmentPrefix(p) => path
                .strip_prefix(p.as_bytes())
                .is_some_and(at_segment_boundary),
            PathMatch::Regex(p) => p.regex.is_match(path),
        }
    }

    /// The matcher as written in the config: key and value.
    pub fn config_key(&self) -> (&'static str, &str) {
        match self {
            PathMatch::Prefix(p) => ("path_prefix", p),
            PathMatch::Exact(p) => ("path", p),
            PathMatch::SegmentPrefix(p) if p.is_empty() => ("path_segment_prefix", "/"),
            PathMatch::SegmentPrefix(p) => ("path_segment_prefix", p),
            PathMatch::Regex(p) => ("path_regex", &p.source),
        }
    }
}

/// What is left of a path after a segment prefix: nothing, or a new segment.
pub(super) fn at_segment_boundary(rest: &[u8]) -> bool {
    rest.first().is_none_or(|&b| b == b'/')
}

impl ValueMatch {
    /// Whether the values a header or parameter was sent with (none if it
    /// was not sent) satisfy the condition.
    fn matches<'v>(&self, mut values: impl Iterator<Item = &'v [u8]>) -> bool {
        match self {
            ValueMatch::Present => values.next().is_some(),
            ValueMatch::Absent => values.next().is_none(),
            ValueMatch::Exact(want) => values.any(|v| v == want.as_bytes()),
            ValueMatch::Prefix(want) => values.any(|v| v.starts_with(want.as_bytes())),
            ValueMatch::Regex(p) => values.any(|v| p.regex.is_match(v)),
        }
    }
}

impl ValueMatch {
    /// The condition as written in the config: key and value (`None` for
    /// `present = true` / `absent = true`).
    pub fn config_key(&self) -> (&'static str, Option<&str>) {
        match self {
            ValueMatch::Exact(v) => ("exact", Some(v)),
            ValueMatch::Prefix(v) => ("prefix", Some(v)),
            ValueMatch::Regex(p) => ("regex", Some(&p.source)),
            ValueMatch::Present => ("present", None),
            ValueMatch::Absent => ("absent", None),
        }
    }
}

impl HeaderMatch {
    pub fn matches(&self, headers: &RequestHeaders<'_>) -> bool {
        self.value.matches(headers.values(self.name.as_bytes()))
    }
}

impl QueryMatch {
    /// `query`: the query string (after `?`), if the target has one.
    pub fn matches(&self, query: Option<&[u8]>) -> bool {
        let name = self.name.as_bytes();
        let values = query
            .unwrap_or_default()
            .split(|&b| b == b'&')
            .filter_map(move |pair| {
                let (n, v) = match memchr::memchr(b'=', pair) {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &b""[..]),
                };
                (n == name).then_some(v)
            });
        self.value.matches(values)
    }
}

/// Whether `method` is one of `methods` (empty: any method).
pub fn method_matches(methods: &[String], method: &[u8]) -> bool {
    methods.is_empty() || methods.iter().any(|m| m.as_bytes() == method)
}

/// The query string of a request target (after the first `?`, up to a
/// `#`), if it has one.
pub fn target_query(target: &[u8]) -> Option<&[u8]> {
    let start = memchr::memchr(b'?', target)? + 1;
    let rest = &target[start..];
    Some(match memchr::memchr(b'#', rest) {
        Some(i) => &rest[..i],
        None => rest,
    })
}

/// Bytes every path matching regex `source` (matched as `^(?:source)$`)
/// starts with: the literal characters before the first metacharacter, less
/// the last one if a repetition follows it. Empty when unsure (an
/// alternation anywhere, a leading group, flag or class, an escape). The
/// index files a `path_regex` route under this prefix.
pub(super) fn regex_literal_prefix(source: &str) -> &str {
    if source.contains('|') {
        return "";
    }
    let end = source
        .find(|c: char| "\\.+*?()[]{}^$|#".contains(c) || c.is_whitespace())
        .unwrap_or(source.len());
    let literal = &source[..end];
    match source[end..].chars().next() {
        Some('?' | '*' | '+' | '{') => match literal.char_indices().next_back() {
            Some((i, _)) => &literal[..i],
            None => literal,
        },
        _ => literal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_pattern(source: &str, whole: bool) -> Result<Pattern, String> {
        Pattern::compile(source, whole)
    }

    fn headers(raw: &[(&str, &str)]) -> (Vec<u8>, Vec<HeaderSpan>) {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for (n, v) in raw {
            let span = |buf: &mut Vec<u8>, s: &str| {
                let start = buf.len() as u32;
                buf.extend_from_slice(s.as_bytes());
                crate::http::Span {
                    start,
                    end: buf.len() as u32,
                }
            };
            let name = span(&mut buf, n);
            let value = span(&mut buf, v);
            spans.push(HeaderSpan { name, value });
        }
        (buf, spans)
    }

    fn header(name: &str, value: ValueMatch) -> HeaderMatch {
        HeaderMatch {
            name: name.into(),
            value,
        }
    }

    fn query(name: &str, value: ValueMatch) -> QueryMatch {
        QueryMatch {
            name: name.into(),
            value,
        }
    }

    fn regex(source: &str) -> ValueMatch {
        ValueMatch::Regex(compile_pattern(source, false).unwrap())
    }

    #[test]
    fn path_kinds() {
        let prefix = PathMatch::Prefix("/api".into());
        assert!(prefix.matches(b"/api"));
        assert!(prefix.matches(b"/apix"));
        assert!(!prefix.matches(b"/ap"));

        let exact = PathMatch::Exact("/api".into());
        assert!(exact.matches(b"/api"));
        assert!(!exact.matches(b"/api/"));
        assert!(!exact.matches(b"/apix"));

        let seg = PathMatch::SegmentPrefix("/api".into());
        assert!(seg.matches(b"/api"));
        assert!(seg.matches(b"/api/"));
        assert!(seg.matches(b"/api/v1"));
        assert!(!seg.matches(b"/apix"));
        assert!(!seg.matches(b"/ap"));
        let root = PathMatch::SegmentPrefix(String::new());
        assert!(root.matches(b"/anything"));
        assert!(root.matches(b""));
        assert!(!root.matches(b"*"));
        assert_eq!(root.config_key(), ("path_segment_prefix", "/"));

        let re = PathMatch::Regex(compile_pattern("/users/[0-9]+", true).unwrap());
        assert!(re.matches(b"/users/42"));
        // Anchored: the whole path must match.
        assert!(!re.matches(b"/users/42/x"));
        assert!(!re.matches(b"/v1/users/42"));
        assert_eq!(re.config_key(), ("path_regex", "/users/[0-9]+"));
        // Alternation stays inside the anchors.
        let alt = PathMatch::Regex(compile_pattern("/a|/b", true).unwrap());
        assert!(alt.matches(b"/b"));
        assert!(!alt.matches(b"/bx"));
        assert!(!alt.matches(b"x/a"));
        // Non-UTF-8 paths are matched as bytes.
        let any = PathMatch::Regex(compile_pattern("/(?-u:.)*", true).unwrap());
        assert!(any.matches(b"/\xff\xfe"));
    }

    #[test]
    fn methods() {
        let m = vec!["GET".to_string(), "POST".to_string()];
        assert!(method_matches(&m, b"GET"));
        assert!(method_matches(&m, b"POST"));
        assert!(!method_matches(&m, b"get"));
        assert!(!method_matches(&m, b"PUT"));
        assert!(method_matches(&[], b"ANYTHING"));
    }

    #[test]
    fn header_conditions() {
        let (buf, spans) = headers(&[
            ("Host", "a.test"),
            ("X-Canary", "1"),
            ("x-env", "staging"),
            ("X-Id", "abc"),
            ("x-id", "123"),
            ("X-Debug", ""),
        ]);
        let h = RequestHeaders::new(&buf, &spans);
        let yes = [
            header("x-canary", ValueMatch::Exact("1".into())),
            header("x-env", ValueMatch::Prefix("stag".into())),
            header("x-id", regex("^[0-9]+$")),
            header("x-debug", ValueMatch::Present),
            header("x-debug", ValueMatch::Exact(String::new())),
            header("x-block", ValueMatch::Absent),
        ];
        for m in &yes {
            assert!(m.matches(&h), "{m:?}");
            assert!(!m.matches(&RequestHeaders::NONE) || matches!(m.value, ValueMatch::Absent));
        }
        let no = [
            header("x-canary", ValueMatch::Exact("2".into())),
            header("x-canary", ValueMatch::Exact("1 ".into())),
            header("x-env", ValueMatch::Prefix("prod".into())),
            header("x-env", ValueMatch::Exact("STAGING".into())),
            header("x-id", regex("^[a-z]{4}$")),
            header("x-missing", ValueMatch::Present),
            header("x-debug", ValueMatch::Absent),
        ];
        for m in &no {
            assert!(!m.matches(&h), "{m:?}");
        }
        // The header regex is searched, not anchored.
        assert!(header("x-env", regex("gin")).matches(&h));
    }

    #[test]
    fn query_conditions() {
        let q = Some(&b"v=2&debug&id=12&id=x&e=&enc=a%20b&plus=a+b&&=z"[..]);
        let yes = [
            query("v", ValueMatch::Exact("2".into())),
            query("debug", ValueMatch::Present),
            query("debug", ValueMatch::Exact(String::new())),
            query("e", ValueMatch::Present),
            query("id", regex("^[0-9]+$")),
            query("id", ValueMatch::Exact("x".into())),
            query("enc", ValueMatch::Exact("a%20b".into())),
            query("plus", ValueMatch::Prefix("a+".into())),
            query("nope", ValueMatch::Absent),
        ];
        for m in &yes {
            assert!(m.matches(q), "{m:?}");
        }
        let no = [
            query("v", ValueMatch::Exact("3".into())),
            query("V", ValueMatch::Present),
            query("enc", ValueMatch::Exact("a b".into())),
            query("id", regex("^[a-z]{2}$")),
            query("debug", ValueMatch::Absent),
            query("missing", ValueMatch::Present),
        ];
        for m in &no {
            assert!(!m.matches(q), "{m:?}");
        }
        assert!(!query("v", ValueMatch::Present).matches(None));
        assert!(query("v", ValueMatch::Absent).matches(None));
        assert!(query("v", ValueMatch::Absent).matches(Some(b"")));
    }

    #[test]
    fn query_of_targets() {
        assert_eq!(target_query(b"/a?x=1&y"), Some(&b"x=1&y"[..]));
        assert_eq!(target_query(b"/a?"), Some(&b""[..]));
        assert_eq!(target_query(b"/a"), None);
        assert_eq!(target_query(b"/a?x=1#frag"), Some(&b"x=1"[..]));
        assert_eq!(target_query(b"http://h.test/a?q=2"), Some(&b"q=2"[..]));
        assert_eq!(target_query(b"/a?x=?"), Some(&b"x=?"[..]));
    }

    #[test]
    fn regex_literal_prefixes() {
        let cases = [
            ("/users/[0-9]+", "/users/"),
            ("/users/\\d+", "/users/"),
            ("/api/v1/items", "/api/v1/items"),
            ("/api/v1/items/?", "/api/v1/items"),
            ("/ab*", "/a"),
            ("/ab+", "/a"),
            ("/ab{2}", "/a"),
            ("/é*", "/"),
            ("/ü/x.y", "/ü/x"),
            ("/a|/b", ""),
            ("(?i)/api", ""),
            ("^/api", ""),
            ("/api(/.*)?", "/api"),
            ("/a b", "/a"),
            (".*", ""),
            ("", ""),
        ];
        for (source, want) in cases {
            assert_eq!(regex_literal_prefix(source), want, "{source}");
            // Every prefix claimed is a prefix of every match.
            let p = compile_pattern(source, true).unwrap();
            for probe in [
                "/users/12",
                "/api/v1/items",
                "/ab",
                "/abb",
                "/a b",
                "/ü/x.y",
            ] {
                if p.regex.is_match(probe.as_bytes()) {
                    assert!(probe.starts_with(want), "{source} matches {probe}");
                }
            }
        }
    }
}
