//! The `ringway` command: `run`, `check`, `apikey hash|new`, `--version`.

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
