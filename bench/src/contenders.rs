//! The contenders (ringway, nginx, haproxy, direct, ringway-mirror: ringway
//! mirroring every request to a shadow that never answers,
//! ringway-nosplice: ringway with splice(2) turned off, and relay: a plain
//! TCP relay, `ringload relay`, the floor) and the origin:
//! finding or installing their binaries, writing their configs from
//! `bench/peers/`, starting them pinned and waiting until they answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::placement::{format_core_list, Layout};
use crate::procs::{run_capture, Child, Spawn};
use crate::scenarios::{Scenario, NOFILE_LIMIT};
use crate::tls::{CertFiles, Certs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ringway,
    Nginx,
    Haproxy,
    Direct,
    /// ringway whose route mirrors every request (`fraction = 1.0`) to a
    /// shadow cluster that reads and never answers (`ringload serve --hang`):
    /// compared with `ringway`, what mirroring to a stalled shadow costs the
    /// primary. Only when named in `--contenders`.
    RingwayMirror,
    /// ringway with splicing off (`[limits] splice_min_bytes = 0`, `splice_min_request_bytes = 0`): every
    /// body goes through user-space buffers. Compared with `ringway`, what
    /// splice(2) saves on large bodies. Only when named in `--contenders`.
    RingwayNosplice,
    /// `ringload relay`: each connection relayed to the origin byte for
    /// byte with no HTTP work at all (one receive and one send each way
    /// per request). What moving the bytes costs on this machine: the
    /// floor under every proxy's CPU per request. Only when named in
    /// `--contenders`; plain HTTP/1.1 scenarios with one origin only.
    Relay,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Ringway,
        Kind::Nginx,
        Kind::Haproxy,
        Kind::Direct,
        Kind::RingwayMirror,
        Kind::RingwayNosplice,
        Kind::Relay,
    ];

    /// The name used in every output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ringway => "ringway",
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
            Kind::Direct => "direct",
            Kind::RingwayMirror => "ringway-mirror",
            Kind::RingwayNosplice => "ringway-nosplice",
            Kind::Relay => "relay",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s.trim())
    }

    pub fn is_proxy(self) -> bool {
        self != Kind::Direct
    }

    /// Load straight at the origin or through a byte relay: neither
    /// terminates TLS, speaks HTTP/2 or groups origins.
    pub fn needs_plain_origin(self) -> bool {
        matches!(self, Kind::Direct | Kind::Relay)
    }

    /// Runs the ringway binary.
    pub fn is_ringway(self) -> bool {
        matches!(
            self,
            Kind::Ringway | Kind::RingwayMirror | Kind::RingwayNosplice
        )
    }
}

pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
    let mut v = Vec::new();
    for p in s.split(',').filter(|p| !p.trim().is_empty()) {
        let k = Kind::parse(p).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown contender {p:?} ({})", known.join(", "))
        })?;
        if !v.contains(&k) {
            v.push(k);
        }
    }
    if v.is_empty() {
        return Err("no contender selected".into());
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// Binaries

/// `name` on PATH or in the sbin directories (nginx and haproxy live there).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Installs missing Debian packages with apt-get (root only), once each.
pub struct Installer {
    pub allowed: bool,
    updated: Option<Result<(), String>>,
    pub log: Vec<String>,
}

impl Installer {
    pub fn new(allowed: bool) -> Self {
        Installer {
            allowed,
            updated: None,
            log: Vec::new(),
        }
    }

    /// The path of `binary`, installing `package` when it is missing.
    pub fn ensure(&mut self, package: &str, binary: &str) -> Result<PathBuf, String> {
        if let Some(p) = find_binary(binary) {
            return Ok(p);
        }
        if !self.allowed {
            return Err(format!("{binary} is not installed (--no-install)"));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(format!(
                "{binary} is not installed and installing needs root"
            ));
        }
        if find_binary("apt-get").is_none() {
            return Err(format!("{binary} is not installed and there is no apt-get"));
        }
        if self.updated.is_none() {
            eprintln!("ringway-bench: apt-get update");
            let r = apt(&["update", "-q"], Duration::from_secs(180));
            self.updated = Some(r.clone());
        }
        if let Some(Err(e)) = &self.updated {
            return Err(format!(
                "{binary} is not installed; apt-get update failed: {e}"
            ));
        }
        eprintln!("ringway-bench: apt-get install -y {package}");
        // Debian starts a package's service on install unless policy-rc.d says
        // no; a system nginx/haproxy left running would only be noise.
        let policy = Path::new("/usr/sbin/policy-rc.d");
        let made_policy =
            !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
        if made_policy {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755));
        }
        let r = apt(
            &["install", "-y", "-q", "--no-install-recommends", package],
            Duration::from_secs(300),
        );
        if made_policy {
            let _ = std::fs::remove_file(policy);
        }
        r.map_err(|e| format!("{binary} is not installed; apt-get install {package} failed: {e}"))?;
        self.log.push(format!("installed {package} with apt-get"));
        find_binary(binary)
            .ok_or_else(|| format!("apt-get installed {package} but {binary} is not on PATH"))
    }
}

