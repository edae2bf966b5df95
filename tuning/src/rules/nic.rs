//! Network interfaces: receive queues, RPS, XPS, interrupt affinity.

use crate::facts::{Facts, Nic};
use crate::finding::{Finding, FixKind, Severity};
use crate::root::{format_cpu_list, format_cpu_mask, parse_cpu_mask};

fn no_nic(id: &str, why: &str) -> Vec<Finding> {
    vec![Finding::new(
        id,
        Severity::Info,
        "no network interface backed by a device in /sys/class/net".into(),
        why,
    )]
}

fn mask_is_set(mask: Option<&str>) -> bool {
    mask.and_then(parse_cpu_mask).is_some_and(|c| !c.is_empty())
}

/// Fewer receive queues than CPUs: some CPUs take no receive interrupts.
fn short_of_queues(facts: &Facts, nic: &Nic) -> bool {
    facts.online_cpus.len() > 1 && nic.rx_queues.len() < facts.online_cpus.len()
}

pub fn queues(facts: &Facts) -> Vec<Finding> {
    let id = "nic.queues";
    let why = "each receive queue raises its interrupts on one CPU and that CPU runs the \
               protocol work of its packets; with fewer queues than workers, a few CPUs do \
               the network work of all of them";
    if facts.nics.is_empty() {
        return no_nic(id, why);
    }
    let ncpu = facts.online_cpus.len();
    facts
        .nics
        .iter()
        .map(|nic| {
            let seen = format!(
                "{}: {} rx / {} tx queues for {ncpu} CPUs",
                nic.name,
                nic.rx_queues.len(),
                nic.tx_queues.len()
            );
            if !short_of_queues(facts, nic) {
                return Finding::new(&format!("{id}.{}", nic.name), Severity::Info, seen, why);
            }
            Finding::new(&format!("{id}.{}", nic.name), Severity::Info, seen, why).fix(
                FixKind::Command,
                format!(
                    "ethtool -l {0}   # how many queues the driver allows\n\
                     ethtool -L {0} combined {ncpu}",
                    nic.name
                ),
            )
        })
        .collect()
}

pub fn rps(facts: &Facts) -> Vec<Finding> {
    let id = "nic.rps";
    let why = "with fewer receive queues than CPUs, Receive Packet Steering hands the \
               protocol work of each packet to another CPU by flow hash, so one interrupt CPU \
               does not do it for every worker";
    if facts.nics.is_empty() {
        return no_nic(id, why);
    }
    let all = format_cpu_mask(&facts.online_cpus);
    facts
        .nics
        .iter()
        .map(|nic| {
            let fid = format!("{id}.{}", nic.name);
            let masks: Vec<String> = nic
                .rx_queues
                .iter()
                .map(|q| format!("{}={}", q.name, q.cpus_mask.as_deref().unwrap_or("-")))
                .collect();
            let seen = format!("{}: rps_cpus {}", nic.name, masks.join(" "));
            if !short_of_queues(facts, nic) {
                return Finding::new(
                    &fid,
                    Severity::Info,
                    format!("{seen} (a receive queue per CPU: RPS not needed)"),
                    why,
                );
            }
            if nic
                .rx_queues
                .iter()
                .all(|q| mask_is_set(q.cpus_mask.as_deref()))
            {
                return Finding::new(&fid, Severity::Info, seen, why);
            }
            let cmds: Vec<String> = nic
                .rx_queues
                .iter()
                .map(|q| {
                    format!(
                        "echo {all} > /sys/class/net/{}/queues/{}/rps_cpus",
                        nic.name, q.name
                    )
                })
                .collect();
            Finding::new(&fid, Severity::Warn, seen, why).fix(FixKind::Command, cmds.join("\n"))
        })
        .collect()
}

