//! Linux network namespaces for multi-host tests.
//!
//! A [`Topology`] is a set of hosts, one network namespace each, with `lo`
//! up and `eth0` (one end of a veth pair) holding an address of
//! `10.213.0.0/24`. The other ends of the pairs are ports of a bridge that
//! lives in a hub namespace of its own. Nothing is created in the root
//! namespace and no host has a route beyond its /24, so every packet stays
//! inside the namespaces the topology created (or on their loopback).
//!
//! Names are `rwnt-<pid>-<n>-<host>`: unique per test process, and
//! [`cleanup_stale`] removes what a crashed run (a pid no longer alive)
//! left behind. On drop every process still in the topology's namespaces is
//! killed and the namespaces are deleted (which destroys the veths and the
//! bridge), panicking or not.
//!
//! Processes run with `ip netns exec NS program ...`: `ip` enters the
//! namespace and execs the program, so the child *is* the program and
//! [`NsProcess`] kills it on drop.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Every namespace a topology creates starts with this.
pub const PREFIX: &str = "rwnt-";

/// The hosts' /24 (host i gets `.i+1`).
pub const SUBNET: [u8; 3] = [10, 213, 0];

static TOPOLOGIES: AtomicUsize = AtomicUsize::new(0);

/// Why namespace tests cannot run here (not root, no `ip`), or None.
pub fn unsupported() -> Option<String> {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (ip netns needs CAP_SYS_ADMIN)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Err(e) => Some(format!("no `ip` command (iproute2): {e}")),
        Ok(o) if !o.status.success() => Some("`ip -V` failed".into()),
        Ok(_) => None,
    }
}

/// Runs `program ARGS`; its stdout, or Err naming the command with its
/// stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program} {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS`.
pub fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args)
}

/// Kills every process in namespace `ns` (all were started by a topology
/// of these tests) and deletes it.
fn remove_namespace(ns: &str) {
    if let Ok(pids) = ip(&["netns", "pids", ns]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) with a pid found in our own namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    // Deleting the name frees the namespace once its last process is gone;
    // a killed process may take a moment to leave.
    for _ in 0..50 {
        if ip(&["netns", "del", ns]).is_ok() || !Path::new("/run/netns").join(ns).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The namespaces `ip netns list` shows.
fn namespaces() -> Vec<String> {
    ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Removes namespaces of earlier runs whose test process is gone (a run
/// killed before its drops ran).
pub fn cleanup_stale() {
    for ns in namespaces() {
        let Some(rest) = ns.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("netns: removing stale namespace {ns}");
            remove_namespace(&ns);
        }
    }
}

struct Host {
    label: String,
    ns: String,
    addr: Ipv4Addr,
}

/// Hosts on one bridge; removed on drop.
pub struct Topology {
    hub: String,
    hosts: Vec<Host>,
}

impl Topology {
    /// Creates one namespace per label, wired to a bridge in a hub
    /// namespace. Err (with what failed) when the kernel or the tools do not
    /// allow it; whatever was created is removed again.
    pub fn create(labels: &[&str]) -> Result<Topology, String> {
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            TOPOLOGIES.fetch_add(1, Ordering::Relaxed)
        );
        let hub = format!("{id}-hub");
        ip(&["netns", "add", &hub])?;
        let mut t = Topology {
            hub,
            hosts: Vec::new(),
        };
        let hub = t.hub.clone();
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, label) in labels.iter().enumerate() {
            let ns = format!("{id}-{label}");
            ip(&["netns", "add", &ns])?;
            let addr = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], i as u8 + 1);
            t.hosts.push(Host {
                label: label.to_string(),
                ns: ns.clone(),
                addr,
            });
            let port = format!("v{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(t)
    }

    fn host(&self, label: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.label == label)
            .unwrap_or_else(|| panic!("no host {label} in the topology"))
    }

    /// The namespace of host `label`.
    pub fn ns(&self, label: &str) -> &str {
        &self.host(label).ns
    }

    /// The address of host `label`'s `eth0`.
    pub fn addr(&self, label: &str) -> Ipv4Addr {
        self.host(label).addr
    }

    /// `["ip", "netns", "exec", NS]`: prefix of a command run in host `label`.
    pub fn launcher(&self, label: &str) -> Vec<String> {
        ["ip", "netns", "exec", self.ns(label)]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// `ip netns exec NS program`, arguments still to add.
    pub fn command(&self, label: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(label)]).arg(program);
        c
    }

    /// Runs `program ARGS` in host `label` to completion.
    pub fn run_in(&self, label: &str, program: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", self.ns(label), program];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `ip link set eth0 down` in host `label`: its side of the wire goes
    /// dark (the bridge's port loses carrier), nothing is answered.
    pub fn link_down(&self, label: &str) -> Result<(), String> {
        ip(&["-n", self.ns(label), "link", "set", "eth0", "down"]).map(|_| ())
    }

    /// Starts `program ARGS` in host `label` and waits (up to `timeout`)
    /// for a stdout line starting with `ready`.
    pub fn spawn(
        &self,
        label: &str,
        program: &Path,
        args: &[&str],
        ready: &str,
        timeout: Duration,
    ) -> Result<NsProcess, String> {
        let mut child = self
            .command(label, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {} in {label}: {e}", program.display()))?;
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut err = child.stderr.take().expect("stderr");
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        let mut p = NsProcess {
            label: label.to_string(),
            child,
            stderr,
        };
        let deadline = Instant::now() + timeout;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with(ready) => return Ok(p),
                Ok(_) => {}
                Err(_) => {
                    p.kill();
                    return Err(format!(
                        "{} in {label}: no `{ready}` line within {timeout:?}; stderr: {}",
                        program.display(),
                        p.stderr()
                    ));
                }
            }
        }
    }

    /// Runs `f` on a thread that has entered host `label`'s network
    /// namespace (sockets it opens belong to that namespace; the calling
    /// thread is not affected).
    pub fn within<T: Send + 'static>(
        &self,
        label: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let path = Path::new("/run/netns").join(self.ns(label));
        std::thread::spawn(move || {
            let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // SAFETY: setns(2) on a namespace file we hold open; it moves
            // only this thread, which ends after `f`.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(format!(
                    "setns {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                ));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| "thread in namespace panicked".to_string())?
    }

    /// `GET path` (Connection: close) to `addr` from inside host `label`;
    /// the response body.
    pub fn http_get(&self, label: &str, addr: SocketAddr, path: &str) -> Result<String, String> {
        let path = path.to_string();
        self.within(label, move || -> Result<String, String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .map_err(|e| e.to_string())?;
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&raw);
            Ok(text
                .split_once("\r\n\r\n")
                .map_or(String::new(), |(_, b)| b.to_string()))
        })?
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for h in &self.hosts {
            remove_namespace(&h.ns);
        }
        remove_namespace(&self.hub);
    }
}

/// A process started in a host of a topology; SIGKILLed on drop.
pub struct NsProcess {
    label: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl NsProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (a crash: no shutdown, the kernel closes its sockets) and
    /// wait for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let err = self.stderr();
            if !err.is_empty() {
                eprintln!("--- stderr of the process in {} ---\n{err}", self.label);
            }
        }
    }
}
