//! One worker: the per-core state and its main task.
//!
//! A `Worker` lives on one pinned thread inside one monoio runtime; it is
//! shared by that worker's tasks through `Rc` and is deliberately `!Send`.
//! It owns the compiled route tables, the upstream pool, the balancer cursors,
//! the buffer free list and the connection count. The only cross-thread
//! values it reads are the immutable `Arc<Config>` and the shutdown flag.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;

use super::notify::LocalNotify;
use super::shutdown::{ShutdownFlag, WATCH_TICK};
use super::watchdog::Watchdog;
use crate::accesslog::WorkerLog;
use crate::config::Config;
use crate::pipeline::{self, RouteTable};
use crate::stats::{WorkerHistograms, WorkerStats};
use crate::upstream::{RoundRobin, SmoothWeighted, UpstreamPool};

/// Size of recycled connection buffers.
pub const BUF_SIZE: usize = 16 * 1024;
/// Buffers kept on the free list.
const MAX_FREE_BUFFERS: usize = 1024;
/// Size of the buffers a large response body streams through: fewer, larger
/// reads and writes (and loopback segments) per body than with `BUF_SIZE`.
pub const BIG_BUF_SIZE: usize = 64 * 1024;
/// Big buffers kept on their own free list (at most 4 MiB per worker).
const MAX_FREE_BIG_BUFFERS: usize = 64;

pub struct Worker {
    pub id: usize,
    pub config: Arc<Config>,
    /// Per listener.
    pub routes: Vec<RouteTable>,
    /// Per listener: the TLS acceptor, when the listener terminates TLS.
    pub tls: Vec<Option<monoio_rustls::TlsAcceptor>>,
    pub pool: RefCell<UpstreamPool>,
    /// Per cluster.
    pub balancers: Vec<RoundRobin>,
    /// Per route (by `Route::index`): the weighted cursor of a split route.
    pub splits: Vec<Option<SmoothWeighted>>,
    /// Open downstream connections.
    pub active: Cell<usize>,
    /// Notified when a downstream connection closes (accept gate).
    pub conn_closed: LocalNotify,
    /// Notified once when the worker starts draining.
    pub shutdown: LocalNotify,
    pub draining: Cell<bool>,
    /// Connection deadlines (header/idle/body/upstream/write timeouts).
    pub watchdog: Watchdog,
    /// This worker's counters (single writer: this worker).
    pub stats: Arc<WorkerStats>,
    /// This worker's latency histograms, published every `publish_interval`.
    pub histograms: WorkerHistograms,
    /// This worker's access log buffer, when the access log is on.
    pub access_log: Option<WorkerLog>,
    buffers: RefCell<Vec<Vec<u8>>>,
    big_buffers: RefCell<Vec<Vec<u8>>>,
    request_ids: Cell<u64>,
}

impl Worker {
    pub fn new(
        id: usize,
        config: Arc<Config>,
        stats: Arc<WorkerStats>,
        log_tx: Option<std::sync::mpsc::Sender<Vec<u8>>>,
    ) -> Self {
        let access_log = match (&config.access_log, log_tx) {
            (Some(c), Some(tx)) => Some(WorkerLog::new(c, tx)),
            _ => None,
        };
        let routes = (0..config.listeners.len())
            .map(|l| RouteTable::build(&config, l))
            .collect();
        let tls = config
            .listeners
            .iter()
            .map(|l| l.tls.clone().map(monoio_rustls::TlsAcceptor::from))
            .collect();
        let balancers = config
            .clusters
            .iter()
            .map(|c| RoundRobin::starting_at(id % c.endpoints.len().max(1)))
            .collect();
        let splits = config
            .routes
            .iter()
            .map(|r| match &r.action {
                crate::config::RouteAction::Split(s) => {
                    let w: Vec<u32> = s.targets.iter().map(|t| t.1).collect();
                    Some(SmoothWeighted::new(&w))
                }
                _ => None,
            })
            .collect();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ ((id as u64) << 56)
            ^ (std::process::id() as u64) << 32;
        Worker {
            id,
            pool: RefCell::new(UpstreamPool::new(&config)),
            histograms: WorkerHistograms::new(&config),
            stats,
            access_log,
            config,
            routes,
            tls,
            balancers,
            splits,
            active: Cell::new(0),
            conn_closed: LocalNotify::new(),
            shutdown: LocalNotify::new(),
            draining: Cell::new(false),
            watchdog: Watchdog::default(),
            buffers: RefCell::new(Vec::new()),
            big_buffers: RefCell::new(Vec::new()),
            request_ids: Cell::new(seed | 1),
        }
    }

