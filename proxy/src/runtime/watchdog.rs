//! Connection timeouts without a timer per I/O operation.
//!
//! # Why
//! A `monoio::time::timeout` around every read and write registers and
//! cancels a timer-wheel entry each time — on a small keep-alive request
//! that was several timers and ~15 % of the proxy's user-space instructions.
//! Proxies like nginx and HAProxy keep one cheap deadline per connection
//! instead; so does ringway.
//!
//! # How
//! Each downstream connection owns one slot in the worker's [`Watchdog`]: a
//! deadline, what it guards ([`Guard`]) and the file descriptors involved.
//! Arming it is a couple of stores (the clock is a per-worker coarse clock,
//! refreshed every tick). A worker task ticks every [`TICK`]; when a deadline
//! has passed it records which one fired and `shutdown(2)`s the socket the
//! stuck operation waits on. The pending read or write then completes (end of
//! stream or an error), and the connection task asks the watchdog whether
//! that was a timeout and answers 408 / 504 or closes, as the guard says.
//! During a drain, connections idle between requests get a drain deadline
//! (`runtime.drain_idle_grace` after the drain starts, spread over as long
//! again by slot): a client that is sending its next request right now
//! gets it answered (with `Connection: close`) instead of a reset.
//!
//! A connection's fds are always unregistered before they are closed (the
//! slot is released or cleared synchronously, and the tick runs on the same
//! thread), so the watchdog never touches a reused descriptor.
//!
//! Precision is one tick (50 ms): fine for timeouts in seconds.
//!
//! # Idle read release
//! A keep-alive connection waiting for its next request lends its read
//! buffer to a pending receive. With `runtime.idle_read_release` (default
//! on), the wait also arms a release deadline [`IDLE_READ_RELEASE_AFTER`]
//! away: when it passes, the tick cancels the receive through the slot's
//! [`Canceller`] (an `ASYNC_CANCEL` with io_uring, a cancelled readiness
//! with epoll), and the connection gives the buffer back and polls for
//! readiness instead (`pipeline::read_head`). A request that comes within
//! the grace costs nothing more than two stores and the canceller's
//! bookkeeping: no timer, no syscall, no extra ring operation.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use monoio::io::{CancelHandle, Canceller};
use slab::Slab;

/// How often deadlines are checked (and the coarse clock refreshed).
pub const TICK: Duration = Duration::from_millis(50);

/// How long an idle keep-alive connection keeps its read buffer before the
/// read is cancelled and the buffer given back (see the module docs).
pub const IDLE_READ_RELEASE_AFTER: Duration = Duration::from_secs(1);

/// What a deadline guards, and so what happens when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Keep-alive connection waiting for its next request: close quietly.
    Idle,
    /// A request head being received: 408 (quiet close if nothing came).
    Header,
    /// A request body being received: 408.
    Body,
    /// Waiting for the upstream (response head or body): 504 / close.
    Upstream,
    /// Writing to a client that does not read: close.
    ClientWrite,
}

#[derive(Debug)]
struct Slot {
    /// What the connection belongs to (its listener's socket group), for
    /// [`Watchdog::drain_tag`].
    tag: u64,
    client_fd: RawFd,
    upstream_fd: RawFd,
    deadline: Option<Instant>,
    guard: Guard,
    fired: Option<Guard>,
    /// When the pending idle read is cancelled (its buffer released).
    release_at: Option<Instant>,
    /// Set by the tick when it cancelled the idle read.
    released: bool,
    /// Cancels the idle read; made on the first idle wait, kept after.
    canceller: Option<ReadCanceller>,
}

/// The slot's [`Canceller`] (which has no `Debug`).
struct ReadCanceller(Canceller);

impl std::fmt::Debug for ReadCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadCanceller")
    }
}

/// The per-worker deadline table (`!Send`, owned by the worker).
#[derive(Debug)]
pub struct Watchdog {
    slots: RefCell<Slab<Slot>>,
    now: Cell<Instant>,
    /// `Some(grace)`: idle reads give their buffer back after `grace`.
    release_after: Option<Duration>,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            slots: RefCell::new(Slab::new()),
            now: Cell::new(Instant::now()),
            release_after: None,
        }
    }
}

/// A connection's slot; released on drop.
pub struct WatchKey<'a> {
    dog: &'a Watchdog,
    key: usize,
}

