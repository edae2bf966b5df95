//! Is the machine quiet? Before each run: wait (bounded) until the cores the
//! benchmark uses are idle. During each run: compare how busy those cores were
//! with the CPU time of the benchmark's own processes, and flag the run when
//! something else used a noticeable share.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::procstat::{read_proc_stat, CpuTimes};

/// Busy share of each core over one sampling window.
pub fn sample_busy(cores: &[usize], window: Duration) -> Vec<(usize, f64)> {
    let a = read_proc_stat();
    std::thread::sleep(window);
    let b = read_proc_stat();
    busy_between(&a, &b, cores)
}

pub fn busy_between(
    a: &HashMap<usize, CpuTimes>,
    b: &HashMap<usize, CpuTimes>,
    cores: &[usize],
) -> Vec<(usize, f64)> {
    cores
        .iter()
        .map(|&c| {
            let d = match (a.get(&c), b.get(&c)) {
                (Some(a), Some(b)) => b.delta(a).busy_fraction(),
                _ => 0.0,
            };
            (c, d)
        })
        .collect()
}

/// Outcome of waiting for an idle machine.
#[derive(Debug, Clone)]
pub struct IdleWait {
    pub idle: bool,
    pub waited: Duration,
    /// Busy share per core in the last window.
    pub last: Vec<(usize, f64)>,
}

impl IdleWait {
    /// "cpu0 35%, cpu1 4%"
    pub fn describe(&self) -> String {
        self.last
            .iter()
            .map(|(c, f)| format!("cpu{c} {:.0}%", f * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sample in 250 ms windows until every core in `cores` is below `threshold`
/// busy (0..1), or `max_wait` has passed.
pub fn wait_for_idle(cores: &[usize], threshold: f64, max_wait: Duration) -> IdleWait {
    let start = Instant::now();
    loop {
        let last = sample_busy(cores, Duration::from_millis(250));
        let idle = last.iter().all(|&(_, f)| f < threshold);
        let waited = start.elapsed();
        if idle || waited >= max_wait {
            return IdleWait { idle, waited, last };
        }
    }
}

/// CPU accounting of one measured run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interference {
    /// Task busy time on the benchmark's cores (user+nice+system), µs.
    pub cores_busy_us: f64,
    /// CPU of the benchmark's own processes (contender, origin, load
    /// generator, this process), µs.
    pub ours_us: f64,
    /// Steal time on those cores (a hypervisor running someone else), µs.
    pub steal_us: f64,
    pub wall_us: f64,
}

impl Interference {
    /// CPU the rest of the machine used on our cores, as a fraction of one
    /// core over the run (0.05 = 5 % of a core).
    pub fn others_core_fraction(&self) -> f64 {
        if self.wall_us <= 0.0 {
            return 0.0;
        }
        ((self.cores_busy_us - self.ours_us).max(0.0)) / self.wall_us
    }

    pub fn steal_core_fraction(&self) -> f64 {
        if self.wall_us <= 0.0 {
            0.0
        } else {
            self.steal_us / self.wall_us
        }
    }

    /// A flag when others used more than `limit` of a core (or the hypervisor
    /// stole that much).
    pub fn flag(&self, limit: f64) -> Option<String> {
        let o = self.others_core_fraction();
        let s = self.steal_core_fraction();
        if o > limit {
            Some(format!(
                "interference: other processes used {:.0}% of a core",
                o * 100.0
            ))
        } else if s > limit {
            Some(format!(
                "interference: {:.0}% of a core stolen by the hypervisor",
                s * 100.0
            ))
        } else {
            None
        }
    }
}

/// Build the accounting from two `/proc/stat` readings.
pub fn interference(
    before: &HashMap<usize, CpuTimes>,
    after: &HashMap<usize, CpuTimes>,
    cores: &[usize],
    ours_us: f64,
    wall: Duration,
) -> Interference {
    let mut busy = 0;
    let mut steal = 0;
    for c in cores {
        if let (Some(a), Some(b)) = (before.get(c), after.get(c)) {
            let d = b.delta(a);
            busy += d.task_busy();
            steal += d.steal;
        }
    }
    Interference {
        cores_busy_us: crate::procstat::ticks_to_us(busy),
        ours_us,
        steal_us: crate::procstat::ticks_to_us(steal),
        wall_us: wall.as_secs_f64() * 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: u64, idle: u64) -> CpuTimes {
        CpuTimes {
            user,
            idle,
            ..Default::default()
        }
    }

    #[test]
    fn busy_per_core() {
        let a: HashMap<usize, CpuTimes> = [(0, t(0, 0)), (1, t(0, 0))].into();
        let b: HashMap<usize, CpuTimes> = [(0, t(5, 95)), (1, t(50, 50))].into();
        let v = busy_between(&a, &b, &[0, 1, 7]);
        assert_eq!(v, vec![(0, 0.05), (1, 0.5), (7, 0.0)]);
    }

    #[test]
    fn interference_math() {
        let hz = crate::procstat::clock_ticks_per_sec();
        // 2 s on 2 cores; our processes used 1.5 s of CPU; the cores were
        // busy 1.7 s: others used 0.2 s = 10 % of a core.
        let a: HashMap<usize, CpuTimes> = [(0, t(0, 0)), (1, t(0, 0))].into();
        let b: HashMap<usize, CpuTimes> =
            [(0, t(hz, hz)), (1, t(hz * 7 / 10, hz * 13 / 10))].into();
        let i = interference(&a, &b, &[0, 1], 1.5e6, Duration::from_secs(2));
        assert!((i.cores_busy_us - 1.7e6).abs() < 1.0);
        assert!((i.others_core_fraction() - 0.1).abs() < 1e-6);
        assert!(i.flag(0.05).unwrap().contains("10% of a core"));
        assert!(i.flag(0.2).is_none());
        // Ours larger than the busy time (tick rounding) is not negative.
        let i = interference(&a, &b, &[0, 1], 9e6, Duration::from_secs(2));
        assert_eq!(i.others_core_fraction(), 0.0);
    }

    #[test]
    fn steal_flag() {
        let i = Interference {
            cores_busy_us: 0.0,
            ours_us: 0.0,
            steal_us: 2e5,
            wall_us: 1e6,
        };
        assert!(i.flag(0.05).unwrap().contains("stolen"));
    }

    #[test]
    fn wait_is_bounded() {
        let w = wait_for_idle(&[0], -1.0, Duration::from_millis(100));
        assert!(!w.idle);
        assert!(w.waited < Duration::from_secs(2));
        assert!(w.describe().starts_with("cpu0 "));
    }
}