    /// Publish the histograms that changed and the pool gauge.
    pub fn publish_stats(&self) {
        if let Some(set) = self.histograms.snapshot() {
            self.stats.histograms.store(Arc::new(set));
        }
        let idle = self.pool.borrow().idle_count() as i64;
        self.stats.pool_idle.add(idle - self.stats.pool_idle.get());
    }

    /// A cleared buffer with at least `BUF_SIZE` capacity.
    pub fn take_buffer(&self) -> Vec<u8> {
        self.buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
    }

    /// A cleared buffer with at least `BIG_BUF_SIZE` capacity.
    pub fn take_big_buffer(&self) -> Vec<u8> {
        self.big_buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BIG_BUF_SIZE))
    }

    /// Give a buffer back to the free list its size belongs to. Buffers of
    /// other sizes (grown for a big head) are dropped so the lists stay small.
    pub fn give_buffer(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        let (list, max) = if (BUF_SIZE..BIG_BUF_SIZE).contains(&cap) {
            (&self.buffers, MAX_FREE_BUFFERS)
        } else if (BIG_BUF_SIZE..=2 * BIG_BUF_SIZE).contains(&cap) {
            (&self.big_buffers, MAX_FREE_BIG_BUFFERS)
        } else {
            return;
        };
        let mut list = list.borrow_mut();
        if list.len() < max {
            buf.clear();
            list.push(buf);
        }
    }

    /// A fresh 128-bit request id as 32 lower-case hex digits (xorshift; unique
    /// enough for correlation, not a secret).
    pub fn next_request_id(&self, out: &mut [u8; 32]) {
        let mut words = [0u64; 2];
        for w in &mut words {
            let mut x = self.request_ids.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.request_ids.set(x);
            *w = x;
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in words[0]
            .to_be_bytes()
            .iter()
            .chain(words[1].to_be_bytes().iter())
            .enumerate()
        {
            out[2 * i] = HEX[(byte >> 4) as usize];
            out[2 * i + 1] = HEX[(byte & 15) as usize];
        }
    }
}

/// Counts a downstream connection for as long as it lives.
pub struct ConnGuard {
    worker: Rc<Worker>,
    listener: usize,
}

impl ConnGuard {
    pub fn new(worker: Rc<Worker>, listener: usize) -> Self {
        worker.active.set(worker.active.get() + 1);
        let l = &worker.stats.listeners[listener];
        l.cx_total.inc();
        l.cx_active.add(1);
        ConnGuard { worker, listener }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.worker.active.set(self.worker.active.get() - 1);
        self.worker.stats.listeners[self.listener].cx_active.add(-1);
        self.worker.conn_closed.notify_all();
    }
}

