//! ringway additions: per-thread switches for io_uring features monoio does
//! not expose (see ringway's vendor/README.md). Each is off by default, so
//! monoio behaves as upstream until its runtime's owner turns one on, after
//! probing that the kernel accepts it.

use std::cell::Cell;

thread_local! {
    static RECV_POLL_FIRST: Cell<bool> = const { Cell::new(false) };
}

/// `IORING_RECVSEND_POLL_FIRST` on every socket receive (`IORING_OP_RECV`)
/// this thread submits from now on: the kernel arms a poll first instead of
/// trying the receive at once. Worth it where data usually is not there yet
/// (a keep-alive connection's next request, an upstream's response); when
/// it is, the poll completes at once. Needs Linux 5.19; the caller probes.
pub fn set_recv_poll_first(on: bool) {
    RECV_POLL_FIRST.with(|c| c.set(on));
}

/// Whether [`set_recv_poll_first`] is on for this thread.
pub fn recv_poll_first() -> bool {
    RECV_POLL_FIRST.with(Cell::get)
}

/// The `ioprio` bit of `IORING_RECVSEND_POLL_FIRST`.
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub(crate) const RECVSEND_POLL_FIRST: u16 = 1;

/// `entry` (a socket send or receive) with `IORING_RECVSEND_POLL_FIRST`
/// set, for a caller that probes the kernel with its own ring.
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub fn with_poll_first(entry: io_uring::squeue::Entry) -> io_uring::squeue::Entry {
    with_ioprio(entry, RECVSEND_POLL_FIRST)
}

/// `entry` with `bits` or-ed into its `ioprio` field (the send/receive
/// flags of socket opcodes, the `u16` at offset 2). io-uring 0.6's `Recv`
/// builder has no setter for it.
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub(crate) fn with_ioprio(entry: io_uring::squeue::Entry, bits: u16) -> io_uring::squeue::Entry {
    edit_sqe(entry, |raw| {
        let old = u16::from_ne_bytes([raw[2], raw[3]]);
        raw[2..4].copy_from_slice(&(old | bits).to_ne_bytes());
    })
}

/// `entry` with its bytes edited by `edit`: a field io-uring 0.6's
/// builders do not set. The entry is the kernel's 64-byte SQE
/// (`#[repr(C)]` around `io_uring_sqe`).
#[cfg(all(target_os = "linux", feature = "iouring"))]
#[inline]
pub(crate) fn edit_sqe(
    entry: io_uring::squeue::Entry,
    edit: impl FnOnce(&mut [u8; 64]),
) -> io_uring::squeue::Entry {
    const _: () = assert!(std::mem::size_of::<io_uring::squeue::Entry>() == 64);
    // SAFETY: `Entry` is `#[repr(C)]` around `io_uring_sqe`, 64 bytes, any
    // bit pattern of which is a valid array of bytes and back.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    edit(&mut raw);
    // SAFETY: as above; the caller changed only the field it sets.
    unsafe { std::mem::transmute::<[u8; 64], io_uring::squeue::Entry>(raw) }
}

/// Push `sqe` on this thread's ring (submitting first when the queue is
/// full), for the entries `ring_ext` makes itself: files updates and
/// cancels under a reserved user data, multishot receives under a tagged
/// one. `Unsupported` outside an io_uring runtime.
///
/// # Safety
/// What `sqe` points to stays valid until it is submitted.
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub(crate) unsafe fn push_sqe(sqe: &io_uring::squeue::Entry) -> std::io::Result<()> {
    let unsupported = || std::io::Error::from(std::io::ErrorKind::Unsupported);
    if !crate::driver::CURRENT.is_set() {
        return Err(unsupported());
    }
    crate::driver::CURRENT.with(|inner| match inner {
        crate::driver::Inner::Uring(this) => {
            // SAFETY: the driver is this thread's, and nothing else holds
            // a reference into it while an SQE is pushed.
            let inner = unsafe { &mut *this.get() };
            unsafe { inner.push_internal(sqe) }
        }
        #[allow(unreachable_patterns)]
        _ => Err(unsupported()),
    })
}

#[cfg(all(target_os = "linux", feature = "iouring"))]
mod fixed_files;
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub(crate) use fixed_files::{attach as attach_fixed, detach as detach_fixed, on_slot};
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub use fixed_files::{fixed_files_on, fixed_files_stats, probe_fixed_files, set_fixed_files};

#[cfg(all(target_os = "linux", feature = "iouring"))]
mod multishot;
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub(crate) use multishot::{cancels_over_cap, complete as complete_multishot, MULTISHOT_TAG};
#[cfg(all(target_os = "linux", feature = "iouring"))]
pub use multishot::{
    multishot_recv_on, multishot_stats, probe_multishot_recv, set_multishot_recv, MultiRecv,
    QUEUE_CAP as MULTISHOT_QUEUE_CAP,
};

