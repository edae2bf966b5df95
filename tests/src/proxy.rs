//! Running the ringway binary: `ringway run -c FILE` as a guarded child
//! process (killed on drop), and one-shot commands (`check`, `--version`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::dir::TestDir;

/// How long `ringway run` may take to print `ringway: ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

static STARTS: AtomicUsize = AtomicUsize::new(0);

/// The ringway binary: `$RINGWAY_BIN`, else `ringway` next to the
/// directory holding this test executable (`target/debug/deps/..`).
pub fn ringway_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RINGWAY_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "RINGWAY_BIN={} is not a file", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut candidates = Vec::new();
    if let Some(deps) = exe.parent() {
        if let Some(profile) = deps.parent() {
            candidates.push(profile.join("ringway"));
        }
        candidates.push(deps.join("ringway"));
    }
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "ringway binary not found (looked at {candidates:?}; set RINGWAY_BIN): build it first: cargo build -p ringway"
    );
}

/// The `ringload` binary next to the ringway binary (built by
/// `cargo build --workspace --bins`), if it is there.
pub fn ringload_bin() -> Option<PathBuf> {
    let p = ringway_bin().with_file_name("ringload");
    p.is_file().then_some(p)
}

/// The result of a one-shot ringway command.
#[derive(Debug)]
pub struct CmdOutput {
    /// None when it was killed for running past its timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
    /// stdout followed by stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn read_all_thread<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// `ringway check -c NAME` on `toml` written into `dir` (as `name`).
pub fn check_config(dir: &TestDir, name: &str, toml: &str) -> CmdOutput {
    let path = dir.write(name, toml);
    run_ringway(
        &["check", "-c", path.to_str().unwrap()],
        Some(dir.path()),
        Duration::from_secs(10),
    )
}

/// Runs `ringway ARGS` (cwd `cwd` if given), killing it after `timeout`.
pub fn run_ringway(args: &[&str], cwd: Option<&Path>, timeout: Duration) -> CmdOutput {
    let mut cmd = Command::new(ringway_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn ringway");
    let out = read_all_thread(child.stdout.take().unwrap());
    let err = read_all_thread(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CmdOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// One `ringway: listener <name> on <addr> (plain|tls)` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: bool,
}

/// Parses a listener line; None for other lines.
pub fn parse_listener_line(line: &str) -> Option<ListenerInfo> {
    let rest = line.strip_prefix("ringway: listener ")?;
    let (name, rest) = rest.split_once(" on ")?;
    let (addr, kind) = rest.split_once(' ')?;
    let tls = match kind {
        "(plain)" => false,
        "(tls)" => true,
        _ => return None,
    };
    Some(ListenerInfo {
        name: name.to_string(),
        addr: addr.parse().ok()?,
        tls,
    })
}

/// Parses `ringway: admin on <addr>`; None for other lines.
pub fn parse_admin_line(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("ringway: admin on ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident memory of a process, from /proc/PID/status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// VmRSS in KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS) in KiB.
    pub hwm_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid`.
pub fn memory_of(pid: u32) -> std::io::Result<Memory> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    })
}

/// A running `ringway run`; SIGKILLed on drop if still running. When the
/// test is panicking, its stdout and the tail of its stderr are printed.
pub struct Proxy {
    child: Child,
    exited: Option<ExitStatus>,
    pub config_path: PathBuf,
    stderr_path: PathBuf,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    listeners: Vec<ListenerInfo>,
}

impl Proxy {
    /// Writes `config` to the test dir and starts the proxy (RUST_LOG=info).
    pub fn start(dir: &TestDir, config: &Config) -> Proxy {
        Proxy::start_toml(dir, &config.to_toml(), &[])
    }

    /// Starts the proxy with a raw TOML config and extra environment.
    pub fn start_toml(dir: &TestDir, toml: &str, env: &[(&str, &str)]) -> Proxy {
        match Proxy::try_start(dir, toml, env) {
            Ok(p) => p,
            Err(e) => panic!("ringway did not start: {e}\n--- config ---\n{toml}"),
        }
    }

    /// Starts the proxy; Err (with its output) if it exits or is not ready in time.
    pub fn try_start(dir: &TestDir, toml: &str, env: &[(&str, &str)]) -> Result<Proxy, String> {
        Proxy::try_start_via(dir, toml, env, &[])
    }

    /// Like [`Proxy::try_start`], with the ringway command line run through
    /// `launcher` (e.g. `["ip", "netns", "exec", "NS"]`): the launcher must
    /// exec ringway in its own process, so that the child is ringway itself
    /// (killed on drop).
    pub fn try_start_via(
        dir: &TestDir,
        toml: &str,
        env: &[(&str, &str)],
        launcher: &[String],
    ) -> Result<Proxy, String> {
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let config_path = dir.write(&format!("ringway-{n}.toml"), toml);
        let stderr_path = dir.join(&format!("ringway-{n}.stderr"));
        let stderr_file = File::create(&stderr_path).expect("create stderr file");
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(ringway_bin());
                c
            }
            None => Command::new(ringway_bin()),
        };
        cmd.arg("run")
            .arg("-c")
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file));
        if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", ringway_bin().display()))?;
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut proxy = Proxy {
            child,
            exited: None,
            config_path,
            stderr_path,
            stdout_lines: lines,
            listeners: Vec::new(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(l) = parse_listener_line(&line) {
                        proxy.listeners.push(l);
                    }
                    if line.trim_end() == "ringway: ready" {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no `ringway: ready` within {READY_TIMEOUT:?}\n{}",
                        proxy.output_report()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = proxy.wait_exit(Duration::from_secs(5));
                    return Err(format!(
                        "stdout closed before `ringway: ready` (exit status {status:?})\n{}",
                        proxy.output_report()
                    ));
                }
            }
        }
        if proxy.listeners.is_empty() {
            return Err(format!(
                "`ringway: ready` but no `ringway: listener` line\n{}",
                proxy.output_report()
            ));
        }
        Ok(proxy)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn listeners(&self) -> &[ListenerInfo] {
        &self.listeners
    }

    pub fn listener(&self, name: &str) -> &ListenerInfo {
        self.listeners
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no listener {name:?} in {:?}", self.listeners))
    }

    /// The bound address of listener `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listener(name).addr
    }

    /// The admin listener's address, from the `ringway: admin on ADDR`
    /// line (waits up to 5 s for it; panics with the output when missing).
    pub fn admin_addr(&self) -> SocketAddr {
        self.try_admin_addr(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no `ringway: admin on` line\n{}", self.output_report()))
    }

    /// The admin address if a `ringway: admin on ADDR` line appears within
    /// `timeout`.
    pub fn try_admin_addr(&self, timeout: Duration) -> Option<SocketAddr> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .stdout_lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| parse_admin_line(l.trim_end()));
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout_lines.lock().unwrap().join("\n")
    }

    /// Waits until a stdout line contains `needle`; returns that line.
    pub fn wait_stdout_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .stdout_lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The newest `ringway: listener NAME ...` line printed so far (a
    /// reload prints the listeners it binds).
    pub fn latest_listener(&self, name: &str) -> Option<ListenerInfo> {
        self.stdout_lines
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter_map(|l| parse_listener_line(l.trim_end()))
            .find(|l| l.name == name)
    }

    /// Replaces the config file the proxy was started with.
    pub fn rewrite_config(&self, config: &Config) {
        std::fs::write(&self.config_path, config.to_toml()).expect("rewrite config");
    }

    /// Replaces the config file with raw TOML.
    pub fn rewrite_config_toml(&self, toml: &str) {
        std::fs::write(&self.config_path, toml).expect("rewrite config");
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr_contains(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.child.id());
    }

    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    pub fn sigint(&self) {
        self.signal(libc::SIGINT);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exited = Some(s);
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.exited.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// VmRSS / VmHWM of the proxy process.
    pub fn memory(&self) -> Memory {
        memory_of(self.child.id()).expect("read /proc/PID/status")
    }

    /// stdout and the last 150 lines of stderr, for failure messages.
    pub fn output_report(&self) -> String {
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().collect();
        let skip = lines.len().saturating_sub(150);
        format!(
            "--- ringway stdout ---\n{}\n--- ringway stderr ({}, last {} of {} lines) ---\n{}",
            self.stdout(),
            self.stderr_path.display(),
            lines.len() - skip,
            lines.len(),
            lines[skip..].join("\n")
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.output_report());
        }
    }
}
