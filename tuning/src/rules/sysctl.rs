//! The running kernel against `packaging/60-ringway.conf`, one finding per
//! setting, and socket busy polling.

use crate::facts::Facts;
use crate::finding::{Finding, FixKind, Severity};
use crate::profile::{self, Setting};

/// ringway's listen(2) backlog (proxy/src/net/listener.rs); the kernel caps
/// it at net.core.somaxconn.
const LISTEN_BACKLOG: u64 = 4096;

/// How a running value is compared with the recommended one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Every field at least the recommended one.
    AtLeast,
    /// Exactly the recommended value.
    Exactly,
    /// A `low high` range at least as wide.
    Range,
}

struct Check {
    key: &'static str,
    want: Want,
    /// Severity when the running value falls short.
    short: Severity,
    /// Why it matters for ringway; the profile's comment when `None`.
    why: Option<&'static str>,
}

const CHECKS: &[Check] = &[
    Check {
        key: "net.core.somaxconn",
        want: Want::AtLeast,
        short: Severity::Warn,
        why: Some(
            "ringway listens with a backlog of 4096 and the kernel caps it at somaxconn: \
             connections beyond it during a burst are dropped and the client retries its SYN \
             a second later",
        ),
    },
    Check {
        key: "net.ipv4.tcp_max_syn_backlog",
        want: Want::AtLeast,
        short: Severity::Warn,
        why: Some("half-open connections beyond it are dropped (or answered with SYN cookies) during a burst of connects"),
    },
    Check {
        key: "net.ipv4.ip_local_port_range",
        want: Want::Range,
        short: Severity::Warn,
        why: Some(
            "every upstream connection takes a local port; a narrow range runs out under \
             load with short-lived upstream connections (connect fails with EADDRNOTAVAIL, \
             the request gets 502)",
        ),
    },
    Check {
        key: "net.ipv4.tcp_tw_reuse",
        want: Want::Exactly,
        short: Severity::Warn,
        why: Some(
            "upstream connections ringway closes sit in TIME_WAIT for 60 s holding their \
             port; 1 lets new outgoing connections reuse them (2, the default, does so only \
             on loopback)",
        ),
    },
    Check {
        key: "fs.nr_open",
        want: Want::AtLeast,
        short: Severity::Warn,
        why: Some("no process can raise its open-file limit above fs.nr_open, whatever LimitNOFILE= says"),
    },
    Check {
        key: "fs.file-max",
        want: Want::AtLeast,
        short: Severity::Warn,
        why: Some("all open files of the host together; beyond it every open and accept fails with ENFILE"),
    },
    Check {
        key: "net.ipv4.tcp_slow_start_after_idle",
        want: Want::Exactly,
        short: Severity::Info,
        why: Some(
            "with 1, a keep-alive connection idle for longer than one retransmission \
             timeout restarts from a small congestion window: the first large response after \
             a pause is sent in several round trips",
        ),
    },
];

fn numbers(v: &str) -> Option<Vec<u64>> {
    v.split_whitespace().map(|f| f.parse().ok()).collect()
}

fn meets(want: Want, now: &str, rec: &str) -> bool {
    let (Some(n), Some(r)) = (numbers(now), numbers(rec)) else {
        return profile::normalize(now) == profile::normalize(rec);
    };
    match want {
        Want::Exactly => n == r,
        Want::AtLeast => n.len() == r.len() && n.iter().zip(&r).all(|(a, b)| a >= b),
        Want::Range => n.len() == 2 && r.len() == 2 && n[0] <= r[0] && n[1] >= r[1],
    }
}

/// Settings of the profile the running kernel does not meet (also used by
/// `sysctl` to say what writing the file would change).
pub fn short_of_profile(facts: &Facts) -> Vec<(Setting, Option<String>)> {
    profile::settings()
        .into_iter()
        .filter_map(|s| {
            let now = facts.sysctl(&s.key).map(str::to_string);
            let want = CHECKS
                .iter()
                .find(|c| c.key == s.key)
                .map_or(Want::AtLeast, |c| c.want);
            let ok = match &now {
                None => s.optional,
                Some(v) => meets(want, v, &s.value),
            };
            (!ok).then_some((s, now))
        })
        .collect()
}

pub fn profile(facts: &Facts) -> Vec<Finding> {
    profile::settings()
        .into_iter()
        // uring.disabled judges this one.
        .filter(|s| s.key != "kernel.io_uring_disabled")
        .map(|s| setting(facts, &s))
        .collect()
}

fn setting(facts: &Facts, s: &Setting) -> Finding {
    let id = format!("sysctl.{}", s.key);
    let check = CHECKS.iter().find(|c| c.key == s.key);
    let want = check.map_or(Want::AtLeast, |c| c.want);
    let why = check.and_then(|c| c.why).unwrap_or(&s.comment);
    let Some(now) = facts.sysctl(&s.key) else {
        return Finding::new(
            &id,
            Severity::Info,
            format!("{} absent or unreadable", s.key),
            why,
        );
    };
    let seen = format!("{} = {now} (recommended {})", s.key, s.value);
    if meets(want, now, &s.value) {
        return Finding::new(&id, Severity::Info, seen, why);
    }
    let mut severity = check.map_or(Severity::Info, |c| c.short);
    // A somaxconn of at least ringway's own backlog does not cap ringway.
    if s.key == "net.core.somaxconn" && numbers(now).is_some_and(|n| n[0] >= LISTEN_BACKLOG) {
        severity = Severity::Info;
    }
    Finding::new(&id, severity, seen, why).fix(FixKind::Sysctl, s.line())
}

pub fn busy_poll(facts: &Facts) -> Vec<Finding> {
    let id = "net.busy_poll";
    let why = "busy polling spins on a socket's receive queue instead of sleeping; it \
               applies to poll/select/epoll, so only to ringway's legacy (epoll) driver, and \
               it burns CPU while it spins";
    let poll = facts.sysctl("net.core.busy_poll");
    let read = facts.sysctl("net.core.busy_read");
    let seen = format!(
        "net.core.busy_poll = {}, net.core.busy_read = {}",
        poll.unwrap_or("absent"),
        read.unwrap_or("absent")
    );
    let on = |v: Option<&str>| v.is_some_and(|v| v != "0");
    if on(poll) || on(read) {
        return vec![Finding::new(id, Severity::Info, seen, why).fix(
            FixKind::Sysctl,
            "net.core.busy_poll = 0\nnet.core.busy_read = 0\n# keep them only for driver = \"legacy\" on a host with cores to spare",
        )];
    }
    vec![Finding::new(id, Severity::Info, seen, why)]
}
