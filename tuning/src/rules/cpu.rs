//! CPU topology: SMT siblings, frequency governor, isolated cores, NUMA.

use crate::facts::Facts;
use crate::finding::{Finding, FixKind, Severity};
use crate::root::format_cpu_list;

fn cores_line(cpus: &[u32]) -> String {
    let list: Vec<String> = cpus.iter().map(u32::to_string).collect();
    format!(
        "[runtime]\nworkers = {}\ncores = [{}]",
        cpus.len(),
        list.join(", ")
    )
}

/// The first hardware thread of every physical core.
pub fn one_thread_per_core(facts: &Facts) -> Vec<u32> {
    let mut firsts: Vec<u32> = facts
        .cpus
        .iter()
        .filter(|c| c.siblings.first().is_none_or(|&f| f == c.id))
        .map(|c| c.id)
        .collect();
    firsts.sort_unstable();
    firsts
}

pub fn smt(facts: &Facts) -> Vec<Finding> {
    let id = "cpu.smt";
    let why = "ringway runs one worker per CPU; two workers on the hardware threads of one \
               core share its execution units and caches, so each gets well under a core";
    if facts.cpus.is_empty() {
        return vec![Finding::new(
            id,
            Severity::Info,
            "no CPUs listed in /sys/devices/system/cpu/online".into(),
            why,
        )];
    }
    let firsts = one_thread_per_core(facts);
    if firsts.len() == facts.cpus.len() {
        return vec![Finding::new(
            id,
            Severity::Info,
            format!(
                "{} CPUs, no SMT siblings (one hardware thread per core)",
                facts.cpus.len()
            ),
            why,
        )];
    }
    let pairs: Vec<String> = facts
        .cpus
        .iter()
        .filter(|c| c.siblings.len() > 1 && c.siblings[0] == c.id)
        .map(|c| format_cpu_list(&c.siblings))
        .collect();
    vec![Finding::new(
        id,
        Severity::Info,
        format!(
            "{} CPUs on {} cores; siblings: {}",
            facts.cpus.len(),
            firsts.len(),
            pairs.join(" ")
        ),
        why,
    )
    .fix(FixKind::Config, cores_line(&firsts))]
}

pub fn governor(facts: &Facts) -> Vec<Finding> {
    let id = "cpu.governor";
    let why = "a power-saving governor lowers the clock between bursts; every request then \
               starts on a slow core, which shows in p99 latency";
    let slow: Vec<String> = facts
        .cpus
        .iter()
        .filter_map(|c| {
            let g = c.governor.as_deref()?;
            (g != "performance").then(|| format!("cpu{} {g}", c.id))
        })
        .collect();
    let with = facts.cpus.iter().filter(|c| c.governor.is_some()).count();
    if with == 0 {
        return vec![Finding::new(
            id,
            Severity::Info,
            "no cpufreq governor (cpufreq absent: the firmware or hypervisor sets the clock)"
                .into(),
            why,
        )];
    }
    if slow.is_empty() {
        return vec![Finding::new(
            id,
            Severity::Info,
            format!("governor performance on all {with} CPUs"),
            why,
        )];
    }
    vec![Finding::new(id, Severity::Warn, slow.join(", "), why).fix(
        FixKind::Command,
        "cpupower frequency-set -g performance\n\
         # without cpupower: echo performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor",
    )]
}

pub fn isolated(facts: &Facts) -> Vec<Finding> {
    let id = "cpu.isolated";
    let why = "isolated cores (isolcpus=) run no other task unless pinned there: workers \
               pinned to them are never preempted by the rest of the host";
    if facts.isolated_cpus.is_empty() {
        return vec![Finding::new(
            id,
            Severity::Info,
            "no isolated cores".into(),
            why,
        )];
    }
    vec![Finding::new(
        id,
        Severity::Info,
        format!("isolated cores: {}", format_cpu_list(&facts.isolated_cpus)),
        why,
    )
    .fix(FixKind::Config, cores_line(&facts.isolated_cpus))]
}

pub fn numa(facts: &Facts) -> Vec<Finding> {
    let id = "numa.nodes";
    let why = "a worker on another NUMA node than the NIC reads every packet across the \
               interconnect; workers on the NIC's node keep packets, sockets and buffers in \
               local memory";
    let nodes = &facts.numa_nodes;
    if nodes.len() <= 1 {
        return vec![Finding::new(
            id,
            Severity::Info,
            format!("{} NUMA node", nodes.len().max(1)),
            why,
        )];
    }
    let listing: Vec<String> = nodes
        .iter()
        .map(|n| format!("node{}: {}", n.id, format_cpu_list(&n.cpus)))
        .collect();
    let nic_node = facts
        .nics
        .iter()
        .find_map(|n| n.numa_node.filter(|&v| v >= 0).map(|v| (n.name.clone(), v)));
    let mut seen = format!("{} NUMA nodes ({})", nodes.len(), listing.join("; "));
    let target = match &nic_node {
        Some((nic, node)) => {
            seen.push_str(&format!("; {nic} is on node{node}"));
            nodes.iter().find(|n| i64::from(n.id) == *node)
        }
        None => nodes.first(),
    };
    let mut f = Finding::new(id, Severity::Warn, seen, why);
    if let Some(node) = target {
        f = f.fix(FixKind::Config, cores_line(&node.cpus));
    }
    vec![f]
}
