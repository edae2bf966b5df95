//! io_uring: the sysctl switch, the kernel version, the setup flags the
//! kernel accepts, locked memory.

use crate::facts::Facts;
use crate::finding::{Finding, FixKind, Severity};
use crate::probe::RingFlag;
use crate::profile;

/// ringway's default `ring_flags` (docs/config.md).
const DEFAULT_FLAGS: &[RingFlag] = &[RingFlag::SingleIssuer, RingFlag::CoopTaskrun];
/// ringway's default `ring_entries`.
const DEFAULT_ENTRIES: u64 = 1024;
const NOT_PROBED: &str = "not probed";

pub fn disabled(facts: &Facts) -> Vec<Finding> {
    let id = "uring.disabled";
    let key = "kernel.io_uring_disabled";
    let fix = profile::setting(key).line();
    let f = |sev, seen: String, why| vec![Finding::new(id, sev, seen, why)];
    match facts.sysctl(key) {
        None => f(
            Severity::Info,
            format!("{key} absent (kernels before 6.6 have no such switch)"),
            "io_uring is allowed unless a seccomp filter refuses it (see uring.setup)",
        ),
        Some("0") => f(
            Severity::Info,
            format!("{key} = 0"),
            "io_uring is allowed for every process",
        ),
        Some("1") => vec![Finding::new(
            id,
            Severity::Warn,
            format!("{key} = 1"),
            "only processes in kernel.io_uring_group (or with CAP_SYS_ADMIN) may create \
             rings; ringway running as its own user falls back to epoll (driver = \"auto\") \
             or refuses to start (driver = \"io_uring\")",
        )
        .fix(FixKind::Sysctl, fix)],
        Some(v) => vec![Finding::new(
            id,
            Severity::Critical,
            format!("{key} = {v}"),
            "io_uring is disabled for every process: ringway runs on epoll (driver = \
             \"auto\", about 14 % more CPU per request in docs/config.md) or refuses to \
             start (driver = \"io_uring\")",
        )
        .fix(FixKind::Sysctl, fix)],
    }
}

pub fn kernel(facts: &Facts) -> Vec<Finding> {
    let id = "uring.kernel";
    let upgrade = "upgrade to kernel 6.1 or later (Debian 12 ships 6.1, Ubuntu 24.04 ships 6.8)";
    let Some((major, minor)) = facts.kernel_version() else {
        return vec![Finding::new(
            id,
            Severity::Info,
            "kernel version unknown (/proc/sys/kernel/osrelease unreadable)".into(),
            "io_uring features depend on the kernel version",
        )];
    };
    let release = facts.kernel.clone().unwrap_or_default();
    let v = (major, minor);
    if v < (5, 6) {
        return vec![Finding::new(
            id,
            Severity::Critical,
            format!("kernel {release}"),
            "io_uring before 5.6 lacks accept, connect and the socket operations ringway's \
             io_uring driver needs: ringway runs on epoll (driver = \"auto\") or refuses to \
             start (driver = \"io_uring\")",
        )
        .fix(FixKind::Command, upgrade)];
    }
    if v < (6, 1) {
        return vec![Finding::new(
            id,
            Severity::Warn,
            format!("kernel {release}"),
            "COOP_TASKRUN arrived in 5.19, SINGLE_ISSUER in 6.0, DEFER_TASKRUN in 6.1: \
             without them ringway's default ring_flags are refused and each worker retries \
             with no flags (more interrupts, more CPU per request)",
        )
        .fix(FixKind::Command, upgrade)];
    }
    vec![Finding::new(
        id,
        Severity::Info,
        format!("kernel {release}"),
        "6.1 or later: every setup flag ringway can use exists",
    )]
}

fn names(flags: &[RingFlag]) -> String {
    if flags.is_empty() {
        return "no flags".into();
    }
    flags.iter().map(|f| f.name()).collect::<Vec<_>>().join("+")
}

