//! Live reload: load and validate the file off the data path, bind new
//! listeners, publish generation N+1 to every worker.
//!
//! # Steps ([`Control::reload`])
//! 1. Read, parse and build the file (`Config::load`): any problem → the
//!    reload fails with the same key-path + line messages as
//!    `ringway check`, and nothing changes.
//! 2. Listeners: one that keeps its name and configured address keeps its
//!    socket group (no refused connection); a new or moved one gets a new
//!    group, bound now (a bind failure fails the reload, nothing changes);
//!    a removed one is dropped from the generation: workers stop accepting
//!    on it and its connections drain.
//! 3. Compile the [`Snapshot`] (routes, filter chains, TLS acceptors: TLS
//!    files are read again by step 1).
//! 4. Lay out the stats of the new generation, counters carried over by
//!    name ([`StatsRegistry::install`]).
//! 5. Send each worker its [`GenUpdate`]; each applies it at its next tick
//!    (`pipeline::serve`).
//!
//! Settings that shape the process (`runtime.workers`, `cores`, `driver`,
//! ring settings, `[admin]`, `[access_log]`) cannot change in a running
//! process: a reload that changes them applies everything else and says
//! which of them wait for a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigErrors};
use crate::net::bind_group;
use crate::pipeline::generation::Snapshot;
use crate::pipeline::serve::GenUpdate;
use crate::stats::StatsRegistry;

/// A listener socket group the process holds.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: u64,
    pub name: String,
    /// As configured (port 0 stays 0: an unchanged `:0` listener keeps its
    /// group).
    pub configured: SocketAddr,
    pub bound: SocketAddr,
    /// A changed accept mode binds the listener afresh.
    pub accept: crate::config::AcceptMode,
    /// Duplicates of the group's sockets (one per worker), kept by the main
    /// thread to hand to a new process on a binary upgrade.
    pub sockets: Arc<[std::os::fd::OwnedFd]>,
}

impl Group {
    /// Duplicates of `sockets`, for [`Group::sockets`].
    pub fn duplicates(
        sockets: &[std::net::TcpListener],
    ) -> std::io::Result<Arc<[std::os::fd::OwnedFd]>> {
        sockets
            .iter()
            .map(|s| s.try_clone().map(std::os::fd::OwnedFd::from))
            .collect()
    }
}

/// Why a reload changed nothing.
#[derive(Debug)]
pub enum ReloadError {
    /// The file has problems (key path + line each).
    Invalid(ConfigErrors),
    /// A new listener could not be bound.
    Bind(String),
    /// The workers are gone (shutting down).
    Stopped,
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Invalid(errors) => {
                for e in &errors.0 {
                    writeln!(f, "error: {e}")?;
                }
                write!(
                    f,
                    "{} problem(s) found; the running configuration is unchanged",
                    errors.0.len()
                )
            }
            ReloadError::Bind(m) => write!(f, "error: {m}; the running configuration is unchanged"),
            ReloadError::Stopped => write!(f, "error: ringway is shutting down"),
        }
    }
}

/// A successful reload.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub generation: u64,
    /// Changed settings that take effect only after a restart.
    pub restart_needed: Vec<&'static str>,
    /// Listeners bound by this reload: name, address, TLS.
    pub new_listeners: Vec<(String, SocketAddr, bool)>,
    pub removed_listeners: Vec<String>,
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, addr, tls) in &self.new_listeners {
            writeln!(
                f,
                "ringway: listener {name} on {addr} ({})",
                if *tls { "tls" } else { "plain" }
            )?;
        }
        for name in &self.removed_listeners {
            writeln!(f, "ringway: listener {name} removed (draining)")?;
        }
        for key in &self.restart_needed {
            writeln!(
                f,
                "ringway: warning: {key} changed; it takes effect after a restart"
            )?;
        }
        write!(f, "ringway: reloaded: generation {}", self.generation)
    }
}

struct State {
    config: Arc<Config>,
    groups: Vec<Group>,
    next_group: u64,
    /// Split weights set through `POST /routes/NAME/weights`: route name →
    /// (cluster name, weight). They win over the file's at every reload,
    /// until the route or cluster leaves the file.
    weights: std::collections::BTreeMap<String, Vec<(String, u32)>>,
}

