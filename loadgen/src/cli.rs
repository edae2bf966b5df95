//! Command line: `ringload run URL ...`, `ringload serve ...` and
//! `ringload relay ...` (its flags live in `relay.rs`).
//!
//! clap parses the flags; `RunArgs::validate` and `ServeArgs::validate` turn
//! them into the plain configurations the rest of the program uses, with a
//! one-line message for anything that does not make sense together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::runtime::DriverChoice;
use crate::units::{parse_cores, parse_duration, parse_size};
use crate::url::Target;

#[derive(Debug, Parser)]
#[command(
    name = "ringload",
    version,
    about = "Thread-per-core io_uring HTTP load generator and benchmark origin",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send load to URL and report throughput, latency, status codes and errors.
    Run(RunArgs),
    /// Run a fast multi-core HTTP origin for tests and benchmarks.
    Serve(ServeArgs),
    /// Relay TCP connections to one upstream, doing nothing else: the floor a proxy's cost is read against.
    Relay(crate::relay::RelayArgs),
}

/// A list of CPU cores: `0,2,4-7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(pub Vec<usize>);

pub(crate) fn core_list(text: &str) -> Result<CoreList, String> {
    parse_cores(text).map(CoreList)
}

pub(crate) fn size(text: &str) -> Result<u64, String> {
    parse_size(text)
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Target: http://HOST[:PORT]/PATH or https://...
    pub url: String,
    /// Open connections (shared out over the workers).
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,
    /// Worker threads, each pinned to a core with its own runtime [default: one per core].
    #[arg(short = 't', long = "threads", visible_alias = "workers")]
    pub threads: Option<usize>,
    /// Test duration, e.g. 10s, 1m [default: 10s unless -n is given].
    #[arg(short = 'd', long, value_parser = duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Total requests (closed loop); split exactly over the workers.
    #[arg(short = 'n', long = "requests")]
    pub requests: Option<u64>,
    /// Send load for this long before measuring.
    #[arg(long, value_parser = duration)]
    pub warmup: Option<Duration>,
    /// Open loop: total requests per second, spread evenly over time; latency
    /// is measured from each request's intended send time. Needs -d.
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// Requests in flight per connection (HTTP/1.1 pipelining).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Extra request header "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from a file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// A new connection for every request (sends `Connection: close`).
    #[arg(long)]
    pub no_keepalive: bool,
    /// Per-request timeout (connect, and send until the full response).
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub timeout: Duration,
    /// CA certificates (PEM) to verify an https:// target with.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// Accept any server certificate (https:// only; for tests).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Never resume TLS sessions: every connection makes a full handshake
    /// (by default tickets and session ids the server gives are used).
    #[arg(long)]
    pub no_tls_resumption: bool,
    /// Client certificate chain (PEM) to present when the server asks for
    /// one (mutual TLS); needs --client-key and an https:// URL.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Print one JSON document instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Write an HdrHistogram interval log (1 s intervals, values in microseconds).
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// Cores to pin the workers to, e.g. 0,2-3 [default: worker i on core i].
    #[arg(long, value_parser = core_list)]
    pub cores: Option<CoreList>,
    /// I/O driver.
    #[arg(long, value_enum, default_value_t = DriverChoice::Auto)]
    pub driver: DriverChoice,
    /// io_uring submission queue entries per worker.
    #[arg(long, default_value_t = 1024, hide = true)]
    pub ring_entries: u32,
}

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

#[derive(Debug, Clone)]
pub enum TlsTrust {
    CaFile(PathBuf),
    Insecure,
}

/// A validated `run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub url: String,
    pub target: Target,
    pub connections: usize,
    pub workers: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub rate: Option<f64>,
    pub pipeline: usize,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub keepalive: bool,
    pub timeout: Duration,
    pub tls: Option<TlsTrust>,
    /// Resume TLS sessions (default true).
    pub tls_resumption: bool,
    /// Client certificate chain and key files (mutual TLS).
    pub client_identity: Option<(PathBuf, PathBuf)>,
    pub json: bool,
    pub hdr_log: Option<PathBuf>,
    pub cores: Option<Vec<usize>>,
    pub driver: DriverChoice,
    pub ring_entries: u32,
}

