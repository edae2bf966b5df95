//! Results: raw run records → per-contender summaries (medians, spreads,
//! ratios, flags) → JSON and a markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::{ratio, round, Summary};

// ---------------------------------------------------------------------------
// Raw records, filled in while running

/// One measured `ringload run` invocation.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunRecord {
    pub rep: usize,
    /// `closed` or `open`.
    pub mode: &'static str,
    pub rate: Option<f64>,
    pub requests: u64,
    pub duration_s: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub errors: u64,
    pub non_2xx: u64,
    /// 2xx responses over every request that ended (failed ones included),
    /// percent.
    pub success_pct: Option<f64>,
    /// TLS scenarios: share of the load generator's connections that
    /// resumed a session (ticket), percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_resumed_pct: Option<f64>,
    /// CPU the contender's processes used during the invocation, µs.
    pub proxy_cpu_us: Option<f64>,
    /// `proxy_cpu_us / requests` — open-loop runs only (no warm-up inside).
    pub cpu_us_per_req: Option<f64>,
    /// The kernel-mode (stime) part of `cpu_us_per_req`.
    pub cpu_sys_us_per_req: Option<f64>,
    /// `proxy_cpu_us / wall time`, percent of one core.
    pub proxy_cpu_pct: Option<f64>,
    pub origin_cpu_us_per_req: Option<f64>,
    pub origin_cpu_sys_us_per_req: Option<f64>,
    /// Peak VmRSS of the contender's processes (summed) during the run, KiB.
    pub rss_kib: Option<u64>,
    /// Busy share of the cores before the run (after waiting for idle).
    pub idle_before: String,
    /// Other processes' CPU on the benchmark's cores, percent of one core.
    pub others_core_pct: f64,
    pub flags: Vec<String>,
}

/// One `wrk` cross-check run.
#[derive(Debug, Clone, Serialize)]
pub struct WrkRecord {
    pub rep: usize,
    pub rps: f64,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub errors: u64,
}

/// Everything measured for one contender in one scenario.
#[derive(Debug, Clone, Default)]
pub struct ContenderRuns {
    pub name: String,
    /// Set when the contender did not run at all in this scenario.
    pub skipped: Option<String>,
    pub runs: Vec<RunRecord>,
    pub failures: Vec<String>,
    pub wrk: Vec<WrkRecord>,
    pub wrk_note: Option<String>,
}

/// One scenario in one placement with one worker count.
#[derive(Debug, Clone, Default)]
pub struct ScenarioRuns {
    pub name: String,
    pub description: String,
    pub placement: String,
    pub workers: usize,
    pub connections: usize,
    pub layout: String,
    pub notes: Vec<String>,
    pub open_loop_rate: Option<f64>,
    pub rate_basis: String,
    /// Why the scenario has no open loop (HTTP/2 scenarios: h2load is a
    /// closed loop; CPU µs/req then comes from the closed-loop runs).
    pub open_loop_skipped: Option<String>,
    pub contenders: Vec<ContenderRuns>,
    /// Fault scenarios: the failing origin.
    pub fault: Option<crate::scenarios::Fault>,
    /// What one request stands for (new-connection TLS scenarios: one
    /// handshake), from `Scenario::per_request_note`.
    pub per_request: Option<String>,
    /// Large-body scenarios: the body one request moves, MiB
    /// (`Scenario::moved_mib`); the report adds CPU µs per MiB.
    pub moved_mib: Option<f64>,
}

// ---------------------------------------------------------------------------
// Summaries (the JSON document)