impl Watchdog {
    /// A watchdog whose idle reads give their buffer back after `grace`
    /// (`None`: they keep it).
    pub fn with_idle_release(grace: Option<Duration>) -> Self {
        Watchdog {
            release_after: grace,
            ..Default::default()
        }
    }

    /// The coarse clock (at most one tick old).
    #[inline]
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Register a connection whose client socket is `client_fd`.
    pub fn register(&self, client_fd: RawFd) -> WatchKey<'_> {
        self.register_tagged(client_fd, 0)
    }

    /// Register a connection with a tag (its listener's socket group).
    pub fn register_tagged(&self, client_fd: RawFd, tag: u64) -> WatchKey<'_> {
        let key = self.slots.borrow_mut().insert(Slot {
            tag,
            client_fd,
            upstream_fd: -1,
            deadline: None,
            guard: Guard::Idle,
            fired: None,
            release_at: None,
            released: false,
            canceller: None,
        });
        WatchKey { dog: self, key }
    }

    /// Fire every passed deadline. Called by the worker tick.
    pub fn tick(&self) {
        let now = Instant::now();
        self.now.set(now);
        let mut slots = self.slots.borrow_mut();
        for (_, s) in slots.iter_mut() {
            if s.release_at.is_some_and(|r| r <= now) {
                s.release_at = None;
                s.released = true;
                if let Some(ReadCanceller(c)) = s.canceller.take() {
                    // The read completes with ECANCELED (or with data, if
                    // some came first); a fresh canceller for the next.
                    s.canceller = Some(ReadCanceller(c.cancel()));
                }
            }
            if s.deadline.is_none_or(|d| d > now) {
                continue;
            }
            s.deadline = None;
            s.fired = Some(s.guard);
            let (fd, how) = match s.guard {
                Guard::Idle | Guard::Header | Guard::Body => (s.client_fd, libc::SHUT_RD),
                Guard::ClientWrite => (s.client_fd, libc::SHUT_RDWR),
                Guard::Upstream => (s.upstream_fd, libc::SHUT_RDWR),
            };
            if fd >= 0 {
                // SAFETY: `fd` is open: slots are cleared before their
                // sockets are closed, on this same thread.
                unsafe {
                    libc::shutdown(fd, how);
                }
            }
        }
    }

    /// The drain started: every connection idle between requests closes by
    /// its drain deadline (see [`drain_deadline`]) unless a request comes
    /// first.
    pub fn drain_idle(&self, from: Instant, spread: Duration) {
        let mut slots = self.slots.borrow_mut();
        for (key, s) in slots.iter_mut() {
            if s.guard == Guard::Idle {
                if let Some(d) = s.deadline {
                    s.deadline = Some(d.min(drain_deadline(key, from, spread)));
                }
            }
        }
    }

    /// Close the connections tagged `tag` that are idle between requests
    /// (their listener was removed by a reload); busy ones finish first.
    pub fn drain_tag(&self, tag: u64) {
        let mut slots = self.slots.borrow_mut();
        for (_, s) in slots.iter_mut() {
            if s.tag == tag && s.deadline.is_some() && s.guard == Guard::Idle {
                s.deadline = None;
                s.fired = Some(Guard::Idle);
                if s.client_fd >= 0 {
                    // SAFETY: as in `tick`: the slot's fd is open.
                    unsafe {
                        libc::shutdown(s.client_fd, libc::SHUT_RD);
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl WatchKey<'_> {
    /// Arm the deadline: `guard` fires `after` from now (coarse clock).
    #[inline]
    pub fn arm(&self, guard: Guard, after: Duration) {
        let deadline = self.dog.now() + after;
        self.arm_at(guard, deadline);
    }

    /// Arm the deadline at an absolute time.
    #[inline]
    pub fn arm_at(&self, guard: Guard, deadline: Instant) {
        let mut slots = self.dog.slots.borrow_mut();
        let s = &mut slots[self.key];
        s.deadline = Some(deadline);
        s.guard = guard;
    }

    /// No deadline (the connection is doing something unbounded, or done).
    #[inline]
    pub fn disarm(&self) {
        self.dog.slots.borrow_mut()[self.key].deadline = None;
    }

    /// Which guard fired since the last call, if any (and forget it).
    #[inline]
    pub fn take_fired(&self) -> Option<Guard> {
        self.dog.slots.borrow_mut()[self.key].fired.take()
    }

    /// The grace after which an idle read gives its buffer back (`None`:
    /// the feature is off).
    #[inline]
    pub fn release_after(&self) -> Option<Duration> {
        self.dog.release_after
    }

    /// Arm the release of an idle read at `at`: the read given the
    /// returned handle is cancelled then (by the tick).
    #[inline]
    pub fn arm_release(&self, at: Instant) -> CancelHandle {
        let mut slots = self.dog.slots.borrow_mut();
        let s = &mut slots[self.key];
        s.release_at = Some(at);
        s.released = false;
        s.canceller
            .get_or_insert_with(|| ReadCanceller(Canceller::new()))
            .0
            .handle()
    }

    /// Forget the read canceller (a parked connection has no pending read
    /// to cancel: its two small blocks are freed; the next idle read makes
    /// a new one).
    #[inline]
    pub fn drop_canceller(&self) {
        self.dog.slots.borrow_mut()[self.key].canceller = None;
    }

    /// Disarm the release; whether it fired (the read was cancelled).
    #[inline]
    pub fn disarm_release(&self) -> bool {
        let mut slots = self.dog.slots.borrow_mut();
        let s = &mut slots[self.key];
        s.release_at = None;
        std::mem::take(&mut s.released)
    }

    /// The upstream socket in use (`-1`: none). Set before waiting on the
    /// upstream, cleared before the connection goes back to the pool or is
    /// closed.
    #[inline]
    pub fn set_upstream(&self, fd: RawFd) {
        self.dog.slots.borrow_mut()[self.key].upstream_fd = fd;
    }
}

/// When slot `key`'s idle connection closes during a drain: `from` plus a
/// share of `spread` picked by the slot (so the closes are spread out, as
/// HAProxy's `close-spread-time`).
pub fn drain_deadline(key: usize, from: Instant, spread: Duration) -> Instant {
    let mixed = (key as u64 ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let frac = (mixed >> 11) as f64 / (1u64 << 53) as f64;
    from + spread.mul_f64(frac)
}

impl WatchKey<'_> {
    /// Wait for the next request during a drain: until the idle timeout or
    /// the connection's drain deadline, whichever comes first.
    pub fn arm_idle_draining(&self, idle_timeout: Duration, from: Instant, spread: Duration) {
        let deadline = (self.dog.now() + idle_timeout).min(drain_deadline(self.key, from, spread));
        self.arm_at(Guard::Idle, deadline);
    }
}

/// A deadline passed while [`WatchKey::guard`] waited: which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired(pub Guard);

impl WatchKey<'_> {
    /// The "arm → do I/O → see what fired" pattern in one place: arm `guard`
    /// for `deadline` (with `upstream_fd` as the socket to shut down when it
    /// guards the upstream), run `io`, disarm, and report whether the
    /// deadline fired while it ran. `io`'s own result is returned either way
    /// so the caller can recycle its buffers.
    pub async fn guard<T>(
        &self,
        guard: Guard,
        deadline: Instant,
        upstream_fd: Option<RawFd>,
        io: impl std::future::Future<Output = T>,
    ) -> (T, Option<Fired>) {
        self.begin(guard, deadline, upstream_fd);
        let out = io.await;
        (out, self.end(upstream_fd.is_some()))
    }

    /// [`Self::guard`] in two halves, for the hot paths: `begin`, await
    /// the I/O in place, then `end` (the I/O future is not moved into a
    /// wrapper; some are large). `end`'s `upstream`: `begin` was given an
    /// upstream socket.
    #[inline]
    pub fn begin(&self, guard: Guard, deadline: Instant, upstream_fd: Option<RawFd>) {
        if let Some(fd) = upstream_fd {
            self.set_upstream(fd);
        }
        self.arm_at(guard, deadline);
    }

    /// See [`Self::begin`].
    #[inline]
    pub fn end(&self, upstream: bool) -> Option<Fired> {
        self.disarm();
        if upstream {
            self.set_upstream(-1);
        }
        self.take_fired().map(Fired)
    }

    /// The coarse clock of the watchdog.
    pub fn now(&self) -> Instant {
        self.dog.now()
    }
}

impl Drop for WatchKey<'_> {
    fn drop(&mut self) {
        self.dog.slots.borrow_mut().remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn fires_passed_deadlines_and_wakes_blocked_reads() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut server, _) = l.accept().unwrap();
        let dog = Watchdog::default();
        let key = dog.register(server.as_raw_fd());
        key.arm(Guard::Header, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        dog.tick();
        assert_eq!(key.take_fired(), Some(Guard::Header));
        assert_eq!(key.take_fired(), None);
        // SHUT_RD: reads see end of stream; writes still work (the 408).
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).unwrap(), 0);
        server.write_all(b"408").unwrap();
        let mut got = [0u8; 3];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"408");
    }

    #[test]
    fn future_deadlines_and_disarmed_slots_do_not_fire() {
        let dog = Watchdog::default();
        let a = dog.register(-1);
        let b = dog.register(-1);
        a.arm(Guard::Upstream, Duration::from_secs(60));
        b.arm(Guard::Body, Duration::ZERO);
        b.disarm();
        dog.tick();
        assert_eq!(a.take_fired(), None);
        assert_eq!(b.take_fired(), None);
        drop(a);
        assert_eq!(dog.len(), 1);
    }

    #[test]
    fn drain_gives_idle_connections_a_spread_deadline() {
        let dog = Watchdog::default();
        let idle: Vec<_> = (0..64).map(|_| dog.register(-1)).collect();
        let busy = dog.register(-1);
        for k in &idle {
            k.arm(Guard::Idle, Duration::from_secs(60));
        }
        busy.arm(Guard::Upstream, Duration::from_secs(60));
        let from = Instant::now() + Duration::from_millis(40);
        let spread = Duration::from_millis(40);
        dog.drain_idle(from, spread);
        // Within the grace: nothing fires.
        dog.tick();
        assert!(idle.iter().all(|k| k.take_fired().is_none()));
        // After grace + spread: every idle connection fired, the busy one not.
        std::thread::sleep(Duration::from_millis(85));
        dog.tick();
        assert!(idle.iter().all(|k| k.take_fired() == Some(Guard::Idle)));
        assert_eq!(busy.take_fired(), None);
        // The deadlines are spread over the window, not all at one instant.
        let t: Vec<Instant> = (0..64).map(|k| drain_deadline(k, from, spread)).collect();
        let (lo, hi) = (t.iter().min().unwrap(), t.iter().max().unwrap());
        assert!(*lo >= from && *hi < from + spread);
        assert!(*hi - *lo > spread / 2, "{:?}", *hi - *lo);
    }

    #[test]
    fn idle_read_release_fires_once_at_its_time_and_not_the_idle_guard() {
        let dog = Watchdog::with_idle_release(Some(IDLE_READ_RELEASE_AFTER));
        let k = dog.register(-1);
        assert_eq!(k.release_after(), Some(IDLE_READ_RELEASE_AFTER));
        k.arm(Guard::Idle, Duration::from_secs(60));
        let _early = k.arm_release(dog.now() + Duration::from_secs(60));
        dog.tick();
        assert!(!k.disarm_release());
        let _due = k.arm_release(dog.now());
        std::thread::sleep(Duration::from_millis(2));
        dog.tick();
        assert!(k.disarm_release());
        assert!(!k.disarm_release());
        // The idle deadline still stands.
        assert_eq!(k.take_fired(), None);
        // Disarmed before its time: never fires.
        let _gone = k.arm_release(dog.now());
        assert!(!k.disarm_release());
        std::thread::sleep(Duration::from_millis(2));
        dog.tick();
        assert!(!k.disarm_release());
        assert_eq!(Watchdog::default().register(-1).release_after(), None);
    }

    #[test]
    fn drain_tag_fires_idle_connections_of_that_tag_only() {
        let dog = Watchdog::default();
        let a_idle = dog.register_tagged(-1, 7);
        let a_busy = dog.register_tagged(-1, 7);
        let b_idle = dog.register_tagged(-1, 8);
        a_idle.arm(Guard::Idle, Duration::from_secs(60));
        a_busy.arm(Guard::Upstream, Duration::from_secs(60));
        b_idle.arm(Guard::Idle, Duration::from_secs(60));
        dog.drain_tag(7);
        assert_eq!(a_idle.take_fired(), Some(Guard::Idle));
        assert_eq!(a_busy.take_fired(), None);
        assert_eq!(b_idle.take_fired(), None);
    }
}
