//! One worker's long-lived, per-core state.
//!
//! A `Worker` lives on one pinned thread inside one monoio runtime; it is
//! shared by that worker's tasks through `Rc` and is deliberately `!Send`.
//! It owns what outlives a configuration generation: the upstream pool
//! (keyed by endpoint address + TLS identity, re-laid out on reload), the
//! buffer free lists, the connection deadlines, the connection count and the
//! drain flag. Per-generation state (routes, balancers, stats layout) is in
//! `pipeline::generation`; the serving loop that ties them together is
//! `pipeline::serve`. Nothing here imports the pipeline.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use super::free_list::{discard_pages, FreeList};
use super::notify::LocalNotify;
use super::watchdog::Watchdog;
use crate::accesslog::WorkerLog;
use crate::config::Config;
use crate::stats::ListenerStats;
use crate::upstream::UpstreamPool;

/// Size of recycled connection buffers.
pub const BUF_SIZE: usize = 16 * 1024;
/// Buffers kept on the free list (1 MiB per worker). Buffers given back
/// beyond it are freed, so the memory of connections that went idle (and
/// gave their read buffer back) is not kept for good.
const MAX_FREE_BUFFERS: usize = 64;
/// Size of the buffers a large response body streams through: fewer, larger
/// reads and writes (and loopback segments) per body than with `BUF_SIZE`.
pub const BIG_BUF_SIZE: usize = 64 * 1024;
/// Big buffers kept on their own free list (at most 4 MiB per worker).
const MAX_FREE_BIG_BUFFERS: usize = 64;
/// Size of the buffer a connection reads its request heads into: a busy
/// keep-alive connection holds this buffer in its pending read between
/// requests. A head larger than 4 KiB moves into a `BUF_SIZE` buffer (and
/// grows from there up to `limits.max_head_bytes`); a request body streams
/// through a `BUF_SIZE` buffer. 8 KiB: a head of up to 4 KiB and a whole
/// chunk-size line (`ringway_http::chunked::MAX_CHUNK_LINE`, 4 KiB) fit
/// the first read, so a request that sends an oversized one at once is
/// refused before anything goes upstream, as with a full-size buffer.
pub const HEAD_BUF_SIZE: usize = 8 * 1024;
/// Head buffers kept on their own free list (1 MiB per worker).
const MAX_FREE_HEAD_BUFFERS: usize = 128;
/// Empty splice pipes kept per worker (two descriptors each).
const MAX_FREE_PIPES: usize = 8;

pub struct Worker {
    pub id: usize,
    pub pool: RefCell<UpstreamPool>,
    /// HTTP/2 upstream connections (`upstream::h2`).
    pub h2_pool: RefCell<crate::upstream::h2::pool::H2Pool>,
    /// Open downstream connections.
    pub active: Cell<usize>,
    /// Every worker's open downstream connections (this one's written
    /// here, the others read by the `balanced` accept gate).
    pub loads: std::cell::OnceCell<std::sync::Arc<[std::sync::atomic::AtomicUsize]>>,
    /// Notified when a downstream connection closes (accept gate).
    pub conn_closed: LocalNotify,
    /// Notified once when the worker starts draining.
    pub shutdown: LocalNotify,
    pub draining: Cell<bool>,
    /// Set when the drain starts: idle connections close from this time,
    /// spread over this long (`runtime.drain_idle_grace`).
    pub drain_idle: Cell<Option<(std::time::Instant, std::time::Duration)>>,
    /// Connection deadlines (header/idle/body/upstream/write timeouts).
    pub watchdog: Watchdog,
    /// This worker's access log buffer, when the access log is on.
    pub access_log: Option<WorkerLog>,
    /// This worker's span buffer, when spans are exported.
    pub spans: Option<crate::otel::WorkerSpans>,
    /// Free buffers by size (`runtime::free_list`).
    head_buffers: FreeList,
    buffers: FreeList,
    big_buffers: FreeList,
    pipes: RefCell<Vec<crate::net::splice::BodyPipe>>,
    request_ids: Cell<u64>,
}

