//! The TOML text with spans: syntax errors, section-by-section
//! deserialisation into [`FileConfig`], and key path → line lookups.
//!
//! The document is parsed once into toml's spanned tree ([`DeTable`]). The
//! same tree serves two purposes:
//!
//! * each top-level section and each `[[listener]]` / `[[route]]` /
//!   `[[cluster]]` element is deserialised on its own (through
//!   `serde_path_to_error`, for the key path), so one bad element does not hide
//!   the problems in the others;
//! * the build step looks up the line of the key paths it reports
//!   (`cluster[1].endpoints[0]` → line of that array element).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::{ConfigError, ConfigErrors};
use super::file::{
    AccessLogFile, AdminFile, ClusterFile, EtcdFile, FileConfig, LimitsFile, ListenerFile,
    ReloadFile, RouteFile, RuntimeFile, StatsFile, TracingFile,
};

/// Top-level keys, in documentation order.
const SECTIONS: [&str; 11] = [
    "runtime",
    "limits",
    "listener",
    "route",
    "cluster",
    "admin",
    "stats",
    "access_log",
    "tracing",
    "reload",
    "etcd",
];

/// A parsed document: the text plus its spanned tree.
pub struct SourceMap<'a> {
    text: &'a str,
    root: Spanned<DeValue<'a>>,
}

/// Elements that failed to deserialise. [`FileConfig`] holds a placeholder
/// (carrying the element's `name` when it could be read) at their index so
/// that indices and paths stay those of the file; the build step skips them
/// except for name lookups, and does not report consequential errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    pub listeners: Vec<usize>,
    pub routes: Vec<usize>,
    pub clusters: Vec<usize>,
    /// Array sections (`"listener"`, `"route"`, `"cluster"`) that could not
    /// be read at all (not an array): names in them are unknown, so the
    /// build step does not report references to them. Also `"etcd"` when
    /// `[etcd]` could not be read (clusters using it are not reported).
    pub sections: Vec<&'static str>,
}

impl Skipped {
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
            && self.routes.is_empty()
            && self.clusters.is_empty()
            && self.sections.is_empty()
    }

    /// The whole `section` could not be read.
    pub fn section(&self, section: &str) -> bool {
        self.sections.contains(&section)
    }
}

/// The result of [`SourceMap::file_config`].
pub struct Deserialized {
    pub file: FileConfig,
    pub skipped: Skipped,
    /// Unknown keys, wrong types, missing keys: with path and line.
    pub errors: Vec<ConfigError>,
}

