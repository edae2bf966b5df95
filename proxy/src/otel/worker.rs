//! A worker's span buffer: encoded spans collect here and are handed to
//! the exporter thread whole, when `batch_spans` are in or on the
//! worker's tick after `flush_interval`. The hand-over never waits: when
//! the exporter's queue is full the batch is dropped and counted.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use super::exporter::{counters, Batch};
use super::span::{encode, ClientSpan, ServerSpan};

pub struct WorkerSpans {
    batch_spans: usize,
    flush_interval: Duration,
    buf: RefCell<Vec<u8>>,
    scratch: RefCell<Vec<u8>>,
    spans: Cell<usize>,
    since: Cell<Instant>,
    tx: SyncSender<Batch>,
}

impl WorkerSpans {
    pub fn new(batch_spans: usize, flush_interval: Duration, tx: SyncSender<Batch>) -> WorkerSpans {
        WorkerSpans {
            batch_spans,
            flush_interval,
            buf: RefCell::new(Vec::new()),
            scratch: RefCell::new(Vec::with_capacity(1024)),
            spans: Cell::new(0),
            since: Cell::new(Instant::now()),
            tx,
        }
    }

    /// Add one request's spans.
    pub fn record(&self, server: &ServerSpan<'_>, clients: &[ClientSpan<'_>]) {
        {
            let mut buf = self.buf.borrow_mut();
            if buf.capacity() == 0 {
                buf.reserve(self.batch_spans * 512);
            }
            encode(&mut buf, &mut self.scratch.borrow_mut(), server, clients);
        }
        self.spans.set(self.spans.get() + 1 + clients.len());
        if self.spans.get() >= self.batch_spans {
            self.flush();
        }
    }

    /// Hand over what is buffered.
    pub fn flush(&self) {
        self.since.set(Instant::now());
        let spans = self.spans.replace(0);
        if spans == 0 {
            return;
        }
        let bytes = std::mem::take(&mut *self.buf.borrow_mut());
        match self.tx.try_send(Batch { spans, bytes }) {
            Ok(()) => {}
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                counters()
                    .dropped_queue_full
                    .fetch_add(b.spans as u64, Ordering::Relaxed);
                // Keep the allocation for the next batch.
                let mut bytes = b.bytes;
                bytes.clear();
                *self.buf.borrow_mut() = bytes;
            }
        }
    }

    /// The worker's tick: flush when the oldest span waited long enough.
    pub fn tick(&self) {
        if self.since.get().elapsed() >= self.flush_interval {
            self.flush();
        }
    }
}
