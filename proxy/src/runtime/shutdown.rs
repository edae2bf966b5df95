//! Graceful shutdown: the main thread flips one flag; each worker watches it
//! on a short tick and turns it into a local notification for its tasks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Written once by the main thread (on SIGTERM/SIGINT), read by workers.
#[derive(Debug, Default, Clone)]
pub struct ShutdownFlag(Arc<AtomicBool>);

impl ShutdownFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn trigger(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// How often a worker looks at the flag.
pub const WATCH_TICK: Duration = Duration::from_millis(50);
