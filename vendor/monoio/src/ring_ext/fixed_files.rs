//! ringway: registered ("fixed") files.
//!
//! Every operation on a plain descriptor makes the kernel look the number
//! up in the process's descriptor table and take a reference on the file
//! (`fget`, an atomic increment, and `fput` when it completes). A file in
//! the ring's own table (`IORING_REGISTER_FILES`) is named by its slot
//! (`IOSQE_FIXED_FILE`) and costs neither: the table holds the reference.
//!
//! Sockets keep their ordinary descriptor as well, so everything done
//! outside the ring (`shutdown(2)`, `splice(2)`, socket options, a handover
//! to another process) works as before. What changes:
//!
//! - The thread's ring gets a sparse table of `slots` entries, registered
//!   when the first descriptor is attached (inside the runtime).
//! - A socket asked for it (`TcpStream::register_fixed`, which the owner
//!   calls for a socket worth it: one that carries more than one exchange)
//!   takes a free slot and pushes an `IORING_OP_FILES_UPDATE` that puts it
//!   there. It goes in the submission queue ahead of every operation built
//!   after it, and the kernel runs a files update inline, in queue order,
//!   so the next operation already finds the slot filled (the probe checks
//!   exactly that). Operations submitted before keep their descriptor. The
//!   update reads the descriptor from this thread's slot array when it is
//!   submitted, so nothing on a socket's heap has to outlive it.
//! - Operations built from then on name the slot (`SharedFd::target`).
//! - When the socket goes (its last `SharedFd` drops, or is unwrapped into a
//!   raw descriptor), an update with descriptor -1 empties the slot and the
//!   slot is free again: the table's reference would otherwise keep the
//!   socket open after its descriptor is closed. The emptying goes in the
//!   queue before any update that reuses the slot.
//! - Updates carry `IOSQE_CQE_SKIP_SUCCESS` and a reserved user data, so a
//!   successful one posts no completion; a failed one posts a completion
//!   the driver ignores (and the socket's operations would fail with
//!   `EBADF`: the probe makes sure the kernel takes the updates first).
//! - When every slot is taken, a socket goes without one and works as
//!   before (`fixed_files_stats` counts those).

use std::cell::{Cell, UnsafeCell};
use std::os::fd::RawFd;

use io_uring::{opcode, squeue};

/// No slot (a socket that has none uses its descriptor).
const NO_SLOT: u32 = u32::MAX;

/// The user data of files updates: one the driver ignores (at or above
/// `MIN_REVERSED_USERDATA`; ASYNC_CANCEL uses the same one).
const UPDATE_USERDATA: u64 = u64::MAX;

/// What an emptying update puts in a slot.
static EMPTY: RawFd = -1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Off,
    /// Asked for (this many slots), not registered yet.
    Wanted(u32),
    Registered,
    /// The kernel refused the table on this thread's ring.
    Refused,
}

struct Table {
    /// The descriptor in each slot, read by the kernel when the update
    /// that fills the slot is submitted. Never shrinks or moves while the
    /// table is registered.
    fds: Box<[RawFd]>,
    /// Free slots, most recently freed last.
    free: Vec<u32>,
    /// Slots never used yet: `next..fds.len()`.
    next: u32,
    in_use: u32,
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State::Off) };
    static TABLE: UnsafeCell<Option<Table>> = const { UnsafeCell::new(None) };
    /// Registrations that found every slot taken (the socket uses its
    /// descriptor; asked again later, it may get a slot then).
    static WENT_WITHOUT: Cell<u64> = const { Cell::new(0) };
}

/// Ask for a table of `slots` registered files for this thread's io_uring
/// runtime (0: off, the default), registered when the first socket is
/// attached. Call before the runtime serves; the caller has probed that the
/// kernel takes it ([`probe_fixed_files`]). The kernel refuses a table
/// larger than the process's open-files limit (`RLIMIT_NOFILE`).
pub fn set_fixed_files(slots: u32) {
    STATE.with(|s| {
        s.set(if slots > 0 {
            State::Wanted(slots)
        } else {
            State::Off
        })
    });
    // A table registered on an earlier runtime of this thread belonged to
    // that runtime's ring.
    TABLE.with(|t| unsafe { *t.get() = None });
}

/// Whether this thread's sockets get registered slots (asked for, and not
/// refused by the kernel).
pub fn fixed_files_on() -> bool {
    STATE.with(|s| matches!(s.get(), State::Wanted(_) | State::Registered))
}

/// This thread's table: slots in use, slots in all (0 before the first
/// socket registers it), and registrations that found every slot taken.
pub fn fixed_files_stats() -> (u32, u32, u64) {
    let (in_use, slots) = TABLE.with(|t| {
        // SAFETY: thread-local; read only.
        unsafe { &*t.get() }
            .as_ref()
            .map_or((0, 0), |t| (t.in_use, t.fds.len() as u32))
    });
    (in_use, slots, WENT_WITHOUT.with(Cell::get))
}

/// `entry`, built on a descriptor, aimed at registered slot `slot` instead.
#[inline]
pub(crate) fn on_slot(entry: squeue::Entry, slot: u32) -> squeue::Entry {
    // The SQE's `fd` is the `i32` at offset 4.
    super::edit_sqe(entry, |raw| {
        raw[4..8].copy_from_slice(&(slot as i32).to_ne_bytes())
    })
    .flags(squeue::Flags::FIXED_FILE)
}

