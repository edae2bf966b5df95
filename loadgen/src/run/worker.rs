//! One `run` worker: its connections, its counters and the watcher task
//! that stops it at the deadline, publishes progress and rotates HdrHistogram
//! log intervals. Everything here is thread-local; the only shared values
//! are the immutable plan and one progress counter per worker.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::client::Connector;
use super::stats::{new_histogram, ErrorKind, WorkerStats};
use super::{closed_loop, open_loop};
use crate::cli::RunConfig;

/// Everything the workers share, immutable.
pub struct Plan {
    pub cfg: RunConfig,
    pub addr: SocketAddr,
    /// One serialised request.
    pub request: Vec<u8>,
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// What worker `index` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Global indices of its connections.
    pub connections: std::ops::Range<usize>,
    /// Its part of `-n`.
    pub quota: Option<u64>,
}

/// Split connections and `-n` over `workers` exactly: worker `w` with
/// `c_w` of the `c` connections gets `n * c_w / c` requests, and the
/// remainder (fewer than `workers`) goes one each to the first workers.
/// Within a worker, connections claim requests from its budget as they go.
pub fn shares(connections: usize, workers: usize, requests: Option<u64>) -> Vec<Share> {
    let mut out = Vec::with_capacity(workers);
    let mut first = 0;
    for w in 0..workers {
        let count = connections / workers + usize::from(w < connections % workers);
        let quota = requests.map(|n| (n as u128 * count as u128 / connections as u128) as u64);
        out.push(Share {
            connections: first..first + count,
            quota,
        });
        first += count;
    }
    if let Some(n) = requests {
        let given: u64 = out.iter().filter_map(|s| s.quota).sum();
        for share in out.iter_mut().take((n - given) as usize) {
            share.quota = share.quota.map(|q| q + 1);
        }
    }
    out
}

/// Per-worker progress, published by the watcher a few times per second.
#[repr(align(64))]
#[derive(Default)]
pub struct ProgressSlot {
    /// Requests finished (responses + errors) while measuring.
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub finished: std::sync::atomic::AtomicBool,
}

/// One HdrHistogram log interval from one worker.
pub struct Interval {
    pub index: u64,
    pub histogram: Histogram<u64>,
}

/// A stop flag that wakes one waiter per slot (each connection task has
/// one, so repeated polls never pile up wakers).
pub struct StopSignal {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Option<Waker>>>,
}

impl StopSignal {
    pub fn new(slots: usize) -> Self {
        StopSignal {
            fired: Cell::new(false),
            wakers: RefCell::new(vec![None; slots]),
        }
    }

    pub fn fire(&self) {
        self.fired.set(true);
        let wakers: Vec<Waker> = self
            .wakers
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.fired.get()
    }

    pub fn wait(&self, slot: usize) -> StopWait<'_> {
        StopWait { signal: self, slot }
    }
}

pub struct StopWait<'a> {
    signal: &'a StopSignal,
    slot: usize,
}

impl Future for StopWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.fired.get() {
            return Poll::Ready(());
        }
        let mut wakers = self.signal.wakers.borrow_mut();
        let slot = &mut wakers[self.slot];
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The worker's state, shared by its tasks through `Rc`.
pub struct Ctx {
    pub plan: Arc<Plan>,
    /// `pipeline` copies of the request back to back.
    pub requests: Rc<Vec<u8>>,
    pub request_len: usize,
    pub head: bool,
    pub connector: Connector,
    pub stats: RefCell<WorkerStats>,
    /// Per-interval histogram for `--hdr-log`.
    pub interval: RefCell<Option<Histogram<u64>>>,
    /// Requests of `-n` not yet claimed by a connection.
    pub remaining: Option<Cell<u64>>,
    pub start: Instant,
    pub measure_start: Instant,
    pub deadline: Option<Instant>,
    pub stop: StopSignal,
}

impl Ctx {
    pub fn new(plan: Arc<Plan>, share: &Share, start: Instant, hdr_log: bool) -> Ctx {
        let cfg = &plan.cfg;
        let mut requests = Vec::with_capacity(plan.request.len() * cfg.pipeline);
        for _ in 0..cfg.pipeline {
            requests.extend_from_slice(&plan.request);
        }
        let measure_start = start + cfg.warmup;
        let deadline = match cfg.stop {
            crate::cli::Stop::After(d) => Some(measure_start + d),
            crate::cli::Stop::Requests(_) => None,
        };
        Ctx {
            request_len: plan.request.len(),
            requests: Rc::new(requests),
            head: cfg.is_head(),
            connector: Connector::new(plan.addr, plan.tls.clone(), cfg.timeout),
            stats: RefCell::new(WorkerStats::default()),
            interval: RefCell::new(hdr_log.then(new_histogram)),
            remaining: share.quota.map(Cell::new),
            start,
            measure_start,
            deadline,
            stop: StopSignal::new(share.connections.len() + 1),
            plan,
        }
    }

    /// Claim up to `want` requests of the `-n` budget (all of them when
    /// there is no budget). 0: the budget is spent.
    pub fn claim(&self, want: usize) -> usize {
        match &self.remaining {
            None => want,
            Some(left) => {
                let k = left.get().min(want as u64);
                left.set(left.get() - k);
                k as usize
            }
        }
    }

    pub fn counted(&self) -> bool {
        self.remaining.is_some()
    }

