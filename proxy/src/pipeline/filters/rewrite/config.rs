//! `type = "rewrite"`: the file form and its validation.
//!
//! ```toml
//! [[route.filters]]
//! type = "rewrite"
//! prefix = { from = "/api/v1/", to = "/v1/" }
//!
//! [[route.filters]]
//! type = "rewrite"
//! regex = { pattern = "^/users/([0-9]+)/profile$", replace = "/profile?id=$1" }
//! ```
//!
//! Exactly one of `prefix` and `regex`. Paths written in the config start
//! with `/` and hold no space, control character or `#` (nor `?`: only a
//! regex `replace` may add a query). A regex is compiled
//! here, with a size limit, and every `$1` / `${name}` of `replace` must name
//! a group of `pattern`.

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

use super::filter::{RewriteFilter, Rule};
use crate::pipeline::filters::Problems;

/// Longest `pattern` accepted.
pub const MAX_PATTERN: usize = 4096;
/// Size limit of a compiled regex (and of its lazy DFA cache).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteFile {
    #[serde(default)]
    pub prefix: Option<PrefixFile>,
    #[serde(default)]
    pub regex: Option<RegexFile>,
}

/// `prefix = { from = "/old/", to = "/new/" }` (rewrite and redirect).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table { from, to }")]
pub struct PrefixFile {
    pub from: String,
    pub to: String,
}

/// `regex = { pattern = "^/u/([0-9]+)$", replace = "/user?id=$1" }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table { pattern, replace }")]
pub struct RegexFile {
    pub pattern: String,
    pub replace: String,
}

/// Check a path written in the config: starts with `/`, no byte that cannot
/// appear in a request target (space, controls, DEL), no `#`; a `?` only
/// when `query_ok`. Reports into `p` under `key`.
pub fn check_config_path(key: &str, s: &str, query_ok: bool, p: &mut Problems) -> bool {
    let problem = if !s.starts_with('/') {
        Some("must start with `/`".to_owned())
    } else if let Some(b) = s.bytes().find(|&b| b <= b' ' || b == 0x7f) {
        Some(format!(
            "must not contain spaces or control characters (found byte 0x{b:02x})"
        ))
    } else if s.contains('#') {
        Some("must not contain `#`".to_owned())
    } else if !query_ok && s.contains('?') {
        Some("must not contain `?` (a path has no query)".to_owned())
    } else {
        None
    };
    match problem {
        Some(m) => {
            p.push((key.to_owned(), m));
            false
        }
        None => true,
    }
}

impl PrefixFile {
    /// Check both sides (paths: no `?`), reporting under `key.from` / `key.to`.
    pub fn check(&self, key: &str, p: &mut Problems) -> bool {
        let from = check_config_path(&format!("{key}.from"), &self.from, false, p);
        let to = check_config_path(&format!("{key}.to"), &self.to, false, p);
        from && to
    }
}

/// A capture-group reference in a replacement, as the `regex` crate reads
/// it: `$$` is a `$`; `${name}`; `$name` is the longest run of `[_0-9A-Za-z]`
/// (so `$1a` names the group `1a`). A `$` that starts none of these is kept
/// as is.
pub(super) fn group_refs(replace: &str) -> Vec<&str> {
    let b = replace.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => match replace[i + 2..].find('}') {
                Some(end) => {
                    out.push(&replace[i + 2..i + 2 + end]);
                    i += end + 3;
                }
                None => i += 1,
            },
            _ => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j] == b'_' || b[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                if j > start {
                    out.push(&replace[start..j]);
                }
                i = j.max(i + 1);
            }
        }
    }
    out
}

impl RegexFile {
    fn build(&self, p: &mut Problems) -> Option<(Regex, Box<[u8]>, bool)> {
        let before = p.len();
        if self.pattern.len() > MAX_PATTERN {
            p.push((
                "regex.pattern".into(),
                format!("at most {MAX_PATTERN} bytes (found {})", self.pattern.len()),
            ));
            return None;
        }
        let re = match RegexBuilder::new(&self.pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(re) => Some(re),
            Err(e) => {
                let msg = match e {
                    regex::Error::CompiledTooBig(limit) => {
                        format!("the compiled regex is over the size limit of {limit} bytes")
                    }
                    // The syntax error spans several lines (pattern, caret,
                    // message): keep them on one.
                    e => format!(
                        "invalid regex: {}",
                        e.to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                };
                p.push(("regex.pattern".into(), msg));
                None
            }
        };
        if let Some(b) = self.replace.bytes().find(|&b| b <= b' ' || b == 0x7f) {
            p.push((
                "regex.replace".into(),
                format!("must not contain spaces or control characters (found byte 0x{b:02x})"),
            ));
        } else if self.replace.contains('#') {
            p.push(("regex.replace".into(), "must not contain `#`".into()));
        }
        let refs = group_refs(&self.replace);
        if let Some(re) = &re {
            for r in &refs {
                let known = match r.parse::<usize>() {
                    Ok(n) => n < re.captures_len(),
                    Err(_) => re.capture_names().flatten().any(|n| n == *r),
                };
                if !known {
                    let hint = if r.len() > 1 && r.as_bytes()[0].is_ascii_digit() {
                        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                        format!(
                            " (write `${{{}}}{}` for group {} followed by `{}`)",
                            &r[..digits],
                            &r[digits..],
                            &r[..digits],
                            &r[digits..]
                        )
                    } else {
                        String::new()
                    };
                    p.push((
                        "regex.replace".into(),
                        format!("`{r}` is not a capture group of `pattern`{hint}"),
                    ));
                }
            }
        }
        if p.len() != before {
            return None;
        }
        // Literal only without any `$` (`$$` needs expanding too).
        let literal = !self.replace.contains('$');
        Some((re?, self.replace.as_bytes().into(), literal))
    }
}

impl RewriteFile {
    pub fn build(&self, p: &mut Problems) -> Option<RewriteFilter> {
        match (&self.prefix, &self.regex) {
            (Some(prefix), None) => prefix.check("prefix", p).then(|| RewriteFilter {
                rule: Rule::Prefix {
                    from: prefix.from.as_bytes().into(),
                    to: prefix.to.as_bytes().into(),
                },
            }),
            (None, Some(regex)) => regex.build(p).map(|(re, replace, literal)| RewriteFilter {
                rule: Rule::Regex {
                    re,
                    replace,
                    literal,
                },
            }),
            (Some(_), Some(_)) => {
                p.push((
                    String::new(),
                    "a rewrite takes one of `prefix` and `regex`, not both".into(),
                ));
                None
            }
            (None, None) => {
                p.push((
                    String::new(),
                    "a rewrite needs `prefix = { from, to }` or `regex = { pattern, replace }`"
                        .into(),
                ));
                None
            }
        }
    }
}
