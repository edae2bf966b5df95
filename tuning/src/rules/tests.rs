//! Every rule against fake `/proc` and `/sys` trees: one tree per case,
//! built in a temporary directory, probes answered by [`FixedProbe`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::finding::{FixKind, Severity};
use crate::probe::{FixedProbe, Limit, RingFlag};
use crate::profile;
use crate::report::Report;
use crate::root::Root;

/// A fake root directory, removed when dropped.
struct Tree {
    dir: PathBuf,
}

impl Tree {
    fn empty() -> Tree {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringway-tune-rules-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Tree { dir }
    }

    /// A tidy host: `ncpu` CPUs without SMT, one NUMA node, kernel 6.8,
    /// every sysctl at the profile's value, one NIC `eth0` with a queue
    /// pair per CPU and its interrupts spread.
    fn host(ncpu: u32) -> Tree {
        let t = Tree::empty();
        let all = format!("0-{}", ncpu - 1);
        t.file("sys/devices/system/cpu/online", &all);
        t.file("sys/devices/system/cpu/isolated", "");
        t.file("sys/devices/system/node/node0/cpulist", &all);
        for c in 0..ncpu {
            t.file(
                &format!("sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list"),
                &c.to_string(),
            );
        }
        t.file("proc/sys/kernel/osrelease", "6.8.0-45-generic");
        for s in profile::settings() {
            t.file(&s.proc_path(), &s.value.replace(' ', "\t"));
        }
        t.file("proc/sys/net/core/busy_poll", "0");
        t.file("proc/sys/net/core/busy_read", "0");
        t.nic("eth0", "0000:3b:00.0", ncpu, ncpu);
        let mut interrupts = String::from("    ");
        for c in 0..ncpu {
            interrupts.push_str(&format!("       CPU{c}"));
        }
        interrupts.push('\n');
        for q in 0..ncpu {
            let irq = 100 + q;
            interrupts.push_str(&format!("{irq}:"));
            for c in 0..ncpu {
                let n = if c == q { 5000 } else { 3 };
                interrupts.push_str(&format!(" {n:>10}"));
            }
            interrupts.push_str(&format!(
                "  PCI-MSIX-0000:3b:00.0 {q}-edge  eth0-TxRx-{q}\n"
            ));
            t.file(&format!("proc/irq/{irq}/smp_affinity_list"), &q.to_string());
        }
        interrupts.push_str(" LOC:   12345   12345   Local timer interrupts\n");
        t.file("proc/interrupts", &interrupts);
        t
    }

    fn nic(&self, name: &str, device: &str, rx: u32, tx: u32) {
        let base = format!("sys/class/net/{name}");
        let dev = self.dir.join(format!("sys/devices/pci/{device}"));
        std::fs::create_dir_all(&dev).unwrap();
        self.file(&format!("sys/devices/pci/{device}/numa_node"), "-1");
        std::fs::create_dir_all(self.dir.join(&base)).unwrap();
        let _ = std::fs::remove_file(self.dir.join(format!("{base}/device")));
        std::os::unix::fs::symlink(&dev, self.dir.join(format!("{base}/device"))).unwrap();
        let _ = std::fs::remove_dir_all(self.dir.join(format!("{base}/queues")));
        for q in 0..rx {
            self.file(&format!("{base}/queues/rx-{q}/rps_cpus"), "0");
        }
        for q in 0..tx {
            self.file(
                &format!("{base}/queues/tx-{q}/xps_cpus"),
                &format!("{:x}", 1u64 << q),
            );
        }
    }

    fn file(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{text}\n")).unwrap();
    }

    fn sysctl(&self, key: &str, value: &str) {
        self.file(&profile::proc_path(key), value);
    }

    fn remove(&self, rel: &str) {
        let _ = std::fs::remove_file(self.dir.join(rel.trim_start_matches('/')));
    }

    fn inspect_with(&self, probe: &FixedProbe) -> Report {
        crate::inspect(&Root::new(&self.dir), probe)
    }

