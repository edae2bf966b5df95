//! ringway: multishot receive (`IORING_OP_RECV` with
//! `IORING_RECV_MULTISHOT`) into the thread's provided-buffer ring.
//!
//! A single-shot receive is one submission, one poll armed and torn down,
//! and one completion per read. A multishot receive is submitted once and
//! stays armed: every time data arrives the kernel takes a buffer from the
//! ring (`ring_ext::buf_ring`), receives into it and posts a completion
//! flagged `IORING_CQE_F_MORE`. A keep-alive connection then costs no
//! submission for its client reads at all.
//!
//! monoio's operations take exactly one completion each (`Lifecycle`), so a
//! multishot has a registry of its own here:
//!
//! - Each armed receive has an entry in this thread's table; its user data
//!   is the entry's key with [`MULTISHOT_TAG`] set, which no operation of
//!   the driver's slab ever reaches, and below the driver's reserved values.
//!   The driver hands such completions to [`complete`].
//! - An entry queues its completions (result and flags, in order) until
//!   its [`MultiRecv`] reads them, and wakes the task that waits.
//! - A completion without `IORING_CQE_F_MORE` is the last one: the receive
//!   is no longer armed (an end of stream, an error, a cancel, or the ring
//!   ran dry: `ENOBUFS`). Its owner arms a new one when it wants more.
//! - A `MultiRecv` dropped while armed pushes an `ASYNC_CANCEL` for it and
//!   leaves the entry behind: the completions still to come give their
//!   buffers straight back to the ring, and the last one frees the entry.
//!   An entry is reused only after its last completion, so a late cancel
//!   can never hit a newer receive (and a cancel is always queued ahead of
//!   any receive that reuses its key).
//! - Back-pressure: a receive keeps taking ring buffers while its owner is
//!   busy elsewhere (a client pipelining requests faster than they are
//!   answered), which the socket's own buffer would otherwise bound with
//!   TCP flow control. Once [`QUEUE_CAP`] completions wait unread, the
//!   driver cancels it at the end of that batch of completions
//!   ([`cancels_over_cap`]); the rest stays in the socket, and its owner
//!   reads the queue, then the socket, and arms a new one later.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, squeue};

use super::SelectedBuf;
use crate::driver::shared_fd::SharedFd;

/// Set in the user data of every multishot receive: far above any index of
/// the driver's operation slab, and below `MIN_REVERSED_USERDATA`.
pub(crate) const MULTISHOT_TAG: u64 = 1 << 62;

/// The user data of the cancels pushed here: one the driver ignores.
const CANCEL_USERDATA: u64 = u64::MAX;

/// Completions a receive may queue unread before it is cancelled (16 KiB
/// of 2 KiB ring buffers, plus what one batch of completions brings).
pub const QUEUE_CAP: usize = 8;

struct Entry {
    /// Completions not read yet: (result, flags).
    queue: VecDeque<(i32, u32)>,
    waker: Option<Waker>,
    /// The kernel may still post completions for it.
    armed: bool,
    /// A cancel is queued for it.
    cancelled: bool,
    /// Its `MultiRecv` is gone: completions give their buffers back.
    orphan: bool,
}

#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static TABLE: UnsafeCell<Table> = UnsafeCell::new(Table::default());
    /// Receives armed so far on this thread.
    static ARMED: Cell<u64> = const { Cell::new(0) };
    /// Receives armed now (a cancelled one counts until its last completion).
    static LIVE: Cell<u32> = const { Cell::new(0) };
    /// Receives whose queue reached [`QUEUE_CAP`], to be cancelled when the
    /// driver's batch of completions is done.
    static OVER_CAP: UnsafeCell<Vec<u32>> = const { UnsafeCell::new(Vec::new()) };
}

/// Turn multishot receives on or off for this thread (off by default). On
/// needs the buffer ring too (`set_buffer_ring`); the caller has probed the
/// kernel ([`probe_multishot_recv`]).
pub fn set_multishot_recv(on: bool) {
    ON.with(|c| c.set(on));
}

/// Whether this thread arms multishot receives (asked for, and the buffer
/// ring is on).
pub fn multishot_recv_on() -> bool {
    ON.with(Cell::get) && super::buffer_ring_on()
}

/// This thread's multishot receives: armed now, and armed in all.
pub fn multishot_stats() -> (u32, u64) {
    (LIVE.with(Cell::get), ARMED.with(Cell::get))
}

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    // SAFETY: thread-local, and every caller's reference ends with `f`,
    // which neither pushes nor wakes anything that could re-enter.
    TABLE.with(|t| f(unsafe { &mut *t.get() }))
}

