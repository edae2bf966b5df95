//! The `compare` command: plan, run every (workers, placement, scenario,
//! phase, repetition, contender), write the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

use crate::contenders::{self, start_contender, start_origins, Binaries, Installer, Kind};
use crate::idle::{interference, wait_for_idle};
use crate::load::{run_wrk, H2Phase, H2loadSpec, RunSpec};
use crate::placement::{parse_core_list, parse_placements, Layout, Placement, Sides};
use crate::procs::{set_affinity, Spawn};
use crate::procstat::{
    all_processes, read_pid_stat, read_proc_stat, read_vm_rss_kib, ticks_to_us, tree_pids,
};
use crate::report::{
    self, ContenderInfo, ContenderRuns, Machine, Report, RunRecord, ScenarioRuns, Settings,
    WrkRecord,
};
use crate::scenarios::{self, Scenario};
use crate::stats::median;
use crate::tls::Certs;
use crate::util;
use crate::CompareArgs;

/// The scenario cross-checked with wrk.
const WRK_SCENARIO: &str = "small-get-keepalive";

struct Plan {
    quick: bool,
    reps: usize,
    duration: Duration,
    warmup: Duration,
    placements: Vec<Placement>,
    workers: Vec<usize>,
    cores: Vec<usize>,
    sides: Sides,
    kinds: Vec<Kind>,
    scenarios: Vec<Scenario>,
    rate: Option<f64>,
    idle_threshold: f64,
    idle_wait: Duration,
    interference_limit: f64,
    out_dir: PathBuf,
}

impl Plan {
    fn from_args(a: &CompareArgs) -> Result<Plan, String> {
        let quick = a.quick;
        let dur = |v: &Option<String>, quick_default: &str, default: &str| {
            util::parse_duration(v.as_deref().unwrap_or(if quick {
                quick_default
            } else {
                default
            }))
        };
        let cores = match &a.cores {
            Some(c) => parse_core_list(c)?,
            None if util::online_cpus() >= 2 => vec![0, 1],
            None => vec![0],
        };
        let mut sides = Sides::split(&cores);
        if let Some(l) = &a.load_cores {
            sides.load = parse_core_list(l)?;
        }
        if let Some(c) = &a.contender_cores {
            sides.contender = parse_core_list(c)?;
        }
        let online = util::online_cpus();
        if let Some(bad) = sides
            .load
            .iter()
            .chain(&sides.contender)
            .find(|&&c| c >= online)
        {
            return Err(format!("core {bad} does not exist ({online} online)"));
        }
        let placements =
            parse_placements(
                a.placement
                    .as_deref()
                    .unwrap_or(if quick { "A" } else { "both" }),
            )?;
        let reps = a.reps.unwrap_or(if quick { 1 } else { 3 });
        if reps == 0 {
            return Err("--reps must be at least 1".into());
        }
        if a.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return Err("--rate must be positive".into());
        }
        let root = workspace_root();
        Ok(Plan {
            quick,
            reps,
            duration: dur(&a.duration, "2s", "10s")?,
            warmup: dur(&a.warmup, "500ms", "2s")?,
            placements,
            workers: util::parse_workers(&a.workers)?,
            cores,
            sides,
            kinds: contenders::parse_list(&a.contenders)?,
            scenarios: scenarios::select(a.scenarios.as_deref(), quick)?,
            rate: a.rate,
            idle_threshold: a.idle_threshold / 100.0,
            idle_wait: Duration::from_secs_f64(
                a.idle_wait
                    .unwrap_or(if quick { 1.0 } else { 30.0 })
                    .max(0.0),
            ),
            interference_limit: a.interference_limit / 100.0,
            out_dir: a
                .out
                .clone()
                .unwrap_or_else(|| root.join("bench").join("results")),
        })
    }

    /// Rough wall time, for the plan printed at the start.
    fn estimate(&self) -> Duration {
        let per_run = |d: Duration| d + self.warmup + Duration::from_millis(800);
        let mut total = Duration::ZERO;
        for sc in &self.scenarios {
            let n = self.kinds.len() as u32;
            let halves = if sc.open_loop_skip_reason().is_some() {
                1
            } else {
                2
            };
            let mut one = per_run(self.duration) * halves * n;
            if sc.name == WRK_SCENARIO {
                one += self.duration * n;
            }
            total += one * self.reps as u32;
        }
        total * (self.placements.len() * self.workers.len()) as u32
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// target/release next to this binary (a debug build of the bench still
/// measures release binaries).
fn default_bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    if dir.file_name().is_some_and(|n| n == "debug") {
        dir.pop();
        dir.push("release");
    }
    dir
}

fn build_release(root: &Path, log_dir: &Path) -> Result<(), String> {
    eprintln!("ringway-bench: cargo build --release -p ringway -p ringway-loadgen (can take several minutes)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "build",
        "--release",
        "-p",
        "ringway",
        "-p",
        "ringway-loadgen",
    ]);
    let mut child = Spawn {
        name: "cargo build",
        cmd,
        cores: Vec::new(),
        log_dir,
        log_name: "cargo-build".into(),
    }
    .start()
    .map_err(|e| e.to_string())?;
    let exit = child.wait_timeout(Duration::from_secs(3600), Duration::from_secs(3600), || {});
    if exit.code != 0 {
        return Err(format!(
            "cargo build failed (exit {}): {}",
            exit.code,
            child.stderr_tail(5)
        ));
    }
    Ok(())
}

/// Everything a measurement needs.
struct Ctx<'a> {
    plan: &'a Plan,
    bins: Binaries,
    wrk: Option<PathBuf>,
    wrk_note: Option<String>,
    skipped: Vec<(Kind, String)>,
    /// Why the HTTP/2 scenarios cannot run (h2load missing).
    h2load_missing: Option<String>,
    certs: Certs,
    run_dir: PathBuf,
    /// Request body files (`--body-file`) by size: one per request body
    /// size of the selected scenarios.
    body_files: BTreeMap<usize, PathBuf>,
    step: usize,
    steps: usize,
}

