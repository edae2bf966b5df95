//! `ringway-tune sweep`: measure ringway with several `[runtime]` settings
//! and keep the best.
//!
//! Each variant (`workers`, `ring_entries`, `ring_flags`, `sqpoll_idle`)
//! runs ringway, on the CPUs [`placement`] picks, on a minimal
//! configuration (one listener, one route, one cluster) in front of
//! `ringload serve`, driven by `ringload run` twice: closed loop (throughput)
//! and at a fixed rate (CPU per request, latency). Repetitions are
//! interleaved (every variant once, then again, in rotated order), so a
//! change in the machine's load hits every variant alike. The objective and
//! the noise rule are in [`verdict`], the charts in [`chart`].

pub mod chart;
pub mod placement;
mod procs;
mod progress;
mod tuned;
pub mod verdict;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::probe::{KernelProbe, Probe, RingFlag};
use procs::Proc;
use progress::{Progress, PHASES};
pub use tuned::tuned_text;
pub use verdict::Objective;

/// One set of swept settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    pub workers: u32,
    pub ring_entries: u32,
    /// Names as in `[runtime] ring_flags`.
    pub flags: Vec<String>,
    /// `[runtime] sqpoll_idle` as written (`"100ms"`); `None`: no SQPOLL.
    pub sqpoll_idle: Option<String>,
}

/// The idle time of the SQPOLL variants: the kernel thread polls this long
/// after the last submission before it sleeps.
pub const SQPOLL_IDLE: &str = "100ms";

impl Variant {
    pub fn label(&self) -> String {
        format!(
            "workers {}, ring_entries {}, ring_flags [{}]{}",
            self.workers,
            self.ring_entries,
            self.flags.join(", "),
            self.sqpoll_idle
                .as_ref()
                .map_or(String::new(), |i| format!(", sqpoll_idle {i}"))
        )
    }

    /// `single_issuer + coop_taskrun`, or `none`; `+ sqpoll (idle 100ms)`
    /// with SQPOLL.
    pub fn flags_text(&self) -> String {
        let mut t = if self.flags.is_empty() {
            "none".to_string()
        } else {
            self.flags.join(" + ")
        };
        if let Some(i) = &self.sqpoll_idle {
            t.push_str(&format!(" + sqpoll (idle {i})"));
        }
        t
    }
}

/// What one ringload run measured.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    pub rps: f64,
    pub p99_us: u64,
    pub errors: u64,
    /// ringway's CPU time per response, µs.
    pub cpu_us_per_req: f64,
}

/// One repetition of one variant.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub variant: usize,
    pub closed: Option<Sample>,
    pub fixed: Option<Sample>,
    pub error: Option<String>,
}

pub struct Options {
    pub config: PathBuf,
    pub quick: bool,
    pub out: Option<PathBuf>,
    pub ringway: Option<PathBuf>,
    pub ringload: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub reps: Option<u32>,
    pub rate: Option<u64>,
    pub connections: u32,
    pub objective: Objective,
}

/// Everything a sweep found, for the report.
pub struct Sweep {
    pub config: PathBuf,
    pub variants: Vec<Variant>,
    pub baseline: usize,
    pub runs: Vec<Run>,
    pub rate: u64,
    pub duration: Duration,
    pub reps: u32,
    pub connections: u32,
    pub ringway_cores: Vec<u32>,
    pub client_cores: Vec<u32>,
    pub ringway_bin: PathBuf,
    pub kernel: String,
    pub notes: Vec<String>,
    pub objective: Objective,
    /// Why ringway got `ringway_cores`: one sentence each.
    pub placement: Vec<String>,
}

/// `10s`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        _ => Err(format!("bad duration {s:?} (write 500ms or 3s)")),
    }
}

fn flag_names(flags: &[RingFlag]) -> Vec<String> {
    flags.iter().map(|f| f.name().to_string()).collect()
}

