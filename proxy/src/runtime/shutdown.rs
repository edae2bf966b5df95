//! Graceful shutdown: the main thread flips one flag; each worker watches it
//! on a short tick and turns it into a local notification for its tasks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Written once by the main thread (on SIGTERM/SIGINT), read by workers;
/// and the drain's one barrier: how many workers have closed their
/// listeners.
#[derive(Debug, Default, Clone)]
pub struct ShutdownFlag(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    set: AtomicBool,
    /// The listening sockets went to a new process (binary upgrade): stop
    /// accepting without shutting them down.
    handed_over: AtomicBool,
    stopped_accepting: AtomicUsize,
}

impl ShutdownFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn trigger(&self) {
        self.0.set.store(true, Ordering::Release);
    }

    /// Before [`trigger`](Self::trigger), for a drain after a binary
    /// upgrade.
    pub fn hand_over(&self) {
        self.0.handed_over.store(true, Ordering::Release);
        self.trigger();
    }

    pub fn handed_over(&self) -> bool {
        self.0.handed_over.load(Ordering::Acquire)
    }

    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::Acquire)
    }

    /// A worker has closed its listening sockets.
    pub fn stopped_accepting(&self) {
        self.0.stopped_accepting.fetch_add(1, Ordering::AcqRel);
    }

    /// How many workers have closed their listening sockets.
    pub fn workers_stopped_accepting(&self) -> usize {
        self.0.stopped_accepting.load(Ordering::Acquire)
    }
}

/// How often a worker looks at the flag.
pub const WATCH_TICK: Duration = Duration::from_millis(50);
