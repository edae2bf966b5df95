//! Every file `inspect` reads goes through a [`Root`]: `/` on a real host, a
//! directory holding a fake `proc/` and `sys/` tree in tests (`--root DIR`).

use std::path::{Path, PathBuf};

/// The directory that stands for `/`.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root(dir.into())
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// `rel` (absolute or not) under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    /// The file's text without its trailing newline; `None` when it cannot
    /// be read (absent, or not readable by this user).
    pub fn read(&self, rel: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path(rel)).ok()?;
        Some(text.trim_end_matches(['\n', '\r']).to_string())
    }

    /// Names in a directory, sorted; empty when it cannot be listed.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort_by(|a, b| natural_cmp(a, b));
        names
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// The last component of a symbolic link's target
    /// (`/sys/class/net/eth0/device` → `virtio1`).
    pub fn link_name(&self, rel: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(rel)).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }
}

/// `cpu2` before `cpu10`, `rx-2` before `rx-10`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head, tail.parse().ok())
    }
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

/// A kernel CPU list: `0-3,8,10-11` → `[0, 1, 2, 3, 8, 10, 11]`. Empty text
/// is an empty list; `None` when it does not parse.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 65536 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

/// The inverse of [`parse_cpu_list`]: `[0, 1, 2, 5]` → `0-2,5`.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// A hexadecimal CPU mask as in `rps_cpus` (`00000000,0000000f`): the CPUs
/// whose bits are set. `None` when it does not parse.
pub fn parse_cpu_mask(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    let mut bit = 0u32;
    for word in text.trim().split(',').rev() {
        let value = u32::from_str_radix(word, 16).ok()?;
        for b in 0..32 {
            if value & (1 << b) != 0 {
                cpus.push(bit + b);
            }
        }
        bit += 32;
    }
    cpus.sort_unstable();
    Some(cpus)
}

/// A hexadecimal mask with the given CPUs set, written as the kernel reads
/// it (`0,1` → `3`).
pub fn format_cpu_mask(cpus: &[u32]) -> String {
    let words = cpus.iter().map(|c| c / 32 + 1).max().unwrap_or(1) as usize;
    let mut w = vec![0u32; words];
    for &c in cpus {
        w[(c / 32) as usize] |= 1 << (c % 32);
    }
    let mut parts: Vec<String> = w.iter().rev().map(|v| format!("{v:08x}")).collect();
    // The first word without leading zeros: `3`, not `00000003`.
    parts[0] = format!("{:x}", w[words - 1]);
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_masks() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(parse_cpu_mask("00000000,0000000f"), Some(vec![0, 1, 2, 3]));
        assert_eq!(parse_cpu_mask("0"), Some(vec![]));
        assert_eq!(parse_cpu_mask("1,00000001"), Some(vec![0, 32]));
        assert_eq!(format_cpu_mask(&[0, 1]), "3");
        assert_eq!(format_cpu_mask(&[0, 32]), "1,00000001");
        assert!(natural_cmp("cpu2", "cpu10").is_lt());
    }
}