// ---------------------------------------------------------------------------
// Provided-buffer ring (`IORING_REGISTER_PBUF_RING`).
//
// A receive submitted with `IOSQE_BUFFER_SELECT` names no buffer: the
// kernel takes one from this thread's ring only when data arrives, so a
// socket waiting for data holds no memory of its own. The completion says
// which buffer it took (`IORING_CQE_F_BUFFER`, the id in the upper 16 bits
// of the CQE flags); the caller copies the bytes out and drops the
// `SelectedBuf`, which puts the buffer back at the ring's tail. A
// completion nobody waits for any more (its future dropped) gives its
// buffer back in the driver (`uring::lifecycle`), so none leaks.
//
// The ring and its buffers are mapped once per thread, when the first
// selected receive is submitted (the ring must be the thread's runtime's,
// which exists only inside it), and never unmapped: a worker's ring lives
// as long as its thread, and a buffer the kernel may still write to must
// not go back to the system. When every buffer is out, the receive fails
// with `ENOBUFS` and the caller reads into a buffer of its own.

#[cfg(all(target_os = "linux", feature = "iouring"))]
pub use buf_ring::*;

#[cfg(all(target_os = "linux", feature = "iouring"))]
mod buf_ring {
    use std::cell::{Cell, UnsafeCell};
    use std::io;
    use std::marker::PhantomData;
    use std::sync::atomic::{AtomicU16, Ordering};

    use io_uring::types::BufRingEntry;

    /// The buffer group id ringway's selected receives use.
    pub(crate) const BUFFER_GROUP: u16 = 0x5277;

    struct Ring {
        entries: *mut BufRingEntry,
        bufs: *mut u8,
        /// Entries of the ring, and buffers mapped (at most).
        count: u16,
        buf_len: u32,
        /// Our copy of the tail (the kernel reads the shared one).
        tail: u16,
        /// Buffers put in so far (ids `0..added`); the rest of the mapping
        /// is untouched, so resident memory follows what the load needed.
        added: u16,
    }

