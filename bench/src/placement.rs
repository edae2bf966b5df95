//! Where each process runs.
//!
//! The cores are split in two sides: the *load* side (default: the first core
//! of `--cores`) and the *contender* side (the rest). Then:
//!
//! - **A**: contender alone on the contender side; origin and load generator
//!   share the load side.
//! - **B**: contender and origin share the contender side; the load generator
//!   is alone on the load side.
//!
//! With `N` workers the contender's worker `i` is pinned to contender core
//! `i % len`; more workers than contender cores is flagged as oversubscribed.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    A,
    B,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::A => "A",
            Placement::B => "B",
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            Placement::A => "contender alone; origin + load generator together",
            Placement::B => "contender + origin together; load generator alone",
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `A`, `B` or `both`.
pub fn parse_placements(s: &str) -> Result<Vec<Placement>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "a" => Ok(vec![Placement::A]),
        "b" => Ok(vec![Placement::B]),
        "both" | "a,b" => Ok(vec![Placement::A, Placement::B]),
        other => Err(format!("placement must be A, B or both, not {other:?}")),
    }
}

/// `0,2-3` → [0, 2, 3] (order kept, duplicates dropped).
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo.parse().map_err(|_| format!("bad core {part:?}"))?;
        let hi: usize = hi.parse().map_err(|_| format!("bad core {part:?}"))?;
        if hi < lo {
            return Err(format!("bad core range {part:?}"));
        }
        for c in lo..=hi {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Err("empty core list".into());
    }
    Ok(out)
}

pub fn format_core_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The two sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    pub load: Vec<usize>,
    pub contender: Vec<usize>,
}

impl Sides {
    /// First core → load side, the rest → contender side. A single core is
    /// used for both (flagged by [`Layout::notes`]).
    pub fn split(cores: &[usize]) -> Sides {
        match cores {
            [] => Sides {
                load: vec![0],
                contender: vec![0],
            },
            [only] => Sides {
                load: vec![*only],
                contender: vec![*only],
            },
            [first, rest @ ..] => Sides {
                load: vec![*first],
                contender: rest.to_vec(),
            },
        }
    }
}

/// Cores of every process for one placement and worker count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub placement: Placement,
    pub workers: usize,
    /// Core of each contender worker (`workers` entries).
    pub worker_cores: Vec<usize>,
    /// Affinity mask of the contender process(es).
    pub contender_mask: Vec<usize>,
    pub origin: Vec<usize>,
    pub load: Vec<usize>,
}

impl Layout {
    pub fn new(placement: Placement, sides: &Sides, workers: usize) -> Layout {
        let workers = workers.max(1);
        let worker_cores: Vec<usize> = (0..workers)
            .map(|i| sides.contender[i % sides.contender.len()])
            .collect();
        let mut contender_mask = worker_cores.clone();
        contender_mask.sort_unstable();
        contender_mask.dedup();
        let origin = match placement {
            Placement::A => sides.load.clone(),
            Placement::B => sides.contender.clone(),
        };
        Layout {
            placement,
            workers,
            worker_cores,
            contender_mask,
            origin,
            load: sides.load.clone(),
        }
    }

    /// Every core any process of the run uses.
    pub fn all_cores(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .contender_mask
            .iter()
            .chain(&self.origin)
            .chain(&self.load)
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Honest remarks about the layout (shared or oversubscribed cores).
    pub fn notes(&self) -> Vec<String> {
        let mut n = Vec::new();
        if self.workers > self.contender_mask.len() {
            n.push(format!(
                "oversubscribed: {} workers on {} core(s)",
                self.workers,
                self.contender_mask.len()
            ));
        }
        if self.contender_mask.iter().any(|c| self.load.contains(c)) {
            n.push("contender shares a core with the load generator".into());
        }
        n
    }

    pub fn describe(&self) -> String {
        format!(
            "placement {} ({}): contender cores [{}], origin [{}], load generator [{}]",
            self.placement,
            self.placement.describe(),
            format_core_list(&self.contender_mask),
            format_core_list(&self.origin),
            format_core_list(&self.load)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("0,1").unwrap(), vec![0, 1]);
        assert_eq!(parse_core_list("0, 2-4,3").unwrap(), vec![0, 2, 3, 4]);
        assert!(parse_core_list("").is_err());
        assert!(parse_core_list("3-1").is_err());
        assert!(parse_core_list("x").is_err());
        assert_eq!(format_core_list(&[1, 2]), "1,2");
    }

    #[test]
    fn placements() {
        assert_eq!(parse_placements("A").unwrap(), vec![Placement::A]);
        assert_eq!(parse_placements("b").unwrap(), vec![Placement::B]);
        assert_eq!(parse_placements("both").unwrap().len(), 2);
        assert!(parse_placements("c").is_err());
    }

    #[test]
    fn two_core_layouts() {
        let s = Sides::split(&[0, 1]);
        assert_eq!(s.load, vec![0]);
        assert_eq!(s.contender, vec![1]);
        let a = Layout::new(Placement::A, &s, 1);
        assert_eq!(a.worker_cores, vec![1]);
        assert_eq!(a.origin, vec![0]);
        assert_eq!(a.load, vec![0]);
        assert!(a.notes().is_empty());
        let b = Layout::new(Placement::B, &s, 1);
        assert_eq!(b.origin, vec![1]);
        assert_eq!(b.all_cores(), vec![0, 1]);
        let b2 = Layout::new(Placement::B, &s, 2);
        assert_eq!(b2.worker_cores, vec![1, 1]);
        assert_eq!(b2.contender_mask, vec![1]);
        assert!(b2.notes()[0].contains("2 workers on 1 core"));
    }

    #[test]
    fn single_core() {
        let s = Sides::split(&[3]);
        let a = Layout::new(Placement::A, &s, 1);
        assert_eq!(a.all_cores(), vec![3]);
        assert!(a.notes().iter().any(|n| n.contains("shares a core")));
    }
}
