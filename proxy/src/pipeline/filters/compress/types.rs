//! `content_types`: which media types are compressed.
//!
//! A rule is an exact media type (`"text/html"`), a whole top-level type
//! (`"text/*"`), a structured-syntax suffix (`"+json"`: any `type/x+json`)
//! or `"*"` / `"*/*"` (everything with a Content-Type). A response's Content-Type is
//! matched on its media type, parameters (`; charset=utf-8`) left out,
//! case-insensitively.

/// The default list: text formats browsers and API clients fetch.
pub const DEFAULT_TYPES: [&str; 10] = [
    "text/html",
    "text/plain",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/xml",
    "image/svg+xml",
    "+json",
    "+xml",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `type/subtype`, lower case.
    Exact(Box<[u8]>),
    /// `type/` (written `type/*`), lower case.
    TopLevel(Box<[u8]>),
    /// `+suffix`, lower case.
    Suffix(Box<[u8]>),
    Any,
}

/// A compiled `content_types` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeList {
    rules: Box<[Rule]>,
}

impl TypeList {
    /// Compile `entries`; the message names what is wrong with an entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TypeList, (usize, String)> {
        let mut rules = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let e = e.as_ref().trim().to_ascii_lowercase();
            let bad = |why: &str| (i, format!("{e:?} {why}"));
            let rule = if e == "*" || e == "*/*" {
                Rule::Any
            } else if let Some(suffix) = e.strip_prefix('+') {
                if !is_token(suffix) {
                    return Err(bad("is not a valid suffix (\"+json\")"));
                }
                Rule::Suffix(e.as_bytes().into())
            } else {
                let Some((top, sub)) = e.split_once('/') else {
                    return Err(bad(
                        "is not a media type: write \"type/subtype\", \"type/*\", \"+suffix\" or \"*\"",
                    ));
                };
                if !is_token(top)
                    || top.contains('*')
                    || !(sub == "*" || (is_token(sub) && !sub.contains('*')))
                {
                    return Err(bad(
                        "is not a media type: write \"type/subtype\", \"type/*\", \"+suffix\" or \"*\"",
                    ));
                }
                if sub == "*" {
                    Rule::TopLevel(format!("{top}/").into_bytes().into())
                } else {
                    Rule::Exact(e.as_bytes().into())
                }
            };
            rules.push(rule);
        }
        Ok(TypeList {
            rules: rules.into(),
        })
    }

    pub fn default_list() -> TypeList {
        TypeList::parse(&DEFAULT_TYPES).expect("the default list parses")
    }

    /// Whether a response with this Content-Type value is compressed.
    pub fn matches(&self, content_type: &[u8]) -> bool {
        let media = media_type(content_type);
        if media.is_empty() {
            return false;
        }
        self.rules.iter().any(|r| match r {
            Rule::Any => true,
            Rule::Exact(t) => media.eq_ignore_ascii_case(t),
            Rule::TopLevel(p) => media.len() > p.len() && media[..p.len()].eq_ignore_ascii_case(p),
            Rule::Suffix(s) => {
                media.len() > s.len()
                    && media[media.len() - s.len()..].eq_ignore_ascii_case(s)
                    && media.contains(&b'/')
            }
        })
    }
}

/// The media type of a Content-Type value: before any `;`, without
/// surrounding whitespace.
fn media_type(value: &[u8]) -> &[u8] {
    let end = memchr::memchr(b';', value).unwrap_or(value.len());
    let v = &value[..end];
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let stop = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..stop]
}

fn is_token(s: &str) -> bool {
    crate::http::edits::is_token(s.as_bytes())
}
