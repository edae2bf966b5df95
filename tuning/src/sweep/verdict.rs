//! The objective, the noise rule, and the markdown report.
//!
//! Objectives ([`Objective`]):
//! - `cpu` (the default): the lowest **ringway CPU time per request at the
//!   fixed rate** (median over the repetitions). CPU per request is what a
//!   proxy costs at a given load; on a small machine the load generator
//!   shares the CPUs and bounds closed-loop throughput.
//! - `throughput`: the most **closed-loop req/s** (median) among variants
//!   whose p99 latency at the fixed rate (median) is within a stated SLO.
//!   When none is, the current settings are kept and the report says so.
//!
//! Either way only variants whose every run had no errors and kept up with
//! the rate (≥ 90 %) count.
//!
//! Noise: a variant's spread is max − min of its repetitions (of the
//! objective's measure). Two variants whose medians differ by no more than
//! the larger of their spreads are "within noise" of each other. When the
//! current settings are within noise of the best, they are kept.

use std::fmt::Write as _;

use super::{Run, Sample, Sweep};

/// What the sweep optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// Least ringway CPU time per request at the fixed rate.
    #[default]
    Cpu,
    /// Most closed-loop req/s among variants whose fixed-rate p99 is
    /// within `p99_slo`.
    Throughput { p99_slo: std::time::Duration },
}

impl Objective {
    /// One sentence for the report.
    pub fn describe(&self) -> String {
        match self {
            Objective::Cpu => "lowest ringway CPU time per request at the fixed rate (median of \
                 the repetitions; min–max in brackets), among variants with no failed request \
                 that kept up with the rate"
                .into(),
            Objective::Throughput { p99_slo } => format!(
                "most closed-loop req/s (median of the repetitions; min–max in brackets) \
                 among variants whose p99 latency at the fixed rate (median) is within the \
                 SLO of {:.2} ms, with no failed request and keeping up with the rate",
                p99_slo.as_secs_f64() * 1e3
            ),
        }
    }

    /// The objective's measure of a variant, larger is better (CPU negated).
    fn score(&self, s: &Stats) -> Option<f64> {
        match self {
            Objective::Cpu => s.cpu.map(|c| -c.0),
            Objective::Throughput { .. } => s.closed_rps.map(|c| c.0),
        }
    }

    fn spread(&self, s: &Stats) -> f64 {
        let r = match self {
            Objective::Cpu => s.cpu,
            Objective::Throughput { .. } => s.closed_rps,
        };
        r.map_or(f64::INFINITY, |(_, lo, hi)| hi - lo)
    }