    fn inspect(&self) -> Report {
        self.inspect_with(&good_probe())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn good_probe() -> FixedProbe {
    FixedProbe {
        nofile: Some(Limit {
            soft: Some(1_048_576),
            hard: Some(1_048_576),
        }),
        memlock: Some(Limit {
            soft: Some(8 << 20),
            hard: Some(8 << 20),
        }),
        ..FixedProbe::default()
    }
}

/// The finding `id`, asserting it exists.
fn finding<'a>(r: &'a Report, id: &str) -> &'a crate::Finding {
    r.find(id)
        .unwrap_or_else(|| panic!("no finding {id} in {:#?}", r.findings))
}

fn fix_text(r: &Report, id: &str) -> String {
    let f = finding(r, id);
    f.fix
        .as_ref()
        .unwrap_or_else(|| panic!("{id} has no fix: {f:#?}"))
        .text
        .clone()
}

#[test]
fn a_tidy_host_has_nothing_to_fix() {
    let t = Tree::host(4);
    let r = t.inspect();
    let with_fix: Vec<_> = r.findings.iter().filter(|f| f.fix.is_some()).collect();
    assert!(with_fix.is_empty(), "{with_fix:#?}");
    assert_eq!(r.summary.warn + r.summary.critical, 0);
    assert_eq!(r.summary.ok, r.findings.len());
    // Every rule said something.
    for rule in super::RULES {
        assert!(
            r.findings.iter().any(|f| f.id.starts_with(rule.id)),
            "rule {} gave no finding",
            rule.id
        );
    }
}

#[test]
fn smt_siblings_get_one_worker_per_core() {
    let t = Tree::host(4);
    for (c, s) in [(0, "0,2"), (1, "1,3"), (2, "0,2"), (3, "1,3")] {
        t.file(
            &format!("sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list"),
            s,
        );
    }
    let r = t.inspect();
    let f = finding(&r, "cpu.smt");
    assert!(f.seen.contains("4 CPUs on 2 cores"), "{}", f.seen);
    assert_eq!(f.fix.as_ref().unwrap().kind, FixKind::Config);
    assert_eq!(
        fix_text(&r, "cpu.smt"),
        "[runtime]\nworkers = 2\ncores = [0, 1]"
    );
}

#[test]
fn governor() {
    let t = Tree::host(2);
    let r = t.inspect();
    assert!(finding(&r, "cpu.governor").seen.contains("no cpufreq"));
    t.file(
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "performance",
    );
    t.file(
        "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
        "powersave",
    );
    let r = t.inspect();
    let f = finding(&r, "cpu.governor");
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(f.seen, "cpu1 powersave");
    assert!(fix_text(&r, "cpu.governor").starts_with("cpupower frequency-set -g performance"));
    t.file(
        "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
        "performance",
    );
    let f = t.inspect();
    assert!(finding(&f, "cpu.governor").fix.is_none());
}

#[test]
fn isolated_cores_become_the_worker_cores() {
    let t = Tree::host(4);
    t.file("sys/devices/system/cpu/isolated", "2-3");
    let r = t.inspect();
    assert_eq!(finding(&r, "cpu.isolated").severity, Severity::Info);
    assert_eq!(
        fix_text(&r, "cpu.isolated"),
        "[runtime]\nworkers = 2\ncores = [2, 3]"
    );
}

#[test]
fn numa_workers_on_the_nic_node() {
    let t = Tree::host(4);
    t.file("sys/devices/system/node/node0/cpulist", "0-1");
    t.file("sys/devices/system/node/node1/cpulist", "2-3");
    t.file("sys/devices/pci/0000:3b:00.0/numa_node", "1");
    let r = t.inspect();
    let f = finding(&r, "numa.nodes");
    assert_eq!(f.severity, Severity::Warn);
    assert!(f.seen.contains("eth0 is on node1"), "{}", f.seen);
    assert_eq!(
        fix_text(&r, "numa.nodes"),
        "[runtime]\nworkers = 2\ncores = [2, 3]"
    );
    assert_eq!(r.facts.cpus[3].node, Some(1));
}