impl<'a> SourceMap<'a> {
    /// Parse `text`; TOML syntax errors are returned with their lines (path
    /// `syntax`).
    pub fn parse(text: &'a str) -> Result<SourceMap<'a>, ConfigErrors> {
        let (root, errors) = DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            let mut list = ConfigErrors::new();
            for e in errors {
                let line = e.span().map(|s| line_at(text, s.start));
                list.push(ConfigError {
                    path: "syntax".to_owned(),
                    line,
                    message: e.message().trim().to_owned(),
                });
            }
            list.sort();
            return Err(list);
        }
        let span = root.span();
        let root = Spanned::new(span, DeValue::Table(root.into_inner()));
        Ok(SourceMap { text, root })
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// 1-based line of a byte offset.
    pub fn line_at(&self, offset: usize) -> usize {
        line_at(self.text, offset)
    }

    /// The line of a key path such as `listener[0].tls.cert`: the line of
    /// its value when present, else of the nearest enclosing table or array
    /// element that exists (so a missing key points at its table's header).
    /// `None` for an empty path or when not even the first segment exists.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.span_of(path).map(|s| self.line_at(s.start))
    }

    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let segments = split_path(path)?;
        let mut node = &self.root;
        let mut found: Option<Range<usize>> = None;
        for segment in segments {
            let next = match (segment, node.get_ref()) {
                (Segment::Key(k), DeValue::Table(t)) => t.get(k),
                (Segment::Index(i), DeValue::Array(a)) => a.get(i),
                _ => None,
            };
            match next {
                Some(n) => {
                    found = Some(n.span());
                    node = n;
                }
                None => break,
            }
        }
        found
    }

    /// Deserialise every section on its own, collecting every error.
    pub fn file_config(&self) -> Deserialized {
        let mut out = Deserialized {
            file: FileConfig::default(),
            skipped: Skipped::default(),
            errors: Vec::new(),
        };
        let DeValue::Table(root) = self.root.get_ref() else {
            return out;
        };
        // Deterministic order: the sections in documentation order, then
        // unknown keys.
        let mut keys: BTreeMap<usize, (&str, &Spanned<DeValue<'a>>, Range<usize>)> =
            BTreeMap::new();
        for (k, v) in root.iter() {
            let name: &str = k.get_ref();
            let rank = SECTIONS
                .iter()
                .position(|s| *s == name)
                .unwrap_or(SECTIONS.len() + keys.len());
            keys.insert(rank, (name, v, k.span()));
        }
        for (name, value, key_span) in keys.into_values() {
            match name {
                "runtime" => {
                    if let Some(v) = self.part::<RuntimeFile>(value, name, &mut out.errors) {
                        out.file.runtime = v;
                    }
                }
                "limits" => {
                    if let Some(v) = self.part::<LimitsFile>(value, name, &mut out.errors) {
                        out.file.limits = v;
                    }
                }
                "admin" => {
                    out.file.admin = Some(
                        self.part::<AdminFile>(value, name, &mut out.errors)
                            .unwrap_or_default(),
                    );
                }
                "stats" => {
                    if let Some(v) = self.part::<StatsFile>(value, name, &mut out.errors) {
                        out.file.stats = v;
                    }
                }
                "access_log" => {
                    out.file.access_log = Some(
                        self.part::<AccessLogFile>(value, name, &mut out.errors)
                            .unwrap_or_default(),
                    );
                }
                "tracing" => {
                    if let Some(v) = self.part::<TracingFile>(value, name, &mut out.errors) {
                        out.file.tracing = v;
                    }
                }
                "reload" => {
                    if let Some(v) = self.part::<ReloadFile>(value, name, &mut out.errors) {
                        out.file.reload = v;
                    }
                }
                "etcd" => match self.part::<EtcdFile>(value, name, &mut out.errors) {
                    Some(v) => out.file.etcd = Some(v),
                    // Clusters naming a prefix are not reported again.
                    None => out.skipped.sections.push("etcd"),
                },
                "listener" => {
                    out.file.listener = self.elements(value, name, &mut out, |name| ListenerFile {
                        name,
                        ..ListenerFile::default()
                    });
                }
                "route" => {
                    out.file.route = self.elements(value, name, &mut out, |name| RouteFile {
                        name: Some(name),
                        ..RouteFile::default()
                    });
                }
                "cluster" => {
                    out.file.cluster = self.elements(value, name, &mut out, |name| ClusterFile {
                        name,
                        ..ClusterFile::default()
                    });
                }
                unknown => {
                    let mut message = format!(
                        "unknown key `{unknown}`; expected one of {}",
                        SECTIONS.map(|s| format!("`{s}`")).join(", ")
                    );
                    if let Some(s) = SECTIONS
                        .iter()
                        .find(|s| unknown.eq_ignore_ascii_case(&format!("{s}s")))
                    {
                        message = format!("unknown key `{unknown}` (did you mean `{s}`?)");
                    }
                    out.errors.push(ConfigError {
                        path: unknown.to_owned(),
                        line: Some(self.line_at(key_span.start)),
                        message,
                    });
                }
            }
        }
        out
    }

    /// Deserialise an array-of-tables section element by element. Failed
    /// elements become placeholders built by `placeholder(name)`.
    fn elements<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'a>>,
        section: &str,
        out: &mut Deserialized,
        placeholder: impl Fn(String) -> T,
    ) -> Vec<T> {
        let DeValue::Array(items) = value.get_ref() else {
            if let Some(s) = SECTIONS.iter().find(|s| **s == section) {
                out.skipped.sections.push(s);
            }
            out.errors.push(ConfigError {
                path: section.to_owned(),
                line: Some(self.line_at(value.span().start)),
                message: format!(
                    "`{section}` must be an array of tables: write [[{section}]] (double brackets) before each entry"
                ),
            });
            return Vec::new();
        };
        let mut result = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{section}[{i}]");
            match self.part::<T>(item, &path, &mut out.errors) {
                Some(v) => result.push(v),
                None => {
                    let name = match item.get_ref() {
                        DeValue::Table(t) => t
                            .get("name")
                            .and_then(|n| n.get_ref().as_str())
                            .unwrap_or_default()
                            .to_owned(),
                        _ => String::new(),
                    };
                    match section {
                        "listener" => out.skipped.listeners.push(i),
                        "route" => out.skipped.routes.push(i),
                        _ => out.skipped.clusters.push(i),
                    }
                    result.push(placeholder(name));
                }
            }
        }
        result
    }

    /// Deserialise one value; on failure record the error (with the full
    /// key path and line) and return `None`.
    fn part<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'a>>,
        prefix: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let de = ValueDeserializer::from(value.clone());
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Some(v),
            Err(e) => {
                let mut path = prefix.to_owned();
                for segment in e.path().iter() {
                    match segment {
                        serde_path_to_error::Segment::Seq { index } => {
                            path.push_str(&format!("[{index}]"))
                        }
                        serde_path_to_error::Segment::Map { key } => {
                            path.push('.');
                            path.push_str(key);
                        }
                        serde_path_to_error::Segment::Enum { variant } => {
                            path.push('.');
                            path.push_str(variant);
                        }
                        serde_path_to_error::Segment::Unknown => {}
                    }
                }
                let inner = e.into_inner();
                let (path, message) = rewrite_message(path, inner.message());
                let line = inner
                    .span()
                    .map(|s| self.line_at(s.start))
                    .or_else(|| self.line_of(&path));
                errors.push(ConfigError {
                    path,
                    line,
                    message,
                });
                None
            }
        }
    }
}

