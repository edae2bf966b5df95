//! ringway-tune: look at a host the way ringway will use it.
//!
//! * `inspect` reads CPU topology, NUMA, NICs and their interrupts, io_uring
//!   availability, limits and sysctls ([`facts`]), and runs every rule of
//!   [`rules::RULES`] on them: each finding has a severity, what was seen,
//!   why it matters for ringway, and the exact fix.
//! * `sysctl` prints `packaging/60-ringway.conf` ([`profile`]) or writes it.
//! * `sweep` measures ringway under `ringload` with several `[runtime]`
//!   settings and writes the best into a copy of the configuration
//!   ([`sweep`]).
//!
//! Everything is read through a [`root::Root`] and every kernel call goes
//! through a [`probe::Probe`], so tests run the rules on fake trees.

pub mod facts;
pub mod finding;
pub mod probe;
pub mod profile;
pub mod report;
pub mod root;
pub mod rules;
pub mod sweep;

pub use facts::Facts;
pub use finding::{Finding, Fix, FixKind, Severity};
pub use report::Report;

/// Read the host under `root`, run every rule.
pub fn inspect(root: &root::Root, probe: &dyn probe::Probe) -> Report {
    let facts = Facts::gather(root, probe);
    let findings = rules::check_all(&facts);
    Report::new(root.dir().display().to_string(), facts, findings)
}
