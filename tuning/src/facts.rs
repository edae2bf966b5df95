//! What `inspect` reads from the host, before any rule judges it. Every
//! file through [`Root`], every kernel call through [`Probe`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::probe::{Limit, Probe, Resource, RingFlag, PROBED};
use crate::profile;
use crate::root::{parse_cpu_list, Root};

/// Sysctl keys read besides those of the profile.
const EXTRA_SYSCTLS: &[&str] = &["net.core.busy_poll", "net.core.busy_read"];

#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: Option<String>,
    /// `/sys/devices/system/cpu/online`.
    pub online_cpus: Vec<u32>,
    pub cpus: Vec<Cpu>,
    pub numa_nodes: Vec<NumaNode>,
    /// `/sys/devices/system/cpu/isolated`.
    pub isolated_cpus: Vec<u32>,
    /// Interfaces backed by a device (`/sys/class/net/*/device`): loopback
    /// and virtual interfaces are left out.
    pub nics: Vec<Nic>,
    /// Sysctl key → its value (`None`: absent or unreadable).
    pub sysctl: BTreeMap<String, Option<String>>,
    pub io_uring: Vec<RingProbe>,
    /// Limits of the process that ran `inspect` (`None`: not probed).
    pub nofile: Option<Limit>,
    pub memlock: Option<Limit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub id: u32,
    /// `topology/thread_siblings_list`: the hardware threads of its core.
    pub siblings: Vec<u32>,
    pub node: Option<u32>,
    /// `cpufreq/scaling_governor`; `None` without cpufreq (common in VMs).
    pub governor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NumaNode {
    pub id: u32,
    pub cpus: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nic {
    pub name: String,
    /// The device's name (`virtio1`, `0000:3b:00.0`), used to find its
    /// interrupts.
    pub device: Option<String>,
    pub numa_node: Option<i64>,
    pub rx_queues: Vec<Queue>,
    pub tx_queues: Vec<Queue>,
    pub irqs: Vec<Irq>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub name: String,
    /// `rps_cpus` (rx) or `xps_cpus` (tx), a hexadecimal mask.
    pub cpus_mask: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Irq {
    pub irq: String,
    pub name: String,
    /// Interrupts so far on each CPU (`/proc/interrupts`).
    pub per_cpu: Vec<u64>,
    /// `/proc/irq/N/smp_affinity_list`.
    pub affinity: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RingProbe {
    pub flags: Vec<RingFlag>,
    pub accepted: bool,
    pub error: Option<String>,
}

impl Facts {
    pub fn gather(root: &Root, probe: &dyn Probe) -> Facts {
        let online_cpus = root
            .read("/sys/devices/system/cpu/online")
            .and_then(|t| parse_cpu_list(&t))
            .unwrap_or_default();
        let numa_nodes = numa_nodes(root);
        let cpus = online_cpus
            .iter()
            .map(|&id| cpu(root, id, &numa_nodes))
            .collect();
        let isolated_cpus = root
            .read("/sys/devices/system/cpu/isolated")
            .and_then(|t| parse_cpu_list(&t))
            .unwrap_or_default();
        let interrupts = root.read("/proc/interrupts").unwrap_or_default();
        let nics = root
            .list("/sys/class/net")
            .into_iter()
            .filter(|n| root.exists(&format!("/sys/class/net/{n}/device")))
            .map(|n| nic(root, &n, &interrupts))
            .collect();
        let mut sysctl = BTreeMap::new();
        let keys = profile::settings().into_iter().map(|s| s.key);
        for key in keys.chain(EXTRA_SYSCTLS.iter().map(|k| k.to_string())) {
            let value = root
                .read(&profile::proc_path(&key))
                .map(|v| profile::normalize(&v));
            sysctl.insert(key, value);
        }
        let io_uring = PROBED
            .iter()
            .map(|flags| {
                let r = probe.uring_setup(flags);
                RingProbe {
                    flags: flags.to_vec(),
                    accepted: r.is_ok(),
                    error: r.err(),
                }
            })
            .collect();
        Facts {
            kernel: root.read("/proc/sys/kernel/osrelease"),
            online_cpus,
            cpus,
            numa_nodes,
            isolated_cpus,
            nics,
            sysctl,
            io_uring,
            nofile: probe.rlimit(Resource::Nofile),
            memlock: probe.rlimit(Resource::Memlock),
        }
    }

    /// `(major, minor)` of the kernel release (`6.18.44-fc` → `(6, 18)`).
    pub fn kernel_version(&self) -> Option<(u32, u32)> {
        let mut parts = self.kernel.as_deref()?.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctl.get(key)?.as_deref()
    }

    /// The probe result for exactly this flag set.
    pub fn ring(&self, flags: &[RingFlag]) -> Option<&RingProbe> {
        self.io_uring.iter().find(|p| p.flags == flags)
    }
}

fn numa_nodes(root: &Root) -> Vec<NumaNode> {
    root.list("/sys/devices/system/node")
        .into_iter()
        .filter_map(|name| {
            let id = name.strip_prefix("node")?.parse().ok()?;
            let cpus = root
                .read(&format!("/sys/devices/system/node/{name}/cpulist"))
                .and_then(|t| parse_cpu_list(&t))
                .unwrap_or_default();
            Some(NumaNode { id, cpus })
        })
        .collect()
}

fn cpu(root: &Root, id: u32, nodes: &[NumaNode]) -> Cpu {
    let base = format!("/sys/devices/system/cpu/cpu{id}");
    Cpu {
        id,
        siblings: root
            .read(&format!("{base}/topology/thread_siblings_list"))
            .and_then(|t| parse_cpu_list(&t))
            .unwrap_or_else(|| vec![id]),
        node: nodes.iter().find(|n| n.cpus.contains(&id)).map(|n| n.id),
        governor: root.read(&format!("{base}/cpufreq/scaling_governor")),
    }
}

fn nic(root: &Root, name: &str, interrupts: &str) -> Nic {
    let base = format!("/sys/class/net/{name}");
    let device = root.link_name(&format!("{base}/device"));
    let queues = |prefix: &str, mask: &str| -> Vec<Queue> {
        root.list(&format!("{base}/queues"))
            .into_iter()
            .filter(|q| q.starts_with(prefix))
            .map(|q| Queue {
                cpus_mask: root.read(&format!("{base}/queues/{q}/{mask}")),
                name: q,
            })
            .collect()
    };
    let irqs = nic_irqs(root, name, device.as_deref(), interrupts);
    Nic {
        name: name.to_string(),
        numa_node: root
            .read(&format!("{base}/device/numa_node"))
            .and_then(|t| t.trim().parse().ok()),
        device,
        rx_queues: queues("rx-", "rps_cpus"),
        tx_queues: queues("tx-", "xps_cpus"),
        irqs,
    }
}

/// Lines of `/proc/interrupts` naming the interface (`eth0-TxRx-0`) or its
/// device (`virtio1-input.0`, `mlx5_comp0@pci:0000:3b:00.0`), except the
/// device's configuration interrupt.
fn nic_irqs(root: &Root, name: &str, device: Option<&str>, interrupts: &str) -> Vec<Irq> {
    let mut lines = interrupts.lines();
    let ncpu = lines
        .next()
        .map(|h| h.split_whitespace().count())
        .unwrap_or(0);
    let mut out = Vec::new();
    for line in lines {
        let Some((irq, rest)) = line.split_once(':') else {
            continue;
        };
        let irq = irq.trim();
        if !irq.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let Some(label) = fields.last() else { continue };
        let matches = |word: &str| {
            label.starts_with(&format!("{word}-"))
                || label.starts_with(&format!("{word}_"))
                || label.ends_with(word)
                || *label == word
        };
        let ours = matches(name) || device.is_some_and(matches);
        if !ours || label.ends_with("-config") {
            continue;
        }
        let per_cpu = fields
            .iter()
            .take(ncpu)
            .map_while(|f| f.parse().ok())
            .collect();
        out.push(Irq {
            irq: irq.to_string(),
            name: label.to_string(),
            per_cpu,
            affinity: root
                .read(&format!("/proc/irq/{irq}/smp_affinity_list"))
                .and_then(|t| parse_cpu_list(&t)),
        });
    }
    out
}