pub fn run(args: CompareArgs) -> Result<ExitCode, String> {
    let plan = Plan::from_args(&args)?;
    let started = SystemTime::now();
    let (started_h, stamp) = util::timestamps(started);
    let root = workspace_root();
    let nofile = util::raise_nofile();

    let run_dir = root
        .join("target")
        .join("ringway-bench")
        .join(format!("run-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;

    // Binaries of the project.
    let bin_dir = args.bin_dir.clone().unwrap_or_else(default_bin_dir);
    let ringway = bin_dir.join("ringway");
    let ringload = bin_dir.join("ringload");
    if args.build || !ringway.is_file() || !ringload.is_file() {
        build_release(&root, &run_dir)?;
    }
    for b in [&ringway, &ringload] {
        if !b.is_file() {
            return Err(format!(
                "{} is missing after the build (see --bin-dir)",
                b.display()
            ));
        }
    }
    let mut notes = Vec::new();
    if let Some(n) = nofile_note(nofile, &plan.scenarios) {
        notes.push(n);
    }
    for (bin, src) in [(&ringway, "proxy"), (&ringload, "loadgen")] {
        let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
        let newest = util::newest_mtime(&root.join(src).join("src"));
        if let (Some(b), Some(n)) = (built, newest) {
            if n > b {
                notes.push(format!(
                    "{} is older than {src}/src (pass --build to rebuild)",
                    bin.display()
                ));
            }
        }
    }

    // Contenders: find or install.
    let mut installer = Installer::new(!args.no_install);
    let mut infos = Vec::new();
    let mut skipped = Vec::new();
    let mut bins = Binaries {
        ringway: ringway.clone(),
        ringload: ringload.clone(),
        ..Default::default()
    };
    for &k in &plan.kinds {
        let mut info = ContenderInfo {
            name: k.name().into(),
            ..Default::default()
        };
        let found = match k {
            Kind::Ringway | Kind::RingwayMirror | Kind::RingwayNosplice => Ok(ringway.clone()),
            Kind::Nginx => installer.ensure("nginx", "nginx"),
            Kind::Haproxy => installer.ensure("haproxy", "haproxy"),
            Kind::Direct | Kind::Relay => Ok(ringload.clone()),
        };
        match found {
            Ok(p) => {
                info.available = true;
                info.version = Some(match k {
                    Kind::Ringway => contenders::version_of(&p, &["--version"]),
                    Kind::RingwayMirror => format!(
                        "{}; every request mirrored to a shadow that never answers",
                        contenders::version_of(&p, &["--version"])
                    ),
                    Kind::RingwayNosplice => format!(
                        "{}; splice off (limits.splice_min_bytes = 0, splice_min_request_bytes = 0)",
                        contenders::version_of(&p, &["--version"])
                    ),
                    Kind::Nginx => contenders::version_of(&p, &["-v"]),
                    Kind::Haproxy => contenders::version_of(&p, &["-v"]),
                    Kind::Direct => "no proxy: load straight at the origin".into(),
                    Kind::Relay => format!(
                        "{}; `ringload relay`: a plain TCP relay, no HTTP work (the floor)",
                        contenders::version_of(&p, &["--version"])
                    ),
                });
                info.binary = Some(p.display().to_string());
                match k {
                    Kind::Nginx => bins.nginx = Some(p),
                    Kind::Haproxy => bins.haproxy = Some(p),
                    _ => {}
                }
            }
            Err(why) => {
                eprintln!("ringway-bench: {} skipped: {why}", k.name());
                info.skip_reason = Some(why.clone());
                skipped.push((k, why));
            }
        }
        infos.push(info);
    }
    let want_wrk = !args.no_wrk && plan.scenarios.iter().any(|s| s.name == WRK_SCENARIO);
    let (wrk, wrk_note) = if want_wrk {
        match installer.ensure("wrk", "wrk") {
            Ok(p) => {
                notes.push(format!(
                    "wrk cross-check: {}",
                    contenders::version_of(&p, &["-v"])
                ));
                (Some(p), None)
            }
            Err(e) => {
                notes.push(format!("wrk cross-check skipped: {e}"));
                (None, Some(format!("skipped: {e}")))
            }
        }
    } else {
        (None, None)
    };
    // The HTTP/2 scenarios' load generator (Debian: nghttp2-client).
    let mut h2load_missing = None;
    if plan.scenarios.iter().any(|s| s.h2_streams.is_some()) {
        match installer.ensure("nghttp2-client", "h2load") {
            Ok(p) => {
                notes.push(format!(
                    "HTTP/2 scenarios: load from {} ({})",
                    contenders::version_of(&p, &["--version"]),
                    p.display()
                ));
                bins.h2load = Some(p);
            }
            Err(e) => {
                eprintln!("ringway-bench: HTTP/2 scenarios skipped: {e}");
                notes.push(format!("HTTP/2 scenarios skipped: {e}"));
                h2load_missing = Some(format!("h2load unavailable: {e}"));
            }
        }
    }
    notes.extend(installer.log.iter().cloned());

    let certs = Certs::mint_for(&run_dir, &plan.scenarios)?;
    let mut body_files = BTreeMap::new();
    for size in request_body_sizes(&plan.scenarios) {
        let path = run_dir.join(body_file_name(size));
        std::fs::write(&path, vec![b'x'; size]).map_err(|e| format!("{}: {e}", path.display()))?;
        body_files.insert(size, path);
    }

    let steps = plan.workers.len() * plan.placements.len() * plan.scenarios.len();
    eprintln!(
        "ringway-bench: {} scenario(s) × {} placement(s) × {} worker count(s), {} rep(s), {:.1} s runs; about {} min; run dir {}",
        plan.scenarios.len(),
        plan.placements.len(),
        plan.workers.len(),
        plan.reps,
        plan.duration.as_secs_f64(),
        plan.estimate().as_secs().div_ceil(60),
        run_dir.display()
    );
    let mut ctx = Ctx {
        plan: &plan,
        bins,
        wrk,
        wrk_note,
        skipped,
        h2load_missing,
        certs,
        run_dir: run_dir.clone(),
        body_files,
        step: 0,
        steps,
    };

    let machine = Machine {
        cpu: util::cpu_model(),
        cpus: util::online_cpus(),
        kernel: util::kernel(),
        mem_total_kib: util::mem_total_kib(),
        git: util::git_rev(&root),
    };
    let settings = Settings {
        quick: plan.quick,
        reps: plan.reps,
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        placements: plan
            .placements
            .iter()
            .map(|p| p.name().to_string())
            .collect(),
        workers: plan.workers.clone(),
        cores: plan.cores.clone(),
        load_cores: plan.sides.load.clone(),
        contender_cores: plan.sides.contender.clone(),
        rate: plan.rate,
        idle_threshold_pct: plan.idle_threshold * 100.0,
        idle_wait_s: plan.idle_wait.as_secs_f64(),
        interference_limit_pct: plan.interference_limit * 100.0,
        load_generator: format!(
            "ringload ({})",
            contenders::version_of(&ringload, &["--version"])
        ),
    };
    let make_report = |results: &[ScenarioRuns], complete: bool| Report {
        tool: "ringway-bench compare".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_utc: started_h.clone(),
        finished_utc: util::timestamps(SystemTime::now()).0,
        complete,
        machine: machine.clone(),
        settings: settings.clone(),
        contenders: infos.clone(),
        notes: notes.clone(),
        scenarios: results.iter().map(report::summarize_scenario).collect(),
    };

    let mut results: Vec<ScenarioRuns> = Vec::new();
    for &workers in &plan.workers {
        for &placement in &plan.placements {
            let layout = Layout::new(placement, &plan.sides, workers);
            eprintln!("ringway-bench: {}, {workers} worker(s)", layout.describe());
            // This process samples /proc while the load runs: keep it on the
            // load side, away from the contender.
            let _ = set_affinity(0, &layout.load);
            for sc in &plan.scenarios {
                ctx.step += 1;
                let r = run_scenario(&mut ctx, &layout, sc);
                results.push(r);
                // A partial report after every scenario: a long run that is
                // interrupted still leaves its numbers behind.
                let _ = write_reports(&plan.out_dir, &stamp, &make_report(&results, false), false);
            }
        }
    }

    let report = make_report(&results, true);
    let written = write_reports(&plan.out_dir, &stamp, &report, true)?;
    println!("{}", report::markdown(&report));
    for p in &written {
        eprintln!("ringway-bench: wrote {}", p.display());
    }

    let mut problems = check_complete(&results, &written);
    if plan.quick {
        problems.extend(check_faults_handled(&results));
    }
    if problems.is_empty() && !args.keep_run_dir {
        let _ = std::fs::remove_dir_all(&run_dir);
    } else {
        eprintln!("ringway-bench: run directory kept: {}", run_dir.display());
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("ringway-bench: FAILED: {p}");
        }
        if plan.quick {
            return Ok(ExitCode::from(1));
        }
    }
    if plan.quick {
        eprintln!(
            "ringway-bench: quick run OK: every available contender ran and the report was written"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The request body sizes of `scenarios` (POSTs), each once, ascending.
fn request_body_sizes(scenarios: &[Scenario]) -> Vec<usize> {
    let mut v: Vec<usize> = scenarios
        .iter()
        .map(|s| s.request_body)
        .filter(|&b| b > 0)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The request body file of `bytes` bytes: `body-16k.bin`, `body-1m.bin`,
/// `body-64m.bin` (`body-N.bin` for a size that is no whole KiB).
fn body_file_name(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("body-{}m.bin", bytes >> 20)
    } else if bytes.is_multiple_of(1024) {
        format!("body-{}k.bin", bytes >> 10)
    } else {
        format!("body-{bytes}.bin")
    }
}

/// A note when the open-file limit (raised to the hard limit; every process
/// started inherits it) is below what the selected scenario with the most
/// requests in flight needs in a proxy: a client and an upstream descriptor
/// per busy connection (`conns-9900`: 19,900, under this container's hard
/// limit of 20,000; `conns-1000`: 2,100).
fn nofile_note(nofile: u64, scenarios: &[Scenario]) -> Option<String> {
    let sc = scenarios
        .iter()
        .max_by_key(|s| s.connections * s.h2_streams.unwrap_or(1))?;
    let in_flight = sc.connections * sc.h2_streams.unwrap_or(1);
    let need = contenders::descriptors_needed(in_flight);
    (nofile < need as u64).then(|| {
        format!(
            "open-file limit is {nofile}; {} ({in_flight} requests in flight) needs about {need} descriptors per proxy process (a client and an upstream one per connection) and may fail",
            sc.name
        )
    })
}

/// Every contender that was not skipped has closed- and open-loop results
/// (closed only where the scenario has no open loop), and the report files
/// exist.
fn check_complete(results: &[ScenarioRuns], written: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for s in results {
        for c in &s.contenders {
            if c.skipped.is_some() {
                continue;
            }
            let modes: &[&str] = if s.open_loop_skipped.is_some() {
                &["closed"]
            } else {
                &["closed", "open"]
            };
            for &mode in modes {
                let ok = c.runs.iter().any(|r| r.mode == mode && r.requests > 0);
                if !ok {
                    problems.push(format!(
                        "{} {} placement {} w{}: no {mode}-loop result ({})",
                        c.name,
                        s.name,
                        s.placement,
                        s.workers,
                        if c.failures.is_empty() {
                            "no requests completed".to_string()
                        } else {
                            c.failures.join("; ")
                        }
                    ));
                }
            }
        }
    }
    for p in written {
        if std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true) {
            problems.push(format!("{} was not written", p.display()));
        }
    }
    problems
}

/// Quick runs: in a fault scenario every proxy that ran must have kept the
/// success rate at least this high (percent). Round robin without retries or
/// ejection gives 83.3 % in `fault-503`; a proxy below this threshold is not
/// retrying, which means its bench configuration is broken.
const QUICK_MIN_FAULT_SUCCESS_PCT: f64 = 95.0;

fn check_faults_handled(results: &[ScenarioRuns]) -> Vec<String> {
    let mut problems = Vec::new();
    for s in results.iter().filter(|s| s.fault.is_some()) {
        for c in s.contenders.iter().filter(|c| c.skipped.is_none()) {
            for r in &c.runs {
                if let Some(pct) = r.success_pct {
                    if pct < QUICK_MIN_FAULT_SUCCESS_PCT {
                        problems.push(format!(
                            "{} {} {} rep {}: success rate {pct:.2} % < {QUICK_MIN_FAULT_SUCCESS_PCT} % (retries not working?)",
                            c.name,
                            s.name,
                            r.mode,
                            r.rep + 1
                        ));
                    }
                }
            }
        }
    }
    problems
}

fn write_reports(
    out: &Path,
    stamp: &str,
    r: &Report,
    announce: bool,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let json = serde_json::to_string_pretty(r).map_err(|e| e.to_string())? + "\n";
    let md = report::markdown(r);
    let title = format!(
        "ringway vs nginx vs haproxy vs direct — {}{}",
        r.started_utc,
        if r.settings.quick {
            " (quick smoke run, noisy)"
        } else {
            ""
        }
    );
    let svg = crate::chart::svg(&title, &r.scenarios);
    let mut written = Vec::new();
    for (ext, text) in [("md", &md), ("json", &json), ("svg", &svg)] {
        for name in [format!("compare-{stamp}.{ext}"), format!("latest.{ext}")] {
            let p = out.join(name);
            std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
            if announce {
                written.push(p);
            }
        }
    }
    Ok(written)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Closed,
    Open(f64),
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Open(_) => "open",
        }
    }
}

/// Contender indices in the order of repetition `rep` (rotated by one each time).
pub fn rotated(n: usize, rep: usize) -> Vec<usize> {
    (0..n).map(|i| (i + rep) % n.max(1)).collect()
}

/// Why `kind` sits `sc` out when it needs the plain origin (direct, and
/// the relay, which only passes the bytes to it).
fn plain_origin_skip(kind: Kind, sc: &Scenario) -> Option<String> {
    let why = sc
        .direct_skip_reason()
        .filter(|_| kind.needs_plain_origin())?;
    Some(match kind {
        Kind::Relay => {
            format!("the relay only passes bytes to one plain origin, as direct loads it: {why}")
        }
        _ => why.into(),
    })
}

fn run_scenario(ctx: &mut Ctx, layout: &Layout, sc: &Scenario) -> ScenarioRuns {
    let plan = ctx.plan;
    let mut out = ScenarioRuns {
        name: sc.name.into(),
        description: sc.description.into(),
        placement: layout.placement.name().into(),
        workers: layout.workers,
        connections: sc.connections,
        layout: layout.describe(),
        notes: layout.notes(),
        fault: sc.fault.clone(),
        per_request: sc.per_request_note().map(String::from),
        moved_mib: sc.moved_mib(),
        contenders: plan
            .kinds
            .iter()
            .map(|&k| ContenderRuns {
                name: k.name().into(),
                skipped: ctx
                    .skipped
                    .iter()
                    .find(|(s, _)| *s == k)
                    .map(|(_, why)| why.clone())
                    .or_else(|| plain_origin_skip(k, sc))
                    .or_else(|| sc.h2_streams.and(ctx.h2load_missing.clone())),
                ..Default::default()
            })
            .collect(),
        open_loop_skipped: sc.open_loop_skip_reason().map(String::from),
        ..Default::default()
    };
    eprintln!(
        "ringway-bench: [{}/{}] {} (placement {}, {} worker(s))",
        ctx.step, ctx.steps, sc.name, layout.placement, layout.workers
    );
    let tag = format!("{}-{}-w{}", sc.name, layout.placement, layout.workers);
    let mut origin = match start_origins(&ctx.bins, sc, layout, &ctx.run_dir, &tag) {
        Ok(o) => Some(o),
        Err(e) => {
            for c in out.contenders.iter_mut().filter(|c| c.skipped.is_none()) {
                c.failures.push(format!("origin: {e}"));
            }
            return out;
        }
    };
    let active: Vec<usize> = (0..out.contenders.len())
        .filter(|&i| out.contenders[i].skipped.is_none())
        .collect();

    for rep in 0..plan.reps {
        for i in rotated(active.len(), rep).into_iter().map(|j| active[j]) {
            measure_guarded(
                ctx,
                layout,
                sc,
                &mut origin,
                &tag,
                i,
                Mode::Closed,
                rep,
                &mut out,
            );
        }
    }

    let closed_median = |name: &str| {
        out.contenders
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| {
                let v: Vec<f64> = c
                    .runs
                    .iter()
                    .filter(|r| r.mode == "closed")
                    .map(|r| r.rps)
                    .collect();
                median(&v)
            })
    };
    if let Some(why) = sc.open_loop_skip_reason() {
        eprintln!("ringway-bench:   {}: open loop skipped: {why}", sc.name);
        if let Some(mut o) = origin {
            o.stop();
        }
        return out;
    }
    let (rate, basis) = match plan.rate {
        Some(r) => (Some(r), "--rate".to_string()),
        None => match closed_median("nginx") {
            Some(m) => (Some(m / 2.0), format!("½ of nginx's closed-loop median {:.0} req/s", m)),
            None => match closed_median("ringway").or_else(|| closed_median("haproxy")) {
                Some(m) => (
                    Some(m / 2.0),
                    format!("nginx has no closed-loop result here: ½ of ringway's (or haproxy's) closed-loop median {m:.0} req/s"),
                ),
                None => (None, "no closed-loop result to derive a rate from".into()),
            },
        },
    };
    out.open_loop_rate = rate;
    out.rate_basis = basis;
    if let Some(rate) = rate {
        for rep in 0..plan.reps {
            for i in rotated(active.len(), rep).into_iter().map(|j| active[j]) {
                measure_guarded(
                    ctx,
                    layout,
                    sc,
                    &mut origin,
                    &tag,
                    i,
                    Mode::Open(rate),
                    rep,
                    &mut out,
                );
            }
        }
    } else {
        for &i in &active {
            out.contenders[i]
                .failures
                .push("open loop not run: no rate".into());
        }
    }
    if let Some(mut o) = origin {
        o.stop();
    }
    out
}

