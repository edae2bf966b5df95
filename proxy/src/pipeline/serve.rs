//! A worker's serving loop: the `accept` stage (one task per listener
//! socket), the worker tick (deadlines, access log, stats publishing, pool
//! sweep, configuration updates) and the drain at shutdown.
//!
//! # Configuration updates
//! The main thread sends each worker a [`GenUpdate`] per reload (a plain
//! `std::sync::mpsc` channel, read with `try_recv` at the tick: no lock and
//! no wake-up on the request path). Applying it, on the worker's thread:
//!
//! 1. prepare the worker's parts of the new generation ([`WorkerGen::new`]:
//!    balancers, split cursors, histograms shared by name);
//! 2. re-lay the upstream pool out (idle connections of unchanged endpoints
//!    stay: no reconnect);
//! 3. commit: swap the current `Rc<WorkerGen>` (requests in flight keep
//!    theirs);
//! 4. listeners: stop accepting on socket groups the new generation no
//!    longer has (their idle keep-alive connections are closed, busy ones
//!    finish their request first) and start accepting on the new ones;
//! 5. publish the applied generation for `/workers` and `/reload`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;

use super::connection::{serve_tcp, Accepted};
use super::generation::{Snapshot, WorkerGen};
use crate::runtime::notify::LocalNotify;
use crate::runtime::shutdown::{ShutdownFlag, WATCH_TICK};
use crate::runtime::worker::{ConnGuard, Worker};
use crate::stats::WorkerStats;

/// A new generation for one worker.
pub struct GenUpdate {
    pub snap: Arc<Snapshot>,
    /// This worker's stats layout of the generation (counters carried).
    pub stats: Arc<WorkerStats>,
    /// Sockets of listener groups this worker does not serve yet:
    /// `(group id, socket)`.
    pub sockets: Vec<(u64, std::net::TcpListener)>,
}

/// One running accept task.
struct AcceptTask {
    group: u64,
    stop: Rc<StopSignal>,
    task: monoio::task::JoinHandle<()>,
    /// The listening socket (owned by the task; open until it returns).
    fd: std::os::fd::RawFd,
}

impl AcceptTask {
    /// Stop listening now, not when the task next runs: connects are
    /// refused from here on. The pending accept completes with an error
    /// (it is never dropped mid-flight, which could lose a connection the
    /// kernel had just handed over), and the task returns.
    fn stop_listening(&self) {
        self.stop.stopped.set(true);
        self.stop.notify.notify_all();
        // SAFETY: the fd is open: the accept task that owns the socket only
        // closes it when it returns, after this (same thread).
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }

    /// Stop accepting on a socket another process now shares (binary
    /// upgrade): the pending accept is cancelled, not the socket shut down.
    /// A connection the kernel handed over before the cancel took effect is
    /// still served.
    fn stop_accepting_shared(&self) {
        self.stop.stopped.set(true);
        self.stop.notify.notify_all();
        let c = std::mem::take(&mut *self.stop.canceller.borrow_mut());
        c.cancel();
    }
}

#[derive(Default)]
struct StopSignal {
    stopped: Cell<bool>,
    notify: LocalNotify,
    /// Cancels the pending accept (`stop_accepting_shared`).
    canceller: RefCell<monoio::io::Canceller>,
}

/// A worker's serving state: its long-lived core and its current generation.
pub struct Serving {
    pub worker: Rc<Worker>,
    current: RefCell<Rc<WorkerGen>>,
    accepts: RefCell<Vec<AcceptTask>>,
    /// Where this worker publishes the generation it applied.
    applied: Arc<[AtomicU64]>,
}

impl Serving {
    /// The generation new requests are served with.
    #[inline]
    pub fn current(&self) -> Rc<WorkerGen> {
        self.current.borrow().clone()
    }

    /// Apply a generation update (see the module docs).
    fn apply(self: &Rc<Self>, update: GenUpdate) {
        let worker = &self.worker;
        let prev = self.current();
        let gen = Rc::new(WorkerGen::new(
            worker.id,
            update.snap,
            update.stats,
            Some(&prev),
        ));
        let kept = worker.pool.borrow_mut().rekey(gen.config());
        // HTTP/2 connections made with TLS material the cluster no longer
        // has (rotated files) or to endpoints it no longer has take no new
        // streams.
        worker.h2_pool.borrow_mut().retire_stale(gen.config());
        *self.current.borrow_mut() = gen.clone();
        let keep = &gen.snap.listener_ids;
        let mut accepts = self.accepts.borrow_mut();
        accepts.retain(|task| {
            if keep.contains(&task.group) {
                return true;
            }
            task.stop_listening();
            worker.watchdog.drain_tag(task.group);
            false
        });
        drop(accepts);
        for (group, socket) in update.sockets {
            self.start_accept(group, socket);
        }
        gen.publish_histograms();
        self.publish_pool();
        let generation = gen.snap.generation;
        self.applied[worker.id].store(generation, Ordering::Release);
        tracing::info!(
            worker = worker.id,
            generation,
            idle_upstream_kept = kept,
            "configuration generation applied"
        );
    }