/// The user's current settings, `"auto"` workers as `auto_workers`.
fn baseline(config: &toml::Table, auto_workers: u32) -> Result<Variant, String> {
    let empty = toml::Table::new();
    let rt = match config.get("runtime") {
        Some(toml::Value::Table(t)) => t,
        None => &empty,
        Some(_) => return Err("[runtime] is not a table".into()),
    };
    let workers = match rt.get("workers") {
        None => auto_workers,
        Some(toml::Value::String(s)) if s == "auto" => auto_workers,
        Some(toml::Value::Integer(n)) if *n >= 1 => *n as u32,
        Some(v) => return Err(format!("runtime.workers: unexpected {v}")),
    };
    let ring_entries = match rt.get("ring_entries") {
        None => 1024,
        Some(toml::Value::Integer(n)) if *n >= 2 => *n as u32,
        Some(v) => return Err(format!("runtime.ring_entries: unexpected {v}")),
    };
    let flags = match rt.get("ring_flags") {
        None => vec!["single_issuer".to_string(), "coop_taskrun".to_string()],
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("runtime.ring_flags: not strings")
            })
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(format!("runtime.ring_flags: unexpected {v}")),
    };
    let sqpoll_idle = match rt.get("sqpoll_idle") {
        None => None,
        Some(toml::Value::String(s)) => Some(s.clone()),
        Some(v) => return Err(format!("runtime.sqpoll_idle: unexpected {v}")),
    };
    Ok(Variant {
        workers,
        ring_entries,
        flags,
        sqpoll_idle,
    })
}