    /// Why an eligible variant does not meet the objective's constraint.
    fn misses(&self, s: &Stats) -> Option<String> {
        match self {
            Objective::Cpu => None,
            Objective::Throughput { p99_slo } => {
                let slo_us = p99_slo.as_secs_f64() * 1e6;
                match s.fixed_p99 {
                    Some((m, _, _)) if m <= slo_us => None,
                    Some((m, _, _)) => Some(format!(
                        "p99 {:.2} ms over the SLO of {:.2} ms",
                        m / 1e3,
                        slo_us / 1e3
                    )),
                    None => Some("p99 not measured".into()),
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Stats {
    pub eligible: bool,
    pub why_not: Option<String>,
    /// Fixed-rate CPU µs per request: median, min, max.
    pub cpu: Option<(f64, f64, f64)>,
    /// Fixed-rate p99 µs: median, min, max.
    pub fixed_p99: Option<(f64, f64, f64)>,
    pub closed_rps: Option<(f64, f64, f64)>,
    pub closed_p99: Option<f64>,
    /// Eligible, but outside the objective's constraint (the p99 SLO).
    pub misses: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub stats: Vec<Stats>,
    /// The best eligible variant, if any.
    pub best: Option<usize>,
    /// What the tuned file gets.
    pub chosen: usize,
    /// Variants within noise of the best.
    pub within_noise: Vec<usize>,
}

pub(crate) fn median(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((m, v[0], v[n - 1]))
}

fn stats(runs: &[&Run], rate: u64) -> Stats {
    let mut why_not = None;
    for r in runs {
        if let Some(e) = &r.error {
            why_not = Some(e.clone());
        }
        for s in [r.closed, r.fixed].iter().flatten() {
            if s.errors > 0 {
                why_not = Some(format!("{} failed requests", s.errors));
            }
        }
        if let Some(f) = r.fixed {
            if f.rps < rate as f64 * 0.9 {
                why_not = Some(format!("{:.0} req/s, short of the rate {rate}", f.rps));
            }
            if !f.cpu_us_per_req.is_finite() {
                why_not = Some("CPU time not measured".into());
            }
        }
    }
    if runs.is_empty() {
        why_not = Some("not run".into());
    }
    let fixed: Vec<Sample> = runs.iter().filter_map(|r| r.fixed).collect();
    let closed: Vec<Sample> = runs.iter().filter_map(|r| r.closed).collect();
    Stats {
        eligible: why_not.is_none(),
        why_not,
        cpu: median(fixed.iter().map(|s| s.cpu_us_per_req).collect()),
        fixed_p99: median(fixed.iter().map(|s| s.p99_us as f64).collect()),
        closed_rps: median(closed.iter().map(|s| s.rps).collect()),
        closed_p99: median(closed.iter().map(|s| s.p99_us as f64).collect()).map(|m| m.0),
        misses: None,
    }
}

impl Stats {
    /// Eligible and within the objective's constraint.
    pub fn candidate(&self) -> bool {
        self.eligible && self.misses.is_none()
    }
}

pub fn decide(s: &Sweep) -> Verdict {
    let obj = s.objective;
    let stats: Vec<Stats> = (0..s.variants.len())
        .map(|i| {
            let runs: Vec<&Run> = s.runs.iter().filter(|r| r.variant == i).collect();
            let mut st = stats(&runs, s.rate);
            if st.eligible {
                st.misses = obj.misses(&st);
            }
            st
        })
        .collect();
    let score = |i: usize| obj.score(&stats[i]).unwrap_or(f64::MIN);
    let best = (0..stats.len())
        .filter(|&i| stats[i].candidate())
        .max_by(|&a, &b| score(a).total_cmp(&score(b)).then(b.cmp(&a)));
    let within_noise: Vec<usize> = match best {
        Some(b) => (0..stats.len())
            .filter(|&i| i != b && stats[i].candidate())
            .filter(|&i| {
                (score(i) - score(b)).abs() <= obj.spread(&stats[i]).max(obj.spread(&stats[b]))
            })
            .collect(),
        None => vec![],
    };
    let chosen = match best {
        Some(b) if b == s.baseline || within_noise.contains(&s.baseline) => s.baseline,
        Some(b) => b,
        None => s.baseline,
    };
    Verdict {
        stats,
        best,
        chosen,
        within_noise,
    }
}

fn range(r: Option<(f64, f64, f64)>, digits: usize) -> String {
    match r {
        Some((m, lo, hi)) => format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})"),
        None => "–".into(),
    }
}

fn ms(us: Option<f64>) -> String {
    us.map_or("–".into(), |u| format!("{:.2}", u / 1000.0))
}

pub fn markdown(s: &Sweep, v: &Verdict) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# ringway-tune sweep\n");
    let _ = writeln!(
        o,
        "Configuration `{}`; kernel {}; ringway `{}` on CPU(s) {:?}, origin \
         (`ringload serve`) and load generator (`ringload run`) on CPU(s) {:?}.\n",
        s.config.display(),
        s.kernel,
        s.ringway_bin.display(),
        s.ringway_cores,
        s.client_cores
    );
    let _ = writeln!(
        o,
        "Each variant ran on a minimal configuration (one listener, one route `/`, one \
         cluster → the origin; the file's own routes and filters are not exercised), \
         {} repetition(s), interleaved (every variant once per repetition, in rotated \
         order). Each run: 0.5 s warm-up, {:?} closed loop with {} connections, {:?} at a \
         fixed {} req/s.\n",
        s.reps, s.duration, s.connections, s.duration, s.rate
    );
    let _ = writeln!(
        o,
        "**Objective**: {}. **Noise**: two variants whose medians differ by no \
         more than the larger of their spreads (max − min) are within noise; the current \
         settings are kept when they are within noise of the best.\n",
        s.objective.describe()
    );
    for p in &s.placement {
        let _ = writeln!(o, "**Core placement**: {p}.\n");
    }
    for n in &s.notes {
        let _ = writeln!(o, "- {n}");
    }
    if !s.notes.is_empty() {
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "| # | workers | ring_entries | ring_flags | CPU µs/req at fixed rate | fixed p99 ms | closed-loop req/s | closed p99 ms | verdict |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, var) in s.variants.iter().enumerate() {
        let st = &v.stats[i];
        let verdict = if !st.eligible {
            format!("excluded: {}", st.why_not.clone().unwrap_or_default())
        } else if let Some(m) = &st.misses {
            format!("excluded: {m}")
        } else if Some(i) == v.best {
            "best".into()
        } else if v.within_noise.contains(&i) {
            "within noise of the best".into()
        } else {
            "worse".into()
        };
        let _ = writeln!(
            o,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            i,
            if i == s.baseline { " (current)" } else { "" },
            var.workers,
            var.ring_entries,
            var.flags_text(),
            range(st.cpu, 1),
            ms(st.fixed_p99.map(|m| m.0)),
            range(st.closed_rps, 0),
            ms(st.closed_p99),
            verdict
        );
    }
    o.push('\n');
    let _ = writeln!(
        o,
        "Charts (bar: median of the repetitions, whisker: min–max; the chosen setting in red, excluded ones grey):\n"
    );
    for (suffix, what) in super::chart::CHARTS {
        let _ = writeln!(
            o,
            "- {what}: [`{0}-{suffix}.svg`]({0}-{suffix}.svg)",
            super::chart::REPORT_STEM
        );
    }
    o.push('\n');
    let chosen = &s.variants[v.chosen];
    match v.best {
        None if v.stats.iter().any(|st| st.eligible) => {
            let _ = writeln!(
                o,
                "**Result**: no setting met the objective's p99 SLO at the fixed rate; \
                 `ringway.tuned.toml` keeps the current settings ({}). Loosen `--p99-slo`, \
                 lower `--rate`, or use `--objective cpu`.",
                chosen.label()
            );
        }
        None => {
            let _ = writeln!(
                o,
                "**Result**: no variant completed cleanly; `ringway.tuned.toml` keeps the current settings."
            );
        }
        Some(b) if v.chosen == s.baseline && b != s.baseline => {
            let _ = writeln!(
                o,
                "**Result**: the best variant (#{b}, {}) differs from the current settings by \
                 less than the measured run-to-run noise; `ringway.tuned.toml` keeps the \
                 current settings ({}).",
                s.variants[b].label(),
                chosen.label()
            );
        }
        Some(_) if v.chosen == s.baseline => {
            let _ = writeln!(
                o,
                "**Result**: the current settings ({}) are the best measured; \
                 `ringway.tuned.toml` keeps them.",
                chosen.label()
            );
        }
        Some(_) if !v.stats[s.baseline].candidate() => {
            let st = &v.stats[s.baseline];
            let _ = writeln!(
                o,
                "**Result**: the current settings were excluded ({}); the best eligible \
                 variant is #{} ({}), and `ringway.tuned.toml` has its values. Run the \
                 sweep again before trusting a single exclusion.",
                st.why_not.clone().or(st.misses.clone()).unwrap_or_default(),
                v.chosen,
                chosen.label()
            );
        }
        Some(_) => {
            let _ = writeln!(
                o,
                "**Result**: #{} ({}) beats the current settings by more than the noise; \
                 `ringway.tuned.toml` has these values.",
                v.chosen,
                chosen.label()
            );
        }
    }
    let eligible = v.stats.iter().filter(|s| s.candidate()).count();
    if v.best.is_some() && eligible > 1 && v.within_noise.len() + 1 == eligible {
        let _ = writeln!(
            o,
            "\nEvery eligible variant is within noise of the best: at this load on this \
             machine the swept settings made no measurable difference."
        );
    }
    o
}