/// Measure contender `i`, then check the origins survived the run. When one
/// did not, the run is flagged, the scenario gets a note, and new origins
/// are started for the next run (a dead origin must not be blamed on the
/// next contender).
#[allow(clippy::too_many_arguments)]
fn measure_guarded(
    ctx: &Ctx,
    layout: &Layout,
    sc: &Scenario,
    origin: &mut Option<contenders::Origins>,
    tag: &str,
    i: usize,
    mode: Mode,
    rep: usize,
    out: &mut ScenarioRuns,
) {
    let kind = ctx.plan.kinds[i];
    let Some(o) = origin.as_ref() else {
        out.contenders[i]
            .failures
            .push(format!("{} rep {}: no origin", mode.name(), rep + 1));
        return;
    };
    let runs_before = out.contenders[i].runs.len();
    measure(ctx, layout, sc, o, kind, mode, rep, &mut out.contenders[i]);
    let o = origin.as_mut().expect("checked above");
    let Some((which, code, tail)) = o.try_exit() else {
        return;
    };
    let name = if o.list.len() > 1 {
        format!("origin {} of {} (ringload serve)", which + 1, o.list.len())
    } else {
        "origin (ringload serve)".to_string()
    };
    o.stop();
    let why = format!(
        "{name} exited with code {code} during {} {} rep {}: {tail}",
        kind.name(),
        mode.name(),
        rep + 1,
    );
    eprintln!("ringway-bench:   {why}; starting new origins");
    out.notes.push(why.clone());
    if out.contenders[i].runs.len() > runs_before {
        if let Some(r) = out.contenders[i].runs.last_mut() {
            r.flags.push(format!("origin died: exit code {code}"));
        }
    }
    let n = out.notes.len();
    *origin = match start_origins(
        &ctx.bins,
        sc,
        layout,
        &ctx.run_dir,
        &format!("{tag}-restart{n}"),
    ) {
        Ok(o) => Some(o),
        Err(e) => {
            out.notes
                .push(format!("origin could not be restarted: {e}"));
            None
        }
    };
}