#[derive(Debug, Clone, Serialize)]
pub struct OpenLoop {
    pub rate: Option<f64>,
    pub rps: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub p99_spread: Option<[f64; 2]>,
    /// 2xx share of the requests, percent (median).
    pub success_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WrkSummary {
    pub rps: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub errors: u64,
    /// ringload's closed-loop req/s for the same contender, for comparison.
    pub ringload_rps: Option<f64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContenderSummary {
    pub name: String,
    /// `ok`, `skipped` or `failed`.
    pub status: &'static str,
    pub reason: Option<String>,
    /// Closed loop, median over repetitions.
    pub rps: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    /// Measured in the open loop at the scenario's fixed offered rate.
    pub cpu_us_per_req: Option<f64>,
    /// Kernel-mode part of `cpu_us_per_req` (median over repetitions).
    pub cpu_sys_us_per_req: Option<f64>,
    /// Large-body scenarios: `cpu_us_per_req` / the body one request moves
    /// in MiB (the scenario's `moved_mib`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_mib: Option<f64>,
    /// Peak during the open-loop runs (median over repetitions).
    pub rss_kib: Option<f64>,
    /// Failed requests over every measured run.
    pub errors: u64,
    pub non_2xx: u64,
    /// Closed loop: 2xx responses over every request that ended (failed
    /// requests included), percent, median over repetitions.
    pub success_pct: Option<f64>,
    pub success_pct_spread: Option<[f64; 2]>,
    /// TLS scenarios: resumed handshakes, percent of connections (median).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_resumed_pct: Option<f64>,
    pub reps: usize,
    pub rps_spread: Option<[f64; 2]>,
    pub p99_spread: Option<[f64; 2]>,
    pub cpu_us_per_req_spread: Option<[f64; 2]>,
    /// Contender CPU during the closed-loop runs, percent of one core.
    pub proxy_cpu_pct_closed: Option<f64>,
    pub rss_kib_closed: Option<f64>,
    pub origin_cpu_us_per_req: Option<f64>,
    pub origin_cpu_sys_us_per_req: Option<f64>,
    pub open_loop: Option<OpenLoop>,
    pub wrk: Option<WrkSummary>,
    pub flags: Vec<String>,
    pub failures: Vec<String>,
    pub runs: Vec<RunRecord>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Ratios {
    /// Closed-loop req/s (higher is better).
    pub rps: Option<f64>,
    /// Closed-loop p99 (lower is better).
    pub p99: Option<f64>,
    /// Open-loop p99 at the fixed rate (lower is better).
    pub open_loop_p99: Option<f64>,
    /// CPU µs per request at the fixed rate (lower is better).
    pub cpu_us_per_req: Option<f64>,
    pub rss_kib: Option<f64>,
    /// Closed-loop success rate, difference in percentage points (a − b).
    pub success_pts: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    pub name: String,
    pub description: String,
    pub placement: String,
    pub workers: usize,
    pub connections: usize,
    pub layout: String,
    pub notes: Vec<String>,
    pub open_loop_rate: Option<f64>,
    pub rate_basis: String,
    /// Why there is no open loop (HTTP/2 scenarios).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_loop_skipped: Option<String>,
    pub contenders: Vec<ContenderSummary>,
    /// `"ringway/nginx"`, `"ringway/haproxy"`, `"ringway/direct"`, ...
    pub ratios: BTreeMap<String, Ratios>,
    /// Fault scenarios: the group and its failing origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultSummary>,
    /// What one request stands for (e.g. one full mTLS handshake).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_request: Option<String>,
    /// Large-body scenarios: the body one request moves, MiB (what
    /// `cpu_us_per_mib` divides by).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultSummary {
    /// Origins in the upstream group.
    pub origins: usize,
    /// 1-based number of the failing origin.
    pub failing_origin: usize,
    /// Share of its requests it fails, percent.
    pub fail_pct: u32,
    pub fail_status: u16,
    /// What round robin without retries or ejection would give, percent.
    pub success_pct_without_retries: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ContenderInfo {
    pub name: String,
    pub available: bool,
    pub binary: Option<String>,
    pub version: Option<String>,
    pub skip_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub mem_total_kib: u64,
    pub git: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Settings {
    pub quick: bool,
    pub reps: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub placements: Vec<String>,
    pub workers: Vec<usize>,
    pub cores: Vec<usize>,
    pub load_cores: Vec<usize>,
    pub contender_cores: Vec<usize>,
    pub rate: Option<f64>,
    pub idle_threshold_pct: f64,
    pub idle_wait_s: f64,
    pub interference_limit_pct: f64,
    pub load_generator: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub started_utc: String,
    pub finished_utc: String,
    pub complete: bool,
    pub machine: Machine,
    pub settings: Settings,
    pub contenders: Vec<ContenderInfo>,
    pub notes: Vec<String>,
    pub scenarios: Vec<ScenarioSummary>,
}

fn spread(values: &[f64]) -> Option<[f64; 2]> {
    Summary::of(values).map(|s| [s.min, s.max])
}

fn med(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().collect();
    crate::stats::median(&v)
}

/// "interference: ..." ×2 → counted, in first-seen order.
fn count_flags(runs: &[RunRecord]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for f in runs.iter().flat_map(|r| r.flags.iter()) {
        // Group by the part before any number-bearing detail.
        let key = f.split(':').next().unwrap_or(f).to_string();
        if !counts.contains_key(&key) {
            order.push(key.clone());
        }
        *counts.entry(key).or_default() += 1;
    }
    order
        .into_iter()
        .map(|k| format!("{k} ({}/{} runs)", counts[&k], runs.len()))
        .collect()
}

pub fn summarize_contender(c: &ContenderRuns) -> ContenderSummary {
    let closed: Vec<&RunRecord> = c.runs.iter().filter(|r| r.mode == "closed").collect();
    let open: Vec<&RunRecord> = c.runs.iter().filter(|r| r.mode == "open").collect();
    let col = |rs: &[&RunRecord], f: fn(&RunRecord) -> f64| -> Vec<f64> {
        rs.iter().map(|r| f(r)).collect()
    };
    let col_opt = |rs: &[&RunRecord], f: fn(&RunRecord) -> Option<f64>| -> Vec<f64> {
        rs.iter().filter_map(|r| f(r)).collect()
    };
    let rps = col(&closed, |r| r.rps);
    let p99 = col(&closed, |r| r.p99_us);
    // CPU, RSS and origin CPU per request: from the open loop; a scenario
    // without one (HTTP/2, h2load) has them in its closed-loop runs.
    let cpu_runs: &[&RunRecord] = if open.is_empty() { &closed } else { &open };
    let cpu = col_opt(cpu_runs, |r| r.cpu_us_per_req);
    let status = if c.skipped.is_some() {
        "skipped"
    } else if closed.is_empty() && open.is_empty() {
        "failed"
    } else {
        "ok"
    };
    let reason = c
        .skipped
        .clone()
        .or_else(|| (status == "failed").then(|| c.failures.join("; ")));
    let open_loop = (!open.is_empty()).then(|| OpenLoop {
        rate: open[0].rate,
        rps: med(col(&open, |r| r.rps)),
        p50_us: med(col(&open, |r| r.p50_us)),
        p90_us: med(col(&open, |r| r.p90_us)),
        p99_us: med(col(&open, |r| r.p99_us)),
        p999_us: med(col(&open, |r| r.p999_us)),
        p99_spread: spread(&col(&open, |r| r.p99_us)),
        success_pct: med(col_opt(&open, |r| r.success_pct)).map(|v| round(v, 3)),
    });
    let wrk = (!c.wrk.is_empty() || c.wrk_note.is_some()).then(|| WrkSummary {
        rps: med(c.wrk.iter().map(|w| w.rps)),
        p50_us: med(c.wrk.iter().filter_map(|w| w.p50_us)),
        p99_us: med(c.wrk.iter().filter_map(|w| w.p99_us)),
        errors: c.wrk.iter().map(|w| w.errors).sum(),
        ringload_rps: med(rps.iter().copied()),
        note: c.wrk_note.clone(),
    });
    let mut flags = count_flags(&c.runs);
    if !c.failures.is_empty() && status == "ok" {
        flags.push(format!("{} failed run(s)", c.failures.len()));
    }
    ContenderSummary {
        name: c.name.clone(),
        status,
        reason,
        rps: med(rps.iter().copied()),
        p50_us: med(col(&closed, |r| r.p50_us)),
        p90_us: med(col(&closed, |r| r.p90_us)),
        p99_us: med(p99.iter().copied()),
        p999_us: med(col(&closed, |r| r.p999_us)),
        cpu_us_per_req: med(cpu.iter().copied()).map(|v| round(v, 2)),
        cpu_sys_us_per_req: med(col_opt(cpu_runs, |r| r.cpu_sys_us_per_req)).map(|v| round(v, 2)),
        cpu_us_per_mib: None,
        rss_kib: med(cpu_runs.iter().filter_map(|r| r.rss_kib).map(|x| x as f64)),
        errors: c.runs.iter().map(|r| r.errors).sum(),
        non_2xx: c.runs.iter().map(|r| r.non_2xx).sum(),
        success_pct: med(col_opt(&closed, |r| r.success_pct)).map(|v| round(v, 3)),
        success_pct_spread: spread(&col_opt(&closed, |r| r.success_pct)),
        tls_resumed_pct: med(c.runs.iter().filter_map(|r| r.tls_resumed_pct)).map(|v| round(v, 1)),
        reps: closed.len(),
        rps_spread: spread(&rps),
        p99_spread: spread(&p99),
        cpu_us_per_req_spread: spread(&cpu),
        proxy_cpu_pct_closed: med(col_opt(&closed, |r| r.proxy_cpu_pct)).map(|v| round(v, 1)),
        rss_kib_closed: med(closed.iter().filter_map(|r| r.rss_kib).map(|x| x as f64)),
        origin_cpu_us_per_req: med(col_opt(cpu_runs, |r| r.origin_cpu_us_per_req))
            .map(|v| round(v, 2)),
        origin_cpu_sys_us_per_req: med(col_opt(cpu_runs, |r| r.origin_cpu_sys_us_per_req))
            .map(|v| round(v, 2)),
        open_loop,
        wrk,
        flags,
        failures: c.failures.clone(),
        runs: c.runs.clone(),
    }
}

/// The pairs reported as ratios (numerator, denominator).
pub const RATIO_PAIRS: &[(&str, &str)] = &[
    ("ringway", "nginx"),
    ("ringway", "haproxy"),
    ("ringway", "direct"),
    ("nginx", "direct"),
    ("haproxy", "direct"),
    // Mirroring to a stalled shadow vs the same ringway without it
    // (`--contenders ringway,ringway-mirror`).
    ("ringway-mirror", "ringway"),
    // Splicing vs the same ringway with it off
    // (`--contenders ringway,ringway-nosplice`).
    ("ringway", "ringway-nosplice"),
    // The floor: a byte relay with no HTTP work (`--contenders
    // ...,relay`). relay/nginx is the lowest CPU ratio to nginx any proxy
    // could reach here; ringway/relay what ringway's HTTP work adds.
    ("relay", "nginx"),
    ("ringway", "relay"),
];

/// The ringway-mirror/ringway p99 target: mirroring must not add more than
/// this to the primary's p99 (1.05 = 5 %).
pub const MIRROR_P99_TARGET: f64 = 1.05;

pub fn ratios(contenders: &[ContenderSummary]) -> BTreeMap<String, Ratios> {
    let get = |n: &str| contenders.iter().find(|c| c.name == n && c.status == "ok");
    let mut out = BTreeMap::new();
    for (a, b) in RATIO_PAIRS {
        let (Some(x), Some(y)) = (get(a), get(b)) else {
            continue;
        };
        let ol = |c: &ContenderSummary| c.open_loop.as_ref().and_then(|o| o.p99_us);
        out.insert(
            format!("{a}/{b}"),
            Ratios {
                rps: ratio(x.rps, y.rps).map(|v| round(v, 3)),
                p99: ratio(x.p99_us, y.p99_us).map(|v| round(v, 3)),
                open_loop_p99: ratio(ol(x), ol(y)).map(|v| round(v, 3)),
                cpu_us_per_req: ratio(x.cpu_us_per_req, y.cpu_us_per_req).map(|v| round(v, 3)),
                rss_kib: ratio(x.rss_kib, y.rss_kib).map(|v| round(v, 3)),
                success_pts: x
                    .success_pct
                    .zip(y.success_pct)
                    .map(|(a, b)| round(a - b, 3)),
            },
        );
    }
    out
}

pub fn summarize_scenario(s: &ScenarioRuns) -> ScenarioSummary {
    let mut contenders: Vec<ContenderSummary> =
        s.contenders.iter().map(summarize_contender).collect();
    if let Some(mib) = s.moved_mib.filter(|m| *m > 0.0) {
        for c in &mut contenders {
            c.cpu_us_per_mib = c.cpu_us_per_req.map(|v| round(v / mib, 2));
        }
    }
    ScenarioSummary {
        name: s.name.clone(),
        description: s.description.clone(),
        placement: s.placement.clone(),
        workers: s.workers,
        connections: s.connections,
        layout: s.layout.clone(),
        notes: s.notes.clone(),
        open_loop_rate: s.open_loop_rate.map(|r| r.round()),
        rate_basis: s.rate_basis.clone(),
        open_loop_skipped: s.open_loop_skipped.clone(),
        ratios: ratios(&contenders),
        per_request: s.per_request.clone(),
        moved_mib: s.moved_mib,
        contenders,
        fault: s.fault.as_ref().map(|f| FaultSummary {
            origins: f.origins,
            failing_origin: f.faulty + 1,
            fail_pct: f.fail_percent,
            fail_status: f.fail_status,
            success_pct_without_retries: round(f.success_pct_without_retries(), 2),
        }),
    }
}

// ---------------------------------------------------------------------------
// Markdown

fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn num(x: Option<f64>) -> String {
    x.map(thousands).unwrap_or_else(|| "–".into())
}

fn dec(x: Option<f64>, d: usize) -> String {
    x.map(|v| format!("{v:.d$}")).unwrap_or_else(|| "–".into())
}

fn times(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.2}×")).unwrap_or_else(|| "–".into())
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.2} %")).unwrap_or_else(|| "–".into())
}

fn points(x: Option<f64>) -> String {
    x.map(|v| format!("{v:+.2}")).unwrap_or_else(|| "–".into())
}

/// Fault scenarios: what fails, and each contender's success rate.
fn fault_table(m: &mut String, f: &FaultSummary, contenders: &[ContenderSummary]) {
    let _ = writeln!(
        m,
        "Fault: origin {} of {} answers {} to {} % of its requests; round robin without retries or ejection would give {:.1} % success. \
         Success = 2xx responses / (responses + failed requests such as connect errors, resets, timeouts).\n",
        f.failing_origin, f.origins, f.fail_status, f.fail_pct, f.success_pct_without_retries
    );
    let _ = writeln!(
        m,
        "| contender | success (closed loop) | [min–max] | success (open loop) | non-2xx | failed requests |"
    );
    let _ = writeln!(m, "|---|--:|--:|--:|--:|--:|");
    for c in contenders.iter().filter(|c| c.status == "ok") {
        let spread = c
            .success_pct_spread
            .map(|[a, b]| format!("{a:.2}–{b:.2}"))
            .unwrap_or_default();
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} |",
            c.name,
            pct(c.success_pct),
            spread,
            pct(c.open_loop.as_ref().and_then(|o| o.success_pct)),
            c.non_2xx,
            c.errors
        );
    }
    m.push('\n');
}

/// The ringway-mirror/ringway reading: p99 ratios against the target, CPU.
fn mirror_line(r: &Ratios) -> String {
    let verdict = |x: Option<f64>| match x {
        Some(v) if v <= MIRROR_P99_TARGET => format!(
            "{} (within {:.0} %)",
            times(Some(v)),
            (MIRROR_P99_TARGET - 1.0) * 100.0
        ),
        Some(v) => format!(
            "{} (**over** {:.0} %)",
            times(Some(v)),
            (MIRROR_P99_TARGET - 1.0) * 100.0
        ),
        None => "–".into(),
    };
    format!(
        "Mirroring every request to a shadow that never answers (ringway-mirror/ringway, medians): \
         closed-loop p99 {}, open-loop p99 {}, CPU µs/req {}.",
        verdict(r.p99),
        verdict(r.open_loop_p99),
        times(r.cpu_us_per_req)
    )
}

/// `1`, `64`, `1.5`: a MiB count without needless decimals.
fn mib_text(mib: f64) -> String {
    if mib.fract() == 0.0 {
        format!("{mib:.0}")
    } else {
        format!("{mib:.2}")
    }
}

/// Markdown table cells must not contain `|` or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "/").replace('\n', " ")
}

