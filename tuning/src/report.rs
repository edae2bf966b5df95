//! `inspect`'s output: text for people, JSON (`--json`) for tools.

use std::fmt::Write as _;

use serde::Serialize;

use crate::facts::Facts;
use crate::finding::{Finding, Severity};
use crate::root::format_cpu_list;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub root: String,
    pub summary: Summary,
    /// Most severe first, rule order within a severity.
    pub findings: Vec<Finding>,
    pub facts: Facts,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub critical: usize,
    pub warn: usize,
    pub info: usize,
    /// Info findings without a fix: checks that passed.
    pub ok: usize,
}

impl Report {
    pub fn new(root: String, facts: Facts, mut findings: Vec<Finding>) -> Report {
        // Stable: rule order is kept within a severity; within info, the
        // findings with a fix come first.
        findings.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.fix.is_none()));
        let mut summary = Summary::default();
        for f in &findings {
            match f.severity {
                Severity::Critical => summary.critical += 1,
                Severity::Warn => summary.warn += 1,
                Severity::Info => {
                    summary.info += 1;
                    summary.ok += usize::from(f.fix.is_none());
                }
            }
        }
        Report {
            root,
            summary,
            findings,
            facts,
        }
    }

    pub fn find(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    pub fn text(&self) -> String {
        let f = &self.facts;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ringway-tune inspect: root {}, kernel {}, CPUs {}, {} NUMA node(s)",
            self.root,
            f.kernel.as_deref().unwrap_or("?"),
            format_cpu_list(&f.online_cpus),
            f.numa_nodes.len().max(1)
        );
        for finding in &self.findings {
            // An info finding without a fix is a check that passed.
            let label = match (finding.severity, &finding.fix) {
                (Severity::Info, None) => "ok",
                (s, _) => s.label(),
            };
            let _ = writeln!(out, "\n{label:<8} {}", finding.id);
            let _ = writeln!(out, "  seen: {}", finding.seen);
            let _ = writeln!(out, "  why:  {}", finding.why);
            if let Some(fix) = &finding.fix {
                let kind = serde_json::to_value(fix.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let _ = writeln!(out, "  fix ({kind}):");
                for line in fix.text.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        let s = self.summary;
        let _ = writeln!(
            out,
            "\n{} critical, {} warn, {} info ({} of them ok)",
            s.critical, s.warn, s.info, s.ok
        );
        out
    }
}
