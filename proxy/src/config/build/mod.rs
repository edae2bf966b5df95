//! `FileConfig` → typed `Config`.
//!
//! [`Config::load`] reads a file, [`Config::parse`] parses text (syntax errors,
//! then section-by-section deserialisation, see [`super::source`]) and
//! [`Config::build`] checks values, resolves names to indices, parses
//! addresses and durations and loads TLS material. Every step keeps going
//! after a problem; all problems come back together, in line order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::FileConfig;
use super::source::{Skipped, SourceMap};
use super::units::{DurationValue, SizeValue};
use super::*;

mod clusters;
mod etcd;
mod listeners;
mod observability;
mod routes;
mod runtime;

pub use clusters::resolve_endpoint;
pub use routes::parse_host;

/// Defaults, as documented in `docs/config.md`.
pub mod defaults {
    use std::time::Duration;

    pub const RING_ENTRIES: u32 = 1024;
    pub const MAX_CONNECTIONS_PER_WORKER: usize = 10_000;
    /// The kernel's largest completion queue (`IORING_MAX_CQ_ENTRIES`).
    pub const MAX_CQ_ENTRIES: u32 = 65_536;

    /// Default completion queue size: two completions per connection (a
    /// busy connection has its downstream and its upstream operation in
    /// flight), at least twice `ring_entries` (the kernel's own default),
    /// rounded up to a power of two, at most 65536. A burst larger than
    /// the queue waits on the kernel's overflow list, which costs an
    /// allocation and a list walk per completion: at 9,900 connections
    /// with the kernel's default 2,048, 6 completions per request went
    /// that way.
    pub fn cq_entries(ring_entries: u32, max_connections_per_worker: usize) -> u32 {
        let want = (max_connections_per_worker as u64)
            .saturating_mul(2)
            .max(2 * ring_entries as u64)
            .min(MAX_CQ_ENTRIES as u64);
        // At most 65536 already, so its next power of two is too.
        (want as u32).next_power_of_two()
    }
    pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);
    pub const LOG_LEVEL: &str = "info";
    pub const MAX_HEAD_BYTES: usize = 64 * 1024;
    pub const MIN_HEAD_BYTES: usize = 1024;
    pub const MAX_MAX_HEAD_BYTES: usize = 1024 * 1024;
    pub const MAX_HEADERS: usize = 100;
    pub const MAX_MAX_HEADERS: usize = 1000;
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const REQUEST_BUFFER_BYTES: usize = 64 * 1024;
    pub const MAX_REQUEST_BUFFER_BYTES: usize = 1024 * 1024;
    pub const SPLICE_MIN_BYTES: u64 = 256 * 1024;
    pub const SPLICE_MIN_REQUEST_BYTES: u64 = 2 * 1024 * 1024;
    pub const MIN_SPLICE_MIN_BYTES: u64 = 64 * 1024;
    pub const PATH_PREFIX: &str = "/";
    pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(30);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    pub const CLUSTER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_IDLE_PER_ENDPOINT: usize = 64;
    pub const ADMIN_ADDRESS: &str = "127.0.0.1:9901";
    pub const HISTOGRAM_SIGFIG: u8 = 3;
    pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
    pub const MIN_PUBLISH_INTERVAL: Duration = Duration::from_millis(10);
    pub const ACCESS_LOG_BUFFER: usize = 64 * 1024;
    pub const MIN_ACCESS_LOG_BUFFER: usize = 4 * 1024;
    pub const MAX_ACCESS_LOG_BUFFER: usize = 16 * 1024 * 1024;
    pub const ACCESS_LOG_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
}

/// The dimensions `stats.histograms` may name.
pub const HISTOGRAM_DIMENSIONS: [&str; 4] = ["listener", "route", "cluster", "endpoint"];

/// Everything `build` needs besides the file contents.
#[derive(Default)]
pub struct BuildContext<'a> {
    /// Directory that relative TLS file paths are resolved against (the
    /// config file's directory); `None` = the current directory.
    pub base_dir: Option<PathBuf>,
    /// Stored as [`Config::source`].
    pub source: Option<PathBuf>,
    /// The parsed text, to put line numbers on errors.
    pub source_map: Option<&'a SourceMap<'a>>,
    /// Elements that failed to deserialise (placeholders in the file).
    pub skipped: Skipped,
    /// Online CPU count for `runtime.cores` checks; `None` = ask the OS.
    pub online_cpus: Option<usize>,
}