#[test]
fn one_receive_queue_wants_rps() {
    let t = Tree::host(4);
    t.nic("eth0", "0000:3b:00.0", 1, 1);
    let r = t.inspect();
    assert!(finding(&r, "nic.queues.eth0")
        .seen
        .contains("1 rx / 1 tx queues for 4 CPUs"));
    assert!(fix_text(&r, "nic.queues.eth0").contains("ethtool -L eth0 combined 4"));
    let f = finding(&r, "nic.rps.eth0");
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        fix_text(&r, "nic.rps.eth0"),
        "echo f > /sys/class/net/eth0/queues/rx-0/rps_cpus"
    );
    // Once set, nothing to do.
    t.file("sys/class/net/eth0/queues/rx-0/rps_cpus", "f");
    let r = t.inspect();
    assert!(finding(&r, "nic.rps.eth0").fix.is_none());
    // Virtual interfaces (no device link) are left out.
    t.file("sys/class/net/lo/queues/rx-0/rps_cpus", "0");
    let r = t.inspect();
    assert!(r.find("nic.rps.lo").is_none());
}

#[test]
fn xps_unset_on_several_transmit_queues() {
    let t = Tree::host(4);
    t.nic("eth0", "0000:3b:00.0", 4, 2);
    t.file("sys/class/net/eth0/queues/tx-0/xps_cpus", "0");
    t.file("sys/class/net/eth0/queues/tx-1/xps_cpus", "0");
    let r = t.inspect();
    assert_eq!(
        fix_text(&r, "nic.xps.eth0"),
        "echo 5 > /sys/class/net/eth0/queues/tx-0/xps_cpus\n\
         echo a > /sys/class/net/eth0/queues/tx-1/xps_cpus"
    );
}

#[test]
fn nic_interrupts_all_on_one_cpu() {
    let t = Tree::host(2);
    t.file(
        "proc/interrupts",
        "           CPU0       CPU1\n\
         \x2028:          0          0  PCI-MSIX-0000:00:03.0   0-edge      virtio2-config\n\
         \x2038:       9000          0  PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n\
         \x2039:       7000          2  PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0\n\
         \x2040:     100000     100000  PCI-MSIX-0000:00:04.0   1-edge      virtio21-input.0\n\
         NMI:          0          0   Non-maskable interrupts\n",
    );
    t.nic("eth0", "virtio2", 1, 1);
    t.file("proc/irq/38/smp_affinity_list", "0");
    t.file("proc/irq/39/smp_affinity_list", "0-1");
    let r = t.inspect();
    let irqs = &r.facts.nics[0].irqs;
    // The config interrupt and another device's (virtio21) are not eth0's.
    assert_eq!(
        irqs.iter().map(|i| i.irq.as_str()).collect::<Vec<_>>(),
        ["38", "39"]
    );
    let f = finding(&r, "nic.irq.eth0");
    assert_eq!(f.severity, Severity::Warn);
    assert!(
        f.seen.contains("99 % of 16002 interrupts on CPU 0"),
        "{}",
        f.seen
    );
    assert_eq!(
        fix_text(&r, "nic.irq.eth0"),
        "systemctl stop irqbalance   # if it runs, it moves them back\n\
         echo 0 > /proc/irq/38/smp_affinity_list\n\
         echo 1 > /proc/irq/39/smp_affinity_list"
    );
    // The tidy host's interrupts are spread.
    let r = Tree::host(4).inspect();
    assert_eq!(finding(&r, "nic.irq.eth0").severity, Severity::Info);
    assert_eq!(r.facts.nics[0].irqs.len(), 4);
}

#[test]
fn io_uring_disabled() {
    let t = Tree::host(2);
    let line = profile::setting("kernel.io_uring_disabled").line();
    for (value, severity, fixed) in [
        ("0", Severity::Info, false),
        ("1", Severity::Warn, true),
        ("2", Severity::Critical, true),
    ] {
        t.sysctl("kernel.io_uring_disabled", value);
        let r = t.inspect();
        let f = finding(&r, "uring.disabled");
        assert_eq!(f.severity, severity, "{value}");
        assert_eq!(
            f.fix.as_ref().map(|f| f.text.clone()),
            fixed.then(|| line.clone())
        );
    }
    t.remove(&profile::proc_path("kernel.io_uring_disabled"));
    let r = t.inspect();
    assert!(finding(&r, "uring.disabled").seen.contains("absent"));
}