/// CPU ticks at one instant (see `measure`).
struct Snap {
    /// The contender's tree: (utime + stime, stime).
    proxy: (u64, u64),
    /// The origins' trees: (utime + stime, stime).
    origin: (u64, u64),
    me: u64,
    shadow: u64,
    loadgen: u64,
    stat: std::collections::HashMap<usize, crate::procstat::CpuTimes>,
    at: Instant,
}

/// CPU ticks of `pids`: (utime + stime, stime), from one read of each
/// process's stat file.
fn cpu_ticks(pids: &[i32]) -> (u64, u64) {
    pids.iter()
        .filter_map(|&p| read_pid_stat(p))
        .fold((0, 0), |(total, sys), s| {
            (total + s.cpu_ticks(), sys + s.stime)
        })
}

/// A run that produced no result: said on stderr and kept for the report.
fn record_failure(
    cr: &mut ContenderRuns,
    kind: Kind,
    mode: Mode,
    rep: usize,
    e: &dyn std::fmt::Display,
) {
    eprintln!(
        "ringway-bench:   {} {} rep {}: {e}",
        kind.name(),
        mode.name(),
        rep + 1
    );
    cr.failures
        .push(format!("{} rep {}: {e}", mode.name(), rep + 1));
}

fn tree_of(root: Option<i32>) -> Vec<i32> {
    match root {
        Some(r) => tree_pids(&all_processes(), r),
        None => Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn measure(
    ctx: &Ctx,
    layout: &Layout,
    sc: &Scenario,
    origin: &contenders::Origins,
    kind: Kind,
    mode: Mode,
    rep: usize,
    cr: &mut ContenderRuns,
) {
    let plan = ctx.plan;
    let tag = format!(
        "{}-{}-w{}-{}-r{rep}-{}",
        sc.name,
        layout.placement,
        layout.workers,
        mode.name(),
        kind.name()
    );
    let cores = layout.all_cores();
    let idle = wait_for_idle(&cores, plan.idle_threshold, plan.idle_wait);
    let mut flags = Vec::new();
    if !idle.idle {
        flags.push(format!(
            "not idle before the run: {} after waiting {:.1} s",
            idle.describe(),
            idle.waited.as_secs_f64()
        ));
    }
    let mut running = match start_contender(
        kind,
        &ctx.bins,
        layout,
        sc,
        &origin.addrs(),
        &ctx.certs,
        &ctx.run_dir,
        &tag,
    ) {
        Ok(r) => r,
        Err(e) => {
            record_failure(cr, kind, mode, rep, &e);
            return;
        }
    };
    // nginx forks its workers after binding: wait until they exist.
    if kind == Kind::Nginx {
        let deadline = Instant::now() + Duration::from_secs(3);
        while tree_of(running.root_pid()).len() < 1 + layout.workers && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let spec = RunSpec {
        url: running.url.clone(),
        connections: sc.connections,
        threads: layout.load.len(),
        cores: layout.load.clone(),
        duration: plan.duration,
        warmup: match mode {
            Mode::Closed => Some(plan.warmup),
            Mode::Open(_) => None,
        },
        rate: match mode {
            Mode::Closed => None,
            Mode::Open(r) => Some(r),
        },
        no_keepalive: sc.new_connection_per_request,
        method: sc.method(),
        body_file: ctx.body_files.get(&sc.request_body).cloned(),
        insecure: sc.tls,
        no_tls_resumption: sc.full_handshakes,
        client_identity: ctx.certs.client_identity(sc),
    };
    // HTTP/2 scenarios: h2load instead (closed loop only, warm-up inside,
    // the CPU window is its main phase).
    let h2spec = sc.h2_streams.map(|streams| H2loadSpec {
        url: running.url.clone(),
        connections: sc.connections,
        streams,
        threads: layout.load.len(),
        cores: layout.load.clone(),
        duration: plan.duration,
        warmup: plan.warmup,
        log_file: ctx.run_dir.join(format!("{tag}-h2load.tsv")),
    });
    // Open loop: the warm-up is its own invocation, so that the CPU window
    // below holds exactly the measured requests.
    if let Mode::Open(_) = mode {
        let warm = RunSpec {
            duration: plan.warmup,
            ..spec.clone()
        };
        if let Err(e) = warm.run(
            &ctx.bins.ringload,
            &ctx.run_dir,
            &format!("{tag}-warmup"),
            || {},
        ) {
            cr.failures
                .push(format!("open rep {} warm-up: {e}", rep + 1));
            running.stop();
            return;
        }
    }

    let proxy_pids = tree_of(running.root_pid());
    let origin_tree = || -> Vec<i32> {
        origin
            .pids()
            .into_iter()
            .flat_map(|p| tree_of(Some(p)))
            .collect()
    };
    // ringway-mirror's shadow: not the contender, but ours (interference).
    let shadow_pids = tree_of(running.shadow_pid());
    let me = std::process::id() as i32;
    let root = running.root_pid();
    // CPU of everything at one instant; the contender's and the origins'
    // trees are re-read each time (a process that appears meanwhile counts
    // in full). `loadgen`: h2load, read while it runs (ringload's comes
    // from its rusage at exit).
    let snap = |loadgen: Option<i32>| Snap {
        proxy: cpu_ticks(&tree_of(root)),
        origin: cpu_ticks(&origin_tree()),
        me: cpu_ticks(&[me]).0,
        shadow: cpu_ticks(&shadow_pids).0,
        loadgen: loadgen.map_or(0, |p| cpu_ticks(&[p]).0),
        stat: read_proc_stat(),
        at: Instant::now(),
    };
    let mut peak_rss: u64 = 0;
    let mut sample_rss = || {
        let rss: u64 = proxy_pids.iter().filter_map(|&p| read_vm_rss_kib(p)).sum();
        peak_rss = peak_rss.max(rss);
    };
    // The CPU window: (first, last snapshot, whether it holds exactly the
    // counted requests, load generator CPU inside it in µs).
    let whole_before = snap(None);
    let (result, window) = match (&h2spec, &ctx.bins.h2load) {
        (Some(h), Some(h2load)) => {
            let (mut main_start, mut main_end) = (None, None);
            let r = h.run(
                h2load,
                &ctx.run_dir,
                &tag,
                |phase, pid| match phase {
                    H2Phase::MainStarted => main_start = Some(snap(Some(pid))),
                    H2Phase::MainOver => main_end = Some(snap(Some(pid))),
                },
                &mut sample_rss,
            );
            let whole_after = snap(None);
            match (main_start, main_end) {
                (Some(a), Some(b)) => {
                    // Ended after h2load exited: its CPU from its rusage.
                    let load_us = match (&r, b.loadgen) {
                        (Ok((_, exit)), 0) => (exit.cpu_us - ticks_to_us(a.loadgen)).max(0.0),
                        _ => ticks_to_us(b.loadgen.saturating_sub(a.loadgen)),
                    };
                    (r, (a, b, true, Some(load_us)))
                }
                _ => {
                    flags.push("h2load's main phase was not seen: CPU window = the whole h2load run (warm-up included), no CPU µs/req".into());
                    (r, (whole_before, whole_after, false, None))
                }
            }
        }
        (Some(_), None) => (
            Err("h2load is not available".to_string()),
            (whole_before, snap(None), false, None),
        ),
        (None, _) => {
            let r = spec.run(&ctx.bins.ringload, &ctx.run_dir, &tag, &mut sample_rss);
            let whole_after = snap(None);
            // Open loop: the warm-up was its own invocation, so the window
            // holds exactly the measured requests; closed loop: the warm-up
            // is inside.
            let exact = matches!(mode, Mode::Open(_));
            (r, (whole_before, whole_after, exact, None))
        }
    };
    let (before, after, exact_window, h2load_us) = window;
    let wall = after.at.duration_since(before.at);
    let (proxy_before, proxy_sys_before) = before.proxy;
    let (proxy_after, proxy_sys_after) = after.proxy;
    let (origin_before, origin_sys_before) = before.origin;
    let (origin_after, origin_sys_after) = after.origin;
    let rss_now: u64 = tree_of(root)
        .iter()
        .filter_map(|&p| read_vm_rss_kib(p))
        .sum();
    peak_rss = peak_rss.max(rss_now);

    let (lr, exit) = match result {
        Ok(x) => x,
        Err(e) => {
            record_failure(cr, kind, mode, rep, &e);
            running.stop();
            return;
        }
    };
    let proxy_us = kind
        .is_proxy()
        .then(|| ticks_to_us(proxy_after.saturating_sub(proxy_before)));
    let proxy_sys_us = kind
        .is_proxy()
        .then(|| ticks_to_us(proxy_sys_after.saturating_sub(proxy_sys_before)));
    let origin_us = ticks_to_us(origin_after.saturating_sub(origin_before));
    let origin_sys_us = ticks_to_us(origin_sys_after.saturating_sub(origin_sys_before));
    let ours = proxy_us.unwrap_or(0.0)
        + origin_us
        + ticks_to_us(after.me.saturating_sub(before.me))
        + ticks_to_us(after.shadow.saturating_sub(before.shadow))
        + h2load_us.unwrap_or(exit.cpu_us);
    let inter = interference(&before.stat, &after.stat, &cores, ours, wall);
    if let Some(f) = inter.flag(plan.interference_limit) {
        flags.push(f);
    }
    if lr.interrupted {
        flags.push("interrupted: the run was stopped early".into());
    }
    if exit.code != 0 {
        flags.push(format!("load generator: exit code {}", exit.code));
    }
    if let Mode::Open(r) = mode {
        if lr.rps < 0.9 * r {
            flags.push(format!("rate not met: {:.0} of {:.0} req/s", lr.rps, r));
        }
    }
    let per_req = |us: f64| (lr.requests > 0).then(|| us / lr.requests as f64);
    let rec = RunRecord {
        rep,
        mode: mode.name(),
        rate: match mode {
            Mode::Open(r) => Some(r.round()),
            Mode::Closed => None,
        },
        requests: lr.requests,
        duration_s: lr.duration_s,
        rps: lr.rps,
        p50_us: lr.latency_us.p50,
        p90_us: lr.latency_us.p90,
        p99_us: lr.latency_us.p99,
        p999_us: lr.latency_us.p999,
        max_us: lr.latency_us.max,
        errors: lr.errors_total(),
        non_2xx: lr.non_2xx(),
        success_pct: lr.success_pct(),
        tls_resumed_pct: if sc.tls { lr.tls_resumed_pct() } else { None },
        proxy_cpu_us: proxy_us,
        // Only when the CPU window holds exactly the counted requests: open
        // loop (ringload), or h2load's main phase.
        cpu_us_per_req: proxy_us.and_then(per_req).filter(|_| exact_window),
        cpu_sys_us_per_req: proxy_sys_us.and_then(per_req).filter(|_| exact_window),
        proxy_cpu_pct: proxy_us.map(|u| 100.0 * u / (wall.as_secs_f64() * 1e6)),
        origin_cpu_us_per_req: per_req(origin_us).filter(|_| exact_window),
        origin_cpu_sys_us_per_req: per_req(origin_sys_us).filter(|_| exact_window),
        rss_kib: kind.is_proxy().then_some(peak_rss),
        idle_before: idle.describe(),
        others_core_pct: inter.others_core_fraction() * 100.0,
        flags,
    };
    eprintln!(
        "ringway-bench:   {:<8} {:<6} rep {}: {:>9.0} req/s  p50 {:>6.0} µs  p99 {:>7.0} µs{}{}  errors {}{}",
        kind.name(),
        mode.name(),
        rep + 1,
        rec.rps,
        rec.p50_us,
        rec.p99_us,
        rec.cpu_us_per_req
            .map(|c| format!("  CPU {c:.1} µs/req"))
            .unwrap_or_default(),
        rec.rss_kib.map(|r| format!("  RSS {r} KiB")).unwrap_or_default(),
        rec.errors,
        if rec.flags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", rec.flags.join("; "))
        }
    );
    cr.runs.push(rec);

    // wrk beside ringload, on the warm contender.
    if mode == Mode::Closed && sc.name == WRK_SCENARIO {
        match &ctx.wrk {
            Some(wrk) => match run_wrk(
                wrk,
                &running.url,
                sc.connections,
                layout.load.len(),
                plan.duration,
                &layout.load,
                &ctx.run_dir,
                &format!("{tag}-wrk"),
            ) {
                Ok(w) => {
                    eprintln!(
                        "ringway-bench:   {:<8} wrk    rep {}: {:>9.0} req/s  p99 {:>7.0} µs",
                        kind.name(),
                        rep + 1,
                        w.rps,
                        w.p99_us.unwrap_or(f64::NAN)
                    );
                    cr.wrk.push(WrkRecord {
                        rep,
                        rps: w.rps,
                        p50_us: w.p50_us,
                        p90_us: w.p90_us,
                        p99_us: w.p99_us,
                        errors: w.errors,
                    });
                }
                Err(e) => cr.wrk_note = Some(format!("wrk failed: {e}")),
            },
            None => cr.wrk_note = ctx.wrk_note.clone(),
        }
    }
    running.stop();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation() {
        assert_eq!(rotated(4, 0), vec![0, 1, 2, 3]);
        assert_eq!(rotated(4, 1), vec![1, 2, 3, 0]);
        assert_eq!(rotated(4, 5), vec![1, 2, 3, 0]);
        assert_eq!(rotated(0, 3), Vec::<usize>::new());
        // Over n repetitions each contender is in each slot once.
        for slot in 0..3 {
            let mut seen: Vec<usize> = (0..3).map(|rep| rotated(3, rep)[slot]).collect();
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 2]);
        }
    }

    #[test]
    fn quick_plan() {
        let args = CompareArgs {
            quick: true,
            out: Some("/tmp/x".into()),
            placement: None,
            cores: None,
            load_cores: None,
            contender_cores: None,
            reps: None,
            duration: None,
            warmup: None,
            rate: None,
            scenarios: None,
            contenders: "ringway,nginx,haproxy,direct".into(),
            workers: "1".into(),
            idle_wait: None,
            idle_threshold: 10.0,
            interference_limit: 5.0,
            no_install: false,
            no_wrk: false,
            bin_dir: None,
            build: false,
            keep_run_dir: false,
        };
        let p = Plan::from_args(&args).unwrap();
        assert_eq!(p.reps, 1);
        assert_eq!(p.duration, Duration::from_secs(2));
        assert_eq!(p.placements, vec![Placement::A]);
        assert_eq!(p.scenarios[0].name, "small-get-keepalive");
        assert!(
            p.estimate() < Duration::from_secs(120),
            "{:?}",
            p.estimate()
        );
        let full = Plan::from_args(&CompareArgs {
            quick: false,
            ..args.clone()
        })
        .unwrap();
        assert_eq!(full.reps, 3);
        assert_eq!(full.placements.len(), 2);
        // The default set leaves the fault, mTLS, HTTP/2, large-body and
        // 9,900-connection scenarios out; `all` has them.
        assert_eq!(full.scenarios.len(), scenarios::ALL.len() - 10);
        assert!(full.scenarios.iter().all(|s| s.fault.is_none()
            && !s.client_cert
            && s.h2_streams.is_none()
            && !s.large_body()
            && s.connections <= 1000));
        assert!(p.scenarios.iter().any(|s| s.name == "fault-503"));
        // --quick has the short h2c run (closed loop only: half the runs).
        assert!(p.scenarios.iter().any(|s| s.name == "h2c-streams"));
        assert!(Plan::from_args(&CompareArgs {
            reps: Some(0),
            ..args.clone()
        })
        .is_err());
        assert!(Plan::from_args(&CompareArgs {
            cores: Some("0,999".into()),
            ..args
        })
        .is_err());
    }

    #[test]
    fn one_body_file_per_request_body_size() {
        let sel = |l: &str| scenarios::select(Some(l), false).unwrap();
        assert!(request_body_sizes(&sel("small-get-keepalive,get-64m")).is_empty());
        assert_eq!(request_body_sizes(&sel("post-16k")), vec![16 * 1024]);
        let sizes = request_body_sizes(&sel("post-64m,post-16k,get-1m,post-1m"));
        assert_eq!(sizes, vec![16 * 1024, 1 << 20, 64 << 20]);
        let names: Vec<String> = sizes.iter().map(|&b| body_file_name(b)).collect();
        assert_eq!(names, ["body-16k.bin", "body-1m.bin", "body-64m.bin"]);
        assert_eq!(body_file_name(1000), "body-1000.bin");
        assert_eq!(body_file_name(1536 * 1024), "body-1536k.bin");
        // The default set has only post-16k's.
        assert_eq!(
            request_body_sizes(&scenarios::select(None, false).unwrap()),
            vec![16 * 1024]
        );
    }

    /// Direct and the relay sit out the scenarios the plain origin cannot
    /// serve alone, each with the reason; the proxies never do.
    #[test]
    fn plain_origin_skips() {
        let sel = |l: &str| scenarios::select(Some(l), false).unwrap();
        let tls = &sel("tls-keepalive")[0];
        let direct = plain_origin_skip(Kind::Direct, tls).unwrap();
        assert!(direct.contains("TLS termination"), "{direct}");
        let relay = plain_origin_skip(Kind::Relay, tls).unwrap();
        assert!(relay.starts_with("the relay only passes bytes") && relay.ends_with(&direct));
        assert_eq!(plain_origin_skip(Kind::Nginx, tls), None);
        assert_eq!(
            plain_origin_skip(Kind::Relay, &sel("small-get-keepalive")[0]),
            None
        );
    }

    #[test]
    fn open_file_note() {
        let sel = |l: &str| scenarios::select(Some(l), false).unwrap();
        // This container: 20,000 holds conns-9900 (19,900).
        assert_eq!(
            nofile_note(20_000, &sel("conns-9900,small-get-keepalive")),
            None
        );
        let n = nofile_note(16_384, &sel("conns-9900,conns-1000")).unwrap();
        assert!(n.starts_with("open-file limit is 16384; conns-9900 (9900 requests in flight) needs about 19900 descriptors"), "{n}");
        assert_eq!(nofile_note(4096, &sel("conns-1000")), None);
        assert!(nofile_note(1024, &sel("conns-1000"))
            .unwrap()
            .contains("conns-1000"));
        // HTTP/2: connections × streams in flight.
        assert!(nofile_note(1024, &sel("h2c-streams"))
            .unwrap()
            .contains("1000 requests in flight"));
        assert_eq!(nofile_note(1024, &sel("small-get-keepalive")), None);
    }

    #[test]
    fn completeness_check() {
        let mut s = ScenarioRuns {
            name: "small-get-keepalive".into(),
            contenders: vec![
                ContenderRuns {
                    name: "ringway".into(),
                    runs: vec![
                        RunRecord {
                            mode: "closed",
                            requests: 10,
                            ..Default::default()
                        },
                        RunRecord {
                            mode: "open",
                            requests: 10,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                ContenderRuns {
                    name: "haproxy".into(),
                    skipped: Some("not installed".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert!(check_complete(std::slice::from_ref(&s), &[]).is_empty());
        // A scenario without an open loop needs only the closed-loop result.
        let mut h2 = s.clone();
        h2.contenders[0].runs.pop();
        assert_eq!(check_complete(std::slice::from_ref(&h2), &[]).len(), 1);
        h2.open_loop_skipped = Some("closed loop only".into());
        assert!(check_complete(std::slice::from_ref(&h2), &[]).is_empty());
        s.contenders[0].runs.pop();
        s.contenders[0].failures.push("boom".into());
        let p = check_complete(&[s], &[PathBuf::from("/nonexistent/latest.md")]);
        assert_eq!(p.len(), 2);
        assert!(p[0].contains("no open-loop result (boom)"));
    }

    #[test]
    fn quick_fault_check() {
        let run = |pct: f64| RunRecord {
            mode: "closed",
            requests: 10,
            success_pct: Some(pct),
            ..Default::default()
        };
        let mut s = ScenarioRuns {
            name: "fault-503".into(),
            fault: scenarios::ALL
                .iter()
                .find(|s| s.name == "fault-503")
                .and_then(|s| s.fault.clone()),
            contenders: vec![
                ContenderRuns {
                    name: "ringway".into(),
                    runs: vec![run(100.0)],
                    ..Default::default()
                },
                ContenderRuns {
                    name: "nginx".into(),
                    runs: vec![run(83.3)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let p = check_faults_handled(std::slice::from_ref(&s));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("nginx fault-503 closed rep 1: success rate 83.30 %"));
        // Other scenarios are not judged on their success rate.
        s.fault = None;
        assert!(check_faults_handled(&[s]).is_empty());
    }
}
