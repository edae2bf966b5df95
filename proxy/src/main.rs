//! The `ringway` command: `run`, `check`, `upgrade`, `apikey hash|new`,
//! `cert ca init|issue|inspect`, `--version`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use ringway::config::Config;

/// mimalloc: thread-local heaps (a worker never contends with another for
/// the allocator), measured ≈ 14 % less CPU per HTTP/2 request than glibc's
/// malloc (bench/README.md, HTTP/2 fifth run); called through plain
/// `mi_malloc` for ordinary alignments (`runtime::alloc`). The
/// `system-alloc` feature leaves glibc's malloc in place, for heap
/// profilers that intercept it (valgrind's DHAT; `bench/heap-profile.sh`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: ringway::runtime::alloc::Allocator = ringway::runtime::alloc::Allocator;

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
    /// Mesh certificates with SPIFFE IDs: a CA, workload certificates,
    /// inspection.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// The mesh certificate authority.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Issue a workload certificate (EC P-256) for a SPIFFE ID, signed by
    /// the CA. A ttl beyond the CA's expiry is refused.
    Issue {
        /// Directory holding ca.pem and ca-key.pem (from `cert ca init`).
        #[arg(long, conflicts_with_all = ["ca", "ca_key"], required_unless_present_all = ["ca", "ca_key"])]
        ca_dir: Option<PathBuf>,
        /// The CA certificate (instead of --ca-dir).
        #[arg(long, requires = "ca_key")]
        ca: Option<PathBuf>,
        /// The CA private key (instead of --ca-dir).
        #[arg(long, requires = "ca")]
        ca_key: Option<PathBuf>,
        /// spiffe://TRUST-DOMAIN/PATH; the trust domain must be the CA's.
        #[arg(long)]
        spiffe_id: String,
        /// A DNS name SAN (repeatable).
        #[arg(long)]
        dns: Vec<String>,
        /// An IP address SAN (repeatable).
        #[arg(long)]
        ip: Vec<std::net::IpAddr>,
        /// Validity from now (`24h`, `90m`).
        #[arg(long, default_value = "24h", value_parser = humantime_secs)]
        ttl: std::time::Duration,
        /// Certificate file [default: LAST-PATH-SEGMENT.pem].
        #[arg(long)]
        out_cert: Option<PathBuf>,
        /// Private key file, mode 0600 [default: LAST-PATH-SEGMENT-key.pem].
        #[arg(long)]
        out_key: Option<PathBuf>,
        /// Write the CA certificate after the leaf in the certificate file.
        #[arg(long)]
        chain: bool,
        /// Server use only (extended key usage serverAuth).
        #[arg(long, conflicts_with = "client")]
        server: bool,
        /// Client use only (extended key usage clientAuth).
        #[arg(long)]
        client: bool,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Show each certificate in a PEM file and check its chain; exit 1 when
    /// a check fails.
    Inspect {
        /// PEM file with one or more certificates, leaf first.
        file: PathBuf,
        /// CA certificate(s) to check the chain against.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a CA (EC P-256): DIR/ca.pem and DIR/ca-key.pem (mode 0600).
    Init {
        /// The trust domain, e.g. example.org.
        #[arg(long)]
        trust_domain: String,
        /// Directory to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Validity from now.
        #[arg(long, default_value = "8760h", value_parser = humantime_secs)]
        ttl: std::time::Duration,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

/// `ringway cert ...`.
fn cert(command: CertCommand) -> ExitCode {
    use ringway::cert;
    let result = match command {
        CertCommand::Ca {
            command:
                CaCommand::Init {
                    trust_domain,
                    out,
                    ttl,
                    force,
                },
        } => cert::ca::init(&out, &trust_domain, ttl, force).map(|(c, k, ca)| {
            println!("CA for trust domain {trust_domain}");
            println!("  certificate: {}", c.display());
            println!("  key:         {} (mode 0600)", k.display());
            println!("  serial:      {}", ca.serial);
            println!("  not after:   {}", cert::format_time(ca.not_after));
            ExitCode::SUCCESS
        }),
        CertCommand::Issue {
            ca_dir,
            ca,
            ca_key,
            spiffe_id,
            dns,
            ip,
            ttl,
            out_cert,
            out_key,
            chain,
            server,
            client,
            force,
        } => {
            let usage = match (server, client) {
                (true, false) => cert::issue::Usage::Server,
                (false, true) => cert::issue::Usage::Client,
                _ => cert::issue::Usage::Both,
            };
            let (ca_cert, ca_key) = match ca_dir {
                Some(d) => (
                    d.join(cert::ca::CA_CERT_FILE),
                    d.join(cert::ca::CA_KEY_FILE),
                ),
                None => (ca.unwrap_or_default(), ca_key.unwrap_or_default()),
            };
            let request = cert::issue::IssueRequest {
                spiffe_id,
                dns,
                ips: ip,
                ttl,
                usage,
            };
            issue_files(&ca_cert, &ca_key, &request, out_cert, out_key, chain, force)
        }
        CertCommand::Inspect { file, ca, json } => inspect_file(&file, ca.as_deref(), json),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })
}

/// `cert issue`: prints what was written.
fn issue_files(
    ca_cert: &Path,
    ca_key: &Path,
    request: &ringway::cert::issue::IssueRequest,
    out_cert: Option<PathBuf>,
    out_key: Option<PathBuf>,
    chain: bool,
    force: bool,
) -> Result<ExitCode, String> {
    use ringway::cert;
    let out = cert::issue::OutFiles {
        cert: out_cert,
        key: out_key,
        chain,
        force,
    };
    let (issued, cert_path, key_path) = cert::issue::issue_files(ca_cert, ca_key, request, &out)?;
    println!("SPIFFE ID:   {}", issued.spiffe_id);
    println!("serial:      {}", issued.serial);
    println!(
        "validity:    {} .. {}",
        cert::format_time(issued.not_before),
        cert::format_time(issued.not_after)
    );
    println!(
        "certificate: {}{}",
        cert_path.display(),
        if chain {
            " (leaf, then the CA)"
        } else {
            " (leaf only)"
        }
    );
    println!("key:         {} (mode 0600)", key_path.display());
    Ok(ExitCode::SUCCESS)
}

/// `cert inspect FILE [--ca CA] [--json]`: exit 1 when a check fails.
fn inspect_file(file: &Path, ca: Option<&Path>, json: bool) -> Result<ExitCode, String> {
    use ringway::cert;
    let report = cert::inspect::inspect_files(file, ca)?;
    let text = if json {
        let mut t = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        t.push('\n');
        t
    } else {
        cert::inspect::render(&report)
    };
    // Not print!: a closed pipe (`| head`) is not a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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

/// No transparent huge pages for this process: mimalloc's arenas are
/// 2 MiB-aligned and mimalloc asks for huge pages on them
/// (`MADV_HUGEPAGE`), so on a host with THP `always` or `madvise` the
/// memory a worker touches is backed by 2 MiB pages: measured at 20,000
/// req/s, 50 connections: 29.7 MiB RSS with them, 19.5 without (glibc
/// malloc: 12); 1,000 connections: 74 MiB with them, 44 without (glibc:
/// 45). Set from a constructor that runs before mimalloc's and before the
/// first allocation: set in `main`, it came after mimalloc had reserved its
/// first arena, and the two 2 MiB pages faulted by then stayed (4 MiB of a
/// 14.5 MiB RSS under load; 11.0 MiB when set before). Refused only by
/// kernels older than 3.15; then nothing changes. Checked by the
/// integration test `idle_memory::no_transparent_huge_pages`.
extern "C" fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Prioritised `.init_array` entries run before the unprioritised ones,
/// mimalloc's `mi_process_load` among them.
#[used]
#[link_section = ".init_array.00101"]
static DISABLE_THP_FIRST: extern "C" fn() = disable_transparent_huge_pages;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Apikey { command } => apikey(command),
        Command::Cert { command } => cert(command),
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
