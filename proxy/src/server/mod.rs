//! The process: bind the listeners, start the pinned workers, the admin
//! threads and the config watcher, then turn signals into actions until the
//! drain is over.
//!
//! # Architecture
//! ```text
//! main thread: config → Snapshot (generation 1) → bind listener groups
//!   → workers (one pinned thread + monoio runtime each, `pipeline::serve`)
//!   → admin threads → "ringway: ready" → signal loop:
//!        SIGHUP          reload (server/reload.rs) → GenUpdate per worker
//!        SIGUSR1         reopen the access log
//!        SIGTERM/SIGINT  drain and stop
//! ```
//! `POST /reload` (admin thread), `[reload] watch = true` (watcher
//! thread) and endpoint discovery (`discovery`: files and DNS; `etcd`: the
//! etcd watchers) call the same [`reload::Control`]. The etcd registration
//! thread keeps this process's key alive and revokes it when the drain
//! starts. Nothing here runs on the request path.
//!
//! # Shutdown
//! SIGTERM or SIGINT: the main thread sets the flag; each worker
//! 1. stops accepting (shuts its listening sockets down, so connects are
//!    refused from then on);
//! 2. waits (at most 1 s) until every worker has, so no client told to
//!    reconnect below lands in a listener that is about to close (a
//!    connection queued there would be reset);
//! 3. drains: in-flight requests finish and their responses carry
//!    `Connection: close`; connections idle between requests stay open for
//!    `drain_idle_grace`, so a request already on its way is answered, then
//!    close spread over as long again;
//!
//! and returns when its connections are done or `drain_timeout` passed.
//! The process exits 0 when every worker is done. (`tests/integration/
//! drain.rs`: 50 busy keep-alive connections, SIGTERM, 20 runs, not one
//! reset or early close.)

pub mod discovery;
pub mod etcd;
pub mod notify;
pub mod ocsp;
pub mod reload;
pub mod upgrade;
pub mod watch;

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::accesslog::AccessLogSink;
use crate::admin::AdminState;
use crate::config::Config;
use crate::net::{adopt_group, bind_group};
use crate::pipeline::generation::Snapshot;
use crate::pipeline::serve::{worker_main, GenUpdate};
use crate::runtime::driver::{run_on_driver, DriverUsed};
use crate::runtime::shutdown::ShutdownFlag;
use crate::runtime::worker::Worker;
use crate::runtime::{pin_plan, summary};
use crate::stats::{ring, StatsRegistry};
use reload::{Control, Group};

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
    #[error("cannot start thread: {0}")]
    Spawn(std::io::Error),
    #[error("{0}")]
    Upgrade(String),
}