impl RunConfig {
    pub fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parse `Name: value`.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("invalid header '{text}' (expected 'Name: value')"))?;
    let name = name.trim();
    if !is_token(name) {
        return Err(format!("invalid header name in '{text}'"));
    }
    let value = value.trim();
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("invalid header value in '{text}'"));
    }
    Ok((name.to_string(), value.to_string()))
}

pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl RunArgs {
    pub fn validate(self) -> Result<RunConfig, String> {
        let target = Target::parse(&self.url)?;
        if self.connections == 0 {
            return Err("-c/--connections must be at least 1".into());
        }
        let workers = self.threads.unwrap_or_else(default_workers);
        if workers == 0 {
            return Err("-t/--threads must be at least 1".into());
        }
        let workers = workers.min(self.connections);
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if self.pipeline > 1024 {
            return Err("--pipeline must be at most 1024".into());
        }
        if self.pipeline > 1 && self.no_keepalive {
            return Err("--pipeline needs keep-alive (drop --no-keepalive)".into());
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err("--rate must be a positive number of requests per second".into());
            }
            if self.duration.is_none() {
                return Err(
                    "--rate needs -d/--duration: an open-loop run is timed, not counted".into(),
                );
            }
        }
        let stop = match (self.duration, self.requests) {
            (_, Some(0)) => return Err("-n/--requests must be at least 1".into()),
            (_, Some(n)) => Stop::Requests(n),
            (Some(d), None) if d.is_zero() => {
                return Err("-d/--duration must be longer than 0".into())
            }
            (Some(d), None) => Stop::After(d),
            (None, None) => Stop::After(Duration::from_secs(10)),
        };
        if self.timeout.is_zero() {
            return Err("--timeout must be longer than 0".into());
        }
        if !is_token(&self.method) {
            return Err(format!("invalid method '{}'", self.method));
        }
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let body = match (self.body, &self.body_file) {
            (Some(b), _) => Some(b.into_bytes()),
            (None, Some(path)) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("cannot read --body-file {}: {e}", path.display()))?,
            ),
            (None, None) => None,
        };
        let tls = match (&self.cacert, self.insecure, target.tls) {
            (Some(_), _, false) | (None, true, false) => {
                return Err("--cacert/--insecure need an https:// URL".into())
            }
            (Some(ca), _, true) => Some(TlsTrust::CaFile(ca.clone())),
            (None, true, true) => Some(TlsTrust::Insecure),
            (None, false, true) => {
                return Err(
                    "an https:// URL needs --cacert FILE (trusted CA, PEM) or --insecure".into(),
                )
            }
            (None, false, false) => None,
        };
        let client_identity = self.client_cert.zip(self.client_key);
        if client_identity.is_some() && tls.is_none() {
            return Err("--client-cert/--client-key need an https:// URL".into());
        }
        if let Some(cores) = &self.cores {
            check_cores(&cores.0)?;
        }
        Ok(RunConfig {
            url: self.url,
            target,
            connections: self.connections,
            workers,
            stop,
            warmup: self.warmup.unwrap_or_default(),
            rate: self.rate,
            pipeline: self.pipeline,
            method: self.method,
            headers,
            body,
            keepalive: !self.no_keepalive,
            timeout: self.timeout,
            tls,
            tls_resumption: !self.no_tls_resumption,
            client_identity,
            json: self.json,
            hdr_log: self.hdr_log,
            cores: self.cores.map(|c| c.0),
            driver: self.driver,
            ring_entries: self.ring_entries.clamp(8, 32768),
        })
    }
}

