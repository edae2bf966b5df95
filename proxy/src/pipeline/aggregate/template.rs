//! Leg path templates: literal text with `{...}` placeholders.
//!
//! | placeholder      | value                                                    |
//! |------------------|----------------------------------------------------------|
//! | `{name}`         | named capture of the route's `path_regex`                |
//! | `{1}`            | positional capture of the route's `path_regex`           |
//! | `{query.NAME}`   | query parameter `NAME` of the incoming request            |
//! | `{leg.a.b}`      | field `a.b` of leg `leg`'s JSON answer (`0`, `1`… index arrays) |
//!
//! A value is percent-encoded whatever its source: every byte outside the
//! unreserved set (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`, so a value can add
//! no `/`, `?`, `&`, `#`, space or line break. Values from the incoming
//! request (captures, query parameters) are percent-decoded first, so
//! `a%2Fb` stays `a%2Fb` and is not encoded twice; a query parameter's
//! literal `+` is kept as it is (its meaning is the client's). JSON strings
//! are used as they are, numbers and booleans as written; `null`, arrays,
//! objects and absent fields have no value (the leg fails).

use std::borrow::Cow;

/// Where a placeholder's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Named capture of `path_regex`.
    Named(String),
    /// Positional capture (1-based).
    Index(usize),
    /// Query parameter (raw name, matched as sent).
    Query(Box<[u8]>),
    /// A field of leg `leg`'s JSON answer.
    Field { leg: usize, path: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Box<[u8]>),
    Value {
        /// The placeholder as written, braces included (for errors).
        text: Box<str>,
        source: Source,
    },
}

/// A compiled path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// What a template may refer to, at config build.
pub struct Names<'a> {
    /// The route's `path_regex` capture names (index 0 is the whole match),
    /// `None` without a `path_regex`.
    pub captures: Option<Vec<Option<&'a str>>>,
    /// Leg names, in order.
    pub legs: &'a [&'a str],
}

impl Template {
    /// Compile `text`; the error is a sentence for a config error.
    pub fn parse(text: &str, names: &Names<'_>) -> Result<Template, String> {
        if !text.starts_with('/') {
            return Err(format!("must start with `/` (found {text:?})"));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let open = rest.find('{');
            let close = rest.find('}');
            match (open, close) {
                (None, None) => {
                    pieces.push(Piece::Literal(literal(rest)?));
                    break;
                }
                (_, Some(c)) if open.is_none_or(|o| c < o) => {
                    return Err("unbalanced `}`".into());
                }
                (Some(o), _) => {
                    if o > 0 {
                        pieces.push(Piece::Literal(literal(&rest[..o])?));
                    }
                    let Some(len) = rest[o..].find('}') else {
                        return Err(format!("unclosed `{{` in {text:?}"));
                    };
                    let inner = &rest[o + 1..o + len];
                    if inner.contains('{') {
                        return Err(format!("unclosed `{{` in {text:?}"));
                    }
                    let source = placeholder(inner, names)?;
                    pieces.push(Piece::Value {
                        text: format!("{{{inner}}}").into(),
                        source,
                    });
                    rest = &rest[o + len + 1..];
                }
                (None, Some(_)) => unreachable!("handled above"),
            }
        }
        Ok(Template {
            source: text.to_owned(),
            pieces,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every placeholder's source.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Value { source, .. } => Some(source),
            Piece::Literal(_) => None,
        })
    }

    /// Append the path to `out`; `value` finds a placeholder's raw value.
    /// Err: the placeholder that has none (`missing value for {x}`).
    pub fn render<'v>(
        &self,
        out: &mut Vec<u8>,
        mut value: impl FnMut(&Source) -> Option<Value<'v>>,
    ) -> Result<(), String> {
        // In the path, a value must stay one non-empty segment: `..`, `.`
        // or nothing would move the leg to another resource
        // (`/users/{id}/profile` with id `..`). In the query they are
        // plain data.
        let mut in_query = false;
        for p in &self.pieces {
            match p {
                Piece::Literal(l) => {
                    in_query |= l.contains(&b'?');
                    out.extend_from_slice(l);
                }
                Piece::Value { text, source } => match value(source) {
                    Some(v) => {
                        let start = out.len();
                        push_value(out, &v);
                        let pushed = &out[start..];
                        if !in_query && matches!(pushed, b"" | b"." | b"..") {
                            return Err(format!(
                                "unsafe value for {text} in the path: empty, \".\" or \"..\""
                            ));
                        }
                    }
                    None => return Err(format!("missing value for {text}")),
                },
            }
        }
        Ok(())
    }
}