/// Run the proxy until SIGTERM/SIGINT and the drain that follows. `path` is
/// the file `config` came from (reloads read it again); `None` turns reload
/// off.
pub fn run(config: Arc<Config>, path: Option<PathBuf>) -> Result<(), RunError> {
    // Signals first, so a signal during start-up is not lost.
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP]).map_err(RunError::Signals)?;
    let workers = config.runtime.workers;
    // A binary upgrade starts this same file again (`upgrade`).
    let exe = std::env::current_exe().ok();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // Started by an upgrade: the old process's listening sockets.
    let mut inherited = match upgrade::Inherited::from_env() {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(e)) => return Err(RunError::Upgrade(e)),
    };

    // Bind every listener before starting anything (or take it over).
    let mut groups = Vec::with_capacity(config.listeners.len());
    let mut per_worker: Vec<Vec<(u64, std::net::TcpListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    for (i, l) in config.listeners.iter().enumerate() {
        let bind_error = |source| RunError::Bind {
            name: l.name.clone(),
            address: l.address,
            source,
        };
        let g = match inherited
            .as_mut()
            .and_then(|h| h.take_listener(&l.name, l.address))
        {
            Some(sockets) => adopt_group(sockets, workers, l.accept).map_err(bind_error)?,
            None => bind_group(l.address, workers, l.accept).map_err(bind_error)?,
        };
        let id = i as u64 + 1;
        groups.push(Group {
            id,
            name: l.name.clone(),
            configured: l.address,
            bound: g.address,
            accept: l.accept,
            sockets: Group::duplicates(&g.sockets).map_err(bind_error)?,
        });
        // Socket i of every listener goes to worker i.
        for (w, s) in g.sockets.into_iter().enumerate() {
            per_worker[w].push((id, s));
        }
    }
    let bound: Vec<_> = groups.iter().map(|g| g.bound).collect();
    let ids: Vec<u64> = groups.iter().map(|g| g.id).collect();
    let snap = Arc::new(Snapshot::build(config.clone(), 1, ids));

    let flag = ShutdownFlag::new();
    let plan = pin_plan(&config);
    let registry = Arc::new(StatsRegistry::new(config.clone(), workers));
    let applied = registry.reloads.applied.clone();
    let beats = registry.reloads.beats.clone();
    // Open connections per worker, for `accept = "balanced"` listeners.
    let loads: Arc<[std::sync::atomic::AtomicUsize]> = (0..workers)
        .map(|_| std::sync::atomic::AtomicUsize::new(0))
        .collect();
    let access_log = match &config.access_log {
        Some(c) => Some(AccessLogSink::start(&c.target).map_err(RunError::AccessLog)?),
        None => None,
    };
    // Active health checks: one thread for the process, reading the
    // configuration in force (it idles when no cluster has checks).
    let health_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health_thread = {
        let reg = registry.clone();
        crate::upstream::health::checker::start(
            Arc::new(move || reg.load().config.clone()),
            health_stop.clone(),
        )
        .map_err(RunError::Spawn)?
    };
    let exporter = match &config.trace.otlp {
        Some(o) => Some(crate::otel::Exporter::start(o).map_err(RunError::Spawn)?),
        None => None,
    };
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(DriverUsed, bool), String>)>();
    let mut handles = Vec::with_capacity(workers);
    let mut senders = Vec::with_capacity(workers);
    let mut drivers: Vec<Option<(DriverUsed, bool)>> = vec![None; workers];
    let mut failure: Option<RunError> = None;
    let mut ring_fds: Vec<i32> = ring::io_uring_fds();
    let first_stats = registry.load().workers.clone();
    for (id, sockets) in per_worker.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel::<GenUpdate>();
        senders.push(tx);
        let first = GenUpdate {
            snap: snap.clone(),
            stats: first_stats[id].clone(),
            sockets,
        };
        let config = config.clone();
        let flag = flag.clone();
        let ready = ready_tx.clone();
        let core = plan[id];
        let log_tx = access_log.as_ref().map(|s| s.sender());
        let span_tx = exporter.as_ref().map(|e| e.sender());
        let applied = applied.clone();
        let beats = beats.clone();
        let loads = loads.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ringway-w{id}"))
            .spawn(move || {
                let pinned = core.map(core_affinity::set_for_current).unwrap_or(false);
                let rc = config.runtime.clone();
                run_on_driver(
                    &rc,
                    move || async move {
                        let worker = Rc::new(Worker::new(id, &config, log_tx, span_tx));
                        let _ = worker.loads.set(loads);
                        worker_main(worker, first, rx, flag, (applied, beats)).await;
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
                        first_stats[w]
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
        stop_before_ready(&flag, inherited.is_some());
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

    let control = path.map(|p| {
        Arc::new(Control::new(
            p,
            config.clone(),
            groups,
            registry.clone(),
            senders,
        ))
    });

    let admin = match &config.admin {
        None => None,
        Some(a) => {
            let reload = control.as_ref().map(|c| {
                let c = c.clone();
                Arc::new(move || admin_reload(&c)) as crate::admin::Reloader
            });
            let weights = control.as_ref().map(|c| {
                let c = c.clone();
                Arc::new(move |route: &str, set: &[(String, u32)]| admin_weights(&c, route, set))
                    as crate::admin::WeightsSetter
            });
            let state = Arc::new(AdminState {
                registry: registry.clone(),
                reload,
                weights,
                draining: flag.clone(),
                started: std::time::Instant::now(),
                drivers: drivers
                    .iter()
                    .map(|d| d.as_ref().map(|(d, _)| d.to_string()).unwrap_or_default())
                    .collect(),
                ring_features: drivers
                    .iter()
                    .map(|d| match d {
                        Some((DriverUsed::IoUring { features, .. }, _)) => features.clone(),
                        _ => Vec::new(),
                    })
                    .collect(),
                cores: plan.iter().map(|c| c.map(|c| c.id)).collect(),
            });
            let socket = inherited.as_mut().and_then(|h| h.take_admin(a.address));
            match crate::admin::spawn_inherited(state, socket) {
                Ok(handle) => {
                    println!("ringway: admin on {}", handle.address);
                    Some(handle)
                }
                Err(source) => {
                    stop_before_ready(&flag, inherited.is_some());
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
    let watch_stop = Arc::new(AtomicBool::new(false));
    let watcher = match (&control, config.reload.watch) {
        (Some(c), true) => Some(
            watch::spawn(
                c.clone(),
                c.path().to_path_buf(),
                config.reload.interval,
                watch_stop.clone(),
            )
            .map_err(RunError::Spawn)?,
        ),
        _ => None,
    };
    // File discovery: endpoints files are watched whether or not the config
    // file is (`[reload] watch`).
    let discovery_thread = match &control {
        Some(c) => {
            let reg = registry.clone();
            Some(
                discovery::spawn(
                    c.clone(),
                    Arc::new(move || reg.load().config.clone()),
                    config.reload.interval,
                    watch_stop.clone(),
                )
                .map_err(RunError::Spawn)?,
            )
        }
        None => None,
    };
    // etcd: a watcher per prefix (changes applied as reloads) and this
    // process's registration; both follow the configuration in force.
    let etcd_watchers = match &control {
        Some(c) => {
            let reg = registry.clone();
            Some(
                etcd::spawn_watchers(
                    c.clone(),
                    Arc::new(move || reg.load().config.clone()),
                    watch_stop.clone(),
                )
                .map_err(RunError::Spawn)?,
            )
        }
        None => None,
    };
    let etcd_registration = {
        let reg = registry.clone();
        etcd::spawn_registration(
            Arc::new(move || reg.load().config.clone()),
            watch_stop.clone(),
        )
        .map_err(RunError::Spawn)?
    };
    let ocsp_thread = if config.listeners.iter().any(|l| !l.ocsp.is_empty()) || control.is_some() {
        Some(
            ocsp::spawn(registry.clone(), ocsp::INTERVAL, watch_stop.clone())
                .map_err(RunError::Spawn)?,
        )
    } else {
        None
    };
    println!("ringway: ready");
    if let Some(h) = inherited.take() {
        h.ready();
    }
    notify::ready(&format!(
        "serving on {workers} worker(s), configuration generation 1"
    ));
    let sd_watchdog =
        notify::spawn_watchdog(beats.clone(), watch_stop.clone()).map_err(RunError::Spawn)?;

    for sig in signals.forever() {
        match sig {
            SIGUSR1 => {
                if let Some(log) = &access_log {
                    tracing::info!("SIGUSR1: reopening the access log");
                    log.reopen();
                }
            }
            SIGHUP => match &control {
                None => tracing::warn!("SIGHUP: no config file to reload"),
                Some(c) => {
                    let received = std::time::Instant::now();
                    tracing::info!("SIGHUP: reloading {}", c.path().display());
                    match c.reload() {
                        Ok(r) => {
                            println!("{r}");
                            // From the signal to every worker serving the
                            // new generation (the reload-time figure).
                            match c.wait_applied(r.generation, Duration::from_secs(5)) {
                                Some(_) => println!(
                                    "ringway: generation {} on every worker {:.3} ms after SIGHUP",
                                    r.generation,
                                    received.elapsed().as_secs_f64() * 1000.0
                                ),
                                None => println!(
                                    "ringway: warning: generation {} not on every worker after 5 s",
                                    r.generation
                                ),
                            }
                        }
                        Err(e) => {
                            tracing::error!("reload failed:\n{e}");
                            eprintln!("{e}");
                        }
                    }
                }
            },
            SIGUSR2 => {
                let Some(c) = &control else {
                    tracing::warn!("SIGUSR2: no config file: no binary upgrade");
                    continue;
                };
                let Some(exe) = &exe else {
                    eprintln!("ringway: upgrade: the path of this binary is unknown");
                    continue;
                };
                println!("ringway: upgrade: starting {}", exe.display());
                // The admin socket goes with its configured address (port 0
                // stays 0), which is what the new process looks it up by.
                let admin_socket = admin
                    .as_ref()
                    .zip(config.admin.as_ref())
                    .map(|(h, a)| (a.address, h.socket.as_raw_fd()));
                let result = c.with_groups(|groups| {
                    let handed: Vec<upgrade::Handed<'_>> = groups
                        .iter()
                        .map(|g| upgrade::Handed {
                            name: &g.name,
                            configured: g.configured,
                            fds: g.sockets.iter().map(|f| f.as_raw_fd()).collect(),
                        })
                        .collect();
                    upgrade::hand_over(exe, &args, &handed, admin_socket, upgrade::READY_TIMEOUT)
                });
                match result {
                    Ok(pid) => {
                        println!("ringway: upgrade: process {pid} is ready; draining");
                        tracing::info!(pid, "upgrade: new process ready; draining");
                        notify::send(&format!("MAINPID={pid}"));
                        flag.hand_over();
                        break;
                    }
                    Err(e) => {
                        tracing::error!("upgrade failed: {e}; still serving");
                        eprintln!("ringway: upgrade failed: {e}; still serving");
                    }
                }
            }
            _ => {
                tracing::info!(signal = sig, "shutting down: draining connections");
                println!("ringway: draining (signal {sig})");
                notify::stopping();
                break;
            }
        }
    }
    flag.trigger();
    watch_stop.store(true, std::sync::atomic::Ordering::Release);
    for h in handles {
        let _ = h.join();
    }
    if let Some(w) = watcher {
        let _ = w.join();
    }
    if let Some(t) = ocsp_thread {
        let _ = t.join();
    }
    if let Some(t) = discovery_thread {
        let _ = t.join();
    }
    if let Some(t) = sd_watchdog {
        let _ = t.join();
    }
    if let Some(t) = etcd_watchers {
        let _ = t.join();
    }
    let _ = etcd_registration.join();
    if let Some(log) = access_log {
        log.finish();
    }
    if let Some(e) = exporter {
        e.stop();
    }
    health_stop.store(true, std::sync::atomic::Ordering::Release);
    let _ = health_thread.join();
    if let Some(admin) = admin {
        admin.stop();
    }
    println!("ringway: stopped");
    Ok(())
}

/// Stop the workers after a failed start. Sockets inherited from an older
/// process (binary upgrade) are still that process's: they are left open
/// (accepts cancelled), never shut down.
fn stop_before_ready(flag: &ShutdownFlag, inherited: bool) {
    if inherited {
        flag.hand_over();
    } else {
        flag.trigger();
    }
}

/// `POST /routes/NAME/weights`: publish the new weights, then wait (up to
/// 5 s) until every worker serves them.
fn admin_weights(
    control: &Control,
    route: &str,
    set: &[(String, u32)],
) -> Result<String, (u16, String)> {
    match control.set_weights(route, set) {
        Ok(r) => {
            let shown: Vec<String> = set.iter().map(|(c, w)| format!("{c}={w}")).collect();
            println!(
                "ringway: route {route:?} weights set to {} (generation {})",
                shown.join(", "),
                r.generation
            );
            match control.wait_applied(r.generation, Duration::from_secs(5)) {
                Some(d) => Ok(format!(
                    "route {route:?}: weights {} on every worker (generation {}, {} ms)\n",
                    shown.join(", "),
                    r.generation,
                    d.as_millis()
                )),
                None => Err((
                    500,
                    format!(
                        "not every worker took generation {} within 5 s\n",
                        r.generation
                    ),
                )),
            }
        }
        Err(reload::WeightsError(status, msg)) => Err((status, msg)),
    }
}

/// `POST /reload`: reload, then wait (up to 5 s) until every worker serves
/// the new generation.
fn admin_reload(control: &Control) -> Result<String, (u16, String)> {
    match control.reload() {
        Ok(r) => {
            println!("{r}");
            let waited = control.wait_applied(r.generation, Duration::from_secs(5));
            let mut msg = format!("{r}\n");
            match waited {
                Some(d) => msg.push_str(&format!(
                    "every worker serves generation {} ({} ms after the reload)\n",
                    r.generation,
                    d.as_millis()
                )),
                None => {
                    return Err((
                        500,
                        format!(
                            "{msg}not every worker took generation {} within 5 s\n",
                            r.generation
                        ),
                    ))
                }
            }
            Ok(msg)
        }
        Err(e) => {
            let status = match e {
                reload::ReloadError::Invalid(_) | reload::ReloadError::Bind(_) => 400,
                reload::ReloadError::Stopped => 503,
            };
            eprintln!("{e}");
            Err((status, format!("{e}\n")))
        }
    }
}
