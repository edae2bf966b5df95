//! `FileConfig` → typed `Config`.
//!
//! [`Config::load`] reads a file, [`Config::parse`] parses text (syntax errors,
//! then section-by-section deserialisation, see [`super::source`]) and
//! [`Config::build`] checks values, resolves names to indices, parses
//! addresses and durations and loads TLS material. Every step keeps going
//! after a problem; all problems come back together, in line order.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{
    AccessLogFile, AdminFile, ClusterFile, ClusterTlsFile, FileConfig, LimitsFile, ListenerFile,
    ListenerTlsFile, RuntimeFile, StatsFile, TracingFile,
};
use super::source::{Skipped, SourceMap};
use super::units::{DurationValue, IntOrText, SizeValue, WorkersValue};
use super::*;

/// Defaults, as documented in `docs/config.md`.
pub mod defaults {
    use std::time::Duration;

    pub const RING_ENTRIES: u32 = 1024;
    pub const MAX_CONNECTIONS_PER_WORKER: usize = 10_000;
    pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
    pub const LOG_LEVEL: &str = "info";
    pub const MAX_HEAD_BYTES: usize = 64 * 1024;
    pub const MIN_HEAD_BYTES: usize = 1024;
    pub const MAX_MAX_HEAD_BYTES: usize = 1024 * 1024;
    pub const MAX_HEADERS: usize = 100;
    pub const MAX_MAX_HEADERS: usize = 1000;
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
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
        let clusters = b.clusters(&file.cluster, &ctx.skipped);
        let routes = b.routes(&file, &ctx.skipped);
        let admin = file.admin.as_ref().and_then(|a| b.admin(a));
        let stats = b.stats(&file.stats);
        let access_log = file.access_log.as_ref().map(|a| b.access_log(a));
        let trace = b.tracing(&file.tracing);

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

struct Builder<'a> {
    errors: Vec<ConfigError>,
    map: Option<&'a SourceMap<'a>>,
    base_dir: PathBuf,
}

