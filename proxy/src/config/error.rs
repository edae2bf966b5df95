//! Configuration errors: key path + line + message.
//!
//! A [`ConfigError`] displays as `path (line N): message` (or `path: message`
//! when the line is unknown); [`ConfigErrors`] displays one error per line, in
//! source order. `ringway check` prefixes each line with `error: `.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path, e.g. `cluster[1].endpoints[0]` or `runtime.workers`.
    pub path: String,
    /// 1-based line in the source file, where known.
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    /// An error at `path` with no line information (yet).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }

    /// The same error with `line` set.
    pub fn at_line(mut self, line: Option<usize>) -> ConfigError {
        self.line = line;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {}): {}", self.path, line, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one file.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn new() -> ConfigErrors {
        ConfigErrors(Vec::new())
    }

    /// A list holding one error.
    pub fn one(error: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![error])
    }

    pub fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Order by line (errors without a line last), keeping the discovery
    /// order between errors on the same line, and drop exact duplicates.
    pub fn sort(&mut self) {
        self.0.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        self.0.dedup();
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> ConfigErrors {
        ConfigErrors::one(error)
    }
}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(errors: Vec<ConfigError>) -> ConfigErrors {
        ConfigErrors(errors)
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let e = ConfigError::new("runtime.workers", "must be at least 1").at_line(Some(3));
        assert_eq!(
            e.to_string(),
            "runtime.workers (line 3): must be at least 1"
        );
        let e = ConfigError::new("listener", "at least one [[listener]] is required");
        assert_eq!(
            e.to_string(),
            "listener: at least one [[listener]] is required"
        );
        let mut all = ConfigErrors::new();
        all.push(ConfigError::new("b", "two"));
        all.push(ConfigError::new("a", "one").at_line(Some(1)));
        all.sort();
        assert_eq!(all.to_string(), "a (line 1): one\nb: two");
    }
}