/// The worker's main task: accept on every listener until shutdown, then
/// drain. Returns when every connection is done or the drain timeout passed.
pub async fn worker_main(
    worker: Rc<Worker>,
    listeners: Vec<std::net::TcpListener>,
    flag: ShutdownFlag,
) {
    let mut accept_tasks = Vec::new();
    for (index, std_listener) in listeners.into_iter().enumerate() {
        let listener = match TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(worker = worker.id, "cannot register listener: {e}");
                continue;
            }
        };
        accept_tasks.push(monoio::spawn(accept_loop(worker.clone(), index, listener)));
    }

    // The shutdown watch, stats publishing and idle pool sweeping share one
    // tick.
    let publish_every = worker.config.stats.publish_interval;
    let tick = WATCH_TICK.min(publish_every).min(super::watchdog::TICK);
    let mut last_publish = std::time::Instant::now();
    let mut last_sweep = last_publish;
    while !flag.is_set() {
        monoio::time::sleep(tick).await;
        worker.watchdog.tick(false);
        let now = std::time::Instant::now();
        if let Some(log) = &worker.access_log {
            log.tick();
        }
        if now.duration_since(last_publish) >= publish_every {
            worker.publish_stats();
            last_publish = now;
        }
        if now.duration_since(last_sweep) >= Duration::from_secs(1) {
            worker.pool.borrow_mut().sweep();
            last_sweep = now;
        }
    }

    worker.draining.set(true);
    worker.shutdown.notify_all();
    worker.watchdog.tick(true);
    for task in accept_tasks {
        task.await;
    }
    worker.pool.borrow_mut().clear();
    worker.publish_stats();
    let deadline = std::time::Instant::now() + worker.config.runtime.drain_timeout;
    while worker.active.get() > 0 && std::time::Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
        worker.watchdog.tick(true);
    }
    worker.publish_stats();
    if let Some(log) = &worker.access_log {
        log.flush();
    }
    if worker.active.get() > 0 {
        tracing::warn!(
            worker = worker.id,
            open = worker.active.get(),
            "drain timeout reached; closing remaining connections"
        );
    }
}

async fn accept_loop(worker: Rc<Worker>, listener_index: usize, listener: TcpListener) {
    let max = worker.config.runtime.max_connections_per_worker;
    loop {
        // Accept gate: stop taking connections while at the limit.
        while worker.active.get() >= max && !worker.draining.get() {
            monoio::select! {
                _ = worker.conn_closed.notified() => {}
                _ = worker.shutdown.notified() => {}
            }
        }
        if worker.draining.get() {
            break;
        }
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = worker.shutdown.notified() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                tracing::debug!(worker = worker.id, %peer, "accepted");
                let _ = stream.set_nodelay(true);
                let guard = ConnGuard::new(worker.clone(), listener_index);
                monoio::spawn(pipeline::serve_tcp(
                    worker.clone(),
                    listener_index,
                    stream,
                    peer,
                    guard,
                ));
            }
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                tracing::warn!(worker = worker.id, "accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
}

/// Peer address type re-export for the pipeline.
pub type Peer = SocketAddr;

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> Worker {
        let config = Arc::new(
            Config::parse(
                "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n\n\
                 [[route]]\npath_prefix = \"/\"\ncluster = \"c\"\n\n\
                 [[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9\"]\n",
                None,
            )
            .unwrap(),
        );
        let stats = Arc::new(WorkerStats::new(0, &config));
        Worker::new(0, config, stats, None)
    }

    #[test]
    fn buffers_go_back_to_the_list_of_their_size() {
        let w = worker();
        let small = w.take_buffer();
        assert!(small.capacity() >= BUF_SIZE && small.capacity() < BIG_BUF_SIZE);
        let big = w.take_big_buffer();
        assert!(big.capacity() >= BIG_BUF_SIZE);
        let (small_ptr, big_ptr) = (small.as_ptr(), big.as_ptr());
        w.give_buffer(big);
        w.give_buffer(small);
        // Each comes back from its own list, storage and all.
        let (big, small) = (w.take_big_buffer(), w.take_buffer());
        assert_eq!(big.as_ptr(), big_ptr);
        assert_eq!(small.as_ptr(), small_ptr);
        drop((big, small));
        // Odd sizes are dropped, not kept.
        w.give_buffer(Vec::with_capacity(1024));
        w.give_buffer(Vec::with_capacity(4 * BIG_BUF_SIZE));
        assert!(w.buffers.borrow().is_empty());
        assert!(w.big_buffers.borrow().is_empty());
        // The big list is bounded.
        for _ in 0..MAX_FREE_BIG_BUFFERS + 10 {
            w.give_buffer(Vec::with_capacity(BIG_BUF_SIZE));
        }
        assert_eq!(w.big_buffers.borrow().len(), MAX_FREE_BIG_BUFFERS);
    }
}