    #[inline]
    pub fn record_response(&self, status: u16, latency: Duration) {
        self.stats.borrow_mut().record_response(status, latency);
        if let Some(h) = self.interval.borrow_mut().as_mut() {
            h.saturating_record((latency.as_nanos() as u64 / 1_000).max(1));
        }
    }

    pub fn record_errors(&self, kind: ErrorKind, count: usize) {
        let mut stats = self.stats.borrow_mut();
        for _ in 0..count {
            stats.record_error(kind);
        }
    }

    pub fn add_bytes(&self, bytes: u64) {
        self.stats.borrow_mut().bytes += bytes;
    }
}

/// What a worker hands back.
pub struct WorkerOutput {
    pub stats: WorkerStats,
    /// When its last connection stopped.
    pub end: Instant,
}

const TICK: Duration = Duration::from_millis(100);
pub const HDR_INTERVAL: Duration = Duration::from_secs(1);

pub async fn worker_main(
    ctx: Rc<Ctx>,
    share: Share,
    progress: Arc<[ProgressSlot]>,
    index: usize,
    hdr: Option<Sender<Interval>>,
) -> WorkerOutput {
    let n = share.connections.len();
    let live = Rc::new(Cell::new(n));
    let open = ctx.plan.cfg.rate.is_some();
    let mut handles = Vec::with_capacity(n);
    for (slot, global) in share.connections.clone().enumerate() {
        let ctx = ctx.clone();
        let live = live.clone();
        handles.push(monoio::spawn(async move {
            monoio::select! {
                biased;
                _ = ctx.stop.wait(slot) => {}
                _ = async {
                    if open {
                        open_loop::run_connection(&ctx, global).await
                    } else {
                        closed_loop::run_connection(&ctx).await
                    }
                } => {}
            }
            live.set(live.get() - 1);
            if live.get() == 0 {
                ctx.stop.fire();
            }
        }));
    }

    let publish = |ctx: &Ctx| {
        let stats = ctx.stats.borrow();
        let errors = stats.error_total();
        progress[index]
            .done
            .store(stats.responses + errors, Ordering::Relaxed);
        progress[index].errors.store(errors, Ordering::Relaxed);
    };
    let mut next_interval = 1u64;
    let rotate = |ctx: &Ctx, interval_index: u64| {
        if let Some(tx) = &hdr {
            let fresh = new_histogram();
            if let Some(h) = ctx.interval.borrow_mut().replace(fresh) {
                let _ = tx.send(Interval {
                    index: interval_index,
                    histogram: h,
                });
            }
        }
    };
    loop {
        let now = Instant::now();
        publish(&ctx);
        if hdr.is_some() {
            while now >= ctx.measure_start + HDR_INTERVAL * next_interval as u32 {
                rotate(&ctx, next_interval - 1);
                next_interval += 1;
            }
        }
        if ctx.stop.is_fired() {
            break;
        }
        if crate::runtime::interrupted() || ctx.deadline.is_some_and(|d| now >= d) {
            ctx.stop.fire();
            break;
        }
        let mut wait = TICK;
        if let Some(d) = ctx.deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        if hdr.is_some() {
            let boundary = ctx.measure_start + HDR_INTERVAL * next_interval as u32;
            wait = wait.min(boundary.saturating_duration_since(now));
        }
        monoio::select! {
            biased;
            _ = ctx.stop.wait(n) => {}
            _ = monoio::time::sleep(wait) => {}
        }
    }
    for h in handles {
        h.await;
    }
    let end = Instant::now();
    publish(&ctx);
    if hdr.is_some() && end > ctx.measure_start {
        rotate(&ctx, next_interval - 1);
    }
    progress[index].finished.store(true, Ordering::Release);
    let stats = ctx.stats.replace(WorkerStats::default());
    WorkerOutput { stats, end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_exact() {
        for (c, w, n) in [
            (10, 3, 10_000u64),
            (7, 2, 5),
            (1, 1, 1),
            (64, 2, 999_999),
            (3, 3, 2),
        ] {
            let s = shares(c, w, Some(n));
            assert_eq!(s.len(), w);
            assert_eq!(s.iter().map(|s| s.connections.len()).sum::<usize>(), c);
            assert_eq!(s.iter().map(|s| s.quota.unwrap()).sum::<u64>(), n);
            assert_eq!(s[0].connections.start, 0);
            assert_eq!(s[w - 1].connections.end, c);
            for share in &s {
                let fair = n as f64 * share.connections.len() as f64 / c as f64;
                assert!((share.quota.unwrap() as f64 - fair).abs() <= 1.0, "{s:?}");
            }
        }
        assert!(shares(4, 2, None).iter().all(|s| s.quota.is_none()));
    }

    #[test]
    fn stop_signal_wakes_waiters_once() {
        let out = crate::runtime::run_on_driver(
            crate::runtime::DriverChoice::Legacy,
            64,
            || async {
                let stop = Rc::new(StopSignal::new(2));
                let s2 = stop.clone();
                let waiter = monoio::spawn(async move {
                    s2.wait(0).await;
                    7
                });
                monoio::time::sleep(Duration::from_millis(5)).await;
                assert!(!stop.is_fired());
                stop.fire();
                let v = waiter.await;
                stop.wait(1).await;
                v
            },
            |_| {},
        );
        assert_eq!(out, Some(7));
    }
}