/// Make serde's messages read like config messages.
fn rewrite_message(mut path: String, message: &str) -> (String, String) {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        path.push('.');
        path.push_str(field);
        return (path, format!("missing required key `{field}`"));
    }
    let mut message = message.to_owned();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        message = format!(
            "unknown key {}",
            rest.replacen(", expected", "; expected", 1)
        );
    }
    for (from, to) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected an integer"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        message = message.replace(from, to);
    }
    (path, message)
}

/// 1-based line of a byte offset in `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

/// `a.b[1][2].c` → `a`, `b`, 1, 2, `c`. `None` if malformed.
fn split_path(path: &str) -> Option<Vec<Segment<'_>>> {
    if path.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            out.push(Segment::Index(r[..close].parse().ok()?));
            rest = &r[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
[runtime]
workers = 2

[[listener]]
name = \"a\"
address = \"127.0.0.1:1\"

[[cluster]]
name = \"c\"
endpoints = [
  \"127.0.0.1:2\",
  \"127.0.0.1:3\",
]
tls = { ca = \"ca.pem\" }
";

    #[test]
    fn line_lookup() {
        let map = SourceMap::parse(TEXT).unwrap();
        assert_eq!(map.line_of("runtime.workers"), Some(2));
        assert_eq!(map.line_of("runtime"), Some(1));
        assert_eq!(map.line_of("listener[0]"), Some(4));
        assert_eq!(map.line_of("listener[0].address"), Some(6));
        // Missing key: the table it would be in.
        assert_eq!(map.line_of("listener[0].tls"), Some(4));
        assert_eq!(map.line_of("cluster[0].endpoints[1]"), Some(12));
        assert_eq!(map.line_of("cluster[0].tls.ca"), Some(14));
        assert_eq!(map.line_of("limits.max_headers"), None);
        assert_eq!(map.line_of(""), None);
        assert_eq!(map.line_of("cluster[x]"), None);
    }

    #[test]
    fn syntax_errors_have_lines() {
        let e = SourceMap::parse("a = 1\nb = \n").err().unwrap();
        assert_eq!(e.0[0].path, "syntax");
        assert_eq!(e.0[0].line, Some(2));
    }
}