/// Why `POST /routes/NAME/weights` changed nothing, with its status.
#[derive(Debug)]
pub struct WeightsError(pub u16, pub String);

/// Apply the weight overrides to `config`; the ones whose route or cluster
/// is gone are dropped (named in the returned list).
fn apply_weights(
    config: &mut Config,
    weights: &mut std::collections::BTreeMap<String, Vec<(String, u32)>>,
) -> Vec<String> {
    let mut dropped = Vec::new();
    weights.retain(|route, list| {
        let Some(r) = config.routes.iter_mut().find(|r| &r.name == route) else {
            dropped.push(format!("route {route:?} is gone"));
            return false;
        };
        let crate::config::RouteAction::Split(split) = &mut r.action else {
            dropped.push(format!("route {route:?} no longer splits"));
            return false;
        };
        for (cluster, w) in list.iter() {
            let Some(ci) = config.clusters.iter().position(|c| &c.name == cluster) else {
                dropped.push(format!("route {route:?}: cluster {cluster:?} is gone"));
                return false;
            };
            let Some(t) = split.targets.iter_mut().find(|t| t.0 == ci) else {
                dropped.push(format!("route {route:?} no longer sends to {cluster:?}"));
                return false;
            };
            t.1 = *w;
        }
        true
    });
    dropped
}

/// The main-thread side of generations. Shared by the signal loop, the
/// admin thread (`POST /reload`) and the file watcher; a mutex serialises
/// reloads (never touched by a worker).
pub struct Control {
    path: PathBuf,
    registry: Arc<StatsRegistry>,
    senders: Vec<Sender<GenUpdate>>,
    state: Mutex<State>,
    /// Held for a whole reload, load included: two reloads at once (a
    /// signal and a discovery change) publish in the order they read the
    /// file and the discovered endpoints, so an older read never replaces
    /// a newer one.
    serial: Mutex<()>,
}

