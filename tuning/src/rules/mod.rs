//! The rules, as data: each has an id prefix, a one-line summary and a
//! check that turns [`Facts`] into findings. `inspect` runs every rule in
//! this order; `tests.rs` checks each against fake `/proc` and `/sys` trees.

mod cpu;
mod limits;
mod nic;
mod sysctl;
mod uring;

#[cfg(test)]
mod tests;

pub use sysctl::short_of_profile;

use crate::facts::Facts;
use crate::finding::Finding;

pub struct Rule {
    /// The findings' ids start with it.
    pub id: &'static str,
    pub summary: &'static str,
    pub check: fn(&Facts) -> Vec<Finding>,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "cpu.smt",
        summary: "SMT siblings: one worker per physical core",
        check: cpu::smt,
    },
    Rule {
        id: "cpu.governor",
        summary: "frequency governor is `performance`",
        check: cpu::governor,
    },
    Rule {
        id: "cpu.isolated",
        summary: "isolated cores are used for workers",
        check: cpu::isolated,
    },
    Rule {
        id: "numa.nodes",
        summary: "workers on the NIC's NUMA node",
        check: cpu::numa,
    },
    Rule {
        id: "nic.queues",
        summary: "receive queues per CPU",
        check: nic::queues,
    },
    Rule {
        id: "nic.rps",
        summary: "RPS spreads a single receive queue over the CPUs",
        check: nic::rps,
    },
    Rule {
        id: "nic.xps",
        summary: "XPS maps CPUs to transmit queues",
        check: nic::xps,
    },
    Rule {
        id: "nic.irq",
        summary: "NIC interrupts are not all on one CPU",
        check: nic::irq_affinity,
    },
    Rule {
        id: "uring.disabled",
        summary: "kernel.io_uring_disabled allows io_uring",
        check: uring::disabled,
    },
    Rule {
        id: "uring.kernel",
        summary: "kernel version has the io_uring features ringway uses",
        check: uring::kernel,
    },
    Rule {
        id: "uring.setup",
        summary: "rings can be created with ringway's setup flags",
        check: uring::setup,
    },
    Rule {
        id: "uring.memlock",
        summary: "locked-memory limit covers the rings (kernels before 5.12)",
        check: uring::memlock,
    },
    Rule {
        id: "limits.nofile",
        summary: "open-file limit for connections",
        check: limits::nofile,
    },
    Rule {
        id: "sysctl",
        summary: "each setting of packaging/60-ringway.conf",
        check: sysctl::profile,
    },
    Rule {
        id: "net.busy_poll",
        summary: "socket busy polling",
        check: sysctl::busy_poll,
    },
];

/// Every rule's findings, in rule order.
pub fn check_all(facts: &Facts) -> Vec<Finding> {
    RULES.iter().flat_map(|r| (r.check)(facts)).collect()
}
