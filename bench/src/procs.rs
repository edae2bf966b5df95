//! Child processes: spawned pinned, each in its own process group, registered
//! so that every one of them is killed at the end — on success, on error, on
//! Ctrl-C/SIGTERM (signal thread) and on panic (hook; release builds abort).

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups still alive (leader pid = group id).
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<i32>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kill every registered process group (SIGTERM, a short grace, SIGKILL).
pub fn kill_all() {
    let groups: Vec<i32> = live().drain(..).collect();
    for &g in &groups {
        // SAFETY: plain syscalls on ids we spawned.
        unsafe { libc::kill(-g, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for &g in &groups {
        while Instant::now() < deadline && reap(g).is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        unsafe { libc::kill(-g, libc::SIGKILL) };
        reap(g);
    }
}

/// Install the Ctrl-C/SIGTERM thread and the panic hook that call [`kill_all`].
pub fn install_cleanup_handlers() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_all();
        prev(info);
    }));
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                eprintln!("ringway-bench: signal {sig}: stopping every process it started");
                kill_all();
                std::process::exit(128 + sig);
            }
        });
    }
}

/// Non-blocking reap of `pid`: `Some((status, rusage))` when it has exited.
fn reap(pid: i32) -> Option<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
    if r == pid {
        Some((status, ru))
    } else if r < 0 {
        // ECHILD: already reaped (or not ours).
        Some((-1, ru))
    } else {
        None
    }
}

/// Pin the calling process to `cores` (empty: leave as is).
pub fn set_affinity(pid: i32, cores: &[usize]) -> io::Result<()> {
    if cores.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data; CPU_SET bounds are checked by the macro.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How to start a child.
pub struct Spawn<'a> {
    pub name: &'a str,
    pub cmd: Command,
    pub cores: Vec<usize>,
    /// stdout and stderr go to `<log_dir>/<log_name>.out` / `.err`.
    pub log_dir: &'a Path,
    pub log_name: String,
}

/// A running child in its own process group; killed (with its group) on drop.
pub struct Child {
    pub pid: i32,
    pub stdout_path: std::path::PathBuf,
    pub stderr_path: std::path::PathBuf,
    exited: Option<(i32, libc::rusage)>,
}

/// How a waited-for child ended.
pub struct Exit {
    /// Exit code, or 128+signal.
    pub code: i32,
    /// User + system CPU of the child (all threads), microseconds.
    pub cpu_us: f64,
    pub timed_out: bool,
}

impl Spawn<'_> {
    pub fn start(mut self) -> io::Result<Child> {
        let stdout_path = self.log_dir.join(format!("{}.out", self.log_name));
        let stderr_path = self.log_dir.join(format!("{}.err", self.log_name));
        let out = File::create(&stdout_path)?;
        let err = File::create(&stderr_path)?;
        let cores = self.cores.clone();
        self.cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: only async-signal-safe calls (prctl, sched_setaffinity)
        // between fork and exec.
        unsafe {
            self.cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                set_affinity(0, &cores)
            });
        }
        let mut live = live();
        let child = self
            .cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", self.name)))?;
        let pid = child.id() as i32;
        live.push(pid);
        drop(live);
        // `std::process::Child` does not wait on drop; we reap with wait4.
        drop(child);
        Ok(Child {
            pid,
            stdout_path,
            stderr_path,
            exited: None,
        })
    }
}

impl Child {
    /// Has it exited? (Reaps it if so.)
    pub fn try_exit(&mut self) -> Option<i32> {
        if self.exited.is_none() {
            self.exited = reap(self.pid);
        }
        self.exited.map(|(st, _)| decode_status(st))
    }

    /// Wait until it exits or `timeout` passes (then kill it); `tick` runs
    /// every `tick_every` meanwhile (samplers).
    pub fn wait_timeout(
        &mut self,
        timeout: Duration,
        tick_every: Duration,
        mut tick: impl FnMut(),
    ) -> Exit {
        let start = Instant::now();
        let mut next_tick = start + tick_every;
        let mut timed_out = false;
        while self.try_exit().is_none() {
            let now = Instant::now();
            if now >= start + timeout {
                timed_out = true;
                self.kill();
                break;
            }
            if now >= next_tick {
                tick();
                next_tick = now + tick_every;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (st, ru) = self.exited.unwrap_or((-1, unsafe { std::mem::zeroed() }));
        let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
        Exit {
            code: decode_status(st),
            cpu_us: tv(ru.ru_utime) + tv(ru.ru_stime),
            timed_out,
        }
    }

    /// SIGTERM the group, wait up to 3 s, then SIGKILL it.
    pub fn stop(&mut self) {
        if self.exited.is_none() {
            unsafe { libc::kill(-self.pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.try_exit().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }

    /// SIGKILL the group (stragglers too) and reap the leader.
    pub fn kill(&mut self) {
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        if self.exited.is_none() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.try_exit().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        live().retain(|&g| g != self.pid);
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr_tail(&self, lines: usize) -> String {
        let s = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let v: Vec<&str> = s.lines().collect();
        v[v.len().saturating_sub(lines)..].join(" | ")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}

fn decode_status(st: i32) -> i32 {
    if st == -1 {
        return -1;
    }
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        -1
    }
}

/// Run a short command to completion (bounded), returning (exit code, stdout+stderr).
pub fn run_capture(cmd: &mut Command, timeout: Duration) -> io::Result<(i32, String)> {
    let dir = std::env::temp_dir().join(format!("ringway-bench-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let n = CAPTURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let mut c = Spawn {
        name: &prog,
        cmd: std::mem::replace(cmd, Command::new("true")),
        cores: Vec::new(),
        log_dir: &dir,
        log_name: format!("cap{n}"),
    }
    .start()?;
    let exit = c.wait_timeout(timeout, Duration::from_secs(3600), || {});
    let mut text = std::fs::read_to_string(&c.stdout_path).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(&c.stderr_path).unwrap_or_default());
    let _ = std::fs::remove_file(&c.stdout_path);
    let _ = std::fs::remove_file(&c.stderr_path);
    drop(c);
    let _ = std::fs::remove_dir(&dir);
    if exit.timed_out {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{prog} did not finish within {timeout:?}"),
        ));
    }
    Ok((exit.code, text))
}

static CAPTURES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_and_exit_codes() {
        let (code, out) = run_capture(
            Command::new("sh").args(["-c", "echo hi; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(code, 3);
        assert!(out.contains("hi") && out.contains("err"));
    }

    #[test]
    fn timeout_kills_the_group() {
        let r = run_capture(
            Command::new("sh").args(["-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(300),
        );
        assert!(r.is_err());
        assert!(live().is_empty() || !live().iter().any(|_| false));
    }

    #[test]
    fn drop_kills_and_deregisters() {
        let dir = std::env::temp_dir();
        let c = Spawn {
            name: "sleep",
            cmd: {
                let mut c = Command::new("sleep");
                c.arg("30");
                c
            },
            cores: vec![0],
            log_dir: &dir,
            log_name: format!("ringway-bench-test-{}", std::process::id()),
        }
        .start()
        .unwrap();
        let pid = c.pid;
        assert!(live().contains(&pid));
        let p = c.stdout_path.clone();
        let e = c.stderr_path.clone();
        drop(c);
        assert!(!live().contains(&pid));
        assert!(crate::procstat::read_pid_stat(pid).is_none());
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(e);
    }
}
