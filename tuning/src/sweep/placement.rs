//! Which CPUs ringway gets during a sweep, and which the origin and the
//! load generator get. From `inspect`'s facts: ringway's CPUs avoid being
//! SMT siblings of each other and avoid the CPUs that take most of the
//! NIC's interrupts, when the machine has enough CPUs to do so.

use crate::facts::Facts;
use crate::root::format_cpu_list;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub ringway: Vec<u32>,
    pub clients: Vec<u32>,
    /// Why, for the report: one sentence each.
    pub why: Vec<String>,
}

/// CPUs that take a concentrated share of the NICs' interrupts: at least
/// 1,000 interrupts in all, and a CPU with ≥ 90 % of them (as `inspect`'s
/// `nic.irq` rule) or, with 4 CPUs or more, at least twice its fair share.
/// With each CPU's share in percent.
pub fn irq_heavy(facts: &Facts) -> Vec<(u32, u64)> {
    let ncpu = facts.online_cpus.len();
    let mut totals = vec![0u64; ncpu];
    for nic in &facts.nics {
        for irq in &nic.irqs {
            for (i, n) in irq.per_cpu.iter().enumerate() {
                if let Some(t) = totals.get_mut(i) {
                    *t += n;
                }
            }
        }
    }
    let sum: u64 = totals.iter().sum();
    if ncpu < 2 || sum < 1000 {
        return vec![];
    }
    totals
        .iter()
        .enumerate()
        .filter_map(|(i, &n)| {
            let share = n * 100 / sum;
            let heavy = share >= 90 || (ncpu >= 4 && n * ncpu as u64 >= 2 * sum);
            heavy.then(|| (facts.online_cpus[i], share))
        })
        .collect()
}

/// The hardware threads of `cpu`'s core, itself included.
fn siblings(facts: &Facts, cpu: u32) -> Vec<u32> {
    facts
        .cpus
        .iter()
        .find(|c| c.id == cpu)
        .map(|c| c.siblings.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec![cpu])
}

/// ringway gets half of the CPUs (at least one), the origin and the load
/// generator the rest. Without SMT or IRQ concentration that is the upper
/// half. Otherwise ringway's CPUs are picked, highest id first, from:
/// CPUs that are not IRQ-heavy and on a physical core none of ringway's
/// CPUs is on yet; then other CPUs that are not IRQ-heavy; then the rest.
pub fn place(facts: &Facts) -> Placement {
    let cpus = facts.online_cpus.clone();
    let mut why = Vec::new();
    if cpus.len() < 2 {
        why.push("one CPU: ringway, the origin and the load generator share it".to_string());
        let c = cpus.first().copied().unwrap_or(0);
        return Placement {
            ringway: vec![c],
            clients: vec![c],
            why,
        };
    }
    let n = cpus.len() / 2;
    let heavy = irq_heavy(facts);
    let is_heavy = |c: u32| heavy.iter().any(|&(h, _)| h == c);
    let smt = cpus.iter().any(|&c| siblings(facts, c).len() > 1);

    let mut ringway: Vec<u32> = Vec::new();
    let mut desc = cpus.clone();
    desc.sort_unstable_by(|a, b| b.cmp(a));
    let new_core = |ringway: &[u32], c: u32| {
        let s = siblings(facts, c);
        !ringway.iter().any(|r| s.contains(r))
    };
    for pass in 0..3 {
        for &c in &desc {
            if ringway.len() == n || ringway.contains(&c) {
                continue;
            }
            let ok = match pass {
                0 => !is_heavy(c) && new_core(&ringway, c),
                1 => !is_heavy(c),
                _ => true,
            };
            if ok {
                ringway.push(c);
            }
        }
    }
    ringway.sort_unstable();
    let clients: Vec<u32> = cpus
        .iter()
        .copied()
        .filter(|c| !ringway.contains(c))
        .collect();

    if !smt && heavy.is_empty() {
        why.push(format!(
            "no SMT siblings and no CPU takes a concentrated share of the NIC interrupts: \
             ringway on the upper half of the CPUs ({}), origin and load generator on the \
             rest ({})",
            format_cpu_list(&ringway),
            format_cpu_list(&clients)
        ));
    }
    if smt {
        let shared: Vec<String> = ringway
            .iter()
            .flat_map(|&a| ringway.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| a < b && siblings(facts, a).contains(&b))
            .map(|(a, b)| format!("{a}+{b}"))
            .collect();
        if shared.is_empty() {
            why.push(format!(
                "SMT: ringway's CPUs {} are each on a different physical core (no two are \
                 siblings); the origin and the load generator get the other hardware threads \
                 ({})",
                format_cpu_list(&ringway),
                format_cpu_list(&clients)
            ));
        } else {
            why.push(format!(
                "SMT: too few physical cores for one per ringway CPU: siblings {} both run \
                 ringway workers",
                shared.join(", ")
            ));
        }
    }
    if !heavy.is_empty() {
        let list: Vec<String> = heavy
            .iter()
            .map(|(c, s)| format!("CPU {c} ({s} %)"))
            .collect();
        let on: Vec<u32> = ringway.iter().copied().filter(|&c| is_heavy(c)).collect();
        if on.is_empty() {
            why.push(format!(
                "NIC interrupts concentrated on {}: ringway avoids them (on {})",
                list.join(", "),
                format_cpu_list(&ringway)
            ));
        } else {
            why.push(format!(
                "NIC interrupts concentrated on {}: too few other CPUs, ringway still runs on \
                 {}",
                list.join(", "),
                format_cpu_list(&on)
            ));
        }
    }
    Placement {
        ringway,
        clients,
        why,
    }
}
