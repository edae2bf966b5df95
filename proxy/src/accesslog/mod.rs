//! Access log: one line per request, JSON or combined format.
//!
//! # Architecture
//! Each worker appends lines to its own buffer ([`WorkerLog`]); a full buffer
//! (or one older than `flush_interval`) is handed whole to the writer thread
//! ([`sink::AccessLogSink`]) over a channel. The worker never waits on the
//! disk or on stdout, and nothing crosses cores per request — only one
//! buffer per batch. SIGUSR1 makes the writer reopen the file (log rotation).

pub mod format;
pub mod record;
pub mod sink;
pub mod time;

use std::cell::RefCell;
use std::sync::mpsc::Sender;
use std::time::Instant;

use crate::config::{AccessLogConfig, AccessLogFormat};
pub use record::{LogLine, RequestMeta};
pub use sink::AccessLogSink;

/// A worker's side of the access log.
pub struct WorkerLog {
    format: AccessLogFormat,
    limit: usize,
    flush_interval: std::time::Duration,
    buf: RefCell<Vec<u8>>,
    since: RefCell<Instant>,
    clock: RefCell<time::ClockCache>,
    tx: Sender<Vec<u8>>,
}

impl WorkerLog {
    pub fn new(config: &AccessLogConfig, tx: Sender<Vec<u8>>) -> Self {
        WorkerLog {
            format: config.format,
            limit: config.buffer_bytes,
            flush_interval: config.flush_interval,
            buf: RefCell::new(Vec::with_capacity(config.buffer_bytes + 1024)),
            since: RefCell::new(Instant::now()),
            clock: RefCell::new(time::ClockCache::default()),
            tx,
        }
    }

    /// Append one line; hand the buffer over when it is full.
    pub fn write(&self, line: &LogLine<'_>) {
        let mut buf = self.buf.borrow_mut();
        let mut clock = self.clock.borrow_mut();
        match self.format {
            AccessLogFormat::Json => format::json(&mut buf, &mut clock, line),
            AccessLogFormat::Combined => format::combined(&mut buf, &mut clock, line),
        }
        if buf.len() >= self.limit {
            drop(buf);
            self.flush();
        }
    }

    /// Hand over whatever is buffered.
    pub fn flush(&self) {
        let mut buf = self.buf.borrow_mut();
        *self.since.borrow_mut() = Instant::now();
        if buf.is_empty() {
            return;
        }
        let full = std::mem::replace(&mut *buf, Vec::with_capacity(self.limit + 1024));
        // The writer thread only goes away at exit; a failed send loses
        // this batch and nothing else.
        let _ = self.tx.send(full);
    }

    /// Called on the worker tick: flush when the buffer is old enough.
    pub fn tick(&self) {
        if self.since.borrow().elapsed() >= self.flush_interval {
            self.flush();
        }
    }
}