/// A placeholder's value before encoding.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// From the incoming request: percent-decoded, then encoded;
    /// `keep_plus`: a literal `+` stays (query parameters).
    Request { raw: &'a [u8], keep_plus: bool },
    /// From a JSON answer: encoded as it is.
    Plain(Cow<'a, [u8]>),
}

fn push_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Plain(bytes) => bytes.iter().for_each(|&b| push_encoded(out, b)),
        Value::Request { raw, keep_plus } => {
            let mut i = 0;
            while i < raw.len() {
                let b = raw[i];
                if b == b'%' && i + 2 < raw.len() {
                    if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                        push_encoded(out, h << 4 | l);
                        i += 3;
                        continue;
                    }
                }
                if b == b'+' && *keep_plus {
                    out.push(b'+');
                } else {
                    push_encoded(out, b);
                }
                i += 1;
            }
        }
    }
}

fn push_encoded(out: &mut Vec<u8>, b: u8) {
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
        out.push(b);
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Literal template text: visible ASCII without `#` (a fragment is never
/// sent); encode anything else yourself.
fn literal(s: &str) -> Result<Box<[u8]>, String> {
    match s.bytes().find(|&b| !(0x21..0x7f).contains(&b) || b == b'#') {
        None => Ok(s.as_bytes().into()),
        Some(b) => Err(format!(
            "{:?} is not allowed in a path (visible ASCII without `#`; percent-encode the rest)",
            b as char
        )),
    }
}

/// What `{inner}` refers to.
fn placeholder(inner: &str, names: &Names<'_>) -> Result<Source, String> {
    if inner.is_empty() {
        return Err("empty placeholder {}".into());
    }
    let unknown = |hint: String| format!("unknown placeholder {{{inner}}}: {hint}");
    match inner.split_once('.') {
        None => {
            let Some(caps) = &names.captures else {
                return Err(unknown(
                    "captures need a `path_regex` on the route".to_owned(),
                ));
            };
            if let Ok(n) = inner.parse::<usize>() {
                if n == 0 || n >= caps.len() {
                    return Err(unknown(format!(
                        "`path_regex` has {} capture group(s), numbered from 1",
                        caps.len() - 1
                    )));
                }
                return Ok(Source::Index(n));
            }
            if caps.iter().flatten().any(|c| *c == inner) {
                return Ok(Source::Named(inner.to_owned()));
            }
            let named: Vec<&str> = caps.iter().flatten().copied().collect();
            Err(unknown(if named.is_empty() {
                "`path_regex` has no named captures".to_owned()
            } else {
                format!("named captures are {}", named.join(", "))
            }))
        }
        Some(("query", name)) => {
            if name.is_empty()
                || name
                    .bytes()
                    .any(|b| matches!(b, b'&' | b'=' | b'#') || b <= b' ')
            {
                return Err(format!("{{{inner}}}: not a valid query parameter name"));
            }
            Ok(Source::Query(name.as_bytes().into()))
        }
        Some((leg, field)) => {
            let Some(i) = names.legs.iter().position(|l| *l == leg) else {
                return Err(unknown(format!(
                    "no leg named {leg:?} (legs: {}; query parameters are {{query.NAME}})",
                    names.legs.join(", ")
                )));
            };
            let path: Vec<String> = field.split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("{{{inner}}}: empty field name"));
            }
            Ok(Source::Field { leg: i, path })
        }
    }
}

/// The scalar at `path` in `v`, as placeholder bytes.
pub fn json_field<'a>(v: &'a serde_json::Value, path: &[String]) -> Option<Cow<'a, [u8]>> {
    let mut at = v;
    for key in path {
        at = match at {
            serde_json::Value::Object(m) => m.get(key.as_str())?,
            serde_json::Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match at {
        serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_bytes())),
        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string().into_bytes())),
        serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { b"true" } else { b"false" })),
        _ => None,
    }
}

/// The raw (not decoded) value of query parameter `name` in a target.
pub fn query_value<'a>(target: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let q = memchr::memchr(b'?', target).map(|i| &target[i + 1..])?;
    let q = memchr::memchr(b'#', q).map_or(q, |i| &q[..i]);
    q.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name).then_some(v)
    })
}
