//! `ringway-bench compare`: ringway side by side with nginx, haproxy and no
//! proxy at all, on 127.0.0.1, with the same origin, load generator, cores and
//! worker count. See `bench/README.md`.

mod chart;
mod compare;
mod contenders;
mod idle;
mod load;
mod placement;
mod procs;
mod procstat;
mod report;
mod scenarios;
mod stats;
mod tls;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ringway-bench",
    version,
    about = "ringway benchmarks: side-by-side macro benchmark against nginx and haproxy"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run ringway, nginx, haproxy and direct (no proxy) side by side and
    /// write a markdown table, JSON and an SVG chart.
    Compare(CompareArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Smoke run: 1 repetition, 2 s runs, placement A, small-get-keepalive,
    /// tls-keepalive, fault-503 and h2c-streams (closed loop only); fails
    /// unless every available contender ran, every proxy kept >= 95 %
    /// success in fault-503, and the report was written.
    #[arg(long)]
    pub quick: bool,
    /// Where the report goes [default: bench/results].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A, B or both [default: both; A with --quick].
    #[arg(long)]
    pub placement: Option<String>,
    /// Cores to use: the first for the load generator side, the rest for the
    /// contender side [default: 0,1].
    #[arg(long)]
    pub cores: Option<String>,
    /// Override the load generator side (e.g. 0).
    #[arg(long)]
    pub load_cores: Option<String>,
    /// Override the contender side (e.g. 1-3).
    #[arg(long)]
    pub contender_cores: Option<String>,
    /// Repetitions per contender, order rotated each time [default: 3; 1 with --quick].
    #[arg(long)]
    pub reps: Option<usize>,
    /// Measured time of each run [default: 10s; 2s with --quick].
    #[arg(long)]
    pub duration: Option<String>,
    /// Warm-up before each measured run, discarded [default: 2s; 500ms with --quick].
    #[arg(long)]
    pub warmup: Option<String>,
    /// Fixed offered rate (req/s) of the open-loop runs [default: half of
    /// nginx's closed-loop median in the same scenario and placement].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Comma-separated scenarios, or `all` [default: every scenario but
    /// fault-503, mtls-keepalive, mtls-new-connection, h2c-streams,
    /// h2-tls-streams, conns-9900, get-1m, get-64m, post-1m and post-64m;
    /// small-get-keepalive,tls-keepalive,fault-503,h2c-streams with --quick].
    /// h2c-streams and h2-tls-streams: HTTP/2 load from h2load (10
    /// connections x 100 streams), closed loop only, no direct. get-1m,
    /// get-64m, post-1m, post-64m: 1 or 64 MiB bodies on 10 connections.
    /// conns-9900: 9,900 connections (as many as fit 20,000 descriptors).
    #[arg(long)]
    pub scenarios: Option<String>,
    /// Comma-separated contenders: ringway, nginx, haproxy, direct,
    /// ringway-mirror (ringway mirroring every request to a shadow that
    /// never answers; compared with ringway in the ratio table) and
    /// ringway-nosplice (ringway with `[limits] splice_min_bytes = 0` and `splice_min_request_bytes = 0`:
    /// splice(2) off; ringway/ringway-nosplice in the ratio table) and relay
    /// (`ringload relay`: a plain TCP relay with no HTTP work, the floor;
    /// relay/nginx and ringway/relay in the ratio table; plain HTTP/1.1
    /// scenarios with one origin only).
    #[arg(long, default_value = "ringway,nginx,haproxy,direct")]
    pub contenders: String,
    /// Worker counts to sweep, e.g. 1 or 1,2 or 1-4 (same for every contender).
    #[arg(long, default_value = "1")]
    pub workers: String,
    /// Longest wait for an idle machine before each run, seconds [default: 30; 1 with --quick].
    #[arg(long)]
    pub idle_wait: Option<f64>,
    /// A core counts as idle below this busy percentage.
    #[arg(long, default_value_t = 10.0)]
    pub idle_threshold: f64,
    /// Flag a run when other processes used more than this percentage of a core.
    #[arg(long, default_value_t = 5.0)]
    pub interference_limit: f64,
    /// Never apt-get install nginx/haproxy/wrk (missing ones are skipped).
    #[arg(long)]
    pub no_install: bool,
    /// Skip the wrk cross-check.
    #[arg(long)]
    pub no_wrk: bool,
    /// Directory with the ringway and ringload binaries [default: target/release].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Run `cargo build --release -p ringway -p ringway-loadgen` first even when
    /// the binaries exist.
    #[arg(long)]
    pub build: bool,
    /// Keep the run directory (configs, logs, raw ringload JSON).
    #[arg(long)]
    pub keep_run_dir: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    procs::install_cleanup_handlers();
    let r = match cli.cmd {
        Cmd::Compare(a) => compare::run(a),
    };
    procs::kill_all();
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringway-bench: error: {e}");
            ExitCode::from(1)
        }
    }
}