#[test]
fn kernel_version() {
    let t = Tree::host(2);
    for (release, severity) in [
        ("5.4.0-150-generic", Severity::Critical),
        ("5.15.0", Severity::Warn),
        ("6.1.0-26-amd64", Severity::Info),
    ] {
        t.file("proc/sys/kernel/osrelease", release);
        let r = t.inspect();
        assert_eq!(finding(&r, "uring.kernel").severity, severity, "{release}");
    }
}

#[test]
fn ring_setup_refused_by_seccomp_or_sysctl() {
    let t = Tree::host(2);
    let eperm = FixedProbe {
        base_error: Some("Operation not permitted (os error 1)".into()),
        ..good_probe()
    };
    let r = t.inspect_with(&eperm);
    let f = finding(&r, "uring.setup");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.why.contains("seccomp"), "{}", f.why);
    assert_eq!(f.fix.as_ref().unwrap().kind, FixKind::Systemd);
    assert!(fix_text(&r, "uring.setup").starts_with(
        "SystemCallFilter=@system-service io_uring_setup io_uring_enter io_uring_register"
    ));
    t.sysctl("kernel.io_uring_disabled", "2");
    let r = t.inspect_with(&eperm);
    assert_eq!(
        fix_text(&r, "uring.setup"),
        profile::setting("kernel.io_uring_disabled").line()
    );
    let enomem = FixedProbe {
        base_error: Some("Cannot allocate memory (os error 12)".into()),
        ..good_probe()
    };
    let r = t.inspect_with(&enomem);
    assert_eq!(fix_text(&r, "uring.setup"), "LimitMEMLOCK=infinity");
}

#[test]
fn ring_flags_the_kernel_refuses() {
    let t = Tree::host(2);
    let old = FixedProbe {
        refused: vec![RingFlag::SingleIssuer, RingFlag::DeferTaskrun],
        ..good_probe()
    };
    let r = t.inspect_with(&old);
    let f = finding(&r, "uring.setup");
    assert_eq!(f.severity, Severity::Warn);
    assert!(
        f.seen.contains(
            "refused: single_issuer, single_issuer+defer_taskrun, single_issuer+coop_taskrun"
        ),
        "{}",
        f.seen
    );
    assert_eq!(
        fix_text(&r, "uring.setup"),
        "[runtime]\nring_flags = [\"coop_taskrun\"]"
    );
    let r = t.inspect();
    let f = finding(&r, "uring.setup");
    assert_eq!((f.severity, f.fix.is_none()), (Severity::Info, true));
    assert!(f.seen.ends_with("refused: none"));
    let r = crate::inspect(&Root::new(&t.dir), &crate::probe::NoProbe);
    assert!(finding(&r, "uring.setup").seen.contains("not probed"));
}

#[test]
fn memlock_before_5_12() {
    let t = Tree::host(2);
    t.file("proc/sys/kernel/osrelease", "5.10.0-30-amd64");
    let small = FixedProbe {
        memlock: Some(Limit {
            soft: Some(65536),
            hard: Some(65536),
        }),
        ..good_probe()
    };
    let r = t.inspect_with(&small);
    let f = finding(&r, "uring.memlock");
    assert_eq!(f.severity, Severity::Warn);
    assert!(fix_text(&r, "uring.memlock").starts_with("LimitMEMLOCK=infinity"));
    // Unlimited, or a newer kernel: fine.
    let unlimited = FixedProbe {
        memlock: Some(Limit {
            soft: None,
            hard: None,
        }),
        ..good_probe()
    };
    assert!(finding(&t.inspect_with(&unlimited), "uring.memlock")
        .fix
        .is_none());
    t.file("proc/sys/kernel/osrelease", "6.1.0");
    assert!(finding(&t.inspect_with(&small), "uring.memlock")
        .fix
        .is_none());
}

#[test]
fn nofile_limit() {
    let t = Tree::host(2);
    let low = FixedProbe {
        nofile: Some(Limit {
            soft: Some(1024),
            hard: Some(524288),
        }),
        ..good_probe()
    };
    let r = t.inspect_with(&low);
    let f = finding(&r, "limits.nofile");
    assert_eq!(f.severity, Severity::Warn);
    assert!(f.seen.contains("need 40064"), "{}", f.seen);
    assert!(fix_text(&r, "limits.nofile").starts_with("LimitNOFILE=1048576"));
}

