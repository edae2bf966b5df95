//! Small helpers: durations on the command line, UTC timestamps, machine facts.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `500ms`, `2s`, `1m`, or plain seconds (`2`, `1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (e.g. 500ms, 2s, 1m)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// `1,2` or `1-4` → worker counts.
pub fn parse_workers(s: &str) -> Result<Vec<usize>, String> {
    let v = crate::placement::parse_core_list(s)
        .map_err(|_| format!("bad worker list {s:?} (e.g. 1 or 1,2 or 1-4)"))?;
    if v.contains(&0) {
        return Err("worker counts start at 1".into());
    }
    Ok(v)
}

/// Civil date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm.
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (`2026-11-27 20:48:22 UTC`, `20261127-204822`) for a time.
pub fn timestamps(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let r = secs.rem_euclid(86_400);
    let (h, mi, s) = (r / 3600, r % 3600 / 60, r % 60);
    (
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC"),
        format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"),
    )
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn online_cpus() -> usize {
    crate::procstat::read_proc_stat().len().max(1)
}

pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn mem_total_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `abc1234` (+ `-dirty`), or `unknown`.
pub fn git_rev(root: &Path) -> String {
    let mut c = std::process::Command::new("git");
    c.arg("-C")
        .arg(root)
        .args(["describe", "--always", "--dirty", "--abbrev=10"]);
    match crate::procs::run_capture(&mut c, Duration::from_secs(20)) {
        Ok((0, out)) => out.lines().next().unwrap_or("unknown").trim().to_string(),
        _ => "unknown".into(),
    }
}

/// Newest modification time of any file under `dir` (recursively).
pub fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if let Ok(m) = md.modified() {
                newest = Some(newest.map_or(m, |n: SystemTime| n.max(m)));
            }
        }
    }
    newest
}

/// Raise the open-file limit to the hard limit (a proxy holds a client and an
/// upstream descriptor per busy connection: about 2,100 for conns-1000,
/// 19,900 for conns-9900, sized for this container's hard limit of 20,000);
/// children inherit it. compare.rs notes a limit too low for the selected
/// scenarios (`nofile_note`).
pub fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            return r.rlim_cur as u64;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn workers() {
        assert_eq!(parse_workers("1,2").unwrap(), vec![1, 2]);
        assert_eq!(parse_workers("1-3").unwrap(), vec![1, 2, 3]);
        assert!(parse_workers("0").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11016), (2000, 2, 29));
        assert_eq!(civil_from_days(20419), (2025, 11, 27));
        let t = UNIX_EPOCH + Duration::from_secs(1_795_812_502);
        let (human, file) = timestamps(t);
        assert_eq!(human, "2026-11-27 20:48:22 UTC");
        assert_eq!(file, "20261127-204822");
    }

    #[test]
    fn machine_facts() {
        assert!(online_cpus() >= 1);
        assert!(mem_total_kib() > 0);
        assert!(newest_mtime(Path::new(env!("CARGO_MANIFEST_DIR"))).is_some());
    }
}