    fn start_accept(self: &Rc<Self>, group: u64, socket: std::net::TcpListener) {
        let listener = match TcpListener::from_std(socket) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(worker = self.worker.id, "cannot register listener: {e}");
                return;
            }
        };
        // Accepts name the listener's registered slot (`fixed_files`).
        listener.register_fixed();
        let stop = Rc::new(StopSignal::default());
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let task = monoio::spawn(accept_loop(self.clone(), group, listener, stop.clone()));
        self.accepts.borrow_mut().push(AcceptTask {
            group,
            stop,
            task,
            fd,
        });
    }

    fn publish_pool(&self) {
        let gen = self.current();
        let idle = self.worker.pool.borrow().idle_count() as i64;
        let gauge = &gen.stats.pool_idle;
        gauge.add(idle - gauge.get());
        let (buffers, ran_dry) = monoio::ring_ext::buffer_ring_stats();
        let (fixed, slots, without) = monoio::ring_ext::fixed_files_stats();
        let (armed, arms) = monoio::ring_ext::multishot_stats();
        let ring = &gen.stats.ring;
        for (gauge, now) in [
            (&ring.buffers, i64::from(buffers)),
            (&ring.ran_dry, ran_dry as i64),
            (&ring.fixed_in_use, i64::from(fixed)),
            (&ring.fixed_slots, i64::from(slots)),
            (&ring.fixed_went_without, without as i64),
            (&ring.multishot_armed, i64::from(armed)),
            (&ring.multishot_arms, arms as i64),
        ] {
            gauge.add(now - gauge.get());
        }
    }

    fn publish_stats(&self) {
        self.current().publish_histograms();
        self.publish_pool();
    }
}

/// The worker's main task: accept on every listener until shutdown, then
/// drain. Returns when every connection is done or the drain timeout passed.
pub async fn worker_main(
    worker: Rc<Worker>,
    first: GenUpdate,
    updates: Receiver<GenUpdate>,
    flag: ShutdownFlag,
    (applied, beats): (Arc<[AtomicU64]>, Arc<[AtomicU64]>),
) {
    // Liveness for the systemd watchdog (`server::notify`): one beat per
    // tick, STOPPED once this returns.
    let beat = || {
        beats[worker.id].fetch_add(1, Ordering::Relaxed);
    };
    struct Stopped<'a>(&'a AtomicU64);
    impl Drop for Stopped<'_> {
        fn drop(&mut self) {
            self.0
                .store(crate::server::notify::STOPPED, Ordering::Release);
        }
    }
    let _stopped = Stopped(&beats[worker.id]);
    crate::runtime::alloc::keep_spares_on_this_thread();
    let gen = Rc::new(WorkerGen::new(worker.id, first.snap, first.stats, None));
    let serving = Rc::new(Serving {
        worker: worker.clone(),
        current: RefCell::new(gen.clone()),
        accepts: RefCell::new(Vec::new()),
        applied,
    });
    for (group, socket) in first.sockets {
        serving.start_accept(group, socket);
    }
    serving.applied[worker.id].store(gen.snap.generation, Ordering::Release);
    drop(gen);

    // Deadlines, stats publishing, pool sweeping and updates share one tick.
    let tick = |s: &Serving| {
        WATCH_TICK
            .min(s.current().config().stats.publish_interval)
            .min(crate::runtime::watchdog::TICK)
    };
    let mut last_publish = std::time::Instant::now();
    let mut last_sweep = last_publish;
    while !flag.is_set() {
        monoio::time::sleep(tick(&serving)).await;
        beat();
        worker.watchdog.tick();
        while let Ok(update) = updates.try_recv() {
            serving.apply(update);
        }
        let now = std::time::Instant::now();
        if let Some(log) = &worker.access_log {
            log.tick();
        }
        if let Some(spans) = &worker.spans {
            spans.tick();
        }
        for b in &serving.current().balancers {
            b.tick(now);
        }
        if now.duration_since(last_publish) >= serving.current().config().stats.publish_interval {
            serving.publish_stats();
            last_publish = now;
        }
        if now.duration_since(last_sweep) >= Duration::from_secs(1) {
            worker.pool.borrow_mut().sweep();
            worker.trim_free_buffers();
            crate::runtime::memory::collect();
            last_sweep = now;
        }
    }

    // The drain. 1. Stop accepting: every listening socket is closed.
    let tasks: Vec<AcceptTask> = serving.accepts.borrow_mut().drain(..).collect();
    for t in &tasks {
        if flag.handed_over() {
            t.stop_accepting_shared();
        } else {
            t.stop_listening();
        }
    }
    for t in tasks {
        t.task.await;
    }
    // 2. Wait (briefly) until every worker has: a client told below to
    // reconnect must find no listener of this process open (a connection
    // queued on a listener that then closes is reset), only refusal.
    flag.stopped_accepting();
    let rt = serving.current().config().runtime.clone();
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while flag.workers_stopped_accepting() < rt.workers && std::time::Instant::now() < until {
        monoio::time::sleep(Duration::from_millis(2)).await;
        beat();
        worker.watchdog.tick();
    }
    // 3. Draining: responses carry `Connection: close`; connections idle
    // between requests stay open for `drain_idle_grace` (a request already
    // on its way is answered, not reset), then close, spread over as long
    // again.
    let grace = rt.drain_idle_grace.min(rt.drain_timeout);
    let from = std::time::Instant::now() + grace;
    worker.drain_idle.set(Some((from, grace)));
    worker.watchdog.drain_idle(from, grace);
    worker.draining.set(true);
    worker.shutdown.notify_all();
    worker.watchdog.tick();
    worker.pool.borrow_mut().clear();
    serving.publish_stats();
    let deadline = std::time::Instant::now() + serving.current().config().runtime.drain_timeout;
    while worker.active.get() > 0 && std::time::Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
        beat();
        worker.watchdog.tick();
    }
    serving.publish_stats();
    if let Some(log) = &worker.access_log {
        log.flush();
    }
    if let Some(spans) = &worker.spans {
        spans.flush();
    }
    if worker.active.get() > 0 {
        tracing::warn!(
            worker = worker.id,
            open = worker.active.get(),
            "drain timeout reached; closing remaining connections"
        );
    }
}