pub fn xps(facts: &Facts) -> Vec<Finding> {
    let id = "nic.xps";
    let why = "Transmit Packet Steering lets each CPU send on its own transmit queue, so \
               workers do not contend for one queue's lock";
    if facts.nics.is_empty() {
        return no_nic(id, why);
    }
    facts
        .nics
        .iter()
        .map(|nic| {
            let fid = format!("{id}.{}", nic.name);
            if nic.tx_queues.len() <= 1 {
                return Finding::new(
                    &fid,
                    Severity::Info,
                    format!(
                        "{}: {} transmit queue(s): XPS has nothing to choose",
                        nic.name,
                        nic.tx_queues.len()
                    ),
                    why,
                );
            }
            let masks: Vec<String> = nic
                .tx_queues
                .iter()
                .map(|q| format!("{}={}", q.name, q.cpus_mask.as_deref().unwrap_or("-")))
                .collect();
            let seen = format!("{}: xps_cpus {}", nic.name, masks.join(" "));
            if nic
                .tx_queues
                .iter()
                .all(|q| mask_is_set(q.cpus_mask.as_deref()))
            {
                return Finding::new(&fid, Severity::Info, seen, why);
            }
            // Transmit queue i for CPUs i, i + n, i + 2n, …
            let n = nic.tx_queues.len();
            let cmds: Vec<String> = nic
                .tx_queues
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let cpus: Vec<u32> = facts
                        .online_cpus
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| k % n == i)
                        .map(|(_, &c)| c)
                        .collect();
                    format!(
                        "echo {} > /sys/class/net/{}/queues/{}/xps_cpus",
                        format_cpu_mask(&cpus),
                        nic.name,
                        q.name
                    )
                })
                .collect();
            Finding::new(&fid, Severity::Info, seen, why).fix(FixKind::Command, cmds.join("\n"))
        })
        .collect()
}

pub fn irq_affinity(facts: &Facts) -> Vec<Finding> {
    let id = "nic.irq";
    let why = "the CPU that takes a queue's interrupts also runs its softirq work; when one \
               CPU takes all of a NIC's interrupts, the worker pinned there serves fewer \
               requests than the others";
    if facts.nics.is_empty() {
        return no_nic(id, why);
    }
    let ncpu = facts.online_cpus.len();
    facts
        .nics
        .iter()
        .map(|nic| {
            let fid = format!("{id}.{}", nic.name);
            if nic.irqs.is_empty() {
                return Finding::new(
                    &fid,
                    Severity::Info,
                    format!(
                        "{}: no interrupt lines of its own in /proc/interrupts",
                        nic.name
                    ),
                    why,
                );
            }
            let mut totals = vec![0u64; ncpu.max(1)];
            for irq in &nic.irqs {
                for (i, n) in irq.per_cpu.iter().enumerate() {
                    if let Some(t) = totals.get_mut(i) {
                        *t += n;
                    }
                }
            }
            let sum: u64 = totals.iter().sum();
            let lines: Vec<String> = nic
                .irqs
                .iter()
                .map(|i| {
                    format!(
                        "{} {} on CPUs {}",
                        i.irq,
                        i.name,
                        i.affinity
                            .as_deref()
                            .map(format_cpu_list)
                            .unwrap_or_else(|| "?".into())
                    )
                })
                .collect();
            let (busiest, most) = totals
                .iter()
                .copied()
                .enumerate()
                .max_by_key(|&(_, n)| n)
                .unwrap_or((0, 0));
            let cpu_of = |i: usize| facts.online_cpus.get(i).copied().unwrap_or(i as u32);
            let share = (most * 100).checked_div(sum).unwrap_or(0);
            let seen = format!(
                "{}: {}; {share} % of {sum} interrupts on CPU {}",
                nic.name,
                lines.join(", "),
                cpu_of(busiest)
            );
            // Skewed: one CPU took at least 90 % of a meaningful number of
            // interrupts, and there are several queues' worth to spread.
            let skewed = ncpu > 1 && sum >= 1000 && share >= 90 && nic.irqs.len() > 1;
            if !skewed {
                return Finding::new(&fid, Severity::Info, seen, why);
            }
            let cmds: Vec<String> = nic
                .irqs
                .iter()
                .enumerate()
                .map(|(k, i)| {
                    format!(
                        "echo {} > /proc/irq/{}/smp_affinity_list",
                        cpu_of(k % ncpu),
                        i.irq
                    )
                })
                .collect();
            Finding::new(&fid, Severity::Warn, seen, why).fix(
                FixKind::Command,
                format!(
                    "systemctl stop irqbalance   # if it runs, it moves them back\n{}",
                    cmds.join("\n")
                ),
            )
        })
        .collect()
}
