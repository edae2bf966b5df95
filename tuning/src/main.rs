//! ringway-tune: inspect a host for ringway, print or write the
//! recommended kernel settings, sweep `[runtime]` settings under load
//! (tuning/README.md).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ringway_tune::probe::{KernelProbe, NoProbe, Probe};
use ringway_tune::root::Root;
use ringway_tune::{profile, Facts};

#[derive(Parser)]
#[command(
    name = "ringway-tune",
    version,
    about = "Inspect a host for ringway; print or write its kernel settings; sweep [runtime] settings under load"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check CPUs, NUMA, NICs, io_uring, limits and sysctls; print each
    /// finding with its severity and the exact fix.
    Inspect {
        /// Read /proc and /sys under this directory instead of / (tests,
        /// a copy taken from another host).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Do not create io_uring rings or read this process's limits.
        #[arg(long)]
        no_probe: bool,
        /// Exit 1 when a finding is at least this severe.
        #[arg(long, value_parser = ["warn", "critical"])]
        fail_on: Option<String>,
    },
    /// Print the recommended sysctl settings (packaging/60-ringway.conf);
    /// with --write, write them to a file.
    Sysctl {
        /// Write the file (default /etc/sysctl.d/60-ringway.conf) instead of
        /// printing it.
        #[arg(long, num_args = 0..=1, default_missing_value = profile::DEFAULT_PATH, value_name = "PATH")]
        write: Option<PathBuf>,
        /// Compare with the kernel under this root (for the note on stderr).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Run ringway in front of `ringload serve` with several workers /
    /// ring_entries / ring_flags / sqpoll_idle, measure each with `ringload
    /// run`, write ringway.tuned.toml and a markdown report with SVG charts.
    Sweep {
        /// ringway's configuration file; its [runtime] is the starting point.
        #[arg(short = 'c', long)]
        config: PathBuf,
        /// A small sweep (for CI): 2 repetitions of 3 s per variant,
        /// ring_entries 256 and 1024, no SQPOLL variants.
        #[arg(long)]
        quick: bool,
        /// Directory for ringway.tuned.toml, ringway-tune-sweep.md and its SVG charts
        /// [default: the configuration file's directory].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The ringway binary [default: next to ringway-tune].
        #[arg(long)]
        ringway: Option<PathBuf>,
        /// The ringload binary [default: next to ringway-tune].
        #[arg(long)]
        ringload: Option<PathBuf>,
        /// Length of each measured run, e.g. 3s, 500ms [default: 3s with
        /// --quick, else 10s].
        #[arg(long, value_parser = ringway_tune::sweep::parse_duration)]
        duration: Option<std::time::Duration>,
        /// Repetitions of every variant [default: 2 with --quick, else 3].
        #[arg(long)]
        reps: Option<u32>,
        /// Fixed rate in requests/s [default: a third of the closed-loop
        /// throughput of the current settings, measured first].
        #[arg(long)]
        rate: Option<u64>,
        /// Connections of each ringload run.
        #[arg(long, default_value_t = 50)]
        connections: u32,
        /// What to optimise: `cpu` (least ringway CPU time per request at
        /// the fixed rate) or `throughput` (most closed-loop req/s among
        /// settings whose p99 at the fixed rate is within --p99-slo).
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "throughput"])]
        objective: String,
        /// The p99 latency SLO at the fixed rate for `--objective
        /// throughput`, e.g. 5ms.
        #[arg(long, value_parser = ringway_tune::sweep::parse_duration, required_if_eq("objective", "throughput"))]
        p99_slo: Option<std::time::Duration>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Inspect {
            root,
            json,
            no_probe,
            fail_on,
        } => inspect(&root, json, no_probe, fail_on.as_deref()),
        Command::Sysctl { write, root } => sysctl(write.as_deref(), &root),
        Command::Sweep {
            config,
            quick,
            out,
            ringway,
            ringload,
            duration,
            reps,
            rate,
            connections,
            objective,
            p99_slo,
        } => sweep(ringway_tune::sweep::Options {
            config,
            quick,
            out,
            ringway,
            ringload,
            duration,
            reps,
            rate,
            connections,
            objective: match (objective.as_str(), p99_slo) {
                ("throughput", Some(p99_slo)) => {
                    ringway_tune::sweep::Objective::Throughput { p99_slo }
                }
                _ => ringway_tune::sweep::Objective::Cpu,
            },
        }),
    }
}

fn sweep(opts: ringway_tune::sweep::Options) -> ExitCode {
    let dir = opts.out.clone().unwrap_or_else(|| {
        opts.config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let result = ringway_tune::sweep::sweep(&opts)
        .and_then(|s| ringway_tune::sweep::write_outputs(&s, &dir));
    match result {
        Ok((tuned, report)) => {
            eprintln!(
                "wrote {} and {} (charts: ringway-tune-sweep-{{throughput,p99,cpu}}.svg beside it)",
                tuned.display(),
                report.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringway-tune sweep: {e}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(root: &Path, json: bool, no_probe: bool, fail_on: Option<&str>) -> ExitCode {
    let probe: &dyn Probe = if no_probe { &NoProbe } else { &KernelProbe };
    let report = ringway_tune::inspect(&Root::new(root), probe);
    let out = if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("ringway-tune: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        report.text()
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    let s = report.summary;
    let failed = match fail_on {
        Some("warn") => s.warn + s.critical > 0,
        Some("critical") => s.critical > 0,
        _ => false,
    };
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn sysctl(write: Option<&Path>, root: &Path) -> ExitCode {
    let facts = Facts::gather(&Root::new(root), &NoProbe);
    let short = ringway_tune::rules::short_of_profile(&facts);
    let Some(path) = write else {
        print!("{}", profile::PROFILE);
        eprintln!(
            "# dry run: nothing written. {} of {} settings differ from the running kernel{}",
            short.len(),
            profile::settings().len(),
            if short.is_empty() { "." } else { ":" }
        );
        for (s, now) in &short {
            eprintln!(
                "#   {} (now {})",
                s.line(),
                now.as_deref().unwrap_or("absent")
            );
        }
        eprintln!("# write it with: ringway-tune sysctl --write   (then: sysctl --system)");
        return ExitCode::SUCCESS;
    };
    match write_profile(path) {
        Ok(()) => {
            eprintln!("wrote {}; apply it with: sysctl --system", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringway-tune: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Write through a temporary file in the same directory and rename, so a
/// reader never sees half a file; mode 0644 as `install -m 0644` would.
fn write_profile(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, profile::PROFILE)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