/// A multishot receive armed on a socket: the bytes it got, in ring
/// buffers, in order. Not `Send`.
pub struct MultiRecv {
    /// Its entry's key plus one: an `Option<MultiRecv>` is four bytes.
    key1: std::num::NonZeroU32,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for MultiRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiRecv").field("key", &self.key()).finish()
    }
}

impl MultiRecv {
    /// Arm a multishot receive on `fd` (`Unsupported` when off here, not
    /// on io_uring, or the ring refused).
    pub(crate) fn arm(fd: &SharedFd) -> io::Result<Self> {
        if !ON.with(Cell::get) {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        let group = super::ensure_registered()?;
        let key = with_table(|t| match t.free.pop() {
            Some(k) => {
                let e = &mut t.entries[k as usize];
                e.armed = true;
                e.cancelled = false;
                e.orphan = false;
                k
            }
            None => {
                t.entries.push(Entry {
                    queue: VecDeque::new(),
                    waker: None,
                    armed: true,
                    cancelled: false,
                    orphan: false,
                });
                t.entries.len() as u32 - 1
            }
        });
        let entry = opcode::RecvMulti::new(io_uring::types::Fd(fd.raw_fd()), group)
            .build()
            .user_data(MULTISHOT_TAG | key as u64);
        let entry = fd.target(entry);
        // SAFETY: the receive names no memory but the buffer ring's.
        if let Err(e) = unsafe { super::push_sqe(&entry) } {
            with_table(|t| {
                t.entries[key as usize].armed = false;
                t.free.push(key);
            });
            return Err(e);
        }
        ARMED.with(|n| n.set(n.get() + 1));
        LIVE.with(|n| n.set(n.get() + 1));
        Ok(MultiRecv {
            key1: std::num::NonZeroU32::new(key + 1).expect("fewer than u32::MAX receives"),
            _not_send: PhantomData,
        })
    }

    /// Its entry in the table.
    fn key(&self) -> u32 {
        self.key1.get() - 1
    }

    /// The next bytes: `Some(Ok(buf))` (empty: the end of the stream),
    /// `Some(Err(e))` (the receive failed and is no longer armed;
    /// `ENOBUFS`: the ring ran dry, read into a buffer of your own this
    /// time), or `None`: nothing queued and the receive is no longer armed
    /// (cancelled); arm a new one for more.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<SelectedBuf>>> {
        let next = with_table(|t| {
            let e = &mut t.entries[self.key() as usize];
            match e.queue.pop_front() {
                Some(c) => Poll::Ready(Some(c)),
                None if e.armed => {
                    match &e.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => e.waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
                None => Poll::Ready(None),
            }
        });
        let (res, flags) = match std::task::ready!(next) {
            Some(c) => c,
            None => return Poll::Ready(None),
        };
        if res >= 0 {
            return Poll::Ready(Some(SelectedBuf::new(
                io_uring::cqueue::buffer_select(flags),
                res as u32,
            )));
        }
        // A failed completion takes no buffer; should one be reported
        // anyway, it goes back.
        super::recycle_selected(flags);
        match -res {
            libc::ECANCELED => Poll::Ready(None),
            libc::ENOBUFS => {
                super::grow_buffer_ring();
                Poll::Ready(Some(Err(io::Error::from_raw_os_error(libc::ENOBUFS))))
            }
            errno => Poll::Ready(Some(Err(io::Error::from_raw_os_error(errno)))),
        }
    }

    /// Ready when a completion is queued or the receive is no longer armed
    /// (what [`poll_next`](Self::poll_next) would return without waiting);
    /// nothing is taken.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        with_table(|t| {
            let e = &mut t.entries[self.key() as usize];
            if !e.queue.is_empty() || !e.armed {
                return Poll::Ready(());
            }
            match &e.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => e.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }

    /// Completions received and not read yet.
    pub fn queued(&self) -> usize {
        with_table(|t| t.entries[self.key() as usize].queue.len())
    }

    /// Whether the kernel may still post completions for it.
    pub fn is_armed(&self) -> bool {
        with_table(|t| t.entries[self.key() as usize].armed)
    }

    /// Ask the kernel to stop it (once); its last completion follows, after
    /// any data it already received. Harmless once it is no longer armed.
    pub fn cancel(&mut self) {
        cancel(self.key());
    }
}