impl Control {
    pub fn new(
        path: PathBuf,
        config: Arc<Config>,
        groups: Vec<Group>,
        registry: Arc<StatsRegistry>,
        senders: Vec<Sender<GenUpdate>>,
    ) -> Control {
        let next_group = groups.iter().map(|g| g.id).max().unwrap_or(0) + 1;
        Control {
            path,
            registry,
            senders,
            serial: Mutex::new(()),
            state: Mutex::new(State {
                config,
                groups,
                next_group,
                weights: Default::default(),
            }),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Run `f` with the listener groups in force (no reload meanwhile).
    pub fn with_groups<R>(&self, f: impl FnOnce(&[Group]) -> R) -> R {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&state.groups)
    }

    /// Load the file and publish it as the next generation (see the module
    /// docs). Counts the outcome in `ringway_reloads_total`.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        super::notify::reloading();
        let result = self.try_reload();
        let counter = match &result {
            Ok(_) => &self.registry.reloads.ok,
            Err(_) => &self.registry.reloads.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if super::notify::enabled() {
            let status = match &result {
                Ok(r) => {
                    // READY=1 once every worker serves it (or 5 s passed).
                    let _ = self.wait_applied(r.generation, std::time::Duration::from_secs(5));
                    format!("serving configuration generation {}", r.generation)
                }
                Err(e) => format!(
                    "reload refused, generation {} kept: {e}",
                    self.registry.reloads.generation()
                ),
            };
            super::notify::ready(&status);
        }
        result
    }

    /// `POST /routes/NAME/weights`: set the weights of split route `route`
    /// (cluster name → weight; clusters not named keep theirs) and publish
    /// them to every worker as a new generation (the file is not read).
    pub fn set_weights(
        &self,
        route: &str,
        set: &[(String, u32)],
    ) -> Result<Reloaded, WeightsError> {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let config = &state.config;
        let Some(r) = config.routes.iter().find(|r| r.name == route) else {
            return Err(WeightsError(404, format!("no route named {route:?}\n")));
        };
        let crate::config::RouteAction::Split(split) = &r.action else {
            return Err(WeightsError(
                409,
                format!("route {route:?} does not split: only a `split` route has weights\n"),
            ));
        };
        let mut merged: Vec<(String, u32)> = split
            .targets
            .iter()
            .map(|(ci, w)| (config.clusters[*ci].name.clone(), *w))
            .collect();
        for (cluster, w) in set {
            match merged.iter_mut().find(|(c, _)| c == cluster) {
                Some(t) => t.1 = *w,
                None => {
                    let names: Vec<&str> = merged.iter().map(|(c, _)| c.as_str()).collect();
                    return Err(WeightsError(
                        400,
                        format!(
                            "route {route:?} does not send to {cluster:?} (its clusters: {})\n",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        if merged.iter().all(|(_, w)| *w == 0) {
            return Err(WeightsError(
                400,
                "the weights add up to 0: no request could be sent\n".into(),
            ));
        }
        let mut weights = state.weights.clone();
        weights.insert(route.to_string(), merged);
        let mut next = (*state.config).clone();
        apply_weights(&mut next, &mut weights);
        let result = self.publish(&mut state, next, Vec::new());
        match result {
            Ok(r) => {
                state.weights = weights;
                Ok(r)
            }
            Err(e) => Err(WeightsError(503, format!("{e}\n"))),
        }
    }

    fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let mut loaded = Config::load(&self.path).map_err(ReloadError::Invalid)?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Weights set through the admin API win over the file's.
        let mut weights = std::mem::take(&mut state.weights);
        let dropped = apply_weights(&mut loaded, &mut weights);
        for d in &dropped {
            tracing::warn!("weights set through the admin API dropped: {d}");
        }
        state.weights = weights;
        let restart_needed = restart_needed(&state.config, &loaded);
        self.publish(&mut state, loaded, restart_needed)
    }

    /// Publish `loaded` as the next generation (listener groups kept, bound
    /// or dropped; every worker sent its update).
    fn publish(
        &self,
        state: &mut State,
        mut loaded: Config,
        restart_needed: Vec<&'static str>,
    ) -> Result<Reloaded, ReloadError> {
        let workers = self.senders.len();
        // What cannot change in a running process keeps its running value.
        keep_process_settings(&state.config, &mut loaded);
        let config = Arc::new(loaded);

        // Listener groups: keep, bind or drop.
        let mut ids = Vec::with_capacity(config.listeners.len());
        let mut fresh: Vec<(Group, Vec<std::net::TcpListener>, bool)> = Vec::new();
        let mut next = state.next_group;
        for l in &config.listeners {
            if let Some(g) = state
                .groups
                .iter()
                .find(|g| g.name == l.name && g.configured == l.address && g.accept == l.accept)
            {
                ids.push(g.id);
                continue;
            }
            let group = bind_group(l.address, workers, l.accept).map_err(|e| {
                ReloadError::Bind(format!(
                    "listener {:?}: cannot bind {}: {e}",
                    l.name, l.address
                ))
            })?;
            let sockets = Group::duplicates(&group.sockets)
                .map_err(|e| ReloadError::Bind(format!("listener {:?}: {e}", l.name)))?;
            let g = Group {
                id: next,
                name: l.name.clone(),
                configured: l.address,
                bound: group.address,
                accept: l.accept,
                sockets,
            };
            next += 1;
            ids.push(g.id);
            fresh.push((g, group.sockets, l.tls.is_some()));
        }
        let removed: Vec<String> = state
            .groups
            .iter()
            .filter(|g| !ids.contains(&g.id))
            .map(|g| g.name.clone())
            .collect();

        let generation = self.registry.reloads.generation() + 1;
        let snap = Arc::new(Snapshot::build(config.clone(), generation, ids.clone()));
        let stats = self.registry.install(config.clone(), generation);

        // Socket i of every new group goes to worker i.
        let mut per_worker: Vec<Vec<(u64, std::net::TcpListener)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut new_listeners = Vec::new();
        let mut kept_groups: Vec<Group> = state
            .groups
            .iter()
            .filter(|g| ids.contains(&g.id))
            .cloned()
            .collect();
        for (g, sockets, tls) in fresh {
            for (i, s) in sockets.into_iter().enumerate() {
                per_worker[i].push((g.id, s));
            }
            new_listeners.push((g.name.clone(), g.bound, tls));
            kept_groups.push(g);
        }
        for ((tx, sockets), stats) in self.senders.iter().zip(per_worker).zip(stats) {
            let update = GenUpdate {
                snap: snap.clone(),
                stats,
                sockets,
            };
            tx.send(update).map_err(|_| ReloadError::Stopped)?;
        }
        self.registry
            .reloads
            .generation
            .store(generation, Ordering::Release);

        state.config = config;
        state.groups = kept_groups;
        state.next_group = next;
        Ok(Reloaded {
            generation,
            restart_needed,
            new_listeners,
            removed_listeners: removed,
        })
    }

    /// Wait until every worker serves generation `g` (at most `timeout`).
    /// Returns how long it took, or `None` on timeout.
    pub fn wait_applied(&self, g: u64, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while !self.registry.reloads.all_applied(g) {
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Some(start.elapsed())
    }
}

/// Copy the settings that shape the process from `old` into `new`.
fn keep_process_settings(old: &Config, new: &mut Config) {
    let max_conns = new.runtime.max_connections_per_worker;
    let drain = new.runtime.drain_timeout;
    let grace = new.runtime.drain_idle_grace;
    new.runtime = old.runtime.clone();
    // These are read live.
    new.runtime.max_connections_per_worker = max_conns;
    new.runtime.drain_timeout = drain;
    new.runtime.drain_idle_grace = grace;
    new.admin = old.admin.clone();
    // The log's redaction list is read per request: it follows the file.
    let redact = new.access_log.as_ref().map(|a| a.redact_query.clone());
    new.access_log = old.access_log.clone();
    if let (Some(a), Some(r)) = (new.access_log.as_mut(), redact) {
        a.redact_query = r;
    }
    // The exporter (its thread, collector, batches) stays; the sampling
    // settings are read per request and follow the file.
    if old.trace.otlp.is_none() {
        // No exporter runs: nothing to sample for.
        new.trace.otlp = None;
    }
    if let (Some(o), Some(n)) = (&old.trace.otlp, new.trace.otlp.as_mut()) {
        let (ratio, errors, slow) = (n.sample_ratio, n.keep_errors, n.keep_slower_than);
        *n = o.clone();
        n.sample_ratio = ratio;
        n.keep_errors = errors;
        n.keep_slower_than = slow;
    }
    new.stats.histogram_sigfig = old.stats.histogram_sigfig;
    new.reload = old.reload;
}

/// The settings that differ between `old` and `new` but cannot change in a
/// running process.
fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.runtime, &new.runtime);
    let mut out = Vec::new();
    if a.workers != b.workers {
        out.push("runtime.workers");
    }
    if a.cores != b.cores {
        out.push("runtime.cores");
    }
    if a.driver != b.driver {
        out.push("runtime.driver");
    }
    if a.ring_entries != b.ring_entries
        || a.cq_entries != b.cq_entries
        || a.sqpoll_idle != b.sqpoll_idle
        || a.ring_flags != b.ring_flags
        || a.ring_features != b.ring_features
    {
        out.push("runtime ring settings");
    }
    if a.idle_read_release != b.idle_read_release {
        out.push("runtime.idle_read_release");
    }
    if a.log_level != b.log_level {
        out.push("runtime.log_level");
    }
    if old.admin.as_ref().map(|x| x.address) != new.admin.as_ref().map(|x| x.address) {
        out.push("admin");
    }
    let log_key = |c: &Config| {
        c.access_log
            .as_ref()
            .map(|l| (l.target.clone(), l.format, l.buffer_bytes, l.flush_interval))
    };
    if log_key(old) != log_key(new) {
        out.push("access_log");
    }
    if old.stats.histogram_sigfig != new.stats.histogram_sigfig {
        out.push("stats.histogram_sigfig");
    }
    let exporter = |c: &Config| {
        c.trace.otlp.as_ref().map(|o| {
            (
                o.endpoint.clone(),
                o.service_name.clone(),
                o.node.clone(),
                o.batch_spans,
                o.queue_batches,
                o.flush_interval,
                o.timeout,
            )
        })
    };
    if exporter(old) != exporter(new) {
        out.push("tracing.otlp (collector, names, batching)");
    }
    if old.reload != new.reload {
        out.push("reload");
    }
    out
}