impl Config {
    /// Read, parse and build the file at `path` (TLS files relative to it).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let msg = e.to_string();
            let msg = match msg.find(" (os error") {
                Some(i) => msg[..i].to_owned(),
                None => msg,
            };
            ConfigErrors::one(ConfigError::new(
                path.display().to_string(),
                format!("cannot read config file: {msg}"),
            ))
        })?;
        Config::parse(&text, Some(path))
    }

    /// Parse and build config text. `path` (the file the text came from, if
    /// any) is stored in [`Config::source`] and its directory is the base for
    /// relative TLS file paths.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let map = SourceMap::parse(text)?;
        let de = map.file_config();
        let ctx = BuildContext {
            base_dir: path.map(|p| p.parent().unwrap_or(Path::new("")).to_path_buf()),
            source: path.map(Path::to_path_buf),
            source_map: Some(&map),
            skipped: de.skipped,
            online_cpus: None,
        };
        let built = Config::build(de.file, &ctx);
        let mut errors = ConfigErrors(de.errors);
        match built {
            Ok(config) if errors.is_empty() => Ok(config),
            Ok(_) => {
                errors.sort();
                Err(errors)
            }
            Err(more) => {
                errors.0.extend(more.0);
                errors.sort();
                Err(errors)
            }
        }
    }

    /// Check and convert a deserialised file. Reports every problem found.
    pub fn build(file: FileConfig, ctx: &BuildContext<'_>) -> Result<Config, ConfigErrors> {
        let mut b = Builder {
            errors: Vec::new(),
            map: ctx.source_map,
            base_dir: ctx.base_dir.clone().unwrap_or_default(),
        };
        let online = ctx.online_cpus.unwrap_or_else(online_cpus);
        let runtime = b.runtime(&file.runtime, online);
        let limits = b.limits(&file.limits);
        let listeners = b.listeners(&file.listener, &ctx.skipped);
        // `Some(None)`: an `[etcd]` that is wrong (reported).
        let etcd = match &file.etcd {
            Some(e) => Some(b.etcd(e)),
            None if ctx.skipped.section("etcd") => Some(None),
            None => None,
        };
        let clusters = b.clusters(&file.cluster, &ctx.skipped, etcd.as_ref());
        let routes = b.routes(&file, &ctx.skipped);
        let admin = file.admin.as_ref().and_then(|a| b.admin(a));
        let stats = b.stats(&file.stats);
        let access_log = file.access_log.as_ref().map(|a| b.access_log(a));
        let trace = b.tracing(&file.tracing);
        let reload = b.reload(&file.reload);

        if !b.errors.is_empty() {
            let mut errors = ConfigErrors(b.errors);
            errors.sort();
            return Err(errors);
        }
        Ok(Config {
            runtime,
            limits,
            listeners: listeners.into_iter().flatten().collect(),
            routes: routes.into_iter().flatten().collect(),
            clusters: clusters.into_iter().flatten().collect(),
            admin,
            stats,
            access_log,
            trace,
            reload,
            etcd: etcd.flatten(),
            source: ctx.source.clone(),
        })
    }
}

/// Upper bound for an explicit `runtime.workers`.
pub const MAX_WORKERS: usize = 4096;

/// Number of online CPUs (CPU ids are `0..n`).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions; it only reads system information.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

pub(super) struct Builder<'a> {
    errors: Vec<ConfigError>,
    map: Option<&'a SourceMap<'a>>,
    base_dir: PathBuf,
}

impl Builder<'_> {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let line = self.map.and_then(|m| m.line_of(&path));
        self.errors.push(ConfigError {
            path,
            line,
            message: message.into(),
        });
    }

    /// Errors from the TLS module (no lines yet).
    pub(super) fn extend(&mut self, errors: Vec<ConfigError>) {
        for e in errors {
            self.error(e.path, e.message);
        }
    }

    pub(super) fn duration(
        &mut self,
        path: &str,
        value: Option<&DurationValue>,
        default: Duration,
    ) -> Duration {
        match value.map(DurationValue::parse) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(m)) => {
                self.error(path, m);
                default
            }
        }
    }

    /// A duration that must be greater than zero.
    pub(super) fn timeout(
        &mut self,
        path: &str,
        value: Option<&DurationValue>,
        default: Duration,
    ) -> Duration {
        let d = self.duration(path, value, default);
        if d.is_zero() {
            self.error(path, "must be greater than zero");
            return default;
        }
        d
    }

    pub(super) fn size(&mut self, path: &str, value: &SizeValue) -> Option<u64> {
        match value.parse() {
            Ok(n) => Some(n),
            Err(m) => {
                self.error(path, m);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn int_in(
        &mut self,
        path: &str,
        value: Option<i64>,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        match value {
            None => default,
            Some(n) if n >= 0 && (n as u64) >= min && (n as u64) <= max => n as u64,
            Some(n) => {
                if max == u64::MAX {
                    self.error(path, format!("must be at least {min} (found {n})"));
                } else {
                    self.error(path, format!("must be between {min} and {max} (found {n})"));
                }
                default
            }
        }
    }

    pub(super) fn socket_addr(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        match text.trim().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    path,
                    format!(
                        "invalid address {text:?}: expected an IP address and port such as \"127.0.0.1:8080\", \"0.0.0.0:80\" or \"[::]:8443\""
                    ),
                );
                None
            }
        }
    }
}

/// Name → first index.
fn index_by_name<'n>(names: impl Iterator<Item = &'n str>) -> HashMap<&'n str, usize> {
    let mut map = HashMap::new();
    for (i, n) in names.enumerate() {
        map.entry(n).or_insert(i);
    }
    map
}

/// `; known: "a", "b"` for unknown-name messages.
fn known_names<'n>(names: impl Iterator<Item = &'n str>) -> String {
    let mut list: Vec<String> = Vec::new();
    for n in names.filter(|n| !n.is_empty()) {
        let quoted = format!("{n:?}");
        if !list.contains(&quoted) {
            list.push(quoted);
        }
    }
    if list.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", list.join(", "))
    }
}