    /// Buffers put in at first.
    const FIRST_BUFFERS: u16 = 16;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Off,
        /// Asked for (`count` buffers of `buf_len` bytes), not mapped yet.
        Wanted(u16, u32),
        Registered,
        /// The kernel refused it on this thread's ring: selected receives
        /// report `Unsupported` and the caller reads as before.
        Refused,
    }

    thread_local! {
        static STATE: Cell<State> = const { Cell::new(State::Off) };
        static RING: UnsafeCell<Option<Ring>> = const { UnsafeCell::new(None) };
        /// Selected receives that found the ring empty.
        static RAN_DRY: Cell<u64> = const { Cell::new(0) };
    }

    /// This thread's ring: buffers put in so far, and how many selected
    /// receives found it empty (and read into a buffer of their own).
    pub fn buffer_ring_stats() -> (u16, u64) {
        let added = RING.with(|r| {
            // SAFETY: thread-local; read only.
            unsafe { &*r.get() }.as_ref().map_or(0, |ring| ring.added)
        });
        (added, RAN_DRY.with(Cell::get))
    }

    /// Ask for a provided-buffer ring of up to `count` buffers (a power of
    /// two, at most 32,768) of `buf_len` bytes each for this thread's
    /// io_uring runtime, registered when the first selected receive is
    /// submitted. It starts with 16 buffers and gets one more each time a
    /// receive finds it empty, so only what the load needs is ever touched.
    /// `count` 0 turns selected receives off (the default). Call before the
    /// runtime serves; the caller has probed that the kernel takes it.
    pub fn set_buffer_ring(count: u16, buf_len: u32) {
        let wanted = count.is_power_of_two() && buf_len > 0;
        STATE.with(|s| {
            s.set(if wanted {
                State::Wanted(count, buf_len)
            } else {
                State::Off
            })
        });
        // A ring registered on an earlier runtime of this thread is not
        // this runtime's: registered again on first use.
        RING.with(|r| unsafe { *r.get() = None });
    }

    /// Whether selected receives are on for this thread (asked for, and
    /// not refused by the kernel).
    pub fn buffer_ring_on() -> bool {
        STATE.with(|s| matches!(s.get(), State::Wanted(..) | State::Registered))
    }

    fn map(len: usize) -> io::Result<*mut u8> {
        // SAFETY: an anonymous private mapping; no file, no fixed address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(p.cast())
    }

    /// The buffer group to select from, registering this thread's ring on
    /// first use (`Unsupported` when off or refused).
    pub(crate) fn ensure_registered() -> io::Result<u16> {
        let (count, buf_len) = match STATE.with(Cell::get) {
            State::Registered => return Ok(BUFFER_GROUP),
            State::Wanted(c, l) => (c, l),
            State::Off | State::Refused => {
                return Err(io::Error::from(io::ErrorKind::Unsupported))
            }
        };
        match register(count, buf_len) {
            Ok(ring) => {
                RING.with(|r| unsafe { *r.get() = Some(ring) });
                STATE.with(|s| s.set(State::Registered));
                Ok(BUFFER_GROUP)
            }
            Err(e) => {
                STATE.with(|s| s.set(State::Refused));
                Err(e)
            }
        }
    }

    fn register(count: u16, buf_len: u32) -> io::Result<Ring> {
        let ring_bytes = count as usize * std::mem::size_of::<BufRingEntry>();
        let bufs_bytes = count as usize * buf_len as usize;
        let entries = map(ring_bytes)?.cast::<BufRingEntry>();
        let bufs = match map(bufs_bytes) {
            Ok(b) => b,
            Err(e) => {
                // SAFETY: mapped just above; nothing else refers to it.
                unsafe { libc::munmap(entries.cast(), ring_bytes) };
                return Err(e);
            }
        };
        let mut ring = Ring {
            entries,
            bufs,
            count,
            buf_len,
            tail: 0,
            added: 0,
        };
        // The first buffers go in before the ring is registered (the tail
        // starts at 0 in the fresh page); more when it runs dry (`grow`).
        ring.grow(FIRST_BUFFERS);
        let registered = crate::driver::CURRENT.with(|inner| match inner {
            crate::driver::Inner::Uring(this) => {
                // SAFETY: the driver is this thread's; only its submitter
                // is used, for one registration syscall.
                let inner = unsafe { &*this.get() };
                // SAFETY: the ring is page-aligned (mmap), `count` entries
                // long, and stays mapped for the life of the thread.
                unsafe { inner.register_buf_ring(entries as u64, count, BUFFER_GROUP) }
            }
            #[allow(unreachable_patterns)]
            _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
        });
        if let Err(e) = registered {
            // SAFETY: the kernel refused the ring, so it never saw these.
            unsafe {
                libc::munmap(entries.cast(), ring_bytes);
                libc::munmap(bufs.cast(), bufs_bytes);
            }
            return Err(e);
        }
        Ok(ring)
    }

    impl Ring {
        /// Put `n` more buffers in, up to `count`.
        fn grow(&mut self, n: u16) {
            let to = self.added.saturating_add(n).min(self.count);
            for bid in self.added..to {
                self.push(bid);
            }
            self.added = to;
        }

        /// Put buffer `bid` at the tail and publish the new tail.
        fn push(&mut self, bid: u16) {
            let mask = self.count - 1;
            // SAFETY: `tail & mask` < count, inside the mapped ring; the
            // kernel reads an entry only below the published tail.
            unsafe {
                let e = &mut *self.entries.add((self.tail & mask) as usize);
                e.set_addr(self.bufs.add(bid as usize * self.buf_len as usize) as u64);
                e.set_len(self.buf_len);
                e.set_bid(bid);
            }
            self.tail = self.tail.wrapping_add(1);
            // SAFETY: the tail field overlays the first entry's `resv`,
            // which the kernel reads as a u16 with acquire ordering.
            unsafe {
                let tail = BufRingEntry::tail(self.entries) as *const AtomicU16;
                (*tail).store(self.tail, Ordering::Release);
            }
        }
    }

    /// Give back the buffer a completion's `flags` name, if any (a selected
    /// receive whose result nobody takes any more).
    #[inline]
    pub(crate) fn recycle_selected(flags: u32) {
        if let Some(bid) = io_uring::cqueue::buffer_select(flags) {
            recycle(bid);
        }
    }

    /// A selected receive found the ring empty (`ENOBUFS`): one more buffer
    /// goes in. The buffers the ring needs are those taken by receives that
    /// complete together (before any is given back), so it settles at the
    /// largest such batch the load brings.
    pub(crate) fn grow_buffer_ring() {
        RAN_DRY.with(|n| n.set(n.get() + 1));
        RING.with(|r| {
            // SAFETY: thread-local, and no reference into it outlives this
            // call.
            if let Some(ring) = unsafe { &mut *r.get() } {
                ring.grow(1);
            }
        });
    }

    fn recycle(bid: u16) {
        RING.with(|r| {
            // SAFETY: thread-local, and no reference into it outlives this
            // call.
            if let Some(ring) = unsafe { &mut *r.get() } {
                if bid < ring.added {
                    ring.push(bid);
                }
            }
        });
    }

    /// The bytes a selected receive got: a buffer of this thread's ring,
    /// put back at the ring's tail when dropped. Not `Send`.
    pub struct SelectedBuf {
        bid: u16,
        len: u32,
        ptr: *const u8,
        _not_send: PhantomData<*const ()>,
    }

    impl SelectedBuf {
        /// `len` bytes received into buffer `bid` (`None`: nothing was
        /// taken, an end of stream).
        pub(crate) fn new(bid: Option<u16>, len: u32) -> io::Result<Self> {
            let Some(bid) = bid else {
                return if len == 0 {
                    Ok(SelectedBuf {
                        bid: u16::MAX,
                        len: 0,
                        ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
                        _not_send: PhantomData,
                    })
                } else {
                    Err(io::Error::other("selected receive without a buffer"))
                };
            };
            let ptr = RING.with(|r| {
                // SAFETY: thread-local; read only.
                match unsafe { &*r.get() } {
                    Some(ring) if bid < ring.count && len <= ring.buf_len => {
                        // SAFETY: inside the mapped buffers.
                        Some(unsafe { ring.bufs.add(bid as usize * ring.buf_len as usize) })
                    }
                    _ => None,
                }
            });
            match ptr {
                Some(ptr) => Ok(SelectedBuf {
                    bid,
                    len,
                    ptr,
                    _not_send: PhantomData,
                }),
                None => {
                    recycle(bid);
                    Err(io::Error::other("selected buffer out of range"))
                }
            }
        }

        /// The bytes received.
        pub fn as_slice(&self) -> &[u8] {
            // SAFETY: the kernel wrote `len` bytes there, and the buffer is
            // not back on the ring (so not written again) until `self`
            // drops; the mapping is never unmapped.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
        }
    }

    impl Drop for SelectedBuf {
        fn drop(&mut self) {
            if self.bid != u16::MAX {
                recycle(self.bid);
            }
        }
    }

    /// Whether the kernel takes a provided-buffer ring and a receive that
    /// selects from it (Linux 5.19), probed on a ring of the caller's own:
    /// one byte sent on a socket pair comes back in a provided buffer.
    pub fn probe_buffer_ring() -> bool {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let Ok(mut uring) = io_uring::IoUring::new(2) else {
            return false;
        };
        let Ok((mut a, b)) = std::os::unix::net::UnixStream::pair() else {
            return false;
        };
        with_probe_ring(&mut uring, |uring, group, byte| {
            a.write_all(b"x").ok()?;
            let entry = io_uring::opcode::Recv::new(
                io_uring::types::Fd(b.as_raw_fd()),
                std::ptr::null_mut(),
                64,
            )
            .buf_group(group)
            .build()
            .flags(io_uring::squeue::Flags::BUFFER_SELECT)
            .user_data(1);
            // SAFETY: the entry names no memory of ours but the ring.
            unsafe { uring.submission().push(&entry).ok()? };
            uring.submit_and_wait(1).ok()?;
            let c = uring.completion().next()?;
            let bid = io_uring::cqueue::buffer_select(c.flags())?;
            (c.result() == 1 && byte(bid) == b'x').then_some(())
        })
    }

    /// Run a probe `f` on `uring` (a ring of the caller's own) with a
    /// provided-buffer ring of two 64-byte buffers registered on it: `f`
    /// gets the buffer group and a reader of a buffer's first byte. The
    /// ring is unregistered and unmapped afterwards. Whether `f` succeeded.
    pub(crate) fn with_probe_ring(
        uring: &mut io_uring::IoUring,
        f: impl FnOnce(&mut io_uring::IoUring, u16, &dyn Fn(u16) -> u8) -> Option<()>,
    ) -> bool {
        let Ok(entries) = map(4096) else {
            return false;
        };
        let Ok(bufs) = map(4096) else {
            // SAFETY: mapped just above, 4096 bytes.
            unsafe { libc::munmap(entries.cast(), 4096) };
            return false;
        };
        let mut ring = Ring {
            entries: entries.cast(),
            bufs,
            count: 2,
            buf_len: 64,
            tail: 0,
            added: 0,
        };
        ring.grow(2);
        // SAFETY: the kernel wrote into buffer `bid` (< 2) before its
        // completion named it; the mapping outlives every call.
        let byte = |bid: u16| unsafe { *bufs.add((bid as usize % 2) * 64) };
        // SAFETY: the ring is page-aligned and stays mapped until it is
        // unregistered below.
        let registered = unsafe {
            uring
                .submitter()
                .register_buf_ring(entries as u64, 2, BUFFER_GROUP)
                .is_ok()
        };
        let ok = registered && f(uring, BUFFER_GROUP, &byte).is_some();
        if registered {
            let _ = uring.submitter().unregister_buf_ring(BUFFER_GROUP);
        }
        // SAFETY: unregistered (or never registered); the kernel pins what
        // it registered until then, and nothing of ours refers to these.
        unsafe {
            libc::munmap(entries.cast(), 4096);
            libc::munmap(bufs.cast(), 4096);
        }
        ok
    }
}
