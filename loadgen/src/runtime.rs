//! Worker threads: pinning, building each worker's monoio runtime (io_uring
//! with `SINGLE_ISSUER | COOP_TASKRUN`, then io_uring without flags, then
//! the epoll "legacy" driver) and the Ctrl-C flag.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// `--driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriverChoice {
    /// io_uring if the kernel allows it, else epoll.
    Auto,
    /// io_uring or fail.
    #[value(name = "io_uring", alias = "io-uring", alias = "uring")]
    IoUring,
    /// epoll.
    #[value(alias = "epoll")]
    Legacy,
}

/// The driver a worker ended up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverUsed {
    IoUring { flags: bool },
    Legacy,
}

impl std::fmt::Display for DriverUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverUsed::IoUring { flags: true } => {
                f.write_str("io_uring (single_issuer, coop_taskrun)")
            }
            DriverUsed::IoUring { flags: false } => f.write_str("io_uring"),
            DriverUsed::Legacy => f.write_str("epoll (legacy)"),
        }
    }
}

/// Pin the calling thread to `core` (best effort: a missing core or a
/// restricted cpuset just leaves the thread unpinned).
pub fn pin_to(core: usize) -> bool {
    core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == core))
        .map(core_affinity::set_for_current)
        .unwrap_or(false)
}

/// The core worker `index` runs on: from `--cores` (round robin) or the
/// `index`-th of the cores this process may run on (round robin).
pub fn core_for(index: usize, cores: Option<&[usize]>) -> usize {
    match cores {
        Some(list) if !list.is_empty() => list[index % list.len()],
        _ => {
            // The cores this process may use (taskset narrows them).
            let ids = core_affinity::get_core_ids().unwrap_or_default();
            if ids.is_empty() {
                index
            } else {
                ids[index % ids.len()].id
            }
        }
    }
}

/// Build the runtime for this thread and run `make()`'s future on it.
/// `on_start` learns the driver before the future starts (or why none could
/// start, in which case `None` is returned).
pub fn run_on_driver<F, Fut, T>(
    choice: DriverChoice,
    entries: u32,
    make: F,
    on_start: impl FnOnce(Result<DriverUsed, String>),
) -> Option<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let mut last_err = None;
    if choice != DriverChoice::Legacy {
        for flags in [true, false] {
            let mut urb = io_uring::IoUring::builder();
            if flags {
                urb.setup_single_issuer();
                urb.setup_coop_taskrun();
            }
            let built = RuntimeBuilder::<IoUringDriver>::new()
                .enable_timer()
                .with_entries(entries)
                .uring_builder(urb)
                .build();
            match built {
                Ok(mut rt) => {
                    on_start(Ok(DriverUsed::IoUring { flags }));
                    return Some(rt.block_on(make()));
                }
                Err(e) => last_err = Some(e),
            }
        }
        if choice == DriverChoice::IoUring {
            on_start(Err(format!(
                "--driver io_uring: io_uring is unavailable: {}",
                last_err.map(|e| e.to_string()).unwrap_or_default()
            )));
            return None;
        }
    }
    match RuntimeBuilder::<LegacyDriver>::new().enable_timer().build() {
        Ok(mut rt) => {
            on_start(Ok(DriverUsed::Legacy));
            Some(rt.block_on(make()))
        }
        Err(e) => {
            on_start(Err(format!("cannot start the epoll driver: {e}")));
            None
        }
    }
}

/// One pinned worker thread per listening socket (`ringload serve` and
/// `ringload relay`): worker `index` runs on `core_for(index, cores)`, on
/// its own runtime, the future `body(index, socket)` makes (with the socket
/// turned into monoio's listener). Returns the threads and each worker's
/// driver once every worker has started, or the first one's error.
pub fn start_workers<F, Fut>(
    name: &str,
    sockets: Vec<std::net::TcpListener>,
    cores: Option<&[usize]>,
    (driver, entries): (DriverChoice, u32),
    body: F,
) -> Result<(Vec<std::thread::JoinHandle<()>>, Vec<DriverUsed>), String>
where
    F: Fn(usize, monoio::net::TcpListener) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<DriverUsed, String>>();
    let mut threads = Vec::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        let ready_tx = ready_tx.clone();
        let body = body.clone();
        let core = core_for(index, cores);
        let label = format!("ringload {name}");
        let thread = std::thread::Builder::new()
            .name(format!("ringload-{name}-{index}"))
            .spawn(move || {
                pin_to(core);
                run_on_driver(
                    driver,
                    entries,
                    move || async move {
                        match monoio::net::TcpListener::from_std(socket) {
                            Ok(listener) => body(index, listener).await,
                            Err(e) => eprintln!("{label}: worker {index}: {e}"),
                        }
                    },
                    |used| {
                        let _ = ready_tx.send(used);
                    },
                );
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        threads.push(thread);
    }
    drop(ready_tx);
    let mut drivers = Vec::new();
    for _ in 0..threads.len() {
        match ready_rx.recv() {
            Ok(Ok(d)) => drivers.push(d),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a worker thread died while starting".into()),
        }
    }
    Ok((threads, drivers))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Make Ctrl-C set a flag instead of killing the process (`run` stops
/// early and still reports). A second Ctrl-C kills as usual.
pub fn catch_ctrl_c() {
    extern "C" fn second(_: libc::c_int) {
        // SAFETY: restoring the default action and re-raising are
        // async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::raise(libc::SIGINT);
        }
    }
    extern "C" fn first(sig: libc::c_int) {
        on_sigint(sig);
        // SAFETY: installing a handler is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, second as *const () as libc::sighandler_t);
        }
    }
    // SAFETY: the handler only touches an atomic and calls signal(2).
    unsafe {
        libc::signal(libc::SIGINT, first as *const () as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_round_robin() {
        assert_eq!(core_for(0, Some(&[3, 5])), 3);
        assert_eq!(core_for(1, Some(&[3, 5])), 5);
        assert_eq!(core_for(2, Some(&[3, 5])), 3);
        assert!(core_for(7, None) < 4096);
    }

    #[test]
    fn every_driver_choice_runs_a_future() {
        for choice in [DriverChoice::Auto, DriverChoice::Legacy] {
            let mut used = None;
            let out = run_on_driver(choice, 64, || async { 41 + 1 }, |d| used = Some(d));
            assert_eq!(out, Some(42));
            let used = used.unwrap().unwrap();
            if choice == DriverChoice::Legacy {
                assert_eq!(used, DriverUsed::Legacy);
            }
        }
    }
}
