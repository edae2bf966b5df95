//! The `ringway` command: `run`, `check`, `upgrade`, `apikey hash|new`,
//! `--version`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use ringway::config::Config;

#[derive(Parser)]
#[command(
    name = "ringway",
    version,
    about = "Thread-per-core io_uring HTTP proxy: API gateway and service-mesh proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the proxy.
    Run {
        /// Configuration file (TOML).
        #[arg(short, long, env = "RINGWAY_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file and exit (1 when it has problems).
    Check {
        #[arg(short, long, env = "RINGWAY_CONFIG")]
        config: PathBuf,
    },
    /// Zero-downtime binary upgrade of a running ringway: it starts the
    /// binary at its path again (install the new one there first), hands
    /// it the listening sockets, and drains once the new one serves.
    Upgrade {
        /// Process id of the running ringway (the one to replace).
        #[arg(long)]
        pid: u32,
        /// How long to wait for the old process to finish its drain.
        #[arg(long, default_value = "90s", value_parser = humantime_secs)]
        timeout: std::time::Duration,
    },
    /// API keys for `type = "api_key"` filters.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Print the SHA-256 (hex) of KEY, for `keys = [{ id, sha256 }]`.
    Hash {
        /// The key; read from stdin when absent (keeps it out of the shell
        /// history and the process list).
        key: Option<String>,
    },
    /// Print a fresh random key and its SHA-256.
    New,
}

/// `ringway apikey hash|new`.
fn apikey(command: ApikeyCommand) -> ExitCode {
    use ringway::pipeline::filters::api_key::{hash_key, new_key};
    match command {
        ApikeyCommand::Hash { key } => {
            let key = match key {
                Some(k) => k,
                None => {
                    let mut text = String::new();
                    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    {
                        eprintln!("error: reading the key from stdin: {e}");
                        return ExitCode::from(1);
                    }
                    // One trailing line end (`echo KEY |`) is not part of it.
                    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
                    trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
                }
            };
            if key.is_empty() {
                eprintln!("error: the key is empty");
                return ExitCode::from(1);
            }
            println!("{}", hash_key(key.as_bytes()));
            ExitCode::SUCCESS
        }
        ApikeyCommand::New => match new_key() {
            Ok(key) => {
                println!("key:    {key}");
                println!("sha256: {}", hash_key(key.as_bytes()));
                ExitCode::SUCCESS
            }
            Err(_) => {
                eprintln!("error: the system random number generator failed");
                ExitCode::from(1)
            }
        },
    }
}

/// `90s`, `2m`, `500ms`.
fn humantime_secs(s: &str) -> Result<std::time::Duration, String> {
    ringway::config::units::parse_duration(s)
}

/// `ringway upgrade --pid PID`: SIGUSR2, then wait for the old process to
/// exit (it does once its successor serves and its drain is over).
fn upgrade(pid: u32, timeout: std::time::Duration) -> ExitCode {
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    != Some("Z")
            })
            .unwrap_or(false)
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !alive() || !comm.trim().starts_with("ringway") {
        eprintln!("error: no ringway process with id {pid}");
        return ExitCode::from(1);
    }
    // SAFETY: kill(2) on a process id checked just above.
    if unsafe { libc::kill(pid as i32, libc::SIGUSR2) } != 0 {
        eprintln!(
            "error: SIGUSR2 to {pid}: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::from(1);
    }
    println!("ringway upgrade: SIGUSR2 sent to {pid}; waiting for it to hand over and drain");
    let until = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < until {
        if !alive() {
            println!("ringway upgrade: {pid} has exited; its successor serves (its log says which process)");
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("error: {pid} still runs after {timeout:?}: the upgrade failed (its stderr says why) or the drain is still going");
    ExitCode::from(1)
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("error: {e}");
        }
        eprintln!("{}: {} problem(s) found", path.display(), errors.0.len());
        ExitCode::from(1)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Apikey { command } => apikey(command),
        Command::Upgrade { pid, timeout } => upgrade(pid, timeout),
        Command::Check { config } => match load(&config) {
            Ok(c) => {
                println!(
                    "{}: OK ({} listener(s), {} route(s), {} cluster(s), {} worker(s))",
                    config.display(),
                    c.listeners.len(),
                    c.routes.len(),
                    c.clusters.len(),
                    c.runtime.workers
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { config } => {
            // A serving process fetches remote key sets; `check` does not.
            ringway::pipeline::filters::jwt::remote::allow_fetching();
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&cfg.runtime.log_level);
            match ringway::server::run(Arc::new(cfg), Some(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