#[test]
fn each_sysctl_of_the_profile() {
    let t = Tree::host(2);
    t.sysctl("net.core.somaxconn", "128");
    t.sysctl("net.ipv4.tcp_max_syn_backlog", "1024");
    t.sysctl("net.ipv4.ip_local_port_range", "32768\t60999");
    t.sysctl("net.ipv4.tcp_tw_reuse", "2");
    t.sysctl("fs.nr_open", "1048576");
    t.sysctl("fs.file-max", "9223372036854775807");
    t.sysctl("net.core.rmem_max", "212992");
    t.sysctl("net.ipv4.tcp_rmem", "4096 131072 6291456");
    t.sysctl("net.ipv4.tcp_wmem", "4096 16384 33554432");
    t.sysctl("net.ipv4.tcp_slow_start_after_idle", "1");
    let r = t.inspect();
    let sev = |key: &str| finding(&r, &format!("sysctl.{key}")).severity;
    for key in [
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
        "fs.nr_open",
    ] {
        assert_eq!(sev(key), Severity::Warn, "{key}");
        assert_eq!(
            fix_text(&r, &format!("sysctl.{key}")),
            profile::setting(key).line()
        );
        assert_eq!(
            finding(&r, &format!("sysctl.{key}"))
                .fix
                .as_ref()
                .unwrap()
                .kind,
            FixKind::Sysctl
        );
    }
    // Higher than recommended is fine.
    assert!(finding(&r, "sysctl.fs.file-max").fix.is_none());
    for key in [
        "net.core.rmem_max",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
    ] {
        assert_eq!(sev(key), Severity::Info, "{key}");
        assert_eq!(
            fix_text(&r, &format!("sysctl.{key}")),
            profile::setting(key).line()
        );
    }
    // The profile comment is the reason when the rule has none of its own.
    assert!(finding(&r, "sysctl.net.core.rmem_max")
        .why
        .contains("Socket buffers"));
    // At or above ringway's own backlog, somaxconn no longer caps ringway.
    t.sysctl("net.core.somaxconn", "4096");
    let r = t.inspect();
    let f = finding(&r, "sysctl.net.core.somaxconn");
    assert_eq!((f.severity, f.fix.is_some()), (Severity::Info, true));
    // Every key of the profile is judged (io_uring_disabled by uring.disabled).
    for s in profile::settings() {
        let id = if s.key == "kernel.io_uring_disabled" {
            "uring.disabled".to_string()
        } else {
            format!("sysctl.{}", s.key)
        };
        finding(&r, &id);
    }
    t.remove(&profile::proc_path("net.core.wmem_max"));
    assert!(finding(&t.inspect(), "sysctl.net.core.wmem_max")
        .seen
        .contains("absent"));
}

#[test]
fn busy_poll() {
    let t = Tree::host(2);
    assert!(finding(&t.inspect(), "net.busy_poll").fix.is_none());
    t.sysctl("net.core.busy_poll", "50");
    let r = t.inspect();
    assert!(fix_text(&r, "net.busy_poll").starts_with("net.core.busy_poll = 0"));
}

#[test]
fn text_output_names_every_finding() {
    let t = Tree::host(2);
    t.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let r = t.inspect();
    let text = r.text();
    assert!(text.starts_with("ringway-tune inspect: root "), "{text}");
    assert!(text.contains("kernel 6.8.0-45-generic, CPUs 0-1, 1 NUMA node(s)"));
    assert!(
        text.contains("\nwarn     sysctl.net.ipv4.tcp_tw_reuse\n"),
        "{text}"
    );
    assert!(text.contains("  fix (sysctl):\n    net.ipv4.tcp_tw_reuse = 1\n"));
    assert!(text.contains("\nok       uring.kernel\n"));
    assert!(text.trim_end().ends_with(&format!(
        "0 critical, 1 warn, {} info ({} of them ok)",
        r.summary.info, r.summary.ok
    )));
    for f in &r.findings {
        assert!(text.contains(&f.id));
    }
    // Most severe first.
    assert_eq!(r.findings[0].id, "sysctl.net.ipv4.tcp_tw_reuse");
}
