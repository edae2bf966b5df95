//! Resource limits of the process: open files.

use super::uring::fmt_limit;
use crate::facts::Facts;
use crate::finding::{Finding, FixKind, Severity};

/// ringway's default `max_connections_per_worker`.
const CONNECTIONS_PER_WORKER: u64 = 10_000;

pub fn nofile(facts: &Facts) -> Vec<Finding> {
    let id = "limits.nofile";
    let Some(limit) = facts.nofile else {
        return vec![Finding::new(
            id,
            Severity::Info,
            "open-file limit not probed".into(),
            "every connection is a descriptor, two when proxied",
        )];
    };
    let workers = facts.online_cpus.len().max(1) as u64;
    // A downstream and an upstream descriptor per connection, plus listeners,
    // rings, logs.
    let need = workers * CONNECTIONS_PER_WORKER * 2 + 64;
    let seen = format!(
        "nofile soft {} hard {} (this process); {workers} worker(s) at the default \
         max_connections_per_worker = {CONNECTIONS_PER_WORKER} need {need}",
        fmt_limit(limit.soft),
        fmt_limit(limit.hard)
    );
    let why = "every connection is a descriptor, two when proxied; at the limit accept fails \
               with EMFILE and new clients wait in the backlog";
    if limit.soft.is_none_or(|s| s >= need) {
        return vec![Finding::new(id, Severity::Info, seen, why)];
    }
    vec![Finding::new(id, Severity::Warn, seen, why).fix(
        FixKind::Systemd,
        "LimitNOFILE=1048576\n# in a shell, before starting ringway: ulimit -n 1048576",
    )]
}