pub fn markdown(r: &Report) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# ringway-bench compare — {}\n", r.started_utc);
    if r.settings.quick {
        let _ = writeln!(
            m,
            "> **Quick smoke run** ({} rep × {:.0} s): proves the harness works end to end. \
             The numbers are noisy and not for quoting.\n",
            r.settings.reps, r.settings.duration_s
        );
    }
    if !r.complete {
        let _ = writeln!(
            m,
            "> **Incomplete**: the run stopped before every scenario finished.\n"
        );
    }
    let _ = writeln!(
        m,
        "- Machine: {} — {} CPUs, kernel {}, {} MiB RAM; git {}",
        r.machine.cpu,
        r.machine.cpus,
        r.machine.kernel,
        r.machine.mem_total_kib / 1024,
        r.machine.git
    );
    let versions: Vec<String> = r
        .contenders
        .iter()
        .map(|c| match (&c.version, &c.skip_reason) {
            (_, Some(why)) => format!("{} — **skipped**: {}", c.name, cell(why)),
            (Some(v), None) => format!("{} ({})", c.name, cell(v)),
            (None, None) => c.name.clone(),
        })
        .collect();
    let _ = writeln!(m, "- Contenders: {}", versions.join("; "));
    let s = &r.settings;
    let _ = writeln!(
        m,
        "- Load: {}; {} repetition(s) per contender, order rotated each repetition; {:.1} s measured after a {:.1} s warm-up (discarded); medians with [min–max]",
        s.load_generator, s.reps, s.duration_s, s.warmup_s
    );
    let _ = writeln!(
        m,
        "- Cores {:?}: load side {:?}, contender side {:?}; idle wait ≤ {:.0} s for < {:.0}% busy; a run is flagged when other processes used > {:.0}% of a core",
        s.cores, s.load_cores, s.contender_cores, s.idle_wait_s, s.idle_threshold_pct, s.interference_limit_pct
    );
    let _ = writeln!(
        m,
        "- CPU µs/req and RSS are measured in the open loop at the fixed offered rate of each scenario (½ of nginx's closed-loop median unless `--rate`); the HTTP/2 scenarios (h2load, closed loop only) measure them over h2load's main phase (warm-up excluded); CPU is the contender's utime+stime over all its processes"
    );
    for n in &r.notes {
        let _ = writeln!(m, "- Note: {}", cell(n));
    }
    m.push('\n');

    for sc in &r.scenarios {
        let _ = writeln!(
            m,
            "## {} — placement {}, {} worker(s)\n",
            sc.name, sc.placement, sc.workers
        );
        let _ = writeln!(m, "{}. {}.", sc.description, sc.layout);
        if let Some(p) = &sc.per_request {
            let _ = writeln!(m, "**Per request:** {p}.");
        }
        if let Some(mib) = sc.moved_mib {
            let _ = writeln!(
                m,
                "**Per MiB:** each request moves a {} MiB body; CPU µs/MiB = CPU µs/req ÷ {}. Every contender moves the same bytes per request, so the CPU ratios below hold per MiB as they do per request.",
                mib_text(mib),
                mib_text(mib)
            );
        }
        match &sc.open_loop_skipped {
            Some(why) => {
                let _ = writeln!(m, "No open loop: {why}.");
            }
            None => {
                let _ = writeln!(
                    m,
                    "Open loop at {} req/s ({}).",
                    num(sc.open_loop_rate),
                    sc.rate_basis
                );
            }
        }
        for n in &sc.notes {
            let _ = writeln!(m, "**Note:** {n}.");
        }
        m.push('\n');
        // Large-body scenarios: a CPU µs/MiB column after the CPU ones.
        let per_mib = sc.moved_mib.is_some();
        let _ = writeln!(
            m,
            "| contender | req/s | [min–max] | ×direct | p50 µs | p90 µs | p99 µs | p99.9 µs | open-loop p99 µs | CPU µs/req | of which kernel |{} RSS KiB | errors | flags |",
            if per_mib { " CPU µs/MiB |" } else { "" }
        );
        let _ = writeln!(
            m,
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|{}--:|--:|---|",
            if per_mib { "--:|" } else { "" }
        );
        let direct = sc
            .contenders
            .iter()
            .find(|c| c.name == "direct" && c.status == "ok");
        for c in &sc.contenders {
            if c.status != "ok" {
                let _ = writeln!(
                    m,
                    "| {} | {} | | | | | | | | | |{} | | {} |",
                    c.name,
                    c.status,
                    if per_mib { " |" } else { "" },
                    cell(c.reason.as_deref().unwrap_or(""))
                );
                continue;
            }
            let spread = c
                .rps_spread
                .map(|[a, b]| format!("{}–{}", thousands(a), thousands(b)))
                .unwrap_or_default();
            let xd = direct.and_then(|d| ratio(c.rps, d.rps));
            let mut flags = c.flags.clone();
            if c.errors > 0 {
                flags.push(format!("{} errors", c.errors));
            }
            if c.non_2xx > 0 {
                flags.push(format!("{} non-2xx", c.non_2xx));
            }
            if let Some(p) = c.tls_resumed_pct {
                flags.push(format!("{p}% TLS handshakes resumed"));
            }
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{} {} | {} | {} |",
                c.name,
                num(c.rps),
                spread,
                times(xd),
                num(c.p50_us),
                num(c.p90_us),
                num(c.p99_us),
                num(c.p999_us),
                num(c.open_loop.as_ref().and_then(|o| o.p99_us)),
                dec(c.cpu_us_per_req, 1),
                dec(c.cpu_sys_us_per_req, 1),
                if per_mib {
                    format!(" {} |", dec(c.cpu_us_per_mib, 1))
                } else {
                    String::new()
                },
                num(c.rss_kib),
                c.errors,
                cell(&flags.join(", "))
            );
        }
        m.push('\n');
        if let Some(d) = direct {
            if let (Some(cpu), Some(sys)) = (d.origin_cpu_us_per_req, d.origin_cpu_sys_us_per_req) {
                let _ = writeln!(
                    m,
                    "The origin alone (direct run, open loop) used {cpu:.1} CPU µs/req, {sys:.1} of them in the kernel: \
                     that is one HTTP exchange over loopback TCP; a proxy terminates two (client side and upstream side).\n"
                );
            }
        }
        if let Some(f) = &sc.fault {
            fault_table(&mut m, f, &sc.contenders);
        }
        if !sc.ratios.is_empty() {
            let fault = sc.fault.is_some();
            let _ = writeln!(
                m,
                "| ratio | req/s | p99 | open-loop p99 | CPU µs/req | RSS |{}",
                if fault { " success (points) |" } else { "" }
            );
            let _ = writeln!(
                m,
                "|---|--:|--:|--:|--:|--:|{}",
                if fault { "--:|" } else { "" }
            );
            for (k, v) in &sc.ratios {
                let _ = writeln!(
                    m,
                    "| {k} | {} | {} | {} | {} | {} |{}",
                    times(v.rps),
                    times(v.p99),
                    times(v.open_loop_p99),
                    times(v.cpu_us_per_req),
                    times(v.rss_kib),
                    if fault {
                        format!(" {} |", points(v.success_pts))
                    } else {
                        String::new()
                    }
                );
            }
            m.push('\n');
            if let Some(r) = sc.ratios.get("ringway-mirror/ringway") {
                let _ = writeln!(m, "{}\n", mirror_line(r));
            }
        }
        let wrk: Vec<String> = sc
            .contenders
            .iter()
            .filter_map(|c| c.wrk.as_ref().map(|w| (c, w)))
            .map(|(c, w)| match (w.rps, &w.note) {
                (Some(rps), _) => format!(
                    "{} {} req/s, p99 {} µs (ringload {} req/s)",
                    c.name,
                    thousands(rps),
                    num(w.p99_us),
                    num(w.ringload_rps)
                ),
                (None, Some(n)) => format!("{}: {}", c.name, n),
                (None, None) => format!("{}: no result", c.name),
            })
            .collect();
        if !wrk.is_empty() {
            let _ = writeln!(
                m,
                "wrk cross-check (same connections, closed loop): {}.\n",
                wrk.join("; ")
            );
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: &'static str, rps: f64, p99: f64, cpu: Option<f64>) -> RunRecord {
        RunRecord {
            mode,
            rps,
            requests: (rps * 2.0) as u64,
            duration_s: 2.0,
            p50_us: p99 / 4.0,
            p90_us: p99 / 2.0,
            p99_us: p99,
            p999_us: p99 * 2.0,
            max_us: p99 * 3.0,
            rate: (mode == "open").then_some(5000.0),
            cpu_us_per_req: cpu,
            cpu_sys_us_per_req: cpu.map(|c| c * 0.75),
            origin_cpu_us_per_req: (mode == "open").then_some(6.0),
            origin_cpu_sys_us_per_req: (mode == "open").then_some(4.5),
            rss_kib: Some(8000),
            ..Default::default()
        }
    }

    fn contender(name: &str, rps: &[f64], cpu: f64) -> ContenderRuns {
        let mut runs: Vec<RunRecord> = rps
            .iter()
            .map(|&r| run("closed", r, 1000.0, None))
            .collect();
        runs.extend(rps.iter().map(|_| run("open", 5000.0, 400.0, Some(cpu))));
        ContenderRuns {
            name: name.into(),
            runs,
            ..Default::default()
        }
    }

    /// HTTP/2 scenarios: closed loop only; CPU µs/req and RSS from those
    /// runs, ratios as usual, and the report says why there is no open loop.
    #[test]
    fn closed_loop_only_scenario() {
        let h2 = |name: &str, rps: f64, cpu: f64| ContenderRuns {
            name: name.into(),
            runs: vec![run("closed", rps, 2000.0, Some(cpu))],
            ..Default::default()
        };
        let sc = ScenarioRuns {
            name: "h2c-streams".into(),
            description: "h2c".into(),
            placement: "A".into(),
            workers: 1,
            connections: 10,
            open_loop_skipped: Some("closed loop only: h2load".into()),
            contenders: vec![h2("ringway", 30000.0, 20.0), h2("nginx", 20000.0, 40.0)],
            ..Default::default()
        };
        let s = summarize_scenario(&sc);
        let rw = &s.contenders[0];
        assert_eq!(rw.status, "ok");
        assert_eq!(rw.cpu_us_per_req, Some(20.0));
        assert_eq!(rw.cpu_sys_us_per_req, Some(15.0));
        assert_eq!(rw.rss_kib, Some(8000.0));
        assert!(rw.open_loop.is_none());
        let r = &s.ratios["ringway/nginx"];
        assert_eq!((r.rps, r.cpu_us_per_req), (Some(1.5), Some(0.5)));
        let md = markdown(&report(vec![s]));
        assert!(
            md.contains("No open loop: closed loop only: h2load."),
            "{md}"
        );
        assert!(!md.contains("Open loop at"), "{md}");
    }

    fn scenario() -> ScenarioRuns {
        let mut with_flag = contender("haproxy", &[9000.0], 12.0);
        with_flag.runs[0]
            .flags
            .push("interference: other processes used 9% of a core".into());
        ScenarioRuns {
            name: "small-get-keepalive".into(),
            description: "GET".into(),
            placement: "A".into(),
            workers: 1,
            connections: 50,
            layout: "cores".into(),
            open_loop_rate: Some(5000.4),
            rate_basis: "½ of nginx".into(),
            contenders: vec![
                contender("ringway", &[12000.0, 10000.0, 11000.0], 10.0),
                contender("nginx", &[10000.0, 10000.0, 10000.0], 20.0),
                with_flag,
                contender("direct", &[20000.0], 0.0),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn medians_spreads_and_ratios() {
        let s = summarize_scenario(&scenario());
        let rw = &s.contenders[0];
        assert_eq!(rw.status, "ok");
        assert_eq!(rw.rps, Some(11000.0));
        assert_eq!(rw.rps_spread, Some([10000.0, 12000.0]));
        assert_eq!(rw.reps, 3);
        assert_eq!(rw.cpu_us_per_req, Some(10.0));
        assert_eq!(rw.rss_kib, Some(8000.0));
        assert_eq!(rw.open_loop.as_ref().unwrap().p99_us, Some(400.0));
        let r = &s.ratios["ringway/nginx"];
        assert_eq!(r.rps, Some(1.1));
        assert_eq!(r.cpu_us_per_req, Some(0.5));
        assert_eq!(r.p99, Some(1.0));
        assert_eq!(s.ratios["ringway/direct"].rps, Some(0.55));
        assert!(s.ratios.contains_key("haproxy/direct"));
        assert_eq!(s.contenders[2].flags, vec!["interference (1/2 runs)"]);
        assert_eq!(s.open_loop_rate, Some(5000.0));
    }

    #[test]
    fn skipped_and_failed() {
        let mut sc = scenario();
        sc.contenders[1] = ContenderRuns {
            name: "nginx".into(),
            skipped: Some("nginx is not installed (--no-install)".into()),
            ..Default::default()
        };
        sc.contenders[2] = ContenderRuns {
            name: "haproxy".into(),
            failures: vec!["haproxy exited 1 at start".into()],
            ..Default::default()
        };
        let s = summarize_scenario(&sc);
        assert_eq!(s.contenders[1].status, "skipped");
        assert_eq!(s.contenders[1].rps, None);
        assert_eq!(s.contenders[2].status, "failed");
        assert!(s.contenders[2]
            .reason
            .as_ref()
            .unwrap()
            .contains("exited 1"));
        assert!(!s.ratios.contains_key("ringway/nginx"));
        assert!(!s.ratios.contains_key("ringway/haproxy"));
        let md = markdown(&report(vec![s]));
        assert!(md.contains("| nginx | skipped |"));
        assert!(md.contains("| haproxy | failed |"));
    }

    fn report(scenarios: Vec<ScenarioSummary>) -> Report {
        Report {
            tool: "ringway-bench compare".into(),
            version: "0.1.0".into(),
            started_utc: "2026-11-27 20:00:00 UTC".into(),
            finished_utc: "2026-11-27 20:01:00 UTC".into(),
            complete: true,
            machine: Machine::default(),
            settings: Settings {
                quick: true,
                reps: 1,
                duration_s: 2.0,
                ..Default::default()
            },
            contenders: vec![],
            notes: vec![],
            scenarios,
        }
    }

    #[test]
    fn json_shape() {
        let r = report(vec![summarize_scenario(&scenario())]);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let sc = &v["scenarios"][0];
        assert_eq!(sc["name"], "small-get-keepalive");
        assert_eq!(sc["placement"], "A");
        let c = &sc["contenders"][0];
        for key in [
            "name",
            "rps",
            "p50_us",
            "p99_us",
            "cpu_us_per_req",
            "rss_kib",
            "errors",
        ] {
            assert!(c.get(key).is_some(), "missing {key}");
        }
        assert_eq!(c["name"], "ringway");
        assert_eq!(c["rps"], 11000.0);
        assert_eq!(c["cpu_us_per_req"], 10.0);
        assert!(c["p90_us"].is_number());
        assert!(c["p999_us"].is_number());
        assert!(c["rps_spread"].is_array());
        assert!(c["open_loop"]["p99_us"].is_number());
        assert_eq!(sc["ratios"]["ringway/nginx"]["rps"], 1.1);
    }

    #[test]
    fn mirror_ratio_and_per_request_note() {
        let mut sc = scenario();
        sc.name = "mtls-new-connection".into();
        sc.per_request = Some("one request per new mutual-TLS connection: CPU µs/req = CPU µs per full mTLS handshake".into());
        // Same closed-loop p99 (1,000 µs) and open-loop p99; CPU 10 vs 10.5.
        sc.contenders
            .push(contender("ringway-mirror", &[11000.0], 10.5));
        let s = summarize_scenario(&sc);
        let r = &s.ratios["ringway-mirror/ringway"];
        assert_eq!(
            (r.p99, r.open_loop_p99, r.cpu_us_per_req),
            (Some(1.0), Some(1.0), Some(1.05))
        );
        assert!(!s.ratios.contains_key("ringway-mirror/nginx"));
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["per_request"]
            .as_str()
            .unwrap()
            .contains("mTLS handshake"));
        let md = markdown(&report(vec![s]));
        assert!(
            md.contains("**Per request:** one request per new mutual-TLS connection"),
            "{md}"
        );
        assert!(md.contains("| ringway-mirror/ringway | 1.00× |"), "{md}");
        assert!(
            md.contains("closed-loop p99 1.00× (within 5 %), open-loop p99 1.00× (within 5 %), CPU µs/req 1.05×"),
            "{md}"
        );
        // Without the mirror contender, no such line; without a note, none.
        let md = markdown(&report(vec![summarize_scenario(&scenario())]));
        assert!(!md.contains("ringway-mirror") && !md.contains("Per request"));
    }

    #[test]
    fn markdown_table() {
        let md = markdown(&report(vec![summarize_scenario(&scenario())]));
        assert!(md.contains("## small-get-keepalive — placement A, 1 worker(s)"));
        assert!(md.contains("| ringway | 11,000 | 10,000–12,000 | 0.55× |"));
        assert!(md.contains("| ringway/nginx | 1.10× |"));
        assert!(md.contains("Quick smoke run"));
        // The kernel share of the CPU column, and the origin's own cost.
        assert!(md.contains("| CPU µs/req | of which kernel |"));
        assert!(md.contains("| 10.0 | 7.5 |"), "{md}");
        assert!(md.contains("The origin alone (direct run, open loop) used 6.0 CPU µs/req, 4.5 of them in the kernel"));
        // Every table row has the same number of cells as its header.
        for block in md.split("\n\n") {
            let rows: Vec<&str> = block.lines().filter(|l| l.starts_with('|')).collect();
            if let Some(h) = rows.first() {
                let n = h.matches('|').count();
                for r in &rows {
                    assert_eq!(r.matches('|').count(), n, "{r}");
                }
            }
        }
    }

    #[test]
    fn fault_scenario_reports_success_rates() {
        let mut sc = scenario();
        sc.name = "fault-503".into();
        sc.fault = crate::scenarios::ALL
            .iter()
            .find(|s| s.name == "fault-503")
            .and_then(|s| s.fault.clone());
        sc.contenders.pop(); // direct is skipped in this scenario
        for (c, ok) in sc.contenders.iter_mut().zip([99.9, 99.0, 98.5]) {
            for r in &mut c.runs {
                r.success_pct = Some(ok);
                r.non_2xx = 3;
            }
        }
        let s = summarize_scenario(&sc);
        assert_eq!(s.contenders[0].success_pct, Some(99.9));
        assert_eq!(
            s.contenders[0].open_loop.as_ref().unwrap().success_pct,
            Some(99.9)
        );
        assert_eq!(s.ratios["ringway/nginx"].success_pts, Some(0.9));
        assert_eq!(s.ratios["ringway/haproxy"].success_pts, Some(1.4));
        let f = s.fault.as_ref().unwrap();
        assert_eq!((f.origins, f.failing_origin, f.fail_pct), (3, 2, 50));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["fault"]["fail_status"], 503);
        assert_eq!(v["contenders"][1]["success_pct"], 99.0);
        let md = markdown(&report(vec![s]));
        assert!(md.contains("Fault: origin 2 of 3 answers 503 to 50 % of its requests; round robin without retries or ejection would give 83.3 % success."), "{md}");
        assert!(
            md.contains("| ringway | 99.90 % | 99.90–99.90 | 99.90 % | 18 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| haproxy | 98.50 % |"), "{md}");
        assert!(md.contains(
            "| ratio | req/s | p99 | open-loop p99 | CPU µs/req | RSS | success (points) |"
        ));
        assert!(
            md.contains("| ringway/nginx | 1.10× | 1.00× | 1.00× | 0.50× | 1.00× | +0.90 |"),
            "{md}"
        );
        for block in md.split("\n\n") {
            let rows: Vec<&str> = block.lines().filter(|l| l.starts_with('|')).collect();
            if let Some(h) = rows.first() {
                let n = h.matches('|').count();
                for r in &rows {
                    assert_eq!(r.matches('|').count(), n, "{r}");
                }
            }
        }
        // Other scenarios keep their tables as they were.
        let md = markdown(&report(vec![summarize_scenario(&scenario())]));
        assert!(!md.contains("success (points)") && !md.contains("Fault:"));
    }

    /// Large-body scenarios: CPU µs per MiB moved beside CPU µs/req, and
    /// the note that its ratios are those per request.
    #[test]
    fn large_body_scenario_reports_cpu_per_mib() {
        let mut sc = scenario();
        sc.name = "post-64m".into();
        sc.moved_mib = Some(64.0);
        sc.contenders[1] = ContenderRuns {
            name: "nginx".into(),
            skipped: Some("nginx is not installed (--no-install)".into()),
            ..Default::default()
        };
        let s = summarize_scenario(&sc);
        assert_eq!(s.moved_mib, Some(64.0));
        // 10 µs/req over 64 MiB.
        assert_eq!(s.contenders[0].cpu_us_per_mib, Some(0.16));
        assert_eq!(s.contenders[2].cpu_us_per_mib, Some(0.19));
        assert_eq!(s.contenders[1].cpu_us_per_mib, None);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["moved_mib"], 64.0);
        assert_eq!(v["contenders"][0]["cpu_us_per_mib"], 0.16);
        let md = markdown(&report(vec![s]));
        assert!(
            md.contains("| CPU µs/req | of which kernel | CPU µs/MiB | RSS KiB |"),
            "{md}"
        );
        assert!(md.contains("| 10.0 | 7.5 | 0.2 | 8,000 |"), "{md}");
        assert!(md.contains("**Per MiB:** each request moves a 64 MiB body; CPU µs/MiB = CPU µs/req ÷ 64. Every contender moves the same bytes per request, so the CPU ratios below hold per MiB as they do per request."), "{md}");
        for block in md.split("\n\n") {
            let rows: Vec<&str> = block.lines().filter(|l| l.starts_with('|')).collect();
            if let Some(h) = rows.first() {
                let n = h.matches('|').count();
                for r in &rows {
                    assert_eq!(r.matches('|').count(), n, "{r}");
                }
            }
        }
        // Other scenarios: no such column, note or JSON field.
        let s = summarize_scenario(&scenario());
        assert!(serde_json::to_value(&s).unwrap()["contenders"][0]
            .get("cpu_us_per_mib")
            .is_none());
        let md = markdown(&report(vec![s]));
        assert!(!md.contains("µs/MiB") && !md.contains("Per MiB"), "{md}");
        assert_eq!(mib_text(1.0), "1");
        assert_eq!(mib_text(1.5), "1.50");
    }

    #[test]
    fn nosplice_ratio() {
        let mut sc = scenario();
        sc.contenders
            .push(contender("ringway-nosplice", &[11000.0], 12.5));
        let s = summarize_scenario(&sc);
        let r = &s.ratios["ringway/ringway-nosplice"];
        assert_eq!(r.cpu_us_per_req, Some(0.8));
        assert!(!s.ratios.contains_key("ringway-nosplice/nginx"));
        let md = markdown(&report(vec![s]));
        assert!(md.contains("| ringway/ringway-nosplice | 1.00× |"), "{md}");
    }

    /// The relay is the floor: relay/nginx (how low any proxy could go)
    /// and ringway/relay (what ringway's HTTP work adds), and no other
    /// ratio names it.
    #[test]
    fn relay_ratios() {
        let mut sc = scenario();
        sc.contenders.push(contender("relay", &[22000.0], 8.0));
        let s = summarize_scenario(&sc);
        assert_eq!(s.ratios["relay/nginx"].cpu_us_per_req, Some(0.4));
        assert_eq!(s.ratios["ringway/relay"].cpu_us_per_req, Some(1.25));
        assert_eq!(s.ratios["ringway/relay"].rps, Some(0.5));
        assert!(!s.ratios.contains_key("relay/direct") && !s.ratios.contains_key("relay/haproxy"));
        let md = markdown(&report(vec![s]));
        assert!(md.contains("| relay/nginx | 2.20× |"), "{md}");
        assert!(md.contains("| ringway/relay | 0.50× |"), "{md}");
        // Without the relay, neither ratio.
        let s = summarize_scenario(&scenario());
        assert!(!s.ratios.keys().any(|k| k.contains("relay")));
    }

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(num(None), "–");
        assert_eq!(times(Some(1.234)), "1.23×");
        assert_eq!(cell("a|b\nc"), "a/b c");
    }
}