fn apt(args: &[&str], timeout: Duration) -> Result<(), String> {
    let mut cmd = Command::new("apt-get");
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    match run_capture(&mut cmd, timeout) {
        Ok((0, _)) => Ok(()),
        Ok((code, out)) => {
            let tail: Vec<&str> = out.lines().rev().take(2).collect();
            Err(format!(
                "exit {code}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// First line of `binary ARGS` (stdout or stderr), for the report.
pub fn version_of(binary: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(binary);
    cmd.args(args);
    match run_capture(&mut cmd, Duration::from_secs(10)) {
        Ok((_, out)) => out.lines().next().unwrap_or("").trim().to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}

// ---------------------------------------------------------------------------
// Configs

const NGINX_TEMPLATE: &str = include_str!("../peers/nginx-proxy.conf.in");
const HAPROXY_TEMPLATE: &str = include_str!("../peers/haproxy.cfg.in");
const RINGWAY_TEMPLATE: &str = include_str!("../peers/ringway.toml.in");

/// What a contender config depends on.
#[derive(Debug, Clone)]
pub struct ConfigParams<'a> {
    pub worker_cores: &'a [usize],
    pub listen: SocketAddr,
    /// The upstream group: one origin, or several (fault scenarios).
    pub origins: &'a [SocketAddr],
    /// Idle upstream keep-alive connections per worker.
    pub pool: usize,
    pub tls: Option<&'a CertFiles>,
    /// Mutual TLS: client certificates must chain to this CA (PEM); a
    /// handshake without one is refused. Only with `tls`.
    pub client_ca: Option<&'a Path>,
    /// ringway-mirror: the shadow every request is mirrored to.
    pub mirror_to: Option<SocketAddr>,
    /// ringway-nosplice: `[limits] splice_min_bytes = 0` (splicing off).
    pub no_splice: bool,
    /// Requests in flight at once (load connections × HTTP/2 streams): each
    /// holds a client and an upstream connection in a proxy. Raises nginx's
    /// `worker_connections`/`worker_rlimit_nofile` and HAProxy's `maxconn`
    /// above the reference's only when they would not hold it.
    pub connections: usize,
    /// Large-body scenarios (`Scenario::large_body`): nginx gets
    /// `LARGE_BODY_NGINX_LOCATION`.
    pub large_body: bool,
    /// Fault scenarios: retries to another server and passive ejection of a
    /// failing one, set up as alike as each proxy allows (`FAILOVER_*`).
    pub failover: bool,
    /// HTTP/2 downstream: h2c by prior knowledge (cleartext) or ALPN h2
    /// (TLS). The origin side stays HTTP/1.1 keep-alive.
    pub h2: bool,
}

impl ConfigParams<'_> {
    /// What the scenario decides: pool size, connection-count-dependent
    /// limits, large-body settings, failover, HTTP/2.
    pub fn for_scenario(self, scenario: &Scenario) -> Self {
        // Requests in flight: connections, times streams for HTTP/2.
        let in_flight = scenario.connections * scenario.h2_streams.unwrap_or(1);
        ConfigParams {
            pool: pool_size(in_flight),
            connections: in_flight,
            large_body: scenario.large_body(),
            failover: scenario.fault.is_some(),
            h2: scenario.h2_streams.is_some(),
            ..self
        }
    }
}

// Fault scenarios (`fault-503`): how each proxy retries and ejects. Every
// proxy retries a failed request at most twice, on another server, for a
// 502/503/504 or a failed or reset connection, and takes a server out for
// about 10 s after about 5 failures. bench/README.md (*Fault scenario*)
// explains what differs between them.

/// nginx, in `location /`. 502/503/504 count against `max_fails` only when
/// listed here; `error` and `timeout` always do. `tries 3` = first try + 2.
pub const FAILOVER_NGINX_LOCATION: &str = "            proxy_next_upstream error timeout http_502 http_503 http_504;\n            proxy_next_upstream_tries 3;";
/// nginx, after each `server` address: 5 failures within 10 s → out for 10 s.
pub const FAILOVER_NGINX_SERVER: &str = "max_fails=5 fail_timeout=10s";
/// HAProxy, in the backend: L7 retries, each one on another server.
pub const FAILOVER_HAPROXY_BACKEND: &str = "    balance roundrobin\n    retries 2\n    retry-on 502 503 504 conn-failure empty-response response-timeout\n    option redispatch 1";
/// HAProxy, after each `server` address. `observe layer7` + `error-limit 5` +
/// `on-error mark-down`: 5 consecutive 5xx (or connection errors) take the
/// server down. Observing needs `check`: a plain TCP connect check every 10 s
/// with `rise 1` brings it back after about 10 s (it does not look at HTTP
/// statuses, like ringway's ejection timer).
pub const FAILOVER_HAPROXY_SERVER: &str =
    "check inter 10s rise 1 fall 1 observe layer7 error-limit 5 on-error mark-down";
/// ringway, on the route: 2 retries on another endpoint (default statuses
/// 502, 503, 504; connect failures, resets and timeouts are always retried),
/// default backoff (jittered, below 25 ms) and default retry budget (20 % +
/// 10/s per worker).
pub const FAILOVER_RINGWAY_ROUTE: &str = "retries = { attempts = 2 }";
/// ringway, on the cluster: 5 consecutive 5xx or gateway errors eject the
/// endpoint for 10 s (× the number of its ejections); success-rate
/// detection stays off (its default needs 5 endpoints).
pub const FAILOVER_RINGWAY_CLUSTER: &str = "outlier_detection = { consecutive_5xx = 5, consecutive_gateway_errors = 5, base_ejection_time = \"10s\", max_ejection_percent = 34 }";

/// Pool size: the reference's 256, or the connection count when larger.
pub fn pool_size(connections: usize) -> usize {
    connections.max(256)
}

// Connection-count-dependent limits (`conns-9900`). Each is the reference's
// value unless the scenario needs more, so every other scenario's config is
// the same as before. The container's hard open-file limit is 20,000 per
// process (`NOFILE_LIMIT`), and a proxy holds a client and an upstream
// descriptor per busy connection.

/// The reference's nginx `worker_connections` and `worker_rlimit_nofile`.
const NGINX_WORKER_CONNECTIONS: usize = 8192;
const NGINX_WORKER_RLIMIT_NOFILE: usize = 16384;
/// nginx: listening sockets, idle pool spares and the like, over the
/// 2 × connections.
const NGINX_CONNECTION_SLACK: usize = 100;

/// nginx `worker_connections` (counts client and upstream connections
/// alike): the reference's 8192, or 2 × connections + 100 when more.
pub fn nginx_worker_connections(connections: usize) -> usize {
    (2 * connections + NGINX_CONNECTION_SLACK).max(NGINX_WORKER_CONNECTIONS)
}

/// nginx `worker_rlimit_nofile`: the reference's 16384, or
/// `worker_connections` + 100 when more, at most `NOFILE_LIMIT` (a worker's
/// log files and its channel to the master fit in that margin).
pub fn nginx_worker_rlimit_nofile(connections: usize) -> usize {
    (nginx_worker_connections(connections) + NGINX_CONNECTION_SLACK)
        .clamp(NGINX_WORKER_RLIMIT_NOFILE, NOFILE_LIMIT)
}

/// The reference's HAProxy global `maxconn` and per-server `maxconn`.
const HAPROXY_MAXCONN: usize = 8000;
const HAPROXY_SERVER_MAXCONN: usize = 4000;

/// HAProxy global `maxconn` (client-side connections; HAProxy asks for
/// 2 × maxconn + 14 descriptors at start): the reference's 8000, or
/// connections + 50 when more (9,950 → 19,914 descriptors for conns-9900).
pub fn haproxy_maxconn(connections: usize) -> usize {
    (connections + 50).max(HAPROXY_MAXCONN)
}

/// HAProxy per-server `maxconn`: the reference's 4000, or the connection
/// count when more, so HAProxy opens an upstream connection per busy client
/// connection like the others instead of queueing requests for one.
pub fn haproxy_server_maxconn(connections: usize) -> usize {
    connections.max(HAPROXY_SERVER_MAXCONN)
}

/// Descriptors a proxy process needs for `connections` busy connections
/// (a client and an upstream one each, plus slack): what the open-file
/// limit must allow (the note in compare.rs).
pub fn descriptors_needed(connections: usize) -> usize {
    2 * connections + NGINX_CONNECTION_SLACK
}

/// nginx, in `location /`, for large-body scenarios (`Scenario::large_body`):
/// what an operator sets for large bodies. No body size limit (the default
/// `client_max_body_size` is 1m: a larger body is refused with 413), request
/// bodies streamed to the upstream as they arrive instead of read whole
/// first (spooled to a temp file past `client_body_buffer_size`), and
/// responses never spooled to a temp file (only the in-memory
/// `proxy_buffers`).
pub const LARGE_BODY_NGINX_LOCATION: &str = "            # Large-body scenario: no size limit, request bodies streamed, no temp files.\n            client_max_body_size 0;\n            proxy_request_buffering off;\n            proxy_max_temp_file_size 0;";

/// Replace every `@K@` by its value; a line holding only a placeholder whose
/// value is empty goes away.
fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, _) in vars.iter().filter(|(_, v)| v.is_empty()) {
        s = s.replace(&format!("\n@{k}@\n"), "\n");
    }
    for (k, v) in vars {
        s = s.replace(&format!("@{k}@"), v);
    }
    s
}

/// nginx `worker_cpu_affinity` mask of one core: core 1 → `10`.
pub fn nginx_cpu_mask(core: usize) -> String {
    let mut m = "0".repeat(core + 1);
    m.replace_range(0..1, "1");
    m
}

pub fn nginx_config(p: &ConfigParams) -> String {
    let masks: Vec<String> = p.worker_cores.iter().map(|&c| nginx_cpu_mask(c)).collect();
    // `http2` on `listen` (1.22): with ssl, ALPN h2; without, h2c by prior
    // knowledge only (HTTP/1.1 is no longer served on that port).
    let h2 = if p.h2 { " http2" } else { "" };
    let (ssl_listen, ssl) = match p.tls {
        Some(t) => (
            format!(" ssl{h2}"),
            format!(
                // TLS 1.3 as well: nginx 1.22's default stops at 1.2
                // (1.23.4 added 1.3); every contender then negotiates the
                // same version with the same client.
                "        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;{}",
                t.cert.display(),
                t.key.display(),
                p.client_ca.map(nginx_client_auth).unwrap_or_default()
            ),
        ),
        None => (h2.to_string(), "        # plain HTTP".to_string()),
    };
    fill(
        NGINX_TEMPLATE,
        &[
            ("WORKERS", p.worker_cores.len().to_string()),
            ("CPU_AFFINITY", masks.join(" ")),
            (
                "WORKER_RLIMIT_NOFILE",
                nginx_worker_rlimit_nofile(p.connections).to_string(),
            ),
            (
                "WORKER_CONNECTIONS",
                nginx_worker_connections(p.connections).to_string(),
            ),
            ("SERVERS", nginx_servers(p)),
            ("POOL", p.pool.to_string()),
            ("LISTEN", p.listen.to_string()),
            ("NEXT_UPSTREAM", nginx_next_upstream(p)),
            (
                "LARGE_BODY",
                if p.large_body {
                    LARGE_BODY_NGINX_LOCATION.to_string()
                } else {
                    String::new()
                },
            ),
            ("SSL_LISTEN", ssl_listen),
            ("SSL_DIRECTIVES", ssl),
        ],
    )
}

/// nginx mTLS: require a client certificate chaining to `ca` (leaf signed
/// directly by the CA: depth 1).
fn nginx_client_auth(ca: &Path) -> String {
    format!(
        "\n        ssl_verify_client on;\n        ssl_client_certificate {};\n        ssl_verify_depth 1;",
        ca.display()
    )
}

fn nginx_servers(p: &ConfigParams) -> String {
    p.origins
        .iter()
        .map(|o| {
            if p.failover {
                format!("        server {o} {FAILOVER_NGINX_SERVER};")
            } else {
                format!("        server {o};")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn nginx_next_upstream(p: &ConfigParams) -> String {
    if p.failover {
        FAILOVER_NGINX_LOCATION.to_string()
    } else {
        String::new()
    }
}

fn haproxy_backend(p: &ConfigParams) -> String {
    let mut lines = Vec::new();
    if p.failover {
        lines.push(FAILOVER_HAPROXY_BACKEND.to_string());
    }
    for (i, o) in p.origins.iter().enumerate() {
        let mut l = format!(
            "    server s{} {o} maxconn {}",
            i + 1,
            haproxy_server_maxconn(p.connections)
        );
        if p.failover {
            l.push(' ');
            l.push_str(FAILOVER_HAPROXY_SERVER);
        }
        lines.push(l);
    }
    lines.join("\n")
}

pub fn haproxy_config(p: &ConfigParams) -> String {
    let cpu_map: Vec<String> = p
        .worker_cores
        .iter()
        .enumerate()
        .map(|(i, c)| format!("    cpu-map 1/{} {c}", i + 1))
        .collect();
    let ssl = match p.tls {
        Some(t) => format!(
            " ssl crt {}{} alpn {}",
            t.combined.display(),
            p.client_ca
                .map(|ca| format!(" verify required ca-file {}", ca.display()))
                .unwrap_or_default(),
            if p.h2 { "h2,http/1.1" } else { "http/1.1" }
        ),
        // h2c by prior knowledge: HTTP/2 only on this bind.
        None if p.h2 => " proto h2".to_string(),
        None => String::new(),
    };
    fill(
        HAPROXY_TEMPLATE,
        &[
            ("WORKERS", p.worker_cores.len().to_string()),
            ("CPU_MAP", cpu_map.join("\n")),
            ("MAXCONN", haproxy_maxconn(p.connections).to_string()),
            ("LISTEN", p.listen.to_string()),
            ("SSL_BIND", ssl),
            ("BACKEND", haproxy_backend(p)),
        ],
    )
}

pub fn ringway_config(p: &ConfigParams) -> String {
    let cores: Vec<String> = p.worker_cores.iter().map(|c| c.to_string()).collect();
    let tls = match p.tls {
        Some(t) => format!(
            "tls = {{ cert = \"{}\", key = \"{}\"{} }}",
            t.cert.display(),
            t.key.display(),
            p.client_ca
                .map(|ca| format!(
                    ", client_ca = [\"{}\"], client_auth = \"required\"",
                    ca.display()
                ))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    let endpoints: Vec<String> = p.origins.iter().map(|o| format!("\"{o}\"")).collect();
    let extra = |s: &str| {
        if p.failover {
            s.to_string()
        } else {
            String::new()
        }
    };
    let route_extra: Vec<String> = [extra(FAILOVER_RINGWAY_ROUTE)]
        .into_iter()
        .chain(p.mirror_to.map(|_| MIRROR_RINGWAY_ROUTE.to_string()))
        .filter(|l| !l.is_empty())
        .collect();
    let mut c = fill(
        RINGWAY_TEMPLATE,
        &[
            ("WORKERS", p.worker_cores.len().to_string()),
            ("CORES", cores.join(", ")),
            ("LISTEN", p.listen.to_string()),
            ("TLS", tls),
            ("PROTOCOLS", ringway_protocols(p).to_string()),
            ("ROUTE_EXTRA", route_extra.join("\n")),
            ("ENDPOINTS", endpoints.join(", ")),
            ("POOL", p.pool.to_string()),
            ("CLUSTER_EXTRA", extra(FAILOVER_RINGWAY_CLUSTER)),
        ],
    );
    if let Some(shadow) = p.mirror_to {
        c.push_str(&format!(
            "\n# ringway-mirror: the shadow, `ringload serve --hang` (reads, never answers).\n[[cluster]]\nname = \"shadow\"\nendpoints = [\"{shadow}\"]\n"
        ));
    }
    if p.no_splice {
        c.push_str(NOSPLICE_RINGWAY_LIMITS);
    }
    c
}

/// ringway-nosplice, appended to the config: splicing off, so a
/// Content-Length body between two plain TCP sockets goes through
/// user-space buffers like any other.
pub const NOSPLICE_RINGWAY_LIMITS: &str =
    "\n# ringway-nosplice: splice(2) off, bodies through user-space buffers.\n[limits]\nsplice_min_bytes = 0\nsplice_min_request_bytes = 0\n";

/// ringway's listener `protocols` (docs/http2.md): HTTP/2 scenarios add h2,
/// preferred in ALPN on TLS, by prior knowledge beside HTTP/1.1 on
/// cleartext. Empty: the default (HTTP/1.1 only).
fn ringway_protocols(p: &ConfigParams) -> &'static str {
    match (p.h2, p.tls.is_some()) {
        (false, _) => "",
        (true, true) => "protocols = [\"h2\", \"http/1.1\"]",
        (true, false) => "protocols = [\"http/1.1\", \"h2\"]",
    }
}

/// ringway-mirror, on the route: a copy of every request to the shadow
/// cluster. The defaults apply: each copy ends after `timeout` (1 s), at most
/// 64 copies are in flight per worker and more are dropped, never queued;
/// so with a shadow that never answers, about 64 copies per second and
/// worker are sent and the rest dropped.
pub const MIRROR_RINGWAY_ROUTE: &str = "mirror = { cluster = \"shadow\", fraction = 1.0 }";

// ---------------------------------------------------------------------------
// Running processes

/// A port nothing listens on right now.
pub fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Binaries found for this run.
#[derive(Debug, Clone, Default)]
pub struct Binaries {
    pub ringway: PathBuf,
    pub ringload: PathBuf,
    /// The HTTP/2 scenarios' load generator (and readiness probe).
    pub h2load: Option<PathBuf>,
    pub nginx: Option<PathBuf>,
    pub haproxy: Option<PathBuf>,
}

/// The origin: `ringload serve`, pinned.
pub struct Origin {
    pub child: Child,
    pub addr: SocketAddr,
}

/// The origins of a scenario: one, or a group (fault scenarios), all on the
/// placement's origin cores.
pub struct Origins {
    pub list: Vec<Origin>,
}

impl Origins {
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.list.iter().map(|o| o.addr).collect()
    }

    pub fn pids(&self) -> Vec<i32> {
        self.list.iter().map(|o| o.child.pid).collect()
    }

    /// The first origin that exited: its index in the group, exit code and
    /// the tail of its stderr.
    pub fn try_exit(&mut self) -> Option<(usize, i32, String)> {
        self.list.iter_mut().enumerate().find_map(|(i, o)| {
            o.child
                .try_exit()
                .map(|code| (i, code, o.child.stderr_tail(3)))
        })
    }

    pub fn stop(&mut self) {
        for o in &mut self.list {
            o.child.stop();
        }
    }
}

/// `ringload serve` arguments of origin `i` of the scenario.
pub fn origin_args(scenario: &Scenario, layout: &Layout, i: usize) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--workers".into(),
        layout.origin.len().to_string(),
        "--cores".into(),
        format_core_list(&layout.origin),
        "--body-size".into(),
        scenario.response_body.to_string(),
    ];
    if let Some(f) = &scenario.fault {
        if let Some(fraction) = f.fail_fraction(i) {
            a.extend([
                "--fail-fraction".into(),
                fraction.to_string(),
                "--fail-status".into(),
                f.fail_status.to_string(),
            ]);
        }
    }
    a
}

pub fn start_origins(
    bins: &Binaries,
    scenario: &Scenario,
    layout: &Layout,
    dir: &Path,
    tag: &str,
) -> Result<Origins, String> {
    let n = scenario.origins();
    let mut list = Vec::with_capacity(n);
    for i in 0..n {
        let tag = if n == 1 {
            tag.to_string()
        } else {
            format!("{tag}-{i}")
        };
        match start_origin(bins, origin_args(scenario, layout, i), layout, dir, &tag) {
            Ok(o) => list.push(o),
            Err(e) => {
                for o in &mut list {
                    o.child.stop();
                }
                return Err(if n == 1 {
                    e
                } else {
                    format!("origin {} of {n}: {e}", i + 1)
                });
            }
        }
    }
    Ok(Origins { list })
}

fn start_origin(
    bins: &Binaries,
    args: Vec<String>,
    layout: &Layout,
    dir: &Path,
    tag: &str,
) -> Result<Origin, String> {
    let mut cmd = Command::new(&bins.ringload);
    cmd.args(args);
    let mut child = Spawn {
        name: "ringload serve",
        cmd,
        cores: layout.origin.clone(),
        log_dir: dir,
        log_name: format!("origin-{tag}"),
    }
    .start()
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(addr) = child
            .stdout()
            .lines()
            .find_map(|l| l.strip_prefix("ringload serve: listening on "))
            .and_then(|a| a.trim().parse().ok())
        {
            return Ok(Origin { child, addr });
        }
        if let Some(code) = child.try_exit() {
            return Err(format!("origin exited {code}: {}", child.stderr_tail(3)));
        }
        if Instant::now() > deadline {
            return Err("origin did not print its address within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A contender, ready to take load.
pub struct Running {
    /// Root of the contender's process tree (None for direct).
    pub child: Option<Child>,
    /// ringway-mirror: the shadow (`ringload serve --hang`) it mirrors to.
    /// Not the contender: its CPU is not in the contender's figures.
    pub shadow: Option<Child>,
    pub url: String,
}

impl Running {
    pub fn root_pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.pid)
    }
    pub fn shadow_pid(&self) -> Option<i32> {
        self.shadow.as_ref().map(|c| c.pid)
    }
    pub fn stop(&mut self) {
        for c in self.child.iter_mut().chain(self.shadow.iter_mut()) {
            c.stop();
        }
    }
}

/// `ringload serve` arguments of the ringway-mirror shadow: reads every
/// request, never answers.
pub fn shadow_args(layout: &Layout) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--workers".into(),
        layout.origin.len().to_string(),
        "--cores".into(),
        format_core_list(&layout.origin),
        "--hang".into(),
    ]
}

/// `ringload relay` arguments: the contender's workers and cores, one
/// origin.
pub fn relay_args(layout: &Layout, listen: SocketAddr, origin: SocketAddr) -> Vec<String> {
    vec![
        "relay".into(),
        "--listen".into(),
        listen.to_string(),
        "--upstream".into(),
        origin.to_string(),
        "--workers".into(),
        layout.workers.to_string(),
        "--cores".into(),
        format_core_list(&layout.worker_cores),
    ]
}

#[allow(clippy::too_many_arguments)]
pub fn start_contender(
    kind: Kind,
    bins: &Binaries,
    layout: &Layout,
    scenario: &Scenario,
    origins: &[SocketAddr],
    certs: &Certs,
    dir: &Path,
    tag: &str,
) -> Result<Running, String> {
    let scheme = if scenario.tls { "https" } else { "http" };
    if kind == Kind::Direct {
        let origin = origins.first().ok_or("no origin")?;
        return Ok(Running {
            child: None,
            shadow: None,
            url: format!("http://{origin}/"),
        });
    }
    let (tls, client_ca) = certs.for_scenario(scenario)?;
    let mut shadow = match kind {
        Kind::RingwayMirror => Some(start_origin(
            bins,
            shadow_args(layout),
            layout,
            dir,
            &format!("shadow-{tag}"),
        )?),
        _ => None,
    };
    let listen = free_port()?;
    let params = ConfigParams {
        worker_cores: &layout.worker_cores,
        listen,
        origins,
        pool: 0,
        tls,
        client_ca,
        mirror_to: shadow.as_ref().map(|s| s.addr),
        no_splice: kind == Kind::RingwayNosplice,
        connections: 0,
        large_body: false,
        failover: false,
        h2: false,
    }
    .for_scenario(scenario);
    let cmd = match kind {
        Kind::Ringway | Kind::RingwayMirror | Kind::RingwayNosplice => {
            let path = dir.join(format!("ringway-{tag}.toml"));
            write(&path, &ringway_config(&params))?;
            let mut c = Command::new(&bins.ringway);
            c.arg("run").arg("-c").arg(&path);
            c
        }
        Kind::Nginx => {
            let bin = bins.nginx.as_ref().ok_or("nginx is not available")?;
            let prefix = dir.join(format!("nginx-{tag}"));
            std::fs::create_dir_all(prefix.join("tmp")).map_err(|e| e.to_string())?;
            let path = prefix.join("nginx.conf");
            write(&path, &nginx_config(&params))?;
            let mut c = Command::new(bin);
            c.arg("-p")
                .arg(format!("{}/", prefix.display()))
                .arg("-c")
                .arg(&path)
                .arg("-e")
                .arg(prefix.join("startup-error.log"));
            c
        }
        Kind::Haproxy => {
            let bin = bins.haproxy.as_ref().ok_or("haproxy is not available")?;
            let path = dir.join(format!("haproxy-{tag}.cfg"));
            write(&path, &haproxy_config(&params))?;
            let mut c = Command::new(bin);
            c.arg("-f").arg(&path).arg("-db");
            c
        }
        Kind::Relay => {
            let origin = origins.first().ok_or("no origin")?;
            let mut c = Command::new(&bins.ringload);
            c.args(relay_args(layout, listen, *origin));
            c
        }
        Kind::Direct => unreachable!(),
    };
    let started = Spawn {
        name: kind.name(),
        cmd,
        cores: layout.contender_mask.clone(),
        log_dir: dir,
        log_name: format!("{}-{tag}", kind.name()),
    }
    .start()
    .map_err(|e| e.to_string())
    .and_then(|mut child| {
        let h1_probe = !scenario.tls && scenario.h2_streams.is_none();
        wait_ready(kind, &mut child, listen, h1_probe)?;
        if scenario.h2_streams.is_some() {
            let h2load = bins.h2load.as_ref().ok_or("h2load is not available")?;
            probe_h2(h2load, &format!("{scheme}://{listen}/"))
                .map_err(|e| format!("{}: {e}", kind.name()))?;
        }
        Ok(child)
    });
    match started {
        Ok(child) => Ok(Running {
            child: Some(child),
            shadow: shadow.map(|s| s.child),
            url: format!("{scheme}://{listen}/"),
        }),
        Err(e) => {
            if let Some(s) = shadow.as_mut() {
                s.child.stop();
            }
            Err(e)
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Wait (≤ 10 s) until the contender accepts connections (ringway: also its
/// `ringway: ready` line), then, for plain HTTP, check one request goes
/// through to the origin.
fn wait_ready(
    kind: Kind,
    child: &mut Child,
    listen: SocketAddr,
    probe: bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = child.try_exit() {
            return Err(format!(
                "{} exited {code} at start: {}",
                kind.name(),
                child.stderr_tail(4)
            ));
        }
        let printed_ready = !kind.is_ringway() || child.stdout().contains("ringway: ready");
        if printed_ready && TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not accept connections on {listen} within 10 s: {}",
                kind.name(),
                child.stderr_tail(4)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if probe {
        let status = probe_get(listen)?;
        if !(200..300).contains(&status) {
            return Err(format!("{}: probe request answered {status}", kind.name()));
        }
    }
    Ok(())
}

/// One `GET /` with `Connection: close`; the status code.
pub fn probe_get(addr: SocketAddr) -> Result<u16, String> {
    let err = |e: std::io::Error| format!("probe request to {addr}: {e}");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(err)?;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(err)?;
    let mut buf = Vec::new();
    // Only the head matters (a large-body scenario's response is cut off).
    let read = s.take(64 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "probe request to {addr}: no HTTP response ({} bytes{})",
                buf.len(),
                read.err().map(|e| format!(", {e}")).unwrap_or_default()
            )
        })
}

/// One HTTP/2 `GET /` with h2load (`-n 1`; h2c by prior knowledge, or ALPN
/// h2 for https): it must be answered 2xx over h2.
pub fn probe_h2(h2load: &Path, url: &str) -> Result<(), String> {
    let mut cmd = Command::new(h2load);
    cmd.args(["-n", "1", "-c", "1", url]);
    let (code, out) = run_capture(&mut cmd, Duration::from_secs(10))
        .map_err(|e| format!("h2 probe request: {e}"))?;
    let ok = out
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .and_then(|l| crate::load::count_before(l, "2xx"))
        == Some(1);
    let h2 = out
        .lines()
        .any(|l| l.starts_with("Application protocol: h2"));
    if code == 0 && ok && h2 {
        Ok(())
    } else {
        let tail: Vec<&str> = out.lines().rev().take(4).collect();
        Err(format!(
            "h2 probe request to {url} failed (exit {code}): {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &[SocketAddr] = &[SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        28080,
    )];

    fn group() -> Vec<SocketAddr> {
        [28090, 28091, 28092]
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .to_vec()
    }

    fn params<'a>(cores: &'a [usize], tls: Option<&'a CertFiles>) -> ConfigParams<'a> {
        ConfigParams {
            worker_cores: cores,
            listen: "127.0.0.1:28081".parse().unwrap(),
            origins: ONE,
            pool: 256,
            tls,
            client_ca: None,
            mirror_to: None,
            no_splice: false,
            connections: 50,
            large_body: false,
            failover: false,
            h2: false,
        }
    }

    fn h2_params<'a>(tls: Option<&'a CertFiles>) -> ConfigParams<'a> {
        ConfigParams {
            h2: true,
            ..params(&[1], tls)
        }
    }

    fn mtls_params(t: &CertFiles) -> ConfigParams<'_> {
        ConfigParams {
            client_ca: Some(Path::new("/r/ca.pem")),
            ..params(&[1], Some(t))
        }
    }

    /// Lines that are not comments.
    fn code(c: String) -> String {
        c.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn fault_params(origins: &[SocketAddr]) -> ConfigParams<'_> {
        ConfigParams {
            origins,
            failover: true,
            ..params(&[1], None)
        }
    }

    fn certs() -> CertFiles {
        CertFiles {
            cert: "/r/c.pem".into(),
            key: "/r/k.pem".into(),
            combined: "/r/ck.pem".into(),
        }
    }

    #[test]
    fn names() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "ringway",
                "nginx",
                "haproxy",
                "direct",
                "ringway-mirror",
                "ringway-nosplice",
                "relay"
            ]
        );
        assert!(Kind::Relay.is_proxy() && !Kind::Relay.is_ringway());
        assert!(Kind::Relay.needs_plain_origin() && Kind::Direct.needs_plain_origin());
        assert!(!Kind::Nginx.needs_plain_origin());
        assert_eq!(
            parse_list("ringway, ringway-nosplice").unwrap(),
            vec![Kind::Ringway, Kind::RingwayNosplice]
        );
        assert!(Kind::RingwayNosplice.is_ringway() && Kind::RingwayNosplice.is_proxy());
        assert_eq!(
            parse_list("nginx,ringway,nginx").unwrap(),
            vec![Kind::Nginx, Kind::Ringway]
        );
        assert_eq!(
            parse_list("ringway,ringway-mirror").unwrap(),
            vec![Kind::Ringway, Kind::RingwayMirror]
        );
        assert!(Kind::RingwayMirror.is_ringway() && Kind::RingwayMirror.is_proxy());
        assert!(!Kind::Nginx.is_ringway());
        let err = parse_list("envoy").unwrap_err();
        assert!(err.contains("ringway-mirror"), "{err}");
        assert!(err.contains("ringway-nosplice"), "{err}");
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(nginx_cpu_mask(0), "1");
        assert_eq!(nginx_cpu_mask(1), "10");
        assert_eq!(nginx_cpu_mask(3), "1000");
    }

    #[test]
    fn nginx_conf_keeps_the_reference_settings() {
        let c = nginx_config(&params(&[1], None));
        assert!(!c.contains('@'), "{c}");
        for line in [
            "worker_processes 1;",
            "worker_cpu_affinity 10;",
            "access_log off;",
            "keepalive_requests 10000000;",
            "server 127.0.0.1:28080;",
            "keepalive 256;",
            "listen 127.0.0.1:28081 backlog=4096;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "client_body_buffer_size 64k;",
        ] {
            assert!(c.contains(line), "missing {line}");
        }
        let t = certs();
        let c = nginx_config(&params(&[1, 2], Some(&t)));
        assert!(c.contains("worker_processes 2;"));
        assert!(c.contains("worker_cpu_affinity 10 100;"));
        assert!(c.contains("listen 127.0.0.1:28081 backlog=4096 ssl;"));
        assert!(c.contains("ssl_certificate /r/c.pem;"));
        assert!(c.contains("ssl_certificate_key /r/k.pem;"));
        assert!(c.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
    }

    #[test]
    fn haproxy_cfg_keeps_the_reference_settings() {
        let c = haproxy_config(&params(&[1], None));
        assert!(!c.contains('@'), "{c}");
        for line in [
            "nbthread 1",
            "cpu-map 1/1 1",
            "http-reuse always",
            "bind 127.0.0.1:28081\n",
            "server s1 127.0.0.1:28080 maxconn 4000",
        ] {
            assert!(c.contains(line), "missing {line}");
        }
        let t = certs();
        let c = haproxy_config(&params(&[1, 1], Some(&t)));
        assert!(c.contains("nbthread 2"));
        assert!(c.contains("cpu-map 1/2 1"));
        assert!(c.contains("bind 127.0.0.1:28081 ssl crt /r/ck.pem alpn http/1.1"));
    }

    #[test]
    fn ringway_toml_is_a_valid_ringway_config() {
        let c = ringway_config(&params(&[0], None));
        assert!(!c.contains('@'), "{c}");
        let cfg = ringway::config::Config::parse(&c, None).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert_eq!(cfg.listeners.len(), 1);
        assert_eq!(cfg.routes.len(), 1);
        assert_eq!(cfg.clusters.len(), 1);
        assert!(c.contains("max_idle_per_endpoint = 256"));
        let t = certs();
        let c = ringway_config(&params(&[1, 0], Some(&t)));
        assert!(c.contains("tls = { cert = \"/r/c.pem\", key = \"/r/k.pem\" }"));
        assert!(c.contains("cores = [1, 0]"));
        assert!(c.contains("workers = 2"));
    }

    #[test]
    fn nginx_mtls_config_verifies_client_certificates() {
        let t = certs();
        let c = nginx_config(&mtls_params(&t));
        assert!(!c.contains('@'), "{c}");
        for line in [
            "listen 127.0.0.1:28081 backlog=4096 ssl;",
            "ssl_certificate /r/c.pem;",
            "ssl_verify_client on;",
            "ssl_client_certificate /r/ca.pem;",
            "ssl_verify_depth 1;",
        ] {
            assert!(c.contains(line), "missing {line}:\n{c}");
        }
        // Inside the server block, and only with a client CA.
        let server = &c[c.find("    server {").unwrap()..];
        assert!(server.contains("ssl_verify_client on;"));
        let plain_tls = code(nginx_config(&params(&[1], Some(&t))));
        assert!(!plain_tls.contains("ssl_verify_client"), "{plain_tls}");
    }

    #[test]
    fn haproxy_mtls_config_verifies_client_certificates() {
        let t = certs();
        let c = haproxy_config(&mtls_params(&t));
        assert!(!c.contains('@'), "{c}");
        assert!(
            c.contains(
                "bind 127.0.0.1:28081 ssl crt /r/ck.pem verify required ca-file /r/ca.pem alpn http/1.1\n"
            ),
            "{c}"
        );
        let plain_tls = haproxy_config(&params(&[1], Some(&t)));
        assert!(!plain_tls.contains("verify required"), "{plain_tls}");
    }

    #[test]
    fn ringway_mtls_config_requires_client_certificates() {
        let t = certs();
        let c = ringway_config(&mtls_params(&t));
        assert!(!c.contains('@'), "{c}");
        assert!(
            c.contains("tls = { cert = \"/r/c.pem\", key = \"/r/k.pem\", client_ca = [\"/r/ca.pem\"], client_auth = \"required\" }"),
            "{c}"
        );
        let v: toml::Value = toml::from_str(&c).unwrap();
        let tls = &v["listener"][0]["tls"];
        assert_eq!(tls["client_auth"].as_str(), Some("required"));
        assert_eq!(tls["client_ca"][0].as_str(), Some("/r/ca.pem"));
        // ringway reads the TLS files when it parses: with the real set.
        let dir =
            std::env::temp_dir().join(format!("ringway-bench-mtlscfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = crate::tls::mint_mtls(&dir).unwrap();
        let c = ringway_config(&ConfigParams {
            client_ca: Some(&m.ca),
            ..params(&[1], Some(&m.server))
        });
        let cfg = ringway::config::Config::parse(&c, None).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert_eq!(cfg.listeners.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ringway_mirror_config_mirrors_every_request_to_the_shadow() {
        let shadow: SocketAddr = "127.0.0.1:28099".parse().unwrap();
        let p = ConfigParams {
            mirror_to: Some(shadow),
            ..params(&[1], None)
        };
        let c = ringway_config(&p);
        assert!(!c.contains('@'), "{c}");
        let cfg = ringway::config::Config::parse(&c, None).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert_eq!(cfg.clusters.len(), 2, "{c}");
        let v: toml::Value = toml::from_str(&c).unwrap();
        let mirror = &v["route"][0]["mirror"];
        assert_eq!(mirror["cluster"].as_str(), Some("shadow"));
        assert_eq!(mirror["fraction"].as_float(), Some(1.0));
        assert_eq!(v["cluster"][0]["name"].as_str(), Some("origin"));
        assert_eq!(v["cluster"][1]["name"].as_str(), Some("shadow"));
        assert_eq!(
            v["cluster"][1]["endpoints"][0].as_str(),
            Some("127.0.0.1:28099")
        );
        // With the fault scenario's retries too, both keys on the route.
        let g = group();
        let f = ringway_config(&ConfigParams {
            mirror_to: Some(shadow),
            ..fault_params(&g)
        });
        ringway::config::Config::parse(&f, None).unwrap_or_else(|e| panic!("{e}\n{f}"));
        let route = &f[f.find("[[route]]").unwrap()..f.find("[[cluster]]").unwrap()];
        assert!(
            route.contains("retries =") && route.contains("mirror ="),
            "{f}"
        );
        // Plain ringway does not mirror.
        assert!(!code(ringway_config(&params(&[1], None))).contains("mirror"));
        let a = shadow_args(&Layout::new(
            crate::placement::Placement::A,
            &crate::placement::Sides::split(&[0, 1]),
            1,
        ))
        .join(" ");
        assert_eq!(a, "serve --listen 127.0.0.1:0 --workers 1 --cores 0 --hang");
    }

    #[test]
    fn ringway_nosplice_config_turns_splicing_off() {
        let p = ConfigParams {
            no_splice: true,
            ..params(&[1], None)
        };
        let c = ringway_config(&p);
        assert!(!c.contains('@'), "{c}");
        // Parsed as TOML only: ringway's own parser knows the key once the
        // proxy side has it.
        let v: toml::Value = toml::from_str(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert_eq!(v["limits"]["splice_min_bytes"].as_integer(), Some(0), "{c}");
        assert_eq!(
            v["limits"]["splice_min_request_bytes"].as_integer(),
            Some(0),
            "{c}"
        );
        // Otherwise the plain config: same listener, route and cluster.
        let plain = ringway_config(&params(&[1], None));
        assert_eq!(
            c.strip_suffix(NOSPLICE_RINGWAY_LIMITS),
            Some(plain.as_str())
        );
        let v: toml::Value = toml::from_str(&plain).unwrap();
        assert!(v.get("limits").is_none(), "{plain}");
        assert!(!plain.contains("splice_min_bytes"));
        // With a large-body scenario too (what it is for).
        let big = ringway_config(&ConfigParams {
            no_splice: true,
            ..params(&[1], None).for_scenario(scenario("post-64m"))
        });
        let v: toml::Value = toml::from_str(&big).unwrap();
        assert_eq!(v["limits"]["splice_min_bytes"].as_integer(), Some(0));
        assert_eq!(
            v["cluster"][0]["max_idle_per_endpoint"].as_integer(),
            Some(256)
        );
    }

    fn scenario(name: &str) -> &'static Scenario {
        crate::scenarios::ALL
            .iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    const LARGE_BODY_LINES: [&str; 3] = [
        "client_max_body_size 0;",
        "proxy_request_buffering off;",
        "proxy_max_temp_file_size 0;",
    ];

    #[test]
    fn nginx_large_body_config_streams_bodies_without_a_limit() {
        for name in ["get-1m", "get-64m", "post-1m", "post-64m"] {
            let p = params(&[1], None).for_scenario(scenario(name));
            assert!(p.large_body && p.connections == 10, "{name}");
            let c = nginx_config(&p);
            assert!(!c.contains('@'), "{c}");
            // In the proxied location.
            let loc = &c[c.find("location / {").unwrap()..];
            for line in LARGE_BODY_LINES {
                assert!(
                    loc.contains(&format!("            {line}\n")),
                    "{name}: missing {line}:\n{c}"
                );
            }
            // The rest as in every scenario.
            assert!(c.contains("client_body_buffer_size 64k;"));
            assert!(c.contains("keepalive 256;"));
            assert!(c.contains("worker_connections 8192;"));
        }
        // Every other scenario has none of it.
        for sc in crate::scenarios::ALL.iter().filter(|s| !s.large_body()) {
            let c = nginx_config(&params(&[1], None).for_scenario(sc));
            for line in LARGE_BODY_LINES {
                let key = line.split(' ').next().unwrap();
                assert!(!c.contains(key), "{}: {key}:\n{c}", sc.name);
            }
        }
        // HAProxy and ringway need nothing for them.
        let big = params(&[1], None).for_scenario(scenario("post-64m"));
        let small = params(&[1], None).for_scenario(scenario("post-16k"));
        assert_eq!(haproxy_config(&big), haproxy_config(&small));
        assert_eq!(ringway_config(&big), ringway_config(&small));
    }

    /// Only conns-9900 needs more than the reference's limits; every other
    /// scenario keeps them (the generated files are as before).
    #[test]
    fn connection_limits_follow_the_connection_count_only_when_needed() {
        for sc in crate::scenarios::ALL
            .iter()
            .filter(|s| s.name != "conns-9900")
        {
            let p = params(&[1], None).for_scenario(sc);
            let n = nginx_config(&p);
            assert!(
                n.contains("worker_rlimit_nofile 16384;\nevents { worker_connections 8192; multi_accept on; }\n"),
                "{}:\n{n}",
                sc.name
            );
            let h = haproxy_config(&p);
            assert!(h.contains("\n    maxconn 8000\n"), "{}:\n{h}", sc.name);
            assert_eq!(
                h.matches(" maxconn 4000").count(),
                p.origins.len(),
                "{}:\n{h}",
                sc.name
            );
        }
        assert_eq!(nginx_worker_connections(1000), 8192);
        assert_eq!(nginx_worker_rlimit_nofile(1000), 16384);
        assert_eq!(haproxy_maxconn(1000), 8000);
        assert_eq!(haproxy_server_maxconn(1000), 4000);
    }

    #[test]
    fn conns_9900_fits_every_contender_under_the_descriptor_limit() {
        let p = params(&[1], None).for_scenario(scenario("conns-9900"));
        assert_eq!((p.connections, p.pool), (9900, 9900));
        // nginx: a client and an upstream connection per load connection
        // within worker_connections, within the worker's descriptors,
        // within the container's hard limit.
        let n = nginx_config(&p);
        assert!(!n.contains('@'), "{n}");
        assert!(n.contains("worker_rlimit_nofile 20000;\n"), "{n}");
        assert!(
            n.contains("events { worker_connections 19900; multi_accept on; }"),
            "{n}"
        );
        assert!(n.contains("keepalive 9900;"), "{n}");
        assert!(nginx_worker_connections(9900) >= 2 * 9900);
        assert!(nginx_worker_rlimit_nofile(9900) >= nginx_worker_connections(9900));
        assert!(nginx_worker_rlimit_nofile(9900) <= NOFILE_LIMIT);
        // HAProxy: maxconn ≥ connections, and its start-up demand of
        // 2 × maxconn + 14 descriptors fits; 10,000 connections would not.
        let h = haproxy_config(&p);
        assert!(h.contains("\n    maxconn 9950\n"), "{h}");
        assert!(
            h.contains("    server s1 127.0.0.1:28080 maxconn 9900"),
            "{h}"
        );
        assert!(2 * haproxy_maxconn(9900) + 14 <= NOFILE_LIMIT);
        assert!(2 * haproxy_maxconn(10_000) + 14 > NOFILE_LIMIT);
        // ringway: one worker holds them all (max_connections_per_worker's
        // default), every upstream connection can stay pooled, and both
        // sides fit the descriptors.
        let r = ringway_config(&p);
        let cfg = ringway::config::Config::parse(&r, None).unwrap_or_else(|e| panic!("{e}\n{r}"));
        assert!(cfg.runtime.max_connections_per_worker >= 9900);
        assert!(r.contains("max_idle_per_endpoint = 9900"), "{r}");
        assert!(descriptors_needed(9900) <= NOFILE_LIMIT);
        // HTTP/2: connections × streams in flight (1,000), reference limits.
        let h2 = params(&[1], None).for_scenario(scenario("h2c-streams"));
        assert_eq!((h2.connections, h2.pool), (1000, 1000));
    }

    #[test]
    fn plain_configs_have_no_failover() {
        let n = code(nginx_config(&params(&[1], None)));
        assert!(!n.contains("proxy_next_upstream"), "{n}");
        assert!(!n.contains("max_fails"), "{n}");
        assert!(n.contains("        server 127.0.0.1:28080;\n"), "{n}");
        let h = code(haproxy_config(&params(&[1], None)));
        assert!(!h.contains("retry-on") && !h.contains("observe"), "{h}");
        assert!(!h.contains(" check"), "{h}");
        let r = code(ringway_config(&params(&[1], None)));
        assert!(
            !r.contains("retries") && !r.contains("outlier_detection"),
            "{r}"
        );
        assert!(r.contains("endpoints = [\"127.0.0.1:28080\"]"), "{r}");
    }

    #[test]
    fn nginx_fault_config_retries_on_503_over_three_servers() {
        let g = group();
        let c = nginx_config(&fault_params(&g));
        assert!(!c.contains('@'), "{c}");
        for o in &g {
            let line = format!("server {o} max_fails=5 fail_timeout=10s;");
            assert_eq!(c.matches(&line).count(), 1, "missing {line}:\n{c}");
        }
        assert_eq!(c.matches("        server ").count(), 3, "{c}");
        // 503 counts as a failure (max_fails) only when listed here.
        assert!(
            c.contains("proxy_next_upstream error timeout http_502 http_503 http_504;"),
            "{c}"
        );
        assert!(c.contains("proxy_next_upstream_tries 3;"), "{c}");
        // Retries live in the proxied location, the pool in the upstream.
        let loc = &c[c.find("location / {").unwrap()..];
        assert!(loc.contains("proxy_next_upstream "));
        assert!(c.contains("keepalive 256;"));
    }

    #[test]
    fn haproxy_fault_config_retries_and_observes_three_servers() {
        let g = group();
        let c = haproxy_config(&fault_params(&g));
        assert!(!c.contains('@'), "{c}");
        let be = &c[c.find("backend be").unwrap()..];
        for line in [
            "    balance roundrobin\n",
            "    retries 2\n",
            "    retry-on 502 503 504 conn-failure empty-response response-timeout\n",
            "    option redispatch 1\n",
        ] {
            assert!(be.contains(line), "missing {line:?}:\n{c}");
        }
        for (i, o) in g.iter().enumerate() {
            let line = format!(
                "    server s{} {o} maxconn 4000 check inter 10s rise 1 fall 1 observe layer7 error-limit 5 on-error mark-down",
                i + 1
            );
            assert!(be.contains(&line), "missing {line}:\n{c}");
        }
        assert_eq!(be.matches("    server ").count(), 3);
        assert!(c.contains("http-reuse always"));
    }

    #[test]
    fn ringway_fault_config_retries_and_ejects() {
        let g = group();
        let c = ringway_config(&fault_params(&g));
        assert!(!c.contains('@'), "{c}");
        let cfg = ringway::config::Config::parse(&c, None).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert_eq!(cfg.clusters.len(), 1);
        assert_eq!(cfg.clusters[0].endpoints.len(), 3, "{c}");
        assert!(c.contains(
            "endpoints = [\"127.0.0.1:28090\", \"127.0.0.1:28091\", \"127.0.0.1:28092\"]"
        ));
        assert!(c.contains("retries = { attempts = 2 }"), "{c}");
        let od = "outlier_detection = { consecutive_5xx = 5, consecutive_gateway_errors = 5, base_ejection_time = \"10s\", max_ejection_percent = 34 }";
        assert!(c.contains(od), "{c}");
        // The keys sit in the right tables: retries on the route, outlier
        // detection on the cluster.
        let route = &c[c.find("[[route]]").unwrap()..c.find("[[cluster]]").unwrap()];
        assert!(route.contains("retries ="));
        let cluster = &c[c.find("[[cluster]]").unwrap()..];
        assert!(cluster.contains("outlier_detection ="));
    }

    #[test]
    fn origins_of_the_fault_scenario() {
        let sc = crate::scenarios::ALL
            .iter()
            .find(|s| s.name == "fault-503")
            .unwrap();
        let layout = Layout::new(
            crate::placement::Placement::A,
            &crate::placement::Sides::split(&[0, 1]),
            1,
        );
        let args: Vec<Vec<String>> = (0..sc.origins())
            .map(|i| origin_args(sc, &layout, i))
            .collect();
        assert_eq!(args.len(), 3);
        let failing: Vec<usize> = (0..3)
            .filter(|&i| args[i].iter().any(|a| a == "--fail-fraction"))
            .collect();
        assert_eq!(failing, vec![1]);
        let a = args[1].join(" ");
        assert!(a.ends_with("--fail-fraction 0.5 --fail-status 503"), "{a}");
        assert!(
            a.starts_with("serve --listen 127.0.0.1:0 --workers 1 --cores 0 --body-size 2"),
            "{a}"
        );
    }

    /// The generated files pass nginx's and haproxy's own config checks (when
    /// they are installed; otherwise the test says so and passes).
    #[test]
    fn peer_configs_pass_their_own_checks() {
        let dir =
            std::env::temp_dir().join(format!("ringway-bench-peercheck-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let t = crate::tls::mint(&dir).unwrap();
        let m = crate::tls::mint_mtls(&dir).unwrap();
        let g = group();
        let fault = ConfigParams {
            worker_cores: &[0],
            ..fault_params(&g)
        };
        let mtls = ConfigParams {
            client_ca: Some(&m.ca),
            ..params(&[0], Some(&m.server))
        };
        let h2c = ConfigParams {
            h2: true,
            ..params(&[0], None)
        };
        let h2tls = ConfigParams {
            h2: true,
            ..params(&[0], Some(&t))
        };
        let large = params(&[0], None).for_scenario(scenario("post-64m"));
        let conns = params(&[0], None).for_scenario(scenario("conns-9900"));
        for p in [
            params(&[0], None),
            params(&[0], Some(&t)),
            fault,
            mtls,
            h2c,
            h2tls,
            large,
            conns,
        ] {
            if let Some(nginx) = find_binary("nginx") {
                let conf = dir.join("nginx.conf");
                std::fs::write(&conf, nginx_config(&p)).unwrap();
                let mut c = Command::new(nginx);
                c.arg("-t")
                    .arg("-p")
                    .arg(format!("{}/", dir.display()))
                    .arg("-c")
                    .arg(&conf)
                    .arg("-e")
                    .arg(dir.join("err.log"));
                let (code, out) = run_capture(&mut c, Duration::from_secs(20)).unwrap();
                assert_eq!(code, 0, "nginx -t: {out}");
            } else {
                eprintln!("nginx not installed: config check skipped");
            }
            if let Some(haproxy) = find_binary("haproxy") {
                let cfg = dir.join("haproxy.cfg");
                std::fs::write(&cfg, haproxy_config(&p)).unwrap();
                let mut c = Command::new(haproxy);
                c.arg("-c").arg("-f").arg(&cfg);
                let (code, out) = run_capture(&mut c, Duration::from_secs(20)).unwrap();
                assert_eq!(code, 0, "haproxy -c: {out}");
            } else {
                eprintln!("haproxy not installed: config check skipped");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nginx_h2_listens_with_http2() {
        let c = nginx_config(&h2_params(None));
        assert!(!c.contains('@'), "{c}");
        assert!(
            c.contains("listen 127.0.0.1:28081 backlog=4096 http2;"),
            "{c}"
        );
        // Upstream stays HTTP/1.1 keep-alive; h2 connections are not cut
        // after 1000 requests.
        for line in [
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "keepalive 256;",
            "keepalive_requests 10000000;",
        ] {
            assert!(c.contains(line), "missing {line}:\n{c}");
        }
        let t = certs();
        let c = nginx_config(&h2_params(Some(&t)));
        assert!(
            c.contains("listen 127.0.0.1:28081 backlog=4096 ssl http2;"),
            "{c}"
        );
        assert!(c.contains("ssl_certificate /r/c.pem;"));
        // HTTP/1.1 scenarios do not get it.
        assert!(!code(nginx_config(&params(&[1], Some(&t)))).contains("http2"));
        assert!(!code(nginx_config(&params(&[1], None))).contains("http2"));
    }

    #[test]
    fn haproxy_h2_binds_h2c_or_alpn_h2() {
        let c = haproxy_config(&h2_params(None));
        assert!(!c.contains('@'), "{c}");
        assert!(c.contains("bind 127.0.0.1:28081 proto h2\n"), "{c}");
        assert!(c.contains("server s1 127.0.0.1:28080 maxconn 4000"));
        assert!(c.contains("http-reuse always"));
        let t = certs();
        let c = haproxy_config(&h2_params(Some(&t)));
        assert!(
            c.contains("bind 127.0.0.1:28081 ssl crt /r/ck.pem alpn h2,http/1.1\n"),
            "{c}"
        );
        assert!(!code(c).contains("proto h2"));
        assert!(!code(haproxy_config(&params(&[1], None))).contains("h2"));
    }

    #[test]
    fn ringway_h2_listener_protocols() {
        let c = ringway_config(&h2_params(None));
        assert!(!c.contains('@'), "{c}");
        let cfg = ringway::config::Config::parse(&c, None).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert_eq!(cfg.listeners.len(), 1);
        let v: toml::Value = toml::from_str(&c).unwrap();
        let protos = |v: &toml::Value| -> Vec<String> {
            v["listener"][0]["protocols"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(protos(&v), ["http/1.1", "h2"]);
        // TLS: ALPN prefers h2; parsed with a real certificate.
        let dir = std::env::temp_dir().join(format!("ringway-bench-h2cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = crate::tls::mint(&dir).unwrap();
        let c = ringway_config(&h2_params(Some(&t)));
        ringway::config::Config::parse(&c, None).unwrap_or_else(|e| panic!("{e}\n{c}"));
        let v: toml::Value = toml::from_str(&c).unwrap();
        assert_eq!(protos(&v), ["h2", "http/1.1"]);
        assert!(v["listener"][0]["tls"]["cert"].is_str());
        std::fs::remove_dir_all(&dir).unwrap();
        // HTTP/1.1 scenarios: ringway's default (no protocols key).
        assert!(!code(ringway_config(&params(&[1], None))).contains("protocols"));
    }

    #[test]
    fn pools() {
        assert_eq!(pool_size(50), 256);
        assert_eq!(pool_size(1000), 1000);
    }

    #[test]
    fn probe_reads_status() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        });
        assert_eq!(probe_get(addr).unwrap(), 204);
        t.join().unwrap();
    }
}
