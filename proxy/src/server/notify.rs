//! systemd's service notifications (`sd_notify(3)`), written to the datagram
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! socket) without libsystemd. Nothing is sent when the variable is unset.
//!
//! ```text
//! every worker up, admin bound      READY=1, STATUS=…
//! a reload starts                   RELOADING=1, MONOTONIC_USEC=…
//! the reload is published           READY=1, STATUS=… (also when refused)
//! SIGTERM / SIGINT: drain begins    STOPPING=1, STATUS=draining
//! every WATCHDOG_USEC / 2           WATCHDOG=1, only while every worker's
//!                                   event loop is turning (its beat moved)
//! ```
//!
//! The watchdog ping is sent by its own thread, but only when each worker
//! has ticked since the last ping: a worker stuck in a busy loop or a
//! blocking call stops the pings, and systemd restarts the service after
//! `WatchdogSec` (the point of a watchdog; a thread that pinged blindly
//! would hide exactly that). A worker that stopped because the process is
//! draining no longer needs to beat.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where notifications go, read from the environment once.
struct Target {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

static TARGET: OnceLock<Option<Target>> = OnceLock::new();

fn target() -> Option<&'static Target> {
    TARGET
        .get_or_init(|| {
            let name = std::env::var_os("NOTIFY_SOCKET")?;
            match open(&name) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("NOTIFY_SOCKET {name:?}: {e}; no systemd notifications");
                    None
                }
            }
        })
        .as_ref()
}

fn open(name: &std::ffi::OsStr) -> std::io::Result<Target> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    let addr = match bytes.first() {
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])?
        }
        Some(b'/') => std::os::unix::net::SocketAddr::from_pathname(name)?,
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not an absolute path or @abstract name",
            ))
        }
    };
    Ok(Target {
        socket: UnixDatagram::unbound()?,
        addr,
    })
}

/// Send one notification (lines `KEY=value`); errors are logged, never fatal.
pub fn send(message: &str) {
    if let Some(t) = target() {
        if let Err(e) = t.socket.send_to_addr(message.as_bytes(), &t.addr) {
            tracing::warn!("systemd notification failed: {e}");
        }
    }
}

/// Whether a notification socket is configured.
pub fn enabled() -> bool {
    target().is_some()
}

/// Every worker is serving.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={}", one_line(status)));
}

/// A reload starts (systemd measures it from `MONOTONIC_USEC`).
pub fn reloading() {
    send(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
        monotonic_usec()
    ));
}

/// The drain begins.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=draining connections");
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares with.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`, for this
/// process when `WATCHDOG_PID` names one).
pub fn watchdog_interval() -> Option<Duration> {
    if !enabled() {
        return None;
    }
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Start the watchdog thread when systemd asked for pings: every half
/// interval, `WATCHDOG=1` if every worker's beat moved (or it has stopped).
pub fn spawn_watchdog(
    beats: Arc<[AtomicU64]>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
    let Some(interval) = watchdog_interval() else {
        return Ok(None);
    };
    let every = (interval / 2).max(Duration::from_millis(10));
    std::thread::Builder::new()
        .name("ringway-sd-watchdog".into())
        .spawn(move || {
            let mut last: Vec<u64> = beats.iter().map(|b| b.load(Ordering::Acquire)).collect();
            let mut next = std::time::Instant::now();
            while !stop.load(Ordering::Acquire) {
                if std::time::Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(5).min(every));
                    continue;
                }
                next += every;
                let now: Vec<u64> = beats.iter().map(|b| b.load(Ordering::Acquire)).collect();
                let stuck = stuck(&now, &last);
                if stuck.is_empty() {
                    send("WATCHDOG=1");
                } else {
                    tracing::error!(
                        "worker(s) {stuck:?} made no progress for {every:?}: no watchdog ping"
                    );
                }
                last = now;
            }
        })
        .map(Some)
}

/// A worker's beat once it has returned (it no longer needs to tick).
pub const STOPPED: u64 = u64::MAX;

/// The workers whose beat did not move between two looks (and that have
/// not stopped).
fn stuck(now: &[u64], last: &[u64]) -> Vec<usize> {
    now.iter()
        .zip(last)
        .enumerate()
        .filter(|(_, (n, l))| n == l && **n != STOPPED)
        .map(|(w, _)| w)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names() {
        assert!(open(std::ffi::OsStr::new("relative/path")).is_err());
        assert!(open(std::ffi::OsStr::new("")).is_err());
        assert!(open(std::ffi::OsStr::new("@ringway-test")).is_ok());
        assert!(open(std::ffi::OsStr::new("/run/systemd/notify")).is_ok());
    }

    #[test]
    fn a_worker_whose_beat_stands_still_is_stuck() {
        assert!(stuck(&[5, 9], &[4, 8]).is_empty());
        assert_eq!(stuck(&[5, 8], &[4, 8]), vec![1]);
        // A stopped worker (draining is over for it) is not stuck.
        assert!(stuck(&[STOPPED, 9], &[STOPPED, 8]).is_empty());
    }

    #[test]
    fn status_is_one_short_line() {
        assert_eq!(one_line("a\nb"), "a");
        assert_eq!(one_line(&"x".repeat(500)).len(), 200);
        assert!(monotonic_usec() > 0);
    }
}