/// The cancel of the receive with key `key` (by its user data).
fn cancel_entry(key: u32) -> squeue::Entry {
    opcode::AsyncCancel::new(MULTISHOT_TAG | key as u64)
        .build()
        .user_data(CANCEL_USERDATA)
}

fn cancel(key: u32) {
    let wanted = with_table(|t| {
        let e = &mut t.entries[key as usize];
        let wanted = e.armed && !e.cancelled;
        e.cancelled |= wanted;
        wanted
    });
    if wanted {
        let c = cancel_entry(key);
        // SAFETY: the cancel names no memory. Outside the runtime (a socket
        // dropped after it) it cannot be pushed, and the ring is gone.
        let _ = unsafe { super::push_sqe(&c) };
    }
}

impl Drop for MultiRecv {
    fn drop(&mut self) {
        cancel(self.key());
        let queued = with_table(|t| {
            let e = &mut t.entries[self.key() as usize];
            e.waker = None;
            if e.armed {
                e.orphan = true;
            } else {
                t.free.push(self.key());
            }
            std::mem::take(&mut e.queue)
        });
        for (_, flags) in queued {
            super::recycle_selected(flags);
        }
    }
}

/// A completion of the multishot receive with key `key` (user data without
/// [`MULTISHOT_TAG`]), from the driver.
pub(crate) fn complete(key: u64, res: i32, flags: u32) {
    let last = !io_uring::cqueue::more(flags);
    let (orphan, waker) = with_table(|t| {
        let Some(e) = t.entries.get_mut(key as usize) else {
            return (true, None);
        };
        if last {
            e.armed = false;
        }
        if e.orphan {
            if last {
                e.orphan = false;
                t.free.push(key as u32);
            }
            return (true, None);
        }
        e.queue.push_back((res, flags));
        if e.queue.len() >= QUEUE_CAP && e.armed && !e.cancelled {
            e.cancelled = true;
            // SAFETY: thread-local; the reference ends with this closure.
            OVER_CAP.with(|o| unsafe { &mut *o.get() }.push(key as u32));
        }
        (false, e.waker.take())
    });
    if orphan {
        super::recycle_selected(flags);
    }
    if last {
        LIVE.with(|n| n.set(n.get().saturating_sub(1)));
    }
    if let Some(w) = waker {
        w.wake();
    }
}

/// The user data of each receive to cancel for queueing too much, taken
/// from the list, for the driver to push cancels for once its completion
/// loop is done (it cannot push from inside it). `push` says whether the
/// cancel went in; one that did not (the queue is full) stays listed for
/// the next batch.
pub(crate) fn cancels_over_cap(mut push: impl FnMut(squeue::Entry) -> bool) {
    OVER_CAP.with(|o| {
        // SAFETY: thread-local; `push` only touches the submission queue.
        let over = unsafe { &mut *o.get() };
        while let Some(&key) = over.last() {
            if !push(cancel_entry(key)) {
                return;
            }
            over.pop();
        }
    });
}

/// Whether the kernel takes a multishot receive into a provided-buffer
/// ring (Linux 6.0), probed on a ring of the caller's own: two bytes sent
/// one at a time on a socket pair come back as two completions of one
/// receive, both flagged `IORING_CQE_F_MORE`.
pub fn probe_multishot_recv() -> bool {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let Ok(mut uring) = io_uring::IoUring::new(4) else {
        return false;
    };
    let Ok((mut a, b)) = std::os::unix::net::UnixStream::pair() else {
        return false;
    };
    let uring = &mut uring;
    super::with_probe_ring(uring, |uring, group, byte| {
        let entry = opcode::RecvMulti::new(io_uring::types::Fd(b.as_raw_fd()), group)
            .build()
            .user_data(7);
        // SAFETY: the entry names no memory of ours but the ring.
        unsafe { uring.submission().push(&entry).ok()? };
        let mut got = Vec::new();
        for sent in [b'x', b'y'] {
            a.write_all(&[sent]).ok()?;
            uring.submit_and_wait(1).ok()?;
            let c = uring.completion().next()?;
            let bid = io_uring::cqueue::buffer_select(c.flags())?;
            if c.user_data() != 7 || c.result() != 1 || !io_uring::cqueue::more(c.flags()) {
                return None;
            }
            got.push(byte(bid));
        }
        (got == b"xy").then_some(())
    })
}