fn check_cores(cores: &[usize]) -> Result<(), String> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if allowed.is_empty() {
        return Ok(()); // cannot tell; pinning is best effort
    }
    if let Some(bad) = cores.iter().find(|c| !allowed.contains(c)) {
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        return Err(format!(
            "--cores: core {bad} is not available to this process (available: {})",
            list.join(",")
        ));
    }
    Ok(())
}

/// How `--delay` is drawn per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DelayDist {
    /// Exactly `--delay`.
    Fixed,
    /// Uniform over [0, 2 x delay] (mean = delay).
    Uniform,
    /// Exponential with mean = delay (capped at 20 x delay).
    Exponential,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(short = 'l', long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Worker threads, one SO_REUSEPORT socket each [default: one per core].
    #[arg(short = 't', long = "workers", visible_alias = "threads")]
    pub workers: Option<usize>,
    /// Cores to pin the workers to, e.g. 1 or 0,2-3.
    #[arg(long, value_parser = core_list)]
    pub cores: Option<CoreList>,
    /// Response body size, e.g. 13, 4k, 1m.
    #[arg(long, value_parser = size, default_value = "13")]
    pub body_size: u64,
    /// Response status code.
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// Send bodies with Transfer-Encoding: chunked.
    #[arg(long)]
    pub chunked: bool,
    /// Extra response header "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Delay before each response.
    #[arg(long, value_parser = duration)]
    pub delay: Option<Duration>,
    /// How the delay is drawn (uniform and exponential have mean --delay).
    #[arg(long, value_enum, default_value_t = DelayDist::Fixed, requires = "delay")]
    pub delay_dist: DelayDist,
    /// Echo the request body back (and the request headers named by --echo-header).
    #[arg(long)]
    pub echo: bool,
    /// Request header to copy into the echoed response (repeatable) [default: content-type].
    #[arg(long = "echo-header", value_name = "NAME", requires = "echo")]
    pub echo_headers: Vec<String>,
    /// Fault: answer N requests on a connection, the last with `Connection: close`, then close it.
    #[arg(long, value_name = "N")]
    pub close_after: Option<u64>,
    /// Fault: reset (TCP RST, no response) this fraction of connections at their first request.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub reset_fraction: f64,
    /// Fault: answer this fraction of requests with --fail-status (drawn per request).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub fail_fraction: f64,
    /// Status of the failed answers of --fail-fraction.
    #[arg(long, value_name = "STATUS", default_value_t = 503)]
    pub fail_status: u16,
    /// Fault: stall the whole server for this long, once (see --stall-after).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub stall: Option<Duration>,
    /// Fault: start the stall after this many requests (counted over all workers).
    #[arg(long, value_name = "N", requires = "stall")]
    pub stall_after: Option<u64>,
    /// Fault: accept connections and read requests, never answer (a stalled
    /// server, e.g. a mirroring shadow that hangs).
    #[arg(long, conflicts_with_all = ["stall", "slow_body", "delay", "reset_fraction", "fail_fraction", "close_after", "echo"])]
    pub hang: bool,
    /// Fault: send response bodies slowly, pausing this long between pieces.
    #[arg(long, value_parser = duration, value_name = "PAUSE")]
    pub slow_body: Option<Duration>,
    /// Piece size for --slow-body.
    #[arg(long, value_parser = size, default_value = "16", requires = "slow_body")]
    pub slow_chunk: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// I/O driver.
    #[arg(long, value_enum, default_value_t = DriverChoice::Auto)]
    pub driver: DriverChoice,
    /// io_uring submission queue entries per worker.
    #[arg(long, default_value_t = 1024, hide = true)]
    pub ring_entries: u32,
}