/// The variants: the baseline first, then workers × ring_entries × the
/// flag sets the kernel accepts.
pub fn variants(
    base: &Variant,
    ringway_cores: u32,
    quick: bool,
    probe: &dyn Probe,
) -> Vec<Variant> {
    let mut workers = vec![ringway_cores.max(1)];
    if !quick {
        let mut w = ringway_cores / 2;
        while w >= 1 {
            workers.push(w);
            w /= 2;
        }
    } else if ringway_cores >= 2 {
        workers.push(ringway_cores / 2);
    }
    let entries: &[u32] = if quick {
        &[256, 1024]
    } else {
        &[256, 1024, 4096]
    };
    // (ring_flags, with SQPOLL): SQPOLL only in the full sweep. The kernel
    // refuses COOP_TASKRUN and DEFER_TASKRUN with SQPOLL (EINVAL), so SQPOLL
    // goes with single_issuer or no flag.
    let mut candidates: Vec<(&[RingFlag], bool)> = vec![
        (&[RingFlag::SingleIssuer, RingFlag::CoopTaskrun][..], false),
        (&[RingFlag::SingleIssuer, RingFlag::DeferTaskrun][..], false),
        (&[][..], false),
    ];
    if !quick {
        candidates.push((&[RingFlag::SingleIssuer][..], true));
        candidates.push((&[][..], true));
    }
    let flag_sets: Vec<(&[RingFlag], bool)> = candidates
        .into_iter()
        .filter(|&(f, sqpoll)| {
            let mut all = f.to_vec();
            if sqpoll {
                all.push(RingFlag::Sqpoll);
            }
            probe.uring_setup(&all).is_ok()
        })
        .collect();
    let mut out = vec![base.clone()];
    for &w in &workers {
        for &e in entries {
            for &(f, sqpoll) in &flag_sets {
                let v = Variant {
                    workers: w,
                    ring_entries: e,
                    flags: flag_names(f),
                    sqpoll_idle: sqpoll.then(|| SQPOLL_IDLE.to_string()),
                };
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The configuration one variant runs with.
fn run_config(v: &Variant, cores: &[u32], listen: u16, origin: &str, admin: u16) -> String {
    let flags: Vec<String> = v.flags.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "[runtime]\nworkers = {}\ncores = [{}]\ndriver = \"io_uring\"\nring_entries = {}\n\
         ring_flags = [{}]\n{}drain_timeout = \"1s\"\ndrain_idle_grace = \"0s\"\nlog_level = \"warn\"\n\n\
         [[listener]]\nname = \"sweep\"\naddress = \"127.0.0.1:{listen}\"\n\n\
         [[route]]\nlistener = \"sweep\"\npath_prefix = \"/\"\ncluster = \"origin\"\n\n\
         [[cluster]]\nname = \"origin\"\nendpoints = [\"{origin}\"]\n\n\
         [admin]\naddress = \"127.0.0.1:{admin}\"\n",
        v.workers,
        cores.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        v.ring_entries,
        flags.join(", "),
        v.sqpoll_idle
            .as_ref()
            .map_or(String::new(), |i| format!("sqpoll_idle = \"{i}\"\n")),
    )
}

struct Bench<'a> {
    ringway: &'a Path,
    ringload: &'a Path,
    dir: &'a Path,
    origin: String,
    ringway_cores: &'a [u32],
    client_cores: &'a [u32],
    connections: u32,
    duration: Duration,
}

impl Bench<'_> {
    /// `ringload run` against ringway; ringway's CPU time over the run.
    fn load(
        &self,
        ringway: &Proc,
        url: &str,
        rate: Option<u64>,
        d: Duration,
    ) -> Result<Sample, String> {
        let mut cmd = Command::new(self.ringload);
        cmd.args(["run", "--json", "-c"])
            .arg(self.connections.to_string())
            .arg("-d")
            .arg(format!("{}ms", d.as_millis()))
            .arg("-t")
            .arg(self.client_cores.len().to_string())
            .arg("--cores")
            .arg(cpu_list(self.client_cores));
        if let Some(r) = rate {
            cmd.arg("--rate").arg(r.to_string());
        }
        cmd.arg(url);
        let before = ringway.cpu_time();
        let out = cmd.output().map_err(|e| format!("ringload run: {e}"))?;
        let after = ringway.cpu_time();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "ringload run: {e}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
        let requests = v["requests"].as_u64().unwrap_or(0);
        let cpu = match (before, after) {
            (Some(b), Some(a)) if requests > 0 => (a - b).as_secs_f64() * 1e6 / requests as f64,
            _ => f64::NAN,
        };
        Ok(Sample {
            rps: v["rps"].as_f64().unwrap_or(0.0),
            p99_us: v["latency_us"]["p99"].as_u64().unwrap_or(0),
            errors: v["errors_total"].as_u64().unwrap_or(0),
            cpu_us_per_req: cpu,
        })
    }

    /// Start ringway with `v`, warm it up, then a closed-loop run and (when
    /// `rate` is known) a fixed-rate run. Every phase ticks `progress`, the
    /// ones not reached too.
    fn measure(
        &self,
        v: &Variant,
        rate: Option<u64>,
        progress: &Progress,
    ) -> Result<(Sample, Option<Sample>), String> {
        let mut ticked = 0;
        let r = self.measure_phases(v, rate, progress, &mut ticked);
        progress.done(PHASES.saturating_sub(ticked));
        r
    }

    fn measure_phases(
        &self,
        v: &Variant,
        rate: Option<u64>,
        progress: &Progress,
        ticked: &mut u64,
    ) -> Result<(Sample, Option<Sample>), String> {
        let listen = free_port().map_err(|e| e.to_string())?;
        let admin = free_port().map_err(|e| e.to_string())?;
        let path = self.dir.join("ringway.sweep.toml");
        std::fs::write(
            &path,
            run_config(v, self.ringway_cores, listen, &self.origin, admin),
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(self.ringway);
        cmd.arg("run").arg("-c").arg(&path);
        let mut proc = Proc::start("ringway", &mut cmd, self.dir).map_err(|e| e.to_string())?;
        proc.wait_for("ringway: ready", Duration::from_secs(10))?;
        let url = format!("http://127.0.0.1:{listen}/");
        let tick = |ticked: &mut u64| {
            progress.done(1);
            *ticked += 1;
        };
        progress.phase("warm-up");
        self.load(&proc, &url, None, Duration::from_millis(500))?;
        tick(ticked);
        progress.phase("closed loop");
        let closed = self.load(&proc, &url, None, self.duration)?;
        tick(ticked);
        let fixed = match rate {
            Some(r) => {
                progress.phase(&format!("{r} req/s"));
                let f = self.load(&proc, &url, Some(r), self.duration)?;
                tick(ticked);
                Some(f)
            }
            None => None,
        };
        Ok((closed, fixed))
    }
}

/// Run the sweep; progress lines go to stderr.
pub fn sweep(opts: &Options) -> Result<Sweep, String> {
    let text = std::fs::read_to_string(&opts.config)
        .map_err(|e| format!("{}: {e}", opts.config.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", opts.config.display()))?;
    let ringway_bin = opts.ringway.clone().unwrap_or_else(|| sibling("ringway"));
    let ringload_bin = opts.ringload.clone().unwrap_or_else(|| sibling("ringload"));
    for (name, p) in [("ringway", &ringway_bin), ("ringload", &ringload_bin)] {
        if !p.exists() {
            return Err(format!(
                "{name} not found at {} (build it: cargo build -p {}; or pass --{name} PATH)",
                p.display(),
                if name == "ringway" {
                    "ringway"
                } else {
                    "ringway-loadgen"
                }
            ));
        }
    }
    let mut notes = Vec::new();
    // ringway on half of the CPUs, origin and load generator on the rest;
    // which half from the host's SMT siblings and NIC interrupts, as
    // `inspect` reads them (no rings created for this).
    let facts = crate::facts::Facts::gather(&crate::root::Root::new("/"), &crate::probe::NoProbe);
    let mut place = placement::place(&facts);
    if facts.online_cpus.is_empty() {
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        place = placement::Placement {
            ringway: (ncpu / 2..ncpu.max(1)).collect(),
            clients: (0..(ncpu / 2).max(1)).collect(),
            why: vec![
                "/sys/devices/system/cpu/online unreadable: ringway on the upper half of the CPUs"
                    .into(),
            ],
        };
    }
    let placement::Placement {
        ringway: ringway_cores,
        clients: client_cores,
        why: placement,
    } = place;
    if ringway_bin.to_string_lossy().contains("/debug/") {
        notes.push(
            "ringway is a debug build: absolute numbers are far from a release build's, \
             and the ranking may differ too"
                .into(),
        );
    }
    let base = baseline(&table, ringway_cores.len() as u32)?;
    if base.workers as usize > ringway_cores.len() {
        notes.push(format!(
            "the current workers = {} exceeds the {} core(s) given to ringway here: its workers share cores",
            base.workers,
            ringway_cores.len()
        ));
    }
    let variants = variants(&base, ringway_cores.len() as u32, opts.quick, &KernelProbe);
    if variants.iter().any(|v| v.sqpoll_idle.is_some()) {
        notes.push(format!(
            "SQPOLL variants (sqpoll_idle = \"{SQPOLL_IDLE}\"): each ring's kernel polling thread \
             belongs to ringway's process, so its CPU time (it spins while there is work, and \
             {SQPOLL_IDLE} after) is in the CPU per request; the kernel refuses coop_taskrun \
             and defer_taskrun with SQPOLL"
        ));
    } else if opts.quick {
        notes.push("--quick: no SQPOLL variants (the full sweep has them)".into());
    } else {
        notes.push("the kernel refuses SQPOLL here: no SQPOLL variants".into());
    }
    let duration = opts.duration.unwrap_or(if opts.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    });
    let reps = opts.reps.unwrap_or(if opts.quick { 2 } else { 3 }).max(1);

    let dir = std::env::temp_dir().join(format!("ringway-tune-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result: Result<(u64, Vec<Run>), String> = (|| {
        let mut cmd = Command::new(&ringload_bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--workers"])
            .arg(client_cores.len().to_string())
            .arg("--cores")
            .arg(cpu_list(&client_cores));
        let mut origin = Proc::start("origin", &mut cmd, &dir).map_err(|e| e.to_string())?;
        let line = origin.wait_for("listening on", Duration::from_secs(10))?;
        let addr = line
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let bench = Bench {
            ringway: &ringway_bin,
            ringload: &ringload_bin,
            dir: &dir,
            origin: addr,
            ringway_cores: &ringway_cores,
            client_cores: &client_cores,
            connections: opts.connections,
            duration,
        };
        let progress =
            Progress::new(reps as u64 * variants.len() as u64 + u64::from(opts.rate.is_none()));
        let rate = match opts.rate {
            Some(r) => r,
            None => {
                progress.run("calibrating the fixed rate on the current settings");
                let (closed, _) = bench
                    .measure(&variants[0], None, &progress)
                    .inspect_err(|_| progress.finish())?;
                let r = ((closed.rps / 3.0) as u64 / 100 * 100).max(100);
                notes.push(format!(
                    "fixed rate {r} req/s: a third of the closed-loop throughput of the current settings in a calibration run ({:.0} req/s)",
                    closed.rps
                ));
                r
            }
        };
        let mut runs = Vec::new();
        for rep in 0..reps as usize {
            for k in 0..variants.len() {
                // Rotated each repetition: no variant always runs first.
                let i = (k + rep) % variants.len();
                progress.run(&format!(
                    "repetition {}/{reps}, #{i} {}",
                    rep + 1,
                    variants[i].label()
                ));
                let run = match bench.measure(&variants[i], Some(rate), &progress) {
                    Ok((closed, fixed)) => Run {
                        variant: i,
                        closed: Some(closed),
                        fixed,
                        error: None,
                    },
                    Err(e) => {
                        progress.note(&format!("#{i} {}: {e}", variants[i].label()));
                        Run {
                            variant: i,
                            closed: None,
                            fixed: None,
                            error: Some(e),
                        }
                    }
                };
                runs.push(run);
            }
        }
        progress.finish();
        Ok((rate, runs))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (rate, runs) = result?;
    Ok(Sweep {
        config: opts.config.clone(),
        variants,
        baseline: 0,
        runs,
        rate,
        duration,
        reps,
        connections: opts.connections,
        ringway_cores,
        client_cores,
        ringway_bin,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        notes,
        objective: opts.objective,
        placement,
    })
}

/// Write `ringway.tuned.toml` and the report into `dir`; their paths.
pub fn write_outputs(s: &Sweep, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let v = verdict::decide(s);
    let original = std::fs::read_to_string(&s.config).map_err(|e| e.to_string())?;
    let chosen = &s.variants[v.chosen];
    let tuned = if v.chosen == s.baseline {
        format!(
            "# ringway-tune sweep: the current [runtime] settings kept (ringway-tune-sweep.md)\n{original}"
        )
    } else {
        let tuned = tuned_text(&original, chosen);
        // The result must still be TOML with the chosen values.
        let check: toml::Table = toml::from_str(&tuned).map_err(|e| format!("tuned file: {e}"))?;
        let got = baseline(&check, 0)?;
        if &got != chosen {
            return Err(format!("tuned file has {got:?}, wanted {chosen:?}"));
        }
        tuned
    };
    let tuned_path = dir.join("ringway.tuned.toml");
    let report_path = dir.join(format!("{}.md", chart::REPORT_STEM));
    std::fs::write(&tuned_path, tuned).map_err(|e| e.to_string())?;
    for (name, svg) in chart::charts(s, &v) {
        std::fs::write(dir.join(&name), svg).map_err(|e| format!("{name}: {e}"))?;
    }
    std::fs::write(&report_path, verdict::markdown(s, &v)).map_err(|e| e.to_string())?;
    Ok((tuned_path, report_path))
}