/// How often a `balanced` worker that is ahead looks at the others' loads.
const BALANCE_RECHECK: Duration = Duration::from_millis(2);

/// Whether the listener of socket group `group` is `accept = "balanced"`.
fn balanced(serving: &Serving, group: u64) -> bool {
    let gen = serving.current();
    gen.snap
        .listener_index(group)
        .is_some_and(|i| gen.config().listeners[i].accept == crate::config::AcceptMode::Balanced)
}

/// The `accept` stage for one listener socket: the accept gate (at most
/// `max_connections_per_worker` open connections), then one task per
/// connection.
async fn accept_loop(
    serving: Rc<Serving>,
    group: u64,
    listener: TcpListener,
    stop: Rc<StopSignal>,
) {
    let worker = serving.worker.clone();
    // A listener bound to one address gives every connection that address
    // as its local one: no getsockname(2) per connection. A wildcard
    // listener's connections each ask.
    let bound = listener
        .local_addr()
        .ok()
        .filter(|a| !a.ip().is_unspecified() && a.port() != 0);
    loop {
        // Accept gate: stop taking connections while at the limit.
        loop {
            let max = serving
                .current()
                .config()
                .runtime
                .max_connections_per_worker;
            if worker.active.get() < max || worker.draining.get() || stop.stopped.get() {
                break;
            }
            monoio::select! {
                _ = worker.conn_closed.notified() => {}
                _ = worker.shutdown.notified() => {}
                _ = stop.notify.notified() => {}
            }
        }
        // `balanced`: leave the shared queue to the other workers while
        // this one holds more than one connection above the least loaded
        // (the least loaded always accepts, so the queue never stalls).
        if balanced(&serving, group) {
            while !worker.may_accept_balanced() && !worker.draining.get() && !stop.stopped.get() {
                monoio::select! {
                    _ = worker.conn_closed.notified() => {}
                    _ = monoio::time::sleep(BALANCE_RECHECK) => {}
                    _ = stop.notify.notified() => {}
                }
            }
        }
        if worker.draining.get() || stop.stopped.get() {
            break;
        }
        // Not raced with a stop signal: stopping shuts the socket down or
        // cancels the accept, which completes it (see `AcceptTask`).
        let handle = stop.canceller.borrow().handle();
        let accepted = listener.cancelable_accept(handle).await;
        match accepted {
            Ok((stream, peer)) => {
                let gen = serving.current();
                let Some(index) = gen.snap.listener_index(group) else {
                    // Removed by a reload an instant ago.
                    break;
                };
                tracing::debug!(worker = worker.id, %peer, "accepted");
                // TCP_NODELAY: inherited from the listener (`net::listener`).
                let guard = ConnGuard::new(worker.clone(), gen.stats.listeners[index].clone());
                let listener = &gen.config().listeners[index];
                let accepted = Accepted {
                    tls: gen.snap.tls[index].clone(),
                    proxy_protocol: listener.proxy_protocol,
                    protocols: listener.protocols,
                    header_timeout: gen.config().limits.header_read_timeout,
                };
                drop(gen);
                let local = bound.unwrap_or_else(|| stream.local_addr().unwrap_or(peer));
                let addrs = (peer, local);
                monoio::spawn(serve_tcp(
                    serving.clone(),
                    group,
                    accepted,
                    stream,
                    addrs,
                    guard,
                ));
            }
            Err(_) if stop.stopped.get() => break,
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                tracing::warn!(worker = worker.id, "accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
}
