//! io_uring telemetry read from the kernel (`/proc/self/fdinfo/<ring fd>`),
//! so workers do no extra work for it.
//!
//! The kernel reports 32-bit ring positions: `SqHead` counts submission
//! entries consumed, `CqTail` completions posted. Readers that sample them
//! regularly turn them into 64-bit totals ([`RingTotals`]). In-flight is an
//! estimate (`SqHead - CqTail`; multishot operations complete more than once).

use std::fs;

/// One reading of a ring's fdinfo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingSample {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub sq_head: u32,
    pub sq_tail: u32,
    pub cq_head: u32,
    pub cq_tail: u32,
    /// CQEs waiting on the overflow list right now.
    pub cq_overflow_pending: u32,
}

impl RingSample {
    pub fn read(fd: i32) -> Option<RingSample> {
        let text = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Option<RingSample> {
        let mut s = RingSample::default();
        let mut seen = false;
        let mut in_overflow = false;
        for line in text.lines() {
            if in_overflow {
                if line.starts_with(char::is_whitespace) {
                    s.cq_overflow_pending += 1;
                    continue;
                }
                in_overflow = false;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let num = || -> Option<u32> {
                match value.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => value.parse().ok(),
                }
            };
            match key {
                "SqMask" => s.sq_entries = num()?.wrapping_add(1),
                "CqMask" => s.cq_entries = num()?.wrapping_add(1),
                "SqHead" => {
                    s.sq_head = num()?;
                    seen = true;
                }
                "SqTail" => s.sq_tail = num()?,
                "CqHead" => s.cq_head = num()?,
                "CqTail" => s.cq_tail = num()?,
                "CqOverflowList" => in_overflow = true,
                _ => {}
            }
        }
        seen.then_some(s)
    }

    /// Operations submitted and not yet completed (estimate).
    pub fn in_flight(&self) -> u32 {
        self.sq_head.wrapping_sub(self.cq_tail)
    }
}

/// 64-bit totals built from successive samples (wrap-around safe as long
/// as fewer than 2^32 events happen between two samples).
#[derive(Debug, Clone, Copy, Default)]
pub struct RingTotals {
    pub submissions: u64,
    pub completions: u64,
    last: Option<RingSample>,
}

impl RingTotals {
    pub fn update(&mut self, s: RingSample) {
        match self.last {
            None => {
                self.submissions = s.sq_head as u64;
                self.completions = s.cq_tail as u64;
            }
            Some(prev) => {
                self.submissions += s.sq_head.wrapping_sub(prev.sq_head) as u64;
                self.completions += s.cq_tail.wrapping_sub(prev.cq_tail) as u64;
            }
        }
        self.last = Some(s);
    }

    pub fn last(&self) -> Option<RingSample> {
        self.last
    }
}

/// The io_uring file descriptors open in this process.
pub fn io_uring_fds() -> Vec<i32> {
    let mut fds = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            if target.to_string_lossy().contains("io_uring") {
                if let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                    fds.push(fd);
                }
            }
        }
    }
    fds.sort_unstable();
    fds
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "pos:\t0\nflags:\t02000002\nSqMask:\t0x3ff\nSqHead:\t4294967295\nSqTail:\t4294967295\nCachedSqHead:\t1\nCqMask:\t0x7ff\nCqHead:\t10\nCqTail:\t4294967290\nCachedCqTail:\t0\nSQEs:\t0\nCQEs:\t0\nPollList:\n  op=13, task_works=0\nCqOverflowList:\n  user_data=1, res=0, flags=0\nNAPI:\tdisabled\n";

    #[test]
    fn parses_fdinfo() {
        let s = RingSample::parse(SAMPLE).unwrap();
        assert_eq!(s.sq_entries, 1024);
        assert_eq!(s.cq_entries, 2048);
        assert_eq!(s.sq_head, u32::MAX);
        assert_eq!(s.in_flight(), 5);
        assert_eq!(s.cq_overflow_pending, 1);
    }

    #[test]
    fn totals_survive_wraparound() {
        let mut t = RingTotals::default();
        let mut s = RingSample::parse(SAMPLE).unwrap();
        t.update(s);
        s.sq_head = 9; // wrapped: +10
        s.cq_tail = 4; // wrapped: +10
        t.update(s);
        assert_eq!(t.submissions, u32::MAX as u64 + 10);
        assert_eq!(t.completions, 4294967290 + 10);
    }

    #[test]
    fn finds_own_ring() {
        let before = io_uring_fds();
        let ring = io_uring::IoUring::new(8);
        if let Ok(ring) = ring {
            let after = io_uring_fds();
            assert!(after.len() > before.len());
            drop(ring);
        }
    }
}