impl Worker {
    pub fn new(
        id: usize,
        config: &Config,
        log_tx: Option<std::sync::mpsc::Sender<Vec<u8>>>,
        span_tx: Option<std::sync::mpsc::SyncSender<crate::otel::exporter::Batch>>,
    ) -> Self {
        let access_log = match (&config.access_log, log_tx) {
            (Some(c), Some(tx)) => Some(WorkerLog::new(c, tx)),
            _ => None,
        };
        let spans = match (&config.trace.otlp, span_tx) {
            (Some(o), Some(tx)) => Some(crate::otel::WorkerSpans::new(
                o.batch_spans,
                o.flush_interval,
                tx,
            )),
            _ => None,
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ ((id as u64) << 56)
            ^ (std::process::id() as u64) << 32;
        Worker {
            id,
            pool: RefCell::new(UpstreamPool::new(config)),
            h2_pool: RefCell::new(Default::default()),
            access_log,
            spans,
            active: Cell::new(0),
            loads: std::cell::OnceCell::new(),
            conn_closed: LocalNotify::new(),
            shutdown: LocalNotify::new(),
            draining: Cell::new(false),
            drain_idle: Cell::new(None),
            watchdog: Watchdog::with_idle_release(
                config
                    .runtime
                    .idle_read_release
                    .then_some(super::watchdog::IDLE_READ_RELEASE_AFTER),
            ),
            head_buffers: FreeList::new(HEAD_BUF_SIZE, MAX_FREE_HEAD_BUFFERS),
            buffers: FreeList::new(BUF_SIZE, MAX_FREE_BUFFERS),
            big_buffers: FreeList::new(BIG_BUF_SIZE, MAX_FREE_BIG_BUFFERS),
            pipes: RefCell::new(Vec::new()),
            request_ids: Cell::new(seed | 1),
        }
    }

    /// A cleared buffer with at least `BUF_SIZE` capacity.
    pub fn take_buffer(&self) -> Vec<u8> {
        self.buffers.take()
    }

    /// A cleared buffer for reading request heads: at least
    /// `HEAD_BUF_SIZE` capacity.
    pub fn take_head_buffer(&self) -> Vec<u8> {
        self.head_buffers.take()
    }

    /// A cleared buffer with at least `BIG_BUF_SIZE` capacity.
    pub fn take_big_buffer(&self) -> Vec<u8> {
        self.big_buffers.take()
    }

    /// Free the buffers that sat on the free lists unused since the last
    /// call (`FreeList::trim`). Called once a second by the worker's tick.
    pub fn trim_free_buffers(&self) {
        self.head_buffers.trim();
        self.buffers.trim();
        self.big_buffers.trim();
    }

    /// The free list buffers of capacity `cap` belong to (`None`: another
    /// size, grown for a big head, which is freed instead).
    fn list_for(&self, cap: usize) -> Option<&FreeList> {
        if (HEAD_BUF_SIZE..BUF_SIZE).contains(&cap) {
            Some(&self.head_buffers)
        } else if (BUF_SIZE..BIG_BUF_SIZE).contains(&cap) {
            Some(&self.buffers)
        } else if (BIG_BUF_SIZE..=2 * BIG_BUF_SIZE).contains(&cap) {
            Some(&self.big_buffers)
        } else {
            None
        }
    }

    /// An empty pipe for a splice(2) body transfer (`pipeline::splice`).
    pub fn take_pipe(&self) -> std::io::Result<crate::net::splice::BodyPipe> {
        match self.pipes.borrow_mut().pop() {
            Some(p) => Ok(p),
            None => crate::net::splice::BodyPipe::new(),
        }
    }

    /// Give back a pipe that is empty (one holding bytes is dropped).
    pub fn give_pipe(&self, pipe: crate::net::splice::BodyPipe) {
        let mut list = self.pipes.borrow_mut();
        if list.len() < MAX_FREE_PIPES {
            list.push(pipe);
        }
    }

    /// Give a buffer back to the free list its size belongs to. Buffers of
    /// other sizes (grown for a big head) are dropped so the lists stay small.
    pub fn give_buffer(&self, buf: Vec<u8>) {
        if let Some(list) = self.list_for(buf.capacity()) {
            list.give(buf);
        }
    }

    /// Give back the read buffer of a connection gone idle. Past the free
    /// list's cap it is freed, and its whole pages are first handed back to
    /// the kernel: the allocator keeps a freed block resident in its heap
    /// for reuse, which would keep the idle connections' memory.
    pub fn release_buffer(&self, buf: Vec<u8>) {
        match self.list_for(buf.capacity()) {
            Some(list) => list.release(buf),
            None => discard_pages(buf),
        }
    }

    /// A pseudo-random number from the same stream (jitter; not a secret).
    pub fn random_u64(&self) -> u64 {
        let mut x = self.request_ids.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.request_ids.set(x);
        x
    }

    /// A fresh 128-bit request id as 32 lower-case hex digits (xorshift; unique
    /// enough for correlation, not a secret).
    pub fn next_request_id(&self, out: &mut [u8; 32]) {
        for half in out.chunks_exact_mut(16) {
            half.copy_from_slice(&hex16(self.random_u64()));
        }
    }
}

/// `x` as 16 lower-case hex digits, most significant first: every nibble
/// spread into a byte of a register, then turned into its digit eight at a
/// time (no table lookup per digit; this runs on every request).
pub fn hex16(x: u64) -> [u8; 16] {
    // The nibbles of a 32-bit half, nibble k in byte k.
    fn spread(x: u32) -> u64 {
        let x = u64::from(x);
        let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
        let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
        (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f
    }
    // Per byte: '0' + n, plus 'a' - '0' - 10 = 0x27 where n ≥ 10 (n + 6
    // carries into bit 4 exactly then).
    fn digits(n: u64) -> [u8; 8] {
        let letter = ((n + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (n + 0x3030_3030_3030_3030 + letter * 0x27).to_be_bytes()
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&digits(spread((x >> 32) as u32)));
    out[8..].copy_from_slice(&digits(spread(x as u32)));
    out
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn hex16_matches_format() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        for v in [0, 1, 9, 10, 15, 16, u64::MAX, 0xa0b0_c0d0_e0f0_0090, x] {
            assert_eq!(super::hex16(v).as_slice(), format!("{v:016x}").as_bytes());
        }
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_eq!(super::hex16(x).as_slice(), format!("{x:016x}").as_bytes());
        }
    }
}

/// Counts a downstream connection for as long as it lives (in the worker's
/// count for the accept gate, and in its listener's stats of the
/// generation it was accepted under).
impl Worker {
    /// Publish this worker's open connections for the `balanced` accept
    /// gate of the other workers.
    #[inline]
    fn publish_load(&self) {
        if let Some(loads) = self.loads.get() {
            loads[self.id].store(self.active.get(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// `balanced` accept: whether this worker may take a connection now (it
    /// holds at most one more than the least loaded worker).
    pub fn may_accept_balanced(&self) -> bool {
        let Some(loads) = self.loads.get() else {
            return true;
        };
        let least = loads
            .iter()
            .map(|l| l.load(std::sync::atomic::Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        self.active.get() <= least + 1
    }
}

pub struct ConnGuard {
    worker: Rc<Worker>,
    stats: Arc<ListenerStats>,
}

impl ConnGuard {
    pub fn new(worker: Rc<Worker>, stats: Arc<ListenerStats>) -> Self {
        worker.active.set(worker.active.get() + 1);
        worker.publish_load();
        stats.cx_total.inc();
        stats.cx_active.add(1);
        ConnGuard { worker, stats }
    }
}

impl ConnGuard {
    /// The listener stats this connection counts in.
    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.worker.active.set(self.worker.active.get() - 1);
        self.worker.publish_load();
        self.stats.cx_active.add(-1);
        self.worker.conn_closed.notify_all();
    }
}

/// A worker of a one-route configuration, for unit tests.
#[cfg(test)]
pub(crate) fn test_worker() -> Worker {
    let config = Arc::new(
        Config::parse(
            "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n\n\
                 [[route]]\npath_prefix = \"/\"\ncluster = \"c\"\n\n\
                 [[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9\"]\n",
            None,
        )
        .unwrap(),
    );
    Worker::new(0, &config, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> Worker {
        test_worker()
    }

    #[test]
    fn buffers_go_back_to_the_list_of_their_size() {
        let w = worker();
        let head = w.take_head_buffer();
        assert!(head.capacity() >= HEAD_BUF_SIZE && head.capacity() < BUF_SIZE);
        let small = w.take_buffer();
        assert!(small.capacity() >= BUF_SIZE && small.capacity() < BIG_BUF_SIZE);
        let big = w.take_big_buffer();
        assert!(big.capacity() >= BIG_BUF_SIZE);
        let ptrs = (head.as_ptr(), small.as_ptr(), big.as_ptr());
        w.give_buffer(big);
        w.give_buffer(head);
        w.give_buffer(small);
        // Each comes back from its own list, storage and all.
        let (big, small, head) = (w.take_big_buffer(), w.take_buffer(), w.take_head_buffer());
        assert_eq!((head.as_ptr(), small.as_ptr(), big.as_ptr()), ptrs);
        drop((big, small, head));
        // Odd sizes are dropped, not kept.
        w.give_buffer(Vec::with_capacity(1024));
        w.give_buffer(Vec::with_capacity(4 * BIG_BUF_SIZE));
        w.release_buffer(Vec::with_capacity(4 * BIG_BUF_SIZE));
        assert!(w.head_buffers.is_empty() && w.buffers.is_empty() && w.big_buffers.is_empty());
        // The big list is bounded.
        for _ in 0..MAX_FREE_BIG_BUFFERS + 10 {
            w.give_buffer(Vec::with_capacity(BIG_BUF_SIZE));
        }
        assert_eq!(w.big_buffers.len(), MAX_FREE_BIG_BUFFERS);
        // So are the others: the idle buffers released past them are freed.
        let idle: Vec<_> = (0..MAX_FREE_BUFFERS + 10)
            .map(|_| w.take_buffer())
            .collect();
        for mut b in idle {
            b.extend_from_slice(&[7; 100]);
            b.clear();
            w.release_buffer(b);
        }
        assert_eq!(w.buffers.len(), MAX_FREE_BUFFERS);
        for _ in 0..MAX_FREE_HEAD_BUFFERS + 10 {
            w.release_buffer(Vec::with_capacity(HEAD_BUF_SIZE));
        }
        assert_eq!(w.head_buffers.len(), MAX_FREE_HEAD_BUFFERS);
        // Trims (the first sees the low-water marks of the start, 0; the
        // second that nothing was taken since) leave TRIM_KEEP of each.
        w.trim_free_buffers();
        w.trim_free_buffers();
        let keep = crate::runtime::free_list::TRIM_KEEP;
        assert_eq!(w.head_buffers.len(), keep);
        assert_eq!(w.buffers.len(), keep);
        assert_eq!(w.big_buffers.len(), keep);
    }
}