impl Builder<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let line = self.map.and_then(|m| m.line_of(&path));
        self.errors.push(ConfigError {
            path,
            line,
            message: message.into(),
        });
    }

    /// Errors from the TLS module (no lines yet).
    fn extend(&mut self, errors: Vec<ConfigError>) {
        for e in errors {
            self.error(e.path, e.message);
        }
    }

    fn duration(
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
    fn timeout(
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

    fn size(&mut self, path: &str, value: &SizeValue) -> Option<u64> {
        match value.parse() {
            Ok(n) => Some(n),
            Err(m) => {
                self.error(path, m);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    fn int_in(&mut self, path: &str, value: Option<i64>, default: u64, min: u64, max: u64) -> u64 {
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

    fn socket_addr(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
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

    fn runtime(&mut self, file: &RuntimeFile, online: usize) -> RuntimeConfig {
        let mut cores = Vec::new();
        for (i, c) in file.cores.iter().flatten().enumerate() {
            let path = format!("runtime.cores[{i}]");
            match usize::try_from(*c) {
                Ok(c) if c < online => cores.push(c),
                _ => self.error(
                    path,
                    format!(
                        "CPU {c} does not exist: this machine has {online} online CPU(s), ids 0..={}",
                        online.saturating_sub(1)
                    ),
                ),
            }
        }
        if file.cores.as_ref().is_some_and(|c| c.is_empty()) {
            self.error(
                "runtime.cores",
                "must list at least one CPU id (or be left out)",
            );
        }

        let auto_workers = || {
            if let Some(c) = &file.cores {
                if !c.is_empty() {
                    return c.len();
                }
            }
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let workers = match &file.workers {
            None => auto_workers(),
            Some(WorkersValue(IntOrText::Text(t))) if t.trim() == "auto" => auto_workers(),
            Some(WorkersValue(IntOrText::Int(n))) if (1..=MAX_WORKERS as i64).contains(n) => {
                *n as usize
            }
            Some(WorkersValue(v)) => {
                self.error(
                    "runtime.workers",
                    format!(
                        "invalid worker count {v}: expected an integer between 1 and {MAX_WORKERS} or \"auto\""
                    ),
                );
                1
            }
        };

        let driver = match file.driver.as_deref().map(str::trim) {
            None | Some("auto") => DriverKind::Auto,
            Some("io_uring") => DriverKind::IoUring,
            Some("legacy") => DriverKind::Legacy,
            Some(other) => {
                self.error(
                    "runtime.driver",
                    format!(
                        "unknown driver {other:?}: expected \"auto\", \"io_uring\" or \"legacy\""
                    ),
                );
                DriverKind::Auto
            }
        };

        let ring_entries = match file.ring_entries {
            None => defaults::RING_ENTRIES,
            Some(n) if (2..=32768).contains(&n) && (n as u64).is_power_of_two() => n as u32,
            Some(n) => {
                self.error(
                    "runtime.ring_entries",
                    format!("must be a power of two between 2 and 32768 (found {n})"),
                );
                defaults::RING_ENTRIES
            }
        };

        let sqpoll_idle = match &file.sqpoll_idle {
            None => None,
            Some(v) => match v.parse() {
                Ok(d) if d.is_zero() => {
                    self.error(
                        "runtime.sqpoll_idle",
                        "must be greater than zero (leave it out to disable SQPOLL)",
                    );
                    None
                }
                Ok(d) if d.as_millis() > u128::from(u32::MAX) => {
                    self.error("runtime.sqpoll_idle", "is too long");
                    None
                }
                Ok(d) => Some(d),
                Err(m) => {
                    self.error("runtime.sqpoll_idle", m);
                    None
                }
            },
        };

        let ring_flags = match &file.ring_flags {
            // Not DEFER_TASKRUN: same CPU per request, but under overload
            // at 1,000 connections it let some requests wait 3-5x the
            // median (docs/config.md, `ring_flags`).
            None => RingFlags {
                single_issuer: true,
                defer_taskrun: false,
                coop_taskrun: true,
            },
            Some(list) => {
                let mut flags = RingFlags::default();
                for (i, f) in list.iter().enumerate() {
                    match f.trim() {
                        "single_issuer" => flags.single_issuer = true,
                        "defer_taskrun" => flags.defer_taskrun = true,
                        "coop_taskrun" => flags.coop_taskrun = true,
                        other => self.error(
                            format!("runtime.ring_flags[{i}]"),
                            format!(
                                "unknown ring flag {other:?}: expected \"single_issuer\", \"defer_taskrun\" or \"coop_taskrun\""
                            ),
                        ),
                    }
                }
                if flags.defer_taskrun && !flags.single_issuer {
                    self.error(
                        "runtime.ring_flags",
                        "\"defer_taskrun\" requires \"single_issuer\"",
                    );
                }
                flags
            }
        };

        let max_connections_per_worker = self.int_in(
            "runtime.max_connections_per_worker",
            file.max_connections_per_worker,
            defaults::MAX_CONNECTIONS_PER_WORKER as u64,
            1,
            u64::MAX,
        ) as usize;

        let drain_timeout = self.duration(
            "runtime.drain_timeout",
            file.drain_timeout.as_ref(),
            defaults::DRAIN_TIMEOUT,
        );

        let log_level = file
            .log_level
            .clone()
            .unwrap_or_else(|| defaults::LOG_LEVEL.to_owned());
        if log_level.trim().is_empty() {
            self.error(
                "runtime.log_level",
                "must not be empty (e.g. \"info\" or \"ringway=debug,warn\")",
            );
        } else if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            self.error(
                "runtime.log_level",
                format!("invalid log filter {log_level:?}: {e} (e.g. \"info\" or \"ringway=debug,warn\")"),
            );
        }

        RuntimeConfig {
            workers,
            cores,
            driver,
            ring_entries,
            sqpoll_idle,
            ring_flags,
            max_connections_per_worker,
            drain_timeout,
            log_level,
        }
    }

    fn limits(&mut self, file: &LimitsFile) -> Limits {
        let max_head_bytes = match &file.max_head_bytes {
            None => defaults::MAX_HEAD_BYTES,
            Some(v) => match self.size("limits.max_head_bytes", v) {
                Some(n)
                    if n >= defaults::MIN_HEAD_BYTES as u64
                        && n <= defaults::MAX_MAX_HEAD_BYTES as u64 =>
                {
                    n as usize
                }
                Some(n) => {
                    self.error(
                        "limits.max_head_bytes",
                        format!(
                            "must be between 1KiB and 1MiB (found {})",
                            units::format_size(n)
                        ),
                    );
                    defaults::MAX_HEAD_BYTES
                }
                None => defaults::MAX_HEAD_BYTES,
            },
        };
        let max_headers = self.int_in(
            "limits.max_headers",
            file.max_headers,
            defaults::MAX_HEADERS as u64,
            1,
            defaults::MAX_MAX_HEADERS as u64,
        ) as usize;
        Limits {
            max_head_bytes,
            max_headers,
            header_read_timeout: self.timeout(
                "limits.header_read_timeout",
                file.header_read_timeout.as_ref(),
                defaults::HEADER_READ_TIMEOUT,
            ),
            body_read_timeout: self.timeout(
                "limits.body_read_timeout",
                file.body_read_timeout.as_ref(),
                defaults::BODY_READ_TIMEOUT,
            ),
            idle_timeout: self.timeout(
                "limits.idle_timeout",
                file.idle_timeout.as_ref(),
                defaults::IDLE_TIMEOUT,
            ),
        }
    }

    fn admin(&mut self, file: &AdminFile) -> Option<AdminConfig> {
        let (path, text) = match (&file.address, &file.listen) {
            (Some(_), Some(_)) => {
                self.error(
                    "admin.listen",
                    "`listen` is another name for `address`: set only one of them",
                );
                return None;
            }
            (Some(a), None) => ("admin.address", a.as_str()),
            (None, Some(l)) => ("admin.listen", l.as_str()),
            (None, None) => ("admin.address", defaults::ADMIN_ADDRESS),
        };
        self.socket_addr(path, text)
            .map(|address| AdminConfig { address })
    }

    fn stats(&mut self, file: &StatsFile) -> StatsConfig {
        let histogram_sigfig = self.int_in(
            "stats.histogram_sigfig",
            file.histogram_sigfig,
            defaults::HISTOGRAM_SIGFIG as u64,
            1,
            5,
        ) as u8;
        let mut publish_interval = self.duration(
            "stats.publish_interval",
            file.publish_interval.as_ref(),
            defaults::PUBLISH_INTERVAL,
        );
        if publish_interval < defaults::MIN_PUBLISH_INTERVAL {
            self.error(
                "stats.publish_interval",
                format!(
                    "must be at least 10ms (found {}ms)",
                    publish_interval.as_millis()
                ),
            );
            publish_interval = defaults::PUBLISH_INTERVAL;
        }
        let mut on = [true; 4];
        if let Some(list) = &file.histograms {
            on = [false; 4];
            for (i, name) in list.iter().enumerate() {
                match HISTOGRAM_DIMENSIONS.iter().position(|d| *d == name.trim()) {
                    Some(d) => on[d] = true,
                    None => self.error(
                        format!("stats.histograms[{i}]"),
                        format!(
                            "unknown histogram dimension {name:?}: expected {}",
                            HISTOGRAM_DIMENSIONS.map(|d| format!("{d:?}")).join(", ")
                        ),
                    ),
                }
            }
        }
        StatsConfig {
            histogram_sigfig,
            publish_interval,
            listener_histograms: on[0],
            route_histograms: on[1],
            cluster_histograms: on[2],
            endpoint_histograms: on[3],
            per_worker: file.per_worker.unwrap_or(false),
        }
    }

    fn access_log(&mut self, file: &AccessLogFile) -> AccessLogConfig {
        let target = match file.path.as_deref().map(str::trim) {
            None | Some("stdout") => AccessLogTarget::Stdout,
            Some("") => {
                self.error(
                    "access_log.path",
                    "must not be empty: \"stdout\" or a file path",
                );
                AccessLogTarget::Stdout
            }
            Some(p) => {
                let path = tls::resolve_path(&self.base_dir, p);
                if path.is_dir() {
                    self.error(
                        "access_log.path",
                        format!("{} is a directory: expected a file path", path.display()),
                    );
                } else {
                    let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
                    if let Some(dir) = parent.filter(|d| !d.is_dir()) {
                        self.error(
                            "access_log.path",
                            format!("directory {} does not exist", dir.display()),
                        );
                    }
                }
                AccessLogTarget::File(path)
            }
        };
        let format = match file.format.as_deref().map(str::trim) {
            None | Some("json") => AccessLogFormat::Json,
            Some("combined") => AccessLogFormat::Combined,
            Some(other) => {
                self.error(
                    "access_log.format",
                    format!("unknown format {other:?}: expected \"json\" or \"combined\""),
                );
                AccessLogFormat::Json
            }
        };
        let buffer_bytes = match &file.buffer {
            None => defaults::ACCESS_LOG_BUFFER,
            Some(v) => match self.size("access_log.buffer", v) {
                Some(n)
                    if n >= defaults::MIN_ACCESS_LOG_BUFFER as u64
                        && n <= defaults::MAX_ACCESS_LOG_BUFFER as u64 =>
                {
                    n as usize
                }
                Some(n) => {
                    self.error(
                        "access_log.buffer",
                        format!(
                            "must be between 4KiB and 16MiB (found {})",
                            units::format_size(n)
                        ),
                    );
                    defaults::ACCESS_LOG_BUFFER
                }
                None => defaults::ACCESS_LOG_BUFFER,
            },
        };
        let flush_interval = self.timeout(
            "access_log.flush_interval",
            file.flush_interval.as_ref(),
            defaults::ACCESS_LOG_FLUSH_INTERVAL,
        );
        AccessLogConfig {
            target,
            format,
            buffer_bytes,
            flush_interval,
        }
    }

    fn tracing(&mut self, file: &TracingFile) -> TraceConfig {
        TraceConfig {
            w3c: file.w3c.unwrap_or(TraceConfig::default().w3c),
        }
    }

    fn listeners(
        &mut self,
        file: &[ListenerFile],
        skipped: &Skipped,
    ) -> Vec<Option<ListenerConfig>> {
        let section_broken = skipped.section("listener");
        let skipped = &skipped.listeners;
        if file.is_empty() && !section_broken {
            self.error("listener", "at least one [[listener]] is required");
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut addresses: HashMap<SocketAddr, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, l) in file.iter().enumerate() {
            let path = format!("listener[{i}]");
            self.unique_name(
                &mut names,
                &l.name,
                i,
                "listener",
                &path,
                skipped.contains(&i),
            );
            if skipped.contains(&i) {
                out.push(None);
                continue;
            }
            let address = self.socket_addr(&format!("{path}.address"), &l.address);
            if let Some(a) = address {
                if a.port() != 0 {
                    if let Some(first) = addresses.insert(a, i) {
                        self.error(
                            format!("{path}.address"),
                            format!("address {a} is already used by listener[{first}]"),
                        );
                    }
                }
            }
            let tls = match &l.tls {
                None => None,
                Some(t) => match tls::listener_tls(t, &format!("{path}.tls"), &self.base_dir) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        self.extend(e);
                        None
                    }
                },
            };
            let tls_files = l
                .tls
                .as_ref()
                .map(|t| listener_tls_files(t, &self.base_dir));
            out.push(address.map(|address| ListenerConfig {
                name: l.name.clone(),
                address,
                tls,
                tls_files,
            }));
        }
        out
    }

    /// Check a name for emptiness and duplicates (`names` maps names seen so
    /// far to their index).
    fn unique_name<'n>(
        &mut self,
        names: &mut HashMap<&'n str, usize>,
        name: &'n str,
        index: usize,
        kind: &str,
        path: &str,
        skipped: bool,
    ) {
        if name.trim().is_empty() {
            // A skipped element whose name could not be read has an empty
            // placeholder name: its own error was reported already.
            if !skipped {
                self.error(format!("{path}.name"), "must not be empty");
            }
            return;
        }
        if let Some(first) = names.insert(name, index) {
            names.insert(name, first);
            self.error(
                format!("{path}.name"),
                format!("duplicate {kind} name {name:?} (also used by {kind}[{first}])"),
            );
        }
    }

    fn clusters(&mut self, file: &[ClusterFile], skipped: &Skipped) -> Vec<Option<ClusterConfig>> {
        let section_broken = skipped.section("cluster");
        let skipped = &skipped.clusters;
        if file.is_empty() && !section_broken {
            self.error("cluster", "at least one [[cluster]] is required");
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, c) in file.iter().enumerate() {
            let path = format!("cluster[{i}]");
            self.unique_name(
                &mut names,
                &c.name,
                i,
                "cluster",
                &path,
                skipped.contains(&i),
            );
            if skipped.contains(&i) {
                out.push(None);
                continue;
            }
            let mut ok = true;
            if c.endpoints.is_empty() {
                self.error(
                    format!("{path}.endpoints"),
                    "at least one endpoint is required",
                );
                ok = false;
            }
            let mut endpoints = Vec::new();
            let mut first_host = None;
            for (j, e) in c.endpoints.iter().enumerate() {
                let epath = format!("{path}.endpoints[{j}]");
                match resolve_endpoint(e) {
                    Ok((address, host)) => {
                        if j == 0 {
                            first_host = Some(host);
                        }
                        endpoints.push(Endpoint {
                            address,
                            label: e.trim().to_owned(),
                        });
                    }
                    Err(m) => {
                        self.error(epath, m);
                        ok = false;
                    }
                }
            }
            let lb = match c.lb.as_deref().map(str::trim) {
                None | Some("round_robin") => LbPolicy::RoundRobin,
                Some(other) => {
                    self.error(
                        format!("{path}.lb"),
                        format!(
                            "unknown load-balancing policy {other:?}: expected \"round_robin\""
                        ),
                    );
                    LbPolicy::RoundRobin
                }
            };
            let connect_timeout = self.timeout(
                &format!("{path}.connect_timeout"),
                c.connect_timeout.as_ref(),
                defaults::CONNECT_TIMEOUT,
            );
            let idle_timeout = self.timeout(
                &format!("{path}.idle_timeout"),
                c.idle_timeout.as_ref(),
                defaults::CLUSTER_IDLE_TIMEOUT,
            );
            let max_idle_per_endpoint = self.int_in(
                &format!("{path}.max_idle_per_endpoint"),
                c.max_idle_per_endpoint,
                defaults::MAX_IDLE_PER_ENDPOINT as u64,
                0,
                u32::MAX as u64,
            ) as usize;
            let tls = match &c.tls {
                None => None,
                Some(t) => {
                    // The first endpoint was unusable (already reported):
                    // a placeholder host avoids a second, consequential
                    // "cannot derive server_name" error. The cluster is
                    // rejected anyway (`ok` is false).
                    let host = first_host
                        .as_deref()
                        .or(if ok { None } else { Some("invalid") });
                    match tls::upstream_tls(t, &format!("{path}.tls"), &self.base_dir, host) {
                        Ok(u) => Some(u),
                        Err(e) => {
                            self.extend(e);
                            ok = false;
                            None
                        }
                    }
                }
            };
            let tls_files = c.tls.as_ref().map(|t| cluster_tls_files(t, &self.base_dir));
            out.push(ok.then(|| ClusterConfig {
                name: c.name.clone(),
                endpoints,
                lb,
                connect_timeout,
                idle_timeout,
                max_idle_per_endpoint,
                tls,
                tls_files,
            }));
        }
        out
    }

    fn routes(&mut self, file: &FileConfig, skipped: &Skipped) -> Vec<Option<RouteConfig>> {
        if file.route.is_empty() && !skipped.section("route") {
            self.error("route", "at least one [[route]] is required");
        }
        let listener_index = index_by_name(file.listener.iter().map(|l| l.name.as_str()));
        let cluster_index = index_by_name(file.cluster.iter().map(|c| c.name.as_str()));
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut listener_has_route = vec![false; file.listener.len()];
        let mut out = Vec::new();
        for (i, r) in file.route.iter().enumerate() {
            let path = format!("route[{i}]");
            let name = match &r.name {
                // A skipped route's placeholder name is empty when its
                // `name` was missing or unreadable.
                Some(n) if !(n.is_empty() && skipped.routes.contains(&i)) => n.clone(),
                _ => format!("route{i}"),
            };
            if skipped.routes.contains(&i) {
                if !name.is_empty() {
                    names.entry(name).or_insert(i);
                }
                out.push(None);
                continue;
            }
            if name.trim().is_empty() {
                self.error(
                    format!("{path}.name"),
                    "must not be empty (leave it out for the default)",
                );
            } else if let Some(first) = names.get(&name) {
                self.error(
                    format!("{path}.name"),
                    format!("duplicate route name {name:?} (also used by route[{first}])"),
                );
            } else {
                names.insert(name.clone(), i);
            }

            let mut ok = true;
            let listener = match &r.listener {
                None => {
                    listener_has_route.iter_mut().for_each(|h| *h = true);
                    None
                }
                Some(l) => match listener_index.get(l.as_str()) {
                    Some(&idx) => {
                        listener_has_route[idx] = true;
                        Some(idx)
                    }
                    None if skipped.section("listener") => {
                        ok = false;
                        None
                    }
                    None => {
                        self.error(
                            format!("{path}.listener"),
                            format!(
                                "unknown listener {l:?}{}",
                                known_names(file.listener.iter().map(|l| l.name.as_str()))
                            ),
                        );
                        ok = false;
                        None
                    }
                },
            };
            let host = match &r.host {
                None => None,
                Some(h) => match parse_host(h) {
                    Ok(m) => Some(m),
                    Err(m) => {
                        self.error(format!("{path}.host"), m);
                        ok = false;
                        None
                    }
                },
            };
            let path_prefix = r
                .path_prefix
                .clone()
                .unwrap_or_else(|| defaults::PATH_PREFIX.to_owned());
            if !path_prefix.starts_with('/') {
                self.error(
                    format!("{path}.path_prefix"),
                    format!("must start with '/' (found {path_prefix:?})"),
                );
                ok = false;
            } else if path_prefix
                .bytes()
                .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
            {
                self.error(
                    format!("{path}.path_prefix"),
                    "must not contain spaces, control characters, '?' or '#'",
                );
                ok = false;
            }
            let cluster = match cluster_index.get(r.cluster.as_str()) {
                Some(&idx) => Some(idx),
                None if skipped.section("cluster") => None,
                None => {
                    self.error(
                        format!("{path}.cluster"),
                        format!(
                            "unknown cluster {:?}{}",
                            r.cluster,
                            known_names(file.cluster.iter().map(|c| c.name.as_str()))
                        ),
                    );
                    None
                }
            };
            let max_body_bytes = match &r.max_body_bytes {
                None => None,
                Some(v) => self.size(&format!("{path}.max_body_bytes"), v),
            };
            let timeout = self.timeout(
                &format!("{path}.timeout"),
                r.timeout.as_ref(),
                defaults::ROUTE_TIMEOUT,
            );
            out.push(match cluster {
                Some(cluster) if ok => Some(RouteConfig {
                    name,
                    listener,
                    host,
                    path_prefix,
                    cluster,
                    max_body_bytes,
                    timeout,
                }),
                _ => None,
            });
        }
        // A skipped route might have served any listener: don't guess.
        // Skipped and duplicate listeners have their own errors already.
        if skipped.routes.is_empty() && !skipped.section("route") {
            for (i, has) in listener_has_route.iter().enumerate() {
                let l = &file.listener[i];
                let duplicate = listener_index.get(l.name.as_str()) != Some(&i);
                if !has && !l.name.is_empty() && !duplicate && !skipped.listeners.contains(&i) {
                    self.error(
                        format!("listener[{i}]"),
                        format!(
                            "listener {:?} has no routes: add a [[route]] with listener = {:?} (or one without `listener`)",
                            l.name, l.name
                        ),
                    );
                }
            }
        }
        out
    }
}

/// The resolved TLS file paths of a listener (for display only; the files
/// themselves are loaded by [`tls::listener_tls`]).
fn listener_tls_files(file: &ListenerTlsFile, base_dir: &Path) -> ListenerTlsFiles {
    ListenerTlsFiles {
        cert: file.cert.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        key: file.key.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        sni: file
            .sni
            .iter()
            .map(|s| SniFiles {
                names: s.names.clone(),
                cert: tls::resolve_path(base_dir, &s.cert),
                key: tls::resolve_path(base_dir, &s.key),
            })
            .collect(),
    }
}

/// The resolved TLS file paths of a cluster (for display only).
fn cluster_tls_files(file: &ClusterTlsFile, base_dir: &Path) -> ClusterTlsFiles {
    ClusterTlsFiles {
        ca: file.ca.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        cert: file.cert.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        key: file.key.as_deref().map(|p| tls::resolve_path(base_dir, p)),
        insecure_skip_verify: file.insecure_skip_verify,
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

/// A route's `host`: `api.example.com` → exact, `*.example.com` → suffix.
pub fn parse_host(text: &str) -> Result<HostMatch, String> {
    let lower = text.trim().to_ascii_lowercase();
    let hint = "expected a host name such as \"api.example.com\" or a wildcard such as \"*.example.com\" (no port, no scheme)";
    if lower.is_empty() {
        return Err(format!("must not be empty: {hint}"));
    }
    if lower.contains(':') || lower.contains('/') {
        return Err(format!("invalid host {text:?}: {hint}"));
    }
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    if !tls::is_dns_name(name) {
        return Err(format!("invalid host {text:?}: {hint}"));
    }
    Ok(if wild {
        HostMatch::Suffix(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_owned())
    })
}

/// Resolve `ip:port` or `host:port` (first address) and return it with the
/// host part as written (without IPv6 brackets).
pub fn resolve_endpoint(text: &str) -> Result<(SocketAddr, String), String> {
    let text = text.trim();
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok((a, a.ip().to_string()));
    }
    let forms =
        "expected \"ip:port\" or \"host:port\", e.g. \"127.0.0.1:9000\" or \"app.internal:80\"";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("invalid endpoint {text:?}: missing port; {forms}"));
    };
    if host.is_empty() {
        return Err(format!("invalid endpoint {text:?}: missing host; {forms}"));
    }
    if host.contains(':') {
        return Err(format!(
            "invalid endpoint {text:?}: IPv6 addresses need brackets, e.g. \"[::1]:9000\""
        ));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!(
            "invalid endpoint {text:?}: bad port {port:?}; {forms}"
        ));
    };
    if !tls::is_dns_name(host) {
        return Err(format!(
            "invalid endpoint {text:?}: bad host name {host:?}; {forms}"
        ));
    }
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => Ok((a, host.to_owned())),
            None => Err(format!("cannot resolve {host:?}: no addresses")),
        },
        Err(e) => Err(format!("cannot resolve {host:?}: {e}")),
    }
}