/// A validated `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    pub cores: Option<Vec<usize>>,
    pub body_size: usize,
    pub status: u16,
    pub chunked: bool,
    pub headers: Vec<(String, String)>,
    pub delay: Option<(Duration, DelayDist)>,
    pub echo: bool,
    pub echo_headers: Vec<String>,
    pub close_after: Option<u64>,
    pub reset_fraction: f64,
    /// Fraction of requests answered with `fail_status`.
    pub fail_fraction: f64,
    pub fail_status: u16,
    pub stall: Option<(u64, Duration)>,
    /// Read requests, never answer.
    pub hang: bool,
    pub slow_body: Option<(Duration, usize)>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub driver: DriverChoice,
    pub ring_entries: u32,
}

impl ServeArgs {
    pub fn validate(self) -> Result<ServeConfig, String> {
        let workers = self.workers.unwrap_or_else(default_workers);
        if workers == 0 {
            return Err("-t/--workers must be at least 1".into());
        }
        if !(200..=999).contains(&self.status) {
            return Err("--status must be 200-999 (interim 1xx responses are not final)".into());
        }
        if self.body_size > (1 << 30) {
            return Err("--body-size must be at most 1g".into());
        }
        if !(0.0..=1.0).contains(&self.reset_fraction) {
            return Err("--reset-fraction must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&self.fail_fraction) {
            return Err("--fail-fraction must be between 0 and 1".into());
        }
        if !(200..=999).contains(&self.fail_status) {
            return Err("--fail-status must be 200-999".into());
        }
        if self.close_after == Some(0) {
            return Err("--close-after must be at least 1".into());
        }
        if self.slow_chunk == 0 {
            return Err("--slow-chunk must be at least 1".into());
        }
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let mut echo_headers = self
            .echo_headers
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect::<Vec<_>>();
        if let Some(bad) = echo_headers.iter().find(|h| !is_token(h)) {
            return Err(format!("invalid --echo-header name '{bad}'"));
        }
        if let Some(bad) = echo_headers.iter().find(|h| {
            matches!(
                h.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            )
        }) {
            return Err(format!(
                "--echo-header {bad}: framing headers are set by serve itself"
            ));
        }
        if echo_headers.is_empty() {
            echo_headers.push("content-type".into());
        }
        if let Some(cores) = &self.cores {
            check_cores(&cores.0)?;
        }
        Ok(ServeConfig {
            listen: self.listen,
            workers,
            cores: self.cores.map(|c| c.0),
            body_size: self.body_size as usize,
            status: self.status,
            chunked: self.chunked,
            headers,
            delay: self.delay.map(|d| (d, self.delay_dist)),
            echo: self.echo,
            echo_headers,
            close_after: self.close_after,
            reset_fraction: self.reset_fraction,
            fail_fraction: self.fail_fraction,
            fail_status: self.fail_status,
            stall: self.stall.map(|d| (self.stall_after.unwrap_or(0), d)),
            hang: self.hang,
            slow_body: self
                .slow_body
                .map(|d| (d, self.slow_chunk.min(1 << 20) as usize)),
            tls: self.tls_cert.zip(self.tls_key),
            driver: self.driver,
            ring_entries: self.ring_entries.clamp(8, 32768),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<RunConfig, String> {
        let mut full = vec!["ringload", "run"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Run(r) => r.validate(),
            _ => unreachable!(),
        }
    }

    fn serve(args: &[&str]) -> Result<ServeConfig, String> {
        let mut full = vec!["ringload", "serve"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Serve(s) => s.validate(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn run_defaults() {
        let c = run(&["http://127.0.0.1:1/"]).unwrap();
        assert_eq!(c.connections, 10);
        assert_eq!(c.stop, Stop::After(Duration::from_secs(10)));
        assert!(c.keepalive);
        assert_eq!(c.pipeline, 1);
        assert!(c.workers >= 1 && c.workers <= 10);
        assert!(c.tls.is_none());
    }

    #[test]
    fn workers_never_exceed_connections() {
        let c = run(&["http://h/", "-c", "2", "-t", "8"]).unwrap();
        assert_eq!(c.workers, 2);
    }

    #[test]
    fn run_rejections() {
        for (args, needle) in [
            (vec!["h:80"], "invalid URL"),
            (vec!["http://h/", "-c", "0"], "connections"),
            (vec!["http://h/", "-t", "0"], "threads"),
            (vec!["http://h/", "--rate", "100"], "--rate needs"),
            (
                vec!["http://h/", "--rate", "100", "-n", "5"],
                "--rate needs",
            ),
            (vec!["http://h/", "--rate", "0", "-d", "1s"], "--rate must"),
            (vec!["http://h/", "-n", "0"], "requests"),
            (vec!["http://h/", "-d", "0s"], "duration"),
            (vec!["http://h/", "--pipeline", "0"], "pipeline"),
            (
                vec!["http://h/", "--pipeline", "2", "--no-keepalive"],
                "keep-alive",
            ),
            (vec!["http://h/", "-H", "nocolon"], "invalid header"),
            (vec!["http://h/", "-m", "GE T"], "invalid method"),
            (vec!["https://h/"], "--cacert"),
            (vec!["http://h/", "--insecure"], "https://"),
            (vec!["http://h/", "--timeout", "0s"], "timeout"),
        ] {
            let err = run(&args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn run_body_and_headers() {
        let c = run(&[
            "http://h/",
            "-m",
            "POST",
            "-H",
            "X-A: 1",
            "-H",
            "x-b:two words ",
            "--body",
            "hello",
            "--no-keepalive",
            "-n",
            "5",
        ])
        .unwrap();
        assert_eq!(c.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            c.headers,
            vec![
                ("X-A".to_string(), "1".to_string()),
                ("x-b".to_string(), "two words".to_string())
            ]
        );
        assert!(!c.keepalive);
        assert_eq!(c.stop, Stop::Requests(5));
    }

    #[test]
    fn run_client_certificate() {
        let c = run(&[
            "https://localhost:1/",
            "--cacert",
            "/ca.pem",
            "--client-cert",
            "/c.pem",
            "--client-key",
            "/k.pem",
        ])
        .unwrap();
        assert_eq!(
            c.client_identity,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
        let c = run(&["https://h/", "-k"]).unwrap();
        assert!(c.client_identity.is_none());
        // Both files, and only for https://.
        assert!(run(&["https://h/", "-k", "--client-cert", "/c.pem"]).is_err());
        assert!(run(&["https://h/", "-k", "--client-key", "/k.pem"]).is_err());
        let err = run(&[
            "http://h/",
            "--client-cert",
            "/c.pem",
            "--client-key",
            "/k.pem",
        ])
        .unwrap_err();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn serve_hang() {
        assert!(!serve(&[]).unwrap().hang);
        assert!(serve(&["--hang"]).unwrap().hang);
        assert!(serve(&["--hang", "--fail-fraction", "0.5"]).is_err());
        assert!(serve(&["--hang", "--stall", "1s"]).is_err());
    }

    #[test]
    fn serve_defaults_and_rejections() {
        let s = serve(&["--listen", "127.0.0.1:0", "-t", "1"]).unwrap();
        assert_eq!(s.workers, 1);
        assert_eq!(s.status, 200);
        assert_eq!(s.echo_headers, vec!["content-type".to_string()]);
        assert!(serve(&["--status", "100"]).is_err());
        assert!(serve(&["--reset-fraction", "1.5"]).is_err());
        assert!(serve(&["--fail-fraction", "-0.1"]).is_err());
        assert!(serve(&["--fail-fraction", "0.5", "--fail-status", "99"]).is_err());
        let s = serve(&["--fail-fraction", "0.5"]).unwrap();
        assert_eq!((s.fail_fraction, s.fail_status), (0.5, 503));
        assert!(serve(&["--close-after", "0"]).is_err());
        assert!(serve(&["--stall-after", "5"]).is_err());
        let s = serve(&["--stall", "1s", "--stall-after", "7"]).unwrap();
        assert_eq!(s.stall, Some((7, Duration::from_secs(1))));
    }
}