/// Give `fd` a slot of this thread's table (registering the table on first
/// use) and queue the update that fills it; [`NO_SLOT`] when fixed files
/// are off, refused, or every slot is taken. Called inside an io_uring
/// runtime only.
pub(crate) fn attach(fd: RawFd) -> u32 {
    if fd < 0 || !ensure_registered() {
        return NO_SLOT;
    }
    // No reference into the table is held while an update is pushed:
    // pushing may submit and reap completions, which may drop another
    // socket, which empties its slot here.
    let taken = TABLE.with(|t| {
        // SAFETY: thread-local, and the reference ends with this closure.
        let table = unsafe { &mut *t.get() }.as_mut()?;
        let slot = match table.free.pop() {
            Some(s) => s,
            None if (table.next as usize) < table.fds.len() => {
                table.next += 1;
                table.next - 1
            }
            None => {
                WENT_WITHOUT.with(|n| n.set(n.get() + 1));
                return None;
            }
        };
        table.fds[slot as usize] = fd;
        table.in_use += 1;
        Some((slot, std::ptr::addr_of!(table.fds[slot as usize])))
    });
    let Some((slot, fd_in_table)) = taken else {
        return NO_SLOT;
    };
    let update = opcode::FilesUpdate::new(fd_in_table, 1)
        .offset(slot as i32)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(UPDATE_USERDATA);
    // SAFETY: the update reads one descriptor from the table's array,
    // which stays put until this thread's table is replaced, and that
    // happens only for a new runtime (the old ring, and its queue, gone).
    if unsafe { super::push_sqe(&update) }.is_err() {
        release(slot);
        return NO_SLOT;
    }
    slot
}

/// Empty `slot` (its socket is going) and free it for the next socket.
pub(crate) fn detach(slot: u32) {
    let known = TABLE.with(|t| {
        // SAFETY: thread-local; read only, and the reference ends here.
        unsafe { &*t.get() }
            .as_ref()
            .is_some_and(|table| (slot as usize) < table.fds.len())
    });
    if !known {
        return;
    }
    let empty = opcode::FilesUpdate::new(&EMPTY, 1)
        .offset(slot as i32)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(UPDATE_USERDATA);
    // SAFETY: `EMPTY` is a static.
    if unsafe { super::push_sqe(&empty) }.is_err() {
        // Not in this thread's runtime any more (a socket dropped after
        // it): the slot stays filled until the ring closes, and is not
        // handed out again.
        return;
    }
    release(slot);
}

/// `slot` is free again (its emptying, if any, is queued).
fn release(slot: u32) {
    TABLE.with(|t| {
        // SAFETY: thread-local, and the reference ends with this closure.
        if let Some(table) = unsafe { &mut *t.get() } {
            table.fds[slot as usize] = -1;
            table.free.push(slot);
            table.in_use -= 1;
        }
    })
}

fn ensure_registered() -> bool {
    let slots = match STATE.with(Cell::get) {
        State::Registered => return true,
        State::Wanted(n) => n,
        State::Off | State::Refused => return false,
    };
    if !crate::driver::CURRENT.is_set() {
        // Outside the runtime (a socket made before it serves): no slot,
        // and the table is registered by the first socket inside it.
        return false;
    }
    let registered = crate::driver::CURRENT.with(|inner| match inner {
            crate::driver::Inner::Uring(this) => {
                // SAFETY: the driver is this thread's; only its submitter
                // is used, for one registration syscall.
                let inner = unsafe { &*this.get() };
            inner.register_files_sparse(slots).is_ok()
        }
        #[allow(unreachable_patterns)]
        _ => false,
    });
    if registered {
        TABLE.with(|t| {
            // SAFETY: thread-local; no reference into it is held.
            unsafe {
                *t.get() = Some(Table {
                    fds: vec![-1; slots as usize].into_boxed_slice(),
                    free: Vec::new(),
                    next: 0,
                    in_use: 0,
                })
            }
        });
        STATE.with(|s| s.set(State::Registered));
    } else {
        STATE.with(|s| s.set(State::Refused));
    }
    registered
}

/// Whether the kernel takes a sparse table of registered files, fills a
/// slot with `IORING_OP_FILES_UPDATE`, and runs that update before the next
/// entry of the same submission, which names the slot (what [`attach`]
/// relies on). Probed on a ring of the caller's own: a byte sent on a
/// socket pair comes back through a receive on the slot.
pub fn probe_fixed_files() -> bool {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let Ok(mut uring) = io_uring::IoUring::new(4) else {
        return false;
    };
    let Ok((mut a, b)) = std::os::unix::net::UnixStream::pair() else {
        return false;
    };
    let fd = b.as_raw_fd();
    let mut buf = [0u8; 4];
    let ok = (|| {
        uring.submitter().register_files_sparse(2).ok()?;
        a.write_all(b"x").ok()?;
        let update = opcode::FilesUpdate::new(&fd, 1)
            .offset(1)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(1);
        let recv = opcode::Recv::new(
            io_uring::types::Fd(fd),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .user_data(2);
        let recv = on_slot(recv, 1);
        let empty = opcode::FilesUpdate::new(&EMPTY, 1)
            .offset(1)
            .build()
            .user_data(3);
        // SAFETY: `fd`, `buf` and `EMPTY` outlive the submission, which
        // completes before this closure returns (all three entries finish
        // without waiting: the byte is there).
        unsafe {
            let mut sq = uring.submission();
            sq.push(&update).ok()?;
            sq.push(&recv).ok()?;
            sq.push(&empty).ok()?;
        }
        // The update posts nothing when it succeeds: two completions.
        uring.submit_and_wait(2).ok()?;
        let mut got_byte = false;
        let mut emptied = false;
        for c in uring.completion() {
            match c.user_data() {
                2 => got_byte = c.result() == 1 && buf[0] == b'x',
                3 => emptied = c.result() == 1,
                _ => return None,
            }
        }
        (got_byte && emptied).then_some(())
    })()
    .is_some();
    drop(uring);
    ok
}
