//! Reading `/proc`: per-process CPU time (`/proc/PID/stat`), resident memory
//! (`/proc/PID/status`), process trees, and per-core busy time (`/proc/stat`).
//!
//! All CPU times are in clock ticks (`USER_HZ`, normally 100 per second);
//! [`ticks_to_us`] converts.

use std::collections::HashMap;
use std::fs;

/// The fields of `/proc/PID/stat` the benchmark needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStat {
    pub pid: i32,
    pub ppid: i32,
    /// User-mode CPU time of the whole process (all threads), in ticks.
    pub utime: u64,
    /// Kernel-mode CPU time of the whole process (all threads), in ticks.
    pub stime: u64,
}

impl PidStat {
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parse one `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so the fields
/// after it are found from the *last* `)`.
pub fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    // Fields after the name, numbered from 3 (state) in proc(5).
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Option<&str> { rest.get(n - 3).copied() };
    Some(PidStat {
        pid,
        ppid: field(4)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
    })
}

pub fn read_pid_stat(pid: i32) -> Option<PidStat> {
    parse_pid_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `VmRSS` in KiB from the text of `/proc/PID/status` (absent for zombies and
/// kernel threads).
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

pub fn read_vm_rss_kib(pid: i32) -> Option<u64> {
    parse_vm_rss_kib(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Every live process: pid → stat.
pub fn all_processes() -> HashMap<i32, PidStat> {
    let mut out = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(st) = read_pid_stat(pid) {
            out.insert(pid, st);
        }
    }
    out
}

/// `root` and all its descendants (nginx: master and workers).
pub fn tree_pids(procs: &HashMap<i32, PidStat>, root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        let mut kids: Vec<i32> = procs
            .values()
            .filter(|p| p.ppid == parent && p.pid != parent)
            .map(|p| p.pid)
            .collect();
        kids.sort_unstable();
        out.extend(kids);
        i += 1;
    }
    out.retain(|p| procs.contains_key(p));
    out
}

/// One `cpuN` line of `/proc/stat` (ticks since boot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// Time some task ran: user, nice and system. Interrupt time is left out:
    /// on loopback most of it is the benchmark's own network traffic, which no
    /// process is charged for.
    pub fn task_busy(&self) -> u64 {
        self.user + self.nice + self.system
    }
    /// Everything but idle and iowait.
    pub fn busy(&self) -> u64 {
        self.task_busy() + self.irq + self.softirq + self.steal
    }
    pub fn total(&self) -> u64 {
        self.busy() + self.idle + self.iowait
    }
    pub fn delta(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
    /// Busy share of the period, 0..=1.
    pub fn busy_fraction(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            t => self.busy() as f64 / t as f64,
        }
    }
}

/// Per-core times from the text of `/proc/stat`: core number → times (the
/// aggregate `cpu` line is skipped).
pub fn parse_proc_stat(text: &str) -> HashMap<usize, CpuTimes> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(label) = it.next() else { continue };
        let Some(n) = label.strip_prefix("cpu") else {
            continue;
        };
        let Ok(core) = n.parse::<usize>() else {
            continue;
        };
        let v: Vec<u64> = it.map(|x| x.parse().unwrap_or(0)).collect();
        let g = |i: usize| v.get(i).copied().unwrap_or(0);
        out.insert(
            core,
            CpuTimes {
                user: g(0),
                nice: g(1),
                system: g(2),
                idle: g(3),
                iowait: g(4),
                irq: g(5),
                softirq: g(6),
                steal: g(7),
            },
        );
    }
    out
}

pub fn read_proc_stat() -> HashMap<usize, CpuTimes> {
    parse_proc_stat(&fs::read_to_string("/proc/stat").unwrap_or_default())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

pub fn ticks_to_us(ticks: u64) -> f64 {
    ticks as f64 * 1e6 / clock_ticks_per_sec() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX_WORKER: &str = "4242 (nginx) S 4241 4241 23070 0 -1 4194624 1454 0 0 0 \
        17 83 0 0 20 0 1 0 233776 77455360 1955 18446744073709551615 1 1 0 0 0 0 0 4100 \
        17986 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn pid_stat_fields() {
        let s = parse_pid_stat(NGINX_WORKER).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.ppid, 4241);
        assert_eq!(s.utime, 17);
        assert_eq!(s.stime, 83);
        assert_eq!(s.cpu_ticks(), 100);
    }

    #[test]
    fn pid_stat_name_with_spaces_and_parens() {
        let line = "77 (we ird) (x) R 1 77 77 0 -1 0 0 0 0 0 5 7 0 0 20 0 1 0 1 1 1";
        let s = parse_pid_stat(line).unwrap();
        assert_eq!((s.pid, s.ppid, s.utime, s.stime), (77, 1, 5, 7));
    }

    #[test]
    fn pid_stat_garbage() {
        assert_eq!(parse_pid_stat(""), None);
        assert_eq!(parse_pid_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_pid_stat("12 x) S (1"), None);
    }

    #[test]
    fn own_stat_reads() {
        let me = read_pid_stat(std::process::id() as i32).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(read_vm_rss_kib(me.pid).unwrap() > 0);
    }

    #[test]
    fn vm_rss() {
        let status = "Name:\tnginx\nVmPeak:\t  10 kB\nVmRSS:\t    7728 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss_kib(status), Some(7728));
        assert_eq!(parse_vm_rss_kib("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn trees() {
        let mk = |pid, ppid| PidStat {
            pid,
            ppid,
            utime: 1,
            stime: 1,
        };
        let procs: HashMap<i32, PidStat> = [
            mk(1, 0),
            mk(10, 1),
            mk(11, 10),
            mk(12, 10),
            mk(13, 11),
            mk(20, 1),
        ]
        .into_iter()
        .map(|p| (p.pid, p))
        .collect();
        assert_eq!(tree_pids(&procs, 10), vec![10, 11, 12, 13]);
        assert_eq!(tree_pids(&procs, 20), vec![20]);
        assert!(tree_pids(&procs, 99).is_empty());
    }

    #[test]
    fn proc_stat_lines() {
        let text = "cpu  214655 128975 50471 79289 5301 0 3664 2618 0 0\n\
                    cpu0 100567 67618 23531 43918 3280 0 2122 1310 0 0\n\
                    cpu1 114087 61357 26939 35370 2020 7 1541 1308 0 0\n\
                    intr 1 2 3\nctxt 99\n";
        let m = parse_proc_stat(text);
        assert_eq!(m.len(), 2);
        let c1 = m[&1];
        assert_eq!(c1.user, 114087);
        assert_eq!(c1.irq, 7);
        assert_eq!(c1.steal, 1308);
        assert_eq!(c1.task_busy(), 114087 + 61357 + 26939);
        assert_eq!(c1.busy(), c1.task_busy() + 7 + 1541 + 1308);
        assert_eq!(c1.total(), c1.busy() + 35370 + 2020);
    }

    #[test]
    fn cpu_delta_fraction() {
        let a = CpuTimes {
            user: 100,
            idle: 100,
            ..Default::default()
        };
        let b = CpuTimes {
            user: 130,
            system: 10,
            idle: 160,
            ..Default::default()
        };
        let d = b.delta(&a);
        assert_eq!(d.busy(), 40);
        assert_eq!(d.total(), 100);
        assert!((d.busy_fraction() - 0.4).abs() < 1e-9);
        assert_eq!(CpuTimes::default().busy_fraction(), 0.0);
        // Counters never go backwards, but a bad read must not underflow.
        assert_eq!(a.delta(&b).busy(), 0);
    }

    #[test]
    fn live_proc_stat_has_cores() {
        let m = read_proc_stat();
        assert!(m.contains_key(&0));
        assert!(clock_ticks_per_sec() >= 1);
        assert_eq!(ticks_to_us(clock_ticks_per_sec()), 1e6);
    }
}
