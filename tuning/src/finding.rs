//! A rule's verdict: what was seen, why it matters for ringway, the exact
//! fix.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fine, or worth knowing; nothing to change.
    Info,
    /// ringway runs, slower or with less headroom than it could.
    Warn,
    /// ringway cannot run as configured (no io_uring, no descriptors).
    Critical,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// Where a fix goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    /// A line for `/etc/sysctl.d/60-ringway.conf` (`ringway-tune sysctl`).
    Sysctl,
    /// A directive for the `[Service]` section of `ringway.service`.
    Systemd,
    /// A shell command, run as root.
    Command,
    /// Keys for ringway's configuration file.
    Config,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub kind: FixKind,
    /// Exactly what to write or run; several lines for several steps.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (`net.somaxconn`, `uring.setup`).
    pub id: String,
    pub severity: Severity,
    pub seen: String,
    pub why: String,
    pub fix: Option<Fix>,
}

impl Finding {
    pub fn new(id: &str, severity: Severity, seen: String, why: &str) -> Finding {
        Finding {
            id: id.to_string(),
            severity,
            seen,
            why: why.to_string(),
            fix: None,
        }
    }

    pub fn fix(mut self, kind: FixKind, text: impl Into<String>) -> Finding {
        self.fix = Some(Fix {
            kind,
            text: text.into(),
        });
        self
    }
}