pub fn setup(facts: &Facts) -> Vec<Finding> {
    let id = "uring.setup";
    let Some(base) = facts.ring(&[]) else {
        return vec![];
    };
    if base.error.as_deref() == Some(NOT_PROBED) {
        return vec![Finding::new(
            id,
            Severity::Info,
            "io_uring not probed (--no-probe)".into(),
            "which setup flags the kernel accepts is only known by creating rings",
        )];
    }
    if let Some(err) = &base.error {
        let disabled = facts
            .sysctl("kernel.io_uring_disabled")
            .is_some_and(|v| v != "0");
        let (why, fix) = if err.contains("os error 1)") && !disabled {
            (
                "creating a ring is refused (EPERM) while kernel.io_uring_disabled allows it: \
                 a seccomp filter (systemd SystemCallFilter=, a container runtime's default \
                 profile) blocks io_uring_setup; ringway runs on epoll",
                Some((
                    FixKind::Systemd,
                    "SystemCallFilter=@system-service io_uring_setup io_uring_enter io_uring_register\n\
                     # in a container: a seccomp profile that allows io_uring_setup, io_uring_enter, io_uring_register"
                        .to_string(),
                )),
            )
        } else if err.contains("os error 1)") {
            (
                "creating a ring is refused (EPERM): kernel.io_uring_disabled (uring.disabled)",
                Some((
                    FixKind::Sysctl,
                    profile::setting("kernel.io_uring_disabled").line(),
                )),
            )
        } else if err.contains("os error 12)") {
            (
                "creating a ring needs locked memory on this kernel (ENOMEM): see uring.memlock",
                Some((FixKind::Systemd, "LimitMEMLOCK=infinity".to_string())),
            )
        } else {
            (
                "this kernel cannot create rings (built without io_uring, or too old): \
                 ringway runs on epoll",
                None,
            )
        };
        let mut f = Finding::new(
            id,
            Severity::Critical,
            format!("a ring without flags is refused: {err}"),
            why,
        );
        if let Some((kind, text)) = fix {
            f = f.fix(kind, text);
        }
        return vec![f];
    }
    let accepted: Vec<String> = facts
        .io_uring
        .iter()
        .filter(|p| p.accepted && !p.flags.is_empty())
        .map(|p| names(&p.flags))
        .collect();
    let refused: Vec<String> = facts
        .io_uring
        .iter()
        .filter(|p| !p.accepted)
        .map(|p| names(&p.flags))
        .collect();
    let seen = format!(
        "accepted: {}; refused: {}",
        if accepted.is_empty() {
            "no flags only".into()
        } else {
            accepted.join(", ")
        },
        if refused.is_empty() {
            "none".into()
        } else {
            refused.join(", ")
        }
    );
    let default_ok = facts.ring(DEFAULT_FLAGS).is_some_and(|p| p.accepted);
    if default_ok {
        return vec![Finding::new(
            id,
            Severity::Info,
            seen,
            "ringway's default ring_flags (single_issuer, coop_taskrun) are accepted",
        )];
    }
    let usable: Vec<String> = DEFAULT_FLAGS
        .iter()
        .filter(|f| facts.ring(&[**f]).is_some_and(|p| p.accepted))
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    vec![Finding::new(
        id,
        Severity::Warn,
        seen,
        "the kernel refuses ringway's default ring_flags (single_issuer + coop_taskrun): each \
         worker's first ring fails and it retries with no flags; name the flags it accepts \
         so the ring gets the ones that work",
    )
    .fix(
        FixKind::Config,
        format!("[runtime]\nring_flags = [{}]", usable.join(", ")),
    )]
}

/// Bytes of a ring's submission and completion queues, rounded up to pages:
/// 64-byte SQEs, a 4-byte index per entry, 16-byte CQEs (twice as many).
fn ring_bytes(entries: u64) -> u64 {
    let bytes = entries * 64 + entries * 4 + 2 * entries * 16 + 2 * 4096;
    bytes.div_ceil(4096) * 4096
}

pub fn memlock(facts: &Facts) -> Vec<Finding> {
    let id = "uring.memlock";
    let why_new = "since 5.12 rings are charged to the memory cgroup, not RLIMIT_MEMLOCK";
    if facts.kernel_version().is_some_and(|v| v >= (5, 12)) {
        let seen = match facts.memlock {
            Some(l) => format!("memlock {} (not used for rings)", fmt_limit(l.soft)),
            None => "kernel 5.12 or later".into(),
        };
        return vec![Finding::new(id, Severity::Info, seen, why_new)];
    }
    let Some(limit) = facts.memlock else {
        return vec![Finding::new(
            id,
            Severity::Info,
            "memlock limit not probed".into(),
            "before 5.12 each ring is charged to RLIMIT_MEMLOCK",
        )];
    };
    let workers = facts.online_cpus.len().max(1) as u64;
    let need = workers * ring_bytes(DEFAULT_ENTRIES);
    let seen = format!(
        "memlock soft limit {}; {workers} worker ring(s) of {DEFAULT_ENTRIES} entries need about {} KiB",
        fmt_limit(limit.soft),
        need / 1024
    );
    let why = "before 5.12 each ring is charged to RLIMIT_MEMLOCK; a worker whose ring does \
               not fit gets ENOMEM and runs on epoll";
    if limit.soft.is_none_or(|s| s >= need) {
        return vec![Finding::new(id, Severity::Info, seen, why)];
    }
    vec![Finding::new(id, Severity::Warn, seen, why).fix(
        FixKind::Systemd,
        "LimitMEMLOCK=infinity\n# in a shell: ulimit -l unlimited",
    )]
}

pub fn fmt_limit(v: Option<u64>) -> String {
    match v {
        None => "unlimited".into(),
        Some(n) => n.to_string(),
    }
}
