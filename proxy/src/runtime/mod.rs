//! Thread-per-core runtime: one pinned worker thread per core, each with its
//! own monoio runtime and io_uring ring, its own `SO_REUSEPORT` listener
//! sockets, its own upstream pools and buffers.
//!
//! # Architecture
//! The main thread builds the config, binds the listener sockets (resolving
//! port 0 once), starts the workers and then only waits for signals. Workers
//! never share mutable state: per-core state (`worker::Worker`) is `!Send`
//! (`Rc`, `Cell`, `RefCell`, `Slab`); across threads there is only the
//! immutable `Arc<Config>` and the shutdown flag, written once by the main
//! thread.
//!
//! # Shutdown
//! SIGTERM or SIGINT: the main thread sets the flag; each worker stops
//! accepting (closes its listener sockets), closes idle keep-alive
//! connections, lets in-flight requests finish (their responses carry
//! `Connection: close`) for up to `drain_timeout`, then returns. The process
//! exits 0 when every worker is done.

pub mod driver;
pub mod notify;
pub mod shutdown;
pub mod summary;
pub mod watchdog;
pub mod worker;

use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::accesslog::AccessLogSink;
use crate::admin::AdminState;
use crate::config::Config;
use crate::net::bind_group;
use crate::stats::{ring, StatsRegistry};
use driver::{run_on_driver, DriverUsed};
use shutdown::ShutdownFlag;
use worker::{worker_main, Worker};

/// Why the proxy could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("listener {name:?}: cannot bind {address}: {source}")]
    Bind {
        name: String,
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("worker {worker}: {message}")]
    Worker { worker: usize, message: String },
    #[error("signals: {0}")]
    Signals(std::io::Error),
    #[error("admin listener: cannot bind {address}: {source}")]
    Admin {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("access log: {0}")]
    AccessLog(std::io::Error),
    #[error("cannot start worker thread: {0}")]
    Spawn(std::io::Error),
}

/// The CPU each worker is pinned to.
fn pin_plan(config: &Config) -> Vec<Option<core_affinity::CoreId>> {
    let online = core_affinity::get_core_ids().unwrap_or_default();
    (0..config.runtime.workers)
        .map(|i| {
            if config.runtime.cores.is_empty() {
                if online.is_empty() {
                    None
                } else {
                    Some(online[i % online.len()])
                }
            } else {
                let cores = &config.runtime.cores;
                Some(core_affinity::CoreId {
                    id: cores[i % cores.len()],
                })
            }
        })
        .collect()
}

/// Run the proxy until SIGTERM/SIGINT and the drain that follows.
pub fn run(config: Arc<Config>) -> Result<(), RunError> {
    // Signals first, so a signal during start-up is not lost.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGUSR1]).map_err(RunError::Signals)?;
    let workers = config.runtime.workers;

    // Bind every listener before starting anything.
    let mut groups = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        let g = bind_group(l.address, workers).map_err(|source| RunError::Bind {
            name: l.name.clone(),
            address: l.address,
            source,
        })?;
        groups.push(g);
    }
    let bound: Vec<_> = groups.iter().map(|g| g.address).collect();
    // Hand socket i of every listener to worker i.
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    for g in groups {
        for (i, s) in g.sockets.into_iter().enumerate() {
            per_worker[i].push(s);
        }
    }

    let flag = ShutdownFlag::new();
    let plan = pin_plan(&config);
    let registry = Arc::new(StatsRegistry::new(config.clone(), workers));
    let access_log = match &config.access_log {
        Some(c) => Some(AccessLogSink::start(&c.target).map_err(RunError::AccessLog)?),
        None => None,
    };
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(DriverUsed, bool), String>)>();
    let mut handles = Vec::with_capacity(workers);
    let mut drivers: Vec<Option<(DriverUsed, bool)>> = vec![None; workers];
    let mut failure: Option<RunError> = None;
    let mut ring_fds: Vec<i32> = ring::io_uring_fds();
    for (id, sockets) in per_worker.into_iter().enumerate() {
        let config = config.clone();
        let flag = flag.clone();
        let ready = ready_tx.clone();
        let core = plan[id];
        let stats = registry.workers[id].clone();
        let log_tx = access_log.as_ref().map(|s| s.sender());
        let handle = std::thread::Builder::new()
            .name(format!("ringway-w{id}"))
            .spawn(move || {
                let pinned = core.map(core_affinity::set_for_current).unwrap_or(false);
                let rc = config.runtime.clone();
                run_on_driver(
                    &rc,
                    move || async move {
                        let worker = Rc::new(Worker::new(id, config, stats, log_tx));
                        worker_main(worker, sockets, flag).await;
                    },
                    |started| {
                        let _ = ready.send((id, started.map(|d| (d, pinned))));
                    },
                );
            })
            .map_err(RunError::Spawn)?;
        handles.push(handle);
        // Workers start one at a time, so the io_uring descriptor that
        // appears while worker `id` starts is its ring (read for telemetry).
        match ready_rx.recv() {
            Ok((w, Ok(d))) => {
                if matches!(d.0, DriverUsed::IoUring { .. }) {
                    let fds = ring::io_uring_fds();
                    if let Some(fd) = fds.into_iter().find(|fd| !ring_fds.contains(fd)) {
                        ring_fds.push(fd);
                        registry.workers[w]
                            .ring_fd
                            .store(fd, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                drivers[w] = Some(d);
            }
            Ok((w, Err(message))) => {
                failure = Some(RunError::Worker { worker: w, message });
                break;
            }
            Err(_) => {
                failure = Some(RunError::Worker {
                    worker: id,
                    message: "exited during start-up".into(),
                });
                break;
            }
        }
    }
    drop(ready_tx);

    if let Some(err) = failure {
        flag.trigger();
        for h in handles {
            let _ = h.join();
        }
        return Err(err);
    }

    // The fallback reason is printed once, not once per worker.
    if let Some(Some((DriverUsed::Legacy { reason: Some(r) }, _))) = drivers.first() {
        tracing::warn!("{r}; using the epoll driver");
        println!("ringway: io_uring not available ({r}); falling back to epoll");
    }
    summary::print(&config, &bound, &drivers, &plan);

    let admin = match &config.admin {
        None => None,
        Some(a) => {
            let state = Arc::new(AdminState {
                config: config.clone(),
                registry: registry.clone(),
                draining: flag.clone(),
                started: std::time::Instant::now(),
                drivers: drivers
                    .iter()
                    .map(|d| d.as_ref().map(|(d, _)| d.to_string()).unwrap_or_default())
                    .collect(),
                cores: plan.iter().map(|c| c.map(|c| c.id)).collect(),
            });
            match crate::admin::spawn(state) {
                Ok(handle) => {
                    println!("ringway: admin on {}", handle.address);
                    Some(handle)
                }
                Err(source) => {
                    flag.trigger();
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(RunError::Admin {
                        address: a.address,
                        source,
                    });
                }
            }
        }
    };
    println!("ringway: ready");

    for sig in signals.forever() {
        if sig == SIGUSR1 {
            if let Some(log) = &access_log {
                tracing::info!("SIGUSR1: reopening the access log");
                log.reopen();
            }
            continue;
        }
        tracing::info!(signal = sig, "shutting down: draining connections");
        println!("ringway: draining (signal {sig})");
        break;
    }
    flag.trigger();
    for h in handles {
        let _ = h.join();
    }
    if let Some(log) = access_log {
        log.finish();
    }
    if let Some(admin) = admin {
        admin.stop();
    }
    println!("ringway: stopped");
    Ok(())
}
